"""The losses with no torch function: focal, sce, zero-one.

References: the original FocalLoss and SCELoss (symmetric cross entropy) write-ups and
their worked numbers (S7, S8), torchvision.ops.sigmoid_focal_loss (golden FOC-*), and
the textbook 0-1 loss. The live comparisons run the oracle table's torch transcriptions
(tests/torch_reference.py) over the parameters' range; the properties every loss has
(gradients, reductions, --explain, float32, streaming) are tests/test_common.py's.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import lossctl
from lossctl.errors import InputError, UsageError

VALUE_RTOL = 1e-10
GRAD_RTOL, GRAD_ATOL = 1e-9, 1e-12
A = -math.log(1e-4)  # the RCE constant: −log of the clamped one-hot's zeros

FOC_X = [[1.2, -0.4, 3.0], [-2.0, 0.0, 0.7]]
FOC_Y = [[1.0, 0.0, 0.0], [1.0, 1.0, 0.0]]
SCE_LOGITS = [[2.0, 1.0, 0.1], [0.5, 2.5, -1.0]]  # examples/sce/logits.tsv


def run(**call):
    return lossctl.compute(call, grad=True)


def close(actual, expected, rtol=1e-13, atol=0.0):
    np.testing.assert_allclose(np.asarray(actual, dtype=float), np.asarray(expected, dtype=float), rtol=rtol, atol=atol)


def logit(p):
    p = np.asarray(p, dtype=float)
    return np.log(p) - np.log1p(-p)


# -- focal: the worked numbers of the probability-space focal loss --------------------------------------------------------

EASY, HARD, Y_TRUE = [[0.9], [0.1]], [[0.5], [0.5]], [[1.0], [0.0]]


@pytest.mark.parametrize("pred, focal, bce", [
    (EASY, 0.0005268025782891313, 0.1053605156578263),   # blog: 0.0005 vs 0.1054
    (HARD, 0.08664339756999316, 0.6931471805599453),     # blog: 0.0866 vs 0.6931
])
def test_focal_seed_easy_and_hard_samples(pred, focal, bce):
    f = run(loss="focal", probs=pred, target=Y_TRUE, alpha=0.75, gamma=2)
    b = run(loss="bce", probs=pred, target=Y_TRUE)
    assert f.loss == pytest.approx(focal, rel=1e-12)
    assert b.loss == pytest.approx(bce, rel=1e-12)
    assert round(f.loss, 4) == {0.0005268025782891313: 0.0005, 0.08664339756999316: 0.0866}[focal]
    # through torchvision's logit API: the same number at z = logit(p)
    z = run(loss="focal", logits=logit(pred), target=Y_TRUE, alpha=0.75, gamma=2)
    assert z.loss == pytest.approx(focal, rel=1e-12)


def test_focal_seed_relative_down_weighting():
    """The blog's point: easy samples keep ~0.5% of their BCE, hard ones ~12.5%."""
    def ratio(pred):
        return run(loss="focal", probs=pred, target=Y_TRUE, alpha=0.75, gamma=2).loss / run(
            loss="bce", probs=pred, target=Y_TRUE).loss
    assert ratio(EASY) == pytest.approx(0.0005268025782891313 / 0.1053605156578263, rel=1e-12)
    assert ratio(HARD) == pytest.approx(0.125, rel=1e-12)  # mean a_t = (0.75 + 0.25)/2, times (1 − 0.5)² = 0.25
    assert ratio(EASY) < 0.006 < 0.12 < ratio(HARD)


def test_focal_probs_gradient_is_the_logits_gradient_through_the_sigmoid():
    p = np.array([[0.9, 0.2], [0.35, 0.6]])
    y = np.array([[1.0, 0.0], [1.0, 0.3]])
    gp = run(loss="focal", probs=p, target=y, reduction="sum").grad["probs"]
    gz = run(loss="focal", logits=logit(p), target=y, reduction="sum").grad["logits"]
    close(gz, gp * p * (1 - p), rtol=1e-12)
    # the golden gradient for the easy samples (examples/seeds.yaml pins it too)
    close(run(loss="focal", probs=EASY, target=Y_TRUE, alpha=0.75, gamma=2).grad["probs"],
          [[-0.012068705341003634], [0.004022901780334545]], rtol=1e-12)


