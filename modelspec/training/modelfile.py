"""The model file: a ``.keras`` archive with ``modelspec.json`` inside, what ``predict`` needs.

Keras writes the model; modelspec adds one zip entry, ``modelspec.json``
(feature order, target columns, label names, output kinds, the CSV
separator; and the model's provenance, which ``modelspec export`` reads), which
Keras ignores when loading.
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass
from typing import Any

from ..errors import Problem, SpecError
from ..files import write_atomically
from ..keras.archive import MAX_METADATA_BYTES, METADATA, graph_size, read_config, read_metadata_bytes
from ..keras.backend import load_keras
from ..keras.export.provenance import KEY as PROVENANCE
from ..keras.export.provenance import recorded
from ..keras.messages import clipped
from ..keras.recursion import run_deep
from ..spec.models import literal_separator
from .targets import KINDS

METADATA_FORMAT = 1


def save_model(model: Any, metadata: dict[str, Any], path: str | os.PathLike) -> None:
    """Save ``model`` to a ``.keras`` file with ``modelspec.json`` inside, atomically.

    ``modelspec.json`` holds ``metadata`` and, for a model built by modelspec
    from a spec with blocks, its provenance (``modelspec export`` gives back
    that spec). Keras writes the file; the metadata is appended as one more zip entry
    before the file replaces ``path``, so a failure leaves ``path`` as it was.
    The optimizer's variables are made first when they do not exist yet (a
    model built but never trained): saved with only its step counter, Keras
    would warn on loading that it skips them.
    """
    text = _with_provenance(model, metadata)
    optimizer = getattr(model, "optimizer", None)
    if model.built and optimizer is not None and not optimizer.built:
        optimizer.build(model.trainable_variables)

    def write(tmp: str) -> None:
        # Keras saves only to a name ending in .keras; the temporary file of a device (-o /dev/null) need not.
        named = tmp if tmp.endswith(".keras") else tmp + ".keras"
        model.save(named)
        with zipfile.ZipFile(named, "a", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(METADATA, text)
        if named != tmp:
            os.replace(named, tmp)

    write_atomically(path, write)


def _with_provenance(model: Any, metadata: dict[str, Any]) -> str:
    """``modelspec.json``'s text: the metadata, and the model's provenance when it has one and it fits.

    A record that would take the entry past :data:`MAX_METADATA_BYTES` (a spec of
    thousands of lines) is left out: export then folds the graph instead.
    """
    text = json.dumps(metadata, indent=1, sort_keys=True)
    info = recorded(model)
    saved = info.to_json() if info is not None else None
    if saved is None:
        return text
    full = json.dumps({**metadata, PROVENANCE: saved}, indent=1, sort_keys=True)
    return full if len(full.encode("utf-8")) <= MAX_METADATA_BYTES else text


def built_metadata(spec: str, graph: Any) -> dict[str, Any]:
    """The ``modelspec.json`` of a model written by ``modelspec build``: never trained, so no columns or labels.

    ``predict`` and ``evaluate`` read it to say what is missing and which
    command makes it (:func:`read_metadata`).
    """
    return {
        "format": METADATA_FORMAT,
        "trained": False,
        "spec": spec,
        "inputs": list(graph.inputs),
        "outputs": graph.output_names(),
    }


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The ``modelspec.json`` of a model file written by ``modelspec train``, checked.

    The archive is opened by :func:`~modelspec.keras.archive.open_archive`: a
    regular file only, its zip directory checked before anything in it is read.

    Raises:
        SpecError: The file is missing, not a regular file, too large, not a
            ``.keras`` archive, over the archive limits (``model-archive``), or
            carries no (or damaged) metadata; the problem names the file.
    """
    name = os.fspath(path)

    def fail(message: str, hint: str | None = None) -> SpecError:
        return SpecError([Problem.in_file("model-file", name, message, hint, path=("model",))])

    raw = read_metadata_bytes(name)
    if raw is None:
        raise fail(
            f"the model has no {METADATA}: it was not written by `modelspec train` "
            "(a plain Keras model has none)",
            "train it with `modelspec train SPEC -o MODEL.keras`, or use keras.saving.load_model",
        )
    try:
        metadata = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:  # the file may come from anywhere
        raise fail(f"the model's {METADATA} is damaged: not JSON ({clipped(e)[:200]})") from None
    _untrained(metadata, fail, name)
    try:
        problem = _check_metadata(metadata)
    except (ValueError, RecursionError) as e:
        problem = clipped(e)[:200]
    if problem:
        raise fail(f"the model's {METADATA} is damaged: {problem}")
    return metadata


