"""The library's front door: :func:`compute` turns a loss call into a :class:`Result`.

The CLI, ``check`` suites and the tests all go through here, so a suite case
and a command line are the same computation:
prepare → forward → reduce → backward (+ conversion chain rule) → steps.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

import numpy as np

from .core.call import compute_keys
from .core.evaluate import Result, evaluate
from .core.prepare import DTYPES, prepare
from .core.registry import PREDICTION_KINDS
from .errors import UsageError, ref
from .losses import registry

__all__ = ["compute", "Result", "registry", "registry_names"]


def registry_names() -> list[str]:
    """The name of every registered loss."""
    return registry().names()


def compute(case: Mapping[str, Any] | None = None, /, *, grad: bool = False, explain: bool = False,
            rows: int = 3, origins: Mapping[str, str] | None = None, keep_arrays: bool = True,
            sink: Any = None, stream: bool | None = None, block_rows: int | None = None,
            progress: Any = None, executor: Any = None, **kwargs: Any) -> Result:
    """Compute a loss call given as a mapping in the check-suite format (or keyword arguments).

    Only the loss and its per-sample values are computed unless ``grad=True`` asks for the
    gradients too (``Result.grad`` is empty otherwise).

    Large inputs of a separable loss are evaluated blockwise on all cores (:mod:`lossctl.core.stream`):
    ``stream`` None decides by size, True forces it where the loss allows, False never;
    ``block_rows`` sets the block size; ``keep_arrays=False`` lets a streamed call drop the
    per-sample values (``Result.per_sample`` is then None) and the gradients that go to ``sink``
    (an :class:`lossctl.io.outstream.OutputStream`, which receives them as they stream);
    ``progress(done_rows, total_rows)`` is called after each block.

    ``executor`` computes the rows elsewhere (``lossctl.backends.dask.DaskExecutor``: a Dask
    cluster): it is called as :func:`lossctl.core.stream.run` is, and gives the same result bit
    for bit (None when the call does not split into rows: it is then evaluated here).

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
    for p in spec.all_params:
        params[p.name] = call.get(p.name, p.default)
    unknown = sorted(set(call) - set(compute_keys(spec)))
    if unknown:
        raise UsageError(_unknown_key(spec, unknown[0]))
    for p in spec.all_params:
        value = params[p.name]
        if p.kind == "int" and isinstance(value, (int, np.integer)) and not isinstance(value, bool) \
                and not -(1 << 63) <= int(value) < (1 << 63):
            raise UsageError(f"{ref(p.name)}: {value} is outside the 64-bit integer range "
                             f"(-9223372036854775808 to 9223372036854775807)")
    conv = spec.convention(call.get("convention") or spec.home)
    from .core.frameworks import check_call

    check_call(spec, conv, call, next((k for k in spec.prediction_kinds if arrays.get(k) is not None), None))
    if executor is not None and conv.kernel is not None:
        raise UsageError(f"{ref('backend')} {getattr(executor, 'name', '')}: the {conv.framework} convention is computed by the "
                         "local backend only")
    if conv.kernel is not None:  # another framework's convention (Keras, optax, scikit-learn)
        from .core.frameworks import run as run_convention

        result = run_convention(spec, conv, call, arrays, params, reduction, grad=grad, explain=explain, rows=rows,
                                origins=origins)
        if any(call.get(k) is not None for k in ("l1", "l2")):
            _regularise(result, call, grad)
        return result
    if reduction not in spec.reductions:
        raise UsageError(f"{ref('reduction')}: {spec.name} takes one of {', '.join(spec.reductions)}; got {reduction!r}")
    if reduction == "mean" and "batchmean" in spec.reductions:
        # torch's kl_div warns here too: 'mean' averages over every element, which is not the divergence
        import warnings

        from .errors import ReductionWarning

        warnings.warn(ReductionWarning(
            f"{ref('reduction')} mean divides by the number of elements, not of samples; {ref('reduction')} "
            f"batchmean gives the {spec.name} divergence per sample (PyTorch warns the same)"), stacklevel=2)
    params = {p.name: params[p.name] for p in spec.params}
    result = None
    if executor is not None:
        if explain:
            raise UsageError(f"{ref('explain')} shows a derivation computed in memory; not with {ref('backend')} "
                             f"{getattr(executor, 'name', 'local')}")
        if spec.batch_axis != 0:
            raise UsageError(f"{ref('backend')}: {spec.name} does not split into rows; only the local backend computes it")
        result = executor(spec, arrays, params, reduction, dtype=call.get("dtype") or "float64", dim=call.get("dim"),
                          origins=origins or {}, grad=grad, keep_values=keep_arrays, sink=sink, progress=progress)
    if result is None and executor is None and not explain and spec.token_path is not None and stream is not False and call.get("dtype", "float64") in DTYPES:
        token = spec.token_path(arrays, params, reduction, DTYPES[call.get("dtype", "float64")], call.get("dim"), grad)
        if token is not None:
            result = Result(loss_name=spec.name, reduction=reduction, kind="logits", dtype=call.get("dtype", "float64"),
                            batch_axis=spec.batch_axis or 0, **token)
    if result is None and executor is None and not explain and (stream or (stream is None and _large(arrays))):
        from .core.stream import run as run_streaming

        result = run_streaming(spec, arrays, params, reduction, dtype=call.get("dtype") or "float64", dim=call.get("dim"),
                               origins=origins or {}, grad=grad, keep_values=keep_arrays, sink=sink, mode=stream,
                               block_rows=block_rows, progress=progress)
    if result is None:
        prep = prepare(spec, arrays, params, dtype=call.get("dtype") or "float64", dim=call.get("dim"), origins=origins)
        result = evaluate(prep, reduction, grad=grad, explain=explain, rows=rows)
    result.class_axis = _class_axis(spec, result.kind, arrays.get(result.kind), call.get("dim"))
    if any(call.get(k) is not None for k in ("l1", "l2")):
        _regularise(result, call, grad)
    return result


