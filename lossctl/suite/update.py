"""``lossctl check --update``: rewrite a suite's failing and missing expected values from a run.

:func:`update_suite` plans the edits (:func:`lossctl.suite.rewrite.plan_update`), writes the file
only if it did not change while the cases ran, and returns what it did; rendering is the caller's.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ExitCode, InputError
from .model import Suite
from ..io.writers import check_target, locked, write_text
from .rewrite import UpdatePlan, plan_update
from .run import CaseResult, SuiteReport


@dataclass
class UpdateOutcome:
    report: SuiteReport
    plan: UpdatePlan
    changed: set[str]  # the cases with a value written
    kept: set[str]  # the cases still failing (a value that could not be rewritten)
    errors: list[CaseResult]
    unchanged: int
    exit_code: int


def update_suite(suite: Suite, report: SuiteReport) -> UpdateOutcome:
    """Write the planned values into ``suite``'s file (keeping everything else) and say what changed."""
    plan = plan_update(suite, report)
    if plan.text != suite.text:
        what = str(suite.path)
        check_target(suite.path, what=what)  # a writable regular file (a symbolic link: its target)
        with locked(suite.path, what=what) as target:  # no other record/update between the read and the write
            try:
                current = target.read_bytes().decode("utf-8-sig")
            except (OSError, UnicodeDecodeError) as e:
                raise InputError(f"{suite.path}: cannot read: {getattr(e, 'strerror', None) or e}") from None
            if current != suite.text:
                raise InputError(f"{suite.path}: changed while the cases ran; nothing was written, run --update again")
            write_text(target, ("\ufeff" if suite.bom else "") + plan.text, what=what)
    changed = plan.cases_changed()
    errors = [r for r in report.results if r.status == "error"]
    kept = {c.case for c in plan.kept}
    unchanged = len(report.results) - len(changed | kept) - len(errors)
    code = int(report.exit_code) if errors else int(ExitCode.CHECK_FAILED if kept else ExitCode.OK)
    return UpdateOutcome(report, plan, changed, kept, errors, unchanged, code)
