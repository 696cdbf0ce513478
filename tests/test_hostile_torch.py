"""Hostile magnitudes against PyTorch (float64), for every registered loss that PyTorch has.

Hypothesis draws a case of the loss (the torch fixture generator's grid) and scales its
prediction (and, for embedding losses, its other inputs) by factors from 1e-170 to 1e300:
distances below the square root of the smallest float, logits whose exponential overflows.
lossctl must never fail on them (exit 4 or a traceback), and where torch's loss, per-sample
values and gradient are finite, lossctl's must be finite and agree (rtol 1e-6).
"""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import lossctl

TESTS = Path(__file__).resolve().parent
SCALES = [1e-170, 1e-100, 1e-12, 1.0, 1e12, 1e100, 1e300]
RTOL = 1e-6


def _modules():
    if "make_torch_fixtures" not in sys.modules:
        spec = importlib.util.spec_from_file_location("make_torch_fixtures", TESTS / "tools" / "make_torch_fixtures.py")
        mod = importlib.util.module_from_spec(spec)
        sys.modules["make_torch_fixtures"] = mod
        spec.loader.exec_module(mod)
    import torch_reference as ref

    return sys.modules["make_torch_fixtures"], ref


LOSSES = sorted(s.name for s in lossctl.registry().specs if "torch" in s.convention_names and s.command_keys is None)
# Losses taking p-norms of differences: below |δ| ≈ 1e-154, torch's squares underflow in more
# than one dimension (its norm and gradient are 0); lossctl scales the norm as hypot does.
UNDERFLOWING_NORMS = {"triplet-margin"}
SCALED = ("logits", "pred", "input", "x1", "x2", "anchor", "positive", "negative", "log_probs")


def _finite(x) -> bool:
    a = np.asarray(x, dtype=np.float64)
    return bool(np.all(np.isfinite(a)))


def _close(name: str, got, want) -> None:
    g = np.asarray(got, dtype=np.float64)
    w = np.asarray(want, dtype=np.float64)
    assert g.shape == w.shape, (name, g.shape, w.shape)
    scale = np.max(np.abs(w)) if w.size else 0.0
    ok = np.abs(g - w) <= RTOL * np.abs(w) + 1e-12 * scale + 1e-300
    assert np.all(ok), (name, g[~ok][:4], w[~ok][:4])


@pytest.mark.parametrize("loss", LOSSES)
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(seed=st.integers(0, 2**32 - 1), point=st.integers(0, 10**6), scale=st.sampled_from(SCALES))
def test_extreme_magnitudes_agree_with_torch(loss, seed, point, scale):
    gen, ref = _modules()
    rng = np.random.default_rng(seed)
    _, make, grid = gen.case_table(loss, rng)
    kw = make(rng, grid[point % len(grid)])
    assume(kw is not None)
    case = {"loss": loss, **kw}
    for key in SCALED:
        if key in case and key != "log_probs":
            case[key] = (np.asarray(case[key], dtype=np.float64) * scale).tolist()
    try:
        want = ref.reference(case)
    except (RuntimeError, ValueError, OverflowError):  # torch refuses the call too
        assume(False)
    try:
        got = lossctl.compute(case, grad=True)
    except lossctl.LossctlError:
        # an input error (exit 3) is an honest answer where torch's own numbers are not finite
        assert not (_finite(want["loss"]) and _finite(want["per_sample"])), "lossctl refused what torch computes"
        return
    if _finite(want["loss"]):
        _close("loss", got.loss, want["loss"])
    if _finite(want["per_sample"]):
        _close("per_sample", got.per_sample, want["per_sample"])
    if loss in UNDERFLOWING_NORMS and scale < 1e-150:
        return  # torch squares δ and gets a norm of 0 (gradient 0); the D = 1 and maths tests below hold lossctl
    for name, g in want["grad"].items():
        if _finite(g) and _finite(want["loss"]):
            _close(f"grad[{name}]", got.grad[name], g)


