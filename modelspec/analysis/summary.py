"""The static summary: every node's type, output shape, parameters and inputs, and the totals.

What ``model.summary()`` shows, worked out from the spec alone (no Keras), so
it answers in milliseconds, before any weight is allocated.
"""

from __future__ import annotations

from typing import Any

from ..graph import Graph, Node, flatten
from .infer import UNKNOWN, Analysis, format_shape
from .memory import format_bytes


def summary_text(graph: Graph, analysis: Analysis, spec: Any = None) -> str:
    """The summary table as text.

    Args:
        graph: The checked graph.
        analysis: Its analysis.
        spec: The expanded spec, when known: what ``train`` adds to the model is said under the totals.

    Each layer is named as in the Keras model (``model.summary()``, ``model.get_layer``):
    its own name, or for an unnamed entry of a list the name Keras gives it (``dense``, ``dense_1``).
    """
    names = graph.keras_names()
    rows = [("layer", "type", "output shape", "params", "called on")]
    for name, _spec in graph.inputs.items():
        rows.append((name, "Input", format_shape(analysis.inputs[name]), "0", ""))
    for node in graph.nodes:
        info = analysis.nodes[node.name]
        params = f"{info.params:,}" if info.shape is not UNKNOWN or info.params else "?"
        shown = names.get(node.share or node.name) or node.keras_name or node.name
        rows.append((shown, _type(node), format_shape(info.shape), params, _called_on(node, names)))
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
    lines += _training_note(graph, analysis, spec, total)
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


def _training_note(graph: Graph, analysis: Analysis, spec: Any, total: int) -> list[str]:
    """Why ``train`` reports more parameters: the Normalization layer it puts before the model."""
    train = getattr(spec, "train", None)
    if train is None or not train.normalize or not graph.inputs:
        return []
    features = next(iter(analysis.inputs.values()))[-1]
    if features is None:
        return [
            "train.normalize: train adds a Normalization layer before the first layer (its mean and variance)"
        ]
    added = 2 * features + 1  # a mean and a variance per feature, and the count of samples adapted on
    return [
        f"train.normalize: train adds a Normalization layer before the first layer, "
        f"{added:,} non-trainable parameters (a mean and a variance for each of the {features} features, "
        f"and a count): {total + added:,} in the trained model"
    ]


def _called_on(node: Node, names: dict[str, str]) -> str:
    def ref(r: Any) -> str:
        shown = names.get(r.name, r.name)
        return shown if r.index is None else f"{shown}[{r.index}]"

    if isinstance(node.inputs, dict):
        return ", ".join(f"{k}={', '.join(ref(r) for r in flatten(v))}" for k, v in node.inputs.items())
    return ", ".join(ref(r) for r in flatten(node.inputs))


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."
