"""The order of the flat layers, and the instance nodes nothing uses."""

from __future__ import annotations

from typing import Any

from ..order import depth_first
from ..spec import split_reference


def in_order(layers: dict[str, Any]) -> dict[str, Any]:
    """Flat layers in the order they are called, each after what it takes (as a reader follows the text)."""

    def takes(name: str) -> list[str]:
        entry = layers[name]
        needs = [split_reference(r)[0] for r in strings(entry.get("inputs"))]
        needs += [entry["share"]] if isinstance(entry.get("share"), str) else []
        return [n for n in needs if n in layers]

    return {name: layers[name] for name in depth_first(layers, takes)}  # a cycle: the graph stage says


def strings(raw: Any) -> list[str]:
    if isinstance(raw, str):
        return [raw]
    if isinstance(raw, list):
        return [s for v in raw for s in strings(v)]
    if isinstance(raw, dict):
        return [s for v in raw.values() for s in strings(v)]
    return []


def prune(layers: dict[str, Any], origins: dict[tuple, Any], outputs: Any) -> None:
    """Leave out the nodes of block instances that nothing uses, as a Keras functional model does.

    A block whose ``outputs`` is chosen by a param (``"${'add' if residual else 'bn'}"``) keeps
    the node it did not choose in its body; the instance computes only what its outputs need.
    A node written at top level and used by nothing stays, for the graph stage to report.
    """
    wanted = [split_reference(r)[0] for r in strings(outputs)]
    reached: set[str] = set()
    while wanted:
        name = wanted.pop()
        if name in reached or name not in layers:
            continue
        reached.add(name)
        data = layers[name]
        wanted += [split_reference(r)[0] for r in strings([data.get("inputs"), data.get("share")])]
    for name in [n for n in layers if n not in reached and origins[("layers", n)].chain]:
        del layers[name]
