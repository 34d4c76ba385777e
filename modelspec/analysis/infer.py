"""Static analysis of a checked graph: each node's output shape and parameter counts, without Keras.

The graph is walked once (:func:`modelspec.graph.walk`) with shapes as the
values: inputs get their declared shape behind a free batch axis, and every
node the rule of its layer type (:mod:`modelspec.analysis.shapes`). A node
whose type has no rule, whose rule cannot decide from the spec
(:class:`~modelspec.analysis.shapes.NotInferable`), or that is called on
something unknown, is "shape unknown" and so is everything downstream: no
false errors, only fewer checks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .. import catalog
from ..errors import Problem, SpecError
from ..graph import Graph, Input, Node, walk
from .shapes import NotInferable, ShapeError, has_op_rule, has_rule, infer, infer_op

Shape = tuple[int | None, ...]


class _Unknown:
    """A value whose shape is not known; indexing it gives itself, so ``name[i]`` stays unknown."""

    def __repr__(self) -> str:
        return "?"

    def __len__(self) -> int:
        return 1 << 30

    def __getitem__(self, index: int) -> _Unknown:
        return self


UNKNOWN = _Unknown()
"""The shape of a node that could not be inferred."""


@dataclass(frozen=True)
class NodeInfo:
    """What analysis found for one node.

    Attributes:
        shape: The output shape (batch axis first), a list of shapes for a
            layer with several outputs, or :data:`UNKNOWN`.
        trainable: Trainable parameters (0 for a node sharing another's layer).
        non_trainable: Non-trainable parameters.
        bytes_per_weight: The size of one weight at the layer's dtype.
        reason: Why the shape is unknown ("no rule for X", "called on an unknown shape"), else None.
    """

    shape: Any
    trainable: int = 0
    non_trainable: int = 0
    bytes_per_weight: int = 4
    reason: str | None = None

    @property
    def params(self) -> int:
        return self.trainable + self.non_trainable

    @property
    def weight_bytes(self) -> int:
        return self.params * self.bytes_per_weight


@dataclass
class Analysis:
    """Shapes and parameters of a whole graph.

    Attributes:
        inputs: Input name -> shape.
        nodes: Node name -> what was found, in the graph's order.
        outputs: The model's outputs' shapes, in the structure of ``graph.outputs``.
        problems: Shape errors, located at the nodes concerned.
    """

    inputs: dict[str, Shape]
    nodes: dict[str, NodeInfo]
    outputs: Any
    problems: list[Problem] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """Whether every node's shape was inferred."""
        return all(info.shape is not UNKNOWN for info in self.nodes.values())

    @property
    def unknown(self) -> list[str]:
        """The nodes whose shape could not be inferred, in order."""
        return [name for name, info in self.nodes.items() if info.shape is UNKNOWN]

    @property
    def trainable(self) -> int:
        return sum(info.trainable for info in self.nodes.values())

    @property
    def non_trainable(self) -> int:
        return sum(info.non_trainable for info in self.nodes.values())

    @property
    def weight_bytes(self) -> int:
        return sum(info.weight_bytes for info in self.nodes.values())

    def largest(self, n: int = 3) -> list[tuple[str, NodeInfo]]:
        """The ``n`` nodes with the most parameters."""
        return sorted(self.nodes.items(), key=lambda item: -item[1].params)[:n]


def analyze(graph: Graph, *, strict_rules: bool = False) -> Analysis:
    """Infer every node's output shape and parameters; shape errors become located problems.

    Args:
        graph: A graph without errors.
        strict_rules: Let an exception other than :class:`ShapeError` and
            :class:`NotInferable` out of a shape rule propagate (the tests run
            every spec so: a rule that fails on a case is a bug to fix). Off,
            such a failure leaves the shape unknown with a reason that names
            it, so a user's build is never stopped by a fault in the analysis.

    Returns:
        Every node's shape and parameters, and the shape errors found.
    """
    nodes: dict[str, NodeInfo] = {}
    problems: list[Problem] = []

    def on_input(spec: Input) -> Shape:
        return (spec.batch_size, *spec.shape)

    def on_node(node: Node, args: Any) -> Any:
        info = _node(graph, node, args, problems, strict_rules)
        nodes[node.name] = info
        return info.shape

    def outputs_of(value: Any) -> Sequence | None:
        if value is UNKNOWN:
            return value  # type: ignore[return-value]
        return value if isinstance(value, list) else None

    inputs = {name: on_input(spec) for name, spec in graph.inputs.items()}
    try:
        _, outputs = walk(graph, on_input, on_node, outputs_of=outputs_of)
    except SpecError as e:  # a name[i] beyond a layer's outputs: a graph error found on the way
        problems += e.problems
        outputs = UNKNOWN
    return Analysis(inputs, nodes, outputs, problems)


def _node(graph: Graph, node: Node, args: Any, problems: list[Problem], strict_rules: bool) -> NodeInfo:
    owner = graph.node(node.share) if node.share else node
    type_name = owner.type or ""
    if args is None or _has_unknown(args):
        return NodeInfo(
            UNKNOWN, reason="called on a shape that is not known" if args is not None else "no input"
        )
    if node.op is not None:
        info = catalog.op(node.op)
        if info is None or not has_op_rule(info.name):
            return NodeInfo(UNKNOWN, reason=f"no shape rule for keras.ops.{node.op}")
        found = _apply(node, problems, strict_rules, infer_op, info.name, info.bind(args), node.args)
        return found if isinstance(found, NodeInfo) else NodeInfo(found)
    if not has_rule(type_name):
        return NodeInfo(UNKNOWN, reason=f"no shape rule for {type_name}")
    inferred = _apply(node, problems, strict_rules, infer, type_name, owner.args, args, node.call)
    if isinstance(inferred, NodeInfo):
        return inferred
    shape = list(inferred.output) if _several(inferred.output) else inferred.output
    if node.share:  # the weights belong to the node that owns the layer
        return NodeInfo(shape)
    return NodeInfo(
        shape, inferred.trainable, inferred.non_trainable, catalog.weight_bytes(owner.args.get("dtype"))
    )


def _apply(node: Node, problems: list[Problem], strict_rules: bool, rule: Any, *args: Any) -> Any:
    """``rule(*args)``; a :class:`NodeInfo` of an unknown shape when it cannot decide or the shapes do not fit."""
    try:
        return rule(*args)
    except ShapeError as e:
        at = node.origin.at(e.argument) if e.argument and e.argument in node.args else node.origin
        problems.append(at.problem("shape-mismatch", e.message, e.hint, key=at is node.origin))
        return NodeInfo(UNKNOWN, reason="shape error")
    except NotInferable as e:
        return NodeInfo(UNKNOWN, reason=f"not decided by the spec ({e})")
    except Exception as e:
        if strict_rules:
            raise
        return NodeInfo(UNKNOWN, reason=f"the shape rule failed ({type(e).__name__}: {e}); please report it")


def _several(output: Any) -> bool:
    return isinstance(output, tuple) and bool(output) and all(isinstance(o, tuple) for o in output)


def _has_unknown(value: Any) -> bool:
    if value is UNKNOWN:
        return True
    if isinstance(value, dict):
        return any(_has_unknown(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_unknown(v) for v in value)
    return False


def format_shape(shape: Any) -> str:
    """``(None, 32)``; several outputs joined; ``?`` when unknown."""
    if shape is UNKNOWN:
        return "?"
    if isinstance(shape, list):
        return ", ".join(format_shape(s) for s in shape)
    return (
        "("
        + ", ".join("None" if d is None else str(d) for d in shape)
        + ("," if len(shape) == 1 else "")
        + ")"
    )
