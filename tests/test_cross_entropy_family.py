"""The cross-entropy family (ce, nll, bce, bce-logits, kl): seeds, conventions, gradients.

Values quoted here come from torch 2.13.0 float64 (golden cases CE-*, NLL-*, BCE-*,
BCEL-*, KL-*) or from the losses' worked examples; where lossctl is more accurate than
torch the test says so and uses the exact value. The properties every loss has
(gradients, reductions, --explain, float32, permutation, streaming) are tests/test_common.py's.
"""

from __future__ import annotations

import numpy as np
import pytest

import lossctl
from lossctl.errors import InputError, UsageError

SEED_LOGITS = [[10.0, 0.0, -10.0], [8.0, 8.0, 8.0]]
CUBE = [[[1.0, 2.0], [3.0, 5.0]], [[4.0, 7.0], [4.0, 6.0]]]


def loss(**call):
    return lossctl.compute(call, grad=True).loss


# -- the seeds' worked examples ------------------------------------------------

@pytest.mark.parametrize("call, expected", [
    # exact value 0.549328844814193302...; torch prints 0.5493288448141934 (1 ulp high)
    (dict(loss="ce", logits=SEED_LOGITS, target=[0, 2]), 0.5493288448141933),
    (dict(loss="bce", probs=[[0.6, 0.1], [0.3, 0.8]], target=[[0, 1], [1, 0]]), 1.5080716354070594),
    (dict(loss="bce-logits", logits=[[0.6, 0.1], [0.3, 0.8]], target=[[0, 1], [1, 0]]), 0.8518351302439404),
    (dict(loss="bce", logits=[[0.6, 0.1], [0.3, 0.8]], target=[[0, 1], [1, 0]]), 0.8518351302439404),
    (dict(loss="nll", log_probs=[[2, 3, 1], [3, 7, 9]], target=[1, 2]), -6.0),
    (dict(loss="nll", log_probs=[[[2, 3], [1, 5]], [[3, 7], [1, 9]]], target=[[1, 1], [0, 0]]), -4.0),
    (dict(loss="ce", logits=CUBE, target=[[0, 0], [1, 1]]), 1.7954810576737206),
    (dict(loss="ce", logits=CUBE, target=[[0, 0], [1, 1]], weight=[1, 9]), 1.1616597587660116),
    (dict(loss="bce-logits", logits=[5, 3, 10, -5, -3, -10], target=[1, 1, 1, 0, 0, 0]), 0.018449366320692506),
])
def test_seed_examples(call, expected):
    assert loss(**call) == pytest.approx(expected, rel=1e-14, abs=0)


def test_ce_equals_nll_of_log_softmax_and_kl_batchmean_of_one_hot():
    """Seed S4: the three ways the blog computes 0.5493."""
    x = np.array(SEED_LOGITS)
    lp = x - np.log(np.sum(np.exp(x), axis=1, keepdims=True))
    one_hot = np.eye(3)[[0, 2]]
    ce = loss(loss="ce", logits=x, target=[0, 2])
    assert loss(loss="nll", log_probs=lp, target=[0, 2]) == pytest.approx(ce, rel=1e-12)
    assert loss(loss="kl", log_probs=lp, target=one_hot, reduction="batchmean") == pytest.approx(ce, rel=1e-12)
    assert loss(loss="kl", logits=x, target=one_hot, reduction="batchmean") == pytest.approx(ce, rel=1e-12)


# -- cross-entropy conventions ------------------------------------------------

def test_ce_weighted_mean_divides_by_sum_of_target_weights():
    r = lossctl.compute(loss="ce", logits=CUBE, target=[[0, 0], [1, 1]], weight=[1, 9], reduction="none", grad=True)
    per = np.asarray(r.loss)
    w = np.array([[1, 1], [9, 9]])
    assert loss(loss="ce", logits=CUBE, target=[[0, 0], [1, 1]], weight=[1, 9]) == pytest.approx(per.sum() / w.sum(), rel=1e-14)
    assert per.mean() != pytest.approx(per.sum() / w.sum())


