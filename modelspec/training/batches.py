"""The global batches of a ``keras.distribution`` run, each process feeding its own part.

Every process of the job holds the whole split (the same rows, the same
normalization statistics and label encoding), and walks the same global
batches: batch ``k`` of an epoch is rows ``k * batch_size`` onwards of one
permutation of the split, drawn from the seed and the epoch number. Process
``p`` of ``P`` feeds the ``p``-th of ``P`` equal contiguous parts of each
batch; Keras assembles the parts into the global batch (in process order), so
a run on 2 processes computes on the very batches a run on 1 does.

Every batch splits evenly over the devices along the batch axis (``shards``):
``batch_size`` must be a multiple of it, and the last, partial batch of an
epoch leaves out its rows beyond a multiple of it (fewer than ``shards``,
others each epoch when shuffled).
"""

from __future__ import annotations

from typing import Any

from ..errors import Origin, SpecError


def batch_plan(rows: int, batch_size: int, shards: int) -> list[tuple[int, int]]:
    """``(start, size)`` of each global batch over ``rows`` rows; every size a multiple of ``shards``."""
    plan = []
    for start in range(0, rows, batch_size):
        size = min(batch_size, rows - start)
        size -= size % shards
        if size:
            plan.append((start, size))
    return plan


def check_batch_size(batch_size: int, shards: int, at: Origin) -> None:
    """Refuse a global batch that does not split evenly over the devices along the batch axis.

    Raises:
        SpecError: Located at ``at`` (``train.batch_size``).
    """
    if batch_size % shards:
        lower = batch_size - batch_size % shards
        raise SpecError(
            [
                at.problem(
                    "training-config",
                    f"batch_size {batch_size} does not split evenly over the {shards} devices "
                    "the batches are split over",
                    f"use a multiple of {shards}: {max(lower, shards)} or {lower + shards}",
                )
            ]
        )


def global_batches(
    keras: Any,
    x: Any,
    y: Any,
    *,
    batch_size: int,
    shards: int,
    processes: int,
    process: int,
    seed: int,
    shuffle: bool,
) -> Any:
    """A ``keras.utils.PyDataset`` of this process's part of each global batch of ``(x, y)``.

    Args:
        keras: The ``keras`` module.
        x: The features of the whole split (rows first).
        y: Its targets: an array, or a list or dict of arrays (several outputs).
        batch_size: The global batch size, a multiple of ``shards``.
        shards: The devices along the batch axis, a multiple of ``processes``.
        processes: Processes in the job.
        process: This process's index.
        seed: Seeds the permutation of each epoch (the same in every process).
        shuffle: Draw a new permutation each epoch (training); else keep the rows' order.
    """
    import numpy as np

    rows = len(x)
    plan = batch_plan(rows, batch_size, shards)

    def take(value: Any, index: np.ndarray) -> Any:
        if isinstance(value, dict):
            return {k: take(v, index) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(take(v, index) for v in value)
        return value[index]

    class GlobalBatches(keras.utils.PyDataset):
        def __init__(self) -> None:
            super().__init__()
            self.epoch = 0

        def __len__(self) -> int:
            return len(plan)

        def __getitem__(self, step: int) -> tuple[Any, Any]:
            if shuffle:
                order = np.random.default_rng([seed, self.epoch]).permutation(rows)
            else:
                order = np.arange(rows)
            start, size = plan[step]
            part = size // processes
            index = order[start + process * part : start + (process + 1) * part]
            return take(x, index), take(y, index)

        def on_epoch_end(self) -> None:
            self.epoch += 1

    return GlobalBatches()
