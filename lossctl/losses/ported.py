"""Keras, optax and scikit-learn definitions of losses PyTorch also has.

Each kernel takes traced inputs in lossctl's canonical layout (class axis 1) and
returns the framework's per-sample values, recording the framework's own steps
(clip, renormalisation, smoothing, inner reduction) on the tape.
"""

from __future__ import annotations

import warnings

import numpy as np

from ..core import tape as T
from ..errors import InputWarning, InvalidInput, UsageError, ref
from ..core.registry import Convention, Param, torch_convention
from .framework_common import keras_clip_reason, keras_eps, keras_last_axis, refuse_outside_unit, sklearn_eps, sklearn_rows_mean

KERAS_LABEL_SMOOTHING = Param("label_smoothing", "float", 0.0,
                              "Keras: squeeze binary targets towards 1/2: y·(1−ε) + ε/2 (PyTorch's BCE has none).")


# --- binary cross-entropy -------------------------------------------------------------------

def keras_bce(t: T.Tape, x: dict, params: dict) -> T.Var:
    """keras.losses.BinaryCrossentropy: probabilities clipped to [ε, 1 − ε] (ε = 1e-7), then
    −[y·log p + (1−y)·log(1−p)]; logits through the stable with-logits form; mean over the last axis."""
    y = x["target"]
    ls = float(params.get("label_smoothing") or 0.0)
    if ls:
        smoothed = y * (1 - ls) + 0.5 * ls
        t.step("smooth", "smoothed target", f"y·(1−ε) + ε/2, ε = {ls:g}", smoothed, before=y,
               reason="keras smooths binary targets towards 1/2: y·(1−ε) + ε/2", symbol="y")
        y = smoothed
    if "logits" in x:
        z = x["logits"]
        values = y * T.softplus_(-z) + (1 - y) * T.softplus_(z)
        t.step("bce", "binary cross-entropy", "y·softplus(−z) + (1−y)·softplus(z)", values)
    else:
        p = x["probs"]
        lo, hi = keras_eps(p.dtype)
        clipped = T.clip(p, lo, hi)
        t.step("clip", "clipped probability", "clip(p, ε, 1 − ε), ε = 1e-7", clipped, before=p,
               reason=keras_clip_reason(p.dtype), symbol="p")
        values = -(y * T.log(clipped) + (1 - y) * T.log1p(-clipped))
        t.step("bce", "binary cross-entropy", "−[y·log p + (1−y)·log(1−p)]", values)
    return keras_last_axis(t, values)


def optax_bce(t: T.Tape, x: dict, params: dict) -> T.Var:
    """optax.losses.sigmoid_binary_cross_entropy: −y·log σ(z) − (1−y)·log σ(−z), per element."""
    z, y = x["logits"], x["target"]
    values = -(y * T.log_sigmoid_(z)) - (1 - y) * T.log_sigmoid_(-z)
    t.step("bce", "sigmoid binary cross-entropy", "−y·log_sigmoid(z) − (1−y)·log_sigmoid(−z)", values)
    return values


def sklearn_binary_log_loss(t: T.Tape, x: dict, params: dict) -> T.Var:
    """sklearn.metrics.log_loss on P(class 1): columns [1 − p, p] clipped to [eps, 1 − eps]
    (eps of the input dtype), −log of the true label's column."""
    p, y = x["probs"], x["target"]
    eps = sklearn_eps(p.dtype)
    cols = (T.clip(1 - p, eps, 1 - eps), T.clip(p, eps, 1 - eps))
    t.step("clip", "clipped probability", f"clip(p, eps, 1 − eps), eps = {float(eps):.3g} (finfo({p.dtype}).eps)",
           cols[1], before=p, reason=f"scikit-learn clips p to [eps, 1 − eps], eps = finfo({p.dtype}).eps = {float(eps):.3g}",
           symbol="p")
    values = -(y * T.log(cols[1]) + (1 - y) * T.log(cols[0]))
    t.step("log_loss", "log loss", "−log p_y", values)
    return values


