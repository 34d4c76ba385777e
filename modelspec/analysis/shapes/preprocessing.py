"""Shape rules of the preprocessing layers: rescaling, image augmentation, resizing and cropping, Normalization, encodings and lookups."""

from __future__ import annotations

from .shape_utils import (
    Inferred,
    Layer,
    NotInferable,
    Shape,
    axes_of,
    axes_size,
    channels_first,
    fmt,
    rule,
    same_shape,
)

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


# Encoding layers: the output size follows from the arguments (a number of tokens or bins, a
# vocabulary given in the spec). Counted here so that the memory guard sees the Dense layer after
# a CategoryEncoding of 100,000 tokens. Their lookup tables are not Keras weights: no parameters.


def _encoded(x: Shape, mode: str, depth: int | None) -> Shape:
    """The output of a one-hot, multi-hot or count encoding into ``depth`` values.

    ``one_hot`` encodes each value (a last axis of size 1 is replaced, else one
    is appended); the other modes encode the last axis, a sample, into ``depth``.
    """
    if mode == "one_hot":
        if len(x) > 1 and x[-1] == 1:
            return (*x[:-1], depth)
        return (*x, depth)
    return (*x[:-1], depth)


def _mode(layer: Layer, allowed: tuple[str, ...]) -> str:
    mode = layer["output_mode"]
    if not isinstance(mode, str) or mode.lower() not in allowed:
        raise layer.error(
            f": output_mode must be one of {', '.join(allowed)}, got {mode!r}", argument="output_mode"
        )
    return mode.lower()


def _count(layer: Layer, name: str) -> int:
    value = layer[name]
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise layer.error(f" needs {name}, a positive integer, got {value!r}", argument=name)
    return value


@rule("CategoryEncoding")
def _category_encoding(layer: Layer) -> Inferred:
    x = layer.one()
    mode = _mode(layer, ("one_hot", "multi_hot", "count"))
    tokens = _count(layer, "num_tokens")
    if mode == "one_hot" and (x[-1] != 1 or len(x) == 1):
        return Inferred((*x, tokens))
    return Inferred((*x[:-1], tokens))


@rule("Hashing")
def _hashing(layer: Layer) -> Inferred:
    x = layer.one()
    mode = _mode(layer, ("int", "one_hot", "multi_hot", "count"))
    bins = _count(layer, "num_bins")
    return Inferred(x if mode == "int" else (*x[:-1], bins))


@rule("Discretization")
def _discretization(layer: Layer) -> Inferred:
    x = layer.one()
    mode = _mode(layer, ("int", "one_hot", "multi_hot", "count"))
    if mode == "int":
        return Inferred(x)
    boundaries = layer["bin_boundaries"]
    if isinstance(boundaries, list):
        depth = len(boundaries) + 1
    elif layer["num_bins"] is not None:
        depth = _count(layer, "num_bins")
    else:
        raise NotInferable("Discretization without bin_boundaries or num_bins")
    if mode == "one_hot":
        return Inferred(_encoded(x, mode, depth))
    return Inferred((x[0], *x[2:], depth) if len(x) >= 2 else (*x, depth))


def _vocabulary_size(layer: Layer) -> int:
    """How many indices a lookup's encoding has: max_tokens when padded to it, else its vocabulary's size."""
    if layer["pad_to_max_tokens"] and layer["max_tokens"] is not None:
        return _count(layer, "max_tokens")
    vocabulary = layer["vocabulary"]
    if not isinstance(vocabulary, list):  # adapted, or read from a file: known when the model is made
        raise NotInferable(f"{layer.type}: the vocabulary's size is known once it is adapted or read")
    # The out-of-vocabulary indices come first (TextVectorization keeps one); an encoding has no mask index.
    oov = 1 if layer.cls == "TextVectorization" else layer["num_oov_indices"]
    return len(vocabulary) + oov


@rule("StringLookup", "IntegerLookup")
def _lookup(layer: Layer) -> Inferred:
    x = layer.one()
    mode = _mode(layer, ("int", "one_hot", "multi_hot", "count", "tf_idf"))
    if mode == "int" or layer["invert"]:
        return Inferred(x)
    return Inferred(_encoded(x, mode, _vocabulary_size(layer)))


@rule("TextVectorization")
def _text_vectorization(layer: Layer) -> Inferred:
    x = layer.one()
    mode = _mode(layer, ("int", "one_hot", "multi_hot", "count", "tf_idf"))
    if mode == "int":
        return Inferred((x[0], layer["output_sequence_length"]))
    tokens = (
        (*x, 1) if layer["split"] is None and len(x) <= 1 else x if layer["split"] is None else (*x, None)
    )
    return Inferred(_encoded(tokens, mode, _vocabulary_size(layer)))
