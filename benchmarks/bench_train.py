"""Whole-process wall time: `modelspec train specs/iris.yaml` against the same work by hand.

Runs each command 3 times (alternating, so that a busy machine slows both
alike) and prints the median seconds and their ratio. A bare ``import keras``
is timed too: the fixed cost both pay.

Usage: python benchmarks/bench_train.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_validate import user_environment  # noqa: E402 - bytecode cached, as a user has it

ENV = {**user_environment(), "PYTHONPATH": str(ROOT)}


def timed(argv: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=ROOT, env=ENV, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"failed: {' '.join(argv)}\n{done.stderr[-2000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        commands = {
            "import keras": [sys.executable, "-c", "import keras"],
            "by hand": [
                sys.executable,
                "benchmarks/train_iris_by_hand.py",
                os.path.join(folder, "hand.keras"),
            ],
            "modelspec train": [
                sys.executable,
                "-m",
                "modelspec",
                "train",
                "specs/iris.yaml",
                "-o",
                os.path.join(folder, "x.keras"),
            ],
        }
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.runs):
            for name, argv in commands.items():
                times[name].append(timed(argv))
    medians = {name: statistics.median(values) for name, values in times.items()}
    for name, values in times.items():
        runs = ", ".join(f"{v:.2f}" for v in values)
        print(f"{name:>16}: median {medians[name]:.2f} s  (runs: {runs})")
    ratio = medians["modelspec train"] / medians["by hand"]
    print(f"{'ratio':>16}: modelspec train / by hand = {ratio:.2f}")


if __name__ == "__main__":
    main()
