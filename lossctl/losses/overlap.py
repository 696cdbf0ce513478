"""Overlap and angle losses PyTorch lacks: cosine similarity (Keras, optax), Dice and Tversky
(Keras's global forms, optax's per-class dice_loss)."""

from __future__ import annotations

import numpy as np

from ..core import tape as T
from ..errors import InvalidInput
from ..core.registry import Convention, Param
from .framework_common import KERAS_EPSILON, framework_loss

EPSILON = Param("epsilon", "float", 0.0, "optax: floor of the squared norms (0: a zero vector gives nan).")
SMOOTH = Param("smooth", "float", 1.0, "optax: added to the numerator and the denominator of each class's ratio.")
ALPHA = Param("alpha", "float", 0.5, "Tversky weight (Keras 3.15: on false negatives; optax: on false positives).")
BETA = Param("beta", "float", 0.5, "Tversky weight (Keras 3.15: on false positives; optax: on false negatives).")
AXIS = Param("axis", "text", None, "Keras: the axes the sums run over, e.g. 1 or 1,2,3 (default: every axis, one "
                                   "value for the whole batch); the per-sample values keep the others.")
CLASS_WEIGHTS = Param("class_weights", "array", None, "optax: a weight per class (C,), multiplying each class's loss "
                                                     "before the mean over classes.")


def keras_axes(text, ndim: int) -> tuple[int, ...] | None:
    """Keras's ``axis`` of Dice/Tversky from a parameter value (1, -1, "1,2,3", [1, 2]): the axes
    summed over, normalised; None for every axis (one value for the whole batch)."""
    if text is None or (isinstance(text, str) and text.strip().lower() in ("", "none", "all")):
        return None
    items = text if isinstance(text, (list, tuple)) else str(text).strip("()[] ").split(",")
    try:
        axes = [int(str(a).strip()) for a in items if str(a).strip() != ""]
    except ValueError:
        raise InvalidInput("axis", f"expected axes as integers (1, or 1,2,3), got {text!r}") from None
    out = []
    for a in axes:
        if not -ndim <= a < ndim:
            raise InvalidInput("axis", f"axis {a} is out of range for an input of {ndim} dimensions")
        out.append(a % ndim)
    out = tuple(sorted(set(out)))
    if 0 in out and len(out) < ndim:
        raise InvalidInput("axis", "lossctl reads the first axis as the samples: axis may include 0 only with "
                                   "every other axis (one value for the whole batch)")
    return None if len(out) == ndim else out


def keras_cosine(t, x, params):
    """keras.losses.CosineSimilarity(axis=−1): −Σ ŷ/‖ŷ‖ · y/‖y‖, each normalised as x·min(rsqrt(Σx²), 1/ε)."""
    eps = np.dtype(x["pred"].dtype).type(KERAS_EPSILON)

    def unit(v):
        v = T.lift(v)
        inv = T.minimum(T.power(T.total(T.square(v), axis=-1, keepdims=True), -0.5), 1.0 / eps)
        return v * inv

    yu, pu = unit(x["target"]), unit(x["pred"])
    t.step("normalise", "unit prediction", "ŷ·min(1/‖ŷ‖, 1/ε), ε = 1e-7", pu,
           reason="keras normalises with an ε floor: a zero vector gives 0, not nan", symbol="ŷ")
    values = -T.total(yu * pu, axis=-1)
    t.step("cosine", "negative cosine similarity", "−Σ ŷ̂·ŷ", values)
    return values


def optax_cosine(t, x, params):
    """optax.losses.cosine_similarity: +Σ a/‖a‖ · b/‖b‖, ‖a‖ = sqrt(max(Σa², ε)) (ε = 0: a zero vector is nan)."""
    e = float(params.get("epsilon", 0.0))

    def unit(v):
        v = T.lift(v)
        return v / T.sqrt(T.clip(T.total(T.square(v), axis=-1, keepdims=True), e, None))

    values = T.total(unit(x["pred"]) * unit(x["target"]), axis=-1)
    t.step("cosine", "cosine similarity", "+Σ â·b̂", values)
    return values


