/* The compiled CSV tokenizer of lossctl.io.compiled_csv: plain numeric tables, every cell
 * parsed correctly rounded (Clinger's exact fast path, else libc's strtod), on two threads
 * without the GIL. Kept apart from lossctl/_kernels.c (the loss kernels): readers know nothing
 * of losses. Arrays arrive through the buffer protocol (no NumPy headers at build time).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>


static const double POW10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* Eight ASCII digits at once (SWAR, little-endian loads): whether the 8 bytes at p are all
   digits, and their value. Most cells of a printed table carry 8 or more digits in a row, and a
   byte at a time costs a compare, a branch and a multiply-add each. */
static inline uint64_t load8(const char *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static inline int all_digits8(uint64_t v) {
    return ((v & 0xF0F0F0F0F0F0F0F0ULL) | (((v + 0x0606060606060606ULL) & 0xF0F0F0F0F0F0F0F0ULL) >> 4)) ==
           0x3333333333333333ULL;
}
static inline uint64_t digits8(uint64_t v) {
    v -= 0x3030303030303030ULL;
    v = v * 10 + (v >> 8);
    return (((v & 0x000000FF000000FFULL) * 0x000F424000000064ULL) +
            (((v >> 16) & 0x000000FF000000FFULL) * 0x0000271000000001ULL)) >> 32;
}
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define CSV_SWAR 1
#else
#define CSV_SWAR 0
#endif

/* One cell [+-]?(d+(.d*)?|.d+)([eE][+-]?d+)? starting at p and ending at ``delim`` or ``end``,
   as float64, correctly rounded: Clinger's fast path (at most 15 significant digits, |power of
   ten| ≤ 22: one exact integer, one exact power, one rounding) and libc's correctly rounded
   strtod otherwise. The cell's end, or NULL when it is not of that form (the whole table is
   then left to the caller). */
/* v with its sign bit set when neg (1) without a branch: a table's signs are as good as random,
   and a mispredicted branch there cost more than the rest of the cell. */
static inline double with_sign(double v, int neg) {
    uint64_t b;
    memcpy(&b, &v, 8);
    b |= (uint64_t)neg << 63;
    memcpy(&v, &b, 8);
    return v;
}

/* The cell [start, stop) by libc's correctly rounded strtod (cells longer than 1023 bytes are
   declined). Out of line: its buffer would otherwise give every cell a kilobyte stack frame. */
static __attribute__((noinline)) const char *parse_slow(const char *start, const char *stop, double *out) {
    char buf[1024];
    size_t len = (size_t)(stop - start);
    if (len >= sizeof buf) return NULL;
    memcpy(buf, start, len);
    buf[len] = 0;
    char *tail;
    *out = strtod(buf, &tail);
    return tail == buf + len ? stop : NULL;
}

static inline __attribute__((always_inline)) const char *parse_cell(const char *p, const char *end, char delim, double *out) {
    const char *start = p;
    int neg = 0;
    if (p < end && (*p == '+' || *p == '-')) neg = *p++ == '-';
    uint64_t m = 0;
    int digits = 0, any = 0, dropped = 0;
    long e10 = 0;
    while (p < end && *p == '0') { p++; any = 1; }
    /* leading zeros are gone, so every digit here is significant: 8 at a time while 19 fit */
    while (CSV_SWAR && digits <= 11 && end - p >= 8 && all_digits8(load8(p))) {
        m = m * 100000000u + digits8(load8(p));
        digits += 8; p += 8; any = 1;
    }
    while (p < end && (unsigned)(*p - '0') < 10) {
        if (digits < 19) m = m * 10 + (uint64_t)(*p - '0'); else dropped = 1, e10++;
        digits++; p++; any = 1;
    }
    if (p < end && *p == '.') {
        p++;
        if (digits == 0)
            while (p < end && *p == '0') { p++; e10--; any = 1; }
        while (CSV_SWAR && digits <= 11 && end - p >= 8 && all_digits8(load8(p))) {
            m = m * 100000000u + digits8(load8(p));
            digits += 8; e10 -= 8; p += 8; any = 1;
        }
        while (p < end && (unsigned)(*p - '0') < 10) {
            if (digits < 19) { m = m * 10 + (uint64_t)(*p - '0'); e10--; } else dropped = 1;
            digits++; p++; any = 1;
        }
    }
    if (!any) return NULL;
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        int eneg = 0;
        if (p < end && (*p == '+' || *p == '-')) eneg = *p++ == '-';
        if (p >= end || (unsigned)(*p - '0') >= 10) return NULL;
        long x = 0;
        while (p < end && (unsigned)(*p - '0') < 10) { if (x < 100000) x = x * 10 + (*p - '0'); p++; }
        e10 += eneg ? -x : x;
    }
    if (p != end && *p != delim) return NULL;
    double v;
    if (!dropped && m <= (UINT64_C(1) << 53) && e10 >= -22 && e10 <= 22) {
        v = (double)m;
        v = e10 < 0 ? v / POW10[-e10] : v * POW10[e10];
    } else if (m == 0 && !dropped) {
        v = 0.0;
    } else {
        return parse_slow(start, p, out);
    }
    *out = with_sign(v, neg);
    return p;
}

