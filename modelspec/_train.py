"""Training from a spec's ``train`` section; evaluating and predicting with the saved model.

The workflow a Keras user writes by hand (read the CSV, split, standardize,
build, compile, fit, evaluate, save), driven by the spec:

* the data is read and checked by :mod:`modelspec._data` (errors located at
  the spec's ``train.data`` keys);
* the model is the spec's model (:mod:`modelspec._compiler`); with
  ``normalize: true`` a ``keras.layers.Normalization`` adapted on the training
  rows is put in front of it, so the saved model takes raw features;
* what ``predict`` needs (feature order, target columns, label names, output
  kinds, the CSV separator) travels inside the ``.keras`` file as one more
  zip entry, ``modelspec.json``, which Keras ignores when loading.

Keras (and TensorFlow, for ``tf.distribute``) are imported only when training,
evaluating or predicting runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import zipfile
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._data import (
    KINDS,
    Places,
    SpecPlaces,
    Target,
    choose_columns,
    data_path,
    decode,
    encode_known,
    encode_target,
    feature_matrix,
    read_csv,
    separator_hint,
    split_rows,
)
from ._errors import Problem, SpecError
from ._files import write_atomically
from ._spec import ModelSpec

if TYPE_CHECKING:  # numpy is imported when data is handled: `import modelspec` stays light
    import numpy as np

METADATA = "modelspec.json"
"""The zip entry of a ``.keras`` file that carries what ``predict`` needs."""
METADATA_FORMAT = 1
MAX_METADATA_BYTES = 1 << 20
DISTRIBUTIONS = ("none", "mirrored", "multi_worker_mirrored", "data_parallel")


@dataclass(frozen=True)
class TrainResult:
    """What :func:`train` gives back.

    Attributes:
        model: The trained Keras model (with its ``Normalization`` layer when
            the spec asks for one).
        history: Metric -> one value per epoch (``loss``, ``accuracy``,
            ``val_loss``, ...), as ``History.history``.
        test_metrics: Keras's metrics on the test rows (``loss``, ``accuracy``,
            ``<output>_loss``, ...), from ``model.evaluate(..., return_dict=True)``;
            empty when ``test_split`` is 0.
        labels: Output name -> the original label of each class id, or None
            for outputs whose targets were numbers.
        features: The feature columns, in the order the model takes them.
        targets: Output name -> target column.
        rows: Rows in each part: ``{"train": ..., "validation": ..., "test": ...}``.
        replicas: Replicas that trained in sync (1 without a distribution).
        chief: False on the workers of a multi-worker run that should not save.
        metadata: What :meth:`save` writes into the model file as ``modelspec.json``.
    """

    model: Any
    history: dict[str, list[float]]
    test_metrics: dict[str, float]
    labels: dict[str, list[str] | None]
    features: list[str]
    targets: dict[str, str]
    rows: dict[str, int]
    replicas: int = 1
    chief: bool = True
    metadata: dict[str, Any] = field(default_factory=dict, repr=False)

    def save(self, path: str | os.PathLike) -> None:
        """Save the model with its metadata to a ``.keras`` file, atomically."""
        save_model(self.model, self.metadata, path)


# -- training ------------------------------------------------------------------------


def train(
    spec: ModelSpec | str | os.PathLike,
    *,
    epochs: int | None = None,
    batch_size: int | None = None,
    data: str | os.PathLike | None = None,
    distribution: str | None = None,
    verbose: Any = "auto",
    custom_objects: dict[str, Any] | None = None,
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

    Returns:
        The trained model, its history and its test metrics.

    Raises:
        SpecError: The spec, its data, or how they fit together is invalid;
            every problem is located at the spec key concerned.
    """
    from ._api import _objects, load

    objects = _objects(custom_objects)
    if not isinstance(spec, ModelSpec):
        spec = load(spec, custom_objects=objects)
    return _Trainer(spec, objects, epochs, batch_size, data, distribution, verbose).run()


