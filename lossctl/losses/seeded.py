"""Losses from the seeds with no torch.nn.functional counterpart: focal, sce, zero-one.

* ``focal`` mirrors ``torchvision.ops.sigmoid_focal_loss`` on logits, and the
  seed's probability-space ``FocalLoss`` class on probabilities
  (seeds/003_513c8e5c363fe58e.txt); the two agree on ``p = σ(z)``.
* ``sce`` is the seed's ``SCELoss`` class (same seed): ``α·CE + β·RCE`` with
  the softmax probabilities and the one-hot labels clamped to ``[1e-4, 1]``.
* ``zero-one`` is the 0-1 loss of seeds/004_27ff0490dfb36f46.txt: a
  misclassification indicator, or ``|y − a| ≥ T`` for regression.

Gradients are what torch's autograd gives for the same formula written in
torch ops (tests/torch_reference.py), including its clamp conventions.
"""

from __future__ import annotations

import numpy as np

from ..errors import InvalidInput
from ..numerics import log_softmax, sigmoid, softmax, softplus
from .ported import FOCAL_CONVENTIONS
from ..registry import Forward, LossSpec, Param, Step
from .binary import BCE_BACKWARD_EPS, BCE_LOG_CLAMP, check_unit_interval

# -- focal ---------------------------------------------------------------------------------

FOCAL_ALPHA = Param("alpha", "float", 0.25, "Weight of the positive class, α·y + (1−α)·(1−y); a negative value disables it.")
FOCAL_GAMMA = Param("gamma", "float", 2.0, "Focusing exponent of the modulating factor (1 − p_t)^γ; 0 gives BCE.")


def _focal_parts(x: dict):
    """(p, 1 − p, ce) for logits or probabilities.

    Logits: p = σ(z) and 1 − p = σ(−z), both without cancellation; ce is
    BCE-with-logits, y·softplus(−z) + (1−y)·softplus(z).
    Probabilities: ce is torch's binary_cross_entropy with each log clamped at −100.
    """
    y = x["target"]
    if "logits" in x:
        z = x["logits"]
        return sigmoid(z), sigmoid(-z), y * softplus(-z) + (1 - y) * softplus(z)
    p = x["probs"]
    with np.errstate(divide="ignore"):
        log_p = np.maximum(np.log(p), BCE_LOG_CLAMP)
        log_1mp = np.maximum(np.log1p(-p), BCE_LOG_CLAMP)
    return p, 1 - p, -(y * log_p + (1 - y) * log_1mp)


def _alpha_factor(y: np.ndarray, alpha: float):
    return alpha * y + (1 - alpha) * (1 - y) if alpha >= 0 else None


def focal_forward(x: dict, params: dict) -> Forward:
    """Focal loss, as ``torchvision.ops.sigmoid_focal_loss`` (Lin et al. 2017):
        p_t = p·y + (1−p)·(1−y);  l = a_t·(1 − p_t)^γ·ce,  a_t = α·y + (1−α)·(1−y) (α ≥ 0).
    1 − p_t is evaluated as p·(1−y) + (1−p)·y (the same number, without cancellation).
    torch forms 1 − p_t by subtraction, which is exactly 0 once σ(z) rounds to 1 (|z| ≳ 37):
    its values there are 0 instead of ~1e-33, and for γ < 1 its gradient is NaN (0·∞);
    lossctl keeps the exact tiny numbers (differences far below any tolerance otherwise).
    'mean' divides by the number of elements (lossctl's default; torchvision's is 'none').
    """
    y = x["target"]
    p, q, ce = _focal_parts(x)
    m = p * (1 - y) + q * y  # 1 − p_t
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        values = ce * m ** float(params.get("gamma", 2.0))
    a_t = _alpha_factor(y, float(params.get("alpha", 0.25)))
    return Forward(values if a_t is None else a_t * values)


