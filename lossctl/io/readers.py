"""Readers: a :class:`~lossctl.io.sources.Source` in, a NumPy array out. Nothing here knows about losses.

* ``.npy``: the header is parsed and checked first (magic, dtype, declared
  size against the file size), then the data is memory-mapped; object arrays
  are refused before anything could be unpickled;
* ``.npz``: ``:KEY`` or the only array in the archive, read with :mod:`zipfile`
  (never ``pickle``), each member's declared size checked before it is read;
* ``.csv`` / ``.tsv`` / ``.txt``: a header row is detected (every cell a
  name, none a number), ``:COLUMN`` selects a column by header name or
  0-based index, a single column reads as a 1-D array; a BOM (UTF-8 or
  UTF-16), CRLF line endings, blank lines and a mix of ``,``/``;``/tab
  separators are accepted; an error names the line and column;
* ``.json`` / ``.yaml`` / ``.yml``: safe loading only (no ``!!python`` tags),
  ``:KEY`` is a top-level key; YAML aliases are counted before a document is
  turned into an array (a "billion laughs" bomb fails fast);
* ``.safetensors``, ``.pt``/``.pth``/``.bin`` (PyTorch's zip format, read
  without torch), ``.parquet``/``.arrow``/``.feather`` and ``.h5``/``.hdf5``: the
  modules of :data:`TENSOR_FORMATS`, imported on first use (start-up stays fast);
  with ``lazy`` a bfloat16/float8 tensor comes back as a memory-mapped
  :class:`~lossctl.io.encoded.EncodedArray`, to be widened block by block;
* ``-``: standard input, the format sniffed (or given as ``stdin_format``);
* literals: JSON first (fast), then YAML flow syntax.

Only regular files are read (a FIFO, ``/dev/zero`` or a directory is refused
without blocking), and never more than :func:`max_input_bytes` into memory.
Every error is an :class:`~lossctl.errors.InputError` whose message starts
with the origin given by the caller (``--target labels.npy``).

The fast paths are C-level (``np.loadtxt``, ``json``, ``np.memmap``); the
per-line and per-cell Python loops only run to explain an error.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import stat
import tokenize
import sys
import zipfile
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from ..errors import InputError, UsageError
from .sources import EXTENSIONS, Source

STDIN_FORMATS = ("npy", "npz", "csv", "tsv", "txt", "json", "yaml")

MIB = 1 << 20
#: Inline literals longer than this are refused (put the data in a file).
MAX_LITERAL_BYTES = 64 * MIB
#: Default cap on the bytes read into memory from one input (text files, stdin,
#: one .npz member); memory-mapped .npy files are not read into memory.
DEFAULT_MAX_INPUT_BYTES = 2048 * MIB
#: Most numbers a JSON/YAML document may expand to (YAML aliases share nodes).
MAX_DOCUMENT_ELEMENTS = 20_000_000
NPY_MAGIC = b"\x93NUMPY"
MAX_DIMENSIONS = 32  # numpy's iterators (broadcasting, reductions) take at most 32
ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")
_CHUNK = 1 << 20
#: suffix -> the module of lossctl.io that reads it; each has ``read_file(path, key, origin, *, lazy)``
TENSOR_FORMATS = {".safetensors": "safetensors", ".pt": "torchzip", ".pth": "torchzip", ".bin": "torchzip",
                  ".parquet": "columnar", ".arrow": "columnar", ".feather": "columnar",
                  ".h5": "hdf5", ".hdf5": "hdf5"}


def max_input_bytes() -> int:
    """The cap on bytes read into memory; ``LOSSCTL_MAX_INPUT_BYTES`` overrides it."""
    value = os.environ.get("LOSSCTL_MAX_INPUT_BYTES", "")
    try:
        return max(int(value), 1) if value else DEFAULT_MAX_INPUT_BYTES
    except ValueError:
        return DEFAULT_MAX_INPUT_BYTES


def size_text(n: int) -> str:
    if n < 10 * 1024:
        return f"{n} bytes"
    if n < MIB:
        return f"{n / 1024:.0f} KiB"
    v = n / MIB
    return f"{v:.0f} MiB" if v >= 10 or v.is_integer() else f"{v:.1f} MiB"


# --------------------------------------------------------------------------- entry points


def read_array(source: Source, origin: str, *, stdin: BinaryIO | None = None, stdin_format: str | None = None,
               lazy: bool = False) -> np.ndarray:
    """Read one array; ``origin`` prefixes every error message. ``lazy``: a bfloat16/float8
    tensor may come back as an :class:`~lossctl.io.encoded.EncodedArray` (not widened yet)."""
    try:
        if source.kind == "literal":
            return _read_literal(source.text, origin)
        if source.kind == "stdin":
            stream = stdin if stdin is not None else _stdin_buffer()
            return _read_stdin(stream, origin, stdin_format)
        return read_path(source.path, source.key, origin, lazy=lazy, text=source.text)
    except MemoryError:
        raise InputError(f"{origin}: too large to fit in memory") from None
    except RecursionError:
        raise InputError(f"{origin}: nested too deeply") from None


def read_path(path: Path, key: str | None, origin: str, *, lazy: bool = False, text: str | None = None) -> np.ndarray:
    from .shards import is_sharded, open_sharded

    if key is None and is_sharded(text if text is not None else str(path), path):
        # a glob, a directory of .npy shards or a zarr array: described now, read by rows
        sharded = open_sharded(text if text is not None else str(path), path, origin)
        return sharded if lazy else np.asarray(sharded)
    _check_regular(path, origin)
    suffix = path.suffix.lower()
    if suffix in TENSOR_FORMATS:
        import importlib

        module = importlib.import_module(f"{__package__}.{TENSOR_FORMATS[suffix]}")
        try:
            return _named(module.read_file(path, key, origin, lazy=lazy), path)
        except PermissionError:
            raise InputError(f"{origin}: permission denied") from None
        except OSError as e:
            raise InputError(f"{origin}: cannot read: {e.strerror or e}") from None
    if suffix not in EXTENSIONS:
        raise InputError(f"{origin}: unknown file type {suffix or '(none)'!r}; use one of {', '.join(EXTENSIONS)}")
    if suffix == ".npy" and key:
        raise InputError(f"{origin}: a .npy file holds one array; ':{key}' does not apply")
    try:
        with open_regular(path, origin) as f:
            if suffix == ".npy":
                return _named(_load_npy(f, origin, mmap=True), path)
            if suffix == ".npz":
                return _load_npz(f, key, origin)
            data = _read_capped(f, origin, os.fstat(f.fileno()).st_size)
    except PermissionError:
        raise InputError(f"{origin}: permission denied") from None
    except IsADirectoryError:
        raise InputError(f"{origin}: is a directory, not a file") from None
    except OSError as e:
        raise InputError(f"{origin}: cannot read: {e.strerror or e}") from None
    return _parse_bytes(data, suffix.lstrip("."), key, origin)


def _named(a, path: Path):
    """``a`` (or an encoded array's bits), when memory-mapped, knows the path of its file, so that
    another process (a Dask worker) can map the same bytes instead of receiving them."""
    bits = getattr(a, "bits", a)
    if isinstance(bits, np.memmap) and not isinstance(getattr(bits, "filename", None), str):
        bits.filename = os.path.abspath(path)
    return a


def read_named_arrays(source: Source, origin: str, *, stdin_format: str | None = None) -> dict[str, np.ndarray]:
    """Several named arrays from one source: every array of an ``.npz`` (or every top-level
    key of a JSON/YAML mapping, every tensor of a ``.safetensors`` or ``.pt`` file) when no
    ``:KEY`` is given; otherwise ``{"params": array}`` (or ``{KEY: array}``)."""
    if source.kind == "path" and source.key is None and source.path is not None:
        suffix = source.path.suffix.lower()
        if TENSOR_FORMATS.get(suffix) in ("safetensors", "torchzip"):
            import importlib

            _check_regular(source.path, origin)
            module = importlib.import_module(f"{__package__}.{TENSOR_FORMATS[suffix]}")
            try:
                return module.read_all(source.path, origin)
            except PermissionError:
                raise InputError(f"{origin}: permission denied") from None
            except OSError as e:
                raise InputError(f"{origin}: cannot read: {e.strerror or e}") from None
        if suffix in (".npz", ".json", ".yaml", ".yml"):
            _check_regular(source.path, origin)
            try:
                with open_regular(source.path, origin) as f:
                    if suffix == ".npz":
                        return _npz_all(f, origin)
                    data = _read_capped(f, origin, os.fstat(f.fileno()).st_size)
            except PermissionError:
                raise InputError(f"{origin}: permission denied") from None
            except OSError as e:
                raise InputError(f"{origin}: cannot read: {e.strerror or e}") from None
            doc = _parse_document(_decode(data, origin), suffix.lstrip("."), origin)
            if isinstance(doc, dict):
                return {str(k): _from_document(v, f"{origin}:{k}", None) for k, v in doc.items()}
            return {"params": _from_document(doc, origin, None)}
    name = source.key or "params"
    return {name: read_array(source, origin, stdin_format=stdin_format)}


# --------------------------------------------------------------------------- files


_FILE_KINDS = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
               (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def _not_regular(mode: int) -> str:
    for test, name in _FILE_KINDS:
        if test(mode):
            return name
    return "not a regular file"


def _check_regular(path: Path, origin: str) -> os.stat_result:
    """Refuse, without opening anything, what is not a readable regular file."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            raise InputError(f"{origin}: a broken symbolic link (its target does not exist)") from None
        raise InputError(f"{origin}: no such file") from None
    except NotADirectoryError:
        raise InputError(f"{origin}: no such file (a part of the path is not a directory)") from None
    except PermissionError:
        raise InputError(f"{origin}: permission denied") from None
    except (OSError, ValueError) as e:
        raise InputError(f"{origin}: cannot read: {getattr(e, 'strerror', None) or e}") from None
    if stat.S_ISDIR(st.st_mode):
        raise InputError(f"{origin}: is a directory, not a file")
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"{origin}: is {_not_regular(st.st_mode)}; lossctl reads regular files only "
                         f"(pipe data to '-' with --stdin-format instead)")
    return st


