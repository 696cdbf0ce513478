"""Cross-entropy and negative log-likelihood over a class dimension.

Both kernels work on log-probabilities ``lp`` of shape ``(N, C, d1, ..., dk)``
(class axis 1); ``--logits`` reach them through ``log_softmax`` and
``--probs`` through ``log``, with the chain rule applied by the engine.
"""

from __future__ import annotations

import numpy as np

from ..core.conversions import LOGITS_TO_LOG_PROBS, PROBS_TO_LOG_PROBS
from ..errors import InvalidInput, ref
from ..core.numerics import log_softmax, log_softmax_at, softmax
from ..core.registry import IGNORE_INDEX, LABEL_SMOOTHING, WEIGHT, Forward, LossSpec, Param, Step
from .ported import CE_CONVENTIONS


def _class_weights(weight, n_classes: int, dtype) -> np.ndarray:
    return np.ones(n_classes, dtype=dtype) if weight is None else np.asarray(weight, dtype=dtype)


def _expand(vector: np.ndarray, ndim: int) -> np.ndarray:
    """A (C,) vector shaped to broadcast along axis 1 of an ndim-array."""
    return vector.reshape((1, -1) + (1,) * (ndim - 2))


def _index_mode(lp: np.ndarray, target: np.ndarray) -> bool:
    return target.ndim == lp.ndim - 1


def _gather_valid(lp, target, ignore_index):
    """(valid mask, safe class index, lp at the target) for index targets."""
    valid = target != ignore_index
    safe = np.where(valid, target, 0).astype(np.intp)
    picked = np.take_along_axis(lp, safe[:, None], axis=1)[:, 0]
    return valid, safe, picked


def cross_entropy_forward(x: dict, params: dict) -> Forward:
    """Cross-entropy on log-probabilities, as ``torch.nn.functional.cross_entropy``.

    Class-index target y (positions with y = ignore_index dropped), weight w,
    smoothing ε over C classes:
        l_n = (1−ε)·(−w[y_n]·lp[n, y_n]) + (ε/C)·(−Σ_c w_c·lp[n, c]);  'mean' divides by Σ_n w[y_n].
    Probability target t:  t' = (1−ε)·t + ε/C;  l_n = −Σ_c w_c·t'_c·lp[n, c];  'mean' divides by N·d1…dk.
    """
    lp, target = x["log_probs"], x["target"]
    n_classes = lp.shape[1]
    w = _class_weights(params.get("weight"), n_classes, lp.dtype)
    eps = max(float(params.get("label_smoothing", 0.0)), 0.0)  # torch treats ε < 0 as 0
    if _index_mode(lp, target):
        valid, safe, picked = _gather_valid(lp, target, params.get("ignore_index", -100))
        w_n = np.where(valid, w[safe], 0.0).astype(lp.dtype)
        values = np.where(valid, -w[safe] * picked, 0.0)
        if eps > 0:
            smooth = np.where(valid, -np.sum(_expand(w, lp.ndim) * lp, axis=1), 0.0)
            values = (1 - eps) * values + (eps / n_classes) * smooth
        return Forward(values.astype(lp.dtype, copy=False), w_n)
    t = (1 - eps) * target + eps / n_classes if eps > 0 else target
    values = -np.sum(_expand(w, lp.ndim) * t * lp, axis=1)
    return Forward(values, None)


