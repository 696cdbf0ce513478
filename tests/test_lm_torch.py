"""lm and linear-ce live against torch (float64, autograd) on fresh random tables (the fixture
generator's cases with other seeds); skipped only when torch is not installed."""

from __future__ import annotations

import sys
from pathlib import Path

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
