"""Looking at per-sample losses: the K largest, their histogram, and why a value is not finite.

Pure NumPy on a loss call (the mapping :func:`lossctl.compute` takes) and its
:class:`~lossctl.core.evaluate.Result`; rendering is the caller's.

* :func:`top_samples`: the ``k`` largest per-sample losses (NaN first, then ``+inf``, then by
  value; ties to the earlier sample), each with its index in the per-sample array (the
  prediction's layout without the class dimension), the target there, and the predicted
  class (argmax over the class dimension) or the predicted value;
* :func:`histogram`: ``numpy.histogram`` of the finite per-sample losses, the non-finite ones
  counted apart;
* :func:`why_not_finite`: for the first few samples whose loss is NaN or infinite, the
  derivation of just those samples (the call restricted to their batch rows, with
  ``explain``) is walked to the first step where a value stops being finite, and the
  arithmetic of that step names the cause: ``log(0)``, ``inf − inf``, ``0 · inf``, an
  overflow (float32 when float64 gives a finite value), or a non-finite input; a mean whose
  denominator is 0 (every target ignored) is ``0/0``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from ..errors import ref

#: Bins of :func:`histogram` (fewer when there are fewer samples).
HISTOGRAM_BINS = 20
#: The most samples :func:`why_not_finite` explains.
EXPLAINED_SAMPLES = 3
# A derivation longer than this many rows is not walked (a huge spatial sample); the cause is
# then named from the values alone.
_MAX_WALK_ROWS = 4096


@dataclass(frozen=True)
class TopSample:
    rank: int
    index: tuple[int, ...]
    loss: float
    target: Any = None  # a class index, a value, or None where a sample's target is not one number
    predicted: Any = None  # the predicted class (argmax) or value, or None
    predicted_is_class: bool = False


@dataclass(frozen=True)
class Histogram:
    edges: list[float]
    counts: list[int]
    nonfinite: int = 0
    total: int = 0


@dataclass(frozen=True)
class NotFinite:
    """Why one sample's loss (or the reduced loss) is not finite."""

    index: tuple[int, ...] | None  # None: the reduction itself (an empty mean)
    value: float
    causes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class FiniteReport:
    loss: Any
    count: int  # samples whose loss is not finite
    total: int
    samples: list[NotFinite]


# --------------------------------------------------------------------------- top K


def rank_order(values: np.ndarray, k: int) -> np.ndarray:
    """Flat positions of the ``k`` largest values: NaN first, then +inf, then descending; ties by position."""
    flat = np.asarray(values, dtype=np.float64).reshape(-1)
    nan = np.isnan(flat)
    key = np.where(nan, 0.0, flat)
    order = np.lexsort((np.arange(flat.size), -key, ~nan))
    return order[:k]


def top_samples(call: Mapping[str, Any], result, k: int) -> list[TopSample]:
    """The ``k`` samples with the largest loss in ``result.per_sample`` (module docstring)."""
    values = np.asarray(result.per_sample)
    spec = _spec(call)
    kind = result.kind
    pred = np.asarray(call[kind]) if kind in call else None
    target = np.asarray(call["target"]) if call.get("target") is not None else None
    class_dim = None
    if pred is not None and spec.has_class_axis(kind) and pred.ndim:
        dim = call.get("dim")
        class_dim = (1 if pred.ndim >= 2 else 0) if dim is None else dim % pred.ndim
    out = []
    for rank, flat in enumerate(rank_order(values, k), start=1):
        index = tuple(int(i) for i in np.unravel_index(int(flat), values.shape)) if values.ndim else ()
        out.append(TopSample(rank, index, float(values[index]), *_target_and_prediction(
            pred, target, class_dim, index, values.shape)))
    return out


def _target_and_prediction(pred, target, class_dim, index, shape):
    predicted, is_class = None, False
    if pred is not None:
        if class_dim is not None and pred.ndim == len(shape) + 1:
            row = np.moveaxis(pred, class_dim, -1)[index]
            if row.size and not np.all(np.isnan(row)):
                predicted, is_class = int(np.nanargmax(row)), True
        else:
            predicted = _at(pred, index, shape)
    value = None
    if target is not None:
        if class_dim is not None and target.ndim == len(shape) + 1:  # class probabilities: their argmax
            row = np.moveaxis(target, class_dim, -1)[index]
            value = int(np.argmax(row)) if row.size else None
        else:
            value = _at(target, index, shape)
    return value, predicted, is_class


