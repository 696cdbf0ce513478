"""lm and linear-ce live against torch (float64, autograd) on fresh random tables (the fixture
generator's cases with other seeds); skipped only when torch is not installed."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import torch

sys.path.insert(0, str(Path(__file__).parent / "tools"))
import make_lm_fixtures as gen  # noqa: E402

from test_lm import check_lce_case, check_lm_case  # noqa: E402

SEEDS = (11, 12)


@pytest.mark.parametrize("seed", SEEDS)
def test_lm_live(seed):
    for case in gen.lm_cases(seed):
        check_lm_case(case, gen.lm_reference(case), vocab_block=5, block_bytes=300)


@pytest.mark.parametrize("seed", SEEDS)
def test_linear_ce_live(seed):
    for case in gen.linear_ce_cases(seed):
        check_lce_case({**case, "expect": gen.linear_ce_reference(case)}, vocab_block=6)


def test_linear_ce_float32_close_to_torch_float32():
    import numpy as np
    import torch.nn.functional as F

    from lossctl.losses import linear_ce

    rng = np.random.default_rng(0)
    h = rng.standard_normal((64, 32)).astype(np.float32)
    w = rng.standard_normal((3000, 32)).astype(np.float32)
    y = rng.integers(0, 3000, 64)
    ours = linear_ce.evaluate({"hidden": h, "lm_head": w, "target": y}, {}, dtype=np.float32).loss
    ref = F.linear_cross_entropy(torch.from_numpy(h).double(), torch.from_numpy(w).double(), torch.from_numpy(y)).item()
    assert ours == pytest.approx(ref, rel=1e-5)


def _large_lce_cases(rng):
    """Shapes large enough that a call's threads split the rows, the vocabulary and the products."""
    n, d, v = 70, 12, 1500
    h, w = rng.standard_normal((n, d)), rng.standard_normal((v, d)) * 0.7
    bias, cw = rng.standard_normal(v), rng.random(v) + 0.2
    y = rng.integers(0, v, n)
    y[[3, 40]] = -100
    probs = rng.random((n, v))
    probs /= probs.sum(axis=1, keepdims=True)
    yield {"name": "index-bias", "hidden": h, "lm_head": w, "lm_head_bias": bias, "target": y}
    yield {"name": "weight-smoothing-sum", "hidden": h, "lm_head": w, "target": y, "weight": cw,
           "label_smoothing": 0.2, "reduction": "sum"}
    yield {"name": "probs-none", "hidden": h, "lm_head": w, "lm_head_bias": bias, "target": probs, "weight": cw,
           "label_smoothing": 0.1, "reduction": "none"}


# tilings and thread counts: several token blocks (∂W added block by block) and class chunks,
# their logits kept between values and gradients or computed again
SCHEDULES = {
    "kept-2-threads": dict(threads=2, row_block=24, vocab_block=300),
    "recomputed-2-threads": dict(threads=2, row_block=24, vocab_block=300, grad_block_bytes=1),
    "default-tiles-1-thread": dict(threads=1),
    "chunks-3-threads": dict(threads=3, vocab_block=256),
}


@pytest.mark.parametrize("schedule", SCHEDULES, ids=list(SCHEDULES))
def test_linear_ce_threads_and_schedules_match_torch(schedule):
    rng = np.random.default_rng(5)
    for case in _large_lce_cases(rng):
        check_lce_case({**case, "expect": gen.linear_ce_reference(case)}, **SCHEDULES[schedule])


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_linear_ce_numbers_do_not_depend_on_the_thread_count(dtype):
    """The tiles run side by side but are folded in order: 1, 2 or 3 threads give the same bits."""
    from lossctl.losses import linear_ce

    rng = np.random.default_rng(6)
    for case in _large_lce_cases(rng):
        x = {k: case[k] for k in ("hidden", "lm_head", "lm_head_bias", "target") if k in case}
        params = {k: case[k] for k in ("weight", "label_smoothing") if k in case}
        runs = [linear_ce.evaluate(x, params, reduction=case.get("reduction", "mean"), dtype=dtype, grad=True,
                                   threads=t, row_block=32, vocab_block=256) for t in (1, 2, 3)]
        for r in runs[1:]:
            np.testing.assert_array_equal(r.per_sample, runs[0].per_sample)
            assert set(r.grad) == set(runs[0].grad)
            for name in r.grad:
                np.testing.assert_array_equal(r.grad[name], runs[0].grad[name], err_msg=name)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("grad_block_bytes", [1, None], ids=["recomputed", "kept"])
def test_linear_ce_float32_gradients_close_to_torch_float64(threads, grad_block_bytes):
    """--dtype float32: the loss and every gradient within float32 accuracy of torch float64."""
    from lossctl.losses import linear_ce

    rng = np.random.default_rng(1)
    n, d, v = 96, 24, 5000
    h = rng.standard_normal((n, d)).astype(np.float32)
    w = (rng.standard_normal((v, d)) * 0.3).astype(np.float32)
    b = rng.standard_normal(v).astype(np.float32)
    y = rng.integers(0, v, n)
    kw = {} if grad_block_bytes is None else {"grad_block_bytes": grad_block_bytes}
    r = linear_ce.evaluate({"hidden": h, "lm_head": w, "lm_head_bias": b, "target": y}, {}, dtype=np.float32,
                           grad=True, threads=threads, row_block=64, vocab_block=1000, **kw)
    expect = gen.linear_ce_reference({"hidden": h.astype(np.float64), "lm_head": w.astype(np.float64),
                                      "lm_head_bias": b.astype(np.float64), "target": y})
    assert r.dtype == "float32" and r.loss == pytest.approx(expect["loss"], rel=2e-6)
    for name, want in expect["grad"].items():
        got, want = r.grad[name], np.asarray(want)
        assert got.dtype == np.float32
        # float32 products: errors relative to the gradient's scale
        np.testing.assert_allclose(got, want, rtol=0, atol=2e-6 * np.abs(want).max(), err_msg=name)
