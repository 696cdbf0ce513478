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

# The families the top-level help lists the losses in (every loss in exactly one; tests check it).
FAMILIES = (
    ("classification", cross_entropy.SPECS + (cross_entropy.SCE,) + binary.SPECS + (binary.FOCAL,)),
    ("divergence", divergence.SPECS),
    ("regression", regression.SPECS),
    ("margin and ranking", margin.SPECS + (margin.ZERO_ONE,)),
    ("embedding", embedding.SPECS),
    ("sequence", sequence.SPECS),
    ("regression, from Keras and scikit-learn", error_measures.SPECS),
    ("hinge, from Keras and optax", hinges.SPECS),
    ("overlap and angle", overlap.SPECS),
    ("probability, from Keras, optax and scikit-learn", probabilistic.SPECS),
)

_REGISTRY: Registry | None = None


def families() -> list[tuple[str, list[str]]]:
    """[(family, loss names)] in the order the top-level help lists them."""
    return [(title, [s.name for s in specs]) for title, specs in FAMILIES]


def registry() -> Registry:
    """The registry of every loss (built on first use)."""
    global _REGISTRY
    if _REGISTRY is None:
        _REGISTRY = Registry(ALL_SPECS, reserved=RESERVED_NAMES)
    return _REGISTRY
