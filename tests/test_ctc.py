"""ctc: the forward–backward recursion, torch's gradient convention, lengths, layouts, reductions, CLI.

Golden numbers are torch 2.13.0+cpu float64 values. Live torch
comparisons use values rtol 1e-10 and gradients rtol 1e-9 / atol 1e-12 (NaN equals NaN).
"""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

import lossctl
from finite_differences import central_difference_of
from lossctl.errors import InputError, UsageError

VALUE_RTOL = 1e-10
GRAD_RTOL = 1e-9
GRAD_ATOL = 1e-12


def log_softmax(x, axis: int = -1) -> np.ndarray:
    """log_softmax in closed form with plain NumPy: test inputs independent of lossctl's numerics."""
    x = np.asarray(x, dtype=np.float64)
    m = x.max(axis=axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


LOGITS = [[[0.5, 1.0, -0.5], [0.1, 0.2, 0.3]], [[1.5, -1.0, 0.0], [0.0, 2.0, -1.0]],
          [[0.3, 0.3, 0.9], [1.0, 0.0, 0.0]], [[-0.2, 0.8, 0.4], [0.5, 0.5, 0.5]]]
LP = log_softmax(np.array(LOGITS), axis=-1)
CALL = dict(target=[[1, 2], [1, 1]], input_lengths=[4, 3], target_lengths=[2, 2])

# d(loss.sum())/d logits, golden CTC-1 (through log_softmax: exact)
CTC1_LOGITS_GRAD = [
    [[0.185951040880859, -0.30790269319058783, 0.12195165230972882], [0.30060960535572717, -0.6677750064666524, 0.36716540111092527]],
    [[0.004790279880985988, -0.04643345989781908, 0.04164318001683309], [-0.8858048006154059, 0.8437947344813399, 0.04201006613406607]],
    [[0.04599266914602736, 0.13468987138000993, -0.1806825405260373], [0.576116884765829, -0.7880584423829143, 0.21194155761708539]],
    [[-0.07351016464499167, 0.4906291097984167, -0.417118945153425], [0.0, 0.0, 0.0]]]
# golden CTC-4 (target length 0 for sample 0, 'mean'), gradient w.r.t. log_probs (torch's convention)
CTC4_GRAD = [
    [[-0.3342505197879545, 0.2732746936330898, 0.060975826154864424], [0.07515240133893183, -0.16694375161666306, 0.09179135027773137]],
    [[-0.11692139672182855, 0.03144500662293376, 0.08547639009889513], [-0.2214512001538515, 0.21094868362033486, 0.010502516533516512]],
    [[-0.3691825068470097, 0.13081749315299004, 0.23836501369401988], [0.14402922119145728, -0.19701461059572858, 0.05298538940427136]],
    [[-0.4097538186324579, 0.2453145548992084, 0.16443926373324974], [0.0, 0.0, 0.0]]]


@pytest.fixture
def torch():
    import torch

    return torch


def close(actual, expected, rtol=GRAD_RTOL, atol=GRAD_ATOL):
    np.testing.assert_allclose(np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64),
                               rtol=rtol, atol=atol, equal_nan=True)


def ctc(**kw):
    return lossctl.compute(loss="ctc", **{"grad": True, **kw})


def brute_force_nll(lp_tc: np.ndarray, target: list[int], blank: int = 0) -> float:
    """−log Σ over every frame labelling that collapses to ``target`` (merge repeats, drop blanks)."""
    T, C = lp_tc.shape
    total = 0.0
    for path in itertools.product(range(C), repeat=T):
        collapsed = [c for i, c in enumerate(path) if c != blank and (i == 0 or c != path[i - 1])]
        if collapsed == list(target):
            total += np.exp(sum(lp_tc[t, c] for t, c in enumerate(path)))
    return -np.log(total) if total > 0 else np.inf


# --------------------------------------------------------------------------- values


def test_golden_ctc1_values_and_reductions():
    none = ctc(log_probs=LP, **CALL, reduction="none")
    close(none.per_sample, [1.5626356988138899, 4.823233581717581], rtol=VALUE_RTOL)
    assert ctc(log_probs=LP, **CALL, reduction="sum").loss == pytest.approx(6.3858692805314705, rel=VALUE_RTOL)
    assert ctc(log_probs=LP, **CALL).loss == pytest.approx(1.5964673201328676, rel=VALUE_RTOL)