def _class_axis(spec, kind: str, pred: Any, dim: int | None) -> int | None:
    """The axis of ``pred`` (and of its gradient) holding the classes: ``dim``, else 1 (PyTorch's
    rule); None where the per-sample values keep every axis of the prediction."""
    ndim = len(getattr(pred, "shape", np.shape(pred))) if pred is not None else 0
    if not spec.has_class_axis(kind) or ndim < 2:
        return None
    return (1 if dim is None else int(dim)) % ndim


def _large(arrays: Mapping[str, Any]) -> bool:
    """Whether a call might stream (lossctl.core.stream decides; small calls skip even the import,
    unless ``LOSSCTL_STREAM_MIN_BYTES`` is set: then the engine applies it, however small)."""
    size = sum(getattr(a, "nbytes", 0) for a in arrays.values()
               if isinstance(a, np.ndarray) or hasattr(a, "widen") or getattr(a, "lazy_rows", False))
    return size >= 1 << 20 or (size > 0 and "LOSSCTL_STREAM_MIN_BYTES" in os.environ)


def _regularise(result: Result, call: Mapping[str, Any], grad: bool) -> None:
    """Add the l1/l2 penalties on ``params`` to the reduced loss; their gradients go under ``params``."""
    from .core.regularisation import DEFAULT_EXCLUDE, penalties

    if call.get("params") is None:
        raise UsageError(f"{ref('l1')}/{ref('l2')} need {ref('params')} (the model parameters to penalise)")
    if result.reduction == "none":
        raise UsageError(f"{ref('l1')}/{ref('l2')} add a penalty to a reduced loss; use {ref('reduction')} mean or sum")
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

def _unknown_key(spec, key: str) -> str:
    """A key ``compute`` does not take, in Python's terms: the input or parameter meant, and the list."""
    import difflib

    inputs = list(spec.inputs)
    params = [p.name for p in spec.all_params]
    for what, names in (("input", inputs), ("parameter", params)):
        close = difflib.get_close_matches(str(key), names, n=1, cutoff=0.75)
        if close:
            return f"unknown {what} '{key}'; did you mean '{close[0]}'? {what}s: {', '.join(names)}"
    return f"{spec.name} does not take '{key}'" + _param_hint(spec)


def _param_hint(spec) -> str:
    names = ", ".join(ref(p.name) for p in spec.params)
    return f" (its parameters: {names})" if names else " (it has no parameters)"


