"""Shape rules of the pooling layers: windowed, global and adaptive, max and average."""

from __future__ import annotations

from .shape_utils import (
    Inferred,
    Layer,
    channels_first,
    check_positive,
    conv_length,
    fmt,
    join_channels,
    ntuple,
    padding_mode,
    rule,
    spatial_rank,
    split_channels,
)

_POOLS = {f"{kind}Pooling{r}D": r for kind in ("Max", "Average") for r in (1, 2, 3)}


@rule(*_POOLS)
def _pool(layer: Layer) -> Inferred:
    rank = _POOLS[layer.cls]
    x = layer.one()
    first = channels_first(layer)
    spatial_rank(layer, x, rank, first)
    batch, spatial, channels = split_channels(x, first)
    pool = ntuple(layer, "pool_size", rank)
    strides = pool if layer["strides"] is None else ntuple(layer, "strides", rank)
    padding = padding_mode(layer, ("valid", "same"))
    # A pooling window is a convolution kernel without dilation.
    sizes = [conv_length(n, p, s, 1, padding) for n, p, s in zip(spatial, pool, strides)]
    check_positive(layer, x, sizes, f"pool_size {fmt(pool)}, strides {fmt(strides)}, padding '{padding}'")
    return Inferred(join_channels(batch, sizes, channels, first))


_GLOBAL_POOLS = {f"Global{kind}Pooling{r}D": r for kind in ("Max", "Average") for r in (1, 2, 3)}


@rule(*_GLOBAL_POOLS)
def _global_pool(layer: Layer) -> Inferred:
    rank = _GLOBAL_POOLS[layer.cls]
    x = layer.one()
    first = channels_first(layer)
    spatial_rank(layer, x, rank, first)
    batch, _, channels = split_channels(x, first)
    if layer["keepdims"]:
        return Inferred(join_channels(batch, (1,) * rank, channels, first))
    return Inferred((batch, channels))


_ADAPTIVE_POOLS = {f"Adaptive{kind}Pooling{r}D": r for kind in ("Max", "Average") for r in (1, 2, 3)}


@rule(*_ADAPTIVE_POOLS)
def _adaptive_pool(layer: Layer) -> Inferred:
    rank = _ADAPTIVE_POOLS[layer.cls]
    x = layer.one()
    first = channels_first(layer)
    spatial_rank(layer, x, rank, first)
    batch, _, channels = split_channels(x, first)
    return Inferred(join_channels(batch, ntuple(layer, "output_size", rank), channels, first))
