"""Spec values to Keras objects: layers (nested ones included), initializers, optimizers, losses, ...

Classes resolve only from ``keras.layers`` (and the other ``keras.*`` object
modules) through the catalog's allowlist, or from the caller's custom
objects; a spec never names an import path.
"""

from __future__ import annotations

from typing import Any

from .. import catalog
from ..spec import per_output


class Objects:
    """Makes the Keras objects a spec's values describe.

    Args:
        keras: The ``keras`` module (imported by the caller, lazily).
        custom_objects: User classes by ``type`` name.
    """

    def __init__(self, keras: Any, custom_objects: dict[str, Any]):
        self.keras = keras
        self.custom = custom_objects

    def layer_class(self, type_name: str) -> Any:
        """The class of a layer type: a custom one, or one the catalog lists in ``keras.layers``."""
        if type_name in self.custom:
            return self.custom[type_name]
        if catalog.layer(type_name) is None:  # the spec stage refuses these; a guard for specs made in Python
            raise KeyError(f"unknown layer type {type_name!r}")
        return getattr(self.keras.layers, type_name)

    def layer(self, type_name: str, args: dict[str, Any], name: str | None) -> Any:
        """One layer object; nested entries and Keras objects in ``args`` are made first."""
        cls = self.layer_class(type_name)
        info = catalog.layer(type_name) if type_name not in self.custom else None
        kwargs = {}
        for arg, value in args.items():
            kind = info.args[arg].kind if info is not None and arg in info.args else None
            kwargs[arg] = self.argument(kind, value)
        if name is not None:
            kwargs["name"] = name
        return cls(**kwargs)

    def argument(self, kind: str | None, value: Any) -> Any:
        """A constructor argument of the given catalog ``kind``, as Keras takes it."""
        if kind == "layer" and value is not None:
            if isinstance(value, list):
                return [self.argument("layer", v) for v in value]
            entry = dict(value)
            return self.layer(entry.pop("type"), entry, entry.pop("name", None))
        if kind in catalog.KIND_MODULES and isinstance(value, dict):
            return self.object(catalog.KIND_MODULES[kind], value)
        return value  # names: Keras resolves them inside the matching module

    def object(self, module: str, value: Any) -> Any:
        """``{type: Class, ...}`` to an instance of ``keras.<module>.Class``; names pass through."""
        if not isinstance(value, dict):
            return self.custom.get(value, value) if isinstance(value, str) else value
        args = dict(value)
        type_name = args.pop("type")
        if type_name in self.custom:
            return self.custom[type_name](**args)
        if catalog.object_class(module, type_name) is None:
            raise KeyError(f"unknown {module} class {type_name!r}")
        schedule = catalog.schedule_argument(module, args)
        if schedule is not None:
            args[schedule] = self.object("schedules", args[schedule])
        owner = self.keras.optimizers.schedules if module == "schedules" else getattr(self.keras, module)
        return getattr(owner, type_name)(**args)

    def per_output(self, module: str, value: Any) -> Any:
        """An object, a list of them, or output name -> object(s)."""
        if isinstance(value, list):
            return [self.per_output(module, v) for v in value]
        if per_output(value):
            return {k: self.per_output(module, v) for k, v in value.items()}
        return self.object(module, value)
