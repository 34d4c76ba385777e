"""Serving files: ONNX, TFLite (LiteRT) and SavedModel, written by Keras's ``model.export`` and checked.

modelspec never converts a model itself: Keras writes the file (through
tf2onnx, the TFLite converter, ``tf.saved_model``, ...). What modelspec adds:

* which backend can write which format is known before any work
  (:func:`serving_problem`, from the command line alone, no Keras import);
* the file is written beside its target and moved in only once it has been
  run (onnxruntime, the TFLite interpreter, the SavedModel's ``serve``
  endpoint) on a random batch and its outputs match the Keras model's
  within :data:`TOLERANCE` (:func:`exported`); a mismatch names the largest
  difference and leaves the target as it was.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..errors import Problem, SpecError
from ..files import atomic_path
from .backend import install_hint, load_keras

TOLERANCE = 1e-4
"""Largest difference allowed between the serving file's outputs and Keras's: ``|a - b| <= TOLERANCE * (1 + |b|)``."""
BATCH = 2
"""Rows of the random batch the serving file is checked on."""
FREE_AXIS = 8
"""The length given to a free (``None``) axis other than the batch in the random batch."""


@dataclass(frozen=True)
class Format:
    """A serving format: its name on the command line, Keras's name for it, and its file suffix."""

    name: str
    keras_name: str
    suffix: str | None  # None: a folder
    title: str
    writers: dict[str, tuple[str, ...]]  # backend -> the modules Keras needs to write it there
    runner: tuple[str, ...]  # modules that can run it (any one of them)


FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format(
            "onnx", "onnx", ".onnx", "ONNX", {"tensorflow": ("tf2onnx",), "jax": ("jax2onnx",), "torch": ("onnx",)},
            ("onnxruntime",),
        ),
        Format(
            "tflite", "litert", ".tflite", "TFLite (LiteRT)", {"tensorflow": (), "torch": ("litert_torch",)},
            ("ai_edge_litert", "tensorflow"),
        ),
        Format(
            "saved_model", "tf_saved_model", None, "TensorFlow SavedModel",
            {"tensorflow": (), "jax": ("tensorflow",), "torch": ("torch_xla", "tensorflow")},
            ("tensorflow",),
        ),
    )
}  # fmt: skip
"""Keras 3.15's rules (``keras/src/export``): JAX cannot write TFLite; the rest needs the modules named."""

EXTRA = {
    "tf2onnx": "onnx",
    "onnx": "onnx",
    "onnxruntime": "onnx",
    "tensorflow": "tensorflow",
}
"""Module -> the modelspec extra that installs it."""
PIP = {"tf2onnx": "tf2onnx", "jax2onnx": "jax2onnx", "litert_torch": "litert-torch", "torch_xla": "torch_xla"}


def format_of(path: str, requested: str | None) -> str | None:
    """The serving format an output path and ``--format`` ask for; None for a ``.keras`` model.

    Raises:
        ValueError: The two disagree, or the path names no known format (the message says what is known).
    """
    suffix = os.path.splitext(path)[1].lower()
    by_suffix = {f.suffix: f.name for f in FORMATS.values() if f.suffix}
    if requested in (None, "keras"):
        if suffix == ".keras":
            return None
        if suffix in by_suffix:
            if requested == "keras":
                raise ValueError(f"--format keras writes a .keras file, got '{path}'")
            return by_suffix[suffix]
        raise ValueError(
            f"the output must end in .keras, .onnx or .tflite (or use --format saved_model -o FOLDER), got '{path}'"
        )
    wanted = FORMATS[requested]
    if wanted.suffix is None:
        if suffix in (".keras", *by_suffix):
            raise ValueError(f"--format {requested} writes a folder, got the file name '{path}'")
        return requested
    if suffix != wanted.suffix:
        raise ValueError(f"--format {requested} writes a {wanted.suffix} file, got '{path}'")
    return requested


