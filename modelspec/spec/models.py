"""The spec models: a spec document as pydantic models, and the format's rules about its values.

Each entry remembers its :class:`~modelspec.errors.Origin` (a private
attribute set by :func:`modelspec.spec.to_spec`), so every later stage
locates its problems at the entry's line, whatever was changed in Python
since.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from .. import catalog
from ..errors import Origin, shown
from ..source import Document

FORMAT_VERSION = 1

MAX_LAYERS = 100_000
"""Most layer entries in a spec: checked before any per-layer work, so a huge spec is refused at once."""

NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_\-]*$"
"""Input and node names: letters, digits, '_' and '-' (every backend takes them; PyTorch refuses '.')."""
REFERENCE_PATTERN = r"^[A-Za-z_][A-Za-z0-9_\-]*(\[(-?[0-9]+|[A-Za-z_][A-Za-z0-9_\-]*)\])?$"
"""A node or input name, optionally with an output index, ``lstm[1]``, or a key of a dict output, ``encoder[sparse]``."""
EXPRESSION_PATTERN = r"^\$\{[\s\S]*\}$"
"""A string that is wholly one ``${...}`` expression: it stands for a value of any type."""
_OR_EXPRESSION = r"|^[\s\S]*\$\{[\s\S]*$"
BLOCK_PATTERN = r"^[A-Za-z_][A-Za-z0-9_\-]*(\.[A-Za-z_][A-Za-z0-9_\-]*)?$"
"""A block's name: ``NAME``, or ``ALIAS.NAME`` for a block of an imported file."""

DTYPES = tuple(catalog.dtypes())
"""The dtypes an input may have: those Keras has, from the catalog (the one list of them)."""


def _not_expanded(value: str, info: ValidationInfo) -> str:
    # A spec that has been expanded holds values only; a '${' left in it came from a '$${' escape.
    if info.context and info.context.get("expanded"):
        raise PydanticCustomError("expression_left", "a literal '${' here is not a value")
    return value


Expr = Annotated[str, Field(pattern=EXPRESSION_PATTERN), AfterValidator(_not_expanded)]
"""``"${...}"``: wherever a value may be an expression, the models accept one (checked once expanded)."""
Name = Annotated[str, Field(pattern=NAME_PATTERN)]
"""A name written as a key (inputs, nodes, params, blocks): never an expression."""
NameValue = Annotated[str, Field(pattern=NAME_PATTERN[:-1] + "$" + _OR_EXPRESSION)]
"""A name written as a value (``name:``, ``share:``): may be or hold an expression."""
Reference = Annotated[str, Field(pattern=REFERENCE_PATTERN + _OR_EXPRESSION)]
BlockName = Annotated[str, Field(pattern=BLOCK_PATTERN + _OR_EXPRESSION)]
KerasObject = Union[str, dict[str, Any]]
"""A Keras object: a string identifier, or ``{type: ClassName, ...arguments}``."""
PositiveInt = Annotated[int, Field(ge=1)]
Refs = Union[Reference, list[Reference], dict[str, Union[Reference, list[Reference]]]]


MAX_SEED = 2**32 - 1
"""Largest seed: Keras and NumPy seed their generators with 32-bit values."""


def _check_seed(v: Any) -> Any:
    # A validator, not Field(ge=..., le=...), so the JSON Schema stays as generated.
    if isinstance(v, int) and not 0 <= v <= MAX_SEED:
        raise ValueError(f"a seed is between 0 and {MAX_SEED:,} (2**32 - 1), got {shown(v)}")
    return v


DISTRIBUTIONS = ("none", "mirrored", "multi_worker_mirrored", "data_parallel")
"""The short form of ``train.distribution``: none, two tf.distribute strategies, keras.distribution's DataParallel."""
DISTRIBUTION_TYPES = (*DISTRIBUTIONS, "model_parallel")
"""The ``type`` of the long form: the short forms, and keras.distribution's ModelParallel."""


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

    shape: list[PositiveInt | Expr | None] | Expr = Field(
        description="The shape without the batch axis; null marks a free axis."
    )
    dtype: Literal[DTYPES] | Expr = Field("float32", description="The input's dtype.")  # type: ignore[valid-type]
    batch_size: PositiveInt | Expr | None = Field(None, description="A fixed batch size.")
    sparse: bool | Expr = Field(False, description="Whether the input is a sparse tensor.")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"shape": data} if isinstance(data, (list, str)) else data


