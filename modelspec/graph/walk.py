"""One traversal of a graph, with different work per node.

The compiler walks it with Keras tensors, static analysis with shapes, as
Keras runs a functional model through ``_run_through_graph(operation_fn=...)``:
:func:`walk` visits the inputs, then every node in order with the values of
what it is called on, resolving ``name[i]`` and checking that the i-th output
exists.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from ..errors import Origin, SpecError
from .model import Graph, Input, Node, Ref, Refs

T = TypeVar("T")


def several(value: Any) -> Sequence | Mapping | None:
    """The outputs of a layer that returns several (a list or tuple of tensors, or a dict), else None."""
    return value if isinstance(value, (list, tuple, dict)) else None


def _has_position(outputs: Any, index: int) -> bool:
    """Whether ``outputs`` (a sequence, or a stand-in for unknown ones) has an output at ``index``."""
    if outputs is None or isinstance(outputs, Mapping):
        return False
    return not isinstance(outputs, Sequence) or -len(outputs) <= index < len(outputs)


def _outputs(name: str, outputs: Any) -> str:
    """What node ``name`` gives, for a message."""
    if isinstance(outputs, Mapping):
        return f"node '{name}' gives a dict of outputs ({', '.join(map(str, outputs))})"
    if isinstance(outputs, Sequence):
        return f"node '{name}' has {len(outputs)} outputs"
    return f"node '{name}' has one output"


def _by_key(ref: Ref, outputs: Any, at: Origin) -> Any:
    """The output of a dict output picked by key: ``encoder[sparse]``."""
    if isinstance(outputs, Mapping):
        if ref.index in outputs:
            return outputs[ref.index]
        raise SpecError(
            [
                at.problem(
                    "bad-output-index",
                    f"'{ref}': node '{ref.name}' gives no output '{ref.index}'",
                    f"its keys: {', '.join(map(str, outputs))}",
                )
            ]
        )
    if outputs is None or isinstance(outputs, Sequence):
        hint = (
            f"index it by position, from 0 to {len(outputs) - 1}"
            if outputs is not None
            else f"write '{ref.name}' without a key"
        )
        what = _outputs(ref.name, outputs).replace(f"node '{ref.name}' has", "it has")
        raise SpecError(
            [at.problem("bad-output-index", f"'{ref}': node '{ref.name}' does not give a dict: {what}", hint)]
        )
    return outputs[ref.index]  # outputs not known statically: any key stands for them


def walk(
    graph: Graph,
    on_input: Callable[[Input], T],
    on_node: Callable[[Node, Any], T],
    *,
    outputs_of: Callable[[Any], Sequence | Mapping | None] = several,
) -> tuple[dict[str, T], Any]:
    """Compute a value for every input and node, then the model's outputs.

    Args:
        graph: A graph without errors.
        on_input: The value of an input.
        on_node: The value of a node, given the values it is called on, in
            the structure of its ``inputs`` (one value, a list, or call
            argument -> value); None for the first layer of an unbuilt stack.
        outputs_of: The several outputs held by a value (a sequence, or a
            mapping for a dict), or None when it is one output; ``name[i]``
            picks from a sequence, ``name[key]`` from a mapping.

    Returns:
        Name -> value for every input and node, and the outputs in the
        structure of ``graph.outputs``.

    Raises:
        SpecError: A ``name[i]`` picks an output that does not exist, or
            indexes a node with one output; located at the reference.
    """
    values: dict[str, T] = {name: on_input(i) for name, i in graph.inputs.items()}
    for node in graph.nodes:
        args = resolve(node.inputs, values, node.origin.at("inputs"), outputs_of)
        values[node.name] = on_node(node, args)
    return values, resolve(graph.outputs, values, graph.origin.at("outputs"), outputs_of)


def resolve(
    refs: Refs | None,
    values: dict[str, Any],
    at: Origin,
    outputs_of: Callable[[Any], Sequence | Mapping | None] = several,
) -> Any:
    """The values ``refs`` name, in their structure."""
    if isinstance(refs, Ref):
        value = values[refs.name]
        if refs.index is None:
            return value
        outputs = outputs_of(value)
        if isinstance(refs.index, str):
            return _by_key(refs, outputs, at)
        if isinstance(outputs, Mapping) or not _has_position(outputs, refs.index):
            has = _outputs(refs.name, outputs)
            hint = (
                f"index it from 0 to {len(outputs) - 1}"
                if isinstance(outputs, Sequence)
                else f"pick an output by key: {refs.name}[{next(iter(outputs))}]"
                if isinstance(outputs, Mapping) and outputs
                else f"write '{refs.name}' without an index"
            )
            raise SpecError([at.problem("bad-output-index", f"'{refs}': {has}", hint)])
        return outputs[refs.index]  # type: ignore[index]
    if isinstance(refs, dict):
        return {k: resolve(v, values, at.at(k), outputs_of) for k, v in refs.items()}
    if isinstance(refs, list):
        return [resolve(v, values, at.at(i), outputs_of) for i, v in enumerate(refs)]
    return None
