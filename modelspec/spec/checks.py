"""The spec stage's catalog checks: layer types, constructor and call arguments, Keras objects.

Runs on a :class:`ModelSpec` whose shape pydantic has already checked (or a
spec made or changed in Python), and returns problems located at each
entry's origin; nothing here imports Keras.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Iterable
from typing import Any

from .. import catalog
from ..errors import Collector, Origin, Problem, received, shown
from .models import LayerSpec, ModelSpec, per_output
from .registry import SEPARATOR, Registry, constructor_parameters, is_layer_class
from .subscript import SubscriptError, parse_key

_NOUN = {
    "activations": "activation",
    "initializers": "initializer",
    "regularizers": "regularizer",
    "constraints": "constraint",
    "optimizers": "optimizer",
    "schedules": "learning-rate schedule",
    "losses": "loss",
    "metrics": "metric",
    "callbacks": "callback",
}
_MAPPING_ONLY = ("inputs", "call", "share")


def check_spec(spec: ModelSpec, custom_objects: dict[str, Any]) -> list[Problem]:
    """Every catalog problem of ``spec``: layer entries, compile and train objects."""
    return _Checker(spec, custom_objects).run()


class _Checker(Collector):
    def __init__(self, spec: ModelSpec, custom_objects: dict[str, Any]):
        super().__init__()
        self.spec = spec
        self.custom = custom_objects
        self.registry = Registry(custom_objects)

    def run(self) -> list[Problem]:
        spec = self.spec
        if isinstance(spec.layers, list):
            for i, entry in enumerate(spec.layers):
                if entry is None:  # an entry with schema errors (see convert._check_valid_parts)
                    continue
                at = spec.entry_origin(i)
                for k in _MAPPING_ONLY:
                    if getattr(entry, k) is not None:
                        self.error(
                            at.at(k),
                            "misplaced-key",
                            f"'{k}' belongs to the mapping form of 'layers' (a DAG)",
                            "in a list (a linear stack) each layer takes the one above; "
                            "write 'layers' as a mapping of node name -> layer to connect nodes freely",
                            key=True,
                        )
                self.entry(entry, at)
        else:
            for name, entry in spec.layers.items():
                if entry is None:
                    continue
                at = spec.entry_origin(name)
                if entry.name is not None:
                    self.error(
                        at.at("name"),
                        "misplaced-key",
                        "'name' belongs to the list form of 'layers'",
                        f"in a mapping the key is the name: this node is {shown(name)}",
                        key=True,
                    )
                self.entry(entry, at)
        if spec.compile is not None:
            self.compile()
        if spec.train is not None:
            for i, callback in enumerate(spec.train.callbacks):
                self.object("callbacks", callback, spec.at("train", "callbacks", i))
        return self.problems

    # -- layers ------------------------------------------------------------

    def entry(self, entry: LayerSpec, at: Origin) -> None:
        if entry.share is not None:
            extra = [k for k in ("type", "op") if getattr(entry, k) is not None] + list(entry.args)
            for k in extra:
                self.error(
                    at.at(k),
                    "share-with-arguments",
                    f"a 'share' entry reuses the layer of node '{entry.share}' and takes no '{k}'",
                    "shared layers have one configuration: set it on the node being shared",
                    key=True,
                )
            return
        if entry.op is not None:
            self.operation(entry, at)
            return
        if entry.type is None:
            self.error(at, "missing-type", "'type' is required: a Keras layer class such as Dense", key=True)
            return
        self.layer(entry.type, entry.args, at)
        self.call_arguments(entry.type, entry, at)

    def operation(self, entry: LayerSpec, at: Origin) -> None:
        """An ``op`` node: a ``keras.ops`` function from the allowlist, its inputs and keyword arguments."""
        name = entry.op
        for key in ("type", "call"):
            if getattr(entry, key) is not None:
                self.error(
                    at.at(key),
                    "misplaced-key",
                    f"an 'op' entry calls keras.ops.{name} and takes no '{key}'",
                    key=True,
                )
        info = catalog.op(name)  # type: ignore[arg-type]
        if info is None:
            near = self.near(str(name), catalog.op_names(), "ops")
            self.error(
                at.at("op"),
                "unknown-op",
                f"{shown(name)} is not one of the keras.ops functions a spec may call",
                f"did you mean '{near}'?"
                if near
                else "ops are tensor functions such as add, multiply, mean, reshape (the catalog lists them)",
            )
            return
        inputs = entry.inputs
        positional = info.positional
        if isinstance(inputs, dict):
            for key in inputs:
                if key not in info.args:
                    self.error(
                        at.at("inputs", key), "unknown-argument", f"keras.ops.{name} has no parameter {shown(key)}",
                        self.near.hint(key, info.args, f"op:{name}", f"its parameters: {', '.join(info.args)}"), key=True,
                    )  # fmt: skip
        elif info.variadic is None:
            count = len(inputs) if isinstance(inputs, list) else 1
            if count > len(positional):
                self.error(
                    at.at("inputs") if inputs is not None else at, "op-inputs",
                    f"keras.ops.{name} takes at most {len(positional)} input{'s' * (len(positional) != 1)} "
                    f"({', '.join(positional)}), got {count}",
                    f"an op node's inputs are its tensor parameters in order: {', '.join(positional)}",
                )  # fmt: skip
        # No ``inputs``: one tensor, the node above.
        given = list(info.bind(inputs if inputs is not None else [None]))
        for key, value in entry.args.items():
            if key not in info.args:
                self.error(
                    at.at(key), "unknown-argument", f"keras.ops.{name} has no parameter {shown(key)}",
                    self.near.hint(key, info.args, f"op:{name}", f"its parameters: {', '.join(info.args)}"), key=True,
                )  # fmt: skip
            elif key in given:
                self.error(
                    at.at(key),
                    "duplicate-call-argument",
                    f"{shown(key)} is given twice: in 'inputs' and here",
                    key=True,
                )
            elif info.args[key].kind == "tensor":
                self.constant(value, at.at(key), f"keras.ops.{name}")
            elif name == "get_item" and key == "key":
                self.subscript(value, at.at(key))
            else:
                wrong = _type_mismatch(info.args[key].type, value)
                if wrong:
                    self.error(at.at(key), "wrong-argument-type", f"expected {wrong}, got {received(value)}")
                elif key == "dtype" and isinstance(value, str) and value not in catalog.dtypes():
                    self.error(
                        at.at(key), "invalid-value", f"keras.ops.{name}: {shown(value)} is not a Keras dtype",
                        self.near.hint(value, catalog.dtypes(), "dtypes", f"the dtypes: {', '.join(catalog.dtypes())}"),
                    )  # fmt: skip
                else:
                    self.in_range(info.args[key], value, at.at(key), f"keras.ops.{name}")
        missing = [n for n, a in info.args.items() if a.required and n not in given and n not in entry.args]
        if missing:
            self.error(
                at, "op-inputs", f"keras.ops.{name} needs {', '.join(map(repr, missing))}",
                "tensors come from 'inputs' (a list in order, or parameter -> node); constants are keys of the entry",
                key=True,
            )  # fmt: skip

    def constant(self, value: Any, at: Origin, owner: str) -> None:
        """A constant for a tensor parameter: a number or a nested list of numbers, the same length at each level."""
        if _array_shape(value) is None:
            self.error(
                at,
                "wrong-argument-type",
                f"{owner}: a constant tensor is a number or a nested list of numbers "
                f"(all rows the same length), got {received(value)}",
                "tensors from other nodes come through 'inputs'",
            )

    def subscript(self, value: Any, at: Origin) -> None:
        """The key of a ``get_item`` op: ``"[:, 0, :]"``, read by :func:`~modelspec.spec.subscript.parse_key`."""
        if not isinstance(value, str):
            self.error(
                at,
                "wrong-argument-type",
                f'the key of get_item is Python subscript syntax in a string, such as "[:, 0, :]", got {received(value)}',
            )
            return
        try:
            parse_key(value)
        except SubscriptError as e:
            p = at.problem("invalid-key", f"get_item: {e.message}", f"the key as written: {value}")
            if p.column is not None and p.source_line is not None:  # point inside the string
                quoted = p.source_line[p.column - 1 : p.column] in ("'", '"')
                column = p.column + quoted + e.offset
                p = dataclasses.replace(p, column=column, end_column=column + e.length)
            self.problems.append(p)

    def call_arguments(self, type_name: str, entry: LayerSpec, at: Origin) -> None:
        """Keys of ``call`` and of an ``inputs`` mapping must be parameters of the layer's ``call``."""
        info = catalog.layer(type_name)
        if info is None or info.call_varargs:
            return  # unknown (reported already), custom, or a call that takes anything
        mapped = entry.inputs if isinstance(entry.inputs, dict) else {}
        for field_name, keys in (("inputs", mapped), ("call", entry.call or {})):
            for key in keys:
                if key not in info.call:
                    near = self.near(key, info.call, f"call:{type_name}")
                    self.error(
                        at.at(field_name, key),
                        "unknown-call-argument",
                        f"{type_name} is not called with an argument {shown(key)}",
                        f"did you mean '{near}'?" if near else f"its call takes: {', '.join(info.call)}",
                        key=True,
                    )
        for key in set(mapped) & set(entry.call or {}):
            self.error(
                at.at("call", key),
                "duplicate-call-argument",
                f"the call argument {shown(key)} is given twice: in 'inputs' and in 'call'",
                key=True,
            )

    def layer(self, type_name: str, args: dict[str, Any], at: Origin) -> None:
        """Check one layer type and its constructor arguments."""
        if type_name in self.custom and SEPARATOR not in type_name:  # the caller's own name for it
            self.custom_layer(self.custom[type_name], args, at)
            return
        if catalog.layer(type_name) is None and catalog.refused(type_name) is None:
            found = self.registered(type_name, at.at("type"), "layer class")
            if found is not None and not is_layer_class(found):
                self.error(
                    at.at("type"),
                    "unknown-layer-type",
                    f"{shown(type_name)} is registered, but it is not a Keras layer class",
                )
            elif found is not None:
                self.custom_layer(found, args, at)
            if found is not None or SEPARATOR in type_name or self.registry.find(type_name):
                return
        reason = catalog.refused(type_name)
        if reason is not None:
            self.error(
                at.at("type"),
                "refused-layer-type",
                f"the layer type {shown(type_name)} is not allowed: {reason}",
            )
            return
        info = catalog.layer(type_name)
        if info is None and "." in type_name:
            self.dotted("layer type", type_name, at.at("type"), self.layer_names())
            return
        if info is None:
            near = self.near(type_name, self.layer_names(), "layers")
            self.error(
                at.at("type"),
                "unknown-layer-type",
                f"unknown layer type {shown(type_name)}",
                f"did you mean '{near}'?" if near else "see `modelspec schema` for the layer types",
            )
            return
        self.arguments(info.args, args, at, f"{type_name}")

    def layer_names(self) -> list[str]:
        """The layer types a spec may name, for did-you-mean: Keras's, the caller's, and bare registered names."""
        registered = [
            bare
            for bare, keys in self.registry.bare().items()
            if len(keys) == 1 and is_layer_class(self.custom[keys[0]])
        ]
        return [*catalog.layer_types(), *(k for k in self.custom if SEPARATOR not in k), *registered]

    def registered(self, name: str, at: Origin, noun: str) -> Any:
        """The registered object ``name`` means (``package>Class``, or a bare name only one has), else None.

        A bare name that several registered objects have, and a ``package>Class`` no
        loaded library registered, are reported here.
        """
        keys = self.registry.find(name)
        if len(keys) == 1:
            return self.custom[keys[0]]
        if len(keys) > 1:
            self.error(
                at,
                "ambiguous-type",
                f"{shown(name)} names {len(keys)} registered classes: {', '.join(keys)}",
                f"write the registered name, e.g. '{keys[0]}'",
            )
        elif SEPARATOR in name:
            package = name.split(SEPARATOR, 1)[0]
            if package in self.registry.packages():
                near = self.near(name, self.custom, f"registered:{noun}")
                hint = f"did you mean '{near}'?" if near else f"'{package}' registers no such name"
            else:
                hint = (
                    f"load the library that registers it: --plugin {package} on the command line, "
                    f"`import {package}` in Python (or custom_objects=)"
                )
            self.error(at, "unregistered-type", f"{shown(name)} is not a registered {noun}", hint)
        return None

    def dotted(self, noun: str, name: str, at: Origin, known: Iterable[str]) -> None:
        """A dotted import path where a name belongs: refused, never imported."""
        last = name.rsplit(".", 1)[-1]
        near = self.near(last, known, f"dotted:{noun}")
        self.error(
            at,
            "dotted-path",
            f"the {noun} {shown(name)} is a dotted import path; a spec never imports Python code",
            f"write the Keras name alone: '{near}'"
            if near
            else "custom classes come from the Python side: custom_objects=, modelspec.register or --plugin",
        )

    def custom_layer(self, cls: Any, args: dict[str, Any], at: Origin) -> None:
        """A user or library layer: arguments checked against its constructor, Keras objects among them as usual.

        The arguments are those of its ``__init__``; where that passes ``**kwargs``
        on, those of its base classes, up to ``keras.layers.Layer`` (whose own
        keywords are few and checked by Keras). An argument named as Keras names
        them (``activation``, ``*_initializer``, ``*_regularizer``,
        ``*_constraint``, ``layer``) holds that kind of object.
        """
        params = constructor_parameters(cls)
        if params is None:
            return
        closed, allowed = params
        for name, value in args.items():
            if name in allowed or not closed:
                kind = catalog.argument_kind(name)
                if kind is not None:
                    self.value(
                        catalog.ArgInfo(name, False, None, None, kind, None), value, at.at(name), cls.__name__
                    )
                continue
            near = self.near(name, allowed, f"args:{cls.__module__}.{cls.__name__}")
            self.error(
                at.at(name),
                "unknown-argument",
                f"unknown argument {shown(name)} for {cls.__name__}",
                f"did you mean '{near}'?" if near else _choices(a for a in allowed if a != "self"),
                key=True,
            )
        for name, p in allowed.items():
            if (
                p.default is inspect.Parameter.empty
                and p.kind is p.POSITIONAL_OR_KEYWORD
                and name not in args
            ):
                self.error(
                    at, "missing-argument", f"{cls.__name__} requires the argument {shown(name)}", key=True
                )

    def arguments(
        self, known: dict[str, catalog.ArgInfo], args: dict[str, Any], at: Origin, owner: str
    ) -> None:
        for name, value in args.items():
            info = known.get(name)
            if info is None:
                near = self.near(name, known, f"args:{owner}")
                self.error(
                    at.at(name),
                    "unknown-argument",
                    f"unknown argument {shown(name)} for {owner}",
                    f"did you mean '{near}'?" if near else _choices(known),
                    key=True,
                )
            else:
                self.value(info, value, at.at(name), owner)
        for name, info in known.items():
            if info.required and name not in args:
                self.error(at, "missing-argument", f"{owner} requires the argument {shown(name)}", key=True)

    def value(self, info: catalog.ArgInfo, value: Any, at: Origin, owner: str) -> None:
        if info.kind == "layer":
            self.nested(value, at)
        elif info.kind == "activation":
            if isinstance(value, dict):
                self.error(
                    at,
                    "wrong-argument-type",
                    "an activation is a name from keras.activations such as 'relu', got a mapping",
                )
            else:
                self.object("activations", value, at)
        elif info.kind in catalog.KIND_MODULES:
            self.object(catalog.KIND_MODULES[info.kind], value, at)
        else:
            wrong = _type_mismatch(info.type, value)
            if wrong:
                self.error(at, "wrong-argument-type", f"expected {wrong}, got {received(value)}")
            else:
                self.in_range(info, value, at, owner)

    def in_range(self, info: catalog.ArgInfo, value: Any, at: Origin, owner: str) -> None:
        """An int argument within what Keras takes: its catalog minimum, and a 64-bit integer."""
        huge = catalog.ints_beyond(value)
        if huge:
            bits = abs(huge[0]).bit_length()  # str() of a huge int is refused past 4,300 digits
            digits = f"{len(str(abs(huge[0])))}" if bits < 10_000 else f"about {int(bits * 0.30103):,}"
            self.error(
                at, "invalid-value",
                f"{owner}: {info.name} holds an integer of {digits} digits, beyond what Keras can hold "
                f"(a 64-bit integer, at most {catalog.INT64_MAX:,})",
            )  # fmt: skip
            return
        below = catalog.ints_below(value, info.minimum) if info.minimum is not None else []
        if below:
            rule = "must be at least 1" if info.minimum == 1 else "must not be negative"
            kind = "a size, count or step" if info.minimum == 1 else "a padding, cropping or count"
            self.error(
                at, "invalid-value", f"{owner}: {info.name} {rule}, got {received(value)}",
                f"{info.name} is {kind}: Keras refuses {below[0]}",
            )  # fmt: skip

    def nested(self, value: Any, at: Origin) -> None:
        """A layer entry inside an argument: ``layer: {type: LSTM, units: 64}``."""
        if isinstance(value, list):
            for i, item in enumerate(value):
                self.nested(item, at.at(i))
            return
        if not isinstance(value, dict):
            self.error(
                at,
                "wrong-argument-type",
                f"expected a layer entry such as {{type: LSTM, units: 64}}, got {received(value)}",
            )
            return
        args = dict(value)
        type_name = args.pop("type", None)
        args.pop("name", None)
        for k in _MAPPING_ONLY:
            if k in args:
                self.error(at.at(k), "misplaced-key", f"a nested layer entry takes no '{k}'", key=True)
                args.pop(k)
        if not isinstance(type_name, str):
            self.error(at, "missing-type", "'type' is required: a Keras layer class such as LSTM", key=True)
            return
        self.layer(type_name, args, at)

    # -- Keras objects -----------------------------------------------------

    def object(self, module: str, value: Any, at: Origin) -> None:
        """A Keras object: a name, or ``{type: Class, ...arguments}``."""
        noun = _NOUN[module]
        if value is None:
            return
        if isinstance(value, str):
            if value in self.custom or value in catalog.object_names(module):
                return
            if catalog.object_class(module, value) is not None:
                return
            if SEPARATOR in value or self.registry.find(value):  # keras_hub>gelu_approximate
                self.registered(value, at, noun)
                return
            reason = catalog.refused_object(module, value)
            if reason is not None:
                self.error(at, "refused-object", f"the {noun} {shown(value)} is not allowed: {reason}")
                return
            if "." in value:
                self.dotted(noun, value, at, [*catalog.object_names(module), *catalog.object_classes(module)])
                return
            near = self.near(value, [*catalog.object_names(module), *catalog.object_classes(module)], module)
            self.error(
                at,
                "unknown-object",
                f"unknown {noun} {shown(value)}",
                f"did you mean '{near}'?" if near else None,
            )
            return
        if not isinstance(value, dict):
            self.error(
                at,
                "wrong-argument-type",
                f"expected {_a(noun)}: a name or {{type: Class, ...}}, got {received(value)}",
            )
            return
        args = dict(value)
        type_name = args.pop("type", None)
        if not isinstance(type_name, str):
            self.error(
                at, "missing-type", f"{_a(noun)} written as a mapping needs 'type': the class name", key=True
            )
            return
        if type_name in self.custom:
            return
        if SEPARATOR in type_name or (
            catalog.object_class(module, type_name) is None and self.registry.find(type_name)
        ):
            self.registered(type_name, at.at("type"), f"{noun} class")
            return
        reason = catalog.refused_object(module, type_name)
        if reason is not None:
            self.error(
                at.at("type"), "refused-object", f"the {noun} {shown(type_name)} is not allowed: {reason}"
            )
            return
        info = catalog.object_class(module, type_name)
        if info is None and "." in type_name:
            self.dotted(f"{noun} class", type_name, at.at("type"), catalog.object_classes(module))
            return
        if info is None:
            near = self.near(type_name, catalog.object_classes(module), f"classes:{module}")
            self.error(
                at.at("type"),
                "unknown-object",
                f"unknown {noun} class {shown(type_name)}",
                f"did you mean '{near}'?" if near else f"see keras.{module} for the classes",
            )
            return
        schedule = catalog.schedule_argument(module, args)
        if schedule is not None:
            self.object("schedules", args.pop(schedule), at.at(schedule))
        self.arguments(info.args, args, at, type_name)

    def compile(self) -> None:
        c = self.spec.compile
        assert c is not None
        at = self.spec.at("compile")
        for field, module in catalog.COMPILE_MODULES.items():
            if field == "optimizer":  # one object; the others may be per output
                self.object(module, c.optimizer, at.at(field))
            else:
                self.per_output(module, getattr(c, field), at.at(field))

    def per_output(self, module: str, value: Any, at: Origin, *, top: bool = True) -> None:
        """An object, a list of them, or (at the top only) output name -> object(s).

        Inside a list or under an output name, a mapping is one object, so one
        without ``type`` is reported as such, not taken for more outputs.
        """
        if isinstance(value, list):
            for i, item in enumerate(value):
                self.object(module, item, at.at(i))
        elif top and per_output(value):
            for output, item in value.items():
                self.per_output(module, item, at.at(output), top=False)
        else:
            self.object(module, value, at)


