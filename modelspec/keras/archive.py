"""A ``.keras`` model file read as an archive, before Keras loads anything: bounded, never a zip bomb.

Keras writes a model file as a zip archive of a few entries (``config.json``,
the weights, ``metadata.json``; ``modelspec build -o`` and ``modelspec train``
add :data:`METADATA`).
Everything here reads the zip directory or one bounded entry: nothing is
unpacked for Keras, nothing deserialized. Only a regular file is opened (a
FIFO or a device never is), its zip directory must pass :func:`check_archive`
before an entry is read, and a ``config.json`` describing more layers or calls
than a spec may have (:data:`MAX_LAYERS`) is refused before Keras builds any.
"""

from __future__ import annotations

import contextlib
import json
import os
import zipfile
from collections.abc import Iterator
from typing import Any

from ..errors import Problem, SpecError
from ..expand import MAX_NODES
from ..files import open_regular
from .messages import clipped

MAX_MODEL_BYTES = 4 << 30
"""Largest model file opened (4 GiB)."""
MAX_MEMBERS = 1_000
"""Most entries in a model archive (Keras writes a handful)."""
MAX_UNPACKED_BYTES = 4 << 30
"""Largest total size of an archive's entries once unpacked (4 GiB)."""
MAX_CONFIG_BYTES = 64 << 20
"""Largest ``config.json`` (the model's architecture; 10,000 layers take a few MiB)."""
MAX_RATIO = 100
"""Largest compression ratio of an entry over :data:`RATIO_FLOOR` bytes (Keras stores entries uncompressed)."""
RATIO_FLOOR = 1 << 20
METADATA = "modelspec.json"
"""The zip entry modelspec adds to a ``.keras`` file: what ``predict`` needs, and the model's provenance."""
MAX_METADATA_BYTES = 1 << 20
"""Largest :data:`METADATA` read (1 MiB)."""


def check_archive(archive: zipfile.ZipFile, size: int) -> str | None:
    """What makes a model archive unsafe to unpack (a zip bomb), from its directory alone; None when it is fine.

    Nothing is decompressed: the member count, each member's declared size,
    ``config.json``'s size, the total unpacked size, each member's compression
    ratio, and whether members share their compressed bytes (overlapping
    entries, the trick of the largest zip bombs) are read from the zip
    directory. ``zipfile`` never unpacks more than a member's declared size.

    Args:
        archive: The open archive.
        size: The archive file's size in bytes.
    """
    members = archive.infolist()
    if len(members) > MAX_MEMBERS:
        return f"it holds {len(members):,} entries; a model archive holds at most {MAX_MEMBERS:,}"
    total = compressed = 0
    for info in members:
        if info.file_size > MAX_UNPACKED_BYTES:
            return f"entry '{info.filename[:80]}' unpacks to {info.file_size:,} bytes; at most {MAX_UNPACKED_BYTES:,}"
        if info.filename == "config.json" and info.file_size > MAX_CONFIG_BYTES:
            return f"its config.json is {info.file_size:,} bytes; at most {MAX_CONFIG_BYTES:,} are read"
        if info.file_size > RATIO_FLOOR and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            return (
                f"entry '{info.filename[:80]}' unpacks {info.file_size // max(info.compress_size, 1):,} times "
                f"larger than it is stored (at most {MAX_RATIO}): a zip bomb"
            )
        total += info.file_size
        compressed += info.compress_size
    if total > MAX_UNPACKED_BYTES:
        return f"its entries unpack to {total:,} bytes; at most {MAX_UNPACKED_BYTES:,}"
    if compressed > size:
        return "its entries share their compressed bytes (overlapping entries): a zip bomb"
    if "config.json" not in archive.NameToInfo:
        return "it has no config.json: it is not a Keras model archive"
    return None


MAX_LAYERS = MAX_NODES
"""Most layers, and most layer calls, a model file may describe: the most an expanded spec may have."""


def _fail(path: str, message: str, hint: str | None = None, code: str = "model-file") -> SpecError:
    return SpecError([Problem.in_file(code, path, message, hint, path=("model",))])