def open_regular(path: Path, origin: str) -> BinaryIO:
    """Open without blocking (a FIFO swapped in after the check must not hang us) and re-check."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    fd = os.open(path, flags)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise InputError(f"{origin}: is {_not_regular(st.st_mode)}; lossctl reads regular files only")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular_bytes(path: Path, origin: str) -> bytes:
    """The bytes of a regular file (a device, FIFO or socket is refused without being read; at
    most :func:`max_input_bytes`)."""
    try:
        st = os.stat(path)
    except OSError as e:
        raise InputError(f"{origin}: cannot read: {e.strerror or e}") from None
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"{origin}: is {_not_regular(st.st_mode)}; lossctl reads regular files only")
    try:
        with open_regular(Path(path), origin) as f:
            return bytes(_read_capped(f, origin, st.st_size))
    except OSError as e:
        raise InputError(f"{origin}: cannot read: {e.strerror or e}") from None


def _read_capped(f: BinaryIO, origin: str, size_hint: int | None = None) -> bytes | bytearray:
    """Everything from ``f``, refusing more than :func:`max_input_bytes`."""
    cap = max_input_bytes()
    if size_hint is not None and size_hint > cap:
        raise InputError(f"{origin}: {size_text(size_hint)} is more than lossctl reads into memory ({size_text(cap)}); "
                         "save large arrays as .npy (memory-mapped), or raise LOSSCTL_MAX_INPUT_BYTES")
    if size_hint is not None:
        data = f.read(size_hint + 1)  # a regular file: one read of the known size
        if len(data) <= size_hint:
            return data
        buf = bytearray(data)
    else:
        buf = bytearray()
    while True:
        chunk = f.read(_CHUNK)
        if not chunk:
            return buf
        buf += chunk
        if len(buf) > cap:
            raise InputError(f"{origin}: more than {size_text(cap)} of data, the most lossctl reads into memory; "
                             "save large arrays as .npy, or raise LOSSCTL_MAX_INPUT_BYTES")


# --------------------------------------------------------------------------- stdin and literals


def _stdin_buffer() -> BinaryIO:
    stream = sys.stdin
    if stream is None:
        raise InputError("standard input is closed")
    return getattr(stream, "buffer", stream)


def _read_stdin(stream: BinaryIO, origin: str, fmt: str | None) -> np.ndarray:
    if fmt is not None and fmt not in STDIN_FORMATS:
        raise UsageError(f"--stdin-format: expected one of {', '.join(STDIN_FORMATS)}, got {fmt!r}")
    try:
        if stream.isatty():
            raise InputError(f"{origin}: standard input is a terminal; pipe or redirect the data into lossctl")
    except (AttributeError, ValueError, OSError):
        pass
    try:
        first = stream.read(_CHUNK)
        if isinstance(first, str):  # a text stream without .buffer
            text = first + stream.read(max_input_bytes() + 1 - len(first))
            if len(text) > max_input_bytes():
                raise InputError(f"{origin}: more than {size_text(max_input_bytes())} of data, the most lossctl reads into memory")
            stream, first = io.BytesIO(text.encode()), b""
            first = stream.read(_CHUNK)
        if not first:
            raise InputError(f"{origin}: standard input is empty")
        if not first.startswith((NPY_MAGIC,) + ZIP_MAGICS) and fmt not in ("npy", "npz") and b"\x00" in first[:4096] \
                and not first.startswith((b"\xff\xfe", b"\xfe\xff")):
            raise InputError(f"{origin}: standard input holds binary data in no format lossctl reads "
                             f"(expected {', '.join(STDIN_FORMATS)})")
        rest = _read_capped(stream, origin)
    except OSError as e:
        raise InputError(f"{origin}: cannot read standard input: {e.strerror or e}") from None
    if len(first) + len(rest) > max_input_bytes():
        raise InputError(f"{origin}: more than {size_text(max_input_bytes())} of data, the most lossctl reads into memory")
    data = first + rest if rest else first
    fmt = fmt or sniff(data)
    return _parse_bytes(data, fmt, None, origin)


def _read_literal(text: str, origin: str) -> np.ndarray:
    if len(text) > MAX_LITERAL_BYTES:
        raise InputError(f"{origin}: an inline literal of {size_text(len(text))} is too long (the limit is "
                         f"{size_text(MAX_LITERAL_BYTES)}); put the data in a file (.npy, .csv, ...) and pass its path")
    if "\x00" in text:
        raise InputError(f"{origin}: not a file name or an inline literal (it holds a NUL character)")
    return _from_document(_parse_literal(text, origin), origin, None)


def _parse_literal(text: str, origin: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        pass
    lowered = text.strip().lower()
    if lowered in ("nan", "inf", "+inf", "-inf"):
        return float(lowered)
    try:
        return _safe_yaml(text, origin)
    except InputError as e:
        if "invalid YAML" in str(e):
            raise InputError(str(e).replace("invalid YAML", "not a file, and not a valid inline literal (JSON or YAML flow syntax)", 1)) from None
        raise


# --------------------------------------------------------------------------- bytes → array


def _parse_bytes(data: bytes, fmt: str, key: str | None, origin: str) -> np.ndarray:
    if fmt == "npy":
        return _load_npy(io.BytesIO(data), origin, mmap=False)
    if fmt == "npz":
        return _load_npz(io.BytesIO(data), key, origin)
    if fmt in ("json", "yaml", "yml"):
        return _from_document(_parse_document(_decode(data, origin), fmt, origin), origin, key)
    if not data.strip():
        raise InputError(f"{origin}: empty file")
    delimiter = {"csv": ",", "tsv": "\t", "txt": None}[fmt]
    if delimiter is not None and len(data) >= ARROW_CSV_MIN_BYTES:
        fast = _parse_delimited_fast(data, delimiter, key, origin)
        if fast is not None:
            return fast
    return parse_delimited(_decode(data, origin), delimiter, key, origin)


def _parse_document(text: str, fmt: str, origin: str) -> Any:
    if fmt == "json":
        if not text.strip():
            raise InputError(f"{origin}: empty file")
        try:
            return json.loads(text)
        except json.JSONDecodeError as e:
            raise InputError(f"{origin}: invalid JSON: {e.msg} (line {e.lineno}, column {e.colno})") from None
        except RecursionError:
            raise InputError(f"{origin}: invalid JSON: nested too deeply") from None
        except ValueError as e:  # e.g. an integer with more than 4300 digits
            raise InputError(f"{origin}: invalid JSON: {str(e).split(';')[0]}") from None
    return _safe_yaml(text, origin)


def _decode(data: bytes, origin: str) -> str:
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):  # UTF-16 with a BOM ("Unicode text" from spreadsheets)
        try:
            return bytes(data).decode("utf-16")
        except UnicodeDecodeError as e:
            raise InputError(f"{origin}: not valid UTF-16 text (byte {e.start})") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        what = "binary data, not text" if b"\x00" in data[:4096] else "not UTF-8 text"
        raise InputError(f"{origin}: {what} (byte {e.start})") from None


# --------------------------------------------------------------------------- .npy / .npz


def _npy_header(f: BinaryIO, origin: str, what: str = "a .npy file") -> tuple[tuple[int, ...], bool, np.dtype, int]:
    """``(shape, fortran_order, dtype, data_offset)`` of the array at ``f``'s position."""
    from numpy.lib import format as npformat

    start = f.tell()
    magic = f.read(len(NPY_MAGIC))
    if magic != NPY_MAGIC:
        raise InputError(f"{origin}: not {what}: {_describe_magic(magic)}")
    f.seek(start)
    try:
        version = npformat.read_magic(f)
        reader = getattr(npformat, "_read_array_header", None)
        if reader is not None:
            shape, fortran, dtype = reader(f, version)
        elif version == (1, 0):
            shape, fortran, dtype = npformat.read_array_header_1_0(f)
        else:
            shape, fortran, dtype = npformat.read_array_header_2_0(f)
    except EOFError:
        raise InputError(f"{origin}: not {what}: truncated in its header") from None
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError, tokenize.TokenError) as e:
        # numpy reads the header dict with Python's tokenizer and literal_eval: any of these
        # is a header that is not a well-formed dict of plain values
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        if isinstance(e, tokenize.TokenError):
            msg = "its dict is not closed" if "EOF" in msg else "its dict cannot be read"
        elif msg.startswith("EOF"):
            raise InputError(f"{origin}: not {what}: truncated in its header ({msg[4:].strip()})") from None
        if len(msg) > 120:  # the header itself may be quoted in the message; keep the line short
            msg = msg[:100] + f"... ({len(msg)} characters)"
        raise InputError(f"{origin}: not {what}: a damaged header ({msg.rstrip('.:')})") from None
    if len(shape) > MAX_DIMENSIONS:
        raise InputError(f"{origin}: not {what}: a header with {len(shape)} dimensions "
                         f"(lossctl computes on at most {MAX_DIMENSIONS})")
    if dtype.hasobject:
        raise InputError(f"{origin}: holds Python objects (a pickled object array); refused, never unpickled")
    if any(int(n) < 0 for n in shape):
        raise InputError(f"{origin}: not {what}: a damaged header (negative shape {tuple(shape)})")
    _check_dtype(origin, dtype)
    return tuple(int(n) for n in shape), bool(fortran), dtype, f.tell()


