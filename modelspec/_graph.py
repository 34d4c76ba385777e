"""Stage 3, graph: a :class:`ModelSpec` to a resolved, ordered, checked :class:`Graph`.

Resolves every reference (``name``, ``name[i]``, the default "node above"),
orders the nodes so each comes after what it is called on, and reports
unknown references, cycles, duplicate names and inputs or nodes that nothing
uses, each at its line.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Union

from ._errors import Path, Problem, SpecError, Suggester
from ._spec import InputSpec, LayerSpec, ModelSpec, split_reference


@dataclass(frozen=True)
class Ref:
    """A reference to an input or a node's output (``index`` picks one of several)."""

    name: str
    index: int | None = None

    def __str__(self) -> str:
        return self.name if self.index is None else f"{self.name}[{self.index}]"


Refs = Union[Ref, list[Ref], dict[str, Union[Ref, list[Ref]]]]


@dataclass
class Node:
    """One layer node: its entry, where it is, and what it is called on.

    Attributes:
        name: The node name (the Keras layer name).
        path: Where the entry is in the spec: ``('layers', name)`` or ``('layers', i)``.
        entry: The layer entry.
        inputs: What the layer is called on: a :class:`Ref`, a list (the layer
            gets a list), or call argument -> reference(s) (keyword call).
        call: Constant call arguments.
        share: The node whose layer object this node calls, when shared.
    """

    name: str
    path: Path
    entry: LayerSpec
    inputs: Refs | None
    call: dict[str, Any] = field(default_factory=dict)
    share: str | None = None

    def refs(self) -> list[Ref]:
        """Every reference this node is called on."""
        return list(_flatten(self.inputs))


@dataclass
class Graph:
    """A checked model graph, nodes in an order where each follows its inputs."""

    spec: ModelSpec
    inputs: dict[str, InputSpec]
    nodes: list[Node]
    outputs: Refs | None
    sequential: bool
    warnings: list[Problem] = field(default_factory=list)

    def node(self, name: str) -> Node:
        """The node called ``name``."""
        return self._by_name[name]

    @functools.cached_property
    def _by_name(self) -> dict[str, Node]:
        return {n.name: n for n in self.nodes}

    def output_names(self) -> list[str]:
        """The names Keras gives the outputs (the keys of per-output compile mappings)."""
        if self.sequential or self.outputs is None:
            return [self.nodes[-1].name] if self.nodes else []
        if isinstance(self.outputs, dict):
            return list(self.outputs)
        return [r.name for r in _flatten(self.outputs)]


def _flatten(refs: Any) -> list[Ref]:
    if refs is None:
        return []
    if isinstance(refs, Ref):
        return [refs]
    if isinstance(refs, dict):
        return [r for v in refs.values() for r in _flatten(v)]
    return [r for v in refs for r in _flatten(v)]


def to_graph(spec: ModelSpec) -> Graph:
    """Resolve and check the graph of ``spec``.

    Raises:
        SpecError: Unknown references, cycles, duplicate names, unused inputs
            or nodes, and per-output compile keys that name no output.
    """
    from ._lint import lint  # imports this module: the lint pass reads graphs

    builder = _GraphBuilder(spec)
    graph = builder.run()
    if builder.problems:
        raise SpecError(builder.problems)
    graph.warnings = lint(graph)  # only for a graph without errors: broken parts mislead them
    return graph


