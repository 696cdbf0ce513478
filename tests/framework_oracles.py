"""The frameworks themselves as oracles: each (loss, convention) computed by Keras 3 (torch
backend), optax (jax, x64) or scikit-learn, from a lossctl call in the check-suite format.

``ORACLES[(loss, framework)](call) -> {"loss", "per_sample", "grad"}`` imports its framework
lazily. ``CASES[loss]`` are the calls every convention of the loss is checked on (a call a
convention refuses is skipped for it; each convention must accept at least one). Used by
``tests/tools/make_framework_fixtures.py`` (committed fixtures) and the live tests.
"""

from __future__ import annotations

import os

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "torch")

FRAMEWORK_MODULES = {"keras": "keras", "optax": "optax", "sklearn": "sklearn"}

PRED_KEYS = ("logits", "probs", "log_probs", "pred", "x1", "anchor")


def _kind(call: dict) -> str:
    return next(k for k in PRED_KEYS if k in call)


def _f(a, dtype=np.float64):
    return np.asarray(a, dtype=dtype)


# --- keras ------------------------------------------------------------------------------------

def _keras_reduction(call):
    return {"mean": "sum_over_batch_size", "sum": "sum", "none": None}[call.get("reduction", "mean")]


def _keras_dtype(call):
    return call.get("dtype") or "float32"


def _keras_run(make, call, *, y_true, y_pred, class_last=False, one_d_as_column=True):
    """Run a keras loss object: value (reduced), per-sample (reduction None), gradient wrt y_pred."""
    import torch

    kind = _kind(call)
    pred = _f(y_pred)
    target = np.asarray(y_true)
    squeeze = one_d_as_column and pred.ndim == 1
    if squeeze:  # lossctl reads a 1-D input as (N, 1): one sample per element
        pred, target = pred[:, None], (target[:, None] if target.ndim == 1 and target.dtype.kind == "f" else target)
    moved = class_last and pred.ndim > 2
    if moved:
        pred = np.moveaxis(pred, 1, -1)
        if target.ndim == pred.ndim:
            target = np.moveaxis(target, 1, -1)
    sw = call.get("sample_weight")
    out = {}
    for reduction in (_keras_reduction(call), None):
        leaf = torch.tensor(pred, dtype=torch.float64, requires_grad=True)
        loss_obj = make(reduction)
        value = loss_obj(torch.tensor(target), leaf, sample_weight=None if sw is None else torch.tensor(_f(sw)))
        if reduction is None:
            out["per_sample"] = value.detach().double().numpy()
        else:
            out["loss"] = value.detach().double().numpy()
            value.sum().backward()
            g = leaf.grad.numpy()
            if moved:
                g = np.moveaxis(g, -1, 1)
            if squeeze:
                g = g[:, 0]
            out["grad"] = {kind: g}
    if call.get("reduction", "mean") == "none":
        out["loss"] = out["per_sample"]
        # the gradient of the sum of the (weighted) per-sample values
        leaf = torch.tensor(pred, dtype=torch.float64, requires_grad=True)
        value = make(None)(torch.tensor(target), leaf, sample_weight=None if sw is None else torch.tensor(_f(sw)))
        value.sum().backward()
        g = leaf.grad.numpy()
        if moved:
            g = np.moveaxis(g, -1, 1)
        if squeeze:
            g = g[:, 0]
        out["grad"] = {kind: g}
    if squeeze and np.ndim(out["per_sample"]) == 2:
        out["per_sample"] = out["per_sample"][:, 0]
    return out


