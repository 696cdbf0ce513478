"""PyTorch's zip format (``torch.save``: ``.pt``, ``.pth``, ``.bin``) without torch.

The archive holds ``PREFIX/data.pkl`` (a pickle of the saved object, whose
tensors refer to storages by key) and one member ``PREFIX/data/KEY`` per
storage, stored uncompressed. The pickle is read by a restricted unpickler:
the only globals it resolves are what a tensor dict needs
(``torch._utils._rebuild_tensor_v2``/``_v3``, ``_rebuild_parameter``, the
``torch.*Storage`` types and ``torch.storage.UntypedStorage``, torch dtype
names, ``collections.OrderedDict``), and each resolves to a stand-in defined
here, never to an import; any other global is refused (exit 3) before anything
is called. Tensors come out of the pickle as references; only the one asked
for is then checked against its storage (offset, sizes and strides within the
member) and memory-mapped at the member's data offset, as a strided view.

``FILE.pt:KEY`` picks a top-level key, ``FILE.pt:a.b.c`` a nested one (dict keys,
list indices; a key that itself contains dots, as in a state dict's
``layer.0.weight``, is matched whole first); without a key the file must hold
exactly one tensor.
"""

from __future__ import annotations

import collections
import io
import math
import os
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from ..errors import InputError
from .encoded import EncodedArray

#: torch dtype name -> (NumPy dtype of the stored bits, encoding: None for NumPy's own, "bool", or an EncodedArray's)
DTYPES: dict[str, tuple[np.dtype, str | None]] = {
    "float64": (np.dtype("<f8"), None), "float32": (np.dtype("<f4"), None), "float16": (np.dtype("<f2"), None),
    "bfloat16": (np.dtype("<u2"), "bfloat16"), "float8_e4m3fn": (np.dtype("u1"), "float8_e4m3fn"),
    "float8_e5m2": (np.dtype("u1"), "float8_e5m2"),
    "int8": (np.dtype("i1"), None), "int16": (np.dtype("<i2"), None), "int32": (np.dtype("<i4"), None),
    "int64": (np.dtype("<i8"), None), "uint8": (np.dtype("u1"), None), "uint16": (np.dtype("<u2"), None),
    "uint32": (np.dtype("<u4"), None), "uint64": (np.dtype("<u8"), None), "bool": (np.dtype("u1"), "bool"),
}
#: dtypes a file may mention (for tensors that are not asked for) but that lossctl cannot compute with
_OTHER_DTYPES = {"complex32", "complex64", "complex128", "qint8", "qint32", "quint8", "quint4x2", "quint2x4",
                 "float8_e4m3fnuz", "float8_e5m2fnuz", "float8_e8m0fnu", "float4_e2m1fn_x2", "bits8", "bits16"}
_LEGACY_STORAGES = {
    "DoubleStorage": "float64", "FloatStorage": "float32", "HalfStorage": "float16", "BFloat16Storage": "bfloat16",
    "LongStorage": "int64", "IntStorage": "int32", "ShortStorage": "int16", "CharStorage": "int8",
    "ByteStorage": "uint8", "BoolStorage": "bool", "ComplexDoubleStorage": "complex128",
    "ComplexFloatStorage": "complex64", "QInt8Storage": "qint8", "QInt32Storage": "qint32",
    "QUInt8Storage": "quint8", "QUInt4x2Storage": "quint4x2", "QUInt2x4Storage": "quint2x4",
}
MAX_DIMS = 64
#: data.pkl describes the tensors, it does not hold them: real ones are kilobytes to a few MB
MAX_PICKLE_BYTES = 256 << 20


# --------------------------------------------------------------------------- stand-ins


@dataclass(frozen=True)
class _StorageType:
    dtype: str | None  # None: UntypedStorage (bytes; the tensor names its dtype)


@dataclass(frozen=True)
class _DType:
    name: str


@dataclass(frozen=True)
class _Storage:
    key: str
    dtype: str | None


@dataclass(frozen=True)
class TensorRef:
    """A tensor as the pickle describes it; :func:`materialize` maps it."""

    storage: _Storage
    offset: int
    size: tuple
    stride: tuple
    dtype: str


class _Refused(Exception):
    def __init__(self, what: str):
        self.what = what


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None, metadata=None):
    if not isinstance(storage, _Storage) or storage.dtype is None:
        raise _Refused("a tensor whose storage is not a storage")
    return TensorRef(storage, storage_offset, size, stride, storage.dtype)


