"""Provenance through a file: a model built or trained by modelspec exports as the spec it was built from.

``modelspec build -o`` and ``modelspec train`` write the record into the
model file's ``modelspec.json``; ``modelspec export`` of that file gives back
the blocks, params and ``repeat`` as written. A record that is damaged,
forged, or does not make the model any more is ignored: export folds the
graph instead, and still exits 0.
"""

from __future__ import annotations

import importlib.util
import json
import secrets
import shutil
import zipfile

import keras
import numpy as np
import pytest
import yaml
from conftest import DATA, SLOW, SPECS, flat, random_inputs, run_modelspec

import modelspec
from modelspec.cli import main
from modelspec.keras.archive import MAX_METADATA_BYTES, METADATA
from modelspec.keras.export.provenance import Record, fingerprint, recorded

TRANSFORMER = SPECS / "transformer_classifier.yaml"

# A small residual network with blocks, a repeat, and a train section on the iris CSV.
TRAINED_SPEC = """\
modelspec: 1
name: iris_residual
seed: 3
params: {width: 8, depth: 2}
inputs:
  features: [4]
blocks:
  unit:
    params: {units: required}
    layers:
      hidden: {type: Dense, units: "${units}", activation: relu, inputs: x}
      back:   {type: Dense, units: "${units}"}
      add:    {type: Add, inputs: [x, back]}
layers:
  stem:    {type: Dense, units: "${width}", inputs: features}
  units:   {block: unit, repeat: "${depth}", units: "${width}"}
  species: {type: Dense, units: 3, activation: softmax}
compile:
  optimizer: adam
  loss: sparse_categorical_crossentropy
train:
  data: {path: iris.csv, target: species, test_split: 0.2, seed: 0}
  normalize: NORMALIZE
  epochs: 1
  batch_size: 32
"""


def cli(*args, timeout=300):
    """``modelspec ARGS`` in a subprocess (limits generous: a Keras import on a loaded machine)."""
    done = run_modelspec([str(a) for a in args], memory=8 << 30, timeout=timeout)
    assert done.returncode == 0, done.stderr
    return done.stdout


def export(path, capsys, *flags):
    """``modelspec export PATH`` in this process: exit 0, the spec data printed."""
    assert main(["export", str(path), *flags]) == 0
    return yaml.safe_load(capsys.readouterr().out)


def metadata(path):
    with zipfile.ZipFile(path) as archive:
        return json.loads(archive.read(METADATA))


def rewrite_metadata(path, raw: bytes):
    """The model file with its ``modelspec.json`` replaced by ``raw`` (the other entries as they were)."""
    tmp = path.with_suffix(".tmp")
    with zipfile.ZipFile(path) as old, zipfile.ZipFile(tmp, "w") as new:
        for info in old.infolist():
            new.writestr(info, raw if info.filename == METADATA else old.read(info.filename))
    tmp.replace(path)


def assert_rebuilds(text_or_data, path):
    """The exported spec builds the saved model: layer names, parameter count, outputs exactly."""
    text = text_or_data if isinstance(text_or_data, str) else yaml.safe_dump(text_or_data, sort_keys=False)
    built = modelspec.build(modelspec.loads(text))
    saved = keras.saving.load_model(path)
    assert [x.name for x in built.layers] == [x.name for x in saved.layers]
    assert built.count_params() == saved.count_params()
    built.set_weights(saved.get_weights())
    data = random_inputs(saved)
    for got, want in zip(flat(built(data, training=False)), flat(saved(data, training=False))):
        assert float(np.max(np.abs(got - want))) == 0.0


@pytest.fixture(scope="module")
def built_file(tmp_path_factory):
    """transformer_classifier.yaml (an encoder block repeated ``${depth}`` times) built by ``modelspec build -o``."""
    path = tmp_path_factory.mktemp("built") / "transformer.keras"
    cli("build", TRANSFORMER, "-o", path)
    return path


