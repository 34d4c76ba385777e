"""Shape rules of the core layers: Dense, EinsumDense, Embedding, Identity, Masking."""

from __future__ import annotations

import math
import re

from .shape_utils import Inferred, Layer, Shape, fmt, known_axis, lora, need_min_rank, prod, rule, same_shape

rule("Identity", "Masking")(same_shape)


@rule("Dense")
def _dense(layer: Layer) -> Inferred:
    x = layer.one()
    need_min_rank(layer, x, 2, "Dense needs (batch, features): add a Reshape such as target_shape [1]")
    units = layer["units"]
    fan_in = known_axis(layer, x, -1, "last")
    kernel = fan_in * units
    bias = units if layer["use_bias"] else 0
    extra, frozen = lora(layer, (fan_in, units))
    return Inferred((*x[:-1], units), kernel + bias + extra, frozen)


@rule("EinsumDense")
def _einsum_dense(layer: Layer) -> Inferred:
    x = layer.one()
    kernel, bias, output = _einsum_shapes(layer, x)
    if None in kernel:
        raise layer.error(f": the kernel {fmt(kernel)} has a free axis for input {fmt(x)}")
    bias_size = prod(bias) if bias is not None else 0
    if bias_size is None:
        raise layer.error(f": the bias {fmt(bias)} has a free axis for input {fmt(x)}", argument="bias_axes")
    extra, frozen = lora(layer, kernel)  # type: ignore[arg-type]
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
        raise layer.error(f": equation {equation!r} does not fit an input of shape {fmt(x)}")

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
                f": input {fmt(x)} and output_shape {partial!r} differ on the shared axis '{dim}'",
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
    extra, frozen = lora(layer, size)
    return Inferred((*x, layer["output_dim"]), math.prod(size) + extra, frozen)
