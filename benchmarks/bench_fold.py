"""Folded export against flat export over every keras.applications model.

Run: python benchmarks/bench_fold.py [--only NAME ...] [--markdown]

For each constructor in keras.applications (weights=None, the smallest input
it allows): the flat export (``from_keras(model, flat=True)``, one node per
layer) and the folded one (the default: repeated units as blocks, runs as
``repeat``), their line counts, and the folded export's time. The folded text
is read back, built, and compared with the original: the same layer names in
order (a nested model, written as a block, names its layers after the instance: 'nested'), the
same parameter count, and the largest output difference with the
weights copied in (printed; 0.0 is exact). The totals close the table.
"""

from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_export import SMALLEST, Table, applications, compare, custom_objects, flat_layers, reported


def run(name: str) -> dict:
    import keras
    import numpy as np

    import modelspec

    objects = custom_objects()
    side = SMALLEST.get(name, 32)
    row: dict = {"model": name}
    with reported(keras, row):
        original = getattr(keras.applications, name)(weights=None, input_shape=(side, side, 3))
        row["flat"] = modelspec.from_keras(original, custom_objects=objects, flat=True).to_yaml().count("\n")
        start = time.perf_counter()
        text = modelspec.from_keras(original, custom_objects=objects).to_yaml()
        row["export"] = time.perf_counter() - start
        row["folded"] = text.count("\n")
        rebuilt = modelspec.build(modelspec.loads(text, custom_objects=objects), custom_objects=objects)
        names = [x.name for x in flat_layers(keras, original)], [x.name for x in flat_layers(keras, rebuilt)]
        # A nested model comes back as a block, its layers named after the instance (as in a flat export).
        row["names"] = (
            "same"
            if names[0] == names[1]
            else "nested"
            if len(original.layers) != len(rebuilt.layers)
            else "DIFFER"
        )
        row["diff"] = compare(keras, np, original, rebuilt)
        row["result"] = "ok"
    return row


def main() -> None:
    names, markdown = applications(__doc__.splitlines()[0])
    table = Table(
        {
            "model": 18,
            "flat lines": 10,
            "folded lines": 12,
            "ratio": 6,
            "export s": 9,
            "max diff": 9,
            "names": 6,
            "result": 6,
        },
        markdown,
    )
    totals = {"flat": 0, "folded": 0, "export": 0.0}
    for name in names:
        row = run(name)
        if "folded" in row:
            for key in totals:
                totals[key] += row[key]
        table.row(
            {
                "model": name,
                "flat lines": str(row.get("flat", "")),
                "folded lines": str(row.get("folded", "")),
                "ratio": f"{row['folded'] / row['flat']:.2f}" if "folded" in row else "",
                "export s": f"{row['export']:.2f}" if "export" in row else "",
                "max diff": f"{row['diff']:.1e}" if "diff" in row else "",
                "names": row.get("names", ""),
                "result": row["result"],
            }
        )
    table.row(
        {
            "model": "total",
            "flat lines": str(totals["flat"]),
            "folded lines": str(totals["folded"]),
            "ratio": f"{totals['folded'] / max(totals['flat'], 1):.2f}",
            "export s": f"{totals['export']:.1f}",
            "max diff": "",
            "names": "",
            "result": "",
        }
    )


if __name__ == "__main__":
    main()
