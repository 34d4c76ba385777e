"""Shape rules of the convolutions: Conv, ConvTranspose, DepthwiseConv and SeparableConv in 1 to 3 dimensions."""

from __future__ import annotations

import math
from dataclasses import dataclass

from .shape_utils import (
    Inferred,
    Layer,
    channels_first,
    check_positive,
    conv_length,
    fmt,
    join_channels,
    known_axis,
    ntuple,
    padding_mode,
    rule,
    spatial_rank,
    split_channels,
)


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


@rule(*_CONVS)
def _conv(layer: Layer) -> Inferred:
    spec = _CONVS[layer.cls]
    x = layer.one()
    first = channels_first(layer)
    spatial_rank(layer, x, spec.rank, first)
    batch, spatial, cin = split_channels(x, first)
    cin = known_axis(layer, x, 1 if first else -1, "channels")
    kernel = ntuple(layer, "kernel_size", spec.rank)
    strides = ntuple(layer, "strides", spec.rank)
    dilation = ntuple(layer, "dilation_rate", spec.rank)
    causal = spec.kind == "conv" and spec.rank == 1
    padding = padding_mode(layer, ("valid", "same", "causal") if causal else ("valid", "same"))
    if spec.kind in ("conv", "transpose") and max(strides) > 1 and max(dilation) > 1:
        raise layer.error(
            f": strides {fmt(strides)} > 1 cannot be combined with dilation_rate {fmt(dilation)} > 1",
            argument="dilation_rate",
        )
    use_bias = bool(layer["use_bias"])
    volume = math.prod(kernel)

    if spec.kind == "transpose":
        output_padding = layer["output_padding"]
        pads = (None,) * spec.rank if output_padding is None else ntuple(layer, "output_padding", spec.rank)
        if any(p is not None and p >= s for p, s in zip(pads, strides)):
            raise layer.error(
                f": output_padding {fmt(pads)} must be smaller than strides {fmt(strides)}",
                argument="output_padding",
            )
        sizes = [
            _transpose_length(*a, padding, p) for a, p in zip(zip(spatial, kernel, strides, dilation), pads)
        ]
        filters = layer["filters"]
        params = volume * filters * cin + filters * use_bias
        return Inferred(join_channels(batch, sizes, filters, first), params)

    sizes = [conv_length(*a, padding) for a in zip(spatial, kernel, strides, dilation)]
    check_positive(layer, x, sizes, f"kernel_size {fmt(kernel)}, strides {fmt(strides)}, padding '{padding}'")
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
                f": groups={groups} must divide both the input channels {cin} of {fmt(x)} and filters={cout}",
                argument="groups",
            )
        params = volume * (cin // groups) * cout + cout * use_bias
    return Inferred(join_channels(batch, sizes, cout, first), params)
