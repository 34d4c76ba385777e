"""Folding an exported graph: repeated units become blocks, runs of them ``repeat``.

A flat export writes one node per layer. Folding finds the single-exit units
of the graph: the cuts of the layer order are the nodes after which only they
are used (ResNet's residual units, DenseNet's dense layers, MobileNet's
inverted bottlenecks lie between two), and where a long stretch has none,
the places where two tensors are live (NASNet's cells, each on the two cells
before it: a unit of two entries, walked in depth-first order so that its
nodes are together). Layer names are hints: stretches whose names keep one
numbered prefix join (``block2a_expand_*``, ``block2a_se_*``). Units equal up
to layer names (the same layer classes, argument keys and connections, in
order) share one block; values equal across the block's instances stay
literal, values that differ become block params or expressions over them
(:mod:`.rules`). Consecutive instances whose params follow a simple rule in
the repeat index become one instance with ``repeat``.

Layer names come back exactly through ``name:`` templates (:mod:`.templates`):
a prefix the unit's layers share, numbers that differ as params. A group whose
names follow no pattern, or whose block takes more lines than it saves, is
left flat. The folded graph is folded again (stages of units) while the text
shrinks. Folding works on spec data, after the exporter wrote it, and leaves
shared layers and indexed outputs as they are.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from typing import Any

from ... import catalog, order
from ...spec.dump import dump_yaml
from . import rules
from .names import VALID_NAME, Names, valid_name
from .references import map_refs, node_of, refs
from .shared import fold_shared
from .templates import Params, common_prefix, name_templates, numbered_prefix, text_template

KINDS = ("type", "op", "block", "share")
"""The keys that say what an entry is: part of a unit's shape, never params."""

MIN_UNIT = 2
"""A unit of one layer is not worth a block, unless it takes a side input (a transformer layer and its mask)."""

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
    out["layers"], out_refs = graph.rewrite(folded, block_names)
    if "outputs" in data:
        out["outputs"] = out_refs
    keys = ["modelspec", "name", "description", "seed", "params", "variants", "imports", "blocks"]
    return {k: out[k] for k in keys if k in out} | {k: v for k, v in out.items() if k not in keys}


def _lines(data: dict[str, Any]) -> int:
    return dump_yaml(data).count("\n")


# -- the graph ----------------------------------------------------------------------------------


@dataclass
class Node:
    name: str
    entry: dict[str, Any]  # without 'inputs'
    inputs: Any  # explicit references (the default resolved)


@dataclass
class Unit:
    """Nodes ``start..end`` (inclusive) of the layer order, entered only from ``entries``, left only from ``end``."""

    start: int
    end: int
    entries: list[str]
    shape: str = ""
    names: list[str] = field(default_factory=list)

    @property
    def inputs(self) -> str | list[str]:
        """The instance's ``inputs``: its one entry, or its entries in order."""
        return self.entries[0] if len(self.entries) == 1 else list(self.entries)


BLOCK_INPUTS = ("x", "y", "z", "w", "v")
"""A block's input names, its unit's entries in the order of their first use."""

LONG = 100
"""A stretch between single-exit cuts longer than this is split where two tensors are live (NASNet's cells)."""


