"""L1 / L2 penalties on model parameters, added to any loss (weight decay and lasso).

    objective = data loss + 0.5·α·Σ w²  (l2 = α)  + β·Σ |w|  (l1 = β)

Parameters come as named arrays (an ``.npz`` of several, or one array named
``params``). As is usual for weight decay (biases are not penalised), arrays whose name
contains ``exclude`` (default ``"bias"``) get no penalty. Gradients:
∂/∂w = α·w + β·sign(w), with sign(0) = 0 as ``torch.abs``'s backward.
Pure NumPy; the sums accumulate in float64.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

DEFAULT_EXCLUDE = "bias"


@dataclass
class Penalties:
    terms: dict[str, float] = field(default_factory=dict)  # "l2", "l1" → value
    grads: dict[str, np.ndarray] = field(default_factory=dict)  # parameter name → ∂penalty/∂w
    penalised: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def total(self) -> float:
        return float(sum(self.terms.values()))


def penalties(params: Mapping[str, np.ndarray], *, l1: float | None = None, l2: float | None = None,
              exclude: str | None = DEFAULT_EXCLUDE) -> Penalties:
    out = Penalties()
    for name, w in params.items():
        if exclude and exclude in name:
            out.skipped.append(name)
        else:
            out.penalised.append(name)
    chosen = [np.asarray(params[n], dtype=np.float64) for n in out.penalised]
    if l2 is not None:
        out.terms["l2"] = 0.5 * l2 * float(sum(np.sum(w * w) for w in chosen))
    if l1 is not None:
        out.terms["l1"] = l1 * float(sum(np.sum(np.abs(w)) for w in chosen))
    for name, w in zip(out.penalised, chosen):
        g = np.zeros_like(w)
        if l2 is not None:
            g = g + l2 * w
        if l1 is not None:
            g = g + l1 * np.sign(w)
        out.grads[name] = g
    for name in out.skipped:
        out.grads[name] = np.zeros_like(np.asarray(params[name], dtype=np.float64))
    return out
