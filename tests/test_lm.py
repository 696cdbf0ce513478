"""lm and linear-ce against torch (committed float64 fixtures), and the streaming invariants."""

from __future__ import annotations

import json
import math
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from lossctl.errors import InvalidInput
from lossctl.losses import linear_ce, lm, online_softmax

FIXTURES = Path(__file__).parent / "fixtures" / "lm"
RTOL, ATOL = 1e-10, 1e-13


def _load(name):
    return json.loads((FIXTURES / f"{name}.json").read_text())["cases"]


def _num(v):
    return float(v) if not isinstance(v, str) else float(v)


def decode_bf16(bits) -> np.ndarray:
    """bfloat16 bits → float32 (the upper half of a float32), for the tests only."""
    return (np.asarray(bits, dtype=np.int64).astype(np.uint16).astype(np.uint32) << 16).view(np.float32)


def lm_inputs(case: dict) -> tuple[dict, dict]:
    if "source" in case:  # a dump on disk, read as the CLI reads it (bfloat16 stays encoded)
        from lossctl.io.readers import read_path

        path = Path(__file__).parents[1] / case["source"]
        x = {k: read_path(path, k, f"--{k}", lazy=True) for k in ("logits", "labels", "attention_mask", "bytes")}
        return x, {k: case[k] for k in ("shift",) if k in case}
    logits = decode_bf16(case["logits_bf16_bits"]) if "logits_bf16_bits" in case else np.asarray(case["logits"])
    x = {"logits": logits, "labels": np.asarray(case["labels"])}
    for key in ("attention_mask", "bytes"):
        if key in case:
            x[key] = np.asarray(case[key])
    params = {k: case[k] for k in ("shift", "ignore_index", "normalize") if k in case}
    return x, params


