"""The command line: every input format gives the same answer, every output format, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import lossctl
from lossctl.cli.options import spell

LOGITS = [[10.0, 0.0, -10.0], [8.0, 8.0, 8.0]]
TARGET = [0, 2]
EXPECTED = lossctl.compute(loss="ce", logits=LOGITS, target=TARGET, grad=True).loss


def _write_all_formats(tmp_path, name, array):
    a = np.asarray(array)
    paths = {}
    np.save(tmp_path / f"{name}.npy", a)
    paths["npy"] = str(tmp_path / f"{name}.npy")
    np.savez(tmp_path / f"{name}.npz", data=a, other=np.zeros(1))
    paths["npz"] = str(tmp_path / f"{name}.npz") + ":data"
    (tmp_path / f"{name}.json").write_text(json.dumps({"data": a.tolist()}))
    paths["json"] = str(tmp_path / f"{name}.json") + ":data"
    (tmp_path / f"{name}.yaml").write_text("data: " + json.dumps(a.tolist()) + "\n")
    paths["yaml"] = str(tmp_path / f"{name}.yaml") + ":data"
    rows = a.reshape(a.shape[0], -1) if a.ndim > 1 else a.reshape(-1, 1)
    (tmp_path / f"{name}.csv").write_text("\n".join(",".join(repr(float(v)) for v in r) for r in rows) + "\n")
    paths["csv"] = str(tmp_path / f"{name}.csv")
    (tmp_path / f"{name}.tsv").write_text("\n".join("\t".join(repr(float(v)) for v in r) for r in rows) + "\n")
    paths["tsv"] = str(tmp_path / f"{name}.tsv")
    (tmp_path / f"{name}.txt").write_text("\n".join("  ".join(repr(float(v)) for v in r) for r in rows) + "\n")
    paths["txt"] = str(tmp_path / f"{name}.txt")
    paths["literal"] = json.dumps(a.tolist())
    return paths


@pytest.mark.parametrize("fmt", ["npy", "npz", "json", "yaml", "csv", "tsv", "txt", "literal"])
def test_every_input_format_gives_the_same_answer(run_cli, tmp_path, fmt):
    logits = _write_all_formats(tmp_path, "logits", LOGITS)[fmt]
    target = _write_all_formats(tmp_path, "target", TARGET)[fmt]
    r = run_cli(["ce", "--logits", logits, "--target", target, "--format", "plain"])
    assert r.code == 0, r.stderr
    assert float(r.stdout) == EXPECTED


def test_csv_header_and_column_selection(run_cli, tmp_path):
    (tmp_path / "d.csv").write_text("a,b,c,label\n10,0,-10,0\n8,8,8,2\n")
    (tmp_path / "logits.csv").write_text("a,b,c\n10,0,-10\n8,8,8\n")
    by_name = run_cli(["ce", "--logits", str(tmp_path / "logits.csv"), "--target", f"{tmp_path / 'd.csv'}:label"])
    by_index = run_cli(["ce", "--logits", str(tmp_path / "logits.csv"), "--target", f"{tmp_path / 'd.csv'}:3"])
    assert by_name.code == by_index.code == 0
    assert float(by_name.stdout) == float(by_index.stdout) == EXPECTED


@pytest.mark.parametrize("payload, fmt", [
    (json.dumps(LOGITS), None),
    ("10,0,-10\n8,8,8\n", None),
    ("10\t0\t-10\n8\t8\t8\n", None),
    ("- [10, 0, -10]\n- [8, 8, 8]\n", "yaml"),
])
def test_stdin_is_sniffed_or_named(run_cli, payload, fmt):
    argv = ["ce", "--logits", "-", "--target", "[0,2]"] + (["--stdin-format", fmt] if fmt else [])
    r = run_cli(argv, stdin=payload)
    assert r.code == 0, r.stderr
    assert float(r.stdout) == EXPECTED


def test_stdin_npy_bytes(run_cli):
    import io

    buf = io.BytesIO()
    np.save(buf, np.array(LOGITS))
    r = run_cli(["ce", "--logits", "-", "--target", "[0,2]"], stdin=buf.getvalue())
    assert r.code == 0, r.stderr
    assert float(r.stdout) == EXPECTED


def test_plain_output_round_trips(run_cli):
    r = run_cli(["ce", "--logits", json.dumps(LOGITS), "--target", "[0,2]", "--format", "plain"])
    assert r.stdout == repr(EXPECTED) + "\n"
    assert r.stderr == ""


def test_plain_reduction_none_is_one_value_a_line(run_cli):
    r = run_cli(["ce", "--logits", json.dumps(LOGITS), "--target", "[0,2]", "--reduction", "none"])
    values = [float(v) for v in r.stdout.split()]
    np.testing.assert_array_equal(values, lossctl.compute(loss="ce", logits=LOGITS, target=TARGET, reduction="none", grad=True).loss)


def test_json_document(run_cli):
    r = run_cli(["ce", "--logits", json.dumps(LOGITS), "--target", "[0,2]", "--json", "--per-sample", "--grad", "--explain"])
    assert r.code == 0
    doc = json.loads(r.stdout)
    assert doc["loss_name"] == "ce" and doc["reduction"] == "mean"
    assert doc["loss"] == EXPECTED
    assert len(doc["per_sample"]) == 2
    np.testing.assert_allclose(doc["grad"]["logits"], lossctl.compute(loss="ce", logits=LOGITS, target=TARGET, grad=True).grad["logits"])
    labels = [s["label"] for s in doc["steps"]]
    for label in ("max", "shifted logits", "exp", "sum", "log-sum-exp", "log-softmax", "target log-probability", "loss (mean)"):
        assert label in labels
    assert doc["steps"][-1]["value"] == EXPECTED
    assert "check" not in doc


def test_json_writes_non_finite_as_strings(run_cli):
    r = run_cli(["ce", "--logits", json.dumps(LOGITS), "--target", "[-100,-100]", "--json"])
    assert json.loads(r.stdout)["loss"] == "nan"


def test_csv_output(run_cli):
    r = run_cli(["ce", "--logits", json.dumps(LOGITS), "--target", "[0,2]", "--format", "csv", "--per-sample", "--grad"])
    lines = r.stdout.splitlines()
    assert lines[0] == "sample,loss,grad_logits_0,grad_logits_1,grad_logits_2"
    assert len(lines) == 3
    assert float(lines[2].split(",")[1]) == pytest.approx(np.log(3))


def test_table_output_shows_derivation_and_left_out_rows(run_cli):
    logits = np.zeros((7, 3)).tolist()
    r = run_cli(["ce", "--logits", json.dumps(logits), "--target", json.dumps([0] * 7), "--format", "table", "--explain", "--rows", "2"])
    assert r.code == 0
    for text in ("derivation", "log-sum-exp", "sample 0", "sample 1", "5 of 7 samples not shown"):
        assert text in r.stdout
    assert "sample 2" not in r.stdout


@pytest.mark.parametrize("expect, code", [("0.549328844814", 0), ("0.5494", 1)])
def test_expect_exit_codes(run_cli, expect, code):
    r = run_cli(["ce", "--logits", json.dumps(LOGITS), "--target", "[0,2]", "--expect", expect, "--rtol", "1e-9"])
    assert r.code == code
    if code:
        assert "expected 0.5494" in r.stderr and "actual 0.549328" in r.stderr and "abs diff" in r.stderr


def test_expect_grad_and_per_sample(run_cli, tmp_path):
    r0 = lossctl.compute(loss="ce", logits=LOGITS, target=TARGET, grad=True)
    np.save(tmp_path / "g.npy", r0.grad["logits"])
    np.save(tmp_path / "p.npy", r0.per_sample)
    ok = run_cli(["ce", "--logits", json.dumps(LOGITS), "--target", "[0,2]", "--expect-grad", str(tmp_path / "g.npy"),
                  "--expect-per-sample", str(tmp_path / "p.npy"), "--json"])
    assert ok.code == 0
    assert json.loads(ok.stdout)["check"]["passed"] is True
    bad = r0.grad["logits"].copy()
    bad[1, 2] += 1e-3
    np.save(tmp_path / "bad.npy", bad)
    fail = run_cli(["ce", "--logits", json.dumps(LOGITS), "--target", "[0,2]", "--expect-grad", str(tmp_path / "bad.npy"), "--json"])
    assert fail.code == 1
    comparison = json.loads(fail.stdout)["check"]["comparisons"][0]
    assert comparison["what"] == "grad.logits" and comparison["worst_index"] == [1, 2]


def test_output_file_npz_and_refusals(run_cli, tmp_path):
    out = tmp_path / "out.npz"
    r = run_cli(["ce", "--logits", json.dumps(LOGITS), "--target", "[0,2]", "--per-sample", "--grad", "-o", str(out)])
    assert r.code == 0
    with np.load(out) as z:
        np.testing.assert_allclose(z["per_sample"], lossctl.compute(loss="ce", logits=LOGITS, target=TARGET, grad=True).per_sample)
        assert z["grad_logits"].shape == (2, 3)
    again = run_cli(["ce", "--logits", json.dumps(LOGITS), "--target", "[0,2]", "-o", str(out)])
    assert again.code == 2 and "--force" in again.stderr
    np.save(tmp_path / "x.npy", np.array(LOGITS))
    before = (tmp_path / "x.npy").read_bytes()
    onto_input = run_cli(["ce", "--logits", str(tmp_path / "x.npy"), "--target", "[0,2]", "-o", str(tmp_path / "x.npy"), "--force"])
    assert onto_input.code == 2 and "input" in onto_input.stderr
    assert (tmp_path / "x.npy").read_bytes() == before


@pytest.mark.parametrize("argv, code, stderr_start", [
    (["nope", "--logits", "[1]"], 2, "error: 'nope' is neither a command nor a loss"),
    (["ce", "--logits", "[[1,2]]"], 2, "error: ce: missing --target"),
    (["ce", "--target", "[0]"], 2, "error: ce: missing prediction"),
    (["ce", "--logits", "[[1,2]]", "--target", "[0]", "--bogus", "1"], 2, "error: lossctl ce: No such option: --bogus"),
    (["ce", "--logits", "[[1,2]]", "--target", "[5]"], 3, "error: --target [5]: class index 5 is out of range for 2 classes"),
    (["ce", "--logits", "missing.npy", "--target", "[0]"], 3, "error: --logits missing.npy: no such file"),
    (["ce", "--logits", "[[1,2]]", "--target", "[0]", "--format", "xml"], 2, "error: --format"),
    (["ce", "--logits", "[[1,2]]", "--target", "[0]", "--reduction", "batchmean"], 2, "error: --reduction"),
])
def test_error_exit_codes_and_one_line_messages(run_cli, argv, code, stderr_start):
    r = run_cli(argv)
    assert r.code == code
    assert r.stderr.startswith(stderr_start), r.stderr
    assert "Traceback" not in r.stderr
    assert r.stdout == ""


def test_unknown_loss_suggests_the_nearest_name(run_cli):
    r = run_cli(["cross_entropy", "--logits", "[[1]]"])
    assert r.code == 2 and "did you mean 'cross-entropy'" in r.stderr


def test_internal_error_is_exit_4_without_traceback(run_cli, monkeypatch):
    import lossctl.api

    def boom(*a, **k):
        raise RuntimeError("kaboom")

    monkeypatch.setattr(lossctl.api, "evaluate", boom)
    r = run_cli(["ce", "--logits", json.dumps(LOGITS), "--target", "[0,2]"])
    assert r.code == 4
    assert r.stderr.startswith("error: internal error: RuntimeError: kaboom") and "Traceback" not in r.stderr


@pytest.mark.parametrize("name", lossctl.registry_names())
def test_every_loss_has_help_listing_exactly_its_options(run_cli, name):
    spec = lossctl.registry().get(name)
    r = run_cli([name, "--help"])
    assert r.code == 0
    for kind in spec.kinds:
        assert "--" + kind.replace("_", "-") in r.stdout
    for p in spec.params:
        assert "--" + p.name.replace("_", "-") in r.stdout
    assert spell(spec.mirrors) in r.stdout  # key references spelt as options


def test_list_json_matches_registry(run_cli):
    r = run_cli(["list", "--format", "json"])
    rows = json.loads(r.stdout)
    assert [row["name"] for row in rows] == lossctl.registry_names()
    for row in rows:
        assert set(row) >= {"name", "aliases", "inputs", "params"}


def test_aliases_are_the_same_command(run_cli):
    a = run_cli(["cross-entropy", "--logits", json.dumps(LOGITS), "--target", "[0,2]"])
    assert float(a.stdout) == EXPECTED


def test_python_dash_m_and_console_script_in_subprocess():
    cmd = [sys.executable, "-m", "lossctl", "ce", "--logits", json.dumps(LOGITS), "--target", "[0,2]"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and float(p.stdout) == EXPECTED
    bad = subprocess.run(cmd[:-1] + ["[0,7]"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 3 and "Traceback" not in bad.stderr and bad.stderr.count("\n") == 1


def test_broken_pipe_is_quiet(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((50000, 2)))
    np.save(tmp_path / "y.npy", np.zeros(50000, dtype=np.int64))
    p = subprocess.run(
        f"{sys.executable} -m lossctl ce --logits {tmp_path / 'x.npy'} --target {tmp_path / 'y.npy'} --reduction none | head -1",
        shell=True, capture_output=True, text=True, timeout=120)
    assert p.stdout.strip() == repr(float(np.log(2)))
    assert "Traceback" not in p.stderr and "Broken pipe" not in p.stderr


def test_bare_command_prints_the_overview_and_version(run_cli):
    r = run_cli([])
    assert r.code == 2 and "Commands:" in r.stdout and "ce" in r.stdout and r.stderr == ""
    v = run_cli(["--version"])
    assert v.code == 0 and v.stdout.startswith(f"lossctl {lossctl.__version__}\nkernels: ")
