"""The graph's own types: inputs, nodes and references, with no pydantic in them.

A :class:`Graph` is what every later stage reads (the compiler, static
analysis, drawings, training): resolved references, nodes in an order where
each follows what it is called on, and an :class:`~modelspec.errors.Origin`
on every input and node for locating problems.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any, Literal, Union

from ..errors import Origin, Problem


@dataclass(frozen=True)
class Ref:
    """A reference to an input or a node's output (``index`` picks one of a list, or a key of a dict)."""

    name: str
    index: int | str | None = None

    def __str__(self) -> str:
        return self.name if self.index is None else f"{self.name}[{self.index}]"


Refs = Union[Ref, list[Ref], dict[str, Union[Ref, list[Ref]]]]
"""What a node is called on: one reference, a list (the layer gets a list), or call argument -> reference(s)."""


@dataclass
class Input:
    """One model input (``keras.Input``)."""

    name: str
    shape: tuple[int | None, ...]
    dtype: str
    batch_size: int | None
    sparse: bool
    origin: Origin


@dataclass
class Node:
    """One layer node.

    Attributes:
        name: The node name, unique among inputs and nodes (an unnamed list
            entry gets ``Type#index``).
        type: The layer type; None for a node that shares another's layer, or an operation.
        args: The constructor arguments.
        inputs: What the layer is called on; None only for the first layer of
            a stack that declares no input (an unbuilt ``keras.Sequential``).
        call: Constant call arguments.
        share: The node whose layer object this node calls, when shared.
        origin: Where the entry is.
        keras_name: The name the Keras layer gets; None lets Keras pick one.
        label: How messages name the node (``'dense'``, or ``layers[2]`` when unnamed).
        op: The ``keras.ops`` function an operation node calls, else None.
    """

    name: str
    type: str | None
    args: dict[str, Any]
    inputs: Refs | None
    call: dict[str, Any]
    share: str | None
    origin: Origin
    keras_name: str | None
    label: str
    op: str | None = None

    def refs(self) -> list[Ref]:
        """Every reference this node is called on."""
        return flatten(self.inputs)


@dataclass
class Graph:
    """A checked model graph.

    Attributes:
        name: The Keras model name (the spec's ``name``, else its file's stem), or None.
        seed: The seed of the initial weights, or None.
        inputs: Input name -> input, in the spec's order.
        nodes: Every node, each after the nodes it is called on.
        outputs: The model's outputs: a reference (one output), a list, or
            output name -> reference (dict outputs).
        model_class: ``"Sequential"`` for a list of layers, ``"Functional"`` for a DAG.
        compile: The ``compile`` arguments as plain data, or None.
        origin: Where the spec is (for problems about compile and outputs).
        warnings: The lint warnings, once the graph is known to have no errors.
    """

    name: str | None
    seed: int | None
    inputs: dict[str, Input]
    nodes: list[Node]
    outputs: Refs | None
    model_class: Literal["Sequential", "Functional"]
    compile: dict[str, Any] | None
    origin: Origin
    warnings: list[Problem] = field(default_factory=list)

    def node(self, name: str) -> Node:
        """The node called ``name``."""
        return self._by_name[name]

    @functools.cached_property
    def _by_name(self) -> dict[str, Node]:
        return {n.name: n for n in self.nodes}

    def keras_names(self) -> dict[str, str]:
        """Node name -> the name of its Keras layer, for every node that makes a layer.

        A named node keeps its name. An unnamed entry of a list gets the name
        Keras would give it in a fresh process (``dense``, ``dense_1``, ... after
        its type), skipping every name the spec gives, so that a user's
        ``dense_1`` next to unnamed ``Dense`` layers never collides with Keras's
        automatic names (which also depend on what the process built before).
        """
        taken = set(self.inputs) | {n.keras_name for n in self.nodes if n.keras_name is not None}
        counters: dict[str, int] = {}
        names: dict[str, str] = {}
        for node in self.nodes:
            if node.keras_name is not None:
                names[node.name] = node.keras_name
                continue
            if node.type is None:
                continue
            base = snake_case(node.type)
            while True:
                n = counters.get(base, 0)
                counters[base] = n + 1
                name = base if n == 0 else f"{base}_{n}"
                if name not in taken:
                    break
            taken.add(name)
            names[node.name] = name
        return names

    def output_names(self) -> list[str]:
        """The names Keras gives the outputs (the keys of per-output compile mappings and targets)."""
        if isinstance(self.outputs, dict):
            return list(self.outputs)
        return [r.name for r in flatten(self.outputs)]

    def output_structure(self) -> Literal["single", "list", "dict"]:
        """How the model gives its outputs: one tensor, a list, or a dict."""
        if isinstance(self.outputs, dict):
            return "dict"
        return "list" if isinstance(self.outputs, list) else "single"


def flatten(refs: Any) -> list[Ref]:
    """Every :class:`Ref` in a structure of references, in order."""
    if refs is None:
        return []
    if isinstance(refs, Ref):
        return [refs]
    if isinstance(refs, dict):
        return [r for v in refs.values() for r in flatten(v)]
    return [r for v in refs for r in flatten(v)]


def snake_case(name: str) -> str:
    """Keras's rule for names made from class names: ``BatchNormalization`` -> ``batch_normalization``.

    As ``keras.src.utils.naming.to_snake_case``. The one copy: the graph names
    unnamed layers as Keras would, and export reads an operation class as its
    ``keras.ops`` function (``HardSilu`` -> ``hard_silu``) and names entries after their type.
    """
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()
