"""Serving files: ONNX, TFLite and SavedModel written by Keras's model.export, checked, and run here.

Every example spec that Keras can write as ONNX is built, exported and run
with onnxruntime by the test itself (not only by modelspec's own check); the
image models go to TFLite too. The largest ones run with MODELSPEC_SLOW=1
(benchmarks/bench_serving.py times them all).
"""

from __future__ import annotations

import csv
import json
import os
import zipfile

import keras
import numpy as np
import pytest
from conftest import DATA, ROOT, SPECS, flat, random_inputs

import modelspec
from modelspec.cli import main
from modelspec.keras import serving

ort = pytest.importorskip("onnxruntime")
pytestmark = pytest.mark.filterwarnings("ignore:.*tf.lite.Interpreter is deprecated:UserWarning")

ON_TENSORFLOW = keras.backend.backend() == "tensorflow"
needs_tensorflow = pytest.mark.skipif(
    not ON_TENSORFLOW, reason="ONNX through tf2onnx: the TensorFlow backend"
)
slow = pytest.mark.skipif(
    not os.environ.get("MODELSPEC_SLOW"),
    reason="heavy: set MODELSPEC_SLOW=1 (benchmarks/bench_serving.py runs all)",
)

LARGE = {"resnet50", "mobilenet_v2", "mobilenet_v3_small"}
"""Image models whose export and check take tens of seconds each on a 2-core CPU."""
NOT_ONNX = {
    "seed_sequential_unbuilt": "an unbuilt Sequential has no input shape",
    "bidirectional": "tf2onnx 1.17 gets the masked LSTM's time axis wrong: the check refuses the file (below)",
}
IMAGES = [
    "residual_cnn",
    "small_resnet",
    "squeeze_excite",
    "unet",
    "resnet50",
    "mobilenet_v2",
    "mobilenet_v3_small",
]


def _specs(names):
    return [pytest.param(name, marks=[slow] if name in LARGE else []) for name in names]


ALL = sorted(p.stem for p in SPECS.glob("*.yaml") if p.stem not in NOT_ONNX)


def run_onnx(path, model, data):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    data = data if isinstance(data, list) else [data]
    names = [i.name for i in session.get_inputs()]
    by_name = dict(zip([t.name for t in model.inputs], data))
    feeds = {n: by_name.get(n, data[i]) for i, n in enumerate(names)}
    return session.run(None, feeds)


def ids_for(model, data):
    """Token ids every vocabulary of the examples has (0 and 1) for the integer inputs."""
    data = data if isinstance(data, list) else [data]
    data = [d % 2 if "int" in str(d.dtype) else d for d in data]
    return data[0] if len(data) == 1 else data


@needs_tensorflow
@pytest.mark.parametrize("name", _specs(ALL))
def test_every_example_spec_runs_in_onnxruntime_like_keras(name, tmp_path):
    model = modelspec.build(SPECS / f"{name}.yaml")
    target = tmp_path / f"{name}.onnx"
    checked = serving.export_checked(model, target, "onnx")
    assert checked.bytes == target.stat().st_size and checked.difference <= 1e-4
    data = ids_for(model, random_inputs(model, batch=3, seed=1))  # another batch than the check's
    want = flat(model(data, training=False))
    got = run_onnx(target, model, data)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, atol=1e-4, rtol=1e-4)
    assert [p.name for p in tmp_path.iterdir()] == [target.name]  # no temporary left


def test_build_writes_onnx_from_the_command_line(tmp_path, capsys):
    target = tmp_path / "iris.onnx"
    assert main(["build", str(SPECS / "iris.yaml"), "-o", str(target)]) == 0
    assert f"wrote {target} (ONNX, " in capsys.readouterr().out
    session = ort.InferenceSession(str(target), providers=["CPUExecutionProvider"])
    assert [i.shape[1:] for i in session.get_inputs()] == [[4]]


@pytest.mark.skipif(not ON_TENSORFLOW, reason="TFLite is written on the TensorFlow (or PyTorch) backend")
@pytest.mark.parametrize("name", _specs(IMAGES))
def test_image_models_run_in_the_tflite_interpreter_like_keras(name, tmp_path):
    import tensorflow as tf

    model = modelspec.build(SPECS / f"{name}.yaml")
    target = tmp_path / f"{name}.tflite"
    serving.export_checked(model, target, "tflite")
    data = random_inputs(model, batch=1, seed=2)
    runner = tf.lite.Interpreter(model_path=str(target)).get_signature_runner()
    (key,) = runner.get_input_details()
    (out,) = runner(**{key: data}).values()
    np.testing.assert_allclose(out, flat(model(data, training=False))[0], atol=1e-4, rtol=1e-4)


@pytest.mark.skipif(not ON_TENSORFLOW, reason="a SavedModel is written on TensorFlow here")
def test_saved_model_folder_is_written_checked_and_replaced_whole(tmp_path, capsys):
    import tensorflow as tf

    target = tmp_path / "served"
    args = ["build", str(SPECS / "iris.yaml"), "--format", "saved_model", "-o", str(target)]
    assert main(args) == 0
    assert "TensorFlow SavedModel" in capsys.readouterr().out
    loaded = tf.saved_model.load(str(target))
    model = modelspec.build(SPECS / "iris.yaml")
    x = random_inputs(model, seed=3)
    np.testing.assert_allclose(loaded.serve(x).numpy(), keras.ops.convert_to_numpy(model(x)), atol=1e-5)
    (target / "marker").write_text("old")
    assert main(args) == 0  # an earlier SavedModel is replaced as a whole
    assert not (target / "marker").exists() and (target / "saved_model.pb").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["served"]


