"""modelspec in everyday tools, and what a new user trips on.

pre-commit (the real package, on a temporary git repository), the command
line's did-you-mean and ``help``, the install hint's package name and
backends, a built ``.keras`` that plain Keras and ``predict`` take, and a
quiet Python API.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys

import pytest
import yaml
from conftest import CASES, DATA, ROOT, SPECS

from modelspec.cli import main

BAD_SPEC = (CASES / "bad_units_string.yaml").read_text()


def python(code: str, timeout: int = 300, **env: str) -> subprocess.CompletedProcess:
    environ = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, env=environ, cwd=ROOT
    )


# -- pre-commit ------------------------------------------------------------------------------


def git(repo, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(
    importlib.util.find_spec("pre_commit") is None or shutil.which("git") is None,
    reason="needs pre-commit and git",
)
def test_pre_commit_hook_blocks_a_bad_spec_and_passes_a_good_one(tmp_path):
    # The hook as this repository offers it; `language: system` runs the modelspec installed here
    # (pre-commit's python language would install keras-modelspec from the package index).
    (hook,) = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert hook["id"] == "modelspec-validate" and hook["language"] == "python"
    local = {**hook, "language": "system"}
    repo = tmp_path / "project"
    repo.mkdir()
    (repo / ".pre-commit-config.yaml").write_text(
        yaml.safe_dump({"repos": [{"repo": "local", "hooks": [local]}]}, sort_keys=False)
    )
    env = {
        **os.environ,
        "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"],
        "PYTHONPATH": str(ROOT),
        "PRE_COMMIT_HOME": str(tmp_path / "cache"),
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    for args in (["init", "-q"], ["config", "user.name", "t"], ["config", "user.email", "t@example.com"]):
        assert git(repo, *args).returncode == 0
    installed = subprocess.run(
        [sys.executable, "-m", "pre_commit", "install"], cwd=repo, capture_output=True, text=True, env=env
    )
    assert installed.returncode == 0, installed.stderr

    def commit(message: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["git", "commit", "-q", "-m", message],
            cwd=repo,
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )

    (repo / "ci.yml").write_text("on: push\njobs: {}\n")  # YAML that is not a spec: skipped
    (repo / "model.modelspec.yaml").write_text(BAD_SPEC)
    git(repo, "add", ".")
    blocked = commit("a bad spec")
    assert blocked.returncode != 0
    out = blocked.stdout + blocked.stderr
    assert "model.modelspec.yaml:5:26: error: layers[0].units: expected an integer, got 'sixty-four'" in out
    assert git(repo, "log", "--oneline").stdout == ""  # nothing was committed

    (repo / "model.modelspec.yaml").write_text(BAD_SPEC.replace("sixty-four", "64"))
    git(repo, "add", ".")
    done = commit("a good spec")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "modelspec validate" in done.stdout + done.stderr and "Passed" in done.stdout + done.stderr


def test_only_specs_skips_yaml_that_is_no_spec(tmp_path, capsys):
    other = tmp_path / "workflow.yml"
    other.write_text("on: push\nmodelspec_version: 3\n")
    assert main(["validate", "--only-specs", str(other)]) == 0
    assert capsys.readouterr().out == ""
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD_SPEC)
    assert main(["validate", "--only-specs", str(other), str(bad), str(SPECS / "iris.yaml")]) == 1
    captured = capsys.readouterr()
    assert "workflow.yml" not in captured.out + captured.err
    assert "bad.yaml:5:26: error" in captured.err and "1 of 2 specs valid" in captured.err
    os.mkfifo(tmp_path / "pipe.yaml")  # never opened to look for `modelspec:`: it could block
    assert main(["validate", "--only-specs", str(tmp_path / "pipe.yaml")]) == 1


def test_the_schema_keeps_its_id_and_version():
    schema = json.loads((ROOT / "schemas" / "modelspec.schema.json").read_text())
    assert schema["$id"] == "urn:modelspec:schema:v1"
    assert schema["properties"]["modelspec"]["const"] == 1


# -- the command line ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["buidl", "x.yaml"], "unknown command 'buidl'; did you mean 'build'?"),
        (["valdiate", "x.yaml"], "did you mean 'validate'?"),
        (["help", "trian"], "unknown command 'trian'; did you mean 'train'?"),
        (
            ["validate", "--format", "jsn", "x.yaml"],
            "argument --format: invalid choice 'jsn'; did you mean 'json'?",
        ),
    ],
)
def test_typos_get_a_did_you_mean_and_exit_status_2(argv, message, capsys):
    try:
        status = main(argv)
    except SystemExit as e:
        status = e.code
    assert status == 2
    err = capsys.readouterr().err
    assert message in err
    assert "invalid choice: '" not in err  # argparse's own wording is replaced


def test_help_command(capsys):
    assert main(["help"]) == 0
    assert "validate" in capsys.readouterr().out
    assert main(["help", "build"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: modelspec build") and "--format" in out


# -- the name on the package index, and the backends installed ------------------------------


def test_install_hints_name_the_distribution():
    text = (ROOT / "pyproject.toml").read_text()
    assert 'name = "keras-modelspec"' in text
    for path in [*ROOT.glob("modelspec/**/*.py"), ROOT / "README.md"]:
        assert "'modelspec[" not in path.read_text(), path  # the package index's modelspec is another project


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="JAX is not installed")
def test_missing_backend_hint_suggests_an_installed_one(tmp_path):
    code = (
        "import os, sys\n"
        "os.environ.pop('KERAS_BACKEND', None)\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'tensorflow':\n"
        "            raise ModuleNotFoundError(\"No module named 'tensorflow'\", name='tensorflow')\n"
        "sys.meta_path.insert(0, Block())\n"
        "from modelspec.cli import main\n"
        f"sys.exit(main(['build', {str(SPECS / 'iris.yaml')!r}, '-o', {str(tmp_path / 'm.keras')!r}]))\n"
    )
    done = python(code, KERAS_HOME=str(tmp_path))  # no keras.json naming another backend
    assert done.returncode == 1, done.stderr
    line = done.stderr.strip().splitlines()[-1]
    assert "run with KERAS_BACKEND=jax" in line and "pip install 'keras-modelspec[tensorflow]'" in line


# -- a built model is a first-class file ------------------------------------------------------


def test_built_model_loads_in_plain_keras_without_warnings_and_predict_says_what_it_lacks(tmp_path, capsys):
    model = tmp_path / "iris.keras"
    assert main(["build", str(SPECS / "iris.yaml"), "-o", str(model)]) == 0
    code = (
        "import warnings, keras\n"
        "with warnings.catch_warnings(record=True) as seen:\n"
        "    warnings.simplefilter('always')\n"
        f"    m = keras.saving.load_model({str(model)!r})\n"
        "print(len(m.optimizer.variables), [str(w.message) for w in seen])\n"
    )
    done = python(code)
    assert done.returncode == 0, done.stderr
    count, _, warned = done.stdout.strip().partition(" ")
    assert warned == "[]" and int(count) > 2  # the optimizer's slots were saved with it
    assert main(["predict", str(model), "--data", str(DATA / "iris.csv")]) == 1
    err = capsys.readouterr().err
    assert "written by `modelspec build` and never trained" in err
    assert f"modelspec train {SPECS / 'iris.yaml'} -o {model}" in err


# -- a quiet Python API ----------------------------------------------------------------------


def test_python_build_and_train_print_nothing(tmp_path):
    text = (SPECS / "iris.yaml").read_text().replace("path: data/iris.csv", f"path: {DATA / 'iris.csv'}")
    spec = tmp_path / "iris.yaml"
    spec.write_text(text)
    code = (
        "import modelspec\n"
        f"modelspec.build({str(SPECS / 'resnet50.yaml')!r})\n"
        f"modelspec.train({str(spec)!r}, epochs=2, verbose=0)\n"
    )
    done = python(code, TF_CPP_MIN_LOG_LEVEL="3")
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert done.stderr == ""
