"""Every keras.applications model exported to a spec, rebuilt from it, and compared with the original.

Run: python benchmarks/bench_export.py [--only NAME ...] [--markdown]
     python benchmarks/bench_export.py --bounds

For each constructor in keras.applications (weights=None, the smallest input
it allows): `modelspec.from_keras` exports it, the spec text is read back and
built with `modelspec.build`, and the rebuilt model is compared with the
original: the same layer classes in order (a model nested as a layer counted
by its own layers), the same parameter count, and outputs within 1e-4 of the
original's on a random input once its weights are copied in. ConvNeXt's
`LayerScale` and InceptionResNetV2's `CustomScaleLayer` (not in keras.layers)
are given as custom objects.

Times: export (from_keras), rebuild (reading the spec text and building it:
checks, static shapes, Keras), against `keras.Model.from_config` of the
original's config (Keras rebuilding from its own JSON); each the best of two
interleaved runs.

``--bounds``: hostile model files instead. Each ``modelspec export`` runs in a
fresh process under a 1 GiB address-space limit, and its wall time and peak
memory are printed: a ~1 MB ``.keras`` whose config.json holds 100,001 layers
(before the bound: over 180 s and 2.1 GB), the same split over two nested
models, one layer called 100,001 times, and a 100,000-layer file (at the
limit, read and checked, refused later only by Keras's own load).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import traceback
import zipfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

SMALLEST = {"Xception": 71, "InceptionV3": 75, "InceptionResNetV2": 75}
"""The smallest image side a constructor allows, where it is not 32."""


def custom_objects() -> dict:
    from keras.src.applications.convnext import LayerScale, StochasticDepth
    from keras.src.applications.inception_resnet_v2 import CustomScaleLayer

    return {
        "LayerScale": LayerScale,
        "StochasticDepth": StochasticDepth,
        "CustomScaleLayer": CustomScaleLayer,
    }


def flat_layers(keras, model) -> list:
    """The model's layers, a nested model's replaced by its own (inputs left out)."""
    out = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        if isinstance(layer, keras.Model) and (
            isinstance(layer, keras.Sequential) or hasattr(layer, "_nodes_by_depth")
        ):
            out += flat_layers(keras, layer)
        else:
            out.append(layer)
    return out


def compare(keras, np, original, rebuilt) -> float:
    """Raise AssertionError when the rebuilt model differs; the largest output difference otherwise."""
    a, b = flat_layers(keras, original), flat_layers(keras, rebuilt)
    classes_a, classes_b = [type(x).__name__ for x in a], [type(x).__name__ for x in b]
    if classes_a != classes_b:
        first = next((i for i, (x, y) in enumerate(zip(classes_a, classes_b)) if x != y), min(len(a), len(b)))
        raise AssertionError(
            f"layer classes differ at {first}: {classes_a[first : first + 3]} vs {classes_b[first : first + 3]}"
        )
    if original.count_params() != rebuilt.count_params():
        raise AssertionError(f"parameters differ: {original.count_params():,} vs {rebuilt.count_params():,}")
    for x, y in zip(a, b):
        y.set_weights(x.get_weights())
    rng = np.random.default_rng(0)
    data = rng.normal(size=(2, *original.inputs[0].shape[1:])).astype("float32") * 50 + 100
    got = keras.ops.convert_to_numpy(rebuilt(data, training=False))
    want = keras.ops.convert_to_numpy(original(data, training=False))
    diff = float(np.max(np.abs(got - want)))
    if not diff <= 1e-4:
        raise AssertionError(f"outputs differ by {diff:.2e}")
    return diff


@contextlib.contextmanager
def reported(keras, row: dict):
    """Run one model's measurements: a failure goes into ``row["result"]`` and the run goes on."""
    try:
        yield
    except Exception as e:  # noqa: BLE001 - a benchmark reports every failure and goes on
        message = " ".join(str(e).split())
        row["result"] = f"FAIL: {type(e).__name__}: {message[:300]}"
        if os.environ.get("BENCH_TRACEBACK"):
            traceback.print_exc()
    finally:
        keras.backend.clear_session()
        gc.collect()


def run(name: str) -> dict:
    import keras
    import numpy as np

    import modelspec

    objects = custom_objects()
    side = SMALLEST.get(name, 32)
    row: dict = {"model": name, "input": side}
    with reported(keras, row):
        original = getattr(keras.applications, name)(weights=None, input_shape=(side, side, 3))
        row["params"] = original.count_params()
        start = time.perf_counter()
        spec = modelspec.from_keras(original, custom_objects=objects)
        row["export"] = time.perf_counter() - start
        text = spec.to_yaml()
        row["lines"] = text.count("\n")
        rebuild_times, from_config_times = [], []
        for _ in range(2):  # interleaved, best of two: neither pays Keras's first build of these shapes alone
            start = time.perf_counter()
            rebuilt = modelspec.build(modelspec.loads(text, custom_objects=objects), custom_objects=objects)
            rebuild_times.append(time.perf_counter() - start)
            config = original.get_config()  # from_config consumes its argument
            start = time.perf_counter()
            keras.Model.from_config(config, custom_objects=objects)
            from_config_times.append(time.perf_counter() - start)
        row["rebuild"], row["from_config"] = min(rebuild_times), min(from_config_times)
        row["diff"] = compare(keras, np, original, rebuilt)
        row["result"] = "pass"
    return row


