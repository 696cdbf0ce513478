"""Margin losses: soft-margin, multilabel-soft-margin, multilabel-margin, multi-margin,
margin-ranking, hinge-embedding, and the binary hinge and exponential losses.

Layouts. The element-wise losses (soft-margin, hinge-embedding, hinge,
exponential) broadcast prediction and target as torch's functionals do; the
values have the broadcast shape and the gradient is summed back to the
prediction's shape. margin-ranking takes ``x1`` as its prediction kind and
``x2`` as an extra differentiable input, both of the target's shape. The
class losses (multilabel-soft-margin, multilabel-margin, multi-margin) take
``(C,)`` or ``(N, C)`` inputs; the engine hands the kernels ``(N, C)``.

Sub-gradients (torch 2.13's, each pinned by a golden case in ``tests/test_margin.py``):

* ``clamp_min`` hinges (margin-ranking, hinge-embedding, hinge) pass the
  gradient where the hinge argument is ``>= 0``, *including* ``== 0``, where
  the loss is exactly 0 (golden cases MR-1, MR-2, HE-1).
* The native C++ kernels (multi_margin_loss, multilabel_margin_loss) count a
  term only when ``z > 0`` (strict); a NaN score fails that test, so NaN
  terms are skipped in value and gradient alike, as in torch.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..errors import InvalidInput, ref
from ..core.numerics import log_sigmoid, sigmoid, softplus, sum_to_shape
from ..core import tape as T
from ..core.registry import MARGIN, Convention, Forward, LossSpec, Param, Step, torch_convention
from .cross_entropy import check_class_indices
from .hinges import HINGE_CONVENTIONS

P = Param("p", "int", 1, "Exponent of each hinge term: 1 or 2 (the only values torch supports).")
CLASS_WEIGHT = Param("weight", "array", None, "Class weight (C,), applied as w[y] to each hinge term after the power.")
LABEL_WEIGHT = Param("weight", "array", None, "Per-class weight (C,) (or (N, C)) multiplying each class term; "
                                              "the class sum is still divided by C.")


def _first_index(mask: np.ndarray) -> str:
    return str([int(i) for i in np.argwhere(mask)[0]]) if mask.ndim else "[]"


def _grad_like(g, a: np.ndarray) -> np.ndarray:
    """A gradient summed back to the (broadcast) input's shape, in its dtype."""
    g = np.broadcast_to(g, np.broadcast_shapes(np.shape(g), a.shape))
    return np.asarray(sum_to_shape(g, a.shape), dtype=a.dtype)


# -- soft-margin ------------------------------------------------------------------------

def soft_margin_forward(x: dict, params: dict) -> Forward:
    """Soft margin, as ``torch.nn.functional.soft_margin_loss``: l = log(1 + exp(−y·a)).

    Evaluated as softplus(−y·a), which never overflows (torch's log(1 + exp(·))
    gives inf, and a NaN gradient, once −y·a > 709 in float64)."""
    a, y = x["pred"], x["target"]
    return Forward(softplus(-y * a))


def soft_margin_backward(x: dict, params: dict, upstream: float) -> dict:
    """∂l/∂a = −y·σ(−y·a)."""
    a, y = x["pred"], x["target"]
    return {"pred": _grad_like(-y * sigmoid(-y * a) * upstream, a)}


def soft_margin_steps(x: dict, params: dict) -> list[Step]:
    a, y = x["pred"], x["target"]
    return [
        Step("prediction", "a", a),
        Step("target", "y  (±1; any real is accepted, as torch)", y),
        Step("margin", "y·a", y * a),
        Step("loss", "log(1 + exp(−y·a)) = softplus(−y·a)", soft_margin_forward(x, params).values),
    ]


def _validate_soft_margin(x: dict, params: dict) -> None:
    a, y = x["pred"], x["target"]
    if np.broadcast_shapes(a.shape, y.shape) != a.shape:  # torch writes into the input's shape
        raise InvalidInput("target", f"shape {y.shape} does not broadcast to the prediction's shape {a.shape}")


# -- multilabel-soft-margin ---------------------------------------------------------------

def _label_weight(params: dict, like: np.ndarray):
    w = params.get("weight")
    return None if w is None else np.asarray(w, dtype=like.dtype)


