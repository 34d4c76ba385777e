"""Spec values to Keras objects: layers (nested ones included), initializers, optimizers, losses, ...

Classes resolve only from ``keras.layers`` (and the other ``keras.*`` object
modules) through the catalog's allowlist, or from the caller's custom
objects; a spec never names an import path.
"""

from __future__ import annotations

from typing import Any

from .. import catalog
from ..spec import per_output
from ..spec.registry import Registry, is_layer_class


class Objects:
    """Makes the Keras objects a spec's values describe.

    Args:
        keras: The ``keras`` module (imported by the caller, lazily).
        custom_objects: User classes by ``type`` name.
    """

    def __init__(self, keras: Any, custom_objects: dict[str, Any]):
        self.keras = keras
        self.custom = custom_objects
        self.registry = Registry(custom_objects)

    def custom_object(self, name: str) -> Any:
        """The caller's object ``name``, or the registered one it means (``keras_hub>X``, or a bare ``X``); else None."""
        if name in self.custom:
            return self.custom[name]
        return self.registry.get(name)

    def layer_class(self, type_name: str) -> Any:
        """The class of a layer type: a custom one, one the catalog lists in ``keras.layers``, or a registered one."""
        if type_name in self.custom:
            return self.custom[type_name]
        if catalog.layer(type_name) is not None:
            return getattr(self.keras.layers, type_name)
        found = self.registry.get(type_name)
        if not is_layer_class(found):  # the spec stage refuses these; a guard for specs made in Python
            raise KeyError(f"unknown layer type {type_name!r}")
        return found

    def layer(self, type_name: str, args: dict[str, Any], name: str | None) -> Any:
        """One layer object; nested entries and Keras objects in ``args`` are made first.

        For a custom or library class (``keras_hub>TransformerEncoder``), an
        argument named as Keras names them (``activation``, ``*_initializer``,
        ...) is made into its Keras object, as for Keras's own layers.
        """
        cls = self.layer_class(type_name)
        info = catalog.layer(type_name) if type_name not in self.custom else None
        kwargs = {}
        for arg, value in args.items():
            if info is not None:
                kind = info.args[arg].kind if arg in info.args else None
            else:
                kind = catalog.argument_kind(arg)
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
        if kind in catalog.KIND_MODULES and isinstance(value, (dict, str)):
            return self.object(catalog.KIND_MODULES[kind], value)
        return value

    def object(self, module: str, value: Any) -> Any:
        """``{type: Class, ...}`` to an instance of ``keras.<module>.Class``; names pass through."""
        if isinstance(value, str):
            if value in self.custom:
                return self.custom[value]
            if value in catalog.object_names(module) or catalog.object_class(module, value) is not None:
                return value  # names: Keras resolves them inside the matching module
            found = self.registry.get(value)  # keras_hub>gelu_approximate
            return value if found is None else found
        if not isinstance(value, dict):
            return value
        args = dict(value)
        type_name = args.pop("type")
        if type_name in self.custom or catalog.object_class(module, type_name) is None:
            found = self.custom_object(type_name)
            if found is not None:
                return found(**args)
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
