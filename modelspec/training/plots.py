"""The training history as CSV, and the learning curves as PNG."""

from __future__ import annotations

import os
from typing import Any

from ..files import write_atomically


def history_frame(history: dict[str, list[float]]) -> Any:
    """The history as a DataFrame: ``epoch`` (from 1), then one column per metric."""
    import pandas as pd

    frame = pd.DataFrame(history)
    frame.insert(0, "epoch", range(1, len(frame) + 1))
    return frame


def write_history(path: str | os.PathLike, history: dict[str, list[float]]) -> None:
    """Write the history as CSV, atomically."""
    frame = history_frame(history)
    write_atomically(path, lambda tmp: frame.to_csv(tmp, index=False))


def write_curves(path: str | os.PathLike, history: dict[str, list[float]], title: str = "") -> None:
    """Plot each metric per epoch (training and validation) to a PNG, atomically."""
    from matplotlib.figure import Figure  # no pyplot: no global backend, no GUI

    metrics = [k for k in history if not k.startswith("val_")] or list(history)
    cols = min(3, max(1, len(metrics)))
    rows = -(-len(metrics) // cols)
    fig = Figure(figsize=(4.5 * cols, 3.2 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, metric in zip(axes, metrics):
        epochs = range(1, len(history[metric]) + 1)
        ax.plot(epochs, history[metric], label="training")
        if f"val_{metric}" in history:
            ax.plot(epochs, history[f"val_{metric}"], label="validation")
        ax.set_title(metric)
        ax.set_xlabel("epoch")
        ax.legend()
    for ax in axes[len(metrics) :]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title)
    write_atomically(path, lambda tmp: fig.savefig(tmp, format="png", dpi=90))