def cross_entropy_fused(kind: str, x: dict, params: dict, raw: dict, per_sample: bool = True) -> Forward | None:
    """The streaming engine's ``fused_forward`` for ``ce --logits`` with class indices, no
    smoothing, (N, C) logits: ``l_n = −w[y_n]·log_softmax(z)[n, y_n]`` needs only the row's
    log-sum-exp and the target logit, not the whole (N, C) log_softmax. The same numbers
    as ``cross_entropy_forward`` on ``log_softmax(z)`` (bit for bit but for the last ulp of
    the row sums when only the reduction is wanted: ``per_sample`` False)."""
    if kind != "logits" or max(float(params.get("label_smoothing", 0.0)), 0.0) > 0:
        return None
    z, target = x["logits"], x["target"]
    if z.ndim != 2 or target.ndim != 1:
        return None
    valid = target != params.get("ignore_index", -100)
    every = bool(valid.all())
    safe = target.astype(np.intp, copy=False) if every else np.where(valid, target, 0).astype(np.intp)
    given = raw.get("logits")
    # float32 logits computed in float64: cheaper argmax and (mostly) an exact shift x − max(x)
    picked = log_softmax_at(z, safe, accurate=per_sample,
                            float32_values=given if isinstance(given, np.ndarray) and given.dtype == np.float32 else None)
    if every and params.get("weight") is None:  # every w[y] = 1 (the denominator: ones, as w_n would be)
        return Forward(np.negative(picked).astype(z.dtype, copy=False), np.broadcast_to(z.dtype.type(1), picked.shape))
    w = _class_weights(params.get("weight"), z.shape[1], z.dtype)
    w_n = np.where(valid, w[safe], 0.0).astype(z.dtype)
    values = np.where(valid, -w[safe] * picked, 0.0)
    return Forward(values.astype(z.dtype, copy=False), w_n)


def cross_entropy_compiled(kind: str, raw, x: dict, params: dict, out=None):
    """The streaming engine's ``compiled_forward``: ``l_n = −w[y_n]·log_softmax(z_n)[y_n]`` on
    logits, ``−w[y_n]·lp[n, y_n]`` on log-probabilities, for (N, C) inputs with class indices
    and no smoothing, read as given and widened to float64 in the compiled kernel."""
    if kind not in ("logits", "log_probs") or max(float(params.get("label_smoothing", 0.0)), 0.0) > 0:
        return None
    from ..core.kernels import ce_rows

    return ce_rows(raw, x["target"], params.get("weight"), params.get("ignore_index", -100),
                   log_probs=kind == "log_probs", out=out)


def cross_entropy_backward(x: dict, params: dict, upstream: float) -> dict:
    """∂/∂lp of upstream·Σ l: index mode −(1−ε)·w[y]·δ_y − (ε/C)·w (non-ignored rows only);
    probability mode −w·t'."""
    lp, target = x["log_probs"], x["target"]
    n_classes = lp.shape[1]
    w = _class_weights(params.get("weight"), n_classes, lp.dtype)
    eps = max(float(params.get("label_smoothing", 0.0)), 0.0)
    if _index_mode(lp, target):
        valid, safe, _ = _gather_valid(lp, target, params.get("ignore_index", -100))
        g = np.zeros_like(lp)
        # ignored positions receive nothing (not 0·inf): torch's nll backward skips them,
        # which is why an all-ignored batch has a zero gradient under 'mean'.
        with np.errstate(invalid="ignore"):
            at_target = np.where(valid, -(1 - eps) * w[safe] * upstream, 0.0)
            np.put_along_axis(g, safe[:, None], at_target[:, None].astype(lp.dtype), axis=1)
            if eps > 0:
                spread = -(eps / n_classes) * _expand(w, lp.ndim) * upstream
                g = g + np.where(np.expand_dims(valid, 1), spread, 0.0)
        return {"log_probs": g.astype(lp.dtype, copy=False)}
    t = (1 - eps) * target + eps / n_classes if eps > 0 else target
    return {"log_probs": (-_expand(w, lp.ndim) * t * upstream).astype(lp.dtype, copy=False)}


