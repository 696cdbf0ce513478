#!/usr/bin/env python
"""Generate tests/fixtures/torch/<loss>.json with PyTorch as the oracle.

    python tests/tools/make_torch_fixtures.py            # every registered loss
    python tests/tools/make_torch_fixtures.py ce kl      # some losses
    python tests/tools/make_torch_fixtures.py --check    # recompute, compare with the files, write nothing

This file is also *the* table of cases: ``tests/test_torch_live.py`` imports
:func:`build_cases` and runs the same table (with ``full=True``: every
parameter combination, fresh random data) against torch on the fly.

Each case is a lossctl check-suite case: ``name``, ``loss``, inputs as nested
lists, parameters in snake case under PyTorch's names. The written file adds
``"expect": {"loss", "per_sample", "grad"}`` computed by the oracle table,
``tests/torch_reference.py`` (torch, float64, autograd).

The losses are the registry's. Where the cases come from, per loss:

* ``golden-*``: hand-checked cases with their torch values (inputs transcribed below).
* ``seed-*``: worked examples from the losses' original write-ups.
* ``edge-*``: hand-made edge cases (K-dim, unbatched, extreme logits, all
  ignored, boundaries of clamps and kinks, ...).
* ``r<seed>-NNN-...``: seeded random cases over a grid of shapes × prediction
  kinds × parameters × reductions; the fixture files hold a sample of the grid
  (each reduction present), the live test the whole grid.
* a loss without a hand-written table (:data:`TABLES`) gets its grid from its oracle
  entry's example: every prediction kind × every reduction, fresh random data each.

Only NumPy is needed to *build* cases; torch is imported when computing them.
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import json
import sys
import zlib
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
FIXTURE_DIR = ROOT / "tests" / "fixtures" / "torch"
GENERATED_BY = "tests/tools/make_torch_fixtures.py"
R3 = ("mean", "sum", "none")
MAX_FIXTURE_CASES = 40
MIN_RANDOM_IN_FIXTURE = 8


#: Golden cases (inputs transcribed; "md" = the case's short name).
# fmt: off
GOLDEN = [
    {'md': 'CE-1', 'loss': 'ce', 'logits': [[10.0, 0.0, -10.0], [8.0, 8.0, 8.0]], 'target': [0, 2]},
    {'md': 'CE-2', 'loss': 'ce', 'logits': [[[1.0, 2.0], [3.0, 5.0]], [[4.0, 7.0], [4.0, 6.0]]], 'target': [[0, 0], [1, 1]]},
    {'md': 'CE-2n', 'loss': 'ce', 'logits': [[[1.0, 2.0], [3.0, 5.0]], [[4.0, 7.0], [4.0, 6.0]]], 'target': [[0, 0], [1, 1]], 'reduction': 'none'},
    {'md': 'CE-3', 'loss': 'ce', 'logits': [[[1.0, 2.0], [3.0, 5.0]], [[4.0, 7.0], [4.0, 6.0]]], 'target': [[0, 0], [1, 1]], 'weight': [1.0, 9.0]},
    {'md': 'CE-4', 'loss': 'ce', 'logits': [[1.0, 2.0, 0.5], [0.0, -1.0, 3.0], [2.0, 2.0, 2.0], [-1.0, 0.0, 1.0]], 'target': [1, -100, 0, 2], 'weight': [0.5, 2.0, 1.0], 'ignore_index': -100},
    {'md': 'CE-4s', 'loss': 'ce', 'logits': [[1.0, 2.0, 0.5], [0.0, -1.0, 3.0], [2.0, 2.0, 2.0], [-1.0, 0.0, 1.0]], 'target': [1, -100, 0, 2], 'weight': [0.5, 2.0, 1.0], 'reduction': 'sum'},
    {'md': 'CE-5', 'loss': 'ce', 'logits': [[1.0, 2.0, 0.5], [0.0, -1.0, 3.0], [2.0, 2.0, 2.0], [-1.0, 0.0, 1.0]], 'target': [1, -100, 0, 2], 'weight': [0.5, 2.0, 1.0], 'label_smoothing': 0.2},
    {'md': 'CE-5n', 'loss': 'ce', 'logits': [[1.0, 2.0, 0.5], [0.0, -1.0, 3.0], [2.0, 2.0, 2.0], [-1.0, 0.0, 1.0]], 'target': [1, -100, 0, 2], 'weight': [0.5, 2.0, 1.0], 'label_smoothing': 0.2, 'reduction': 'none'},
    {'md': 'CE-6', 'loss': 'ce', 'logits': [[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]], 'target': [1, 2], 'label_smoothing': 0.1},
    {'md': 'CE-7', 'loss': 'ce', 'logits': [[1.0, 2.0, 0.5], [0.0, -1.0, 3.0], [2.0, 2.0, 2.0]], 'target': [[0.2, 0.7, 0.1], [0.0, 0.0, 1.0], [0.5, 0.5, 0.0]]},
    {'md': 'CE-8', 'loss': 'ce', 'logits': [[1.0, 2.0, 0.5], [0.0, -1.0, 3.0], [2.0, 2.0, 2.0]], 'target': [[0.2, 0.7, 0.1], [0.0, 0.0, 1.0], [0.5, 0.5, 0.0]], 'weight': [0.5, 2.0, 1.0], 'label_smoothing': 0.2},
    {'md': 'CE-9', 'loss': 'ce', 'logits': [1.0, 2.0, 3.0], 'target': 2},
    {'md': 'CE-10', 'loss': 'ce', 'logits': [1.0, 2.0, 3.0], 'target': [0.2, 0.3, 0.5]},
    {'md': 'CE-11', 'loss': 'ce', 'logits': [[1.0, 2.0, 3.0], [0.0, 0.0, 1.0]], 'target': [-100, -100]},
    {'md': 'CE-12', 'loss': 'ce', 'logits': [[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]], 'target': [1, 0], 'ignore_index': 1},
    {'md': 'CE-13', 'loss': 'ce', 'logits': [[[[0.5, 1.0], [2.0, -1.0]], [[0.0, 0.0], [1.0, 1.0]], [[-0.5, 3.0], [0.0, 2.0]]]], 'target': [[[0, 2], [-100, 1]]]},
    {'md': 'NLL-1', 'loss': 'nll', 'log_probs': [[2.0, 3.0, 1.0], [3.0, 7.0, 9.0]], 'target': [1, 2]},
    {'md': 'NLL-2', 'loss': 'nll', 'log_probs': [[[2.0, 3.0], [1.0, 5.0]], [[3.0, 7.0], [1.0, 9.0]]], 'target': [[1, 1], [0, 0]]},
    {'md': 'NLL-3', 'loss': 'nll', 'log_probs': [[-0.5, -1.2, -2.0], [-1.0, -0.3, -3.0], [-2.0, -2.0, -0.2], [-0.1, -3.0, -2.5]], 'target': [2, 1, 0, 1], 'weight': [3.0, 0.5, 2.0], 'ignore_index': 0},
    {'md': 'NLL-3n', 'loss': 'nll', 'log_probs': [[-0.5, -1.2, -2.0], [-1.0, -0.3, -3.0], [-2.0, -2.0, -0.2], [-0.1, -3.0, -2.5]], 'target': [2, 1, 0, 1], 'weight': [3.0, 0.5, 2.0], 'ignore_index': 0, 'reduction': 'none'},
    {'md': 'BCE-1', 'loss': 'bce', 'probs': [[0.6, 0.1], [0.3, 0.8]], 'target': [[0.0, 1.0], [1.0, 0.0]]},
    {'md': 'BCE-4', 'loss': 'bce', 'probs': [[0.0, 1.0, 0.25], [1.0, 0.0, 0.5]], 'target': [[1.0, 0.0, 0.5], [1.0, 0.0, 0.0]], 'weight': [2.0, 1.0, 0.5], 'reduction': 'none'},
    {'md': 'BCE-5', 'loss': 'bce', 'probs': [[0.3, 0.2], [0.6, 0.9]], 'target': [[1.0, 0.0], [0.0, 1.0]], 'weight': [[1.0], [2.0]]},
    {'md': 'BCEL-1', 'loss': 'bce-logits', 'logits': [[0.6, 0.1], [0.3, 0.8]], 'target': [[0.0, 1.0], [1.0, 0.0]]},
    {'md': 'BCEL-2', 'loss': 'bce-logits', 'logits': [5.0, 3.0, 10.0, -5.0, -3.0, -10.0], 'target': [1.0, 1.0, 1.0, 0.0, 0.0, 0.0]},
    {'md': 'BCEL-3', 'loss': 'bce-logits', 'logits': [[1.0, -2.0, 0.5], [0.0, 3.0, -1.0]], 'target': [[1.0, 0.0, 1.0], [0.0, 1.0, 0.5]], 'weight': [[1.0], [2.0]], 'pos_weight': [2.0, 3.0, 0.5]},
    {'md': 'BCEL-4', 'loss': 'bce-logits', 'logits': [-200.0, 200.0, 0.0, 3.0, -30.0], 'target': [1.0, 0.0, 0.5, 1.0, 0.0], 'reduction': 'none'},
    {'md': 'KL-2-none', 'loss': 'kl', 'log_probs': [[-1.2, -0.5, -2.0], [-0.1, -3.0, -2.5]], 'target': [[0.2, 0.8, 0.0], [0.6, 0.1, 0.3]], 'reduction': 'none'},
    {'md': 'KL-2-sum', 'loss': 'kl', 'log_probs': [[-1.2, -0.5, -2.0], [-0.1, -3.0, -2.5]], 'target': [[0.2, 0.8, 0.0], [0.6, 0.1, 0.3]], 'reduction': 'sum'},
    {'md': 'KL-2-mean', 'loss': 'kl', 'log_probs': [[-1.2, -0.5, -2.0], [-0.1, -3.0, -2.5]], 'target': [[0.2, 0.8, 0.0], [0.6, 0.1, 0.3]], 'reduction': 'mean'},
    {'md': 'KL-2-batchmean', 'loss': 'kl', 'log_probs': [[-1.2, -0.5, -2.0], [-0.1, -3.0, -2.5]], 'target': [[0.2, 0.8, 0.0], [0.6, 0.1, 0.3]], 'reduction': 'batchmean'},
    {'md': 'KL-3', 'loss': 'kl', 'log_probs': [[-1.2, -0.5, -2.0], [-0.1, -3.0, -2.5]], 'target': [[-1.6, -0.25, -3.0], [-0.5, -2.3, -1.2]], 'reduction': 'batchmean', 'log_target': True},
    {'md': 'KL-4', 'loss': 'kl', 'log_probs': [[[-1.0, -2.0], [-0.5, -0.7]], [[-0.2, -1.5], [-3.0, -0.05]]], 'target': [[[0.3, 0.7], [0.5, 0.5]], [[0.9, 0.1], [0.05, 0.95]]], 'reduction': 'batchmean'},
    {'md': 'MSE-1', 'loss': 'mse', 'pred': [[0.0, 1.0, -1.0, 0.5], [2.0, -3.0, 0.25, -0.75]], 'target': [[0.1, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, -0.5]]},
    {'md': 'MSE-2', 'loss': 'mse', 'pred': [[0.0, 1.0, -1.0, 0.5], [2.0, -3.0, 0.25, -0.75]], 'target': [[0.1, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, -0.5]], 'reduction': 'sum'},
    {'md': 'MSE-W', 'loss': 'mse', 'pred': [[0.0, 1.0, -1.0, 0.5], [2.0, -3.0, 0.25, -0.75]], 'target': [[0.1, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, -0.5]], 'weight': [[1.0, 2.0, 0.5, 0.0], [0.0, 1.0, 1.0, 3.0]]},
    {'md': 'L1-1', 'loss': 'l1', 'pred': [[0.0, 1.0, -1.0, 0.5], [2.0, -3.0, 0.25, -0.75]], 'target': [[0.1, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, -0.5]]},
    {'md': 'L1-W', 'loss': 'l1', 'pred': [[0.0, 1.0, -1.0, 0.5], [2.0, -3.0, 0.25, -0.75]], 'target': [[0.1, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, -0.5]], 'weight': [[1.0, 2.0, 0.5, 0.0], [0.0, 1.0, 1.0, 3.0]]},
    {'md': 'SL1-1', 'loss': 'smooth-l1', 'pred': [[0.0, 1.0, -1.0, 0.5], [2.0, -3.0, 0.25, -0.75]], 'target': [[0.1, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, -0.5]]},
    {'md': 'SL1-2', 'loss': 'smooth-l1', 'pred': [[0.0, 1.0, -1.0, 0.5], [2.0, -3.0, 0.25, -0.75]], 'target': [[0.1, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, -0.5]], 'beta': 0.5},
    {'md': 'SL1-3', 'loss': 'smooth-l1', 'pred': [[0.0, 1.0, -1.0, 0.5], [2.0, -3.0, 0.25, -0.75]], 'target': [[0.1, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, -0.5]], 'beta': 0.0},
    {'md': 'SL1-4', 'loss': 'smooth-l1', 'pred': [[0.0, 1.0, -1.0, 0.5], [2.0, -3.0, 0.25, -0.75]], 'target': [[0.1, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, -0.5]], 'beta': 2.0, 'reduction': 'none'},
    {'md': 'HUB-1', 'loss': 'huber', 'pred': [[0.0, 1.0, -1.0, 0.5], [2.0, -3.0, 0.25, -0.75]], 'target': [[0.1, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, -0.5]]},
    {'md': 'HUB-2', 'loss': 'huber', 'pred': [[0.0, 1.0, -1.0, 0.5], [2.0, -3.0, 0.25, -0.75]], 'target': [[0.1, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, -0.5]], 'delta': 2.0, 'reduction': 'none'},
    {'md': 'HUB-W', 'loss': 'huber', 'pred': [[0.0, 1.0, -1.0, 0.5], [2.0, -3.0, 0.25, -0.75]], 'target': [[0.1, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, -0.5]], 'weight': [[1.0, 2.0, 0.5, 0.0], [0.0, 1.0, 1.0, 3.0]]},
    {'md': 'POI-1', 'loss': 'poisson-nll', 'pred': [0.5, -1.0, 2.0, 0.0], 'target': [0.0, 1.0, 3.0, 2.0]},
    {'md': 'POI-2', 'loss': 'poisson-nll', 'pred': [0.5, -1.0, 2.0, 0.0], 'target': [0.0, 1.0, 3.0, 2.0], 'full': True, 'reduction': 'none'},
    {'md': 'POI-3', 'loss': 'poisson-nll', 'pred': [0.5, 1e-09, 2.0, 0.0], 'target': [0.0, 1.0, 3.0, 2.0], 'log_input': False, 'reduction': 'sum'},
    {'md': 'POI-4', 'loss': 'poisson-nll', 'pred': [0.5, 1.5, 2.0, 0.0], 'target': [0.5, 1.0, 3.0, 2.0], 'log_input': False, 'full': True, 'eps': 0.1},
    {'md': 'GAU-1', 'loss': 'gaussian-nll', 'pred': [1.0, 2.0, 3.0], 'target': [1.5, 2.0, 0.0], 'var': [1e-08, 0.5, 2.0], 'reduction': 'none'},
    {'md': 'GAU-2', 'loss': 'gaussian-nll', 'pred': [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]], 'target': [[0.5, 1.0, 1.0], [2.0, 4.0, 7.0]], 'var': [1.0, 2.0], 'full': True},
    {'md': 'GAU-3', 'loss': 'gaussian-nll', 'pred': [1.0, 2.0, 3.0], 'target': [1.5, 2.0, 0.0], 'var': 0.5, 'reduction': 'sum'},
    {'md': 'SM-1', 'loss': 'soft-margin', 'pred': [[0.5, -1.0], [2.0, 0.0]], 'target': [[1.0, 1.0], [-1.0, 1.0]]},
    {'md': 'SM-2', 'loss': 'soft-margin', 'pred': [3.0, -0.2, 0.7], 'target': [-1.0, -1.0, 1.0], 'reduction': 'sum'},
    {'md': 'MLSM-1', 'loss': 'multilabel-soft-margin', 'logits': [[0.5, -1.0, 2.0], [0.0, 1.0, -2.0]], 'target': [[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]]},
    {'md': 'MLSM-2', 'loss': 'multilabel-soft-margin', 'logits': [[0.5, -1.0, 2.0], [0.0, 1.0, -2.0]], 'target': [[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]], 'weight': [1.0, 2.0, 0.5], 'reduction': 'none'},
    {'md': 'MLM-1', 'loss': 'multilabel-margin', 'pred': [[0.1, 0.2, 0.4, 0.8]], 'target': [[3, 0, -1, 1]]},
    {'md': 'MLM-2', 'loss': 'multilabel-margin', 'pred': [[0.1, 0.2, 0.4, 0.8], [0.5, -0.3, 0.9, 0.0]], 'target': [[3, 0, -1, 1], [2, 2, -1, 0]]},
    {'md': 'MLM-3', 'loss': 'multilabel-margin', 'pred': [[1.0, -1.0, 0.3, 0.2, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0]], 'target': [[0, 2, -1, 4, 4], [4, 3, 2, 1, 0]], 'reduction': 'none'},
    {'md': 'MM-1', 'loss': 'multi-margin', 'pred': [[0.1, 0.2, 0.4, 0.8], [0.5, -0.3, 0.9, 0.0]], 'target': [3, 0]},
    {'md': 'MM-2', 'loss': 'multi-margin', 'pred': [[0.1, 0.2, 0.4, 0.8], [0.5, -0.3, 0.9, 0.0]], 'target': [3, 0], 'weight': [1.0, 2.0, 3.0, 4.0], 'p': 2, 'margin': 2.0},
    {'md': 'MM-3', 'loss': 'multi-margin', 'pred': [[0.1, 0.2, 0.4, 0.8], [0.5, -0.3, 0.9, 0.0]], 'target': [3, 0], 'margin': 0.5, 'reduction': 'sum'},
    {'md': 'MM-4', 'loss': 'multi-margin', 'pred': [0.1, 0.2, 0.4, 0.8], 'target': 3},
    {'md': 'MR-1', 'loss': 'margin-ranking', 'x1': [1.0, 2.0, 3.0, 0.0], 'x2': [2.0, 2.0, 1.0, 0.5], 'target': [1.0, -1.0, 1.0, -1.0], 'margin': 0.5},
    {'md': 'MR-2', 'loss': 'margin-ranking', 'x1': [1.5, 0.2], 'x2': [1.5, -0.1], 'target': [1.0, -1.0], 'reduction': 'none'},
    {'md': 'HE-1', 'loss': 'hinge-embedding', 'pred': [0.3, 1.5, -0.2, 0.7, 1.0], 'target': [1.0, -1.0, -1.0, 1.0, -1.0]},
    {'md': 'HE-2', 'loss': 'hinge-embedding', 'pred': [0.3, 1.5, -0.2, 0.7], 'target': [1.0, -1.0, 0.0, 2.0], 'margin': 2.0, 'reduction': 'none'},
    {'md': 'COS-1', 'loss': 'cosine-embedding', 'x1': [[1.0, 2.0, 3.0], [0.5, -1.0, 2.0], [1.0, 0.0, 1.0]], 'x2': [[1.0, 0.0, 1.0], [1.0, 1.0, 1.0], [-1.0, 2.0, 0.5]], 'target': [1.0, -1.0, -1.0], 'margin': 0.2},
    {'md': 'COS-2', 'loss': 'cosine-embedding', 'x1': [[3.0, 4.0], [1.0, 1.0]], 'x2': [[4.0, 3.0], [-1.0, 2.0]], 'target': [1.0, 0.0], 'reduction': 'none'},
    {'md': 'TRI-1', 'loss': 'triplet-margin', 'anchor': [[0.0, 0.0], [1.0, 1.0], [0.5, -0.5]], 'positive': [[1.0, 0.0], [1.0, 2.0], [0.0, 0.0]], 'negative': [[0.0, 2.0], [1.0, 1.5], [1.0, -1.0]]},
    {'md': 'TRI-2', 'loss': 'triplet-margin', 'anchor': [[0.0, 0.0], [1.0, 1.0], [0.5, -0.5]], 'positive': [[1.0, 0.0], [1.0, 2.0], [0.0, 0.0]], 'negative': [[0.0, 2.0], [1.0, 1.5], [1.0, -1.0]], 'margin': 0.5, 'p': 1, 'swap': True, 'reduction': 'none'},
    {'md': 'TRI-3', 'loss': 'triplet-margin', 'anchor': [[0.0, 0.0], [1.0, 1.0], [0.5, -0.5]], 'positive': [[1.0, 0.0], [1.0, 2.0], [0.0, 0.0]], 'negative': [[0.0, 2.0], [1.0, 1.5], [1.0, -1.0]], 'eps': 0.0, 'p': 3},
    {'md': 'CTC-1-none', 'loss': 'ctc', 'log_probs': [[[-1.1041306053367284, -0.6041306053367284, -2.1041306053367284], [-1.201942848229244, -1.101942848229244, -1.001942848229244]], [[-0.26636789980713366, -2.7663678998071335, -1.7663678998071337], [-2.1698460195562856, -0.16984601955628567, -3.1698460195562856]], [[-1.3408049286396913, -1.3408049286396913, -0.7408049286396912], [-0.5514447139320511, -1.551444713932051, -1.551444713932051]], [[-1.7120668138213548, -0.7120668138213547, -1.1120668138213547], [-1.0986122886681098, -1.0986122886681098, -1.0986122886681098]]], 'target': [[1, 2], [1, 1]], 'input_lengths': [4, 3], 'target_lengths': [2, 2], 'reduction': 'none'},
    {'md': 'CTC-1-sum', 'loss': 'ctc', 'log_probs': [[[-1.1041306053367284, -0.6041306053367284, -2.1041306053367284], [-1.201942848229244, -1.101942848229244, -1.001942848229244]], [[-0.26636789980713366, -2.7663678998071335, -1.7663678998071337], [-2.1698460195562856, -0.16984601955628567, -3.1698460195562856]], [[-1.3408049286396913, -1.3408049286396913, -0.7408049286396912], [-0.5514447139320511, -1.551444713932051, -1.551444713932051]], [[-1.7120668138213548, -0.7120668138213547, -1.1120668138213547], [-1.0986122886681098, -1.0986122886681098, -1.0986122886681098]]], 'target': [[1, 2], [1, 1]], 'input_lengths': [4, 3], 'target_lengths': [2, 2], 'reduction': 'sum'},
    {'md': 'CTC-1-mean', 'loss': 'ctc', 'log_probs': [[[-1.1041306053367284, -0.6041306053367284, -2.1041306053367284], [-1.201942848229244, -1.101942848229244, -1.001942848229244]], [[-0.26636789980713366, -2.7663678998071335, -1.7663678998071337], [-2.1698460195562856, -0.16984601955628567, -3.1698460195562856]], [[-1.3408049286396913, -1.3408049286396913, -0.7408049286396912], [-0.5514447139320511, -1.551444713932051, -1.551444713932051]], [[-1.7120668138213548, -0.7120668138213547, -1.1120668138213547], [-1.0986122886681098, -1.0986122886681098, -1.0986122886681098]]], 'target': [[1, 2], [1, 1]], 'input_lengths': [4, 3], 'target_lengths': [2, 2], 'reduction': 'mean'},
    {'md': 'CTC-2', 'loss': 'ctc', 'log_probs': [[[-1.1041306053367284, -0.6041306053367284, -2.1041306053367284], [-1.201942848229244, -1.101942848229244, -1.001942848229244]], [[-0.26636789980713366, -2.7663678998071335, -1.7663678998071337], [-2.1698460195562856, -0.16984601955628567, -3.1698460195562856]], [[-1.3408049286396913, -1.3408049286396913, -0.7408049286396912], [-0.5514447139320511, -1.551444713932051, -1.551444713932051]], [[-1.7120668138213548, -0.7120668138213547, -1.1120668138213547], [-1.0986122886681098, -1.0986122886681098, -1.0986122886681098]]], 'target': [[1, 2], [1, 1]], 'input_lengths': [4, 3], 'target_lengths': [2, 2], 'reduction': 'sum'},
    {'md': 'CTC-3', 'loss': 'ctc', 'log_probs': [[[-1.1041306053367284, -0.6041306053367284, -2.1041306053367284], [-1.201942848229244, -1.101942848229244, -1.001942848229244]], [[-0.26636789980713366, -2.7663678998071335, -1.7663678998071337], [-2.1698460195562856, -0.16984601955628567, -3.1698460195562856]], [[-1.3408049286396913, -1.3408049286396913, -0.7408049286396912], [-0.5514447139320511, -1.551444713932051, -1.551444713932051]], [[-1.7120668138213548, -0.7120668138213547, -1.1120668138213547], [-1.0986122886681098, -1.0986122886681098, -1.0986122886681098]]], 'target': [1, 2, 1, 1], 'input_lengths': [4, 2], 'target_lengths': [2, 2], 'reduction': 'none'},
    {'md': 'CTC-4', 'loss': 'ctc', 'log_probs': [[[-1.1041306053367284, -0.6041306053367284, -2.1041306053367284], [-1.201942848229244, -1.101942848229244, -1.001942848229244]], [[-0.26636789980713366, -2.7663678998071335, -1.7663678998071337], [-2.1698460195562856, -0.16984601955628567, -3.1698460195562856]], [[-1.3408049286396913, -1.3408049286396913, -0.7408049286396912], [-0.5514447139320511, -1.551444713932051, -1.551444713932051]], [[-1.7120668138213548, -0.7120668138213547, -1.1120668138213547], [-1.0986122886681098, -1.0986122886681098, -1.0986122886681098]]], 'target': [[1, 2], [1, 1]], 'input_lengths': [4, 3], 'target_lengths': [0, 2], 'reduction': 'mean'},
    {'md': 'FOC-1', 'loss': 'focal', 'logits': [[1.2, -0.4, 3.0], [-2.0, 0.0, 0.7]], 'target': [[1.0, 0.0, 0.0], [1.0, 1.0, 0.0]], 'alpha': 0.25, 'gamma': 2, 'reduction': 'none'},
    {'md': 'FOC-2', 'loss': 'focal', 'logits': [[1.2, -0.4, 3.0], [-2.0, 0.0, 0.7]], 'target': [[1.0, 0.0, 0.0], [1.0, 1.0, 0.0]], 'alpha': 0.25, 'gamma': 2, 'reduction': 'mean'},
    {'md': 'FOC-3', 'loss': 'focal', 'logits': [[1.2, -0.4, 3.0], [-2.0, 0.0, 0.7]], 'target': [[1.0, 0.0, 0.0], [1.0, 1.0, 0.0]], 'alpha': -1, 'gamma': 1.5, 'reduction': 'sum'},
    {'md': 'FOC-4', 'loss': 'focal', 'logits': [[1.2, -0.4, 3.0], [-2.0, 0.0, 0.7]], 'target': [[1.0, 0.0, 0.0], [1.0, 1.0, 0.0]], 'alpha': 0.75, 'gamma': 0, 'reduction': 'sum'},
]
# fmt: on

# --------------------------------------------------------------------------- helpers


def _case(name: str, loss: str, **kw: Any) -> dict:
    c = {"name": f"{loss}/{name}", "loss": loss}
    c.update(kw)
    return c


def _r(a: np.ndarray, dec: int = 3) -> Any:
    """Round and convert to nested Python floats (short, exact JSON)."""
    return np.round(np.asarray(a, dtype=np.float64), dec).tolist()


def _normal(rng: np.random.Generator, shape, scale: float = 1.5, dec: int = 3) -> Any:
    return _r(rng.normal(0.0, scale, shape), dec)


def _uniform(rng, shape, lo, hi, dec=3) -> Any:
    return _r(rng.uniform(lo, hi, shape), dec)


def _log_softmax_np(x: np.ndarray, axis: int) -> np.ndarray:
    m = x.max(axis=axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


def _probs(rng, shape, axis, dec=4) -> Any:
    """Rounded softmax of random logits, clipped away from 0 (no log(0) in conversions)."""
    p = np.exp(_log_softmax_np(rng.normal(0, 1.2, shape), axis))
    return np.clip(np.round(p, dec), 10.0 ** -dec, 1.0).tolist()


def _log_probs(rng, shape, axis, dec=4) -> Any:
    return _r(_log_softmax_np(rng.normal(0, 1.2, shape), axis), dec)


def _soft_targets(rng, shape, axis, dec=3) -> Any:
    """Probability targets along ``axis`` (rounded: rows sum to 1 within 1e-3, as users give them)."""
    g = rng.gamma(1.0, 1.0, shape)
    return _r(g / g.sum(axis=axis, keepdims=True), dec)


def _pm1(rng, shape) -> Any:
    return rng.choice([-1.0, 1.0], size=shape).tolist()


def _bits(rng, shape) -> Any:
    return rng.integers(0, 2, size=shape).astype(np.float64).tolist()


def _ints(rng, shape, lo, hi) -> Any:
    return rng.integers(lo, hi, size=shape).tolist()


def _grid(**axes: Iterable) -> list[dict]:
    keys = list(axes)
    return [dict(zip(keys, vals)) for vals in itertools.product(*(list(axes[k]) for k in keys))]


def _tag(combo: dict) -> str:
    parts = []
    for k, v in combo.items():
        if v is None or v is False:
            continue
        if v is True:
            parts.append(k)
        elif isinstance(v, float):
            parts.append(f"{k}{v:g}")
        elif k in ("kind", "shape", "reduction", "tmode"):
            parts.append(str(v))
        else:
            parts.append(f"{k}{v}")
    return "-".join(parts)


# Shapes used by the class-dimension losses: name → (input shape, class dim).
CLS_SHAPES = {
    "NC": ((4, 3), 1),
    "C": ((4,), 0),
    "NCd": ((2, 3, 3), 1),
    "NCdd": ((2, 3, 2, 2), 1),
}


def _index_target(rng, shape, cdim, n_classes):
    tshape = tuple(s for i, s in enumerate(shape) if i != cdim)
    t = rng.integers(0, n_classes, size=tshape)
    return t.tolist() if tshape else int(t)


def _with_ignored(rng, target, ignore_index):
    """Replace about a third of the class indices with ``ignore_index`` (at least one kept)."""
    t = np.array(target)
    if t.ndim == 0:
        return target
    flat = t.reshape(-1)
    k = max(1, flat.size // 3)
    idx = rng.choice(flat.size, size=k, replace=False)
    flat[idx] = ignore_index
    if np.all(flat == ignore_index):
        flat[0] = 0 if ignore_index != 0 else 1
    return flat.reshape(t.shape).tolist()


# --------------------------------------------------------------------------- per-loss tables
#
# Each ``_loss_<name>(rng)`` returns (fixed cases, random generator, grid): the
# random generator turns one grid point into a case (or None if that point is
# not valid for the loss).


def _ce_like_random(loss: str):
    def make(rng, c):
        shape, cdim = CLS_SHAPES[c["shape"]]
        C = shape[cdim]
        kind = c["kind"]
        if kind == "logits":
            x = _normal(rng, shape, 2.0)
        elif kind == "log_probs":
            x = _log_probs(rng, shape, cdim)
        else:
            x = _probs(rng, shape, cdim)
        kw: dict = {kind: x}
        if c["tmode"] == "prob":
            if c.get("ignore"):
                return None
            kw["target"] = _soft_targets(rng, shape, cdim)
        else:
            t = _index_target(rng, shape, cdim, C)
            if c.get("ignore"):
                if c["shape"] == "C":
                    return None
                ii = int(rng.choice([-100, -1, 1]))
                t = _with_ignored(rng, t, ii)
                kw["ignore_index"] = ii
            kw["target"] = t
        if c.get("weight"):
            kw["weight"] = _uniform(rng, (C,), 0.2, 2.0, 2)
        if c.get("ls"):
            kw["label_smoothing"] = c["ls"]
        kw["reduction"] = c["reduction"]
        return kw

    return make


def _loss_ce(rng):
    fixed = [
        _case("edge-logits-1e4", "ce", logits=[[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4], [0.0, 0.0, -1e4]], target=[1, 2, 2],
              reduction="none"),
        _case("edge-logits-1e4-ls-weight", "ce", logits=[[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4]], target=[0, 1],
              weight=[1.0, 2.0, 0.5], label_smoothing=0.1),
        _case("edge-logits-1e300", "ce", logits=[[1e300, -1e300, 0.0], [3.0, 1e300, -5.0]], target=[0, 1]),
        _case("edge-logits-1e300-wrong-class", "ce", logits=[[1e300, 0.0, 0.0], [0.0, 0.0, 1e300]], target=[0, 0],
              reduction="none"),
        _case("edge-logits-1e300-prob-target", "ce", logits=[[1e300, 0.0, -1e300], [0.0, 0.0, 0.0]],
              target=[[1.0, 0.0, 0.0], [0.2, 0.3, 0.5]], reduction="sum"),
        _case("edge-all-ignored-sum", "ce", logits=[[1.0, 2.0, 3.0], [0.0, 0.0, 1.0]], target=[-100, -100],
              reduction="sum"),
        _case("edge-all-ignored-none", "ce", logits=[[1.0, 2.0, 3.0], [0.0, 0.0, 1.0]], target=[-100, -100],
              reduction="none"),
        _case("edge-all-ignored-weight-ls", "ce", logits=[[1.0, 2.0, 3.0], [0.0, 0.0, 1.0]], target=[2, 2],
              ignore_index=2, weight=[1.0, 2.0, 3.0], label_smoothing=0.3),
        _case("edge-unbatched-ignored", "ce", logits=[1.0, 2.0, 3.0], target=1, ignore_index=1),
        _case("edge-zero-weight-sum", "ce", logits=[[1.0, 2.0, 3.0], [0.5, 0.0, 1.0]], target=[0, 0],
              weight=[0.0, 1.0, 1.0]),
        _case("edge-ignore-valid-class-ls", "ce", logits=[[1.0, 2.0, 0.5], [0.0, -1.0, 3.0], [2.0, 0.0, 1.0]],
              target=[1, 0, 2], ignore_index=0, label_smoothing=0.25, weight=[2.0, 1.0, 0.5], reduction="none"),
        _case("edge-ls-1", "ce", logits=[[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]], target=[1, 2], label_smoothing=1.0),
        _case("edge-prob-target-ls-weight-Kdim", "ce",
              logits=[[[0.5, 1.0], [2.0, -1.0], [0.0, 0.3]], [[1.5, -2.0], [0.1, 0.2], [-0.4, 1.1]]],
              target=[[[0.2, 1.0], [0.5, 0.0], [0.3, 0.0]], [[0.0, 0.6], [1.0, 0.2], [0.0, 0.2]]],
              weight=[0.5, 1.5, 2.0], label_smoothing=0.1),
        _case("edge-float-index-target", "ce", logits=[[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]], target=[1.0, 2.0]),
        _case("log-probs-ls-weight-ignore", "ce",
              log_probs=[[-1.2, -0.5, -2.0], [-0.1, -3.0, -2.5], [-0.9, -0.9, -1.6]], target=[1, -100, 2],
              weight=[1.0, 3.0, 0.5], label_smoothing=0.2),
        _case("probs-index-ls", "ce", probs=[[0.2, 0.7, 0.1], [0.6, 0.1, 0.3]], target=[1, 0],
              label_smoothing=0.1, reduction="sum"),
        _case("probs-prob-target-weight", "ce", probs=[[0.2, 0.7, 0.1], [0.6, 0.1, 0.3]],
              target=[[0.0, 1.0, 0.0], [0.5, 0.25, 0.25]], weight=[2.0, 1.0, 0.5]),
    ]
    grid = _grid(kind=("logits", "log_probs", "probs"), shape=tuple(CLS_SHAPES), tmode=("index", "prob"),
                 weight=(False, True), ls=(0.0, 0.15), ignore=(False, True), reduction=R3)
    return fixed, _ce_like_random("ce"), grid


def _loss_nll(rng):
    fixed = [
        _case("edge-all-ignored", "nll", log_probs=[[-0.5, -1.0], [-2.0, -0.1]], target=[-100, -100]),
        _case("edge-all-ignored-weight-sum", "nll", log_probs=[[-0.5, -1.0], [-2.0, -0.1]], target=[1, 1],
              ignore_index=1, weight=[2.0, 3.0], reduction="sum"),
        _case("edge-zero-weight-sum", "nll", log_probs=[[-0.5, -1.0, -2.0], [-2.0, -0.1, -3.0]], target=[0, 0],
              weight=[0.0, 1.0, 1.0]),
        _case("edge-negative-weight", "nll", log_probs=[[-0.5, -1.0, -2.0], [-2.0, -0.1, -3.0]], target=[0, 1],
              weight=[-1.0, 2.0, 1.0]),
        _case("edge-unbatched", "nll", log_probs=[-1.2, -0.5, -2.0], target=2),
        _case("edge-unbatched-none", "nll", log_probs=[-1.2, -0.5, -2.0], target=0, weight=[3.0, 1.0, 1.0],
              reduction="none"),
        _case("edge-Kdim-ignore-valid-class", "nll",
              log_probs=[[[[-0.5, -1.0], [-2.0, -0.3]], [[-1.0, -0.7], [-0.2, -2.2]]]], target=[[[0, 1], [1, 0]]],
              ignore_index=0, weight=[1.0, 2.5]),
        _case("probs-weight-ignore", "nll", probs=[[0.2, 0.7, 0.1], [0.6, 0.1, 0.3], [0.3, 0.3, 0.4]],
              target=[1, -100, 2], weight=[0.5, 2.0, 1.0]),
    ]

    def make(rng, c):
        c = dict(c, tmode="index", ls=0.0)
        return _ce_like_random("nll")(rng, c)

    grid = _grid(kind=("log_probs", "probs"), shape=tuple(CLS_SHAPES), weight=(False, True), ignore=(False, True),
                 reduction=R3)
    return fixed, make, grid


def _loss_bce(rng):
    fixed = [
        _case("seed-S2-logits", "bce", logits=[[0.6, 0.1], [0.3, 0.8]], target=[[0.0, 1.0], [1.0, 0.0]]),
        _case("seed-S3-logits", "bce", logits=[5.0, 3.0, 10.0, -5.0, -3.0, -10.0],
              target=[1.0, 1.0, 1.0, 0.0, 0.0, 0.0]),
        _case("seed-S9-sum", "bce", probs=[0.95, 0.73, 0.05], target=[1.0, 1.0, 0.0], reduction="sum"),
        _case("seed-S9b-sum", "bce", probs=[0.3, 0.5, 0.7], target=[1.0, 1.0, 0.0], reduction="sum"),
        _case("seed-blog-weight", "bce",
              probs=[[0.1531, 0.3302, 0.7537], [0.2200, 0.6875, 0.2268], [0.5109, 0.5873, 0.9275]],
              target=[[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]],
              weight=[[0.9, 0.1, 0.1], [0.1, 0.1, 0.9], [0.1, 0.9, 0.1]]),
        _case("edge-probs-0-1-weight-mean", "bce", probs=[[0.0, 1.0, 0.25], [1.0, 0.0, 0.5]],
              target=[[1.0, 0.0, 0.5], [1.0, 0.0, 0.0]], weight=[2.0, 1.0, 0.5]),
        _case("edge-probs-0-1-weight-sum", "bce", probs=[[0.0, 1.0, 0.25], [1.0, 0.0, 0.5]],
              target=[[1.0, 0.0, 0.5], [1.0, 0.0, 0.0]], weight=[[2.0], [0.5]], reduction="sum"),
        _case("edge-probs-0-soft-target", "bce", probs=[0.0, 1.0, 0.0, 1.0], target=[0.5, 0.25, 0.0, 1.0],
              reduction="none"),
        _case("edge-logits-1e4", "bce", logits=[1e4, -1e4, 1e4, -1e4, 0.0], target=[1.0, 0.0, 0.0, 1.0, 0.5],
              reduction="none"),
        _case("edge-logits-1e300-weight", "bce", logits=[[1e300, -1e300], [-1e300, 2.0]],
              target=[[1.0, 0.0], [1.0, 0.0]], weight=[0.5, 2.0], reduction="sum"),
        _case("edge-Kdim-weight-C11", "bce",
              probs=[[[[0.1, 0.9]], [[0.4, 0.6]]], [[[0.7, 0.2]], [[0.5, 0.05]]]],
              target=[[[[0.0, 1.0]], [[1.0, 1.0]]], [[[1.0, 0.0]], [[0.0, 0.0]]]], weight=[[[1.0]], [[3.0]]]),
    ]

    def make(rng, c):
        shape = {"N": (5,), "NC": (3, 4), "NCd": (2, 3, 2)}[c["shape"]]
        kw: dict = {}
        if c["kind"] == "probs":
            kw["probs"] = _uniform(rng, shape, 0.02, 0.98)
        else:
            kw["logits"] = _normal(rng, shape, 2.5)
        kw["target"] = _bits(rng, shape) if c["tmode"] == "hard" else _uniform(rng, shape, 0.0, 1.0, 2)
        w = c["weight"]
        if w == "full":
            kw["weight"] = _uniform(rng, shape, 0.1, 2.0, 2)
        elif w == "last":
            kw["weight"] = _uniform(rng, shape[-1:], 0.1, 2.0, 2)
        elif w == "rows":
            if len(shape) < 2:
                return None
            kw["weight"] = _uniform(rng, (shape[0],) + (1,) * (len(shape) - 1), 0.1, 2.0, 2)
        kw["reduction"] = c["reduction"]
        return kw

    grid = _grid(kind=("probs", "logits"), shape=("N", "NC", "NCd"), tmode=("hard", "soft"),
                 weight=(None, "full", "last", "rows"), reduction=R3)
    return fixed, make, grid


def _loss_bce_logits(rng):
    fixed = [
        _case("edge-pos-weight-C11-Kdim", "bce-logits",
              logits=[[[[0.5, -1.0], [2.0, 0.0]], [[-0.3, 1.2], [0.7, -2.0]]]],
              target=[[[[1.0, 0.0], [1.0, 1.0]], [[0.0, 1.0], [0.5, 0.0]]]], pos_weight=[[[2.0]], [[0.5]]]),
        _case("edge-pos-weight-scalar", "bce-logits", logits=[[0.5, -1.0, 2.0], [0.0, 3.0, -0.5]],
              target=[[1.0, 0.0, 1.0], [1.0, 1.0, 0.0]], pos_weight=3.0, reduction="sum"),
        _case("edge-pos-weight-full", "bce-logits", logits=[[0.5, -1.0], [0.0, 3.0]],
              target=[[1.0, 0.3], [1.0, 1.0]], pos_weight=[[1.0, 2.0], [3.0, 0.25]], weight=[[0.5, 1.0], [2.0, 1.0]],
              reduction="none"),
        _case("edge-pos-weight-last-dim-3d", "bce-logits",
              logits=[[[0.5, -1.0, 2.0], [0.0, 3.0, -0.5]], [[1.5, 0.2, -0.1], [-2.0, 0.4, 0.9]]],
              target=[[[1.0, 0.0, 1.0], [1.0, 1.0, 0.0]], [[0.0, 1.0, 1.0], [0.0, 0.0, 1.0]]],
              pos_weight=[0.5, 2.0, 4.0], weight=[[[1.0], [2.0]], [[0.5], [1.5]]]),
        _case("edge-logits-1e4", "bce-logits", logits=[1e4, -1e4, 1e4, -1e4], target=[1.0, 0.0, 0.0, 1.0],
              pos_weight=[2.0, 2.0, 2.0, 2.0], reduction="none"),
        _case("edge-logits-1e300", "bce-logits", logits=[1e300, -1e300, -1e300, 1e300],
              target=[1.0, 0.0, 1.0, 0.0], reduction="none"),
        _case("edge-logits-1e300-mean", "bce-logits", logits=[[1e300, -1e300], [0.5, -0.5]],
              target=[[0.0, 1.0], [1.0, 0.0]], pos_weight=[0.5, 1.5]),
        _case("edge-target-out-of-range", "bce-logits", logits=[0.5, -1.0, 2.0], target=[2.0, -1.0, 0.5],
              reduction="none"),
    ]

    def make(rng, c):
        shape = {"N": (5,), "NC": (3, 4), "NCd": (2, 3, 2)}[c["shape"]]
        kw: dict = {"logits": _normal(rng, shape, 2.5)}
        kw["target"] = _bits(rng, shape) if c["tmode"] == "hard" else _uniform(rng, shape, 0.0, 1.0, 2)
        if c["weight"]:
            kw["weight"] = _uniform(rng, shape[-1:], 0.1, 2.0, 2)
        pw = c["pos_weight"]
        if pw == "last":
            kw["pos_weight"] = _uniform(rng, shape[-1:], 0.2, 4.0, 2)
        elif pw == "full":
            kw["pos_weight"] = _uniform(rng, shape, 0.2, 4.0, 2)
        elif pw == "C11":
            if len(shape) < 3:
                return None
            kw["pos_weight"] = _uniform(rng, (shape[1], 1), 0.2, 4.0, 2)
        kw["reduction"] = c["reduction"]
        return kw

    grid = _grid(shape=("N", "NC", "NCd"), tmode=("hard", "soft"), weight=(False, True),
                 pos_weight=(None, "last", "full", "C11"), reduction=R3)
    return fixed, make, grid


def _loss_kl(rng):
    fixed = [
        _case("seed-S4-logits-onehot", "kl", logits=[[10.0, 0.0, -10.0], [8.0, 8.0, 8.0]],
              target=[[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], reduction="batchmean"),
        _case("edge-unbatched-batchmean", "kl", log_probs=[-1.2, -0.5, -2.0], target=[0.2, 0.8, 0.0],
              reduction="batchmean"),
        _case("edge-logits-1e4", "kl", logits=[[1e4, 0.0, -1e4], [-1e4, 1e4, 1e4]],
              target=[[0.7, 0.3, 0.0], [0.0, 0.5, 0.5]], reduction="none"),
        _case("edge-logits-1d", "kl", logits=[1.0, 2.0, 3.0], target=[0.2, 0.3, 0.5], reduction="sum"),
        _case("edge-logits-Kdim", "kl", logits=[[[1.0, 2.0], [0.5, -1.0], [0.0, 0.0]]],
              target=[[[0.2, 0.5], [0.3, 0.5], [0.5, 0.0]]], reduction="batchmean"),
        _case("edge-probs-log-target", "kl", probs=[[0.3, 0.7], [0.9, 0.1]], target=[[-1.0, -0.5], [-0.2, -2.0]],
              log_target=True, reduction="none"),
        _case("edge-zero-target-mean", "kl", log_probs=[[-0.1, -2.5, -4.0], [-30.0, -0.01, -5.0]],
              target=[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], reduction="mean"),
        _case("edge-default-reduction", "kl", log_probs=[[-1.2, -0.5, -2.0], [-0.1, -3.0, -2.5]],
              target=[[0.2, 0.8, 0.0], [0.6, 0.1, 0.3]]),
        _case("edge-log-target-sum", "kl", log_probs=[[-1.2, -0.5, -2.0], [-0.1, -3.0, -2.5]],
              target=[[-1.6, -0.25, -3.0], [-0.5, -2.3, -1.2]], log_target=True, reduction="sum"),
        _case("edge-log-target-mean", "kl", log_probs=[[-1.2, -0.5, -2.0], [-0.1, -3.0, -2.5]],
              target=[[-1.6, -0.25, -3.0], [-0.5, -2.3, -1.2]], log_target=True, reduction="mean"),
    ]

    def make(rng, c):
        shape, cdim = CLS_SHAPES[c["shape"]]
        kind = c["kind"]
        if kind == "logits":
            x = _normal(rng, shape, 2.0)
        elif kind == "log_probs":
            x = _log_probs(rng, shape, cdim)
        else:
            x = _probs(rng, shape, cdim)
        t = np.array(_soft_targets(rng, shape, cdim))
        if c["zeros"]:
            t.reshape(-1)[:: 3] = 0.0
        if c["log_target"]:
            with np.errstate(divide="ignore"):
                if c["zeros"]:
                    return None
                t = np.round(np.log(t), 4)
        return {kind: x, "target": t.tolist(), "log_target": c["log_target"], "reduction": c["reduction"]}

    grid = _grid(kind=("log_probs", "probs", "logits"), shape=tuple(CLS_SHAPES), log_target=(False, True),
                 zeros=(False, True), reduction=("mean", "sum", "none", "batchmean"))
    return fixed, make, grid


_REG_SHAPES = {"N": (5,), "ND": (3, 4), "NCd": (2, 3, 2)}


def _reg_random(param: str | None, values=(None,), weight: bool = False):
    def make(rng, c):
        shape = _REG_SHAPES[c["shape"]]
        kw: dict = {"pred": _normal(rng, shape, 1.5, 2), "target": _normal(rng, shape, 1.5, 2)}
        if c.get("tie"):
            p = np.array(kw["pred"])
            t = np.array(kw["target"])
            t.reshape(-1)[0] = p.reshape(-1)[0]  # d == 0 exactly: sign(0) = 0
            if param is not None and c.get(param) not in (None, 0.0):
                # |d| == beta/delta exactly: quarter-integer target, dyadic beta/delta
                t.reshape(-1)[1] = np.round(t.reshape(-1)[1] * 4) / 4
                p.reshape(-1)[1] = t.reshape(-1)[1] + c[param]
            kw["pred"], kw["target"] = p.tolist(), t.tolist()
        if param is not None and c.get(param) is not None:
            kw[param] = c[param]
        if c.get("weight"):
            kw["weight"] = _uniform(rng, shape, 0.0, 2.0, 2)
        kw["reduction"] = c["reduction"]
        return kw

    axes = dict(shape=tuple(_REG_SHAPES), tie=(False, True))
    if param is not None:
        axes[param] = values
    if weight:
        axes["weight"] = (False, True)
    axes["reduction"] = R3
    return make, _grid(**axes)


_X = [[0.0, 1.0, -1.0, 0.5], [2.0, -3.0, 0.25, -0.75]]
_Y = [[0.1, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, -0.5]]
_W = [[1.0, 2.0, 0.5, 0.0], [0.0, 1.0, 1.0, 3.0]]


def _loss_mse(rng):
    fixed = [
        _case("edge-weight-sum", "mse", pred=_X, target=_Y, weight=_W, reduction="sum"),
        _case("edge-weight-none", "mse", pred=_X, target=_Y, weight=_W, reduction="none"),
        _case("edge-all-zero-weight", "mse", pred=[1.0, 2.0], target=[0.0, 0.0], weight=[0.0, 0.0]),
        _case("edge-scalar", "mse", pred=1.5, target=-0.5),
        _case("edge-huge", "mse", pred=[1e150, -3.0], target=[-1e150, 1.0], reduction="none"),
    ]
    make, grid = _reg_random(None, weight=True)
    return fixed, make, grid


def _loss_l1(rng):
    fixed = [
        _case("edge-weight-sum", "l1", pred=_X, target=_Y, weight=_W, reduction="sum"),
        _case("edge-weight-none", "l1", pred=_X, target=_Y, weight=_W, reduction="none"),
        _case("edge-ties-zero-grad", "l1", pred=[1.0, 2.0, -3.0], target=[1.0, 2.5, -3.0]),
        _case("edge-scalar", "l1", pred=1.5, target=-0.5, reduction="sum"),
    ]
    make, grid = _reg_random(None, weight=True)
    return fixed, make, grid


def _loss_smooth_l1(rng):
    fixed = [
        _case("edge-at-beta", "smooth-l1", pred=[1.5, -1.5, 0.5, 2.0], target=[1.0, -1.0, 0.0, 2.0], beta=0.5,
              reduction="none"),
        _case("edge-beta0-ties", "smooth-l1", pred=[1.0, 2.0, -3.0], target=[1.0, 2.5, -4.0], beta=0.0,
              reduction="sum"),
        _case("edge-SL1-1-sum", "smooth-l1", pred=_X, target=_Y, reduction="sum"),
    ]
    make, grid = _reg_random("beta", (None, 0.0, 0.5, 2.0))
    return fixed, make, grid


def _loss_huber(rng):
    fixed = [
        _case("edge-at-delta", "huber", pred=[1.5, -1.5, 0.5, 2.0], target=[1.0, -1.0, 0.0, 2.0], delta=0.5,
              reduction="none"),
        _case("edge-weight-delta-sum", "huber", pred=_X, target=_Y, weight=_W, delta=0.5, reduction="sum"),
        _case("edge-weight-delta-none", "huber", pred=_X, target=_Y, weight=_W, delta=0.5, reduction="none"),
        _case("edge-delta-small", "huber", pred=_X, target=_Y, delta=0.01),
    ]
    make, grid = _reg_random("delta", (None, 0.5, 2.0), weight=True)
    return fixed, make, grid


def _loss_poisson_nll(rng):
    fixed = [
        _case("edge-full-target-le-1", "poisson-nll", pred=[0.5, -1.0, 2.0, 0.0, 0.3],
              target=[0.5, 1.0, 1.0000001, 0.0, 4.0], full=True, reduction="none"),
        _case("edge-no-log-input-eps", "poisson-nll", pred=[0.0, 1e-9, 2.0], target=[0.0, 3.0, 2.5],
              log_input=False, eps=1e-3, reduction="none"),
        _case("edge-Kdim", "poisson-nll", pred=[[[0.1, -0.2], [1.0, 0.5]]], target=[[[1.0, 0.0], [3.0, 2.0]]],
              full=True),
    ]

    def make(rng, c):
        shape = _REG_SHAPES[c["shape"]]
        if c["log_input"]:
            pred = _normal(rng, shape, 1.0, 2)
        else:
            pred = _uniform(rng, shape, 0.0, 3.0, 2)
        target = rng.choice([0.0, 0.5, 1.0, 2.0, 3.0, 5.0, 1.7], size=shape).tolist()
        kw = {"pred": pred, "target": target, "log_input": c["log_input"], "full": c["full"]}
        if c["eps"] is not None:
            kw["eps"] = c["eps"]
        kw["reduction"] = c["reduction"]
        return kw

    grid = _grid(shape=tuple(_REG_SHAPES), log_input=(True, False), full=(False, True), eps=(None, 0.1),
                 reduction=R3)
    return fixed, make, grid


def _loss_gaussian_nll(rng):
    fixed = [
        _case("edge-var-below-eps-sum", "gaussian-nll", pred=[1.0, 2.0, 3.0], target=[1.5, 2.0, 0.0],
              var=[1e-8, 0.5, 2.0], reduction="sum"),
        _case("edge-var-N1", "gaussian-nll", pred=[[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]],
              target=[[0.5, 1.0, 1.0], [2.0, 4.0, 7.0]], var=[[1.0], [2.0]], reduction="none"),
        _case("edge-var-scalar-mean-full", "gaussian-nll", pred=[[0.0, 1.0], [3.0, 4.0]],
              target=[[0.5, 1.0], [2.0, 4.5]], var=0.25, full=True),
        _case("edge-eps", "gaussian-nll", pred=[1.0, 2.0, 3.0], target=[1.5, 2.0, 0.0], var=[0.01, 0.5, 2.0],
              eps=0.1),
    ]

    def make(rng, c):
        shape = {"N": (5,), "ND": (3, 4)}[c["shape"]]
        kw = {"pred": _normal(rng, shape, 1.5, 2), "target": _normal(rng, shape, 1.5, 2)}
        v = c["var"]
        if v == "full":
            kw["var"] = _uniform(rng, shape, 0.05, 2.0)
        elif v == "homo":
            kw["var"] = _uniform(rng, shape[:-1], 0.05, 2.0)
        elif v == "N1":
            if len(shape) < 2:
                return None
            kw["var"] = _uniform(rng, (shape[0], 1), 0.05, 2.0)
        else:
            kw["var"] = float(np.round(rng.uniform(0.05, 2.0), 3))
        if c["full"]:
            kw["full"] = True
        kw["reduction"] = c["reduction"]
        return kw

    grid = _grid(shape=("N", "ND"), var=("full", "homo", "N1", "scalar"), full=(False, True), reduction=R3)
    return fixed, make, grid


def _loss_soft_margin(rng):
    fixed = [
        _case("edge-Kdim-none", "soft-margin", pred=[[[0.5, -1.0], [2.0, 0.0]]], target=[[[1.0, -1.0], [-1.0, 1.0]]],
              reduction="none"),
        _case("edge-large-finite", "soft-margin", pred=[30.0, -30.0, 700.0], target=[-1.0, -1.0, 1.0],
              reduction="none"),
        _case("edge-non-pm1-target", "soft-margin", pred=[0.5, -1.0, 2.0], target=[0.0, 0.5, 2.0]),
    ]

    def make(rng, c):
        shape = _REG_SHAPES[c["shape"]]
        return {"pred": _normal(rng, shape, 1.5, 2), "target": _pm1(rng, shape), "reduction": c["reduction"]}

    return fixed, make, _grid(shape=tuple(_REG_SHAPES), rep=(0, 1), reduction=R3)


def _loss_multilabel_soft_margin(rng):
    fixed = [
        _case("edge-unbatched", "multilabel-soft-margin", logits=[0.5, -1.0, 2.0], target=[1.0, 0.0, 1.0]),
        _case("edge-weight-NC-sum", "multilabel-soft-margin", logits=[[0.5, -1.0, 2.0], [0.0, 1.0, -2.0]],
              target=[[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]], weight=[[1.0, 2.0, 0.5], [0.0, 1.0, 3.0]], reduction="sum"),
        _case("edge-logits-1e4", "multilabel-soft-margin", logits=[[1e4, -1e4, 0.0]], target=[[0.0, 1.0, 1.0]],
              reduction="none"),
        _case("edge-soft-target", "multilabel-soft-margin", logits=[[0.5, -1.0, 2.0]], target=[[0.3, 0.5, 0.9]]),
    ]

    def make(rng, c):
        shape = {"C": (4,), "NC": (3, 4)}[c["shape"]]
        kw = {"logits": _normal(rng, shape, 2.0), "target": _bits(rng, shape)}
        if c["weight"] == "C":
            kw["weight"] = _uniform(rng, shape[-1:], 0.1, 2.0, 2)
        elif c["weight"] == "NC":
            kw["weight"] = _uniform(rng, shape, 0.1, 2.0, 2)
        kw["reduction"] = c["reduction"]
        return kw

    return fixed, make, _grid(shape=("C", "NC"), weight=(None, "C", "NC"), reduction=R3)


def _mlm_target(rng, C):
    k = int(rng.integers(0, C + 1))
    row = list(rng.permutation(C)[:k])
    if k < C:
        row = row + [-1] + list(rng.integers(-1, C, size=C - k - 1))
    return [int(v) for v in row]


def _loss_multilabel_margin(rng):
    fixed = [
        _case("edge-unbatched", "multilabel-margin", pred=[0.1, 0.2, 0.4, 0.8], target=[3, 0, -1, 1]),
        _case("edge-empty-set", "multilabel-margin", pred=[[0.1, 0.2, 0.4]], target=[[-1, 0, 1]], reduction="none"),
        _case("edge-margin-boundary-strict", "multilabel-margin", pred=[[1.0, 0.0, 2.0]], target=[[0, -1, 2]],
              reduction="sum"),
        _case("edge-duplicates-sum", "multilabel-margin", pred=[[0.5, -0.3, 0.9, 0.0]], target=[[2, 2, 2, -1]],
              reduction="sum"),
    ]

    def make(rng, c):
        N, C = 3, 4
        if c["shape"] == "C":
            return {"pred": _normal(rng, (C,), 1.0, 6), "target": _mlm_target(rng, C), "reduction": c["reduction"]}
        return {"pred": _normal(rng, (N, C), 1.0, 6), "target": [_mlm_target(rng, C) for _ in range(N)],
                "reduction": c["reduction"]}

    return fixed, make, _grid(shape=("C", "NC"), rep=(0, 1, 2), reduction=R3)


def _loss_multi_margin(rng):
    fixed = [
        _case("edge-boundary-strict", "multi-margin", pred=[[1.0, 0.0, 2.0]], target=[2], reduction="none"),
        _case("edge-p2-unbatched-weight", "multi-margin", pred=[0.1, 0.2, 0.4, 0.8], target=1, p=2,
              weight=[1.0, 2.0, 3.0, 4.0], reduction="sum"),
        _case("edge-negative-margin", "multi-margin", pred=[[0.1, 0.2, 0.4, 0.8]], target=[0], margin=-0.5),
    ]

    def make(rng, c):
        C = 4
        if c["shape"] == "C":
            kw = {"pred": _normal(rng, (C,), 1.0, 6), "target": int(rng.integers(0, C))}
        else:
            kw = {"pred": _normal(rng, (5, C), 1.0, 6), "target": _ints(rng, (5,), 0, C)}
        if c["p"] is not None:
            kw["p"] = c["p"]
        if c["margin"] is not None:
            kw["margin"] = c["margin"]
        if c["weight"]:
            kw["weight"] = _uniform(rng, (C,), 0.1, 2.0, 2)
        kw["reduction"] = c["reduction"]
        return kw

    return fixed, make, _grid(shape=("C", "NC"), p=(None, 2), margin=(None, 0.5, 2.0), weight=(False, True),
                              reduction=R3)


def _loss_margin_ranking(rng):
    fixed = [
        _case("edge-2d", "margin-ranking", x1=[[1.0, 2.0], [0.5, -1.0]], x2=[[0.0, 2.5], [0.5, 1.0]],
              target=[[1.0, -1.0], [1.0, -1.0]], margin=0.25, reduction="none"),
        _case("edge-boundary-sum", "margin-ranking", x1=[1.0, 2.0, 0.0], x2=[1.0, 1.5, 0.25], target=[1.0, 1.0, -1.0],
              margin=0.0, reduction="sum"),
    ]

    def make(rng, c):
        shape = {"N": (5,), "ND": (2, 3)}[c["shape"]]
        kw = {"x1": _normal(rng, shape, 1.0, 6), "x2": _normal(rng, shape, 1.0, 6), "target": _pm1(rng, shape)}
        if c["margin"] is not None:
            kw["margin"] = c["margin"]
        kw["reduction"] = c["reduction"]
        return kw

    return fixed, make, _grid(shape=("N", "ND"), margin=(None, 0.5, 1.0), reduction=R3)


def _loss_hinge_embedding(rng):
    fixed = [
        _case("edge-margin-boundary", "hinge-embedding", pred=[1.0, 2.0, 0.5], target=[-1.0, -1.0, -1.0],
              reduction="none"),
        _case("edge-2d-odd-targets", "hinge-embedding", pred=[[0.3, 1.5], [-0.2, 0.7]], target=[[1.0, 0.0], [2.0, -1.0]],
              margin=0.5, reduction="sum"),
    ]

    def make(rng, c):
        shape = _REG_SHAPES[c["shape"]]
        kw = {"pred": _uniform(rng, shape, -0.5, 2.5, 2), "target": _pm1(rng, shape)}
        if c["margin"] is not None:
            kw["margin"] = c["margin"]
        kw["reduction"] = c["reduction"]
        return kw

    return fixed, make, _grid(shape=tuple(_REG_SHAPES), margin=(None, 0.5, 2.0), reduction=R3)


def _loss_cosine_embedding(rng):
    fixed = [
        _case("edge-unbatched", "cosine-embedding", x1=[1.0, 2.0, 3.0], x2=[1.0, 0.0, 1.0], target=-1.0, margin=0.1),
        _case("edge-identical-vectors", "cosine-embedding", x1=[[3.0, 4.0], [3.0, 4.0]], x2=[[3.0, 4.0], [6.0, 8.0]],
              target=[1.0, 1.0], reduction="none"),
        _case("edge-boundary-neg", "cosine-embedding", x1=[[1.0, 0.0]], x2=[[0.0, 1.0]], target=[-1.0], margin=0.0,
              reduction="sum"),
    ]

    def make(rng, c):
        if c["shape"] == "D":
            kw = {"x1": _normal(rng, (4,), 1.0, 2), "x2": _normal(rng, (4,), 1.0, 2),
                  "target": float(rng.choice([-1.0, 1.0]))}
        else:
            kw = {"x1": _normal(rng, (4, 3), 1.0, 2), "x2": _normal(rng, (4, 3), 1.0, 2), "target": _pm1(rng, (4,))}
        if c["margin"] is not None:
            kw["margin"] = c["margin"]
        kw["reduction"] = c["reduction"]
        return kw

    return fixed, make, _grid(shape=("D", "ND"), margin=(None, -0.2, 0.3), rep=(0, 1), reduction=R3)


def _loss_triplet_margin(rng):
    fixed = [
        _case("edge-unbatched", "triplet-margin", anchor=[0.5, -0.5], positive=[0.0, 0.0], negative=[1.0, -1.0]),
        _case("edge-swap-p2-none", "triplet-margin", anchor=[[0.0, 0.0], [1.0, 1.0], [0.5, -0.5]],
              positive=[[1.0, 0.0], [1.0, 2.0], [0.0, 0.0]], negative=[[0.0, 2.0], [1.0, 1.5], [1.0, -1.0]],
              swap=True, reduction="none"),
        _case("edge-eps0-identical", "triplet-margin", anchor=[[1.0, 2.0]], positive=[[1.0, 2.0]],
              negative=[[1.0, 2.0]], eps=0.0, reduction="sum"),
    ]

    def make(rng, c):
        shape = {"D": (3,), "ND": (4, 3)}[c["shape"]]
        kw = {k: _normal(rng, shape, 1.0, 2) for k in ("anchor", "positive", "negative")}
        for k in ("margin", "p", "eps"):
            if c[k] is not None:
                kw[k] = c[k]
        if c["swap"]:
            kw["swap"] = True
        kw["reduction"] = c["reduction"]
        return kw

    return fixed, make, _grid(shape=("D", "ND"), margin=(None, 2.0), p=(None, 1, 3), eps=(None, 0.0),
                              swap=(False, True), reduction=R3)


_CTC_LP = [[[-1.1041306053367284, -0.6041306053367284, -2.1041306053367284],
            [-1.201942848229244, -1.101942848229244, -1.001942848229244]],
           [[-0.26636789980713366, -2.7663678998071335, -1.7663678998071337],
            [-2.1698460195562856, -0.16984601955628567, -3.1698460195562856]],
           [[-1.3408049286396913, -1.3408049286396913, -0.7408049286396912],
            [-0.5514447139320511, -1.551444713932051, -1.551444713932051]],
           [[-1.7120668138213548, -0.7120668138213547, -1.1120668138213547],
            [-1.0986122886681098, -1.0986122886681098, -1.0986122886681098]]]


def _loss_ctc(rng):
    fixed = [
        _case("edge-zero-infinity-none", "ctc", log_probs=_CTC_LP, target=[1, 2, 1, 1], input_lengths=[4, 2],
              target_lengths=[2, 2], zero_infinity=True, reduction="none"),
        _case("edge-zero-infinity-mean", "ctc", log_probs=_CTC_LP, target=[1, 2, 1, 1], input_lengths=[4, 2],
              target_lengths=[2, 2], zero_infinity=True, reduction="mean"),
        _case("edge-zero-infinity-sum", "ctc", log_probs=_CTC_LP, target=[1, 2, 1, 1], input_lengths=[4, 2],
              target_lengths=[2, 2], zero_infinity=True, reduction="sum"),
        _case("edge-unbatched", "ctc", log_probs=[row[0] for row in _CTC_LP], target=[1, 2], input_lengths=4,
              target_lengths=2),
        _case("edge-blank-last", "ctc", log_probs=_CTC_LP, target=[[0, 1], [1, 1]], input_lengths=[4, 4],
              target_lengths=[2, 1], blank=2, reduction="sum"),
        _case("edge-unnormalised-log-probs", "ctc",
              log_probs=[[[0.5, 1.0, -0.5]], [[1.5, -1.0, 0.0]], [[0.3, 0.3, 0.9]]], target=[[1]],
              input_lengths=[3], target_lengths=[1], reduction="sum"),
    ]

    def make(rng, c):
        T, C, S = 7, 4, 3  # input lengths >= 2S: every random alignment is feasible
        blank = 0 if c["blank"] is None else c["blank"]
        labels = [k for k in range(C) if k != blank]
        if c["shape"] == "TC":
            L = int(rng.integers(1, S + 1))
            kw = {"log_probs": _log_probs(rng, (T, C), 1, 5), "target": [int(v) for v in rng.choice(labels, L)],
                  "input_lengths": T, "target_lengths": L}
        else:
            N = 3
            tl = [int(v) for v in rng.integers(0 if c["shape"] == "TNC0" else 1, S + 1, size=N)]
            il = [int(v) for v in rng.integers(2 * S, T + 1, size=N)]
            il[0] = T
            if c["concat"]:
                tgt = [int(v) for v in rng.choice(labels, sum(tl))]
            else:
                tgt = rng.choice(labels, (N, S)).tolist()
                tgt = [[int(v) for v in row] for row in tgt]
            kw = {"log_probs": _log_probs(rng, (T, N, C), 2, 5), "target": tgt, "input_lengths": il,
                  "target_lengths": tl}
        if c["blank"] is not None:
            kw["blank"] = c["blank"]
        kw["reduction"] = c["reduction"]
        return kw

    return fixed, make, _grid(shape=("TC", "TNC", "TNC0"), concat=(False, True), blank=(None, 3), reduction=R3)


def _loss_focal(rng):
    fixed = [
        _case("seed-S7-easy-probs", "focal", probs=[[0.9], [0.1]], target=[[1.0], [0.0]], alpha=0.75, gamma=2),
        _case("seed-S7-hard-probs", "focal", probs=[[0.5], [0.5]], target=[[1.0], [0.0]], alpha=0.75, gamma=2),
        _case("edge-default-reduction-mean", "focal", logits=[[1.2, -0.4, 3.0], [-2.0, 0.0, 0.7]],
              target=[[1.0, 0.0, 0.0], [1.0, 1.0, 0.0]]),
        _case("edge-logits-1e4", "focal", logits=[1e4, -1e4, 1e4, -1e4], target=[1.0, 0.0, 0.0, 1.0],
              reduction="none"),
        _case("edge-logits-1e300", "focal", logits=[1e300, -1e300, 0.5], target=[0.0, 1.0, 1.0], reduction="sum"),
        _case("edge-probs-saturated", "focal", probs=[0.0, 1.0, 1.0, 0.0, 0.3], target=[1.0, 1.0, 0.0, 0.0, 1.0],
              reduction="none"),
        _case("edge-soft-target", "focal", logits=[0.3, -1.2, 2.0], target=[0.25, 0.5, 0.9], gamma=1.5),
        _case("edge-probs-alpha-off-gamma0", "focal", probs=[[0.2, 0.9], [0.6, 0.4]], target=[[0.0, 1.0], [1.0, 0.0]],
              alpha=-1, gamma=0, reduction="sum"),
    ]

    def make(rng, c):
        shape = {"N": (5,), "NC": (3, 4), "NCd": (2, 3, 2)}[c["shape"]]
        kw: dict = {}
        if c["kind"] == "logits":
            kw["logits"] = _normal(rng, shape, 2.0)
        else:
            kw["probs"] = _uniform(rng, shape, 0.02, 0.98)
        kw["target"] = _bits(rng, shape)
        if c["alpha"] is not None:
            kw["alpha"] = c["alpha"]
        if c["gamma"] is not None:
            kw["gamma"] = c["gamma"]
        kw["reduction"] = c["reduction"]
        return kw

    return fixed, make, _grid(kind=("logits", "probs"), shape=("N", "NC", "NCd"), alpha=(None, 0.75, -1.0),
                              gamma=(None, 0.0, 1.0, 1.5), reduction=R3)


def _loss_sce(rng):
    fixed = [
        _case("seed-S4-logits", "sce", logits=[[10.0, 0.0, -10.0], [8.0, 8.0, 8.0]], target=[0, 2]),
        _case("seed-S10-softmax", "sce", logits=[[3.0, 1.0, -3.0]], target=[0], reduction="none"),
        _case("seed-paper-weights", "sce", logits=[[1.0, 2.0, 0.5], [0.0, -1.0, 3.0], [2.0, 2.0, 2.0]],
              target=[1, 0, 2], alpha=0.1, beta=1.0),
        _case("edge-saturated-clamp", "sce", logits=[[50.0, 0.0, 0.0], [0.0, -30.0, 0.0], [1e4, -1e4, 0.0]],
              target=[0, 1, 1], reduction="none"),
        _case("edge-alpha0-sum", "sce", logits=[[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]], target=[1, 2], alpha=0.0,
              beta=2.0, reduction="sum"),
        _case("edge-beta0-equals-ce", "sce", logits=[[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]], target=[1, 2], alpha=1.0,
              beta=0.0),
    ]

    def make(rng, c):
        N, C = 4, c["C"]
        kw = {"logits": _normal(rng, (N, C), 2.0), "target": _ints(rng, (N,), 0, C)}
        if c["ab"] is not None:
            kw["alpha"], kw["beta"] = c["ab"]
        kw["reduction"] = c["reduction"]
        return kw

    return fixed, make, _grid(C=(3, 5), ab=(None, (0.1, 1.0), (1.0, 0.5)), rep=(0, 1), reduction=R3)


def _binary_margin(loss):
    def make(rng, c):
        shape = _REG_SHAPES[c["shape"]]
        kw = {"pred": _normal(rng, shape, 1.2, 2)}
        kw["target"] = _pm1(rng, shape) if c["labels"] == "pm1" else _bits(rng, shape)
        kw["reduction"] = c["reduction"]
        return kw

    return make, _grid(shape=tuple(_REG_SHAPES), labels=("pm1", "01"), rep=(0, 1), reduction=R3)


def _loss_hinge(rng):
    fixed = [
        _case("edge-boundary", "hinge", pred=[1.0, -1.0, 0.5, 2.0], target=[1.0, -1.0, 1.0, 0.0], reduction="none"),
        _case("edge-01-labels-mean", "hinge", pred=[0.3, -0.7, 1.5, -2.0], target=[1.0, 0.0, 0.0, 1.0]),
        _case("edge-scalar", "hinge", pred=0.25, target=1.0, reduction="sum"),
    ]
    make, grid = _binary_margin("hinge")
    return fixed, make, grid


def _loss_exponential(rng):
    fixed = [
        _case("edge-01-labels", "exponential", pred=[0.3, -0.7, 1.5, -2.0], target=[1.0, 0.0, 0.0, 1.0],
              reduction="none"),
        _case("edge-large", "exponential", pred=[30.0, -30.0], target=[1.0, 1.0], reduction="sum"),
        _case("edge-scalar", "exponential", pred=0.5, target=-1.0),
    ]
    make, grid = _binary_margin("exponential")
    return fixed, make, grid


def _loss_zero_one(rng):
    fixed = [
        _case("edge-argmax-tie-first", "zero-one", logits=[[1.0, 1.0, 0.0], [0.0, 2.0, 2.0]], target=[1, 1],
              reduction="none"),
        _case("edge-probs", "zero-one", probs=[[0.2, 0.7, 0.1], [0.6, 0.1, 0.3], [0.3, 0.3, 0.4]], target=[1, 2, 2]),
        _case("edge-unbatched", "zero-one", logits=[0.5, 2.0, -1.0], target=1, reduction="sum"),
        _case("edge-Kdim", "zero-one", logits=[[[0.5, 1.0], [2.0, -1.0], [0.0, 3.0]]], target=[[1, 2]],
              reduction="none"),
        _case("edge-threshold-boundary", "zero-one", pred=[1.0, 2.0, 3.0, 4.5], target=[1.5, 2.0, 2.0, 4.0],
              threshold=0.5, reduction="none"),
        _case("edge-exact", "zero-one", pred=[1.0, 2.0, 3.0, 0.0], target=[1.0, 2.5, 3.0, 1.0]),
    ]

    def make(rng, c):
        kind = c["kind"]
        if kind == "pred":
            shape = (6,) if c["shape"] == "NC" else (2, 3)
            pred = np.array(_normal(rng, shape, 1.0, 1))
            target = np.round(pred + rng.choice([0.0, 0.3, -0.6, 1.2], size=shape), 1)
            kw = {"pred": pred.tolist(), "target": target.tolist()}
            if c["threshold"] is not None:
                kw["threshold"] = c["threshold"]
        else:
            if c["threshold"] is not None:
                return None
            shape, cdim = CLS_SHAPES[c["shape"]]
            x = _normal(rng, shape, 2.0) if kind == "logits" else _probs(rng, shape, cdim)
            kw = {kind: x, "target": _index_target(rng, shape, cdim, shape[cdim])}
        kw["reduction"] = c["reduction"]
        return kw

    return fixed, make, _grid(kind=("logits", "probs", "pred"), shape=("NC", "C", "NCd"), threshold=(None, 0.5),
                              reduction=R3)


TABLES: dict[str, Callable] = {
    "ce": _loss_ce, "nll": _loss_nll, "bce": _loss_bce, "bce-logits": _loss_bce_logits, "kl": _loss_kl,
    "mse": _loss_mse, "l1": _loss_l1, "smooth-l1": _loss_smooth_l1, "huber": _loss_huber,
    "poisson-nll": _loss_poisson_nll, "gaussian-nll": _loss_gaussian_nll, "soft-margin": _loss_soft_margin,
    "multilabel-soft-margin": _loss_multilabel_soft_margin, "multilabel-margin": _loss_multilabel_margin,
    "multi-margin": _loss_multi_margin, "margin-ranking": _loss_margin_ranking,
    "hinge-embedding": _loss_hinge_embedding, "cosine-embedding": _loss_cosine_embedding,
    "triplet-margin": _loss_triplet_margin, "ctc": _loss_ctc, "focal": _loss_focal, "sce": _loss_sce,
    "hinge": _loss_hinge, "exponential": _loss_exponential, "zero-one": _loss_zero_one,
}


def _load(name: str, path: Path):
    """The module at ``path`` (the tests are not a package), loaded once under ``name``."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    sys.modules[name] = mod  # before running it: dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def oracles() -> dict:
    """The oracle table, tests/torch_reference.py's ``ORACLES`` (torch is imported only to compute)."""
    return _load("torch_reference", ROOT / "tests" / "torch_reference.py").ORACLES


