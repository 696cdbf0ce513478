"""Common checks: every property every loss must have, run for every registered loss.

Modelled on scikit-learn's ``utils/estimator_checks.py``: each ``check_*`` function
takes one loss call and asserts one property; :func:`common_cases` pairs every check
with every registered loss and every prediction kind it accepts, so a new loss is
checked the moment it is registered. The call is the loss's example from the oracle
table (tests/torch_reference.py ``ORACLES``); a loss opts out of a check there, in
its ``opt_out`` mapping (``"check"`` or ``"check/kind"`` -> the reason), and
:func:`test_opt_outs_name_a_check_and_give_a_reason` keeps those honest.
"""

from __future__ import annotations

import json
import zlib
from typing import Callable, Iterable, Mapping

import numpy as np
import pytest

import lossctl
from finite_differences import central_difference
from lossctl.core import stream
from lossctl.core.registry import PREDICTION_KINDS, LossSpec
from torch_reference import ORACLES, Oracle

REDUCTIONS = ("mean", "sum", "none")
STREAM_ROWS = 41  # tiled batch: blocks of 3 rows leave an uneven last block
STREAM_BLOCK_ROWS = 3


def example(spec: LossSpec, kind: str, oracles: Mapping[str, Oracle] = ORACLES) -> dict:
    """The loss's example call with prediction ``kind`` (the same data on every run)."""
    rng = np.random.default_rng(zlib.crc32(f"{spec.name}/{kind}".encode()))
    call = oracles[spec.name].example(rng, kind)
    assert kind in call, f"{spec.name}: the example for kind {kind!r} gives {sorted(call)}"
    return {"loss": spec.name, **call}


def _with(call: dict, **more) -> dict:
    return {**call, **more}


def _close(actual, expected, what: str, rtol: float, atol: float = 0.0) -> None:
    a, e = np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    assert a.shape == e.shape, f"{what}: shape {a.shape} != {e.shape}"
    np.testing.assert_allclose(a, e, rtol=rtol, atol=atol, err_msg=what)


# --------------------------------------------------------------------------- the checks


def check_central_differences(spec: LossSpec, call: dict) -> None:
    """Every gradient of the mean and of the sum equals central differences ('none' differentiates
    the sum: check_reductions)."""
    for reduction in ("mean", "sum"):
        c = _with(call, reduction=reduction)
        r = lossctl.compute(c)
        assert r.grad, "a gradient"
        for name, g in r.grad.items():
            assert np.shape(g) == np.shape(c[name]), f"grad {name}: shape {np.shape(g)} != input {np.shape(c[name])}"
            _close(g, central_difference(c, name), f"{reduction}: d/d{name}", rtol=1e-6, atol=1e-8)


def check_reductions(spec: LossSpec, call: dict) -> None:
    """'sum' adds the 'none' values; 'none' differentiates the sum; each reduction reports the same values."""
    none = lossctl.compute(_with(call, reduction="none"))
    total = lossctl.compute(_with(call, reduction="sum"))
    mean = lossctl.compute(_with(call, reduction="mean"))
    values = np.asarray(none.loss)
    _close(none.per_sample, values, "per_sample of 'none'", rtol=0)
    _close(mean.per_sample, values, "per_sample of 'mean'", rtol=0)
    assert total.loss == pytest.approx(values.sum(), rel=1e-13)
    assert sorted(none.grad) == sorted(total.grad) == sorted(mean.grad)
    for name in none.grad:
        _close(none.grad[name], total.grad[name], f"d/d{name}: 'none' vs 'sum'", rtol=1e-15)


def check_mean_is_sum_over_denominator(spec: LossSpec, call: dict) -> None:
    """'mean' is the sum divided by the reported denominator, value and gradient."""
    total = lossctl.compute(_with(call, reduction="sum"))
    mean = lossctl.compute(_with(call, reduction="mean"))
    assert mean.denominator > 0
    assert mean.loss == pytest.approx(total.loss / mean.denominator, rel=1e-13)
    for name in total.grad:
        _close(mean.grad[name] * mean.denominator, total.grad[name], f"d/d{name}", rtol=1e-13, atol=1e-15)


def check_explain(spec: LossSpec, call: dict) -> None:
    """--explain shows each sample's loss as the per-sample values, and ends with the loss."""
    for reduction in [r for r in REDUCTIONS if r in spec.reductions]:
        r = lossctl.compute(_with(call, reduction=reduction), explain=True, rows=100)
        assert r.steps, "a derivation"
        per_sample_steps = [s for s in r.steps if s.label == "loss"]
        assert per_sample_steps, f"{reduction}: a per-sample 'loss' step in {[s.label for s in r.steps]}"
        shown = np.ravel(per_sample_steps[-1].value)
        assert shown.size == r.shown_rows > 0
        _close(shown, np.ravel(r.per_sample)[: shown.size], f"{reduction}: the 'loss' step", rtol=1e-13)
        if reduction != "none":
            assert r.steps[-1].value == pytest.approx(r.loss, rel=1e-13), r.steps[-1]


