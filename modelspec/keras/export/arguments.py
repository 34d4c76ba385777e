"""A layer's constructor arguments as a spec writes them: only those that differ from its defaults.

The catalog gives a ``keras.layers`` class's defaults (a class from elsewhere:
its constructor's signature). Settings a layer works out by itself (a
``MultiHeadAttention``'s ``value_dim``, a pooling's ``strides``) are left out
when a layer made without them has them as they are; ``kernel_size: [3, 3]``
is written ``3`` where the layer makes the same of it: both checked by making
the layer again.
"""

from __future__ import annotations

import copy
import inspect
from typing import Any

from ... import catalog
from ...spec.registry import Registry
from ..messages import keras_message
from ..values import Serializer, plain_equal, plainish
from .bodies import Item
from .refusals import refused_layer_message
from .report import Report

WRAPPER_SET = frozenset({"zero_output_for_mask"})
"""Settings a wrapper (Bidirectional) forces on the layer it wraps: not written on the nested entry."""


class Arguments:
    """Writes layers as ``{type, ...arguments}`` entries.

    Args:
        keras: The ``keras`` module.
        custom_objects: User classes by name: named without a warning.
        report: Where problems go.
    """

    def __init__(self, keras: Any, custom_objects: dict[str, Any], report: Report):
        self.keras = keras
        self.custom = custom_objects
        self.report = report
        self.values = Serializer(keras, custom_objects, report, self.serialized_entry)
        self.layer_types: dict[type, str | None] = {}
        self.registry = Registry(custom_objects)

    def serialized_entry(self, name: str, serialized: dict[str, Any], where: tuple) -> dict[str, Any] | None:
        """A layer serialized inside another's config (a wrapper's ``layer``) as an entry."""
        return self.layer_entry(None, name, serialized, where)

    def layer_type(self, cls: type) -> str | None:
        """The catalog's name of a ``keras.layers`` class, or None for a class from elsewhere."""
        if cls not in self.layer_types:
            found = None
            if (
                catalog.layer(cls.__name__) is not None
                and getattr(self.keras.layers, cls.__name__, None) is cls
            ):
                found = cls.__name__
            self.layer_types[cls] = found
        return self.layer_types[cls]

    def layer_item(self, layer: Any, where: tuple) -> Item | None:
        entry = self.layer_entry(type(layer), layer.name, None, where, layer)
        if entry is None:
            return None
        type_name = entry.pop("type")
        return Item("layer", layer.name, type=type_name, args=entry)

    def layer_entry(
        self, cls: type | None, name: str, serialized: dict[str, Any] | None, where: tuple, layer: Any = None
    ) -> dict[str, Any] | None:
        """``{type, ...arguments}`` of a layer object, or of one serialized in another's config."""
        if cls is not None:
            class_name = cls.__name__
            builtin = self.layer_type(cls)
        else:
            assert serialized is not None
            class_name = str(serialized.get("class_name"))
            module = str(serialized.get("module") or "")
            builtin = (
                class_name if module.startswith("keras") and catalog.layer(class_name) is not None else None
            )
            if builtin is not None:
                cls = getattr(self.keras.layers, builtin, None)
        refused = catalog.refused(class_name)
        if builtin is None and (
            (refused is not None and (cls is None or getattr(self.keras.layers, class_name, None) is cls))
            or class_name in catalog.CODE_LAYERS
            or (cls is not None and isinstance(layer, getattr(self.keras.layers, "Lambda", ())))
        ):
            self.report.error(where, "export-refused-layer", refused_layer_message(name, class_name))
            return None
        type_name = builtin or class_name
        if builtin is None and cls is not None:
            found = self.registered_name(cls, name, where)
            if found is False:
                return None
            type_name = found or class_name
        if builtin is None:
            registered = type_name in self.custom
            if not registered:
                self.report.warning(
                    where,
                    "export-custom-layer",
                    f"layer '{name}' is a {class_name}, a class from outside keras.layers "
                    f"({cls.__module__ if cls is not None else serialized.get('module')}): the spec names it, and "  # type: ignore[union-attr]
                    "building needs it registered (custom_objects=, @modelspec.register, or --plugin)",
                )
        if serialized is not None:
            config = dict(serialized.get("config") or {})
        else:
            try:
                config = layer.get_config()
            except NotImplementedError:
                self.report.error(
                    where,
                    "export-unsupported",
                    f"layer '{name}' ({class_name}) has no get_config(): its arguments cannot be read",
                )
                return None
            except Exception as e:  # noqa: BLE001 - the library's bug (Llama's get_config in KerasHub 0.32)
                self.report.error(
                    where,
                    "export-library-config",
                    f"layer '{name}' ({class_name}, module {cls.__module__ if cls else '?'}): its get_config() "
                    f"raises {keras_message(e)}, so its arguments cannot be read (a bug of the library)",
                )
                return None
        args = self.arguments(builtin, cls, config, where, nested=serialized is not None, layer=layer)
        if args is None:
            return None
        if builtin is None and cls is not None and serialized is None:
            named = self.constructor_names(cls)
            kept = {k: v for k, v in config.items() if k in args or k in named or k == "name"}
            if not self.config_remakes(cls, name, kept, where):
                return None
        return {"type": type_name, **args}

    def config_remakes(self, cls: Any, name: str, config: dict[str, Any], where: tuple) -> bool:
        """Whether a library layer's config makes the layer again (``cls.from_config``), as ``build`` will.

        ``config`` is what the spec keeps (settings the layer works out again
        left out). Some do not (KerasHub 0.32's ``GPTNeoXDecoder``): Keras's
        own loading of the saved model fails the same way. Said here, at the layer, with
        the library's exception.
        """
        try:
            cls.from_config(copy.deepcopy(config))
        except Exception as e:  # noqa: BLE001 - whatever the library raises is its own bug
            self.report.error(
                where,
                "export-library-config",
                f"layer '{name}' ({cls.__name__}, module {cls.__module__}): its own config does not make "
                f"it again: {cls.__name__}.from_config(layer.get_config()) raises {keras_message(e)} "
                "(a bug of the library: Keras cannot load it from a saved model either)",
            )
            return False
        return True

    def registered_name(self, cls: type, name: str, where: tuple) -> str | bool | None:
        """The name a spec gives a class from outside ``keras.layers``: as Keras registers it
        (``keras_hub>TransformerEncoder``), or as the caller's custom objects name it.

        None when nothing names it (the class name is written, with a warning);
        False, reported, when that bare name means another class.
        """
        names = [k for k, v in self.custom.items() if v is cls]
        registered = self.keras.saving.get_registered_name(cls)
        if registered in names or (">" in registered and not names):
            return registered
        if cls.__name__ in names:
            return cls.__name__
        if names:
            return sorted(names, key=lambda k: (">" not in k, k))[0]
        other = self.registry.get(cls.__name__)
        if other is not None and other is not cls:
            where_from = getattr(other, "__module__", "?")
            self.report.error(
                where,
                "export-custom-layer",
                f"layer '{name}' is a {cls.__name__} from module {cls.__module__}, which no name registers: "
                f"the name {cls.__name__} means another class (from module {where_from}), so a spec cannot "
                "name this one",
                hint="register it under a name of its own (custom_objects= or @modelspec.register)",
            )
            return False
        return None

    def arguments(
        self,
        builtin: str | None,
        cls: type | None,
        config: dict[str, Any],
        where: tuple,
        *,
        nested: bool = False,
        layer: Any = None,
    ) -> dict[str, Any] | None:
        info = catalog.layer(builtin) if builtin else None
        defaults: dict[str, Any] = {}
        if info is not None:
            defaults = {k: a.default for k, a in info.args.items() if a.default is not catalog.MISSING}
        elif cls is not None:
            try:
                params = inspect.signature(cls.__init__).parameters
                defaults = {
                    k: p.default
                    for k, p in params.items()
                    if p.default is not inspect.Parameter.empty and is_plain(p.default)
                }
            except (TypeError, ValueError):
                pass
            defaults.setdefault("trainable", True)
            defaults.setdefault("autocast", True)
        args: dict[str, Any] = {}
        raw: dict[str, Any] = {}
        unknown: list[str] = []
        for key, value in config.items():
            if key == "name":
                continue
            if key == "dtype":
                policy = self.values.policy(value)
                if policy is not None:
                    args[key] = policy
                continue
            if info is not None and key not in info.args:
                unknown.append(key)
                continue
            kind = info.args[key].kind if info is not None else None
            raw[key] = value
            args[key] = self.values.value(value, kind, (*where, key))
        if nested:  # a wrapper sets these on the layer it wraps (Bidirectional: zero_output_for_mask)
            unknown = [k for k in unknown if k not in WRAPPER_SET]
        if info is None and cls is not None:
            self.drop_build_settings(cls, config, args, layer)
        if unknown and not self.derived_by_itself(cls, config, unknown):
            self.report.error(
                (*where, unknown[0]),
                "export-unsupported",
                f"Keras describes this {builtin} with {', '.join(map(repr, unknown))}, which its constructor "
                "does not list, and leaving it out makes a different layer",
            )
            return None
        if info is not None and cls is not None:
            self.collapse(cls, config, args, layer)
        for key in list(args):
            if key in defaults and key != "dtype":
                kind = info.args[key].kind if info is not None and key in info.args else None
                if self.same_default(kind, args[key], defaults[key]) or (
                    key in raw and plain_equal(plainish(raw[key]), defaults[key])
                ):
                    del args[key]
        derived = [
            k
            for k in args
            if defaults.get(k, 0) is None
            and args[k] is not None
            and k in raw
            and (info is None or k not in info.args or info.args[k].kind is None)
        ]  # settings left None that the layer works out (value_dim, a pooling's strides), never objects
        if derived and cls is not None and info is not None:  # value_dim: the key_dim it defaults to
            if self.derived_by_itself(cls, config, derived, layer):
                for k in derived:
                    del args[k]
            else:
                for k in derived:
                    if self.derived_by_itself(cls, config, [k], layer):
                        del args[k]
        if (
            builtin == "Bidirectional"
            and "backward_layer" in args
            and self.derived_backward(config, where) == args["backward_layer"]
        ):
            del args["backward_layer"]
        if info is not None:
            order = {k: i for i, k in enumerate(info.args)}
            args = dict(sorted(args.items(), key=lambda kv: order.get(kv[0], len(order))))
        return args

    def drop_build_settings(
        self, cls: type, config: dict[str, Any], args: dict[str, Any], layer: Any
    ) -> None:
        """Leave out what a library layer's config holds beyond its constructor's arguments, when the layer
        works it out again once built (KerasHub's ``decoder_sequence_shape``: the shapes it was built on)."""
        named = self.constructor_names(cls)
        extra = [k for k in args if named and k not in named and k != "dtype"]
        if extra and self.derived_by_itself(cls, config, extra, layer):
            for k in extra:
                del args[k]

    def constructor_names(self, cls: type) -> set[str]:
        """The arguments a layer class's constructor names (with ``keras.layers.Layer``'s); empty when unknown."""
        try:
            named = set(inspect.signature(cls.__init__).parameters)
            return named | set(inspect.signature(self.keras.layers.Layer.__init__).parameters)
        except (TypeError, ValueError):
            return set()

    def same_default(self, kind: str | None, value: Any, default: Any) -> bool:
        if kind == "activation":
            return (value or "linear") == (default or "linear")
        if kind in catalog.KIND_MODULES and isinstance(value, str) and isinstance(default, str):
            module = catalog.KIND_MODULES[kind]
            return self.values.canonical(module, value) == self.values.canonical(module, default)
        if kind == "layer" and isinstance(value, dict) and isinstance(default, dict):
            return value == default
        return plain_equal(value, default)

    def derived_by_itself(
        self, cls: type | None, config: dict[str, Any], keys: list[str], layer: Any = None
    ) -> bool:
        """Whether the layer made without ``keys`` has them as they are (settings it derives, built or not).

        ``MultiHeadAttention``'s ``value_dim`` is its ``key_dim`` when not
        given; its ``attention_axes`` are known once it is built on the
        original's shapes.
        """
        if cls is None:
            return all(config[k] in (None, False) for k in keys)
        return self.remade_agrees(
            cls, {k: v for k, v in config.items() if k not in keys}, config, keys, layer
        )

    def remade_agrees(
        self, cls: type, changed: dict[str, Any], config: dict[str, Any], keys: list[str], layer: Any
    ) -> bool:
        """Whether a layer made from ``changed`` has ``keys`` as ``config`` says: as made, or once built like ``layer``."""
        try:
            fresh = cls.from_config(changed)  # type: ignore[attr-defined]
            remade = fresh.get_config()
            if not self.same_keys(remade, config, keys) and layer is not None and layer.built:
                build = layer.get_build_config()
                if build:
                    fresh.build_from_config(build)
                    remade = fresh.get_config()
        except Exception:  # noqa: BLE001 - it cannot be made so
            return False
        return self.same_keys(remade, config, keys)

    @staticmethod
    def same_keys(remade: dict[str, Any], config: dict[str, Any], keys: list[str]) -> bool:
        return all(plain_equal(plainish(remade.get(k)), plainish(config[k])) for k in keys)

    def collapse(self, cls: type, config: dict[str, Any], args: dict[str, Any], layer: Any = None) -> None:
        """``kernel_size: [3, 3]`` as ``3`` where the layer makes the same of it (checked by making one)."""
        candidates = {
            k: numbers[0]
            for k, v in args.items()
            if isinstance(v, list) and (numbers := leaves(v))
            and all(type(x) is int and x == numbers[0] for x in numbers)
        }  # fmt: skip
        if not candidates:
            return

        def collapses(keys: list[str]) -> bool:
            return self.remade_agrees(
                cls, {**config, **{k: candidates[k] for k in keys}}, config, keys, layer
            )

        keys = list(candidates)
        chosen = keys if collapses(keys) else [k for k in keys if collapses([k])]
        for k in chosen:
            args[k] = candidates[k]

    def derived_backward(self, config: dict[str, Any], where: tuple) -> Any:
        """The ``backward_layer`` Bidirectional makes by itself from its ``layer``."""
        try:
            layer = self.keras.saving.deserialize_keras_object(config["layer"], custom_objects=self.custom)
            backward = self.keras.layers.Bidirectional(layer).backward_layer
            serialized = self.keras.saving.serialize_keras_object(backward)
        except Exception:  # noqa: BLE001 - not derivable: the spec keeps the backward layer
            return None
        return self.values.value(serialized, "layer", where)


def is_plain(value: Any) -> bool:
    return value is None or isinstance(value, (bool, int, float, str, list, tuple))


def leaves(value: Any) -> list[Any]:
    if isinstance(value, list):
        return [x for v in value for x in leaves(v)]
    return [value]