def test_values_match_brute_force_enumeration(rng):
    lp = log_softmax(rng.normal(size=(5, 3, 3)), axis=-1)
    targets = [[1, 2], [2, 2], [1]]
    r = ctc(log_probs=lp, target=[1, 2, 2, 2, 1], input_lengths=[5, 5, 4], target_lengths=[2, 2, 1], reduction="none")
    expected = [brute_force_nll(lp[:5, 0], targets[0]), brute_force_nll(lp[:5, 1], targets[1]),
                brute_force_nll(lp[:4, 2], targets[2])]
    close(r.per_sample, expected, rtol=1e-12, atol=0)


def test_mean_divides_each_loss_by_its_clamped_target_length():
    lp = LP
    none = ctc(log_probs=lp, target=[[1, 2], [1, 1]], input_lengths=[4, 3], target_lengths=[0, 2], reduction="none")
    mean = ctc(log_probs=lp, target=[[1, 2], [1, 1]], input_lengths=[4, 3], target_lengths=[0, 2])
    assert mean.loss == pytest.approx(3.417493519231849, rel=VALUE_RTOL)  # golden CTC-4
    assert mean.loss == pytest.approx((none.per_sample[0] / 1 + none.per_sample[1] / 2) / 2, rel=1e-15)
    assert mean.loss != pytest.approx(np.mean(none.per_sample))
    close(mean.grad["log_probs"], CTC4_GRAD)
    # an empty target: only blanks, l = −Σ_t lp[t, blank]
    assert none.per_sample[0] == pytest.approx(-np.sum(lp[:, 0, 0]), rel=1e-14)


def test_repeated_labels_need_a_blank_between():
    lp = log_softmax(np.random.default_rng(5).normal(size=(4, 1, 3)), axis=-1)
    # '1 1' needs 3 frames, '1 2' only 2
    r2 = ctc(log_probs=lp, target=[[1, 1]], input_lengths=[2], target_lengths=[2], reduction="none")
    r3 = ctc(log_probs=lp, target=[[1, 1]], input_lengths=[3], target_lengths=[2], reduction="none")
    ok = ctc(log_probs=lp, target=[[1, 2]], input_lengths=[2], target_lengths=[2], reduction="none")
    assert r2.per_sample[0] == np.inf
    assert np.isfinite(r3.per_sample[0]) and np.isfinite(ok.per_sample[0])
    # with exactly L + repeats frames there is one alignment: 1, blank, 1
    assert r3.per_sample[0] == pytest.approx(-(lp[0, 0, 1] + lp[1, 0, 0] + lp[2, 0, 1]), rel=1e-14)
    assert r3.per_sample[0] == pytest.approx(brute_force_nll(lp[:3, 0], [1, 1]), rel=1e-12)


def test_padded_and_concatenated_targets_agree(rng):
    lp = log_softmax(rng.normal(size=(7, 3, 5)), axis=-1)
    tl = [3, 0, 2]
    padded = [[1, 3, 3], [-1, -1, -1], [4, 2, 9]]  # entries past each length are never read
    concat = [1, 3, 3, 4, 2]
    for reduction in ("none", "sum", "mean"):
        a = ctc(log_probs=lp, target=padded, input_lengths=[7, 6, 5], target_lengths=tl, reduction=reduction)
        b = ctc(log_probs=lp, target=concat, input_lengths=[7, 6, 5], target_lengths=tl, reduction=reduction)
        close(a.loss, b.loss, rtol=0, atol=0)
        close(a.grad["log_probs"], b.grad["log_probs"], rtol=0, atol=0)


def test_unbatched_equals_a_batch_of_one(rng):
    lp = log_softmax(rng.normal(size=(6, 4)), axis=-1)
    single = ctc(log_probs=lp, target=[1, 3], input_lengths=5, target_lengths=2, reduction="none")
    batch = ctc(log_probs=lp[:, None, :], target=[[1, 3]], input_lengths=[5], target_lengths=[2], reduction="none")
    assert np.shape(single.per_sample) == () and single.grad["log_probs"].shape == (6, 4)
    assert float(single.per_sample) == batch.per_sample[0]
    close(single.grad["log_probs"], batch.grad["log_probs"][:, 0], rtol=0, atol=0)
    assert ctc(log_probs=lp, target=[1, 3], input_lengths=5, target_lengths=2).loss == pytest.approx(
        float(single.per_sample) / 2, rel=1e-15)