def focal_backward(x: dict, params: dict, upstream: float) -> dict:
    """With m = 1 − p_t and ∂m/∂p = 1 − 2y:
        logits: ∂l/∂z = a_t·[(p − y)·m^γ + ce·γ·m^(γ−1)·(1 − 2y)·p·(1 − p)]
        probs:  ∂l/∂p = a_t·[(p − y)/max(p(1−p), 1e-12f)·m^γ + ce·γ·m^(γ−1)·(1 − 2y)]
    The second term is 0 for γ = 0 (torch's pow backward for a zero exponent).
    """
    y = x["target"]
    gamma = float(params.get("gamma", 2.0))
    p, q, ce = _focal_parts(x)
    m = p * (1 - y) + q * y
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        dmod_dm = gamma * m ** (gamma - 1) if gamma != 0 else np.zeros_like(m)
        if "logits" in x:
            d_ce = p - y
            d_m = (1 - 2 * y) * (p * q)
            name = "logits"
        else:
            d_ce = (p - y) / np.maximum(p * q, BCE_BACKWARD_EPS)  # torch's BCE backward
            d_m = 1 - 2 * y
            name = "probs"
        g = d_ce * m ** gamma + ce * dmod_dm * d_m
        a_t = _alpha_factor(y, float(params.get("alpha", 0.25)))
        if a_t is not None:
            g = a_t * g
        g = g * upstream
    return {name: np.asarray(g, dtype=x[name].dtype)}


def focal_steps(x: dict, params: dict) -> list[Step]:
    y = x["target"]
    gamma = float(params.get("gamma", 2.0))
    alpha = float(params.get("alpha", 0.25))
    p, q, ce = _focal_parts(x)
    steps: list[Step] = []
    if "logits" in x:
        steps += [Step("logit", "z", x["logits"]), Step("target", "y", y), Step("probability", "p = σ(z)", p),
                  Step("binary cross-entropy", "ce = y·softplus(−z) + (1−y)·softplus(z)", ce)]
    else:
        steps += [Step("probability", "p", p), Step("target", "y", y),
                  Step("binary cross-entropy", "ce = −[y·log p + (1−y)·log(1−p)], logs clamped at −100", ce)]
    m = p * (1 - y) + q * y
    steps.append(Step("p_t", "p·y + (1−p)·(1−y)", 1 - m))
    mod = m ** gamma
    steps.append(Step("modulating factor", f"(1 − p_t)^γ, γ = {gamma:g}", mod))
    values = ce * mod
    a_t = _alpha_factor(y, alpha)
    if a_t is not None:
        steps.append(Step("alpha factor", f"a_t = α·y + (1−α)·(1−y), α = {alpha:g}", a_t))
        values = a_t * values
        steps.append(Step("loss", "l = a_t·(1 − p_t)^γ·ce", values))
    else:
        steps.append(Step("loss", "l = (1 − p_t)^γ·ce  (α < 0: no alpha factor)", values))
    return steps


def _validate_focal(x: dict, params: dict) -> None:
    if "probs" in x:  # torch's binary_cross_entropy checks both (2.13)
        check_unit_interval("probs", x["probs"])
        check_unit_interval("target", x["target"])


FOCAL = LossSpec(
    name="focal",
    aliases=("sigmoid-focal", "focal-loss"),
    mirrors="torchvision.ops.sigmoid_focal_loss",
    summary="Sigmoid focal loss: BCE scaled down on easy examples by (1 − p_t)^γ.",
    formula="l = a_t·(1 − p_t)^γ·BCE, p_t = p·y + (1−p)·(1−y), a_t = α·y + (1−α)·(1−y)",
    kinds={"logits": None, "probs": None},
    params=(FOCAL_ALPHA, FOCAL_GAMMA),
    target="same",
    forward=focal_forward,
    backward=focal_backward,
    steps=focal_steps,
    validate=_validate_focal,
    notes=("--probs is the seed's probability-space FocalLoss (BCE on p, logs clamped at −100 as torch). "
           "The default reduction is 'mean' as for every lossctl loss (torchvision's default is 'none')."),
    conventions=FOCAL_CONVENTIONS,
)


# -- symmetric cross entropy ---------------------------------------------------------------

SCE_ALPHA = Param("alpha", "float", 1.0, "Weight of the cross-entropy term (the seed's a).")
SCE_BETA = Param("beta", "float", 1.0, "Weight of the reverse cross-entropy term (the seed's b).")
SCE_CLAMP = 1e-4  # the seed clamps softmax(x) and one_hot(y) to [1e-4, 1]


def _one_hot(target: np.ndarray, n_classes: int, dtype) -> np.ndarray:
    """(N, d…) indices → (N, C, d…) one-hot (class axis 1)."""
    oh = np.moveaxis(np.eye(n_classes, dtype=dtype)[target], -1, 1)
    return oh