# -- focal: torchvision golden cases and conventions ----------------------------------------

@pytest.mark.parametrize("params, reduction, value, grad", [
    (dict(alpha=0.25, gamma=2), "mean", 0.4942422328340079,
     [[-0.0014202330728366012, 0.02044518063251996, 0.14084373507936102],
      [-0.04486307210202008, -0.012428616464166096, 0.07814923695422049]]),
    (dict(alpha=-1, gamma=1.5), "sum", 5.599862970662725,
     [[-0.059579579692522575, 0.21914884916780414, 1.0872482492780404],
      [-1.0424703514867157, -0.36057509719698944, 0.664863448561674]]),
    (dict(alpha=0.75, gamma=0), "sum", 3.4787154074205002,
     [[-0.17360641237573685, 0.100328084971887, 0.23814353170560834],
      [-0.6605978084834119, -0.375, 0.16704694304204154]]),
])
def test_focal_torchvision_golden(params, reduction, value, grad):
    r = run(loss="focal", logits=FOC_X, target=FOC_Y, reduction=reduction, **params)
    assert r.loss == pytest.approx(value, rel=VALUE_RTOL)
    close(r.grad["logits"], grad, rtol=GRAD_RTOL, atol=GRAD_ATOL)


def test_focal_defaults_are_torchvisions_with_mean_reduction():
    r = run(loss="focal", logits=FOC_X, target=FOC_Y)
    assert r.reduction == "mean"
    assert r.loss == pytest.approx(0.4942422328340079, rel=VALUE_RTOL)  # alpha 0.25, gamma 2 (FOC-2)
    close(run(loss="focal", logits=FOC_X, target=FOC_Y, reduction="none").loss,
          [[0.003526719717193413, 0.061966443165175945, 2.0747103307689474],
           [0.41251954485535225, 0.04332169878499658, 0.3694086597123815]], rtol=VALUE_RTOL)


def test_focal_negative_alpha_disables_weighting_and_gamma_zero_is_bce():
    for kind, x, bce_loss in (("logits", FOC_X, "bce-logits"), ("probs", [[0.7, 0.2, 0.99], [0.1, 0.5, 0.6]], "bce")):
        f = run(loss="focal", target=FOC_Y, alpha=-1, gamma=0, reduction="none", **{kind: x})
        b = run(loss=bce_loss, target=FOC_Y, reduction="none", **{kind: x})
        close(f.loss, b.loss, rtol=1e-14)
        close(f.grad[kind], b.grad[kind], rtol=1e-14)
    # alpha = 0.5 is exactly half of no weighting; any negative alpha is "no weighting"
    half = np.asarray(run(loss="focal", logits=FOC_X, target=FOC_Y, alpha=0.5, reduction="none").loss)
    off = np.asarray(run(loss="focal", logits=FOC_X, target=FOC_Y, alpha=-0.1, reduction="none").loss)
    close(half, 0.5 * off, rtol=1e-15)


def test_focal_probs_at_zero_and_one_use_torchs_log_clamp():
    r = run(loss="focal", probs=[0.0, 1.0], target=[1.0, 0.0], alpha=-1, gamma=2, reduction="none")
    close(r.loss, [100.0, 100.0], rtol=0)  # (1 − p_t)^γ = 1, BCE = 100 (log clamped at −100)
    assert np.all(np.isfinite(r.grad["probs"]))