def test_build_o_then_export_gives_back_the_blocks_params_and_repeat(built_file, tmp_path):
    record = metadata(built_file)["provenance"]
    assert record["spec"] == TRANSFORMER.read_text()
    assert record["layers"]["encoders-1-ff1"] == [["encoders-1", "encoder", 1]]
    out = tmp_path / "exported.yaml"
    cli("export", built_file, "-o", out)
    text = out.read_text()
    data = yaml.safe_load(text)
    written = yaml.safe_load(TRANSFORMER.read_text())
    assert list(data["blocks"]) == ["encoder"]
    assert data["blocks"] == written["blocks"]
    assert data["params"] == written["params"]
    assert data["layers"]["encoders"] == {
        "block": "encoder",
        "repeat": "${depth}",
        "heads": "${heads}",
        "dim": "${dim}",
        "ff": "${ff}",
        "dropout": "${dropout}",
    }
    assert data["layers"] == written["layers"]
    assert_rebuilds(text, built_file)


def test_flat_export_of_a_built_file_keeps_one_node_per_layer(built_file, capsys):
    data = export(built_file, capsys, "--flat")
    assert "blocks" not in data and "params" not in data
    assert "encoders-1-ff1" in data["layers"]


def test_the_record_round_trips_through_json_and_the_loaded_model_matches_it(built_file):
    info = Record.from_json(metadata(built_file)["provenance"], str(built_file))
    assert info is not None and info.root.data == yaml.safe_load(TRANSFORMER.read_text())
    again = Record.from_json(info.to_json())
    assert again is not None and again.to_json() == info.to_json()
    model = modelspec.build(TRANSFORMER)  # in memory, the same record as the one saved
    assert recorded(model).to_json() == info.to_json()
    assert fingerprint(keras, keras.saving.load_model(built_file)) == info.model  # the same weight paths


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="JAX is not installed")
def test_a_file_built_on_tensorflow_exports_its_spec_on_jax(built_file, monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    data = yaml.safe_load(cli("export", built_file))
    assert data["layers"]["encoders"]["repeat"] == "${depth}"


TEXT = TRANSFORMER.read_text()
TAMPERED = {  # the saved modelspec.json (a dict) -> what is written instead (data, or bytes as they are)
    # the spec no longer expands to the model (one encoder more); the digests left as they were
    "other spec": lambda m: {
        **m,
        "provenance": {**m["provenance"], "spec": TEXT.replace("depth: 2", "depth: 3")},
    },
    # the spec and the expanded digest agree, but the model's fingerprint is forged
    "forged fingerprint": lambda m: {**m, "provenance": {**m["provenance"], "model": "0" * 64}},
    "forged expanded digest": lambda m: {**m, "provenance": {**m["provenance"], "expanded": "f" * 64}},
    "record not a mapping": lambda m: {**m, "provenance": ["garbage", 1, None]},
    "spec not text": lambda m: {**m, "provenance": {**m["provenance"], "spec": {"modelspec": 1}}},
    "spec not YAML": lambda m: {**m, "provenance": {**m["provenance"], "spec": "blocks: {a: [\n"}},
    "spec without blocks": lambda m: {
        **m,
        "provenance": {**m["provenance"], "spec": "modelspec: 1\nlayers: []\n"},
    },
    "spec with imports": lambda m: {
        **m,
        "provenance": {**m["provenance"], "spec": "imports: {x: /etc/passwd}\n" + TEXT},
    },
    "layers not chains": lambda m: {
        **m,
        "provenance": {**m["provenance"], "layers": {"embed": [[1, 2, 3, 4]]}},
    },
    "digest not hex": lambda m: {**m, "provenance": {**m["provenance"], "model": "../../etc"}},
    "unknown format": lambda m: {**m, "provenance": {**m["provenance"], "format": 99}},
    "metadata not JSON": lambda m: b"{not json",
    "metadata not UTF-8": lambda m: b"\xff\xfe{}",
    "metadata a list": lambda m: [m],
    # random, so that the archive does not refuse the entry as a zip bomb
    "metadata over the size limit": lambda m: {**m, "padding": secrets.token_hex(MAX_METADATA_BYTES // 2)},
}


@pytest.mark.parametrize("how", list(TAMPERED))
def test_a_damaged_or_forged_record_is_ignored_and_export_folds_the_graph(built_file, tmp_path, capsys, how):
    path = tmp_path / "tampered.keras"
    shutil.copy(built_file, path)
    changed = TAMPERED[how](metadata(path))
    rewrite_metadata(path, changed if isinstance(changed, bytes) else json.dumps(changed).encode())
    data = export(path, capsys)
    assert "params" not in data  # folded from the graph: no ${depth}
    assert "depth" not in yaml.safe_dump(data)
    assert_rebuilds(data, path)


def test_a_file_built_with_other_params_exports_folded_from_its_graph(tmp_path, capsys):
    path = tmp_path / "deeper.keras"
    assert main(["build", str(TRANSFORMER), "--set", "depth=3", "-o", str(path)]) == 0
    capsys.readouterr()
    data = export(path, capsys)
    assert "params" not in data  # the file's own spec says depth 2: it would build another model
    assert_rebuilds(data, path)


def test_a_record_that_would_pass_the_metadata_limit_is_left_out(tmp_path, capsys):
    spec = tmp_path / "padded.yaml"
    padding = "# " + "x" * 1000 + "\n"
    spec.write_text(TEXT + padding * (MAX_METADATA_BYTES // len(padding) + 1))
    path = tmp_path / "padded.keras"
    assert main(["build", str(spec), "-o", str(path)]) == 0
    capsys.readouterr()
    saved = metadata(path)
    assert "provenance" not in saved and saved["trained"] is False
    assert "params" not in export(path, capsys)


@pytest.fixture
def iris_project(tmp_path):
    shutil.copy(DATA / "iris.csv", tmp_path / "iris.csv")
    return tmp_path


def trained(folder, capsys, normalize):
    """The spec and model file of ``modelspec train`` on the iris data, with ``normalize`` as given."""
    spec = folder / "residual.yaml"
    spec.write_text(TRAINED_SPEC.replace("NORMALIZE", "true" if normalize else "false"))
    path = folder / "residual.keras"
    assert main(["train", str(spec), "-o", str(path), "-q"]) == 0
    capsys.readouterr()
    return spec, path


def test_a_trained_model_keeps_its_record_and_still_predicts(iris_project, capsys):
    spec, path = trained(iris_project, capsys, normalize=False)
    assert metadata(path)["provenance"]["spec"] == spec.read_text()
    data = export(path, capsys)
    assert list(data["blocks"]) == ["unit"]
    assert data["layers"]["units"] == {"block": "unit", "repeat": "${depth}", "units": "${width}"}
    assert data["train"] == yaml.safe_load(spec.read_text())["train"]
    assert_rebuilds(data, path)
    out = iris_project / "predictions.csv"
    assert main(["predict", str(path), "--data", str(iris_project / "iris.csv"), "-o", str(out)]) == 0
    assert len(out.read_text().splitlines()) == 151  # the header and a row for each of the 150 flowers


def test_a_model_trained_behind_a_normalization_has_no_record(iris_project, capsys):
    _, path = trained(iris_project, capsys, normalize=True)
    assert "provenance" not in metadata(path)  # not the model the spec describes
    assert "params" not in export(path, capsys)


@SLOW
def test_a_resnet50_built_to_a_file_exports_its_own_blocks_and_repeat_counts(tmp_path):
    path = tmp_path / "resnet50.keras"
    cli("build", SPECS / "resnet50.yaml", "-o", path, timeout=600)
    data = yaml.safe_load(cli("export", path, timeout=600))
    written = yaml.safe_load((SPECS / "resnet50.yaml").read_text())
    assert sorted(data["blocks"]) == ["bottleneck", "conv_bn", "stage"]
    assert data["blocks"] == written["blocks"]
    assert data["params"] == {"classes": 1000, "depth": [3, 4, 6, 3]}
    blocks = {k: e["blocks"] for k, e in data["layers"].items() if e.get("block") == "stage"}
    assert blocks == {f"conv{i + 2}": f"${{depth[{i}]}}" for i in range(4)}
    assert data["blocks"]["stage"]["layers"][0]["repeat"] == "${blocks}"
    assert data["layers"] == written["layers"]
