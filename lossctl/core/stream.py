"""Streaming evaluation: any separable loss, one block of rows at a time, on every core.

A loss whose ``LossSpec.batch_axis`` is 0 is *separable*: row n of its per-sample
values depends only on row n of each batch-aligned input, its reduction is
``Σ values / Σ denominator``, and its gradient is ``upstream · ∂Σ values`` with the
scalar ``upstream = 1/D``. So a large call runs over blocks of rows:

1. **values** — each block is ``prepare``d (cast to the compute dtype, validated:
   class-index ranges, NaN checks, the loss's own validator) and its forward kernel
   runs on a worker thread; ``Σ values`` and ``Σ denominator`` accumulate exactly
   (also for ``--dtype float32``), per-sample values go where they are
   wanted (an array, or ``-o FILE`` as they stream);
2. **gradients** — ``upstream = 1/D`` is known now: each block is prepared again,
   backward and the conversion's vector-Jacobian product run, and the gradient
   block is stored or written. When the upstream is known before the data (``sum``,
   ``none``, ``batchmean``, and a ``mean`` whose forward has no denominator
   weights) both happen in one pass.

Blocks are prepared and computed on a small thread pool (NumPy releases the GIL
inside its loops) and consumed in order on the calling thread, so the first
invalid row is the one reported; warnings from the blocks are collected and shown
once, merged, as the in-memory path shows them. Blocks of memory-mapped inputs
(``.npy``) are dropped from the process's resident set once used
(``madvise(MADV_DONTNEED)``): a file larger than RAM streams in constant memory.

Numerically the result is the in-memory one, bit for bit: the same kernels see the
same rows (``fused_forward`` kernels give the same numbers bit for bit), and each block's
``Σ values`` and ``Σ denominator`` are exact-sum states (:mod:`lossctl.core.exactsum`) merged
exactly and rounded once, as the in-memory reduction rounds its one exact sum.

Which inputs are cut into blocks: the prediction; every input with its leading
dimension equal to N and the prediction's number of dimensions (or fewer, for a
class-index target, an extra input such as gaussian-nll's per-sample ``var``, or a
loss whose target is not broadcast, e.g. cosine-embedding's (N,) labels); array
parameters with the prediction's number of dimensions and leading dimension N
(an element weight). Everything else (class weights, a broadcast target) is given
whole to every block. A loss that is not separable along axis 0
(``batch_axis`` None or 1, e.g. CTC's (T, N, C)) is always evaluated in memory,
as are ``--explain`` and inputs whose layout is not batch-first (``--dim 0``).

Tuning (environment): ``LOSSCTL_STREAM_MIN_BYTES`` (inputs smaller than this are
evaluated in memory; default 16 MiB), ``LOSSCTL_BLOCK_BYTES`` (prediction bytes per
block in the compute dtype; default 4 MiB), ``LOSSCTL_THREADS`` (default: up to 2).
"""

from __future__ import annotations

import contextlib
import mmap
import os
import re
import threading
import warnings
from collections import deque
from dataclasses import dataclass, replace
from typing import Any, Callable, Mapping

import numpy as np

from . import exactsum
from ..errors import InputWarning, LossctlError, ref
from .prepare import DTYPES, prepare
from .registry import TARGET, LossSpec


def _env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


def min_bytes() -> int:
    return _env_int("LOSSCTL_STREAM_MIN_BYTES", 16 << 20)


def block_bytes() -> int:
    return max(1, _env_int("LOSSCTL_BLOCK_BYTES", 4 << 20))


def threads() -> int:
    return max(1, _env_int("LOSSCTL_THREADS", min(2, os.cpu_count() or 1)))


_POOLS: dict[tuple[int, int], Any] = {}
_POOLS_LOCK = threading.Lock()


def _pool(n_threads: int):
    """The process's pool of ``n_threads`` block workers, started on first use and kept: starting
    threads for every call costs about as much as a large block's arithmetic. A forked child
    starts its own (the parent's threads do not exist there)."""
    from concurrent.futures import ThreadPoolExecutor

    key = (os.getpid(), n_threads)
    with _POOLS_LOCK:
        pool = _POOLS.get(key)
        if pool is None:
            pool = _POOLS[key] = ThreadPoolExecutor(max_workers=n_threads, thread_name_prefix="lossctl")
        return pool


class _NotSeparable(Exception):
    """A kernel's output does not follow the rows (its values are not one row per input row)."""


@dataclass
class Layout:
    """How a call splits into row blocks."""

    spec: LossSpec
    kind: str
    n: int  # rows along the batch axis
    sliced: dict[str, np.ndarray]  # inputs cut into blocks along axis 0
    whole: dict[str, Any]  # inputs given whole to every block
    params_sliced: dict[str, np.ndarray]
    params: dict[str, Any]  # every parameter (sliced ones replaced per block)
    row_elems: int  # elements in one row of the prediction
    nbytes: int  # bytes of the sliced inputs, as given