def _at(a: np.ndarray, index: tuple[int, ...], shape: tuple[int, ...]):
    """``a`` at ``index`` of the per-sample array, when ``a`` broadcasts to it (else None)."""
    try:
        b = np.broadcast_to(a, shape)
    except ValueError:
        return None
    v = b[index]
    return int(v) if v.dtype.kind in "iub" else float(v)


# --------------------------------------------------------------------------- histogram


def histogram(values: np.ndarray, bins: int = HISTOGRAM_BINS) -> Histogram:
    """``numpy.histogram`` of the finite values into ``min(bins, n)`` equal bins; the rest counted apart."""
    flat = np.asarray(values, dtype=np.float64).reshape(-1)
    finite = flat[np.isfinite(flat)]
    if finite.size == 0:
        return Histogram([], [], int(flat.size), int(flat.size))
    counts, edges = np.histogram(finite, bins=max(1, min(bins, finite.size)))
    return Histogram([float(e) for e in edges], [int(c) for c in counts], int(flat.size - finite.size), int(flat.size))


# --------------------------------------------------------------------------- why not finite


def why_not_finite(call: Mapping[str, Any], result, limit: int = EXPLAINED_SAMPLES) -> FiniteReport | None:
    """Why ``result``'s loss or per-sample values are not finite (None when they are)."""
    values = None if result.per_sample is None else np.asarray(result.per_sample, dtype=np.float64)
    loss = result.loss
    loss_finite = bool(np.all(np.isfinite(np.asarray(loss if result.data_loss is None else result.data_loss,
                                                        dtype=np.float64))))
    bad = np.flatnonzero(~np.isfinite(values.reshape(-1))) if values is not None else np.empty(0, dtype=np.intp)
    if loss_finite and bad.size == 0:
        return None
    samples = []
    for flat in bad[:limit]:
        index = tuple(int(i) for i in np.unravel_index(int(flat), values.shape)) if values.ndim else ()
        value = float(values[index])
        samples.append(NotFinite(index, value, _explain_sample(call, result, index, values.shape, value)))
    if bad.size == 0 and values is not None and values.size == 0:
        samples.append(NotFinite(None, float(np.asarray(loss, dtype=np.float64)), [
            "there are no samples: the mean of nothing is 0/0"]))
    elif bad.size == 0 and result.reduction == "mean" and float(result.denominator) == 0.0:
        samples.append(NotFinite(None, float(np.asarray(loss, dtype=np.float64)), [
            "the mean divides by D = 0: every target is ignored (or the counted targets' weights sum to 0), "
            "so Σ l / D = 0/0"]))
    elif bad.size == 0:
        samples.append(NotFinite(None, float(np.asarray(loss, dtype=np.float64)), [_reduction_cause(values, result)]))
    return FiniteReport(loss, int(bad.size), int(values.size) if values is not None else 0, samples)


def _reduction_cause(values, result) -> str:
    if values is not None:
        with np.errstate(all="ignore"):
            total = float(np.sum(values))
        if np.isinf(total):
            return f"every per-sample value is finite, but their sum overflows {result.dtype}"
    return f"the reduction ({result.reduction}) is not finite"


def _spec(call: Mapping[str, Any]):
    from ..losses import registry

    return registry().get(str(call["loss"]))