def registered() -> tuple[str, ...]:
    """Every registered loss PyTorch has, in registry order: the losses the fixture files cover
    (the others are checked against their home framework: tests/tools/make_framework_fixtures.py)."""
    import lossctl

    return tuple(s.name for s in lossctl.registry().specs if "torch" in s.convention_names)


def _example_table(loss: str):
    """A case table from the loss's oracle example: every prediction kind × every reduction."""
    import lossctl

    spec = lossctl.registry().get(loss)
    if loss not in oracles():
        raise KeyError(f"{loss}: no entry in the oracle table (tests/torch_reference.py ORACLES)")
    example = oracles()[loss].example

    def make(rng, c):
        call = example(rng, c["kind"])
        call = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in call.items()}
        return {**call, "reduction": c["reduction"]}

    return [], make, _grid(kind=tuple(spec.kinds), reduction=tuple(spec.reductions), rep=(0, 1))


def case_table(loss: str, rng):
    """(fixed cases, random generator, grid) of ``loss``: its hand-written table, else its example's."""
    if loss in TABLES:
        return TABLES[loss](rng)
    return _example_table(loss)


# --------------------------------------------------------------------------- the table


def golden_cases(loss: str) -> list[dict]:
    """The golden cases of ``loss`` (:data:`GOLDEN`; their short ``md`` name kept under ``_md``)."""
    out = []
    for g in GOLDEN:
        if g["loss"] != loss:
            continue
        g = dict(g)
        md = g.pop("md")
        case = {"name": f"{loss}/golden-{md}", "loss": loss}
        case.update(g)
        case["_md"] = md
        out.append(case)
    return out


