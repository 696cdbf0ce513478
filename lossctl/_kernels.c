/* Fused one-pass row kernels for lossctl's streaming engine (see lossctl/kernels.py).
 *
 * Each call takes one block of rows as the user gave it (float64, float32, float16, or
 * bfloat16 bits), widens every entry to float64 as it is read (no separate cast pass),
 * and writes the float64 per-sample values and adds them (and the denominator weights) exactly
 * into lossctl.exactsum accumulator states. The GIL is released for the whole block.
 *
 * Arithmetic (float64 throughout, no -ffast-math):
 *   cross-entropy on logits, per row:  m = max x,  d_j + d_lo_j = x_j − m exactly (TwoSum),
 *     s = Σ_{j≠argmax} exp(d_j)·(1 + d_lo_j)  (compensated sum),  log p_y = (d_y − log1p(s)) + d_lo_y;
 *   exp: k = round(d/ln 2), r = d − k·ln2 (Cody–Waite, exact high part), Taylor degree 13 on
 *     |r| ≤ ln2/2 (truncation < 0.05 ulp), scaled by 2^k in one rounding (two steps below 2^-1022);
 *   log1p: fdlibm's s_log1p (reduction to [√2/2, √2), correction term for 1 + x, degree-14 minimax).
 * On AVX-512 CPUs rows of c ≥ 16 logits take logits_chunk_v4 instead (its comment has the
 * details): d_lo only where x − m can be inexact (a per-row exponent test), a 16-entry
 * double-double table of 2^(j/16) with a degree-6 exp(r) − 1, pairs of chunks added before the
 * compensated sum, and s passed to log1p as a double-double (a tighter error bound).
 * Arrays arrive through the buffer protocol (C-contiguous), so the module needs no NumPy headers
 * at build time and is tied to no NumPy ABI.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__) && !defined(LOSSCTL_NO_CLONES)
/* One build, three instruction sets; the loader picks the best the CPU has (GNU ifunc). */
#define CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define CLONES
#endif
#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__) && !defined(LOSSCTL_NO_CLONES)
#define HAVE_F16C 1
#else
#define HAVE_F16C 0
#endif
/* logits_rows_narrow sets only the c ≤ 7 columns it uses; GCC cannot see that bound. */
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
/* Inlined into each clone, so they are compiled for its instruction set. */
#define INLINE static inline __attribute__((always_inline))

typedef double v8d __attribute__((vector_size(64)));
typedef int64_t v8l __attribute__((vector_size(64)));
typedef float v8f __attribute__((vector_size(32)));
typedef uint32_t v8u __attribute__((vector_size(32)));
typedef uint16_t v8h __attribute__((vector_size(16)));
typedef short v8hi __attribute__((vector_size(16)));

#if defined(__clang__)
#define SHUF(v, ...) __builtin_shufflevector(v, v, __VA_ARGS__)
#define SHUF2(a, b, ...) __builtin_shufflevector(a, b, __VA_ARGS__)
#else
#define SHUF(v, ...) __builtin_shuffle(v, (v8l){__VA_ARGS__})
#define SHUF2(a, b, ...) __builtin_shuffle(a, b, (v8l){__VA_ARGS__})
#endif

/* F16C: float16 read with the x86 F16C conversion instruction (an internal format: the
   kernels instantiated for it run only on CPUs that have it, see f16c_kernels) */
enum { F64 = 0, F32 = 1, F16 = 2, BF16 = 3, F16C = 4 };
static const int ITEMSIZE[5] = {8, 4, 2, 2, 2};

/* ---------------------------------------------------------------------------------------- */
/* widening loads                                                                           */

INLINE double half_to_double(uint16_t h) {
    uint64_t e = (h >> 10) & 0x1f, mant = h & 0x3ff, sign = (uint64_t)(h & 0x8000) << 48;
    double v;
    uint64_t bits;
    if (e == 0x1f) {
        bits = sign | 0x7ff0000000000000ULL | (mant << 42);
        memcpy(&v, &bits, 8);
        return v;
    }
    if (e == 0) {
        v = (double)mant * 0x1p-24; /* subnormal half: exact */
        return sign ? -v : v;
    }
    bits = sign | ((e - 15 + 1023) << 52) | (mant << 42);
    memcpy(&v, &bits, 8);
    return v;
}

INLINE double load1(const char *base, Py_ssize_t i, int fmt) {
    switch (fmt) {
    case F64: { double v; memcpy(&v, base + 8 * i, 8); return v; }
    case F32: { float v; memcpy(&v, base + 4 * i, 4); return (double)v; }
    case F16:
    case F16C: { uint16_t h; memcpy(&h, base + 2 * i, 2); return half_to_double(h); }
    default: {
        uint16_t h; memcpy(&h, base + 2 * i, 2);
        uint32_t b = (uint32_t)h << 16; float f; memcpy(&f, &b, 4); return (double)f;
    }
    }
}

INLINE v8d vselect(v8l mask, v8d a, v8d b) { /* mask ? a : b */
    return (v8d)(((v8l)a & mask) | ((v8l)b & ~mask));
}

INLINE v8d load8(const char *base, Py_ssize_t i, int fmt) {
    v8d out;
    if (fmt == F64) {
        memcpy(&out, base + 8 * i, 64);
    } else if (fmt == F32) {
        v8f f; memcpy(&f, base + 4 * i, 32);
        out = __builtin_convertvector(f, v8d);
#if HAVE_F16C
    } else if (fmt == F16C) { /* only in functions compiled for x86-64-v3 or v4 (f16c_kernels) */
        v8f f; /* vcvtph2ps: eight halves to floats, exactly (the intrinsic needs the ISA at file level) */
        __asm__("vcvtph2ps %1, %0" : "=x"(f) : "m"(*(const v8hi *)(base + 2 * i)));
        out = __builtin_convertvector(f, v8d);
#endif
    } else if (fmt == BF16) {
        v8h h; memcpy(&h, base + 2 * i, 16);
        v8u b = __builtin_convertvector(h, v8u) << 16;
        out = __builtin_convertvector((v8f)b, v8d);
    } else {
        /* half → float: the 15 magnitude bits moved under a float's exponent field give
           2^(e−127)·1.m (or 0.m·2^−126 for e = 0), and one exact multiplication by 2^112
           rebiases both normal and subnormal halves; e = 31 is ±inf/NaN. */
        v8h h; memcpy(&h, base + 2 * i, 16);
        v8u w = __builtin_convertvector(h, v8u);
        v8f v = (v8f)((w & 0x7fff) << 13) * 0x1p112f;
        v8u special = (v8u)((w & 0x7c00) == 0x7c00);
        v8u infnan = 0x7f800000u | ((w & 0x3ff) << 13);
        v8u bits = ((v8u)v & ~special) | (infnan & special) | ((w & 0x8000) << 16);
        out = __builtin_convertvector((v8f)bits, v8d);
    }
    return out;
}

/* A partial chunk (fewer than 8 entries left), padded with ``pad``. */
INLINE v8d load_tail(const char *base, Py_ssize_t i, Py_ssize_t count, int fmt, double pad) {
    double tmp[8];
    for (int l = 0; l < 8; l++) tmp[l] = l < count ? load1(base, i + l, fmt) : pad;
    v8d out;
    memcpy(&out, tmp, 64);
    return out;
}

INLINE v8d vsplat(double x) { return (v8d){x, x, x, x, x, x, x, x}; }
INLINE v8l lsplat(int64_t x) { return (v8l){x, x, x, x, x, x, x, x}; }

/* ---------------------------------------------------------------------------------------- */
/* exp for d ≤ 0 and log1p for x ≥ 0, eight lanes                                          */

#define LN2_HI 6.93147180369123816490e-01 /* 32 significant bits: k·LN2_HI is exact */
#define LN2_LO 1.90821492927058770002e-10
#define INV_LN2 1.44269504088896338700e+00
#define SHIFTER 0x1.8p52

/* exp(d) for d ≤ 0 (d may be −inf). ``wide``: d may lie below −708 (subnormal or zero
   results); otherwise every d is in [−708, 0] and the scaling is one exponent add. */
INLINE v8d vexp_neg(v8d d, int wide) {
    if (wide) d = vselect(d < vsplat(-746.0), vsplat(-746.0), d);
    v8d t = d * INV_LN2 + SHIFTER;
    v8d kf = t - SHIFTER;
    v8l k = (v8l)t - (v8l)vsplat(SHIFTER);
    v8d r = d - kf * LN2_HI;
    r = r - kf * LN2_LO;
    v8d q = vsplat(1.0 / 6227020800.0);
    q = q * r + 1.0 / 479001600.0;
    q = q * r + 1.0 / 39916800.0;
    q = q * r + 1.0 / 3628800.0;
    q = q * r + 1.0 / 362880.0;
    q = q * r + 1.0 / 40320.0;
    q = q * r + 1.0 / 5040.0;
    q = q * r + 1.0 / 720.0;
    q = q * r + 1.0 / 120.0;
    q = q * r + 1.0 / 24.0;
    q = q * r + 1.0 / 6.0;
    q = q * r + 0.5;
    q = q * r + 1.0;
    v8d p = r * q + 1.0; /* exp(r), in [0.70, 1.42] */
    if (!wide) return (v8d)((v8l)p + (k << 52));
    v8l k1 = k >> 1, k2 = k - k1; /* p·2^k1 is exact; the product with 2^k2 rounds once */
    v8d s1 = (v8d)((k1 + 1023) << 52), s2 = (v8d)((k2 + 1023) << 52);
    return (p * s1) * s2;
}

#define LP1 6.666666666666735130e-01
#define LP2 3.999999999940941908e-01
#define LP3 2.857142874366239149e-01
#define LP4 2.222219843214978396e-01
#define LP5 1.818357216161805012e-01
#define LP6 1.531383769920937332e-01
#define LP7 1.479819860511658591e-01

/* log1p(x) for finite x ≥ 0, eight lanes, to ~0.55 ulp (fdlibm's reduction and polynomial, with
   the large terms carried in double-double): 1 + x = u + c exactly (TwoSum), u = 2^k·(1 + f) with
   1 + f in [√2/2, √2) (f exact), log1p(x) = k·ln2 + log1p(f) + c/u, and
   log1p(f) = f − f²/2 + s·(f²/2 + R(s²)), s = f/(2 + f). f²/2 is split exactly (f = f_hi + f_lo,
   26 and ≤ 27 significant bits: f_hi² and f_hi·f_lo are exact products, so a fused multiply-add
   changes nothing); f − f²/2 and the k·ln2 add are TwoSums; only s·(f²/2 + R), at most 4% of the
   result, and the final addition round. */