def test_focal_saturated_logits_stay_finite_where_torch_gives_nan():
    """Deliberate divergence: for |z| ≳ 37 torch's 1 − p_t = 1 − σ(z) is exactly 0, so with
    γ < 1 its pow backward gives 0·∞ = NaN (torch 2.13: grad [nan, nan] for z = [50, −50]).
    lossctl evaluates 1 − p_t = σ(−z) without cancellation: the exact, tiny gradient."""
    r = run(loss="focal", logits=[50.0, -50.0], target=[1.0, 0.0], alpha=0.25, gamma=0.5, reduction="none")
    s = math.exp(-50.0)  # σ(−50) to double precision (1 + e⁻⁵⁰ rounds to 1)
    close(r.loss, [0.25 * s * s ** 0.5, 0.75 * s * s ** 0.5], rtol=1e-12)
    assert np.all(np.isfinite(r.grad["logits"]))
    assert r.grad["logits"][0] < 0 < r.grad["logits"][1]


@pytest.mark.parametrize("call", [
    dict(probs=[1.5, 0.5], target=[1.0, 0.0]),
    dict(probs=[0.5, 0.5], target=[2.0, 0.0]),
])
def test_focal_probs_out_of_range_is_an_input_error(call):
    with pytest.raises(InputError, match="between 0 and 1"):
        run(loss="focal", **call)


# -- sce: the worked numbers of symmetric cross-entropy (Wang et al. 2019) ----------------------------------------------------------

def _seed_pieces(y: float, p: float) -> tuple[float, float]:
    """The seed's ce(y, p) and rce(y, p) = ce(p, y), both clamped to [1e-4, 1 − 1e-4],
    evaluated with lossctl's bce."""
    yc, pc = min(max(y, 1e-4), 1 - 1e-4), min(max(p, 1e-4), 1 - 1e-4)
    return run(loss="bce", probs=[pc], target=[yc]).loss, run(loss="bce", probs=[yc], target=[pc]).loss


def test_sce_seed_ratios_float64():
    ce, rce = _seed_pieces(1.0, 0.8)
    assert ce == pytest.approx(0.2232821807503217, rel=1e-13)
    assert rce == pytest.approx(1.842148078395525, rel=1e-13)
    assert rce / ce == pytest.approx(8.250313895202634, rel=1e-12)
    assert round(rce / ce, 4) == 8.2503  # the blog prints 8.2502: its float32 rounds 1 − 1e-4
    ce, rce = _seed_pieces(0.0, 0.8)
    assert ce == pytest.approx(1.6092992829979886, rel=1e-13)
    assert rce / ce == pytest.approx(4.578571789862795, rel=1e-12)
    assert round(rce / ce, 4) == 4.5786


def test_sce_seed_ratio_float32_is_the_blogs():
    yc, pc = float(np.float32(1 - 1e-4)), 0.8
    ce = lossctl.compute(dict(loss="bce", probs=[pc], target=[yc], dtype="float32"), grad=True).loss
    rce = lossctl.compute(dict(loss="bce", probs=[yc], target=[pc], dtype="float32"), grad=True).loss
    assert rce == pytest.approx(1.842114806175232, rel=1e-6)
    assert round(rce / ce, 4) == 8.2502


def test_sce_pieces_of_the_seed_class():
    """SCELoss(a, b): α = 1, β = 0 is plain CE; α = 0, β = 1 is −log(1e-4)·Σ_(c≠y) clamp(p_c)."""
    target = [0, 1]
    ce = run(loss="sce", logits=SCE_LOGITS, target=target, alpha=1.0, beta=0.0)
    assert ce.loss == pytest.approx(run(loss="ce", logits=SCE_LOGITS, target=target).loss, rel=1e-14)
    assert ce.loss == pytest.approx(0.2851041117000609, rel=1e-12)
    rce = run(loss="sce", logits=SCE_LOGITS, target=target, alpha=0.0, beta=1.0, reduction="none")
    x = np.asarray(SCE_LOGITS)
    p = np.exp(x) / np.exp(x).sum(axis=1, keepdims=True)
    others = np.clip(p, 1e-4, 1.0) * (1 - np.eye(3)[target])
    close(rce.loss, A * others.sum(axis=1), rtol=1e-13)
    assert np.mean(rce.loss) == pytest.approx(2.2243987461631067, rel=1e-12)
    both = run(loss="sce", logits=SCE_LOGITS, target=target)  # defaults a = b = 1
    assert both.loss == pytest.approx(2.5095028578631675, rel=1e-13)
    close(both.grad["logits"], [[-1.2053670017412426, 0.8569550703685287, 0.3484119313727139],
                                [0.5168407991397979, -0.6321635694231031, 0.11532277028330555]], rtol=GRAD_RTOL)


