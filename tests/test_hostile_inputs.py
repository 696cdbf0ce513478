"""A catalogue of hostile and broken inputs, each a CLI test.

Every case runs ``lossctl`` in-process through ``main(argv)`` (the real error
boundary) in a fresh directory and checks:

* the exit code (2 usage, 3 input; 0 where the input must work);
* stderr: one ``error: ...`` line naming the option and the problem (with the
  line/column, row or index where it applies), ``warning: ...`` lines only
  otherwise, never a ``Traceback``; stdout carries results only;
* every file in the directory is byte-identical afterwards (nothing written
  over an input, nothing created, except a case's declared ``-o`` output);
* for the security cases: a marker file that the payload would create if it
  were ever unpickled / executed does not exist (and a control test proves
  the payloads are live).

A few cases need a real process (FIFO, ``/dev/zero``, a terminal, hundreds of
MB on stdin); they run ``python -m lossctl`` with a timeout.
"""

from __future__ import annotations

import io
import json
import math
import os
import pickle
import subprocess
import sys
import time
import tracemalloc
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
LOGITS = [[10.0, 0.0, -10.0], [8.0, 8.0, 8.0]]
TARGET = [0, 2]
BASE_LOSS = 0.5493288448141933  # ce(LOGITS, TARGET), as torch gives it
MARKER = "pwned"  # created by a payload only if it is ever unpickled or executed


# --------------------------------------------------------------------------- payloads