def applications(description: str) -> tuple[list[str], bool]:
    """The command line of the keras.applications benchmarks: the constructors to run, and Markdown or not."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--only", nargs="+", metavar="NAME", help="these constructors only")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    args = parser.parse_args()
    import warnings

    import keras

    warnings.filterwarnings("ignore")
    return args.only or sorted(n for n in dir(keras.applications) if n[0].isupper()), args.markdown


class Table:
    """A table printed row by row: plain (the first column left-aligned, the rest right) or Markdown."""

    def __init__(self, columns: dict[str, int], markdown: bool) -> None:
        self.widths, self.markdown = columns, markdown
        self.row(dict(zip(columns, columns)))
        if markdown:
            print("|" + " --- |" * len(columns))

    def row(self, cells: dict[str, str]) -> None:
        values = [cells[c] for c in self.widths]
        if self.markdown:
            print("| " + " | ".join(values) + " |", flush=True)
            return
        widths = self.widths.values()
        print(
            " ".join(f"{v:<{w}}" if i == 0 else f"{v:>{w}}" for i, (v, w) in enumerate(zip(values, widths))),
            flush=True,
        )


def _dense(count: int, prefix: str) -> list:
    return [
        {"module": "keras.layers", "class_name": "Dense", "config": {"name": f"{prefix}_{i}", "units": 1 + i % 7},
         "registered_name": None}
        for i in range(count)
    ]  # fmt: skip


def _sequential(name: str, layers: list) -> dict:
    return {"module": "keras", "class_name": "Sequential", "config": {"name": name, "layers": layers}}


BOMBS = {
    "100,001 layers": lambda: _sequential("bomb", _dense(100_001, "d")),
    "2 nested x 50,001": lambda: _sequential(
        "outer", [_sequential("a", _dense(50_001, "a")), _sequential("b", _dense(50_001, "b"))]
    ),
    "100,001 calls": lambda: {
        "module": "keras",
        "class_name": "Functional",
        "config": {
            "name": "calls",
            "output_layers": [],
            "layers": [
                {"class_name": "Dense", "config": {"name": "d", "units": 1}, "inbound_nodes": [{}] * 100_001}
            ],
        },
    },
    "100,000 layers (legal)": lambda: _sequential("wide", _dense(100_000, "d")),
}
"""Hostile model files: what each config.json holds."""

_MEASURE = """
import resource, sys, time
resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
start = time.perf_counter()
from modelspec.keras.export import check_model_file
from modelspec.errors import SpecError
try:
    check_model_file(sys.argv[1])
    result = "read"
except SpecError as e:
    result = e.problems[0].code
print(result, time.perf_counter() - start, "keras" in sys.modules)  # wall time from the first import
"""


def bounds() -> None:
    """Time and peak memory of refusing each hostile model file, each in a fresh process."""
    print(
        f"{'model file':<24} {'size':>9} {'result':>12} {'wall s':>7} {'CPU s':>6} {'peak MB':>8} keras imported"
    )
    with tempfile.TemporaryDirectory() as folder:
        for name, config in BOMBS.items():
            path = os.path.join(folder, "model.keras")
            with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
                archive.writestr("config.json", json.dumps(config(), separators=(",", ":")))
                archive.writestr("metadata.json", "{}")
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            done = subprocess.run(
                [sys.executable, "-c", _MEASURE, path],
                capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONPATH": ROOT},
            )  # fmt: skip
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
            if done.returncode != 0:
                print(f"{name:<24} FAILED: {done.stderr.strip().splitlines()[-1:]}")
                continue
            result, seconds, keras = done.stdout.split()
            # ru_maxrss of children is the largest of any child so far: a smaller one shows as "<=".
            peak = (
                f"{after.ru_maxrss / 1024:.0f}"
                if after.ru_maxrss > before.ru_maxrss
                else f"<={after.ru_maxrss / 1024:.0f}"
            )
            size = os.path.getsize(path)
            print(f"{name:<24} {size:>9,} {result:>12} {float(seconds):>7.2f} {cpu:>6.2f} {peak:>8} {keras}")


def main() -> None:
    if "--bounds" in sys.argv[1:]:
        bounds()
        return
    names, markdown = applications(__doc__.splitlines()[0])
    table = Table(
        {"model": 20, "input": 5, "params": 12, "lines": 6, "export": 8, "rebuild": 8, "from_config": 11, "diff": 8,
         "result": 0},
        markdown,
    )  # fmt: skip
    passed = 0
    for name in names:
        row = run(name)
        passed += row["result"] == "pass"
        table.row(
            {
                "model": name,
                "input": f"{row['input']}",
                "params": f"{row['params']:,}" if "params" in row else "-",
                "lines": f"{row['lines']}" if "lines" in row else "-",
                "export": f"{row['export']:.2f}s" if "export" in row else "-",
                "rebuild": f"{row['rebuild']:.2f}s" if "rebuild" in row else "-",
                "from_config": f"{row['from_config']:.2f}s" if "from_config" in row else "-",
                "diff": f"{row['diff']:.1e}" if "diff" in row else "-",
                "result": row["result"],
            }
        )
    print(f"{passed} of {len(names)} keras.applications models export, rebuild and compare equal")


if __name__ == "__main__":
    main()
