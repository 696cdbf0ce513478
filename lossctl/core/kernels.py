"""The compiled fused row kernels (the optional C extension ``lossctl._kernels``).

The streaming engine (:mod:`lossctl.stream`) hands a loss's ``compiled_forward`` one block of
rows of the prediction exactly as it was given (float64, float32, float16, or bfloat16 bits
from a safetensors file), and gets back, from one pass over the block:

* the per-sample values, float64: ``l_n = −w[y_n]·log_softmax(x_n)[y_n]`` for ``ce`` on
  logits, ``−w[y_n]·x_n[y_n]`` for ``nll``/``ce`` on log-probabilities (0 where
  ``y_n = ignore_index``), ``w·[pw·y·softplus(−z) + (1−y)·softplus(z)]`` for ``bce-logits``;
* Σ l and Σ w[y] added exactly into :mod:`lossctl.exactsum` accumulator states, so a reduced
  loss is the correctly rounded sum of the per-sample values however the rows are blocked;
* whether the block holds NaN or infinite values (then the block is checked again the NumPy
  way, so the warning names the same count and first position as without the extension).

Every entry is widened to float64 as it is read and all arithmetic is float64 (the same
TwoSum-corrected shift, compensated row sum and ``log1p`` as :mod:`lossctl.numerics`), so the
values are those of the NumPy kernels to within a few ulp, with the same NaN/inf results.
When the extension is in use, every call these kernels take gets its per-sample values from
them (in memory, :mod:`lossctl.core.evaluate`, and streamed, with or without gradients), so a
call gives the same numbers bit for bit however it is evaluated; each row's value depends on
that row alone, never on the block it came in. Gradients always come from the NumPy kernels.

The extension is loaded on first use, never at start-up. ``LOSSCTL_PURE=1`` in the
environment disables it (the NumPy kernels run everywhere); so does a failed build.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import exactsum

_STATE: dict[str, Any] = {}

#: input formats the kernels read, by NumPy dtype name (bfloat16: raw bits)
FORMATS = {"float64": 0, "float32": 1, "float16": 2, "bfloat16": 3}


def pure() -> bool:
    """Whether ``LOSSCTL_PURE`` asks for the NumPy kernels only."""
    return os.environ.get("LOSSCTL_PURE", "").strip().lower() not in ("", "0", "false", "no")


def compiled():
    """The extension module, or None (not built, not loadable, or ``LOSSCTL_PURE=1``)."""
    if pure():
        return None
    if "module" not in _STATE:
        try:
            from .. import _kernels
        except ImportError as e:  # not built (no compiler at install time) or not loadable
            _kernels = None
            _STATE["error"] = str(e)
        _STATE["module"] = _kernels
    return _STATE["module"]


def describe() -> str:
    """Which kernels are in use, for ``lossctl --version``."""
    if pure():
        return "NumPy (LOSSCTL_PURE is set)"
    mod = compiled()
    if mod is None:
        return f"NumPy (the C extension lossctl._kernels is not available: {_STATE.get('error', 'not built')})"
    return f"compiled C, fused one-pass rows ({mod.isa()}); NumPy for gradients"


def input_format(a: Any) -> tuple[np.ndarray, int] | None:
    """``(buffer, format code)`` for a prediction the kernels read as it is, else None.

    A bfloat16 tensor arrives as raw ``uint16`` bits (an encoded array with
    ``encoding == "bfloat16"``, or an ``ml_dtypes.bfloat16`` array); every other accepted
    input is a C-contiguous float16/32/64 array.
    """
    if getattr(a, "encoding", None) == "bfloat16" and isinstance(getattr(a, "bits", None), np.ndarray):
        bits = a.bits
        return (bits, 3) if bits.dtype.itemsize == 2 and bits.flags.c_contiguous else None
    if not isinstance(a, np.ndarray) or not a.flags.c_contiguous:
        return None
    code = FORMATS.get(a.dtype.name)
    if code is None or not a.dtype.isnative:
        return None
    return (a.view(np.uint16) if code == 3 else a), code


def widened(a: Any) -> np.ndarray:
    """The prediction's values as float64 (for the NumPy-side checks of a flagged block)."""
    if getattr(a, "encoding", None) is not None and hasattr(a, "bits"):
        return np.asarray(a, dtype=np.float64)
    if isinstance(a, np.ndarray) and a.dtype.name == "bfloat16":
        a = a.view(np.uint16)
        return (a.astype(np.uint32) << 16).view(np.float32).astype(np.float64)
    return np.asarray(a, dtype=np.float64)


