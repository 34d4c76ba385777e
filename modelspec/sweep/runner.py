"""Running a sweep: the study, the workers asking Optuna for points (ask-and-tell), the outputs.

Each worker loops: under a lock, count the study's trials and ask for one
more while fewer than ``trials`` exist; build the point statically (a point
that cannot be built fails at once); train it with modelspec's own training,
reporting each epoch to Optuna for pruning; tell the result. ``--workers K``
runs K such loops in K processes against the same storage, each with
cores/K threads; other machines join through an RDB storage. Running the
same sweep again continues the study.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ..errors import Origin, Problem, SpecError
from ..source import Source, read_source
from ..spec import ModelSpec, to_spec
from ..spec.paths import current_policy, is_outside, path_policy, resolve
from ..spec.sweep import Choice, default_direction, read_space, timeout_seconds, written_point
from ..training import interrupt
from . import outputs
from .study import HOST, distributions, fail_dead_trials, is_url, make_pruner, make_sampler, open_storage
from .trial import Pipeline, monitored, objective_value, point_spec, pruning_callback


@dataclass(frozen=True)
class SweepResult:
    """What a sweep gives back.

    Attributes:
        best_point: Space key -> value of the best trial (None when no trial completed).
        best_value: Its objective.
        best_trial: Its number.
        table: Every trial of the study (a pandas DataFrame: number, state, the space keys,
            objective, seconds, problem), as ``trials.csv``.
        output: The folder the outputs were written to.
        notes: What was left out of the outputs, and why.
        interrupted: The sweep was stopped by Ctrl-C (what finished is kept).
    """

    best_point: dict[str, Any] | None
    best_value: float | None
    best_trial: int | None
    table: Any = field(repr=False)
    output: str = ""
    notes: list[str] = field(default_factory=list)
    interrupted: bool = False


@dataclass(frozen=True)
class Sweep:
    """Everything a worker needs (sent to worker processes as it is).

    Attributes:
        spec_path: The spec file.
        output: The output folder.
        storage: The storage: a journal file or an RDB URL.
        study: The study's name.
        trials: Trials in the whole study (None: until the timeout).
        timeout: Seconds after which no trial starts (None: no limit).
        workers: Processes on this machine.
        params: Params fixed outside the space (``--set``).
        variant: The variant fixed outside the space.
        objects: User classes by ``type`` name.
        pipeline: The static stages (from :mod:`modelspec.api`).
        progress: Print a line per trial.
        allow_outside: The path policy of the caller.
        overwrite: The path policy of the caller.
    """

    spec_path: str
    output: str
    storage: str
    study: str
    trials: int | None
    timeout: float | None
    workers: int
    params: dict[str, Any]
    variant: str | None
    objects: dict[str, Any]
    pipeline: Pipeline
    progress: bool = False
    storage_from_spec: bool = False
    allow_outside: bool = False
    overwrite: bool = False


def read_sweep_spec(path: str, objects: dict[str, Any]) -> tuple[Source, ModelSpec]:
    """The spec (not expanded) and its document; it must have a ``sweep`` section."""
    source = read_source(path)
    spec, problems = to_spec(source, objects)
    if spec is None:
        raise SpecError(problems)
    if spec.sweep is None:
        raise SpecError(
            [
                spec.at().problem(
                    "training-config",
                    "the spec has no 'sweep' section: nothing says what to search",
                    "add sweep: {objective: val_accuracy, trials: 20, space: {params.NAME: [...]}}",
                )
            ]
        )
    return source, spec


def plan(
    spec_path: str,
    *,
    output: str | None,
    trials: int | None,
    workers: int,
    storage: str | None,
    study: str | None,
    params: dict[str, Any],
    variant: str | None,
    objects: dict[str, Any],
    pipeline: Pipeline,
    progress: bool,
) -> Sweep:
    """Check the sweep as the command asks for it and settle its output folder, storage and study.

    Raises:
        SpecError: The spec, its sweep section, or the storage is invalid.
        ValueError: ``trials`` or ``workers`` below 1.
    """
    for name, value in (("trials", trials), ("workers", workers)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    _, spec = read_sweep_spec(spec_path, objects)
    sweep = spec.sweep
    assert sweep is not None
    at = spec.at("sweep")
    fixed = [k for k in sweep.space if k == "variant" and variant is not None]
    fixed += [k for k in sweep.space if k.startswith("params.") and k[7:] in params]
    if fixed:
        raise SpecError(
            [
                spec.at("sweep", "space", fixed[0]).problem(
                    "sweep-key",
                    f"{fixed[0]} is searched by the sweep and also fixed on the command line",
                    "leave it to the sweep, or take it out of sweep.space",
                    key=True,
                )
            ]
        )
    pipeline.check(spec, objects, params, variant)  # the spec as written: its own mistakes, before any trial
    trials = trials or sweep.trials
    timeout = timeout_seconds(sweep.timeout)
    if trials is None and timeout is None:
        raise SpecError(
            [
                at.problem(
                    "missing-key",
                    "the sweep has neither 'trials' nor 'timeout': it would never end",
                    "add trials: 20 (or give --trials)",
                    key=True,
                )
            ]
        )
    stem = os.path.splitext(os.path.basename(spec_path))[0]
    folder = output or os.path.join(os.path.dirname(spec_path), f"{stem}.sweep")
    from_spec = storage is None and sweep.storage is not None
    if storage is None and sweep.storage is not None:
        storage = sweep.storage
        if not is_url(storage):
            storage = resolve(spec, storage)
            if is_outside(spec, storage) and not current_policy().allow_outside:
                raise SpecError(
                    [
                        at.at("storage").problem(
                            "path-outside",
                            f"the storage {sweep.storage!r} leads outside the spec's folder and the working folder",
                            "keep the journal beside the spec, or give --allow-outside for a spec you trust",
                        )
                    ]
                )
    storage = storage or os.path.join(folder, "journal")
    policy = current_policy()
    return Sweep(
        spec_path=os.fspath(spec_path),
        output=folder,
        storage=storage,
        study=study or stem,
        trials=trials,
        timeout=timeout,
        workers=workers,
        params=dict(params),
        variant=variant,
        objects=dict(objects),
        pipeline=pipeline,
        progress=progress,
        storage_from_spec=from_spec,
        allow_outside=policy.allow_outside,
        overwrite=policy.overwrite,
    )


def run(sweep: Sweep) -> SweepResult:
    """Run (or continue) the sweep, then write its outputs from the whole study.

    Raises:
        SpecError: The spec or its sweep is invalid (the objective is not a metric, ...).
        KeyboardInterrupt: after the outputs of what finished are written.
    """
    source, spec = read_sweep_spec(sweep.spec_path, sweep.objects)
    study = _load(sweep, spec, worker=0)
    os.makedirs(os.path.join(sweep.output, "models"), exist_ok=True)
    if not study.get_trials(deepcopy=False):  # a new study starts from the spec as written
        first = written_point(spec, read_space(spec), sweep.params)
        if first:
            study.enqueue_trial(first, user_attrs={"written": True})
    stale = fail_dead_trials(study)
    if stale and sweep.progress:
        print(
            f"marked failed: trial{'s' * (len(stale) > 1)} {', '.join(map(str, stale))} (their process stopped)"
        )
    interrupted = False
    try:
        with interrupt.remembered():
            if sweep.workers == 1:
                _work(sweep, 0, source, spec, study)
            else:
                _in_processes(sweep)
    except KeyboardInterrupt:
        interrupted = True
    result = finish(sweep, source, spec, _load(sweep, spec, worker=0))
    if interrupted:
        raise SweepInterrupted(result)
    return result


class SweepInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped the sweep; ``result`` holds what finished (its outputs are written)."""

    def __init__(self, result: SweepResult):
        super().__init__("interrupted")
        self.result = result


