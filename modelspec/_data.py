"""Training data: read a CSV, pick feature and target columns, encode labels, split rows.

Every problem found in the data is a located :class:`Problem`: at the spec line
of the key concerned when training from a spec (``train.data.target`` for a
misspelled target column), at the CSV file otherwise (``evaluate``, ``predict``).
pandas is imported inside the functions, so that ``import modelspec`` and
``modelspec validate`` stay light.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._catalog import suggest
from ._errors import Problem, SpecError
from ._spec import DataSpec, ModelSpec

if TYPE_CHECKING:  # numpy is imported when data is handled: `import modelspec` stays light
    import numpy as np

SEPARATORS = (",", ";", "\t", "|")
"""Separators recognised when a CSV read with the wrong one comes out as a single column."""

KINDS = ("sparse", "categorical", "binary", "regression")
"""How a target is fed to the model: class ids, one-hot rows, 0/1 values, or numbers."""


# -- where problems are reported -------------------------------------------------


class Places:
    """Where data problems are reported: the CSV file itself (``evaluate``, ``predict``)."""

    def __init__(self, csv: str):
        self.csv = csv

    def file(self, message: str, hint: str | None = None) -> Problem:
        """A problem with the CSV file as a whole."""
        return Problem(("--data",), message, self.csv, hint=hint)

    def feature(self, column: str, message: str, hint: str | None = None) -> Problem:
        """A problem with a feature column."""
        return Problem((column,), message, self.csv, hint=hint)

    def target(self, output: str, column: str, message: str, hint: str | None = None) -> Problem:
        """A problem with the target column of ``output``."""
        return Problem((column,), message, self.csv, hint=hint)

    def split(self, key: str, message: str, hint: str | None = None) -> Problem:
        """A problem with how the rows are split (``test_split``, ``validation_split``)."""
        return Problem((key,), message, self.csv, hint=hint)


class SpecPlaces(Places):
    """Data problems at the spec lines of ``train.data`` (the keys that name the columns).

    Args:
        spec: The spec being trained.
        csv: The CSV path as it is shown in messages.
        override: True when the CSV was given on the command line (``--data``)
            instead of by ``train.data.path``: file problems then name no line.
    """

    def __init__(self, spec: ModelSpec, csv: str, *, override: bool = False):
        super().__init__(csv)
        self.spec = spec
        self.override = override
        assert spec.train is not None
        self.data: DataSpec = spec.train.data

    def file(self, message: str, hint: str | None = None) -> Problem:
        if self.override:
            source = self.spec.source
            name = source.name if source is not None else "<spec>"
            return Problem(("train", "data", "path"), f"{message} (given with --data)", name, hint=hint)
        return self.spec.problem(("train", "data", "path"), message, hint)

    def feature(self, column: str, message: str, hint: str | None = None) -> Problem:
        features = self.data.features
        if features is not None and column in features:
            return self.spec.problem(("train", "data", "features", features.index(column)), message, hint)
        # Default features (every column but the targets): the 'data' mapping is the place.
        return self.spec.problem(("train", "data", "features"), message, hint)

    def target(self, output: str, column: str, message: str, hint: str | None = None) -> Problem:
        path: tuple = ("train", "data", "target")
        if isinstance(self.data.target, dict):
            path += (output,)
        return self.spec.problem(path, message, hint)

    def split(self, key: str, message: str, hint: str | None = None) -> Problem:
        return self.spec.problem(("train", "data", key), message, hint)


# -- reading -----------------------------------------------------------------------


def data_path(spec: ModelSpec, override: str | os.PathLike | None = None) -> tuple[str, bool]:
    """The CSV to read: ``override`` (``--data``), else ``train.data.path`` against the spec's folder.

    Returns:
        The path, shown relative to the working folder when it is inside it,
        and whether it came from ``override``.
    """
    if override is not None:
        return os.fspath(override), True
    assert spec.train is not None
    base = spec.source.base_dir if spec.source is not None else os.getcwd()
    path = os.path.normpath(os.path.join(base, spec.train.data.path))
    try:
        relative = os.path.relpath(path)
    except ValueError:  # another drive (Windows)
        return path, False
    return (path if relative.startswith("..") else relative), False


def read_csv(path: str, sep: str, places: Places) -> Any:
    """Read a CSV file into a pandas DataFrame.

    Raises:
        SpecError: The file is missing, unreadable, empty or not parseable,
            located through ``places.file``.
    """
    import pandas as pd

    if os.path.isdir(path):
        raise SpecError([places.file(f"'{path}' is a folder, not a CSV file")])
    try:
        frame = pd.read_csv(path, sep=sep)
    except FileNotFoundError:
        raise SpecError([places.file(f"no such file: '{path}'", _near_files(path))]) from None
    except PermissionError:
        raise SpecError([places.file(f"permission denied: '{path}' cannot be read")]) from None
    except UnicodeDecodeError as e:
        raise SpecError(
            [places.file(f"'{path}' is not UTF-8 text (byte 0x{e.object[e.start]:02x})")]
        ) from None
    except pd.errors.EmptyDataError:
        raise SpecError([places.file(f"'{path}' is empty: a CSV starts with a header row")]) from None
    except (pd.errors.ParserError, ValueError) as e:
        text = " ".join(str(e).split())
        raise SpecError([places.file(f"'{path}' is not a CSV file pandas can read: {text}")]) from None
    except OSError as e:
        raise SpecError([places.file(f"cannot read '{path}': {e.strerror or e}")]) from None
    frame.columns = [str(c) for c in frame.columns]
    return frame


def _near_files(path: str) -> str | None:
    folder = os.path.dirname(path) or "."
    try:
        names = [n for n in os.listdir(folder) if n.lower().endswith((".csv", ".tsv", ".txt"))]
    except OSError:
        return None
    near = suggest(os.path.basename(path), names)
    return f"did you mean '{os.path.join(os.path.dirname(path), near)}'?" if near else None


def separator_hint(frame: Any, sep: str) -> str | None:
    """A hint when a CSV read with ``sep`` came out as one column holding another separator."""
    if len(frame.columns) != 1:
        return None
    header = str(frame.columns[0])
    for other in SEPARATORS:
        if other != sep and other in header:
            return f"the file looks {'tab' if other == chr(9) else repr(other)}-separated: set sep: {other!r}"
    return None


# -- columns -----------------------------------------------------------------------


@dataclass(frozen=True)
class Columns:
    """The columns a model reads and predicts.

    Attributes:
        features: Feature columns, in the order the model's input takes them.
        targets: Output name -> target column.
    """

    features: list[str]
    targets: dict[str, str]


def choose_columns(
    frame: Any,
    features: Sequence[str] | None,
    target: str | dict[str, str],
    outputs: Sequence[str],
    places: Places,
    sep: str = ",",
) -> Columns:
    """Check the feature and target columns against the CSV and the model's outputs.

    Args:
        frame: The data.
        features: Feature columns, or None for every column but the targets.
        target: A column (models with one output), or output name -> column.
        outputs: The model's output names.
        places: Where problems are reported.
        sep: The separator the CSV was read with (for a hint when it was the wrong one).

    Raises:
        SpecError: Every missing or misspelled column, and target keys that
            name no output.
    """
    problems: list[Problem] = []
    columns = list(frame.columns)
    sep_hint = separator_hint(frame, sep)

    def missing(column: str, what: str, report: Any) -> None:
        near = suggest(column, columns)
        hint = f"did you mean '{near}'?" if near else sep_hint or f"the columns are: {', '.join(columns)}"
        problems.append(report(f"no {what} column '{column}' in {places.csv}", hint))

    if isinstance(target, str):
        if len(outputs) != 1:
            problems.append(
                places.target(
                    "",
                    target,
                    f"the model has {len(outputs)} outputs ({', '.join(outputs)}): one target column cannot feed them",
                    "map each output to its column: target: {"
                    + ", ".join(f"{o}: COLUMN" for o in outputs)
                    + "}",
                )
            )
            targets = {}
        else:
            targets = {outputs[0]: target}
    else:
        targets = {}
        for output, column in target.items():
            if output not in outputs:
                near = suggest(output, outputs)
                problems.append(
                    places.target(
                        output,
                        column,
                        f"'{output}' is not an output of the model",
                        f"did you mean '{near}'?" if near else f"the outputs are: {', '.join(outputs)}",
                    )
                )
            else:
                targets[output] = column
        for output in outputs:
            if output not in target:
                problems.append(
                    places.target(
                        output,
                        "",
                        f"output '{output}' has no target column",
                        f"add '{output}: COLUMN' to the target mapping",
                    )
                )
    for output, column in targets.items():
        if column not in columns:
            missing(column, "target", lambda m, h, o=output, c=column: places.target(o, c, m, h))
    if features is None:
        chosen = [c for c in columns if c not in set(targets.values())]
        if not chosen and not problems:
            problems.append(
                places.feature("", f"{places.csv} has no column besides the targets to use as features")
            )
    else:
        chosen = list(features)
        seen: set[str] = set()
        for column in chosen:
            if column in seen:
                problems.append(places.feature(column, f"feature column '{column}' is listed twice"))
            seen.add(column)
            if column not in columns:
                missing(column, "feature", lambda m, h, c=column: places.feature(c, m, h))
            elif column in targets.values():
                problems.append(
                    places.feature(column, f"'{column}' is a target column: it cannot be a feature as well")
                )
    if problems:
        raise SpecError(problems)
    return Columns(chosen, targets)


def feature_matrix(frame: Any, features: Sequence[str], places: Places) -> np.ndarray:
    """The feature columns as a float32 matrix (rows x features).

    Raises:
        SpecError: Every column that is not numeric or has missing values.
    """
    import pandas as pd

    problems: list[Problem] = []
    for column in features:
        values = frame[column]
        if pd.api.types.is_bool_dtype(values):
            continue
        if not pd.api.types.is_numeric_dtype(values):
            numbers = pd.to_numeric(values, errors="coerce")
            bad = values[numbers.isna() & values.notna()]
            example = f"'{bad.iloc[0]}' on line {bad.index[0] + 2} of the file" if len(bad) else "text"
            problems.append(
                places.feature(
                    column,
                    f"feature column '{column}' is not numeric: it holds {example}",
                    "features are numbers: encode this column as numbers in the CSV, or leave it out of 'features'",
                )
            )
            continue
        gaps = int(values.isna().sum())
        if gaps:
            rows = ", ".join(str(i + 2) for i in values.index[values.isna()][:5])
            problems.append(
                places.feature(
                    column,
                    f"feature column '{column}' has {gaps} missing value{'s' if gaps != 1 else ''} "
                    f"(file line{'s' if gaps != 1 else ''} {rows}{', ...' if gaps > 5 else ''})",
                    "fill or drop those rows in the CSV",
                )
            )
    if problems:
        raise SpecError(problems)
    return frame[list(features)].to_numpy(dtype="float32")


# -- splits ------------------------------------------------------------------------


@dataclass(frozen=True)
class Split:
    """Row indices of the training, validation and test parts."""

    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray


def split_rows(n: int, data: DataSpec, places: Places) -> Split:
    """Split ``n`` rows the way the hand-written workflow does.

    The test rows are those of scikit-learn's
    ``train_test_split(..., test_size=test_split, random_state=seed, shuffle=shuffle)``:
    ``ceil(n * test_split)`` rows, the first of ``numpy.random.RandomState(seed).permutation(n)``
    (the last rows of the file without ``shuffle``). The validation rows are
    those Keras's ``fit(validation_split=...)`` holds out of the rest: its last
    ``len(rest) - floor(len(rest) * (1 - validation_split))`` rows. So a spec
    and the script ``train_test_split`` + ``fit(validation_split=...)`` see the
    same rows.

    Raises:
        SpecError: The CSV has no rows, or nothing is left to train on.
    """
    import numpy as np

    if n == 0:
        raise SpecError([places.file(f"{places.csv} has a header but no rows")])
    n_test = math.ceil(n * data.test_split) if data.test_split > 0 else 0
    if data.shuffle:
        order = np.random.RandomState(data.seed).permutation(n)
        test, rest = order[:n_test], order[n_test:]
    else:
        test, rest = np.arange(n - n_test, n), np.arange(n - n_test)
    split_at = (
        math.floor(len(rest) * (1.0 - data.validation_split)) if data.validation_split > 0 else len(rest)
    )
    split = Split(rest[:split_at], rest[split_at:], test)
    if len(split.train) == 0:
        # With one row left or none, the test split is what took them all.
        key = "test_split" if len(rest) <= 1 else "validation_split"
        raise SpecError(
            [
                places.split(
                    key,
                    f"the training split is empty: of {n} rows, {len(test)} are held out for test "
                    f"and {len(split.validation)} for validation",
                    "lower test_split / validation_split, or use more rows",
                )
            ]
        )
    return split


# -- targets -----------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """A target column encoded for one model output.

    Attributes:
        values: What ``fit`` takes: class ids, one-hot rows, 0/1 or numbers.
        kind: One of :data:`KINDS`.
        labels: The original label of each class id (string labels), else None.
    """

    values: np.ndarray
    kind: str
    labels: list[str] | None


def _is_label_column(values: Any) -> bool:
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

    Raises:
        SpecError: Missing values, or a target that does not fit the output
            (3 classes into one unit, class ids >= units, ...).
    """
    import numpy as np

    def fail(message: str, hint: str | None = None) -> SpecError:
        return SpecError([places.target(output, column, message, hint)])

    gaps = int(values.isna().sum())
    if gaps:
        raise fail(
            f"target column '{column}' has {gaps} missing value{'s' if gaps != 1 else ''}",
            "fill or drop those rows in the CSV",
        )
    if _is_label_column(values):
        labels = sorted({str(v) for v in values})
        ids = np.searchsorted(np.array(labels), values.astype(str).to_numpy()).astype("int32")
        return _classes(ids, labels, units, loss_kind, output, column, fail)
    numbers = values.to_numpy()
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
        return Target(_one_hot(ids, units) if loss_kind == "categorical" else ids, loss_kind, None)
    if units != 1:
        raise fail(
            f"output '{output}' has {units} units, but its target '{column}' is one numeric column",
            "a regression output has 1 unit; for class ids 0..units-1 use loss: sparse_categorical_crossentropy",
        )
    return Target(numbers.astype("float32"), "binary" if loss_kind == "binary" else "regression", None)