def random_cases(loss: str, seed: int, full: bool, limit: int | None = None) -> list[dict]:
    """Seeded random cases over the loss's grid; ``full``: the whole grid, else ``limit`` points
    (sampled so that every reduction occurs)."""
    rng = np.random.default_rng([seed, zlib.crc32(loss.encode())])
    _, make, grid = case_table(loss, rng)
    points = list(range(len(grid)))
    if not full:
        order = list(rng.permutation(len(grid)))
        # round-robin over reductions so each appears
        by_red: dict[str, list[int]] = {}
        for i in order:
            by_red.setdefault(grid[i]["reduction"], []).append(i)
        points = []
        while len(points) < len(grid) and any(by_red.values()):
            for red in list(by_red):
                if by_red[red]:
                    points.append(by_red[red].pop(0))
    out = []
    for i in points:
        combo = grid[i]
        kw = make(rng, combo)
        if kw is None:
            continue
        tag = _tag({k: v for k, v in combo.items() if k != "rep"})
        case = {"name": f"{loss}/r{seed}-{i:03d}-{tag}", "loss": loss}
        case.update(kw)
        out.append(case)
        if limit is not None and len(out) >= limit:
            break
    return out


def fixed_cases(loss: str) -> list[dict]:
    """Golden + seed + edge cases of ``loss`` (deterministic)."""
    fixed, _, _ = case_table(loss, np.random.default_rng(0))
    return golden_cases(loss) + fixed


