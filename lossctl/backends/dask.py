"""A loss call on a Dask cluster (``backend`` dask): the rows are computed by the workers.

The call is planned here as the local streaming engine plans it (:func:`lossctl.core.stream.plan`:
which inputs are cut into rows, which are given whole), then cut into chunks of rows (every
``chunk_rows`` rows, by default about 64 MiB of the prediction as stored). Each chunk is one task:

1. **values** — the worker reads its own rows of every row-aligned input (a sharded array or
   a memory-mapped ``.npy`` travels as its description: paths, shapes, offsets; only inputs
   that were in the client's memory travel as data, sent once to each worker) and evaluates
   them with the same engine (:func:`lossctl.core.stream.evaluate_rows`; a sharded prediction
   is read block by block there, as the local engine reads it). Back come the
   exact-sum states of the values and of the denominator weights (73 integers each) and,
   only when asked, the per-sample values. The client merges the states exactly and rounds
   once (:func:`lossctl.core.stream.reduce_sums`), so the loss is the local engine's bit
   for bit, whatever the sharding, chunking and number of workers; per-sample values are
   written in row order as chunks arrive (``-o`` streams).
2. **gradients** (``grad``) — the upstream 1/D is known after pass 1; each task computes its
   rows' gradient and writes it straight into gradient shards next to ``-o`` (the
   prediction's sharding), or, for a small input without ``-o``, sends it back.

Tasks are retried (``retries``) and a lost worker's tasks are run again elsewhere by the
scheduler; when that fails the call stops with an input error (exit 3) and writes nothing.
Without ``scheduler`` a :class:`distributed.LocalCluster` is started for the call
(``LOSSCTL_DASK_WORKERS`` workers, default one per core up to 4): worker threads in this
process (the kernels release the GIL; no process start-up), or worker processes with
``LOSSCTL_DASK_PROCESSES=1``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import warnings
from typing import Any, Callable, Mapping

import numpy as np

from ..core import exactsum, stream
from ..core.evaluate import Result
from ..core.prepare import DTYPES
from ..core.reduction import upstream
from ..core.registry import LossSpec
from ..errors import InputError, InvalidInput, LossctlError, UsageError, ref

EXTRA = "pip install 'lossctl[dask]'"
CONNECT_TIMEOUT = 3.0  # seconds to reach a scheduler before giving up
CHUNK_BYTES = 64 << 20  # default prediction bytes (as stored) per task on worker processes
# ... on the worker threads of a local cluster in this process (its memory is the client's)
LOCAL_CHUNK_BYTES = 16 << 20
RETRIES = 2
# Gradients larger than this go to shards next to the output only (never back to the client).
GRAD_BACK_BYTES = 64 << 20


def available() -> bool:
    try:
        import dask  # noqa: F401
        import distributed  # noqa: F401
    except ImportError:
        return False
    return True


def _require() -> None:
    if not available():
        raise UsageError(f"{ref('backend')} dask needs dask and distributed: {EXTRA}")


# -- the workers' side ------------------------------------------------------------------------


def _rows(source: Any, i0: int, i1: int) -> np.ndarray:
    rows = getattr(source, "rows", None)
    return rows(i0, i1) if rows is not None else np.asarray(source[i0:i1])


class _Window:
    """Rows ``i0 .. i1`` of a row source read on demand (``lazy_rows``): the engine reads the
    prediction of a task block by block, as the local engine reads a sharded array, instead of
    the task reading all of it at once (a fresh array of tens of MB, page-faulted afresh and
    out of cache by the time the kernel reaches its end)."""

    lazy_rows = True

    def __init__(self, source: Any, i0: int, i1: int, reuse: bool = False):
        self.source, self.i0, self.reuse = source, i0, reuse
        self.shape = (i1 - i0,) + tuple(source.shape[1:])
        self.dtype = np.dtype(source.dtype)
        self.ndim = len(self.shape)
        self.size = int(np.prod(self.shape, dtype=np.int64))
        self.nbytes = self.size * self.dtype.itemsize

    def __len__(self) -> int:
        return self.shape[0]

    def rows(self, a: int, b: int, out: np.ndarray | None = None) -> np.ndarray:
        if out is None and self.reuse:
            out = _block_buffer(self.shape[1:], self.dtype, b - a)
        return self.source.rows(self.i0 + a, self.i0 + b, out=out)

    def __getitem__(self, key):
        if not isinstance(key, slice) or key.step not in (None, 1):
            raise TypeError("rows are read by a slice")
        a, b, _ = key.indices(self.shape[0])
        return self.rows(a, max(a, b))

    def __array__(self, dtype=None, copy=None):
        a = self.rows(0, self.shape[0])
        return a if dtype is None else a.astype(dtype, copy=False)


_held = threading.local()


def _block_buffer(row_shape: tuple, dtype: np.dtype, rows: int) -> np.ndarray:
    """One of this worker thread's two block buffers, in turn (the engine of a task runs its
    blocks one after the other and is done with a block before it reads the next but one).
    For worker processes: their nanny sets ``MALLOC_TRIM_THRESHOLD_``, so that every freed
    block goes back to the system and a fresh one is page-faulted afresh: about half of a
    task's time."""
    ring = getattr(_held, "ring", None)
    key = (tuple(row_shape), np.dtype(dtype).str)
    if ring is None or ring[0] != key or ring[1][0].shape[0] < rows:
        ring = _held.ring = [key, [np.empty((rows,) + tuple(row_shape), dtype=dtype) for _ in range(2)], 0]
    ring[2] ^= 1
    return ring[1][ring[2]][:rows]


