"""Provenance: a model built by modelspec remembers the spec it came from, and export gives that spec back.

``modelspec.build`` records on the Keras model the spec as written (its
blocks, params and repeats), where each layer came from (the block instances
it was made in, with their repeat index), a digest of the expanded spec, and a
fingerprint of the model (each layer's name, class and weight shapes). Exporting the
model checks both before trusting the record: the written spec must still
expand to the same plain spec (the same params: a build with ``--set`` or a
variant is not what the file says by default), and the model must still be the
one built. Then the export is the spec as written, blocks and ``repeat``
included, instead of one folded from the graph.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from ...expand import expand
from ...spec import ModelSpec, to_spec

ATTRIBUTE = "_modelspec_provenance"


def digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def fingerprint(keras: Any, model: Any) -> str:
    """The model's layers (nested models' included), each its name, class, trainability and weight shapes.

    Read from the layer objects, not from ``get_config()``: every ``build``
    records one, and serializing a config makes Keras import TensorFlow when
    it is installed, which a build on JAX or PyTorch must never do.
    """
    parts: list[Any] = []

    def visit(m: Any) -> None:
        for layer in m.layers:
            shapes = [[str(w.path), list(w.shape)] for w in layer.weights]
            parts.append([layer.name, type(layer).__name__, bool(layer.trainable), shapes])
            if isinstance(layer, keras.Model):
                visit(layer)

    visit(model)
    return digest(parts)


def record(keras: Any, model: Any, spec: ModelSpec) -> None:
    """Remember on ``model`` the spec (as written) that ``spec`` was expanded from; nothing for a plain spec.

    Args:
        keras: The Keras module.
        model: The model just built from ``spec``.
        spec: The expanded spec, whose document maps back to the spec as written.
    """
    document = spec.source
    root = getattr(document, "root", None)
    frames = getattr(document, "frames", None) or {}
    data = getattr(root, "data", None)
    if root is None or not isinstance(data, dict) or not data.get("blocks") or data.get("imports"):
        return  # nothing folded to give back, or blocks from other files
    layers = {
        path[1]: [[f.name, f.block, f.repeat] for f in chain]
        for path, chain in frames.items()
        if len(path) == 2 and path[0] == "layers" and chain
    }
    info = {
        "root": root,
        "layers": layers,  # layer -> [instance, block, repeat index] from the outermost
        "expanded": digest(spec.to_data()),
        "model": fingerprint(keras, model),
    }
    object.__setattr__(model, ATTRIBUTE, info)  # outside Keras's attribute tracking


def recorded_spec(keras: Any, model: Any, custom_objects: dict[str, Any]) -> ModelSpec | None:
    """The spec ``model`` was built from, when its record still holds; else None."""
    info = getattr(model, ATTRIBUTE, None)
    if not isinstance(info, dict):
        return None
    written, problems = to_spec(info["root"], custom_objects)
    if written is None or problems:
        return None
    flat, problems = expand(written, custom_objects=custom_objects)
    if flat is None or problems or digest(flat.to_data()) != info["expanded"]:
        return None
    if fingerprint(keras, model) != info["model"]:
        return None
    return written
