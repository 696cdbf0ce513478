"""A suite file that is not a regular file is refused at once (exit 3), never read:
``check /dev/zero`` would read until memory runs out, a FIFO would block."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import lossctl

# The tree whose lossctl this test run imported (PYTHONPATH), for the processes it starts.
REPO = Path(lossctl.__file__).resolve().parents[1]


def _check(target, cwd) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "lossctl", "check", str(target)], cwd=cwd, env=env,
                          capture_output=True, timeout=60)


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom", "/dev/null", "/dev/full"])
def test_devices_as_suites(tmp_path, device):
    r = _check(device, tmp_path)
    assert r.returncode == 3, r.stderr
    assert r.stderr.decode().startswith(f"error: {device}: is a ") and b"Traceback" not in r.stderr


def test_a_fifo_suite_does_not_block(tmp_path):
    os.mkfifo(tmp_path / "s.yaml")
    r = _check("s.yaml", tmp_path)
    assert r.returncode == 3 and b"FIFO" in r.stderr, r.stderr


def test_a_symlink_to_a_device_as_suite(tmp_path):
    (tmp_path / "s.yaml").symlink_to("/dev/zero")
    r = _check("s.yaml", tmp_path)
    assert r.returncode == 3 and b"character device" in r.stderr, r.stderr


def test_a_socket_as_suite(tmp_path):
    import socket

    s = socket.socket(socket.AF_UNIX)
    s.bind(str(tmp_path / "s.yaml"))
    try:
        r = _check("s.yaml", tmp_path)
    finally:
        s.close()
    assert r.returncode == 3 and b"socket" in r.stderr, r.stderr


def test_proc_files_are_not_regular_enough(tmp_path):
    """``/proc`` files report size 0 but are regular: read within the cap and refused as YAML."""
    r = _check("/proc/self/status", tmp_path)
    assert r.returncode == 3 and b"Traceback" not in r.stderr, r.stderr
