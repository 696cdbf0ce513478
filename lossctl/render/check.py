"""``lossctl check``'s output: a suite run as plain lines, a JSON document or a table, and what ``--update`` changed.

Also the text of one comparison (``loss expected 1.5 actual 1.50007 abs 7e-05 ...``) shared by
the JUnit and HTML reports.
"""

from __future__ import annotations

from typing import Any, TextIO

import numpy as np

from ..core.expectations import Comparison
from ..suite.rewrite import one_line, to_plain
from . import jsonable
from .numbers import table_number



def fmt_value(x: Any) -> str:
    a = np.asarray(x, dtype=np.float64) if not isinstance(x, str) else None
    if a is None:
        return str(x)
    if a.ndim == 0:
        return repr(float(a))
    return np.array2string(a, separator=", ", threshold=12, edgeitems=3, floatmode="maxprec", precision=6).replace("\n", "")


def _at(value: Any, index) -> Any:
    a = np.asarray(value, dtype=np.float64)
    if index is not None and a.ndim == len(index):
        # an expectation that broadcasts (shape (1, 1) against (2, 15)) has one entry along its 1-long axes
        return a[tuple(i if n > 1 else 0 for i, n in zip(index, a.shape))]
    if a.size == 1:
        return a.reshape(())
    return a


def describe_comparison(c: Comparison) -> str:
    """``loss expected 1.5 actual 1.50007 abs 7e-05 rel 4.7e-05 [worst index [1, 2]]``."""
    if c.problem:
        return f"{c.what} {c.problem}"
    expected = _at(c.expected, c.worst_index)
    actual = _at(c.actual, c.worst_index)
    text = (f"{c.what} expected {fmt_value(expected)} actual {fmt_value(actual)} "
            f"abs {c.abs_diff:.3g} rel {c.rel_diff:.3g}")
    if c.worst_index is not None:
        text += f" worst index {list(c.worst_index)}"
    return text


def failure_summary(r) -> str:
    """What a failed case got wrong, in one line."""
    if r.report is None or not r.report.comparisons:
        return "nothing to check (no expect); 'lossctl check --update' pins the current values"
    return "; ".join(describe_comparison(c) for c in r.report.comparisons if not c.passed)


def case_summary(r) -> str:
    """One line for a case: empty for a pass, the failure or the error otherwise."""
    if r.status == "error":
        return r.error
    if r.status == "fail":
        return failure_summary(r)
    return ""


def plain_line(r) -> str:
    """``PASS name`` / ``FAIL name: what differs`` / ``ERROR name: why`` (the why is :func:`case_summary`)."""
    head = f"{r.status.upper()} {r.name}"
    return head if r.status == "pass" else f"{head}: {case_summary(r)}"


def report_document(report, updates=None) -> dict:
    """The JSON document of a suite run (with ``updates``: what ``--update`` changed)."""
    from .text import check_document

    cases = []
    for r in report.results:
        item: dict[str, Any] = {"name": r.name, "status": r.status, "loss_name": r.case.spec.name, "line": r.case.line}
        if r.result is not None:
            item["loss"] = jsonable(r.result.loss)
        if r.report is not None:
            item["check"] = check_document(r.report)
        if r.status != "pass":
            item["message"] = case_summary(r)
        if r.status == "error":
            item["error"] = r.error
        cases.append(item)
    doc = {
        "suite": str(report.suite.path), "name": report.suite.name,
        "passed": report.passed, "failed": report.failed, "errors": report.errors, "deselected": report.deselected,
        "summary": report.summary_line(), "exit_code": int(report.exit_code), "cases": cases,
    }
    if updates is not None:
        doc["updates"] = updates
    return doc


def write_table(out: TextIO, report) -> None:
    """The suite run as a rich table, then the summary line."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{report.suite.name} ({report.suite.path})", title_justify="left")
    table.add_column("")
    table.add_column("case")
    table.add_column("loss")
    table.add_column("value", justify="right")
    table.add_column("detail", overflow="fold")
    styles = {"pass": "[green]PASS[/green]", "fail": "[red]FAIL[/red]", "error": "[red]ERROR[/red]"}
    for r in report.results:
        value = "" if r.result is None else table_number(r.result.loss)
        table.add_row(styles[r.status], r.name, r.case.spec.name, value, case_summary(r))
    console = Console(file=out)
    console.print(table)
    console.print(report.summary_line())


def change_line(c) -> str:
    """One change ``--update`` made (or could not make) to a suite file."""
    if c.action == "kept":
        return f"not updated {c.case}: {c.what} {c.reason}"
    if c.action == "added":
        return f"added {c.case}: {c.what} {_brief(c.new)}"
    return f"updated {c.case}: {c.what} {_change(c.old, c.new)}"


def _brief(value: Any) -> str:
    a = np.asarray(value, dtype=np.float64)
    if a.ndim == 0:
        return repr(float(a))
    if a.size <= 6:
        return one_line(to_plain(a))
    return f"(shape {'x'.join(map(str, a.shape))})"


def _change(old: Any, new: Any) -> str:
    if isinstance(old, str):
        return f"{old} -> {_brief(new)}"
    try:
        o = np.asarray(old, dtype=np.float64)
        n = np.asarray(new, dtype=np.float64)
    except (TypeError, ValueError):
        return f"-> {_brief(new)}"
    if o.ndim == 0 and n.ndim == 0:
        return f"{repr(float(o))} -> {repr(float(n))}"
    if o.shape != n.shape:
        return f"shape {o.shape} -> {_brief(n)} shape {n.shape}"
    if n.size <= 6:
        return f"{one_line(to_plain(o))} -> {one_line(to_plain(n))}"
    with np.errstate(invalid="ignore"):
        diff = np.abs(o - n)
    differ = ~((o == n) | (np.isnan(o) & np.isnan(n)))
    worst = np.unravel_index(int(np.nanargmax(np.where(differ, diff, -1))), n.shape)
    return (f"changed at {int(differ.sum())} of {n.size} elements "
            f"(max abs diff {float(np.nanmax(np.where(differ, diff, 0))):.3g} at {[int(i) for i in worst]})")


def update_summary(outcome) -> str:
    """``N updated, M unchanged`` (``, K still failing``, ``, E errors``, ``, D deselected``)."""
    summary = f"{len(outcome.changed)} updated, {outcome.unchanged} unchanged"
    if outcome.kept:
        summary += f", {len(outcome.kept)} still failing"
    if outcome.errors:
        summary += f", {len(outcome.errors)} error" + ("s" if len(outcome.errors) != 1 else "")
    if outcome.report.deselected:
        summary += f", {outcome.report.deselected} deselected"
    return summary


def write_update(out: TextIO, outcome, fmt: str) -> None:
    """What ``--update`` did: one line per change and per error, then the summary (or one JSON document)."""
    summary = update_summary(outcome)
    if fmt == "json":
        from .text import write_json

        updates = [{"case": c.case, "what": c.what, "action": c.action,
                    "old": c.old if isinstance(c.old, str) else jsonable(c.old), "new": jsonable(c.new),
                    **({"reason": c.reason} if c.reason else {})} for c in outcome.plan.changes]
        doc = report_document(outcome.report, updates)
        doc["summary"] = summary
        doc["exit_code"] = int(outcome.exit_code)
        write_json(out, doc)
        return
    for c in outcome.plan.changes:
        out.write(change_line(c) + "\n")
    for r in outcome.errors:
        out.write(f"ERROR {r.name}: {r.error}\n")
    out.write(summary + "\n")
