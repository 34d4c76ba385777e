"""Pictures of a model's graph: Graphviz DOT and Mermaid text, written by modelspec itself.

Nodes show their name, type, output shape and parameters; inputs and outputs
stand out; an edge into a keyword call is labelled with its call argument;
a node sharing another's layer is dashed, with a dashed edge from its owner.
Layers made by a block instance are drawn inside a cluster named after the
instance, and a repeated instance is folded into one box marked ``xN``
(``expand=True`` draws every layer).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ..graph import Graph, Node, Ref, flatten
from .infer import Analysis, format_shape

OUTPUT_FORMATS = (".dot", ".mmd", ".svg", ".png")
"""What ``modelspec draw`` writes: DOT and Mermaid itself, SVG and PNG through Graphviz's ``dot``."""


@dataclass
class _Cluster:
    """A block instance (not folded): its own nodes and the clusters nested in it."""

    key: str
    label: str
    nodes: list[str] = field(default_factory=list)
    children: dict[str, _Cluster] = field(default_factory=dict)


@dataclass
class _Box:
    """A drawn node: a layer, an input, or a folded repeat."""

    id: str
    lines: list[str]
    kind: str = "layer"  # layer | input | output | shared | folded


@dataclass
class Picture:
    """What is drawn, independent of the output language."""

    name: str
    boxes: dict[str, _Box]
    root: _Cluster
    edges: list[tuple[str, str, str | None, bool]]  # (from, to, label, dashed)


def picture(graph: Graph, analysis: Analysis, *, expand: bool = False) -> Picture:
    """Lay out what a drawing shows: boxes, clusters and edges (repeats folded unless ``expand``)."""
    boxes: dict[str, _Box] = {}
    drawn: dict[str, str] = {}  # node or input name -> the box that stands for it
    root = _Cluster("", "")
    for name in graph.inputs:
        boxes[name] = _Box(name, [name, "Input", format_shape(analysis.inputs[name])], "input")
        root.nodes.append(name)
        drawn[name] = name
    outputs = {r.name for r in flatten(graph.outputs)}
    names = graph.keras_names()  # a layer is labelled as the Keras model names it ('dense', 'dense_1')
    folded: dict[str, _Box] = {}
    for node in graph.nodes:
        info = analysis.nodes.get(node.name)
        frames = _frames(node)
        cluster, fold = root, None
        for depth, frame in enumerate(frames):
            if frame.count is not None and frame.count > 1 and not expand:
                fold = (frames[:depth], frame)
                break
            key = "/".join(f.name for f in frames[: depth + 1])
            cluster = cluster.children.setdefault(key, _Cluster(key, f"{frame.name}: {frame.block}"))
        if fold is not None:
            outer, frame = fold
            key = "/".join([*(f.name for f in outer), frame.base])
            box = folded.get(key)
            if box is None:
                box = folded[key] = _Box(
                    _id(key), [frame.name, f"{frame.block} x{frame.count}", "", "0"], "folded"
                )
                boxes[box.id] = box
                cluster.nodes.append(box.id)
            first = box.lines[0].split(" .. ")[0]
            box.lines[0] = first if frame.name == first else f"{first} .. {frame.name}"
            if info is not None:
                box.lines[2] = format_shape(info.shape)  # the last repeat's shape: the instance's output
                box.lines[3] = f"{int(box.lines[3].replace(',', '')) + info.params:,}"
            drawn[node.name] = box.id
            continue
        kind = "output" if node.name in outputs else "shared" if node.share else "layer"
        lines = [names.get(node.name, node.name), _type(node)]
        if info is not None:
            lines += [format_shape(info.shape), f"{info.params:,} params" if info.params else ""]
        boxes[node.name] = _Box(node.name, [line for line in lines if line], kind)
        cluster.nodes.append(node.name)
        drawn[node.name] = node.name
    for box in folded.values():
        box.lines[3] = f"{box.lines[3]} params"
    edges: list[tuple[str, str, str | None, bool]] = []
    seen: set[tuple] = set()
    for node in graph.nodes:
        target = drawn[node.name]
        for source, label in _sources(node):
            edge = (drawn[source.name], target, label, False)
            if edge[0] != edge[1] and edge[:3] not in seen:
                seen.add(edge[:3])
                edges.append(edge)
        if node.share and drawn[node.share] != target:
            edges.append((drawn[node.share], target, "shares", True))
    return Picture(graph.name or "model", boxes, root, edges)


def _frames(node: Node) -> tuple:
    doc = node.origin.doc
    return tuple(getattr(doc, "frames", {}).get(node.origin.path, ()))


