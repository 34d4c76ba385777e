"""The static summary: every node's type, output shape, parameters and inputs, and the totals.

What ``model.summary()`` shows, worked out from the spec alone (no Keras), so
it answers in milliseconds, before any weight is allocated.
"""

from __future__ import annotations

from ..graph import Graph, Node, flatten
from .infer import UNKNOWN, Analysis, format_bytes, format_shape


def summary_text(graph: Graph, analysis: Analysis) -> str:
    """The summary table as text."""
    rows = [("node", "type", "output shape", "params", "called on")]
    for name, _spec in graph.inputs.items():
        rows.append((name, "Input", format_shape(analysis.inputs[name]), "0", ""))
    for node in graph.nodes:
        info = analysis.nodes[node.name]
        params = f"{info.params:,}" if info.shape is not UNKNOWN or info.params else "?"
        rows.append((node.name, _type(node), format_shape(info.shape), params, _called_on(node)))
    widths = [min(max(len(r[i]) for r in rows), limit) for i, limit in enumerate((40, 24, 30, 14, 60))]
    lines = [f"Model: {graph.name or '(unnamed)'} ({graph.model_class.lower()}, {len(graph.nodes)} layers)"]
    for i, row in enumerate(rows):
        cells = [_clip(cell, w) for cell, w in zip(row, widths)]
        line = f"{cells[0]:<{widths[0]}}  {cells[1]:<{widths[1]}}  {cells[2]:<{widths[2]}}  "
        line += f"{cells[3]:>{widths[3]}}  {cells[4]}"
        lines.append(line.rstrip())
        if i == 0:
            lines.append("-" * len(lines[-1]))
    total = analysis.trainable + analysis.non_trainable
    unknown = analysis.unknown
    lines += [
        "",
        f"Total params: {total:,} ({format_bytes(analysis.weight_bytes)} of weights)",
        f"Trainable params: {analysis.trainable:,}",
        f"Non-trainable params: {analysis.non_trainable:,}",
    ]
    if unknown:
        lines.append(
            f"Not inferred ({len(unknown)} node{'s' * (len(unknown) != 1)}, their parameters not counted): "
            + ", ".join(unknown[:8])
            + (", ..." if len(unknown) > 8 else "")
        )
    return "\n".join(lines) + "\n"


def _type(node: Node) -> str:
    if node.op is not None:
        return f"op {node.op}"
    return f"(shares {node.share})" if node.share else str(node.type)


def _called_on(node: Node) -> str:
    if isinstance(node.inputs, dict):
        return ", ".join(f"{k}={', '.join(str(r) for r in flatten(v))}" for k, v in node.inputs.items())
    return ", ".join(str(r) for r in flatten(node.inputs))


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."
