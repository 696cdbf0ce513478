"""The library's front door: ``compute()`` turns a loss call into a :class:`Result`.

The CLI, ``check`` suites and the tests all go through here, so a suite case
and a command line are the same computation:
prepare → forward → reduce → backward (+ conversion chain rule) → steps.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from . import reduction as _reduction
from .errors import UsageError
from .prepare import Prepared, prepare
from .registry import PREDICTION_KINDS, Registry, Step

_REGISTRY: Registry | None = None

# Keys of a call that are neither inputs nor loss parameters.
CALL_KEYS = ("loss", "reduction", "dtype", "dim", "convention", "sample_weight")
# Regularisation keys: penalties on model parameters added to any loss.
REGULARISATION_KEYS = ("l1", "l2", "params", "exclude_params")


def registry() -> Registry:
    global _REGISTRY
    if _REGISTRY is None:
        from .losses import ALL_SPECS

        _REGISTRY = Registry(ALL_SPECS)
    return _REGISTRY


def registry_names() -> list[str]:
    return registry().names()


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
    convention: str = "torch"  # the framework whose numbers these are (--convention)
    recorded: list | None = None  # another framework's derivation over the whole batch (lossctl.tape.Recorded)


def compute(case: Mapping[str, Any] | None = None, /, *, grad: bool = True, explain: bool = False,
            rows: int = 3, origins: Mapping[str, str] | None = None, keep_arrays: bool = True,
            sink: Any = None, stream: bool | None = None, block_rows: int | None = None,
            progress: Any = None, **kwargs: Any) -> Result:
    """Compute a loss call given as a mapping in the check-suite format (or keyword arguments).

    Large inputs of a separable loss are evaluated blockwise on all cores (:mod:`lossctl.stream`):
    ``stream`` None decides by size, True forces it where the loss allows, False never;
    ``block_rows`` sets the block size; ``keep_arrays=False`` lets a streamed call drop the
    per-sample values (``Result.per_sample`` is then None) and the gradients that go to ``sink``
    (an :class:`lossctl.io.outstream.OutputStream`, which receives them as they stream);
    ``progress(done_rows, total_rows)`` is called after each block.

    >>> r = compute({"loss": "ce", "logits": [[10, 0, -10], [8, 8, 8]], "target": [0, 2]})
    >>> r.loss
    0.5493288448141933
    """
    call = dict(case or {})
    call.update(kwargs)
    if "loss" not in call:
        raise UsageError("missing the loss name ('loss')")
    spec = registry().get(str(call["loss"]))
    reduction = call.get("reduction", "mean")
    input_names = set(PREDICTION_KINDS) | set(spec.inputs)
    arrays = {k: v for k, v in call.items() if k in input_names}
    params = {}
    for p in (*spec.params, *spec.extra_params):
        params[p.name] = call.get(p.name, p.default)
    unknown = sorted(set(call) - input_names - set(spec.param_names) - {p.name for p in spec.extra_params}
                     - set(CALL_KEYS) - set(REGULARISATION_KEYS))
    if unknown:
        raise UsageError(f"{spec.name} does not take '{unknown[0]}'" + _param_hint(spec))
    conv = spec.convention(call.get("convention") or spec.home)
    kind = next((k for k in spec.prediction_kinds if arrays.get(k) is not None), None)
    from .frameworks import check_call

    check_call(spec, conv, call, kind)
    if conv.kernel is not None:
        from .frameworks import run as run_convention

        result = run_convention(spec, conv, call, arrays, params, reduction, grad=grad, explain=explain, rows=rows,
                                origins=origins)
        if any(call.get(k) is not None for k in ("l1", "l2")):
            _regularise(result, call, grad)
        return result
    if reduction not in spec.reductions:
        raise UsageError(f"--reduction: {spec.name} takes one of {', '.join(spec.reductions)}; got {reduction!r}")
    params = {p.name: params[p.name] for p in spec.params}
    result = None
    if not explain and (stream or (stream is None and _large(arrays))):
        from .stream import run as run_streaming

        result = run_streaming(spec, arrays, params, reduction, dtype=call.get("dtype") or "float64", dim=call.get("dim"),
                               origins=origins or {}, grad=grad, keep_values=keep_arrays, sink=sink, mode=stream,
                               block_rows=block_rows, progress=progress)
    if result is None:
        prep = prepare(spec, arrays, params, dtype=call.get("dtype") or "float64", dim=call.get("dim"), origins=origins)
        result = evaluate(prep, reduction, grad=grad, explain=explain, rows=rows)
    if any(call.get(k) is not None for k in ("l1", "l2")):
        _regularise(result, call, grad)
    return result


def _large(arrays: Mapping[str, Any]) -> bool:
    """Whether a call might stream (lossctl.stream decides; small calls skip even the import,
    unless ``LOSSCTL_STREAM_MIN_BYTES`` is set: then the engine applies it, however small)."""
    size = sum(getattr(a, "nbytes", 0) for a in arrays.values() if isinstance(a, np.ndarray))
    return size >= 1 << 20 or (size > 0 and "LOSSCTL_STREAM_MIN_BYTES" in os.environ)


def _regularise(result: Result, call: Mapping[str, Any], grad: bool) -> None:
    """Add --l1/--l2 penalties on --params to the reduced loss; their gradients go under ``params``."""
    from .regularisation import DEFAULT_EXCLUDE, penalties

    if call.get("params") is None:
        raise UsageError("--l1/--l2 need --params (the model parameters to penalise)")
    if result.reduction == "none":
        raise UsageError("--l1/--l2 add a penalty to a reduced loss; use --reduction mean or sum")
    named = call["params"]
    if not isinstance(named, Mapping):
        named = {"params": named}
    pen = penalties(named, l1=call.get("l1"), l2=call.get("l2"), exclude=call.get("exclude_params", DEFAULT_EXCLUDE))
    result.data_loss = result.loss
    result.penalties = pen.terms
    result.loss = float(result.loss + pen.total)
    if grad:
        for name, g in pen.grads.items():
            result.grad[name if name == "params" else f"params.{name}"] = g

def _param_hint(spec) -> str:
    names = ", ".join(p.option for p in spec.params)
    return f" (its parameters: {names})" if names else " (it has no parameters)"


def evaluate(prep: Prepared, reduction: str, *, grad: bool = True, explain: bool = False, rows: int = 3) -> Result:
    """Forward, reduction, gradient and derivation for prepared inputs."""
    spec = prep.spec
    with np.errstate(all="ignore"):
        fwd = spec.forward(prep.native, prep.params)
        values = np.asarray(fwd.values)
        denom = _reduction.denominator(reduction, values, fwd.denominator, prep.batch_size)
        # 'mean' of per-value divided losses (CTC: l_n / max(L_n, 1)); the upstream becomes per value.
        divisor = None if reduction != "mean" or fwd.mean_divisor is None else np.asarray(fwd.mean_divisor, dtype=values.dtype)
        reduced = _reduction.reduce(reduction, values if divisor is None else values / divisor, denom)
        upstream = _reduction.upstream(denom)
        if divisor is not None:
            upstream = np.asarray(upstream, dtype=values.dtype) / divisor
        grads = _gradients(prep, upstream) if grad else {}
    per_sample = prep.restore_values(values)
    loss = per_sample if reduction == "none" else float(reduced)
    result = Result(
        loss_name=spec.name, reduction=reduction, kind=prep.kind, loss=loss, per_sample=per_sample,
        grad=grads, denominator=denom, dtype=np.dtype(prep.dtype).name,
    )
    if explain:
        from .explain import derivation

        result.steps, result.shown_rows, result.total_rows = derivation(prep, reduction, values, denom, reduced, rows,
                                                                        mean_divisor=divisor)
    return result


def _gradients(prep: Prepared, upstream: float) -> dict[str, np.ndarray]:
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
