"""The spec stage: a parsed document to a validated :class:`ModelSpec`.

Pydantic checks the shape of the document; its errors are turned into
located problems in the project's words. The catalog checks
(:mod:`modelspec.spec.checks`) run on the result, or, when pydantic refused
part of the document, on every part it accepted, so that two mistakes in
different places are reported together.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pydantic
from pydantic import BaseModel

from ..errors import Path, Problem, received, shown, suggest
from ..source import Document
from .checks import check_spec
from .models import MAX_LAYERS, CompileSpec, LayerSpec, ModelSpec, TrainSpec, holds_expression, invalid_name
from .sweep import check_sweep


def to_spec(
    source: Document, custom_objects: dict[str, Any] | None = None, *, expanded: bool = False
) -> tuple[ModelSpec | None, list[Problem]]:
    """Validate a parsed document into a :class:`ModelSpec`.

    Args:
        source: The parsed document.
        custom_objects: User layer classes by type name, accepted besides Keras's
            (used to check the parts pydantic accepted when another part failed).
        expanded: The document is the expansion of a spec: values only, no
            expressions, params or blocks left.

    Returns:
        The spec (None when the document does not have its shape), and the
        problems found: the shape's, and, when there is no spec, the catalog
        problems of the parts that were valid.
    """
    data = source.data
    if data is None:
        return None, [
            source.problem(
                "spec-not-mapping",
                (),
                "the spec is empty",
                "a spec is a mapping that starts with 'modelspec: 1'",
            )
        ]
    if not isinstance(data, dict):
        return None, [
            source.problem(
                "spec-not-mapping",
                (),
                f"a spec is a mapping of keys (modelspec, inputs, layers, ...), got {received(data)}",
                "write `modelspec: 1`, then `layers:` and the other keys, each at the start of a line",
            )
        ]
    layers = data.get("layers")
    if isinstance(layers, (list, dict)) and len(layers) > MAX_LAYERS:
        return None, [
            source.problem(
                "too-many-layers",
                ("layers",),
                f"the spec has {len(layers):,} layers; at most {MAX_LAYERS:,} are allowed",
                "a model this large is refused to bound the time and memory of checking it",
                key=True,
            )
        ]
    problems: list[Problem] = []
    if "layers" not in data and not data.get("blocks"):
        problems.append(
            source.problem("missing-key", (), "'layers' is required", _MISSING_HINTS["layers"], key=True)
        )
    try:
        spec = ModelSpec.model_validate(data, context={"expanded": expanded})
    except pydantic.ValidationError as e:
        errors = e.errors()
        problems += _pydantic_problems(source, errors)
        problems += _check_valid_parts(source, data, errors, custom_objects or {})
        return None, problems
    if problems:
        return None, problems
    attach_origins(spec, source)
    spec._expanded = expanded
    problems += check_sweep(spec, custom_objects)
    if problems:
        return None, problems
    return spec, problems


def attach_origins(spec: ModelSpec, source: Document) -> None:
    """Record on the spec, its inputs, blocks and layer entries where each was read from."""
    spec._source = source
    spec._origin = source.origin()
    for name, entry in spec.inputs.items():
        entry._origin = source.origin(("inputs", name))
    layers: list[tuple[tuple, Any]] = [(("layers",), spec.layers)]
    for name, block in (spec.blocks or {}).items():
        block._origin = source.origin(("blocks", name))
        layers.append((("blocks", name, "layers"), block.layers))
    for path, entries in layers:
        if entries is None:
            continue
        items = entries.items() if isinstance(entries, dict) else enumerate(entries)
        for key, entry in items:
            if entry is not None:
                entry._origin = source.origin((*path, key))


def _check_valid_parts(
    source: Document, data: dict, errors: list[dict], custom_objects: dict[str, Any]
) -> list[Problem]:
    """The catalog problems of the parts pydantic accepted, when another part failed.

    Two mistakes in different places are reported together: each layer entry,
    ``compile`` and ``train`` without a schema error of its own is checked
    against the catalog on its own. Parts holding expressions and block
    instances are left out: they are checked once expanded, and the expansion
    needs a valid spec.
    """
    bad = {tuple(_real_path(data, tuple(err["loc"]), err["type"]))[:2] for err in errors}
    bad |= {path[:1] for path in bad}
    layers = data.get("layers")
    if not isinstance(layers, (list, dict)):
        return []

    def valid(model: type[BaseModel], value: Any) -> Any:
        try:
            return model.model_validate(value)
        except pydantic.ValidationError:  # reported already, under a path pydantic labels differently
            return None

    def plain(entry: Any) -> bool:  # expressions and block instances are checked once expanded
        return not holds_expression(entry) and not (isinstance(entry, dict) and "block" in entry)

    items = layers.items() if isinstance(layers, dict) else enumerate(layers)
    entries = {
        key: valid(LayerSpec, entry) if ("layers", key) not in bad and plain(entry) else None
        for key, entry in items
    }
    parts: dict[str, Any] = {"layers": list(entries.values()) if isinstance(layers, list) else entries}
    for name, model in (("compile", CompileSpec), ("train", TrainSpec)):
        if isinstance(data.get(name), dict) and (name,) not in bad and plain(data[name]):
            parts[name] = valid(model, data[name])
    partial = ModelSpec.model_construct(**parts)
    attach_origins(partial, source)
    return check_spec(partial, custom_objects)


def _real_path(data: Any, loc: tuple, kind: str | None = None) -> Path:
    """Pydantic's ``loc`` without its union-branch labels: the keys that exist in the data.

    Args:
        data: The document.
        loc: Pydantic's location of an error.
        kind: Pydantic's error type: for ``missing`` the last part names a
            key that is not in the data; otherwise it may be a union label
            (``list[LayerSpec]``) or ``[key]``, which are dropped.
    """
    path: list = []
    for i, part in enumerate(loc):
        if (isinstance(data, dict) and part in data and not isinstance(part, bool)) or (
            isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data)
        ):
            data = data[part]
        elif kind == "missing" and isinstance(data, dict) and isinstance(part, str) and i == len(loc) - 1:
            data = None  # the missing key
        else:
            continue  # a union label such as 'list[LayerSpec]', or '[key]'
        path.append(part)
    return tuple(path)


_EXPRESSION_BRANCH = "function-after[_not_expanded()"
"""How pydantic labels the ``${...}`` branch of a union (see ``models.Expr``) in an error's ``loc``."""


