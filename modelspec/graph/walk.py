"""One traversal of a graph, with different work per node.

The compiler walks it with Keras tensors, static analysis with shapes, as
Keras runs a functional model through ``_run_through_graph(operation_fn=...)``:
:func:`walk` visits the inputs, then every node in order with the values of
what it is called on, resolving ``name[i]`` and checking that the i-th output
exists.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from ..errors import Origin, SpecError
from .model import Graph, Input, Node, Ref, Refs

T = TypeVar("T")


def several(value: Any) -> Sequence | None:
    """The outputs of a layer that returns several (a list or tuple of tensors), else None."""
    return value if isinstance(value, (list, tuple)) else None


def walk(
    graph: Graph,
    on_input: Callable[[Input], T],
    on_node: Callable[[Node, Any], T],
    *,
    outputs_of: Callable[[Any], Sequence | None] = several,
) -> tuple[dict[str, T], Any]:
    """Compute a value for every input and node, then the model's outputs.

    Args:
        graph: A graph without errors.
        on_input: The value of an input.
        on_node: The value of a node, given the values it is called on, in
            the structure of its ``inputs`` (one value, a list, or call
            argument -> value); None for the first layer of an unbuilt stack.
        outputs_of: The several outputs held by a value, or None when it is
            one output; ``name[i]`` picks from them.

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
    outputs_of: Callable[[Any], Sequence | None] = several,
) -> Any:
    """The values ``refs`` name, in their structure."""
    if isinstance(refs, Ref):
        value = values[refs.name]
        if refs.index is None:
            return value
        outputs = outputs_of(value)
        if outputs is None or not -len(outputs) <= refs.index < len(outputs):
            has = f"{len(outputs)} outputs" if outputs is not None else "one output"
            hint = (
                f"index it from 0 to {len(outputs) - 1}"
                if outputs is not None
                else f"write '{refs.name}' without an index"
            )
            raise SpecError([at.problem("bad-output-index", f"'{refs}': node '{refs.name}' has {has}", hint)])
        return outputs[refs.index]
    if isinstance(refs, dict):
        return {k: resolve(v, values, at.at(k), outputs_of) for k, v in refs.items()}
    if isinstance(refs, list):
        return [resolve(v, values, at.at(i), outputs_of) for i, v in enumerate(refs)]
    return None