def test_sce_class_ratio_differs_from_the_helper_ratio():
    """The seed's SCELoss clamps only from below (one-hot to [1e-4, 1], softmax to [1e-4, 1]);
    its ce/rce helpers clamp both sides to [1e-4, 1 − 1e-4]. For two classes with p = 0.8 on the
    label the class gives RCE/CE = 0.2·(−log 1e-4)/(−log 0.8) = 8.2551, not the helper's 8.2503."""
    z = [[0.0, math.log(4.0)]]  # softmax = [0.2, 0.8]
    ce = run(loss="sce", logits=z, target=[1], alpha=1, beta=0).loss
    rce = run(loss="sce", logits=z, target=[1], alpha=0, beta=1).loss
    assert ce == pytest.approx(-math.log(0.8), rel=1e-14)
    assert rce == pytest.approx(0.2 * A, rel=1e-14)
    assert rce / ce == pytest.approx(8.255080926812935, rel=1e-13)
    noisy = run(loss="sce", logits=z, target=[0], alpha=0, beta=1).loss / run(loss="sce", logits=z, target=[0], alpha=1, beta=0).loss
    assert noisy == pytest.approx(0.8 * A / -math.log(0.2), rel=1e-13)
    assert noisy < rce / ce  # the seed's point: a noisy label gets the smaller ratio


def test_sce_clamped_probabilities_get_no_rce_gradient():
    z = np.array([[12.0, 0.0, -3.0]])  # p_1, p_2 < 1e-4: clamped
    p = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    assert np.all(p[0, 1:] < 1e-4)
    r = run(loss="sce", logits=z, target=[0], alpha=0.0, beta=1.0, reduction="sum")
    assert r.loss == pytest.approx(2 * 1e-4 * A, rel=1e-13)
    close(r.grad["logits"], np.zeros((1, 3)), rtol=0, atol=0)


@pytest.mark.parametrize("call, error", [
    (dict(target=[0, -100]), InputError),        # no ignore_index: the seed's one_hot refuses it
    (dict(target=[0, 3]), InputError),
    (dict(target=[[1.0, 0, 0], [0, 1.0, 0]]), InputError),   # class indices only
])
def test_sce_target_errors(call, error):
    with pytest.raises(error):
        run(loss="sce", logits=SCE_LOGITS, **call)


def test_sce_takes_logits_only():
    with pytest.raises(UsageError):
        run(loss="sce", probs=[[0.2, 0.8]], target=[1])


# -- zero-one --------------------------------------------------------------------------------

def test_zero_one_classification_rate_and_ties():
    logits = [[1.0, 3.0, 0.0], [2.0, 2.0, 1.0], [0.0, 0.0, 5.0], [4.0, 1.0, 4.0]]
    target = [1, 1, 2, 0]  # row 1 ties → argmax is the first maximum (0): wrong; row 3 ties → 0: right
    r = run(loss="zero-one", logits=logits, target=target, reduction="none")
    close(r.loss, [0.0, 1.0, 0.0, 0.0], rtol=0)
    assert run(loss="zero-one", logits=logits, target=target).loss == 0.25
    assert run(loss="zero-one", logits=logits, target=target, reduction="sum").loss == 1.0
    close(r.grad["logits"], np.zeros((4, 3)), rtol=0)
    p = run(loss="zero-one", probs=[[0.2, 0.8], [0.6, 0.4]], target=[1, 1])
    assert p.loss == 0.5
    close(p.grad["probs"], np.zeros((2, 2)), rtol=0)


