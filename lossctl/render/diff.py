"""``lossctl diff`` as JSON and as plain text (the rich tables are in :mod:`lossctl.render.table`)."""

from __future__ import annotations

from typing import Any, TextIO

from . import fmt_float, number


def _value(v: Any) -> Any:
    return v if isinstance(v, int) and not isinstance(v, bool) else number(v)


def shape_text(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


def dtype_text(d) -> str:
    """``float32`` or ``float32 / float64 (compared in float64)``."""
    if not d.dtypes_differ:
        return d.dtype_a
    return f"{d.dtype_a} / {d.dtype_b}" + (f" (compared in {d.compared_in})" if d.compared_in else "")


def array_document(d) -> dict[str, Any]:
    doc: dict[str, Any] = {"name": d.name, "passed": d.passed}
    if not d.shapes_match:
        doc.update(shape_a=list(d.shape_a), shape_b=list(d.shape_b), dtype_a=d.dtype_a, dtype_b=d.dtype_b)
        return doc
    doc.update(
        shape=list(d.shape_a), dtype_a=d.dtype_a, dtype_b=d.dtype_b, compared_in=d.compared_in,
        size=d.size, max_abs_error=number(d.max_abs_error), max_rel_error=number(d.max_rel_error),
        max_ulp=d.max_ulp, ulp_dtype=d.ulp_dtype, mismatched=d.mismatched,
        mismatched_fraction=d.mismatched_fraction, equal=d.equal,
        nan={"a_only": d.nan_a_only, "b_only": d.nan_b_only, "both": d.nan_both},
        worst=[{"index": list(p.index), "a": _value(p.a), "b": _value(p.b), "abs_error": number(p.abs_error)}
               for p in d.worst],
        histogram={"edges": [10.0 ** k for k in d.hist_edges], "counts": d.hist_counts,
                   "zero": d.equal, "infinite": d.nonfinite_errors},
    )
    return doc


def diff_document(report, a: str, b: str) -> dict[str, Any]:
    """The JSON object of ``lossctl diff``: the sources, the tolerances, one entry per array."""
    return {
        "a": a, "b": b, "rtol": report.rtol, "atol": report.atol, "equal_nan": report.equal_nan,
        "passed": report.passed,
        "arrays": [array_document(d) for d in report.arrays],
        "only_in_a": report.only_a, "only_in_b": report.only_b,
    }


def write_diff_plain(out: TextIO, report) -> None:
    """One block per array, each line ``NAME FIELD VALUES...`` (numbers round-trip); then the
    names only one side has and a verdict line."""
    for d in report.arrays:
        name = d.name or "-"
        if not d.shapes_match:
            out.write(f"{name} shape {_shape(d.shape_a)} {_shape(d.shape_b)} MISMATCH\n")
            continue
        out.write(f"{name} shape {_shape(d.shape_a)}\n")
        out.write(f"{name} dtype {d.dtype_a} {d.dtype_b} compared_in {d.compared_in}\n")
        out.write(f"{name} max_abs_error {fmt_float(d.max_abs_error)}\n")
        out.write(f"{name} max_rel_error {fmt_float(d.max_rel_error)}\n")
        out.write(f"{name} max_ulp {d.max_ulp} {d.ulp_dtype}\n")
        out.write(f"{name} mismatched {d.mismatched} {d.size} {fmt_float(d.mismatched_fraction)}\n")
        out.write(f"{name} nan {d.nan_a_only} {d.nan_b_only} {d.nan_both}\n")
        for p in d.worst:
            out.write(f"{name} worst [{','.join(map(str, p.index))}] {fmt_float(p.a)} {fmt_float(p.b)} {fmt_float(p.abs_error)}\n")
        for lo, count in zip(d.hist_edges, d.hist_counts):
            out.write(f"{name} histogram 1e{lo} 1e{lo + 1} {count}\n")
        if d.nonfinite_errors:
            out.write(f"{name} histogram inf inf {d.nonfinite_errors}\n")
        out.write(f"{name} verdict {'ok' if d.passed else 'FAIL'}\n")
    for key in report.only_a:
        out.write(f"{key} only_in a\n")
    for key in report.only_b:
        out.write(f"{key} only_in b\n")
    out.write(verdict(report) + "\n")


def _shape(shape) -> str:
    return "x".join(map(str, shape)) or "scalar"


def verdict(report) -> str:
    """One line: how many arrays were compared and how many are outside the tolerance."""
    failed = sum(1 for d in report.arrays if d.shapes_match and not d.passed)
    compared = sum(1 for d in report.arrays if d.shapes_match)
    parts = [f"{compared} array{'s' if compared != 1 else ''} compared"] + ([f"{failed} outside tolerance"] if compared else [])
    if report.shape_mismatches:
        parts.append(f"{len(report.shape_mismatches)} with different shapes")
    if report.only_a or report.only_b:
        parts.append(f"{len(report.only_a) + len(report.only_b)} on one side only")
    return ("ok: " if report.passed else "FAIL: ") + ", ".join(parts) + f" (rtol {report.rtol:g}, atol {report.atol:g})"


def notes(report) -> list[str]:
    """What the numbers are measured in, when the arrays' dtypes differ."""
    lines = []
    for d in report.arrays:
        if d.shapes_match and d.dtypes_differ:
            lines.append(f"{d.name or 'A, B'}: {d.dtype_a} vs {d.dtype_b}, compared in {d.compared_in}, "
                         f"ulps of {d.ulp_dtype}")
    return lines


def problems(report, a: str, b: str) -> list[str]:
    """The input errors of a comparison (exit 3): each shape mismatch with both shapes, each
    name only one side holds, nothing in common."""
    lines = []
    for d in report.shape_mismatches:
        what = f"'{d.name}': " if d.name else ""
        lines.append(f"{what}shapes differ: {a} has {shape_text(d.shape_a)}, {b} has {shape_text(d.shape_b)}")
    if report.only_a:
        lines.append(f"{b} has no {_names(report.only_a)} (only {a} has)")
    if report.only_b:
        lines.append(f"{a} has no {_names(report.only_b)} (only {b} has)")
    if not report.arrays and not lines:
        lines.append(f"{a} and {b} hold no arrays to compare")
    return lines


def _names(keys: list[str]) -> str:
    shown = ", ".join(f"'{k}'" for k in keys[:5])
    return shown + (f" and {len(keys) - 5} more" if len(keys) > 5 else "")
