"""Warnings: specs that are legal but very likely not what their author meant.

Run by :func:`modelspec._spec.to_spec` on a spec without errors. Each check
is cheap (one pass over the entries, no Keras) and reports a located
``warning`` problem; a warning never fails a command.

The checks:

* an activation layer straight after a softmax (the probabilities are
  squashed again);
* a dropout or noise layer as a model output (at training time the outputs,
  and so the loss, are randomly perturbed);
* a softmax or sigmoid output trained with a loss told ``from_logits: true``
  (the loss applies the activation a second time).
"""

from __future__ import annotations

from typing import Any

from ._errors import Path, Problem, sort_problems
from ._spec import LayerSpec, ModelSpec, split_reference

_ACTIVATION_LAYERS = frozenset({"Activation", "Softmax", "ReLU", "LeakyReLU", "ELU", "PReLU"})
"""Layers whose only effect is an element-wise activation."""
_NOISE_LAYERS = frozenset({
    "Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D",
    "AlphaDropout", "GaussianDropout", "GaussianNoise",
})  # fmt: skip
"""Layers that perturb their input at training time only."""
_PROBABILITY_ACTIVATIONS = frozenset({"softmax", "sigmoid", "log_softmax"})


def lint(spec: ModelSpec) -> list[Problem]:
    """Every warning about ``spec`` (a spec that has passed the error checks)."""
    nodes = _nodes(spec)
    if not nodes:
        return []
    problems: list[Problem] = []
    by_name = {name: (path, entry) for name, path, entry, _ in nodes}
    for _name, path, entry, above in nodes:
        if above is None or above not in by_name or entry.share is not None:
            continue
        above_path, above_entry = by_name[above]
        what = _activation(entry)
        if entry.type in _ACTIVATION_LAYERS and what != "linear" and _activation(above_entry) == "softmax":
            what = what or entry.type
            line = spec.problem(above_path, "").line
            problems.append(
                spec.problem(
                    (*path, "type"),
                    f"this {entry.type} layer applies {what!r} to the output of {_node(above, above_path)}, "
                    f"which is already a softmax (line {line})",
                    "probabilities need no second activation: remove one of the two",
                    severity="warning",
                )
            )
    outputs = _outputs(spec, nodes)
    for name in outputs:
        path, entry = by_name[name]
        if entry.type in _NOISE_LAYERS:
            problems.append(
                spec.problem(
                    (*path, "type"),
                    f"the model output {_node(name, path)} is a {entry.type} layer: at training time "
                    "it perturbs the outputs, and so the loss",
                    f"put {entry.type} before the last layer with weights, not after it",
                    severity="warning",
                )
            )
    problems += _double_activation(spec, outputs, by_name)
    return sort_problems(problems)


def _nodes(spec: ModelSpec) -> list[tuple[str, Path, LayerSpec, str | None]]:
    """(name, path, entry, the node it takes as its one input, if it takes exactly one)."""
    nodes: list[tuple[str, Path, LayerSpec, str | None]] = []
    above: str | None = None
    if isinstance(spec.layers, list):
        for i, entry in enumerate(spec.layers):
            name = entry.name or f"#{i}"
            nodes.append((name, ("layers", i), entry, above))
            above = name
        return nodes
    for name, entry in spec.layers.items():
        single = above
        if isinstance(entry.inputs, str):
            ref, index = split_reference(entry.inputs)
            single = ref if index is None else None
        elif entry.inputs is not None:
            single = None
        nodes.append((name, ("layers", name), entry, single))
        above = name
    return nodes


def _outputs(spec: ModelSpec, nodes: list) -> list[str]:
    """The names of the nodes whose (whole) output is a model output."""
    if isinstance(spec.layers, list) or spec.outputs is None:
        return [nodes[-1][0]]
    raw: Any = spec.outputs
    refs = [raw] if isinstance(raw, str) else list(raw.values()) if isinstance(raw, dict) else list(raw)
    names = []
    for ref in refs:
        name, index = split_reference(ref)
        if index is None and name not in names and name in spec.layers:
            names.append(name)
    return names


def _output_keys(spec: ModelSpec, outputs: list[str]) -> dict[str, str]:
    """Output key (as per-output compile mappings write it) -> node name."""
    raw = spec.outputs
    if isinstance(raw, dict):
        return {key: split_reference(ref)[0] for key, ref in raw.items()}
    return {name: name for name in outputs}


def _double_activation(spec: ModelSpec, outputs: list[str], by_name: dict) -> list[Problem]:
    """A probability output trained with a loss that expects logits."""
    loss = spec.compile.loss if spec.compile is not None else None
    if loss is None:
        return []
    if isinstance(loss, dict) and "type" not in loss:
        keys = _output_keys(spec, outputs)
        pairs = [(keys.get(k), value, ("compile", "loss", k)) for k, value in loss.items()]
    elif len(outputs) == 1 and not isinstance(loss, list):
        pairs = [(outputs[0], loss, ("compile", "loss"))]
    else:
        return []
    problems = []
    for name, value, path in pairs:
        if name not in by_name or not isinstance(value, dict) or value.get("from_logits") is not True:
            continue
        node_path, entry = by_name[name]
        activation = _activation(entry)
        if activation in _PROBABILITY_ACTIVATIONS:
            problems.append(
                spec.problem(
                    (*path, "from_logits"),
                    f"the loss takes logits (from_logits: true), but the output {_node(name, node_path)} "
                    f"applies {activation!r} (line {spec.problem(node_path, '').line})",
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


def _node(name: str, path: Path) -> str:
    """How a node is named in a message: its name, or its place in a list."""
    return f"'{name}'" if not name.startswith("#") else f"layers[{path[-1]}]"
