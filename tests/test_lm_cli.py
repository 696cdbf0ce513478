"""``lossctl lm`` and ``lossctl linear-ce`` through ``main(argv)``: values against the torch fixtures,
output formats, checks, exit codes."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "lm" / "batch.safetensors"
FIXTURES = ROOT / "tests" / "fixtures" / "lm"


def _case(file: str, name: str) -> dict:
    return next(c for c in json.loads((FIXTURES / file).read_text())["cases"] if c["name"] == name)


def example_args(*extra) -> list[str]:
    e = str(EXAMPLE)
    return ["lm", "--logits", f"{e}:logits", "-t", f"{e}:labels", "--attention-mask", f"{e}:attention_mask", "--shift", *extra]


def test_lm_on_the_example_dump_is_torch_float64(run_cli):
    want = _case("lm.json", "example-batch")["expect"]
    r = run_cli(example_args("--format", "plain"))
    assert r.code == 0, r.stderr
    assert float(r.stdout) == pytest.approx(want["loss"], rel=1e-12)


def test_lm_json_has_every_number_and_labels_the_sequence_mean(run_cli):
    want = _case("lm.json", "example-batch")["expect"]
    r = run_cli(example_args("--bytes", f"{EXAMPLE}:bytes", "--json", "--per-sample", "--grad"))
    assert r.code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["loss_name"] == "lm" and doc["tokens"] == want["tokens"] == doc["denominator"]
    assert doc["loss"] == pytest.approx(want["loss"], rel=1e-12)
    assert doc["perplexity"] == pytest.approx(math.exp(want["loss"]), rel=1e-12)
    assert doc["bits_per_token"] == pytest.approx(want["loss"] / math.log(2), rel=1e-12)
    assert doc["bits_per_byte"] == pytest.approx(want["loss"] * want["tokens"] / (math.log(2) * (80 + 55)), rel=1e-12)
    np.testing.assert_allclose(doc["per_sample"], want["per_token"], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(doc["grad"]["logits"], want["grad"], rtol=1e-10, atol=1e-15)
    seqs = doc["per_sequence"]
    assert [s["tokens"] for s in seqs] == [15, 10]
    assert doc["mean_sequence_perplexity"] == pytest.approx(np.mean([s["perplexity"] for s in seqs]), rel=1e-15)
    assert "perplexity" in doc and doc["mean_sequence_perplexity"] != pytest.approx(doc["perplexity"])


@pytest.mark.parametrize("name", ["shift-mask-sequences", "shift-global", "ignore-index-7", "unbatched"])
def test_lm_cli_fixture_cases(run_cli, tmp_path, name):
    case = _case("lm.json", name)
    argv = ["lm", "--logits", json.dumps(case["logits"]), "--labels", json.dumps(case["labels"]), "--json"]
    for key in ("attention_mask", "ignore_index", "normalize"):
        if key in case:
            argv += ["--" + key.replace("_", "-"), str(case[key]) if not isinstance(case[key], list) else json.dumps(case[key])]
    if case.get("shift"):
        argv.append("--shift")
    r = run_cli(argv + ["--expect", repr(case["expect"]["loss"]), "--rtol", "1e-12"])
    assert r.code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["check"]["passed"] and doc["tokens"] == case["expect"]["tokens"]


def test_lm_all_masked_prints_nan_and_says_why(run_cli):
    r = run_cli(["lm", "--logits", "[[1.0, 2.0], [0.0, 0.5]]", "-t", "[-100, -100]"])
    assert r.code == 0
    assert r.stdout == "nan\n"
    assert "every position is masked" in r.stderr and "0/0" in r.stderr


@pytest.mark.parametrize("argv, code, message", [
    (["lm", "--logits", "[[1.0, 2.0]]", "-t", "[3]"], 3, "error: --labels [3]: token id 3 is out of range"),
    (["lm", "--logits", "[[1.0, 2.0]]", "-t", "[0]", "--normalize", "batch"], 2, "error: --normalize: expected tokens"),
    (["lm", "--logits", "[[1.0, 2.0]]"], 2, "error: lm needs --logits and --labels"),
    (["lm", "--logits", "[[1.0, 2.0]]", "-t", "[0]", "--expect", "0.1"], 1, "check FAIL loss"),
    (["linear-ce", "--hidden", "[[1.0]]", "--lm-head", "[[1.0], [2.0]]", "-t", "[2]"], 3, "error: --target [2]: class index 2"),
    (["linear-ce", "--hidden", "[[1.0]]", "--lm-head", "[[1.0], [2.0]]", "-t", "[1]", "--reduction", "batchmean"], 2, "error: --reduction"),
])
def test_exit_codes(run_cli, argv, code, message):
    r = run_cli(argv)
    assert r.code == code
    assert message in r.stderr


def test_lm_output_file_holds_per_token_values_and_gradient(run_cli, tmp_path):
    out = tmp_path / "lm.npz"
    r = run_cli(example_args("--grad", "-o", str(out)))
    assert r.code == 0, r.stderr
    want = _case("lm.json", "example-batch")["expect"]
    with np.load(out) as z:
        np.testing.assert_allclose(z["per_sample"], want["per_token"], rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(z["grad_logits"], want["grad"], rtol=1e-10, atol=1e-15)


def test_lm_explain_table(run_cli):
    r = run_cli(example_args("--explain", "--format", "table"))
    assert r.code == 0, r.stderr
    for label in ("log-sum-exp", "target logit", "NLL", "masking", "count", "mean", "exp"):
        assert label in r.stdout


def test_linear_ce_golden_through_the_cli(run_cli):
    case = _case("linear-ce.json", "golden-LCE-1")
    argv = ["linear-ce", "--hidden", json.dumps(case["hidden"]), "--lm-head", json.dumps(case["lm_head"]),
            "--lm-head-bias", json.dumps(case["lm_head_bias"]), "-t", json.dumps(case["target"]),
            "--label-smoothing", "0.1", "--grad", "--json"]
    r = run_cli(argv)
    assert r.code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["loss"] == pytest.approx(case["expect"]["loss"], rel=1e-12)
    for name, g in case["expect"]["grad"].items():
        np.testing.assert_allclose(doc["grad"][name], g, rtol=1e-12, atol=1e-15)


def test_check_suite_cases_of_lm_and_linear_ce(run_cli, tmp_path):
    suite = tmp_path / "s.yaml"
    e = str(EXAMPLE)
    suite.write_text(f"""cases:
  - name: good
    loss: lm
    logits: {e}:logits
    target: {e}:labels
    shift: true
    expect: {_case("lm.json", "example-batch")["expect"]["loss"]!r}
  - name: bad
    loss: lm
    logits: [[1.0, 2.0]]
    target: [0]
    expect: 0.5
  - name: unknown-key
    loss: linear-ce
    hidden: [[1.0]]
    lm_head: [[1.0]]
    target: [0]
    shift: true
""")
    r = run_cli(["check", str(suite)])
    assert r.code == 3  # the malformed case: the suite is refused before anything runs
    assert "shift" in r.stderr
    suite.write_text(suite.read_text().split("  - name: unknown-key")[0])
    r = run_cli(["check", str(suite)])
    assert r.code == 1
    assert "PASS good" in r.stdout and "FAIL bad" in r.stdout
