"""What every shape rule shares: shapes, the error a rule raises, the registry and the helpers.

Conventions:
    * A shape is a tuple of ints and ``None`` (an axis free until run time),
      batch axis first. Arithmetic on ``None`` stays ``None``.
    * ``data_format=None`` means ``"channels_last"``, Keras's default
      ``image_data_format`` (a ``keras.json`` that changes it is not read).

This module must never import Keras or TensorFlow.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ... import catalog

Shape = tuple[int | None, ...]
"""A tensor shape including the batch axis, e.g. ``(None, 32)``; ``None`` is a free axis."""

Inputs = Shape | list[Shape] | dict[str, Any]
"""One shape, a list of shapes (a layer called on a list), or call-argument name -> shape."""


class ShapeError(Exception):
    """A layer cannot be applied to the given input shapes.

    Also raised when an argument makes the output impossible to compute (a
    missing required argument, a ``target_shape`` whose size does not match).

    Attributes:
        message: What is wrong, naming the layer type and quoting the shapes,
            e.g. ``"Add: inputs have shapes (None, 32) and (None, 64)"``.
        hint: A suggestion for fixing it, or None.
        argument: The constructor argument at fault, when one is, else None.
    """

    def __init__(self, message: str, hint: str | None = None, argument: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.argument = argument


class NotInferable(Exception):
    """A rule cannot decide the output from the spec: the shape is "unknown", and that is no error.

    Raised for a case that depends on the data (``where`` with only a
    condition), that Keras's own rule leaves open, or a layer type without a
    rule. Only this and :class:`ShapeError` mean something to inference; any
    other exception out of a rule is a bug in the rule.
    """


@dataclass(frozen=True)
class Inferred:
    """What a layer produces from its inputs.

    Attributes:
        output: The output shape, or a tuple of shapes when the layer returns
            several tensors (an RNN with ``return_state``, attention scores).
        trainable: Number of scalars in the trainable weights.
        non_trainable: Number of scalars in the non-trainable weights.
    """

    output: Shape | tuple[Shape, ...]
    trainable: int = 0
    non_trainable: int = 0


# The registry


@dataclass(frozen=True)
class Layer:
    """One layer application, as a rule sees it.

    Attributes:
        type: The type name the spec wrote (an alias stays an alias), for messages.
        cls: The Keras class name.
        args: The constructor arguments with the catalog's defaults filled in.
        inputs: One shape, a list of shapes, or call-argument name -> shape.
        call: Constant call arguments, such as ``{"return_attention_scores": True}``.
    """

    type: str
    cls: str
    args: dict[str, Any]
    inputs: Inputs
    call: dict[str, Any]

    def __getitem__(self, name: str) -> Any:
        return self.args.get(name)

    def error(self, message: str, hint: str | None = None, argument: str | None = None) -> ShapeError:
        """A :class:`ShapeError` whose message starts with the layer type."""
        return ShapeError(f"{self.type}{message}", hint, argument)

    def one(self) -> Shape:
        """The single input tensor's shape."""
        inputs = self._primary()
        if isinstance(inputs, tuple):
            return inputs
        if len(inputs) == 1 and isinstance(inputs[0], tuple):
            return inputs[0]
        raise self.error(
            f" takes one input, got {len(inputs)}: {fmt_shapes(inputs)}",
            "merge the tensors first (Concatenate, Add, ...)",
        )

    def several(self) -> list[Shape]:
        """The shapes of a list input (merge layers)."""
        inputs = self._primary()
        if isinstance(inputs, tuple):
            raise self.error(
                f" expects a list of inputs, got one input {fmt(inputs)}",
                "give the layer a list of tensors",
            )
        return list(inputs)

    def _primary(self) -> Shape | list[Shape]:
        # A keyword call ({"inputs": ...} or {"sequences": ...}) carries the main tensor under
        # the first parameter of Keras's call().
        if not isinstance(self.inputs, dict):
            return self.inputs
        info = catalog.layer(self.type)
        first = info.call[0] if info is not None and info.call else "inputs"
        if first in self.inputs:
            return self.inputs[first]
        if len(self.inputs) == 1:
            return next(iter(self.inputs.values()))
        raise self.error(f" is called with {sorted(self.inputs)}, but its input is {first!r}")