@dataclass
class _Translated:
    """A pydantic error in the project's words; ``expected`` is set for type errors, which may merge."""

    problem: Problem
    expected: str | None = None
    got: str | None = None


def _pydantic_problems(source: Document, errors: list[dict]) -> list[Problem]:
    """Pydantic's errors in our words, one per place.

    A union reports a failure for each branch; the branch the value was
    written for is the one with deeper errors, so type errors at a place with
    deeper errors are dropped, and the rest at one place merge into one
    "expected a list or a mapping" message.
    """
    found = [f for f in (_translate(source, err) for err in errors) if f is not None]
    deep = {f.problem.path[:n] for f in found for n in range(len(f.problem.path))}
    merged: dict[Path, list[_Translated]] = {}
    kept: list[Problem] = []
    for f in found:
        if f.expected is None:
            kept.append(f.problem)
        elif f.problem.path not in deep:
            merged.setdefault(f.problem.path, []).append(f)
    for same in merged.values():
        words = list(dict.fromkeys(f.expected for f in same))
        text = words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]
        first = same[0].problem
        code = first.code if len({f.problem.code for f in same}) == 1 else "wrong-type"
        kept.append(Problem(
            first.path, f"expected {text}, got {same[0].got}", first.file, first.line, first.column,
            first.hint, first.severity, first.end_column, first.source_line, code=code,
        ))  # fmt: skip
    return kept


_MISSING_HINTS = {
    "modelspec": "start the file with `modelspec: 1`, the version of the format it is written in",
    "layers": "a spec lists its layers under `layers:`",
    "shape": "an input needs its shape without the batch axis, e.g. `{shape: [4]}`",
}