def test_zero_one_class_dim_and_unbatched():
    x = np.array([[[1.0, 5.0], [2.0, 0.0]], [[0.0, 0.0], [3.0, 1.0]]])  # (N=2, C=2, d=2)
    r = run(loss="zero-one", logits=x, target=[[1, 0], [1, 0]], reduction="none")
    close(r.loss, [[0.0, 0.0], [0.0, 1.0]], rtol=0)
    r = run(loss="zero-one", logits=np.moveaxis(x, 1, -1), target=[[1, 0], [1, 0]], dim=-1, reduction="none")
    close(r.loss, [[0.0, 0.0], [0.0, 1.0]], rtol=0)
    u = run(loss="zero-one", logits=[0.1, 2.0, -1.0], target=1, reduction="none")
    assert np.shape(u.loss) == () and float(u.loss) == 0.0


def test_zero_one_regression_threshold_is_inclusive():
    pred = [0.5, 1.0, 1.75, 3.0, -1.0]
    target = [1.0, 1.0, 1.0, 1.0, 1.0]
    r = run(loss="zero-one", pred=pred, target=target, threshold=0.5, reduction="none")
    close(r.loss, [1.0, 0.0, 1.0, 1.0, 1.0], rtol=0)  # |y − a| = 0.5 ≥ T counts as wrong
    r = run(loss="zero-one", pred=pred, target=target, threshold=2.0, reduction="none")
    close(r.loss, [0.0, 0.0, 0.0, 1.0, 1.0], rtol=0)
    exact = run(loss="zero-one", pred=pred, target=target, reduction="none")  # no threshold: a ≠ y
    close(exact.loss, [1.0, 0.0, 1.0, 1.0, 1.0], rtol=0)
    close(exact.grad["pred"], np.zeros(5), rtol=0)
    assert run(loss="zero-one", pred=pred, target=target, threshold=0.8).loss == pytest.approx(0.4)


@pytest.mark.parametrize("call, error, message", [
    (dict(logits=[[1.0, 2.0]], target=[0], threshold=0.5), UsageError, "pred only"),  # a parameter: usage
    (dict(pred=[1.0, 2.0], target=[1.0, 2.0, 3.0]), InputError, "does not match"),
    (dict(logits=[[1.0, 2.0]], target=[2]), InputError, "out of range"),
    (dict(logits=[[1.0, 2.0]], target=[[0.5, 0.5]]), InputError, "class indices"),
    (dict(pred=[1.0, 2.0], target=[1.0, 2.0], dim=0), UsageError, "no class dimension"),
])
def test_zero_one_errors(call, error, message):
    with pytest.raises(error, match=message):
        run(loss="zero-one", **call)


def test_explain_shows_the_seed_walk():
    r = lossctl.compute(dict(loss="sce", logits=SCE_LOGITS, target=[0, 1]), explain=True, grad=True)
    labels = [s.label for s in r.steps]
    for label in ("softmax", "cross-entropy", "clamped probabilities", "reverse cross-entropy", "loss"):
        assert label in labels
    r = lossctl.compute(dict(loss="focal", probs=EASY, target=Y_TRUE, alpha=0.75), explain=True, grad=True)
    mod = next(s for s in r.steps if s.label == "modulating factor")
    close(mod.value, [0.01, 0.01], rtol=1e-13)


# -- live torch (the oracle table, tests/torch_reference.py) over the parameters' range ---------

def _against_torch(call: dict) -> None:
    import torch  # noqa: F401  (installed here and in CI: a missing one fails)
    import test_torch_fixtures as fx
    import torch_reference as ref

    case = {k: np.asarray(v).tolist() if isinstance(v, np.ndarray) else v for k, v in call.items()}
    fx.check_result(run(**case), ref.reference(case))


