"""What a small call loads: ``lossctl ce --logits '[[1,2]]' --target '[0]'`` goes through the
argv fast path (lossctl.cli.argv_parser) and imports neither the Typer app nor the renderers,
readers and kernels it does not use. Structural, not timed: start-up time follows from it
(benchmarks/startup.py measures it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Run in a directory with no pyproject.toml/lossctl.toml; print the value, then the modules loaded.
PROBE = """
import json, sys
from lossctl.cli.app import main
code = main(sys.argv[1:])
sys.stdout.flush()
sys.stderr.write("\\nMODULES " + json.dumps(sorted(sys.modules)) + "\\n")
sys.stderr.write("CODE %d\\n" % code)
"""

SMALL_CALLS = [
    ["ce", "--logits", "[[1,2]]", "--target", "[0]"],
    ["ce", "--logits", "[[1,2],[0,3]]", "--target", "[0,1]", "--format", "plain"],
    ["mse", "--pred", "[1,2]", "--target", "[1,3]"],
]

# Never loaded by a small loss call: the CLI framework and terminal libraries, YAML (suites),
# the token-batch kernels, streaming, other backends, output files, pages and triage views.
NOT_LOADED = (
    "typer", "click", "rich", "yaml", "ruamel", "tomllib",
    "lossctl.cli.typer_commands", "lossctl.cli.help",
    "lossctl.losses.lm", "lossctl.losses.online_softmax", "lossctl.losses.linear_ce",
    "lossctl.core.stream", "lossctl.core.triage", "lossctl.backends",
    "lossctl.io.outstream", "lossctl.io.shards", "lossctl.io.compiled_csv", "lossctl.io.arrow_csv",
    "lossctl.render.triage", "lossctl.render.table", "lossctl.render.html", "lossctl.render.plot",
    "lossctl.suite", "lossctl.tokens", "lossctl.compare", "lossctl.gradcheck",
    "torch", "jax", "keras", "dask", "pyarrow", "h5py", "matplotlib", "zarr", "pandas",
)


def _modules(args: list[str], cwd: Path) -> tuple[list[str], str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("_LOSSCTL_COMPLETE", None)
    r = subprocess.run([sys.executable, "-c", PROBE, *args], cwd=cwd, env=env, capture_output=True, text=True)
    tail = r.stderr.rsplit("\nMODULES ", 1)
    assert len(tail) == 2, r.stderr[-2000:]
    modules, code = tail[1].split("\nCODE ")
    assert int(code) == 0, r.stderr[-2000:]
    return json.loads(modules), r.stdout


@pytest.mark.parametrize("args", SMALL_CALLS, ids=[a[0] + "-" + str(i) for i, a in enumerate(SMALL_CALLS)])
def test_a_small_call_loads_only_what_it_uses(args, tmp_path):
    modules, out = _modules(args, tmp_path)
    assert out.strip(), "the call printed its value"
    assert "lossctl.cli.argv_parser" in modules  # the fast path ran ...
    loaded = sorted(m for m in modules if any(m == n or m.startswith(n + ".") for n in NOT_LOADED))
    assert loaded == []  # ... and nothing it does not need came with it


def test_the_probe_sees_what_a_larger_call_loads(tmp_path):
    """The probe can fail: --top takes the triage views, a table takes rich, --help builds the Typer app."""
    call = ["ce", "--logits", "[[1,2],[0,3]]", "--target", "[0,1]"]
    assert {"lossctl.core.triage", "lossctl.render.triage"} <= set(_modules(call + ["--top", "1"], tmp_path)[0])
    assert "rich" in _modules(call + ["--format", "table"], tmp_path)[0]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "-c", PROBE, "ce", "--help"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert "typer" in json.loads(r.stderr.rsplit("\nMODULES ", 1)[1].split("\nCODE ")[0])