def _type_mismatch(expected: str | None, value: Any) -> str | None:
    """What ``value`` should have been, when it plainly is not of type ``expected``."""
    if value is None or expected is None:
        return None
    if expected == "int" and (isinstance(value, bool) or not isinstance(value, int)):
        return "an integer"
    if expected == "float" and (isinstance(value, bool) or not isinstance(value, (int, float))):
        return "a number"
    if expected == "bool" and not isinstance(value, bool):
        return "a boolean (true or false)"
    if expected == "str" and isinstance(value, (dict, list)):
        return "a string"
    if expected == "list" and isinstance(value, (dict, str)):
        return "a list or a number"
    return None


def _array_shape(value: Any) -> tuple[int, ...] | None:
    """The shape of a constant (a number, or nested lists of numbers), None when it is not one."""
    if isinstance(value, (int, float)):
        return ()
    if not isinstance(value, list) or not value:
        return None
    inner = {_array_shape(v) for v in value}
    if len(inner) != 1 or None in inner:
        return None
    return (len(value), *inner.pop())  # type: ignore[misc]


def _a(noun: str) -> str:
    """``noun`` with its indefinite article: 'an optimizer', 'a loss'."""
    return f"{'an' if noun[0] in 'aeiou' else 'a'} {noun}"


def _choices(names: Iterable[str]) -> str | None:
    names = list(names)
    if not names:
        return "it takes no arguments"
    shown = ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")
    return f"its arguments are: {shown}"