def _windowed(job: Mapping[str, Any], name: str) -> bool:
    """Whether a values task reads input ``name`` block by block (:class:`_Window`): the
    prediction, when it is a sharded array (or a memory-mapped file described as one)."""
    from ..io.shards import ShardedArray

    return name == job["kind"] and isinstance(job["sliced"].get(name), ShardedArray)


def _chunk(job: Mapping[str, Any], i0: int, i1: int, windowed: bool = False) -> stream.Layout:
    from ..losses import registry

    spec = registry().get(job["loss"])
    sliced = {k: _Window(src, i0, i1, job.get("reuse", False)) if windowed and _windowed(job, k) else _rows(src, i0, i1)
              for k, src in job["sliced"].items()}
    params_sliced = {k: _rows(src, i0, i1) for k, src in job["params_sliced"].items()}
    return stream.chunk_layout(spec, job["kind"], i1 - i0, sliced, job["whole"], params_sliced, job["params"])


def values_task(job: Mapping[str, Any], i0: int, i1: int, keep: bool) -> stream.Partial:
    """On a worker: rows ``i0 .. i1`` evaluated (a :class:`lossctl.core.stream.Partial`)."""
    layout = _chunk(job, i0, i1, windowed=True)
    return stream.evaluate_rows(layout, job["reduction"], dtype=job["dtype"], dim=job["dim"], origins=job["origins"],
                                offset=i0, total_rows=job["n"], keep_values=keep, compiled=job["compiled"])


def grad_task(job: Mapping[str, Any], i0: int, i1: int, upstream: float, targets: Mapping[str, list] | None):
    """On a worker: the gradient of rows ``i0 .. i1``, written into the shards ``targets`` (then
    None comes back) or returned; and the blocks' warnings."""
    from ..io.shards import write_rows

    layout = _chunk(job, i0, i1)
    grads, warns = stream.gradient_rows(layout, job["reduction"], upstream, dtype=job["dtype"], dim=job["dim"],
                                        origins=job["origins"], offset=i0, total_rows=job["n"])
    if targets is None:
        return grads, warns
    for name, g in grads.items():
        if name not in targets:
            raise LossctlError(f"gradient of {name}: no shard to write it to")
        write_rows(targets[name], i0, g)
    return None, warns


def token_nll_task(job: Mapping[str, Any], r0: int, r1: int, targets: list | None = None):
    """On a worker: ``lossctl lm``'s per-token NLL of rows ``r0 .. r1``, the NaN/inf met there
    and, when the job has a gradient scale, the rows' gradient: written into the shards
    ``targets`` (then None comes back) or returned."""
    from dataclasses import replace

    from ..io.shards import write_rows
    from ..losses import lm

    lay = replace(job["layout"], rows=_rows(job["rows"], r0, r1), target=job["target"][r0:r1],
                  counted=job["counted"][r0:r1])
    scale = job["grad_scale"]
    dtype = np.dtype(job["dtype"])
    grad = None if scale is None else np.empty((r1 - r0, lay.vocab), dtype=dtype)
    found: list = []
    values = lm.token_nll(lay, dtype=dtype, per_sample=job["per_sample"], threads=1, nonfinite=found,
                          grad_scale=None if scale is None else scale[r0:r1], grad_out=grad)
    # NaN/inf met in the rows: counts, and the first one's position in the whole call's rows
    found = [(n_nan, n_inf, None if first is None else (first[0] + r0, first[1]), value)
             for n_nan, n_inf, first, value in found]
    if grad is not None and targets is not None:
        write_rows(targets, r0, grad)
        grad = None
    return values, found, grad