def configured_backend() -> str:
    """The backend Keras will use, read as Keras reads it (``KERAS_BACKEND``, then ``keras.json``), without importing it."""
    name = os.environ.get("KERAS_BACKEND")
    if name:
        return name
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    with (
        contextlib.suppress(OSError, ValueError, AttributeError),
        open(os.path.join(home, "keras.json"), encoding="utf-8") as f,
    ):
        found = json.load(f).get("backend")
        if isinstance(found, str) and found:
            return found
    return "tensorflow"


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def serving_problem(fmt: str, backend: str | None = None) -> str | None:
    """Why ``fmt`` cannot be written here (the backend cannot, or a module is missing); None when it can.

    Args:
        fmt: A key of :data:`FORMATS`.
        backend: The Keras backend (default: :func:`configured_backend`).
    """
    f = FORMATS[fmt]
    backend = backend or configured_backend()
    if backend not in f.writers:
        able = " or ".join(f.writers)
        return f"Keras cannot write {f.title} on the {backend} backend, only on {able} (set KERAS_BACKEND)"
    missing = [m for m in f.writers[backend] if not _installed(m)]
    if not any(_installed(m) for m in f.runner):
        missing.append(f.runner[-1] if fmt != "onnx" else "onnxruntime")
    if missing:
        return f"writing and checking {f.title} on the {backend} backend needs {', '.join(missing)}: {_install(missing)}"
    return None


def _install(modules: list[str]) -> str:
    extras = sorted({EXTRA[m] for m in modules if m in EXTRA})
    others = [PIP.get(m, m) for m in modules if m not in EXTRA]
    parts = [install_hint(e) for e in extras] + ([f"pip install {' '.join(others)}"] if others else [])
    return " and ".join(parts)


def serving_check(fmt: str, output: str) -> None:
    """Refuse, before any work, a format this backend cannot write or this installation cannot check.

    Raises:
        SpecError: ``serving-format``, naming what is missing and how to get it.
    """
    problem = serving_problem(fmt)
    if problem is not None:
        raise SpecError([Problem.in_file("serving-format", output, problem, path=("output",))])


@dataclass(frozen=True)
class Checked:
    """A serving file that answered like the Keras model: its path, size and the largest difference seen."""

    path: str
    format: str
    bytes: int
    difference: float


def random_batch(model: Any, seed: int = 0) -> list[Any]:
    """One random batch for each model input: floats in [-1, 1), integers 0 or 1 (valid for any vocabulary).

    On the PyTorch backend Keras exports fixed shapes, every free axis made 1
    (``keras/src/export/onnx.py``, ``litert.py``), so the batch has 1 row there.

    Raises:
        SpecError: The model has no inputs yet (an unbuilt ``keras.Sequential``).
    """
    import numpy as np

    try:
        inputs = list(model.inputs or [])
    except (AttributeError, ValueError):  # a Sequential never built has no inputs at all
        inputs = []
    if not inputs:
        raise SpecError(
            [
                Problem.in_file(
                    "serving-format",
                    model.name,
                    "the model has no inputs yet (a list of layers without an input is built on its first call): "
                    "a serving file needs the input's shape",
                    "give the spec an input: `inputs: {x: {shape: [...]}}`",
                )
            ]
        )
    rng = np.random.default_rng(seed)
    fixed = load_keras().backend.backend() == "torch"
    rows, free = (1, 1) if fixed else (BATCH, FREE_AXIS)
    batch = []
    for tensor in inputs:
        shape = [rows] + [free if d is None else d for d in tuple(tensor.shape)[1:]]
        dtype = np.dtype(tensor.dtype)
        if dtype.kind in "iu":
            batch.append(rng.integers(0, 2, size=shape).astype(dtype))
        elif dtype.kind == "b":
            batch.append(rng.integers(0, 2, size=shape).astype(bool))
        else:
            batch.append(rng.uniform(-1, 1, size=shape).astype(dtype))
    return batch


