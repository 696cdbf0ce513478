"""Hostile values: integers over Python's 4300-digit limit, YAML core tags with content their
type cannot hold, 64-bit overflow in integer parameters, booleans as class indices, NaN as an
expectation. Each is refused with exit 2 or 3 and one line, wherever the value comes from:
a YAML/JSON file, standard input, an inline literal, a suite's input or its ``expect:``."""

from __future__ import annotations

import json

import pytest

BIG = "9" * 5000
TAGS = ["!!float abc", "!!int 1.5", "!!int abc", "!!float [1]", "!!bool maybe", "!!int 0x", "!!float 1.2.3"]


def _one_error(r, code: int = 3) -> str:
    assert r.code == code, (r.code, r.stderr)
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr, r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    return lines[0]


# --------------------------------------------------------------------------- integers over 4300 digits


@pytest.mark.parametrize("text", [f"[{BIG}]", f"[[{BIG}, 1]]", f"-{BIG}", f"[1, 2, {BIG}]"])
def test_huge_integers_inline(run_cli, text):
    line = _one_error(run_cli(["mse", "--pred", text, "--target", "[1]"]))
    assert "4300 digits" in line


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_huge_integers_in_files(run_cli, tmp_path, monkeypatch, fmt):
    monkeypatch.chdir(tmp_path)
    p = tmp_path / f"x.{fmt}"
    p.write_text(f"{{\"a\": [{BIG}]}}" if fmt == "json" else f"a: [{BIG}]\n")
    line = _one_error(run_cli(["mse", "--pred", f"{p.name}:a", "--target", "[1]"]))
    assert "x." + fmt in line


@pytest.mark.parametrize("fmt", ["yaml", "json", None])
def test_huge_integers_on_stdin(run_cli, fmt):
    args = ["mse", "--pred", "-", "--target", "[1]"] + (["--stdin-format", fmt] if fmt else [])
    _one_error(run_cli(args, stdin=f"[{BIG}]\n"))


@pytest.mark.parametrize("where", ["input", "expect", "expect-mapping", "defaults", "target"])
def test_huge_integers_in_suites(run_cli, tmp_path, monkeypatch, where):
    case = {"loss": "mse", "pred": "[1.0]", "target": "[1.0]", "expect": "0.0"}
    if where == "input":
        case["pred"] = f"[{BIG}]"
    elif where == "expect":
        case["expect"] = BIG
    elif where == "expect-mapping":
        case["expect"] = f"{{loss: {BIG}}}"
    elif where == "target":
        case["target"] = f"[{BIG}]"
    body = "".join(f"    {k}: {v}\n" for k, v in case.items())
    head = f"defaults:\n  rtol: {BIG}\n" if where == "defaults" else ""
    p = tmp_path / "s.yaml"
    p.write_text(head + "cases:\n  - name: c\n" + body[4:].replace("\n    ", "\n    ", 0).replace("    loss", "    loss", 1)
                 if False else head + "cases:\n  -\n" + body)
    line = _one_error(run_cli(["check", p]))
    assert "s.yaml" in line and "4300 digits" in line


def test_huge_integers_in_expect_option(run_cli):
    r = run_cli(["mse", "--pred", "[1.0]", "--target", "[1.0]", "--expect", BIG])
    assert r.code in (1, 2, 3) and "Traceback" not in r.stderr and "internal error" not in r.stderr


# --------------------------------------------------------------------------- YAML core tags


@pytest.mark.parametrize("tag", TAGS)
def test_bad_core_tags_inline(run_cli, tag):
    _one_error(run_cli(["mse", "--pred", f"[{tag}]", "--target", "[1]"]))


@pytest.mark.parametrize("tag", TAGS)
def test_bad_core_tags_in_files(run_cli, tmp_path, monkeypatch, tag):
    monkeypatch.chdir(tmp_path)
    p = tmp_path / "x.yaml"
    p.write_text(f"- {tag}\n")
    line = _one_error(run_cli(["mse", "--pred", p.name, "--target", "[1]"]))
    assert "x.yaml" in line