def check_shapes(spec: LossSpec, call: dict) -> None:
    """A reduced loss is a scalar; 'none' has the per-sample shape; one gradient per differentiable input."""
    r = lossctl.compute(call)
    assert np.ndim(r.loss) == 0 and isinstance(r.loss, float)
    none = lossctl.compute(_with(call, reduction="none"))
    assert np.shape(none.loss) == np.shape(none.per_sample) == np.shape(r.per_sample)
    differentiable = [k for k in (*spec.kinds, *spec.extra_inputs) if k in call]
    assert sorted(r.grad) == sorted(differentiable)
    for name, g in r.grad.items():
        assert isinstance(g, np.ndarray) and g.shape == np.shape(call[name]) and g.dtype == np.float64, name


def check_float32(spec: LossSpec, call: dict) -> None:
    """dtype float32 gives float32 results close to float64's."""
    r64 = lossctl.compute(call)
    r32 = lossctl.compute(_with(call, dtype="float32"))
    assert r32.dtype == "float32" and np.asarray(r32.per_sample).dtype == np.float32
    assert r32.loss == pytest.approx(r64.loss, rel=2e-5, abs=1e-6)
    for name, g in r64.grad.items():
        assert r32.grad[name].dtype == np.float32, name
        scale = float(np.max(np.abs(g), initial=0.0))
        _close(r32.grad[name], g, f"d/d{name}", rtol=1e-4, atol=1e-5 * max(scale, 1.0))


def check_permutation(spec: LossSpec, call: dict) -> None:
    """Reordering the samples reorders the per-sample values and the gradient rows, nothing else."""
    layout = _layout(spec, call)
    assert layout is not None and layout.n >= 2, "a batch of at least two samples"
    perm = np.roll(np.arange(layout.n), 1)
    moved = dict(call)
    for name in (*layout.sliced, *layout.params_sliced):
        moved[name] = np.take(np.asarray(call[name]), perm, axis=spec.batch_axis)
    a = lossctl.compute(_with(call, reduction="none"))
    b = lossctl.compute(_with(moved, reduction="none"))
    _close(b.loss, np.take(np.asarray(a.loss), perm, axis=0), "per-sample values", rtol=1e-14)
    for name in a.grad:
        _close(b.grad[name], np.take(a.grad[name], perm, axis=spec.batch_axis) if name in layout.sliced
               else a.grad[name], f"d/d{name}", rtol=1e-12, atol=1e-15)


def check_streaming(spec: LossSpec, call: dict) -> None:
    """Blockwise (streamed, two threads) evaluation equals in-memory evaluation, for every reduction;
    a loss whose samples do not lie along axis 0 falls back to in-memory."""
    if _layout(spec, call) is not None:
        call = _tiled(spec, call)
    for reduction in spec.reductions:
        for grad in (True, False):
            c = _with(call, reduction=reduction)
            ref = lossctl.compute(dict(c), grad=grad, stream=False)
            got = lossctl.compute(dict(c), grad=grad, stream=True, block_rows=STREAM_BLOCK_ROWS)
            _close(got.loss, ref.loss, f"{reduction}: loss", rtol=1e-12, atol=1e-15)
            _close(got.per_sample, ref.per_sample, f"{reduction}: per_sample", rtol=1e-12, atol=1e-15)
            assert sorted(got.grad) == sorted(ref.grad)
            for name in ref.grad:
                _close(got.grad[name], ref.grad[name], f"{reduction}: d/d{name}", rtol=1e-12, atol=1e-15)


def check_cli(spec: LossSpec, call: dict) -> None:
    """``lossctl NAME --input ... --json --grad`` computes what the library computes, and
    ``lossctl list``'s rows list the loss with its inputs."""
    from lossctl.cli.app import main

    want = lossctl.compute(call)
    code, out, err = _run(main, cli_argv(spec, call) + ["--json", "--grad"])
    assert code == 0, err
    doc = json.loads(out)
    assert doc["loss_name"] == spec.name
    assert doc["loss"] == pytest.approx(want.loss, rel=1e-12)
    for name, g in want.grad.items():
        _close(doc["grad"][name], g, f"d/d{name}", rtol=1e-12)
    from lossctl.cli.list import registry_rows  # the rows `lossctl list` prints (tests/test_cli.py runs it)

    rows = {row["name"]: row for row in registry_rows()}
    assert spec.name in rows and rows[spec.name]["inputs"] == list(spec.inputs)


