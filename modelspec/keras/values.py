"""Spec values and Keras objects, both ways: :class:`Deserializer` makes Keras objects of a spec's values
(the compiler), :class:`Serializer` writes Keras objects as spec values (export).

One mapping read in two directions, as ``keras.saving`` keeps
``serialize_keras_object`` and ``deserialize_keras_object``: a spec's object
is a name where the name gives the same object back, else ``{type: Class,
...arguments}``. Classes resolve only from ``keras.layers`` (and the other
``keras.*`` object modules) through the catalog's allowlist, or from the
caller's custom objects; a spec never names an import path.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from .. import catalog
from ..spec import per_output
from ..spec.registry import Registry, is_layer_class

OBJECT_MODULES = {keras_module: module for module, keras_module in catalog.KERAS_MODULES.items()}
"""The module a serialized Keras object names -> the catalog's object module (the catalog's pair, read back)."""


class Deserializer:
    """Makes the Keras objects a spec's values describe (spec value -> Keras object).

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
        owner = catalog.keras_module(self.keras, module)
        return getattr(owner, type_name)(**args)

    def per_output(self, module: str, value: Any) -> Any:
        """An object, a list of them, or output name -> object(s)."""
        if isinstance(value, list):
            return [self.per_output(module, v) for v in value]
        if per_output(value):
            return {k: self.per_output(module, v) for k, v in value.items()}
        return self.object(module, value)


