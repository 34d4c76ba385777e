"""``modelspec sweep SPEC [-o DIR] [--trials N] [--workers K] [--storage URL] [--study NAME]``."""

from __future__ import annotations

import argparse
import os

from ..errors import UsageError
from .common import EXIT_OK, Command, add_spec_options, load_plugins, positive_int, quiet_keras, spec_params


def add_commands(command: Command) -> None:
    """Add ``sweep`` to the ``modelspec`` parser."""
    c = command("sweep", "search the spec's `sweep` space with Optuna (resumes; --workers, --storage)")
    c.add_argument("spec", metavar="SPEC")
    c.add_argument(
        "-o",
        "--output",
        metavar="DIR",
        help="the output folder (default: beside the spec, SPEC_STEM.sweep): trials.csv, best.yaml, "
        "best.keras, history.png, importance.png, all written together; the journal of the study too",
    )
    c.add_argument(
        "--trials", type=positive_int, metavar="N", help="trials in the whole study (overrides sweep.trials)"
    )
    c.add_argument(
        "--workers",
        type=positive_int,
        default=1,
        metavar="K",
        help="processes on this machine, each with cores/K threads (default 1)",
    )
    c.add_argument(
        "--storage",
        metavar="URL",
        help="Optuna's storage: a journal file, or an RDB URL (postgresql://..., sqlite:///...) "
        "that processes on other machines join",
    )
    c.add_argument("--study", metavar="NAME", help="the study's name (default: the spec's file stem)")
    add_spec_options(c)
    c.set_defaults(func=sweep)


def sweep(args: argparse.Namespace) -> int:
    from ..api import sweep as run_sweep
    from ..sweep import SweepInterrupted

    if args.output is not None and os.path.lexists(args.output) and not os.path.isdir(args.output):
        raise UsageError(f"modelspec sweep: error: the output '{args.output}' is not a folder")
    objects = load_plugins(args.plugin)
    quiet_keras()
    try:
        result = run_sweep(
            args.spec,
            output=args.output,
            trials=args.trials,
            workers=args.workers,
            storage=args.storage,
            study=args.study,
            params=spec_params(args),
            variant=args.variant,
            custom_objects=objects,
            progress=True,
        )
    except SweepInterrupted as e:
        _summary(e.result)
        raise KeyboardInterrupt from None
    _summary(result)
    return EXIT_OK


def _summary(result: object) -> None:
    table = result.table  # type: ignore[attr-defined]
    counts = table["state"].value_counts().to_dict()
    print(
        f"{len(table)} trials: "
        + ", ".join(
            f"{counts.get(s, 0)} {s.lower()}" for s in ("COMPLETE", "PRUNED", "FAIL") if counts.get(s)
        )
    )
    if result.best_trial is not None:  # type: ignore[attr-defined]
        point = " ".join(f"{k}={v}" for k, v in result.best_point.items())  # type: ignore[attr-defined]
        print(f"best: trial {result.best_trial}, {result.best_value:.4f}: {point}")  # type: ignore[attr-defined]
    for note in result.notes:  # type: ignore[attr-defined]
        print(f"note: {note}")
    print(f"wrote {result.output}")  # type: ignore[attr-defined]