INLINE v8d vlog1p_acc(v8d x) {
    v8d u = x + 1.0;
    v8d bb = u - x;
    v8d c = (1.0 - (u - bb)) + (x - bb); /* 1 + x = u + c exactly */
    v8l ub = (v8l)u;
    v8l k = (ub >> 52) - 1023;
    v8l mant = ub & 0x000fffffffffffffLL;
    v8l big = mant > 0x6a09e667f3bccLL; /* u/2^k ≥ √2: halve once more */
    k = k + (big & 1);
    v8l fb = mant | ((lsplat(0x3fe0000000000000LL) & big) | (lsplat(0x3ff0000000000000LL) & ~big));
    v8d f = (v8d)fb - 1.0; /* u/2^k − 1, exact */
    v8l small = (k == 0); /* 1 + x < √2: f is x itself, exactly, with no correction */
    f = vselect(small, x, f);
    c = vselect(small, vsplat(0.0), c / u);
    v8d kf = __builtin_convertvector(k, v8d);
    v8d fhi = (v8d)((v8l)f & (int64_t)0xfffffffff8000000ULL), flo = f - fhi;
    v8d hh = 0.5 * (f * f); /* f²/2 = hh + hl */
    v8d hl = ((0.5 * (fhi * fhi) - hh) + fhi * flo) + 0.5 * (flo * flo);
    v8d s = f / (2.0 + f);
    v8d z = s * s;
    v8d R = z * (LP1 + z * (LP2 + z * (LP3 + z * (LP4 + z * (LP5 + z * (LP6 + z * LP7))))));
    v8d T = s * (hh + R);
    v8d a = f - hh, ab = a - f; /* TwoSum(f, −hh) */
    v8d ae = (f - (a - ab)) - (hh + ab);
    v8d K = kf * LN2_HI; /* exact: LN2_HI has 32 significant bits */
    v8d h = K + a, hb = h - K; /* TwoSum(K, a) */
    v8d he = (K - (h - hb)) + (a - hb);
    return h + (he + (((ae - hl) + T) + (kf * LN2_LO + c)));
}

/* ---------------------------------------------------------------------------------------- */
/* compensated (double-double) accumulation                                                 */

INLINE void vtwosum(v8d *acc, v8d *comp, v8d e) {
    v8d s = *acc + e, bb = s - *acc;
    *comp += (*acc - (s - bb)) + (e - bb);
    *acc = s;
}

/* Σ of eight (hi, lo) lanes, as one double: a TwoSum tree over the lanes, all errors kept. */
INLINE double lanes_sum(v8d acc, v8d comp) {
    v8d b = SHUF(acc, 4, 5, 6, 7, 0, 1, 2, 3);
    comp += SHUF(comp, 4, 5, 6, 7, 0, 1, 2, 3);
    vtwosum(&acc, &comp, b);
    b = SHUF(acc, 2, 3, 0, 1, 6, 7, 4, 5);
    comp += SHUF(comp, 2, 3, 0, 1, 6, 7, 4, 5);
    vtwosum(&acc, &comp, b);
    b = SHUF(acc, 1, 0, 3, 2, 5, 4, 7, 6);
    comp += SHUF(comp, 1, 0, 3, 2, 5, 4, 7, 6);
    vtwosum(&acc, &comp, b);
    return acc[0] + comp[0];
}

INLINE v8d vmax_all(v8d v) { /* every lane: the maximum of v's lanes (NaN-free input) */
    v8d o = SHUF(v, 4, 5, 6, 7, 0, 1, 2, 3);
    v = vselect(o > v, o, v);
    o = SHUF(v, 2, 3, 0, 1, 6, 7, 4, 5);
    v = vselect(o > v, o, v);
    o = SHUF(v, 1, 0, 3, 2, 5, 4, 7, 6);
    return vselect(o > v, o, v);
}

INLINE v8d vmin_all(v8d v) {
    return -vmax_all(-v);
}

INLINE int is_finite(double x) { return x - x == 0.0; }

/* ---------------------------------------------------------------------------------------- */
/* cross-entropy / nll rows                                                                 */

enum { ROW_OK = 0, ROW_NAN = 1 };

typedef struct {
    Py_ssize_t bad_rows;    /* rows holding NaN or +inf */
    Py_ssize_t neginf_rows; /* rows holding -inf */
} scan_counts;

/* Classify a row with a non-finite entry (rare): counts, and whether its log-softmax is NaN
   (a NaN or +inf entry, or every entry -inf, as PyTorch and lossctl.numerics give it). */
static int classify_row(const char *x, Py_ssize_t i0, Py_ssize_t c, int fmt, scan_counts *cnt) {
    int nan_or_pos = 0, neg = 0, all_neg = 1;
    for (Py_ssize_t j = 0; j < c; j++) {
        double v = load1(x, i0 + j, fmt);
        if (v != v || v == INFINITY) nan_or_pos = 1;
        else if (v == -INFINITY) neg = 1;
        else all_neg = 0;
        if (v != -INFINITY) all_neg = 0;
    }
    cnt->bad_rows += nan_or_pos;
    cnt->neginf_rows += neg;
    return (nan_or_pos || all_neg) ? ROW_NAN : ROW_OK;
}

/* exp(x − m)·(1 + d_lo) of eight entries, d + d_lo = x − m exactly (TwoSum). */
INLINE v8d shifted_exp(v8d v, v8d vm, int wide) {
    v8d d = v - vm;
    v8d t = d - v;
    v8d dlo = (v - (d - t)) - (vm + t); /* TwoSum(x, −m): d + dlo = x − m exactly */
    if (wide) dlo = vselect(dlo - dlo == 0.0, dlo, vsplat(0.0)); /* d = −inf: no correction */
    v8d e = vexp_neg(d, wide);
    return e + e * dlo;
}

/* Σ_{j≠jm} exp(x_j − m)·(1 + d_lo_j) over a row of c ≥ 8 entries (``wide``: a constant, so
   each case is its own loop). Full chunks of eight, then the row's last eight entries
   (overlapping the chunk before: lanes below ``full`` are left out); the chunk holding the
   first maximum jm leaves its lane out (log1p keeps the maximum's own 1). */
INLINE double shifted_sum(const char *x, Py_ssize_t i0, Py_ssize_t c, int fmt, const double *row, int keep, v8d vm,
                          Py_ssize_t jm, int wide) {
    const Py_ssize_t last = c - 8, full = c / 8 * 8;
    const v8l lanel = {0, 1, 2, 3, 4, 5, 6, 7};
    const Py_ssize_t jc = jm < full ? jm - jm % 8 : -1;
    v8d acc = vsplat(0.0), comp = vsplat(0.0);
    for (Py_ssize_t j = 0; j < full; j += 8) {
        v8d v = keep ? load8((const char *)row, j, F64) : load8(x, i0 + j, fmt);
        v8d e = shifted_exp(v, vm, wide);
        if (j == jc) e = (v8d)((v8l)e & ~(lanel == (int64_t)(jm - j)));
        vtwosum(&acc, &comp, e);
    }
    if (full < c) {
        v8d v = keep ? load8((const char *)row, last, F64) : load8(x, i0 + last, fmt);
        v8d e = shifted_exp(v, vm, wide);
        v8l drop = (lanel + (int64_t)last) < (int64_t)full;
        if (jm >= full) drop |= lanel == (int64_t)(jm - last);
        e = (v8d)((v8l)e & ~drop);
        vtwosum(&acc, &comp, e);
    }
    return lanes_sum(acc, comp);
}

/* One row of c ≥ 8 logits: s = Σ_{j≠argmax} exp(x_j − m) (compensated), m; status.
   The last chunk is the row's last eight entries (overlapping the one before: its repeated
   lanes change no maximum, and are left out of the sum). */
INLINE int logits_row_wide(const char *x, Py_ssize_t i0, Py_ssize_t c, int fmt, double *s_out, double *m_out,
                           scan_counts *cnt, double *row) {
    /* half formats: widened once, in pass 1, into ``row`` (c doubles), which pass 2 reads */
    const int keep = fmt == F16 || fmt == BF16;
    const Py_ssize_t last = c - 8, full = c / 8 * 8;
    const v8d lane = {0, 1, 2, 3, 4, 5, 6, 7}, eight = vsplat(8.0);
    v8d vmax = vsplat(-INFINITY), vmin = vsplat(INFINITY), nf = vsplat(0.0), vidx = vsplat(0.0), pos = lane;
    for (Py_ssize_t j = 0; j < full; j += 8) {
        v8d v = load8(x, i0 + j, fmt);
        if (keep) memcpy(row + j, &v, 64);
        v8l gt = v > vmax;
        vmax = vselect(gt, v, vmax);
        vidx = vselect(gt, pos, vidx);
        vmin = vselect(v < vmin, v, vmin);
        nf += v - v;
        pos += eight;
    }
    if (full < c) {
        v8d v = load8(x, i0 + last, fmt);
        if (keep) memcpy(row + last, &v, 64);
        v8l gt = v > vmax;
        vmax = vselect(gt, v, vmax);
        vidx = vselect(gt, lane + (double)last, vidx);
        vmin = vselect(v < vmin, v, vmin);
        nf += v - v;
    }
    v8d vm = vmax_all(vmax);
    double m = vm[0];
    double mn = vmin_all(vmin)[0];
    double jm = vmin_all(vselect(vmax == vm, vidx, vsplat(INFINITY)))[0]; /* the first maximum */
    v8d nfr = nf + SHUF(nf, 4, 5, 6, 7, 0, 1, 2, 3);
    nfr += SHUF(nfr, 2, 3, 0, 1, 6, 7, 4, 5);
    nfr += SHUF(nfr, 1, 0, 3, 2, 5, 4, 7, 6);
    if (nfr[0] != 0.0 && classify_row(x, i0, c, fmt, cnt) == ROW_NAN) {
        *m_out = m;
        *s_out = NAN;
        return ROW_NAN;
    }
    *m_out = m;
    if (mn - m >= -708.0)
        *s_out = shifted_sum(x, i0, c, fmt, row, keep, vm, (Py_ssize_t)jm, 0);
    else
        *s_out = shifted_sum(x, i0, c, fmt, row, keep, vm, (Py_ssize_t)jm, 1);
    return ROW_OK;
}

