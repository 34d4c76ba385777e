"""Training data: read a CSV, pick feature and target columns, split rows.

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

from ..errors import Problem, SpecError, suggest
from ..files import open_regular
from ..keras.messages import clipped
from ..spec import DataSpec, ModelSpec

if TYPE_CHECKING:  # numpy is imported when data is handled: `import modelspec` stays light
    import numpy as np

MAX_DATA_BYTES = 1 << 30
"""Largest CSV file read (1 GiB): a bigger one is refused before it is opened by pandas."""
FLOAT32_MAX = 3.4028234663852886e38
"""Largest float32: feature values beyond it (and infinities) are refused like missing values."""

SEPARATORS = (",", ";", "\t", "|")
"""Separators recognised when a CSV read with the wrong one comes out as a single column."""

# -- where problems are reported -------------------------------------------------


class Places:
    """Where data problems are reported: the CSV file itself (``evaluate``, ``predict``).

    Each method takes the problem's ``code``; the default is the usual one for that place.
    """

    def __init__(self, csv: str):
        self.csv = csv

    def file(self, message: str, hint: str | None = None, code: str = "data-file") -> Problem:
        """A problem with the CSV file as a whole."""
        return Problem.in_file(code, self.csv, message, hint, path=("--data",))

    def feature(
        self, column: str, message: str, hint: str | None = None, code: str = "data-column"
    ) -> Problem:
        """A problem with a feature column."""
        return Problem.in_file(code, self.csv, message, hint, path=(column,))

    def target(
        self, output: str, column: str, message: str, hint: str | None = None, code: str = "data-target"
    ) -> Problem:
        """A problem with the target column of ``output``."""
        return Problem.in_file(code, self.csv, message, hint, path=(column,))

    def split(self, key: str, message: str, hint: str | None = None, code: str = "data-split") -> Problem:
        """A problem with how the rows are split (``test_split``, ``validation_split``)."""
        return Problem.in_file(code, self.csv, message, hint, path=(key,))


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
        self.at = spec.at("train", "data")

    def file(self, message: str, hint: str | None = None, code: str = "data-file") -> Problem:
        if self.override:
            source = self.spec.source
            name = source.name if source is not None else "<spec>"
            return Problem.in_file(
                code, name, f"{message} (given with --data)", hint, path=("train", "data", "path")
            )
        return self.at.at("path").problem(code, message, hint)

    def feature(
        self, column: str, message: str, hint: str | None = None, code: str = "data-column"
    ) -> Problem:
        features = self.data.features
        if features is not None and column in features:
            return self.at.at("features", features.index(column)).problem(code, message, hint)
        # Default features (every column but the targets): the 'data' mapping is the place.
        return self.at.at("features").problem(code, message, hint)

    def target(
        self, output: str, column: str, message: str, hint: str | None = None, code: str = "data-target"
    ) -> Problem:
        at = self.at.at("target")
        if isinstance(self.data.target, dict):
            at = at.at(output)
        return at.problem(code, message, hint)

    def split(self, key: str, message: str, hint: str | None = None, code: str = "data-split") -> Problem:
        return self.at.at(key).problem(code, message, hint)


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

    Only a regular file of at most :data:`MAX_DATA_BYTES` is read, with a
    literal one-character separator (pandas's C parser: never a regular
    expression), and it must hold at least one row below its header.

    Raises:
        SpecError: The file is missing, unreadable, not a regular file, too
            large, empty, without rows or not parseable, located through ``places.file``.
    """
    import pandas as pd

    from ..spec.models import literal_separator

    try:
        sep = literal_separator(sep)
    except ValueError as e:
        raise SpecError([places.file(str(e))]) from None
    try:
        fd = open_regular(path, MAX_DATA_BYTES)
    except ValueError as e:
        raise SpecError([places.file(f"'{path}' {e}")]) from None
    except FileNotFoundError:
        raise SpecError([places.file(f"no such file: '{path}'", _near_files(path))]) from None
    except PermissionError:
        raise SpecError([places.file(f"permission denied: '{path}' cannot be read")]) from None
    except OSError as e:
        raise SpecError([places.file(f"cannot read '{path}': {e.strerror or e}")]) from None
    try:
        with os.fdopen(fd, "rb") as f:
            frame = pd.read_csv(f, sep=sep, engine="c")
    except UnicodeDecodeError as e:
        raise SpecError(
            [places.file(f"'{path}' is not UTF-8 text (byte 0x{e.object[e.start]:02x})")]
        ) from None
    except pd.errors.EmptyDataError:
        raise SpecError([places.file(f"'{path}' is empty: a CSV starts with a header row")]) from None
    except (pd.errors.ParserError, ValueError, OverflowError) as e:
        raise SpecError([places.file(f"'{path}' is not a CSV file pandas can read: {clipped(e)}")]) from None
    except MemoryError:
        raise SpecError([places.file(f"'{path}' does not fit in memory")]) from None
    except OSError as e:
        raise SpecError([places.file(f"cannot read '{path}': {e.strerror or e}")]) from None
    frame.columns = [str(c) for c in frame.columns]
    if len(frame) == 0:
        raise SpecError([places.file(f"'{path}' has a header but no rows: there is no data")])
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
                        "unknown-output",
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
            missing(
                column, "target", lambda m, h, o=output, c=column: places.target(o, c, m, h, "data-column")
            )
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
                    "data-value",
                )
            )
            continue
        problem = unusable_numbers(values, f"feature column '{column}'")
        if problem is not None:
            problems.append(places.feature(column, *problem, "data-value"))
    if problems:
        raise SpecError(problems)
    return frame[list(features)].to_numpy(dtype="float32")


def unusable_numbers(values: Any, what: str) -> tuple[str, str] | None:
    """(message, hint) when a numeric column holds infinities or values beyond float32, else None.

    Such values are refused like missing ones: they would train a model of
    NaNs. Located by the file line of the first few (the header is line 1).
    """
    import numpy as np

    if values.dtype.kind != "f":  # integers (even 64-bit ones) and booleans fit float32's range
        return None
    numbers = values.to_numpy()
    with np.errstate(invalid="ignore"):
        bad = np.isinf(numbers) | (np.abs(numbers) > FLOAT32_MAX)
    count = int(bad.sum())
    if not count:
        return None
    rows = ", ".join(str(i + 2) for i in values.index[bad][:5])
    return (
        f"{what} has {count} value{'s' if count != 1 else ''} that "
        f"{'are' if count != 1 else 'is'} infinite or beyond float32's range (±3.4e38) "
        f"(file line{'s' if count != 1 else ''} {rows}{', ...' if count > 5 else ''})",
        "fix or drop those rows in the CSV: a model trains on finite float32 values",
    )


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
