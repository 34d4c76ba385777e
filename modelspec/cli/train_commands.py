"""The training commands: ``train``, ``evaluate``, ``predict`` and ``data``.

Nothing here imports Keras, TensorFlow, pandas or matplotlib at import time:
``modelspec --help`` and ``modelspec validate`` stay fast.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys

from ..errors import Problem, SpecError
from ..spec.models import DISTRIBUTIONS
from .common import (
    EXIT_OK,
    Command,
    add_plugins,
    add_spec_options,
    check_folder,
    check_output,
    keras_output,
    load_graph,
    load_plugins,
    positive_int,
    quiet_keras,
    refuse_folders,
    refuse_inputs,
    spec_inputs,
    warn,
    write_output,
    write_outputs,
    wrote,
)
from .serving import add_export_option, describe, export_paths


def add_commands(command: Command) -> None:
    """Add the training commands to the ``modelspec`` parser."""
    c = command("train", "fit the spec's model on the spec's data (its 'train' section)")
    c.add_argument("spec", metavar="SPEC")
    c.add_argument(
        "-o",
        "--output",
        metavar="MODEL.keras",
        help="where to save the trained model (default: beside the spec, SPEC_STEM.keras); "
        "the history (MODEL_STEM.history.csv) and the learning curves (MODEL_STEM.curves.png) "
        "are written beside it; all three atomically",
    )
    c.add_argument("--epochs", type=positive_int, metavar="N", help="override train.epochs")
    c.add_argument("--batch-size", type=positive_int, metavar="N", help="override train.batch_size")
    c.add_argument(
        "--data", metavar="CSV", help="train on this CSV instead of train.data.path (same columns)"
    )
    c.add_argument("--distribution", choices=DISTRIBUTIONS, help="override train.distribution")
    c.add_argument("-q", "--quiet", action="store_true", help="no Keras progress bars while fitting")
    add_export_option(c)
    c.add_argument(
        "--overwrite",
        action="store_true",
        help="let the spec's callbacks (ModelCheckpoint, CSVLogger) replace files that exist "
        "(never folders, the spec or its data)",
    )
    add_spec_options(c)
    c.set_defaults(func=train)

    c = command(
        "evaluate", "Keras's metrics of a model written by `modelspec train` on a CSV with its targets"
    )
    c.add_argument("model", metavar="MODEL.keras")
    c.add_argument(
        "--data", required=True, metavar="CSV", help="the feature and target columns the model was trained on"
    )
    c.add_argument(
        "--sep",
        type=_separator,
        metavar="S",
        help="the CSV's separator, one character or \\t (default: the one the model was trained with)",
    )
    c.add_argument("--batch-size", type=positive_int, metavar="N", help="rows per batch")
    add_plugins(c)
    c.set_defaults(func=evaluate)

    c = command(
        "predict",
        "answers of a model written by `modelspec train` for each row of a CSV, in the original labels",
    )
    c.add_argument("model", metavar="MODEL.keras")
    c.add_argument(
        "--data",
        required=True,
        metavar="CSV",
        help="the feature columns (target columns, if present, are ignored)",
    )
    c.add_argument(
        "-o",
        "--output",
        metavar="PREDICTIONS.csv",
        help="write the predictions there, atomically (default: print them); one column per target, "
        "named after it, and COLUMN_probability for classifiers",
    )
    c.add_argument(
        "--sep",
        type=_separator,
        metavar="S",
        help="the CSV's separator, one character or \\t, also used for the output (default: the model's)",
    )
    c.add_argument("--batch-size", type=positive_int, metavar="N", help="rows per batch")
    add_plugins(c)
    c.set_defaults(func=predict)

    c = command(
        "data", "a look at the spec's CSV: columns, types, missing values, ranges, classes; histograms PNG"
    )
    c.add_argument("spec", metavar="SPEC")
    c.add_argument(
        "-o",
        "--output",
        metavar="FILE.png",
        help="where to write the histograms (default: beside the spec, SPEC_STEM.data.png)",
    )
    c.add_argument("--data", metavar="CSV", help="look at this CSV instead of train.data.path")
    add_spec_options(c)
    c.set_defaults(func=data)


def _separator(text: str) -> str:
    from ..spec.models import literal_separator

    try:
        return literal_separator(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _stem(path: str) -> str:
    return os.path.splitext(path)[0]


def _beside(model: str, suffix: str) -> str:
    """``out/iris.keras`` -> ``out/iris<suffix>``."""
    return _stem(model) + suffix


def _table(title: str, metrics: dict[str, float]) -> str:
    """Metrics as an aligned table, ``loss`` first, then in Keras's order."""
    if not metrics:
        return f"{title}: no metrics"
    names = sorted(metrics, key=lambda k: (k != "loss", not k.endswith("loss")))
    width = max(len(k) for k in names)
    lines = [title, f"  {'metric':<{width}}  value"]
    lines += [f"  {k:<{width}}  {metrics[k]:.4f}" for k in names]
    return "\n".join(lines)


