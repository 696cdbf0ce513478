"""Where loaded arrays meet a loss: kinds, dtypes, the class dimension, shapes, values.

Readers give arrays and know nothing of losses; kernels assume valid inputs
and never raise user-facing errors. This module sits between them: it picks
the prediction kind, casts to the compute dtype, moves the class dimension to
axis 1 (adding a batch axis to an unbatched ``(C,)`` input), decides whether
a target holds class indices or class probabilities exactly as PyTorch does
(same shape as the prediction: probabilities; the prediction's shape without
the class dimension: indices), checks shapes and values, and converts the
prediction to the loss's native kind. Every error names the input's origin
(``--target labels.npy``) and the position.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from ..errors import InputError, InputWarning, InvalidInput, UsageError, ref
from .registry import TARGET, LossSpec

DTYPES = {"float64": np.float64, "float32": np.float32}


@dataclass
class Prepared:
    """Canonical inputs for one loss call, and how to map results back to the user's layout."""

    spec: LossSpec
    kind: str  # the prediction kind given
    given: dict[str, np.ndarray]  # differentiable inputs as given, canonical layout
    native: dict[str, np.ndarray]  # what the kernels receive (native kind + extra inputs + target)
    params: dict[str, Any]
    dtype: Any
    unbatched: bool = False
    class_layout: bool = False  # the prediction carries a class dimension (moved to axis 1)
    class_dim: int | None = None  # the user's class dimension, when it was moved to axis 1
    batch_size: int | None = None
    origins: dict[str, str] = field(default_factory=dict)

    def restore_values(self, values: np.ndarray) -> np.ndarray:
        """Per-sample values back in the user's layout (class dimension already reduced away)."""
        if self.unbatched:
            return values.reshape(values.shape[1:])
        return values

    def restore_grad(self, grad: np.ndarray) -> np.ndarray:
        if self.class_dim is not None and self.class_dim != 1 and grad.ndim >= 2:
            grad = np.moveaxis(grad, 1, self.class_dim)
        if self.unbatched:
            grad = grad.reshape(grad.shape[1:])
        return grad


def _origin(origins: Mapping[str, str], name: str) -> str:
    return origins.get(name, ref(name))


def _real_array(origin: str, value: Any, dtype) -> np.ndarray:
    a = np.asarray(value)
    if a.dtype == object or a.dtype.kind in "USVOMm":
        raise InputError(f"{origin}: expected numbers, got {_describe_dtype(a)}")
    if a.dtype.kind == "c":
        raise InputError(f"{origin}: complex numbers are not supported")
    return a.astype(dtype, copy=False)


def _warn(problem: str, consequence: str) -> None:
    """An :class:`InputWarning`: the CLI prints it on stderr, ``--strict`` makes it an error."""
    warnings.warn(InputWarning(f"{problem}; {consequence}", problem), stacklevel=3)


def check_finite(origin: str, a: np.ndarray, log_scale: bool = False) -> None:
    """Warn about NaN/inf values (PyTorch computes with them; so does lossctl).

    ``log_scale``: the values are logarithms of probabilities, where -inf is log(0), not a mistake.
    """
    if a.dtype.kind not in "fc" or a.size == 0:
        return
    with np.errstate(all="ignore"):
        total = a.sum()  # one pass, no temporaries: a finite sum means every value is finite
        if np.isfinite(total) or (log_scale and total == -np.inf and not np.isposinf(a).any()):
            return
        finite = np.isfinite(a) | (a == -np.inf) if log_scale else np.isfinite(a)
    if finite.all():  # the sum overflowed
        return
    n_nan = int(np.count_nonzero(np.isnan(a)))
    n_inf = a.size - int(np.count_nonzero(finite)) - n_nan
    pos = tuple(int(i) for i in np.unravel_index(int(np.argmin(finite)), a.shape))
    warn_nonfinite(origin, n_nan, n_inf, pos, a[pos])


