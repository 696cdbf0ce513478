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

from ..io.per_sample_csv import per_sample_columns
from .numbers import difference, fit_digits, table_number

MAX_CELL_VALUES = 6


def _cell(value: Any) -> str:
    if value is None:
        return "—"
    a = np.asarray(value)
    if a.ndim == 0:
        return table_number(a)
    flat = a.reshape(-1)
    shown = ", ".join(table_number(v) for v in flat[:MAX_CELL_VALUES])
    more = f", … (+{flat.size - MAX_CELL_VALUES})" if flat.size > MAX_CELL_VALUES else ""
    return f"[{shown}{more}]"


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
        t.add_row("divided by", table_number(result.denominator))
    t.add_row("dtype", result.dtype)
    for k, v in (extra or {}).items():
        t.add_row(k, str(v))
    if result.penalties:
        t.add_row("data loss", table_number(result.data_loss))
        for name, value in result.penalties.items():
            t.add_row(f"penalty {name}", table_number(value))
    value = _cell(result.loss) if result.reduction == "none" else table_number(result.loss)
    t.add_row("objective" if result.penalties else "value", Text(value, style="bold green"))
    return t


def per_sample(result, grad: bool, rows: int, width: int | None = None) -> Table:
    """Per-sample values (and gradient entries) of the first ``rows`` samples; on a terminal
    ``width`` wide, fewer digits or fewer gradient columns rather than cut numbers."""
    header, columns = per_sample_columns(result, grad=grad)
    n = len(columns[0])
    shown_rows = min(n, rows)
    values = [[float(v) for v in col[:shown_rows]] for col in columns[1:]]
    index_width = max([len(header[0])] + [len(c) for c in columns[0][:shown_rows]]) + 3
    digits, k = fit_digits(values, header[1:], width, fixed=index_width)
    t = Table(title="per-sample values" + (" and gradients" if grad else ""), title_justify="left")
    for h in header[: k + 1]:
        t.add_column(h, justify="right", no_wrap=True, overflow="fold")
    for i in range(shown_rows):
        t.add_row(escape(columns[0][i]), *(table_number(col[i], digits) for col in values[:k]))
    notes = []
    if n > rows:
        notes.append(f"{n - rows} more rows not shown (--rows N)")
    if k < len(values):
        notes.append(f"{len(values) - k} columns not shown ({', '.join(header[k + 1:k + 3])}"
                     f"{', ...' if len(values) - k > 2 else ''}): a wider terminal, or --format csv")
    if notes:
        t.caption = "; ".join(notes)
    return t


def gradients(result, width: int | None = None) -> Group:
    tables = []
    for name, g in result.grad.items():
        g = np.asarray(g)
        t = Table(title=f"gradient d(loss)/d({name})  shape {g.shape}", title_justify="left")
        rows = g.reshape(1, -1) if g.ndim <= 1 else g.reshape(g.shape[0], -1)
        shown = rows[:20]
        digits, k = fit_digits([list(map(float, shown[:, j])) for j in range(rows.shape[1])],
                               [str(j) for j in range(rows.shape[1])], width, fixed=len(str(len(shown))) + 6)
        t.add_column("row", justify="right")
        for j in range(k):
            t.add_column(str(j), justify="right", no_wrap=True, overflow="fold")
        for i, row in enumerate(shown):
            t.add_row(str(i), *(table_number(v, digits) for v in row[:k]))
        notes = []
        if rows.shape[0] > 20:
            notes.append(f"{rows.shape[0] - 20} more rows not shown")
        if k < rows.shape[1]:
            notes.append(f"columns {k}..{rows.shape[1] - 1} not shown: a wider terminal, or --format csv/json")
        if notes:
            t.caption = "; ".join(notes)
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
            s.add_row(str(i), *(table_number(flat[n][i]) if i < flat[n].size else "—" for n in names))
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

# --------------------------------------------------------------------------- lossctl diff