def build_cases(seed: int = 0, full: bool = False, losses: Iterable[str] | None = None) -> dict[str, list[dict]]:
    """The table: loss → list of case dicts (no ``expect``; ``_md`` marks golden cases).

    ``full=False``: what the fixture files hold (≤ MAX_FIXTURE_CASES per loss, at least
    MIN_RANDOM_IN_FIXTURE random ones). ``full=True``: every fixed case plus the whole
    random grid (used by tests/test_torch_live.py).
    """
    table = {}
    for loss in registered() if losses is None else losses:
        fixed = fixed_cases(loss)
        if full:
            rand = random_cases(loss, seed, full=True)
        else:
            n = max(MIN_RANDOM_IN_FIXTURE, MAX_FIXTURE_CASES - len(fixed))
            rand = random_cases(loss, seed, full=False, limit=n)
        cases = fixed + rand
        names = [c["name"] for c in cases]
        assert len(names) == len(set(names)), f"duplicate case names in {loss}"
        table[loss] = cases
    return table


def public(case: dict) -> dict:
    """The case as lossctl sees it: without ``_``-prefixed bookkeeping keys."""
    return {k: v for k, v in case.items() if not k.startswith("_")}


# --------------------------------------------------------------------------- writing


def _load_reference():
    return _load("torch_reference", ROOT / "tests" / "torch_reference.py")


