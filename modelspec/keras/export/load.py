"""A ``.keras`` file to export: refused from its ``config.json`` before Keras loads it, then loaded safely.

The file is read bounded (:mod:`modelspec.keras.archive`: a regular file, a
checked zip directory, a ``config.json`` of at most 100,000 layers and calls);
a subclassed model, a layer that carries code, and a class from outside Keras
that nothing registered are refused by name, from the config alone. A model
written by modelspec gets back the provenance its ``modelspec.json`` holds
(:mod:`.provenance`).
"""

from __future__ import annotations

import json
import os
import warnings
from typing import Any

from ... import catalog
from ...errors import Problem, SpecError
from ..archive import METADATA, graph_size, read_config, read_metadata_bytes
from ..backend import load_keras
from ..messages import clipped
from ..recursion import run_deep
from .provenance import KEY, Record, attach
from .refusals import refused_layer_message, subclassed_message

KERAS_PACKAGES = frozenset({"keras", "keras_hub", "keras_cv", "keras_nlp"})
"""Packages whose classes Keras finds by their module (importing it); a class from elsewhere must be registered."""


def check_model_file(path: str, custom_objects: dict[str, Any] | None = None) -> Any:
    """Refuse, before Keras loads anything, a model file a spec cannot describe; its parsed ``config.json``.

    Reads the archive's ``config.json`` only: a subclassed model and
    code-carrying layers (``Lambda``, ...) are refused by name, without
    deserializing (let alone running) anything. A model of a registered
    functional subclass (a KerasHub ``Backbone``, whose config holds its
    constructor's arguments rather than its layers) is accepted: loaded, it
    is a graph of layers, which export reads as any functional model's.

    Args:
        path: The ``.keras`` file.
        custom_objects: What is registered (``--plugin keras_hub``), besides
            Keras's registry; None: no class is looked up (Keras is not imported).

    Raises:
        SpecError: The file is missing, not a ``.keras`` archive, over the
            archive or size limits, or what it holds cannot be exported.
    """
    config = read_config(path)
    problems: list[Problem] = []
    if isinstance(config, dict):
        class_name = str(config.get("class_name"))
        inner = config.get("config") if isinstance(config.get("config"), dict) else {}
        graph = class_name == "Sequential" or ("layers" in inner and "output_layers" in inner)
        if not graph and custom_objects is not None:
            graph = _registered_functional(config, custom_objects)
        if not graph:  # a functional model's config lists its layers and outputs; a subclassed one's does not
            what = str(config.get("registered_name") or class_name)
            if config.get("module"):
                what += f" from module {config['module']}"
            problems.append(Problem((), subclassed_message(what), path, code="export-subclassed"))
        else:
            problems += _code_layers(config, path)
    if problems:
        raise SpecError(problems)
    return config


def _registered_functional(config: dict[str, Any], custom_objects: dict[str, Any]) -> bool:
    """Whether the model's class is a registered ``keras.Model`` subclass, which may make a graph in its constructor.

    Keras makes such a model functional when its constructor calls
    ``keras.Model.__init__(inputs=..., outputs=...)`` (KerasHub's backbones):
    only the loaded model tells, and export refuses it there if it is not.
    """
    keras = load_keras()
    name = str(config.get("registered_name") or config.get("class_name"))
    cls = custom_objects.get(name) or keras.saving.get_registered_object(name, custom_objects=custom_objects)
    return isinstance(cls, type) and issubclass(cls, keras.Model)


def _serialized_objects(config: Any) -> list[dict[str, Any]]:
    """Every serialized object (``{class_name, module, config, ...}``) in a config, outermost first."""
    found = []
    stack = [config]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            if isinstance(value.get("class_name"), str) and "config" in value:
                found.append(value)
            stack.extend(reversed([v for v in value.values() if isinstance(v, (dict, list))]))
        elif isinstance(value, list):
            stack.extend(reversed([v for v in value if isinstance(v, (dict, list))]))
    return found