@dataclass
class Block:
    """What a compiled kernel gives for one block of rows."""

    values: np.ndarray  # float64 per-sample values, one row per input row
    total: np.ndarray  # exactsum state of Σ values
    denominator: np.ndarray | None  # exactsum state of Σ w[y]; None: the mean divides by the count
    nonfinite: bool  # NaN/±inf entries in the prediction (the caller checks them the NumPy way)


def ce_rows(raw: Any, target: np.ndarray, weight: np.ndarray | None, ignore_index: int, *,
            log_probs: bool, out: np.ndarray | None = None) -> Block | None:
    """Cross-entropy (logits) or NLL (``log_probs``) of a 2-D block, with class-index targets
    (already validated: each in range or ``ignore_index``); None when the kernels cannot
    take these inputs."""
    mod = compiled()
    fmt = input_format(raw)
    if mod is None or fmt is None:
        return None
    x, code = fmt
    if x.ndim != 2 or target.shape != x.shape[:1] or x.shape[1] < 1:
        return None
    n, c = x.shape
    t = np.ascontiguousarray(target, dtype=np.int64)
    w = None
    if weight is not None:
        w = np.ascontiguousarray(weight, dtype=np.float64)
        if w.shape != (c,):
            return None
    if out is None:
        out = np.empty(n, dtype=np.float64)
    total, den = exactsum.zeros(), exactsum.zeros()
    bad, neginf = mod.ce_rows(x, code, n, c, t, w, int(ignore_index), bool(log_probs), out, total, den)
    flagged = bad > 0 or (neginf > 0 and not log_probs)
    return Block(out, exactsum.normalize(total), exactsum.normalize(den), flagged)


def _period(p: Any, shape: tuple[int, ...]) -> np.ndarray | None | bool:
    """A broadcast parameter as the flat float64 period it repeats with along a C-order
    array of ``shape`` (its shape, leading 1s dropped, must be a suffix of ``shape``);
    None for no parameter; False when it does not repeat that way."""
    if p is None:
        return None
    a = np.asarray(p, dtype=np.float64)
    dims = list(a.shape)
    while dims and dims[0] == 1:
        dims.pop(0)
    if tuple(dims) != tuple(shape[len(shape) - len(dims):]) or len(dims) > len(shape):
        return False
    return np.ascontiguousarray(a.reshape(-1))


def bce_logits(raw: Any, target: np.ndarray, weight: Any, pos_weight: Any) -> Block | None:
    """Binary cross-entropy with logits, elementwise; None when the kernels cannot take it."""
    mod = compiled()
    fmt = input_format(raw)
    if mod is None or fmt is None:
        return None
    z, code = fmt
    if target.shape != z.shape or target.dtype != np.float64:
        return None
    w, pw = _period(weight, z.shape), _period(pos_weight, z.shape)
    if w is False or pw is False:
        return None
    y = np.ascontiguousarray(target)
    out = np.empty(z.shape, dtype=np.float64)
    total = exactsum.zeros()
    bad, neginf = mod.bce_logits(z, code, z.size, y, w, pw, out, total)
    return Block(out, exactsum.normalize(total), None, bad > 0 or neginf > 0)


def row_stats(block: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """``(m, s)`` of each row of a 2-D block of logits as given (float64/32/16 or bfloat16 bits;
    rows may be a column slice of a larger array): ``m = max_j z_j``,
    ``s = Σ_{j≠argmax} exp(z_j − m)`` in float64, from the compiled row kernel of
    :func:`ce_rows`. None when the kernels cannot take the block (not loaded, fewer than 8
    columns, a layout they do not read) or a row holds NaN, +inf or only −inf (the caller's
    own kernel then gives those rows their exact NaN/inf semantics)."""
    mod = compiled()
    if mod is None:
        return None
    if getattr(block, "encoding", None) == "bfloat16" and isinstance(getattr(block, "bits", None), np.ndarray):
        x, code = block.bits, 3
    elif isinstance(block, np.ndarray):
        code = FORMATS.get(block.dtype.name)
        if code is None or not block.dtype.isnative:
            return None
        x = block.view(np.uint16) if code == 3 else block
    else:
        return None
    if x.ndim != 2 or x.shape[1] < 8 or x.strides[1] != x.itemsize or x.strides[0] < x.shape[1] * x.itemsize:
        return None
    m, s = np.empty(x.shape[0]), np.empty(x.shape[0])
    if x.shape[0] and mod.row_stats(x, code, m, s):
        return None
    return m, s
