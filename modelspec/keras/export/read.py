"""Reading a Keras graph into bodies: a Sequential model's layers, a functional model's call nodes.

Every node the outputs need becomes an entry: a layer (its arguments written
by :mod:`.arguments`), a ``share`` of a layer called before, an operation
(``keras.ops.add`` on symbolic tensors) of the allowlist, or an instance of a
nested model's body. A nested model called twice, or whose layers are also
used outside it, shares weights, which only ``share`` entries in one graph can
say: it is written into its parent's graph instead.
"""

from __future__ import annotations

import inspect
from collections import Counter
from typing import Any

from ... import catalog
from ...graph.model import snake_case
from ...spec.models import DTYPES
from ..values import plain_equal
from .arguments import Arguments
from .bodies import Body, Item, Placeholder, Ref, is_mask_of, is_tensor, tensors_in
from .keys import dict_output_keys, written_key
from .refusals import subclassed_message
from .report import Report

OP_ALIASES = {"absolute": "abs"}
"""Operation classes whose snake-case name is not the ``keras.ops`` function of the allowlist."""


def op_name(class_name: str) -> str:
    """The ``keras.ops`` function an operation class stands for: ``Add`` -> ``add``, ``HardSilu`` -> ``hard_silu``."""
    name = snake_case(class_name)
    return OP_ALIASES.get(name, name)


