"""``.safetensors`` with NumPy alone: parse the header, check it, memory-map the tensor.

The format: an 8-byte little-endian header length ``n``, ``n`` bytes of JSON
(``{"NAME": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...,
"__metadata__": {...}}``), then the data; offsets count from the end of the
header. Everything the header claims is checked against the file before any
memory is mapped or allocated: the length against the file size, each
tensor's byte range against the data (in range, the size its shape and dtype
imply, no overlap with another tensor), the dtype against the known names.

``BF16``, ``F8_E4M3`` (e4m3fn) and ``F8_E5M2`` come back as
:class:`~lossctl.io.encoded.EncodedArray` (memory-mapped bits, widened exactly
on demand, block by block) when ``lazy``, and widened to float32 otherwise;
``F16`` is NumPy's own float16 (memory-mapped); ``BOOL`` is read as bytes and
compared with zero.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Mapping

import numpy as np

from ..errors import InputError
from .encoded import EncodedArray

#: safetensors dtype name -> NumPy dtype of the stored bits, and the encoding (None: NumPy's own)
DTYPES: dict[str, tuple[np.dtype, str | None]] = {
    "F64": (np.dtype("<f8"), None), "F32": (np.dtype("<f4"), None), "F16": (np.dtype("<f2"), None),
    "BF16": (np.dtype("<u2"), "bfloat16"), "F8_E4M3": (np.dtype("u1"), "float8_e4m3fn"),
    "F8_E5M2": (np.dtype("u1"), "float8_e5m2"),
    "I8": (np.dtype("i1"), None), "I16": (np.dtype("<i2"), None), "I32": (np.dtype("<i4"), None),
    "I64": (np.dtype("<i8"), None), "U8": (np.dtype("u1"), None), "U16": (np.dtype("<u2"), None),
    "U32": (np.dtype("<u4"), None), "U64": (np.dtype("<u8"), None), "BOOL": (np.dtype("u1"), "bool"),
}
#: the writer's names for NumPy dtypes
_NAMES = {np.dtype(v[0]).newbyteorder("<"): k for k, v in DTYPES.items() if v[1] is None}
#: the reference implementation refuses headers larger than this
MAX_HEADER_BYTES = 100_000_000


@dataclass(frozen=True)
class TensorInfo:
    name: str
    dtype: str  # the safetensors name (F32, BF16, ...)
    shape: tuple[int, ...]
    begin: int  # byte offsets in the data section
    end: int


def _bad(origin: str, problem: str) -> InputError:
    return InputError(f"{origin}: not a valid .safetensors file: {problem}")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict:
    seen: dict = {}
    for k, v in pairs:
        if k in seen:
            raise ValueError(f"the key {k!r} appears twice")
        seen[k] = v
    return seen


def read_header(f: BinaryIO, origin: str) -> tuple[dict[str, TensorInfo], int]:
    """``({name: TensorInfo}, data_start)``, every claim checked against the file's size."""
    size = os.fstat(f.fileno()).st_size
    f.seek(0)
    head = f.read(8)
    if len(head) < 8:
        raise _bad(origin, "shorter than its 8-byte header length" if head else "the file is empty")
    n = int.from_bytes(head, "little")
    if n > size - 8:
        raise _bad(origin, f"the header length says {n:,} bytes but only {size - 8:,} follow (truncated, or not safetensors)")
    if n > MAX_HEADER_BYTES:
        raise _bad(origin, f"a header of {n:,} bytes (more than {MAX_HEADER_BYTES:,})")
    raw = f.read(n)
    if len(raw) < n:
        raise _bad(origin, "truncated in its header")
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except UnicodeDecodeError as e:
        raise _bad(origin, f"the header is not UTF-8 (byte {8 + e.start})") from None
    except RecursionError:
        raise _bad(origin, "the header is nested too deeply") from None
    except ValueError as e:  # JSONDecodeError and duplicate keys
        raise _bad(origin, f"the header is not valid JSON ({str(e).splitlines()[0]})") from None
    if not isinstance(header, dict):
        raise _bad(origin, f"the header is a JSON {type(header).__name__}, not an object")
    data_size = size - 8 - n
    infos: dict[str, TensorInfo] = {}
    for name, entry in header.items():
        if name == "__metadata__":
            if not isinstance(entry, dict):
                raise _bad(origin, "__metadata__ is not an object")
            continue
        infos[name] = _check_entry(name, entry, data_size, origin)
    ordered = sorted(infos.values(), key=lambda t: (t.begin, t.end))
    for a, b in zip(ordered, ordered[1:]):
        if b.begin < a.end:
            raise _bad(origin, f"tensors '{a.name}' and '{b.name}' overlap (bytes {a.begin}-{a.end} and {b.begin}-{b.end})")
    return infos, 8 + n


