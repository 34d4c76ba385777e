"""How fast `modelspec validate` answers: whole process, and by spec size.

Run: python benchmarks/bench_validate.py [--runs N]

1. The whole `python -m modelspec validate specs/iris.yaml` process against a
   bare `python -c "import yaml, pydantic"` on the same machine, in the same
   run (goal: at most 2x). A third line is the floor any pydantic-validated
   format pays: the same imports plus one one-field `BaseModel` class (the
   bare `import pydantic` is lazy and loads none of the validation machinery).
2. Validation time (source, spec and graph stages, in process) of generated
   DAG specs of 100, 1,000 and 10,000 layers (goal: linear growth, 10,000
   layers in under 1 s).
3. Specs written with blocks: `modelspec validate specs/resnet50.yaml` as a
   whole process for ResNet50 and its resnet152 variant (goal: under 1 s), and
   the expansion stage alone, per expanded layer.
"""

from __future__ import annotations

import argparse
import compileall
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def user_environment() -> dict[str, str]:
    """The environment a user's command runs in: bytecode cached, as after ``pip install``.

    With ``PYTHONDONTWRITEBYTECODE`` set (some sandboxes and containers set it) every process
    compiles modelspec's sources again, which is not what a user's command pays.
    """
    compileall.compile_dir(os.path.join(ROOT, "modelspec"), quiet=1)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def timed(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one run of ``command``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(
        command, check=True, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def compare(commands: dict[str, list[str]], runs: int) -> dict[str, tuple[float, float]]:
    """Median wall and CPU seconds of each command, runs interleaved so load hits all alike."""
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
    env = user_environment()
    for _ in range(runs):
        for name, command in commands.items():
            samples[name].append(timed(command, env))
    return {
        name: (statistics.median(w for w, _ in s), statistics.median(c for _, c in s))
        for name, s in samples.items()
    }


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
    parser.add_argument("--runs", type=int, default=15)
    runs = parser.parse_args().runs

    bare_cmd = "python -c 'import yaml, pydantic'"
    model_cmd = "... + one pydantic BaseModel class"
    validate_cmd = "python -m modelspec validate specs/iris.yaml"
    one_model = "import yaml\nfrom pydantic import BaseModel\nclass A(BaseModel):\n    x: int\n"
    result = compare(
        {
            bare_cmd: [sys.executable, "-c", "import yaml, pydantic"],
            model_cmd: [sys.executable, "-c", one_model],
            validate_cmd: [sys.executable, "-m", "modelspec", "validate", "specs/iris.yaml"],
        },
        runs,
    )
    bare_wall = result[bare_cmd][0]
    print(f"whole process, median of {runs} interleaved runs:      wall      cpu   ratio")
    for name, (wall, cpu) in result.items():
        print(f"  {name:<46} {wall * 1000:5.0f} ms {cpu * 1000:5.0f} ms  {wall / bare_wall:5.2f}x")
    print("  (goal for validate: <= 2x the first line)")

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

    spec = os.path.join("specs", "resnet50.yaml")
    commands = {
        f"validate {spec}": [sys.executable, "-m", "modelspec", "validate", spec],
        f"validate {spec} --variant resnet152": [
            sys.executable, "-m", "modelspec", "validate", spec, "--variant", "resnet152",
        ],
    }  # fmt: skip
    print(f"\nspecs with blocks, whole process, median of {runs} runs (goal: < 1 s):")
    for name, (wall, _) in compare(commands, runs).items():
        print(f"  {name:<60} {wall * 1000:5.0f} ms")

    from modelspec.expand import expand
    from modelspec.source import read_source
    from modelspec.spec import to_spec

    print("\nthe expansion stage alone (in process, best of 5):")
    for variant in (None, "resnet152"):
        unexpanded, _ = to_spec(read_source(os.path.join(ROOT, spec)))
        best, nodes = float("inf"), 0
        for _ in range(5):
            start = time.perf_counter()
            flat, _ = expand(unexpanded, variant=variant)
            best = min(best, time.perf_counter() - start)
            nodes = len(flat.layers)
        print(
            f"  resnet50.yaml {variant or '':<10} {nodes:>4} layers  {best * 1000:6.1f} ms  {best / nodes * 1e6:5.1f} us/layer"
        )


if __name__ == "__main__":
    main()
