"""The oracle table: for every registered loss, the loss written with PyTorch and a small example.

:data:`ORACLES` maps each registry name to an :class:`Oracle`:

* ``torch(case, leaves, reduction)``: the loss in torch ops (float64, autograd), from the
  torch function that defines it (``F.cross_entropy``, ...) or, for the losses torch does
  not have, a line-by-line formula (see the docstrings of ``_sce``, ``_hinge``,
  ``_exponential``, ``_zero_one`` and ``_focal``);
* ``example(rng, kind)``: a small valid call of the loss with prediction ``kind`` (inputs and
  parameters, without ``loss``/``reduction``), a batch of several rows away from kinks, ties
  and domain edges: the input of every common test (tests/test_common.py) and of the
  fixtures of a loss without a hand-written case table (tests/tools/make_torch_fixtures.py);
* ``opt_out``: common checks that do not apply to the loss, each with the reason
  (``"check"`` or ``"check/kind"`` -> why).

For a lossctl check-suite case (a plain dict) :func:`reference` computes

    {"loss": ..., "per_sample": ..., "grad": {input_name: ...}}

* ``loss``: the value for the case's ``reduction`` (float, or nested list for
  ``reduction='none'``);
* ``per_sample``: the ``reduction='none'`` values (nested list, or a float for
  unbatched inputs);
* ``grad``: the autograd gradient of the reduced loss (for ``'none'``: of the
  sum) with respect to every differentiable input of the loss present in the case
  (its prediction kinds and extra inputs, e.g. ``var``); never w.r.t. ``target`` or ``weight``.

Non-finite numbers are returned as the strings ``"nan"``, ``"inf"``, ``"-inf"``
(the lossctl JSON convention) by :func:`reference`; :func:`reference_tensors`
returns the raw tensors.

Case format: ``loss`` (registry name), the inputs as nested lists, and parameters under
PyTorch's names in snake case with PyTorch's defaults. torch is imported on first use,
so the examples and opt-outs serve the common tests without it (torchvision is not
needed: ``sigmoid_focal_loss`` is transcribed line by line from
``torchvision/ops/focal_loss.py``).

Definitions of the losses that have no torch function:

* ``sce``          Symmetric cross entropy (Wang et al. 2019): ``alpha·CE + beta·RCE``,
                   defaults alpha = 1, beta = 1.
* ``hinge``        ``clamp_min(1 - y·a, 0)``, ``y ∈ {-1, 1}``, 0 mapped to -1.
* ``exponential``  ``exp(-y·a)``, same target mapping.
* ``zero-one``     ``1[argmax ≠ y]`` (classification) or ``1[|y - a| ≥ T]``
                   (with ``threshold``), ``1[a ≠ y]`` without it. Gradient: all zeros.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

__all__ = [
    "ORACLES",
    "Oracle",
    "REFERENCES",
    "differentiable_inputs",
    "load_torch",
    "reference",
    "reference_tensors",
    "to_jsonable",
    "ce_from_log_probs",
]

# Bound by load_torch() on first use: the oracle table's examples need no torch.
torch: Any = None
F: Any = None
DTYPE: Any = None


def fixture_generator():
    """tests/tools/make_torch_fixtures.py as a module (loaded once): the script that made the
    committed torch fixtures, whose cases the tests reuse."""
    import importlib.util
    import sys
    from pathlib import Path

    name = "make_torch_fixtures"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parent / "tools" / f"{name}.py")
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
    return sys.modules[name]


def load_torch() -> None:
    global torch, F, DTYPE
    if torch is None:
        import torch as _torch
        import torch.nn.functional as _F

        torch, F, DTYPE = _torch, _F, _torch.float64


def _spec(loss: str):
    import lossctl

    return lossctl.registry().get(loss)


def differentiable_inputs(loss: str) -> tuple[str, ...]:
    """The inputs of ``loss`` that get a gradient: its prediction kinds and extra inputs."""
    spec = _spec(loss)
    return tuple(spec.kinds) + tuple(spec.extra_inputs)


# --------------------------------------------------------------------------- helpers


def _f64(x: Any) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x, dtype=np.float64), dtype=DTYPE)


def _long(x: Any) -> torch.Tensor:
    """Class indices: integers, or integral floats (``2.0``) as the contract allows."""
    a = np.asarray(x)
    if a.dtype.kind == "f":
        if not np.all(a == np.round(a)):
            raise ValueError(f"non-integral class index in {x!r}")
    return torch.as_tensor(a.astype(np.int64))


def _opt_f64(case: dict, key: str) -> torch.Tensor | None:
    v = case.get(key)
    return None if v is None else _f64(v)


def _kind(case: dict, loss: str) -> str:
    kinds = tuple(_spec(loss).kinds)
    present = [k for k in kinds if k in case]
    if len(present) != 1:
        raise ValueError(f"{loss}: expected exactly one of {kinds}, got {present}")
    return present[0]


def _class_dim(x: torch.Tensor) -> int:
    return 1 if x.dim() >= 2 else 0


def _reduce(loss: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"{reduction} is not a valid value for reduction")


def _pm1(y: torch.Tensor) -> torch.Tensor:
    """Binary labels for hinge/exponential: 0 → -1, everything else unchanged (so ±1 stay)."""
    return torch.where(y == 0, torch.full_like(y, -1.0), y)


# --------------------------------------------------------------------------- classification


def ce_from_log_probs(
    lp: torch.Tensor,
    target: torch.Tensor,
    weight: torch.Tensor | None,
    ignore_index: int,
    reduction: str,
    label_smoothing: float,
) -> torch.Tensor:
    """PyTorch's ``cross_entropy`` with ``log_softmax(x)`` replaced by ``lp``.

    A line-by-line transcription of ``aten/src/ATen/native/LossNLL.cpp``
    (``cross_entropy_loss_symint``, ``cross_entropy_loss_prob_target``,
    ``cross_entropy_loss_label_smoothing``) in torch ops, so that autograd
    flows into ``lp`` directly (no log_softmax in between):

    * probability target (``target.shape == lp.shape``):
      ``t' = (1-ε)·t + ε/C``; ``l_n = -Σ_c w_c·t'_c·lp_c``; mean over N·d1..dk;
    * index target, ε > 0: ``(1-ε)·nll_loss(lp, t, w, ignore) + (ε/C)·smooth``
      where ``smooth_n = -Σ_c w_c·lp_c`` (0 at ignored positions) and the
      'mean' denominator is ``Σ w[y_n]`` over non-ignored positions;
    * index target, ε <= 0: exactly ``F.nll_loss(lp, t, w, ignore_index)``.

    With ``lp = log_softmax(x, class_dim)`` this equals ``F.cross_entropy(x, ...)``
    (checked by tests/tools/make_torch_fixtures.py).
    """
    class_dim = _class_dim(lp)
    n_classes = lp.shape[class_dim]
    wshape = [1] * lp.dim()
    wshape[class_dim] = n_classes
    if tuple(target.shape) == tuple(lp.shape):  # probability target
        if ignore_index >= 0:
            raise ValueError("ignore_index is not supported for floating point target")
        t = target * (1 - label_smoothing) + label_smoothing / n_classes if label_smoothing > 0.0 else target
        prod = lp * t if weight is None else lp * t * weight.view(wshape)
        if reduction == "mean":
            if lp.numel() == 0:
                return -prod.sum() * float("nan")
            return -prod.sum() / (lp.numel() / n_classes)
        if reduction == "sum":
            return -prod.sum()
        if reduction == "none":
            return -prod.sum(class_dim)
        raise ValueError(reduction)
    if label_smoothing > 0.0:
        if label_smoothing > 1.0:
            raise ValueError(f"label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing}")
        nll = F.nll_loss(lp, target, weight=weight, ignore_index=ignore_index, reduction=reduction)
        smooth = -lp.sum(class_dim) if weight is None else -(lp * weight.view(wshape)).sum(class_dim)
        ignore_mask = target == ignore_index
        smooth = smooth.masked_fill(ignore_mask, 0.0)
        if reduction == "mean":
            if weight is not None:
                ret = smooth.sum() / weight.gather(0, target.masked_select(~ignore_mask).flatten()).sum()
            else:
                ret = smooth.sum() / (~ignore_mask).sum()
        elif reduction == "sum":
            ret = smooth.sum()
        else:
            ret = smooth
        return (1 - label_smoothing) * nll + ret * (label_smoothing / n_classes)
    return F.nll_loss(lp, target, weight=weight, ignore_index=ignore_index, reduction=reduction)


def _ce_target(case: dict, x: torch.Tensor) -> torch.Tensor:
    raw = case["target"]
    if tuple(np.shape(raw)) == tuple(x.shape):
        return _f64(raw)
    return _long(raw)


def _ce(case, L, reduction):
    """``ce``: F.cross_entropy (logits); the same formula on given log-probs / log(probs)."""
    kind = _kind(case, "ce")
    x = L[kind]
    target = _ce_target(case, x)
    weight = _opt_f64(case, "weight")
    ignore_index = int(case.get("ignore_index", -100))
    ls = float(case.get("label_smoothing", 0.0))
    if kind == "logits":
        return F.cross_entropy(x, target, weight=weight, ignore_index=ignore_index,
                               reduction=reduction, label_smoothing=ls)
    lp = x if kind == "log_probs" else torch.log(x)
    return ce_from_log_probs(lp, target, weight, ignore_index, reduction, ls)


def _nll(case, L, reduction):
    """``nll``: F.nll_loss on log-probs, or on torch.log(probs)."""
    kind = _kind(case, "nll")
    lp = L[kind] if kind == "log_probs" else torch.log(L[kind])
    return F.nll_loss(lp, _long(case["target"]), weight=_opt_f64(case, "weight"),
                      ignore_index=int(case.get("ignore_index", -100)), reduction=reduction)


def _bce(case, L, reduction):
    """``bce``: F.binary_cross_entropy (probs); F.binary_cross_entropy_with_logits (logits, weight only)."""
    kind = _kind(case, "bce")
    y = _f64(case["target"])
    w = _opt_f64(case, "weight")
    if kind == "probs":
        return F.binary_cross_entropy(L["probs"], y, weight=w, reduction=reduction)
    return F.binary_cross_entropy_with_logits(L["logits"], y, weight=w, reduction=reduction)


def _bce_logits(case, L, reduction):
    """``bce-logits``: F.binary_cross_entropy_with_logits(weight, pos_weight)."""
    _kind(case, "bce-logits")
    return F.binary_cross_entropy_with_logits(
        L["logits"], _f64(case["target"]), weight=_opt_f64(case, "weight"),
        pos_weight=_opt_f64(case, "pos_weight"), reduction=reduction)


def _kl(case, L, reduction):
    """``kl``: F.kl_div(log_q, target); log_q = log_probs | log(probs) | log_softmax(logits, class dim)."""
    kind = _kind(case, "kl")
    x = L[kind]
    if kind == "log_probs":
        lq = x
    elif kind == "probs":
        lq = torch.log(x)
    else:
        lq = F.log_softmax(x, dim=_class_dim(x))
    with warnings.catch_warnings():  # reduction='mean' warns that it is not 'batchmean'
        warnings.simplefilter("ignore", UserWarning)
        return F.kl_div(lq, _f64(case["target"]), reduction=reduction,
                        log_target=bool(case.get("log_target", False)))


def _focal_terms(case, L):
    kind = _kind(case, "focal")
    targets = _f64(case["target"])
    alpha = float(case.get("alpha", 0.25))
    gamma = case.get("gamma", 2)
    x = L[kind]
    if kind == "logits":
        # torchvision.ops.sigmoid_focal_loss, line by line
        p = torch.sigmoid(x)
        ce_loss = F.binary_cross_entropy_with_logits(x, targets, reduction="none")
    else:
        # probability-space variant: BCE on p, p used directly
        p = x
        ce_loss = F.binary_cross_entropy(x, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    loss = ce_loss * ((1 - p_t) ** gamma)
    if alpha >= 0:
        alpha_t = alpha * targets + (1 - alpha) * (1 - targets)
        loss = alpha_t * loss
    return loss


def _focal(case, L, reduction):
    """``focal``: torchvision.ops.sigmoid_focal_loss (alpha=0.25, gamma=2; alpha < 0 disables
    the alpha factor), re-implemented line by line; lossctl's default reduction is 'mean'.

    With ``probs``: the same lines with ``ce_loss = F.binary_cross_entropy(p, y, reduction='none')``
    and ``p`` used directly (which equals sigmoid_focal_loss(logit(p), ...)).
    """
    return _reduce(_focal_terms(case, L), reduction)


def _sce(case, L, reduction):
    """``sce``: symmetric cross entropy (Wang et al. 2019), as its reference ``SCELoss``::

        ce  = F.cross_entropy(logits, labels)                       # per sample
        p   = clamp(softmax(logits, dim=1), 1e-4, 1.0)
        oh  = clamp(one_hot(labels, C), 1e-4, 1.0)                  # log(oh) ∈ {0, log 1e-4}
        rce = -Σ_c p_c·log(oh_c)
        loss_n = alpha·ce_n + beta·rce_n ;  defaults alpha = 1, beta = 1 

    'mean' averages loss_n over samples (= alpha·CE_mean + beta·rce.mean()), 'sum' adds them, 'none' returns loss_n. Input: ``logits`` (N, C) (or (C,)
    unbatched, or (N, C, d1..dk) with the class dim 1) and class-index target.
    Clamp gradients follow torch (``clamp`` passes the gradient at the bounds, inclusive).
    """
    if "logits" not in case:
        raise ValueError("sce: --logits is required")
    x = L["logits"]
    labels = _long(case["target"])
    alpha = float(case.get("alpha", 1.0))
    beta = float(case.get("beta", 1.0))
    cdim = _class_dim(x)
    C = x.shape[cdim]
    ce = F.cross_entropy(x, labels, reduction="none")
    p = torch.clamp(F.softmax(x, dim=cdim), min=1e-4, max=1.0)
    oh = F.one_hot(labels, C).to(DTYPE)
    if x.dim() >= 2:
        oh = oh.movedim(-1, 1)
    oh = torch.clamp(oh, min=1e-4, max=1.0)
    rce = -1 * torch.sum(p * torch.log(oh), dim=cdim)
    return _reduce(alpha * ce + beta * rce, reduction)


def _zero_one(case, L, reduction):
    """``zero-one``: 0-1 loss.

    * ``logits``/``probs`` with class-index target (shape without the class dim 1, or
      dim 0 for a (C,) input): ``1[argmax_c x ≠ y]`` (torch.argmax: first maximum on ties);
    * ``pred`` with a same-shaped target: ``1[|y - a| ≥ threshold]`` when ``threshold``
      is given (the relaxed form), ``1[a ≠ y]`` otherwise.

    Reductions: mean = error rate over all elements, sum = error count, none. The
    gradient is all zeros (piecewise constant).
    """
    kind = _kind(case, "zero-one")
    x = L[kind]
    if kind == "pred":
        y = _f64(case["target"])
        thr = case.get("threshold")
        wrong = (y - x).abs() >= float(thr) if thr is not None else x != y
    else:
        y = _long(case["target"])
        wrong = x.argmax(dim=_class_dim(x)) != y
    return _reduce(wrong.to(DTYPE), reduction)


# --------------------------------------------------------------------------- regression


def _mse(case, L, r):
    """``mse``: F.mse_loss(pred, target, weight=...)."""
    return F.mse_loss(L["pred"], _f64(case["target"]), reduction=r, weight=_opt_f64(case, "weight"))


def _l1(case, L, r):
    """``l1``: F.l1_loss(pred, target, weight=...)."""
    return F.l1_loss(L["pred"], _f64(case["target"]), reduction=r, weight=_opt_f64(case, "weight"))


def _smooth_l1(case, L, r):
    """``smooth-l1``: F.smooth_l1_loss(pred, target, beta=1.0)."""
    return F.smooth_l1_loss(L["pred"], _f64(case["target"]), reduction=r, beta=float(case.get("beta", 1.0)))


def _huber(case, L, r):
    """``huber``: F.huber_loss(pred, target, delta=1.0, weight=...)."""
    return F.huber_loss(L["pred"], _f64(case["target"]), reduction=r, delta=float(case.get("delta", 1.0)),
                        weight=_opt_f64(case, "weight"))


def _poisson_nll(case, L, r):
    """``poisson-nll``: F.poisson_nll_loss(pred, target, log_input=True, full=False, eps=1e-8)."""
    return F.poisson_nll_loss(L["pred"], _f64(case["target"]), log_input=bool(case.get("log_input", True)),
                              full=bool(case.get("full", False)), eps=float(case.get("eps", 1e-8)), reduction=r)


def _gaussian_nll(case, L, r):
    """``gaussian-nll``: F.gaussian_nll_loss(pred, target, var, full=False, eps=1e-6).

    A scalar ``var`` is PyTorch's Python-float form ``var·ones_like(pred)``; its gradient
    is then the sum over the broadcast.
    """
    var = L["var"]
    if var.dim() == 0:
        var = var * torch.ones_like(L["pred"])
    return F.gaussian_nll_loss(L["pred"], _f64(case["target"]), var, full=bool(case.get("full", False)),
                               eps=float(case.get("eps", 1e-6)), reduction=r)


# --------------------------------------------------------------------------- margin


def _soft_margin(case, L, r):
    """``soft-margin``: F.soft_margin_loss(pred, target)."""
    return F.soft_margin_loss(L["pred"], _f64(case["target"]), reduction=r)


def _multilabel_soft_margin(case, L, r):
    """``multilabel-soft-margin``: F.multilabel_soft_margin_loss(logits, target, weight=...)."""
    return F.multilabel_soft_margin_loss(L["logits"], _f64(case["target"]), weight=_opt_f64(case, "weight"),
                                         reduction=r)


def _multilabel_margin(case, L, r):
    """``multilabel-margin``: F.multilabel_margin_loss(pred, target (int, -1 padded))."""
    return F.multilabel_margin_loss(L["pred"], _long(case["target"]), reduction=r)


def _multi_margin(case, L, r):
    """``multi-margin``: F.multi_margin_loss(pred, target, p=1, margin=1.0, weight=...)."""
    return F.multi_margin_loss(L["pred"], _long(case["target"]), p=int(case.get("p", 1)),
                               margin=float(case.get("margin", 1.0)), weight=_opt_f64(case, "weight"), reduction=r)


def _margin_ranking(case, L, r):
    """``margin-ranking``: F.margin_ranking_loss(x1, x2, target, margin=0)."""
    return F.margin_ranking_loss(L["x1"], L["x2"], _f64(case["target"]), margin=float(case.get("margin", 0.0)),
                                 reduction=r)


def _hinge_embedding(case, L, r):
    """``hinge-embedding``: F.hinge_embedding_loss(pred, target, margin=1.0)."""
    return F.hinge_embedding_loss(L["pred"], _f64(case["target"]), margin=float(case.get("margin", 1.0)),
                                  reduction=r)


def _hinge(case, L, r):
    """``hinge``: ``clamp_min(1 - y·a, 0)`` element-wise, y ∈ {-1, 1} with 0 mapped to -1
    (the textbook hinge ``max(0, 1 - y·a), y = ±1``).
    ``clamp_min`` passes the gradient at ``1 - y·a == 0`` (torch's convention, as in
    margin_ranking/hinge_embedding): there d/da = -y. Reductions over all elements.
    """
    y = _pm1(_f64(case["target"]))
    return _reduce(torch.clamp_min(1 - y * L["pred"], 0), r)


def _exponential(case, L, r):
    """``exponential``: ``exp(-y·a)`` element-wise, y ∈ {-1, 1} with 0 mapped to -1
    (``L(y, f(x)) = exp(-y·f(x))`` and its 1/m Σ mean form).
    """
    y = _pm1(_f64(case["target"]))
    return _reduce(torch.exp(-y * L["pred"]), r)


# --------------------------------------------------------------------------- embedding / sequence


def _cosine_embedding(case, L, r):
    """``cosine-embedding``: F.cosine_embedding_loss(x1, x2, target, margin=0)."""
    return F.cosine_embedding_loss(L["x1"], L["x2"], _f64(case["target"]), margin=float(case.get("margin", 0.0)),
                                   reduction=r)


def _triplet_margin(case, L, r):
    """``triplet-margin``: F.triplet_margin_loss(anchor, positive, negative, margin=1, p=2, eps=1e-6, swap=False)."""
    return F.triplet_margin_loss(L["anchor"], L["positive"], L["negative"], margin=float(case.get("margin", 1.0)),
                                 p=float(case.get("p", 2)), eps=float(case.get("eps", 1e-6)),
                                 swap=bool(case.get("swap", False)), reduction=r)


def _ctc(case, L, r):
    """``ctc``: F.ctc_loss(log_probs (T,N,C) or (T,C), targets, input_lengths, target_lengths,
    blank=0, zero_infinity=False); logits go through F.log_softmax over the last dim. The
    gradient w.r.t. log_probs is torch's: ``exp(lp) - occupancy``."""
    lp = L["log_probs"] if "log_probs" in L else F.log_softmax(L["logits"], dim=-1)
    il = case["input_lengths"]
    tl = case["target_lengths"]
    return F.ctc_loss(lp, _long(case["target"]), _long(il), _long(tl), blank=int(case.get("blank", 0)),
                      reduction=r, zero_infinity=bool(case.get("zero_infinity", False)))