def _close(a, b, rtol) -> bool:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=rtol, atol=1e-300, equal_nan=True))


def self_check(ref, case: dict) -> list[str]:
    """Extra consistency checks of the reference on one case (conversions vs torch built-ins)."""
    import torch
    import torch.nn.functional as F

    problems = []
    c = public(case)
    if c["loss"] == "ce" and "logits" in c:
        # ce_from_log_probs(log_softmax(x)) must reproduce F.cross_entropy(x) (value).
        x = torch.tensor(c["logits"], dtype=torch.float64)
        cdim = 1 if x.dim() >= 2 else 0
        tgt = ref._ce_target(c, x)
        w = None if c.get("weight") is None else torch.tensor(c["weight"], dtype=torch.float64)
        args = (tgt, w, int(c.get("ignore_index", -100)), c.get("reduction", "mean"),
                float(c.get("label_smoothing", 0.0)))
        mine = ref.ce_from_log_probs(F.log_softmax(x, cdim), *args)
        theirs = F.cross_entropy(x, tgt, weight=w, ignore_index=args[2], reduction=args[3], label_smoothing=args[4])
        if not _close(mine.numpy(), theirs.numpy(), 1e-12):
            problems.append(f"{c['name']}: ce_from_log_probs {mine.tolist()} != F.cross_entropy {theirs.tolist()}")
    return problems


