"""Static output shapes and parameter counts of Keras layers, without importing Keras.

:func:`infer` answers, for one layer type, its arguments and the shapes of its
inputs, what Keras would build: the output shape(s), as ``compute_output_shape``
gives them (batch axis included), and the parameter counts ``layer.count_params()``
would report, split into trainable and non-trainable weights. A layer that
Keras would refuse on those inputs raises :class:`ShapeError`.

The rules live in a registry keyed by Keras class name: one small function per
layer family, registered with ``@rule("Conv1D", "Conv2D", ...)``. Aliases such
as ``Convolution2D`` reach their class's rule through :mod:`modelspec.catalog`,
which also supplies argument defaults, so a rule always sees the complete
arguments.

Conventions:
    * A shape is a tuple of ints and ``None`` (an axis free until run time),
      batch axis first. Arithmetic on ``None`` stays ``None``.
    * ``data_format=None`` means ``"channels_last"``, Keras's default
      ``image_data_format`` (a ``keras.json`` that changes it is not read).

This module must never import Keras or TensorFlow.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .. import catalog

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


# --------------------------------------------------------------------------------------
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
            f" takes one input, got {len(inputs)}: {_shapes(inputs)}",
            "merge the tensors first (Concatenate, Add, ...)",
        )

    def several(self) -> list[Shape]:
        """The shapes of a list input (merge layers)."""
        inputs = self._primary()
        if isinstance(inputs, tuple):
            raise self.error(
                f" expects a list of inputs, got one input {_fmt(inputs)}",
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


def _class_of(type_name: str) -> str:
    info = catalog.layer(type_name)
    return info.cls if info is not None else type_name


def has_rule(type_name: str) -> bool:
    """Whether :func:`infer` knows the layer type ``type_name`` (aliases included)."""
    return _class_of(type_name) in _RULES


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
        KeyError: No rule covers ``type_name`` (see :func:`has_rule`).
        ShapeError: The layer cannot be applied to these inputs with these arguments.
    """
    cls = _class_of(type_name)
    if cls not in _RULES:
        raise KeyError(f"no shape rule for layer type {type_name!r}")
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


# --------------------------------------------------------------------------------------
# Shape helpers


def _fmt(shape: Sequence[int | None]) -> str:
    return repr(tuple(shape))


def _shapes(shapes: Sequence[Any]) -> str:
    texts = [_fmt(s) if isinstance(s, tuple) else repr(s) for s in shapes]
    return texts[0] if len(texts) == 1 else ", ".join(texts[:-1]) + " and " + texts[-1]


def _prod(dims: Sequence[int | None]) -> int | None:
    return None if any(d is None for d in dims) else math.prod(dims)  # type: ignore[arg-type]


def _mul(a: int | None, b: int | None) -> int | None:
    return None if a is None or b is None else a * b


def broadcast(name: str, a: Shape, b: Shape) -> Shape:
    """NumPy broadcasting of two shapes, as ``keras.ops``' element-wise functions do.

    ``None`` stays free unless the other axis is known and not 1. Unlike the merge layers
    (``Add``, ...), the batch axis broadcasts too.
    """
    out: list[int | None] = []
    rank = max(len(a), len(b))
    for x, y in zip(_pad(a, rank), _pad(b, rank)):
        if x == 1:
            out.append(y)
        elif y == 1:
            out.append(x)
        elif x is None or y is None:
            out.append(x if y is None else y)
        elif x != y:
            raise ShapeError(
                f"{name}: shapes {_fmt(a)} and {_fmt(b)} do not broadcast",
                "element-wise operations need equal axes, or axes of size 1",
            )
        else:
            out.append(x)
    return tuple(out)


def _pad(shape: Shape, rank: int) -> Shape:
    return (1,) * (rank - len(shape)) + tuple(shape)


def _ntuple(layer: Layer, name: str, n: int) -> tuple[int, ...]:
    """An argument given as one int or n ints (``kernel_size=3`` -> ``(3, 3)``), as a tuple."""
    value = layer[name]
    if isinstance(value, int):
        return (value,) * n
    if isinstance(value, (list, tuple)) and len(value) == n and all(isinstance(v, int) for v in value):
        return tuple(value)
    raise layer.error(f": {name} must be an int or {n} ints, got {value!r}", argument=name)


def _pairs(layer: Layer, name: str, n: int) -> tuple[tuple[int, int], ...]:
    """A padding/cropping argument as n (before, after) pairs.

    Accepts what Keras does: one int, n ints (symmetric per axis) or n pairs;
    for n == 1 also a single pair.
    """
    value = layer[name]
    if isinstance(value, int):
        return ((value, value),) * n
    if n == 1 and _is_pair(value):
        return (tuple(value),)  # type: ignore[return-value]
    if isinstance(value, (list, tuple)) and len(value) == n:
        pairs = [
            (v, v) if isinstance(v, int) else tuple(v) for v in value if isinstance(v, int) or _is_pair(v)
        ]
        if len(pairs) == n:
            return tuple(pairs)  # type: ignore[arg-type]
    raise layer.error(f": {name} must be an int, {n} ints or {n} pairs of ints, got {value!r}", argument=name)


def _is_pair(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, int) for v in value)


def _need_rank(layer: Layer, shape: Shape, rank: int, what: str, hint: str | None = None) -> None:
    if len(shape) != rank:
        raise layer.error(f" expects {rank} dimensions ({what}), got {_fmt(shape)}", hint)