# --------------------------------------------------------------------------- examples


def _log_softmax(x: np.ndarray, axis: int) -> np.ndarray:
    m = x.max(axis=axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


def _classes(rng, kind: str, shape=(5, 3), scale: float = 2.0) -> np.ndarray:
    """Class scores as ``kind``: logits, or their (log-)softmax along axis 1."""
    x = rng.normal(size=shape) * scale
    if kind == "logits":
        return x
    lp = _log_softmax(x, axis=1)
    return lp if kind == "log_probs" else np.exp(lp)


def _binary(rng, kind: str, shape=(4, 3)) -> np.ndarray:
    return rng.normal(size=shape) * 2 if kind == "logits" else rng.uniform(0.05, 0.95, size=shape)


def _signs(rng, shape) -> np.ndarray:
    return rng.choice([-1.0, 1.0], size=shape)


def _spread(rng, shape) -> np.ndarray:
    """Scores whose pairwise differences stay >= 1/64 away from the integers: no margin term
    ``1 - a_y + a_i`` sits at its kink."""
    return rng.integers(-24, 24, size=shape) / 8 + rng.uniform(1 / 64, 3 / 64, size=shape)


def _ex_ce(rng, kind):
    target = rng.integers(0, 3, size=5)
    target[1] = -100
    return {kind: _classes(rng, kind), "target": target, "weight": rng.uniform(0.5, 2.0, size=3),
            "label_smoothing": 0.1}


def _ex_nll(rng, kind):
    target = rng.integers(0, 3, size=5)
    target[2] = -100
    return {kind: _classes(rng, kind), "target": target, "weight": rng.uniform(0.5, 2.0, size=3)}


def _ex_bce(rng, kind):
    return {kind: _binary(rng, kind), "target": rng.uniform(0, 1, size=(4, 3)), "weight": rng.uniform(0.5, 2.0, size=3)}


def _ex_bce_logits(rng, kind):
    return {kind: _binary(rng, kind), "target": rng.uniform(0, 1, size=(4, 3)), "weight": rng.uniform(0.5, 2.0, size=3),
            "pos_weight": rng.uniform(0.5, 3.0, size=3)}


def _ex_kl(rng, kind):
    return {kind: _classes(rng, kind, (4, 3)), "target": np.exp(_log_softmax(rng.normal(size=(4, 3)), axis=1))}


def _ex_regression(**params):
    def example(rng, kind):
        call = {kind: rng.normal(size=(4, 3)) * 1.5, "target": rng.normal(size=(4, 3)), **params}
        if call.get("weight") == "w":
            call["weight"] = rng.uniform(0.1, 2.0, size=(4, 3))
        return call

    return example


def _ex_poisson_nll(rng, kind):
    return {kind: rng.normal(size=(4, 3)), "target": np.abs(rng.normal(size=(4, 3))) * 3, "full": True}


def _ex_gaussian_nll(rng, kind):
    return {kind: rng.normal(size=(4, 3)), "target": rng.normal(size=(4, 3)), "var": rng.uniform(0.2, 2.0, size=(4, 3))}


def _ex_pm1(scale: float = 1.5, **params):
    def example(rng, kind):
        return {kind: rng.normal(size=(4, 3)) * scale, "target": _signs(rng, (4, 3)), **params}

    return example


def _ex_multilabel_soft_margin(rng, kind):
    return {kind: rng.normal(size=(4, 3)) * 2, "target": rng.integers(0, 2, size=(4, 3)).astype(float),
            "weight": rng.uniform(0.2, 2.0, size=3)}


def _ex_multilabel_margin(rng, kind):
    n, c = 4, 5
    target = np.full((n, c), -1)
    for row in range(n):
        k = int(rng.integers(1, c))
        target[row, :k] = rng.choice(c, size=k, replace=False)
        target[row, k + 1:] = rng.integers(-1, c, size=c - k - 1)  # after the -1: ignored
    return {kind: _spread(rng, (n, c)), "target": target}


def _ex_multi_margin(rng, kind):
    return {kind: _spread(rng, (5, 4)), "target": rng.integers(0, 4, size=5), "p": 2,
            "weight": rng.uniform(0.2, 3.0, size=4)}


def _ex_margin_ranking(rng, kind):
    return {kind: rng.normal(size=6), "x2": rng.normal(size=6), "target": _signs(rng, 6), "margin": 0.3}


def _ex_hinge_embedding(rng, kind):
    return {kind: rng.uniform(-1, 2, size=(4, 3)), "target": _signs(rng, (4, 3)), "margin": 1.5}


def _ex_cosine_embedding(rng, kind):
    return {kind: rng.normal(size=(5, 3)), "x2": rng.normal(size=(5, 3)), "target": _signs(rng, 5), "margin": -0.2}


def _ex_triplet_margin(rng, kind):
    return {kind: rng.normal(size=(4, 3)), "positive": rng.normal(size=(4, 3)), "negative": rng.normal(size=(4, 3)),
            "margin": 2.0}


def _ex_ctc(rng, kind):
    x = rng.normal(size=(6, 3, 4))
    return {kind: x if kind == "logits" else _log_softmax(x, axis=-1), "target": rng.integers(1, 4, size=(3, 2)),
            "input_lengths": [6, 5, 6], "target_lengths": [2, 1, 2]}


def _ex_focal(rng, kind):
    return {kind: _binary(rng, kind), "target": rng.uniform(0, 1, size=(4, 3)).round(1), "alpha": 0.3, "gamma": 1.5}


def _ex_sce(rng, kind):
    return {kind: rng.normal(size=(4, 5)) * 2, "target": rng.integers(0, 5, size=4), "alpha": 0.7, "beta": 1.3}


def _ex_zero_one(rng, kind):
    if kind == "pred":  # |y - a| is a multiple of 0.1: never at the threshold
        return {kind: rng.normal(size=6).round(1), "target": rng.normal(size=6).round(1), "threshold": 0.55}
    return {kind: _classes(rng, kind), "target": rng.integers(0, 3, size=5)}


# --------------------------------------------------------------------------- the oracle table


@dataclass(frozen=True)
class Oracle:
    """One loss's entry: its torch definition, its example call, the common checks it opts out of."""

    torch: Callable[[dict, dict, str], Any]
    example: Callable[[np.random.Generator, str], dict]
    opt_out: Mapping[str, str] = field(default_factory=dict)


_CTC_LOG_PROBS = ("torch's CTC gradient w.r.t. log_probs is exp(lp) - occupancy, which is the derivative only "
                  "after a log_softmax; lossctl copies it (checked against torch by the fixtures)")

ORACLES: dict[str, Oracle] = {
    "ce": Oracle(_ce, _ex_ce),
    "nll": Oracle(_nll, _ex_nll),
    "bce": Oracle(_bce, _ex_bce),
    "bce-logits": Oracle(_bce_logits, _ex_bce_logits),
    "kl": Oracle(_kl, _ex_kl),
    "mse": Oracle(_mse, _ex_regression(weight="w")),
    "l1": Oracle(_l1, _ex_regression(weight="w")),
    "smooth-l1": Oracle(_smooth_l1, _ex_regression(beta=0.7)),
    "huber": Oracle(_huber, _ex_regression(delta=0.8, weight="w")),
    "poisson-nll": Oracle(_poisson_nll, _ex_poisson_nll),
    "gaussian-nll": Oracle(_gaussian_nll, _ex_gaussian_nll),
    "soft-margin": Oracle(_soft_margin, _ex_pm1()),
    "multilabel-soft-margin": Oracle(_multilabel_soft_margin, _ex_multilabel_soft_margin),
    "multilabel-margin": Oracle(_multilabel_margin, _ex_multilabel_margin),
    "multi-margin": Oracle(_multi_margin, _ex_multi_margin),
    "margin-ranking": Oracle(_margin_ranking, _ex_margin_ranking),
    "hinge-embedding": Oracle(_hinge_embedding, _ex_hinge_embedding),
    "cosine-embedding": Oracle(_cosine_embedding, _ex_cosine_embedding),
    "triplet-margin": Oracle(_triplet_margin, _ex_triplet_margin),
    "ctc": Oracle(_ctc, _ex_ctc, opt_out={
        "central_differences/log_probs": _CTC_LOG_PROBS,
        "mean_is_sum_over_denominator": "'mean' divides each loss by its clamped target length before averaging "
                                        "(Forward.mean_divisor), so it is not sum / denominator",
        "permutation": "samples lie along axis 1 of (T, N, C) while the targets and lengths lie along axis 0; "
                       "the check permutes what the streaming engine splits, and it does not split CTC",
    }),
    "focal": Oracle(_focal, _ex_focal),
    "sce": Oracle(_sce, _ex_sce),
    "hinge": Oracle(_hinge, _ex_pm1()),
    "exponential": Oracle(_exponential, _ex_pm1(scale=1.0)),
    "zero-one": Oracle(_zero_one, _ex_zero_one),
}

# --------------------------------------------------------------------------- losses torch lacks
# Their oracle is their home framework (Keras, optax, scikit-learn): tests/framework_oracles.py,
# tests/test_framework_fixtures.py and tests/test_framework_live.py. Here they only give the
# common checks an example call (their first framework case for the kind, in float64).


def _not_torch(name: str):
    def torch_definition(case, leaves, reduction):
        raise NotImplementedError(f"{name} is not a PyTorch loss: its oracle is its home framework "
                                  "(tests/framework_oracles.py)")
    torch_definition.not_torch = True
    return torch_definition


def _framework_example(name: str):
    def example(rng, kind):
        from framework_oracles import CASES

        for case in CASES[name]:
            if kind in case and not {"reduction", "sample_weight"} & set(case):
                return {**{k: v for k, v in case.items() if k != "dtype"}, "dtype": "float64"}
        raise KeyError(f"{name}: no framework case with {kind}")
    return example


_NO_GRADIENT = "scikit-learn's metrics have no gradient: its convention refuses --grad and computes none"
_MEAN_ONLY = "scikit-learn's regression metrics have no sum (normalize) option: mean and none only"
_SKLEARN_OPT_OUT = {"central_differences": _NO_GRADIENT, "shapes": _NO_GRADIENT, "cli": _NO_GRADIENT}
_SKLEARN_MEAN_ONLY = {**_SKLEARN_OPT_OUT, "reductions": _MEAN_ONLY, "mean_is_sum_over_denominator": _MEAN_ONLY}
_GLOBAL = "Keras's Dice/Tversky (axis=None) give one value for the whole batch: no per-sample values to permute"
_OPTAX_LOGITS = {f"{check}/logits": "logits are optax's dice_loss input; the default (Keras) takes probabilities "
                                    "(optax is checked by tests/test_framework_fixtures.py)"
                 for check in ("central_differences", "reductions", "mean_is_sum_over_denominator", "explain", "shapes",
                               "float32", "permutation", "streaming", "cli")}
_CLIP_BY_DTYPE = "scikit-learn clips at the dtype's machine epsilon: p = 0 costs 36.04 in float64, 15.94 in float32"
_FRAMEWORK_LOSSES = {
    "log-cosh": {}, "mape": {}, "msle": {}, "squared-hinge": {}, "categorical-hinge": {}, "multiclass-hinge": {},
    "perceptron": {}, "cosine-similarity": {}, "categorical-focal": {}, "poly1": {}, "generalized-kl": {},
    "sparsemax": {}, "multiclass-perceptron": {}, "multiclass-sparsemax": {},
    "dice": {"permutation": _GLOBAL, "streaming": _GLOBAL, **_OPTAX_LOGITS},
    "tversky": {"permutation": _GLOBAL, "streaming": _GLOBAL, **_OPTAX_LOGITS},
    "pinball": _SKLEARN_MEAN_ONLY, "poisson-deviance": _SKLEARN_MEAN_ONLY, "tweedie-deviance": _SKLEARN_MEAN_ONLY,
    "brier": _SKLEARN_MEAN_ONLY, "log-loss": {**_SKLEARN_OPT_OUT, "float32": _CLIP_BY_DTYPE},
}
ORACLES.update({name: Oracle(_not_torch(name), _framework_example(name), opt_out)
                for name, opt_out in _FRAMEWORK_LOSSES.items()})


#: loss name -> its torch definition (the ``torch`` column of :data:`ORACLES`).
REFERENCES: dict[str, Callable[[dict, dict, str], Any]] = {name: o.torch for name, o in ORACLES.items()}


# --------------------------------------------------------------------------- driver


def _leaves(case: dict, requires_grad: bool) -> dict[str, Any]:
    return {k: _f64(case[k]).requires_grad_(requires_grad) for k in differentiable_inputs(case["loss"]) if k in case}


def reference_tensors(case: dict) -> dict[str, Any]:
    """Like :func:`reference` but returns tensors (loss, per_sample, grad dict)."""
    load_torch()
    fn = ORACLES[case["loss"]].torch
    reduction = case.get("reduction", "mean")
    leaves = _leaves(case, True)
    out = fn(case, leaves, reduction)
    names = list(leaves)
    scalar = out if out.dim() == 0 else out.sum()
    grad: dict[str, torch.Tensor] = {}
    if scalar.requires_grad:
        gs = torch.autograd.grad(scalar, [leaves[n] for n in names], allow_unused=True)
    else:  # zero-one: piecewise constant, no graph
        gs = [None] * len(names)
    for n, g in zip(names, gs):
        grad[n] = torch.zeros_like(leaves[n]) if g is None else g
    with torch.no_grad():
        per_sample = fn(case, _leaves(case, False), "none")
    return {"loss": out.detach(), "per_sample": per_sample.detach(), "grad": {k: v.detach() for k, v in grad.items()}}


def _num(v: float) -> float | str:
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return float(v)


def to_jsonable(t: torch.Tensor | np.ndarray | float) -> Any:
    """Tensor → float / nested list of floats, non-finite numbers as "nan", "inf", "-inf"."""
    if isinstance(t, torch.Tensor):
        t = t.detach().cpu().numpy()
    a = np.asarray(t, dtype=np.float64)

    def rec(x):
        if isinstance(x, list):
            return [rec(e) for e in x]
        return _num(x)

    return rec(a.tolist())


def reference(case: dict) -> dict[str, Any]:
    """Compute ``{"loss", "per_sample", "grad"}`` for a case dict (JSON-ready values)."""
    r = reference_tensors(case)
    return {
        "loss": to_jsonable(r["loss"]),
        "per_sample": to_jsonable(r["per_sample"]),
        "grad": {k: to_jsonable(v) for k, v in r["grad"].items()},
    }
