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

    Args:
        source: A built Keras model.
        target: A built Keras model of the same network (the same layer
            names), its variables created in any order.

    Raises:
        ValueError: The models' variables differ: a layer only one of them
            has, or a variable whose shapes differ, each named.
    """
    mine = by_layer(source)
    theirs = by_layer(target)
    problems = []
    for key in sorted(mine.keys() ^ theirs.keys()):
        problems.append(f"{key[0]}: variable {key[1]} only in the {'source' if key in mine else 'target'}")
    for key in sorted(mine.keys() & theirs.keys()):
        a, b = tuple(mine[key].shape), tuple(theirs[key].shape)
        if a != b:
            problems.append(f"{mine[key].path}: shape {a} in the source, {b} in the target")
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise ValueError(f"the models' variables differ: {shown}")
    for key, variable in theirs.items():
        variable.assign(mine[key].value)


def by_layer(model: Any) -> dict[tuple[str, int], Any]:
    """A model's variables by (its layer's name, place among that layer's variables)."""
    found: dict[tuple[str, int], Any] = {}
    for layer in model.layers:
        for i, variable in enumerate(layer.weights):
            found[(layer.name, i)] = variable
    return found