Rule = Callable[[Layer], Inferred]
_RULES: dict[str, Rule] = {}


def rule(*class_names: str) -> Callable[[Rule], Rule]:
    """Register a function as the shape rule of the Keras classes ``class_names``."""

    def register(fn: Rule) -> Rule:
        for name in class_names:
            if name in _RULES:
                raise ValueError(f"two shape rules for {name}")
            _RULES[name] = fn
        return fn

    return register


def class_of(type_name: str) -> str:
    info = catalog.layer(type_name)
    return info.cls if info is not None else type_name


def has_rule(type_name: str) -> bool:
    """Whether :func:`infer` knows the layer type ``type_name`` (aliases included)."""
    return class_of(type_name) in _RULES


def rule_types() -> list[str]:
    """The Keras class names that have a rule, sorted."""
    return sorted(_RULES)


def infer(
    type_name: str, args: dict[str, Any], inputs: Inputs, call: dict[str, Any] | None = None
) -> Inferred:
    """The output shape(s) and parameter counts of one layer on given inputs.

    Args:
        type_name: The layer type as a spec writes it (``"Dense"``, ``"Convolution2D"``).
        args: The spec's constructor arguments; missing ones take the catalog's defaults.
            Nested layers (``Bidirectional``'s ``layer``) are dicts with a ``type`` key.
        inputs: One shape; a list of shapes for a layer called on a list
            (``Concatenate``, ``Add``); or call-argument name -> shape for a keyword
            call (``MultiHeadAttention``: ``{"query": ..., "value": ...}``).
        call: Constant call arguments, e.g. ``{"return_attention_scores": True}``.

    Returns:
        The inferred output shape(s) and parameter counts.

    Raises:
        NotInferable: No rule covers ``type_name`` (see :func:`has_rule`), or its rule cannot decide.
        ShapeError: The layer cannot be applied to these inputs with these arguments.
    """
    cls = class_of(type_name)
    if cls not in _RULES:
        raise NotInferable(f"no shape rule for layer type {type_name!r}")
    layer = Layer(type_name, cls, _complete(type_name, args), _normalize(inputs), dict(call or {}))
    result = _RULES[cls](layer)
    if layer["trainable"] is False:  # Keras then reports every weight as non-trainable
        result = Inferred(result.output, 0, result.trainable + result.non_trainable)
    return result


def _complete(type_name: str, args: dict[str, Any]) -> dict[str, Any]:
    info = catalog.layer(type_name)
    complete = {k: v for k, v in args.items() if k not in ("type", "name")}
    if info is None:
        return complete
    for name, arg in info.args.items():
        if name in complete:
            continue
        if arg.required:
            raise ShapeError(f"{type_name} requires the argument '{name}'", argument=name)
        if arg.default is not catalog.MISSING:
            complete[name] = arg.default
    return complete


def _is_shape(value: Any) -> bool:
    return isinstance(value, (tuple, list)) and all(
        d is None or (isinstance(d, int) and not isinstance(d, bool)) for d in value
    )


def _normalize(inputs: Any) -> Any:
    if isinstance(inputs, dict):
        return {k: _normalize(v) for k, v in inputs.items()}
    if _is_shape(inputs):
        return tuple(inputs)
    if isinstance(inputs, (tuple, list)):
        return [_normalize(x) for x in inputs]
    raise TypeError(f"not a shape or a list of shapes: {inputs!r}")


# Shape helpers


def fmt(shape: Sequence[int | None]) -> str:
    return repr(tuple(shape))


