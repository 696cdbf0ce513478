"""One number format across tables: whole numbers (fewer digits or fewer columns on a narrow
terminal, never a cut exponent), the same digits for the same quantity, ``--precision N``."""

from __future__ import annotations

import io
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

import lossctl
from lossctl.render import table
from lossctl.render.numbers import precision, table_number

NUMBER = re.compile(r"^-?(\d+(\.\d*)?|\.\d+)(e[-+]\d+)?$|^-?inf$|^nan$")


def _cells(text: str) -> list[str]:
    cells = []
    for line in text.splitlines():
        if line.startswith("│"):
            cells += [c.strip() for c in line.strip("│").split("│")]
    return cells


def _mantissa(cell: str) -> int:
    """Significant digits written in a table cell: ``-0.0012e-05`` has 2."""
    return len(cell.lstrip("-").split("e")[0].replace(".", "").lstrip("0"))


def _assert_digits(cells: list[str], digits: int) -> None:
    """No cell has more than ``digits`` digits, and at 12 some have more than the default 8."""
    mantissas = [_mantissa(c) for c in cells]
    assert mantissas and max(mantissas) <= digits and (digits < 12 or max(mantissas) > 8), (cells, digits)


def _fractions(text: str) -> list[str]:
    """The table cells of ``text`` that are numbers with a fraction."""
    return [c for c in _cells(text) if NUMBER.match(c) and "." in c]


@pytest.mark.parametrize("width", [24, 40, 60, 80, 120, 200])
@pytest.mark.parametrize("scale", [1e-6, 1.0, 1e9, 1e-300, 1e300])
def test_narrow_terminals_never_cut_a_number(width, scale):
    rng = np.random.default_rng([width, int(abs(np.log10(scale)))])
    x = rng.normal(size=(6, 5)) * scale
    result = lossctl.compute({"loss": "mse", "pred": x.tolist(), "target": (-x).tolist(), "reduction": "none"}, grad=True)
    out = io.StringIO()
    Console(file=out, width=width, color_system=None).print(table.per_sample(result, grad=True, rows=6, width=width))
    text = out.getvalue()
    assert "…" not in text and "..." not in text.split("not shown")[0]
    values = np.asarray(result.per_sample).reshape(-1)
    rows = [ln for ln in text.splitlines() if ln.startswith("│")]
    assert rows, text
    for k, line in enumerate(rows):
        cells = [c.strip() for c in line.strip("│").split("│")]
        assert all(NUMBER.match(c) for c in cells), line  # each cell one whole number
        shown = float(cells[1])
        if np.isfinite(values[k]):
            assert abs(shown - values[k]) <= 1e-2 * abs(values[k]), (shown, values[k])  # at least 3 digits right
        else:
            assert shown == values[k]


def test_a_table_that_cannot_fit_drops_columns_and_says_so():
    x = np.full((2, 40), 1.2345678e-7)
    result = lossctl.compute({"loss": "mse", "pred": x.tolist(), "target": np.zeros_like(x).tolist(), "reduction": "none"},
                             grad=True)
    out = io.StringIO()
    Console(file=out, width=60, color_system=None).print(table.gradients(result, width=60))
    assert "not shown" in out.getvalue() and "…" not in out.getvalue()


@pytest.mark.parametrize("digits", [1, 3, 8, 12, 17])
def test_precision_sets_the_digits(run_cli, digits):
    r = run_cli(["ce", "--logits", "[[10, 0, -10], [8, 8, 8]]", "--target", "[0, 2]", "--per-sample", "--grad",
                 "--format", "table", "--precision", str(digits)])
    assert r.code == 0, r.stderr
    cells = _fractions(r.stdout)
    assert cells and all(_mantissa(c) <= digits for c in cells), (cells, digits)
    if digits == 17:
        value = json.loads(run_cli(["ce", "--logits", "[[10, 0, -10], [8, 8, 8]]", "--target", "[0, 2]", "--json"]).stdout)["loss"]
        assert str(value) in r.stdout or repr(float(f"{value:.17g}")) == repr(value)


@pytest.mark.parametrize("value", ["0", "18", "-3", "100"])
def test_precision_out_of_range(run_cli, value):
    r = run_cli(["ce", "--logits", "[[1, 2]]", "--target", "[0]", "--precision", value])
    assert r.code == 2 and "--precision" in r.stderr


def test_the_same_quantity_has_the_same_digits(run_cli):
    """The loss in the summary and as the derivation's last step; each per-sample value in the
    per-sample table and as the derivation's per-sample loss."""
    r = run_cli(["ce", "--logits", "[[10, 0, -10], [8, 8, 8], [1, 2, 3]]", "--target", "[0, 2, 1]", "--per-sample",
                 "--explain", "--format", "table", "--rows", "3"])
    text = r.stdout
    value = re.search(r"│ value\s+│ (\S+)", text).group(1)
    last = [ln for ln in text.splitlines() if "loss (mean)" in ln][0]
    assert value in last
    per_sample_rows = [ln for ln in text.splitlines() if re.match(r"│\s+\d+ │", ln)]
    derivation_loss = [ln for ln in text.splitlines() if re.match(r"│ loss\s+│ l\s+│", ln)][0]
    for ln in per_sample_rows:
        shown = ln.strip("│").split("│")[1].strip()
        assert shown in derivation_loss, (shown, derivation_loss)


@pytest.mark.parametrize("x", [7.65e-06, -4.540096027688e-05, 1e-300, -1.5e300, 123456789.0, 0.1, 5e-324])
def test_exponents_are_whole(x):
    for d in range(1, 18):
        text = table_number(x, d)
        assert NUMBER.match(text), text
        assert float(text) == pytest.approx(x, rel=10.0 ** (1 - d))
    with precision(4):
        assert table_number(x) == table_number(x, 4)