def _multilabel_soft_terms(z: np.ndarray, t: np.ndarray, w) -> np.ndarray:
    """Per-class terms −w·[t·log σ(z) + (1−t)·log σ(−z)] in torch's form (log σ is stable)."""
    terms = -(t * log_sigmoid(z) + (1 - t) * log_sigmoid(-z))
    return terms if w is None else terms * w


def multilabel_soft_margin_forward(x: dict, params: dict) -> Forward:
    """Multi-label one-versus-all logistic loss, as ``torch.nn.functional.multilabel_soft_margin_loss``:
        l_n = (1/C) Σ_c −w_c·[t_nc·log σ(z_nc) + (1−t_nc)·log σ(−z_nc)]
    The class sum is divided by C, not by Σ w; 'mean' averages over the N samples."""
    z, t = x["logits"], x["target"]
    terms = _multilabel_soft_terms(z, t, _label_weight(params, z))
    return Forward(np.sum(terms, axis=1) / z.shape[1])


def multilabel_soft_margin_backward(x: dict, params: dict, upstream: float) -> dict:
    """∂l_n/∂z_nc = w_c·[(1−t)·σ(z) − t·σ(−z)]/C  (= w_c·(σ(z) − t)/C, in the form autograd
    evaluates: no cancellation when σ(z) ≈ t ≈ 1)."""
    z, t = x["logits"], x["target"]
    g = (1 - t) * sigmoid(z) - t * sigmoid(-z)
    w = _label_weight(params, z)
    if w is not None:
        g = g * w
    return {"logits": _grad_like(g * (upstream / z.shape[1]), z)}


def multilabel_soft_margin_steps(x: dict, params: dict) -> list[Step]:
    """x: logits (rows, C), target (rows, C); a weight of shape (N, C) is cut to the shown rows."""
    z, t = x["logits"], x["target"]
    n_classes = z.shape[1]
    w = _label_weight(params, z)
    if w is not None and w.ndim == 2:
        w = w[: z.shape[0]]
    steps = [
        Step("logits", "z", z),
        Step("target", "t  (1: label present, 0: absent)", t),
        Step("−log σ(z)", "softplus(−z)", -log_sigmoid(z)),
        Step("−log(1 − σ(z))", "softplus(z)", -log_sigmoid(-z)),
        Step("per-class loss", "−(t·log σ(z) + (1−t)·log σ(−z))", _multilabel_soft_terms(z, t, None)),
    ]
    terms = _multilabel_soft_terms(z, t, w)
    if w is not None:
        steps.append(Step("class weight", "w_c", np.broadcast_to(w, z.shape)))
        steps.append(Step("weighted per-class loss", "w_c·l_c", terms))
    total = np.sum(terms, axis=1)
    steps.append(Step("sum over classes", "Σ_c l_c", total))
    steps.append(Step("loss", f"Σ_c l_c / C,  C = {n_classes}", total / n_classes))
    return steps


def _validate_two_dims(x: dict, name: str) -> None:
    if x[name].ndim > 2:
        raise InvalidInput(name, f"expected shape (C,) or (N, C), got {x[name].ndim} dimensions")


def _validate_multilabel_soft(x: dict, params: dict) -> None:
    _validate_two_dims(x, "logits")
    w = params.get("weight")
    if w is None:
        return
    shape = x["logits"].shape
    try:
        ok = np.broadcast_shapes(np.shape(w), shape) == shape
    except ValueError:
        ok = False
    if not ok:
        raise InvalidInput("weight", f"shape {tuple(np.shape(w))} does not broadcast to the logits' shape "
                                     f"{shape}; give one weight per class ({shape[1]},)")


# -- multilabel-margin ----------------------------------------------------------------------

def _label_lists(t: np.ndarray, n_classes: int) -> np.ndarray:
    """How often each class is listed in each row before the first −1 (torch counts repeats)."""
    t = t.astype(np.int64)
    listed = np.cumsum(t < 0, axis=1) == 0
    counts = np.zeros((t.shape[0], n_classes), dtype=np.int64)
    rows, cols = np.nonzero(listed)
    np.add.at(counts, (rows, t[rows, cols]), 1)
    return counts


def _multilabel_margin_terms(a: np.ndarray, target: np.ndarray):
    """Yield (c, k_c, active, z) for each listed class c: k_c its multiplicity per row (N,),
    z = 1 − a_c + a_i (N, C), active = z > 0 (strict, ATen) for non-target i."""
    counts = _label_lists(target, a.shape[1])
    is_target = counts > 0
    for c in np.nonzero(np.any(is_target, axis=0))[0]:
        z = (1 - a[:, c:c + 1]) + a  # ATen's order: 1 − input_target + input[i]
        active = (z > 0) & ~is_target
        yield c, counts[:, c].astype(a.dtype), active, z


