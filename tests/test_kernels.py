"""The compiled kernels (``lossctl._kernels``) against mpmath, the NumPy kernels and torch.

The kernel-level tests call the extension directly, so they run (and must pass) also under
``LOSSCTL_PURE=1``, where lossctl itself uses the NumPy kernels; the engine-level tests check
whichever kernels the environment selects, and that the selection is the one asked for.
A missing extension is a failure here (build it with a C compiler: ``pip install -e .``).
"""

from __future__ import annotations

import contextlib
import importlib
import math
import os
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import mpmath as mp
import numpy as np
import pytest
from test_numerics import ROWS, ref_rows, row_allowed_ulp, ulp_error

import lossctl
from lossctl.core import exactsum, kernels
from lossctl.losses.binary import _bce_logits_values
from lossctl.core.numerics import log_softmax

ROOT = Path(__file__).resolve().parent.parent
FORMATS = ("float64", "float32", "float16", "bfloat16")


@pytest.fixture(scope="module")
def K():
    try:
        return importlib.import_module("lossctl._kernels")
    except ImportError as e:  # pragma: no cover - a failure, with the way out
        pytest.fail(f"the C extension is not built ({e}): `pip install -e .` with a C compiler")


def as_format(x: np.ndarray, fmt: str) -> tuple[np.ndarray, int, np.ndarray]:
    """(buffer in ``fmt``, format code, its exact float64 values)."""
    if fmt == "bfloat16":
        bits = (np.asarray(x, dtype=np.float32).view(np.uint32) >> 16).astype(np.uint16)  # truncation: any bits do
        values = (bits.astype(np.uint32) << 16).view(np.float32).astype(np.float64)
        return bits, 3, values
    a = np.ascontiguousarray(x, dtype=fmt)
    return a, kernels.FORMATS[fmt], a.astype(np.float64)


def ce_kernel(K, x, fmt, target, weight=None, ignore=-100, log_probs=False):
    buf, code, values = as_format(x, fmt)
    n, c = buf.shape
    out = np.empty(n)
    total, den = exactsum.zeros(), exactsum.zeros()
    counts = K.ce_rows(buf, code, n, c, np.asarray(target, dtype=np.int64), weight, ignore, log_probs, out, total, den)
    return out, (exactsum.finalize(exactsum.normalize(total)), exactsum.finalize(exactsum.normalize(den)), *counts), values


def ce_reference(values, target, weight=None, ignore=-100, log_probs=False):
    """The NumPy kernels: cross_entropy_forward on log_softmax (or on the log-probabilities)."""
    with np.errstate(all="ignore"):
        lp = values if log_probs else log_softmax(values, axis=1)
        valid = target != ignore
        safe = np.where(valid, target, 0)
        w = np.ones(values.shape[1]) if weight is None else weight
        return np.where(valid, -w[safe] * lp[np.arange(len(target)), safe], 0.0), np.where(valid, w[safe], 0.0)


def assert_close_ulp(got, want, ulps=4):
    got, want = np.asarray(got), np.asarray(want)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(np.isinf(got) * np.sign(got), np.isinf(want) * np.sign(want))
    finite = np.isfinite(want)
    err = np.abs(got[finite] - want[finite])
    tol = ulps * np.spacing(np.abs(want[finite])) + ulps * 5e-324
    bad = err > tol
    assert not bad.any(), f"{int(bad.sum())} values off by more than {ulps} ulp: got {got[finite][bad][:3]}, want {want[finite][bad][:3]}"


# -- accuracy: the adversarial rows of test_numerics, against mpmath at 50 digits ----------------


def _exact_rows(fmt):
    for name, row in ROWS.items():
        buf, _, values = as_format(np.asarray([row]), fmt)
        values = values[0]
        if np.isfinite(values.max()):
            yield name, values


