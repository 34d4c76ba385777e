"""Stage 4, compiler: a checked :class:`Graph` to a Keras model.

The only stage that imports Keras, and only when it runs. A list of layers
lowers to ``keras.Sequential`` (unbuilt when it declares no input, as Keras
builds one); a mapping lowers to a functional ``keras.Model``. Keras's own
errors while a node is made or called are reported at that node's line.
Classes resolve only from ``keras.layers`` (and the other ``keras.*`` object
modules) through the catalog's allowlist, or from the caller's custom objects.
"""

from __future__ import annotations

import os
import re
from typing import Any

from . import _catalog as catalog
from ._errors import Path, SpecError
from ._graph import Graph, Node, Ref, Refs
from ._spec import ModelSpec


def to_keras(graph: Graph, custom_objects: dict[str, Any] | None = None) -> Any:
    """Build (and compile, when the spec says how) the Keras model of ``graph``.

    Raises:
        SpecError: Keras refused a layer, a call or the compile step; the
            problem points at the spec line concerned.
    """
    import keras

    return Compiler(keras, graph, custom_objects or {}).run()


def model_name(spec: ModelSpec) -> str | None:
    """The spec's ``name``, else its file's stem, else None (Keras picks one)."""
    if spec.name:
        return spec.name
    source = spec.source
    if source is not None and not source.name.startswith("<"):
        return os.path.splitext(os.path.basename(source.name))[0]
    return None


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
"""Terminal styling Keras puts in some messages."""


def _keras_message(error: BaseException) -> str:
    """Keras's message, first lines only, without the noise of a traceback."""
    text = " ".join(_ANSI.sub("", str(error)).split())
    if len(text) > 400:
        text = text[:397] + "..."
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