class _OpenOnUnpickle:
    """Unpickling this calls ``open(path, "w")``: the marker file appears."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def evil_object_array(marker: Path) -> np.ndarray:
    return np.array([_OpenOnUnpickle(str(marker)), 1.0], dtype=object)


YAML_OS_SYSTEM = f'!!python/object/apply:os.system ["touch {MARKER}"]\n'
YAML_OPEN = f'!!python/object/apply:builtins.open ["{MARKER}", "w"]\n'
YAML_NEW = "!!python/object/new:builtins.bytearray [4]\n"


def billion_laughs(root_key: bool = True) -> str:
    """Nine levels of ten aliases each: 10**9 numbers once expanded."""
    names = "abcdefghi"
    lines = []
    for i, n in enumerate(names):
        body = ", ".join(["1"] * 10) if i == 0 else ", ".join([f"*{names[i - 1]}"] * 10)
        lines.append(f"{n}: &{n} [{body}]" if root_key else f"- &{n} [{body}]")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- file builders


Builder = Callable[[Path], None]


def text(name: str, content: str | bytes) -> Builder:
    def build(d: Path) -> None:
        (d / name).write_bytes(content.encode() if isinstance(content, str) else content)
    return build


def npy(name: str, arr) -> Builder:
    def build(d: Path) -> None:
        np.save(d / name, np.asarray(arr), allow_pickle=False)
    return build


def npz(name: str, **arrays) -> Builder:
    def build(d: Path) -> None:
        np.savez(d / name, **{k: np.asarray(v) for k, v in arrays.items()})
    return build


def npy_bytes(arr) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.asarray(arr), allow_pickle=False)
    return buf.getvalue()


def truncated_npy_data(d: Path) -> None:
    (d / "short.npy").write_bytes(npy_bytes(np.arange(12.0).reshape(4, 3))[:-20])


def truncated_npy_header(d: Path) -> None:
    (d / "short.npy").write_bytes(npy_bytes(LOGITS)[:40])


def lying_header(d: Path) -> None:
    """A header that declares 10**12 values: must not allocate, must say 'truncated'."""
    data = npy_bytes(LOGITS).replace(b"(2, 3)", b"(1000000, 1000000)")
    (d / "huge.npy").write_bytes(data)


def evil_npy(d: Path) -> None:
    np.save(d / "evil.npy", evil_object_array(d / MARKER), allow_pickle=True)


def evil_npz(d: Path) -> None:
    np.savez(d / "evil.npz", a=evil_object_array(d / MARKER))


def raw_pickle(name: str) -> Builder:
    def build(d: Path) -> None:
        (d / name).write_bytes(pickle.dumps([_OpenOnUnpickle(str(d / MARKER))]))
    return build


def npz_bad_crc(d: Path) -> None:
    np.savez(d / "crc.npz", a=np.arange(100.0))
    data = bytearray((d / "crc.npz").read_bytes())
    data[200] ^= 0xFF  # inside the stored (uncompressed) array data
    (d / "crc.npz").write_bytes(bytes(data))


def npz_text_member(d: Path) -> None:
    with zipfile.ZipFile(d / "odd.npz", "w") as zf:
        zf.writestr("a.txt", "1,2,3")


def npz_truncated(d: Path) -> None:
    np.savez(d / "cut.npz", a=np.arange(100.0))
    data = (d / "cut.npz").read_bytes()
    (d / "cut.npz").write_bytes(data[: len(data) // 2])


def symlink(name: str, target: str) -> Builder:
    def build(d: Path) -> None:
        os.symlink(target, d / name)
    return build


def hardlink(name: str, target: str) -> Builder:
    def build(d: Path) -> None:
        os.link(d / target, d / name)
    return build


def mkdir(name: str) -> Builder:
    def build(d: Path) -> None:
        (d / name).mkdir()
    return build


def several(*builders: Builder) -> Builder:
    def build(d: Path) -> None:
        for b in builders:
            b(d)
    return build


def base_files(d: Path) -> None:
    np.save(d / "logits.npy", np.array(LOGITS))
    np.save(d / "t.npy", np.array(TARGET))


# --------------------------------------------------------------------------- the catalogue


@dataclass(frozen=True)
class Case:
    id: str
    argv: tuple[str, ...]
    code: int
    stderr: tuple[str, ...] = ()  # substrings of the error line (code 2/3) or of the warnings (code 0)
    files: Builder | None = None
    stdin: bytes | None = None
    stdout: float | None = None  # the expected loss (plain format) when code == 0
    marker: bool = False  # the payload's marker file must not exist afterwards
    creates: tuple[str, ...] = ()  # outputs the case may create or replace


CE = ("ce", "--logits")
LOGITS_CSV = "10,0,-10\n8,8,8\n"


def _c(id, argv, code, stderr=(), **kw) -> Case:
    return Case(id, tuple(argv), code, tuple(stderr), **kw)


CASES: list[Case] = [
    # ---- files
    _c("missing-file", [*CE, "nope.npy", "-t", "t.npy"], 3, ["--logits nope.npy", "no such file"]),
    _c("missing-file-with-key", [*CE, "logits.npy", "-t", "nope.npz:labels"], 3, ["--target nope.npz:labels", "no such file"]),
    _c("missing-file-numeric-name", [*CE, "1.csv", "-t", "t.npy"], 3, ["--logits 1.csv", "no such file"]),
    _c("missing-file-no-extension", [*CE, "nothing", "-t", "t.npy"], 3, ["--logits nothing", "no such file"]),
    _c("path-through-a-file", [*CE, "logits.npy/x.npy", "-t", "t.npy"], 3, ["--logits logits.npy/x.npy", "not a directory"]),
    _c("directory", [*CE, "data", "-t", "t.npy"], 3, ["--logits data", "is a directory"], files=mkdir("data")),
    _c("directory-named-npy", [*CE, "d.npy", "-t", "t.npy"], 3, ["--logits d.npy", "is a directory"], files=mkdir("d.npy")),
    _c("broken-symlink", [*CE, "gone.npy", "-t", "t.npy"], 3, ["--logits gone.npy", "broken symbolic link"],
       files=symlink("gone.npy", "nowhere.npy")),
    _c("symlink-loop", [*CE, "loop.npy", "-t", "t.npy"], 3, ["--logits loop.npy", "symbolic links"],
       files=several(symlink("loop.npy", "loop2.npy"), symlink("loop2.npy", "loop.npy"))),
    _c("symlink-to-dev-zero", [*CE, "zero.npy", "-t", "t.npy"], 3, ["--logits zero.npy", "character device", "regular files only"],
       files=symlink("zero.npy", "/dev/zero")),
    _c("dev-zero", [*CE, "/dev/zero", "-t", "t.npy"], 3, ["--logits /dev/zero", "character device"]),
    _c("empty-npy", [*CE, "e.npy", "-t", "t.npy"], 3, ["--logits e.npy", "not a .npy file", "empty"], files=text("e.npy", b"")),
    _c("truncated-npy-header", [*CE, "short.npy", "-t", "t.npy"], 3, ["--logits short.npy", "truncated"], files=truncated_npy_header),
    _c("truncated-npy-data", [*CE, "short.npy", "-t", "t.npy"], 3, ["--logits short.npy", "truncated", "(4, 3)"], files=truncated_npy_data),
    _c("npy-header-declares-1e12-values", [*CE, "huge.npy", "-t", "t.npy"], 3, ["--logits huge.npy", "truncated", "(1000000, 1000000)"],
       files=lying_header),
    _c("npy-wrong-magic", [*CE, "m.npy", "-t", "t.npy"], 3, ["--logits m.npy", "wrong magic"],
       files=text("m.npy", b"NOTNUMPY" + npy_bytes(LOGITS)[8:])),
    _c("npy-is-really-npz", [*CE, "z.npy", "-t", "t.npy"], 3, ["--logits z.npy", "zip archive"],
       files=lambda d: np.savez(d / "z.npz", a=np.array(LOGITS)) or os.rename(d / "z.npz", d / "z.npy")),
    _c("npy-is-really-json", [*CE, "j.npy", "-t", "t.npy"], 3, ["--logits j.npy", "JSON"], files=text("j.npy", json.dumps(LOGITS))),
    _c("npy-with-key", [*CE, "logits.npy:a", "-t", "t.npy"], 3, ["--logits logits.npy:a", "holds one array"]),
    _c("unknown-extension", [*CE, "x.dat", "-t", "t.npy"], 3, ["--logits x.dat", "unknown file type '.dat'"], files=text("x.dat", LOGITS_CSV)),
    _c("no-extension", [*CE, "data", "-t", "t.npy"], 3, ["--logits data", "unknown file type '(none)'"], files=text("data", LOGITS_CSV)),
    _c("npz-several-arrays-no-key", [*CE, "logits.npy", "-t", "two.npz"], 3, ["--target two.npz", "2 arrays", "a, b", "FILE.npz:KEY"],
       files=npz("two.npz", a=TARGET, b=TARGET)),
    _c("npz-empty-archive", [*CE, "logits.npy", "-t", "none.npz"], 3, ["--target none.npz", "0 arrays"], files=npz("none.npz")),
    _c("npz-missing-key", [*CE, "logits.npy", "-t", "one.npz:labels"], 3, ["--target one.npz:labels", "no array 'labels'", "it has: y"],
       files=npz("one.npz", y=TARGET)),
    _c("npz-not-a-zip", [*CE, "logits.npy", "-t", "p.npz"], 3, ["--target p.npz", "not a valid .npz", "pickle"],
       files=raw_pickle("p.npz"), marker=True),
    _c("npz-truncated", [*CE, "logits.npy", "-t", "cut.npz"], 3, ["--target cut.npz", "not a valid .npz"], files=npz_truncated),
    _c("npz-bad-crc", [*CE, "crc.npz", "-t", "t.npy"], 3, ["--logits crc.npz", "not a valid .npz", "CRC"], files=npz_bad_crc),
    _c("npz-member-not-npy", [*CE, "odd.npz", "-t", "t.npy"], 3, ["--logits odd.npz", "not .npy data"], files=npz_text_member),
    _c("json-missing-key", [*CE, "logits.npy", "-t", "k.json:labels"], 3, ["--target k.json:labels", "no key 'labels'", "it has: y"],
       files=text("k.json", '{"y": [0, 2]}')),
    _c("yaml-missing-key", [*CE, "logits.npy", "-t", "k.yaml:labels"], 3, ["--target k.yaml:labels", "no key 'labels'", "it has: y"],
       files=text("k.yaml", "y: [0, 2]\n")),
    _c("json-key-on-a-list", [*CE, "logits.npy", "-t", "l.json:y"], 3, ["--target l.json:y", "needs a mapping"], files=text("l.json", "[0, 2]")),
    _c("json-mapping-without-key", [*CE, "logits.npy", "-t", "k.json"], 3, ["--target k.json", "a mapping, not an array", "keys: y"],
       files=text("k.json", '{"y": [0, 2]}')),
    _c("json-syntax-error", [*CE, "bad.json", "-t", "t.npy"], 3, ["--logits bad.json", "invalid JSON", "line 2"],
       files=text("bad.json", "[[1, 2, 3],\n [4, 5 6]]")),
    _c("json-empty", [*CE, "e.json", "-t", "t.npy"], 3, ["--logits e.json", "empty"], files=text("e.json", "")),
    _c("yaml-empty", [*CE, "e.yaml", "-t", "t.npy"], 3, ["--logits e.yaml", "empty"], files=text("e.yaml", "# nothing\n")),
    _c("yaml-syntax-error", [*CE, "bad.yaml", "-t", "t.npy"], 3, ["--logits bad.yaml", "invalid YAML", "line"],
       files=text("bad.yaml", "a: [1, 2\nb: ]\n")),
    _c("json-nested-100000-deep", [*CE, "deep.json", "-t", "t.npy"], 3, ["--logits deep.json", "nested too deeply"],
       files=text("deep.json", "[" * 100_000 + "]" * 100_000)),
    _c("json-5000-digit-integer", [*CE, "big.json", "-t", "t.npy"], 3, ["--logits big.json", "invalid JSON", "digits"],
       files=text("big.json", "[[" + "9" * 5000 + ", 1, 2]]")),
    _c("json-null", [*CE, "n.json", "-t", "t.npy"], 3, ["--logits n.json", "null", "index [0, 1]"],
       files=text("n.json", "[[10, null, -10], [8, 8, 8]]")),
    _c("json-ragged", [*CE, "r.json", "-t", "t.npy"], 3, ["--logits r.json", "rows of different lengths", "row [1]"],
       files=text("r.json", "[[10, 0, -10], [8, 8]]")),
    _c("json-text-values", [*CE, "s.json", "-t", "t.npy"], 3, ["--logits s.json", "expected numbers", "'ten'", "index [0, 0]"],
       files=text("s.json", '[["ten", 0, -10], [8, 8, 8]]')),
    _c("yaml-dates", [*CE, "logits.npy", "-t", "d.yaml"], 3, ["--target d.yaml", "expected numbers", "index [0]"],
       files=text("d.yaml", "[2024-01-01, 2024-01-02]\n")),
    _c("latin1-csv", [*CE, "l.csv", "-t", "t.npy"], 3, ["--logits l.csv", "not UTF-8", "byte"], files=text("l.csv", "caf\xe9\n1,2,3\n".encode("latin-1"))),
    _c("binary-garbage-csv", [*CE, "g.csv", "-t", "t.npy"], 3, ["--logits g.csv"], files=text("g.csv", bytes(range(256)) * 4)),
    # ---- CSV / TSV / whitespace text
    _c("csv-ragged-rows", [*CE, "r.csv", "-t", "t.npy"], 3, ["--logits r.csv", "ragged rows", "line 2", "2 columns"],
       files=text("r.csv", "10,0,-10\n8,8\n")),
    _c("csv-non-numeric-cell", [*CE, "n.csv", "-t", "t.npy"], 3, ["--logits n.csv", "non-numeric cell 'abc'", "line 3, column 2"],
       files=text("n.csv", "10,0,-10\n\n8,abc,8\n")),
    _c("csv-non-numeric-after-header", [*CE, "n.csv", "-t", "t.npy"], 3, ["--logits n.csv", "'x'", "line 3, column 3"],
       files=text("n.csv", "a,b,c\n10,0,-10\n8,8,x\n")),
    _c("csv-empty-cell", [*CE, "e.csv", "-t", "t.npy"], 3, ["--logits e.csv", "empty cell", "line 1, column 2"],
       files=text("e.csv", "10,,-10\n8,8,8\n")),
    _c("csv-header-only", [*CE, "h.csv", "-t", "t.npy"], 3, ["--logits h.csv", "header row", "no data"], files=text("h.csv", "a,b,c\n")),
    _c("csv-empty", [*CE, "e.csv", "-t", "t.npy"], 3, ["--logits e.csv", "empty"], files=text("e.csv", "")),
    _c("csv-blank-lines-only", [*CE, "e.csv", "-t", "t.npy"], 3, ["--logits e.csv", "empty"], files=text("e.csv", "\n  \n\r\n")),
    _c("csv-header-width-mismatch", [*CE, "w.csv", "-t", "t.npy"], 3, ["--logits w.csv", "header (line 1) names 2 columns", "have 3"],
       files=text("w.csv", "a,b\n10,0,-10\n8,8,8\n")),
    _c("csv-missing-column", [*CE, "logits.npy", "-t", "y.csv:label"], 3, ["--target y.csv:label", "no column 'label'", "columns: y"],
       files=text("y.csv", "y\n0\n2\n")),
    _c("csv-column-out-of-range", [*CE, "logits.npy", "-t", "y.csv:5"], 3, ["--target y.csv:5", "column 5 is out of range"],
       files=text("y.csv", "0,1\n2,1\n")),
    _c("csv-comma-and-semicolon-in-a-line", [*CE, "m.csv", "-t", "t.npy"], 3, ["--logits m.csv", "line 2 mixes ',' and ';'"],
       files=text("m.csv", "10;0;-10\n8,5;8;8\n")),
    _c("tsv-ragged-rows", [*CE, "r.tsv", "-t", "t.npy"], 3, ["--logits r.tsv", "ragged rows", "line 3"],
       files=text("r.tsv", "10\t0\t-10\n\n8\t8\n")),
    _c("txt-commas", [*CE, "c.txt", "-t", "t.npy"], 3, ["--logits c.txt", "non-numeric cell", "line 1, column 1", "name it .csv"],
       files=text("c.txt", LOGITS_CSV)),
    # ... and the ones that must work
    _c("csv-blank-and-whitespace-lines", [*CE, "b.csv", "-t", "t.npy"], 0, stdout=BASE_LOSS,
       files=text("b.csv", "\n10,0,-10\n   \n\n8,8,8\n\n")),
    _c("csv-mixed-comma-and-tab", [*CE, "m.csv", "-t", "t.npy"], 0, stdout=BASE_LOSS, files=text("m.csv", "10,0,-10\n8\t8\t8\n")),
    _c("csv-semicolons", [*CE, "s.csv", "-t", "t.npy"], 0, stdout=BASE_LOSS, files=text("s.csv", "10;0;-10\n8;8;8\n")),
    _c("csv-semicolon-and-comma-lines", [*CE, "s.csv", "-t", "t.npy"], 0, stdout=BASE_LOSS, files=text("s.csv", "10;0;-10\n8,8,8\n")),
    _c("csv-tabs-in-a-.csv", [*CE, "t.csv", "-t", "t.npy"], 0, stdout=BASE_LOSS, files=text("t.csv", "10\t0\t-10\n8\t8\t8\n")),
    _c("tsv-commas-in-a-.tsv", [*CE, "c.tsv", "-t", "t.npy"], 0, stdout=BASE_LOSS, files=text("c.tsv", LOGITS_CSV)),
    _c("csv-spaces-around-cells", [*CE, "s.csv", "-t", "t.npy"], 0, stdout=BASE_LOSS, files=text("s.csv", " 10 , 0 ,\t-10\n8, 8, 8\n")),
    _c("csv-utf8-bom", [*CE, "b.csv", "-t", "t.npy"], 0, stdout=BASE_LOSS, files=text("b.csv", b"\xef\xbb\xbf" + LOGITS_CSV.encode())),
    _c("csv-crlf", [*CE, "w.csv", "-t", "t.npy"], 0, stdout=BASE_LOSS, files=text("w.csv", LOGITS_CSV.replace("\n", "\r\n"))),
    _c("csv-bom-crlf-header-blank-lines", [*CE, "x.csv", "-t", "y.csv:label"], 0, stdout=BASE_LOSS,
       files=several(text("x.csv", b"\xef\xbb\xbfa,b,c\r\n10,0,-10\r\n\r\n8,8,8\r\n\r\n"), text("y.csv", "id,label\r\n0,0\r\n1,2\r\n"))),
    _c("csv-utf16-bom", [*CE, "u.csv", "-t", "t.npy"], 0, stdout=BASE_LOSS, files=text("u.csv", LOGITS_CSV.encode("utf-16"))),
    _c("csv-quoted-numbers", [*CE, "q.csv", "-t", "t.npy"], 0, stdout=BASE_LOSS, files=text("q.csv", '"10","0","-10"\n"8","8","8"\n')),
    _c("csv-old-mac-line-endings", [*CE, "r.csv", "-t", "t.npy"], 0, stdout=BASE_LOSS, files=text("r.csv", LOGITS_CSV.replace("\n", "\r"))),
    # ---- shapes
    _c("target-shape-mismatch", [*CE, "logits.npy", "-t", "[0,1,2]"], 3, ["--target [0,1,2]", "shape (3,) fits neither", "(2,)"]),
    _c("target-as-a-column", [*CE, "logits.npy", "-t", "[[0],[2]]"], 3, ["--target [[0],[2]]", "a column of labels"]),
    _c("wrong-class-dim", [*CE, "logits.npy", "-t", "t.npy", "--dim", "0"], 3, ["--target t.npy", "fits neither", "classes on dim 0"]),
    _c("bce-target-shape-mismatch", ["bce", "--probs", "[0.5,0.5]", "-t", "[1,0,1]"], 3, ["--target [1,0,1]", "does not match", "(2,)"]),
    _c("zero-classes", [*CE, "[[],[]]", "-t", "[0,0]"], 3, ["--logits [[],[]]", "0 classes"]),
    _c("zero-rows-warns", [*CE, "z.npy", "-t", "zt.npy"], 0, ["--logits z.npy", "no samples"], stdout=math.nan,
       files=several(npy("z.npy", np.zeros((0, 3))), npy("zt.npy", np.zeros(0, dtype=np.int64)))),
    _c("scalar-prediction", [*CE, "0.5", "-t", "0"], 3, ["--logits 0.5", "class dimension"]),
    _c("weight-wrong-length", [*CE, "logits.npy", "-t", "t.npy", "--weight", "[1,2]"], 3, ["--weight [1,2]", "one weight per class", "(3,)"]),
    _c("dim-out-of-range", [*CE, "logits.npy", "-t", "t.npy", "--dim", "5"], 2, ["--dim 5", "out of range"]),
    # ---- values
    _c("class-index-too-large", [*CE, "logits.npy", "-t", "[0,7]"], 3, ["--target [0,7]", "class index 7 is out of range for 3 classes (row 1)"]),
    _c("class-index-too-large-in-file", [*CE, "logits.npy", "-t", "y.csv"], 3, ["--target y.csv", "class index 3 is out of range", "row 1"],
       files=text("y.csv", "0\n3\n")),
    _c("class-index-1e25", [*CE, "logits.npy", "-t", "[1e25,0]"], 3, ["--target [1e25,0]", "out of range", "row 0"]),
    _c("negative-class-index", [*CE, "logits.npy", "-t", "[0,-1]"], 3, ["--target [0,-1]", "negative class index -1", "row 1"]),
    _c("negative-index-other-than-ignore-index", [*CE, "logits.npy", "-t", "[0,-100]", "--ignore-index", "-1"], 3,
       ["--target [0,-100]", "negative class index -100"]),
    _c("non-integer-class-index", [*CE, "logits.npy", "-t", "[0,1.5]"], 3, ["--target [0,1.5]", "must be integers", "1.5", "row 1"]),
    _c("nan-class-index", [*CE, "logits.npy", "-t", "[0,nan]"], 3, ["--target [0,nan]", "must be integers", "nan"]),
    _c("bce-probs-above-1", ["bce", "--probs", "[0.5,1.5]", "-t", "[0,1]"], 3, ["--probs [0.5,1.5]", "between 0 and 1", "1.5", "[1]"]),
    _c("bce-probs-negative", ["bce", "--probs", "[-0.1,0.5]", "-t", "[0,1]"], 3, ["--probs [-0.1,0.5]", "between 0 and 1", "-0.1"]),
    _c("bce-target-above-1", ["bce", "--probs", "[0.5,0.5]", "-t", "[0,2]"], 3, ["--target [0,2]", "between 0 and 1"]),
    _c("target-probabilities-not-summing-to-1", [*CE, "logits.npy", "-t", "[[0.5,0.2,0.1],[0,0,1]]"], 0,
       ["--target", "do not sum to 1", "1 of 2 rows", "row 0 sums to 0.8", "PyTorch accepts"], stdout=2.5493243047181657),
    _c("target-probabilities-negative", [*CE, "logits.npy", "-t", "[[1.5,-0.5,0],[0,0,1]]"], 0,
       ["--target", "negative class probability -0.5"], stdout=-1.9506711551858065),
    _c("target-probabilities-strict", [*CE, "logits.npy", "-t", "[[0.5,0.2,0.1],[0,0,1]]", "--strict"], 3,
       ["--target", "do not sum to 1", "--strict"]),
    _c("nan-in-prediction-warns", [*CE, "[[10,nan,-10],[8,8,8]]", "-t", "[0,2]"], 0,
       ["--logits [[10,nan,-10],[8,8,8]]", "1 NaN value", "index [0, 1]"], stdout=math.nan),
    _c("nan-string-in-json-file-warns", [*CE, "n.json", "-t", "t.npy"], 0, ["--logits n.json", "1 NaN value", "index [0, 1]"],
       stdout=math.nan, files=text("n.json", '[[10, "nan", -10], [8, 8, 8]]')),
    _c("inf-in-prediction-warns", [*CE, "[[inf,0,-10],[8,8,8]]", "-t", "[0,2]"], 0, ["--logits", "1 infinite value", "index [0, 0]"],
       stdout=math.nan),
    _c("inf-in-prediction-csv-warns", [*CE, "i.csv", "-t", "t.npy"], 0, ["--logits i.csv", "2 infinite values"], stdout=math.nan,
       files=text("i.csv", "10,0,-inf\n8,8,1e999\n")),
    _c("nan-in-prediction-strict", [*CE, "[[10,nan,-10],[8,8,8]]", "-t", "[0,2]", "--strict"], 3,
       ["--logits [[10,nan,-10],[8,8,8]]", "1 NaN value", "refused by --strict"]),
    _c("nan-in-target-probabilities-warns", [*CE, "logits.npy", "-t", "[[nan,0,1],[0,0,1]]"], 0, ["--target", "1 NaN value"], stdout=math.nan),
    _c("nan-in-target-strict", [*CE, "logits.npy", "-t", "[[nan,0,1],[0,0,1]]", "--strict"], 3, ["--target", "NaN", "--strict"]),
    _c("nan-in-weight-warns", [*CE, "logits.npy", "-t", "t.npy", "--weight", "[1,nan,1]"], 0, ["--weight [1,nan,1]", "1 NaN value"],
       stdout=BASE_LOSS),
    _c("log-probs-minus-inf-is-log-0-no-warning", ["nll", "--log-probs", "[[-inf,0],[-0.5,-0.9]]", "-t", "[1,0]"], 0, stdout=0.25),
    _c("log-probs-plus-inf-warns", ["nll", "--log-probs", "[[-inf,inf],[-0.5,-0.9]]", "-t", "[1,0]"], 0,
       ["--log-probs", "1 infinite value", "index [0, 1]"], stdout=-math.inf),
    _c("bce-nan-probs-refused-as-torch", ["bce", "--probs", "[nan,0.5]", "-t", "[0,1]"], 3, ["--probs [nan,0.5]", "between 0 and 1", "nan"]),
    _c("complex-npy", [*CE, "c.npy", "-t", "t.npy"], 3, ["--logits c.npy", "complex"], files=npy("c.npy", np.array(LOGITS) + 1j)),
    _c("string-npy", [*CE, "s.npy", "-t", "t.npy"], 3, ["--logits s.npy", "holds text", "not numbers"],
       files=npy("s.npy", np.array([["a", "b", "c"], ["d", "e", "f"]]))),
    _c("bytes-npy", [*CE, "s.npy", "-t", "t.npy"], 3, ["--logits s.npy", "holds bytes"], files=npy("s.npy", np.array([[b"a", b"b", b"c"]] * 2))),
    _c("datetime-npy", [*CE, "logits.npy", "-t", "d.npy"], 3, ["--target d.npy", "holds dates"],
       files=npy("d.npy", np.array(["2020-01-01", "2020-01-02"], dtype="datetime64[D]"))),
    _c("structured-npy", [*CE, "r.npy", "-t", "t.npy"], 3, ["--logits r.npy", "holds records"],
       files=npy("r.npy", np.zeros(2, dtype=[("a", "f8"), ("b", "f8")]))),
    _c("string-literal", [*CE, "logits.npy", "-t", "[cat,dog]"], 3, ["--target [cat,dog]", "expected numbers", "'cat'"]),
    # ---- security
    _c("npy-pickled-object-array", [*CE, "evil.npy", "-t", "t.npy"], 3, ["--logits evil.npy", "Python objects", "never unpickled"],
       files=evil_npy, marker=True),
    _c("npz-pickled-object-array", [*CE, "evil.npz", "-t", "t.npy"], 3, ["--logits evil.npz", "Python objects", "never unpickled"],
       files=evil_npz, marker=True),
    _c("npy-raw-pickle", [*CE, "p.npy", "-t", "t.npy"], 3, ["--logits p.npy", "pickle", "never unpickled"], files=raw_pickle("p.npy"), marker=True),
    _c("yaml-python-os-system", [*CE, "evil.yaml", "-t", "t.npy"], 3,
       ["--logits evil.yaml", "unsupported YAML tag !!python/object/apply:os.system", "nothing was executed"],
       files=text("evil.yaml", YAML_OS_SYSTEM), marker=True),
    _c("yaml-python-open", [*CE, "evil.yml", "-t", "t.npy"], 3, ["--logits evil.yml", "!!python/object/apply:builtins.open"],
       files=text("evil.yml", YAML_OPEN), marker=True),
    _c("yaml-python-object-new", [*CE, "evil.yaml", "-t", "t.npy"], 3, ["--logits evil.yaml", "!!python/object/new"],
       files=text("evil.yaml", YAML_NEW)),
    _c("yaml-python-tag-inline", [*CE, "logits.npy", "-t", f'!!python/object/apply:os.system ["touch {MARKER}"]'], 3,
       ["--target", "unsupported YAML tag"], marker=True),
    _c("yaml-python-tag-stdin", [*CE, "-", "-t", "t.npy", "--stdin-format", "yaml"], 3, ["--logits -", "unsupported YAML tag"],
       stdin=YAML_OS_SYSTEM.encode(), marker=True),
    _c("yaml-billion-laughs", [*CE, "bomb.yaml:i", "-t", "t.npy"], 3, ["--logits bomb.yaml:i", "expands to more than", "billion laughs"],
       files=text("bomb.yaml", billion_laughs())),
    _c("yaml-billion-laughs-stdin", [*CE, "-", "-t", "t.npy"], 3, ["--logits -", "expands to more than"],
       stdin=billion_laughs(root_key=False).encode()),
    _c("yaml-self-reference", [*CE, "loop.yaml:a", "-t", "t.npy"], 3, ["--logits loop.yaml:a", "self-referencing"],
       files=text("loop.yaml", "a: &a [1, *a]\n")),
    _c("literal-over-64-MiB", [*CE, "[" + "1," * (33 * 2**20) + "1]", "-t", "t.npy"], 3, ["--logits [1,1,1", "too long", "put the data in a file"]),
    _c("literal-invalid", [*CE, "[[10,0,-10],[8,8,8]", "-t", "t.npy"], 3, ["--logits [[10,0,-10],[8,8,8]", "not a valid inline literal"]),
    _c("literal-multiline-origin-one-line", [*CE, "[[10,0,-10],\n[8,8,8]", "-t", "t.npy"], 3, ["--logits [[10,0,-10], [8,8,8]"]),
    _c("stdin-empty", [*CE, "-", "-t", "t.npy"], 3, ["--logits -", "standard input is empty"], stdin=b""),
    _c("stdin-binary-garbage", [*CE, "-", "-t", "t.npy"], 3, ["--logits -", "binary data"], stdin=b"\x00" * 100_000),
    _c("stdin-over-the-cap", [*CE, "-", "-t", "t.npy"], 3, ["--logits -", "more than"], stdin=b"1,2,3\n" * 400_000),
    _c("stdin-twice", [*CE, "-", "-t", "-"], 2, ["--target", "standard input is already read by --logits"], stdin=LOGITS_CSV.encode()),
    _c("stdin-unknown-format", [*CE, "-", "-t", "t.npy", "--stdin-format", "xls"], 2, ["--stdin-format", "'xls'"], stdin=LOGITS_CSV.encode()),
    _c("stdin-csv-works", [*CE, "-", "-t", "t.npy"], 0, stdout=BASE_LOSS, stdin=LOGITS_CSV.encode()),
    _c("stdin-npy-works", [*CE, "-", "-t", "t.npy"], 0, stdout=BASE_LOSS, stdin=npy_bytes(LOGITS)),
    # ---- usage
    _c("unknown-loss", ["cee", "--logits", "logits.npy", "-t", "t.npy"], 2, ["unknown loss 'cee'", "did you mean 'ce'"]),
    _c("unknown-option", [*CE, "logits.npy", "-t", "t.npy", "--bogus"], 2, ["No such option: --bogus"]),
    _c("misspelt-option", [*CE, "logits.npy", "-t", "t.npy", "--wieght", "[1,1,1]"], 2, ["--wieght", "did you mean --weight"]),
    _c("two-prediction-kinds", [*CE, "logits.npy", "--probs", "logits.npy", "-t", "t.npy"], 2, ["--logits and --probs", "exactly one"]),
    _c("prediction-kind-not-taken", ["bce-logits", "--probs", "[0.5]", "-t", "[1]"], 2, ["--probs"]),
    _c("missing-prediction", ["ce", "-t", "t.npy"], 2, ["missing prediction"]),
    _c("missing-target", [*CE, "logits.npy"], 2, ["missing --target"]),
    _c("parameter-the-loss-does-not-take", [*CE, "logits.npy", "-t", "t.npy", "--margin", "1"], 2,
       ["No such option: --margin", "parameter of", "ce takes: --weight"]),
    _c("reduction-batchmean-on-ce", [*CE, "logits.npy", "-t", "t.npy", "--reduction", "batchmean"], 2, ["--reduction", "'batchmean'", "mean, sum, none"]),
    _c("bad-dtype", [*CE, "logits.npy", "-t", "t.npy", "--dtype", "float16"], 2, ["--dtype", "'float16'"]),
    _c("bad-format", [*CE, "logits.npy", "-t", "t.npy", "--format", "xml"], 2, ["--format", "'xml'"]),
    _c("bad-rows", [*CE, "logits.npy", "-t", "t.npy", "--rows", "-1"], 2, ["--rows"]),
    _c("output-exists", [*CE, "logits.npy", "-t", "t.npy", "-o", "out.npy"], 2, ["--output out.npy", "exists", "--force"],
       files=npy("out.npy", [1.0])),
    _c("output-exists-force", [*CE, "logits.npy", "-t", "t.npy", "-o", "out.npy", "--force"], 0, stdout=BASE_LOSS,
       files=npy("out.npy", [1.0]), creates=("out.npy",)),
    _c("output-onto-input", [*CE, "logits.npy", "-t", "t.npy", "-o", "logits.npy"], 2, ["--output logits.npy", "one of the inputs"]),
    _c("output-onto-input-force", [*CE, "logits.npy", "-t", "t.npy", "-o", "t.npy", "--force"], 2, ["--output t.npy", "one of the inputs", "not even with --force"]),
    _c("output-onto-input-other-spelling", [*CE, "logits.npy", "-t", "t.npy", "-o", "./sub/../t.npy", "--force"], 2, ["one of the inputs"],
       files=mkdir("sub")),
    _c("output-onto-input-symlink", [*CE, "logits.npy", "-t", "t.npy", "-o", "alias.npy", "--force"], 2, ["--output alias.npy", "one of the inputs"],
       files=symlink("alias.npy", "t.npy")),
    _c("output-onto-input-hardlink", [*CE, "logits.npy", "-t", "t.npy", "-o", "hard.npy", "--force"], 2, ["--output hard.npy", "one of the inputs"],
       files=hardlink("hard.npy", "t.npy")),
    _c("output-onto-expected-values", [*CE, "logits.npy", "-t", "t.npy", "--per-sample", "-o", "exp.npy", "--force",
                                       "--expect-per-sample", "exp.npy"], 2, ["--output exp.npy", "one of the inputs"],
       files=npy("exp.npy", [1.0, 2.0])),
    _c("output-directory", [*CE, "logits.npy", "-t", "t.npy", "-o", "out.npy", "--force"], 2, ["--output out.npy", "is a directory"],
       files=mkdir("out.npy")),
    _c("output-unknown-type", [*CE, "logits.npy", "-t", "t.npy", "-o", "out.xlsx"], 2, ["--output out.xlsx", "unknown file type"]),
    _c("output-missing-directory", [*CE, "logits.npy", "-t", "t.npy", "-o", "no/out.npy"], 2, ["--output no/out.npy", "does not exist"]),
    _c("dim-on-a-loss-without-classes", ["bce", "--probs", "[0.5]", "-t", "[1]", "--dim", "0"], 2, ["--dim"]),
]

assert len({c.id for c in CASES}) == len(CASES), "duplicate case ids"


def _check_streams(case: Case, code: int, out: str, err: str) -> None:
    assert "Traceback" not in err and "Traceback" not in out, err
    lines = err.splitlines()
    assert all(ln.startswith(("error: ", "warning: ", "wrote ")) for ln in lines), err
    if case.code in (2, 3):
        errors = [ln for ln in lines if ln.startswith("error: ")]
        assert len(errors) == 1, err
        assert out == "", f"stdout must carry results only, got {out!r}"
        for part in case.stderr:
            assert part in errors[0], f"{part!r} not in {errors[0]!r}"
    else:
        assert not [ln for ln in lines if ln.startswith("error: ")], err
        if not case.stderr:  # an -o call confirms what it wrote, nothing else
            assert [ln for ln in lines if not ln.startswith("wrote ")] == [], f"no warning expected, got {err!r}"
        warnings = "\n".join(lines)
        for part in case.stderr:
            assert part in warnings, f"{part!r} not in {warnings!r}"
        values = [float(v) for v in out.split()]  # results only: every token a number
        if case.stdout is not None:
            assert len(values) == 1
            assert (math.isnan(values[0]) and math.isnan(case.stdout)) or values[0] == case.stdout \
                or math.isclose(values[0], case.stdout, rel_tol=1e-12), values


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_input(case: Case, run_cli, tmp_path, monkeypatch, file_hashes):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LOSSCTL_MAX_INPUT_BYTES", str(2_000_000))  # small, so the caps are exercised cheaply
    base_files(tmp_path)
    if case.files is not None:
        case.files(tmp_path)
    before = file_hashes(tmp_path)
    r = run_cli(list(case.argv), stdin=case.stdin)
    assert r.code == case.code, r.stderr
    _check_streams(case, r.code, r.stdout, r.stderr)
    after = file_hashes(tmp_path)
    for name in case.creates:
        before.pop(name, None)
        after.pop(name, None)
    assert after == before, "an input file changed, or a file was created or deleted"
    if case.marker:
        assert not (tmp_path / MARKER).exists(), "the payload ran"


def test_catalogue_size():
    assert len(CASES) >= 40


# --------------------------------------------------------------------------- controls and special cases


def test_payloads_are_live(tmp_path, monkeypatch):
    """Control: the security payloads really would create the marker if unpickled / executed unsafely,
    so the cases above prove that lossctl never does."""
    import yaml

    monkeypatch.chdir(tmp_path)
    evil_npy(tmp_path)
    np.load(tmp_path / "evil.npy", allow_pickle=True)
    assert (tmp_path / MARKER).exists()
    (tmp_path / MARKER).unlink()
    evil_npz(tmp_path)
    with np.load(tmp_path / "evil.npz", allow_pickle=True) as z:
        z["a"]
    assert (tmp_path / MARKER).exists()
    (tmp_path / MARKER).unlink()
    yaml.unsafe_load(YAML_OPEN)
    assert (tmp_path / MARKER).exists()


def test_unreadable_file(run_cli, tmp_path, monkeypatch, file_hashes):
    """chmod 000. Root reads it anyway, so there the OS's EACCES is simulated at open()."""
    monkeypatch.chdir(tmp_path)
    base_files(tmp_path)
    secret = tmp_path / "secret.npy"
    np.save(secret, np.array(LOGITS))
    secret.chmod(0)
    try:
        if os.access(secret, os.R_OK):  # root (or CAP_DAC_OVERRIDE): permissions do not block reads
            real_open = os.open

            def denied(path, flags, *args, **kwargs):
                if Path(os.fsdecode(path)).name == "secret.npy":
                    raise PermissionError(13, "Permission denied", os.fsdecode(path))
                return real_open(path, flags, *args, **kwargs)

            monkeypatch.setattr(os, "open", denied)
        before = file_hashes(tmp_path)
        r = run_cli(["ce", "--logits", "secret.npy", "-t", "t.npy"])
        monkeypatch.setattr(os, "open", os.open)
        assert r.code == 3, r.stderr
        assert r.stderr.startswith("error: --logits secret.npy: permission denied"), r.stderr
        assert "Traceback" not in r.stderr
        assert file_hashes(tmp_path) == before
    finally:
        secret.chmod(0o644)


