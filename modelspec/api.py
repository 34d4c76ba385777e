"""The Python API, and the only place that runs the stages in order.

source (text -> data + locations) -> spec (-> ModelSpec) -> expand (-> the
plain ModelSpec, checked against the catalog) -> graph (-> resolved, ordered
Graph, then lint) -> keras (-> model), and training on top. Each stage returns its result and its problems; here it
is decided whether to go on or to raise one :class:`SpecError` with all of them.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .analysis import Analysis, analyze, available_memory, memory_problems, uncounted_problems
from .analysis.layouts import layout_problems
from .errors import Problem, SpecError, raise_errors
from .expand import expand, merge_repeats
from .graph import Graph, lint, to_graph
from .source import Source, parse, paused_gc, read_source
from .spec import ModelSpec, check_spec, to_spec
from .spec.paths import check_paths, path_policy

if TYPE_CHECKING:  # training pulls in the data and model-file modules: imported when it runs
    from .sweep import SweepResult
    from .training import TrainResult

_registry: dict[str, Any] = {}

TRAINING_COPIES = 4
"""Copies of the weights training keeps: the weights, their gradients and Adam's two slots."""


def register(cls: Any = None, *, name: str | None = None) -> Any:
    """Make a user layer (or other Keras object) usable as a spec ``type``.

    Use as a decorator, ``@modelspec.register``, or call it:
    ``modelspec.register(MyLayer, name="Mine")``. A spec never imports code;
    this is how custom classes reach it, from the Python side.
    """

    def add(c: Any) -> Any:
        _registry[name or c.__name__] = c
        return c

    return add if cls is None else add(cls)


def registered() -> dict[str, Any]:
    """The classes registered with :func:`register`, by name."""
    return dict(_registry)


_LIBRARY_BASES = frozenset({"Layer", "Initializer", "Regularizer", "Constraint"})
"""Keras base classes of the registered classes a spec may name: layers and the objects their arguments take."""


def keras_registered() -> dict[str, Any]:
    """What libraries registered with Keras (``keras_hub>TransformerEncoder``), when Keras is already imported.

    ``import keras_hub`` (or ``--plugin keras_hub``) registers a library's
    classes with ``keras.saving.register_keras_serializable``; a spec names
    them ``package>Class``. Without Keras imported nothing is registered, and
    nothing here imports it (``validate`` stays fast). Only layer classes,
    the classes of their arguments (initializers, regularizers, constraints)
    and functions of one tensor (activations such as
    ``keras_hub>gelu_approximate``) are taken: a library also registers
    functions that reach outside (``keras_hub>upload_preset``), which a spec
    must never call, and tokenizers, which read the files their arguments name.
    """
    keras = sys.modules.get("keras")
    saving = getattr(keras, "saving", None)
    if saving is None:
        return {}
    found = {name: obj for name, obj in saving.get_custom_objects().items() if _library_object(obj)}
    return {**_library_layers(found), **found}


_library_cache: dict[tuple[int, int], dict[str, Any]] = {}


def _library_layers(registered: dict[str, Any]) -> dict[str, Any]:
    """The layer classes a library defines without registering them, as ``package>Class``.

    KerasHub registers the layers it exports (``keras_hub>TransformerEncoder``)
    but not those its backbones build from (``GPTNeoXDecoder``,
    ``RelativeEmbedding``): Keras finds those by their module when it loads a
    model, which a spec never names. Each is named in its package, unless
    that name is a registered class's or two of its classes share it (Gemma's
    own ``RMSNormalization`` is not ``keras_hub>RMSNormalization``): export
    refuses those by name.
    """
    packages = {k.split(">", 1)[0] for k in registered if ">" in k} - {"keras"}
    key = (len(sys.modules), len(registered))
    if key in _library_cache:
        return _library_cache[key]
    by_name: dict[str, list[Any]] = {}
    registered_ids = {id(v) for v in registered.values()}
    for module_name, module in list(sys.modules.items()):
        package = module_name.split(".", 1)[0]
        if package not in packages or module is None:
            continue
        for value in list(vars(module).values()):
            if (
                isinstance(value, type)
                and value.__module__ == module_name
                and id(value) not in registered_ids
                and _library_object(value)
                and any(b.__name__ == "Layer" and b.__module__.startswith("keras.") for b in value.__mro__)
            ):
                by_name.setdefault(f"{package}>{value.__name__}", []).append(value)
    found = {k: v[0] for k, v in by_name.items() if len(v) == 1 and k not in registered}
    _library_cache.clear()
    _library_cache[key] = found
    return found


