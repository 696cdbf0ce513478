"""A zarr array as one shard (imported only for zarr sources; zarr comes with ``lossctl[dask]``).

A local path or, with fsspec installed, a URL (``s3://bucket/x.zarr``) that zarr opens.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError, UsageError


def _zarr():
    try:
        import zarr
    except ImportError:
        raise UsageError("reading a .zarr array needs zarr: pip install 'lossctl[dask]'") from None
    return zarr


def _open(location: str, origin: str):
    zarr = _zarr()
    try:
        return zarr.open_array(location, mode="r")
    except ImportError as e:  # a URL whose file system (fsspec, s3fs, ...) is missing
        raise UsageError(f"{origin}: {e}: pip install fsspec (and the file system's package)") from None
    except Exception as e:  # zarr raises its own errors for a missing or malformed store
        raise InputError(f"{origin}: not a readable zarr array: {e}") from None


def describe(location: str, origin: str) -> tuple[tuple[int, ...], str]:
    """The array's shape and dtype (from its metadata; no data is read)."""
    a = _open(location, origin)
    dtype = np.dtype(a.dtype)
    if dtype.kind not in "biuf":
        raise InputError(f"{origin}: dtype {dtype} is not numeric")
    if len(a.shape) == 0:
        raise InputError(f"{origin}: a 0-d array has no rows")
    return tuple(int(n) for n in a.shape), dtype.str


def read_rows(location: str, r0: int, r1: int) -> np.ndarray:
    """Rows ``r0 .. r1`` of the array."""
    return np.asarray(_open(location, location)[r0:r1])
