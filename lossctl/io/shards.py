"""Sharded arrays: many files (or one chunked store) read as one array joined along axis 0.

A sharded source is

* a glob, ``'dump/logits-*.npy'``: the matching ``.npy`` files in sorted name order;
* a directory of ``.npy`` shards (every ``*.npy`` in it, sorted by name);
* a zarr array: a local directory (``x.zarr``, or any directory holding a zarr array's
  metadata) or, when fsspec is installed, a URL such as ``s3://bucket/x.zarr``.

:func:`open_sharded` describes the shards (location, shape, dtype, first row) from their
headers alone; nothing is loaded. The :class:`ShardedArray` it returns has ``shape``,
``dtype``, ``ndim`` and ``nbytes`` like an array, gives rows on demand (``a[i0:i1]``,
:meth:`ShardedArray.rows`, read with ``pread``-style reads into a fresh buffer, so a
dump larger than memory is read in constant memory), and becomes a whole array only
through ``numpy.asarray``. It pickles as its description, so another process (a Dask
worker) that can see the same paths reads its own rows.
"""

from __future__ import annotations

import glob as _glob
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError, UsageError, ref
from .writers import TempFile

_GLOB_CHARS = re.compile(r"[*?\[]")
_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


@dataclass(frozen=True)
class Shard:
    """One piece of a sharded array: rows ``start .. start + shape[0]`` of the whole."""

    location: str  # a path, or a URL (zarr)
    format: str  # "npy" or "zarr"
    shape: tuple[int, ...]
    dtype: str
    start: int
    data_offset: int = 0  # npy: where the data starts in the file
    fortran: bool = False

    @property
    def stop(self) -> int:
        return self.start + self.shape[0]

    @property
    def name(self) -> str:
        return os.path.basename(self.location.rstrip("/")) or self.location


def is_sharded(text: str, path: Path | None) -> bool:
    """Whether an input argument names a sharded source (a glob, a directory, a zarr array, a URL)."""
    if _URL.match(text):
        return True
    if path is None:
        return False
    try:
        if path.is_dir():
            return True
        exists = path.exists()
    except OSError:
        return False
    return not exists and bool(_GLOB_CHARS.search(str(path)))


def open_sharded(text: str, path: Path | None, origin: str) -> "ShardedArray":
    """Describe the shards named by an argument (see the module doc); InputError naming the
    shard when the shards do not join (another shape after the first dimension, another dtype)."""
    if _URL.match(text) or (path is not None and _is_zarr(path)):
        from .zarrstore import describe

        location = text if _URL.match(text) else str(path)
        shape, dtype = describe(location, origin)
        return ShardedArray([Shard(location, "zarr", shape, dtype, 0)], origin)
    assert path is not None
    if path.is_dir():
        names = sorted(str(p) for p in path.iterdir() if p.suffix.lower() == ".npy" and p.is_file())
        if not names:
            raise InputError(f"{origin}: is a directory, not a file, and holds no .npy shards")
    else:
        names = sorted(_glob.glob(str(path)))
        if not names:
            raise InputError(f"{origin}: no file matches the pattern")
        other = [n for n in names if not n.lower().endswith(".npy")]
        if other:
            raise InputError(f"{origin}: shard {os.path.basename(other[0])}: shards must be .npy files")
    shards: list[Shard] = []
    start = 0
    for name in names:
        shape, dtype, offset, fortran = _npy_header(name, origin)
        if not shape:
            raise InputError(f"{origin}: shard {os.path.basename(name)}: a 0-d array has no rows to join")
        if shards:
            first = shards[0]
            if shape[1:] != first.shape[1:]:
                raise InputError(f"{origin}: shard {os.path.basename(name)} has shape {shape}, which does not join "
                                 f"shard {first.name}'s {first.shape} along the first dimension")
            if dtype != first.dtype:
                raise InputError(f"{origin}: shard {os.path.basename(name)} is {dtype}, shard {first.name} is "
                                 f"{first.dtype}: the shards must have one dtype")
        shards.append(Shard(name, "npy", shape, dtype, start, offset, fortran))
        start += shape[0]
    return ShardedArray(shards, origin)


def from_memmap(a: np.ndarray, origin: str) -> "ShardedArray | None":
    """A one-shard description of a C-contiguous view of a memory-mapped file (a ``.npy``, or one
    tensor of a ``.safetensors`` file): its path, where its bytes start, shape and dtype (None
    for anything else)."""
    if not isinstance(a, np.memmap) or not isinstance(getattr(a, "filename", None), str) or a.ndim == 0:
        return None
    if not a.flags.c_contiguous or a.dtype.hasobject:
        return None
    root = a
    while isinstance(root.base, np.memmap):
        root = root.base
    if not isinstance(getattr(root, "offset", None), int):
        return None
    start = int(root.offset) + (int(a.ctypes.data) - int(root.ctypes.data))
    shape = tuple(int(n) for n in a.shape)
    return ShardedArray([Shard(a.filename, "npy", shape, a.dtype.str, 0, start, False)], origin)


