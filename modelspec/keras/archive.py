"""A ``.keras`` model file read as an archive, before Keras loads anything: bounded, never a zip bomb.

Keras writes a model file as a zip archive of a few entries (``config.json``,
the weights, ``metadata.json``; ``modelspec train`` adds ``modelspec.json``).
Everything here reads the zip directory or one bounded entry: nothing is
unpacked for Keras, nothing deserialized.
"""

from __future__ import annotations

import zipfile

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


CONFIG_BYTES_PER_LAYER = 300
"""Fewer bytes than a layer takes in ``config.json``: its size over this bounds the layer count from above."""


def config_bytes(path: str) -> int:
    """The unpacked size of a model file's ``config.json`` as its zip directory says; 0 when unreadable."""
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.getinfo("config.json").file_size
    except (OSError, KeyError, zipfile.BadZipFile, ValueError):
        return 0