def test_long_sequences_stay_finite_in_log_space(rng):
    # p(l|x) here is ~exp(−3000): a linear-space recursion underflows to 0 (loss inf); log space does not.
    T, C = 2000, 6
    lp = log_softmax(rng.normal(size=(T, 2, C)), axis=-1)
    target = rng.integers(1, C, size=(2, 40))
    r = ctc(log_probs=lp, target=target, input_lengths=[T, T - 300], target_lengths=[40, 25], reduction="none")
    assert np.all(np.isfinite(r.per_sample)) and np.all(r.per_sample > 745)  # exp(−745) underflows a double
    assert np.all(np.isfinite(r.grad["log_probs"]))
    # the occupancy of every active frame sums to 1 over the classes
    occ = np.exp(lp) - r.grad["log_probs"]
    close(occ[: T - 300].sum(axis=-1), np.ones((T - 300, 2)), rtol=1e-9, atol=0)


# --------------------------------------------------------------------------- gradients


def test_gradient_is_torchs_exp_lp_minus_occupancy():
    r = ctc(log_probs=LP, **CALL, reduction="sum")
    # golden CTC-2: gradient taken w.r.t. log_probs directly
    close(r.grad["log_probs"], CTC1_LOGITS_GRAD)
    # frames t ≥ input_length get 0
    assert not np.any(r.grad["log_probs"][3, 1])


def test_log_probs_gradient_is_not_the_partial_derivative(rng):
    # torch's (and lossctl's) gradient = exp(lp) − occupancy; the true ∂l/∂lp is −occupancy.
    lp = log_softmax(rng.normal(size=(5, 2, 3)), axis=-1)
    call = dict(target=[[1, 2], [2, 2]], input_lengths=[5, 4], target_lengths=[2, 2], reduction="sum")
    r = ctc(log_probs=lp, **call)
    g = r.grad["log_probs"]
    active = (np.arange(5)[:, None] < np.array([5, 4])[None, :])[:, :, None]

    def f(v):
        return ctc(log_probs=v, **call, grad=False).loss

    fd = central_difference_of(f, lp, relative=False)
    close(g - np.exp(lp) * active, fd, rtol=1e-6, atol=1e-8)
    assert np.max(np.abs(g - fd)) > 0.1  # the two conventions really differ
    # for normalised lp the classes of each active frame sum to 0 (softmax − occupancy)
    close(np.sum(g, axis=-1)[active[:, :, 0]], 0.0, rtol=0, atol=1e-12)


def test_logits_gradient_is_exact(rng):
    logits = rng.normal(size=(5, 2, 4))
    call = dict(target=[3, 1, 1, 2], input_lengths=[5, 5], target_lengths=[3, 1])
    r = ctc(logits=logits, **call)
    assert set(r.grad) == {"logits"} and r.kind == "logits"
    assert r.loss == pytest.approx(ctc(log_probs=log_softmax(logits, axis=-1), **call).loss, rel=1e-15)

    def f(v):
        return ctc(logits=v, **call, grad=False).loss

    fd = central_difference_of(f, logits, relative=False)
    close(r.grad["logits"], fd, rtol=1e-6, atol=1e-9)


def test_golden_ctc1_logits_gradient_mean():
    r = ctc(logits=LOGITS, **CALL)
    assert r.loss == pytest.approx(1.5964673201328676, rel=VALUE_RTOL)
    # 'mean' with both target lengths 2 and N = 2: each sequence's gradient is divided by 2·2
    close(np.asarray(r.grad["logits"]) * 4, CTC1_LOGITS_GRAD)


