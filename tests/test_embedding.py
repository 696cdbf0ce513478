"""cosine-embedding and triplet-margin: conventions, gradients, reductions, --explain, torch, CLI.

Golden numbers are torch 2.13.0+cpu float64 values (cases COS-*, TRI-*). Live torch
comparisons run the oracle table (tests/torch_reference.py) with the fixtures'
tolerances; the properties every loss has (gradients, reductions, --explain, float32,
streaming) are tests/test_common.py's.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import lossctl
from finite_differences import central_difference_of
from lossctl.errors import InputError, UsageError

VALUE_RTOL = 1e-10
VALUE_ATOL = 1e-13  # values that are mathematically 0 come out as O(1e-14) rounding residue
GRAD_RTOL = 1e-9
GRAD_ATOL = 1e-12


@pytest.fixture
def torch():
    import torch as t
    return t


def against_torch(call: dict) -> None:
    """lossctl against the oracle table's torch definition (tests/torch_reference.py)."""
    import test_torch_fixtures as fx
    import torch_reference as ref

    case = {k: np.asarray(v).tolist() if isinstance(v, np.ndarray) else v for k, v in call.items()}
    fx.check_result(lossctl.compute(case, grad=True), ref.reference(case))


def close(actual, expected, rtol=GRAD_RTOL, atol=GRAD_ATOL):
    np.testing.assert_allclose(np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64),
                               rtol=rtol, atol=atol, equal_nan=True)


# =========================================================================== cosine-embedding

COS1 = dict(
    x1=[[1.0, 2.0, 3.0], [0.5, -1.0, 2.0], [1.0, 0.0, 1.0]],
    x2=[[1.0, 0.0, 1.0], [1.0, 1.0, 1.0], [-1.0, 2.0, 0.5]],
    target=[1.0, -1.0, -1.0],
)


def cos(**kw):
    return lossctl.compute(loss="cosine-embedding", **{"grad": True, **kw})


def test_cosine_golden_cos1():
    r = cos(**COS1, margin=0.2)
    assert r.loss == pytest.approx(0.14067850899696324, rel=VALUE_RTOL)
    assert set(r.grad) == {"x1", "x2"}
    close(r.grad["x1"], [[-0.044995770596324994, 0.035996616477056396, -0.008999154119268604],
                         [0.07199323295412195, 0.10798984943117493, 0.03599661647706898], [0.0, 0.0, 0.0]])
    close(r.grad["x2"], [[0.06299407883479019, -0.1259881576697064, -0.0629940788349162],
                         [1.4002687898084787e-14, -0.1259881576696954, 0.1259881576697234], [0.0, 0.0, 0.0]])


def test_cosine_epsilon_is_atens_float32_constant():
    # EPSILON = float32(1e-12) is added to each squared norm: (3,4)·(4,3) gives 0.04000000000003834, not 0.04,
    # and identical vectors give 3.9968e-14, not 0.
    r = cos(x1=[[3.0, 4.0], [3.0, 4.0]], x2=[[4.0, 3.0], [3.0, 4.0]], target=[1.0, 1.0], reduction="none")
    assert r.per_sample[0] == 0.04000000000003834
    assert r.per_sample[1] == pytest.approx(3.9968028886505635e-14, rel=1e-6)
    assert r.per_sample[1] > 0


def test_cosine_golden_cos2_other_targets_give_zero():
    r = cos(x1=[[3.0, 4.0], [1.0, 1.0]], x2=[[4.0, 3.0], [-1.0, 2.0]], target=[1.0, 0.0], reduction="none")
    close(r.per_sample, [0.04000000000003834, 0.0], rtol=VALUE_RTOL)
    close(r.grad["x1"], [[-0.04480000000000284, 0.0335999999999925], [0.0, 0.0]])
    close(r.grad["x2"], [[0.0335999999999925, -0.04480000000000284], [0.0, 0.0]])
    assert not np.any(r.grad["x1"][1]) and not np.any(r.grad["x2"][1])


def test_cosine_clamp_min_passes_gradient_at_zero():
    # y = −1 with cos − margin exactly 0: the loss is 0 but torch's clamp_min still passes the gradient.
    r = cos(x1=[[1.0, 0.0]], x2=[[0.0, 1.0]], target=[-1.0], margin=0.0, reduction="sum")
    assert r.loss == 0.0
    assert np.any(r.grad["x1"] != 0) and np.any(r.grad["x2"] != 0)
    close(r.grad["x1"], [[0.0, 1.0]])  # dcos/dx1 = x2/den − cos·x1/‖x1‖² = x2
    # just below the boundary the gradient is gone
    r = cos(x1=[[1.0, 0.0]], x2=[[0.0, 1.0]], target=[-1.0], margin=1e-9, reduction="sum")
    assert not np.any(r.grad["x1"])