class Graph:
    """The top-level nodes of a mapping-form spec, with every reference explicit.

    With ``depth_first``, the nodes are in the order of a depth-first walk from
    the outputs (each node right after what it needs, the deepest need
    first), which keeps the nodes of a unit together where the written order
    interleaves them (NASNet's cells start on the cell before last while that
    one is still running).
    """

    def __init__(self, data: dict[str, Any], depth_first: bool = False):
        self.data = data
        self.input_names = list(data.get("inputs") or {})
        names = list(data["layers"])
        self.nodes: list[Node] = []
        for j, name in enumerate(names):
            entry = dict(data["layers"][name])
            raw = entry.pop("inputs", None)
            if raw is None:
                if j:
                    raw = names[j - 1]
                elif len(self.input_names) == 1:
                    raw = self.input_names[0]
            self.nodes.append(Node(name, entry, raw))
        self.outputs = data.get("outputs", names[-1] if names else None)
        if depth_first:
            by_name = {n.name: n for n in self.nodes}
            depth: dict[str, int] = {}  # the longest path from an input: the deepest need is walked first
            for n in self.nodes:
                depth[n.name] = 1 + max((depth.get(node_of(r), 0) for r in refs(n.inputs)), default=0)

            def needs(name: str) -> list[str]:
                found = [node_of(r) for r in refs(by_name[name].inputs) if node_of(r) in by_name]
                return sorted(found, key=lambda r: -depth[r])

            walk = order.depth_first([node_of(r) for r in refs(self.outputs) if node_of(r) in by_name], needs)
            reached = set(walk)
            self.nodes = [by_name[n] for n in walk] + [n for n in self.nodes if n.name not in reached]
        self.position = {n.name: j for j, n in enumerate(self.nodes)}
        self.longest = 0  # the most nodes between two single-exit cuts, once units() ran
        self.sides: set[str] = set(self.input_names)  # side entries, once units() ran
        self._units: list[Unit] | None = None

    def covered(self) -> int:
        """How many nodes the units hold."""
        return sum(u.end - u.start + 1 for u in self.units())

    def units(self) -> list[Unit]:
        """The stretches between consecutive cuts that can be a block's instance (found once)."""
        if self._units is None:
            self._units = self._find_units()
        return self._units

    def _find_units(self) -> list[Unit]:
        count = len(self.nodes)
        last_use = dict.fromkeys(self.input_names, -1)
        last_use.update({n.name: j for j, n in enumerate(self.nodes)})
        pinned: set[str] = set()
        indexed: set[str] = set()
        for j, node in enumerate(self.nodes):
            for ref in refs(node.inputs):
                base = node_of(ref)
                last_use[base] = max(last_use.get(base, -1), j)
                if "[" in ref:
                    indexed.add(base)
            if "share" in node.entry:
                pinned.update((node.name, str(node.entry["share"])))
        for ref in refs(self.outputs):
            last_use[node_of(ref)] = count
        self.sides = set(self.input_names) | self._side_nodes(self._live(last_use, set(self.input_names)))
        live = self._live(last_use, self.sides)
        stretches = self._stretches(self._cuts(live))
        units: list[Unit] = []
        for a, b in stretches:
            start, end = a + 1, b
            inside = {self.nodes[k].name for k in range(start, end + 1)}
            if inside & pinned or self.nodes[end].name in indexed:
                continue
            if live[end] is None or live[end] & inside != {self.nodes[end].name}:
                continue  # used after it from elsewhere than its last node
            entries = list(
                dict.fromkeys(
                    ref
                    for k in range(start, end + 1)
                    for ref in refs(self.nodes[k].inputs)
                    if node_of(ref) not in inside
                )
            )
            if not entries or len(entries) > len(BLOCK_INPUTS) or any("[" in r for r in entries):
                continue  # an indexed entry
            if end - start + 1 < MIN_UNIT and not set(entries[1:]) & self.sides:
                continue  # one node is a unit only with a side input (a transformer layer and its mask)
            unit = Unit(start, end, entries)
            unit.shape = self.shape(unit)
            unit.names = [self.layer_name(k) for k in range(start, end + 1)]
            units.append(unit)
        return units

    def _cuts(self, live: list[frozenset[str] | None]) -> list[int]:
        """Where units may start and end: after a node only it is used after (-1: before the first node).

        Side entries (the model's inputs, a padding mask; an encoder's output) are no reason not to
        cut. A long stretch between two cuts (a chain of NASNet cells, each on the two before it) is
        cut too where two tensors are live.
        """
        single = [
            j for j, n in enumerate(self.nodes) if live[j] is not None and live[j] - self.sides <= {n.name}
        ]
        if self.input_names:
            single.insert(0, -1)
        cuts: list[int] = []
        for a, b in itertools.pairwise(single):
            cuts.append(a)
            if b - a > LONG:
                cuts += [j for j in range(a + 1, b) if live[j] is not None and len(live[j]) <= 2]
        self.longest = max((b - a for a, b in itertools.pairwise(single)), default=len(self.nodes))
        return cuts + single[-1:]

    def _stretches(self, cuts: list[int]) -> list[tuple[int, int]]:
        """The stretches between cuts, ``(a, b)`` for nodes ``a + 1..b``, joined where names say so.

        Names are hints: a stretch joins the one before it while their names keep the prefix up to
        a number both have (block2a_expand_*, block2a_dwconv_pad, block2a_se_*: one unit), and a single
        node joins a longer stretch while they keep its whole prefix (a residual unit's final activation).
        """
        stretches: list[tuple[int, int]] = []
        for a, b in itertools.pairwise(cuts):
            if stretches:
                start = stretches[-1][0]
                before = [self.hint(k) for k in range(start + 1, a + 1)]
                after = [self.hint(k) for k in range(a + 1, b + 1)]
                joined = before + after
                numbered = numbered_prefix(before)
                prefix = common_prefix(before)
                if (numbered and numbered_prefix(after) == numbered_prefix(joined) == numbered) or (
                    b == a + 1 and a > start + 1 and prefix and common_prefix(joined) == prefix
                ):
                    stretches[-1] = (start, b)
                    continue
            stretches.append((a, b))
        return stretches

    def _side_nodes(self, live: list[frozenset[str] | None]) -> set[str]:
        """Nodes that feed a run of units from the side, as an encoder's output feeds each decoder layer.

        A node is one when it has three readers or more, and between each two of them there is a
        node after which nothing but it, that node and the model's inputs is live: were it not
        live, the run would be cut between its readers. (A residual unit's entry has two readers; a
        branching block's entry has no cut between its readers.)
        """
        readers: dict[str, list[int]] = {}
        for j, node in enumerate(self.nodes):
            for base in dict.fromkeys(node_of(r) for r in refs(node.inputs)):
                readers.setdefault(base, []).append(j)
        inputs = set(self.input_names)
        found = set()
        for name, at in readers.items():
            if len(at) < 3 or name in inputs:
                continue
            if all(
                any(
                    live[j] is not None and live[j] - inputs - {name} <= {self.nodes[j].name}
                    for j in range(a, b)
                )
                for a, b in itertools.pairwise(at)
            ):
                found.add(name)
        return found

    def _live(self, last_use: dict[str, int], sides: set[str]) -> list[frozenset[str] | None]:
        """For each node, the names used after it that it, a node before it or an input made (None: more
        than two besides ``sides``)."""
        ending: dict[int, list[str]] = {}
        for name, j in last_use.items():
            ending.setdefault(j, []).append(name)
        live = {n for n in self.input_names if last_use[n] >= 0}
        most = 2 + len(sides)
        out: list[frozenset[str] | None] = []
        for j, node in enumerate(self.nodes):
            if last_use[node.name] > j:
                live.add(node.name)
            live.difference_update(ending.get(j, ()))
            out.append(frozenset(live) if len(live) <= most else None)
        return out

    def hint(self, k: int) -> str | None:
        """What node ``k``'s name says of the unit it belongs to: a layer's name; for a block instance,
        named after its unit (``s1_u2``), the prefix of the stage it is part of (``s1_``)."""
        name = self.layer_name(k)
        if name is None or "block" not in self.nodes[k].entry:
            return name
        return re.sub(r"(?<=[_-])[^_-]*$", "", name)

    def layer_name(self, k: int) -> str | None:
        """The Keras layer name of node ``k``; None for an operation (Keras names those itself)."""
        return None if "op" in self.nodes[k].entry else self.nodes[k].name

    def local(self, unit: Unit, raw: Any) -> Any:
        """References inside ``unit`` as offsets (``x`` for its entry)."""

        def one(ref: str) -> str:
            base, rest = node_of(ref), ref[len(node_of(ref)) :]
            if base in unit.entries:
                return BLOCK_INPUTS[unit.entries.index(base)] + rest
            return f"@{self.position[base] - unit.start}" + rest

        return map_refs(raw, one)

    def shape(self, unit: Unit) -> str:
        parts = []
        for k in range(unit.start, unit.end + 1):
            node = self.nodes[k]
            kind = {key: node.entry[key] for key in KINDS if key in node.entry}
            args = sorted(
                key
                for key in node.entry
                if key not in KINDS and key != "call" and _default(node.entry, key) is _MISSING
            )
            parts.append([kind, args, node.entry.get("call"), self.local(unit, node.inputs)])
        return rules.key(parts)

    def rewrite(self, folded: dict[int, tuple[Group, int]], names: Names) -> tuple[dict[str, Any], Any]:
        """The top-level layers with each folded unit one instance (runs of them one ``repeat``)."""
        renamed: dict[str, str] = {}  # a unit's exit -> its instance
        entries: list[tuple[str, dict[str, Any], Any]] = []  # key, entry, explicit inputs
        j = 0
        while j < len(self.nodes):
            if j not in folded:
                node = self.nodes[j]
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
                names.taken.discard(self.nodes[last.end].name)
                key = names.take(self.nodes[last.end].name, group.name)
            entry: dict[str, Any] = {"block": group.name}
            if len(run) > 1:
                entry["repeat"] = len(run)
            entry.update(args or {})
            entries.append((key, entry, group.members[m].inputs))
            for r in run:
                renamed[self.nodes[group.members[r].end].name] = key
            j = last.end + 1

        def rename(ref: str) -> str:
            base = node_of(ref)
            return renamed.get(base, base) + ref[len(base) :]

        layers: dict[str, Any] = {}
        previous = self.input_names[0] if len(self.input_names) == 1 else None
        for key, entry, raw in entries:
            raw = map_refs(raw, rename)
            out = {k: v for k, v in entry.items() if k in KINDS}
            if raw is not None and raw != previous:
                out["inputs"] = raw
            out.update({k: v for k, v in entry.items() if k not in KINDS})
            layers[key] = out
            previous = key
        return layers, map_refs(self.outputs, rename)


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
                values = [e[key] if key in e else _default(e, key) for e in entries]
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
        for offset, key in enumerate(local):
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
                if at == offset and (k in node.entry or _default(node.entry, k) is _MISSING):
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


_MISSING = object()


def _default(entry: dict[str, Any], key: str) -> Any:
    """The catalog's default for argument ``key`` of a layer entry (``_MISSING`` when it has none)."""
    info = catalog.layer(entry["type"]) if isinstance(entry.get("type"), str) else None
    arg = info.args.get(key) if info is not None else None
    if arg is None or arg.required or arg.default is catalog.MISSING:
        return _MISSING
    return arg.default
