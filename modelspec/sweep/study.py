"""Optuna's parts for a sweep: the storage, the sampler, the pruner, the distributions, stale trials.

Optuna is imported here, inside the functions, only when a sweep runs: the
``sweep`` section is checked (:mod:`modelspec.spec.sweep`) without it.
"""

from __future__ import annotations

import importlib.util
import os
import socket
from typing import Any

from ..errors import Origin, SpecError
from ..spec.sweep import Choice

HOST = socket.gethostname()

SAMPLER_NEEDS = {"cmaes": ("cmaes",), "gp": ("torch", "scipy")}
"""Packages Optuna's samplers import besides Optuna itself."""


def is_url(storage: str) -> bool:
    """Whether a storage is an RDB URL (``postgresql://...``, ``sqlite:///...``) rather than a journal file."""
    return "://" in storage


def open_storage(storage: str, at: Origin) -> Any:
    """Optuna's storage: a journal file (its folder is made) or an RDB (``RDBStorage``).

    Raises:
        SpecError: The journal's folder cannot be made, or the database cannot be reached.
    """
    import optuna

    try:
        if is_url(storage):
            return optuna.storages.RDBStorage(_driver(storage), engine_kwargs={"pool_pre_ping": True})
        from optuna.storages.journal import JournalFileBackend

        os.makedirs(os.path.dirname(os.path.abspath(storage)), exist_ok=True)
        return optuna.storages.JournalStorage(JournalFileBackend(storage))
    except Exception as e:  # noqa: BLE001 - a storage that cannot be opened is the user's to fix
        shown = storage.split("@")[-1] if is_url(storage) else storage  # never print a password
        raise SpecError(
            [
                at.problem(
                    "sweep-storage", f"cannot open the sweep's storage {shown!r}: {type(e).__name__}: {e}"
                )
            ]
        ) from None


def _driver(url: str) -> str:
    """``postgresql://`` through psycopg2 where it is the driver installed (SQLAlchemy 2.1 defaults to psycopg 3)."""
    scheme, sep, rest = url.partition("://")
    if (
        scheme in ("postgresql", "postgres")
        and importlib.util.find_spec("psycopg") is None
        and importlib.util.find_spec("psycopg2") is not None
    ):
        return f"postgresql+psycopg2{sep}{rest}"
    return url


def distributions(space: dict[str, Choice]) -> dict[str, Any]:
    """Each space key's Optuna distribution."""
    import optuna.distributions as d

    found: dict[str, Any] = {}
    for key, c in space.items():
        if c.kind == "categorical":
            found[key] = d.CategoricalDistribution(list(c.values))
        elif c.kind == "int":
            found[key] = d.IntDistribution(int(c.low), int(c.high), log=c.log, step=int(c.step or 1))
        else:
            found[key] = d.FloatDistribution(float(c.low), float(c.high), log=c.log, step=c.step)
    return found


def make_sampler(name: str, seed: int | None, space: dict[str, Choice], at: Origin) -> Any:
    """Optuna's sampler ``name`` (``tpe``, ``random``, ``grid``, ``cmaes``, ``gp``), seeded.

    Raises:
        SpecError: The sampler needs a package that is not installed.
    """
    import optuna.samplers as s

    missing = [p for p in SAMPLER_NEEDS.get(name, ()) if importlib.util.find_spec(p) is None]
    if missing:
        raise SpecError(
            [
                at.problem(
                    "invalid-choice",
                    f"the {name} sampler needs {' and '.join(missing)}, which is not installed",
                    f"pip install {' '.join(missing)}, or choose sampler: tpe",
                )
            ]
        )
    if name == "random":
        return s.RandomSampler(seed=seed)
    if name == "grid":
        return s.GridSampler({key: c.grid() for key, c in space.items()}, seed=seed)
    if name == "cmaes":
        return s.CmaEsSampler(seed=seed, warn_independent_sampling=False)
    if name == "gp":
        return s.GPSampler(seed=seed)
    return s.TPESampler(seed=seed)


def make_pruner(name: str, epochs: int) -> Any:
    """Optuna's pruner: ``median`` after 3 finished trials, from the second epoch; ``hyperband`` over the epochs."""
    import optuna.pruners as p

    if name == "median":
        return p.MedianPruner(n_startup_trials=3, n_warmup_steps=1)
    if name == "hyperband":
        return p.HyperbandPruner(min_resource=1, max_resource=max(1, epochs))
    return p.NopPruner()


def fail_dead_trials(study: Any) -> list[int]:
    """Mark failed the RUNNING trials whose process on this machine is gone (killed mid-run).

    Each trial records the host and process that run it; a trial of another
    machine is left to that machine's next run.

    Returns:
        The numbers of the trials marked failed.
    """
    from optuna.trial import TrialState

    failed = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        attrs = trial.user_attrs
        if attrs.get("host") != HOST or _alive(attrs.get("pid")):
            continue
        storage = study._storage  # Optuna's own API for a trial's state: storage.set_trial_*
        storage.set_trial_user_attr(trial._trial_id, "problem", "its process stopped before it finished")
        if storage.set_trial_state_values(trial._trial_id, TrialState.FAIL):
            failed.append(trial.number)
    return failed


def _alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
