"""Log-sum-exp over a vocabulary in blocks (online softmax): the row kernel of ``lm`` and ``linear-ce``.

For one row z of V logits, split into blocks z = [z⁽¹⁾, z⁽²⁾, ...], each block gives

    m = max z⁽ᵏ⁾,   s = Σ_{j ≠ argmax} exp(z⁽ᵏ⁾_j − m)      (the maximum's own exp(0) = 1 left out)

and two blocks combine (m₁ ≥ m₂) as  m = m₁,  s = s₁ + (1 + s₂)·exp(m₂ − m₁),  so that after
the last block  log Σ_j exp(z_j) = m + log1p(s)  without the row ever being whole in memory.
Leaving the maximum's term out keeps ``log1p`` exact for confident rows (s ≪ 1), as
:func:`lossctl.core.numerics.log_softmax` does.

:func:`block_stats` is the swappable row kernel: ``(block, compute dtype, per_sample) -> (m, s)``
for a 2-D block of any float dtype (float16, bfloat16, float32, float64), widened here, one
block at a time, into reused scratch buffers. A compiled kernel with the same signature can
replace it (:data:`ROW_KERNEL`).
"""

from __future__ import annotations

import threading

import numpy as np

_SCRATCH = threading.local()

def scratch(slot: int, shape: tuple[int, ...], dtype) -> np.ndarray:
    """A per-thread reusable buffer (contents undefined)."""
    bufs = getattr(_SCRATCH, "bufs", None)
    if bufs is None:
        bufs = _SCRATCH.bufs = {}
    size = int(np.prod(shape, dtype=np.int64))
    key = (slot, np.dtype(dtype).str)
    buf = bufs.get(key)
    if buf is None or buf.size < size:
        buf = bufs[key] = np.empty(max(size, 1), dtype=dtype)
    return buf[:size].reshape(shape)


def is_bfloat16(dtype) -> bool:
    return np.dtype(dtype).name == "bfloat16"


def narrow_view(block) -> np.ndarray:
    """The block as a NumPy float array without widening to the compute dtype: bfloat16 bits
    become float32 exactly (the upper half of a float32), float16/32/64 are returned as they are.

    ``block`` is a NumPy array (bfloat16 as a ``bfloat16`` dtype) or an encoded array of raw
    bits: an object with ``bits`` and ``encoding`` (e.g. a memory-mapped safetensors BF16
    tensor); other encodings decode through their own ``__array__``.
    """
    encoding = getattr(block, "encoding", None)
    if encoding is not None and encoding != "bfloat16":
        return np.asarray(block)
    if encoding == "bfloat16" or is_bfloat16(block.dtype):
        bits = block.bits if encoding is not None else block.view(np.uint16)
        out = scratch(20, bits.shape, np.uint32)
        np.left_shift(bits, 16, out=out, dtype=np.uint32)
        return out.view(np.float32)
    return np.asarray(block)


def widen(block, dtype, slot: int = 21) -> np.ndarray:
    """``block`` in the compute dtype (exactly: every narrower float widens without rounding),
    in a reused buffer unless it already is that dtype."""
    block = narrow_view(block)
    if block.dtype == dtype:
        return block
    out = scratch(slot, block.shape, dtype)
    np.copyto(out, block, casting="unsafe")
    return out


