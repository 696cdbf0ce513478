"""Regression losses: mse, l1, smooth-l1, huber, poisson-nll, gaussian-nll.

Every kernel here is element-wise on ``d = a − y`` (prediction minus target)
after NumPy broadcasting of prediction and target, as ``torch.broadcast_tensors``
does in the functionals. The values have the broadcast shape; the gradient is
summed back to the prediction's shape (``sum_to_shape``), which is what
autograd gives when the target is the larger of the two.

Conventions (torch 2.13's, each pinned by a golden case in ``tests/test_regression.py``):

* ``sign(0) = 0``: l1 and smooth-l1 with ``beta = 0`` have gradient 0 at d = 0.
* Branch points: smooth-l1 at ``|d| == beta`` and huber at ``|d| == delta``
  take the linear branch (torch tests ``z < beta``); the gradient is
  continuous there (±1, ±delta).
* ``weight`` (functionals only, new in 2.13) must have the prediction's shape.
  mse and l1 divide ``'mean'`` by ``Σ weight``; huber divides by the number
  of elements (an inconsistency in torch's functional.py, PR #132049).
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import InvalidInput, ref
from ..core.numerics import sum_to_shape
from ..core.registry import Forward, LossSpec, Param, Step
from .ported import HUBER_CONVENTIONS, L1_CONVENTIONS, MSE_CONVENTIONS, POISSON_CONVENTIONS

# -- parameters (help or default differ from the shared ones, so they live here) ----------

MEAN_WEIGHT = Param(
    "weight", "array", None,
    "Element weight, the prediction's shape (functional-only in torch 2.13); 'mean' divides Σ w·l by Σ w.",
)
HUBER_WEIGHT = Param(
    "weight", "array", None,
    "Element weight, the prediction's shape (functional-only in torch 2.13); 'mean' divides Σ w·l by the "
    "number of elements, not by Σ w (as torch does).",
)
BETA = Param("beta", "float", 1.0, "Where the loss turns from quadratic to linear; 0 gives exactly l1 (must be ≥ 0).")
DELTA = Param("delta", "float", 1.0, "Where the loss turns from quadratic to linear (must be > 0).")
LOG_INPUT = Param("log_input", "bool", True, "The prediction is log(rate): l = exp(a) − y·a; otherwise l = a − y·log(a + eps).")
POISSON_FULL = Param("full", "bool", False, "Add the Stirling term y·log y − y + ½·log(2πy) where y > 1.")
POISSON_EPS = Param("eps", "float", 1e-8, f"Added to the rate inside the log when {ref('no_log_input')}.")
GAUSSIAN_FULL = Param("full", "bool", False, "Add the constant ½·log(2π).")
GAUSSIAN_EPS = Param("eps", "float", 1e-6, "Lower clamp of var (a clamp, not an addition; the gradient still flows to var).")

HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)  # as torch: 0.5 * math.log(2 * math.pi)


# -- shared helpers ------------------------------------------------------------------------

def _diff(x: dict) -> np.ndarray:
    return x["pred"] - x["target"]


def _weight(params: dict):
    return params.get("weight")


def _to_pred(g: np.ndarray, pred: np.ndarray) -> dict:
    """Gradient of the broadcast values, summed back to the prediction's shape."""
    g = np.broadcast_to(g, np.broadcast_shapes(np.shape(g), pred.shape))
    return {"pred": np.asarray(sum_to_shape(g, pred.shape), dtype=pred.dtype)}


def _weighted(values: np.ndarray, params: dict) -> np.ndarray:
    w = _weight(params)
    return values if w is None else values * w


def _weighted_steps(steps: list[Step], values: np.ndarray, params: dict) -> list[Step]:
    w = _weight(params)
    if w is not None:
        w = np.broadcast_to(w, values.shape)
        steps.append(Step("element weight", "w", w))
        values = w * values
        steps.append(Step("weighted loss", "w·l", values))
    steps.append(Step("loss", "l", values))
    return steps


