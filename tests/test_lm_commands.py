"""``lm`` and ``linear-ce`` as calls like every loss's: their options come from their key
declarations, suites take their keys (``labels`` and its alias ``target``), ``record`` and
``gradcheck`` cover them, ``-o`` streams the gradient, NaN/inf logits draw the input warning.
Values are compared with torch (float64, autograd) live."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "lm" / "batch.safetensors"


def _batch(seed: int, b: int = 2, t: int = 5, v: int = 7):
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((b, t, v)) * 2
    labels = rng.integers(0, v, (b, t))
    labels[0, -1] = -100
    return logits, labels


def _torch():
    """The oracle, torch and torch.nn.functional, imported by the tests that compare with it (the
    others run where torch is not installed)."""
    import torch
    import torch.nn.functional as F

    return torch, F


def _torch_lm(logits: np.ndarray, labels: np.ndarray, shift: bool = False):
    """F.cross_entropy on the flattened, shifted batch (float64) and its autograd gradient."""
    torch, F = _torch()
    x = torch.tensor(logits, dtype=torch.float64, requires_grad=True)
    y = torch.tensor(labels)
    z, t = (x[..., :-1, :], y[..., 1:]) if shift else (x, y)
    loss = F.cross_entropy(z.reshape(-1, z.shape[-1]), t.reshape(-1))
    loss.backward()
    per_token = F.cross_entropy(z.reshape(-1, z.shape[-1]), t.reshape(-1), reduction="none").reshape(t.shape)
    return loss.item(), per_token.detach().numpy(), x.grad.numpy()


# -- options ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["lm", "linear-ce"])
def test_command_options_are_the_spec_keys(name):
    from lossctl.cli.options import spec_options
    from lossctl.core.call import BY_NAME
    from lossctl.tokens import command_spec

    spec = command_spec(name)
    names = [o.name for o in spec_options(spec)]
    own = list(spec.kinds) + list(spec.extra_inputs) + (["target"] if spec.target != "none" else []) \
        + list(spec.aux_inputs) + [p.name for p in spec.params]
    shared = [k for k in names if k in BY_NAME]
    assert sorted(names) == sorted(set(own) | set(shared)) and len(names) == len(set(names))
    assert sorted(shared) == sorted(spec.command_keys)  # exactly the shared keys the command declares
    for absent in ("convention", "sample_weight", "l2", "params", "top", "probs"):
        assert absent not in names


def test_lm_help_lists_the_label_aliases(run_cli):
    r = run_cli(["lm", "--help"])
    assert r.code == 0
    assert "-t, --labels, --target" in r.stdout and "--attention-mask" in r.stdout and "--convention" not in r.stdout


# -- suites ----------------------------------------------------------------------------------------


def test_suite_takes_labels_and_every_lm_key(run_cli, tmp_path):
    logits, labels = _batch(1)
    mask = np.ones_like(labels)
    mask[1, 0] = 0
    loss, _, grad = _torch_lm(logits, np.where(mask == 1, labels, -100), shift=True)
    np.save(tmp_path / "logits.npy", logits)
    suite = tmp_path / "s.yaml"
    suite.write_text(textwrap.dedent(f"""\
        cases:
          - name: labels-key
            loss: lm
            logits: logits.npy
            labels: {json.dumps(labels.tolist())}
            attention_mask: {json.dumps(mask.tolist())}
            shift: true
            ignore_index: -100
            normalize: tokens
            bytes: [30, 20]
            dtype: float64
            rtol: 1.0e-12
            expect: {{loss: {loss!r}, grad: {{logits: {json.dumps(grad.tolist())}}}}}
        """))
    r = run_cli(["check", str(suite)])
    assert r.code == 0, r.stdout + r.stderr
    assert "PASS labels-key" in r.stdout


def test_suite_refuses_labels_and_target_together_and_keys_lm_lacks(run_cli, tmp_path):
    suite = tmp_path / "s.yaml"
    suite.write_text(textwrap.dedent("""\
        cases:
          - loss: lm
            logits: [[[1.0, 2.0]]]
            labels: [[0]]
            target: [[1]]
            expect: 1.0
          - loss: lm
            logits: [[[1.0, 2.0]]]
            labels: [[0]]
            convention: keras
            expect: 1.0
        """))
    r = run_cli(["check", str(suite)])
    assert r.code == 3
    assert "'labels' and 'target' are the same input" in r.stderr
    assert "convention" in r.stderr


def test_suite_defaults_target_serves_lm_labels_and_linear_ce_target(run_cli):
    r = run_cli(["check", str(ROOT / "examples" / "lm" / "lm.yaml")])
    assert r.code == 0, r.stdout + r.stderr


# -- record and gradcheck --------------------------------------------------------------------------


def test_record_lm_then_check_passes_and_pins_torch(run_cli, tmp_path):
    logits, labels = _batch(2)
    np.save(tmp_path / "logits.npy", logits)
    np.save(tmp_path / "labels.npy", labels)
    to = tmp_path / "suite" / "rec.yaml"
    r = run_cli(["record", "lm", "--logits", tmp_path / "logits.npy", "--labels", tmp_path / "labels.npy", "--shift",
                 "--grad", "--to", to])
    assert r.code == 0, r.stderr
    text = to.read_text()
    assert "labels: ../labels.npy" in text and "shift: true" in text
    import yaml

    case = yaml.safe_load(text)["cases"][0]
    loss, _, grad = _torch_lm(logits, labels, shift=True)
    assert case["expect"]["loss"] == pytest.approx(loss, rel=1e-12)
    np.testing.assert_allclose(case["expect"]["grad"]["logits"], grad, rtol=1e-10, atol=1e-15)
    r = run_cli(["check", to])
    assert r.code == 0, r.stdout + r.stderr


def test_record_linear_ce_then_check_passes(run_cli, tmp_path):
    torch, F = _torch()
    h = [[1.0, -0.5], [0.2, 0.3], [-1.0, 2.0]]
    w = [[0.5, 1.0], [-1.0, 0.2], [0.3, -0.4]]
    to = tmp_path / "rec.yaml"
    r = run_cli(["record", "linear-ce", "--hidden", json.dumps(h), "--lm-head", json.dumps(w), "-t", "[0, 2, -100]",
                 "--label-smoothing", "0.1", "--reduction", "sum", "--to", to])
    assert r.code == 0, r.stderr
    want = F.linear_cross_entropy(torch.tensor(h, dtype=torch.float64), torch.tensor(w, dtype=torch.float64),
                                  torch.tensor([0, 2, -100]), label_smoothing=0.1, reduction="sum").item()
    import yaml

    case = yaml.safe_load(to.read_text())["cases"][0]
    assert case["loss"] == "linear-ce" and case["reduction"] == "sum"
    assert case["expect"] == pytest.approx(want, rel=1e-12)
    assert run_cli(["check", to]).code == 0


@pytest.mark.parametrize("extra", [[], ["--shift", "--normalize", "sequences"], ["--normalize", "global:20"]])
def test_gradcheck_lm(run_cli, extra):
    logits, labels = _batch(3, t=4, v=5)
    r = run_cli(["gradcheck", "lm", "--logits", json.dumps(logits.tolist()), "--labels", json.dumps(labels.tolist()),
                 "--json", *extra])
    assert r.code == 0, r.stdout + r.stderr
    doc = json.loads(r.stdout)
    assert doc["passed"] and doc["inputs"]["logits"]["checked"] == logits.size
    assert doc["max_error"] < 1e-8


def test_gradcheck_linear_ce_checks_every_input(run_cli):
    r = run_cli(["gradcheck", "linear-ce", "--hidden", "[[1.0, -0.5], [0.2, 0.3], [-1.0, 2.0]]",
                 "--lm-head", "[[0.5, 1.0], [-1.0, 0.2], [0.3, -0.4]]", "--lm-head-bias", "[0.1, 0.0, -0.2]",
                 "-t", "[0, 2, -100]", "--label-smoothing", "0.1", "--json"])
    assert r.code == 0, r.stdout + r.stderr
    doc = json.loads(r.stdout)
    assert set(doc["inputs"]) == {"hidden", "lm_head", "lm_head_bias"} and doc["max_error"] < 1e-8


def test_gradcheck_catches_a_wrong_gradient(run_cli, monkeypatch):
    from lossctl.losses import lm

    real = lm.evaluate

    def broken(*args, **kwargs):
        r = real(*args, **kwargs)
        if r.grad is not None:
            r.grad = r.grad * 1.01
        return r

    monkeypatch.setattr(lm, "evaluate", broken)
    r = run_cli(["gradcheck", "lm", "--logits", "[[1.0, 2.0, 0.5], [0.1, 0.2, 0.3]]", "--labels", "[0, 2]"])
    assert r.code == 1 and "FAIL gradcheck lm" in r.stdout


# -- -o streams the gradient -----------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".npz", ".safetensors"])
def test_lm_output_streams_gradient_equal_to_torch(run_cli, tmp_path, suffix):
    logits, labels = _batch(4, b=3, t=6, v=11)
    out = tmp_path / f"o{suffix}"
    r = run_cli(["lm", "--logits", json.dumps(logits.tolist()), "--labels", json.dumps(labels.tolist()), "--shift",
                 "--grad", "-o", out])
    assert r.code == 0, r.stderr
    if suffix == ".npz":
        arrays = dict(np.load(out))
    else:
        from lossctl.io.readers import read_array
        from lossctl.io.sources import parse_source

        arrays = {k: np.asarray(read_array(parse_source(f"{out}:{k}"), k)) for k in ("per_sample", "grad_logits")}
    loss, per_token, grad = _torch_lm(logits, labels, shift=True)
    assert float(r.stdout) == pytest.approx(loss, rel=1e-12)
    np.testing.assert_allclose(arrays["per_sample"], per_token, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(arrays["grad_logits"], grad, rtol=1e-10, atol=1e-15)


def test_lm_output_gradient_is_never_whole_in_memory(tmp_path):
    """An 8k-token, 8k-vocabulary batch: the float64 gradient is 512 MiB; the process stays far below."""
    b, t, v = 2, 4096, 8192
    logits = np.lib.format.open_memmap(tmp_path / "logits.npy", mode="w+", dtype=np.float16, shape=(b, t, v))
    rng = np.random.default_rng(5)
    for i in range(b):
        logits[i] = rng.standard_normal((t, v), dtype=np.float32).astype(np.float16)
    logits.flush()
    del logits
    np.save(tmp_path / "labels.npy", rng.integers(0, v, (b, t)))
    grad_bytes = b * t * v * 8
    code = (
        "import sys\n"
        "from lossctl.cli.app import main\n"
        "rc = main(sys.argv[1:])\n"
        # VmHWM: this process image's peak (ru_maxrss would include the parent's, inherited across exec)
        "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]\n"
        "print(int(hwm) * 1024, file=sys.stderr)\n"
        "sys.exit(rc)\n")
    out = tmp_path / "o.npz"
    p = subprocess.run([sys.executable, "-c", code, "lm", "--logits", str(tmp_path / "logits.npy"),
                        "--labels", str(tmp_path / "labels.npy"), "--grad", "-o", str(out)],
                       capture_output=True, text=True, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    peak = int(p.stderr.strip().splitlines()[-1])
    assert peak < grad_bytes / 3, f"peak RSS {peak / 2**20:.0f} MiB for a {grad_bytes / 2**20:.0f} MiB gradient"
    with np.load(out, mmap_mode="r") as z:
        assert z["grad_logits"].shape == (b, t, v)
        # spot check one row against its softmax − one-hot / n
        row = np.load(tmp_path / "logits.npy", mmap_mode="r")[1, 77].astype(np.float64)
        y = int(np.load(tmp_path / "labels.npy")[1, 77])
        want = np.exp(row - row.max()) / np.exp(row - row.max()).sum()
        want[y] -= 1
        np.testing.assert_allclose(z["grad_logits"][1, 77], want / (b * t), rtol=1e-9, atol=1e-18)


# -- NaN / inf warnings ----------------------------------------------------------------------------


def test_lm_warns_about_nan_and_inf_logits_like_ce(run_cli):
    torch, F = _torch()
    logits = [[[1.0, float("nan"), 0.5], [0.1, 0.2, float("inf")]], [[1.0, -2.0, 0.5], [3.1, 0.2, 0.3]]]
    text = json.dumps(logits).replace("NaN", "NaN").replace("Infinity", "Infinity")
    r = run_cli(["lm", "--logits", text, "--labels", "[[0, 2], [1, -100]]"])
    assert r.code == 0
    assert "1 NaN and 1 infinite values (the first at index [0, 0, 1]: nan)" in r.stderr
    want = F.cross_entropy(torch.tensor(logits, dtype=torch.float64).reshape(-1, 3), torch.tensor([0, 2, 1, -100]))
    assert np.isnan(float(r.stdout)) and np.isnan(want.item())
    r = run_cli(["lm", "--logits", text, "--labels", "[[0, 2], [1, -100]]", "--strict"])
    assert r.code == 3 and "refused by --strict" in r.stderr


def test_lm_finite_logits_draw_no_warning(run_cli):
    r = run_cli(["lm", "--logits", "[[1.0, 2.0, 0.5], [0.1, 0.2, 0.3]]", "--labels", "[0, 2]", "--strict"])
    assert r.code == 0 and r.stderr == ""


def test_linear_ce_warns_about_nan_inputs(run_cli):
    torch, F = _torch()
    h, w = [[1.0, float("nan")], [0.5, 0.5]], [[0.5, 1.0], [-1.0, 0.2]]
    argv = ["linear-ce", "--hidden", json.dumps(h).replace("NaN", "NaN"), "--lm-head", json.dumps(w), "-t", "[0, 1]"]
    r = run_cli(argv)
    want = F.linear_cross_entropy(torch.tensor(h, dtype=torch.float64), torch.tensor(w, dtype=torch.float64),
                                  torch.tensor([0, 1]))
    assert r.code == 0 and np.isnan(float(r.stdout)) and np.isnan(want.item())
    assert "1 NaN value (the first at index [0, 1]: nan)" in r.stderr
    r = run_cli(argv + ["--strict"])
    assert r.code == 3 and "refused by --strict" in r.stderr


def test_lm_takes_integer_literal_logits_as_ce_does(run_cli):
    torch, F = _torch()
    r = run_cli(["lm", "--logits", "[[1, 2], [3, 4]]", "--labels", "[0, 1]"])
    ce = run_cli(["ce", "--logits", "[[1, 2], [3, 4]]", "--target", "[0, 1]", "--dim", "-1"])
    assert r.code == 0 and float(r.stdout) == float(ce.stdout)
    want = F.cross_entropy(torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=torch.float64), torch.tensor([0, 1])).item()
    assert float(r.stdout) == pytest.approx(want, rel=1e-15)


def test_suite_lm_failure_and_update(run_cli, tmp_path):
    logits, labels = _batch(6)
    loss, per_token, _ = _torch_lm(logits, labels, shift=True)
    suite = tmp_path / "s.yaml"
    suite.write_text(textwrap.dedent(f"""\
        cases:
          - name: stale
            loss: lm
            logits: {json.dumps(logits.tolist())}
            target: {json.dumps(labels.tolist())}
            shift: true
            expect: {{loss: 3.5, per_sample: [[0.0]]}}
        """))
    r = run_cli(["check", str(suite)])
    assert r.code == 1 and "FAIL stale" in r.stdout + r.stderr
    r = run_cli(["check", str(suite), "--update"])
    assert r.code == 0, r.stdout + r.stderr
    import yaml

    expect = yaml.safe_load(suite.read_text())["cases"][0]["expect"]
    assert expect["loss"] == pytest.approx(loss, rel=1e-12)
    np.testing.assert_allclose(expect["per_sample"], per_token, rtol=1e-12, atol=1e-15)
    assert run_cli(["check", str(suite)]).code == 0