def test_saved_model_never_replaces_a_folder_that_is_not_one(tmp_path, capsys):
    target = tmp_path / "photos"
    target.mkdir()
    (target / "cat.jpg").write_text("precious")
    assert main(["build", str(SPECS / "iris.yaml"), "--format", "saved_model", "-o", str(target)]) == 1
    assert "not a SavedModel folder" in capsys.readouterr().err
    assert (target / "cat.jpg").read_text() == "precious"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-o", "m.onnx", "--format", "tflite"], "--format tflite writes a .tflite file, got 'm.onnx'"),
        (["-o", "m.pb"], "the output must end in .keras, .onnx or .tflite"),
        (["-o", "m.onnx", "--format", "saved_model"], "writes a folder"),
        (["-o", "m.onnx", "--format", "onx"], "did you mean 'onnx'?"),
    ],
)
def test_output_and_format_that_disagree_are_a_command_line_error(args, message, tmp_path, capsys):
    try:
        status = main(["build", str(SPECS / "iris.yaml"), *args])
    except SystemExit as e:  # argparse's own checks
        status = e.code
    assert status == 2
    assert message in capsys.readouterr().err


def test_jax_cannot_write_tflite_said_before_any_work(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    calls = []
    monkeypatch.setattr(modelspec.api, "load_checked", lambda *a, **k: calls.append(a))
    target = tmp_path / "m.tflite"
    assert main(["build", str(SPECS / "iris.yaml"), "-o", str(target)]) == 1
    err = capsys.readouterr().err
    assert "Keras cannot write TFLite (LiteRT) on the jax backend, only on tensorflow or torch" in err
    assert calls == [] and not target.exists()


def test_a_missing_converter_names_the_extra_to_install(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    monkeypatch.setattr(serving, "_installed", lambda module: module != "tf2onnx")
    assert main(["build", str(SPECS / "iris.yaml"), "-o", str(tmp_path / "m.onnx")]) == 1
    err = capsys.readouterr().err
    assert "needs tf2onnx: pip install 'keras-modelspec[onnx]'" in err


@needs_tensorflow
def test_a_file_that_answers_differently_is_an_error_and_not_written(tmp_path, capsys, monkeypatch):
    target = tmp_path / "m.onnx"
    target.write_bytes(b"the old file")
    real = serving.RUNNERS["onnx"]

    def off(path, model, batch):
        found = real(path, model, batch)
        found[0][1, 2] += 0.25
        return found

    monkeypatch.setitem(serving.RUNNERS, "onnx", off)
    assert main(["build", str(SPECS / "iris.yaml"), "-o", str(target)]) == 1
    err = capsys.readouterr().err
    assert f"{target}: error: output: output 'species' differs from Keras by up to 0.25 (at (1, 2):" in err
    assert "beyond the tolerance of 0.0001" in err
    assert target.read_bytes() == b"the old file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]


@needs_tensorflow
def test_a_wrong_conversion_is_caught_and_not_written(tmp_path, capsys):
    # Known today: tf2onnx converts the masked Bidirectional LSTM with a wrong time axis.
    target = tmp_path / "tags.onnx"
    assert main(["build", str(SPECS / "bidirectional.yaml"), "-o", str(target)]) == 1
    err = capsys.readouterr().err
    assert "error: output: output 'tags' has shape (2, " in err and "(2, 8, 5) in Keras" in err
    assert list(tmp_path.iterdir()) == []


def test_a_list_of_layers_without_input_cannot_be_served(tmp_path, capsys):
    assert main(["build", str(SPECS / "seed_sequential_unbuilt.yaml"), "-o", str(tmp_path / "m.onnx")]) == 1
    assert "the model has no inputs yet" in capsys.readouterr().err


@needs_tensorflow
def test_trained_iris_exported_to_onnx_answers_like_predict(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    model = tmp_path / "iris.keras"
    train = ["train", "specs/iris.yaml", "-o", str(model), "--epochs", "15", "-q", "--export", "onnx"]
    assert main(train) == 0
    assert f"wrote {tmp_path / 'iris.onnx'} (ONNX," in capsys.readouterr().out
    predictions = tmp_path / "predictions.csv"
    assert main(["predict", str(model), "--data", str(DATA / "iris.csv"), "-o", str(predictions)]) == 0
    with zipfile.ZipFile(model) as archive:
        metadata = json.loads(archive.read("modelspec.json"))
    rows = list(csv.DictReader((DATA / "iris.csv").open()))
    x = np.array(
        [[float(r[c]) for c in metadata["features"]] for r in rows], dtype="float32"
    )  # raw: not normalized
    session = ort.InferenceSession(str(tmp_path / "iris.onnx"), providers=["CPUExecutionProvider"])
    (probabilities,) = session.run(None, {session.get_inputs()[0].name: x})
    labels = metadata["outputs"][0]["labels"]
    answers = list(csv.DictReader(predictions.open()))
    assert [labels[i] for i in probabilities.argmax(axis=1)] == [a["species"] for a in answers]
    np.testing.assert_allclose(
        probabilities.max(axis=1), [float(a["species_probability"]) for a in answers], atol=1e-4
    )


def test_train_export_that_cannot_be_written_is_refused_before_training(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    out = tmp_path / "iris.keras"
    assert main(["train", "specs/iris.yaml", "-o", str(out), "--export", "tflite"]) == 1
    assert "Keras cannot write TFLite (LiteRT) on the jax backend" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
