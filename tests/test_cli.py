"""The command line: validate, build, summary; exit codes, output, files, no TensorFlow for validate."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from conftest import HAS_HUB, HUB_SPECS, ROOT, SPECS, random_inputs

import modelspec
from modelspec.cli import main

BAD = "modelspec: 1\ninputs: {x: [3]}\nlayers:\n  hidden: {type: Dense, units: 4}\n  out: {type: Dense, units: 2, inputs: hiden}\n"


def run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run(
        [sys.executable, "-m", "modelspec", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=300,
    )


def test_validate_ok(capsys):
    assert main(["validate", str(SPECS / "iris.yaml")]) == 0
    assert "iris.yaml: ok (4 layers)" in capsys.readouterr().out


def test_validate_takes_folders(capsys):
    plugins = ["--plugin", "keras_hub"] if HAS_HUB else []  # the specs in specs/hub need KerasHub's layers
    assert main(["validate", str(SPECS), *plugins]) == (0 if HAS_HUB else 1)
    out = capsys.readouterr().out
    hub = len(list(HUB_SPECS.glob("*.yaml")))
    # block libraries in sub-folders too
    assert out.count(": ok (") == len(list(SPECS.rglob("*.yaml"))) - (0 if HAS_HUB else hub)


def test_validate_reports_all_problems_with_location(write_spec, capsys):
    path = write_spec(BAD.replace("units: 4", "units: sixty-four"))
    assert main(["validate", str(path)]) == 1
    err = capsys.readouterr().err
    assert err == (
        f"{path}:4:32: error: layers.hidden.units: expected an integer, got 'sixty-four'\n"
        "    4 |   hidden: {type: Dense, units: sixty-four}\n"
        "      |                                ^^^^^^^^^^\n"
        f"{path}:5:40: error: layers.out.inputs: unknown node 'hiden'\n"
        "    5 |   out: {type: Dense, units: 2, inputs: hiden}\n"
        "      |                                        ^^^^^\n"
        "      hint: did you mean 'hidden'?\n"
        "2 errors\n"
    )


def test_validate_json_format(write_spec, capsys):
    path = write_spec(BAD)
    assert main(["validate", "--format", "json", str(path)]) == 1
    (problem,) = json.loads(capsys.readouterr().out)
    assert problem == {
        "file": str(path),
        "line": 5,
        "column": 40,
        "severity": "error",
        "code": "unknown-reference",
        "path": "layers.out.inputs",
        "message": "unknown node 'hiden'",
        "hint": "did you mean 'hidden'?",
        "notes": [],
    }


def test_validate_github_format(write_spec, capsys):
    path = write_spec(BAD)
    assert main(["validate", "--format", "github", str(path)]) == 1
    out = capsys.readouterr().out.strip()
    assert out == (
        f"::error file={path},line=5,col=40,title=modelspec unknown-reference layers.out.inputs::"
        "unknown node 'hiden' (hint: did you mean 'hidden'?)"
    )


def test_validate_never_imports_tensorflow_or_keras():
    code = (
        "import sys, glob; from modelspec.cli import main;"
        # specs/hub needs --plugin keras_hub, which imports Keras (tests/test_library.py checks it without)
        "rc = main(['validate', *(p for p in glob.glob('specs/**/*.yaml', recursive=True) if '/hub/' not in p)]);"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'jax', 'torch'));"
        "assert rc == 0 and not heavy, heavy"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert result.returncode == 0, result.stderr


def test_build_writes_a_loadable_model(tmp_path):
    out = tmp_path / "model.keras"
    result = run("build", "specs/residual_cnn.yaml", "-o", str(out), "--summary")
    assert result.returncode == 0, result.stderr
    assert "Total params" in result.stdout and f"wrote {out}" in result.stdout
    loaded = keras.saving.load_model(out)
    expected = modelspec.build(SPECS / "residual_cnn.yaml")
    assert loaded.count_params() == expected.count_params()
    data = random_inputs(loaded)
    expected.set_weights(loaded.get_weights())
    np.testing.assert_allclose(loaded.predict(data, verbose=0), expected.predict(data, verbose=0), rtol=1e-5)
    assert [p.name for p in tmp_path.iterdir()] == ["model.keras"]  # no temporary file left behind


def test_failed_build_leaves_existing_file(tmp_path, write_spec, capsys):
    out = tmp_path / "model.keras"
    out.write_bytes(b"precious")
    bad = write_spec("modelspec: 1\ninputs: {a: [3], b: [4]}\nlayers:\n  s: {type: Add, inputs: [a, b]}\n")
    assert main(["build", str(bad), "-o", str(out)]) == 1
    assert out.read_bytes() == b"precious"
    assert f"{bad}:4:" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.keras", "spec.yaml"]


def test_summary_prints_layers_and_parameters(capsys):
    assert main(["summary", str(SPECS / "siamese.yaml")]) == 0
    out = capsys.readouterr().out
    assert "left_tower" in out and "Total params" in out


def test_plugin_layers(tmp_path, monkeypatch, capsys):
    (tmp_path / "my_layers.py").write_text(
        "import keras\nclass Double(keras.layers.Layer):\n    def call(self, x):\n        return 2 * x\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = tmp_path / "s.yaml"
    spec.write_text("modelspec: 1\ninputs: {x: [3]}\nlayers:\n  d: {type: Double}\n")
    assert main(["validate", str(spec)]) == 1
    assert "unknown layer type 'Double'" in capsys.readouterr().err
    assert main(["validate", "--plugin", "my_layers", str(spec)]) == 0
    assert main(["build", "--plugin", "my_layers", str(spec), "-o", str(tmp_path / "d.keras")]) == 0


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["frobnicate"],
        ["validate"],
        ["build", "specs/iris.yaml"],
        ["validate", "--format", "xml", "specs"],
    ],
)
def test_usage_errors_exit_2(args, capsys):
    with pytest.raises(SystemExit) as info:
        main(args)
    assert info.value.code == 2
    assert "usage:" in capsys.readouterr().err


def test_python_dash_m_and_help():
    result = run("--help")
    assert result.returncode == 0
    for command in ("validate", "build", "summary", "schema"):
        assert command in result.stdout


def test_missing_file_exits_1(capsys):
    assert main(["validate", "no/such/spec.yaml"]) == 1
    assert "no/such/spec.yaml: error: no such file" in capsys.readouterr().err


def test_build_unbuilt_sequential(tmp_path, capsys):
    out = tmp_path / "u.keras"
    assert main(["build", str(SPECS / "seed_sequential_unbuilt.yaml"), "-o", str(out)]) == 0
    assert "unbuilt" in capsys.readouterr().out
    assert isinstance(keras.saving.load_model(out), keras.Sequential)


def test_build_into_a_missing_folder_exits_1(tmp_path, capsys):
    out = tmp_path / "no" / "such" / "m.keras"
    assert main(["build", str(SPECS / "seed_functional.yaml"), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert str(out) in err and "Traceback" not in err
