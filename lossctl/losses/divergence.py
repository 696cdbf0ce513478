"""Kullback–Leibler divergence, as ``torch.nn.functional.kl_div``."""

from __future__ import annotations

import numpy as np

from ..core.conversions import LOGITS_TO_LOG_PROBS, PROBS_TO_LOG_PROBS
from ..core.numerics import sum_to_shape, xlogy
from ..core.registry import LOG_TARGET, Forward, LossSpec, Step
from .ported import KL_CONVENTIONS


def kl_forward(x: dict, params: dict) -> Forward:
    """Pointwise KL(t ‖ q) terms with input x = log q:
        log_target False:  l = xlogy(t, t) − t·x   (0·log 0 = 0)
        log_target True:   l = exp(t)·(t − x)
    'mean' divides by the number of elements, 'batchmean' by the batch size.
    """
    lq, t = x["log_probs"], x["target"]
    with np.errstate(invalid="ignore", over="ignore"):
        if params.get("log_target", False):
            values = np.exp(t) * (t - lq)
        else:
            values = xlogy(t, t) - t * lq
    return Forward(values)


def kl_backward(x: dict, params: dict, upstream: float) -> dict:
    """∂l/∂x = −t (log_target False) or −exp(t) (True)."""
    lq, t = x["log_probs"], x["target"]
    coef = np.exp(t) if params.get("log_target", False) else t
    g = np.broadcast_to(-coef * upstream, np.broadcast_shapes(lq.shape, t.shape))
    return {"log_probs": np.asarray(sum_to_shape(g, lq.shape), dtype=lq.dtype)}


def kl_steps(x: dict, params: dict) -> list[Step]:
    lq, t = np.broadcast_arrays(x["log_probs"], x["target"])
    if params.get("log_target", False):
        return [
            Step("input log-probability", "x = log q", lq),
            Step("target log-probability", "t = log p", t),
            Step("target probability", "exp(t)", np.exp(t)),
            Step("loss", "exp(t)·(t − x)", kl_forward(x, params).values),
        ]
    return [
        Step("input log-probability", "x = log q", lq),
        Step("target probability", "t = p", t),
        Step("t·log t", "xlogy(t, t)  (0·log 0 = 0)", xlogy(t, t)),
        Step("t·x", "t·log q", t * lq),
        Step("loss", "t·log t − t·x", kl_forward(x, params).values),
    ]


KL = LossSpec(
    name="kl",
    aliases=("kl-div", "kl-divergence"),
    mirrors="torch.nn.functional.kl_div",
    summary="Kullback–Leibler divergence KL(target ‖ input), input as log-probabilities.",
    formula="l = t·(log t − x) with 0·log 0 = 0; 'batchmean' is the true KL per sample",
    kinds={"log_probs": None, "probs": PROBS_TO_LOG_PROBS, "logits": LOGITS_TO_LOG_PROBS},
    params=(LOG_TARGET,),
    target="broadcast",
    reductions=("mean", "batchmean", "sum", "none"),
    forward=kl_forward,
    backward=kl_backward,
    steps=kl_steps,
    notes="reduction 'mean' divides by the number of elements (torch warns); 'batchmean' is the KL divergence.",
    conventions=KL_CONVENTIONS,
)

SPECS = (KL,)
