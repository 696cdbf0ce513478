"""``lossctl gradcheck``: analytic gradients agree with central finite differences for every loss."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

import lossctl
from lossctl.gradcheck import STEP_SCALE, gradcheck

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "torch"
FRAMEWORK_FIXTURES = Path(__file__).resolve().parent / "fixtures" / "frameworks"
NOT_INPUTS = ("name", "expect")
# Losses whose default convention is differentiated by its framework (scikit-learn's metrics are not).
DIFFERENTIABLE = [n for n in lossctl.registry_names()
                  if lossctl.registry().get(n).convention(lossctl.registry().get(n).home).differentiates]


def smooth_case(name: str) -> dict:
    """A small valid call of loss ``name`` away from kinks and domain edges.

    Shapes, targets and parameters come from the first ``reduction='mean'`` case of the
    loss's torch fixture file (tests/fixtures/torch/NAME.json; a registered loss without
    one fails here). The differentiable inputs are then moved off the fixture's
    (deliberate) kinks and ties by a small fixed random perturbation that keeps
    each input's sign (probabilities stay inside (0, 1)). The prediction is given as
    logits where the loss accepts them: torch's CTC gradient w.r.t. log_probs is the
    logits gradient (exact only after a log_softmax), see test_gradcheck_flags_ctc_log_probs.
    """
    path = FIXTURES / f"{name}.json"
    spec = lossctl.registry().get(name)
    if spec.home != "torch":  # a loss torch lacks: its home framework's fixture
        path = FRAMEWORK_FIXTURES / spec.home / f"{name}.json"
        cases = [{"loss": name, **c["call"]} for c in json.loads(path.read_text())["cases"]]
    else:
        assert path.exists(), f"{name}: no torch fixture file {path.name} (run tests/tools/make_torch_fixtures.py {name})"
        cases = json.loads(path.read_text())["cases"]
    case = next(c for c in cases if c.get("reduction", "mean") == "mean")
    call = {k: v for k, v in case.items() if k not in NOT_INPUTS}
    if "log_probs" in call and "logits" in spec.kinds and name == "ctc":
        call["logits"] = call.pop("log_probs")
    result = lossctl.compute(call, grad=True)
    rng = np.random.default_rng(sum(map(ord, name)))
    for key in result.grad:
        if key not in call:
            continue
        x = np.asarray(call[key], dtype=np.float64)
        u = rng.uniform(-0.05, 0.05, size=x.shape)
        if key == "probs":
            x = np.clip(x + u, 0.02, 0.98)
        elif key in ("log_probs", "var"):
            x = x * (1 + u) - (0.01 if key == "log_probs" else -0.01) * np.abs(u)
        else:
            x = x * (1 + u) + rng.uniform(-0.05, 0.05, size=x.shape)
        call[key] = x.tolist() if x.ndim else float(x)
    return call


@pytest.mark.parametrize("name", DIFFERENTIABLE)
def test_analytic_gradient_matches_finite_differences(name):
    call = smooth_case(name)
    report = gradcheck(call, tol=1e-6)
    assert report.inputs, f"{name}: no differentiable input"
    assert all(c.n_checked == c.size for c in report.inputs), [(c.name, c.skipped) for c in report.inputs]
    assert report.passed, f"{name}: max error {report.max_error:.3g}"
    assert report.max_error < 1e-7


@pytest.mark.parametrize("reduction", ["sum", "none"])
def test_other_reductions(reduction):
    call = {"loss": "ce", "logits": [[0.3, -1.2, 2.0], [1.1, 0.4, -0.7]], "target": [2, 0], "reduction": reduction}
    report = gradcheck(call)
    assert report.passed and report.reduction == reduction
    # the numeric gradient of the sum is not the mean's: it matches the analytic one, which is
    (check,) = report.inputs
    assert np.allclose(check.numeric, lossctl.compute(call).grad["logits"], atol=1e-8)


def test_extra_inputs_and_regularisation_are_checked():
    report = gradcheck({"loss": "gaussian-nll", "pred": [0.5, 1.5], "target": [1.0, 1.0], "var": [0.7, 1.3]})
    assert [c.name for c in report.inputs] == ["pred", "var"] and report.passed
    report = gradcheck({"loss": "ce", "logits": [[0.3, -1.2, 2.0]], "target": [2], "l2": 0.1, "l1": 0.01,
                        "params": {"w": np.array([0.5, -2.0])}})
    assert [c.name for c in report.inputs] == ["logits", "params.w"] and report.passed


def test_gradcheck_detects_a_wrong_gradient(monkeypatch):
    """A kernel whose backward is off by 1 % fails the check, with the index of the worst element."""
    import dataclasses

    import lossctl.api

    reg = lossctl.registry()
    spec = reg.get("mse")
    wrong = dataclasses.replace(spec, backward=lambda x, p, u: {k: 1.01 * v for k, v in spec.backward(x, p, u).items()})
    monkeypatch.setitem(reg._by_name, "mse", wrong)
    report = gradcheck({"loss": "mse", "pred": [1.0, 2.0, 10.0], "target": [0.0, 0.0, 0.0]})
    assert not report.passed
    (check,) = report.inputs
    err, index = check.max_error
    assert index == (2,)
    assert math.isclose(err, 0.01 * 20 / 3 / max(1.0, 20 / 3), rel_tol=1e-6)


def test_gradcheck_flags_ctc_log_probs():
    """torch's CTC gradient for log_probs is exp(lp) − occupancy: not d(loss)/d(log_probs)."""
    path = FIXTURES / "ctc.json"
    case = next(c for c in json.loads(path.read_text())["cases"] if c.get("reduction", "mean") == "mean")
    report = gradcheck({k: v for k, v in case.items() if k not in NOT_INPUTS})
    assert not report.passed


