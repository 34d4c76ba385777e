"""Training from the spec: data, normalization, distribution, the train/evaluate/predict/data commands."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import zipfile

import keras
import numpy as np
import pandas as pd
import pytest
from conftest import DATA, ROOT, SPECS

import modelspec
from modelspec.cli import main
from modelspec.training import fitting as _fit
from modelspec.training import predict

BACKEND = os.environ.get("KERAS_BACKEND", "tensorflow")
PNG = b"\x89PNG\r\n\x1a\n"

SMALL = """\
modelspec: 1
seed: 1
inputs:
  features: {{shape: [4]}}
layers:
  - {{type: Dense, units: 8, activation: relu}}
  - {{type: Dense, units: {units}, activation: {activation}, name: species}}
compile:
  optimizer: adam
  loss: {loss}
  metrics: [accuracy]
train:
  data:
    path: {path}
    features: [sepal_length, sepal_width, petal_length, petal_width]
    target: species
    test_split: {test_split}
    validation_split: 0.1
  normalize: true
  epochs: 2
"""


def small(units=3, activation="softmax", loss="sparse_categorical_crossentropy", path=None, test_split=0.2):
    """A quick iris spec (2 epochs) whose pieces a test can change."""
    return SMALL.format(
        units=units, activation=activation, loss=loss, path=path or DATA / "iris.csv", test_split=test_split
    )


def sklearn_split(n: int, test_split: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """What sklearn's train_test_split(test_size=test_split, random_state=seed) picks: (rest, test)."""
    order = np.random.RandomState(seed).permutation(n)
    n_test = math.ceil(n * test_split)
    return order[n_test:], order[:n_test]


# -- quality: the spec trains like the same network written by hand ---------------------


@pytest.fixture(scope="module")
def wine():
    """The wine example trained from its spec (15 epochs: half its own, to keep the tests quick)."""
    return modelspec.train(SPECS / "wine.yaml", epochs=15, verbose=0)


