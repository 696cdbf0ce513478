"""Reductions are exact: for every loss that streams (derived from the registry), the reduced
loss is the same float64 bit for bit in memory and streamed with blocks of 1, 3, 7 and 4096
rows, and it equals the per-sample values summed exactly (mpmath) and rounded once —
divided, for 'mean', once by the weights summed the same way.

Inputs are the torch fixture cases tiled to 41 rows (tests/test_streaming.py), with the
per-sample values spread over many magnitudes so that a float sum's result would depend
on the order and the blocks.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from test_exactsum import mpmath_sum, same
from test_streaming import _cases, _streamable, _tile

import lossctl
from lossctl.core.prepare import prepare
from lossctl.core.registry import PREDICTION_KINDS

BLOCKS = (1, 3, 7, 4096)
# Another framework's convention is evaluated in memory (never streamed): the torch losses only.
STREAMABLE = [name for name in lossctl.registry_names() if lossctl.registry().get(name).batch_axis == 0
              and lossctl.registry().get(name).home == "torch"]


def test_the_streamable_losses_are_derived_from_the_registry():
    assert "ce" in STREAMABLE and "mse" in STREAMABLE and "ctc" not in STREAMABLE
    assert len(STREAMABLE) >= 20


def _spread(spec, call: dict, rng) -> dict:
    """Scale the rows of per-sample-linear inputs by powers of ten, so the per-sample values
    span many orders of magnitude (regression losses), keeping the other losses' inputs."""
    out = dict(call)
    if set(spec.kinds) == {"pred"} and "target" in call and spec.name in ("mse", "l1", "smooth-l1", "huber"):
        scale = 10.0 ** rng.integers(-8, 9, size=np.shape(call["pred"])[0])
        shape = (-1,) + (1,) * (np.ndim(call["pred"]) - 1)
        out["pred"] = np.asarray(call["pred"], dtype=np.float64) * scale.reshape(shape)
        out["target"] = np.asarray(call["target"], dtype=np.float64) * scale.reshape(shape)
    return out


def _denominator_weights(spec, call: dict):
    """The forward's own denominator weights (None when 'mean' divides by the count)."""
    keys = set(PREDICTION_KINDS) | set(spec.inputs)
    arrays = {k: v for k, v in call.items() if k in keys}
    params = {p.name: call.get(p.name, p.default) for p in spec.params}
    prep = prepare(spec, arrays, params, dtype=call.get("dtype", "float64"), dim=call.get("dim"))
    with np.errstate(all="ignore"):
        fwd = spec.forward(prep.native, prep.params)
    if fwd.mean_divisor is not None:
        pytest.fail(f"{spec.name}: a streamable loss with per-value divisors (not covered here)")
    return None if fwd.denominator is None else np.asarray(fwd.denominator, dtype=np.float64)


@pytest.mark.parametrize("name", STREAMABLE)
def test_reduced_loss_is_exact_and_independent_of_blocks(name):
    spec = lossctl.registry().get(name)
    rng = np.random.default_rng(sum(map(ord, name)) + 13)
    cases = [{k: v for k, v in c.items() if k != "_name"} for c in _cases(name)]
    cases = [c for c in cases if _streamable(spec, c)]
    assert cases, f"{name}: no streamable fixture case"
    checked = 0
    for case in cases[:4]:
        tiled = _spread(spec, _tile(spec, case, rng), rng)
        for reduction in [r for r in spec.reductions if r != "none"]:
            call = dict(tiled, reduction=reduction)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ref = lossctl.compute(dict(call), grad=False, stream=False)
                values = np.asarray(ref.per_sample, dtype=np.float64).reshape(-1)
                total = mpmath_sum(values)
                if reduction == "sum":
                    expected = total
                elif reduction == "batchmean":
                    expected = float(np.float64(total) / np.float64(len(tiled[spec_kind(spec, call)])))
                else:
                    weights = _denominator_weights(spec, call)
                    denom = float(values.size) if weights is None else mpmath_sum(weights)
                    assert same(ref.denominator, denom), (name, reduction, ref.denominator, denom)
                    with np.errstate(all="ignore"):
                        expected = float(np.float64(total) / np.float64(denom))
                assert same(ref.loss, expected), (name, reduction, "in memory", ref.loss, expected)
                for rows in BLOCKS:
                    for keep in (True, False):
                        got = lossctl.compute(dict(call), grad=False, stream=True, block_rows=rows, keep_arrays=keep)
                        assert same(got.loss, ref.loss), (name, reduction, rows, keep, got.loss, ref.loss)
                        assert same(got.denominator, ref.denominator)
            checked += 1
    assert checked


def spec_kind(spec, call: dict) -> str:
    return next(k for k in spec.prediction_kinds if call.get(k) is not None)


