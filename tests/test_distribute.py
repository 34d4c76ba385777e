"""Distribution across processes and devices: data_parallel on N processes, model_parallel layouts.

The runs that need JAX (``keras.distribution``) start Python processes of
their own with ``KERAS_BACKEND=jax``, and are skipped when JAX is not
installed; the multi-process run and the run on 4 virtual devices never share
a process (XLA's CPU collectives across processes and virtual devices do not
mix). The static layout check needs no Keras; it is checked against the
variables Keras really makes.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import DATA, ROOT, SPECS

import modelspec
from modelspec.analysis.layouts import model_variables
from modelspec.api import load_checked
from modelspec.training.batches import batch_plan, check_batch_size

HAS_JAX = importlib.util.find_spec("jax") is not None
needs_jax = pytest.mark.skipif(not HAS_JAX, reason="keras.distribution runs on JAX, which is not installed")


def environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KERAS_DISTRIBUTION_", "XLA_FLAGS"))}
    return {**env, "KERAS_BACKEND": "jax", "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3", **extra}


def python(code: str, timeout: int = 400, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, env=environment(**env)
    )


def train_command(folder, *args: str, timeout: int = 400, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "modelspec", "train", "iris.yaml", "-o", "out/m.keras", "-q", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=environment(**env),
        cwd=folder,
    )


def iris_folder(folder, distribution: str, epochs: int = 6, extra: str = ""):
    """The iris example in ``folder`` (with its CSV), without validation rows, and this distribution."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "out").mkdir()
    shutil.copy(DATA / "iris.csv", folder / "iris.csv")
    text = (SPECS / "iris.yaml").read_text().split("  callbacks:")[0]
    text = text.replace("path: data/iris.csv", "path: iris.csv").replace("epochs: 60", f"epochs: {epochs}")
    text = text.replace("    validation_split: 0.1\n", "") + extra + f"  distribution: {distribution}\n"
    (folder / "iris.yaml").write_text(text)
    return folder


def weights_of(path) -> list[np.ndarray]:
    import keras

    return [np.asarray(w) for w in keras.saving.load_model(path, safe_mode=True).get_weights()]


# -- data parallel across processes ---------------------------------------------------------


@needs_jax
def test_two_processes_train_the_weights_of_one(tmp_path):
    one = iris_folder(tmp_path / "one", "{type: data_parallel, processes: 1}")
    two = iris_folder(tmp_path / "two", "{type: data_parallel, processes: 2}")
    alone = train_command(one)
    assert alone.returncode == 0, alone.stderr[-3000:]
    shared = train_command(two)
    assert shared.returncode == 0, shared.stderr[-3000:]
    assert "replicas in sync: 2" in shared.stdout and "wrote out/m.keras" in shared.stdout
    assert shared.stdout.count("wrote") == 1  # the other worker is quiet
    # One set of outputs, from process 0; the same metrics as one process on the same global batches.
    assert sorted(p.name for p in (two / "out").iterdir()) == ["m.curves.png", "m.history.csv", "m.keras"]
    assert sorted(p.name for p in two.iterdir()) == ["iris.csv", "iris.yaml", "out"]
    a, b = weights_of(one / "out" / "m.keras"), weights_of(two / "out" / "m.keras")
    assert len(a) == len(b) == 9  # normalize (mean, variance, count) and three Dense layers
    for x, y in zip(a, b):
        np.testing.assert_allclose(x, y, atol=1e-6, rtol=0)
    import pandas as pd

    history = [pd.read_csv(f / "out" / "m.history.csv") for f in (one, two)]
    assert len(history[0]) == 6 and list(history[0].columns) == list(history[1].columns)
    np.testing.assert_allclose(history[0]["loss"], history[1]["loss"], atol=1e-6)
    assert history[1]["loss"].iloc[-1] < history[1]["loss"].iloc[0]  # it trained


DYING_PLUGIN = """
import os
import keras
import modelspec


@modelspec.register
class DieInSecondEpoch(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if os.environ.get("KERAS_DISTRIBUTION_PROCESS_ID") == "1" and epoch == 1:
            os._exit(3)
"""


@needs_jax
def test_a_worker_that_dies_ends_the_job_with_nothing_written(tmp_path):
    folder = iris_folder(
        tmp_path / "job",
        "{type: data_parallel, processes: 2}",
        epochs=30,
        extra="  callbacks: [DieInSecondEpoch]\n",
    )
    (folder / "dying.py").write_text(DYING_PLUGIN)
    start = time.monotonic()
    done = train_command(folder, "--plugin", "dying", PYTHONPATH=f"{ROOT}{os.pathsep}{folder}")
    assert done.returncode == 1, done.stderr[-3000:]
    assert (
        time.monotonic() - start < 300
    )  # process 0 waited on a dead peer: it was stopped, not left to time out
    assert "error: train.distribution.processes: worker process 1 of 2 failed (exit status 3)" in done.stderr
    assert "nothing was written" in done.stderr and "Traceback" not in done.stderr
    assert list((folder / "out").iterdir()) == []
    left = [pid for pid in os.listdir("/proc") if pid.isdigit() and str(folder) in _cmdline(pid) + _cwd(pid)]
    assert left == []  # no worker left behind