# -- commands ----------------------------------------------------------------------


def train(args: argparse.Namespace) -> int:
    output = args.output or _stem(args.spec) + ".keras"
    keras_output("train", output)
    history, curves = _beside(output, ".history.csv"), _beside(output, ".curves.png")
    outputs = {"the model": output, "the history": history, "the learning curves": curves}
    exports = export_paths(output, args.export)  # a format this backend cannot write: refused before training
    outputs |= {f"the {fmt} file": path for fmt, path in exports.items()}
    given = {"the spec": args.spec, "the training data (--data)": args.data}
    refuse_inputs("train", outputs, given)
    from ..api import TRAINING_COPIES

    spec, graph, _, objects = load_graph(args, copies=TRAINING_COPIES)  # the guard: before Keras allocates
    refuse_inputs("train", outputs, {**given, **spec_inputs(spec)})
    check_folder(output, "--output")
    # Several outputs written as one: a device or FIFO cannot take part (nothing written to it can be taken back).
    folders = {p for f, p in exports.items() if f == "saved_model"}  # a SavedModel is a folder
    refuse_folders(
        {what.removeprefix("the "): path for what, path in outputs.items() if path not in folders},
        in_place=False,
    )
    quiet_keras()
    from ..training import interrupt
    from ..training.distribute import joining

    setting = spec.train.distribution if spec.train is not None and args.distribution is None else None
    processes = getattr(setting, "processes", None) or 1
    if processes > 1 and not joining():  # this command is the launcher: the workers train
        from ..training.launch import launch

        at = spec.at("train", "distribution", "processes")
        return launch(_worker_arguments(args, output), processes, at)
    if joining():  # a worker its launcher stops leaves through KeyboardInterrupt: no partial outputs
        signal.signal(signal.SIGTERM, interrupt.handler)
    from ..training import fit, save_model, write_curves, write_history

    result = fit(
        spec,
        graph,
        objects,
        epochs=args.epochs,
        batch_size=args.batch_size,
        data=args.data,
        distribution=args.distribution,
        # A progress bar on a terminal; one line per epoch in a log (no carriage returns).
        verbose=0 if args.quiet else 1 if sys.stdout.isatty() else 2,
    )
    warn(result.warnings)
    rows = result.rows
    print(f"rows: {rows['train']} train, {rows['validation']} validation, {rows['test']} test")
    if result.replicas > 1:
        print(f"replicas in sync: {result.replicas}")
    if rows["test"]:
        print(_table(f"test metrics ({rows['test']} rows):", result.test_metrics))
    else:
        print("test metrics: none (test_split is 0)")
    if not result.chief:
        print("not the chief worker of this multi-worker run: nothing written")  # process 0 writes
        return EXIT_OK
    # All or none: each is written beside its target (serving files checked against Keras), then all are moved in.
    with contextlib.ExitStack() as stack:
        from ..keras.serving import exported

        served = [stack.enter_context(exported(result.model, path, fmt)) for fmt, path in exports.items()]
        write_outputs(
            [
                (output, "model", lambda p: save_model(result.model, result.metadata, p)),
                (history, "history", lambda p: write_history(p, result.history)),
                (curves, "learning curves", lambda p: write_curves(p, result.history, result.model.name)),
            ]
        )
    print(f"wrote {output} ({result.model.count_params():,} parameters), {history}, {curves}")
    for checked in served:
        print(f"wrote {describe(checked)}")
    return EXIT_OK


