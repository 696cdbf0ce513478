"""--l1 / --l2 with --params: the seeds' L1Loss / L2Loss added to any loss."""

from __future__ import annotations

import json

import numpy as np
import pytest

import lossctl
from lossctl.errors import UsageError

LOGITS = [[10.0, 0.0, -10.0], [8.0, 8.0, 8.0]]


def _params():
    rng = np.random.default_rng(7)
    return {"fc1.weight": rng.normal(size=(4, 2)), "fc1.bias": rng.normal(size=4), "fc2.weight": np.array([0.0, -1.5, 2.0])}


def test_penalties_follow_the_seed_formula_and_skip_biases():
    params = _params()
    r = lossctl.compute(loss="ce", logits=LOGITS, target=[0, 2], l2=0.01, l1=0.001, params=params, grad=True)
    weights = [params["fc1.weight"], params["fc2.weight"]]
    l2 = 0.5 * 0.01 * sum(float(np.sum(w ** 2)) for w in weights)
    l1 = 0.001 * sum(float(np.sum(np.abs(w))) for w in weights)
    assert r.data_loss == lossctl.compute(loss="ce", logits=LOGITS, target=[0, 2], grad=True).loss
    assert r.penalties == {"l2": pytest.approx(l2, rel=1e-14), "l1": pytest.approx(l1, rel=1e-14)}
    assert r.loss == pytest.approx(r.data_loss + l2 + l1, rel=1e-14)
    np.testing.assert_allclose(r.grad["params.fc1.weight"], 0.01 * params["fc1.weight"] + 0.001 * np.sign(params["fc1.weight"]))
    np.testing.assert_array_equal(r.grad["params.fc1.bias"], np.zeros(4))
    assert r.grad["params.fc2.weight"][0] == 0.0  # sign(0) = 0, as torch.abs backward


def test_exclude_empty_penalises_everything():
    params = _params()
    r = lossctl.compute(loss="ce", logits=LOGITS, target=[0, 2], l2=1.0, params=params, exclude_params="", grad=True)
    assert r.penalties["l2"] == pytest.approx(0.5 * sum(float(np.sum(w ** 2)) for w in params.values()), rel=1e-14)


def test_penalty_gradients_match_torch_autograd():
    import torch
    params = _params()
    tensors = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in params.items()}
    reg = sum(0.5 * 0.3 * torch.sum(t ** 2) + 0.2 * torch.sum(torch.abs(t)) for k, t in tensors.items() if "bias" not in k)
    reg.backward()
    r = lossctl.compute(loss="ce", logits=LOGITS, target=[0, 2], l2=0.3, l1=0.2, params=params, grad=True)
    assert sum(r.penalties.values()) == pytest.approx(float(reg.detach()), rel=1e-13)
    for k, t in tensors.items():
        got = r.grad[f"params.{k}"]
        want = t.grad.numpy() if t.grad is not None else np.zeros_like(params[k])
        np.testing.assert_allclose(got, want, rtol=1e-13)


def test_regularisation_needs_params_and_a_reduction():
    with pytest.raises(UsageError, match="need params"):
        lossctl.compute(loss="ce", logits=LOGITS, target=[0, 2], l2=0.1, grad=True)
    with pytest.raises(UsageError, match="reduced loss"):
        lossctl.compute(loss="ce", logits=LOGITS, target=[0, 2], l2=0.1, params=[1.0], reduction="none", grad=True)


def test_cli_npz_params_show_each_part(run_cli, tmp_path):
    params = _params()
    np.savez(tmp_path / "params.npz", **params)
    r = run_cli(["ce", "--logits", json.dumps(LOGITS), "--target", "[0,2]", "--l2", "0.01", "--params", str(tmp_path / "params.npz"), "--json", "--grad"])
    assert r.code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert set(doc["penalties"]) == {"l2"}
    assert doc["loss"] == pytest.approx(doc["data_loss"] + doc["penalties"]["l2"], rel=1e-14)
    assert set(doc["grad"]) == {"logits", "params.fc1.weight", "params.fc1.bias", "params.fc2.weight"}
    plain = run_cli(["ce", "--logits", json.dumps(LOGITS), "--target", "[0,2]", "--l2", "0.01", "--params", str(tmp_path / "params.npz")])
    lines = plain.stdout.splitlines()
    assert float(lines[0]) == doc["loss"]
    assert lines[1].startswith("# data_loss ") and lines[2].startswith("# penalty l2 ")


def test_single_array_params_are_not_filtered(run_cli, tmp_path):
    np.save(tmp_path / "bias_like.npy", np.array([3.0, 4.0]))
    r = run_cli(["ce", "--logits", json.dumps(LOGITS), "--target", "[0,2]", "--l2", "0.1", "--params", str(tmp_path / "bias_like.npy"), "--json"])
    assert json.loads(r.stdout)["penalties"]["l2"] == pytest.approx(0.5 * 0.1 * 25)
