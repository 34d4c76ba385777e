"""What the output checks cost: the real-path comparison with every file read, and writing in place.

Run: python benchmarks/bench_outputs.py [--imports N] [--runs N]

A spec importing N block libraries (each one file) is expanded to a new
file: the command compares the output with the spec, every import and the
data, as real paths. Printed: the load, the input check and the atomic
write, each the best of the runs, and the same write onto a character
device (``/dev/null``'s numbers, made with mknod when run as root), which
is written in place. Goal: the checks cost under 1% of the load.
"""

from __future__ import annotations

import argparse
import os
import stat
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import modelspec
from modelspec.cli.common import refuse_inputs, spec_inputs
from modelspec.files import write_text_atomically

LIBRARY = 'modelspec: 1\nblocks:\n  dense:\n    params: {units: required}\n    layers:\n      - {type: Dense, units: "${units}"}\n'


def best(runs: int, work) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--imports", type=int, default=200)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        lines = ["modelspec: 1", "imports:"]
        lines += [f"  lib{i}: libs/lib{i}.yaml" for i in range(args.imports)]
        lines += ["inputs: {x: [4]}", "layers:"]
        lines += [f"  - {{block: lib{i}.dense, units: 4}}" for i in range(args.imports)]
        os.mkdir(os.path.join(folder, "libs"))
        for i in range(args.imports):
            with open(os.path.join(folder, "libs", f"lib{i}.yaml"), "w") as f:
                f.write(LIBRARY)
        path = os.path.join(folder, "main.yaml")
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        spec = modelspec.load(path)
        text = spec.to_yaml()
        output = os.path.join(folder, "flat.yaml")
        inputs = spec_inputs(spec)
        load = best(args.runs, lambda: modelspec.load(path))
        write = best(args.runs, lambda: write_text_atomically(output, text))
        check = best(
            args.runs, lambda: refuse_inputs("expand", {"the output": output}, inputs)
        )  # the output exists: the worst case
        print(
            f"a spec importing {args.imports} files ({len(inputs)} inputs), {len(text):,} bytes expanded, best of {args.runs}:"
        )
        print(f"  load and check the spec       {load * 1000:9.2f} ms")
        print(
            f"  compare the output with each  {check * 1000:9.2f} ms  ({check / load:.1%} of the load; goal: under 1%)"
        )
        print(f"  write it atomically           {write * 1000:9.2f} ms")
        device = os.path.join(folder, "nul")
        try:
            os.mknod(device, stat.S_IFCHR | 0o666, os.makedev(1, 3))
        except PermissionError:
            print("  write it onto a device        (needs root to make the node)")
            return
        in_place = best(args.runs, lambda: write_text_atomically(device, text))
        kind = "still a device" if stat.S_ISCHR(os.lstat(device).st_mode) else "REPLACED"
        print(f"  write it onto a device        {in_place * 1000:9.2f} ms  ({kind})")


if __name__ == "__main__":
    main()
