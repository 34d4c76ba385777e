"""Stage 2, spec: plain data to a validated :class:`ModelSpec`.

Pydantic checks the shape of the document; :mod:`modelspec._arguments` then
checks every layer entry and Keras object against the layer catalog. Every
problem is located through the :class:`~modelspec._source.Source` the data
came from, and all of them are raised together in one :class:`SpecError`.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Union

import pydantic
import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from ._catalog import suggest
from ._errors import Path, Problem, SpecError, received, shown
from ._source import Source

FORMAT_VERSION = 1

MAX_LAYERS = 100_000
"""Most layer entries in a spec: checked before any per-layer work, so a huge spec is refused at once."""

NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.\-]*$"
"""Input and node names: what Keras accepts as a layer name, and what a reference can hold."""
REFERENCE_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.\-]*(\[-?[0-9]+\])?$"
"""A node or input name, optionally with an output index: ``lstm[1]``."""

DTYPES = (
    "float16", "float32", "float64", "bfloat16",
    "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "bool", "string",
)  # fmt: skip

RESERVED_TOP = {"blocks": "reusable blocks ('blocks') are planned for a later version of the format"}
RESERVED_ENTRY = {
    "block": "reusable blocks ('block') are planned for a later version of the format",
    "repeat": "repeated layers ('repeat') are planned for a later version of the format",
}

Name = Annotated[str, Field(pattern=NAME_PATTERN)]
Reference = Annotated[str, Field(pattern=REFERENCE_PATTERN)]
KerasObject = Union[str, dict[str, Any]]
"""A Keras object: a string identifier, or ``{type: ClassName, ...arguments}``."""


MAX_SEED = 2**32 - 1
"""Largest seed: Keras and NumPy seed their generators with 32-bit values."""


def _check_seed(v: int | None) -> int | None:
    # A validator, not Field(ge=..., le=...), so the JSON Schema stays as generated.
    if v is not None and not 0 <= v <= MAX_SEED:
        raise ValueError(f"a seed is between 0 and {MAX_SEED:,} (2**32 - 1), got {shown(v)}")
    return v


class _Model(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", validate_default=False)


class InputSpec(_Model):
    """One model input (``keras.Input``). Written ``{shape: [4]}`` or just ``[4]``."""

    shape: list[Annotated[int, Field(ge=1)] | None] = Field(
        description="The shape without the batch axis; null marks a free axis."
    )
    dtype: Literal[DTYPES] = Field("float32", description="The input's dtype.")  # type: ignore[valid-type]
    batch_size: Annotated[int, Field(ge=1)] | None = Field(None, description="A fixed batch size.")
    sparse: bool = Field(False, description="Whether the input is a sparse tensor.")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"shape": data} if isinstance(data, list) else data


class LayerSpec(BaseModel):
    """One layer entry: ``type`` plus the layer's own constructor arguments, flat.

    The reserved keys are fields; every other key is a constructor argument
    (see :attr:`args`).
    """

    model_config = ConfigDict(strict=True, extra="allow")

    type: str | None = Field(None, description="A Keras layer class name, e.g. Dense.")
    name: Name | None = Field(None, description="The layer's name (list form only).")
    inputs: Reference | list[Reference] | dict[str, Reference | list[Reference]] | None = Field(
        None,
        description="What the layer is called on (mapping form only): a reference, a list, "
        "or call argument -> reference. Omitted: the node above.",
    )
    call: dict[str, Any] | None = Field(
        None, description="Constant call arguments (mapping form only), e.g. {training: false}."
    )
    share: Name | None = Field(
        None, description="Call the same layer object as this node (shared weights; mapping form only)."
    )

    @property
    def args(self) -> dict[str, Any]:
        """The constructor arguments (every key that is not reserved)."""
        return dict(self.model_extra or {})

    def to_data(self) -> dict[str, Any]:
        """The entry as plain data, ``type`` first, unset reserved keys left out."""
        data = {k: getattr(self, k) for k in ("type", "name", "inputs", "call", "share")}
        data = {k: v for k, v in data.items() if v is not None}
        data.update(self.args)
        return data


class CompileSpec(_Model):
    """Arguments of ``model.compile``. Objects are names or ``{type: Class, ...}``."""

    optimizer: KerasObject | None = Field(None, description="An optimizer: 'adam' or {type: Adam, ...}.")
    loss: KerasObject | list[KerasObject] | None = Field(
        None, description="A loss, a list (one per output), or output name -> loss."
    )
    metrics: list[KerasObject] | dict[str, KerasObject | list[KerasObject]] | None = Field(
        None, description="Metrics, or output name -> metrics."
    )
    weighted_metrics: list[KerasObject] | dict[str, KerasObject | list[KerasObject]] | None = None
    loss_weights: list[float] | dict[str, float] | None = Field(
        None, description="A weight per output: a list, or output name -> weight."
    )
    run_eagerly: bool | None = None
    steps_per_execution: Annotated[int, Field(ge=1)] | None = None
    jit_compile: bool | Literal["auto"] | None = None


class DataSpec(_Model):
    """Where the training data is, and how it is split."""

    path: str = Field(description="A CSV file, relative to the spec file.")
    sep: str = Field(",", description="The column separator.")
    features: list[str] | None = Field(None, description="Feature columns (default: all but the targets).")
    target: str | dict[str, str] = Field(description="The target column, or output name -> column.")
    test_split: Annotated[float, Field(ge=0.0, lt=1.0)] = Field(
        0.2,
        description="Share of the rows held out for the final test; the same rows as "
        "sklearn's train_test_split(test_size, random_state=seed, shuffle) picks.",
    )
    validation_split: Annotated[float, Field(ge=0.0, lt=1.0)] = Field(
        0.0,
        description="Share of the remaining rows held out for validation: the last ones, "
        "as Keras's fit(validation_split=...) takes them.",
    )
    shuffle: bool = Field(True, description="Shuffle the rows before the test split.")
    seed: int | None = Field(0, description="Seed of the shuffle (random_state of train_test_split).")

    @field_validator("seed")
    @classmethod
    def _seed(cls, v: int | None) -> int | None:
        return _check_seed(v)

    @field_validator("test_split", "validation_split", mode="before")
    @classmethod
    def _int_is_float(cls, v: Any) -> Any:
        return float(v) if isinstance(v, int) and not isinstance(v, bool) else v


class TrainSpec(_Model):
    """How the model is trained: data, normalization, epochs, callbacks, distribution."""

    data: DataSpec
    normalize: bool = Field(False, description="Adapt a Normalization layer on the training features.")
    epochs: Annotated[int, Field(ge=1)] = Field(10, description="Passes over the training data.")
    batch_size: Annotated[int, Field(ge=1)] = Field(32, description="Samples per gradient step.")
    callbacks: list[KerasObject] = Field(
        default_factory=list, description="Keras callbacks: {type: EarlyStopping, ...}."
    )
    distribution: Literal["none", "mirrored", "multi_worker_mirrored", "data_parallel"] = Field(
        "none",
        description="none | mirrored | multi_worker_mirrored (tf.distribute) | data_parallel (keras.distribution).",
    )


class ModelSpec(_Model):
    """A whole spec, format version 1.

    Two specs are equal when they describe the same model: where they were
    read from does not count.
    """

    modelspec: int = Field(description="The format version: 1.")
    name: Name | None = Field(None, description="The Keras model name (default: the file's stem).")
    description: str | None = None
    seed: int | None = Field(None, description="Same seed, same initial weights, every build.")
    inputs: dict[Name, InputSpec] = Field(default_factory=dict, description="Input name -> input.")
    layers: list[LayerSpec] | dict[Name, LayerSpec] = Field(
        description="A list (linear stack: keras.Sequential) or node name -> layer (a DAG: functional keras.Model)."
    )
    outputs: Reference | list[Reference] | dict[str, Reference] | None = Field(
        None,
        description="Mapping form: a reference, a list, or output name -> reference. Omitted: the last node.",
    )
    compile: CompileSpec | None = None
    train: TrainSpec | None = None

    _source: Source | None = PrivateAttr(None)

    @field_validator("seed")
    @classmethod
    def _seed(cls, v: int | None) -> int | None:
        return _check_seed(v)

    @field_validator("modelspec")
    @classmethod
    def _version(cls, v: int) -> int:
        if v != FORMAT_VERSION:
            raise ValueError(
                f"unsupported format version {v!r}; this modelspec reads version {FORMAT_VERSION}"
            )
        return v

    @property
    def sequential(self) -> bool:
        """Whether the layers are a list (a linear stack)."""
        return isinstance(self.layers, list)

    @property
    def source(self) -> Source | None:
        """The source the spec was read from (None when built in Python)."""
        return self._source

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ModelSpec):
            return NotImplemented
        return self.model_dump() == other.model_dump()

    __hash__ = None  # type: ignore[assignment]

    def to_data(self) -> dict[str, Any]:
        """The spec as plain data, as it would be written."""
        data = self.model_dump(mode="json", exclude_unset=True, exclude={"layers"})
        data["layers"] = (
            [entry.to_data() for entry in self.layers]
            if isinstance(self.layers, list)
            else {name: entry.to_data() for name, entry in self.layers.items()}
        )
        order = list(ModelSpec.model_fields)
        return {k: data[k] for k in order if k in data}

    def to_yaml(self) -> str:
        """The spec as YAML text; ``loads(spec.to_yaml()) == spec``.

        Short lists and entries are written on one line, as people write
        specs, so the text diffs well.
        """
        return yaml.dump(self.to_data(), Dumper=_SpecDumper, sort_keys=False, allow_unicode=True, width=100)

    def problem(self, path: Path, message: str, hint: str | None = None, **kw: Any) -> Problem:
        """A problem located in this spec's source (unlocated when it has none)."""
        if self._source is not None:
            return self._source.problem(path, message, hint, **kw)
        return Problem(tuple(path), message, "<spec>", hint=hint, severity=kw.get("severity", "error"))


