"""The layer catalog: what Keras layers and objects a spec may use, without importing Keras.

The data lives in ``catalog.json``, generated from the installed Keras by
``python -m modelspec.catalog.generate``. Importing Keras takes seconds; reading
the JSON takes milliseconds, so checking a spec stays fast. This module must
never import Keras or TensorFlow.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from ..errors import suggest

__all__ = [
    "KIND_MODULES",
    "LAYER_KIND_ARGS",
    "MISSING",
    "MODULES",
    "ArgInfo",
    "LayerInfo",
    "ObjectInfo",
    "OpInfo",
    "argument_kind",
    "catalog",
    "dtypes",
    "keras_version",
    "layer",
    "layer_types",
    "object_class",
    "object_classes",
    "object_names",
    "op",
    "op_names",
    "refused",
    "refused_object",
    "schedule_argument",
    "suggest",
]

CATALOG_PATH: Final = Path(__file__).with_name("catalog.json")

MODULES: Final = (
    "activations",
    "initializers",
    "regularizers",
    "constraints",
    "optimizers",
    "schedules",
    "losses",
    "metrics",
    "callbacks",
)
"""The object modules the catalog describes (``schedules`` is ``keras.optimizers.schedules``)."""

KIND_MODULES: Final = {
    "activation": "activations",
    "initializer": "initializers",
    "regularizer": "regularizers",
    "constraint": "constraints",
}
"""An argument's ``kind`` -> the object module its values resolve in."""

LAYER_KIND_ARGS: Final = frozenset({"layer", "backward_layer", "cell", "cells", "layers"})
"""Arguments that take a layer (or a list of layers: RNN cells, Pipeline layers)."""


def argument_kind(name: str) -> str | None:
    """The ``kind`` of a constructor argument, from its name as Keras names them.

    ``activation`` and ``*_activation`` take activations, ``*_initializer``
    initializers (and so on), ``layer`` and ``cell`` layers. The catalog
    records it for Keras's layers; for a registered class (a KerasHub layer)
    it is how modelspec knows which arguments to make into Keras objects.
    """
    if name in ("activation", "recurrent_activation") or name.endswith("_activation"):
        return "activation"
    for suffix in ("initializer", "regularizer", "constraint"):
        if name.endswith("_" + suffix):
            return suffix
    if name in LAYER_KIND_ARGS:
        return "layer"
    return None


class _Missing:
    """Type of :data:`MISSING`: falsy, one instance, a readable repr."""

    __slots__ = ()
    _instance: _Missing | None = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False

    def __reduce__(self) -> str:
        return "MISSING"  # pickles as the module global, so identity survives


MISSING: Final = _Missing()
"""The default of an argument that has none, or whose default is not JSON (see ``default_repr``)."""


@dataclass(frozen=True)
class ArgInfo:
    """One constructor argument of a layer or Keras object.

    Attributes:
        name: The keyword.
        required: True when the constructor has no default for it.
        default: The default value as JSON data (tuples are lists);
            :data:`MISSING` when required or when the default is not JSON.
        type: ``"int"``, ``"float"``, ``"bool"``, ``"str"`` or ``"list"``,
            inferred from the default; None when unknown.
        kind: ``"activation"``, ``"initializer"``, ``"regularizer"``,
            ``"constraint"`` or ``"layer"`` when the argument takes such an
            object; None otherwise.
        doc: The argument's description from the Keras docstring, if any.
        default_repr: ``repr`` of a default that is not JSON, else None.
    """

    name: str
    required: bool
    default: Any
    type: str | None
    kind: str | None
    doc: str | None
    default_repr: str | None = None


@dataclass(frozen=True)
class LayerInfo:
    """One layer type a spec may use.

    Attributes:
        type: The name a spec writes (may be an alias, such as ``Convolution2D``).
        cls: The Keras class name it stands for (``Conv2D``).
        doc: The first paragraph of the class docstring.
        args: Constructor arguments, in signature order.
        call: The names of the parameters of the layer's ``call``.
        call_varargs: True when ``call`` also takes ``*args`` or ``**kwargs``.
    """

    type: str
    cls: str
    doc: str
    args: dict[str, ArgInfo]
    call: tuple[str, ...]
    call_varargs: bool


@dataclass(frozen=True)
class ObjectInfo:
    """One Keras object class usable as ``{type: ClassName, ...arguments}``.

    Attributes:
        type: The class name.
        doc: The first paragraph of the class docstring.
        args: Constructor arguments, in signature order.
    """

    type: str
    doc: str
    args: dict[str, ArgInfo]


@dataclass(frozen=True)
class OpInfo:
    """One ``keras.ops`` function a spec may call as an ``op`` node.

    Attributes:
        name: The function name (``add``, ``concatenate``).
        doc: The first paragraph of its docstring.
        args: Its parameters, in signature order (``kind == "tensor"`` for those taking tensors).
        tensors: The names of the parameters that take tensors, in order.
        variadic: The name of a ``*args`` parameter of tensors (``einsum``'s operands), or None.
    """

    name: str
    doc: str
    args: dict[str, ArgInfo]
    tensors: tuple[str, ...]
    variadic: str | None


