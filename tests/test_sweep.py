"""Sweeps: real Optuna studies over real training of the iris spec, on a journal file and on PostgreSQL.

Trials are kept short (a few epochs) so that the whole file runs in minutes
on two shared cores; the checks are about what the sweep does with them:
outputs, resuming, sharing a storage between processes, failing impossible
points without training, pruning. The mistakes in ``sweep`` sections are case
files in ``tests/cases/sweep_*.yaml`` (run by test_errors.py).
"""

from __future__ import annotations

import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest
from conftest import DATA, SPECS

import modelspec
from modelspec.cli import main

optuna = pytest.importorskip("optuna")

SPEC = """\
modelspec: 1
name: iris_mlp
seed: 42
params: {{width: 16, dropout: 0.1, deep: true}}
variants:
  base: {{}}
  shallow: {{deep: false}}
inputs:
  features: {{shape: [4]}}
layers:
  - {{type: Dense, units: "${{width}}", activation: relu}}
  - {{type: Dropout, rate: "${{dropout}}"}}
  - {{type: Dense, units: "${{width}}", activation: relu, if: "${{deep}}"}}
  - {{type: Dense, units: 3, activation: softmax, name: species}}
compile:
  optimizer: {{type: Adam, learning_rate: {lr}}}
  loss: sparse_categorical_crossentropy
  metrics: [accuracy]
train:
  data: {{path: iris.csv, target: species, test_split: 0.2, validation_split: 0.1, seed: 0}}
  normalize: true
  epochs: {epochs}
  batch_size: 16
sweep:
{sweep}
"""

SEARCH = """\
  objective: test_accuracy
  trials: 8
  seed: 0
  space:
    params.width: {int: [4, 32], log: true}
    params.dropout: {float: [0.0, 0.4], step: 0.1}
    variant: [base, shallow]
    compile.optimizer.learning_rate: {float: [1.0e-3, 1.0e-1], log: true}
"""


