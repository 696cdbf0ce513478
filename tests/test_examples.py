"""examples/ stays true: its suites pass, every seeds-extra.yaml case holds, the data files are current.

* ``lossctl check`` on every suite under examples/ (any ``*.yaml``/``*.yml`` with ``cases:``
  except seeds-extra.yaml) exits 0 with "N passed, 0 failed", N = the suite's case count.
* examples/seeds-extra.yaml holds the worked examples that are not a single loss call. Each
  case is checked through the real CLI (``main(argv)``, in-process) according to its kind
  (``explain``, ``info``, ``activation``, ``ratio``; described at the top of that file), every
  ``expect`` entry is compared, and no case or key is left unchecked.
* ``examples/make_examples.py --check``: the data files are what the script writes.
* every ``lossctl`` command of the case tables in examples/README.md runs (exit 0), and the
  tables list exactly the cases of the two files.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
EXTRA = EXAMPLES / "seeds-extra.yaml"
README = EXAMPLES / "README.md"
# YAML files with ``cases:`` that are not `lossctl check` suites (read by this module instead).
NOT_SUITES = {"seeds-extra.yaml"}
KNOWN_SUITES = {"seeds.yaml", "ci/seeds.yaml"}

# seeds-extra.yaml: tolerances unless a case sets rtol/atol (its expected values are float64 torch).
RTOL, ATOL = 1e-12, 1e-15
ROWS = "1000000"  # --rows for --explain: show every row

# keys of a seeds-extra case that are not options of the loss command
META_KEYS = {"name", "expect", "rtol", "atol", "explain", "activation"}
# info: expect key -> the name in `lossctl info --json` ("mean")
INFO_KEYS = {"h_p": "H(P)", "h_q": "H(Q)", "h_pq": "H(P,Q)", "kl_pq": "KL(P‖Q)", "kl_qp": "KL(Q‖P)", "js": "JS(P,Q)"}
# activation: name -> (f, f') applied to the prediction
ACTIVATIONS: dict[str, tuple[Callable, Callable]] = {
    "sigmoid": (lambda z: 1.0 / (1.0 + np.exp(-z)), lambda z, a: a * (1.0 - a)),
}


# --------------------------------------------------------------------------- helpers


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _extra_cases() -> list[dict]:
    return _yaml(EXTRA)["cases"]


def kind_of(case: dict) -> str:
    """The kind of a seeds-extra case; exactly one marker key must be present."""
    markers = [k for k in ("info", "ratio", "activation") if k in case]
    if case.get("explain") is True:
        markers.append("explain")
    assert len(markers) == 1, f"case {case.get('name')!r}: expected exactly one of explain/info/activation/ratio, got {markers}"
    return markers[0]


def leaves(expect: Any, prefix: str = "") -> list[str]:
    """Dotted paths of every expected value (a bare number is ``value``)."""
    if not isinstance(expect, dict):
        return [prefix or "value"]
    out: list[str] = []
    for k, v in expect.items():
        out += leaves(v, f"{prefix}{k}") if not isinstance(v, dict) else leaves(v, f"{prefix}{k}.")
    return out


def _numbers(x: Any) -> Any:
    """JSON values as numbers: lossctl writes non-finite numbers as "nan", "inf", "-inf"."""
    if isinstance(x, list):
        return [_numbers(v) for v in x]
    if isinstance(x, str):
        return float(x)
    return x


def assert_close(actual: Any, expected: Any, case: dict, what: str) -> None:
    rtol, atol = float(case.get("rtol", RTOL)), float(case.get("atol", ATOL))
    a = np.asarray(_numbers(actual), dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    assert a.shape == e.shape, f"{case['name']}: {what}: shape {a.shape}, expected {e.shape}"
    ok = np.isclose(a, e, rtol=rtol, atol=atol)
    assert ok.all(), f"{case['name']}: {what}: got {a.tolist()}, expected {e.tolist()} (rtol {rtol}, atol {atol})"


def loss_argv(call: dict, skip: set[str] = set()) -> list[str]:
    """A suite-style loss case as a command line: ``loss`` first, every other key as ``--kebab-key``."""
    argv = [call["loss"]]
    for key, value in call.items():
        if key == "loss" or key in META_KEYS or key in skip:
            continue
        option = "--" + key.replace("_", "-")
        if value is True:
            argv.append(option)
        elif isinstance(value, str):
            argv += [option, value]  # a source, relative to examples/ (the working directory)
        else:
            assert value is not False and value is not None, f"{option}: {value!r}"
            argv += [option, json.dumps(value)]
    return argv


def run_json(run_cli, argv: list[str]) -> dict:
    r = run_cli([*argv, "--json"])
    assert r.code == 0, f"lossctl {shlex.join(argv)} exited {r.code}: {r.stderr}"
    return json.loads(r.stdout)


# --------------------------------------------------------------------------- seeds-extra.yaml: one checker per kind
# Each returns the dotted paths of the expected values it compared.


def check_explain(run_cli, case: dict) -> list[str]:
    expect = case["expect"]
    argv = loss_argv(case) + ["--explain", "--rows", ROWS]
    if "per_sample" in expect:
        argv.append("--per-sample")
    if "grad" in expect:
        argv.append("--grad")
    doc = run_json(run_cli, argv)
    assert doc["rows_shown"] == doc["rows_total"], "--explain left rows out"
    labels = [s["label"] for s in doc["steps"]]
    steps = {s["label"]: s for s in doc["steps"]}
    checked = []
    for key, value in expect.items():
        if key == "steps":
            for label, want in value.items():
                assert label in steps, f"{case['name']}: no step {label!r}; lossctl's steps: {labels}"
                assert labels.count(label) == 1, f"{case['name']}: step label {label!r} is not unique: {labels}"
                assert_close(steps[label]["value"], want, case, f"step {label!r}")
                checked.append(f"steps.{label}")
        elif key == "grad":
            for name, want in value.items():
                assert_close(doc["grad"][name], want, case, f"grad.{name}")
                checked.append(f"grad.{name}")
        elif key in ("loss", "per_sample"):
            assert_close(doc[key], value, case, key)
            checked.append(key)
        else:
            pytest.fail(f"{case['name']}: expect key {key!r} is not checked for explain cases")
    return checked


def check_info(run_cli, case: dict) -> list[str]:
    assert set(case) <= {"name", "info", "expect", "rtol", "atol"}, sorted(case)
    spec = case["info"]
    assert set(spec) <= {"p", "q", "base"} and "p" in spec, sorted(spec)
    argv = ["info", "--p", spec["p"]]
    if "q" in spec:
        argv += ["--q", spec["q"]]
    if "base" in spec:
        argv += ["--base", str(spec["base"])]
    doc = run_json(run_cli, argv)
    if "q" in spec:
        assert doc["identity"]["holds"] is True
    checked = []
    for key, want in case["expect"].items():
        assert key in INFO_KEYS, f"{case['name']}: unknown info measure {key!r} (known: {sorted(INFO_KEYS)})"
        assert INFO_KEYS[key] in doc["mean"], f"{case['name']}: lossctl info gave no {INFO_KEYS[key]}: {doc['mean']}"
        assert_close(doc["mean"][INFO_KEYS[key]], want, case, key)
        checked.append(key)
    return checked


def check_activation(run_cli, case: dict) -> list[str]:
    """The loss of f(z) and its gradient w.r.t. z, by the chain rule: lossctl's d loss/d a times f'(z)."""
    from lossctl.io.readers import read_array
    from lossctl.io.sources import parse_source

    name = case["activation"]
    assert name in ACTIVATIONS, f"{case['name']}: unknown activation {name!r}"
    f, fprime = ACTIVATIONS[name]
    kinds = [k for k in ("pred", "logits", "probs") if k in case]
    assert len(kinds) == 1, kinds
    kind = kinds[0]
    raw = case[kind]
    z = read_array(parse_source(raw, base=EXAMPLES), kind) if isinstance(raw, str) else np.asarray(raw, dtype=np.float64)
    a = f(np.asarray(z, dtype=np.float64))
    argv = loss_argv(case, skip={kind}) + [f"--{kind}", json.dumps(a.tolist())]
    expect = case["expect"]
    if "grad" in expect:
        argv.append("--grad")
    doc = run_json(run_cli, argv)
    checked = []
    for key, value in expect.items():
        if key == "loss":
            assert_close(doc["loss"], value, case, "loss")
            checked.append("loss")
        elif key == "grad":
            assert set(value) == {kind}, f"{case['name']}: grad is w.r.t. {kind!r} (before the activation)"
            dz = np.asarray(_numbers(doc["grad"][kind]), dtype=np.float64) * fprime(z, a)
            assert_close(dz.tolist(), value[kind], case, f"grad.{kind} (chain rule through {name})")
            checked.append(f"grad.{kind}")
        else:
            pytest.fail(f"{case['name']}: expect key {key!r} is not checked for activation cases")
    return checked


def check_ratio(run_cli, case: dict) -> list[str]:
    assert set(case) <= {"name", "ratio", "expect", "rtol", "atol"}, sorted(case)
    assert set(case["ratio"]) == {"numerator", "denominator"}, sorted(case["ratio"])
    num = run_json(run_cli, loss_argv(case["ratio"]["numerator"]))["loss"]
    den = run_json(run_cli, loss_argv(case["ratio"]["denominator"]))["loss"]
    assert not isinstance(case["expect"], dict), f"{case['name']}: a ratio's expect is one number"
    assert_close(num / den, case["expect"], case, "numerator / denominator")
    return ["value"]


CHECKERS = {"explain": check_explain, "info": check_info, "activation": check_activation, "ratio": check_ratio}

EXTRA_PARAMS = [pytest.param(c, id=str(c.get("name"))) for c in _extra_cases()]


@pytest.mark.parametrize("case", EXTRA_PARAMS)
def test_seeds_extra_case(run_cli, monkeypatch, case):
    monkeypatch.chdir(EXAMPLES)  # paths in the file are relative to it
    checked = CHECKERS[kind_of(case)](run_cli, case)
    assert sorted(checked) == sorted(leaves(case["expect"])), f"{case['name']}: not every expected value was compared"


def test_seeds_extra_every_case_is_checked():
    cases = _extra_cases()
    names = [c.get("name") for c in cases]
    assert all(isinstance(n, str) and n for n in names), "every case needs a name"
    assert len(set(names)) == len(names), "duplicate case names"
    assert [p.id for p in EXTRA_PARAMS] == names
    kinds = {c["name"]: kind_of(c) for c in cases}  # each case has exactly one checkable kind
    assert set(kinds.values()) <= set(CHECKERS)
    for c in cases:
        assert "expect" in c and c["expect"] not in (None, {}), f"{c['name']}: nothing to check"
    # the moved regularisation cases live in the suite now, and no case is in both files
    suite_names = {c["name"] for c in _yaml(EXAMPLES / "seeds.yaml")["cases"]}
    assert not suite_names & set(names)
    assert {"reg-l2-focal", "reg-l1-focal", "reg-l1-l2-focal", "reg-l2-single-array"} <= suite_names


# --------------------------------------------------------------------------- suites under examples/


def _suites() -> list[str]:
    found = []
    for path in sorted([*EXAMPLES.rglob("*.yaml"), *EXAMPLES.rglob("*.yml")]):
        rel = path.relative_to(EXAMPLES).as_posix()
        if rel in NOT_SUITES:
            continue
        doc = _yaml(path)
        if isinstance(doc, dict) and isinstance(doc.get("cases"), list):
            found.append(rel)
    return found


def test_the_known_suites_are_found():
    assert KNOWN_SUITES <= set(_suites())


@pytest.mark.parametrize("rel", _suites())
def test_suite_passes(run_cli, rel):
    path = EXAMPLES / rel
    n = len(_yaml(path)["cases"])
    r = run_cli(["check", str(path)])
    assert r.code == 0, f"lossctl check examples/{rel} exited {r.code}\n{r.stdout}\n{r.stderr}"
    assert f"{n} passed, 0 failed" in r.stdout.splitlines(), r.stdout[-500:]


# --------------------------------------------------------------------------- data files


def test_data_files_are_up_to_date(capsys):
    spec = importlib.util.spec_from_file_location("make_examples", EXAMPLES / "make_examples.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    code = module.main(["--check"])
    out, err = capsys.readouterr()
    assert code == 0, f"python examples/make_examples.py --check failed:\n{out}{err}"


# --------------------------------------------------------------------------- README


def _readme_tables() -> dict[str, list[tuple[str, list[str]]]]:
    """``{yaml file: [(case, [lossctl command, ...]), ...]}`` from the "Cases in `FILE`" tables."""
    tables: dict[str, list[tuple[str, list[str]]]] = {}
    current = None
    for line in README.read_text(encoding="utf-8").splitlines():
        m = re.match(r"## Cases in `([^`]+)`", line)
        if m:
            current = tables.setdefault(m[1], [])
            continue
        if line.startswith("## "):
            current = None
        if current is None or not line.startswith("| `"):
            continue
        cells = [c.strip() for c in line.strip("|").split(" | ")]
        name = cells[0].strip("`")
        commands = re.findall(r"`(lossctl [^`]+)`", cells[3])
        current.append((name, commands))
    return tables


def _readme_commands() -> list:
    return [pytest.param(cmd, id=f"{name}-{i}") for rows in _readme_tables().values()
            for name, cmds in rows for i, cmd in enumerate(cmds)]


def test_readme_tables_list_every_case():
    tables = _readme_tables()
    assert set(tables) == {"seeds.yaml", "seeds-extra.yaml"}
    for file, rows in tables.items():
        names = [c["name"] for c in _yaml(EXAMPLES / file)["cases"]]
        assert [n for n, _ in rows] == names, file
        assert all(cmds for _, cmds in rows), f"{file}: a row without a lossctl command"


def test_readme_seeds_table_values_match_the_suite():
    cases = {c["name"]: c for c in _yaml(EXAMPLES / "seeds.yaml")["cases"]}
    for line in README.read_text(encoding="utf-8").split("## Cases in `seeds.yaml`")[1].split("\n## ")[0].splitlines():
        if not line.startswith("| `"):
            continue
        cells = [c.strip() for c in line.strip("|").split(" | ")]
        case = cases[cells[0].strip("`")]
        expect = case["expect"]["loss"] if isinstance(case["expect"], dict) else case["expect"]
        assert float(cells[4].split()[0]) == float(expect), cells[0]


@pytest.mark.parametrize("command", _readme_commands())
def test_readme_command_runs(run_cli, monkeypatch, command):
    monkeypatch.chdir(ROOT)
    argv = shlex.split(command)
    assert argv[0] == "lossctl"
    r = run_cli(argv[1:])
    assert r.code == 0, f"{command}: exit {r.code}: {r.stderr}"
    assert r.stdout.strip(), command


# -- examples/families: one pinned case per family, recorded with `lossctl record` ----------

FAMILIES = EXAMPLES / "families" / "families.yaml"


def _families_cases():
    from lossctl.suite import load_suite

    return load_suite(FAMILIES).cases


@pytest.mark.parametrize("case", _families_cases(), ids=lambda c: c.name)
def test_families_suite_values_agree_with_torch(case):
    """The values `lossctl record` pinned are PyTorch's (via tests/torch_reference.py), not just lossctl's."""
    import torch  # noqa: F401  (installed here and in CI: a missing one fails)
    import torch_reference as ref

    from lossctl.suite import suite_reader, materialize

    cache = suite_reader(FAMILIES.parent)
    call = {k: (materialize(v, k, cache).tolist() if k in case.array_keys else v) for k, v in case.call.items()}
    want = ref.reference(call)
    for key, quantity in case.expect.items():
        got = np.asarray(materialize(quantity.value, key, cache), dtype=float)
        if key == "loss":
            expected = want["loss"]
        elif key == "per_sample":
            expected = want["per_sample"]
        else:
            expected = want["grad"][key.split(".", 1)[1]]
        np.testing.assert_allclose(got, np.asarray(expected, dtype=float), rtol=1e-10, atol=1e-13, err_msg=key)


def test_families_cover_every_family():
    names = {c.spec.name for c in _families_cases()}
    for family_member in ("mse", "multi-margin", "margin-ranking", "triplet-margin", "cosine-embedding", "ctc", "focal", "sce", "zero-one", "hinge", "kl"):
        assert family_member in names
