"""Readers: a :class:`~lossctl.io.sources.Source` in, a NumPy array out. Nothing here knows about losses.

* ``.npy``: memory-mapped, ``allow_pickle=False`` (object arrays are refused, never unpickled);
* ``.npz``: ``:KEY`` or the only array in the archive;
* ``.csv`` / ``.tsv`` / ``.txt``: a header row is detected (any non-numeric cell),
  ``:COLUMN`` selects a column by header name or 0-based index, a single column
  reads as a 1-D array; BOM, CRLF and blank lines are accepted;
* ``.json`` / ``.yaml`` / ``.yml``: safe loading only, ``:KEY`` is a top-level key;
* ``-``: standard input, the format sniffed (or given as ``stdin_format``);
* literals: JSON first (fast), then YAML flow syntax.

Every error is an :class:`~lossctl.errors.InputError` whose message starts
with the origin given by the caller (``--target labels.npy``).
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from ..errors import InputError, UsageError
from .sources import EXTENSIONS, Source

STDIN_FORMATS = ("npy", "npz", "csv", "tsv", "txt", "json", "yaml")


def read_array(source: Source, origin: str, *, stdin: BinaryIO | None = None, stdin_format: str | None = None) -> np.ndarray:
    """Read one array; ``origin`` prefixes every error message."""
    if source.kind == "literal":
        return _from_document(_parse_literal(source.text, origin), origin, None)
    if source.kind == "stdin":
        stream = stdin if stdin is not None else sys.stdin.buffer
        return _read_stdin(stream, origin, stdin_format)
    return read_path(source.path, source.key, origin)


def read_path(path: Path, key: str | None, origin: str) -> np.ndarray:
    suffix = path.suffix.lower()
    if suffix not in EXTENSIONS:
        raise InputError(f"{origin}: unknown file type {suffix or '(none)'!r}; use one of {', '.join(EXTENSIONS)}")
    if not path.exists():
        raise InputError(f"{origin}: no such file")
    if path.is_dir():
        raise InputError(f"{origin}: is a directory, not a file")
    if not path.is_file():
        raise InputError(f"{origin}: not a regular file")
    try:
        if suffix == ".npy":
            if key:
                raise InputError(f"{origin}: a .npy file holds one array; ':{key}' does not apply")
            return _load_npy(path, origin)
        if suffix == ".npz":
            with open(path, "rb") as f:
                return _load_npz(f, key, origin)
        data = path.read_bytes()
    except PermissionError:
        raise InputError(f"{origin}: permission denied") from None
    except OSError as e:
        raise InputError(f"{origin}: cannot read: {e.strerror or e}") from None
    return _parse_bytes(data, suffix.lstrip("."), key, origin)


def _parse_bytes(data: bytes, fmt: str, key: str | None, origin: str) -> np.ndarray:
    if fmt == "npy":
        return _load_npy(io.BytesIO(data), origin)
    if fmt == "npz":
        return _load_npz(io.BytesIO(data), key, origin)
    text = _decode(data, origin)
    if fmt in ("json",):
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as e:
            raise InputError(f"{origin}: invalid JSON: {e.msg} (line {e.lineno}, column {e.colno})") from None
        return _from_document(doc, origin, key)
    if fmt in ("yaml", "yml"):
        return _from_document(_safe_yaml(text, origin), origin, key)
    delimiter = {"csv": ",", "tsv": "\t", "txt": None}[fmt]
    return parse_delimited(text, delimiter, key, origin)


def _decode(data: bytes, origin: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise InputError(f"{origin}: not UTF-8 text (byte {e.start})") from None


def _load_npy(file, origin: str) -> np.ndarray:
    try:
        if isinstance(file, Path):
            try:
                arr = np.load(file, mmap_mode="r", allow_pickle=False)
            except ValueError as e:
                if "pickle" in str(e).lower() or "object" in str(e).lower():
                    raise
                arr = np.load(file, allow_pickle=False)  # e.g. zero-size arrays cannot be mapped
        else:
            arr = np.load(file, allow_pickle=False)
    except ValueError as e:
        msg = str(e)
        if "pickle" in msg.lower() or "object" in msg.lower():
            raise InputError(f"{origin}: holds Python objects (pickled data); refused, never unpickled") from None
        raise InputError(f"{origin}: not a valid .npy file: {msg}") from None
    except (OSError, EOFError) as e:
        raise InputError(f"{origin}: not a valid .npy file: {e}") from None
    if not isinstance(arr, np.ndarray):
        raise InputError(f"{origin}: not a .npy array")
    return arr


def _load_npz(file, key: str | None, origin: str) -> np.ndarray:
    try:
        with np.load(file, allow_pickle=False) as archive:
            names = list(archive.files)
            if key is None:
                if len(names) != 1:
                    listed = ", ".join(names) if names else "none"
                    raise InputError(f"{origin}: the archive holds {len(names)} arrays ({listed}); name one as FILE.npz:KEY")
                key = names[0]
            if key not in names:
                raise InputError(f"{origin}: no array '{key}' in the archive (it has: {', '.join(names) or 'none'})")
            return archive[key]
    except InputError:
        raise
    except ValueError as e:
        if "pickle" in str(e).lower() or "object" in str(e).lower():
            raise InputError(f"{origin}: holds Python objects (pickled data); refused, never unpickled") from None
        raise InputError(f"{origin}: not a valid .npz file: {e}") from None
    except Exception as e:  # zipfile.BadZipFile, EOFError, OSError
        raise InputError(f"{origin}: not a valid .npz file: {e}") from None


def _safe_yaml(text: str, origin: str) -> Any:
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        return yaml.load(text, Loader=loader)  # noqa: S506 - a safe loader
    except yaml.constructor.ConstructorError as e:
        raise InputError(f"{origin}: unsupported YAML tag {e.problem.split()[-1] if e.problem else ''} (only plain data is read)".rstrip()) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise InputError(f"{origin}: invalid YAML: {getattr(e, 'problem', None) or e}{where}") from None


def _parse_literal(text: str, origin: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    lowered = text.strip().lower()
    if lowered in ("nan", "inf", "+inf", "-inf"):
        return float(lowered)
    return _safe_yaml(text, origin)


def _from_document(doc: Any, origin: str, key: str | None) -> np.ndarray:
    if key is not None:
        if not isinstance(doc, dict):
            raise InputError(f"{origin}: ':{key}' needs a mapping at the top level, found {type(doc).__name__}")
        if key not in doc:
            raise InputError(f"{origin}: no key '{key}' (it has: {', '.join(map(str, doc)) or 'none'})")
        doc = doc[key]
    if isinstance(doc, dict):
        raise InputError(f"{origin}: a mapping, not an array; name a key as FILE:KEY (keys: {', '.join(map(str, doc))})")
    if doc is None:
        raise InputError(f"{origin}: empty document")
    doc = _non_finite_strings(doc)
    try:
        arr = np.array(doc)
    except ValueError:
        raise InputError(f"{origin}: rows of different lengths (a ragged nested list)") from None
    if arr.dtype == object:
        raise InputError(f"{origin}: rows of different lengths or mixed values (not a rectangular array of numbers)")
    if arr.dtype.kind in "US":
        raise InputError(f"{origin}: expected numbers, found text such as {np.ravel(arr)[0]!r}")
    return arr


def _non_finite_strings(doc: Any) -> Any:
    """'nan', 'inf', '-inf' strings (as lossctl's JSON writes them) read back as floats."""
    if isinstance(doc, list):
        return [_non_finite_strings(v) for v in doc]
    if isinstance(doc, str) and doc.strip().lower() in ("nan", "inf", "+inf", "-inf", "infinity", "-infinity"):
        return float(doc)
    return doc


def parse_delimited(text: str, delimiter: str | None, key: str | None, origin: str) -> np.ndarray:
    """Parse CSV/TSV/whitespace text into a float64 array; a non-numeric first row is a header."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        raise InputError(f"{origin}: empty file")
    header: list[str] | None = None
    first = _split(lines[0], delimiter)
    if not all(_is_number(c) for c in first):
        header = [c.strip().strip('"') for c in first]
        lines = lines[1:]
        if not lines:
            raise InputError(f"{origin}: a header row but no data")
    width = len(header) if header is not None else len(_split(lines[0], delimiter))
    try:
        arr = np.loadtxt(io.StringIO("\n".join(lines)), delimiter=delimiter, dtype=np.float64, ndmin=2, comments=None)
    except ValueError as e:
        raise InputError(f"{origin}: {_loadtxt_message(str(e), header is not None)}") from None
    if header is not None and arr.shape[1] != width:
        raise InputError(f"{origin}: the header has {width} columns but the rows have {arr.shape[1]}")
    if key is not None:
        col = _column_index(key, header, arr.shape[1], origin)
        return arr[:, col]
    if arr.shape[1] == 1:
        return arr[:, 0]
    return arr


def _split(line: str, delimiter: str | None) -> list[str]:
    return line.split(delimiter) if delimiter else line.split()


def _is_number(cell: str) -> bool:
    try:
        float(cell)
        return True
    except ValueError:
        return False


def _loadtxt_message(msg: str, has_header: bool) -> str:
    import re

    shift = 1 if has_header else 0
    m = re.search(r"could not convert string '(.*)' to float64 at row (\d+), column (\d+)", msg)
    if m:
        return f"non-numeric cell {m.group(1)!r} at data row {int(m.group(2)) + 1}, column {int(m.group(3))}"
    m = re.search(r"the number of columns changed from (\d+) to (\d+) at row (\d+)", msg)
    if m:
        return f"ragged rows: data row {int(m.group(3)) + 1} has {m.group(2)} columns, expected {m.group(1)}"
    return msg.rstrip(".")


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


def _read_stdin(stream: BinaryIO, origin: str, fmt: str | None) -> np.ndarray:
    if fmt is not None and fmt not in STDIN_FORMATS:
        raise UsageError(f"--stdin-format: expected one of {', '.join(STDIN_FORMATS)}, got {fmt!r}")
    data = stream.read()
    if not data:
        raise InputError(f"{origin}: standard input is empty")
    fmt = fmt or sniff(data)
    return _parse_bytes(data, fmt, None, origin)


def sniff(data: bytes) -> str:
    """Guess a format from the first bytes: NPY/NPZ magic, JSON/YAML brackets, else delimited text."""
    if data.startswith(b"\x93NUMPY"):
        return "npy"
    if data.startswith(b"PK"):
        return "npz"
    head = data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if head in (b"[", b"{"):
        return "json" if _is_json(data) else "yaml"
    first_line = data.split(b"\n", 1)[0]
    if b"," in first_line:
        return "csv"
    if b"\t" in first_line:
        return "tsv"
    if b":" in first_line:
        return "yaml"
    return "txt"


def _is_json(data: bytes) -> bool:
    try:
        json.loads(data)
        return True
    except (ValueError, UnicodeDecodeError):
        return False


def read_named_arrays(source: Source, origin: str, *, stdin_format: str | None = None) -> dict[str, np.ndarray]:
    """Several named arrays from one source: every array of an ``.npz`` (or every top-level
    key of a JSON/YAML mapping) when no ``:KEY`` is given; otherwise ``{"params": array}``
    (or ``{KEY: array}``)."""
    if source.kind == "path" and source.key is None and source.path is not None:
        suffix = source.path.suffix.lower()
        if suffix == ".npz" and source.path.is_file():
            with np.load(source.path, allow_pickle=False) as archive:
                names = list(archive.files)
            return {name: read_path(source.path, name, f"{origin}:{name}") for name in names}
        if suffix in (".json", ".yaml", ".yml") and source.path.is_file():
            data = source.path.read_bytes()
            text = _decode(data, origin)
            doc = json.loads(text) if suffix == ".json" else _safe_yaml(text, origin)
            if isinstance(doc, dict):
                return {str(k): _from_document(v, f"{origin}:{k}", None) for k, v in doc.items()}
    name = source.key or "params"
    return {name: read_array(source, origin, stdin_format=stdin_format)}
