#!/usr/bin/env python
"""lossctl's performance targets, measured side by side with PyTorch and pandas.

    python benchmarks/run.py            # the full run (a few minutes; writes a 4 GB file to /tmp)
    python benchmarks/run.py --quick    # small sizes, a smoke test (well under a minute)

Generates its data under benchmarks/data/ (gitignored; the large memory test file
goes to --big-dir, /tmp by default, and is deleted afterwards), runs each
measurement several times, alternating lossctl and the reference, and prints
one row per target: the lossctl figure, the reference figure, their ratio, the
limit and pass/miss. Medians throughout. Exit status 0 whether targets pass or
not (it is a report, not a test); 2 if something could not be measured.

Targets (docs/performance.md; issues 5 and 16). Every comparison is paired: lossctl and the
reference run alternately (A B A B ...), and the ratio reported is the median of the per-pair
ratios, so a load that comes and goes hits both sides of each pair alike. The machine's load
average is printed with every row. In-process rows are measured with the compiled kernels
and again with ``LOSSCTL_PURE=1`` (the NumPy kernels).

1. in-process ``lossctl.compute(loss="ce", logits=X, target=T)`` (the plain call, mean, per-sample
   values kept) on float32 logits, 2 threads: <= 0.45 x torch float32 ``F.cross_entropy`` at
   1,000,000 x 100, (3125, 32000) and (781, 128000); <= 0.6 x at 50,000,000 x 2; <= 3 x the
   one-pass floor (two threads reading every byte once); the mean within 1e-12 of torch float64;
2. float16 and bfloat16 logits (bfloat16 as raw bits, as the safetensors reader gives them) at
   least as fast per entry as float32 (ratio <= 1.0);
3. ``lossctl ce --logits L.npy --target Y.npy --format plain`` <= 0.25 x the equivalent torch
   script (import torch, numpy; np.load; F.cross_entropy; print);
4. peak RSS for a 4 GB .npy < 150 MiB (mean; and per-sample values to -o FILE);
5. start-up of a small call <= 1.3 x ``python -c "import numpy"``;
6. ``lossctl check`` with 1000 small cases <= 3 s;
7. reading a 200,000 x 100 CSV <= 1.0 x ``pandas.read_csv``, bit-identical to the built-in reader;
8. a progress bar on a terminal's stderr for a run over ~1 s, none when stderr is a pipe.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "benchmarks" / "data"
PY = sys.executable


def lossctl_exe() -> list[str]:
    """The installed console script next to this Python (not a pyenv shim), else ``python -m lossctl``."""
    script = Path(PY).parent / "lossctl"
    if script.exists():
        return [str(script)]
    return [PY, "-m", "lossctl"]


# -- helpers ---------------------------------------------------------------------------------


def median_time(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def paired(fn_a, fn_b, runs: int, warmup: int = 1) -> tuple[float, float, float]:
    """(median a, median b, median of the per-pair ratios a/b) over runs A B A B ...: each
    pair sees the same machine load, so the ratio does not move with it (a plain ratio of
    medians does: a busy stretch during the a runs alone makes a miss look like a pass)."""
    for _ in range(warmup):
        fn_a()
        fn_b()
    ta, tb = [], []
    for i in range(runs):
        order = ((fn_a, ta), (fn_b, tb)) if i % 2 == 0 else ((fn_b, tb), (fn_a, ta))  # A B, B A: no side always first
        for fn, times in order:
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
    ratios = [a / b for a, b in zip(ta, tb)]
    return statistics.median(ta), statistics.median(tb), statistics.median(ratios)


def load() -> str:
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except OSError:
        return "?"


@contextlib.contextmanager
def pure_kernels(on: bool):
    """LOSSCTL_PURE=1 (the NumPy kernels) inside the block when ``on``."""
    old = os.environ.get("LOSSCTL_PURE")
    if on:
        os.environ["LOSSCTL_PURE"] = "1"
    else:
        os.environ.pop("LOSSCTL_PURE", None)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("LOSSCTL_PURE", None)
        else:
            os.environ["LOSSCTL_PURE"] = old


def run_cmd(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if r.returncode not in (0, 1):
        raise RuntimeError(f"{' '.join(cmd[:4])}...: exit {r.returncode}: {r.stderr.strip()[:500]}")
    return r


_RSS_HELPER = """
import os, sys
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
sys.stderr.write(f"\\nMAXRSS_KB {usage.ru_maxrss}\\n")
sys.exit(os.waitstatus_to_exitcode(status))
"""


def peak_rss_mib(cmd: list[str], env=None) -> tuple[float, str]:
    """Peak resident set of a command, and its stdout.

    Measured from a small helper process (``python -S``) that forks and execs the
    command: a child forked straight from this (large) process would count this
    process's pages, which its ``ru_maxrss`` keeps across ``exec``.
    """
    exe = shutil.which(cmd[0]) or cmd[0]
    r = subprocess.run([PY, "-S", "-c", _RSS_HELPER, exe, *cmd[1:]], capture_output=True, text=True, env=env)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])}...: exit {r.returncode}: {r.stderr[:500]}")
    kb = int(r.stderr.rsplit("MAXRSS_KB", 1)[1].split()[0])
    return kb / 1024.0, r.stdout


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import numpy

    mem = ""
    try:
        kb = int(next(ln for ln in Path("/proc/meminfo").read_text().splitlines() if ln.startswith("MemTotal")).split()[1])
        mem = f", {kb / 1024 / 1024:.0f} GiB RAM"
    except (OSError, StopIteration, ValueError):
        pass
    try:
        import torch

        tv = f", torch {torch.__version__} ({torch.get_num_threads()} threads)"
    except ImportError:
        tv = ", torch not installed"
    try:
        load = f", load average {os.getloadavg()[0]:.2f} at start"
    except OSError:
        load = ""
    return (f"{model}, {os.cpu_count()} cores (nproc){mem}; Python {platform.python_version()}, "
            f"NumPy {numpy.__version__}{tv}{load}")


# -- data ------------------------------------------------------------------------------------


def make_logits(n: int, c: int, seed: int = 0) -> tuple[Path, Path]:
    DATA.mkdir(parents=True, exist_ok=True)
    lp, yp = DATA / f"logits_{n}x{c}.npy", DATA / f"labels_{n}.npy"
    if not lp.exists() or not yp.exists():
        rng = np.random.default_rng(seed)
        np.save(lp, (rng.standard_normal((n, c), dtype=np.float32) * 3))
        np.save(yp, rng.integers(0, c, n))
    return lp, yp


def make_big(directory: Path, gib: float, c: int = 100) -> tuple[Path, Path]:
    """A float32 logits .npy of about ``gib`` GiB, written in chunks (never in memory)."""
    n = int(gib * (1 << 30) / (4 * c))
    lp, yp = directory / f"lossctl_bench_big_{n}x{c}.npy", directory / f"lossctl_bench_big_labels_{n}.npy"
    rng = np.random.default_rng(1)
    if not lp.exists():
        arr = np.lib.format.open_memmap(lp, mode="w+", dtype=np.float32, shape=(n, c))
        step = 1 << 20
        for i in range(0, n, step):
            arr[i:i + step] = rng.standard_normal((min(step, n - i), c), dtype=np.float32) * 3
        arr.flush()
        del arr
    if not yp.exists():
        np.save(yp, rng.integers(0, c, n))
    return lp, yp


def make_csv(n: int, c: int) -> Path:
    DATA.mkdir(parents=True, exist_ok=True)
    path = DATA / f"table_{n}x{c}.csv"
    if not path.exists():
        rng = np.random.default_rng(2)
        with open(path, "w") as f:
            f.write(",".join(f"c{j}" for j in range(c)) + "\n")
            for i in range(0, n, 10000):
                np.savetxt(f, rng.standard_normal((min(10000, n - i), c)), fmt="%.9g", delimiter=",")
    return path


def make_suite(cases: int) -> Path:
    DATA.mkdir(parents=True, exist_ok=True)
    path = DATA / f"suite_{cases}.yaml"
    if not path.exists():
        import lossctl

        rng = np.random.default_rng(3)
        lines = ["cases:"]
        for i in range(cases):
            logits = np.round(rng.standard_normal((2, 3)) * 3, 3).tolist()
            target = rng.integers(0, 3, 2).tolist()
            loss = lossctl.compute({"loss": "ce", "logits": logits, "target": target}, grad=False).loss
            lines += [f"  - name: case-{i}", "    loss: ce", f"    logits: {logits}", f"    target: {target}",
                      f"    expect: {loss!r}"]
        path.write_text("\n".join(lines) + "\n")
    return path


# -- measurements ----------------------------------------------------------------------------


class Table:
    def __init__(self):
        self.rows: list[tuple] = []
        self.notes: list[str] = []

    def add(self, target: str, ours: str, ref: str, ratio: float | None, limit: str, ok: bool | None, note: str = ""):
        verdict = "n/a" if ok is None else ("pass" if ok else "MISS")
        self.rows.append((target, ours, ref, "—" if ratio is None else f"{ratio:.2f}", limit, verdict, load()))
        if note:
            self.notes.append(f"{target}: {note}")
        print(f"  {target}: {ours} vs {ref} -> {verdict}", flush=True)

    def markdown(self) -> str:
        head = ("target", "lossctl", "reference", "ratio", "limit", "result", "load")
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(r) + " |" for r in self.rows]
        return "\n".join(lines)


def bf16_bits(x: np.ndarray):
    """float32 logits as bfloat16 raw bits (truncated), the way the safetensors reader hands them over."""
    bits = (x.view(np.uint32) >> 16).astype(np.uint16)
    try:
        from lossctl.io.encoded import EncodedArray
    except ImportError:  # pragma: no cover - before the reader landed
        return None
    return EncodedArray(bits, "bfloat16")


def one_pass_floor(x: np.ndarray, runs: int = 3) -> float:
    """Two threads reading every byte of ``x`` once (a bitwise-or reduction: no arithmetic to speak of)."""
    from concurrent.futures import ThreadPoolExecutor

    flat = x.reshape(-1).view(np.uint32)
    half = flat.size // 2
    parts = (flat[:half], flat[half:])
    best = float("inf")
    with ThreadPoolExecutor(2) as pool:
        for _ in range(runs):
            t = time.perf_counter()
            list(pool.map(np.bitwise_or.reduce, parts))
            best = min(best, time.perf_counter() - t)
    return best


def _ce_call(x, y):
    import lossctl

    return lambda: lossctl.compute(loss="ce", logits=x, target=y)  # the plain call: mean, per-sample values kept


def bench_in_process(t: Table, quick: bool, runs: int) -> None:
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        t.add("1. in-process ce mean", "—", "torch missing", None, "<= 0.45", None)
        return
    scale = 10 if quick else 1
    # (rows, classes, limit vs torch, limit vs the one-pass floor: None where the target sets none)
    shapes = [(1_000_000 // scale, 100, 0.45, 3.0), (3125 // scale, 32000, 0.45, 3.0), (781 // scale, 128000, 0.45, 3.0),
              (50_000_000 // scale, 2, 0.60, None)]
    rng = np.random.default_rng(0)
    for n, c, limit, floor_limit in shapes:
        x = rng.standard_normal((n, c), dtype=np.float32) * 3
        y = rng.integers(0, c, n)
        xt, yt = torch.from_numpy(x), torch.from_numpy(y)
        theirs_fn = lambda: F.cross_entropy(xt, yt).item()  # noqa: E731
        ref64 = F.cross_entropy(xt.double(), yt).item()
        floor = one_pass_floor(x)
        for pure in (False, True):
            with pure_kernels(pure):
                ours, theirs, ratio = paired(_ce_call(x, y), theirs_fn, runs)
                loss = _ce_call(x, y)().loss
            rel = abs(loss - ref64) / abs(ref64)
            kernel = "NumPy kernels" if pure else "compiled"
            ok = ratio <= limit and rel <= 1e-12 and (pure or floor_limit is None or ours <= floor_limit * floor)
            t.add(f"1. in-process ce mean, {n:,}x{c:,} f32, {kernel}", f"{ours:.3f} s", f"torch f32 {theirs:.3f} s",
                  ratio, f"<= {limit:.2f}", ok if not pure else None,
                  note=f"{ours / floor:.1f}x the one-pass floor ({floor:.3f} s); mean {loss!r}, torch float64 "
                       f"{ref64!r} (relative difference {rel:.1e}, limit 1e-12)")
        if (n, c) == shapes[0][:2]:
            bench_half(t, x, y, runs)
        del x, xt


def bench_half(t: Table, x: np.ndarray, y: np.ndarray, runs: int) -> None:
    """float16 and bfloat16 logits against the same logits in float32 (per entry: the same shape)."""
    n, c = x.shape
    for name, xh in (("float16", x.astype(np.float16)), ("bfloat16 bits", bf16_bits(x))):
        if xh is None:
            t.add(f"2. {name} vs float32, {n:,}x{c}", "—", "lossctl.io.encoded missing", None, "<= 1.00", None)
            continue
        ours, theirs, ratio = paired(_ce_call(xh, y), _ce_call(x, y), runs)
        t.add(f"2. in-process ce, {name} vs float32 logits, {n:,}x{c}", f"{ours:.3f} s", f"float32 {theirs:.3f} s",
              ratio, "<= 1.00", ratio <= 1.0)


def bench_cli(t: Table, n: int, runs: int) -> None:
    lp, yp = make_logits(n, 100)
    ours_cmd = lossctl_exe() + ["ce", "--logits", str(lp), "--target", str(yp), "--format", "plain"]
    script = textwrap.dedent(f"""
        import torch, numpy as np
        import torch.nn.functional as F
        x = torch.from_numpy(np.load({str(lp)!r})); y = torch.from_numpy(np.load({str(yp)!r}))
        print(F.cross_entropy(x, y).item())
    """)
    try:
        import torch  # noqa: F401
    except ImportError:
        t.add("3. CLI end to end", "—", "torch missing", None, "<= 0.25", None)
        return
    out = run_cmd(ours_cmd).stdout.strip()
    ref = run_cmd([PY, "-c", script]).stdout.strip()
    for pure in (False, True):
        env = dict(os.environ, LOSSCTL_PURE="1" if pure else "")
        ours, theirs, ratio = paired(lambda: run_cmd(ours_cmd, env=env), lambda: run_cmd([PY, "-c", script]), runs)
        close = abs(float(out) - float(ref)) <= 1e-6 * abs(float(ref))
        kernel = "NumPy kernels" if pure else "compiled"
        ok = ratio <= 0.25 and close
        t.add(f"3. CLI `lossctl ce` on {n:,}x100 .npy, {kernel}", f"{ours:.3f} s", f"torch script {theirs:.3f} s", ratio,
              "<= 0.25", ok if not pure else None, note=f"lossctl printed {out}, torch (float32) {ref}")


def bench_rss(t: Table, directory: Path, gib: float, keep: bool) -> None:
    free = shutil.disk_usage(directory).free / (1 << 30)
    if free < gib * 1.3 + 1:
        t.add(f"4. peak RSS, {gib:g} GiB .npy", "—", f"only {free:.1f} GiB free in {directory}", None, "< 150 MiB", None)
        return
    t0 = time.perf_counter()
    lp, yp = make_big(directory, gib)
    made = time.perf_counter() - t0
    out_file = directory / "lossctl_bench_per_sample.npy"
    try:
        base = lossctl_exe() + ["ce", "--logits", str(lp), "--target", str(yp), "--format", "plain"]
        t0 = time.perf_counter()
        rss, out = peak_rss_mib(base)
        took = time.perf_counter() - t0
        size = lp.stat().st_size / (1 << 30)
        t.add(f"4a. peak RSS, ce mean over a {size:.1f} GiB .npy", f"{rss:.0f} MiB", "limit 150 MiB", rss / 150,
              "< 1.00", rss < 150, note=f"loss {out.strip()}, {took:.1f} s (data written in {made:.1f} s)")
        if out_file.exists():
            out_file.unlink()
        rss2, _ = peak_rss_mib(base + ["--per-sample", "-o", str(out_file)])
        t.add(f"4b. peak RSS, same with per-sample values to -o .npy", f"{rss2:.0f} MiB", "limit 150 MiB", rss2 / 150,
              "< 1.00", rss2 < 150)
    finally:
        if out_file.exists():
            out_file.unlink()
        if not keep:
            for p in (lp, yp):
                if p.exists():
                    p.unlink()


def bench_startup(t: Table, runs: int) -> None:
    ours_cmd = lossctl_exe() + ["ce", "--logits", "[[10,0,-10],[8,8,8]]", "--target", "[0,2]", "--format", "plain"]
    ref_cmd = [PY, "-c", "import numpy"]
    ours, theirs, ratio = paired(lambda: run_cmd(ours_cmd), lambda: run_cmd(ref_cmd), runs, warmup=2)
    t.add("5. start-up, small `lossctl ce` call", f"{ours * 1000:.0f} ms", f"`import numpy` {theirs * 1000:.0f} ms",
          ratio, "<= 1.30", ratio <= 1.3)


def bench_check(t: Table, cases: int, runs: int) -> None:
    suite = make_suite(cases)
    cmd = lossctl_exe() + ["check", str(suite)]
    r = run_cmd(cmd)
    if r.returncode != 0:
        t.add(f"6. `lossctl check`, {cases} cases", "—", "failed", None, "<= 3 s", None, note=r.stdout[-300:])
        return
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    ours = median_time(lambda: run_cmd(cmd), runs)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) / runs
    limit = 3.0 * cases / 1000
    t.add(f"6. `lossctl check`, {cases} small cases", f"{ours:.2f} s", f"budget {limit:g} s", ours / limit, "<= 1.00",
          ours <= limit, note=f"CPU time (user + system) {cpu:.2f} s a run: the wall time over it is the machine's load")


def bench_csv(t: Table, n: int, runs: int) -> None:
    """``read_path`` (the compiled tokenizer; pyarrow for what it declines) against
    ``pandas.read_csv(...).to_numpy()``; its array must be the built-in reader's bit for bit."""
    path = make_csv(n, 100)
    try:
        import pandas as pd
    except ImportError:
        t.add(f"7. CSV {n:,}x100 read", "—", "pandas missing (pip install pandas)", None, "<= 1.00", None)
        return
    from lossctl.io import readers
    from lossctl.io.readers import read_path

    a = read_path(path, None, "--pred bench.csv")
    saved = readers.ARROW_CSV_MIN_BYTES
    readers.ARROW_CSV_MIN_BYTES = 1 << 62  # the built-in reader (np.loadtxt)
    try:
        builtin = read_path(path, None, "--pred bench.csv")
    finally:
        readers.ARROW_CSV_MIN_BYTES = saved
    b = pd.read_csv(path).to_numpy()
    same = a.shape == builtin.shape and np.array_equal(a.view(np.uint64), builtin.view(np.uint64))
    close = a.shape == b.shape and np.allclose(a, b, rtol=1e-15, atol=0)
    ours, theirs, ratio = paired(lambda: read_path(path, None, "--pred bench.csv"), lambda: pd.read_csv(path).to_numpy(),
                                 runs)
    t.add(f"7. CSV read, {n:,}x100 ({path.stat().st_size / 1e6:.0f} MB)", f"{ours:.3f} s",
          f"pandas {theirs:.3f} s", ratio, "<= 1.00", ratio <= 1.0 and same and close,
          note=("" if same else "not bit-identical to the built-in reader; ") + ("" if close else "differs from pandas"))


