"""Importing Keras and seeding it, on whichever backend it runs (TensorFlow, JAX or PyTorch).

Keras is imported here, lazily, by every part of modelspec that needs it, so a
machine without a backend gets one clear sentence instead of a traceback.
Seeding follows ``keras.utils.set_random_seed`` without importing TensorFlow
on the other backends (that function seeds TensorFlow whenever it is installed).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import random
import sys
import tempfile
from collections.abc import Iterator
from typing import Any

from ..errors import Problem, SpecError

DISTRIBUTION = "keras-modelspec"
"""The name modelspec is installed by (``pip install keras-modelspec``); the import and the command are ``modelspec``."""
BACKENDS = ("tensorflow", "jax", "torch")


def install_hint(extra: str) -> str:
    """The pip command that installs modelspec with one of its extras: ``pip install 'keras-modelspec[onnx]'``."""
    return f"pip install '{DISTRIBUTION}[{extra}]'"


def installed_backends() -> list[str]:
    """The Keras backends that can be found in this environment (not imported)."""
    found = []
    for name in BACKENDS:
        try:
            if importlib.util.find_spec(name) is not None:
                found.append(name)
        except (ImportError, ValueError):
            pass
    return found


def backend_hint(backend: str) -> str:
    """How to get a working backend: one that is installed (by ``KERAS_BACKEND``), or the install command."""
    others = [b for b in installed_backends() if b != backend]
    install = f"{install_hint(backend if backend in BACKENDS else 'tensorflow')} (or [jax], [torch])"
    if others:
        return f"run with KERAS_BACKEND={others[0]} ({', '.join(others)} installed here), or {install}"
    return f"{install} and set KERAS_BACKEND to tensorflow, jax or torch"


class BackendMissing(SpecError):
    """Keras cannot run: no backend (TensorFlow, JAX or PyTorch) can be imported."""


def load_keras() -> Any:
    """The ``keras`` module, imported with its backend.

    Raises:
        BackendMissing: The backend Keras is set to use cannot be imported.
    """
    if "keras" in sys.modules:
        return sys.modules["keras"]
    try:
        with _startup_lines_dropped():
            import keras

            if keras.backend.backend() == "tensorflow":  # absl's CUDA probe (cuInit) speaks on first use
                import tensorflow as tf

                tf.config.list_physical_devices()
    except ImportError as e:  # keras itself, or the backend it imports
        backend = os.environ.get("KERAS_BACKEND", "tensorflow")
        missing = getattr(e, "name", None) or str(e)
        raise BackendMissing(
            [
                Problem.in_file(
                    "backend-missing",
                    "modelspec",
                    f"Keras cannot run: its {backend!r} backend cannot be imported ({missing}): "
                    + backend_hint(backend),
                )
            ]
        ) from None
    return keras


STARTUP_LINES = (
    "WARNING: All log messages before absl::InitializeLog()",
    "oneDNN custom operations are on",
    "cudart_stub.cc",
    "Could not find cuda drivers",
    "cpu_feature_guard.cc",
    "This TensorFlow binary is optimized",
    "To enable the following instructions",
    "TF-TRT Warning",
    "Unable to register cu",
    "computation placer already registered",
    "failed call to cuInit",
    "Created TensorFlow Lite XNNPACK delegate",
    "E0000 00:00:",
    "W0000 00:00:",
    "I0000 00:00:",
)
"""Start-up lines TensorFlow and absl write straight to file descriptor 2, past Python's logging
(``TF_CPP_MIN_LOG_LEVEL`` does not reach the ones absl prints before it is initialized)."""


def startup_line(line: str) -> bool:
    """Whether a line on stderr is one of the backends' start-up lines."""
    return any(marker in line for marker in STARTUP_LINES)


@contextlib.contextmanager
def _startup_lines_dropped() -> Iterator[None]:
    """While Keras and its backend are imported, drop their start-up lines from file descriptor 2.

    Other lines written there meanwhile are written back afterwards, so a real
    native error is never lost. ``MODELSPEC_VERBOSE=1`` (``modelspec --verbose``)
    keeps everything.
    """
    if os.environ.get("MODELSPEC_VERBOSE"):
        yield
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            kept = [
                line
                for line in capture.read().decode("utf-8", "replace").splitlines()
                if line and not startup_line(line)
            ]
            if kept:
                print("\n".join(kept), file=sys.stderr)


def set_seed(keras: Any, seed: int) -> None:
    """Seed Python, NumPy, Keras's global seed generator and the backend, as ``keras.utils.set_random_seed``.

    On JAX and PyTorch it does not import TensorFlow (which Keras's function
    does whenever TensorFlow is installed), so a run uses only its own backend.
    """
    if keras.backend.backend() == "tensorflow":
        keras.utils.set_random_seed(seed)
        return
    import numpy as np

    try:  # the global seed Keras's layers draw from when given none
        from keras.src.backend.common import global_state
        from keras.src.random import seed_generator
        from keras.src.utils.rng_utils import GLOBAL_RANDOM_SEED
    except ImportError:  # another Keras layout: its public function, TensorFlow or not
        keras.utils.set_random_seed(seed)
        return
    global_state.set_global_attribute(GLOBAL_RANDOM_SEED, seed)
    global_state.set_global_attribute(seed_generator.GLOBAL_SEED_GENERATOR, None)
    random.seed(seed)
    np.random.seed(seed)
    if keras.backend.backend() == "torch":
        import torch

        torch.manual_seed(seed)