class _Trainer:
    def __init__(
        self,
        spec: ModelSpec,
        objects: dict[str, Any],
        epochs: int | None,
        batch_size: int | None,
        data: str | os.PathLike | None,
        distribution: str | None,
        verbose: Any,
    ):
        if spec.train is None:
            raise SpecError(
                [
                    spec.problem(
                        (),
                        "the spec has no 'train' section: nothing says what data to fit",
                        "add train: {data: {path: DATA.csv, target: COLUMN}, epochs: 10}",
                    )
                ]
            )
        for name, value in (("epochs", epochs), ("batch_size", batch_size)):
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if distribution is not None and distribution not in DISTRIBUTIONS:
            raise ValueError(f"distribution must be one of {', '.join(DISTRIBUTIONS)}, got {distribution!r}")
        self.spec = spec
        self.train = spec.train
        self.objects = objects
        self.epochs = epochs or self.train.epochs
        self.batch_size = batch_size or self.train.batch_size
        self.distribution = distribution or self.train.distribution
        self.distribution_override = distribution is not None and distribution != self.train.distribution
        self.verbose = verbose
        self.csv, self.override = data_path(spec, data)
        self.places = SpecPlaces(spec, self.csv, override=self.override)

    def problem(self, path: tuple, message: str, hint: str | None = None, *, key: bool = False) -> Problem:
        return self.spec.problem(path, message, hint, key=key)

    def run(self) -> TrainResult:
        from ._graph import to_graph

        graph = to_graph(self.spec)
        self.check_compile()
        data = self.train.data
        frame = read_csv(self.csv, data.sep, self.places)
        columns = choose_columns(
            frame, data.features, data.target, graph.output_names(), self.places, data.sep
        )
        self.check_input(graph, columns.features)
        x = feature_matrix(frame, columns.features, self.places)
        split = split_rows(len(frame), data, self.places)

        import keras

        seed = self.spec.seed if self.spec.seed is not None else data.seed
        if seed is not None:
            keras.utils.set_random_seed(seed)
        scope, replicas = self.distribution_scope(keras)
        with scope:
            compiler, model = self.build(keras, graph, x[split.train])
            names = graph.output_names()
            structure = _structure(graph)
            units = self.output_units(model, structure, names, columns, x.shape[1])
            targets = {
                name: encode_target(
                    frame[columns.targets[name]],
                    output=name,
                    column=columns.targets[name],
                    units=units[name],
                    loss_kind=_loss_kind(self.loss_of(name, i))[0],
                    places=self.places,
                )
                for i, name in enumerate(names)
            }
            callbacks = self.callbacks(compiler)

            def y(rows: np.ndarray) -> Any:
                return _as_structure(structure, names, {n: t.values[rows] for n, t in targets.items()})

            validation = (x[split.validation], y(split.validation)) if len(split.validation) else None
            history = model.fit(
                x[split.train],
                y(split.train),
                validation_data=validation,
                epochs=self.epochs,
                batch_size=self.batch_size,
                callbacks=callbacks,
                verbose=self.verbose,
            )
            test_metrics: dict[str, float] = {}
            if len(split.test):
                found = model.evaluate(
                    x[split.test], y(split.test), batch_size=self.batch_size, return_dict=True, verbose=0
                )
                test_metrics = {k: float(v) for k, v in found.items()}
        metadata = self.metadata(model, structure, names, columns, targets, units)
        return TrainResult(
            model=model,
            history={k: [float(v) for v in values] for k, values in history.history.items()},
            test_metrics=test_metrics,
            labels={n: t.labels for n, t in targets.items()},
            features=list(columns.features),
            targets=dict(columns.targets),
            rows={"train": len(split.train), "validation": len(split.validation), "test": len(split.test)},
            replicas=replicas,
            chief=_is_chief() if self.distribution == "multi_worker_mirrored" else True,
            metadata=metadata,
        )

    # -- checks --------------------------------------------------------------

    def check_compile(self) -> None:
        c = self.spec.compile
        if c is None or c.optimizer is None or c.loss is None:
            missing = (
                "a 'compile' section"
                if c is None
                else "'compile.optimizer'"
                if c.optimizer is None
                else "'compile.loss'"
            )
            raise SpecError(
                [
                    self.problem(
                        ("compile",) if c is not None else ("train",),
                        f"training needs {missing}: how to fit the model",
                        "add compile: {optimizer: adam, loss: sparse_categorical_crossentropy, metrics: [accuracy]}",
                        key=True,
                    )
                ]
            )

    def check_input(self, graph: Any, features: list[str]) -> None:
        n = len(features)
        if len(graph.inputs) > 1:
            raise SpecError(
                [
                    self.problem(
                        ("inputs",),
                        f"training from a CSV feeds the feature columns to one input; this model has "
                        f"{len(graph.inputs)} ({', '.join(graph.inputs)})",
                        f"use one input of shape [{n}]",
                        key=True,
                    )
                ]
            )
        for name, spec in graph.inputs.items():
            if list(spec.shape) != [n]:
                shown = ", ".join(features[:6]) + (", ..." if n > 6 else "")
                raise SpecError(
                    [
                        self.problem(
                            ("inputs", name, "shape"),
                            f"input '{name}' has shape {_shape(spec.shape)}, but there "
                            f"{'is 1 feature column' if n == 1 else f'are {n} feature columns'} ({shown})",
                            f"set its shape to [{n}], or list the columns to use in train.data.features",
                        )
                    ]
                )

    def output_units(
        self, model: Any, structure: str, names: list[str], columns: Any, n_features: int
    ) -> dict[str, int]:
        """The units of each output (its last axis), found by calling the model on one row."""
        import numpy as np

        probe = _by_name(structure, names, model(np.zeros((1, n_features), "float32"), training=False))
        units = {}
        for name in names:
            shape = tuple(probe[name].shape)
            if len(shape) > 2:
                raise SpecError(
                    [
                        self.places.target(
                            name,
                            columns.targets[name],
                            f"output '{name}' has shape {shape[1:]} per row: a CSV column can only be "
                            "the target of an output of one value, or of one score per class",
                        )
                    ]
                )
            units[name] = shape[-1] if len(shape) == 2 else 1
        return units

    def loss_of(self, output: str, index: int) -> Any:
        loss = self.spec.compile.loss if self.spec.compile is not None else None
        if isinstance(loss, list):
            return loss[index] if index < len(loss) else None
        if isinstance(loss, dict) and "type" not in loss:
            return loss.get(output)
        return loss

    # -- model -----------------------------------------------------------------

    def distribution_scope(self, keras: Any) -> tuple[Any, int]:
        """The context to build and fit in, and how many replicas it trains on."""
        name = self.distribution
        if name == "none":
            return contextlib.nullcontext(), 1
        backend = keras.backend.backend()

        def fail(message: str, hint: str | None = None) -> SpecError:
            if self.distribution_override:
                source = self.spec.source
                return SpecError(
                    [
                        Problem(
                            ("train", "distribution"),
                            f"{message} (given with --distribution)",
                            source.name if source else "<spec>",
                            hint=hint,
                        )
                    ]
                )
            return SpecError([self.problem(("train", "distribution"), message, hint)])

        if name in ("mirrored", "multi_worker_mirrored"):
            if backend != "tensorflow":
                raise fail(
                    f"distribution '{name}' is a tf.distribute strategy: it needs the TensorFlow backend, "
                    f"and Keras runs on {backend}",
                    "set KERAS_BACKEND=tensorflow, or use distribution: data_parallel with KERAS_BACKEND=jax",
                )
            import tensorflow as tf  # tf.distribute has no Keras 3 equivalent on this backend

            try:
                strategy = (
                    tf.distribute.MirroredStrategy()
                    if name == "mirrored"
                    else tf.distribute.MultiWorkerMirroredStrategy()  # reads TF_CONFIG
                )
            except (RuntimeError, ValueError) as e:
                raise fail(f"TensorFlow could not start the '{name}' strategy: {_message(e)}") from None
            return strategy.scope(), int(strategy.num_replicas_in_sync)
        if backend != "jax":
            raise fail(
                f"distribution 'data_parallel' is keras.distribution.DataParallel: it needs the JAX backend, "
                f"and Keras runs on {backend}",
                "set KERAS_BACKEND=jax, or use distribution: mirrored on TensorFlow",
            )
        devices = keras.distribution.list_devices()
        return keras.distribution.DataParallel(devices=devices).scope(), len(devices)

    def build(self, keras: Any, graph: Any, x_train: np.ndarray) -> tuple[Any, Any]:
        """The spec's model, compiled; behind an adapted Normalization when the spec asks."""
        from ._compiler import Compiler

        compiler = Compiler(keras, graph, self.objects)
        model = compiler.run()
        if self.train.normalize:
            model = _normalized(keras, model, graph, x_train)
            compiler.compile(model)
        return compiler, model

    def callbacks(self, compiler: Any) -> list[Any]:
        made = []
        for i, value in enumerate(self.train.callbacks):
            entry = {"type": value} if isinstance(value, str) else value
            try:
                made.append(compiler.keras_object("callbacks", entry))
            except Exception as e:  # noqa: BLE001 - Keras refusing an argument is the user's to fix
                raise compiler.fail(
                    ("train", "callbacks", i), "Keras could not create this callback", e
                ) from None
        return made

    def metadata(
        self,
        model: Any,
        structure: str,
        names: list[str],
        columns: Any,
        targets: dict[str, Target],
        units: dict[str, int],
    ) -> dict[str, Any]:
        from . import __version__

        return {
            "format": METADATA_FORMAT,
            "modelspec": __version__,
            "name": model.name,
            "sep": self.train.data.sep,
            "features": list(columns.features),
            "normalized": bool(self.train.normalize),
            "structure": structure,
            "outputs": [
                {
                    "name": name,
                    "column": columns.targets[name],
                    "kind": targets[name].kind,
                    "units": units[name],
                    "labels": targets[name].labels,
                    "from_logits": _loss_kind(self.loss_of(name, i))[1],
                }
                for i, name in enumerate(names)
            ],
        }


