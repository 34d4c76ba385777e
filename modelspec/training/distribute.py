"""Distributed training through the engines that exist: ``tf.distribute`` and ``keras.distribution``.

``keras.distribution`` (JAX) runs across processes: each process runs the
same training, joined by ``keras.distribution.initialize`` (the
``KERAS_DISTRIBUTION_*`` variables; :mod:`modelspec.training.launch` sets them
for ``processes: N`` on this machine), and feeds its own part of every global
batch (:mod:`modelspec.training.batches`).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from dataclasses import dataclass, field
from typing import Any

from ..errors import Origin, SpecError
from ..keras.messages import clipped
from ..spec.models import DistributionSpec

JOIN_VARIABLES = (
    "KERAS_DISTRIBUTION_JOB_ADDRESSES",
    "KERAS_DISTRIBUTION_NUM_PROCESSES",
    "KERAS_DISTRIBUTION_PROCESS_ID",
)
"""Keras's variables that make a process one of a job across processes (read by keras.distribution.initialize)."""

KERAS_DISTRIBUTION = ("data_parallel", "model_parallel")
"""The distributions that run on keras.distribution (JAX)."""

TORCH_DISTRIBUTION = (
    "Keras 3.15 has no keras.distribution on PyTorch (the work is under way after 3.15, "
    "keras-team/keras#23418): a later Keras adds it"
)


@dataclass(frozen=True)
class Setting:
    """What ``train.distribution`` asks for, short form or long.

    Attributes:
        type: none, mirrored, multi_worker_mirrored, data_parallel or model_parallel.
        processes: data_parallel: processes `modelspec train` starts on this machine (None: one).
        mesh: model_parallel: axis name -> size.
        batch_axis: model_parallel: the axis the data is split over.
        layouts: model_parallel: variable-path regex -> one mesh axis (or None) per dimension.
    """

    type: str
    processes: int | None = None
    mesh: dict[str, int] = field(default_factory=dict)
    batch_axis: str = "batch"
    layouts: dict[str, list[str | None]] = field(default_factory=dict)

    @classmethod
    def of(cls, value: str | DistributionSpec) -> Setting:
        if isinstance(value, str):
            return cls(value)
        return cls(
            value.type,
            value.processes,  # type: ignore[arg-type]
            dict(value.mesh or {}),  # type: ignore[arg-type]
            value.batch_axis or "batch",
            {k: list(v) for k, v in value.layouts.items()},  # type: ignore[arg-type]
        )


@dataclass(frozen=True)
class Plan:
    """How this process trains.

    Attributes:
        scope: The context to build and fit in.
        replicas: Replicas that train in sync.
        shards: How many parts each global batch is split into (the devices along the batch axis);
            0 when Keras splits the batches itself (no distribution, tf.distribute).
        processes: Processes in the job.
        process: This process's index (0 writes the outputs).
    """

    scope: Any
    replicas: int = 1
    shards: int = 0
    processes: int = 1
    process: int = 0


def joining() -> bool:
    """Whether this process was started as one of a job across processes (Keras's variables are set)."""
    return bool(os.environ.get("KERAS_DISTRIBUTION_JOB_ADDRESSES"))