def _cmdline(pid: str) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _cwd(pid: str) -> str:
    try:
        return os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return ""


@needs_jax
def test_processes_and_meshes_say_what_they_need(tmp_path):
    # In Python, a job of 2 processes needs Keras's variables; a mesh needs its devices; both located.
    folder = iris_folder(tmp_path / "py", "{type: data_parallel, processes: 2}")
    mesh = iris_folder(
        tmp_path / "mesh",
        "\n    type: model_parallel\n    mesh: {batch: 2, model: 2}\n    layouts: {'iris_mlp/dense/kernel': [null, model]}",
    )
    code = (
        "import json, modelspec\n"
        "found = []\n"
        f"for path in [{str(folder / 'iris.yaml')!r}, {str(mesh / 'iris.yaml')!r}]:\n"
        "    try:\n"
        "        modelspec.train(path, verbose=0)\n"
        "    except modelspec.SpecError as e:\n"
        "        p = e.problems[0]\n"
        "        found.append([p.code, '.'.join(map(str, p.path)), p.line, p.message, p.hint])\n"
        "print(json.dumps(found))\n"
    )
    done = python(code)
    assert done.returncode == 0, done.stderr[-3000:]
    processes, devices = json.loads(done.stdout.strip().splitlines()[-1])
    assert processes[:3] == ["training-config", "train.distribution.processes", 30]
    assert "`modelspec train` starts them" in processes[3] and "KERAS_DISTRIBUTION_PROCESS_ID" in processes[3]
    assert devices[:3] == ["training-config", "train.distribution.mesh", 32]
    assert "needs 4 devices, and this job has 1" in devices[3]
    assert "--xla_force_host_platform_device_count=4" in devices[4]


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="PyTorch is not installed")
def test_pytorch_refuses_at_train_distribution(tmp_path):
    folder = iris_folder(tmp_path / "torch", "data_parallel")
    code = (
        "import modelspec\n"
        "try:\n"
        f"    modelspec.train({str(folder / 'iris.yaml')!r}, verbose=0)\n"
        "except modelspec.SpecError as e:\n"
        "    print(e.problems[0].format(excerpt=False))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        env={**environment(), "KERAS_BACKEND": "torch"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert (
        "error: train.distribution: distribution 'data_parallel' is keras.distribution.DataParallel"
        in done.stdout
    )
    assert "Keras 3.15 has no keras.distribution on PyTorch" in done.stdout and "a later Keras" in done.stdout


# -- model parallel --------------------------------------------------------------------------

MODEL_PARALLEL = """
import json, sys
import numpy as np
import keras, modelspec

result = modelspec.train(sys.argv[1], verbose=0)
print(json.dumps({
    "devices": len(keras.distribution.list_devices()),
    "replicas": result.replicas,
    "loss": result.history["loss"],
    "weights": {v.path: np.asarray(v.numpy()).tolist() for v in result.model.weights},
    "sharding": {v.path: [str(a) for a in v.value.sharding.spec] if hasattr(v.value.sharding, "spec") else None
                 for v in result.model.weights},
    "shards": {v.path: [list(s.data.shape) for s in v.value.addressable_shards] for v in result.model.weights},
}))
"""

WIDE = """modelspec: 1
name: iris_wide
seed: 7
inputs:
  features: [4]
layers:
  hidden: {type: Dense, units: 16, activation: relu}
  wide: {type: Dense, units: 8, activation: relu}
  species: {type: Dense, units: 3, activation: softmax}
compile:
  optimizer: {type: Adam, learning_rate: 0.01}
  loss: sparse_categorical_crossentropy
  metrics: [accuracy]
train:
  data: {path: iris.csv, target: species, test_split: 0.2, seed: 0}
  normalize: true
  epochs: 4
  batch_size: 16
"""


