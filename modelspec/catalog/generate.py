"""Generate ``catalog.json``, the layer catalog, by introspecting the installed Keras.

The catalog lets the spec stage check layer types, constructor arguments and
Keras object names without importing Keras (which takes seconds). It is
committed; regenerate it after upgrading Keras::

    python -m modelspec.catalog.generate          # write modelspec/catalog/catalog.json
    python -m modelspec.catalog.generate --check  # exit 1 when the file is stale

Output is deterministic: every mapping has sorted keys except constructor
arguments, which keep their signature order (the order users know from the
Keras docs).
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import math
import os
import re
import sys
from pathlib import Path
from typing import Any

# Must be set before TensorFlow loads, or it logs its C++ banner to stderr.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras

from . import KERAS_MODULES, REFUSED_LAYERS, argument_kind

CATALOG_PATH = Path(__file__).with_name("catalog.json")


BASE_CLASSES = {
    "initializers": keras.initializers.Initializer,
    "regularizers": keras.regularizers.Regularizer,
    "constraints": keras.constraints.Constraint,
    "optimizers": keras.optimizers.Optimizer,
    "schedules": keras.optimizers.schedules.LearningRateSchedule,
    "losses": keras.losses.Loss,
    "metrics": keras.metrics.Metric,
    "callbacks": keras.callbacks.Callback,
}
"""The base class of each module's usable classes; the base itself is not usable."""

REFUSED_OBJECTS = {
    "callbacks": {
        "LambdaCallback": "it runs arbitrary Python code.",
        "RemoteMonitor": "it sends training events over the network.",
        "LearningRateScheduler": (
            "its schedule is a Python function; give the optimizer a learning_rate schedule instead."
        ),
        "CallbackList": "it is the container fit() builds from the callbacks list, not a callback.",
    },
    "metrics": {
        "MeanMetricWrapper": "it wraps a Python function.",
    },
    "optimizers": {
        "MultiOptimizer": "it needs a Python mapping from variables to optimizers.",
    },
}
"""Object classes a spec may not use, by module, with the reason shown to the user."""

METRIC_SPECIALS = ("accuracy", "acc", "crossentropy", "ce")
"""Metric names that ``Model.compile`` resolves itself, from the loss and output shape."""

BASE_LAYER_ARGS = ("activity_regularizer", "trainable", "dtype", "autocast")
"""``keras.layers.Layer`` keyword arguments a subclass accepts through ``**kwargs``.

``name`` is reserved by the spec format; ``input_shape`` and ``input_dim`` are
legacy and belong under ``inputs:``.
"""

RESERVED_ARGS = frozenset({"name"})

_ARGS_HEADER = re.compile(r"^(\s*)(?:Args|Arguments):\s*$")
_ARG_ENTRY = re.compile(r"^(\*{0,2}\w+)(?:\s*\([^)]*\))?\s*:(?:\s+(.*))?$")
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")
_TAKES_SEQUENCE = re.compile(r"\b(?:list|tuple)s?\b", re.IGNORECASE)
_MENTIONS_FLOAT = re.compile(r"\bfloats?\b", re.IGNORECASE)

TYPE_OVERRIDES = {
    ("EarlyStopping", "min_delta"): "float",
    ("MaxNorm", "max_value"): "float",
}
"""(class, argument) -> ``type``, where an int default hides a float argument and
the description does not say so."""


def _normalize(text: str) -> str:
    return " ".join(text.split())


def first_paragraph(cls: type) -> str:
    """The first paragraph of ``cls``'s own docstring, whitespace-normalized.

    Args:
        cls: A class. Its ``__doc__`` is not inherited, so a class without a
            docstring gives an empty string rather than its parent's summary.

    Returns:
        The summary paragraph, or ``""``.
    """
    doc = inspect.cleandoc(cls.__doc__ or "")
    return _normalize(doc.split("\n\n", 1)[0])


