"""The shape rule of ``get_item`` op nodes (``x[:, 0, :]``): the key read by modelspec's own parser, never evaluated."""

from __future__ import annotations

from typing import Any

from ...spec.subscript import SubscriptError, format_key, parse_key
from .shape_utils import NotInferable, ShapeError, fmt

Shape = tuple[int | None, ...]


def get_item(name: str, named: dict[str, Any], args: dict[str, Any]) -> Shape:
    """``x[key]``: an integer drops its axis, a slice keeps it (its length when known), None adds one of 1."""
    x = named["x"]
    try:
        items = parse_key(args["key"]) if isinstance(args.get("key"), str) else None
    except SubscriptError:
        items = None
    if items is None:
        raise NotInferable(f"{name}: the key is not one modelspec can read (the spec stage reports it)")
    named_axes = sum(item is not None and item is not Ellipsis for item in items)
    if named_axes > len(x):
        raise ShapeError(
            f"{name}: the key {format_key(items)} indexes {named_axes} axes of {fmt(x)}, which has {len(x)}",
            argument="key",
        )
    if Ellipsis not in items:
        items = (*items, Ellipsis)
    out: list[int | None] = []
    axis = 0
    for item in items:
        if item is Ellipsis:
            rest = len(x) - named_axes
            out += x[axis : axis + rest]
            axis += rest
        elif item is None:
            out.append(1)
        elif isinstance(item, slice):
            size = x[axis]
            out.append(None if size is None else len(range(*item.indices(size))))
            axis += 1
        else:
            size = x[axis]
            if size is not None and not -size <= item < size:
                raise ShapeError(
                    f"{name}: index {item} is out of range for axis {axis} of {fmt(x)}, which has {size}",
                    argument="key",
                )
            axis += 1
    return tuple(out)
