"""The JSON Schema (Draft 2020-12) of spec format v1, for editors and other tools.

Made from the pydantic models (the document's shape) and the layer catalog
(every layer type with its own arguments, defaults and descriptions), so it
says exactly what validation accepts. Committed as
``schemas/modelspec.schema.json``; ``modelspec schema -o FILE`` writes it anew.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from .. import catalog
from .models import EXPRESSION_PATTERN, FORMAT_VERSION, RESERVED_KEYS, ModelSpec

DIALECT = "https://json-schema.org/draft/2020-12/schema"
RESERVED = tuple(RESERVED_KEYS)
"""The keys of a layer entry that are not constructor arguments."""
EXPRESSION = {"type": "string", "pattern": EXPRESSION_PATTERN, "description": "An expression: ${...}."}
"""Wherever a value may be an expression, the schema accepts one, so editors keep checking block bodies."""
EXPRESSION_REF = {"$ref": "#/$defs/expression"}
"""How arguments refer to :data:`EXPRESSION` (once in ``$defs``: it is in every argument)."""
_TYPES = {
    # Mirrors modelspec.spec.checks: null is always accepted (Keras's own default).
    "int": {"type": ["integer", "null"]},
    "float": {"type": ["number", "null"]},
    "bool": {"type": ["boolean", "null"]},
    "str": {"type": ["string", "boolean", "number", "null"]},
    "list": {"type": ["array", "integer", "number", "null"]},
}


def schema() -> dict[str, Any]:
    """The JSON Schema of the spec format, as a dict."""
    root = ModelSpec.model_json_schema(ref_template="#/$defs/{model}")
    defs = root.pop("$defs")
    root = {
        "$schema": DIALECT,
        "$id": f"urn:modelspec:schema:v{FORMAT_VERSION}",
        "title": f"modelspec format v{FORMAT_VERSION}",
        "description": "A declarative Keras model: inputs, layers (a list for keras.Sequential, "
        "a mapping for a functional DAG), outputs, compile and train. "
        f"Generated from Keras {catalog.keras_version()}.",
        **root,
    }
    root["properties"]["modelspec"] = {"const": FORMAT_VERSION, "description": "The format version."}
    root.pop("required", None)  # a block library has no layers
    root["anyOf"] = [{"required": ["modelspec", "layers"]}, {"required": ["modelspec", "blocks"]}]
    defs["InputSpec"] = _input(defs["InputSpec"])
    defs["LayerSpec"] = _layer_entry(defs["LayerSpec"])
    for type_name in catalog.layer_types():
        defs[f"layer.{type_name}"] = _layer(type_name)
    for name in catalog.op_names():
        defs[f"op.{name}"] = _op(name)
    defs.update(_objects())
    defs["expression"] = EXPRESSION
    root["$defs"] = dict(sorted(defs.items()))
    return root


def schema_text() -> str:
    """The schema as the committed JSON text (deterministic)."""
    return json.dumps(schema(), indent=1, ensure_ascii=False) + "\n"


def _input(generated: dict[str, Any]) -> dict[str, Any]:
    shorthand = dict(generated["properties"]["shape"])
    shorthand["description"] = "Shorthand for {shape: [...]}."
    return {"description": generated.get("description"), "anyOf": [generated, shorthand]}


def _layer_entry(generated: dict[str, Any]) -> dict[str, Any]:
    props = dict(generated["properties"])
    props["type"] = _names(
        props["type"].get("description"),
        {t: _layer_doc(t) for t in catalog.layer_types()},
        "Unknown layer type: not one of the keras.layers that modelspec accepts "
        "(completion lists them; modelspec validate suggests the closest).",
    )
    props["op"] = _names(
        props["op"].get("description"),
        {name: _op_doc(name) for name in catalog.op_names()},
        "Unknown operation: not one of the keras.ops functions that modelspec accepts "
        "(completion lists them; modelspec validate suggests the closest).",
    )
    branches: list[dict[str, Any]] = [
        {
            "if": {"required": ["share"]},
            "then": {"properties": {k: {} for k in RESERVED if k != "type"}, "additionalProperties": False},
        },
        {  # a block instance: its other keys are the block's params, which only expansion knows
            "if": {"required": ["block"]},
            "then": {"not": {"required": ["type"]}},
        },
        {  # an operation: keras.ops.NAME's own arguments
            "if": {"required": ["op"]},
            "then": {"not": {"required": ["type"]}},
        },
    ]
    branches += [
        {
            "if": {"properties": {"op": {"const": name}}, "required": ["op"]},
            "then": {"$ref": f"#/$defs/op.{name}"},
        }
        for name in catalog.op_names()
    ]
    branches += [
        {
            "if": {"properties": {"type": {"const": t}}, "required": ["type"]},
            "then": {"$ref": f"#/$defs/layer.{t}"},
        }
        for t in catalog.layer_types()
    ]
    return {
        "type": "object",
        "description": generated.get("description"),
        "properties": props,
        "anyOf": [
            {"required": ["type"]},
            {"required": ["share"]},
            {"required": ["block"]},
            {"required": ["op"]},
        ],
        "allOf": branches,
    }


def _names(description: str | None, docs: dict[str, str], unknown: str) -> dict[str, Any]:
    """A name from a catalog (layer types, ops), each documented for hover and completion.

    Not an ``enum``: yaml-language-server shows an enum's every value on hover and
    in the error for an unknown one. The ``pattern`` does the checking (its
    ``patternErrorMessage`` is the server's one-line error); the ``anyOf`` of
    ``const``s carries each name's ``markdownDescription``, which the server shows
    on hover and with completion. Its last branch accepts anything, so a wrong
    value fails only ``type`` or ``pattern``, and no error lists the names.
    """
    assert all(name.isidentifier() for name in docs)  # nothing to escape, in Python's or ECMA's regexes
    return {
        "type": "string",
        "description": description,
        "pattern": "^(?:" + "|".join(docs) + ")$",
        "patternErrorMessage": unknown,
        "anyOf": [
            *({"const": name, "title": name, "markdownDescription": doc} for name, doc in docs.items()),
            {"description": unknown},  # what hover says on an unknown name
        ],
    }


def _layer_doc(type_name: str) -> str:
    """Markdown for hover on ``type: NAME``: the docstring summary and the arguments."""
    info = catalog.layer(type_name)
    assert info is not None
    return _doc_with_args(info.doc, f"keras.layers.{info.cls}", info.args.values())


def _op_doc(name: str) -> str:
    info = catalog.op(name)
    assert info is not None
    return _doc_with_args(info.doc, f"keras.ops.{name}", info.args.values())


def _doc_with_args(doc: str | None, qualname: str, args: Iterable[catalog.ArgInfo]) -> str:
    parts = [doc or "", f"`{qualname}`"]
    listed = [f"- `{arg.name}`" + _default_md(arg) for arg in args]
    if listed:
        parts.append("Arguments:\n" + "\n".join(listed))
    return "\n\n".join(part for part in parts if part)


def _default_md(arg: catalog.ArgInfo) -> str:
    if arg.required:
        return " (required)"
    default = _default(arg)
    return f": `{default}`" if default is not None else ""


def _default(arg: catalog.ArgInfo) -> str | None:
    """The default as the YAML (JSON) a spec would write, or None without one."""
    if arg.required or arg.default is catalog.MISSING:
        return None
    return json.dumps(arg.default, ensure_ascii=False)


def _layer(type_name: str) -> dict[str, Any]:
    info = catalog.layer(type_name)
    assert info is not None
    props: dict[str, Any] = {k: {} for k in RESERVED}
    props.update({name: _argument(arg) for name, arg in info.args.items()})
    out: dict[str, Any] = {
        "type": "object",
        "title": type_name,
        "description": info.doc or f"keras.layers.{info.cls}",
        "properties": props,
        "additionalProperties": False,
    }
    required = [name for name, arg in info.args.items() if arg.required]
    if required:
        out["required"] = required
    return out


def _op(name: str) -> dict[str, Any]:
    info = catalog.op(name)
    assert info is not None
    props: dict[str, Any] = {k: {} for k in RESERVED}
    for arg_name, arg in info.args.items():
        if arg_name != info.variadic:
            props[arg_name] = (
                {} if arg.kind == "tensor" else _argument(arg)
            )  # a tensor, or a constant operand
    return {
        "type": "object",
        "title": f"keras.ops.{name}",
        "description": info.doc or f"keras.ops.{name}",
        "properties": props,
        "additionalProperties": False,
    }


def _argument(arg: catalog.ArgInfo) -> dict[str, Any]:
    if arg.kind == "layer":
        out: dict[str, Any] = {
            "anyOf": [
                {"$ref": "#/$defs/LayerSpec"},
                {"type": "array", "items": {"$ref": "#/$defs/LayerSpec"}},
                {"type": "null"},
            ]
        }
    elif arg.kind == "activation":
        out = {"anyOf": [{"enum": sorted(catalog.object_names("activations"))}, {"type": "null"}]}
    elif arg.kind in catalog.KIND_MODULES:
        out = {"anyOf": [{"$ref": f"#/$defs/{catalog.KIND_MODULES[arg.kind]}"}, {"type": "null"}]}
    else:
        out = dict(_TYPES.get(arg.type or "", {}))
    out = {"anyOf": [*out.get("anyOf", [out]), EXPRESSION_REF]}
    # the description says the default too: yaml-language-server's hover shows no `default`
    default = _default(arg)
    said = "Required." if arg.required else f"Default: {default}." if default is not None else None
    if arg.doc or said:
        out["description"] = "\n\n".join(text for text in (arg.doc, said) if text)
    if arg.default is not catalog.MISSING:
        out["default"] = arg.default
    return out


def _objects() -> dict[str, Any]:
    """Keras objects by module: a known name, or {type: Class, ...}."""
    defs = {}
    for module in ("initializers", "regularizers", "constraints"):
        names = sorted(catalog.object_names(module) | set(catalog.object_classes(module)))
        defs[module] = {
            "description": f"A keras.{module} object: a name, or {{type: Class, ...arguments}}.",
            "anyOf": [
                {"enum": names},
                {
                    "type": "object",
                    "required": ["type"],
                    "properties": {"type": {"enum": sorted(catalog.object_classes(module))}},
                },
            ],
        }
    return defs