def _need_min_rank(layer: Layer, shape: Shape, rank: int, hint: str | None = None) -> None:
    if len(shape) < rank:
        raise layer.error(f" expects at least {rank} dimensions, got {_fmt(shape)}", hint)


def _known(layer: Layer, shape: Shape, axis: int, what: str) -> int:
    """``shape[axis]``, which must be known because a weight's size depends on it."""
    dim = shape[axis]
    if dim is None:
        raise layer.error(
            f" needs the {what} axis of its input to be known, got {_fmt(shape)}",
            "give that axis a fixed size in the input shape",
        )
    return dim


def _channels_first(layer: Layer) -> bool:
    return (layer["data_format"] or "channels_last").lower() == "channels_first"


def _split(shape: Shape, channels_first: bool) -> tuple[int | None, Shape, int | None]:
    """(batch, spatial axes, channels) of an image-like shape."""
    if channels_first:
        return shape[0], shape[2:], shape[1]
    return shape[0], shape[1:-1], shape[-1]


def _join(
    batch: int | None, spatial: Sequence[int | None], channels: int | None, channels_first: bool
) -> Shape:
    if channels_first:
        return (batch, channels, *spatial)
    return (batch, *spatial, channels)


_SPATIAL_AXES = {1: ("steps",), 2: ("height", "width"), 3: ("depth", "height", "width")}


def _layout(rank: int, channels_first: bool, time: bool = False) -> str:
    """The expected axes in words, e.g. ``"batch, height, width, channels"``."""
    axes = ["channels", *_SPATIAL_AXES[rank]] if channels_first else [*_SPATIAL_AXES[rank], "channels"]
    return ", ".join(["batch", *(["time"] if time else []), *axes])


def _spatial_rank(layer: Layer, shape: Shape, rank: int, channels_first: bool) -> None:
    _need_rank(layer, shape, rank + 2, _layout(rank, channels_first), _spatial_hint(shape, rank))


def _spatial_hint(shape: Shape, rank: int) -> str | None:
    if len(shape) == rank + 1:
        return "the input has no channels axis: add a Reshape that appends one of size 1"
    if len(shape) < rank + 1:
        return "flat inputs need a Reshape to the layer's layout, or a Dense layer instead"
    return None


def _lora(layer: Layer, kernel: Sequence[int]) -> tuple[int, int]:
    """(trainable, non-trainable) change when LoRA is on: the kernel freezes, two factors train."""
    rank = layer["lora_rank"]
    if not rank:
        return 0, 0
    size = math.prod(kernel)
    return math.prod(kernel[:-1]) * rank + rank * kernel[-1] - size, size


# --------------------------------------------------------------------------------------
# Shape-preserving layers


@rule(
    "Activation",
    "ReLU",
    "LeakyReLU",
    "ELU",
    "Softmax",
    "Dropout",
    "GaussianNoise",
    "GaussianDropout",
    "AlphaDropout",
    "ActivityRegularization",
    "Identity",
    "Masking",
    "UnitNormalization",
    "Rescaling",
    "RandomFlip",
    "RandomRotation",
    "RandomZoom",
    "RandomTranslation",
    "RandomContrast",
    "RandomBrightness",
)
def _same_shape(layer: Layer) -> Inferred:
    return Inferred(layer.one())


_SPATIAL_DROPOUT = {"SpatialDropout1D": 1, "SpatialDropout2D": 2, "SpatialDropout3D": 3}


@rule(*_SPATIAL_DROPOUT)
def _spatial_dropout(layer: Layer) -> Inferred:
    x = layer.one()
    rank = _SPATIAL_DROPOUT[layer.cls]
    # SpatialDropout1D has no data_format argument: its layout is always (batch, steps, channels).
    _spatial_rank(layer, x, rank, rank > 1 and _channels_first(layer))
    return Inferred(x)


@rule("PReLU")
def _prelu(layer: Layer) -> Inferred:
    x = layer.one()
    shared = layer["shared_axes"]
    shared = [] if shared is None else [shared] if isinstance(shared, int) else list(shared)
    alpha = [1 if axis in shared else dim for axis, dim in enumerate(x) if axis > 0]
    if None in alpha:
        raise layer.error(
            f" needs every non-shared axis of its input to be known, got {_fmt(x)}",
            "set shared_axes to the free axes",
            "shared_axes",
        )
    return Inferred(x, math.prod(alpha))  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------
# Dense layers and embeddings


@rule("Dense")
def _dense(layer: Layer) -> Inferred:
    x = layer.one()
    _need_min_rank(layer, x, 2, "Dense needs (batch, features): add a Reshape such as target_shape [1]")
    units = layer["units"]
    fan_in = _known(layer, x, -1, "last")
    kernel = fan_in * units
    bias = units if layer["use_bias"] else 0
    extra, frozen = _lora(layer, (fan_in, units))
    return Inferred((*x[:-1], units), kernel + bias + extra, frozen)


@rule("EinsumDense")
def _einsum_dense(layer: Layer) -> Inferred:
    x = layer.one()
    kernel, bias, output = _einsum_shapes(layer, x)
    if None in kernel:
        raise layer.error(f": the kernel {_fmt(kernel)} has a free axis for input {_fmt(x)}")
    bias_size = _prod(bias) if bias is not None else 0
    if bias_size is None:
        raise layer.error(
            f": the bias {_fmt(bias)} has a free axis for input {_fmt(x)}", argument="bias_axes"
        )
    extra, frozen = _lora(layer, kernel)  # type: ignore[arg-type]
    return Inferred(output, math.prod(kernel) + bias_size + extra, frozen)  # type: ignore[arg-type]


