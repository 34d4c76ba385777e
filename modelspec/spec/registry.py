"""Registered classes and functions by the names a spec writes, without importing Keras.

Keras registers a library's classes as ``package>Class``
(``keras_hub>TransformerEncoder``); a spec writes that name, or the bare
class name when only one registered class has it. The objects come from the
Python side only (``custom_objects=``, ``modelspec.register``, a ``--plugin``
module, or what an imported library registered with Keras).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

SEPARATOR = ">"
"""Between the package and the class in a name Keras registers: ``keras_hub>TransformerEncoder``."""


class Registry:
    """Looks names up in the custom objects: the exact name, or a bare class name.

    Args:
        objects: Name -> class or function (user objects by plain name, and
            Keras's registered objects by ``package>Name``).
    """

    def __init__(self, objects: Mapping[str, Any]):
        self.objects = objects
        self._bare: dict[str, list[str]] | None = None

    def bare(self) -> dict[str, list[str]]:
        """Bare name -> the registered names of the distinct objects that have it (built once)."""
        if self._bare is None:
            found: dict[str, dict[int, str]] = {}
            for key, value in self.objects.items():
                by_object = found.setdefault(key.rsplit(SEPARATOR, 1)[-1], {})
                # A library may register one class under two packages (keras_hub and keras_nlp): one candidate.
                by_object.setdefault(id(value), key)
            self._bare = {name: list(keys.values()) for name, keys in found.items()}
        return self._bare

    def find(self, name: str) -> list[str]:
        """The names of the objects ``name`` may mean: itself when registered, else every ``package>name``.

        One name: found. Several: the bare name is ambiguous. None: unknown.
        """
        if name in self.objects:
            return [name]
        if SEPARATOR in name:
            return []
        return self.bare().get(name, [])

    def get(self, name: str) -> Any:
        """The object ``name`` means when exactly one has it, else None."""
        keys = self.find(name)
        return self.objects[keys[0]] if len(keys) == 1 else None

    def packages(self) -> set[str]:
        """The packages whose objects are registered (``keras_hub``)."""
        return {key.split(SEPARATOR, 1)[0] for key in self.objects if SEPARATOR in key}


def is_layer_class(value: Any) -> bool:
    """Whether ``value`` is a Keras layer class (a subclass of ``keras.layers.Layer``), judged without Keras."""
    return isinstance(value, type) and any(
        b.__name__ == "Layer" and b.__module__.startswith("keras.") for b in value.__mro__
    )


def constructor_parameters(cls: Any) -> tuple[bool, dict[str, inspect.Parameter]] | None:
    """(closed, parameters) of a class's constructor; closed when no ``**kwargs`` takes unknown keywords.

    ``**kwargs`` passed on to a base class are followed up the MRO; Keras's
    ``Layer`` takes a known few (``name``, ``dtype``, ``trainable``, ...).
    None when the signature cannot be read (a function, a builtin).
    """
    if not isinstance(cls, type):
        return None
    allowed: dict[str, inspect.Parameter] = {}
    for base in cls.__mro__:
        if base is object or "__init__" not in vars(base):
            continue
        try:
            params = inspect.signature(base.__init__).parameters
        except (TypeError, ValueError):
            return None
        for name, p in params.items():
            if name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL) and name not in allowed:
                allowed[name] = (
                    p if base is cls else p.replace(default=None)
                )  # a base's required: the class passes it
        if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
            return True, allowed
        if base.__name__ == "Layer" and base.__module__.startswith("keras."):
            allowed.update(
                {
                    k: inspect.Parameter(k, inspect.Parameter.KEYWORD_ONLY, default=None)
                    for k in _LAYER_KEYWORDS
                }
            )
            return True, allowed
    return False, allowed


_LAYER_KEYWORDS = ("input_shape", "batch_input_shape", "batch_size", "input_dim", "weights")
"""What ``keras.layers.Layer.__init__`` takes in its ``**kwargs``."""