def test_billion_laughs_is_fast_and_small(run_cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    base_files(tmp_path)
    (tmp_path / "bomb.yaml").write_text(billion_laughs())
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        r = run_cli(["ce", "--logits", "bomb.yaml:i", "-t", "t.npy"])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert r.code == 3, r.stderr
    assert time.perf_counter() - t0 < 10
    assert peak < 50 * 2**20, f"peak {peak / 2**20:.0f} MiB"


def test_text_stream_without_buffer_as_stdin():
    """An API caller may hand a text stream (no .buffer) as stdin."""
    from lossctl.io.readers import read_array
    from lossctl.io.sources import Source

    arr = read_array(Source("stdin", "-"), "--x", stdin=io.StringIO("10,0,-10\n8,8,8\n"))
    assert arr.tolist() == LOGITS


def test_large_literal_within_the_limit_works(run_cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    n = 200_000
    logits = json.dumps([[0.0, 1.0, 2.0]] * n)
    target = json.dumps([2] * n)
    r = run_cli(["ce", "--logits", logits, "--target", target])
    assert r.code == 0, r.stderr
    assert math.isclose(float(r.stdout), -math.log(math.exp(2) / (1 + math.e + math.exp(2))), rel_tol=1e-12)


def test_csv_and_npy_read_identically(run_cli, tmp_path, monkeypatch):
    """The readers that must 'work' on odd CSVs agree with .npy to the last bit, including per-sample values."""
    monkeypatch.chdir(tmp_path)
    base_files(tmp_path)
    (tmp_path / "odd.csv").write_bytes(b"\xef\xbb\xbfa;b;c\r\n\r\n10;0;-10\r\n  \r\n8\t8\t8\r\n")
    a = run_cli(["ce", "--logits", "logits.npy", "-t", "t.npy", "--per-sample", "--json"])
    b = run_cli(["ce", "--logits", "odd.csv", "-t", "t.npy", "--per-sample", "--json"])
    assert a.code == b.code == 0, b.stderr
    assert json.loads(a.stdout) == json.loads(b.stdout)


# --------------------------------------------------------------------------- real processes


def _lossctl(args: list[str], cwd: Path, *, stdin=None, input: bytes | None = None, timeout: float = 60, env=None):
    environment = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    environment.update(env or {})
    return subprocess.run([sys.executable, "-m", "lossctl", *args], cwd=cwd, stdin=stdin, input=input,
                          capture_output=True, timeout=timeout, env=environment)


def _assert_clean_error(p: subprocess.CompletedProcess, code: int, *parts: str) -> None:
    err = p.stderr.decode()
    assert p.returncode == code, err
    assert "Traceback" not in err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    for part in parts:
        assert part in err, err
    assert p.stdout == b""


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifo_is_refused_without_blocking(tmp_path, file_hashes):
    base_files(tmp_path)
    os.mkfifo(tmp_path / "pipe.csv")  # nobody ever writes to it: opening it for reading would block
    before = file_hashes(tmp_path)
    p = _lossctl(["ce", "--logits", "pipe.csv", "-t", "t.npy"], tmp_path, timeout=60)
    _assert_clean_error(p, 3, "--logits pipe.csv", "FIFO")
    assert file_hashes(tmp_path) == before


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_dev_zero_path_and_stdin(tmp_path):
    base_files(tmp_path)
    p = _lossctl(["ce", "--logits", "/dev/zero", "-t", "t.npy"], tmp_path, timeout=60)
    _assert_clean_error(p, 3, "--logits /dev/zero", "character device")
    with open("/dev/zero", "rb") as zero:  # an endless stream of NUL bytes on stdin
        p = _lossctl(["ce", "--logits", "-", "-t", "t.npy"], tmp_path, stdin=zero, timeout=60)
    _assert_clean_error(p, 3, "--logits -", "binary data")
    with open("/dev/zero", "rb") as zero:  # ... even when told it is text: the size cap ends it
        p = _lossctl(["ce", "--logits", "-", "-t", "t.npy", "--stdin-format", "csv"], tmp_path, stdin=zero, timeout=60)
    _assert_clean_error(p, 3, "--logits -")


def test_endless_text_on_stdin_hits_the_cap(tmp_path):
    base_files(tmp_path)
    yes = subprocess.Popen([sys.executable, "-c", "import sys\nwhile True: sys.stdout.write('1,2,3\\n' * 1000)"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        p = _lossctl(["ce", "--logits", "-", "-t", "t.npy"], tmp_path, stdin=yes.stdout, timeout=120,
                     env={"LOSSCTL_MAX_INPUT_BYTES": str(32 * 2**20)})
    finally:
        yes.kill()
        yes.wait()
    _assert_clean_error(p, 3, "--logits -", "more than 32 MiB", "LOSSCTL_MAX_INPUT_BYTES")


def test_hundreds_of_mb_on_stdin_work(tmp_path):
    """A 200 MB .npy on stdin: read, computed, no hang."""
    rows = 2_500_000
    np.save(tmp_path / "t.npy", np.zeros(rows, dtype=np.int64))
    data = npy_bytes(np.zeros((rows, 10)))
    assert len(data) > 200e6
    p = _lossctl(["ce", "--logits", "-", "-t", "t.npy"], tmp_path, input=data, timeout=300)
    assert p.returncode == 0, p.stderr.decode()
    assert math.isclose(float(p.stdout), math.log(10), rel_tol=1e-12)
    assert p.stderr == b""


def test_terminal_on_stdin_is_refused(tmp_path):
    pty = pytest.importorskip("pty")
    base_files(tmp_path)
    master, slave = pty.openpty()
    try:
        p = _lossctl(["ce", "--logits", "-", "-t", "t.npy"], tmp_path, stdin=slave, timeout=60)
    finally:
        os.close(slave)
        os.close(master)
    _assert_clean_error(p, 3, "--logits -", "terminal")


def test_warnings_go_to_stderr_not_stdout(tmp_path):
    base_files(tmp_path)
    p = _lossctl(["ce", "--logits", "[[10,nan,-10],[8,8,8]]", "-t", "[0,2]", "--json"], tmp_path)
    assert p.returncode == 0
    doc = json.loads(p.stdout)  # stdout is exactly one JSON document
    assert doc["loss"] == "nan"
    assert p.stderr.decode().startswith("warning: --logits [[10,nan,-10],[8,8,8]]: 1 NaN value")
