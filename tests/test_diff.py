"""lossctl.core.diff against numpy: random and adversarial pairs, whole-array oracles vs blockwise statistics."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from lossctl.core.diff import compare_arrays, compare_named, compared_dtype, ulp_dtype, ulp_distance

_FORMATS = {np.dtype(np.float64): ("<d", "<q", 63), np.dtype(np.float32): ("<f", "<i", 31),
            np.dtype(np.float16): ("<e", "<h", 15)}


def _position(x: float, dtype) -> int:
    """Oracle: a float's place on its dtype's line of values, with Python integers."""
    if np.dtype(dtype).kind in "iub":
        return int(x)
    f, i, bit = _FORMATS[np.dtype(dtype)]
    n = struct.unpack(i, struct.pack(f, x))[0]
    return -(n & ((1 << bit) - 1)) if n < 0 else n


def _ulps(a, b, dtype) -> int:
    if np.dtype(dtype).kind in "iub":
        return abs(int(a) - int(b))
    return abs(_position(float(a), dtype) - _position(float(b), dtype))


def _oracle(a, b, rtol, atol, equal_nan, k):
    """Every statistic from whole arrays with plain numpy."""
    wide = np.result_type(a, b)
    wa, wb = a.astype(wide), b.astype(wide)
    close = np.isclose(wa, wb, rtol=rtol, atol=atol, equal_nan=equal_nan)
    fa, fb = wa.astype(np.float64), wb.astype(np.float64)
    na, nb = np.isnan(fa), np.isnan(fb)
    numbers = ~(na | nb)
    with np.errstate(all="ignore"):
        err = np.where(fa == fb, 0.0, np.abs(fa - fb))
        rel = np.where(fa == fb, 0.0, np.where(np.isinf(fb), np.inf, err / np.abs(fb)))
    key = np.where(numbers, err, np.inf)
    if equal_nan:
        key[na & nb] = 0.0
    flat = key.reshape(-1)
    order = [int(i) for i in np.lexsort((np.arange(flat.size), -flat)) if flat[i] > 0][:k]
    positive = err[numbers & (err > 0) & np.isfinite(err)]
    return dict(
        mismatched=int((~close).sum()),
        max_abs=float(err[numbers].max(initial=0.0)), max_rel=float(rel[numbers].max(initial=0.0)),
        nan=(int((na & ~nb).sum()), int((nb & ~na).sum()), int((na & nb).sum())),
        worst=[tuple(int(j) for j in np.unravel_index(i, a.shape)) for i in order],
        log_errors=np.log10(positive),
    )


def _check(a, b, rtol=1e-7, atol=1e-9, equal_nan=False, k=5, block=7):
    d = compare_arrays(a, b, rtol=rtol, atol=atol, equal_nan=equal_nan, top=k, block=block)
    o = _oracle(a, b, rtol, atol, equal_nan, k)
    assert d.mismatched == o["mismatched"]
    assert d.passed == (o["mismatched"] == 0)
    assert d.max_abs_error == o["max_abs"]
    assert d.max_rel_error == o["max_rel"]
    assert (d.nan_a_only, d.nan_b_only, d.nan_both) == o["nan"]
    assert [p.index for p in d.worst] == o["worst"]
    for p in d.worst:
        assert p.a == pytest.approx(a[p.index], nan_ok=True) and p.b == pytest.approx(b[p.index], nan_ok=True)
    if d.hist_counts:
        counts, _ = np.histogram(o["log_errors"], bins=np.array(d.hist_edges, dtype=float))
        assert list(counts) == d.hist_counts
        assert sum(d.hist_counts) == o["log_errors"].size
    else:
        assert o["log_errors"].size == 0
    coarse = ulp_dtype(a.dtype, b.dtype)
    ca, cb = a.astype(coarse), b.astype(coarse)
    expected_ulp = max((_ulps(x, y, coarse) for x, y in zip(ca.ravel(), cb.ravel())
                        if not (np.isnan(x) or np.isnan(y))), default=0)
    assert d.max_ulp == expected_ulp
    # blockwise and one-shot agree on everything
    whole = compare_arrays(a, b, rtol=rtol, atol=atol, equal_nan=equal_nan, top=k, block=1 << 20)
    assert repr(whole) == repr(d)  # (repr: NaN values compare equal)
    return d


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("dtypes", [("float64", "float64"), ("float32", "float64"), ("float32", "float32"),
                                    ("float16", "float32")])
def test_random_pairs_match_numpy(seed, dtypes):
    rng = np.random.default_rng(seed)
    shape = [(50,), (6, 9), (3, 4, 5), ()][seed % 4]
    b = rng.standard_normal(shape) * 10.0 ** rng.integers(-3, 3, size=shape)
    a = b * (1 + rng.standard_normal(shape) * 10.0 ** rng.integers(-12, -2, size=shape))
    if seed % 2 and b.ndim:
        a.flat[rng.integers(0, a.size)] = np.nan
        b.flat[rng.integers(0, b.size)] = np.nan
    a, b = np.asarray(a).astype(dtypes[0]), np.asarray(b).astype(dtypes[1])
    for equal_nan in (False, True):
        _check(a, b, rtol=1e-6, atol=1e-9, equal_nan=equal_nan, k=4)


def test_ulps_across_zero_and_through_subnormals():
    tiny = np.nextafter(0.0, 1.0)  # 5e-324, the smallest subnormal
    a = np.array([-tiny, -0.0, 0.0, np.finfo(float).tiny, -np.finfo(float).tiny, 1.0])
    b = np.array([tiny, 0.0, tiny, 0.0, np.finfo(float).tiny, np.nextafter(1.0, 2.0)])
    dist = ulp_distance(a, b)
    assert list(dist) == [2, 0, 1, 2 ** 52, 2 ** 53, 1]
    d = _check(a, b, atol=0.0, rtol=0.0)
    assert d.max_ulp == 2 ** 53


def test_float32_subnormals_and_the_largest_distance():
    sub = np.array([np.float32(1e-45), np.float32(-1e-45), np.float32(-np.inf)], dtype=np.float32)
    ref = np.array([np.float32(-1e-45), np.finfo(np.float32).smallest_normal, np.float32(np.inf)], dtype=np.float32)
    assert list(ulp_distance(sub, ref)) == [2, 2 ** 23 + 1, 2 * 0x7F800000]
    _check(sub, ref)
    extreme = compare_arrays(np.array([-np.inf]), np.array([np.inf]))
    assert extreme.max_ulp == 2 * 0x7FF0000000000000  # beyond int64: exact as a Python int


def test_inf_against_inf_is_equal():
    a = np.array([np.inf, -np.inf, np.inf, 1.0])
    b = np.array([np.inf, -np.inf, -np.inf, np.inf])
    d = _check(a, b)
    assert d.equal == 2 and d.mismatched == 2 and d.nonfinite_errors == 2
    assert d.max_abs_error == np.inf
    assert [p.index for p in d.worst] == [(2,), (3,)]


def test_nan_positions_counted_apart_and_equal_only_with_equal_nan():
    a = np.array([np.nan, np.nan, 1.0, 2.0])
    b = np.array([np.nan, 1.0, np.nan, 2.0])
    strict = _check(a, b)
    assert (strict.nan_a_only, strict.nan_b_only, strict.nan_both) == (1, 1, 1)
    assert strict.mismatched == 3 and strict.max_abs_error == 0.0
    lenient = _check(a, b, equal_nan=True)
    assert lenient.mismatched == 2 and [p.index for p in lenient.worst] == [(1,), (2,)]
    both = compare_arrays(np.array([np.nan]), np.array([np.nan]), equal_nan=True)
    assert both.passed and both.worst == []


def test_wider_dtype_and_coarser_ulps():
    assert compared_dtype(np.float32, np.float64) == np.float64
    assert ulp_dtype(np.float32, np.float64) == np.float32
    assert ulp_dtype(np.float16, np.float32) == np.float16
    assert ulp_dtype(np.int64, np.float32) == np.float32
    b = np.array([1 / 3, 2 / 3, 1e-3])
    a = b.astype(np.float32)
    d = _check(a, b)
    assert d.compared_in == "float64" and d.ulp_dtype == "float32" and d.dtypes_differ
    assert d.max_ulp == 0  # a float32 that is the correctly rounded float64 is 0 ulps away
    a[1] = np.nextafter(a[1], np.float32(1))
    assert compare_arrays(a, b).max_ulp == 1


def test_integers_and_bools():
    _check(np.array([1, 5, -3]), np.array([1, 7, 3]))
    d = compare_arrays(np.array([True, False]), np.array([True, True]))
    assert d.mismatched == 1 and d.max_ulp == 1 and d.max_abs_error == 1.0


def test_top_k_bounded_with_ties_and_layouts():
    rng = np.random.default_rng(3)
    b = rng.standard_normal((40, 30))
    a = b.copy()
    a[rng.random(b.shape) < 0.2] += 1e-3  # many equal errors: ties broken by position
    a[7, 3] += 1.0
    for k in (1, 3, 50, 400):
        d = _check(a, b, k=k, block=13)
        assert len(d.worst) == min(k, int((a != b).sum()))
        assert d.worst[0].index == (7, 3)
    # Fortran-ordered inputs: indices stay in the array's own layout
    fa, fb = np.asfortranarray(a), np.asfortranarray(b)
    d = compare_arrays(fa, fb, top=1, block=16)
    assert d.worst[0].index == (7, 3) and d.worst[0].a == a[7, 3]


def test_streams_a_memory_mapped_file_in_blocks(tmp_path):
    n = 300_000
    b = np.lib.format.open_memmap(tmp_path / "b.npy", mode="w+", dtype=np.float32, shape=(n, 4))
    b[:] = np.arange(4 * n, dtype=np.float32).reshape(n, 4)
    a = np.lib.format.open_memmap(tmp_path / "a.npy", mode="w+", dtype=np.float32, shape=(n, 4))
    a[:] = b
    a[123_456, 2] = np.nextafter(b[123_456, 2], np.float32(np.inf))
    a.flush(); b.flush()
    ma, mb = np.load(tmp_path / "a.npy", mmap_mode="r"), np.load(tmp_path / "b.npy", mmap_mode="r")
    d = compare_arrays(ma, mb, block=4096, top=2, rtol=0, atol=0)
    assert d.mismatched == 1 and d.max_ulp == 1 and [p.index for p in d.worst] == [(123_456, 2)]


def test_shapes_that_differ_are_reported_not_compared():
    d = compare_arrays(np.zeros((2, 3)), np.zeros((3, 2)))
    assert not d.shapes_match and not d.passed and d.shape_a == (2, 3) and d.shape_b == (3, 2)


def test_named_arrays_shared_and_one_sided_keys():
    a = {"w": np.ones(3), "b": np.zeros(2), "extra": np.ones(1)}
    b = {"b": np.zeros(2), "w": np.ones(3) + 1e-3, "new": np.ones(1)}
    r = compare_named(a, b)
    assert [d.name for d in r.arrays] == ["w", "b"] and r.only_a == ["extra"] and r.only_b == ["new"]
    assert not r.complete and not r.passed
    assert compare_named({"w": np.ones(2)}, {"w": np.ones(2)}).passed


@pytest.mark.parametrize("encoding", ["bfloat16", "float8_e5m2", "float8_e4m3fn"])
def test_small_float_formats_count_ulps_in_their_own_format(encoding):
    import ml_dtypes  # the oracle for the formats NumPy lacks (a test dependency)

    from lossctl.io.encoded import EncodedArray

    fmt = getattr(ml_dtypes, encoding)
    rng = np.random.default_rng(5)
    ref = (rng.standard_normal(200) * 10.0 ** rng.integers(-6, 3, size=200)).astype(np.float32)
    tiny = float(ml_dtypes.finfo(fmt).smallest_subnormal)
    ref[:4] = [0.0, -0.0, tiny, -tiny]
    small = ref.astype(fmt)
    bits = small.view(np.uint16 if np.dtype(fmt).itemsize == 2 else np.uint8)
    sign = 1 << (8 * bits.dtype.itemsize - 1)

    def place(v):
        """Oracle: a value's sign-magnitude bits in the format (ml_dtypes rounds to it)."""
        n = int(np.array(v, dtype=fmt).view(bits.dtype))
        return -(n & (sign - 1)) if n & sign else n

    def oracle(x, y):
        return max(abs(place(u) - place(v)) for u, v in zip(x, y) if not (np.isnan(float(u)) or np.isnan(float(v))))

    d = compare_arrays(EncodedArray(bits.copy(), encoding), ref, top=3, block=17)
    assert d.dtype_a == encoding and d.ulp_dtype == encoding and d.compared_in == "float32"
    assert d.max_ulp == oracle(small, ref) == 0  # a correctly rounded value is 0 ulps away
    shifted = bits.copy()
    shifted[7] += 1  # one place further from zero
    shifted[9] ^= sign  # the sign flipped: the distance runs across zero
    shifted[2] ^= sign  # -smallest subnormal against +smallest subnormal: 2 places
    d2 = compare_arrays(EncodedArray(shifted, encoding), ref, block=5)
    values = shifted.view(fmt)
    assert d2.max_ulp == oracle(values, ref) == max(1, 2 * abs(place(small[9])), 2)
    assert d2.mismatched == int((~np.isclose(values.astype(np.float32), ref, rtol=1e-7, atol=1e-9)).sum())
    assert d2.worst[0].abs_error == np.max(np.abs(values.astype(np.float64) - ref.astype(np.float64)))
