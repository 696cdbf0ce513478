"""Element-wise comparison of two arrays (or two sets of named arrays), streamed block by block.

For arrays ``a`` and ``b`` of one shape, compared in ``w = numpy.result_type(a, b)`` and
with ``b`` as the reference:

* ``abs_error = |a − b|`` and ``rel_error = |a − b| / |b|`` (``inf`` where ``b = 0 ≠ a``,
  ``0`` where both are ``0``, ``inf`` against an infinite ``b``); equal infinities have error 0;
* ``ulp`` = the number of representable values of the coarser of the two dtypes between
  ``round(a)`` and ``round(b)`` (both rounded to that dtype): floats are ordered by their
  sign-magnitude bit patterns, so the distance counts across zero (``−0`` and ``+0`` are one
  value) and through the subnormals; integers count by 1;
* ``mismatched`` = the number of positions where ``numpy.isclose(a, b, rtol, atol, equal_nan)``
  is false (computed in ``w``, exactly as numpy does), NaN positions included;
* NaN positions (``a`` only, ``b`` only, both) are counted apart and left out of the maxima;
* the ``top`` worst positions by ``abs_error`` (a NaN against a number, or two NaNs without
  ``equal_nan``, ranks first; ties go to the earlier position), equal positions never listed;
* a histogram of ``floor(log10(abs_error))`` (one bin per decade) over the nonzero finite errors.

Every statistic is accumulated over blocks of at most :data:`BLOCK_ELEMENTS` elements, so a
memory-mapped input is read once in constant memory (the kept worst positions are bounded by
``top``). Pure NumPy: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Mapping

import numpy as np

#: Elements per block: bounds the memory of a comparison, whatever the arrays' size.
BLOCK_ELEMENTS = 1 << 20
# floor(log10(x)) of positive float64 values lies in [-324, 308].
_DECADE_LO, _DECADE_HI = -324, 309


@dataclass(frozen=True)
class Position:
    """One compared position: its index in the array's own layout, both values, the error."""

    index: tuple[int, ...]
    a: float
    b: float
    abs_error: float


@dataclass
class ArrayDiff:
    """The statistics of one pair of arrays (see the module docstring for each formula)."""

    name: str
    shape_a: tuple[int, ...]
    shape_b: tuple[int, ...]
    dtype_a: str
    dtype_b: str
    compared_in: str = ""
    ulp_dtype: str = ""
    size: int = 0
    max_abs_error: float = 0.0
    max_rel_error: float = 0.0
    max_ulp: int = 0
    mismatched: int = 0
    nan_a_only: int = 0
    nan_b_only: int = 0
    nan_both: int = 0
    equal: int = 0
    worst: list[Position] = field(default_factory=list)
    # floor(log10(abs_error)) decades: counts[i] errors lie in [10**edges[i], 10**edges[i+1]).
    hist_edges: list[int] = field(default_factory=list)
    hist_counts: list[int] = field(default_factory=list)
    nonfinite_errors: int = 0  # positions whose abs_error is inf (a number against an infinity)

    @property
    def shapes_match(self) -> bool:
        return self.shape_a == self.shape_b

    @property
    def mismatched_fraction(self) -> float:
        return self.mismatched / self.size if self.size else 0.0

    @property
    def passed(self) -> bool:
        return self.shapes_match and self.mismatched == 0

    @property
    def dtypes_differ(self) -> bool:
        return self.dtype_a != self.dtype_b


@dataclass
class DiffReport:
    """A comparison of two sources: one :class:`ArrayDiff` per shared name, and the names only
    one side has."""

    arrays: list[ArrayDiff]
    only_a: list[str]
    only_b: list[str]
    rtol: float
    atol: float
    equal_nan: bool

    @property
    def shape_mismatches(self) -> list[ArrayDiff]:
        return [d for d in self.arrays if not d.shapes_match]

    @property
    def complete(self) -> bool:
        """Every array present on both sides with one shape (otherwise: an input error)."""
        return not self.only_a and not self.only_b and not self.shape_mismatches and bool(self.arrays)

    @property
    def passed(self) -> bool:
        return self.complete and all(d.passed for d in self.arrays)


