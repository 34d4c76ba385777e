"""Folded export against flat export over every keras.applications model (``--hub``: every KerasHub backbone).

Run: python benchmarks/bench_fold.py [--only NAME ...] [--markdown] [--hub [--deeper]]

For each constructor in keras.applications (weights=None, the smallest input
it allows): the flat export (``from_keras(model, flat=True)``, one node per
layer) and the folded one (the default: repeated units as blocks, runs as
``repeat``), their line counts, and the folded export's time. The folded text
is read back, built, and compared with the original: the same layer names in
order (a nested model, written as a block, names its layers after the instance: 'nested'), the
same parameter count, and the largest output difference with the
weights copied in (printed; 0.0 is exact). The totals close the table.

``--hub`` runs the same table over the KerasHub backbones of
``tests/conftest.py``'s ``HUB_BACKBONES`` (each made from its class with a
tiny config; ``--deeper`` makes each repeat its units: ``hub_deeper``'s
arguments, 3 transformer layers or 3 units a stage). A backbone's layers need not be in
its graph's order, so the layer names are compared as sets; weights are
copied by layer name (``modelspec.copy_weights``) and the outputs compared on
``hub_inputs``. A backbone export refuses prints the refusal's code.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))  # conftest: the KerasHub backbones
sys.path.insert(0, HERE)

from bench_export import SMALLEST, Table, compare, custom_objects, flat_layers, reported  # noqa: E402


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


def run_hub(name: str, deeper: bool) -> dict:
    import keras
    import numpy as np
    from conftest import hub_backbone, hub_deeper, hub_inputs

    import modelspec

    row: dict = {"model": name}
    with reported(keras, row):
        original = hub_backbone(name, **(hub_deeper(name) if deeper else {}))
        try:
            plain = modelspec.from_keras(original, flat=True).to_yaml()
        except modelspec.SpecError as e:
            row["result"] = "refused: " + next(p.code for p in e.problems if p.severity == "error")
            return row
        row["flat"] = plain.count("\n")
        start = time.perf_counter()
        text = modelspec.from_keras(original).to_yaml()
        row["export"] = time.perf_counter() - start
        row["folded"] = text.count("\n")
        rebuilt = modelspec.build(modelspec.loads(text))

        def names(model: object) -> list[str]:
            return sorted(x.name for x in flat_layers(keras, model))

        # A name the flat export changes too (a library layer that renames itself, a nested model's
        # layers named after the instance) is export's, not folding's: 'as flat'.
        same = names(rebuilt) == names(original)
        row["names"] = (
            "same"
            if same
            else "as flat"
            if names(rebuilt) == names(modelspec.build(modelspec.loads(plain)))
            else "DIFFER"
        )
        if original.count_params() != rebuilt.count_params():
            raise AssertionError(
                f"parameters differ: {original.count_params():,} vs {rebuilt.count_params():,}"
            )
        modelspec.copy_weights(original, rebuilt)
        data = hub_inputs(original)
        got, want = rebuilt(data, training=False), original(data, training=False)
        pairs = zip(keras.tree.flatten(got), keras.tree.flatten(want))
        row["diff"] = max(
            float(np.max(np.abs(keras.ops.convert_to_numpy(a) - keras.ops.convert_to_numpy(b))))
            for a, b in pairs
        )
        row["result"] = "ok" if row["diff"] == 0.0 and row["names"] != "DIFFER" else "DIFFER"
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", metavar="NAME", help="these constructors (or backbones) only")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    parser.add_argument("--hub", action="store_true", help="the KerasHub backbones of tests/conftest.py")
    parser.add_argument(
        "--deeper",
        action="store_true",
        help="--hub: each backbone made to repeat its units (conftest.hub_deeper)",
    )
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    import keras

    if args.hub:
        from conftest import HUB_BACKBONES

        names = args.only or list(HUB_BACKBONES)
        configs = "made deeper by conftest.hub_deeper" if args.deeper else "configs of tests/conftest.py"
        print(f"KerasHub backbones ({configs}), Keras {keras.__version__} ({keras.backend.backend()})")
        measure = lambda name: run_hub(name, args.deeper)  # noqa: E731
    else:
        names = args.only or sorted(n for n in dir(keras.applications) if n[0].isupper())
        measure = run
    table = Table(
        {
            "model": 18,
            "flat lines": 10,
            "folded lines": 12,
            "ratio": 6,
            "export s": 9,
            "max diff": 9,
            "names": 7,
            "result": 6,
        },
        args.markdown,
    )
    totals = {"flat": 0, "folded": 0, "export": 0.0}
    for name in names:
        row = measure(name)
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
