"""Probability losses PyTorch lacks: categorical focal (Keras), poly-1, generalized KL and
sparsemax (optax), Brier score and log loss (scikit-learn)."""

from __future__ import annotations

import numpy as np

from ..core import tape as T
from ..errors import InvalidInput, ref
from ..core.registry import Convention, Param
from .framework_common import framework_loss, keras_clip_reason, keras_eps, refuse_outside_unit
from .ported import sklearn_binary_log_loss, sklearn_log_loss, sklearn_log_loss_validate

FOCAL_ALPHA = Param("alpha", "float", 0.25, "Weight of every class's term (Keras applies it always).")
FOCAL_GAMMA = Param("gamma", "float", 2.0, "Focusing exponent on (1 − p).")
SMOOTHING = Param("label_smoothing", "float", 0.0, "Smooth the one-hot targets: y·(1−ε) + ε/C.")
POLY_EPSILON = Param("epsilon", "float", 2.0, "Weight of the poly-1 term ε·(1 − p_t).")
SCALE_BY_HALF = Param("scale_by_half", "choice", "auto", "Halve the score: auto halves binary (range [0, 1]), "
                      "not multiclass.", choices=("auto", "true", "false"))


def keras_categorical_focal(t, x, params):
    """keras.losses.CategoricalFocalCrossentropy: Σ α·(1 − p)^γ·(−y·log p) over the last axis, p renormalised
    and clipped to [ε, 1 − ε] (also from logits, after a softmax)."""
    y = x["target"]
    a, g = float(params.get("alpha", 0.25)), float(params.get("gamma", 2.0))
    ls = float(params.get("label_smoothing") or 0.0)
    if ls:
        smoothed = y * (1 - ls) + ls / y.shape[-1]
        t.step("smooth", "smoothed target", f"y·(1−ε) + ε/C, ε = {ls:g}", smoothed, before=y,
               reason="keras smooths the target: y·(1−ε) + ε/C", symbol="y")
        y = smoothed
    if "logits" in x:
        p = T.softmax_(x["logits"], axis=-1)
        t.step("softmax", "probability", "softmax(z)", p)
    else:
        p = x["probs"]
    renormalised = p / T.total(p, axis=-1, keepdims=True)
    t.step("renormalise", "renormalised probability", "p / Σ p", renormalised, before=p,
           reason="keras divides each row of p by its sum", symbol="p")
    lo, hi = keras_eps(renormalised.dtype)
    clipped = T.clip(renormalised, lo, hi)
    t.step("clip", "clipped probability", "clip(p, ε, 1 − ε)", clipped, before=renormalised,
           reason=keras_clip_reason(renormalised.dtype), symbol="p")
    values = T.total(a * T.power(1.0 - clipped, g) * (-(y * T.log(clipped))), axis=-1)
    t.step("focal", "categorical focal", f"Σ α·(1 − p)^γ·(−y·log p), α = {a:g}, γ = {g:g}", values)
    return values


CATEGORICAL_FOCAL = framework_loss(
    name="categorical-focal", home="keras", kinds=("probs", "logits"), params=(FOCAL_ALPHA, FOCAL_GAMMA, SMOOTHING),
    summary="Categorical focal cross-entropy over one-hot targets (last axis).",
    formula="l = Σ_c α·(1 − p_c)^γ·(−y_c·log p_c); α applied always",
    conventions={"keras": Convention("keras", "keras.losses.CategoricalFocalCrossentropy",
                                     "α always applied (0.25× the unweighted focal loss); p renormalised and clipped, "
                                     "even from logits; float32", keras_categorical_focal, kinds=("probs", "logits"),
                                     params=("alpha", "gamma", "label_smoothing"))},
)


def optax_poly1(t, x, params):
    """optax.losses.poly_loss_cross_entropy: CE + ε·Σ y·(1 − softmax(z)) (last axis)."""
    z, y = x["logits"], x["target"]
    e = float(params.get("epsilon", 2.0))
    lp = T.log_softmax_(z, axis=-1)
    ce = -T.total(y * lp, axis=-1)
    t.step("ce", "cross-entropy", "−Σ y·log_softmax(z)", ce)
    one_minus = T.total(y * (1.0 - T.exp(lp)), axis=-1)
    t.step("pt", "1 − p_t", "Σ y·(1 − softmax(z))", one_minus)
    return ce + e * one_minus


POLY1 = framework_loss(
    name="poly1", aliases=("poly-loss",), home="optax", kinds=("logits",), params=(POLY_EPSILON,),
    summary="Poly-1 loss: cross-entropy plus ε·(1 − p_t) (Leng et al. 2022).",
    formula="l = −Σ y·log softmax(z) + ε·Σ y·(1 − softmax(z))",
    conventions={"optax": Convention("optax", "optax.losses.poly_loss_cross_entropy", "per example, not reduced",
                                     optax_poly1, kinds=("logits",), params=("epsilon",))},
)


