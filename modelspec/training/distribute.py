"""Distributed training through the engines that exist: ``tf.distribute`` and ``keras.distribution``."""

from __future__ import annotations

import contextlib
import json
import os
from typing import Any

from ..errors import Origin, SpecError


def distribution_scope(keras: Any, name: str, at: Origin) -> tuple[Any, int]:
    """The context to build and fit in for the distribution ``name``, and how many replicas it trains on.

    Args:
        keras: The ``keras`` module.
        name: One of :data:`modelspec.spec.DISTRIBUTIONS`.
        at: Where the distribution was asked for (``train.distribution``, or the command line).

    Raises:
        SpecError: The backend does not have the engine, or it cannot start.
    """
    if name == "none":
        return contextlib.nullcontext(), 1
    backend = keras.backend.backend()

    def fail(message: str, hint: str | None = None) -> SpecError:
        return SpecError([at.problem("training-config", message, hint)])

    if name in ("mirrored", "multi_worker_mirrored"):
        if backend != "tensorflow":
            raise fail(
                f"distribution '{name}' is a tf.distribute strategy: it needs the TensorFlow backend, "
                f"and Keras runs on {backend}",
                "set KERAS_BACKEND=tensorflow, or use distribution: data_parallel with KERAS_BACKEND=jax",
            )
        import tensorflow as tf  # tf.distribute has no Keras 3 equivalent on this backend

        try:
            strategy = (
                tf.distribute.MirroredStrategy()
                if name == "mirrored"
                else tf.distribute.MultiWorkerMirroredStrategy()  # reads TF_CONFIG
            )
        except (RuntimeError, ValueError) as e:
            text = " ".join(str(e).split())[:400]
            raise fail(f"TensorFlow could not start the '{name}' strategy: {text}") from None
        return strategy.scope(), int(strategy.num_replicas_in_sync)
    if backend != "jax":
        raise fail(
            f"distribution 'data_parallel' is keras.distribution.DataParallel: it needs the JAX backend, "
            f"and Keras runs on {backend}",
            "set KERAS_BACKEND=jax, or use distribution: mirrored on TensorFlow",
        )
    devices = keras.distribution.list_devices()
    return keras.distribution.DataParallel(devices=devices).scope(), len(devices)


def is_chief(distribution: str) -> bool:
    """Whether this process writes the outputs (the chief of a multi-worker run, else worker 0; always alone)."""
    if distribution != "multi_worker_mirrored":
        return True
    try:
        config = json.loads(os.environ.get("TF_CONFIG", "") or "{}")
        task = config.get("task", {})
        kind, index = task.get("type"), int(task.get("index", 0))
        has_chief = "chief" in config.get("cluster", {})
    except (ValueError, TypeError, AttributeError):
        return True
    if kind is None:
        return True
    return kind == "chief" if has_chief else (kind == "worker" and index == 0)


def fit_inputs(distribution: str, x: Any, y: Any, batch_size: int) -> tuple[tuple, dict[str, Any]]:
    """What ``fit`` and ``evaluate`` take: the arrays, or, across workers, a ``tf.data.Dataset``.

    Several workers each take their shard of one batched dataset (sharded by
    data, as the arrays are the same on every worker); Keras cannot split plain
    arrays across workers.

    Returns:
        The positional and keyword arguments for ``fit``/``evaluate``.
    """
    if distribution != "multi_worker_mirrored":
        return (x, y), {"batch_size": batch_size}
    import tensorflow as tf

    targets = tuple(y) if isinstance(y, list) else y
    dataset = tf.data.Dataset.from_tensor_slices((x, targets)).batch(batch_size)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return (dataset.with_options(options),), {}