def _flat(keras: Any, value: Any) -> list[Any]:
    import numpy as np

    return [np.asarray(keras.ops.convert_to_numpy(v)) for v in keras.tree.flatten(value)]


def _output_names(model: Any) -> list[str]:
    """The model's outputs in the order ``keras.tree.flatten`` gives them (dict outputs: sorted keys)."""
    structure = getattr(model, "_outputs_struct", None)
    if isinstance(structure, dict):
        return sorted(structure)
    names = getattr(model, "output_names", None)
    if names:
        return list(names)
    try:  # a Sequential: its last layer
        return [t._keras_history.operation.name for t in model.outputs]
    except (AttributeError, ValueError):
        return []


def _run_onnx(path: str, model: Any, batch: list[Any]) -> list[Any]:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    feeds = feeds_for([i.name for i in session.get_inputs()], model, batch)
    return session.run(None, feeds)


def feeds_for(names: list[str], model: Any, batch: list[Any]) -> dict[str, Any]:
    """The serving file's input names -> the batch, matched by the model's input names, else in order."""
    own = [t.name for t in model.inputs]
    by_name = dict(zip(own, batch))
    matched = {}
    for i, name in enumerate(names):
        key = next((k for k in own if name == k or name.split(":")[0].endswith(k)), None)
        matched[name] = by_name[key] if key is not None else batch[i]
    return matched


def _run_tflite(path: str, model: Any, batch: list[Any]) -> list[Any]:
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter
    interpreter = Interpreter(model_path=path)
    runner = interpreter.get_signature_runner()
    details = runner.get_input_details()
    found = runner(**feeds_for(list(details), model, batch))  # the runner resizes the batch axis itself
    return [found[k] for k in sorted(found, key=_numbered)]


def _numbered(key: str) -> tuple[int, str]:
    """``output_10`` after ``output_2``: TFLite names a signature's outputs ``output_<i>``."""
    head, _, tail = key.rpartition("_")
    return (int(tail), head) if tail.isdigit() else (0, key)


def _run_saved_model(path: str, model: Any, batch: list[Any]) -> list[Any]:
    import keras
    import tensorflow as tf

    loaded = tf.saved_model.load(path)
    args = batch[0] if len(batch) == 1 else batch
    return _flat(keras, loaded.serve(args))


RUNNERS = {"onnx": _run_onnx, "tflite": _run_tflite, "saved_model": _run_saved_model}


def check_artifact(
    model: Any, path: str, fmt: str, *, tolerance: float = TOLERANCE, name: str | None = None
) -> float:
    """Run the serving file on a random batch and compare with the Keras model.

    Args:
        name: The file named by a problem (default: ``path``; the target when ``path`` is a temporary).

    Returns:
        The largest absolute difference between the file's outputs and Keras's.

    Raises:
        SpecError: ``serving-mismatch``: an output differs beyond ``tolerance``
            (naming the output, the largest difference and where), or the
            file gives another number of outputs or other shapes.
    """
    import warnings

    import numpy as np

    keras = load_keras()
    shown = name or path
    batch = random_batch(model)
    expected = _flat(keras, model(batch[0] if len(batch) == 1 else batch, training=False))
    names = _output_names(model)
    try:
        with warnings.catch_warnings():  # tf.lite.Interpreter's deprecation notice, numpy 2 notes
            warnings.simplefilter("ignore")
            found = [np.asarray(v) for v in RUNNERS[fmt](path, model, batch)]
    except Exception as e:  # noqa: BLE001 - whatever the runtime raises, the file does not run
        raise _mismatch(
            shown, fmt, f"the {FORMATS[fmt].title} file does not run: {type(e).__name__}: {_short(e)}"
        ) from None
    if len(found) != len(expected):
        raise _mismatch(shown, fmt, f"the file gives {len(found)} outputs, the Keras model {len(expected)}")
    worst = 0.0
    for i, (want, got) in enumerate(zip(expected, found)):
        output = names[i] if i < len(names) else f"output {i}"
        if got.shape != want.shape:
            raise _mismatch(
                shown, fmt, f"output '{output}' has shape {got.shape} in the file, {want.shape} in Keras"
            )
        if want.size == 0:
            continue
        difference = np.abs(got.astype(np.float64) - want.astype(np.float64))
        worst = max(worst, float(difference.max()))
        excess = difference - tolerance * (1 + np.abs(want.astype(np.float64)))
        if not np.isfinite(difference).all() or excess.max() > 0:
            at = np.unravel_index(
                int(np.nanargmax(np.where(np.isfinite(difference), excess, np.inf))), want.shape
            )
            raise _mismatch(
                shown,
                fmt,
                f"output '{output}' differs from Keras by up to {float(np.nanmax(difference)):.3g} "
                f"(at {tuple(int(a) for a in at)}: {float(got[at]):.6g} against {float(want[at]):.6g}), "
                f"beyond the tolerance of {tolerance:g}",
            )
    return worst


