"""Shape rules of the preprocessing layers: rescaling, image augmentation, resizing and cropping, Normalization."""

from __future__ import annotations

from .shape_utils import Inferred, Layer, axes_of, axes_size, channels_first, fmt, rule, same_shape

rule(
    "Rescaling",
    "RandomFlip",
    "RandomRotation",
    "RandomZoom",
    "RandomTranslation",
    "RandomContrast",
    "RandomBrightness",
)(same_shape)


@rule("Resizing", "CenterCrop", "RandomCrop")
def _resize(layer: Layer) -> Inferred:
    x = list(layer.one())
    first = channels_first(layer)
    if layer.cls == "RandomCrop":
        axes = (-2, -1) if first else (-3, -2)
    elif len(x) == 4:
        axes = (2, 3) if first else (1, 2)
    elif len(x) == 3:  # Keras reads a rank-3 shape as one unbatched image
        axes = (1, 2) if first else (0, 1)
    else:
        raise layer.error(f" expects 4 dimensions (batch, height, width, channels), got {fmt(x)}")
    x[axes[0]], x[axes[1]] = layer["height"], layer["width"]
    return Inferred(tuple(x))


@rule("Normalization")
def _normalization(layer: Layer) -> Inferred:
    x = layer.one()
    axis = layer["axis"]
    kept = axes_of(layer, x, () if axis is None else axis)
    size = axes_size(layer, x, kept)
    if layer["mean"] is not None:  # given statistics are constants, not weights
        return Inferred(x)
    return Inferred(x, 0, 2 * size + 1)  # adapted mean and variance, plus a sample count
