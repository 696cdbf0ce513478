"""--convention, --sample-weight and lossctl compare through the real CLI."""

from __future__ import annotations

import json

import pytest

from lossctl.api import compute, registry

BCE_EXAMPLE = ["--probs", "[0,1,1,0]", "--target", "[1,0,1,0]"]


def test_compare_bce_readme_example(run_cli):
    r = run_cli(["compare", "bce", *BCE_EXAMPLE])
    assert r.code == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "torch\t50.0"
    name, value = lines[1].split("\t")
    assert name == "keras" and float(value) == pytest.approx(8.0151, abs=1e-4)
    assert lines[2].startswith("optax\trefused: --probs:")
    why = next(line for line in lines if line.startswith("# torch vs keras:"))
    assert "keras clips p to [1e-7, 1 − 1e-7]" in why and "float32" in why and "sample 0, p = 0" in why
    assert "torch clamps log p" in why


def test_compare_json(run_cli):
    r = run_cli(["compare", "bce", *BCE_EXAMPLE, "--json", "--per-sample"])
    assert r.code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert set(doc) >= {"loss_name", "conventions", "differences"}
    assert doc["conventions"]["torch"]["loss"] == 50.0
    assert doc["conventions"]["keras"]["dtype"] == "float32"
    assert doc["conventions"]["keras"]["per_sample"][0] == pytest.approx(16.1181, abs=1e-4)
    assert doc["conventions"]["sklearn"]["loss"] == pytest.approx(18.0218, abs=1e-4)
    assert "refused" in doc["conventions"]["optax"]
    pairs = {tuple(d["between"]): d for d in doc["differences"]}
    assert pairs[("torch", "keras")]["step"] == "clip" and pairs[("torch", "keras")]["sample"] == [0]


def test_compare_table(run_cli):
    r = run_cli(["compare", "ce", "--probs", "[[0,1,0],[0.2,0.3,0.5]]", "--target", "[0,1]", "--format", "table",
                 "--per-sample"])
    assert r.code == 0, r.stderr
    assert "where they part" in r.stdout and "renormal" not in r.stderr


def test_compare_float32_only_difference(run_cli):
    r = run_cli(["compare", "mse", "--pred", "[[0.1,0.2],[0.3,0.4]]", "--target", "[[0,1],[1,0]]"])
    assert r.code == 0, r.stderr
    assert "# torch vs keras: keras computes in float32" in r.stdout
    assert "torch vs optax" not in r.stdout  # the same numbers


def test_convention_values(run_cli):
    r = run_cli(["bce", *BCE_EXAMPLE, "--convention", "keras"])
    assert r.code == 0 and float(r.stdout) == pytest.approx(8.015119552612305, rel=1e-7)
    r = run_cli(["bce", *BCE_EXAMPLE, "--convention", "keras", "--dtype", "float64"])
    assert float(r.stdout) == pytest.approx((16.11809565095832 * 2 + 2e-7) / 4, rel=1e-6)
    r = run_cli(["bce", *BCE_EXAMPLE, "--convention", "sklearn", "--dtype", "float32"])
    assert float(r.stdout) == pytest.approx(7.9712, abs=1e-4)


def test_sample_weight_denominators(run_cli):
    args = ["bce", "--probs", "[0.9,0.2,0.6,0.3]", "--target", "[1,0,1,1]", "--sample-weight", "[1,2,0.5,3]",
            "--dtype", "float64"]
    keras = float(run_cli([*args, "--convention", "keras"]).stdout)
    sklearn = float(run_cli([*args, "--convention", "sklearn"]).stdout)
    per = compute(loss="bce", probs=[0.9, 0.2, 0.6, 0.3], target=[1, 0, 1, 1], convention="sklearn").per_sample
    weighted = sum(w * v for w, v in zip([1, 2, 0.5, 3], per))
    assert keras == pytest.approx(weighted / 4, rel=1e-12)  # sum_over_batch_size: ÷ N
    assert sklearn == pytest.approx(weighted / 6.5, rel=1e-12)  # np.average: ÷ Σw


