"""``-o FILE`` written while a call streams (:mod:`lossctl.core.stream`): constant memory.

The streaming engine asks for one array at a time (``per_sample``, then
``grad_<input>``) and writes it block by block, in row order, to a temporary
``.npy`` next to the output. :meth:`OutputStream.commit` then turns the parts into
the requested file and renames it into place, so an interrupted run leaves no
half-written output and nothing is ever written over an existing file that was
not meant to be replaced:

* ``.npy``: the per-sample part *is* the file (renamed);
* ``.npz``: the parts are stored (not compressed, as ``np.savez``) in a zip;
* ``.safetensors``: a header for the parts' shapes and dtypes, then each part's
  data copied in, in order;
* ``.csv``: the parts are read back a chunk at a time and written as the same rows
  as :func:`lossctl.io.per_sample_csv.write_csv`.

When the call did not stream (small inputs), ``commit`` falls back to
:func:`write_output` on the in-memory result.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import zipfile
from pathlib import Path

import numpy as np

from ..errors import UsageError, ref
from .per_sample_csv import sample_rows
from .writers import TempFile, write_atomic, write_error

CSV_CHUNK_ROWS = 65536


class _Part:
    """One array as a temporary .npy file, filled block by block."""

    def __init__(self, target: Path, shape: tuple[int, ...], dtype, what: str):
        self.shape = tuple(int(n) for n in shape)
        self.dtype = np.dtype(dtype)
        self.temp = TempFile(target, what, suffix=".npy.part")
        self.path = self.temp.path
        self.file = self.temp.file
        header = {"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False, "shape": self.shape}
        try:
            np.lib.format.write_array_header_1_0(self.file, header)
        except ValueError:  # a header over 64 KiB
            np.lib.format.write_array_header_2_0(self.file, header)
        self.offset = self.file.tell()
        self.rows = 0

    def write(self, block: np.ndarray) -> None:
        block = np.ascontiguousarray(block, dtype=self.dtype)
        try:
            self.file.write(memoryview(block).cast("B"))
        except OSError as e:  # a full disk while streaming
            raise write_error(self.temp.what, e) from None
        self.rows += block.shape[0] if block.ndim else 1

    def close(self) -> None:
        self.temp.close()

    def row_writer(self) -> "_RowWriter":
        """The part as a matrix of rows (all but the last axis flattened) that a computation fills
        block by block, in any order and from any thread: ``w[r0:r1] = 0``, ``w[r0:r1, c0:c1] = g``.
        Nothing is kept in memory; the file is sized up front (zeros where nothing is written)."""
        self.file.flush()
        total = self.offset + int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize
        os.ftruncate(self.file.fileno(), total)
        return _RowWriter(self)

    def chunks(self, rows: int):
        """The array back, ``rows`` rows at a time (read, not mapped: constant memory)."""
        row_elems = int(np.prod(self.shape[1:], dtype=np.int64))
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            for i0 in range(0, self.shape[0], rows):
                i1 = min(i0 + rows, self.shape[0])
                data = np.fromfile(f, dtype=self.dtype, count=(i1 - i0) * row_elems)
                yield data.reshape((i1 - i0,) + self.shape[1:])

    def remove(self) -> None:
        self.temp.discard()


class _RowWriter:
    """Positional writes into a :class:`_Part`, seen as (rows, columns) (see :meth:`_Part.row_writer`)."""

    def __init__(self, part: _Part):
        self.part = part
        self.cols = int(part.shape[-1]) if len(part.shape) > 1 else 1
        self.n = int(np.prod(part.shape, dtype=np.int64)) // max(1, self.cols)
        self.shape = (self.n, self.cols)
        self.dtype = part.dtype

    def __setitem__(self, key, value) -> None:
        rows, cols = key if isinstance(key, tuple) else (key, slice(None))
        r0, r1, _ = rows.indices(self.n)
        c0, c1, _ = cols.indices(self.cols)
        if r1 <= r0 or c1 <= c0:
            return
        if np.ndim(value) == 0:
            if value == 0:  # the file is zeros where nothing was written
                return
            value = np.full((r1 - r0, c1 - c0), value, dtype=self.dtype)
        block = np.ascontiguousarray(value, dtype=self.dtype).reshape(r1 - r0, c1 - c0)
        fd, item = self.part.file.fileno(), self.dtype.itemsize
        if c0 == 0 and c1 == self.cols:
            os.pwrite(fd, memoryview(block).cast("B"), self.part.offset + r0 * self.cols * item)
            return
        for i in range(r1 - r0):
            os.pwrite(fd, memoryview(block[i]).cast("B"), self.part.offset + ((r0 + i) * self.cols + c0) * item)


class OutputStream:
    """The ``-o`` destination of one call; see the module doc."""

    def __init__(self, path: Path, grad: bool):
        self.path = Path(path)
        self.what = f"{ref('output')} {path}"
        self.grad = grad
        self.suffix = self.path.suffix.lower()
        self.parts: dict[str, _Part] = {}
        self.written: dict[str, tuple[int, ...]] = {}  # after commit: the arrays in the file, and their shapes
        if self.suffix == ".npy" and grad:
            raise UsageError(f"{ref('output')} {path}: a .npy file holds one array; use .npz to write the gradient too")

    @property
    def used(self) -> bool:
        return bool(self.parts)

    def array(self, name: str, shape: tuple[int, ...], dtype) -> _Part | None:
        """A writer for ``per_sample`` or ``grad_<input>``; None for what does not go to the file."""
        if name.startswith("grad_") and not self.grad:
            return None
        try:
            part = _Part(_real(self.path), shape, dtype, self.what)
        except OSError as e:
            raise write_error(self.what, e) from None
        self.parts[name] = part
        return part

    def reset(self) -> None:
        """Forget what was streamed (the call is evaluated in memory after all)."""
        for part in self.parts.values():
            part.remove()
        self.parts.clear()

    abort = reset

    def commit(self, result) -> None:
        """Write the file: from the streamed parts, or from the in-memory ``result``."""
        if not self.used:
            write_output(self.path, result, grad=self.grad)
            self.written = {"per_sample": np.shape(result.per_sample)}
            if self.grad:
                self.written.update({f"grad_{k}": np.shape(g) for k, g in result.grad.items()})
            return
        self.written = {name: part.shape for name, part in self.parts.items()}
        for part in self.parts.values():
            part.close()
        try:
            if self.suffix == ".npy":
                self.parts["per_sample"].temp.commit(_real(self.path))
            elif self.suffix == ".npz":
                self._zip()
            elif self.suffix == ".safetensors":
                self._safetensors()
            else:
                self._csv(getattr(result, "class_axis", None))
        except OSError as e:
            raise write_error(self.what, e) from None
        finally:
            self.reset()

    def _zip(self) -> None:
        with TempFile(_real(self.path), self.what) as tmp:
            with zipfile.ZipFile(tmp.file, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
                for name, part in self.parts.items():
                    zf.write(part.path, arcname=f"{name}.npy")
            tmp.commit()

    def _safetensors(self) -> None:
        from .safetensors import header_bytes

        with TempFile(_real(self.path), self.what) as tmp:
            out = tmp.file
            out.write(header_bytes({name: (part.shape, part.dtype) for name, part in self.parts.items()}))
            for part in self.parts.values():
                with open(part.path, "rb") as f:
                    f.seek(part.offset)
                    shutil.copyfileobj(f, out, 1 << 20)
            tmp.commit()

    def _csv(self, class_axis: int | None = None) -> None:
        """The rows of ``per_sample_csv.write_csv``: sample, loss, then each gradient's entries
        flattened per sample (a gradient that does not split into one row per sample is left
        out, as there)."""
        values = self.parts["per_sample"]
        v_row = int(np.prod(values.shape[1:], dtype=np.int64))  # samples per batch row
        n = values.shape[0] * v_row
        header = ["sample", "loss"]
        grads = []
        for name, part in self.parts.items():
            if name == "per_sample":
                continue
            size = int(np.prod(part.shape, dtype=np.int64))
            if n == 0 or size % n:
                continue
            width = size // n
            header += [f"{name}_{j}" for j in range(width)] if width > 1 else [name]
            grads.append((part, width))
        with TempFile(_real(self.path), self.what) as tmp:
            f = io.TextIOWrapper(tmp.file, encoding="utf-8", newline="", write_through=True)
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(header)
            streams = [values.chunks(CSV_CHUNK_ROWS)] + [p.chunks(CSV_CHUNK_ROWS) for p, _ in grads]
            index = 0
            for chunk in zip(*streams):
                vshape = chunk[0].shape
                vals = chunk[0].reshape(-1)
                columns = [range(index, index + vals.size), [repr(v) for v in vals.tolist()]]
                for (_, width), g in zip(grads, chunk[1:]):
                    rows = sample_rows(g, vshape, class_axis=class_axis)  # that sample's entries, classes last
                    columns += [[repr(v) for v in rows[:, j].tolist()] for j in range(width)]
                writer.writerows(zip(*columns))
                index += vals.size
            f.flush()
            f.detach()
            tmp.commit()


def _real(path: Path) -> Path:
    """The file an output path names (a symbolic link's target)."""
    return Path(os.path.realpath(path))


def write_output(path: Path, result, grad: bool) -> None:
    """``-o``: the per-sample values (and with ``grad`` each gradient) to ``.npy``/``.npz``/``.safetensors``/``.csv``."""
    suffix = path.suffix.lower()
    arrays = {"per_sample": np.asarray(result.per_sample)}
    if grad:
        arrays.update({f"grad_{name}": np.asarray(g) for name, g in result.grad.items()})
    if suffix == ".npy" and len(arrays) > 1:
        raise UsageError(f"{ref('output')} {path}: a .npy file holds one array; use .npz to write the gradient too")
    buf = io.BytesIO()
    if suffix == ".npy":
        np.save(buf, arrays["per_sample"], allow_pickle=False)
    elif suffix == ".npz":
        np.savez(buf, **arrays)
    elif suffix == ".safetensors":
        from .safetensors import write

        write(buf, arrays)
    else:
        buf.write(output_csv(result, grad).encode())
    write_atomic(path, buf.getvalue(), what=f"{ref('output')} {path}")


def output_csv(result, grad: bool) -> str:
    """The ``-o FILE.csv`` text (and ``-o -``): one row per sample."""
    from .per_sample_csv import write_csv

    text = io.StringIO()
    write_csv(text, result, per_sample=True, grad=grad)
    return text.getvalue()