def warn_nonfinite(origin: str, n_nan: int, n_inf: int, first: tuple[int, ...], value: Any) -> None:
    """The warning about ``n_nan`` NaN and ``n_inf`` infinite values of an input, the first at
    index ``first`` (``value``), for inputs scanned piecewise (a streamed token batch)."""
    parts = ([f"{n_nan} NaN"] if n_nan else []) + ([f"{n_inf} infinite"] if n_inf else [])
    where = f" (the first at {_fmt_index(first)}: {_num(value)})" if first else ""
    noun = "value" if n_nan + n_inf == 1 else "values"
    _warn(f"{origin}: {' and '.join(parts)} {noun}{where}",
          "computed as PyTorch does, so the loss or gradient may be NaN or infinite")


def _check_distribution(origin: str, t: np.ndarray, axis: int) -> None:
    """Warn about class-probability targets that are not distributions (PyTorch accepts them)."""
    if t.size == 0:
        return
    with np.errstate(all="ignore"):
        sums = t.sum(axis=axis)
        tol = 1e-4 if t.dtype == np.float32 else 1e-6
        bad = np.abs(sums - 1) > tol
    if np.any(bad):
        pos = tuple(int(i) for i in np.argwhere(bad)[0])
        where = _fmt_index(pos) if pos else "the target"
        _warn(f"{origin}: class probabilities do not sum to 1 in {int(np.count_nonzero(bad))} of {bad.size} "
              f"rows ({where} sums to {float(sums[pos]):.6g})", "PyTorch accepts them, and so does lossctl")
    negative = t < 0
    if np.any(negative):
        pos = tuple(int(i) for i in np.argwhere(negative)[0])
        _warn(f"{origin}: negative class probability {_num(t[pos])} at {_fmt_index(pos)}",
              "PyTorch accepts it, and so does lossctl")


def _num(x: Any) -> str:
    """A number for a message: ``3``, ``1.5``, ``nan``, ``1e+25`` (never ``np.float64(1.5)``)."""
    x = x.item() if hasattr(x, "item") else x
    if isinstance(x, float):
        return str(int(x)) if x.is_integer() and abs(x) < 1e16 else repr(x)
    return str(x)


_NUMPY_REPR = re.compile(r"np\.(?:float|int|uint|bool|complex|str|bytes)\w*\((.*?)\)")


def _plain_numbers(message: str) -> str:
    """``np.float64(1.5)`` → ``1.5`` in messages built with ``{x!r}`` (NumPy 2 reprs)."""
    return _NUMPY_REPR.sub(r"\1", message)


def _describe_dtype(a: np.ndarray) -> str:
    if a.dtype.kind in "US":
        return "text"
    return f"dtype {a.dtype}"


def _fmt_index(index: tuple[int, ...]) -> str:
    if len(index) == 1:
        return f"row {index[0]}"
    return "index [" + ", ".join(str(i) for i in index) + "]"


def _choose_kind(spec: LossSpec, arrays: Mapping[str, Any]) -> str:
    given = [k for k in spec.prediction_kinds if arrays.get(k) is not None]
    accepted = list(spec.kinds)
    options = ", ".join(ref(k) for k in accepted)
    if not given:
        raise UsageError(f"{spec.name}: missing prediction: give one of {options}")
    if len(given) > 1:
        names = " and ".join(ref(k) for k in given)
        raise UsageError(f"{spec.name}: {names} given; give exactly one of {options}")
    kind = given[0]
    if kind not in spec.kinds:
        raise UsageError(f"{spec.name} does not take {ref(kind)}; give one of {options}")
    return kind