def test_cosine_unbatched_gives_a_0d_loss():
    r = cos(x1=[1.0, 2.0, 3.0], x2=[1.0, 0.0, 1.0], target=-1.0, margin=0.1, reduction="none")
    assert np.shape(r.per_sample) == ()
    assert np.shape(r.grad["x1"]) == (3,)
    expected = 4 / np.sqrt((14 + 1e-12) * (2 + 1e-12)) - 0.1
    assert float(r.per_sample) == pytest.approx(expected, rel=1e-12)


def test_cosine_explain_shows_pairs_as_rows():
    r = cos(**COS1, margin=0.2, explain=True)
    assert r.steps[-1].value == pytest.approx(r.loss, rel=1e-15)
    per = {s.label: s for s in r.steps}
    close(per["loss"].value, cos(**COS1, margin=0.2, reduction="none").per_sample, rtol=1e-15, atol=0)
    assert per["cosine"].value.shape == (3,)
    assert r.shown_rows == 3 and r.total_rows == 3
    r = cos(**COS1, explain=True, rows=1, reduction="sum")
    assert r.shown_rows == 1 and np.asarray(r.steps[0].value).shape == (1, 3)
    assert r.steps[-1].value == pytest.approx(r.loss, rel=1e-15)


@pytest.mark.parametrize("kw, message", [
    (dict(x1=[[1.0, 2.0]], x2=[[1.0, 0.0]], target=[[1.0]]), "0-D or 1-D target"),
    (dict(x1=[1.0, 2.0], x2=[[1.0, 0.0]], target=[1.0]), "1-D target needs (N, D) inputs"),
    (dict(x1=[[1.0, 2.0]], x2=[[1.0, 0.0]], target=1.0), "single target needs (D,) inputs"),
    (dict(x1=[[1.0, 2.0], [3.0, 4.0]], x2=[[1.0, 0.0, 2.0], [1.0, 1.0, 1.0]], target=[1.0, 1.0]), "does not broadcast"),
    (dict(x1=[[1.0, 2.0], [3.0, 4.0]], x2=[[1.0, 0.0], [1.0, 1.0]], target=[1.0, 1.0, -1.0]), "pairs"),
])
def test_cosine_shape_errors(kw, message):
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        cos(**kw)


def test_cosine_missing_x2_is_a_usage_error():
    with pytest.raises(UsageError, match="missing x2"):
        cos(x1=[[1.0, 2.0]], target=[1.0])


@pytest.mark.parametrize("seed", range(6))
def test_cosine_matches_torch_live(torch, seed):
    """Broadcast second inputs and 0 targets, over the margin's range."""
    rng = np.random.default_rng(100 + seed)
    n, d = 5, 4
    x1, x2 = rng.normal(size=(n, d)), rng.normal(size=(n, d))
    if seed % 3 == 1:
        x2 = rng.normal(size=(1, d))  # broadcast the second input, as torch allows
    y = rng.choice([-1.0, 1.0, 0.0], size=n, p=[0.45, 0.45, 0.1])
    for reduction in ("mean", "sum", "none"):
        against_torch(dict(loss="cosine-embedding", x1=x1, x2=x2, target=y, margin=[0.0, 0.25, -0.3][seed % 3],
                           reduction=reduction))


def test_cosine_unbatched_matches_torch_live(torch):
    against_torch(dict(loss="cosine-embedding", x1=[0.3, -1.2, 2.0], x2=[1.0, 0.5, -0.25], target=-1.0, margin=-0.5))


