"""``lossctl record LOSS ... --to SUITE.yaml``: an ad hoc call becomes a pinned case, then ``check`` passes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

import lossctl

LOGITS = [[10.0, 0.0, -10.0], [8.0, 8.0, 8.0]]
CE = lossctl.compute({"loss": "ce", "logits": LOGITS, "target": [0, 2]}, grad=True)


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A working directory with data files; suites go to ci/ (a different directory)."""
    (tmp_path / "data").mkdir()
    np.save(tmp_path / "data/logits.npy", np.array(LOGITS))
    (tmp_path / "data/target.csv").write_text("0\n2\n")
    np.savez(tmp_path / "data/seg.npz", logits=np.array([[[1.0, 2.0], [3.0, 5.0]], [[4.0, 7.0], [4.0, 6.0]]]),
             target=np.array([[0, 0], [1, 1]]))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def cases_of(path: Path) -> list[dict]:
    return yaml.safe_load(path.read_text())["cases"]


def test_record_creates_the_suite_and_check_passes(run_cli, project):
    r = run_cli(["record", "ce", "--logits", "data/logits.npy", "--target", "data/target.csv", "--to", "ci/suite.yaml"])
    assert r.code == 0, r.stderr
    assert r.stdout == f"{CE.loss!r}\n"  # the loss command's own output
    assert "recorded case 'ce-1' in ci/suite.yaml" in r.stderr
    (case,) = cases_of(project / "ci/suite.yaml")
    # inputs stay references, rewritten relative to the suite's directory
    assert case == {"name": "ce-1", "loss": "ce", "logits": "../data/logits.npy", "target": "../data/target.csv",
                    "expect": CE.loss}
    r = run_cli(["check", "ci/suite.yaml"])
    assert r.code == 0, r.stdout + r.stderr
    assert r.stdout.splitlines() == ["PASS ce-1", "1 passed, 0 failed"]


def test_record_appends_keeping_the_file_and_pins_per_sample_and_grad(run_cli, project):
    suite = project / "ci/suite.yaml"
    suite.parent.mkdir()
    original = ("# my pinned losses\nrtol: 1.0e-9   # suite-wide\n\ncases:\n"
                "  - name: old   # hand written\n    loss: ce\n    logits: ../data/logits.npy\n"
                "    target: [0, 2]\n    expect: 0.5493288448141933\n\n# trailing comment\n")
    suite.write_text(original)
    r = run_cli(["record", "ce", "--logits", "data/seg.npz:logits", "--target", "data/seg.npz:target",
                 "--weight", "[1.0, 9.0]", "--label-smoothing", "0.1", "--per-sample", "--grad",
                 "--reduction", "sum", "--to", suite, "--name", "seg-weighted", "--json"])
    assert r.code == 0, r.stderr
    shown = json.loads(r.stdout)
    text = suite.read_text()
    # the old text is untouched, the case comes after the last one
    assert text.startswith(original.split("\n# trailing comment")[0])
    assert text.endswith("# trailing comment\n")
    cases = cases_of(suite)
    assert [c["name"] for c in cases] == ["old", "seg-weighted"]
    new = cases[1]
    assert new["logits"] == "../data/seg.npz:logits" and new["target"] == "../data/seg.npz:target"
    assert new["weight"] == [1.0, 9.0]  # a literal is written inline
    assert new["label_smoothing"] == 0.1 and new["reduction"] == "sum"
    assert new["expect"]["loss"] == shown["loss"]
    assert new["expect"]["per_sample"] == shown["per_sample"]
    assert new["expect"]["grad"] == shown["grad"]
    r = run_cli(["check", suite])
    assert r.code == 0, r.stdout + r.stderr
    assert r.stdout.splitlines()[-1] == "2 passed, 0 failed"


def test_record_then_check_fails_when_the_number_moves(run_cli, project):
    run_cli(["record", "ce", "--logits", "data/logits.npy", "--target", "data/target.csv", "--to", "s.yaml",
             "--name", "seed"])
    np.save(project / "data/logits.npy", np.array([[10.0, 0.0, -10.0], [8.0, 8.0, 8.5]]))  # the data moved
    r = run_cli(["check", "s.yaml"])
    assert r.code == 1
    assert r.stdout.startswith(f"FAIL seed: loss expected {CE.loss!r} actual ")


def test_record_generated_names_are_unique(run_cli, project):
    for _ in range(3):
        assert run_cli(["record", "ce", "--logits", "data/logits.npy", "--target", "[0, 2]", "--to", "s.yaml"]).code == 0
    assert [c["name"] for c in cases_of(project / "s.yaml")] == ["ce-1", "ce-2", "ce-3"]


def test_record_keeps_non_default_tolerances_and_dtype(run_cli, project):
    r = run_cli(["record", "ce", "--logits", "data/logits.npy", "--target", "[0, 2]", "--dtype", "float32",
                 "--rtol", "1e-5", "--to", "s.yaml"])
    assert r.code == 0
    (case,) = cases_of(project / "s.yaml")
    assert case["dtype"] == "float32" and case["rtol"] == 1e-5 and "atol" not in case
    assert run_cli(["check", "s.yaml"]).code == 0


