"""The expanded document: flat spec data whose every part still points at the line it came from."""

from __future__ import annotations

from typing import Any

from ..errors import Origin, Path, Place
from ..source import Document


class ExpandedDocument(Document):
    """The data of an expanded spec, with a map back to where each part was written.

    A path of the flat data is placed through its longest mapped prefix: the
    flat node ``layers.stage2-1-a`` maps to the entry ``blocks.conv_bn.layers[0]``
    of the file that defines the block, with the notes of the instances that
    made it; anything not mapped is where it was in the spec itself.

    Args:
        root: The spec the expansion came from (its name and folder stand for the expansion's).
        data: The flat spec data.
        origins: Flat path -> the origin of what is there.
        frames: Flat path of a layer -> the block instances it was made in, outermost first.
        imported: The files read for the spec's imports (absolute paths), recorded in ``files`` after the spec's.
    """

    def __init__(
        self,
        root: Document,
        data: Any,
        origins: dict[Path, Origin],
        frames: dict[Path, tuple] | None = None,
        imported: tuple[str, ...] = (),
    ):
        self.name = root.name
        self.files = (*root.files, *imported)
        self.base_dir = root.base_dir
        self.data = data
        self.root = root
        self.origins = origins
        self.frames = frames or {}

    def place(self, path: Path, *, key: bool = False) -> Place:
        path = tuple(path)
        for n in range(len(path), -1, -1):
            origin = self.origins.get(path[:n])
            if origin is not None:
                break
        else:
            return self.root.place(path, key=key)
        target = origin.path + path[n:]
        if origin.doc is None:  # an entry made in Python: known by its path only
            return Place("<spec>", target, None, None, origin.chain)
        place = origin.doc.place(target, key=key)
        return place._replace(notes=place.notes + origin.chain)