/* Eight rows of c < 8 logits at once, one lane per row (rows beyond ``count`` are padding). */
INLINE void logits_rows_narrow(const char *x, Py_ssize_t row0, Py_ssize_t count, Py_ssize_t c, int fmt,
                                      double *s_out, double *m_out, int *status, scan_counts *cnt) {
    v8d col[8]; /* columns 0..c−1 are set below (not zeroed: 512 bytes a group of rows) */
    if (c == 2 && count == 8) { /* sixteen entries in a row: deinterleave the two columns */
        v8d a = load8(x, row0 * 2, fmt), b = load8(x, row0 * 2 + 8, fmt);
        col[0] = SHUF2(a, b, 0, 2, 4, 6, 8, 10, 12, 14);
        col[1] = SHUF2(a, b, 1, 3, 5, 7, 9, 11, 13, 15);
    } else {
        for (Py_ssize_t j = 0; j < c; j++) {
            col[j] = vsplat(0.0);
            for (int r = 0; r < count; r++) col[j][r] = load1(x, (row0 + r) * c + j, fmt);
        }
    }
    v8d vmax = col[0], vmin = col[0], nf = col[0] - col[0], vidx = vsplat(0.0);
    for (Py_ssize_t j = 1; j < c; j++) {
        v8l gt = col[j] > vmax;
        vmax = vselect(gt, col[j], vmax);
        vidx = vselect(gt, vsplat((double)j), vidx);
        vmin = vselect(col[j] < vmin, col[j], vmin);
        nf += col[j] - col[j];
    }
    int any_bad = 0, any_wide = 0;
    for (int r = 0; r < 8; r++) {
        status[r] = ROW_OK;
        if (r < count && nf[r] != 0.0) {
            status[r] = classify_row(x, (row0 + r) * c, c, fmt, cnt);
            any_bad |= status[r] == ROW_NAN;
        }
        if (!(vmin[r] - vmax[r] >= -708.0)) any_wide = 1;
    }
    if (any_bad) { /* a NaN row's lane would poison nothing else, but keep its m finite-free */
        for (int r = 0; r < 8; r++)
            if (status[r] == ROW_NAN) vmax[r] = 0.0;
    }
    v8d acc = vsplat(0.0), comp = vsplat(0.0);
    for (Py_ssize_t j = 0; j < c; j++) {
        v8d v = col[j];
        v8d d = v - vmax;
        v8d t = d - v;
        v8d dlo = (v - (d - t)) - (vmax + t);
        v8d e;
        if (any_wide) {
            dlo = vselect(dlo - dlo == 0.0, dlo, vsplat(0.0));
            e = vexp_neg(d, 1);
        } else {
            e = vexp_neg(d, 0);
        }
        e = e + e * dlo;
        e = (v8d)((v8l)e & ~(vidx == (double)j));
        vtwosum(&acc, &comp, e);
    }
    for (int r = 0; r < count; r++) {
        m_out[r] = vmax[r];
        s_out[r] = status[r] == ROW_NAN ? NAN : acc[r] + comp[r];
    }
}

/* log1p over an array of s ≥ 0 (NaN entries pass through), eight at a time. */
INLINE void log1p_array(double *s, Py_ssize_t n) {
    Py_ssize_t i = 0;
    for (; i + 8 <= n; i += 8) {
        v8d v;
        memcpy(&v, s + i, 64);
        v8l nan = v != v;
        v8d r = vlog1p_acc(vselect(nan, vsplat(0.0), v));
        r = vselect(nan, v, r);
        memcpy(s + i, &r, 64);
    }
    if (i < n) {
        double tmp[8];
        for (int l = 0; l < 8; l++) tmp[l] = i + l < n ? s[i + l] : 0.0;
        v8d v;
        memcpy(&v, tmp, 64);
        v8l nan = v != v;
        v8d r = vlog1p_acc(vselect(nan, vsplat(0.0), v));
        r = vselect(nan, v, r);
        for (int l = 0; i + l < n; l++) s[i + l] = r[l];
    }
}

/* ---------------------------------------------------------------------------------------- */
/* AVX-512 rows of logits (x86-64-v4 CPUs, chosen at run time)                              */
/*
 * The same quantities as logits_row_wide (m, s = Σ_{j≠argmax} exp(x_j − m), then log1p s) for
 * rows of c ≥ 16 logits in any input format, with fewer operations per entry:
 *
 * - pass 1 finds the maximum, its first position, the smallest and largest |x| and whether a
 *   NaN or ±inf is present (v·0 summed), on sixteen single-precision lanes (the input's own
 *   values, exactly; float16/bfloat16 are widened here once, into a float32 row buffer that
 *   pass 2 reads) or on eight float64 lanes;
 * - the shift d = x − m is exact in float64 whenever every nonzero |x| lies within 2^±(52 − p)
 *   of |m| (p significant bits: two such numbers whose exponents differ by at most 52 − p span
 *   at most 53 bits): float32 2^±28, bfloat16 2^±44, float16 always (its whole range spans 41
 *   bits), and any format when m = 0. Such a row (nearly every row of real logits) skips the
 *   TwoSum of the shift; the others add its exact error d_lo to the reduced argument r;
 * - exp(d) = 2^(n/16)·exp(r) with n = round(16·d/ln 2), r = d − (n/16)·ln 2 (Cody–Waite with
 *   the same two-part ln 2; |r| ≤ ln 2/32): 2^(j/16), j = n mod 16, is a double-double table
 *   held in four registers (no memory gather); exp(r) − 1 = r + r²·q(r), q a degree-4 minimax
 *   polynomial (error < 0.11 ulp of 1 on |r| ≤ 1.001·ln 2/32); e = T_hi + (T_hi·(exp(r) − 1) +
 *   T_lo) rounds once (relative error ≤ 2^-53 + ~0.3·2^-53), and the scaling by 2^⌊n/16⌋ is
 *   VSCALEFPD: exact for normal results, one rounding for subnormal ones (the gradual-underflow
 *   limit of vexp_neg's wide case), 0 below;
 * - the terms of two chunks of eight are added lane by lane (one rounding, relative error
 *   ≤ 2^-53 of their sum: all terms are positive), then accumulated with TwoSum; the lanes'
 *   (sum, error) pairs go into a double-double s_hi + s_lo by a TwoSum tree, and log1p takes
 *   both (s_lo joins its exact correction term of 1 + x): s is not rounded before the logarithm.
 *   So s carries a relative error ≤ ~2.3·2^-53 (+ O(c²·2^-106)), against ~3.4·2^-53 for
 *   logits_row_wide (Taylor exp, the (1 + d_lo) product, the rounded lane sum); with log1p's
 *   ~0.55 ulp and the final rounding of (d_y − log1p s) the bound stays under 4 ulp;
 * - rows go four at a time (independent chains hide the per-row reductions), rows longer than
 *   V4_LONG one at a time.
 * A row with NaN or ±inf, or with an entry beyond ±2^44 (where the rounding constant of n
 * would lose its 1/16 grid), goes to logits_row_wide. Each row's value depends on that row
 * alone: a row grouped with one that needs d_lo adds d_lo = +0 exactly, which changes no bit,
 * and a float32/16 or bfloat16 row gives the bits of its float64 widening.
 */
#if HAVE_F16C
#include <immintrin.h>
#define V4 __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,avx2,fma,f16c,bmi,bmi2")))
#define V4INLINE static inline __attribute__((always_inline)) V4

/* 2^(j/16) = EXP16_HI[j] + EXP16_LO[j] to ~2^-106 relative */
static const double EXP16_HI[16] __attribute__((aligned(64))) = {
    0x1.0000000000000p+0, 0x1.0b5586cf9890fp+0, 0x1.172b83c7d517bp+0, 0x1.2387a6e756238p+0,
    0x1.306fe0a31b715p+0, 0x1.3dea64c123422p+0, 0x1.4bfdad5362a27p+0, 0x1.5ab07dd485429p+0,
    0x1.6a09e667f3bcdp+0, 0x1.7a11473eb0187p+0, 0x1.8ace5422aa0dbp+0, 0x1.9c49182a3f090p+0,
    0x1.ae89f995ad3adp+0, 0x1.c199bdd85529cp+0, 0x1.d5818dcfba487p+0, 0x1.ea4afa2a490dap+0};
static const double EXP16_LO[16] __attribute__((aligned(64))) = {
    0x0.0p+0, 0x1.8a62e4adc610bp-54, -0x1.19041b9d78a76p-55, 0x1.9b07eb6c70573p-54,
    0x1.6f46ad23182e4p-55, 0x1.ada0911f09ebcp-55, 0x1.d4397afec42e2p-56, 0x1.6324c054647adp-54,
    -0x1.bdd3413b26456p-54, -0x1.41577ee04992fp-55, 0x1.6e9f156864b27p-54, 0x1.c7c46b071f2bep-56,
    0x1.7a1cd345dcc81p-54, 0x1.11065895048ddp-55, 0x1.2ed02d75b3707p-55, -0x1.e9c23179c2893p-54};
/* exp(r) − 1 − r − r²/2 ≈ r³·(Q3 + r·(Q4 + r·(Q5 + r·Q6))) on |r| ≤ 1.001·ln 2/32 (Remez) */
#define Q3 0x1.555555548f5dcp-3
#define Q4 0x1.555555552c039p-5
#define Q5 0x1.11123aeee6edcp-7
#define Q6 0x1.6c1797ef9c57dp-10

enum { V4_ROWS = 2 };            /* rows processed together */
enum { V4_LONG = 4096 };         /* longer rows: one at a time (the row buffer stays in L2) */
#define V4_LIMIT 0x1p44          /* larger magnitudes: logits_row_wide */

typedef struct { __m512d h0, h1, l0, l1; } exp_table;

/* exp(d + d_lo) for eight lanes (d ≤ 0, |d| < 2^45; ``use_lo``: add d_lo), lanes outside ``keep``: 0 */
V4INLINE __m512d exp8_v4(__m512d d, __m512d dlo, int use_lo, const exp_table *T, __mmask8 keep) {
    const __m512d sh = _mm512_set1_pd(0x1.8p48); /* ulp 2^-4: t − sh = n/16 */
    __m512d t = _mm512_fmadd_pd(d, _mm512_set1_pd(INV_LN2), sh);
    __m512d kf = _mm512_sub_pd(t, sh);
    __m512d r = _mm512_fnmadd_pd(kf, _mm512_set1_pd(LN2_HI), d);
    r = _mm512_fnmadd_pd(kf, _mm512_set1_pd(LN2_LO), r);
    if (use_lo) r = _mm512_add_pd(r, dlo);
    __m512d q = _mm512_fmadd_pd(_mm512_set1_pd(Q6), r, _mm512_set1_pd(Q5));
    q = _mm512_fmadd_pd(q, r, _mm512_set1_pd(Q4));
    q = _mm512_fmadd_pd(q, r, _mm512_set1_pd(Q3));
    q = _mm512_fmadd_pd(q, r, _mm512_set1_pd(0.5));
    __m512d p = _mm512_fmadd_pd(_mm512_mul_pd(r, r), q, r); /* exp(r) − 1 */
    __m512i idx = _mm512_castpd_si512(t);                    /* low four bits: n mod 16 */
    __m512d th = _mm512_permutex2var_pd(T->h0, idx, T->h1);
    __m512d tl = _mm512_permutex2var_pd(T->l0, idx, T->l1);
    __m512d e = _mm512_add_pd(th, _mm512_fmadd_pd(th, p, tl));
    return _mm512_maskz_scalef_pd(keep, e, kf); /* ·2^⌊n/16⌋ */
}

V4INLINE void twosum8_v4(__m512d *acc, __m512d *comp, __m512d e) {
    __m512d s = _mm512_add_pd(*acc, e), bb = _mm512_sub_pd(s, *acc);
    *comp = _mm512_add_pd(*comp, _mm512_add_pd(_mm512_sub_pd(*acc, _mm512_sub_pd(s, bb)), _mm512_sub_pd(e, bb)));
    *acc = s;
}