def cross_entropy_steps(x: dict, params: dict) -> list[Step]:
    """x: log_probs (rows, C), target (rows,) or (rows, C)."""
    lp, target = x["log_probs"], x["target"]
    n_classes = lp.shape[1]
    w = _class_weights(params.get("weight"), n_classes, lp.dtype)
    eps = max(float(params.get("label_smoothing", 0.0)), 0.0)
    fwd = cross_entropy_forward(x, params)
    steps: list[Step] = []
    if _index_mode(lp, target):
        ignore = params.get("ignore_index", -100)
        valid, safe, picked = _gather_valid(lp, target, ignore)
        steps.append(Step("target class", f"y  (y = {ignore} is ignored)", target))
        steps.append(Step("target log-probability", "log p_y", np.where(valid, picked, np.nan)))
        steps.append(Step("negative log-likelihood", "−log p_y", np.where(valid, -picked, 0.0)))
        if params.get("weight") is not None:
            steps.append(Step("class weight", "w_y", np.where(valid, w[safe], 0.0)))
            steps.append(Step("weighted NLL", "−w_y·log p_y", np.where(valid, -w[safe] * picked, 0.0)))
        if eps > 0:
            steps.append(Step("smoothing term", "−Σ_c w_c·log p_c", np.where(valid, -np.sum(w * lp, axis=1), 0.0)))
            steps.append(Step("label smoothing", f"(1−ε)·nll + ε/C·smooth, ε = {eps:g}, C = {n_classes}", fwd.values))
    else:
        t = (1 - eps) * target + eps / n_classes if eps > 0 else target
        steps.append(Step("target distribution", "t", target))
        if eps > 0:
            steps.append(Step("smoothed target", f"t' = (1−ε)·t + ε/C, ε = {eps:g}", t))
        if params.get("weight") is not None:
            steps.append(Step("class weight", "w_c", np.broadcast_to(w, lp.shape)))
        steps.append(Step("cross-entropy", "−Σ_c w_c·t'_c·log p_c", fwd.values))
    steps.append(Step("loss", "l", fwd.values))
    return steps


def _validate_class_weight(x: dict, params: dict) -> None:
    weight = params.get("weight")
    n_classes = x["log_probs"].shape[1]
    if weight is not None and (np.ndim(weight) != 1 or np.shape(weight)[0] != n_classes):
        raise InvalidInput("weight", f"expected one weight per class, shape ({n_classes},), got shape {tuple(np.shape(weight))}")


def _validate_ce(x: dict, params: dict) -> None:
    _validate_class_weight(x, params)
    eps = params.get("label_smoothing", 0.0)
    if eps > 1:
        raise InvalidInput("label_smoothing", f"must be between 0.0 and 1.0, got {eps}")
    if not _index_mode(x["log_probs"], x["target"]) and params.get("ignore_index", -100) >= 0:
        raise InvalidInput("ignore_index", "is not supported with class-probability targets (it must be negative)")


def cross_entropy_tokens(arrays: dict, params: dict, reduction: str, dtype, dim, grad: bool):
    """``ce`` with ``dim`` the last axis of (B, T, V) logits and class-index targets (B, T): the
    token-batch kernels of :mod:`.lm` (streamed over blocks of rows and of the vocabulary, the
    same numbers as ``lossctl lm``). None when the call is not that (probabilities, a weight,
    smoothing, NaN/inf logits, an invalid target: the general path computes or reports it)."""
    logits, target = arrays.get("logits"), arrays.get("target")
    if logits is None or target is None or any(arrays.get(k) is not None for k in ("probs", "log_probs")):
        return None
    if not hasattr(logits, "shape") or len(logits.shape) < 3 or dim is None or dim % len(logits.shape) != len(logits.shape) - 1:
        return None
    if params.get("weight") is not None or max(float(params.get("label_smoothing") or 0.0), 0.0) > 0:
        return None
    target = np.asarray(target)
    if target.shape != tuple(logits.shape[:-1]) or getattr(logits, "dtype", np.dtype("O")).kind != "f":
        return None
    with np.errstate(all="ignore"):
        if not np.isfinite(np.sum(logits, dtype=np.float64)):
            return None
    lead = int(np.prod(logits.shape[:-2], dtype=np.int64))
    x = {"logits": np.reshape(logits, (lead,) + tuple(logits.shape[-2:])), "labels": target.reshape(lead, -1)}
    from . import lm  # here, not above: a small call that is not a token batch never loads the token kernels
    normalize = "tokens" if reduction == "mean" else "global:1"  # sum, and none (the gradient of the sum)
    try:
        r = lm.evaluate(x, {"ignore_index": params.get("ignore_index", -100), "normalize": normalize}, dtype=dtype,
                        grad=grad, per_sample=True)
    except InvalidInput:
        return None
    values = r.per_token.reshape(target.shape).astype(dtype, copy=False)
    return {"loss": values if reduction == "none" else r.loss, "per_sample": values,
            "grad": {"logits": r.grad.reshape(logits.shape)} if grad else {},
            "denominator": r.denominator if reduction == "mean" else 1.0}


