"""The graph of an exported spec, and its units: the stretches of its layer order a block instance can stand for.

The cuts of the layer order are the nodes after which only they are used
(ResNet's residual units, DenseNet's dense layers, MobileNet's inverted
bottlenecks lie between two); side entries (the model's inputs, an encoder's
output that each decoder layer reads) do not count. Where a long stretch has
none, the places where two tensors are live cut it (NASNet's cells, each on the
two cells before it: a unit of two entries, walked in depth-first order so
that its nodes are together). Layer names are hints: stretches whose names
keep one numbered prefix join (``block2a_expand_*``, ``block2a_se_*``). Units
of one shape that are each followed by one node of one kind take it in
(Inception-ResNet's activation after each residual sum), so that they chain.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ... import catalog, order
from . import rules
from .references import map_refs, node_of, refs
from .templates import common_prefix, numbered_prefix

KINDS = ("type", "op", "block", "share")
"""The keys that say what an entry is: part of a unit's shape, never params."""

MIN_UNIT = 2
"""A unit of one layer is not worth a block, unless it takes a side input (a transformer layer and its mask)."""


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
        readers: dict[str, list[int]] = {}  # name -> the nodes that read it, in order
        for j, node in enumerate(self.nodes):
            for ref in refs(node.inputs):
                base = node_of(ref)
                last_use[base] = max(last_use.get(base, -1), j)
                if "[" in ref:
                    indexed.add(base)
                if readers.setdefault(base, [])[-1:] != [j]:
                    readers[base].append(j)
            if "share" in node.entry:
                pinned.update((node.name, str(node.entry["share"])))
        for ref in refs(self.outputs):
            last_use[node_of(ref)] = count
        self.sides = set(self.input_names) | self._side_nodes(
            readers, self._live(last_use, set(self.input_names))
        )
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
            units.append(Unit(start, end, entries))
        for unit in units:
            unit.shape = self.shape(unit)
        self._take_trailing(units, live, pinned | indexed)
        for unit in units:
            unit.names = [self.layer_name(k) for k in range(unit.start, unit.end + 1)]
        return units

    def _take_trailing(self, units: list[Unit], live: list[frozenset[str] | None], kept: set[str]) -> None:
        """Units of one shape that are each followed by one node of one kind, which reads only the unit's
        end and is all that is live after it, take that node in (Inception-ResNet's activation after
        each residual sum): so they chain, and can be a ``repeat``. Only when most units of that shape
        are followed so: a stage's last unit followed by its downsampling is not (ConvNeXt)."""
        taken = {k for u in units for k in range(u.start, u.end + 1)}

        def follows(j: int) -> bool:
            return (
                j < len(self.nodes)
                and j not in taken
                and self.nodes[j].name not in kept
                and refs(self.nodes[j].inputs) == [self.nodes[j - 1].name]
                and live[j] is not None
                and live[j] - self.sides == {self.nodes[j].name}
            )

        shapes = Counter(u.shape for u in units)
        followed: dict[tuple[str, str], list[Unit]] = {}
        for unit in units:
            if follows(unit.end + 1):
                followed.setdefault((unit.shape, self.kind(unit.end + 1)), []).append(unit)
        for (shape, _), members in followed.items():
            if len(members) > 1 and 2 * len(members) > shapes[shape]:
                for unit in members:
                    unit.end += 1
                    unit.shape = self.shape(unit)

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

    def _side_nodes(self, readers: dict[str, list[int]], live: list[frozenset[str] | None]) -> set[str]:
        """Nodes that feed a run of units from the side, as an encoder's output feeds each decoder layer.

        A node is one when it has three readers or more, all of one kind (each a ``TransformerDecoder``),
        and between each two of them there is a node after which nothing but it, that node and the
        model's inputs is live: were it not live, the run would be cut between its readers. (A
        residual unit's entry has two readers; a branching block's entry has readers of other kinds,
        its branches and the residual sum, or no cut between them.)
        """
        inputs = set(self.input_names)
        found = set()
        for name, at in readers.items():
            if len(at) < 3 or name in inputs or len({self.kind(j) for j in at}) > 1:
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

    def kind(self, k: int) -> str:
        """What node ``k`` is, its arguments aside: its layer type, operation, block or shared layer."""
        node = self.nodes[k]
        return repr({key: node.entry[key] for key in KINDS if key in node.entry})

    def shape(self, unit: Unit) -> str:
        parts = []
        for k in range(unit.start, unit.end + 1):
            node = self.nodes[k]
            kind = self.kind(k)
            args = sorted(
                key
                for key in node.entry
                if key not in KINDS and key != "call" and default_of(node.entry, key) is catalog.MISSING
            )
            parts.append([kind, args, node.entry.get("call"), self.local(unit, node.inputs)])
        return rules.key(parts)


def default_of(entry: dict[str, Any], key: str) -> Any:
    """The catalog's default for argument ``key`` of a layer entry (``catalog.MISSING`` when it has none)."""
    info = catalog.layer(entry["type"]) if isinstance(entry.get("type"), str) else None
    arg = info.args.get(key) if info is not None else None
    if arg is None or arg.required:
        return catalog.MISSING
    return arg.default
