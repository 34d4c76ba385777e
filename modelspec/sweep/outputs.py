"""What a sweep writes: ``trials.csv``, ``best.yaml``, ``best.keras``, ``history.png``, ``importance.png``.

All together or none (:func:`modelspec.files.write_all_atomically`), from
the study as the storage holds it, whichever processes ran its trials.
"""

from __future__ import annotations

import os
import shutil
from typing import Any

from ..files import write_all_atomically
from ..spec import ModelSpec
from ..spec.dump import dump_yaml
from ..spec.paths import callback_outputs, resolve

OUTPUTS = ("trials.csv", "best.yaml", "best.keras", "history.png", "importance.png")


def table(trials: list[Any], keys: list[str]) -> Any:
    """The trials as a DataFrame: number, state, one column per space key, objective, seconds, problem."""
    import pandas as pd

    rows = [
        {
            "number": t.number,
            "state": t.state.name,
            **{k: t.params.get(k) for k in keys},
            "objective": t.value if t.values else None,
            "seconds": round(t.user_attrs["seconds"], 3) if "seconds" in t.user_attrs else None,
            "problem": t.user_attrs.get("problem", ""),
        }
        for t in sorted(trials, key=lambda t: t.number)
    ]
    return pd.DataFrame(rows, columns=["number", "state", *keys, "objective", "seconds", "problem"])


def best_yaml(flat: ModelSpec, folder: str, note: str) -> str:
    """The expanded spec of the best point as YAML, its relative paths rewritten for a file in ``folder``."""
    data = flat.to_data()
    target = os.path.abspath(folder)
    if flat.train is not None and not os.path.isabs(flat.train.data.path):
        data["train"]["data"]["path"] = os.path.relpath(resolve(flat, flat.train.data.path), target)
    for out in callback_outputs(flat):
        if not os.path.isabs(out.written) and isinstance(data["train"]["callbacks"][out.index], dict):
            data["train"]["callbacks"][out.index][out.arg] = os.path.relpath(out.path, target)
    return "".join(f"# {line}\n" for line in note.splitlines()) + dump_yaml(data)


def draw_history(path: str, frame: Any, objective: str, direction: str) -> None:
    """The objective of each finished trial by number, and the best so far."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 3.8), layout="constrained")
    ax = fig.subplots()
    done = frame[frame["state"] == "COMPLETE"]
    pruned = frame[(frame["state"] == "PRUNED") & frame["objective"].notna()]
    ax.scatter(done["number"], done["objective"], label="trial", color="C0", zorder=3)
    if len(pruned):
        ax.scatter(
            pruned["number"], pruned["objective"], label="pruned (last report)", color="C7", marker="x"
        )
    best = done["objective"].cummin() if direction == "minimize" else done["objective"].cummax()
    if len(done):  # the best so far, drawn on to the last trial
        last = int(frame["number"].max())
        ax.step(
            [*done["number"], last], [*best, best.iloc[-1]], where="post", label="best so far", color="C1"
        )
    failed = frame[frame["state"] == "FAIL"]
    if len(failed):
        ax.plot([], [], " ", label=f"failed: {len(failed)}")
    ax.set_xlabel("trial")
    ax.set_ylabel(objective)
    ax.set_title(f"{objective} by trial ({direction})")
    ax.legend(loc="best")
    fig.savefig(path, format="png", dpi=90)


def draw_importance(path: str, importance: dict[str, float], objective: str) -> None:
    """Optuna's importance of each space key, as horizontal bars."""
    from matplotlib.figure import Figure

    keys = list(importance)[::-1]
    fig = Figure(figsize=(6.4, 0.6 * len(keys) + 1.4), layout="constrained")
    ax = fig.subplots()
    ax.barh(keys, [importance[k] for k in keys], color="C0")
    ax.set_xlabel(f"importance for {objective}")
    ax.set_title("what mattered (Optuna's fANOVA importance)")
    fig.savefig(path, format="png", dpi=90)


def write(
    folder: str,
    study: Any,
    frame: Any,
    objective: str,
    direction: str,
    best: tuple[ModelSpec, str, str] | None,
) -> list[str]:
    """Write the outputs into ``folder``, all or none.

    Args:
        folder: The output folder.
        study: The Optuna study (for the importance).
        frame: :func:`table` of its trials.
        objective: The objective's name.
        direction: ``minimize`` or ``maximize``.
        best: The best point's expanded spec, its model file and a note for best.yaml; None without one.

    Returns:
        Notes on what was left out (and why).
    """
    notes: list[str] = []
    writes: list[tuple[str, Any]] = [
        (os.path.join(folder, "trials.csv"), lambda p: frame.to_csv(p, index=False)),
        (os.path.join(folder, "history.png"), lambda p: draw_history(p, frame, objective, direction)),
    ]
    if best is not None:
        flat, model_file, note = best
        text = best_yaml(flat, folder, note)

        def write_yaml(p: str) -> None:
            with open(p, "w", encoding="utf-8") as f:
                f.write(text)

        writes.append((os.path.join(folder, "best.yaml"), write_yaml))
        writes.append((os.path.join(folder, "best.keras"), lambda p: shutil.copyfile(model_file, p)))
    else:
        notes.append("no trial completed: no best.yaml or best.keras")
    complete = int((frame["state"] == "COMPLETE").sum())
    if complete < 2:
        notes.append(f"importance.png left out: it needs 2 completed trials, the study has {complete}")
    else:
        import optuna

        try:
            importance = optuna.importance.get_param_importances(study)
        except (RuntimeError, ValueError) as e:  # a space Optuna cannot judge (every point alike, ...)
            notes.append(f"importance.png left out: {e}")
        else:
            writes.append(
                (os.path.join(folder, "importance.png"), lambda p: draw_importance(p, importance, objective))
            )
    write_all_atomically(writes)
    return notes
