"""The spec models: a spec document as pydantic models, and the format's rules about its values.

Each entry remembers its :class:`~modelspec.errors.Origin` (a private
attribute set by :func:`modelspec.spec.to_spec`), so every later stage
locates its problems at the entry's line, whatever was changed in Python
since.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from ..errors import Origin, shown
from ..source import Source

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


DISTRIBUTIONS = ("none", "mirrored", "multi_worker_mirrored", "data_parallel")
"""The values of ``train.distribution``: none, two tf.distribute strategies, keras.distribution's DataParallel."""


def per_output(value: Any) -> bool:
    """Whether a ``compile`` value (loss, metrics, ...) is a mapping of output name -> value.

    A mapping with ``type`` is one Keras object; one without is keyed by output.
    """
    return isinstance(value, dict) and "type" not in value


def _same(a: BaseModel, b: object) -> bool:
    """Equality of what two parts say: where they were read from does not count."""
    if type(a) is not type(b):
        return NotImplemented
    return a.model_dump() == b.model_dump()  # type: ignore[union-attr]


class _Model(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", validate_default=False)

    _origin: Origin | None = PrivateAttr(None)

    __eq__ = _same
    __hash__ = None  # type: ignore[assignment]

    @property
    def origin(self) -> Origin | None:
        """Where this part was read from (None when made in Python)."""
        return self._origin


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

    _origin: Origin | None = PrivateAttr(None)

    __eq__ = _same
    __hash__ = None  # type: ignore[assignment]

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
    def origin(self) -> Origin | None:
        """Where this entry was read from (None when made in Python)."""
        return self._origin

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
    distribution: Literal[DISTRIBUTIONS] = Field(  # type: ignore[valid-type]
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

    def at(self, *path: Any) -> Origin:
        """The origin of the part of the spec at ``path`` (unlocated for a spec made in Python)."""
        return Origin(self._source, tuple(path))

    def entry_origin(self, key: str | int) -> Origin:
        """The origin of the layer entry ``key``: its own, else its place in this spec's document."""
        entry = self.layers[key]  # type: ignore[index]
        own = entry.origin if entry is not None else None
        return own if own is not None else self.at("layers", key)

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
        from .dump import dump_yaml

        return dump_yaml(self.to_data())


_INDEX = re.compile(r"^(?P<name>.+)\[(?P<index>-?[0-9]+)\]$")


def split_reference(ref: str) -> tuple[str, int | None]:
    """``'lstm[1]'`` -> ``('lstm', 1)``; ``'dense'`` -> ``('dense', None)``."""
    m = _INDEX.match(ref)
    return (m["name"], int(m["index"])) if m else (ref, None)