def fmt_shapes(shapes: Sequence[Any]) -> str:
    texts = [fmt(s) if isinstance(s, tuple) else repr(s) for s in shapes]
    return texts[0] if len(texts) == 1 else ", ".join(texts[:-1]) + " and " + texts[-1]


def prod(dims: Sequence[int | None]) -> int | None:
    return None if any(d is None for d in dims) else math.prod(dims)  # type: ignore[arg-type]


def mul(a: int | None, b: int | None) -> int | None:
    return None if a is None or b is None else a * b


def broadcast(name: str, a: Shape, b: Shape) -> Shape:
    """NumPy broadcasting of two shapes, as ``keras.ops``' element-wise functions do.

    ``None`` stays free unless the other axis is known and not 1. Unlike the merge layers
    (``Add``, ...), the batch axis broadcasts too.
    """
    out: list[int | None] = []
    rank = max(len(a), len(b))
    for x, y in zip(pad_rank(a, rank), pad_rank(b, rank)):
        if x == 1:
            out.append(y)
        elif y == 1:
            out.append(x)
        elif x is None or y is None:
            out.append(x if y is None else y)
        elif x != y:
            raise ShapeError(
                f"{name}: shapes {fmt(a)} and {fmt(b)} do not broadcast",
                "element-wise operations need equal axes, or axes of size 1",
            )
        else:
            out.append(x)
    return tuple(out)


def pad_rank(shape: Shape, rank: int) -> Shape:
    return (1,) * (rank - len(shape)) + tuple(shape)


def ntuple(layer: Layer, name: str, n: int) -> tuple[int, ...]:
    """An argument given as one int or n ints (``kernel_size=3`` -> ``(3, 3)``), as a tuple."""
    value = layer[name]
    if isinstance(value, int):
        return (value,) * n
    if isinstance(value, (list, tuple)) and len(value) == n and all(isinstance(v, int) for v in value):
        return tuple(value)
    raise layer.error(f": {name} must be an int or {n} ints, got {value!r}", argument=name)


def pairs(layer: Layer, name: str, n: int) -> tuple[tuple[int, int], ...]:
    """A padding/cropping argument as n (before, after) pairs.

    Accepts what Keras does: one int, n ints (symmetric per axis) or n pairs;
    for n == 1 also a single pair.
    """
    value = layer[name]
    if isinstance(value, int):
        return ((value, value),) * n
    if n == 1 and is_pair(value):
        return (tuple(value),)  # type: ignore[return-value]
    if isinstance(value, (list, tuple)) and len(value) == n:
        pairs = [
            (v, v) if isinstance(v, int) else tuple(v) for v in value if isinstance(v, int) or is_pair(v)
        ]
        if len(pairs) == n:
            return tuple(pairs)  # type: ignore[arg-type]
    raise layer.error(f": {name} must be an int, {n} ints or {n} pairs of ints, got {value!r}", argument=name)


def is_pair(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, int) for v in value)


def need_rank(layer: Layer, shape: Shape, rank: int, what: str, hint: str | None = None) -> None:
    if len(shape) != rank:
        raise layer.error(f" expects {rank} dimensions ({what}), got {fmt(shape)}", hint)


def need_min_rank(layer: Layer, shape: Shape, rank: int, hint: str | None = None) -> None:
    if len(shape) < rank:
        raise layer.error(f" expects at least {rank} dimensions, got {fmt(shape)}", hint)


def known_axis(layer: Layer, shape: Shape, axis: int, what: str) -> int:
    """``shape[axis]``, which must be known because a weight's size depends on it."""
    dim = shape[axis]
    if dim is None:
        raise layer.error(
            f" needs the {what} axis of its input to be known, got {fmt(shape)}",
            "give that axis a fixed size in the input shape",
        )
    return dim


def channels_first(layer: Layer) -> bool:
    return (layer["data_format"] or "channels_last").lower() == "channels_first"