class _SpecDumper(yaml.SafeDumper):
    """Block style for the document's structure, flow style for short leaves."""


def _is_leaf(value: Any) -> bool:
    if isinstance(value, list):
        return all(not isinstance(v, (dict, list)) for v in value)
    return not isinstance(value, dict)


def _represent_list(dumper: yaml.SafeDumper, value: list) -> yaml.Node:
    flow = _is_leaf(value) and len(repr(value)) <= 80
    return dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=flow)


def _represent_dict(dumper: yaml.SafeDumper, value: dict) -> yaml.Node:
    flow = all(_is_leaf(v) for v in value.values()) and len(repr(value)) <= 90
    return dumper.represent_mapping("tag:yaml.org,2002:map", value.items(), flow_style=flow)


_SpecDumper.add_representer(list, _represent_list)
_SpecDumper.add_representer(dict, _represent_dict)


# -- from plain data to ModelSpec -------------------------------------------


def to_spec(source: Source, custom_objects: dict[str, Any] | None = None) -> ModelSpec:
    """Validate a parsed document into a :class:`ModelSpec`.

    Args:
        source: The parsed document.
        custom_objects: User layer classes by type name, accepted besides Keras's.

    Raises:
        SpecError: Every problem found in the document.
    """
    from ._arguments import check_spec  # the catalog checks, after the shape is known

    data = source.data
    if data is None:
        raise SpecError(
            [source.problem((), "the spec is empty", "a spec is a mapping that starts with 'modelspec: 1'")]
        )
    if not isinstance(data, dict):
        raise SpecError(
            [
                source.problem(
                    (),
                    f"a spec is a mapping of keys (modelspec, inputs, layers, ...), got {received(data)}",
                    "write `modelspec: 1`, then `layers:` and the other keys, each at the start of a line",
                )
            ]
        )
    layers = data.get("layers")
    if isinstance(layers, (list, dict)) and len(layers) > MAX_LAYERS:
        raise SpecError(
            [
                source.problem(
                    ("layers",),
                    f"the spec has {len(layers):,} layers; at most {MAX_LAYERS:,} are allowed",
                    "a model this large is refused to bound the time and memory of checking it",
                    key=True,
                )
            ]
        )
    problems = _reserved(source, data)
    try:
        spec = ModelSpec.model_validate(data)
    except pydantic.ValidationError as e:
        errors = e.errors()
        problems += _pydantic_problems(source, errors)
        problems += _check_valid_parts(source, data, errors, custom_objects or {})
        raise SpecError(problems) from None
    spec._source = source
    problems += check_spec(spec, custom_objects or {})
    if problems:
        from ._graph import to_graph  # the graph's problems are reported with these, all at once

        try:
            to_graph(spec)
        except SpecError as e:
            problems += e.problems
        raise SpecError(problems)
    return spec