/* Σ of eight (sum, error) lanes as a double-double hi + lo: a TwoSum tree, all errors kept. */
V4INLINE void lanes_dd_v4(__m512d acc, __m512d comp, double *hi, double *lo) {
    __m256d a = _mm512_castpd512_pd256(acc), b = _mm512_extractf64x4_pd(acc, 1);
    __m256d s = _mm256_add_pd(a, b), bb = _mm256_sub_pd(s, a);
    __m256d c4 = _mm256_add_pd(_mm256_add_pd(_mm512_castpd512_pd256(comp), _mm512_extractf64x4_pd(comp, 1)),
                               _mm256_add_pd(_mm256_sub_pd(a, _mm256_sub_pd(s, bb)), _mm256_sub_pd(b, bb)));
    __m128d a2 = _mm256_castpd256_pd128(s), b2 = _mm256_extractf128_pd(s, 1);
    __m128d s2 = _mm_add_pd(a2, b2), bb2 = _mm_sub_pd(s2, a2);
    __m128d c2 = _mm_add_pd(_mm_add_pd(_mm256_castpd256_pd128(c4), _mm256_extractf128_pd(c4, 1)),
                            _mm_add_pd(_mm_sub_pd(a2, _mm_sub_pd(s2, bb2)), _mm_sub_pd(b2, bb2)));
    double a1 = _mm_cvtsd_f64(s2), b1 = _mm_cvtsd_f64(_mm_unpackhi_pd(s2, s2));
    double s1 = a1 + b1, bb1 = s1 - a1;
    double c1 = (_mm_cvtsd_f64(c2) + _mm_cvtsd_f64(_mm_unpackhi_pd(c2, c2))) + ((a1 - (s1 - bb1)) + (b1 - bb1));
    double h = s1 + c1; /* Fast2Sum: |c1| ≤ |s1| */
    *hi = h;
    *lo = c1 - (h - s1);
}

/* sixteen entries as float32 (float16 and bfloat16 widened exactly); lanes outside k: 0 */
V4INLINE __m512 load16_v4(const char *x, Py_ssize_t j, int fmt, __mmask16 k) {
    if (fmt == F32) return k == 0xffff ? _mm512_loadu_ps(x + 4 * j) : _mm512_maskz_loadu_ps(k, x + 4 * j);
    __m256i h = k == 0xffff ? _mm256_loadu_si256((const __m256i *)(x + 2 * j)) : _mm256_maskz_loadu_epi16(k, x + 2 * j);
    if (fmt == F16 || fmt == F16C) return _mm512_cvtph_ps(h);
    /* bfloat16: word i to the upper half of dword i, zeros below (one VPERMW) */
    static const uint16_t up[32] __attribute__((aligned(64))) = {0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7,
                                                               8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15};
    return _mm512_castsi512_ps(
        _mm512_maskz_permutexvar_epi16(0xaaaaaaaau, _mm512_load_si512((const void *)up), _mm512_zextsi256_si512(h)));
}

typedef struct {
    __m512 vmax, amin, amax, nf;
    __m512i vidx;
} pass1_v4;

V4INLINE void pass1_step_v4(pass1_v4 *S, __m512 v, __m512i pos, __mmask16 k, int ranges) {
    __mmask16 gt = _mm512_mask_cmp_ps_mask(k, v, S->vmax, _CMP_GT_OQ);
    S->vmax = _mm512_mask_mov_ps(S->vmax, gt, v);
    S->vidx = _mm512_mask_mov_epi32(S->vidx, gt, pos);
    if (ranges) { /* float16: every shift is exact and every |x| < 2^44 */
        S->amin = _mm512_mask_range_ps(S->amin, k, S->amin, v, 0x0a); /* min |.| */
        S->amax = _mm512_mask_range_ps(S->amax, k, S->amax, v, 0x0b); /* max |.| */
    }
    S->nf = _mm512_mask3_fmadd_ps(v, _mm512_setzero_ps(), S->nf, k); /* NaN once any v is NaN or ±inf */
}

/* min |x| over the nonzero entries of a row (rare: rows holding an exact zero) */
V4INLINE float min_nonzero_abs_v4(const char *x, Py_ssize_t c, int fmt) {
    __m512 a = _mm512_set1_ps(INFINITY);
    for (Py_ssize_t j = 0; j < c; j += 16) {
        __mmask16 k = c - j >= 16 ? 0xffff : (__mmask16)((1u << (c - j)) - 1);
        __m512 v = load16_v4(x, j, fmt, k);
        k &= _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_NEQ_UQ);
        a = _mm512_mask_range_ps(a, k, a, v, 0x0a);
    }
    return _mm512_reduce_min_ps(a);
}

static inline int exponent_of(double v) { /* ⌊log2 |v|⌋ of a finite nonzero v (subnormals: at most that) */
    uint64_t b;
    memcpy(&b, &v, 8);
    return (int)((b >> 52) & 0x7ff) - 1023;
}

/* Pass 1 over R rows of float64 (eight lanes): max, its first position, min and max |x|, and
   whether a NaN or ±inf is present. */
V4INLINE void pass1_f64_v4(const char *const *xr, int R, Py_ssize_t c, double *m, int *jm, double *amin,
                           double *amax, int *bad) {
    __m512d vmax[V4_ROWS], lo[V4_ROWS], hi[V4_ROWS], nf[V4_ROWS];
    __m512i vidx[V4_ROWS];
    for (int r = 0; r < R; r++) {
        vmax[r] = _mm512_set1_pd(-INFINITY);
        lo[r] = _mm512_set1_pd(INFINITY);
        hi[r] = nf[r] = _mm512_setzero_pd();
        vidx[r] = _mm512_setzero_si512();
    }
    __m512i pos = _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7);
    for (Py_ssize_t j = 0; j < c; j += 8) {
        const __mmask8 k = c - j >= 8 ? 0xff : (__mmask8)((1u << (c - j)) - 1);
        for (int r = 0; r < R; r++) {
            const double *p = (const double *)xr[r] + j;
            __m512d v = k == 0xff ? _mm512_loadu_pd(p) : _mm512_maskz_loadu_pd(k, p);
            __mmask8 gt = _mm512_mask_cmp_pd_mask(k, v, vmax[r], _CMP_GT_OQ);
            vmax[r] = _mm512_mask_mov_pd(vmax[r], gt, v);
            vidx[r] = _mm512_mask_mov_epi64(vidx[r], gt, pos);
            lo[r] = _mm512_mask_range_pd(lo[r], k, lo[r], v, 0x0a);
            hi[r] = _mm512_mask_range_pd(hi[r], k, hi[r], v, 0x0b);
            nf[r] = _mm512_mask3_fmadd_pd(v, _mm512_setzero_pd(), nf[r], k);
        }
        pos = _mm512_add_epi64(pos, _mm512_set1_epi64(8));
    }
    for (int r = 0; r < R; r++) {
        bad[r] = _mm512_fpclass_pd_mask(nf[r], 0x99) != 0;
        m[r] = _mm512_reduce_max_pd(vmax[r]);
        jm[r] = (int)_mm512_mask_reduce_min_epi64(_mm512_cmp_pd_mask(vmax[r], _mm512_set1_pd(m[r]), _CMP_EQ_OQ), vidx[r]);
        amin[r] = _mm512_reduce_min_pd(lo[r]);
        amax[r] = _mm512_reduce_max_pd(hi[r]);
    }
}

/* The same over R rows of float32 (or float16/bfloat16, widened here into ``buf``), sixteen
   single-precision lanes at a time. */
V4INLINE void pass1_f32_v4(const char *const *xr, int R, Py_ssize_t c, int fmt, float *buf, Py_ssize_t bstride,
                           double *m, int *jm, double *amin, double *amax, int *bad) {
    const int keep = fmt != F32;
    pass1_v4 S[V4_ROWS];
    for (int r = 0; r < R; r++) {
        S[r].vmax = _mm512_set1_ps(-INFINITY);
        S[r].amin = _mm512_set1_ps(INFINITY);
        S[r].amax = _mm512_setzero_ps();
        S[r].nf = _mm512_setzero_ps();
        S[r].vidx = _mm512_setzero_si512();
    }
    __m512i pos = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const Py_ssize_t c16 = c & ~(Py_ssize_t)15;
    Py_ssize_t j = 0;
    for (; j < c16; j += 16) {
        for (int r = 0; r < R; r++) {
            __m512 v = load16_v4(xr[r], j, fmt, 0xffff);
            if (keep) _mm512_storeu_ps(buf + r * bstride + j, v);
            pass1_step_v4(&S[r], v, pos, 0xffff, fmt != F16 && fmt != F16C);
        }
        pos = _mm512_add_epi32(pos, _mm512_set1_epi32(16));
    }
    if (j < c) {
        const __mmask16 k = (__mmask16)((1u << (c - j)) - 1);
        for (int r = 0; r < R; r++) {
            __m512 v = load16_v4(xr[r], j, fmt, k);
            if (keep) _mm512_mask_storeu_ps(buf + r * bstride + j, k, v);
            pass1_step_v4(&S[r], v, pos, k, fmt != F16 && fmt != F16C);
        }
    }
    for (int r = 0; r < R; r++) {
        bad[r] = _mm512_fpclass_ps_mask(S[r].nf, 0x99) != 0;
        const float mf = _mm512_reduce_max_ps(S[r].vmax);
        m[r] = mf;
        jm[r] = _mm512_mask_reduce_min_epi32(_mm512_cmp_ps_mask(S[r].vmax, _mm512_set1_ps(mf), _CMP_EQ_OQ), S[r].vidx);
        amin[r] = _mm512_reduce_min_ps(S[r].amin);
        amax[r] = _mm512_reduce_max_ps(S[r].amax);
        if (amin[r] == 0.0 && fmt != F16 && fmt != F16C) amin[r] = min_nonzero_abs_v4(xr[r], c, fmt);
    }
}

/* R rows (R ≤ V4_ROWS; row r at xr[r]) of c ≥ 16 entries: m, log1p's input s_hi + s_lo;
   status 1: the row needs logits_row_wide. ``buf``: R·(c + 16) floats (half formats). */
