"""``-o/--output``: per-sample values (and gradients) to ``.npy``, ``.npz``, ``.csv`` or ``.safetensors``.

Never writes over an input file; refuses an existing file unless ``force``;
writes to a temporary file in the same directory and renames it into place,
so an interrupted run leaves no half-written output.
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path
from typing import Iterable

import numpy as np

from ..errors import InputError, UsageError, ref

OUTPUT_SUFFIXES = (".npy", ".npz", ".csv", ".safetensors")


PAGE_SUFFIXES = (".html", ".htm")


def check_output_path(path: Path, inputs: Iterable[Path], force: bool, *, key: str = "output",
                      suffixes: tuple[str, ...] = OUTPUT_SUFFIXES) -> None:
    """Refuse an output that is an input (the same file under any name: symlink, hard link,
    ``./x``), a directory or a non-regular file, an existing file without ``force``, or a
    missing directory. ``force`` never allows writing over an input. ``key`` names the
    output in messages (``output``, ``html``); ``suffixes`` are the file types it writes."""
    name = ref(key)
    suffix = path.suffix.lower()
    if suffix not in suffixes:
        raise UsageError(f"{name} {path}: unknown file type {suffix or '(none)'!r}; use {_choices(suffixes)}")
    resolved = path.resolve()
    for p in inputs:
        if p.resolve() == resolved or _same_file(p, path):
            raise UsageError(f"{name} {path}: is one of the inputs; lossctl never writes over an input file, "
                             f"not even with {ref('force')}")
    if path.is_dir():
        raise UsageError(f"{name} {path}: is a directory; name a file")
    if path.exists() and not path.is_file():
        raise UsageError(f"{name} {path}: exists and is not a regular file")
    if path.exists() and not force:
        raise UsageError(f"{name} {path}: exists; pass {ref('force')} to replace it")
    if not path.parent.exists():
        raise UsageError(f"{name} {path}: directory {path.parent} does not exist")


def _choices(suffixes: tuple[str, ...]) -> str:
    return ", ".join(suffixes[:-1]) + " or " + suffixes[-1] if len(suffixes) > 1 else suffixes[0]


def write_page(path: Path, text: str) -> None:
    """A page (``--html``) written whole or not at all."""
    _atomic_write(path, text.encode("utf-8"), key="html")


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return False


def write_output(path: Path, result, grad: bool) -> None:
    suffix = path.suffix.lower()
    arrays = {"per_sample": np.asarray(result.per_sample)}
    if grad:
        arrays.update({f"grad_{name}": np.asarray(g) for name, g in result.grad.items()})
    if suffix == ".npy" and len(arrays) > 1:
        raise UsageError(f"--output {path}: a .npy file holds one array; use .npz to write the gradient too")
    buf = io.BytesIO() if suffix != ".csv" else None
    if suffix == ".npy":
        np.save(buf, arrays["per_sample"], allow_pickle=False)
        data = buf.getvalue()
    elif suffix == ".npz":
        np.savez(buf, **arrays)
        data = buf.getvalue()
    elif suffix == ".safetensors":
        from .safetensors import write

        write(buf, arrays)
        data = buf.getvalue()
    else:
        from .per_sample_csv import write_csv

        text = io.StringIO()
        write_csv(text, result, per_sample=True, grad=grad)
        data = text.getvalue().encode()
    _atomic_write(path, data)


def _atomic_write(path: Path, data: bytes, key: str = "output") -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise InputError(f"{ref(key)} {path}: cannot write: {e.strerror or e}") from None
