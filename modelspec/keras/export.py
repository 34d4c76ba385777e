"""Keras models to specs: the compiler stage run backwards (``modelspec export``, ``modelspec.from_keras``).

A ``keras.Sequential`` becomes the list form, a functional model the mapping
form, each node keyed by its layer's name. A layer is ``{type, ...arguments}``
with only the arguments that differ from the catalog's defaults; Keras objects
in them are a name where the name gives the same object back, else ``{type:
Class, ...}``. A layer called at several places becomes ``share:`` entries, a
call with several outputs ``name[i]`` references, tensor keyword arguments an
``inputs`` mapping and constant ones ``call``. Operation nodes (``keras.ops.add``
on symbolic tensors) become ``op`` entries, and a model used as a layer becomes
a block and its instances: models of the same structure share one block,
what differs between them becoming its params.

The work goes in two steps: the Keras graph is read into :class:`_Body`
records (entries whose references are positions), then bodies are written
out as spec data, with names given once every body is known. What the format
cannot hold is refused with a problem naming it: a subclassed model (its
``call`` is Python code), a ``Lambda`` layer, an operation outside the
allowlist. A layer class outside ``keras.layers`` is written by its class name,
with a warning that building needs it registered.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import warnings
import zipfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .. import catalog
from ..errors import Problem, SpecError
from ..spec import ModelSpec
from ..spec.models import DTYPES, NAME_PATTERN
from .backend import load_keras

__all__ = ["Exported", "check_model_file", "export_model", "load_model_file"]

_NAME = re.compile(NAME_PATTERN)
_RESERVED = frozenset({"type", "op", "block", "name", "inputs", "call", "share", "repeat", "if", "else"})
"""Keys of an entry that are not arguments: never a block's param name."""
_OBJECT_MODULES = {
    "keras.initializers": "initializers",
    "keras.regularizers": "regularizers",
    "keras.constraints": "constraints",
    "keras.activations": "activations",
    "keras.optimizers": "optimizers",
    "keras.optimizers.schedules": "schedules",
    "keras.losses": "losses",
    "keras.metrics": "metrics",
}
"""The module a serialized Keras object names -> the catalog's object module."""
_OP_ALIASES = {"absolute": "abs"}
"""Operation classes whose snake-case name is not the ``keras.ops`` function of the allowlist."""
_WRAPPER_SET = frozenset({"zero_output_for_mask"})
"""Settings a wrapper (Bidirectional) forces on the layer it wraps: not written on the nested entry."""
_CODE_LAYERS = ("Lambda", "TFSMLayer", "JaxLayer", "FlaxLayer", "TorchModuleWrapper")
MAX_CONFIG_BYTES = 256 << 20
"""The largest ``config.json`` of a model file that is read before loading it."""


@dataclass
class Exported:
    """A Keras model as a spec.

    Attributes:
        spec: The spec; ``build(spec)`` makes the same network.
        warnings: What the spec cannot promise on its own (layer classes
            outside ``keras.layers`` need registering to build).
        renamed: Keras layer names the format refuses -> the names used in the spec.
    """

    spec: ModelSpec
    warnings: list[Problem]
    renamed: dict[str, str]


# -- the graph, read ---------------------------------------------------------


@dataclass(frozen=True)
class _Ref:
    """What an entry is called on: input ``source`` of its body (``item`` None) or output ``index`` of item ``item``."""

    item: int | None
    source: int = 0
    index: int | None = None


@dataclass
class _Item:
    """One entry of a body.

    Attributes:
        kind: ``layer``, ``op``, ``share`` (calls item ``share``'s layer) or ``instance`` (of ``body``).
        name: The Keras name of the layer, operation or nested model.
        type: The layer type or the op's function name.
        args: Constructor arguments, the op's keyword arguments, or (for an
            instance) nothing until the blocks are made.
        inputs: A structure of :class:`_Ref` (None: the entry above, in a chain).
        call: Constant call arguments.
    """

    kind: str
    name: str
    type: str | None = None
    args: dict[str, Any] = field(default_factory=dict)
    inputs: Any = None
    call: dict[str, Any] = field(default_factory=dict)
    share: int | None = None
    body: _Body | None = None
    outputs: int = 1


@dataclass
class _Body:
    """A graph read from Keras: the model's, or a nested model's (a block)."""

    name: str
    inputs: list[str]
    items: list[_Item]
    outputs: Any = None
    chain: bool = False
    input_specs: dict[str, dict[str, Any]] = field(default_factory=dict)


