"""Large CSV/TSV tables through the compiled tokenizer (lossctl.io.compiled_csv) and pyarrow
(lossctl.io.arrow_csv): the built-in reader's numbers bit for bit, its errors unchanged, and
every table they do not take left to it."""

from __future__ import annotations

import numpy as np
import pytest

from lossctl.errors import InputError
from lossctl.io import arrow_csv, compiled_csv, readers

CELLS = ["1.5", "-0", "0", "+1.5", " 1.5", "1.5 ", '"1.5"', "1e308", "1e309", "-1e309", "1e-400", "4.9e-324",
         "2.2250738585072011e-308", "nan", "NaN", "-nan", "inf", "-inf", "Infinity", "INF", ".5", "5.", "-.5", "0001",
         "1_0", "0x10", "1e", "", "1.5e+3", "1.5E-3", "123456789012345678901234567890",
         "0.1000000000000000055511151231257827", "1,5", "true", "1d3", "  ", "1;5", "-", "1.5.5", "1e5x", "1e+",
         "e5", "0.", "00.5e-0", "9007199254740993", "1e22", "1e23", "8.98846567431158e307", "1e-22", "1e-23"]


def run(f):
    try:
        return f(), None
    except InputError as e:
        return None, str(e)


def both_ways(text: str, delimiter: str, key=None):
    """(built-in result or error, fast result or error or None for 'declined')."""
    want = run(lambda: readers.parse_delimited(text, delimiter, key, "t.csv"))
    fast = run(lambda: readers._parse_delimited_fast(text.encode(), delimiter, key, "t.csv"))
    return want, fast


def assert_same(want, fast):
    (w, werr), (f, ferr) = want, fast
    if f is None and ferr is None:
        return "declined"
    assert ferr == werr
    if ferr is None:
        np.testing.assert_array_equal(f.view(np.uint64), w.view(np.uint64))
    return "read"


@pytest.fixture(params=["compiled", "pyarrow"])
def path(request, monkeypatch):
    if request.param == "pyarrow":  # the extension's tokenizer declines: pyarrow reads
        monkeypatch.setattr(compiled_csv, "_extension", lambda: None)
    else:
        monkeypatch.delenv("LOSSCTL_PURE", raising=False)
        assert compiled_csv._extension() is not None, "the C extension is not built"
        monkeypatch.setattr(arrow_csv, "read_numbers", lambda *a: None)  # what the tokenizer declines stays declined
    return request.param


@pytest.mark.parametrize("cell", CELLS)
def test_every_cell_spelling_reads_as_the_builtin_reader_or_is_left_to_it(path, cell):
    want, fast = both_ways(f"a,b\n{cell},2\n3,{cell}\n", ",")
    assert_same(want, fast)


def test_plain_numbers_bit_for_bit(path, rng):
    """Every way a float64 is commonly printed, TSV and CSV, CRLF, blank lines, a header or none,
    a column by name or index: the built-in reader's array bit for bit, read the fast way."""
    x = rng.standard_normal((400, 7)) * 10.0 ** rng.integers(-30, 30, (400, 7))
    x[0, 0], x[1, 1], x[2, 2], x[3, 3] = 5e-324, -0.0, 2.2250738585072014e-308, 1.7976931348623157e308
    for fmt in ("%.17g", "%.9g", "%.3e", "%r", "%.25f"):
        lines = [",".join((fmt % v) if fmt != "%r" else repr(float(v)) for v in row) for row in x]
        lines.insert(200, "")  # a blank line inside
        for header, eol, delim in (("a,b,c,d,e,f,g\n", "\n", ","), ("", "\r\n", ","), ("a\tb\tc\td\te\tf\tg\n", "\n", "\t")):
            text = header + eol.join(ln.replace(",", delim) for ln in lines) + eol
            want, fast = both_ways(text, delim)
            assert assert_same(want, fast) == "read", (fmt, header, eol)
            key = "c" if header else "2"
            assert assert_same(*both_ways(text, delim, key)) == "read"


def test_the_reader_takes_the_fast_path_for_large_files(path, tmp_path, rng, monkeypatch):
    x = rng.standard_normal((3000, 50))
    p = tmp_path / "big.csv"
    p.write_text(",".join(f"c{j}" for j in range(50)) + "\n" + "\n".join(",".join("%.9g" % v for v in r) for r in x) + "\n")
    assert p.stat().st_size >= readers.ARROW_CSV_MIN_BYTES
    fast = readers.read_path(p, None, "big.csv")
    monkeypatch.setattr(readers, "_parse_delimited_fast", lambda *a: pytest.fail("fast path taken"))
    monkeypatch.setattr(readers, "ARROW_CSV_MIN_BYTES", 1 << 62)
    builtin = readers.read_path(p, None, "big.csv")
    np.testing.assert_array_equal(fast.view(np.uint64), builtin.view(np.uint64))


def test_ragged_and_mixed_tables_keep_the_builtin_messages(path):
    for text in ("a,b\n1,2\n3\n", "a,b\n1,2\n3,4,5\n", "a,b\n1,2\n3;4\n", "a,b,c\n1,2\n", "1,2\n3,x\n", "1,2\n\r3,4\n"):
        want, fast = both_ways(text, ",")
        assert_same(want, fast)


BOUNDARY_CELLS = [
    # 15, 16 and 17 significant digits, about 2^53 (the exact integer's limit)
    "123456789012345", "1234567890123456", "12345678901234567", "9007199254740992", "9007199254740993",
    "0.9007199254740993", "900719925474099.3", "0.123456789012345", "0.1234567890123456", "-0.12345678901234567",
    # the integer part's 7 and 8 digits, the fraction's 0, 7, 8, 9, 15 and 16 digits
    "1234567.5", "12345678.5", "1.", "-7.", "0.1234567", "0.12345678", "0.123456789", "1234.123456789012345",
    "1.1234567890123456", "0.0000000012345678", "0.00000000000000000001",
    # exponents: the exact powers end at 1e22
    "1e22", "1e23", "1.5e22", "12e21", "9007199254740993e22", "1e-22", "1e-23", "-1.23456789e-05", "4.5E+02",
    # negative zero in every spelling
    "-0", "-0.0", "-0.000000000", "-0e5", "-0.0e-400",
    # subnormal and smallest results (strtod's)
    "4.9e-324", "2.4703282292062328e-324", "1e-320", "2.2250738585072011e-308", "-5e-324",
]


@pytest.mark.parametrize("cell", BOUNDARY_CELLS)
def test_boundary_cells_are_correctly_rounded_inside_a_large_row(path, cell):
    """Each cell inside a row with more text after it (where the tokenizer reads 8 digits at a
    time) and at the very end of the table: Python's correctly rounded float(), bit for bit."""
    rows = [[cell, "0.5", cell, "-2.25", cell], ["1", cell, "0.125", cell, cell]] * 3
    text = "\n".join(",".join(r) for r in rows)
    want = np.array([[float(c) for c in r] for r in rows])
    got, err = run(lambda: readers._parse_delimited_fast(text.encode(), ",", None, "t.csv"))
    assert err is None and got is not None
    np.testing.assert_array_equal(got.view(np.uint64), want.view(np.uint64))