def check_lm_case(case: dict, expect: dict, **kw) -> lm.LMResult:
    x, params = lm_inputs(case)
    r = lm.evaluate(x, params, grad=True, per_sample=True, **kw)
    np.testing.assert_allclose(r.loss, _num(expect["loss"]), rtol=RTOL, atol=ATOL, equal_nan=True)
    assert r.tokens == expect["tokens"]
    np.testing.assert_allclose(r.per_token, np.asarray(expect["per_token"]), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(r.grad, np.asarray(expect["grad"]), rtol=RTOL, atol=ATOL)
    return r


LM_CASES = _load("lm")
LCE_CASES = _load("linear-ce")


@pytest.mark.parametrize("case", LM_CASES, ids=[c["name"] for c in LM_CASES])
def test_lm_matches_torch_fixture(case):
    r = check_lm_case(case, case["expect"])
    if "bytes" in case:
        want = r.nll_sum / (math.log(2) * float(np.sum(case["bytes"])))
        assert r.bits_per_byte == pytest.approx(want, rel=1e-15)
    if r.tokens:
        with np.errstate(over="ignore"):  # the 'extreme' case's perplexity is inf
            assert r.perplexity == pytest.approx(float(np.exp(np.float64(r.loss))), rel=1e-15)
        assert r.bits_per_token == pytest.approx(r.loss / math.log(2), rel=1e-15)


@pytest.mark.parametrize("case", [c for c in LM_CASES if c["name"] in ("shift-mask", "vocab-300", "bf16", "extreme")],
                         ids=lambda c: c["name"])
@pytest.mark.parametrize("blocks", [dict(vocab_block=7, block_bytes=1), dict(vocab_block=64, block_bytes=200, threads=2)],
                         ids=["vocab7-row1", "vocab64-threads"])
def test_lm_blocks_and_threads_give_the_same_numbers(case, blocks):
    check_lm_case(case, case["expect"], **blocks)


def test_lm_all_masked_is_nan_with_zero_gradient_and_says_why():
    case = next(c for c in LM_CASES if c["name"] == "all-masked")
    r = check_lm_case(case, case["expect"])
    assert math.isnan(r.loss) and r.tokens == 0 and not np.any(r.grad)
    assert "every position is masked" in r.note and "0/0 = nan" in r.note


def test_lm_per_sequence_table_and_mean_sequence_perplexity():
    case = next(c for c in LM_CASES if c["name"] == "shift-mask")
    x, params = lm_inputs(case)
    r = lm.evaluate(x, params, per_sample=True)
    per_tok = np.asarray(case["expect"]["per_token"])
    counted = per_tok != 0
    table = r.per_sequence
    np.testing.assert_array_equal(table["tokens"], counted.sum(axis=1))
    np.testing.assert_allclose(table["nll_sum"], per_tok.sum(axis=1), rtol=1e-13)
    np.testing.assert_allclose(table["perplexity"], np.exp(per_tok.sum(axis=1) / counted.sum(axis=1)), rtol=1e-13)
    assert r.mean_sequence_perplexity == pytest.approx(float(np.mean(table["perplexity"])), rel=1e-15)
    # the corpus perplexity is exp(Σ NLL / Σ n), not the mean of the sequences' perplexities
    assert r.perplexity != pytest.approx(r.mean_sequence_perplexity, rel=1e-6)


def test_lm_loss_is_the_exact_sum_of_the_per_token_values_for_any_blocks():
    rng = np.random.default_rng(5)
    x = {"logits": (rng.standard_normal((3, 50, 500)) * 4).astype(np.float32), "labels": rng.integers(0, 500, (3, 50))}
    plain = lm.evaluate(x, {})
    shown = lm.evaluate(x, {}, per_sample=True, block_bytes=5000, threads=2)
    assert plain.loss == shown.loss == math.fsum(shown.per_token.ravel()) / 150
    np.testing.assert_array_equal(plain.per_token, shown.per_token)


def test_lm_explain_derives_one_token_then_the_mean():
    case = next(c for c in LM_CASES if c["name"] == "shift-mask")
    x, params = lm_inputs(case)
    r = lm.evaluate(x, params, explain=True)
    steps = {s.label: s.value for s in r.steps}
    z = np.asarray(case["logits"])[0, 0]
    y = case["labels"][0][1]
    assert steps["max"] == z.max()
    assert steps["log-sum-exp"] == pytest.approx(math.log(np.exp(z).sum()), rel=1e-15)
    assert steps["target logit"] == z[y]
    assert steps["NLL"] == pytest.approx(case["expect"]["per_token"][0][0], rel=1e-14)
    assert steps["count"] == r.tokens == case["expect"]["tokens"]
    assert steps["mean"] == r.loss
    assert steps["exp"] == r.perplexity == math.exp(r.loss)


@pytest.mark.parametrize("x, params, name, fragment", [
    ({"logits": np.zeros((2, 3, 4)), "labels": np.array([[0, 1, 4], [0, 0, 0]])}, {}, "labels", "token id 4 is out of range"),
    ({"logits": np.zeros((2, 3, 4)), "labels": np.zeros((2, 2), dtype=int)}, {}, "labels", "expected shape (2, 3)"),
    ({"logits": np.zeros((2, 3, 4)), "labels": np.zeros((2, 3)), "attention_mask": np.full((2, 3), 2)}, {},
     "attention_mask", "0/1"),
    ({"logits": np.zeros((4,)), "labels": np.zeros(())}, {}, "logits", "vocabulary last"),
    ({"logits": np.zeros((2, 3, 4)), "labels": np.zeros((2, 3))}, {"normalize": "global:0"}, "normalize", "positive"),
    ({"logits": np.zeros((2, 3, 4)), "labels": np.zeros((2, 3))}, {"normalize": "batch"}, "normalize", "tokens, sequences"),
    ({"logits": np.zeros((2, 3, 4)), "labels": np.zeros((2, 3)), "bytes": [1, 2, 3]}, {}, "bytes", "per sequence"),
])
def test_lm_rejects_bad_inputs_naming_them(x, params, name, fragment):
    with pytest.raises(InvalidInput) as e:
        lm.evaluate(x, params)
    assert e.value.name == name and fragment in e.value.message


def test_lm_masked_labels_may_be_out_of_range():
    """Padding positions often carry a pad id beyond the vocabulary; masked, they are not checked."""
    x = {"logits": np.zeros((1, 3, 4)), "labels": np.array([[1, 2, 99]]), "attention_mask": np.array([[1, 1, 0]])}
    assert lm.evaluate(x, {}).loss == pytest.approx(math.log(4))


def test_lm_streams_a_memory_map_in_constant_memory(tmp_path):
    rng = np.random.default_rng(3)
    b, t, v = 4, 64, 4096
    path = tmp_path / "logits.npy"
    mm = np.lib.format.open_memmap(path, mode="w+", dtype=np.float16, shape=(b, t, v))
    mm[:] = rng.standard_normal((b, t, v)).astype(np.float16)
    mm.flush()
    labels = rng.integers(0, v, (b, t))
    logits = np.load(path, mmap_mode="r")
    expect = lm.evaluate({"logits": np.asarray(logits, dtype=np.float64), "labels": labels}, {}, per_sample=True)
    tracemalloc.start()
    r = lm.evaluate({"logits": logits, "labels": labels}, {}, block_bytes=64 << 10)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert r.loss == pytest.approx(expect.loss, rel=1e-14)
    assert peak < 1 << 20, f"peak {peak} bytes for a {mm.nbytes}-byte input"  # the input is 2 MiB, f64 it would be 8


def test_online_softmax_combines_blocks_exactly_like_one_block():
    rng = np.random.default_rng(9)
    z = rng.standard_normal((5, 1000)) * 30
    z[0, :] = -np.inf
    z[1, 17] = np.inf
    z[2, 3] = 1e300
    whole = online_softmax.logsumexp_from(*online_softmax.block_stats(z))
    blocked = online_softmax.row_logsumexp(lambda c0, c1: z[:, c0:c1], z.shape[1], 97)
    assert whole[0] == blocked[0] == -np.inf and whole[1] == blocked[1] == np.inf
    np.testing.assert_allclose(blocked[2:], whole[2:], rtol=1e-15)
    with np.errstate(over="ignore"):
        ref = [math.log(math.fsum(math.exp(a - row.max()) for a in row)) + row.max() for row in z[3:]]
    np.testing.assert_allclose(whole[3:], ref, rtol=1e-15)


# -- linear-ce -------------------------------------------------------------------------------


def lce_inputs(case: dict) -> tuple[dict, dict, str]:
    x = {k: np.asarray(case[k]) for k in ("hidden", "lm_head", "lm_head_bias", "target") if k in case}
    params = {k: (np.asarray(case[k]) if k == "weight" else case[k])
              for k in ("weight", "ignore_index", "label_smoothing") if k in case}
    return x, params, case.get("reduction", "mean")


def check_lce_case(case, **kw):
    x, params, reduction = lce_inputs(case)
    r = linear_ce.evaluate(x, params, reduction=reduction, grad=True, **kw)
    expect = case["expect"]
    want = np.asarray(expect["loss"], dtype=float) if not isinstance(expect["loss"], str) else float(expect["loss"])
    np.testing.assert_allclose(r.loss, want, rtol=RTOL, atol=ATOL, equal_nan=True)
    assert set(r.grad) == set(expect["grad"])
    for name, g in expect["grad"].items():
        np.testing.assert_allclose(r.grad[name], np.asarray(g), rtol=RTOL, atol=ATOL, err_msg=name)


@pytest.mark.parametrize("case", LCE_CASES, ids=[c["name"] for c in LCE_CASES])
def test_linear_ce_matches_torch_fixture(case):
    check_lce_case(case)


@pytest.mark.parametrize("case", [c for c in LCE_CASES if c["name"] in ("index-mean", "probs-none", "weight-smoothing-sum")],
                         ids=lambda c: c["name"])
def test_linear_ce_vocabulary_blocks_give_the_same_numbers(case):
    check_lce_case(case, vocab_block=4, grad_block_bytes=200)


def test_linear_ce_never_materialises_the_logits():
    rng = np.random.default_rng(4)
    n, d, v = 256, 8, 20000
    x = {"hidden": rng.standard_normal((n, d)), "lm_head": rng.standard_normal((v, d)), "target": rng.integers(0, v, n)}
    logits_bytes = n * v * 8
    tracemalloc.start()
    r = linear_ce.evaluate(x, {}, block_bytes=1 << 20)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < logits_bytes / 8, f"peak {peak} bytes; the logits would be {logits_bytes}"
    z = x["hidden"] @ x["lm_head"].T
    ref = np.mean(np.log(np.exp(z - z.max(1, keepdims=True)).sum(1)) + z.max(1) - z[np.arange(n), x["target"]])
    assert r.loss == pytest.approx(ref, rel=1e-12)


def test_linear_ce_ignore_index_with_probabilities_is_refused():
    case = next(c for c in LCE_CASES if c["name"] == "probs-mean")
    x, params, _ = lce_inputs(case)
    with pytest.raises(InvalidInput) as e:
        linear_ce.evaluate(x, {**params, "ignore_index": -100})
    assert e.value.name == "ignore_index"


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_ce_dim_last_is_the_lm_kernel(reduction):
    """``ce --dim -1`` on (B, T, V) logits takes the token kernels: the same numbers as ``lm``,
    and torch's (the fixture's) values and gradients."""
    import lossctl

    case = next(c for c in LM_CASES if c["name"] == "plain")
    x, _ = lm_inputs(case)
    r = lossctl.compute({"loss": "ce", "logits": x["logits"], "target": x["labels"], "dim": -1, "reduction": reduction})
    token = lm.evaluate(x, {"normalize": "tokens" if reduction == "mean" else "global:1"}, grad=True, per_sample=True)
    np.testing.assert_array_equal(r.per_sample, token.per_token)
    np.testing.assert_array_equal(r.grad["logits"], token.grad)
    if reduction == "mean":
        assert r.loss == token.loss
        np.testing.assert_allclose(r.loss, case["expect"]["loss"], rtol=RTOL)
        np.testing.assert_allclose(r.grad["logits"], case["expect"]["grad"], rtol=RTOL, atol=ATOL)
    elif reduction == "none":
        np.testing.assert_allclose(r.loss, case["expect"]["per_token"], rtol=RTOL, atol=ATOL)
