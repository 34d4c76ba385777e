"""A look at the data: what pandas tells about a CSV, and histograms of its features."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from ..files import write_atomically
from .targets import is_label_column

MAX_COLUMNS = 40
"""Columns summarized (ranges) and drawn (histograms) at most: the first ones; the output says so."""


def overview(frame: Any, csv: str, sep: str, targets: Sequence[str]) -> str:
    """What pandas tells about a CSV: ``info()``, ``describe()``, missing values, class balance.

    Args:
        frame: The data.
        csv: The file name, for the heading.
        sep: The separator it was read with.
        targets: The target columns (their class balance is shown).
    """
    import io

    import pandas as pd

    rows, cols = frame.shape
    out = [f"{csv}: {rows} rows, {cols} columns (sep {sep!r})", ""]
    shown = frame
    if cols > MAX_COLUMNS:
        # Each column costs a line of text and a histogram: the first ones tell what the file is.
        keep = list(frame.columns[:MAX_COLUMNS]) + [c for c in targets if c in frame.columns[MAX_COLUMNS:]]
        shown = frame[keep]
        out += [f"(showing the first {MAX_COLUMNS} of {cols:,} columns, and the targets)", ""]
    out.append("columns (pandas info):")
    buffer = io.StringIO()
    shown.info(buf=buffer)
    out += [buffer.getvalue().rstrip(), ""]
    numeric = shown.select_dtypes("number")
    if len(numeric.columns):
        with pd.option_context("display.width", 120, "display.max_columns", 20):
            out += [
                "ranges (pandas describe):",
                numeric.describe().T.to_string(float_format="{:.4g}".format),
                "",
            ]
    gaps = frame.isna().sum()
    gaps = gaps[gaps > 0]
    if len(gaps):
        out.append(f"missing values (in {len(gaps):,} of {cols:,} columns):")
        out += [f"  {column}: {int(n)} of {rows}" for column, n in gaps.iloc[:MAX_COLUMNS].items()]
        if len(gaps) > MAX_COLUMNS:
            out.append(f"  ... and {len(gaps) - MAX_COLUMNS:,} more columns")
    else:
        out.append("missing values: none")
    for column in targets:
        if column not in frame.columns:
            continue
        values = frame[column]
        if is_label_column(values) or values.nunique() <= 20:
            counts = values.value_counts(dropna=False).sort_index()
            width = max(len(str(k)) for k in counts.index)
            out += ["", f"target '{column}' ({len(counts)} classes):"]
            out += [f"  {k!s:<{width}}  {n:>6}  {100 * n / max(rows, 1):5.1f}%" for k, n in counts.items()]
        else:
            out += ["", f"target '{column}': numeric, from {values.min():.4g} to {values.max():.4g}"]
    return "\n".join(out)


def write_histograms(
    path: str | os.PathLike, frame: Any, features: Sequence[str], target: str | None, title: str = ""
) -> None:
    """Histograms of the numeric ``features`` to a PNG, atomically.

    When ``target`` is a column of at most 10 classes, each histogram is
    stacked by class, which shows at a glance which features separate them.
    At most :data:`MAX_COLUMNS` features are drawn: the first ones.
    """
    import pandas as pd
    from matplotlib.figure import Figure  # no pyplot: no global backend, no GUI

    columns = [c for c in features if c in frame.columns and pd.api.types.is_numeric_dtype(frame[c])]
    drawn_of = len(columns)
    columns = columns[:MAX_COLUMNS]
    classes = None
    if target is not None and target in frame.columns and frame[target].nunique() <= 10:
        classes = sorted(frame[target].dropna().unique(), key=str)
    cols = min(4, max(1, len(columns)))
    rows = max(1, -(-len(columns) // cols))
    fig = Figure(figsize=(3.6 * cols, 2.8 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, column in zip(axes, columns):
        values = frame[column]
        if classes is not None:
            parts = [_finite(values[frame[target] == k]) for k in classes]
            ax.hist(parts, bins=20, stacked=True, label=[str(k) for k in classes])
        else:
            ax.hist(_finite(values), bins=20)
        ax.set_title(column)
    for ax in axes[len(columns) :]:
        ax.set_visible(False)
    if classes is not None and columns:
        axes[0].legend(title=target, fontsize="small")
    if not columns:
        axes[0].set_visible(True)
        axes[0].text(0.5, 0.5, "no numeric feature columns", ha="center", va="center")
    fig.suptitle(
        (f"{title}: " if title else "")
        + ("features" if drawn_of <= MAX_COLUMNS else f"the first {MAX_COLUMNS} of {drawn_of:,} features")
        + (f" by {target}" if classes is not None else "")
    )
    write_atomically(path, lambda tmp: fig.savefig(tmp, format="png", dpi=90))


def _finite(values: Any) -> Any:
    """The finite values of a numeric column, as floats (a histogram has no bin for NaN or infinity)."""
    import numpy as np

    numbers = values.to_numpy(dtype="float64", na_value=np.nan)
    return numbers[np.isfinite(numbers)]
