"""Warnings: specs that are legal but very likely not what their author meant.

Run on a graph without errors, so that "the node above" and "the outputs"
mean exactly what the compiler will make of them. Each check is a function
registered with :func:`check`: cheap (one pass over the nodes, no Keras), it
returns located ``warning`` problems; a warning never fails a command.

The checks:

* an activation layer straight after a softmax (the probabilities are
  squashed again);
* a dropout or noise layer as a model output (at training time the outputs,
  and so the loss, are randomly perturbed);
* a softmax or sigmoid output trained with a loss told ``from_logits: true``
  (the loss applies the activation a second time);
* the opposite: a ``Dense`` output without activation (logits) trained with a
  cross-entropy loss not told ``from_logits: true`` (the loss reads the
  logits as probabilities).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ..errors import Problem, sort_problems
from ..spec import per_output
from .model import Graph, Node, Ref

Check = Callable[[Graph], Iterable[Problem]]
CHECKS: list[Check] = []
"""The registered checks, in the order they run."""


def check(fn: Check) -> Check:
    """Register a lint check: a function from a graph to its warnings."""
    CHECKS.append(fn)
    return fn


_ACTIVATION_LAYERS = frozenset({"Activation", "Softmax", "ReLU", "LeakyReLU", "ELU", "PReLU"})
"""Layers whose only effect is an element-wise activation."""
_NOISE_LAYERS = frozenset({
    "Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D",
    "AlphaDropout", "GaussianDropout", "GaussianNoise",
})  # fmt: skip
"""Layers that perturb their input at training time only."""
_PROBABILITY_ACTIVATIONS = frozenset({"softmax", "sigmoid", "log_softmax"})


def lint(graph: Graph) -> list[Problem]:
    """Every warning about the model ``graph`` describes (a graph without errors)."""
    return sort_problems(p for fn in CHECKS for p in fn(graph))


@check
def _activation_after_softmax(graph: Graph) -> list[Problem]:
    problems = []
    for node, above in _single_inputs(graph):
        what = _activation(node)
        if node.type in _ACTIVATION_LAYERS and what != "linear" and _activation(above) == "softmax":
            what = what or node.type
            problems.append(
                node.origin.at("type").problem(
                    "double-activation",
                    f"this {node.type} layer applies {what!r} to the output of {above.label}, "
                    f"which is already a softmax (line {above.origin.line})",
                    "probabilities need no second activation: remove one of the two",
                    severity="warning",
                )
            )
    return problems


@check
def _noise_output(graph: Graph) -> list[Problem]:
    problems = []
    for node in _outputs(graph).values():
        if node.type in _NOISE_LAYERS:
            problems.append(
                node.origin.at("type").problem(
                    "noise-output",
                    f"the model output {node.label} is a {node.type} layer: at training time "
                    "it perturbs the outputs, and so the loss",
                    f"put {node.type} before the last layer with weights, not after it",
                    severity="warning",
                )
            )
    return problems


def _single_inputs(graph: Graph) -> list[tuple[Node, Node]]:
    """(node, the node it is called on) for every non-shared node called on exactly one other node."""
    pairs = []
    for node in graph.nodes:
        if node.share is not None:
            continue
        above = None
        if (
            isinstance(node.inputs, Ref)
            and node.inputs.index is None
            and node.inputs.name not in graph.inputs
        ):
            above = graph.node(node.inputs.name)
        if above is not None and above.share is None:
            pairs.append((node, above))
    return pairs


def _outputs(graph: Graph) -> dict[str, Node]:
    """Output key (as per-output compile mappings write it) -> the node whose whole output it is."""
    refs = graph.outputs
    keyed = (
        refs.items()
        if isinstance(refs, dict)
        else ((r.name, r) for r in ([refs] if isinstance(refs, Ref) else refs))
    )
    return {key: graph.node(ref.name) for key, ref in keyed if isinstance(ref, Ref) and ref.index is None}


def _losses(graph: Graph) -> list[tuple[Node, Any, Any]]:
    """(output node, its loss as written, where the loss is written) for each output whose loss is plain to see."""
    outputs = _outputs(graph)
    loss = graph.compile.get("loss") if graph.compile is not None else None
    at = graph.origin.at("compile", "loss")
    if loss is None:
        return []
    if per_output(loss):
        pairs = [(outputs.get(k), value, at.at(k)) for k, value in loss.items()]
    elif len(outputs) == 1 and not isinstance(loss, list):
        pairs = [(next(iter(outputs.values())), loss, at)]
    else:
        return []
    return [(node, value, place) for node, value, place in pairs if node is not None]


_PROBABILITY_LOSSES = frozenset({
    "categoricalcrossentropy", "sparsecategoricalcrossentropy", "binarycrossentropy",
    "categoricalfocalcrossentropy", "binaryfocalcrossentropy",
})  # fmt: skip
"""Cross-entropy losses, spelled without case and underscores, that read probabilities unless told ``from_logits``."""


@check
def _logits_without_from_logits(graph: Graph) -> list[Problem]:
    """A Dense output without activation (logits) trained with a cross-entropy that expects probabilities."""
    problems = []
    for node, value, place in _losses(graph):
        name = value if isinstance(value, str) else value.get("type") if isinstance(value, dict) else None
        if not isinstance(name, str) or name.replace("_", "").lower() not in _PROBABILITY_LOSSES:
            continue
        if node.type != "Dense" or node.args.get("activation") not in (None, "linear"):
            continue
        if isinstance(value, dict) and value.get("from_logits") is True:
            continue
        problems.append(
            place.problem(
                "logits-missing",
                f"the output {node.label} has no activation, so it gives logits (line {node.origin.line}), "
                f"but the loss {name!r} reads probabilities: it is not told from_logits: true",
                f"write the loss as {{type: {_class_name(name)}, from_logits: true}}, or give the output an "
                "activation (softmax, or sigmoid for binary_crossentropy)",
                severity="warning",
            )
        )
    return problems


def _class_name(loss: str) -> str:
    """``sparse_categorical_crossentropy`` -> ``SparseCategoricalCrossentropy``."""
    return "".join(part[:1].upper() + part[1:] for part in loss.split("_")) if "_" in loss else loss


@check
def _double_activation(graph: Graph) -> list[Problem]:
    """A probability output trained with a loss that expects logits."""
    problems = []
    for node, value, place in _losses(graph):
        if not isinstance(value, dict) or value.get("from_logits") is not True:
            continue
        activation = _activation(node)
        if activation in _PROBABILITY_ACTIVATIONS:
            problems.append(
                place.at("from_logits").problem(
                    "logits-mismatch",
                    f"the loss takes logits (from_logits: true), but the output {node.label} "
                    f"applies {activation!r} (line {node.origin.line})",
                    f"remove the output's {activation!r} activation, or set from_logits: false",
                    severity="warning",
                )
            )
    return problems


def _activation(node: Node) -> str | None:
    """The activation a layer ends with, as a name, when it is plain to see."""
    if node.type == "Softmax":
        return "softmax"
    if node.type in ("ReLU", "LeakyReLU", "ELU", "PReLU"):
        return node.type.lower()
    value = node.args.get("activation")
    return value if isinstance(value, str) else None
