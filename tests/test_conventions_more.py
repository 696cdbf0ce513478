"""The conventions added for CTC (Keras, optax), scikit-learn's zero_one_loss, Keras's Dice/Tversky
``axis``, optax's dice ``class_weights`` and optax's multiclass perceptron and sparsemax losses:
what their frameworks refuse, what ``compare`` says about them, and what ``list`` shows. Their
values and gradients are checked against the frameworks in test_framework_live.py (live) and
test_framework_fixtures.py (committed numbers)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")

LOGITS = np.round(np.sin(np.arange(6 * 2 * 4) * 0.7).reshape(6, 2, 4) * 2.0, 3)  # (T, N, C)


def _ctc_args(target, input_lengths, target_lengths, *extra):
    return ["ctc", "--logits", json.dumps(LOGITS.tolist()), "-t", json.dumps(target),
            "--input-lengths", json.dumps(input_lengths), "--target-lengths", json.dumps(target_lengths), *extra]


def test_optax_ctc_without_an_alignment_is_optax_finite_number(run_cli):
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import optax

    target, il, tl = [[1, 1, 1], [2, 0, 0]], [4, 6], [3, 1]
    r = run_cli(_ctc_args(target, il, tl, "--convention", "optax", "--reduction", "none", "--json"))
    assert r.code == 0, r.stderr
    ours = np.asarray(json.loads(r.stdout)["loss"], dtype=np.float64)
    logit_pad = (np.arange(6)[None, :] >= np.array(il)[:, None]).astype(np.float64)
    label_pad = (np.arange(3)[None, :] >= np.array(tl)[:, None]).astype(np.float64)
    want = optax.losses.ctc_loss(jnp.asarray(np.moveaxis(LOGITS, 0, 1)), jnp.asarray(logit_pad), jnp.asarray(target),
                                 jnp.asarray(label_pad))
    np.testing.assert_allclose(ours, np.asarray(want), rtol=1e-12)
    assert ours[0] > 1e4  # finite: log 0 is −1e5 there, where torch gives inf
    torch_r = run_cli(_ctc_args(target, il, tl, "--reduction", "none", "--json"))
    assert json.loads(torch_r.stdout)["loss"][0] == "inf"
    # its gradient is optax's stand-in's, which lossctl does not reproduce: refused, not invented
    r = run_cli(_ctc_args(target, il, tl, "--convention", "optax", "--grad"))
    assert r.code == 3 and "no alignment of sequence(s) 0" in r.stderr


def test_keras_ctc_refuses_lengths_keras_does_not_use(run_cli):
    r = run_cli(_ctc_args([[1, 2, 2], [3, 1, 0]], [6, 4], [3, 2], "--convention", "keras"))
    assert r.code == 3 and "counts every frame (T = 6)" in r.stderr
    r = run_cli(_ctc_args([[1, 2, 2], [3, 1, 0]], [6, 6], [3, 1], "--convention", "keras"))
    assert r.code == 3 and "number of nonzero labels" in r.stderr
    r = run_cli(_ctc_args([[1, 2, 2], [3, 1, 0]], [6, 6], [3, 2], "--convention", "keras", "--blank", "3"))
    assert r.code == 2 and "--blank" in r.stderr and "torch, optax" in r.stderr


def test_compare_ctc_names_the_target_length_division(run_cli):
    r = run_cli(["compare", *_ctc_args([[1, 2, 2], [3, 1, 0]], [6, 6], [3, 2]), "--json"])
    assert r.code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert set(doc["conventions"]) == {"torch", "keras", "optax"}
    torch_vs_optax = next(d for d in doc["differences"] if set(d["between"]) == {"torch", "optax"})
    assert torch_vs_optax["step"] == "reduction"
    assert "by its own divisor (3, 2" in torch_vs_optax["reason"] and "target length" in torch_vs_optax["reason"]
    torch_vs_keras = next(d for d in doc["differences"] if set(d["between"]) == {"torch", "keras"})
    assert torch_vs_keras["step"] == "reduction" and "float32" in torch_vs_keras["reason"]


def test_sklearn_zero_one_refuses_continuous_labels_as_sklearn_does(run_cli):
    from sklearn.metrics import zero_one_loss

    with pytest.raises(ValueError):
        zero_one_loss([1, 2], [0.5, 2.0])
    r = run_cli(["zero-one", "--pred", "[0.5, 2]", "-t", "[1, 2]", "--convention", "sklearn"])
    assert r.code == 3 and "class labels" in r.stderr
    r = run_cli(["zero-one", "--logits", "[[0.5, 2]]", "-t", "[1]", "--convention", "sklearn"])
    assert r.code == 2 and "--pred" in r.stderr
    r = run_cli(["zero-one", "--pred", "[1, 2]", "-t", "[1, 2]", "--threshold", "0.5", "--convention", "sklearn"])
    assert r.code == 2 and "--threshold" in r.stderr


def test_sklearn_zero_one_multilabel_is_the_subset_loss(run_cli):
    from sklearn.metrics import zero_one_loss

    y, p = [[1, 1], [1, 1], [0, 1]], [[0, 1], [1, 1], [0, 1]]
    r = run_cli(["zero-one", "--pred", json.dumps(p), "-t", json.dumps(y), "--convention", "sklearn"])
    assert float(r.stdout) == pytest.approx(zero_one_loss(np.array(y), np.array(p)), rel=1e-15)  # sklearn: 1 − accuracy
    r = run_cli(["zero-one", "--pred", json.dumps(p), "-t", json.dumps(y)])
    assert float(r.stdout) == pytest.approx(1 / 6)  # torch's convention: element by element


@pytest.mark.parametrize("axis, code", [("0", 2), ("5", 2), ("a", 2)])  # a parameter value: a usage error
def test_keras_dice_axis_refusals(run_cli, axis, code):
    r = run_cli(["dice", "--probs", "[[0.9, 0.2], [0.3, 0.8]]", "-t", "[[1, 0], [0, 1]]", "--axis", axis])
    assert r.code == code and "axis" in r.stderr


def test_dice_axis_and_class_weights_belong_to_their_frameworks(run_cli):
    r = run_cli(["dice", "--logits", "[[0.9, 0.2], [0.3, 0.8]]", "-t", "[[1, 0], [0, 1]]", "--convention", "optax",
                 "--axis", "1"])
    assert r.code == 2 and "keras" in r.stderr
    r = run_cli(["dice", "--probs", "[[0.9, 0.1], [0.3, 0.7]]", "-t", "[[1, 0], [0, 1]]", "--class-weights", "[1, 2]"])
    assert r.code == 2 and "optax" in r.stderr
    r = run_cli(["dice", "--logits", "[[0.9, 0.2], [0.3, 0.8]]", "-t", "[[1, 0], [0, 1]]", "--convention", "optax",
                 "--class-weights", "[1, 2, 3]"])
    assert r.code == 3 and "one weight per class (2,)" in r.stderr


def test_keras_dice_axis_gives_per_sample_values(run_cli):
    import keras
    import torch

    y, p = [[1.0, 1.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]], [[0.9, 0.2, 0.6, 0.0], [0.3, 0.0, 0.0, 0.8]]
    r = run_cli(["dice", "--probs", json.dumps(p), "-t", json.dumps(y), "--axis", "1", "--reduction", "none",
                 "--json"])
    assert r.code == 0, r.stderr
    want = keras.losses.Dice(axis=1, reduction=None)(torch.tensor(y), torch.tensor(p)).numpy()
    np.testing.assert_allclose(json.loads(r.stdout)["loss"], want, rtol=2e-6)


def test_list_and_help_show_the_new_conventions(run_cli):
    r = run_cli(["list", "--format", "json"])
    entries = {e["name"]: e for e in json.loads(r.stdout)}
    assert set(entries["ctc"]["conventions"]) == {"torch", "keras", "optax"}
    assert set(entries["zero-one"]["conventions"]) == {"torch", "sklearn"}
    for name, fn in (("multiclass-perceptron", "multiclass_perceptron_loss"),
                     ("multiclass-sparsemax", "multiclass_sparsemax_loss")):
        assert entries[name]["conventions"]["optax"]["mirrors"] == f"optax.losses.{fn}"
    params = {name: {p["name"] for p in entries[name]["params"]} for name in ("dice", "tversky")}
    assert {"axis", "class_weights"} <= params["dice"] and {"axis", "class_weights"} <= params["tversky"]
    r = run_cli(["ctc", "--help"])
    assert r.code == 0 and "--sample-weight" in r.stdout
    assert "torch, keras, optax (this loss's frameworks; default torch)" in " ".join(r.stdout.split())
    r = run_cli(["multiclass-sparsemax", "--help"])
    assert "optax (this loss's frameworks; default optax)" in " ".join(r.stdout.split())
    r = run_cli(["list", "--format", "table"])
    assert "conventions" in r.stdout


@pytest.mark.parametrize("loss, pred, target", [
    ("multiclass-perceptron", [[0.1, 2.0, 2.0], [1.5, -2.0, 0.4]], [0, 2]),
    ("multiclass-sparsemax", [[0.1, 0.7, -0.3], [1.5, -2.0, 0.4]], [1, 0]),
])
def test_multiclass_forms_through_the_cli_and_gradcheck(run_cli, loss, pred, target):
    r = run_cli([loss, "--pred", json.dumps(pred), "-t", json.dumps(target), "--grad", "--json"])
    assert r.code == 0, r.stderr
    r = run_cli(["gradcheck", loss, "--pred", json.dumps(pred), "-t", json.dumps(target)])
    assert r.code == 0, r.stdout


@pytest.mark.parametrize("argv, pair, step, needle", [
    (["poisson-nll", "--pred", "[0.5, 1, 2]", "-t", "[0, 1, 3]"], {"torch", "keras"}, "definition", "log(rate)"),
    (["focal", "--logits", "[2, -1, -3, 20]", "-t", "[1, 0, 1, 0]"], {"torch", "keras"}, "definition",
     "apply_class_balancing"),
    (["hinge", "--pred", "[0.5, -2, 1.5, 0.3, 0.4]", "-t", "[1, 0, 1, 1, 0]"], {"torch", "keras"}, "cast", "float32"),
])
def test_compare_blames_float32_only_when_it_explains_the_numbers(run_cli, argv, pair, step, needle):
    r = run_cli(["compare", *argv, "--json"])
    assert r.code == 0, r.stderr
    d = next(d for d in json.loads(r.stdout)["differences"] if set(d["between"]) == pair)
    assert d["step"] == step and needle in d["reason"]
