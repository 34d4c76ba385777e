"""The graph stage: a :class:`ModelSpec` to a resolved, ordered, checked :class:`Graph`.

Resolves every reference (``name``, ``name[i]``, the default "node above"),
orders the nodes so each comes after what it is called on, and reports
unknown references, cycles, duplicate names and inputs or nodes that nothing
uses, each at the origin of the entry concerned.
"""

from __future__ import annotations

import os
from typing import Any

from ..errors import Collector, Origin, Problem
from ..order import depth_first
from ..spec import LayerSpec, ModelSpec, per_output, split_reference
from .model import Graph, Input, Node, Ref, Refs, flatten


def to_graph(spec: ModelSpec) -> tuple[Graph, list[Problem]]:
    """Resolve and check the graph of ``spec``.

    Returns:
        The graph, and its problems: unknown references, cycles, duplicate
        names, unused inputs or nodes, and per-output compile keys that name
        no output. The graph is only fit for later stages when there are none.
    """
    builder = _GraphBuilder(spec)
    graph = builder.run()
    return graph, builder.problems


def model_name(spec: ModelSpec) -> str | None:
    """The spec's ``name``, else its file's stem, else None (Keras picks one)."""
    if spec.name:
        return spec.name
    source = spec.source
    if source is not None and not source.name.startswith("<"):
        return os.path.splitext(os.path.basename(source.name))[0]
    return None