#: Float formats NumPy has no dtype for, held as raw bits (an array with an ``encoding`` name and
#: the NumPy ``dtype`` it widens to exactly): (precision p with the hidden bit, smallest normal
#: exponent, largest exponent); their values are found on the line of representable values by
#: :func:`format_positions`.
SMALL_FLOATS = {"bfloat16": (8, -126, 127), "float8_e4m3fn": (4, -6, 8), "float8_e5m2": (3, -14, 15)}


def dtype_name(a) -> str:
    """The stored format's name: an encoding (``bfloat16``) or a NumPy dtype's name."""
    return getattr(a, "encoding", None) or np.dtype(a.dtype).name


def _precision(name: str) -> int:
    if name in SMALL_FLOATS:
        return SMALL_FLOATS[name][0]
    return np.finfo(np.dtype(name)).nmant + 1


def ulp_format(a: str, b: str) -> str:
    """The coarser of two formats (dtype or encoding names), in which ulps are counted: the float
    with fewer mantissa bits (a float rather than an integer or bool), or the wider integer."""
    floats = [n for n in (a, b) if n in SMALL_FLOATS or np.dtype(n).kind == "f"]
    if floats:
        return min(floats, key=lambda n: (_precision(n), n not in SMALL_FLOATS))
    if np.dtype(a).kind == "b" and np.dtype(b).kind == "b":
        return "int8"
    return np.result_type(np.dtype(a), np.dtype(b)).name


def ulp_dtype(a, b) -> np.dtype:
    """:func:`ulp_format` for two NumPy dtypes."""
    return np.dtype(ulp_format(np.dtype(a).name, np.dtype(b).name))


def format_positions(x: np.ndarray, name: str) -> np.ndarray:
    """Signed places of float64 values ``x`` on the line of values of a small float format, after
    rounding to it (to nearest, ties to even; beyond the largest value: infinity): ``±0`` is 0,
    the smallest subnormal 1, each binade ``2**(p-1)`` places. Exact in float64."""
    p, emin, emax = SMALL_FLOATS[name]
    m = np.abs(x)
    _, e2 = np.frexp(m)
    e = np.maximum(e2 - 1, emin)
    r = np.round(np.ldexp(m, -(e - p + 1)))  # the significand in units of the binade's ulp
    top = float((emax - emin + 2) * 2 ** (p - 1))  # one place past the largest finite value
    with np.errstate(invalid="ignore"):
        place = np.where(m == 0, 0.0, np.minimum((e - emin) * 2.0 ** (p - 1) + r, top))
    place = np.where(np.isinf(m), top, place)
    return np.copysign(place, x)


def compared_dtype(a: np.dtype, b: np.dtype) -> np.dtype:
    """The wider dtype both arrays are compared in: numpy's promotion (bool as int8)."""
    a, b = np.dtype(a), np.dtype(b)
    a = np.dtype(np.int8) if a.kind == "b" else a
    b = np.dtype(np.int8) if b.kind == "b" else b
    return np.result_type(a, b)