/* The value of 8 digits already less '0' (bytes 0..9, the first digit in the lowest byte). */
static inline uint64_t digits8_raw(uint64_t v) {
    v = v * 10 + (v >> 8);
    return (((v & 0x000000FF000000FFULL) * 0x000F424000000064ULL) +
            (((v >> 16) & 0x000000FF000000FFULL) * 0x0000271000000001ULL)) >> 32;
}

/* How many of the 8 bytes in w (lowest first) are digits before the first that is not (8: all). */
static inline int digit_run8(uint64_t w) {
    uint64_t x = ((w & 0xF0F0F0F0F0F0F0F0ULL) | (((w + 0x0606060606060606ULL) & 0xF0F0F0F0F0F0F0F0ULL) >> 4)) ^
                 0x3333333333333333ULL;
    /* a carry out of a non-digit byte can only disturb the bytes after it: the first is exact */
    return x ? __builtin_ctzll(x) >> 3 : 8;
}

/* The value of the first n (0..8) digits of w (lowest byte first): shifted up to the top bytes,
   zeros in front (the shift in two steps so that n = 0 gives 0 without a branch). */
static inline uint64_t tail_digits(uint64_t w, int n) {
    return digits8_raw(((w - 0x3030303030303030ULL) << (63 - 8 * n)) << 1);
}

static const uint64_t POW10_U[16] = {1ULL, 10ULL, 100ULL, 1000ULL, 10000ULL, 100000ULL, 1000000ULL, 10000000ULL,
                                     100000000ULL, 1000000000ULL, 10000000000ULL, 100000000000ULL,
                                     1000000000000ULL, 10000000000000ULL, 100000000000000ULL, 1000000000000000ULL};

/* The common cell -?D{1,7}(.F{0,15})? (at most 19 digits in all) ending at ``delim`` or
   ``line_end``, with 32 readable bytes from p: its digits read 8 at a time with no loop, then the
   same exact integer and one exact division by a power of ten as parse_cell's fast path (the
   integer at most 2^53, the power at most 1e15). The cell's end, or NULL: parse_cell decides
   (exponents, longer runs, anything else). */
static inline __attribute__((always_inline)) const char *fast_cell(const char *p, const char *line_end, char delim, double *out) {
    int neg = *p == '-';
    p += neg;
    uint64_t w = load8(p);
    int n1 = digit_run8(w);
    if (n1 == 0 || n1 == 8) return NULL;
    uint64_t m = tail_digits(w, n1);
    const char *q = p + n1;
    int n2 = 0;
    if (*q == '.') {
        q++;
        /* both 8-byte words are read and both readings computed, then one is chosen: whether a
           fraction has 8 digits or more is as good as random, and a branch on it mispredicts */
        uint64_t w2 = load8(q), w3 = load8(q + 8);
        int a = digit_run8(w2), b = digit_run8(w3);
        if (a == 8 && b == 8) return NULL;
        b -= b >> 3; /* 8 only when a < 8, where this reading is not chosen: keep the shift defined */
        uint64_t lo = tail_digits(w2, a);
        uint64_t hi = digits8_raw(w2 - 0x3030303030303030ULL) * POW10_U[b] + tail_digits(w3, b);
        int full = a == 8;
        n2 = full ? 8 + b : a;
        uint64_t f = full ? hi : lo;
        if (n1 + n2 > 19) return NULL;
        m = m * POW10_U[n2] + f;
        q += n2;
    }
    if (q != line_end && *q != delim) return NULL;
    if (m > (UINT64_C(1) << 53)) return NULL;
    *out = with_sign((double)m / POW10[n2], neg);
    return q;
}

/* Rows of ``cols`` cells from [p, end) into out (row-major), at most ``rows`` of them; blank lines
   (\n or \r\n alone) are skipped. The number of rows read, or −1: a cell that is not a plain number,
   a row of another width, a lone \r, or more rows than expected. */