def _check_valid_parts(
    source: Source, data: dict, errors: list[dict], custom_objects: dict[str, Any]
) -> list[Problem]:
    """The catalog problems of the parts pydantic accepted, when another part failed.

    Two mistakes in different places are reported together: each layer entry,
    ``compile`` and ``train`` without a schema error of its own is checked
    against the catalog on its own.
    """
    from ._arguments import check_spec

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

    items = layers.items() if isinstance(layers, dict) else enumerate(layers)
    entries = {key: valid(LayerSpec, entry) if ("layers", key) not in bad else None for key, entry in items}
    parts: dict[str, Any] = {"layers": list(entries.values()) if isinstance(layers, list) else entries}
    for name, model in (("compile", CompileSpec), ("train", TrainSpec)):
        if isinstance(data.get(name), dict) and (name,) not in bad:
            parts[name] = valid(model, data[name])
    partial = ModelSpec.model_construct(**parts)
    partial._source = source
    return check_spec(partial, custom_objects)


def _reserved(source: Source, data: dict) -> list[Problem]:
    found = [source.problem((k,), msg, key=True) for k, msg in RESERVED_TOP.items() if k in data]
    layers = data.get("layers")
    if isinstance(layers, (dict, list)):
        entries = layers.items() if isinstance(layers, dict) else enumerate(layers)
        for key, entry in entries:
            if isinstance(entry, dict):
                found += [
                    source.problem(("layers", key, k), msg, key=True)
                    for k, msg in RESERVED_ENTRY.items()
                    if k in entry
                ]
    for p in found:
        _drop(data, p.path)
    return found