def test_one_sided_differences_at_the_domain_edge():
    # a probability within one step of 1: x + h leaves [0, 1] (an error); the backward side is used
    report = gradcheck({"loss": "bce", "probs": [1 - 3e-6, 0.4], "target": [1.0, 0.0]})
    (check,) = report.inputs
    assert check.one_sided == 1 and check.n_checked == 2
    assert report.passed


def test_step_is_per_element():
    assert STEP_SCALE == pytest.approx(6.055454e-06, rel=1e-6)
    small = gradcheck({"loss": "mse", "pred": [1e-3], "target": [0.0]})
    large = gradcheck({"loss": "mse", "pred": [1e6], "target": [0.0]})
    assert small.passed and large.passed  # a fixed step would lose 6 digits at 1e6


def test_max_elements_checks_a_spread_subset():
    report = gradcheck({"loss": "mse", "pred": list(np.linspace(-1, 1, 50)), "target": [0.0] * 50}, max_elements=5)
    (check,) = report.inputs
    assert check.n_checked == 5 and check.skipped == 45
    assert check.checked[0] and check.checked[-1]


# --------------------------------------------------------------------------- CLI


def test_cli_gradcheck_passes(run_cli):
    r = run_cli(["gradcheck", "ce", "--logits", "[[10, 0, -10], [8, 8, 8]]", "--target", "[0, 2]"])
    assert r.code == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("logits: 6 of 6 elements checked (shape 2x3); worst abs error ")
    assert "worst rel error" in lines[0]
    assert lines[1].startswith("  worst error ") and "analytic" in lines[1] and "numeric" in lines[1]
    assert lines[-1].startswith("PASS gradcheck ce (reduction mean): max error ") and lines[-1].endswith("<= tol 1e-06")


def test_cli_gradcheck_fails_above_tol(run_cli):
    # at p = 0 with target 0 torch's BCE gradient is 0 (its eps clamp); the function's slope is 1/N
    r = run_cli(["gradcheck", "bce", "--probs", "[0.0, 0.3, 0.6]", "--target", "[0, 1, 1]"])
    assert r.code == 1
    assert "worst error 0.333 at [0]: analytic 0.0 numeric 0.333" in r.stdout
    assert r.stdout.splitlines()[-1].startswith("FAIL gradcheck bce")
    assert run_cli(["gradcheck", "bce", "--probs", "[0.0, 0.3, 0.6]", "--target", "[0, 1, 1]", "--tol", "0.5"]).code == 0


def test_cli_gradcheck_json_and_errors(run_cli, tmp_path):
    np.save(tmp_path / "pred.npy", np.array([0.5, -1.5]))
    r = run_cli(["gradcheck", "huber", "--pred", tmp_path / "pred.npy", "--target", "[0.0, 0.0]", "--json"])
    assert r.code == 0
    doc = json.loads(r.stdout)
    assert doc["passed"] is True and doc["loss_name"] == "huber"
    assert doc["inputs"]["pred"]["checked"] == 2 and doc["inputs"]["pred"]["max_error"] < 1e-7
    assert run_cli(["gradcheck", "ce", "--logits", "[[1.0, 2.0]]", "--target", "[5]"]).code == 3
    assert run_cli(["gradcheck", "ce", "--logits", "[[1.0, 2.0]]"]).code == 2
    assert run_cli(["gradcheck", "ce", "--logits", "[[1.0, 2.0]]", "--target", "[0]", "--expect", "1"]).code == 2
    r = run_cli(["gradcheck", "kll", "--log-probs", "[0.0]"])
    assert r.code == 2 and "did you mean 'kl'" in r.stderr