@pytest.mark.parametrize("argv,needle", [
    (["l1", "--pred", "[1,2]", "--target", "[1,3]", "--convention", "optax"], "conventions that have it: torch, keras, sklearn"),
    (["ce", "--probs", "[[0.2,0.8]]", "--target", "[1]", "--convention", "sklearn", "--ignore-index", "3"], "--ignore-index"),
    (["ce", "--probs", "[[0.2,0.8]]", "--target", "[1]", "--convention", "sklearn", "--grad"], "no gradient"),
    (["ce", "--probs", "[[0.2,0.8]]", "--target", "[1]", "--sample-weight", "[2]"], "--sample-weight"),
    (["bce", *BCE_EXAMPLE, "--convention", "optax"], "takes --logits"),
    (["bce", *BCE_EXAMPLE, "--convention", "jax"], "--convention"),
    (["ce", "--logits", "[[1,2]]", "--target", "[1]", "--convention", "keras", "--label-smoothing", "0.1"],
     "SparseCategoricalCrossentropy has no label smoothing"),
    (["bce", *BCE_EXAMPLE, "--label-smoothing", "0.1"], "--label-smoothing"),
])
def test_what_a_framework_lacks_is_a_usage_error(run_cli, argv, needle):
    r = run_cli(argv)
    assert r.code == 2, (r.stdout, r.stderr)
    assert needle in r.stderr and "Traceback" not in r.stderr


def test_sklearn_refuses_like_sklearn(run_cli):
    r = run_cli(["ce", "--probs", "[[1.2,-0.2]]", "--target", "[0]", "--convention", "sklearn"])
    assert r.code == 3 and "greater than 1" in r.stderr
    r = run_cli(["ce", "--probs", "[[0.2,0.3],[0.5,0.5]]", "--target", "[1,0]", "--convention", "sklearn"])
    assert r.code == 0 and "not 1" in r.stderr  # sklearn warns and computes without renormalising
    assert float(r.stdout) == pytest.approx(0.9486, abs=1e-4)


def test_explain_shows_the_frameworks_steps(run_cli):
    r = run_cli(["ce", "--probs", "[[0,1,0],[0.2,0.3,0]]", "--target", "[0,1]", "--convention", "keras", "--explain",
                 "--json"])
    doc = json.loads(r.stdout)
    labels = [s["label"] for s in doc["steps"]]
    assert labels[:3] == ["cast to float32", "renormalised probability", "clipped probability"]
    assert doc["convention"] == "keras"
    assert doc["per_sample"] if "per_sample" in doc else True
    assert doc["loss"] == pytest.approx((16.1181 + 0.5108) / 2, abs=1e-4)


def test_list_json_gains_conventions(run_cli):
    r = run_cli(["list", "--format", "json"])
    rows = {row["name"]: row for row in json.loads(r.stdout)}
    assert set(rows) == set(registry().names())
    for name, row in rows.items():
        assert row["conventions"], name
        assert sum(c["default"] for c in row["conventions"].values()) == 1, name
    assert list(rows["bce"]["conventions"]) == ["torch", "keras", "optax", "sklearn"]


def test_suite_takes_a_convention(tmp_path, run_cli):
    suite = tmp_path / "s.yaml"
    suite.write_text("cases:\n  - name: keras-bce\n    loss: bce\n    convention: keras\n"
                     "    probs: [0, 1, 1, 0]\n    target: [1, 0, 1, 0]\n    expect: 8.0151196\n    atol: 1.0e-6\n"
                     "  - name: sklearn-weighted\n    loss: mse\n    convention: sklearn\n    pred: [1, 2]\n"
                     "    target: [0, 0]\n    sample_weight: [1, 3]\n    expect: 3.25\n")
    r = run_cli(["check", str(suite)])
    assert r.code == 0, r.stdout + r.stderr
    suite.write_text("cases:\n  - loss: l1\n    convention: optax\n    pred: [1]\n    target: [0]\n    expect: 1\n")
    r = run_cli(["check", str(suite)])
    assert r.code == 3 and "conventions torch, keras, sklearn" in (r.stdout + r.stderr)


def test_expect_with_convention(run_cli):
    r = run_cli(["bce", *BCE_EXAMPLE, "--convention", "keras", "--expect", "50.0"])
    assert r.code == 1


def test_compare_names_reductions_and_definitions(run_cli):
    r = run_cli(["compare", "kl", "--probs", "[[.1,.2,.7],[.4,.4,.2]]", "--target", "[[0,.3,.7],[.5,.5,0]]", "--json"])
    pairs = {tuple(d["between"]): d for d in json.loads(r.stdout)["differences"]}
    assert pairs[("torch", "keras")]["step"] == "reduction"
    assert "by 6" in pairs[("torch", "keras")]["reason"] and "keras clips y" in pairs[("torch", "keras")]["reason"]
    r = run_cli(["compare", "hinge", "--pred", "[0.5,-2,1.5]", "--target", "[1,0,1]", "--json"])
    pairs = {tuple(d["between"]): d for d in json.loads(r.stdout)["differences"]}
    assert pairs[("torch", "optax")]["step"] == "definition" and pairs[("torch", "optax")]["sample"] == [1]
    assert pairs[("torch", "keras")]["step"] == "cast"
    assert ("torch", "sklearn") not in pairs  # the same numbers
