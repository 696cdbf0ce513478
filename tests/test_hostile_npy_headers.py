"""Malformed ``.npy`` headers: every one is an input error (exit 3) naming the file, never a
traceback or an internal error, whether the file is read directly, from ``-`` or inside an ``.npz``."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest


def npy_bytes(header: bytes, version: int = 1, data: bytes = b"\0" * 64) -> bytes:
    pad = (64 - (10 + len(header) + 1) % 64) % 64 if version == 1 else (64 - (12 + len(header) + 1) % 64) % 64
    header = header + b" " * pad + b"\n"
    size = len(header).to_bytes(2 if version == 1 else 4, "little")
    return b"\x93NUMPY" + bytes([version, 0]) + size + header + data


HEADERS = {
    "unclosed-dict": b"{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), ",
    "unclosed-list": b"{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), 'x': [[[[}",
    "unclosed-string": b"{'descr': '<f8, 'fortran_order': False, 'shape': (2,), }",
    "unclosed-paren": b"{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3, }",
    "65-dimensions": b"{'descr': '<f8', 'fortran_order': False, 'shape': (" + b"1, " * 65 + b"), }",
    "200-dimensions": b"{'descr': '<f8', 'fortran_order': False, 'shape': (" + b"1, " * 200 + b"), }",
    "huge-dimension": b"{'descr': '<f8', 'fortran_order': False, 'shape': (" + b"9" * 5000 + b",), }",
    "not-a-dict": b"[1, 2, 3]",
    "call": b"{'descr': '<f8', 'fortran_order': False, 'shape': __import__('os').getpid()}",
    "nested-deep": b"{'descr': '<f8', 'fortran_order': False, 'shape': " + b"(" * 400 + b")" * 400 + b"}",
    "bad-descr": b"{'descr': '<q9', 'fortran_order': False, 'shape': (2,), }",
    "missing-key": b"{'descr': '<f8', 'shape': (2,), }",
    "negative": b"{'descr': '<f8', 'fortran_order': False, 'shape': (-2,), }",
    "bytes-junk": b"\xff\xfe{'descr'",
}


def _assert_input_error(r, name: str) -> None:
    assert r.code == 3, (r.code, r.stderr)
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr, r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and name in lines[0], r.stderr
    assert len(lines[0]) < 400, "the error line stays readable"


@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize("kind", list(HEADERS))
def test_a_malformed_header_file(run_cli, tmp_path, monkeypatch, kind, version):
    monkeypatch.chdir(tmp_path)
    p = tmp_path / "bad.npy"
    p.write_bytes(npy_bytes(HEADERS[kind], version))
    _assert_input_error(run_cli(["ce", "--logits", p.name, "--target", "[0, 1]"]), "bad.npy")


@pytest.mark.parametrize("kind", ["unclosed-dict", "65-dimensions", "huge-dimension", "call"])
def test_a_malformed_header_on_stdin(run_cli, kind):
    r = run_cli(["ce", "--logits", "-", "--stdin-format", "npy", "--target", "[0, 1]"], stdin=npy_bytes(HEADERS[kind]))
    assert r.code == 3, r.stderr
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr


@pytest.mark.parametrize("kind", ["unclosed-dict", "65-dimensions", "unclosed-list"])
def test_a_malformed_header_inside_an_npz(run_cli, tmp_path, monkeypatch, kind):
    monkeypatch.chdir(tmp_path)
    p = tmp_path / "bad.npz"
    with zipfile.ZipFile(p, "w") as zf:
        zf.writestr("logits.npy", npy_bytes(HEADERS[kind]))
    _assert_input_error(run_cli(["ce", "--logits", f"{p.name}:logits", "--target", "[0, 1]"]), "bad.npz")


@pytest.mark.parametrize("ndim", [33, 64])
def test_more_dimensions_than_numpy_iterates_are_refused(run_cli, tmp_path, monkeypatch, ndim):
    """numpy stores up to 64 dimensions but broadcasts and reduces at most 32."""
    monkeypatch.chdir(tmp_path)
    buf = io.BytesIO()
    np.save(buf, np.ones((1,) * ndim))
    (tmp_path / "x.npy").write_bytes(buf.getvalue())
    _assert_input_error(run_cli(["mse", "--pred", "x.npy", "--target", "x.npy"]), "x.npy")


def test_a_32_dimension_array_is_computed(run_cli, tmp_path, monkeypatch):
    buf = io.BytesIO()
    np.save(buf, np.ones((1,) * 32))
    monkeypatch.chdir(tmp_path)
    p = tmp_path / "ok.npy"
    p.write_bytes(buf.getvalue())
    r = run_cli(["mse", "--pred", p.name, "--target", p.name])
    assert r.code == 0, r.stderr
    assert float(r.stdout) == 0.0