def _normalized(keras: Any, model: Any, graph: Any, x_train: np.ndarray) -> Any:
    """``model`` behind a Normalization layer adapted on ``x_train``, sharing its layers.

    A Sequential becomes a Sequential with the Normalization first; a
    functional model is cloned onto a new input with the Normalization
    inserted, reusing the very same layer objects, so that output names (the
    keys of per-output losses and targets) stay those of the spec.
    """
    taken = {layer.name for layer in model.layers}
    name = "normalize"
    while name in taken:
        name += "_"
    norm = keras.layers.Normalization(name=name)
    norm.adapt(x_train)
    input_name = next(iter(graph.inputs), None)
    x = keras.Input(shape=(x_train.shape[1],), name=input_name)
    if isinstance(model, keras.Sequential):
        return keras.Sequential([x, norm, *model.layers], name=model.name)
    normalized = norm(x)

    def call(layer: Any, *args: Any, **kwargs: Any) -> Any:
        args, kwargs = keras.tree.map_structure(lambda t: normalized if t is x else t, (args, kwargs))
        return layer(*args, **kwargs)

    return keras.models.clone_model(
        model, input_tensors=x, clone_function=lambda layer: layer, call_function=call
    )


def _structure(graph: Any) -> str:
    """How the model gives its outputs: one tensor, a list, or a dict."""
    if graph.sequential or graph.outputs is None or not isinstance(graph.outputs, (list, dict)):
        return "single"
    return "dict" if isinstance(graph.outputs, dict) else "list"


