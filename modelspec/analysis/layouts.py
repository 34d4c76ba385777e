"""The static check of a ``model_parallel`` distribution: its mesh and layouts against the model's variables.

Keras's ``LayoutMap`` gives a variable the layout whose key equals its path,
else the one key that matches the whole path as a regular expression
(``re.fullmatch``); a path two keys match is an error when the variable is
made, and a dimension its mesh axis does not divide fails inside XLA. Here
the same rules run before training, on the variables the spec's layers will
make: their paths as Keras names them (``dense_1/kernel``; inside a
``Sequential``, ``MODEL/dense_1/kernel``) and their shapes, from the static
shapes of :mod:`modelspec.analysis.infer`. A layer whose variables are not
known here only makes the check quieter: "matches no variable" is said only
when every variable is known.

This module must never import Keras.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .. import catalog
from ..errors import Origin, Problem, suggest
from ..graph import Graph, Node
from ..spec.models import DistributionSpec, ModelSpec
from .infer import UNKNOWN, Analysis

Shape = tuple[int, ...]

DEFAULT_BATCH_AXIS = "batch"
"""The mesh axis the data is split over when ``batch_axis`` is not given."""


def normalize_layer_name(taken: set[str]) -> str:
    """The name of the ``Normalization`` layer ``train.normalize`` puts in front of a model with layers ``taken``."""
    name = "normalize"
    while name in taken:
        name += "_"
    return name


@dataclass(frozen=True)
class Variable:
    """One variable of the model as Keras will make it.

    Attributes:
        path: ``variable.path``: ``dense/kernel``, ``encoder/lstm_cell/bias``.
        shape: Its shape.
        node: The node whose layer owns it.
    """

    path: str
    shape: Shape
    node: str


def model_variables(
    graph: Graph, analysis: Analysis, *, normalize: bool = False
) -> tuple[list[Variable], list[str]]:
    """The variables the model's layers make, and the nodes whose variables are not known here.

    Args:
        graph: A checked graph.
        analysis: Its static analysis.
        normalize: Whether training puts a ``Normalization`` layer in front (``train.normalize``).
    """
    names = graph.keras_names()
    prefix = f"{graph.name or 'sequential'}/" if graph.model_class == "Sequential" else ""
    found: list[Variable] = []
    unknown: list[str] = []
    if normalize and len(graph.inputs) == 1:
        shape = next(iter(analysis.inputs.values()))
        functional = graph.model_class != "Sequential"  # whose layers include its inputs
        name = normalize_layer_name(set(names.values()) | (set(graph.inputs) if functional else set()))
        if len(shape) == 2 and shape[-1] is not None:
            found += [Variable(f"{name}/{v}", (shape[-1],), name) for v in ("mean", "variance")]
            found.append(Variable(f"{name}/count", (), name))
    for node in graph.nodes:
        info = analysis.nodes.get(node.name)
        if node.op is not None or node.share or info is None:
            continue
        if info.shape is not UNKNOWN and info.params == 0:
            continue
        own = _variables_of(node, graph, analysis)
        if own is None or sum(math.prod(s) for _, s in own) != info.params:
            unknown.append(node.name)  # no rule, or one that disagrees with the parameter count
            continue
        found += [Variable(f"{prefix}{names[node.name]}/{path}", shape, node.name) for path, shape in own]
    return found, unknown


def layout_problems(spec: ModelSpec, graph: Graph, analysis: Analysis) -> list[Problem]:
    """The mistakes of the spec's ``model_parallel`` layouts, each located in ``train.distribution``.

    A mesh without the batch axis, a layout naming an axis not in the mesh (or
    one axis twice), a regular expression that does not compile or matches no
    variable, a variable two expressions match, a layout with the wrong number
    of dimensions, a dimension its axis size does not divide.
    """
    setting = spec.train.distribution if spec.train is not None else None
    if not isinstance(setting, DistributionSpec) or setting.type != "model_parallel":
        return []
    at = spec.at("train", "distribution")
    if setting.mesh is None:
        return [
            at.at("type").problem(
                "layout-axis",
                "model_parallel needs a mesh: mesh axis name -> size",
                "add mesh: {batch: 2, model: 2} (the product is the number of devices)",
            )
        ]
    mesh: dict[str, int] = setting.mesh  # type: ignore[assignment]
    problems: list[Problem] = []
    batch_axis = setting.batch_axis or DEFAULT_BATCH_AXIS
    if batch_axis not in mesh:
        where = at.at("batch_axis") if setting.batch_axis else at.at("mesh")
        problems.append(
            where.problem(
                "layout-axis",
                f"the batch axis {batch_axis!r} is not an axis of the mesh ({_axes(mesh)})",
                _did_you_mean(batch_axis, mesh) or "name the axis the data is split over in batch_axis",
                key=not setting.batch_axis,
            )
        )
    variables, unknown = model_variables(graph, analysis, normalize=bool(spec.train.normalize))  # type: ignore[union-attr]
    patterns: dict[str, re.Pattern] = {}
    for key, axes in setting.layouts.items():
        where = at.at("layouts", key)
        try:
            patterns[key] = re.compile(key)
        except re.error as e:
            problems.append(
                where.problem("layout-match", f"{key!r} is not a regular expression: {e}", key=True)
            )
        seen: set[str] = set()
        for i, axis in enumerate(axes):
            if axis is None:
                continue
            if axis not in mesh:
                problems.append(
                    where.at(i).problem(
                        "layout-axis",
                        f"{axis!r} is not an axis of the mesh ({_axes(mesh)})",
                        _did_you_mean(axis, mesh) or "use a mesh axis, or null to keep the dimension whole",
                    )
                )
            elif axis in seen:
                problems.append(
                    where.at(i).problem(
                        "layout-axis",
                        f"mesh axis {axis!r} shards two dimensions of one variable",
                        "a mesh axis can split one dimension of a variable: use null for the other",
                    )
                )
            seen.add(axis)
    problems += _matches(setting.layouts, patterns, variables, unknown, mesh, at)
    return problems


def _matches(
    layouts: dict[str, list[str | None]],
    patterns: dict[str, re.Pattern],
    variables: list[Variable],
    unknown: list[str],
    mesh: dict[str, int],
    at: Origin,
) -> list[Problem]:
    """Which layout each variable gets, as ``LayoutMap`` picks it, and whether the layout fits it."""
    problems: list[Problem] = []
    used: set[str] = set()
    said: set[tuple] = set()  # one problem per layout, kind and dimension: a regex may match hundreds

    def once(tag: tuple, problem: Callable[[], Problem]) -> None:
        if tag not in said:
            said.add(tag)
            problems.append(problem())

    for var in variables:
        if var.path in layouts:
            keys = [var.path]
        else:
            keys = [k for k, p in patterns.items() if p.fullmatch(var.path)]
        used.update(keys)
        if len(keys) > 1:
            once(
                ("twice", keys[1]),
                lambda var=var, keys=keys: at.at("layouts", keys[1]).problem(
                    "layout-match",
                    f"variable {var.path!r} is matched by {len(keys)} layouts: "
                    + ", ".join(repr(k) for k in keys),
                    "Keras refuses a variable two layouts match: make the expressions exclusive",
                    key=True,
                ),
            )
            continue
        if not keys:
            continue
        key = keys[0]
        axes = layouts[key]
        where = at.at("layouts", key)
        if len(axes) != len(var.shape):
            once(
                ("rank", key),
                lambda var=var, axes=axes, where=where: where.problem(
                    "layout-shape",
                    f"the layout has {len(axes)} entr{'y' if len(axes) == 1 else 'ies'}, but {var.path!r} has "
                    f"{len(var.shape)} dimension{'s' * (len(var.shape) != 1)} {_shape(var.shape)}",
                    "give one mesh axis (or null) per dimension",
                ),
            )
            continue
        for i, (axis, size) in enumerate(zip(axes, var.shape)):
            if axis in mesh and size % mesh[axis]:
                once(
                    ("divide", key, i),
                    lambda var=var, axis=axis, size=size, i=i, where=where: where.at(i).problem(
                        "layout-shape",
                        f"dimension {i} of {var.path!r} {_shape(var.shape)} is {size}, which mesh axis "
                        f"{axis!r} of size {mesh[axis]} does not divide",
                        "choose a mesh size that divides it, or null to keep the dimension whole",
                    ),
                )
    if not unknown:
        paths = [v.path for v in variables]
        for key in patterns:
            if key not in used:
                shown = ", ".join(paths[:6]) + (", ..." if len(paths) > 6 else "")
                problems.append(
                    at.at("layouts", key).problem(
                        "layout-match",
                        f"layout {key!r} matches no variable of the model "
                        "(it must match a whole path, as Keras's LayoutMap does)",
                        _did_you_mean(key, paths) or f"the variables: {shown or 'none'}",
                        key=True,
                    )
                )
    return problems


def _did_you_mean(word: str, candidates: Any) -> str | None:
    found = suggest(word, list(candidates))
    return f"did you mean {found!r}?" if found else None


def _axes(mesh: dict[str, int]) -> str:
    return "mesh: " + ", ".join(f"{k}={v}" for k, v in mesh.items())


def _shape(shape: Shape) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


# -- the variables of each layer type ----------------------------------------------------


_Rule = Callable[[Node, dict[str, Any], tuple], "list[tuple[str, Shape]] | None"]
_RULES: dict[str, _Rule] = {}


def _rule(*classes: str) -> Callable[[_Rule], _Rule]:
    def register(fn: _Rule) -> _Rule:
        for name in classes:
            _RULES[name] = fn
        return fn

    return register


def _variables_of(node: Node, graph: Graph, analysis: Analysis) -> list[tuple[str, Shape]] | None:
    """``(name inside the layer, shape)`` of each variable of ``node``'s layer, or None when not known."""
    info = catalog.layer(node.type or "")
    rule = _RULES.get(info.cls if info is not None else str(node.type))
    refs = node.refs()
    if rule is None or info is None or len(refs) != 1:
        return None
    ref = refs[0]
    shape = analysis.inputs.get(ref.name) if ref.name in analysis.inputs else None
    if shape is None and ref.name in analysis.nodes:
        shape = analysis.nodes[ref.name].shape
    if ref.index is not None and isinstance(shape, list) and -len(shape) <= ref.index < len(shape):
        shape = shape[ref.index]
    if not isinstance(shape, tuple):
        return None
    args = {name: arg.default for name, arg in info.args.items() if arg.default is not catalog.MISSING}
    args.update(node.args)
    try:
        found = rule(node, args, shape)
    except (TypeError, ValueError, IndexError, KeyError, ZeroDivisionError):
        return None
    if found is None or any(d is None or not isinstance(d, int) for _, s in found for d in s):
        return None
    return found


