"""``lossctl info``: entropy, cross-entropy, KL, JS and self-information (library and CLI)."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from lossctl.core import information as infolib
from lossctl.errors import InputError, InputWarning, UsageError
from lossctl.core.information import distribution, information, self_information

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
LN2 = math.log(2.0)
KEYS = dict(infolib.MEASURES)  # h_p -> "H(P)", ...


def _random_rows(rng, n, c, zeros=False):
    p = rng.dirichlet(np.full(c, 0.7), size=n)
    if zeros:
        p[rng.random((n, c)) < 0.25] = 0.0
        p[:, 0] += (p.sum(-1) == 0)  # keep every row non-empty
        p /= p.sum(-1, keepdims=True)
    return p


def _json(r):
    assert r.code == 0, r.stderr
    return json.loads(r.stdout)


# --------------------------------------------------------------------------- the seeds


def test_bernoulli_entropy_is_largest_for_a_fair_coin():
    """Seed 000: the Bernoulli entropy peaks at p = 0.5 with ln 2 = 0.693 nats (1 bit)."""
    ps = np.linspace(0.0, 1.0, 101)
    h = information(np.stack([ps, 1.0 - ps], axis=-1)).per_row["H(P)"]
    assert int(np.argmax(h)) == 50
    assert h[50] == 0.6931471805599453 == math.log(2)
    assert round(h[50], 3) == 0.693
    assert np.all(h[np.arange(101) != 50] < h[50])
    assert h[0] == h[100] == 0.0  # certain outcomes: 0·log 0 = 0
    np.testing.assert_allclose(h, h[::-1], rtol=1e-14, atol=0)  # H(p) = H(1 - p) (up to 1 - p's rounding)
    assert information([0.5, 0.5], base=2).mean["H(P)"] == 1.0


def test_bernoulli_coin_and_sunrise_from_the_example_file(run_cli):
    coin = run_cli(["info", "--p", f"{EXAMPLES}/info/coin.yaml:p", "--format", "plain"])
    bits = run_cli(["info", "--p", f"{EXAMPLES}/info/coin.yaml:p", "--base", "2", "--format", "plain"])
    sunrise = run_cli(["info", "--p", f"{EXAMPLES}/info/coin.yaml:sunrise", "--format", "plain"])
    assert (coin.code, bits.code, sunrise.code) == (0, 0, 0)
    assert coin.stdout == "H(P) 0.6931471805599453\n"
    assert bits.stdout == "H(P) 1.0\n"
    assert sunrise.stdout == "H(P) 0.007907255112232087\n"
    assert float(sunrise.stdout.split()[1]) < float(coin.stdout.split()[1]) / 50  # a near-certain event: small entropy


def _info_cases():
    doc = yaml.safe_load((EXAMPLES / "seeds-extra.yaml").read_text())
    return [pytest.param(c, id=c["name"]) for c in doc["cases"] if "info" in c]


def test_seeds_extra_has_the_info_cases():
    names = {p.id for p in _info_cases()}
    assert {"info-bernoulli-coin", "info-bernoulli-coin-bits", "info-bernoulli-sunrise",
            "info-scissors-onehot", "info-label-smoothed"} <= names


@pytest.mark.parametrize("case", _info_cases())
def test_seeds_extra_info_cases(run_cli, case):
    """Every ``info:`` case of examples/seeds-extra.yaml, run through the CLI, to within 1 ulp.

    (All values are bit-identical except JS of the scissors case: the file has
    0.03597375665014849, lossctl's xlogy form gives 0.035973756650148486, one ulp
    below; the exact value is 0.0359737566501484396...)"""
    spec = case["info"]
    argv = ["info", "--p", str(EXAMPLES / spec["p"]), "--json"]
    if "q" in spec:
        argv += ["--q", str(EXAMPLES / spec["q"])]
    if "base" in spec:
        argv += ["--base", str(spec["base"])]
    doc = _json(run_cli(argv))
    assert doc["identity"]["holds"] if "q" in spec else "identity" not in doc
    for key, expected in case["expect"].items():
        actual = doc["mean"][KEYS[key]]
        if math.isinf(expected):
            assert actual == "inf", key
        else:
            assert abs(actual - expected) <= math.ulp(expected), (key, actual, expected)


def test_scissors_one_hot(run_cli):
    """Seed 001–003: one-hot P, so H(P) = 0 and H(P,Q) = KL(P‖Q) = −ln 0.9; KL(Q‖P) = inf (not symmetric)."""
    csv_file = f"{EXAMPLES}/info/scissors.csv"
    r = run_cli(["info", "--p", f"{csv_file}:p", "--q", f"{csv_file}:q", "--format", "plain"])
    assert r.code == 0 and r.stderr == ""
    lines = dict(line.split(" ") for line in r.stdout.splitlines())
    assert list(lines) == ["H(P)", "H(Q)", "H(P,Q)", "KL(P‖Q)", "KL(Q‖P)", "JS(P,Q)"]
    assert lines["H(P)"] == "0.0"  # not -0.0
    assert lines["H(P,Q)"] == lines["KL(P‖Q)"] == repr(-math.log(0.9))
    assert lines["KL(Q‖P)"] == "inf"
    assert lines["JS(P,Q)"] == "0.035973756650148486"
    assert 0 < float(lines["JS(P,Q)"]) < LN2


def test_label_smoothed_cross_entropy_is_kl_plus_entropy(run_cli):
    """With smoothed labels, cross-entropy is KL plus entropy: H(P,Q) = 0.5166 = KL 0.1222 + H(P) 0.3944."""
    tsv = f"{EXAMPLES}/info/smoothed.tsv"
    doc = _json(run_cli(["info", "--p", f"{tsv}:p", "--q", f"{tsv}:q", "--json"]))
    mean = doc["mean"]
    assert (round(mean["H(P,Q)"], 4), round(mean["KL(P‖Q)"], 4), round(mean["H(P)"], 4)) == (0.5166, 0.1222, 0.3944)
    assert mean["H(P,Q)"] == 0.5166085998162665
    assert mean["KL(P‖Q)"] == 0.12221090836882376
    assert mean["H(P)"] == 0.39439769144744274
    assert doc["identity"] == {"formula": "H(P,Q) = H(P) + KL(P‖Q)", "holds": True, "max_abs_residual": 0.0}


# --------------------------------------------------------------------------- properties


def test_identity_cross_entropy_is_entropy_plus_kl(rng):
    p, q = _random_rows(rng, 200, 7), _random_rows(rng, 200, 7)
    r = information(p, q)
    assert r.identity_holds is True
    np.testing.assert_allclose(r.per_row["H(P,Q)"], r.per_row["H(P)"] + r.per_row["KL(P‖Q)"], rtol=1e-14, atol=0)
    assert r.max_abs_residual == float(np.max(np.abs(r.residual)))
    assert r.max_abs_residual < 1e-14
    assert r.rows == 200 and r.per_row["H(P)"].shape == (200,)


def test_identity_holds_with_infinite_kl():
    r = information([[1.0, 0.0], [0.5, 0.5]], [[0.0, 1.0], [0.5, 0.5]])
    assert r.per_row["H(P,Q)"][0] == r.per_row["KL(P‖Q)"][0] == np.inf
    assert r.residual[0] == 0.0 and r.identity_holds is True


def test_failed_identity_exits_1(run_cli, monkeypatch):
    real = infolib._cross_entropy
    monkeypatch.setattr(infolib, "_cross_entropy", lambda a, b: real(a, b) + 1e-6)
    r = run_cli(["info", "--p", "[[0.2,0.8],[0.5,0.5]]", "--q", "[[0.5,0.5],[0.9,0.1]]", "--json"])
    assert r.code == 1
    doc = json.loads(r.stdout)
    assert doc["identity"]["holds"] is False
    assert doc["identity"]["max_abs_residual"] == pytest.approx(1e-6, rel=1e-6)
    assert "H(P,Q) = H(P) + KL(P‖Q) does not hold" in r.stderr


@pytest.mark.parametrize("base, ln_base", [("2", LN2), ("10", math.log(10.0)), (2, LN2)])
def test_bases_are_nats_divided_by_ln_base(rng, base, ln_base):
    p, q = _random_rows(rng, 20, 5), _random_rows(rng, 20, 5)
    nats, other = information(p, q, base="e"), information(p, q, base=base)
    assert other.base == str(base)
    for label in nats.per_row:
        np.testing.assert_allclose(other.per_row[label] * ln_base, nats.per_row[label], rtol=1e-15, atol=0)
        assert other.mean[label] == pytest.approx(nats.mean[label] / ln_base, rel=1e-15)
        assert (other.mean[label] > nats.mean[label]) == (ln_base < 1)  # bits > nats > hartleys


def test_base_2_on_the_cli(run_cli):
    e = _json(run_cli(["info", "--p", "[0.25,0.25,0.5]", "--q", "[0.5,0.25,0.25]", "--json"]))
    b = _json(run_cli(["info", "--p", "[0.25,0.25,0.5]", "--q", "[0.5,0.25,0.25]", "--json", "--base", "2"]))
    assert (e["base"], e["unit"], b["base"], b["unit"]) == ("e", "nats", "2", "bits")
    assert b["mean"]["H(P)"] == 1.5  # dyadic probabilities: whole bits
    assert b["mean"]["H(P,Q)"] == 1.75
    assert b["mean"]["KL(P‖Q)"] == 0.25
    assert e["mean"]["H(P)"] == pytest.approx(1.5 * LN2, rel=1e-15)


def softmax(x, axis: int = -1) -> np.ndarray:
    """softmax in closed form with plain NumPy: expected values independent of lossctl's numerics."""
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def test_logits_give_the_same_measures_as_their_softmax(rng):
    lp, lq = rng.normal(0, 3, (50, 6)), rng.normal(0, 3, (50, 6))
    from_logits = information(distribution(logits=lp), distribution(logits=lq))
    from_probs = information(softmax(lp, axis=-1), softmax(lq, axis=-1))
    mixed = information(distribution(logits=lp), softmax(lq, axis=-1))
    for label in from_probs.per_row:
        np.testing.assert_allclose(from_logits.per_row[label], from_probs.per_row[label], rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(mixed.per_row[label], from_probs.per_row[label], rtol=1e-12, atol=1e-15)


def test_logits_on_the_cli_equal_probabilities(run_cli, tmp_path, rng):
    logits = rng.normal(0, 2, (4, 3))
    np.save(tmp_path / "logits.npy", logits)
    np.save(tmp_path / "probs.npy", softmax(logits, axis=-1))
    a = _json(run_cli(["info", "--p-logits", tmp_path / "logits.npy", "--q-logits", tmp_path / "logits.npy", "--json"]))
    b = _json(run_cli(["info", "--p", tmp_path / "probs.npy", "--q", tmp_path / "probs.npy", "--json"]))
    for label in b["mean"]:
        assert a["mean"][label] == pytest.approx(b["mean"][label], rel=1e-12, abs=1e-15)
    assert a["mean"]["KL(P‖Q)"] == 0.0 and a["mean"]["JS(P,Q)"] == 0.0  # P = Q


def test_logits_stay_finite_where_probabilities_underflow():
    """log q comes from the log-softmax: q = exp(-1000) underflows to 0, its log does not."""
    r = information([[0.5, 0.5]], distribution(logits=[[0.0, -1000.0]]))
    assert r.per_row["H(P,Q)"][0] == pytest.approx(500.0, rel=1e-12)
    assert r.per_row["KL(P‖Q)"][0] == pytest.approx(500.0 - LN2, rel=1e-12)
    assert r.per_row["KL(Q‖P)"][0] == pytest.approx(LN2, rel=1e-12)  # Q ≈ [1, 0]: 1·log(1/0.5)
    via_probs = information([[0.5, 0.5]], [[1.0, 0.0]])
    assert via_probs.per_row["H(P,Q)"][0] == np.inf


def test_js_is_symmetric_and_at_most_ln_2(rng):
    p, q = _random_rows(rng, 300, 4, zeros=True), _random_rows(rng, 300, 4, zeros=True)
    pq, qp = information(p, q), information(q, p)
    np.testing.assert_array_equal(pq.per_row["JS(P,Q)"], qp.per_row["JS(P,Q)"])
    js = pq.per_row["JS(P,Q)"]
    assert np.all(np.isfinite(js)) and np.all(js >= 0) and np.all(js <= LN2)
    assert np.any(js == LN2)  # rows with disjoint supports reach the bound exactly
    np.testing.assert_array_equal(pq.per_row["KL(P‖Q)"], qp.per_row["KL(Q‖P)"])
    disjoint = information([1.0, 0.0], [0.0, 1.0])
    assert disjoint.mean["JS(P,Q)"] == LN2  # the maximum, for disjoint supports
    assert information([1.0, 0.0], [0.0, 1.0], base=2).mean["JS(P,Q)"] == 1.0


def test_kl_is_nonnegative_and_zero_only_for_equal_distributions(rng):
    p, q = _random_rows(rng, 500, 5), _random_rows(rng, 500, 5)
    r = information(p, q)
    assert np.all(r.per_row["KL(P‖Q)"] > 0) and np.all(r.per_row["KL(Q‖P)"] > 0)
    assert np.all(r.per_row["H(P,Q)"] >= r.per_row["H(P)"])  # Gibbs' inequality
    same = information(p, p)
    assert np.all(same.per_row["KL(P‖Q)"] == 0.0) and np.all(same.per_row["JS(P,Q)"] == 0.0)
    np.testing.assert_array_equal(same.per_row["H(P,Q)"], same.per_row["H(P)"])
    assert np.all(r.per_row["H(P)"] <= math.log(5) + 1e-15)  # entropy at most log C


def test_zero_probability_conventions():
    r = information([[0.0, 1.0, 0.0]], [[0.0, 0.5, 0.5]])
    assert r.mean["H(P)"] == 0.0 and math.copysign(1.0, r.mean["H(P)"]) == 1.0  # 0·log 0 = 0, and +0.0
    assert r.mean["KL(P‖Q)"] == pytest.approx(LN2, rel=1e-15)  # p = q = 0: no contribution
    assert r.mean["KL(Q‖P)"] == np.inf  # q = 0.5 where p = 0
    assert r.mean["H(P,Q)"] == pytest.approx(LN2, rel=1e-15)
    assert 0 < r.mean["JS(P,Q)"] < LN2
    # -inf logits are probability 0, under the same conventions.
    lg = information(distribution(logits=[[-np.inf, 0.0, -np.inf]]), distribution(logits=[[-np.inf, 0.0, 0.0]]))
    for label in r.mean:
        assert lg.mean[label] == pytest.approx(r.mean[label], rel=1e-15)


def test_subnormal_probabilities_keep_js_finite():
    r = information([[5e-324, 1.0]], [[0.0, 1.0]])  # (p + q)/2 rounds to 0 in the first class
    assert np.isfinite(r.mean["JS(P,Q)"]) and 0 <= r.mean["JS(P,Q)"] < 1e-300
    assert r.mean["KL(P‖Q)"] == np.inf


def test_rows_over_leading_dimensions_and_dim(rng):
    p, q = _random_rows(rng, 6, 3).reshape(2, 3, 3), _random_rows(rng, 6, 3).reshape(2, 3, 3)
    r = information(p, q)
    assert r.rows == 6 and r.batch_shape == (2, 3)
    flat = information(p.reshape(6, 3), q.reshape(6, 3))
    np.testing.assert_array_equal(r.per_row["KL(P‖Q)"], flat.per_row["KL(P‖Q)"])
    moved = information(distribution(np.moveaxis(p, -1, 0), dim=0), distribution(np.moveaxis(q, -1, 0), dim=0))
    np.testing.assert_array_equal(moved.per_row["JS(P,Q)"], flat.per_row["JS(P,Q)"])


def test_self_information():
    np.testing.assert_array_equal(self_information([0.5, 0.25, 1.0, 0.0], base=2), [1.0, 2.0, 0.0, np.inf])
    assert math.copysign(1.0, self_information([1.0])[0]) == 1.0
    assert self_information(0.5)[()] == LN2
    assert self_information([[0.1]], base=10)[0, 0] == pytest.approx(1.0, rel=1e-15)
    # The entropy is the expected self-information.
    p = np.array([0.7, 0.2, 0.1])
    assert float(np.sum(p * self_information(p))) == pytest.approx(information(p).mean["H(P)"], rel=1e-15)


def test_self_information_on_the_cli(run_cli):
    r = run_cli(["info", "--event-probs", "[0.5, 0.25, 1, 0]", "--base", "2", "--format", "plain"])
    assert r.code == 0 and r.stdout == "1.0\n2.0\n0.0\ninf\n"
    doc = _json(run_cli(["info", "--event-probs", "[[0.5],[0.001]]", "--json"]))
    assert doc["self_information"] == [[LN2], [-math.log(0.001)]]
    assert doc["event_probs"] == [[0.5], [0.001]] and doc["unit"] == "nats"


# --------------------------------------------------------------------------- against torch


@pytest.fixture(scope="module")
def torch():
    import torch
    return torch


def test_kl_matches_torch_kl_div(torch, rng):
    F = torch.nn.functional
    p, q = _random_rows(rng, 100, 6, zeros=True), _random_rows(rng, 100, 6)  # q > 0 so log q is finite
    r = information(p, q)
    P, Q = torch.tensor(p, dtype=torch.float64), torch.tensor(q, dtype=torch.float64)
    kl = F.kl_div(Q.log(), P, reduction="none").sum(-1).numpy()
    np.testing.assert_allclose(r.per_row["KL(P‖Q)"], kl, rtol=1e-13, atol=1e-16)
    batchmean = F.kl_div(Q.log(), P, reduction="batchmean").item()
    assert r.mean["KL(P‖Q)"] == pytest.approx(batchmean, rel=1e-13)


def test_kl_of_logits_matches_torch_kl_div_with_log_target(torch, rng):
    F = torch.nn.functional
    lp, lq = rng.normal(0, 4, (40, 5)), rng.normal(0, 4, (40, 5))
    r = information(distribution(logits=lp), distribution(logits=lq))
    LP = F.log_softmax(torch.tensor(lp, dtype=torch.float64), dim=-1)
    LQ = F.log_softmax(torch.tensor(lq, dtype=torch.float64), dim=-1)
    kl_pq = F.kl_div(LQ, LP, reduction="none", log_target=True).sum(-1).numpy()
    kl_qp = F.kl_div(LP, LQ, reduction="none", log_target=True).sum(-1).numpy()
    np.testing.assert_allclose(r.per_row["KL(P‖Q)"], kl_pq, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(r.per_row["KL(Q‖P)"], kl_qp, rtol=1e-12, atol=1e-15)
    ce = -(LP.exp() * LQ).sum(-1).numpy()
    np.testing.assert_allclose(r.per_row["H(P,Q)"], ce, rtol=1e-12)


def test_entropies_match_torch_entr_and_xlogy(torch, rng):
    p, q = _random_rows(rng, 100, 6, zeros=True), _random_rows(rng, 100, 6, zeros=True)
    r = information(p, q)
    P, Q = torch.tensor(p, dtype=torch.float64), torch.tensor(q, dtype=torch.float64)
    np.testing.assert_allclose(r.per_row["H(P)"], torch.special.entr(P).sum(-1).numpy(), rtol=1e-14, atol=0)
    np.testing.assert_allclose(r.per_row["H(Q)"], torch.special.entr(Q).sum(-1).numpy(), rtol=1e-14, atol=0)
    h_pq = -torch.xlogy(P, Q).sum(-1).numpy()  # inf where q = 0 < p
    np.testing.assert_array_equal(np.isinf(r.per_row["H(P,Q)"]), np.isinf(h_pq))
    assert np.isinf(h_pq).any() and np.isfinite(h_pq).any()
    np.testing.assert_allclose(r.per_row["H(P,Q)"], h_pq, rtol=1e-14, atol=0)
    M = (P + Q) / 2
    js = 0.5 * (torch.xlogy(P, P) - torch.xlogy(P, M)).sum(-1) + 0.5 * (torch.xlogy(Q, Q) - torch.xlogy(Q, M)).sum(-1)
    np.testing.assert_allclose(r.per_row["JS(P,Q)"], js.numpy(), rtol=1e-13, atol=1e-16)


def test_self_information_matches_torch(torch):
    p = np.array([1e-300, 1e-3, 0.3, 0.5, 1.0, 0.0])
    expected = (-torch.log2(torch.tensor(p, dtype=torch.float64))).numpy()
    np.testing.assert_allclose(self_information(p, base=2), expected, rtol=1e-15, atol=0)


# --------------------------------------------------------------------------- inputs, outputs, errors


def test_every_source_kind_gives_the_same_answer(run_cli, tmp_path):
    p, q = [[0.2, 0.8], [0.6, 0.4]], [[0.5, 0.5], [0.1, 0.9]]
    np.save(tmp_path / "p.npy", np.array(p))
    np.savez(tmp_path / "pq.npz", p=np.array(p), q=np.array(q))
    (tmp_path / "q.csv").write_text("a,b\n0.5,0.5\n0.1,0.9\n")
    (tmp_path / "d.json").write_text(json.dumps({"p": p, "q": q}))
    expected = information(p, q).mean
    for argv, stdin in [
        (["--p", json.dumps(p), "--q", json.dumps(q)], None),
        (["--p", tmp_path / "p.npy", "--q", tmp_path / "q.csv"], None),
        (["--p", f"{tmp_path}/pq.npz:p", "--q", f"{tmp_path}/pq.npz:q"], None),
        (["--p", f"{tmp_path}/d.json:p", "--q", "-"], "0.5,0.5\n0.1,0.9\n"),
    ]:
        doc = _json(run_cli(["info", *argv, "--json"], stdin=stdin))
        assert doc["mean"] == expected
        assert doc["rows"] == 2 and doc["classes"] == 2


def test_json_document(run_cli):
    doc = _json(run_cli(["info", "--p", "[[1,0],[0.5,0.5]]", "--q", "[[0.5,0.5],[1,0]]", "--json"]))
    assert list(doc) == ["base", "unit", "rows", "classes", "per_row", "mean", "identity"]
    assert list(doc["per_row"]) == ["H(P)", "H(Q)", "H(P,Q)", "KL(P‖Q)", "KL(Q‖P)", "JS(P,Q)"]
    assert doc["per_row"]["KL(Q‖P)"] == ["inf", LN2]  # non-finite numbers as strings
    assert doc["per_row"]["KL(P‖Q)"] == [LN2, "inf"]
    assert doc["mean"]["KL(P‖Q)"] == "inf"
    assert doc["identity"]["holds"] is True and doc["identity"]["max_abs_residual"] == 0.0
    alone = _json(run_cli(["info", "--p", "[0.5,0.5]", "--format", "json"]))
    assert list(alone["mean"]) == ["H(P)"] and "identity" not in alone


def test_plain_is_the_default_off_a_terminal(run_cli):
    r = run_cli(["info", "--p", "[0.5,0.5]", "--q", "[0.9,0.1]"])
    assert r.code == 0
    labels = [line.split(" ")[0] for line in r.stdout.splitlines()]
    assert labels == ["H(P)", "H(Q)", "H(P,Q)", "KL(P‖Q)", "KL(Q‖P)", "JS(P,Q)"]
    assert float(r.stdout.splitlines()[0].split(" ")[1]) == LN2


def test_table_and_csv(run_cli):
    p = json.dumps([[0.5, 0.5]] * 12)
    q = json.dumps([[0.9, 0.1]] * 12)
    t = run_cli(["info", "--p", p, "--q", q, "--format", "table", "--rows", "4"])
    assert t.code == 0
    for label in ("H(P)", "KL(Q‖P)", "JS(P,Q)", "per row", "8 more rows", "H(P,Q) = H(P) + KL(P‖Q): holds"):
        assert label in t.stdout
    kl = information([0.5, 0.5], [0.9, 0.1]).mean["KL(P‖Q)"]
    assert f"{kl:.8g}" in t.stdout and repr(kl) not in t.stdout  # a table's 8 digits; --precision 17 gives all
    assert repr(kl) in run_cli(["info", "--p", p, "--q", q, "--format", "table", "--precision", "17"]).stdout
    c = run_cli(["info", "--p", p, "--q", q, "--format", "csv"])
    rows = list(csv.reader(io.StringIO(c.stdout)))
    assert rows[0] == ["row", "H(P)", "H(Q)", "H(P,Q)", "KL(P‖Q)", "KL(Q‖P)", "JS(P,Q)"]
    assert len(rows) == 13 and float(rows[5][1]) == LN2


def test_unnormalised_rows_warn_normalize_or_strict(run_cli):
    r = run_cli(["info", "--p", "[[0.5,0.6],[0.5,0.5]]", "--format", "plain"])
    assert r.code == 0
    assert r.stderr.startswith("warning: --p [[0.5,0.6],[0.5,0.5]]: row 0 sums to 1.1, not 1")
    assert r.stdout.startswith("H(P) ")
    n = run_cli(["info", "--p", "[[0.5,0.6],[0.5,0.5]]", "--normalize", "--format", "plain"])
    assert n.code == 0 and n.stderr == ""
    assert float(n.stdout.split()[1]) == pytest.approx(information([[5 / 11, 6 / 11], [0.5, 0.5]]).mean["H(P)"], rel=1e-15)
    s = run_cli(["info", "--p", "[[0.5,0.6],[0.5,0.5]]", "--strict"])
    assert s.code == 3 and "refused by --strict" in s.stderr and s.stdout == ""
    ok = run_cli(["info", "--p", "[0.3333333,0.3333333,0.3333334]"])
    assert ok.code == 0 and ok.stderr == ""
    loose = run_cli(["info", "--p", "[0.33,0.33,0.33]", "--sum-tol", "0.02"])
    assert loose.code == 0 and loose.stderr == ""


def test_library_warns_with_input_warning():
    with pytest.warns(InputWarning, match="sums to 0.5"):
        distribution([0.25, 0.25], origin="--p x")


@pytest.mark.parametrize("argv, code, message", [
    (["--p", "[[0.5,1.5]]"], 3, "error: --p [[0.5,1.5]]: probabilities must be in [0, 1]; found 1.5 at index (0, 1)"),
    (["--p", "[-0.1,1.1]"], 3, "probabilities must be in [0, 1]; found -0.1 at index 0"),
    (["--p", "[0.5,nan]"], 3, "found nan"),
    (["--p", "[0.5,0.5]", "--q", "[0.2,0.3,0.5]"], 3, "--q [0.2,0.3,0.5]: shape (3,) does not match the shape (2,) of --p"),
    (["--p", "0.5"], 3, "got a single number"),
    (["--p", "[]"], 3, "class dimension is empty"),
    (["--p", "no/such/file.csv"], 3, "error: --p no/such/file.csv:"),
    (["--p-logits", "[1,nan]"], 3, "logits must be finite or -inf"),
    (["--p-logits", "[[-inf,-inf]]"], 3, "row 0 has no finite logit"),
    (["--p", "[0,0]", "--normalize"], 3, "sums to 0 and cannot be normalised"),
    (["--p", "[0.5,0.5]", "--dim", "1"], 3, "--dim 1 is out of range"),
    (["--event-probs", "[2]"], 3, "error: --event-probs [2]: probabilities must be in [0, 1]"),
    (["--p", "[0.5,0.5]", "--p-logits", "[0,0]"], 2, "--p and --p-logits: give one of them"),
    (["--q", "[0.5,0.5]"], 2, "need P as well"),
    ([], 2, "give --p"),
    (["--p", "[0.5,0.5]", "--base", "3"], 2, "--base: expected 2, e or 10"),
    (["--p", "[0.5,0.5]", "--format", "xml"], 2, "--format"),
    (["--p", "[0.5,0.5]", "--rows", "-1"], 2, "--rows"),
    (["--event-probs", "[0.5]", "--q", "[1]"], 2, "--event-probs and --q"),
    (["--p", "-", "--q", "-"], 2, "standard input is already read by --p"),
    (["--p", "[0.5,0.5]", "--bogus"], 2, "--bogus"),
])
def test_errors_and_exit_codes(run_cli, argv, code, message):
    r = run_cli(["info", *argv], stdin="0.5,0.5\n")
    assert r.code == code, r.stderr
    assert message in r.stderr
    assert r.stdout == ""
    assert "Traceback" not in r.stderr and r.stderr.startswith("error: ")


def test_library_errors_are_lossctl_errors():
    with pytest.raises(InputError, match="^p: probabilities must be in"):
        information([0.5, 1.5])
    with pytest.raises(UsageError):
        information([0.5, 0.5], base="3")
    with pytest.raises(InputError, match="does not match"):
        information([0.5, 0.5], [[0.5, 0.5]])


def test_info_is_listed_in_help(run_cli):
    r = run_cli(["--help"])
    assert r.code == 0 and "info" in r.stdout
    h = run_cli(["info", "--help"])
    assert h.code == 0 and "--p-logits" in h.stdout and "--event-probs" in h.stdout