def multilabel_margin_forward(x: dict, params: dict) -> Forward:
    """Multi-label margin, as ``torch.nn.functional.multilabel_margin_loss``:
        l_n = (1/C) Σ_{j ∈ Y_n} Σ_{i ∉ Y_n} max(0, 1 − a[y_j] + a[i])
    Y_n is the row's target list up to the first −1; a class listed twice counts twice
    in the outer sum. Only terms with z > 0 count (ATen's strict test)."""
    a = x["pred"]
    total = np.zeros(a.shape[0], dtype=a.dtype)
    for _, k, active, z in _multilabel_margin_terms(a, x["target"]):
        total = total + np.where(k > 0, k * np.sum(np.where(active, z, 0), axis=1), 0)
    return Forward(total / a.shape[1])


def multilabel_margin_backward(x: dict, params: dict, upstream: float) -> dict:
    """For each counted term (z > 0): ∂/∂a[i] += 1/C, ∂/∂a[y_j] −= 1/C."""
    a = x["pred"]
    g = np.zeros_like(a)
    scale = upstream / a.shape[1]
    for c, k, active, _ in _multilabel_margin_terms(a, x["target"]):
        coef = np.where(active, (k * scale)[:, None], 0)
        g = g + coef
        g[:, c] -= np.sum(coef, axis=1)
    return {"pred": g.astype(a.dtype, copy=False)}


def multilabel_margin_steps(x: dict, params: dict) -> list[Step]:
    """x: pred (rows, C), target (rows, C) as given (floats)."""
    a, target = x["pred"], x["target"]
    counts = _label_lists(target, a.shape[1])
    hinge = np.zeros(a.shape[0], dtype=a.dtype)
    active_terms = np.zeros(a.shape[0], dtype=np.int64)
    for _, k, active, z in _multilabel_margin_terms(a, target):
        hinge = hinge + np.where(k > 0, k * np.sum(np.where(active, z, 0), axis=1), 0)
        active_terms = active_terms + k.astype(np.int64) * np.sum(active, axis=1)
    return [
        Step("scores", "a", a),
        Step("target list", "class indices, ended by the first −1", target),
        Step("target classes", "|Y|, each listed class counted once per listing", np.sum(counts, axis=1)),
        Step("target set", "1 for i ∈ Y", (counts > 0).astype(a.dtype)),
        Step("counted hinge terms", "#{(j, i): i ∉ Y, z = 1 − a_(y_j) + a_i > 0}  (strict)", active_terms),
        Step("hinge sum", "Σ_{j∈Y} Σ_{i∉Y} max(0, 1 − a_(y_j) + a_i)", hinge),
        Step("loss", f"hinge sum / C,  C = {a.shape[1]}", multilabel_margin_forward(x, params).values),
    ]


def _validate_multilabel_margin(x: dict, params: dict) -> None:
    _validate_two_dims(x, "pred")
    t = x["target"]
    n_classes = x["pred"].shape[1]
    not_int = ~np.isfinite(t) | (np.where(np.isfinite(t), t, 0) != np.round(np.where(np.isfinite(t), t, 0)))
    if np.any(not_int):
        raise InvalidInput("target", f"class lists must hold integers; found {float(t[not_int][0])!r} "
                                     f"at index {_first_index(not_int)}")
    # torch checks every entry, including those after the first −1
    bad = (t < -1) | (t >= n_classes)
    if np.any(bad):
        raise InvalidInput("target", f"class lists hold class indices 0..{n_classes - 1} ended by -1; "
                                     f"found {int(t[bad][0])} at index {_first_index(bad)}")


# -- multi-margin ---------------------------------------------------------------------------

def _multi_margin_terms(x: dict, params: dict):
    """(a_y (N,), z (N, C), active (N, C), w_y (N,) or None) with z = margin − a_y + a_i and
    active = z > 0 (strict, ATen) for i ≠ y."""
    a, y = x["pred"], x["target"]
    y = y.astype(np.intp)
    a_y = np.take_along_axis(a, y[:, None], axis=1)[:, 0]
    z = (params.get("margin", 1.0) - a_y[:, None]) + a  # ATen's order: margin − input_target + input[i]
    active = (np.arange(a.shape[1])[None, :] != y[:, None]) & (z > 0)
    w = params.get("weight")
    w_y = None if w is None else np.asarray(w, dtype=a.dtype)[y]
    return a_y, z, active, w_y


