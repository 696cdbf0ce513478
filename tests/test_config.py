"""Project configuration: [tool.lossctl] in pyproject.toml or lossctl.toml, found from a nested
folder; --config FILE and --isolated; command line > file > default; the origin of each value
in --explain and in check's report."""

from __future__ import annotations

import json

import pytest

from lossctl.core.call import KEYS, config_keys

CALL = ["ce", "--logits", "[[10,0,-10],[8,8,8]]", "--target", "[0,2]"]
LOSS = 0.5493288448141933


@pytest.fixture
def project(tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n\n[tool.lossctl]\nrtol = 1e-3\nformat = "json"\n')
    nested = tmp_path / "src" / "deep"
    nested.mkdir(parents=True)
    monkeypatch.chdir(nested)
    return tmp_path


def test_the_keys_a_file_may_set_are_the_call_keys_marked_config():
    names = {k.name for k in config_keys()}
    assert {"rtol", "atol", "dtype", "format", "convention"} <= names
    assert names <= {k.name for k in KEYS}
    assert not names & {"expect", "output", "html", "logits"}


def test_discovered_from_a_nested_folder(run_cli, project):
    r = run_cli([*CALL, "--expect", "0.5494"])
    doc = json.loads(r.stdout)  # format = "json" from the file
    assert r.code == 0 and doc["check"]["rtol"] == 1e-3


def test_command_line_beats_the_file(run_cli, project):
    r = run_cli([*CALL, "--expect", "0.5494", "--rtol", "1e-9", "--format", "plain"])
    assert r.code == 1 and r.stdout == f"{LOSS!r}\n"


def test_isolated_ignores_the_file_and_config_names_one(run_cli, project, tmp_path_factory):
    assert run_cli([*CALL, "--isolated", "--expect", "0.5494"]).code == 1
    other = tmp_path_factory.mktemp("elsewhere") / "lossctl.toml"
    other.write_text('atol = 0.01\nformat = "plain"\n')
    r = run_cli([*CALL, "--config", str(other), "--expect", "0.55"])
    assert r.code == 0 and r.stdout == f"{LOSS!r}\n"
    assert run_cli([*CALL, "--config", str(other), "--isolated"]).code == 2


def test_lossctl_toml_wins_over_pyproject_in_the_same_folder(run_cli, project):
    (project / "lossctl.toml").write_text('format = "plain"\n')
    assert run_cli(CALL).stdout == f"{LOSS!r}\n"


def test_a_pyproject_without_the_table_is_passed_over(run_cli, tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text('[tool.lossctl]\nformat = "json"\n')
    inner = tmp_path / "pkg"
    inner.mkdir()
    (inner / "pyproject.toml").write_text('[project]\nname = "inner"\n')
    monkeypatch.chdir(inner)
    assert json.loads(run_cli(CALL).stdout)["loss"] == LOSS


@pytest.mark.parametrize("text, message", [
    ("rtool = 1e-3\n", "unknown key 'rtool'; did you mean 'rtol'?"),
    ('rtol = "small"\n', "'rtol': expected a number"),
    ('dtype = "float16"\n', "'dtype': expected one of float64, float32"),
    ("rtol = [\n", "not valid TOML"),
])
def test_bad_files_are_usage_errors_naming_the_file(run_cli, tmp_path, monkeypatch, text, message):
    (tmp_path / "lossctl.toml").write_text(text)
    monkeypatch.chdir(tmp_path)
    r = run_cli(CALL)
    assert r.code == 2 and str(tmp_path / "lossctl.toml") in r.stderr and message in r.stderr


def test_explain_shows_each_value_and_where_it_came_from(run_cli, project):
    doc = json.loads(run_cli([*CALL, "--explain", "--atol", "1e-6"]).stdout)
    source = f"{project / 'pyproject.toml'} [tool.lossctl]"
    assert doc["settings"]["rtol"] == {"value": 1e-3, "from": source}
    assert doc["settings"]["format"] == {"value": "json", "from": source}
    assert doc["settings"]["atol"] == {"value": 1e-6, "from": "command line"}
    assert doc["settings"]["rows"] == {"value": 3, "from": "default"}
    plain = run_cli([*CALL, "--explain", "--format", "plain"]).stdout.splitlines()
    assert f"rtol = 0.001 ({source})" in plain and "format = plain (command line)" in plain


def test_check_takes_tolerances_from_the_file_and_reports_them(run_cli, project):
    suite = project / "s.yaml"
    suite.write_text("cases:\n  - loss: ce\n    logits: [[10.0, 0.0, -10.0], [8.0, 8.0, 8.0]]\n    target: [0, 2]\n"
                     "    expect: 0.5494\n  - loss: ce\n    logits: [[10.0, 0.0, -10.0], [8.0, 8.0, 8.0]]\n"
                     "    target: [0, 2]\n    expect: 0.5494\n    rtol: 1.0e-9\n")
    r = run_cli(["check", str(suite), "--format", "plain"])
    lines = r.stdout.splitlines()
    assert lines[0] == f"config: {project / 'pyproject.toml'} [tool.lossctl] (rtol = 0.001, format = json)"
    assert lines[1].startswith("PASS ce-1") and lines[2].startswith("FAIL ce-2")  # the case's own rtol wins
    doc = json.loads(run_cli(["check", str(suite)]).stdout)  # format json from the file
    assert doc["config"]["values"]["rtol"] == 1e-3
    assert run_cli(["check", str(suite), "--isolated", "-f", "plain"]).stdout.splitlines()[0].startswith("FAIL ce-1")


def test_diff_takes_tolerances_and_format_from_the_file(run_cli, project):
    r = run_cli(["diff", "[1.0, 2.0]", "[1.0, 2.0005]"])
    assert r.code == 0 and json.loads(r.stdout)["arrays"][0]["mismatched"] == 0  # rtol 1e-3, json from the file
    assert run_cli(["diff", "[1.0, 2.0]", "[1.0, 2.0005]", "--isolated"]).code == 1


def test_top_level_help_lists_config_and_isolated(run_cli):
    out = run_cli(["--help"]).stdout
    assert "--config FILE" in out and "--isolated" in out