def write(folder: pathlib.Path, sweep: str, *, epochs: int = 6, lr: float = 0.01) -> pathlib.Path:
    """A sweep spec in ``folder``, with the iris CSV beside it."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(DATA / "iris.csv", folder / "iris.csv")
    path = folder / "spec.yaml"
    path.write_text(SPEC.format(sweep=sweep.rstrip("\n"), epochs=epochs, lr=lr), encoding="utf-8")
    return path


def study_trials(storage: str, name: str = "spec") -> list:
    storage = storage.replace(
        "postgresql://", "postgresql+psycopg2://"
    )  # SQLAlchemy 2.1 defaults to psycopg 3
    if "://" not in storage:
        from optuna.storages.journal import JournalFileBackend

        storage = optuna.storages.JournalStorage(JournalFileBackend(storage))
    return optuna.load_study(study_name=name, storage=storage).get_trials()


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    """One 8-trial sweep of the iris spec (width, dropout, variant, learning rate), through the command line."""
    folder = tmp_path_factory.mktemp("iris")
    spec = write(folder, SEARCH)
    cwd = os.getcwd()
    os.chdir(folder)  # best.yaml names the CSV relative to itself: inside the working folder
    try:
        code = main(["sweep", str(spec), "-o", str(folder / "out")])
    finally:
        os.chdir(cwd)
    assert code == 0
    return spec, folder / "out"


def test_a_sweep_writes_every_output_and_its_best_point_trains_at_least_as_well(searched, monkeypatch):
    spec, out = searched
    for name in ("trials.csv", "best.yaml", "best.keras", "history.png", "importance.png", "journal"):
        assert (out / name).stat().st_size > 0, name
    assert (out / "history.png").read_bytes()[:4] == b"\x89PNG"
    import pandas as pd

    table = pd.read_csv(out / "trials.csv")
    assert list(table["number"]) == list(range(8))
    assert list(table.columns[:2]) == ["number", "state"]
    assert {"params.width", "variant", "compile.optimizer.learning_rate", "objective", "seconds"} <= set(
        table.columns
    )
    done = table[table["state"] == "COMPLETE"]
    best = done.loc[done["objective"].idxmax()]
    # The first trial is the spec as written (base variant, its width, dropout and rate).
    first = table.iloc[0]
    assert (first["params.width"], first["variant"], first["compile.optimizer.learning_rate"]) == (
        16,
        "base",
        0.01,
    )

    monkeypatch.chdir(spec.parent)
    untuned = modelspec.train(spec, verbose=0).test_metrics["accuracy"]
    assert untuned == pytest.approx(first["objective"])  # trial 0 is the untuned spec, trained alike
    again = modelspec.train(out / "best.yaml", verbose=0).test_metrics["accuracy"]
    assert again == pytest.approx(best["objective"])  # best.yaml reproduces the best trial
    assert again >= untuned
    text = (out / "best.yaml").read_text()
    assert "sweep:" not in text and "${" not in text and f"trial {int(best['number'])}" in text
    from modelspec.training import load_trained

    assert load_trained(out / "best.keras").model.count_params() > 0
    assert sorted(os.listdir(out / "models")) == [f"trial-{int(best['number'])}.keras"]  # only the best kept


def test_a_rerun_continues_the_study(searched, capsys):
    spec, out = searched
    capsys.readouterr()
    assert main(["sweep", str(spec), "-o", str(out), "--trials", "10", "--allow-outside"]) == 0
    printed = capsys.readouterr().out
    assert printed.count("trial ") >= 2 and "trial   8 " in printed and "trial   9 " in printed
    assert "trial   0 " not in printed  # finished trials are not run again
    numbers = [t.number for t in study_trials(str(out / "journal"))]
    assert sorted(numbers) == list(range(10))
    # Asked for the trials it already has: nothing runs, the outputs are written again.
    assert main(["sweep", str(spec), "-o", str(out), "--trials", "10", "--allow-outside"]) == 0
    assert re.search(r"^trial +\d+ ", capsys.readouterr().out, re.M) is None


def test_a_point_the_memory_guard_refuses_fails_without_training(tmp_path):
    spec = write(
        tmp_path,
        """\
  objective: val_accuracy
  sampler: grid
  space:
    params.width: [8, 3000000000]
""",
        epochs=2,
    )
    result = modelspec.sweep(spec, trials=2)
    table = result.table.set_index("params.width")
    assert table.loc[8, "state"] == "COMPLETE"
    bomb = table.loc[3000000000]
    assert bomb["state"] == "FAIL"
    assert "too large" in bomb["problem"]
    assert bomb["seconds"] < 10 and bomb["seconds"] < table.loc[8, "seconds"]
    models = os.listdir(tmp_path / "spec.sweep" / "models")
    assert models == [f"trial-{int(table.loc[8, 'number'])}.keras"]
    assert result.best_point == {"params.width": 8}


def test_a_poor_trial_is_pruned(tmp_path):
    spec = write(
        tmp_path,
        """\
  objective: val_loss
  sampler: grid
  seed: 5
  pruner: median
  space:
    compile.optimizer.learning_rate: [0.05, 0.04, 0.03, 1.0e-7]