@pytest.mark.parametrize("tag", TAGS[:4])
@pytest.mark.parametrize("where", ["pred", "expect", "weight-param"])
def test_bad_core_tags_in_suites(run_cli, tmp_path, monkeypatch, tag, where):
    case = {"loss": "mse", "pred": "[1.0]", "target": "[1.0]", "expect": "0.0"}
    if where == "weight-param":
        case = {"loss": "huber", "pred": "[1.0]", "target": "[1.0]", "delta": tag, "expect": "0.0"}
    else:
        case[where] = tag if where == "expect" else f"[{tag}]"
    p = tmp_path / "s.yaml"
    p.write_text("cases:\n  -\n" + "".join(f"    {k}: {v}\n" for k, v in case.items()))
    line = _one_error(run_cli(["check", p]))
    assert "s.yaml" in line


def test_bad_core_tags_on_stdin(run_cli):
    _one_error(run_cli(["mse", "--pred", "-", "--stdin-format", "yaml", "--target", "[1]"], stdin="[!!float abc]\n"))


# --------------------------------------------------------------------------- 64-bit integer parameters


@pytest.mark.parametrize("value", [str(2 ** 63), str(-(2 ** 63) - 1), str(2 ** 64), "9" * 40])
@pytest.mark.parametrize("target", ["[0]", f"[{2 ** 63}]", "[1]"])
def test_ignore_index_beyond_64_bits(run_cli, value, target):
    r = run_cli(["ce", "--logits", "[[1.0, 2.0]]", "--target", target, "--ignore-index", value])
    assert r.code in (2, 3), r.stderr
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr and "RuntimeWarning" not in r.stderr


@pytest.mark.parametrize("value", [str(2 ** 63 - 1), str(-(2 ** 63))])
def test_ignore_index_at_the_64_bit_edges_works(run_cli, value):
    r = run_cli(["ce", "--logits", "[[1.0, 2.0], [0.0, 0.0]]", "--target", f"[1, {value}]", "--ignore-index", value])
    assert r.code == 0, r.stderr
    assert abs(float(r.stdout) - 0.31326168751822286) < 1e-15  # the ignored row does not count


def test_ignore_index_beyond_64_bits_in_a_suite(run_cli, tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text(f"cases:\n  - loss: ce\n    logits: [[1.0, 2.0]]\n    target: [0]\n    ignore_index: {2 ** 63}\n    expect: 1.0\n")
    r = run_cli(["check", p])
    assert r.code in (2, 3) and "internal error" not in r.stderr + r.stdout and "Traceback" not in r.stderr + r.stdout


# --------------------------------------------------------------------------- booleans as class indices


@pytest.mark.parametrize("loss,pred", [("ce", "--logits"), ("nll", "--log-probs"), ("multi-margin", "--pred")])
@pytest.mark.parametrize("target", ["[True]", "[true]", "[false]"])
def test_booleans_are_not_class_indices(run_cli, loss, pred, target):
    r = run_cli([loss, pred, "[[1.0, -2.0]]", "--target", target])
    line = _one_error(r)
    assert "booleans" in line


# --------------------------------------------------------------------------- NaN expected


@pytest.mark.parametrize("expect", ["nan", "NaN", "-nan"])
def test_expect_nan_says_what_differs(run_cli, expect):
    r = run_cli(["ce", "--logits", "[[1.0, 2.0]]", "--target", "[0]", "--expect", expect])
    assert r.code == 1
    assert "abs diff inf" not in r.stderr and "a NaN matches only a NaN" in r.stderr and "expected nan" in r.stderr


def test_expect_nan_in_json(run_cli):
    r = run_cli(["ce", "--logits", "[[1.0, 2.0]]", "--target", "[0]", "--expect", "nan", "--json"])
    c = json.loads(r.stdout)["check"]["comparisons"][0]
    assert r.code == 1 and c["abs_diff"] == "nan" and "NaN" in c["problem"]


def test_expected_per_sample_nan_names_the_index(run_cli):
    r = run_cli(["ce", "--logits", "[[1.0, 2.0], [1.0, 1.0]]", "--target", "[0, 1]", "--reduction", "none",
                 "--expect-per-sample", "[1.3132616875182228, .nan]"])
    assert r.code == 1 and "at index [1]" in r.stderr and "NaN" in r.stderr


def test_nan_matches_nan(run_cli):
    r = run_cli(["mse", "--pred", "[.nan]", "--target", "[1.0]", "--expect", "nan"])
    assert r.code == 0, r.stderr
