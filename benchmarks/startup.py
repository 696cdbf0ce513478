#!/usr/bin/env python
"""Start-up of a small call, in CPU time, paired with ``python -c "import numpy"``.

    python benchmarks/startup.py            # 15 pairs
    python benchmarks/startup.py --runs 31
    python benchmarks/startup.py --source   # lossctl compiled from source on every start

Runs ``lossctl ce --logits '[[1,2]]' --target '[0]'`` (as ``python -m lossctl``) and
``python -c "import numpy"`` alternately (A B A B ...), takes each child's user and user+system
CPU time from ``resource.getrusage(RUSAGE_CHILDREN)`` (on a loaded machine the wall time is
mostly waiting; the CPU time is what the call itself costs) and prints the medians and the
median of the per-pair ratios. By default lossctl's bytecode is compiled first (as pip installs
it); ``--source`` removes lossctl's ``__pycache__`` and runs with PYTHONDONTWRITEBYTECODE=1, as a
checkout without bytecode starts (numpy keeps its installed bytecode either way). Target: <= 1.3 x (benchmarks/run.py target 5 measures wall time).
"""

from __future__ import annotations

import argparse
import os
import shutil
import resource
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OURS = [sys.executable, "-m", "lossctl", "ce", "--logits", "[[1,2]]", "--target", "[0]"]
REF = [sys.executable, "-c", "import numpy"]
ENV = dict(os.environ)


def cpu(cmd: list[str]) -> tuple[float, float]:
    """(user, user + system) CPU seconds of one run of ``cmd``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    r = subprocess.run(cmd, capture_output=True, text=True, env=ENV)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr[-300:]}")
    user = after.ru_utime - before.ru_utime
    return user, user + after.ru_stime - before.ru_stime


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=15, help="pairs (default 15)")
    ap.add_argument("--source", action="store_true", help="no bytecode for lossctl: compile it on every start")
    args = ap.parse_args(argv)
    if args.source:
        for cache in (ROOT / "lossctl").rglob("__pycache__"):
            shutil.rmtree(cache)
        ENV["PYTHONDONTWRITEBYTECODE"] = "1"
    else:  # an installed package has its bytecode compiled (pip does it); a checkout may not
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "lossctl")], capture_output=True)
    for _ in range(2):  # warm the page cache
        cpu(OURS), cpu(REF)
    pairs = [(cpu(OURS), cpu(REF)) for _ in range(args.runs)]
    for i, label in ((0, "user"), (1, "user+sys")):
        ours = statistics.median(p[0][i] for p in pairs)
        ref = statistics.median(p[1][i] for p in pairs)
        ratio = statistics.median(p[0][i] / p[1][i] for p in pairs if p[1][i] > 0)
        print(f"{label:9s} lossctl ce {ours * 1000:6.0f} ms   import numpy {ref * 1000:6.0f} ms   ratio {ratio:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
