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


def comparison(cmp, *, per_sample: bool = False, rows: int = 10):
    """``lossctl compare``: the conventions' values side by side, then why each differing pair differs."""
    t = Table(title=f"lossctl compare {cmp.loss_name} (reduction {cmp.reduction})", title_justify="left")
    t.add_column("convention", style="bold")
    t.add_column("mirrors", overflow="fold")
    t.add_column("dtype")
    t.add_column("loss", justify="right")
    for name, mirrors in cmp.mirrors.items():
        if name in cmp.results:
            r = cmp.results[name]
            value = _cell(r.loss) if r.reduction != "none" else "(per sample)"
            t.add_row(name, escape(mirrors), r.dtype, value)
        else:
            t.add_row(name, escape(mirrors), "—", Text(cmp.refused[name], style="dim"))
    parts: list[Any] = [t]
    if per_sample:
        s = Table(title="per-sample values", title_justify="left")
        s.add_column("sample", justify="right")
        names = list(cmp.results)
        for name in names:
            s.add_column(name, justify="right")
        flat = {n: np.ravel(np.asarray(cmp.results[n].per_sample)) for n in names}
        longest = max((v.size for v in flat.values()), default=0)
        for i in range(min(longest, rows)):
            s.add_row(str(i), *(_short(flat[n][i], TABLE_DIGITS) if i < flat[n].size else "—" for n in names))
        parts.append(s)
    if cmp.differences:
        d = Table(title="where they part", title_justify="left")
        d.add_column("pair", style="bold")
        d.add_column("step")
        d.add_column("why", overflow="fold")
        for diff in cmp.differences:
            d.add_row(f"{diff.between[0]} vs {diff.between[1]}", diff.step, escape(diff.reason))
        parts.append(d)
    return Group(*parts)