def _describe_magic(head: bytes) -> str:
    if not head:
        return "the file is empty"
    if head.startswith(b"PK"):
        return "it is a zip archive (an .npz file?)"
    if head[:1] == b"\x80":
        return "it is a Python pickle; refused, never unpickled"
    if head.lstrip()[:1] in (b"[", b"{"):
        return "it looks like JSON text"
    return f"wrong magic bytes {bytes(head[:6])!r} (expected {NPY_MAGIC!r})"


def _check_dtype(origin: str, dtype: np.dtype) -> None:
    if dtype.kind not in "biufc":
        what = {"U": "text", "S": "bytes", "V": "records", "M": "dates", "m": "time deltas"}.get(dtype.kind, "values")
        raise InputError(f"{origin}: holds {what}, not numbers (dtype {dtype})")


def _load_npy(f: BinaryIO, origin: str, *, mmap: bool) -> np.ndarray:
    shape, fortran, dtype, offset = _npy_header(f, origin)
    count = math.prod(shape)
    nbytes = count * dtype.itemsize
    f.seek(0, io.SEEK_END)
    available = f.tell() - offset
    if available < nbytes:
        raise InputError(f"{origin}: truncated .npy file: the header declares shape {shape} {dtype} "
                         f"({size_text(nbytes)} of data) but only {size_text(max(available, 0))} follow")
    order = "F" if fortran else "C"
    if count == 0:
        return np.empty(shape, dtype=dtype, order=order)
    if mmap:
        return np.memmap(f, dtype=dtype, mode="r", offset=offset, shape=shape, order=order)
    if nbytes > max_input_bytes():
        raise InputError(f"{origin}: {size_text(nbytes)} is more than lossctl reads into memory; save it to a file")
    buf = f.getbuffer() if isinstance(f, io.BytesIO) else None
    if buf is not None:
        arr = np.frombuffer(buf, dtype=dtype, count=count, offset=offset)
    else:
        f.seek(offset)
        arr = np.frombuffer(f.read(nbytes), dtype=dtype, count=count)
    return arr.reshape(shape, order=order)


