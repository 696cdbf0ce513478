"""Every registered loss. A family module exports ``SPECS``; this tuple is the registry."""

from __future__ import annotations

from . import binary, cross_entropy, divergence, embedding, margin, regression, seeded, sequence

ALL_SPECS = cross_entropy.SPECS + binary.SPECS + divergence.SPECS + regression.SPECS + margin.SPECS + seeded.SPECS + embedding.SPECS + sequence.SPECS