def _rebuild_tensor_v3(storage, storage_offset, size, stride, requires_grad, backward_hooks, dtype, metadata=None):
    if not isinstance(storage, _Storage) or not isinstance(dtype, _DType):
        raise _Refused("a tensor whose storage or dtype is not one")
    return TensorRef(storage, storage_offset, size, stride, dtype.name)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, state=None):
    return data


_ALLOWED = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_tensor_v3"): _rebuild_tensor_v3,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch.storage", "UntypedStorage"): _StorageType(None),
    ("torch", "UntypedStorage"): _StorageType(None),
}
_ALLOWED.update({("torch", name): _StorageType(dtype) for name, dtype in _LEGACY_STORAGES.items()})
_ALLOWED.update({("torch", name): _DType(name) for name in (*DTYPES, *_OTHER_DTYPES)})


class _Unpickler(pickle.Unpickler):
    """Resolves only :data:`_ALLOWED` globals (to stand-ins); refuses everything else."""

    def find_class(self, module: str, name: str) -> Any:
        found = _ALLOWED.get((module, name))
        if found is None:
            raise _Refused(f"the pickle asks for {module}.{name}, which a tensor file never needs")
        return found

    def persistent_load(self, pid: Any) -> _Storage:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"
                and isinstance(pid[1], _StorageType) and isinstance(pid[2], str)):
            raise _Refused(f"an unknown persistent reference {str(pid)[:60]!r}")
        return _Storage(pid[2], pid[1].dtype)


# --------------------------------------------------------------------------- the archive


def _bad(origin: str, problem: str) -> InputError:
    return InputError(f"{origin}: not a valid PyTorch file: {problem}")


