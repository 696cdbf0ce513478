"""``lossctl compare``: one loss call under every framework's convention, and why the numbers differ.

For each pair of conventions whose numbers differ, the first step of the derivation
where they part: a step one framework takes that changed these inputs (a clip, a
renormalisation, a smoothing, the float32 cast), with the first sample it changed; when
no such step changed anything, the per-sample definitions or the reductions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from .errors import LossctlError, UsageError, ref, spell_refs
from .core.frameworks import first_change, framework_label
from .core.registry import LossSpec

# Two conventions agree when every per-sample value and the loss agree this closely.
AGREE_RTOL = 1e-12


@dataclass
class Difference:
    between: tuple[str, str]
    step: str  # the step key where they part: "clip", "renormalise", "cast", "definition", "reduction", ...
    reason: str  # in words, with the first sample concerned
    sample: tuple[int, ...] | None = None
    values: dict[str, Any] = field(default_factory=dict)  # each side's per-sample value at ``sample``


@dataclass
class Comparison:
    loss_name: str
    reduction: str
    results: dict[str, Any]  # framework -> Result
    refused: dict[str, str]  # framework -> why it cannot compute this call
    mirrors: dict[str, str]
    differences: list[Difference]


def compare(call: Mapping[str, Any], *, origins: Mapping[str, str] | None = None) -> Comparison:
    """Run ``call`` under every convention of its loss."""
    from .api import compute, registry

    call = dict(call)
    if "convention" in call and call["convention"] is not None:
        raise UsageError(f"{ref('convention')}: compare runs every convention; leave it out")
    spec = registry().get(str(call["loss"]))
    results: dict[str, Any] = {}
    refused: dict[str, str] = {}
    for framework in spec.convention_names:
        try:
            results[framework] = compute({**call, "convention": framework}, grad=False, origins=origins, stream=False)
        except LossctlError as e:
            refused[framework] = str(e)
    if not results:
        first = next(iter(refused.values()))
        raise UsageError(first) if "takes" in first or "no such" in first else LossctlError(first)
    differences = []
    names = list(results)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            d = _difference(spec, a, b, results[a], results[b], call)
            if d is not None:
                differences.append(d)
    mirrors = {f: spec.convention(f).mirrors for f in spec.convention_names}
    return Comparison(spec.name, call.get("reduction", "mean"), results, refused, mirrors, differences)


def _agree(x, y) -> bool:
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.shape != y.shape:
        return False
    return bool(np.all(np.isclose(x, y, rtol=AGREE_RTOL, atol=0.0) | (np.isnan(x) & np.isnan(y))))


def _departures(spec: LossSpec, framework: str, result, call) -> list[tuple[str, str, tuple[int, ...], str]]:
    """The steps of ``framework``'s derivation that changed these inputs: (key, reason, index, shown)."""
    out = []
    if result.recorded is not None:
        for r in result.recorded:
            if not r.reason or r.before is None:
                continue
            index = first_change(r.before, r.value)
            if index is None:
                continue
            before = np.broadcast_to(r.before, np.shape(r.value))[index]
            after = np.asarray(r.value)[index]
            shown = f"{r.input_name or 'x'} = {_num(before)} → {_num(after)}"
            out.append((r.key, r.reason, index, shown))
        return out
    conv = spec.convention(framework)
    if conv.departures is not None:
        native = {k: np.asarray(v, dtype=np.float64) for k, v in call.items()
                  if k in spec.prediction_kinds or k in spec.inputs}
        out.extend(conv.departures(native, call))
    return out


def _num(v) -> str:
    if isinstance(v, np.floating) and v.dtype == np.float32 and not float(v).is_integer():
        return str(v)  # the shortest float32 text: 1e-07, not 1.00000001e-07
    v = float(v)
    return str(int(v)) if v.is_integer() and abs(v) < 1e16 else f"{v:.9g}"


def _sample_of(index: tuple[int, ...]) -> str:
    return "sample " + (str(index[0]) if len(index) == 1 else str(list(index[:1]))[1:-1]) if index else "the input"