def multi_margin_forward(x: dict, params: dict) -> Forward:
    """Multi-class margin, as ``torch.nn.functional.multi_margin_loss``:
        l_n = (1/C) Σ_{i ≠ y} w[y]·max(0, margin − a[y] + a[i])^p,  p ∈ {1, 2}
    The weight is indexed by the *target* class and applied after the power (PR #104844);
    'mean' averages over the N samples, 'sum' still divides each by C."""
    a = x["pred"]
    _, z, active, w_y = _multi_margin_terms(x, params)
    h = np.where(active, z if int(params.get("p", 1)) == 1 else z * z, 0)
    if w_y is not None:
        h = h * w_y[:, None]
    return Forward(np.sum(h, axis=1) / a.shape[1])


def multi_margin_backward(x: dict, params: dict, upstream: float) -> dict:
    """For each counted term (z > 0): d = w[y]·(1 or 2z)/C;  ∂/∂a[i] = d,  ∂/∂a[y] = −Σ_i d."""
    a, y = x["pred"], x["target"]
    _, z, active, w_y = _multi_margin_terms(x, params)
    d = np.where(active, 1.0 if int(params.get("p", 1)) == 1 else 2 * z, 0) * (upstream / a.shape[1])
    if w_y is not None:
        d = d * w_y[:, None]
    g = np.array(d, dtype=a.dtype)
    np.put_along_axis(g, y.astype(np.intp)[:, None], -np.sum(d, axis=1)[:, None], axis=1)
    return {"pred": g}


def multi_margin_steps(x: dict, params: dict) -> list[Step]:
    """x: pred (rows, C), target (rows,)."""
    a, y = x["pred"], x["target"]
    p = int(params.get("p", 1))
    margin = params.get("margin", 1.0)
    a_y, z, active, w_y = _multi_margin_terms(x, params)
    hinge = np.where(active, z, 0)
    steps = [
        Step("scores", "a", a),
        Step("target class", "y", y),
        Step("target score", "a_y", a_y),
        Step("hinge terms", f"max(0, margin − a_y + a_i) for i ≠ y (counted when > 0),  margin = {margin:g}", hinge),
    ]
    h = hinge
    if p == 2:
        h = hinge * hinge
        steps.append(Step("squared hinge terms", "max(0, ·)²", h))
    total = np.sum(h, axis=1)
    steps.append(Step("sum over classes", f"Σ_{{i≠y}} max(0, ·)^p,  p = {p}", total))
    if w_y is not None:
        steps.append(Step("target class weight", "w_y", w_y))
        total = total * w_y
        steps.append(Step("weighted sum", "w_y·Σ", total))
    steps.append(Step("loss", f"Σ / C,  C = {a.shape[1]}", multi_margin_forward(x, params).values))
    return steps


def _validate_multi_margin(x: dict, params: dict) -> None:
    _validate_two_dims(x, "pred")
    p = params.get("p", 1)
    if p not in (1, 2):
        raise InvalidInput("p", f"only p = 1 and p = 2 are supported (as torch); got {p}")
    w = params.get("weight")
    n_classes = x["pred"].shape[1]
    if w is not None and (np.ndim(w) != 1 or np.shape(w)[0] != n_classes):
        raise InvalidInput("weight", f"expected one weight per class, shape ({n_classes},), got shape {tuple(np.shape(w))}")


# -- margin-ranking -------------------------------------------------------------------------

def _ranking_argument(x: dict, params: dict) -> np.ndarray:
    return -x["target"] * (x["x1"] - x["x2"]) + params.get("margin", 0.0)  # torch's order


def margin_ranking_forward(x: dict, params: dict) -> Forward:
    """Margin ranking, as ``torch.nn.functional.margin_ranking_loss``:
        l = max(0, −y·(x1 − x2) + margin)   (clamp_min: NaN propagates)."""
    return Forward(np.maximum(_ranking_argument(x, params), 0))


def margin_ranking_backward(x: dict, params: dict, upstream: float) -> dict:
    """Where z = −y·(x1 − x2) + margin >= 0 (clamp_min passes z == 0): ∂/∂x1 = −y, ∂/∂x2 = y."""
    z = _ranking_argument(x, params)
    g = np.where(z >= 0, x["target"] * upstream, 0)
    return {"x1": _grad_like(-g, x["x1"]), "x2": _grad_like(g, x["x2"])}