def test_ce_all_ignored_mean_is_nan_with_zero_gradient():
    r = lossctl.compute(loss="ce", logits=[[1.0, 2.0, 3.0], [0.0, 0.0, 1.0]], target=[-100, -100], grad=True)
    assert np.isnan(r.loss)
    np.testing.assert_array_equal(r.grad["logits"], np.zeros((2, 3)))
    assert lossctl.compute(loss="ce", logits=[[1.0, 2.0, 3.0]], target=[-100], reduction="sum", grad=True).loss == 0.0


def test_ce_zero_weight_sum_gives_nan_gradient_on_counted_rows_only():
    r = lossctl.compute(loss="ce", logits=[[1.0, 2.0], [0.5, 0.0]], target=[0, -100], weight=[0.0, 1.0], grad=True)
    assert np.isnan(r.loss)
    assert np.all(np.isnan(r.grad["logits"][0]))
    np.testing.assert_array_equal(r.grad["logits"][1], [0.0, 0.0])


def test_ce_ignore_index_may_be_a_valid_class():
    r = lossctl.compute(loss="ce", logits=[[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]], target=[1, 0], ignore_index=1, grad=True)
    assert r.loss == pytest.approx(3.0658839037574293, rel=1e-14)
    np.testing.assert_array_equal(r.grad["logits"][0], [0.0, 0.0, 0.0])


def test_ce_label_smoothing_without_weight_equals_smoothed_probability_target():
    x = np.array([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]])
    eps = 0.1
    t = (1 - eps) * np.eye(3)[[1, 2]] + eps / 3
    a = lossctl.compute(loss="ce", logits=x, target=[1, 2], label_smoothing=eps, grad=True)
    b = lossctl.compute(loss="ce", logits=x, target=t, grad=True)
    assert a.loss == pytest.approx(0.4234596772660204, rel=1e-13)
    assert a.loss == pytest.approx(b.loss, rel=1e-13)
    np.testing.assert_allclose(a.grad["logits"], b.grad["logits"], rtol=1e-12, atol=1e-15)


def test_ce_probability_target_mean_ignores_weights_in_denominator():
    r = lossctl.compute(loss="ce", logits=[[1.0, 2.0, 0.5], [0.0, -1.0, 3.0], [2.0, 2.0, 2.0]],
                        target=[[0.2, 0.7, 0.1], [0.0, 0.0, 1.0], [0.5, 0.5, 0.0]], weight=[0.5, 2.0, 1.0], label_smoothing=0.2, grad=True)
    assert r.loss == pytest.approx(1.0308155388411229, rel=1e-13)


def test_ce_unbatched_gives_scalar_even_for_none():
    r = lossctl.compute(loss="ce", logits=[1.0, 2.0, 3.0], target=2, reduction="none", grad=True)
    assert np.ndim(r.loss) == 0
    assert float(r.loss) == pytest.approx(0.4076059644443804, rel=1e-14)
    assert r.grad["logits"].shape == (3,)


def test_ce_kdim_matches_flattened_positions():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 4, 3, 5))
    t = rng.integers(0, 4, size=(2, 3, 5))
    kdim = lossctl.compute(loss="ce", logits=x, target=t, grad=True)
    flat = lossctl.compute(loss="ce", logits=np.moveaxis(x, 1, -1).reshape(-1, 4), target=t.reshape(-1), grad=True)
    assert kdim.loss == pytest.approx(flat.loss, rel=1e-13)
    np.testing.assert_allclose(np.moveaxis(kdim.grad["logits"], 1, -1).reshape(-1, 4), flat.grad["logits"], rtol=1e-12)


def test_dim_option_moves_the_class_dimension():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(3, 5, 4))  # (N, L, C): classes last
    t = rng.integers(0, 4, size=(3, 5))
    moved = lossctl.compute(loss="ce", logits=x, target=t, dim=-1, grad=True)
    ref = lossctl.compute(loss="ce", logits=np.moveaxis(x, -1, 1), target=t, grad=True)
    assert moved.loss == pytest.approx(ref.loss, rel=1e-14)
    np.testing.assert_allclose(moved.grad["logits"], np.moveaxis(ref.grad["logits"], 1, -1), rtol=1e-13)


