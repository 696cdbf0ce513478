"""The ``lm`` and ``linear-ce`` calls: sources in, results out (the library's front door for token batches).

A call is a mapping by key, as a check-suite case or the command line gives it: array inputs
are arrays or source texts (``FILE.safetensors:NAME``, ``FILE.npy``, literals), read lazily
(bfloat16 stays raw bits, files stay memory-mapped) so the cores in :mod:`lossctl.losses.lm`
and :mod:`lossctl.losses.linear_ce` stream them block by block; pages of a memory-mapped
input are dropped from the resident set as soon as their block is done.

>>> r = lm({"logits": [[[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]]], "labels": [[0, 1]]})
>>> r.tokens, round(r.perplexity, 6)
(2, 1.485119)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .errors import InputError, InvalidInput, UsageError, ref

#: key -> default, for every key of an ``lm`` call (inputs first)
LM_INPUTS = ("logits", "labels", "attention_mask", "bytes")
LM_PARAMS = {"shift": False, "ignore_index": -100, "normalize": "tokens", "dtype": "float64"}
#: the label input's other names (as everywhere else, the target)
LABEL_ALIASES = ("target",)

LCE_INPUTS = ("hidden", "lm_head", "lm_head_bias", "target")
LCE_PARAMS = {"weight": None, "ignore_index": None, "label_smoothing": 0.0, "reduction": "mean", "dtype": "float64"}

_DTYPES = {"float64": np.float64, "float32": np.float32}


def _origin(origins: Mapping[str, str] | None, key: str) -> str:
    return (origins or {}).get(key, ref(key))


def _read(value: Any, key: str, origins, base: Path | None) -> Any:
    """An array input: as given, or read from its source text (lazily: memory maps, raw bfloat16)."""
    if isinstance(value, (str, os.PathLike)):
        from .io.readers import read_array
        from .io.sources import parse_source

        return read_array(parse_source(str(value), base), _origin(origins, key), lazy=True)
    if hasattr(value, "shape"):
        return value
    try:
        return np.asarray(value)
    except (ValueError, TypeError):
        raise InputError(f"{_origin(origins, key)}: expected an array of numbers") from None


def _dtype(call: Mapping[str, Any]):
    name = call.get("dtype") or "float64"
    if name not in _DTYPES:
        raise UsageError(f"{ref('dtype')}: expected float64 or float32, got {name!r}")
    return _DTYPES[name]


def _split(call: Mapping[str, Any], inputs, params: Mapping[str, Any], name: str, aliases=()) -> tuple[dict, dict]:
    call = dict(call)
    call.pop("loss", None)
    for alias in aliases:
        if alias in call:
            if call.get(inputs[1]) is not None and call[alias] is not None:
                raise UsageError(f"give {ref(inputs[1])} or {ref(alias)}, not both (they are the same input)")
            call[inputs[1]] = call.pop(alias)
    unknown = sorted(set(call) - set(inputs) - set(params))
    if unknown:
        raise UsageError(f"{name} does not take '{unknown[0]}' (its keys: {', '.join(list(inputs) + list(params))})")
    x = {k: call[k] for k in inputs if call.get(k) is not None}
    p = {k: call.get(k, default) for k, default in params.items()}
    return x, p


def _release_pages(rows: Any):
    """An ``on_block(r0, r1)`` that drops the used rows of a memory-mapped input from memory."""
    bits = getattr(rows, "bits", rows)
    if not isinstance(bits, np.ndarray):
        return None
    from .core.stream import Pages

    pages = Pages([bits])
    return pages.release if pages.maps else None


def lm(call: Mapping[str, Any] | None = None, /, *, grad: bool = False, per_sample: bool = False,
       explain: bool = False, origins: Mapping[str, str] | None = None, base: Path | None = None,
       grad_out: Any = None, threads: int | None = None, executor: Any = None, **kwargs: Any):
    """Evaluate an ``lm`` call (keys: logits, labels (or target), attention_mask, bytes, shift,
    ignore_index, normalize, dtype); returns a :class:`lossctl.losses.lm.LMResult`.
    ``executor`` (``lossctl.backends.dask.DaskExecutor``) computes the tokens' NLL (and the
    gradient: into ``grad_out``, or as shards next to the executor's ``grad_output``) elsewhere;
    the derivation of one token (``explain``) is then computed here from that token's row."""
    from .losses import lm as core
    from .core.stream import threads as default_threads

    call = {**(call or {}), **kwargs}
    x, params = _split(call, LM_INPUTS, LM_PARAMS, "lm", LABEL_ALIASES)
    for key in ("logits", "labels"):
        if key not in x:
            raise UsageError(f"lm needs {ref(key)}" + (f" (or {ref('target')})" if key == "labels" else ""))
    dtype = _dtype(params)
    x = {k: _read(v, k, origins, base) for k, v in x.items()}
    try:
        logits = x["logits"]
        rows = logits.reshape(-1, logits.shape[-1]) if np.ndim(logits) in (2, 3) and hasattr(logits, "reshape") else None
        result = core.evaluate(x, params, dtype=dtype, grad=grad, per_sample=per_sample, explain=explain,
                               grad_out=grad_out, threads=threads or default_threads(),
                               on_block=_release_pages(rows) if rows is not None else None,
                               rows_nll=getattr(executor, "token_nll", None))
    except InvalidInput as e:
        if e.name == "normalize":  # an option's value, not an input's
            raise UsageError(f"{ref('normalize')}: {e.message}") from None
        origin = _origin(origins, e.name) if e.name in LM_INPUTS else ref(e.name)
        raise InputError(f"{origin}: {e.message}") from None
    if "nonfinite" in result.extras:  # as every loss warns about NaN/inf inputs (strict: exit 3)
        from .core.prepare import warn_nonfinite

        warn_nonfinite(_origin(origins, "logits"), *result.extras["nonfinite"])
    return result


