"""Adding a loss: a toy loss in a temporary registry gets every common check, the CLI, ``list``
and fixture cases from its declarations alone (README, "Adding a loss").

The toy is log-cosh (registered as toy-log-cosh: lossctl has a real log-cosh), ``l = log cosh(a − y)``: one ``LossSpec`` (what a family module holds)
and one oracle entry (what tests/torch_reference.py ``ORACLES`` holds). The global registry
is never touched: the toy lives in a copy, swapped in for one test.
"""

from __future__ import annotations

import dataclasses
import math
import re
import sys
from pathlib import Path

import numpy as np
import pytest

import lossctl
import lossctl.losses
import torch_reference
from lossctl.core.call import RESERVED_NAMES
from lossctl.core.registry import Forward, LossSpec, Registry, Step
from test_common import CHECKS, check_central_differences, common_cases, example
from torch_reference import ORACLES, Oracle

ROOT = Path(__file__).resolve().parents[1]


def _forward(x: dict, params: dict) -> Forward:
    """l = log cosh(a − y) = |d| + log1p(exp(−2|d|)) − log 2."""
    d = np.abs(x["pred"] - x["target"])
    return Forward(d + np.log1p(np.exp(-2 * d)) - math.log(2))


def _backward(x: dict, params: dict, upstream) -> dict:
    """∂l/∂a = tanh(a − y)."""
    return {"pred": upstream * np.tanh(x["pred"] - x["target"])}


def _steps(x: dict, params: dict) -> list[Step]:
    d = x["pred"] - x["target"]
    return [Step("difference", "d = a − y", d), Step("loss", "log cosh d", _forward(x, params).values)]


TOY = LossSpec(name="toy-log-cosh", mirrors="log(cosh(a − y))", summary="Log-cosh error.", formula="l = log cosh(a − y)",
               kinds={"pred": None}, target="same", forward=_forward, backward=_backward, steps=_steps)


def _toy_torch(case, leaves, reduction):
    torch = torch_reference.torch
    value = torch.log(torch.cosh(leaves["pred"] - torch.as_tensor(np.asarray(case["target"], dtype=np.float64))))
    return {"mean": value.mean, "sum": value.sum, "none": lambda: value}[reduction]()


TOY_ORACLE = Oracle(torch=_toy_torch, example=lambda rng, kind: {kind: rng.normal(size=(4, 3)) * 1.5,
                                                                 "target": rng.normal(size=(4, 3))})


@pytest.fixture
def toy_registry(monkeypatch):
    """The registry plus the toy, for one test: lossctl's registry, the CLI app and the oracle table."""
    import lossctl.cli.app

    before = lossctl.registry_names()
    registry = Registry(lossctl.losses.ALL_SPECS + (TOY,), reserved=RESERVED_NAMES)
    monkeypatch.setattr(lossctl.losses, "_REGISTRY", registry)
    monkeypatch.setattr(lossctl.cli.app, "_APP", None)  # rebuilt with the toy's command on first use
    monkeypatch.setitem(ORACLES, TOY.name, TOY_ORACLE)
    yield registry
    monkeypatch.undo()
    assert lossctl.registry_names() == before and TOY.name not in ORACLES


def test_the_toy_is_not_registered():
    assert TOY.name not in lossctl.registry_names() and TOY.name not in ORACLES


def test_every_common_check_runs_for_the_toy(toy_registry):
    cases = [c for c in common_cases(toy_registry.specs) if c[1] == TOY.name]
    assert sorted(check for check, _, _ in cases) == sorted(CHECKS)  # no opt-outs declared, none missing
    for check, name, kind in cases:  # includes the CLI call and `lossctl list`
        CHECKS[check](TOY, example(TOY, kind))


def test_the_toy_is_a_command_and_listed(toy_registry, run_cli):
    r = run_cli(["toy-log-cosh", "--pred", "[0.5, 2.0]", "--target", "[0.0, 0.0]", "-r", "sum"])
    assert r.code == 0, r.stderr
    assert float(r.stdout) == pytest.approx(math.log(math.cosh(0.5)) + math.log(math.cosh(2.0)), rel=1e-15)
    assert "toy-log-cosh" in run_cli(["list", "--format", "plain"]).stdout
    assert "--pred" in run_cli(["toy-log-cosh", "--help"]).stdout


def test_a_wrong_gradient_fails_the_common_checks(toy_registry, monkeypatch):
    wrong = dataclasses.replace(TOY, backward=lambda x, p, u: {"pred": 1.01 * _backward(x, p, u)["pred"]})
    monkeypatch.setitem(toy_registry._by_name, TOY.name, wrong)
    with pytest.raises(AssertionError, match="d/dpred"):
        check_central_differences(wrong, example(TOY, "pred"))


def test_fixture_cases_come_from_the_oracle_entry(toy_registry):
    """make_torch_fixtures.py builds the toy's cases from its example: every kind, every reduction;
    with torch, lossctl matches the oracle on each of them."""
    import importlib.util

    name = "make_torch_fixtures"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "tests" / "tools" / "make_torch_fixtures.py")
        sys.modules[name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules[name])
    gen = sys.modules[name]
    import test_torch_fixtures as fx

    (cases,) = gen.build_cases(losses=[TOY.name]).values()
    assert len(cases) >= fx.MIN_CASES_PER_LOSS
    assert {c.get("reduction", "mean") for c in cases} == set(TOY.reductions)
    assert all("pred" in c and c["loss"] == TOY.name for c in cases)
    assert TOY.name not in fx.FIXTURES  # so test_torch_fixtures fails until the script writes its file
    try:
        torch_reference.load_torch()
    except ImportError:  # the oracle-live half needs torch; the cases above do not
        return
    for case in cases:
        call = fx.lossctl_input(gen.public(case))
        fx.check_result(lossctl.compute(call), torch_reference.reference(call))


def test_readme_lists_the_steps():
    """README's "Adding a loss" names every file a new loss touches and the commands that write two of them."""
    text = (ROOT / "README.md").read_text()
    section = re.search(r"^### Adding a loss\n(.*?)(?=^#|\Z)", text, re.S | re.M)
    assert section, "README: a '### Adding a loss' section"
    body = section.group(1)
    for needle in ("lossctl/losses/", "tests/torch_reference.py", "ORACLES", "python tests/tools/make_torch_fixtures.py",
                   "tests/fixtures/torch/", "python tests/tools/update_readme.py", "README.md", "opt_out"):
        assert needle in body, needle