def test_record_from_stdin_inlines_the_values(run_cli, project):
    r = run_cli(["record", "bce", "--probs", "-", "--target", "[0, 1]", "--to", "s.yaml"], stdin="[0.2, 0.7]")
    assert r.code == 0, r.stderr
    (case,) = cases_of(project / "s.yaml")
    assert case["probs"] == [0.2, 0.7]
    assert run_cli(["check", "s.yaml"]).code == 0


def test_record_reduction_none_and_regularisation(run_cli, project):
    r = run_cli(["record", "mse", "--pred", "[1.0, 2.0]", "--target", "[0.0, 0.0]", "--reduction", "none", "--to", "s.yaml"])
    assert r.code == 0
    r = run_cli(["record", "ce", "--logits", "data/logits.npy", "--target", "[0, 2]", "--l2", "0.1",
                 "--params", "[1.0, -2.0]", "--grad", "--to", "s.yaml"])
    assert r.code == 0, r.stderr
    none_case, reg_case = cases_of(project / "s.yaml")
    assert none_case["expect"] == [1.0, 4.0]
    assert reg_case["l2"] == 0.1 and reg_case["params"] == [1.0, -2.0]
    assert reg_case["expect"]["grad"]["params"] == [0.1, -0.2]
    r = run_cli(["check", "s.yaml"])
    assert r.code == 0, r.stdout + r.stderr


@pytest.mark.parametrize("argv,code,message", [
    (["--to", "data/target.csv"], 2, "never writes over an input"),
    ([], 2, "missing --to"),
    (["--to", "data"], 2, "is a directory"),
])
def test_record_refusals(run_cli, project, argv, code, message):
    before = (project / "data/target.csv").read_bytes()
    r = run_cli(["record", "ce", "--logits", "data/logits.npy", "--target", "data/target.csv", *argv])
    assert r.code == code
    assert message in r.stderr
    assert (project / "data/target.csv").read_bytes() == before


def test_record_duplicate_name_and_malformed_suite(run_cli, project):
    base = ["record", "ce", "--logits", "data/logits.npy", "--target", "[0, 2]", "--to", "s.yaml"]
    assert run_cli(base + ["--name", "x"]).code == 0
    before = (project / "s.yaml").read_text()
    r = run_cli(base + ["--name", "x"])
    assert r.code == 2 and "already has a case of that name" in r.stderr
    assert (project / "s.yaml").read_text() == before
    (project / "bad.yaml").write_text("cases:\n  - loss: ce\n    expct: 1\n")
    r = run_cli(base[:-1] + ["bad.yaml"])
    assert r.code == 3 and "expct" in r.stderr
    assert (project / "bad.yaml").read_text() == "cases:\n  - loss: ce\n    expct: 1\n"


def test_record_input_errors_leave_the_suite_alone(run_cli, project):
    r = run_cli(["record", "ce", "--logits", "data/logits.npy", "--target", "[0, 7]", "--to", "s.yaml"])
    assert r.code == 3
    assert not (project / "s.yaml").exists()


def test_record_rejects_check_options_and_unknown_losses(run_cli, project):
    r = run_cli(["record", "ce", "--logits", "data/logits.npy", "--target", "[0, 2]", "--expect", "1", "--to", "s.yaml"])
    assert r.code == 2
    r = run_cli(["record", "cee", "--to", "s.yaml"])
    assert r.code == 2 and "did you mean 'ce'" in r.stderr
    assert not (project / "s.yaml").exists()


@pytest.mark.parametrize("existing", [
    "",
    "# only a comment\n",
    "cases:\n",
    "cases: []\n",
    "name: mine\ncases: [{name: a, loss: ce, logits: [[1.0, 2.0]], target: [0], expect: 1.3132616875182228}]\n",
    "rtol: 1.0e-9\n",
    "cases:\n- name: a\n  loss: ce\n  logits: [[1.0, 2.0]]\n  target: [0]\n  expect: 1.3132616875182228",  # no final newline
])
def test_record_into_every_shape_of_suite(run_cli, project, existing):
    suite = project / "s.yaml"
    suite.write_text(existing)
    r = run_cli(["record", "ce", "--logits", "data/logits.npy", "--target", "[0, 2]", "--to", suite, "--name", "new"])
    assert r.code == 0, r.stderr
    names = [c["name"] for c in cases_of(suite)]
    assert names[-1] == "new"
    r = run_cli(["check", suite])
    assert r.code == 0, r.stdout + r.stderr


def test_record_help_lists_the_loss_options_and_its_own(run_cli):
    r = run_cli(["record", "ce", "--help"])
    assert r.code == 0
    for option in ("--logits", "--target", "--label-smoothing", "--to", "--name", "--grad"):
        assert option in r.stdout
    assert "--expect " not in r.stdout