def _by_name(structure: str, names: list[str], value: Any) -> dict[str, Any]:
    if structure == "single":
        return {names[0]: value}
    if structure == "list":
        return dict(zip(names, value))
    return {name: value[name] for name in names}


def _as_structure(structure: str, names: list[str], by_name: dict[str, Any]) -> Any:
    if structure == "single":
        return by_name[names[0]]
    if structure == "list":
        return [by_name[name] for name in names]
    return dict(by_name)


def _loss_kind(loss: Any) -> tuple[str, bool]:
    """What targets a loss expects (``sparse``, ``categorical``, ``binary``, ``other``), and from_logits."""
    name = loss if isinstance(loss, str) else loss.get("type", "") if isinstance(loss, dict) else ""
    from_logits = bool(loss.get("from_logits", False)) if isinstance(loss, dict) else False
    key = str(name).lower().replace("_", "")
    for prefix, kind in (
        ("sparsecategorical", "sparse"),
        ("categorical", "categorical"),
        ("binary", "binary"),
    ):
        if key.startswith(prefix):
            return kind, from_logits
    return "other", from_logits


def _shape(shape: list) -> str:
    return "[" + ", ".join("null" if d is None else str(d) for d in shape) + "]"


def _message(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text[:397] + "..." if len(text) > 400 else text or type(error).__name__


def _is_chief() -> bool:
    """Whether this process saves in a multi-worker run (the chief, else worker 0)."""
    try:
        config = json.loads(os.environ.get("TF_CONFIG", "") or "{}")
        task = config.get("task", {})
        kind, index = task.get("type"), int(task.get("index", 0))
        has_chief = "chief" in config.get("cluster", {})
    except (ValueError, TypeError, AttributeError):
        return True
    if kind is None:
        return True
    return kind == "chief" if has_chief else (kind == "worker" and index == 0)


# -- the model file ----------------------------------------------------------------------


def save_model(model: Any, metadata: dict[str, Any], path: str | os.PathLike) -> None:
    """Save ``model`` to a ``.keras`` file with ``modelspec.json`` inside, atomically.

    Keras writes the file; the metadata is appended as one more zip entry
    before the file replaces ``path``, so a failure leaves ``path`` as it was.
    """
    text = json.dumps(metadata, indent=1, sort_keys=True)

    def write(tmp: str) -> None:
        model.save(tmp)
        with zipfile.ZipFile(tmp, "a", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(METADATA, text)

    write_atomically(path, write)


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The ``modelspec.json`` of a model file written by ``modelspec train``, checked.

    Raises:
        SpecError: The file is missing, not a ``.keras`` archive, or carries no
            (or damaged) metadata; the problem names the file.
    """
    name = os.fspath(path)

    def fail(message: str, hint: str | None = None) -> SpecError:
        return SpecError([Problem(("model",), message, name, hint=hint)])

    if os.path.isdir(name):
        raise fail("is a folder, not a .keras model file")
    try:
        with zipfile.ZipFile(name) as archive:
            try:
                info = archive.getinfo(METADATA)
            except KeyError:
                raise fail(
                    f"the model has no {METADATA}: it was not written by `modelspec train`",
                    "train it with `modelspec train SPEC -o MODEL.keras`, or use keras.saving.load_model",
                ) from None
            if info.file_size > MAX_METADATA_BYTES:
                raise fail(f"{METADATA} is {info.file_size} bytes; at most {MAX_METADATA_BYTES} are read")
            raw = archive.read(info)
    except FileNotFoundError:
        raise fail("no such file") from None
    except PermissionError:
        raise fail("permission denied: the file cannot be read") from None
    except (zipfile.BadZipFile, EOFError, ValueError) as e:
        raise fail(f"not a .keras model file (not a valid zip archive: {_message(e)})") from None
    except OSError as e:
        raise fail(f"cannot read the file: {e.strerror or e}") from None
    try:
        metadata = json.loads(raw.decode("utf-8"))
        problem = _check_metadata(metadata)
    except (UnicodeDecodeError, ValueError, RecursionError) as e:  # the file may come from anywhere
        problem = f"not JSON ({_message(e)[:200]})"
    if problem:
        raise fail(f"the model's {METADATA} is damaged: {problem}")
    return metadata


def _check_metadata(m: Any) -> str | None:
    """What is wrong with the metadata read from a model file (it may come from anywhere)."""

    def strings(v: Any) -> bool:
        return isinstance(v, list) and all(isinstance(s, str) for s in v)

    if not isinstance(m, dict):
        return "expected a mapping"
    if m.get("format") != METADATA_FORMAT:
        return f"unknown format {str(m.get('format'))[:20]!r}; this modelspec reads format {METADATA_FORMAT}"
    if not isinstance(m.get("sep"), str) or not m["sep"]:
        return "'sep' must be a string"
    if not strings(m.get("features")) or not m["features"]:
        return "'features' must be a list of column names"
    if m.get("structure") not in ("single", "list", "dict"):
        return "'structure' must be single, list or dict"
    outputs = m.get("outputs")
    if not isinstance(outputs, list) or not outputs or (m["structure"] == "single" and len(outputs) != 1):
        return "'outputs' must be a list of outputs"
    for i, o in enumerate(outputs):
        if not (
            isinstance(o, dict)
            and isinstance(o.get("name"), str)
            and isinstance(o.get("column"), str)
            and o.get("kind") in KINDS
            and isinstance(o.get("units"), int)
            and o["units"] >= 1
            and (o.get("labels") is None or strings(o["labels"]))
            and isinstance(o.get("from_logits"), bool)
        ):
            return f"output entry {i} is not valid"
    return None


@dataclass(frozen=True)
class Trained:
    """A model file written by ``modelspec train``, loaded: the model and its metadata."""

    model: Any
    metadata: dict[str, Any]
    path: str

    @property
    def outputs(self) -> list[dict[str, Any]]:
        return self.metadata["outputs"]


def load_trained(path: str | os.PathLike, custom_objects: dict[str, Any] | None = None) -> Trained:
    """Load a model file written by ``modelspec train``, in Keras's safe mode.

    Raises:
        SpecError: The file is missing, invalid, or Keras cannot load it.
    """
    metadata = read_metadata(path)
    import keras

    name = os.fspath(path)
    try:
        model = keras.saving.load_model(name, custom_objects=custom_objects, safe_mode=True)
    except Exception as e:  # noqa: BLE001 - whatever Keras raises, the file is what is wrong
        raise SpecError(
            [Problem(("model",), f"Keras could not load the model: {_message(e)}", name)]
        ) from None
    return Trained(model, metadata, name)


# -- evaluate and predict ----------------------------------------------------------------


def _read_features(trained: Trained, csv: str, sep: str | None) -> tuple[Any, np.ndarray, Places]:
    """The CSV, and its feature columns in the order the model was trained on."""
    from ._catalog import suggest

    places = Places(csv)
    frame = read_csv(csv, sep or trained.metadata["sep"], places)
    features = trained.metadata["features"]
    problems = []
    for column in features:
        if column not in frame.columns:
            near = suggest(column, list(frame.columns))
            problems.append(
                places.feature(
                    column,
                    f"no feature column '{column}' in {csv}: the model takes {', '.join(features)}",
                    f"did you mean '{near}'?"
                    if near
                    else separator_hint(frame, sep or trained.metadata["sep"]),
                )
            )
    if problems:
        raise SpecError(problems)
    return frame, feature_matrix(frame, features, places), places


def evaluate(
    model: str | os.PathLike,
    data: str | os.PathLike,
    *,
    sep: str | None = None,
    batch_size: int | None = None,
    custom_objects: dict[str, Any] | None = None,
    verbose: Any = 0,
) -> tuple[dict[str, float], int]:
    """Keras's metrics of a model written by ``modelspec train`` on a CSV with the target columns.

    Returns:
        Metric -> value (as ``model.evaluate(..., return_dict=True)``), and the number of rows.

    Raises:
        SpecError: The model file or the CSV is invalid (the CSV must hold the
            features and the targets; labels must be ones seen in training).
    """
    trained = load_trained(model, custom_objects)
    csv = os.fspath(data)
    frame, x, places = _read_features(trained, csv, sep)
    problems, targets = [], {}
    for o in trained.outputs:
        if o["column"] not in frame.columns:
            problems.append(
                places.target(
                    o["name"],
                    o["column"],
                    f"no target column '{o['column']}' in {csv}: evaluate compares the model's answers with it",
                    "`modelspec predict` takes a CSV without the targets",
                )
            )
            continue
        targets[o["name"]] = encode_known(
            frame[o["column"]],
            output=o["name"],
            column=o["column"],
            kind=o["kind"],
            labels=o["labels"],
            units=o["units"],
            places=places,
        )
    if problems:
        raise SpecError(problems)
    names = [o["name"] for o in trained.outputs]
    y = _as_structure(trained.metadata["structure"], names, targets)
    found = trained.model.evaluate(x, y, batch_size=batch_size, return_dict=True, verbose=verbose)
    return {k: float(v) for k, v in found.items()}, len(x)


def predict(
    model: str | os.PathLike,
    data: str | os.PathLike,
    *,
    sep: str | None = None,
    batch_size: int | None = None,
    custom_objects: dict[str, Any] | None = None,
) -> Any:
    """Predictions of a model written by ``modelspec train``, in the original labels.

    The CSV needs the feature columns; target columns, if present, are ignored.

    Returns:
        A pandas DataFrame, one row per CSV row: a column per output named
        after its target column (labels for classifiers, numbers for
        regressions), and ``<column>_probability`` for classifiers.

    Raises:
        SpecError: The model file or the CSV is invalid.
    """
    import pandas as pd

    trained = load_trained(model, custom_objects)
    _, x, _ = _read_features(trained, os.fspath(data), sep)
    raw = trained.model.predict(x, batch_size=batch_size, verbose=0)
    names = [o["name"] for o in trained.outputs]
    by_name = _by_name(trained.metadata["structure"], names, raw)
    result = {}
    for o in trained.outputs:
        answers, probability = decode(by_name[o["name"]], o["kind"], o["labels"], o["from_logits"])
        result[o["column"]] = answers
        if probability is not None:
            result[f"{o['column']}_probability"] = probability
    return pd.DataFrame(result)


# -- history and curves -----------------------------------------------------------------


def history_frame(history: dict[str, list[float]]) -> Any:
    """The history as a DataFrame: ``epoch`` (from 1), then one column per metric."""
    import pandas as pd

    frame = pd.DataFrame(history)
    frame.insert(0, "epoch", range(1, len(frame) + 1))
    return frame


def write_history(path: str | os.PathLike, history: dict[str, list[float]]) -> None:
    """Write the history as CSV, atomically."""
    frame = history_frame(history)
    write_atomically(path, lambda tmp: frame.to_csv(tmp, index=False))


def write_curves(path: str | os.PathLike, history: dict[str, list[float]], title: str = "") -> None:
    """Plot each metric per epoch (training and validation) to a PNG, atomically."""
    from matplotlib.figure import Figure  # no pyplot: no global backend, no GUI

    metrics = [k for k in history if not k.startswith("val_")] or list(history)
    cols = min(3, max(1, len(metrics)))
    rows = -(-len(metrics) // cols)
    fig = Figure(figsize=(4.5 * cols, 3.2 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, metric in zip(axes, metrics):
        epochs = range(1, len(history[metric]) + 1)
        ax.plot(epochs, history[metric], label="training")
        if f"val_{metric}" in history:
            ax.plot(epochs, history[f"val_{metric}"], label="validation")
        ax.set_title(metric)
        ax.set_xlabel("epoch")
        ax.legend()
    for ax in axes[len(metrics) :]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title)
    write_atomically(path, lambda tmp: fig.savefig(tmp, format="png", dpi=90))
