"""How fast `modelspec summary` answers, against Keras's own summary of the same model.

Run: python benchmarks/bench_summary.py [--runs N]

Both are whole processes on specs/resnet50.yaml (176 layers, 25.6 million
parameters): the static summary works the shapes and parameters out from the
spec (no Keras import, no weights); `--keras` imports Keras, builds the model
and prints `model.summary()`. Goal: the static one 50x faster.
"""

from __future__ import annotations

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from bench_validate import compare  # noqa: E402 - the same interleaved, user-environment timing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    spec = os.path.join("specs", "resnet50.yaml")
    commands = {
        "modelspec summary (static)": [sys.executable, "-m", "modelspec", "summary", spec],
        "modelspec summary --keras": [sys.executable, "-m", "modelspec", "summary", "--keras", spec],
    }
    medians = {name: wall for name, (wall, _) in compare(commands, runs).items()}
    print(f"{spec}, whole process, median of {runs} runs:")
    for name, seconds in medians.items():
        print(f"  {name:<30} {seconds * 1000:8.0f} ms")
    ratio = medians["modelspec summary --keras"] / medians["modelspec summary (static)"]
    print(f"  static is {ratio:.0f}x faster (goal: 50x)")


if __name__ == "__main__":
    main()