class EncodedRows:
    """Rows of an encoded array (bfloat16, float8 bits in a file): its bits described as a
    :class:`ShardedArray`, read by rows and returned as :class:`~lossctl.io.encoded.EncodedArray`
    (widened where they are computed)."""

    def __init__(self, bits: "ShardedArray", encoding: str):
        self.bits = bits
        self.encoding = encoding
        self.shape = bits.shape

    def boundaries(self) -> list[int]:
        return self.bits.boundaries()

    def rows(self, i0: int, i1: int):
        from .encoded import EncodedArray

        return EncodedArray(self.bits.rows(i0, i1), self.encoding)


def _is_zarr(path: Path) -> bool:
    return path.suffix.lower() == ".zarr" or (path.is_dir() and ((path / "zarr.json").exists() or (path / ".zarray").exists()))


def _npy_header(name: str, origin: str) -> tuple[tuple[int, ...], str, int, bool]:
    try:
        with open(name, "rb") as f:
            try:
                version = np.lib.format.read_magic(f)
                if version == (1, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
                else:
                    shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
            except (ValueError, OSError, EOFError) as e:
                raise InputError(f"{origin}: shard {os.path.basename(name)}: not a valid .npy file ({e})") from None
            offset = f.tell()
            size = os.fstat(f.fileno()).st_size
    except PermissionError:
        raise InputError(f"{origin}: shard {os.path.basename(name)}: permission denied") from None
    except OSError as e:
        raise InputError(f"{origin}: shard {os.path.basename(name)}: cannot read: {e.strerror or e}") from None
    if dtype.hasobject or dtype.kind not in "biuf":
        raise InputError(f"{origin}: shard {os.path.basename(name)}: dtype {dtype} is not numeric")
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if size - offset < nbytes:
        raise InputError(f"{origin}: shard {os.path.basename(name)}: truncated: the header declares {shape} {dtype}")
    return tuple(int(n) for n in shape), dtype.str, offset, bool(fortran)


class ShardedArray:
    """Shards joined along axis 0, read on demand (see the module doc)."""

    lazy_rows = True  # the streaming engine slices it by rows instead of loading it

    def __init__(self, shards: list[Shard], origin: str):
        self.shards = list(shards)
        self.origin = origin
        self.dtype = np.dtype(self.shards[0].dtype)
        self.shape = (sum(s.shape[0] for s in self.shards),) + tuple(self.shards[0].shape[1:])

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        return f"ShardedArray({len(self.shards)} shards, shape={self.shape}, dtype={self.dtype})"

    def boundaries(self) -> list[int]:
        """The first row of each shard, then the number of rows."""
        return [s.start for s in self.shards] + [self.shape[0]]

    def reshape(self, *shape) -> "ShardedArray":
        """The same rows seen with other leading dimensions: ``(B, T, V) -> (B·T, V)`` (or back),
        as long as every shard stays whole rows of the new shape. No data is read."""
        shape = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else tuple(shape)
        if -1 in shape:
            known = int(np.prod([n for n in shape if n != -1], dtype=np.int64))
            shape = tuple(self.size // max(known, 1) if n == -1 else n for n in shape)
        if int(np.prod(shape, dtype=np.int64)) != self.size or not shape:
            raise InputError(f"{self.origin}: cannot read {self.shape} as {shape}")
        new_row = int(np.prod(shape[1:], dtype=np.int64))
        old_row = int(np.prod(self.shape[1:], dtype=np.int64))
        shards = []
        for s in self.shards:
            elems, first = s.shape[0] * old_row, s.start * old_row
            if new_row == 0 or elems % new_row or first % new_row or s.fortran:
                raise InputError(f"{self.origin}: cannot read {self.shape} as {shape}: shard {s.name} would split a row")
            shards.append(Shard(s.location, s.format, (elems // new_row,) + tuple(shape[1:]), s.dtype, first // new_row,
                                s.data_offset, s.fortran))
        if any(s.format == "zarr" for s in shards) and shape[1:] != self.shape[1:]:
            raise InputError(f"{self.origin}: a zarr array is read with its own shape {self.shape}; store it as {shape}")
        return ShardedArray(shards, self.origin)

    def __getitem__(self, key):
        if isinstance(key, slice) and key.step in (None, 1):
            i0, i1, _ = key.indices(self.shape[0])
            return self.rows(i0, max(i0, i1))
        return np.asarray(self)[key]

    def __array__(self, dtype=None, copy=None):
        a = self.rows(0, self.shape[0])
        return a if dtype is None else a.astype(dtype, copy=False)

    def rows(self, i0: int, i1: int, out: np.ndarray | None = None) -> np.ndarray:
        """Rows ``i0 .. i1`` of the joined array, as a new C-contiguous array (or into ``out``)."""
        if out is None:
            out = np.empty((i1 - i0,) + self.shape[1:], dtype=self.dtype)
        for s in self.shards:
            lo, hi = max(i0, s.start), min(i1, s.stop)
            if lo >= hi:
                continue
            dest = out[lo - i0:hi - i0]
            try:
                _read_rows(s, lo - s.start, hi - s.start, dest)
            except InputError:
                raise
            except OSError as e:
                raise InputError(f"{self.origin}: shard {s.name}: cannot read: {e.strerror or e}") from None
        return out

    def __getstate__(self):
        return {"shards": self.shards, "origin": self.origin}

    def __setstate__(self, state):
        self.__init__(state["shards"], state["origin"])


def _read_rows(s: Shard, r0: int, r1: int, dest: np.ndarray) -> None:
    if s.format == "zarr":
        from .zarrstore import read_rows

        dest[...] = read_rows(s.location, r0, r1)
        return
    if s.fortran:  # columns are contiguous: a strided view of the mapped file
        mm = np.memmap(s.location, dtype=np.dtype(s.dtype), mode="r", offset=s.data_offset, shape=s.shape, order="F")
        dest[...] = mm[r0:r1]
        del mm
        return
    row_bytes = int(np.prod(s.shape[1:], dtype=np.int64)) * np.dtype(s.dtype).itemsize
    view = memoryview(dest.reshape(-1).view(np.uint8)) if dest.size else memoryview(b"")
    with open(s.location, "rb", buffering=0) as f:
        f.seek(s.data_offset + r0 * row_bytes)
        got = 0
        want = (r1 - r0) * row_bytes
        while got < want:
            n = f.readinto(view[got:])
            if not n:
                raise InputError(f"shard {s.name}: the file is shorter than its header says")
            got += n


class ShardWriter:
    """One array written as ``.npy`` shards split at ``boundaries`` (rows), by any process that
    sees the files: :meth:`write_rows` (the rows of one task, into the shards they fall in).

    The shards are created as hidden temporary files next to their final names
    (``STEM.NAME-00000-of-00004.npy``) and renamed into place by :meth:`commit`; :meth:`abort`
    removes them, so a failed call leaves no partial output."""

    def __init__(self, output: Path, name: str, boundaries: list[int], shape: tuple[int, ...], dtype, force: bool):
        self.finals: list[Path] = []
        self.parts: list[tuple[str, int, int]] = []  # (temporary path, first row, stop row)
        self.temps: list[TempFile] = []
        count = len(boundaries) - 1
        for k in range(count):
            final = output.parent / f"{output.stem}.{name}-{k:05d}-of-{count:05d}.npy"
            if final.exists() and not force:
                self.abort()
                raise UsageError(f"{ref('output')} {output}: {final.name} exists; pass {ref('force')} to replace it")
            self.finals.append(final)
        what = f"{ref('output')} {output}: {name} shards"
        try:
            for k, final in enumerate(self.finals):
                start, stop = boundaries[k], boundaries[k + 1]
                tmp = TempFile(final, what, suffix=".part")
                self.temps.append(tmp)
                tmp.preallocate_npy((stop - start,) + tuple(shape[1:]), dtype)
                self.parts.append((str(tmp.path), start, stop))
        except BaseException:
            self.abort()
            raise

    def commit(self) -> list[Path]:
        for tmp, final in zip(self.temps, self.finals):
            tmp.commit(final)
        self.parts, self.temps = [], []
        return self.finals

    def abort(self) -> None:
        for tmp in self.temps:
            tmp.discard()
        self.parts, self.temps = [], []


def write_rows(parts: list[tuple[str, int, int]], i0: int, block: np.ndarray) -> None:
    """Write rows ``i0 .. i0 + len(block)`` of an array into the shards ``parts`` (see :class:`ShardWriter`);
    a shard of more dimensions whose last ones are a block row's is seen as rows of that shape."""
    i1 = i0 + block.shape[0]
    for path, start, stop in parts:
        lo, hi = max(i0, start), min(i1, stop)
        if lo >= hi:
            continue
        mm = np.load(path, mmap_mode="r+")
        row = block.shape[1:]
        if mm.shape[1:] != row and row and mm.shape[-len(row):] == row and mm.flags.c_contiguous:
            mm = mm.reshape((-1,) + row)  # (B, T, V) shards written by token rows (B·T, V)
        if mm.shape[1:] != row or mm.dtype != block.dtype:
            raise InputError(f"gradient shard {os.path.basename(path)}: {mm.shape} {mm.dtype} cannot take rows "
                             f"of {block.shape} {block.dtype}")
        mm[lo - start:hi - start] = block[lo - i0:hi - i0]
        mm.flush()
        del mm
