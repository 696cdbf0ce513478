"""Every non-torch convention of every loss against its framework's committed numbers.

The fixtures (tests/fixtures/frameworks/FRAMEWORK/LOSS.json) were written by
tests/tools/make_framework_fixtures.py from Keras 3 (torch backend), optax (jax x64) and
scikit-learn at the versions each file records; tests/test_framework_live.py recomputes
them live when the framework is installed.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lossctl.api import compute, registry

FIXTURES = Path(__file__).parent / "fixtures" / "frameworks"

PAIRS = [(spec.name, f) for spec in registry().specs for f in spec.convention_names
         if spec.conventions and spec.convention(f).kernel is not None]


def _array(v):
    return np.asarray(v if not isinstance(v, str) else float(v), dtype=np.float64) if not isinstance(v, list) \
        else np.asarray([_array(x) for x in v], dtype=np.float64)


def tolerance(call: dict, framework: str, part: str = "per_sample") -> dict:
    float32 = call.get("dtype") == "float32" or framework == "keras"
    # Keras 3.15 on the torch backend rounds its means (over the last axis, and the reduction's
    # divide_no_nan) to float32 even with dtype="float64"; the jax backend keeps float64, as
    # lossctl does. tests/test_conventions.py checks lossctl's keras float64 on its own.
    if float32:
        return {"rtol": 2e-6, "atol": 2e-6}
    return {"rtol": 1e-9, "atol": 1e-12}


def check_against(loss: str, framework: str, call: dict, expected: dict) -> None:
    """lossctl's loss, per-sample values and gradient under ``framework`` equal the framework's."""
    result = compute({"loss": loss, **call, "convention": framework}, grad=True)
    what = f"{loss} --convention {framework} {call}"
    loss = _array(expected["loss"])
    if result.reduction == "none" and loss.ndim == 0:
        loss = loss.reshape(1)
    np.testing.assert_allclose(np.asarray(result.loss, dtype=np.float64), loss, err_msg=what,
                               **tolerance(call, framework, "loss" if result.reduction != "none" else "per_sample"))
    per_sample = _array(expected["per_sample"])
    if per_sample.ndim == 0:  # the framework's one value for the whole batch: lossctl's single "sample"
        per_sample = per_sample.reshape(1)
    np.testing.assert_allclose(np.asarray(result.per_sample, dtype=np.float64), per_sample,
                               err_msg=what + " per_sample", **tolerance(call, framework))
    for name, g in (expected.get("grad") or {}).items():
        np.testing.assert_allclose(np.asarray(result.grad[name], dtype=np.float64), _array(g), err_msg=what + f" grad {name}",
                                   **tolerance(call, framework, "grad"))
    if "grad" not in expected:
        assert not result.grad, f"{what}: {framework} does not differentiate, lossctl gave a gradient"


def load(framework: str, loss: str) -> dict:
    path = FIXTURES / framework / f"{loss}.json"
    assert path.exists(), f"no fixture for {loss} under {framework}: run tests/tools/make_framework_fixtures.py"
    return json.loads(path.read_text())


@pytest.mark.parametrize("loss,framework", PAIRS, ids=[f"{a}-{b}" for a, b in PAIRS])
def test_every_convention_has_fixture_cases(loss, framework):
    doc = load(framework, loss)
    assert doc["cases"], f"{loss} under {framework}: no case the convention accepts"
    if framework in ("keras", "optax"):
        assert all("grad" in c for c in doc["cases"]), "keras and optax differentiate: every case pins a gradient"


@pytest.mark.parametrize("loss,framework", PAIRS, ids=[f"{a}-{b}" for a, b in PAIRS])
def test_matches_framework_fixture(loss, framework):
    for case in load(framework, loss)["cases"]:
        check_against(loss, framework, case["call"], case)