def ulp_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|position(a) − position(b)| for two arrays of one float (or integer) dtype, as uint64
    (exact: the largest float64 distance, −inf to +inf, is below 2**64)."""
    if a.dtype.kind in "iub":
        a64, b64 = a.astype(np.int64), b.astype(np.int64)
        return np.where(a64 >= b64, a64.astype(np.uint64) - b64.astype(np.uint64),
                        b64.astype(np.uint64) - a64.astype(np.uint64))
    bits = {2: np.uint16, 4: np.uint32, 8: np.uint64}[a.dtype.itemsize]
    sign = np.uint64(1) << np.uint64(8 * a.dtype.itemsize - 1)
    ra, rb = a.view(bits).astype(np.uint64), b.view(bits).astype(np.uint64)
    ma, mb = ra & ~sign, rb & ~sign
    same = (ra & sign) == (rb & sign)
    with np.errstate(over="ignore"):
        across = ma + mb  # opposite signs: distance through zero (both magnitudes < 2**63)
    return np.where(same, np.maximum(ma, mb) - np.minimum(ma, mb), across)


def _blocks(a: np.ndarray, b: np.ndarray, block: int) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """(start, flat a block, flat b block) over the elements in row-major order of the
    arrays as given (a memory-mapped file is touched one block at a time)."""
    a = a.reshape(1) if a.ndim == 0 else a
    b = b.reshape(1) if b.ndim == 0 else b
    if a.ndim == 1:
        for start in range(0, a.shape[0], block):
            yield start, a[start:start + block], b[start:start + block]
        return
    row = int(np.prod(a.shape[1:]))
    if row == 0:
        return
    rows = max(1, block // row)
    for r in range(0, a.shape[0], rows):
        sa, sb = a[r:r + rows].reshape(-1), b[r:r + rows].reshape(-1)
        if row > block:  # one row is larger than a block: walk it in pieces
            for start in range(0, sa.size, block):
                yield r * row + start, sa[start:start + block], sb[start:start + block]
        else:
            yield r * row, sa, sb


class _TopK:
    """The ``k`` largest keys seen so far (ties: smaller position first), in bounded memory."""

    def __init__(self, k: int):
        self.k = k
        self.keys = np.empty(0, dtype=np.float64)
        self.positions = np.empty(0, dtype=np.int64)

    def add(self, keys: np.ndarray, offset: int) -> None:
        if self.k <= 0:
            return
        candidates = np.flatnonzero(keys > 0)  # equal positions are never listed
        if candidates.size > self.k:
            kth = np.partition(keys[candidates], candidates.size - self.k)[candidates.size - self.k]
            above = candidates[keys[candidates] > kth]
            ties = candidates[keys[candidates] == kth][: self.k - above.size]
            candidates = np.concatenate([above, ties])
        merged_keys = np.concatenate([self.keys, keys[candidates]])
        merged_pos = np.concatenate([self.positions, candidates.astype(np.int64) + offset])
        order = np.lexsort((merged_pos, -merged_keys))[: self.k]
        self.keys, self.positions = merged_keys[order], merged_pos[order]


def compare_arrays(a: np.ndarray, b: np.ndarray, *, name: str = "", rtol: float = 1e-7, atol: float = 1e-9,
                   equal_nan: bool = False, top: int = 5, block: int = BLOCK_ELEMENTS) -> ArrayDiff:
    """The statistics of ``a`` against the reference ``b`` (module docstring), streamed in
    blocks of ``block`` elements. Arrays of different shapes give an :class:`ArrayDiff` with
    both shapes and nothing compared."""
    a = a if hasattr(a, "encoding") else np.asanyarray(a)  # raw bits stay raw: widened block by block
    b = b if hasattr(b, "encoding") else np.asanyarray(b)
    diff = ArrayDiff(name, tuple(a.shape), tuple(b.shape), dtype_name(a), dtype_name(b))
    if a.shape != b.shape:
        return diff
    wide = compared_dtype(a.dtype, b.dtype)
    coarse = ulp_format(diff.dtype_a, diff.dtype_b)
    diff.compared_in, diff.ulp_dtype, diff.size = wide.name, coarse, int(a.size)
    flags_a, flags_b = getattr(a, "flags", None), getattr(b, "flags", None)
    fortran = a.ndim > 1 and flags_a is not None and flags_b is not None and flags_a.f_contiguous \
        and flags_b.f_contiguous and not flags_a.c_contiguous
    if fortran:  # walk both in memory order: the transposes are row-major views
        a, b = a.T, b.T
    worst = _TopK(top)
    decades = np.zeros(_DECADE_HI - _DECADE_LO, dtype=np.int64)
    max_ulp = np.uint64(0)
    for start, xa, xb in _blocks(a, b, block):
        _block_stats(diff, worst, decades, xa, xb, start, wide, rtol, atol, equal_nan)
        max_ulp = max(max_ulp, _block_max_ulp(xa, xb, coarse))
    diff.max_ulp = int(max_ulp)
    for pos in worst.positions:
        at = tuple(int(i) for i in np.unravel_index(int(pos), a.shape)) if a.ndim else ()
        va, vb = a[at], b[at]
        diff.worst.append(Position(at[::-1] if fortran else at, _scalar(va), _scalar(vb), _abs_error(va, vb, wide)))
    nonzero = np.flatnonzero(decades)
    if nonzero.size:
        lo, hi = int(nonzero[0]), int(nonzero[-1]) + 1
        diff.hist_edges = list(range(lo + _DECADE_LO, hi + _DECADE_LO + 1))
        diff.hist_counts = [int(c) for c in decades[lo:hi]]
    return diff


def _scalar(v) -> float | int:
    v = np.asarray(v)
    return int(v) if v.dtype.kind in "iub" else float(v)


def _abs_error(va, vb, wide: np.dtype) -> float:
    x, y = np.asarray(va).astype(wide).astype(np.float64), np.asarray(vb).astype(wide).astype(np.float64)
    if np.isnan(x) or np.isnan(y):
        return float("nan")
    if x == y:
        return 0.0
    return float(abs(x - y))


def _block_stats(diff: ArrayDiff, worst: _TopK, decades: np.ndarray, xa: np.ndarray, xb: np.ndarray, start: int,
                 wide: np.dtype, rtol: float, atol: float, equal_nan: bool) -> None:
    xa, xb = np.asarray(xa), np.asarray(xb)
    wa, wb = xa.astype(wide, copy=False), xb.astype(wide, copy=False)
    with np.errstate(all="ignore"):
        close = np.isclose(wa, wb, rtol=rtol, atol=atol, equal_nan=equal_nan)
    diff.mismatched += int(close.size - np.count_nonzero(close))
    # errors in float64 (or wider): the difference of two narrower floats is then exact or nearly
    err_type = np.promote_types(wide, np.float64) if wide.kind == "f" else np.dtype(np.float64)
    fa, fb = wa.astype(err_type, copy=False), wb.astype(err_type, copy=False)
    na, nb = np.isnan(fa), np.isnan(fb)
    diff.nan_a_only += int(np.count_nonzero(na & ~nb))
    diff.nan_b_only += int(np.count_nonzero(nb & ~na))
    both = na & nb
    diff.nan_both += int(np.count_nonzero(both))
    same = fa == fb  # equal infinities too
    with np.errstate(all="ignore"):
        err = np.where(same, 0.0, np.abs(fa - fb))
        rel = np.where(same, 0.0, np.where(np.isinf(fb), np.inf, err / np.abs(fb)))
    numbers = ~(na | nb)
    diff.equal += int(np.count_nonzero(same))
    if numbers.any():
        diff.max_abs_error = max(diff.max_abs_error, float(np.max(err, where=numbers, initial=0.0)))
        diff.max_rel_error = max(diff.max_rel_error, float(np.max(rel, where=numbers, initial=0.0)))
    positive = numbers & (err > 0)
    finite_err = positive & np.isfinite(err)
    diff.nonfinite_errors += int(np.count_nonzero(positive & ~finite_err))
    if finite_err.any():
        with np.errstate(divide="ignore"):
            d = np.floor(np.log10(err[finite_err].astype(np.float64))).astype(np.int64)
        decades += np.bincount(np.clip(d - _DECADE_LO, 0, decades.size - 1), minlength=decades.size)
    nan_mismatch = (na | nb) & ~(both if equal_nan else np.zeros_like(both))
    key = np.where(nan_mismatch, np.inf, np.where(numbers, err, 0.0)).astype(np.float64, copy=False)
    worst.add(key, start)


def _block_max_ulp(xa: np.ndarray, xb: np.ndarray, coarse: str) -> np.uint64:
    if coarse in SMALL_FLOATS:
        fa, fb = np.asarray(xa, dtype=np.float64), np.asarray(xb, dtype=np.float64)
        keep = ~(np.isnan(fa) | np.isnan(fb))
        if not keep.any():
            return np.uint64(0)
        return np.uint64(np.max(np.abs(format_positions(fa[keep], coarse) - format_positions(fb[keep], coarse))))
    coarse = np.dtype(coarse)
    with np.errstate(all="ignore"):
        ca, cb = np.asarray(xa).astype(coarse), np.asarray(xb).astype(coarse)
    if coarse.kind == "f":
        keep = ~(np.isnan(ca) | np.isnan(cb))
        if not keep.all():
            ca, cb = ca[keep], cb[keep]
    if ca.size == 0:
        return np.uint64(0)
    return np.uint64(np.max(ulp_distance(ca, cb)))


def compare_named(a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray], *, rtol: float = 1e-7,
                  atol: float = 1e-9, equal_nan: bool = False, top: int = 5,
                  block: int = BLOCK_ELEMENTS) -> DiffReport:
    """Every name both mappings hold, compared (in ``a``'s order), and the names only one holds."""
    shared = [k for k in a if k in b]
    arrays = [compare_arrays(a[k], b[k], name=k, rtol=rtol, atol=atol, equal_nan=equal_nan, top=top, block=block)
              for k in shared]
    return DiffReport(arrays, [k for k in a if k not in b], [k for k in b if k not in a], rtol, atol, equal_nan)