def _sce_parts(x: dict):
    z, y = x["logits"], x["target"]
    n_classes = z.shape[1]
    lp = log_softmax(z, axis=1)
    p = softmax(z, axis=1)
    oh = _one_hot(y, n_classes, z.dtype)
    ce = -np.take_along_axis(lp, y[:, None].astype(np.intp), axis=1)[:, 0]
    pc = np.clip(p, SCE_CLAMP, 1.0)
    log_oh = np.log(np.clip(oh, SCE_CLAMP, 1.0))  # 0 at the label, log(1e-4) elsewhere
    rce = -np.sum(pc * log_oh, axis=1)
    return p, oh, ce, pc, log_oh, rce


def sce_forward(x: dict, params: dict) -> Forward:
    """Symmetric cross-entropy (Wang et al. 2019), as the seed's SCELoss:
        ce_n  = −log softmax(z)_y
        rce_n = −Σ_c clamp(p_c, 1e-4, 1)·log clamp(onehot_c, 1e-4, 1) = −log(1e-4)·Σ_{c≠y} clamp(p_c, 1e-4, 1)
        l_n   = α·ce_n + β·rce_n
    'mean' divides by the number of positions (= α·CE.mean() + β·RCE.mean(), the seed's forward).
    """
    _, _, ce, _, _, rce = _sce_parts(x)
    return Forward(float(params.get("alpha", 1.0)) * ce + float(params.get("beta", 1.0)) * rce)


def sce_backward(x: dict, params: dict, upstream: float) -> dict:
    """∂l/∂z = α·(p − onehot) + β·p·(g − Σ_c p_c·g_c),  g_c = −log clamp(onehot_c)·1[1e-4 ≤ p_c ≤ 1]
    (torch's clamp passes the gradient at the bounds, inclusive; softmax backward)."""
    alpha = float(params.get("alpha", 1.0))
    beta = float(params.get("beta", 1.0))
    z = x["logits"]
    p, oh, _, _, log_oh, _ = _sce_parts(x)
    g_p = np.where((p >= SCE_CLAMP) & (p <= 1.0), -log_oh, 0.0)
    g_rce = p * (g_p - np.sum(g_p * p, axis=1, keepdims=True))
    g = (alpha * (p - oh) + beta * g_rce) * upstream
    return {"logits": np.asarray(g, dtype=z.dtype)}


def sce_steps(x: dict, params: dict) -> list[Step]:
    """x: logits (rows, C), target (rows,)."""
    alpha = float(params.get("alpha", 1.0))
    beta = float(params.get("beta", 1.0))
    p, _, ce, pc, _, rce = _sce_parts(x)
    y = x["target"]
    return [
        Step("logits", "z", x["logits"]),
        Step("target class", "y", y),
        Step("softmax", "p = softmax(z)", p),
        Step("cross-entropy", "CE = −log p_y", ce),
        Step("clamped probabilities", f"clamp(p, {SCE_CLAMP:g}, 1)", pc),
        Step("reverse cross-entropy", f"RCE = −log({SCE_CLAMP:g})·Σ_(c≠y) clamp(p_c)  (one-hot clamped to [{SCE_CLAMP:g}, 1])", rce),
        Step("loss", f"α·CE + β·RCE, α = {alpha:g}, β = {beta:g}", alpha * ce + beta * rce),
    ]


def _validate_class_indices(x: dict, params: dict) -> None:
    """No ignore_index here: every target must be a class of the prediction."""
    if "pred" in x:
        return
    y = x["target"]
    n_classes = next(v for k, v in x.items() if k != "target").shape[1]
    bad = (y < 0) | (y >= n_classes)
    if np.any(bad):
        where = [int(i) for i in np.argwhere(bad)[0]]
        raise InvalidInput("target", f"class index {int(y[tuple(where)])} is out of range for {n_classes} classes (index {where})")


