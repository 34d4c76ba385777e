"""References in exported spec data (``name``, ``name[k]``, lists and mappings of them), for folding."""

from __future__ import annotations

from typing import Any


def node_of(ref: str) -> str:
    """The node a reference names: ``add_3[0]`` -> ``add_3``."""
    return ref.split("[", 1)[0]


def map_refs(raw: Any, fn: Any) -> Any:
    """``raw`` (a reference, or a list or mapping of them) with ``fn`` applied to each reference."""
    if isinstance(raw, str):
        return fn(raw)
    if isinstance(raw, list):
        return [map_refs(r, fn) for r in raw]
    if isinstance(raw, dict):
        return {k: map_refs(r, fn) for k, r in raw.items()}
    return raw


def refs(raw: Any) -> list[str]:
    """The references in ``raw``, in order."""
    found: list[str] = []
    map_refs(raw, lambda r: found.append(r) or r)
    return found
