"""Embedding losses on pairs and triplets of vectors: cosine embedding and triplet margin.

Both take several differentiable inputs: the first is the loss's own
prediction kind (``x1``, ``anchor``), the others are ``extra_inputs``; the
gradient of each comes back under its own name. Vectors lie along the last
axis, samples along the leading axes (one sample for a 1-D input).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..errors import InvalidInput, ref, spell_refs
from ..core.numerics import sum_to_shape
from ..core.registry import MARGIN, Forward, LossSpec, Param, Step
from .ported import TRIPLET_CONVENTIONS

# ATen's EPSILON in cosine_embedding_loss is float(1e-12), a float32 constant
# even in double kernels: 9.999999960041972e-13, added to each squared norm.
COSINE_EPS = float(np.float32(1e-12))


# --------------------------------------------------------------------------- cosine embedding


def _cosine_parts(x1: np.ndarray, x2: np.ndarray):
    """(x1·x2, ‖x1‖² + ε, ‖x2‖² + ε, denominator, cos) along the last axis, as ATen computes them."""
    prod = np.sum(x1 * x2, axis=-1)
    m1 = np.sum(x1 * x1, axis=-1) + x1.dtype.type(COSINE_EPS)
    m2 = np.sum(x2 * x2, axis=-1) + x2.dtype.type(COSINE_EPS)
    denom = np.sqrt(m1 * m2)
    return prod, m1, m2, denom, prod / denom


def cosine_embedding_forward(x: dict, params: dict) -> Forward:
    """Cosine embedding loss, as ``torch.nn.functional.cosine_embedding_loss``.

        cos = x1·x2 / sqrt((‖x1‖² + ε)·(‖x2‖² + ε)),  ε = float32(1e-12) (ATen's EPSILON)
        l = 1 − cos            where y = 1
          = max(0, cos − m)    where y = −1
          = 0                  for any other y (torch does not reject it)
    'mean' divides by the number of pairs N.
    """
    y = x["target"]
    _, _, _, _, cos = _cosine_parts(x["x1"], x["x2"])
    margin = cos.dtype.type(params.get("margin", 0.0))
    zeros = np.zeros_like(cos)
    pos = np.where(y == 1, 1 - cos, zeros)
    neg = np.where(y == -1, np.maximum(cos - margin, 0), zeros)  # clamp_min: NaN stays NaN
    return Forward(pos + neg)


def cosine_embedding_backward(x: dict, params: dict, upstream) -> dict:
    """dl/dcos = −1 (y = 1), [cos − m ≥ 0] (y = −1; clamp_min passes the gradient at 0), 0 otherwise;
    then autograd through cos = p / sqrt(m1·m2):
        ∂/∂x1 = g/den·x2 − g·p/den²/(2·den)·m2·2·x1   (and symmetrically for x2)."""
    x1, x2, y = x["x1"], x["x2"], x["target"]
    prod, m1, m2, denom, cos = _cosine_parts(x1, x2)
    margin = cos.dtype.type(params.get("margin", 0.0))
    dcos = np.where(y == 1, -1.0, 0.0) + np.where(y == -1, np.where(cos - margin >= 0, 1.0, 0.0), 0.0)
    g = sum_to_shape(np.asarray(dcos * upstream, dtype=cos.dtype), cos.shape)
    g = np.broadcast_to(g, cos.shape)
    g_prod = g / denom
    g_denom = -g * prod / (denom * denom)
    g_sq = g_denom / (2 * denom)  # sqrt backward
    g_m1 = sum_to_shape(g_sq * m2, m1.shape)
    g_m2 = sum_to_shape(g_sq * m1, m2.shape)
    g_x1 = sum_to_shape(g_prod[..., None] * x2, x1.shape) + 2 * g_m1[..., None] * x1
    g_x2 = sum_to_shape(g_prod[..., None] * x1, x2.shape) + 2 * g_m2[..., None] * x2
    return {"x1": np.asarray(g_x1, dtype=x1.dtype), "x2": np.asarray(g_x2, dtype=x2.dtype)}


def _cosine_rows(x: dict, params: dict, k: int) -> dict:
    """The first k pairs: batch axes broadcast, each vector kept as given (its own length)."""
    x1, x2, y = x["x1"], x["x2"], x["target"]
    batch = np.broadcast_shapes(x1.shape[:-1], x2.shape[:-1], y.shape)
    out = {}
    for name, a in (("x1", x1), ("x2", x2)):
        out[name] = np.broadcast_to(a, batch + a.shape[-1:]).reshape(-1, a.shape[-1])[:k]
    out["target"] = np.broadcast_to(y, batch).reshape(-1)[:k]
    return out


def cosine_embedding_steps(x: dict, params: dict) -> list[Step]:
    """x: x1 (rows, D), x2 (rows, D), target (rows,)."""
    x1, x2, y = x["x1"], x["x2"], x["target"]
    prod, m1, m2, denom, cos = _cosine_parts(x1, x2)
    margin = float(params.get("margin", 0.0))
    return [
        Step("x1", "x1", x1),
        Step("x2", "x2", x2),
        Step("dot product", "x1·x2", prod),
        Step("squared norm of x1", "‖x1‖² + ε  (ε = float32(1e-12), ATen's EPSILON)", m1),
        Step("squared norm of x2", "‖x2‖² + ε", m2),
        Step("cosine", "cos = x1·x2 / sqrt((‖x1‖² + ε)(‖x2‖² + ε))", cos),
        Step("target", "y ∈ {1, −1}  (any other y gives 0)", y),
        Step("similar pair (y = 1)", "1 − cos", 1 - cos),
        Step("dissimilar pair (y = −1)", f"max(0, cos − margin), margin = {margin:g}", np.maximum(cos - margin, 0)),
        Step("loss", "l = y = 1 ? 1 − cos : y = −1 ? max(0, cos − margin) : 0", cosine_embedding_forward(x, params).values),
    ]


def _validate_cosine(x: dict, params: dict) -> None:
    x1, x2, y = x["x1"], x["x2"], x["target"]
    if y.ndim > 1:
        raise InvalidInput("target", f"expected a 0-D or 1-D target (one ±1 per pair), got shape {y.shape}")
    want = 2 if y.ndim == 1 else 1
    for name, a in (("x1", x1), ("x2", x2)):
        if a.ndim != want:
            what = "a 1-D target needs (N, D) inputs" if y.ndim == 1 else "a single target needs (D,) inputs"
            raise InvalidInput(name, f"{what}; got shape {a.shape}")
    try:
        cos_shape = np.broadcast_shapes(x1.shape, x2.shape)[:-1]
    except ValueError:
        raise InvalidInput("x2", f"shape {x2.shape} does not broadcast with {ref('x1')}'s shape {x1.shape}") from None
    try:
        np.broadcast_shapes(cos_shape, y.shape)
    except ValueError:
        raise InvalidInput("target", f"shape {y.shape} does not match the {cos_shape[0]} pairs of {ref('x1')}/{ref('x2')}") from None


COSINE_EMBEDDING = LossSpec(
    name="cosine-embedding",
    aliases=("cosine-embedding-loss",),
    mirrors="torch.nn.functional.cosine_embedding_loss",
    summary="Cosine embedding loss: pull pairs with y = 1 together, push pairs with y = −1 below a cosine margin.",
    formula="l = 1 − cos(x1, x2) if y = 1;  max(0, cos(x1, x2) − margin) if y = −1",
    kinds={"x1": None},
    extra_inputs=("x2",),
    params=(replace(MARGIN, default=0.0, help="Cosine margin for dissimilar pairs (y = −1); torch suggests 0 to 0.5."),),
    target="custom",
    forward=cosine_embedding_forward,
    backward=cosine_embedding_backward,
    steps=cosine_embedding_steps,
    sample_rows=_cosine_rows,
    validate=_validate_cosine,
    input_help={
        "x1": "First embeddings, (N, D) or (D,).",
        "x2": f"Second embeddings, the shape of {ref('x1')}.",
        "target": "1 (similar) or −1 (dissimilar) per pair, (N,) or a single number.",
    },
    notes="Squared norms get ATen's float32 EPSILON 1e-12 added, so identical vectors give ~4e-14, not 0.",
)


# --------------------------------------------------------------------------- triplet margin


# Below this or above its inverse, |δ|^p under- or overflows: those norms are taken scaled
# (‖δ‖ = m·‖δ/m‖ with m = max |δ|, as hypot does), so points 1e-170 apart are not 0 apart.
_SCALE_BELOW = 1e-100


def _extreme(a: np.ndarray) -> np.ndarray:
    """Rows (over the last axis) whose largest |δ| is so small or large that |δ|^p leaves the float range."""
    m = np.max(a, axis=-1) if a.shape[-1] else np.zeros(a.shape[:-1], dtype=a.dtype)
    with np.errstate(invalid="ignore"):
        return (m > 0) & np.isfinite(m) & ((m < _SCALE_BELOW) | (m > 1 / _SCALE_BELOW))


def _vector_norm(delta: np.ndarray, p: float) -> np.ndarray:
    """‖δ‖_p over the last axis, as ``torch.linalg.vector_norm`` (p = 0 counts non-zeros, ±inf = max/min |δ|)."""
    a = np.abs(delta)
    if p == 1:
        return np.sum(a, axis=-1)
    if p == np.inf:
        return np.max(a, axis=-1)
    if p == -np.inf:
        return np.min(a, axis=-1)
    if p == 0:
        return np.sum(delta != 0, axis=-1).astype(delta.dtype)
    with np.errstate(over="ignore", under="ignore"):
        plain = np.sqrt(np.sum(delta * delta, axis=-1)) if p == 2 else np.sum(a ** p, axis=-1) ** (1.0 / p)
    extreme = _extreme(a)
    if not np.any(extreme):
        return plain
    with np.errstate(over="ignore", under="ignore", invalid="ignore", divide="ignore"):
        m = np.max(a, axis=-1, keepdims=True)
        scaled = m[..., 0] * np.sum((a / m) ** p, axis=-1) ** (1.0 / p)
    return np.where(extreme, scaled, plain)


def _norm_backward(delta: np.ndarray, norm: np.ndarray, g: np.ndarray, p: float) -> np.ndarray:
    """torch's norm_backward (FunctionsManual.cpp), branch for branch: zero where the norm is 0
    (p ≥ 1), sign(δ) for p = 1 (sign(0) = 0), ties of ±inf norms share the gradient equally."""
    g = g[..., None]
    n = norm[..., None]
    if p == 0:
        return np.zeros_like(delta)
    if p == 1:
        return np.sign(delta) * g
    if p == 2:
        return g * np.where(n == 0, 0.0, delta / n)
    if np.isinf(p):
        a = np.abs(delta)
        mask = (a == n) | np.isnan(a)
        return np.sign(delta) * ((g / np.sum(mask, axis=-1, keepdims=True)) * mask)
    a = np.abs(delta)
    with np.errstate(over="ignore", under="ignore", invalid="ignore", divide="ignore"):
        if p < 1:
            scaled = np.sign(delta) * np.where(delta == 0, 0.0, a ** (p - 1))
            plain = scaled * g * n ** (1 - p)
            ratio = np.sign(delta) * np.where(delta == 0, 0.0, (a / n) ** (p - 1)) * g
        else:
            scaled = np.sign(delta) * a ** (p - 1) if p < 2 else delta * a ** (p - 2)
            plain = scaled * np.where(n == 0, 0.0, g / n ** (p - 1))
            ratio = np.sign(delta) * (a / np.where(n == 0, 1.0, n)) ** (p - 1) * np.where(n == 0, 0.0, g)
    # |δ|^(p−1) and ‖δ‖^(p−1) under- or overflow apart for extreme δ; their ratio does not
    return np.where(_extreme(a)[..., None], ratio, plain)


def _triplet_parts(x: dict, params: dict):
    """Distances with torch.pairwise_distance: ‖u − v + eps‖_p over the last axis (eps added to the difference)."""
    a, pos, neg = (np.atleast_1d(x[k]) for k in ("anchor", "positive", "negative"))
    p = float(params.get("p", 2.0))
    eps = a.dtype.type(params.get("eps", 1e-6))
    deltas = {"ap": a - pos + eps, "an": a - neg + eps}
    if params.get("swap", False):
        deltas["pn"] = pos - neg + eps
    dists = {k: _vector_norm(d, p) for k, d in deltas.items()}
    d_neg = np.minimum(dists["an"], dists["pn"]) if "pn" in dists else dists["an"]
    margin = a.dtype.type(params.get("margin", 1.0))
    z = margin + dists["ap"] - d_neg
    return deltas, dists, d_neg, z


def triplet_margin_forward(x: dict, params: dict) -> Forward:
    """Triplet margin loss, as ``torch.nn.functional.triplet_margin_loss``.

        d(u, v) = ‖u − v + eps‖_p  over the last axis  (torch.pairwise_distance: eps is added
                                                         to the difference, so d(x, x) = eps·D^(1/p))
        d⁻ = min(d(a, n), d(p, n)) with --swap, else d(a, n)
        l = max(0, margin + d(a, p) − d⁻)
    'mean' divides by the number of triplets; inputs broadcast as torch allows.
    """
    *_, z = _triplet_parts(x, params)
    values = np.maximum(z, 0)  # clamp_min: NaN stays NaN
    shape = np.shape(x["anchor"])
    return Forward(values.reshape(()) if len(shape) == 0 else values)


def triplet_margin_backward(x: dict, params: dict, upstream) -> dict:
    """∂l/∂z = [z ≥ 0] (clamp_min passes the gradient at 0); d(a, p) gets +1, d⁻ gets −1,
    split 0.5/0.5 between d(a, n) and d(p, n) where they tie (torch.min); each distance's
    gradient is torch's norm_backward; ∂d(u, v)/∂v = −∂d(u, v)/∂u."""
    deltas, dists, d_neg, z = _triplet_parts(x, params)
    p = float(params.get("p", 2.0))
    gz = np.broadcast_to(np.where(z >= 0, 1.0, 0.0) * upstream, z.shape)
    g = {"ap": sum_to_shape(gz, dists["ap"].shape)}
    g_neg = sum_to_shape(-gz, d_neg.shape)
    if "pn" in dists:
        an, pn = dists["an"], dists["pn"]
        # torch.minimum backward: ties get grad/2 each; the larger side gets 0 (NaN: both full).
        half = np.where(an == pn, g_neg / 2, g_neg)
        g["an"] = sum_to_shape(half * np.where(an > pn, 0.0, 1.0), an.shape)
        g["pn"] = sum_to_shape(half * np.where(an < pn, 0.0, 1.0), pn.shape)
    else:
        g["an"] = g_neg
    names = {"ap": ("anchor", "positive"), "an": ("anchor", "negative"), "pn": ("positive", "negative")}
    shapes = {k: np.shape(x[k]) for k in ("anchor", "positive", "negative")}
    out = {k: np.zeros(np.atleast_1d(x[k]).shape, dtype=x[k].dtype) for k in shapes}
    for key, delta in deltas.items():
        gd = _norm_backward(delta, dists[key], np.broadcast_to(g[key], dists[key].shape), p)
        first, second = names[key]
        out[first] = out[first] + sum_to_shape(gd, out[first].shape)
        out[second] = out[second] - sum_to_shape(gd, out[second].shape)
    return {k: np.asarray(v, dtype=x[k].dtype).reshape(shapes[k]) for k, v in out.items()}


def _triplet_rows(x: dict, params: dict, k: int) -> dict:
    """The first k triplets: batch axes broadcast, vectors kept as given."""
    arrays = {name: np.atleast_1d(x[name]) for name in ("anchor", "positive", "negative")}
    batch = np.broadcast_shapes(*(a.shape[:-1] for a in arrays.values()))
    return {name: np.broadcast_to(a, batch + a.shape[-1:]).reshape(-1, a.shape[-1])[:k] for name, a in arrays.items()}


def triplet_margin_steps(x: dict, params: dict) -> list[Step]:
    """x: anchor, positive, negative, each (rows, D)."""
    deltas, dists, d_neg, z = _triplet_parts(x, params)
    p = float(params.get("p", 2.0))
    eps = float(params.get("eps", 1e-6))
    margin = float(params.get("margin", 1.0))
    steps = [
        Step("anchor", "a", x["anchor"]),
        Step("positive", "p", x["positive"]),
        Step("negative", "n", x["negative"]),
        Step("positive distance", f"d(a, p) = ‖a − p + eps‖_{p:g}, eps = {eps:g}", dists["ap"]),
        Step("negative distance", f"d(a, n) = ‖a − n + eps‖_{p:g}", dists["an"]),
    ]
    if "pn" in dists:
        steps += [
            Step("swap distance", f"d(p, n) = ‖p − n + eps‖_{p:g}", dists["pn"]),
            Step("hardest negative distance", spell_refs(f"d⁻ = min(d(a, n), d(p, n))  ({ref('swap')})"), d_neg),
        ]
    steps += [
        Step("margin violation", f"z = margin + d(a, p) − d⁻, margin = {margin:g}", z),
        Step("loss", "l = max(0, z)", np.maximum(z, 0)),
    ]
    return steps


def _validate_triplet(x: dict, params: dict) -> None:
    margin = float(params.get("margin", 1.0))
    if not margin > 0:
        raise InvalidInput("margin", f"must be greater than 0, got {margin:g} (as torch requires)")
    ndims = {k: np.ndim(x[k]) for k in ("anchor", "positive", "negative")}
    if len(set(ndims.values())) != 1:
        raise InvalidInput("positive" if ndims["positive"] != ndims["anchor"] else "negative",
                           "anchor, positive and negative must have the same number of dimensions; got "
                           + ", ".join(f"{k} {n}-D" for k, n in ndims.items()))
    shapes = {k: np.shape(np.atleast_1d(x[k])) for k in ndims}
    try:
        full = np.broadcast_shapes(*shapes.values())
    except ValueError:
        raise InvalidInput("negative", "shapes " + ", ".join(f"{k} {s}" for k, s in shapes.items())
                           + " do not broadcast together") from None
    if full[-1] == 0 and np.isinf(float(params.get("p", 2.0))):
        raise InvalidInput("p", "an infinity norm needs at least one vector component")


TRIPLET_MARGIN = LossSpec(
    name="triplet-margin",
    aliases=("triplet", "triplet-margin-loss"),
    mirrors="torch.nn.functional.triplet_margin_loss",
    summary="Triplet margin loss: the anchor must be closer to the positive than to the negative by a margin.",
    formula="l = max(0, margin + d(a, p) − d(a, n)), d(u, v) = ‖u − v + eps‖_p",
    kinds={"anchor": None},
    extra_inputs=("positive", "negative"),
    params=(
        replace(MARGIN, help="Required gap between the negative and the positive distance (> 0)."),
        Param("p", "float", 2.0, "The norm degree of the pairwise distance (1, 2, 3, inf, ... as torch.norm)."),
        Param("eps", "float", 1e-6, "Added to the difference u − v before the norm (torch.pairwise_distance)."),
        Param("swap", "bool", False, "Use min(d(a, n), d(p, n)) as the negative distance (distance swap, Balntas et al. 2016)."),
    ),
    target="none",
    forward=triplet_margin_forward,
    backward=triplet_margin_backward,
    steps=triplet_margin_steps,
    sample_rows=_triplet_rows,
    validate=_validate_triplet,
    input_help={
        "anchor": "Anchor embeddings, (N, D) or (D,); the distance is over the last dimension.",
        "positive": f"Positive embeddings, broadcastable to {ref('anchor')}.",
        "negative": f"Negative embeddings, broadcastable to {ref('anchor')}.",
    },
    notes="eps is added to the difference before the norm, so d(x, x) = eps·D^(1/p) and an 'exactly 0' loss "
          "comes out ~1e-13 and still gets a gradient, as in torch.",
    conventions=TRIPLET_CONVENTIONS,
)

SPECS = (COSINE_EMBEDDING, TRIPLET_MARGIN)
