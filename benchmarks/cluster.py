#!/usr/bin/env python
"""``lossctl ce`` on a sharded dump: the local streaming engine against ``--backend dask``.

    nice python benchmarks/cluster.py              # 4 GB: 1,000,000 x 1,000 float32 in 16 .npy shards
    python benchmarks/cluster.py --gb 0.2 --pairs 2  # a smoke test

Writes the dump under ``--dir`` (default /tmp/lossctl-dask-bench; deleted afterwards unless
``--keep``), then times the same command line, every run a fresh ``lossctl`` process:

* ``local``: ``lossctl ce --logits DIR -t t.npy`` (the shards streamed here, 2 threads);
* ``dask-N``: the same with ``--backend dask`` on a local cluster of N workers started and
  closed by the call, as a user sees it (``LOSSCTL_DASK_WORKERS``; worker threads in the
  lossctl process), N = 1, 2; ``dask-2, worker processes``: the same with
  ``LOSSCTL_DASK_PROCESSES=1`` (each call spawns its worker processes);
* ``dask-N, running cluster``: ``--scheduler`` to a cluster of N worker processes started once
  before and used once untimed (the steady state on an existing cluster: no start-up).

The runs are paired and interleaved (A B A B: local, then each Dask variant, ``--pairs``
times); a ratio is the median of the per-pair ratios (each Dask run over the local run of its
pair), so load that drifts during the benchmark hits both sides of a pair. The load average
is printed at the start and end. Peak RSS is the ``lossctl`` client process's own high-water
mark (``VmHWM``), not the workers'. Every result is checked to be the same float, bit for bit.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
CHILD = """
import sys, time
from lossctl.cli.app import main
t0 = time.perf_counter()
code = main(sys.argv[1:])
elapsed = time.perf_counter() - t0
hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]
sys.stderr.write(f"\\nBENCH {code} {elapsed} {hwm}\\n")
"""


def make_dump(d: Path, gb: float, classes: int, shards: int) -> tuple[int, Path, Path]:
    rows = int(gb * 1e9 / 4 / classes)
    d.mkdir(parents=True, exist_ok=True)
    logits = d / "logits"
    logits.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    bounds = np.linspace(0, rows, shards + 1).astype(int)
    for k in range(shards):
        n = int(bounds[k + 1] - bounds[k])
        out = np.lib.format.open_memmap(logits / f"logits-{k:05d}-of-{shards:05d}.npy", mode="w+",
                                        dtype=np.float32, shape=(n, classes))
        for i in range(0, n, 8192):
            j = min(n, i + 8192)
            out[i:j] = rng.standard_normal((j - i, classes), dtype=np.float32) * 3
        out.flush()
        del out
    target = d / "t.npy"
    np.save(target, rng.integers(0, classes, rows))
    return rows, logits, target


def run(argv: list[str], env: dict) -> tuple[float, float, int]:
    """(seconds, the loss, peak RSS of the client in KiB) of one ``lossctl`` process."""
    p = subprocess.run([sys.executable, "-c", CHILD, *argv], capture_output=True, text=True, env=env)
    line = [l for l in p.stderr.splitlines() if l.startswith("BENCH ")]
    if p.returncode or not line:
        raise SystemExit(f"failed: {' '.join(argv)}\n{p.stderr[-2000:]}")
    _, code, elapsed, hwm = line[-1].split()
    return float(elapsed), float(p.stdout.strip()), int(hwm)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gb", type=float, default=4.0)
    ap.add_argument("--classes", type=int, default=1000)
    ap.add_argument("--shards", type=int, default=16)
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--dir", default="/tmp/lossctl-dask-bench")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args(argv)
    logging.getLogger("distributed").setLevel(logging.ERROR)

    d = Path(args.dir)
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    print(f"load average at start: {os.getloadavg()}", flush=True)
    t0 = time.perf_counter()
    rows, logits, target = make_dump(d, args.gb, args.classes, args.shards)
    size = sum(p.stat().st_size for p in logits.iterdir())
    print(f"dump: {rows:,} x {args.classes:,} float32, {args.shards} shards, {size / 1e9:.2f} GB "
          f"(written in {time.perf_counter() - t0:.0f} s)", flush=True)
    base = ["ce", "--logits", str(logits), "-t", str(target)]
    clusters = {}
    try:
        import distributed

        for n in (1, 2):
            c = distributed.LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
                                         silence_logs=50, env={"PYTHONPATH": env["PYTHONPATH"]})
            clusters[n] = c
        variants = {"local": (base, env)}
        for n in (1, 2):
            variants[f"dask-{n}"] = (base + ["--backend", "dask"], dict(env, LOSSCTL_DASK_WORKERS=str(n)))
        variants["dask-2, worker processes"] = (base + ["--backend", "dask"],
                                                dict(env, LOSSCTL_DASK_WORKERS="2", LOSSCTL_DASK_PROCESSES="1"))
        for n in (1, 2):
            variants[f"dask-{n}, running cluster"] = (
                base + ["--backend", "dask", "--scheduler", clusters[n].scheduler_address], env)
        run(base, env)  # the dump into the page cache, imports warm
        for name, (cmd, e) in variants.items():
            if "running cluster" in name:
                run(cmd, e)  # the running workers warm (their imports done once, as on a cluster in use)
        times = {k: [] for k in variants}
        rss = {k: [] for k in variants}
        losses = set()
        for pair in range(args.pairs):
            for name, (cmd, e) in variants.items():
                elapsed, loss, hwm = run(cmd, e)
                times[name].append(elapsed)
                rss[name].append(hwm)
                losses.add(np.float64(loss).tobytes())
                print(f"  pair {pair + 1} {name}: {elapsed:.2f} s, client peak RSS {hwm / 1024:.0f} MiB, "
                      f"load {os.getloadavg()[0]:.1f}", flush=True)
    finally:
        for c in clusters.values():
            c.close()
        if not args.keep:
            shutil.rmtree(d, ignore_errors=True)
    same = len(losses) == 1
    print()
    print("| run | median time | ratio to local (median of paired ratios) | client peak RSS (max) |")
    print("|---|---|---|---|")
    for name in times:
        ratios = [t / l for t, l in zip(times[name], times["local"])]
        print(f"| {name} | {statistics.median(times[name]):.2f} s | {statistics.median(ratios):.2f} | "
              f"{max(rss[name]) / 1024:.0f} MiB |")
    for label in ("dask-", "dask-{}, running cluster"):
        one = label.format(1) if "{}" in label else "dask-1"
        two = label.format(2) if "{}" in label else "dask-2"
        scaling = [a / b for a, b in zip(times[one], times[two])]
        print(f"\n1 -> 2 workers ({one} / {two}, median of paired ratios): {statistics.median(scaling):.2f}x")
    print(f"\nevery run gave the same loss bit for bit: {same}")
    print(f"load average at end: {os.getloadavg()}")
    print(f"{os.cpu_count()} cores; Python {sys.version.split()[0]}, NumPy {np.__version__}, "
          f"distributed {__import__('distributed').__version__}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
