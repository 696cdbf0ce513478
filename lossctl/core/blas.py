"""The thread count of NumPy's BLAS, for calls that split their products among their own threads.

OpenBLAS threads one product by splitting its output; for products whose output is small and
whose inner dimension is long (``(512, 128256) · (128256, 1024)``, the gradient of an lm-head's
input) its threads meet at every slice of the inner dimension and spend much of their time
waiting, the more so on a busy machine. A caller that instead gives each of its own threads
independent single-threaded products (rows of the output, or blocks of the vocabulary) keeps
every core busy without those meetings. :func:`single_threaded` sets NumPy's OpenBLAS to one
thread for the duration of a ``with`` block and restores the previous count.

The library is found among the shared objects the dynamic loader has loaded into this process
(``dl_iterate_phdr``) and driven through :mod:`ctypes`; elsewhere (another BLAS, another system) nothing changes and
:func:`single_threaded` yields False, so the caller keeps the BLAS's own threads.
"""

from __future__ import annotations

import ctypes
import os
import threading
from contextlib import contextmanager
from typing import Iterator

_LOCK = threading.Lock()
_STATE: dict[str, object] = {}
# symbol names of OpenBLAS builds: plain, ILP64 suffixed, and the scipy-openblas wheels' prefix
_PREFIXES = ("scipy_openblas_", "openblas_")
_SUFFIXES = ("64_", "")


class _PhdrInfo(ctypes.Structure):  # the leading fields of struct dl_phdr_info (<link.h>)
    _fields_ = [("addr", ctypes.c_void_p), ("name", ctypes.c_char_p), ("phdr", ctypes.c_void_p),
                ("phnum", ctypes.c_uint16)]


def _loaded_objects() -> list[str]:
    """Paths of the shared objects mapped into this process, from the dynamic loader
    (``dl_iterate_phdr``); empty where the C library has no such function."""
    try:
        iterate = ctypes.CDLL(None).dl_iterate_phdr
    except (AttributeError, OSError):
        return []
    names: list[str] = []
    callback_type = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(_PhdrInfo), ctypes.c_size_t, ctypes.c_void_p)

    def collect(info, size, data):
        name = info.contents.name
        if name:
            names.append(os.fsdecode(name))
        return 0

    iterate.argtypes, iterate.restype = [callback_type, ctypes.c_void_p], ctypes.c_int
    iterate(callback_type(collect), None)
    return names


def _libraries() -> list[tuple[object, object]]:
    """(get_num_threads, set_num_threads) of each OpenBLAS loaded in this process."""
    if "libs" in _STATE:
        return _STATE["libs"]  # type: ignore[return-value]
    found: list[tuple[object, object]] = []
    paths = sorted({p for p in _loaded_objects() if "openblas" in os.path.basename(p).lower()})
    for path in paths:
        try:
            lib = ctypes.CDLL(path, mode=getattr(os, "RTLD_NOLOAD", 0))
        except OSError:
            continue
        for prefix in _PREFIXES:
            for suffix in _SUFFIXES:
                get = getattr(lib, f"{prefix}get_num_threads{suffix}", None)
                put = getattr(lib, f"{prefix}set_num_threads{suffix}", None)
                if get is not None and put is not None:
                    get.restype, get.argtypes = ctypes.c_int, []
                    put.restype, put.argtypes = None, [ctypes.c_int]
                    found.append((get, put))
                    break
            else:
                continue
            break
    _STATE["libs"] = found
    return found


def threads() -> int | None:
    """The thread count of NumPy's OpenBLAS (the largest, if several are loaded); None if unknown."""
    import numpy  # noqa: F401  (the BLAS is mapped once NumPy is imported)

    libs = _libraries()
    return max(int(get()) for get, _ in libs) if libs else None


_DEPTH = [0]


@contextmanager
def single_threaded() -> Iterator[bool]:
    """One BLAS thread inside the block (True), or nothing changed (False: no OpenBLAS found).

    Nested and concurrent uses share one setting: the previous count comes back when the
    outermost block ends."""
    libs = _libraries() if threads() is not None else []
    if not libs:
        yield False
        return
    with _LOCK:
        if _DEPTH[0] == 0:
            _STATE["saved"] = [int(get()) for get, _ in libs]
            for _, put in libs:
                put(1)
        _DEPTH[0] += 1
    try:
        yield True
    finally:
        with _LOCK:
            _DEPTH[0] -= 1
            if _DEPTH[0] == 0:
                for (_, put), n in zip(libs, _STATE.pop("saved")):  # type: ignore[arg-type]
                    put(n)