def _diff_steps(x: dict) -> tuple[list[Step], np.ndarray]:
    a, y = np.broadcast_arrays(x["pred"], x["target"])
    d = a - y
    return [Step("prediction", "a", a), Step("target", "y", y), Step("difference", "d = a − y", d)], d


def _validate_weight(x: dict, params: dict) -> None:
    w = _weight(params)
    pred = x["pred"]
    if w is not None and np.shape(w) != pred.shape:
        # torch: "ValueError: Weights and input must have the same size."
        raise InvalidInput("weight", f"shape {tuple(np.shape(w))} must equal the prediction's shape {pred.shape} (as torch requires)")


# -- mse -----------------------------------------------------------------------------------

def mse_forward(x: dict, params: dict) -> Forward:
    """Squared error, as ``torch.nn.functional.mse_loss``:  l = w·(a − y)².

    'mean' divides by the number of (broadcast) elements, or by Σ w when a weight is given.
    """
    d = _diff(x)
    w = _weight(params)
    return Forward(_weighted(d * d, params), None if w is None else w)


def mse_backward(x: dict, params: dict, upstream: float) -> dict:
    """∂l/∂a = 2·w·(a − y)."""
    d = _diff(x)
    g = 2 * d * upstream
    w = _weight(params)
    return _to_pred(g if w is None else w * g, x["pred"])


def mse_steps(x: dict, params: dict) -> list[Step]:
    steps, d = _diff_steps(x)
    steps.append(Step("squared error", "d²", d * d))
    return _weighted_steps(steps, d * d, params)


# -- l1 ------------------------------------------------------------------------------------

def l1_forward(x: dict, params: dict) -> Forward:
    """Absolute error, as ``torch.nn.functional.l1_loss``:  l = w·|a − y|.

    'mean' divides by the number of (broadcast) elements, or by Σ w when a weight is given.
    """
    d = _diff(x)
    w = _weight(params)
    return Forward(_weighted(np.abs(d), params), None if w is None else w)


def l1_backward(x: dict, params: dict, upstream: float) -> dict:
    """∂l/∂a = w·sign(a − y), with sign(0) = 0 (torch's ``sgn``)."""
    g = np.sign(_diff(x)) * upstream
    w = _weight(params)
    return _to_pred(g if w is None else w * g, x["pred"])


def l1_steps(x: dict, params: dict) -> list[Step]:
    steps, d = _diff_steps(x)
    steps.append(Step("absolute error", "|d|", np.abs(d)))
    return _weighted_steps(steps, np.abs(d), params)


# -- smooth l1 -----------------------------------------------------------------------------

def _smooth_l1_values(d: np.ndarray, beta: float) -> np.ndarray:
    z = np.abs(d)
    if beta == 0:  # torch dispatches beta = 0 to l1_loss
        return z
    # ATen: z < beta ? 0.5 * z * z / beta : z - 0.5 * beta   (|d| == beta: the linear branch)
    return np.where(z < beta, 0.5 * z * z / beta, z - 0.5 * beta)


def smooth_l1_forward(x: dict, params: dict) -> Forward:
    """Smooth L1, as ``torch.nn.functional.smooth_l1_loss``:
        l = ½·d²/β  if |d| < β,  else |d| − ½·β;   β = 0 is exactly l1.
    'mean' divides by the number of elements.
    """
    return Forward(_smooth_l1_values(_diff(x), float(params.get("beta", 1.0))))


def smooth_l1_backward(x: dict, params: dict, upstream: float) -> dict:
    """∂l/∂a = d/β inside (−β, β), sign(d) outside (at |d| = β both are ±1); β = 0: sign(d), sign(0) = 0."""
    d = _diff(x)
    beta = float(params.get("beta", 1.0))
    if beta == 0:
        g = np.sign(d)
    else:
        # ATen's backward: x < -beta ? -1 : x > beta ? 1 : x / beta
        g = np.where(d < -beta, -1.0, np.where(d > beta, 1.0, d / beta))
    return _to_pred(g * upstream, x["pred"])


