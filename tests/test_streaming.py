"""Streaming (blockwise, threaded) evaluation equals in-memory evaluation, for every loss.

Inputs come from the torch fixture cases (tests/fixtures/torch/<loss>.json): every
case whose prediction has a batch of at least 2 rows is tiled to many rows and
perturbed (so no two blocks are alike), then evaluated in memory and streamed
with tiny blocks (many blocks, an uneven last one, two threads). Values,
per-sample values and gradients must agree to 1e-12 relative (they are in fact
the same kernels on the same rows; only the sum over blocks is ordered
differently). No timing here: see benchmarks/run.py.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pytest

import lossctl
from lossctl.core import kernels
from lossctl.core import stream
from lossctl.core.registry import PREDICTION_KINDS

FIXTURE_DIR = Path(__file__).resolve().parent / "fixtures" / "torch"
RTOL = 1e-12
ROWS = 41  # tiled batch (a prime: blocks of 3-5 rows leave an uneven last block)
BLOCK_ROWS = 3
_NONFINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def _decode(v):
    if isinstance(v, list):
        return [_decode(e) for e in v]
    if isinstance(v, str):
        return _NONFINITE.get(v, v)
    return v


def _cases(name: str) -> list[dict]:
    path = FIXTURE_DIR / f"{name}.json"
    if not path.exists():
        return []
    return [{k: _decode(v) for k, v in c.items() if k not in ("name", "expect")} | {"_name": c["name"]}
            for c in json.loads(path.read_text())["cases"]]


def _streamable(spec, call: dict) -> stream.Layout | None:
    keys = set(PREDICTION_KINDS) | set(spec.inputs)
    arrays = {k: np.asarray(v) for k, v in call.items() if k in keys and v is not None}
    params = {p.name: call.get(p.name, p.default) for p in spec.params}
    try:
        return stream.plan(spec, arrays, params, dim=call.get("dim"), grad=True)
    except Exception:
        return None


def _tile(spec, call: dict, rng) -> dict:
    """The case with its batch repeated to ROWS rows and the differentiable inputs perturbed."""
    layout = _streamable(spec, call)
    assert layout is not None
    n = layout.n
    reps = -(-ROWS // n)
    out = dict(call)
    diff = set(spec.kinds) | set(spec.extra_inputs)
    for name in list(layout.sliced) + list(layout.params_sliced):
        a = np.asarray(call[name])
        tiled = np.concatenate([a] * reps, axis=0)[:ROWS]
        if name in diff and tiled.dtype.kind == "f":
            u = rng.uniform(-1, 1, size=tiled.shape)
            with np.errstate(all="ignore"):
                if name == "probs":
                    tiled = np.clip(tiled + 0.5 * u * tiled * (1 - tiled), 0, 1)
                elif name in spec.extra_inputs:
                    tiled = tiled * (1 + 0.05 * u)
                else:
                    tiled = np.where(np.isfinite(tiled), tiled + 0.05 * u, tiled)
        out[name] = tiled
    return out


def _close(a, b, what: str) -> None:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, f"{what}: shape {a.shape} != {b.shape}"
    scale = np.max(np.abs(b[np.isfinite(b)]), initial=0.0)
    np.testing.assert_allclose(a, b, rtol=RTOL, atol=1e-15 * max(scale, 1e-300), equal_nan=True, err_msg=what)


def _compare(call: dict, *, grad: bool = True, dtype_rtol: float | None = None) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = lossctl.compute(dict(call), grad=grad, stream=False)
        got = lossctl.compute(dict(call), grad=grad, stream=True, block_rows=BLOCK_ROWS)
    _close(got.loss, ref.loss, "loss")
    _close(got.per_sample, ref.per_sample, "per_sample")
    assert sorted(got.grad) == sorted(ref.grad)
    for k in ref.grad:
        _close(got.grad[k], ref.grad[k], f"grad {k}")
    assert got.denominator == pytest.approx(ref.denominator, rel=RTOL)


# Another framework's convention is computed in memory (never streamed): the losses torch has.
TORCH_LOSSES = [n for n in lossctl.registry_names() if lossctl.registry().get(n).home == "torch"]


@pytest.mark.parametrize("name", TORCH_LOSSES)
def test_streaming_equals_in_memory(name, monkeypatch):
    """Every fixture case of every loss, tiled to ROWS rows, in blocks of ~3 rows on two threads."""
    monkeypatch.setenv("LOSSCTL_THREADS", "2")
    spec = lossctl.registry().get(name)
    rng = np.random.default_rng(sum(map(ord, name)))
    cases = [c for c in _cases(name) if _streamable(spec, {k: v for k, v in c.items() if k != "_name"})]
    if spec.batch_axis != 0:
        # not separable along axis 0 (CTC's (T, N, C)): the engine declines, in-memory is used
        for c in _cases(name)[:3]:
            call = {k: v for k, v in c.items() if k != "_name"}
            keys = set(PREDICTION_KINDS) | set(spec.inputs)
            assert stream.run(spec, {k: v for k, v in call.items() if k in keys}, {}, call.get("reduction", "mean"),
                              mode=True) is None
        return
    assert cases, f"{name}: no fixture case with a batch of 2 or more rows"
    for c in cases:
        call = {k: v for k, v in c.items() if k != "_name"}
        tiled = _tile(spec, call, rng)
        try:
            _compare(tiled)
        except AssertionError as e:
            raise AssertionError(f"{c['_name']}: {e}") from None


@pytest.mark.parametrize("threads", ["1", "2"])
@pytest.mark.parametrize("name", TORCH_LOSSES)
def test_every_reduction_streams(name, threads, monkeypatch):
    """The first streamable case under each of the loss's reductions, with and without gradients."""
    monkeypatch.setenv("LOSSCTL_THREADS", threads)
    spec = lossctl.registry().get(name)
    if spec.batch_axis != 0:
        # CTC's (T, N, C) is not separable along axis 0: stream=True must fall back to the
        # in-memory result for every reduction, with and without gradients.
        call = {k: v for k, v in _cases(name)[0].items() if k != "_name"}
        for reduction in spec.reductions:
            call["reduction"] = reduction
            _compare(call, grad=True)
            _compare(call, grad=False)
        return
    rng = np.random.default_rng(1)
    call = next(c for c in ({k: v for k, v in c.items() if k != "_name"} for c in _cases(name))
                if _streamable(spec, c))
    tiled = _tile(spec, call, rng)
    for reduction in spec.reductions:
        tiled["reduction"] = reduction
        _compare(tiled, grad=True)
        _compare(tiled, grad=False)