def _drop(data: Any, path: Path) -> None:
    for part in path[:-1]:
        data = data[part]
    data.pop(path[-1], None)


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


def _pydantic_problems(source: Source, errors: list[dict]) -> list[Problem]:
    """Pydantic's errors in our words, one per place.

    A union reports a failure for each branch; the branch the value was
    written for is the one with deeper errors, so type errors at a place with
    deeper errors are dropped, and the rest at one place merge into one
    "expected a list or a mapping" message.
    """
    problems = [_problem(source, err) for err in errors]
    deep = {p.path[:n] for p in problems for n in range(len(p.path))}
    merged: dict[Path, list[Problem]] = {}
    kept: list[Problem] = []
    for p in problems:
        if p.message.startswith("expected "):
            if p.path in deep:
                continue
            merged.setdefault(p.path, []).append(p)
        else:
            kept.append(p)
    for same in merged.values():
        words = list(dict.fromkeys(p.message[len("expected ") : p.message.index(", got ")] for p in same))
        got = same[0].message[same[0].message.index(", got ") :]
        first = same[0]
        text = words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]
        kept.append(Problem(
            first.path, f"expected {text}{got}", first.file, first.line, first.column,
            first.hint, first.severity, first.end_column, first.source_line,
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


def _problem(source: Source, err: dict) -> Problem:
    """One pydantic error as a located problem in our words."""
    loc = tuple(err["loc"])
    kind, got = err["type"], err.get("input")
    path = _real_path(source.data, loc, kind)
    message = err["msg"]
    hint = None
    key = False
    if kind == "missing":
        field = loc[-1]
        path = path[:-1] if path and path[-1] == field else path
        message = f"'{field}' is required"
        hint = _MISSING_HINTS.get(field)
        key = True
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
    elif kind.endswith("_type") and kind[: -len("_type")] in _TYPE_WORDS:
        message = f"expected {_TYPE_WORDS[kind[: -len('_type')]]}, got {received(got)}"
    elif kind == "literal_error":
        expected = str(err.get("ctx", {}).get("expected", ""))
        choices = re.findall(r"'([^']*)'", expected)
        # "expected ..." like the type errors, so a union's branches merge into one message.
        message = f"expected {'one of ' if len(choices) > 1 else ''}{expected}, got {received(got)}"
        near = _LITERAL_ALIASES.get(got) if isinstance(got, str) else None
        near = near if near in choices else suggest(str(got), choices) if isinstance(got, str) else None
        hint = f"did you mean '{near}'?" if near else None
    elif kind == "string_pattern_mismatch":
        key = loc[-1] == "[key]"
        message = (
            f"{shown(got)} is not a valid name: use letters, digits, '_', '-' and '.', "
            "starting with a letter or '_'"
        )
        if "[" in str(got):
            message = f"{shown(got)} is not a valid reference: a name, or name[i] for the i-th output"
    elif kind == "value_error":
        message = str(err.get("ctx", {}).get("error", message))
        if loc == ("modelspec",):
            hint = "a newer modelspec may read this file; or write `modelspec: 1` for this format"
    elif kind in ("greater_than_equal", "greater_than", "less_than", "less_than_equal"):
        message = f"{message[0].lower()}{message[1:]}, got {shown(got)}"
    else:
        message = f"{message[0].lower()}{message[1:]}" + (f", got {received(got)}" if got is not None else "")
    return source.problem(path, message, hint, key=key)


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


_INDEX = re.compile(r"^(?P<name>.+)\[(?P<index>-?[0-9]+)\]$")


def split_reference(ref: str) -> tuple[str, int | None]:
    """``'lstm[1]'`` -> ``('lstm', 1)``; ``'dense'`` -> ``('dense', None)``."""
    m = _INDEX.match(ref)
    return (m["name"], int(m["index"])) if m else (ref, None)
