"""Keys a spec writes for what Keras code indexes: a ``GetItem`` operation's key (``x[:, 0, :]``) as
``get_item`` key text, and the keys of a layer's dict outputs (``encoder[sparse]``)."""

from __future__ import annotations

from typing import Any

from ...spec.subscript import format_key


def written_key(key: Any) -> str | None:
    """``(slice(None), 0, slice(None))`` -> ``"[:, 0, :]"``; None when an item is not static.

    Static items are integers (numpy's too), slices of integers, ``None`` and
    ``...``: what :func:`modelspec.spec.subscript.parse_key` reads back.
    """
    items = key if isinstance(key, tuple) else (key,)
    written = []
    for item in items:
        if item is None or item is Ellipsis:
            written.append(item)
        elif is_int(item):
            written.append(int(item))
        elif isinstance(item, slice) and all(
            b is None or is_int(b) for b in (item.start, item.stop, item.step)
        ):
            written.append(
                slice(*(None if b is None else int(b) for b in (item.start, item.stop, item.step)))
            )
        else:
            return None
    return format_key(tuple(written))


def is_int(value: Any) -> bool:
    """An integer, Python's or numpy's (not a bool)."""
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or type(value).__name__.startswith(("int", "uint"))


def dict_output_keys(layer: Any, node: Any) -> list[str] | None:
    """The keys of a layer call's outputs when the layer returns a dict (SAM's prompt encoder), else None.

    Keras keeps a call's outputs flat, a dict's in the order of its sorted
    keys; the keys come from the layer's output spec on the call's own
    symbolic arguments.
    """
    try:
        spec = layer.compute_output_spec(*node.arguments.args, **node.arguments.kwargs)
    except Exception:  # noqa: BLE001 - no output spec: the outputs stay positions
        return None
    if not isinstance(spec, dict) or len(spec) != len(node.outputs):
        return None
    if any(isinstance(v, (dict, list, tuple)) for v in spec.values()):
        return None
    return sorted(str(k) for k in spec)
