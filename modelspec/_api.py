"""The Python API: load and build specs, and the registry of user layers."""

from __future__ import annotations

import os
from typing import Any

from ._arguments import check_spec
from ._errors import SpecError
from ._graph import Graph, to_graph
from ._source import parse, paused_gc, read_source
from ._spec import ModelSpec, to_spec

_registry: dict[str, Any] = {}


def register(cls: Any = None, *, name: str | None = None) -> Any:
    """Make a user layer (or other Keras object) usable as a spec ``type``.

    Use as a decorator, ``@modelspec.register``, or call it:
    ``modelspec.register(MyLayer, name="Mine")``. A spec never imports code;
    this is how custom classes reach it, from the Python side.
    """

    def add(c: Any) -> Any:
        _registry[name or c.__name__] = c
        return c

    return add if cls is None else add(cls)


def _objects(custom_objects: dict[str, Any] | None) -> dict[str, Any]:
    return {**_registry, **(custom_objects or {})}


def loads(text: str, source: str = "<string>", *, custom_objects: dict[str, Any] | None = None) -> ModelSpec:
    """Read a spec from YAML text.

    Args:
        text: The YAML document.
        source: The name used in messages (a file name, or ``<string>``).
        custom_objects: User classes by ``type`` name, besides registered ones.

    Raises:
        SpecError: Every problem found, located in ``source``.
    """
    parsed = parse(text, source)
    with paused_gc():
        return to_spec(parsed, _objects(custom_objects))


def load(path: str | os.PathLike, *, custom_objects: dict[str, Any] | None = None) -> ModelSpec:
    """Read a spec file. Relative paths in it (training data) resolve against its folder.

    Raises:
        SpecError: The file is missing or unreadable, or every problem found in it.
    """
    parsed = read_source(path)
    with paused_gc():
        return to_spec(parsed, _objects(custom_objects))


def check(spec: ModelSpec | str | os.PathLike, *, custom_objects: dict[str, Any] | None = None) -> Graph:
    """Run every check that needs no Keras: source, spec and graph stages.

    A spec made in Python (``ModelSpec(...)``, not read from text) gets the
    catalog checks here that :func:`load` gives a file.

    Returns:
        The resolved graph.

    Raises:
        SpecError: Every problem found.
    """
    objects = _objects(custom_objects)
    if not isinstance(spec, ModelSpec):
        spec = load(spec, custom_objects=objects)
    elif spec.source is None:
        problems = [p for p in check_spec(spec, objects) if p.severity == "error"]
        if problems:
            raise SpecError(problems)
    with paused_gc():
        return to_graph(spec)


def build(spec: ModelSpec | str | os.PathLike, *, custom_objects: dict[str, Any] | None = None) -> Any:
    """Compile a spec into a Keras model.

    Args:
        spec: A :class:`ModelSpec`, or the path of a spec file.
        custom_objects: User layer classes by ``type`` name, besides registered ones.

    Returns:
        A ``keras.Sequential`` for a list of layers, else a functional
        ``keras.Model``; compiled when the spec has a ``compile`` section.

    Raises:
        SpecError: The spec is invalid, or Keras refused part of it (located
            at the spec line concerned).
    """
    from ._compiler import to_keras

    objects = _objects(custom_objects)
    return to_keras(check(spec, custom_objects=objects), objects)


__all__ = ["SpecError", "build", "check", "load", "loads", "register"]