def distribution_plan(keras: Any, setting: Setting, at: Origin) -> Plan:
    """The context to build and fit in for ``setting``, and how the work is split.

    Args:
        keras: The ``keras`` module.
        setting: What the spec (or the command line) asks for.
        at: Where the distribution was asked for (``train.distribution``, or the command line).

    Raises:
        SpecError: The backend does not have the engine, or it cannot start.
    """
    name = setting.type
    if name == "none":
        return Plan(contextlib.nullcontext())
    backend = keras.backend.backend()

    def fail(message: str, hint: str | None = None, where: Origin = at) -> SpecError:
        return SpecError([where.problem("training-config", message, hint)])

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
            raise fail(f"TensorFlow could not start the '{name}' strategy: {clipped(e)}") from None
        return Plan(strategy.scope(), int(strategy.num_replicas_in_sync))
    engine = "DataParallel" if name == "data_parallel" else "ModelParallel"
    if backend != "jax":
        raise fail(
            f"distribution '{name}' is keras.distribution.{engine}: it needs the JAX backend, "
            f"and Keras runs on {backend}" + (f"; {TORCH_DISTRIBUTION}" if backend == "torch" else ""),
            "set KERAS_BACKEND=jax"
            + (", or use distribution: mirrored on TensorFlow" if name == "data_parallel" else ""),
        )
    if (setting.processes or 1) > 1 and not joining():
        raise fail(
            f"processes: {setting.processes} is a job of {setting.processes} processes: `modelspec train` starts "
            "them; in Python, run one per process with Keras's KERAS_DISTRIBUTION_JOB_ADDRESSES, "
            "KERAS_DISTRIBUTION_NUM_PROCESSES and KERAS_DISTRIBUTION_PROCESS_ID set",
            where=at.at("processes"),
        )
    processes, process = _join(keras, fail)
    devices = keras.distribution.list_devices()
    if name == "data_parallel":
        mesh = keras.distribution.DeviceMesh((len(devices),), ["batch"], devices)
        engine_ = keras.distribution.DataParallel(device_mesh=mesh, auto_shard_dataset=False)
        return Plan(engine_.scope(), len(devices), len(devices), processes, process)
    need = math.prod(setting.mesh.values())
    if need != len(devices):
        sizes = ", ".join(f"{k}: {v}" for k, v in setting.mesh.items())
        raise fail(
            f"the mesh {{{sizes}}} needs {need} devices, and this job has {len(devices)}",
            f"on CPU, XLA_FLAGS=--xla_force_host_platform_device_count={need} makes {need} devices",
            where=at.at("mesh"),
        )
    mesh = keras.distribution.DeviceMesh(tuple(setting.mesh.values()), list(setting.mesh), devices)
    layout_map = keras.distribution.LayoutMap(mesh)
    for key, axes in setting.layouts.items():
        layout_map[key] = tuple(axes)
    engine_ = keras.distribution.ModelParallel(
        layout_map=layout_map, batch_dim_name=setting.batch_axis, auto_shard_dataset=False
    )
    shards = setting.mesh[setting.batch_axis]
    return Plan(engine_.scope(), shards, shards, processes, process)


def _join(keras: Any, fail: Any) -> tuple[int, int]:
    """Join the job across processes when Keras's variables say so: (processes, this process's index)."""
    if not joining():
        return 1, 0
    import jax

    if not jax.distributed.is_initialized():
        jax.config.update("jax_cpu_collectives_implementation", "gloo")  # CPU collectives across processes
        try:
            keras.distribution.initialize()
        except (RuntimeError, ValueError) as e:
            text = " ".join(str(e).split())[:400]
            raise fail(
                f"this process could not join the job at {os.environ.get('KERAS_DISTRIBUTION_JOB_ADDRESSES')}: "
                f"{text}",
                "check " + ", ".join(JOIN_VARIABLES),
            ) from None
    return jax.process_count(), jax.process_index()


def is_chief(distribution: str, plan: Plan) -> bool:
    """Whether this process writes the outputs (process 0, or the chief of a tf.distribute multi-worker run)."""
    if distribution != "multi_worker_mirrored":
        return plan.process == 0
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


def fit_inputs(
    keras: Any,
    distribution: str,
    plan: Plan,
    x: Any,
    y: Any,
    batch_size: int,
    *,
    seed: int = 0,
    shuffle: bool = False,
) -> tuple[tuple, dict[str, Any]]:
    """What ``fit`` and ``evaluate`` take: the arrays, or the batches the distribution needs.

    On ``keras.distribution`` each process feeds its part of the same global
    batches (:func:`~modelspec.training.batches.global_batches`; ``shuffle``
    draws a new order each epoch from ``seed``). Across tf.distribute workers
    each takes its shard of one batched ``tf.data.Dataset`` (sharded by data,
    as the arrays are the same on every worker); Keras cannot split plain
    arrays across workers.

    Returns:
        The positional and keyword arguments for ``fit``/``evaluate``.
    """
    if plan.shards:
        from .batches import global_batches

        batches = global_batches(
            keras,
            x,
            y,
            batch_size=batch_size,
            shards=plan.shards,
            processes=plan.processes,
            process=plan.process,
            seed=seed,
            shuffle=shuffle,
        )
        return (batches,), {}
    if distribution != "multi_worker_mirrored":
        return (x, y), {"batch_size": batch_size}
    import tensorflow as tf

    targets = tuple(y) if isinstance(y, list) else y
    dataset = tf.data.Dataset.from_tensor_slices((x, targets)).batch(batch_size)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return (dataset.with_options(options),), {}