def _open_zip(f: BinaryIO, origin: str) -> zipfile.ZipFile:
    f.seek(0)
    head = f.read(4)
    f.seek(0)
    if head not in ZIP_MAGICS:
        detail = "it is a .npy file (name it .npy)" if head.startswith(NPY_MAGIC[:4]) else _describe_magic(head)
        raise InputError(f"{origin}: not a valid .npz file (a zip archive): {detail}")
    try:
        return zipfile.ZipFile(f)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
        raise InputError(f"{origin}: not a valid .npz file: {e}") from None


def _npz_all(f: BinaryIO, origin: str) -> dict[str, np.ndarray]:
    """Every array of an ``.npz``, the archive opened once (linear in the number of members)."""
    with _open_zip(f, origin) as zf:
        members = _npz_members(zf)
        return {name: _npz_member(zf, members, name, f"{origin}:{name}") for name in members}


def _npz_members(zf: zipfile.ZipFile) -> dict[str, str]:
    return {(n[:-4] if n.endswith(".npy") else n): n for n in zf.namelist() if not n.endswith("/")}


def _load_npz(f: BinaryIO, key: str | None, origin: str) -> np.ndarray:
    zf = _open_zip(f, origin)
    with zf:
        return _npz_member(zf, _npz_members(zf), key, origin)


