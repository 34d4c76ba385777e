"""Files: inputs opened only when they are regular files of bounded size, outputs written atomically.

A failed or interrupted run never leaves half an output file; a FIFO, a
device or a folder given as an input is never opened (so never blocks).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator, Sequence


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[str]:
    """A temporary path beside ``target`` that replaces it only on success.

    The temporary file keeps ``target``'s extension (Keras chooses the format
    by it) and lives in the same folder, so the final ``os.replace`` is
    atomic. On any failure it is removed and ``target`` is left byte for byte
    as it was.
    """
    target = os.fspath(target)
    folder = os.path.dirname(os.path.abspath(target))
    base, ext = os.path.splitext(os.path.basename(target))
    fd, tmp = tempfile.mkstemp(prefix=f".{base}.", suffix=f".tmp{ext}", dir=folder)
    os.close(fd)
    os.unlink(tmp)  # writers such as Keras refuse to overwrite some files; let them create it
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _temp_beside(target: str, tag: str = "tmp") -> str:
    """A fresh name beside ``target`` (same folder, same extension), not yet a file."""
    folder = os.path.dirname(os.path.abspath(target))
    base, ext = os.path.splitext(os.path.basename(target))
    fd, tmp = tempfile.mkstemp(prefix=f".{base}.", suffix=f".{tag}{ext}", dir=folder)
    os.close(fd)
    os.unlink(tmp)
    return tmp


def write_all_atomically(writes: Sequence[tuple[str | os.PathLike, Callable[[str], object]]]) -> None:
    """Write several files as one: all of them, or none.

    Each ``write(tmp)`` writes a temporary file beside its target; only when
    every one succeeded are they moved over their targets, and should a move
    fail, the targets already moved get their old files back. On any failure
    every target is left byte for byte as it was, and no temporary file is left.

    Raises:
        IsADirectoryError: A target is a folder (before anything is written).
        Exception: Whatever a ``write`` raised.
    """
    targets = [os.fspath(target) for target, _ in writes]
    for target in targets:
        if os.path.isdir(target):
            raise IsADirectoryError(errno.EISDIR, "is a folder", target)
    temps: list[str] = []
    backups: list[str] = []
    try:
        for target, (_, write) in zip(targets, writes):
            tmp = _temp_beside(target)
            temps.append(tmp)
            write(tmp)
        moved: list[tuple[str, str | None]] = []
        try:
            for target, tmp in zip(targets, temps):
                backup = None
                if os.path.lexists(target):
                    if os.path.isdir(target):
                        raise IsADirectoryError(errno.EISDIR, "is a folder", target)
                    backup = _temp_beside(target, "old")
                    try:
                        os.link(target, backup, follow_symlinks=False)  # the old file keeps a name
                    except OSError:
                        shutil.copy2(target, backup, follow_symlinks=False)
                    backups.append(backup)
                os.replace(tmp, target)
                moved.append((target, backup))
        except BaseException:
            for target, backup in reversed(moved):
                with contextlib.suppress(OSError):
                    if backup is not None:
                        os.replace(backup, target)
                    else:
                        os.unlink(target)
            raise
    finally:
        for path in temps + backups:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether two paths name the same file (the same real path, or the same file through a hard link)."""
    a, b = os.fspath(a), os.fspath(b)
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def write_atomically(target: str | os.PathLike, write: Callable[[str], object]) -> None:
    """Call ``write(tmp_path)``, then move the file over ``target``."""
    with atomic_path(target) as tmp:
        write(tmp)


def write_text_atomically(target: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``target`` atomically."""

    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)

    write_atomically(target, write)


def open_regular(path: str, limit: int) -> int:
    """Open ``path`` for reading if it is a regular file of at most ``limit`` bytes; the file descriptor.

    Checked by name before it is opened (a FIFO, a device or a folder is
    never opened, so never blocks), then opened without blocking and checked
    again on the open file, so a name swapped in between cannot slip through.

    Raises:
        OSError: The file cannot be opened (``FileNotFoundError``, ...).
        ValueError: It is not a regular file, or it is over ``limit`` bytes (the message says which).
    """
    _regular(os.stat(path), limit)  # a device is not even opened: opening some has effects
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    fd = os.open(path, flags)
    try:
        _regular(os.fstat(fd), limit)  # what was opened, should the name have changed since
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _regular(info: os.stat_result, limit: int) -> None:
    """Raise ValueError (saying what it is) unless ``info`` is a regular file of at most ``limit`` bytes."""
    mode = info.st_mode
    if stat.S_ISDIR(mode):
        raise ValueError("is a folder, not a file")
    if not stat.S_ISREG(mode):
        kind = (
            "a FIFO"
            if stat.S_ISFIFO(mode)
            else "a device"
            if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
            else "a socket or other special file"
        )
        raise ValueError(f"is {kind}, not a regular file: it is not read")
    if info.st_size > limit:
        raise ValueError(f"is {info.st_size:,} bytes; at most {limit:,} are read")
