"""Static shapes and parameters of every keras.applications model, against what Keras built.

Run: python benchmarks/bench_shapes.py [--only NAME ...] [--markdown]

For each constructor in keras.applications (weights=None, the smallest input
it allows, as bench_export.py): `modelspec.from_keras` exports it, the spec
text is read back and checked (`modelspec.loads`, `modelspec.check`), and the
static analysis (no Keras) is compared node by node with the original model:
each node's output shape with its Keras layer's (a shared layer's by the call,
a block's node in the nested model, an operation node with Keras's operation
of that name), each layer's parameters (total and trainable) with its weights,
every Keras layer reached, and the totals with the model's.

Columns: nodes (the spec's graph), inferred (nodes whose shape is known),
compared (nodes compared with Keras), complete (every shape inferred),
mismatches, analysis (the static analysis alone, best of 5, in ms). Exits 1
when a model mismatches, is not complete or fails.
"""

from __future__ import annotations

import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [ROOT, HERE, os.path.join(ROOT, "tests")]

from bench_export import SMALLEST, Table, applications, custom_objects, reported  # noqa: E402 - the same models, objects, table
from conftest import static_analysis_mismatches  # noqa: E402 - the comparison the tests make


def run(name: str) -> dict:
    import keras

    import modelspec
    import modelspec.api
    from modelspec.analysis import analyze

    objects = custom_objects()
    side = SMALLEST.get(name, 32)
    row: dict = {"model": name, "input": side, "mismatches": []}
    with reported(keras, row):
        original = getattr(keras.applications, name)(weights=None, input_shape=(side, side, 3))
        row["params"] = original.count_params()
        text = modelspec.from_keras(original, custom_objects=objects).to_yaml()
        record = modelspec.api.checked(modelspec.loads(text, custom_objects=objects), custom_objects=objects)
        graph, analysis = record.model()
        times = []
        for _ in range(5):
            start = time.perf_counter()
            analyze(graph)
            times.append(time.perf_counter() - start)
        row["ms"] = min(times) * 1000
        row["nodes"] = len(graph.nodes)
        row["inferred"] = len(graph.nodes) - len(analysis.unknown)
        row["complete"] = analysis.complete
        row["unknown"] = [f"{n} ({analysis.nodes[n].reason})" for n in analysis.unknown]
        row["compared"], row["mismatches"] = static_analysis_mismatches(original, graph, analysis)
        row["result"] = "pass" if analysis.complete and not row["mismatches"] else "FAIL"
    return row


def main() -> int:
    names, markdown = applications(__doc__.splitlines()[0])
    table = Table(
        {"model": 20, "input": 5, "params": 12, "nodes": 6, "inferred": 8, "compared": 8, "complete": 8,
         "mismatches": 10, "analysis": 10},
        markdown,
    )  # fmt: skip
    passed, failures = 0, []
    for name in names:
        row = run(name)
        passed += row["result"] == "pass"
        table.row(
            {
                "model": name,
                "input": str(row["input"]),
                "params": f"{row['params']:,}" if "params" in row else "-",
                "nodes": str(row.get("nodes", "-")),
                "inferred": str(row.get("inferred", "-")),
                "compared": str(row.get("compared", "-")),
                "complete": ("yes" if row["complete"] else "no") if "complete" in row else "-",
                "mismatches": str(len(row["mismatches"])) if "compared" in row else "-",
                "analysis": f"{row['ms']:.1f} ms" if "ms" in row else "-",
            }
        )
        if row["result"] != "pass":
            failures.append((name, row))
    for name, row in failures:
        print(f"\n{name}: {row['result']}")
        for line in row.get("unknown", [])[:10] + row["mismatches"][:20]:
            print(f"  {line}")
    print(f"\n{passed} of {len(names)} keras.applications models: analysis complete and equal to Keras")
    return 0 if passed == len(names) else 1


if __name__ == "__main__":
    sys.exit(main())
