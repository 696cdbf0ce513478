"""lossctl against PyTorch computed on the fly (skipped when torch is not installed).

The cases are the same table as the fixture files (tests/tools/make_torch_fixtures.py,
:func:`build_cases`), with ``full=True``: every golden/seed/edge case plus the
whole random grid of each loss (shapes incl. K-dim and unbatched, prediction
kinds, every parameter combination, every reduction) with fresh random data.
The seed is ``LOSSCTL_LIVE_SEED`` (default 1; the fixture files use 0).
Reference: tests/torch_reference.py; comparison and tolerances: tests/test_torch_fixtures.py.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

import torch

import lossctl  # noqa: E402
import test_torch_fixtures as fx  # noqa: E402
import torch_reference as ref  # noqa: E402

_TESTS = Path(__file__).resolve().parent


def _load(name: str, path: Path):
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        mod = importlib.util.module_from_spec(spec)
        assert spec.loader is not None
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
    return sys.modules[name]


gen = _load("make_torch_fixtures", _TESTS / "tools" / "make_torch_fixtures.py")

SEED = int(os.environ.get("LOSSCTL_LIVE_SEED", "1"))


def _params():
    table = gen.build_cases(seed=SEED, full=True)
    for loss, cases in table.items():
        for case in cases:
            yield pytest.param(gen.public(case), id=case["name"])


@pytest.mark.parametrize("case", list(_params()))
def test_live_matches_torch(case):
    expect = ref.reference(fx.lossctl_input(case))
    res = lossctl.compute(fx.lossctl_input(case), grad=True)
    fx.check_result(res, expect)
