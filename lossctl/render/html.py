"""Self-contained HTML pages: a loss call's derivation, a check report, a diff.

Every page is built as an element tree (:mod:`xml.etree.ElementTree`) and
serialised once, so every text that comes from an input (file names, keys,
case names, suite text, numbers) is escaped by construction: no string is ever
pasted into markup. A page needs nothing from the network and runs no script:
the CSS is inline, formulas are MathML (:mod:`lossctl.render.mathml`), plots are
inline SVG, and a Content-Security-Policy forbids anything else, so a page
that somehow held markup from an input still could not load or run it.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any, Iterable, Sequence

import numpy as np

from . import fmt_float
from .mathml import formula_element
from .numbers import table_number

# The page may use its own inline styles and data: images, and nothing else.
CONTENT_SECURITY_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
TABLE_DIGITS = 8
MAX_CELL_VALUES = 8

STYLE = """
:root { color-scheme: light dark; --fg: #1d1f23; --bg: #ffffff; --muted: #5b6270; --rule: #d5d9e0;
  --head: #f3f5f8; --pass: #17713a; --fail: #b3261e; --bar: #3b6fd4; --accent: #0b5cad; }
@media (prefers-color-scheme: dark) {
  :root { --fg: #e6e8ec; --bg: #15171b; --muted: #a3aab6; --rule: #3a3f48; --head: #20242b;
    --pass: #5fd08a; --fail: #ff8a80; --bar: #7aa7ff; --accent: #8cc4ff; }
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg);
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", sans-serif; }
main { max-width: 72rem; margin: 0 auto; padding: 1.5rem 1.25rem 3rem; }
h1 { font-size: 1.6rem; margin: 0 0 .25rem; }
h2 { font-size: 1.2rem; margin: 2rem 0 .5rem; border-bottom: 1px solid var(--rule); padding-bottom: .2rem; }
p.lede, .muted, caption { color: var(--muted); }
.value { font: 600 2rem/1.2 ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; margin: .5rem 0; }
.verdict { font-size: 1.2rem; font-weight: 600; margin: .5rem 0; }
.pass { color: var(--pass); font-weight: 600; }
.fail, .error { color: var(--fail); font-weight: 600; }
table { border-collapse: collapse; margin: .5rem 0 1rem; font-size: .92rem; }
caption { text-align: left; padding: .2rem 0; caption-side: top; }
th, td { border: 1px solid var(--rule); padding: .3rem .55rem; vertical-align: top; text-align: left; }
th { background: var(--head); font-weight: 600; }
td.num { text-align: right; font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace;
  white-space: nowrap; }
td.formula { min-width: 14rem; }
code, .mono { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; }
pre { white-space: pre-wrap; word-break: break-word; background: var(--head); padding: .6rem .8rem;
  border: 1px solid var(--rule); }
math { font-size: 1.08em; }
math[display="block"] { margin: 0; text-align: left; }
svg { max-width: 100%; height: auto; }
svg .bar { fill: var(--bar); }
svg .axis { stroke: var(--muted); }
svg text { fill: var(--muted); font: 11px system-ui, sans-serif; }
.scroll { overflow-x: auto; }
footer { margin-top: 3rem; color: var(--muted); font-size: .85rem; }
@media print {
  :root { color-scheme: light; --fg: #000; --bg: #fff; --muted: #333; --rule: #999; --head: #eee; --bar: #555; }
  main { max-width: none; padding: 0; }
  h2 { break-after: avoid; }
  table, svg, figure { break-inside: avoid; }
  .scroll { overflow: visible; }
}
"""


@dataclass(frozen=True)
class SourceInfo:
    """One input of a call as the page shows it: its key, where it came from, its shape and dtype."""

    key: str
    origin: str
    shape: tuple[int, ...]
    dtype: str


@dataclass
class LossPage:
    """What a loss call's page shows besides the :class:`lossctl.api.Result` itself."""

    loss_name: str
    mirrors: str = ""
    summary: str = ""
    formula: str = ""
    convention: str = "torch"
    sources: Sequence[SourceInfo] = ()
    parameters: dict[str, Any] = field(default_factory=dict)
    command: str = ""
    top: Sequence[tuple[Any, float]] = ()  # (index in the input's layout, loss) of the largest losses
    histogram: tuple[Sequence[float], Sequence[int]] | None = None  # (edges, counts)
    rows: int = 10


# --------------------------------------------------------------------------- building blocks


def _el(tag: str, text: Any = None, attrs: dict[str, str] | None = None, *children: ET.Element) -> ET.Element:
    node = ET.Element(tag, attrs or {})
    if text is not None:
        node.text = str(text)
    for child in children:
        node.append(child)
    return node


def _sub(parent: ET.Element, tag: str, text: Any = None, attrs: dict[str, str] | None = None) -> ET.Element:
    node = ET.SubElement(parent, tag, attrs or {})
    if text is not None:
        node.text = str(text)
    return node


def number_text(x: Any, digits: int = TABLE_DIGITS) -> str:
    """A number for a table cell: whole, with its exponent (never cut), at ``digits`` significant digits."""
    return table_number(x, digits)


def cell_text(value: Any) -> str:
    """A scalar as a number; a vector as ``[a, b, …]`` with at most a few entries."""
    if value is None:
        return "—"
    a = np.asarray(value)
    if a.ndim == 0:
        return number_text(a) if a.dtype.kind in "iubf" else str(a)
    flat = a.reshape(-1)
    shown = ", ".join(number_text(v, 6) for v in flat[:MAX_CELL_VALUES])
    more = f", … (+{flat.size - MAX_CELL_VALUES})" if flat.size > MAX_CELL_VALUES else ""
    return f"[{shown}{more}]"


def table(header: Sequence[str], rows: Iterable[Sequence[Any]], *, caption: str | None = None,
          numeric: Sequence[bool] | None = None) -> ET.Element:
    """A ``<table>`` with a header row; cells are text (escaped), or elements placed as they are."""
    t = _el("table")
    if caption:
        _sub(t, "caption", caption)
    head = _sub(_sub(t, "thead"), "tr")
    for h in header:
        _sub(head, "th", h, {"scope": "col"})
    body = _sub(t, "tbody")
    for row in rows:
        tr = _sub(body, "tr")
        for j, value in enumerate(row):
            attrs = {"class": "num"} if numeric is not None and j < len(numeric) and numeric[j] else {}
            td = _sub(tr, "td", None, attrs)
            if isinstance(value, ET.Element):
                td.append(value)
            else:
                td.text = str(value)
    return t


def key_values(pairs: Iterable[tuple[str, Any]], caption: str | None = None) -> ET.Element:
    t = _el("table")
    if caption:
        _sub(t, "caption", caption)
    body = _sub(t, "tbody")
    for key, value in pairs:
        tr = _sub(body, "tr")
        _sub(tr, "th", key, {"scope": "row"})
        td = _sub(tr, "td")
        if isinstance(value, ET.Element):
            td.append(value)
        else:
            td.text = str(value)
    return t


def histogram_svg(edges: Sequence[float], counts: Sequence[int], *, label: str, width: int = 640,
                  height: int = 220) -> ET.Element:
    """Bars of ``counts`` between ``edges`` as inline SVG, each bar titled with its range and count."""
    pad_left, pad_bottom, pad_top = 48, 34, 10
    plot_w, plot_h = width - pad_left - 10, height - pad_bottom - pad_top
    svg = _el("svg", None, {"xmlns": "http://www.w3.org/2000/svg", "width": str(width), "height": str(height),
                            "viewBox": f"0 0 {width} {height}", "role": "img", "aria-label": label})
    _sub(svg, "title", label)
    counts = [int(c) for c in counts]
    top = max(counts) if counts and max(counts) > 0 else 1
    n = max(len(counts), 1)
    bar_w = plot_w / n
    for i, c in enumerate(counts):
        h = plot_h * c / top
        rect = _sub(svg, "rect", None, {
            "class": "bar", "x": f"{pad_left + i * bar_w + 0.5:.2f}", "y": f"{pad_top + plot_h - h:.2f}",
            "width": f"{max(bar_w - 1, 0.5):.2f}", "height": f"{h:.2f}"})
        _sub(rect, "title", f"[{number_text(edges[i], 6)}, {number_text(edges[i + 1], 6)}): {c}")
    base_y = pad_top + plot_h
    _sub(svg, "line", None, {"class": "axis", "x1": str(pad_left), "y1": f"{base_y}", "x2": str(width - 10),
                             "y2": f"{base_y}"})
    _sub(svg, "line", None, {"class": "axis", "x1": str(pad_left), "y1": str(pad_top), "x2": str(pad_left),
                             "y2": f"{base_y}"})
    _sub(svg, "text", number_text(edges[0], 4), {"x": str(pad_left), "y": str(height - 16)})
    _sub(svg, "text", number_text(edges[-1], 4), {"x": str(width - 10), "y": str(height - 16),
                                                  "text-anchor": "end"})
    _sub(svg, "text", str(top), {"x": str(pad_left - 6), "y": str(pad_top + 10), "text-anchor": "end"})
    _sub(svg, "text", "0", {"x": str(pad_left - 6), "y": f"{base_y}", "text-anchor": "end"})
    _sub(svg, "text", label, {"x": str(pad_left + plot_w / 2), "y": str(height - 2), "text-anchor": "middle"})
    return svg


def page(title: str, *sections: ET.Element, lede: str | None = None, footer: str | None = None) -> str:
    """The whole document: doctype, ``<head>`` with the CSS and the policy, ``<main>`` with ``sections``."""
    html = _el("html", None, {"lang": "en"})
    head = _sub(html, "head")
    _sub(head, "meta", None, {"charset": "utf-8"})
    _sub(head, "meta", None, {"http-equiv": "Content-Security-Policy", "content": CONTENT_SECURITY_POLICY})
    _sub(head, "meta", None, {"name": "viewport", "content": "width=device-width, initial-scale=1"})
    _sub(head, "meta", None, {"name": "color-scheme", "content": "light dark"})
    _sub(head, "meta", None, {"name": "generator", "content": "lossctl"})
    _sub(head, "title", title)
    _sub(head, "style", STYLE)
    main = _sub(_sub(html, "body"), "main")
    _sub(main, "h1", title)
    if lede:
        _sub(main, "p", lede, {"class": "lede"})
    for s in sections:
        main.append(s)
    if footer:
        _sub(main, "footer", footer)
    return "<!DOCTYPE html>\n" + ET.tostring(html, encoding="unicode", method="html") + "\n"


def section(heading: str, ident: str, *children: ET.Element | str) -> ET.Element:
    s = _el("section", None, {"id": ident})
    _sub(s, "h2", heading)
    for child in children:
        if isinstance(child, str):
            _sub(s, "p", child)
        else:
            s.append(child)
    return s


def _scroll(child: ET.Element) -> ET.Element:
    return _el("div", None, {"class": "scroll"}, child)


def _sample_label(index: Any) -> str:
    if isinstance(index, (tuple, list)):
        return "(" + ", ".join(str(int(i)) for i in index) + ")"
    return str(index)


# --------------------------------------------------------------------------- a loss call


def loss_page(result: Any, info: LossPage) -> str:
    """The page of one loss call: the call, the value, the derivation, the reduction, per-sample
    values (first rows, the largest, a histogram) and the gradients (first rows)."""
    reduced = result.reduction != "none"
    value_text = fmt_float(result.loss) if reduced else cell_text(result.loss)
    sections = [_call_section(result, info)]

    value = section("Value", "value")
    _sub(value, "p", value_text, {"class": "value", "id": "loss-value"})
    _sub(value, "p", f"{info.loss_name} with reduction '{result.reduction}', computed in {result.dtype}.",
         {"class": "muted"})
    if result.penalties:
        value.append(key_values([("data loss", fmt_float(result.data_loss))]
                                + [(f"penalty {k}", fmt_float(v)) for k, v in result.penalties.items()]))
    sections.append(value)

    if result.steps:
        sections.append(_derivation_section(result))
    sections.append(_reduction_section(result))
    per_sample = _per_sample_section(result, info)
    if per_sample is not None:
        sections.append(per_sample)
    if result.grad:
        sections.append(_gradient_section(result, info.rows))
    title = f"lossctl {info.loss_name} = {value_text}" if reduced else f"lossctl {info.loss_name}"
    lede = info.summary + (f" Mirrors {info.mirrors}." if info.mirrors else "")
    return page(title, *sections, lede=lede or None, footer=_footer(info.command))


def _footer(command: str) -> str:
    from .. import __version__

    return f"Made by lossctl {__version__}" + (f" from: {command}" if command else "") + "."


def _call_section(result: Any, info: LossPage) -> ET.Element:
    s = section("The call", "call")
    pairs: list[tuple[str, Any]] = [("loss", info.loss_name)]
    if info.mirrors:
        pairs.append(("mirrors", info.mirrors))
    pairs += [("convention", info.convention), ("reduction", result.reduction), ("dtype", result.dtype)]
    if info.formula:
        pairs.append(("formula", formula_element(info.formula)))
    s.append(key_values(pairs))
    if info.sources:
        s.append(_scroll(table(("input", "source", "shape", "dtype"),
                               ((src.key, src.origin, "×".join(map(str, src.shape)) or "scalar", src.dtype)
                                for src in info.sources), caption="Inputs")))
    if info.parameters:
        s.append(table(("parameter", "value"), ((k, _parameter_text(v)) for k, v in info.parameters.items()),
                       caption="Parameters"))
    if info.command:
        s.append(_el("pre", info.command, {"class": "mono", "id": "command"}))
    return s


def _parameter_text(value: Any) -> str:
    if isinstance(value, np.ndarray) or isinstance(value, (list, tuple)):
        return cell_text(value)
    if isinstance(value, float):
        return fmt_float(value)
    return str(value)


def _derivation_section(result: Any) -> ET.Element:
    shown = result.shown_rows
    header = ["step", "formula"] + [f"sample {i}" for i in range(shown)]
    rows = []
    for step in result.steps:
        if step.per_sample:
            values = [cell_text(np.asarray(step.value)[i]) for i in range(shown)]
        else:
            values = [cell_text(step.value)] + [""] * max(shown - 1, 0)
        label: Any = step.label
        if step.note:
            label = _el("span", step.label)
            _sub(label, "br")
            _sub(label, "small", step.note, {"class": "muted"}).tail = None
        rows.append([label, _el("div", None, {"class": "formula"}, formula_element(step.formula))] + values)
    caption = (f"Samples 0–{shown - 1} of {result.total_rows}, step by step (every step shown for each sample)."
               if result.total_rows > shown else "Each step for each sample.")
    return section("Derivation", "derivation",
                   _scroll(table(header, rows, caption=caption, numeric=[False, False] + [True] * shown)))


def _reduction_section(result: Any) -> ET.Element:
    n = None if result.per_sample is None else int(np.asarray(result.per_sample).size)
    if result.reduction == "mean":
        text = (f"'mean' divides the sum of the per-sample losses by {fmt_float(result.denominator)}"
                + (f" ({n} values)." if n is not None else "."))
        formula = "L = Σ_i l_i / D"
    elif result.reduction == "batchmean":
        text = f"'batchmean' divides the sum of every element's loss by the batch size, {fmt_float(result.denominator)}."
        formula = "L = Σ_i l_i / N"
    elif result.reduction == "sum":
        text = "'sum' adds the per-sample losses" + (f" ({n} values)." if n is not None else ".")
        formula = "L = Σ_i l_i"
    else:
        text = "'none' keeps one loss per sample; gradients are of their sum."
        formula = "L_i = l_i"
    return section("Reduction", "reduction", _el("div", None, {"class": "formula"}, formula_element(formula)), text)


def _per_sample_section(result: Any, info: LossPage) -> ET.Element | None:
    if result.per_sample is None:
        return None
    values = np.asarray(result.per_sample)
    s = section("Per-sample losses", "per-sample")
    flat = values.reshape(-1)
    indices = list(np.ndindex(values.shape)) if values.ndim > 1 else list(range(flat.size))
    first = [(_sample_label(indices[i]), number_text(flat[i])) for i in range(min(info.rows, flat.size))]
    caption = f"First {len(first)} of {flat.size} samples." if flat.size > len(first) else f"All {flat.size} samples."
    s.append(table(("sample", "loss"), first, caption=caption, numeric=[False, True]))
    if info.top:
        s.append(table(("sample", "loss"), ((_sample_label(i), number_text(v)) for i, v in info.top),
                       caption=f"The {len(info.top)} largest losses.", numeric=[False, True]))
    if info.histogram is not None:
        edges, counts = info.histogram
        figure = _el("figure")
        figure.append(histogram_svg(edges, counts, label=f"{info.loss_name}: per-sample losses (n = {flat.size})"))
        _sub(figure, "figcaption", f"Histogram of {flat.size} per-sample losses in {len(counts)} bins.",
             {"class": "muted"})
        s.append(figure)
    return s


def _gradient_section(result: Any, rows: int) -> ET.Element:
    s = section("Gradients", "gradients")
    for name, g in result.grad.items():
        g = np.asarray(g)
        flat_rows = g.reshape(1, -1) if g.ndim <= 1 else g.reshape(g.shape[0], -1)
        columns = min(flat_rows.shape[1], 12)
        header = ["row"] + [str(j) for j in range(columns)] + (["…"] if flat_rows.shape[1] > columns else [])
        body = []
        for i, row in enumerate(flat_rows[:rows]):
            body.append([str(i)] + [number_text(v) for v in row[:columns]]
                        + (["…"] if flat_rows.shape[1] > columns else []))
        shape = "×".join(map(str, g.shape)) or "scalar"
        caption = f"d(loss)/d({name}), shape {shape}" + (f"; first {rows} rows" if flat_rows.shape[0] > rows else "")
        s.append(_scroll(table(header, body, caption=caption, numeric=[False] + [True] * (len(header) - 1))))
    return s


# --------------------------------------------------------------------------- a check report


@dataclass(frozen=True)
class CaseRow:
    """One case of a check report as the page shows it."""

    name: str
    loss: str
    status: str  # "pass" | "fail" | "error"
    expected: str
    actual: str
    difference: str
    line: int
    detail: str = ""  # the failure's comparison or the error message


def check_page(suite_name: str, suite_path: str, rows: Sequence[CaseRow], summary: str, *,
               seconds: float = 0.0, command: str = "") -> str:
    """The report of one ``lossctl check`` run: a summary, then a row per case, failures first."""
    order = {"error": 0, "fail": 1, "pass": 2}
    ordered = sorted(rows, key=lambda r: (order.get(r.status, 3), r.line))
    failing = [r for r in ordered if r.status != "pass"]
    verdict = "passed" if not failing else "failed"
    head = section("Summary", "summary")
    _sub(head, "p", summary, {"class": "verdict " + ("pass" if not failing else "fail"), "id": "summary-line"})
    head.append(key_values([("suite", suite_path), ("cases", str(len(rows))), ("time", f"{seconds:.2f} s")]))
    table_rows = []
    for r in ordered:
        status = _el("span", r.status.upper() if r.status != "pass" else "pass", {"class": r.status})
        table_rows.append([r.name, r.loss, r.expected, r.actual, r.difference, status, str(r.line)])
    cases = section("Cases", "cases", _scroll(table(
        ("case", "loss", "expected", "actual", "difference", "verdict", "line"), table_rows,
        caption="Failures and errors first, then passes in suite order.",
        numeric=[False, False, True, True, True, False, True])))
    sections = [head, cases]
    if failing:
        details = section("Failures", "failures")
        for r in failing:
            _sub(details, "h3", f"{r.name} ({PurePath(suite_path).name}:{r.line})")
            _sub(details, "pre", r.detail or r.status)
        sections.append(details)
    return page(f"lossctl check {suite_name}: {verdict}", *sections, footer=_footer(command))


# --------------------------------------------------------------------------- a diff


@dataclass(frozen=True)
class DiffArray:
    """One compared array of a diff as the page shows it."""

    key: str
    verdict: str  # "pass" | "fail" | "error"
    statistics: Sequence[tuple[str, str]]  # (name, value) rows
    worst: Sequence[tuple[str, str, str, str]] = ()  # (position, a, b, |a − b|)
    histogram: tuple[Sequence[float], Sequence[int]] | None = None  # log10 |a − b|
    message: str = ""


def diff_page(a_name: str, b_name: str, arrays: Sequence[DiffArray], summary: str, *,
              only_a: Sequence[str] = (), only_b: Sequence[str] = (), command: str = "") -> str:
    """The page of ``lossctl diff A B``: per array its statistics, worst positions and error histogram."""
    failing = any(a.verdict != "pass" for a in arrays) or bool(only_a or only_b)
    head = section("Summary", "summary")
    _sub(head, "p", summary, {"class": "verdict " + ("fail" if failing else "pass"), "id": "summary-line"})
    pairs = [("A", a_name), ("B", b_name)]
    if only_a:
        pairs.append(("only in A", ", ".join(only_a)))
    if only_b:
        pairs.append(("only in B", ", ".join(only_b)))
    head.append(key_values(pairs))
    sections = [head]
    for arr in arrays:
        s = section(arr.key, "array-" + str(len(sections)))
        _sub(s, "p", arr.verdict.upper() if arr.verdict != "pass" else "pass", {"class": arr.verdict})
        if arr.message:
            _sub(s, "p", arr.message)
        if arr.statistics:
            s.append(key_values(arr.statistics, caption="Statistics"))
        if arr.worst:
            s.append(table(("position", "A", "B", "|A − B|"), arr.worst, caption="Worst positions",
                           numeric=[False, True, True, True]))
        if arr.histogram is not None:
            edges, counts = arr.histogram
            s.append(histogram_svg(edges, counts, label=f"{arr.key}: log10 |A − B|"))
        sections.append(s)
    return page(f"lossctl diff: {'differs' if failing else 'within tolerance'}", *sections, footer=_footer(command))


def check_rows(report: Any) -> list[CaseRow]:
    """The page's rows from a suite report (:class:`lossctl.suite.run.SuiteReport`)."""
    from .check import case_summary

    rows = []
    for r in report.results:
        comparisons = r.report.comparisons if r.report is not None else []
        loss_cmp = next((c for c in comparisons if c.what == "loss"), comparisons[0] if comparisons else None)
        if loss_cmp is not None and not loss_cmp.problem:
            expected, actual = cell_text(loss_cmp.expected), cell_text(loss_cmp.actual)
            difference = number_text(loss_cmp.abs_diff, 3)
        elif r.result is not None and getattr(r.result, "reduction", "none") != "none":
            expected, actual, difference = "—", fmt_float(r.result.loss), "—"
        else:
            expected = actual = difference = "—"
        rows.append(CaseRow(name=r.name, loss=r.case.spec.name, status=r.status, expected=expected, actual=actual,
                            difference=difference, line=r.case.line, detail=case_summary(r)))
    return rows


def diff_arrays(report: Any) -> list[DiffArray]:
    """The page's arrays from a :class:`lossctl.core.diff.DiffReport`."""
    from .diff import dtype_text, shape_text

    out = []
    for d in report.arrays:
        name = d.name or "(the array)"
        if not d.shapes_match:
            out.append(DiffArray(name, "error", [("shape A", shape_text(d.shape_a)), ("shape B", shape_text(d.shape_b))],
                                 message="The shapes differ; nothing was compared."))
            continue
        stats = [
            ("shape", shape_text(d.shape_a)), ("dtypes", dtype_text(d)), ("elements", str(d.size)),
            ("max |A − B|", number_text(d.max_abs_error)), ("max |A − B| / |B|", number_text(d.max_rel_error)),
            (f"max distance in ulps of {d.ulp_dtype}", str(d.max_ulp)),
            (f"outside isclose(rtol={report.rtol:g}, atol={report.atol:g})",
             f"{d.mismatched} ({d.mismatched_fraction:.3%})"),
            ("NaN in A only / B only / both", f"{d.nan_a_only} / {d.nan_b_only} / {d.nan_both}"),
            ("exactly equal", str(d.equal)),
        ]
        worst = [("(" + ", ".join(map(str, p.index)) + ")", number_text(p.a, 17), number_text(p.b, 17),
                  number_text(p.abs_error, 6)) for p in d.worst]
        histogram = None
        if d.hist_counts:
            histogram = ([float(k) for k in d.hist_edges], d.hist_counts)
        out.append(DiffArray(name, "pass" if d.passed else "fail", stats, worst, histogram))
    return out


# --------------------------------------------------------------------------- a language-model batch


def lm_page(result: Any, sources: Sequence[SourceInfo], parameters: dict[str, Any], *, command: str = "",
            rows: int = 10) -> str:
    """The page of ``lossctl lm``: the batch, the headline numbers with their denominator, one
    token's derivation, the per-sequence table."""
    from .lm import metrics, sequence_rows

    call = section("The call", "call")
    call.append(key_values([("command", "lm"), ("normalize", result.normalize), ("dtype", result.dtype)]))
    if sources:
        call.append(_scroll(table(("input", "source", "shape", "dtype"),
                                  ((s.key, s.origin, "×".join(map(str, s.shape)) or "scalar", s.dtype) for s in sources),
                                  caption="Inputs")))
    if parameters:
        call.append(table(("parameter", "value"), ((k, _parameter_text(v)) for k, v in parameters.items()),
                          caption="Parameters"))
    if command:
        call.append(_el("pre", command, {"class": "mono", "id": "command"}))

    value = section("Value", "value")
    _sub(value, "p", fmt_float(result.loss), {"class": "value", "id": "loss-value"})
    value.append(key_values([(k.replace("_", " "), fmt_float(v) if isinstance(v, float) else str(v))
                             for k, v in metrics(result).items()]))
    _sub(value, "p", f"The loss is the NLL summed over the counted tokens divided by {fmt_float(result.denominator)} "
                     f"(normalize: {result.normalize}).", {"class": "muted"})
    if result.note:
        _sub(value, "p", result.note, {"class": "fail"})
    sections = [call, value]
    if result.steps:
        body = [[s.label, _el("div", None, {"class": "formula"}, formula_element(s.formula)),
                 "—" if s.value is None else cell_text(s.value)] for s in result.steps]
        sections.append(section("Derivation", "derivation", _scroll(table(
            ("step", "formula", "value"), body, caption="One token's NLL, then the masking, the count and the mean.",
            numeric=[False, False, True]))))
    sequences = sequence_rows(result)
    if sequences:
        columns = list(sequences[0])
        body = [[str(i)] + [number_text(row[c]) for c in columns] for i, row in enumerate(sequences[:rows])]
        caption = (f"First {len(body)} of {len(sequences)} sequences." if len(sequences) > rows
                   else f"All {len(sequences)} sequences.")
        per = section("Per sequence", "per-sequence", _scroll(table(
            ["sequence"] + [c.replace("_", " ") for c in columns], body, caption=caption,
            numeric=[False] + [True] * len(columns))))
        _sub(per, "p", f"Mean of the sequences' perplexities (not the corpus perplexity above): "
                       f"{fmt_float(result.mean_sequence_perplexity)}.")
        sections.append(per)
    return page(f"lossctl lm = {fmt_float(result.loss)}", *sections,
                lede="Token-level cross-entropy of a language-model batch.", footer=_footer(command))