def _npz_member(zf: zipfile.ZipFile, members: dict[str, str], key: str | None, origin: str) -> np.ndarray:
    if key is None or key not in members:
        names = list(members)
        listed = ", ".join(names[:10]) + (f", ... ({len(names)} in all)" if len(names) > 10 else "")
        if key is None:
            if len(names) != 1:
                raise InputError(f"{origin}: the archive holds {len(names)} arrays ({listed or 'none'}); "
                                 "name one as FILE.npz:KEY")
            key = names[0]
        else:
            raise InputError(f"{origin}: no array '{key}' in the archive (it has: {listed or 'none'})")
    info = zf.getinfo(members[key])
    cap = max_input_bytes()
    if info.file_size > cap:
        raise InputError(f"{origin}: array '{key}' is {size_text(info.file_size)} uncompressed, more than lossctl "
                         f"reads into memory ({size_text(cap)}); save it as .npy (memory-mapped)")
    try:
        with zf.open(info) as member:
            shape, fortran, dtype, offset = _npy_header(member, origin, f"an array: member '{key}' is not .npy data")
            count = math.prod(shape)
            nbytes = count * dtype.itemsize
            if nbytes > info.file_size - offset:
                raise InputError(f"{origin}: array '{key}' is truncated: its header declares shape {shape} "
                                 f"{dtype} ({size_text(nbytes)}) but the member holds {size_text(max(info.file_size - offset, 0))}")
            data = member.read(nbytes)
    except InputError:
        raise
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, RuntimeError, NotImplementedError) as e:
        raise InputError(f"{origin}: not a valid .npz file: {str(e) or type(e).__name__}") from None
    except Exception as e:  # zlib.error, lzma/bz2 errors
        raise InputError(f"{origin}: not a valid .npz file: {str(e) or type(e).__name__}") from None
    if len(data) < nbytes:
        raise InputError(f"{origin}: array '{key}' is truncated")
    return np.frombuffer(data, dtype=dtype, count=count).reshape(shape, order="F" if fortran else "C")


# --------------------------------------------------------------------------- JSON / YAML


def scalar_problem(e: Exception) -> str:
    """A YAML scalar that its tag cannot hold (``!!float abc``, ``!!int 1.5``, an integer of
    more than 4300 digits), as the end of an error line."""
    text = str(e)
    if isinstance(e, KeyError):  # `!!bool maybe`: no such value of the type
        return f"a value its type cannot hold ({text})"
    if "Exceeds the limit" in text or "integer string conversion" in text:
        return "an integer with more than 4300 digits (write it as a float, e.g. 1e4400)"
    return f"a value its type cannot hold ({text.split(';')[0]})"


