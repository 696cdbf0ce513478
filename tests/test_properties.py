"""Issue 6: property tests (hypothesis).

* the readers round-trip any finite float64/float32 array, bit for bit, through
  every format: .npy, .npz, .csv, .tsv, .txt, .json, .yaml, an inline literal,
  and standard input with the format sniffed;
* the CLI never exits outside 0–3 and never prints a traceback, whatever bytes a
  file (of each extension), standard input or an inline literal holds;
* every registered loss agrees with PyTorch (tests/torch_reference.py) on random
  data, shapes and parameters (skipped without torch).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from lossctl.cli.app import main
from lossctl.io.readers import read_array
from lossctl.io.sources import Source, parse_source

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TESTS = Path(__file__).resolve().parent


# --------------------------------------------------------------------------- writers (as users' tools write)


def _cells(row) -> list[str]:
    return [repr(float(v)) for v in np.ravel(row)]


def _table(arr: np.ndarray, sep: str) -> str:
    rows = arr.reshape(-1, 1) if arr.ndim == 1 else arr
    return "".join(sep.join(_cells(r)) + "\n" for r in rows)


def _npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


def _npz_bytes(arr: np.ndarray, **more) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, x=arr, **more)
    return buf.getvalue()


def _as_list(arr: np.ndarray):
    return np.asarray(arr, dtype=np.float64).tolist()


WRITERS = {
    "npy": _npy_bytes,
    "npz": _npz_bytes,
    "csv": lambda a: _table(a, ",").encode(),
    "tsv": lambda a: _table(a, "\t").encode(),
    "txt": lambda a: _table(a, " ").encode(),
    "json": lambda a: json.dumps(_as_list(a)).encode(),
    "yaml": lambda a: yaml.safe_dump(_as_list(a)).encode(),
}
TEXT_TABLES = ("csv", "tsv", "txt")


def _finite(dtype):
    width = 64 if dtype == np.float64 else 32
    return st.floats(allow_nan=False, allow_infinity=False, width=width)


def arrays(dtype, table: bool):
    """Finite arrays; a table (CSV/TSV/TXT) is 1-D, or 2-D with at least two columns
    (a single column reads back as 1-D, by design)."""
    if table:
        shapes = st.one_of(hnp.array_shapes(min_dims=1, max_dims=1, min_side=1, max_side=6),
                           st.tuples(st.integers(1, 5), st.integers(2, 5)))
    else:
        shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4)
    return hnp.arrays(dtype, shapes, elements=_finite(dtype))


def _same(read: np.ndarray, arr: np.ndarray, exact_dtype: bool) -> None:
    assert read.shape == arr.shape
    if exact_dtype:
        assert read.dtype == arr.dtype
    expected = arr.astype(np.float64)
    got = np.asarray(read, dtype=np.float64)
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(np.signbit(got), np.signbit(expected))  # -0.0 stays -0.0


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("fmt", list(WRITERS))
@SETTINGS
@given(data=st.data())
def test_readers_round_trip_files(fmt, dtype, data):
    arr = data.draw(arrays(dtype, fmt in TEXT_TABLES))
    with tempfile.TemporaryDirectory() as d:
        path = Path(d, f"a.{fmt}")
        path.write_bytes(WRITERS[fmt](arr))
        read = read_array(parse_source(str(path)), "--x")
        _same(read, arr, exact_dtype=fmt in ("npy", "npz"))
        if fmt == "npz":  # with the key, and beside other arrays
            path.write_bytes(_npz_bytes(arr, other=np.zeros(2)))
            _same(read_array(parse_source(f"{path}:x"), "--x"), arr, exact_dtype=True)
        if fmt in ("json", "yaml"):  # under a top-level key
            doc = {"x": _as_list(arr), "y": 1}
            path.write_text(json.dumps(doc) if fmt == "json" else yaml.safe_dump(doc))
            _same(read_array(parse_source(f"{path}:x"), "--x"), arr, exact_dtype=False)
        if fmt in ("csv", "tsv") and arr.ndim == 2:  # a header row, and one column by name
            names = [f"c{i}" for i in range(arr.shape[1])]
            sep = "," if fmt == "csv" else "\t"
            path.write_text(sep.join(names) + "\n" + _table(arr, sep))
            _same(read_array(parse_source(str(path)), "--x"), arr, exact_dtype=False)
            _same(read_array(parse_source(f"{path}:c1"), "--x"), arr[:, 1], exact_dtype=False)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@SETTINGS
@given(data=st.data())
def test_readers_round_trip_inline_literals(dtype, data):
    arr = data.draw(arrays(dtype, table=False))
    text = json.dumps(_as_list(arr))
    source = parse_source(text)
    assert source.kind == "literal"
    _same(read_array(source, "--x"), arr, exact_dtype=False)
    flow = yaml.safe_dump(_as_list(arr), default_flow_style=True).strip()  # YAML flow syntax
    _same(read_array(Source("literal", flow), "--x"), arr, exact_dtype=False)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("fmt", list(WRITERS))
@SETTINGS
@given(data=st.data())
def test_readers_round_trip_stdin_sniffed(fmt, dtype, data):
    arr = data.draw(arrays(dtype, fmt in TEXT_TABLES))
    # A lone number is sniffed as whitespace-separated text: a 1-element array, not 0-d.
    assume(arr.ndim > 0 or fmt in ("npy", "npz"))
    read = read_array(Source("stdin", "-"), "--x", stdin=io.BytesIO(WRITERS[fmt](arr)))
    _same(read, arr, exact_dtype=fmt in ("npy", "npz"))


# --------------------------------------------------------------------------- garbage never crashes


def _run(argv: list[str], stdin: bytes | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    saved = sys.stdin
    if stdin is not None:
        sys.stdin = io.TextIOWrapper(io.BytesIO(stdin))
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv)
    finally:
        sys.stdin = saved
    return code, out.getvalue(), err.getvalue()


def _assert_contained(code: int, out: str, err: str) -> None:
    assert code in (0, 1, 2, 3), err
    assert "Traceback" not in err and "Traceback" not in out
    assert "internal error" not in err, err
    assert all(line.startswith(("error: ", "warning: ", "wrote ")) for line in err.splitlines()), err
    if code in (2, 3):
        assert out == ""


# Bytes that reach the parsers' interesting paths: magic numbers, brackets, separators, YAML syntax.
PREFIXES = [b"", b"\x93NUMPY\x01\x00", b"\x93NUMPY\x02\x00\x10\x00{'descr': '<f8', ", b"PK\x03\x04", b"PK\x05\x06",
            b"\xef\xbb\xbf", b"\xff\xfe", b"[", b"[[", b"{", b"- ", b"a: &a [1, *a]\n", b"!!python/object:os.system ",
            b"x,y\n", b"1,2,3\n", b"1\t2\n", b"1 2\n"]
GARBAGE_TEXT = st.text(alphabet=list("0123456789.,;\t\n\r -+eE[]{}:\"'&*!#nainfNaN\x00\u2212\ufeff"), max_size=300)
garbage = st.one_of(
    st.binary(max_size=2000),
    st.builds(lambda p, b: p + b, st.sampled_from(PREFIXES), st.binary(max_size=500)),
    st.builds(lambda p, t: p + t.encode("utf-8", "surrogatepass"), st.sampled_from(PREFIXES), GARBAGE_TEXT),
)


@pytest.mark.parametrize("ext", ["npy", "npz", "csv", "tsv", "txt", "json", "yaml", "yml"])
@SETTINGS
@given(content=garbage)
def test_cli_survives_garbage_files(ext, content):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d, f"g.{ext}")
        path.write_bytes(content)
        code, out, err = _run(["ce", "--logits", str(path), "-t", "[0]"])
        _assert_contained(code, out, err)
        assert path.read_bytes() == content
        code, out, err = _run(["bce", "--probs", "[0.5]", "-t", str(path)])
        _assert_contained(code, out, err)
        assert path.read_bytes() == content


@SETTINGS
@given(content=garbage, fmt=st.sampled_from([None, "npy", "npz", "csv", "tsv", "txt", "json", "yaml"]))
def test_cli_survives_garbage_on_stdin(content, fmt):
    argv = ["ce", "--logits", "-", "-t", "[0]"] + (["--stdin-format", fmt] if fmt else [])
    _assert_contained(*_run(argv, stdin=content))


@SETTINGS
@given(text=st.one_of(GARBAGE_TEXT, st.text(max_size=100)))
def test_cli_survives_garbage_literals(text):
    assume(text and not text.startswith("-") and "\x00" not in text)
    with tempfile.TemporaryDirectory() as d:
        cwd = os.getcwd()
        os.chdir(d)  # a literal that happens to be a file name names nothing here
        try:
            _assert_contained(*_run(["ce", "--logits", text, "-t", "[0]"]))
            _assert_contained(*_run(["mse", "--pred", "[0.5]", "-t", text]))
        finally:
            os.chdir(cwd)


# --------------------------------------------------------------------------- every loss against torch


def _oracle():
    import torch  # noqa: F401  (installed here and in CI: a missing one fails)
    import test_torch_fixtures as fx
    import torch_reference as ref

    return ref, ref.fixture_generator(), fx


def _registered() -> list[str]:
    """The registered losses PyTorch has (the others are checked against their home framework)."""
    import lossctl

    return sorted(s.name for s in lossctl.registry().specs if "torch" in s.convention_names)


@pytest.mark.parametrize("loss", _registered())
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(seed=st.integers(0, 2**32 - 1), point=st.integers(0, 10**6))
def test_every_loss_agrees_with_torch_on_random_cases(loss, seed, point):
    """Random data, a random point of the loss's grid of shapes × kinds × parameters × reductions."""
    import lossctl

    ref, gen, fx = _ORACLE()
    rng = np.random.default_rng(seed)
    _, make, grid = gen.case_table(loss, rng)
    kw = make(rng, grid[point % len(grid)])
    assume(kw is not None)
    case = {"loss": loss, **kw}
    fx.check_result(lossctl.compute(case, grad=True), ref.reference(case))


