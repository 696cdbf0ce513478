"""Binary cross-entropy on probabilities and on logits."""

from __future__ import annotations

import numpy as np

from ..errors import InvalidInput, ref
from ..core.numerics import sigmoid, softplus
from ..core.registry import POS_WEIGHT, WEIGHT, Forward, LossSpec, Param, Step
from .ported import BCE_CONVENTIONS, BCE_LOGITS_CONVENTIONS, FOCAL_CONVENTIONS

# ATen's EPSILON in binary_cross_entropy_backward is float(1e-12), a float32
# constant even in double kernels: 9.999999960041972e-13.
BCE_BACKWARD_EPS = float(np.float32(1e-12))
# torch clamps each log term of binary_cross_entropy at -100 (never ±inf).
BCE_LOG_CLAMP = -100.0


def _weight(params: dict, like: np.ndarray) -> np.ndarray:
    w = params.get("weight")
    return np.ones((), dtype=like.dtype) if w is None else np.asarray(w, dtype=like.dtype)


def _clamped_logs(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(max(log p, −100), max(log(1 − p), −100)), with log(1 − p) as log1p(−p)."""
    with np.errstate(divide="ignore"):
        return np.maximum(np.log(p), BCE_LOG_CLAMP), np.maximum(np.log1p(-p), BCE_LOG_CLAMP)


def _bce_logits_values(z, y, w, pos_weight):
    # −log σ(z) = softplus(−z) and −log(1 − σ(z)) = softplus(z): no cancellation
    # for large |z| (torch's (1−y)·z − log σ(z) loses digits below z ≈ −30).
    pw = 1.0 if pos_weight is None else np.asarray(pos_weight, dtype=z.dtype)
    with np.errstate(invalid="ignore"):
        return w * (pw * y * softplus(-z) + (1 - y) * softplus(z))


def _bce_logits_grad(z, y, w, pos_weight, upstream):
    pw = 1.0 if pos_weight is None else np.asarray(pos_weight, dtype=z.dtype)
    with np.errstate(invalid="ignore"):
        return w * ((pw * y + 1 - y) * sigmoid(z) - pw * y) * upstream


def bce_forward(x: dict, params: dict) -> Forward:
    """Binary cross-entropy, as ``torch.nn.functional.binary_cross_entropy``.

    On probabilities p:  l = −w·[y·max(log p, −100) + (1−y)·max(log(1−p), −100)]  (torch's clamp).
    On logits z (the with-logits form):  l = w·[y·softplus(−z) + (1−y)·softplus(z)].
    'mean' divides by the number of elements; weights are not normalised.
    """
    y = x["target"]
    if "logits" in x:
        z = x["logits"]
        return Forward(np.broadcast_to(_bce_logits_values(z, y, _weight(params, z), params.get("pos_weight")), z.shape))
    p = x["probs"]
    log_p, log_1mp = _clamped_logs(p)
    values = -_weight(params, p) * (y * log_p + (1 - y) * log_1mp)
    return Forward(np.broadcast_to(values, p.shape))


def bce_backward(x: dict, params: dict, upstream: float) -> dict:
    """∂l/∂p = w·(p − y) / max(p·(1−p), 1e-12f) (torch does not differentiate the clamp);
    ∂l/∂z = w·[(pw·y + 1 − y)·σ(z) − pw·y]."""
    y = x["target"]
    if "logits" in x:
        z = x["logits"]
        g = _bce_logits_grad(z, y, _weight(params, z), params.get("pos_weight"), upstream)
        return {"logits": np.broadcast_to(g, z.shape).astype(z.dtype)}
    p = x["probs"]
    g = _weight(params, p) * (p - y) / np.maximum(p * (1 - p), BCE_BACKWARD_EPS) * upstream
    return {"probs": np.broadcast_to(g, p.shape).astype(p.dtype)}


def bce_logits_compiled(kind: str, raw, x: dict, params: dict, out=None):
    """The streaming engine's ``compiled_forward`` for bce-logits:
    ``l = w·[pw·y·softplus(−z) + (1−y)·softplus(z)]`` elementwise, z read as given."""
    if kind != "logits":
        return None
    from ..core.kernels import bce_logits

    return bce_logits(raw, x["target"], params.get("weight"), params.get("pos_weight"))


def bce_steps(x: dict, params: dict) -> list[Step]:
    """x: one element per row: probs or logits (rows,), target (rows,)."""
    y = x["target"]
    steps: list[Step] = []
    if "logits" in x:
        z = x["logits"]
        pw = params.get("pos_weight")
        steps += [
            Step("logit", "z", z),
            Step("target", "y", y),
            Step("probability", "σ(z)", sigmoid(z)),
            Step("−log σ(z)", "softplus(−z)", softplus(-z)),
            Step("−log(1 − σ(z))", "softplus(z)", softplus(z)),
        ]
        if pw is not None:
            steps.append(Step("positive weight", "pw", np.broadcast_to(pw, z.shape)))
        values = _bce_logits_values(z, y, 1.0, pw)
    else:
        p = x["probs"]
        log_p, log_1mp = _clamped_logs(p)
        steps += [
            Step("probability", "p", p),
            Step("target", "y", y),
            Step("log p", "max(log p, −100)  (torch's clamp)", log_p),
            Step("log(1 − p)", "max(log(1 − p), −100)  (torch's clamp)", log_1mp),
        ]
        values = -(y * log_p + (1 - y) * log_1mp)
    steps.append(Step("binary cross-entropy", "−[y·log p + (1−y)·log(1−p)]", values))
    if params.get("weight") is not None:
        w = np.broadcast_to(params["weight"], values.shape)
        steps.append(Step("element weight", "w", w))
        values = w * values
    steps.append(Step("loss", "l", values))
    return steps


def _validate_broadcast(name: str, value, shape: tuple) -> None:
    if value is None:
        return
    try:
        out = np.broadcast_shapes(np.shape(value), shape)
    except ValueError:
        out = None
    if out != tuple(shape):
        raise InvalidInput(name, f"shape {tuple(np.shape(value))} does not broadcast to the input's shape {tuple(shape)}")


def _validate_bce(x: dict, params: dict) -> None:
    pred = x.get("probs", x.get("logits"))
    _validate_broadcast("weight", params.get("weight"), pred.shape)
    _validate_broadcast("pos_weight", params.get("pos_weight"), pred.shape)
    if "probs" in x:
        check_unit_interval("probs", pred)
        check_unit_interval("target", x["target"])


def check_unit_interval(name: str, a: np.ndarray) -> None:
    """Probabilities and BCE targets must lie in [0, 1] (NaN included), as torch's BCE checks."""
    bad = ~((a >= 0) & (a <= 1))
    if np.any(bad):
        where = [int(i) for i in np.argwhere(bad)[0]] if a.ndim else []
        raise InvalidInput(name, f"values must be between 0 and 1; found {float(a[tuple(where)])!r}"
                           + (f" at index {where}" if where else ""))


BCE = LossSpec(
    name="bce",
    aliases=("binary-cross-entropy",),
    mirrors="torch.nn.functional.binary_cross_entropy",
    summary="Binary cross-entropy between probabilities (or logits) and targets in [0, 1].",
    formula="l = −w·[y·log p + (1−y)·log(1−p)], each log clamped at −100 as torch does",
    kinds={"probs": None, "logits": None},
    params=(WEIGHT,),
    target="same",
    forward=bce_forward,
    backward=bce_backward,
    steps=bce_steps,
    validate=_validate_bce,
    notes=f"{ref('logits')} uses the with-logits form (stable, no clamp), as binary_cross_entropy_with_logits.",
    conventions=BCE_CONVENTIONS,
)

BCE_LOGITS = LossSpec(
    name="bce-logits",
    aliases=("bce-with-logits", "binary-cross-entropy-with-logits"),
    mirrors="torch.nn.functional.binary_cross_entropy_with_logits",
    summary="Binary cross-entropy on logits, stable for any logit, with pos_weight.",
    formula="l = w·[pw·y·softplus(−z) + (1−y)·softplus(z)]",
    kinds={"logits": None},
    params=(WEIGHT, POS_WEIGHT),
    target="same",
    forward=bce_forward,
    backward=bce_backward,
    steps=bce_steps,
    validate=_validate_bce,
    compiled_forward=bce_logits_compiled,
    conventions=BCE_LOGITS_CONVENTIONS,
)

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
        # ce·(γ·m^(γ−1)·dm) in this order: for a logit of 1e308, ce is 1e308 and dm is 0 (ce·γ would overflow)
        g = d_ce * m ** gamma + ce * (dmod_dm * d_m)
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
    notes=(f"{ref('probs')}: the focal loss on probabilities (BCE on p, logs clamped at −100 as torch does). "
           "The default reduction is 'mean' as for every lossctl loss (torchvision's default is 'none')."),
    conventions=FOCAL_CONVENTIONS,
)


SPECS = (BCE, BCE_LOGITS)