@pytest.mark.parametrize("fmt", FORMATS)
def test_adversarial_rows_within_4_ulp_of_mpmath(K, fmt):
    """Every class of every adversarial row (as the format holds it) as the target, the row read
    in that format in a block of nine copies (row groups of eight and a tail), within 4 ulp
    of −log_softmax at 50 digits."""
    checked = 0
    for name, row in _exact_rows(fmt):
        _, exact_lsm, _ = ref_rows(row)
        c = len(row)
        buf, code, values = as_format(np.tile(row, (9, 1)), fmt)
        assert np.array_equal(values[0], row)
        for y in range(c):
            out = np.empty(9)
            K.ce_rows(buf, code, 9, c, np.full(9, y, dtype=np.int64), None, -100, False, out, None, None)
            exact = -exact_lsm[y]
            for v in out:
                err = ulp_error(v, exact)
                assert err <= row_allowed_ulp(exact, c), f"{fmt} {name} y={y}: got {v!r}, exact {mp.nstr(exact, 20)}, {err:.3g} ulp"
            checked += 1
    assert checked > 100


def test_nonfinite_rows_as_numpy(K):
    """NaN, +inf, all −inf rows, −inf targets and overflowing shifts give NumPy's (and torch's) NaN/inf."""
    inf, nan = np.inf, np.nan
    rows = [[0.0, -inf, 3.5], [nan, 1.0, 2.0], [inf, 1.0, 2.0], [-inf, -inf, -inf], [1e300, -1e300, 0.0],
            [745.0, 0.0, 0.0], [-1.7e308, 1.7e308, 0.0], [inf, inf, 0.0], [-inf, 0.0, nan]]
    for width in (3, 12, 27):  # narrow path, wide path, wide path with an overlapping last chunk
        x = np.asarray([np.resize(r, width) for r in rows])
        for y in range(3):
            t = np.full(len(rows), y)
            out, sums, _ = ce_kernel(K, x, "float64", t)
            want, _ = ce_reference(x, t)
            assert_close_ulp(out, want)
            assert sums[2:] == (4, 3)  # rows with NaN/+inf; rows with −inf


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("c", [1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 100, 1000])
def test_random_blocks_match_numpy(K, fmt, c, rng):
    n = 53 if c >= 100 else 1299  # several of the kernel's chunks of rows, and a partial one
    x = rng.standard_normal((n, c)) * rng.choice([0.1, 3.0, 30.0, 300.0], size=(n, 1))
    t = rng.integers(0, c, n)
    t[::7] = -100
    for weight in (None, rng.uniform(0.1, 3.0, c)):
        out, sums, values = ce_kernel(K, x, fmt, t, weight)
        want, w_n = ce_reference(values, t, weight)
        assert_close_ulp(out, want)
        assert sums[0] == exactsum.exact_sum(out)  # Σ l_n and Σ w[y_n] added exactly, in the same pass
        assert sums[1] == exactsum.exact_sum(w_n)
        # log-probabilities (nll): the gather only
        lp = log_softmax(values, axis=1)
        out, sums, _ = ce_kernel(K, lp, "float64", t, weight, log_probs=True)
        want, _ = ce_reference(lp, t, weight, log_probs=True)
        np.testing.assert_array_equal(out, want)
    bad = t.copy()
    bad[n // 2] = c  # not a class index: refused, whatever the kernel has computed by then
    with pytest.raises(ValueError, match="class index out of range"):
        ce_kernel(K, x, fmt, bad)


def test_half_formats_read_exactly(K, rng):
    """float16 and bfloat16 bits (incl. subnormals, ±inf, NaN) give the values of their float64 widening."""
    x16 = rng.standard_normal((40, 37)).astype(np.float16)
    x16.reshape(-1)[:6] = [np.float16(6e-8), np.float16(-3e-6), np.inf, -np.inf, np.nan, np.float16(65504)]
    bits = rng.integers(0, 1 << 16, size=(40, 37), dtype=np.uint16)  # every kind of bfloat16 value
    t = rng.integers(0, 37, 40)
    for buf, code, wide in ((x16, 2, x16.astype(np.float64)),
                            (bits, 3, (bits.astype(np.uint32) << 16).view(np.float32).astype(np.float64))):
        out, want = np.empty(40), np.empty(40)
        K.ce_rows(buf, code, 40, 37, t, None, -100, False, out, None, None)
        K.ce_rows(wide, 0, 40, 37, t, None, -100, False, want, None, None)
        np.testing.assert_array_equal(out, want)


def test_bce_logits_matches_numpy_and_mpmath(K, rng):
    z = np.concatenate([rng.standard_normal(1000) * 10, [0.0, -0.0, 5e-324, -5e-324, 1e-300, 30.0, -30.0, 36.7, 709.0,
                                                       -745.0, 800.0, -800.0, 1e300, -1e300, np.inf, -np.inf, np.nan]])
    y = rng.random(z.size)
    y[-17:] = [0, 1, 0.5, 1, 0, 0, 1, 0.3, 0, 1, 0, 1, 0.25, 1, 0, 1, 0.5]
    for w, pw in ((None, None), (np.asarray([2.5]), None), (None, np.asarray([3.0])), (rng.random(z.size), None)):
        out = np.empty(z.size)
        total = exactsum.zeros()
        counts = K.bce_logits(z, 0, z.size, y, w, pw, out, total)
        want = _bce_logits_values(z, y, 1.0 if w is None else w, pw)
        assert_close_ulp(out, want)
        assert counts == (2, 1)
        got, want_sum = exactsum.finalize(exactsum.normalize(total)), exactsum.exact_sum(out)
        assert got == want_sum or (math.isnan(got) and math.isnan(want_sum))
    out = np.empty(z.size)
    K.bce_logits(z, 0, z.size, y, None, None, out, None)
    sp = lambda v: mp.log1p(mp.exp(v)) if v < 0 else v + mp.log1p(mp.exp(-v))  # noqa: E731
    with mp.workdps(50):
        for zi, yi, got in zip(z[-17:-3], y[-17:-3], out[-17:-3]):
            zz, yy = mp.mpf(float(zi)), mp.mpf(float(yi))
            exact = yy * sp(-zz) + (1 - yy) * sp(zz)
            assert ulp_error(got, exact) <= 4, (zi, yi, got)


def test_gil_is_released(K):
    """Python code runs on another thread while a kernel computes."""
    x = np.random.default_rng(1).standard_normal((4000, 2000))
    t = np.zeros(4000, dtype=np.int64)
    out = np.empty(4000)
    done = threading.Event()
    count = 0

    def work():
        K.ce_rows(x, 0, 4000, 2000, t, None, -100, False, out, None, None)
        done.set()

    th = threading.Thread(target=work)
    th.start()
    time.sleep(0.001)
    while not done.is_set():
        count += 1
    th.join()
    assert count > 1000


def test_torch_float64_agrees(monkeypatch):
    import torch
    monkeypatch.setenv("LOSSCTL_STREAM_MIN_BYTES", "1")  # streamed as a large call is: the selected kernels
    import torch.nn.functional as F

    rng = np.random.default_rng(5)
    for c in (2, 10, 300):
        x = (rng.standard_normal((3000, c)) * 4).astype(np.float32)
        t = rng.integers(0, c, 3000)
        w = rng.uniform(0.5, 2, c)
        r = lossctl.compute(loss="ce", logits=x, target=t, weight=w, reduction="none")
        ref = F.cross_entropy(torch.from_numpy(x).double(), torch.from_numpy(t), weight=torch.from_numpy(w),
                              reduction="none").numpy()
        # torch forms lse − x_y, which cancels for small losses: its absolute error is a few
        # ulp of the logits, lossctl's a few ulp of the loss
        np.testing.assert_allclose(r.per_sample, ref, rtol=4e-15, atol=8 * np.spacing(np.abs(x).max()))
        m = lossctl.compute(loss="ce", logits=x, target=t, weight=w).loss
        ref_m = F.cross_entropy(torch.from_numpy(x).double(), torch.from_numpy(t), weight=torch.from_numpy(w)).item()
        assert abs(m - ref_m) <= 4e-15 * abs(ref_m)


# -- the vocabulary-block row kernel (lm, linear-ce, ce on (B, T, V)) -------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_row_stats_against_mpmath_and_numpy(K, fmt, rng, monkeypatch):
    """row_stats' (m, s) of the adversarial rows (short ones repeated to 8 entries): m is the maximum and
    log1p(s) = log Σ exp(z − m) within 4 ulp of mpmath; on random blocks, read as column slices of a wider array, m is
    NumPy's exactly and s within 4 ulp of its; rows with NaN, +inf or only −inf decline."""
    from lossctl.losses import online_softmax

    monkeypatch.delenv("LOSSCTL_PURE", raising=False)  # the kernel itself, also in the LOSSCTL_PURE run
    checked = 0
    for name, row in _exact_rows(fmt):
        row = np.tile(row, -(-8 // len(row)))  # the kernel takes rows of 8 or more: repeat short ones
        buf, _, values = as_format(np.asarray([row]), fmt)
        got = kernels.row_stats(buf if fmt != "bfloat16" else _Bits(buf))
        assert got is not None, name
        m, s = got
        assert m[0] == values[0].max()
        with mp.workdps(50):
            xs = [mp.mpf(float(v)) for v in values[0]]
            top = xs.index(max(xs))
            log_total = mp.log1p(mp.fsum(mp.exp(mp.fsub(v, xs[top], exact=True)) for j, v in enumerate(xs) if j != top))
            got_total = float(mp.log1p(mp.mpf(float(s[0]))))
        assert ulp_error(got_total, log_total) <= row_allowed_ulp(log_total, len(row)), f"{fmt} {name}: {got_total!r} vs {mp.nstr(log_total, 20)}"
        checked += 1
    assert checked > 10
    x = rng.standard_normal((37, 300)) * 5
    buf, _, values = as_format(x, fmt)
    for c0, c1 in ((0, 300), (5, 213), (100, 108)):
        block = buf[:, c0:c1]
        m, s = kernels.row_stats(block if fmt != "bfloat16" else _Bits(block))
        want_m, want_s = online_softmax.block_stats(values[:, c0:c1])
        np.testing.assert_array_equal(m, want_m)
        assert_close_ulp(s, want_s)
    for bad in (np.nan, np.inf):
        y = values.copy()
        y[3, 7] = bad
        assert kernels.row_stats(np.ascontiguousarray(y)) is None
    assert kernels.row_stats(np.full((2, 9), -np.inf)) is None
    assert kernels.row_stats(values[:, :7]) is None  # fewer than 8 columns: the NumPy kernel


def test_float32_calls_take_the_compiled_row_kernel(rng, monkeypatch):
    """A float32 call's row statistics come from the compiled kernel (float64 inside: m and s as
    row_stats gives them, not rounded to float32), within float32 accuracy of the NumPy kernel's."""
    from lossctl.losses import online_softmax

    monkeypatch.delenv("LOSSCTL_PURE", raising=False)
    z = (rng.standard_normal((50, 700)) * 4).astype(np.float32)
    m, s = online_softmax.ROW_KERNEL(z, np.float32, True)
    want_m, want_s = kernels.row_stats(z)
    assert m.dtype == s.dtype == np.float64
    np.testing.assert_array_equal(m, want_m)
    np.testing.assert_array_equal(s, want_s)
    slow_m, slow_s = online_softmax.block_stats(z, np.float32)
    np.testing.assert_array_equal(m, slow_m)
    np.testing.assert_allclose(np.log1p(s), np.log1p(slow_s), rtol=1e-6)


class _Bits:  # an encoded bfloat16 array as lossctl.io hands it over: raw bits and their encoding
    encoding = "bfloat16"

    def __init__(self, bits):
        self.bits = bits


def test_lm_paths_agree_with_either_row_kernel(rng, monkeypatch):
    """lm through the compiled row kernel and through the NumPy one: the same loss to 1e-15."""
    from lossctl.losses import online_softmax

    monkeypatch.delenv("LOSSCTL_PURE", raising=False)

    x = (rng.standard_normal((3, 40, 257)) * 3).astype(np.float32)
    y = rng.integers(0, 257, (3, 40))
    y[0, :5] = -100
    import lossctl.tokens as tokens

    fast = tokens.lm(logits=x, labels=y, per_sample=True)
    saved = online_softmax.ROW_KERNEL
    online_softmax.ROW_KERNEL = online_softmax.block_stats
    try:
        slow = tokens.lm(logits=x, labels=y, per_sample=True)
    finally:
        online_softmax.ROW_KERNEL = saved
    assert math.isclose(fast.loss, slow.loss, rel_tol=1e-15)
    assert_close_ulp(fast.per_token, slow.per_token, ulps=8)


# -- the engine: which kernels, and the same results either way ------------------------------------


@contextlib.contextmanager
def kernels_selected(compiled: bool):
    old = os.environ.get("LOSSCTL_PURE")
    os.environ["LOSSCTL_PURE"] = "" if compiled else "1"
    try:
        yield
    finally:
        os.environ["LOSSCTL_PURE"] = old or ""


@pytest.fixture
def spy(monkeypatch):
    calls = []
    for name in ("ce_rows", "bce_logits"):
        real = getattr(kernels, name)

        def wrapped(*a, _real=real, **k):
            out = _real(*a, **k)
            calls.append(out is not None)
            return out

        monkeypatch.setattr(kernels, name, wrapped)
    return calls


def _calls(rng):
    x = (rng.standard_normal((997, 33)) * 3).astype(np.float32)
    t = rng.integers(0, 33, 997)
    z = rng.standard_normal((997, 4)).astype(np.float16)
    yield {"loss": "ce", "logits": x, "target": t}
    yield {"loss": "ce", "logits": x.astype(np.float16), "target": t, "weight": rng.random(33), "ignore_index": 3}
    yield {"loss": "nll", "log_probs": log_softmax(x.astype(np.float64), axis=1), "target": t, "reduction": "sum"}
    yield {"loss": "ce", "log_probs": log_softmax(x.astype(np.float64), axis=1).astype(np.float32), "target": t}
    yield {"loss": "bce-logits", "logits": z, "target": rng.random((997, 4)), "pos_weight": rng.random(4) + 0.5}
    yield {"loss": "bce-logits", "logits": z, "target": rng.random((997, 4)), "weight": rng.random((997, 4)),
           "reduction": "none"}


def test_engine_uses_the_selected_kernels_with_the_same_results(spy, rng, monkeypatch):
    """Every path takes the selected kernels (in memory, forced streaming, streaming because the
    call is large, with and without gradients), so a call's values are the same bit for bit
    however it is evaluated and however its rows are blocked."""
    monkeypatch.setenv("LOSSCTL_STREAM_MIN_BYTES", "1")  # every call here is "large"
    used = not kernels.pure()
    for call in _calls(rng):
        spy.clear()
        mem = lossctl.compute(call, stream=False)
        assert spy == ([True] if used else []), call["loss"]
        spy.clear()
        forced = lossctl.compute(call, stream=True, block_rows=100)
        assert spy == ([True] * 10 if used else []), call["loss"]
        np.testing.assert_array_equal(forced.per_sample, mem.per_sample)
        assert float(np.sum(forced.loss)) == float(np.sum(mem.loss))
        for rows in (100, 7, 1000):
            large = lossctl.compute(call, block_rows=rows)
            np.testing.assert_array_equal(large.per_sample, mem.per_sample)
            np.testing.assert_array_equal(large.loss, mem.loss)
        assert large.grad == {} and mem.grad == {}
        for stream in (None, True, False):
            g = lossctl.compute(call, block_rows=100, grad=True, stream=stream)
            assert set(g.grad) == {"logits" if "logits" in call else "log_probs"}
            np.testing.assert_array_equal(g.per_sample, mem.per_sample)
            np.testing.assert_array_equal(g.loss, mem.loss)


def test_streamed_and_in_memory_per_sample_values_are_identical(tmp_path, rng):
    """A large CLI call (streamed through the compiled kernel, values written to -o as they
    stream) and the same call in memory give the same per-sample values bit for bit, on rows
    where a correctly rounded and a faithful log-sum-exp differ in the last ulp now and then."""
    x = (rng.standard_normal((40_000, 100)) * 3).astype(np.float32)
    t = rng.integers(0, 100, len(x))
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "t.npy", t)
    env = dict(os.environ, PYTHONPATH=str(ROOT), LOSSCTL_STREAM_MIN_BYTES="1000000", LOSSCTL_BLOCK_BYTES="300000")
    out = subprocess.run([sys.executable, "-m", "lossctl", "ce", "--logits", str(tmp_path / "x.npy"), "--target",
                          str(tmp_path / "t.npy"), "--reduction", "none", "-o", str(tmp_path / "v.npy")],
                         capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    streamed = np.load(tmp_path / "v.npy")
    for stream in (False, True):
        mem = lossctl.compute(loss="ce", logits=x, target=t, reduction="none", stream=stream, block_rows=333)
        np.testing.assert_array_equal(streamed, mem.per_sample)


def test_engine_warnings_and_errors_name_the_whole_input(rng, monkeypatch):
    x = rng.standard_normal((500, 20))
    x[301, 4] = x[420, 0] = np.nan
    x[450, 1] = -np.inf
    t = rng.integers(0, 20, 500)
    got = {}
    monkeypatch.setenv("LOSSCTL_STREAM_MIN_BYTES", "1")
    for stream in (False, True, None):  # in memory; forced streaming; large: the selected kernels throughout
        for nonfinite in (np.where(np.isinf(x), 0.0, x), np.where(np.isnan(x), 0.0, x)):  # two NaN blocks; one -inf
            with warnings.catch_warnings(record=True) as w:
                warnings.simplefilter("always")
                r = lossctl.compute(loss="ce", logits=nonfinite, target=t, stream=stream, block_rows=64)
            got.setdefault(stream, []).append(([str(m.message) for m in w], r.per_sample))
    assert "2 NaN values (the first at index [301, 4]: nan)" in got[False][0][0][0]
    assert "1 infinite value (the first at index [450, 1]: -inf)" in got[False][1][0][0]
    for memory, streamed, selected in zip(got[False], got[True], got[None]):
        assert memory[0] == streamed[0] == selected[0]
        np.testing.assert_array_equal(memory[1], streamed[1])  # a -inf entry: not NaN in either kernel
        np.testing.assert_array_equal(selected[1], memory[1])
    t[333] = 20
    for stream in (False, True, None):
        with pytest.raises(lossctl.errors.InputError, match=r"class index 20 is out of range for 20 classes \(row 333\)"):
            lossctl.compute(loss="ce", logits=x, target=t, stream=stream, block_rows=64)


def test_bfloat16_bits_from_a_reader(spy, rng, monkeypatch):
    """bfloat16 bits (as the safetensors reader hands them over) stream through the kernel unwidened."""

    class Bits:  # the shape of lossctl.io's encoded arrays: raw bits and their encoding
        encoding = "bfloat16"

        def __init__(self, bits):
            self.bits = bits

        shape = property(lambda self: self.bits.shape)
        ndim = property(lambda self: self.bits.ndim)
        size = property(lambda self: self.bits.size)
        nbytes = property(lambda self: self.bits.nbytes)
        dtype = np.dtype(np.float32)

        def __len__(self):
            return len(self.bits)

        def __getitem__(self, i):
            return Bits(self.bits[i])

        def __array__(self, dtype=None, copy=None):
            a = (self.bits.astype(np.uint32) << 16).view(np.float32)
            return a if dtype is None else a.astype(dtype)

    bits = (rng.standard_normal((400, 50)).astype(np.float32).view(np.uint32) >> 16).astype(np.uint16)
    t = rng.integers(0, 50, 400)
    monkeypatch.setenv("LOSSCTL_STREAM_MIN_BYTES", "1")
    r = lossctl.compute(loss="ce", logits=Bits(bits), target=t, block_rows=64)
    assert spy == ([] if kernels.pure() else [True] * 7)
    want = lossctl.compute(loss="ce", logits=np.asarray(Bits(bits)), target=t, stream=False)
    assert_close_ulp(r.per_sample, want.per_sample)


def test_version_says_which_kernels():
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    for pure, expect in (("1", "kernels: NumPy (LOSSCTL_PURE is set)"), ("", "kernels: compiled C")):
        env["LOSSCTL_PURE"] = pure
        out = subprocess.run([sys.executable, "-m", "lossctl", "--version"], capture_output=True, text=True,
                             env=env, check=True).stdout
        assert expect in out


def test_extension_loads_lazily_and_cheaply():
    """Not imported by start-up; a small call that loads it pays well under 5 ms for it."""
    code = "import sys, lossctl.cli.app; print('lossctl._kernels' in sys.modules)"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout
    assert out.split()[-1] == "False"
    costs = []
    for _ in range(3):
        err = subprocess.run([sys.executable, "-X", "importtime", "-c", "import lossctl.core.kernels, lossctl._kernels"],
                             capture_output=True, text=True, check=True, env=env).stderr
        line = next(ln for ln in err.splitlines() if ln.rstrip().endswith("| lossctl._kernels"))
        costs.append(int(line.split("|")[0].split(":")[1]))  # microseconds, its own import alone
    assert min(costs) < 5000


def test_install_without_a_compiler_falls_back(tmp_path):
    """The build step warns and succeeds when the compiler fails (lossctl then runs NumPy kernels)."""
    env = dict(os.environ, CC="false", LDSHARED="false")
    r = subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--build-temp", str(tmp_path / "t"),
                        "--build-lib", str(tmp_path / "lib")], cwd=ROOT, capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "lossctl's C extension was not built" in r.stderr
    assert not list((tmp_path / "lib").rglob("_kernels*"))


# -- the AVX-512 rows of logits (logits_chunk_v4) and their fast paths -------------------------


@pytest.fixture(params=[True, False], ids=["avx512", "other"])
def either_kernel(K, request):
    """The AVX-512 row kernel (where the CPU has it) and the other rows' kernel, in turn."""
    before = K.avx512()
    K.avx512(request.param)
    yield K.avx512()
    K.avx512(before)


def _ref_values(row, targets):
    _, exact_lsm, _ = ref_rows(row)
    return [-exact_lsm[y] for y in targets]


def _check_rows_against_mpmath(K, rows, fmt, targets_of):
    for row in rows:
        buf, code, values = as_format(np.asarray([row]), fmt)
        if not np.isfinite(values).all():  # float16: 2^44 is +inf (the non-finite rows are tested above)
            continue
        targets = targets_of(values[0])
        exact = _ref_values(values[0], targets)
        out = np.empty(len(targets))
        block = np.ascontiguousarray(np.repeat(buf, len(targets), axis=0))
        K.ce_rows(block, code, len(targets), buf.shape[1], np.asarray(targets, dtype=np.int64), None, -100, False,
                  out, None, None)
        for y, got, want in zip(targets, out, exact):
            err = ulp_error(got, want)
            assert err <= row_allowed_ulp(want, values.shape[1]), f"{fmt} y={y}: got {got!r}, {err:.3g} ulp"


def _shift_rows(rng, c=40):
    """float32 rows at and beyond the limits of an exact float64 shift x − max: entries 2^28
    and 2^29 below the maximum's binade (exact; the second one fails the cheap test), 2^30 below
    (inexact), a maximum 1.5·2^-48 whose last bit makes every shift of entries near −20 inexact
    by 2^-49 (ignoring d_lo there is ~10 ulp off), exact zeros (the smallest nonzero |x| is
    then looked for), and a row 2^44 wide (the general row kernel)."""
    tail = np.float32((1 + 2.0**-23))
    base = (rng.standard_normal(c) * 0.5 - 1).astype(np.float32)
    rows = []
    for e in (28, 29, 30):
        r = base.copy()
        r[0], r[7] = 1.0, -tail * np.float32(2.0**-e)
        rows.append(r)
    r = (-20 - rng.random(c) * 2).astype(np.float32)
    r[3] = np.float32(1.5 * 2.0**-48)  # its 2^-49 bit is lost in every shift: d_lo = ±2^-49
    rows.append(r)
    r = base.copy()
    r[::5] = 0.0
    r[2], r[9] = np.float32(3e-9), 2.0
    rows.append(r)
    r = base.copy()
    r[5], r[6] = np.float32(2.0**44), np.float32(2.0**44 * 1.5)
    rows.append(r)
    return rows


@pytest.mark.parametrize("fmt", FORMATS)
def test_exact_shift_boundaries_within_4_ulp(K, either_kernel, fmt, rng):
    """Rows just inside and just outside the cheap "x − max is exact" test, rows whose shifts
    are inexact by up to 2^-49, rows holding exact zeros, rows beyond ±2^44: within 4 ulp of the
    50-digit −log_softmax, with every class as the target."""
    _check_rows_against_mpmath(K, _shift_rows(rng), fmt, lambda v: list(range(len(v))))


@pytest.mark.parametrize("fmt", FORMATS)
def test_long_dominated_rows_need_the_compensated_sum(K, either_kernel, fmt, rng):
    """A maximum 30 above 20,000 near-equal entries: s ≈ 2e-9 is the whole result of the
    maximum's class, and a plain sum of its terms would be tens of ulp off; rows longer than
    the kernel's grouped rows (one at a time), and the same row once more with its maximum in
    the row's last, partial chunk of eight."""
    for c in (20_001, 5_003):
        row = (-30 - rng.random(c) * 0.01).astype(np.float32)
        row[c // 3] = 0.0
        _check_rows_against_mpmath(K, [row], fmt, lambda v: [int(np.argmax(v)), 0])
        row = np.roll(row, c - 1 - c // 3)
        _check_rows_against_mpmath(K, [row], fmt, lambda v: [int(np.argmax(v)), 1])


def test_rows_alone_or_in_a_block_and_in_any_format_give_the_same_bits(K, either_kernel, rng):
    """Each row's value depends on that row alone: exact and inexact shifts, NaN, ±inf, huge and
    zero-holding rows mixed in one block give the bits each row gives on its own; and a float32,
    float16 or bfloat16 row gives the bits of its float64 widening."""
    rows = _shift_rows(rng, c=37)
    rows += [(rng.standard_normal(37) * 3).astype(np.float32) for _ in range(13)]
    special = (rng.standard_normal(37)).astype(np.float32)
    special[[3, 4]] = [np.nan, np.inf]
    rows += [special, np.where(np.arange(37) % 2, -np.inf, 1.0).astype(np.float32)]
    x = np.asarray(rows)
    rng.shuffle(x)
    t = rng.integers(0, 37, len(x))
    for fmt in FORMATS:
        buf, code, values = as_format(x, fmt)
        block = np.empty(len(x))
        K.ce_rows(buf, code, len(x), 37, t, None, -100, False, block, None, None)
        alone = np.empty(len(x))
        for i in range(len(x)):
            o = np.empty(1)
            K.ce_rows(np.ascontiguousarray(buf[i:i + 1]), code, 1, 37, t[i:i + 1], None, -100, False, o, None, None)
            alone[i] = o[0]
        np.testing.assert_array_equal(block, alone)
        wide = np.empty(len(x))
        K.ce_rows(values, 0, len(x), 37, t, None, -100, False, wide, None, None)
        np.testing.assert_array_equal(block, wide)


def test_the_avx512_switch(K):
    """avx512(False) switches the AVX-512 rows off, avx512(True) back on where the CPU has them."""
    before = K.avx512()
    try:
        assert K.avx512(False) is False
        assert K.avx512(True) is before or K.avx512() is True
    finally:
        K.avx512(before)
