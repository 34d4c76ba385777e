"""Folding an exported graph: repeated units become blocks, runs of them ``repeat``.

A flat export writes one node per layer. Folding finds the single-entry,
single-exit units of the graph (ResNet's residual units, DenseNet's dense
layers, MobileNet's inverted bottlenecks): the cuts of the layer order are the
nodes that every later node reaches only through (nothing before a cut is used
after it), and the nodes between two cuts form a unit whose entry is the first
cut and whose exit is the second. Units equal up to layer names (the same
layer classes, argument keys and connections, in order) share one block;
values equal across the block's instances stay literal, values that differ
become block params. Consecutive instances whose params follow a simple rule
in the repeat index (all equal, ``a + b * i``, the first one different, a name
whose numbers count up) become one instance with ``repeat``.

Layer names come back exactly: a unit's layers share a name prefix
(``conv2_block1_``) that becomes the block's ``prefix`` param, and each block
layer is named ``${prefix}SUFFIX``. Units whose names do not split that way
are left flat. Folding works on spec data, after the exporter wrote it, and
leaves the graph it cannot fold (shared layers, several inputs) as it is.
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from ... import catalog
from ...spec.dump import dump_yaml
from ...spec.models import RESERVED_KEYS
from .names import VALID_NAME, Names, valid_name
from .shared import fold_shared

KINDS = ("type", "op", "block", "share")
"""The keys that say what an entry is: part of a unit's shape, never params."""

MIN_UNIT = 2
"""A unit of one layer is not worth a block."""


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
    shared = fold_shared(data, graph, _HELPERS)  # a nested model called twice: one block, a shared instance
    if shared is not data:
        data, graph = shared, Graph(shared)
    groups = _groups(graph, graph.units())
    if not groups:
        return data  # a shared sub-graph stays a block: its weights are one
    blocks = dict(data.get("blocks") or {})
    block_names = Names(set(blocks) | set(layers) | set(data.get("inputs") or {}))
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
    order = ["modelspec", "name", "description", "seed", "params", "variants", "imports", "blocks"]
    out = {k: out[k] for k in order if k in out} | {k: v for k, v in out.items() if k not in order}
    # Blocks whose params take more room than they save (units that differ everywhere) are not worth
    # it; a block's own few header lines are (the structure shows).
    return out if _lines(out) <= _lines(original) + 4 * len(groups) else data


def _lines(data: dict[str, Any]) -> int:
    return dump_yaml(data).count("\n")


# -- references ---------------------------------------------------------------------------------


def _base(ref: str) -> str:
    return ref.split("[", 1)[0]


def _map_refs(raw: Any, fn: Any) -> Any:
    if isinstance(raw, str):
        return fn(raw)
    if isinstance(raw, list):
        return [_map_refs(r, fn) for r in raw]
    if isinstance(raw, dict):
        return {k: _map_refs(r, fn) for k, r in raw.items()}
    return raw


def _refs(raw: Any) -> list[str]:
    found: list[str] = []
    _map_refs(raw, lambda r: found.append(r) or r)
    return found