def _sub_call(call: Mapping[str, Any], spec, index: tuple[int, ...], shape: tuple[int, ...]):
    """The call restricted to the batch row of ``index`` and the sample's position in it, or
    (the whole call, flat position) when the call cannot be cut (None when too large to walk)."""
    position = int(np.ravel_multi_index(index, shape)) if shape else 0
    if spec.batch_axis != 0 or spec.sample_rows is not None or len(shape) < 1:
        return (dict(call), position) if position < _MAX_WALK_ROWS else None
    n = shape[0]
    kind_ndim = max((np.ndim(call[k]) for k in spec.prediction_kinds if call.get(k) is not None), default=0)
    sub = dict(call)
    for name in set(spec.prediction_kinds) | set(spec.inputs):
        a = call.get(name)
        if a is None:
            continue
        a = np.asarray(a)
        if a.ndim >= 1 and a.shape[0] == n and a.ndim in (kind_ndim, len(shape)):
            sub[name] = a[index[0]:index[0] + 1]
    inner = int(np.ravel_multi_index((0,) + index[1:], (1,) + shape[1:]))
    return (sub, inner) if inner < _MAX_WALK_ROWS else None


def _explain_sample(call, result, index, shape, value) -> list[str]:
    from ..api import compute

    spec = _spec(call)
    causes = _input_causes(call, spec, result.kind, index, shape)
    cut = _sub_call(call, spec, index, shape)
    if cut is None:
        return causes or [f"{_fmt(value)} (the derivation of this sample is too large to walk)"]
    sub, row = cut
    sub = {k: v for k, v in sub.items() if k not in ("l1", "l2", "params", "exclude_params")}
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the inputs' warnings were given when the loss was computed
        try:
            walked = compute(sub, grad=False, explain=True, rows=row + 1, stream=False)
        except Exception:  # the walk is a courtesy: the value itself was already computed
            return causes or [f"{_fmt(value)}"]
    word = "class" if spec.has_class_axis(result.kind) else "entry"
    walk = _walk(walked.steps or [], row, word)
    if walk and result.dtype == "float32" and any("overflow" in c for c in walk):
        wide = dict(sub, dtype="float64")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                again = compute(wide, grad=False, explain=False, stream=False)
            v64 = np.asarray(again.per_sample, dtype=np.float64).reshape(-1)[row]
            if np.isfinite(v64):
                walk = [c + f": an overflow in float32 (float64 gives {_fmt(v64)}, above float32's largest "
                        f"{float(np.finfo(np.float32).max):.8g})" if c.startswith("overflow") else c for c in walk]
        except Exception:
            pass
    return _merge(causes, walk) or [_fmt(value)]


def _merge(inputs: list[str], walk: list[str]) -> list[str]:
    """The input-level causes, with the derivation step that shows the first one; then the walk's
    later causes. A walk clause that only restates the input ("the input is inf") is dropped."""
    if not inputs:
        return walk
    rest = [c for c in walk if not c.startswith("the input is")]
    head = inputs[0].split(" ", 1)[0]
    for i, clause in enumerate(rest):
        if clause.split(" ", 1)[0] == head and " in step " in clause:
            return [f"{inputs[0]}, in step {clause.split(' in step ', 1)[1]}"] + inputs[1:] + rest[i + 1:]
    return inputs + rest