def _worker_arguments(args: argparse.Namespace, output: str) -> list[str]:
    """The ``train`` command line each worker of a job on this machine runs: this one, output made explicit."""
    argv = ["train", args.spec, "-o", output]
    for option, value in (
        ("--epochs", args.epochs),
        ("--batch-size", args.batch_size),
        ("--data", args.data),
    ):
        if value is not None:
            argv += [option, str(value)]
    for option, values in (("--set", args.set), ("--plugin", args.plugin)):
        for value in values:
            argv += [option, value]
    if args.variant is not None:
        argv += ["--variant", args.variant]
    for flag in ("quiet", "overwrite", "allow_outside", "verbose", "debug"):
        if getattr(args, flag, False):
            argv.append("--" + flag.replace("_", "-"))
    return argv


def evaluate(args: argparse.Namespace) -> int:
    objects = load_plugins(args.plugin)
    quiet_keras()
    from ..training import evaluate

    metrics, rows = evaluate(
        args.model, args.data, sep=args.sep, batch_size=args.batch_size, custom_objects=objects
    )
    print(_table(f"metrics on {args.data} ({rows} rows):", metrics))
    return EXIT_OK


def predict(args: argparse.Namespace) -> int:
    objects = load_plugins(args.plugin)
    refuse_inputs("predict", {"the output": args.output}, {"the model": args.model, "the data": args.data})
    if args.output:
        check_output("predict", args.output, "predictions", (".csv", ".tsv", ".txt"))
    quiet_keras()
    from ..training import predict, read_metadata

    frame = predict(args.model, args.data, sep=args.sep, batch_size=args.batch_size, custom_objects=objects)
    sep = args.sep or read_metadata(args.model)["sep"]
    if args.output:
        from ..files import write_atomically

        write_output(
            args.output,
            "predictions",
            lambda p: write_atomically(p, lambda t: frame.to_csv(t, sep=sep, index=False)),
        )
        wrote(f"wrote {args.output} ({len(frame)} rows)", args.output)
    else:
        try:
            frame.to_csv(sys.stdout, sep=sep, index=False)
            sys.stdout.flush()
        except BrokenPipeError:  # `modelspec predict ... | head`: the reader has all it wanted
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return EXIT_OK


def data(args: argparse.Namespace) -> int:
    from ..training.data import SpecPlaces, choose_columns, data_path, feature_matrix, read_csv
    from ..training.overview import overview, write_histograms

    spec, _, _, _ = load_graph(args)
    if spec.train is None:
        raise SpecError(
            [spec.at().problem("training-config", "the spec has no 'train' section: it names no data")]
        )
    data = spec.train.data
    csv, override = data_path(spec, args.data)
    output = args.output or _stem(args.spec) + ".data.png"
    refuse_inputs(
        "data", {"the output": output}, {"the spec": args.spec, "the data": csv, **spec_inputs(spec)}
    )
    check_output("data", output, "histograms", (".png",))
    places = SpecPlaces(spec, csv, override=override)
    frame = read_csv(csv, data.sep, places)
    target_columns = list(data.target.values()) if isinstance(data.target, dict) else [data.target]
    print(overview(frame, csv, data.sep, target_columns))
    # The spec's columns are checked like training checks them, after the look at the data.
    outputs = list(data.target) if isinstance(data.target, dict) else ["target"]
    problems: list[Problem] = []
    features = [c for c in frame.columns if c not in target_columns]
    try:
        columns = choose_columns(frame, data.features, data.target, outputs, places, data.sep)
        features = columns.features
        feature_matrix(frame, features, places)
    except SpecError as e:
        problems = e.problems
    single = target_columns[0] if len(target_columns) == 1 else None
    write_output(
        output, "histograms", lambda p: write_histograms(p, frame, features, single, os.path.basename(csv))
    )
    wrote(f"\nwrote {output}", output)
    if problems:
        raise SpecError(problems)
    return EXIT_OK
