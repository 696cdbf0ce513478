"""Information measures of discrete distributions: entropy, cross-entropy, KL, Jensen–Shannon.

Pure NumPy, float64, no I/O. The class (outcome) dimension is the last one
(``dim`` moves another one there); every other dimension indexes rows, which
are flattened in C order. For each row::

    H(P)    = −Σ p·log p                  entropy
    H(P,Q)  = −Σ p·log q                  cross-entropy
    KL(P‖Q) =  Σ (p·log p − p·log q)      relative entropy, as F.kl_div(log q, p) sums it
    JS(P,Q) =  ½·KL(P‖M) + ½·KL(Q‖M),  M = (P + Q)/2

with the conventions of ``torch.xlogy``: 0·log 0 = 0 and 0·log q = 0, so
KL(P‖Q) = inf exactly where some q = 0 < p, and JS (whose M is positive
wherever P or Q is) is always finite, in [0, log 2]. The identity
H(P,Q) = H(P) + KL(P‖Q) holds term by term; :func:`information` checks it
per row and reports the largest absolute residual.

Distributions given as logits are turned into log-probabilities by a stable
log-softmax; every ``p·log q`` then uses ``log q`` directly, so a probability
that underflows to 0 in ``exp`` still gives a finite cross-entropy.

Values are in nats for ``base="e"``, bits for ``base=2`` and hartleys for
``base=10`` (the nat value divided by ``ln base``).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InputError, InputWarning, UsageError, ref
from .numerics import log_softmax, softplus, xlogy

__all__ = [
    "MEASURES",
    "BASES",
    "Distribution",
    "InfoResult",
    "distribution",
    "information",
    "self_information",
    "parse_base",
]

#: (key, label) of each measure, in output order. Keys are the ``lossctl check`` names.
MEASURES: tuple[tuple[str, str], ...] = (
    ("h_p", "H(P)"),
    ("h_q", "H(Q)"),
    ("h_pq", "H(P,Q)"),
    ("kl_pq", "KL(P‖Q)"),
    ("kl_qp", "KL(Q‖P)"),
    ("js", "JS(P,Q)"),
)
LABELS = dict(MEASURES)

#: base name -> (ln base, unit)
BASES: dict[str, tuple[float, str]] = {
    "e": (1.0, "nats"),
    "2": (math.log(2.0), "bits"),
    "10": (math.log(10.0), "hartleys"),
}

#: Default tolerance on |Σp − 1| before a row is reported as not normalised.
DEFAULT_SUM_TOL = 1e-6
#: JS values within this of 0 or ln 2 but outside [0, ln 2] are rounding, and snapped to the bound.
JS_SNAP = 1e-12
_LN2 = math.log(2.0)
#: H(P,Q) = H(P) + KL(P‖Q) holds when |residual| ≤ IDENTITY_RTOL·(1 + |H(P)| + |KL(P‖Q)| + |H(P,Q)|).
IDENTITY_RTOL = 1e-12


def parse_base(base: Any) -> str:
    """``"e"``, ``"2"`` or ``"10"`` from what a user or a suite gives (``2``, ``"2"``, ``"e"``, ``10.0``)."""
    text = str(base).strip().lower()
    if text in ("2.0", "10.0"):
        text = text[:-2]
    if text in ("nat", "nats"):
        text = "e"
    if text in ("bit", "bits"):
        text = "2"
    if text not in BASES:
        raise UsageError(f"{ref('base')}: expected 2, e or 10, got {base!r}")
    return text


# --------------------------------------------------------------------------- distributions


@dataclass(frozen=True)
class Distribution:
    """Rows of a discrete distribution: ``p`` of shape (rows, classes) and, for logits, ``log_p``.

    ``log_p`` is None for probabilities given as such (``xlogy`` takes their log);
    for logits it is the log-softmax, used instead of ``log(exp(...))``.
    """

    p: np.ndarray
    log_p: np.ndarray | None
    batch_shape: tuple[int, ...]
    origin: str
    shape: tuple[int, ...] = ()  # as given, before the class dimension was moved last

    @property
    def rows(self) -> int:
        return self.p.shape[0]

    @property
    def classes(self) -> int:
        return self.p.shape[1]

    def log(self) -> np.ndarray:
        if self.log_p is not None:
            return self.log_p
        with np.errstate(divide="ignore"):
            return np.log(self.p)


def distribution(probs: Any = None, *, logits: Any = None, dim: int = -1, origin: str | None = None,
                 sum_tol: float = DEFAULT_SUM_TOL, normalize: bool = False) -> Distribution:
    """Validate probabilities (or convert logits) into a :class:`Distribution`.

    Probabilities must lie in [0, 1] (:class:`InputError` otherwise); a row
    whose sum is off 1 by more than ``sum_tol`` gives an :class:`InputWarning`
    and is used as given, or divided by its sum with ``normalize``. Logits may
    be -inf (probability 0) but not NaN or +inf, and a row needs one finite logit.
    ``origin`` names the input in messages (``--p file.csv``).
    """
    if (probs is None) == (logits is None):
        raise UsageError("give exactly one of probs and logits")
    from_logits = logits is not None
    origin = origin or ("logits" if from_logits else "probs")
    a = _as_float64(logits if from_logits else probs, origin)
    shape = a.shape
    if a.ndim == 0:
        raise InputError(f"{origin}: expected a distribution over classes (at least one dimension), got a single number")
    if not -a.ndim <= dim < a.ndim:
        raise InputError(f"{origin}: {ref('dim')} {dim} is out of range for an input with {a.ndim} dimension{'s' if a.ndim != 1 else ''}")
    a = np.moveaxis(a, dim, -1)
    if a.shape[-1] == 0:
        raise InputError(f"{origin}: the class dimension is empty (shape {_shape(a.shape)})")
    if a.size == 0:
        raise InputError(f"{origin}: no rows (shape {_shape(a.shape)})")
    batch_shape = a.shape[:-1]
    flat = np.ascontiguousarray(a.reshape(-1, a.shape[-1]))
    if from_logits:
        _check_logits(a, flat, batch_shape, origin)
        log_p = log_softmax(flat, axis=-1)
        return Distribution(np.exp(log_p), log_p, batch_shape, origin, shape)
    _check_probs(a, origin)
    sums = np.sum(flat, axis=-1)
    off = np.abs(sums - 1.0) > sum_tol
    if normalize:
        if np.any(sums == 0):
            i = int(np.argmax(sums == 0))
            raise InputError(f"{origin}: {_row(i, batch_shape)}sums to 0 and cannot be normalised")
        if np.any(off):
            flat = flat / sums[:, None]
    elif np.any(off):
        i = int(np.argmax(off))
        n = int(np.count_nonzero(off))
        more = f"and {n - 1} more row{'s' if n > 2 else ''}; " if n > 1 else ""
        problem = f"{origin}: {_row(i, batch_shape)}sums to {float(sums[i])!r}, not 1 ({more}tolerance {sum_tol:g})"
        warnings.warn(InputWarning(f"{problem}; computed as given ({ref('normalize')} divides each row by its sum)",
                                   problem=problem), stacklevel=2)
    return Distribution(flat, None, batch_shape, origin, shape)


def _as_float64(value: Any, origin: str) -> np.ndarray:
    a = np.asarray(value)
    if a.dtype.kind not in "biuf":
        raise InputError(f"{origin}: expected numbers, got {a.dtype} values")
    return a.astype(np.float64, copy=False)


def _check_probs(a: np.ndarray, origin: str) -> None:
    bad = ~((a >= 0.0) & (a <= 1.0))  # NaN is bad too
    if np.any(bad):
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise InputError(f"{origin}: probabilities must be in [0, 1]; found {float(a[idx])!r} at {_index(idx)}")


def _check_logits(a: np.ndarray, flat: np.ndarray, batch_shape: tuple[int, ...], origin: str) -> None:
    bad = np.isnan(a) | (a == np.inf)
    if np.any(bad):
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise InputError(f"{origin}: logits must be finite or -inf; found {float(a[idx])!r} at {_index(idx)}")
    empty = np.all(flat == -np.inf, axis=-1)
    if np.any(empty):
        i = int(np.argmax(empty))
        raise InputError(f"{origin}: {_row(i, batch_shape)}has no finite logit (every class has probability 0)")


def _index(idx: tuple[int, ...]) -> str:
    return f"index {idx[0]}" if len(idx) == 1 else f"index ({', '.join(map(str, idx))})"


def _row(i: int, batch_shape: tuple[int, ...]) -> str:
    """'row 3 ' / 'row (1, 2) ' / '' (a single distribution) for flattened row ``i``."""
    if not batch_shape:
        return "the distribution "
    if len(batch_shape) == 1:
        return f"row {i} "
    return f"row ({', '.join(str(int(j)) for j in np.unravel_index(i, batch_shape))}) "


def _shape(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


# --------------------------------------------------------------------------- the measures


@dataclass
class InfoResult:
    """Per-row measures (each an array of shape (rows,)) and their means over rows, in ``base``.

    ``per_row`` and ``mean`` are keyed by label (``"H(P)"``, ``"KL(P‖Q)"``, ...) in
    :data:`MEASURES` order; only H(P) when there is no Q. ``residual`` is
    H(P,Q) − (H(P) + KL(P‖Q)) per row (0 where both sides are inf).
    """

    base: str
    rows: int
    batch_shape: tuple[int, ...]
    per_row: dict[str, np.ndarray]
    mean: dict[str, float]
    residual: np.ndarray | None = None
    max_abs_residual: float | None = None
    identity_holds: bool | None = None
    worst_row: int | None = None
    classes: int = 0
    sources: dict[str, str] = field(default_factory=dict)

    @property
    def unit(self) -> str:
        return BASES[self.base][1]

    def by_key(self) -> dict[str, float]:
        """The means keyed ``h_p``, ``h_q``, ``h_pq``, ``kl_pq``, ``kl_qp``, ``js`` (suite names)."""
        return {key: self.mean[label] for key, label in MEASURES if label in self.mean}


def information(p: Any, q: Any = None, *, base: Any = "e", dim: int = -1) -> InfoResult:
    """H(P) and, with ``q``, H(Q), H(P,Q), KL(P‖Q), KL(Q‖P) and JS(P,Q), per row and averaged.

    ``p`` and ``q`` are :class:`Distribution` objects (see :func:`distribution`,
    which also takes logits) or array-likes of probabilities (validated with
    the default tolerance). ``base``: ``"e"`` (nats), ``2`` (bits) or ``10``.

        >>> information([0.5, 0.5], base=2).mean["H(P)"]
        1.0
    """
    base = parse_base(base)
    P = p if isinstance(p, Distribution) else distribution(p, dim=dim, origin="p")
    Q = None if q is None else (q if isinstance(q, Distribution) else distribution(q, dim=dim, origin="q"))
    if Q is not None and (P.batch_shape, P.classes) != (Q.batch_shape, Q.classes):
        raise InputError(f"{Q.origin}: shape {_shape(Q.shape)} does not match the shape {_shape(P.shape)} of {P.origin}")

    nats: dict[str, np.ndarray] = {"H(P)": _entropy(P)}
    if Q is not None:
        nats["H(Q)"] = _entropy(Q)
        nats["H(P,Q)"] = _cross_entropy(P, Q)
        nats["KL(P‖Q)"] = _kl(P, Q)
        nats["KL(Q‖P)"] = _kl(Q, P)
        nats["JS(P,Q)"] = _js(P, Q)

    ln_base = BASES[base][0]
    per_row = {k: _in_base(v, ln_base) for k, v in nats.items()}
    mean = {k: float(np.mean(v)) + 0.0 for k, v in per_row.items()}
    result = InfoResult(base=base, rows=P.rows, batch_shape=P.batch_shape, per_row=per_row, mean=mean,
                        classes=P.classes, sources={"p": P.origin, **({"q": Q.origin} if Q is not None else {})})
    if Q is not None:
        h_p, kl, h_pq = per_row["H(P)"], per_row["KL(P‖Q)"], per_row["H(P,Q)"]
        rhs = h_p + kl
        with np.errstate(invalid="ignore"):
            residual = np.where(h_pq == rhs, 0.0, h_pq - rhs)  # inf = 0 + inf: residual 0
            tol = IDENTITY_RTOL * (1.0 + np.abs(h_p) + np.abs(kl) + np.abs(h_pq))
            bad = ~(np.abs(residual) <= tol)
        result.residual = residual
        result.worst_row = int(np.argmax(np.where(np.isnan(residual), np.inf, np.abs(residual))))
        result.max_abs_residual = float(np.abs(residual[result.worst_row]))
        result.identity_holds = not bool(np.any(bad))
    return result


def self_information(probs: Any, base: Any = "e", *, origin: str = "event probabilities") -> np.ndarray:
    """−log_b p for each event probability (any shape); inf for p = 0, 0 for p = 1."""
    base = parse_base(base)
    a = _as_float64(probs, origin)
    if a.size == 0:
        raise InputError(f"{origin}: no event probabilities (empty input)")
    _check_probs(a, origin)
    with np.errstate(divide="ignore"):
        return _in_base(-np.log(a), BASES[base][0])


def _in_base(nats: np.ndarray, ln_base: float) -> np.ndarray:
    out = nats if ln_base == 1.0 else nats / ln_base
    return out + 0.0  # -0.0 (e.g. −Σ 1·log 1) prints as 0.0


def _plogq(a: Distribution, b: Distribution) -> np.ndarray:
    """a.p · log b.p elementwise, 0 where a.p = 0 (``xlogy``; with logits, ``log b.p`` is b's log-softmax)."""
    if b.log_p is None:
        return xlogy(a.p, b.p)
    with np.errstate(invalid="ignore"):
        prod = a.p * b.log_p
    return np.where(a.p == 0, 0.0, prod)


def _entropy(a: Distribution) -> np.ndarray:
    return -np.sum(_plogq(a, a), axis=-1)


def _cross_entropy(a: Distribution, b: Distribution) -> np.ndarray:
    return -np.sum(_plogq(a, b), axis=-1)


def _kl(a: Distribution, b: Distribution) -> np.ndarray:
    """Σ (p·log p − p·log q): the terms of ``F.kl_div(log q, p, reduction='none')``, summed per row."""
    with np.errstate(invalid="ignore"):
        return np.sum(_plogq(a, a) - _plogq(a, b), axis=-1)


def _js(a: Distribution, b: Distribution) -> np.ndarray:
    """½·KL(P‖M) + ½·KL(Q‖M) with M = (P + Q)/2, positive wherever P or Q is, so finite.

    Probabilities: ``xlogy`` with M itself (log-domain M only where (p + q)/2
    underflows to 0). Logits: each p·log(p/m) as p·(ln 2 − softplus(log q − log p)),
    from the log-probabilities, which is exactly 0 where P = Q.
    """
    if a.log_p is None and b.log_p is None:
        m = (a.p + b.p) / 2
        underflow = (m == 0) & ((a.p > 0) | (b.p > 0))  # subnormal p and q: (p + q)/2 rounds to 0
        if np.any(underflow):
            with np.errstate(divide="ignore"):
                log_m = np.where(underflow, np.logaddexp(a.log(), b.log()) - _LN2, np.log(m))
            M = Distribution(m, log_m, a.batch_shape, "M")
        else:
            M = Distribution(m, None, a.batch_shape, "M")
        js = 0.5 * _kl(a, M) + 0.5 * _kl(b, M)
    else:
        js = 0.5 * _kl_to_mixture(a, b) + 0.5 * _kl_to_mixture(b, a)
    # Rounding can leave JS's range [0, ln 2] by an ulp or two (disjoint supports give
    # ln 2 + 1 ulp, P ≈ Q a tiny negative): put those values back on the bound. Larger excursions (rows that are not
    # normalised, which draw a warning) are left as computed.
    js = np.where((js < 0.0) & (js >= -JS_SNAP), 0.0, js)
    return np.where((js > _LN2) & (js <= _LN2 + JS_SNAP), _LN2, js)


def _kl_to_mixture(a: Distribution, b: Distribution) -> np.ndarray:
    """KL(A‖(A+B)/2) = Σ a·log(2a/(a+b)) = Σ a·(ln 2 − softplus(log b − log a)), 0 where a = 0."""
    with np.errstate(invalid="ignore"):  # log b − log a = -inf − (-inf) only where a = 0
        terms = a.p * (_LN2 - softplus(b.log() - a.log()))
    return np.sum(np.where(a.p == 0, 0.0, terms), axis=-1)
