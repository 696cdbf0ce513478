"""Every registered loss. A family module exports ``SPECS``; this tuple is the registry."""

from __future__ import annotations

from . import binary, cross_entropy, divergence, embedding, error_measures, hinges, margin, overlap, probabilistic, regression, seeded, sequence

ALL_SPECS = (cross_entropy.SPECS + binary.SPECS + divergence.SPECS + regression.SPECS + margin.SPECS + seeded.SPECS + embedding.SPECS + sequence.SPECS
             + error_measures.SPECS + hinges.SPECS + overlap.SPECS + probabilistic.SPECS)