def _plain_equal(a: Any, b: Any) -> bool:
    """Equality of plain values where ``True != 1`` and tuples equal lists."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_plain_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_plain_equal(a[k], b[k]) for k in a)
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    return type(a) is type(b) and a == b


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


def op_name(class_name: str) -> str:
    """The ``keras.ops`` function an operation class stands for: ``Add`` -> ``add``, ``HardSilu`` -> ``hard_silu``."""
    name = _snake(class_name)
    return _OP_ALIASES.get(name, name)


def _escaped(text: str) -> str:
    return text.replace("${", "$${")


class _Exporter:
    def __init__(self, keras: Any, file: str, custom_objects: dict[str, Any]):
        self.keras = keras
        self.file = file
        self.custom = custom_objects
        self.problems: list[Problem] = []
        self.uses: Counter[int] = Counter()
        self.seen_models: set[int] = set()
        self.object_names: dict[str, tuple[str, Any] | None] = {}
        self.layer_types: dict[type, str | None] = {}
        from keras.src.models.functional import Functional

        self.functional_class = Functional

    # -- problems ------------------------------------------------------------

    def error(self, path: tuple, code: str, message: str, hint: str | None = None) -> None:
        self.problems.append(Problem(tuple(path), message, self.file, hint=hint, code=code))

    def warning(self, path: tuple, code: str, message: str, hint: str | None = None) -> None:
        problem = Problem(tuple(path), message, self.file, hint=hint, severity="warning", code=code)
        if problem not in self.problems:
            self.problems.append(problem)

    # -- models ----------------------------------------------------------------

    def is_sequential(self, model: Any) -> bool:
        return isinstance(model, self.keras.Sequential)

    def is_graph(self, model: Any) -> bool:
        """A model made of a graph of layers (Sequential or functional), not Python code."""
        return self.is_sequential(model) or isinstance(model, self.functional_class)

    def check_class(self, model: Any, path: tuple) -> bool:
        """Whether ``model`` can be exported; refuses a subclassed model, notes a subclass of a graph model."""
        cls = type(model)
        if not self.is_graph(model):
            self.error(
                path,
                "export-subclassed",
                f"the model is a subclassed keras.Model ({cls.__module__}.{cls.__qualname__}): its layers are "
                "connected by the Python code of its call(), which a spec cannot hold; only Sequential and "
                "functional models can be exported",
            )
            return False
        if cls not in (self.keras.Sequential, self.functional_class, self.keras.Model):
            self.warning(
                path,
                "export-lossy",
                f"the model's class {cls.__qualname__} is not kept: the spec builds a plain "
                f"{'keras.Sequential' if self.is_sequential(model) else 'functional keras.Model'} "
                "with the same layers (its own Python methods are not part of the spec)",
            )
        return True

    def graph_nodes(self, model: Any) -> list[Any]:
        """The call nodes of a functional model, each after the nodes it uses, in ``model.layers`` order."""
        rank = {id(op): i for i, op in enumerate(model.operations)}
        nodes = []
        for depth in sorted(model._nodes_by_depth, reverse=True):
            nodes += sorted(
                model._nodes_by_depth[depth],
                key=lambda n: (rank.get(id(n.operation), -1), n.operation._inbound_nodes.index(n)),
            )
        return [n for n in nodes if not n.is_input and not self.is_input_layer(n.operation)]

    def is_input_layer(self, op: Any) -> bool:
        return isinstance(op, self.keras.layers.InputLayer)

    def count(self, model: Any) -> None:
        """Count how many times each layer and nested model is called, over the whole model."""
        if id(model) in self.seen_models:
            return
        self.seen_models.add(id(model))
        ops = model.layers if self.is_sequential(model) else [n.operation for n in self.graph_nodes(model)]
        for op in ops:
            self.uses[id(op)] += 1
            if self.is_graph(op):
                self.count(op)

    def inlined(self, model: Any) -> bool:
        """Whether a nested model is written into its parent's graph instead of as a block.

        A block's instances make separate layers; a model called twice, or
        whose layers are used outside it too, shares its weights, which only
        ``share`` entries in one graph can say.
        """
        if self.uses[id(model)] > 1:
            return True
        inner = model.layers if self.is_sequential(model) else [n.operation for n in self.graph_nodes(model)]
        return any(self.uses[id(op)] > 1 or (self.is_graph(op) and self.inlined(op)) for op in inner)

    # -- reading a graph ---------------------------------------------------------

    def sequential_body(self, model: Any, path: tuple) -> _Body:
        body = _Body(model.name, [], [], chain=True)
        first = model._layers[0] if model._layers else None
        if first is not None and self.is_input_layer(first):
            spec = self.input_spec(first, (*path, "inputs", first.name))
            body.inputs = [first.name]
            body.input_specs = {first.name: spec}
        previous: _Ref | None = _Ref(None, 0) if body.inputs else None
        for layer in model.layers:
            where = (*path, "layers", layer.name)
            if self.is_graph(layer):
                nested = self.nested_body(layer, {}, where)
                if nested is None:
                    continue
                if not nested.chain:
                    self.error(
                        where,
                        "export-unsupported",
                        f"the functional model '{layer.name}' inside a Sequential model has branches; "
                        "a list of layers can only use chain blocks",
                    )
                    continue
                body.items.append(_Item("instance", layer.name, inputs=previous, body=nested))
            else:
                item = self.layer_item(layer, where)
                if item is None:
                    continue
                item.inputs = previous
                body.items.append(item)
            previous = _Ref(len(body.items) - 1)
        return body

    def functional_body(self, model: Any, path: tuple, context: dict[str, Any]) -> _Body:
        body = _Body(model.name, [], [])
        refs: dict[int, Any] = {}
        for i, tensor in enumerate(model.inputs):
            layer = tensor._keras_history.operation
            name = layer.name if layer is not None and self.is_input_layer(layer) else f"input_{i}"
            body.inputs.append(name)
            if layer is not None and self.is_input_layer(layer):
                body.input_specs[name] = self.input_spec(layer, (*path, "inputs", name))
            else:
                body.input_specs[name] = self.tensor_spec(tensor, (*path, "inputs", name))
            refs[id(tensor)] = _Ref(None, i)
        self.read_graph(model, body, refs, path, context)
        body.outputs = self.output_refs(model._outputs_struct, refs, (*path, "outputs"))
        return body

    def read_graph(
        self, model: Any, body: _Body, refs: dict[int, Any], path: tuple, context: dict[str, Any]
    ) -> None:
        """Read every node of ``model`` that its outputs need into ``body``; ``refs`` maps its tensors to references."""
        nodes = self.graph_nodes(model)
        calls = {id(n): self.call_arguments(n) for n in nodes}
        needed = self.needed(model, nodes, calls)
        shared: dict[int, int] = {}  # id(layer) -> the item that defines it in this body
        for node in nodes:
            if id(node) not in needed:
                continue
            op = node.operation
            where = (*path, "layers", op.name)
            args, kwargs = calls[id(node)]
            count = len(node.outputs)
            if self.is_graph(op):
                outputs = self.nested_call(op, count, args, kwargs, body, refs, where, context, shared)
            elif isinstance(op, self.keras.layers.Layer):
                outputs = self.layer_call(op, count, args, kwargs, body, refs, where, context, shared)
            else:
                outputs = self.op_call(op, count, args, kwargs, body, refs, where)
            if outputs is None:  # refused and reported: what uses it is not reported again
                outputs = [_Ref(None, 0)] * len(node.outputs)
            for tensor, ref in zip(node.outputs, outputs):
                refs[id(tensor)] = ref

    def call_arguments(self, node: Any) -> tuple[tuple, dict[str, Any]]:
        """A node's call arguments, without those Keras fills in by itself (masks, default ``training``)."""
        args = tuple(node.arguments.args)
        kwargs = dict(node.arguments.kwargs)
        op = node.operation
        masks = {}
        if args:
            masks["mask"] = args[0]
        try:
            signature = inspect.signature(op.call).parameters
        except (TypeError, ValueError):
            signature = {}
        names = [n for n, p in signature.items() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        for i, value in enumerate(args):
            if i < len(names):
                masks[f"{names[i]}_mask"] = value
        for key, value in kwargs.items():
            masks[f"{key}_mask"] = value
        for key in list(kwargs):
            value = kwargs[key]
            if value is None:
                del kwargs[key]
            elif key in masks and _is_mask_of(value, masks[key]):
                del kwargs[key]  # Keras attached it to the tensor and passes it again on every call
            elif key in getattr(op, "_call_context_args", ()) and key in signature and not _is_tensor(value):
                default = signature[key].default
                if default is not inspect.Parameter.empty and value == default:
                    del kwargs[key]
        return args, kwargs

    def needed(self, model: Any, nodes: list[Any], calls: dict[int, Any]) -> set[int]:
        """The nodes the outputs depend on, once the masks Keras passes by itself are left out."""
        producer = {}
        for node in nodes:
            for tensor in node.outputs:
                producer[id(tensor)] = node
        needed: set[int] = set()
        stack = [producer[id(t)] for t in model.outputs if id(t) in producer]
        while stack:
            node = stack.pop()
            if id(node) in needed:
                continue
            needed.add(id(node))
            args, kwargs = calls[id(node)]
            for tensor in _tensors((args, kwargs)):
                if id(tensor) in producer:
                    stack.append(producer[id(tensor)])
        return needed

    def refs_of(self, value: Any, refs: dict[int, Any], where: tuple) -> Any:
        """A call argument's tensors as references: one, or a list; None when it holds no tensor."""
        if _is_tensor(value):
            return self.ref(value, refs, where)
        if isinstance(value, (list, tuple)) and value and all(_is_tensor(v) for v in value):
            return [self.ref(v, refs, where) for v in value]
        if _tensors(value):
            self.error(
                where,
                "export-unsupported",
                "a call argument holds tensors in a structure the format cannot say "
                "(a reference, or a list of references, only)",
            )
            return _Ref(None, 0)
        return None

    def ref(self, tensor: Any, refs: dict[int, Any], where: tuple) -> Any:
        if isinstance(tensor, _Placeholder):
            return tensor.ref
        ref = refs.get(id(tensor))
        if ref is None:
            self.error(
                where, "export-unsupported", "a call argument is a tensor from outside the model's graph"
            )
            return _Ref(None, 0)
        return ref

    def output_refs(self, struct: Any, refs: dict[int, Any], where: tuple) -> Any:
        if isinstance(struct, dict):
            return {str(k): self.output_refs(v, refs, where) for k, v in struct.items()}
        if isinstance(struct, (list, tuple)):
            return [self.output_refs(v, refs, where) for v in struct]
        return self.ref(struct, refs, where)

    def split_call(
        self, op: Any, args: tuple, kwargs: dict[str, Any], refs: dict[int, Any], where: tuple
    ) -> tuple[Any, dict[str, Any]]:
        """A layer call's arguments as ``inputs`` (a reference, a list, or a mapping) and constant ``call`` ones."""
        try:
            params = inspect.signature(op.call).parameters
        except (TypeError, ValueError):
            params = {}
        names = [n for n, p in params.items() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        named: dict[str, Any] = {}
        for i, value in enumerate(args):
            if i >= len(names):
                self.error(
                    where,
                    "export-unsupported",
                    f"the layer is called with {len(args)} positional arguments; its call() names {len(names)}",
                )
                return _Ref(None, 0), {}
            named[names[i]] = value
        named.update(kwargs)
        tensors: dict[str, Any] = {}
        constants: dict[str, Any] = {}
        for key, value in named.items():
            found = self.refs_of(value, refs, (*where, "inputs", key))
            if found is not None:
                tensors[key] = found
            else:
                constants[key] = self.value(value, None, (*where, "call", key))
        if len(args) == 1 and len(tensors) == 1 and names and names[0] in tensors:
            return tensors[names[0]], constants
        return tensors, constants

    def apply_context(self, op: Any, call: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
        """``training`` given to a nested model, passed on to its layers that take it."""
        for key, value in context.items():
            if key not in call and key in getattr(op, "_call_context_args", ()):
                try:
                    takes = key in inspect.signature(op.call).parameters
                except (TypeError, ValueError):
                    takes = False
                if takes:
                    call = {**call, key: value}
        return call

    def layer_call(
        self,
        layer: Any,
        count: int,
        args: tuple,
        kwargs: dict[str, Any],
        body: _Body,
        refs: dict[int, Any],
        where: tuple,
        context: dict[str, Any],
        shared: dict[int, int],
    ) -> list[_Ref] | None:
        inputs, call = self.split_call(layer, args, kwargs, refs, where)
        call = self.apply_context(layer, call, context)
        if id(layer) in shared:
            item = _Item("share", layer.name, share=shared[id(layer)], inputs=inputs, call=call)
        else:
            made = self.layer_item(layer, where)
            if made is None:
                return None
            item = made
            item.inputs, item.call = inputs, call
            shared[id(layer)] = len(body.items)
        return self.add(body, item, count)

    def add(self, body: _Body, item: _Item, count: int) -> list[_Ref]:
        item.outputs = count
        body.items.append(item)
        j = len(body.items) - 1
        return [_Ref(j, index=None if count == 1 else i) for i in range(count)]

    def op_call(
        self,
        op: Any,
        count: int,
        args: tuple,
        kwargs: dict[str, Any],
        body: _Body,
        refs: dict[int, Any],
        where: tuple,
    ) -> list[_Ref] | None:
        cls = type(op)
        name = op_name(cls.__name__)
        info = catalog.op(name)
        if info is None:
            what = "x[...] (indexing a tensor)" if cls.__name__ == "GetItem" else f"keras.ops.{name}"
            self.error(
                where,
                "export-unsupported",
                f"the operation '{op.name}' ({what}, class {cls.__name__}) is not one of the keras.ops "
                "functions a spec may call",
            )
            return None
        try:
            bound = inspect.signature(op.call).bind(*args, **kwargs).arguments
            config = op.get_config()
        except (TypeError, NotImplementedError) as e:
            self.error(where, "export-unsupported", f"the operation '{op.name}' cannot be read: {e}")
            return None
        config.pop("name", None)
        params = {**config, **bound}
        tensors: dict[str, Any] = {}
        constants: dict[str, Any] = {}
        for key, value in params.items():
            if key not in info.args:
                self.error(
                    where,
                    "export-unsupported",
                    f"the operation '{op.name}' has a setting {key!r} that keras.ops.{name} does not take",
                )
                return None
            if key == info.variadic and isinstance(value, tuple):
                value = list(value)
            found = self.refs_of(value, refs, (*where, "inputs", key))
            if found is not None:
                tensors[key] = found
                continue
            value = self.value(value, None, (*where, key))
            default = info.args[key].default
            if (
                default is not catalog.MISSING
                and _plain_equal(value, default)
                and not info.args[key].required
            ):
                continue
            constants[key] = value
        positional = [n for n in info.args if n != info.variadic]
        if info.variadic in tensors and isinstance(tensors[info.variadic], list) and len(tensors) == 1:
            inputs: Any = tensors[info.variadic]
        elif list(tensors) == positional[: len(tensors)] and all(
            isinstance(v, _Ref) for v in tensors.values()
        ):
            inputs = list(tensors.values())
        else:
            inputs = tensors
        return self.add(body, _Item("op", op.name, type=name, args=constants, inputs=inputs), count)

    def nested_call(
        self,
        model: Any,
        count: int,
        args: tuple,
        kwargs: dict[str, Any],
        body: _Body,
        refs: dict[int, Any],
        where: tuple,
        context: dict[str, Any],
        shared: dict[int, int],
    ) -> list[Any] | None:
        """A model used as a layer: a block instance, or its graph written into this one."""
        inner = dict(context)
        for key, value in kwargs.items():
            if key in getattr(model, "_call_context_args", ()):
                inner[key] = value
            else:
                self.error(
                    (*where, "call", key),
                    "export-unsupported",
                    f"the model '{model.name}' is called with {key!r}, which a block instance cannot pass on",
                )
                return None
        if len(args) != 1:
            self.error(
                where, "export-unsupported", f"the model '{model.name}' is called with {len(args)} arguments"
            )
            return None
        given = args[0]
        tensors = list(given) if isinstance(given, (list, tuple)) else [given]
        if isinstance(given, dict) or not all(_is_tensor(t) for t in tensors):
            self.error(
                where, "export-unsupported", f"the model '{model.name}' is called on a structure of tensors"
            )
            return None
        values = [self.ref(t, refs, where) for t in tensors]
        if self.check_class(model, where) is False:
            return None
        if self.inlined(model):
            return self.inline(model, values, body, where, inner, shared)
        nested = self.nested_body(model, inner, where)
        if nested is None:
            return None
        inputs: Any = values[0] if len(values) == 1 else values
        return self.add(body, _Item("instance", model.name, inputs=inputs, body=nested), count)

    def nested_body(self, model: Any, context: dict[str, Any], where: tuple) -> _Body | None:
        if not self.check_class(model, where):
            return None
        if self.is_sequential(model) and not context:
            return self.sequential_body(model, where)
        body = (
            self.functional_body(model, where, context)
            if not self.is_sequential(model)
            else self.sequential_as_graph(model, where, context)
        )
        if isinstance(body.outputs, dict):  # a call's outputs come flat, the keys in sorted order
            body.outputs = [body.outputs[k] for k in sorted(body.outputs)]
        if self.is_chain(body) and not context:
            for item in body.items:
                item.inputs = None
            body.chain = True
        return body

    def sequential_as_graph(self, model: Any, where: tuple, context: dict[str, Any]) -> _Body:
        """A nested Sequential model called with ``training``: a DAG block whose entries pass it on."""
        body = self.sequential_body(model, where)
        body.chain = False
        for j, item in enumerate(body.items):
            item.inputs = _Ref(j - 1) if j else _Ref(None, 0)
            layer = next((layer for layer in model.layers if layer.name == item.name), None)
            if layer is not None and item.kind == "layer":
                item.call = self.apply_context(layer, item.call, context)
        body.outputs = _Ref(len(body.items) - 1) if body.items else None
        if not body.inputs:
            body.inputs = ["x"]
        return body

    def is_chain(self, body: _Body) -> bool:
        if len(body.inputs) != 1 or not body.items:
            return False
        for j, item in enumerate(body.items):
            expected = _Ref(j - 1) if j else _Ref(None, 0)
            if item.inputs != expected or item.call or item.kind in ("share", "op") or item.outputs != 1:
                return False
            if item.kind == "instance" and item.body is not None and not item.body.chain:
                return False
        return body.outputs == _Ref(len(body.items) - 1)

    def inline(
        self,
        model: Any,
        values: list[Any],
        body: _Body,
        where: tuple,
        context: dict[str, Any],
        shared: dict[int, int],
    ) -> list[Any] | None:
        """A nested model's layers written into the parent's graph (its second call shares the first's layers)."""
        if self.is_sequential(model):
            current = values[0]
            for layer in model.layers:
                at = (*where, "layers", layer.name)
                if self.is_graph(layer):
                    out = self.inline(layer, [current], body, at, context, shared)
                    if out is None or len(out) != 1:
                        return None
                else:
                    out = self.layer_call(
                        layer, 1, (_Placeholder(current),), {}, body, {}, at, context, shared
                    )
                    if out is None:
                        return None
                current = out[0]
            return [current]
        refs: dict[int, Any] = {id(t): v for t, v in zip(model.inputs, values)}
        nodes = self.graph_nodes(model)
        calls = {id(n): self.call_arguments(n) for n in nodes}
        needed = self.needed(model, nodes, calls)
        for node in nodes:
            if id(node) not in needed:
                continue
            op = node.operation
            at = (*where, "layers", op.name)
            args, kwargs = calls[id(node)]
            count = len(node.outputs)
            if self.is_graph(op):
                inner = dict(context)
                inner.update({k: v for k, v in kwargs.items() if k in getattr(op, "_call_context_args", ())})
                given = args[0] if args else None
                tensors = list(given) if isinstance(given, (list, tuple)) else [given]
                outputs = self.inline(op, [self.ref(t, refs, at) for t in tensors], body, at, inner, shared)
            elif isinstance(op, self.keras.layers.Layer):
                outputs = self.layer_call(op, count, args, kwargs, body, refs, at, context, shared)
            else:
                outputs = self.op_call(op, count, args, kwargs, body, refs, at)
            if outputs is None:
                outputs = [_Ref(None, 0)] * len(node.outputs)
            for tensor, ref in zip(node.outputs, outputs):
                refs[id(tensor)] = ref
        return [self.ref(t, refs, where) for t in model.outputs]

    # -- inputs ------------------------------------------------------------------

    def input_spec(self, layer: Any, where: tuple) -> dict[str, Any]:
        config = layer.get_config()
        shape = list(config.get("batch_shape") or (None,))
        return self.make_input_spec(shape, config.get("dtype"), bool(config.get("sparse")), where, config)

    def tensor_spec(self, tensor: Any, where: tuple) -> dict[str, Any]:
        return self.make_input_spec(list(tensor.shape), tensor.dtype, bool(tensor.sparse), where, {})

    def make_input_spec(
        self, shape: list[Any], dtype: Any, sparse: bool, where: tuple, config: dict[str, Any]
    ) -> dict[str, Any]:
        spec: dict[str, Any] = {"shape": [None if d is None else int(d) for d in shape[1:]]}
        dtype = str(getattr(dtype, "name", dtype) or "float32")
        if dtype not in DTYPES:
            self.error(
                where, "export-unsupported", f"the input's dtype {dtype!r} is not one a spec can declare"
            )
        elif dtype != "float32":
            spec["dtype"] = dtype
        if shape[0] is not None:
            spec["batch_size"] = int(shape[0])
        if sparse:
            spec["sparse"] = True
        for flag in ("ragged", "optional"):
            if config.get(flag):
                self.error(where, "export-unsupported", f"the input is {flag}, which a spec cannot declare")
        return spec

    # -- layers ------------------------------------------------------------------

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

    def layer_item(self, layer: Any, where: tuple) -> _Item | None:
        entry = self.layer_entry(type(layer), layer.name, None, where, layer)
        if entry is None:
            return None
        type_name = entry.pop("type")
        return _Item("layer", layer.name, type=type_name, args=entry)

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
            or class_name in _CODE_LAYERS
            or (cls is not None and isinstance(layer, getattr(self.keras.layers, "Lambda", ())))
        ):
            reason = refused or "it runs code a spec cannot hold."
            self.error(
                where,
                "export-refused-layer",
                f"layer '{name}' is a {class_name} layer, which a spec cannot hold: {reason.rstrip('.')}",
            )
            return None
        if builtin is None:
            registered = class_name in self.custom
            if not registered:
                self.warning(
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
                self.error(
                    where,
                    "export-unsupported",
                    f"layer '{name}' ({class_name}) has no get_config(): its arguments cannot be read",
                )
                return None
        args = self.arguments(builtin, cls, config, where, nested=serialized is not None, layer=layer)
        if args is None:
            return None
        return {"type": builtin or class_name, **args}

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
                    if p.default is not inspect.Parameter.empty and _is_plain(p.default)
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
                policy = self.policy(value)
                if policy is not None:
                    args[key] = policy
                continue
            if info is not None and key not in info.args:
                unknown.append(key)
                continue
            kind = info.args[key].kind if info is not None else None
            raw[key] = value
            args[key] = self.value(value, kind, (*where, key))
        if nested:  # a wrapper sets these on the layer it wraps (Bidirectional: zero_output_for_mask)
            unknown = [k for k in unknown if k not in _WRAPPER_SET]
        if unknown and not self.implied(cls, config, unknown):
            self.error(
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
                    key in raw and _plain_equal(_plainish(raw[key]), defaults[key])
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
            if self.implied(cls, config, derived, layer):
                for k in derived:
                    del args[k]
            else:
                for k in derived:
                    if self.implied(cls, config, [k], layer):
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

    def policy(self, value: Any) -> str | None:
        """A dtype policy as its name; None for float32 (the default)."""
        if isinstance(value, dict):
            value = (value.get("config") or {}).get("name", value.get("class_name"))
        name = getattr(value, "name", value)
        if name is None or name == "float32":
            return None
        return str(name)

    def same_default(self, kind: str | None, value: Any, default: Any) -> bool:
        if kind == "activation":
            return (value or "linear") == (default or "linear")
        if kind in catalog.KIND_MODULES and isinstance(value, str) and isinstance(default, str):
            module = catalog.KIND_MODULES[kind]
            return self.canonical(module, value) == self.canonical(module, default)
        if kind == "layer" and isinstance(value, dict) and isinstance(default, dict):
            return value == default
        return _plain_equal(value, default)

    def implied(self, cls: type | None, config: dict[str, Any], keys: list[str], layer: Any = None) -> bool:
        """Whether the layer made without ``keys`` has them as they are (settings it derives, built or not).

        ``MultiHeadAttention``'s ``value_dim`` is its ``key_dim`` when not
        given; its ``attention_axes`` are known once it is built on the
        original's shapes.
        """
        if cls is None:
            return all(config[k] in (None, False) for k in keys)
        return self.remakes(cls, {k: v for k, v in config.items() if k not in keys}, config, keys, layer)

    def remakes(
        self, cls: type, changed: dict[str, Any], config: dict[str, Any], keys: list[str], layer: Any
    ) -> bool:
        """Whether a layer made from ``changed`` has ``keys`` as ``config`` says: as made, or once built like ``layer``."""
        try:
            fresh = cls.from_config(changed)  # type: ignore[attr-defined]
            made = fresh.get_config()
            if not self.same_keys(made, config, keys) and layer is not None and layer.built:
                build = layer.get_build_config()
                if build:
                    fresh.build_from_config(build)
                    made = fresh.get_config()
        except Exception:  # noqa: BLE001 - it cannot be made so
            return False
        return self.same_keys(made, config, keys)

    @staticmethod
    def same_keys(made: dict[str, Any], config: dict[str, Any], keys: list[str]) -> bool:
        return all(_plain_equal(_plainish(made.get(k)), _plainish(config[k])) for k in keys)

    def collapse(self, cls: type, config: dict[str, Any], args: dict[str, Any], layer: Any = None) -> None:
        """``kernel_size: [3, 3]`` as ``3`` where the layer makes the same of it (checked by making one)."""
        candidates = {
            k: leaves[0]
            for k, v in args.items()
            if isinstance(v, list) and (leaves := _leaves(v))
            and all(type(x) is int and x == leaves[0] for x in leaves)
        }  # fmt: skip
        if not candidates:
            return

        def works(keys: list[str]) -> bool:
            return self.remakes(cls, {**config, **{k: candidates[k] for k in keys}}, config, keys, layer)

        keys = list(candidates)
        chosen = keys if works(keys) else [k for k in keys if works([k])]
        for k in chosen:
            args[k] = candidates[k]

    def derived_backward(self, config: dict[str, Any], where: tuple) -> Any:
        """The ``backward_layer`` Bidirectional makes by itself from its ``layer``."""
        try:
            layer = self.keras.saving.deserialize_keras_object(config["layer"], custom_objects=self.custom)
            backward = self.keras.layers.Bidirectional(layer).backward_layer
            made = self.keras.saving.serialize_keras_object(backward)
        except Exception:  # noqa: BLE001 - not derivable: the spec keeps the backward layer
            return None
        return self.value(made, "layer", where)

    # -- values ------------------------------------------------------------------

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
            return _escaped(value)
        if value is None or isinstance(value, (bool, int)):
            return value
        if isinstance(value, float):
            return value
        if hasattr(value, "tolist") and hasattr(value, "dtype"):  # numpy scalars and arrays
            return self.value(value.tolist(), kind, where)
        if isinstance(value, self.keras.layers.Layer):
            return self.value(self.keras.saving.serialize_keras_object(value), "layer", where)
        self.error(
            where,
            "export-unsupported",
            f"the value is a {type(value).__name__}, which a spec cannot hold (numbers, strings, lists and mappings)",
        )
        return None

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
        if class_name == "function":  # an activation (or another function) saved by name
            name = str(config if isinstance(config, str) else value.get("registered_name") or "")
            if name not in catalog.object_names("activations") and name not in self.custom:
                self.warning(
                    where,
                    "export-custom-layer",
                    f"the function {name!r} is not a Keras activation: the spec names it, and building "
                    "needs it registered (custom_objects= or @modelspec.register)",
                )
            return name
        if kind == "layer" or module.startswith("keras.layers") or module.startswith("keras.src.layers"):
            return self.layer_entry(None, str((config or {}).get("name", class_name)), value, where)
        target = _OBJECT_MODULES.get(module) or catalog.KIND_MODULES.get(kind or "")
        if target is None:
            self.error(
                where,
                "export-unsupported",
                f"the value is a Keras {class_name} object ({module or 'unknown module'}), which a spec cannot hold",
            )
            return None
        return self.object(target, class_name, dict(config or {}), where)

    def object(self, module: str, class_name: str, config: dict[str, Any], where: tuple) -> Any:
        info = catalog.object_class(module, class_name)
        args = {k: self.value(v, None, (*where, k)) for k, v in config.items()}
        if info is None:
            if class_name not in self.custom:
                self.warning(
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
                self.error(
                    (*where, key),
                    "export-unsupported",
                    f"Keras describes this {class_name} with {key!r}, which its constructor does not take",
                )
        for key in list(args):
            arg = info.args.get(key)
            if (
                arg is not None
                and arg.default is not catalog.MISSING
                and _plain_equal(args[key], arg.default)
            ):
                del args[key]
        if module == "optimizers" and isinstance(config.get("learning_rate"), dict):
            pass  # a schedule, already made a mapping above
        return {"type": class_name, **args}

    def made(self, module: str, name: str) -> tuple[str, Any] | None:
        """(class name, config) of what ``keras.<module>.get(name)`` gives, or None."""
        key = f"{module}:{name}"
        if key not in self.object_names:
            owner = self.keras.optimizers.schedules if module == "schedules" else getattr(self.keras, module)
            try:
                data = self.keras.saving.serialize_keras_object(owner.get(name))
            except Exception:  # noqa: BLE001 - a name this Keras cannot make
                data = None
            self.object_names[key] = (
                (str(data["class_name"]), _plainish(data.get("config")))
                if isinstance(data, dict) and "class_name" in data
                else None
            )
        return self.object_names[key]

    def object_name(self, module: str, class_name: str, config: dict[str, Any]) -> str | None:
        """A name that gives this very object back (``glorot_uniform``, ``l2``), or None.

        The candidates are the class's own name and its snake-case spellings:
        making every name a module has would import what some need (SciPy for ``stft``).
        """
        config = _plainish(config)
        wanted = class_name.lower()
        candidates = [n for n in catalog.object_names(module) if n.replace("_", "").lower() == wanted]
        for name in sorted(candidates, key=lambda n: (not n.islower(), n)):
            made = self.made(module, name)
            if made is not None and made[0] == class_name and _plain_equal(made[1], config):
                return name
        return None

    def canonical(self, module: str, name: str) -> Any:
        """What a name stands for, to compare a value with a default written differently."""
        made = self.made(module, name)
        return name if made is None else (made[0], json.dumps(made[1], sort_keys=True, default=str))

    # -- compile -----------------------------------------------------------------

    def compile_data(self, model: Any) -> dict[str, Any] | None:
        """The model's compile arguments as a spec's ``compile``, when Keras has them as data."""
        if not getattr(model, "compiled", False):
            return None
        try:
            config = model.get_compile_config()
        except Exception:  # noqa: BLE001
            config = None
        if not isinstance(config, dict):
            return None
        before = len(self.problems)
        data: dict[str, Any] = {}
        for key, module in (
            ("optimizer", "optimizers"),
            ("loss", "losses"),
            ("metrics", "metrics"),
            ("weighted_metrics", "metrics"),
        ):
            value = config.get(key)
            if value is None:
                continue
            data[key] = self.compile_value(module, value, ("compile", key))
        if config.get("loss_weights") is not None:
            data["loss_weights"] = self.value(config["loss_weights"], None, ("compile", "loss_weights"))
        for key in ("run_eagerly", "jit_compile"):  # Keras keeps jit_compile resolved: True is all it can say
            if config.get(key) is True:
                data[key] = True
        if isinstance(config.get("steps_per_execution"), int) and config["steps_per_execution"] > 1:
            data["steps_per_execution"] = config["steps_per_execution"]
        if any(p.severity == "error" for p in self.problems[before:]):
            del self.problems[before:]
            self.warning(
                ("compile",),
                "export-lossy",
                "the model's compile settings are left out: Keras holds them as objects the spec cannot name",
            )
            return None
        return data or None

    def compile_value(self, module: str, value: Any, where: tuple) -> Any:
        if isinstance(value, list):
            return [self.compile_value(module, v, (*where, i)) for i, v in enumerate(value)]
        if isinstance(value, dict) and "class_name" not in value:
            return {str(k): self.compile_value(module, v, (*where, str(k))) for k, v in value.items()}
        if isinstance(value, dict):
            config = dict(value.get("config") or {})
            if module == "optimizers" and isinstance(config.get("learning_rate"), dict):
                lr = config["learning_rate"]
                config["learning_rate"] = self.object(
                    "schedules",
                    str(lr["class_name"]),
                    dict(lr.get("config") or {}),
                    (*where, "learning_rate"),
                )
            result = self.object(module, str(value["class_name"]), config, where)
            if module == "optimizers" and isinstance(result, dict):
                lr = result.get("learning_rate")
                if isinstance(lr, float):
                    result["learning_rate"] = float(f"{lr:.7g}")  # Keras keeps it as float32
                default = catalog.object_class("optimizers", result["type"])
                if default is not None and "learning_rate" in result:
                    arg = default.args.get("learning_rate")
                    if arg is not None and _plain_equal(result["learning_rate"], arg.default):
                        del result["learning_rate"]
                if "name" in result and result["name"] == _snake(result["type"]):
                    del result["name"]
                if list(result) == ["type"]:
                    return self.object_name(module, result["type"], {}) or result["type"]
            return result
        if isinstance(value, str):
            return _escaped(value)
        self.error(where, "export-unsupported", f"a {type(value).__name__} is not a Keras object name")
        return None


# -- writing bodies out as spec data ----------------------------------------------


class _Names:
    """Names unique in one scope, made valid (letters, digits, '_' and '-') deterministically."""

    def __init__(self, taken: set[str] | None = None):
        self.taken: set[str] = set(taken or ())

    def take(self, wanted: str, fallback: str = "layer") -> str:
        base = _valid(wanted, fallback)
        name, k = base, 1
        while name in self.taken:
            name = f"{base}_{k}"
            k += 1
        self.taken.add(name)
        return name


def _valid(name: str, fallback: str = "layer") -> str:
    text = re.sub(r"[^A-Za-z0-9_\-]", "_", str(name))
    if not text:
        return fallback
    if not re.match(r"[A-Za-z_]", text):
        text = f"_{text}"
    return text


def _strip(name: str, instance: str) -> str:
    """A layer's name inside its model, without what it shares with the model's name.

    ``convnext_tiny_downsampling_layernorm_0`` in ``convnext_tiny_downsampling_block_0`` is ``layernorm``.
    """
    seps = "_-./"
    i = 0
    while i < min(len(name), len(instance)) and name[i] == instance[i]:
        i += 1
    if i < len(instance) and not (i > 0 and instance[i - 1] in seps):
        while i > 0 and name[i - 1] not in seps:
            i -= 1
    rest = name[i:]
    j = 0
    while j < min(len(rest), len(instance)) and rest[-1 - j] == instance[-1 - j]:
        j += 1
    if j and j < len(rest):
        k = len(rest) - j
        while k < len(rest) and rest[k] not in seps:
            k += 1
        rest = rest[:k]
    rest = rest.strip(seps)
    return rest or name


class _Writer:
    """Turns bodies into spec data: blocks for instance bodies (grouped by structure), names for entries."""

    def __init__(self, renamed: dict[str, str]):
        self.renamed = renamed
        self.groups: dict[str, _Group] = {}
        self.block_names = _Names()
        self.group_of: dict[int, _Group] = {}
        self.blocks: dict[str, dict[str, Any]] = {}

    # -- blocks ------------------------------------------------------------------

    def prepare(self, body: _Body) -> None:
        """Group every instance body (innermost first) and make their blocks."""
        by_depth: dict[int, list[tuple[_Body, str]]] = {}

        def visit(b: _Body) -> int:
            depth = 0
            for item in b.items:
                if item.kind == "instance" and item.body is not None:
                    d = visit(item.body) + 1
                    by_depth.setdefault(d, []).append((item.body, item.name))
                    depth = max(depth, d)
            return depth

        visit(body)
        for depth in sorted(by_depth):
            members = by_depth[depth]
            order: list[str] = []
            grouped: dict[str, list[tuple[_Body, str]]] = {}
            for b, instance in members:
                key = self.signature(b)
                if key not in grouped:
                    order.append(key)
                grouped.setdefault(key, []).append((b, instance))
            for key in order:
                group = _Group(self, grouped[key])
                self.groups[key] = group
                for b, _ in grouped[key]:
                    self.group_of[id(b)] = group
                self.blocks[group.name] = group.data()

    def signature(self, body: _Body) -> str:
        items = []
        for item in body.items:
            what: Any = item.type
            if item.kind == "instance":
                group = self.group_of[id(item.body)]
                what = [group.name, sorted(group.params)]
            items.append(
                [item.kind, what, sorted(item.args) if item.kind != "instance" else None,
                 _ref_data(item.inputs), item.call, item.share, item.outputs]
            )  # fmt: skip
        return json.dumps([len(body.inputs), body.chain, items, _ref_data(body.outputs)], default=str)

    def instance_args(self, item: _Item) -> tuple[str, dict[str, Any]]:
        group = self.group_of[id(item.body)]
        return group.name, group.args_of(item.body)  # type: ignore[arg-type]

    # -- entries -----------------------------------------------------------------

    def entries(
        self,
        body: _Body,
        keys: list[str],
        input_names: list[str],
        *,
        chain: bool,
        top: bool,
        args_of: Any = None,
        names_in_chain: bool = True,
    ) -> Any:
        """The ``layers`` of a body: a list (a chain) or key -> entry."""

        def ref(r: _Ref) -> str:
            base = input_names[r.source] if r.item is None else keys[r.item]
            return base if r.index is None else f"{base}[{r.index}]"

        def refs(value: Any) -> Any:
            if isinstance(value, _Ref):
                return ref(value)
            if isinstance(value, dict):
                return {k: refs(v) for k, v in value.items()}
            if isinstance(value, list):
                return [refs(v) for v in value]
            return None

        out: Any = [] if chain else {}
        for j, item in enumerate(body.items):
            args = args_of(j, item) if args_of is not None else item.args
            entry: dict[str, Any]
            if item.kind == "instance":
                block, params = self.instance_args(item)
                if args_of is not None:
                    params = args_of(j, item, params)
                entry = {"block": block}
                if chain and (top or names_in_chain):
                    entry["name"] = keys[j]
                entry.update(params)
            elif item.kind == "op":
                entry = {"op": item.type}
            elif item.kind == "share":
                entry = {"share": keys[item.share]}  # type: ignore[index]
            else:
                entry = {"type": item.type}
                if chain and (top or names_in_chain):
                    entry["name"] = keys[j]
            if not chain:
                default = _Ref(j - 1) if j else (_Ref(None, 0) if len(input_names) == 1 else None)
                if item.inputs is not None and not (isinstance(item.inputs, _Ref) and item.inputs == default):
                    entry["inputs"] = refs(item.inputs)
                if item.call:
                    entry["call"] = item.call
            if item.kind != "instance" and item.kind != "share":
                entry.update(args)
            if chain:
                out.append(entry)
            else:
                out[keys[j]] = entry
        outputs = None
        if not chain and body.outputs is not None:
            outputs = refs(body.outputs)
        return out, outputs

    def top_keys(self, body: _Body, names: _Names) -> tuple[list[str], list[str]]:
        """Input names and entry keys of the model itself: the Keras names, made valid and unique.

        A name the format takes keeps it (the first time it comes); others get
        a valid one, recorded in ``renamed``. Shared calls are ``NAME_K``,
        operations their Keras names.
        """
        wanted = list(body.inputs) + [it.name for it in body.items if it.kind in ("layer", "instance")]
        kept: set[int] = set()
        for i, name in enumerate(wanted):
            if _NAME.match(name) and name not in names.taken:
                names.taken.add(name)
                kept.add(i)
        given = []
        for i, name in enumerate(wanted):
            if i in kept:
                given.append(name)
                continue
            new = names.take(name)
            self.renamed.setdefault(name, new)
            given.append(new)
        inputs = given[: len(body.inputs)]
        rest = iter(given[len(body.inputs) :])
        keys = [next(rest) if item.kind in ("layer", "instance") else "" for item in body.items]
        calls: Counter[int] = Counter()
        for j, item in enumerate(body.items):
            if item.kind == "share":
                target = item.share if item.share is not None else 0
                calls[target] += 1
                keys[j] = names.take(f"{keys[target]}_{calls[target]}")
            elif item.kind == "op":
                keys[j] = names.take(item.name, item.type or "op")
        return inputs, keys


@dataclass
class _Group:
    """Nested models of one structure: one block, its params what differs between them."""

    writer: _Writer
    members: list[tuple[_Body, str]]
    name: str = ""
    params: dict[str, tuple[int, str, tuple]] = field(default_factory=dict)  # param -> (item, arg, path)

    def __post_init__(self) -> None:
        first, instance = self.members[0]
        base = re.sub(r"[_-]?\d+$", "", instance) or instance
        base = _valid(base, "block")
        if catalog.layer(base) is not None or catalog.refused(base) is not None:
            base = f"{base}_block"
        self.name = self.writer.block_names.take(base, "block")
        self.values: dict[str, list[Any]] = {}
        self.slots: dict[tuple[int, str], str] = {}
        taken = set(_RESERVED)
        for j, item in enumerate(first.items):
            keys = list(item.args) if item.kind != "instance" else list(self.inner_params(j))
            for key in keys:
                values = [self.arg(b, j, key) for b, _ in self.members]
                if all(_plain_equal(v, values[0]) for v in values[1:]):
                    continue
                param = _valid(key, "p")
                k = 1
                while param in taken:
                    param = f"{_valid(key, 'p')}_{k}"
                    k += 1
                taken.add(param)
                self.slots[(j, key)] = param
                self.values[param] = values
                self.params[param] = (j, key, ())

    def inner_params(self, j: int) -> dict[str, Any]:
        body, _ = self.members[0]
        return self.writer.instance_args(body.items[j])[1]

    def arg(self, body: _Body, j: int, key: str) -> Any:
        item = body.items[j]
        if item.kind == "instance":
            return self.writer.instance_args(item)[1].get(key)
        return item.args.get(key)

    def args_of(self, body: _Body) -> dict[str, Any]:
        index = next(i for i, (b, _) in enumerate(self.members) if b is body)
        return {param: values[index] for param, values in self.values.items()}

    def data(self) -> dict[str, Any]:
        first, _ = self.members[0]
        names = self.entry_names()
        inputs = (
            [_valid(n, "x") for n in first.inputs] if len(first.inputs) > 1 and not first.chain else ["x"]
        )
        if len(set(inputs)) != len(inputs):
            inputs = [f"x{i}" for i in range(len(inputs))]
        scope = _Names(set(inputs))
        keys = [scope.take(n, "layer") for n in names]

        def args_of(j: int, item: _Item, params: dict[str, Any] | None = None) -> dict[str, Any]:
            source = params if params is not None else item.args
            return {
                k: ("${" + self.slots[(j, k)] + "}" if (j, k) in self.slots else v) for k, v in source.items()
            }

        named = self.consistent
        layers, outputs = self.writer.entries(
            first, keys, inputs, chain=first.chain, top=False, args_of=args_of, names_in_chain=named
        )
        data: dict[str, Any] = {}
        if self.values:
            data["params"] = dict.fromkeys(self.values, "required")
        if inputs != ["x"]:
            data["inputs"] = inputs
        data["layers"] = layers
        if not first.chain and outputs is not None:
            last = keys[-1] if keys else None
            if outputs != last:
                data["outputs"] = outputs
        return data

    def entry_names(self) -> list[str]:
        """Entry names: the layers' own, less what they share with their model's name, when all members agree."""
        first, _ = self.members[0]
        per_member = [[_valid(_strip(it.name, inst), "layer") for it in b.items] for b, inst in self.members]
        names: list[str] = []
        self.consistent = True
        for j, item in enumerate(first.items):
            candidates = {m[j] for m in per_member}
            if len(candidates) == 1 and item.kind in ("layer", "instance"):
                names.append(per_member[0][j])
            else:
                if item.kind in ("layer", "instance"):
                    self.consistent = False
                generic = (
                    _snake(item.type or "layer") if item.kind == "layer"
                    else item.type or "op" if item.kind == "op"
                    else self.writer.group_of[id(item.body)].name if item.kind == "instance"
                    else "shared"
                )  # fmt: skip
                names.append(generic)
        if len(set(names)) != len(names):
            self.consistent = False
        return names


def _ref_data(value: Any) -> Any:
    if isinstance(value, _Ref):
        return [value.item, value.source, value.index]
    if isinstance(value, dict):
        return {k: _ref_data(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_ref_data(v) for v in value]
    return value


# -- helpers -------------------------------------------------------------------------


class _Placeholder:
    """A reference standing where a tensor was, when a Sequential model is written into a graph."""

    def __init__(self, ref: Any):
        self.ref = ref


def _is_tensor(value: Any) -> bool:
    return hasattr(value, "_keras_history") or isinstance(value, _Placeholder)


def _tensors(value: Any) -> list[Any]:
    if _is_tensor(value):
        return [value]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _tensors(v)]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _tensors(v)]
    return []


def _is_mask_of(value: Any, tensor: Any) -> bool:
    """Whether ``value`` is the mask Keras attached to ``tensor`` (and passes again by itself)."""
    if not _is_tensor(value):
        return False
    attached = getattr(tensor, "_keras_mask", None)
    return attached is not None and attached is value


def _is_plain(value: Any) -> bool:
    return value is None or isinstance(value, (bool, int, float, str, list, tuple))


def _plainish(value: Any) -> Any:
    """A config value with tuples as lists and numpy values as Python ones, for comparisons."""
    if isinstance(value, dict):
        return {str(k): _plainish(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plainish(v) for v in value]
    if hasattr(value, "tolist") and hasattr(value, "dtype"):
        return value.tolist()
    return value


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, list):
        return [x for v in value for x in _leaves(v)]
    return [value]


# -- the whole model -------------------------------------------------------------------


def export_model(
    model: Any, *, source: str | None = None, custom_objects: dict[str, Any] | None = None
) -> Exported:
    """A Keras model as a spec.

    Args:
        model: A ``keras.Sequential`` or functional ``keras.Model``.
        source: How problems name the model (its file); default ``<model NAME>``.
        custom_objects: User classes by name: layers of theirs are named without a warning.

    Raises:
        SpecError: What the format cannot hold: a subclassed model, a
            ``Lambda`` layer, an operation outside the allowlist, ...; every
            one found, each naming the layer.
    """
    keras = load_keras()
    file = source or f"<model {getattr(model, 'name', type(model).__name__)}>"
    ex = _Exporter(keras, file, dict(custom_objects or {}))
    if not isinstance(model, keras.Model) or not ex.check_class(model, ()):
        if not ex.problems:
            ex.error((), "export-subclassed", f"not a Keras model: a {type(model).__name__}")
        raise SpecError(ex.problems)
    ex.count(model)
    body = ex.sequential_body(model, ()) if ex.is_sequential(model) else ex.functional_body(model, (), {})
    compile_data = ex.compile_data(model)
    if any(p.severity == "error" for p in ex.problems):
        raise SpecError(ex.problems)
    renamed: dict[str, str] = {}
    writer = _Writer(renamed)
    writer.prepare(body)
    names = _Names()
    input_names, keys = writer.top_keys(body, names)
    data: dict[str, Any] = {"modelspec": 1, "name": _valid(model.name, "model")}
    if writer.blocks:
        data["blocks"] = writer.blocks
    if body.input_specs:
        data["inputs"] = {n: body.input_specs[o] for n, o in zip(input_names, body.inputs)}
    layers, outputs = writer.entries(body, keys, input_names, chain=body.chain, top=True)
    data["layers"] = layers
    if not body.chain:
        data["outputs"] = outputs
    if compile_data:
        data["compile"] = compile_data
    spec = ModelSpec.model_validate(data)
    return Exported(spec, [p for p in ex.problems if p.severity == "warning"], renamed)


# -- model files ---------------------------------------------------------------------


def check_model_file(path: str, archive_check: Callable[[Any, int], str | None] | None = None) -> None:
    """Refuse, before Keras loads anything, a model file a spec cannot describe.

    Reads the archive's ``config.json`` only: a subclassed model and
    code-carrying layers (``Lambda``, ...) are refused by name, without
    deserializing (let alone running) anything.

    Args:
        path: The ``.keras`` file.
        archive_check: Says what makes the open archive unsafe to unpack (a
            zip bomb), from the archive and the file's size; None when it is fine.

    Raises:
        SpecError: The file is missing or not a ``.keras`` archive, or what it holds cannot be exported.
    """

    def fail(code: str, message: str, where: tuple = ("model",)) -> SpecError:
        return SpecError([Problem(where, message, path, code=code)])

    if os.path.isdir(path):
        raise fail("model-file", "is a folder, not a .keras model file")
    try:
        with zipfile.ZipFile(path) as archive:
            unsafe = archive_check(archive, os.path.getsize(path)) if archive_check is not None else None
            if unsafe:
                raise fail("model-archive", f"refused before unpacking: {unsafe}")
            info = archive.getinfo("config.json")
            if info.file_size > MAX_CONFIG_BYTES:
                raise fail(
                    "model-file",
                    f"its config.json is {info.file_size:,} bytes; at most {MAX_CONFIG_BYTES:,} are read",
                )
            config = json.loads(archive.read(info).decode("utf-8"))
    except SpecError:  # refused above, inside the archive
        raise
    except FileNotFoundError:
        raise fail("model-file", "no such file") from None
    except KeyError:
        raise fail("model-file", "not a .keras model file (the archive has no config.json)") from None
    except (zipfile.BadZipFile, EOFError, UnicodeDecodeError, ValueError, RecursionError) as e:
        raise fail("model-file", f"not a .keras model file ({' '.join(str(e).split())[:200]})") from None
    except OSError as e:
        raise fail("model-file", f"cannot read the file: {e.strerror or e}") from None
    problems: list[Problem] = []
    if isinstance(config, dict):
        class_name = str(config.get("class_name"))
        inner = config.get("config") if isinstance(config.get("config"), dict) else {}
        graph = class_name == "Sequential" or ("layers" in inner and "output_layers" in inner)
        if not graph:  # a functional model's config lists its layers and outputs; a subclassed one's does not
            problems.append(
                Problem(
                    (),
                    f"the model is a subclassed keras.Model ({config.get('registered_name') or class_name}): its "
                    "layers are connected by the Python code of its call(), which a spec cannot hold; only "
                    "Sequential and functional models can be exported",
                    path,
                    code="export-subclassed",
                )
            )
        else:
            problems += _code_layers(config, path)
    if problems:
        raise SpecError(problems)


def _code_layers(config: Any, path: str, depth: int = 0) -> list[Problem]:
    """Layers of a model config that carry code (``Lambda``, ...), found without deserializing anything."""
    found: list[Problem] = []
    if depth > 64:
        return found
    if isinstance(config, dict):
        class_name = config.get("class_name")
        module = str(config.get("module") or "")
        if class_name in _CODE_LAYERS and module.startswith("keras"):
            inner = config.get("config") if isinstance(config.get("config"), dict) else {}
            name = str(inner.get("name", class_name))
            reason = catalog.refused(str(class_name)) or "it runs code a spec cannot hold."
            found.append(
                Problem(
                    ("layers", name),
                    f"layer '{name}' is a {class_name} layer, which a spec cannot hold: {reason.rstrip('.')}",
                    path,
                    code="export-refused-layer",
                )
            )
            return found
        for value in config.values():
            found += _code_layers(value, path, depth + 1)
    elif isinstance(config, list):
        for value in config:
            found += _code_layers(value, path, depth + 1)
    return found


def load_model_file(
    path: str,
    custom_objects: dict[str, Any] | None = None,
    archive_check: Callable[[Any, int], str | None] | None = None,
) -> Any:
    """Load a ``.keras`` file to export, in Keras's safe mode, once :func:`check_model_file` accepts it.

    Raises:
        SpecError: The file cannot be exported, or Keras cannot load it.
    """
    check_model_file(path, archive_check)
    keras = load_keras()
    try:
        with warnings.catch_warnings():  # about optimizer variables and the like: export reads no weights
            warnings.simplefilter("ignore")
            return keras.saving.load_model(path, custom_objects=custom_objects, safe_mode=True, compile=True)
    except Exception as e:  # noqa: BLE001 - whatever Keras raises, the file is what is wrong
        text = " ".join(str(e).split())
        text = text[:397] + "..." if len(text) > 400 else text
        raise SpecError(
            [
                Problem(
                    ("model",),
                    f"Keras could not load the model: {text or type(e).__name__}",
                    path,
                    code="model-file",
                )
            ]
        ) from None