def test_a_float_sum_would_depend_on_the_blocks_here():
    """The inputs above are not a soft test: for mse with spread rows, a float sum over blocks
    changes with the block size, while lossctl's does not."""
    rng = np.random.default_rng(5)
    pred = rng.standard_normal((41, 3)) * 10.0 ** rng.integers(-8, 9, size=(41, 1))
    target = np.zeros_like(pred)
    call = {"loss": "mse", "pred": pred, "target": target, "reduction": "sum"}
    values = lossctl.compute(dict(call, reduction="none"), grad=False, stream=False).loss.reshape(-1)
    naive = {float(np.sum([np.sum(values[i:i + 3 * rows]) for i in range(0, values.size, 3 * rows)]))
             for rows in BLOCKS}
    naive |= {float(sum(values.tolist())), float(sum(values[::-1].tolist()))}
    assert len(naive) > 1
    got = {lossctl.compute(dict(call), grad=False, stream=True, block_rows=rows).loss for rows in BLOCKS}
    assert got == {mpmath_sum(values)}


@pytest.mark.parametrize("name", ["ce", "mse", "bce-logits"])
def test_float32_compute_rounds_the_exact_sum_once_to_float64_then_to_float32(name, rng):
    spec = lossctl.registry().get(name)
    case = next(c for c in ({k: v for k, v in c.items() if k != "_name"} for c in _cases(name))
                if _streamable(spec, c))
    call = dict(_tile(spec, case, rng), dtype="float32", reduction="sum")
    ref = lossctl.compute(dict(call), grad=False, stream=False)
    values = np.asarray(ref.per_sample, dtype=np.float64).reshape(-1)
    assert ref.loss == float(np.float32(mpmath_sum(values)))
    for rows in BLOCKS:
        assert lossctl.compute(dict(call), grad=False, stream=True, block_rows=rows).loss == ref.loss


def test_stream_min_bytes_applies_below_one_mebibyte(monkeypatch):
    """LOSSCTL_STREAM_MIN_BYTES is honoured at any size (it was ignored below 1 MiB)."""
    from lossctl.core import stream

    seen = []
    real = stream.run

    def spy(*args, **kwargs):
        result = real(*args, **kwargs)
        seen.append(result is not None)
        return result

    monkeypatch.setattr(stream, "run", spy)
    rng = np.random.default_rng(0)
    call = {"loss": "ce", "logits": rng.standard_normal((300, 5)), "target": rng.integers(0, 5, 300)}
    assert call["logits"].nbytes < 1 << 20
    monkeypatch.setenv("LOSSCTL_STREAM_MIN_BYTES", "1000")
    lossctl.compute(dict(call), grad=True)
    assert seen == [True]
    monkeypatch.setenv("LOSSCTL_STREAM_MIN_BYTES", str(1 << 30))
    lossctl.compute(dict(call), grad=True)
    assert seen == [True, False]
    monkeypatch.delenv("LOSSCTL_STREAM_MIN_BYTES")
    lossctl.compute(dict(call), grad=True)  # default 16 MiB: not even planned
    assert seen == [True, False]


def test_ce_without_per_sample_output_is_the_same_exact_sum(rng):
    """The mean or sum alone (no per-sample output, the CLI's default) streams through the fused
    ce kernel; it must give the per-sample values' exact sum all the same, for any block size."""
    differ = []
    for trial in range(60):
        n, c = int(rng.integers(2, 60)), int(rng.integers(2, 50))
        x = rng.standard_normal((n, c)) * rng.choice([0.1, 3.0, 30.0])
        call = {"loss": "ce", "logits": x, "target": rng.integers(0, c, n), "reduction": "sum"}
        ref = lossctl.compute(dict(call), grad=False, stream=False)
        assert same(ref.loss, mpmath_sum(ref.per_sample))
        for rows in (1, 7, 4096):
            got = lossctl.compute(dict(call), grad=False, stream=True, keep_arrays=False, block_rows=rows).loss
            if not same(got, ref.loss):
                differ.append((trial, rows, got, ref.loss))
    assert not differ


def test_merge_into_adds_in_place_what_merge_gives():
    from lossctl.core import exactsum

    rng = np.random.default_rng(7)
    parts = [rng.standard_normal(1000) * 10.0 ** rng.integers(-300, 300, 1000) for _ in range(5)]
    parts.append(np.array([-0.0, np.inf]))
    state = exactsum.zeros()
    for p in parts:
        assert exactsum.merge_into(state, exactsum.accumulate(p)) is state
    merged = exactsum.merge(*[exactsum.accumulate(p) for p in parts])
    assert exactsum.exact_value(state) == exactsum.exact_value(merged)
    np.testing.assert_array_equal(state[exactsum.NBINS:], merged[exactsum.NBINS:])
    finite = exactsum.zeros()
    for p in parts[:-1]:
        exactsum.merge_into(finite, exactsum.accumulate(p))
    assert exactsum.finalize(finite) == exactsum.exact_sum(np.concatenate(parts[:-1]))