_LITERAL_ALIASES = {
    "float": "float32",
    "int": "int32",
    "double": "float64",
    "half": "float16",
    "str": "string",
}
"""What a word that is not a choice usually means (numpy's and C's names for dtypes)."""

_TYPE_WORDS = {
    "int": "an integer",
    "float": "a number",
    "bool": "a boolean (true or false)",
    "string": "a string",
    "list": "a list",
    "dict": "a mapping",
    "model": "a mapping",
}


def _translate(source: Document, err: dict) -> _Translated | None:
    """One pydantic error as a located problem in our words (None for a union's expression branch)."""
    loc = tuple(err["loc"])
    kind, got = err["type"], err.get("input")
    if loc and isinstance(loc[-1], str) and loc[-1].startswith(_EXPRESSION_BRANCH):
        return None  # the value was not written as an expression: the other branch's error says what it is
    path = _real_path(source.data, loc, kind)
    message = err["msg"]
    hint = None
    key = False
    expected = None
    code = "invalid-value"
    if kind == "missing":
        field = loc[-1]
        path = path[:-1] if path and path[-1] == field else path
        message = f"'{field}' is required"
        hint = _MISSING_HINTS.get(field)
        key = True
        code = "format-version" if field == "modelspec" else "missing-key"
    elif kind == "extra_forbidden":
        parent_model = _model_at(loc[:-1])
        allowed = list(parent_model.model_fields) if parent_model else []
        message = f"unknown key {shown(str(loc[-1]))}"
        near = suggest(str(loc[-1]), allowed)
        hint = (
            f"did you mean '{near}'?"
            if near
            else (f"expected one of: {', '.join(allowed)}" if allowed else None)
        )
        key = True
        code = "unknown-key"
    elif kind.endswith("_type") and kind[: -len("_type")] in _TYPE_WORDS:
        expected = _TYPE_WORDS[kind[: -len("_type")]]
        code = "format-version" if loc == ("modelspec",) else "wrong-type"
    elif kind == "literal_error":
        choices_text = str(err.get("ctx", {}).get("expected", ""))
        choices = re.findall(r"'([^']*)'", choices_text)
        # An expected value like the type errors', so a union's branches merge into one message.
        expected = f"{'one of ' if len(choices) > 1 else ''}{choices_text}"
        near = _LITERAL_ALIASES.get(got) if isinstance(got, str) else None
        near = near if near in choices else suggest(str(got), choices) if isinstance(got, str) else None
        hint = f"did you mean '{near}'?" if near else None
        code = "invalid-choice"
    elif kind == "string_pattern_mismatch":
        key = loc[-1] == "[key]"
        message, dotted = invalid_name(got)
        if "[" in str(got):
            message = f"{shown(got)} is not a valid reference: a name, or name[i] for the i-th output"
        if "block" not in loc:  # ALIAS.NAME is a block's name
            hint = dotted
        code = "invalid-name"
    elif kind == "value_error":
        message = str(err.get("ctx", {}).get("error", message))
        if loc == ("modelspec",):
            hint = "a newer modelspec may read this file; or write `modelspec: 1` for this format"
            code = "format-version"
    elif kind in ("greater_than_equal", "greater_than", "less_than", "less_than_equal"):
        message = f"{message[0].lower()}{message[1:]}, got {shown(got)}"
    else:
        message = f"{message[0].lower()}{message[1:]}" + (f", got {received(got)}" if got is not None else "")
    if expected is not None:
        message = f"expected {expected}, got {received(got)}"
    problem = source.problem(code, path, message, hint, key=key)
    return _Translated(problem, expected, received(got) if expected is not None else None)


def _model_at(loc: tuple) -> type[BaseModel] | None:
    """The pydantic model a ``loc`` leads to, to list the keys it allows."""
    model: Any = ModelSpec
    for part in loc:
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return None
        field = model.model_fields.get(part) if isinstance(part, str) else None
        if field is None:
            continue  # an index, a mapping key, or a union label
        model = _first_model(field.annotation)
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _first_model(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _first_model(arg)
        if found is not None:
            return found
    return None
