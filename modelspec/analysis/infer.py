"""Static analysis of a checked graph: each node's output shape and parameter counts, without Keras.

The graph is walked once (:func:`modelspec.graph.walk`) with shapes as the
values: inputs get their declared shape behind a free batch axis, and every
node the rule of its layer type (:mod:`modelspec.analysis.shapes`). A node
whose type has no rule, or that is called on something unknown, is "shape
unknown" and so is everything downstream: no false errors, only fewer checks.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .. import catalog
from ..errors import Problem, SpecError
from ..graph import Graph, Input, Node, walk
from .shapes import Inferred, ShapeError, has_op_rule, has_rule, infer, infer_op

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

_DTYPE_BYTES = {"float16": 2, "bfloat16": 2, "float64": 8, "mixed_float16": 4, "mixed_bfloat16": 4}


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


def analyze(graph: Graph) -> Analysis:
    """Infer every node's output shape and parameters; shape errors become located problems."""
    nodes: dict[str, NodeInfo] = {}
    problems: list[Problem] = []

    def on_input(spec: Input) -> Shape:
        return (spec.batch_size, *spec.shape)

    def on_node(node: Node, args: Any) -> Any:
        info = _node(graph, node, args, problems)
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


def _node(graph: Graph, node: Node, args: Any, problems: list[Problem]) -> NodeInfo:
    owner = graph.node(node.share) if node.share else node
    type_name = owner.type or ""
    if args is None or _has_unknown(args):
        return NodeInfo(
            UNKNOWN, reason="called on a shape that is not known" if args is not None else "no input"
        )
    if node.op is not None:
        return _operation(node, args, problems)
    if not has_rule(type_name):
        return NodeInfo(UNKNOWN, reason=f"no shape rule for {type_name}")
    try:
        found: Inferred = infer(type_name, owner.args, args, node.call)
    except ShapeError as e:
        at = node.origin.at(e.argument) if e.argument and e.argument in node.args else node.origin
        problems.append(at.problem("shape-mismatch", e.message, e.hint, key=at is node.origin))
        return NodeInfo(UNKNOWN, reason="shape error")
    except (KeyError, TypeError, ValueError, IndexError, ArithmeticError) as e:  # a case a rule does not read
        return NodeInfo(UNKNOWN, reason=f"not inferred ({type(e).__name__})")
    shape = list(found.output) if _several(found.output) else found.output
    if node.share:  # the weights belong to the node that owns the layer
        return NodeInfo(shape)
    dtype = owner.args.get("dtype")
    return NodeInfo(shape, found.trainable, found.non_trainable, _DTYPE_BYTES.get(str(dtype), 4))


def _operation(node: Node, args: Any, problems: list[Problem]) -> NodeInfo:
    info = catalog.op(node.op or "")
    if info is None or not has_op_rule(info.name):
        return NodeInfo(UNKNOWN, reason=f"no shape rule for keras.ops.{node.op}")
    try:
        return NodeInfo(infer_op(info.name, args, node.args, info.tensors))
    except ShapeError as e:
        at = node.origin.at(e.argument) if e.argument and e.argument in node.args else node.origin
        problems.append(at.problem("shape-mismatch", e.message, e.hint, key=at is node.origin))
        return NodeInfo(UNKNOWN, reason="shape error")
    except (KeyError, TypeError, ValueError, IndexError, ArithmeticError) as e:
        return NodeInfo(UNKNOWN, reason=f"not inferred ({type(e).__name__})")


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


def format_bytes(n: int) -> str:
    """A size as people read it: ``1.2 MB``, ``372 GB`` (decimal units, as Keras's summary)."""
    size = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} B"


def available_memory() -> int | None:
    """The memory this machine can give a new allocation now, in bytes (None when it cannot be told)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def memory_problems(
    graph: Graph,
    analysis: Analysis,
    *,
    max_params: int | None = None,
    available: int | None = None,
    factor: int = 1,
    share: float = 1.0,
) -> list[Problem]:
    """Refuse a model whose weights cannot fit, before Keras allocates them.

    Args:
        graph: The graph analysed.
        analysis: Its analysis.
        max_params: A limit on the parameter count (``--max-params``), or None.
        available: The memory available, in bytes (None: unknown, not checked).
        factor: How many copies of the weights the work needs (training keeps
            gradients and optimizer slots too).
        share: The part of the available memory the weights may take (a
            warning past a quarter, an error past all of it).

    Returns:
        One located error (at the largest layer) when the model is over a limit.
    """
    params, need = analysis.trainable + analysis.non_trainable, analysis.weight_bytes * factor
    if params == 0:
        return []
    reasons = []
    if max_params is not None and params > max_params:
        reasons.append(f"{params:,} parameters, over the limit of {max_params:,}")
    if available is not None and need > available * share:
        what = "its weights" if factor == 1 else f"its weights ({factor} copies for training)"
        part = "" if share == 1.0 else f"more than {share:.0%} of "
        reasons.append(
            f"{what} need {format_bytes(need)}, {part}the {format_bytes(available)} this machine has free"
        )
    if not reasons:
        return []
    largest = analysis.largest()
    name, _ = largest[0]
    listed = ", ".join(
        f"{graph.node(n).label} ({graph.node(n).type}, {info.params:,} parameters, {format_bytes(info.weight_bytes)})"
        for n, info in largest
        if info.params
    )
    return [
        graph.node(name).origin.problem(
            "too-large",
            f"the model is {'too large to build' if share == 1.0 else 'very large'}: {'; '.join(reasons)}",
            f"the largest layers: {listed}",
        )
    ]