def _sklearn_binary_validate(x: dict, params: dict) -> None:
    p, y = x["probs"], x["target"]
    if p.ndim != 1:
        raise InvalidInput("probs", f"scikit-learn's log_loss reads a 1-D {ref('probs')} as P(class 1); "
                           f"got shape {p.shape} (use ce for class probabilities)")
    refuse_outside_unit("probs", p, "scikit-learn's log_loss")
    if not np.all((y == 0) | (y == 1)):
        raise InvalidInput("target", "scikit-learn's log_loss takes class labels 0 and 1, not probabilities")


def _torch_bce_departures(x: dict, call: dict) -> list:
    """torch clamps each log term of binary_cross_entropy at −100: p = 0 with y > 0, or p = 1 with y < 1."""
    if "probs" not in x:
        return []
    p, y = np.broadcast_arrays(x["probs"], x["target"])
    hit = ((p == 0) & (y != 0)) | ((p == 1) & (y != 1))
    if not hit.any():
        return []
    index = tuple(int(i) for i in np.argwhere(hit)[0])
    return [("clamp", "torch clamps log p and log(1 − p) at −100 (log 0 = −inf costs 100)", index,
             f"p = {float(p[index]):g}, y = {float(y[index]):g}")]


def _torch_nll_departures(x: dict, call: dict) -> list:
    """torch's NLL of log p on probabilities: log 0 = −inf, unclipped."""
    if "probs" not in x or np.ndim(x["probs"]) != 2 or np.ndim(x["target"]) != 1:
        return []
    p = x["probs"]
    y = np.asarray(x["target"]).astype(np.intp)
    ok = (y >= 0) & (y < p.shape[1])
    picked = np.where(ok, p[np.arange(len(y)), np.where(ok, y, 0)], 1.0)
    hit = picked == 0
    if not hit.any():
        return []
    row = int(np.argwhere(hit)[0][0])
    return [("log", "torch takes log p unclipped: p_y = 0 gives inf", (row,), f"p_y = 0 (class {int(y[row])})")]


BCE_CONVENTIONS = {
    "torch": torch_convention("torch.nn.functional.binary_cross_entropy",
                              f"each log term clamped at −100 (p = 0 or 1 costs 100); {ref('logits')}: the with-logits form",
                              _torch_bce_departures),
    "keras": Convention("keras", "keras.losses.BinaryCrossentropy",
                        "p clipped to [1e-7, 1−1e-7] in float32 (p = 0 or 1 costs 16.1 / 15.9); ε/2 label smoothing; "
                        "mean over the last axis, ÷ batch size with sample weights",
                        keras_bce, kinds=("probs", "logits"), params=("label_smoothing",),
                        extra_params=(KERAS_LABEL_SMOOTHING,)),
    "optax": Convention("optax", "optax.losses.sigmoid_binary_cross_entropy",
                        "logits only; per element, not reduced", optax_bce, kinds=("logits",)),
    "sklearn": Convention("sklearn", "sklearn.metrics.log_loss",
                          "1-D P(class 1), labels 0/1; p clipped to [eps, 1−eps] of the dtype (36.04 in float64); "
                          "np.average over samples (÷ Σ sample_weight)",
                          sklearn_binary_log_loss, kinds=("probs",), validate=_sklearn_binary_validate),
}


# --- cross-entropy ---------------------------------------------------------------------------

def _index(x: dict, pred: T.Var) -> bool:
    return np.ndim(x["target"]) == pred.ndim - 1


