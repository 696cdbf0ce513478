"""``.h5`` / ``.hdf5`` datasets through the optional ``h5py``.

``FILE.h5:/group/dataset`` (the leading ``/`` optional) names a dataset; without
a key the file must hold exactly one. A contiguous, uncompressed dataset is
memory-mapped at its byte offset in the file (checked against the file's
size); a chunked or compressed one is read into memory, its declared size
checked against the reading cap first. Links to other files, virtual datasets
and external storage are refused: reading a dataset never opens another file.
Without h5py: exit 2, naming ``pip install 'lossctl[hdf5]'``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError, UsageError

EXTRA = "hdf5"


def _h5py(origin: str):
    try:
        import h5py
    except ImportError:
        raise UsageError(f"{origin}: reading HDF5 files needs h5py, which is not installed: "
                         f"pip install 'lossctl[{EXTRA}]'") from None
    return h5py


def _datasets(h5py, group, origin: str) -> list[str]:
    """Paths of the datasets under ``group`` (hard links only: no other file is opened)."""
    found: list[str] = []
    stack = [group]
    while stack:
        g = stack.pop()
        for name in g:
            link = g.get(name, getlink=True)
            if not isinstance(link, h5py.HardLink):
                continue
            item = g[name]
            if isinstance(item, h5py.Dataset):
                found.append(item.name)
            elif isinstance(item, h5py.Group):
                stack.append(item)
    return sorted(found)


def _follow(h5py, f, key: str, origin: str):
    """The object at ``key``, refusing soft links out of the file and external links."""
    node = f
    for part in [p for p in key.split("/") if p]:
        if not isinstance(node, h5py.Group) or part not in node:
            raise InputError(f"{origin}: no dataset '{key}' (datasets: {_listed(_datasets(h5py, f, origin))})")
        link = node.get(part, getlink=True)
        if isinstance(link, h5py.ExternalLink):
            raise InputError(f"{origin}: '{key}' is a link to another file ({link.filename}); refused")
        node = node[part]
    return node


def _listed(names: list[str]) -> str:
    return (", ".join(names[:10]) + (f", ... ({len(names)} in all)" if len(names) > 10 else "")) or "none"


def _read(h5py, ds, path: Path, origin: str) -> np.ndarray:
    from .readers import size_text, max_input_bytes

    dtype = ds.dtype
    if dtype.kind not in "biuf":
        raise InputError(f"{origin}: dataset {ds.name} holds {dtype}, not numbers")
    if ds.is_virtual or ds.external:
        raise InputError(f"{origin}: dataset {ds.name} keeps its data in other files; refused")
    shape = tuple(int(n) for n in ds.shape) if ds.shape is not None else ()
    count = int(np.prod(shape, dtype=object)) if shape else 1
    nbytes = count * dtype.itemsize
    if count == 0:
        return np.empty(shape, dtype=dtype)
    offset = ds.id.get_offset() if ds.chunks is None and ds.compression is None else None
    if offset is not None:
        if offset + nbytes > os.path.getsize(path):
            raise InputError(f"{origin}: dataset {ds.name} declares {size_text(nbytes)} at byte {offset:,}, past the end "
                             "of the file (truncated?)")
        return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape)
    if nbytes > max_input_bytes():
        raise InputError(f"{origin}: dataset {ds.name} is {size_text(nbytes)} (chunked or compressed, so read into memory), "
                         f"more than lossctl reads ({size_text(max_input_bytes())}); raise LOSSCTL_MAX_INPUT_BYTES")
    return np.asarray(ds[()])


def read_file(path: Path, key: str | None, origin: str, *, lazy: bool = False) -> Any:
    h5py = _h5py(origin)
    try:
        with h5py.File(path, "r") as f:
            if key is None:
                names = _datasets(h5py, f, origin)
                if len(names) != 1:
                    raise InputError(f"{origin}: the file holds {len(names)} datasets ({_listed(names)}); "
                                     "name one as FILE.h5:/group/dataset")
                key = names[0]
            node = _follow(h5py, f, key, origin)
            if not isinstance(node, h5py.Dataset):
                raise InputError(f"{origin}: '{key}' is a group, not a dataset "
                                 f"(datasets in it: {_listed(_datasets(h5py, node, origin))})")
            return _read(h5py, node, path, origin)
    except (InputError, UsageError):
        raise
    except MemoryError:
        raise InputError(f"{origin}: too large to fit in memory") from None
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as e:
        msg = " ".join(str(e).split())[:200] or type(e).__name__
        raise InputError(f"{origin}: not a valid HDF5 file: {msg}") from None