def margin_ranking_steps(x: dict, params: dict) -> list[Step]:
    x1, x2, y = x["x1"], x["x2"], x["target"]
    margin = params.get("margin", 0.0)
    return [
        Step("first input", "x1", x1),
        Step("second input", "x2", x2),
        Step("target", "y  (1: x1 should rank higher, −1: x2)", y),
        Step("difference", "x1 − x2", x1 - x2),
        Step("hinge argument", f"z = −y·(x1 − x2) + margin,  margin = {margin:g}", _ranking_argument(x, params)),
        Step("loss", "max(0, z)  (gradient flows where z >= 0)", margin_ranking_forward(x, params).values),
    ]


def _validate_margin_ranking(x: dict, params: dict) -> None:
    if x["x2"].shape != x["x1"].shape:
        raise InvalidInput("x2", f"shape {x['x2'].shape} does not match {ref('x1')}'s shape {x['x1'].shape}")


# -- hinge-embedding ------------------------------------------------------------------------

def _hinge_embedding_parts(x: dict, params: dict):
    a, y = x["pred"], x["target"]
    z = params.get("margin", 1.0) - a
    margin_term = np.where(y != 1, np.maximum(z, 0), 0)
    self_term = np.where(y != -1, a, 0)
    return z, margin_term, self_term


def hinge_embedding_forward(x: dict, params: dict) -> Forward:
    """Hinge embedding, as ``torch.nn.functional.hinge_embedding_loss`` (ATen's Loss.cpp):
        l = [y ≠ 1]·max(0, margin − a) + [y ≠ −1]·a
    so y = 1 gives a, y = −1 gives max(0, margin − a), and any other y both terms."""
    _, margin_term, self_term = _hinge_embedding_parts(x, params)
    return Forward(margin_term + self_term)


def hinge_embedding_backward(x: dict, params: dict, upstream: float) -> dict:
    """∂l/∂a = [y ≠ −1] − [y ≠ 1]·[margin − a >= 0]  (clamp_min passes a == margin)."""
    a, y = x["pred"], x["target"]
    z = params.get("margin", 1.0) - a
    g = np.where(y != -1, 1.0, 0.0) - np.where((y != 1) & (z >= 0), 1.0, 0.0)
    return {"pred": _grad_like(g * upstream, a)}


def hinge_embedding_steps(x: dict, params: dict) -> list[Step]:
    a, y = x["pred"], x["target"]
    margin = params.get("margin", 1.0)
    _, margin_term, self_term = _hinge_embedding_parts(x, params)
    return [
        Step("prediction", "a  (usually a distance)", a),
        Step("target", "y  (1: similar, −1: dissimilar)", y),
        Step("margin term", f"1(y ≠ 1)·max(0, margin − a),  margin = {margin:g}", margin_term),
        Step("self term", "1(y ≠ −1)·a", self_term),
        Step("loss", "margin term + self term", margin_term + self_term),
    ]


# -- hinge and exponential (binary margin losses on labels ±1) ------------------------------------------

def _signed_labels(y: np.ndarray) -> np.ndarray:
    """Binary labels as ±1: 0 is read as −1 (validated to be −1, 0 or 1)."""
    return np.where(y == 0, -1, y).astype(y.dtype, copy=False)


def hinge_forward(x: dict, params: dict) -> Forward:
    """Binary hinge: l = max(0, 1 − y·a), y ∈ {−1, 1} (0 read as −1), as torch.clamp_min."""
    y = _signed_labels(x["target"])
    return Forward(np.maximum(1 - y * x["pred"], 0))


def hinge_backward(x: dict, params: dict, upstream: float) -> dict:
    """∂l/∂a = −y where 1 − y·a >= 0 (clamp_min's convention: the gradient passes at 1 − y·a == 0)."""
    a = x["pred"]
    y = _signed_labels(x["target"])
    g = np.where(1 - y * a >= 0, -y * upstream, 0)
    return {"pred": _grad_like(g, a)}


def hinge_steps(x: dict, params: dict) -> list[Step]:
    a, y = x["pred"], x["target"]
    s = _signed_labels(y)
    return [
        Step("prediction", "a", a),
        Step("target", "y as given", y),
        Step("label", "y ∈ {−1, 1}  (0 read as −1)", s),
        Step("margin", "y·a", s * a),
        Step("loss", "max(0, 1 − y·a)  (gradient −y where 1 − y·a >= 0)", hinge_forward(x, params).values),
    ]