def keras_ce(t: T.Tape, x: dict, params: dict) -> T.Var:
    """keras.losses.CategoricalCrossentropy (probability targets) / SparseCategoricalCrossentropy
    (class indices): probabilities divided by their row sum, clipped to [ε, 1 − ε], logged;
    logits through log_softmax; ``ignore_index`` is Keras's ``ignore_class`` (a mask)."""
    pred = x.get("logits", x.get("probs"))
    y = x["target"]
    if "logits" in x:
        lp = T.log_softmax_(x["logits"], axis=1)
        t.step("log_softmax", "log-probability", "log_softmax(z)", lp)
    else:
        p = x["probs"]
        renormalised = p / T.total(p, axis=1, keepdims=True)
        t.step("renormalise", "renormalised probability", "p / Σ_c p", renormalised, before=p,
               reason="keras divides each row of p by its sum", symbol="p")
        lo, hi = keras_eps(p.dtype)
        clipped = T.clip(renormalised, lo, hi)
        t.step("clip", "clipped probability", "clip(p, ε, 1 − ε), ε = 1e-7", clipped, before=renormalised,
               reason=keras_clip_reason(p.dtype), symbol="p")
        lp = T.log(clipped)
        t.step("log", "log-probability", "log p", lp)
    if _index(x, pred):
        ignore = params.get("ignore_index", -100)
        valid = y != ignore
        safe = np.where(valid, y, 0).astype(np.intp)
        values = T.where(valid, -T.take(lp, safe, axis=1), 0.0)
        if not valid.all():
            t.mask = valid
        t.step("nll", "negative log-likelihood", "−log p_y", values)
        return values
    ls = float(params.get("label_smoothing") or 0.0)
    if ls:
        n_classes = pred.shape[1]
        smoothed = y * (1 - ls) + ls / n_classes
        t.step("smooth", "smoothed target", f"y·(1−ε) + ε/C, ε = {ls:g}", smoothed, before=y,
               reason="keras smooths the target: y·(1−ε) + ε/C", symbol="y")
        y = smoothed
    values = -T.total(y * lp, axis=1)
    t.step("ce", "cross-entropy", "−Σ_c y_c·log p_c", values)
    return values


def _keras_ce_validate(x: dict, params: dict) -> None:
    pred = x.get("logits", x.get("probs"))
    if np.ndim(x["target"]) == np.ndim(pred) - 1 and float(params.get("label_smoothing") or 0.0):
        raise UsageError(f"{ref('label_smoothing')}: keras's SparseCategoricalCrossentropy has no label smoothing "
                         "(give one-hot targets: CategoricalCrossentropy has it)")


def optax_ce(t: T.Tape, x: dict, params: dict) -> T.Var:
    """optax.losses.softmax_cross_entropy_with_integer_labels (class indices: logsumexp(z) − z_y)
    and softmax_cross_entropy (probability targets: −Σ y·log_softmax(z)); label smoothing is
    optax.smooth_labels on the one-hot targets, (1−α)·y + α/K."""
    z, y = x["logits"], x["target"]
    ls = float(params.get("label_smoothing") or 0.0)
    if _index(x, z) and not ls:
        values = T.logsumexp_(z, axis=1) - T.take(z, y.astype(np.intp), axis=1)
        t.step("ce", "cross-entropy", "logsumexp(z) − z_y", values)
        return values
    if _index(x, z):
        onehot = np.moveaxis(np.eye(z.shape[1], dtype=z.dtype)[y.astype(np.intp)], -1, 1)
        y = onehot
    if ls:
        smoothed = (1 - ls) * y + ls / z.shape[1]
        t.step("smooth", "smooth_labels", f"(1−α)·y + α/K, α = {ls:g}", smoothed, before=y,
               reason="optax.smooth_labels: (1−α)·y + α/K", symbol="y")
        y = smoothed
    lp = T.log_softmax_(z, axis=1)
    t.step("log_softmax", "log-probability", "log_softmax(z)", lp)
    values = -T.total(y * lp, axis=1)
    t.step("ce", "cross-entropy", "−Σ_c y_c·log_softmax(z)_c", values)
    return values


def _no_ignored(framework: str):
    def validate(x: dict, params: dict) -> None:
        pred = x.get("logits", x.get("probs"))
        y = x["target"]
        if np.ndim(y) == np.ndim(pred) - 1:
            ignore = params.get("ignore_index", -100)
            bad = y == ignore
            if np.any(bad):
                where = [int(i) for i in np.argwhere(bad)[0]]
                raise InvalidInput("target", f"{framework} has no ignore_index: {ignore} at index {where} is not a class")
    return validate


def sklearn_log_loss(t: T.Tape, x: dict, params: dict) -> T.Var:
    """sklearn.metrics.log_loss: probabilities clipped to [eps, 1 − eps] (eps of the input dtype),
    not renormalised (a warning if rows do not sum to 1); −log p_y."""
    p, y = x["probs"], x["target"]
    eps = sklearn_eps(p.dtype)
    clipped = T.clip(p, eps, 1 - eps)
    t.step("clip", "clipped probability", f"clip(p, eps, 1 − eps), eps = {float(eps):.3g}", clipped, before=p,
           reason=f"scikit-learn clips p to [eps, 1 − eps], eps = finfo({p.dtype}).eps = {float(eps):.3g}", symbol="p")
    values = -T.take(T.log(clipped), y.astype(np.intp), axis=1)
    t.step("log_loss", "log loss", "−log p_y", values)
    return values