def _code_layers(config: Any, path: str) -> list[Problem]:
    """Layers of a model config that carry code (``Lambda``, ...), found without deserializing anything."""
    found: list[Problem] = []
    inside: set[int] = set()  # objects within a refused layer: reported once, at the layer
    for value in _serialized_objects(config):
        if id(value) in inside:
            continue
        class_name = value["class_name"]
        if class_name in catalog.CODE_LAYERS and str(value.get("module") or "").startswith("keras"):
            inner = value.get("config") if isinstance(value.get("config"), dict) else {}
            name = str(inner.get("name", class_name))
            message = refused_layer_message(name, class_name)
            found.append(Problem(("layers", name), message, path, code="export-refused-layer"))
            inside.update(id(v) for v in _serialized_objects(value.get("config")))
    return found


def _unknown_classes(keras: Any, config: Any, custom_objects: dict[str, Any], path: str) -> list[Problem]:
    """Classes from outside Keras's packages that neither ``custom_objects`` nor Keras's registry knows.

    Keras would refuse them too, but its message quotes the whole serialized
    object and not always the module; this one names the class, its module and the layer.
    """
    problems: list[Problem] = []
    seen: set[tuple[str, str]] = set()
    for value in _serialized_objects(config):
        module = value.get("module")
        class_name = value["class_name"]
        if not isinstance(module, str) or not module or class_name == "function":
            continue  # a function is found by its registered name; Keras names it when it cannot
        if module.split(".", 1)[0] in KERAS_PACKAGES or module == "builtins":
            continue
        registered = str(value.get("registered_name") or class_name)
        if class_name in custom_objects or registered in custom_objects:
            continue
        if keras.saving.get_registered_object(registered, custom_objects=custom_objects) is not None:
            continue
        if (registered, module) in seen:
            continue
        seen.add((registered, module))
        inner = value.get("config") if isinstance(value.get("config"), dict) else {}
        name = inner.get("name")
        where: tuple = ("layers", str(name)) if isinstance(name, str) and name else ()
        problems.append(
            Problem(
                where,
                f"the model uses class {class_name} from module {module} (registered as {registered!r}), which "
                "no loaded module registers: Keras cannot make it",
                path,
                hint="load the module that defines it with --plugin MODULE (or pass custom_objects=)",
                code="export-unknown-class",
            )
        )
    return problems


def load_model_file(path: str, custom_objects: dict[str, Any] | None = None) -> Any:
    """Load a ``.keras`` file to export, in Keras's safe mode, once :func:`check_model_file` accepts it.

    Raises:
        SpecError: The file cannot be exported, names a class nothing
            registered, or Keras cannot load it.
    """
    config = check_model_file(path, dict(custom_objects or {}))
    keras = load_keras()
    unknown = _unknown_classes(keras, config, dict(custom_objects or {}), path)
    if unknown:
        raise SpecError(unknown)

    def load() -> Any:
        with warnings.catch_warnings():  # about optimizer variables and the like: export reads no weights
            warnings.simplefilter("ignore")
            return keras.saving.load_model(path, custom_objects=custom_objects, safe_mode=True, compile=True)

    try:  # Keras reads a deep model's configuration recursively: room for as many layers as it describes
        model = run_deep(load, graph_size(config)[0])
    except Exception as e:  # noqa: BLE001 - whatever Keras raises, the file is what is wrong
        message = f"Keras could not load the model: {clipped(e)}"
        raise SpecError([Problem(("model",), message, path, code="model-file")]) from None
    saved = saved_record(path)
    if saved is not None:
        attach(model, saved)
    return model


def saved_record(path: str) -> Record | None:
    """The provenance record in a model file's ``modelspec.json``; None when there is none, or none of its shape.

    Nothing here fails: a file without the entry (a model saved by Keras),
    with an entry over the size limit, not JSON, or with a record of the
    wrong shape is exported by folding its graph instead.
    """
    try:
        raw = read_metadata_bytes(path)
        metadata = json.loads(raw.decode("utf-8")) if raw is not None else None
    except (SpecError, UnicodeDecodeError, ValueError, RecursionError):
        return None
    if not isinstance(metadata, dict):
        return None
    where = os.path.dirname(os.path.abspath(path))
    return Record.from_json(metadata.get(KEY), f"{path} ({METADATA})", where)