def smooth_l1_steps(x: dict, params: dict) -> list[Step]:
    beta = float(params.get("beta", 1.0))
    steps, d = _diff_steps(x)
    z = np.abs(d)
    steps.append(Step("absolute error", "|d|", z))
    if beta == 0:
        steps.append(Step("loss", "β = 0: exactly l1, |d|", _smooth_l1_values(d, beta)))
        return steps
    steps.append(Step("quadratic branch", f"1 if |d| < β = {beta:g} else 0 (|d| = β is linear)", (z < beta).astype(z.dtype)))
    steps.append(Step("loss", "½·d²/β if |d| < β else |d| − ½·β", _smooth_l1_values(d, beta)))
    return steps


def _validate_beta(x: dict, params: dict) -> None:
    if float(params.get("beta", 1.0)) < 0:
        raise InvalidInput("beta", "smooth_l1_loss does not support negative values for beta")


# -- huber ---------------------------------------------------------------------------------

def _huber_values(d: np.ndarray, delta: float) -> np.ndarray:
    z = np.abs(d)
    # ATen: z < delta ? 0.5 * z * z : delta * (z - 0.5 * delta)   (|d| == delta: the linear branch)
    return np.where(z < delta, 0.5 * z * z, delta * (z - 0.5 * delta))


def huber_forward(x: dict, params: dict) -> Forward:
    """Huber loss, as ``torch.nn.functional.huber_loss``:
        l = w·(½·d²  if |d| < δ,  else δ·(|d| − ½·δ))   (= δ·smooth_l1 with β = δ).
    'mean' divides by the number of elements, also when a weight is given (torch 2.13).
    """
    values = _huber_values(_diff(x), float(params.get("delta", 1.0)))
    return Forward(_weighted(values, params))


def huber_backward(x: dict, params: dict, upstream: float) -> dict:
    """∂l/∂a = w·clamp(d, −δ, δ)."""
    d = _diff(x)
    delta = float(params.get("delta", 1.0))
    # ATen's backward: x < -delta ? -delta : x > delta ? delta : x
    g = np.where(d < -delta, -delta, np.where(d > delta, delta, d)) * upstream
    w = _weight(params)
    return _to_pred(g if w is None else w * g, x["pred"])


def huber_steps(x: dict, params: dict) -> list[Step]:
    delta = float(params.get("delta", 1.0))
    steps, d = _diff_steps(x)
    z = np.abs(d)
    steps.append(Step("absolute error", "|d|", z))
    steps.append(Step("quadratic branch", f"1 if |d| < δ = {delta:g} else 0 (|d| = δ is linear)", (z < delta).astype(z.dtype)))
    values = _huber_values(d, delta)
    steps.append(Step("huber", "½·d² if |d| < δ else δ·(|d| − ½·δ)", values))
    return _weighted_steps(steps, values, params)


def _validate_huber(x: dict, params: dict) -> None:
    if not float(params.get("delta", 1.0)) > 0:
        raise InvalidInput("delta", "huber_loss does not support non-positive values for delta")
    _validate_weight(x, params)


# -- poisson nll ---------------------------------------------------------------------------

def _stirling(t: np.ndarray) -> np.ndarray:
    """t·log t − t + ½·log(2π·t), set to 0 where t ≤ 1 (torch's masked_fill(target <= 1, 0))."""
    with np.errstate(divide="ignore", invalid="ignore"):
        term = t * np.log(t) - t + 0.5 * np.log(2 * math.pi * t)
    return np.where(t <= 1, 0.0, term)