def docstring_args(doc: str | None) -> dict[str, str]:
    """Argument descriptions from the ``Args:``/``Arguments:`` sections of a docstring.

    Args:
        doc: A Google-style docstring, raw or cleaned.

    Returns:
        Argument name -> whitespace-normalized description. When a name is
        described twice, the first description wins.
    """
    found: dict[str, str] = {}
    lines = inspect.cleandoc(doc or "").splitlines()
    i = 0
    while i < len(lines):
        header = _ARGS_HEADER.match(lines[i])
        i += 1
        if not header:
            continue
        header_indent = len(header.group(1))
        entry_indent: int | None = None
        name: str | None = None
        parts: list[str] = []
        while i < len(lines):
            line = lines[i]
            stripped = line.strip()
            if not stripped:
                parts.append("")
                i += 1
                continue
            indent = len(line) - len(line.lstrip())
            if indent <= header_indent:
                break  # the next section ("Input shape:", "Example:", ...)
            if entry_indent is None:
                entry_indent = indent
            entry = _ARG_ENTRY.match(stripped) if indent == entry_indent else None
            if entry:
                if name is not None:
                    found.setdefault(name, _normalize(" ".join(parts)))
                name, parts = entry.group(1), [entry.group(2) or ""]
            elif indent < entry_indent:
                break  # dedented text that is not an entry ends the section
            elif name is not None:
                parts.append(stripped)
            i += 1
        if name is not None:
            found.setdefault(name, _normalize(" ".join(parts)))
    return {k: v for k, v in found.items() if v}


def _json_value(value: Any) -> tuple[bool, Any]:
    """``(True, value as JSON)`` when ``value`` survives a JSON round trip, else ``(False, None)``."""
    if value is None or isinstance(value, (bool, int, str)):
        return True, value
    if isinstance(value, float):
        # NaN and infinities are not JSON (json.dumps writes non-standard tokens).
        return (True, value) if math.isfinite(value) else (False, None)
    if isinstance(value, (list, tuple)):
        items = [_json_value(v) for v in value]
        return (True, [v for _, v in items]) if all(ok for ok, _ in items) else (False, None)
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        items = {k: _json_value(v) for k, v in value.items()}
        if all(ok for ok, _ in items.values()):
            return True, {k: v for k, (_, v) in sorted(items.items())}
    return False, None


def _type_of(default: Any, doc: str | None, override: str | None = None) -> str | None:
    """The ``type`` of an argument: from its default, widened where the docstring says so.

    Inferring from the default alone would make the spec stage reject valid
    values, so two widenings apply: a number default whose description
    accepts a tuple or list (``strides=1``: "int or tuple/list of 1 integer")
    is typed ``list`` (a list or a number); an int default described as a
    float (``label_smoothing=0``: "Float in [0, 1]") is typed ``float``.
    """
    if override is not None:
        return override
    # bool first: bool is a subclass of int.
    types = ((bool, "bool"), (int, "int"), (float, "float"), (str, "str"), ((list, tuple), "list"))
    name = next((name for py, name in types if isinstance(default, py)), None)
    if name is None:
        return None
    if name in ("int", "float") and doc and _TAKES_SEQUENCE.search(doc):
        return "list"
    if name == "int" and doc and _MENTIONS_FLOAT.search(doc):
        return "float"
    return name


_DOC_TYPE = re.compile(
    r"^(?:an?\s+|the\s+)?(?:optional\s+)?(?:(?:strictly\s+)?positive\s+|non-negative\s+)?"
    r"(integer|int|float|boolean|bool)\b",
    re.IGNORECASE,
)


def _type_from_doc(doc: str | None) -> str | None:
    """The ``type`` of an argument with no telling default, from its description's first words.

    ``units``: "Positive integer, ..." is an ``int``; "int or tuple/list of 2
    integers" (``kernel_size``) is a ``list`` (a list or a number).
    """
    m = _DOC_TYPE.match(doc or "")
    if m is None:
        return None
    name = {"integer": "int", "boolean": "bool"}.get(m.group(1).lower(), m.group(1).lower())
    if name in ("int", "float") and _TAKES_SEQUENCE.search(doc or ""):
        return "list"
    return name


def arg_info(param: inspect.Parameter, doc: str | None, type_override: str | None = None) -> dict[str, Any]:
    """The catalog entry of one constructor parameter.

    Args:
        param: The parameter, from ``inspect.signature``.
        doc: Its description from the class docstring, if any.
        type_override: The ``type`` to record instead of the inferred one.

    Returns:
        A mapping with sorted keys: ``required``, ``default`` or
        ``default_repr``, ``type``, ``kind`` and ``doc``, each only when it applies.
    """
    info: dict[str, Any] = {}
    if param.default is inspect.Parameter.empty:
        info["required"] = True
    else:
        ok, value = _json_value(param.default)
        if ok:
            info["default"] = value
        else:
            # Strip memory addresses so the file does not change from run to run.
            info["default_repr"] = _ADDRESS.sub("", repr(param.default))
        type_name = _type_of(param.default, doc, type_override)
        if type_name is not None:
            info["type"] = type_name
    kind = argument_kind(param.name)
    if "type" not in info and kind is None and param.default in (inspect.Parameter.empty, None):
        type_name = type_override or _type_from_doc(doc)
        if type_name is not None:
            info["type"] = type_name
    if kind is not None:
        info["kind"] = kind
    if doc:
        info["doc"] = doc
    return dict(sorted(info.items()))