def diff_summary(report, a: str, b: str) -> Table:
    """The statistics of each compared array: one array as a field/value table, several as one row each."""
    from .diff import notes, shape_text, verdict

    if len(report.arrays) == 1 and report.arrays[0].shapes_match and not report.only_a and not report.only_b:
        d = report.arrays[0]
        t = Table(title=f"lossctl diff  A = {escape(a)}  B = {escape(b)}", title_justify="left", show_header=False,
                  caption=escape(verdict(report)), caption_justify="left")
        t.add_column("field", style="bold")
        t.add_column("value")
        if d.name:
            t.add_row("array", escape(d.name))
        t.add_row("shape", shape_text(d.shape_a))
        t.add_row("dtype", escape(d.dtype_a if not d.dtypes_differ else f"A {d.dtype_a}, B {d.dtype_b} (compared in {d.compared_in})"))
        t.add_row("max |a − b|", difference(d.max_abs_error))
        t.add_row("max |a − b| / |b|", difference(d.max_rel_error))
        t.add_row(f"max ulps ({d.ulp_dtype})", str(d.max_ulp))
        t.add_row("outside tolerance", f"{d.mismatched} of {d.size} ({d.mismatched_fraction:.3%})")
        t.add_row("NaN (A only, B only, both)", f"{d.nan_a_only}, {d.nan_b_only}, {d.nan_both}")
        t.add_row("verdict", Text("within tolerance", style="green") if d.passed else Text("FAIL", style="bold red"))
        return t
    nan = any(d.nan_a_only or d.nan_b_only or d.nan_both for d in report.arrays)
    t = Table(title=f"lossctl diff  A = {escape(a)}  B = {escape(b)}", title_justify="left",
              caption=escape("\n".join(notes(report) + [verdict(report)])), caption_justify="left")
    heads = ["array", "shape", "dtype", "max abs", "max rel", "ulps", "outside"] + (["NaN A/B/both"] if nan else []) + [""]
    longest = max([len(d.name) for d in report.arrays] + [len(k) for k in report.only_a + report.only_b] + [5])
    for h in heads:
        t.add_column(h, justify="left" if h in ("array", "shape", "dtype", "") else "right", no_wrap=h != "array",
                     min_width=min(longest, 24) if h == "array" else None, overflow="fold")
    for d in report.arrays:
        name = escape(d.name or "—")
        if not d.shapes_match:
            t.add_row(name, f"{shape_text(d.shape_a)} ≠ {shape_text(d.shape_b)}", "", "", "", "", "",
                      *([""] if nan else []), Text("shape", style="bold red"))
            continue
        ok = Text("ok", style="green") if d.passed else Text("FAIL", style="bold red")
        dtype = _dtype_short(d.dtype_a) + ("" if not d.dtypes_differ else "/" + _dtype_short(d.dtype_b))
        t.add_row(name, "x".join(map(str, d.shape_a)) or "scalar", dtype, difference(d.max_abs_error), difference(d.max_rel_error),
                  str(d.max_ulp) if d.max_ulp < 10**6 else f"{d.max_ulp:.2e}", str(d.mismatched),
                  *([f"{d.nan_a_only}/{d.nan_b_only}/{d.nan_both}"] if nan else []), ok)
    for side, keys in (("A", report.only_a), ("B", report.only_b)):
        for key in keys:
            t.add_row(escape(key), f"only in {side}", "", "", "", "", "", *([""] if nan else []),
                      Text("missing", style="bold red"))
    return t


def _dtype_short(name: str) -> str:
    """``float32`` as ``f32``, ``int64`` as ``i64``, ``uint8`` as ``u8`` (the multi-array table is narrow)."""
    for long, short in (("float", "f"), ("uint", "u"), ("int", "i")):
        if name.startswith(long):
            return short + name[len(long):]
    return name


def diff_detail(d) -> Group:
    """The worst positions of one array, with both values, and the histogram of log10 |a − b|."""
    parts = []
    title = f"'{escape(d.name)}': " if d.name else ""
    if d.worst:
        t = Table(title=f"{title}{len(d.worst)} worst position{'s' if len(d.worst) != 1 else ''}", title_justify="left")
        for h in ("index", "a", "b", "|a − b|"):
            t.add_column(h, justify="right")
        for p in d.worst:
            t.add_row(str(list(p.index)), table_number(p.a), table_number(p.b), difference(p.abs_error))
        parts.append(t)
    if d.hist_counts or d.nonfinite_errors:
        labels = [f"[1e{lo}, 1e{lo + 1})" for lo in d.hist_edges] + (["inf"] if d.nonfinite_errors else [])
        parts.append(histogram(f"{title}|a − b| by decade ({d.equal} equal)", labels,
                               d.hist_counts + ([d.nonfinite_errors] if d.nonfinite_errors else [])))
    return Group(*parts)