def exponential_forward(x: dict, params: dict) -> Forward:
    """Exponential loss (AdaBoost's): l = exp(−y·a), y ∈ {−1, 1} (0 read as −1)."""
    y = _signed_labels(x["target"])
    return Forward(np.exp(-y * x["pred"]))


def exponential_backward(x: dict, params: dict, upstream: float) -> dict:
    """∂l/∂a = −y·exp(−y·a)."""
    a = x["pred"]
    y = _signed_labels(x["target"])
    return {"pred": _grad_like(-y * np.exp(-y * a) * upstream, a)}


def exponential_steps(x: dict, params: dict) -> list[Step]:
    a, y = x["pred"], x["target"]
    s = _signed_labels(y)
    return [
        Step("prediction", "a", a),
        Step("target", "y as given", y),
        Step("label", "y ∈ {−1, 1}  (0 read as −1)", s),
        Step("margin", "y·a", s * a),
        Step("loss", "exp(−y·a)", exponential_forward(x, params).values),
    ]


def _validate_binary_labels(x: dict, params: dict) -> None:
    y = x["target"]
    bad = ~((y == -1) | (y == 0) | (y == 1))
    if np.any(bad):
        raise InvalidInput("target", f"labels must be -1 or 1 (0 and 1 also work: 0 is read as -1); "
                                     f"found {float(y[bad][0])!r} at index {_first_index(bad)}")


# -- the registry rows ----------------------------------------------------------------------

SOFT_MARGIN = LossSpec(
    name="soft-margin",
    aliases=("soft-margin-loss",),
    mirrors="torch.nn.functional.soft_margin_loss",
    summary="Two-class logistic loss log(1 + exp(−y·a)) for targets ±1.",
    formula="l = log(1 + exp(−y·a)); mean over all elements",
    kinds={"pred": None},
    target="broadcast",
    forward=soft_margin_forward,
    backward=soft_margin_backward,
    steps=soft_margin_steps,
    validate=_validate_soft_margin,
    input_help={"target": "Labels ±1 (any real is accepted, as torch), broadcast to the prediction's shape."},
    notes="Computed as softplus(−y·a): finite where torch's log(1 + exp(·)) overflows to inf (−y·a > 709).",
)

MULTILABEL_SOFT_MARGIN = LossSpec(
    name="multilabel-soft-margin",
    aliases=("multilabel-soft-margin-loss",),
    mirrors="torch.nn.functional.multilabel_soft_margin_loss",
    summary="Multi-label one-versus-all logistic loss on logits, averaged over the classes.",
    formula="l_n = (1/C) Σ_c −w_c·[t·log σ(z) + (1−t)·log σ(−z)]; mean over samples",
    kinds={"logits": None},
    params=(LABEL_WEIGHT,),
    target="same",
    class_axis=True,
    forward=multilabel_soft_margin_forward,
    backward=multilabel_soft_margin_backward,
    steps=multilabel_soft_margin_steps,
    validate=_validate_multilabel_soft,
    input_help={"logits": "Raw scores, (N, C) or (C,).",
                "target": f"1 where a label is present, 0 where absent; the shape of {ref('logits')}."},
    notes="Inputs are (C,) or (N, C). The target (same shape) is not checked to be 0/1, as in torch.",
)

MULTILABEL_MARGIN = LossSpec(
    name="multilabel-margin",
    aliases=("multilabel-margin-loss",),
    mirrors="torch.nn.functional.multilabel_margin_loss",
    summary="Multi-label hinge loss; each target row lists class indices, ended by −1.",
    formula="l_n = (1/C) Σ_{j∈Y} Σ_{i∉Y} max(0, 1 − a[y_j] + a[i]); mean over samples",
    kinds={"pred": None},
    target="same",
    class_axis=True,
    forward=multilabel_margin_forward,
    backward=multilabel_margin_backward,
    steps=multilabel_margin_steps,
    validate=_validate_multilabel_margin,
    input_help={"pred": "Scores, (N, C) or (C,).",
                "target": "Integer class indices per row, ended by the first −1 (the rest is ignored); "
                          f"the shape of {ref('pred')}."},
    notes="Inputs are (C,) or (N, C); the target has the same shape. The margin is fixed at 1, as in torch. "
          "Terms count only when z > 0 (ATen's strict test). An empty batch gives NaN under 'mean' "
          "(torch 2.13 returns 0).",
)