def sklearn_log_loss_validate(x: dict, params: dict) -> None:
    p, y = x["probs"], x["target"]
    if p.ndim != 2 or np.ndim(y) != 1:
        raise InvalidInput("probs", f"scikit-learn's log_loss takes (N, C) probabilities and N class labels; "
                           f"got shapes {p.shape} and {np.shape(y)}")
    refuse_outside_unit("probs", p, "scikit-learn's log_loss")
    sums = p.sum(axis=1)
    eps = np.finfo(p.dtype).eps
    if not np.all(np.isclose(sums, 1, rtol=np.sqrt(eps), atol=0)):
        row = int(np.argwhere(~np.isclose(sums, 1, rtol=np.sqrt(eps), atol=0))[0][0])
        warnings.warn(InputWarning(f"{ref('probs')}: row {row} sums to {float(sums[row]):.6g}, not 1; scikit-learn's log_loss "
                                   "warns and computes without renormalising (so does lossctl)",
                                   f"{ref('probs')}: probabilities do not sum to one"), stacklevel=3)


CE_CONVENTIONS = {
    "torch": torch_convention("torch.nn.functional.cross_entropy",
                              f"logits by default; {ref('probs')}: NLL of log p, unclipped (p = 0 gives inf); class weights ÷ Σ w_y",
                              _torch_nll_departures),
    "keras": Convention("keras", "keras.losses.CategoricalCrossentropy / SparseCategoricalCrossentropy",
                        "probabilities by default, rows renormalised then clipped to [1e-7, 1−1e-7] in float32; "
                        "no class weights; smoothing only with one-hot targets",
                        keras_ce, kinds=("probs", "logits"), params=("label_smoothing", "ignore_index"),
                        validate=_keras_ce_validate),
    "optax": Convention("optax", "optax.losses.softmax_cross_entropy(_with_integer_labels)",
                        "logits only; per example, not reduced; no class weights or ignore_index",
                        optax_ce, kinds=("logits",), params=("label_smoothing",), validate=_no_ignored("optax")),
    "sklearn": Convention("sklearn", "sklearn.metrics.log_loss",
                          "probabilities and class labels only; clipped to [eps, 1−eps] of the dtype, not renormalised",
                          sklearn_log_loss, kinds=("probs",), validate=lambda x, p: (_no_ignored("scikit-learn")(x, p),
                                                                                     sklearn_log_loss_validate(x, p))),
}


# --- regression ------------------------------------------------------------------------------

def _error(t: T.Tape, x: dict, sign: int = 1) -> T.Var:
    e = x["pred"] - x["target"] if sign > 0 else x["target"] - x["pred"]
    return t.step("error", "error", "ŷ − y" if sign > 0 else "y − ŷ", e)


def keras_mse(t, x, params):
    """keras.losses.MeanSquaredError: mean over the last axis of (y − ŷ)²."""
    sq = T.square(_error(t, x, -1))
    t.step("square", "squared error", "(y − ŷ)²", sq)
    return keras_last_axis(t, sq)


def optax_squared_error(t, x, params):
    """optax.losses.squared_error: (ŷ − y)² per element (optax.losses.l2_loss is half of it)."""
    sq = T.square(_error(t, x))
    t.step("square", "squared error", "(ŷ − y)²", sq)
    return sq


def sklearn_mse(t, x, params):
    """sklearn.metrics.mean_squared_error: (y − ŷ)², each sample's outputs averaged, np.average over samples."""
    sq = T.square(_error(t, x, -1))
    t.step("square", "squared error", "(y − ŷ)²", sq)
    return sklearn_rows_mean(t, sq)


def keras_mae(t, x, params):
    """keras.losses.MeanAbsoluteError: mean over the last axis of |y − ŷ|."""
    a = T.absolute(_error(t, x, -1))
    t.step("abs", "absolute error", "|y − ŷ|", a)
    return keras_last_axis(t, a)


def sklearn_mae(t, x, params):
    """sklearn.metrics.mean_absolute_error: |y − ŷ|, outputs averaged, np.average over samples."""
    a = T.absolute(_error(t, x, -1))
    t.step("abs", "absolute error", "|y − ŷ|", a)
    return sklearn_rows_mean(t, a)