def _class_arg_docs(cls: type, stop: type | None = None) -> dict[str, str]:
    """Argument docs of ``cls``, falling back to its Keras base classes for undocumented ones.

    Subclasses often document only their own arguments (e.g. ``Dense`` does
    not describe ``trainable``); the base classes' docstrings fill the gaps.
    """
    docs: dict[str, str] = {}
    for klass in cls.__mro__:
        if klass is object or not klass.__module__.startswith("keras"):
            continue
        for k, v in docstring_args(klass.__doc__).items():
            docs.setdefault(k, v)
        if klass is stop:
            break
    return docs


def constructor_args(cls: type, extra: dict[str, inspect.Parameter] | None = None) -> dict[str, Any]:
    """The keyword arguments of ``cls.__init__``, in signature order.

    Args:
        cls: A Keras class.
        extra: Parameters accepted through ``**kwargs`` (the base ``Layer``
            arguments); appended after the signature's own ones when
            ``__init__`` takes ``**kwargs``.

    Returns:
        Argument name -> :func:`arg_info` entry. ``self``, ``*args``,
        ``**kwargs`` and the reserved ``name`` are left out.
    """
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    docs = _class_arg_docs(cls)
    args: dict[str, Any] = {}
    var_keyword = False
    for p in params:
        if p.kind is p.VAR_KEYWORD:
            var_keyword = True
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) or p.name in RESERVED_ARGS:
            continue
        args[p.name] = arg_info(p, docs.get(p.name), TYPE_OVERRIDES.get((cls.__name__, p.name)))
    if var_keyword and extra:
        for name, p in extra.items():
            if name not in args:
                args[name] = arg_info(p, docs.get(name))
    return args


def _base_layer_params() -> dict[str, inspect.Parameter]:
    params = inspect.signature(keras.layers.Layer.__init__).parameters
    missing = [n for n in BASE_LAYER_ARGS if n not in params]
    if missing:  # a Keras upgrade renamed them: the rule above needs a look
        raise RuntimeError(f"keras.layers.Layer.__init__ no longer takes {missing}")
    return {n: params[n] for n in BASE_LAYER_ARGS}


def layer_entry(cls: type, base_params: dict[str, inspect.Parameter]) -> dict[str, Any]:
    """The catalog entry of one layer class.

    Args:
        cls: A subclass of ``keras.layers.Layer``.
        base_params: The base ``Layer`` arguments accepted through ``**kwargs``.

    Returns:
        The ``class``, ``doc``, ``args``, ``call`` and ``call_varargs`` entry.
    """
    call_params = list(inspect.signature(cls.call).parameters.values())[1:]
    var = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    return {
        "args": constructor_args(cls, base_params),
        "call": [p.name for p in call_params if p.kind not in var],
        "call_varargs": any(p.kind in var for p in call_params),
        "class": cls.__name__,
        "doc": first_paragraph(cls),
    }


def public_classes(module: Any) -> dict[str, type]:
    """Public attribute name -> class, for the classes a module exports (aliases included)."""
    return {
        name: getattr(module, name)
        for name in sorted(dir(module))
        if not name.startswith("_") and inspect.isclass(getattr(module, name))
    }


def layers() -> tuple[dict[str, Any], dict[str, str]]:
    """The ``layers`` and ``refused`` sections.

    Returns:
        Type name -> layer entry, and refused type name -> reason. Every public
        ``Layer`` subclass of ``keras.layers`` is in exactly one of the two.
    """
    base_params = _base_layer_params()
    found: dict[str, Any] = {}
    refused: dict[str, str] = {}
    for name, cls in public_classes(keras.layers).items():
        if not issubclass(cls, keras.layers.Layer):
            continue  # InputSpec and other helpers: not layers at all
        if name in REFUSED_LAYERS or cls.__name__ in REFUSED_LAYERS:
            refused[name] = REFUSED_LAYERS.get(name) or REFUSED_LAYERS[cls.__name__]
        elif inspect.isabstract(cls):
            refused[name] = "it is an abstract base class."
        else:
            found[name] = layer_entry(cls, base_params)
    return found, refused