def _classes(
    ids: np.ndarray, labels: list[str], units: int, loss_kind: str, output: str, column: str, fail: Any
) -> Target:
    k = len(labels)
    shown = ", ".join(labels[:6]) + (", ..." if k > 6 else "")
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
    if loss_kind == "categorical":
        return Target(_one_hot(ids, units), "categorical", labels)
    return Target(ids, "sparse", labels)


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

    def fail(message: str, hint: str | None = None) -> SpecError:
        return SpecError([places.target(output, column, message, hint)])

    gaps = int(values.isna().sum())
    if gaps:
        raise fail(f"target column '{column}' has {gaps} missing value{'s' if gaps != 1 else ''}")
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
    elif kind in ("sparse", "categorical"):
        numbers = None if _is_label_column(values) else values.to_numpy()
        if (
            numbers is None
            or not np.all(np.mod(numbers, 1) == 0)
            or numbers.min() < 0
            or numbers.max() >= units
        ):
            raise fail(f"target column '{column}' must hold class ids 0 to {units - 1}")
        ids = numbers.astype("int32")
    elif _is_label_column(values):
        raise fail(f"target column '{column}' must be numeric")
    else:
        return values.to_numpy().astype("float32")
    if kind == "categorical":
        return _one_hot(ids, units)
    return ids.astype("float32") if kind == "binary" else ids