def optax_generalized_kl(t, x, params):
    """optax.losses.generalized_kl_divergence: Σ t·(log t − x) + Σ (exp(x) − t), x = log q, 0·log 0 = 0."""
    lq, y = x["log_probs"], x["target"]
    with np.errstate(divide="ignore"):
        log_t = np.where(y == 0, 0.0, np.log(np.where(y == 0, 1.0, y)))
    kl = T.total(y * (log_t - lq), axis=-1)
    t.step("kl", "KL term", "Σ t·(log t − x)", kl)
    mass = T.total(T.exp(lq) - y, axis=-1)
    t.step("mass", "mass term", "Σ (exp(x) − t)", mass)
    return kl + mass


GENERALIZED_KL = framework_loss(
    name="generalized-kl", home="optax", kinds=("log_probs",),
    summary="Generalized KL divergence between unnormalised measures (the Bregman divergence of x·log x − x).",
    formula="l = Σ t·(log t − log q) + Σ (q − t)",
    conventions={"optax": Convention("optax", "optax.losses.generalized_kl_divergence",
                                     "log q first; Σ over the last axis, not reduced", optax_generalized_kl,
                                     kinds=("log_probs",))},
)


def optax_sparsemax(t, x, params):
    """optax.losses.sparsemax_loss (binary): sparse_plus(−z if y else z), sparse_plus(u) = 0 (u ≤ −1),
    (u + 1)²/4 (|u| < 1), u (u ≥ 1)."""
    z, y = x["logits"], x["target"]
    u = T.where(y != 0, -z, z)
    values = T.where(u.value <= -1, 0.0, T.where(u.value >= 1, u, T.square(u + 1.0) / 4.0))
    t.step("sparse_plus", "sparse_plus", "sparse_plus(y ? −z : z)", values)
    return values


SPARSEMAX = framework_loss(
    name="sparsemax", home="optax", kinds=("logits",),
    summary="Binary sparsemax loss (the Fenchel–Young loss of sparsemax).",
    formula="l = sparse_plus(y ? −z : z); sparse_plus(u) = 0, (u + 1)²/4, u for u ≤ −1, |u| < 1, u ≥ 1",
    conventions={"optax": Convention("optax", "optax.losses.sparsemax_loss", "per element, not reduced; labels 0/1",
                                     optax_sparsemax, kinds=("logits",))},
)


def sparsemax_projection(z: np.ndarray) -> np.ndarray:
    """sparsemax(z) along axis 1: the Euclidean projection of each row onto the probability simplex,
    p = max(z − τ, 0) with τ = (Σ_{i≤k} z_(i) − 1)/k, k the support size (z sorted decreasing)."""
    srt = -np.sort(-z, axis=1)
    cums = np.cumsum(srt, axis=1)
    k = np.arange(1, z.shape[1] + 1, dtype=z.dtype)
    support = 1.0 + k * srt > cums
    size = support.sum(axis=1)
    tau = (np.take_along_axis(cums, (size - 1)[:, None], axis=1)[:, 0] - 1.0) / size.astype(z.dtype)
    return np.maximum(z - tau[:, None], 0.0)


def optax_multiclass_sparsemax(t, x, params):
    """optax.losses.multiclass_sparsemax_loss: with p = sparsemax(s), l = Σ_j p_j·(s_j − s_y)·[j ≠ y]
    + ½(1 − Σ_j p_j²) (the Fenchel–Young loss of sparsemax); its gradient is p − onehot(y)."""
    s, y = x["pred"], x["target"].astype(np.intp)
    z = s.value
    p = sparsemax_projection(z)
    t.step("sparsemax", "sparsemax(s)", "projection of s onto the simplex", p)
    rows = np.arange(z.shape[0])
    shifted = z - z[rows, y][:, None]
    shifted[rows, y] = 0.0
    values = np.einsum("ij,ij->i", p, np.where(p != 0, shifted, 0.0)) + 0.5 * (1.0 - np.einsum("ij,ij->i", p, p))
    onehot = np.zeros_like(z)
    onehot[rows, y] = 1.0
    out = T.custom(s, values, lambda g: np.asarray(g)[:, None] * (p - onehot))
    t.step("loss", "multiclass sparsemax loss", "Σ_j p_j·(s_j − s_y) + ½(1 − Σ p_j²)", out.value)
    return out


def _multiclass_sparsemax_validate(x, params):
    if np.ndim(x["pred"]) != 2:
        raise InvalidInput("pred", f"optax.losses.multiclass_sparsemax_loss takes scores (N, C), got shape "
                                   f"{np.shape(x['pred'])}")


