"""Every registered loss. A family module exports ``SPECS``; this tuple is the registry."""

from __future__ import annotations

from . import binary, cross_entropy, divergence, regression, seeded

ALL_SPECS = cross_entropy.SPECS + binary.SPECS + divergence.SPECS + regression.SPECS + seeded.SPECS
