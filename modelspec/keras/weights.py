"""Copying weights between two models of the same network, matched by each variable's path.

``target.set_weights(source.get_weights())`` pairs variables by position,
which holds only when both models created their variables in the same order.
A model built from a spec creates them in the order of its graph; a library
model may create some first in its constructor (KerasHub's BART and Whisper
backbones), so the same network lists them in another order. Each variable's
path (``transformer_decoder_layer_0/self_attention/query/kernel``) names it
in both.
"""

from __future__ import annotations

from typing import Any


def copy_weights(source: Any, target: Any) -> None:
    """Give every variable of ``target`` the value of the variable of ``source`` with the same path.

    Args:
        source: A built Keras model (or layer).
        target: A built Keras model of the same network, its variables
            created in any order.

    Raises:
        ValueError: The models' variables differ: a path only one of them
            has, or a path whose shapes differ, each named.
    """
    mine = by_path(source)
    theirs = by_path(target)
    problems = []
    for path in sorted(mine.keys() ^ theirs.keys()):
        problems.append(f"{path}: only in the {'source' if path in mine else 'target'}")
    for path in sorted(mine.keys() & theirs.keys()):
        if tuple(mine[path].shape) != tuple(theirs[path].shape):
            problems.append(
                f"{path}: shape {tuple(mine[path].shape)} in the source, {tuple(theirs[path].shape)} in the target"
            )
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise ValueError(f"the models' variables differ: {shown}")
    for path, variable in theirs.items():
        variable.assign(mine[path].value)


def by_path(model: Any) -> dict[str, Any]:
    """A model's variables by path; a path two variables share is an error (they could not be told apart)."""
    found: dict[str, Any] = {}
    for variable in model.weights:
        if variable.path in found and found[variable.path] is not variable:
            raise ValueError(f"two variables of {model.name!r} have the path {variable.path!r}")
        found[variable.path] = variable
    return found
