"""Headless Chromium for the page tests: the rendered DOM and a screenshot of a page file.

The tests need a real browser, so a machine without one fails them with the
reason (``apt-get install chromium``); they never skip.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

# Chromium as a sandboxed test runner: no first-run, no background connections, a fresh profile.
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-extensions", "--hide-scrollbars", "--mute-audio")


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    pytest.fail("the page tests render in headless Chromium, which is not installed: "
                "apt-get install chromium (Debian) or set PATH to a chromium binary", pytrace=False)


def _run(args: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as profile:
        env = dict(os.environ, HOME=profile)
        return subprocess.run([chromium(), *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True,
                              timeout=timeout, env=env, stdin=subprocess.DEVNULL)


def dump_dom(page: Path) -> str:
    """The DOM after Chromium parsed and laid out ``page``, serialised."""
    done = _run(["--dump-dom", page.resolve().as_uri()])
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    return done.stdout.decode()


def screenshot(page: Path, png: Path, width: int = 1100, height: int = 1400) -> Path:
    done = _run([f"--window-size={width},{height}", f"--screenshot={png.resolve()}", page.resolve().as_uri()])
    assert done.returncode == 0 and png.exists(), done.stderr.decode(errors="replace")[-2000:]
    return png
