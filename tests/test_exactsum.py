"""The exact accumulator (lossctl.core.exactsum) against math.fsum and an mpmath oracle.

The oracle sums the values exactly (mpmath at 2,400 bits holds any sum of float64s)
and rounds once with Fraction -> float (CPython's correctly rounded int division, also
for subnormal results). Inputs are adversarial: catastrophic cancellation, values near
the overflow threshold, subnormals, mixed signs and magnitudes, and they are summed
in random orders and random block splits, merged in random orders.
"""

from __future__ import annotations

import math
from fractions import Fraction

import mpmath
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from lossctl.core import exactsum

MAX = np.finfo(np.float64).max
TINY = 5e-324


def exact_fraction(values) -> Fraction:
    return sum((Fraction(float(v)) for v in values), Fraction(0))


def round_once(total: Fraction) -> float:
    try:
        return float(total)  # numerator / denominator: correctly rounded
    except OverflowError:
        return math.inf if total > 0 else -math.inf


def mpmath_sum(values) -> float:
    """The values summed exactly in mpmath, rounded once to float64."""
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    if np.isnan(values).any() or (np.isposinf(values).any() and np.isneginf(values).any()):
        return math.nan  # IEEE addition: NaN absorbs everything, inf + -inf is NaN
    if np.isinf(values).any():
        return float(values[np.isinf(values)][0])
    with mpmath.workprec(2400):
        s = mpmath.fsum(mpmath.mpf(float(v)) for v in values)
        sign, man, exp, _ = s._mpf_
    if man == 0:  # IEEE: −0.0 only when every term is −0.0
        return -0.0 if values.size and np.all((values == 0) & np.signbit(values)) else 0.0
    return round_once((-1) ** sign * Fraction(int(man)) * (Fraction(2) ** int(exp)))


def fsum_or_none(values):
    try:
        return math.fsum(values)
    except OverflowError:  # math.fsum refuses intermediate overflow; the oracle does not
        return None


def same(a: float, b: float) -> bool:
    """Equal as float64 bit patterns (NaN equals NaN; 0.0 and -0.0 differ)."""
    return np.float64(a).tobytes() == np.float64(b).tobytes() or (math.isnan(a) and math.isnan(b))


finite = st.floats(allow_nan=False, allow_infinity=False)
magnitudes = st.sampled_from([1e-320, 1e-310, 2.2250738585072014e-308, 1e-200, 1e-17, 1.0, 1e16, 1e200, 1e300,
                              1e307, MAX / 4, MAX])


@st.composite
def adversarial(draw):
    """Finite values built to defeat naive sums: scaled normals at a few magnitudes, each with
    its negation (cancellation) or perturbed copies, plus arbitrary floats and subnormals."""
    parts = []
    for _ in range(draw(st.integers(1, 4))):
        scale = draw(magnitudes)
        n = draw(st.integers(1, 40))
        with np.errstate(over="ignore"):
            base = np.array(draw(st.lists(st.floats(-2, 2, allow_nan=False), min_size=n, max_size=n))) * scale
        base = base[np.isfinite(base)]
        kind = draw(st.sampled_from(["plain", "cancel", "near-cancel"]))
        parts.append(base)
        if kind == "cancel":
            parts.append(-base)
        elif kind == "near-cancel":
            parts.append(-np.nextafter(base, 0))
    parts.append(np.array(draw(st.lists(finite, max_size=8))))
    parts.append(np.array(draw(st.lists(st.floats(-1e-307, 1e-307, allow_subnormal=True), max_size=8))))
    x = np.concatenate([np.asarray(p, dtype=np.float64) for p in parts])
    perm = draw(st.permutations(range(x.size)))
    return x[list(perm)]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(adversarial())
def test_matches_the_exact_sum_rounded_once(x):
    state = exactsum.accumulate(x)
    assert exactsum.exact_value(state) == exact_fraction(x) * 2 ** 1074  # the state holds the exact sum
    got = exactsum.finalize(state)
    assert same(got, mpmath_sum(x)), (got, mpmath_sum(x))
    ref = fsum_or_none(x)
    if ref is not None and ref != 0:
        assert same(got, ref)


@settings(max_examples=200, deadline=None)
@given(hnp.arrays(np.float64, st.integers(0, 300), elements=finite))
def test_arbitrary_floats_against_fsum(x):
    ref = fsum_or_none(x)
    assume(ref is not None)
    got = exactsum.exact_sum(x)
    assert got == ref
    if ref != 0:
        assert same(got, ref)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(adversarial(), st.data())
def test_independent_of_order_blocks_and_merge_order(x, data):
    expected = exactsum.exact_sum(x)
    cuts = sorted(data.draw(st.lists(st.integers(0, x.size), max_size=6)))
    blocks = np.split(x, cuts)
    states = [exactsum.accumulate(b) for b in blocks]
    order = data.draw(st.permutations(range(len(states))))
    merged = exactsum.merge(*[states[i] for i in order])
    assert same(exactsum.finalize(merged), expected)
    # pairwise, as a tree of merges (what a distributed reduction does)
    while len(states) > 1:
        states = [exactsum.merge(*states[i:i + 2]) for i in range(0, len(states), 2)]
    assert same(exactsum.finalize(states[0]), expected)
    # accumulating into one running state
    running = exactsum.zeros()
    for b in reversed(blocks):
        exactsum.accumulate(b, running)
    assert same(exactsum.finalize(running), expected)