def test_ce_probs_and_log_probs_are_the_nll_of_log_p():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(4, 3))
    p = np.exp(x) / np.exp(x).sum(axis=1, keepdims=True)
    t = np.array([0, 2, 1, 1])
    by_logits = lossctl.compute(loss="ce", logits=x, target=t, grad=True)
    by_probs = lossctl.compute(loss="ce", probs=p, target=t, grad=True)
    by_log = lossctl.compute(loss="ce", log_probs=np.log(p), target=t, grad=True)
    assert by_probs.loss == pytest.approx(by_logits.loss, rel=1e-13)
    assert by_log.loss == pytest.approx(by_logits.loss, rel=1e-13)
    # d/dp of −mean log p_y is −1/(N·p_y) at the target, 0 elsewhere
    expected = np.zeros_like(p)
    expected[np.arange(4), t] = -1 / (4 * p[np.arange(4), t])
    np.testing.assert_allclose(by_probs.grad["probs"], expected, rtol=1e-13)


def test_ce_extreme_logits_stay_finite():
    r = lossctl.compute(loss="ce", logits=[[1e300, -1e300, 0.0], [-1e300, 1e300, 1e300]], target=[1, 2], grad=True)
    assert np.isfinite(r.loss) and r.loss == pytest.approx(1e300 + np.log(2) / 2, rel=1e-15)
    assert np.all(np.isfinite(r.grad["logits"]))


# -- bce ----------------------------------------------------------------------

def test_bce_clamps_log_at_minus_100_and_torch_backward_eps():
    r = lossctl.compute(loss="bce", probs=[[0.0, 1.0, 0.25], [1.0, 0.0, 0.5]], target=[[1.0, 0.0, 0.5], [1.0, 0.0, 0.0]],
                        weight=[2.0, 1.0, 0.5], reduction="none", grad=True)
    np.testing.assert_allclose(r.loss, [[200.0, 100.0, 0.4184941083929179], [0.0, 0.0, 0.34657359027997264]], rtol=1e-14)
    np.testing.assert_allclose(r.grad["probs"], [[-2000000007991.6057, 1000000003995.8029, -0.6666666666666666], [0.0, 0.0, 1.0]], rtol=1e-14)


def test_bce_weight_broadcasts_and_mean_divides_by_numel():
    r = lossctl.compute(loss="bce", probs=[[0.3, 0.2], [0.6, 0.9]], target=[[1.0, 0.0], [0.0, 1.0]], weight=[[1.0], [2.0]], grad=True)
    assert r.loss == pytest.approx(0.8676047126760271, rel=1e-14)


def test_bce_logits_pos_weight_broadcasts_along_last_dim():
    r = lossctl.compute(loss="bce-logits", logits=[[1.0, -2.0, 0.5], [0.0, 3.0, -1.0]], target=[[1.0, 0.0, 1.0], [0.0, 1.0, 0.5]],
                        weight=[[1.0], [2.0]], pos_weight=[2.0, 3.0, 0.5], grad=True)
    assert r.loss == pytest.approx(0.6063668133348581, rel=1e-13)
    np.testing.assert_allclose(r.grad["logits"], [[-0.08964714045666504, 0.019867153670352924, -0.03146172239984545],
                                                   [0.16666666666666666, -0.0474258731775666, -0.016097977990834556]], rtol=1e-12)


def test_bce_logits_is_more_accurate_than_torch_for_very_negative_logits():
    # torch: (1−y)·x − logsigmoid(x) = 9.237055564881302e-14 at x=−30, y=0 (cancellation);
    # exact: log1p(exp(−30)) = 9.357622968840175e-14
    r = lossctl.compute(loss="bce-logits", logits=[-200.0, 200.0, 0.0, -30.0], target=[1.0, 0.0, 0.5, 0.0], reduction="none", grad=True)
    np.testing.assert_allclose(r.loss, [200.0, 200.0, np.log(2), np.log1p(np.exp(-30.0))], rtol=1e-15)


