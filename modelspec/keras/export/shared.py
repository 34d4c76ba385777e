"""Shared sub-graphs as shared block instances: a nested model called twice comes back as one block.

The exporter writes a model used as a layer at two places as its layers, then
``share:`` entries calling them again. Here a run of consecutive ``share``
entries whose targets are consecutive layers of the same shape (one entry
each, connected alike, only the last used outside) becomes a block: the
targets are its first instance (each layer keeps its Keras name through a
literal ``name:``), the run a second instance with ``share:`` (DESIGN.md,
"Shared instances").
"""

from __future__ import annotations

from typing import Any

from .names import Names
from .references import map_refs, node_of, refs
from .templates import common_prefix


def fold_shared(data: dict[str, Any], graph: Any) -> dict[str, Any]:
    """``data`` with each shared run of layers folded into a block and two instances (one shared)."""
    nodes = graph.nodes
    position = graph.position
    runs: list[tuple[int, int, int]] = []  # (first share node, last, first target)
    j = 0
    while j < len(nodes):
        target = nodes[j].entry.get("share")
        if not isinstance(target, str) or target not in position or len(nodes[j].entry) != 1:
            j += 1
            continue
        start, first = j, position[target]
        while (
            j + 1 < len(nodes)
            and isinstance(nodes[j + 1].entry.get("share"), str)
            and len(nodes[j + 1].entry) == 1
            and position.get(nodes[j + 1].entry["share"]) == first + (j + 1 - start)
        ):
            j += 1
        if j - start + 1 >= 2 and first + (j - start) < start:
            runs.append((start, j, first))
        j += 1
    if not runs:
        return data
    users: dict[str, set[int]] = {}
    for k, node in enumerate(nodes):
        for ref in refs(node.inputs):
            users.setdefault(node_of(ref), set()).add(k)
    for ref in refs(graph.outputs):
        users.setdefault(node_of(ref), set()).add(len(nodes))
    blocks = dict(data.get("blocks") or {})
    names = Names(set(blocks) | set(position) | set(data.get("inputs") or {}))
    plan: dict[int, tuple[str, dict[str, Any], int]] = {}  # first node -> (key, entry, last node)
    renamed: dict[str, str] = {}
    for start, end, first in runs:
        last = first + (end - start)
        local = list(range(first, last + 1))
        shapes = [
            _locals(graph, range(first, last + 1)),
            _locals(graph, range(start, end + 1)),
        ]
        if shapes[0] is None or shapes[1] is None or shapes[0][1] != shapes[1][1]:
            continue  # several entries, or connected otherwise
        inner = [nodes[k].name for k in local[:-1]] + [nodes[k].name for k in range(start, end)]
        if any(users.get(n, set()) - set(range(first, last + 1)) - set(range(start, end + 1)) for n in inner):
            continue  # an inner layer used outside: not one output
        if any("share" in nodes[k].entry or "block" in nodes[k].entry for k in local):
            continue
        block = names.take(common_prefix([nodes[k].name for k in local]).strip("_-") or "shared", "shared")
        keys = Names({"x"})
        body: dict[str, Any] = {}
        local_keys = [keys.take(nodes[k].name) for k in local]
        previous = "x"
        for k, key in zip(local, local_keys):
            raw = map_refs(nodes[k].inputs, lambda r, lk=local_keys, f=first: _local(r, lk, f, position))
            entry = {key2: nodes[k].entry[key2] for key2 in ("type", "op") if key2 in nodes[k].entry}
            entry["name"] = nodes[k].name
            if raw != previous:
                entry["inputs"] = raw
            entry.update({a: v for a, v in nodes[k].entry.items() if a not in ("type", "op", "name")})
            body[key] = entry
            previous = key
        blocks[block] = {"layers": body}
        one, two = names.take(f"{block}_0", block), names.take(f"{block}_1", block)
        plan[first] = (one, {"block": block}, last, shapes[0][0])
        plan[start] = (two, {"block": block, "share": one}, end, shapes[1][0])
        renamed[nodes[last].name], renamed[nodes[end].name] = one, two
    if not plan:
        return data

    def rename(ref: str) -> str:
        b = node_of(ref)
        return renamed.get(b, b) + ref[len(b) :]

    layers: dict[str, Any] = {}
    previous = graph.input_names[0] if len(graph.input_names) == 1 else None
    k = 0
    while k < len(nodes):
        if k in plan:
            key, entry, last, entry_ref = plan[k]
            raw: Any = rename(entry_ref)
            k = last + 1
        else:
            key, entry, raw = nodes[k].name, dict(nodes[k].entry), map_refs(nodes[k].inputs, rename)
            k += 1
        out = {a: v for a, v in entry.items() if a in ("type", "op", "block", "share")}
        if raw is not None and raw != previous:
            out["inputs"] = raw
        out.update({a: v for a, v in entry.items() if a not in out})
        layers[key] = out
        previous = key
    result = {**data, "blocks": blocks, "layers": layers}
    if "outputs" in data:
        result["outputs"] = map_refs(graph.outputs, rename)
    return result


def _local(ref: str, keys: list[str], first: int, position: dict[str, int]) -> str:
    """A reference written inside the block: ``x`` for the one entering it, else the block's own key."""
    base = node_of(ref)
    at = position.get(base, -1)
    return ("x" if at < first else keys[at - first]) + ref[len(base) :]


def _locals(graph: Any, span: range) -> tuple[str, Any] | None:
    """The one reference entering ``span`` and its connections as offsets; None with several entries."""
    outside: set[str] = set()
    shape = []
    for k in span:
        local = []
        for ref in refs(graph.nodes[k].inputs):
            at = graph.position.get(node_of(ref), -1)
            if at in span:
                local.append(f"@{at - span.start}{ref[len(node_of(ref)) :]}")
            else:
                outside.add(ref)
                local.append("x")
        shape.append(local)
    if len(outside) != 1:
        return None
    return next(iter(outside)), shape