CHECKS: dict[str, Callable[[LossSpec, dict], None]] = {
    name[len("check_"):]: fn for name, fn in dict(globals()).items() if name.startswith("check_") and callable(fn)
}


# --------------------------------------------------------------------------- helpers


def _layout(spec: LossSpec, call: dict) -> stream.Layout | None:
    """How the streaming engine splits the call into blocks of samples, or None if it does not."""
    keys = set(PREDICTION_KINDS) | set(spec.inputs)
    arrays = {k: np.asarray(v) for k, v in call.items() if k in keys}
    params = {p.name: call.get(p.name, p.default) for p in spec.params}
    try:
        return stream.plan(spec, arrays, params, dim=call.get("dim"), grad=True)
    except Exception:
        return None


def _tiled(spec: LossSpec, call: dict) -> dict:
    """The call with its samples repeated to STREAM_ROWS and the copies made unequal."""
    layout = _layout(spec, call)
    reps = -(-STREAM_ROWS // layout.n)
    rng = np.random.default_rng(1)
    out = dict(call)
    for name in (*layout.sliced, *layout.params_sliced):
        a = np.concatenate([np.asarray(call[name])] * reps, axis=0)[:STREAM_ROWS]
        if name in (*spec.kinds, *spec.extra_inputs) and a.dtype.kind == "f":
            u = rng.uniform(-1, 1, size=a.shape)
            a = np.clip(a + 0.5 * u * a * (1 - a), 1e-3, 1 - 1e-3) if name == "probs" else a * (1 + 0.05 * u)
        out[name] = a
    return out


def _json(value) -> str:
    return json.dumps(np.asarray(value).tolist())


def cli_argv(spec: LossSpec, call: dict) -> list[str]:
    """The command line of a call: inputs as JSON literals, parameters in their CLI spelling."""
    argv = [spec.name]
    for key, value in call.items():
        if key == "loss":
            continue
        if key in spec.param_names:
            p = spec.param(key)
            if p.kind == "bool":
                if bool(value) != bool(p.default):
                    option = "--" + p.name.replace("_", "-")
                    argv.append(option if value else f"--no-{option[2:]}")
                continue
            argv += ["--" + p.name.replace("_", "-"), _json(value) if p.kind == "array" else str(value)]
        else:
            argv += ["--" + key.replace("_", "-"), value if isinstance(value, str) else _json(value)]
    return argv


def _run(main, argv: list[str]) -> tuple[int, str, str]:
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def opted_out(oracle: Oracle, check: str, kind: str) -> bool:
    return f"{check}/{kind}" in oracle.opt_out or check in oracle.opt_out


def common_cases(specs: Iterable[LossSpec], oracles: Mapping[str, Oracle] = ORACLES) -> list[tuple[str, str, str]]:
    """Every (check, loss, kind) to run: each check × each loss × each prediction kind it accepts,
    without the ones the loss's oracle entry opts out of."""
    return [(check, spec.name, kind) for spec in specs for kind in spec.kinds for check in CHECKS
            if not opted_out(oracles[spec.name], check, kind)]


# --------------------------------------------------------------------------- the tests


@pytest.mark.parametrize("check, name, kind", [pytest.param(*c, id="-".join(c)) for c in common_cases(
    [s for s in lossctl.registry().specs if s.name in ORACLES])])
def test_common(check, name, kind):
    spec = lossctl.registry().get(name)
    CHECKS[check](spec, example(spec, kind))


def test_every_registered_loss_has_an_oracle_entry():
    assert sorted(ORACLES) == sorted(lossctl.registry_names()), "add the loss to tests/torch_reference.py ORACLES"


@pytest.mark.parametrize("name", sorted(ORACLES))
def test_opt_outs_name_a_check_and_give_a_reason(name):
    spec = lossctl.registry().get(name)
    for key, reason in ORACLES[name].opt_out.items():
        check, _, kind = key.partition("/")
        assert check in CHECKS, f"{name}: opt-out of unknown check {check!r}"
        assert not kind or kind in spec.kinds, f"{name}: opt-out for kind {kind!r}, which the loss does not take"
        assert isinstance(reason, str) and reason.strip(), f"{name}: opt-out of {key!r} must say why"


def test_every_check_runs_for_every_loss_it_does_not_opt_out_of():
    """No loss silently misses a check: the cases are exactly the full product minus the declared opt-outs."""
    cases = set(common_cases(lossctl.registry().specs))
    for spec in lossctl.registry().specs:
        for kind in spec.kinds:
            for check in CHECKS:
                assert ((check, spec.name, kind) in cases) != opted_out(ORACLES[spec.name], check, kind)