def bench_progress(t: Table, n: int) -> None:
    """A streamed run that takes over a second, with stderr on a pseudo-terminal, then on a pipe."""
    import pty

    lp, yp = make_logits(n, 100)
    cmd = lossctl_exe() + ["ce", "--logits", str(lp), "--target", str(yp), "--grad", "-o",
                           str(DATA / "progress_out.npz"), "--force", "--format", "plain"]
    env = dict(os.environ, LOSSCTL_THREADS="1")
    master, slave = pty.openpty()
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=slave, env=env)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    p.wait()
    took = time.perf_counter() - t0
    os.close(master)
    tty_err = b"".join(chunks).decode(errors="replace")
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    shown = "━" in tty_err or "%" in tty_err
    # messages (e.g. which file -o wrote) may go to stderr on a pipe; a bar may not
    bar_on_pipe = "━" in r.stderr or "%" in r.stderr or "\r" in r.stderr
    t.add("8. progress bar on a terminal (stderr)", "shown" if shown else "not shown",
          f"pipe: {'a bar!' if bar_on_pipe else 'no bar'}", None, f"run of {took:.1f} s",
          (shown or took < 1.2) and not bar_on_pipe)
    (DATA / "progress_out.npz").unlink(missing_ok=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes: a smoke test")
    ap.add_argument("--runs", type=int, default=None, help="timed runs per measurement (default 5, quick 3)")
    ap.add_argument("--big-dir", default=tempfile.gettempdir(), help="where the large memory-test file goes")
    ap.add_argument("--big-gib", type=float, default=None, help="size of the memory-test file (default 4, quick 0.25)")
    ap.add_argument("--keep-big", action="store_true", help="keep the large file for the next run")
    ap.add_argument("--only", default="1345678", help="which targets to run, e.g. 13 (2 runs with 1)")
    ap.add_argument("--markdown", type=Path, help="also write the table (markdown) to this file")
    args = ap.parse_args(argv)
    runs = args.runs or (3 if args.quick else 5)
    n = 100_000 if args.quick else 1_000_000
    # An installed package has its bytecode compiled (pip does it); this checkout may not
    # (PYTHONDONTWRITEBYTECODE), and recompiling lossctl on every start is not what users see.
    subprocess.run([PY, "-m", "compileall", "-q", str(ROOT / "lossctl")], capture_output=True)
    print(f"machine: {machine()}", flush=True)
    t = Table()
    steps = {
        "1": lambda: bench_in_process(t, args.quick, runs),
        "2": lambda: None,  # measured with 1 (the same arrays)
        "3": lambda: bench_cli(t, n, runs),
        "4": lambda: bench_rss(t, Path(args.big_dir), args.big_gib or (0.25 if args.quick else 4.0), args.keep_big),
        "5": lambda: bench_startup(t, max(runs, 9)),
        "6": lambda: bench_check(t, 200 if args.quick else 1000, max(1, runs // 2)),
        "7": lambda: bench_csv(t, 20_000 if args.quick else 200_000, runs),
        "8": lambda: bench_progress(t, 300_000 if args.quick else 1_000_000),
    }
    failed = False
    for key in args.only:
        try:
            steps[key]()
        except Exception as e:  # a measurement that could not run is reported, not fatal
            failed = True
            t.add(f"{key}. (error)", "—", f"{type(e).__name__}: {e}"[:120], None, "", None)
    print()
    print(t.markdown())
    if t.notes:
        print()
        for note in t.notes:
            print(f"- {note}")
    if args.markdown:
        args.markdown.write_text(f"Machine: {machine()}\n\n{t.markdown()}\n\n" + "\n".join(f"- {x}" for x in t.notes) + "\n")
    return 2 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
