#!/usr/bin/env python
"""Token-batch performance targets, measured side by side with PyTorch in the same run.

    python benchmarks/lm.py              # the full run (writes a 2.1 GB bfloat16 .safetensors to --big-dir)
    python benchmarks/lm.py --quick      # small sizes: a smoke test
    python benchmarks/lm.py --only 1     # one target (1 file, 2 in process, 3 linear-ce)

Targets:

1. ``lossctl lm --logits F.safetensors:logits --labels Y.npy --format plain`` on a bfloat16 dump of
   8,192 tokens x 128,256 vocabulary: peak RSS <= 300 MiB; wall time <= 0.5 x a torch script that
   loads the same file (``safetensors.torch.load_file``) and computes ``F.cross_entropy`` in float32;
   the result within 1e-12 relative of torch float64 (computed in chunks of 256 rows, summed).
2. In process, (B·T, V) float32 and bfloat16 at V = 32,000 and 128,256: ``lossctl.tokens.lm``
   (float64 math) <= 1.0 x torch's ``F.cross_entropy`` on float32 (bfloat16 given to lossctl as
   stored, raw bits; to torch widened to float32 beforehand, not timed).
3. ``linear-ce`` N = 1,024, D = 1,024, V = 128,256: peak memory above the interpreter <= 1.3 x the
   inputs' size (float32 hidden and lm-head); time with dtype float32 <= 1.2 x
   ``F.linear_cross_entropy`` float32, forward (the loss) and forward + backward (all gradients).

Each time is the median of alternating runs (lossctl, torch, lossctl, ...), so both see the same
machine load; the load average is printed before and after. Exit 0 whether or not targets pass
(a report, not a test); 2 when torch or safetensors is missing.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from run import PY, ROOT, Table, lossctl_exe, machine, paired, peak_rss_mib  # noqa: E402


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def make_dump(directory: Path, n: int, v: int) -> tuple[Path, Path]:
    """logits.safetensors (BF16 (n, v): noise plus a bump at the label, like a trained model) and labels.npy."""
    import torch
    from safetensors.torch import save_file

    path, labels = directory / f"lm-{n}x{v}.safetensors", directory / f"lm-{n}x{v}-labels.npy"
    if path.exists() and labels.exists():
        return path, labels
    g = torch.Generator().manual_seed(0)
    x = torch.empty((n, v), dtype=torch.bfloat16)
    y = torch.randint(0, v, (n,), generator=g)
    for i in range(0, n, 256):
        blk = torch.randn((min(256, n - i), v), generator=g) * 2.5
        blk[torch.arange(blk.shape[0]), y[i:i + 256]] += 9.0
        x[i:i + 256] = blk.to(torch.bfloat16)
    save_file({"logits": x}, str(path))
    np.save(labels, y.numpy())
    return path, labels


def torch_float64_reference(path: Path, labels: Path) -> float:
    """F.cross_entropy in float64, in chunks of 256 rows (the whole float64 array would be 8 GB)."""
    import torch
    import torch.nn.functional as F
    from safetensors import safe_open

    y = torch.from_numpy(np.load(labels))
    total = 0.0
    with safe_open(str(path), "pt") as f:
        sl = f.get_slice("logits")
        n = sl.get_shape()[0]
        for i in range(0, n, 256):
            block = sl[i:i + 256].to(torch.float64)
            total += F.cross_entropy(block, y[i:i + 256], reduction="sum").item()
    return total / n


def bench_file(t: Table, directory: Path, n: int, v: int, runs: int) -> None:
    path, labels = make_dump(directory, n, v)
    size = path.stat().st_size
    ours = lossctl_exe() + ["lm", "--logits", f"{path}:logits", "--labels", str(labels), "--format", "plain"]
    script = textwrap.dedent(f"""
        import numpy as np, torch, torch.nn.functional as F
        from safetensors.torch import load_file
        x = load_file({str(path)!r})["logits"]
        y = torch.from_numpy(np.load({str(labels)!r}))
        print(repr(F.cross_entropy(x.float(), y).item()))
    """)
    theirs = [PY, "-c", script]
    env = _env()
    run = lambda cmd: subprocess.run(cmd, capture_output=True, text=True, env=env, check=True).stdout  # noqa: E731
    ta, tb, ratio = paired(lambda: run(ours), lambda: run(theirs), runs)
    rss, out = peak_rss_mib(ours, env=env)
    loss = float(out.strip().splitlines()[0])
    ref = torch_float64_reference(path, labels)
    rel = abs(loss - ref) / abs(ref)
    label = f"1. `lossctl lm` on a {size / 1e9:.1f} GB bf16 .safetensors ({n:,} x {v:,})"
    t.add(label + ": time", f"{ta:.2f} s", f"torch script (load + f32 CE) {tb:.2f} s", ratio, "<= 0.50",
          ratio <= 0.5, note=f"lossctl {loss!r}, torch float64 {ref!r}: relative difference {rel:.1e} (limit 1e-12)")
    t.add(label + ": peak RSS", f"{rss:.0f} MiB", "limit 300 MiB", rss / 300, "<= 1.00", rss <= 300)
    t.add(label + ": vs torch float64", f"{loss!r}", f"{ref!r}", None, "rel <= 1e-12", rel <= 1e-12)


def bench_in_process(t: Table, rows_by_vocab: dict[int, int], runs: int) -> None:
    import torch
    import torch.nn.functional as F

    import lossctl.tokens as tokens
    from lossctl.io.encoded import EncodedArray

    rng = np.random.default_rng(0)
    for v, n in rows_by_vocab.items():
        x32 = (rng.standard_normal((n, v), dtype=np.float32) * 2.5)
        y = rng.integers(0, v, n)
        bits = (x32.view(np.uint32) >> 16).astype(np.uint16)  # bfloat16 by truncation: any bits will do
        for dtype, given in (("f32", x32), ("bf16", EncodedArray(bits, "bfloat16"))):
            ref32 = torch.from_numpy(x32 if dtype == "f32" else (bits.astype(np.uint32) << 16).view(np.float32))
            yt = torch.from_numpy(y)
            ours, theirs, ratio = paired(lambda: tokens.lm(logits=given, labels=y),
                                         lambda: F.cross_entropy(ref32, yt).item(), runs)
            loss = tokens.lm(logits=given, labels=y).loss
            ref64 = F.cross_entropy(ref32.double(), yt).item()
            rel = abs(loss - ref64) / abs(ref64)
            t.add(f"2. in-process lm, {n:,} x {v:,} {dtype} (float64 math)", f"{ours:.3f} s",
                  f"torch f32 {theirs:.3f} s", ratio, "<= 1.00", ratio <= 1.0 and rel <= 1e-12,
                  note=f"relative difference to torch float64 {rel:.1e}")


_LCE_CHILD = """
import sys, time
import numpy as np