def _in_processes(sweep: Sweep) -> None:
    import concurrent.futures as cf
    import multiprocessing

    # spawn: a fresh interpreter per worker, never a fork of a process that may hold a backend's threads
    context = multiprocessing.get_context("spawn")
    with cf.ProcessPoolExecutor(max_workers=sweep.workers, mp_context=context) as pool:
        portable = dataclasses.replace(sweep, objects=_importable(sweep.objects))
        futures = [pool.submit(_worker_process, portable, k) for k in range(sweep.workers)]
        try:
            for f in cf.as_completed(futures):
                error = f.result()
                if error is not None:
                    raise error
        except KeyboardInterrupt:
            cf.wait(futures)  # the workers got the Ctrl-C too: each fails its trial and stops
            raise


def _importable(objects: dict[str, Any]) -> dict[str, Any]:
    """The objects a spawned worker can import again by name: those whose module it finds on ``sys.path``.

    A worker unpickles each class by importing its module afresh; a class of
    ``__main__``, of a module made in memory, or of a module whose folder has
    left ``sys.path`` since it was imported cannot travel (unpickling it would
    end the worker). A spec that needs one of those says so in the worker,
    located, as an unknown type.
    """
    import importlib.machinery

    kept = {}
    for name, obj in objects.items():
        top = str(getattr(obj, "__module__", "") or "").split(".")[0]
        if not top or top == "__main__":
            continue
        if (
            top in sys.builtin_module_names
            or importlib.machinery.PathFinder.find_spec(top, sys.path) is not None
        ):
            kept[name] = obj
    return kept