def keras_oracle(loss: str, call: dict) -> dict:
    import keras

    L = keras.losses
    kind = _kind(call)
    logits = kind == "logits"
    dt = _keras_dtype(call)
    target = np.asarray(call["target"])
    pred = _f(call[kind])
    index = target.ndim == pred.ndim - 1

    def common(reduction):
        return {"reduction": reduction, "dtype": dt}

    if loss in ("bce", "bce-logits"):
        ls = call.get("label_smoothing", 0.0)
        return _keras_run(lambda r: L.BinaryCrossentropy(from_logits=logits, label_smoothing=ls, **common(r)), call,
                          y_true=_f(target), y_pred=pred)
    if loss == "ce":
        if index:
            ignore = call.get("ignore_index")
            ignore = ignore if ignore is not None and np.any(target == ignore) else None
            return _keras_run(lambda r: L.SparseCategoricalCrossentropy(from_logits=logits, ignore_class=ignore, **common(r)),
                              call, y_true=target.astype(np.int64), y_pred=pred, class_last=True, one_d_as_column=False)
        ls = call.get("label_smoothing", 0.0)
        return _keras_run(lambda r: L.CategoricalCrossentropy(from_logits=logits, label_smoothing=ls, **common(r)), call,
                          y_true=_f(target), y_pred=pred, class_last=True, one_d_as_column=False)
    simple = {"mse": L.MeanSquaredError, "l1": L.MeanAbsoluteError, "kl": L.KLDivergence}
    if loss in simple:
        return _keras_run(lambda r: simple[loss](**common(r)), call, y_true=_f(target), y_pred=pred)
    if loss == "huber":
        d = call.get("delta", 1.0)
        return _keras_run(lambda r: L.Huber(delta=d, **common(r)), call, y_true=_f(target), y_pred=pred)
    if loss == "dice" and call.get("axis") is not None:
        return _keras_run(lambda r: L.Dice(axis=_keras_axis(call["axis"]), **common(r)), call, y_true=_f(target),
                          y_pred=pred, one_d_as_column=False)
    more = {"log-cosh": L.LogCosh, "mape": L.MeanAbsolutePercentageError, "msle": L.MeanSquaredLogarithmicError,
            "hinge": L.Hinge, "squared-hinge": L.SquaredHinge, "dice": L.Dice}
    if loss in more:
        return _keras_run(lambda r: more[loss](**common(r)), call, y_true=_f(target), y_pred=pred)
    last = {"categorical-hinge": L.CategoricalHinge, "cosine-similarity": L.CosineSimilarity}
    if loss in last:
        return _keras_run(lambda r: last[loss](**common(r)), call, y_true=_f(target), y_pred=pred, one_d_as_column=False)
    if loss == "poisson-nll":
        return _keras_run(lambda r: L.Poisson(**common(r)), call, y_true=_f(target), y_pred=pred)
    if loss == "focal":
        kw = {k: call[k] for k in ("alpha", "gamma", "label_smoothing", "apply_class_balancing") if k in call}
        return _keras_run(lambda r: L.BinaryFocalCrossentropy(from_logits=logits, **kw, **common(r)), call,
                          y_true=_f(target), y_pred=pred)
    if loss == "tversky":
        a, b = call.get("alpha", 0.5), call.get("beta", 0.5)
        ax = _keras_axis(call.get("axis"))
        return _keras_run(lambda r: L.Tversky(alpha=a, beta=b, axis=ax, **common(r)), call, y_true=_f(target),
                          y_pred=pred, one_d_as_column=ax is None)
    if loss == "ctc":
        return _keras_ctc(call)
    if loss == "categorical-focal":
        kw = {k: call[k] for k in ("alpha", "gamma", "label_smoothing") if k in call}
        return _keras_run(lambda r: L.CategoricalFocalCrossentropy(from_logits=logits, **kw, **common(r)), call,
                          y_true=_f(target), y_pred=pred, one_d_as_column=False)
    raise KeyError(loss)


def _keras_axis(axis):
    """A call's axis value ("1,2", 1, [1, 2]) as Keras takes it (an int or a tuple)."""
    if axis is None:
        return None
    items = axis if isinstance(axis, (list, tuple)) else str(axis).strip("()[] ").split(",")
    axes = tuple(int(a) for a in items)
    return axes[0] if len(axes) == 1 else axes


def _keras_ctc(call):
    """keras.losses.CTC on lossctl's (T, N, C) input, moved to Keras's (N, T, C)."""
    import keras
    import torch

    kind = _kind(call)
    pred = np.moveaxis(_f(call[kind]), 0, 1)
    target = torch.tensor(np.asarray(call["target"], dtype=np.int64))
    sw = call.get("sample_weight")
    out = {}
    for reduction in (_keras_reduction(call), None):
        leaf = torch.tensor(pred, dtype=torch.float64, requires_grad=True)
        value = keras.losses.CTC(reduction=reduction, dtype=_keras_dtype(call))(
            target, leaf, sample_weight=None if sw is None else torch.tensor(_f(sw)))
        if reduction is None:
            out["per_sample"] = value.detach().double().numpy()
            if call.get("reduction", "mean") != "none":
                continue
            out["loss"] = out["per_sample"]
        else:
            out["loss"] = value.detach().double().numpy()
        value.sum().backward()
        out["grad"] = {kind: np.moveaxis(leaf.grad.double().numpy(), 1, 0)}
    return out


# --- optax ------------------------------------------------------------------------------------

def _jax():
    import jax

    jax.config.update("jax_enable_x64", True)
    return jax


def _optax_run(fn, call):
    """fn(pred) -> per-example values (jax); lossctl's mean/sum/none of them, and its gradient."""
    jax = _jax()
    import jax.numpy as jnp

    kind = _kind(call)
    dt = jnp.float32 if call.get("dtype") == "float32" else jnp.float64
    pred = jnp.asarray(_f(call[kind]), dtype=dt)
    reduction = call.get("reduction", "mean")

    def reduced(x):
        v = fn(x)
        return jnp.mean(v) if reduction == "mean" else jnp.sum(v)

    per = np.asarray(fn(pred), dtype=np.float64)
    g = np.asarray(jax.grad(reduced)(pred), dtype=np.float64)
    return {"loss": per if reduction == "none" else float(reduced(pred)), "per_sample": per, "grad": {kind: g}}


