"""A loss under another framework's convention (Keras, optax, scikit-learn): value, gradient, steps.

The inputs are prepared as for PyTorch (kinds, class dimension at axis 1, index or
probability targets, shapes); then the convention's kernel runs on the tape
(:mod:`lossctl.core.tape`), the framework's per-sample weights are applied and its
reduction taken:

* Keras: ``sum_over_batch_size`` — Σ w·l divided by the number of per-sample values,
  whatever the weights (``mean_with_sample_weight`` divides by Σ w); inputs cast to
  float32 unless ``dtype`` float64 is asked for;
* scikit-learn: ``np.average`` — Σ w·l / Σ w (``sum``: ``normalize=False``, Σ w·l);
* optax: no reduction of its own; ``mean`` and ``sum`` are the caller's ``.mean()``/``.sum()``.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from . import tape as T
from ..errors import InputError, InvalidInput, UsageError, ref
from .prepare import prepare, refusal
from .registry import FRAMEWORK_NAMES, TARGET, Convention, LossSpec, Step

SAMPLE_WEIGHT = "sample_weight"


def framework_label(conv: Convention) -> str:
    return f"{FRAMEWORK_NAMES[conv.framework]}'s {conv.mirrors}"


def check_call(spec: LossSpec, conv: Convention, call: Mapping[str, Any], kind: str | None) -> None:
    """Refuse what the framework does not have: the prediction kind, a parameter, per-sample weights."""
    if conv.kinds and kind is not None and kind not in conv.kinds:
        takes = " or ".join(ref(k) for k in conv.kinds)
        raise UsageError(f"{ref(kind)}: {framework_label(conv)} takes {takes}")
    own = set(spec.param_names) if conv.kernel is None else set(conv.params) | {p.name for p in conv.extra_params}
    for p in (*spec.params, *spec.extra_params):
        if p.name in own or p.name not in call:
            continue
        value = call[p.name]
        if value is None or (p.kind != "array" and _same(value, p.default)):
            continue
        have = [f for f in spec.convention_names if f in spec.conventions and _has_param(spec, f, p.name)]
        raise UsageError(f"{ref(p.name)}: {framework_label(conv)} has no such parameter"
                         + (f" (conventions that have it: {', '.join(have)})" if have else ""))
    if call.get(SAMPLE_WEIGHT) is not None and not conv.sample_weight:
        have = [f for f in spec.convention_names if spec.convention(f).sample_weight]
        alt = f" (use {ref('weight')})" if conv.framework == "torch" and "weight" in spec.param_names else ""
        raise UsageError(f"{ref('sample_weight')}: {framework_label(conv)} has no per-sample weights{alt}"
                         + (f"; conventions that have them: {', '.join(have)}" if have else ""))


def _has_param(spec: LossSpec, framework: str, name: str) -> bool:
    conv = spec.conventions[framework]
    if conv.kernel is None:
        return name in spec.param_names
    return name in conv.params or any(p.name == name for p in conv.extra_params)


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except Exception:
        return False


def run(spec: LossSpec, conv: Convention, call: Mapping[str, Any], arrays: dict, params: dict, reduction: str, *,
        grad: bool, explain: bool, rows: int, origins: Mapping[str, str] | None):
    """The loss under ``conv``: a :class:`lossctl.api.Result` with the framework's numbers."""
    from .evaluate import Result

    if reduction not in conv.reductions:
        raise UsageError(f"{ref('reduction')}: {framework_label(conv)} reduces by {', '.join(conv.reductions)}; got {reduction!r}")
    dtype = call.get("dtype") or ("float32" if conv.float32 else "float64")
    prep = prepare(spec, arrays, params, dtype=dtype, dim=call.get("dim"), origins=origins)
    kind = prep.kind
    leaves = {kind: T.Var(prep.given[kind])}
    for name in spec.extra_inputs:
        leaves[name] = T.Var(prep.native[name])
    x: dict[str, Any] = dict(leaves)
    for name, value in prep.native.items():
        if name not in x and name not in (getattr(spec.kinds.get(kind), "target", None),):
            x[name] = value
    if conv.validate is not None:
        try:
            conv.validate({k: (v.value if isinstance(v, T.Var) else v) for k, v in x.items()}, params)
        except InvalidInput as e:
            origin = (origins or {}).get(e.name, ref(e.name))
            raise refusal(spec, e.name)(f"{origin}: {e.message}") from None
    tape = T.Tape()
    if conv.float32 and dtype == "float32":
        given = np.asarray(arrays[kind])
        before = given.astype(np.float64) if given.dtype.kind in "fiub" and given.dtype != np.float32 else None
        tape.step("cast", "cast to float32", "y_true, y_pred → keras.config.floatx() = float32", prep.given[kind],
                  before=before, reason="keras computes in float32 (Loss casts y_true and y_pred to floatx())",
                  symbol=kind)
    try:
        return _run_tape(spec, conv, call, prep, tape, leaves, x, params, reduction, grad=grad, explain=explain, rows=rows)
    except InvalidInput as e:  # the framework's own refusal, met while computing (a kernel or its gradient)
        origin = (origins or {}).get(e.name, ref(e.name))
        raise refusal(spec, e.name)(f"{origin}: {e.message}") from None


