"""The model file: a ``.keras`` archive with ``modelspec.json`` inside, what ``predict`` needs.

Keras writes the model; modelspec adds one zip entry, ``modelspec.json``
(feature order, target columns, label names, output kinds, the CSV
separator), which Keras ignores when loading.
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass
from typing import Any

from ..errors import Problem, SpecError
from ..files import write_atomically
from ..keras.backend import load_keras
from .targets import KINDS

METADATA = "modelspec.json"
"""The zip entry of a ``.keras`` file that carries what ``predict`` needs."""
METADATA_FORMAT = 1
MAX_METADATA_BYTES = 1 << 20


def save_model(model: Any, metadata: dict[str, Any], path: str | os.PathLike) -> None:
    """Save ``model`` to a ``.keras`` file with ``modelspec.json`` inside, atomically.

    Keras writes the file; the metadata is appended as one more zip entry
    before the file replaces ``path``, so a failure leaves ``path`` as it was.
    """
    text = json.dumps(metadata, indent=1, sort_keys=True)

    def write(tmp: str) -> None:
        model.save(tmp)
        with zipfile.ZipFile(tmp, "a", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(METADATA, text)

    write_atomically(path, write)


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The ``modelspec.json`` of a model file written by ``modelspec train``, checked.

    Raises:
        SpecError: The file is missing, not a ``.keras`` archive, or carries no
            (or damaged) metadata; the problem names the file.
    """
    name = os.fspath(path)

    def fail(message: str, hint: str | None = None) -> SpecError:
        return SpecError([Problem.in_file("model-file", name, message, hint, path=("model",))])

    if os.path.isdir(name):
        raise fail("is a folder, not a .keras model file")
    try:
        with zipfile.ZipFile(name) as archive:
            try:
                info = archive.getinfo(METADATA)
            except KeyError:
                raise fail(
                    f"the model has no {METADATA}: it was not written by `modelspec train`",
                    "train it with `modelspec train SPEC -o MODEL.keras`, or use keras.saving.load_model",
                ) from None
            if info.file_size > MAX_METADATA_BYTES:
                raise fail(f"{METADATA} is {info.file_size} bytes; at most {MAX_METADATA_BYTES} are read")
            raw = archive.read(info)
    except FileNotFoundError:
        raise fail("no such file") from None
    except PermissionError:
        raise fail("permission denied: the file cannot be read") from None
    except (zipfile.BadZipFile, EOFError, ValueError) as e:
        raise fail(f"not a .keras model file (not a valid zip archive: {_message(e)})") from None
    except OSError as e:
        raise fail(f"cannot read the file: {e.strerror or e}") from None
    try:
        metadata = json.loads(raw.decode("utf-8"))
        problem = _check_metadata(metadata)
    except (UnicodeDecodeError, ValueError, RecursionError) as e:  # the file may come from anywhere
        problem = f"not JSON ({_message(e)[:200]})"
    if problem:
        raise fail(f"the model's {METADATA} is damaged: {problem}")
    return metadata


def _check_metadata(m: Any) -> str | None:
    """What is wrong with the metadata read from a model file (it may come from anywhere)."""

    def strings(v: Any) -> bool:
        return isinstance(v, list) and all(isinstance(s, str) for s in v)

    if not isinstance(m, dict):
        return "expected a mapping"
    if m.get("format") != METADATA_FORMAT:
        return f"unknown format {str(m.get('format'))[:20]!r}; this modelspec reads format {METADATA_FORMAT}"
    if not isinstance(m.get("sep"), str) or not m["sep"]:
        return "'sep' must be a string"
    if not strings(m.get("features")) or not m["features"]:
        return "'features' must be a list of column names"
    if m.get("structure") not in ("single", "list", "dict"):
        return "'structure' must be single, list or dict"
    outputs = m.get("outputs")
    if not isinstance(outputs, list) or not outputs or (m["structure"] == "single" and len(outputs) != 1):
        return "'outputs' must be a list of outputs"
    for i, o in enumerate(outputs):
        if not (
            isinstance(o, dict)
            and isinstance(o.get("name"), str)
            and isinstance(o.get("column"), str)
            and o.get("kind") in KINDS
            and isinstance(o.get("units"), int)
            and o["units"] >= 1
            and (o.get("labels") is None or strings(o["labels"]))
            and isinstance(o.get("from_logits"), bool)
        ):
            return f"output entry {i} is not valid"
    return None


@dataclass(frozen=True)
class Trained:
    """A model file written by ``modelspec train``, loaded: the model and its metadata."""

    model: Any
    metadata: dict[str, Any]
    path: str

    @property
    def outputs(self) -> list[dict[str, Any]]:
        return self.metadata["outputs"]


def load_trained(path: str | os.PathLike, custom_objects: dict[str, Any] | None = None) -> Trained:
    """Load a model file written by ``modelspec train``, in Keras's safe mode.

    Raises:
        SpecError: The file is missing, invalid, or Keras cannot load it.
    """
    metadata = read_metadata(path)
    keras = load_keras()

    name = os.fspath(path)
    try:
        model = keras.saving.load_model(name, custom_objects=custom_objects, safe_mode=True)
    except Exception as e:  # noqa: BLE001 - whatever Keras raises, the file is what is wrong
        raise SpecError(
            [
                Problem.in_file(
                    "model-file", name, f"Keras could not load the model: {_message(e)}", path=("model",)
                )
            ]
        ) from None
    return Trained(model, metadata, name)


def by_name(structure: str, names: list[str], value: Any) -> dict[str, Any]:
    """Output name -> value, from a value in the model's output structure (``single``, ``list``, ``dict``)."""
    if structure == "single":
        return {names[0]: value}
    if structure == "list":
        return dict(zip(names, value))
    return {name: value[name] for name in names}


def as_structure(structure: str, names: list[str], values: dict[str, Any]) -> Any:
    """Values by output name, in the model's output structure: what ``fit`` and ``evaluate`` take."""
    if structure == "single":
        return values[names[0]]
    if structure == "list":
        return [values[name] for name in names]
    return dict(values)


def _message(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text[:397] + "..." if len(text) > 400 else text or type(error).__name__
