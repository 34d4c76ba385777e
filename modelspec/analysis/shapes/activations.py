"""Shape rules of the activation layers (``keras.layers`` activations): the shape is kept; PReLU learns a slope per axis."""

from __future__ import annotations

import math

from .shape_utils import Inferred, Layer, fmt, rule, same_shape

rule("Activation", "ReLU", "LeakyReLU", "ELU", "Softmax")(same_shape)


@rule("PReLU")
def _prelu(layer: Layer) -> Inferred:
    x = layer.one()
    shared = layer["shared_axes"]
    shared = [] if shared is None else [shared] if isinstance(shared, int) else list(shared)
    alpha = [1 if axis in shared else dim for axis, dim in enumerate(x) if axis > 0]
    if None in alpha:
        raise layer.error(
            f" needs every non-shared axis of its input to be known, got {fmt(x)}",
            "set shared_axes to the free axes",
            "shared_axes",
        )
    return Inferred(x, math.prod(alpha))  # type: ignore[arg-type]