def _run_tape(spec: LossSpec, conv: Convention, call, prep, tape: T.Tape, leaves: dict, x: dict, params: dict,
              reduction: str, *, grad: bool, explain: bool, rows: int):
    from .evaluate import Result

    kind = prep.kind
    with np.errstate(all="ignore"):
        values = T.lift(conv.kernel(tape, x, params))
        if values.ndim == 0:  # one value for the whole batch (Keras's Dice, axis=None): one "sample"
            values = T.mul(values, np.ones(1, dtype=values.dtype))
        weights = _sample_weight(call, values, prep.dtype, conv, tape)
        weighted = values if weights is None else T.mul(values, weights)
        reduced, denom = _reduce(conv, reduction, weighted, weights, tape)
        grads: dict[str, np.ndarray] = {}
        if grad and conv.differentiates:
            target = reduced if reduction != "none" else T.total(weighted)
            for name, g in T.gradient(target, leaves).items():
                grads[name] = prep.restore_grad(np.asarray(g, dtype=prep.dtype))
    per_sample = prep.restore_values(np.asarray(weighted.value, dtype=prep.dtype))
    loss = per_sample if reduction == "none" else float(reduced.value)
    result = Result(loss_name=spec.name, reduction=reduction, kind=kind, loss=loss, per_sample=per_sample, grad=grads,
                    denominator=denom, dtype=np.dtype(prep.dtype).name, convention=conv.framework, recorded=tape.steps,
                    batch_axis=spec.batch_axis or 0)
    if explain:
        result.steps, result.shown_rows, result.total_rows = _steps(tape, weighted.value, rows, reduction, reduced, denom)
    return result


def _sample_weight(call: Mapping[str, Any], values: T.Var, dtype, conv: Convention, tape: T.Tape) -> np.ndarray | None:
    sw = call.get(SAMPLE_WEIGHT)
    mask = getattr(tape, "mask", None)
    if sw is None and mask is None:
        return None
    w = None
    if sw is not None:
        w = np.asarray(sw, dtype=dtype)
        # Keras's squeeze_or_expand_to_same_rank: (N,) weights against (N, d…) values get trailing axes.
        while w.ndim < values.ndim:
            w = w[..., None]
        while w.ndim > values.ndim and w.shape[-1] == 1:
            w = w[..., 0]
        try:
            w = np.broadcast_to(w, values.shape)
        except ValueError:
            raise InputError(f"{ref('sample_weight')}: shape {tuple(np.shape(sw))} does not match the per-sample values' "
                             f"shape {values.shape} ({framework_label(conv)} reduces to one value per sample)") from None
        tape.step("weight", "sample weight", "w (the sample weights)", w)
    if mask is not None:
        # Keras's ignore_class is a mask: ignored entries weigh 0, and 'mean' divides by the valid count.
        m = mask.astype(dtype)
        w = m if w is None else w * m
        tape.step("mask", "ignore_class mask", "ignored entries weigh 0", w)
    return w


def _reduce(conv: Convention, reduction: str, weighted: T.Var, weights: np.ndarray | None, tape: T.Tape):
    if reduction == "none":
        return weighted, 1.0
    s = T.total(weighted)
    if reduction == "sum":
        return s, 1.0
    mask = getattr(tape, "mask", None)
    if conv.framework == "sklearn" and weights is not None:
        denom = float(np.sum(weights, dtype=np.float64))
    elif mask is not None and conv.framework == "keras":
        # mask weight total/valid on each valid entry: Σ w·l·(total/valid) / total = Σ w·l / valid
        denom = float(np.count_nonzero(mask))
    elif reduction == "mean_with_sample_weight" and weights is not None:
        denom = float(np.sum(weights, dtype=np.float64))
    else:
        denom = float(weighted.value.size)
    if denom == 0 and conv.framework == "keras":
        return T.mul(s, 0.0), denom  # Keras's divide_no_nan
    return T.div(s, weighted.dtype.type(denom)), denom


_REDUCTION_TEXT = {
    "keras": "sum_over_batch_size: Σ w·l / (number of per-sample values)",
    "sklearn": "np.average: Σ w·l / Σ w",
    "optax": "optax returns per-example values; the caller's .mean()",
}


def _steps(tape: T.Tape, values: np.ndarray, rows: int, reduction: str, reduced: T.Var, denom: float):
    n = values.shape[0] if values.ndim else 1
    shown = max(0, min(rows, n))
    steps: list[Step] = []
    for r in tape.steps:
        v = r.value
        if v.ndim and v.shape[0] == n:
            steps.append(Step(r.label, r.formula, v[:shown]))
        else:
            steps.append(Step(r.label, r.formula, v if v.ndim == 0 else v, per_sample=False))
    steps.append(Step("loss", "l (per sample)", values[:shown] if values.ndim else values))
    if reduction == "none":
        steps.append(Step("reduction 'none'", "the per-sample values are the output", None, per_sample=False))
    else:
        total = float(np.sum(values, dtype=np.float64))
        steps.append(Step("sum over samples", f"Σ w·l over {values.size} values", total, per_sample=False))
        if reduction == "mean":
            steps.append(Step("mean denominator", "D", denom, per_sample=False))
            steps.append(Step("loss (mean)", "Σ w·l / D", float(reduced.value), per_sample=False))
        else:
            steps.append(Step("loss (sum)", "Σ w·l", float(reduced.value), per_sample=False))
    return steps, shown, int(values.size)


def first_change(before: np.ndarray, after: np.ndarray) -> tuple[int, ...] | None:
    """The first index where a step changed its input (NaN-aware), or None."""
    try:
        b = np.broadcast_to(np.asarray(before, dtype=np.float64), np.shape(after))
    except ValueError:
        return None
    a = np.asarray(after, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        changed = ~((a == b) | (np.isnan(a) & np.isnan(b)))
    if not changed.any():
        return None
    return tuple(int(i) for i in np.argwhere(changed)[0])


__all__ = ["run", "check_call", "first_change", "framework_label", "SAMPLE_WEIGHT", "TARGET"]