def _as_array(value: Any) -> np.ndarray | None:
    if isinstance(value, np.ndarray) or hasattr(value, "widen") or getattr(value, "lazy_rows", False):
        # an encoded array (bfloat16) is widened per block; a sharded array is read per block  # an encoded array (bfloat16): widened per block
        return value
    if hasattr(value, "encoding") and hasattr(value, "bits"):  # raw bits (bfloat16): sliced, widened per block
        return value
    try:
        a = np.asarray(value)
    except (ValueError, TypeError):
        return None
    return a


def plan(spec: LossSpec, arrays: Mapping[str, Any], params: Mapping[str, Any], *,
         dim: int | None = None, grad: bool = False) -> Layout | None:
    """The block layout of a call, or None when it does not stream (then ``prepare`` and the
    in-memory path run, and report any problem with the inputs)."""
    if spec.batch_axis != 0:
        return None
    given = [k for k in spec.prediction_kinds if arrays.get(k) is not None]
    if len(given) != 1 or given[0] not in spec.kinds:
        return None
    kind = given[0]
    inputs: dict[str, np.ndarray] = {}
    for name, value in arrays.items():
        if value is None:
            continue
        a = _as_array(value)
        if a is None or a.dtype.kind not in "biuf":
            return None
        inputs[name] = a
    pred = inputs[kind]
    if pred.ndim == 0 or pred.shape[0] < 2:
        return None
    n = pred.shape[0]
    conversion = spec.kinds[kind]
    if conversion is not None and conversion.along_classes and pred.ndim < 2:
        return None  # one class vector (kl --logits on a 1-D input), not a batch
    leading = set(spec.extra_inputs) | set(spec.aux_inputs)
    if spec.has_class_axis(kind):
        if pred.ndim < 2 or (dim is not None and not (-pred.ndim <= dim < pred.ndim and dim % pred.ndim == 1)):
            return None
        leading.add(TARGET)
    else:
        if dim is not None:
            return None
        if spec.target != "broadcast":
            leading.add(TARGET)
    if any(a.ndim > pred.ndim for a in inputs.values()):
        return None  # the prediction broadcasts along a larger target: its gradient sums over rows
    sliced: dict[str, np.ndarray] = {}
    whole: dict[str, Any] = {}
    for name, a in inputs.items():
        if name == kind or (a.ndim >= 1 and a.shape[0] == n and (a.ndim == pred.ndim or name in leading)):
            sliced[name] = a
        elif a.ndim == pred.ndim and a.shape[0] != 1:
            return None  # a mismatch: the in-memory path reports it
        else:
            whole[name] = a
    if grad and any(name not in sliced for name in (kind, *spec.extra_inputs) if name in inputs):
        return None
    params = dict(params)
    params_sliced: dict[str, np.ndarray] = {}
    for p in spec.params:
        value = params.get(p.name)
        if p.kind != "array" or value is None:
            continue
        a = _as_array(value)
        if a is not None and a.dtype.kind in "biuf" and a.ndim == pred.ndim and a.shape[0] == n:
            params_sliced[p.name] = a
    row_elems = int(np.prod(pred.shape[1:], dtype=np.int64))
    nbytes = sum(int(a.nbytes) for a in sliced.values()) + sum(int(a.nbytes) for a in params_sliced.values())
    return Layout(spec, kind, n, sliced, whole, params_sliced, params, row_elems, nbytes)


def _pick_block_rows(layout: Layout, itemsize: int, block_rows: int | None) -> int:
    n = layout.n
    if block_rows:
        rows = int(block_rows)
    else:
        rows = block_bytes() // max(1, layout.row_elems * itemsize)
    rows = max(1, min(rows, n))
    # Messages from a block name its shape; they are rewritten to the whole input's shape,
    # which is unambiguous when the block's row count is no other dimension of any input.
    dims = _other_dims(layout)
    while rows < n and (rows in dims or (n % rows and n % rows in dims)):
        rows += 1
    return rows


def _other_dims(layout: Layout) -> set[int]:
    """Every dimension of the inputs other than their rows (a block's row count that is one of
    them would make its messages ambiguous)."""
    dims = set()
    for name, a in list(layout.sliced.items()) + list(layout.whole.items()) + list(layout.params_sliced.items()):
        shape = np.shape(a)
        dims.update(shape[1:] if name in layout.sliced or name in layout.params_sliced else shape)
    return dims