@functools.cache
def catalog() -> dict[str, Any]:
    """The raw catalog, loaded from ``catalog.json`` on first use.

    Returns:
        The parsed JSON; shared, so callers must not modify it.
    """
    with CATALOG_PATH.open(encoding="utf-8") as f:
        return json.load(f)


def dtypes() -> list[str]:
    """The dtype names Keras accepts (``float32``, ``int64``, ``bool``, ...), sorted (shared list)."""
    return catalog()["dtypes"]


def keras_version() -> str:
    """The Keras version the catalog was generated from."""
    return catalog()["keras_version"]


def _args(raw: dict[str, Any]) -> dict[str, ArgInfo]:
    return {
        name: ArgInfo(
            name=name,
            required=a.get("required", False),
            default=a.get("default", MISSING),
            type=a.get("type"),
            kind=a.get("kind"),
            doc=a.get("doc"),
            default_repr=a.get("default_repr"),
        )
        for name, a in raw.items()
    }


@functools.cache
def _layer(type_name: str) -> LayerInfo:
    raw = catalog()["layers"][type_name]
    return LayerInfo(
        type=type_name,
        cls=raw["class"],
        doc=raw["doc"],
        args=_args(raw["args"]),
        call=tuple(raw["call"]),
        call_varargs=raw["call_varargs"],
    )


def layer(type_name: str) -> LayerInfo | None:
    """The layer type ``type_name``, or None when the catalog does not list it.

    Refused types are not listed: see :func:`refused`.
    """
    # Check membership first so that unknown names from specs do not fill the cache.
    if type_name not in catalog()["layers"]:
        return None
    return _layer(type_name)


@functools.cache
def layer_types() -> list[str]:
    """The usable layer type names, sorted (shared list: do not modify)."""
    return sorted(catalog()["layers"])


def refused(type_name: str) -> str | None:
    """Why a spec may not use the layer type ``type_name``, or None when it may (or is unknown)."""
    return catalog()["refused"].get(type_name)


def _module(module: str) -> dict[str, Any]:
    try:
        return catalog()["objects"][module]
    except KeyError:
        raise KeyError(f"unknown object module {module!r}; expected one of {', '.join(MODULES)}") from None


@functools.cache
def object_names(module: str) -> frozenset[str]:
    """The string identifiers ``keras.<module>.get`` accepts, e.g. ``'relu'`` for activations.

    Raises:
        KeyError: ``module`` is not one of :data:`MODULES`.
    """
    return frozenset(_module(module)["names"])


@functools.cache
def _object(module: str, class_name: str) -> ObjectInfo:
    raw = _module(module)["classes"][class_name]
    return ObjectInfo(type=class_name, doc=raw["doc"], args=_args(raw["args"]))


def object_class(module: str, class_name: str) -> ObjectInfo | None:
    """The class ``class_name`` of ``keras.<module>``, or None when not usable in a spec.

    Raises:
        KeyError: ``module`` is not one of :data:`MODULES`.
    """
    if class_name not in _module(module)["classes"]:
        return None
    return _object(module, class_name)


@functools.cache
def object_classes(module: str) -> list[str]:
    """The usable class names of ``keras.<module>``, sorted (shared list: do not modify).

    Raises:
        KeyError: ``module`` is not one of :data:`MODULES`.
    """
    return sorted(_module(module)["classes"])


def refused_object(module: str, class_name: str) -> str | None:
    """Why a spec may not use the class ``class_name`` of ``keras.<module>``, or None."""
    return catalog().get("refused_objects", {}).get(module, {}).get(class_name)


@functools.cache
def _op(name: str) -> OpInfo:
    raw = catalog()["ops"][name]
    args = _args(raw["args"])
    return OpInfo(
        name=name,
        doc=raw["doc"],
        args=args,
        tensors=tuple(n for n, a in args.items() if a.kind == "tensor"),
        variadic=next((n for n, a in raw["args"].items() if a.get("variadic")), None),
    )


def op(name: str) -> OpInfo | None:
    """The ``keras.ops`` function ``name`` when the catalog allows it as an ``op`` node, else None."""
    if name not in catalog()["ops"]:
        return None
    return _op(name)


@functools.cache
def op_names() -> list[str]:
    """The ``op`` allowlist, sorted (shared list: do not modify)."""
    return sorted(catalog()["ops"])


def schedule_argument(module: str, args: dict[str, Any]) -> str | None:
    """The argument of an object that holds a learning-rate schedule, or None.

    An optimizer's ``learning_rate`` written as ``{type: ExponentialDecay, ...}``
    is a ``keras.optimizers.schedules`` object, not a number.
    """
    return "learning_rate" if module == "optimizers" and isinstance(args.get("learning_rate"), dict) else None
