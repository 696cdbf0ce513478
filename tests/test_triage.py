"""lossctl.core.triage: the K largest losses, their histogram, and why a loss is not finite."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import lossctl
from lossctl.errors import ref
from lossctl.core.triage import histogram, rank_order, top_samples, why_not_finite


def _compute(call):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return lossctl.compute(call, grad=False)


def test_rank_order_nan_first_then_inf_then_descending_ties_by_position():
    v = np.array([1.0, np.nan, 3.0, np.inf, 3.0, -np.inf, np.nan])
    assert list(rank_order(v, 10)) == [1, 6, 3, 2, 4, 0, 5]
    rng = np.random.default_rng(1)
    w = rng.standard_normal(1000)
    assert list(rank_order(w, 7)) == list(np.argsort(-w, kind="stable")[:7])


def test_top_class_losses_in_the_input_s_own_layout():
    rng = np.random.default_rng(2)
    logits = rng.standard_normal((3, 5, 4))  # (B, T, V): classes last, --dim -1
    target = rng.integers(0, 4, size=(3, 5))
    call = {"loss": "ce", "logits": logits, "target": target, "dim": -1, "reduction": "none"}
    r = _compute(call)
    rows = top_samples(call, r, 4)
    per = r.per_sample
    assert per.shape == (3, 5)
    expected = [np.unravel_index(i, per.shape) for i in np.argsort(-per.ravel(), kind="stable")[:4]]
    assert [row.index for row in rows] == [tuple(map(int, e)) for e in expected]
    for row in rows:
        assert row.loss == per[row.index]
        assert row.target == target[row.index]
        assert row.predicted == int(np.argmax(logits[row.index])) and row.predicted_is_class


def test_top_class_dim_1_and_probability_targets():
    rng = np.random.default_rng(3)
    probs = rng.dirichlet(np.ones(3), size=6)
    t = rng.dirichlet(np.ones(3), size=6)
    call = {"loss": "ce", "probs": probs, "target": t}
    r = _compute(call)
    rows = top_samples(call, r, 2)
    best = np.argsort(-r.per_sample, kind="stable")[:2]
    assert [row.index for row in rows] == [(int(i),) for i in best]
    assert [row.predicted for row in rows] == [int(np.argmax(probs[i])) for i in best]
    assert [row.target for row in rows] == [int(np.argmax(t[i])) for i in best]


def test_top_regression_values_and_broadcast_target():
    pred = np.array([[1.0, 5.0], [2.0, -3.0]])
    call = {"loss": "l1", "pred": pred, "target": np.array([0.5, 0.0])}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = lossctl.compute(call, grad=False)
    rows = top_samples(call, r, 3)
    assert [row.index for row in rows] == [(0, 1), (1, 1), (1, 0)]
    assert [(row.target, row.predicted) for row in rows] == [(0.0, 5.0), (0.0, -3.0), (0.5, 2.0)]
    assert not rows[0].predicted_is_class


def test_top_pairs_have_no_single_prediction():
    call = {"loss": "cosine-embedding", "x1": [[1.0, 0.0], [0.0, 1.0]], "x2": [[0.0, 1.0], [0.0, 1.0]], "target": [1, 1]}
    rows = top_samples(call, _compute(call), 1)
    assert rows[0].index == (0,) and rows[0].target == 1 and rows[0].predicted is None


@pytest.mark.parametrize("n", [1, 7, 1000])
def test_histogram_is_numpy_s(n):
    rng = np.random.default_rng(n)
    v = rng.exponential(size=n)
    v[: n // 10] = np.nan
    h = histogram(v)
    finite = v[np.isfinite(v)]
    counts, edges = np.histogram(finite, bins=min(20, finite.size))
    assert h.counts == list(counts) and h.edges == list(edges)
    assert h.nonfinite == n // 10 and h.total == n


def test_histogram_of_nothing_finite():
    h = histogram(np.array([np.nan, np.inf]))
    assert h.counts == [] and h.nonfinite == 2


def _causes(call):
    r = _compute(call)
    report = why_not_finite(call, r)
    assert report is not None
    return report, " | ".join(" ; ".join(s.causes) for s in report.samples)


def test_finite_losses_need_no_explanation():
    call = {"loss": "ce", "logits": [[1.0, 2.0]], "target": [0]}
    assert why_not_finite(call, _compute(call)) is None


def test_log_of_zero_probability_names_sample_and_class():
    report, text = _causes({"loss": "ce", "probs": [[0.2, 0.8, 0.0], [0.5, 0.25, 0.25], [0.5, 0.5, 0.0]],
                            "target": [0, 1, 2]})
    assert report.count == 1 and report.samples[0].index == (2,) and report.samples[0].value == np.inf
    assert "log(0)" in text and "class 2" in text and "log-probabilities" in text


def test_inf_minus_inf_in_the_log_sum_exp():
    report, text = _causes({"loss": "ce", "logits": [[0.0, 1.0], [np.inf, 0.0]], "target": [0, 1]})
    assert report.samples[0].index == (1,) and np.isnan(report.samples[0].value)
    assert "inf − inf" in text and "log-sum-exp" in text and "class 0" in text


def test_zero_times_inf_with_probability_targets():
    _, text = _causes({"loss": "ce", "probs": [[0.5, 0.5, 0.0]], "target": [[0.5, 0.5, 0.0]]})
    assert "0 · inf" in text and "class 2" in text


def test_every_target_ignored_is_an_empty_mean():
    report, text = _causes({"loss": "ce", "logits": [[1.0, 2.0], [0.0, 0.0]], "target": [-100, -100]})
    assert report.count == 0 and report.samples[0].index is None
    assert "every target is ignored" in text and "0/0" in text


def test_float32_overflow_is_named_when_float64_is_finite():
    report, text = _causes({"loss": "mse", "pred": [1.0, 3e19], "target": [0.0, 0.0], "dtype": "float32"})
    assert report.samples[0].index == (1,)
    assert "overflow in float32" in text and "squared error" in text
    _, text64 = _causes({"loss": "mse", "pred": [1.0, 1e200], "target": [0.0, 0.0]})
    assert "overflow" in text64 and "float32" not in text64


def test_inputs_that_are_not_finite_are_named():
    _, text = _causes({"loss": "bce-logits", "logits": [0.0, np.nan], "target": [1.0, 0.0]})
    assert f"{ref('logits')} is NaN" in text  # a key reference: the CLI spells it --logits
    _, text = _causes({"loss": "mse", "pred": [np.inf], "target": [np.inf]})
    assert "inf − inf" in text and "difference" in text


def test_only_the_first_few_samples_are_walked():
    probs = np.full((50, 2), 0.5)
    probs[::2, 0] = 0.0
    report = why_not_finite({"loss": "nll", "probs": probs, "target": np.zeros(50, dtype=int)},
                            _compute({"loss": "nll", "probs": probs, "target": np.zeros(50, dtype=int)}))
    assert report.count == 25 and [s.index for s in report.samples] == [(0,), (2,), (4,)]