@needs_jax
def test_model_parallel_shards_the_kernels_and_trains_like_one_device(tmp_path):
    shutil.copy(DATA / "iris.csv", tmp_path / "iris.csv")
    (tmp_path / "run.py").write_text(MODEL_PARALLEL)
    sharded = tmp_path / "sharded.yaml"
    sharded.write_text(
        WIDE + "  distribution:\n    type: model_parallel\n    mesh: {batch: 2, model: 2}\n    layouts:\n"
        '      "(hidden|wide)/kernel": [null, model]\n      "(hidden|wide)/bias": [model]\n'
    )
    single = tmp_path / "single.yaml"
    single.write_text(WIDE + "  distribution: {type: data_parallel, processes: 1}\n")
    assert modelspec.load(sharded).train.distribution.mesh == {"batch": 2, "model": 2}  # validate accepts it

    def run(spec, **env):
        done = subprocess.run(
            [sys.executable, str(tmp_path / "run.py"), str(spec)],
            capture_output=True,
            text=True,
            timeout=400,
            env=environment(**env),
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return json.loads(done.stdout.strip().splitlines()[-1])

    four = run(sharded, XLA_FLAGS="--xla_force_host_platform_device_count=4")
    one = run(single)
    assert four["devices"] == 4 and four["replicas"] == 2 and one["devices"] == 1
    assert four["sharding"]["hidden/kernel"] == ["None", "model"]
    assert four["sharding"]["wide/bias"] == ["model"]
    assert four["sharding"]["species/kernel"] in (["None", "None"], [])  # replicated
    assert four["shards"]["hidden/kernel"] == [[4, 8]] * 4  # (4, 16) split in two along 'model', on 4 devices
    assert set(four["weights"]) == set(one["weights"])
    for path, value in one["weights"].items():
        np.testing.assert_allclose(np.asarray(four["weights"][path]), np.asarray(value), atol=1e-5, rtol=0)
    np.testing.assert_allclose(four["loss"], one["loss"], atol=1e-5)
    assert four["loss"][-1] < four["loss"][0]


# -- the static layout check -------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["iris", "residual_cnn", "lstm_state", "mobilenet_v3_small", "ticket_router", "attention"]
)
def test_the_variables_validate_knows_are_those_keras_makes(name):
    graph, analysis = load_checked(SPECS / f"{name}.yaml", strict_rules=True).model()
    known, unknown = model_variables(graph, analysis)
    model = modelspec.build(SPECS / f"{name}.yaml")
    made = {v.path: tuple(v.shape) for v in model.weights}
    assert {v.path: v.shape for v in known}.items() <= made.items()
    if not unknown:  # every layer's variables known: all of them, none left out
        assert len(known) == len(made)
    else:
        assert name in ("lstm_state", "attention")  # a decoder fed its states, an attention layer


def test_the_variables_of_a_trained_model_include_its_normalization(tmp_path):
    folder = iris_folder(tmp_path / "norm", "none", epochs=1)
    result = modelspec.train(folder / "iris.yaml", verbose=0)
    graph, analysis = load_checked(folder / "iris.yaml", strict_rules=True).model()
    known, unknown = model_variables(graph, analysis, normalize=True)
    assert unknown == []
    assert {v.path: v.shape for v in known} == {v.path: tuple(v.shape) for v in result.model.weights}
    assert "normalize/mean" in {v.path for v in known} and "iris_mlp/dense_1/kernel" in {
        v.path for v in known
    }


def test_layouts_of_a_spec_that_fits_pass_validate(tmp_path, capsys):
    from modelspec.cli import main

    path = tmp_path / "wide.yaml"
    path.write_text(
        WIDE
        + "  distribution:\n    type: model_parallel\n    mesh: {data: 2, model: 4}\n    batch_axis: data\n"
        '    layouts:\n      "normalize/(mean|variance)": [model]\n      "hidden/kernel": [model, model]\n'
    )
    assert main(["validate", str(path)]) == 1  # one axis for two dimensions of a variable
    assert "mesh axis 'model' shards two dimensions" in capsys.readouterr().err
    path.write_text(path.read_text().replace("[model, model]", "[model, null]"))
    assert main(["validate", str(path)]) == 0, capsys.readouterr().err


# -- global batches ------------------------------------------------------------------------------


def test_global_batches_split_evenly_and_in_process_order():
    import keras

    from modelspec.training.batches import global_batches

    assert batch_plan(120, 16, 2) == [(i, 16) for i in range(0, 112, 16)] + [(112, 8)]
    assert batch_plan(21, 8, 4) == [(0, 8), (8, 8), (16, 4)]  # the last 5 rows: 4 fit the 4 devices
    assert batch_plan(3, 8, 4) == []
    x = np.arange(42, dtype="float32").reshape(21, 2)
    y = {"a": np.arange(21), "b": np.arange(21) * 10}
    parts = [
        global_batches(keras, x, y, batch_size=8, shards=4, processes=2, process=p, seed=5, shuffle=True)
        for p in range(2)
    ]
    whole = global_batches(keras, x, y, batch_size=8, shards=4, processes=1, process=0, seed=5, shuffle=True)
    for _ in range(2):
        seen = []
        for step in range(len(whole)):
            (x0, y0), (x1, y1), (xw, yw) = parts[0][step], parts[1][step], whole[step]
            np.testing.assert_array_equal(np.concatenate([x0, x1]), xw)
            np.testing.assert_array_equal(np.concatenate([y0["b"], y1["b"]]), yw["b"])
            seen += list(yw["a"])
        assert len(seen) == 20 and len(set(seen)) == 20
        for batches in (*parts, whole):
            batches.on_epoch_end()
    assert list(whole[0][1]["a"]) != list(
        global_batches(keras, x, y, batch_size=8, shards=4, processes=1, process=0, seed=5, shuffle=True)[0][
            1
        ]["a"]
    )  # a new order each epoch


def test_a_batch_that_does_not_split_is_located():
    spec = modelspec.load(SPECS / "iris.yaml")
    with pytest.raises(modelspec.SpecError) as info:
        check_batch_size(15, 2, spec.at("train", "batch_size"))
    (problem,) = info.value.problems
    assert problem.path == ("train", "batch_size") and problem.line == 30
    assert "does not split evenly over the 2 devices" in problem.message and "14 or 16" in problem.hint