_cache: dict[str, tuple] = {}


def _ORACLE():
    if "oracle" not in _cache:
        _cache["oracle"] = _oracle()
    return _cache["oracle"]


@st.composite
def class_cases(draw):
    """ce / nll with any shape (N, C, d1, ..., dk), unbatched (C,), indices or probabilities."""
    loss = draw(st.sampled_from(["ce", "nll"]))
    n = draw(st.integers(1, 4))
    c = draw(st.integers(1, 5))
    extra = draw(st.lists(st.integers(1, 3), max_size=2))
    unbatched = draw(st.booleans()) and not extra
    shape = (c,) if unbatched else (n, c, *extra)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    scale = draw(st.sampled_from([0.1, 3.0, 30.0]))
    x = rng.normal(0, scale, size=shape)
    cdim = 0 if unbatched else 1
    case: dict = {"loss": loss, "reduction": draw(st.sampled_from(["mean", "sum", "none"]))}
    if loss == "ce":
        case["logits"] = x.tolist()
    else:
        case["log_probs"] = (x - np.log(np.sum(np.exp(x - x.max(axis=cdim, keepdims=True)), axis=cdim, keepdims=True))
                             - x.max(axis=cdim, keepdims=True)).tolist()
    probs_target = loss == "ce" and draw(st.booleans())
    if probs_target:
        t = rng.random(shape)
        case["target"] = (t / t.sum(axis=cdim, keepdims=True)).tolist()
    else:
        tshape = shape[:cdim] + shape[cdim + 1:]
        t = rng.integers(0, c, size=tshape)
        if draw(st.booleans()) and t.size > 1:
            ignore = draw(st.sampled_from([-100, -1, 0]))
            flat = t.reshape(-1)
            flat[0] = ignore
            case["ignore_index"] = ignore
        case["target"] = t.tolist() if tshape else int(t)
    if draw(st.booleans()):
        case["weight"] = rng.uniform(0.1, 2.0, size=c).tolist()
    if loss == "ce" and draw(st.booleans()):
        case["label_smoothing"] = draw(st.sampled_from([0.05, 0.3, 1.0]))
    return case


