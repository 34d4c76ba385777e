"""Serving files of the example specs: ONNX size and single-batch latency in onnxruntime against Keras.

For each spec in specs/ (those Keras writes as ONNX on this backend), builds
the model, writes it with ``modelspec``'s checked export, and times one
batch (default: 1 row) through ``model(x, training=False)``, ``model.predict``
and an onnxruntime session on this CPU: the median of --runs calls after
--warmup calls. Prints a table (sizes in kB; latencies in ms).

Usage: python benchmarks/bench_serving.py [--batch 1] [--runs 30] [--warmup 5] [SPEC_STEM ...]
"""

from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def median_ms(call, runs: int, warmup: int) -> float:
    for _ in range(warmup):
        call()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("specs", nargs="*", metavar="SPEC_STEM")
    args = parser.parse_args()

    import numpy as np
    import onnxruntime as ort

    import modelspec
    from modelspec.keras.serving import export_checked, feeds_for, random_batch

    stems = args.specs or sorted(p.stem for p in (ROOT / "specs").glob("*.yaml"))
    print(f"batch of {args.batch}, median of {args.runs} calls, {os.cpu_count()} CPUs")
    header = (
        f"{'spec':<22} {'params':>11} {'.keras kB':>10} {'.onnx kB':>10} {'export s':>9} "
        f"{'keras call ms':>14} {'predict ms':>11} {'onnxruntime ms':>15} {'max diff':>9}"
    )
    print(header)
    with tempfile.TemporaryDirectory() as folder:
        for stem in stems:
            try:
                model = modelspec.build(ROOT / "specs" / f"{stem}.yaml")
                start = time.perf_counter()
                checked = export_checked(model, os.path.join(folder, f"{stem}.onnx"), "onnx")
                export_s = time.perf_counter() - start
            except modelspec.SpecError as e:
                print(f"{stem:<22} not served: {e.problems[0].message[:100]}")
                continue
            keras_path = os.path.join(folder, f"{stem}.keras")
            model.save(keras_path)
            batch = [np.repeat(x[:1], args.batch, axis=0) for x in random_batch(model)]
            x = batch[0] if len(batch) == 1 else batch
            session = ort.InferenceSession(checked.path, providers=["CPUExecutionProvider"])
            feeds = feeds_for([i.name for i in session.get_inputs()], model, batch)
            call = median_ms(lambda m=model, x=x: m(x, training=False), args.runs, args.warmup)
            predict = median_ms(lambda m=model, x=x: m.predict(x, verbose=0), args.runs, args.warmup)
            onnx = median_ms(lambda s=session, f=feeds: s.run(None, f), args.runs, args.warmup)
            print(
                f"{stem:<22} {model.count_params():>11,} {os.path.getsize(keras_path) / 1e3:>10.1f} "
                f"{checked.bytes / 1e3:>10.1f} {export_s:>9.1f} {call:>14.2f} {predict:>11.2f} "
                f"{onnx:>15.3f} {checked.difference:>9.1g}",
                flush=True,
            )


if __name__ == "__main__":
    main()