def test_wine_from_spec_matches_hand_written_keras(wine):
    # The same work by hand: ';'-separated CSV, string labels, split, standardize, fit.
    frame = pd.read_csv(DATA / "wine.csv", sep=";")
    names = sorted(frame["cultivar"].unique())
    x = frame.drop(columns="cultivar").to_numpy("float32")
    y = frame["cultivar"].map({name: i for i, name in enumerate(names)}).to_numpy()
    rest, test = sklearn_split(len(frame), 0.2, seed=0)
    keras.utils.set_random_seed(7)
    net = keras.Sequential([
        keras.Input(shape=(13,)),
        keras.layers.Dense(16, activation="relu"),
        keras.layers.Dense(3, activation="softmax"),
    ])  # fmt: skip
    initial = [w.copy() for w in net.get_weights()]
    norm = keras.layers.Normalization()
    norm.adapt(x[rest[: int(len(rest) * 0.9)]])  # the rows fit() trains on; it validates on the last 10 %
    features = keras.Input(shape=(13,))
    model = keras.Model(features, net(norm(features)))
    model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy", metrics=["accuracy"])
    fitted = model.fit(x[rest], y[rest], validation_split=0.1, epochs=15, batch_size=16, verbose=0)
    hand = model.evaluate(x[test], y[test], return_dict=True, verbose=0)

    assert wine.labels == {"cultivar": names} == {"cultivar": ["barbera", "barolo", "grignolino"]}
    assert wine.rows == {"train": 127, "validation": 15, "test": 36}
    # Equal seeds, equal work: the same initial weights, bit for bit ...
    built = modelspec.build(SPECS / "wine.yaml")
    for got, want in zip(built.get_weights(), initial, strict=True):
        np.testing.assert_array_equal(got, want)
    # ... the same history epoch by epoch, and the same trained weights.
    assert sorted(wine.history) == sorted(fitted.history)
    for name, values in fitted.history.items():
        np.testing.assert_allclose(wine.history[name], values, rtol=1e-5, atol=1e-6, err_msg=name)
    for got, want in zip(wine.model.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert wine.test_metrics == pytest.approx(hand, rel=1e-5)
    assert wine.test_metrics["accuracy"] >= 0.9


def test_linnerud_two_outputs_match_hand_written_keras():
    result = modelspec.train(SPECS / "linnerud.yaml", verbose=0)

    frame = pd.read_csv(DATA / "linnerud.csv")
    x = frame[["chins", "situps", "jumps"]].to_numpy("float32")
    rest, test = sklearn_split(len(frame), 0.2, seed=0)
    keras.utils.set_random_seed(3)
    exercises = keras.Input(shape=(3,))
    norm = keras.layers.Normalization()
    norm.adapt(x[rest])
    hidden = keras.layers.Dense(16, activation="relu")(norm(exercises))
    weight, waist = keras.layers.Dense(1, name="weight")(hidden), keras.layers.Dense(1, name="waist")(hidden)
    model = keras.Model(exercises, [weight, waist])
    model.compile(
        keras.optimizers.Adam(0.1),
        {"weight": "mean_squared_error", "waist": "mean_squared_error"},
        metrics={"weight": ["mae"], "waist": ["mae"]},
    )
    targets = [frame["weight"].to_numpy("float32"), frame["waist"].to_numpy("float32")]
    fitted = model.fit(x[rest], [t[rest] for t in targets], epochs=60, batch_size=8, verbose=0)
    hand = model.evaluate(x[test], [t[test] for t in targets], return_dict=True, verbose=0)

    got = result.test_metrics
    assert result.targets == {"weight": "weight", "waist": "waist"}
    assert result.features == ["chins", "situps", "jumps"]  # pulse is not a feature
    assert result.labels == {"weight": None, "waist": None}
    assert set(got) == set(hand) >= {"loss", "weight_loss", "waist_loss", "weight_mae", "waist_mae"}
    # Both learnt the scale of the targets (an untrained net is ~170 lb and ~35 in off) ...
    first = result.history
    assert got["weight_mae"] < first["weight_mae"][0] / 4 and got["waist_mae"] < first["waist_mae"][0] / 4
    assert hand["weight_mae"] < first["weight_mae"][0] / 4
    # ... and, with equal seeds, learnt it the same way: epoch by epoch, and on the 4 test rows.
    assert sorted(first) == sorted(fitted.history)
    for name, values in fitted.history.items():
        np.testing.assert_allclose(first[name], values, rtol=1e-5, atol=1e-5, err_msg=name)
    assert got == pytest.approx(hand, rel=1e-5)
    # The functional model got its Normalization in front, and kept its output names
    # (the keys of its per-output losses and of the target mapping).
    layers = [layer.name for layer in result.model.layers]
    assert layers == ["exercises", "normalize", "hidden", "weight", "waist"]
    assert result.model.output_names == ["weight", "waist"]


def test_normalization_is_inside_the_saved_model(tmp_path, wine):
    result = wine
    path = tmp_path / "wine.keras"
    result.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    norm = loaded.get_layer("normalize")
    assert isinstance(norm, keras.layers.Normalization) and loaded.layers[0] is norm
    # Adapted on the training rows only: their mean, not the whole file's.
    frame = pd.read_csv(DATA / "wine.csv", sep=";")
    rest, _ = sklearn_split(len(frame), 0.2, seed=0)
    train_rows = frame.drop(columns="cultivar").to_numpy("float64")[rest[: int(len(rest) * 0.9)]]
    np.testing.assert_allclose(
        np.ravel(keras.ops.convert_to_numpy(norm.mean)), train_rows.mean(axis=0), rtol=1e-4
    )
    # Raw features in, the same answers out: serving needs no separate scaler.
    x = frame.drop(columns="cultivar").to_numpy("float32")[:5]
    np.testing.assert_allclose(loaded.predict(x, verbose=0), result.model.predict(x, verbose=0), rtol=1e-5)
    with zipfile.ZipFile(path) as archive:
        meta = json.loads(archive.read("modelspec.json"))
    assert meta["sep"] == ";" and meta["features"] == list(frame.columns[:-1])
    assert meta["outputs"] == [
        {
            "name": "cultivar",
            "column": "cultivar",
            "kind": "sparse",
            "units": 3,
            "labels": ["barbera", "barolo", "grignolino"],
            "from_logits": False,
        }
    ]


def test_same_seed_same_training():
    first, second = (modelspec.train(SPECS / "iris.yaml", epochs=1, verbose=0) for _ in range(2))
    assert first.history == second.history
    for a, b in zip(first.model.get_weights(), second.model.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_ctrl_c_python_drops_still_stops_the_fit():
    """SIGINT inside a finalizer: Python prints "Exception ignored" and goes on; the fit must stop anyway."""
    import signal

    class Finalized:
        def __del__(self):
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(10_000):  # the pending signal is raised here, inside the finalizer, and dropped
                pass

    class Dropped(keras.callbacks.Callback):
        batches = 0

        def on_train_batch_end(self, batch, logs=None):
            Dropped.batches += 1
            if Dropped.batches == 2:
                Finalized()

    record = modelspec.api.checked(SPECS / "iris.yaml")
    graph, _ = record.model()
    with pytest.raises(KeyboardInterrupt):
        _fit.fit(record.spec, graph, {}, epochs=5, batch_size=8, verbose=0, callbacks=[Dropped()])
    assert Dropped.batches == 2  # stopped before the next batch, not at the end of the fit
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # Python's handler is back


def test_python_api_overrides(tmp_path):
    test_rows = pd.read_csv(DATA / "iris.csv").sample(frac=1.0, random_state=1).head(60)
    other = tmp_path / "other.csv"
    test_rows.to_csv(other, index=False)
    result = modelspec.train(SPECS / "iris.yaml", epochs=3, batch_size=64, data=other, verbose=0)
    assert isinstance(result, modelspec.TrainResult)
    assert result.rows == {"train": 43, "validation": 5, "test": 12}
    assert len(result.history["loss"]) == 3
    assert set(result.test_metrics) == {"loss", "accuracy"}
    assert result.replicas == 1


# -- distribution ----------------------------------------------------------------------

MIRRORED = r"""
import json, os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import tensorflow as tf

# Two logical CPU devices; this must happen before TensorFlow initializes.
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras
import modelspec

result = modelspec.train(sys.argv[1], verbose=0)
result.save(sys.argv[2])
loaded = keras.saving.load_model(sys.argv[2], safe_mode=True)
print(json.dumps({
    "devices": len(tf.config.list_logical_devices("CPU")),
    "replicas": result.replicas,
    "variable": type(result.model.trainable_weights[0].value).__name__,
    "components": len(result.model.trainable_weights[0].value.values),
    "accuracy": result.test_metrics["accuracy"],
    "loss": result.history["loss"],
    "loaded_layers": [layer.name for layer in loaded.layers],
}))
"""


@pytest.mark.skipif(BACKEND != "tensorflow", reason="tf.distribute runs on TensorFlow")
def test_mirrored_strategy_trains_on_two_replicas(tmp_path):
    # The iris example, 10 epochs, without validation (each step costs more across replicas).
    text = (SPECS / "iris.yaml").read_text().split("  callbacks:")[0]
    text = text.replace("path: data/iris.csv", f"path: {DATA / 'iris.csv'}").replace(
        "epochs: 60", "epochs: 10"
    )
    spec = tmp_path / "iris_mirrored.yaml"
    spec.write_text(text.replace("    validation_split: 0.1\n", "") + "  distribution: mirrored\n")
    script = tmp_path / "mirrored.py"
    script.write_text(MIRRORED)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, str(script), str(spec), str(tmp_path / "m.keras")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["devices"] == 2
    assert report["replicas"] == 2  # strategy.num_replicas_in_sync
    assert report["variable"] == "MirroredVariable" and report["components"] == 2
    assert report["loss"][-1] < report["loss"][0] / 2
    assert report["accuracy"] >= 0.9
    assert report["loaded_layers"][0] == "normalize"


@pytest.mark.skipif(BACKEND == "jax", reason="on JAX, data_parallel runs (test_backends.py)")
def test_data_parallel_needs_jax(write_spec):
    path = write_spec(small() + "  distribution: data_parallel\n")
    with pytest.raises(modelspec.SpecError) as info:
        modelspec.train(path, verbose=0)
    (problem,) = info.value.problems
    assert problem.path == ("train", "distribution") and problem.line == 21
    assert "KERAS_BACKEND=jax" in problem.hint and "DataParallel" in problem.message


# -- located errors --------------------------------------------------------------------


@pytest.mark.parametrize(
    "change, line, path, words, hint",
    [
        pytest.param(
            lambda t: t.replace("iris.csv", "irsi.csv"),
            14,
            ("train", "data", "path"),
            ["no such file", "irsi.csv"],
            "iris.csv",
            id="missing-csv",
        ),
        pytest.param(
            lambda t: t.replace("petal_length,", "petal_lenght,"),
            15,
            ("train", "data", "features", 2),
            ["no feature column 'petal_lenght'"],
            "did you mean 'petal_length'?",
            id="misspelled-feature",
        ),
        pytest.param(
            lambda t: t.replace("target: species", "target: specie"),
            16,
            ("train", "data", "target"),
            ["no target column 'specie'"],
            "did you mean 'species'?",
            id="misspelled-target",
        ),
        pytest.param(
            lambda t: t.replace("features: [sepal_length, ", "features: [species, ").replace(
                "target: species", "target: sepal_length"
            ),
            15,
            ("train", "data", "features", 0),
            ["'species' is not numeric", "'setosa'"],
            "encode",
            id="non-numeric-feature",
        ),
        pytest.param(
            lambda t: t.replace("units: 3, activation: softmax", "units: 1, activation: sigmoid"),
            16,
            ("train", "data", "target"),
            ["3 classes", "setosa, versicolor, virginica", "1 unit"],
            "3 units",
            id="3-classes-into-Dense(1)",
        ),
        pytest.param(
            lambda t: t.replace("test_split: 0.2", "test_split: 0.99"),
            17,
            ("train", "data", "test_split"),
            ["training split is empty", "149"],
            "lower",
            id="empty-split",
        ),
    ],
)
def test_data_errors_point_at_the_spec_key(write_spec, tmp_path, change, line, path, words, hint):
    (tmp_path / "iris.csv").write_bytes((DATA / "iris.csv").read_bytes())
    spec = write_spec(change(small(path="iris.csv")))
    with pytest.raises(modelspec.SpecError) as info:
        modelspec.train(spec, verbose=0)
    (problem,) = info.value.problems
    assert (problem.file, problem.line, problem.path) == (str(spec), line, path), problem.format()
    for word in words:
        assert word in problem.message, problem.format()
    assert hint in (problem.hint or ""), problem.format()


def test_class_ids_beyond_the_units(write_spec, tmp_path):
    frame = pd.read_csv(DATA / "iris.csv")
    frame["species"] = frame["species"].map({"setosa": 1, "versicolor": 2, "virginica": 3})  # 1-based ids
    frame.to_csv(tmp_path / "ids.csv", index=False)
    spec = write_spec(small(path="ids.csv"))
    with pytest.raises(modelspec.SpecError) as info:
        modelspec.train(spec, verbose=0)
    (problem,) = info.value.problems
    assert problem.line == 16 and "holds 3" in problem.message and "0 to 2" in problem.message
    assert "4 units" in problem.hint


def test_several_column_errors_reported_together(write_spec):
    text = small().replace("petal_width]", "petal_widht]").replace("target: species", "target: specis")
    with pytest.raises(modelspec.SpecError) as info:
        modelspec.train(write_spec(text), verbose=0)
    assert [(p.line, p.hint) for p in info.value.problems] == [
        (15, "did you mean 'petal_width'?"),
        (16, "did you mean 'species'?"),
    ]


def test_missing_values_and_wrong_separator(write_spec, tmp_path):
    frame = pd.read_csv(DATA / "iris.csv")
    frame.loc[[3, 7], "sepal_width"] = np.nan
    frame.to_csv(tmp_path / "gaps.csv", index=False)
    with pytest.raises(modelspec.SpecError) as info:
        modelspec.train(write_spec(small(path="gaps.csv")), verbose=0)
    (problem,) = info.value.problems
    assert "2 missing values" in problem.message and "5, 9" in problem.message
    frame.dropna().to_csv(tmp_path / "semi.csv", sep=";", index=False)
    with pytest.raises(modelspec.SpecError) as info:
        modelspec.train(write_spec(small(path="semi.csv")), verbose=0)
    assert any("sep: ';'" in (p.hint or "") for p in info.value.problems)


# -- the command line ------------------------------------------------------------------


def test_cli_train_evaluate_predict(tmp_path, capsys):
    model = tmp_path / "iris.keras"
    assert main(["train", str(SPECS / "iris.yaml"), "-o", str(model)]) == 0
    out = capsys.readouterr().out
    assert "Epoch 1/60" in out  # Keras's progress while it fits
    assert "rows: 108 train, 12 validation, 30 test" in out
    table = out[out.index("test metrics (30 rows):") :].splitlines()
    metrics = {line.split()[0]: float(line.split()[1]) for line in table[2:4]}
    assert set(metrics) == {"loss", "accuracy"}
    assert metrics["accuracy"] >= 0.9  # the iris example's promise
    history = pd.read_csv(tmp_path / "iris.history.csv")
    assert list(history.columns[:1]) == ["epoch"] and {"loss", "val_accuracy"} <= set(history.columns)
    assert history["epoch"].iloc[0] == 1 and len(history) <= 60
    assert (tmp_path / "iris.curves.png").read_bytes().startswith(PNG)
    assert f"wrote {model}" in out
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".")]  # no temporary files left

    assert main(["evaluate", str(model), "--data", str(DATA / "iris.csv")]) == 0
    out = capsys.readouterr().out
    assert "(150 rows)" in out and "accuracy" in out and "loss" in out

    # The CSV with or without the target column: the same answers, in the original labels.
    features_only = tmp_path / "features.csv"
    pd.read_csv(DATA / "iris.csv").drop(columns="species").to_csv(features_only, index=False)
    with_target, without = tmp_path / "a.csv", tmp_path / "b.csv"
    assert main(["predict", str(model), "--data", str(DATA / "iris.csv"), "-o", str(with_target)]) == 0
    assert main(["predict", str(model), "--data", str(features_only), "-o", str(without)]) == 0
    a, b = pd.read_csv(with_target), pd.read_csv(without)
    pd.testing.assert_frame_equal(a, b)
    assert list(a.columns) == ["species", "species_probability"] and len(a) == 150
    assert set(a["species"]) == {"setosa", "versicolor", "virginica"}
    assert (a["species"] == pd.read_csv(DATA / "iris.csv")["species"]).mean() >= 0.9
    assert a["species_probability"].between(1 / 3, 1).all()

    # Printed when no output is named; evaluate needs the targets, predict does not.
    capsys.readouterr()
    assert main(["predict", str(model), "--data", str(features_only)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert (
        printed[0] == "species,species_probability"
        and printed[1].startswith("setosa,")
        and len(printed) == 151
    )
    assert main(["evaluate", str(model), "--data", str(features_only)]) == 1
    err = capsys.readouterr().err
    assert "no target column 'species'" in err and "Traceback" not in err


def test_cli_wine_predictions_keep_the_separator_and_labels(tmp_path, capsys):
    model = tmp_path / "wine.keras"
    assert main(["train", str(SPECS / "wine.yaml"), "-o", str(model), "--epochs", "2", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "Epoch" not in out and "test metrics (36 rows):" in out
    assert main(["predict", str(model), "--data", str(DATA / "wine.csv"), "-o", str(tmp_path / "p.csv")]) == 0
    predictions = pd.read_csv(tmp_path / "p.csv", sep=";")
    assert set(predictions["cultivar"]) <= {"barolo", "grignolino", "barbera"}
    # A label the model never saw is an error at the CSV column, not a crash.
    frame = pd.read_csv(DATA / "wine.csv", sep=";")
    frame.loc[0, "cultivar"] = "chianti"
    frame.to_csv(tmp_path / "new.csv", sep=";", index=False)
    assert main(["evaluate", str(model), "--data", str(tmp_path / "new.csv")]) == 1
    err = capsys.readouterr().err
    assert f"{tmp_path / 'new.csv'}: error: cultivar: label 'chianti'" in err
    assert "the model knows: barbera, barolo, grignolino" in err


def test_cli_data(tmp_path, capsys):
    png = tmp_path / "look.png"
    assert main(["data", str(SPECS / "wine.yaml"), "-o", str(png)]) == 0
    out = capsys.readouterr().out
    assert "178 rows, 14 columns (sep ';')" in out
    assert "RangeIndex: 178 entries" in out and "proline" in out  # pandas info()
    assert "ranges (pandas describe):" in out and "mean" in out
    assert "missing values: none" in out
    assert "target 'cultivar' (3 classes):" in out
    assert "barolo" in out and "59" in out and "33.1%" in out
    assert png.read_bytes().startswith(PNG)


def test_cli_data_reports_spec_columns_after_the_look(write_spec, tmp_path, capsys):
    spec = write_spec(small().replace("target: species", "target: specis"))
    assert main(["data", str(spec)]) == 1
    captured = capsys.readouterr()
    assert "150 rows, 5 columns" in captured.out
    assert ":16:13: error: train.data.target: no target column 'specis'" in captured.err
    assert (tmp_path / "spec.data.png").read_bytes().startswith(PNG)  # default: beside the spec


def test_cli_train_in_a_subprocess(tmp_path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "modelspec", "train", "specs/linnerud.yaml", "-o", str(tmp_path / "l.keras")]
        + ["--epochs", "2", "--batch-size", "16"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Epoch 2/2" in done.stdout and "weight_mae" in done.stdout
    assert sorted(os.listdir(tmp_path)) == ["l.curves.png", "l.history.csv", "l.keras"]


def test_cli_usage_errors(capsys):
    for argv in (
        ["train", "x.yaml", "--epochs", "0"],
        ["predict", "m.keras"],
        ["train", "x.yaml", "--distribution", "tpu"],
    ):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 2
    assert main(["train", str(SPECS / "iris.yaml"), "-o", "model.h5"]) == 2


# -- files: atomic writes and safe loading ----------------------------------------------


def test_failed_runs_leave_the_model_untouched(tmp_path, write_spec, capsys, monkeypatch):
    model = tmp_path / "m.keras"
    model.write_bytes(b"the model of last week")
    spec = write_spec(small())
    assert main(["train", str(spec), "-o", str(model), "--data", str(tmp_path / "nope.csv")]) == 1
    assert "no such file" in capsys.readouterr().err
    bad = write_spec(small().replace("target: species", "target: kind"), name="bad.yaml")
    assert main(["train", str(bad), "-o", str(model)]) == 1
    assert ":16:13: error: train.data.target: no target column 'kind'" in capsys.readouterr().err
    assert model.read_bytes() == b"the model of last week"

    # A failure while the model file is written (Keras saved it, the metadata fails) changes nothing either.
    real = zipfile.ZipFile

    def full_disk(file, mode="r", *args, **kwargs):
        if mode == "a":
            raise OSError(28, "No space left on device")
        return real(file, mode, *args, **kwargs)

    monkeypatch.setattr(zipfile, "ZipFile", full_disk)
    assert main(["train", str(spec), "-o", str(model), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert f"{model}: error" in err and "No space left on device" in err and "Traceback" not in err
    assert model.read_bytes() == b"the model of last week"
    assert sorted(os.listdir(tmp_path)) == ["bad.yaml", "m.keras", "spec.yaml"]


@pytest.fixture(scope="module")
def trained_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "iris.keras"
    modelspec.train(SPECS / "iris.yaml", epochs=2, verbose=0).save(path)
    return path


def test_invalid_model_files(tmp_path, trained_model, capsys):
    garbage = tmp_path / "garbage.keras"
    garbage.write_bytes(b"not a zip archive")
    plain = tmp_path / "plain.keras"
    modelspec.build(SPECS / "iris.yaml").save(plain)  # a Keras model, but no modelspec.json
    damaged = tmp_path / "damaged.keras"
    with zipfile.ZipFile(trained_model) as source, zipfile.ZipFile(damaged, "w") as archive:
        for name in source.namelist():
            archive.writestr(name, b"{not json" if name == "modelspec.json" else source.read(name))
    cases = {
        tmp_path / "missing.keras": "no such file",
        garbage: "not a .keras model file",
        plain: "was not written by `modelspec train`",
        damaged: "modelspec.json is damaged",
    }
    for path, words in cases.items():
        for command in ("evaluate", "predict"):
            assert main([command, str(path), "--data", str(DATA / "iris.csv")]) == 1, path
            err = capsys.readouterr().err
            assert f"{path}: error: model: " in err and words in err, err
            assert "Traceback" not in err


def test_unsafe_model_is_refused(tmp_path, trained_model, capsys):
    # A Lambda layer carries Python code: safe_mode refuses to deserialize it.
    x = keras.Input(shape=(4,))
    model = keras.Model(x, keras.layers.Lambda(lambda t: t * 2)(x))
    path = tmp_path / "lambda.keras"
    model.save(path)
    with zipfile.ZipFile(trained_model) as archive:
        meta = archive.read("modelspec.json")
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("modelspec.json", meta)
    assert main(["predict", str(path), "--data", str(DATA / "iris.csv")]) == 1
    err = capsys.readouterr().err
    assert f"{path}: error: model: Keras could not load the model" in err and "safe" in err.lower()


def test_missing_feature_columns_in_predict(tmp_path, trained_model, capsys):
    frame = pd.read_csv(DATA / "iris.csv").rename(columns={"petal_width": "petal_widht"})
    frame.to_csv(tmp_path / "x.csv", index=False)
    assert main(["predict", str(trained_model), "--data", str(tmp_path / "x.csv")]) == 1
    err = capsys.readouterr().err
    assert "petal_width: no feature column 'petal_width'" in err and "did you mean 'petal_widht'?" in err


def test_help_mentions_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "SPEC_STEM.keras" in text and "MODEL_STEM.history.csv" in text and "MODEL_STEM.curves.png" in text


def test_import_stays_light():
    code = (
        "import sys, modelspec; print(sorted({'keras', 'tensorflow', 'pandas', 'numpy'} & set(sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.stdout.strip() == "[]", done.stderr


def test_loss_kinds():
    assert _fit.loss_kind("sparse_categorical_crossentropy") == ("sparse", False)
    assert _fit.loss_kind({"type": "SparseCategoricalCrossentropy", "from_logits": True}) == (
        "sparse",
        True,
    )
    assert _fit.loss_kind("categorical_crossentropy") == ("categorical", False)
    assert _fit.loss_kind({"type": "BinaryFocalCrossentropy"}) == ("binary", False)
    assert _fit.loss_kind("mse") == ("other", False)


def test_one_hot_and_binary_targets(write_spec, tmp_path):
    # categorical_crossentropy: the labels become one-hot rows; predict still answers in labels.
    spec = write_spec(small(loss="categorical_crossentropy"))
    result = modelspec.train(spec, verbose=0)
    assert result.metadata["outputs"][0]["kind"] == "categorical"
    result.save(tmp_path / "c.keras")
    answers = predict(tmp_path / "c.keras", DATA / "iris.csv")
    assert set(answers["species"]) <= {"setosa", "versicolor", "virginica"}
    # Two classes into one sigmoid unit: 0/1 targets, labels back in predictions.
    frame = pd.read_csv(DATA / "iris.csv")
    frame[frame["species"] != "setosa"].to_csv(tmp_path / "two.csv", index=False)
    spec = write_spec(
        small(units=1, activation="sigmoid", loss="binary_crossentropy", path="two.csv"), "b.yaml"
    )
    result = modelspec.train(spec, verbose=0)
    assert result.labels == {"species": ["versicolor", "virginica"]}
    result.save(tmp_path / "b.keras")
    answers = predict(tmp_path / "b.keras", tmp_path / "two.csv")
    assert set(answers["species"]) <= {"versicolor", "virginica"}
    assert answers["species_probability"].between(0.5, 1).all()


def test_spec_without_train_section(tmp_path, capsys):
    assert main(["train", str(SPECS / "seed_sequential.yaml"), "-o", str(tmp_path / "m.keras")]) == 1
    assert "no 'train' section" in capsys.readouterr().err
