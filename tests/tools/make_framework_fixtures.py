"""Write tests/fixtures/frameworks/FRAMEWORK/LOSS.json from the frameworks themselves.

Run where the pinned oracles are installed (``pip install -e '.[oracle]'``):

    KERAS_BACKEND=torch python tests/tools/make_framework_fixtures.py

For every loss of ``tests/framework_oracles.CASES`` and every non-torch convention the
registry gives it, each case that lossctl accepts under that convention is computed by the
framework (Keras 3 on the torch backend, optax under jax x64, scikit-learn): the loss, the
per-sample values and, where the framework differentiates, the gradient. The files record
the versions; tests/test_framework_fixtures.py compares lossctl against them.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")
ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import numpy as np  # noqa: E402

from framework_oracles import CASES, ORACLES  # noqa: E402

OUT = ROOT / "tests" / "fixtures" / "frameworks"


def jsonable(a):
    a = np.asarray(a, dtype=np.float64)
    if a.ndim == 0:
        v = float(a)
        return v if np.isfinite(v) else str(v)
    return [jsonable(x) for x in a]


def versions() -> dict:
    import importlib.metadata as md

    return {name: md.version(name) for name in ("keras", "torch", "jax", "optax", "scikit-learn", "numpy")}


def main() -> None:
    from lossctl.api import compute, registry
    from lossctl.errors import LossctlError

    found = versions()
    for loss, cases in CASES.items():
        spec = registry().get(loss)
        for framework in spec.convention_names:
            conv = spec.convention(framework)
            if conv.kernel is None:
                continue
            rows = []
            for call in cases:
                try:
                    compute({"loss": loss, **call, "convention": framework}, grad=False)
                except LossctlError:
                    continue  # the convention refuses this call (an input kind or a parameter it lacks)
                got = ORACLES[framework](loss, dict(call))
                row = {"call": call, "loss": jsonable(got["loss"]), "per_sample": jsonable(got["per_sample"])}
                if "grad" in got:
                    row["grad"] = {k: jsonable(v) for k, v in got["grad"].items()}
                rows.append(row)
            path = OUT / framework / f"{loss}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            doc = {"framework": framework, "loss": loss, "mirrors": conv.mirrors, "versions": found, "cases": rows}
            path.write_text(json.dumps(doc, indent=1) + "\n")
            print(f"{path.relative_to(ROOT)}: {len(rows)} cases")


if __name__ == "__main__":
    main()
