"""The margin family: soft-margin, multilabel-soft-margin, multilabel-margin, multi-margin,
margin-ranking, hinge-embedding, hinge, exponential.

Golden values are torch 2.13.0 float64 (cases SM-*, MLSM-*, MLM-*, MM-*, MR-*, HE-*).
The properties every loss has (gradients, reductions, --explain, float32, streaming)
are tests/test_common.py's; the comparisons here run torch (the oracle table,
tests/torch_reference.py) where the conventions differ: exactly at the kinks, and at
the edges (skipped without torch).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import lossctl
from lossctl.errors import InputError, UsageError

MM_X = [[0.1, 0.2, 0.4, 0.8], [0.5, -0.3, 0.9, 0.0]]


def compute(**call):
    return lossctl.compute(call, grad=True)


# -- golden cases (torch 2.13 float64) -------------------------------------------------------

GOLDEN = {
    "SM-1": (dict(loss="soft-margin", pred=[[0.5, -1.0], [2.0, 0.0]], target=[[1.0, 1.0], [-1.0, 1.0]]),
             1.151853465825312, {"pred": [[-0.09438516719953637, -0.18276464465750122], [0.2201992694944706, -0.125]]}),
    "SM-2": (dict(loss="soft-margin", pred=[3.0, -0.2, 0.7], target=[-1.0, -1.0, 1.0], reduction="sum"),
             4.0499122698407914, {"pred": [0.9525741268224333, 0.4501660026875221, -0.33181222783183395]}),
    "MLSM-1": (dict(loss="multilabel-soft-margin", logits=[[0.5, -1.0, 2.0], [0.0, 1.0, -2.0]],
                    target=[[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]]),
               0.6746005936437405, {"logits": [[-0.0629234447996909, 0.04482357022833251, -0.019867153670352924],
                                               [0.08333333333333333, -0.04482357022833251, -0.14679951299631372]]}),
    "MLSM-2": (dict(loss="multilabel-soft-margin", logits=[[0.5, -1.0, 2.0], [0.0, 1.0, -2.0]],
                    target=[[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]], weight=[1.0, 2.0, 0.5], reduction="none"),
               [0.38802145491267964, 0.7943781870392925],
               {"logits": [[-0.1258468895993818, 0.17929428091333005, -0.019867153670352924],
                           [0.16666666666666666, -0.17929428091333005, -0.14679951299631372]]}),
    "MLM-1": (dict(loss="multilabel-margin", pred=[[0.1, 0.2, 0.4, 0.8]], target=[[3, 0, -1, 1]]),
              0.8500000000000001, {"pred": [[-0.5, 0.5, 0.5, -0.5]]}),
    "MLM-2": (dict(loss="multilabel-margin", pred=MM_X, target=[[3, 0, -1, 1], [2, 2, -1, 0]]),
              0.6000000000000001, {"pred": [[-0.25, 0.25, 0.25, -0.25], [0.25, 0.0, -0.5, 0.25]]}),
    "MLM-3": (dict(loss="multilabel-margin", pred=[[1.0, -1.0, 0.3, 0.2, 0.0], [0.0] * 5],
                   target=[[0, 2, -1, 4, 4], [4, 3, 2, 1, 0]], reduction="none"),
              [0.36, 0.0], {"pred": [[-0.2, 0.0, -0.4, 0.4, 0.2], [0.0] * 5]}),
    "MM-1": (dict(loss="multi-margin", pred=MM_X, target=[3, 0]),
             0.42499999999999993, {"pred": [[0.125, 0.125, 0.125, -0.375], [-0.375, 0.125, 0.125, 0.125]]}),
    "MM-2": (dict(loss="multi-margin", pred=MM_X, target=[3, 0], p=2, margin=2.0, weight=[1.0, 2.0, 3.0, 4.0]),
             4.286250000000001, {"pred": [[1.3, 1.4, 1.6, -4.300000000000001], [-1.275, 0.3, 0.6, 0.375]]}),
    "MM-3": (dict(loss="multi-margin", pred=MM_X, target=[3, 0], margin=0.5, reduction="sum"),
             0.25, {"pred": [[0.0, 0.0, 0.25, -0.25], [-0.25, 0.0, 0.25, 0.0]]}),
    "MM-4": (dict(loss="multi-margin", pred=[0.1, 0.2, 0.4, 0.8], target=3),
             0.32499999999999996, {"pred": [0.25, 0.25, 0.25, -0.75]}),
    "MR-1": (dict(loss="margin-ranking", x1=[1.0, 2.0, 3.0, 0.0], x2=[2.0, 2.0, 1.0, 0.5],
                  target=[1.0, -1.0, 1.0, -1.0], margin=0.5),
             0.5, {"x1": [-0.25, 0.25, -0.0, 0.25], "x2": [0.25, -0.25, 0.0, -0.25]}),
    "MR-2": (dict(loss="margin-ranking", x1=[1.5, 0.2], x2=[1.5, -0.1], target=[1.0, -1.0], reduction="none"),
             [0.0, 0.30000000000000004], {"x1": [-1.0, 1.0], "x2": [1.0, -1.0]}),
    "HE-1": (dict(loss="hinge-embedding", pred=[0.3, 1.5, -0.2, 0.7, 1.0], target=[1.0, -1.0, -1.0, 1.0, -1.0]),
             0.44000000000000006, {"pred": [0.2, 0.0, -0.2, 0.2, -0.2]}),
    "HE-2": (dict(loss="hinge-embedding", pred=[0.3, 1.5, -0.2, 0.7], target=[1.0, -1.0, 0.0, 2.0], margin=2.0,
                  reduction="none"),
             [0.3, 0.5, 2.0, 2.0], {"pred": [1.0, -1.0, 0.0, 0.0]}),
}


@pytest.mark.parametrize("case_id", list(GOLDEN))
def test_golden_values_and_gradients(case_id):
    call, value, grads = GOLDEN[case_id]
    r = lossctl.compute(call, grad=True)
    np.testing.assert_allclose(r.loss, value, rtol=1e-13, atol=0)
    assert set(r.grad) == set(grads)
    for name, g in grads.items():
        np.testing.assert_allclose(r.grad[name], g, rtol=1e-12, atol=1e-15)


def test_every_margin_loss_is_registered_with_its_contract_inputs():
    rows = {r["name"]: r for r in json.loads(_list_json())}
    expected = {
        "soft-margin": ["pred", "target"],
        "multilabel-soft-margin": ["logits", "target"],
        "multilabel-margin": ["pred", "target"],
        "multi-margin": ["pred", "target"],
        "margin-ranking": ["x1", "x2", "target"],
        "hinge-embedding": ["pred", "target"],
        "hinge": ["pred", "target"],
        "exponential": ["pred", "target"],
    }
    for name, inputs in expected.items():
        assert rows[name]["inputs"] == inputs, name
    params = {name: {p["name"]: p["default"] for p in rows[name]["params"]} for name in expected}
    assert params["multi-margin"] == {"p": 1, "margin": 1.0, "weight": None, "reduction": "mean"}
    assert params["margin-ranking"]["margin"] == 0.0
    assert params["hinge-embedding"]["margin"] == 1.0
    assert "weight" in params["multilabel-soft-margin"]
    assert "margin" not in params["multilabel-margin"]  # fixed at 1 in torch


def _list_json() -> str:
    from lossctl.cli.list import registry_rows

    return json.dumps(registry_rows())


# -- sub-gradient conventions: clamp_min (>= 0) versus ATen's strict z > 0 ------------------

def test_hinge_passes_the_gradient_at_the_kink_like_clamp_min():
    r = compute(loss="hinge", pred=[1.0, -1.0, 0.5, 2.0], target=[1, -1, 1, 0], reduction="none")
    np.testing.assert_array_equal(r.loss, [0.0, 0.0, 0.5, 3.0])
    np.testing.assert_array_equal(r.grad["pred"], [-1.0, 1.0, -1.0, 1.0])  # 1 − y·a == 0 for the first two
    r = compute(loss="hinge", pred=[1.0 + 1e-15, 2.0], target=[1, 1], reduction="none")
    np.testing.assert_array_equal(r.grad["pred"], [0.0, 0.0])  # just past the kink: nothing


def test_margin_ranking_gradient_at_zero_argument():
    r = compute(loss="margin-ranking", x1=[1.0, 2.0, 0.0], x2=[1.0, 1.5, 0.25], target=[1, 1, -1], reduction="sum")
    assert r.loss == 0.0
    np.testing.assert_array_equal(r.grad["x1"], [-1.0, 0.0, 0.0])
    np.testing.assert_array_equal(r.grad["x2"], [1.0, 0.0, 0.0])


def test_hinge_embedding_gradient_at_the_margin():
    r = compute(loss="hinge-embedding", pred=[1.0, 2.0, 0.5], target=[-1, -1, -1], reduction="none")
    np.testing.assert_array_equal(r.loss, [0.0, 0.0, 0.5])
    np.testing.assert_array_equal(r.grad["pred"], [-1.0, 0.0, -1.0])


def test_multi_margin_is_strict_at_zero():
    # z = 1 − 2 + 1 = 0 for class 0 and z = 1 − 2 + 0 < 0 for class 1: no term, no gradient
    r = compute(loss="multi-margin", pred=[[1.0, 0.0, 2.0]], target=[2], reduction="none")
    np.testing.assert_array_equal(r.loss, [0.0])
    np.testing.assert_array_equal(r.grad["pred"], [[0.0, 0.0, 0.0]])
    # the same scores with a margin a hair larger count the term
    r = compute(loss="multi-margin", pred=[[1.0, 0.0, 2.0]], target=[2], margin=1.0 + 2 ** -20, reduction="sum")
    assert r.grad["pred"][0, 0] == pytest.approx(1 / 3, rel=1e-15)


def test_multilabel_margin_is_strict_at_zero():
    # target {0}: z = 1 − 1 + 0 = 0 for class 1 (not counted), z = 1 − 1 + 2 = 2 for class 2
    r = compute(loss="multilabel-margin", pred=[[1.0, 0.0, 2.0]], target=[[0, -1, 2]], reduction="sum")
    assert r.loss == pytest.approx(2 / 3, rel=1e-15)
    np.testing.assert_allclose(r.grad["pred"], [[-1 / 3, 0.0, 1 / 3]], rtol=1e-15)


# -- loss-specific behaviour -----------------------------------------------------------------

def test_multilabel_margin_lists_end_at_the_first_minus_one_and_repeat_counts():
    base = compute(loss="multilabel-margin", pred=MM_X[:1], target=[[3, 0, -1, 1]], reduction="none")
    same = compute(loss="multilabel-margin", pred=MM_X[:1], target=[[3, 0, -1, 2]], reduction="none")
    np.testing.assert_array_equal(base.loss, same.loss)  # what follows the −1 is ignored
    once = compute(loss="multilabel-margin", pred=[MM_X[1]], target=[[2, -1, 0, 0]], reduction="sum")
    thrice = compute(loss="multilabel-margin", pred=[MM_X[1]], target=[[2, 2, 2, -1]], reduction="sum")
    assert thrice.loss == pytest.approx(3 * once.loss, rel=1e-15)
    np.testing.assert_allclose(thrice.grad["pred"], 3 * once.grad["pred"], rtol=1e-15)
    empty = compute(loss="multilabel-margin", pred=[[0.1, 0.2, 0.4]], target=[[-1, 0, 1]], reduction="none")
    np.testing.assert_array_equal(empty.loss, [0.0])
    np.testing.assert_array_equal(empty.grad["pred"], np.zeros((1, 3)))


def test_multilabel_margin_matches_its_definition_on_random_rows(rng):
    for _ in range(20):
        c = int(rng.integers(2, 7))
        a = rng.normal(size=c)
        k = int(rng.integers(0, c + 1))
        listed = list(rng.integers(0, c, size=k))
        target = listed + ([-1] if k < c else []) + list(rng.integers(-1, c, size=max(0, c - k - 1)))
        ys = set(listed)
        expected = sum(max(0.0, 1 - a[j] + a[i]) for j in listed for i in range(c) if i not in ys) / c
        r = compute(loss="multilabel-margin", pred=a, target=target, reduction="none")
        assert np.ndim(r.loss) == 0
        assert float(r.loss) == pytest.approx(expected, rel=1e-13, abs=1e-15)


def test_nan_scores_are_skipped_by_the_strict_kernels_as_in_torch():
    nan = float("nan")
    mm = compute(loss="multi-margin", pred=[[0.1, nan, 0.4, 0.8]], target=[3])
    mlm = compute(loss="multilabel-margin", pred=[[0.1, nan, 0.4, 0.8]], target=[[3, -1, 0, 0]])
    for r in (mm, mlm):  # torch 2.13: 0.225 and [0.25, 0, 0.25, -0.5] for both
        assert r.loss == pytest.approx(0.225, rel=1e-14)
        np.testing.assert_allclose(r.grad["pred"], [[0.25, 0.0, 0.25, -0.5]], rtol=1e-14)


def test_multi_margin_weight_is_indexed_by_target_after_the_power():
    a = np.array(MM_X)
    w = np.array([1.0, 2.0, 3.0, 4.0])
    r = compute(loss="multi-margin", pred=a, target=[3, 0], p=2, margin=2.0, weight=w, reduction="none")
    for n, y in enumerate([3, 0]):
        terms = [max(0.0, 2.0 - a[n, y] + a[n, i]) ** 2 for i in range(4) if i != y]
        assert r.loss[n] == pytest.approx(w[y] * sum(terms) / 4, rel=1e-14)


def test_multi_margin_sum_still_divides_each_sample_by_c():
    a = np.array(MM_X)
    per = compute(loss="multi-margin", pred=a, target=[3, 0], reduction="none").loss
    by_hand = [sum(max(0.0, 1 - a[n, y] + a[n, i]) for i in range(4) if i != y) / 4 for n, y in enumerate([3, 0])]
    np.testing.assert_allclose(per, by_hand, rtol=1e-14)
    assert compute(loss="multi-margin", pred=a, target=[3, 0], reduction="sum").loss == pytest.approx(sum(by_hand))


def test_multi_margin_class_dimension_and_unbatched_input():
    a = np.array(MM_X)
    r = compute(loss="multi-margin", pred=a, target=[3, 0], reduction="none")
    t = compute(loss="multi-margin", pred=a.T, target=[3, 0], dim=0, reduction="none")
    np.testing.assert_array_equal(t.loss, r.loss)
    np.testing.assert_array_equal(t.grad["pred"], r.grad["pred"].T)
    u = compute(loss="multi-margin", pred=a[1], target=0, reduction="none")
    assert np.shape(u.loss) == () and float(u.loss) == r.loss[1]
    assert u.grad["pred"].shape == (4,)


def test_multilabel_soft_margin_divides_by_c_not_by_the_weights():
    z = np.array([[0.5, -1.0, 2.0], [0.0, 1.0, -2.0]])
    t = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]])
    w = np.array([1.0, 2.0, 0.5])
    r = compute(loss="multilabel-soft-margin", logits=z, target=t, weight=w, reduction="none")
    sig = 1 / (1 + np.exp(-z))
    per_class = -(t * np.log(sig) + (1 - t) * np.log(1 - sig))
    np.testing.assert_allclose(r.loss, (w * per_class).sum(axis=1) / 3, rtol=1e-14)


def test_unweighted_multilabel_soft_margin_mean_equals_bce_with_logits(rng):
    z = rng.normal(size=(6, 4)) * 3
    t = rng.integers(0, 2, size=(6, 4)).astype(float)
    a = compute(loss="multilabel-soft-margin", logits=z, target=t)
    b = compute(loss="bce-logits", logits=z, target=t)
    assert a.loss == pytest.approx(b.loss, rel=1e-14)
    np.testing.assert_allclose(a.grad["logits"], b.grad["logits"], rtol=1e-13)


def test_multilabel_soft_margin_stays_finite_for_huge_logits():
    r = compute(loss="multilabel-soft-margin", logits=[[1e4, -1e4, 0.0]], target=[[0, 1, 1]], reduction="none")
    np.testing.assert_allclose(r.loss, [(2e4 + np.log(2)) / 3], rtol=1e-15)
    np.testing.assert_allclose(r.grad["logits"], [[1 / 3, -1 / 3, -1 / 6]], rtol=1e-15)


def test_soft_margin_is_finite_where_torch_overflows():
    # torch 2.13 evaluates log(1 + exp(1000)) = inf with a NaN gradient; softplus gives the exact values
    r = compute(loss="soft-margin", pred=[-1000.0, 1000.0, 30.0], target=[1, -1, 1], reduction="none")
    np.testing.assert_array_equal(r.loss[:2], [1000.0, 1000.0])
    np.testing.assert_array_equal(r.grad["pred"][:2], [-1.0, 1.0])
    assert r.loss[2] == pytest.approx(np.exp(-30.0), rel=1e-14)  # log1p(e^-30), no cancellation
    assert r.grad["pred"][2] == pytest.approx(-np.exp(-30.0) / (1 + np.exp(-30.0)), rel=1e-14)


def test_hinge_and_exponential_read_zero_labels_as_minus_one(rng):
    a = rng.normal(size=(3, 4))
    y01 = rng.integers(0, 2, size=(3, 4)).astype(float)
    ypm = 2 * y01 - 1
    for name in ("hinge", "exponential"):
        r01 = compute(loss=name, pred=a, target=y01, reduction="none")
        rpm = compute(loss=name, pred=a, target=ypm, reduction="none")
        np.testing.assert_array_equal(r01.loss, rpm.loss)
        np.testing.assert_array_equal(r01.grad["pred"], rpm.grad["pred"])
    np.testing.assert_allclose(compute(loss="hinge", pred=a, target=ypm, reduction="none").loss,
                               np.maximum(0, 1 - ypm * a), rtol=1e-15)
    e = compute(loss="exponential", pred=a, target=ypm, reduction="none")
    np.testing.assert_allclose(e.loss, np.exp(-ypm * a), rtol=1e-15)
    np.testing.assert_allclose(e.grad["pred"], -ypm * e.loss, rtol=1e-15)


def test_hinge_embedding_other_targets_add_both_terms():
    r = compute(loss="hinge-embedding", pred=[0.3, 0.3, 0.3, 1.5], target=[1, -1, 0, 2], reduction="none")
    np.testing.assert_allclose(r.loss, [0.3, 0.7, 1.0, 1.5], rtol=1e-15)
    np.testing.assert_array_equal(r.grad["pred"], [1.0, -1.0, 0.0, 1.0])


def test_margin_ranking_is_antisymmetric_in_its_inputs(rng):
    x1, x2 = rng.normal(size=7), rng.normal(size=7)
    y = rng.choice([-1.0, 1.0], size=7)
    a = compute(loss="margin-ranking", x1=x1, x2=x2, target=y, margin=0.3, reduction="none")
    b = compute(loss="margin-ranking", x1=x2, x2=x1, target=-y, margin=0.3, reduction="none")
    np.testing.assert_array_equal(a.loss, b.loss)
    np.testing.assert_array_equal(a.grad["x1"], b.grad["x2"])
    np.testing.assert_array_equal(a.grad["x2"], b.grad["x1"])
    np.testing.assert_array_equal(a.grad["x1"], -a.grad["x2"])


def test_empty_batch_mean_is_nan_and_sum_is_zero():
    for call in (dict(loss="multi-margin", pred=np.zeros((0, 3)), target=np.zeros(0, dtype=int)),
                 dict(loss="multilabel-margin", pred=np.zeros((0, 3)), target=np.zeros((0, 3), dtype=int)),
                 dict(loss="multilabel-soft-margin", logits=np.zeros((0, 3)), target=np.zeros((0, 3))),
                 dict(loss="hinge", pred=np.zeros(0), target=np.zeros(0))):
        assert np.isnan(lossctl.compute(call, grad=True).loss), call["loss"]
        r = lossctl.compute({**call, "reduction": "sum"}, grad=True)
        assert r.loss == 0.0 and next(iter(r.grad.values())).shape == np.shape(call.get("pred", call.get("logits")))


@pytest.mark.parametrize("call, error, match", [
    (dict(loss="multi-margin", pred=MM_X, target=[3, 4]), InputError, "class index 4 is out of range for 4 classes"),
    (dict(loss="multi-margin", pred=MM_X, target=[3, -100]), InputError, "negative class index -100"),  # no ignore_index
    (dict(loss="multi-margin", pred=MM_X, target=[3, 0.5]), InputError, "must be integers"),
    (dict(loss="multi-margin", pred=MM_X, target=[[0, 0, 0, 1], [1, 0, 0, 0]]), InputError, "needs class indices"),
    (dict(loss="multi-margin", pred=MM_X, target=[3, 0], p=3), UsageError, "p: only p = 1 and p = 2"),
    (dict(loss="multi-margin", pred=MM_X, target=[3, 0], weight=[1, 2]), InputError, "weight: expected one weight per class"),
    (dict(loss="multi-margin", pred=np.zeros((2, 4, 2)), target=np.zeros((2, 2))), InputError, "shape \\(C,\\) or \\(N, C\\)"),
    (dict(loss="multilabel-margin", pred=MM_X, target=[[3, 0, -1, 4], [0, -1, 0, 0]]), InputError,
     "found 4 at index \\[0, 3\\]"),
    (dict(loss="multilabel-margin", pred=MM_X, target=[[3, -2, -1, 0], [0, -1, 0, 0]]), InputError, "found -2"),
    (dict(loss="multilabel-margin", pred=MM_X, target=[[3, 0.5, -1, 0], [0, -1, 0, 0]]), InputError, "integers"),
    (dict(loss="multilabel-margin", pred=MM_X, target=[3, 0]), InputError, "does not match the prediction's shape"),
    (dict(loss="multilabel-soft-margin", logits=MM_X, target=[[1, 0, 0, 1]] * 2, weight=[1, 2, 3]), InputError,
     "weight: shape \\(3,\\) does not broadcast"),
    (dict(loss="multilabel-soft-margin", logits=MM_X, target=[1, 0]), InputError, "does not match"),
    (dict(loss="multilabel-soft-margin", pred=MM_X, target=[[1, 0, 0, 1]] * 2), UsageError, "does not take pred"),
    (dict(loss="hinge", pred=[0.5, 0.2], target=[1, 0.5]), InputError, "target: labels must be -1 or 1.*found 0.5 at index \\[1\\]"),
    (dict(loss="exponential", pred=[0.5, 0.2], target=[2, 1]), InputError, "labels must be -1 or 1"),
    (dict(loss="soft-margin", pred=[0.5, 0.2], target=[[1, 1], [1, -1]]), InputError, "does not broadcast to the prediction"),
    (dict(loss="margin-ranking", x1=[1.0, 2.0], x2=[1.0, 2.0, 3.0], target=[1, 1]), InputError, "x2: shape \\(3,\\) does not match x1"),
    (dict(loss="margin-ranking", x1=[1.0, 2.0], target=[1, 1]), UsageError, "missing x2"),
    (dict(loss="margin-ranking", x2=[1.0, 2.0], target=[1, 1]), UsageError, "missing prediction: give one of x1"),
    (dict(loss="margin-ranking", pred=[1.0, 2.0], x2=[1.0, 2.0], target=[1, 1]), UsageError, "does not take pred"),
    (dict(loss="margin-ranking", x1=[1.0], x2=[1.0], target=[1], p=2), UsageError, "does not take 'p'"),
])
def test_invalid_calls_name_the_problem(call, error, match):
    with pytest.raises(error, match=match):
        lossctl.compute(call, grad=True)


# -- PyTorch at the kinks and edges (the oracle table's torch definitions) ----------------------

def _check_against_torch(call: dict) -> None:
    import torch  # noqa: F401  (installed here and in CI: a missing one fails)
    import test_torch_fixtures as fx
    import torch_reference as ref

    case = {k: np.asarray(v).tolist() if isinstance(v, np.ndarray) else v for k, v in call.items()}
    fx.check_result(lossctl.compute(case, grad=True), ref.reference(case))


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("loss", ["multi-margin", "multilabel-margin", "margin-ranking", "hinge-embedding", "hinge"])
def test_matches_torch_on_exact_kinks(loss, seed):
    """Integer-valued scores put many hinge arguments exactly at 0, where the conventions differ."""
    rng = np.random.default_rng(100 + seed)
    ints = lambda *s: rng.integers(-2, 3, size=s).astype(float)  # noqa: E731
    pm1 = lambda *s: rng.choice([-1.0, 1.0], size=s)  # noqa: E731
    call = {
        "multi-margin": lambda: dict(pred=ints(6, 4), target=rng.integers(0, 4, size=6), p=int(rng.integers(1, 3)),
                                     weight=rng.uniform(0.5, 2.0, size=4)),
        "multilabel-margin": lambda: dict(pred=ints(6, 4), target=np.where(rng.uniform(size=(6, 4)) < 0.3, -1,
                                                                           rng.integers(0, 4, size=(6, 4)))),
        "margin-ranking": lambda: dict(x1=ints(10), x2=ints(10), target=pm1(10), margin=1.0),
        "hinge-embedding": lambda: dict(pred=ints(10), target=pm1(10)),
        "hinge": lambda: dict(pred=ints(10), target=pm1(10)),
    }[loss]()
    _check_against_torch({"loss": loss, **call, "reduction": ["mean", "sum", "none"][seed % 3]})


@pytest.mark.parametrize("call", [
    dict(loss="multi-margin", pred=[0.1, 0.2, 0.4, 0.8], target=1, p=2, weight=[1.0, 2.0, 3.0, 4.0], reduction="sum"),
    dict(loss="multi-margin", pred=[[0.1, 0.2, 0.4, 0.8]], target=[0], margin=-0.5),
    dict(loss="multilabel-margin", pred=[0.1, 0.2, 0.4, 0.8], target=[3, 0, -1, 1], reduction="none"),
    dict(loss="multilabel-soft-margin", logits=[0.5, -1.0, 2.0], target=[0.3, 0.5, 0.9], weight=[1.0, 0.0, 2.0]),
    dict(loss="soft-margin", pred=[30.0, -30.0, 700.0], target=[-1.0, -1.0, 1.0], reduction="none"),
    dict(loss="soft-margin", pred=[0.5, -1.0, 2.0], target=[0.0, 0.5, 2.0]),
    dict(loss="exponential", pred=[30.0, -30.0], target=[1.0, 1.0], reduction="sum"),
    dict(loss="hinge-embedding", pred=[[0.3, 1.5], [-0.2, 0.7]], target=[[1.0, 0.0], [2.0, -1.0]], margin=0.5),
], ids=lambda c: c["loss"])
def test_matches_torch_on_edge_cases(call):
    _check_against_torch(call)


# -- the command line ------------------------------------------------------------------------

def test_cli_margin_ranking_reports_both_gradients(run_cli):
    res = run_cli(["margin-ranking", "--x1", "[1,2,3,0]", "--x2", "[2,2,1,0.5]", "-t", "[1,-1,1,-1]",
                   "--margin", "0.5", "--json", "--grad", "--per-sample"])
    assert res.code == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["loss_name"] == "margin-ranking" and doc["loss"] == 0.5
    assert doc["per_sample"] == [1.5, 0.5, 0.0, 0.0]
    assert doc["grad"] == {"x1": [-0.25, 0.25, -0.0, 0.25], "x2": [0.25, -0.25, 0.0, -0.25]}


def test_cli_help_shows_the_losses_own_inputs(run_cli):
    res = run_cli(["margin-ranking", "--help"])
    assert res.code == 0
    assert "--x1" in res.stdout and "--x2" in res.stdout and "--logits" not in res.stdout
    res = run_cli(["multi-margin", "--help"])
    assert "--p " in res.stdout and "--margin" in res.stdout and "--weight" in res.stdout


def test_cli_multi_margin_with_parameters_and_expect(run_cli):
    base = ["multi-margin", "--pred", json.dumps(MM_X), "-t", "[3,0]", "--p", "2", "--margin", "2",
            "--weight", "[1,2,3,4]"]
    res = run_cli(base + ["--expect", "4.286250000000001", "--expect-grad",
                          "[[1.3,1.4,1.6,-4.3],[-1.275,0.3,0.6,0.375]]"])
    assert res.code == 0, res.stderr
    assert float(res.stdout) == pytest.approx(4.286250000000001, rel=1e-15)
    res = run_cli(base + ["--expect", "4.2"])
    assert res.code == 1
    assert "4.2" in res.stderr


def test_cli_explain_and_files(run_cli, tmp_path):
    np.save(tmp_path / "a.npy", np.array([0.3, -0.7, 1.5, -2.0]))
    (tmp_path / "y.csv").write_text("y\n1\n0\n0\n1\n")
    res = run_cli(["hinge", "--pred", tmp_path / "a.npy", "-t", f"{tmp_path / 'y.csv'}:y", "--explain", "--json"])
    assert res.code == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["loss"] == pytest.approx(1.625, rel=1e-15)
    labels = [s["label"] for s in doc["steps"]]
    assert labels[:3] == ["prediction", "target", "label"] and labels[-1] == "loss (mean)"
    assert doc["steps"][2]["value"] == [1.0, -1.0, -1.0]


@pytest.mark.parametrize("argv, code, message", [
    (["hinge", "--pred", "[0.5,0.2]", "-t", "[1,0.5]"], 3, "error: --target [1,0.5]: labels must be -1 or 1"),
    (["multi-margin", "--pred", "[[1,2],[3,4]]", "-t", "[0,2]"], 3, "class index 2 is out of range for 2 classes (row 1)"),
    (["multi-margin", "--pred", "[[1,2],[3,4]]", "-t", "[0,1]", "--p", "3"], 2, "--p"),
    (["margin-ranking", "--x1", "[1,2]", "-t", "[1,1]"], 2, "missing --x2"),
    (["margin-ranking", "--x1", "[1,2]", "--x2", "[1]", "-t", "[1,1]"], 3, "--x2 [1]: shape (1,) does not match"),
    (["soft-margin", "--logits", "[1,2]", "-t", "[1,1]"], 2, "does not take --logits"),
])
def test_cli_errors(run_cli, argv, code, message):
    res = run_cli(argv)
    assert res.code == code
    assert message in res.stderr
    assert "Traceback" not in res.stderr and res.stdout == ""
