"""The derivation table behind ``--explain``: a loss's steps for the first rows, then the reduction.

A "row" is one sample: a position's class vector for class losses (``(N, C, d…)``
is walked as its N·d… positions), one element otherwise.
"""

from __future__ import annotations

import numpy as np

from ..errors import ref, spell_refs
from .prepare import Prepared
from .registry import TARGET, Step


def _rows_of(prep: Prepared, a: np.ndarray, name: str) -> np.ndarray:
    if prep.class_layout and a.ndim >= 2 and not (name == TARGET and a.ndim == prep.native_ndim - 1):
        return np.moveaxis(a, 1, -1).reshape(-1, a.shape[1])
    return np.reshape(a, -1)


def derivation(prep: Prepared, reduction: str, values: np.ndarray, denom: float, reduced, rows: int,
               mean_divisor: np.ndarray | None = None):
    spec = prep.spec
    total = int(values.size)
    shown = max(0, min(rows, total))
    conversion = spec.kinds[prep.kind]
    if spec.sample_rows is not None:  # the loss picks its own samples (vector pairs, sequences)
        steps = []
        if conversion is not None:
            steps.append(Step(conversion.target.replace("_", "-"), conversion.formula, None, per_sample=False))
        with np.errstate(all="ignore"):
            steps += spec.steps(spec.sample_rows(dict(prep.native), prep.params, shown), prep.params)
            steps += _reduction_steps(reduction, values, denom, reduced, mean_divisor)
        return steps, shown, total
    native = dict(prep.native)
    if spec.align is not None:
        native = spec.align(native, prep.params)
    first = next(iter(native.values()))
    prep.native_ndim = first.ndim  # type: ignore[attr-defined]
    broadcast_shape = np.broadcast_shapes(*(np.shape(a) for a in native.values())) if not prep.class_layout else None
    sliced = {}
    for name, a in native.items():
        if broadcast_shape is not None:
            a = np.broadcast_to(a, broadcast_shape)
        sliced[name] = _rows_of(prep, np.asarray(a), name)[:shown]
    params = dict(prep.params)
    if broadcast_shape is not None:  # element-wise losses: walk array parameters element by element too
        for p in spec.params:
            value = params.get(p.name)
            if p.kind == "array" and value is not None:
                params[p.name] = np.reshape(np.broadcast_to(value, broadcast_shape), -1)[:shown]
    steps: list[Step] = []
    if conversion is not None:
        given = _rows_of(prep, prep.given[prep.kind], prep.kind)[:shown]
        if conversion.steps is not None and given.ndim == 2:
            steps += conversion.steps(given)
        else:  # element-wise walk: show the converted value, not the whole row's derivation
            steps.append(Step(spell_refs(ref(prep.kind)), conversion.source, given))
            steps.append(Step(conversion.target.replace("_", "-"), conversion.formula, sliced[conversion.target]))
    with np.errstate(all="ignore"):
        steps += spec.steps(sliced, params)
        steps += _reduction_steps(reduction, values, denom, reduced)
    return steps, shown, total


def _reduction_steps(reduction: str, values: np.ndarray, denom: float, reduced,
                     mean_divisor: np.ndarray | None = None) -> list[Step]:
    n = values.size
    if reduction == "none":
        return [Step("reduction 'none'", "the per-sample values are the output", None, per_sample=False)]
    if mean_divisor is not None:
        total = float(np.sum(values / mean_divisor))
        steps = [Step("sum over samples", f"Σ l/d over {n} values (d: each value's divisor)", total, per_sample=False)]
    else:
        total = float(np.sum(values))
        steps = [Step("sum over samples", f"Σ l over {n} values", total, per_sample=False)]
    if reduction == "mean":
        steps.append(Step("mean denominator", "D = Σ weights of counted samples (or their number)", denom, per_sample=False))
        steps.append(Step("loss (mean)", "Σ l / D" if mean_divisor is None else "Σ (l/d) / D", float(reduced), per_sample=False))
    elif reduction == "batchmean":
        steps.append(Step("batch size", "N = input.size(0)", denom, per_sample=False))
        steps.append(Step("loss (batchmean)", "Σ l / N", float(reduced), per_sample=False))
    else:
        steps.append(Step("loss (sum)", "Σ l", float(reduced), per_sample=False))
    return steps