def keras_huber(t, x, params):
    """keras.losses.Huber: ½e² where |e| ≤ δ, δ·|e| − ½δ² beyond; mean over the last axis."""
    d = float(params.get("delta", 1.0))
    e = _error(t, x)
    a = T.absolute(e)
    values = T.where(a.value <= d, 0.5 * T.square(e), d * a - 0.5 * d * d)
    t.step("huber", "huber", f"½e² if |e| ≤ δ else δ·|e| − ½δ², δ = {d:g}", values)
    return keras_last_axis(t, values)


def optax_huber(t, x, params):
    """optax.losses.huber_loss: ½·min(|e|, δ)² + δ·(|e| − min(|e|, δ)), per element."""
    d = float(params.get("delta", 1.0))
    a = T.absolute(_error(t, x))
    q = T.minimum(a, d)
    values = 0.5 * T.square(q) + d * (a - q)
    t.step("huber", "huber", f"½·min(|e|, δ)² + δ·(|e| − min(|e|, δ)), δ = {d:g}", values)
    return values


MSE_CONVENTIONS = {
    "torch": torch_convention("torch.nn.functional.mse_loss", "mean over every element"),
    "keras": Convention("keras", "keras.losses.MeanSquaredError",
                        "mean over the last axis, then ÷ batch size; float32", keras_mse, kinds=("pred",)),
    "optax": Convention("optax", "optax.losses.squared_error",
                        "per element, not reduced (optax.losses.l2_loss is ½ of it)", optax_squared_error, kinds=("pred",)),
    "sklearn": Convention("sklearn", "sklearn.metrics.mean_squared_error",
                          "outputs averaged per sample, np.average over samples (÷ Σ sample_weight)",
                          sklearn_mse, kinds=("pred",), reductions=("mean", "none")),
}

L1_CONVENTIONS = {
    "torch": torch_convention("torch.nn.functional.l1_loss", "mean over every element"),
    "keras": Convention("keras", "keras.losses.MeanAbsoluteError",
                        "mean over the last axis, then ÷ batch size; float32", keras_mae, kinds=("pred",)),
    "sklearn": Convention("sklearn", "sklearn.metrics.mean_absolute_error",
                          "outputs averaged per sample, np.average over samples (÷ Σ sample_weight)",
                          sklearn_mae, kinds=("pred",), reductions=("mean", "none")),
}

HUBER_CONVENTIONS = {
    "torch": torch_convention("torch.nn.functional.huber_loss", "mean over every element"),
    "keras": Convention("keras", "keras.losses.Huber", "same formula; mean over the last axis; float32",
                        keras_huber, kinds=("pred",), params=("delta",)),
    "optax": Convention("optax", "optax.losses.huber_loss", "same formula; per element, not reduced",
                        optax_huber, kinds=("pred",), params=("delta",)),
}


# --- KL divergence ---------------------------------------------------------------------------

def keras_kl(t, x, params):
    """keras.losses.KLDivergence: y and ŷ (probabilities) clipped to [ε, 1]; Σ_last y·log(y/ŷ)."""
    q, y = x["probs"], x["target"]
    lo, _ = keras_eps(q.dtype)
    yc = T.clip(T.lift(y), lo, 1)
    t.step("clip_target", "clipped target", "clip(y, ε, 1)", yc, before=y, reason=keras_clip_reason(q.dtype, "y", hi=False),
           symbol="y")
    qc = T.clip(q, lo, 1)
    t.step("clip", "clipped prediction", "clip(ŷ, ε, 1)", qc, before=q, reason=keras_clip_reason(q.dtype, "ŷ", hi=False),
           symbol="ŷ")
    values = yc * T.log(yc / qc)
    t.step("kl", "pointwise KL", "y·log(y/ŷ)", values)
    return keras_last_axis(t, values, "sum")