def _src_names(module: str) -> list[str]:
    """String identifiers Keras registers for ``module`` (its ``ALL_OBJECTS_DICT`` keys)."""
    try:
        src = importlib.import_module("keras.src." + module)
    except ImportError:
        return []
    return [k for k in getattr(src, "ALL_OBJECTS_DICT", {}) if isinstance(k, str)]


def object_names(module: str, excluded: tuple[type, ...]) -> list[str]:
    """Names that ``keras.<module>.get`` resolves to a usable object.

    Args:
        module: A key of :data:`modelspec.catalog.KERAS_MODULES`.
        excluded: Classes whose instances are not usable (base classes and
            refused classes); a name resolving to one is left out.

    Returns:
        The sorted names.
    """
    if module in ("callbacks", "schedules"):
        return []  # no get(): these are always written as {type: Class, ...}
    mod = importlib.import_module(KERAS_MODULES[module])
    candidates = set(_src_names(module))
    candidates.update(n for n in dir(mod) if not n.startswith("_"))
    candidates -= {"get", "serialize", "deserialize"}
    names = set()
    for name in sorted(candidates):
        try:
            obj = mod.get(name)
        except ImportError:
            # Known to Keras, but it needs an optional package to be made (STFT
            # needs scipy): listed, so the catalog is the same whatever is installed.
            names.add(name)
            continue
        except Exception:  # noqa: BLE001 - any other failure means get() does not accept the name
            continue
        if obj is None:
            continue
        cls = obj if inspect.isclass(obj) else type(obj)
        if cls in excluded:
            continue
        names.add(name)
    if module == "metrics":
        names.update(METRIC_SPECIALS)
    return sorted(names)


def objects() -> tuple[dict[str, Any], dict[str, dict[str, str]]]:
    """The ``objects`` and ``refused_objects`` sections.

    Returns:
        Module key -> ``names`` and ``classes``, and module key -> refused class
        name -> reason.
    """
    found: dict[str, Any] = {}
    refused: dict[str, dict[str, str]] = {}
    for module, path in sorted(KERAS_MODULES.items()):
        mod = importlib.import_module(path)
        base = BASE_CLASSES.get(module)
        refusals = REFUSED_OBJECTS.get(module, {})
        classes: dict[str, Any] = {}
        excluded: set[type] = set()
        for name, cls in public_classes(mod).items():
            if base is None or not issubclass(cls, base):
                continue  # not a usable class of this module (OptimizerMap, ...)
            if cls is base or inspect.isabstract(cls):
                excluded.add(cls)
            elif name in refusals or cls.__name__ in refusals:
                # Listed only when this Keras has the class: no reasons for names it lacks.
                excluded.add(cls)
                refused.setdefault(module, {})[name] = refusals.get(name) or refusals[cls.__name__]
            else:
                classes[name] = {"args": constructor_args(cls), "doc": first_paragraph(cls)}
        found[module] = {"classes": classes, "names": object_names(module, tuple(excluded))}
    return found, {k: dict(sorted(v.items())) for k, v in sorted(refused.items())}