def linear_ce(call: Mapping[str, Any] | None = None, /, *, grad: bool = False,
              origins: Mapping[str, str] | None = None, base: Path | None = None, executor: Any = None,
              **kwargs: Any):
    """Evaluate a ``linear-ce`` call (keys: hidden, lm_head, lm_head_bias, target, weight,
    ignore_index, label_smoothing, reduction, dtype); returns a
    :class:`lossctl.losses.linear_ce.LinearCEResult`. ``executor``
    (``lossctl.backends.dask.DaskExecutor``) computes it elsewhere, with the same numbers."""
    from .losses import linear_ce as core

    call = {**(call or {}), **kwargs}
    x, params = _split(call, LCE_INPUTS, LCE_PARAMS, "linear-ce")
    for key in ("hidden", "lm_head", "target"):
        if key not in x:
            raise UsageError(f"linear-ce needs {ref(key)}")
    dtype = _dtype(params)
    x = {k: _read(v, k, origins, base) for k, v in x.items()}
    if params.get("weight") is not None:
        params["weight"] = np.asarray(_read(params["weight"], "weight", origins, base), dtype=np.float64)
    try:
        if executor is not None:
            result = executor.linear_ce(x, params, reduction=params["reduction"], dtype=dtype, grad=grad)
        else:
            result = core.evaluate(x, params, reduction=params["reduction"], dtype=dtype, grad=grad)
    except InvalidInput as e:
        origin = _origin(origins, e.name) if e.name in LCE_INPUTS or e.name == "weight" else ref(e.name)
        raise InputError(f"{origin}: {e.message}") from None
    with np.errstate(invalid="ignore"):
        finite = np.all(np.isfinite(np.asarray(result.per_sample, dtype=np.float64)))
    if not finite:  # NaN/inf in an input reach the values: name them as every loss does (strict: exit 3)
        from .core.prepare import check_finite

        for key in ("hidden", "lm_head", "lm_head_bias"):
            if key in x:
                check_finite(_origin(origins, key), np.asarray(x[key]))
        if params.get("weight") is not None:
            check_finite(_origin(origins, "weight"), params["weight"])
    return result


def linear_ce_result(call: Mapping[str, Any] | None = None, /, *, grad: bool = False,
                     origins: Mapping[str, str] | None = None, base: Path | None = None, executor: Any = None,
                     **kwargs: Any):
    """:func:`linear_ce` as a :class:`lossctl.api.Result` (loss_name ``linear-ce``, input ``hidden``),
    so that it renders and checks as every loss does."""
    from .core.evaluate import Result

    r = linear_ce(call, grad=grad, origins=origins, base=base, executor=executor, **kwargs)
    return Result(loss_name="linear-ce", reduction=r.reduction, kind="hidden", loss=r.loss, per_sample=r.per_sample,
                  grad=r.grad, denominator=r.denominator, dtype=r.dtype)


# -- check suites -------------------------------------------------------------------------------
#
# A suite case ``loss: lm`` or ``loss: linear-ce`` takes the command's keys in snake case; these
# declarations tell the suite loader which keys those are (they are not registered losses: the
# commands are their own, streamed, and take no reduction or prediction kinds but these).


def _not_a_kernel(*_: Any) -> Any:
    raise NotImplementedError("computed by lossctl.tokens, not through the loss engine")


# The shared keys (lossctl.core.call) each command takes; the rest (conventions, sample weights,
# regularisation, triage views) are the loss engine's.
_COMMAND_KEYS = ("stdin_format", "dtype", "strict", "format", "json", "per_sample", "grad", "rows", "output",
                 "force", "expect", "expect_per_sample", "expect_grad", "rtol", "atol", "precision")
LM_KEYS = _COMMAND_KEYS + ("explain", "html", "backend", "scheduler", "chunk_rows")
LCE_KEYS = ("reduction",) + _COMMAND_KEYS + ("backend", "scheduler", "chunk_rows")