def _input_causes(call, spec, kind, index, shape) -> list[str]:
    """Non-finite or log(0)-making values in the inputs at this sample, named by input and class."""
    causes = []
    pred = call.get(kind)
    if pred is None:
        return causes
    pred = np.asarray(pred, dtype=np.float64)
    class_dim = None
    if spec.has_class_axis(kind) and pred.ndim:
        dim = call.get("dim")
        class_dim = (1 if pred.ndim >= 2 else 0) if dim is None else dim % pred.ndim
    option = ref(kind)
    if class_dim is not None and pred.ndim == len(shape) + 1:
        row = np.moveaxis(pred, class_dim, -1)[index]
        target = call.get("target")
        t = np.asarray(target) if target is not None else None
        y = None
        if t is not None and t.ndim == len(shape) and t.size:
            y = int(np.asarray(t)[index])
        nan = np.flatnonzero(np.isnan(row))
        if nan.size:
            causes.append(f"{option} is NaN at class {int(nan[0])}")
        if kind == "logits":
            pos = np.flatnonzero(row == np.inf)
            if pos.size:
                causes.append(f"inf − inf in the log-sum-exp: {option} is +inf at class {int(pos[0])}, "
                              "so x − max(x) = inf − inf")
            elif row.size and np.all(row == -np.inf):
                causes.append(f"inf − inf in the log-sum-exp: every entry of {option} is −inf")
        elif kind in ("probs", "log_probs"):
            zero = (row == 0) if kind == "probs" else (row == -np.inf)
            what = "p = 0" if kind == "probs" else "log p = −inf"
            if y is not None and 0 <= y < row.size and zero[y]:
                causes.append(f"log(0) of a probability at class {y} (the target; {what})")
            elif t is not None and t.shape == pred.shape:
                trow = np.moveaxis(np.asarray(t, dtype=np.float64), class_dim, -1)[index]
                for c in np.flatnonzero(zero):
                    if trow[c] == 0:
                        causes.append(f"0 · inf: target 0 times log(0) at class {int(c)} ({what})")
                        break
                    causes.append(f"log(0) of a probability at class {int(c)} ({what}, target {_fmt(trow[c])})")
                    break
        return causes
    at = _at(pred, index, shape)
    if at is not None and not np.isfinite(at):
        causes.append(f"{option} is {_fmt(at)} here")
    target = call.get("target")
    if target is not None:
        tv = _at(np.asarray(target, dtype=np.float64), index, shape)
        if tv is not None and not np.isfinite(tv):
            causes.append(f"{ref('target')} is {_fmt(tv)} here")
        if at is not None and tv is not None and np.isinf(at) and np.isinf(tv) and np.sign(at) == np.sign(tv):
            causes = [f"inf − inf: {option} and {ref('target')} are both {_fmt(at)} here"]
    return causes


def _walk(steps, row: int, word: str = "class") -> list[str]:
    """Walk the derivation of one sample (row ``row`` of each per-sample step) to the first step
    that is not finite, and the first that is NaN; name each one's arithmetic."""
    causes: list[str] = []
    prev = None
    seen_inf = False
    for step in steps:
        if not step.per_sample or step.value is None:
            continue
        try:
            v = np.asarray(np.asarray(step.value)[row], dtype=np.float64)
        except (IndexError, TypeError, ValueError):
            continue
        bad = ~np.isfinite(v)
        if bad.any():
            nan = np.isnan(v).any()
            if not causes or (nan and not any("NaN" in c for c in causes)):
                causes.append(_classify(step, v, prev, seen_inf, word))
                if nan:
                    break
            seen_inf = seen_inf or bool(np.isinf(v).any())
        prev = v
    return causes


def _classify(step, v, prev, seen_inf: bool, word: str = "class") -> str:
    where = f"step '{step.label}' ({step.formula})"
    at = ""
    if v.ndim and v.size > 1:
        at = f" at {word} {int(np.flatnonzero(~np.isfinite(v))[0])}"
    formula = step.formula
    nan = bool(np.isnan(v).any())
    if prev is None:
        return f"the input is {_fmt(v[~np.isfinite(v)][0]) if v.ndim else _fmt(v)}{at} ({step.label})"
    aligned = prev.shape == v.shape
    if "log" in formula and aligned and np.any((prev == 0) & ~np.isfinite(v)):
        j = int(np.flatnonzero((prev == 0) & ~np.isfinite(v))[0]) if v.ndim else None
        return f"log(0){'' if j is None else f' at {word} {j}'} in {where}"
    if nan and seen_inf:
        if "·" in formula or "*" in formula or "×" in formula or "Σ" in formula:
            return f"0 · inf → NaN{at} in {where}"
        if "−" in formula or "-" in formula or "+" in formula:
            return f"inf − inf → NaN{at} in {where}"
        if "/" in formula:
            return f"inf / inf → NaN{at} in {where}"
    if nan:
        return f"NaN{at} first appears in {where}"
    if "log" in formula and "exp" not in formula:
        return f"log(0) → −inf{at} in {where}"
    if "/" in formula and aligned is False:
        return f"division by zero{at} in {where}"
    return f"overflow to {_fmt(v[~np.isfinite(v)][0]) if v.ndim else _fmt(v)}{at} in {where}"


def _fmt(x) -> str:
    x = float(x)
    if np.isnan(x):
        return "NaN"
    if np.isinf(x):
        return "inf" if x > 0 else "−inf"
    return repr(x)
