"""Importing Keras and seeding it, on whichever backend it runs (TensorFlow, JAX or PyTorch).

Keras is imported here, lazily, by every part of modelspec that needs it, so a
machine without a backend gets one clear sentence instead of a traceback.
Seeding follows ``keras.utils.set_random_seed`` without importing TensorFlow
on the other backends (that function seeds TensorFlow whenever it is installed).
"""

from __future__ import annotations

import random
from typing import Any

from ..errors import Problem, SpecError

INSTALL = "pip install 'modelspec[tensorflow]' (or [jax], [torch]) and set KERAS_BACKEND to tensorflow, jax or torch"


class BackendMissing(SpecError):
    """Keras cannot run: no backend (TensorFlow, JAX or PyTorch) can be imported."""


def load_keras() -> Any:
    """The ``keras`` module, imported with its backend.

    Raises:
        BackendMissing: The backend Keras is set to use cannot be imported.
    """
    try:
        import keras
    except ImportError as e:  # keras itself, or the backend it imports
        import os

        backend = os.environ.get("KERAS_BACKEND", "tensorflow")
        missing = getattr(e, "name", None) or str(e)
        raise BackendMissing(
            [
                Problem.in_file(
                    "backend-missing",
                    "modelspec",
                    f"Keras cannot run: its {backend!r} backend cannot be imported ({missing}): {INSTALL}",
                )
            ]
        ) from None
    return keras


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