@contextlib.contextmanager
def open_archive(path: str | os.PathLike) -> Iterator[zipfile.ZipFile]:
    """The model file's zip archive, open, once its directory passes :func:`check_archive`.

    Raises:
        SpecError: The file is missing, not a regular file, over
            :data:`MAX_MODEL_BYTES`, not a zip archive, or over the archive
            limits (``model-archive``); the problem names the file.
    """
    name = os.fspath(path)
    try:
        fd = open_regular(name, MAX_MODEL_BYTES)
    except ValueError as e:
        raise _fail(name, f"{e}; a model is a .keras file") from None
    except FileNotFoundError:
        raise _fail(name, "no such file") from None
    except PermissionError:
        raise _fail(name, "permission denied: the file cannot be read") from None
    except OSError as e:
        raise _fail(name, f"cannot read the file: {e.strerror or e}") from None
    with os.fdopen(fd, "rb") as f:
        try:
            archive = zipfile.ZipFile(f)
        except (zipfile.BadZipFile, EOFError, ValueError) as e:
            raise _fail(name, f"not a .keras model file (not a valid zip archive: {clipped(e)})") from None
        except OSError as e:
            raise _fail(name, f"cannot read the file: {e.strerror or e}") from None
        with archive:
            unsafe = check_archive(archive, os.fstat(f.fileno()).st_size)
            if unsafe is not None:
                raise _fail(name, f"refused before unpacking: {unsafe}", code="model-archive")
            yield archive


def read_member(archive: zipfile.ZipFile, member: str, path: str | os.PathLike) -> bytes:
    """One entry of an archive :func:`open_archive` accepted (its size is bounded by then).

    Raises:
        SpecError: The entry is missing or cannot be unpacked.
    """
    name = os.fspath(path)
    try:
        return archive.read(member)
    except KeyError:
        raise _fail(name, f"not a .keras model file (the archive has no {member})") from None
    except (zipfile.BadZipFile, EOFError, ValueError, NotImplementedError) as e:
        raise _fail(name, f"its {member} cannot be read from the archive: {clipped(e)}") from None
    except OSError as e:
        raise _fail(name, f"cannot read the file: {e.strerror or e}") from None


def read_metadata_bytes(path: str | os.PathLike) -> bytes | None:
    """A model file's :data:`METADATA` entry, unparsed; None when the archive has none.

    Raises:
        SpecError: The file cannot be opened as a model archive, or the entry
            is over :data:`MAX_METADATA_BYTES` or cannot be unpacked.
    """
    name = os.fspath(path)
    with open_archive(name) as archive:
        info = archive.NameToInfo.get(METADATA)
        if info is None:
            return None
        if info.file_size > MAX_METADATA_BYTES:
            raise _fail(name, f"{METADATA} is {info.file_size} bytes; at most {MAX_METADATA_BYTES} are read")
        return read_member(archive, METADATA, name)


def read_config(path: str | os.PathLike) -> Any:
    """A model file's ``config.json``, parsed, once its size is checked: at most :data:`MAX_LAYERS` layers and calls.

    Raises:
        SpecError: The file cannot be opened as a model archive, its
            ``config.json`` is not JSON, or it describes too large a model
            (``model-limit``).
    """
    name = os.fspath(path)
    with open_archive(name) as archive:
        raw = read_member(archive, "config.json", name)
    try:
        config = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:  # the file may come from anywhere
        raise _fail(
            name, f"not a .keras model file (its config.json is not JSON: {clipped(e)[:200]})"
        ) from None
    layers, calls = graph_size(config, MAX_LAYERS)
    if layers > MAX_LAYERS or calls > MAX_LAYERS:
        what = "layers" if layers > MAX_LAYERS else "layer calls"
        raise _fail(
            name,
            f"its config.json describes more than {MAX_LAYERS:,} {what}, the most a spec may hold: "
            "refused before Keras loads anything",
            code="model-limit",
        )
    return config


def graph_size(config: Any, limit: int | None = None) -> tuple[int, int]:
    """How many layers and layer calls a model's config describes, nested models and wrapped layers included.

    Counts the entries of every ``layers`` list, every wrapped ``layer``, and
    every layer's ``inbound_nodes`` (its calls), walking the parsed JSON
    without recursion; stops as soon as either count passes ``limit``.
    """
    layers = calls = 0
    stack = [config]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                if key == "layers" and isinstance(item, list):
                    layers += sum(isinstance(x, dict) for x in item)
                elif key in ("layer", "backward_layer") and isinstance(item, dict):
                    layers += 1
                elif key == "inbound_nodes" and isinstance(item, list):
                    calls += len(item)
                if isinstance(item, (dict, list)):
                    stack.append(item)
        elif isinstance(value, list):
            stack.extend(x for x in value if isinstance(x, (dict, list)))
        if limit is not None and (layers > limit or calls > limit):
            break
    return layers, calls
