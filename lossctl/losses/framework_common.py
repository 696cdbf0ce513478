"""Pieces every framework convention shares: Keras's epsilon and last-axis reduction, the
refusals in each framework's words, and a LossSpec's kernels built from its home convention."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..core import tape as T
from ..errors import InvalidInput
from ..core.registry import Convention, Forward, LossSpec, Step

# keras.backend.epsilon(): the clip of every Keras probability path.
KERAS_EPSILON = 1e-7


def keras_eps(dtype) -> tuple[Any, Any]:
    """(ε, 1 − ε) as Keras forms them: in the compute dtype (1 − 1e-7 is 1 − 2⁻²³ in float32)."""
    eps = np.dtype(dtype).type(KERAS_EPSILON)
    return eps, np.dtype(dtype).type(1) - eps


def keras_clip_reason(dtype, symbol: str = "p", hi: bool = True) -> str:
    lo, top = keras_eps(dtype)
    if not hi:
        return f"keras clips {symbol} to [1e-7, 1]"
    note = f" (1 − 1e-7 is {float(top):.8g} in {np.dtype(dtype).name})" if np.dtype(dtype) == np.float32 else ""
    return f"keras clips {symbol} to [1e-7, 1 − 1e-7]{note}"


def keras_last_axis(t: T.Tape, v: T.Var, how: str = "mean") -> T.Var:
    """Keras reduces the last axis of an elementwise loss before the batch reduction; a 1-D
    input counts as (N, 1), one sample per element (Keras itself would return one scalar)."""
    if v.ndim < 2:
        return v
    out = T.mean(v, axis=-1) if how == "mean" else T.total(v, axis=-1)
    t.step("inner", f"{how} over the last axis", f"{how}_(last axis) l", out)
    return out


def sklearn_rows_mean(t: T.Tape, v: T.Var) -> T.Var:
    """scikit-learn's regression metrics average each output over samples, then the outputs
    uniformly: the same as averaging each sample's outputs first."""
    if v.ndim < 2:
        return v
    out = T.mean(T.lift(v), axis=tuple(range(1, v.ndim)))
    t.step("inner", "mean over outputs", "multioutput='uniform_average'", out)
    return out


def sklearn_eps(dtype) -> Any:
    """scikit-learn's log_loss clips to [eps, 1 − eps] with the machine epsilon of the input's dtype (≥ 1.5)."""
    return np.finfo(dtype).eps


def refuse_outside_unit(name: str, a: np.ndarray, who: str) -> None:
    bad_hi = a > 1
    bad_lo = a < 0
    for bad, word in ((bad_hi, "greater than 1"), (bad_lo, "lower than 0")):
        if np.any(bad):
            where = [int(i) for i in np.argwhere(bad)[0]]
            raise InvalidInput(name, f"{who} refuses values {word}: {float(a[tuple(where)])!r} at index {where}")


def kernels_from(conv: Convention):
    """A LossSpec's ``forward``/``backward``/``steps`` from its home convention's kernel
    (values unweighted; lossctl's mean is the framework's mean without sample weights)."""

    def _run(x: dict, params: dict):
        tape = T.Tape()
        leaves = {k: T.Var(v) for k, v in x.items() if k in conv.kinds or k in ("x1", "x2", "var")}
        inputs = {**x, **leaves}
        with np.errstate(all="ignore"):
            out = T.lift(conv.kernel(tape, inputs, params))
        return tape, leaves, out

    def forward(x: dict, params: dict) -> Forward:
        _, _, out = _run(x, params)
        return Forward(np.asarray(out.value))

    def backward(x: dict, params: dict, upstream) -> dict:
        _, leaves, out = _run(x, params)
        with np.errstate(all="ignore"):
            seed = np.broadcast_to(np.asarray(upstream, dtype=out.dtype), out.shape)
            return T.gradient(out, leaves, seed=seed)

    def steps(x: dict, params: dict) -> list[Step]:
        tape, _, out = _run(x, params)
        rows = np.asarray(out.value).shape[0] if np.ndim(out.value) else 1
        result = []
        for r in tape.steps:
            v = r.value
            per = v.ndim > 0 and v.shape[0] == rows
            result.append(Step(r.label, r.formula, v, per_sample=per))
        result.append(Step("loss", "l", np.asarray(out.value)))
        return result

    return forward, backward, steps


def framework_loss(*, name: str, home: str, conventions: dict, kinds: tuple[str, ...], summary: str, formula: str,
                   params: tuple = (), aliases: tuple[str, ...] = (), target: str = "same", notes: str = "",
                   validate=None, input_help=None, class_axis: bool = False, batch_axis: int | None = 0) -> "LossSpec":
    """A loss PyTorch lacks: its kernels are its home framework's convention."""
    from ..core.registry import LossSpec

    forward, backward, steps = kernels_from(conventions[home])
    return LossSpec(name=name, mirrors=conventions[home].mirrors, summary=summary, formula=formula,
                    kinds={k: None for k in kinds}, forward=forward, backward=backward, steps=steps, params=params,
                    aliases=aliases, target=target, validate=validate, batch_axis=batch_axis, conventions=conventions,
                    home=home, notes=notes, input_help=input_help or {}, class_axis=class_axis,
                    reductions=conventions[home].reductions)