CE = LossSpec(
    name="ce",
    aliases=("cross-entropy",),
    mirrors="torch.nn.functional.cross_entropy",
    summary="Cross-entropy between logits and class indices or class probabilities.",
    formula="l = −w_y·log softmax(x)_y (with smoothing: (1−ε)·nll + ε/C·Σ_c −w_c·log p_c); mean divides by Σ w_y",
    kinds={"logits": LOGITS_TO_LOG_PROBS, "probs": PROBS_TO_LOG_PROBS, "log_probs": None},
    params=(WEIGHT, IGNORE_INDEX, LABEL_SMOOTHING),
    target="class",
    class_axis=True,
    forward=cross_entropy_forward,
    backward=cross_entropy_backward,
    steps=cross_entropy_steps,
    validate=_validate_ce,
    fused_forward=cross_entropy_fused,
    compiled_forward=cross_entropy_compiled,
    token_path=cross_entropy_tokens,
    notes=f"{ref('probs')} and {ref('log_probs')} skip the softmax: the loss is the NLL of log p (torch.log, no clamp).",
    conventions=CE_CONVENTIONS,
)

NLL = LossSpec(
    name="nll",
    aliases=("nll-loss",),
    mirrors="torch.nn.functional.nll_loss",
    summary="Negative log-likelihood of the target class under given log-probabilities.",
    formula="l = −w_y·x_y; mean divides by Σ w_y over non-ignored targets",
    kinds={"log_probs": None, "probs": PROBS_TO_LOG_PROBS},
    params=(WEIGHT, IGNORE_INDEX),
    target="index",
    class_axis=True,
    forward=cross_entropy_forward,
    backward=cross_entropy_backward,
    steps=cross_entropy_steps,
    validate=_validate_class_weight,
    compiled_forward=cross_entropy_compiled,
    notes="The input is not checked to be log-probabilities (torch does not either): any real numbers work.",
)

# -- symmetric cross entropy ---------------------------------------------------------------

SCE_ALPHA = Param("alpha", "float", 1.0, "Weight α of the cross-entropy term.")
SCE_BETA = Param("beta", "float", 1.0, "Weight β of the reverse cross-entropy term.")
SCE_CLAMP = 1e-4  # SCELoss clamps softmax(x) and one_hot(y) to [1e-4, 1]: log(1e-4) bounds the reverse term


def _one_hot(target: np.ndarray, n_classes: int, dtype) -> np.ndarray:
    """(N, d…) indices → (N, C, d…) one-hot (class axis 1)."""
    oh = np.moveaxis(np.eye(n_classes, dtype=dtype)[target], -1, 1)
    return oh


def _sce_parts(x: dict):
    z, y = x["logits"], x["target"]
    n_classes = z.shape[1]
    lp = log_softmax(z, axis=1)
    p = softmax(z, axis=1)
    oh = _one_hot(y, n_classes, z.dtype)
    ce = -np.take_along_axis(lp, y[:, None].astype(np.intp), axis=1)[:, 0]
    pc = np.clip(p, SCE_CLAMP, 1.0)
    log_oh = np.log(np.clip(oh, SCE_CLAMP, 1.0))  # 0 at the label, log(1e-4) elsewhere
    rce = -np.sum(pc * log_oh, axis=1)
    return p, oh, ce, pc, log_oh, rce


