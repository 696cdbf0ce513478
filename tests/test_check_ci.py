"""``lossctl check`` in CI: --format github (GitHub's workflow-command annotations), jsonl and
junit on stdout, --exit-zero, -q and -v."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

import pytest

SUITE = """\
name: ci
cases:
  - name: good
    loss: ce
    logits: [[10.0, 0.0, -10.0], [8.0, 8.0, 8.0]]
    target: [0, 2]
    expect: 0.5493288448141933
  - name: "moved, by: 100%"
    loss: ce
    logits: [[10.0, 0.0, -10.0], [8.0, 8.0, 8.0]]
    target: [0, 2]
    expect: 0.6
  - name: broken
    loss: ce
    logits: missing.npy
    target: [0]
    expect: 1.0
"""

# GitHub's documented form: ::error file={name},line={line},endLine={endLine},title={title}::{message}
ANNOTATION = re.compile(r"^::error file=(?P<file>[^,]*),line=(?P<line>\d+),title=(?P<title>[^:]*)::(?P<msg>[^\r\n]*)$")


def _unescape(text: str) -> str:
    return text.replace("%3A", ":").replace("%2C", ",").replace("%0A", "\n").replace("%0D", "\r").replace("%25", "%")


@pytest.fixture
def suite(tmp_path):
    path = tmp_path / "ci.yaml"
    path.write_text(SUITE)
    return path


def test_github_annotations_name_the_suite_file_and_the_case_line(run_cli, suite):
    r = run_cli(["check", str(suite), "--format", "github"])
    assert r.code == 3  # an error outranks a failure
    notes = [line for line in r.stdout.splitlines() if line.startswith("::")]
    assert len(notes) == 2
    parsed = [ANNOTATION.match(n) for n in notes]
    assert all(parsed), notes
    lines = SUITE.splitlines()
    for m, name in zip(parsed, ["moved, by: 100%", "broken"]):
        assert _unescape(m["file"]) == str(suite)
        assert lines[int(m["line"]) - 1].strip().startswith("- name:")  # the case's own line
        assert name in lines[int(m["line"]) - 1]
        assert _unescape(m["title"]) == f"lossctl check: {name} {'failed' if name != 'broken' else 'error'}"
    assert "%25" in parsed[0]["title"] and "%2C" in parsed[0]["title"] and "%3A" in parsed[0]["title"]
    assert "expected 0.6" in _unescape(parsed[0]["msg"])
    assert "missing.npy" in _unescape(parsed[1]["msg"])
    assert r.stdout.splitlines()[-1] == "1 passed, 1 failed, 1 error"


def test_jsonl_is_one_object_a_line_then_the_totals(run_cli, suite):
    r = run_cli(["check", str(suite), "--format", "jsonl"])
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert [row.get("status") for row in rows[:3]] == ["pass", "fail", "error"]
    assert rows[0]["line"] == 3 and rows[0]["loss"] == pytest.approx(0.5493288448141933)
    assert rows[-1]["passed"] == 1 and rows[-1]["failed"] == 1 and rows[-1]["errors"] == 1 and rows[-1]["exit_code"] == 3


def test_junit_on_stdout(run_cli, suite):
    r = run_cli(["check", str(suite), "--format", "junit"])
    root = ET.fromstring(r.stdout.encode())
    ts = root.find("testsuite")
    assert (ts.get("tests"), ts.get("failures"), ts.get("errors")) == ("3", "1", "1")


def test_exit_zero_turns_failures_but_not_errors_into_0(run_cli, tmp_path):
    only_fail = tmp_path / "f.yaml"
    only_fail.write_text(SUITE.split("  - name: broken")[0])
    assert run_cli(["check", str(only_fail)]).code == 1
    assert run_cli(["check", str(only_fail), "--exit-zero"]).code == 0
    with_error = tmp_path / "e.yaml"
    with_error.write_text(SUITE)
    assert run_cli(["check", str(with_error), "--exit-zero"]).code == 3


def test_quiet_and_verbose(run_cli, suite):
    quiet = run_cli(["check", str(suite), "-q", "-f", "plain"]).stdout.splitlines()
    assert [line.split()[0] for line in quiet] == ["FAIL", "ERROR", "1"]
    loud = run_cli(["check", str(suite), "-v", "-f", "plain"]).stdout.splitlines()
    assert loud[0] == "PASS good (ce = 0.5493288448141933, rtol 1e-07, atol 1e-09)"
    both = run_cli(["check", str(suite), "-q", "-v"])
    assert both.code == 2


def test_update_refuses_the_ci_formats(run_cli, suite):
    r = run_cli(["check", str(suite), "--update", "--format", "github"])
    assert r.code == 2 and "--update and --format github" in r.stderr