def _safe_yaml(text: str, origin: str) -> Any:
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        doc = yaml.load(text, Loader=loader)  # noqa: S506 - a safe loader: plain data only
    except (ValueError, TypeError, OverflowError, KeyError) as e:  # raised by the safe constructors themselves
        raise InputError(f"{origin}: invalid YAML: {scalar_problem(e)}") from None
    except yaml.constructor.ConstructorError as e:
        tag = re.search(r"'([^']*)'", e.problem or "")
        what = f" {tag.group(1).replace('tag:yaml.org,2002:', '!!')}" if tag else ""
        raise InputError(f"{origin}: unsupported YAML tag{what} (only plain data is read; nothing was executed)") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(e, "problem", None)
        if not problem and isinstance(e, yaml.reader.ReaderError):
            problem, where = str(e.reason), f" (character {e.character!r} at position {e.position})"
        problem = " ".join(str(problem or e).split())  # one line
        raise InputError(f"{origin}: invalid YAML: {problem}{where}") from None
    except RecursionError:
        raise InputError(f"{origin}: invalid YAML: nested too deeply") from None
    if "&" in text:  # anchors: aliases may share nodes, so count what they expand to
        check_expanded_size(doc, origin)
    return doc


def check_expanded_size(doc: Any, origin: str, limit: int = MAX_DOCUMENT_ELEMENTS) -> None:
    """Refuse a document whose aliases expand to more than ``limit`` values, or that contains itself.

    Shared nodes are counted once per reference but visited once (memoised), so
    a "billion laughs" document is measured in microseconds, not expanded.
    """
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node: Any) -> int:
        if not isinstance(node, (list, dict)):
            return 1
        k = id(node)
        if k in sizes:
            return sizes[k]
        if k in active:
            raise InputError(f"{origin}: a YAML alias refers to a node that contains it (a self-referencing document)")
        active.add(k)
        total = 0
        for v in (node.values() if isinstance(node, dict) else node):
            total += size(v) if isinstance(v, (list, dict)) else 1
            if total > limit:
                raise InputError(f"{origin}: the YAML document expands to more than {limit:,} values "
                                 "(aliases that multiply, a \"billion laughs\" document?); refused")
        active.discard(k)
        sizes[k] = total
        return total

    size(doc)


_NON_FINITE = {"nan": math.nan, "+nan": math.nan, "-nan": math.nan, "inf": math.inf, "+inf": math.inf, "-inf": -math.inf,
               "infinity": math.inf, "+infinity": math.inf, "-infinity": -math.inf, ".nan": math.nan, ".inf": math.inf,
               "-.inf": -math.inf}


def _from_document(doc: Any, origin: str, key: str | None) -> np.ndarray:
    if key is not None:
        if not isinstance(doc, dict):
            raise InputError(f"{origin}: ':{key}' needs a mapping at the top level, found {_kind_of(doc)}")
        if key not in doc:
            by_text = {str(k): k for k in doc}
            if key not in by_text:
                raise InputError(f"{origin}: no key '{key}' (it has: {_list_keys(doc)})")
            key = by_text[key]
        doc = doc[key]
    if isinstance(doc, dict):
        raise InputError(f"{origin}: a mapping, not an array; name a key as FILE:KEY (keys: {_list_keys(doc)})")
    if doc is None:
        raise InputError(f"{origin}: empty document" if key is None else f"{origin}: the value is empty (null)")
    try:
        arr = np.array(doc)
    except (ValueError, TypeError):
        arr = None
    if arr is not None and arr.dtype.kind in "biuf":
        return arr
    # Slow path, only for documents that are not plain numbers: explain, or convert "nan"/"inf" strings.
    return _clean_document(doc, origin)


def _kind_of(doc: Any) -> str:
    return {list: "a list", str: "text", type(None): "nothing (null)", bool: "a boolean"}.get(type(doc), "a number")


def _list_keys(doc: dict) -> str:
    keys = [str(k) for k in doc]
    return (", ".join(keys[:10]) + (f", ... ({len(keys)} in all)" if len(keys) > 10 else "")) or "none"


def _fmt_path(path: tuple[int, ...]) -> str:
    return f"[{', '.join(map(str, path))}]"