# -- kl -----------------------------------------------------------------------

KL_INPUT = [[-1.2, -0.5, -2.0], [-0.1, -3.0, -2.5]]
KL_TARGET = [[0.2, 0.8, 0.0], [0.6, 0.1, 0.3]]


@pytest.mark.parametrize("reduction, expected", [
    ("sum", 0.3516518516050323), ("mean", 0.058608641934172055), ("batchmean", 0.17582592580251616)])
def test_kl_reductions(reduction, expected):
    assert loss(loss="kl", log_probs=KL_INPUT, target=KL_TARGET, reduction=reduction) == pytest.approx(expected, rel=1e-14)


def test_kl_zero_target_contributes_exactly_zero():
    r = lossctl.compute(loss="kl", log_probs=KL_INPUT, target=KL_TARGET, reduction="none", grad=True)
    assert r.loss[0, 2] == 0.0


def test_kl_log_target():
    assert loss(loss="kl", log_probs=KL_INPUT, target=[[-1.6, -0.25, -3.0], [-0.5, -2.3, -1.2]],
                reduction="batchmean", log_target=True) == pytest.approx(0.1416379612044485, rel=1e-14)


def test_batchmean_only_for_kl():
    with pytest.raises(UsageError, match="batchmean"):
        lossctl.compute(loss="ce", logits=SEED_LOGITS, target=[0, 2], reduction="batchmean", grad=True)


# -- invalid calls -------------------------------------------------------------

@pytest.mark.parametrize("call, error, match", [
    (dict(loss="ce", logits=SEED_LOGITS, target=[0, 3]), InputError, "class index 3 is out of range for 3 classes \\(row 1\\)"),
    (dict(loss="ce", logits=SEED_LOGITS, target=[0, -1]), InputError, "negative class index -1"),
    (dict(loss="ce", logits=SEED_LOGITS, target=[0, 1.5]), InputError, "must be integers"),
    (dict(loss="ce", logits=SEED_LOGITS, target=[0, 1, 2]), InputError, "fits neither"),
    (dict(loss="ce", logits=SEED_LOGITS, target=[0, 1], weight=[1, 2]), InputError, "one weight per class"),
    (dict(loss="ce", logits=SEED_LOGITS, target=[0, 1], label_smoothing=1.5), UsageError, "between 0.0 and 1.0"),
    (dict(loss="nll", log_probs=SEED_LOGITS, target=[[0, 1, 0], [1, 0, 0]]), InputError, "needs class indices"),
    (dict(loss="bce", probs=[0.5, 1.5], target=[0, 1]), InputError, "between 0 and 1"),
    (dict(loss="bce", probs=[0.5, 0.5], target=[0, 1, 1]), InputError, "does not match"),
    (dict(loss="nll", logits=SEED_LOGITS, target=[0, 1]), UsageError, "does not take logits"),
    (dict(loss="ce", logits=SEED_LOGITS, probs=SEED_LOGITS, target=[0, 1]), UsageError, "exactly one"),
    (dict(loss="ce", target=[0, 1]), UsageError, "missing prediction"),
    (dict(loss="ce", logits=SEED_LOGITS, target=[0, 1], margin=1.0), UsageError, "does not take 'margin'"),
])
def test_invalid_calls_name_the_problem(call, error, match):
    with pytest.raises(error, match=match):
        lossctl.compute(call, grad=True)


def test_probs_with_zero_non_target_entries_have_a_finite_gradient():
    """torch's log backward gives 0·(1/0) = NaN there; the derivative of the loss is 0 (README)."""
    r = lossctl.compute(loss="nll", probs=[[0.0, 0.5, 0.5]], target=[1], grad=True)
    assert r.loss == pytest.approx(np.log(2), rel=1e-15)
    np.testing.assert_array_equal(r.grad["probs"], [[0.0, -2.0, 0.0]])
