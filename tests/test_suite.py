"""``lossctl check``: suites that pass, fail, error and are malformed; JUnit, JSON, -k, --update."""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

import lossctl

ROOT = Path(__file__).resolve().parents[1]
LOGITS = [[10.0, 0.0, -10.0], [8.0, 8.0, 8.0]]
CE = lossctl.compute({"loss": "ce", "logits": LOGITS, "target": [0, 2]}, grad=True)
CE_LOSS = CE.loss  # 0.5493288448141933


def write(tmp_path: Path, text: str, name: str = "suite.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.fixture
def data(tmp_path):
    d = tmp_path / "data"
    d.mkdir()
    np.save(d / "logits.npy", np.array(LOGITS))
    (d / "target.csv").write_text("label\n0\n2\n")
    np.savez(d / "seg.npz", logits=np.array([[[1.0, 2.0], [3.0, 5.0]], [[4.0, 7.0], [4.0, 6.0]]]),
             target=np.array([[0, 0], [1, 1]]))
    (d / "w.txt").write_text("1.0\n9.0\n")
    return d


PASSING = f"""\
# a passing suite
cases:
  - name: ce-files
    loss: ce
    logits: data/logits.npy
    target: data/target.csv
    expect: {CE_LOSS!r}
  - name: ce-inline-rounded
    loss: ce
    logits: {json.dumps(LOGITS)}
    target: [0, 2]
    expect: 0.549329
    atol: 1.0e-6
  - name: ce-2d-weighted
    loss: ce
    logits: data/seg.npz:logits
    target: data/seg.npz:target
    weight: data/w.txt
    expect:
      loss: 1.1616597587660116
      per_sample: [[2.1269280110429727, 3.048587351573742], [6.238324625039508, 11.819355187664005]]
    rtol: 1.0e-12
  - loss: ce
    logits: data/logits.npy
    target: "[0, 2]"
    expect:
      grad:
        logits: {json.dumps(CE.grad['logits'].tolist())}
"""


def test_passing_suite(run_cli, tmp_path, data):
    suite = write(tmp_path, PASSING)
    r = run_cli(["check", suite])
    assert r.code == 0, r.stderr
    assert r.stdout.splitlines() == ["PASS ce-files", "PASS ce-inline-rounded", "PASS ce-2d-weighted", "PASS ce-4",
                                     "4 passed, 0 failed"]
    assert r.stderr == ""


def test_paths_are_relative_to_the_suite_not_the_working_directory(run_cli, tmp_path, data, monkeypatch):
    suite = write(tmp_path, PASSING)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    r = run_cli(["check", suite])
    assert r.code == 0, r.stdout + r.stderr


def test_failing_suite_prints_a_readable_diff(run_cli, tmp_path, data):
    suite = write(tmp_path, f"""\
cases:
  - name: good
    loss: ce
    logits: data/logits.npy
    target: data/target.csv
    expect: {CE_LOSS!r}
  - name: moved
    loss: ce
    logits: data/logits.npy
    target: data/target.csv
    expect: 0.5
  - name: per-sample-moved
    loss: ce
    logits: data/logits.npy
    target: data/target.csv
    expect:
      per_sample: [4.5400960276912985e-05, 1.2]
""")
    r = run_cli(["check", suite])
    assert r.code == 1
    lines = r.stdout.splitlines()
    assert lines[0] == "PASS good"
    assert lines[1] == f"FAIL moved: loss expected 0.5 actual {CE_LOSS!r} abs 0.0493 rel 0.0987"
    assert lines[2].startswith("FAIL per-sample-moved: per_sample expected 1.2 actual 1.0986122886681098 abs 0.101")
    assert lines[2].endswith("worst index [1]")
    assert lines[-1] == "1 passed, 2 failed"


def test_shape_mismatch_and_missing_expect_fail(run_cli, tmp_path):
    suite = write(tmp_path, f"""\
cases:
  - name: wrong-shape
    loss: ce
    logits: {json.dumps(LOGITS)}
    target: [0, 2]
    expect: {{per_sample: [1.0, 2.0, 3.0]}}
  - name: nothing-expected
    loss: ce
    logits: {json.dumps(LOGITS)}
    target: [0, 2]
""")
    r = run_cli(["check", suite])
    assert r.code == 1
    assert "FAIL wrong-shape: per_sample shape (2,) but expected shape (3,)" in r.stdout
    assert "FAIL nothing-expected: nothing to check (no expect)" in r.stdout
    assert r.stdout.splitlines()[-1] == "0 passed, 2 failed"


def test_case_errors_run_the_other_cases_and_exit_3(run_cli, tmp_path, data):
    suite = write(tmp_path, f"""\
cases:
  - name: missing-file
    loss: ce
    logits: data/nope.npy
    target: [0, 2]
    expect: 1.0
  - name: out-of-range
    loss: ce
    logits: data/logits.npy
    target: [0, 7]
    expect: 1.0
  - name: fails
    loss: ce
    logits: data/logits.npy
    target: [0, 2]
    expect: 0.1
  - name: passes
    loss: ce
    logits: data/logits.npy
    target: [0, 2]
    expect: {CE_LOSS!r}
""")
    r = run_cli(["check", suite])
    assert r.code == 3  # an ERROR outranks a FAIL
    lines = r.stdout.splitlines()
    assert lines[0] == "ERROR missing-file: logits data/nope.npy: no such file"
    assert lines[1].startswith("ERROR out-of-range: target: class index 7 is out of range for 3 classes")
    assert lines[2].startswith("FAIL fails:")
    assert lines[3] == "PASS passes"
    assert lines[4] == "1 passed, 1 failed, 2 errors"


def test_internal_error_in_a_case_is_exit_4(run_cli, tmp_path, monkeypatch):
    import lossctl.api

    real = lossctl.api.compute

    def broken(case, **kw):
        if case.get("reduction") == "sum":
            raise ZeroDivisionError("boom")
        return real(case, **kw)

    monkeypatch.setattr(lossctl.api, "compute", broken)
    suite = write(tmp_path, f"""\
cases:
  - {{name: ok, loss: ce, logits: {json.dumps(LOGITS)}, target: [0, 2], expect: {CE_LOSS!r}}}
  - {{name: bug, loss: ce, logits: {json.dumps(LOGITS)}, target: [0, 2], reduction: sum, expect: 1.0}}
""")
    r = run_cli(["check", suite])
    assert r.code == 4
    assert "ERROR bug: internal error: ZeroDivisionError: boom" in r.stdout
    assert "PASS ok" in r.stdout


# --------------------------------------------------------------------------- malformed suites


MALFORMED = [
    ("unknown-key", "    expct: 1.0\n", ["case 'c1'", "'expct'", "did you mean 'expect'"]),
    ("kebab-key", "    label-smoothing: 0.1\n    expect: 1.0\n", ["case 'c1'", "'label-smoothing'", "'label_smoothing'"]),
    ("bad-reduction", "    reduction: avg\n    expect: 1.0\n", ["case 'c1'", "reduction", "mean, sum, none", "'avg'"]),
    ("bad-param-type", "    label_smoothing: lots\n    expect: 1.0\n", ["case 'c1'", "label_smoothing", "expected a number"]),
    ("bad-tolerance", "    rtol: -1\n    expect: 1.0\n", ["case 'c1'", "rtol", "≥ 0"]),
    ("bad-expect-part", "    expect: {loss: 1.0, persample: [1, 2]}\n", ["case 'c1'", "'persample'", "did you mean 'per_sample'"]),
    ("bad-grad-name", "    expect: {grad: {target: [1, 2]}}\n", ["case 'c1'", "expect.grad", "'target'"]),
    ("mapping-as-array", "    weight: {a: 1}\n    expect: 1.0\n", ["case 'c1'", "weight", "a mapping, not an array"]),
    ("output-option", "    format: json\n    expect: 1.0\n", ["case 'c1'", "'format'", "output option"]),
    ("other-loss-param", "    margin: 1.0\n    expect: 1.0\n", ["case 'c1'", "ce does not take 'margin'"]),
    ("wrong-prediction", "    pred: [1.0, 2.0]\n    expect: 1.0\n", ["case 'c1'", "'pred'"]),
    ("stdin", "    weight: '-'\n    expect: 1.0\n", ["case 'c1'", "weight", "standard input"]),
    ("text-in-list", "    weight: [1, two, 3]\n    expect: 1.0\n", ["case 'c1'", "weight", "'two'"]),
    ("duplicate-key", "    expect: 1.0\n    expect: 2.0\n", ["case 'c1'", "'expect' is given twice"]),
]


@pytest.mark.parametrize("label,extra,needles", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_case_names_the_case_and_the_key(run_cli, tmp_path, label, extra, needles):
    suite = write(tmp_path, f"cases:\n  - name: c1\n    loss: ce\n    logits: {json.dumps(LOGITS)}\n    target: [0, 2]\n{extra}")
    r = run_cli(["check", suite])
    assert r.code == 3, (r.stdout, r.stderr)
    assert r.stdout == ""  # nothing ran
    assert r.stderr.startswith(f"error: {suite}:")
    for needle in needles:
        assert needle in r.stderr, (needle, r.stderr)
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize("text,needles", [
    ("cases:\n  - loss: cee\n    logits: [1.0]\n    target: 0\n", ["case #1", "unknown loss 'cee'", "did you mean 'ce'"]),
    ("cases:\n  - logits: [1.0]\n", ["case #1", "missing key 'loss'"]),
    ("cases:\n  - loss: ce\n    logits: [[1.0, 2.0]]\n", ["case #1", "missing 'target'"]),
    ("cases:\n  - loss: ce\n    target: [0]\n", ["case #1", "missing the prediction"]),
    ("cases:\n  - loss: ce\n    logits: [[1.0]]\n    probs: [[1.0]]\n    target: [0]\n", ["case #1", "logits and probs given"]),
    ("cases:\n  - [1, 2]\n", ["case #1", "expected a mapping"]),
    ("cases: {a: 1}\n", ["cases: expected a list"]),
    ("case:\n  - loss: ce\n", ["unknown top-level key 'case'", "did you mean 'cases'", "missing 'cases'"]),
    ("- loss: ce\n", ["expected a mapping with a 'cases' list"]),
    ("", ["empty suite"]),
    ("cases:\n  - loss: ce\n   bad: [\n", ["invalid YAML", ":3:"]),
    ("defaults:\n  label_smothing: 0.1\ncases:\n  - {loss: ce, logits: [[1.0]], target: [0], expect: 0.0}\n",
     ["defaults", "'label_smothing'", "did you mean 'label_smoothing'"]),
    ("rtol: 1.0e-9\ndefaults: {rtol: 1.0e-6}\ncases: []\n", ["rtol is also given at the top level"]),
    ("cases:\n  - {name: a, loss: ce, logits: [[1.0]], target: [0], expect: 0.0}\n"
     "  - {name: a, loss: ce, logits: [[1.0]], target: [0], expect: 0.0}\n", ["case 'a'", "already used by case #1"]),
    ("cases:\n  - {loss: ce, logits: [[1.0]], target: [0], expect: !!python/name:os.system ''}\n", ["unsupported YAML"]),
])
def test_malformed_suite_structure(run_cli, tmp_path, text, needles):
    suite = write(tmp_path, text)
    r = run_cli(["check", suite])
    assert r.code == 3, (r.stdout, r.stderr)
    for needle in needles:
        assert needle in r.stderr, (needle, r.stderr)


def test_every_problem_of_a_malformed_suite_is_listed_with_its_line(run_cli, tmp_path):
    suite = write(tmp_path, f"""\
cases:
  - name: first
    loss: ce
    logits: {json.dumps(LOGITS)}
    target: [0, 2]
    expct: 1.0
  - name: second
    loss: bce
    probs: [0.5]
    target: [1]
    reduction: batchmean
""")
    r = run_cli(["check", suite])
    assert r.code == 3
    assert f"{suite}: 2 problems; no case was run" in r.stderr
    assert f"{suite}:6: case 'first': unknown key 'expct'" in r.stderr
    assert f"{suite}:11: case 'second': reduction:" in r.stderr


def test_missing_suite_file_is_exit_3(run_cli, tmp_path):
    r = run_cli(["check", tmp_path / "nope.yaml"])
    assert r.code == 3
    assert "no such file" in r.stderr


# --------------------------------------------------------------------------- defaults, tolerances


def test_defaults_and_suite_wide_tolerances(run_cli, tmp_path):
    suite = write(tmp_path, f"""\
rtol: 0.0
atol: 1.0e-3        # suite-wide
defaults:
  reduction: sum
  label_smoothing: 0.0   # ce takes it; bce does not and is left alone
cases:
  - name: suite-atol
    loss: ce
    logits: {json.dumps(LOGITS)}
    target: [0, 2]
    expect: {2 * CE_LOSS + 5e-4!r}
  - name: own-atol
    loss: ce
    logits: {json.dumps(LOGITS)}
    target: [0, 2]
    expect: {2 * CE_LOSS + 5e-4!r}
    atol: 1.0e-6
  - name: own-reduction
    loss: bce
    probs: [0.5, 0.5]
    target: [1, 0]
    reduction: mean
    expect: 0.6931471805599453
""")
    r = run_cli(["check", suite, "--format", "json"])
    doc = json.loads(r.stdout)
    status = {c["name"]: c["status"] for c in doc["cases"]}
    assert status == {"suite-atol": "pass", "own-atol": "fail", "own-reduction": "pass"}
    tolerances = {c["name"]: (c["check"]["rtol"], c["check"]["atol"]) for c in doc["cases"]}
    assert tolerances["suite-atol"] == (0.0, 1e-3)
    assert tolerances["own-atol"] == (0.0, 1e-6)
    assert r.code == 1


def test_cli_style_expect_keys_and_numbers_written_as_text(run_cli, tmp_path):
    suite = write(tmp_path, f"""\
cases:
  - loss: ce
    logits: {json.dumps(LOGITS)}
    target: [0, 2]
    expect_per_sample: {json.dumps(CE.per_sample.tolist())}
    expect_grad: {json.dumps(CE.grad['logits'].tolist())}
    expect: 5.493288448141933e-1   # YAML 1.1 reads this as text; taken as the number
    rtol: 1e-12
""")
    r = run_cli(["check", suite, "--json"])
    assert r.code == 0, r.stdout + r.stderr
    whats = [c["what"] for c in json.loads(r.stdout)["cases"][0]["check"]["comparisons"]]
    assert whats == ["loss", "per_sample", "grad.logits"]


def test_regularisation_keys_in_a_case(run_cli, tmp_path):
    expected = CE_LOSS + 0.5 * 0.1 * 5.0
    suite = write(tmp_path, f"""\
cases:
  - loss: ce
    logits: {json.dumps(LOGITS)}
    target: [0, 2]
    l2: 0.1
    params: {{w: [1.0, -2.0], bias: [100.0]}}
    expect:
      loss: {expected!r}
      grad:
        params.w: [0.1, -0.2]
""")
    r = run_cli(["check", suite])
    assert r.code == 0, r.stdout + r.stderr


# --------------------------------------------------------------------------- formats, selection


def test_json_format(run_cli, tmp_path, data):
    suite = write(tmp_path, PASSING + "  - name: bad\n    loss: ce\n    logits: data/logits.npy\n    target: [0, 2]\n    expect: 0.5\n")
    r = run_cli(["check", suite, "--format", "json"])
    assert r.code == 1
    doc = json.loads(r.stdout)
    assert (doc["passed"], doc["failed"], doc["errors"], doc["exit_code"]) == (4, 1, 0, 1)
    assert doc["summary"] == "4 passed, 1 failed"
    bad = doc["cases"][-1]
    assert bad["status"] == "fail" and bad["loss"] == CE_LOSS
    assert bad["check"]["comparisons"][0]["expected"] == 0.5
    assert bad["message"].startswith("loss expected 0.5")


def test_table_format(run_cli, tmp_path, data):
    suite = write(tmp_path, PASSING)
    r = run_cli(["check", suite, "-f", "table"])
    assert r.code == 0
    assert "ce-2d-weighted" in r.stdout and "PASS" in r.stdout
    assert r.stdout.rstrip().endswith("4 passed, 0 failed")


def test_unknown_format_is_a_usage_error(run_cli, tmp_path, data):
    r = run_cli(["check", write(tmp_path, PASSING), "--format", "csv"])
    assert r.code == 2


@pytest.mark.parametrize("patterns,selected", [
    (["inline"], ["ce-inline-rounded"]),
    (["CE-FILES"], ["ce-files"]),  # case-insensitive
    (["ce-*d"], ["ce-inline-rounded", "ce-2d-weighted"]),  # a glob matches the whole name
    (["files", "weighted"], ["ce-files", "ce-2d-weighted"]),  # repeated -k: any
])
def test_k_selects_cases(run_cli, tmp_path, data, patterns, selected):
    suite = write(tmp_path, PASSING)
    argv = ["check", suite]
    for p in patterns:
        argv += ["-k", p]
    r = run_cli(argv)
    assert r.code == 0
    lines = r.stdout.splitlines()
    assert [ln.split()[1] for ln in lines[:-1]] == selected
    assert lines[-1] == f"{len(selected)} passed, 0 failed, {4 - len(selected)} deselected"


def test_k_selecting_nothing_has_its_own_exit_code(run_cli, tmp_path, data):
    r = run_cli(["check", write(tmp_path, PASSING), "-k", "nothing-like-this"])
    assert r.code == lossctl.ExitCode.NO_CASES == 5
    assert "selects none of the 4 cases" in r.stderr and r.stderr.count("\n") == 1


# --------------------------------------------------------------------------- JUnit


def test_junit_report(run_cli, tmp_path, data):
    suite = write(tmp_path, PASSING + """\
  - name: bad
    loss: ce
    logits: data/logits.npy
    target: [0, 2]
    expect: 0.5
  - name: broken
    loss: ce
    logits: data/missing.npy
    target: [0, 2]
    expect: 0.5
""")
    report = tmp_path / "reports" / "junit.xml"
    r = run_cli(["check", suite, "--junit", report])
    assert r.code == 3
    root = ET.parse(report).getroot()
    assert root.tag == "testsuites"
    (ts,) = root.findall("testsuite")
    assert ts.get("name") == "suite"
    assert (ts.get("tests"), ts.get("failures"), ts.get("errors"), ts.get("skipped")) == ("6", "1", "1", "0")
    cases = {tc.get("name"): tc for tc in ts.findall("testcase")}
    assert list(cases) == ["ce-files", "ce-inline-rounded", "ce-2d-weighted", "ce-4", "bad", "broken"]
    assert cases["ce-files"].find("failure") is None and cases["ce-files"].find("error") is None
    failure = cases["bad"].find("failure")
    assert failure is not None
    assert failure.get("message") == f"loss expected 0.5 actual {CE_LOSS!r} abs 0.0493 rel 0.0987"
    assert "expected: 0.5" in failure.text and f"actual:   {CE_LOSS!r}" in failure.text
    error = cases["broken"].find("error")
    assert error is not None and "no such file" in error.get("message")
    assert cases["bad"].get("classname") == "suite.ce"
    assert int(cases["bad"].get("line")) > 0
    assert float(ts.get("time")) >= 0


def test_junit_of_a_malformed_suite_holds_the_error(run_cli, tmp_path):
    suite = write(tmp_path, "cases:\n  - loss: ce\n    expct: 1\n")
    report = tmp_path / "junit.xml"
    r = run_cli(["check", suite, "--junit", report])
    assert r.code == 3
    ts = ET.parse(report).getroot().find("testsuite")
    assert ts.get("errors") == "1"
    assert "expct" in ts.find("testcase/error").get("message") + ts.find("testcase/error").text


def test_junit_never_writes_over_the_suite_or_an_input(run_cli, tmp_path, data):
    suite = write(tmp_path, PASSING)
    before = suite.read_bytes()
    assert run_cli(["check", suite, "--junit", suite]).code == 2
    assert run_cli(["check", suite, "--junit", data / "w.txt"]).code == 2
    assert suite.read_bytes() == before
    assert (data / "w.txt").read_text() == "1.0\n9.0\n"
    broken = write(tmp_path, "cases: [\n", "broken.yaml")  # malformed: the report would hold the error
    assert run_cli(["check", broken, "--junit", broken]).code == 2
    assert broken.read_text() == "cases: [\n"


# --------------------------------------------------------------------------- --update


UPDATE_BEFORE = f"""\
# Pinned values. Comments, blank lines and order survive --update.
defaults:
  reduction: mean   # the default anyway

cases:
  # a failing scalar
  - name: scalar
    loss: ce
    logits: data/logits.npy   # a file, never touched
    target: [0, 2]
    expect: 0.5   # was wrong

  - name: rounded-passes
    loss: ce
    logits: data/logits.npy
    target: [0, 2]
    expect: 0.549329    # within atol: kept as written
    atol: 1.0e-6

  - name: mapping
    loss: ce
    logits: data/logits.npy
    target: [0, 2]
    expect:
      loss: {CE_LOSS!r}
      per_sample:
        - 1.0
        - 2.0
    rtol: 1.0e-9

  - name: new
    loss: bce
    probs: [0.2, 0.7]
    target: [0, 1]
    per_sample: true
  - {{name: flow, loss: mse, pred: [1.0, 2.0], target: [0.0, 0.0]}}
# the end
"""

UPDATE_AFTER = f"""\
# Pinned values. Comments, blank lines and order survive --update.
defaults:
  reduction: mean   # the default anyway

cases:
  # a failing scalar
  - name: scalar
    loss: ce
    logits: data/logits.npy   # a file, never touched
    target: [0, 2]
    expect: {CE_LOSS!r}   # was wrong

  - name: rounded-passes
    loss: ce
    logits: data/logits.npy
    target: [0, 2]
    expect: 0.549329    # within atol: kept as written
    atol: 1.0e-6

  - name: mapping
    loss: ce
    logits: data/logits.npy
    target: [0, 2]
    expect:
      loss: {CE_LOSS!r}
      per_sample: [4.5400960276912985e-05, 1.0986122886681098]
    rtol: 1.0e-9

  - name: new
    loss: bce
    probs: [0.2, 0.7]
    target: [0, 1]
    per_sample: true
    expect:
      loss: 0.2899092476264711
      per_sample: [0.22314355131420976, 0.35667494393873245]
  - {{name: flow, loss: mse, pred: [1.0, 2.0], target: [0.0, 0.0], expect: 2.5}}
# the end
"""


def test_update_round_trip(run_cli, tmp_path, data):
    suite = write(tmp_path, UPDATE_BEFORE)
    data_before = {p.name: p.read_bytes() for p in data.iterdir()}
    assert run_cli(["check", suite]).code == 1

    r = run_cli(["check", suite, "--update"])
    assert r.code == 0, r.stdout + r.stderr
    assert r.stdout.splitlines() == [
        f"updated scalar: loss 0.5 -> {CE_LOSS!r}",
        "updated mapping: per_sample [1.0, 2.0] -> [4.5400960276912985e-05, 1.0986122886681098]",
        "added new: loss 0.2899092476264711",
        "added new: per_sample [0.22314355131420976, 0.35667494393873245]",
        "added flow: loss 2.5",
        "4 updated, 1 unchanged",
    ]
    # the untouched parts are byte-identical: the whole file is exactly the expected text
    assert suite.read_text() == UPDATE_AFTER
    # now everything passes, and a second update changes nothing
    r = run_cli(["check", suite])
    assert r.code == 0, r.stdout
    assert r.stdout.splitlines()[-1] == "5 passed, 0 failed"
    r = run_cli(["check", suite, "--update"])
    assert r.code == 0
    assert r.stdout.splitlines() == ["0 updated, 5 unchanged"]
    assert suite.read_text() == UPDATE_AFTER
    # data files untouched
    assert {p.name: p.read_bytes() for p in data.iterdir()} == data_before


def test_update_keeps_untouched_lines_byte_identical_in_a_larger_suite(run_cli, tmp_path):
    """Every line outside the rewritten expect values stays the same, in the same order."""
    import difflib

    cases = []
    for i in range(30):
        cases.append(f"  # case {i}\n  - name: c{i}\n    loss: ce\n    logits: {json.dumps(LOGITS)}   # inline\n"
                     f"    target: [0, 2]\n    expect: {0.5 if i % 3 == 0 else CE_LOSS!r}\n")
    suite = write(tmp_path, "cases:\n" + "\n".join(cases))
    before = suite.read_text().splitlines(keepends=True)
    r = run_cli(["check", suite, "--update"])
    assert r.code == 0
    after = suite.read_text().splitlines(keepends=True)
    changed = [(a, b) for a, b in zip(before, after) if a != b]
    assert len(before) == len(after)
    assert len(changed) == 10
    assert all(a == "    expect: 0.5\n" and b == f"    expect: {CE_LOSS!r}\n" for a, b in changed)
    assert not [d for d in difflib.ndiff(before, after) if d.startswith(("- ", "+ ")) and "expect" not in d]


def test_update_adds_gradients_when_asked_and_keeps_the_comment(run_cli, tmp_path):
    suite = write(tmp_path, f"""\
cases:
  - name: g
    loss: ce
    logits: {json.dumps(LOGITS)}
    target: [0, 2]
    grad: true
    expect: 0.549329  # rounded
    atol: 1.0e-6
""")
    r = run_cli(["check", suite, "--update"])
    assert r.code == 0
    assert r.stdout.splitlines()[0].startswith("added g: grad.logits")
    text = suite.read_text()
    assert "    expect:  # rounded\n      loss: 0.549329\n      grad:\n        logits: [[" in text
    r = run_cli(["check", suite, "--json"])
    assert r.code == 0
    assert [c["what"] for c in json.loads(r.stdout)["cases"][0]["check"]["comparisons"]] == ["loss", "grad.logits"]


def test_update_never_writes_data_files(run_cli, tmp_path, data):
    np.save(data / "expected.npy", np.array([1.0, 2.0]))
    before = (data / "expected.npy").read_bytes()
    suite = write(tmp_path, f"""\
cases:
  - name: from-file
    loss: ce
    logits: data/logits.npy
    target: [0, 2]
    expect:
      loss: 0.5
      per_sample: data/expected.npy
""")
    r = run_cli(["check", suite, "--update"])
    assert r.code == 1  # still failing: the file's values
    assert f"updated from-file: loss 0.5 -> {CE_LOSS!r}" in r.stdout
    assert "not updated from-file: per_sample comes from data/expected.npy; lossctl never writes data files" in r.stdout
    assert (data / "expected.npy").read_bytes() == before
    assert "per_sample: data/expected.npy" in suite.read_text()


def test_update_with_k_touches_only_the_selected_cases(run_cli, tmp_path):
    suite = write(tmp_path, f"""\
cases:
  - {{name: one, loss: ce, logits: {json.dumps(LOGITS)}, target: [0, 2], expect: 0.1}}
  - {{name: two, loss: ce, logits: {json.dumps(LOGITS)}, target: [0, 2], expect: 0.2}}
""")
    r = run_cli(["check", suite, "--update", "-k", "two"])
    assert r.code == 0
    text = suite.read_text()
    assert "expect: 0.1}" in text and f"expect: {CE_LOSS!r}}}" in text


def test_update_json_and_errors(run_cli, tmp_path):
    suite = write(tmp_path, f"""\
cases:
  - {{name: one, loss: ce, logits: {json.dumps(LOGITS)}, target: [0, 2], expect: 0.1}}
  - {{name: broken, loss: ce, logits: missing.npy, target: [0, 2], expect: 0.2}}
""")
    r = run_cli(["check", suite, "--update", "--json"])
    assert r.code == 3
    doc = json.loads(r.stdout)
    assert doc["updates"] == [{"case": "one", "what": "loss", "action": "updated", "old": 0.1, "new": CE_LOSS}]
    assert doc["summary"] == "1 updated, 0 unchanged, 1 error"


def test_update_and_junit_conflict(run_cli, tmp_path, data):
    r = run_cli(["check", write(tmp_path, PASSING), "--update", "--junit", tmp_path / "r.xml"])
    assert r.code == 2
    assert not (tmp_path / "r.xml").exists()


def test_update_writes_floats_yaml_reads_back(tmp_path):
    from lossctl.suite.rewrite import yaml_flow

    import yaml

    values = [1e-05, 1e20, 5e-324, 0.1, -0.0, float("inf"), float("-inf"), 123456789.0, 1.7976931348623157e308]
    text = yaml_flow(values)
    back = yaml.safe_load(text)
    assert all(isinstance(v, float) for v in back)
    assert back == values
    nan = yaml.safe_load(yaml_flow([float("nan")]))[0]
    assert nan != nan


# --------------------------------------------------------------------------- the shipped example and speed


def test_examples_ci_suite_passes(run_cli, tmp_path):
    report = tmp_path / "report.xml"
    r = run_cli(["check", ROOT / "examples/ci/seeds.yaml", "--junit", report])
    assert r.code == 0, r.stdout + r.stderr
    assert r.stdout.splitlines()[-1] == "7 passed, 0 failed"
    ts = ET.parse(report).getroot().find("testsuite")
    assert (ts.get("name"), ts.get("tests"), ts.get("failures")) == ("lossctl-seeds", "7", "0")


def test_examples_ci_workflow_works_in_another_repository(tmp_path):
    """Copied with the example suite into a repository that is not lossctl: it installs lossctl
    (not the repository it runs in), and its check step passes there and writes the report."""
    import shutil
    import subprocess
    import sys

    import yaml

    wf = yaml.safe_load((ROOT / "examples/ci/github-workflow.yml").read_text())
    steps = [s for job in wf["jobs"].values() for s in job["steps"]]
    install = next(s["run"] for s in steps if s.get("name") == "Install lossctl")
    assert "lossctl" in install and "pip install ." not in install and "-e ." not in install
    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copy(ROOT / "examples/ci/seeds.yaml", repo / "seeds.yaml")
    shutil.copytree(ROOT / "examples/ci/data", repo / "data")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "lossctl").write_text(f"#!/bin/sh\nexec {sys.executable} -m lossctl \"$@\"\n")
    (bindir / "lossctl").chmod(0o755)
    env = dict(os.environ, **{k: str(v) for k, v in wf["env"].items()}, PATH=f"{bindir}:{os.environ['PATH']}",
               PYTHONPATH=str(ROOT))
    check = next(s["run"] for s in steps if s.get("name") == "Check pinned loss values")
    p = subprocess.run(["bash", "-c", check], cwd=repo, env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.splitlines()[-1] == "7 passed, 0 failed"
    assert (repo / "report.xml").exists()
    assert any("junit" in s.get("uses", "") for s in steps)


def test_a_thousand_cases_run_in_one_process(run_cli, tmp_path):
    """Every case runs and is counted; the speed of 1000 cases is measured by benchmarks/run.py, not here."""
    lines = ["cases:"]
    for i in range(1000):
        lines += [f"  - name: c{i}", "    loss: ce", f"    logits: {json.dumps(LOGITS)}", "    target: [0, 2]",
                  f"    expect: {CE_LOSS!r}"]
    suite = write(tmp_path, "\n".join(lines) + "\n")
    r = run_cli(["check", suite])
    assert r.code == 0
    assert r.stdout.splitlines()[-1] == "1000 passed, 0 failed"
    assert [line for line in r.stdout.splitlines() if line.startswith("PASS ")][-1] == "PASS c999"


ANCHORS_SUITE = f"""\
x-base: &base          # x- keys are free: a place for anchors
  loss: ce
  logits: {json.dumps(LOGITS)}
  target: [0, 2]
cases:
  - name: one
    <<: *base
    expect: &shared 0.5
  - name: two
    <<: *base
    expect: *shared
  - name: three
    <<: *base
"""


def test_update_with_anchors_merge_keys_and_shared_values(run_cli, tmp_path):
    suite = write(tmp_path, ANCHORS_SUITE)
    before = suite.read_text()
    r = run_cli(["check", suite, "--update"])
    assert r.code == 1  # the shared value is not rewritten: it would change both cases
    assert "not updated one: loss comes from a YAML anchor shared with other cases" in r.stdout
    assert "added three: loss" in r.stdout
    after = suite.read_text()
    assert after == before.replace("  - name: three\n", f"  - name: three\n    expect: {CE_LOSS!r}\n")
    r = run_cli(["check", suite, "-k", "three"])
    assert r.code == 0


def test_update_keeps_crlf_line_ends_and_the_byte_order_mark(run_cli, tmp_path):
    suite = tmp_path / "crlf.yaml"
    original = (f"\ufeffcases:\r\n  - name: a   # comment\r\n    loss: ce\r\n    logits: {json.dumps(LOGITS)}\r\n"
                f"    target: [0, 2]\r\n").encode("utf-8")
    suite.write_bytes(original)
    r = run_cli(["check", suite, "--update"])
    assert r.code == 0
    assert suite.read_bytes() == original + f"    expect: {CE_LOSS!r}\r\n".encode()
    assert run_cli(["check", suite]).code == 0


def test_billion_laughs_suite_fails_fast(run_cli, tmp_path):
    levels = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    names = "abcdefghi"
    for prev, cur in zip(names, names[1:]):
        levels.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]")
    suite = tmp_path / "bomb.yaml"
    suite.write_text("\n".join(levels) + "\ncases:\n  - loss: ce\n    logits: *i\n    target: [0]\n    expect: 1\n")
    r = run_cli(["check", str(suite)])
    assert r.code == 3
    assert "billion laughs" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("name", lossctl.registry_names())
def test_the_command_line_options_minus_output_only_keys_are_the_suite_case_keys(name):
    """One declaration of a call: the options Typer shows for ``lossctl NAME`` (built from the
    spec and lossctl.core.call) and the keys the suite loader accepts for a case of NAME differ
    exactly by the output-only keys (and the case's own ``name``/``loss``)."""
    import typer

    from lossctl.cli.app import build_app
    from lossctl.suite import load

    command = typer.main.get_command(build_app()).commands[name]
    options = {p.name for p in command.params if not getattr(p, "hidden", False)}
    spec = lossctl.registry().get(name)
    assert options - set(load.OUTPUT_KEYS) == load.case_keys(spec) - {"name", "loss"}
    from lossctl.core.call import BY_NAME

    assert {k for k in load.OUTPUT_KEYS if BY_NAME[k].applies_to(spec)} <= options  # the command has them