class TorchArchive:
    """An open ``torch.save`` zip file: its object (tensors as :class:`TensorRef`) and its storages."""

    def __init__(self, f: BinaryIO, origin: str):
        self.f = f
        self.origin = origin
        self.size = os.fstat(f.fileno()).st_size
        f.seek(0)
        head = f.read(4)
        if head != b"PK\x03\x04":
            raise InputError(f"{origin}: {_describe_not_zip(head, f)}")
        try:
            self.zf = zipfile.ZipFile(f)
            names = self.zf.namelist()
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as e:
            raise _bad(origin, f"a damaged zip archive ({e})") from None
        pickles = [n for n in names if n.endswith("/data.pkl") and n.count("/") == 1] or \
                  [n for n in names if n == "data.pkl"]
        if not pickles:
            raise _bad(origin, "the zip archive has no data.pkl (is it a torch.save file?)")
        self.prefix = pickles[0][: -len("data.pkl")]
        if any(n.startswith(self.prefix + "code/") for n in names) or self.prefix + "constants.pkl" in names:
            raise InputError(f"{origin}: a TorchScript archive (torch.jit.save), not a file of tensors; "
                             "save the tensors with torch.save instead")
        order = self._member_bytes("byteorder", required=False, limit=16)
        if order is not None and order.strip() != b"little":
            raise _bad(origin, f"byte order {order.strip()[:16]!r}; lossctl reads little-endian files")
        self.obj = self._unpickle(self._member_bytes("data.pkl", required=True, limit=MAX_PICKLE_BYTES))

    def _info(self, name: str) -> zipfile.ZipInfo | None:
        try:
            return self.zf.getinfo(self.prefix + name)
        except KeyError:
            return None

    def _member_bytes(self, name: str, *, required: bool, limit: int | None = None) -> bytes | None:
        from .readers import max_input_bytes

        info = self._info(name)
        if info is None:
            if required:
                raise _bad(self.origin, f"the member {self.prefix}{name} is missing")
            return None
        cap = min(limit, max_input_bytes()) if limit else max_input_bytes()
        if info.file_size > cap:
            raise _bad(self.origin, f"the member {self.prefix}{name} claims {info.file_size:,} bytes "
                                    f"(more than {cap:,}; a zip bomb?)")
        try:
            with self.zf.open(info) as member:
                data = member.read(cap + 1)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError, RuntimeError) as e:
            raise _bad(self.origin, f"the member {self.prefix}{name} is damaged ({e})") from None
        except Exception as e:  # zlib/lzma/bz2 errors
            raise _bad(self.origin, f"the member {self.prefix}{name} is damaged ({type(e).__name__}: {e})") from None
        if len(data) > cap:
            raise _bad(self.origin, f"the member {self.prefix}{name} expands past {cap:,} bytes (a zip bomb?)")
        return data

    def _unpickle(self, data: bytes) -> Any:
        _check_opcodes(data, self.origin)
        try:
            return _Unpickler(io.BytesIO(data)).load()
        except _Refused as e:
            raise InputError(f"{self.origin}: refused: {e.what} (nothing was executed)") from None
        except RecursionError:
            raise _bad(self.origin, "data.pkl is nested too deeply") from None
        except MemoryError:
            raise _bad(self.origin, "data.pkl asks for more memory than there is") from None
        except Exception as e:  # UnpicklingError, EOFError, TypeError from a bad REDUCE, ...
            msg = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise _bad(self.origin, f"data.pkl is damaged ({msg[:120]})") from None

    def _data_offset(self, info: zipfile.ZipInfo) -> int:
        """Where the member's bytes start: after its local header (whose extra field may differ
        from the central directory's)."""
        self.f.seek(info.header_offset)
        local = self.f.read(30)
        if len(local) < 30 or local[:4] != b"PK\x03\x04":
            raise _bad(self.origin, f"the member {info.filename} has a damaged local header")
        start = info.header_offset + 30 + int.from_bytes(local[26:28], "little") + int.from_bytes(local[28:30], "little")
        if start + info.file_size > self.size:
            raise _bad(self.origin, f"the member {info.filename} runs past the end of the file (truncated?)")
        return start

    def materialize(self, ref: TensorRef, name: str, *, lazy: bool) -> Any:
        origin = self.origin
        where = f"tensor '{name}'"
        if ref.dtype not in DTYPES:
            what = "complex numbers are" if ref.dtype.startswith("complex") else f"dtype {ref.dtype} is"
            raise InputError(f"{origin}: {where}: {what} not supported")
        bits_dtype, encoding = DTYPES[ref.dtype]
        size, stride, offset = ref.size, ref.stride, ref.offset
        if not (isinstance(size, tuple) and isinstance(stride, tuple) and len(size) == len(stride) <= MAX_DIMS
                and all(type(n) is int and n >= 0 for n in (*size, *stride)) and type(offset) is int and offset >= 0):
            raise _bad(origin, f"{where}: size {str(size)[:60]}, stride {str(stride)[:60]}, offset {str(offset)[:30]} "
                               "are not non-negative integers of matching lengths")
        info = self._info(f"data/{ref.storage.key}")
        if info is None:
            raise _bad(origin, f"{where}: its storage {self.prefix}data/{ref.storage.key} is missing from the archive")
        if info.compress_type != zipfile.ZIP_STORED:
            raise _bad(origin, f"{where}: its storage {info.filename} is compressed (torch.save stores storages "
                               "uncompressed, to be memory-mapped)")
        start = self._data_offset(info)
        itemsize = bits_dtype.itemsize
        elements = info.file_size // itemsize
        count = math.prod(size)
        if count:
            last = offset + sum((n - 1) * s for n, s in zip(size, stride))
            if last >= elements:
                raise _bad(origin, f"{where}: size {size}, stride {stride} and offset {offset} reach element "
                                   f"{last:,} of a storage of {elements:,} {ref.dtype} values")
            storage = np.memmap(self.f, dtype=bits_dtype, mode="r", offset=start, shape=(elements,))
            bits = np.ndarray(size, dtype=bits_dtype, buffer=storage, offset=offset * itemsize,
                              strides=tuple(s * itemsize for s in stride))
        else:
            bits = np.empty(size, dtype=bits_dtype)
        if encoding is None:
            return bits
        if encoding == "bool":
            return bits != 0
        encoded = EncodedArray(bits, encoding)
        return encoded if lazy else encoded.widen()

    def close(self) -> None:
        self.zf.close()


def _check_opcodes(data: bytes, origin: str) -> None:
    """Walk the pickle's opcodes without running them: every length it claims must be there
    (the unpickler would reserve a claimed length before finding the data missing)."""
    import pickletools

    try:
        for op, _arg, _pos in pickletools.genops(data):
            if op.name in ("NEXT_BUFFER", "READONLY_BUFFER"):
                raise _bad(origin, f"data.pkl uses out-of-band buffers ({op.name}), which torch.save never writes")
    except InputError:
        raise
    except Exception as e:  # ValueError: truncated or unknown opcode
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise _bad(origin, f"data.pkl is damaged ({msg[:120]})") from None


def _describe_not_zip(head: bytes, f: BinaryIO) -> str:
    if not head:
        return "not a valid PyTorch file: the file is empty"
    if head[:1] == b"\x80":
        return ("a legacy PyTorch file (saved before torch 1.6, or with _use_new_zipfile_serialization=False), "
                "which is a bare pickle; lossctl reads only the zip format: re-save it with torch.save")
    f.seek(257)
    if f.read(5) == b"ustar":
        return "a legacy PyTorch tar file; lossctl reads only the zip format: re-save it with torch.save"
    return f"not a valid PyTorch file: not a zip archive (it starts with {bytes(head)!r})"