def _command_specs() -> dict[str, Any]:
    from .core.registry import LABEL_SMOOTHING, LossSpec, Param

    dtype_help = "Compute in float64 (default) or float32."
    lm_spec = LossSpec(
        name="lm", mirrors="torch.nn.functional.cross_entropy on the flattened, shifted, masked token batch",
        summary="Token loss of a language-model batch.", formula="Σ NLL / n over counted tokens",
        kinds={"logits": None}, aux_inputs=("labels",), forward=_not_a_kernel, backward=_not_a_kernel,
        steps=_not_a_kernel,
        params=(Param("attention_mask", "array", None,
                      "1 where a position is real, 0 for padding (the shape of the labels)."),
                Param("bytes", "array", None, "UTF-8 bytes of the text: a total, or one count per sequence (B,)."),
                Param("shift", "bool", False,
                      "Position t predicts label t+1 (causal LM): logits[..., :-1, :], labels[..., 1:]."),
                Param("ignore_index", "int", -100, "Label value that does not count."),
                Param("normalize", "text", "tokens", "Denominator: tokens (counted tokens), sequences (mean of "
                                                     "per-sequence means), global:N (Σ NLL / N).")),
        target="none", reductions=("mean",), batch_axis=None, command_keys=LM_KEYS,
        input_aliases={"labels": ("target",)},
        input_help={"logits": "Logits (B, T, V) or (T, V), vocabulary last.", "labels": "Token ids (B, T) or (T,)."},
        key_help={"dtype": dtype_help, "force": f"Allow {ref('output')} or {ref('html')} to replace an existing file.",
                  "per_sample": "Also show the per-sequence table (and per-token NLL in JSON) and "
                                "mean_sequence_perplexity.",
                  "grad": "Also give d(loss)/d(logits), as torch autograd gives it.",
                  "explain": "Also show the derivation of one token's NLL, then the masking, count and mean.",
                  "rows": "Sequences shown in the per-sequence table.",
                  "output": f"Write the per-token NLL (and with {ref('grad')} the gradient, streamed: never whole "
                            "in memory) to .npy, .npz, .csv or .safetensors.",
                  "expect_per_sample": "Expected per-token NLL (an array source).",
                  "expect_grad": "Expected gradient of the logits (an array source).",
                  "html": "Also write the batch's numbers, one token's derivation and the per-sequence table as "
                          f"one self-contained HTML page ({ref('force')} to replace a file)."})
    lce_spec = LossSpec(
        name="linear-ce", mirrors="torch.nn.functional.linear_cross_entropy",
        summary="Fused linear cross-entropy.", formula="cross_entropy(H·Wᵀ + b, y)",
        kinds={"hidden": None}, extra_inputs=("lm_head",), forward=_not_a_kernel, backward=_not_a_kernel,
        steps=_not_a_kernel,
        params=(Param("lm_head_bias", "array", None, "The LM head's bias b (V,)."),
                Param("weight", "array", None, "Rescaling weight, one per class (V,)."),
                Param("ignore_index", "int", None, "Target value that is ignored (default: none, -100 for class "
                                                   "indices)."),
                LABEL_SMOOTHING),
        target="custom", batch_axis=None, command_keys=LCE_KEYS,
        input_help={"hidden": "Hidden states H (N, D).", "lm_head": "The LM head's weight W (V, D).",
                    "target": "Class indices (N,) or probabilities (N, V)."},
        key_help={"dtype": dtype_help, "force": f"Allow {ref('output')} to replace an existing file.",
                  "grad": "Also give d(loss)/d(hidden, lm_head, lm_head_bias), as torch autograd.",
                  "expect_grad": "Expected gradient of the hidden states (an array source)."})
    return {"lm": lm_spec, "linear-ce": lce_spec}


_SPECS: dict[str, Any] | None = None


#: the token-batch commands that are calls like a loss's (suites, record, gradcheck)
COMMAND_NAMES = ("lm", "linear-ce")


def command_spec(name: str):
    """The key declaration of the ``lm`` / ``linear-ce`` command (its options, a check-suite
    case's keys), or None."""
    global _SPECS
    if name not in COMMAND_NAMES:
        return None
    if _SPECS is None:
        _SPECS = _command_specs()
    return _SPECS[name]


def suite_result(call: Mapping[str, Any], *, grad: bool = False, origins: Mapping[str, str] | None = None):
    """A call of ``lm`` or ``linear-ce`` (a suite case, ``record``, ``gradcheck``) as a
    :class:`lossctl.api.Result`: ``loss``, ``per_sample`` (per-token NLL for lm) and ``grad``."""
    call = dict(call)
    name = call.pop("loss")
    if name == "linear-ce":
        return linear_ce_result(call, grad=grad, origins=origins)
    from .core.evaluate import Result

    call.pop("reduction", None)
    r = lm(call, grad=grad, per_sample=True, origins=origins)
    return Result(loss_name="lm", reduction="mean", kind="logits", loss=r.loss, per_sample=r.per_token,
                  grad={"logits": r.grad} if r.grad is not None else {}, denominator=r.denominator, dtype=r.dtype)