def test_cosine_cli(run_cli, tmp_path):
    np.save(tmp_path / "x1.npy", np.array(COS1["x1"]))
    res = run_cli(["cosine-embedding", "--x1", tmp_path / "x1.npy", "--x2", json.dumps(COS1["x2"]),
                   "-t", "[1,-1,-1]", "--margin", "0.2", "--json", "--grad", "--explain"])
    assert res.code == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["loss_name"] == "cosine-embedding"
    assert doc["loss"] == pytest.approx(0.14067850899696324, rel=VALUE_RTOL)
    assert set(doc["grad"]) == {"x1", "x2"}
    assert doc["steps"][-1]["value"] == doc["loss"]
    plain = run_cli(["cosine-embedding", "--x1", tmp_path / "x1.npy", "--x2", json.dumps(COS1["x2"]),
                     "-t", "[1,-1,-1]", "--margin", "0.2"])
    assert plain.code == 0 and float(plain.stdout) == doc["loss"]
    good = run_cli(["cosine-embedding", "--x1", tmp_path / "x1.npy", "--x2", json.dumps(COS1["x2"]),
                    "-t", "[1,-1,-1]", "--margin", "0.2", "--expect", "0.14067850899696324"])
    assert good.code == 0
    bad = run_cli(["cosine-embedding", "--x1", tmp_path / "x1.npy", "--x2", json.dumps(COS1["x2"]),
                   "-t", "[1,-1,-1]", "--expect", "0.14067850899696324"])
    assert bad.code == 1 and "expected" in bad.stderr
    missing = run_cli(["cosine-embedding", "--x1", tmp_path / "x1.npy", "-t", "[1,-1,-1]"])
    assert missing.code == 2 and "--x2" in missing.stderr
    wrong_kind = run_cli(["cosine-embedding", "--pred", "[[1,2]]", "--x2", "[[1,2]]", "-t", "[1]"])
    assert wrong_kind.code == 2 and "--x1" in wrong_kind.stderr
    shape = run_cli(["cosine-embedding", "--x1", "[[1,2],[3,4]]", "--x2", "[[1,2],[0,1]]", "-t", "[1,1,1]"])
    assert shape.code == 3 and shape.stderr.startswith("error: --target [1,1,1]:")


# =========================================================================== triplet-margin

TRI = dict(
    anchor=[[0.0, 0.0], [1.0, 1.0], [0.5, -0.5]],
    positive=[[1.0, 0.0], [1.0, 2.0], [0.0, 0.0]],
    negative=[[0.0, 2.0], [1.0, 1.5], [1.0, -1.0]],
)


def tri(**kw):
    return lossctl.compute(loss="triplet-margin", **{"grad": True, **kw})


def test_triplet_golden_tri1_eps_is_added_to_the_difference():
    r = tri(**TRI)
    assert r.loss == pytest.approx(0.8333333333332499, rel=VALUE_RTOL)
    # row 0 is mathematically 0 but eps·(1,1) in the difference makes it 2.498e-13 (and active)
    assert r.per_sample[0] == pytest.approx(2.498001805406602e-13, rel=1e-6)
    close(r.grad["anchor"], [[-0.3333334999999167, 0.3333336666669583],
                             [-3.3333433333449985e-07, -5.000444502911705e-13],
                             [0.4714045207900889, -0.4714045207900889]])
    close(r.grad["positive"], [[0.33333333333316667, -3.3333366666683335e-07],
                               [-3.3333366666683335e-07, 0.33333333333316667],
                               [-0.23570273179956525, 0.23570178899052363]])
    close(r.grad["negative"], [[1.666667500000208e-07, -0.3333333333332916],
                               [6.666680000013332e-07, -0.3333333333326666],
                               [-0.23570178899052363, 0.23570273179956525]])


def test_triplet_golden_tri2_p1_swap():
    r = tri(**TRI, margin=0.5, p=1, swap=True, reduction="none")
    close(r.per_sample, [0.0, 1.0, 0.5], rtol=VALUE_RTOL)
    close(r.grad["anchor"], [[0.0, 0.0], [0.0, 0.0], [2.0, -2.0]])
    close(r.grad["positive"], [[0.0, 0.0], [-1.0, 1.0], [-1.0, 1.0]])
    close(r.grad["negative"], [[0.0, 0.0], [1.0, -1.0], [-1.0, 1.0]])


def test_triplet_golden_tri3_p3_eps0():
    r = tri(**TRI, eps=0.0, p=3)
    assert r.loss == pytest.approx(0.8333333333333334, rel=VALUE_RTOL)
    close(r.grad["anchor"], [[-1 / 3, 1 / 3], [0.0, 0.0], [0.419973683298291, -0.419973683298291]])


def test_triplet_swap_tie_splits_the_gradient():
    # eps = 0: d(a, n) = d(p, n) = 1 exactly; torch.min sends half of −1 to each distance.
    r = tri(anchor=[[1.0, 0.0]], positive=[[-1.0, 0.0]], negative=[[0.0, 0.0]], eps=0.0, swap=True, reduction="sum")
    assert r.loss == 2.0  # 1 + d(a,p)=2 − min(1, 1)
    close(r.grad["anchor"], [[0.5, 0.0]], rtol=0, atol=1e-15)
    close(r.grad["positive"], [[-0.5, 0.0]], rtol=0, atol=1e-15)
    close(r.grad["negative"], [[0.0, 0.0]], rtol=0, atol=1e-15)
    # without the tie the whole −1 goes to the nearer negative
    r = tri(anchor=[[1.0, 0.0]], positive=[[-2.0, 0.0]], negative=[[0.0, 0.0]], eps=0.0, swap=True, reduction="sum")
    close(r.grad["anchor"], [[1.0 - 1.0, 0.0]], rtol=0, atol=1e-15)  # +1 from d(a,p), −1 from d(a,n)
    close(r.grad["negative"], [[1.0, 0.0]], rtol=0, atol=1e-15)  # all of −∂d(a,n)/∂n = (a − n)/‖a − n‖
    close(r.grad["positive"], [[-1.0, 0.0]], rtol=0, atol=1e-15)  # only d(a, p): d(p, n) is not the minimum


