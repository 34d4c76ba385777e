"""The training commands: ``train``, ``evaluate``, ``predict`` and ``data``.

Registered by :func:`modelspec._cli._parser` through :func:`add_commands`.
Nothing here imports Keras, TensorFlow, pandas or matplotlib at import time:
``modelspec --help`` and ``modelspec validate`` stay fast.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import Any

from ._cli import EXIT_OK, EXIT_USAGE, _quiet_keras, _warn, load_plugins
from ._errors import Problem, SpecError

DISTRIBUTIONS = ("none", "mirrored", "multi_worker_mirrored", "data_parallel")


def add_commands(
    command: Callable[[str, str], argparse.ArgumentParser],
    plugins: Callable[[argparse.ArgumentParser], None],
) -> None:
    """Add the training commands to the ``modelspec`` parser.

    Args:
        command: Makes a subcommand parser from a name and a help line.
        plugins: Adds the ``--plugin`` option to a subcommand parser.
    """
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
    c.add_argument("--epochs", type=_positive, metavar="N", help="override train.epochs")
    c.add_argument("--batch-size", type=_positive, metavar="N", help="override train.batch_size")
    c.add_argument(
        "--data", metavar="CSV", help="train on this CSV instead of train.data.path (same columns)"
    )
    c.add_argument("--distribution", choices=DISTRIBUTIONS, help="override train.distribution")
    c.add_argument("-q", "--quiet", action="store_true", help="no Keras progress bars while fitting")
    plugins(c)
    c.set_defaults(func=_train)

    c = command(
        "evaluate", "Keras's metrics of a model written by `modelspec train` on a CSV with its targets"
    )
    c.add_argument("model", metavar="MODEL.keras")
    c.add_argument(
        "--data", required=True, metavar="CSV", help="the feature and target columns the model was trained on"
    )
    c.add_argument(
        "--sep", metavar="S", help="the CSV's separator (default: the one the model was trained with)"
    )
    c.add_argument("--batch-size", type=_positive, metavar="N", help="rows per batch")
    plugins(c)
    c.set_defaults(func=_evaluate)

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
        "--sep", metavar="S", help="the CSV's separator, also used for the output (default: the model's)"
    )
    c.add_argument("--batch-size", type=_positive, metavar="N", help="rows per batch")
    plugins(c)
    c.set_defaults(func=_predict)

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
    plugins(c)
    c.set_defaults(func=_data)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _stem(path: str) -> str:
    return os.path.splitext(path)[0]


def _beside(model: str, suffix: str) -> str:
    """``out/iris.keras`` -> ``out/iris<suffix>``."""
    return _stem(model) + suffix


def _check_folder(path: str, option: str) -> None:
    """Refuse an output whose folder does not exist before the long work, not after it."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise SpecError([Problem((option,), f"cannot write here: no such folder '{folder}'", path)])


def _load_spec(args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    from ._api import check

    objects = load_plugins(args.plugin)
    graph = check(args.spec, custom_objects=objects)
    _warn(graph.warnings)
    return graph.spec, objects


def _table(title: str, metrics: dict[str, float]) -> str:
    """Metrics as an aligned table, ``loss`` first, then in Keras's order."""
    if not metrics:
        return f"{title}: no metrics"
    names = sorted(metrics, key=lambda k: (k != "loss", not k.endswith("loss")))
    width = max(len(k) for k in names)
    lines = [title, f"  {'metric':<{width}}  value"]
    lines += [f"  {k:<{width}}  {metrics[k]:.4f}" for k in names]
    return "\n".join(lines)


def _write(path: str, what: str, write: Callable[[str], None]) -> None:
    try:
        write(path)
    except OSError as e:
        raise SpecError([Problem(("output",), f"cannot write the {what}: {e.strerror or e}", path)]) from None


# -- commands ----------------------------------------------------------------------


def _train(args: argparse.Namespace) -> int:
    spec, objects = _load_spec(args)
    output = args.output or _stem(args.spec) + ".keras"
    if not output.endswith(".keras"):
        print(f"modelspec train: error: the output must end in .keras, got '{output}'", file=sys.stderr)
        return EXIT_USAGE
    _check_folder(output, "--output")
    _quiet_keras()
    from ._train import save_model, train, write_curves, write_history

    result = train(
        spec,
        epochs=args.epochs,
        batch_size=args.batch_size,
        data=args.data,
        distribution=args.distribution,
        # A progress bar on a terminal; one line per epoch in a log (no carriage returns).
        verbose=0 if args.quiet else 1 if sys.stdout.isatty() else 2,
        custom_objects=objects,
    )
    rows = result.rows
    print(f"rows: {rows['train']} train, {rows['validation']} validation, {rows['test']} test")
    if result.replicas > 1:
        print(f"replicas in sync: {result.replicas}")
    if rows["test"]:
        print(_table(f"test metrics ({rows['test']} rows):", result.test_metrics))
    else:
        print("test metrics: none (test_split is 0)")
    if not result.chief:
        print("not the chief worker of this multi-worker run: nothing written")
        return EXIT_OK
    history, curves = _beside(output, ".history.csv"), _beside(output, ".curves.png")
    _write(output, "model", lambda p: save_model(result.model, result.metadata, p))
    _write(history, "history", lambda p: write_history(p, result.history))
    _write(curves, "learning curves", lambda p: write_curves(p, result.history, result.model.name))
    print(f"wrote {output} ({result.model.count_params():,} parameters), {history}, {curves}")
    return EXIT_OK


def _evaluate(args: argparse.Namespace) -> int:
    objects = load_plugins(args.plugin)
    _quiet_keras()
    from ._train import evaluate

    metrics, rows = evaluate(
        args.model, args.data, sep=args.sep, batch_size=args.batch_size, custom_objects=objects
    )
    print(_table(f"metrics on {args.data} ({rows} rows):", metrics))
    return EXIT_OK


def _predict(args: argparse.Namespace) -> int:
    objects = load_plugins(args.plugin)
    if args.output:
        _check_folder(args.output, "--output")
    _quiet_keras()
    from ._train import predict, read_metadata

    frame = predict(args.model, args.data, sep=args.sep, batch_size=args.batch_size, custom_objects=objects)
    sep = args.sep or read_metadata(args.model)["sep"]
    if args.output:
        from ._files import write_atomically

        _write(
            args.output,
            "predictions",
            lambda p: write_atomically(p, lambda t: frame.to_csv(t, sep=sep, index=False)),
        )
        print(f"wrote {args.output} ({len(frame)} rows)")
    else:
        try:
            frame.to_csv(sys.stdout, sep=sep, index=False)
            sys.stdout.flush()
        except BrokenPipeError:  # `modelspec predict ... | head`: the reader has all it wanted
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return EXIT_OK


def _data(args: argparse.Namespace) -> int:
    from ._data import (
        SpecPlaces,
        choose_columns,
        data_path,
        feature_matrix,
        overview,
        read_csv,
        write_histograms,
    )

    spec, _ = _load_spec(args)
    if spec.train is None:
        raise SpecError([spec.problem((), "the spec has no 'train' section: it names no data")])
    data = spec.train.data
    csv, override = data_path(spec, args.data)
    output = args.output or _stem(args.spec) + ".data.png"
    _check_folder(output, "--output")
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
    _write(
        output, "histograms", lambda p: write_histograms(p, frame, features, single, os.path.basename(csv))
    )
    print(f"\nwrote {output}")
    if problems:
        raise SpecError(problems)
    return EXIT_OK