def sce_forward(x: dict, params: dict) -> Forward:
    """Symmetric cross-entropy (Wang et al. 2019), as their SCELoss:
        ce_n  = −log softmax(z)_y
        rce_n = −Σ_c clamp(p_c, 1e-4, 1)·log clamp(onehot_c, 1e-4, 1) = −log(1e-4)·Σ_{c≠y} clamp(p_c, 1e-4, 1)
        l_n   = α·ce_n + β·rce_n
    'mean' divides by the number of positions (= α·CE.mean() + β·RCE.mean(), SCELoss's forward).
    """
    _, _, ce, _, _, rce = _sce_parts(x)
    return Forward(float(params.get("alpha", 1.0)) * ce + float(params.get("beta", 1.0)) * rce)


def sce_backward(x: dict, params: dict, upstream: float) -> dict:
    """∂l/∂z = α·(p − onehot) + β·p·(g − Σ_c p_c·g_c),  g_c = −log clamp(onehot_c)·1[1e-4 ≤ p_c ≤ 1]
    (torch's clamp passes the gradient at the bounds, inclusive; softmax backward)."""
    alpha = float(params.get("alpha", 1.0))
    beta = float(params.get("beta", 1.0))
    z = x["logits"]
    p, oh, _, _, log_oh, _ = _sce_parts(x)
    g_p = np.where((p >= SCE_CLAMP) & (p <= 1.0), -log_oh, 0.0)
    g_rce = p * (g_p - np.sum(g_p * p, axis=1, keepdims=True))
    g = (alpha * (p - oh) + beta * g_rce) * upstream
    return {"logits": np.asarray(g, dtype=z.dtype)}


def sce_steps(x: dict, params: dict) -> list[Step]:
    """x: logits (rows, C), target (rows,)."""
    alpha = float(params.get("alpha", 1.0))
    beta = float(params.get("beta", 1.0))
    p, _, ce, pc, _, rce = _sce_parts(x)
    y = x["target"]
    return [
        Step("logits", "z", x["logits"]),
        Step("target class", "y", y),
        Step("softmax", "p = softmax(z)", p),
        Step("cross-entropy", "CE = −log p_y", ce),
        Step("clamped probabilities", f"clamp(p, {SCE_CLAMP:g}, 1)", pc),
        Step("reverse cross-entropy", f"RCE = −log({SCE_CLAMP:g})·Σ_(c≠y) clamp(p_c)  (one-hot clamped to [{SCE_CLAMP:g}, 1])", rce),
        Step("loss", f"α·CE + β·RCE, α = {alpha:g}, β = {beta:g}", alpha * ce + beta * rce),
    ]


def check_class_indices(x: dict, params: dict) -> None:
    """No ignore_index here: every target must be a class of the prediction."""
    if "pred" in x:
        return
    y = x["target"]
    n_classes = next(v for k, v in x.items() if k != "target").shape[1]
    bad = (y < 0) | (y >= n_classes)
    if np.any(bad):
        where = [int(i) for i in np.argwhere(bad)[0]]
        raise InvalidInput("target", f"class index {int(y[tuple(where)])} is out of range for {n_classes} classes (index {where})")


SCE = LossSpec(
    name="sce",
    aliases=("symmetric-cross-entropy",),
    mirrors="symmetric cross entropy (Wang et al. 2019)",
    summary="Symmetric cross-entropy α·CE + β·RCE, robust to noisy labels.",
    formula="l = α·(−log p_y) + β·(−Σ_c clamp(p_c, 1e-4, 1)·log clamp(onehot_c, 1e-4, 1)), p = softmax(z)",
    kinds={"logits": None},
    params=(SCE_ALPHA, SCE_BETA),
    target="index",
    class_axis=True,
    forward=sce_forward,
    backward=sce_backward,
    steps=sce_steps,
    validate=check_class_indices,
    notes="Class-index targets only (no ignore_index). RCE = 9.2103·Σ_(c≠y) clamp(p_c).",
)


SPECS = (CE, NLL)
