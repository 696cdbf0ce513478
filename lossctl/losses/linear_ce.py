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

Every logit is computed in one fixed tiling (:class:`Plan`): tiles z = H[r0:r1]·W[c0:c1]ᵀ + b
of ``Plan.rows`` tokens (r0 a multiple of it, whatever N is) by ``Plan.cols`` classes (a width
that depends on V, D and the dtype only). A matrix product's last bit depends on its shape
(BLAS blocks by rows and columns), so fixing the shapes fixes the numbers: any cut of the tokens
at multiples of ``Plan.rows`` (:func:`rows_pass` on each piece: values, log-sum-exp, ∂/∂H) and
any cut of the vocabulary at multiples of ``Plan.cols`` (:func:`head_pass`: ∂/∂W, ∂/∂b summed
over the token blocks in order) gives the numbers of one :func:`evaluate` bit for bit.

Inputs by key: ``hidden``, ``lm_head``, optional ``lm_head_bias``, ``target``.
"""

from __future__ import annotations

import math
import os
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
class Call:
    """A prepared call: its token rows (all of them, or one piece of a bigger call's)."""

    h: np.ndarray  # (N, D) in the compute dtype
    w_head: Any  # (V, D), as given (widened block by block)
    bias: np.ndarray | None  # (V,) compute dtype
    target: np.ndarray  # (N,) intp (index) or (N, V) (probabilities, as given)
    index: bool
    valid: np.ndarray  # (N,) bool
    weight: np.ndarray | None  # (V,) compute dtype
    eps: float
    unbatched: bool


def prepare(x: Mapping[str, Any], params: Mapping[str, Any], dtype, load_hidden: bool = True) -> Call:
    """Check a call's inputs (InvalidInput naming the key); ``load_hidden`` False keeps ``hidden``
    as given (only its shape is checked: rows are read where they are computed)."""
    given = x["hidden"]
    if not load_hidden and len(getattr(given, "shape", ())) == 2:
        h = given
    else:
        h = online_softmax.narrow_view(given) if hasattr(given, "shape") else np.asarray(given)
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
    if h is not given or load_hidden:
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
        return Call(h, w_head, bias, np.where(valid, t, 0).astype(np.intp), True, valid, weight, eps, unbatched)
    if target.shape == (n, v) or (unbatched and target.shape == (v,)):
        if ignore is not None:
            raise InvalidInput("ignore_index", "cannot be given when the target holds class probabilities (as torch)")
        t = target.reshape(n, v)
        return Call(h, w_head, bias, t, False, np.ones(n, dtype=bool), weight, eps, unbatched)
    raise InvalidInput("target", f"expected class indices of shape {want_index} or probabilities of shape "
                                 f"{(n, v) if not unbatched else (v,)}, got {target.shape}")


#: Tokens per logit tile: every product takes rows r0..r0 + ROW_BLOCK of H, r0 a multiple of it.
ROW_BLOCK = 1024


@dataclass(frozen=True)
class Plan:
    """The tiling of the logits (see the module doc): ``rows`` tokens by ``cols`` classes;
    ``keep_rows``: a block's whole rows of logits are kept for the gradient (else recomputed)."""

    rows: int
    cols: int
    vocab: int
    keep_rows: bool = False

    def blocks(self, n: int) -> list[tuple[int, int]]:
        """The token blocks of ``n`` rows (the first one starting a multiple of ``rows``)."""
        return [(r0, min(r0 + self.rows, n)) for r0 in range(0, n, self.rows)]

    def chunks(self, c0: int = 0, c1: int | None = None) -> list[tuple[int, int]]:
        """The class chunks within ``c0 .. c1`` (c0 a multiple of ``cols``)."""
        c1 = self.vocab if c1 is None else c1
        return [(a, min(a + self.cols, c1)) for a in range(c0, c1, self.cols)]


#: Logits of a token block kept between its values and its gradients up to this size (else each
#: tile is computed again: a fourth product). 1,024 tokens × 128,256 classes in float32 fit.
GRAD_BLOCK_BYTES = 768 << 20


def page_zeros(shape, dtype) -> np.ndarray:
    """Zeros in fresh anonymous memory (:mod:`mmap`) for the large buffers of one call (kept
    logits, ∂W): ordinary pages, faulted in as they are first written. NumPy asks the kernel
    for transparent huge pages for large arrays, and where the kernel compacts memory to
    serve such a fault, first touching hundreds of MiB costs about as much as a product."""
    dtype = np.dtype(dtype)
    size = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if size < (64 << 20):
        return np.zeros(shape, dtype=dtype)
    import mmap

    return np.frombuffer(mmap.mmap(-1, size), dtype=dtype).reshape(shape)


def usable_cpus() -> int:
    """The CPUs this process may run on (``LOSSCTL_THREADS`` when set)."""
    if os.environ.get("LOSSCTL_THREADS", "").strip():
        from ..core.stream import threads

        return threads()
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def product_threads() -> int | None:
    """The BLAS threads of each tile product :func:`evaluate` runs: 1 where NumPy's OpenBLAS can
    be held to one thread (the tiles then run side by side on the call's threads; a product's
    last bits depend on how many threads split it), else None (the BLAS's own count)."""
    return 1 if blas.threads() is not None else None


def plan(v: int, d: int, dtype, *, row_block: int | None = None, vocab_block: int | None = None,
         block_bytes: int = 16 << 20, grad_block_bytes: int = GRAD_BLOCK_BYTES) -> Plan:
    """The tiles for V classes and D hidden features: ``row_block`` tokens (default
    :data:`ROW_BLOCK`) by ``vocab_block`` classes (default: ``block_bytes`` of logits per tile,
    at least 256); whole rows are kept when a block of them fits ``grad_block_bytes``."""
    itemsize = np.dtype(dtype).itemsize
    rows = max(1, int(row_block or ROW_BLOCK))
    cols = max(1, min(int(vocab_block or max(256, block_bytes // (rows * itemsize))), max(v, 1)))
    return Plan(rows, cols, v, keep_rows=rows * v * itemsize <= grad_block_bytes)


@dataclass
class Coefficients:
    """What the gradient of a tile needs besides its logits: ``upstream`` (1/D for 'mean'),
    Σ_c w_c, and for index targets a_n = u·(1−ε)·w_n, e_n = u·ε/C (0 for rows that do not count)."""

    upstream: float
    w_sum: float
    a: np.ndarray | None = None
    e: np.ndarray | None = None


def denominator(call: Call, reduction: str, dtype) -> tuple[float, float, Any]:
    """(D, Σ_c w_c, w_n): 'mean' divides by D = Σ_n w_n (index targets) or N (probabilities);
    w_n is None for probability targets."""
    n, v = call.h.shape[0], call.w_head.shape[0]
    w_sum = float(np.sum(call.weight, dtype=np.float64)) if call.weight is not None else float(v)
    if call.index:
        w_n = (call.weight[call.target] if call.weight is not None else np.ones(n, dtype=dtype)) * call.valid
        denom = float(math.fsum(w_n.astype(np.float64))) if reduction == "mean" else 1.0
    else:
        w_n = None
        denom = float(n) if reduction == "mean" else 1.0
    return denom, w_sum, w_n


def coefficients(call: Call, reduction: str, denom: float, w_sum: float, dtype) -> Coefficients:
    """The gradient's coefficients for the rows of ``call`` (elementwise: the same for any piece)."""
    with np.errstate(divide="ignore"):
        upstream = float(np.float64(1.0) / np.float64(denom)) if reduction == "mean" else 1.0
    co = Coefficients(upstream, w_sum)
    if call.index:
        n, v = call.h.shape[0], call.w_head.shape[0]
        with np.errstate(invalid="ignore", over="ignore"):
            w_all = call.weight[call.target] if call.weight is not None else np.ones(n, dtype=dtype)
            # rows that do not count receive nothing (not 0·inf when every row is ignored: torch)
            co.a = np.where(call.valid, upstream * (1 - call.eps) * w_all, 0.0).astype(dtype)
            co.e = np.where(call.valid, upstream * (call.eps / v), 0.0).astype(dtype)
    return co


def evaluate(x: Mapping[str, Any], params: Mapping[str, Any], *, reduction: str = "mean", dtype=np.float64,
             grad: bool = False, vocab_block: int | None = None, block_bytes: int = 16 << 20,
             grad_block_bytes: int = GRAD_BLOCK_BYTES, row_block: int | None = None,
             threads: int | None = None) -> LinearCEResult:
    """The ``linear-ce`` call: values, reduction and (with ``grad``) ∂/∂hidden, ∂/∂lm_head, ∂/∂lm_head_bias.

    One pass over the token blocks of :func:`plan` (``row_block``, ``vocab_block``,
    ``block_bytes``, ``grad_block_bytes``): each block's logits tile by tile with a running
    log-sum-exp, then with ``grad`` its tiles' gradients (kept or recomputed: the same numbers).
    ``threads`` (default: the CPUs this process may use) compute a block's tiles side by side,
    each product on one BLAS thread (:func:`product_threads`); the sums are folded in tile
    order, so the numbers do not depend on the thread count.

    >>> r = evaluate({"hidden": [[1.0, 0.0]], "lm_head": [[1.0, 0.0], [0.0, 1.0]], "target": [0]}, {})
    >>> round(r.loss, 6)
    0.313262
    """
    dtype = np.dtype(dtype)
    if reduction not in ("mean", "sum", "none"):
        raise InvalidInput("reduction", f"expected mean, sum or none, got {reduction!r}")
    call = prepare(x, params, dtype)
    n, d = call.h.shape
    v = call.w_head.shape[0]
    tiles = plan(v, d, dtype, row_block=row_block, vocab_block=vocab_block, block_bytes=block_bytes,
                 grad_block_bytes=grad_block_bytes)
    denom, w_sum, w_n = denominator(call, reduction, dtype)
    co = coefficients(call, reduction, denom, w_sum, dtype) if grad else None
    head = None
    if grad:
        head = (page_zeros((v, d), dtype), np.zeros(v, dtype=dtype) if call.bias is not None else None)
    with blas.single_threaded() as held:
        # without a BLAS held to one thread, products keep the BLAS's own threads, one at a time
        workers = (usable_cpus() if threads is None else max(1, int(threads))) if held else 1
        values, _, _, g_h = rows_pass(call, tiles, dtype, w_n, co, head=head, threads=workers)
    grads: dict[str, np.ndarray] = {}
    if grad:
        grads = {"hidden": g_h[0] if call.unbatched else g_h, "lm_head": head[0]}
        if head[1] is not None:
            grads["lm_head_bias"] = head[1]
    return finish(values, reduction, denom, dtype, call.unbatched, grads)


def finish(values: np.ndarray, reduction: str, denom: float, dtype, unbatched: bool = False,
           grads: dict[str, np.ndarray] | None = None) -> LinearCEResult:
    """The result from every row's value: the correctly rounded sum, the reduction."""
    dtype = np.dtype(dtype)
    with np.errstate(divide="ignore", invalid="ignore"):
        total = math.fsum(values.astype(np.float64)) if np.all(np.isfinite(values)) else float(np.sum(values, dtype=np.float64))
        if reduction == "none":
            loss: Any = values[0] if unbatched else values
        elif reduction == "sum":
            loss = float(dtype.type(total))
        else:
            loss = float(dtype.type(total) / dtype.type(denom))
    return LinearCEResult(loss=loss, per_sample=values[0] if unbatched else values, denominator=denom,
                          reduction=reduction, grad=dict(grads or {}), dtype=dtype.name)


class _Stats:
    """Per-row sums over the vocabulary: lse, z_y, Σ_c w_c·z_c, Σ_c w_c·t'_c·z_c, Σ_c w_c·t'_c."""

    def __init__(self, n: int, dtype):
        self.z_y = np.zeros(n, dtype=dtype)
        self.wz = np.zeros(n, dtype=dtype)
        self.tz = np.zeros(n, dtype=dtype)
        self.tsum = np.zeros(n, dtype=dtype)
        self.lse = np.empty(n, dtype=dtype)

    def sums(self, call: Call, z: np.ndarray, r0: int, r1: int, c0: int, c1: int, dtype) -> tuple:
        """The tile z = logits[r0:r1, c0:c1]'s target logits (set here: each row's target is in
        one tile) and its terms of the running sums, for :meth:`fold` (taken before the row
        kernel, which may reuse memory)."""
        if call.index:
            target = call.target[r0:r1]
            inside = (target >= c0) & (target < c1)
            local = np.flatnonzero(inside)
            self.z_y[r0:r1][local] = z[local, target[local] - c0]
            if call.eps > 0:
                return (z @ call.weight[c0:c1] if call.weight is not None else np.einsum("ij->i", z),)
            return ()
        tb = _target_block(call, r0, r1, c0, c1, dtype)
        return np.einsum("ij,ij->i", tb, z), np.einsum("ij->i", tb)

    def fold(self, sums: tuple, r0: int, r1: int) -> None:
        """Add one tile's terms (:meth:`sums`), tiles in order."""
        if len(sums) == 1:
            self.wz[r0:r1] += sums[0]
        elif sums:
            self.tz[r0:r1] += sums[0]
            self.tsum[r0:r1] += sums[1]


def _target_block(call: Call, r0: int, r1: int, c0: int, c1: int, dtype) -> np.ndarray:
    """t' (smoothed probabilities) of rows r0..r1 and columns c0..c1, times the class weights."""
    t = np.asarray(call.target[r0:r1, c0:c1], dtype=dtype)
    if call.eps > 0:
        t = (1 - call.eps) * t + call.eps / call.w_head.shape[0]
    if call.weight is not None:
        t = t * call.weight[c0:c1]
    return t


def _tile(call: Call, r0: int, r1: int, c0: int, c1: int, dtype, out: np.ndarray) -> np.ndarray:
    """z = H[r0:r1]·W[c0:c1]ᵀ + b[c0:c1] into ``out`` (C-contiguous, (r1 − r0, c1 − c0))."""
    wb = online_softmax.widen(call.w_head[c0:c1], dtype, slot=41)
    np.matmul(call.h[r0:r1], wb.T, out=out)
    if call.bias is not None:
        out += call.bias[c0:c1]
    return out


def _tile_buffer(keep: np.ndarray | None, rows: int, c0: int, c1: int, dtype) -> np.ndarray:
    """A C-contiguous (rows, c1 − c0) buffer: the chunk's own segment of ``keep``, or scratch."""
    if keep is None:
        return online_softmax.scratch(42, (rows, c1 - c0), dtype)
    return keep[rows * c0:rows * c1].reshape(rows, c1 - c0)


def _grad_tile(call: Call, z: np.ndarray, r0: int, r1: int, c0: int, c1: int, lse: np.ndarray, tsum: np.ndarray,
               co: Coefficients, dtype) -> np.ndarray:
    """g = ∂l/∂z of the tile z = logits[r0:r1, c0:c1], in place; ``lse``, ``tsum``: rows r0..r1."""
    with np.errstate(invalid="ignore", over="ignore"):
        g = np.subtract(z, lse[:, None], out=z)
        np.exp(g, out=g)
        if call.index:
            a, e = co.a[r0:r1], co.e[r0:r1]
            g *= (a + e * co.w_sum)[:, None]
            target, valid = call.target[r0:r1], call.valid[r0:r1]
            local = np.flatnonzero(valid & (target >= c0) & (target < c1))
            g[local, target[local] - c0] -= a[local]
            if call.eps > 0:
                g -= e[:, None] * (call.weight[c0:c1] if call.weight is not None else 1.0)
        else:
            g *= (co.upstream * tsum)[:, None]
            g -= co.upstream * _target_block(call, r0, r1, c0, c1, dtype)
    return g


def rows_pass(call: Call, tiles: Plan, dtype, w_n, co: Coefficients | None = None,
              head: tuple[np.ndarray, np.ndarray | None] | None = None, threads: int = 1):
    """Every row of ``call`` (its first row at a multiple of ``tiles.rows`` of the whole call's),
    one token block at a time: ``(values, lse, tsum, ∂/∂H or None)``. With ``co`` the rows'
    gradients too; ``head`` = (∂W, ∂b or None) accumulates the lm-head's (in block order).

    ``threads`` compute a block's tiles side by side (products, row kernel, gradient tiles);
    their running log-sum-exp, sums and ∂/∂H parts are folded here in tile order, and each
    tile's ∂W, ∂b rows are its own: the same numbers as one thread."""
    dtype = np.dtype(dtype)
    n, d = call.h.shape
    st = _Stats(n, dtype)
    g_h = np.zeros((n, d), dtype=dtype) if co is not None else None
    chunks = tiles.chunks()
    kept = page_zeros((min(n, tiles.rows) * tiles.vocab,), dtype) if co is not None and tiles.keep_rows else None
    with _Tiles(threads) as pool:
        for r0, r1 in tiles.blocks(n):
            rows = r1 - r0
            keep = kept[:rows * tiles.vocab] if kept is not None else None

            def forward(c0: int, c1: int, r0=r0, r1=r1, keep=keep):
                z = _tile(call, r0, r1, c0, c1, dtype, _tile_buffer(keep, r1 - r0, c0, c1, dtype))
                sums = st.sums(call, z, r0, r1, c0, c1, dtype)
                return sums, online_softmax.ROW_KERNEL(z, dtype, True)

            m = s = None
            for (c0, c1), (sums, (bm, bs)) in pool.ordered(forward, chunks):
                st.fold(sums, r0, r1)
                m, s = (bm, bs) if m is None else online_softmax.combine(m, s, bm, bs)
            st.lse[r0:r1] = online_softmax.logsumexp_from(m, s) if m is not None else np.full(rows, -np.inf, dtype)
            lse = st.lse[r0:r1]  # in the compute dtype, as a piece of the rows gets it (m, s may be wider)
            if co is None:
                continue

            def backward(c0: int, c1: int, r0=r0, r1=r1, keep=keep, lse=lse):
                z = _tile_buffer(keep, r1 - r0, c0, c1, dtype)
                if keep is None:
                    _tile(call, r0, r1, c0, c1, dtype, z)
                g = _grad_tile(call, z, r0, r1, c0, c1, lse, st.tsum[r0:r1], co, dtype)
                part = np.matmul(g, online_softmax.widen(call.w_head[c0:c1], dtype, slot=41),
                                 out=np.empty((r1 - r0, d), dtype=dtype))
                if head is not None:  # rows c0..c1 of ∂W and ∂b: this tile's alone within the block
                    _head_add(head, g, call.h[r0:r1], c0, c1)
                return part

            gh = g_h[r0:r1]
            for _, part in pool.ordered(backward, chunks):
                gh += part
    return _values(call, st, w_n, dtype), st.lse, st.tsum, g_h


class _Tiles:
    """``ordered(job, chunks)``: ``job(c0, c1)`` for each chunk on ``threads`` threads (the row
    kernel, NumPy's loops and single-threaded products release the GIL), up to four chunks per
    thread ahead, yielding ``((c0, c1), result)`` in chunk order; one thread: each in turn, here."""

    def __init__(self, threads: int):
        self.threads = max(1, int(threads))
        self.pool = None

    def __enter__(self) -> "_Tiles":
        if self.threads > 1:
            from concurrent.futures import ThreadPoolExecutor

            self.pool = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="lossctl-lce")
        return self

    def __exit__(self, *exc) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True)

    def ordered(self, job, chunks):
        if self.pool is None or len(chunks) <= 1:
            for c0, c1 in chunks:
                yield (c0, c1), job(c0, c1)
            return
        from collections import deque

        window: deque = deque()
        todo = iter(chunks)
        try:
            for c in todo:
                window.append((c, self.pool.submit(job, *c)))
                if len(window) > 4 * self.threads:  # a few ahead: a slow tile holds up no thread
                    c0, fut = window.popleft()
                    yield c0, fut.result()
            while window:
                c0, fut = window.popleft()
                yield c0, fut.result()
        finally:  # an error (or an abandoned generator): nothing left running on the buffers
            for _, fut in window:
                fut.cancel()
            for _, fut in window:
                if not fut.cancelled():
                    fut.exception()


def _head_add(head, g: np.ndarray, hb: np.ndarray, c0: int, c1: int) -> None:
    g_w, g_b = head
    # the product into a reused buffer (a fresh one per tile would be fresh pages to fault in)
    g_w[c0:c1] += np.matmul(g.T, hb, out=online_softmax.scratch(44, (c1 - c0, hb.shape[1]), g.dtype))
    if g_b is not None:
        g_b[c0:c1] += np.einsum("ij->j", g)


def head_pass(call: Call, tiles: Plan, dtype, lse: np.ndarray, tsum: np.ndarray | None, co: Coefficients,
              head: tuple[np.ndarray, np.ndarray | None], c0: int, c1: int) -> None:
    """Add the rows of ``call`` (a token block, or several: in order) to ∂W[c0:c1] and ∂b[c0:c1]
    (``head``, indexed from c0), from their log-sum-exp (and Σ w·t', probability targets only)."""
    dtype = np.dtype(dtype)
    n = call.h.shape[0]
    g_w, g_b = head
    for r0, r1 in tiles.blocks(n):
        for a, b in tiles.chunks(c0, c1):
            z = _tile(call, r0, r1, a, b, dtype, online_softmax.scratch(42, (r1 - r0, b - a), dtype))
            g = _grad_tile(call, z, r0, r1, a, b, lse[r0:r1], None if tsum is None else tsum[r0:r1], co, dtype)
            _head_add((g_w, g_b), g, call.h[r0:r1], a - c0, b - c0)


def _values(call: Call, st: _Stats, w_n, dtype) -> np.ndarray:
    v = call.w_head.shape[0]
    lse = st.lse
    with np.errstate(invalid="ignore", over="ignore"):
        if call.index:
            values = np.where(call.valid, w_n * (lse - st.z_y), 0.0)
            if call.eps > 0:
                w_sum = float(np.sum(call.weight, dtype=np.float64)) if call.weight is not None else float(v)
                smooth = np.where(call.valid, lse * w_sum - st.wz, 0.0)
                values = (1 - call.eps) * values + (call.eps / v) * smooth
        else:
            values = lse * st.tsum - st.tz
    return values.astype(dtype, copy=False)
