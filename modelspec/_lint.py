"""Warnings: specs that are legal but very likely not what their author meant.

Run by :func:`modelspec._graph.to_graph` on a graph without errors, so that
"the node above" and "the outputs" mean exactly what the compiler will make of
them. Each check is cheap (one pass over the nodes, no Keras) and reports a
located ``warning`` problem; a warning never fails a command.

The checks:

* an activation layer straight after a softmax (the probabilities are
  squashed again);
* a dropout or noise layer as a model output (at training time the outputs,
  and so the loss, are randomly perturbed);
* a softmax or sigmoid output trained with a loss told ``from_logits: true``
  (the loss applies the activation a second time).
"""

from __future__ import annotations

from ._errors import Problem, sort_problems
from ._graph import Graph, Node, Ref
from ._spec import LayerSpec

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
    spec = graph.spec
    problems: list[Problem] = []
    for node, above in _single_inputs(graph):
        entry, above_entry = node.entry, above.entry
        what = _activation(entry)
        if entry.type in _ACTIVATION_LAYERS and what != "linear" and _activation(above_entry) == "softmax":
            what = what or entry.type
            line = spec.problem(above.path, "").line
            problems.append(
                spec.problem(
                    (*node.path, "type"),
                    f"this {entry.type} layer applies {what!r} to the output of {_node(graph, above)}, "
                    f"which is already a softmax (line {line})",
                    "probabilities need no second activation: remove one of the two",
                    severity="warning",
                )
            )
    outputs = _outputs(graph)
    for node in outputs.values():
        entry = node.entry
        if entry.type in _NOISE_LAYERS:
            problems.append(
                spec.problem(
                    (*node.path, "type"),
                    f"the model output {_node(graph, node)} is a {entry.type} layer: at training time "
                    "it perturbs the outputs, and so the loss",
                    f"put {entry.type} before the last layer with weights, not after it",
                    severity="warning",
                )
            )
    problems += _double_activation(graph, outputs)
    return sort_problems(problems)


def _single_inputs(graph: Graph) -> list[tuple[Node, Node]]:
    """(node, the node it is called on) for every non-shared node called on exactly one other node."""
    pairs = []
    for i, node in enumerate(graph.nodes):
        if node.share is not None:
            continue
        if graph.sequential:
            above = graph.nodes[i - 1] if i else None
        elif (
            isinstance(node.inputs, Ref)
            and node.inputs.index is None
            and node.inputs.name not in graph.inputs
        ):
            above = graph.node(node.inputs.name)
        else:
            above = None
        if above is not None and above.share is None:
            pairs.append((node, above))
    return pairs


def _outputs(graph: Graph) -> dict[str, Node]:
    """Output key (as per-output compile mappings write it) -> the node whose whole output it is."""
    if graph.sequential or graph.outputs is None:
        last = graph.nodes[-1]
        return {last.name: last}
    refs = graph.outputs
    keyed = (
        refs.items()
        if isinstance(refs, dict)
        else ((r.name, r) for r in ([refs] if isinstance(refs, Ref) else refs))
    )
    return {key: graph.node(ref.name) for key, ref in keyed if isinstance(ref, Ref) and ref.index is None}


def _double_activation(graph: Graph, outputs: dict[str, Node]) -> list[Problem]:
    """A probability output trained with a loss that expects logits."""
    spec = graph.spec
    loss = spec.compile.loss if spec.compile is not None else None
    if loss is None:
        return []
    if isinstance(loss, dict) and "type" not in loss:
        pairs = [(outputs.get(k), value, ("compile", "loss", k)) for k, value in loss.items()]
    elif len(outputs) == 1 and not isinstance(loss, list):
        pairs = [(next(iter(outputs.values())), loss, ("compile", "loss"))]
    else:
        return []
    problems = []
    for node, value, path in pairs:
        if node is None or not isinstance(value, dict) or value.get("from_logits") is not True:
            continue
        activation = _activation(node.entry)
        if activation in _PROBABILITY_ACTIVATIONS:
            problems.append(
                spec.problem(
                    (*path, "from_logits"),
                    f"the loss takes logits (from_logits: true), but the output {_node(graph, node)} "
                    f"applies {activation!r} (line {spec.problem(node.path, '').line})",
                    f"remove the output's {activation!r} activation, or set from_logits: false",
                    severity="warning",
                )
            )
    return problems


def _activation(entry: LayerSpec) -> str | None:
    """The activation a layer ends with, as a name, when it is plain to see."""
    if entry.type == "Softmax":
        return "softmax"
    if entry.type in ("ReLU", "LeakyReLU", "ELU", "PReLU"):
        return entry.type.lower()
    value = entry.args.get("activation")
    return value if isinstance(value, str) else None


def _node(graph: Graph, node: Node) -> str:
    """How a node is named in a message: its name, or its place in a list when it has none."""
    unnamed = graph.sequential and node.entry.name is None
    return f"layers[{node.path[-1]}]" if unnamed else f"'{node.name}'"