MULTICLASS_SPARSEMAX = framework_loss(
    name="multiclass-sparsemax", home="optax", kinds=("pred",), target="index",
    summary="Multiclass sparsemax loss (the Fenchel–Young loss of sparsemax) between scores and class indices.",
    formula="l = Σ_j p_j·(s_j − s_y) + ½(1 − ‖p‖²), p = sparsemax(s)",
    conventions={"optax": Convention("optax", "optax.losses.multiclass_sparsemax_loss", "per example, not reduced",
                                     optax_multiclass_sparsemax, kinds=("pred",),
                                     validate=_multiclass_sparsemax_validate)},
    input_help={"pred": "Scores (N, C).", "target": "Class index per sample (N,)."}, class_axis=True,
)


def sklearn_brier(t, x, params):
    """sklearn.metrics.brier_score_loss: Σ_c (onehot − p)² per sample, np.average; halved for binary by default."""
    p, y = x["probs"], x["target"]
    if p.ndim == 1:
        cols = [1.0 - p, p]
        onehot = [1.0 - y, y]
        values = T.square(onehot[0] - cols[0]) + T.square(onehot[1] - cols[1])
        binary = True
    else:
        onehot = np.eye(p.shape[1], dtype=p.dtype)[y.astype(np.intp)]
        values = T.total(T.square(onehot - p), axis=1)
        binary = p.shape[1] < 3
    t.step("sq", "squared distance", "Σ_c (onehot_c − p_c)²", values)
    half = {"auto": binary, "true": True, "false": False}[str(params.get("scale_by_half", "auto")).lower()]
    if half:
        values = 0.5 * values
        t.step("half", "halved", "½·Σ_c (onehot_c − p_c)² (scale_by_half)", values)
    return values


def _sklearn_brier_validate(x, params):
    p, y = x["probs"], x["target"]
    refuse_outside_unit("probs", p, "scikit-learn's brier_score_loss")
    if p.ndim == 1 and not np.all((y == 0) | (y == 1)):
        raise InvalidInput("target", "scikit-learn's binary brier_score_loss takes labels 0 and 1")
    if p.ndim == 2 and np.ndim(y) != 1:
        raise InvalidInput("target", "scikit-learn's brier_score_loss takes class labels, one per row")


BRIER = framework_loss(
    name="brier", aliases=("brier-score",), home="sklearn", kinds=("probs",), params=(SCALE_BY_HALF,), target="custom",
    summary="Brier score: squared distance between predicted probabilities and the one-hot outcome.",
    formula="l = Σ_c (onehot_c − p_c)², halved for binary (scale_by_half='auto'); 1-D p is P(class 1)",
    validate=_sklearn_brier_validate,
    conventions={"sklearn": Convention("sklearn", "sklearn.metrics.brier_score_loss",
                                       "binary halved to [0, 1], multiclass not (scale_by_half='auto'); np.average",
                                       sklearn_brier, kinds=("probs",), params=("scale_by_half",),
                                       validate=_sklearn_brier_validate, reductions=("mean", "none"))},
    input_help={"probs": "P(class 1) (N,), or class probabilities (N, C).", "target": "Class labels (N,)."},
)


def sklearn_any_log_loss(t, x, params):
    """sklearn.metrics.log_loss: 1-D p as P(class 1), or (N, C) probabilities with class labels."""
    if x["probs"].ndim == 1:
        return sklearn_binary_log_loss(t, x, params)
    return sklearn_log_loss(t, x, params)


def _log_loss_validate(x, params):
    p, y = x["probs"], x["target"]
    if p.ndim == 1:
        refuse_outside_unit("probs", p, "scikit-learn's log_loss")
        if not np.all((y == 0) | (y == 1)):
            raise InvalidInput("target", f"scikit-learn's log_loss reads a 1-D {ref('probs')} as P(class 1): labels 0 and 1")
        return
    sklearn_log_loss_validate(x, params)


LOG_LOSS = framework_loss(
    name="log-loss", home="sklearn", kinds=("probs",), target="custom",
    summary="scikit-learn's log loss: the negative log-likelihood of the labels under clipped probabilities.",
    formula="l = −log clip(p_y, eps, 1 − eps), eps = machine epsilon of the dtype; 1-D p is P(class 1)",
    validate=_log_loss_validate,
    conventions={"sklearn": Convention("sklearn", "sklearn.metrics.log_loss",
                                       "clipped to [eps, 1 − eps] of the dtype (≥ 1.5), not renormalised (a warning); "
                                       "np.average, or the sum", sklearn_any_log_loss, kinds=("probs",),
                                       validate=_log_loss_validate)},
    input_help={"probs": "P(class 1) (N,), or class probabilities (N, C).", "target": "Class labels (N,)."},
)

SPECS = (CATEGORICAL_FOCAL, POLY1, GENERALIZED_KL, SPARSEMAX, MULTICLASS_SPARSEMAX, BRIER, LOG_LOSS)
