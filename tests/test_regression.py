"""Regression losses (mse, l1, smooth-l1, huber, poisson-nll, gaussian-nll): torch conventions.

Golden numbers are torch 2.13.0 float64 results (cases MSE-*, L1-*, SL1-*, HUB-*, POI-*,
GAU-*); the live comparisons run the oracle table's torch definitions on seeded random
inputs that reach the branch points. The properties every loss has (gradients,
reductions, --explain, float32, streaming) are tests/test_common.py's.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import lossctl
from lossctl.errors import InputError

X = [[0.0, 1.0, -1.0, 0.5], [2.0, -3.0, 0.25, -0.75]]
Y = [[0.1, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, -0.5]]
W = [[1.0, 2.0, 0.5, 0.0], [0.0, 1.0, 1.0, 3.0]]

VALUE_RTOL = 1e-10
GRAD_RTOL, GRAD_ATOL = 1e-9, 1e-12


def run(**call):
    return lossctl.compute(call, grad=True)


def close(actual, expected, rtol=1e-13, atol=0.0):
    np.testing.assert_allclose(np.asarray(actual, dtype=float), np.asarray(expected, dtype=float), rtol=rtol, atol=atol)


# -- golden cases (values and gradients as torch 2.13 gives them) ------------------------------------------------------

GOLDEN = [
    # (call, value, grad w.r.t. pred)
    (dict(loss="mse", pred=X, target=Y), 1.923125,
     [[-0.025, 0.25, -0.25, 0.125], [0.5, -0.75, 0.0625, -0.0625]]),
    (dict(loss="mse", pred=X, target=Y, reduction="sum"), 15.385,
     [[-0.2, 2.0, -2.0, 1.0], [4.0, -6.0, 0.5, -0.5]]),
    (dict(loss="l1", pred=X, target=Y), 1.0125,
     [[-0.125, 0.125, -0.125, 0.125], [0.125, -0.125, 0.125, -0.125]]),
    (dict(loss="smooth-l1", pred=X, target=Y), 0.6490625,
     [[-0.0125, 0.125, -0.125, 0.0625], [0.125, -0.125, 0.03125, -0.03125]]),
    (dict(loss="smooth-l1", pred=X, target=Y, beta=0.5), 0.798125,
     [[-0.025, 0.125, -0.125, 0.125], [0.125, -0.125, 0.0625, -0.0625]]),
    (dict(loss="smooth-l1", pred=X, target=Y, beta=0.0), 1.0125,
     [[-0.125, 0.125, -0.125, 0.125], [0.125, -0.125, 0.125, -0.125]]),
    (dict(loss="huber", pred=X, target=Y), 0.6490625,
     [[-0.0125, 0.125, -0.125, 0.0625], [0.125, -0.125, 0.03125, -0.03125]]),
    (dict(loss="mse", pred=X, target=Y, weight=W), 1.383529411764706,
     [[-0.023529411764705882, 0.47058823529411764, -0.11764705882352941, 0.0],
      [0.0, -0.7058823529411764, 0.058823529411764705, -0.1764705882352941]]),
    (dict(loss="l1", pred=X, target=Y, weight=W), 0.776470588235294,
     [[-0.11764705882352941, 0.23529411764705882, -0.058823529411764705, 0.0],
      [0.0, -0.11764705882352941, 0.11764705882352941, -0.3529411764705882]]),
    (dict(loss="huber", pred=X, target=Y, weight=W), 0.485,
     [[-0.0125, 0.25, -0.0625, 0.0], [0.0, -0.125, 0.03125, -0.09375]]),
    (dict(loss="poisson-nll", pred=[0.5, -1.0, 2.0, 0.0], target=[0.0, 1.0, 3.0, 2.0]), 1.3514142027005551,
     [0.41218031767503205, -0.15803013970713942, 1.0972640247326626, -0.25]),
    (dict(loss="poisson-nll", pred=[0.5, 1e-09, 2.0, 0.0], target=[0.0, 1.0, 3.0, 2.0], log_input=False,
          reduction="sum"), 55.587290496372944,
     [1.0, -90909089.9090909, -0.49999999250000005, -199999999.0]),
    (dict(loss="poisson-nll", pred=[0.5, 1.5, 2.0, 0.0], target=[0.5, 1.0, 3.0, 2.0], log_input=False, full=True,
          eps=0.1), 2.1451638406462026,
     [0.04166666666666666, 0.09375, -0.10714285714285715, -4.75]),
    (dict(loss="gaussian-nll", pred=[1.0, 2.0, 3.0], target=[1.5, 2.0, 0.0], var=0.5, reduction="sum"),
     8.210279229160083, [-1.0, 0.0, 6.0]),
]


@pytest.mark.parametrize("call, value, grad", GOLDEN, ids=lambda v: v["loss"] if isinstance(v, dict) else "")
def test_golden_values_and_gradients(call, value, grad):
    r = run(**call)
    assert r.loss == pytest.approx(value, rel=VALUE_RTOL)
    close(r.grad["pred"], grad, rtol=GRAD_RTOL, atol=GRAD_ATOL)


def test_golden_reduction_none_cases():
    r = run(loss="smooth-l1", pred=X, target=Y, beta=2.0, reduction="none")
    close(r.loss, [[0.0025000000000000005, 0.25, 0.25, 0.0625], [1.0, 2.0, 0.015625, 0.015625]], rtol=VALUE_RTOL)
    close(r.grad["pred"], [[-0.05, 0.5, -0.5, 0.25], [1.0, -1.0, 0.125, -0.125]])
    r = run(loss="huber", pred=X, target=Y, delta=2.0, reduction="none")
    close(r.loss, [[0.005000000000000001, 0.5, 0.5, 0.125], [2.0, 4.0, 0.03125, 0.03125]], rtol=VALUE_RTOL)
    close(r.grad["pred"], [[-0.1, 1.0, -1.0, 0.5], [2.0, -2.0, 0.25, -0.25]])
    r = run(loss="poisson-nll", pred=[0.5, -1.0, 2.0, 0.0], target=[0.0, 1.0, 3.0, 2.0], full=True, reduction="none")
    close(r.loss, [1.6487212707001282, 1.3678794411714423, 3.153137642473707, 1.651806484604536], rtol=VALUE_RTOL)
    close(r.grad["pred"], [1.6487212707001282, -0.6321205588285577, 4.38905609893065, -1.0], rtol=GRAD_RTOL)


# -- branch points and sub-gradients --------------------------------------------------------

def test_smooth_l1_at_beta_takes_the_linear_branch_with_unit_gradient():
    # d = ±0.5 = ±β exactly: value |d| − β/2 = 0.25 (= β/2, continuous), gradient ±1 (= d/β)
    r = run(loss="smooth-l1", pred=[0.5, -0.5, 0.25], target=[0.0, 0.0, 0.0], beta=0.5, reduction="none")
    close(r.loss, [0.25, 0.25, 0.0625])
    close(r.grad["pred"], [1.0, -1.0, 0.5])
    explained = lossctl.compute(dict(loss="smooth-l1", pred=[0.5, 0.25], target=[0.0, 0.0], beta=0.5), explain=True, grad=True)
    branch = next(s for s in explained.steps if s.label == "quadratic branch")
    close(branch.value, [0.0, 1.0])


def test_smooth_l1_beta_zero_is_exactly_l1_with_sign_zero_gradient():
    pred = [1.5, -0.25, 0.0, 2.0]
    target = [0.5, 0.0, 0.0, 2.0]  # two zero differences: sign(0) = 0
    for reduction in ("mean", "sum", "none"):
        s = run(loss="smooth-l1", pred=pred, target=target, beta=0.0, reduction=reduction)
        l1 = run(loss="l1", pred=pred, target=target, reduction=reduction)
        close(s.loss, l1.loss, rtol=0)
        close(s.grad["pred"], l1.grad["pred"], rtol=0)
    close(run(loss="smooth-l1", pred=pred, target=target, beta=0.0, reduction="sum").grad["pred"], [1, -1, 0, 0], rtol=0)


def test_l1_gradient_at_zero_difference_is_zero():
    r = run(loss="l1", pred=[1.0, 2.0, -3.0], target=[1.0, 1.0, -1.0], reduction="sum")
    close(r.grad["pred"], [0.0, 1.0, -1.0], rtol=0)


def test_huber_at_delta_is_linear_with_gradient_delta():
    r = run(loss="huber", pred=[2.0, -2.0, 1.0], target=[0.0, 0.0, 0.0], delta=2.0, reduction="none")
    # |d| = δ = 2: δ·(|d| − δ/2) = 2 (= ½·d², continuous); gradient ±δ
    close(r.loss, [2.0, 2.0, 0.5])
    close(r.grad["pred"], [2.0, -2.0, 1.0])


def test_huber_is_delta_times_smooth_l1_with_beta_delta(rng):
    pred, target = rng.normal(size=(5, 3)) * 3, rng.normal(size=(5, 3))
    for delta in (0.3, 1.0, 2.5):
        h = run(loss="huber", pred=pred, target=target, delta=delta, reduction="none")
        s = run(loss="smooth-l1", pred=pred, target=target, beta=delta, reduction="none")
        close(h.loss, delta * np.asarray(s.loss), rtol=1e-14)
        close(h.grad["pred"], delta * s.grad["pred"], rtol=1e-14)


@pytest.mark.parametrize("call, message", [
    (dict(loss="smooth-l1", beta=-0.5), "negative values for beta"),
    (dict(loss="huber", delta=0.0), "non-positive values for delta"),
    (dict(loss="huber", delta=-1.0), "non-positive values for delta"),
])
def test_parameters_out_of_range_are_usage_errors(call, message):
    from lossctl.errors import UsageError

    with pytest.raises(UsageError, match=message):
        run(pred=[1.0, 2.0, 3.0], target=[0.0, 0.0, 0.0], **call)


@pytest.mark.parametrize("call, message", [
    (dict(loss="mse", weight=[1.0, 2.0]), "must equal the prediction's shape"),
    (dict(loss="huber", weight=[[1.0, 2.0, 3.0]]), "must equal the prediction's shape"),
])
def test_invalid_parameters_are_input_errors(call, message):
    with pytest.raises(InputError, match=message):
        run(pred=[1.0, 2.0, 3.0], target=[0.0, 0.0, 0.0], **call)


# -- weighted means ------------------------------------------------------------------------

@pytest.mark.parametrize("loss", ["mse", "l1"])
def test_mse_l1_weighted_mean_divides_by_weight_sum(loss):
    none = np.asarray(run(loss=loss, pred=X, target=Y, weight=W, reduction="none").loss)
    mean = run(loss=loss, pred=X, target=Y, weight=W)
    assert mean.loss == pytest.approx(none.sum() / np.sum(W), rel=1e-14)
    assert mean.denominator == np.sum(W)
    assert mean.loss != pytest.approx(none.mean())


def test_huber_weighted_mean_divides_by_numel():
    none = np.asarray(run(loss="huber", pred=X, target=Y, weight=W, reduction="none").loss)
    mean = run(loss="huber", pred=X, target=Y, weight=W)
    assert mean.loss == pytest.approx(none.mean(), rel=1e-14)
    assert mean.denominator == 8.0
    assert mean.loss != pytest.approx(none.sum() / np.sum(W))


def test_weighted_zero_weight_sum_is_nan_like_torch():
    r = run(loss="mse", pred=[1.0, 2.0], target=[0.0, 0.0], weight=[0.0, 0.0])
    assert math.isnan(r.loss)
    assert np.all(np.isnan(r.grad["pred"]))


# -- poisson ---------------------------------------------------------------------------------

def test_poisson_stirling_term_only_where_target_above_one():
    pred = np.zeros(5)
    target = [0.0, 0.5, 1.0, 1.0000001, 3.0]
    plain = np.asarray(run(loss="poisson-nll", pred=pred, target=target, reduction="none").loss)
    full = run(loss="poisson-nll", pred=pred, target=target, full=True, reduction="none")
    extra = np.asarray(full.loss) - plain
    close(extra[:3], [0.0, 0.0, 0.0], rtol=0)
    t = 1.0000001
    assert extra[3] == pytest.approx(t * math.log(t) - t + 0.5 * math.log(2 * math.pi * t), rel=1e-12)
    assert extra[3] == pytest.approx(-0.0811, abs=1e-4)
    assert extra[4] == pytest.approx(3 * math.log(3) - 3 + 0.5 * math.log(6 * math.pi), rel=1e-14)
    # the Stirling term has no gradient
    close(full.grad["pred"], run(loss="poisson-nll", pred=pred, target=target, reduction="none").grad["pred"], rtol=0)


def test_poisson_eps_is_only_used_without_log_input():
    a, t = [0.5, 2.0], [1.0, 3.0]
    r1 = run(loss="poisson-nll", pred=a, target=t, eps=1e-8)
    r2 = run(loss="poisson-nll", pred=a, target=t, eps=0.5)
    assert r1.loss == r2.loss
    r3 = run(loss="poisson-nll", pred=a, target=t, log_input=False, eps=0.5, reduction="none")
    close(r3.loss, [0.5 - 1.0 * math.log(1.0), 2.0 - 3.0 * math.log(2.5)], rtol=1e-14)


# -- gaussian --------------------------------------------------------------------------------

def test_gaussian_clamps_var_and_still_gives_var_a_gradient():
    """GAU-1: var 1e-8 is clamped to eps = 1e-6 in the value and in the gradient, and the
    gradient w.r.t. var is NOT zero there: torch clamps a clone under no_grad, so autograd
    never sees the clamp."""
    r = run(loss="gaussian-nll", pred=[1.0, 2.0, 3.0], target=[1.5, 2.0, 0.0], var=[1e-08, 0.5, 2.0], reduction="none")
    close(r.loss, [124993.09224472102, -0.34657359027997264, 2.5965735902799727], rtol=VALUE_RTOL)
    close(r.grad["pred"], [-500000.0, 0.0, 1.5], rtol=GRAD_RTOL)
    close(r.grad["var"], [-124999500000.0, 1.0, -0.875], rtol=GRAD_RTOL)
    assert r.grad["var"][0] == pytest.approx(0.5 * (1 / 1e-6 - 0.25 / 1e-12), rel=1e-12)


def test_gaussian_homoscedastic_var_per_sample():
    """GAU-2: var (N,) for input (N, D) is one variance per sample (unsqueezed to (N, 1))."""
    pred = [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]
    target = [[0.5, 1.0, 1.0], [2.0, 4.0, 7.0]]
    r = run(loss="gaussian-nll", pred=pred, target=target, var=[1.0, 2.0], full=True)
    assert r.loss == pytest.approx(1.404725328344659, rel=VALUE_RTOL)
    close(r.grad["pred"], [[-0.08333333333333333, 0.0, 0.16666666666666666],
                           [0.08333333333333333, 0.0, -0.16666666666666666]], rtol=GRAD_RTOL, atol=GRAD_ATOL)
    close(r.grad["var"], [0.14583333333333334, 0.020833333333333343], rtol=GRAD_RTOL)
    assert r.grad["var"].shape == (2,)
    # the same as the explicit per-element var, whose gradient summed per row is the per-sample one
    full = run(loss="gaussian-nll", pred=pred, target=target, var=[[1.0] * 3, [2.0] * 3], full=True)
    assert full.loss == pytest.approx(r.loss, rel=1e-14)
    close(full.grad["var"].sum(axis=1), r.grad["var"], rtol=1e-13)
    # (N, 1) is the same thing with a kept axis
    col = run(loss="gaussian-nll", pred=pred, target=target, var=[[1.0], [2.0]], full=True)
    assert col.loss == pytest.approx(r.loss, rel=1e-14)
    close(col.grad["var"], np.asarray(r.grad["var"])[:, None], rtol=1e-13)


def test_gaussian_square_homoscedastic_var_is_per_sample_not_per_column():
    """N == D: var (N,) is still unsqueezed to (N, 1) (torch checks input.shape[:-1] first)."""
    pred = np.array([[0.0, 1.0], [2.0, 3.0]])
    r = run(loss="gaussian-nll", pred=pred, target=np.zeros((2, 2)), var=[1.0, 4.0], reduction="none")
    close(r.loss, 0.5 * (np.log([[1.0], [4.0]]) + pred ** 2 / np.array([[1.0], [4.0]])), rtol=1e-14)


def test_gaussian_scalar_var_and_size_one_dimension():
    pred, target = np.array([[1.0, 2.0], [0.0, -1.0]]), np.zeros((2, 2))
    s = run(loss="gaussian-nll", pred=pred, target=target, var=0.5, reduction="sum")
    e = run(loss="gaussian-nll", pred=pred, target=target, var=np.full((2, 2), 0.5), reduction="sum")
    assert s.loss == pytest.approx(e.loss, rel=1e-14)
    assert s.grad["var"].shape == ()
    assert float(s.grad["var"]) == pytest.approx(e.grad["var"].sum(), rel=1e-13)
    row = run(loss="gaussian-nll", pred=pred, target=target, var=[[0.5, 2.0]], reduction="sum")
    assert row.grad["var"].shape == (1, 2)


@pytest.mark.parametrize("var, message", [
    ([[1.0, 1.0]], None),              # (1, 2) for (2, 3): mismatches in both dims
    ([[1.0]], None),                   # (1, 1): torch refuses it too (two mismatched dims)
    ([1.0, 1.0, 1.0], None),           # (3,) ≠ (2,)
    ([[1.0, -1.0, 1.0], [1.0, 1.0, 1.0]], "negative"),
])
def test_gaussian_var_shapes_torch_refuses(var, message):
    with pytest.raises(InputError, match=message or "incorrect size"):
        run(loss="gaussian-nll", pred=np.zeros((2, 3)), target=np.zeros((2, 3)), var=var)


def test_explain_with_broadcast_target_and_homoscedastic_var():
    r = lossctl.compute(dict(loss="gaussian-nll", pred=[[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]], target=[1.0, 1.0, 1.0],
                             var=[1.0, 2.0], reduction="none"), explain=True, rows=6, grad=True)
    var_step = next(s for s in r.steps if s.label == "variance")
    close(var_step.value, [1.0, 1.0, 1.0, 2.0, 2.0, 2.0], rtol=0)
    close(r.steps[-2].value, np.asarray(r.loss).reshape(-1), rtol=1e-14)


# -- live torch comparisons (the oracle table, tests/torch_reference.py) ------------------------

def _live_case(rng, loss: str, reduction: str, variant: int) -> dict:
    """One seeded random call: shapes 1-D to 3-D, a broadcast target, exact ties at the branch points."""
    shape = [(5,), (3, 4), (2, 3, 2)][variant % 3]
    pred = rng.normal(size=shape) * 2
    target = rng.normal(size=shape) * 2
    if variant == 3:  # a target that broadcasts against a smaller prediction
        pred = rng.normal(size=(4,)) * 2
        target = rng.normal(size=(3, 4)) * 2
    if variant == 4:  # exact ties at the branch points and zero differences
        pred = np.array([1.0, -1.0, 0.0, 0.5, 2.0, -0.25])
        target = np.array([0.0, 0.0, 0.0, 0.5, 0.0, 0.0])
    call = dict(loss=loss, pred=pred, target=target, reduction=reduction)
    if loss in ("mse", "l1", "huber") and variant in (1, 2):
        call["weight"] = rng.uniform(0.0, 2.0, size=pred.shape)
    if loss == "smooth-l1":
        call["beta"] = [1.0, 0.0, 0.4, 2.5, 1.0][variant]
    if loss == "huber":
        call["delta"] = [1.0, 0.3, 1.7, 2.5, 1.0][variant]
    if loss == "poisson-nll":
        call["target"] = np.floor(np.abs(target) * 2)  # counts, including 0 and 1
        call["log_input"] = variant % 2 == 0
        if not call["log_input"]:
            call["pred"] = np.abs(pred) + (0.0 if variant == 1 else 0.1)
        call["full"] = variant >= 2
        if variant == 3:
            call["eps"] = 0.25
    if loss == "gaussian-nll":
        call["var"] = [rng.uniform(1e-7, 2.0, size=pred.shape), rng.uniform(0.1, 2.0, size=pred.shape[:-1]),
                       rng.uniform(0.1, 2.0, size=pred.shape[:-1] + (1,)), rng.uniform(0.1, 2.0, size=(4,)),
                       np.array([1e-9, 0.5, 1e-6, 2.0, 0.0, 1.0])][variant]
        call["full"] = variant % 2 == 1
        if variant == 4:
            call["eps"] = 1e-3
    return {k: v.tolist() if isinstance(v, np.ndarray) else v for k, v in call.items()}


@pytest.mark.parametrize("loss", ["mse", "l1", "smooth-l1", "huber", "poisson-nll", "gaussian-nll"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("variant", range(5))
def test_live_torch(loss, reduction, variant):
    import torch  # noqa: F401  (installed here and in CI: a missing one fails)
    import warnings

    import test_torch_fixtures as fx
    import torch_reference as ref

    call = _live_case(np.random.default_rng(1000 * variant + len(loss) + len(reduction)), loss, reduction, variant)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch warns about broadcast targets
        expect = ref.reference(call)
    fx.check_result(run(**call), expect)


# -- command line ---------------------------------------------------------------------------------

def test_cli_mse_json_with_grad(run_cli):
    r = run_cli(["mse", "--pred", json.dumps(X), "--target", json.dumps(Y), "--json", "--grad"])
    assert r.code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["loss"] == pytest.approx(1.923125, rel=1e-14)
    close(doc["grad"]["pred"], [[-0.025, 0.25, -0.25, 0.125], [0.5, -0.75, 0.0625, -0.0625]])


def test_cli_poisson_flags(run_cli):
    argv = ["poisson-nll", "--pred", "[0.5,1.5,2.0,0.0]", "--target", "[0.5,1.0,3.0,2.0]",
            "--no-log-input", "--full", "--eps", "0.1", "--format", "plain"]
    r = run_cli(argv)
    assert r.code == 0, r.stderr
    assert float(r.stdout) == pytest.approx(2.1451638406462026, rel=1e-12)
    assert run_cli(argv + ["--expect", "2.1451638406462026"]).code == 0
    assert run_cli(argv + ["--expect", "2.2"]).code == 1


def test_cli_gaussian_var_and_errors(run_cli):
    r = run_cli(["gaussian-nll", "--pred", "[[0,1,2],[3,4,5]]", "--target", "[[0.5,1,1],[2,4,7]]",
                 "--var", "[1,2]", "--full", "--json", "--grad", "--explain"])
    assert r.code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["loss"] == pytest.approx(1.404725328344659, rel=1e-12)
    close(doc["grad"]["var"], [0.14583333333333334, 0.020833333333333343], rtol=1e-12)
    assert doc["steps"][-1]["value"] == pytest.approx(doc["loss"], rel=1e-14)
    bad = run_cli(["gaussian-nll", "--pred", "[[0,1,2],[3,4,5]]", "--target", "[[0,0,0],[0,0,0]]", "--var", "[[1,2]]"])
    assert bad.code == 3
    assert "--var" in bad.stderr and "Traceback" not in bad.stderr


@pytest.mark.parametrize("argv, code, text", [
    (["smooth-l1", "--pred", "[1,2]", "--target", "[0,0]", "--beta", "-1"], 2, "--beta"),
    (["huber", "--pred", "[1,2]", "--target", "[0,0]", "--delta", "0"], 2, "--delta"),
    (["mse", "--pred", "[1,2]", "--target", "[0,0]", "--weight", "[1,2,3]"], 3, "--weight"),
    (["mse", "--pred", "[1,2]", "--target", "[0,0,0]"], 3, "--target"),
    (["l1", "--logits", "[1,2]", "--target", "[0,0]"], 2, "--pred"),
    (["huber", "--pred", "[1,2]", "--target", "[0,0]", "--beta", "1"], 2, "--beta"),
])
def test_cli_errors(run_cli, argv, code, text):
    r = run_cli(argv)
    assert r.code == code
    assert text in r.stderr
    assert "Traceback" not in r.stderr


def test_cli_smooth_l1_explain_plain(run_cli):
    r = run_cli(["smooth-l1", "--pred", "[0.5,0.25,-2]", "--target", "[0,0,0]", "--beta", "0.5",
                 "--explain", "--format", "plain"])
    assert r.code == 0, r.stderr
    lines = r.stdout.splitlines()
    assert float(lines[0]) == pytest.approx((0.25 + 0.0625 + 1.75) / 3, rel=1e-14)
    assert any(line.startswith("quadratic branch") for line in lines)
    assert lines[-1].endswith(lines[0])