def compute_case(ref, case: dict) -> dict:
    out = public(case)
    out["expect"] = ref.reference(out)
    return out


def dump_fixture(torch_version: str, cases: list[dict]) -> str:
    head = json.dumps({"torch_version": torch_version, "generated_by": GENERATED_BY})[:-1]
    body = ",\n".join(json.dumps(c, allow_nan=False) for c in cases)
    return f'{head}, "cases": [\n{body}\n]}}\n'


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("losses", nargs="*", help="registry names (default: all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--check", action="store_true", help="compare with the existing files, write nothing")
    args = ap.parse_args(argv)

    import torch

    torch.set_default_dtype(torch.float64)
    ref = _load_reference()
    ref.load_torch()
    known = registered()
    losses = args.losses or list(known)
    unknown = [n for n in losses if n not in known]
    if unknown:
        ap.error(f"unknown loss: {', '.join(unknown)}")
    missing = [n for n in losses if n not in ref.ORACLES]
    if missing:
        ap.error(f"no entry in the oracle table (tests/torch_reference.py ORACLES) for: {', '.join(missing)}")

    table = build_cases(seed=args.seed, full=False, losses=losses)
    problems: list[str] = []
    stale = []
    total = 0
    for loss, cases in table.items():
        out = []
        for case in cases:
            problems += self_check(ref, case)
            out.append(compute_case(ref, case))
        text = dump_fixture(torch.__version__, out)
        path = FIXTURE_DIR / f"{loss}.json"
        total += len(text)
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(loss)
        else:
            FIXTURE_DIR.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        print(f"{loss:24s} {len(out):3d} cases  {len(text):7d} bytes")
    print(f"total {total} bytes")
    for p in problems:
        print("MISMATCH", p, file=sys.stderr)
    if stale:
        print("stale fixture files: " + ", ".join(stale), file=sys.stderr)
    return 1 if problems or stale else 0


if __name__ == "__main__":
    sys.exit(main())