""",
        epochs=5,
        lr=0.02,
    )
    result = modelspec.sweep(spec, trials=4)
    states = dict(zip(result.table["compile.optimizer.learning_rate"], result.table["state"]))
    assert states == {0.05: "COMPLETE", 0.04: "COMPLETE", 0.03: "COMPLETE", 1e-7: "PRUNED"}
    pruned = result.table[result.table["state"] == "PRUNED"].iloc[0]
    assert "pruned after epoch" in pruned["problem"]
    assert result.best_point["compile.optimizer.learning_rate"] != 1e-7


def test_an_objective_training_does_not_report_stops_the_sweep_at_its_line(tmp_path):
    spec = write(
        tmp_path, "  objective: val_acuracy\n  trials: 3\n  space:\n    params.width: [4, 8]\n", epochs=1
    )
    with pytest.raises(modelspec.SpecError) as info:
        modelspec.sweep(spec)
    problem = info.value.problems[0]
    assert (problem.code, problem.line, problem.path) == ("sweep-objective", 25, ("sweep", "objective"))
    assert "val_accuracy" in problem.hint
    assert [t.state.name for t in study_trials(str(tmp_path / "spec.sweep" / "journal"))] == ["FAIL"]


def test_a_trial_whose_process_died_is_marked_failed_on_the_next_run(tmp_path):
    spec = write(tmp_path, "  objective: val_accuracy\n  space:\n    params.width: [4, 8]\n", epochs=1)
    journal = tmp_path / "spec.sweep" / "journal"
    journal.parent.mkdir()
    from optuna.storages.journal import JournalFileBackend

    study = optuna.create_study(
        study_name="spec", storage=optuna.storages.JournalStorage(JournalFileBackend(str(journal)))
    )
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    killed = study.ask({"params.width": optuna.distributions.CategoricalDistribution([4, 8])})
    killed.set_user_attr("host", socket.gethostname())
    killed.set_user_attr("pid", dead.pid)
    result = modelspec.sweep(spec, trials=2)
    assert list(result.table["state"]) == ["FAIL", "COMPLETE"]
    assert "process stopped" in result.table.iloc[0]["problem"]


def test_the_command_line_refuses_a_spec_without_a_sweep_and_a_space_key_fixed_twice(tmp_path, capsys):
    assert main(["sweep", str(SPECS / "iris.yaml"), "-o", str(tmp_path / "o")]) == 1
    assert "no 'sweep' section" in capsys.readouterr().err
    spec = write(tmp_path, "  objective: val_accuracy\n  trials: 2\n  space:\n    params.width: [4, 8]\n")
    assert main(["sweep", str(spec), "--set", "width=4"]) == 1
    err = capsys.readouterr().err
    assert "spec.yaml:28:5: error: sweep.space.params.width: params.width is searched by the sweep" in err
    with pytest.raises(SystemExit) as exited:
        main(["sweep", str(spec), "--workers", "0"])
    assert exited.value.code == 2
    assert not (tmp_path / "spec.sweep").exists()


def test_two_workers_share_a_journal_without_losing_a_trial(tmp_path, capfd):
    spec = write(
        tmp_path,
        "  objective: val_accuracy\n  trials: 4\n  space:\n    params.width: {int: [4, 32]}\n",
        epochs=2,
    )
    assert main(["sweep", str(spec), "--workers", "2"]) == 0
    out = capfd.readouterr().out  # the workers' progress lines come from their own processes
    trials = study_trials(str(tmp_path / "spec.sweep" / "journal"))
    assert sorted(t.number for t in trials) == [0, 1, 2, 3]
    assert all(t.state.name == "COMPLETE" for t in trials)
    assert len({t.user_attrs["pid"] for t in trials}) == 2  # both processes ran trials
    assert out.count(" complete ") == 4 and "4 trials: 4 complete" in out


# -- PostgreSQL ----------------------------------------------------------------------------------

PG_BIN = next(iter(sorted(pathlib.Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)), None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def postgres():
    """A PostgreSQL server of this machine's packages, on a free localhost port, as an unprivileged user."""
    pytest.importorskip("psycopg2", reason="psycopg2 is not installed (pip install psycopg2-binary)")
    if PG_BIN is None or not (PG_BIN / "initdb").exists():
        pytest.skip("PostgreSQL is not installed here (apt-get install postgresql; .ci/run does)")
    as_user: list[str] = []
    user = None
    if os.geteuid() == 0:  # initdb refuses root: run the server as an unprivileged user
        user = "modelspec-pg"
        if subprocess.run(["id", user], capture_output=True).returncode != 0:
            made = subprocess.run(["useradd", "--system", "--no-create-home", user], capture_output=True)
            if made.returncode != 0:
                pytest.skip(f"cannot create a user to run PostgreSQL as: {made.stderr.decode().strip()}")
        as_user = ["runuser", "-u", user, "--"]
    # Its own folder under the system's temporary folder: pytest's are private to the user running the tests.
    data = pathlib.Path(tempfile.mkdtemp(prefix="modelspec-pg-"))
    if user is not None:
        shutil.chown(data, user)
    port = _free_port()

    def run(*args):
        return subprocess.run([*as_user, *map(str, args)], capture_output=True, text=True, timeout=120)

    made = run(PG_BIN / "initdb", "-D", data, "-U", "sweep", "--auth=trust", "-E", "UTF8")
    assert made.returncode == 0, made.stderr
    started = run(
        PG_BIN / "pg_ctl",
        "-D",
        data,
        "-l",
        data / "log",
        "-w",
        "-o",
        f"-p {port} -k {data} -h 127.0.0.1",
        "start",
    )
    assert started.returncode == 0, started.stderr + (data / "log").read_text()
    try:
        made = run(PG_BIN / "createdb", "-h", "127.0.0.1", "-p", port, "-U", "sweep", "studies")
        assert made.returncode == 0, made.stderr
        yield f"postgresql://sweep@127.0.0.1:{port}/studies"
    finally:
        run(PG_BIN / "pg_ctl", "-D", data, "-m", "fast", "-w", "stop")
        shutil.rmtree(data, ignore_errors=True)