def test_infeasible_sample_inf_nan_and_zero_infinity():
    call = dict(target=[1, 2, 1, 1], input_lengths=[4, 2], target_lengths=[2, 2])
    r = ctc(log_probs=LP, **call, reduction="none")
    assert r.per_sample[0] == pytest.approx(1.5626356988138899, rel=VALUE_RTOL) and r.per_sample[1] == np.inf
    g = r.grad["log_probs"]
    assert np.all(np.isnan(g[:2, 1])) and not np.any(g[2:, 1])  # torch: NaN at t < T_n, 0 beyond
    assert np.all(np.isfinite(g[:, 0]))
    assert ctc(log_probs=LP, **call).loss == np.inf
    z = ctc(log_probs=LP, **call, zero_infinity=True, reduction="none")
    close(z.per_sample, [1.5626356988138899, 0.0], rtol=VALUE_RTOL)
    assert not np.any(z.grad["log_probs"][:, 1])
    close(z.grad["log_probs"][:, 0], g[:, 0], rtol=0, atol=0)
    zm = ctc(log_probs=LP, **call, zero_infinity=True)
    assert zm.loss == pytest.approx(0.39065892470347247, rel=VALUE_RTOL)  # (l0/2 + 0/2)/2
    assert ctc(log_probs=LP, **call, zero_infinity=True, reduction="sum").loss == pytest.approx(1.5626356988138899, rel=VALUE_RTOL)


def test_zero_input_length():
    r = ctc(log_probs=LP, target=[[1, 2], [1, 1]], input_lengths=[0, 0], target_lengths=[0, 2], reduction="none")
    assert r.per_sample[0] == 0.0 and np.signbit(r.per_sample[0])  # torch: −log 1 = −0.0
    assert r.per_sample[1] == np.inf
    assert not np.any(r.grad["log_probs"])  # no frame is used: no NaN either


def test_explain_steps_and_last_step():
    r = ctc(log_probs=LP, target=[1, 2, 1, 1], input_lengths=[4, 2], target_lengths=[2, 2], explain=True,
            zero_infinity=True)
    steps = {s.label: s for s in r.steps}
    assert list(steps["frames needed"].value) == [2, 3]
    assert list(steps["feasible"].value) == [1, 0]
    assert steps["target labels"].value.tolist() == [[1, 2], [1, 1]]
    assert r.steps[-1].value == pytest.approx(r.loss, rel=1e-15)
    assert steps["sum over samples"].value == pytest.approx(1.5626356988138899 / 2, rel=1e-14)
    one = ctc(log_probs=LP, **CALL, explain=True, rows=1, reduction="sum")
    assert one.shown_rows == 1 and one.total_rows == 2
    assert one.steps[-1].value == pytest.approx(one.loss, rel=1e-15)
    lg = ctc(logits=LOGITS, **CALL, explain=True)
    assert lg.steps[0].label == "log-probs" and "log_softmax" in lg.steps[0].formula


def test_float32(rng):
    lp = log_softmax(rng.normal(size=(8, 2, 4)), axis=-1)
    call = dict(target=[[1, 2, 3], [3, 3, 1]], input_lengths=[8, 7], target_lengths=[3, 2])
    r64 = ctc(log_probs=lp, **call)
    r32 = ctc(log_probs=lp, **call, dtype="float32")
    assert r32.grad["log_probs"].dtype == np.float32
    assert r32.loss == pytest.approx(r64.loss, rel=1e-5)
    close(r32.grad["log_probs"], r64.grad["log_probs"], rtol=1e-4, atol=1e-5)


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize("kw, message", [
    (dict(target=[1, 2, 1, 3], input_lengths=[4, 2], target_lengths=[2, 2]), "label 3 at index [3] is out of range"),
    (dict(target=[1, 2, 1], input_lengths=[4, 2], target_lengths=[2, 2]), "Σ target_lengths = 4 labels, got 3"),
    (dict(target=[[1], [1]], input_lengths=[4, 2], target_lengths=[2, 1]), "shorter than target length 2"),
    (dict(target=[[1, 2]], input_lengths=[4, 2], target_lengths=[2, 2]), "one row per sequence"),
    (dict(target=[1, 2, 1, 1], input_lengths=[5, 2], target_lengths=[2, 2]), "more than the 4 frames"),
    (dict(target=[1, 2, 1, 1], input_lengths=[4, -1], target_lengths=[2, 2]), "0 or more"),
    (dict(target=[1, 2, 1, 1], input_lengths=[4, 2.5], target_lengths=[2, 2]), "must be integers; found 2.5"),
    (dict(target=[1, 2, 1, 1], input_lengths=[4, 2, 1], target_lengths=[2, 2]), "one length per sequence (2)"),
    (dict(target=[1.5, 2, 1, 1], input_lengths=[4, 2], target_lengths=[2, 2]), "must be integers"),
])
def test_invalid_inputs_name_the_option(kw, message):
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[").replace("]", r"\]")):
        ctc(log_probs=LP, **kw)


