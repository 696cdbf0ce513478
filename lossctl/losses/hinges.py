"""Hinge-type losses PyTorch lacks (squared hinge, categorical hinge, Crammer–Singer multiclass
hinge, perceptron), and the Keras/optax/scikit-learn definitions of the binary ``hinge``."""

from __future__ import annotations

import numpy as np

from ..core import tape as T
from ..errors import InvalidInput
from ..core.registry import Convention, torch_convention
from .framework_common import framework_loss, keras_last_axis


def _keras_hinge_labels(t: T.Tape, y: np.ndarray) -> np.ndarray:
    """Keras converts labels to 2y − 1 only when every label is exactly 0 or 1 (one test on the whole tensor)."""
    if np.all((y == 0) | (y == 1)):
        converted = 2.0 * y - 1.0
        t.step("labels", "labels to ±1", "2y − 1 (every label is 0 or 1)", converted, before=y,
               reason="keras maps labels to 2y − 1 because every label is 0 or 1", symbol="y")
        return converted.astype(y.dtype)
    t.step("labels", "labels unchanged", "not all labels are 0/1: used as given", y)
    return y


def keras_hinge(t, x, params):
    """keras.losses.Hinge: mean over the last axis of max(1 − y·ŷ, 0)."""
    y = _keras_hinge_labels(t, x["target"])
    values = T.maximum(1.0 - y * x["pred"], 0.0)
    t.step("hinge", "hinge", "max(1 − y·ŷ, 0)", values)
    return keras_last_axis(t, values)


def keras_squared_hinge(t, x, params):
    """keras.losses.SquaredHinge: mean over the last axis of max(1 − y·ŷ, 0)²."""
    y = _keras_hinge_labels(t, x["target"])
    values = T.square(T.maximum(1.0 - y * x["pred"], 0.0))
    t.step("hinge", "squared hinge", "max(1 − y·ŷ, 0)²", values)
    return keras_last_axis(t, values)


def optax_hinge(t, x, params):
    """optax.losses.hinge_loss: max(0, 1 − s·t) per element; targets used as given (no 0 → −1)."""
    values = T.maximum(0.0, 1.0 - x["pred"] * x["target"])
    t.step("hinge", "hinge", "max(0, 1 − s·t)", values)
    return values


def sklearn_hinge(t, x, params):
    """sklearn.metrics.hinge_loss (binary): the two labels become −1/+1 (the smaller −1), max(0, 1 − y·f)."""
    y = x["target"]
    labels = np.unique(y)
    pm = np.where(y == labels[-1], 1.0, -1.0).astype(x["pred"].dtype)
    t.step("labels", "labels to ±1", "LabelBinarizer(neg_label=−1): the larger label +1", pm, before=y,
           reason="scikit-learn maps the two labels to −1/+1 (any two values)", symbol="y")
    values = T.maximum(1.0 - pm * x["pred"], 0.0)
    t.step("hinge", "hinge", "max(0, 1 − y·f)", values)
    return values


def _sklearn_hinge_validate(x, params):
    y, f = x["target"], x["pred"]
    if np.ndim(f) != 1:
        raise InvalidInput("pred", f"scikit-learn's binary hinge_loss takes 1-D decision values; got shape {np.shape(f)}")
    if len(np.unique(y)) > 2:
        raise InvalidInput("target", "scikit-learn's binary hinge_loss takes two labels (multiclass-hinge takes more)")


HINGE_CONVENTIONS = {
    "torch": torch_convention("max(0, 1 − y·a) (no torch function)", "labels −1/+1, 0 read as −1; mean over elements"),
    "keras": Convention("keras", "keras.losses.Hinge",
                        "labels become 2y − 1 only if every label is 0 or 1; mean over the last axis; float32",
                        keras_hinge, kinds=("pred",)),
    "optax": Convention("optax", "optax.losses.hinge_loss", "targets used as given (0 stays 0); per element",
                        optax_hinge, kinds=("pred",)),
    "sklearn": Convention("sklearn", "sklearn.metrics.hinge_loss", "any two labels become −1/+1; np.average over samples",
                          sklearn_hinge, kinds=("pred",), validate=_sklearn_hinge_validate, reductions=("mean", "none")),
}


SQUARED_HINGE = framework_loss(
    name="squared-hinge", home="keras", kinds=("pred",),
    summary="Squared hinge: max(1 − y·ŷ, 0)², labels −1/+1 (0/1 converted).",
    formula="l = max(1 − y·ŷ, 0)²; labels become 2y − 1 when every label is 0 or 1",
    conventions={"keras": Convention("keras", "keras.losses.SquaredHinge",
                                     "labels become 2y − 1 only if every label is 0 or 1; mean over the last axis; float32",
                                     keras_squared_hinge, kinds=("pred",))},
)


def keras_categorical_hinge(t, x, params):
    """keras.losses.CategoricalHinge: max(neg − pos + 1, 0), pos = Σ y·ŷ, neg = max((1 − y)·ŷ) (last axis)."""
    y, s = x["target"], x["pred"]
    pos = T.total(y * s, axis=-1)
    t.step("pos", "target score", "pos = Σ y·ŷ", pos)
    neg = T.amax((1.0 - y) * s, axis=-1)
    t.step("neg", "best other score", "neg = max((1 − y)·ŷ)  (the true class counts as 0)", neg)
    values = T.maximum(neg - pos + 1.0, 0.0)
    t.step("hinge", "categorical hinge", "max(neg − pos + 1, 0)", values)
    return values