def test_triplet_norm_gradient_at_zero_is_zero():
    # eps = 0 and identical points: every distance is 0, the loss is the margin, and ∂‖·‖ at 0 is 0.
    for p in (1.0, 1.5, 2.0, 3.0, 0.5, np.inf):
        r = tri(anchor=[[1.0, 2.0]], positive=[[1.0, 2.0]], negative=[[1.0, 2.0]], eps=0.0, p=p, reduction="sum")
        assert r.loss == 1.0
        for k in ("anchor", "positive", "negative"):
            assert not np.any(r.grad[k]), (p, k)


def test_triplet_p1_sign_of_zero_is_zero():
    # second component of a − p is exactly 0 → sign(0) = 0 → no gradient there
    r = tri(anchor=[[0.0, 1.0]], positive=[[2.0, 1.0]], negative=[[0.0, 3.0]], p=1, eps=0.0, margin=5.0)
    close(r.grad["positive"], [[1.0, 0.0]], rtol=0, atol=0)


def test_triplet_margin_must_be_positive():
    with pytest.raises(UsageError, match="margin: must be greater than 0"):
        tri(**TRI, margin=0.0)


def test_triplet_ndim_mismatch():
    with pytest.raises(InputError, match="same number of dimensions"):
        tri(anchor=[[0.0, 0.0]], positive=[1.0, 0.0], negative=[[0.0, 2.0]])


@pytest.mark.parametrize("p, swap", [(2.0, False), (3.0, True), (1.5, False), (0.7, True)])
def test_triplet_p_norm_and_swap_gradients_match_finite_differences(rng, p, swap):
    """The p-norm's gradient for p other than 2, and through the swap's minimum (the common
    checks run the oracle example: p = 2, no swap)."""
    a, pos, neg = (rng.normal(size=(4, 3)) for _ in range(3))
    kw = dict(margin=3.0, p=p, swap=swap)
    r = tri(anchor=a, positive=pos, negative=neg, **kw)
    assert r.loss > 0
    fns = {
        "anchor": lambda v: tri(anchor=v, positive=pos, negative=neg, grad=False, **kw).loss,
        "positive": lambda v: tri(anchor=a, positive=v, negative=neg, grad=False, **kw).loss,
        "negative": lambda v: tri(anchor=a, positive=pos, negative=v, grad=False, **kw).loss,
    }
    for name, x in (("anchor", a), ("positive", pos), ("negative", neg)):
        close(r.grad[name], central_difference_of(fns[name], x, relative=False), rtol=1e-6, atol=1e-8)


def test_triplet_explain_shows_the_swap_steps():
    r = tri(**TRI, swap=True, explain=True)
    assert r.steps[-1].value == pytest.approx(r.loss, rel=1e-15)
    labels = [s.label for s in r.steps]
    assert "swap distance" in labels and "hardest negative distance" in labels
    per = {s.label: s for s in r.steps}
    close(per["loss"].value, tri(**TRI, swap=True, reduction="none").per_sample, rtol=1e-15, atol=0)
    r = tri(**TRI, explain=True, reduction="none")
    assert "swap distance" not in [s.label for s in r.steps]


def test_triplet_unbatched_and_broadcast():
    r = tri(anchor=[0.5, -0.5], positive=[0.0, 0.0], negative=[1.0, -1.0], reduction="none")
    assert np.shape(r.per_sample) == () and np.shape(r.grad["anchor"]) == (2,)
    # a (1, D) positive is broadcast over the batch; its gradient sums over it
    b = tri(anchor=TRI["anchor"], positive=[[0.0, 0.0]], negative=TRI["negative"], reduction="sum")
    rows = [tri(anchor=[a], positive=[[0.0, 0.0]], negative=[n], reduction="sum") for a, n in zip(TRI["anchor"], TRI["negative"])]
    assert b.loss == pytest.approx(sum(x.loss for x in rows), rel=1e-14)
    close(b.grad["positive"], sum(x.grad["positive"] for x in rows), rtol=1e-14, atol=1e-16)


