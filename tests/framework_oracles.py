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

PRED_KEYS = ("logits", "probs", "log_probs", "pred", "x1")


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
    raise KeyError(loss)


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
    target = np.asarray(call["target"])
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
    if loss == "kl":
        if call.get("log_target"):
            return _optax_run(lambda x: L.kl_divergence_with_log_targets(x, jnp.asarray(_f(target), x.dtype)), call)
        return _optax_run(lambda x: L.kl_divergence(x, jnp.asarray(_f(target), x.dtype)), call)
    raise KeyError(loss)


# --- scikit-learn -----------------------------------------------------------------------------

def _sklearn_run(metric, call, *, per_row=True):
    """metric(y_true, y_pred, sample_weight) on the whole batch; per-sample values by calling it on each row."""
    kind = _kind(call)
    dtype = np.float32 if call.get("dtype") == "float32" else np.float64
    pred = _f(call[kind], dtype)
    target = np.asarray(call["target"])
    sw = call.get("sample_weight")
    sw = None if sw is None else _f(sw)
    reduction = call.get("reduction", "mean")
    per = np.array([metric(target[i:i + 1], pred[i:i + 1], None, True) for i in range(len(pred))])
    if sw is not None:
        per = per * sw
    if reduction == "none":
        return {"loss": per, "per_sample": per}
    return {"loss": float(metric(target, pred, sw, reduction == "mean")), "per_sample": per}


def sklearn_oracle(loss: str, call: dict) -> dict:
    from sklearn import metrics

    kind = _kind(call)
    if loss == "bce":
        return _sklearn_run(lambda y, p, w, n: metrics.log_loss(y, p, sample_weight=w, labels=[0, 1], normalize=n), call)
    if loss == "ce":
        labels = list(range(np.shape(call[kind])[1]))
        return _sklearn_run(lambda y, p, w, n: metrics.log_loss(y, p, sample_weight=w, labels=labels, normalize=n), call)
    if loss == "mse":
        return _sklearn_run(lambda y, p, w, n: metrics.mean_squared_error(y, p, sample_weight=w), call)
    if loss == "l1":
        return _sklearn_run(lambda y, p, w, n: metrics.mean_absolute_error(y, p, sample_weight=w), call)
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

CASES: dict[str, list[dict]] = {
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
