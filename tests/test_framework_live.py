"""Every non-torch convention of every loss against its framework, live (values always,
gradients where Keras or optax differentiate). Runs when the framework is importable;
CI installs the pinned oracles (.ci/run)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from framework_oracles import CASES, FRAMEWORK_MODULES, ORACLES
from lossctl.api import compute, registry
from lossctl.errors import LossctlError
from test_framework_fixtures import PAIRS, check_against


def _accepted(loss: str, framework: str):
    for call in CASES.get(loss, []):
        try:
            compute({"loss": loss, **call, "convention": framework}, grad=False)
        except LossctlError:
            continue
        yield call


@pytest.mark.parametrize("loss,framework", PAIRS, ids=[f"{a}-{b}" for a, b in PAIRS])
def test_matches_framework_live(loss, framework):
    assert importlib.util.find_spec(FRAMEWORK_MODULES[framework]) is not None, \
        f"{framework} is not installed (pip install -e '.[oracle]'): the live comparison needs it"
    calls = list(_accepted(loss, framework))
    assert calls, f"{loss} under {framework}: no case in tests/framework_oracles.py that the convention accepts"
    for call in calls:
        expected = ORACLES[framework](loss, dict(call))
        check_against(loss, framework, call, expected)


def test_every_registered_convention_has_live_cases():
    missing = [f"{spec.name}" for spec in registry().specs
               if any(spec.convention(f).kernel is not None for f in spec.convention_names) and spec.name not in CASES]
    assert not missing, f"losses with framework conventions but no oracle cases: {missing}"


def test_keras_float64_is_not_float32():
    """Keras's dtype="float64" keeps differences float32 would lose (the note's MSE of 1e-9 apart)."""
    y = np.array([[1.0, 2.0]])
    p = y + 1e-9
    f32 = compute(loss="mse", pred=p, target=y, convention="keras").loss
    f64 = compute(loss="mse", pred=p, target=y, convention="keras", dtype="float64").loss
    assert f32 == 0.0
    assert f64 == pytest.approx(1e-18, rel=1e-6)
