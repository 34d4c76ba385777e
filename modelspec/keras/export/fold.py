"""Folding an exported graph: repeated units become blocks, runs of them ``repeat``.

A flat export writes one node per layer. Folding takes the single-exit units
of the graph (:mod:`.units`). Units equal up to layer names (the same layer
classes, argument keys and connections, in order) share one block; values
equal across the block's instances stay literal, values that differ become
block params or expressions over them (:mod:`.rules`). Consecutive instances
whose params follow a simple rule in the repeat index become one instance
with ``repeat``. A block writes its layers branch by branch, so that most of
them take the layer before them and say no ``inputs``.

Layer names come back exactly through ``name:`` templates (:mod:`.templates`):
a prefix the unit's layers share, numbers that differ as params. A group whose
names follow no pattern, or whose block takes more lines than it saves, is
left flat. The folded graph is folded again (stages of units) while the text
shrinks. Folding works on spec data, after the exporter wrote it, and leaves
shared layers and indexed outputs as they are.
"""

from __future__ import annotations

import re
from typing import Any

from ... import catalog
from ...spec.dump import dump_yaml
from . import rules
from .names import VALID_NAME, Names, valid_name
from .references import map_refs, node_of, refs
from .shared import fold_shared
from .templates import Params, name_templates, text_template
from .units import BLOCK_INPUTS, KINDS, LONG, MIN_UNIT, Graph, Unit, default_of

MAX_LEVELS = 4
"""Folds of folds: units, stages of units, ..."""


def fold_data(data: dict[str, Any]) -> dict[str, Any]:
    """The spec data with repeated units of its top-level graph folded into blocks.

    Args:
        data: Exported spec data (``layers`` a mapping for a functional model).

    Returns:
        New spec data; ``data`` itself is left as it is. A list-form spec, or
        one with nothing repeated, comes back unchanged.
    """
    layers = data.get("layers")
    if not isinstance(layers, dict) or len(layers) < 2 * MIN_UNIT:
        return data
    original = data
    graph = Graph(data)
    shared = fold_shared(data, graph)  # a nested model called twice: one block, a shared instance
    if shared is not data:
        data, graph = shared, Graph(shared)
    out = _folded(data, graph)
    # The written order may interleave units (NASNet's cells; an encoder's layers among a decoder's
    # embeddings): the depth-first order is tried too where it could do better.
    walked = Graph(data, depth_first=True)
    if graph.longest > LONG or walked.covered() > graph.covered():
        other = _folded(data, walked)
        if other is not None and (out is None or _lines(other) < _lines(out)):
            out = other
    if out is None:
        return data  # a shared sub-graph stays a block: its weights are one
    # Blocks whose params take more room than they save (units that differ everywhere) are not worth
    # it; a block's own few header lines are (the structure shows).
    if _lines(out) > _lines(original) + 4 * len(out["blocks"]):
        return data
    # Fold again on the folded graph (stages of units), while the text shrinks.
    for _ in range(MAX_LEVELS - 1):
        again = _folded(out, Graph(out), spec_text=True)
        if again is None or _lines(again) >= _lines(out):
            break
        out = again
    return out


def _folded(data: dict[str, Any], graph: Graph, spec_text: bool = False) -> dict[str, Any] | None:
    """``data`` with the repeated units of ``graph`` (its nodes in some order) folded; None when none repeat.

    ``spec_text``: the values are spec text already (a folded spec folded again), not values as exported.
    """
    groups = _groups(graph, graph.units(), spec_text)
    if not groups:
        return None
    blocks = dict(data.get("blocks") or {})
    block_names = Names(set(blocks) | set(data["layers"]) | set(data.get("inputs") or {}))
    folded: dict[int, tuple[Group, int]] = {}  # first node of a unit -> (group, member)
    for group in groups:
        group.name = block_names.take(group.base_name(), "block")
        blocks[group.name] = group.block_data()
        for m, unit in enumerate(group.members):
            folded[unit.start] = (group, m)
    out = dict(data)
    out["blocks"] = blocks
    out["layers"], out_refs = _rewrite(graph, folded, block_names)
    if "outputs" in data:
        out["outputs"] = out_refs
    keys = ["modelspec", "name", "description", "seed", "params", "variants", "imports", "blocks"]
    return {k: out[k] for k in keys if k in out} | {k: v for k, v in out.items() if k not in keys}


def _lines(data: dict[str, Any]) -> int:
    return dump_yaml(data).count("\n")