def test_blank_may_appear_in_the_target_as_torch_allows(rng):
    lp = log_softmax(rng.normal(size=(4, 1, 3)), axis=-1)
    r = ctc(log_probs=lp, target=[[1, 0]], input_lengths=[4], target_lengths=[2], reduction="none")
    assert np.isfinite(r.per_sample[0])


def test_missing_aux_input_is_a_usage_error():
    with pytest.raises(UsageError, match="missing input_lengths"):
        ctc(log_probs=LP, target=[1, 2, 1, 1], target_lengths=[2, 2])
    with pytest.raises(InputError, match="target_lengths: expected numbers"):
        ctc(log_probs=LP, target=[1, 2, 1, 1], input_lengths=[4, 4], target_lengths=["a", "b"])


def test_spec_declares_its_layout():
    spec = lossctl.registry().get("ctc")
    assert spec.batch_axis == 1  # (T, N, C): not separable along axis 0
    assert spec.aux_inputs == ("input_lengths", "target_lengths")
    assert spec.inputs == ("log_probs", "logits", "target", "input_lengths", "target_lengths")


# --------------------------------------------------------------------------- torch, live


def _torch_ctc(torch, lp, target, il, tl, *, blank, reduction, zero_infinity, logits=False):
    F = torch.nn.functional
    x = torch.tensor(lp, dtype=torch.float64, requires_grad=True)
    inp = F.log_softmax(x, dim=-1) if logits else x
    out = F.ctc_loss(inp, torch.tensor(target, dtype=torch.long), torch.tensor(il, dtype=torch.long),
                     torch.tensor(tl, dtype=torch.long), blank=blank, reduction=reduction, zero_infinity=zero_infinity)
    (out if out.dim() == 0 else out.sum()).backward()
    return out.detach().numpy(), x.grad.numpy()


def _random_case(rng, *, batched=True, concat=False):
    T, C, N, S = int(rng.integers(3, 10)), int(rng.integers(3, 7)), int(rng.integers(1, 5)), 4
    blank = int(rng.choice([0, C - 1, 1]))
    labels = [c for c in range(C) if c != blank]
    tl = rng.integers(0, S + 1, size=N)
    il = rng.integers(0, T + 1, size=N)
    il[0] = T
    padded = rng.choice(labels, size=(N, S))
    if rng.random() < 0.5:  # force repeated labels
        padded[:, 1] = padded[:, 0]
    lp = log_softmax(rng.normal(scale=2.0, size=(T, N, C)), axis=-1)
    if rng.random() < 0.2:
        lp = rng.normal(size=(T, N, C))  # unnormalised: torch does not check
    if concat:
        target = np.concatenate([padded[i, : tl[i]] for i in range(N)]).astype(np.int64)
    else:
        target = padded
    if not batched:
        return lp[:, 0], target[0][: tl[0]] if not concat else target[: tl[0]], int(il[0]), int(tl[0]), blank
    return lp, target, il, tl, blank


@pytest.mark.parametrize("seed", range(40))
def test_matches_torch_live_random(torch, seed):
    rng = np.random.default_rng(1000 + seed)
    batched = seed % 5 != 4
    lp, target, il, tl, blank = _random_case(rng, batched=batched, concat=seed % 2 == 1)
    for zero_infinity in (False, True):
        for reduction in ("mean", "sum", "none"):
            value, grad = _torch_ctc(torch, lp, target, il, tl, blank=blank, reduction=reduction, zero_infinity=zero_infinity)
            r = ctc(log_probs=lp, target=target, input_lengths=il, target_lengths=tl, blank=blank,
                    reduction=reduction, zero_infinity=zero_infinity)
            assert np.shape(r.loss) == np.shape(value)
            close(r.loss, value, rtol=VALUE_RTOL, atol=1e-13)
            close(r.grad["log_probs"], grad)


