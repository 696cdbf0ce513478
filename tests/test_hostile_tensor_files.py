"""Hostile and broken tensor files (.safetensors, .pt, parquet/arrow, HDF5), each a CLI test.

The same checks as tests/test_hostile_inputs.py (whose runner this reuses): the
exit code, one ``error:`` line on stderr naming the file and the problem, no
traceback, every file byte-identical afterwards, and for the pickle payloads a
marker file that would exist had anything been executed.
"""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from test_hostile_inputs import BASE_LOSS, LOGITS, MARKER, Case, _c, _check_streams, base_files, several, text

CE = ("ce", "--logits")


# --------------------------------------------------------------------------- .safetensors builders


def st_bytes(header, data: bytes = b"", length: int | None = None) -> bytes:
    """A .safetensors file: the header (an object, or raw bytes), its length prefix (or a lie), the data."""
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    return (len(raw) if length is None else length).to_bytes(8, "little") + raw + data


def st_good(shape=(2, 3), dtype="F64", values=LOGITS) -> tuple[dict, bytes]:
    data = np.asarray(values, dtype=np.float64).tobytes()
    return {"logits": {"dtype": dtype, "shape": list(shape), "data_offsets": [0, len(data)]}}, data


def st(name: str, header=None, data: bytes | None = None, length: int | None = None, cut: int = 0) -> callable:
    def build(d: Path) -> None:
        h, good = st_good()
        content = st_bytes(h if header is None else header, good if data is None else data, length)
        (d / name).write_bytes(content[:len(content) - cut] if cut else content)
    return build


def entry(dtype="F64", shape=(2, 3), offsets=(0, 48)) -> dict:
    return {"dtype": dtype, "shape": list(shape), "data_offsets": list(offsets)}


GOOD_DATA = np.asarray(LOGITS, dtype=np.float64).tobytes()
ST = "x.safetensors"

