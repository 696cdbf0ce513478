"""``lossctl check`` for CI: GitHub workflow-command annotations and JSON Lines.

GitHub's format (docs.github.com, "Workflow commands for GitHub Actions"):
``::error file={name},line={line},title={title}::{message}``. As in GitHub's own toolkit
(actions/toolkit, ``command.ts``), the message escapes ``%``, CR and LF, and property values
(file, title) escape ``:`` and ``,`` besides.
"""

from __future__ import annotations

import json
from typing import Any

from . import jsonable
from .check import case_summary, plain_line


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def github_annotation(r, suite_file: str) -> str | None:
    """The ``::error`` line of a failed or erroneous case (None for a pass), at the case's line."""
    if r.status == "pass":
        return None
    what = "failed" if r.status == "fail" else "error"
    title = f"lossctl check: {r.name} {what}"
    return (f"::error file={escape_property(suite_file)},line={r.case.line},title={escape_property(title)}"
            f"::{escape_data(case_summary(r))}")


def jsonl_case(r) -> str:
    """One case as one JSON line: name, status, loss, line, and the message when it did not pass."""
    item: dict[str, Any] = {"name": r.name, "status": r.status, "loss_name": r.case.spec.name, "line": r.case.line}
    if r.result is not None:
        item["loss"] = jsonable(r.result.loss)
    if r.status != "pass":
        item["message"] = case_summary(r)
    return json.dumps(item, ensure_ascii=False, allow_nan=False)


def jsonl_summary(report, exit_code: int) -> str:
    """The last JSON line: the totals."""
    return json.dumps({"summary": report.summary_line(), "passed": report.passed, "failed": report.failed,
                       "errors": report.errors, "deselected": report.deselected, "exit_code": exit_code})


def case_line(r, *, verbose: bool) -> str:
    """A case's plain line; with ``verbose`` a pass also shows the loss it computed and the tolerances."""
    line = plain_line(r)
    if verbose and r.status == "pass" and r.result is not None:
        from .check import fmt_value

        line += f" ({r.case.spec.name} = {fmt_value(r.result.loss)}, rtol {r.case.rtol:g}, atol {r.case.atol:g})"
    return line


def config_line(source: str, values: dict[str, Any]) -> str:
    """Which configuration file the run used and what it set (shown atop the report)."""
    shown = ", ".join(f"{k} = {v}" for k, v in values.items())
    return f"config: {source}" + (f" ({shown})" if shown else "")