V4INLINE void rows_v4(const char *const *xr, int R, Py_ssize_t c, int fmt, float *buf, double *m_out, double *s_hi,
                      double *s_lo, int *status, const char *next, Py_ssize_t next_bytes) {
    const Py_ssize_t bstride = c + 16, c8 = c & ~(Py_ssize_t)7;
    double m[V4_ROWS], amin[V4_ROWS], amax[V4_ROWS];
    int jm[V4_ROWS], bad[V4_ROWS];
    if (fmt == F64)
        pass1_f64_v4(xr, R, c, m, jm, amin, amax, bad);
    else
        pass1_f32_v4(xr, R, c, fmt, buf, bstride, m, jm, amin, amax, bad);
    Py_ssize_t jc[V4_ROWS];
    __mmask8 jb[V4_ROWS];
    int exact = 1;
    /* significand bits p: x − m is exact when every nonzero |x| is within 2^±(52 − p) of |m| */
    const int spread = fmt == F64 ? -1 : fmt == F32 ? 28 : 44;
    for (int r = 0; r < R; r++) {
        status[r] = bad[r] || !(amax[r] <= V4_LIMIT); /* NaN, ±inf, or too large for exp8_v4 */
        if (status[r]) {
            m[r] = 0.0;
            jc[r] = -8;
            jb[r] = 0xff;
            continue;
        }
        jc[r] = jm[r] & ~7;
        jb[r] = (__mmask8)~(1u << (jm[r] & 7));
        if (fmt == F16 || fmt == F16C || m[r] == 0.0) continue; /* exact shifts */
        const int em = exponent_of(m[r]);
        if (exponent_of(amax[r]) - em > spread || em - exponent_of(amin[r]) > spread) exact = 0;
    }
    exp_table T = {_mm512_load_pd(EXP16_HI), _mm512_load_pd(EXP16_HI + 8), _mm512_load_pd(EXP16_LO),
                   _mm512_load_pd(EXP16_LO + 8)};
    __m512d vm[V4_ROWS], acc[V4_ROWS], comp[V4_ROWS];
    const float *src[V4_ROWS];
    const double *srcd[V4_ROWS];
    for (int r = 0; r < R; r++) {
        vm[r] = _mm512_set1_pd(m[r]);
        acc[r] = comp[r] = _mm512_setzero_pd();
        src[r] = fmt != F32 ? buf + r * bstride : (const float *)xr[r];
        srcd[r] = (const double *)xr[r];
    }
#define V4_LOAD(r, J, K)                                                                                          \
    (fmt == F64 ? ((K) == 0xff ? _mm512_loadu_pd(srcd[r] + (J)) : _mm512_maskz_loadu_pd((K), srcd[r] + (J)))     \
                : _mm512_cvtps_pd((K) == 0xff ? _mm256_loadu_ps(src[r] + (J)) : _mm256_maskz_loadu_ps((K), src[r] + (J))))
#define V4_EXP(r, J, K, EXACT, OUT)                                                                                \
    do {                                                                                                          \
        __m512d v_ = V4_LOAD(r, J, K);                                                                            \
        __m512d d_ = _mm512_sub_pd(v_, vm[r]), lo_ = d_;                                                          \
        if (!(EXACT)) { /* TwoSum(x, −m): d + lo = x − m exactly */                                               \
            __m512d t_ = _mm512_sub_pd(d_, v_);                                                                   \
            lo_ = _mm512_sub_pd(_mm512_sub_pd(v_, _mm512_sub_pd(d_, t_)), _mm512_add_pd(vm[r], t_));              \
        }                                                                                                         \
        OUT = exp8_v4(d_, lo_, !(EXACT), &T, (K));                                                                \
    } while (0)
/* the first maximum's own 1 is left out (log1p adds it back exactly) */
#define V4_KEEP(r, J) ((J) == jc[r] ? jb[r] : (__mmask8)0xff)
#define V4_LOOP(EXACT)                                                                                            \
    for (j = 0; j + 16 <= c8; j += 16) {                                                                          \
        for (Py_ssize_t l_ = 0; l_ < per; l_++) /* the next rows, towards the cache, while this pass computes */ \
            if (pf < pf_end) {                                                                                    \
                if (R > 1) _mm_prefetch(pf, _MM_HINT_T0); else _mm_prefetch(pf, _MM_HINT_T1);                     \
                pf += 64;                                                                                         \
            }                                                                                                     \
        for (int r = 0; r < R; r++) { /* two chunks added plainly, then TwoSum */                                \
            __m512d e1_, e2_;                                                                                     \
            V4_EXP(r, j, V4_KEEP(r, j), EXACT, e1_);                                                              \
            V4_EXP(r, j + 8, V4_KEEP(r, j + 8), EXACT, e2_);                                                      \
            twosum8_v4(&acc[r], &comp[r], _mm512_add_pd(e1_, e2_));                                               \
        }                                                                                                         \
    }                                                                                                             \
    for (; j < c; j += 8)                                                                                         \
        for (int r = 0; r < R; r++) {                                                                             \
            __mmask8 k_ = V4_KEEP(r, j);                                                                          \
            if (c - j < 8) k_ &= (__mmask8)((1u << (c - j)) - 1);                                                 \
            __m512d e_;                                                                                           \
            V4_EXP(r, j, k_, EXACT, e_);                                                                          \
            twosum8_v4(&acc[r], &comp[r], e_);                                                                    \
        }
    /* Pass 1 of the next rows reads memory that nothing has asked for yet (the hardware prefetchers
       follow demand misses, and pass 2 makes none): spread prefetches of the next rows' lines over
       this pass 2. */
    const char *pf = next, *pf_end = next + next_bytes;
    const Py_ssize_t iters = c8 / 16, per = iters > 0 ? (next_bytes / 64 + iters) / iters : 0;
    Py_ssize_t j;
    if (exact) {
        V4_LOOP(1)
    } else {
        V4_LOOP(0)
    }
#undef V4_LOOP
#undef V4_KEEP
#undef V4_EXP
#undef V4_LOAD
    for (int r = 0; r < R; r++) {
        m_out[r] = m[r];
        lanes_dd_v4(acc[r], comp[r], &s_hi[r], &s_lo[r]);
    }
}

/* log1p(s_hi + s_lo) into s_hi, eight rows at a time (NaN passes through): vlog1p_acc with
   s_lo added to its exact correction term of 1 + x. */
V4INLINE __m512d vlog1p_dd_v4(v8d x, v8d xlo) {
    v8d u = x + 1.0;
    v8d bb = u - x;
    v8d c = ((1.0 - (u - bb)) + (x - bb)) + xlo; /* 1 + x + xlo = u + c */
    v8l ub = (v8l)u;
    v8l k = (ub >> 52) - 1023;
    v8l mant = ub & 0x000fffffffffffffLL;
    v8l big = mant > 0x6a09e667f3bccLL;
    k = k + (big & 1);
    v8l fb = mant | ((lsplat(0x3fe0000000000000LL) & big) | (lsplat(0x3ff0000000000000LL) & ~big));
    v8d f = (v8d)fb - 1.0;
    v8l small = (k == 0); /* 1 + x < √2: f = x exactly, the correction is xlo alone */
    f = vselect(small, x, f);
    c = vselect(small, xlo, c / u);
    v8d kf = __builtin_convertvector(k, v8d);
    v8d fhi = (v8d)((v8l)f & (int64_t)0xfffffffff8000000ULL), flo = f - fhi;
    v8d hh = 0.5 * (f * f);
    v8d hl = ((0.5 * (fhi * fhi) - hh) + fhi * flo) + 0.5 * (flo * flo);
    v8d s = f / (2.0 + f);
    v8d z = s * s;
    v8d R = z * (LP1 + z * (LP2 + z * (LP3 + z * (LP4 + z * (LP5 + z * (LP6 + z * LP7))))));
    v8d T = s * (hh + R);
    v8d a = f - hh, ab = a - f;
    v8d ae = (f - (a - ab)) - (hh + ab);
    v8d K = kf * LN2_HI;
    v8d h = K + a, hb = h - K;
    v8d he = (K - (h - hb)) + (a - hb);
    return (__m512d)(h + (he + (((ae - hl) + T) + (kf * LN2_LO + c))));
}

V4INLINE void log1p_dd_array_v4(double *s, const double *slo, Py_ssize_t n) {
    for (Py_ssize_t i = 0; i < n; i += 8) {
        const __mmask8 k = n - i >= 8 ? 0xff : (__mmask8)((1u << (n - i)) - 1);
        __m512d v = _mm512_maskz_loadu_pd(k, s + i), lo = _mm512_maskz_loadu_pd(k, slo + i);
        const __mmask8 nan = _mm512_cmp_pd_mask(v, v, _CMP_UNORD_Q);
        __m512d r = vlog1p_dd_v4((v8d)_mm512_mask_mov_pd(v, nan, _mm512_setzero_pd()),
                                 (v8d)_mm512_mask_mov_pd(lo, nan, _mm512_setzero_pd()));
        _mm512_mask_storeu_pd(s + i, k, _mm512_mask_mov_pd(r, nan, v));
    }
}

/* k rows of a block (row i at x + (i0 + i)·c entries, c ≥ 16, any format): m[i] and
   L[i] = log1p(Σ_{j≠argmax} exp(x_j − m)) (NaN for a row whose log-softmax is NaN).
   ``slo``: k doubles of scratch; ``row``: c + 8 doubles (logits_row_wide's); ``buf``:
   V4_ROWS·(c + 16) floats. */
static V4 __attribute__((noinline)) void logits_chunk_v4(const char *x, int fmt, Py_ssize_t i0, Py_ssize_t k,
                                                         Py_ssize_t c, double *L, double *slo, double *m,
                                                         scan_counts *cnt, double *row, float *buf) {
    const Py_ssize_t isz = ITEMSIZE[fmt];
    const int R = c > V4_LONG ? 1 : V4_ROWS;
    int status[V4_ROWS];
    Py_ssize_t i = 0;
    while (i < k) {
        const int g = k - i < R ? 1 : R; /* R and 1: constants in each instance (registers, unrolled loops) */
        const char *xr[V4_ROWS];
        for (int r = 0; r < g; r++) xr[r] = x + (i0 + i + r) * c * isz;
        const Py_ssize_t after = k - i - g; /* rows left in this chunk after the group */
        const char *nx = x + (i0 + i + g) * c * isz;
        const Py_ssize_t nb = (after < R ? after : R) * c * isz;
#define V4_ROWS_OF(G)                                                                                             \
        switch (fmt) { /* and the format */                                                                       \
        case F64: rows_v4(xr, G, c, F64, buf, m + i, L + i, slo + i, status, nx, nb); break;                               \
        case F32: rows_v4(xr, G, c, F32, buf, m + i, L + i, slo + i, status, nx, nb); break;                               \
        case BF16: rows_v4(xr, G, c, BF16, buf, m + i, L + i, slo + i, status, nx, nb); break;                             \
        default: rows_v4(xr, G, c, F16, buf, m + i, L + i, slo + i, status, nx, nb); break;                                \
        }
        if (g == V4_ROWS) {
            V4_ROWS_OF(V4_ROWS)
        } else {
            V4_ROWS_OF(1)
        }
#undef V4_ROWS_OF
        for (int r = 0; r < g; r++)
            if (status[r]) { /* NaN, ±inf or huge entries: the general row kernel */
                slo[i + r] = 0.0;
                logits_row_wide(x, (i0 + i + r) * c, c, fmt, &L[i + r], &m[i + r], cnt, row);
            }
        i += g;
    }
    log1p_dd_array_v4(L, slo, k);
}