def optax_oracle(loss: str, call: dict) -> dict:
    _jax()
    import jax.numpy as jnp
    import optax

    L = optax.losses
    kind = _kind(call)
    target = np.asarray(call.get("target", 0.0))
    if loss in ("bce", "bce-logits"):
        return _optax_run(lambda z: L.sigmoid_binary_cross_entropy(z, jnp.asarray(_f(target), z.dtype)), call)
    if loss == "ce":
        pred = _f(call[kind])
        ls = call.get("label_smoothing", 0.0)
        if target.ndim == pred.ndim - 1 and not ls:
            return _optax_run(lambda z: L.softmax_cross_entropy_with_integer_labels(z, jnp.asarray(target.astype(np.int32)), axis=1), call)
        labels = _f(target) if target.ndim == pred.ndim else np.moveaxis(np.eye(pred.shape[1])[target.astype(int)], -1, 1)
        if ls:
            labels = np.asarray(optax.smooth_labels(jnp.asarray(np.moveaxis(labels, 1, -1)), ls))
            labels = np.moveaxis(labels, -1, 1)
        return _optax_run(lambda z: L.softmax_cross_entropy(z, jnp.asarray(labels, z.dtype), axis=1), call)
    if loss == "mse":
        return _optax_run(lambda x: L.squared_error(x, jnp.asarray(_f(target), x.dtype)), call)
    if loss == "huber":
        return _optax_run(lambda x: L.huber_loss(x, jnp.asarray(_f(target), x.dtype), delta=call.get("delta", 1.0)), call)
    if loss == "log-cosh":
        return _optax_run(lambda x: L.log_cosh(x, jnp.asarray(_f(target), x.dtype)), call)
    if loss == "triplet-margin":
        pos, neg = _f(call["positive"]), _f(call["negative"])
        return _optax_run(lambda x: L.triplet_margin_loss(x, jnp.asarray(pos, x.dtype), jnp.asarray(neg, x.dtype),
                                                          norm_degree=call.get("p", 2.0), margin=call.get("margin", 1.0),
                                                          eps=call.get("eps", 1e-6)), call)
    if loss == "focal":
        a = call.get("alpha", 0.25)
        return _optax_run(lambda x: L.sigmoid_focal_loss(x, jnp.asarray(_f(target), x.dtype), alpha=None if a < 0 else a,
                                                         gamma=call.get("gamma", 2.0)), call)
    if loss == "hinge":
        return _optax_run(lambda x: L.hinge_loss(x, jnp.asarray(_f(target), x.dtype)), call)
    if loss == "perceptron":
        return _optax_run(lambda x: L.perceptron_loss(x, jnp.asarray(_f(target), x.dtype)), call)
    if loss == "multiclass-hinge":
        return _optax_run(lambda x: L.multiclass_hinge_loss(x, jnp.asarray(target.astype(np.int32))), call)
    if loss == "cosine-similarity":
        e = call.get("epsilon", 0.0)
        return _optax_run(lambda x: L.cosine_similarity(x, jnp.asarray(_f(target), x.dtype), epsilon=e), call)
    if loss in ("dice", "tversky"):
        kw = {k: call[k] for k in ("smooth", "alpha", "beta") if k in call and (loss == "tversky" or k == "smooth")}
        if "class_weights" in call:
            kw["class_weights"] = jnp.asarray(_f(call["class_weights"]))
        return _optax_run(lambda x: L.dice_loss(x, jnp.asarray(_f(target), x.dtype), apply_softmax=kind == "logits", **kw),
                          call)
    if loss == "poly1":
        return _optax_run(lambda x: L.poly_loss_cross_entropy(x, jnp.asarray(_f(target), x.dtype),
                                                              epsilon=call.get("epsilon", 2.0)), call)
    if loss == "generalized-kl":
        return _optax_run(lambda x: L.generalized_kl_divergence(x, jnp.asarray(_f(target), x.dtype)), call)
    if loss == "sparsemax":
        return _optax_run(lambda x: L.sparsemax_loss(x, jnp.asarray(_f(target), x.dtype)), call)
    if loss == "ctc":
        return _optax_ctc(call)
    if loss == "multiclass-perceptron":
        return _optax_run(lambda x: L.multiclass_perceptron_loss(x, jnp.asarray(target.astype(np.int32))), call)
    if loss == "multiclass-sparsemax":
        return _optax_run(lambda x: L.multiclass_sparsemax_loss(x, jnp.asarray(target.astype(np.int32))), call)
    if loss == "kl":
        if call.get("log_target"):
            return _optax_run(lambda x: L.kl_divergence_with_log_targets(x, jnp.asarray(_f(target), x.dtype)), call)
        return _optax_run(lambda x: L.kl_divergence(x, jnp.asarray(_f(target), x.dtype)), call)
    raise KeyError(loss)