def decode(output: np.ndarray, kind: str, labels: list[str] | None, from_logits: bool) -> tuple[Any, Any]:
    """Model outputs to answers: (labels or values, probability of the answer or None)."""
    import numpy as np

    output = np.asarray(output, dtype="float64")
    if kind in ("sparse", "categorical"):
        if from_logits:
            output = np.exp(output - output.max(axis=-1, keepdims=True))
            output /= output.sum(axis=-1, keepdims=True)
        ids = output.argmax(axis=-1)
        probability = output.max(axis=-1)
    elif kind == "binary":
        p = output.reshape(len(output), -1)[:, 0]
        if from_logits:
            p = 1.0 / (1.0 + np.exp(-p))
        ids = (p > 0.5).astype("int64")
        probability = np.where(ids == 1, p, 1.0 - p)
    else:
        return output.reshape(len(output), -1)[:, 0], None
    answers = np.array(labels, dtype=object)[ids] if labels is not None else ids
    return answers, probability


# -- a look at the data ------------------------------------------------------------


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
    out = [f"{csv}: {rows} rows, {cols} columns (sep {sep!r})", "", "columns (pandas info):"]
    buffer = io.StringIO()
    frame.info(buf=buffer)
    out += [buffer.getvalue().rstrip(), ""]
    numeric = frame.select_dtypes("number")
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
        out.append("missing values:")
        out += [f"  {column}: {int(n)} of {rows}" for column, n in gaps.items()]
    else:
        out.append("missing values: none")
    for column in targets:
        if column not in frame.columns:
            continue
        values = frame[column]
        if _is_label_column(values) or values.nunique() <= 20:
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
    """
    import pandas as pd
    from matplotlib.figure import Figure  # no pyplot: no global backend, no GUI

    from ._files import write_atomically

    columns = [c for c in features if c in frame.columns and pd.api.types.is_numeric_dtype(frame[c])]
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
            parts = [values[frame[target] == k].dropna().to_numpy() for k in classes]
            ax.hist(parts, bins=20, stacked=True, label=[str(k) for k in classes])
        else:
            ax.hist(values.dropna().to_numpy(), bins=20)
        ax.set_title(column)
    for ax in axes[len(columns) :]:
        ax.set_visible(False)
    if classes is not None and columns:
        axes[0].legend(title=target, fontsize="small")
    if not columns:
        axes[0].set_visible(True)
        axes[0].text(0.5, 0.5, "no numeric feature columns", ha="center", va="center")
    fig.suptitle(
        (f"{title}: " if title else "") + "features" + (f" by {target}" if classes is not None else "")
    )
    write_atomically(path, lambda tmp: fig.savefig(tmp, format="png", dpi=90))