def test_large_ce_uses_the_fused_kernel_and_agrees(rng):
    """float32 logits computed in float64: the fused log_softmax_at path (exact shift skipped)."""
    x = (rng.standard_normal((5000, 37)) * 4).astype(np.float32)
    y = rng.integers(0, 37, 5000)
    y[:2000:97] = -100  # ignored rows in the first blocks only
    w = rng.uniform(0.5, 2, 37)
    for extra in ({}, {"weight": w}, {"label_smoothing": 0.1}):
        call = {"loss": "ce", "logits": x, "target": y, **extra}
        ref = lossctl.compute(call, grad=True, stream=False)
        got = lossctl.compute(call, grad=True, stream=True, block_rows=333)
        assert got.loss == pytest.approx(ref.loss, rel=RTOL)
        np.testing.assert_array_equal(got.per_sample, ref.per_sample)
        np.testing.assert_allclose(got.grad["logits"], ref.grad["logits"], rtol=RTOL, atol=0)
        # the mean alone (no per-sample output): the exact sum of the same values, bit for bit
        only = lossctl.compute(call, grad=False, stream=True, block_rows=333, keep_arrays=False)
        assert only.loss == ref.loss and only.denominator == ref.denominator


def test_float32_compute_accumulates_in_float64(rng):
    x = rng.standard_normal((3001, 10)).astype(np.float32)
    y = rng.integers(0, 10, 3001)
    ref = lossctl.compute({"loss": "ce", "logits": x, "target": y}, dtype="float32", stream=False, grad=True)
    got = lossctl.compute({"loss": "ce", "logits": x, "target": y}, dtype="float32", stream=True, block_rows=100, grad=True)
    assert got.dtype == ref.dtype == "float32"
    assert got.loss == pytest.approx(ref.loss, rel=1e-6)
    np.testing.assert_array_equal(got.per_sample, ref.per_sample)
    assert got.grad["logits"].dtype == np.float32
    np.testing.assert_allclose(got.grad["logits"], ref.grad["logits"], rtol=1e-6, atol=1e-12)


