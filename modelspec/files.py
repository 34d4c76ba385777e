"""Writing output files atomically: a failed or interrupted run never leaves half a file."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator


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