def _einsum_shapes(layer: Layer, x: Shape) -> tuple[Shape, Shape | None, Shape]:
    """Kernel, bias and output shapes of an EinsumDense, following Keras's own analysis."""
    equation, bias_axes = layer["equation"], layer["bias_axes"]
    partial = layer["output_shape"]
    dotted = re.sub(r"\.\.\.", "0", equation)
    left_elided = False
    match = re.match(r"([a-zA-Z]+),([a-zA-Z]+)->([a-zA-Z]+)$", dotted)
    if not match:
        match = re.match(r"0([a-zA-Z]+),([a-zA-Z]+)->0([a-zA-Z]+)$", dotted)
        left_elided = bool(match)
    if not match:
        match = re.match(r"([a-zA-Z]{2,})0,([a-zA-Z]+)->([a-zA-Z]+)0$", dotted)
    if not match:
        raise layer.error(f": unsupported equation {equation!r}", argument="equation")
    input_spec, weight_spec, output_spec = match.groups()
    elided = len(x) - len(input_spec)
    if elided < 0 or (elided > 0 and "0" not in dotted):
        raise layer.error(f": equation {equation!r} does not fit an input of shape {_fmt(x)}")

    output = [partial] if isinstance(partial, int) else list(partial)
    output.insert(0, x[0])
    if elided > 0 and left_elided:
        for i in range(1, elided):
            output.insert(1, x[i])
    elif elided > 0:
        output.extend(x[len(x) - elided :])

    if left_elided:
        input_map = {dim: i + elided - len(x) for i, dim in enumerate(input_spec)}
        output_map = {dim: i + elided for i, dim in enumerate(output_spec)}
    else:
        input_map = {dim: i for i, dim in enumerate(input_spec)}
        output_map = {dim: i for i, dim in enumerate(output_spec)}
    if len(output) != len(output_spec) + max(elided, 0):
        raise layer.error(
            f": output_shape {partial!r} does not fit equation {equation!r}", argument="output_shape"
        )
    for dim in input_spec:
        if dim in output_map and output[output_map[dim]] not in (None, x[input_map[dim]]):
            raise layer.error(
                f": input {_fmt(x)} and output_shape {partial!r} differ on the shared axis '{dim}'",
                argument="output_shape",
            )

    kernel = []
    for dim in weight_spec:
        if dim in output_map:
            kernel.append(output[output_map[dim]])
        elif dim in input_map:
            kernel.append(x[input_map[dim]])
        else:
            raise layer.error(f": kernel axis '{dim}' is in neither input nor output", argument="equation")

    bias = None
    if bias_axes is not None:
        offset = elided if left_elided else 0
        sizes = {char: output[i + offset] for i, char in enumerate(output_spec)}
        if any(char not in output_spec for char in bias_axes):
            raise layer.error(
                f": bias_axes {bias_axes!r} not in the output {output_spec!r}", argument="bias_axes"
            )
        first = min(output_spec.find(char) for char in bias_axes)
        bias = [sizes[char] if char in bias_axes else 1 for char in output_spec[first:]]
        if not left_elided:
            bias.extend([1] * elided)
    return tuple(kernel), None if bias is None else tuple(bias), tuple(output)


@rule("Embedding")
def _embedding(layer: Layer) -> Inferred:
    x = layer.one()
    size = (layer["input_dim"], layer["output_dim"])
    extra, frozen = _lora(layer, size)
    return Inferred((*x, layer["output_dim"]), math.prod(size) + extra, frozen)


# --------------------------------------------------------------------------------------
# Reshaping layers


@rule("Flatten")
def _flatten(layer: Layer) -> Inferred:
    x = layer.one()
    _need_min_rank(layer, x, 1)
    return Inferred((x[0], _prod(x[1:]) if len(x) > 1 else 1))