def test_memory_mapped_input_streams(tmp_path, rng):
    x = (rng.standard_normal((2000, 13)) * 3).astype(np.float32)
    y = rng.integers(0, 13, 2000)
    np.save(tmp_path / "x.npy", x)
    xm = np.load(tmp_path / "x.npy", mmap_mode="r")
    ref = lossctl.compute({"loss": "ce", "logits": x, "target": y}, stream=False, grad=True)
    got = lossctl.compute({"loss": "ce", "logits": xm, "target": y}, stream=True, block_rows=128, grad=True)
    assert got.loss == pytest.approx(ref.loss, rel=RTOL)


def test_small_inputs_stay_in_memory(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a small call was planned for streaming")

    monkeypatch.setattr(stream, "plan", refuse)
    r = lossctl.compute({"loss": "ce", "logits": [[10, 0, -10], [8, 8, 8]], "target": [0, 2]}, grad=True)
    assert r.loss == pytest.approx(0.5493288448141933, rel=1e-15)


def test_keep_arrays_false_drops_per_sample(rng):
    x = rng.standard_normal((500, 4))
    y = rng.integers(0, 4, 500)
    r = lossctl.compute({"loss": "ce", "logits": x, "target": y}, grad=False, stream=True, block_rows=50,
                        keep_arrays=False)
    assert r.per_sample is None and r.grad == {}
    assert r.loss == pytest.approx(lossctl.compute({"loss": "ce", "logits": x, "target": y}, grad=True).loss, rel=RTOL)


# -- errors and warnings from a block are about the whole input ----------------------------------


def test_class_index_error_names_the_row_of_the_whole_input(rng):
    x = rng.standard_normal((100, 3))
    y = rng.integers(0, 3, 100)
    y[57] = 7
    for mode in (False, True):
        with pytest.raises(lossctl.InputError) as e:
            lossctl.compute({"loss": "ce", "logits": x, "target": y}, stream=mode, block_rows=10, grad=True)
        assert str(e.value).endswith("class index 7 is out of range for 3 classes (row 57)"), str(e.value)


def test_shape_error_names_the_whole_shapes(rng):
    x = rng.standard_normal((100, 3))
    msgs = []
    for mode in (False, True):
        with pytest.raises(lossctl.InputError) as e:
            lossctl.compute({"loss": "bce", "probs": np.clip(x, 0, 1), "target": np.clip(x, 0, 1),
                             "weight": np.ones((2, 3))}, stream=mode, block_rows=10, grad=True)
        msgs.append(str(e.value))
    assert msgs[0] == msgs[1]


def test_value_error_position_is_shifted_to_the_whole_input(rng):
    p = rng.uniform(0.1, 0.9, (100, 3))
    p[63, 2] = 1.5
    msgs = []
    for mode in (False, True):
        with pytest.raises(lossctl.InputError) as e:
            lossctl.compute({"loss": "bce", "probs": p, "target": np.round(p.clip(0, 1))}, stream=mode, block_rows=10, grad=True)
        msgs.append(str(e.value))
    assert msgs[0] == msgs[1] and "63" in msgs[0]


def test_nan_warning_counts_every_block(rng):
    x = rng.standard_normal((100, 3))
    x[[5, 44, 45, 90], 1] = np.nan
    y = rng.integers(0, 3, 100)
    messages = []
    for mode in (False, True):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            lossctl.compute({"loss": "ce", "logits": x, "target": y}, stream=mode, block_rows=10, grad=True)
        messages.append([str(w.message) for w in caught if isinstance(w.message, lossctl.errors.InputWarning)])
    assert messages[0] == messages[1] and len(messages[0]) == 1


# -- -o FILE written as it streams ---------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".npy", ".npz", ".csv"])
@pytest.mark.parametrize("loss,args", [
    ("ce", ["--logits", "x.npy", "--target", "y.npy"]),
    ("mse", ["--pred", "x.npy", "--target", "t.npy"]),
    ("bce-logits", ["--logits", "x.npy", "--target", "p.npy"]),
])
def test_output_file_streams_equal_in_memory(tmp_path, monkeypatch, run_cli, rng, suffix, loss, args):
    monkeypatch.chdir(tmp_path)
    x = rng.standard_normal((1001, 7)).astype(np.float32)
    np.save("x.npy", x)
    np.save("y.npy", rng.integers(0, 7, 1001))
    np.save("t.npy", rng.standard_normal((1001, 7)))
    np.save("p.npy", rng.uniform(0, 1, (1001, 7)))
    grad = [] if suffix == ".npy" else ["--grad"]
    monkeypatch.setenv("LOSSCTL_STREAM_MIN_BYTES", str(1 << 40))
    ref = run_cli([loss, *args, "-o", f"ref{suffix}", *grad, "--format", "plain"])
    monkeypatch.setenv("LOSSCTL_STREAM_MIN_BYTES", "1")
    monkeypatch.setenv("LOSSCTL_BLOCK_BYTES", "600")
    got = run_cli([loss, *args, "-o", f"out{suffix}", *grad, "--format", "plain"])
    assert ref.code == got.code == 0, (ref.stderr, got.stderr)
    assert float(got.stdout) == pytest.approx(float(ref.stdout), rel=RTOL)
    # a large call of ce/bce-logits takes the compiled kernels: values within a few ulp
    compiled = lossctl.registry().get(loss).compiled_forward is not None and kernels.compiled() is not None
    same = (lambda a, b: np.testing.assert_allclose(a, b, rtol=4 * np.finfo(float).eps, atol=0)) if compiled \
        else np.testing.assert_array_equal
    if suffix == ".npy":
        same(np.load("out.npy"), np.load("ref.npy"))
    elif suffix == ".npz":
        a, b = np.load("out.npz"), np.load("ref.npz")
        assert sorted(a.files) == sorted(b.files)
        for k in b.files:
            same(a[k], b[k])
    elif compiled:
        same(np.loadtxt("out.csv", delimiter=",", skiprows=1, ndmin=2), np.loadtxt("ref.csv", delimiter=",", skiprows=1, ndmin=2))
    else:
        assert Path("out.csv").read_text() == Path("ref.csv").read_text()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "temporary parts left behind"


def test_output_npy_with_grad_is_refused_before_computing(tmp_path, monkeypatch, run_cli):
    monkeypatch.chdir(tmp_path)
    r = run_cli(["ce", "--logits", "[[1,2],[3,4]]", "--target", "[0,1]", "--grad", "-o", "g.npy"])
    assert r.code == 2 and "use .npz" in r.stderr
    assert not Path("g.npy").exists()


def test_failed_stream_leaves_no_output(tmp_path, monkeypatch, run_cli, rng):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LOSSCTL_STREAM_MIN_BYTES", "1")
    monkeypatch.setenv("LOSSCTL_BLOCK_BYTES", "200")
    y = rng.integers(0, 3, 300)
    y[250] = 9
    np.save("x.npy", rng.standard_normal((300, 3)))
    np.save("y.npy", y)
    r = run_cli(["ce", "--logits", "x.npy", "--target", "y.npy", "-o", "o.npz", "--grad"])
    assert r.code == 3 and "(row 250)" in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.npy", "y.npy"]


# -- the CLI's fast path and the progress bar ------------------------------------------------


@pytest.mark.parametrize("argv", [
    ["ce", "--logits", "[[10,0,-10],[8,8,8]]", "--target", "[0,2]", "--format", "plain"],
    ["ce", "--logits=[[10,0,-10],[8,8,8]]", "-t", "[0,2]", "--json", "--grad", "--per-sample"],
    ["cross-entropy", "--logits", "[[1,2],[3,4]]", "--target", "[1,0]", "-r", "sum", "--label-smoothing", "0.1"],
    ["mse", "--pred", "[1,2,3]", "--target", "[1,2,5]", "--reduction", "none", "-f", "csv"],
    ["kl", "--log-probs", "[-1.0,-2.0]", "--target", "[0.5,0.5]", "--no-log-target"],
    ["ce", "--logits", "[[1,2],[3,4]]", "--target", "[0,1]", "--label-smoothing", "abc"],
    ["ce", "--logits", "[[1,2],[3,4]]", "--target", "[0,1]", "--bogus", "1"],
    ["ce", "--logits", "[[1,2],[3,4]]", "--target"],
    ["ce", "--logits", "[[1,2],[3,4]]", "--target", "[0,7]"],
    ["ce", "--help"],
    ["nosuchloss", "--x", "1"],
])
def test_fast_path_matches_typer(argv, run_cli, monkeypatch):
    """`lossctl LOSS ...` skips building the Typer app; the result, output and exit code are Typer's."""
    from lossctl.cli import argv_parser as fast

    quick = run_cli(argv)
    monkeypatch.setattr(fast, "parse_loss_call", lambda args: None)
    slow = run_cli(argv)
    assert (quick.code, quick.stdout, quick.stderr) == (slow.code, slow.stdout, slow.stderr)


def test_fast_path_declines_what_it_does_not_know():
    from lossctl.cli.argv_parser import parse_loss_call

    assert parse_loss_call(["ce", "--logits", "[[1,2]]", "--target", "[0]"]) is not None
    for argv in (["ce", "--help"], ["ce", "-t[0]"], ["ce", "--", "x"], ["ce", "pos"], ["list"], ["check", "s.yaml"],
                 ["ce", "--rows", "x"], ["ce", "--logits"], ["--version"], []):
        assert parse_loss_call(argv) is None, argv


def test_progress_bar_only_on_a_terminal():
    import io

    from lossctl.cli.progress import progress_bar

    with progress_bar(stream=io.StringIO()) as progress:
        assert progress is None

    class Tty(io.StringIO):
        def isatty(self):
            return True

    with progress_bar(delay=0.0, stream=Tty()) as progress:
        assert callable(progress)
        progress(10, 100)  # draws (on the real stderr's console; transient)
        progress(100, 100)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_default_blocks_of_the_compiled_kernel_give_the_in_memory_numbers(monkeypatch, rng, reduction):
    # Default blocks (a short first block, the per-sample values written in place by the kernel,
    # the kept thread pool): bit for bit the in-memory numbers and those of any other blocks.
    monkeypatch.setenv("LOSSCTL_BLOCK_BYTES", "4000")
    monkeypatch.setenv("LOSSCTL_THREADS", "2")
    x = rng.standard_normal((3001, 5)).astype(np.float32)
    y = rng.integers(0, 5, 3001)
    y[::17] = -100
    call = {"loss": "ce", "logits": x, "target": y, "reduction": reduction}
    ref = lossctl.compute(dict(call), grad=False, stream=False)
    for _ in range(2):  # a second call reuses the pool
        got = lossctl.compute(dict(call), grad=False, stream=True)
        np.testing.assert_array_equal(got.per_sample, ref.per_sample)
        np.testing.assert_array_equal(got.loss, ref.loss)
    other = lossctl.compute(dict(call), grad=False, stream=True, block_rows=7)
    np.testing.assert_array_equal(other.per_sample, ref.per_sample)
    np.testing.assert_array_equal(other.loss, ref.loss)
    if reduction != "none":
        only = lossctl.compute(dict(call), grad=False, stream=True, keep_arrays=False)
        assert only.loss == ref.loss


@pytest.mark.parametrize("row", [20, 2000])
def test_default_blocks_name_the_row_of_a_bad_target(monkeypatch, rng, row):
    monkeypatch.setenv("LOSSCTL_BLOCK_BYTES", "4000")
    x = rng.standard_normal((3001, 5)).astype(np.float32)
    y = rng.integers(0, 5, 3001)
    y[row] = 9
    with pytest.raises(lossctl.LossctlError, match=rf"\(row {row}\)"):
        lossctl.compute({"loss": "ce", "logits": x, "target": y}, grad=False, stream=True)