_READS_FILES = ("Tokenizer", "Preprocessor")
"""Tokenizers and preprocessors (KerasHub's, TensorFlow Text's) read the files their arguments name
(vocabularies, SentencePiece protos); a spec's paths are confined, so no class whose base's name ends
so is taken from the registry."""


def _library_object(obj: Any) -> bool:
    if isinstance(obj, type):
        bases = obj.__mro__
        if any(b.__name__.endswith(_READS_FILES) for b in bases):
            return False
        return any(b.__name__ in _LIBRARY_BASES and b.__module__.startswith("keras.") for b in bases)
    if not inspect.isfunction(obj):
        return False
    try:
        params = inspect.signature(obj).parameters.values()
    except (TypeError, ValueError):
        return False
    required = [
        p for p in params if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    return len(required) == 1


def _objects(custom_objects: dict[str, Any] | None) -> dict[str, Any]:
    return {**keras_registered(), **_registry, **(custom_objects or {})}


@dataclass(frozen=True)
class Checked:
    """What the checking stages return: the expanded spec, its graph and its static analysis.

    Attributes:
        spec: The expanded spec.
        graph: Its resolved graph (``graph.warnings``: the lint and memory
            warnings); None for a block library, which has no model.
        analysis: Every node's shape and parameters; None with ``graph``.
    """

    spec: ModelSpec
    graph: Graph | None
    analysis: Analysis | None

    def model(self) -> tuple[Graph, Analysis]:
        """The graph and its analysis of a spec that has a model.

        Raises:
            SpecError: The spec is a block library: nothing to build.
        """
        if self.graph is None or self.analysis is None:
            raise SpecError(
                [
                    self.spec.at("layers").problem(
                        "no-layers", "a block library has no layers: nothing to build"
                    )
                ]
            )
        return self.graph, self.analysis


def _check_document(
    source: Source,
    objects: dict[str, Any],
    params: dict[str, Any] | None,
    variant: str | None,
    strict: bool = False,
    strict_rules: bool = False,
) -> Checked:
    """Run the stages that need no Keras on a parsed document: spec, expand, catalog checks, graph, lint, shapes."""
    with paused_gc():
        spec, problems = to_spec(source, objects)
        if spec is None:
            raise SpecError(problems)
        return _check_spec(spec, objects, params, variant, strict, strict_rules)


def _check_spec(
    spec: ModelSpec,
    objects: dict[str, Any],
    params: dict[str, Any] | None = None,
    variant: str | None = None,
    strict: bool = False,
    strict_rules: bool = False,
) -> Checked:
    """Expand a spec, then check it against the catalog, as a graph and by its shapes; every problem together."""
    flat, problems = expand(spec, params=params, variant=variant, custom_objects=objects)
    if flat is None:
        raise SpecError(problems)
    if flat.library:
        return Checked(flat, None, None)
    problems += check_spec(flat, objects)
    problems += check_paths(flat)  # what the spec's paths reach, and what training would write over
    graph, found = to_graph(flat)
    problems += found
    raise_errors(merge_repeats(problems))
    # Only for a graph without errors: broken parts mislead the lint checks and the shape rules.
    graph.warnings = merge_repeats(lint(graph))
    analysis = analyze(graph, strict_rules=strict_rules)
    problems = analysis.problems + layout_problems(flat, graph, analysis)
    if strict:
        problems += [
            graph.node(name).origin.problem(
                "shape-unknown", f"the output shape of '{name}' is not known: {analysis.nodes[name].reason}"
            )
            for name in analysis.unknown
        ]
    raise_errors(merge_repeats(problems))
    graph.warnings += [
        dataclasses.replace(p, severity="warning")
        for p in memory_problems(graph, analysis, available=available_memory(), share=0.25)
    ]  # past a quarter of the memory, a warning: building it would take most of the machine
    return Checked(flat, graph, analysis)


def loads(
    text: str,
    source: str = "<string>",
    *,
    params: dict[str, Any] | None = None,
    variant: str | None = None,
    custom_objects: dict[str, Any] | None = None,
) -> ModelSpec:
    """Read a spec from YAML text, expanded (params, blocks, imports and expressions).

    Args:
        text: The YAML document.
        source: The name used in messages (a file name, or ``<string>``).
        params: Param values that override the spec's ``params``.
        variant: A name from the spec's ``variants``: its param overrides apply first.
        custom_objects: User classes by ``type`` name, besides registered ones.

    Raises:
        SpecError: Every problem found, located in ``source``.
    """
    return _check_document(parse(text, source), _objects(custom_objects), params, variant).spec


def load(
    path: str | os.PathLike,
    *,
    params: dict[str, Any] | None = None,
    variant: str | None = None,
    custom_objects: dict[str, Any] | None = None,
) -> ModelSpec:
    """Read a spec file, expanded. Relative paths in it (imports, training data) resolve against its folder.

    Args:
        path: The spec file.
        params: Param values that override the spec's ``params`` (as ``--set``).
        variant: A name from the spec's ``variants`` (as ``--variant``).
        custom_objects: User classes by ``type`` name, besides registered ones.

    Raises:
        SpecError: The file is missing or unreadable, or every problem found in it.
    """
    return load_checked(path, params=params, variant=variant, custom_objects=custom_objects).spec


def load_checked(
    path: str | os.PathLike,
    *,
    params: dict[str, Any] | None = None,
    variant: str | None = None,
    custom_objects: dict[str, Any] | None = None,
    strict: bool = False,
    strict_rules: bool = False,
) -> Checked:
    """Read a spec file and check it through static analysis, once: the expanded spec, its graph and analysis.

    The graph and analysis are None for a block library (a file of blocks and no layers).

    Args:
        strict: Also report, as errors, the nodes whose output shape could not be inferred.
        strict_rules: Let a shape rule's own failure propagate instead of leaving
            the shape unknown (:func:`modelspec.analysis.analyze`): for tests.

    Raises:
        SpecError: Every problem found.
    """
    return _check_document(read_source(path), _objects(custom_objects), params, variant, strict, strict_rules)


def check(spec: ModelSpec | str | os.PathLike, *, custom_objects: dict[str, Any] | None = None) -> Graph:
    """Run every check that needs no Keras: expansion, catalog checks, graph and lint.

    A :class:`ModelSpec` is checked as it is now, so a spec changed in Python
    after it was loaded is checked again; its problems are still located at
    the lines its entries were read from.

    Returns:
        The resolved graph (``graph.warnings`` holds the lint warnings).

    Raises:
        SpecError: Every problem found.
    """
    return checked(spec, custom_objects=custom_objects).model()[0]


def checked(
    spec: ModelSpec | str | os.PathLike,
    *,
    custom_objects: dict[str, Any] | None = None,
    strict_rules: bool = False,
) -> Checked:
    """:func:`check`, returning the whole record: the expanded spec, its graph and its analysis.

    ``strict_rules`` lets a shape rule's own failure propagate (tests run so).
    """
    objects = _objects(custom_objects)
    if not isinstance(spec, ModelSpec):
        return load_checked(spec, custom_objects=objects, strict_rules=strict_rules)
    with paused_gc():
        return _check_spec(spec, objects, strict_rules=strict_rules)


def guard(record: Checked, *, max_params: int | None = None, copies: int = 1) -> list[Problem]:
    """Refuse, before Keras allocates anything, a model whose weights cannot fit in memory or ``max_params``.

    Args:
        record: A checked spec (:func:`checked`, :func:`load_checked`).
        max_params: A limit on the parameter count, or None.
        copies: How many copies of the weights the work keeps (training: weights,
            gradients and two optimizer slots).

    Returns:
        Warnings: the layers whose weights could not be counted (their shape is not known).

    Raises:
        SpecError: Located at the largest layer, naming the largest ones and their sizes.
    """
    graph, analysis = record.model()
    available = available_memory()
    raise_errors(memory_problems(graph, analysis, max_params=max_params, available=available, factor=copies))
    return uncounted_problems(graph, analysis)


def build(
    spec: ModelSpec | str | os.PathLike,
    *,
    custom_objects: dict[str, Any] | None = None,
    max_params: int | None = None,
) -> Any:
    """Compile a spec into a Keras model.

    Args:
        spec: A :class:`ModelSpec`, or the path of a spec file.
        custom_objects: User layer classes by ``type`` name, besides registered ones.
        max_params: Refuse a model with more parameters (the memory available is always checked).

    Returns:
        A ``keras.Sequential`` for a list of layers, else a functional
        ``keras.Model``; compiled when the spec has a ``compile`` section.

    Raises:
        SpecError: The spec is invalid, or Keras refused part of it (located
            at the spec line concerned).
    """
    from .keras import to_keras
    from .keras.backend import load_keras
    from .keras.export.provenance import record as record_provenance

    objects = _objects(custom_objects)
    record = checked(spec, custom_objects=objects)
    guard(record, max_params=max_params)
    model = to_keras(record.model()[0], objects)
    record_provenance(load_keras(), model, record.spec)  # export gives back the spec as written
    return model


def from_keras(model: Any, *, custom_objects: dict[str, Any] | None = None, flat: bool = False) -> ModelSpec:
    """A Keras model as a spec: ``build(from_keras(model))`` makes the same network.

    A ``keras.Sequential`` becomes a list of layers, a functional model a
    mapping (shared layers as ``share``, several outputs as ``name[i]``,
    operations such as ``keras.ops.add`` as ``op`` entries, a model used as a
    layer as a block). Arguments equal to their defaults are left out; compile
    settings are kept when Keras holds them as data. ``spec.to_yaml()`` is its text.

    Args:
        model: A ``keras.Sequential`` or functional ``keras.Model``.
        custom_objects: User layer classes by name, besides registered ones:
            layers of these classes are named without a warning.
        flat: One node per layer; by default units that repeat (residual
            units, dense layers) are written once as blocks, runs as ``repeat``.

    Returns:
        The spec. A layer class from outside ``keras.layers`` is written by its
        class name, with a ``UserWarning`` that building needs it registered.

    Raises:
        SpecError: What a spec cannot hold, each naming its layer: a
            subclassed model (its ``call`` is Python code), a ``Lambda`` layer,
            an operation outside the ``op`` allowlist.
    """
    import warnings

    from .keras.export import export_model

    exported = export_model(model, custom_objects=_objects(custom_objects), flat=flat)
    for problem in exported.warnings:
        warnings.warn(problem.format(excerpt=False), UserWarning, stacklevel=2)
    return exported.spec


def copy_weights(source: Any, target: Any) -> None:
    """Copy the weights of one model into another model of the same network, matching layers by name.

    ``build(from_keras(model))`` makes the same network, with its variables in
    the order of the spec's graph; a library model may create some in
    another order (KerasHub's BART and Whisper backbones), where
    ``set_weights(get_weights())`` fails: this pairs each layer's variables
    with those of the layer of the same name (a spec keeps layer names).

    Raises:
        ValueError: A layer's variables only one model has, or whose shapes differ.
    """
    from .keras.weights import copy_weights as copy

    copy(source, target)


def train(
    spec: ModelSpec | str | os.PathLike,
    *,
    epochs: int | None = None,
    batch_size: int | None = None,
    data: str | os.PathLike | None = None,
    distribution: str | None = None,
    verbose: Any = "auto",
    custom_objects: dict[str, Any] | None = None,
    allow_outside: bool | None = None,
    overwrite: bool | None = None,
) -> TrainResult:
    """Fit the spec's model on the spec's data, as its ``train`` section says.

    Args:
        spec: A :class:`ModelSpec` or the path of a spec file with a ``train`` section.
        epochs: Overrides ``train.epochs``.
        batch_size: Overrides ``train.batch_size``.
        data: A CSV file that replaces ``train.data.path`` (same columns).
        distribution: Overrides ``train.distribution``: ``none``, ``mirrored``,
            ``multi_worker_mirrored`` or ``data_parallel``.
        verbose: Keras's ``fit`` verbosity (``"auto"``, 0, 1 or 2).
        custom_objects: User layer classes by ``type`` name, besides registered ones.
        allow_outside: Let the spec's paths lead outside its folder and the working
            folder (:mod:`modelspec.spec.paths`); None keeps the :func:`path_policy` in force.
        overwrite: Let the spec's callbacks replace existing files (``train --overwrite``).

    Returns:
        The trained model, its history and its test metrics.

    Raises:
        SpecError: The spec, its data, or how they fit together is invalid;
            every problem is located at the spec key concerned.
    """
    from .training import fit

    objects = _objects(custom_objects)
    with path_policy(allow_outside=allow_outside, overwrite=overwrite):
        record = checked(spec, custom_objects=objects)
        graph, _ = record.model()
        guard(record, copies=TRAINING_COPIES)
        return fit(
            record.spec,
            graph,
            objects,
            epochs=epochs,
            batch_size=batch_size,
            data=data,
            distribution=distribution,
            verbose=verbose,
        )


def _sweep_check(
    spec: ModelSpec, objects: dict[str, Any], params: dict[str, Any], variant: str | None
) -> Checked:
    """The static stages for one sweep point (module-level: sent to worker processes)."""
    return _check_spec(spec, objects, params, variant)


def _sweep_guard(record: Checked) -> None:
    guard(record, copies=TRAINING_COPIES)


def sweep(
    spec: str | os.PathLike,
    *,
    output: str | os.PathLike | None = None,
    trials: int | None = None,
    workers: int = 1,
    storage: str | None = None,
    study: str | None = None,
    params: dict[str, Any] | None = None,
    variant: str | None = None,
    custom_objects: dict[str, Any] | None = None,
    progress: bool = False,
) -> SweepResult:
    """Search the spec's ``sweep`` space with Optuna, training each point as :func:`train` would.

    Running it again continues the same study: ``trials`` counts every trial
    of the study (failed and pruned ones too).

    Args:
        spec: The path of a spec file with a ``sweep`` section.
        output: The output folder (default: ``SPEC_STEM.sweep`` beside the spec).
        trials: Overrides ``sweep.trials``.
        workers: Processes on this machine, each with cores/workers threads.
        storage: A journal file or an RDB URL (default: ``sweep.storage``, else ``OUTPUT/journal``).
        study: The study's name (default: the spec file's stem).
        params: Params fixed outside the space (as ``--set``).
        variant: A variant fixed outside the space (as ``--variant``).
        custom_objects: User classes by ``type`` name, besides registered ones.
        progress: Print a line per trial.

    Returns:
        The best point, its value and trial, and the table of every trial.

    Raises:
        SpecError: The spec or its sweep section is invalid.
    """
    from .sweep import Pipeline, plan, run

    planned = plan(
        os.fspath(spec),
        output=None if output is None else os.fspath(output),
        trials=trials,
        workers=workers,
        storage=storage,
        study=study,
        params=params or {},
        variant=variant,
        objects=_objects(custom_objects),
        pipeline=Pipeline(check=_sweep_check, guard=_sweep_guard),
        progress=progress,
    )
    return run(planned)


__all__ = [
    "Checked",
    "build",
    "check",
    "checked",
    "copy_weights",
    "from_keras",
    "guard",
    "keras_registered",
    "load",
    "load_checked",
    "loads",
    "path_policy",
    "register",
    "registered",
    "sweep",
    "train",
]