class Reader:
    """Reads a Sequential or functional model (and the models nested in it) into bodies.

    Args:
        keras: The ``keras`` module.
        arguments: Writes each layer's arguments.
        report: Where problems go.
    """

    def __init__(self, keras: Any, arguments: Arguments, report: Report):
        self.keras = keras
        self.arguments = arguments
        self.values = arguments.values
        self.report = report
        self.uses: Counter[int] = Counter()
        self.seen_models: set[int] = set()
        from keras.src.models.functional import Functional

        self.functional_class = Functional

    def is_sequential(self, model: Any) -> bool:
        return isinstance(model, self.keras.Sequential)

    def is_graph(self, model: Any) -> bool:
        """A model made of a graph of layers (Sequential or functional), not Python code."""
        return self.is_sequential(model) or isinstance(model, self.functional_class)

    def check_class(self, model: Any, path: tuple) -> bool:
        """Whether ``model`` can be exported; refuses a subclassed model, notes a subclass of a graph model."""
        cls = type(model)
        if not self.is_graph(model):
            registered = self.keras.saving.get_registered_name(cls)
            what = (
                f"{registered} from module {cls.__module__}"
                if ">" in registered
                else f"{cls.__module__}.{cls.__qualname__}"
            )  # as a model file's config names it
            self.report.error(path, "export-subclassed", subclassed_message(what))
            return False
        if cls not in (self.keras.Sequential, self.functional_class, self.keras.Model):
            self.report.warning(
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

    def sequential_body(self, model: Any, path: tuple) -> Body:
        body = Body(model.name, [], [], chain=True)
        first = model._layers[0] if model._layers else None
        if first is not None and self.is_input_layer(first):
            spec = self.input_spec(first, (*path, "inputs", first.name))
            body.inputs = [first.name]
            body.input_specs = {first.name: spec}
        previous: Ref | None = Ref(None, 0) if body.inputs else None
        for layer in model.layers:
            where = (*path, "layers", layer.name)
            if self.is_graph(layer):
                nested = self.nested_body(layer, {}, where)
                if nested is None:
                    continue
                if not nested.chain:
                    self.report.error(
                        where,
                        "export-unsupported",
                        f"the functional model '{layer.name}' inside a Sequential model has branches; "
                        "a list of layers can only use chain blocks",
                    )
                    continue
                body.items.append(Item("instance", layer.name, inputs=previous, body=nested))
            else:
                item = self.arguments.layer_item(layer, where)
                if item is None:
                    continue
                item.inputs = previous
                body.items.append(item)
            previous = Ref(len(body.items) - 1)
        return body

    def functional_body(self, model: Any, path: tuple, context: dict[str, Any]) -> Body:
        body = Body(model.name, [], [])
        refs: dict[int, Any] = {}
        for i, tensor in enumerate(model.inputs):
            layer = tensor._keras_history.operation
            name = layer.name if layer is not None and self.is_input_layer(layer) else f"input_{i}"
            body.inputs.append(name)
            if layer is not None and self.is_input_layer(layer):
                body.input_specs[name] = self.input_spec(layer, (*path, "inputs", name))
            else:
                body.input_specs[name] = self.tensor_spec(tensor, (*path, "inputs", name))
            refs[id(tensor)] = Ref(None, i)
        self.read_graph(model, body, refs, path, context)
        body.outputs = self.output_refs(model._outputs_struct, refs, (*path, "outputs"))
        return body

    def read_graph(
        self,
        model: Any,
        body: Body,
        refs: dict[int, Any],
        path: tuple,
        context: dict[str, Any],
        shared: dict[int, int] | None = None,
        *,
        inline: bool = False,
    ) -> None:
        """Read every node of ``model`` that its outputs need into ``body``; ``refs`` maps its tensors to references.

        ``shared`` maps id(layer) to the item that defines it in ``body``; with
        ``inline``, nested models are written into ``body`` too, not as instances.
        """
        nodes = self.graph_nodes(model)
        calls = {id(n): self.call_arguments(n) for n in nodes}
        needed = self.needed(model, nodes, calls)
        shared = {} if shared is None else shared
        for node in nodes:
            if id(node) not in needed:
                continue
            op = node.operation
            where = (*path, "layers", op.name)
            args, kwargs = calls[id(node)]
            count = len(node.outputs)
            if self.is_graph(op) and inline:
                inner = dict(context)
                inner.update({k: v for k, v in kwargs.items() if k in getattr(op, "_call_context_args", ())})
                given = args[0] if args else None
                tensors = list(given) if isinstance(given, (list, tuple)) else [given]
                outputs = self.inline(
                    op, [self.ref(t, refs, where) for t in tensors], body, where, inner, shared
                )
            elif self.is_graph(op):
                outputs = self.nested_call(op, count, args, kwargs, body, refs, where, context, shared)
            elif isinstance(op, self.keras.layers.Layer):
                outputs = self.layer_call(op, count, args, kwargs, body, refs, where, context, shared)
                keys = dict_output_keys(op, node) if outputs is not None and count > 1 else None
                if keys is not None and outputs is not None:  # a dict of outputs: referenced by key
                    outputs = [Ref(r.item, r.source, key) for r, key in zip(outputs, keys)]
            else:
                outputs = self.op_call(op, count, args, kwargs, body, refs, where)
            if outputs is None:  # refused and reported: what uses it is not reported again
                outputs = [Ref(None, 0)] * len(node.outputs)
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
            elif key in masks and is_mask_of(value, masks[key]):
                del kwargs[key]  # Keras attached it to the tensor and passes it again on every call
            elif key in getattr(op, "_call_context_args", ()) and key in signature and not is_tensor(value):
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
            for tensor in tensors_in((args, kwargs)):
                if id(tensor) in producer:
                    stack.append(producer[id(tensor)])
        return needed

    def refs_of(self, value: Any, refs: dict[int, Any], where: tuple) -> Any:
        """A call argument's tensors as references: one, or a list; None when it holds no tensor."""
        if is_tensor(value):
            return self.ref(value, refs, where)
        if isinstance(value, (list, tuple)) and value and all(is_tensor(v) for v in value):
            return [self.ref(v, refs, where) for v in value]
        if tensors_in(value):
            self.report.error(
                where,
                "export-unsupported",
                "a call argument holds tensors in a structure the format cannot say "
                "(a reference, or a list of references, only)",
            )
            return Ref(None, 0)
        return None

    def ref(self, tensor: Any, refs: dict[int, Any], where: tuple) -> Any:
        if isinstance(tensor, Placeholder):
            return tensor.ref
        ref = refs.get(id(tensor))
        if ref is None:
            self.report.error(
                where, "export-unsupported", "a call argument is a tensor from outside the model's graph"
            )
            return Ref(None, 0)
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
                self.report.error(
                    where,
                    "export-unsupported",
                    f"the layer is called with {len(args)} positional arguments; its call() names {len(names)}",
                )
                return Ref(None, 0), {}
            named[names[i]] = value
        named.update(kwargs)
        tensors: dict[str, Any] = {}
        constants: dict[str, Any] = {}
        for key, value in named.items():
            found = self.refs_of(value, refs, (*where, "inputs", key))
            if found is not None:
                tensors[key] = found
            else:
                constants[key] = self.values.value(value, None, (*where, "call", key))
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
        body: Body,
        refs: dict[int, Any],
        where: tuple,
        context: dict[str, Any],
        shared: dict[int, int],
    ) -> list[Ref] | None:
        inputs, call = self.split_call(layer, args, kwargs, refs, where)
        call = self.apply_context(layer, call, context)
        if id(layer) in shared:
            item = Item("share", layer.name, share=shared[id(layer)], inputs=inputs, call=call)
        else:
            new = self.arguments.layer_item(layer, where)
            if new is None:
                return None
            item = new
            item.inputs, item.call = inputs, call
            shared[id(layer)] = len(body.items)
        return self.add(body, item, count)

    def add(self, body: Body, item: Item, count: int) -> list[Ref]:
        item.outputs = count
        body.items.append(item)
        j = len(body.items) - 1
        return [Ref(j, index=None if count == 1 else i) for i in range(count)]

    def op_call(
        self,
        op: Any,
        count: int,
        args: tuple,
        kwargs: dict[str, Any],
        body: Body,
        refs: dict[int, Any],
        where: tuple,
    ) -> list[Ref] | None:
        cls = type(op)
        name = op_name(cls.__name__)
        info = catalog.op(name)
        if info is None:
            self.report.error(
                where,
                "export-unsupported",
                f"the operation '{op.name}' (keras.ops.{name}, class {cls.__name__}) is not one of the keras.ops "
                "functions a spec may call",
            )
            return None
        try:
            bound = inspect.signature(op.call).bind(*args, **kwargs).arguments
            config = op.get_config()
        except (TypeError, NotImplementedError) as e:
            self.report.error(where, "export-unsupported", f"the operation '{op.name}' cannot be read: {e}")
            return None
        config.pop("name", None)
        params = {**config, **bound}
        tensors: dict[str, Any] = {}
        constants: dict[str, Any] = {}
        for key, value in params.items():
            if key not in info.args:
                self.report.error(
                    where,
                    "export-unsupported",
                    f"the operation '{op.name}' has a setting {key!r} that keras.ops.{name} does not take",
                )
                return None
            if key == info.variadic and isinstance(value, tuple):
                value = list(value)
            if name == "get_item" and key == "key":
                written = self.subscript(value, (*where, key))
                if written is None:
                    return None
                constants[key] = written
                continue
            found = self.refs_of(value, refs, (*where, "inputs", key))
            if found is not None:
                tensors[key] = found
                continue
            value = self.values.value(value, None, (*where, key))
            default = info.args[key].default
            if default is not catalog.MISSING and plain_equal(value, default) and not info.args[key].required:
                continue
            constants[key] = value
        inputs = info.inputs_of(tensors)  # the catalog's mapping of tensors to parameters, read backwards
        return self.add(body, Item("op", op.name, type=name, args=constants, inputs=inputs), count)

    def subscript(self, key: Any, where: tuple) -> str | None:
        """A ``GetItem`` operation's key as a spec writes it, ``"[:, 0, :]"``; None (reported) when it is not static."""
        text = written_key(key)
        if text is None:
            self.report.error(
                where,
                "export-unsupported",
                f"the index {key!r} is not a static key (integers, slices of integers, None and ...)",
            )
        return text

    def nested_call(
        self,
        model: Any,
        count: int,
        args: tuple,
        kwargs: dict[str, Any],
        body: Body,
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
                self.report.error(
                    (*where, "call", key),
                    "export-unsupported",
                    f"the model '{model.name}' is called with {key!r}, which a block instance cannot pass on",
                )
                return None
        if len(args) != 1:
            self.report.error(
                where, "export-unsupported", f"the model '{model.name}' is called with {len(args)} arguments"
            )
            return None
        given = args[0]
        tensors = list(given) if isinstance(given, (list, tuple)) else [given]
        if isinstance(given, dict) or not all(is_tensor(t) for t in tensors):
            self.report.error(
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
        return self.add(body, Item("instance", model.name, inputs=inputs, body=nested), count)

    def nested_body(self, model: Any, context: dict[str, Any], where: tuple) -> Body | None:
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

    def sequential_as_graph(self, model: Any, where: tuple, context: dict[str, Any]) -> Body:
        """A nested Sequential model called with ``training``: a DAG block whose entries pass it on."""
        body = self.sequential_body(model, where)
        body.chain = False
        for j, item in enumerate(body.items):
            item.inputs = Ref(j - 1) if j else Ref(None, 0)
            layer = next((layer for layer in model.layers if layer.name == item.name), None)
            if layer is not None and item.kind == "layer":
                item.call = self.apply_context(layer, item.call, context)
        body.outputs = Ref(len(body.items) - 1) if body.items else None
        if not body.inputs:
            body.inputs = ["x"]
        return body

    def is_chain(self, body: Body) -> bool:
        if len(body.inputs) != 1 or not body.items:
            return False
        for j, item in enumerate(body.items):
            expected = Ref(j - 1) if j else Ref(None, 0)
            if item.inputs != expected or item.call or item.kind in ("share", "op") or item.outputs != 1:
                return False
            if item.kind == "instance" and item.body is not None and not item.body.chain:
                return False
        return body.outputs == Ref(len(body.items) - 1)

    def inline(
        self,
        model: Any,
        values: list[Any],
        body: Body,
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
                        layer, 1, (Placeholder(current),), {}, body, {}, at, context, shared
                    )
                    if out is None:
                        return None
                current = out[0]
            return [current]
        refs: dict[int, Any] = {id(t): v for t, v in zip(model.inputs, values)}
        self.read_graph(model, body, refs, where, context, shared, inline=True)
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
            self.report.error(
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
                self.report.error(
                    where, "export-unsupported", f"the input is {flag}, which a spec cannot declare"
                )
        return spec