def _clean_document(doc: Any, origin: str) -> np.ndarray:
    """Walk the document: non-finite strings become floats; anything else that is not a number is an error."""
    shape: list[int] = []  # the length of the first list met at each depth
    leaf_depth: int | None = None

    def ragged(path: tuple[int, ...], what: str) -> InputError:
        return InputError(f"{origin}: rows of different lengths (a ragged nested list): "
                          f"row {_fmt_path(path)} {what}")

    def walk(node: Any, path: tuple[int, ...]) -> Any:
        nonlocal leaf_depth
        depth = len(path)
        if isinstance(node, list):
            if leaf_depth is not None and depth >= leaf_depth:
                raise ragged(path, "is a list where the rows before it hold single numbers")
            if depth == len(shape):
                if depth >= 32:
                    raise InputError(f"{origin}: nested more than 32 levels deep")
                shape.append(len(node))
            elif shape[depth] != len(node):
                raise ragged(path, f"has {len(node)} {_plural(len(node), 'value')} where the rows before it have {shape[depth]}")
            return [walk(v, path + (i,)) for i, v in enumerate(node)]
        if leaf_depth is None:
            leaf_depth = depth
            if len(shape) > depth:
                raise ragged(path, "is a single number where the rows before it are lists")
        elif depth != leaf_depth:
            raise ragged(path, "is a single number where the rows before it are lists")
        if isinstance(node, str) and node.strip().lower() in _NON_FINITE:
            return _NON_FINITE[node.strip().lower()]
        if isinstance(node, (bool, int, float)):
            return node
        where = f" at index {_fmt_path(path)}" if path else ""
        raise InputError(f"{origin}: expected numbers, found {_describe_value(node)}{where}")

    cleaned = walk(doc, ())
    try:
        arr = np.array(cleaned)
        if arr.dtype == object:  # integers beyond int64
            arr = np.array(cleaned, dtype=np.float64)
    except (ValueError, TypeError, OverflowError) as e:
        raise InputError(f"{origin}: not a rectangular array of numbers ({e})") from None
    return arr


def _describe_value(node: Any) -> str:
    if node is None:
        return "null"
    if isinstance(node, str):
        return f"text {node[:40]!r}"
    if isinstance(node, dict):
        return "a mapping"
    return f"a {type(node).__name__} ({str(node)[:40]})"


# --------------------------------------------------------------------------- CSV / TSV / whitespace text


_SEPARATORS = ",;\t"
_NAME_LIKE = re.compile(r"[^\W\d]")  # a letter: header cells are names, not numbers or punctuation
_SEP_RUN = re.compile(r"[ \t]*[,;\t][ \t]*")
_HEADER_SPLIT = re.compile(r"[ \t]*[,;\t][ \t]*")


def parse_delimited(text: str, delimiter: str | None, key: str | None, origin: str) -> np.ndarray:
    """Parse CSV/TSV/whitespace text into a float64 array; a first row of names is a header.

    ``delimiter`` is ``","`` (.csv), ``"\\t"`` (.tsv) or ``None`` (.txt, any whitespace).
    For .csv and .tsv any of ``,``, ``;`` and tab separate cells (so a file
    pasted from a spreadsheet, or named .csv but tab-separated, reads), except
    that a line with both ``,`` and ``;`` is refused as ambiguous (decimal commas?).
    """
    lines = text.splitlines()
    start = 0
    while start < len(lines) and not lines[start].strip():
        start += 1
    if start == len(lines):
        raise InputError(f"{origin}: empty file (no data rows)")
    family = delimiter is not None
    delimiter, header = _table_head(lines[start], delimiter)
    data_start = start + (header is not None)
    data = lines[data_start:]
    if header is not None and not any(ln.strip() for ln in data):
        raise InputError(f"{origin}: a header row (line {start + 1}) but no data rows")
    try:
        arr = np.loadtxt(data, delimiter=delimiter, dtype=np.float64, ndmin=2, comments=None, quotechar='"')
    except ValueError:
        arr = _parse_delimited_slowly(data, data_start + 1, delimiter, family, origin)
    return _table_result(arr, header, key, start, origin)


#: CSV/TSV files of at least this many bytes try the compiled tokenizer (lossctl.io.compiled_csv),
#: then pyarrow when it is installed (lossctl.io.arrow_csv); smaller ones never import either.
ARROW_CSV_MIN_BYTES = 1 << 20


def _table_head(first: str, delimiter: str | None) -> tuple[str | None, list[str] | None]:
    """(the separator, the header's names or None) from the first non-blank line."""
    family = delimiter is not None
    if family:
        present = [c for c in _SEPARATORS if c in first]
        if delimiter not in present and len(present) == 1:
            delimiter = present[0]
    cells = _HEADER_SPLIT.split(first.strip()) if family else first.split()
    cells = [c.strip().strip('"').strip("'").strip() for c in cells]
    if not any(_is_number(c) for c in cells) and any(_NAME_LIKE.search(c) for c in cells):
        return delimiter, cells
    return delimiter, None


def _parse_delimited_fast(data: bytes, delimiter: str, key: str | None, origin: str) -> np.ndarray | None:
    """:func:`parse_delimited` of a large UTF-8 table through the compiled tokenizer or pyarrow
    (the ``arrow`` extra), the same numbers bit for bit; None when neither is available or takes
    the table (then the built-in reader reads it, with its own messages)."""
    from . import arrow_csv, compiled_csv

    view = memoryview(data)
    cut = bytes(view[:1 << 16]).rfind(b"\n")
    if data[:2] in (b"\xff\xfe", b"\xfe\xff") or cut < 0:
        return None
    try:
        head = bytes(view[:cut + 1]).decode("utf-8")
    except UnicodeDecodeError:
        return None
    bom = 1 if head.startswith("\ufeff") else 0
    lines = head[bom:].splitlines(keepends=True)
    start = 0
    while start < len(lines) - 1 and not lines[start].strip():
        start += 1
    if not lines[start].strip():
        return None
    delimiter, header = _table_head(lines[start].rstrip("\r\n"), delimiter)
    data_start = start + (header is not None)
    offset = len(head[:bom].encode()) + sum(len(ln.encode()) for ln in lines[:data_start])
    if delimiter is None or offset >= len(data) or not bytes(view[offset:offset + (1 << 16)]).strip():
        return None
    arr = compiled_csv.read_numbers(data, offset, delimiter)
    if arr is None:
        arr = arrow_csv.read_numbers(view[offset:], delimiter)
    if arr is None or arr.shape[0] == 0:
        return None
    return _table_result(arr, header, key, start, origin)


