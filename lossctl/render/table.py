"""Rich tables for a terminal: summary, per-sample values, gradients, derivation, checks.

The only module outside ``cli/`` that imports rich. Functions return renderables;
the CLI prints them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from rich.console import Group
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from . import fmt_float
from .text import per_sample_columns

MAX_CELL_VALUES = 6
# Per-sample and gradient tables show 8 significant digits so that several columns fit a
# terminal; --format plain/json/csv give every digit.
TABLE_DIGITS = 8


def _cell(value: Any) -> str:
    if value is None:
        return "—"
    a = np.asarray(value)
    if a.ndim == 0:
        return _short(a, digits=12)
    flat = a.reshape(-1)
    shown = ", ".join(_short(v) for v in flat[:MAX_CELL_VALUES])
    more = f", … (+{flat.size - MAX_CELL_VALUES})" if flat.size > MAX_CELL_VALUES else ""
    return f"[{shown}{more}]"


def _short(v: Any, digits: int = 6) -> str:
    a = np.asarray(v)
    if a.dtype.kind in "iub":
        return str(int(a))
    return f"{float(a):.{digits}g}"


def summary(result, extra: dict | None = None) -> Table:
    t = Table(title=f"lossctl {result.loss_name}", show_header=False, title_justify="left")
    t.add_column("field", style="bold")
    t.add_column("value")
    t.add_row("loss", result.loss_name)
    if getattr(result, "convention", "torch") != "torch":
        t.add_row("convention", result.convention)
    t.add_row("input", "--" + result.kind.replace("_", "-"))
    t.add_row("reduction", result.reduction)
    if result.reduction in ("mean", "batchmean"):
        t.add_row("divided by", fmt_float(result.denominator))
    t.add_row("dtype", result.dtype)
    for k, v in (extra or {}).items():
        t.add_row(k, str(v))
    if result.penalties:
        t.add_row("data loss", fmt_float(result.data_loss))
        for name, value in result.penalties.items():
            t.add_row(f"penalty {name}", fmt_float(value))
    value = _cell(result.loss) if result.reduction == "none" else fmt_float(result.loss)
    t.add_row("objective" if result.penalties else "value", Text(value, style="bold green"))
    return t


def per_sample(result, grad: bool, rows: int) -> Table:
    header, columns = per_sample_columns(result, grad=grad)
    t = Table(title="per-sample values" + (" and gradients" if grad else ""), title_justify="left")
    for h in header:
        t.add_column(h, justify="right")
    n = len(columns[0])
    for i in range(min(n, rows)):
        t.add_row(escape(columns[0][i]), *(_short(float(col[i]), TABLE_DIGITS) for col in columns[1:]))
    if n > rows:
        t.caption = f"{n - rows} more rows not shown (--rows N)"
    return t


def gradients(result) -> Group:
    tables = []
    for name, g in result.grad.items():
        g = np.asarray(g)
        t = Table(title=f"gradient d(loss)/d({name})  shape {g.shape}", title_justify="left")
        rows = g.reshape(1, -1) if g.ndim <= 1 else g.reshape(g.shape[0], -1)
        t.add_column("row", justify="right")
        for j in range(rows.shape[1]):
            t.add_column(str(j), justify="right")
        for i, row in enumerate(rows[:20]):
            t.add_row(str(i), *(_short(v, TABLE_DIGITS) for v in row))
        if rows.shape[0] > 20:
            t.caption = f"{rows.shape[0] - 20} more rows not shown"
        tables.append(t)
    return Group(*tables)


def derivation(result) -> Table:
    t = Table(title="derivation", title_justify="left")
    t.add_column("step", style="bold")
    t.add_column("formula", style="cyan")
    for i in range(result.shown_rows):
        t.add_column(f"sample {i}", justify="right")
    for s in result.steps or []:
        if s.per_sample:
            cells = [_cell(np.asarray(s.value)[i]) for i in range(result.shown_rows)]
        else:
            cells = [_cell(s.value)] + [""] * max(result.shown_rows - 1, 0)
        t.add_row(escape(s.label), escape(s.formula), *(escape(c) for c in cells))
    if result.total_rows > result.shown_rows:
        t.caption = f"{result.total_rows - result.shown_rows} of {result.total_rows} samples not shown (--rows N)"
    return t


def check(report) -> Table:
    t = Table(title=f"check (rtol {report.rtol:g}, atol {report.atol:g})", title_justify="left")
    for h in ("what", "result", "expected", "actual", "abs diff", "rel diff", "worst index"):
        t.add_column(h)
    for c in report.comparisons:
        verdict = Text("pass", style="green") if c.passed else Text("FAIL", style="bold red")
        t.add_row(c.what, verdict, _cell(c.expected), _cell(c.actual) if c.actual is not None else "—",
                  f"{c.abs_diff:.3g}", f"{c.rel_diff:.3g}",
                  c.problem or (str(list(c.worst_index)) if c.worst_index is not None else ""))
    return t
