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
    "weight_bytes",
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

KERAS_MODULES: Final = {
    module: "keras.optimizers.schedules" if module == "schedules" else f"keras.{module}" for module in MODULES
}
"""Catalog module -> the public Keras module it describes: one pair for both directions
(a spec's value resolved in it; a serialized Keras object's module read back as the catalog's)."""

COMPILE_MODULES: Final = {
    "optimizer": "optimizers",
    "loss": "losses",
    "metrics": "metrics",
    "weighted_metrics": "metrics",
}
"""A ``compile`` field -> the object module its values come from (checks, compiler and export)."""


def keras_module(keras: Any, module: str) -> Any:
    """The Keras module object of a catalog module (``schedules``: ``keras.optimizers.schedules``)."""
    owner = keras
    for part in KERAS_MODULES[module].split(".")[1:]:
        owner = getattr(owner, part)
    return owner


KIND_MODULES: Final = {
    "activation": "activations",
    "initializer": "initializers",
    "regularizer": "regularizers",
    "constraint": "constraints",
}
"""An argument's ``kind`` -> the object module its values resolve in."""

CODE_LAYERS: Final = {
    "Lambda": "it runs arbitrary Python code.",
    "TFSMLayer": "it wraps a TensorFlow SavedModel loaded from a file.",
    "JaxLayer": "it wraps JAX code from another framework.",
    "FlaxLayer": "it wraps a Flax module from another framework.",
    "TorchModuleWrapper": "it wraps a PyTorch module from another framework.",
}
"""Layer classes that carry code (a function, a saved graph, another framework's module), with why.

A spec may not name them, and export refuses a model that holds one."""

REFUSED_LAYERS: Final = {
    **CODE_LAYERS,
    "InputLayer": "inputs are declared under 'inputs:'.",
    "Layer": "it is the abstract base class of all layers.",
    "Wrapper": "it is the abstract base class of layer wrappers.",
}
"""Layer types a spec may not use, with the reason shown to the user (the generator lists them as refused)."""

LAYER_KIND_ARGS: Final = frozenset({"layer", "backward_layer", "cell", "cells", "layers"})
"""Arguments that take a layer (or a list of layers: RNN cells, Pipeline layers)."""