def hwm():  # this process's peak resident set in KiB (ru_maxrss would include a forking parent's)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])

n, d, v, which, grad = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5] == "1"
if which == "torch":
    import torch, torch.nn.functional as F
else:
    import lossctl.tokens as tokens
base = hwm()  # the interpreter and its imports
rng = np.random.default_rng(0)
h = rng.standard_normal((n, d), dtype=np.float32)
w = rng.standard_normal((v, d), dtype=np.float32)
w *= 0.05  # in place: no temporary to raise the high-water mark
y = rng.integers(0, v, n)
t0 = time.perf_counter()
if which == "torch":
    ht, wt = torch.from_numpy(h).requires_grad_(grad), torch.from_numpy(w).requires_grad_(grad)
    out = F.linear_cross_entropy(ht, wt, torch.from_numpy(y))
    if grad:
        out.backward()
    loss = out.item()
else:
    loss = tokens.linear_ce(hidden=h, lm_head=w, target=y, dtype="float32", grad=grad).loss
dt = time.perf_counter() - t0
peak = hwm()
print(repr(loss), dt, (peak - base) * 1024, h.nbytes + w.nbytes)
"""


def bench_linear_ce(t: Table, n: int, d: int, v: int, runs: int) -> None:
    env = _env()

    def child(which: str, grad: bool):
        out = subprocess.run([PY, "-c", _LCE_CHILD, str(n), str(d), str(v), which, "1" if grad else "0"],
                             capture_output=True, text=True, env=env, check=True).stdout.split()
        return float(out[0]), float(out[1]), float(out[2]), float(out[3])

    for grad in (False, True):
        ours, theirs = [], []
        for _ in range(runs):  # alternating, each in a fresh process (peak memory is per process)
            ours.append(child("lossctl", grad))
            theirs.append(child("torch", grad))
        med = lambda rows, i: float(np.median([r[i] for r in rows]))  # noqa: E731
        ta, tb = med(ours, 1), med(theirs, 1)
        ratio = float(np.median([a[1] / b[1] for a, b in zip(ours, theirs)]))  # of the pairs
        inputs = ours[0][3]
        what = "forward + backward" if grad else "forward (loss)"
        t.add(f"3. linear-ce {n:,} x {d:,} -> {v:,} f32, {what}: time", f"{ta:.2f} s",
              f"F.linear_cross_entropy f32 {tb:.2f} s", ratio, "<= 1.20", ratio <= 1.2,
              note=f"lossctl {ours[0][0]!r}, torch {theirs[0][0]!r}")
        peak_ours, peak_theirs = med(ours, 2), med(theirs, 2)  # above the interpreter: inputs + the call's memory
        t.add(f"3. linear-ce {what}: peak memory above the interpreter",
              f"{peak_ours / 2**20:.0f} MiB", f"torch {peak_theirs / 2**20:.0f} MiB; inputs {inputs / 2**20:.0f} MiB",
              peak_ours / inputs, "<= 1.30", peak_ours <= 1.3 * inputs if not grad else None,
              note="with gradients the lm-head's gradient alone is as large as the lm-head: no limit applies" if grad else "")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", default="123")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--big-dir", type=Path, default=Path("/tmp/lossctl-lm-bench"))
    ap.add_argument("--markdown", type=Path)
    args = ap.parse_args(argv)
    try:
        import safetensors  # noqa: F401
        import torch  # noqa: F401
    except ImportError as e:
        print(f"needs torch and safetensors: {e}", file=sys.stderr)
        return 2
    args.big_dir.mkdir(parents=True, exist_ok=True)
    print(machine(), flush=True)
    t = Table()
    start = time.perf_counter()
    if "1" in args.only:
        bench_file(t, args.big_dir, 512 if args.quick else 8192, 128256, 1 if args.quick else args.runs)
    if "2" in args.only:
        sizes = {32000: 256, 128256: 64} if args.quick else {32000: 4096, 128256: 1024}
        bench_in_process(t, sizes, args.runs)
    if "3" in args.only:
        if args.quick:
            bench_linear_ce(t, 128, 64, 8192, 1)
        else:
            bench_linear_ce(t, 1024, 1024, 128256, args.runs)
    print()
    print(t.markdown())
    for note in t.notes:
        print(f"- {note}")
    print(f"\nload average at the end: {os.getloadavg()[0]:.2f}; wall {time.perf_counter() - start:.0f} s")
    if args.markdown:
        args.markdown.write_text(t.markdown() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
