"""Provenance: a model built by modelspec remembers the spec it came from, and export gives that spec back.

``modelspec.build`` (and ``modelspec build``, ``modelspec train``) records on
the Keras model the spec as written (its blocks, params and repeats), where
each layer came from (the block instances it was made in, with their repeat
index), a digest of the expanded spec, and a fingerprint of the model (each
layer's name, class and weight shapes). Saving the model writes the record
into the file's ``modelspec.json`` (:meth:`Record.to_json`); ``modelspec
export`` reads it back (:meth:`Record.from_json`). Exporting the model checks
both digests before trusting the record: the written spec must still expand
to the same plain spec (the same params: a build with ``--set`` or a variant
is not what the file says by default), and the model must still be the one
built. Then the export is the spec as written, blocks and ``repeat``
included, instead of one folded from the graph. A record read from a file
may come from anywhere: one of the wrong shape, or one whose spec does not
make the model, is ignored, never trusted.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from ...errors import SpecError
from ...expand import expand
from ...source import Document, parse
from ...spec import ModelSpec, to_spec

ATTRIBUTE = "_modelspec_provenance"
KEY = "provenance"
"""The key of ``modelspec.json`` that holds the record."""
FORMAT = 1
_DIGEST = re.compile(r"[0-9a-f]{64}")


def digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def fingerprint(keras: Any, model: Any) -> str:
    """The model's layers (nested models' included), each its name, class, trainability and weight shapes.

    Read from the layer objects, not from ``get_config()``: every ``build``
    records one, and serializing a config makes Keras import TensorFlow when
    it is installed, which a build on JAX or PyTorch must never do. Weight
    paths are part of it: Keras makes them from the layer names
    (``conv4-block6-c-1/kernel``), so a model saved and loaded again, in
    another process or on another backend, has the same ones.
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


def _foldable(data: Any) -> bool:
    """Whether spec data has blocks to give back, all in the one text (imports would read other files)."""
    return isinstance(data, dict) and bool(data.get("blocks")) and not data.get("imports")


@dataclass(frozen=True)
class Record:
    """What a model built by modelspec remembers of its spec.

    Attributes:
        root: The spec as written (its text, parsed).
        layers: Layer name -> the block instances it was made in, outermost
            first, each ``[instance, block, repeat index or None]``.
        expanded: The digest of the expanded spec.
        model: The fingerprint of the model built (:func:`fingerprint`).
    """

    root: Document
    layers: dict[str, list[list[Any]]]
    expanded: str
    model: str

    def to_json(self) -> dict[str, Any] | None:
        """The record as JSON data (the spec as its YAML text); None for a spec that has no text."""
        text = getattr(self.root, "text", None)
        if not isinstance(text, str):
            return None
        return {
            "format": FORMAT,
            "spec": text,
            "layers": self.layers,
            "expanded": self.expanded,
            "model": self.model,
        }

    @classmethod
    def from_json(cls, data: Any, name: str = "<modelspec.json>", base_dir: str = ".") -> Record | None:
        """The record that :meth:`to_json` wrote; None when ``data`` does not have its shape.

        The data may come from anywhere: its shape is checked without recursion,
        and its text parsed as any spec is (bounded). Whether it still makes
        the model is :func:`recorded_spec`'s to check.

        Args:
            data: The parsed JSON.
            name: How the spec is named (the model file).
            base_dir: The folder the spec's relative paths would be resolved against.
        """
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            return None
        text, layers = data.get("spec"), data.get("layers")
        digests = data.get("expanded"), data.get("model")
        if not isinstance(text, str) or not all(isinstance(d, str) and _DIGEST.fullmatch(d) for d in digests):
            return None
        if not isinstance(layers, dict) or not all(_chain(k, v) for k, v in layers.items()):
            return None
        try:
            root = parse(text, name, base_dir=base_dir)
        except SpecError:
            return None
        if not _foldable(root.data):
            return None
        return cls(root, layers, *digests)


def _chain(layer: Any, chain: Any) -> bool:
    """Whether a layer's entry is ``[[instance, block, repeat index or None], ...]``."""
    return (
        isinstance(layer, str)
        and isinstance(chain, list)
        and all(
            isinstance(f, list)
            and len(f) == 3
            and isinstance(f[0], str)
            and isinstance(f[1], str)
            and (f[2] is None or (isinstance(f[2], int) and not isinstance(f[2], bool)))
            for f in chain
        )
    )


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
    if root is None or not _foldable(getattr(root, "data", None)):
        return  # nothing folded to give back, or blocks from other files
    layers = {
        path[1]: [[f.name, f.block, f.repeat] for f in chain]
        for path, chain in frames.items()
        if len(path) == 2 and path[0] == "layers" and chain
    }
    attach(model, Record(root, layers, digest(spec.to_data()), fingerprint(keras, model)))


def attach(model: Any, info: Record) -> None:
    """Put the record on ``model`` (a model loaded from a file gets the one the file holds)."""
    object.__setattr__(model, ATTRIBUTE, info)  # outside Keras's attribute tracking


def recorded(model: Any) -> Record | None:
    """The record on ``model``, if any."""
    info = getattr(model, ATTRIBUTE, None)
    return info if isinstance(info, Record) else None


def recorded_spec(keras: Any, model: Any, custom_objects: dict[str, Any]) -> ModelSpec | None:
    """The spec ``model`` was built from, when its record still holds; else None."""
    info = recorded(model)
    if info is None:
        return None
    try:
        written, problems = to_spec(info.root, custom_objects)
        if written is None or problems:
            return None
        flat, problems = expand(written, custom_objects=custom_objects)
    except SpecError:  # a record read from a file whose spec is over a limit: not the model's
        return None
    if flat is None or problems or digest(flat.to_data()) != info.expanded:
        return None
    if fingerprint(keras, model) != info.model:
        return None
    return written