class RowView:
    """A row source (a sharded array, encoded rows) seen as a matrix: ``shape``, ``ndim``,
    ``dtype`` and ``a[i0:i1]`` (rows read on demand)."""

    def __init__(self, source: Any):
        self.source = source
        self.shape = tuple(source.shape)
        self.dtype = getattr(source, "dtype", None)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __getitem__(self, key):
        if not isinstance(key, slice) or key.step not in (None, 1):
            raise TypeError("rows are read by a slice")
        i0, i1, _ = key.indices(self.shape[0])
        return _rows(self.source, i0, max(i0, i1))


def _lce_call(job: Mapping[str, Any], i0: int, i1: int):
    from ..losses import linear_ce

    x = {"hidden": _rows(job["hidden"], i0, i1), "lm_head": job["lm_head"], "target": _rows(job["target"], i0, i1)}
    if job["bias"] is not None:
        x["lm_head_bias"] = job["bias"]
    return linear_ce.prepare(x, job["params"], np.dtype(job["dtype"]))


def blas_threads() -> int | None:
    """This process's BLAS thread count (None when unknown)."""
    from threadpoolctl import threadpool_info

    counts = [int(i["num_threads"]) for i in threadpool_info() if i.get("user_api") == "blas"]
    return max(counts) if counts else None


def _blas(threads: int | None):
    """BLAS on ``threads`` threads here (a matrix product's last bits depend on how its threads
    split it: the workers multiply as the client would)."""
    if not threads:
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=threads, user_api="blas")


def lce_rows_task(job: Mapping[str, Any], i0: int, i1: int, targets: list | None = None):
    """On a worker: ``linear-ce`` rows ``i0 .. i1`` (i0 a multiple of the plan's token block):
    (values, log-sum-exp, Σ w·t' or None, ∂/∂hidden written into the shards ``targets`` or
    returned, or None)."""
    from ..losses import linear_ce

    dtype = np.dtype(job["dtype"])
    call = _lce_call(job, i0, i1)
    _, _, w_n = linear_ce.denominator(call, job["reduction"], dtype)
    co = linear_ce.coefficients(call, job["reduction"], job["denom"], job["w_sum"], dtype) if job["grad"] else None
    with _blas(job["blas_threads"]):
        values, lse, tsum, g_h = linear_ce.rows_pass(call, job["tiles"], dtype, w_n, co)
    if g_h is not None and targets is not None:
        from ..io.shards import write_rows

        write_rows(targets, i0, g_h)
        g_h = None
    return values, lse, None if call.index else tsum, g_h


def lce_head_task(job: Mapping[str, Any], c0: int, c1: int, sums: Any):
    """On a worker: ∂/∂lm_head and ∂/∂lm_head_bias of classes ``c0 .. c1`` (c0 a multiple of
    the plan's class width), summed over every token block in order; ``sums`` = (lse, Σ w·t')."""
    from ..losses import linear_ce

    dtype = np.dtype(job["dtype"])
    lse, tsum = sums
    head = (np.zeros((c1 - c0, job["d"]), dtype=dtype), np.zeros(c1 - c0, dtype=dtype) if job["bias"] is not None else None)
    for r0, r1 in job["tiles"].blocks(job["n"]):
        call = _lce_call(job, r0, r1)
        co = linear_ce.coefficients(call, job["reduction"], job["denom"], job["w_sum"], dtype)
        with _blas(job["blas_threads"]):
            linear_ce.head_pass(call, job["tiles"], dtype, lse[r0:r1], None if tsum is None else tsum[r0:r1], co, head,
                                c0, c1)
    return head


# -- the client's side ------------------------------------------------------------------------