def _check_entry(name: str, entry: Any, data_size: int, origin: str) -> TensorInfo:
    where = f"tensor '{name}'"
    if not isinstance(entry, dict):
        raise _bad(origin, f"{where}: its entry is not an object")
    dtype = entry.get("dtype")
    if not isinstance(dtype, str) or dtype not in DTYPES:
        raise _bad(origin, f"{where}: unknown dtype {dtype!r} (lossctl reads {', '.join(DTYPES)})")
    shape = entry.get("shape")
    if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
        raise _bad(origin, f"{where}: the shape {shape!r} is not a list of non-negative integers")
    if len(shape) > 64:
        raise _bad(origin, f"{where}: {len(shape)} dimensions")
    offsets = entry.get("data_offsets")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(type(o) is int for o in offsets)):
        raise _bad(origin, f"{where}: data_offsets {offsets!r} is not a pair of integers")
    begin, end = offsets
    if not 0 <= begin <= end <= data_size:
        raise _bad(origin, f"{where}: bytes {begin}-{end} are outside the data section ({data_size:,} bytes; truncated?)")
    nbytes = math.prod(shape) * DTYPES[dtype][0].itemsize  # Python integers: a huge claim cannot overflow
    if nbytes != end - begin:
        raise _bad(origin, f"{where}: shape {tuple(shape)} {dtype} needs {nbytes:,} bytes but its offsets "
                           f"span {end - begin:,}")
    return TensorInfo(name, dtype, tuple(shape), begin, end)


def _listed(names) -> str:
    names = list(names)
    return (", ".join(names[:10]) + (f", ... ({len(names)} in all)" if len(names) > 10 else "")) or "none"


def tensor_names(f: BinaryIO, origin: str) -> list[str]:
    return list(read_header(f, origin)[0])


def load(f: BinaryIO, key: str | None, origin: str, *, lazy: bool = False) -> Any:
    """The tensor ``key`` (or the only one) of the open file ``f``.

    Plain dtypes: a read-only memory map. bfloat16/float8: an
    :class:`EncodedArray` over the memory-mapped bits when ``lazy``, else the
    exact float32 values. BOOL: a bool array.
    """
    infos, start = read_header(f, origin)
    if key is None:
        if len(infos) != 1:
            raise InputError(f"{origin}: the file holds {len(infos)} tensors ({_listed(infos)}); "
                             "name one as FILE.safetensors:NAME")
        key = next(iter(infos))
    info = infos.get(key)
    if info is None:
        raise InputError(f"{origin}: no tensor '{key}' (it has: {_listed(infos)})")
    bits_dtype, encoding = DTYPES[info.dtype]
    count = math.prod(info.shape)
    if count == 0:
        bits = np.empty(info.shape, dtype=bits_dtype)
    else:
        bits = np.memmap(f, dtype=bits_dtype, mode="r", offset=start + info.begin, shape=info.shape)
    if encoding is None:
        return bits
    if encoding == "bool":
        return bits != 0
    encoded = EncodedArray(bits, encoding)
    return encoded if lazy else encoded.widen()


# --------------------------------------------------------------------------- writing


def _entry_dtype(a: np.ndarray) -> str:
    if a.dtype == np.bool_:
        return "BOOL"
    name = _NAMES.get(a.dtype.newbyteorder("<"))
    if name is None:
        raise ValueError(f"no safetensors dtype for {a.dtype}")
    return name


def header_bytes(arrays: Mapping[str, tuple[tuple[int, ...], np.dtype]], metadata: Mapping[str, str] | None = None) -> bytes:
    """The length prefix and JSON header for tensors of these ``{name: (shape, dtype)}``, laid out
    in order, back to back (the header padded with spaces to a multiple of 8 bytes, so that
    8-byte values stay aligned)."""
    header: dict[str, Any] = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    offset = 0
    for name, (shape, dtype) in arrays.items():
        dtype = np.dtype(dtype)
        nbytes = math.prod(shape) * dtype.itemsize
        header[name] = {"dtype": _entry_dtype(np.empty(0, dtype)), "shape": [int(d) for d in shape],
                        "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-(8 + len(text)) % 8)
    return len(text).to_bytes(8, "little") + text


def write(f: BinaryIO, arrays: Mapping[str, np.ndarray], metadata: Mapping[str, str] | None = None) -> None:
    """Write ``arrays`` (NumPy dtypes, little-endian) to the binary stream ``f``."""
    arrays = {k: np.asarray(v) for k, v in arrays.items()}
    f.write(header_bytes({k: (a.shape, a.dtype) for k, a in arrays.items()}, metadata))
    for a in arrays.values():
        a = np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<") if a.dtype.itemsize > 1 else a.dtype)
        f.write(memoryview(a).cast("B") if a.size else b"")


def read_all(path: Path, origin: str) -> dict[str, np.ndarray]:
    """Every tensor of the file, by name (bfloat16/float8 widened to float32)."""
    from .readers import open_regular

    with open_regular(path, origin) as f:
        return {name: load(f, name, f"{origin}:{name}") for name in tensor_names(f, origin)}


def read_file(path: Path, key: str | None, origin: str, *, lazy: bool = False) -> Any:
    from .readers import open_regular

    with open_regular(path, origin) as f:
        return load(f, key, origin, lazy=lazy)