def _last(args: dict[str, Any], x: tuple) -> int:
    return x[1] if args.get("data_format") == "channels_first" else x[-1]


def _sizes(value: Any, rank: int) -> tuple[int, ...]:
    return (value,) * rank if isinstance(value, int) else tuple(value)


@_rule("Dense")
def _dense(node: Node, a: dict[str, Any], x: tuple) -> list[tuple[str, Shape]]:
    units = a["units"]
    return [("kernel", (x[-1], units))] + ([("bias", (units,))] if a.get("use_bias", True) else [])


@_rule("Embedding")
def _embedding(node: Node, a: dict[str, Any], x: tuple) -> list[tuple[str, Shape]]:
    return [("embeddings", (a["input_dim"], a["output_dim"]))]


@_rule("Conv1D", "Conv2D", "Conv3D", "Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose")
def _conv(node: Node, a: dict[str, Any], x: tuple) -> list[tuple[str, Shape]]:
    cls = catalog.layer(node.type or "").cls  # type: ignore[union-attr]
    rank, channels, filters = int(cls[4]), _last(a, x), a["filters"]
    kernel = _sizes(a["kernel_size"], rank)
    if cls.endswith("Transpose"):
        shape = (*kernel, filters, channels)
    else:
        shape = (*kernel, channels // a.get("groups", 1), filters)
    return [("kernel", shape)] + ([("bias", (filters,))] if a.get("use_bias", True) else [])


@_rule("DepthwiseConv1D", "DepthwiseConv2D", "SeparableConv1D", "SeparableConv2D")
def _depthwise(node: Node, a: dict[str, Any], x: tuple) -> list[tuple[str, Shape]]:
    cls = catalog.layer(node.type or "").cls  # type: ignore[union-attr]
    rank = 1 if "1D" in cls else 2
    channels, multiplier = _last(a, x), a.get("depth_multiplier", 1)
    separable = cls.startswith("Separable")
    # Keras names a DepthwiseConv's kernel plainly, a SeparableConv's by its part.
    found = [
        (
            "depthwise_kernel" if separable else "kernel",
            (*_sizes(a["kernel_size"], rank), channels, multiplier),
        )
    ]
    if separable:
        found.append(("pointwise_kernel", (*(1,) * rank, channels * multiplier, a["filters"])))
        out = a["filters"]
    else:
        out = channels * multiplier
    return found + ([("bias", (out,))] if a.get("use_bias", True) else [])


@_rule("BatchNormalization")
def _batch_norm(node: Node, a: dict[str, Any], x: tuple) -> list[tuple[str, Shape]]:
    size = (x[a.get("axis", -1)],)
    found = [("gamma", size)] if a.get("scale", True) else []
    found += [("beta", size)] if a.get("center", True) else []
    return [*found, ("moving_mean", size), ("moving_variance", size)]


@_rule("LayerNormalization")
def _layer_norm(node: Node, a: dict[str, Any], x: tuple) -> list[tuple[str, Shape]]:
    axis = a.get("axis", -1)
    size = tuple(x[i] for i in axis) if isinstance(axis, list) else (x[axis],)
    found = [("gamma", size)] if a.get("scale", True) or a.get("rms_scaling") else []
    return found + ([("beta", size)] if a.get("center", True) and not a.get("rms_scaling") else [])


@_rule("SimpleRNN", "LSTM", "GRU")
def _rnn(node: Node, a: dict[str, Any], x: tuple) -> list[tuple[str, Shape]]:
    cls = catalog.layer(node.type or "").cls  # type: ignore[union-attr]
    cell, gates = {"SimpleRNN": ("simple_rnn_cell", 1), "LSTM": ("lstm_cell", 4), "GRU": ("gru_cell", 3)}[cls]
    units = a["units"]
    found = [(f"{cell}/kernel", (x[-1], gates * units)), (f"{cell}/recurrent_kernel", (units, gates * units))]
    if a.get("use_bias", True):
        bias = (2, gates * units) if cls == "GRU" and a.get("reset_after", True) else (gates * units,)
        found.append((f"{cell}/bias", bias))
    return found