MULTI_MARGIN = LossSpec(
    name="multi-margin",
    aliases=("multi-margin-loss",),
    mirrors="torch.nn.functional.multi_margin_loss",
    summary="Multi-class hinge loss between scores and a class index.",
    formula="l_n = (1/C) Σ_{i≠y} w[y]·max(0, margin − a[y] + a[i])^p; mean over samples",
    kinds={"pred": None},
    params=(P, replace(MARGIN, help="Margin between the target score and every other score."), CLASS_WEIGHT),
    target="index",
    class_axis=True,
    forward=multi_margin_forward,
    backward=multi_margin_backward,
    steps=multi_margin_steps,
    validate=_validate_multi_margin,
    input_help={"pred": "Scores, (N, C) or (C,).", "target": "Class index per sample, (N,) or a single number."},
    notes="Inputs are (C,) or (N, C). Terms count only when z > 0 (ATen's strict test). "
          "An empty batch gives NaN under 'mean' (torch 2.13 returns uninitialised memory).",
)

MARGIN_RANKING = LossSpec(
    name="margin-ranking",
    aliases=("margin-ranking-loss",),
    mirrors="torch.nn.functional.margin_ranking_loss",
    summary="Ranking hinge: x1 should exceed x2 by the margin where y = 1, and the reverse where y = −1.",
    formula="l = max(0, −y·(x1 − x2) + margin); mean over all elements",
    kinds={"x1": None},
    extra_inputs=("x2",),
    params=(replace(MARGIN, default=0.0, help="How far the preferred input must lead: max(0, −y·(x1 − x2) + margin)."),),
    target="same",
    forward=margin_ranking_forward,
    backward=margin_ranking_backward,
    steps=margin_ranking_steps,
    validate=_validate_margin_ranking,
    input_help={"x1": "First scores.", "x2": f"Second scores, the shape of {ref('x1')}.",
                "target": f"1 where x1 should rank higher, −1 where x2 should; the shape of {ref('x1')}."},
    notes=f"{ref('x1')}, {ref('x2')} and {ref('target')} have one shape (torch also broadcasts same-rank sizes). "
          "The gradient flows where −y·(x1 − x2) + margin >= 0, as torch's clamp_min.",
)

HINGE_EMBEDDING = LossSpec(
    name="hinge-embedding",
    aliases=("hinge-embedding-loss",),
    mirrors="torch.nn.functional.hinge_embedding_loss",
    summary="Hinge embedding loss: a for similar pairs (y = 1), max(0, margin − a) for dissimilar (y = −1).",
    formula="l = [y ≠ 1]·max(0, margin − a) + [y ≠ −1]·a; mean over all elements",
    kinds={"pred": None},
    params=(replace(MARGIN, help="Margin for dissimilar pairs (y = −1): max(0, margin − a)."),),
    target="broadcast",
    forward=hinge_embedding_forward,
    backward=hinge_embedding_backward,
    steps=hinge_embedding_steps,
    input_help={"pred": "Inputs, usually distances between pairs.",
                "target": "1 (similar) or −1 (dissimilar), broadcast to the prediction's shape."},
    notes="Targets other than ±1 add both terms, as in torch. The gradient passes at a == margin (clamp_min).",
)

HINGE = LossSpec(
    name="hinge",
    aliases=("hinge-loss",),
    mirrors="binary hinge max(0, 1 - y*a), y in {-1, 1} (0/1 accepted)",
    summary="Binary hinge loss max(0, 1 − y·a) for labels ±1 (0/1 labels accepted, 0 read as −1).",
    formula="l = max(0, 1 − y·a), y ∈ {−1, 1}; mean over all elements",
    kinds={"pred": None},
    target="broadcast",
    forward=hinge_forward,
    backward=hinge_backward,
    steps=hinge_steps,
    validate=_validate_binary_labels,
    input_help={"pred": "Scores (decision values).", "target": "Labels −1/1 or 0/1 (0 is read as −1)."},
    notes="The gradient −y passes at 1 − y·a == 0, as torch.clamp_min's backward.",
    conventions=HINGE_CONVENTIONS,
)