def test_two_workers_share_one_study_on_postgresql(tmp_path, postgres):
    spec = write(
        tmp_path,
        "  objective: val_accuracy\n  trials: 4\n  space:\n    params.width: {int: [4, 32]}\n",
        epochs=2,
    )
    t0 = time.perf_counter()
    result = modelspec.sweep(spec, workers=2, storage=postgres, study="iris-pg")
    assert time.perf_counter() - t0 < 600
    trials = study_trials(postgres, "iris-pg")
    assert sorted(t.number for t in trials) == [0, 1, 2, 3]
    assert len({t.user_attrs["pid"] for t in trials}) == 2  # both workers wrote trials into the one study
    assert result.best_trial in {0, 1, 2, 3} and (tmp_path / "spec.sweep" / "best.keras").exists()
    assert not (tmp_path / "spec.sweep" / "journal").exists()


def test_ctrl_c_fails_the_running_trial_and_keeps_what_finished(tmp_path):
    spec = write(
        tmp_path,
        "  objective: val_accuracy\n  trials: 50\n  space:\n    params.width: {int: [4, 32]}\n",
        epochs=40,
    )
    env = {**os.environ, "PYTHONPATH": str(pathlib.Path(modelspec.__file__).parent.parent)}
    process = subprocess.Popen(
        [sys.executable, "-m", "modelspec", "sweep", str(spec)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first = process.stdout.readline()  # the first trial's progress line: one trial has finished
        assert first.startswith("trial   0 complete"), first + process.stderr.read()
        time.sleep(3)  # into the second trial's training
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, err
    assert "modelspec: interrupted" in err and "Traceback" not in err
    assert "wrote " in out  # the outputs of what finished
    import pandas as pd

    table = pd.read_csv(tmp_path / "spec.sweep" / "trials.csv")
    assert table.iloc[0]["state"] == "COMPLETE"
    assert "RUNNING" not in set(table["state"])  # the trial Ctrl-C stopped is failed, not left running
    failed = table[table["state"] == "FAIL"]
    assert len(failed) <= 1 and all("interrupted" in p for p in failed["problem"])
    assert (tmp_path / "spec.sweep" / "best.keras").exists()


def test_checking_a_sweep_imports_no_optuna_keras_or_pandas():
    script = (
        "import sys; from modelspec.cli import main; code = main(['validate', 'specs/iris_sweep.yaml']);"
        "print(code, sorted({m.split('.')[0] for m in sys.modules} & "
        "{'optuna', 'keras', 'tensorflow', 'pandas', 'numpy', 'sqlalchemy', 'matplotlib'}))"
    )
    env = {**os.environ, "PYTHONPATH": str(SPECS.parent)}
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=SPECS.parent, env=env, capture_output=True, text=True
    )
    assert done.stdout.strip().endswith("0 []"), done.stdout + done.stderr


def test_choices_grids_durations_and_the_written_point():
    from modelspec.spec.sweep import read_choice, timeout_seconds, written_point

    dropout = read_choice({"float": [0.0, 0.4], "step": 0.1})[0]
    assert dropout.grid() == [0.0, 0.1, 0.2, 0.3, 0.4] and dropout.holds(0.1) and not dropout.holds(0.15)
    width = read_choice({"int": [4, 16], "step": 4})[0]
    assert width.grid() == [4, 8, 12, 16] and width.holds(8) and not width.holds(6) and not width.holds(8.0)
    assert read_choice({"float": [1e-4, 1e-1], "log": True})[0].grid() is None
    assert read_choice({"int": [1, 5], "log": True, "step": 2})[1].startswith("a range takes log or step")
    assert [timeout_seconds(t) for t in (90, "90s", "30m", "2h", "1.5h")] == [90, 90, 1800, 7200, 5400]
    with pytest.raises(ValueError, match="duration"):
        timeout_seconds("two hours")
    from modelspec.source import read_source
    from modelspec.spec import to_spec
    from modelspec.spec.sweep import read_space

    spec, _ = to_spec(read_source(SPECS / "iris_sweep.yaml"))
    point = written_point(spec, read_space(spec), {})
    assert point == {
        "params.width": 16,
        "params.dropout": 0.1,
        "variant": "base",
        "compile.optimizer.learning_rate": 0.01,
    }
    assert (
        written_point(spec, read_space(spec), {"width": 100}).get("params.width") is None
    )  # outside the range


def test_a_storage_that_cannot_be_reached_is_reported_at_the_option(tmp_path):
    spec = write(tmp_path, "  objective: val_accuracy\n  trials: 2\n  space:\n    params.width: [4, 8]\n")
    with pytest.raises(modelspec.SpecError) as info:
        modelspec.sweep(spec, storage=f"postgresql://someone:secret@127.0.0.1:{_free_port()}/studies")
    problem = info.value.problems[0]
    assert problem.code == "sweep-storage" and problem.path == ("--storage",)
    assert "secret" not in problem.message  # a password never reaches the terminal


def test_workers_get_only_the_classes_they_can_import_again(tmp_path, monkeypatch):
    """A class made in memory (a test's, a notebook's) stays behind: unpickling it would end a spawned worker."""
    import types

    import keras

    from modelspec.sweep.runner import _importable

    made = types.ModuleType("made_in_memory")
    exec(
        "import keras\nclass Twice(keras.layers.Layer):\n    def call(self, x):\n        return 2 * x\n",
        made.__dict__,
    )
    sys.modules["made_in_memory"] = made
    try:
        kept = _importable({"Twice": made.Twice, "Dense": keras.layers.Dense, "gelu": keras.activations.gelu})
    finally:
        del sys.modules["made_in_memory"]
    assert kept == {"Dense": keras.layers.Dense, "gelu": keras.activations.gelu}
    # A plugin module imported from a folder that has left sys.path since: a worker could not import it.
    (tmp_path / "gone_plugin.py").write_text("import keras\nclass Half(keras.layers.Layer):\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import gone_plugin

    assert _importable({"Half": gone_plugin.Half}) == {"Half": gone_plugin.Half}  # its folder is on sys.path
    monkeypatch.undo()
    try:
        assert _importable({"Half": gone_plugin.Half}) == {}
    finally:
        sys.modules.pop("gone_plugin", None)
