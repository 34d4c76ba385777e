"""Shape rules of the reshaping layers: Flatten, Reshape, Permute, RepeatVector, padding, cropping, upsampling."""

from __future__ import annotations

import math

from .shape_utils import (
    Inferred,
    Layer,
    channels_first,
    fmt,
    join_channels,
    mul,
    need_min_rank,
    need_rank,
    ntuple,
    pairs,
    prod,
    rule,
    spatial_rank,
    split_channels,
)


@rule("Flatten")
def _flatten(layer: Layer) -> Inferred:
    x = layer.one()
    need_min_rank(layer, x, 1)
    return Inferred((x[0], prod(x[1:]) if len(x) > 1 else 1))


@rule("Reshape")
def _reshape(layer: Layer) -> Inferred:
    x = layer.one()
    target = tuple(layer["target_shape"])
    if any(d < -1 for d in target) or target.count(-1) > 1:
        raise layer.error(
            f": target_shape {fmt(target)} may hold sizes >= 0 and at most one -1",
            argument="target_shape",
        )
    size = prod(x[1:])
    if size is None:  # a free input axis: -1 stays free, nothing can be checked
        return Inferred((x[0], *(None if d == -1 else d for d in target)))
    known = math.prod(d for d in target if d != -1)
    hint = f"the input holds {size} values per sample; target_shape {fmt(target)} must hold as many"
    if -1 not in target:
        if known != size:
            raise layer.error(
                f": cannot reshape {fmt(x)} ({size} values) to target_shape {fmt(target)} ({known} values)",
                hint,
                "target_shape",
            )
        return Inferred((x[0], *target))
    if known == 0 or size % known:
        raise layer.error(
            f": cannot reshape {fmt(x)} ({size} values) to target_shape {fmt(target)}: "
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
        raise layer.error(f": dims {fmt(dims)} must be a permutation of 1..{len(dims)}", argument="dims")
    need_rank(layer, x, len(dims) + 1, f"batch and the {len(dims)} permuted axes")
    return Inferred((x[0], *(x[d] for d in dims)))


@rule("RepeatVector")
def _repeat_vector(layer: Layer) -> Inferred:
    x = layer.one()
    need_rank(layer, x, 2, "batch, features", "add a Flatten first")
    return Inferred((x[0], layer["n"], x[1]))


_PADDING = {"ZeroPadding1D": 1, "ZeroPadding2D": 2, "ZeroPadding3D": 3}
_CROPPING = {"Cropping1D": 1, "Cropping2D": 2, "Cropping3D": 3}


@rule(*_PADDING, *_CROPPING)
def _pad_or_crop(layer: Layer) -> Inferred:
    x = layer.one()
    cropping = layer.cls in _CROPPING
    rank = (_CROPPING if cropping else _PADDING)[layer.cls]
    # Cropping1D has no data_format: always (batch, steps, channels).
    first = channels_first(layer) and layer.cls != "Cropping1D"
    spatial_rank(layer, x, rank, first)
    batch, spatial, channels = split_channels(x, first)
    name = "cropping" if cropping else "padding"
    sizes = []
    for n, (before, after) in zip(spatial, pairs(layer, name, rank)):
        if n is None:
            sizes.append(None)
        elif not cropping:
            sizes.append(n + before + after)
        elif before + after >= n:
            raise layer.error(
                f": cropping {before}+{after} leaves nothing of an axis of size {n} in {fmt(x)}",
                argument="cropping",
            )
        else:
            sizes.append(n - before - after)
    return Inferred(join_channels(batch, sizes, channels, first))


_UPSAMPLING = {"UpSampling1D": 1, "UpSampling2D": 2, "UpSampling3D": 3}


@rule(*_UPSAMPLING)
def _upsampling(layer: Layer) -> Inferred:
    x = layer.one()
    rank = _UPSAMPLING[layer.cls]
    first = rank > 1 and channels_first(layer)  # UpSampling1D has no data_format
    spatial_rank(layer, x, rank, first)
    batch, spatial, channels = split_channels(x, first)
    sizes = [mul(n, s) for n, s in zip(spatial, ntuple(layer, "size", rank))]
    return Inferred(join_channels(batch, sizes, channels, first))