def _table_result(arr: np.ndarray, header: list[str] | None, key: str | None, start: int, origin: str) -> np.ndarray:
    """The parsed table as the caller asked for it: one column (by name or index), a single
    column as 1-D, else the 2-D table."""
    if header is not None and arr.shape[1] != len(header):
        raise InputError(f"{origin}: the header (line {start + 1}) names {len(header)} columns but the data rows "
                         f"have {arr.shape[1]}")
    if key is not None:
        col = _column_index(key, header, arr.shape[1], origin)
        return arr[:, col]
    if arr.shape[1] == 1:
        return arr[:, 0]
    return arr


def _parse_delimited_slowly(data: list[str], first_line: int, delimiter: str | None, family: bool, origin: str) -> np.ndarray:
    """The error path: drop blank lines, normalise mixed separators, retry; else say which line and column."""
    rows: list[str] = []
    numbers: list[int] = []
    for i, ln in enumerate(data, start=first_line):
        if ln.strip():
            rows.append(ln)
            numbers.append(i)
    if family:
        seen = {c for c in _SEPARATORS if any(c in ln for ln in rows)}
        if "," in seen and ";" in seen:
            for n, ln in zip(numbers, rows):
                if "," in ln and ";" in ln:
                    raise InputError(f"{origin}: line {n} mixes ',' and ';' separators, which is ambiguous "
                                     "(decimal commas?); use ',' between cells and '.' for decimals")
        if len(seen) > 1 or (seen and delimiter not in seen):
            rows = [_SEP_RUN.sub(",", ln.strip()) for ln in rows]
            delimiter = ","
        try:
            return np.loadtxt(rows, delimiter=delimiter, dtype=np.float64, ndmin=2, comments=None, quotechar='"')
        except ValueError:
            pass
    else:
        try:
            return np.loadtxt(rows, delimiter=None, dtype=np.float64, ndmin=2, comments=None)
        except ValueError:
            pass
    width = None
    for n, ln in zip(numbers, rows):
        cells = ln.split(delimiter) if delimiter else ln.split()
        if width is None:
            width = len(cells)
        elif len(cells) != width:
            raise InputError(f"{origin}: ragged rows: line {n} has {len(cells)} {_plural(len(cells), 'column')}, "
                             f"the lines before it have {width}")
        for j, cell in enumerate(cells, start=1):
            c = cell.strip().strip('"')
            if not c:
                raise InputError(f"{origin}: empty cell at line {n}, column {j}")
            if not _is_number(c):
                hint = ""
                if not family and ("," in c or ";" in c):
                    hint = " (the file looks comma-separated: name it .csv)"
                raise InputError(f"{origin}: non-numeric cell {c[:40]!r} at line {n}, column {j}{hint}")
    raise InputError(f"{origin}: cannot read the table")  # pragma: no cover - loadtxt and the scan disagree


def _plural(n: int, word: str) -> str:
    return word if n == 1 else word + "s"


def _is_number(cell: str) -> bool:
    try:
        float(cell)
        return True
    except ValueError:
        return False


def _column_index(key: str, header: list[str] | None, width: int, origin: str) -> int:
    if header is not None and key in header:
        return header.index(key)
    try:
        col = int(key)
    except ValueError:
        known = f" (columns: {', '.join(header)})" if header else " (the file has no header row)"
        raise InputError(f"{origin}: no column '{key}'{known}") from None
    if not -width <= col < width:
        raise InputError(f"{origin}: column {col} is out of range for {width} columns")
    return col


# --------------------------------------------------------------------------- sniffing


def sniff(data: bytes) -> str:
    """Guess a format from the first bytes: NPY/NPZ magic, JSON/YAML brackets, else delimited text."""
    if data.startswith(NPY_MAGIC):
        return "npy"
    if data.startswith(b"PK"):
        return "npz"
    head = bytes(data[:65536]).lstrip(b"\xef\xbb\xbf \t\r\n")
    if head[:1] in (b"[", b"{"):
        return "json" if _is_json(data) else "yaml"
    first_line = head.split(b"\n", 1)[0]
    if first_line.startswith((b"- ", b"---", b"%YAML")) or re.match(rb"^[\w\"' .-]+:(\s|$)", first_line):
        return "yaml"
    if b"," in first_line or b";" in first_line:
        return "csv"
    if b"\t" in first_line:
        return "tsv"
    return "txt"


def _is_json(data: bytes) -> bool:
    try:
        json.loads(data)
        return True
    except (ValueError, UnicodeDecodeError, RecursionError):
        return False
