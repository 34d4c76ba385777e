"""Copying weights between two models of the same network, matched by layer name.

``target.set_weights(source.get_weights())`` pairs variables by position,
which holds only when both models created their variables in the same order.
A model built from a spec creates them in the order of its graph; a library
model may create some first in its constructor (KerasHub's BART and Whisper
backbones), so the same network lists them in another order. Layer names
are unique in a model and a spec keeps them: each layer's variables are
paired with those of the layer of the same name, in that layer's own order.
(Variable paths alone are not unique: T5's encoder and decoder layers both
hold a ``self_attention/embeddings``.)
"""

from __future__ import annotations

from typing import Any


def copy_weights(source: Any, target: Any) -> None:
    """Give every variable of ``target`` the value of its counterpart in ``source``.

    Layers (nested models' layers included) are paired by name; those left
    over on both sides, by class in their order (a library layer whose
    constructor renames it: KerasHub's ``DepthwiseConvBlock`` made as
    ``block_0_0`` is named ``block_0_0_0``; a nested model's layers written
    into its parent as ``sequential-conv2d``).

    Args:
        source: A built Keras model.
        target: A built Keras model of the same network (the same layer
            names), its variables created in any order.

    Raises:
        ValueError: The models' variables differ: a layer only one of them
            has, or a variable whose shapes differ, each named.
    """
    pairs = paired_layers(source, target)
    problems = []
    for mine, theirs in pairs:
        if mine is None or theirs is None:
            layer = mine if mine is not None else theirs
            if layer.weights:
                where = "source" if mine is not None else "target"
                problems.append(f"{layer.name}: a layer with variables only in the {where}")
            continue
        if len(mine.weights) != len(theirs.weights):
            problems.append(
                f"{mine.name}: {len(mine.weights)} variables in the source, {len(theirs.weights)} in the target"
            )
            continue
        for a, b in zip(mine.weights, theirs.weights):
            if tuple(a.shape) != tuple(b.shape):
                problems.append(
                    f"{a.path}: shape {tuple(a.shape)} in the source, {tuple(b.shape)} in the target"
                )
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise ValueError(f"the models' variables differ: {shown}")
    for mine, theirs in pairs:
        if mine is not None and theirs is not None:
            for a, b in zip(mine.weights, theirs.weights):
                b.assign(a.value)


def paired_layers(source: Any, target: Any) -> list[tuple[Any, Any]]:
    """(source layer, target layer) pairs: by name, then what is left by class in order; None where one is missing."""
    theirs = {layer.name: layer for layer in leaves(target)}
    pairs = [(layer, theirs.pop(layer.name, None)) for layer in leaves(source)]
    left = list(theirs.values())
    for i, (mine, other) in enumerate(pairs):
        if other is None:
            match = next((layer for layer in left if type(layer) is type(mine)), None)
            if match is not None:
                left.remove(match)
                pairs[i] = (mine, match)
    return pairs + [(None, layer) for layer in left]


def leaves(model: Any) -> list[Any]:
    """A model's layers, a nested model's replaced by its own: a spec may write a nested model into its parent."""
    import keras

    found = []
    for layer in model.layers:
        found += leaves(layer) if isinstance(layer, keras.Model) else [layer]
    return found
