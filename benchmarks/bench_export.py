"""Every keras.applications model exported to a spec, rebuilt from it, and compared with the original.

Run: python benchmarks/bench_export.py [--only NAME ...] [--markdown]

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
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import sys
import time
import traceback

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


def main() -> None:
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