def optax_kl(t, x, params):
    """optax.losses.kl_divergence(log_predictions, targets): Σ_last t·(log t − x) with 0·log 0 = 0;
    with log targets, kl_divergence_with_log_targets: Σ exp(t)·(t − x)."""
    lq, y = x["log_probs"], x["target"]
    if params.get("log_target"):
        values = np.exp(y) * (y - lq)
        t.step("kl", "pointwise KL", "exp(t)·(t − x)", values)
    else:
        with np.errstate(divide="ignore"):
            log_t = np.where(y == 0, 0.0, np.log(np.where(y == 0, 1.0, y)))
        values = y * (log_t - lq)
        t.step("kl", "pointwise KL", "t·(log t − x), log 0 read as 0", values)
    if T.lift(values).ndim < 2:
        return values
    out = T.total(T.lift(values), axis=-1)
    t.step("inner", "sum over the last axis", "Σ_last", out)
    return out


KL_CONVENTIONS = {
    "torch": torch_convention("torch.nn.functional.kl_div",
                              "log q first; 'mean' ÷ N·C (warns), 'batchmean' is the KL; 0·log 0 = 0"),
    "keras": Convention("keras", "keras.losses.KLDivergence",
                        "probabilities; y and ŷ clipped to [1e-7, 1]; Σ over the last axis, then ÷ batch size; float32",
                        keras_kl, kinds=("probs",)),
    "optax": Convention("optax", "optax.losses.kl_divergence",
                        "log q first; Σ over the last axis, not reduced", optax_kl, kinds=("log_probs",),
                        params=("log_target",)),
}

BCE_LOGITS_CONVENTIONS = {
    "torch": torch_convention("torch.nn.functional.binary_cross_entropy_with_logits", "stable with-logits form; pos_weight"),
    "keras": Convention("keras", "keras.losses.BinaryCrossentropy(from_logits=True)",
                        "same stable form; ε/2 label smoothing; mean over the last axis; float32",
                        keras_bce, kinds=("logits",), params=("label_smoothing",), extra_params=(KERAS_LABEL_SMOOTHING,)),
    "optax": Convention("optax", "optax.losses.sigmoid_binary_cross_entropy", "same values; per element, not reduced",
                        optax_bce, kinds=("logits",)),
}


# --- Poisson ---------------------------------------------------------------------------------

def keras_poisson(t, x, params):
    """keras.losses.Poisson: mean over the last axis of ŷ − y·log(ŷ + ε), ε = 1e-7 (ŷ is the rate)."""
    p, y = x["pred"], x["target"]
    values = p - y * T.log(p + float(np.dtype(p.dtype).type(1e-7)))
    t.step("poisson", "Poisson NLL", "ŷ − y·log(ŷ + ε), ε = 1e-7", values)
    return keras_last_axis(t, values)


POISSON_CONVENTIONS = {
    "torch": torch_convention("torch.nn.functional.poisson_nll_loss",
                              "log_input=True by default: the prediction is log(rate), l = exp(a) − y·a"),
    "keras": Convention("keras", "keras.losses.Poisson",
                        "the prediction is the rate (torch's log_input=False) with ε = 1e-7; mean over the last axis; "
                        "float32", keras_poisson, kinds=("pred",), params=("log_input",)),
}


# --- binary focal ----------------------------------------------------------------------------

KERAS_CLASS_BALANCING = Param("apply_class_balancing", "bool", False,
                              "Keras: weigh by α·y + (1−α)·(1−y) (off by default in Keras; torchvision always applies α).")


def keras_binary_focal(t, x, params):
    """keras.losses.BinaryFocalCrossentropy: (1 − p_t)^γ·BCE(clip(p)), × (α·y + (1−α)(1−y)) only with
    apply_class_balancing; logits go through a sigmoid first (then the clip)."""
    y = x["target"]
    a, g = float(params.get("alpha", 0.25)), float(params.get("gamma", 2.0))
    ls = float(params.get("label_smoothing") or 0.0)
    if ls:
        smoothed = y * (1 - ls) + 0.5 * ls
        t.step("smooth", "smoothed target", f"y·(1−ε) + ε/2, ε = {ls:g}", smoothed, before=y,
               reason="keras smooths binary targets towards 1/2", symbol="y")
        y = smoothed
    if "logits" in x:
        p = T.sigmoid_(x["logits"])
        t.step("sigmoid", "probability", "σ(z)  (keras's focal losses always go through probabilities)", p)
    else:
        p = x["probs"]
    lo, hi = keras_eps(p.dtype)
    clipped = T.clip(p, lo, hi)
    t.step("clip", "clipped probability", "clip(p, ε, 1 − ε)", clipped, before=p, reason=keras_clip_reason(p.dtype),
           symbol="p")
    bce = -(y * T.log(clipped) + (1 - y) * T.log1p(-clipped))
    p_t = y * p + (1 - y) * (1.0 - p)
    values = T.power(1.0 - p_t, g) * bce
    t.step("focal", "focal BCE", f"(1 − p_t)^γ·BCE, γ = {g:g}", values)
    if params.get("apply_class_balancing"):
        values = (y * a + (1 - y) * (1 - a)) * values
        t.step("alpha", "class balancing", f"(α·y + (1−α)(1−y))·l, α = {a:g}", values)
    return keras_last_axis(t, values)