class Compiler:
    """Lowers one graph to Keras; also makes the spec's Keras objects for training (callbacks)."""

    def __init__(self, keras: Any, graph: Graph, custom_objects: dict[str, Any]):
        self.keras = keras
        self.graph = graph
        self.spec = graph.spec
        self.custom = custom_objects

    def fail(
        self, path: Path, message: str, error: BaseException, *, key: bool = True, args: Any = ()
    ) -> SpecError:
        """A located problem for a Keras error; at the argument it names, if it names one of ``args``."""
        text = _keras_message(error)
        named = [(m.start(), a) for a in args if (m := re.search(rf"\b{re.escape(a)}\b", text))]
        if named:
            path, key = path + (min(named)[1],), False
        return SpecError([self.spec.problem(path, f"{message}: {text}", key=key)])

    def run(self) -> Any:
        keras = self.keras
        if self.spec.seed is not None:
            keras.utils.set_random_seed(self.spec.seed)
        model = self.sequential() if self.graph.sequential else self.functional()
        if self.spec.compile is not None:
            self.compile(model)
        return model

    # -- layers ------------------------------------------------------------

    def layer_class(self, type_name: str) -> Any:
        if type_name in self.custom:
            return self.custom[type_name]
        info = catalog.layer(type_name)
        if info is None:  # the spec stage refuses these; a guard for specs made in Python
            raise KeyError(f"unknown layer type {type_name!r}")
        return getattr(self.keras.layers, type_name)

    def make_layer(self, type_name: str, args: dict[str, Any], name: str | None) -> Any:
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
        if kind == "layer" and value is not None:
            if isinstance(value, list):
                return [self.argument("layer", v) for v in value]
            entry = dict(value)
            return self.make_layer(entry.pop("type"), entry, entry.pop("name", None))
        if kind in catalog.KIND_MODULES and isinstance(value, dict):
            return self.keras_object(catalog.KIND_MODULES[kind], value)
        return value  # names: Keras resolves them inside the matching module

    def keras_object(self, module: str, value: Any) -> Any:
        """``{type: Class, ...}`` to an instance of ``keras.<module>.Class``; names pass through."""
        if not isinstance(value, dict):
            return self.custom.get(value, value) if isinstance(value, str) else value
        args = dict(value)
        type_name = args.pop("type")
        if type_name in self.custom:
            return self.custom[type_name](**args)
        if catalog.object_class(module, type_name) is None:
            raise KeyError(f"unknown {module} class {type_name!r}")
        if module == "optimizers" and isinstance(args.get("learning_rate"), dict):
            args["learning_rate"] = self.keras_object("schedules", args["learning_rate"])
        owner = self.keras.optimizers.schedules if module == "schedules" else getattr(self.keras, module)
        return getattr(owner, type_name)(**args)

    def node_layer(self, node: Node, made: dict[str, Any]) -> Any:
        entry = node.entry
        if node.share is not None:
            return made[node.share]
        keras_name = entry.name if self.graph.sequential else node.name
        try:
            return self.make_layer(entry.type, entry.args, keras_name)  # type: ignore[arg-type]
        except Exception as e:  # noqa: BLE001 - any Keras refusal is the user's to fix
            raise self.fail(
                node.path, f"Keras could not create this {entry.type} layer", e, args=entry.args
            ) from None

    # -- models ------------------------------------------------------------

    def input(self, name: str) -> Any:
        spec = self.graph.inputs[name]
        try:
            return self.keras.Input(
                shape=tuple(spec.shape),
                batch_size=spec.batch_size,
                dtype=spec.dtype,
                sparse=spec.sparse,
                name=name,
            )
        except Exception as e:  # noqa: BLE001
            raise self.fail(("inputs", name), f"Keras could not create input '{name}'", e) from None

    def sequential(self) -> Any:
        keras = self.keras
        model = keras.Sequential(name=model_name(self.spec))
        if self.graph.inputs:
            model.add(self.input(next(iter(self.graph.inputs))))
        made: dict[str, Any] = {}
        for node in self.graph.nodes:
            layer = self.node_layer(node, made)
            try:
                model.add(layer)
            except Exception as e:  # noqa: BLE001
                raise self.fail(node.path, f"Keras could not add this {node.entry.type} layer", e) from None
        return model

    def functional(self) -> Any:
        keras = self.keras
        tensors: dict[str, Any] = {name: self.input(name) for name in self.graph.inputs}
        made: dict[str, Any] = {}
        for node in self.graph.nodes:  # make every layer first: a share may come before its target
            if node.share is None:
                made[node.name] = self.node_layer(node, made)
        for node in self.graph.nodes:
            layer = made[node.share] if node.share else made[node.name]
            args = self.resolve(node.inputs, tensors, node.path + ("inputs",))
            try:
                if isinstance(node.inputs, dict):
                    first = self.first_call_argument(node)
                    positional = [args.pop(first)] if first in args else []
                    tensors[node.name] = layer(*positional, **args, **node.call)
                else:
                    tensors[node.name] = layer(args, **node.call)
            except Exception as e:  # noqa: BLE001
                what = f"the layer of '{node.share}'" if node.share else f"this {node.entry.type} layer"
                raise self.fail(
                    node.path, f"Keras could not call {what} on {_describe(node.inputs)}", e
                ) from None
        outputs = self.resolve(self.graph.outputs, tensors, ("outputs",))
        inputs = [tensors[name] for name in self.graph.inputs]
        try:
            return keras.Model(
                inputs=inputs[0] if len(inputs) == 1 else inputs,
                outputs=outputs,
                name=model_name(self.spec),
            )
        except Exception as e:  # noqa: BLE001
            raise self.fail(("outputs",), "Keras could not make the model", e) from None

    def first_call_argument(self, node: Node) -> str | None:
        """The name of the layer's first ``call`` parameter, passed positionally as in Keras code."""
        target = self.graph.node(node.share) if node.share else node
        info = catalog.layer(target.entry.type or "")
        return info.call[0] if info is not None and info.call else None

    def resolve(self, refs: Refs | None, tensors: dict[str, Any], path: Path) -> Any:
        """The tensors ``refs`` name; ``name[i]`` must pick an existing output of a multi-output layer."""
        if isinstance(refs, Ref):
            value = tensors[refs.name]
            if refs.index is None:
                return value
            several = isinstance(value, (list, tuple))
            if not several or not -len(value) <= refs.index < len(value):
                has = f"{len(value)} outputs" if several else "one output"
                raise SpecError(
                    [
                        self.spec.problem(
                            path,
                            f"'{refs}': node '{refs.name}' has {has}",
                            f"index it from 0 to {len(value) - 1}"
                            if several
                            else f"write '{refs.name}' without an index",
                        )
                    ]
                )
            return value[refs.index]
        if isinstance(refs, dict):
            return {k: self.resolve(v, tensors, path + (k,)) for k, v in refs.items()}
        if isinstance(refs, list):
            return [self.resolve(v, tensors, path + (i,)) for i, v in enumerate(refs)]
        return None

    # -- compile -----------------------------------------------------------

    def compile(self, model: Any) -> None:
        c = self.spec.compile
        assert c is not None
        kwargs: dict[str, Any] = {}
        try:
            for field_name, module in (
                ("optimizer", "optimizers"),
                ("loss", "losses"),
                ("metrics", "metrics"),
                ("weighted_metrics", "metrics"),
            ):
                value = getattr(c, field_name)
                if value is not None:
                    kwargs[field_name] = self.per_output(module, value)
        except Exception as e:  # noqa: BLE001
            raise self.fail(("compile", field_name), f"Keras could not make the {field_name}", e) from None
        for field_name in ("loss_weights", "run_eagerly", "steps_per_execution", "jit_compile"):
            value = getattr(c, field_name)
            if value is not None:
                kwargs[field_name] = value
        try:
            model.compile(**kwargs)
        except Exception as e:  # noqa: BLE001
            raise self.fail(("compile",), "Keras could not compile the model", e) from None

    def per_output(self, module: str, value: Any) -> Any:
        if isinstance(value, list):
            return [self.per_output(module, v) for v in value]
        if isinstance(value, dict) and "type" not in value:
            return {k: self.per_output(module, v) for k, v in value.items()}
        return self.keras_object(module, value)


def _describe(refs: Refs | None) -> str:
    if isinstance(refs, Ref):
        return f"'{refs}'"
    if isinstance(refs, dict):
        return "{" + ", ".join(f"{k}: {_describe(v)}" for k, v in refs.items()) + "}"
    if isinstance(refs, list):
        return "[" + ", ".join(_describe(r) for r in refs) + "]"
    return "its input"