@SETTINGS
@given(case=class_cases())
def test_ce_and_nll_agree_with_torch_on_random_shapes(case):
    import lossctl

    ref, _, fx = _ORACLE()
    registered = set(lossctl.registry_names())
    assume(case["loss"] in registered)
    fx.check_result(lossctl.compute(case, grad=True), ref.reference(case))


@st.composite
def elementwise_cases(draw):
    """Regression losses on any shape (0-d to 4-d), with their parameters."""
    loss = draw(st.sampled_from(["mse", "l1", "smooth-l1", "huber"]))
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=4, min_side=1, max_side=4))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    scale = draw(st.sampled_from([0.01, 1.0, 100.0]))
    case: dict = {"loss": loss, "reduction": draw(st.sampled_from(["mean", "sum", "none"])),
                  "pred": (rng.normal(0, scale, size=shape)).tolist(), "target": (rng.normal(0, scale, size=shape)).tolist()}
    if loss == "smooth-l1":
        case["beta"] = draw(st.sampled_from([0.0, 0.5, 1.0, 3.0]))
    if loss == "huber":
        case["delta"] = draw(st.sampled_from([0.1, 1.0, 5.0]))
    return case


@SETTINGS
@given(case=elementwise_cases())
def test_regression_losses_agree_with_torch_on_random_shapes(case):
    import lossctl

    ref, _, fx = _ORACLE()
    assume(case["loss"] in set(lossctl.registry_names()))
    fx.check_result(lossctl.compute(case, grad=True), ref.reference(case))