SAFETENSORS_CASES: list[Case] = [
    _c("st-empty", [*CE, ST, "-t", "t.npy"], 3, [f"--logits {ST}", "empty"], files=text(ST, b"")),
    _c("st-shorter-than-length", [*CE, ST, "-t", "t.npy"], 3, [f"--logits {ST}", "8-byte header length"], files=text(ST, b"\x10\x00")),
    _c("st-length-2^63", [*CE, ST, "-t", "t.npy"], 3, [f"--logits {ST}", "header length", "truncated"], files=st(ST, length=1 << 63)),
    _c("st-length-one-too-many", [*CE, ST, "-t", "t.npy"], 3, [f"--logits {ST}", "header length"],
       files=lambda d: (d / ST).write_bytes(st_bytes({}, b"", length=3))),
    _c("st-truncated-in-data", [*CE, ST, "-t", "t.npy"], 3, [f"--logits {ST}", "outside the data section", "truncated"],
       files=st(ST, cut=5)),
    _c("st-truncated-in-header", [*CE, ST, "-t", "t.npy"], 3, [f"--logits {ST}", "header length"],
       files=lambda d: (d / ST).write_bytes(st_bytes(st_good()[0], b"")[:30])),
    _c("st-header-not-json", [*CE, ST, "-t", "t.npy"], 3, [f"--logits {ST}", "not valid JSON"], files=st(ST, header=b"{nope")),
    _c("st-header-not-utf8", [*CE, ST, "-t", "t.npy"], 3, [f"--logits {ST}", "not UTF-8"], files=st(ST, header=b'{"\xff": 1}')),
    _c("st-header-a-list", [*CE, ST, "-t", "t.npy"], 3, [f"--logits {ST}", "a JSON list, not an object"], files=st(ST, header=[1, 2])),
    _c("st-header-nested-deeply", [*CE, ST, "-t", "t.npy"], 3, [f"--logits {ST}"],
       files=st(ST, header=b"[" * 100_000 + b"]" * 100_000)),
    _c("st-duplicate-key", [*CE, ST, "-t", "t.npy"], 3, [f"--logits {ST}", "appears twice"],
       files=st(ST, header=b'{"a": {"dtype": "F64", "shape": [2, 3], "data_offsets": [0, 48]}, '
                           b'"a": {"dtype": "F64", "shape": [2, 3], "data_offsets": [0, 48]}}')),
    _c("st-entry-not-object", [*CE, ST, "-t", "t.npy"], 3, [f"--logits {ST}", "tensor 'logits'", "not an object"],
       files=st(ST, header={"logits": [1]})),
    _c("st-metadata-not-object", [*CE, ST, "-t", "t.npy"], 3, [f"--logits {ST}", "__metadata__"],
       files=st(ST, header={"__metadata__": 3, "logits": entry()})),
    _c("st-bad-dtype", [*CE, ST, "-t", "t.npy"], 3, [f"--logits {ST}", "unknown dtype 'F99'"], files=st(ST, header={"logits": entry("F99")})),
    _c("st-dtype-not-text", [*CE, ST, "-t", "t.npy"], 3, [f"--logits {ST}", "unknown dtype 7"], files=st(ST, header={"logits": entry(7)})),
    _c("st-negative-shape", [*CE, ST, "-t", "t.npy"], 3, [f"--logits {ST}", "non-negative integers"],
       files=st(ST, header={"logits": entry(shape=(-2, -3))})),
    _c("st-float-shape", [*CE, ST, "-t", "t.npy"], 3, [f"--logits {ST}", "non-negative integers"],
       files=st(ST, header={"logits": entry(shape=(2.0, 3))})),
    _c("st-shape-claims-1e24-values", [*CE, ST, "-t", "t.npy"], 3, [f"--logits {ST}", "needs", "bytes but its offsets span 48"],
       files=st(ST, header={"logits": entry(shape=(10**12, 10**12))})),
    _c("st-shape-disagrees-with-offsets", [*CE, ST, "-t", "t.npy"], 3, [f"--logits {ST}", "(3, 3)", "needs 72 bytes"],
       files=st(ST, header={"logits": entry(shape=(3, 3))})),
    _c("st-offsets-past-the-end", [*CE, ST, "-t", "t.npy"], 3, [f"--logits {ST}", "bytes 48-96", "outside"],
       files=st(ST, header={"logits": entry(offsets=(48, 96))})),
    _c("st-offsets-huge", [*CE, ST, "-t", "t.npy"], 3, [f"--logits {ST}", "outside"],
       files=st(ST, header={"logits": entry(offsets=(2**64 - 48, 2**64))})),
    _c("st-offsets-reversed", [*CE, ST, "-t", "t.npy"], 3, [f"--logits {ST}", "outside"],
       files=st(ST, header={"logits": entry(offsets=(48, 0))})),
    _c("st-offsets-negative", [*CE, ST, "-t", "t.npy"], 3, [f"--logits {ST}", "outside"],
       files=st(ST, header={"logits": entry(offsets=(-48, 0))})),
    _c("st-offsets-not-a-pair", [*CE, ST, "-t", "t.npy"], 3, [f"--logits {ST}", "data_offsets"],
       files=st(ST, header={"logits": {"dtype": "F64", "shape": [2, 3], "data_offsets": [0]}})),
    _c("st-overlapping-tensors", [*CE, f"{ST}:a", "-t", "t.npy"], 3,
       [f"--logits {ST}:a", "tensors 'a' and 'b' overlap"],
       files=st(ST, header={"a": entry(offsets=(0, 48)), "b": entry(shape=(3,), offsets=(24, 48))})),
    _c("st-several-no-key", [*CE, ST, "-t", "t.npy"], 3, [f"--logits {ST}", "2 tensors (a, b)", "FILE.safetensors:NAME"],
       files=st(ST, header={"a": entry(shape=(3,), offsets=(0, 24)), "b": entry(shape=(3,), offsets=(24, 48))})),
    _c("st-no-tensors", [*CE, ST, "-t", "t.npy"], 3, [f"--logits {ST}", "0 tensors"], files=st(ST, header={}, data=b"")),
    _c("st-missing-key", [*CE, f"{ST}:nope", "-t", "t.npy"], 3, [f"--logits {ST}:nope", "no tensor 'nope'", "it has: logits"],
       files=st(ST)),
    _c("st-is-a-pickle", [*CE, ST, "-t", "t.npy"], 3, [f"--logits {ST}"], marker=True,
       files=lambda d: __import__("test_hostile_inputs").raw_pickle(ST)(d)),
    # ... and the ones that must work
    _c("st-good", [*CE, ST, "-t", "t.npy"], 0, stdout=BASE_LOSS, files=st(ST)),
    _c("st-metadata-and-padding", [*CE, ST, "-t", "t.npy"], 0, stdout=BASE_LOSS,
       files=st(ST, header=json.dumps({"__metadata__": {"format": "pt"}, "logits": entry()}).encode() + b"   ")),
    _c("st-hole-before-the-tensor", [*CE, ST, "-t", "t.npy"], 0, stdout=BASE_LOSS,
       files=st(ST, header={"logits": entry(offsets=(8, 56))}, data=b"\x00" * 8 + GOOD_DATA)),
]


CASES = SAFETENSORS_CASES


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_tensor_file(case: Case, run_cli, tmp_path, monkeypatch, file_hashes):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LOSSCTL_MAX_INPUT_BYTES", str(2_000_000))
    base_files(tmp_path)
    if case.files is not None:
        case.files(tmp_path)
    before = file_hashes(tmp_path)
    tracemalloc.start()
    try:
        r = run_cli(list(case.argv), stdin=case.stdin)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert r.code == case.code, r.stderr
    _check_streams(case, r.code, r.stdout, r.stderr)
    assert peak < 50 << 20, f"{peak} bytes allocated: a claimed size was believed"
    assert file_hashes(tmp_path) == before, "an input file changed, or a file was created or deleted"
    if case.marker:
        assert not (tmp_path / MARKER).exists(), "the payload ran"