@contextlib.contextmanager
def client_for(scheduler: str | None, workers: int | None = None):
    """A connected :class:`distributed.Client`: to ``scheduler``, or to a local cluster started
    (and closed) here (worker threads, or processes: :func:`local_processes`)."""
    _require()
    from distributed import Client, LocalCluster

    quiet = [logging.getLogger(name) for name in ("distributed", "tornado", "asyncio")]
    levels = [q.level for q in quiet]
    for q in quiet:
        q.setLevel(logging.CRITICAL)
    cluster = None
    try:
        if scheduler:
            try:
                client = Client(scheduler, timeout=CONNECT_TIMEOUT, set_as_default=False)
            except (OSError, TimeoutError, ValueError, TypeError) as e:
                raise UsageError(f"{ref('scheduler')} {scheduler}: no Dask scheduler answers there "
                                 f"(within {CONNECT_TIMEOUT:g} s: {type(e).__name__}: {e})") from None
        else:
            n = workers or _env_int("LOSSCTL_DASK_WORKERS", min(4, os.cpu_count() or 1))
            with warnings.catch_warnings():  # "port 8787 is in use": another cluster's; any free port serves
                warnings.simplefilter("ignore", UserWarning)
                # Worker threads in this process unless asked for processes: the kernels release
                # the GIL, and spawning processes (each importing NumPy, distributed and lossctl,
                # then warming up) costs seconds per call.
                cluster = LocalCluster(n_workers=max(1, n), threads_per_worker=1, processes=local_processes(),
                                       dashboard_address=None, silence_logs=logging.CRITICAL)
            client = Client(cluster, set_as_default=False)
        try:
            yield client
        finally:
            client.close()
    finally:
        if cluster is not None:
            cluster.close()
        for q, level in zip(quiet, levels):
            q.setLevel(level)


def local_processes() -> bool:
    """Whether the local cluster started without a scheduler has worker processes
    (``LOSSCTL_DASK_PROCESSES=1``) rather than worker threads in this process."""
    return os.environ.get("LOSSCTL_DASK_PROCESSES", "0").strip().lower() in ("1", "true", "yes")


def chunk_bytes(scheduler: str | None, client: Any) -> int:
    """Prediction bytes per task: smaller on worker threads in this process (its peak memory;
    a values task without gradients reads a sharded prediction block by block, and takes
    :data:`CHUNK_BYTES` there too)."""
    return CHUNK_BYTES if scheduler or client is not None or local_processes() else LOCAL_CHUNK_BYTES


def _env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


def row_source(value: Any, origin: str):
    """What a worker reads rows from: a sharded array or a memory-mapped file as its description,
    anything else (already in this process's memory) as itself."""
    if getattr(value, "lazy_rows", False):
        return value
    from ..io.shards import EncodedRows, from_memmap

    if hasattr(value, "widen") and isinstance(getattr(value, "bits", None), np.ndarray):  # bfloat16 bits in a file
        bits = from_memmap(value.bits, origin)
        return EncodedRows(bits, value.encoding) if bits is not None else value
    described = from_memmap(value, origin) if isinstance(value, np.ndarray) else None
    return described if described is not None else value


