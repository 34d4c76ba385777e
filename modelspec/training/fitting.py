"""Training from a spec's ``train`` section.

The workflow a Keras user writes by hand (read the CSV, split, standardize,
build, compile, fit, evaluate, save), driven by the spec:

* the data is read and checked by :mod:`modelspec.training.data` (errors located
  at the spec's ``train.data`` keys);
* the model is the spec's model (:mod:`modelspec.keras`); with
  ``normalize: true`` a ``keras.layers.Normalization`` adapted on the training
  rows is put in front of it, so the saved model takes raw features;
* what ``predict`` needs travels inside the ``.keras`` file
  (:mod:`modelspec.training.modelfile`).

Keras (and TensorFlow, for ``tf.distribute``) are imported only when training runs.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..analysis.layouts import normalize_layer_name
from ..errors import Origin, Problem, SpecError, raise_errors
from ..graph import Graph
from ..keras import Compiler, Deserializer, keras_message, keras_problem
from ..keras.backend import load_keras, set_seed
from ..keras.export.provenance import record as record_provenance
from ..keras.recursion import run_deep
from ..spec import DISTRIBUTIONS, ModelSpec, per_output
from ..spec.paths import OUTPUTS, check_paths, output_args
from ..version import __version__
from . import interrupt
from .batches import check_batch_size
from .data import SpecPlaces, choose_columns, data_path, feature_matrix, read_csv, split_rows
from .distribute import Setting, distribution_plan, fit_inputs, is_chief
from .modelfile import METADATA_FORMAT, as_structure, by_name, save_model
from .targets import Target, encode_target

if TYPE_CHECKING:  # numpy is imported when data is handled: `import modelspec` stays light
    import numpy as np


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
        warnings: Problems that did not stop training (a target with fewer classes than units).
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
    warnings: list[Problem] = field(default_factory=list)

    def save(self, path: str | os.PathLike) -> None:
        """Save the model with its metadata to a ``.keras`` file, atomically."""
        save_model(self.model, self.metadata, path)


def fit(
    spec: ModelSpec,
    graph: Graph,
    objects: dict[str, Any],
    *,
    epochs: int | None = None,
    batch_size: int | None = None,
    data: str | os.PathLike | None = None,
    distribution: str | None = None,
    verbose: Any = "auto",
    callbacks: list[Any] | None = None,
) -> TrainResult:
    """Fit the model of a checked spec on its data, as its ``train`` section says.

    Args:
        spec: The spec (its ``train`` and ``compile`` sections, and where they are).
        graph: Its checked graph.
        objects: User classes by ``type`` name.
        epochs: Overrides ``train.epochs``.
        batch_size: Overrides ``train.batch_size``.
        data: A CSV file that replaces ``train.data.path`` (same columns).
        distribution: Overrides ``train.distribution``.
        verbose: Keras's ``fit`` verbosity (``"auto"``, 0, 1 or 2).
        callbacks: Keras callbacks of the caller, after the spec's (a sweep's pruning callback).

    Raises:
        SpecError: The spec, its data, or how they fit together is invalid;
            every problem is located at the spec key concerned.
    """
    trainer = _Trainer(spec, graph, objects, epochs, batch_size, data, distribution, verbose)
    trainer.extra_callbacks = list(callbacks or [])
    with interrupt.remembered():  # a Ctrl-C that lands in a finalizer still stops the fit
        return trainer.run()


class _Trainer:
    def __init__(
        self,
        spec: ModelSpec,
        graph: Graph,
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
                    spec.at().problem(
                        "training-config",
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
        self.graph = graph
        self.train = spec.train
        self.objects = objects
        self.epochs = epochs or self.train.epochs
        self.batch_size = batch_size or self.train.batch_size
        self.setting = Setting.of(distribution or self.train.distribution)
        self.distribution = self.setting.type
        self.distribution_at = spec.at("train", "distribution")
        if distribution is not None and distribution != self.train.distribution:
            self.distribution_at = Origin(None, ("train", "distribution"))  # from the command line
        self.batch_size_at = (
            spec.at("train", "batch_size") if batch_size is None else Origin(None, ("train", "batch_size"))
        )
        self.verbose = verbose
        self.csv, self.override = data_path(spec, data)
        self.places = SpecPlaces(spec, self.csv, override=self.override)

    def run(self) -> TrainResult:
        # A deep model is built and fitted in a worker thread with room for Keras's recursion
        # (the distribution scope is entered there too, so it covers the model).
        return run_deep(self.work, len(self.graph.nodes))

    def work(self) -> TrainResult:
        graph = self.graph
        self.check_compile()
        data = self.train.data
        frame = read_csv(self.csv, data.sep, self.places)
        columns = choose_columns(
            frame, data.features, data.target, graph.output_names(), self.places, data.sep
        )
        self.check_input(graph, columns.features)
        x = feature_matrix(frame, columns.features, self.places)
        split = split_rows(len(frame), data, self.places)

        keras = load_keras()

        seed = self.spec.seed if self.spec.seed is not None else data.seed
        if seed is not None:
            set_seed(keras, seed)
        plan = distribution_plan(keras, self.setting, self.distribution_at)
        if plan.shards:
            check_batch_size(self.batch_size, plan.shards, self.batch_size_at)
        with plan.scope:
            model = self.build(keras, x[split.train])
            names = graph.output_names()
            structure = graph.output_structure()
            units = self.output_units(keras, model, structure, names, columns)
            targets = {
                name: encode_target(
                    frame[columns.targets[name]],
                    output=name,
                    column=columns.targets[name],
                    units=units[name],
                    loss_kind=loss_kind(self.loss_of(name, i))[0],
                    places=self.places,
                )
                for i, name in enumerate(names)
            }
            own = self.callbacks(keras)
            callbacks = [*own, *getattr(self, "extra_callbacks", []), interrupt.callback(keras)]

            def y(rows: np.ndarray) -> Any:
                return as_structure(structure, names, {n: t.values[rows] for n, t in targets.items()})

            def data(rows: np.ndarray, shuffle: bool = False) -> tuple[tuple, dict[str, Any]]:
                return fit_inputs(
                    keras,
                    self.distribution,
                    plan,
                    x[rows],
                    y(rows),
                    self.batch_size,
                    seed=seed or 0,
                    shuffle=shuffle,
                )

            validation = data(split.validation)[0] if len(split.validation) else None
            if validation is not None and len(validation) == 1:
                validation = validation[0]  # a dataset
            args, kwargs = data(split.train, shuffle=True)
            if plan.shards:
                kwargs["shuffle"] = False  # the batches hold their own order: the same in every process
            # Keras trims its own frames off a traceback; the callback that failed is found by them.
            filtering = keras.config.is_traceback_filtering_enabled()
            keras.config.disable_traceback_filtering()
            try:
                history = model.fit(
                    *args,
                    validation_data=validation,
                    epochs=self.epochs,
                    callbacks=callbacks,
                    verbose=self.verbose,
                    **kwargs,
                )
            except Exception as e:
                failed = self.callback_failure(e, own)
                if failed is not None:
                    raise failed from None
                # Keras 3.15's train step cannot take the per-replica values of several tf.distribute
                # workers (a ValueError from tf.constant; plain Keras fails the same): said at the setting,
                # with Keras's own words. Any other failure is not this limit and goes on as it is.
                several_workers = self.distribution == "multi_worker_mirrored" and plan.replicas > 1
                if not (several_workers and isinstance(e, ValueError)):
                    raise
                raise SpecError(
                    [
                        self.distribution_at.problem(
                            "training-config",
                            f"Keras {keras.__version__} cannot fit a model across several tf.distribute workers "
                            f"(its train step receives per-replica values it cannot convert: {keras_message(e)})",
                            "train on one machine with distribution: mirrored, or on JAX with data_parallel",
                        )
                    ]
                ) from None
            finally:
                if filtering:
                    keras.config.enable_traceback_filtering()
            test_metrics: dict[str, float] = {}
            if len(split.test):
                args, kwargs = data(split.test)
                found = model.evaluate(*args, return_dict=True, verbose=0, **kwargs)
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
            replicas=plan.replicas,
            chief=is_chief(self.distribution, plan),
            metadata=metadata,
            warnings=[w for t in targets.values() for w in t.warnings],
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
                    self.spec.at("compile" if c is not None else "train").problem(
                        "training-config",
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
                    self.spec.at("inputs").problem(
                        "data-column",
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
                        spec.origin.at("shape").problem(
                            "data-column",
                            f"input '{name}' has shape {_shape(spec.shape)}, but there "
                            f"{'is 1 feature column' if n == 1 else f'are {n} feature columns'} ({shown})",
                            f"set its shape to [{n}], or list the columns to use in train.data.features",
                        )
                    ]
                )

    def output_units(
        self, keras: Any, model: Any, structure: str, names: list[str], columns: Any
    ) -> dict[str, int]:
        """The units of each output (its last axis), from the model's symbolic outputs."""
        row = keras.KerasTensor((None, len(columns.features)))  # symbolic: nothing is computed
        outputs = keras.tree.map_structure(lambda t: tuple(t.shape), model.compute_output_spec(row))
        shapes = by_name(structure, names, outputs)
        units = {}
        for name in names:
            shape = shapes[name]
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
        if per_output(loss):
            return loss.get(output)
        return loss

    # -- model -----------------------------------------------------------------

    def build(self, keras: Any, x_train: np.ndarray) -> Any:
        """The spec's model, compiled; behind an adapted Normalization when the spec asks.

        Only the spec's own model records its provenance: one behind a
        Normalization is not the model the spec describes.
        """
        compiler = Compiler(keras, self.graph, self.objects)
        model = compiler.run()
        if self.train.normalize:
            model = _normalized(keras, model, self.graph, x_train)
            compiler.compile(model)
        else:  # the saved model exports as the spec it was built from
            record_provenance(keras, model, self.spec)
        return model

    def callbacks(self, keras: Any) -> list[Any]:
        """The spec's callbacks; those that write files get their paths resolved against the spec's folder.

        The paths are checked again here, just before Keras gets them (and with
        the CSV of ``--data`` protected as well): the files may have changed
        since the spec was checked.
        """
        raise_errors(check_paths(self.spec, protect=[self.csv]))
        paths = output_args(self.spec)
        # TensorBoard's log folder is made for this run: a run that fails takes it away again.
        self.made_for_run = [
            p
            for i, args in paths.items()
            for p in args.values()
            if _callback_type(self.train.callbacks[i]) == "TensorBoard" and not os.path.lexists(p)
        ]
        made = []
        objects = Deserializer(keras, self.objects)
        for i, value in enumerate(self.train.callbacks):
            entry = {"type": value} if isinstance(value, str) else value
            entry = {**entry, **paths.get(i, {})}
            try:
                made.append(objects.object("callbacks", entry))
            except Exception as e:  # noqa: BLE001 - Keras refusing an argument is the user's to fix
                raise keras_problem(
                    self.spec.at("train", "callbacks", i), "Keras could not create this callback", e
                ) from None
        return made

    def callback_failure(self, error: BaseException, callbacks: list[Any]) -> SpecError | None:
        """A located problem when ``error`` was raised inside one of the spec's callbacks, else None.

        A callback that cannot write its log folder (TensorBoard without the
        tensorboard package, or in a folder it cannot write) fails in the
        middle of ``fit``: the user's to fix, at that callback's entry.
        """
        index = None
        tb = error.__traceback__
        while tb is not None and index is None:
            owner = tb.tb_frame.f_locals.get("self")
            index = next((i for i, c in enumerate(callbacks) if c is owner), None)
            tb = tb.tb_next
        if index is None:
            return None
        for folder in getattr(self, "made_for_run", []):
            shutil.rmtree(folder, ignore_errors=True)
        entry = self.train.callbacks[index]
        type_name = _callback_type(entry)
        arg = OUTPUTS.get(type_name, (None,))[0]
        at = self.spec.at("train", "callbacks", index)
        if arg is not None and isinstance(entry, dict) and arg in entry:
            at = at.at(arg)
        code = "output-file" if isinstance(error, OSError) or "ermission" in str(error) else "training-config"
        return SpecError(
            [at.problem(code, f"the {type_name} callback failed during training: {keras_message(error)}")]
        )

    def metadata(
        self,
        model: Any,
        structure: str,
        names: list[str],
        columns: Any,
        targets: dict[str, Target],
        units: dict[str, int],
    ) -> dict[str, Any]:
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
                    "from_logits": loss_kind(self.loss_of(name, i))[1],
                }
                for i, name in enumerate(names)
            ],
        }


def _callback_type(entry: Any) -> str:
    return entry if isinstance(entry, str) else str(entry.get("type", "callback"))


def _normalized(keras: Any, model: Any, graph: Any, x_train: np.ndarray) -> Any:
    """``model`` behind a Normalization layer adapted on ``x_train``, sharing its layers.

    A Sequential becomes a Sequential with the Normalization first; a
    functional model is cloned onto a new input with the Normalization
    inserted, reusing the very same layer objects, so that output names (the
    keys of per-output losses and targets) stay those of the spec.
    """
    norm = keras.layers.Normalization(name=normalize_layer_name({layer.name for layer in model.layers}))
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


def loss_kind(loss: Any) -> tuple[str, bool]:
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
