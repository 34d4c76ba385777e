"""Evaluating and predicting with a model file written by ``modelspec train``."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from ..errors import SpecError, suggest
from .data import Places, feature_matrix, read_csv, separator_hint
from .modelfile import as_structure, by_name, load_trained, read_metadata
from .targets import decode, encode_known

if TYPE_CHECKING:
    import numpy as np


def _read_features(metadata: dict[str, Any], csv: str, sep: str | None) -> tuple[Any, np.ndarray, Places]:
    """The CSV, and its feature columns in the order the model was trained on.

    Read before Keras loads the model: a bad data file is refused without it.
    """
    places = Places(csv)
    frame = read_csv(csv, sep or metadata["sep"], places)
    features = metadata["features"]
    problems = []
    for column in features:
        if column not in frame.columns:
            near = suggest(column, list(frame.columns))
            problems.append(
                places.feature(
                    column,
                    f"no feature column '{column}' in {csv}: the model takes {', '.join(features)}",
                    f"did you mean '{near}'?" if near else separator_hint(frame, sep or metadata["sep"]),
                )
            )
    if problems:
        raise SpecError(problems)
    return frame, feature_matrix(frame, features, places), places


def evaluate(
    model: str | os.PathLike,
    data: str | os.PathLike,
    *,
    sep: str | None = None,
    batch_size: int | None = None,
    custom_objects: dict[str, Any] | None = None,
    verbose: Any = 0,
) -> tuple[dict[str, float], int]:
    """Keras's metrics of a model written by ``modelspec train`` on a CSV with the target columns.

    Returns:
        Metric -> value (as ``model.evaluate(..., return_dict=True)``), and the number of rows.

    Raises:
        SpecError: The model file or the CSV is invalid (the CSV must hold the
            features and the targets; labels must be ones seen in training).
    """
    metadata = read_metadata(model)
    csv = os.fspath(data)
    frame, x, places = _read_features(metadata, csv, sep)
    problems, targets = [], {}
    for o in metadata["outputs"]:
        if o["column"] not in frame.columns:
            problems.append(
                places.target(
                    o["name"],
                    o["column"],
                    f"no target column '{o['column']}' in {csv}: evaluate compares the model's answers with it",
                    "`modelspec predict` takes a CSV without the targets",
                )
            )
            continue
        targets[o["name"]] = encode_known(
            frame[o["column"]],
            output=o["name"],
            column=o["column"],
            kind=o["kind"],
            labels=o["labels"],
            units=o["units"],
            places=places,
        )
    if problems:
        raise SpecError(problems)
    trained = load_trained(model, custom_objects)
    names = [o["name"] for o in trained.outputs]
    y = as_structure(trained.metadata["structure"], names, targets)
    found = trained.model.evaluate(x, y, batch_size=batch_size, return_dict=True, verbose=verbose)
    return {k: float(v) for k, v in found.items()}, len(x)


def predict(
    model: str | os.PathLike,
    data: str | os.PathLike,
    *,
    sep: str | None = None,
    batch_size: int | None = None,
    custom_objects: dict[str, Any] | None = None,
) -> Any:
    """Predictions of a model written by ``modelspec train``, in the original labels.

    The CSV needs the feature columns; target columns, if present, are ignored.

    Returns:
        A pandas DataFrame, one row per CSV row: a column per output named
        after its target column (labels for classifiers, numbers for
        regressions), and ``<column>_probability`` for classifiers.

    Raises:
        SpecError: The model file or the CSV is invalid.
    """
    import pandas as pd

    _, x, _ = _read_features(read_metadata(model), os.fspath(data), sep)
    trained = load_trained(model, custom_objects)
    raw = trained.model.predict(x, batch_size=batch_size, verbose=0)
    names = [o["name"] for o in trained.outputs]
    outputs = by_name(trained.metadata["structure"], names, raw)
    result = {}
    for o in trained.outputs:
        answers, probability = decode(outputs[o["name"]], o["kind"], o["labels"], o["from_logits"])
        result[o["column"]] = answers
        if probability is not None:
            result[f"{o['column']}_probability"] = probability
    return pd.DataFrame(result)