class LayerSpec(BaseModel):
    """One layer entry: ``type`` plus the layer's own constructor arguments, flat.

    The reserved keys are fields; every other key is a constructor argument
    (see :attr:`args`).
    """

    _origin: Origin | None = PrivateAttr(None)

    __eq__ = _same
    __hash__ = None  # type: ignore[assignment]

    model_config = ConfigDict(strict=True, extra="allow", populate_by_name=True)

    type: str | None = Field(None, description="A Keras layer class name, e.g. Dense.")
    op: str | None = Field(
        None,
        description="Call a keras.ops function instead of a layer: add, multiply, concatenate, mean, ...",
    )
    block: BlockName | None = Field(
        None,
        description="Use a block (a named pattern of layers) instead of a layer: `blocks:` NAME or ALIAS.NAME.",
    )
    name: NameValue | None = Field(
        None, description="The layer's name (list form; in a block, sets the Keras layer name exactly)."
    )
    inputs: Refs | None = Field(
        None,
        description="What the layer is called on (mapping form only): a reference, a list, "
        "or call argument -> reference. Omitted: the node above.",
    )
    call: dict[str, Any] | None = Field(
        None, description="Constant call arguments (mapping form only), e.g. {training: false}."
    )
    share: NameValue | None = Field(
        None, description="Call the same layer object as this node (shared weights; mapping form only)."
    )
    repeat: Annotated[int, Field(ge=0)] | Expr | None = Field(
        None, description="A block instance repeated N times in a chain; `i` (from 0) and `n` in scope."
    )
    if_: bool | Expr | None = Field(
        None,
        alias="if",
        description="When false the entry is left out: its references mean `else`, or its input.",
    )
    else_: Reference | None = Field(
        None, alias="else", description="What a reference to a left-out entry means."
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
        """The entry as plain data, ``type`` (or ``block``) first, unset reserved keys left out."""
        data = {key: getattr(self, attr) for key, attr in RESERVED_KEYS.items()}
        data = {k: v for k, v in data.items() if v is not None}
        data.update(self.args)
        return data


RESERVED_KEYS = {
    "type": "type",
    "op": "op",
    "block": "block",
    "name": "name",
    "inputs": "inputs",
    "call": "call",
    "share": "share",
    "repeat": "repeat",
    "if": "if_",
    "else": "else_",
}
"""The keys of a layer entry that are not constructor arguments (key -> attribute)."""


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
    loss_weights: list[float | Expr] | dict[str, float | Expr] | Expr | None = Field(
        None, description="A weight per output: a list, or output name -> weight."
    )
    run_eagerly: bool | Expr | None = None
    steps_per_execution: PositiveInt | Expr | None = None
    jit_compile: bool | Literal["auto"] | Expr | None = None


SEPARATOR_NAMES = {"\\t": "\t", "tab": "\t"}
"""Separators written by name: ``\\t`` (a backslash and a t, as in single quotes) and ``tab`` mean a tab."""


def literal_separator(value: str) -> str:
    """A CSV column separator as it is used: one character, taken literally (never a regular expression).

    ``\\t`` and ``tab`` name the tab. A quote, a line break or another
    control character cannot separate columns.

    Raises:
        ValueError: Anything else (what it is, and what is allowed).
    """
    sep = SEPARATOR_NAMES.get(value, value)
    if not isinstance(sep, str) or len(sep) != 1:
        raise ValueError(
            f"a separator is one character, taken literally (',', ';', '|', ' ', or '\\t' for a tab), "
            f"got {shown(value)}"
        )
    if sep in "\"'\r\n" or (ord(sep) < 32 and sep != "\t") or ord(sep) == 127:
        raise ValueError(f"{shown(value)} cannot separate columns (a quote, line break or control character)")
    return sep


class DataSpec(_Model):
    """Where the training data is, and how it is split."""

    path: str = Field(description="A CSV file, relative to the spec file.")
    sep: str = Field(",", description="The column separator.")
    features: list[str] | Expr | None = Field(
        None, description="Feature columns (default: all but the targets)."
    )
    target: str | dict[str, str] = Field(description="The target column, or output name -> column.")
    test_split: Annotated[float, Field(ge=0.0, lt=1.0)] | Expr = Field(
        0.2,
        description="Share of the rows held out for the final test; the same rows as "
        "sklearn's train_test_split(test_size, random_state=seed, shuffle) picks.",
    )
    validation_split: Annotated[float, Field(ge=0.0, lt=1.0)] | Expr = Field(
        0.0,
        description="Share of the remaining rows held out for validation: the last ones, "
        "as Keras's fit(validation_split=...) takes them.",
    )
    shuffle: bool | Expr = Field(True, description="Shuffle the rows before the test split.")
    seed: int | Expr | None = Field(0, description="Seed of the shuffle (random_state of train_test_split).")

    @field_validator("seed")
    @classmethod
    def _seed(cls, v: Any) -> Any:
        return _check_seed(v)

    @field_validator("sep")
    @classmethod
    def _sep(cls, v: Any, info: ValidationInfo) -> Any:
        if "${" in v and not (info.context and info.context.get("expanded")):
            return v  # an expression: checked once expanded
        return literal_separator(v)

    @field_validator("test_split", "validation_split", mode="before")
    @classmethod
    def _int_is_float(cls, v: Any) -> Any:
        return float(v) if isinstance(v, int) and not isinstance(v, bool) else v


class DistributionSpec(_Model):
    """The long form of ``train.distribution``: processes on this machine, or a device mesh with layouts."""

    type: Literal[DISTRIBUTION_TYPES] | Expr = Field(  # type: ignore[valid-type]
        description="data_parallel (keras.distribution.DataParallel), model_parallel (ModelParallel), "
        "or one of the short forms."
    )
    processes: PositiveInt | Expr | None = Field(
        None, description="data_parallel: worker processes `modelspec train` starts on this machine."
    )
    mesh: dict[Name, PositiveInt | Expr] | None = Field(
        None, description="model_parallel: mesh axis name -> size; the product is the device count."
    )
    batch_axis: Name | None = Field(
        None, description="model_parallel: the mesh axis the data is split over (default: batch)."
    )
    layouts: dict[str, list[Name | None] | Expr] = Field(
        default_factory=dict,
        description="model_parallel: variable-path regex (matching the whole path, e.g. dense/kernel) -> "
        "one mesh axis (or null) per dimension.",
    )

    @field_validator("processes", "mesh", "batch_axis", "layouts")
    @classmethod
    def _fits_type(cls, v: Any, info: ValidationInfo) -> Any:
        # Located at the key that does not belong (model_parallel without a mesh: the analysis stage says so).
        kind = info.data.get("type")
        owner = "data_parallel" if info.field_name == "processes" else "model_parallel"
        if isinstance(kind, str) and "${" not in kind and kind != owner:
            raise ValueError(f"{info.field_name} belongs to {owner}, not {kind}")
        return v


def _distribution_form(value: Any) -> str:
    return "long" if isinstance(value, (dict, DistributionSpec)) else "short"


# Tagged by form, so that a misspelt short form is told the choices (not "or a mapping").
Distribution = Annotated[
    Union[
        Annotated[Union[Literal[DISTRIBUTIONS], Expr], Tag("short")],  # type: ignore[valid-type]
        Annotated[DistributionSpec, Tag("long")],
    ],
    Discriminator(_distribution_form),
]


class TrainSpec(_Model):
    """How the model is trained: data, normalization, epochs, callbacks, distribution."""

    data: DataSpec
    normalize: bool | Expr = Field(False, description="Adapt a Normalization layer on the training features.")
    epochs: PositiveInt | Expr = Field(10, description="Passes over the training data.")
    batch_size: PositiveInt | Expr = Field(32, description="Samples per gradient step.")
    callbacks: list[KerasObject] = Field(
        default_factory=list, description="Keras callbacks: {type: EarlyStopping, ...}."
    )
    distribution: Distribution = Field(
        "none",
        description="none | mirrored | multi_worker_mirrored (tf.distribute) | data_parallel (keras.distribution); "
        "or {type: data_parallel, processes: N}, or {type: model_parallel, mesh, batch_axis, layouts}.",
    )


SAMPLERS = ("tpe", "random", "grid", "cmaes", "gp")
"""The values of ``sweep.sampler``: Optuna's samplers."""
PRUNERS = ("none", "median", "hyperband")
"""The values of ``sweep.pruner``: Optuna's pruners, or none."""


class SweepSpec(_Model):
    """A search over the spec's params, variants and training settings, run by ``modelspec sweep`` with Optuna.

    Plain data only (no expressions): its choices are checked by
    :mod:`modelspec.spec.sweep` before anything trains.
    """

    objective: str = Field(
        description="A history metric (val_ for the validation split: val_accuracy, val_loss) or test_<metric>."
    )
    direction: Literal["minimize", "maximize"] | None = Field(
        None, description="Default: minimize when the objective's name holds 'loss', else maximize."
    )
    trials: PositiveInt | None = Field(
        None, description="Trials in the whole study (failed and pruned ones count); --trials overrides it."
    )
    timeout: PositiveInt | str | None = Field(
        None, description="Stop starting trials after this long: seconds, or 90s, 30m, 2h."
    )
    sampler: Literal[SAMPLERS] = Field("tpe", description="tpe | random | grid | cmaes | gp.")  # type: ignore[valid-type]
    seed: int | None = Field(None, description="The sampler's seed (worker k uses seed + k).")
    pruner: Literal[PRUNERS] = Field(  # type: ignore[valid-type]
        "none", description="none | median | hyperband: stop poor trials from their per-epoch reports."
    )
    space: dict[str, Any] = Field(
        description="Key path (variant, params.NAME, train.KEY..., compile.KEY...) -> choices: a list, "
        "{int: [lo, hi], log, step} or {float: [lo, hi], log, step}."
    )
    storage: str | None = Field(
        None,
        description="Optuna's storage: a journal file (relative to the spec; default <output>/journal) "
        "or an RDB URL (postgresql://..., sqlite:///...).",
    )

    @field_validator("seed")
    @classmethod
    def _seed(cls, v: Any) -> Any:
        return _check_seed(v)


class BlockSpec(_Model):
    """A named pattern of layers, used many times: ``{block: NAME, ...params}``."""

    description: str | None = None
    params: dict[Name, Any] = Field(
        default_factory=dict,
        description="Param name -> default (a literal, or an expression over the params before it); "
        "`required` when each instance must give it.",
    )
    inputs: list[Name] = Field(
        default_factory=lambda: ["x"], description="The block's input names (default: [x])."
    )
    layers: list[LayerSpec] | dict[Name, LayerSpec] = Field(
        description="A list (a chain) or node name -> layer (a DAG), as a spec's layers."
    )
    outputs: Refs | None = Field(
        None, description="The block's output: a reference or a list of them. Omitted: the last node."
    )


class ModelSpec(_Model):
    """A whole spec, format version 1.

    Two specs are equal when they describe the same model: where they were
    read from does not count.
    """

    modelspec: int = Field(description="The format version: 1.")
    name: NameValue | None = Field(None, description="The Keras model name (default: the file's stem).")
    description: str | None = None
    seed: int | Expr | None = Field(None, description="Same seed, same initial weights, every build.")
    params: dict[Name, Any] = Field(
        default_factory=dict, description="Param name -> value, for ${...} expressions; override with --set."
    )
    variants: dict[Name, dict[Name, Any]] = Field(
        default_factory=dict, description="Variant name -> param overrides; choose one with --variant."
    )
    imports: dict[Name, str] = Field(
        default_factory=dict,
        description="Alias -> spec file (relative to this one) whose blocks are ALIAS.NAME.",
    )
    blocks: dict[Name, BlockSpec] = Field(default_factory=dict, description="Block name -> block.")
    inputs: dict[Name, InputSpec] = Field(default_factory=dict, description="Input name -> input.")
    layers: list[LayerSpec] | dict[Name, LayerSpec] | None = Field(
        None,
        description="A list (linear stack: keras.Sequential) or node name -> layer (a DAG: functional keras.Model). "
        "Omitted only in a block library.",
    )
    outputs: Refs | None = Field(
        None,
        description="Mapping form: a reference, a list, or output name -> reference. Omitted: the last node.",
    )
    compile: CompileSpec | None = None
    train: TrainSpec | None = None
    sweep: SweepSpec | None = Field(
        None, description="A search over params, variants and training settings: `modelspec sweep`."
    )

    _source: Document | None = PrivateAttr(None)
    _expanded: bool = PrivateAttr(False)

    @field_validator("seed")
    @classmethod
    def _seed(cls, v: Any) -> Any:
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
    def expanded(self) -> bool:
        """Whether this spec is the expansion of one (no params, blocks or expressions left to expand)."""
        return self._expanded

    @property
    def library(self) -> bool:
        """Whether the file is a block library: blocks and no layers."""
        return self.layers is None

    @property
    def source(self) -> Document | None:
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
        """The spec as plain data, as it would be written (an expanded spec escapes a literal '${' as '$${')."""
        data = self.model_dump(mode="json", exclude_unset=True, exclude={"layers", "blocks"})
        if self.blocks:
            data["blocks"] = {name: _block_data(block) for name, block in self.blocks.items()}
        if self.layers is not None:
            data["layers"] = _layers_data(self.layers)
        order = list(ModelSpec.model_fields)
        data = {k: data[k] for k in order if k in data}
        return _escaped(data) if self._expanded else data

    def to_yaml(self) -> str:
        """The spec as YAML text; ``loads(spec.to_yaml()) == spec``.

        Short lists and entries are written on one line, as people write
        specs, so the text diffs well.
        """
        from .dump import dump_yaml

        return dump_yaml(self.to_data())


def _layers_data(layers: list[LayerSpec] | dict[str, LayerSpec]) -> Any:
    if isinstance(layers, list):
        return [entry.to_data() for entry in layers]
    return {name: entry.to_data() for name, entry in layers.items()}


def _block_data(block: BlockSpec) -> dict[str, Any]:
    data = block.model_dump(mode="json", exclude_unset=True, exclude={"layers"})
    data["layers"] = _layers_data(block.layers)
    return {k: data[k] for k in BlockSpec.model_fields if k in data}


def _escaped(value: Any) -> Any:
    """Strings with '${' written as '$${', so that reading the text back gives the same values."""
    if isinstance(value, str):
        return value.replace("${", "$${") if "${" in value else value
    if isinstance(value, list):
        return [_escaped(v) for v in value]
    if isinstance(value, dict):
        return {k: _escaped(v) for k, v in value.items()}
    return value


def invalid_name(value: Any) -> tuple[str, str | None]:
    """The message and hint for a node or input name that does not match ``NAME_PATTERN``."""
    message = (
        f"{shown(value)} is not a valid name: use letters, digits, '_' and '-', starting with a letter or '_'"
    )
    hint = None
    if "." in str(value):
        hint = f"names cannot hold '.' (the PyTorch backend refuses it): write {shown(str(value).replace('.', '_'))}"
    return message, hint


def holds_expression(value: Any) -> bool:
    """Whether ``value`` (plain data: strings, lists, mappings) has a string holding ``${`` anywhere."""
    if isinstance(value, str):
        return "${" in value
    if isinstance(value, dict):
        return any(holds_expression(v) for v in value.values())
    if isinstance(value, list):
        return any(holds_expression(v) for v in value)
    return False


_INDEX = re.compile(r"^(?P<name>.+)\[(?:(?P<index>-?[0-9]+)|(?P<key>[A-Za-z_][A-Za-z0-9_\-]*))\]$")


def split_reference(ref: str) -> tuple[str, int | str | None]:
    """``'lstm[1]'`` -> ``('lstm', 1)``; ``'encoder[sparse]'`` -> ``('encoder', 'sparse')``; ``'dense'`` -> ``('dense', None)``."""
    m = _INDEX.match(ref)
    if m is None:
        return ref, None
    return m["name"], int(m["index"]) if m["index"] is not None else m["key"]