@pytest.mark.parametrize("seed", range(12))
def test_blank_inside_targets_matches_torch_live(torch, seed):
    # torch documents that targets must not contain the blank but accepts them; its backward then
    # overwrites (not adds) the blank's occupancy at the last frame. lossctl reproduces the numbers.
    rng = np.random.default_rng(3000 + seed)
    T, N, C = 7, 3, 4
    blank = int(rng.integers(0, C))
    lp = log_softmax(rng.normal(scale=2.0, size=(T, N, C)), axis=-1)
    target = rng.integers(0, C, size=(N, 3))
    target[:, -1] = blank  # the last label is the blank: the case where torch's bookkeeping differs
    il, tl = [T, T - 1, 5], [3, int(rng.integers(1, 4)), 2]
    for reduction in ("sum", "none"):
        value, grad = _torch_ctc(torch, lp, target, il, tl, blank=blank, reduction=reduction, zero_infinity=True)
        r = ctc(log_probs=lp, target=target, input_lengths=il, target_lengths=tl, blank=blank,
                reduction=reduction, zero_infinity=True)
        close(r.loss, value, rtol=VALUE_RTOL, atol=1e-13)
        close(r.grad["log_probs"], grad)


@pytest.mark.parametrize("seed", range(8))
def test_logits_match_torch_through_log_softmax(torch, seed):
    rng = np.random.default_rng(2000 + seed)
    lp, target, il, tl, blank = _random_case(rng, concat=seed % 2 == 0)
    logits = rng.normal(scale=3.0, size=lp.shape)
    value, grad = _torch_ctc(torch, logits, target, il, tl, blank=blank, reduction="mean", zero_infinity=True, logits=True)
    r = ctc(logits=logits, target=target, input_lengths=il, target_lengths=tl, blank=blank, zero_infinity=True)
    close(r.loss, value, rtol=VALUE_RTOL, atol=1e-13)
    close(r.grad["logits"], grad)


def test_long_sequence_matches_torch_live(torch):
    rng = np.random.default_rng(11)
    T, C = 1500, 5
    lp = log_softmax(rng.normal(size=(T, 2, C)), axis=-1)
    target = rng.integers(1, C, size=(2, 30))
    target[0, 5:9] = 2  # runs of repeats
    il, tl = [T, 900], [30, 12]
    for reduction in ("sum", "none"):
        value, grad = _torch_ctc(torch, lp, target, il, tl, blank=0, reduction=reduction, zero_infinity=False)
        r = ctc(log_probs=lp, target=target, input_lengths=il, target_lengths=tl, reduction=reduction)
        close(r.loss, value, rtol=VALUE_RTOL, atol=0)
        close(r.grad["log_probs"], grad)


def test_edge_cases_match_torch_live(torch):
    cases = [
        dict(target=[[1, 2], [1, 1], [2, 2]], input_lengths=[0, 4, 4], target_lengths=[0, 2, 0]),
        dict(target=[[1, 2], [1, 1], [2, 2]], input_lengths=[0, 4, 4], target_lengths=[1, 2, 0]),
        dict(target=[[1, 0], [1, 1], [2, 2]], input_lengths=[4, 4, 4], target_lengths=[2, 2, 0]),  # blank inside
        dict(target=[[2, 2], [1, 1], [2, 1]], input_lengths=[1, 3, 2], target_lengths=[1, 2, 2]),
    ]
    lp = log_softmax(np.random.default_rng(0).normal(size=(4, 3, 3)), axis=-1)
    for case in cases:
        for zero_infinity in (False, True):
            value, grad = _torch_ctc(torch, lp, case["target"], case["input_lengths"], case["target_lengths"],
                                     blank=0, reduction="none", zero_infinity=zero_infinity)
            r = ctc(log_probs=lp, **case, reduction="none", zero_infinity=zero_infinity)
            close(r.loss, value, rtol=VALUE_RTOL, atol=0)
            assert list(np.signbit(r.loss)) == list(np.signbit(value))
            close(r.grad["log_probs"], grad)


# --------------------------------------------------------------------------- CLI