def _optax_ctc(call):
    """optax.losses.ctc_loss on lossctl's (T, N, C) input: moved to (N, T, C); the lengths as paddings."""
    import jax.numpy as jnp
    import optax

    kind = _kind(call)
    x0 = np.moveaxis(_f(call[kind]), 0, 1)
    n, frames, _ = x0.shape
    il = np.asarray(call["input_lengths"]).reshape(-1)
    tl = np.asarray(call["target_lengths"]).reshape(-1)
    target = np.asarray(call["target"], dtype=np.int64)
    logit_pad = (np.arange(frames)[None, :] >= il[:, None]).astype(np.float64)
    label_pad = (np.arange(target.shape[1])[None, :] >= tl[:, None]).astype(np.float64)

    def fn(x):  # x in lossctl's (T, N, C)
        return optax.losses.ctc_loss(jnp.moveaxis(x, 0, 1), jnp.asarray(logit_pad, x.dtype), jnp.asarray(target),
                                     jnp.asarray(label_pad, x.dtype), blank_id=call.get("blank", 0))

    return _optax_run(fn, call)


# --- scikit-learn -----------------------------------------------------------------------------

def _sklearn_run(metric, call, *, per_row=True):
    """metric(y_true, y_pred, sample_weight, normalize) on the whole batch; per-sample values as the
    metric with a one-hot sample weight (np.average then returns that sample's value)."""
    kind = _kind(call)
    dtype = np.float32 if call.get("dtype") == "float32" else np.float64
    pred = _f(call[kind], dtype)
    target = np.asarray(call["target"])
    sw = call.get("sample_weight")
    sw = None if sw is None else _f(sw)
    reduction = call.get("reduction", "mean")
    # each sample's own value: the metric's average with all the weight on that sample
    per = np.array([metric(target, pred, np.eye(len(pred))[i], True) for i in range(len(pred))])
    if sw is not None:
        per = per * sw
    if reduction == "none":
        return {"loss": per, "per_sample": per}
    return {"loss": float(metric(target, pred, sw, reduction == "mean")), "per_sample": per}


def sklearn_oracle(loss: str, call: dict) -> dict:
    from sklearn import metrics

    kind = _kind(call)
    target = np.asarray(call["target"])
    if loss == "bce":
        return _sklearn_run(lambda y, p, w, n: metrics.log_loss(y, p, sample_weight=w, labels=[0, 1], normalize=n), call)
    if loss == "ce":
        labels = list(range(np.shape(call[kind])[1]))
        return _sklearn_run(lambda y, p, w, n: metrics.log_loss(y, p, sample_weight=w, labels=labels, normalize=n), call)
    if loss == "mse":
        return _sklearn_run(lambda y, p, w, n: metrics.mean_squared_error(y, p, sample_weight=w), call)
    if loss == "l1":
        return _sklearn_run(lambda y, p, w, n: metrics.mean_absolute_error(y, p, sample_weight=w), call)
    if loss == "hinge":
        return _sklearn_run(lambda y, p, w, n: metrics.hinge_loss(y, p, sample_weight=w, labels=np.unique(target)), call)
    if loss == "multiclass-hinge":
        labels = list(range(np.shape(call[kind])[1]))
        return _sklearn_run(lambda y, p, w, n: metrics.hinge_loss(y, p, sample_weight=w, labels=labels), call)
    if loss == "brier":
        pred = np.asarray(call[kind])
        scale = {"auto": "auto", "true": True, "false": False}[str(call.get("scale_by_half", "auto"))]
        if pred.ndim == 1:
            return _sklearn_run(lambda y, p, w, n: metrics.brier_score_loss(y, p, sample_weight=w, pos_label=1,
                                                                            scale_by_half=scale), call)
        labels = list(range(pred.shape[1]))
        return _sklearn_run(lambda y, p, w, n: metrics.brier_score_loss(y, p, sample_weight=w, labels=labels,
                                                                        scale_by_half=scale), call)
    if loss == "log-loss":
        pred = np.asarray(call[kind])
        labels = [0, 1] if pred.ndim == 1 else list(range(pred.shape[1]))
        return _sklearn_run(lambda y, p, w, n: metrics.log_loss(y, p, sample_weight=w, labels=labels, normalize=n), call)
    if loss == "zero-one":
        return _sklearn_run(lambda y, p, w, n: metrics.zero_one_loss(y, p, sample_weight=w, normalize=n), call)
    if loss == "mape":
        return _sklearn_run(lambda y, p, w, n: metrics.mean_absolute_percentage_error(y, p, sample_weight=w), call)
    if loss == "msle":
        return _sklearn_run(lambda y, p, w, n: metrics.mean_squared_log_error(y, p, sample_weight=w), call)
    if loss == "pinball":
        a = call.get("alpha", 0.5)
        return _sklearn_run(lambda y, p, w, n: metrics.mean_pinball_loss(y, p, sample_weight=w, alpha=a), call)
    if loss == "poisson-deviance":
        return _sklearn_run(lambda y, p, w, n: metrics.mean_poisson_deviance(y, p, sample_weight=w), call)
    if loss == "tweedie-deviance":
        pw = call.get("power", 0.0)
        return _sklearn_run(lambda y, p, w, n: metrics.mean_tweedie_deviance(y, p, sample_weight=w, power=pw), call)
    raise KeyError(loss)


