"""The names Keras gives the layers of a graph, known before Keras runs.

The compiler names each layer so; the static layout check of a
``model_parallel`` distribution names each variable after them
(``dense_1/kernel``), as Keras's ``variable.path`` does.
"""

from __future__ import annotations

import re

from .model import Graph


def layer_names(graph: Graph) -> dict[str, str]:
    """Node name -> the Keras name of its layer, for every layer that makes one.

    A named node keeps its name. An unnamed entry of a list gets the name
    Keras would give it in a fresh process (``dense``, ``dense_1``, ... after
    its type), skipping every name the spec gives, so that a user's
    ``dense_1`` next to unnamed ``Dense`` layers never collides with Keras's
    automatic names (which also depend on what the process built before).
    """
    taken = set(graph.inputs) | {n.keras_name for n in graph.nodes if n.keras_name is not None}
    counters: dict[str, int] = {}
    names: dict[str, str] = {}
    for node in graph.nodes:
        if node.keras_name is not None:
            names[node.name] = node.keras_name
            continue
        if node.type is None:
            continue
        base = _snake_case(node.type)
        while True:
            n = counters.get(base, 0)
            counters[base] = n + 1
            name = base if n == 0 else f"{base}_{n}"
            if name not in taken:
                break
        taken.add(name)
        names[node.name] = name
    return names


def _snake_case(name: str) -> str:
    """Keras's rule for automatic names: ``BatchNormalization`` -> ``batch_normalization``."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()