@pytest.mark.parametrize("eps", [0.0, 1e-6])
@pytest.mark.parametrize("tiny", [1e-170, 1e-160, 1e-200, 1e-300])
def test_triplet_margin_tiny_distances_as_torch(eps, tiny):
    """One dimension: torch's norm is |δ| (nothing squared), the reference for the scaled norm."""
    import torch  # the oracle (the several-dimensions test runs without it)

    a = torch.tensor([[0.0]], dtype=torch.float64, requires_grad=True)
    p = torch.tensor([[1.0]], dtype=torch.float64, requires_grad=True)
    n = torch.tensor([[tiny]], dtype=torch.float64, requires_grad=True)
    loss = torch.nn.functional.triplet_margin_loss(a, p, n, eps=eps)
    loss.backward()
    r = lossctl.compute({"loss": "triplet-margin", "anchor": [[0.0]], "positive": [[1.0]], "negative": [[tiny]],
                         "eps": eps}, grad=True)
    assert math.isclose(r.loss, loss.item(), rel_tol=1e-12)
    for key, t in (("anchor", a), ("positive", p), ("negative", n)):
        np.testing.assert_allclose(r.grad[key], t.grad.numpy(), rtol=1e-9, atol=0)


@pytest.mark.parametrize("tiny", [1e-170, 1e-200, 1e-300])
@pytest.mark.parametrize("p", [2.0, 3.0, 1.5])
def test_triplet_margin_tiny_distances_in_several_dimensions(tiny, p):
    """Two dimensions, where squaring underflows (torch's own norm returns 0 there): the maths.
    d(a, n) = ‖(t, t)‖_p = 2^(1/p)·t, and ∂d/∂δ_i = sign(δ_i)·(|δ_i| / d)^(p−1)."""
    r = lossctl.compute({"loss": "triplet-margin", "anchor": [[0.0, 0.0]], "positive": [[1.0, 0.0]],
                         "negative": [[tiny, tiny]], "eps": 0.0, "p": p}, grad=True)
    d_an = 2 ** (1 / p) * tiny
    assert math.isclose(r.loss, 1.0 + 1.0 - d_an, rel_tol=1e-15)
    unit = (1 / 2 ** (1 / p)) ** (p - 1)  # (|δ_i| / ‖δ‖)^(p − 1), per coordinate
    # l = 1 + d(a, p) − d(a, n): ∂l/∂n = +∂d(a, n)/∂a = −unit·(1, 1); ∂l/∂a = (−1, 0) + unit·(1, 1)
    np.testing.assert_allclose(r.grad["negative"], [[-unit, -unit]], rtol=1e-12)
    np.testing.assert_allclose(r.grad["anchor"], [[-1.0 + unit, unit]], rtol=1e-12)


@pytest.mark.parametrize("logit", [1e308, -1e308, 1e200, 700.0, -745.0])
@pytest.mark.parametrize("target", [0.0, 1.0])
def test_focal_at_huge_logits(logit, target):
    """torchvision's sigmoid_focal_loss, written out in torch (torchvision is not a dependency)."""
    import torch  # the oracle (the several-dimensions test runs without it)

    z = torch.tensor([logit], dtype=torch.float64, requires_grad=True)
    y = torch.tensor([target], dtype=torch.float64)
    p = torch.sigmoid(z)
    ce = torch.nn.functional.binary_cross_entropy_with_logits(z, y, reduction="none")
    p_t = p * y + (1 - p) * (1 - y)
    loss = (0.25 * y + 0.75 * (1 - y)) * ce * (1 - p_t) ** 2
    loss.mean().backward()
    r = lossctl.compute({"loss": "focal", "logits": [logit], "target": [target]}, grad=True)
    g = np.asarray(r.grad["logits"])
    assert np.all(np.isfinite(g))
    if math.isfinite(z.grad.item()):
        np.testing.assert_allclose(g, z.grad.numpy(), rtol=1e-9, atol=1e-300)