def _chunks(layout: stream.Layout, sources: Mapping[str, Any], chunk_rows: int | None, size: int) -> list[tuple[int, int]]:
    if chunk_rows is not None and chunk_rows < 1:
        raise UsageError(f"{ref('chunk_rows')}: must be 1 or more; got {chunk_rows}")
    itemsize = np.dtype(getattr(sources.get(layout.kind), "dtype", np.float64)).itemsize
    return _cut(layout.n, chunk_rows or max(1, size // max(1, layout.row_elems * itemsize)))


def _cut(n: int, rows: int) -> list[tuple[int, int]]:
    """Chunks of ``rows`` rows. (Not also at shard boundaries: a task reads across files as
    cheaply, and every task costs a scheduler round trip.)"""
    return [(i0, min(i0 + rows, n)) for i0 in range(0, n, rows)]


class DaskExecutor:
    """``lossctl.compute(call, executor=DaskExecutor(...))``: the call's rows computed on Dask.

    ``scheduler``: the scheduler's address (a local cluster started for the call when None);
    ``chunk_rows``: rows per task (default: about :data:`CHUNK_BYTES` of the prediction);
    ``grad_output``: the ``-o`` path next to which gradient shards are written (``force``:
    replace existing ones); ``client``: an already connected :class:`distributed.Client`."""

    name = "dask"

    def __init__(self, scheduler: str | None = None, chunk_rows: int | None = None, grad_output: Any = None,
                 force: bool = False, client: Any = None):
        _require()
        self.scheduler = scheduler
        self.chunk_rows = chunk_rows
        self.grad_output = grad_output
        self.force = force
        self.client = client

    def __call__(self, spec: LossSpec, arrays: Mapping[str, Any], params: Mapping[str, Any], reduction: str,
                 **kwargs: Any) -> Result | None:
        return run(spec, arrays, params, reduction, scheduler=self.scheduler, chunk_rows=self.chunk_rows,
                   grad_output=self.grad_output, force=self.force, client=self.client, **kwargs)

    def token_nll(self, lay: Any, *, dtype, per_sample: bool, nonfinite: list | None = None,
                  grad_scale: np.ndarray | None = None, grad_out: Any = None,
                  progress: Callable[[int, int], None] | None = None):
        """``lossctl lm``'s per-token NLL (:func:`lossctl.losses.lm.token_nll`) of the rows of
        ``lay`` (a :class:`lossctl.losses.lm.TokenLayout`), computed by the workers from their
        own rows of the logits: ``(nll, grad)``, the same values. With ``grad_scale`` each task
        also computes its rows' gradient: into ``grad_out`` when given, else into ``.npy``
        shards next to ``grad_output`` (the logits' sharding, the logits' shape; then grad is
        None), else back to the client (a small input only)."""
        from dataclasses import replace

        n, v = lay.rows.shape
        dtype = np.dtype(dtype)
        source = row_source(lay.rows, "logits")
        job = {"layout": replace(lay, rows=None, target=None, counted=None), "rows": source, "target": lay.target,
               "counted": lay.counted, "dtype": dtype.str, "per_sample": per_sample, "grad_scale": grad_scale}
        size = chunk_bytes(self.scheduler, self.client)
        rows = self.chunk_rows or max(1, size // max(1, v * np.dtype(getattr(lay.rows, "dtype", np.float64)).itemsize))
        chunks = _cut(n, rows)
        grad = None
        out = np.zeros(n, dtype=dtype)
        with _committed({}) as writers:
            if grad_scale is not None:
                if grad_out is not None:
                    grad = grad_out
                elif self.grad_output is not None:
                    writers["logits"] = self._grad_shards(lay, source, dtype)
                else:
                    _check_grad_back(n * v * dtype.itemsize)
                    grad = np.empty((n, v), dtype=dtype)
            targets = writers["logits"].parts if writers else None
            with (contextlib.nullcontext(self.client) if self.client is not None else client_for(self.scheduler)) as c:
                run_ = _Run(c, None, None, job, chunks, None, None, progress)
                for (r0, r1), (values, found, g) in run_.ordered(token_nll_task, lambda r0, r1: (targets,), n):
                    out[r0:r1] = values
                    if g is not None:
                        grad[r0:r1] = g
                    if nonfinite is not None:
                        nonfinite += found
        return out, grad

    def linear_ce(self, x: Mapping[str, Any], params: Mapping[str, Any], *, reduction: str, dtype, grad: bool):
        """``lossctl linear-ce`` (:func:`lossctl.losses.linear_ce.evaluate`) on the workers, its
        numbers bit for bit: tasks of whole token blocks of the plan (``chunk_rows`` rounded up
        to a multiple of it) give every row's value, log-sum-exp and ∂/∂hidden (into shards next
        to ``grad_output``: the hidden states' sharding); then tasks of whole class chunks sum
        ∂/∂lm_head and ∂/∂lm_head_bias over the token blocks in order."""
        from ..losses import linear_ce

        dtype = np.dtype(dtype)
        if reduction not in ("mean", "sum", "none"):
            raise InvalidInput("reduction", f"expected mean, sum or none, got {reduction!r}")
        if np.ndim(x["hidden"]) != 2:  # one token: nothing to share out
            return linear_ce.evaluate(x, params, reduction=reduction, dtype=dtype, grad=grad)
        call = linear_ce.prepare(x, params, dtype, load_hidden=False)
        n, d = call.h.shape
        v = call.w_head.shape[0]
        tiles = linear_ce.plan(v, d, dtype)
        denom, w_sum, _ = linear_ce.denominator(call, reduction, dtype)
        hidden = row_source(x["hidden"], "hidden")
        lm_head = row_source(x["lm_head"], "lm_head")
        job = {"hidden": hidden, "target": row_source(x["target"], "target"),
               "lm_head": RowView(lm_head) if getattr(lm_head, "lazy_rows", False) or hasattr(lm_head, "rows") else lm_head,
               "bias": call.bias, "params": {k: params.get(k) for k in ("weight", "ignore_index", "label_smoothing")},
               "dtype": dtype.str, "reduction": reduction, "grad": grad, "tiles": tiles, "denom": denom,
               "w_sum": w_sum, "n": n, "d": d, "blas_threads": linear_ce.product_threads() or blas_threads()}
        step = tiles.rows * max(1, -(-(self.chunk_rows or tiles.rows) // tiles.rows))
        chunks = [(i0, min(i0 + step, n)) for i0 in range(0, n, step)]
        values = np.empty(n, dtype=dtype)
        lse = np.empty(n, dtype=dtype)
        tsum = None if call.index else np.empty(n, dtype=dtype)
        grads: dict[str, np.ndarray] = {}
        with _committed({}) as writers:
            if grad and self.grad_output is not None:
                self._lce_shards(writers, hidden, n, d, v, call.bias is not None, dtype)
            elif grad:
                _check_grad_back(n * d * dtype.itemsize)
                grads["hidden"] = np.empty((n, d), dtype=dtype)
            targets = writers["hidden"].parts if writers else None
            with (contextlib.nullcontext(self.client) if self.client is not None else client_for(self.scheduler)) as c:
                run_ = _Run(c, None, None, job, chunks, None, None, None)
                for (i0, i1), (vals, ls, ts, g_h) in run_.ordered(lce_rows_task, lambda i0, i1: (targets,), n):
                    values[i0:i1], lse[i0:i1] = vals, ls
                    if tsum is not None:
                        tsum[i0:i1] = ts
                    if g_h is not None:
                        grads["hidden"][i0:i1] = g_h
                if grad:
                    g_w = np.empty((v, d), dtype=dtype)
                    g_b = np.empty(v, dtype=dtype) if call.bias is not None else None
                    per = max(1, -(-len(tiles.chunks()) // run_.window))  # class chunks per task
                    cuts = [c0 for c0, _ in tiles.chunks()][::per] + [v]
                    sums = c.scatter([(lse, tsum)], broadcast=True, hash=False)[0]
                    for (c0, c1), (w_part, b_part) in run_.ordered(lce_head_task, lambda c0, c1: (sums,), v,
                                                                   chunks=list(zip(cuts[:-1], cuts[1:]))):
                        g_w[c0:c1] = w_part
                        if g_b is not None:
                            g_b[c0:c1] = b_part
                    if writers:
                        from ..io.shards import write_rows

                        write_rows(writers["lm_head"].parts, 0, g_w)
                        if g_b is not None:
                            write_rows(writers["lm_head_bias"].parts, 0, g_b)
                    else:
                        grads["lm_head"] = g_w
                        if g_b is not None:
                            grads["lm_head_bias"] = g_b
        return linear_ce.finish(values, reduction, denom, dtype, False, grads)

    def _lce_shards(self, writers: dict, hidden: Any, n: int, d: int, v: int, bias: bool, dtype: np.dtype) -> None:
        """Writers of linear-ce's gradients next to ``grad_output``, into ``writers``: ∂/∂hidden
        with the hidden states' sharding, ∂/∂lm_head and ∂/∂lm_head_bias as one shard each."""
        from pathlib import Path

        from ..io.shards import ShardWriter

        out = Path(self.grad_output)
        bounds = hidden.boundaries() if hasattr(hidden, "boundaries") else [0, n]
        writers["hidden"] = ShardWriter(out, "grad_hidden", bounds, (n, d), dtype, self.force)
        writers["lm_head"] = ShardWriter(out, "grad_lm_head", [0, v], (v, d), dtype, self.force)
        if bias:
            writers["lm_head_bias"] = ShardWriter(out, "grad_lm_head_bias", [0, v], (v,), dtype, self.force)

    def _grad_shards(self, lay: Any, source: Any, dtype: np.dtype):
        """The writer of the logits' gradient as shards next to ``grad_output``: the logits'
        own shape and sharding ((B, T, V) shards are cut between sequences)."""
        from pathlib import Path

        from ..io.shards import ShardWriter

        n = lay.batch * lay.length
        bounds = source.boundaries() if hasattr(source, "boundaries") else [0, n]
        shape = (lay.length, lay.vocab) if lay.unbatched else (lay.batch, lay.length, lay.vocab)
        per = 1 if lay.unbatched else lay.length  # token rows per row of the logits' first axis
        writer = ShardWriter(Path(self.grad_output), "grad_logits", [b // per for b in bounds], shape, dtype, self.force)
        # the tasks write token rows: the same shards seen as (rows, V)
        writer.parts = [(path, start * per, stop * per) for path, start, stop in writer.parts]
        return writer


@contextlib.contextmanager
def _committed(writers: Mapping[str, Any]):
    """The shard writers in ``writers`` (filled inside the block) are committed when the block
    ends normally, and their files removed when it fails: no partial output."""
    try:
        yield writers
        for w in writers.values():
            w.commit()
    except BaseException:
        for w in writers.values():
            w.abort()
        raise


def _check_grad_back(size: int) -> None:
    if size > GRAD_BACK_BYTES:
        raise UsageError(f"{ref('grad')} with {ref('backend')} dask: the gradient ({size >> 20} MiB) is written as "
                         f"shards next to {ref('output')}; give {ref('output')} FILE")


def run(spec: LossSpec, arrays: Mapping[str, Any], params: Mapping[str, Any], reduction: str, *,
        dtype: str = "float64", dim: int | None = None, origins: Mapping[str, str] | None = None,
        grad: bool = False, keep_values: bool = True, sink: Any = None, grad_output: Any = None,
        force: bool = False, progress: Callable[[int, int], None] | None = None, scheduler: str | None = None,
        chunk_rows: int | None = None, client: Any = None) -> Result | None:
    """Evaluate a call on Dask; None when it does not split into rows (the caller evaluates it
    in memory, where any problem with the inputs is reported).

    ``sink``: the ``-o`` stream that receives the per-sample values in order; ``grad_output``:
    the ``-o`` path next to which gradient shards are written; ``client``: an already connected
    client."""
    _require()
    origins = dict(origins or {})
    if dtype not in DTYPES:
        return None
    layout = stream.plan(spec, arrays, params, dim=dim, grad=grad)
    if layout is None:
        return None
    n = layout.n
    ftype = np.dtype(DTYPES[dtype])
    job = {
        "loss": spec.name, "kind": layout.kind, "n": n, "reduction": reduction, "dtype": dtype, "dim": dim,
        "origins": origins, "compiled": True, "whole": layout.whole,
        "params": {k: v for k, v in layout.params.items() if k not in layout.params_sliced},
        "sliced": {k: row_source(a, origins.get(k, k)) for k, a in layout.sliced.items()},
        "params_sliced": {k: row_source(a, origins.get(k, k)) for k, a in layout.params_sliced.items()},
    }
    size = chunk_bytes(scheduler, client)
    # Block buffers kept by each worker thread, not in this process (where malloc keeps freed
    # blocks for the next one anyway and the client's peak memory counts)
    job["reuse"] = size == CHUNK_BYTES
    if not grad and _windowed(job, layout.kind):
        size = CHUNK_BYTES  # the tasks read the prediction block by block: their size is not the peak
    chunks = _chunks(layout, job["sliced"], chunk_rows, size)
    grad_names = [k for k in (layout.kind, *spec.extra_inputs) if k in layout.sliced] if grad else []
    if grad and grad_output is None:
        _check_grad_back(sum(int(np.prod(np.shape(layout.sliced[k]), dtype=np.int64)) for k in grad_names) * ftype.itemsize)
    per_sample = keep_values or sink is not None or reduction == "none"
    with (contextlib.nullcontext(client) if client is not None else client_for(scheduler)) as c:
        return _Run(c, spec, layout, job, chunks, reduction, ftype, progress).go(
            grad=grad, per_sample=per_sample, keep_values=keep_values or reduction == "none", sink=sink,
            grad_names=grad_names, grad_output=grad_output, force=force)


class _Run:
    def __init__(self, client, spec, layout, job, chunks, reduction, ftype, progress):
        self.client = client
        self.spec = spec
        self.layout = layout
        self.chunks = chunks
        self.reduction = reduction
        self.ftype = ftype
        self.progress = progress
        self.done = 0
        self.warnings: list = []
        # every worker gets the job once (inputs in the client's memory travel here, once)
        self.job = client.scatter([job], broadcast=True, hash=False)[0]
        self.window = max(4, 2 * sum(client.nthreads().values()))

    def go(self, *, grad, per_sample, keep_values, sink, grad_names, grad_output, force) -> Result:
        n = self.layout.n
        phases = 2 if grad else 1
        total_state = exactsum.zeros()
        den_state = None
        values_out = None
        writer = None
        vshape = vdtype = None
        for (i0, i1), part in self.ordered(values_task, lambda i0, i1: (per_sample,), n * phases):
            total_state = exactsum.merge(total_state, part.total)
            if part.den is not None:
                den_state = part.den if den_state is None else exactsum.merge(den_state, part.den)
            self.warnings += part.warnings
            if vshape is None:
                vshape, vdtype = (n,) + tuple(part.value_shape), np.dtype(part.value_dtype)
                values_out = np.empty(vshape, dtype=vdtype) if keep_values else None
                writer = sink.array("per_sample", vshape, vdtype) if sink is not None else None
            if part.values is not None:
                if values_out is not None:
                    values_out[i0:i1] = part.values
                if writer is not None:
                    writer.write(part.values)
        loss, denom = stream.reduce_sums(self.reduction, total_state, den_state, vshape, vdtype)
        grads: dict[str, np.ndarray] = {}
        if grad:
            grads = self._gradients(upstream(denom), grad_names, grad_output, force, n)
        stream.emit_warnings(self.warnings)
        return Result(loss_name=self.spec.name, reduction=self.reduction, kind=self.layout.kind,
                      loss=values_out if self.reduction == "none" else loss, per_sample=values_out, grad=grads,
                      denominator=denom, dtype=self.ftype.name)

    def _gradients(self, upstream: float, names, grad_output, force: bool, n: int) -> dict[str, np.ndarray]:
        from pathlib import Path

        if grad_output is None:
            out: dict[str, np.ndarray] = {}
            for (i0, i1), (grads, warns) in self.ordered(grad_task, lambda i0, i1: (upstream, None), 2 * n, start=n):
                self.warnings += warns
                for name, g in grads.items():
                    if name not in out:
                        out[name] = np.empty((n,) + g.shape[1:], dtype=g.dtype)
                    out[name][i0:i1] = g
            return out
        from ..io.shards import ShardWriter

        with _committed({}) as writers:
            for name in names:
                a = self.layout.sliced[name]
                bounds = a.boundaries() if hasattr(a, "boundaries") else [0, n]
                writers[name] = ShardWriter(Path(grad_output), f"grad_{name}", bounds, tuple(np.shape(a)), self.ftype, force)
            targets = {name: w.parts for name, w in writers.items()}
            for _, (_, warns) in self.ordered(grad_task, lambda i0, i1: (upstream, targets), 2 * n, start=n):
                self.warnings += warns
        return {}

    def ordered(self, fn, extra, total_rows: int, start: int = 0, chunks: list | None = None):
        """Submit one task per chunk (a window at a time) and yield ((i0, i1), result) in row order."""
        from distributed import as_completed

        chunks = list(self.chunks if chunks is None else chunks)
        futures: dict[Any, tuple[int, int, int]] = {}
        pending: dict[int, Any] = {}
        todo = iter(enumerate(chunks))
        done_rows = start
        ac = None
        attempts: dict[int, int] = {}

        def submit(k: int, i0: int, i1: int):
            fut = self.client.submit(fn, self.job, i0, i1, *extra(i0, i1), retries=RETRIES, pure=False,
                                     key=f"lossctl-{fn.__name__}-{k}-{os.urandom(4).hex()}")
            futures[fut.key] = (k, i0, i1)
            if ac is not None:
                ac.add(fut)
            return fut

        def submit_next():
            nxt = next(todo, None)
            return None if nxt is None else submit(nxt[0], *nxt[1])

        first = [f for f in (submit_next() for _ in range(self.window)) if f is not None]
        ac = as_completed(first, loop=self.client.loop)
        following = 0
        try:
            for fut in ac:
                k, i0, i1 = futures.pop(fut.key)
                try:
                    result = fut.result()
                except LossctlError:
                    raise
                except Exception as e:
                    # A result lost with its worker before it was fetched comes back as an error
                    # here: the chunk is submitted again (the scheduler itself gives up with
                    # KilledWorker when its tasks keep killing workers).
                    attempts[k] = attempts.get(k, 0) + 1
                    if type(e).__name__ == "KilledWorker" or attempts[k] > RETRIES:
                        raise InputError(_failure(e, i0, i1)) from None
                    submit(k, i0, i1)
                    continue
                finally:
                    fut.release()
                pending[k] = result
                submit_next()
                while following in pending:
                    a, b = chunks[following]
                    yield (a, b), pending.pop(following)
                    done_rows += b - a
                    if self.progress is not None:
                        self.progress(done_rows, total_rows)
                    following += 1
        finally:
            for fut in list(getattr(ac, "futures", ())):
                fut.cancel()


def _failure(e: BaseException, i0: int, i1: int) -> str:
    kind = type(e).__name__
    if kind == "KilledWorker":
        return (f"a Dask worker died while computing rows {i0}..{i1} and the scheduler gave up on them "
                f"(it allows distributed.scheduler.allowed-failures such losses): {e}; nothing was written")
    return f"the Dask cluster failed while computing rows {i0}..{i1}: {kind}: {e}; nothing was written"
