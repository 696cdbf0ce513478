"""Check suites: load a suite file into cases, run them through :func:`lossctl.api.compute`.

Nothing here prints. :mod:`lossctl.render.check` renders a :class:`SuiteReport` (and
:mod:`lossctl.render.junit` as JUnit XML); :mod:`lossctl.suite.update` rewrites the ``expect``
values in place (``--update``) and :mod:`lossctl.suite.record` appends cases (``lossctl record``).

A suite::

    name: seeds                 # optional: the suite's name in reports (default: the file's stem)
    rtol: 1.0e-9                # optional suite-wide tolerances (same as defaults: {rtol, atol})
    defaults:                   # optional: keys every case gets unless it sets them itself
      reduction: mean
    cases:
      - name: seed-ce           # optional; generated as LOSS-N (N = position, 1-based) when absent
        loss: ce
        logits: [[10.0, 0.0, -10.0], [8.0, 8.0, 8.0]]   # inline list or number ...
        target: data/y.npy      # ... or a string: a source, paths relative to the suite file
        expect: 0.549329        # or {loss: ..., per_sample: ..., grad: {logits: ...}}
        atol: 1.0e-6

Rules:

* every key of a case is a key of the loss command in snake case: the inputs,
  the loss's parameters, ``reduction``, ``dtype``, ``dim``, ``rtol``, ``atol``,
  ``expect``, ``expect_per_sample``, ``expect_grad``, and the booleans
  ``per_sample`` / ``grad`` (which quantities ``--update`` pins when it adds an
  ``expect``); plus ``name``. Output-only options (``format``, ``output``, ...)
  do not apply. A value is a source (file, ``FILE:KEY``, literal text) iff it
  is a string.
* precedence: a case's own key, then ``defaults``, then the suite's top-level
  ``rtol``/``atol``, then the command-line defaults (rtol 1e-7, atol 1e-9). A
  ``defaults`` parameter applies only to cases whose loss takes it (it must fit
  at least one case).
* a malformed suite (unknown or misspelt key, wrong type, unknown loss, bad
  reduction, a YAML error, ...) raises :class:`~lossctl.errors.InputError`
  naming the file, line, case and key of every problem; no case runs.
* problems that show only when a case runs (a missing file, a wrong shape, an
  out-of-range class index, a missing input) make that case an *error*; the
  other cases still run.
* a case without any expectation fails ("nothing to check").
* exit code of a run: 4 if a case hit an internal error, else 3 if any case is
  an error, else 1 if any case failed a check, else 0.
"""

from __future__ import annotations

from .load import load_suite, parse_suite
from .model import Case, Quantity, Suite
from .run import CaseResult, suite_reader, SuiteReport, materialize, run_case, run_suite, select, source_paths
from .yamlnodes import compose

__all__ = ["Case", "CaseResult", "Quantity", "Suite", "SuiteReport", "load_suite", "parse_suite", "run_suite",
           "run_case", "select", "source_paths", "suite_reader",
           "materialize", "compose"]
