"""Every KerasHub backbone of the tests' table through export -> YAML -> load -> build, timed and compared.

Run: python benchmarks/bench_hub.py [--only NAME ...]

Each backbone is made from its class with the tiny config of
``tests/conftest.py``'s ``HUB_BACKBONES`` (no presets, nothing downloaded),
exported with ``modelspec.from_keras``, its YAML read back and built with
``modelspec.build``, and compared with the original as the tests do: the same
parameter count and layer classes, outputs within 1e-5 once the weights are
copied (``modelspec.copy_weights``). Times: export (from_keras + YAML),
rebuild (loads + build: checks, static shapes, Keras), and Keras's own
``from_config`` of the original's config, each the best of two runs. A
backbone that does not round-trip prints the located message it gets.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests")]

from conftest import HUB_BACKBONES, assert_same_backbone, hub_backbone, hub_round_trip  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=None)
    args = parser.parse_args()
    import keras

    import modelspec

    warnings.simplefilter("ignore")
    names = args.only or list(HUB_BACKBONES)
    print(f"KerasHub backbones, Keras {keras.__version__} ({keras.backend.backend()})")
    print(
        f"{'model':<12} {'family':<19} {'params':>7} {'lines':>6} {'export s':>9} {'rebuild s':>10} {'from_config s':>14}  result"
    )
    passed, failures = 0, []
    for name in names:
        family = HUB_BACKBONES[name][0]
        model = hub_backbone(name)
        keras_times: list[float] = []
        for _ in range(2):
            start = time.perf_counter()
            try:
                type(model).from_config(model.get_config())
            except Exception:  # noqa: BLE001 - Keras's own rebuild fails too (Llama's get_config)
                keras_times = [float("nan")]
                break
            keras_times.append(time.perf_counter() - start)
        try:
            runs = [hub_round_trip(model) for _ in range(2)]
            built, text = runs[-1][0], runs[-1][1]
            assert_same_backbone(built, model)
        except modelspec.SpecError as e:
            errors = [p for p in e.problems if p.severity == "error"]
            failures.append((name, errors))
            print(f"{name:<12} {family:<19} {model.count_params():>7} {'-':>6} {'-':>9} {'-':>10} "
                  f"{min(keras_times):>14.3f}  refused: {errors[0].code}")  # fmt: skip
            continue
        passed += 1
        print(
            f"{name:<12} {family:<19} {model.count_params():>7} {len(text.splitlines()):>6} "
            f"{min(r[2] for r in runs):>9.3f} {min(r[3] for r in runs):>10.3f} {min(keras_times):>14.3f}  round-trips"
        )
    print(f"\n{passed}/{len(names)} backbones round-trip (max abs difference <= 1e-5, weights copied)")
    for name, errors in failures:
        for problem in errors:
            print(f"{name}: {problem.format(excerpt=False)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