def test_cli_json_grad_and_explain(run_cli, tmp_path):
    np.save(tmp_path / "lp.npy", LP)
    args = ["ctc", "--log-probs", tmp_path / "lp.npy", "-t", "[[1,2],[1,1]]", "--input-lengths", "[4,3]",
            "--target-lengths", "[2,2]"]
    res = run_cli(args + ["--json", "--grad", "--explain", "--per-sample"])
    assert res.code == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["loss"] == pytest.approx(1.5964673201328676, rel=VALUE_RTOL)
    assert list(doc["grad"]) == ["log_probs"]
    close(np.array(doc["grad"]["log_probs"]) * 4, np.asarray(CTC1_LOGITS_GRAD))
    close(doc["per_sample"], [1.5626356988138899, 4.823233581717581], rtol=VALUE_RTOL)
    assert doc["steps"][-1]["value"] == doc["loss"]
    plain = run_cli(args + ["-r", "sum"])
    assert plain.code == 0 and float(plain.stdout) == pytest.approx(6.3858692805314705, rel=VALUE_RTOL)
    check = run_cli(args + ["-r", "sum", "--expect", "6.3858692805314705", "--rtol", "1e-12"])
    assert check.code == 0
    table = run_cli(args + ["--explain", "--format", "table"])
    assert table.code == 0 and "feasible" in table.stdout


def test_cli_csv_groups_gradients_by_sequence(run_cli, tmp_path):
    # the batch axis of (T, N, C) is 1: each CSV row must hold its own sequence's gradient
    np.save(tmp_path / "lp.npy", LP)
    res = run_cli(["ctc", "--log-probs", tmp_path / "lp.npy", "-t", "[1,2,1,1]", "--input-lengths", "[4,2]",
                   "--target-lengths", "[2,2]", "-r", "none", "--grad", "-f", "csv"])
    assert res.code == 0, res.stderr
    lines = res.stdout.strip().splitlines()
    assert len(lines) == 3
    row0 = [float(v) for v in lines[1].split(",")[2:]]
    row1 = lines[2].split(",")[2:]
    r = ctc(log_probs=LP, target=[1, 2, 1, 1], input_lengths=[4, 2], target_lengths=[2, 2], reduction="none")
    close(row0, r.grad["log_probs"][:, 0].ravel(), rtol=0, atol=0)
    assert row1[:6] == ["nan"] * 6 and row1[6:] == ["0.0"] * 6


def test_cli_logits_and_errors(run_cli, tmp_path):
    np.save(tmp_path / "z.npy", np.array(LOGITS))
    base = ["ctc", "--logits", tmp_path / "z.npy", "-t", "[[1,2],[1,1]]", "--input-lengths", "[4,3]"]
    res = run_cli(base + ["--target-lengths", "[2,2]", "--json", "--grad"])
    assert res.code == 0, res.stderr
    doc = json.loads(res.stdout)
    assert list(doc["grad"]) == ["logits"]
    close(np.array(doc["grad"]["logits"]) * 4, np.asarray(CTC1_LOGITS_GRAD))
    missing = run_cli(base)
    assert missing.code == 2 and "--target-lengths" in missing.stderr
    bad = run_cli(base + ["--target-lengths", "[2,7]"])
    assert bad.code == 3 and bad.stderr.startswith("error: --target [[1,2],[1,1]]:")
    blank = run_cli(base + ["--target-lengths", "[2,2]", "--blank", "5"])
    assert blank.code == 2 and "--blank" in blank.stderr  # a parameter out of range: usage, as every option
    with pytest.raises(UsageError, match="blank: 3 is not a class"):
        ctc(log_probs=LP, target=[1, 2, 1, 1], input_lengths=[4, 2], target_lengths=[2, 2], blank=3)
    both = run_cli(base + ["--target-lengths", "[2,2]", "--log-probs", tmp_path / "z.npy"])
    assert both.code == 2
    shape = run_cli(["ctc", "--log-probs", "[[[[0.0]]]]", "-t", "[1]", "--input-lengths", "1", "--target-lengths", "1"])
    assert shape.code == 3 and "--log-probs" in shape.stderr


def test_list_shows_ctc_inputs_in_contract_order(run_cli):
    res = run_cli(["list", "--format", "json"])
    rows = {r["name"]: r for r in json.loads(res.stdout)}
    assert rows["ctc"]["inputs"] == ["log_probs", "logits", "target", "input_lengths", "target_lengths"]
    params = {p["name"]: p["default"] for p in rows["ctc"]["params"]}
    assert params["blank"] == 0 and params["zero_infinity"] is False
