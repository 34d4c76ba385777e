"""A sweep's cost: modelspec's overhead per trial against the trial's training, and trials per minute.

Part 1, in this process, for points of ``specs/iris_sweep.yaml``'s space: the
static work a trial does before training (the point written into the spec,
schema, expansion, catalog and graph checks, shapes, memory guard), the
Keras build of the model, and the whole training (``fit``: data, build,
fit, evaluate). Keras is imported before the clock starts.

Part 2, whole processes: ``modelspec sweep`` of the same spec with a few
epochs per trial, with 1 and with 2 workers, each into a fresh folder;
trials per minute of wall time (process start and Keras's import included).

Usage: python benchmarks/bench_sweep.py [--points N] [--trials N] [--epochs N]
"""

from __future__ import annotations

import argparse
import os
import pathlib
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def overhead(points: int) -> None:
    from modelspec.api import _objects, _sweep_check, _sweep_guard
    from modelspec.keras import Compiler
    from modelspec.keras.backend import load_keras
    from modelspec.source import read_source
    from modelspec.spec import to_spec
    from modelspec.spec.sweep import read_space
    from modelspec.sweep import Pipeline
    from modelspec.sweep.trial import point_spec
    from modelspec.training import fit

    keras = load_keras()
    objects = _objects(None)
    pipeline = Pipeline(check=_sweep_check, guard=_sweep_guard)
    source = read_source(ROOT / "specs" / "iris_sweep.yaml")
    spec, _ = to_spec(source)
    space = read_space(spec)
    rng = random.Random(0)
    static, build, train = [], [], []
    for _ in range(points):
        point = {key: rng.choice(c.grid() or [c.low, c.high]) for key, c in space.items()}
        t0 = time.perf_counter()
        flat, graph = point_spec(source, point, objects, pipeline, {}, None)
        t1 = time.perf_counter()
        Compiler(keras, graph, objects).run()
        t2 = time.perf_counter()
        fit(flat, graph, objects, verbose=0)
        t3 = time.perf_counter()
        static.append(t1 - t0)
        build.append(t2 - t1)
        train.append(t3 - t2)
    ms = lambda xs: statistics.median(xs) * 1000  # noqa: E731
    print(f"per trial, median of {points} points of specs/iris_sweep.yaml (60 epochs, early stopping):")
    print(f"  point -> checked spec (schema, expansion, checks, shapes, memory guard): {ms(static):8.1f} ms")
    print(f"  Keras build of the model:                                              {ms(build):8.1f} ms")
    print(f"  training (fit: data, build, fit, evaluate):                            {ms(train):8.1f} ms")
    share = lambda xs: 100 * statistics.median(xs) / statistics.median(train)  # noqa: E731
    print(
        f"  static checks / training: {share(static):.2f} %; static checks and build / training: "
        f"{share([a + b for a, b in zip(static, build)]):.2f} %"
    )


def throughput(trials: int, epochs: int) -> None:
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        shutil.copytree(ROOT / "data", os.path.join(folder, "data"))
        os.mkdir(os.path.join(folder, "specs"))
        text = (ROOT / "specs" / "iris_sweep.yaml").read_text()
        text = text.replace("  epochs: 60", f"  epochs: {epochs}")
        spec = os.path.join(folder, "specs", "iris_sweep.yaml")
        with open(spec, "w") as f:
            f.write(text)
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        for workers in (1, 2):
            out = os.path.join(folder, f"out{workers}")
            argv = [sys.executable, "-m", "modelspec", "sweep", spec, "-o", out]
            argv += ["--trials", str(trials), "--workers", str(workers)]
            t0 = time.perf_counter()
            done = subprocess.run(argv, cwd=folder, env=env, capture_output=True, text=True)
            seconds = time.perf_counter() - t0
            if done.returncode != 0:
                sys.exit(f"failed: {' '.join(argv)}\n{done.stderr[-2000:]}")
            results[workers] = seconds
    print(
        f"whole `modelspec sweep` processes, {trials} trials of {epochs} epochs, on {os.cpu_count()} cores:"
    )
    for workers, seconds in results.items():
        print(
            f"  {workers} worker{'s' * (workers > 1)}: {seconds:6.1f} s, {60 * trials / seconds:5.2f} trials per minute"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=5)
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()
    overhead(args.points)
    throughput(args.trials, args.epochs)


if __name__ == "__main__":
    main()