def test_cancellation_that_defeats_every_float_order():
    x = np.array([1e308, 1.0, -1e308, 1e-308, 3.0, -1e-308, 2.0 ** -1074])
    assert exactsum.exact_sum(x) == 4.0
    assert exactsum.exact_sum([1e100, 1.0, -1e100, 1e-100]) == 1.0
    assert exactsum.exact_sum([0.1] * 10) == 1.0 != sum([0.1] * 10)
    # ties round to even: 1 + 2^-53 is halfway between 1 and the next float
    assert exactsum.exact_sum([1.0, 2.0 ** -53]) == 1.0
    assert exactsum.exact_sum([1.0, 2.0 ** -53, 2.0 ** -1074]) == 1.0 + 2.0 ** -52
    assert exactsum.exact_sum([1.0 + 2.0 ** -52, 2.0 ** -53]) == 1.0 + 2.0 ** -51


def test_overflow_rounds_like_a_correctly_rounded_sum():
    assert exactsum.exact_sum([MAX, MAX]) == math.inf
    assert exactsum.exact_sum([-MAX, -MAX]) == -math.inf
    assert exactsum.exact_sum([MAX, MAX, -MAX]) == MAX  # a running sum would give inf
    half_ulp = 2.0 ** 970  # MAX + half an ulp rounds to even: beyond MAX, so inf
    assert exactsum.exact_sum([MAX, half_ulp]) == math.inf
    assert exactsum.exact_sum([MAX, np.nextafter(half_ulp, 0)]) == MAX
    many = np.full(100_000, MAX)
    assert exactsum.exact_sum(np.concatenate([many, -many[:-1]])) == MAX


def test_subnormals_are_exact():
    assert exactsum.exact_sum([TINY] * 3) == 3 * TINY
    assert exactsum.exact_sum([TINY, -TINY, TINY]) == TINY
    x = np.full(1000, TINY)
    assert exactsum.exact_sum(x) == 1000 * TINY
    assert exactsum.exact_sum([2.2250738585072014e-308, -TINY]) == np.nextafter(2.2250738585072014e-308, 0)


@pytest.mark.parametrize("values, expected", [
    ([], 0.0),
    ([-0.0], -0.0),
    ([-0.0, -0.0], -0.0),
    ([-0.0, 0.0], 0.0),
    ([1.0, -1.0], 0.0),
    ([-1.0, 1.0, -0.0], 0.0),
    ([math.inf, 1.0], math.inf),
    ([-math.inf, MAX, MAX], -math.inf),
    ([math.inf, -math.inf], math.nan),
    ([math.nan, 1.0], math.nan),
    ([math.inf, math.nan], math.nan),
    ([math.inf, math.inf, -1e308], math.inf),
])
def test_special_values_follow_ieee_addition(values, expected):
    got = exactsum.exact_sum(np.array(values, dtype=np.float64))
    assert same(got, expected)
    # split across states: the same
    states = [exactsum.accumulate(np.array([v])) for v in values]
    assert same(exactsum.finalize(exactsum.merge(*states)), expected)


def test_special_values_agree_with_numpy_where_numpy_is_order_free():
    rng = np.random.default_rng(3)
    for _ in range(50):
        x = rng.standard_normal(20)
        x[rng.integers(0, 20, 3)] = rng.choice([np.inf, -np.inf, np.nan], 3)
        with np.errstate(invalid="ignore"):
            ref = np.sum(x)  # with an infinity or NaN present the running sum's value does not depend on order
        assert same(exactsum.exact_sum(x), ref)


def test_float32_and_float16_values_are_widened_exactly():
    x = np.array([3e38, 3e38, -3e38, 1e-45], dtype=np.float32)
    assert exactsum.exact_sum(x) == float(np.float64(x[0])) + float(np.float64(x[3]))
    h = np.array([65504, 65504, -65504, 6e-8], dtype=np.float16)
    assert exactsum.exact_sum(h) == round_once(exact_fraction(h.astype(np.float64)))


def test_large_arrays_cross_every_internal_block():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(1_200_001) * 10.0 ** rng.integers(-300, 300, 1_200_001)
    x = np.concatenate([x, -x[:600_000]])
    assert exactsum.exact_sum(x) == math.fsum(x)
    y = np.abs(rng.standard_normal(700_001)) * 3  # the common case: positive losses
    assert exactsum.exact_sum(y) == math.fsum(y)


def test_state_layout_is_what_other_producers_rely_on():
    """The documented representation: Σ bins[k]·2^(32k−1074), then the five counters."""
    state = exactsum.zeros()
    assert state.dtype == np.int64 and state.shape == (exactsum.STATE_SIZE,) == (exactsum.NBINS + 5,)
    # a producer may write 3.0 = 3·2^0 = (3·2^1074)·2^−1074 as one raw, un-normalised bin entry
    k = 1074 // 32
    state[k] = 3 << (1074 - 32 * k)
    state[exactsum.TERMS] = 1
    state[exactsum.NOT_NEG_ZERO] = 1
    assert exactsum.finalize(state) == 3.0
    merged = exactsum.merge(state, exactsum.accumulate([0.5]))
    assert exactsum.finalize(merged) == 3.5
    assert all(0 <= b < 2 ** 32 for b in merged[:exactsum.NBINS - 1])  # normalised
    state[exactsum.NAN] = 2
    assert math.isnan(exactsum.finalize(exactsum.merge(state, merged)))