def poisson_nll_forward(x: dict, params: dict) -> Forward:
    """Poisson negative log-likelihood, as ``torch.nn.functional.poisson_nll_loss``:
        log_input:     l = exp(a) − y·a
        not log_input: l = a − y·log(a + eps)
        full:          l += y·log y − y + ½·log(2πy)  where y > 1 (0 elsewhere).
    'mean' divides by the number of elements.
    """
    a, t = x["pred"], x["target"]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if params.get("log_input", True):
            values = np.exp(a) - t * a
        else:
            values = a - t * np.log(a + float(params.get("eps", 1e-8)))
        if params.get("full", False):
            values = values + _stirling(t)
    return Forward(values)


def poisson_nll_backward(x: dict, params: dict, upstream: float) -> dict:
    """∂l/∂a = exp(a) − y (log_input) or 1 − y/(a + eps); the Stirling term has no gradient."""
    a, t = x["pred"], x["target"]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if params.get("log_input", True):
            g = np.exp(a) - t
        else:
            g = 1 - t / (a + float(params.get("eps", 1e-8)))
    return _to_pred(g * upstream, a)


def poisson_nll_steps(x: dict, params: dict) -> list[Step]:
    a, t = np.broadcast_arrays(x["pred"], x["target"])
    steps = [Step("prediction", "a", a), Step("target", "y", t)]
    if params.get("log_input", True):
        steps.append(Step("rate", "λ = exp(a)", np.exp(a)))
        steps.append(Step("y·log λ", "y·a", t * a))
        values = np.exp(a) - t * a
        steps.append(Step("negative log-likelihood", "exp(a) − y·a", values))
    else:
        eps = float(params.get("eps", 1e-8))
        steps.append(Step("log rate", f"log(a + eps), eps = {eps:g}", np.log(a + eps)))
        values = a - t * np.log(a + eps)
        steps.append(Step("negative log-likelihood", "a − y·log(a + eps)", values))
    if params.get("full", False):
        s = _stirling(t)
        steps.append(Step("Stirling term", "y·log y − y + ½·log(2πy) where y > 1, else 0", s))
        values = values + s
    steps.append(Step("loss", "l", values))
    return steps


# -- gaussian nll --------------------------------------------------------------------------

def _var_view(var: np.ndarray, pred_shape: tuple[int, ...]) -> np.ndarray:
    """var shaped to broadcast against the prediction, as torch's gaussian_nll_loss does:
    a scalar is ``var·ones_like(input)``; ``input.shape[:-1]`` gains a trailing axis
    (one variance per sample); anything else broadcasts as it is (validated)."""
    if var.ndim > 0 and var.shape != pred_shape and var.shape == pred_shape[:-1]:
        return var[..., None]
    return var


def _var_grad_to_given(g: np.ndarray, var: np.ndarray, pred_shape: tuple[int, ...]) -> np.ndarray:
    view = _var_view(var, pred_shape)
    g = sum_to_shape(np.broadcast_to(g, np.broadcast_shapes(g.shape, view.shape)), view.shape)
    return np.reshape(g, var.shape)


def _gaussian_parts(x: dict, params: dict):
    a, t = x["pred"], x["target"]
    var = _var_view(x["var"], a.shape)
    # torch clamps a clone of var under no_grad: the value AND the gradient are taken
    # at max(var, eps), and the gradient still reaches var (the clamp is invisible to autograd).
    var_c = np.maximum(var, float(params.get("eps", 1e-6)))  # np.maximum keeps NaN, as clamp_
    d = a - t
    return a, var_c, d


def gaussian_nll_forward(x: dict, params: dict) -> Forward:
    """Gaussian negative log-likelihood, as ``torch.nn.functional.gaussian_nll_loss``:
        l = ½·(log v + (a − y)²/v)  [+ ½·log(2π) if full],   v = max(var, eps).
    'mean' divides by the number of (broadcast) elements.
    """
    _, var_c, d = _gaussian_parts(x, params)
    with np.errstate(divide="ignore", invalid="ignore"):
        values = 0.5 * (np.log(var_c) + d ** 2 / var_c)
    if params.get("full", False):
        values = values + HALF_LOG_2PI
    return Forward(values)