LM_BATCH = str(Path(__file__).resolve().parents[1] / "examples" / "lm" / "batch.safetensors")
TOKEN_CALLS = {
    "lm": ["lm", "--logits", f"{LM_BATCH}:logits", "--labels", f"{LM_BATCH}:labels", "--per-sample"],
    "linear-ce": ["linear-ce", "--hidden", "[[1.0, -2.0], [0.5, 3.0]]", "--lm-head", "[[0.25, 1.0], [-1.5, 2.0], [3.0, 0.5]]",
                  "--target", "[0, 2]", "--per-sample"],
}


@pytest.mark.parametrize("command", sorted(TOKEN_CALLS))
@pytest.mark.parametrize("digits", [2, 12])
def test_precision_reaches_the_token_commands(run_cli, command, digits):
    r = run_cli(TOKEN_CALLS[command] + ["--format", "table", "--precision", str(digits)])
    assert r.code == 0, r.stderr
    _assert_digits(_fractions(r.stdout), digits)
    assert run_cli(TOKEN_CALLS[command] + ["--precision", "0"]).code == 2


@pytest.mark.parametrize("digits", [3, 17])
def test_precision_reaches_the_check_table(run_cli, digits):
    suite = str(Path(__file__).resolve().parents[1] / "examples" / "seeds.yaml")
    r = run_cli(["check", suite, "--format", "table", "--precision", str(digits)])
    assert r.code == 0, r.stderr
    loss = json.loads(run_cli(["ce", "--logits", "[[10, 0, -10], [8, 8, 8]]", "--target", "[0, 2]", "--json"]).stdout)["loss"]
    assert f"{loss:.{digits}g}" in r.stdout
    assert run_cli(["check", suite, "--precision", "18"]).code == 2


INFO_P, INFO_Q = "[[0.2, 0.3, 0.5], [0.1, 0.6, 0.3]]", "[[0.7, 0.2, 0.1], [0.3, 0.3, 0.4]]"
INFO_CALLS = {
    "measures": ["info", "--p", INFO_P, "--q", INFO_Q],
    "events": ["info", "--event-probs", "[0.3, 0.7, 0.1234567891234]"],
}


@pytest.mark.parametrize("call", sorted(INFO_CALLS))
@pytest.mark.parametrize("digits", [2, 12])
def test_precision_reaches_the_info_tables(run_cli, call, digits):
    r = run_cli(INFO_CALLS[call] + ["--format", "table", "--precision", str(digits)])
    assert r.code == 0, r.stderr
    cells = _fractions(r.stdout)
    _assert_digits(cells, digits)
    plain = run_cli(INFO_CALLS[call] + ["--format", "plain"]).stdout.split()
    exact = [float(w) for w in plain if NUMBER.match(w)]
    shown = [float(c) for c in cells]
    for value in exact:  # every measure (or self-information) is in the table, rounded to the digits
        if math.isfinite(value) and value != 0:
            assert any(abs(s - value) <= 10.0 ** (1 - digits) * abs(value) for s in shown), (value, cells)
    assert run_cli(INFO_CALLS[call] + ["--precision", "0"]).code == 2


def _worst_positions(text: str) -> list[list[str]]:
    """The rows of diff's worst-positions table: index, a, b, |a − b|."""
    return [[c.strip() for c in ln.strip("│").split("│")] for ln in text.splitlines() if re.match(r"│\s+\[\d+, \d+\] │", ln)]


@pytest.mark.parametrize("digits", [2, 12])
def test_precision_reaches_the_diff_tables(run_cli, digits):
    """The values at the worst positions take the digits; the differences keep their 3."""
    triage = Path(__file__).resolve().parents[1] / "examples" / "triage"
    argv = ["diff", f"{triage}/port.npz", f"{triage}/reference.npz", "--top", "3", "--format", "table"]
    r = run_cli(argv + ["--precision", str(digits)])
    assert r.code == 1, r.stderr  # one array is outside the default tolerance
    rows = _worst_positions(r.stdout)
    assert len(rows) == 3
    values = [c for row in rows for c in row[1:3]]
    assert all(NUMBER.match(c) for c in values), values
    _assert_digits(values, digits)
    errors = [row[3] for row in rows]
    assert all(_mantissa(c) <= 3 for c in errors)
    assert errors == [row[3] for row in _worst_positions(run_cli(argv + ["--precision", "17"]).stdout)]
    assert run_cli(argv + ["--precision", "18"]).code == 2


@pytest.mark.parametrize("command", ["info", "diff", "check"])
def test_the_project_precision_reaches_the_command_tables(run_cli, tmp_path, monkeypatch, command):
    root = Path(__file__).resolve().parents[1]
    argv = {"info": INFO_CALLS["measures"],
            "diff": ["diff", f"{root}/examples/triage/port.npz", f"{root}/examples/triage/reference.npz", "--top", "3"],
            "check": ["check", f"{root}/examples/seeds.yaml"]}[command] + ["--format", "table"]
    monkeypatch.chdir(tmp_path)
    wide = run_cli(argv)
    (tmp_path / "lossctl.toml").write_text("precision = 2\n")
    narrow, given = run_cli(argv), run_cli(argv + ["--precision", "12"])
    assert wide.code == narrow.code == given.code and wide.code in (0, 1), narrow.stderr

    def longest(text):
        return max(_mantissa(c) for c in _fractions(text))

    assert longest(narrow.stdout) <= 3 < longest(wide.stdout) < longest(given.stdout)