def _short_first(layout: Layout, rows: int) -> list[tuple[int, int]] | None:
    """Blocks of ``rows`` rows after a first one of about ``rows / 8``, or None when no such
    first block keeps every block's row count unambiguous in messages (see
    :func:`_pick_block_rows`)."""
    n = layout.n
    if rows < 64 or n <= rows:
        return None
    dims = _other_dims(layout)
    if rows in dims:
        return None
    for first in range(rows // 8, rows // 4):
        last = (n - first) % rows
        if first not in dims and last not in dims:
            return [(0, first)] + [(i, min(i + rows, n)) for i in range(first, n, rows)]
    return None


# -- memory-mapped inputs: give each used block's pages back --------------------------------


def _mapping(a: np.ndarray) -> tuple[mmap.mmap, int] | None:
    """(the mmap behind ``a``, the address where it starts) for a view of an ``np.memmap``."""
    root = a
    while isinstance(root.base, np.ndarray):
        root = root.base
    mm = getattr(root, "_mmap", None)
    if not isinstance(mm, mmap.mmap) or not hasattr(mm, "madvise"):
        return None
    offset = int(getattr(root, "offset", 0))
    start = offset - offset % mmap.ALLOCATIONGRANULARITY
    return mm, int(root.ctypes.data) - (offset - start)


def _byte_bounds(a: np.ndarray) -> tuple[int, int]:
    try:
        from numpy.lib.array_utils import byte_bounds
    except ImportError:  # NumPy < 2
        byte_bounds = np.byte_bounds
    return byte_bounds(a)


class Pages:
    """Drops the pages of used row blocks of memory-mapped inputs from the resident set."""

    def __init__(self, arrays: list[np.ndarray]):
        self.maps = []
        for a in arrays:
            a = getattr(a, "bits", a)  # an encoded array's pages are its bits'
            m = _mapping(a) if isinstance(a, np.ndarray) else None
            if m is not None:
                self.maps.append((a, *m))
                try:
                    m[0].madvise(mmap.MADV_SEQUENTIAL)
                except (OSError, ValueError, AttributeError):
                    pass

    def release(self, i0: int, i1: int) -> None:
        page = mmap.PAGESIZE
        for a, mm, base in self.maps:
            block = a[i0:i1]
            if block.size == 0:
                continue
            lo, hi = _byte_bounds(block)
            if hi - lo > 2 * block.nbytes + 2 * page:  # scattered rows: nothing compact to release
                continue
            start = -(-(lo - base) // page) * page
            end = (hi - base) // page * page
            if end > start >= 0:
                try:
                    mm.madvise(mmap.MADV_DONTNEED, start, end - start)
                except (OSError, ValueError):
                    pass


# -- messages from a block, in terms of the whole input ---------------------------------------

_ROW = re.compile(r"\b(row |sample |index \[)(\d+)")
_COUNTS = re.compile(r"(\d+)( NaN| infinite|(?= of \d+ rows))")


class _Messages:
    def __init__(self, layout: Layout, origins: Mapping[str, str], offset: int = 0, total_rows: int | None = None):
        # a chunk of a larger call (rows offset .. offset + layout.n of total_rows) speaks of the whole
        self.n = layout.n if total_rows is None else total_rows
        self.offset = offset
        names = list(layout.sliced) + list(layout.params_sliced)
        self.origins = tuple(origins.get(k, ref(k)) for k in names)
        self.warnings: list[tuple[int, str, str]] = []  # (first row of the block, message, problem)

    def rewrite(self, msg: str, i0: int, rows: int) -> str:
        """A block's message about the whole input: row numbers shifted by the block's first
        row, the block's shape and row count replaced by the input's."""
        if rows != self.n:
            msg = re.sub(rf"\({rows}(?=,|\))", f"({self.n}", msg)
            msg = re.sub(rf"(?<= of ){rows}(?= rows)", str(self.n), msg)
        i0 += self.offset
        if i0 and msg.startswith(self.origins):
            msg = _ROW.sub(lambda m: f"{m.group(1)}{int(m.group(2)) + i0}", msg)
        return msg

    def collect(self, w: InputWarning, i0: int, rows: int) -> None:
        """Keep a block's warning (blocks may finish in any order: sorted at ``emit``)."""
        item = (i0 + self.offset, self.rewrite(w.args[0], i0, rows), self.rewrite(getattr(w, "problem", w.args[0]), i0, rows))
        if item not in self.warnings:  # a block prepared again (its gradient pass) warns again
            self.warnings.append(item)

    def emit(self) -> None:
        """One warning per kind, as the in-memory path gives it: the first block's message
        (so the first position), with the counts of every block added up."""
        items = list(self.warnings)
        self.warnings.clear()
        emit_warnings(items)

    @contextlib.contextmanager
    def recording(self, where):
        """While blocks run (on any thread), an InputWarning from ``prepare`` is kept with the
        block it came from (``where.block``, thread-local) instead of being shown; ``emit``
        shows them afterwards, merged, where filters such as ``--strict`` apply."""
        with warnings.catch_warnings():
            warnings.simplefilter("always", InputWarning)
            shown = warnings.showwarning

            def show(message, category, filename, lineno, file=None, line=None):
                block = getattr(where, "block", None)
                if issubclass(category, InputWarning) and block is not None:
                    self.collect(message if isinstance(message, InputWarning) else category(str(message)), *block)
                else:
                    shown(message, category, filename, lineno, file, line)

            warnings.showwarning = show
            yield


def emit_warnings(items) -> None:
    """Show blocks' warnings ``(first row, message, problem)`` (from any blocks, processes or
    machines, in any order) as the in-memory path shows them: one per kind, the first
    block's message (so the first position), with the counts of every block added up."""
    merged: dict[str, list[str]] = {}
    for _, msg, problem in sorted(items, key=lambda w: w[0]):
        key = re.sub(r"\d+", "#", re.sub(r"\bvalues\b", "value", msg.split(" (", 1)[0]))
        seen = merged.get(key)
        if seen is None:
            merged[key] = [msg, problem]
        else:
            seen[0] = _add_counts(seen[0], msg)
            seen[1] = _add_counts(seen[1], problem)
    for msg, problem in merged.values():
        warnings.warn(InputWarning(msg, problem), stacklevel=3)


def _add_counts(first: str, other: str) -> str:
    """``3 NaN values (the first at row 5)`` + ``2 NaN values ...`` → ``5 NaN values (the first at row 5)``."""
    extra = {m.group(2): int(m.group(1)) for m in _COUNTS.finditer(other)}
    total = [0]

    def add(m):
        value = int(m.group(1)) + extra.get(m.group(2), 0)
        total[0] += value
        return f"{value}{m.group(2)}"

    out = _COUNTS.sub(add, first)
    if total[0] > 1:
        out = re.sub(r"(\d+ (?:NaN|infinite)(?: and \d+ (?:NaN|infinite))?) value\b(?!s)", r"\1 values", out)
    return out


# -- the engine ----------------------------------------------------------------------------


def _standin(a: np.ndarray) -> np.ndarray:
    """The converted prediction's place holder while a fused forward skips the conversion:
    right shape and dtype, no memory (validators of such losses look at shapes only)."""
    return np.broadcast_to(np.zeros((), dtype=a.dtype), a.shape)


class Engine:
    def __init__(self, layout: Layout, reduction: str, *, dtype: str, dim: int | None,
                 origins: Mapping[str, str] | None, block_rows: int | None,
                 progress: Callable[[int, int], None] | None, use_compiled: bool = False,
                 offset: int = 0, total_rows: int | None = None, n_threads: int | None = None):
        self.layout = layout
        self.spec = layout.spec
        self.kind = layout.kind
        self.reduction = reduction
        self.dtype_name = dtype
        self.ftype = DTYPES.get(dtype, np.float64)
        self.dim = dim
        self.origins = dict(origins or {})
        self.block_rows = block_rows
        self.rows = _pick_block_rows(layout, np.dtype(self.ftype).itemsize, block_rows)
        self.blocks = [(i, min(i + self.rows, layout.n)) for i in range(0, layout.n, self.rows)]
        self.messages = _Messages(layout, self.origins, offset, total_rows)
        self.pages = Pages(list(layout.sliced.values()) + list(layout.params_sliced.values()))
        self.progress = progress
        self.threads = threads() if n_threads is None else max(1, n_threads)
        self.precast = [name for name, a in layout.sliced.items()
                        if (a.dtype.kind == "f" and a.dtype != self.ftype or hasattr(a, "widen"))
                        and (name in self.spec.kinds or name in self.spec.extra_inputs or name == TARGET)]
        self.rings: dict[str, list[np.ndarray]] = {}
        self.ring_lock = threading.Lock()
        self.ring_size = self.threads + 3  # blocks alive at once: the window, one being prepared, one consumed
        self.where = threading.local()  # the block a thread is preparing (for its warnings)
        conversion = self.spec.kinds[self.kind]
        self.fused_spec = None
        if self.spec.fused_forward is not None:
            fused_kinds = dict(self.spec.kinds)
            if conversion is not None:
                fused_kinds[self.kind] = replace(conversion, forward=_standin)
            self.fused_spec = replace(self.spec, kinds=fused_kinds)
        # A compiled kernel (lossctl.core.kernels) reads the prediction as given: no cast, no conversion.
        self.values_out = None  # the per-sample array the compiled kernel writes into, when kept
        self.compiled_spec = None
        if use_compiled and self.spec.compiled_forward is not None and dtype == "float64":
            from .kernels import compiled, input_format

            pred = layout.sliced[self.kind]
            if getattr(pred, "lazy_rows", False):  # a sharded array: its blocks are arrays; look at one row
                pred = pred[:1]
            if compiled() is not None and input_format(pred) is not None:
                self.compiled_spec = replace(self.spec, kinds={
                    k: None if c is None else replace(c, forward=_standin) for k, c in self.spec.kinds.items()})

    # -- blocks ------------------------------------------------------------------------------

    def _block_inputs(self, i0: int, i1: int) -> tuple[dict, dict, dict]:
        """(inputs for ``prepare``, parameters, the raw blocks as given)."""
        lay = self.layout
        raw = {k: a[i0:i1] for k, a in lay.sliced.items()}
        arrays = dict(raw)
        # Floating inputs that prepare would cast to the compute dtype are cast here, into a
        # ring of reused buffers: a fresh multi-MB array per block costs page faults (and, with
        # threads, malloc trims and refaults) comparable to the arithmetic on it.
        for name in self.precast:
            shape = raw[name].shape
            with self.ring_lock:  # two threads may reach a new ring at once: allocate it whole, once
                ring = self.rings.get(name)
                if ring is None:
                    ring = self.rings[name] = [np.empty((self.rows,) + shape[1:], dtype=self.ftype)
                                               for _ in range(self.ring_size)]
            slot = (i0 // self.rows) % self.ring_size
            buf = ring[slot][:shape[0]]
            widen = getattr(raw[name], "widen", None)
            if widen is not None:  # bfloat16/float8 bits: widened exactly, straight into the buffer
                widen(out=buf)
                raw[name] = buf  # kernels see numbers only
            else:
                np.copyto(buf, raw[name], casting="unsafe")
            arrays[name] = buf
        arrays.update(lay.whole)
        params = dict(lay.params)
        params.update({k: a[i0:i1] for k, a in lay.params_sliced.items()})
        return arrays, params, raw

    def _prepare(self, i0: int, i1: int, fused: bool):
        """``prepare`` one block (on any thread, inside ``messages.recording``): its errors and
        warnings are rewritten in terms of the whole input."""
        arrays, params, raw = self._block_inputs(i0, i1)
        spec = self.fused_spec if fused else self.spec
        self.where.block = (i0, i1 - i0)
        try:
            prep = prepare(spec, arrays, params, dtype=self.dtype_name, dim=self.dim, origins=self.origins)
        except LossctlError as e:
            raise type(e)(self.messages.rewrite(e.raw, i0, i1 - i0)) from None
        finally:
            self.where.block = None
        return prep, raw

    def _forward(self, prep, raw: dict, fused: bool):
        spec = self.spec
        if not fused:
            return spec.forward(prep.native, prep.params)
        native_kind = self._native_kind()
        x = dict(prep.given)
        x.update({k: v for k, v in prep.native.items() if k not in prep.given and k != native_kind})
        # Always the per-sample values bit for bit (``per_sample=True``), also when only their sum
        # is wanted: the reduction is their exact sum, the same for every path and block size.
        fwd = spec.fused_forward(self.kind, x, prep.params, {self.kind: raw[self.kind]}, True)
        if fwd is not None:
            return fwd
        # Not for this call after all: convert as prepare would have, and take the plain kernel.
        self.fused_declined = True
        native = dict(prep.native)
        conversion = spec.kinds[self.kind]
        native[native_kind] = conversion.forward(prep.given[self.kind]) if conversion else prep.given[self.kind]
        return spec.forward(native, prep.params)

    def _compiled_first(self):
        """Block 0 through the compiled kernel, in the (larger) blocks it takes; None (and the
        NumPy blocks back) when the kernel declines this call."""
        saved = self.rows, self.blocks, self.precast
        self.rows = _pick_block_rows(self.layout, 2, self.block_rows)  # 4x the rows: fewer calls
        self.blocks = [(i, min(i + self.rows, self.layout.n)) for i in range(0, self.layout.n, self.rows)]
        if not self.block_rows:
            # Block 0 runs alone on the calling thread (it decides whether the kernel takes the
            # call); a short one keeps the workers' share large. Values and exact sums do not
            # depend on where blocks start.
            self.blocks = _short_first(self.layout, self.rows) or self.blocks
        self.precast = [name for name in self.precast if name != self.kind]
        first = self._compiled_task(*self.blocks[0])
        if first is None:
            self.rows, self.blocks, self.precast = saved
        return first

    def _compiled_task(self, i0: int, i1: int):
        """One block through the loss's compiled kernel: (Σ values, Σ denominator, values, False,
        None) as ``_values_task`` gives them, or None when the kernel does not take this call.
        Inputs are validated by ``prepare`` as always, except the prediction's values: the kernel
        flags NaN/inf in them, and only then are they checked (and warned about) here."""
        from .kernels import widened
        from .prepare import check_finite

        arrays, params, raw = self._block_inputs(i0, i1)
        pred, rows = raw[self.kind], i1 - i0
        arrays[self.kind] = np.broadcast_to(np.zeros((), dtype=np.float64), pred.shape)
        self.where.block = (i0, rows)
        try:
            prep = prepare(self.compiled_spec, arrays, params, dtype=self.dtype_name, dim=self.dim,
                           origins=self.origins, unchecked=(self.kind,))
            with np.errstate(all="ignore"):
                block = self.spec.compiled_forward(self.kind, pred, prep.native, prep.params,
                                                   self._values_buffer(i0, rows))
            if block is not None and block.nonfinite:
                check_finite(self.origins.get(self.kind, ref(self.kind)), widened(pred),
                              log_scale=self.kind == "log_probs")
        except LossctlError as e:
            raise type(e)(self.messages.rewrite(e.raw, i0, rows)) from None
        finally:
            self.where.block = None
        if block is None:
            return None
        return block.total, block.denominator, block.values, False, None

    def _values_buffer(self, i0: int, rows: int) -> np.ndarray:
        """Where the kernel writes one block's values: straight into the call's per-sample array
        when it is kept (no copy on the calling thread, and its pages are first touched on the
        workers), else a reused float64 buffer (a ring, as for the casts)."""
        if self.values_out is not None:
            return self.values_out[i0:i0 + rows]
        with self.ring_lock:
            ring = self.rings.get("\0values")
            if ring is None:
                ring = self.rings["\0values"] = [np.empty(self.rows) for _ in range(self.ring_size)]
        return ring[(i0 // self.rows) % self.ring_size][:rows]

    def _native_kind(self) -> str:
        conversion = self.spec.kinds[self.kind]
        return conversion.target if conversion is not None else self.kind

    def _values_task(self, prep, raw, rows: int, fused: bool, upstream):
        """Pass 1 on one block: (Σ values, Σ denominator (exact-sum states), values, mean divisor,
        gradients)."""
        with np.errstate(all="ignore"):
            fwd = self._forward(prep, raw, fused)
            values = np.asarray(fwd.values)
            if values.ndim == 0 or values.shape[0] != rows:
                raise _NotSeparable
            block = None
            if self.compiled_spec is not None:  # the values every path gives (lossctl.core.kernels)
                block = self.spec.compiled_forward(self.kind, raw[self.kind], prep.native, prep.params, None)
            divisor = None
            if block is not None and fwd.mean_divisor is None:
                values = block.values.reshape(values.shape)
                total = block.total
            elif self.reduction == "mean" and fwd.mean_divisor is not None:
                divisor = np.asarray(fwd.mean_divisor, dtype=values.dtype)
                total = exactsum.accumulate(values / divisor)
            else:
                total = exactsum.accumulate(values)
            den = None if fwd.denominator is None else exactsum.accumulate(fwd.denominator)
            grads = self._grads(prep, upstream, divisor) if upstream is not None else None
        return total, den, values, fwd.mean_divisor is not None, grads

    def _grad_task(self, prep, upstream):
        with np.errstate(all="ignore"):
            divisor = None
            if self.has_divisor:
                fwd = self.spec.forward(prep.native, prep.params)
                divisor = np.asarray(fwd.mean_divisor, dtype=prep.dtype)
            return self._grads(prep, upstream, divisor)

    def _grads(self, prep, upstream: float, divisor) -> dict[str, np.ndarray]:
        from .evaluate import gradients as _gradients

        up = upstream
        if divisor is not None and self.reduction == "mean":
            up = np.asarray(upstream, dtype=prep.dtype) / divisor
        return _gradients(prep, up)

    def _run(self, make_task, consume, fused: bool, start: int = 0, phase: int = 0, phases: int = 1,
             compiled: bool = False) -> None:
        """Run each block (prepare + task) on the pool; consume the results here, in order."""
        blocks = self.blocks[start:]
        if not blocks:
            return
        total_rows = self.layout.n * phases
        done = self.blocks[start][0] + phase * self.layout.n

        def finish(item):
            nonlocal done
            (i0, i1), result = item
            consume(i0, i1, result)
            self.pages.release(i0, i1)
            done += i1 - i0
            if self.progress is not None:
                self.progress(done, total_rows)

        def job(i0, i1):  # on a worker: prepare (cast, validate) and compute one block
            if compiled:
                return self._compiled_task(i0, i1)
            prep, raw = self._prepare(i0, i1, fused)
            return make_task(prep, raw, i1 - i0)

        if self.threads <= 1 or len(blocks) == 1:
            for i0, i1 in blocks:
                finish(((i0, i1), job(i0, i1)))
            return
        from concurrent.futures import wait

        pool = _pool(self.threads)
        window: deque = deque()
        try:
            for i0, i1 in blocks:
                window.append(((i0, i1), pool.submit(job, i0, i1)))
                while len(window) > self.threads:
                    (blk, fut) = window.popleft()
                    finish((blk, fut.result()))
            while window:
                (blk, fut) = window.popleft()
                finish((blk, fut.result()))
        except BaseException:
            for _, fut in window:
                fut.cancel()
            wait([fut for _, fut in window])  # no block of this call still running when it returns
            raise

    # -- the call ----------------------------------------------------------------------------

    def run(self, *, grad: bool, keep_values: bool, sink=None):
        with self.messages.recording(self.where):
            result = self._evaluate(grad=grad, keep_values=keep_values, sink=sink)
        self.messages.emit()
        return result

    def partial(self, *, keep_values: bool) -> "Partial":
        """The rows' exact sums (and values when kept), not reduced; warnings kept, not shown."""
        with self.messages.recording(self.where):
            part = self._evaluate(grad=False, keep_values=keep_values, partial=True)
        part.warnings = list(self.messages.warnings)
        self.messages.warnings.clear()
        return part

    def gradient(self, upstream: float) -> tuple[dict[str, np.ndarray], list]:
        """The gradient of the rows for a known ``upstream`` (1/D), block by block; and the
        blocks' warnings (not shown)."""
        out: dict[str, np.ndarray] = {}
        with self.messages.recording(self.where):
            for i0, i1 in self.blocks:
                prep, _ = self._prepare(i0, i1, False)
                with np.errstate(all="ignore"):
                    for name, g in self._grads(prep, upstream, None).items():
                        if g.shape[:1] != (i1 - i0,):
                            raise _NotSeparable
                        if name not in out:
                            out[name] = np.empty((self.layout.n,) + g.shape[1:], dtype=g.dtype)
                        out[name][i0:i1] = g
        items = list(self.messages.warnings)
        self.messages.warnings.clear()
        return out, items

    def _evaluate(self, *, grad: bool, keep_values: bool, sink=None, partial: bool = False):
        from .evaluate import Result

        spec, lay, reduction = self.spec, self.layout, self.reduction
        n = lay.n
        # Are the per-sample values an output, or is only their sum used?
        self.per_sample = keep_values or sink is not None or reduction == "none"
        # Known before the data: the gradient can come in the same pass as the values.
        upstream_first = None
        if grad and reduction in ("sum", "none"):
            upstream_first = _upstream(1.0)
        elif grad and reduction == "batchmean":
            upstream_first = _upstream(float(n))

        # Block 0 here: does a compiled kernel (values only) or the fused forward apply? does
        # 'mean' need a pass for D first?
        keep = keep_values or reduction == "none"
        if keep and not grad and self.compiled_spec is not None:
            self.values_out = np.empty(n, dtype=np.float64)  # one float64 value per row (ce_rows)
        first = self._compiled_first() if not grad and self.compiled_spec is not None else None
        compiled = first is not None
        if not compiled:
            self.values_out = None
        i0, i1 = self.blocks[0]
        fused = False
        if not compiled:
            fused = self.fused_spec is not None and upstream_first is None
            self.fused_declined = False
            prep, raw = self._prepare(i0, i1, fused)
            prep_standin = fused  # prep.native holds the conversion's stand-in
            first = self._values_task(prep, raw, i1 - i0, fused, None)
            fused = fused and not self.fused_declined
        if compiled:
            pass
        elif grad and upstream_first is None and reduction == "mean" and first[1] is None and not first[3]:
            # no weights: D is the number of values, so the gradient comes with the values
            upstream_first = _upstream(float(first[2].size // (i1 - i0) * n))
            fused = False
            if prep_standin:
                prep, raw = self._prepare(i0, i1, False)
            first = self._values_task(prep, raw, i1 - i0, False, upstream_first)
        elif upstream_first is not None:
            with np.errstate(all="ignore"):
                first = first[:4] + (self._grads(prep, upstream_first, None),)

        values0 = first[2]
        vshape = (n,) + values0.shape[1:]
        vdtype = values0.dtype
        self.has_divisor = first[3]
        total_state = exactsum.zeros()
        den_state = exactsum.zeros() if first[1] is not None else None
        values_out = None
        if keep:
            values_out = self.values_out
            if values_out is None or values_out.shape != vshape or values_out.dtype != vdtype:
                self.values_out = None  # this kernel gives its values in another shape: copied
                values_out = np.empty(vshape, dtype=vdtype)
        direct = self.values_out  # the kernel's values are already in place there
        writer = sink.array("per_sample", vshape, vdtype) if sink is not None else None
        grads_out: dict[str, np.ndarray] = {}
        grad_writers: dict[str, Any] = {}
        single = upstream_first is not None
        phases = 2 if grad and not single else 1

        def store_grads(i0, i1, grads):
            for name, g in grads.items():
                if g.shape[:1] != (i1 - i0,):
                    raise _NotSeparable
                if name not in grad_writers:
                    shape = (n,) + g.shape[1:]
                    grad_writers[name] = sink.array(f"grad_{name}", shape, g.dtype) if sink is not None else None
                    if grad_writers[name] is None or keep_values:
                        grads_out[name] = np.empty(shape, dtype=g.dtype)
                if grad_writers[name] is not None:
                    grad_writers[name].write(g)
                if name in grads_out:
                    grads_out[name][i0:i1] = g

        def consume_values(i0, i1, result):
            total, den, values, _, grads = result
            exactsum.merge_into(total_state, total)
            if den is not None:
                exactsum.merge_into(den_state, den)
            # a view of ``direct`` is the block's own rows there (_values_buffer): already in place
            if values_out is not None and (direct is None or values.base is not direct):
                values_out[i0:i1] = values
            if writer is not None:
                writer.write(values)
            if grads is not None:
                store_grads(i0, i1, grads)

        consume_values(i0, i1, first)
        self.pages.release(i0, i1)
        if self.progress is not None:
            self.progress(i1, n * phases)
        self._run(lambda p, r, rows: self._values_task(p, r, rows, fused, upstream_first),
                  consume_values, fused, start=1, phase=0, phases=phases, compiled=compiled)

        if partial:
            return Partial(n, total_state, den_state, values_out, vshape[1:], np.dtype(vdtype).str, [])
        loss, denom = reduce_sums(reduction, total_state, den_state, vshape, vdtype)
        if grad and not single:
            upstream = _upstream(denom)
            self._run(lambda p, r, rows: self._grad_task(p, upstream),
                      lambda i0, i1, grads: store_grads(i0, i1, grads), False, start=0, phase=1, phases=phases)
        if reduction == "none":
            loss = values_out
        return Result(
            loss_name=spec.name, reduction=reduction, kind=self.kind, loss=loss, per_sample=values_out,
            grad=grads_out, denominator=denom, dtype=np.dtype(self.ftype).name, batch_axis=spec.batch_axis or 0,
        )


def reduce_sums(reduction: str, total_state: np.ndarray, den_state: np.ndarray | None, vshape: tuple[int, ...],
                vdtype) -> tuple[float | None, float]:
    """(the reduced loss (None for ``none``), its denominator) from the exact sums of all rows:
    the values' sum and the denominator weights' sum (None: ``mean`` divides by the count),
    each rounded once; ``vshape`` is the shape of all the per-sample values."""
    total = exactsum.finalize(total_state)
    if reduction == "mean":
        denom = exactsum.finalize(den_state) if den_state is not None else float(np.prod(vshape, dtype=np.float64))
    elif reduction == "batchmean":
        denom = float(vshape[0])
    else:
        denom = 1.0
    ftype = np.dtype(vdtype).type
    with np.errstate(divide="ignore", invalid="ignore"):
        if reduction == "none":
            loss = None
        elif reduction == "sum":
            loss = float(ftype(total))
        else:
            loss = float(ftype(total) / ftype(denom))
    return loss, denom


@dataclass
class Partial:
    """Rows of a call evaluated but not reduced (one task of a distributed call): the exact-sum
    states of their values and denominator weights, merged across tasks by
    :func:`lossctl.core.exactsum.merge` and reduced once by :func:`reduce_sums`."""

    rows: int
    total: np.ndarray
    den: np.ndarray | None
    values: np.ndarray | None  # the per-sample values, when kept
    value_shape: tuple[int, ...]  # one row's values
    value_dtype: str
    warnings: list  # (first row, message, problem): shown once, merged, by emit_warnings


def chunk_layout(spec: LossSpec, kind: str, rows: int, sliced: Mapping[str, Any], whole: Mapping[str, Any],
                 params_sliced: Mapping[str, Any], params: Mapping[str, Any]) -> Layout:
    """The layout of a chunk of rows of a call already planned (:func:`plan` on the whole):
    the same inputs sliced and given whole."""
    pred = sliced[kind]
    row_elems = int(np.prod(np.shape(pred)[1:], dtype=np.int64))
    nbytes = sum(int(a.nbytes) for a in sliced.values()) + sum(int(a.nbytes) for a in params_sliced.values())
    return Layout(spec, kind, rows, dict(sliced), dict(whole), dict(params_sliced), dict(params), row_elems, nbytes)


def evaluate_rows(layout: Layout, reduction: str, *, dtype: str, dim: int | None, origins: Mapping[str, str] | None,
                  offset: int, total_rows: int, keep_values: bool, compiled: bool, block_rows: int | None = None) -> Partial:
    """Rows ``offset .. offset + layout.n`` of a call of ``total_rows`` rows: their :class:`Partial`
    (messages speak of the whole call). ``compiled``: the compiled kernels, as a large call
    streamed here would use them (the values then match that call's bit for bit)."""
    engine = Engine(layout, reduction, dtype=dtype, dim=dim, origins=origins, block_rows=block_rows, progress=None,
                    use_compiled=compiled, offset=offset, total_rows=total_rows, n_threads=1)
    try:
        return engine.partial(keep_values=keep_values or reduction == "none")
    except _NotSeparable:
        raise LossctlError(f"{layout.spec.name}: the per-sample values do not follow the rows; "
                           "this call cannot be cut into chunks") from None


def gradient_rows(layout: Layout, reduction: str, upstream: float, *, dtype: str, dim: int | None,
                  origins: Mapping[str, str] | None, offset: int, total_rows: int,
                  block_rows: int | None = None) -> tuple[dict[str, np.ndarray], list]:
    """The gradient of rows ``offset .. offset + layout.n`` of a call whose reduction's upstream
    gradient is ``upstream`` (1/D); and the blocks' warnings."""
    engine = Engine(layout, reduction, dtype=dtype, dim=dim, origins=origins, block_rows=block_rows, progress=None,
                    offset=offset, total_rows=total_rows, n_threads=1)
    return engine.gradient(upstream)


def _upstream(denom: float) -> float:
    from .reduction import upstream

    return upstream(denom)


def run(spec: LossSpec, arrays: Mapping[str, Any], params: Mapping[str, Any], reduction: str, *,
        dtype: str = "float64", dim: int | None = None, origins: Mapping[str, str] | None = None,
        grad: bool = True, keep_values: bool = True, sink=None, mode: bool | None = None,
        block_rows: int | None = None, progress: Callable[[int, int], None] | None = None):
    """Evaluate a call blockwise; None when it does not stream (the caller evaluates in memory).

    ``mode``: None streams inputs of at least ``LOSSCTL_STREAM_MIN_BYTES``; True streams any
    streamable call (tests); False never. ``sink``: an ``-o`` writer (``lossctl.io.writers``)
    that receives the per-sample values and gradients as they stream.
    """
    if mode is False or dtype not in DTYPES or reduction not in spec.reductions or spec.batch_axis != 0:
        return None
    if mode is None:  # a cheap look first: small calls (check suites, literals) never plan
        # encoded arrays (bfloat16/float8 bits from a tensor file) count by their bytes too
        size = sum(int(v.nbytes) for v in arrays.values()
                   if isinstance(v, np.ndarray) or hasattr(v, "widen") or getattr(v, "lazy_rows", False))
        if size < min_bytes():
            return None
    layout = plan(spec, arrays, params, dim=dim, grad=grad)
    if layout is None:
        return None
    if mode is None and layout.nbytes < min_bytes():
        return None
    # The compiled kernels (lossctl.core.kernels), when in use, serve every call that takes them,
    # streamed or in memory (lossctl.core.evaluate), so a call's values never depend on the path.
    engine = Engine(layout, reduction, dtype=dtype, dim=dim, origins=origins, block_rows=block_rows,
                    progress=progress, use_compiled=True)
    try:
        return engine.run(grad=grad, keep_values=keep_values, sink=sink)
    except _NotSeparable:
        if sink is not None:
            sink.reset()
        return None