# --------------------------------------------------------------------------- keys


def tensor_paths(obj: Any, prefix: str = "") -> list[tuple[str, TensorRef]]:
    """``(dotted path, tensor)`` of every tensor in ``obj`` (dicts, lists, tuples). A container
    met again (shared, or containing itself) is walked once."""
    out: list[tuple[str, TensorRef]] = []
    seen: set[int] = set()
    stack = [(prefix, obj)]
    while stack:
        path, node = stack.pop()
        if isinstance(node, TensorRef):
            out.append((path, node))
            continue
        if not isinstance(node, (dict, list, tuple)) or id(node) in seen:
            continue
        seen.add(id(node))
        items = node.items() if isinstance(node, dict) else enumerate(node)
        stack.extend((f"{path}.{k}" if path else str(k), v) for k, v in reversed(list(items)))
    return out


def _child(node: Any, part: str) -> tuple[bool, Any]:
    if isinstance(node, dict):
        if part in node:
            return True, node[part]
        for k, v in node.items():
            if str(k) == part:
                return True, v
        return False, None
    if isinstance(node, (list, tuple)):
        try:
            i = int(part)
        except ValueError:
            return False, None
        if -len(node) <= i < len(node):
            return True, node[i]
    return False, None


def resolve(obj: Any, key: str) -> tuple[bool, Any]:
    """The value at ``key``: a key of ``obj`` as a whole, else the longest dotted prefix that is
    one, then the rest within it."""
    found, value = _child(obj, key)
    if found:
        return True, value
    dots = [i for i, c in enumerate(key) if c == "."]
    for i in reversed(dots):
        found, value = _child(obj, key[:i])
        if found:
            found, value = resolve(value, key[i + 1:])
            if found:
                return True, value
    return False, None


def _listed(paths: list[str]) -> str:
    return (", ".join(paths[:10]) + (f", ... ({len(paths)} in all)" if len(paths) > 10 else "")) or "none"


def load(f: BinaryIO, key: str | None, origin: str, *, lazy: bool = False) -> Any:
    archive = TorchArchive(f, origin)
    try:
        paths = tensor_paths(archive.obj)
        if key is None:
            if isinstance(archive.obj, TensorRef):
                return archive.materialize(archive.obj, "(the file's tensor)", lazy=lazy)
            if len(paths) != 1:
                raise InputError(f"{origin}: the file holds {len(paths)} tensors ({_listed([p for p, _ in paths])}); "
                                 "name one as FILE.pt:KEY (a.b.c for nested dicts)")
            key, value = paths[0]
        else:
            found, value = resolve(archive.obj, key)
            if not found:
                raise InputError(f"{origin}: no key '{key}' (tensors: {_listed([p for p, _ in paths])})")
        if not isinstance(value, TensorRef):
            inner = [f"{key}.{p}" for p, _ in tensor_paths(value)]
            if isinstance(value, (dict, list, tuple)) and inner:
                raise InputError(f"{origin}: '{key}' holds {len(inner)} tensors ({_listed(inner)}); name one")
            return _plain(value, origin, key)
        return archive.materialize(value, key, lazy=lazy)
    finally:
        archive.close()


def _plain(value: Any, origin: str, key: str) -> np.ndarray:
    """A number or a list of numbers stored beside the tensors (``{"epoch": 3}``)."""
    if isinstance(value, (bool, int, float)) or (isinstance(value, (list, tuple)) and value
                                                 and all(isinstance(v, (bool, int, float)) for v in value)):
        return np.asarray(value)
    raise InputError(f"{origin}: '{key}' is {type(value).__name__}, not a tensor")


def read_all(path: Path, origin: str) -> dict[str, np.ndarray]:
    """Every tensor of the file, by dotted path (bfloat16/float8 widened to float32)."""
    from .readers import open_regular

    with open_regular(path, origin) as f:
        archive = TorchArchive(f, origin)
        try:
            return {name: archive.materialize(ref, name, lazy=False) for name, ref in tensor_paths(archive.obj)}
        finally:
            archive.close()


def read_file(path: Path, key: str | None, origin: str, *, lazy: bool = False) -> Any:
    from .readers import open_regular

    with open_regular(path, origin) as f:
        return load(f, key, origin, lazy=lazy)