def _mismatch(path: str, fmt: str, message: str) -> SpecError:
    return SpecError(
        [
            Problem.in_file(
                "serving-mismatch",
                path,
                message,
                f"nothing was written; keep the .keras model, or report the layer to Keras ({FORMATS[fmt].title} export)",
                path=("output",),
            )
        ]
    )


def _short(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text[:300] + "..." if len(text) > 300 else text


def _write(model: Any, tmp: str, fmt: str) -> None:
    import warnings

    keras = load_keras()
    batch = random_batch(model)  # refuses a model without inputs
    if not getattr(model, "_called", True) or not model.built:  # Keras exports only a model called once
        model(batch[0] if len(batch) == 1 else batch, training=False)
    try:
        with _quiet_converters(), warnings.catch_warnings(), _normalization_reads_its_variables(keras, model):
            warnings.simplefilter("ignore")
            model.export(tmp, format=FORMATS[fmt].keras_name, verbose=False)
    except Exception as e:  # noqa: BLE001 - Keras's converters raise anything; the model is what it cannot take
        raise SpecError(
            [
                Problem.in_file(
                    "serving-format",
                    model.name,
                    f"Keras could not write the model as {FORMATS[fmt].title} on the "
                    f"{keras.backend.backend()} backend: {type(e).__name__}: {_short(e)}",
                    "keep the .keras model, or try another format",
                )
            ]
        ) from None


@contextlib.contextmanager
def _normalization_reads_its_variables(keras: Any, model: Any) -> Iterator[None]:
    """While exporting, adapted ``Normalization`` layers compute from their variables, not from cached tensors.

    After ``adapt`` Keras keeps the mean and variance as eager tensors; a
    traced function captures them as extra inputs, which tf2onnx then leaves
    as inputs of the ONNX graph (a served model would need the statistics
    fed in). Reading the layer's own ``adapt_mean`` / ``adapt_variance``
    variables inside the call lets the converter freeze them as constants,
    so the file takes the raw features. The computation is Keras's own.
    """
    ops = keras.ops
    patched = []
    for layer in _all_layers(model):
        if type(layer).__name__ != "Normalization" or not hasattr(layer, "adapt_mean"):
            continue
        if not hasattr(layer, "_broadcast_shape") or "call" in vars(layer):
            continue

        def call(inputs: Any, layer: Any = layer) -> Any:
            dtype = layer.compute_dtype
            mean = ops.cast(ops.reshape(layer.adapt_mean, layer._broadcast_shape), dtype)
            variance = ops.cast(ops.reshape(layer.adapt_variance, layer._broadcast_shape), dtype)
            scale = ops.maximum(ops.sqrt(variance), keras.backend.epsilon())
            x = ops.cast(inputs, dtype)
            return (
                ops.add(mean, ops.multiply(x, scale))
                if layer.invert
                else ops.divide(ops.subtract(x, mean), scale)
            )

        object.__setattr__(layer, "call", call)  # this instance only, untracked
        patched.append(layer)
    try:
        yield
    finally:
        for layer in patched:
            object.__delattr__(layer, "call")


def _all_layers(model: Any) -> Iterator[Any]:
    for layer in getattr(model, "layers", []):
        yield layer
        yield from _all_layers(layer)


@contextlib.contextmanager
def _quiet_converters() -> Iterator[None]:
    """tf2onnx and the TFLite converter log each step through Python's logging; keep the terminal for results."""
    import logging

    names = ("tf2onnx", "tensorflow", "absl", "jax2onnx")
    levels = {n: logging.getLogger(n).level for n in names}
    for n in names:
        logging.getLogger(n).setLevel(logging.ERROR)
    try:
        yield
    finally:
        for n, level in levels.items():
            logging.getLogger(n).setLevel(level)


@contextlib.contextmanager
def exported(model: Any, path: str | os.PathLike, fmt: str) -> Iterator[Checked]:
    """Write ``model`` as ``fmt`` beside ``path`` and check it; it replaces ``path`` when the block succeeds.

    The file (or folder) is written under a temporary name in the target's
    folder, run and compared with Keras (:func:`check_artifact`), and only
    then, once the ``with`` block has also succeeded (the other outputs of
    the command written), moved over ``path``. On any failure ``path`` is as
    it was and nothing temporary is left.

    Raises:
        SpecError: ``serving-format`` (Keras cannot write it), ``serving-mismatch``
            (it does not answer like Keras), ``output-file`` (an existing folder
            that is not a SavedModel is in the way).
    """
    path = os.fspath(path)
    if FORMATS[fmt].suffix is not None:
        with atomic_path(path) as tmp:
            _write(model, tmp, fmt)
            worst = check_artifact(model, tmp, fmt, name=path)
            yield Checked(path, fmt, os.path.getsize(tmp), worst)
        return
    _refuse_folder(path)
    parent = os.path.dirname(os.path.abspath(path))
    work = tempfile.mkdtemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=parent)
    tmp = os.path.join(work, "model")
    try:
        _write(model, tmp, fmt)
        worst = check_artifact(model, tmp, fmt, name=path)
        yield Checked(path, fmt, _folder_bytes(tmp), worst)
        old = os.path.join(work, "old")
        if os.path.lexists(path):
            os.replace(path, old)
        try:
            os.replace(tmp, path)
        except OSError:
            if os.path.lexists(old):
                os.replace(old, path)
            raise
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _refuse_folder(path: str) -> None:
    """Only a SavedModel folder (or nothing) may stand where a SavedModel is written: nothing else is replaced."""
    if not os.path.lexists(path):
        return
    if (
        os.path.isdir(path)
        and not os.path.islink(path)
        and os.path.isfile(os.path.join(path, "saved_model.pb"))
    ):
        return
    raise SpecError(
        [
            Problem.in_file(
                "output-file",
                path,
                "cannot write the SavedModel: something that is not a SavedModel folder is in the way",
                "choose a new folder name; modelspec replaces only an earlier SavedModel",
                path=("output",),
            )
        ]
    )


def _folder_bytes(path: str) -> int:
    return sum(os.path.getsize(os.path.join(root, n)) for root, _, names in os.walk(path) for n in names)


def export_checked(model: Any, path: str | os.PathLike, fmt: str) -> Checked:
    """Write ``model`` to ``path`` as ``fmt`` (``onnx``, ``tflite``, ``saved_model``), checked against Keras."""
    with exported(model, path, fmt) as checked:
        pass
    return checked


__all__ = [
    "FORMATS",
    "TOLERANCE",
    "Checked",
    "check_artifact",
    "configured_backend",
    "export_checked",
    "exported",
    "format_of",
    "random_batch",
    "serving_check",
    "serving_problem",
]