def histogram(title: str, labels: list[str], counts: list[int]) -> Table:
    """Bars of ``counts``, one row per bin, log-scaled (and titled so) when the counts span decades."""
    from .bars import bars, log_scaled

    log = log_scaled(counts)
    t = Table(title=title + (" (bars on a log scale)" if log else ""), title_justify="left")
    t.add_column("bin", justify="right")
    t.add_column("count", justify="right")
    t.add_column("", style="cyan", no_wrap=True)
    for label, count, bar in zip(labels, counts, bars(counts, log=log)):
        t.add_row(label, str(count), bar)
    return t


# --------------------------------------------------------------------------- triage: --top, --hist


def top(rows, loss_name: str) -> Table:
    """The K samples with the largest loss: index, loss, target, predicted class or value."""
    from .triage import predicted_key

    key = predicted_key(rows).replace("_", " ")
    t = Table(title=f"{len(rows)} largest {escape(loss_name)} losses", title_justify="left")
    for h in ("rank", "index", "loss", "target", key):
        t.add_column(h, justify="right")
    for r in rows:
        t.add_row(str(r.rank), str(list(r.index)), table_number(r.loss),
                  "—" if r.target is None else table_number(r.target),
                  "—" if r.predicted is None else table_number(r.predicted))
    return t


def loss_histogram(h, loss_name: str) -> Table:
    from .triage import histogram_labels

    labels, counts = histogram_labels(h)
    return histogram(f"per-sample {escape(loss_name)} losses, {h.total} samples", labels, counts)


# --------------------------------------------------------------------------- lossctl lm


def lm_summary(result) -> Table:
    """The headline numbers of a token batch: what was counted, the loss and what it divides by."""
    from .lm import metrics

    t = Table(title="lossctl lm", show_header=False, title_justify="left")
    t.add_column("field", style="bold")
    t.add_column("value")
    m = metrics(result)
    t.add_row("tokens", f"{result.tokens} of {result.positions} positions counted")
    t.add_row("normalize", f"{result.normalize} (divided by {table_number(result.denominator)})")
    t.add_row("dtype", result.dtype)
    t.add_row("loss", Text(table_number(m["loss"]) + " nats/token", style="bold green"))
    t.add_row("perplexity", table_number(m["perplexity"]))
    t.add_row("bits per token", table_number(m["bits_per_token"]))
    if "bits_per_byte" in m:
        t.add_row("bits per byte", table_number(m["bits_per_byte"]))
    if result.note:
        t.caption = result.note
    return t


def lm_sequences(result, rows: int) -> Table:
    """Per-sequence counts, NLL and perplexity; the mean of their perplexities, labelled as such."""
    from .lm import SEQUENCE_COLUMNS, sequence_rows

    data = sequence_rows(result)
    cols = [c for c in SEQUENCE_COLUMNS if data and c in data[0]]
    t = Table(title="per sequence", title_justify="left")
    t.add_column("sequence", justify="right")
    for c in cols:
        t.add_column(c.replace("_", " "), justify="right")
    for i, row in enumerate(data[:rows]):
        t.add_row(str(i), *(table_number(row[c]) for c in cols))
    shown = f"{len(data) - rows} more sequences not shown (--rows N); " if len(data) > rows else ""
    t.caption = f"{shown}mean_sequence_perplexity {table_number(result.mean_sequence_perplexity)} (mean of the rows' perplexities, not the corpus perplexity)"
    return t


def lm_steps(result) -> Table:
    t = Table(title="derivation", title_justify="left")
    t.add_column("step", style="bold")
    t.add_column("formula", style="cyan")
    t.add_column("value", justify="right")
    for s in result.steps or []:
        t.add_row(escape(s.label), escape(s.formula), escape(_cell(s.value)))
    return t
