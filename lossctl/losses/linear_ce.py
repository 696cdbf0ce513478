"""Fused linear cross-entropy: cross_entropy(H·Wᵀ + b, y) without the (N, V) logits.

Mirrors ``torch.nn.functional.linear_cross_entropy(input, linear_weight, target, *, linear_bias,
weight, reduction, ignore_index, label_smoothing)`` (torch 2.13), defined there as
``cross_entropy(linear(input, linear_weight, linear_bias), target, ...)``.

With z = H·Wᵀ + b (H: (N, D) hidden states, W: (V, D) the LM head, b: (V,)), class weights w,
smoothing ε over C = V classes and lse_n = log Σ_c exp(z_nc):

    index target y (v_n = [y_n ≠ ignore_index], w_n = w[y_n]·v_n):
        l_n = (1−ε)·w_n·(lse_n − z_{n,y_n}) + (ε/C)·v_n·(lse_n·Σ_c w_c − Σ_c w_c·z_nc)
        'mean' divides by Σ_n w_n
    probability target t (t' = (1−ε)·t + ε/C):
        l_n = lse_n·Σ_c w_c·t'_nc − Σ_c w_c·t'_nc·z_nc;   'mean' divides by N

Everything above is a sum over the vocabulary, so z is computed one block of W's rows at a
time (a running log-sum-exp, :mod:`.online_softmax`); a second pass recomputes each block for
the gradients, with p = exp(z − lse) and g = ∂l/∂z:

    index:        g_nc = u_n·[(1−ε)·w_n·(p_nc − δ_{c,y_n}) + (ε/C)·v_n·(p_nc·Σw − w_c)]
    probability:  g_nc = u_n·[p_nc·Σ_c' w_c'·t'_nc' − w_c·t'_nc]
    ∂/∂H = g·W,   ∂/∂W = gᵀ·H,   ∂/∂b = Σ_n g_n        (u: 1/D for 'mean', 1 otherwise)

Inputs by key: ``hidden``, ``lm_head``, optional ``lm_head_bias``, ``target``.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from ..core import blas
from ..errors import InvalidInput
from . import online_softmax

INPUTS = ("hidden", "lm_head", "lm_head_bias")


@dataclass
class LinearCEResult:
    loss: Any  # a float, or the (N,) values for reduction 'none'
    per_sample: np.ndarray
    denominator: float
    reduction: str
    grad: dict[str, np.ndarray] = field(default_factory=dict)
    dtype: str = "float64"


@dataclass
class _Call:
    h: np.ndarray  # (N, D) in the compute dtype
    w_head: Any  # (V, D), as given (widened block by block)
    bias: np.ndarray | None  # (V,) compute dtype
    target: np.ndarray  # (N,) intp (index) or (N, V) (probabilities, as given)
    index: bool
    valid: np.ndarray  # (N,) bool
    weight: np.ndarray | None  # (V,) compute dtype
    eps: float
    unbatched: bool


def _prepare(x: Mapping[str, Any], params: Mapping[str, Any], dtype) -> _Call:
    h = online_softmax.narrow_view(x["hidden"]) if hasattr(x["hidden"], "shape") else np.asarray(x["hidden"])
    w_head = x["lm_head"]
    if not hasattr(w_head, "shape"):
        w_head = np.asarray(w_head, dtype=np.float64)
    if np.ndim(w_head) != 2:
        raise InvalidInput("lm_head", f"expected a (V, D) matrix, got shape {tuple(np.shape(w_head))}")
    v, d = w_head.shape
    unbatched = h.ndim == 1
    if unbatched:
        h = h[None, :]
    if h.ndim != 2 or h.shape[1] != d:
        raise InvalidInput("hidden", f"expected (N, {d}) hidden states (D = {d}, the lm-head's second dimension), "
                                     f"got shape {tuple(np.shape(x['hidden']))}")
    h = np.array(h, dtype=dtype)  # a copy: narrow_view's buffer is reused for the lm-head blocks
    bias = x.get("lm_head_bias")
    if bias is not None:
        bias = online_softmax.narrow_view(bias).astype(dtype)
        if bias.shape != (v,):
            raise InvalidInput("lm_head_bias", f"expected shape ({v},), got {bias.shape}")
    n = h.shape[0]
    target = np.asarray(x["target"])
    eps = max(float(params.get("label_smoothing", 0.0) or 0.0), 0.0)  # torch treats ε < 0 as 0
    if eps > 1:
        raise InvalidInput("label_smoothing", f"must be between 0.0 and 1.0, got {eps}")
    weight = params.get("weight")
    if weight is not None:
        weight = np.asarray(weight, dtype=dtype)
        if weight.shape != (v,):
            raise InvalidInput("weight", f"expected one weight per class, shape ({v},), got shape {weight.shape}")
    ignore = params.get("ignore_index")
    want_index = (n,) if not unbatched else ()
    if target.shape == want_index:
        if target.dtype.kind == "f":
            if np.any(target != np.round(target)):
                raise InvalidInput("target", "class indices must be integers")
        elif target.dtype.kind not in "iub":
            raise InvalidInput("target", f"expected class indices, got dtype {target.dtype}")
        t = target.reshape(-1).astype(np.int64)
        ig = -100 if ignore is None else int(ignore)  # torch: None means -100 for index targets
        valid = t != ig
        bad = valid & ((t < 0) | (t >= v))
        if np.any(bad):
            i = int(np.flatnonzero(bad)[0])
            raise InvalidInput("target", f"class index {int(t[i])} is out of range for {v} classes (row {i})")
        return _Call(h, w_head, bias, np.where(valid, t, 0).astype(np.intp), True, valid, weight, eps, unbatched)
    if target.shape == (n, v) or (unbatched and target.shape == (v,)):
        if ignore is not None:
            raise InvalidInput("ignore_index", "cannot be given when the target holds class probabilities (as torch)")
        t = target.reshape(n, v)
        return _Call(h, w_head, bias, t, False, np.ones(n, dtype=bool), weight, eps, unbatched)
    raise InvalidInput("target", f"expected class indices of shape {want_index} or probabilities of shape "
                                 f"{(n, v) if not unbatched else (v,)}, got {target.shape}")


def _blocks(call: _Call, dtype, vocab_block: int | None, block_bytes: int):
    v = call.w_head.shape[0]
    n = call.h.shape[0]
    vb = vocab_block or max(256, block_bytes // max(1, n * np.dtype(dtype).itemsize))
    return [(c0, min(c0 + vb, v)) for c0 in range(0, v, max(1, vb))]


def _logits(call: _Call, c0: int, c1: int, dtype) -> tuple[np.ndarray, np.ndarray]:
    """(z = H·W[c0:c1]ᵀ + b[c0:c1], the widened W block)."""
    wb = online_softmax.widen(call.w_head[c0:c1], dtype, slot=41)
    z = np.matmul(call.h, wb.T, out=online_softmax.scratch(42, (call.h.shape[0], c1 - c0), dtype))
    if call.bias is not None:
        z += call.bias[c0:c1]
    return z, wb


def _target_block(call: _Call, c0: int, c1: int, dtype, r0: int = 0, r1: int | None = None) -> np.ndarray:
    """t' (smoothed probabilities) for rows r0..r1 and columns c0..c1, times the class weights."""
    t = np.asarray(call.target[r0:r1, c0:c1], dtype=dtype)
    if call.eps > 0:
        t = (1 - call.eps) * t + call.eps / call.w_head.shape[0]
    if call.weight is not None:
        t = t * call.weight[c0:c1]
    return t


