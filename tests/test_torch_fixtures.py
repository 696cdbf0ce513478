"""lossctl against PyTorch golden values stored in tests/fixtures/torch/*.json (no torch needed).

The fixture files are written by tests/tools/make_torch_fixtures.py (torch,
float64, autograd; see tests/torch_reference.py). Each case is a lossctl
check-suite case plus ``expect = {loss, per_sample, grad}``; the case minus
``name``/``expect`` goes to :func:`lossctl.compute` as it is.

Tolerances (torch sums pairwise and uses fused kernels, so bit equality is not
expected):

* values (``loss``, ``per_sample``): rtol 1e-10, atol 1e-13. The tiny atol only
  absorbs cancellation noise in values that are mathematically ~0 but come out
  as rounding residue of O(1) terms (triplet row 2.5e-13 in case golden-TRI-1,
  cosine of identical vectors 4e-14), where no two summation orders agree
  relatively;
* gradients: rtol 1e-9, atol 1e-12;
* NaN equals NaN; shapes must match exactly (a 0-d result is a 0-d result).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pytest

import lossctl

FIXTURE_DIR = Path(__file__).resolve().parent / "fixtures" / "torch"

VALUE_RTOL = 1e-10
VALUE_ATOL = 1e-13
GRAD_RTOL = 1e-9
GRAD_ATOL = 1e-12
MIN_CASES_PER_LOSS = 5

_NONFINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def decode(x: Any) -> np.ndarray:
    """JSON value (numbers, nested lists, "nan"/"inf"/"-inf" strings) → float64 array."""

    def rec(v):
        if isinstance(v, list):
            return [rec(e) for e in v]
        if isinstance(v, str):
            return _NONFINITE[v]
        return float(v)

    return np.asarray(rec(x), dtype=np.float64)


def as_array(x: Any) -> np.ndarray:
    """A lossctl result value (float, 0-d or n-d array) → float64 array."""
    if isinstance(x, (list, str)):
        return decode(x)
    return np.asarray(x, dtype=np.float64)


def lossctl_input(case: Mapping) -> dict:
    """The case as lossctl.compute takes it: everything but ``name`` and ``expect``."""
    return {k: v for k, v in case.items() if k not in ("name", "expect") and not k.startswith("_")}


def _assert_close(what: str, actual: Any, expected: Any, rtol: float, atol: float) -> None:
    a = as_array(actual)
    e = decode(expected)
    assert a.shape == e.shape, f"{what}: shape {a.shape} != expected {e.shape}"
    np.testing.assert_allclose(a, e, rtol=rtol, atol=atol, equal_nan=True, err_msg=what)


def check_result(res: Any, expect: Mapping) -> None:
    """Compare a lossctl result with a torch ``expect`` dict (loss, per_sample, grad)."""
    _assert_close("loss", res.loss, expect["loss"], VALUE_RTOL, VALUE_ATOL)
    _assert_close("per_sample", res.per_sample, expect["per_sample"], VALUE_RTOL, VALUE_ATOL)
    grad = dict(res.grad or {})
    assert set(grad) == set(expect["grad"]), f"grad keys {sorted(grad)} != expected {sorted(expect['grad'])}"
    for key, exp in expect["grad"].items():
        _assert_close(f"grad[{key}]", grad[key], exp, GRAD_RTOL, GRAD_ATOL)


def load_fixtures() -> dict[str, dict]:
    """``{loss: fixture document}`` for every tests/fixtures/torch/<loss>.json."""
    docs = {}
    for path in sorted(FIXTURE_DIR.glob("*.json")):
        docs[path.stem] = json.loads(path.read_text(encoding="utf-8"))
    return docs


FIXTURES = load_fixtures()
# The losses PyTorch has (a torch convention); the others are checked against their home
# framework by tests/test_framework_fixtures.py and tests/test_framework_live.py.
REGISTERED = frozenset(s.name for s in lossctl.registry().specs if "torch" in s.convention_names)


def _params():
    for loss, doc in FIXTURES.items():
        for case in doc["cases"]:
            yield pytest.param(case, id=case["name"])


def test_every_fixture_loss_is_registered():
    """One fixture file per registered loss, and no file for a loss that is not registered."""
    assert sorted(FIXTURES) == sorted(REGISTERED), "run tests/tools/make_torch_fixtures.py"


def test_every_registered_loss_has_an_oracle_entry():
    """The oracle table (tests/torch_reference.py ORACLES) has one entry per registered loss."""
    import torch_reference

    torch_defined = {n for n, o in torch_reference.ORACLES.items() if not getattr(o.torch, "not_torch", False)}
    assert sorted(torch_defined) == sorted(REGISTERED)


@pytest.mark.parametrize("case", list(_params()))
def test_matches_torch(case):
    res = lossctl.compute(lossctl_input(case))
    check_result(res, case["expect"])


@pytest.mark.parametrize("name", sorted(REGISTERED))
def test_every_registered_loss_has_fixtures(name):
    assert name in FIXTURES, f"no tests/fixtures/torch/{name}.json (run tests/tools/make_torch_fixtures.py)"
    cases = FIXTURES[name]["cases"]
    assert len(cases) >= MIN_CASES_PER_LOSS, f"{name}: only {len(cases)} torch fixture cases"
    assert all(c["loss"] == name for c in cases)


def test_fixture_files_are_well_formed():
    assert FIXTURES, f"no fixture files in {FIXTURE_DIR}"
    names = []
    for loss, doc in FIXTURES.items():
        assert doc["generated_by"] == "tests/tools/make_torch_fixtures.py"
        assert isinstance(doc["torch_version"], str) and doc["torch_version"]
        for case in doc["cases"]:
            assert {"name", "loss", "expect"} <= set(case), case.get("name")
            assert set(case["expect"]) == {"loss", "per_sample", "grad"}, case["name"]
            names.append(case["name"])
    assert len(names) == len(set(names)), "duplicate case names"