class _GraphBuilder:
    def __init__(self, spec: ModelSpec):
        self.spec = spec
        self.problems: list[Problem] = []
        self.near = Suggester()

    def error(self, path: Path, message: str, hint: str | None = None, *, key: bool = False) -> None:
        self.problems.append(self.spec.problem(path, message, hint, key=key))

    def run(self) -> Graph:
        spec = self.spec
        graph = self.stack(spec.layers) if isinstance(spec.layers, list) else self.dag(spec.layers)
        self.check_compile(graph)
        return graph

    # -- the list form -----------------------------------------------------

    def stack(self, entries: list[LayerSpec]) -> Graph:
        spec = self.spec
        if len(spec.inputs) > 1:
            self.error(
                ("inputs",),
                f"a list of layers (keras.Sequential) takes at most one input, got {len(spec.inputs)}",
                "write 'layers' as a mapping of node name -> layer for a model with several inputs",
                key=True,
            )
        if spec.outputs is not None:
            self.error(
                ("outputs",),
                "'outputs' belongs to the mapping form of 'layers'; a stack's output is its last layer",
                key=True,
            )
        if not entries:
            self.error(("layers",), "the model has no layers", key=True)
        seen: dict[str, Path] = {name: ("inputs", name) for name in spec.inputs}
        nodes = []
        for i, entry in enumerate(entries):
            name = entry.name or _default_name(entry, i)
            if entry.name is not None:
                self.unique(entry.name, ("layers", i, "name"), seen)
            nodes.append(Node(name, ("layers", i), entry, None))
        return Graph(spec, dict(spec.inputs), nodes, None, True)

    # -- the mapping form --------------------------------------------------

    def dag(self, entries: dict[str, LayerSpec]) -> Graph:
        spec = self.spec
        if not spec.inputs:
            self.error(
                ("layers",),
                "a mapping of layers (a functional model) needs at least one input under 'inputs'",
                "add e.g. `inputs: {features: {shape: [4]}}`",
                key=True,
            )
        if not entries:
            self.error(("layers",), "the model has no layers", key=True)
        for name in entries:
            if name in spec.inputs:
                self.error(
                    ("layers", name),
                    f"duplicate name '{name}': it names an input and a layer",
                    "names are unique across inputs and layers",
                    key=True,
                )
        names = {**dict.fromkeys(spec.inputs), **dict.fromkeys(entries)}  # ordered, O(1) lookups
        nodes: list[Node] = []
        previous: str | None = next(iter(spec.inputs)) if len(spec.inputs) == 1 else None
        for name, entry in entries.items():
            path = ("layers", name)
            if entry.inputs is None:
                if previous is None and not spec.inputs:
                    inputs = None  # already reported: the model has no input at all
                elif previous is None:
                    self.error(
                        path,
                        f"node '{name}' does not say what it is called on, and the model has "
                        f"{len(spec.inputs)} inputs",
                        f"add `inputs: {next(iter(spec.inputs), 'INPUT')}` (or a list of references)",
                        key=True,
                    )
                    inputs: Refs | None = None
                else:
                    inputs = Ref(previous)
            else:
                inputs = self.refs(entry.inputs, path + ("inputs",), names, entries)
            share = None
            if entry.share is not None:
                share = self.share_target(name, entry.share, path + ("share",), entries)
            nodes.append(Node(name, path, entry, inputs, dict(entry.call or {}), share))
            previous = name
        outputs = self.outputs(names, entries, nodes)
        ordered = self.order(nodes)
        if not self.problems:  # an unknown reference would make its intended target look unused
            self.unused(ordered, outputs)
        return Graph(spec, dict(spec.inputs), ordered, outputs, False)

    def refs(self, raw: Any, path: Path, names: dict[str, None], entries: dict[str, LayerSpec]) -> Refs:
        if isinstance(raw, str):
            return self.ref(raw, path, names, entries)
        if isinstance(raw, list):
            return [self.ref(r, path + (i,), names, entries) for i, r in enumerate(raw)]
        return {k: self.refs(v, path + (k,), names, entries) for k, v in raw.items()}  # type: ignore[misc]

    def ref(self, raw: str, path: Path, names: dict[str, None], entries: dict[str, LayerSpec]) -> Ref:
        name, index = split_reference(raw)
        if name not in names:
            near = self.near(name, names, "nodes")
            self.error(path, f"unknown node '{name}'", f"did you mean '{near}'?" if near else None)
        elif index is not None and name in self.spec.inputs:
            self.error(path, f"'{raw}': input '{name}' has one output; index only a layer with several")
        return Ref(name, index)

    def share_target(self, name: str, target: str, path: Path, entries: dict[str, LayerSpec]) -> str | None:
        seen = [name]
        while target in entries and entries[target].share is not None and target not in seen:
            seen.append(target)
            target = entries[target].share  # type: ignore[assignment]
        if target in seen:
            self.error(path, f"'share' goes round in a circle: {' -> '.join([*seen, target])}")
            return None
        if target not in entries:
            what = "an input, not a layer" if target in self.spec.inputs else "unknown"
            near = self.near(target, entries, "layers")
            near = near if near != name else None
            self.error(
                path,
                f"'share' names '{target}', which is {what}",
                f"did you mean '{near}'?" if near and what == "unknown" else None,
            )
            return None
        return target

    def outputs(
        self, names: dict[str, None], entries: dict[str, LayerSpec], nodes: list[Node]
    ) -> Refs | None:
        raw = self.spec.outputs
        if raw is None:
            return Ref(nodes[-1].name) if nodes else None
        refs = self.refs(raw, ("outputs",), names, entries)
        for ref in _flatten(refs):
            if ref.name in self.spec.inputs:
                self.error(("outputs",), f"output '{ref}' is an input; outputs are layer nodes")
        return refs

    def order(self, nodes: list[Node]) -> list[Node]:
        """Nodes in dependency order; a cycle is reported with its nodes, in order."""
        by_name = {n.name: n for n in nodes}
        state: dict[str, int] = {}  # 1: on the current path, 2: done
        ordered: list[Node] = []
        reported: set[frozenset] = set()
        for start in nodes:
            if start.name in state:
                continue
            stack: list[tuple[Node, list[str]]] = [(start, [d.name for d in start.refs()])]
            trail = [start.name]
            state[start.name] = 1
            while stack:
                node, deps = stack[-1]
                if not deps:
                    stack.pop()
                    trail.pop()
                    state[node.name] = 2
                    ordered.append(node)
                    continue
                dep = deps.pop()
                if dep not in by_name or state.get(dep) == 2:
                    continue
                if state.get(dep) == 1:
                    cycle = trail[trail.index(dep) :] + [dep]
                    key = frozenset(cycle)
                    if key not in reported:
                        reported.add(key)
                        self.error(
                            by_name[dep].path + ("inputs",),
                            f"the layers form a cycle: {' -> '.join(reversed(cycle))}",
                            "a model is a DAG: each node's inputs must come from nodes that do not depend on it",
                        )
                    continue
                state[dep] = 1
                trail.append(dep)
                stack.append((by_name[dep], [d.name for d in by_name[dep].refs()]))
        return ordered

    def unused(self, nodes: list[Node], outputs: Refs | None) -> None:
        used = {r.name for n in nodes for r in n.refs()} | {r.name for r in _flatten(outputs)}
        used |= {n.share for n in nodes if n.share}
        for name in self.spec.inputs:
            if name not in used:
                self.error(
                    ("inputs", name),
                    f"input '{name}' is used by no layer",
                    "name it in a node's 'inputs', or remove it",
                    key=True,
                )
        for node in nodes:
            if node.name not in used:
                self.error(
                    node.path,
                    f"node '{node.name}' is used by no other node and is not an output",
                    "add it to 'outputs', feed it to a node, or remove it",
                    key=True,
                )

    # -- names ---------------------------------------------------------------

    def unique(self, name: str, path: Path, seen: dict[str, Path]) -> None:
        if name in seen:
            first = self.spec.source.locate(seen[name], key=True) if self.spec.source else None
            where = f" (first at line {first.line})" if first else ""
            self.error(path, f"duplicate name '{name}'{where}", "names are unique across inputs and layers")
        else:
            seen[name] = path

    def check_compile(self, graph: Graph) -> None:
        """Per-output compile mappings must name outputs."""
        c = self.spec.compile
        if c is None:
            return
        outputs = graph.output_names()
        for field_name in ("loss", "metrics", "weighted_metrics", "loss_weights"):
            value = getattr(c, field_name)
            if isinstance(value, dict) and "type" not in value:
                for key in value:
                    if key not in outputs:
                        near = self.near(key, outputs, "outputs")
                        self.error(
                            ("compile", field_name, key),
                            f"'{key}' is not an output of the model",
                            f"did you mean '{near}'?" if near else f"the outputs are: {', '.join(outputs)}",
                            key=True,
                        )


def _default_name(entry: LayerSpec, index: int) -> str:
    """The name of an unnamed list entry in messages: its type and position."""
    return f"{entry.type or 'layer'}#{index}"
