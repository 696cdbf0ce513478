"""Evaluating prepared inputs: forward, reduction, gradient (with the conversion's chain rule)
and the derivation, gathered in a :class:`Result`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import reduction as _reduction
from .prepare import Prepared
from .registry import Step


@dataclass
class Result:
    """Everything lossctl computes for one call.

    ``loss`` is a Python float for mean/sum/batchmean and an array for
    ``reduction='none'``; ``per_sample`` holds the ``reduction='none'`` values;
    ``grad`` maps each prediction input's name to d(loss)/d(input) (of the sum
    for ``'none'``), as PyTorch's autograd gives it.
    """

    loss_name: str
    reduction: str
    kind: str
    loss: Any
    per_sample: np.ndarray
    grad: dict[str, np.ndarray] = field(default_factory=dict)
    steps: list[Step] | None = None
    denominator: float = 1.0
    shown_rows: int = 0
    total_rows: int = 0
    dtype: str = "float64"
    data_loss: Any = None  # with --l1/--l2: the loss before the penalties (``loss`` is the objective)
    penalties: dict[str, float] = field(default_factory=dict)
    convention: str = "torch"  # the framework whose numbers these are (the convention key)
    recorded: list | None = None  # another framework's derivation over the whole batch (core.tape.Recorded)
    batch_axis: int = 0  # the axis of per_sample along which the samples lie (the spec's; CTC's is 1)
    class_axis: int | None = None  # the axis of the prediction's gradient that holds the classes (not in per_sample)
    # 'mean' of per-value divided losses: each value's own divisor (CTC: its clamped target length)
    mean_divisor: np.ndarray | None = None



def evaluate(prep: Prepared, reduction: str, *, grad: bool = True, explain: bool = False, rows: int = 3) -> Result:
    """Forward, reduction, gradient and derivation for prepared inputs."""
    spec = prep.spec
    with np.errstate(all="ignore"):
        fwd = spec.forward(prep.native, prep.params)
        values = np.asarray(fwd.values)
        if fwd.mean_divisor is None:
            values = compiled_values(prep, values)
        denom = _reduction.denominator(reduction, values, fwd.denominator, prep.batch_size)
        # 'mean' of per-value divided losses (CTC: l_n / max(L_n, 1)); the upstream becomes per value.
        divisor = None if reduction != "mean" or fwd.mean_divisor is None else np.asarray(fwd.mean_divisor, dtype=values.dtype)
        reduced = _reduction.reduce(reduction, values if divisor is None else values / divisor, denom)
        upstream = _reduction.upstream(denom)
        if divisor is not None:
            upstream = np.asarray(upstream, dtype=values.dtype) / divisor
        grads = gradients(prep, upstream) if grad else {}
    per_sample = prep.restore_values(values)
    loss = per_sample if reduction == "none" else float(reduced)
    result = Result(
        loss_name=spec.name, reduction=reduction, kind=prep.kind, loss=loss, per_sample=per_sample,
        grad=grads, denominator=denom, dtype=np.dtype(prep.dtype).name, batch_axis=spec.batch_axis or 0,
        mean_divisor=divisor,
    )
    if explain:
        from .explain import derivation

        result.steps, result.shown_rows, result.total_rows = derivation(prep, reduction, values, denom, reduced, rows,
                                                                        mean_divisor=divisor)
    return result


def compiled_values(prep: Prepared, values: np.ndarray) -> np.ndarray:
    """The per-sample values from the loss's compiled kernel (:mod:`lossctl.core.kernels`) when
    the extension is in use and takes this call, else ``values`` (the NumPy kernels').

    Large calls stream through the compiled kernel; taking it here too keeps a call's numbers
    the same bit for bit however it is evaluated (in memory, streamed, any block size).
    """
    spec = prep.spec
    if spec.compiled_forward is None or np.dtype(prep.dtype) != np.float64:
        return values
    from .kernels import compiled

    if compiled() is None:
        return values
    block = spec.compiled_forward(prep.kind, prep.given[prep.kind], prep.native, prep.params, None)
    if block is None or block.values.size != values.size:
        return values
    return block.values.reshape(values.shape)


def gradients(prep: Prepared, upstream: float) -> dict[str, np.ndarray]:
    spec = prep.spec
    native_grads = spec.backward(prep.native, prep.params, upstream)
    conversion = spec.kinds[prep.kind]
    out: dict[str, np.ndarray] = {}
    for name, g in native_grads.items():
        if conversion is not None and name == conversion.target:
            given = prep.given[prep.kind]
            g = conversion.vjp(given, prep.native[name], g)
            name = prep.kind
        out[name] = prep.restore_grad(np.asarray(g, dtype=prep.dtype))
    return out
