"""Shared test helpers: paths, and comparing a compiled model with a hand-written one."""

from __future__ import annotations

import os
import pathlib

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ROOT = pathlib.Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
DATA = ROOT / "data"
CASES = pathlib.Path(__file__).resolve().parent / "cases"


@pytest.fixture
def write_spec(tmp_path):
    """Write spec text to a file in a temporary folder; returns its path."""

    def write(text: str, name: str = "spec.yaml") -> pathlib.Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write


def random_inputs(model, batch: int = 3, free: int = 5, seed: int = 0):
    """Random data for every input of ``model`` (free axes get length ``free``)."""
    rng = np.random.default_rng(seed)
    data = []
    for tensor in model.inputs:
        shape = [batch] + [free if d is None else d for d in tensor.shape[1:]]
        if "int" in str(tensor.dtype):
            data.append(rng.integers(1, 50, size=shape).astype(str(tensor.dtype)))
        else:
            data.append(rng.normal(size=shape).astype("float32"))
    return data[0] if len(data) == 1 else data


def numpy(tensor):
    """A backend tensor (TensorFlow, JAX or PyTorch) as a numpy array."""
    import keras

    return np.asarray(keras.ops.convert_to_numpy(tensor))


def flat(outputs):
    """Model outputs (a tensor, list or dict) as a list of numpy arrays, in a fixed order."""
    if isinstance(outputs, dict):
        return [numpy(outputs[k]) for k in sorted(outputs)]
    if isinstance(outputs, (list, tuple)):
        return [numpy(o) for o in outputs]
    return [numpy(outputs)]


def assert_same_network(built, expected, data=None):
    """The compiled model equals the hand-written one.

    Same model class, same layer classes in order, same parameter count, and
    the same outputs on random input once the hand-written model's weights are
    copied into the compiled one.
    """
    assert type(built) is type(expected), (type(built), type(expected))
    assert [type(layer).__name__ for layer in built.layers] == [
        type(layer).__name__ for layer in expected.layers
    ]
    assert built.count_params() == expected.count_params()
    assert [w.shape for w in built.get_weights()] == [w.shape for w in expected.get_weights()]
    built.set_weights(expected.get_weights())
    data = random_inputs(expected) if data is None else data
    got, want = flat(built(data, training=False)), flat(expected(data, training=False))
    assert len(got) == len(want)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)
