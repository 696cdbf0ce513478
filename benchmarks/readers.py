#!/usr/bin/env python
"""Reading a large bfloat16 tensor file: lossctl's readers against safetensors and torch.

    python benchmarks/readers.py            # 1 GiB of bfloat16 (4,096 x 131,072), in /tmp
    python benchmarks/readers.py --gib 0.1  # smaller

Writes one ``.safetensors`` (safetensors' writer) and one ``.pt`` (``torch.save``)
of the same bfloat16 tensor, then times, alternating the readers, medians of
``--runs`` runs (the files stay in the page cache: this measures decoding, not
the disk):

* open: the tensor ready to use (lossctl: header checked, memory-mapped, not
  widened; torch: ``safe_open(...).get_tensor`` / ``torch.load(mmap=True)``);
* float32: every value widened to float32 in memory (lossctl: ``widen``;
  torch: ``.float()`` on the loaded tensor);
* float64 by blocks: widened block by block into one reused float64 buffer,
  as the streaming engine does (the whole tensor never in memory).

Needs torch and safetensors (the references). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def median(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gib", type=float, default=1.0)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--dir", default=tempfile.gettempdir())
    args = ap.parse_args(argv)

    import torch
    from safetensors import safe_open
    from safetensors.torch import save_file

    from lossctl.io.encoded import widen
    from lossctl.io.readers import read_array
    from lossctl.io.sources import parse_source

    v = 131_072
    rows = max(1, int(args.gib * (1 << 30) / (2 * v)))
    d = Path(args.dir)
    st_path, pt_path = d / "lossctl-bench.safetensors", d / "lossctl-bench.pt"
    g = torch.Generator().manual_seed(0)
    x = torch.empty(rows, v, dtype=torch.bfloat16)
    for i in range(0, rows, 256):
        x[i:i + 256] = (torch.randn(min(256, rows - i), v, generator=g) * 4).to(torch.bfloat16)
    save_file({"logits": x}, str(st_path))
    torch.save({"logits": x}, pt_path)
    ref = x[:8].double().numpy()
    del x
    gb = rows * v * 2 / 1e9
    print(f"# {rows:,} x {v:,} bfloat16 = {gb:.2f} GB; {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores, Python {platform.python_version()}, torch {torch.__version__}", file=sys.stderr)

    def ours(path):
        return read_array(parse_source(f"{path}:logits"), "bench", lazy=True)

    assert np.array_equal(ours(st_path)[:8].widen(np.float64), ref)
    assert np.array_equal(ours(pt_path)[:8].widen(np.float64), ref)

    def blocks(a, block_rows=32):
        buf = np.empty((block_rows, v))
        total = 0.0
        for i in range(0, rows, block_rows):
            part = a[i:i + block_rows]
            out = widen(part, out=buf[:len(part)])
            total += float(out[0, 0])
        return total

    results = []
    for name, path in (("safetensors", st_path), (".pt", pt_path)):
        if name == "safetensors":
            def t_open():
                with safe_open(str(path), "pt") as f:
                    return f.get_tensor("logits")
        else:
            def t_open():
                return torch.load(path, mmap=True, weights_only=True)["logits"]
        rows_out = [
            ("open", median(lambda: ours(path), args.runs), median(t_open, args.runs)),
            ("float32", median(lambda: ours(path).widen(np.float32), args.runs),
             median(lambda: t_open().float(), args.runs)),
            ("float64 by blocks of 32 rows", median(lambda: blocks(ours(path)), args.runs),
             median(lambda: blocks_torch(t_open(), rows, v), args.runs)),
        ]
        results += [(name, *r) for r in rows_out]
    print("| file | step | lossctl | torch / safetensors | ratio |")
    print("| --- | --- | --- | --- | --- |")
    for name, step, a, b in results:
        print(f"| {name} | {step} | {a * 1e3:,.1f} ms ({gb / a:.2f} GB/s) | {b * 1e3:,.1f} ms ({gb / b:.2f} GB/s) | "
              f"{a / b:.2f}x |")
    st_path.unlink()
    pt_path.unlink()
    return 0


def blocks_torch(t, rows: int, v: int, block_rows: int = 32) -> float:
    import torch

    buf = torch.empty(block_rows, v, dtype=torch.float64)
    total = 0.0
    for i in range(0, rows, block_rows):
        part = t[i:i + block_rows]
        buf[:len(part)].copy_(part)
        total += float(buf[0, 0])
    return total


if __name__ == "__main__":
    raise SystemExit(main())
