"""Files: inputs opened only when they are regular files of bounded size; outputs written
atomically for files, in place for devices and FIFOs.

An input that is a FIFO, a device or a folder is never opened (so never blocks).

A regular output is written beside its target and moved over it only when
complete, so a failed or interrupted run never leaves half a file. An output
that is not a file to replace (``/dev/null``, a terminal, a FIFO,
``/dev/stdout``) is written to, never renamed over: renaming would turn the
device node into a regular file. Folders, sockets and block devices are
refused: writing a model onto a disk device would destroy it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import stat
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence

IN_PLACE = ("device", "fifo", "stream")
"""Output kinds written to in place (see :func:`output_kind`)."""

REFUSED = {
    "folder": "it is a folder",
    "socket": "it is a socket, not a file",
    "block device": "it is a block device (a disk): it is never written to",
}
"""Output kinds never written, and why."""

_DESCRIPTOR = re.compile(r"/proc/(?P<pid>[^/]+)/(?:task/[^/]+/)?fd/(?P<fd>\d+)")
"""A path that names an open file descriptor (what ``/dev/stdout`` and ``/dev/fd/N`` lead to)."""

_MAX_LINKS = 40


def _descriptor(path: str) -> re.Match | None:
    """The ``/proc/PID/fd/N`` that following ``path``'s links passes through, or None.

    ``/dev/stdout`` leads there, and from there to whatever the shell opened
    (a terminal, a pipe, or a regular file of someone's): such a path is a
    stream to write to, not a name to replace.
    """
    current = os.path.abspath(path)
    for _ in range(_MAX_LINKS):
        here = os.path.join(os.path.realpath(os.path.dirname(current)), os.path.basename(current))
        found = _DESCRIPTOR.fullmatch(here)
        if found:
            return found
        try:
            target = os.readlink(here)
        except OSError:
            return None
        current = os.path.join(os.path.dirname(here), target)
    return None


def output_kind(target: str | os.PathLike) -> str:
    """How an output path is written.

    Returns:
        ``"new"`` (nothing there, or a dangling link) and ``"file"`` (a
        regular file): written atomically; ``"device"`` (a character device,
        such as ``/dev/null``), ``"fifo"`` and ``"stream"`` (an open file
        descriptor, ``/dev/stdout``): written in place; ``"folder"``,
        ``"socket"`` and ``"block device"``: refused (:data:`REFUSED`).
    """
    path = os.fspath(target)
    if _descriptor(path) is not None:
        return "stream"
    try:
        mode = os.stat(path).st_mode  # through links: a link to /dev/null is the device
    except OSError:  # missing, a dangling link, a loop: a new name, the link itself replaced
        return "new"
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "folder"
    if stat.S_ISCHR(mode):
        return "device"
    if stat.S_ISFIFO(mode):
        return "fifo"
    if stat.S_ISBLK(mode):
        return "block device"
    return "socket"


def _write_in_place(target: str, tmp: str) -> None:
    """Copy the finished file ``tmp`` into the device, FIFO or stream ``target`` (never created, never truncated).

    A FIFO is opened without blocking, so one that nothing reads is an error
    at once, not a hang; a descriptor of this process (``/dev/stdout``) is
    written through itself, so its offset stays shared with what else it prints.
    """
    own = _descriptor(target)
    if own is not None and own["pid"] in ("self", "thread-self", str(os.getpid())):
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        fd, close = int(own["fd"]), False
    else:
        flags = os.O_WRONLY | os.O_APPEND | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_NONBLOCK", 0)
        try:
            fd, close = os.open(target, flags), True
        except OSError as e:
            if e.errno == errno.ENXIO:  # a FIFO that no process has open for reading
                raise OSError(
                    errno.ENXIO, "it is a FIFO that nothing reads (start its reader first)", target
                ) from None
            raise
    try:
        if close:
            os.set_blocking(fd, True)
        with open(tmp, "rb") as f:
            while chunk := f.read(1 << 20):
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view) :]
    finally:
        if close:
            os.close(fd)


def _temp_beside(target: str, tag: str = "tmp") -> str:
    """A fresh name beside ``target`` (same folder, same extension), not yet a file.

    Writers such as Keras refuse to overwrite some files, so the name is
    left free for them to create; the extension is kept because Keras chooses
    the format by it, and the folder because only a move within one
    file system is atomic.
    """
    folder = os.path.dirname(os.path.abspath(target))
    base, ext = os.path.splitext(os.path.basename(target))
    fd, tmp = tempfile.mkstemp(prefix=f".{base}.", suffix=f".{tag}{ext}", dir=folder)
    os.close(fd)
    os.unlink(tmp)
    return tmp


def write_all_atomically(writes: Sequence[tuple[str | os.PathLike, Callable[[str], object]]]) -> None:
    """Write several files as one: all of them, or none.

    Each ``write(tmp)`` writes a temporary file (beside its target; for a
    target written in place, in a private temporary folder). Only when every
    one succeeded are they copied into the targets written in place, then
    moved over the others; should a move fail, the targets already moved get
    their old files back. On any failure every replaceable target is left
    byte for byte as it was, and no temporary file is left.

    Raises:
        IsADirectoryError: A target is a folder (before anything is written).
        OSError: A target is a socket or block device (before anything is
            written), or a FIFO that nothing reads.
        Exception: Whatever a ``write`` raised.
    """
    targets = [os.fspath(target) for target, _ in writes]
    kinds = [output_kind(target) for target in targets]
    for target, kind in zip(targets, kinds):
        if kind in REFUSED:
            number = errno.EISDIR if kind == "folder" else errno.EINVAL
            raise (IsADirectoryError if kind == "folder" else OSError)(number, REFUSED[kind], target)
    private: str | None = None  # the temporary files of targets written in place
    temps: list[str] = []
    backups: list[str] = []
    try:
        for i, (target, kind, (_, write)) in enumerate(zip(targets, kinds, writes)):
            if kind in IN_PLACE:
                private = private or tempfile.mkdtemp(prefix="modelspec-")
                tmp = os.path.join(private, f"output{i}{os.path.splitext(target)[1]}")
            else:
                tmp = _temp_beside(target)
            temps.append(tmp)
            write(tmp)
        # In place first: those cannot be taken back, so no file is replaced unless they were written.
        for target, kind, tmp in zip(targets, kinds, temps):
            if kind in IN_PLACE:
                _write_in_place(target, tmp)
        moved: list[tuple[str, str | None]] = []
        try:
            for target, kind, tmp in zip(targets, kinds, temps):
                if kind in IN_PLACE:
                    continue
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
        if private is not None:
            shutil.rmtree(private, ignore_errors=True)


def file_id(path: str | os.PathLike) -> tuple[int, int] | None:
    """The file ``path`` leads to (device and inode, links followed), or None when there is none.

    Two paths name the same file exactly when their ids are equal, however
    they are spelt (links, folder links, hard links, ``..``).
    """
    try:
        info = os.stat(path)
    except (OSError, ValueError):
        return None
    return info.st_dev, info.st_ino


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[str]:
    """A temporary path beside ``target`` that replaces it only when the ``with`` block succeeds.

    For an output that is replaced as a whole, whose writer checks it before it
    counts (a serving file run against Keras). Only a regular file or a new
    name is replaced: anything else (a device, a FIFO, a stream, a folder) is
    refused, never renamed over.

    Raises:
        OSError: ``target`` is not a regular file nor a new name.
    """
    target = os.fspath(target)
    kind = output_kind(target)
    if kind not in ("new", "file"):
        why = REFUSED.get(kind, f"it is a {kind}, not a file: this output is only written to a file")
        raise OSError(errno.EINVAL, why, target)
    tmp = _temp_beside(target)
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def write_atomically(target: str | os.PathLike, write: Callable[[str], object]) -> None:
    """Call ``write(tmp_path)``, then move the file over ``target`` (or copy it into a device or FIFO)."""
    write_all_atomically([(target, write)])


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