def gaussian_nll_backward(x: dict, params: dict, upstream: float) -> dict:
    """∂l/∂a = (a − y)/v;  ∂l/∂var = ½·(1/v − (a − y)²/v²), both at v = max(var, eps)
    (torch's autograd does not see the clamp, so clamped entries get this gradient too)."""
    a, var_c, d = _gaussian_parts(x, params)
    with np.errstate(divide="ignore", invalid="ignore"):
        g_pred = 0.5 * (2 * d / var_c) * upstream
        g_var = 0.5 * (1 / var_c - (d ** 2 / var_c) / var_c) * upstream
    out = _to_pred(g_pred, a)
    out["var"] = np.asarray(_var_grad_to_given(g_var, x["var"], a.shape), dtype=a.dtype)
    return out


def gaussian_nll_steps(x: dict, params: dict) -> list[Step]:
    eps = float(params.get("eps", 1e-6))
    a, t, var = np.broadcast_arrays(x["pred"], x["target"], x["var"])
    var_c = np.maximum(var, eps)
    d = a - t
    steps = [
        Step("prediction (mean)", "a", a),
        Step("target", "y", t),
        Step("variance", "var", var),
        Step("clamped variance", f"v = max(var, eps), eps = {eps:g}", var_c),
        Step("log variance", "log v", np.log(var_c)),
        Step("squared error over variance", "(a − y)²/v", d ** 2 / var_c),
    ]
    values = 0.5 * (np.log(var_c) + d ** 2 / var_c)
    steps.append(Step("negative log-likelihood", "½·(log v + (a − y)²/v)", values))
    if params.get("full", False):
        values = values + HALF_LOG_2PI
        steps.append(Step("full", "+ ½·log(2π)", values))
    steps.append(Step("loss", "l", values))
    return steps


def _gaussian_align(x: dict, params: dict) -> dict:
    out = dict(x)
    out["var"] = _var_view(x["var"], x["pred"].shape)
    return out


def _validate_gaussian(x: dict, params: dict) -> None:
    a, var = x["pred"], x["var"]
    if np.any(var < 0):
        where = [int(i) for i in np.argwhere(var < 0)[0]]
        raise InvalidInput("var", f"var has negative entry/entries (first at index {where})")
    if var.ndim > 0 and var.shape != a.shape and var.shape != a.shape[:-1]:
        # torch: equal ndim and the sizes of var in the mismatching dims sum to 1 (one dim of size 1)
        mismatched = [v for p, v in zip(a.shape, var.shape) if p != v] if var.ndim == a.ndim else None
        if mismatched is None or sum(mismatched) != 1:
            raise InvalidInput(
                "var", f"shape {var.shape} is of incorrect size for a prediction of shape {a.shape}: give the "
                f"prediction's shape, its shape without the last dimension {a.shape[:-1]}, or size 1 in one dimension")
    try:
        np.broadcast_shapes(a.shape, x["target"].shape, _var_view(var, a.shape).shape)
    except ValueError:
        raise InvalidInput("var", f"shape {var.shape} does not broadcast with the prediction {a.shape} "
                                  f"and the target {x['target'].shape}") from None


# -- the registry rows ---------------------------------------------------------------------

MSE = LossSpec(
    name="mse",
    aliases=("mse-loss",),
    mirrors="torch.nn.functional.mse_loss",
    summary="Mean squared error between predictions and targets.",
    formula="l = w·(a − y)²; 'mean' divides by the number of elements, or by Σ w with a weight",
    kinds={"pred": None},
    params=(MEAN_WEIGHT,),
    target="broadcast",
    forward=mse_forward,
    backward=mse_backward,
    steps=mse_steps,
    validate=_validate_weight,
    notes="The target broadcasts with the prediction as in torch (which warns when the sizes differ).",
    conventions=MSE_CONVENTIONS,
)