ORACLES = {"keras": keras_oracle, "optax": optax_oracle, "sklearn": sklearn_oracle}


# --- the calls -------------------------------------------------------------------------------

_P = [0.0, 1.0, 1.0, 0.0, 0.3, 0.9]
_Y = [1.0, 0.0, 1.0, 0.0, 1.0, 0.0]
_Z = [-30.0, 30.0, -3.0, 5.0, 0.2, -1.5]
_PRED2 = [[0.1, 0.7, -0.3], [1.5, -2.0, 0.4], [0.0, 0.25, 3.0], [-1.0, 2.0, 0.5]]
_TARG2 = [[0.0, 1.0, 0.0], [1.0, -1.0, 2.0], [0.5, 0.25, 1.0], [-3.0, 0.0, 0.5]]
_LOGITS = [[2.0, 1.0, 0.1], [0.5, 2.5, -1.0], [-1.0, 0.0, 3.0], [1.2, -0.7, 0.3]]
_PROBS = [[0.0, 1.0, 0.0], [0.2, 0.3, 0.5], [0.1, 0.6, 0.3], [0.7, 0.2, 0.1]]
_SOFT = [[0.1, 0.8, 0.1], [0.3, 0.3, 0.4], [0.0, 0.0, 1.0], [0.5, 0.5, 0.0]]

_POS_PRED = [0.5, 1.0, 2.0, 4.0, 0.2]
_POS_TARG = [0.0, 1.0, 3.0, 2.5, 0.7]

_PM = [1.0, -1.0, 1.0, 1.0, -1.0]
_SCORES = [0.5, -2.0, 1.5, 0.3, 0.4]
_ONEHOT = [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]]
_SEG_P = [[0.9, 0.2, 0.6, 0.0], [0.3, 0.0, 0.0, 0.8]]
_SEG_Y = [[1.0, 1.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]]

_CTC_LOGITS = np.round(np.sin(np.arange(6 * 2 * 4) * 0.7).reshape(6, 2, 4) * 2.0, 3).tolist()  # (T, N, C)

