"""One sweep trial: a sampled point made into a spec, checked statically, then trained with pruning.

The point goes through the spec's own mechanisms: ``params.NAME`` and
``variant`` as ``--set`` and ``--variant`` would, a ``train``/``compile``
key path written into the spec's data (located at the value it replaces),
then the whole static pipeline (schema, expansion, catalog, graph, shapes,
memory guard). A point that cannot be built fails there, in a fraction of a
second, and never reaches Keras.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import SpecError
from ..graph import Graph
from ..source import Source
from ..spec import ModelSpec, to_spec
from ..spec.sweep import key_path, with_value

Check = Callable[..., Any]
"""The static pipeline: ``check(spec, objects, params, variant)`` -> the checked record (``api.Checked``)."""
Guard = Callable[[Any], object]
"""The memory guard for training, given the checked record: raises :class:`SpecError` for a model too large to train."""


@dataclass(frozen=True)
class Pipeline:
    """The stages a trial runs before training, given by :mod:`modelspec.api` (which owns their order)."""

    check: Check
    guard: Guard


def point_spec(
    source: Source,
    point: dict[str, Any],
    objects: dict[str, Any],
    pipeline: Pipeline,
    params: dict[str, Any],
    variant: str | None,
) -> tuple[ModelSpec, Graph]:
    """The expanded spec and checked graph of one point of the space.

    Args:
        source: The spec's parsed document.
        point: Space key -> value.
        objects: User classes by ``type`` name.
        pipeline: The static stages.
        params: Params fixed outside the space (``--set``).
        variant: The variant fixed outside the space (``--variant``).

    Raises:
        SpecError: The point cannot be built or trained (too large for memory, a shape mismatch, ...).
    """
    data = source.data
    params = dict(params)
    for key, value in point.items():
        path = key_path(key)
        if path[0] == "variant":
            variant = value
        elif path[0] == "params":
            params[path[1]] = value
        else:
            data = with_value(data, path, value)
    spec, problems = to_spec(dataclasses.replace(source, data=data), objects)
    if spec is None:
        raise SpecError(problems)
    record = pipeline.check(spec, objects, params, variant)  # api.Checked: (spec, graph, analysis)
    pipeline.guard(record)
    return record.spec, record.model()[0]  # a spec with a sweep has layers (checked when it was read)


def pruning_callback(keras: Any, trial: Any, monitor: str | None) -> Any:
    """A Keras callback that reports ``monitor`` to the trial each epoch and stops a pruned fit.

    It stops by ``model.stop_training`` rather than by raising inside ``fit``,
    which every backend honours at the end of the epoch.
    """

    class Report(keras.callbacks.Callback):
        pruned_at: int | None = None

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            value = (logs or {}).get(monitor) if monitor else None
            if value is None:
                return
            trial.report(float(value), epoch)
            if trial.should_prune():
                self.pruned_at = epoch
                self.model.stop_training = True

    return Report()


def objective_value(
    name: str, direction: str, history: dict[str, list[float]], test: dict[str, float]
) -> float | None:
    """The trial's objective: ``test_<metric>`` from the test rows, else the best epoch of a history metric."""
    if name.startswith("test_") and name[5:] in test:
        return test[name[5:]]
    values = history.get(name)
    if not values:
        return None
    return min(values) if direction == "minimize" else max(values)


def monitored(name: str, history_names: list[str] | None = None) -> str:
    """The per-epoch metric pruning watches: the objective, or ``val_<metric>`` for a ``test_<metric>``."""
    return "val_" + name[5:] if name.startswith("test_") else name
