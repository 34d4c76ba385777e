"""Deep chains: build time and peak memory of a spec of N Dense layers, next to the same chain in Keras.

Keras builds a functional graph recursively, so a chain of about 1,000
layers exceeds Python's default recursion limit; modelspec builds deep
models in a worker thread with a larger stack and recursion limit
(modelspec/keras/recursion.py). Each measurement runs in a fresh process (peak
memory is the process's maximum resident size):

    python benchmarks/bench_depth.py                 # 1,000 / 3,000 / 10,000 layers
    python benchmarks/bench_depth.py 500 2000        # other depths

"Keras, by hand" is the plain loop ``x = Dense(4)(x)``, then ``keras.Model``:
past about 1,000 layers it fails with RecursionError (shown as such); "Keras,
raised limit" is the same with ``sys.setrecursionlimit`` raised and a big
thread stack, what modelspec does for you.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

DEPTHS = (1_000, 3_000, 10_000)

CHILD = r"""
import json, os, resource, sys, threading, time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
mode, n, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
import keras
import modelspec


def hand():
    x = inputs = keras.Input((4,))
    for _ in range(n):
        x = keras.layers.Dense(4)(x)
    return keras.Model(inputs, x)


result = {}


def run():
    start = time.perf_counter()
    try:
        if mode == "modelspec":
            model = modelspec.build(path)
        else:
            model = hand()
        result["seconds"] = time.perf_counter() - start
        result["layers"] = len(model.layers)
    except RecursionError:
        result["error"] = "RecursionError"
        result["seconds"] = time.perf_counter() - start


if mode == "keras-raised":
    sys.setrecursionlimit(8 * n + 2000)
    threading.stack_size(min(1 << 30, (64 << 20) + (16 << 10) * n))
    worker = threading.Thread(target=run)
    worker.start()
    worker.join()
else:
    run()
result["peak_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(result))
"""


def spec_text(n: int) -> str:
    lines = ["modelspec: 1", f"name: chain{n}", "inputs: {x: [4]}", "layers:"]
    lines += ["  - {type: Dense, units: 4}"] * n
    return "\n".join(lines) + "\n"


def measure(mode: str, n: int, path: str) -> dict:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, mode, str(n), path],
        capture_output=True,
        text=True,
        env=env,
        timeout=1800,
    )
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["failed"])[-1][:60]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str]) -> None:
    depths = [int(a) for a in argv] or list(DEPTHS)
    print(f"{'layers':>7}  {'what':<22} {'build s':>8}  {'peak MiB':>9}  note")
    with tempfile.TemporaryDirectory() as folder:
        for n in depths:
            path = os.path.join(folder, f"chain{n}.yaml")
            with open(path, "w", encoding="utf-8") as f:
                f.write(spec_text(n))
            for mode, what in (
                ("modelspec", "modelspec.build"),
                ("keras", "Keras, by hand"),
                ("keras-raised", "Keras, raised limit"),
            ):
                r = measure(mode, n, path)
                seconds = f"{r['seconds']:.1f}" if "seconds" in r else "-"
                peak = f"{r['peak_mib']:.0f}" if "peak_mib" in r else "-"
                note = r.get("error", f"{r.get('layers', '?')} layers built")
                print(f"{n:>7,}  {what:<22} {seconds:>8}  {peak:>9}  {note}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