EXPONENTIAL = LossSpec(
    name="exponential",
    aliases=("exponential-loss", "exp-loss"),
    mirrors="exp(-y*a)",
    summary="Exponential loss exp(−y·a) for labels ±1 (0/1 labels accepted, 0 read as −1).",
    formula="l = exp(−y·a), y ∈ {−1, 1}; mean over all elements",
    kinds={"pred": None},
    target="broadcast",
    forward=exponential_forward,
    backward=exponential_backward,
    steps=exponential_steps,
    validate=_validate_binary_labels,
    input_help={"pred": "Scores (decision values).", "target": "Labels −1/1 or 0/1 (0 is read as −1)."},
)

# -- zero-one ------------------------------------------------------------------------------

THRESHOLD = Param(
    "threshold", "float", None,
    f"With {ref('pred')}: count |y − a| ≥ T as an error (a 0-1 loss for regression); without it, a ≠ y.",
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
        raise InvalidInput("threshold", f"applies to {ref('pred')} only (classification uses the argmax)")
    check_class_indices(x, params)


def sklearn_zero_one(t, x, params):
    """sklearn.metrics.zero_one_loss: 1[ŷ ≠ y] per sample (a row of label indicators counts as one
    error unless every label matches: the subset zero-one loss); normalize=True is np.average
    (Σ w·l / Σ w), normalize=False the (weighted) count."""
    a, y = x["pred"].value, x["target"]
    wrong = a != y
    if wrong.ndim > 1:
        wrong = wrong.reshape(wrong.shape[0], -1).any(axis=1)
        t.step("subset", "row wrong", "1[any label of the row ≠ y] (subset zero-one loss)", wrong.astype(a.dtype))
    values = T.lift(wrong.astype(a.dtype))
    t.step("loss", "misclassified", "1[ŷ ≠ y]", values)
    return values


def _sklearn_zero_one_validate(x, params):
    a, y = np.asarray(x["pred"]), np.asarray(x["target"])
    for name, v in (("pred", a), ("target", y)):
        with np.errstate(invalid="ignore"):
            bad = ~np.isfinite(v) | (v != np.round(v)) if v.dtype.kind == "f" else np.zeros(v.shape, bool)
        if np.any(bad):
            pos = [int(i) for i in np.argwhere(bad)[0]]
            raise InvalidInput(name, "sklearn.metrics.zero_one_loss takes class labels (a continuous target is "
                                     f"refused: \"Classification metrics can't handle ... continuous\"); got "
                                     f"{float(v[tuple(pos)])!r} at index {pos}")
    if a.shape != y.shape:
        raise InvalidInput("target", f"shape {y.shape} does not match the predicted labels' shape {a.shape}")


ZERO_ONE_CONVENTIONS = {
    "torch": torch_convention(f"0-1 loss (classification, or regression with {ref('threshold')} T)",
                              f"argmax of scores, or {ref('pred')} compared element by element ({ref('threshold')} for regression)"),
    "sklearn": Convention("sklearn", "sklearn.metrics.zero_one_loss",
                          f"predicted labels only ({ref('pred')}); a row of indicators is one sample (subset loss); "
                          "np.average over samples (÷ Σ w), sum = normalize=False", sklearn_zero_one, kinds=("pred",),
                          validate=_sklearn_zero_one_validate),
}


ZERO_ONE = LossSpec(
    name="zero-one",
    aliases=("misclassification",),
    mirrors=f"0-1 loss (classification, or regression with {ref('threshold')} T)",
    summary="0-1 loss: the misclassification rate, or the rate of |y − a| ≥ T.",
    formula=f"l = 1[argmax x ≠ y] ({ref('logits')}/{ref('probs')}) or 1[|y − a| ≥ T] ({ref('pred')} {ref('threshold')} T; 1[a ≠ y] without T)",
    kinds={"pred": None, "logits": None, "probs": None},
    params=(THRESHOLD,),
    target="index",
    class_axis=True,
    class_kinds=("logits", "probs"),
    forward=zero_one_forward,
    backward=zero_one_backward,
    steps=zero_one_steps,
    validate=_validate_zero_one,
    notes=f"The gradient is all zeros (the loss is piecewise constant). {ref('pred')} takes a target of its own shape.",
    conventions=ZERO_ONE_CONVENTIONS,
)


SPECS = (SOFT_MARGIN, MULTILABEL_SOFT_MARGIN, MULTILABEL_MARGIN, MULTI_MARGIN, MARGIN_RANKING,
         HINGE_EMBEDDING, HINGE, EXPONENTIAL)
