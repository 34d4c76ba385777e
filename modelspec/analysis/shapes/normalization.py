"""Shape rules of the normalization layers: batch, layer, RMS, group and unit normalization."""

from __future__ import annotations

from .shape_utils import Inferred, Layer, axes_of, axes_size, fmt, rule, same_shape

rule("UnitNormalization")(same_shape)


@rule("BatchNormalization")
def _batch_norm(layer: Layer) -> Inferred:
    x = layer.one()
    size = axes_size(layer, x, axes_of(layer, x, layer["axis"]))
    trainable = size * (bool(layer["scale"]) + bool(layer["center"]))
    moving = 2 + 3 * bool(layer["renorm"])  # mean, variance (+ renorm's stddev, mean, stddev)
    return Inferred(x, trainable, size * moving)


@rule("LayerNormalization", "RMSNormalization")
def _layer_norm(layer: Layer) -> Inferred:
    x = layer.one()
    size = axes_size(layer, x, axes_of(layer, x, layer["axis"]))
    if layer.cls == "RMSNormalization":
        return Inferred(x, size)
    rms = bool(layer["rms_scaling"])
    weights = (bool(layer["scale"]) or rms) + (bool(layer["center"]) and not rms)
    return Inferred(x, size * weights)


@rule("GroupNormalization")
def _group_norm(layer: Layer) -> Inferred:
    x = layer.one()
    (axis,) = axes_of(layer, x, layer["axis"])
    channels = axes_size(layer, x, [axis])
    groups = channels if layer["groups"] == -1 else layer["groups"]
    if channels < groups or channels % groups:
        raise layer.error(
            f": groups={groups} must divide the {channels} channels of {fmt(x)}",
            f"choose a divisor of {channels}",
            "groups",
        )
    return Inferred(x, channels * (bool(layer["scale"]) + bool(layer["center"])))
