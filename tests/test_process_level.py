"""The program as a process: signals, closed and full standard streams, broken pipes,
concurrent writers, a full disk. Each test runs ``python -m lossctl`` for real.

The full-disk tests mount a small tmpfs (root on Linux); where mounting is not allowed they
skip and say why.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

import lossctl

# The tree whose lossctl this test run imported (PYTHONPATH), for the processes it starts.
REPO = Path(lossctl.__file__).resolve().parents[1]
LOGITS = "[[10.0, 0.0, -10.0], [8.0, 8.0, 8.0]]"
CALL = ["ce", "--logits", LOGITS, "--target", "[0, 2]"]
LOSS = "0.5493288448141933"


def _env(**extra) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("LOSSCTL_TRACEBACK", None)
    env.update(extra)
    return env


def lossctl(*args, cwd=None, env=None, timeout=120, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lossctl", *map(str, args)], cwd=cwd, env=env or _env(),
                          capture_output=True, timeout=timeout, **kw)


def shell(command: str, cwd, timeout=120) -> subprocess.CompletedProcess:
    """``command`` in bash, with ``L`` the program (for redirections Python's API cannot make)."""
    return subprocess.run(["bash", "-c", f"L() {{ {sys.executable} -m lossctl \"$@\"; }}; {command}"],
                          cwd=cwd, env=_env(), capture_output=True, timeout=timeout)


def _clean(stderr: bytes) -> None:
    assert b"Traceback" not in stderr and b"internal error" not in stderr, stderr.decode()


# --------------------------------------------------------------------------- concurrency


def _parallel(commands, cwd) -> list[subprocess.CompletedProcess]:
    procs = [subprocess.Popen([sys.executable, "-m", "lossctl", *map(str, c)], cwd=cwd, env=_env(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for c in commands]
    out = []
    for p in procs:
        so, se = p.communicate(timeout=300)
        out.append(subprocess.CompletedProcess(p.args, p.returncode, so, se))
    return out


@pytest.mark.parametrize("existing", [False, True])
def test_eight_parallel_records_keep_all_eight_cases(tmp_path, existing):
    suite = tmp_path / "s.yaml"
    if existing:
        suite.write_text(f"cases:\n  - name: first\n    loss: ce\n    logits: {LOGITS}\n    target: [0, 2]\n    expect: {LOSS}\n")
    runs = _parallel([["record", "ce", "--logits", f"[[1.0, {i}.0]]", "--target", "[0]", "--to", suite, "--name", f"c{i}"]
                      for i in range(8)], tmp_path)
    assert [r.returncode for r in runs] == [0] * 8, [r.stderr for r in runs]
    names = [c["name"] for c in yaml.safe_load(suite.read_text())["cases"]]
    assert sorted(names) == sorted([f"c{i}" for i in range(8)] + (["first"] if existing else []))
    assert lossctl("check", suite).returncode == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.yaml"]


def test_parallel_updates_and_records_lose_nothing(tmp_path):
    suite = tmp_path / "s.yaml"
    suite.write_text(f"cases:\n  - name: stale\n    loss: ce\n    logits: {LOGITS}\n    target: [0, 2]\n    expect: 0.25\n")
    commands = []
    for i in range(8):
        commands.append(["check", suite, "--update"] if i % 2 else
                        ["record", "ce", "--logits", f"[[2.0, {i}.0]]", "--target", "[1]", "--to", suite, "--name", f"r{i}"])
    runs = _parallel(commands, tmp_path)
    for c, r in zip(commands, runs):
        _clean(r.stderr)
        if c[0] == "record":
            assert r.returncode == 0, r.stderr
        else:  # an update either wrote, or saw the suite change under it and wrote nothing
            assert r.returncode == 0 or (r.returncode == 3 and b"changed while the cases ran" in r.stderr), r.stderr
    names = [c["name"] for c in yaml.safe_load(suite.read_text())["cases"]]
    assert sorted(names) == sorted(["stale"] + [f"r{i}" for i in range(0, 8, 2)])


# --------------------------------------------------------------------------- signals


def _started(p: subprocess.Popen) -> bytes:
    """Read ``p``'s stderr (``-X importtime``) until the package ``lossctl`` itself is imported:
    from then on its signal handlers are in place (what Python does before that is not lossctl's)."""
    seen = b""
    while True:
        line = p.stderr.readline()
        if not line:
            return seen
        seen += line
        if line.rstrip().endswith(b"| lossctl"):
            return seen


def _without_importtime(stderr: bytes) -> str:
    return "\n".join(ln for ln in stderr.decode().splitlines() if not ln.startswith("import time:")).strip()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_an_early_signal_ends_cleanly(sig):
    """A signal while lossctl is still importing its modules (or computing) ends the call with
    128 + the signal and one line, never a traceback; a call that already finished exits 0."""
    codes: list[int] = []
    for k in range(40):  # under load a call may finish before the signal comes: try until one is interrupted
        if 128 + sig in codes and k >= 10:
            break
        p = subprocess.Popen([sys.executable, "-X", "importtime", "-m", "lossctl", *CALL], env=_env(),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        before = _started(p)
        time.sleep(0.01 * (k % 10))
        p.send_signal(sig)
        _, rest = p.communicate(timeout=60)
        err = before + rest
        codes.append(p.returncode)
        _clean(err)
        if p.returncode != 0:  # the call finished before the signal otherwise
            assert p.returncode == 128 + sig, (p.returncode, err)
            assert _without_importtime(err) in ("error: interrupted", "error: terminated")
    assert 128 + sig in codes


def _slow_streamed_call(tmp_path: Path, out: Path, grad: bool = True):
    rows = 400_000
    x = np.random.default_rng(0).normal(size=(rows, 4))
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", np.zeros(rows, dtype=np.int64))
    env = _env(LOSSCTL_STREAM_MIN_BYTES="1", LOSSCTL_BLOCK_BYTES="2048", LOSSCTL_THREADS="1")
    args = ["ce", "--logits", tmp_path / "x.npy", "--target", tmp_path / "y.npy", "-o", out] + (["--grad"] if grad else [])
    return [sys.executable, "-m", "lossctl", *map(str, args)], env


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
@pytest.mark.parametrize("suffix", [".npz", ".csv"])
def test_a_signal_during_a_streamed_output_leaves_no_temporary_files(tmp_path, sig, suffix):
    out = tmp_path / f"o{suffix}"
    cmd, env = _slow_streamed_call(tmp_path, out)
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while time.time() < deadline and not any(n.name.endswith(".part") for n in tmp_path.iterdir()):
        time.sleep(0.02)
    assert any(n.name.endswith(".part") for n in tmp_path.iterdir()), "the call did not stream"
    p.send_signal(sig)
    _, err = p.communicate(timeout=60)
    _clean(err)
    assert p.returncode == 128 + sig, err
    assert sorted(n.name for n in tmp_path.iterdir()) == ["x.npy", "y.npy"]


def test_a_signal_at_any_moment_leaves_the_output_whole_or_absent(tmp_path):
    """SIGINT at times spread over a whole streamed call, the final commit included: the
    output is either absent or a complete, readable file, never a temporary one left over."""
    out = tmp_path / "o.npz"
    cmd, env = _slow_streamed_call(tmp_path, out)
    env["LOSSCTL_BLOCK_BYTES"] = str(1 << 16)
    t = time.perf_counter()
    subprocess.run(cmd, env=env, capture_output=True, check=True, timeout=300)
    total = time.perf_counter() - t
    whole = dict(np.load(out))
    out.unlink()
    for k in range(8):
        p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(total * (0.55 + 0.07 * k))
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=120)
        _clean(err)
        assert p.returncode in (0, 130), err
        left = sorted(n.name for n in tmp_path.iterdir())
        assert left in (["x.npy", "y.npy"], ["o.npz", "x.npy", "y.npy"]), left
        if out.exists():
            got = dict(np.load(out))
            assert got.keys() == whole.keys() and all(np.array_equal(got[k2], whole[k2]) for k2 in got)
            out.unlink()


# --------------------------------------------------------------------------- standard streams


@pytest.mark.parametrize("redirect,code", [
    (">&-", 0), ("2>&-", 0), (">&- 2>&-", 0), ("<&- >&-", 0),
    (">/dev/full", 3), ("2>/dev/full", 0), (">/dev/full 2>&-", 3),
])
def test_closed_and_full_streams_on_a_good_call(tmp_path, redirect, code):
    r = shell(f"L ce --logits '{LOGITS}' --target '[0, 2]' {redirect}", tmp_path)
    assert r.returncode == code, r.stderr
    _clean(r.stderr)
    if code == 3 and "2>&-" not in redirect:
        assert r.stderr.decode().startswith("error: standard output: cannot write: no space left on device")


@pytest.mark.parametrize("redirect", [">&-", "2>&-", ">&- 2>&-", "2>/dev/full", ">/dev/full"])
def test_closed_and_full_streams_keep_the_error_code(tmp_path, redirect):
    r = shell(f"L ce --logits '{LOGITS}' --target '[0, 7]' {redirect}", tmp_path)
    assert r.returncode == 3, r.stderr
    _clean(r.stderr)


def test_closed_stdout_still_writes_files_and_the_verdict(tmp_path):
    suite = tmp_path / "s.yaml"
    suite.write_text(f"cases:\n  - name: a\n    loss: ce\n    logits: {LOGITS}\n    target: [0, 2]\n    expect: {LOSS}\n")
    r = shell("L check s.yaml --junit r.xml >&-", tmp_path)
    assert r.returncode == 0 and (tmp_path / "r.xml").is_file(), r.stderr
    suite.write_text(suite.read_text().replace(LOSS, "0.25"))
    assert shell("L check s.yaml >&-", tmp_path).returncode == 1


@pytest.mark.parametrize("command,code", [
    ("L ce --logits x.npy --target y.npy --reduction none --format table", 0),
    ("L ce --logits x.npy --target y.npy --reduction none --format csv", 0),
    ("L ce --logits x.npy --target y.npy --reduction none", 0),
    ("L ce --logits x.npy --target y.npy --grad --per-sample --format json", 0),
    ("L check pass.yaml", 0),
    ("L check pass.yaml --format table", 0),
    ("L check fail.yaml", 1),
    ("L list", 0),
])
def test_a_closed_pipe_keeps_the_exit_code(tmp_path, command, code):
    np.save(tmp_path / "x.npy", np.random.default_rng(1).normal(size=(5000, 3)))
    np.save(tmp_path / "y.npy", np.zeros(5000, dtype=np.int64))
    cases = "".join(f"  - name: c{i}\n    loss: ce\n    logits: {LOGITS}\n    target: [0, 2]\n    expect: {LOSS}\n"
                    for i in range(300))
    (tmp_path / "pass.yaml").write_text("cases:\n" + cases)
    (tmp_path / "fail.yaml").write_text("cases:\n" + cases.replace(LOSS, "0.25"))
    r = shell(f"{command} | head -1 >/dev/null; exit ${{PIPESTATUS[0]}}", tmp_path)
    assert r.returncode == code, r.stderr
    assert r.stderr == b""


# --------------------------------------------------------------------------- a full disk


@pytest.fixture
def small_disk(tmp_path):
    """A 256 KiB tmpfs (skips where this machine does not allow mounting one)."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)], capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root and mount rights): {r.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_a_full_disk_during_a_streamed_output(tmp_path, small_disk):
    out = small_disk / "o.npz"
    cmd, env = _slow_streamed_call(tmp_path, out)
    env["LOSSCTL_BLOCK_BYTES"] = str(1 << 20)
    r = subprocess.run(cmd, env=env, capture_output=True, timeout=300)
    assert r.returncode == 3, r.stderr
    _clean(r.stderr)
    assert b"no space left on device" in r.stderr
    assert list(small_disk.iterdir()) == []


@pytest.mark.parametrize("suffix", [".npy", ".csv", ".npz"])
def test_a_full_disk_for_an_in_memory_output(tmp_path, small_disk, suffix):
    np.save(tmp_path / "x.npy", np.random.default_rng(0).normal(size=(60000, 3)))
    np.save(tmp_path / "y.npy", np.zeros(60000, dtype=np.int64))
    r = lossctl("ce", "--logits", tmp_path / "x.npy", "--target", tmp_path / "y.npy", "--grad" if suffix != ".npy" else "--per-sample",
                "-o", small_disk / f"o{suffix}")
    assert r.returncode == 3, r.stderr
    _clean(r.stderr)
    assert list(small_disk.iterdir()) == []


def test_a_full_disk_keeps_the_suite(tmp_path, small_disk):
    suite = small_disk / "s.yaml"
    suite.write_text(f"cases:\n  - name: a\n    loss: ce\n    logits: {LOGITS}\n    target: [0, 2]\n    expect: {LOSS}\n")
    before = suite.read_bytes()
    # fill the disk, then try to add a case
    fd = os.open(small_disk / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        while os.write(fd, b"\0" * 4096):
            pass
    except OSError:
        pass
    finally:
        os.close(fd)
    big = "[[" + ", ".join(["1.0"] * 4000) + "]]"
    r = lossctl("record", "ce", "--logits", big, "--target", "[0]", "--to", suite)
    assert r.returncode == 3, r.stderr
    _clean(r.stderr)
    assert suite.read_bytes() == before
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler", "s.yaml"]
    r = lossctl("check", suite, "--junit", small_disk / "r.xml")
    assert r.returncode == 3 and not (small_disk / "r.xml").exists(), r.stderr