@pytest.mark.parametrize("p", [2.0, 1.0, 3.0, 1.5, 0.5, np.inf, 0.0])
@pytest.mark.parametrize("swap", [False, True])
def test_triplet_matches_torch_live(torch, p, swap):
    rng = np.random.default_rng(7 + int(10 * p if np.isfinite(p) else 99) + swap)
    a, pos, neg = (rng.normal(size=(6, 4)) for _ in range(3))
    a[0] = pos[0]  # an eps-only distance
    for eps in (1e-6, 0.0):
        for reduction in ("mean", "sum", "none"):
            against_torch(dict(loss="triplet-margin", anchor=a, positive=pos, negative=neg, margin=1.5, p=p, eps=eps,
                               swap=swap, reduction=reduction))


def test_triplet_broadcast_matches_torch_live(torch):
    rng = np.random.default_rng(3)
    against_torch(dict(loss="triplet-margin", anchor=rng.normal(size=(5, 3)), positive=rng.normal(size=(1, 3)),
                       negative=rng.normal(size=(5, 3)), margin=2.0, swap=True))


@pytest.mark.parametrize("shapes", [
    ((3, 1, 2), (1, 4, 2), (3, 4, 2)),
    ((1, 3), (1, 3), (4, 3)),   # only the negative is batched: d(a, p) is broadcast into z
    ((2, 1, 1), (2, 2, 1), (1, 1, 3)),  # the last dimension broadcasts too
])
@pytest.mark.parametrize("swap", [False, True])
def test_triplet_mixed_broadcasting_matches_torch_live(torch, shapes, swap):
    rng = np.random.default_rng(17)
    a, pos, neg = (rng.normal(size=s) for s in shapes)
    call = dict(loss="triplet-margin", anchor=a, positive=pos, negative=neg, margin=2.5, p=3, swap=swap,
                reduction="none")
    against_torch(call)
    r = lossctl.compute(call, explain=True, grad=True)
    assert r.shown_rows == min(3, np.size(r.per_sample))


def test_triplet_cli(run_cli, tmp_path):
    np.savez(tmp_path / "emb.npz", a=np.array(TRI["anchor"]), p=np.array(TRI["positive"]), n=np.array(TRI["negative"]))
    base = ["triplet-margin", "--anchor", f"{tmp_path}/emb.npz:a", "--positive", f"{tmp_path}/emb.npz:p",
            "--negative", f"{tmp_path}/emb.npz:n"]
    res = run_cli(base + ["--json", "--grad", "--per-sample"])
    assert res.code == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["loss"] == pytest.approx(0.8333333333332499, rel=VALUE_RTOL)
    assert set(doc["grad"]) == {"anchor", "positive", "negative"}
    assert len(doc["per_sample"]) == 3
    swap = run_cli(base + ["--swap", "--p", "1", "--margin", "0.5", "-r", "none"])
    assert swap.code == 0 and [float(v) for v in swap.stdout.split()] == [0.0, 1.0, 0.5]
    table = run_cli(base + ["--explain", "--format", "table"])
    assert table.code == 0 and "derivation" in table.stdout and "margin" in table.stdout
    out = tmp_path / "out.npz"
    written = run_cli(base + ["--grad", "-o", out, "-r", "none"])
    assert written.code == 0
    with np.load(out) as z:
        assert set(z.files) == {"per_sample", "grad_anchor", "grad_positive", "grad_negative"}
        close(z["grad_negative"][2], [-0.23570178899052363 * 3, 0.23570273179956525 * 3])
    bad_margin = run_cli(base + ["--margin", "-1"])
    assert bad_margin.code == 2 and "--margin" in bad_margin.stderr
    missing = run_cli(base[:5])
    assert missing.code == 2 and "--negative" in missing.stderr


def test_list_shows_the_embedding_inputs(run_cli):
    res = run_cli(["list", "--format", "json"])
    assert res.code == 0
    rows = {r["name"]: r for r in json.loads(res.stdout)}
    assert rows["cosine-embedding"]["inputs"] == ["x1", "x2", "target"]
    assert rows["triplet-margin"]["inputs"] == ["anchor", "positive", "negative"]
    params = {p["name"]: p["default"] for p in rows["triplet-margin"]["params"]}
    assert params["margin"] == 1.0 and params["p"] == 2.0 and params["eps"] == 1e-6 and params["swap"] is False
    assert {p["name"]: p["default"] for p in rows["cosine-embedding"]["params"]}["margin"] == 0.0