def _rewrite(graph: Graph, folded: dict[int, tuple[Group, int]], names: Names) -> tuple[dict[str, Any], Any]:
    """The top-level layers with each folded unit one instance (runs of them one ``repeat``)."""
    renamed: dict[str, str] = {}  # a unit's exit -> its instance
    entries: list[tuple[str, dict[str, Any], Any]] = []  # key, entry, explicit inputs
    j = 0
    while j < len(graph.nodes):
        if j not in folded:
            node = graph.nodes[j]
            entries.append((node.name, dict(node.entry), node.inputs))
            j += 1
            continue
        group, m = folded[j]
        run = group.run_from(m)
        args = group.run_args(run) if len(run) > 1 else group.args_of(m)
        prefix = group.prefixes[m].rstrip("_-")
        last = group.members[run[-1]]
        if prefix and VALID_NAME.match(prefix):
            key = names.take(prefix, group.name)
        else:  # no prefix to name it by: the name of its output, which references keep
            names.taken.discard(graph.nodes[last.end].name)
            key = names.take(graph.nodes[last.end].name, group.name)
        entry: dict[str, Any] = {"block": group.name}
        if len(run) > 1:
            entry["repeat"] = len(run)
        entry.update(args or {})
        entries.append((key, entry, group.members[m].inputs))
        for r in run:
            renamed[graph.nodes[group.members[r].end].name] = key
        j = last.end + 1

    def rename(ref: str) -> str:
        base = node_of(ref)
        return renamed.get(base, base) + ref[len(base) :]

    layers: dict[str, Any] = {}
    previous = graph.input_names[0] if len(graph.input_names) == 1 else None
    for key, entry, raw in entries:
        raw = map_refs(raw, rename)
        out = {k: v for k, v in entry.items() if k in KINDS}
        if raw is not None and raw != previous:
            out["inputs"] = raw
        out.update({k: v for k, v in entry.items() if k not in KINDS})
        layers[key] = out
        previous = key
    return layers, map_refs(graph.outputs, rename)


# -- groups of units ----------------------------------------------------------------------------


def _groups(graph: Graph, units: list[Unit], spec_text: bool) -> list[Group]:
    by_shape: dict[str, list[Unit]] = {}
    for unit in units:
        by_shape.setdefault(unit.shape, []).append(unit)
    groups = []
    for members in by_shape.values():
        if len(members) < 2:
            continue
        group = Group(graph, members, spec_text)
        if group.names.whole and len(members) > 2:
            # Keras names its first layer of a kind without a number (add, then add_1): a first unit
            # whose names break the pattern the others keep may be better left as it is.
            rest = Group(graph, members[1:], spec_text)
            group = rest if rest.saving() > group.saving() else group
        if group.saves():
            groups.append(group)
    return groups