class _Workers:
    """The threads of one call. ``run(n, job)`` splits 0..n into one contiguous range per thread
    and runs ``job(a, b)`` on each (the compiled row kernel, NumPy's elementwise loops and its
    products release the GIL), the first range on the calling thread; results in range order.
    With ``split=False`` (or one thread, or a small n): ``[job(0, n)]``.

    ``products``: whether the products are split this way too. True while NumPy's BLAS is held
    to one thread (:func:`lossctl.core.blas.single_threaded`): each thread then runs independent
    single-threaded products, which keeps both cores busy where the BLAS's own threads wait on
    each other (long inner dimensions); else each product is one call on the BLAS's threads."""

    def __init__(self, threads: int):
        self.threads = max(1, int(threads))
        self.products = False
        self.pool = None
        if self.threads > 1:
            from concurrent.futures import ThreadPoolExecutor

            self.pool = ThreadPoolExecutor(max_workers=self.threads - 1, thread_name_prefix="lossctl-lce")

    def run(self, n: int, job, split: bool = True, min_size: int = 16) -> list:
        parts = min(self.threads, max(1, n // max(1, min_size)))
        if self.pool is None or not split or parts <= 1:
            return [job(0, n)]
        cuts = [n * k // parts for k in range(parts + 1)]
        futures = [self.pool.submit(job, a, b) for a, b in zip(cuts[1:-1], cuts[2:])]
        try:
            first = job(cuts[0], cuts[1])
            return [first] + [f.result() for f in futures]
        finally:
            for f in futures:  # on an error: nothing left running on the buffers
                f.cancel()
                if not f.cancelled():
                    f.exception()

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True)


def evaluate(x: Mapping[str, Any], params: Mapping[str, Any], *, reduction: str = "mean", dtype=np.float64,
             grad: bool = False, vocab_block: int | None = None, block_bytes: int = 16 << 20,
             grad_block_bytes: int = 256 << 20, min_token_rows: int = 128, threads: int = 1) -> LinearCEResult:
    """The ``linear-ce`` call: values, reduction and (with ``grad``) ∂/∂hidden, ∂/∂lm_head, ∂/∂lm_head_bias.

    One pass over blocks of the vocabulary (``block_bytes`` of logits at a time, all tokens),
    and with ``grad`` a second one once every row's log-sum-exp is known (four products). When
    blocks of at least ``min_token_rows`` whole rows of logits (or all of them) fit
    ``grad_block_bytes``, values and gradients come in one pass over token blocks instead
    (three products, as autograd's). ``threads`` share each block's row statistics and
    elementwise work (the products use the BLAS's own threads).

    >>> r = evaluate({"hidden": [[1.0, 0.0]], "lm_head": [[1.0, 0.0], [0.0, 1.0]], "target": [0]}, {})
    >>> round(r.loss, 6)
    0.313262
    """
    dtype = np.dtype(dtype)
    if reduction not in ("mean", "sum", "none"):
        raise InvalidInput("reduction", f"expected mean, sum or none, got {reduction!r}")
    call = _prepare(x, params, dtype)
    n, v = call.h.shape[0], call.w_head.shape[0]
    w_sum = float(np.sum(call.weight, dtype=np.float64)) if call.weight is not None else float(v)
    if call.index:
        w_n = (call.weight[call.target] if call.weight is not None else np.ones(n, dtype=dtype)) * call.valid
        denom = float(math.fsum(w_n.astype(np.float64))) if reduction == "mean" else 1.0
    else:
        w_n = None
        denom = float(n) if reduction == "mean" else 1.0
    with np.errstate(divide="ignore"):
        upstream = float(np.float64(1.0) / np.float64(denom)) if reduction == "mean" else 1.0
    grads: dict[str, np.ndarray] = {}
    rows_per_block = max(1, grad_block_bytes // max(1, v * dtype.itemsize))
    work = _Workers(threads)
    # the BLAS held to one thread when this call has as many threads as it (a small machine):
    # every product is then split among the call's own threads (see _Workers)
    blas_threads = blas.threads() if work.threads > 1 else None
    hold = blas_threads is not None and blas_threads <= work.threads
    try:
        with blas.single_threaded() if hold else contextlib.nullcontext(False) as held:
            work.products = bool(held)
            if grad and rows_per_block >= min(n, max(1, min_token_rows)):
                # large blocks of whole rows: values and gradients in one pass, three products
                stats, grads = _token_pass(call, dtype, upstream, w_sum, vocab_block, rows_per_block, work)
            else:
                # small token blocks would make inefficient products: all tokens, vocabulary
                # blocks, a second pass for the gradients once every row's log-sum-exp is known
                blocks = _blocks(call, dtype, vocab_block, block_bytes)
                stats = _vocab_pass(call, dtype, blocks, work)
                if grad:
                    grads = _backward(call, blocks, stats.lse, upstream, w_sum, stats.tsum, dtype, work)
    finally:
        work.close()
    values = _values(call, stats, w_n, w_sum, dtype)
    with np.errstate(divide="ignore", invalid="ignore"):
        total = math.fsum(values.astype(np.float64)) if np.all(np.isfinite(values)) else float(np.sum(values, dtype=np.float64))
        if reduction == "none":
            loss: Any = values[0] if call.unbatched else values
        elif reduction == "sum":
            loss = float(dtype.type(total))
        else:
            loss = float(dtype.type(total) / dtype.type(denom))
    return LinearCEResult(loss=loss, per_sample=values[0] if call.unbatched else values, denominator=denom,
                          reduction=reduction, grad=grads, dtype=dtype.name)


class _Stats:
    """Per-row sums over the vocabulary: lse, z_y, Σ_c w_c·z_c, Σ_c w_c·t'_c·z_c, Σ_c w_c·t'_c."""

    def __init__(self, n: int, dtype):
        self.m = self.s = None
        self.z_y = np.zeros(n, dtype=dtype)
        self.wz = np.zeros(n, dtype=dtype)
        self.tz = np.zeros(n, dtype=dtype)
        self.tsum = np.zeros(n, dtype=dtype)
        self.lse = None

    def merge(self, other: "_Stats") -> None:
        """Fold in the sums of other blocks of the vocabulary (each row's target is in one of them)."""
        self.m, self.s = online_softmax.combine(self.m, self.s, other.m, other.s)
        for name in ("z_y", "wz", "tz", "tsum"):
            getattr(self, name)[...] += getattr(other, name)

    def add(self, call: _Call, z: np.ndarray, r0: int, r1: int, c0: int, c1: int, dtype) -> None:
        """Fold in the block z = logits[r0:r1, c0:c1] (before the row kernel, which may reuse memory)."""
        if call.index:
            target = call.target[r0:r1]
            inside = (target >= c0) & (target < c1)
            local = np.flatnonzero(inside)
            self.z_y[r0:r1][local] = z[local, target[local] - c0]
            if call.eps > 0:
                self.wz[r0:r1] += z @ call.weight[c0:c1] if call.weight is not None else np.einsum("ij->i", z)
        else:
            tb = _target_block(call, c0, c1, dtype, r0, r1)
            self.tz[r0:r1] += np.einsum("ij,ij->i", tb, z)
            self.tsum[r0:r1] += np.einsum("ij->i", tb)


def _vocab_pass(call: _Call, dtype, blocks, work: _Workers) -> _Stats:
    """All tokens, one block of the vocabulary at a time, with a running log-sum-exp: each
    thread a range of blocks when the products are split (its own sums, merged in block
    order), else the blocks in turn with their row statistics split among the threads."""
    n = call.h.shape[0]

    def job(i0: int, i1: int) -> _Stats:
        st = _Stats(n, dtype)
        for c0, c1 in blocks[i0:i1]:
            z, _ = _logits(call, c0, c1, dtype)
            st.add(call, z, 0, n, c0, c1, dtype)
            parts = work.run(n, lambda r0, r1: online_softmax.ROW_KERNEL(z[r0:r1], dtype, True),
                             split=not work.products)
            bm, bs = parts[0] if len(parts) == 1 else (np.concatenate([p[0] for p in parts]),
                                                       np.concatenate([p[1] for p in parts]))
            st.m, st.s = (bm, bs) if st.m is None else online_softmax.combine(st.m, st.s, bm, bs)
        return st

    parts = work.run(len(blocks), job, split=work.products, min_size=1)
    st = parts[0]
    for other in parts[1:]:
        st.merge(other)
    st.lse = online_softmax.logsumexp_from(st.m, st.s)
    return st


def _values(call: _Call, st: _Stats, w_n, w_sum: float, dtype) -> np.ndarray:
    v = call.w_head.shape[0]
    lse = st.lse
    with np.errstate(invalid="ignore", over="ignore"):
        if call.index:
            values = np.where(call.valid, w_n * (lse - st.z_y), 0.0)
            if call.eps > 0:
                smooth = np.where(call.valid, lse * w_sum - st.wz, 0.0)
                values = (1 - call.eps) * values + (call.eps / v) * smooth
        else:
            values = lse * st.tsum - st.tz
    return values.astype(dtype, copy=False)


def _token_pass(call: _Call, dtype, upstream: float, w_sum: float, vocab_block: int | None,
                max_rows: int, work: _Workers) -> tuple[_Stats, dict[str, np.ndarray]]:
    """Values and gradients in one pass over blocks of tokens with whole rows of logits:
    z = H_b·Wᵀ + b, lse per row, g = ∂l/∂z in place, then ∂H_b = g·W, ∂W += gᵀ·H_b, ∂b += Σ g.

    The products are split among the threads by blocks of the vocabulary (each its own part
    of ∂H_b, added in order) when ``work.products``; g's rows always are."""
    n, d = call.h.shape
    v = call.w_head.shape[0]
    itemsize = dtype.itemsize
    blocks_n = -(-n // max(1, min(n, max_rows)))
    nb = -(-n // blocks_n)  # equal blocks: no small last one
    # whole products when the lm-head is already in the compute dtype; else blocks of its rows
    # widened one at a time (and blocks when the caller asks for them)
    whole = vocab_block is None and isinstance(call.w_head, np.ndarray) and call.w_head.dtype == dtype
    vc = vocab_block or max(1, (16 << 20) // max(1, d * itemsize))
    wc = vocab_block or max(1, (64 << 20) // max(1, d * itemsize))  # rows of ∂W per product
    st = _Stats(n, dtype)
    st.lse = np.empty(n, dtype=dtype)
    g_h = np.empty((n, d), dtype=dtype)
    g_w = np.empty((v, d), dtype=dtype)
    g_b = np.zeros(v, dtype=dtype) if call.bias is not None else None
    coef = None
    with np.errstate(invalid="ignore", over="ignore"):
        if call.index:
            w_all = call.weight[call.target] if call.weight is not None else np.ones(n, dtype=dtype)
            # rows that do not count receive nothing (not 0·inf when every row is ignored: torch)
            a_all = np.where(call.valid, upstream * (1 - call.eps) * w_all, 0.0).astype(dtype)
            e_all = np.where(call.valid, upstream * (call.eps / v), 0.0).astype(dtype)
            coef = (a_all, e_all, (a_all + e_all * dtype.type(w_sum)).astype(dtype))
    # rows per step of a thread: each step's rows stay in cache from the row kernel to g
    group = max(1, (2 << 20) // max(1, v * itemsize))
    for r0 in range(0, n, nb):
        r1 = min(r0 + nb, n)
        first = r0 == 0
        hb = call.h[r0:r1]
        z = online_softmax.scratch(43, (r1 - r0, v), dtype)

        def logits(a: int, b: int, hb=hb, z=z) -> None:
            for c0 in range(a, b, b - a if whole else vc):
                c1 = min(c0 + (b - a if whole else vc), b)
                np.matmul(hb, _head(call, c0, c1, dtype).T, out=z[:, c0:c1])
                if call.bias is not None:
                    z[:, c0:c1] += call.bias[c0:c1]

        def gradient(q0: int, q1: int, z=z, r0=r0) -> None:
            for k0 in range(q0, q1, group):
                k1 = min(k0 + group, q1)
                _gradient_rows(call, z[k0:k1], r0 + k0, r0 + k1, st, dtype, upstream, coef)

        def products(a: int, b: int, hb=hb, g=z, first=first) -> np.ndarray:
            part = None
            for c0 in range(a, b, b - a if whole else vc):
                c1 = min(c0 + (b - a if whole else vc), b)
                gc = g[:, c0:c1]
                ph = np.matmul(gc, _head(call, c0, c1, dtype))
                part = ph if part is None else np.add(part, ph, out=part)
                for k0 in range(c0, c1, wc):
                    k1 = min(k0 + wc, c1)
                    if first:
                        np.matmul(g[:, k0:k1].T, hb, out=g_w[k0:k1])
                    else:  # later token blocks add into ∂W a slice of rows at a time
                        g_w[k0:k1] += np.matmul(g[:, k0:k1].T, hb,
                                                out=online_softmax.scratch(44, (k1 - k0, d), dtype))
                if g_b is not None:
                    g_b[c0:c1] += np.einsum("ij->j", gc)
            return part

        work.run(v, logits, split=work.products, min_size=256)
        st.add(call, z, r0, r1, 0, v, dtype)
        work.run(r1 - r0, gradient)
        parts = work.run(v, products, split=work.products, min_size=256)
        g_h[r0:r1] = parts[0]
        for p in parts[1:]:
            g_h[r0:r1] += p
    out = {"hidden": g_h[0] if call.unbatched else g_h, "lm_head": g_w}
    if g_b is not None:
        out["lm_head_bias"] = g_b
    return st, out


def _head(call: _Call, c0: int, c1: int, dtype) -> np.ndarray:
    """Rows c0..c1 of the lm-head in the compute dtype (widened into a reused buffer if needed)."""
    return online_softmax.widen(call.w_head[c0:c1], dtype, slot=41)


def _gradient_rows(call: _Call, z: np.ndarray, r0: int, r1: int, st: _Stats, dtype, upstream: float, coef) -> None:
    """Rows r0..r1 of a token block, whole rows of logits z: their lse (into ``st``), then
    z ← g = ∂l/∂z in place."""
    m, s = online_softmax.ROW_KERNEL(z, dtype, True)
    st.lse[r0:r1] = online_softmax.logsumexp_from(m, s)
    with np.errstate(invalid="ignore", over="ignore"):
        g = np.subtract(z, st.lse[r0:r1, None], out=z)
        np.exp(g, out=g)
        if coef is not None:
            a_all, e_all, p_all = coef
            a, e = a_all[r0:r1], e_all[r0:r1]
            g *= p_all[r0:r1, None]
            target, valid = call.target[r0:r1], call.valid[r0:r1]
            local = np.flatnonzero(valid)
            g[local, target[local]] -= a[local]
            if call.eps > 0:
                g -= e[:, None] * (call.weight if call.weight is not None else 1.0)
        else:
            g *= (upstream * st.tsum[r0:r1])[:, None]
            g -= upstream * _target_block(call, 0, call.w_head.shape[0], dtype, r0, r1)


def _backward(call: _Call, blocks, lse, upstream: float, w_sum: float, tsum, dtype,
              work: _Workers) -> dict[str, np.ndarray]:
    """The second pass of the vocabulary blocks: g per block, ∂H += g·W_c, ∂W_c = gᵀ·H, ∂b_c = Σ g
    (each thread a range of blocks and its own part of ∂H, added in order, when the products
    are split)."""
    n, d = call.h.shape
    v = call.w_head.shape[0]
    rows = np.arange(n)
    g_w = np.empty((v, d), dtype=dtype)
    g_b = np.empty(v, dtype=dtype) if call.bias is not None else None
    with np.errstate(invalid="ignore", over="ignore"):
        if call.index:
            w_n = (call.weight[call.target] if call.weight is not None else np.ones(n, dtype=dtype))
            # rows that do not count receive nothing (not 0·inf when every row is ignored: torch)
            a = np.where(call.valid, upstream * (1 - call.eps) * w_n, 0.0).astype(dtype)
            e = np.where(call.valid, upstream * (call.eps / v), 0.0).astype(dtype)
            p_coef = (a + e * w_sum)[:, None]
        else:
            p_coef = (upstream * tsum)[:, None]

    def job(i0: int, i1: int) -> np.ndarray:
        g_h = np.zeros((n, d), dtype=dtype)
        for c0, c1 in blocks[i0:i1]:
            z, wb = _logits(call, c0, c1, dtype)
            with np.errstate(invalid="ignore", over="ignore"):
                g = np.subtract(z, lse[:, None], out=z)
                np.exp(g, out=g)
                g *= p_coef
                if call.index:
                    inside = call.valid & (call.target >= c0) & (call.target < c1)
                    g[rows[inside], call.target[inside] - c0] -= a[inside]
                    if call.eps > 0:
                        wc = call.weight[c0:c1] if call.weight is not None else np.ones(c1 - c0, dtype=dtype)
                        g -= e[:, None] * wc
                else:
                    g -= upstream * _target_block(call, c0, c1, dtype)
            g_h += g @ wb
            np.matmul(g.T, call.h, out=g_w[c0:c1])
            if g_b is not None:
                g_b[c0:c1] = np.einsum("ij->j", g)
        return g_h

    parts = work.run(len(blocks), job, split=work.products, min_size=1)
    g_h = parts[0]
    for p in parts[1:]:
        g_h += p
    out = {"hidden": g_h[0] if call.unbatched else g_h, "lm_head": g_w}
    if g_b is not None:
        out["lm_head_bias"] = g_b
    return out
