"""Every Keras backend: no foreign imports, equal seeds, distributed engines really run, a quiet terminal.

Tests that need a backend other than the one this run uses start a Python
process of their own with ``KERAS_BACKEND`` set, and are skipped when that
backend is not installed.
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys

import pytest
from conftest import DATA, ROOT, SPECS

BACKENDS = [b for b in ("tensorflow", "jax", "torch") if importlib.util.find_spec(b) is not None]


def run(code: str, backend: str, timeout: int = 300, **env: str) -> subprocess.CompletedProcess:
    environ = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": str(ROOT), **env}
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, env=environ, cwd=ROOT
    )


def iris_spec(tmp_path, extra: str = "", epochs: int = 8) -> str:
    text = (SPECS / "iris.yaml").read_text().split("  callbacks:")[0]
    text = text.replace("path: data/iris.csv", f"path: {DATA / 'iris.csv'}").replace(
        "epochs: 60", f"epochs: {epochs}"
    )
    path = tmp_path / "iris.yaml"
    path.write_text(text.replace("    validation_split: 0.1\n", "") + extra)
    return str(path)


@pytest.mark.parametrize("backend", [b for b in BACKENDS if b != "tensorflow"])
def test_other_backends_never_import_tensorflow(backend, tmp_path):
    code = (
        "import sys, modelspec\n"
        f"modelspec.build({str(SPECS / 'resnet50.yaml')!r})\n"
        f"result = modelspec.train({iris_spec(tmp_path, epochs=2)!r}, verbose=0)\n"
        "import keras\n"
        "print(keras.backend.backend(), 'tensorflow' in sys.modules)\n"
    )
    done = run(code, backend)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == [backend, "False"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_equal_seeds_give_equal_weights_within_a_backend(backend):
    code = (
        "import modelspec, numpy as np, keras\n"
        f"a, b = (modelspec.build({str(SPECS / 'ticket_router.yaml')!r}) for _ in range(2))\n"
        "same = all(np.array_equal(keras.ops.convert_to_numpy(x), keras.ops.convert_to_numpy(y))"
        " for x, y in zip(a.weights, b.weights))\n"
        "print(same)\n"
    )
    spec_has_seed = "seed:" in (SPECS / "ticket_router.yaml").read_text()
    done = run(code, backend)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == [str(spec_has_seed)]


def test_no_backend_is_one_line_with_the_install_command(tmp_path):
    # TensorFlow made unimportable, as on a machine where `pip install modelspec` brought no backend.
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'tensorflow':\n"
        "            raise ModuleNotFoundError(\"No module named 'tensorflow'\", name='tensorflow')\n"
        "sys.meta_path.insert(0, Block())\n"
        "from modelspec.cli import main\n"
        f"sys.exit(main(['build', {str(SPECS / 'iris.yaml')!r}, '-o', {str(tmp_path / 'm.keras')!r}]))\n"
    )
    done = run(code, "tensorflow")
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("modelspec: Keras cannot run: its 'tensorflow' backend cannot be imported")
    assert "pip install 'keras-modelspec[tensorflow]'" in lines[0] and "KERAS_BACKEND" in lines[0]
    assert not (tmp_path / "m.keras").exists()


@pytest.mark.skipif("jax" not in BACKENDS, reason="JAX is not installed")
def test_data_parallel_trains_on_two_jax_devices(tmp_path):
    code = (
        "import json, modelspec, keras\n"
        "results = [modelspec.train(path, verbose=0) for path in {paths}]\n"
        "print(json.dumps([len(keras.distribution.list_devices()), *[[r.replicas, r.test_metrics] for r in results]]))\n"
    )
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    one = iris_spec(tmp_path / "one", epochs=30)
    two = iris_spec(tmp_path / "two", "  distribution: data_parallel\n", epochs=30)
    done = run(code.format(paths=[one, two]), "jax", XLA_FLAGS="--xla_force_host_platform_device_count=2")
    assert done.returncode == 0, done.stderr[-3000:]
    devices, (single, alone), (replicas, shared) = json.loads(done.stdout.strip().splitlines()[-1])
    assert devices == 2 and single == 1 and replicas == 2
    assert abs(shared["accuracy"] - alone["accuracy"]) <= 0.1  # close to one device
    assert shared["loss"] < 0.6


def _two_workers(tmp_path, epochs: int = 5) -> tuple[list[subprocess.Popen], list[tuple[str, str]], object]:
    spec = iris_spec(tmp_path, "  distribution: multi_worker_mirrored\n", epochs=epochs)
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    out = tmp_path / "out"
    (out / "worker1").mkdir(parents=True)
    procs = []
    for index in range(2):
        env = {
            **os.environ,
            "KERAS_BACKEND": "tensorflow",
            "PYTHONPATH": str(ROOT),
            "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}),
        }
        env.pop("TF_CPP_MIN_LOG_LEVEL", None)
        target = out / "model.keras" if index == 0 else out / "worker1" / "model.keras"
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "modelspec", "train", spec, "-o", str(target), "-q"],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT,
            )
        )  # fmt: skip
    return procs, [p.communicate(timeout=400) for p in procs], out


@pytest.mark.skipif("tensorflow" not in BACKENDS, reason="TensorFlow is not installed")
@pytest.mark.skipif(
    os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow", reason="tf.distribute runs on TensorFlow"
)
def test_multi_worker_limit_is_said_plainly(tmp_path):
    procs, results, out = _two_workers(tmp_path, epochs=1)
    for p, (_, stderr) in zip(procs, results):
        if (
            p.returncode == 0
        ):  # Keras learned to do it: test_multi_worker_mirrored_trains_with_two_workers says
            continue
        assert p.returncode == 1 and "internal error" not in stderr and "Traceback" not in stderr
        assert "error: train.distribution: Keras" in stderr and "cannot fit a model across several" in stderr
        assert (
            "hint: train on one machine with distribution: mirrored, or on JAX with data_parallel" in stderr
        )
    assert not (out / "model.keras").exists() or all(p.returncode == 0 for p in procs)
    assert list((out / "worker1").iterdir()) == []


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.mark.skipif("tensorflow" not in BACKENDS, reason="TensorFlow is not installed")
@pytest.mark.skipif(
    os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow", reason="tf.distribute runs on TensorFlow"
)
@pytest.mark.xfail(
    strict=True,
    reason="Keras 3.15 (TensorFlow 2.20 and 2.21) cannot fit across tf.distribute workers (a PerReplica value reaches "
    "tf.constant in the train step; the same two-worker script in plain Keras fails alike); modelspec says so, "
    "located at train.distribution (test_multi_worker_limit_is_said_plainly); un-mark this once Keras can",
)
def test_multi_worker_mirrored_trains_with_two_workers(tmp_path):
    procs, results, out = _two_workers(tmp_path)
    for p, (_, stderr) in zip(procs, results):
        assert p.returncode == 0, stderr[-3000:]
    chief, worker = (r[0] for r in results)
    assert "replicas in sync: 2" in chief and "replicas in sync: 2" in worker
    assert (
        chief.split("test metrics")[1].split("wrote")[0]
        == worker.split("test metrics")[1].split("not the chief")[0]
    )
    assert (out / "model.keras").is_file()
    assert "not the chief worker of this multi-worker run: nothing written" in worker
    assert list((out / "worker1").iterdir()) == []  # the other worker writes nothing into the user's paths


@pytest.mark.skipif(
    os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow", reason="TensorFlow's start-up lines"
)
def test_train_is_quiet_unless_verbose(tmp_path):
    spec = iris_spec(tmp_path, epochs=1)
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env.update(KERAS_BACKEND="tensorflow", PYTHONPATH=str(ROOT))
    command = [sys.executable, "-m", "modelspec", "train", spec, "-o", str(tmp_path / "m.keras"), "-q"]
    quiet = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stderr == ""  # no absl, oneDNN or CUDA lines
    assert "wrote" in quiet.stdout
    loud = subprocess.run(
        [*command[:3], "--verbose", *command[3:]],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=300,
    )
    assert loud.returncode == 0 and (
        "oneDNN" in loud.stderr or "absl" in loud.stderr or "I0000" in loud.stderr
    )