@pytest.mark.parametrize("kind", ["logits", "probs"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("variant", range(6))
def test_live_focal(kind, reduction, variant):
    rng = np.random.default_rng(100 + variant)
    shape = [(6,), (4, 3), (2, 3, 4), (5, 2), (3, 3), (8,)][variant]
    alpha = [0.25, -1.0, 0.75, 0.0, 1.0, 0.4][variant]
    gamma = [2.0, 0.0, 1.5, 3.0, 0.5, 2.0][variant]
    if kind == "logits":
        x = rng.normal(size=shape) * [3, 3, 3, 8, 3, 3][variant]
    else:
        x = rng.uniform(0.01, 0.99, size=shape)
    y = rng.integers(0, 2, size=shape).astype(float) if variant % 2 == 0 else rng.uniform(size=shape)
    _against_torch({"loss": "focal", kind: x, "target": y, "alpha": alpha, "gamma": gamma, "reduction": reduction})


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("variant", range(5))
def test_live_sce(reduction, variant):
    rng = np.random.default_rng(200 + variant)
    shape = [(6, 4), (5,), (2, 3, 4), (4, 10), (3, 2)][variant]
    scale = [1.0, 2.0, 3.0, 6.0, 12.0][variant]  # large scales push probabilities under 1e-4
    x = rng.normal(size=shape) * scale
    cdim = 1 if len(shape) >= 2 else 0
    labels = rng.integers(0, shape[cdim], size=shape[:cdim] + shape[cdim + 1:])
    a, b = [(1.0, 1.0), (0.1, 1.0), (1.0, 0.5), (0.0, 1.0), (2.0, 0.3)][variant]
    _against_torch({"loss": "sce", "logits": x, "target": labels if labels.ndim else int(labels), "alpha": a,
                    "beta": b, "reduction": reduction})


@pytest.mark.parametrize("kind", ["logits", "probs", "pred"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_live_zero_one(kind, reduction):
    rng = np.random.default_rng(300)
    if kind == "pred":
        call = {"pred": rng.normal(size=(4, 5)).round(1), "target": rng.normal(size=(4, 5)).round(1), "threshold": 0.6}
    else:
        x = rng.normal(size=(7, 4)).round(0)  # rounding makes ties
        if kind == "probs":
            x = np.exp(x) / np.exp(x).sum(axis=1, keepdims=True)
        call = {kind: x, "target": rng.integers(0, 4, size=7)}
    _against_torch({"loss": "zero-one", **call, "reduction": reduction})


# -- command line ------------------------------------------------------------------------------

def test_cli_focal_seed_probs(run_cli):
    r = run_cli(["focal", "--probs", "[[0.9],[0.1]]", "--target", "[[1],[0]]", "--alpha", "0.75", "--gamma", "2",
                 "--format", "plain"])
    assert r.code == 0, r.stderr
    assert float(r.stdout) == pytest.approx(0.0005268025782891313, rel=1e-12)


def test_cli_sce_json_explain(run_cli):
    r = run_cli(["sce", "--logits", json.dumps(SCE_LOGITS), "--target", "[0,1]", "--json", "--grad", "--explain"])
    assert r.code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["loss"] == pytest.approx(2.5095028578631675, rel=1e-13)
    assert set(doc["grad"]) == {"logits"}
    assert doc["steps"][-1]["value"] == pytest.approx(doc["loss"], rel=1e-14)


def test_cli_zero_one_threshold_and_errors(run_cli):
    r = run_cli(["zero-one", "--pred", "[0.5,1.0,2.0]", "--target", "[1,1,1]", "--threshold", "0.5",
                 "--reduction", "sum", "--format", "plain"])
    assert r.code == 0, r.stderr
    assert float(r.stdout) == 2.0
    bad = run_cli(["zero-one", "--logits", "[[1,2]]", "--target", "[0]", "--threshold", "0.5"])
    assert bad.code == 2 and "--threshold" in bad.stderr and "Traceback" not in bad.stderr
    bad = run_cli(["sce", "--logits", "[[1,2]]", "--target", "[5]"])
    assert bad.code == 3 and "--target" in bad.stderr
    bad = run_cli(["focal", "--probs", "[1.5]", "--target", "[1]"])
    assert bad.code == 3 and "--probs" in bad.stderr