OPS = (
    # element-wise arithmetic and comparisons
    "add", "subtract", "multiply", "divide", "true_divide", "floor_divide", "mod", "power", "negative",
    "maximum", "minimum", "abs", "square", "sqrt", "rsqrt", "exp", "log", "log1p", "sign", "round",
    "floor", "ceil", "clip", "reciprocal", "equal", "not_equal", "greater", "greater_equal", "less",
    "less_equal", "logical_and", "logical_or", "logical_not", "where",
    # activations and normalizations
    "relu", "relu6", "sigmoid", "hard_sigmoid", "hard_silu", "hard_swish", "silu", "swish", "gelu",
    "elu", "selu", "leaky_relu", "softplus", "softsign", "tanh", "erf", "softmax", "log_softmax",
    "normalize",
    # reductions
    "mean", "sum", "max", "min", "prod", "var", "std", "argmax", "argmin", "logsumexp",
    # shapes and layout
    "reshape", "transpose", "expand_dims", "squeeze", "concatenate", "stack", "split", "tile",
    "repeat", "pad", "flip", "roll", "swapaxes", "moveaxis", "broadcast_to", "cast", "take",
    # linear algebra
    "matmul", "dot", "einsum", "tensordot", "outer",
    # more element-wise functions, sorting, cumulative sums, encodings
    "sin", "cos", "tan", "arcsin", "arccos", "arctan", "arctan2", "sinh", "cosh", "expm1", "log2", "log10",
    "log_sigmoid", "sparse_plus", "hard_tanh", "celu", "squareplus", "glu", "isnan", "isfinite",
    "logical_xor", "zeros_like", "ones_like", "stop_gradient", "sort", "argsort", "tril", "triu", "any",
    "all", "cumsum", "cumprod", "one_hot", "top_k", "unstack",
    # indexing with a static key (``x[:, 0, :]``), written as a string modelspec parses itself
    "get_item",
)  # fmt: skip
"""The ``keras.ops`` functions a spec may call as ``op`` nodes: tensor functions, no control flow or I/O."""

TENSOR_PARAMS = frozenset({"x", "x1", "x2", "xs", "condition", "operands", "a", "b", "variable"})
"""Parameter names of ``keras.ops`` functions that take tensors (what an ``op`` node's ``inputs`` feed)."""


def ops() -> dict[str, Any]:
    """The ``op`` allowlist with each function's parameters: which take tensors, the others' defaults."""
    found = {}
    for name in OPS:
        fn = getattr(keras.ops, name)
        params: dict[str, Any] = {}
        docs = docstring_args(fn.__doc__)  # "axes: If an integer ... Or, a list" widens the type
        for param in inspect.signature(fn).parameters.values():
            info = arg_info(param, docs.get(param.name))
            if param.name == "axis" and "type" not in info:  # "axis or axes": an int or a list of them
                info["type"] = "list"
            if param.name in TENSOR_PARAMS or param.kind is inspect.Parameter.VAR_POSITIONAL:
                info["kind"] = "tensor"
            if param.kind is inspect.Parameter.VAR_POSITIONAL:
                info["variadic"] = True
                info.pop("required", None)
            if param.kind is not inspect.Parameter.VAR_KEYWORD:
                params[param.name] = dict(sorted(info.items()))
        if not any(p.get("kind") == "tensor" for p in params.values()):
            raise ValueError(f"keras.ops.{name} takes no tensor: it cannot be an op node")
        found[name] = {"args": params, "doc": first_paragraph(fn)}
    return found


def generate() -> dict[str, Any]:
    """The catalog of the installed Keras, as written to ``catalog.json``.

    Returns:
        ``keras_version``, ``dtypes``, ``layers``, ``ops``, ``refused``, ``objects``
        and ``refused_objects``.
    """
    from keras.src.backend.common.dtypes import ALLOWED_DTYPES  # no public list of the dtype names

    found_layers, refused_layers = layers()
    found_objects, refused_objects = objects()
    return {
        "keras_version": keras.__version__,
        "dtypes": sorted(ALLOWED_DTYPES),
        "layers": found_layers,
        "objects": found_objects,
        "ops": ops(),
        "refused": refused_layers,
        "refused_objects": refused_objects,
    }


def render(catalog: dict[str, Any]) -> str:
    """The file text of ``catalog``.

    Keys are not re-sorted on output: :func:`generate` already sorts every
    mapping except constructor arguments, which keep their signature order.
    """
    return json.dumps(catalog, indent=1, ensure_ascii=False, allow_nan=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write ``catalog.json``, or with ``--check`` report whether it is stale.

    Args:
        argv: Command-line arguments without the program name; ``sys.argv[1:]``
            when ``None``.

    Returns:
        The exit status: 0 on success or a fresh file, 1 for a stale one.
    """
    parser = argparse.ArgumentParser(
        prog="python -m modelspec.catalog.generate", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 when the file is stale")
    options = parser.parse_args(argv)
    text = render(generate())
    if options.check:
        current = CATALOG_PATH.read_text(encoding="utf-8") if CATALOG_PATH.exists() else None
        if current != text:
            print(
                f"{CATALOG_PATH.name} is stale for keras {keras.__version__}: run python -m modelspec.catalog.generate",
                file=sys.stderr,
            )
            return 1
        return 0
    CATALOG_PATH.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