@rule("Reshape")
def _reshape(layer: Layer) -> Inferred:
    x = layer.one()
    target = tuple(layer["target_shape"])
    if any(d < -1 for d in target) or target.count(-1) > 1:
        raise layer.error(
            f": target_shape {_fmt(target)} may hold sizes >= 0 and at most one -1",
            argument="target_shape",
        )
    size = _prod(x[1:])
    if size is None:  # a free input axis: -1 stays free, nothing can be checked
        return Inferred((x[0], *(None if d == -1 else d for d in target)))
    known = math.prod(d for d in target if d != -1)
    hint = f"the input holds {size} values per sample; target_shape {_fmt(target)} must hold as many"
    if -1 not in target:
        if known != size:
            raise layer.error(
                f": cannot reshape {_fmt(x)} ({size} values) to target_shape {_fmt(target)} ({known} values)",
                hint,
                "target_shape",
            )
        return Inferred((x[0], *target))
    if known == 0 or size % known:
        raise layer.error(
            f": cannot reshape {_fmt(x)} ({size} values) to target_shape {_fmt(target)}: "
            f"{size} is not a multiple of {known}",
            hint,
            "target_shape",
        )
    return Inferred((x[0], *(size // known if d == -1 else d for d in target)))


@rule("Permute")
def _permute(layer: Layer) -> Inferred:
    x = layer.one()
    dims = tuple(layer["dims"])
    if sorted(dims) != list(range(1, len(dims) + 1)):
        raise layer.error(f": dims {_fmt(dims)} must be a permutation of 1..{len(dims)}", argument="dims")
    _need_rank(layer, x, len(dims) + 1, f"batch and the {len(dims)} permuted axes")
    return Inferred((x[0], *(x[d] for d in dims)))


@rule("RepeatVector")
def _repeat_vector(layer: Layer) -> Inferred:
    x = layer.one()
    _need_rank(layer, x, 2, "batch, features", "add a Flatten first")
    return Inferred((x[0], layer["n"], x[1]))


_PADDING = {"ZeroPadding1D": 1, "ZeroPadding2D": 2, "ZeroPadding3D": 3}
_CROPPING = {"Cropping1D": 1, "Cropping2D": 2, "Cropping3D": 3}


@rule(*_PADDING, *_CROPPING)
def _pad_or_crop(layer: Layer) -> Inferred:
    x = layer.one()
    cropping = layer.cls in _CROPPING
    rank = (_CROPPING if cropping else _PADDING)[layer.cls]
    # Cropping1D has no data_format: always (batch, steps, channels).
    first = _channels_first(layer) and layer.cls != "Cropping1D"
    _spatial_rank(layer, x, rank, first)
    batch, spatial, channels = _split(x, first)
    name = "cropping" if cropping else "padding"
    sizes = []
    for n, (before, after) in zip(spatial, _pairs(layer, name, rank)):
        if n is None:
            sizes.append(None)
        elif not cropping:
            sizes.append(n + before + after)
        elif before + after >= n:
            raise layer.error(
                f": cropping {before}+{after} leaves nothing of an axis of size {n} in {_fmt(x)}",
                argument="cropping",
            )
        else:
            sizes.append(n - before - after)
    return Inferred(_join(batch, sizes, channels, first))


_UPSAMPLING = {"UpSampling1D": 1, "UpSampling2D": 2, "UpSampling3D": 3}


@rule(*_UPSAMPLING)
def _upsampling(layer: Layer) -> Inferred:
    x = layer.one()
    rank = _UPSAMPLING[layer.cls]
    first = rank > 1 and _channels_first(layer)  # UpSampling1D has no data_format
    _spatial_rank(layer, x, rank, first)
    batch, spatial, channels = _split(x, first)
    sizes = [_mul(n, s) for n, s in zip(spatial, _ntuple(layer, "size", rank))]
    return Inferred(_join(batch, sizes, channels, first))


@rule("Resizing", "CenterCrop", "RandomCrop")
def _resize(layer: Layer) -> Inferred:
    x = list(layer.one())
    first = _channels_first(layer)
    if layer.cls == "RandomCrop":
        axes = (-2, -1) if first else (-3, -2)
    elif len(x) == 4:
        axes = (2, 3) if first else (1, 2)
    elif len(x) == 3:  # Keras reads a rank-3 shape as one unbatched image
        axes = (1, 2) if first else (0, 1)
    else:
        raise layer.error(f" expects 4 dimensions (batch, height, width, channels), got {_fmt(x)}")
    x[axes[0]], x[axes[1]] = layer["height"], layer["width"]
    return Inferred(tuple(x))


# --------------------------------------------------------------------------------------
# Convolutions and pooling


@dataclass(frozen=True)
class _Conv:
    rank: int
    kind: str  # "conv", "transpose", "depthwise" or "separable"


_CONVS = {
    **{f"Conv{r}D": _Conv(r, "conv") for r in (1, 2, 3)},
    **{f"Conv{r}DTranspose": _Conv(r, "transpose") for r in (1, 2, 3)},
    **{f"DepthwiseConv{r}D": _Conv(r, "depthwise") for r in (1, 2)},
    **{f"SeparableConv{r}D": _Conv(r, "separable") for r in (1, 2)},
}


def _conv_length(n: int | None, kernel: int, stride: int, dilation: int, padding: str) -> int | None:
    """Output length of a convolution along one axis."""
    if n is None:
        return None
    if padding == "valid":
        return (n - dilation * (kernel - 1) - 1) // stride + 1
    return (n - 1) // stride + 1  # "same" and "causal": ceil(n / stride)


def _transpose_length(
    n: int | None, kernel: int, stride: int, dilation: int, padding: str, output_padding: int | None
) -> int | None:
    """Output length of a transposed convolution along one axis (TensorFlow's convention)."""
    if n is None:
        return None
    span = (kernel - 1) * dilation + 1
    if padding == "valid":
        extra = max(span, stride) - span if output_padding is None else output_padding
        return (n - 1) * stride + span + extra
    if output_padding is None:
        return n * stride
    return (n - 1) * stride + span % 2 + output_padding


def _padding(layer: Layer, allowed: tuple[str, ...]) -> str:
    padding = layer["padding"]
    if not isinstance(padding, str) or padding.lower() not in allowed:
        raise layer.error(
            f": padding must be one of {', '.join(allowed)}, got {padding!r}", argument="padding"
        )
    return padding.lower()


def _check_positive(layer: Layer, x: Shape, sizes: Sequence[int | None], how: str) -> None:
    if any(n is not None and n <= 0 for n in sizes):
        raise layer.error(
            f": input {_fmt(x)} is too small; the output would have spatial size {_fmt(sizes)} ({how})",
            "use padding='same', a smaller kernel or stride, or a larger input",
        )


@rule(*_CONVS)
def _conv(layer: Layer) -> Inferred:
    spec = _CONVS[layer.cls]
    x = layer.one()
    first = _channels_first(layer)
    _spatial_rank(layer, x, spec.rank, first)
    batch, spatial, cin = _split(x, first)
    cin = _known(layer, x, 1 if first else -1, "channels")
    kernel = _ntuple(layer, "kernel_size", spec.rank)
    strides = _ntuple(layer, "strides", spec.rank)
    dilation = _ntuple(layer, "dilation_rate", spec.rank)
    causal = spec.kind == "conv" and spec.rank == 1
    padding = _padding(layer, ("valid", "same", "causal") if causal else ("valid", "same"))
    if spec.kind in ("conv", "transpose") and max(strides) > 1 and max(dilation) > 1:
        raise layer.error(
            f": strides {_fmt(strides)} > 1 cannot be combined with dilation_rate {_fmt(dilation)} > 1",
            argument="dilation_rate",
        )
    use_bias = bool(layer["use_bias"])
    volume = math.prod(kernel)

    if spec.kind == "transpose":
        output_padding = layer["output_padding"]
        pads = (None,) * spec.rank if output_padding is None else _ntuple(layer, "output_padding", spec.rank)
        if any(p is not None and p >= s for p, s in zip(pads, strides)):
            raise layer.error(
                f": output_padding {_fmt(pads)} must be smaller than strides {_fmt(strides)}",
                argument="output_padding",
            )
        sizes = [
            _transpose_length(*a, padding, p) for a, p in zip(zip(spatial, kernel, strides, dilation), pads)
        ]
        filters = layer["filters"]
        params = volume * filters * cin + filters * use_bias
        return Inferred(_join(batch, sizes, filters, first), params)

    sizes = [_conv_length(*a, padding) for a in zip(spatial, kernel, strides, dilation)]
    _check_positive(
        layer, x, sizes, f"kernel_size {_fmt(kernel)}, strides {_fmt(strides)}, padding '{padding}'"
    )
    if spec.kind == "depthwise":
        cout = cin * layer["depth_multiplier"]
        params = volume * cout + cout * use_bias
    elif spec.kind == "separable":
        depth = cin * layer["depth_multiplier"]
        cout = layer["filters"]
        params = volume * depth + depth * cout + cout * use_bias
    else:
        cout, groups = layer["filters"], layer["groups"]
        if cin % groups or cout % groups:
            raise layer.error(
                f": groups={groups} must divide both the input channels {cin} of {_fmt(x)} and filters={cout}",
                argument="groups",
            )
        params = volume * (cin // groups) * cout + cout * use_bias
    return Inferred(_join(batch, sizes, cout, first), params)


_POOLS = {f"{kind}Pooling{r}D": r for kind in ("Max", "Average") for r in (1, 2, 3)}


@rule(*_POOLS)
def _pool(layer: Layer) -> Inferred:
    rank = _POOLS[layer.cls]
    x = layer.one()
    first = _channels_first(layer)
    _spatial_rank(layer, x, rank, first)
    batch, spatial, channels = _split(x, first)
    pool = _ntuple(layer, "pool_size", rank)
    strides = pool if layer["strides"] is None else _ntuple(layer, "strides", rank)
    padding = _padding(layer, ("valid", "same"))
    # A pooling window is a convolution kernel without dilation.
    sizes = [_conv_length(n, p, s, 1, padding) for n, p, s in zip(spatial, pool, strides)]
    _check_positive(layer, x, sizes, f"pool_size {_fmt(pool)}, strides {_fmt(strides)}, padding '{padding}'")
    return Inferred(_join(batch, sizes, channels, first))


_GLOBAL_POOLS = {f"Global{kind}Pooling{r}D": r for kind in ("Max", "Average") for r in (1, 2, 3)}


@rule(*_GLOBAL_POOLS)
def _global_pool(layer: Layer) -> Inferred:
    rank = _GLOBAL_POOLS[layer.cls]
    x = layer.one()
    first = _channels_first(layer)
    _spatial_rank(layer, x, rank, first)
    batch, _, channels = _split(x, first)
    if layer["keepdims"]:
        return Inferred(_join(batch, (1,) * rank, channels, first))
    return Inferred((batch, channels))


_ADAPTIVE_POOLS = {f"Adaptive{kind}Pooling{r}D": r for kind in ("Max", "Average") for r in (1, 2, 3)}


@rule(*_ADAPTIVE_POOLS)
def _adaptive_pool(layer: Layer) -> Inferred:
    rank = _ADAPTIVE_POOLS[layer.cls]
    x = layer.one()
    first = _channels_first(layer)
    _spatial_rank(layer, x, rank, first)
    batch, _, channels = _split(x, first)
    return Inferred(_join(batch, _ntuple(layer, "output_size", rank), channels, first))


# --------------------------------------------------------------------------------------
# Merging layers


@rule("Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum")
def _elementwise(layer: Layer) -> Inferred:
    shapes = layer.several()
    if not shapes or (layer.cls == "Subtract" and len(shapes) != 2):
        raise layer.error(
            f" expects {'2 inputs' if layer.cls == 'Subtract' else 'a list of inputs'}, got {len(shapes)}"
        )
    batches = {s[0] for s in shapes if s} - {None}
    if len(batches) > 1:
        raise layer.error(f": inputs have different batch sizes: {_shapes(shapes)}")
    # Keras's merge layers broadcast the non-batch axes, right-aligned.
    out: Shape = shapes[0][1:]
    for shape in shapes[1:]:
        out = _broadcast(layer, out, shape[1:], shapes)
    return Inferred((batches.pop() if batches else None, *out))


def _broadcast(layer: Layer, a: Shape, b: Shape, shapes: list[Shape]) -> Shape:
    if len(a) < len(b):
        a, b = b, a
    if not b:
        return a
    out = list(a[: len(a) - len(b)])
    for i, j in zip(a[len(a) - len(b) :], b):
        if i is None or j is None:
            out.append(None)
        elif i == 1 or j == 1 or i == j:
            out.append(j if i == 1 else i)
        else:
            raise layer.error(
                f": inputs have shapes {_shapes(shapes)}",
                "inputs must have equal shapes (or broadcast); project them to one size with a Dense "
                "layer, or use Concatenate to stack them",
            )
    return tuple(out)


@rule("Concatenate")
def _concatenate(layer: Layer) -> Inferred:
    shapes = layer.several()
    if not shapes:
        raise layer.error(" expects a list of at least 1 input, got 0")
    ranks = {len(s) for s in shapes}
    axis = layer["axis"]
    hint = f"all inputs must match on every axis except the concatenation axis ({axis})"
    if len(ranks) > 1:
        raise layer.error(f": inputs have different ranks: {_shapes(shapes)}", hint)
    rank = ranks.pop()
    if not -rank <= axis < rank:
        raise layer.error(f": axis {axis} is out of range for inputs {_shapes(shapes)}", argument="axis")
    axis %= rank
    for i in range(rank):
        known = {s[i] for s in shapes} - {None}
        if i != axis and len(known) > 1:
            raise layer.error(f": inputs have shapes {_shapes(shapes)}, which differ on axis {i}", hint)
    # Like Keras, the other axes come from the first input.
    out = list(shapes[0])
    lengths = [s[axis] for s in shapes]
    out[axis] = None if None in lengths else sum(lengths)  # type: ignore[arg-type]
    return Inferred(tuple(out))


@rule("Dot")
def _dot(layer: Layer) -> Inferred:
    shapes = layer.several()
    if len(shapes) != 2:
        raise layer.error(f" expects 2 inputs, got {len(shapes)}")
    a, b = shapes
    axes = layer["axes"]
    axes = [axes, axes] if isinstance(axes, int) else list(axes)
    if any(not -len(s) <= ax < len(s) for ax, s in zip(axes, shapes)):
        raise layer.error(f": axes {axes} are out of range for inputs {_shapes(shapes)}", argument="axes")
    axes = [ax % len(s) for ax, s in zip(axes, shapes)]
    if a[axes[0]] != b[axes[1]]:  # Keras compares as written: a free axis against a fixed one fails
        raise layer.error(
            f": inputs have shapes {_shapes(shapes)}, whose axes {axes[0]} and {axes[1]} differ",
            argument="axes",
        )
    out = [d for i, d in enumerate(a) if i != axes[0]] + [d for i, d in enumerate(b) if i not in (0, axes[1])]
    if len(out) == 1:
        out.append(1)
    return Inferred(tuple(out))


# --------------------------------------------------------------------------------------
# Normalization


def _axes(layer: Layer, x: Shape, value: Any) -> list[int]:
    """Axis argument(s) as non-negative indices into ``x``."""
    axes = [value] if isinstance(value, int) else list(value)
    for axis in axes:
        if not -len(x) <= axis < len(x):
            raise layer.error(
                f": axis {axis} is out of range for an input of shape {_fmt(x)}", argument="axis"
            )
    return sorted(axis % len(x) for axis in axes)


def _axes_size(layer: Layer, x: Shape, axes: list[int]) -> int:
    sizes = [x[a] for a in axes]
    if None in sizes:
        raise layer.error(
            f" needs axis {axes} of its input to be known, got {_fmt(x)}",
            "give that axis a fixed size in the input shape",
        )
    return math.prod(sizes)  # type: ignore[arg-type]


@rule("BatchNormalization")
def _batch_norm(layer: Layer) -> Inferred:
    x = layer.one()
    size = _axes_size(layer, x, _axes(layer, x, layer["axis"]))
    trainable = size * (bool(layer["scale"]) + bool(layer["center"]))
    moving = 2 + 3 * bool(layer["renorm"])  # mean, variance (+ renorm's stddev, mean, stddev)
    return Inferred(x, trainable, size * moving)


@rule("LayerNormalization", "RMSNormalization")
def _layer_norm(layer: Layer) -> Inferred:
    x = layer.one()
    size = _axes_size(layer, x, _axes(layer, x, layer["axis"]))
    if layer.cls == "RMSNormalization":
        return Inferred(x, size)
    rms = bool(layer["rms_scaling"])
    weights = (bool(layer["scale"]) or rms) + (bool(layer["center"]) and not rms)
    return Inferred(x, size * weights)


@rule("GroupNormalization")
def _group_norm(layer: Layer) -> Inferred:
    x = layer.one()
    (axis,) = _axes(layer, x, layer["axis"])
    channels = _axes_size(layer, x, [axis])
    groups = channels if layer["groups"] == -1 else layer["groups"]
    if channels < groups or channels % groups:
        raise layer.error(
            f": groups={groups} must divide the {channels} channels of {_fmt(x)}",
            f"choose a divisor of {channels}",
            "groups",
        )
    return Inferred(x, channels * (bool(layer["scale"]) + bool(layer["center"])))


@rule("Normalization")
def _normalization(layer: Layer) -> Inferred:
    x = layer.one()
    axis = layer["axis"]
    kept = _axes(layer, x, () if axis is None else axis)
    size = _axes_size(layer, x, kept)
    if layer["mean"] is not None:  # given statistics are constants, not weights
        return Inferred(x)
    return Inferred(x, 0, 2 * size + 1)  # adapted mean and variance, plus a sample count


# --------------------------------------------------------------------------------------
# Recurrent layers


_RNN_GATES = {"SimpleRNN": 1, "GRU": 3, "LSTM": 4}


@rule(*_RNN_GATES)
def _rnn(layer: Layer) -> Inferred:
    x = layer.one()
    _need_rank(
        layer,
        x,
        3,
        "batch, time, features",
        "add a Reshape to (time, features), or RepeatVector to repeat a vector over time",
    )
    units, gates = layer["units"], _RNN_GATES[layer.cls]
    fan_in = _known(layer, x, -1, "features")
    bias = gates * units if layer["use_bias"] else 0
    if layer.cls == "GRU" and layer["reset_after"]:
        bias *= 2  # separate input and recurrent biases
    params = gates * units * (fan_in + units) + bias
    state = (x[0], units)
    output = (x[0], x[1], units) if layer["return_sequences"] else state
    return _with_states(layer, output, [state] * (2 if layer.cls == "LSTM" else 1), params)


def _with_states(layer: Layer, output: Shape, states: list[Shape], params: int) -> Inferred:
    if layer["return_state"]:
        return Inferred((output, *states), params)
    return Inferred(output, params)


_CONV_LSTMS = {"ConvLSTM1D": 1, "ConvLSTM2D": 2, "ConvLSTM3D": 3}


@rule(*_CONV_LSTMS)
def _conv_lstm(layer: Layer) -> Inferred:
    rank = _CONV_LSTMS[layer.cls]
    x = layer.one()
    first = _channels_first(layer)
    _need_rank(layer, x, rank + 3, _layout(rank, first, time=True))
    batch, spatial, cin = _split((x[0], *x[2:]), first)
    if None in spatial or cin is None:
        raise layer.error(
            f" needs the spatial and channels axes of its input to be known, got {_fmt(x)}",
            "give those axes fixed sizes in the input shape",
        )
    kernel = _ntuple(layer, "kernel_size", rank)
    strides = _ntuple(layer, "strides", rank)
    dilation = _ntuple(layer, "dilation_rate", rank)
    padding = _padding(layer, ("valid", "same"))
    sizes = [_conv_length(*a, padding) for a in zip(spatial, kernel, strides, dilation)]
    _check_positive(
        layer, x, sizes, f"kernel_size {_fmt(kernel)}, strides {_fmt(strides)}, padding '{padding}'"
    )
    filters = layer["filters"]
    volume = math.prod(kernel)
    params = 4 * filters * (volume * (cin + filters) + bool(layer["use_bias"]))
    state = _join(batch, sizes, filters, first)
    output = (batch, x[1], *state[1:]) if layer["return_sequences"] else state
    return _with_states(layer, output, [state, state], params)


def _inner(layer: Layer, name: str, inputs: Shape) -> tuple[str, Inferred]:
    """Type and result of the nested layer in argument ``name`` (a dict with a ``type``)."""
    entry = layer[name]
    if not isinstance(entry, dict) or "type" not in entry:
        raise layer.error(f": {name} must be a layer entry with a type, got {entry!r}", argument=name)
    return entry["type"], infer(entry["type"], entry, inputs, layer.call)


@rule("Bidirectional")
def _bidirectional(layer: Layer) -> Inferred:
    x = layer.one()
    inner_type, forward = _inner(layer, "layer", x)
    if _class_of(inner_type) not in {*_RNN_GATES, *_CONV_LSTMS}:
        raise layer.error(f" wraps a recurrent layer, got {inner_type}", argument="layer")
    backward = _inner(layer, "backward_layer", x)[1] if layer["backward_layer"] is not None else forward
    returns_state = isinstance(forward.output[0], tuple)
    fw_out, fw_states = (forward.output[0], forward.output[1:]) if returns_state else (forward.output, ())
    bw_out, bw_states = (backward.output[0], backward.output[1:]) if returns_state else (backward.output, ())
    mode = layer["merge_mode"]
    if mode not in ("concat", "sum", "mul", "ave", None):
        raise layer.error(
            f": merge_mode must be concat, sum, mul, ave or None, got {mode!r}", argument="merge_mode"
        )
    if mode is None:
        outputs: tuple[Any, ...] = (fw_out, bw_out)
    elif mode == "concat":
        outputs = ((*fw_out[:-1], fw_out[-1] + bw_out[-1]),)  # type: ignore[operator]
    elif fw_out != bw_out:
        raise layer.error(
            f": merge_mode '{mode}' needs equal outputs, got {_shapes([fw_out, bw_out])}",
            "give the backward layer the same units, or use merge_mode 'concat'",
            "backward_layer",
        )
    else:
        outputs = (fw_out,)
    outputs = (*outputs, *fw_states, *bw_states)
    return Inferred(
        outputs if len(outputs) > 1 else outputs[0],
        forward.trainable + backward.trainable,
        forward.non_trainable + backward.non_trainable,
    )


@rule("TimeDistributed")
def _time_distributed(layer: Layer) -> Inferred:
    x = layer.one()
    _need_min_rank(layer, x, 3, "TimeDistributed applies its layer to each step of (batch, time, ...)")
    _, inner = _inner(layer, "layer", (x[0], *x[2:]))

    def with_time(shape: Shape) -> Shape:
        return (shape[0], x[1], *shape[1:])

    several = bool(inner.output) and isinstance(inner.output[0], tuple)
    output = tuple(map(with_time, inner.output)) if several else with_time(inner.output)  # type: ignore[arg-type]
    return Inferred(output, inner.trainable, inner.non_trainable)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------
# Attention


@rule("MultiHeadAttention")
def _multi_head_attention(layer: Layer) -> Inferred:
    inputs = layer.inputs
    if isinstance(inputs, list):  # positional call: (query, value, key)
        inputs = dict(zip(("query", "value", "key"), inputs))
    if isinstance(inputs, tuple) or "query" not in inputs or "value" not in inputs:
        raise layer.error(
            " needs query and value inputs", "for self-attention pass the same tensor as query and value"
        )
    query, value = inputs["query"], inputs["value"]
    key = inputs.get("key") or value
    if value[1:-1] != key[1:-1]:
        raise layer.error(
            f": value {_fmt(value)} and key {_fmt(key)} must match on every axis but the last",
            "give key the same length as value",
        )
    heads, key_dim = layer["num_heads"], layer["key_dim"]
    value_dim = layer["value_dim"] or key_dim
    out_dims = layer["output_shape"]
    out_dims = (out_dims,) if isinstance(out_dims, int) else tuple(out_dims) if out_dims else None
    q_in = _known(layer, query, -1, "last (query)")
    k_in = _known(layer, key, -1, "last (key)")
    v_in = _known(layer, value, -1, "last (value)")
    out_dims = out_dims or (q_in,)

    bias = bool(layer["use_bias"])
    params = heads * key_dim * (q_in + bias)  # query projection
    params += heads * key_dim * (k_in + bias)  # key projection
    params += heads * value_dim * (v_in + bias)  # value projection
    params += (heads * value_dim + bias) * math.prod(out_dims)  # output projection
    if layer["use_gate"]:
        params += heads * value_dim * (q_in + bias)
    output = (*query[:-1], *out_dims)
    if not _returns_scores(layer):
        return Inferred(output, params)
    return Inferred((output, _attention_scores(layer, query, key, heads)), params)


def _returns_scores(layer: Layer) -> bool:
    return bool(layer.call.get("return_attention_scores"))


def _attention_scores(layer: Layer, query: Shape, key: Shape, heads: int) -> Shape:
    """Shape of the attention scores, following MultiHeadAttention's einsum layout.

    The projected tensors are ``(batch, ..., heads, dim)``; scores keep the
    non-attention axes (batch and heads among them), then the query's and the
    key's attention axes. With the default axes that is (batch, heads, Tq, Tv):
    what the computation returns, where Keras's symbolic call says (batch, heads, Tq, Tq).
    """
    rank = len(query) + 1
    axes = layer["attention_axes"]
    if axes is None:
        axes = tuple(range(1, rank - 2))
    else:
        axes = tuple(a if a >= 0 else rank - 1 + a for a in ([axes] if isinstance(axes, int) else axes))
    q = (*query[:-1], heads)
    k = (*key[:-1], heads)
    kept = [i for i in range(rank - 1) if i not in axes]
    return (*(q[i] for i in kept), *(q[i] for i in axes), *(k[i] for i in axes))


@rule("Attention", "AdditiveAttention")
def _attention(layer: Layer) -> Inferred:
    shapes = layer.several()
    if len(shapes) not in (2, 3):
        raise layer.error(f" expects [query, value] or [query, value, key], got {len(shapes)} inputs")
    query, value = shapes[:2]
    key = shapes[2] if len(shapes) == 3 else value
    if query[-1] is not None and key[-1] is not None and query[-1] != key[-1]:
        raise layer.error(
            f": query {_fmt(query)} and key {_fmt(key)} must have the same last axis",
            "project them to one size with a Dense layer",
        )
    if layer.cls == "AdditiveAttention":
        params = _known(layer, query, -1, "last (query)") if layer["use_scale"] else 0
    else:
        params = bool(layer["use_scale"]) + (layer["score_mode"] == "concat")
    output = (*query[:-1], value[-1])
    if _returns_scores(layer):
        return Inferred((output, (*query[:-1], key[-2])), params)
    return Inferred(output, params)


# --------------------------------------------------------------------------------------
# Layers of keras.applications that keras.layers does not export

# ConvNeXt's ``LayerScale`` (keras.src.applications.convnext) and InceptionResNetV2's
# ``CustomScaleLayer`` (keras.src.applications.inception_resnet_v2) reach a spec as custom
# objects. A user class of the same name with other arguments is not theirs: its shape stays unknown.
_APPLICATION_ARGS = {
    "LayerScale": {"init_values", "projection_dim"},
    "CustomScaleLayer": {"scale"},
}


def _application_layer(layer: Layer) -> None:
    expected = _APPLICATION_ARGS[layer.cls]
    if set(layer.args) - {"trainable", "dtype"} != expected:
        raise KeyError(f"{layer.type} with arguments {sorted(layer.args)} is not keras.applications' own")


@rule("LayerScale")
def _layer_scale(layer: Layer) -> Inferred:
    _application_layer(layer)
    dim = layer["projection_dim"]
    if not isinstance(dim, int) or isinstance(dim, bool):
        raise layer.error(f": projection_dim must be an int, got {dim!r}", argument="projection_dim")
    return Inferred(broadcast(layer.type, layer.one(), (dim,)), dim)  # x * gamma, gamma of shape (dim,)


@rule("CustomScaleLayer")
def _custom_scale(layer: Layer) -> Inferred:
    _application_layer(layer)
    shapes = layer.several()
    if len(shapes) != 2:
        raise layer.error(f" expects 2 inputs, got {len(shapes)}")
    return Inferred(broadcast(layer.type, *shapes))  # inputs[0] + inputs[1] * scale
