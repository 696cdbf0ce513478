"""Parse an input argument into a :class:`Source`: a path (with an optional key), stdin, or a literal.

A source is ``FILE.npy``, ``FILE.npz:NAME``, ``FILE.csv:COLUMN``, ``-``, or an
inline JSON/YAML flow literal such as ``'[[10,0,-10],[8,8,8]]'`` or ``'0.3'``.

An argument names a path when the path exists, when it ends in a known
extension (``1.csv`` is a missing file, not the YAML string "1.csv"), or when
it does not look like a literal; everything else is a literal.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

TENSOR_EXTENSIONS = (".safetensors", ".pt", ".pth", ".bin", ".parquet", ".arrow", ".feather", ".h5", ".hdf5")
EXTENSIONS = (".npy", ".npz", ".csv", ".tsv", ".txt", ".json", ".yaml", ".yml") + TENSOR_EXTENSIONS
KEYED_EXTENSIONS = (".npz", ".csv", ".tsv", ".txt", ".json", ".yaml", ".yml") + TENSOR_EXTENSIONS
_LITERAL_START = re.compile(r"^\s*([!\[{(\-+.0-9]|nan\b|inf\b|-inf\b|true\b|false\b|null\b)", re.IGNORECASE)
# "data/x.csv", "x.npz:logits", "1.csv": a file name, whatever its first character.
_FILE_NAME = re.compile(r"^[^\[\]{}\s,]*\.(npy|npz|csv|tsv|txt|json|ya?ml|safetensors|pth?|bin|parquet|arrow|feather|h5|hdf5)"
                        r"(:[^\[\]{}\s,/]*)?$", re.IGNORECASE)


@dataclass(frozen=True)
class Source:
    kind: str  # "path" | "stdin" | "literal"
    text: str  # the argument as given
    path: Path | None = None
    key: str | None = None

    @property
    def suffix(self) -> str:
        return self.path.suffix.lower() if self.path is not None else ""


def parse_source(text: str, base: Path | None = None) -> Source:
    """Decide what an input argument names. ``base`` resolves relative paths (check suites)."""
    if text == "-":
        return Source("stdin", text)

    def resolve(p: str) -> Path:
        path = Path(os.path.expanduser(p))
        return path if base is None or path.is_absolute() else base / path

    if "\x00" in text:  # not a path the OS accepts, and no literal either
        return Source("literal", text)
    path = resolve(text)
    try:
        exists = path.exists() or path.is_symlink()
    except OSError:  # a name too long for the file system, ...
        exists = False
    if exists:
        return Source("path", text, path)
    # FILE.ext:KEY (split at the last colon whose left part has a known extension);
    # FILE.npy:KEY too, so that the reader can say that a .npy file has no keys.
    head, sep, key = text.rpartition(":")
    if sep and head and key and Path(head).suffix.lower() in KEYED_EXTENSIONS + (".npy",):
        return Source("path", text, resolve(head), key)
    if _FILE_NAME.match(text):
        return Source("path", text, path)
    if _LITERAL_START.match(text):
        return Source("literal", text)
    return Source("path", text, path)