def optax_sigmoid_focal(t, x, params):
    """optax.losses.sigmoid_focal_loss: BCE(z)·(1 − p_t)^γ (in log space), × (α·y + (1−α)(1−y)) unless
    alpha is None (lossctl: a negative --alpha)."""
    z, y = x["logits"], x["target"]
    a, g = float(params.get("alpha", 0.25)), float(params.get("gamma", 2.0))
    ce = -(y * T.log_sigmoid_(z)) - (1 - y) * T.log_sigmoid_(-z)
    one_minus_pt = (1 - y) * T.sigmoid_(z) + y * T.sigmoid_(-z)
    values = ce * T.exp(g * T.log(one_minus_pt))
    t.step("focal", "focal BCE", f"BCE·exp(γ·log(1 − p_t)), γ = {g:g}", values)
    if a >= 0:
        values = (a * y + (1.0 - a) * (1 - y)) * values
        t.step("alpha", "alpha weight", f"(α·y + (1−α)(1−y))·l, α = {a:g}", values)
    return values


FOCAL_CONVENTIONS = {
    "torch": torch_convention("torchvision.ops.sigmoid_focal_loss", "α = 0.25 applied by default; stable from logits"),
    "keras": Convention("keras", "keras.losses.BinaryFocalCrossentropy",
                        "α only with apply_class_balancing (off by default); sigmoid then clip even from logits "
                        "(z = 20 costs 15.9, not 20); mean over the last axis; float32", keras_binary_focal,
                        kinds=("probs", "logits"), params=("alpha", "gamma", "label_smoothing", "apply_class_balancing"),
                        extra_params=(KERAS_LABEL_SMOOTHING, KERAS_CLASS_BALANCING)),
    "optax": Convention("optax", "optax.losses.sigmoid_focal_loss",
                        f"alpha=None by default (lossctl: {ref('alpha')} −1); logits only; per element", optax_sigmoid_focal,
                        kinds=("logits",), params=("alpha", "gamma")),
}


# --- triplet margin --------------------------------------------------------------------------

def optax_triplet(t, x, params):
    """optax.losses.triplet_margin_loss: max(d(a, p) − d(a, n) + margin, 0), d(u, v) = (Σ (u − v)^deg + eps)^(1/deg)
    (eps inside the sum, no absolute value; torch adds eps to u − v and takes |·|)."""
    a, p, n = x["anchor"], x["positive"], x["negative"]
    deg, eps, m = float(params.get("p", 2.0)), float(params.get("eps", 1e-6)), float(params.get("margin", 1.0))

    def dist(u, v):
        return T.power(T.total(T.power(u - v, deg), axis=-1) + eps, 1.0 / deg)

    dp, dn = dist(a, p), dist(a, n)
    t.step("distances", "d(a, p)", f"(Σ (a − p)^deg + eps)^(1/deg), deg = {deg:g}, eps = {eps:g}", dp)
    values = T.maximum(dp - dn + m, 0.0)
    t.step("triplet", "triplet margin", f"max(d(a, p) − d(a, n) + margin, 0), margin = {m:g}", values)
    return values


TRIPLET_CONVENTIONS = {
    "torch": torch_convention("torch.nn.functional.triplet_margin_loss", "eps added to u − v inside |·|; optional swap"),
    "optax": Convention("optax", "optax.losses.triplet_margin_loss",
                        "eps inside the p-norm's sum, no absolute value (odd degrees differ); no swap; per example",
                        optax_triplet, kinds=("anchor",), params=("p", "eps", "margin")),
}