class Serializer:
    """Writes Keras objects, as their configs hold them, as spec values (Keras object -> spec value).

    Args:
        keras: The ``keras`` module.
        custom_objects: User classes by name: named without a warning.
        report: Where problems go (``error``/``warning`` at a path).
        layer_entry: Writes a layer serialized inside a value (a wrapper's
            ``layer``) as an entry, from its name, its serialized form and its path.
    """

    def __init__(
        self,
        keras: Any,
        custom_objects: dict[str, Any],
        report: Any,
        layer_entry: Callable[[str, dict[str, Any], tuple], Any],
    ):
        self.keras = keras
        self.custom = custom_objects
        self.report = report
        self.layer_entry = layer_entry
        self.object_names: dict[str, tuple[str, Any] | None] = {}

    def policy(self, value: Any) -> str | None:
        """A dtype policy as its name; None for float32 (the default)."""
        if isinstance(value, dict):
            value = (value.get("config") or {}).get("name", value.get("class_name"))
        name = getattr(value, "name", value)
        if name is None or name == "float32":
            return None
        return str(name)

    def value(self, value: Any, kind: str | None, where: tuple) -> Any:
        """A config value as spec data: Keras objects as names or ``{type: ...}``, tuples as lists."""
        if isinstance(value, dict) and "class_name" in value and ("config" in value or "module" in value):
            return self.serialized(value, kind, where)
        if isinstance(value, dict):
            return {str(k): self.value(v, None, (*where, str(k))) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            inner = kind if kind == "layer" else None
            return [self.value(v, inner, (*where, i)) for i, v in enumerate(value)]
        if isinstance(value, str):
            return escaped(value)
        if value is None or isinstance(value, (bool, int)):
            return value
        if isinstance(value, float):
            return value
        if hasattr(value, "tolist") and hasattr(value, "dtype"):  # numpy scalars and arrays
            return self.value(value.tolist(), kind, where)
        if isinstance(value, self.keras.layers.Layer):
            return self.value(self.keras.saving.serialize_keras_object(value), "layer", where)
        if self.keras.ops.is_tensor(value) and not isinstance(value, self.keras.KerasTensor):
            # a backend tensor held by an operation (Gemma's sqrt(hidden_dim)): its numbers, which
            # build makes a constant of the first input's dtype again
            return self.value(self.keras.ops.convert_to_numpy(value).tolist(), kind, where)
        self.report.error(
            where,
            "export-unsupported",
            f"the value is a {type(value).__name__}, which a spec cannot hold (numbers, strings, lists and mappings)",
        )
        return None

    def refuse_lambda(self, where: tuple) -> None:
        """A Python lambda (Keras keeps its bytecode): refused, never written into a spec."""
        self.report.error(
            where, "export-unsupported", "the value is a Python lambda, which a spec cannot hold"
        )

    def serialized(self, value: dict[str, Any], kind: str | None, where: tuple) -> Any:
        """A Keras object as ``serialize_keras_object`` writes it in a config."""
        class_name = str(value["class_name"])
        module = str(value.get("module") or "")
        config = value.get("config")
        if class_name in ("__numpy__", "__tensor__") and isinstance(config, dict):
            return self.value(config.get("value"), None, where)
        if class_name == "__tuple__" and isinstance(config, dict):
            return self.value(list(config.get("value") or []), kind, where)
        if class_name == "DTypePolicy" or class_name.endswith("DTypePolicy"):
            return self.policy(value) or "float32"
        if class_name == "__lambda__":
            return self.refuse_lambda(where)
        if class_name == "function":  # an activation (or another function) saved by name
            name = str(config if isinstance(config, str) else value.get("registered_name") or "")
            if name not in catalog.object_names("activations") and name not in self.custom:
                self.report.warning(
                    where,
                    "export-custom-layer",
                    f"the function {name!r} is not a Keras activation: the spec names it, and building "
                    "needs it registered (custom_objects= or @modelspec.register)",
                )
            return name
        if kind == "layer" or module.startswith("keras.layers") or module.startswith("keras.src.layers"):
            return self.layer_entry(str((config or {}).get("name", class_name)), value, where)
        target = OBJECT_MODULES.get(module) or catalog.KIND_MODULES.get(kind or "")
        if target is None:
            self.report.error(
                where,
                "export-unsupported",
                f"the value is a Keras {class_name} object ({module or 'unknown module'}), which a spec cannot hold",
            )
            return None
        return self.object(target, class_name, dict(config or {}), where)

    def object(self, module: str, class_name: str, config: dict[str, Any], where: tuple) -> Any:
        if class_name == "__lambda__":  # a compile setting given as a lambda
            return self.refuse_lambda(where)
        info = catalog.object_class(module, class_name)
        args = {k: self.value(v, None, (*where, k)) for k, v in config.items()}
        if info is None:
            if class_name not in self.custom:
                self.report.warning(
                    where,
                    "export-custom-layer",
                    f"{class_name} is not a class of keras.{module}: the spec names it, and building needs it "
                    "registered (custom_objects= or @modelspec.register)",
                )
            return {"type": class_name, **args} if args else class_name
        name = self.object_name(module, class_name, config)
        if name is not None:
            return name
        for key in [k for k in args if k not in info.args]:
            if key == "name" or args[key] is None:  # Keras's own name for it (adam_3), or unset
                del args[key]
            else:
                self.report.error(
                    (*where, key),
                    "export-unsupported",
                    f"Keras describes this {class_name} with {key!r}, which its constructor does not take",
                )
        for key in list(args):
            arg = info.args.get(key)
            if arg is not None and arg.default is not catalog.MISSING and plain_equal(args[key], arg.default):
                del args[key]
        return {"type": class_name, **args}

    def named_object(self, module: str, name: str) -> tuple[str, Any] | None:
        """(class name, config) of what ``keras.<module>.get(name)`` gives, or None."""
        key = f"{module}:{name}"
        if key not in self.object_names:
            owner = catalog.keras_module(self.keras, module)
            try:
                data = self.keras.saving.serialize_keras_object(owner.get(name))
            except Exception:  # noqa: BLE001 - a name this Keras cannot make
                data = None
            self.object_names[key] = (
                (str(data["class_name"]), plainish(data.get("config")))
                if isinstance(data, dict) and "class_name" in data
                else None
            )
        return self.object_names[key]

    def object_name(self, module: str, class_name: str, config: dict[str, Any]) -> str | None:
        """A name that gives this very object back (``glorot_uniform``, ``l2``), or None.

        The candidates are the class's own name and its snake-case spellings:
        making every name a module has would import what some need (SciPy for ``stft``).
        """
        config = plainish(config)
        wanted = class_name.lower()
        candidates = [n for n in catalog.object_names(module) if n.replace("_", "").lower() == wanted]
        for name in sorted(candidates, key=lambda n: (not n.islower(), n)):
            named = self.named_object(module, name)
            if named is not None and named[0] == class_name and plain_equal(named[1], config):
                return name
        return None

    def canonical(self, module: str, name: str) -> Any:
        """What a name stands for, to compare a value with a default written differently."""
        named = self.named_object(module, name)
        return name if named is None else (named[0], json.dumps(named[1], sort_keys=True, default=str))


def plain_equal(a: Any, b: Any) -> bool:
    """Equality of plain values where ``True != 1`` and tuples equal lists."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(plain_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(plain_equal(a[k], b[k]) for k in a)
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    return type(a) is type(b) and a == b


def plainish(value: Any) -> Any:
    """A config value with tuples as lists and numpy values as Python ones, for comparisons."""
    if isinstance(value, dict):
        return {str(k): plainish(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plainish(v) for v in value]
    if hasattr(value, "tolist") and hasattr(value, "dtype"):
        return value.tolist()
    return value


def escaped(text: str) -> str:
    """A string as spec text: ``${`` would start an expression."""
    return text.replace("${", "$${")
