"""Hostile destinations for every writer: files that are not lossctl's to replace, links,
read-only files, modes, impossible paths. Each writer runs in-process through ``main(argv)``.

Every case checks the exit code, one ``error:`` line and no traceback, that the target kept
its kind and bytes, and that no temporary file is left behind.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pytest

LOGITS = "[[10.0, 0.0, -10.0], [8.0, 8.0, 8.0]]"
CALL = ["ce", "--logits", LOGITS, "--target", "[0, 2]"]
LOSS = 0.5493288448141933


def _suite(tmp_path: Path, expect: float = LOSS) -> Path:
    np.save(tmp_path / "x.npy", np.array([[10.0, 0.0, -10.0], [8.0, 8.0, 8.0]]))
    suite = tmp_path / "s.yaml"
    suite.write_text(f"cases:\n  - name: a\n    loss: ce\n    logits: x.npy\n    target: [0, 2]\n    expect: {expect}\n")
    return suite


def _writers(tmp_path: Path) -> dict:
    """Each writer as a function of its target: the argv that writes it."""
    suite = _suite(tmp_path)
    return {
        "output": lambda t: CALL + ["-o", t, "--force"],
        "html": lambda t: CALL + ["--html", t, "--force"],
        "plot": lambda t: CALL + ["--plot", t, "--force"],
        "junit": lambda t: ["check", suite, "--junit", t],
        "record": lambda t: ["record"] + CALL + ["--to", t],
        "check-html": lambda t: ["check", suite, "--html", t, "--force"],
    }


SUFFIX = {"output": ".npy", "html": ".html", "plot": ".svg", "junit": ".xml", "record": ".yaml", "check-html": ".html"}
WRITERS = list(SUFFIX)


def _snapshot(path: Path):
    st = os.lstat(path)
    content = path.read_bytes() if stat.S_ISREG(st.st_mode) else None
    return stat.S_IFMT(st.st_mode), st.st_ino, content


def _no_temporaries(directory: Path) -> None:
    left = [p.name for p in directory.iterdir() if p.name.endswith((".tmp", ".part"))]
    assert left == []


def _refused(r, codes=(2, 3)) -> None:
    assert r.code in codes, (r.code, r.stderr)
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr
    assert r.stderr.startswith("error: ") and r.stderr.count("error:") == 1, r.stderr


# --------------------------------------------------------------------------- not ours to replace


def _target(kind: str, tmp_path: Path, suffix: str) -> Path:
    t = tmp_path / f"target{suffix}"
    if kind == "fifo":
        os.mkfifo(t)
    elif kind == "directory":
        t.mkdir()
    elif kind == "input-hardlink":
        os.link(tmp_path / "x.npy", t)
    elif kind == "suite-hardlink":
        os.link(tmp_path / "s.yaml", t)
    elif kind == "input-symlink":
        t.symlink_to(tmp_path / "x.npy")
    elif kind == "symlink-to-fifo":
        os.mkfifo(tmp_path / "fifo")
        t.symlink_to(tmp_path / "fifo")
    elif kind == "socket":
        import socket

        s = socket.socket(socket.AF_UNIX)
        s.bind(str(t))
        s.close()
    return t


KINDS = ["fifo", "directory", "input-hardlink", "suite-hardlink", "input-symlink", "symlink-to-fifo", "socket"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("writer", WRITERS)
def test_never_replaces_what_is_not_ours(run_cli, tmp_path, writer, kind):
    argv = _writers(tmp_path)[writer]
    # the call reads x.npy too, so that a link to it is a link to an input
    argv_for = (lambda t: [a if a != LOGITS else str(tmp_path / "x.npy") for a in argv(t)])
    t = _target(kind, tmp_path, SUFFIX[writer])
    before = _snapshot(t)
    inputs = {p: p.read_bytes() for p in (tmp_path / "x.npy", tmp_path / "s.yaml")}
    r = run_cli(argv_for(t))
    _refused(r)
    assert _snapshot(t) == before
    assert {p: p.read_bytes() for p in inputs} == inputs
    _no_temporaries(tmp_path)


@pytest.mark.parametrize("writer", ["record", "junit", "output"])
def test_devices_are_never_replaced(run_cli, tmp_path, writer):
    """A null device of the test's own (mknod, as root): a lossctl that replaced devices must not
    be able to replace the machine's /dev/null while this runs."""
    argv = _writers(tmp_path)[writer]
    target = tmp_path / f"null{SUFFIX[writer]}"
    try:
        os.mknod(target, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    except (PermissionError, AttributeError, OSError) as e:
        pytest.skip(f"cannot make a device node here (needs root): {e}")
    before = os.stat(target)
    r = run_cli(argv(target))
    _refused(r)
    after = os.lstat(target)
    assert stat.S_ISCHR(after.st_mode) and after.st_rdev == before.st_rdev


# --------------------------------------------------------------------------- links to our own files


def test_record_through_a_symlink_updates_the_suite_it_points_to(run_cli, tmp_path):
    suite = _suite(tmp_path)
    link = tmp_path / "link.yaml"
    link.symlink_to(suite.name)
    r = run_cli(["record"] + CALL + ["--to", link, "--name", "b"])
    assert r.code == 0, r.stderr
    assert link.is_symlink() and os.readlink(link) == suite.name
    assert "name: b" in suite.read_text()
    assert run_cli(["check", suite]).code == 0


def test_update_through_a_symlink_from_another_directory(run_cli, tmp_path):
    sub = tmp_path / "real"
    sub.mkdir()
    suite = sub / "s.yaml"
    suite.write_text(f"cases:\n  - name: a\n    loss: ce\n    logits: {LOGITS}\n    target: [0, 2]\n    expect: 0.25\n")
    suite.chmod(0o640)
    link = tmp_path / "link.yaml"
    link.symlink_to(suite)
    r = run_cli(["check", link, "--update"])
    assert r.code == 0, r.stderr
    assert link.is_symlink() and os.readlink(link) == str(suite)
    assert str(LOSS) in suite.read_text() and stat.S_IMODE(os.stat(suite).st_mode) == 0o640
    assert [p.name for p in sub.iterdir()] == ["s.yaml"]


def test_update_through_a_symlink_in_the_same_directory(run_cli, tmp_path):
    suite = _suite(tmp_path, expect=0.25)
    link = tmp_path / "link.yaml"
    link.symlink_to(suite.name)
    r = run_cli(["check", link, "--update"])
    assert r.code == 0, r.stderr
    assert link.is_symlink() and str(LOSS) in suite.read_text()


@pytest.mark.parametrize("writer", ["record", "output", "junit"])
def test_a_second_hard_link_is_not_cut_loose(run_cli, tmp_path, writer):
    argv = _writers(tmp_path)[writer]
    t = tmp_path / f"mine{SUFFIX[writer]}"
    t.write_bytes(b"cases: []\n" if writer == "record" else b"old")
    os.link(t, tmp_path / "other-name")
    r = run_cli(argv(t))
    _refused(r, (3,))
    assert os.stat(t).st_nlink == 2 and t.read_bytes() == (tmp_path / "other-name").read_bytes()


# --------------------------------------------------------------------------- read-only files


@pytest.mark.parametrize("writer", ["record", "output", "junit", "html"])
def test_read_only_targets_are_refused(run_cli, tmp_path, writer):
    argv = _writers(tmp_path)[writer]
    t = tmp_path / f"ro{SUFFIX[writer]}"
    t.write_bytes(b"cases: []\n")
    t.chmod(0o444)
    r = run_cli(argv(t))
    _refused(r, (3,))
    assert t.read_bytes() == b"cases: []\n" and stat.S_IMODE(os.stat(t).st_mode) == 0o444


def test_update_refuses_a_read_only_suite(run_cli, tmp_path):
    suite = _suite(tmp_path, expect=0.25)
    suite.chmod(0o444)
    before = suite.read_bytes()
    r = run_cli(["check", suite, "--update"])
    _refused(r, (3,))
    assert suite.read_bytes() == before


# --------------------------------------------------------------------------- modes


@pytest.fixture
def umask():
    def set_mask(mask: int) -> None:
        os.umask(mask)

    old = os.umask(0o022)
    os.umask(old)
    yield set_mask
    os.umask(old)


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
@pytest.mark.parametrize("writer", WRITERS)
def test_new_files_honour_the_umask(run_cli, tmp_path, umask, writer, mask):
    argv = _writers(tmp_path)[writer]
    umask(mask)
    t = tmp_path / f"new{SUFFIX[writer]}"
    r = run_cli(argv(t))
    assert r.code == 0, r.stderr
    assert stat.S_IMODE(os.stat(t).st_mode) == 0o666 & ~mask


@pytest.mark.parametrize("mode", [0o640, 0o600, 0o664])
def test_updates_keep_the_files_mode(run_cli, tmp_path, umask, mode):
    umask(0o022)
    suite = _suite(tmp_path, expect=0.25)
    suite.chmod(mode)
    assert run_cli(["check", suite, "--update"]).code == 0
    assert stat.S_IMODE(os.stat(suite).st_mode) == mode
    assert run_cli(["record"] + CALL + ["--to", suite]).code == 0
    assert stat.S_IMODE(os.stat(suite).st_mode) == mode
    out = tmp_path / "o.npy"
    out.write_bytes(b"")
    out.chmod(mode)
    assert run_cli(CALL + ["-o", out, "--force"]).code == 0
    assert stat.S_IMODE(os.stat(out).st_mode) == mode


# --------------------------------------------------------------------------- impossible paths


IMPOSSIBLE = ["file/o{s}", "/proc/o{s}", "/proc/self/o{s}", "missing/dir/o{s}", "/sys/o{s}"]


# record and --junit create missing directories (tested below): not impossible for them
IMPOSSIBLE_FOR = [(w, where) for w in ("output", "html", "record", "junit") for where in IMPOSSIBLE
                  if not (w in ("record", "junit") and where.startswith("missing/"))]


@pytest.mark.parametrize("writer,where", IMPOSSIBLE_FOR)
def test_no_temporary_file_can_be_made(run_cli, tmp_path, monkeypatch, writer, where):
    monkeypatch.chdir(tmp_path)
    argv = _writers(tmp_path)[writer]
    (tmp_path / "file").write_text("not a directory")
    t = where.format(s=SUFFIX[writer])
    r = run_cli(argv(t))
    _refused(r)


@pytest.mark.parametrize("writer", ["record", "junit"])
def test_missing_directories_are_created_for_suites_and_reports(run_cli, tmp_path, writer):
    argv = _writers(tmp_path)[writer]
    t = tmp_path / "a" / "b" / f"new{SUFFIX[writer]}"
    r = run_cli(argv(t))
    assert r.code == 0, r.stderr
    assert t.is_file()


@pytest.mark.parametrize("value", ["", " "])
def test_empty_output_paths_are_refused(run_cli, tmp_path, monkeypatch, value):
    monkeypatch.chdir(tmp_path)
    r = run_cli(CALL + ["-o", value])
    _refused(r, (2,))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("option", ["--html", "--plot", "--junit", "--to"])
def test_empty_paths_are_refused_for_every_writer(run_cli, tmp_path, monkeypatch, option):
    monkeypatch.chdir(tmp_path)
    suite = _suite(tmp_path)
    argv = {"--html": CALL + ["--html", ""], "--plot": CALL + ["--plot", ""],
            "--junit": ["check", suite, "--junit", ""], "--to": ["record"] + CALL + ["--to", ""]}[option]
    r = run_cli(argv)
    _refused(r, (2,))


@pytest.mark.parametrize("grad", [False, True])
def test_output_dash_writes_the_csv_to_stdout(run_cli, tmp_path, grad):
    flags = ["--grad"] if grad else []
    r = run_cli(CALL + flags + ["-o", "-"])
    assert r.code == 0, r.stderr
    f = tmp_path / "o.csv"
    assert run_cli(CALL + flags + ["-o", f]).code == 0
    assert r.stdout == f.read_text()
    assert r.stdout.splitlines()[0].startswith("sample,loss")