def _worker_process(sweep: Sweep, worker: int) -> SpecError | None:
    """One worker process: cores/K threads, the loop, and its problems sent back (not raised across)."""
    threads = str(max(1, (os.cpu_count() or 1) // sweep.workers))
    for name in ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):
        os.environ[name] = threads
    if threads == "1":
        os.environ["XLA_FLAGS"] = (
            os.environ.get("XLA_FLAGS", "")
            + " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
        )
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        with (
            interrupt.remembered(),
            path_policy(allow_outside=sweep.allow_outside, overwrite=sweep.overwrite),
        ):
            source, spec = read_sweep_spec(sweep.spec_path, sweep.objects)
            if os.environ.get("KERAS_BACKEND") == "torch":
                import torch

                torch.set_num_threads(int(threads))
            _work(sweep, worker, source, spec, _load(sweep, spec, worker))
    except SpecError as e:
        return e
    except KeyboardInterrupt:
        return None
    return None


def _load(sweep: Sweep, spec: ModelSpec, worker: int) -> Any:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    s = spec.sweep
    assert s is not None
    at = spec.at("sweep")
    space = read_space(spec)
    seed = None if s.seed is None else s.seed + worker
    epochs = spec.train.epochs if spec.train is not None and isinstance(spec.train.epochs, int) else 10
    return optuna.create_study(
        storage=open_storage(
            sweep.storage, at.at("storage") if sweep.storage_from_spec else Origin(None, ("--storage",))
        ),
        study_name=sweep.study,
        direction=s.direction or default_direction(s.objective),
        sampler=make_sampler(s.sampler, seed, space, at.at("sampler")),
        pruner=make_pruner(s.pruner, epochs),
        load_if_exists=True,
    )


@contextlib.contextmanager
def _locked(folder: str) -> Iterator[None]:
    """The workers of this machine take turns to count the trials and ask for one (no trial too many)."""
    import fcntl

    with open(os.path.join(folder, ".ask.lock"), "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _work(sweep: Sweep, worker: int, source: Source, spec: ModelSpec, study: Any) -> None:
    """The ask-and-tell loop of one worker, until the study has its trials or the time is up."""
    from optuna.trial import TrialState

    s = spec.sweep
    assert s is not None
    space = read_space(spec)
    dists = distributions(space)
    direction = s.direction or default_direction(s.objective)
    started = time.monotonic()
    while True:
        interrupt.check()  # a Ctrl-C Python dropped (raised inside a finalizer) stops before the next trial
        if sweep.timeout is not None and time.monotonic() - started >= sweep.timeout:
            return
        trial = None
        t0 = time.perf_counter()
        try:
            with _locked(sweep.output):
                if sweep.trials is not None and len(study.get_trials(deepcopy=False)) >= sweep.trials:
                    return
                trial = study.ask(dists)
                trial.set_user_attr("host", HOST)
                trial.set_user_attr("pid", os.getpid())
            t0 = time.perf_counter()
            state, value, problem = _trial(sweep, source, spec, space, trial, s.objective, direction)
        except KeyboardInterrupt:
            if trial is not None:  # asked for: it must not stay RUNNING
                trial.set_user_attr("problem", "interrupted (Ctrl-C)")
                trial.set_user_attr("seconds", time.perf_counter() - t0)
                _tell(study, trial, None, TrialState.FAIL)
            raise
        except SpecError:  # the sweep itself is wrong (its objective): stop, the trial failed
            if trial is not None:
                trial.set_user_attr("seconds", time.perf_counter() - t0)
                _tell(study, trial, None, TrialState.FAIL)
            raise
        seconds = time.perf_counter() - t0
        trial.set_user_attr("seconds", seconds)
        if problem:
            trial.set_user_attr("problem", problem)
        done = _tell(study, trial, value if state is TrialState.COMPLETE else None, state)
        _keep_best_models(study, sweep.output)
        if sweep.progress:
            print(
                _line(study, trial.number, trial.params, state, value, s.objective, seconds, problem),
                flush=True,
            )
        if done:
            return


def _tell(study: Any, trial: Any, value: float | None, state: Any) -> bool:
    """Tell Optuna a trial's end; True when the sampler has nothing left (the grid is done).

    The grid sampler stops the study when its last point is told, with ``study.stop()``, which
    Optuna allows inside ``optimize`` only; the trial's state is stored before that.
    """
    try:
        study.tell(trial, value, state=state)
    except RuntimeError as e:
        if "Study.stop" not in str(e):
            raise
        return True
    return False


def _trial(
    sweep: Sweep,
    source: Source,
    spec: ModelSpec,
    space: dict[str, Choice],
    trial: Any,
    objective: str,
    direction: str,
) -> tuple[Any, float | None, str]:
    """Build, check and train one point: (state, objective, problem)."""
    from optuna.trial import TrialState

    from ..keras.backend import load_keras
    from ..training import fit, save_model

    try:
        flat, graph = point_spec(
            source, trial.params, sweep.objects, sweep.pipeline, sweep.params, sweep.variant
        )
    except SpecError as e:  # an impossible point: recorded, never trained
        return TrialState.FAIL, None, _first(e.problems)
    keras = load_keras()
    report = pruning_callback(keras, trial, monitored(objective))
    try:
        result = fit(flat, graph, sweep.objects, verbose=0, callbacks=[report])
    except SpecError as e:
        return TrialState.FAIL, None, _first(e.problems)
    value = objective_value(objective, direction, result.history, result.test_metrics)
    if value is None:
        names = [*result.history, *(f"test_{k}" for k in result.test_metrics)]
        raise SpecError(
            [
                spec.at("sweep", "objective").problem(
                    "sweep-objective",
                    f"the training reports no metric {objective!r}",
                    f"its metrics: {', '.join(names)}",
                )
            ]
        )
    if report.pruned_at is not None:
        return TrialState.PRUNED, value, f"pruned after epoch {report.pruned_at + 1}"
    if not math.isfinite(value):
        return TrialState.FAIL, None, f"the objective is {value}"
    save_model(result.model, result.metadata, _model_file(sweep.output, trial.number))
    return TrialState.COMPLETE, value, ""


def _first(problems: list[Problem]) -> str:
    errors = [p for p in problems if p.severity == "error"] or problems
    p = errors[0]
    return p.format(excerpt=False).replace("\n", " ")


def _model_file(folder: str, number: int) -> str:
    return os.path.join(folder, "models", f"trial-{number}.keras")


def _keep_best_models(study: Any, folder: str) -> None:
    """Delete the model files of finished trials worse than the best (only the best one is kept).

    A file is deleted only when its trial is finished and worse than the best in
    the same snapshot of the study, so a worker never deletes the file of a
    trial that another worker has just made the best.
    """
    from optuna.trial import TrialState

    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    done = [t for t in trials.values() if t.state is TrialState.COMPLETE]
    if not done:
        return
    best = study.direction.name == "MINIMIZE"
    best_value = min(t.value for t in done) if best else max(t.value for t in done)
    models = os.path.join(folder, "models")
    for name in os.listdir(models):
        if not (name.startswith("trial-") and name.endswith(".keras")):
            continue
        number = int(name[6:-6]) if name[6:-6].isdigit() else None
        t = trials.get(number)  # type: ignore[arg-type]
        if t is None or t.state is TrialState.RUNNING or t.state is TrialState.WAITING:
            continue
        if t.state is not TrialState.COMPLETE or t.value != best_value:
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(models, name))


def _line(
    study: Any,
    number: int,
    point: dict,
    state: Any,
    value: float | None,
    objective: str,
    seconds: float,
    problem: str,
) -> str:
    shown = " ".join(f"{k}={_value(v)}" for k, v in point.items())
    text = f"trial {number:>3} {state.name.lower():<8} {shown}"
    if value is not None:
        text += f"  {objective}={value:.4f}"
    try:
        best = study.best_trial
        text += f"  best={best.value:.4f} (trial {best.number})"
    except ValueError:
        pass
    text += f"  {seconds:.1f} s"
    if problem and state.name == "FAIL":
        text += f"\n      {problem}"
    return text


def _value(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def finish(sweep: Sweep, source: Source, spec: ModelSpec, study: Any) -> SweepResult:
    """Write the outputs from the study as the storage holds it; the result."""
    from optuna.trial import TrialState

    s = spec.sweep
    assert s is not None
    keys = list(s.space)
    trials = study.get_trials(deepcopy=False)
    frame = outputs.table(trials, keys)
    direction = s.direction or default_direction(s.objective)
    done = [t for t in trials if t.state is TrialState.COMPLETE]
    best = None
    best_trial = None
    if done:
        best_trial = study.best_trial
        flat, graph = point_spec(
            source, best_trial.params, sweep.objects, sweep.pipeline, sweep.params, sweep.variant
        )
        model_file = _model_file(sweep.output, best_trial.number)
        if not os.path.exists(
            model_file
        ):  # trained on another machine, or its file was removed: train it here
            from ..training import fit, save_model

            result = fit(flat, graph, sweep.objects, verbose=0)
            save_model(result.model, result.metadata, model_file)
        note = (
            f"The best point of the sweep of {os.path.basename(sweep.spec_path)} (study {sweep.study!r}): "
            f"trial {best_trial.number}, {s.objective} = {best_trial.value:.6g}\n"
            + "\n".join(f"  {k}: {_value(v)}" for k, v in best_trial.params.items())
            + "\n`modelspec train` on this file trains it again, with the same seed."
        )
        best = (flat, model_file, note)
    try:
        notes = outputs.write(sweep.output, study, frame, s.objective, direction, best)
    except OSError as e:
        raise SpecError(
            [
                Problem.in_file(
                    "output-file",
                    sweep.output,
                    f"cannot write the sweep's outputs: {e.strerror or e}; nothing was written",
                    path=("output",),
                )
            ]
        ) from None
    return SweepResult(
        best_point=dict(best_trial.params) if best_trial else None,
        best_value=best_trial.value if best_trial else None,
        best_trial=best_trial.number if best_trial else None,
        table=frame,
        output=sweep.output,
        notes=notes,
    )