def argument_kind(name: str) -> str | None:
    """The ``kind`` of a constructor argument, from its name as Keras names them.

    ``activation`` and ``*_activation`` take activations, ``*_initializer``
    initializers (and so on), ``layer`` and ``cell`` layers. The catalog
    records it for Keras's layers; for a registered class (a KerasHub layer)
    it is how modelspec knows which arguments to make into Keras objects.
    """
    if name in ("activation", "recurrent_activation") or (
        name.endswith("_activation") and not name.startswith("use_")
    ):  # use_gated_activation is a flag
        return "activation"
    for suffix in ("initializer", "regularizer", "constraint"):
        if name == suffix or name.endswith("_" + suffix):
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
        minimum: The least int the argument takes, in each of its ints
            (:data:`SIZE_ARGUMENTS`, :data:`OFFSET_ARGUMENTS`, a docstring
            saying "positive integer"), else None.
    """

    name: str
    required: bool
    default: Any
    type: str | None
    kind: str | None
    doc: str | None
    default_repr: str | None = None
    minimum: int | None = None


SIZE_ARGUMENTS: Final = frozenset({
    "units", "filters", "kernel_size", "strides", "pool_size", "dilation_rate", "size", "depth_multiplier",
    "input_dim", "output_dim", "n", "num_heads", "key_dim", "value_dim", "head_dim", "num_query_heads",
    "num_key_value_heads", "num_tokens", "num_bins", "sliding_window", "frame_length", "frame_step",
    "fft_length", "sequence_length", "sequence_stride", "num_mel_bins", "sampling_rate", "power_iterations",
})  # fmt: skip
"""Arguments that are sizes, counts, windows or steps, wherever Keras takes them: each int at least 1."""

OFFSET_ARGUMENTS: Final = frozenset({
    "padding", "cropping", "output_padding", "num_classes", "repeats", "lora_rank", "num_oov_indices",
    "height", "width", "output_size",
})  # fmt: skip
"""Arguments that are paddings, croppings or sizes that may be empty: each int at least 0."""

INT64_MAX: Final = 2**63 - 1
"""The largest integer an argument may hold: Keras keeps sizes and counts as 64-bit integers."""


def _minimum(name: str, doc: str | None) -> int | None:
    if name in SIZE_ARGUMENTS:
        return 1
    if name in OFFSET_ARGUMENTS:
        return 0
    words = (doc or "").lower().lstrip("`' ")
    for prefix in ("", "a ", "an ", "optional "):  # "Positive integer, ...", "A positive int specifying ..."
        if words.startswith(prefix + "positive int"):
            return 1
        if words.startswith((prefix + "non-negative int", prefix + "nonnegative int")):
            return 0
    return None


def ints_below(value: Any, minimum: int) -> list[int]:
    """The ints in ``value`` (an int or nested lists) below ``minimum``; booleans are not ints here."""
    if isinstance(value, bool):
        return []
    if isinstance(value, int):
        return [value] if value < minimum else []
    if isinstance(value, (list, tuple)):
        return [i for v in value for i in ints_below(v, minimum)]
    return []


def ints_beyond(value: Any, limit: int = INT64_MAX) -> list[int]:
    """The ints in ``value`` (any nesting of lists and mappings) whose size is beyond ``limit``."""
    if isinstance(value, bool):
        return []
    if isinstance(value, int):
        return [value] if abs(value) > limit else []
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        return [i for v in value for i in ints_beyond(v, limit)]
    return []


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

    # How an op node's tensors map to the function's parameters: the one rule that the spec
    # checks, the shape rules, the compiler and the exporter follow.

    @property
    def positional(self) -> tuple[str, ...]:
        """The parameters a list of inputs fills, in order (every one but a ``*args`` parameter)."""
        return tuple(n for n in self.args if n != self.variadic)

    def bind(self, inputs: Any) -> dict[str, Any]:
        """Parameter name -> what the node passes to it, from its ``inputs``.

        A mapping is by parameter name already; a list (or one value) fills the
        ``*args`` parameter when the function has one (``einsum``'s operands),
        else the parameters in signature order (:attr:`positional`). Inputs past
        the parameters are left out (the spec checks report them).
        """
        if isinstance(inputs, dict):
            return dict(inputs)
        given = list(inputs) if isinstance(inputs, list) else [] if inputs is None else [inputs]
        if self.variadic is not None:
            return {self.variadic: given}
        return dict(zip(self.positional, given))

    def call_arguments(self, bound: dict[str, Any]) -> tuple[list[Any], dict[str, Any]]:
        """How Python calls the function with ``bound`` (parameter -> value): positional values and keywords.

        A ``*args`` parameter cannot be passed by keyword: the parameters before
        it go positionally, then its values; everything else by keyword.
        """
        keywords = dict(bound)
        if self.variadic is None:
            return [], keywords
        leading = []
        for name in self.args:
            if name == self.variadic:
                break
            if name in keywords:
                leading.append(keywords.pop(name))
        operands = keywords.pop(self.variadic, [])
        return [*leading, *(operands if isinstance(operands, list) else [operands])], keywords

    def inputs_of(self, tensors: dict[str, Any]) -> Any:
        """The shortest ``inputs`` an op node can write for ``tensors`` (parameter -> reference): :meth:`bind` reversed.

        Only the ``*args`` parameter: its list; the first parameters in order: a
        list; otherwise the mapping itself.
        """
        if (
            self.variadic is not None
            and list(tensors) == [self.variadic]
            and isinstance(tensors[self.variadic], list)
        ):
            return tensors[self.variadic]
        in_order = self.variadic is None and list(tensors) == list(self.positional[: len(tensors)])
        if in_order and not any(isinstance(v, (list, dict)) for v in tensors.values()):
            return list(tensors.values())
        return tensors


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


def weight_bytes(dtype: Any) -> int:
    """The size of one weight of a layer whose ``dtype`` argument is ``dtype``, in bytes.

    Read from the dtype's name in :func:`dtypes` (``float16``: 2, ``float8_e4m3fn``: 1,
    ``complex128``: 16); a mixed-precision policy (``mixed_float16``) keeps its
    weights in float32, as does a layer without a dtype (Keras's default).
    """
    name = dtype if isinstance(dtype, str) and dtype in dtypes() else "float32"
    bits = "".join(c for c in name.split("_")[0] if c.isdigit())
    return max(1, int(bits) // 8) if bits else 1  # bool, string: a byte each


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
            minimum=_minimum(name, a.get("doc")) if a.get("kind") in (None, "tensor") else None,
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