def _type(node: Node) -> str:
    if node.op is not None:
        return f"op {node.op}"
    return f"shares {node.share}" if node.share else str(node.type)


def _sources(node: Node) -> list[tuple[Ref, str | None]]:
    if isinstance(node.inputs, dict):
        return [(ref, key) for key, value in node.inputs.items() for ref in flatten(value)]
    return [(ref, f"[{ref.index}]" if ref.index is not None else None) for ref in flatten(node.inputs)]


def _id(text: str) -> str:
    return "fold:" + text


# -- Graphviz DOT --------------------------------------------------------------------------------------

_DOT_STYLE = {
    "input": 'shape=oval, style="filled", fillcolor="#dae8fc"',
    "output": 'style="rounded,filled,bold", fillcolor="#f8cecc"',
    "shared": 'style="rounded,dashed"',
    "folded": 'shape=box3d, style="filled", fillcolor="#fff2cc"',
    "layer": 'style="rounded"',
}


def to_dot(p: Picture) -> str:
    """The picture as a Graphviz ``digraph``."""
    out = [
        f"digraph {_quote(p.name)} {{",
        '  rankdir=TB; node [shape=box, fontname="Helvetica", fontsize=10]; edge [fontsize=9];',
    ]

    def cluster(c: _Cluster, indent: str) -> None:
        for name in c.nodes:
            box = p.boxes[name]
            label = "\\n".join(_escape(line) for line in box.lines)
            out.append(f'{indent}{_quote(box.id)} [label="{label}", {_DOT_STYLE[box.kind]}];')
        for child in c.children.values():
            out.append(f"{indent}subgraph {_quote('cluster_' + child.key)} {{")
            out.append(f'{indent}  label="{_escape(child.label)}"; style="rounded"; color="#888888";')
            cluster(child, indent + "  ")
            out.append(f"{indent}}}")

    cluster(p.root, "  ")
    for source, target, label, dashed in p.edges:
        attrs = [f'label="{_escape(label)}"'] if label else []
        attrs += ["style=dashed"] if dashed else []
        out.append(
            f"  {_quote(source)} -> {_quote(target)}" + (f" [{', '.join(attrs)}]" if attrs else "") + ";"
        )
    out.append("}")
    return "\n".join(out) + "\n"


def _quote(text: str) -> str:
    return '"' + _escape(text) + '"'


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


# -- Mermaid ---------------------------------------------------------------------------------------------

_MERMAID_SHAPE = {"input": ('(["', '"])'), "folded": ('[["', '"]]')}


def to_mermaid(p: Picture) -> str:
    """The picture as a Mermaid ``flowchart`` (GitHub renders it inside Markdown)."""
    ids: dict[str, str] = {}

    def mid(name: str) -> str:
        if name not in ids:
            base = re.sub(r"[^A-Za-z0-9_]", "_", name) or "n"
            ids[name] = base if base not in ids.values() else f"{base}_{len(ids)}"
        return ids[name]

    out = ["flowchart TB"]

    def cluster(c: _Cluster, indent: str) -> None:
        for name in c.nodes:
            box = p.boxes[name]
            left, right = _MERMAID_SHAPE.get(box.kind, ('["', '"]'))
            label = "<br/>".join(line.replace('"', "#quot;") for line in box.lines)
            out.append(f"{indent}{mid(box.id)}{left}{label}{right}")
        for child in c.children.values():
            out.append(f'{indent}subgraph {mid("cluster_" + child.key)} ["{child.label}"]')
            cluster(child, indent + "  ")
            out.append(f"{indent}end")

    cluster(p.root, "  ")
    for source, target, label, dashed in p.edges:
        arrow = "-.->" if dashed else "-->"
        out.append(f"  {mid(source)} {arrow}{f'|{label}|' if label else ''} {mid(target)}")
    for box in p.boxes.values():
        if box.kind == "output":
            out.append(f"  style {mid(box.id)} stroke-width:3px,fill:#f8cecc")
        elif box.kind == "shared":
            out.append(f"  style {mid(box.id)} stroke-dasharray: 5 5")
    return "\n".join(out) + "\n"


def drawing(graph: Graph, analysis: Analysis, suffix: str, *, expand: bool = False) -> Any:
    """The text of a drawing in the language of ``suffix`` (``.dot``; ``.mmd``; ``.svg``/``.png`` get DOT)."""
    p = picture(graph, analysis, expand=expand)
    return to_mermaid(p) if suffix == ".mmd" else to_dot(p)