static int v4_level = -1; /* 1: logits_chunk_v4 runs (the CPU has x86-64-v4 and it is not switched off) */
static int v4_supported(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("x86-64-v4") ? 1 : 0;
}
static int use_v4(void) {
    if (v4_level < 0) v4_level = v4_supported();
    return v4_level;
}
#else
static int v4_level = 0;
static int v4_supported(void) { return 0; }
static int use_v4(void) { return v4_level; }
#endif

/* log_probs rows: only the non-finite scan (the value is −w·x_y). */
INLINE void scan_row(const char *x, Py_ssize_t i0, Py_ssize_t c, int fmt, scan_counts *cnt) {
    const Py_ssize_t full = c / 8 * 8;
    v8d nf = vsplat(0.0);
    for (Py_ssize_t j = 0; j < full; j += 8) {
        v8d v = load8(x, i0 + j, fmt);
        nf += v - v;
    }
    double nfs = 0.0;
    for (int l = 0; l < 8; l++) nfs += nf[l];
    for (Py_ssize_t j = full; j < c; j++) {
        double v = load1(x, i0 + j, fmt);
        nfs += v - v;
    }
    if (nfs != 0.0) classify_row(x, i0, c, fmt, cnt);
}

/* lossctl.exactsum's accumulator state: bins 0..67 hold the finite sum as Σ_k bin[k]·2^(32k−1074),
   then the counts of NaN, +inf, −inf, terms, and of values that are not −0.0. */
enum { NBINS = 68, ST_NAN = 68, ST_POS_INF = 69, ST_NEG_INF = 70, ST_TERMS = 71, ST_NOT_NEG_ZERO = 72, STATE_SIZE = 73 };

/* Add one float64 exactly: its integer significand m·2^shift (units of 2^−1074), cut into the
   32-bit chunks of bins k, k+1, k+2 (each addition below 2^32: a block may add 2^30 values). */
INLINE void exact_add(int64_t *st, double v) {
    uint64_t b;
    memcpy(&b, &v, 8);
    uint64_t e = (b >> 52) & 0x7ff, f = b & 0xfffffffffffffULL;
    if (e == 0x7ff) {
        st[f ? ST_NAN : (b >> 63) ? ST_NEG_INF : ST_POS_INF]++;
        return;
    }
    st[ST_NOT_NEG_ZERO] += (b != 0x8000000000000000ULL);
    uint64_t m = e ? (f | (1ULL << 52)) : f;
    unsigned shift = e ? (unsigned)e - 1 : 0, k = shift >> 5;
    unsigned __int128 w = (unsigned __int128)m << (shift & 31);
    int64_t sg = 1 - 2 * (int64_t)(b >> 63);
    st[k] += sg * (int64_t)(uint64_t)(w & 0xffffffffu);
    st[k + 1] += sg * (int64_t)(uint64_t)((w >> 32) & 0xffffffffu);
    st[k + 2] += sg * (int64_t)(uint64_t)(w >> 64);
}

/* Σ a into ``st`` exactly, value by value (two interleaved partial states: consecutive values of
   one magnitude do not wait on each other's bin updates). */
INLINE void exact_array_each(int64_t *st, const double *a, Py_ssize_t n) {
    int64_t other[STATE_SIZE];
    memset(other, 0, sizeof other);
    Py_ssize_t i = 0;
    for (; i + 2 <= n; i += 2) {
        exact_add(st, a[i]);
        exact_add(other, a[i + 1]);
    }
    if (i < n) exact_add(st, a[i]);
    for (int k = 0; k < STATE_SIZE; k++) st[k] += other[k];
    st[ST_TERMS] += n;
}

/* Σ a into ``st`` exactly, with ``r`` (n doubles) as scratch. Rump–Ogita–Oishi extraction:
   with σ = 2^s ≥ 2·n·max|r|, q = (σ + r) − σ is r rounded to a multiple of 2^(s−52), Σ q is exact
   in any order (|Σ q| ≤ σ/2) and r − q is exact; each sweep peels ~52 − log2 2n bits off every
   value; after four, the few values with bits left go in one by one. */
INLINE void exact_array(int64_t *st, const double *a, Py_ssize_t n, double *r) {
    v8d vbig = vsplat(0.0);
    v8l vnf = lsplat(0), vnz = lsplat(0);
    Py_ssize_t i = 0;
    for (; i + 8 <= n; i += 8) { /* finite values to r, max |r|; any non-finite, any not −0.0 */
        v8d v;
        memcpy(&v, a + i, 64);
        v8l fin = v - v == 0.0;
        vnf |= ~fin;
        vnz |= (v8l)v != (int64_t)0x8000000000000000ULL;
        v8d f = (v8d)((v8l)v & fin);
        memcpy(r + i, &f, 64);
        v8d af = (v8d)((v8l)f & 0x7fffffffffffffffLL);
        vbig = vselect(vbig < af, af, vbig);
    }
    double big = 0.0;
    int64_t nf = 0, nz = 0;
    for (int l = 0; l < 8; l++) {
        big = vbig[l] > big ? vbig[l] : big;
        nf |= vnf[l];
        nz |= vnz[l];
    }
    for (; i < n; i++) {
        uint64_t b;
        memcpy(&b, a + i, 8);
        nz |= b != 0x8000000000000000ULL;
        nf |= !is_finite(a[i]);
        r[i] = is_finite(a[i]) ? a[i] : 0.0;
        big = fabs(r[i]) > big ? fabs(r[i]) : big;
    }
    if (nf)
        for (i = 0; i < n; i++)
            if (!is_finite(a[i])) exact_add(st, a[i]); /* NaN/±inf: counted */
    nz = nz != 0;
    st[ST_NOT_NEG_ZERO] += nz;
    st[ST_TERMS] += n;
    int width = 1;
    while (((Py_ssize_t)1 << (width - 1)) < n) width++; /* 2^width ≥ 2n */
    for (int sweep = 0; sweep < 4 && big != 0.0; sweep++) {
        int e;
        frexp(big, &e);
        int sx = e + width < -1021 ? -1021 : e + width;
        if (sx > 1023) break;
        const double sigma = ldexp(1.0, sx);
        const v8d vs = vsplat(sigma);
        v8d acc = vsplat(0.0), vmax = vsplat(0.0);
        double tail = 0.0, tmax = 0.0;
        for (i = 0; i + 8 <= n; i += 8) {
            v8d v;
            memcpy(&v, r + i, 64);
            v8d q = (v + vs) - vs;
            v = v - q;
            memcpy(r + i, &v, 64);
            acc += q;
            v8d av = (v8d)((v8l)v & 0x7fffffffffffffffLL);
            vmax = vselect(vmax < av, av, vmax);
        }
        for (; i < n; i++) {
            double q = (r[i] + sigma) - sigma;
            r[i] -= q;
            tail += q;
            tmax = fabs(r[i]) > tmax ? fabs(r[i]) : tmax;
        }
        double t = tail;
        for (int l = 0; l < 8; l++) t += acc[l]; /* multiples of 2^(s−52), |Σ| ≤ σ/2: exact */
        if (t != 0.0) exact_add(st, t);
        big = tmax;
        for (int l = 0; l < 8; l++) big = vmax[l] > big ? vmax[l] : big;
    }
    if (big != 0.0)
        for (i = 0; i < n; i++)
            if (r[i] != 0.0) exact_add(st, r[i]);
    /* exact_add counted each extracted sum and remainder as a value that is not −0.0: harmless
       (there was one, or nothing was extracted) */
}

typedef struct {
    int64_t *total, *den; /* exact-sum states (may be NULL) */
    scan_counts cnt;
    int bad_target; /* a target that is neither a class index nor ignore_index */
} block_sums;

/* Rows per chunk: a chunk's scratch and values stay in the first-level cache while its row
   statistics, log1p, per-sample values and exact sums are computed one after the other. */
enum { CHUNK = 512 };

enum { V4_ROWS_MAX = 4 }; /* V4_ROWS */
/* Scratch of the AVX-512 rows (logits_chunk_v4), and whether they run on this CPU. */
typedef struct {
    int v4;
    double *slo; /* CHUNK doubles */
    float *buf;  /* V4_ROWS·(c + 16) floats */
} ce_scratch;

/* The whole block, a chunk of rows at a time. ``s`` and ``m``: scratch of CHUNK doubles each;
   ``row``: c + 8 doubles. */
INLINE void ce_block_fmt(const char *x, int fmt, Py_ssize_t n, Py_ssize_t c, const int64_t *target,
                         const double *weight, int64_t ignore, int log_probs, double *out, double *s, double *m,
                         double *row, const ce_scratch *xs, block_sums *res) {
    scan_counts cnt = {0, 0};
    Py_ssize_t valid = 0;
    const int v4 = xs->v4 && !log_probs && c >= 16 && c <= INT32_MAX;
    for (Py_ssize_t i0 = 0; i0 < n; i0 += CHUNK) {
        const Py_ssize_t k = n - i0 < CHUNK ? n - i0 : CHUNK;
        if (log_probs) {
            for (Py_ssize_t i = 0; i < k; i++) scan_row(x, (i0 + i) * c, c, fmt, &cnt);
#if HAVE_F16C
        } else if (v4) { /* AVX-512: m and log1p(s) */
            logits_chunk_v4(x, fmt, i0, k, c, s, xs->slo, m, &cnt, row, xs->buf);
#endif
        } else if (c >= 8) {
            for (Py_ssize_t i = 0; i < k; i++) logits_row_wide(x, (i0 + i) * c, c, fmt, &s[i], &m[i], &cnt, row);
        } else {
            int status[8];
            for (Py_ssize_t i = 0; i < k; i += 8)
                logits_rows_narrow(x, i0 + i, k - i < 8 ? k - i : 8, c, fmt, &s[i], &m[i], status, &cnt);
        }
        /* eight rows at a time, to ~0.55 ulp (libm's log1p is off by up to an ulp, e.g. at log 3) */
        if (!log_probs && !v4) log1p_array(s, k);
        double *wn = s; /* log1p(s) is used up row by row: the same scratch takes w[y_n] */
        double *o = out + i0;
        const int64_t *tg = target + i0;
        for (Py_ssize_t i = 0; i < k; i++) {
            int64_t y = tg[i];
            double v, w;
            if (y == ignore) {
                v = 0.0;
                w = 0.0;
            } else if ((uint64_t)y >= (uint64_t)c) { /* not a class index: the caller raises */
                res->bad_target = 1;
                v = w = NAN;
            } else {
                double xy = load1(x, (i0 + i) * c + y, fmt), picked;
                if (log_probs) {
                    picked = xy;
                } else {
                    double mi = m[i], L = s[i];
                    double dy = xy - mi, t = dy - xy;
                    double lo = (xy - (dy - t)) - (mi + t);
                    if (!is_finite(lo)) lo = 0.0;
                    picked = (dy - L) + lo;
                }
                w = weight ? weight[y] : 1.0;
                v = -w * picked;
                valid++;
            }
            o[i] = v;
            wn[i] = w;
        }
        if (res->total) exact_array(res->total, o, k, m); /* m: free scratch by now */
        if (res->den && weight) exact_array(res->den, wn, k, m);
    }
    if (res->den && !weight && n > 0) { /* every w[y_n] is 1 or 0 (ignored): their sum is the count of 1s */
        exact_add(res->den, (double)valid);
        res->den[ST_TERMS] += n;
    }
    res->cnt = cnt;
}