def _untrained(metadata: Any, fail: Any, name: str) -> None:
    """A model written by ``modelspec build``: say what ``predict`` lacks and which command makes it."""
    if isinstance(metadata, dict) and metadata.get("trained") is False:
        spec = metadata.get("spec") if isinstance(metadata.get("spec"), str) else "SPEC"
        raise fail(
            "the model was written by `modelspec build` and never trained: it has no feature columns, "
            "target columns or label names, which come from the training data",
            f"train it: `modelspec train {spec[:200]} -o {name}`; or load it with keras.saving.load_model "
            "and call model.predict on arrays",
        )


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
    try:
        literal_separator(m["sep"])
    except ValueError as e:
        return f"'sep': {e}"
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
        labels = o["labels"]
        if o["kind"] in ("binary", "regression") and o["units"] != 1:
            return f"output '{o['name'][:40]}' is {o['kind']} but has {o['units']} units (1 expected)"
        if labels is not None and len(labels) > (2 if o["kind"] == "binary" else o["units"]):
            return f"output '{o['name'][:40]}' has {len(labels)} labels for {o['units']} units"
        if labels is not None and (o["kind"] == "regression" or not labels):
            return f"output '{o['name'][:40]}' has labels it cannot use"
    if len({o["name"] for o in outputs}) != len(outputs):
        return "two outputs have the same name"
    return None


def fit_problem(keras: Any, model: Any, metadata: dict[str, Any]) -> str | None:
    """What in the metadata does not fit the model Keras loaded (its inputs, outputs, units); None when it fits.

    The metadata may come from anywhere: ``predict`` must not index past the
    model's outputs or units because ``modelspec.json`` says so.
    """
    inputs = list(getattr(model, "inputs", None) or [])
    features = len(metadata["features"])
    if len(inputs) != 1:
        return f"the model has {len(inputs)} inputs; a model trained from a CSV has one"
    width = inputs[0].shape[-1] if len(inputs[0].shape) == 2 else None
    if width != features:
        return f"the model's input takes {width} values a row, but the metadata names {features} features"
    try:  # symbolic: nothing is computed
        outputs = model.compute_output_spec(keras.KerasTensor((None, features)))
    except Exception as e:  # noqa: BLE001 - whatever Keras raises, the file is what is wrong
        return f"the model cannot be called on rows of {features} features ({clipped(e)[:100]})"
    structure = metadata["structure"]
    names = [o["name"] for o in metadata["outputs"]]
    if structure == "dict":
        if not isinstance(outputs, dict) or set(outputs) != set(names):
            return f"the metadata names outputs {', '.join(names)[:100]}; the model's outputs differ"
    elif structure == "list":
        if not isinstance(outputs, (list, tuple)) or len(outputs) != len(names):
            have = len(outputs) if isinstance(outputs, (list, tuple)) else 1
            return f"the metadata names {len(names)} outputs; the model has {have}"
    elif isinstance(outputs, (list, tuple, dict)):
        return f"the metadata names 1 output; the model has {len(outputs)}"
    shapes = by_name(structure, names, outputs)
    for o in metadata["outputs"]:
        shape = tuple(shapes[o["name"]].shape)
        units = shape[-1] if len(shape) == 2 else 1 if len(shape) == 1 else None
        if units != o["units"]:
            return f"output '{o['name'][:40]}' has shape {shape[1:]} in the model; the metadata says {o['units']} units"
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
    # Over the layer limit, refused before Keras reads it; under it, Keras reads a deep model's
    # configuration recursively: room for as many layers as config.json describes.
    layers, _ = graph_size(read_config(name))
    try:
        model = run_deep(
            lambda: keras.saving.load_model(name, custom_objects=custom_objects, safe_mode=True), layers
        )
    except Exception as e:  # noqa: BLE001 - whatever Keras raises, the file is what is wrong
        raise SpecError(
            [
                Problem.in_file(
                    "model-file", name, f"Keras could not load the model: {clipped(e)}", path=("model",)
                )
            ]
        ) from None
    problem = fit_problem(keras, model, metadata)
    if problem is not None:
        raise SpecError(
            [
                Problem.in_file(
                    "model-file",
                    name,
                    f"the model's {METADATA} does not fit the model: {problem}",
                    "a model file is written whole by `modelspec train`; train it again",
                    path=("model",),
                )
            ]
        )
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
