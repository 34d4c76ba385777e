"""The expansion stage, between spec and graph: ``${...}`` expressions, params, blocks and imports.

:func:`expand` turns a spec that uses them into the plain spec it stands for,
every part of which still points at the line it was written on.
"""

from .document import ExpandedDocument
from .expander import (
    MAX_IMPORT_DEPTH,
    MAX_NESTING,
    MAX_NODES,
    MAX_STEPS,
    OverrideError,
    expand,
    merge_repeats,
    needs_expansion,
)

__all__ = [
    "MAX_IMPORT_DEPTH",
    "MAX_NESTING",
    "MAX_NODES",
    "MAX_STEPS",
    "ExpandedDocument",
    "OverrideError",
    "expand",
    "merge_repeats",
    "needs_expansion",
]