class Group:
    """Units of one shape: one block; what differs between them its params."""

    def __init__(self, graph: Graph, members: list[Unit], spec_text: bool = False):
        self.graph = graph
        self.members = members
        # Values are spec text (the exporter wrote `$${` for a literal `${`): written as they are. In a
        # folded spec folded again, one that differs between units must hold no expression (it would be
        # evaluated in another scope).
        self.valid = True
        self.name = ""
        self.params = Params()
        self.names = name_templates([u.names for u in members], self.params)
        self.slots: dict[tuple[int, str], str] = {}  # (node, argument) -> expression
        self.literals: dict[tuple[int, str], Any] = {}  # (node, argument) -> the value all share
        arguments: dict[str, list[Any]] = {}  # params that hold arguments: what derived values come from
        by_values: dict[str, str] = {}
        first = members[0]
        for offset in range(first.end - first.start + 1):
            entries = [graph.nodes[u.start + offset].entry for u in members]
            keys = list(dict.fromkeys(k for e in entries for k in e if k not in KINDS and k != "call"))
            for key in keys:
                values = [e[key] if key in e else default_of(e, key) for e in entries]
                if len({rules.key(v) for v in values}) == 1:
                    self.literals[(offset, key)] = values[0]
                    continue
                vector = rules.key(values)
                if spec_text and vector not in by_values and all(isinstance(v, str) for v in values):
                    text = text_template(values, self.params)  # numbers that differ: one param for them all
                    if text is not None:
                        by_values[vector] = text
                if spec_text and "$" in vector and vector not in by_values:
                    self.valid = False  # an expression that differs: it would be evaluated in another scope
                    by_values[vector] = ""
                if vector not in by_values:
                    found = rules.derived(values, arguments)
                    if found is None:
                        param = self.params.new(key, values)
                        arguments[param] = values
                        found = "${" + param + "}"
                    by_values[vector] = found
                self.slots[(offset, key)] = by_values[vector]

    @property
    def prefixes(self) -> list[str]:
        return self.names.prefixes

    def saves(self) -> bool:
        """True when the units' names follow a pattern, and the block and its instances are not longer than
        the units written out (a block's few header lines are worth the structure it shows)."""
        return self.saving() >= -4

    def run_from(self, m: int) -> list[int]:
        """The longest run of members from ``m``, each fed by the one before, whose params a rule in i explains."""
        chain = [m]
        while (
            chain[-1] + 1 < len(self.members)
            and self.members[chain[-1] + 1].start == self.members[chain[-1]].end + 1
            and self.members[chain[-1] + 1].entries[0] == self.graph.nodes[self.members[chain[-1]].end].name
            and self.members[chain[-1] + 1].entries[1:]
            == self.members[m].entries[1:]  # side entries: the same
        ):
            chain.append(chain[-1] + 1)
        return next(
            (chain[:k] for k in range(len(chain), 1, -1) if self.run_args(chain[:k]) is not None), [m]
        )

    def saving(self) -> int:
        """The lines folding saves (the block and an instance per unit against the units written out)."""
        named = sum(t is not None for t in self.names.templates)
        if not self.valid or self.names.whole * 4 > named:
            return -(1 << 30)
        flat = sum(
            _lines({self.graph.nodes[k].name: self.graph.nodes[k].entry})
            for u in self.members
            for k in range(u.start, u.end + 1)
        )
        folded, m = _lines({"b": self.block_data()}), 0
        while m < len(self.members):
            run = self.run_from(m)
            folded += _lines({"u": self.run_args(run) if len(run) > 1 else self.args_of(m)})
            m = run[-1] + 1
        return flat - folded

    def base_name(self) -> str:
        """After the units' common name prefix, its numbers left out: conv2_block1_ -> conv_block."""
        first = self.members[0]
        seed = self.prefixes[0] or next((n for n in reversed(first.names) if n), "")
        name = re.sub(r"[_-]+", "_", rules.NUMBER.sub("", seed)).strip("_")
        nodes = [self.graph.nodes[k].entry for k in range(first.start, first.end + 1)]
        if all("block" in entry for entry in nodes):  # units of block instances: a stage
            return valid_name(f"{name}_stage" if name else "stage", "stage")
        if not name or catalog.layer(name) is not None or catalog.refused(name) is not None:
            name = f"{name}_block" if name else "unit"
        return valid_name(name, "unit")

    def block_data(self) -> dict[str, Any]:
        graph, first = self.graph, self.members[0]
        seen = Names(set(BLOCK_INPUTS) | set(self.names.keys))
        local = [
            key or seen.take(str(graph.nodes[first.start + k].entry["op"]))
            for k, key in enumerate(self.names.keys)
        ]
        layers: dict[str, Any] = {}
        inputs = list(BLOCK_INPUTS[: len(first.entries)])
        previous = inputs[0] if len(inputs) == 1 else None
        for offset in self.branch_order():
            key = local[offset]
            node = graph.nodes[first.start + offset]
            raw = graph.local(first, node.inputs)
            raw = map_refs(
                raw, lambda r: local[int(node_of(r)[1:])] + r[len(node_of(r)) :] if r.startswith("@") else r
            )
            entry = {k: node.entry[k] for k in KINDS if k in node.entry}
            if self.names.templates[offset] is not None:  # an operation is no layer: Keras names it
                entry["name"] = self.names.templates[offset]
            if raw != previous:
                entry["inputs"] = raw
            for (at, k), v in self.literals.items():
                if at == offset and (k in node.entry or default_of(node.entry, k) is catalog.MISSING):
                    entry[k] = v
            for (at, k), expression in self.slots.items():
                if at == offset:
                    entry[k] = expression
            layers[key] = entry
            previous = key
        data: dict[str, Any] = {}
        if self.params.values:
            data["params"] = dict.fromkeys(self.params.values, "required")
        if len(inputs) > 1:
            data["inputs"] = inputs
        data["layers"] = layers
        return data

    def branch_order(self) -> list[int]:
        """The unit's nodes (offsets) in the order its block writes them: each branch followed to its end.

        A node comes right after its first input where it can, so that its ``inputs`` go unsaid; else the
        first node ready in the graph's order. The order only changes how the block reads: Keras orders
        a model's layers by their depth in the graph, whatever order they were made in, and every
        layer of a block is named.
        """
        first = self.members[0]
        count = first.end - first.start + 1
        raws = [self.graph.local(first, self.graph.nodes[first.start + k].inputs) for k in range(count)]
        heads = [node_of(refs(raw)[0]) if refs(raw) else None for raw in raws]
        needs = [{int(node_of(r)[1:]) for r in refs(raw) if r.startswith("@")} for raw in raws]
        chosen: list[int] = []
        last = BLOCK_INPUTS[0] if len(first.entries) == 1 else None
        while len(chosen) < count:
            ready = [k for k in range(count) if k not in chosen and needs[k] <= set(chosen)]
            k = next(
                (k for k in ready if raws[k] == last),  # its only input: `inputs` unsaid
                next((k for k in ready if heads[k] == last), ready[0]),  # the branch goes on
            )
            chosen.append(k)
            last = f"@{k}"
        return chosen

    def args_of(self, m: int) -> dict[str, Any]:
        return {p: values[m] for p, values in self.params.values.items()}

    def run_args(self, run: list[int]) -> dict[str, Any] | None:
        """The args of one ``repeat`` instance standing for members ``run`` (None: no rule explains them)."""
        out: dict[str, Any] = {}
        for param, values in self.params.values.items():
            found = rules.rule([values[m] for m in run])
            if found is None:
                return None
            out[param] = found
        return out