L1 = LossSpec(
    name="l1",
    aliases=("l1-loss",),
    mirrors="torch.nn.functional.l1_loss",
    summary="Mean absolute error between predictions and targets.",
    formula="l = w·|a − y|; gradient sign(a − y) with sign(0) = 0; 'mean' divides by Σ w with a weight",
    kinds={"pred": None},
    params=(MEAN_WEIGHT,),
    target="broadcast",
    forward=l1_forward,
    backward=l1_backward,
    steps=l1_steps,
    validate=_validate_weight,
    conventions=L1_CONVENTIONS,
)

SMOOTH_L1 = LossSpec(
    name="smooth-l1",
    aliases=("smooth-l1-loss",),
    mirrors="torch.nn.functional.smooth_l1_loss",
    summary="Smooth L1: quadratic below beta, linear above (beta = 0 is l1).",
    formula="l = ½·d²/β if |d| < β else |d| − ½·β, d = a − y",
    kinds={"pred": None},
    params=(BETA,),
    target="broadcast",
    forward=smooth_l1_forward,
    backward=smooth_l1_backward,
    steps=smooth_l1_steps,
    validate=_validate_beta,
    notes="At |d| = β the linear branch is used (the gradient is ±1 either way). torch's smooth_l1 has no weight.",
)

HUBER = LossSpec(
    name="huber",
    aliases=("huber-loss",),
    mirrors="torch.nn.functional.huber_loss",
    summary="Huber loss: quadratic below delta, linear above.",
    formula="l = w·(½·d² if |d| < δ else δ·(|d| − ½·δ)); 'mean' divides by the number of elements",
    kinds={"pred": None},
    params=(DELTA, HUBER_WEIGHT),
    target="broadcast",
    forward=huber_forward,
    backward=huber_backward,
    steps=huber_steps,
    validate=_validate_huber,
    notes=f"With {ref('weight')}, 'mean' is mean(w·l) (÷ number of elements), unlike mse/l1 (÷ Σ w): torch 2.13's rule.",
    conventions=HUBER_CONVENTIONS,
)

POISSON_NLL = LossSpec(
    name="poisson-nll",
    aliases=("poisson-nll-loss",),
    mirrors="torch.nn.functional.poisson_nll_loss",
    summary="Poisson negative log-likelihood of targets given a (log-)rate.",
    formula="l = exp(a) − y·a (log input) or a − y·log(a + eps); full: + Stirling term where y > 1",
    kinds={"pred": None},
    params=(LOG_INPUT, POISSON_FULL, POISSON_EPS),
    target="broadcast",
    forward=poisson_nll_forward,
    backward=poisson_nll_backward,
    steps=poisson_nll_steps,
    notes="The Stirling term is 0 for every target ≤ 1 (0, 0.5 and 1 included) and has no gradient.",
    conventions=POISSON_CONVENTIONS,
)

GAUSSIAN_NLL = LossSpec(
    name="gaussian-nll",
    aliases=("gaussian-nll-loss",),
    mirrors="torch.nn.functional.gaussian_nll_loss",
    summary="Gaussian negative log-likelihood with predicted mean and variance.",
    formula="l = ½·(log v + (a − y)²/v) [+ ½·log 2π], v = max(var, eps)",
    kinds={"pred": None},
    extra_inputs=("var",),
    params=(GAUSSIAN_FULL, GAUSSIAN_EPS),
    target="broadcast",
    forward=gaussian_nll_forward,
    backward=gaussian_nll_backward,
    steps=gaussian_nll_steps,
    validate=_validate_gaussian,
    align=_gaussian_align,
    notes=(f"{ref('var')}: the prediction's shape, its shape without the last dimension (one variance per sample), "
           "size 1 in one dimension, or a single number. var is clamped at eps as torch does: the gradient "
           "with respect to var is still given there (torch's clamp is invisible to autograd)."),
)

SPECS = (MSE, L1, SMOOTH_L1, HUBER, POISSON_NLL, GAUSSIAN_NLL)