def block_stats(block, dtype=np.float64, per_sample: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(m, s) of each row of a 2-D block: m = max_j z_j, s = Σ_{j≠argmax} exp(z_j − m), in ``dtype``.

    z − m is exact (float16/bfloat16/float32 values widened to float64 differ by at most 53
    bits when their magnitudes are within 2²⁸ of each other; otherwise TwoSum recovers the
    rounding error, d + d_lo = z − m, and exp(d + d_lo) ≈ exp(d)·(1 + d_lo)), each term is
    within an ulp or two, and the row sum is a plain float64 sum. One arithmetic for every
    call, so a value is the same bit for bit whether or not per-sample values are wanted
    (``per_sample`` is accepted for kernels that could use it).

    Rows whose maximum is not finite give m = that value and s = NaN for +inf/NaN maxima,
    s = −1 for an all −inf row (so m + log1p(s) is −inf, as ``torch.logsumexp``).
    """
    narrow = narrow_view(block)
    n, v = narrow.shape
    if n == 0 or v == 0:
        return np.full(n, -np.inf, dtype=dtype), np.full(n, -1.0, dtype=dtype)
    arg = np.argmax(narrow, axis=1)  # on the narrow values: cheaper, and the same position
    rows = np.arange(n)
    m = narrow[rows, arg].astype(dtype)
    if not np.all(np.isfinite(m)):
        return _stats_nonfinite(widen(block, dtype), dtype)
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        e = scratch(22, (n, v), dtype)
        if _shift_is_exact(narrow, dtype):
            # the cast to the compute dtype happens inside the subtraction (exact either way)
            np.subtract(narrow, m[:, None], out=e, dtype=dtype)
            np.exp(e, out=e)
        else:
            z = widen(block, dtype) if narrow.dtype != dtype else narrow
            np.subtract(z, m[:, None], out=e)
            # TwoSum(z, −m): d + d_lo = z − m exactly; exp(d + d_lo) ≈ exp(d)·(1 + d_lo)
            t = np.subtract(e, z, out=scratch(23, (n, v), dtype))
            d_lo = np.subtract(e, t, out=scratch(24, (n, v), dtype))
            np.subtract(z, d_lo, out=d_lo)
            t += m[:, None]
            d_lo -= t
            np.exp(e, out=e)
            d_lo *= e
            e += d_lo
        e[rows, arg] = 0.0
        return m, np.einsum("ij->i", e)


def _shift_is_exact(narrow: np.ndarray, dtype) -> bool:
    """Whether z − m is exact in ``dtype`` for every pair of entries: values of at most 24
    significant bits (float16/bfloat16/float32) whose magnitudes are within 2²⁸ of each other
    (over the nonzero entries) differ by a number of at most 53 bits."""
    if np.dtype(dtype) != np.float64 or narrow.dtype.itemsize > 4:
        return False
    hi = max(abs(float(narrow.max())), abs(float(narrow.min())))
    if not np.isfinite(hi):
        return False
    a = np.abs(narrow, out=scratch(25, narrow.shape, narrow.dtype))
    lo = float(a.min())
    if lo == 0:  # 0 − m is exact: look at the nonzero entries only
        lo = float(np.min(a, where=a > 0, initial=np.inf))
    return hi == 0 or hi < lo * 2.0 ** 28


def _stats_nonfinite(z: np.ndarray, dtype) -> tuple[np.ndarray, np.ndarray]:
    """block_stats for blocks with a non-finite row maximum (slow path, exact semantics)."""
    n = z.shape[0]
    arg = np.argmax(z, axis=1)
    rows = np.arange(n)
    m = z[rows, arg].astype(dtype)
    finite = np.isfinite(m)
    shift = np.where(finite, m, 0.0)
    with np.errstate(over="ignore", invalid="ignore"):
        e = np.exp(z - shift[:, None])
        e[rows, arg] = 0.0
        s = e.sum(axis=1)
    s = np.where(finite, s, np.where(m == -np.inf, -1.0, np.nan)).astype(dtype)
    # a NaN anywhere in a row makes torch's log-sum-exp NaN
    has_nan = np.isnan(z).any(axis=1)
    s[has_nan] = np.nan
    return m, s


def fast_block_stats(block, dtype=np.float64, per_sample: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """:func:`block_stats` from the compiled row kernel (:func:`lossctl.core.kernels.row_stats`:
    the same m, s to a few ulp, in one pass over the block as given, without the GIL) when the
    extension is in use and takes the block (finite rows); else :func:`block_stats`.

    The compiled kernel computes in float64 whatever the compute dtype: for a float32 call its
    (m, s) are float64 (within an ulp of the exact sums, tighter than float32 arithmetic; the
    caller rounds the values it derives from them to float32)."""
    if np.dtype(dtype) in (np.float64, np.float32):
        from ..core.kernels import row_stats

        got = row_stats(block)
        if got is not None:
            return got
    return block_stats(block, dtype, per_sample)


#: The row kernel the streaming loops call.
ROW_KERNEL = fast_block_stats


def combine(m1: np.ndarray, s1: np.ndarray, m2: np.ndarray, s2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The (m, s) of two blocks of the same rows: m = max(m₁, m₂); the other block's terms,
    1 + s (its own maximum's term included), are scaled by exp(its m − m)."""
    with np.errstate(invalid="ignore", over="ignore"):
        first = m1 >= m2
        m = np.where(first, m1, m2)
        s = np.where(first, s1 + (1.0 + s2) * np.exp(m2 - m1), s2 + (1.0 + s1) * np.exp(m1 - m2))
        # ±inf maxima: exp(inf − inf) is NaN; take the block with the larger maximum alone,
        # as a one-block row would (an all −inf pair stays s = −1).
        bad = ~np.isfinite(m1) | ~np.isfinite(m2)
        if np.any(bad):
            alone = np.where(first, s1, s2)
            both_neg_inf = (m1 == -np.inf) & (m2 == -np.inf)
            s = np.where(bad, np.where(both_neg_inf, -1.0, alone), s)
            s = np.where(np.isnan(m1) | np.isnan(m2) | np.isnan(s1) | np.isnan(s2), np.nan, s)
            m = np.where(np.isnan(m1) | np.isnan(m2), np.nan, m)
    return m, s


def logsumexp_from(m: np.ndarray, s: np.ndarray) -> np.ndarray:
    """log Σ exp(z) = m + log1p(s); +inf for a +inf maximum, −inf for an all −inf row."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = m + np.log1p(s)
    return np.where(m == np.inf, np.inf, out)


def row_logsumexp(block_of, n_cols: int, col_block: int, dtype=np.float64, per_sample: bool = True) -> np.ndarray:
    """log Σ_j exp(z_j) for the rows of a logits matrix given by column blocks:
    ``block_of(c0, c1)`` returns the (n, c1 − c0) block of columns c0..c1."""
    m = s = None
    for c0 in range(0, n_cols, col_block):
        bm, bs = ROW_KERNEL(block_of(c0, min(c0 + col_block, n_cols)), dtype, per_sample)
        m, s = (bm, bs) if m is None else combine(m, s, bm, bs)
    return logsumexp_from(m, s)