/* One specialisation per input format (the format is a constant inside each). */
CLONES
static void ce_block(const char *x, int fmt, Py_ssize_t n, Py_ssize_t c, const int64_t *target, const double *weight,
                     int64_t ignore, int log_probs, double *out, double *s, double *m, double *row, const ce_scratch *xs, block_sums *res) {
    switch (fmt) {
    case F64: ce_block_fmt(x, F64, n, c, target, weight, ignore, log_probs, out, s, m, row, xs, res); break;
    case F32: ce_block_fmt(x, F32, n, c, target, weight, ignore, log_probs, out, s, m, row, xs, res); break;
    case F16: ce_block_fmt(x, F16, n, c, target, weight, ignore, log_probs, out, s, m, row, xs, res); break;
    default: ce_block_fmt(x, BF16, n, c, target, weight, ignore, log_probs, out, s, m, row, xs, res); break;
    }
}

/* (m, s) of each row of a block of logits (row r at x + r·stride entries, c ≥ 8 contiguous
   entries): m = max, s = Σ_{j≠argmax} exp(x_j − m) (compensated) — the running log-sum-exp
   state of lossctl.losses.online_softmax. Rows with NaN, +inf or only −inf are flagged (the
   caller recomputes the block its own way); returns how many. */
INLINE Py_ssize_t stats_block_fmt(const char *x, int fmt, Py_ssize_t n, Py_ssize_t c, Py_ssize_t stride, double *m,
                                  double *s, double *row) {
    scan_counts cnt = {0, 0};
    Py_ssize_t flagged = 0;
    for (Py_ssize_t i = 0; i < n; i++)
        flagged += logits_row_wide(x, i * stride, c, fmt, &s[i], &m[i], &cnt, row) == ROW_NAN;
    return flagged + cnt.bad_rows;
}

CLONES
static Py_ssize_t stats_block(const char *x, int fmt, Py_ssize_t n, Py_ssize_t c, Py_ssize_t stride, double *m,
                              double *s, double *row) {
    switch (fmt) {
    case F64: return stats_block_fmt(x, F64, n, c, stride, m, s, row);
    case F32: return stats_block_fmt(x, F32, n, c, stride, m, s, row);
    case F16: return stats_block_fmt(x, F16, n, c, stride, m, s, row);
    default: return stats_block_fmt(x, BF16, n, c, stride, m, s, row);
    }
}

/* float16 through F16C: the same kernels instantiated for the F16C format, in functions compiled
   for x86-64-v4 and -v3 (both have F16C); chosen at run time when the CPU has them. The numbers
   are those of the integer widening (both exact). */
#if HAVE_F16C
__attribute__((target("arch=x86-64-v4"))) static void ce_block_f16c_v4(
    const char *x, Py_ssize_t n, Py_ssize_t c, const int64_t *target, const double *weight, int64_t ignore,
    int log_probs, double *out, double *s, double *m, double *row, const ce_scratch *xs, block_sums *res) {
    ce_block_fmt(x, F16C, n, c, target, weight, ignore, log_probs, out, s, m, row, xs, res);
}
__attribute__((target("arch=x86-64-v3"))) static void ce_block_f16c_v3(
    const char *x, Py_ssize_t n, Py_ssize_t c, const int64_t *target, const double *weight, int64_t ignore,
    int log_probs, double *out, double *s, double *m, double *row, const ce_scratch *xs, block_sums *res) {
    ce_block_fmt(x, F16C, n, c, target, weight, ignore, log_probs, out, s, m, row, xs, res);
}
__attribute__((target("arch=x86-64-v4"))) static Py_ssize_t stats_block_f16c_v4(
    const char *x, Py_ssize_t n, Py_ssize_t c, Py_ssize_t stride, double *m, double *s, double *row) {
    return stats_block_fmt(x, F16C, n, c, stride, m, s, row);
}
__attribute__((target("arch=x86-64-v3"))) static Py_ssize_t stats_block_f16c_v3(
    const char *x, Py_ssize_t n, Py_ssize_t c, Py_ssize_t stride, double *m, double *s, double *row) {
    return stats_block_fmt(x, F16C, n, c, stride, m, s, row);
}
#endif

/* 4: x86-64-v4 (F16C with AVX-512), 3: x86-64-v3 (F16C with AVX2), 0: no F16C path */
static int f16c_level(void) {
#if HAVE_F16C
    __builtin_cpu_init();
    if (__builtin_cpu_supports("x86-64-v4")) return 4;
    if (__builtin_cpu_supports("x86-64-v3")) return 3;
#endif
    return 0;
}

static void ce_block_any(const char *x, int fmt, Py_ssize_t n, Py_ssize_t c, const int64_t *target, const double *weight,
                         int64_t ignore, int log_probs, double *out, double *s, double *m, double *row, const ce_scratch *xs, block_sums *res) {
#if HAVE_F16C
    static int level = -1;
    if (fmt == F16 && level < 0) level = f16c_level();
    if (fmt == F16 && level == 4) { ce_block_f16c_v4(x, n, c, target, weight, ignore, log_probs, out, s, m, row, xs, res); return; }
    if (fmt == F16 && level == 3) { ce_block_f16c_v3(x, n, c, target, weight, ignore, log_probs, out, s, m, row, xs, res); return; }
#endif
    ce_block(x, fmt, n, c, target, weight, ignore, log_probs, out, s, m, row, xs, res);
}

static Py_ssize_t stats_block_any(const char *x, int fmt, Py_ssize_t n, Py_ssize_t c, Py_ssize_t stride, double *m,
                                  double *s, double *row) {
#if HAVE_F16C
    static int level = -1;
    if (fmt == F16 && level < 0) level = f16c_level();
    if (fmt == F16 && level == 4) return stats_block_f16c_v4(x, n, c, stride, m, s, row);
    if (fmt == F16 && level == 3) return stats_block_f16c_v3(x, n, c, stride, m, s, row);
#endif
    return stats_block(x, fmt, n, c, stride, m, s, row);
}

/* ---------------------------------------------------------------------------------------- */
/* binary cross-entropy with logits, elementwise                                            */

/* softplus(z) and softplus(−z) from one exp and one log1p: max(±z, 0) + log1p(exp(−|z|)). */
INLINE void bce_block_fmt(const char *z, int fmt, Py_ssize_t n, const double *y, const double *w,
                          Py_ssize_t w_period, const double *pw, Py_ssize_t pw_period, double *out, block_sums *res) {
    scan_counts cnt = {0, 0};
    const Py_ssize_t full = n / 8 * 8;
    for (Py_ssize_t i = 0; i < n; i += 8) {
        Py_ssize_t count = i < full ? 8 : n - i;
        v8d v = i < full ? load8(z, i, fmt) : load_tail(z, i, count, fmt, 0.0);
        v8d absz = (v8d)((v8l)v & 0x7fffffffffffffffLL);
        v8l nan = v != v;
        double lw[8]; /* log1p(exp(−|z|)) with libm's exp and log1p, as NumPy computes it */
        for (int k = 0; k < 8; k++) lw[k] = log1p(exp(-fabs(v[k])));
        (void)absz;
        (void)nan;
        for (Py_ssize_t k = 0; k < count; k++) {
            Py_ssize_t idx = i + k;
            double zz = v[k];
            double yy = y[idx];
            double sp_pos, sp_neg; /* softplus(z), softplus(−z) */
            if (zz != zz) {
                sp_pos = sp_neg = zz;
                cnt.bad_rows++;
            } else {
                sp_pos = (zz > 0 ? zz : 0.0) + lw[k];
                sp_neg = (-zz > 0 ? -zz : 0.0) + lw[k];
                if (zz == INFINITY) cnt.bad_rows++;
                else if (zz == -INFINITY) cnt.neginf_rows++;
            }
            double pwy = pw ? pw[idx % pw_period] * yy : yy;
            double ww = w ? w[idx % w_period] : 1.0;
            double val = ww * (pwy * sp_neg + (1.0 - yy) * sp_pos);
            out[idx] = val;
        }
    }
    if (res->total) exact_array_each(res->total, out, n);
    res->cnt = cnt;
}