class _GraphBuilder(Collector):
    def __init__(self, spec: ModelSpec):
        super().__init__()
        self.spec = spec

    def run(self) -> Graph:
        spec = self.spec
        graph = self.stack(spec.layers) if isinstance(spec.layers, list) else self.dag(spec.layers)
        self.check_compile(graph)
        return graph

    def graph(self, nodes: list[Node], outputs: Refs | None, model_class: Any) -> Graph:
        spec = self.spec
        inputs = {
            name: Input(
                name,
                tuple(i.shape),
                i.dtype,
                i.batch_size,
                i.sparse,
                i.origin if i.origin is not None else spec.at("inputs", name),
            )
            for name, i in spec.inputs.items()
        }
        compile_ = spec.compile.model_dump(exclude_none=True) if spec.compile is not None else None
        return Graph(model_name(spec), spec.seed, inputs, nodes, outputs, model_class, compile_, spec.at())

    # -- the list form -----------------------------------------------------

    def stack(self, entries: list[LayerSpec]) -> Graph:
        spec = self.spec
        if len(spec.inputs) > 1:
            self.error(
                spec.at("inputs"),
                "sequential-inputs",
                f"a list of layers (keras.Sequential) takes at most one input, got {len(spec.inputs)}",
                "write 'layers' as a mapping of node name -> layer for a model with several inputs",
                key=True,
            )
        if spec.outputs is not None:
            self.error(
                spec.at("outputs"),
                "sequential-inputs",
                "'outputs' belongs to the mapping form of 'layers'; a stack's output is its last layer",
                key=True,
            )
        if not entries:
            self.error(spec.at("layers"), "no-layers", "the model has no layers", key=True)
        seen: dict[str, Origin] = {name: spec.at("inputs", name) for name in spec.inputs}
        nodes = []
        above: Ref | None = Ref(next(iter(spec.inputs))) if spec.inputs else None
        for i, entry in enumerate(entries):
            at = spec.entry_origin(i)
            name = entry.name or _default_name(entry, i)
            if entry.name is not None:
                self.unique(entry.name, at.at("name"), seen)
            label = f"'{entry.name}'" if entry.name is not None else f"layers[{i}]"
            nodes.append(_node(name, entry, above, at, entry.name, label))
            above = Ref(name)
        operations = [node for node in nodes if node.op is not None]
        if not operations:
            return self.graph(nodes, Ref(nodes[-1].name) if nodes else None, "Sequential")
        # keras.Sequential holds layers only: a stack with operations is the same chain as a functional model.
        if not spec.inputs:
            self.error(
                operations[0].origin.at("op"),
                "no-inputs",
                f"{operations[0].label} is an operation (keras.ops.{operations[0].op}): a stack with "
                "operations is built as a functional model, which needs its input declared",
                "declare the input under 'inputs', e.g. `inputs: {x: {shape: [16]}}`",
                key=True,
            )
        return self.graph(nodes, Ref(nodes[-1].name), "Functional")

    # -- the mapping form --------------------------------------------------

    def dag(self, entries: dict[str, LayerSpec]) -> Graph:
        spec = self.spec
        if not spec.inputs:
            self.error(
                spec.at("layers"),
                "no-inputs",
                "a mapping of layers (a functional model) needs at least one input under 'inputs'",
                "add e.g. `inputs: {features: {shape: [4]}}`",
                key=True,
            )
        if not entries:
            self.error(spec.at("layers"), "no-layers", "the model has no layers", key=True)
        for name in entries:
            if name in spec.inputs:
                self.error(
                    spec.entry_origin(name),
                    "duplicate-name",
                    f"duplicate name '{name}': it names an input and a layer",
                    "names are unique across inputs and layers",
                    key=True,
                )
        names = {**dict.fromkeys(spec.inputs), **dict.fromkeys(entries)}  # ordered, O(1) lookups
        nodes: list[Node] = []
        previous: str | None = next(iter(spec.inputs)) if len(spec.inputs) == 1 else None
        for name, entry in entries.items():
            at = spec.entry_origin(name)
            if entry.inputs is None:
                if previous is None and not spec.inputs:
                    inputs = None  # already reported: the model has no input at all
                elif previous is None:
                    self.error(
                        at,
                        "ambiguous-input",
                        f"node '{name}' does not say what it is called on, and the model has "
                        f"{len(spec.inputs)} inputs",
                        f"add `inputs: {next(iter(spec.inputs), 'INPUT')}` (or a list of references)",
                        key=True,
                    )
                    inputs: Refs | None = None
                else:
                    inputs = Ref(previous)
            else:
                inputs = self.refs(entry.inputs, at.at("inputs"), names)
            share = None
            if entry.share is not None:
                share = self.share_target(name, entry.share, at.at("share"), entries)
            node = _node(name, entry, inputs, at, name, f"'{name}'")
            node.share = share
            nodes.append(node)
            previous = name
        outputs = self.outputs(names, nodes)
        ordered = self.order(nodes)
        if not self.problems:  # an unknown reference would make its intended target look unused
            self.unused(ordered, outputs)
        return self.graph(ordered, outputs, "Functional")

    def refs(self, raw: Any, at: Origin, names: dict[str, None]) -> Refs:
        if isinstance(raw, str):
            return self.ref(raw, at, names)
        if isinstance(raw, list):
            return [self.ref(r, at.at(i), names) for i, r in enumerate(raw)]
        return {k: self.refs(v, at.at(k), names) for k, v in raw.items()}  # type: ignore[misc]

    def ref(self, raw: str, at: Origin, names: dict[str, None]) -> Ref:
        name, index = split_reference(raw)
        if name not in names:
            self.error(
                at, "unknown-reference", f"unknown node '{name}'", self.near.hint(name, names, "nodes")
            )
        elif index is not None and name in self.spec.inputs:
            self.error(
                at,
                "bad-output-index",
                f"'{raw}': input '{name}' has one output; index only a layer with several",
            )
        return Ref(name, index)

    def share_target(self, name: str, target: str, at: Origin, entries: dict[str, LayerSpec]) -> str | None:
        seen = [name]
        while target in entries and entries[target].share is not None and target not in seen:
            seen.append(target)
            target = entries[target].share  # type: ignore[assignment]
        if target in seen:
            self.error(at, "share-target", f"'share' goes round in a circle: {' -> '.join([*seen, target])}")
            return None
        if target in entries and entries[target].op is not None:
            self.error(
                at,
                "share-target",
                f"'share' names '{target}', which is an op node (keras.ops.{entries[target].op}), not a layer",
                "an operation has no weights to share: repeat the op entry on the other input instead",
            )
            return None
        if target not in entries:
            what = "an input, not a layer" if target in self.spec.inputs else "unknown"
            near = self.near(target, entries, "layers")
            near = near if near != name else None
            self.error(
                at,
                "share-target",
                f"'share' names '{target}', which is {what}",
                f"did you mean '{near}'?" if near and what == "unknown" else None,
            )
            return None
        return target

    def outputs(self, names: dict[str, None], nodes: list[Node]) -> Refs | None:
        raw = self.spec.outputs
        if raw is None:
            return Ref(nodes[-1].name) if nodes else None
        at = self.spec.at("outputs")
        refs = self.refs(raw, at, names)
        for ref in flatten(refs):
            if ref.name in self.spec.inputs:
                self.error(at, "output-is-input", f"output '{ref}' is an input; outputs are layer nodes")
        return refs

    def order(self, nodes: list[Node]) -> list[Node]:
        """Nodes in dependency order; a cycle is reported with its nodes, in order."""
        by_name = {n.name: n for n in nodes}
        reported: set[frozenset] = set()

        def needs(name: str) -> list[str]:
            return [d.name for d in reversed(by_name[name].refs()) if d.name in by_name]

        def cycle(names: list[str]) -> None:
            key = frozenset(names)
            if key not in reported:
                reported.add(key)
                self.error(
                    by_name[names[-1]].origin.at("inputs"),
                    "cycle",
                    f"the layers form a cycle: {' -> '.join(reversed(names))}",
                    "a model is a DAG: each node's inputs must come from nodes that do not depend on it",
                )

        return [by_name[name] for name in depth_first(by_name, needs, on_cycle=cycle)]

    def unused(self, nodes: list[Node], outputs: Refs | None) -> None:
        used = {r.name for n in nodes for r in n.refs()} | {r.name for r in flatten(outputs)}
        used |= {n.share for n in nodes if n.share}
        for name in self.spec.inputs:
            if name not in used:
                self.error(
                    self.spec.at("inputs", name),
                    "unused-input",
                    f"input '{name}' is used by no layer",
                    "name it in a node's 'inputs', or remove it",
                    key=True,
                )
        for node in nodes:
            if node.name not in used:
                self.error(
                    node.origin,
                    "unused-node",
                    f"node '{node.name}' is used by no other node and is not an output",
                    "add it to 'outputs', feed it to a node, or remove it",
                    key=True,
                )

    # -- names ---------------------------------------------------------------

    def unique(self, name: str, at: Origin, seen: dict[str, Origin]) -> None:
        if name in seen:
            first = seen[name].line
            where = f" (first at line {first})" if first is not None else ""
            self.error(
                at,
                "duplicate-name",
                f"duplicate name '{name}'{where}",
                "names are unique across inputs and layers",
            )
        else:
            seen[name] = at

    def check_compile(self, graph: Graph) -> None:
        """Per-output compile mappings must name outputs; a list of losses (or loss weights) has one per output."""
        c = self.spec.compile
        if c is None:
            return
        outputs = graph.output_names()
        for field_name in ("loss", "loss_weights"):
            value = getattr(c, field_name)
            if isinstance(value, list) and len(value) != len(outputs):
                self.error(
                    self.spec.at("compile", field_name),
                    "output-count",
                    f"{len(value)} {_NOUNS[field_name][len(value) != 1]} for {len(outputs)} output"
                    f"{'s' if len(outputs) != 1 else ''} ({', '.join(outputs)}): a list gives one per output, in order",
                    f"give {len(outputs)}, or map output names to them: {{{outputs[0]}: ...}}"
                    if outputs
                    else None,
                )
        for field_name in ("loss", "metrics", "weighted_metrics", "loss_weights"):
            value = getattr(c, field_name)
            if per_output(value):
                for key in value:
                    if key not in outputs:
                        near = self.near(key, outputs, "outputs")
                        self.error(
                            self.spec.at("compile", field_name, key),
                            "unknown-output",
                            f"'{key}' is not an output of the model",
                            f"did you mean '{near}'?" if near else f"the outputs are: {', '.join(outputs)}",
                            key=True,
                        )


_NOUNS = {"loss": ("loss", "losses"), "loss_weights": ("loss weight", "loss weights")}


def _node(
    name: str, entry: LayerSpec, inputs: Refs | None, at: Origin, keras_name: str | None, label: str
) -> Node:
    return Node(
        name, entry.type, entry.args, inputs, dict(entry.call or {}), None, at, keras_name, label, entry.op
    )


def _default_name(entry: LayerSpec, index: int) -> str:
    """The name of an unnamed list entry in messages: its type and position."""
    return f"{entry.type or entry.op or 'layer'}#{index}"