CASES: dict[str, list[dict]] = {
    "ctc": [
        # Keras's own form: every frame, the nonzero labels of each row (0 pads)
        {"logits": _CTC_LOGITS, "target": [[1, 2, 2], [3, 1, 0]], "input_lengths": [6, 6], "target_lengths": [3, 2]},
        {"logits": _CTC_LOGITS, "target": [[1, 2, 2], [3, 1, 0]], "input_lengths": [6, 6], "target_lengths": [3, 2],
         "dtype": "float64", "reduction": "sum", "sample_weight": [0.5, 2.0]},
        # optax: fewer frames for one sequence, a shorter label row, another blank
        {"logits": _CTC_LOGITS, "target": [[1, 3, 3], [2, 2, 1]], "input_lengths": [6, 4], "target_lengths": [3, 1],
         "blank": 0},
        {"logits": _CTC_LOGITS, "target": [[1, 0, 2], [0, 0, 1]], "input_lengths": [5, 6], "target_lengths": [3, 2],
         "blank": 3, "reduction": "none"},
        {"log_probs": np.log(np.full((6, 2, 4), 0.25)).tolist(), "target": [[1, 2, 0], [3, 0, 0]],
         "input_lengths": [6, 6], "target_lengths": [2, 1]},
    ],
    "triplet-margin": [
        {"anchor": [[0.0, 0.0], [1.0, 2.0], [0.5, -0.5]], "positive": [[1.0, 0.0], [1.5, 1.0], [0.0, 0.0]],
         "negative": [[0.0, 1.5], [1.0, 2.5], [2.0, 2.0]]},
        {"anchor": [[0.0, 0.0], [1.0, 2.0]], "positive": [[1.0, 0.5], [1.5, 1.0]], "negative": [[0.3, 1.5], [1.0, 2.5]],
         "p": 4.0, "margin": 0.5, "reduction": "sum"},
    ],
    "poisson-nll": [
        {"pred": [0.5, 1.0, 2.0], "target": [0.0, 1.0, 3.0]},
        {"pred": _POS_PRED, "target": _POS_TARG, "dtype": "float64", "sample_weight": [1.0, 2.0, 0.5, 3.0, 1.0]},
    ],
    "focal": [
        {"logits": [2.0, -1.0, -3.0, 20.0], "target": [1.0, 0.0, 1.0, 0.0]},
        {"logits": [2.0, -1.0, -3.0, 20.0], "target": [1.0, 0.0, 1.0, 0.0], "alpha": -1.0, "dtype": "float64"},
        {"probs": [0.9, 0.2, 0.6, 0.3], "target": [1.0, 0.0, 1.0, 0.0], "apply_class_balancing": True, "alpha": 0.3},
        {"logits": [[0.5, -1.0], [2.0, 0.3]], "target": [[1.0, 0.0], [0.0, 1.0]], "label_smoothing": 0.1,
         "dtype": "float64", "gamma": 1.5},
    ],
    "hinge": [
        {"pred": _SCORES, "target": [1.0, 0.0, 1.0, 1.0, 0.0]},
        {"pred": _SCORES, "target": _PM, "dtype": "float64"},
        {"pred": _SCORES, "target": [1.0, 0.5, 1.0, 0.0, 0.0], "dtype": "float64"},
        {"pred": _SCORES, "target": [1.0, 0.0, 1.0, 1.0, 0.0], "sample_weight": [1.0, 2.0, 0.5, 3.0, 1.0]},
    ],
    "squared-hinge": [
        {"pred": _SCORES, "target": [1.0, 0.0, 1.0, 1.0, 0.0]},
        {"pred": _PRED2, "target": [[1.0, -1.0, 1.0], [1.0, 1.0, -1.0], [-1.0, -1.0, 1.0], [1.0, 1.0, 1.0]],
         "dtype": "float64", "sample_weight": [1.0, 2.0, 0.5, 3.0]},
    ],
    "categorical-hinge": [
        {"pred": [[-1.0, -2.0, -3.0], [0.5, 1.5, 0.2], [1.0, 0.8, 0.9], [0.1, 0.3, 2.0]], "target": _ONEHOT},
        {"pred": _LOGITS, "target": _ONEHOT, "dtype": "float64", "reduction": "sum"},
    ],
    "multiclass-hinge": [
        {"pred": [[-1.0, -2.0, -3.0], [0.5, 1.5, 0.2], [1.0, 0.8, 0.9], [0.1, 0.3, 2.0]], "target": [0, 1, 0, 2]},
        {"pred": _LOGITS, "target": [0, 2, 1, 0], "sample_weight": [1.0, 2.0, 0.5, 3.0]},
    ],
    "perceptron": [
        {"pred": _SCORES, "target": _PM},
        {"pred": _PRED2, "target": [[1.0, -1.0, 1.0], [1.0, 1.0, -1.0], [-1.0, -1.0, 1.0], [1.0, 1.0, 1.0]],
         "reduction": "sum"},
    ],
    "cosine-similarity": [
        {"pred": [[0.0, 1.0], [2.0, 2.0], [1.0, 1.0], [0.5, -1.0]], "target": [[1.0, 0.0], [1.0, 1.0], [0.3, 0.2], [1.0, 2.0]]},
        {"pred": _PRED2, "target": _TARG2, "dtype": "float64", "sample_weight": [1.0, 2.0, 0.5, 3.0]},
        {"pred": _PRED2, "target": _TARG2, "epsilon": 1e-8},
    ],
    "zero-one": [
        {"pred": [1, 2, 3, 4], "target": [2, 2, 3, 4]},
        {"pred": [0, 1, 1, 0, 2], "target": [0, 1, 0, 0, 1], "sample_weight": [1.0, 2.0, 0.5, 3.0, 1.0], "reduction": "sum"},
        {"pred": [[0, 1], [1, 1], [1, 0]], "target": [[1, 1], [1, 1], [1, 0]], "sample_weight": [2.0, 1.0, 1.0]},
        {"pred": [1.0, 0.0, 2.0], "target": [1.0, 2.0, 2.0], "reduction": "none"},
    ],
    "multiclass-perceptron": [
        {"pred": [[-1.0, -2.0, -3.0], [0.5, 1.5, 0.2], [1.0, 0.8, 0.9], [0.1, 2.0, 2.0]], "target": [0, 1, 2, 0]},
        {"pred": _LOGITS, "target": [0, 2, 1, 0], "reduction": "sum"},
    ],
    "multiclass-sparsemax": [
        {"pred": [[0.1, 0.7, -0.3], [1.5, -2.0, 0.4], [0.0, 0.25, 3.0], [0.2, 0.2, 0.2]], "target": [1, 0, 0, 2]},
        {"pred": _LOGITS, "target": [0, 2, 1, 0], "reduction": "none"},
    ],
    "dice": [
        {"probs": _SEG_P, "target": _SEG_Y, "axis": "1"},
        {"probs": [[[0.9, 0.1], [0.2, 0.8]], [[0.6, 0.4], [0.0, 1.0]]], "target": [[[1.0, 0.0], [1.0, 0.0]], [[0.0, 1.0], [0.0, 1.0]]],
         "axis": "1,2", "dtype": "float64", "sample_weight": [1.0, 3.0]},
        {"logits": _LOGITS, "target": _ONEHOT, "class_weights": [1.0, 2.0, 0.5]},
        {"probs": _SOFT, "target": _ONEHOT, "class_weights": [0.0, 1.0, 3.0], "reduction": "sum"},
        {"probs": _SEG_P, "target": _SEG_Y},
        {"probs": _SEG_P, "target": _SEG_Y, "dtype": "float64"},
        {"logits": _LOGITS, "target": _ONEHOT},
        {"logits": _LOGITS, "target": _ONEHOT, "smooth": 0.5, "reduction": "sum"},
        {"probs": _SOFT, "target": _ONEHOT},
    ],
    "tversky": [
        {"probs": _SEG_P, "target": _SEG_Y, "alpha": 0.7, "beta": 0.3, "axis": "-1"},
        {"logits": _LOGITS, "target": _ONEHOT, "alpha": 0.3, "beta": 0.7, "class_weights": [2.0, 1.0, 0.5]},
        {"probs": _SEG_P, "target": _SEG_Y, "alpha": 0.7, "beta": 0.3},
        {"probs": _SEG_P, "target": _SEG_Y, "dtype": "float64"},
        {"logits": _LOGITS, "target": _ONEHOT, "alpha": 0.7, "beta": 0.3},
    ],
    "categorical-focal": [
        {"probs": _SOFT, "target": _ONEHOT},
        {"probs": _PROBS, "target": _ONEHOT, "dtype": "float64", "alpha": 0.5, "gamma": 1.5},
        {"logits": _LOGITS, "target": _ONEHOT, "label_smoothing": 0.1},
    ],
    "poly1": [
        {"logits": _LOGITS, "target": _ONEHOT},
        {"logits": _LOGITS, "target": _SOFT, "epsilon": 1.0, "reduction": "sum"},
    ],
    "generalized-kl": [
        {"log_probs": np.log([[0.1, 0.2, 0.7], [0.4, 0.4, 0.2]]).tolist(), "target": [[0.0, 0.3, 0.9], [0.5, 0.5, 0.0]]},
    ],
    "sparsemax": [
        {"logits": [-2.0, -0.5, 0.3, 1.5, 0.8], "target": [1.0, 0.0, 1.0, 0.0, 0.0]},
        {"logits": _PRED2, "target": [[1.0, 0.0, 1.0], [0.0, 0.0, 1.0], [1.0, 1.0, 0.0], [0.0, 1.0, 0.0]]},
    ],
    "brier": [
        {"probs": [0.9, 0.2, 0.6, 0.35], "target": [1, 0, 1, 0]},
        {"probs": _SOFT, "target": [1, 2, 2, 0], "sample_weight": [1.0, 2.0, 0.5, 3.0]},
        {"probs": _SOFT, "target": [1, 2, 2, 0], "scale_by_half": "true"},
    ],
    "log-loss": [
        {"probs": _P, "target": _Y},
        {"probs": _PROBS, "target": [0, 1, 2, 0], "sample_weight": [1.0, 2.0, 0.5, 3.0]},
        {"probs": _PROBS, "target": [0, 1, 2, 0], "dtype": "float32", "reduction": "sum"},
    ],
    "log-cosh": [
        {"pred": _PRED2, "target": _TARG2},
        {"pred": [0.1, 0.5, 2.0, -3.0, 1000.0], "target": [0.0, 0.0, 0.0, 0.0, 0.0], "dtype": "float64"},
        {"pred": _PRED2, "target": _TARG2, "dtype": "float64", "sample_weight": [1.0, 2.0, 0.5, 3.0], "reduction": "sum"},
    ],
    "mape": [
        {"pred": _POS_PRED, "target": [0.3, 1.0, 3.0, 2.5, -0.7]},
        {"pred": _POS_PRED, "target": _POS_TARG},
        {"pred": _PRED2, "target": _TARG2, "dtype": "float64", "sample_weight": [1.0, 2.0, 0.5, 3.0]},
        {"pred": _POS_PRED, "target": _POS_TARG, "dtype": "float64", "reduction": "none"},
    ],
    "msle": [
        {"pred": _POS_PRED, "target": _POS_TARG},
        {"pred": [[0.5, -0.5], [2.0, 1.0]], "target": [[1.0, 0.0], [-0.2, 3.0]], "dtype": "float64"},
        {"pred": _POS_PRED, "target": _POS_TARG, "dtype": "float64", "sample_weight": [1.0, 2.0, 0.5, 3.0, 1.0]},
    ],
    "pinball": [
        {"pred": _POS_PRED, "target": _POS_TARG},
        {"pred": _PRED2, "target": _TARG2, "alpha": 0.9, "sample_weight": [1.0, 2.0, 0.5, 3.0]},
    ],
    "poisson-deviance": [
        {"pred": _POS_PRED, "target": _POS_TARG},
        {"pred": _POS_PRED, "target": _POS_TARG, "sample_weight": [1.0, 2.0, 0.5, 3.0, 1.0]},
    ],
    "tweedie-deviance": [
        {"pred": _POS_PRED, "target": _POS_TARG, "power": 1.5},
        {"pred": _POS_PRED, "target": [0.3, 1.0, 3.0, 2.5, 0.7], "power": 2.0, "sample_weight": [1.0, 2.0, 0.5, 3.0, 1.0]},
        {"pred": _POS_PRED, "target": _POS_TARG, "power": 0.0},
        {"pred": _POS_PRED, "target": _POS_TARG, "power": -1.0},
        {"pred": _POS_PRED, "target": [0.3, 1.0, 3.0, 2.5, 0.7], "power": 3.0},
    ],
    "bce": [
        {"probs": _P, "target": _Y},
        {"probs": _P, "target": _Y, "dtype": "float64"},
        {"probs": _P, "target": _Y, "sample_weight": [1.0, 2.0, 0.5, 3.0, 1.0, 0.0]},
        {"probs": [[0.9, 0.2], [0.6, 0.05]], "target": [[1.0, 0.0], [1.0, 1.0]], "label_smoothing": 0.1},
        {"probs": _P, "target": _Y, "reduction": "sum"},
        {"probs": _P, "target": _Y, "reduction": "none"},
        {"logits": _Z, "target": _Y},
        {"logits": _Z, "target": _Y, "dtype": "float64", "reduction": "sum"},
    ],
    "bce-logits": [
        {"logits": _Z, "target": _Y},
        {"logits": [[0.5, -1.0], [2.0, 0.3]], "target": [[1.0, 0.0], [0.0, 1.0]], "label_smoothing": 0.2, "dtype": "float64"},
    ],
    "ce": [
        {"probs": _PROBS, "target": [0, 1, 2, 0]},
        {"probs": _PROBS, "target": [0, 1, 2, 0], "dtype": "float64", "sample_weight": [1.0, 2.0, 0.5, 3.0]},
        {"probs": _PROBS, "target": [0, 1, 2, 0], "dtype": "float32"},
        {"probs": _PROBS, "target": _SOFT},
        {"logits": _LOGITS, "target": [0, 2, 1, 0]},
        {"logits": _LOGITS, "target": [0, 2, 1, 0], "dtype": "float64", "reduction": "sum"},
        {"logits": _LOGITS, "target": _SOFT, "label_smoothing": 0.1, "dtype": "float64"},
        {"logits": _LOGITS, "target": [0, 2, 1, 0], "label_smoothing": 0.1, "dtype": "float64"},
        {"logits": _LOGITS, "target": [0, 5, 1, 5], "ignore_index": 5, "dtype": "float64"},
        {"logits": [[[1.0, 0.2], [0.3, -1.0], [2.0, 0.0]], [[0.1, 0.5], [1.5, 0.5], [-0.5, 0.9]]],
         "target": [[0, 2], [1, 0]], "dtype": "float64"},
    ],
    "mse": [
        {"pred": _PRED2, "target": _TARG2},
        {"pred": _PRED2, "target": _TARG2, "dtype": "float64", "sample_weight": [1.0, 2.0, 0.5, 3.0]},
        {"pred": [0.1, 0.5, 2.0, -3.0], "target": [0.0, 0.0, 0.0, 0.0], "dtype": "float64", "reduction": "none"},
    ],
    "l1": [
        {"pred": _PRED2, "target": _TARG2},
        {"pred": _PRED2, "target": _TARG2, "dtype": "float64", "sample_weight": [1.0, 2.0, 0.5, 3.0]},
    ],
    "huber": [
        {"pred": _PRED2, "target": _TARG2, "delta": 1.5},
        {"pred": [0.1, 0.5, 2.0, -3.0], "target": [0.0, 0.0, 0.0, 0.0], "dtype": "float64", "delta": 1.5},
    ],
    "kl": [
        {"probs": [[0.1, 0.2, 0.7], [0.4, 0.4, 0.2]], "target": [[0.0, 0.3, 0.7], [0.5, 0.5, 0.0]]},
        {"probs": [[0.1, 0.2, 0.7], [0.4, 0.4, 0.2]], "target": [[0.0, 0.3, 0.7], [0.5, 0.5, 0.0]], "dtype": "float64"},
        {"log_probs": np.log([[0.1, 0.2, 0.7], [0.4, 0.4, 0.2]]).tolist(), "target": [[0.0, 0.3, 0.7], [0.5, 0.5, 0.0]]},
        {"log_probs": np.log([[0.1, 0.2, 0.7], [0.4, 0.4, 0.2]]).tolist(),
         "target": np.log([[0.2, 0.3, 0.5], [0.5, 0.25, 0.25]]).tolist(), "log_target": True, "reduction": "sum"},
    ],
}
