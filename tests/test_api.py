"""The typed Python API: names, py.typed, errors in Python terms, sources as strings, one pass
for the loss and its per-sample values, docs/api.md current, and mypy over a client file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import lossctl

ROOT = Path(__file__).resolve().parents[1]
LOGITS = [[10.0, 0.0, -10.0], [8.0, 8.0, 8.0]]


def test_dir_shows_only_the_public_names():
    assert dir(lossctl) == sorted(lossctl.__all__)
    assert {"compute", "ExitCode", "Result", "registry"} <= set(dir(lossctl))
    assert not any(n.startswith("_") and n != "__version__" for n in dir(lossctl))


def test_exit_code_is_public_and_matches_the_errors():
    assert lossctl.ExitCode.USAGE == lossctl.UsageError.exit_code == 2
    assert lossctl.ExitCode.INPUT == lossctl.InputError.exit_code == 3


def test_py_typed_ships_with_the_package():
    assert (ROOT / "lossctl" / "py.typed").exists()
    assert 'lossctl = ["py.typed"]' in (ROOT / "pyproject.toml").read_text()


@pytest.mark.parametrize("call, message", [
    ({"loss": "ce", "logit": LOGITS, "target": [0, 2]},
     "unknown input 'logit'; did you mean 'logits'? inputs: logits, probs, log_probs, target"),
    ({"loss": "ce", "logits": LOGITS, "target": [0, 2], "label_smooth": 0.1},
     "unknown parameter 'label_smooth'; did you mean 'label_smoothing'?"),
    ({"loss": "ce", "logits": LOGITS, "target": [0, 2], "reduction": "avg"}, "reduction: ce takes one of"),
])
def test_errors_speak_python(call, message):
    with pytest.raises(lossctl.UsageError) as e:
        lossctl.compute(call)
    assert str(e.value).startswith(message) and "--" not in str(e.value)


def test_strings_are_sources_as_in_suites(tmp_path):
    np.save(tmp_path / "x.npy", np.array(LOGITS))
    np.savez(tmp_path / "b.npz", target=np.array([0, 2]))
    expected = lossctl.compute(loss="ce", logits=LOGITS, target=[0, 2]).loss
    assert lossctl.compute(loss="ce", logits=str(tmp_path / "x.npy"), target=f"{tmp_path / 'b.npz'}:target").loss == expected
    assert lossctl.compute({"loss": "ce", "logits": "[[10, 0, -10], [8, 8, 8]]", "target": "[0, 2]"}).loss == expected
    with pytest.raises(lossctl.InputError, match="^logits missing.npy: no such file"):
        lossctl.compute(loss="ce", logits="missing.npy", target=[0, 2])


def test_loss_and_per_sample_come_from_one_forward_pass_and_no_gradient(monkeypatch):
    import dataclasses

    from lossctl.losses import registry

    spec = registry().get("mse")
    calls = {"forward": 0, "backward": 0}

    def forward(x, p):
        calls["forward"] += 1
        return spec.forward(x, p)

    def backward(*a):
        calls["backward"] += 1
        return spec.backward(*a)

    counted = dataclasses.replace(spec, forward=forward, backward=backward)
    monkeypatch.setattr(registry(), "get", lambda name: counted)
    r = lossctl.compute(loss="mse", pred=[1.0, 2.0, 4.0], target=[1.0, 1.0, 1.0])
    assert calls == {"forward": 1, "backward": 0}
    assert r.grad == {} and list(r.per_sample) == [0.0, 1.0, 9.0] and r.loss == pytest.approx(10 / 3)


def test_api_page_is_current():
    p = subprocess.run([sys.executable, str(ROOT / "scripts" / "make_api_doc.py"), "--check"], capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    text = (ROOT / "docs" / "api.md").read_text()
    for name in lossctl.__all__:
        if name != "__version__":
            assert f"## `{name}`" in text


CLIENT = """\
import numpy as np
import lossctl

result: lossctl.Result = lossctl.compute({"loss": "ce", "logits": [[1.0, 2.0]], "target": [1]}, grad=True)
per_sample: np.ndarray = result.per_sample
names: list[str] = lossctl.registry_names()
code: int = lossctl.ExitCode.USAGE
try:
    lossctl.compute(loss="mse", pred="p.npy", target="t.npy")
except lossctl.UsageError as e:
    print(e.exit_code)
"""

WRONG = """\
import lossctl

name: str = lossctl.compute(loss="mse", pred=[1.0], target=[1.0])
lossctl.compute({"loss": "mse"}, grad="yes")
lossctl.registry_names(1)
"""


def _mypy(tmp_path, text: str):
    client = tmp_path / "client.py"
    client.write_text(text)
    return subprocess.run([sys.executable, "-m", "mypy", "--follow-imports=silent", "--no-incremental",
                           "--cache-dir", str(tmp_path / ".mypy"), str(client)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "MYPYPATH": str(ROOT)})


def test_mypy_checks_a_client(tmp_path):
    ok = _mypy(tmp_path, CLIENT)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    wrong = _mypy(tmp_path, WRONG)
    assert wrong.returncode == 1
    errors = [line for line in wrong.stdout.splitlines() if ": error:" in line]
    assert [int(line.split(":")[1]) for line in errors] == [3, 4, 5], wrong.stdout
