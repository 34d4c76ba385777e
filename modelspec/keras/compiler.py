"""The compiler stage: a checked :class:`~modelspec.graph.Graph` to a Keras model.

The only stage that imports Keras, and only when it runs. A list of layers
lowers to ``keras.Sequential`` (unbuilt when it declares no input, as Keras
builds one); a DAG lowers to a functional ``keras.Model`` by walking the
graph with Keras tensors. Keras's own errors while a node is made or called
are reported at that node's origin.
"""

from __future__ import annotations

import copy
import inspect
import re
from typing import Any

from .. import catalog
from ..errors import Origin, SpecError
from ..graph import Graph, Input, Node, Ref, Refs, walk
from ..spec.subscript import parse_key
from .backend import load_keras, set_seed
from .messages import keras_message
from .values import Deserializer


def to_keras(graph: Graph, custom_objects: dict[str, Any] | None = None) -> Any:
    """Build (and compile, when the spec says how) the Keras model of ``graph``.

    Raises:
        SpecError: Keras refused a layer, a call or the compile step; the
            problem points at the spec line concerned.
    """
    from .recursion import run_deep

    keras = load_keras()
    return run_deep(lambda: Compiler(keras, graph, custom_objects or {}).run(), len(graph.nodes))


def keras_problem(
    at: Origin,
    message: str,
    error: BaseException,
    *,
    key: bool = True,
    args: Any = (),
    code: str = "keras-build",
) -> SpecError:
    """A located problem for a Keras error; at the argument it names, if it names one of ``args``."""
    text = keras_message(error)
    named = [(m.start(), a) for a in args if (m := re.search(rf"\b{re.escape(a)}\b", text))]
    if named:
        at, key = at.at(min(named)[1]), False
    return SpecError([at.problem(code, f"{message}: {text}", key=key)])


