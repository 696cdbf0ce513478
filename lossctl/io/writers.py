"""Every file lossctl writes goes through this module: ``-o``, ``--html``, ``--plot``, ``--junit``,
``record --to``, ``check --update`` and the gradient shards of the Dask backend (the encodings of ``-o`` are in
:mod:`lossctl.io.outstream`).

One policy for where a file may be written (:func:`check_target`):

* a path is given (``''`` is refused), and it names a regular file or nothing yet: a directory,
  a device, a FIFO or a socket is never replaced;
* a symbolic link is written at the file it points to (the link stays a link);
* never one of the inputs or the suite's data, whatever the name (``./x``, a symbolic link,
  a second hard link: files are compared by device and inode);
* never a file with several hard links (renaming over one name would cut it loose from the others);
* a read-only file is refused like any unwritable one (exit 3).

One way of writing (:class:`TempFile`): a temporary file in the target's directory, ``fsync``,
the mode (the umask's for a new file, the old file's on a replacement), then ``rename`` over
the target with SIGINT/SIGTERM held back, so a reader sees the old file or the new one, never
half of one. Temporary files not yet renamed are removed by :func:`remove_temporaries` (the
command line's error boundary calls it on every exit: errors, Ctrl-C, SIGTERM).

A read-modify-write of a suite holds :func:`locked` (an ``fcntl`` lock on the suite's
directory), so concurrent ``record --to`` and ``check --update`` calls serialise instead of
losing each other's cases.

Every failure of the file system (no space, permission, read-only file system, a missing
directory) is an :class:`~lossctl.errors.InputError` (exit 3) naming the file.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import io
import os
import signal
import stat
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from ..errors import InputError, UsageError, ref

OUTPUT_SUFFIXES = (".npy", ".npz", ".csv", ".safetensors")
PAGE_SUFFIXES = (".html", ".htm")

# Temporary files created and not yet renamed into place or removed (absolute paths); what is
# left at exit (a worker thread that made one after an interrupt) goes then too.
_LIVE: set[str] = set()


# --------------------------------------------------------------------------- policy


def check_output_path(path: Path | str, inputs: Iterable[Path], force: bool, *, key: str = "output",
                      suffixes: tuple[str, ...] = OUTPUT_SUFFIXES) -> Path:
    """:func:`check_target` for a file named by an option ``key`` with one of ``suffixes``;
    an existing file is replaced only with ``force`` (which never allows writing over an input)."""
    text = os.fspath(path)
    name = ref(key)
    if text == "":
        raise UsageError(f"{name}: empty path; name a file")
    suffix = Path(text).suffix.lower()
    if suffix not in suffixes:
        raise UsageError(f"{name} {text}: unknown file type {suffix or '(none)'!r}; use {_choices(suffixes)}")
    return check_target(text, what=f"{name} {text}", inputs=inputs, force=force, force_hint=ref("force"))


def check_target(path: Path | str, *, what: str, inputs: Iterable[Path | str] = (), force: bool = True,
                 force_hint: str | None = None, make_dirs: bool = False) -> Path:
    """The file to write for ``path`` (a symbolic link's target), or a refusal: see the module doc.
    ``what`` starts each message (``--junit r.xml``); ``inputs`` are never written over;
    an existing file is replaced only with ``force``; ``make_dirs``: a missing directory will be created."""
    text = os.fspath(path)
    if text == "":
        raise UsageError(f"{what}: empty path; name a file")
    given = Path(text)
    target = Path(os.path.realpath(given))
    st = _stat(target)
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise UsageError(f"{what}: is a directory; name a file")
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise UsageError(f"{what}: exists and is not a regular file (a device, FIFO or socket); "
                         "lossctl writes regular files only")
    for p in inputs:
        if _same_file(p, target, st):
            hint = f", not even with {force_hint}" if force_hint else ""
            raise UsageError(f"{what}: is one of the inputs; lossctl never writes over an input file{hint}")
    if st is not None:
        if not force:
            raise UsageError(f"{what}: exists; pass {force_hint or 'force'} to replace it")
        if st.st_nlink > 1:
            raise InputError(f"{what}: has {st.st_nlink} hard links; replacing it would cut it loose from "
                             "the other names, so lossctl does not")
        if not st.st_mode & 0o222 or not os.access(target, os.W_OK):
            raise InputError(f"{what}: is read-only; lossctl does not replace it")
    directory = target.parent
    if not directory.is_dir():
        if make_dirs and not directory.exists():
            return target
        raise UsageError(f"{what}: directory {given.parent} does not exist")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise InputError(f"{what}: cannot write in {given.parent if str(given.parent) else '.'}: permission denied")
    return target


def _stat(path: Path) -> os.stat_result | None:
    try:
        return os.stat(path)
    except (OSError, ValueError):
        return None


def _same_file(a: Path | str, target: Path, target_st: os.stat_result | None) -> bool:
    try:
        if Path(os.path.realpath(a)) == target:
            return True
    except (OSError, ValueError):
        return False
    if target_st is None:
        return False
    a_st = _stat(Path(a))
    return a_st is not None and (a_st.st_dev, a_st.st_ino) == (target_st.st_dev, target_st.st_ino)


def _choices(suffixes: tuple[str, ...]) -> str:
    return ", ".join(suffixes[:-1]) + " or " + suffixes[-1] if len(suffixes) > 1 else suffixes[0]


def write_error(what: str, e: OSError) -> InputError:
    """The exit-3 error for a failed write of ``what``."""
    reason = e.strerror or str(e)
    if e.errno == errno.ENOSPC:
        reason = "no space left on device"
    elif e.errno == errno.EROFS:
        reason = "read-only file system"
    return InputError(f"{what}: cannot write: {reason}")


# --------------------------------------------------------------------------- writing


class TempFile:
    """A temporary file next to ``target`` (``.NAME.XXXX{suffix}``), open for binary writing as
    ``file``; :meth:`commit` renames it over ``target``; leaving the ``with`` block without a
    commit removes it."""

    def __init__(self, target: Path, what: str, suffix: str = ".tmp"):
        self.target = Path(target)
        self.what = what
        fd, name = _create_registered(self.target, suffix, what)
        self.path = Path(name)
        self.file = os.fdopen(fd, "wb")

    def __enter__(self) -> "TempFile":
        return self

    def __exit__(self, *exc) -> None:
        self.discard()

    def close(self) -> None:
        """Flush, ``fsync`` and close (the data is on disk before any rename)."""
        if not self.file.closed:
            try:
                self.file.flush()
                os.fsync(self.file.fileno())
                self.file.close()
            except OSError as e:
                raise write_error(self.what, e) from None

    def discard(self) -> None:
        """Remove the file (nothing happens after a commit)."""
        try:
            self.file.close()
        except OSError:
            pass
        if str(self.path) in _LIVE:
            _unlink(self.path)
            _LIVE.discard(str(self.path))

    def preallocate_npy(self, shape: tuple[int, ...], dtype) -> None:
        """Make the file a ``.npy`` of ``shape`` and ``dtype`` (header, then zeros; sparse where the
        file system allows), for writers that fill its rows in place (``np.load(mmap_mode="r+")``)."""
        dtype = np.dtype(dtype)
        header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": tuple(shape)}
        try:
            np.lib.format.write_array_header_1_0(self.file, header)
        except ValueError:  # a header over 64 KiB
            np.lib.format.write_array_header_2_0(self.file, header)
        try:
            self.file.flush()
            os.ftruncate(self.file.fileno(), self.file.tell() + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize)
        except OSError as e:
            raise write_error(self.what, e) from None

    def commit(self, target: Path | None = None) -> None:
        """Flush and ``fsync``, give the file its mode, rename it over ``target`` (default: the
        one it was made for)."""
        target = Path(target) if target is not None else self.target
        self.close()
        try:
            _set_mode(self.path, target)
            with _signals_held():
                os.replace(self.path, target)
                _LIVE.discard(str(self.path))
            _fsync_directory(target.parent)
        except OSError as e:
            raise write_error(self.what, e) from None


def _create_registered(target: Path, suffix: str, what: str) -> tuple[int, str]:
    """A new file ``.NAME.XXXXXXXX{suffix}`` next to ``target`` (mode 0600, as ``mkstemp``), listed in
    :data:`_LIVE` before it exists: an interrupt at any moment (a signal's handler may run in the
    main thread while another thread creates the file) leaves nothing that the cleanup misses."""
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)
    for _ in range(100):
        name = os.path.join(os.path.abspath(target.parent), f".{target.name}.{os.urandom(4).hex()}{suffix}")
        with _signals_held():  # the name is another's file for as long as it is listed after a collision
            _LIVE.add(name)
            try:
                return os.open(name, flags, 0o600), name
            except FileExistsError:
                _LIVE.discard(name)
            except OSError as e:
                _LIVE.discard(name)
                raise write_error(what, e) from None
    raise write_error(what, FileExistsError(errno.EEXIST, "no free temporary name", str(target.parent)))


def write_atomic(path: Path | str, data: bytes | str, *, what: str) -> None:
    """``data`` as the whole content of ``path`` (a symbolic link: of its target), or nothing written."""
    target = Path(os.path.realpath(path))
    if isinstance(data, str):
        data = data.encode("utf-8")
    with TempFile(target, what) as tmp:
        try:
            tmp.file.write(data)
        except OSError as e:
            raise write_error(what, e) from None
        tmp.commit()


def write_text(path: Path | str, text: str, *, what: str | None = None) -> None:
    """A text file (UTF-8, line ends as given) replaced whole: :func:`write_atomic`."""
    write_atomic(path, text.encode("utf-8"), what=what or str(path))


def write_page(path: Path, text: str) -> None:
    """A page (``--html``) written whole or not at all."""
    write_atomic(path, text.encode("utf-8"), what=f"{ref('html')} {path}")


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _set_mode(tmp: Path, target: Path) -> None:
    """The replaced file's mode (and owner, where allowed); a new file's from the umask."""
    st = _stat(target)
    if st is None:
        os.chmod(tmp, 0o666 & ~_umask())
        return
    os.chmod(tmp, stat.S_IMODE(st.st_mode))
    if hasattr(os, "chown"):
        with contextlib.suppress(OSError):
            os.chown(tmp, st.st_uid, st.st_gid)


def _fsync_directory(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """SIGINT and SIGTERM wait until the block is done (a rename is never half-observed)."""
    held = {signal.SIGINT, signal.SIGTERM}
    try:
        old = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    except (AttributeError, OSError, ValueError):
        yield
        return
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def remove_temporaries() -> None:
    """Remove every temporary file not yet renamed into place (an interrupted or failed write)."""
    for name in list(_LIVE):
        _unlink(Path(name))
        _LIVE.discard(name)


def _unlink(path: Path) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


# --------------------------------------------------------------------------- locking


@contextlib.contextmanager
def locked(path: Path | str, *, what: str) -> Iterator[Path]:
    """Hold an exclusive ``fcntl`` lock for a read-modify-write of ``path`` (yields the file to
    read and write: a symbolic link's target). The lock is on the file's directory, which outlives
    the renames that replace the file."""
    target = Path(os.path.realpath(path))
    directory = target.parent
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError as e:
        raise InputError(f"{what}: cannot lock {directory}: {e.strerror or e}") from None
    try:
        try:
            import fcntl
        except ImportError:  # no fcntl (Windows): no lock
            fcntl = None
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
            except OSError as e:
                raise InputError(f"{what}: cannot lock {directory}: {e.strerror or e}") from None
        yield target
    finally:
        os.close(fd)  # releases the lock


atexit.register(remove_temporaries)
