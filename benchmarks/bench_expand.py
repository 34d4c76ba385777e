"""How long the expansion stage takes on a large legal spec, and how fast it refuses expansion bombs.

Run: python benchmarks/bench_expand.py [--runs N]

1. A legal spec of 65,535 layers written with blocks (a block that uses the
   block below it twice, 15 levels deep): every stage up to the checked graph
   and the expansion alone (CPU seconds of this process, which a shared
   machine disturbs less than wall time), and the whole
   `python -m modelspec validate` process (goal: a few seconds).
2. Bombs that expand to far more than the limits allow, each refused with one
   located `expand-limit` error (goal: well under a second each, in the whole
   process): the same fan-out 24 levels deep, in mapping and in list form
   (40 levels), a fan-out whose leaves are all `if: false` (nothing is made,
   so only counting the work stops it), and `repeat: 100000` inside
   `repeat: 100000` of a block with an empty body.
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


def fan_out(levels: int, leaf: str = "{type: Dense, units: 4}") -> str:
    """A DAG block that uses the block below it twice, ``levels`` deep: 2**(levels + 1) - 1 layers."""
    lines = ["modelspec: 1", "inputs: {x: {shape: [4]}}", "blocks:", f"  b0: {{layers: {{d: {leaf}}}}}"]
    for k in range(1, levels + 1):
        lines.append(
            f"  b{k}: {{layers: {{l: {{block: b{k - 1}}}, r: {{block: b{k - 1}, inputs: x}}, "
            "add: {type: Add, inputs: [l, r]}}}"
        )
    lines += ["layers:", f"  top: {{block: b{levels}, inputs: x}}"]
    return "\n".join(lines) + "\n"


def fan_out_list(levels: int, leaf: str = "{type: Dense, units: 4}") -> str:
    """A chain block that uses the block below it twice, ``levels`` deep, in a list-form spec."""
    lines = ["modelspec: 1", "inputs: {x: {shape: [4]}}", "blocks:", f"  b0: {{layers: [{leaf}]}}"]
    for k in range(1, levels + 1):
        lines.append(f"  b{k}: {{layers: [{{block: b{k - 1}}}, {{block: b{k - 1}}}]}}")
    lines += ["layers:", f"  - {{block: b{levels}}}"]
    return "\n".join(lines) + "\n"


def nested_repeats(outer: int, inner: int) -> str:
    """``repeat: outer`` of a block that holds ``repeat: inner`` of a block with an empty body."""
    return (
        "modelspec: 1\ninputs: {x: {shape: [4]}}\nblocks:\n"
        "  empty: {layers: []}\n"
        f"  many: {{layers: [{{block: empty, repeat: {inner}}}]}}\n"
        f"layers:\n  - {{block: many, repeat: {outer}}}\n  - {{type: Dense, units: 2}}\n"
    )


LEGAL = fan_out(15)
BOMBS = {
    "fan-out, 24 levels (mapping)": fan_out(24),
    "fan-out, 40 levels (list)": fan_out_list(40),
    "fan-out of if: false leaves, 40 levels": fan_out_list(40, "{type: Dense, units: 4, if: false}"),
    "repeat 100,000 of repeat 100,000 of an empty body": nested_repeats(100_000, 100_000),
}


def process(path: str) -> tuple[float, subprocess.CompletedProcess]:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": ROOT}
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "modelspec", "validate", path], capture_output=True, text=True, env=env
    )
    return time.perf_counter() - start, done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    runs = parser.parse_args().runs

    from modelspec.api import load_checked
    from modelspec.errors import SpecError
    from modelspec.expand import expand
    from modelspec.source import parse
    from modelspec.spec import to_spec

    with tempfile.TemporaryDirectory() as folder:
        legal = os.path.join(folder, "legal.yaml")
        with open(legal, "w") as f:
            f.write(LEGAL)
        loads, expands = [], []
        for _ in range(runs):
            start = time.process_time()
            graph, _ = load_checked(legal).model()
            loads.append(time.process_time() - start)
            spec, _ = to_spec(parse(LEGAL, "legal.yaml"))
            start = time.process_time()
            expand(spec)
            expands.append(time.process_time() - start)
        seconds, done = process(legal)
        print(f"legal spec of {len(graph.nodes):,} layers (a block used twice per level, 15 levels):")
        print(
            f"  every stage to the checked graph  {statistics.median(loads):6.2f} s CPU  (median of {runs})"
        )
        print(f"  the expansion stage alone         {statistics.median(expands):6.2f} s CPU")
        print(f"  validate (process)                {seconds:6.2f} s wall  exit {done.returncode}")
        tiny = os.path.join(folder, "tiny.yaml")
        with open(tiny, "w") as f:
            f.write("modelspec: 1\ninputs: {x: [4]}\nlayers: [{type: Dense, units: 2}]\n")
        seconds, done = process(tiny)
        print(f"bombs (for scale: validating a one-layer spec takes {seconds:.2f} s as a process):")
        print(f"  {'':52s} {'in process':>12s} {'process':>9s}")
        for name, text in BOMBS.items():
            path = os.path.join(folder, "bomb.yaml")
            with open(path, "w") as f:
                f.write(text)
            start = time.process_time()
            try:
                load_checked(path)
                refused = "NOT REFUSED"
            except SpecError as e:
                refused = f"{len(e.problems)} problem, {e.problems[0].code}"
            cpu = time.process_time() - start
            seconds, done = process(path)
            print(f"  {name:52s} {cpu:8.3f} s CPU {seconds:6.2f} s  exit {done.returncode}  {refused}")


if __name__ == "__main__":
    main()
