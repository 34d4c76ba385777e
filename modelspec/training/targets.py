"""Targets: encode a target column for its output (class ids, one-hot rows, 0/1, numbers), and decode answers."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import Problem, SpecError
from .data import Places, unusable_numbers

if TYPE_CHECKING:
    import numpy as np

KINDS = ("sparse", "categorical", "binary", "regression")
"""How a target is fed to the model: class ids, one-hot rows, 0/1 values, or numbers."""


@dataclass(frozen=True)
class Target:
    """A target column encoded for one model output.

    Attributes:
        values: What ``fit`` takes: class ids, one-hot rows, 0/1 or numbers.
        kind: One of :data:`KINDS`.
        labels: The original label of each class id (string labels), else None.
        warnings: What the command line prints before training (fewer classes than units).
    """

    values: np.ndarray
    kind: str
    labels: list[str] | None
    warnings: tuple[Problem, ...] = field(default=(), compare=False)


def is_label_column(values: Any) -> bool:
    import pandas as pd

    return pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values)


def encode_target(
    values: Any,
    *,
    output: str,
    column: str,
    units: int,
    loss_kind: str,
    places: Places,
) -> Target:
    """Encode a target column for an output with ``units`` units.

    String (and boolean) labels become class ids 0..k-1 in sorted label order.
    ``loss_kind`` is what the output's loss expects: ``"sparse"`` (class ids),
    ``"categorical"`` (one-hot rows), ``"binary"`` (0/1) or ``"other"``.

    A target with fewer classes than the output has units trains, with a
    warning (``unused-units``) in :attr:`Target.warnings`; one with a single
    class is refused (``single-class``).

    Raises:
        SpecError: Missing, infinite or out-of-range values, or a target that
            does not fit the output (3 classes into one unit, class ids >= units,
            a single class, ...).
    """
    import numpy as np

    def fail(message: str, hint: str | None = None, code: str = "data-target") -> SpecError:
        return SpecError([places.target(output, column, message, hint, code)])

    def warning(message: str, hint: str) -> Problem:
        return dataclasses.replace(
            places.target(output, column, message, hint, "unused-units"), severity="warning"
        )

    gaps = int(values.isna().sum())
    if gaps:
        raise fail(
            f"target column '{column}' has {gaps} missing value{'s' if gaps != 1 else ''}",
            "fill or drop those rows in the CSV",
            "data-value",
        )
    if is_label_column(values):
        labels = sorted({str(v) for v in values})
        ids = np.searchsorted(np.array(labels), values.astype(str).to_numpy()).astype("int32")
        return _classes(ids, labels, units, loss_kind, output, column, fail, warning)
    problem = unusable_numbers(values, f"target column '{column}'")
    if problem is not None:
        raise fail(*problem, code="data-value")
    numbers = values.to_numpy()
    if loss_kind in ("sparse", "categorical") or (loss_kind == "binary" and units == 1):
        distinct = np.unique(numbers)
        if len(distinct) == 1:
            raise fail(
                f"target column '{column}' holds one class only ({distinct[0]:g}): there is nothing to tell apart",
                "train on rows of at least two classes",
                "single-class",
            )
    if loss_kind in ("sparse", "categorical"):
        whole = bool(np.all(np.mod(numbers, 1) == 0))
        low, high = numbers.min(), numbers.max()
        if not whole or low < 0 or high >= units:
            found = (
                f"holds {high:g}"
                if whole and high >= units
                else f"holds {low:g}"
                if whole
                else "holds fractions"
            )
            raise fail(
                f"target column '{column}' {found}, but output '{output}' has {units} "
                f"unit{'s' if units != 1 else ''}: class ids run from 0 to {units - 1}",
                f"give '{output}' {int(high) + 1} units, or write the classes as names (they are then encoded)"
                if whole and high >= units
                else "class ids are whole numbers from 0 to units - 1",
            )
        ids = numbers.astype("int32")
        found = len(np.unique(ids))
        warnings = ()
        if found < units:
            warnings = (
                warning(
                    f"target column '{column}' holds {found} of the {units} class ids of output '{output}' "
                    f"(0 to {units - 1}): the others are never trained",
                    f"give '{output}' {int(high) + 1} units if there are no more classes",
                ),
            )
        values_ = _one_hot(ids, units) if loss_kind == "categorical" else ids
        return Target(values_, loss_kind, None, warnings)
    if units != 1:
        raise fail(
            f"output '{output}' has {units} units, but its target '{column}' is one numeric column",
            "a regression output has 1 unit; for class ids 0..units-1 use loss: sparse_categorical_crossentropy",
        )
    return Target(numbers.astype("float32"), "binary" if loss_kind == "binary" else "regression", None)


def _classes(
    ids: np.ndarray,
    labels: list[str],
    units: int,
    loss_kind: str,
    output: str,
    column: str,
    fail: Any,
    warning: Any,
) -> Target:
    k = len(labels)
    shown = ", ".join(labels[:6]) + (", ..." if k > 6 else "")
    if k == 1:
        raise fail(
            f"target column '{column}' holds one class only ('{labels[0][:60]}'): there is nothing to tell apart",
            "train on rows of at least two classes",
            "single-class",
        )
    if units == 1:
        if k > 2 or loss_kind in ("sparse", "categorical"):
            raise fail(
                f"target column '{column}' has {k} classes ({shown}), but output '{output}' has 1 unit",
                f"give '{output}' {k} units with activation: softmax and loss: sparse_categorical_crossentropy"
                + ("" if k > 2 else ", or use loss: binary_crossentropy with a sigmoid"),
            )
        return Target(ids.astype("float32"), "binary", labels)
    if k > units:
        raise fail(
            f"target column '{column}' has {k} classes ({shown}), but output '{output}' has only {units} units",
            f"give '{output}' {k} units: one per class",
        )
    warnings = ()
    if k < units:
        warnings = (
            warning(
                f"target column '{column}' has {k} classes ({shown}), but output '{output}' has {units} units: "
                f"{units - k} unit{' is' if units - k == 1 else 's are'} never trained, and predictions "
                f"only name the {k} classes",
                f"give '{output}' {k} units: one per class",
            ),
        )
    if loss_kind == "categorical":
        return Target(_one_hot(ids, units), "categorical", labels, warnings)
    return Target(ids, "sparse", labels, warnings)


def _one_hot(ids: np.ndarray, units: int) -> np.ndarray:
    import numpy as np

    return np.eye(units, dtype="float32")[ids]


def encode_known(
    values: Any,
    *,
    output: str,
    column: str,
    kind: str,
    labels: list[str] | None,
    units: int,
    places: Places,
) -> np.ndarray:
    """Encode a target column the way training encoded it (for ``evaluate``).

    Raises:
        SpecError: Missing values, labels not seen in training, class ids out of range.
    """
    import numpy as np

    def fail(message: str, hint: str | None = None, code: str = "data-target") -> SpecError:
        return SpecError([places.target(output, column, message, hint, code)])

    gaps = int(values.isna().sum())
    if gaps:
        raise fail(
            f"target column '{column}' has {gaps} missing value{'s' if gaps != 1 else ''}", code="data-value"
        )
    if labels is not None:
        index = {name: i for i, name in enumerate(labels)}
        text = values.astype(str).tolist()
        unknown = sorted(set(text) - set(index))
        if unknown:
            many = len(unknown) != 1
            raise fail(
                f"label{'s' if many else ''} {', '.join(map(repr, unknown[:5]))} of column '{column}' "
                f"{'were' if many else 'was'} not seen in training",
                f"the model knows: {', '.join(labels)}",
            )
        ids = np.array([index[t] for t in text], dtype="int32")
    elif not is_label_column(values) and (problem := unusable_numbers(values, f"target column '{column}'")):
        raise fail(*problem, code="data-value")
    elif kind in ("sparse", "categorical"):
        numbers = None if is_label_column(values) else values.to_numpy()
        if (
            numbers is None
            or not np.all(np.mod(numbers, 1) == 0)
            or numbers.min() < 0
            or numbers.max() >= units
        ):
            raise fail(f"target column '{column}' must hold class ids 0 to {units - 1}")
        ids = numbers.astype("int32")
    elif is_label_column(values):
        raise fail(f"target column '{column}' must be numeric")
    else:
        return values.to_numpy().astype("float32")
    if kind == "categorical":
        return _one_hot(ids, units)
    return ids.astype("float32") if kind == "binary" else ids


def decode(output: np.ndarray, kind: str, labels: list[str] | None, from_logits: bool) -> tuple[Any, Any]:
    """Model outputs to answers: (labels or values, probability of the answer or None).

    A classifier trained on fewer classes than its output has units answers
    with the classes it knows: the best of the first ``len(labels)`` units,
    and that unit's probability.
    """
    import numpy as np

    output = np.asarray(output, dtype="float64")
    if kind in ("sparse", "categorical"):
        if from_logits:
            output = np.exp(output - output.max(axis=-1, keepdims=True))
            output /= output.sum(axis=-1, keepdims=True)
        if labels is not None:
            output = output[..., : len(labels)]
        ids = output.argmax(axis=-1)
        probability = output.max(axis=-1)
    elif kind == "binary":
        p = output.reshape(len(output), -1)[:, 0]
        if from_logits:
            p = 1.0 / (1.0 + np.exp(-p))
        ids = (p > 0.5).astype("int64")
        probability = np.where(ids == 1, p, 1.0 - p)
        if labels is not None:
            ids = np.minimum(ids, len(labels) - 1)
    else:
        return output.reshape(len(output), -1)[:, 0], None
    answers = np.array(labels, dtype=object)[ids] if labels is not None else ids
    return answers, probability