def _class_targets(spec, origin, target, pred_shape, ignore_index, n_classes):
    """Validate and return class-index targets as int64."""
    t = np.asarray(target)
    if t.dtype.kind == "f":
        with np.errstate(invalid="ignore"):
            finite = np.isfinite(t)
            bad = ~finite | (np.where(finite, t, 0) != np.round(np.where(finite, t, 0)))
        if np.any(bad):
            pos = tuple(int(i) for i in np.argwhere(bad)[0]) if t.ndim else ()
            raise InputError(f"{origin}: class indices must be integers; found {_num(t[pos])}" + (f" at {_fmt_index(pos)}" if pos else ""))
    elif t.dtype.kind == "b":  # torch refuses them too: True is not a class
        raise InputError(f"{origin}: class indices must be integers, got booleans (true/false); write the class numbers")
    elif t.dtype.kind not in "iu":
        raise InputError(f"{origin}: class indices must be integers, got {_describe_dtype(t)}")
    # The range check runs on the values as given (a float 1e25 or a uint64 must not wrap in int64).
    # Two reductions settle the usual case (every index in range) without masks the size of t.
    out_of_range = None
    if t.size and (t.min() < 0 or t.max() >= n_classes):
        out_of_range = (t < 0) | (t >= n_classes)
        if ignore_index is not None:
            out_of_range &= t != ignore_index
    if out_of_range is not None and np.any(out_of_range):
        pos = tuple(int(i) for i in np.argwhere(out_of_range)[0]) if t.ndim else ()
        value = t[pos].item()
        where = f" ({_fmt_index(pos)})" if pos else ""
        what = "negative class index" if value < 0 else "class index"
        raise InputError(f"{origin}: {what} {_num(value)} is out of range for {n_classes} classes{where}")
    return t.astype(np.int64, copy=False)


def prepare(spec: LossSpec, arrays: Mapping[str, Any], params: Mapping[str, Any],
            *, dtype: str = "float64", dim: int | None = None,
            origins: Mapping[str, str] | None = None, unchecked: tuple[str, ...] = ()) -> Prepared:
    """Validate ``arrays`` (input name → array-like) and ``params`` for ``spec``; see the module doc.

    ``unchecked``: inputs whose values the caller checks itself (a compiled kernel reading the
    prediction as given); they are not scanned for NaN/inf here."""
    origins = dict(origins or {})
    if dtype not in DTYPES:
        raise UsageError(f"{ref('dtype')}: expected one of {', '.join(DTYPES)}, got {dtype!r}")
    ftype = DTYPES[dtype]
    kind = _choose_kind(spec, arrays)
    unknown = [k for k, v in arrays.items() if v is not None and k not in spec.inputs and k not in spec.kinds and k != kind]
    if unknown:
        raise UsageError(f"{spec.name} does not take {ref(unknown[0])}")
    for name in spec.extra_inputs + ((TARGET,) if spec.target != "none" else ()) + spec.aux_inputs:
        if arrays.get(name) is None:
            raise UsageError(f"{spec.name}: missing {ref(name)}")

    pred = _real_array(_origin(origins, kind), arrays[kind], ftype)
    if kind not in unchecked:
        check_finite(_origin(origins, kind), pred, log_scale=kind == "log_probs")
    given = {kind: pred}
    for name in spec.extra_inputs:
        given[name] = _real_array(_origin(origins, name), arrays[name], ftype)
        check_finite(_origin(origins, name), given[name])
    params = dict(params)
    for p in spec.params:
        if p.kind == "array" and params.get(p.name) is not None:
            params[p.name] = _real_array(_origin(origins, p.name), params[p.name], ftype)
            check_finite(_origin(origins, p.name), params[p.name])

    prep = Prepared(spec=spec, kind=kind, given=given, native={}, params=params, dtype=ftype, origins=origins)
    target_origin = _origin(origins, TARGET)
    target = arrays.get(TARGET)

    if spec.has_class_axis(kind):
        prep.class_layout = True
        target = _prepare_class_layout(spec, prep, pred, target, target_origin, dim)
    elif spec.target != "none":
        if dim is not None:
            with_kind = f" with {ref(kind)}" if spec.class_axis else ""
            raise UsageError(f"{spec.name}{with_kind} has no class dimension; {ref('dim')} does not apply")
        target = _real_array(target_origin, target, ftype)
        check_finite(target_origin, target, log_scale=bool(params.get("log_target")))
        if spec.target == "same" and target.shape != pred.shape:
            raise InputError(f"{target_origin}: shape {target.shape} does not match the prediction's shape {pred.shape}")
        if spec.target == "broadcast":
            try:
                np.broadcast_shapes(target.shape, pred.shape)
            except ValueError:
                raise InputError(f"{target_origin}: shape {target.shape} does not broadcast with the prediction's shape {pred.shape}") from None
        prep.batch_size = pred.shape[0] if pred.ndim else None

    pred = prep.given[kind]
    if pred.size == 0:
        _warn(f"{_origin(origins, kind)}: shape {tuple(np.shape(arrays[kind]))} holds no samples",
              "as in PyTorch, the mean is NaN and the sum 0")
    conversion = spec.kinds[kind]
    native_kind = conversion.target if conversion else kind
    with np.errstate(all="ignore"):
        prep.native[native_kind] = conversion.forward(pred) if conversion else pred
    for name in spec.extra_inputs:
        prep.native[name] = prep.given[name]
    if target is not None:
        prep.native[TARGET] = target
    for name in spec.aux_inputs:  # numeric, kept in their own dtype (lengths stay integers)
        value = np.asarray(arrays[name])
        prep.native[name] = _real_array(_origin(origins, name), value, value.dtype)

    if spec.validate is not None:
        try:
            spec.validate(prep.native, prep.params)
        except InvalidInput as e:
            origin = _origin(origins, e.name) if e.name in spec.inputs or e.name in spec.param_names else e.name
            if e.name in spec.kinds or e.name in ("log_probs",):
                origin = _origin(origins, kind)
            raise refusal(spec, e.name)(_plain_numbers(f"{origin}: {e.message}")) from None
    return prep