COSINE_SIMILARITY = framework_loss(
    name="cosine-similarity", home="keras", kinds=("pred",), params=(EPSILON,),
    summary="Cosine similarity along the last axis (Keras: its negative, a loss).",
    formula="Keras l = −cos(y, ŷ) (−1 is best); optax +cos(ŷ, y)",
    conventions={
        "keras": Convention("keras", "keras.losses.CosineSimilarity", "−cos (−1 is best); a zero vector gives 0; float32",
                            keras_cosine, kinds=("pred",)),
        "optax": Convention("optax", "optax.losses.cosine_similarity",
                            "+cos; epsilon floors the squared norms (default 0: a zero vector gives nan)",
                            optax_cosine, kinds=("pred",), params=("epsilon",)),
    },
)


def _keras_overlap(t, x, params, tversky: bool):
    y, p = x["target"], x["probs"]
    axes = keras_axes(params.get("axis"), p.ndim)
    over = "the whole batch (axis=None)" if axes is None else f"axis={axes if len(axes) > 1 else axes[0]}"
    tp = T.total(y * p, axis=axes)
    t.step("tp", "intersection", f"Σ y·ŷ over {over}", tp)
    if tversky:
        a, b = float(params.get("alpha", 0.5)), float(params.get("beta", 0.5))
        fn = T.total((1.0 - p) * y, axis=axes)
        fp = T.total(p * (1.0 - y), axis=axes)
        t.step("fn_fp", "Σ y·(1−ŷ), Σ (1−y)·ŷ", "Keras 3.15 weighs the first by α, the second by β", T.lift(fn))
        ratio = tp / (tp + fn * a + fp * b + KERAS_EPSILON)
        t.step("ratio", "Tversky index", f"TP / (TP + α·Σy(1−ŷ) + β·Σ(1−y)ŷ + ε), α = {a:g}, β = {b:g}", ratio)
    else:
        ratio = 2.0 * tp / (T.total(T.lift(y), axis=axes) + T.total(p, axis=axes) + KERAS_EPSILON)
        t.step("ratio", "Dice coefficient", "2·Σy·ŷ / (Σy + Σŷ + ε)", ratio)
    return 1.0 - ratio


def _keras_axis_validate(x, params):
    keras_axes(params.get("axis"), np.ndim(x["probs"]))


def keras_dice(t, x, params):
    """keras.losses.Dice(axis=None): 1 − 2Σ(y·ŷ) / (Σy + Σŷ + ε), one value over the whole batch."""
    return _keras_overlap(t, x, params, tversky=False)


def keras_tversky(t, x, params):
    """keras.losses.Tversky (3.15.1): 1 − TP / (TP + α·Σ y(1−ŷ) + β·Σ (1−y)ŷ + ε), over the whole batch."""
    return _keras_overlap(t, x, params, tversky=True)


def _optax_dice(t, x, params, alpha: float, beta: float):
    """optax.losses.dice_loss: per class (last axis; spatial axes summed) 1 − (I + s)/(I + α·FP + β·FN + s),
    then the mean over classes; logits through softmax (sigmoid for one channel)."""
    s = float(params.get("smooth", 1.0))
    y = x["target"]
    if "logits" in x:
        z = x["logits"]
        probs = T.sigmoid_(z) if z.shape[-1] == 1 else T.softmax_(z, axis=-1)
        t.step("softmax", "probabilities", "softmax(z) over the last axis (sigmoid for one channel)", probs)
    else:
        probs = x["probs"]
    axes = tuple(range(1, probs.ndim - 1))
    inter = T.total(probs * y, axis=axes) if axes else probs * y
    pred_sum = T.total(probs, axis=axes) if axes else probs
    targ_sum = np.sum(y, axis=axes) if axes else y
    coeff = (inter + s) / (inter + alpha * (pred_sum - inter) + beta * (targ_sum - inter) + s)
    t.step("coeff", "per-class coefficient", f"(I + s)/(I + α·FP + β·FN + s), s = {s:g}", coeff)
    per_class = 1.0 - coeff
    weights = params.get("class_weights")
    if weights is not None:
        per_class = per_class * np.asarray(weights, dtype=per_class.dtype)
        t.step("class_weights", "weighted per-class loss", "w_c·(1 − coefficient)", per_class)
    return T.mean(per_class, axis=-1)