def _key(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


# -- the graph ----------------------------------------------------------------------------------


@dataclass
class Node:
    name: str
    entry: dict[str, Any]  # without 'inputs'
    inputs: Any  # explicit references (the default resolved)


@dataclass
class Unit:
    """Nodes ``start..end`` (inclusive) of the layer order, entered only from ``entry``."""

    start: int
    end: int
    entry: str
    shape: str = ""
    names: list[str] = field(default_factory=list)


class Graph:
    """The top-level nodes of a mapping-form spec, with every reference explicit."""

    def __init__(self, data: dict[str, Any]):
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
        self.position = {n.name: j for j, n in enumerate(self.nodes)}
        self.outputs = data.get("outputs", names[-1] if names else None)

    def units(self) -> list[Unit]:
        """The stretches between consecutive cuts that can be a block's instance."""
        count = len(self.nodes)
        last_use = dict.fromkeys(self.input_names, -1)
        last_use.update({n.name: j for j, n in enumerate(self.nodes)})
        pinned: set[str] = set()
        indexed: set[str] = set()
        for j, node in enumerate(self.nodes):
            for ref in _refs(node.inputs):
                base = _base(ref)
                last_use[base] = max(last_use.get(base, -1), j)
                if "[" in ref:
                    indexed.add(base)
            if "share" in node.entry:
                pinned.update((node.name, str(node.entry["share"])))
        for ref in _refs(self.outputs):
            last_use[_base(ref)] = count
        reach = max((last_use[n] for n in self.input_names), default=-1)
        cuts = []
        for j, node in enumerate(self.nodes):
            if reach <= j:
                cuts.append(j)
            reach = max(reach, last_use[node.name])
        # Stretches between cuts; a single node joins the stretch before it while their layer names
        # keep one prefix (names are hints: a residual unit's final activation is a stretch of its own).
        stretches: list[tuple[int, int]] = []
        for a, b in itertools.pairwise(cuts):
            if stretches and b == a + 1:  # one node joins the stretch before it (a unit's last activation)
                start = stretches[-1][0]
                before = _prefix([self.layer_name(k) for k in range(start + 1, a + 1)])
                if before and _prefix([self.layer_name(k) for k in range(start + 1, b + 1)]) == before:
                    stretches[-1] = (start, b)
                    continue
            stretches.append((a, b))
        units: list[Unit] = []
        for a, b in stretches:
            start, end = a + 1, b
            if end - start + 1 < MIN_UNIT:
                continue
            inside = {self.nodes[k].name for k in range(start, end + 1)}
            if inside & pinned or self.nodes[end].name in indexed:
                continue
            if any("repeat" in self.nodes[k].entry for k in range(start, end + 1)):
                continue  # already folded
            outside = {
                ref
                for k in range(start, end + 1)
                for ref in _refs(self.nodes[k].inputs)
                if _base(ref) not in inside
            }
            if outside != {self.nodes[a].name}:
                continue  # several entries, or an indexed one
            unit = Unit(start, end, self.nodes[a].name)
            unit.shape = self.shape(unit)
            unit.names = [self.layer_name(k) for k in range(start, end + 1)]
            units.append(unit)
        return units

    def layer_name(self, k: int) -> str | None:
        """The Keras layer name of node ``k``; None for an operation (Keras names those itself)."""
        return None if "op" in self.nodes[k].entry else self.nodes[k].name

    def local(self, unit: Unit, raw: Any) -> Any:
        """References inside ``unit`` as offsets (``x`` for its entry)."""

        def one(ref: str) -> str:
            base, rest = _base(ref), ref[len(_base(ref)) :]
            return ("x" if base == unit.entry else f"@{self.position[base] - unit.start}") + rest

        return _map_refs(raw, one)

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
        return _key(parts)

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
            chain = [m]  # the group's units that follow, each fed by the one before
            nxt = group.members[m].end + 1
            while (
                nxt in folded
                and folded[nxt][0] is group
                and group.members[folded[nxt][1]].entry == self.nodes[group.members[chain[-1]].end].name
            ):
                chain.append(folded[nxt][1])
                nxt = group.members[chain[-1]].end + 1
            # The longest run from here whose params a rule in i explains.
            run = next(
                (chain[:k] for k in range(len(chain), 1, -1) if group.run_args(chain[:k]) is not None), [m]
            )
            args = group.run_args(run) if len(run) > 1 else group.args_of(m)
            prefix = group.prefixes[m].rstrip("_-")
            key = names.take(prefix if prefix and VALID_NAME.match(prefix) else group.name, group.name)
            entry: dict[str, Any] = {"block": group.name}
            if len(run) > 1:
                entry["repeat"] = len(run)
            entry.update(args or {})
            entries.append((key, entry, group.members[m].entry))
            last = group.members[run[-1]]
            for r in run:
                renamed[self.nodes[group.members[r].end].name] = key
            j = last.end + 1

        def rename(ref: str) -> str:
            base = _base(ref)
            return renamed.get(base, base) + ref[len(base) :]

        layers: dict[str, Any] = {}
        previous = self.input_names[0] if len(self.input_names) == 1 else None
        for key, entry, raw in entries:
            raw = _map_refs(raw, rename)
            out = {k: v for k, v in entry.items() if k in KINDS}
            if raw is not None and raw != previous:
                out["inputs"] = raw
            out.update({k: v for k, v in entry.items() if k not in KINDS})
            layers[key] = out
            previous = key
        return layers, _map_refs(self.outputs, rename)


# -- groups of units ----------------------------------------------------------------------------


def _groups(graph: Graph, units: list[Unit]) -> list[Group]:
    by_shape: dict[str, list[Unit]] = {}
    for unit in units:
        by_shape.setdefault(unit.shape, []).append(unit)
    groups = []
    for members in by_shape.values():
        if len(members) < 2:
            continue
        group = Group.make(members)
        if group is not None:
            group.setup(graph)
            groups.append(group)
    return groups


class Group:
    """Units of one shape: one block; what differs between them its params."""

    graph: Graph

    def __init__(self, members: list[Unit], prefixes: list[str], suffixes: list[str]):
        self.members = members
        self.prefixes = prefixes
        self.suffixes = suffixes
        self.name = ""
        self.params: dict[str, list[Any]] = {}  # param -> value per member
        self.slots: dict[tuple[int, str], str] = {}  # (node, argument) -> expression
        self.literals: dict[tuple[int, str], Any] = {}  # (node, argument) -> the value all share

    @classmethod
    def make(cls, members: list[Unit]) -> Group | None:
        split = [_split_names(u.names) for u in members]
        if any(s is None for s in split) or len({tuple(s[1]) for s in split}) != 1:  # type: ignore[index]
            split = [_split_most(u.names) for u in members]  # a few names of Keras's own (add_3) as params
            if any(s is None for s in split) or len({tuple(s[1]) for s in split}) != 1:  # type: ignore[index]
                return None  # names that a prefix does not explain: left flat
        return cls(members, [s[0] for s in split], split[0][1])  # type: ignore[index]

    def setup(self, graph: Graph) -> None:
        self.graph = graph
        taken = set(RESERVED_KEYS) | {"i", "n", "x", "prefix"}
        by_values: dict[str, str] = {}
        if len({p for p in self.prefixes}) > 1:
            self.params["prefix"] = list(self.prefixes)
        first = self.members[0]
        self.name_params: dict[int, str] = {}
        for offset, suffix in enumerate(self.suffixes):
            if suffix == _OWN:
                name = _NUMBER.sub("", first.names[offset] or "").strip("_-") or "layer"
                values = [u.names[offset] for u in self.members]
                self.name_params[offset] = self.new_param(f"{name}_name", values, taken)
        for offset in range(first.end - first.start + 1):
            entries = [graph.nodes[u.start + offset].entry for u in self.members]
            keys = list(dict.fromkeys(k for e in entries for k in e if k not in KINDS and k != "call"))
            for key in keys:
                values = [e[key] if key in e else _default(e, key) for e in entries]
                if len({_key(v) for v in values}) == 1:
                    self.literals[(offset, key)] = values[0]
                    continue
                vector = _key(values)
                if vector not in by_values:
                    by_values[vector] = self.derived(values) or self.new_param(key, values, taken)
                self.slots[(offset, key)] = by_values[vector]

    def new_param(self, key: str, values: list[Any], taken: set[str]) -> str:
        param, k = valid_name(key, "p"), 1
        while param in taken:
            param, k = f"{valid_name(key, 'p')}_{k}", k + 1
        taken.add(param)
        self.params[param] = values
        return param

    def derived(self, values: list[Any]) -> str | None:
        """``K * param`` when the values are a whole multiple of a param's (ResNet's 4 * filters)."""
        if not all(type(v) is int and v for v in values):
            return None
        for param, known in self.params.items():
            if all(type(v) is int and v for v in known) and all(v % b == 0 for v, b in zip(values, known)):
                ratios = {v // b for v, b in zip(values, known)}
                if len(ratios) == 1:
                    return f"{ratios.pop()} * {param}"
        return None

    def base_name(self) -> str:
        """After the units' common name prefix, its numbers left out: conv2_block1_ -> conv_block."""
        name = re.sub(r"[_-]+", "_", _NUMBER.sub("", self.prefixes[0])).strip("_")
        if not name or catalog.layer(name) is not None or catalog.refused(name) is not None:
            name = f"{name}_block" if name else "unit"
        return valid_name(name, "unit")

    def block_data(self) -> dict[str, Any]:
        graph, first = self.graph, self.members[0]
        keys = Names({"x"})
        local = [
            keys.take(
                _NUMBER.sub("", first.names[k] or "").strip("_-") or "layer"
                if s == _OWN
                else s.strip("_-") or "layer"
                if s is not None
                else str(graph.nodes[first.start + k].entry["op"])
            )
            for k, s in enumerate(self.suffixes)
        ]
        layers: dict[str, Any] = {}
        previous = "x"
        for offset, key in enumerate(local):
            node = graph.nodes[first.start + offset]
            raw = graph.local(first, node.inputs)
            raw = _map_refs(
                raw, lambda r: local[int(_base(r)[1:])] + r[len(_base(r)) :] if r.startswith("@") else r
            )
            entry = {k: node.entry[k] for k in KINDS if k in node.entry}
            prefix = "${prefix}" if "prefix" in self.params else _escaped(self.prefixes[0])
            suffix = self.suffixes[offset]
            if offset in self.name_params:
                entry["name"] = "${" + self.name_params[offset] + "}"
            elif suffix is not None:  # an operation is no layer: Keras names it
                entry["name"] = prefix + suffix
            if raw != previous:
                entry["inputs"] = raw
            for (at, k), v in self.literals.items():
                if at == offset and (k in node.entry or _default(node.entry, k) is _MISSING):
                    entry[k] = _escaped(v)
            for (at, k), expression in self.slots.items():
                if at == offset:
                    entry[k] = "${" + expression + "}"
            layers[key] = entry
            previous = key
        data: dict[str, Any] = {}
        if self.params:
            data["params"] = dict.fromkeys(self.params, "required")
        data["layers"] = layers
        return data

    def args_of(self, m: int) -> dict[str, Any]:
        return {p: _escaped(values[m]) for p, values in self.params.items()}

    def run_args(self, run: list[int]) -> dict[str, Any] | None:
        """The args of one ``repeat`` instance standing for members ``run`` (None: no rule explains them)."""
        out: dict[str, Any] = {}
        for param, values in self.params.items():
            rule = _rule([values[m] for m in run])
            if rule is None:
                return None
            out[param] = rule
        return out


_MISSING = object()


def _default(entry: dict[str, Any], key: str) -> Any:
    """The catalog's default for argument ``key`` of a layer entry (``_MISSING`` when it has none)."""
    info = catalog.layer(entry["type"]) if isinstance(entry.get("type"), str) else None
    arg = info.args.get(key) if info is not None else None
    if arg is None or arg.required or arg.default is catalog.MISSING:
        return _MISSING
    return arg.default


def _escaped(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("${", "$${")
    if isinstance(value, list):
        return [_escaped(v) for v in value]
    if isinstance(value, dict):
        return {k: _escaped(v) for k, v in value.items()}
    return value


def _prefix(names: list[str | None]) -> str:
    """The names' common prefix, up to and with its last separator ('' when none); None counts for nothing."""
    names = [n for n in names if n is not None]  # type: ignore[misc]
    if not names:
        return ""
    prefix = names[0] if len(names) > 1 else names[0][:-1]
    for name in names[1:]:
        while not name.startswith(prefix):
            prefix = prefix[:-1]
    cut = max(prefix.rfind("_"), prefix.rfind("-"))
    return prefix[: cut + 1]


_OWN = "\0own"
"""The suffix of a layer whose name its unit's prefix does not explain: its name is a param."""


def _split_most(names: list[str | None]) -> tuple[str, list[str | None]] | None:
    """As :func:`_split_names`, the prefix being the longest that most names share; the others ``_OWN``."""
    given = [n for n in names if n is not None]
    if len(given) < 3:
        return None
    cuts = [k + 1 for k, c in enumerate(given[0]) if c in "_-"]
    for cut in reversed(cuts):
        prefix = given[0][:cut]
        if sum(n.startswith(prefix) and len(n) > cut for n in given) * 4 >= len(given) * 3:
            own = [n is not None and not (n.startswith(prefix) and len(n) > cut) for n in names]
            return prefix, [_OWN if o else None if n is None else n[cut:] for n, o in zip(names, own)]
    return None


def _split_names(names: list[str | None]) -> tuple[str, list[str | None]] | None:
    """A unit's layer names as (common prefix up to a separator, the suffixes), or None."""
    prefix = _prefix(names)
    suffixes = [None if n is None else n[len(prefix) :] for n in names]
    if not prefix or any(s == "" for s in suffixes):
        return None
    return prefix, suffixes


# -- rules in the repeat index ------------------------------------------------------------------

_NUMBER = re.compile(r"\d+")


def _literal(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return None


def _linear(numbers: list[int]) -> str | None:
    a, step = numbers[0], numbers[1] - numbers[0]
    if any(v != a + step * i for i, v in enumerate(numbers)):
        return None
    term = "i" if step == 1 else f"{step} * i"
    if a == 0:
        return term
    return f"{term} + {a}" if a > 0 else f"{term} - {-a}"


def _rule(values: list[Any]) -> Any:
    """A value or ``${...}`` expression giving ``values[i]`` for repeat ``i``; None when none is simple."""
    if all(_key(v) == _key(values[0]) for v in values):
        return _escaped(values[0])
    # Two values always fit a line, or "the first differs": a rule needs three, or a count by one.
    if all(type(v) is int for v in values) and (len(values) > 2 or abs(values[1] - values[0]) == 1):
        linear = _linear(values)
        if linear is not None:
            return "${" + linear + "}"
    if len(values) > 2 and all(_key(v) == _key(values[1]) for v in values[1:]):
        a, b = _literal(values[0]), _literal(values[1])
        if a is not None and b is not None:
            return "${" + f"{a} if i == 0 else {b}" + "}"
    if all(isinstance(v, str) and "$" not in v for v in values):
        skeletons = {_NUMBER.sub("#", v) for v in values}
        plain = all(t == str(int(t)) for v in values for t in _NUMBER.findall(v))  # no leading zeros
        if len(skeletons) == 1 and plain:
            columns = list(zip(*(map(int, _NUMBER.findall(v)) for v in values)))
            texts = _NUMBER.split(values[0])
            out = texts[0]
            for column, text in zip(columns, texts[1:]):
                if len(set(column)) == 1:
                    out += str(column[0])
                else:
                    linear = _linear(list(column))
                    if linear is None:
                        return None
                    out += "${" + linear + "}"
                out += text
            return out
    return None


_HELPERS = SimpleNamespace(
    refs=_refs, base=_base, map_refs=_map_refs, escaped=_escaped, prefix=lambda names: _prefix(names)
)
