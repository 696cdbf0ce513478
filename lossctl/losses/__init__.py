"""Every registered loss. A family module exports ``SPECS``; :func:`registry` holds them all.

The family modules are imported on first use: :func:`find` (a call naming one loss) imports
them in registry order only until one declares the name, so ``lossctl ce ...`` compiles and runs
the cross-entropy family alone; :func:`registry`, ``ALL_SPECS`` and ``FAMILIES`` import them all.
"""

from __future__ import annotations

import importlib

from ..core.call import RESERVED_NAMES
from ..core.registry import LossSpec, Registry

# The family modules, in the order ALL_SPECS lists their SPECS.
_FAMILY_MODULES = ("cross_entropy", "binary", "divergence", "regression", "margin", "embedding", "sequence",
                   "error_measures", "hinges", "overlap", "probabilistic")

_REGISTRY: Registry | None = None


def _all_specs() -> tuple:
    from . import (binary, cross_entropy, divergence, embedding, error_measures, hinges, margin, overlap,
                   probabilistic, regression, sequence)

    # Family by family; focal, sce and zero-one follow the margin losses (the order of `lossctl list`).
    return (cross_entropy.SPECS + binary.SPECS + divergence.SPECS + regression.SPECS + margin.SPECS
            + (binary.FOCAL, cross_entropy.SCE, margin.ZERO_ONE) + embedding.SPECS + sequence.SPECS
            # the losses PyTorch lacks, each defaulting to its home framework's convention
            + error_measures.SPECS + hinges.SPECS + overlap.SPECS + probabilistic.SPECS)


def _families() -> tuple:
    from . import (binary, cross_entropy, divergence, embedding, error_measures, hinges, margin, overlap,
                   probabilistic, regression, sequence)

    # The families the top-level help lists the losses in (every loss in exactly one; tests check it).
    return (
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


def __getattr__(name: str):
    # ALL_SPECS and FAMILIES are built (importing every family) when first asked for.
    if name == "ALL_SPECS":
        value = _all_specs()
    elif name == "FAMILIES":
        value = _families()
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def families() -> list[tuple[str, list[str]]]:
    """[(family, loss names)] in the order the top-level help lists them."""
    return [(title, [s.name for s in specs]) for title, specs in __getattr__("FAMILIES")]


def registry() -> Registry:
    """The registry of every loss (built on first use)."""
    global _REGISTRY
    if _REGISTRY is None:
        _REGISTRY = Registry(ALL_SPECS if "ALL_SPECS" in globals() else __getattr__("ALL_SPECS"), reserved=RESERVED_NAMES)
    return _REGISTRY


def find(name: str) -> LossSpec | None:
    """``registry().find(name)``, importing only the families up to the one that declares ``name``.

    Names are unique across the registry (it refuses a second one), so the first family declaring
    ``name`` holds the registry's answer; an unknown name builds the whole registry."""
    if _REGISTRY is None:
        for module in _FAMILY_MODULES:
            family = importlib.import_module(f".{module}", __name__)
            for spec in vars(family).values():
                if isinstance(spec, LossSpec) and (spec.name == name or name in spec.aliases):
                    return spec
    return registry().find(name)


def get(name: str) -> LossSpec:
    """``registry().get(name)`` (a usage error naming the closest loss when unknown), as :func:`find` loads."""
    if _REGISTRY is not None:
        return _REGISTRY.get(name)
    return find(name) or registry().get(name)