CLONES
static void bce_block(const char *z, int fmt, Py_ssize_t n, const double *y, const double *w, Py_ssize_t w_period,
                      const double *pw, Py_ssize_t pw_period, double *out, block_sums *res) {
    switch (fmt) {
    case F64: bce_block_fmt(z, F64, n, y, w, w_period, pw, pw_period, out, res); break;
    case F32: bce_block_fmt(z, F32, n, y, w, w_period, pw, pw_period, out, res); break;
    case F16: bce_block_fmt(z, F16, n, y, w, w_period, pw, pw_period, out, res); break;
    default: bce_block_fmt(z, BF16, n, y, w, w_period, pw, pw_period, out, res); break;
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Python bindings                                                                          */

static int get_buffer(PyObject *obj, Py_buffer *view, int writable, Py_ssize_t min_bytes, const char *what) {
    if (PyObject_GetBuffer(obj, view, (writable ? PyBUF_WRITABLE : PyBUF_SIMPLE) | PyBUF_C_CONTIGUOUS) < 0)
        return -1;
    if (view->len < min_bytes) {
        PyErr_Format(PyExc_ValueError, "%s: %zd bytes, need %zd", what, view->len, min_bytes);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

static PyObject *counts_tuple(const block_sums *r) {
    return Py_BuildValue("(nn)", r->cnt.bad_rows, r->cnt.neginf_rows);
}

/* An optional writable int64 state buffer (None: not wanted). */
static int get_state(PyObject *obj, Py_buffer *view, int64_t **out) {
    *out = NULL;
    if (obj == Py_None) return 0;
    if (get_buffer(obj, view, 1, STATE_SIZE * 8, "state") < 0) return -1;
    *out = (int64_t *)view->buf;
    return 1;
}

PyDoc_STRVAR(ce_doc,
"ce_rows(x, fmt, n, c, target, weight, ignore_index, log_probs, out, total, den)\n--\n\n"
"Cross-entropy (log_probs=0: x are logits) or NLL (log_probs=1) of n rows of c classes.\n"
"x: C-contiguous (n, c) in format fmt (0 float64, 1 float32, 2 float16, 3 bfloat16 bits);\n"
"target: n int64 class indices (in range, or ignore_index); weight: c float64 class weights\n"
"or None; out: n float64, receives l_n = -w[y]·log p_y (0 where y = ignore_index).\n"
"total, den: lossctl.exactsum states (int64[73], or None) that Σ l_n and Σ w[y_n] are added\n"
"into exactly (not normalised). Returns (rows with NaN/+inf, rows with -inf).");

static PyObject *py_ce_rows(PyObject *self, PyObject *args) {
    PyObject *xo, *to, *wo, *oo, *so, *do_;
    int fmt, log_probs;
    Py_ssize_t n, c;
    long long ignore;
    if (!PyArg_ParseTuple(args, "OinnOOLpOOO", &xo, &fmt, &n, &c, &to, &wo, &ignore, &log_probs, &oo, &so, &do_))
        return NULL;
    if (fmt < 0 || fmt > 3 || n < 0 || c < 1) {
        PyErr_SetString(PyExc_ValueError, "bad format or shape");
        return NULL;
    }
    Py_buffer xb, tb, wb, ob, sb, db;
    int have_w = wo != Py_None, have_s = 0, have_d = 0;
    block_sums res;
    memset(&res, 0, sizeof res);
    if (get_buffer(xo, &xb, 0, n * c * ITEMSIZE[fmt], "x") < 0) return NULL;
    if (get_buffer(to, &tb, 0, n * 8, "target") < 0) goto fail_x;
    if (have_w && get_buffer(wo, &wb, 0, c * 8, "weight") < 0) goto fail_t;
    if (get_buffer(oo, &ob, 1, n * 8, "out") < 0) goto fail_w;
    if ((have_s = get_state(so, &sb, &res.total)) < 0) goto fail_o;
    if ((have_d = get_state(do_, &db, &res.den)) < 0) goto fail_s;
    const int64_t *t = (const int64_t *)tb.buf;
    int ok = 1;
    double *scratch = NULL;
    ce_scratch xs = {use_v4(), NULL, NULL};
    if (ok && n > 0) { /* s, m, s_lo, one row (c + 8), the AVX-512 rows' float buffer */
        scratch = (double *)malloc(sizeof(double) * (size_t)(3 * CHUNK + c + 8) + sizeof(float) * (size_t)(V4_ROWS_MAX * (c + 16)));
        if (!scratch) ok = -1;
    }
    if (ok == 1 && n > 0) {
        xs.slo = scratch + 2 * CHUNK + c + 8;
        xs.buf = (float *)(scratch + 3 * CHUNK + c + 8);
        Py_BEGIN_ALLOW_THREADS
        ce_block_any((const char *)xb.buf, fmt, n, c, t, have_w ? (const double *)wb.buf : NULL, (int64_t)ignore, log_probs,
                 (double *)ob.buf, scratch, scratch + CHUNK, scratch + 2 * CHUNK, &xs, &res);
        Py_END_ALLOW_THREADS
    }
    free(scratch);
    if (res.bad_target) ok = 0;
    if (have_d) PyBuffer_Release(&db);
    if (have_s) PyBuffer_Release(&sb);
    PyBuffer_Release(&ob);
    if (have_w) PyBuffer_Release(&wb);
    PyBuffer_Release(&tb);
    PyBuffer_Release(&xb);
    if (ok == 0) { PyErr_SetString(PyExc_ValueError, "class index out of range"); return NULL; }
    if (ok < 0) return PyErr_NoMemory();
    return counts_tuple(&res);
fail_s:
    if (have_s) PyBuffer_Release(&sb);
fail_o:
    PyBuffer_Release(&ob);
fail_w:
    if (have_w) PyBuffer_Release(&wb);
fail_t:
    PyBuffer_Release(&tb);
fail_x:
    PyBuffer_Release(&xb);
    return NULL;
}

PyDoc_STRVAR(bce_doc,
"bce_logits(z, fmt, n, y, weight, pos_weight, out, total)\n--\n\n"
"Binary cross-entropy with logits of n elements: l = w·[pw·y·softplus(−z) + (1−y)·softplus(z)].\n"
"z: n entries in format fmt; y: n float64; weight: float64, None, or a buffer whose length\n"
"divides n (element i takes weight[i % len]); pos_weight likewise; out: n float64;\n"
"total: an exactsum state or None. Returns (NaN/+inf count, -inf count).");

static PyObject *py_bce_logits(PyObject *self, PyObject *args) {
    PyObject *zo, *yo, *wo, *po, *oo, *so;
    int fmt;
    Py_ssize_t n;
    if (!PyArg_ParseTuple(args, "OinOOOOO", &zo, &fmt, &n, &yo, &wo, &po, &oo, &so)) return NULL;
    if (fmt < 0 || fmt > 3 || n < 0) {
        PyErr_SetString(PyExc_ValueError, "bad format or size");
        return NULL;
    }
    Py_buffer zb, yb, wb, pb, ob, sb;
    int have_w = wo != Py_None, have_p = po != Py_None, have_s = 0;
    block_sums res;
    memset(&res, 0, sizeof res);
    if (get_buffer(zo, &zb, 0, n * ITEMSIZE[fmt], "z") < 0) return NULL;
    if (get_buffer(yo, &yb, 0, n * 8, "y") < 0) goto fail_z;
    if (have_w && get_buffer(wo, &wb, 0, 8, "weight") < 0) goto fail_y;
    if (have_p && get_buffer(po, &pb, 0, 8, "pos_weight") < 0) goto fail_w;
    if (get_buffer(oo, &ob, 1, n * 8, "out") < 0) goto fail_p;
    if ((have_s = get_state(so, &sb, &res.total)) < 0) goto fail_o;
    Py_ssize_t wp = have_w ? wb.len / 8 : 1, pp = have_p ? pb.len / 8 : 1;
    int ok = (!have_w || n % wp == 0 || n == 0) && (!have_p || n % pp == 0 || n == 0);
    if (ok) {
        Py_BEGIN_ALLOW_THREADS
        bce_block((const char *)zb.buf, fmt, n, (const double *)yb.buf, have_w ? (const double *)wb.buf : NULL, wp,
                  have_p ? (const double *)pb.buf : NULL, pp, (double *)ob.buf, &res);
        Py_END_ALLOW_THREADS
    }
    if (have_s) PyBuffer_Release(&sb);
    PyBuffer_Release(&ob);
    if (have_p) PyBuffer_Release(&pb);
    if (have_w) PyBuffer_Release(&wb);
    PyBuffer_Release(&yb);
    PyBuffer_Release(&zb);
    if (!ok) { PyErr_SetString(PyExc_ValueError, "weight length does not divide n"); return NULL; }
    return counts_tuple(&res);
fail_o:
    PyBuffer_Release(&ob);
fail_p:
    if (have_p) PyBuffer_Release(&pb);
fail_w:
    if (have_w) PyBuffer_Release(&wb);
fail_y:
    PyBuffer_Release(&yb);
fail_z:
    PyBuffer_Release(&zb);
    return NULL;
}

PyDoc_STRVAR(stats_doc,
"row_stats(x, fmt, m, s)\n--\n\n"
"Per row of the 2-D block x (rows may be strided, entries contiguous, at least 8 columns;\n"
"fmt as for ce_rows): m = max, s = sum over j != argmax of exp(x_j - m), into the float64\n"
"buffers m and s. Returns the number of rows with NaN, +inf or only -inf (their m, s are\n"
"not meaningful: the caller recomputes such a block).");

static PyObject *py_row_stats(PyObject *self, PyObject *args) {
    PyObject *xo, *mo, *so;
    int fmt;
    if (!PyArg_ParseTuple(args, "OiOO", &xo, &fmt, &mo, &so)) return NULL;
    if (fmt < 0 || fmt > 3) {
        PyErr_SetString(PyExc_ValueError, "bad format");
        return NULL;
    }
    Py_buffer xb, mb, sb;
    if (PyObject_GetBuffer(xo, &xb, PyBUF_STRIDES) < 0) return NULL;
    Py_ssize_t isz = ITEMSIZE[fmt];
    if (xb.ndim != 2 || xb.strides[1] != isz || xb.strides[0] % isz != 0 || xb.strides[0] < xb.shape[1] * isz ||
        xb.shape[1] < 8 || xb.itemsize != isz) {
        PyBuffer_Release(&xb);
        PyErr_SetString(PyExc_ValueError, "x: a 2-D block of at least 8 contiguous columns, rows ascending");
        return NULL;
    }
    Py_ssize_t n = xb.shape[0], c = xb.shape[1], stride = xb.strides[0] / isz;
    if (get_buffer(mo, &mb, 1, n * 8, "m") < 0) { PyBuffer_Release(&xb); return NULL; }
    if (get_buffer(so, &sb, 1, n * 8, "s") < 0) { PyBuffer_Release(&mb); PyBuffer_Release(&xb); return NULL; }
    Py_ssize_t flagged = 0;
    double *row = (double *)malloc(sizeof(double) * (size_t)(c + 8));
    if (row && n > 0) {
        Py_BEGIN_ALLOW_THREADS
        flagged = stats_block_any((const char *)xb.buf, fmt, n, c, stride, (double *)mb.buf, (double *)sb.buf, row);
        Py_END_ALLOW_THREADS
    }
    free(row);
    PyBuffer_Release(&sb);
    PyBuffer_Release(&mb);
    PyBuffer_Release(&xb);
    if (!row) return PyErr_NoMemory();
    return PyLong_FromSsize_t(flagged);
}

PyDoc_STRVAR(avx512_doc,
"avx512(on=None)\n--\n\n"
"Whether ce_rows takes rows of logits through its AVX-512 kernel (only on CPUs that have it);\n"
"on=False/True switches it off/on for this process (the other kernels serve such rows then:\n"
"the same values to within a few ulp). For tests and benchmarks.");

static PyObject *py_avx512(PyObject *self, PyObject *args) {
    PyObject *on = Py_None;
    if (!PyArg_ParseTuple(args, "|O", &on)) return NULL;
    if (on != Py_None) {
        int want = PyObject_IsTrue(on);
        if (want < 0) return NULL;
        v4_level = want && v4_supported();
    }
    return PyBool_FromLong(use_v4());
}

static PyObject *py_isa(PyObject *self, PyObject *noargs) {
#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__) && !defined(LOSSCTL_NO_CLONES)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("x86-64-v4")) return PyUnicode_FromString("x86-64-v4 (AVX-512)");
    if (__builtin_cpu_supports("x86-64-v3")) return PyUnicode_FromString("x86-64-v3 (AVX2)");
    return PyUnicode_FromString("x86-64 (SSE2)");
#else
    return PyUnicode_FromString("portable C");
#endif
}

static PyMethodDef methods[] = {
    {"ce_rows", py_ce_rows, METH_VARARGS, ce_doc},
    {"bce_logits", py_bce_logits, METH_VARARGS, bce_doc},
    {"row_stats", py_row_stats, METH_VARARGS, stats_doc},
    {"isa", py_isa, METH_NOARGS, "The instruction set the kernels run with on this CPU."},
    {"avx512", py_avx512, METH_VARARGS, avx512_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef moduledef = {
    PyModuleDef_HEAD_INIT, "lossctl._kernels", "lossctl's compiled fused row kernels (see lossctl.kernels).", -1,
    methods,
};

PyMODINIT_FUNC PyInit__kernels(void) { return PyModule_Create(&moduledef); }