def _optax_probs_validate(x, params):
    weights = params.get("class_weights")
    if weights is not None:
        pred = x["probs"] if "probs" in x else x["logits"]
        w = np.asarray(weights)
        if w.ndim != 1 or w.shape[0] != np.shape(pred)[-1]:
            raise InvalidInput("class_weights", f"optax's dice_loss takes one weight per class ({np.shape(pred)[-1]},), "
                                                f"got shape {w.shape}")
    if "probs" in x:
        sums = np.sum(x["probs"], axis=-1)
        if not np.allclose(sums, 1.0, rtol=1e-5):
            raise InvalidInput("probs", "optax's dice_loss with apply_softmax=False needs probabilities that sum to 1 "
                                        f"along the class axis (found sums from {float(sums.min()):.6g} to {float(sums.max()):.6g})")


def optax_dice(t, x, params):
    return _optax_dice(t, x, params, 0.5, 0.5)


def optax_tversky(t, x, params):
    return _optax_dice(t, x, params, float(params.get("alpha", 0.5)), float(params.get("beta", 0.5)))


DICE = framework_loss(
    name="dice", home="keras", kinds=("probs", "logits"), params=(SMOOTH,), batch_axis=None,
    summary="Dice loss: one minus the overlap ratio 2|A∩B| / (|A| + |B|).",
    formula="Keras l = 1 − 2Σy·ŷ/(Σy + Σŷ + ε) over the whole batch; optax per class with smoothing s",
    conventions={
        "keras": Convention("keras", "keras.losses.Dice",
                            "one value over the whole batch (axis=None; axis=1 per sample), ε = 1e-7 in the denominator "
                            "only; float32", keras_dice, kinds=("probs",), extra_params=(AXIS,),
                            validate=_keras_axis_validate),
        "optax": Convention("optax", "optax.losses.dice_loss",
                            "per sample and class (last axis), smooth = 1 in both, class weights, mean over classes; "
                            "logits by default", optax_dice, kinds=("logits", "probs"), params=("smooth",),
                            extra_params=(CLASS_WEIGHTS,), validate=_optax_probs_validate),
    },
)

TVERSKY = framework_loss(
    name="tversky", home="keras", kinds=("probs", "logits"), params=(ALPHA, BETA, SMOOTH), batch_axis=None,
    summary="Tversky loss: Dice with separate weights on false negatives and false positives.",
    formula="l = 1 − TP/(TP + α·FN + β·FP) (Keras 3.15.1: α on Σy(1−ŷ), the false negatives)",
    conventions={
        "keras": Convention("keras", "keras.losses.Tversky",
                            "3.15.1 puts α on the false negatives (later Keras on false positives); whole batch "
                            "(or axis); float32", keras_tversky, kinds=("probs",), params=("alpha", "beta"),
                            extra_params=(AXIS,), validate=_keras_axis_validate),
        "optax": Convention("optax", "optax.losses.dice_loss(alpha, beta)",
                            "α on the false positives; per sample and class, smooth = 1, class weights; logits by "
                            "default", optax_tversky, kinds=("logits", "probs"), params=("alpha", "beta", "smooth"),
                            extra_params=(CLASS_WEIGHTS,), validate=_optax_probs_validate),
    },
)

SPECS = (COSINE_SIMILARITY, DICE, TVERSKY)
