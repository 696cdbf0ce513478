"""The K largest per-sample losses, their histogram and the why-not-finite lines, as JSON, plain text
and CSV (the rich tables are in :mod:`lossctl.render.table`)."""

from __future__ import annotations

import csv
from typing import Any, TextIO

from . import fmt_float, number


def _scalar(v: Any) -> Any:
    if v is None:
        return None
    return v if isinstance(v, int) and not isinstance(v, bool) else number(v)


def predicted_key(rows) -> str:
    """``predicted_class`` for a loss over classes, ``predicted`` for a value."""
    return "predicted_class" if any(r.predicted_is_class for r in rows) else "predicted"


def top_document(rows) -> list[dict[str, Any]]:
    key = predicted_key(rows)
    return [{"rank": r.rank, "index": list(r.index), "loss": number(r.loss), "target": _scalar(r.target),
             key: _scalar(r.predicted)} for r in rows]


def histogram_document(h) -> dict[str, Any]:
    return {"edges": [number(e) for e in h.edges], "counts": h.counts, "nonfinite": h.nonfinite}


def _text(v: Any) -> str:
    if v is None:
        return "-"
    return str(v) if isinstance(v, int) and not isinstance(v, bool) else fmt_float(v)


def index_text(index) -> str:
    return "[" + ",".join(map(str, index)) + "]"


def write_top_plain(out: TextIO, rows) -> None:
    out.write(f"# top {len(rows)} (rank index loss target {predicted_key(rows)})\n")
    for r in rows:
        out.write(f"{r.rank} {index_text(r.index)} {fmt_float(r.loss)} {_text(r.target)} {_text(r.predicted)}\n")


def write_histogram_plain(out: TextIO, h) -> None:
    out.write(f"# histogram ({len(h.counts)} bins: low high count; {h.nonfinite} not finite)\n")
    for lo, hi, c in zip(h.edges, h.edges[1:], h.counts):
        out.write(f"{fmt_float(lo)} {fmt_float(hi)} {c}\n")


def write_top_csv(out: TextIO, rows) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["rank", "index", "loss", "target", predicted_key(rows)])
    for r in rows:
        writer.writerow([r.rank, index_text(r.index), fmt_float(r.loss), _text(r.target), _text(r.predicted)])


def write_histogram_csv(out: TextIO, h) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["low", "high", "count"])
    for lo, hi, c in zip(h.edges, h.edges[1:], h.counts):
        writer.writerow([fmt_float(lo), fmt_float(hi), c])
    if h.nonfinite:
        writer.writerow(["nan/inf", "", h.nonfinite])


def histogram_labels(h) -> tuple[list[str], list[int]]:
    """Row labels and counts for a terminal histogram (the non-finite values as a last row)."""
    labels = [f"{lo:.4g} – {hi:.4g}" for lo, hi in zip(h.edges, h.edges[1:])]
    counts = list(h.counts)
    if h.nonfinite:
        labels.append("nan/inf")
        counts.append(h.nonfinite)
    return labels, counts


def not_finite_lines(report, loss_name: str) -> list[str]:
    """Lines for stderr: what is not finite, then one line per explained sample with its causes."""
    loss = report.loss
    try:
        head = f"the {loss_name} loss is {_text(float(loss))}"
    except (TypeError, ValueError):
        head = f"the {loss_name} loss is not finite"
    if report.count:
        head += f": {report.count} of {report.total} per-sample values {'is' if report.count == 1 else 'are'} not finite"
        if report.count > len([s for s in report.samples if s.index is not None]):
            head += f" (the first {len([s for s in report.samples if s.index is not None])} explained)"
    lines = [head]
    for s in report.samples:
        if s.index is None:
            where = "the reduction"
        else:
            where = f"sample {s.index[0] if len(s.index) == 1 else list(s.index) if s.index else '(the only one)'}"
        lines.append(f"{where} is {_text(s.value)}: " + "; ".join(s.causes))
    return lines