class Compiler:
    """Lowers one graph to a Keras model."""

    def __init__(self, keras: Any, graph: Graph, custom_objects: dict[str, Any]):
        self.keras = keras
        self.graph = graph
        self.objects = Deserializer(keras, custom_objects)
        self.names = graph.keras_names()

    def run(self) -> Any:
        if self.graph.seed is not None:
            set_seed(self.keras, self.graph.seed)
        model = self.sequential() if self.graph.model_class == "Sequential" else self.functional()
        if self.graph.compile is not None:
            self.compile(model)
        return model

    # -- layers ------------------------------------------------------------

    def make_layer(self, node: Node) -> Any:
        try:
            return self.objects.layer(node.type, node.args, self.names.get(node.name))  # type: ignore[arg-type]
        except Exception as e:  # noqa: BLE001 - any Keras refusal is the user's to fix
            raise keras_problem(
                node.origin, f"Keras could not create this {node.type} layer", e, args=node.args
            ) from None

    def input(self, spec: Input) -> Any:
        try:
            return self.keras.Input(
                shape=spec.shape,
                batch_size=spec.batch_size,
                dtype=spec.dtype,
                sparse=spec.sparse,
                name=spec.name,
            )
        except Exception as e:  # noqa: BLE001
            raise keras_problem(spec.origin, f"Keras could not create input '{spec.name}'", e) from None

    # -- models ------------------------------------------------------------

    def sequential(self) -> Any:
        """``keras.Sequential`` of every layer at once: Keras builds the stack once, not once per layer.

        (Adding the layers one by one rebuilds the whole stack each time: quadratic
        in the depth.) When Keras refuses the stack, it is built again layer by
        layer to find the one it refuses, and the problem is reported there.
        """
        inputs = [self.input(spec) for spec in self.graph.inputs.values()]
        layers = [self.make_layer(node) for node in self.graph.nodes]
        try:
            return self.keras.Sequential([*inputs, *layers], name=self.graph.name)
        except Exception as e:  # noqa: BLE001
            raise self.sequential_problem(e) from None

    def sequential_problem(self, error: Exception) -> SpecError:
        """The problem of a stack Keras refused, at the first layer it refuses when called in order."""
        x = next((self.input(spec) for spec in self.graph.inputs.values()), None)
        for node in self.graph.nodes:
            layer = self.make_layer(node)
            if x is None:
                continue
            try:
                x = layer(x)
            except NotImplementedError:  # no shape inference: Keras leaves such a stack unbuilt
                x = None
            except Exception as e:  # noqa: BLE001
                return keras_problem(node.origin, f"Keras could not add this {node.type} layer", e)
        return keras_problem(
            self.graph.origin.at("layers"), "Keras could not make the Sequential model", error
        )

    def functional(self) -> Any:
        made: dict[str, Any] = {}
        for node in self.graph.nodes:  # make every layer first: a share may come before its target
            if node.share is None and node.op is None:
                made[node.name] = self.make_layer(node)

        def call(node: Node, args: Any) -> Any:
            if node.op is not None:
                return self.operation(node, args)
            layer = made[node.share or node.name]
            try:
                if isinstance(node.inputs, dict):
                    first = self.first_call_argument(node)
                    positional = [args.pop(first)] if first in args else []
                    return layer(*positional, **args, **node.call)
                return layer(args, **node.call)
            except Exception as e:  # noqa: BLE001
                what = f"the layer of '{node.share}'" if node.share else f"this {node.type} layer"
                raise keras_problem(
                    node.origin, f"Keras could not call {what} on {_describe(node.inputs)}", e
                ) from None

        tensors, outputs = walk(self.graph, self.input, call)
        inputs = [tensors[name] for name in self.graph.inputs]
        try:
            return self.keras.Model(
                inputs=inputs[0] if len(inputs) == 1 else inputs, outputs=outputs, name=self.graph.name
            )
        except Exception as e:  # noqa: BLE001
            raise keras_problem(
                self.graph.origin.at("outputs"), "Keras could not make the model", e
            ) from None

    def operation(self, node: Node, args: Any) -> Any:
        """An ``op`` node: ``keras.ops.NAME`` on symbolic tensors, as Keras records it in a functional model."""
        fn = getattr(self.keras.ops, node.op)  # type: ignore[arg-type]
        info = catalog.op(node.op or "")
        if info is None:  # the spec checks refuse an op outside the allowlist
            raise SpecError(
                [node.origin.at("op").problem("unknown-op", f"keras.ops.{node.op} is not allowed")]
            )
        bound = info.bind(args)
        # Keras may rewrite a list argument in place (pad's pad_width): it gets a copy.
        keywords = copy.deepcopy(node.args)
        self.constants(keywords, info, next(iter(bound.values()), None))
        if node.op == "get_item":
            keywords["key"] = parse_key(keywords["key"])
        positional, keywords = info.call_arguments({**bound, **keywords})
        try:
            result = fn(*positional, **keywords)
        except Exception as e:  # noqa: BLE001
            raise keras_problem(
                node.origin, f"Keras could not apply keras.ops.{node.op} to {_describe(node.inputs)}", e
            ) from None
        # Keras names the operation after its function ('add', 'add_1', ... by a per-process counter),
        # which can be the name of a node of the spec: it gets its node's name, unique in the model.
        first = result[0] if isinstance(result, (list, tuple)) and result else result  # split, top_k, unstack
        history = getattr(first, "_keras_history", None)
        operation = getattr(history, "operation", None)
        if operation is not None and not isinstance(operation, self.keras.layers.Layer) and node.keras_name:
            operation.name = node.keras_name
        return result

    def constants(self, keywords: dict[str, Any], info: catalog.OpInfo, first: Any) -> None:
        """Lists given for tensor parameters become constant arrays of the first input's dtype.

        (``{op: subtract, inputs: [x], x2: [0.485, 0.456, 0.406]}``: ``keras.ops`` refuses
        nested lists. A number stays a Python number, which Keras takes in the dtype of
        the tensor it meets, as ``x + 3.0`` does.)
        """
        import numpy as np

        dtype = getattr(first, "dtype", None)
        for name, value in keywords.items():
            if isinstance(value, list) and name in info.tensors:
                keywords[name] = np.asarray(
                    value, dtype=self.keras.backend.standardize_dtype(dtype) if dtype else None
                )

    def first_call_argument(self, node: Node) -> str | None:
        """The name of the layer's first ``call`` parameter, passed positionally as in Keras code."""
        target = self.graph.node(node.share) if node.share else node
        info = catalog.layer(target.type or "")
        if info is not None:
            return info.call[0] if info.call else None
        try:  # a custom or library layer: its own call's signature
            params = inspect.signature(self.objects.layer_class(target.type or "").call).parameters
        except (KeyError, TypeError, ValueError, AttributeError):
            return None
        return next((n for n, p in params.items() if n != "self" and p.kind is p.POSITIONAL_OR_KEYWORD), None)

    # -- compile -----------------------------------------------------------

    def compile(self, model: Any) -> None:
        c = self.graph.compile
        assert c is not None
        at = self.graph.origin.at("compile")
        kwargs = dict(c)
        for field_name, module in catalog.COMPILE_MODULES.items():
            if field_name in c:
                try:
                    kwargs[field_name] = self.objects.per_output(module, c[field_name])
                except Exception as e:  # noqa: BLE001
                    raise keras_problem(
                        at.at(field_name), f"Keras could not make the {field_name}", e, code="keras-compile"
                    ) from None
        try:
            model.compile(**kwargs)
        except Exception as e:  # noqa: BLE001
            raise keras_problem(at, "Keras could not compile the model", e, code="keras-compile") from None


def _describe(refs: Refs | None) -> str:
    if isinstance(refs, Ref):
        return f"'{refs}'"
    if isinstance(refs, dict):
        return "{" + ", ".join(f"{k}: {_describe(v)}" for k, v in refs.items()) + "}"
    if isinstance(refs, list):
        return "[" + ", ".join(_describe(r) for r in refs) + "]"
    return "its input"
