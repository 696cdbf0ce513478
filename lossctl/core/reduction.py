"""The only implementation of PyTorch's reductions.

``mean`` divides by the sum of the forward's denominator weights (the count
of values when it has none: torch's ``numel``; ``Σ w[y]`` over non-ignored
targets for weighted CE/NLL); ``batchmean`` divides by the batch size
(``input.size(0)``; no division for a 0-d input); ``sum`` and ``none`` by 1.
Division by zero follows IEEE and PyTorch: a mean over nothing is NaN.

Sums are exact (:mod:`lossctl.core.exactsum`): ``Σ values`` and ``Σ weights`` are each the
correctly rounded float64 sum of their terms, so a reduction does not depend on the
order of the values or on how they were cut into blocks; ``mean`` is then one correctly
rounded division of those two sums (in the compute dtype).
"""

from __future__ import annotations

import numpy as np

from .exactsum import exact_sum


def denominator(reduction: str, values: np.ndarray, weights: np.ndarray | None, batch_size: int | None) -> float:
    """What the reduced loss divides the sum by."""
    if reduction == "mean":
        return float(values.size) if weights is None else exact_sum(weights)
    if reduction == "batchmean":
        return float(batch_size) if batch_size is not None else 1.0
    return 1.0


def upstream(denom: float) -> float:
    """The scalar gradient of the reduced loss with respect to Σ values: 1/D (inf when D = 0)."""
    with np.errstate(divide="ignore"):
        return float(np.float64(1.0) / np.float64(denom))


def reduce(reduction: str, values: np.ndarray, denom: float):
    """Apply a reduction: a scalar for mean/sum/batchmean, the values themselves for none."""
    if reduction == "none":
        return values
    # The exact sum rounded to float64, also for float32 values (then cast to float32), as the
    # streaming engine gives it over its blocks: the same number either way.
    total = values.dtype.type(exact_sum(values))
    if reduction == "sum":
        return total
    with np.errstate(divide="ignore", invalid="ignore"):
        return total / values.dtype.type(denom)