static Py_ssize_t parse_rows(const char *p, const char *end, char delim, Py_ssize_t cols, double *out, Py_ssize_t rows) {
    Py_ssize_t r = 0;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *next = eol ? eol + 1 : end;
        if (!eol) eol = end;
        const char *line_end = (eol > p && eol[-1] == '\r') ? eol - 1 : eol;
        if (line_end == p) { p = next; continue; }
        if (r >= rows) return -1;
        double *o = out + r * cols;
        const char *c = p;
        for (Py_ssize_t j = 0; j < cols; j++) {
            const char *f = CSV_SWAR && end - c >= 32 ? fast_cell(c, line_end, delim, &o[j]) : NULL;
            c = f ? f : parse_cell(c, line_end, delim, &o[j]);
            if (!c) return -1;
            if (c == line_end) {
                if (j != cols - 1) return -1;
            } else if (j == cols - 1) {
                return -1; /* more cells than the first row */
            } else {
                c++; /* the separator */
            }
        }
        r++;
        p = next;
    }
    return r;
}

typedef struct {
    const char *p, *end;
    char delim;
    Py_ssize_t cols, rows, got;
    double *out;
} csv_part;

static void *parse_part(void *arg) {
    csv_part *t = (csv_part *)arg;
    t->got = parse_rows(t->p, t->end, t->delim, t->cols, t->out, t->rows);
    return NULL;
}

PyDoc_STRVAR(csv_doc,
"parse_csv(data, delimiter, cols, out, threads)\n--\n\n"
"The data rows of a plain numeric table (bytes, no header) into out, a C-contiguous float64\n"
"buffer of (rows, cols) with rows = the number of non-blank lines. Each cell is\n"
"[+-]digits[.digits][e[+-]digits], parsed correctly rounded. Returns the rows read, or -1 when\n"
"the text is not such a table (the caller reads it another way). threads: 1 or 2.");

static PyObject *py_parse_csv(PyObject *self, PyObject *args) {
    PyObject *data_o, *out_o;
    int delim, threads;
    Py_ssize_t cols;
    if (!PyArg_ParseTuple(args, "OCnOi", &data_o, &delim, &cols, &out_o, &threads)) return NULL;
    Py_buffer db, ob;
    if (PyObject_GetBuffer(data_o, &db, PyBUF_SIMPLE) < 0) return NULL;
    if (PyObject_GetBuffer(out_o, &ob, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) < 0) { PyBuffer_Release(&db); return NULL; }
    Py_ssize_t rows = cols > 0 ? ob.len / 8 / cols : 0, got = -1;
    const char *p = (const char *)db.buf, *end = p + db.len;
    Py_BEGIN_ALLOW_THREADS
    if (cols > 0) {
        /* two parts, split at a line break near the middle; the second part's first row index is
           the number of non-blank lines before it */
        const char *mid = threads > 1 && db.len > (1 << 20) ? memchr(p + db.len / 2, '\n', (size_t)(end - p - db.len / 2)) : NULL;
        if (!mid) {
            got = parse_rows(p, end, (char)delim, cols, (double *)ob.buf, rows);
        } else {
            mid++;
            Py_ssize_t before = 0;
            for (const char *q = p; q < mid;) {
                const char *eol = memchr(q, '\n', (size_t)(mid - q));
                const char *le = (eol > q && eol[-1] == '\r') ? eol - 1 : eol;
                before += le != q;
                q = eol + 1;
            }
            if (before <= rows) {
                csv_part a = {p, mid, (char)delim, cols, before, 0, (double *)ob.buf};
                csv_part b = {mid, end, (char)delim, cols, rows - before, 0, (double *)ob.buf + before * cols};
                pthread_t th;
                int started = pthread_create(&th, NULL, parse_part, &b) == 0;
                parse_part(&a);
                if (started) pthread_join(th, NULL); else parse_part(&b);
                got = (a.got == before && b.got >= 0) ? a.got + b.got : -1;
            }
        }
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&ob);
    PyBuffer_Release(&db);
    return PyLong_FromSsize_t(got);
}

static PyObject *py_count_lines(PyObject *self, PyObject *arg) {
    Py_buffer db;
    if (PyObject_GetBuffer(arg, &db, PyBUF_SIMPLE) < 0) return NULL;
    Py_ssize_t n = 1;
    const char *p = (const char *)db.buf, *end = p + db.len;
    Py_BEGIN_ALLOW_THREADS
    while ((p = memchr(p, '\n', (size_t)(end - p))) != NULL) { n++; p++; }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&db);
    return PyLong_FromSsize_t(n);
}

static PyMethodDef methods[] = {
    {"parse_csv", py_parse_csv, METH_VARARGS, csv_doc},
    {"count_lines", py_count_lines, METH_O, "count_lines(data): 1 + the number of line feeds in the bytes."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef moduledef = {
    PyModuleDef_HEAD_INIT, "lossctl.io._csv", "lossctl's compiled CSV tokenizer (see lossctl.io.compiled_csv).", -1,
    methods,
};

PyMODINIT_FUNC PyInit__csv(void) { return PyModule_Create(&moduledef); }
