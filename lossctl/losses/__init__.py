"""Every registered loss. A family module exports ``SPECS``; :func:`registry` holds them all."""

from __future__ import annotations

from ..core.call import RESERVED_NAMES
from ..core.registry import Registry
from . import (binary, cross_entropy, divergence, embedding, error_measures, hinges, margin, overlap, probabilistic,
               regression, sequence)

# Family by family; focal, sce and zero-one follow the margin losses (the order of `lossctl list`).
ALL_SPECS = (cross_entropy.SPECS + binary.SPECS + divergence.SPECS + regression.SPECS + margin.SPECS
             + (binary.FOCAL, cross_entropy.SCE, margin.ZERO_ONE) + embedding.SPECS + sequence.SPECS
             # the losses PyTorch lacks, each defaulting to its home framework's convention
             + error_measures.SPECS + hinges.SPECS + overlap.SPECS + probabilistic.SPECS)

_REGISTRY: Registry | None = None


def registry() -> Registry:
    """The registry of every loss (built on first use)."""
    global _REGISTRY
    if _REGISTRY is None:
        _REGISTRY = Registry(ALL_SPECS, reserved=RESERVED_NAMES)
    return _REGISTRY