def split_channels(shape: Shape, channels_first: bool) -> tuple[int | None, Shape, int | None]:
    """(batch, spatial axes, channels) of an image-like shape."""
    if channels_first:
        return shape[0], shape[2:], shape[1]
    return shape[0], shape[1:-1], shape[-1]


def join_channels(
    batch: int | None, spatial: Sequence[int | None], channels: int | None, channels_first: bool
) -> Shape:
    if channels_first:
        return (batch, channels, *spatial)
    return (batch, *spatial, channels)


_SPATIAL_AXES = {1: ("steps",), 2: ("height", "width"), 3: ("depth", "height", "width")}


def layout(rank: int, channels_first: bool, time: bool = False) -> str:
    """The expected axes in words, e.g. ``"batch, height, width, channels"``."""
    axes = ["channels", *_SPATIAL_AXES[rank]] if channels_first else [*_SPATIAL_AXES[rank], "channels"]
    return ", ".join(["batch", *(["time"] if time else []), *axes])


def spatial_rank(layer: Layer, shape: Shape, rank: int, channels_first: bool) -> None:
    need_rank(layer, shape, rank + 2, layout(rank, channels_first), _spatial_hint(shape, rank))


def _spatial_hint(shape: Shape, rank: int) -> str | None:
    if len(shape) == rank + 1:
        return "the input has no channels axis: add a Reshape that appends one of size 1"
    if len(shape) < rank + 1:
        return "flat inputs need a Reshape to the layer's layout, or a Dense layer instead"
    return None


def lora(layer: Layer, kernel: Sequence[int]) -> tuple[int, int]:
    """(trainable, non-trainable) change when LoRA is on: the kernel freezes, two factors train."""
    rank = layer["lora_rank"]
    if not rank:
        return 0, 0
    size = math.prod(kernel)
    return math.prod(kernel[:-1]) * rank + rank * kernel[-1] - size, size


def axes_of(layer: Layer, x: Shape, value: Any) -> list[int]:
    """Axis argument(s) as non-negative indices into ``x``."""
    axes = [value] if isinstance(value, int) else list(value)
    for axis in axes:
        if not -len(x) <= axis < len(x):
            raise layer.error(
                f": axis {axis} is out of range for an input of shape {fmt(x)}", argument="axis"
            )
    return sorted(axis % len(x) for axis in axes)


def axes_size(layer: Layer, x: Shape, axes: list[int]) -> int:
    sizes = [x[a] for a in axes]
    if None in sizes:
        raise layer.error(
            f" needs axis {axes} of its input to be known, got {fmt(x)}",
            "give that axis a fixed size in the input shape",
        )
    return math.prod(sizes)  # type: ignore[arg-type]


def conv_length(n: int | None, kernel: int, stride: int, dilation: int, padding: str) -> int | None:
    """Output length of a convolution along one axis."""
    if n is None:
        return None
    if padding == "valid":
        return (n - dilation * (kernel - 1) - 1) // stride + 1
    return (n - 1) // stride + 1  # "same" and "causal": ceil(n / stride)


def padding_mode(layer: Layer, allowed: tuple[str, ...]) -> str:
    padding = layer["padding"]
    if not isinstance(padding, str) or padding.lower() not in allowed:
        raise layer.error(
            f": padding must be one of {', '.join(allowed)}, got {padding!r}", argument="padding"
        )
    return padding.lower()


def check_positive(layer: Layer, x: Shape, sizes: Sequence[int | None], how: str) -> None:
    if any(n is not None and n <= 0 for n in sizes):
        raise layer.error(
            f": input {fmt(x)} is too small; the output would have spatial size {fmt(sizes)} ({how})",
            "use padding='same', a smaller kernel or stride, or a larger input",
        )


def same_shape(layer: Layer) -> Inferred:
    """The rule of a layer whose output has its input's shape."""
    return Inferred(layer.one())