def _difference(spec: LossSpec, a: str, b: str, ra, rb, call) -> Difference | None:
    same_values = _agree(ra.per_sample, rb.per_sample)
    same_shape = np.shape(ra.per_sample) == np.shape(rb.per_sample)
    if _agree(ra.loss, rb.loss) and (same_values or not same_shape):
        return None
    pa, pb = np.asarray(ra.per_sample, dtype=np.float64), np.asarray(rb.per_sample, dtype=np.float64)
    first = None
    if pa.shape == pb.shape and not same_values:
        with np.errstate(invalid="ignore"):
            bad = ~(np.isclose(pa, pb, rtol=AGREE_RTOL, atol=0.0) | (np.isnan(pa) & np.isnan(pb)))
        first = tuple(int(i) for i in np.argwhere(bad)[0]) if bad.ndim else ()
    values = {}
    if first is not None:
        values = {a: float(pa[first]) if pa.ndim else float(pa), b: float(pb[first]) if pb.ndim else float(pb)}
    if ra.dtype != rb.dtype and _agree_float32(ra.loss, rb.loss) and (pa.shape != pb.shape or _agree_float32(pa, pb)):
        f32 = a if ra.dtype == "float32" else b
        where = f": {_sample_of(first)}, {a} {_num(values[a])} vs {b} {_num(values[b])}" if first else ""
        return Difference((a, b), "cast", f"{f32} computes in float32 (the other in {rb.dtype if f32 == a else ra.dtype})"
                          + where, first, values)
    parts = []
    step = None
    if pa.shape != pb.shape:
        parts.append(_reduction_reason(spec, a, b, ra, rb))
        step = "reduction"
    # A framework's own input-stage steps (clip, renormalise, smoothing) come before torch's
    # log-stage clamp in the pipeline, so they are named first.
    for name in sorted((a, b), key=lambda f: f == "torch"):
        result = ra if name == a else rb
        for key, reason, index, shown in _departures(spec, name, result, call):
            if key == "cast":
                continue  # the float32 cast is named only when nothing else explains the difference
            # the first step that changed a sample whose value differs (or any, when the shapes differ)
            if first is None or pa.shape != pb.shape or index[:len(first)] == first[:len(index)] or not first:
                parts.append(f"{reason}: {_sample_of(index[:1])}, {shown}")
                step = step or key
                break
    if parts:
        return Difference((a, b), step, "; ".join(parts), first, values)
    if ra.dtype != rb.dtype and same_shape and _agree_float32(pa, pb) and not _agree_float32(ra.loss, rb.loss):
        # the same per-sample values up to float32: the reductions make the difference
        f32 = a if ra.dtype == "float32" else b
        return Difference((a, b), "reduction", _reduction_reason(spec, a, b, ra, rb)
                          + f"; and {f32} computes in float32", first, values)
    cast_note = ""
    if ra.dtype != rb.dtype:
        f32 = a if ra.dtype == "float32" else b
        if not same_shape or _agree_float32(pa, pb):  # the cast alone explains what differs
            where = f": {_sample_of(first)}, {a} {_num(values[a])} vs {b} {_num(values[b])}" if first else ""
            return Difference((a, b), "cast", f"{f32} computes in float32 (the other in "
                                              f"{rb.dtype if f32 == a else ra.dtype})" + where, first, values)
        cast_note = f"; and {f32} computes in float32"
    if same_values:
        return Difference((a, b), "reduction", _reduction_reason(spec, a, b, ra, rb), first, values)
    ca, cb = spec.convention(a), spec.convention(b)
    return Difference((a, b), "definition",
                      f"the per-sample definitions differ ({_sample_of(first)}: {a} {_num(values[a])}, {b} {_num(values[b])}): "
                      + spell_refs(f"{a}: {ca.difference}; {b}: {cb.difference}") + cast_note, first, values)


def _agree_float32(x, y) -> bool:
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return bool(np.all(np.isclose(x, y, rtol=2e-6, atol=1e-7) | (np.isnan(x) & np.isnan(y))))


def _reduction_reason(spec: LossSpec, a: str, b: str, ra, rb) -> str:
    def how(name, r):
        conv = spec.convention(name)
        n = int(np.size(r.per_sample))
        if r.reduction == "sum":
            return f"{name} sums {n} per-sample values"
        if r.reduction == "none":
            return f"{name} gives {n} per-sample values"
        divisor = getattr(r, "mean_divisor", None)
        if divisor is not None:
            shown = ", ".join(_num(d) for d in np.asarray(divisor).reshape(-1)[:6])
            return (f"{name} divides each of the {n} per-sample values by its own divisor ({shown}"
                    f"{', …' if np.size(divisor) > 6 else ''}: {conv.difference}), then their sum by {_num(r.denominator)}")
        return f"{name} divides the sum of {n} per-sample values by {_num(r.denominator)}" + {
            "keras": " (sum_over_batch_size: the number of per-sample values)",
            "sklearn": " (np.average: Σ sample_weight)",
            "optax": " (the caller's mean over per-example values)",
        }.get(conv.framework, "")

    return f"the reductions differ: {how(a, ra)}, {how(b, rb)}"


__all__ = ["compare", "Comparison", "Difference", "framework_label"]