CATEGORICAL_HINGE = framework_loss(
    name="categorical-hinge", home="keras", kinds=("pred",),
    summary="Keras's categorical hinge over one-hot targets (last axis).",
    formula="l = max(0, 1 + max((1 − y)·ŷ) − Σ y·ŷ); the true class enters the max as 0",
    conventions={"keras": Convention("keras", "keras.losses.CategoricalHinge",
                                     "neg = max((1 − y)·ŷ) counts the true class as 0, so all-negative wrong scores "
                                     "floor at 0 (not Crammer–Singer); float32",
                                     keras_categorical_hinge, kinds=("pred",))},
    input_help={"pred": "Scores (N, C), classes on the last axis.", "target": "One-hot targets (N, C)."},
)


def _crammer_singer(t, x, margin: float = 1.0):
    """(s_y, max_j (s_j + margin·[j ≠ y])): the target score and the best augmented score."""
    s, y = x["pred"], x["target"].astype(np.intp)
    picked = T.take(s, y, axis=1)
    t.step("score", "target score", "s_y", picked)
    if margin:
        onehot = np.moveaxis(np.eye(s.shape[1], dtype=s.dtype)[y], -1, 1)
        best = T.amax(s + margin - margin * onehot, axis=1)
        t.step("best", "best augmented score", "max_j (s_j + 1 − [j = y])", best)
    else:
        best = T.amax(s, axis=1)
        t.step("best", "best score", "max_j s_j", best)
    return picked, best


def optax_multiclass_hinge(t, x, params):
    """optax.losses.multiclass_hinge_loss: max_j (s_j + 1 − [j = y]) − s_y (Crammer–Singer)."""
    picked, best = _crammer_singer(t, x)
    values = best - picked
    t.step("hinge", "multiclass hinge", "max_j (s_j + 1 − [j = y]) − s_y", values)
    return values


def sklearn_multiclass_hinge(t, x, params):
    """sklearn.metrics.hinge_loss (multiclass): max(0, 1 − (s_y − max_{j≠y} s_j)), np.average."""
    s, y = x["pred"], x["target"].astype(np.intp)
    picked = T.take(s, y, axis=1)
    onehot = np.moveaxis(np.eye(s.shape[1], dtype=bool)[y], -1, 1)
    other = T.amax(T.where(onehot, -np.inf, s), axis=1)
    t.step("margin", "margin", "s_y − max_{j≠y} s_j", picked - other)
    values = T.maximum(1.0 - (picked - other), 0.0)
    t.step("hinge", "multiclass hinge", "max(0, 1 − margin)", values)
    return values


MULTICLASS_HINGE = framework_loss(
    name="multiclass-hinge", aliases=("crammer-singer",), home="optax", kinds=("pred",), target="index",
    summary="Crammer–Singer multiclass hinge between scores and class indices.",
    formula="l = max(0, 1 + max_{j≠y} s_j − s_y)",
    conventions={
        "optax": Convention("optax", "optax.losses.multiclass_hinge_loss", "per example, not reduced",
                            optax_multiclass_hinge, kinds=("pred",)),
        "sklearn": Convention("sklearn", "sklearn.metrics.hinge_loss", "same values; np.average over samples (÷ Σ w)",
                              sklearn_multiclass_hinge, kinds=("pred",), reductions=("mean", "none")),
    },
    input_help={"pred": "Scores (N, C).", "target": "Class index per sample (N,)."}, class_axis=True,
)


def optax_perceptron(t, x, params):
    """optax.losses.perceptron_loss: max(0, −s·t) per element, targets ±1 used as given."""
    values = T.maximum(0.0, -(x["pred"] * x["target"]))
    t.step("perceptron", "perceptron", "max(0, −s·t)", values)
    return values


PERCEPTRON = framework_loss(
    name="perceptron", home="optax", kinds=("pred",),
    summary="Perceptron loss max(0, −s·t) for ±1 targets.",
    formula="l = max(0, −s·t)",
    conventions={"optax": Convention("optax", "optax.losses.perceptron_loss", "per element, not reduced; targets as given",
                                     optax_perceptron, kinds=("pred",))},
)

def optax_multiclass_perceptron(t, x, params):
    """optax.losses.multiclass_perceptron_loss: max_j s_j − s_y."""
    picked, best = _crammer_singer(t, x, margin=0.0)
    values = best - picked
    t.step("perceptron", "multiclass perceptron", "max_j s_j − s_y", values)
    return values


MULTICLASS_PERCEPTRON = framework_loss(
    name="multiclass-perceptron", home="optax", kinds=("pred",), target="index",
    summary="Multiclass perceptron loss between scores and class indices.",
    formula="l = max_j s_j − s_y",
    conventions={"optax": Convention("optax", "optax.losses.multiclass_perceptron_loss", "per example, not reduced",
                                     optax_multiclass_perceptron, kinds=("pred",))},
    input_help={"pred": "Scores (N, C).", "target": "Class index per sample (N,)."}, class_axis=True,
)

SPECS = (SQUARED_HINGE, CATEGORICAL_HINGE, MULTICLASS_HINGE, PERCEPTRON, MULTICLASS_PERCEPTRON)