SCE = LossSpec(
    name="sce",
    aliases=("symmetric-cross-entropy",),
    mirrors="symmetric cross entropy (Wang et al. 2019)",
    summary="Symmetric cross-entropy α·CE + β·RCE, robust to noisy labels.",
    formula="l = α·(−log p_y) + β·(−Σ_c clamp(p_c, 1e-4, 1)·log clamp(onehot_c, 1e-4, 1)), p = softmax(z)",
    kinds={"logits": None},
    params=(SCE_ALPHA, SCE_BETA),
    target="index",
    class_axis=True,
    forward=sce_forward,
    backward=sce_backward,
    steps=sce_steps,
    validate=_validate_class_indices,
    notes="Class-index targets only (no ignore_index, as the seed's one_hot). RCE = 9.2103·Σ_(c≠y) clamp(p_c).",
)


# -- zero-one ------------------------------------------------------------------------------

THRESHOLD = Param(
    "threshold", "float", None,
    "With --pred: count |y − a| ≥ T as an error (the seed's relaxed 0-1 loss); without it, a ≠ y.",
)


def _wrong(x: dict, params: dict) -> np.ndarray:
    if "pred" in x:
        a, y = x["pred"], x["target"]
        t = params.get("threshold")
        with np.errstate(invalid="ignore"):
            return np.abs(y - a) >= float(t) if t is not None else a != y
    scores = x["logits"] if "logits" in x else x["probs"]
    return np.argmax(scores, axis=1) != x["target"]  # first maximum on ties, as torch.argmax


def zero_one_forward(x: dict, params: dict) -> Forward:
    """0-1 loss: l = 1[argmax_c x_c ≠ y] for class scores; l = 1[|y − a| ≥ T] (or 1[a ≠ y]
    without --threshold) for plain predictions. 'mean' is the error rate, 'sum' the error count."""
    dtype = next(v for k, v in x.items() if k != "target").dtype
    return Forward(_wrong(x, params).astype(dtype))


def zero_one_backward(x: dict, params: dict, upstream: float) -> dict:
    """Piecewise constant: the gradient is 0 everywhere (where it exists)."""
    return {k: np.zeros_like(v) for k, v in x.items() if k != "target"}


def zero_one_steps(x: dict, params: dict) -> list[Step]:
    wrong = _wrong(x, params)
    if "pred" in x:
        a, y = x["pred"], x["target"]
        t = params.get("threshold")
        steps = [Step("prediction", "a", a), Step("target", "y", y)]
        if t is not None:
            steps.append(Step("absolute error", "|y − a|", np.abs(y - a)))
            steps.append(Step("loss", f"1[|y − a| ≥ T], T = {float(t):g}", wrong.astype(a.dtype)))
        else:
            steps.append(Step("loss", "1[a ≠ y]", wrong.astype(a.dtype)))
        return steps
    kind = "logits" if "logits" in x else "probs"
    scores = x[kind]
    return [
        Step("class scores", "x" if kind == "logits" else "p", scores),
        Step("predicted class", "ŷ = argmax_c (first on ties)", np.argmax(scores, axis=1)),
        Step("target class", "y", x["target"]),
        Step("loss", "1[ŷ ≠ y]", wrong.astype(scores.dtype)),
    ]


def _validate_zero_one(x: dict, params: dict) -> None:
    if "pred" in x:
        if x["target"].shape != x["pred"].shape:
            raise InvalidInput("target", f"shape {x['target'].shape} does not match the prediction's shape {x['pred'].shape}")
        return
    if params.get("threshold") is not None:
        raise InvalidInput("threshold", "applies to --pred only (classification uses the argmax)")
    _validate_class_indices(x, params)


ZERO_ONE = LossSpec(
    name="zero-one",
    aliases=("misclassification",),
    mirrors="0-1 loss (classification, or regression with --threshold T)",
    summary="0-1 loss: the misclassification rate, or the rate of |y − a| ≥ T.",
    formula="l = 1[argmax x ≠ y] (--logits/--probs) or 1[|y − a| ≥ T] (--pred --threshold T; 1[a ≠ y] without T)",
    kinds={"pred": None, "logits": None, "probs": None},
    params=(THRESHOLD,),
    target="index",
    class_axis=True,
    class_kinds=("logits", "probs"),
    forward=zero_one_forward,
    backward=zero_one_backward,
    steps=zero_one_steps,
    validate=_validate_zero_one,
    notes="The gradient is all zeros (the loss is piecewise constant). --pred takes a target of its own shape.",
)

SPECS = (FOCAL, SCE, ZERO_ONE)
