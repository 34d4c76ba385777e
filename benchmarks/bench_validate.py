"""How fast `modelspec validate` answers: whole process, and by spec size.

Run: python benchmarks/bench_validate.py [--runs N]

1. The whole `python -m modelspec validate specs/iris.yaml` process against a
   bare `python -c "import yaml, pydantic"` on the same machine, in the same
   run (goal: at most 2x).
2. Validation time (source, spec and graph stages, in process) of generated
   DAG specs of 100, 1,000 and 10,000 layers (goal: linear growth, 10,000
   layers in under 1 s).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def median_seconds(command: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, check=True, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def dag_spec(layers: int) -> str:
    """A chain of Dense layers with a skip connection every tenth node."""
    lines = ["modelspec: 1", "inputs:", "  x: {shape: [16]}", "layers:"]
    for i in range(layers):
        if i % 10 == 9:
            lines.append(f"  n{i}: {{type: Add, inputs: [n{i - 1}, n{i - 5}]}}")
        else:
            lines.append(f"  n{i}: {{type: Dense, units: 16, activation: relu}}")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    runs = parser.parse_args().runs

    bare = median_seconds([sys.executable, "-c", "import yaml, pydantic"], runs)
    validate = median_seconds([sys.executable, "-m", "modelspec", "validate", "specs/iris.yaml"], runs)
    print(f"whole process, median of {runs}:")
    print(f"  python -c 'import yaml, pydantic'          {bare * 1000:7.0f} ms")
    print(f"  python -m modelspec validate specs/iris.yaml {validate * 1000:5.0f} ms")
    print(f"  ratio                                       {validate / bare:7.2f}x  (goal: <= 2x)")

    import modelspec

    print("\nvalidation of generated DAG specs (load + graph checks, in process, best of 3):")
    previous = None
    with tempfile.TemporaryDirectory() as folder:
        for n in (100, 1_000, 10_000):
            path = os.path.join(folder, f"dag{n}.yaml")
            with open(path, "w") as f:
                f.write(dag_spec(n))
            best = float("inf")
            for _ in range(3):
                start = time.perf_counter()
                modelspec.check(modelspec.load(path))
                best = min(best, time.perf_counter() - start)
            growth = f"  x{best / previous:5.1f} for x10 layers" if previous else ""
            print(f"  {n:>6} layers  {best * 1000:8.1f} ms  {best / n * 1e6:6.1f} us/layer{growth}")
            previous = best


if __name__ == "__main__":
    main()