def refusal(spec: LossSpec, name: str) -> type:
    """The error for a refused value of ``name``: a parameter's number or choice out of range is a
    usage error (exit 2, as any option value out of range); an array's values are an input error."""
    kinds = {p.name: p.kind for p in spec.all_params}
    return UsageError if kinds.get(name, "array") != "array" else InputError


def _prepare_class_layout(spec, prep: Prepared, pred, target, target_origin, dim):
    """Move the class dimension to axis 1 and decide the target's meaning (PyTorch's rule)."""
    kind_origin = _origin(prep.origins, prep.kind)
    if pred.ndim == 0:
        raise InputError(f"{kind_origin}: expected a class dimension, got a single number")
    user_dim = (1 if pred.ndim >= 2 else 0) if dim is None else dim
    if not -pred.ndim <= user_dim < pred.ndim:
        raise UsageError(f"{ref('dim')} {dim} is out of range for an input with {pred.ndim} dimension(s)")
    user_dim %= pred.ndim
    n_classes = pred.shape[user_dim]
    if n_classes == 0:
        raise InputError(f"{kind_origin}: shape {pred.shape} has 0 classes")
    target_arr = np.asarray(target)
    prob_mode = target_arr.shape == pred.shape
    if not prob_mode and spec.target == "same":
        raise InputError(f"{target_origin}: shape {target_arr.shape} does not match the prediction's shape {pred.shape}")
    if prob_mode and spec.target == "index":
        raise InputError(f"{target_origin}: {spec.name} needs class indices, shape {_without(pred.shape, user_dim)}; got the prediction's shape {pred.shape}")
    if prob_mode:
        t = _real_array(target_origin, target_arr, prep.dtype)
        check_finite(target_origin, t)
        if spec.target == "class":
            _check_distribution(target_origin, t, user_dim)
    else:
        expected = _without(pred.shape, user_dim)
        if target_arr.shape != expected:
            hint = ""
            if target_arr.ndim == 2 and target_arr.shape[1] == 1 and pred.ndim == 2:
                hint = " (a column of labels: give it as a 1-D array)"
            raise InputError(
                f"{target_origin}: shape {target_arr.shape} fits neither class indices {expected} "
                f"nor class probabilities {pred.shape} for a prediction of shape {pred.shape} with classes on dim {user_dim}{hint}")
        # Only a loss with an ignore_index parameter exempts a target value from the range check.
        ignore = prep.params.get("ignore_index", -100) if "ignore_index" in spec.param_names else None
        t = _class_targets(spec, target_origin, target_arr, pred.shape, ignore, n_classes)

    if pred.ndim == 1:
        prep.unbatched = True
        pred = pred[None]
        t = t[None]
        user_dim = 1
    elif user_dim != 1:
        prep.class_dim = user_dim
        pred = np.moveaxis(pred, user_dim, 1)
        if prob_mode:
            t = np.moveaxis(t, user_dim, 1)
    prep.given[prep.kind] = pred
    prep.batch_size = pred.shape[0]
    return t


def _without(shape: tuple[int, ...], axis: int) -> tuple[int, ...]:
    return shape[:axis] + shape[axis + 1:]
