"""Hostile inputs, round two: a spec, a data file or a model file must never delete, overwrite or hang.

Each case asserts the exit status, the message and its code, and that
nothing was deleted, replaced or left behind (marker files, byte
comparisons, no temporary files). Hostile files run in a subprocess under
an address-space limit and a time limit.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import socket
import stat
import subprocess
import sys
import threading
import time
import zipfile

import numpy as np
import pandas as pd
import pytest
from conftest import DATA, ROOT, run_modelspec

import modelspec
from modelspec.cli import main
from modelspec.errors import CODES
from modelspec.training import data as data_module

IRIS = DATA / "iris.csv"

SPEC = """\
modelspec: 1
seed: 1
inputs:
  features: {{shape: [4]}}
layers:
  - {{type: Dense, units: 8, activation: relu}}
  - {{type: Dense, units: {units}, activation: softmax, name: species}}
compile:
  optimizer: adam
  loss: sparse_categorical_crossentropy
train:
  data:
    path: {path}
    target: species
  epochs: 1
  callbacks: {callbacks}
"""


def spec_text(callbacks: str = "[]", path: str = "iris.csv", units: int = 3) -> str:
    return SPEC.format(callbacks=callbacks, path=path, units=units)


@pytest.fixture
def project(tmp_path):
    """A folder with the iris data, a folder of someone's files, and a writer of specs; returns the folder."""
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "iris.csv").write_bytes(IRIS.read_bytes())
    victim = folder / "victim"
    victim.mkdir()
    (victim / "thesis.txt").write_text("years of work")
    return folder


def write(folder: pathlib.Path, text: str, name: str = "spec.yaml") -> pathlib.Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def snapshot(folder: pathlib.Path) -> dict[str, str]:
    """Every file under ``folder`` (relative path -> hash of its bytes): what must not change."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def no_temporary_files(folder: pathlib.Path) -> bool:
    return not [p for p in folder.rglob(".*") if p.is_file()]


def run(args: list[str], cwd: pathlib.Path | None = None, memory: int = 2 << 30, timeout: int = 60):
    """:func:`conftest.run_modelspec` (address-space and time limits), and the seconds it took."""
    start = time.monotonic()
    done = run_modelspec(args, cwd=cwd, memory=memory, timeout=timeout)
    return done, time.monotonic() - start


def test_new_codes_are_listed():
    for code in ("path-outside", "path-protected", "path-exists", "output-count", "single-class",
                 "unused-units", "model-archive"):  # fmt: skip
        assert code in CODES
    assert CODES["unused-units"].startswith("warning:")


# -- 1. paths a spec names are confined and never destroy --------------------------------------


@pytest.mark.parametrize(
    ("callback", "code", "words"),
    [
        ("{type: BackupAndRestore, backup_dir: .}", "path-protected", "is the spec's own folder"),
        ("{type: BackupAndRestore, backup_dir: ./}", "path-protected", "is the spec's own folder"),
        ("{type: BackupAndRestore, backup_dir: victim}", "path-exists", "is an existing folder"),
        ("{type: BackupAndRestore, backup_dir: victim/}", "path-exists", "delete it with everything in it"),
        ("{type: BackupAndRestore, backup_dir: ..}", "path-protected", "a folder above the spec's folder"),
        ("{type: BackupAndRestore, backup_dir: victim/..}", "path-protected", "the spec's own folder"),
        ("{type: BackupAndRestore, backup_dir: iris.csv}", "path-protected", "the spec's training data"),
        ("{type: TensorBoard, log_dir: victim}", "path-exists", "is an existing folder"),
        ("{type: TensorBoard, log_dir: .}", "path-protected", "is the spec's own folder"),
        ("{type: CSVLogger, filename: iris.csv}", "path-protected", "the spec's training data"),
        ("{type: CSVLogger, filename: spec.yaml}", "path-protected", "the spec itself"),
        ("{type: CSVLogger, filename: victim/thesis.txt}", "path-exists", "is an existing file"),
        ("{type: ModelCheckpoint, filepath: victim}", "path-exists", "is an existing folder"),
        ("{type: TensorBoard, log_dir: spec.yaml/logs}", "path-exists", "is a file, not a folder"),
    ],
)
def test_validate_refuses_callback_paths_that_destroy(project, callback, code, words, capsys):
    spec = write(project, spec_text(f"[{callback}]"))
    before = snapshot(project)
    assert main(["validate", str(spec)]) == 1
    err = capsys.readouterr().err
    assert f"{spec}:16:" in err and "train.callbacks[0]" in err, err  # located at the callback's line
    assert words in err, err
    problems = modelspec_problems(spec)
    assert [p.code for p in problems] == [code]
    assert snapshot(project) == before


def modelspec_problems(spec: pathlib.Path) -> list:
    with pytest.raises(modelspec.SpecError) as info:
        modelspec.load(spec)
    return info.value.problems


def test_train_refuses_the_folder_deleting_spec_and_deletes_nothing(project, capsys):
    spec = write(project, spec_text("[{type: BackupAndRestore, backup_dir: .}]"))
    before = snapshot(project)
    assert main(["train", str(spec), "-q", "--overwrite", "--allow-outside"]) == 1  # no consent covers it
    assert "is the spec's own folder" in capsys.readouterr().err
    assert snapshot(project) == before and not (project / "spec.keras").exists()
    write(project, spec_text("[{type: BackupAndRestore, backup_dir: victim}]"))
    assert main(["train", str(spec), "-q", "--overwrite"]) == 1
    assert (project / "victim" / "thesis.txt").read_text() == "years of work"


def test_backup_folder_is_made_for_the_run_and_resolved_against_the_spec(
    project, tmp_path, monkeypatch, capsys
):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "backup").mkdir()  # relative to the working folder, this would be the backup folder
    (elsewhere / "backup" / "keep.txt").write_text("not yours")
    monkeypatch.chdir(elsewhere)
    spec = write(
        project,
        spec_text("[{type: BackupAndRestore, backup_dir: backup}, {type: CSVLogger, filename: log.csv}]"),
    )
    before = snapshot(project)
    assert main(["train", str(spec), "-q"]) == 0, capsys.readouterr().err
    assert (elsewhere / "backup" / "keep.txt").read_text() == "not yours"
    assert not (project / "backup").exists()  # Keras deleted the folder it made, and only that
    assert (project / "log.csv").exists() and not (elsewhere / "log.csv").exists()
    after = snapshot(project)
    assert {k: v for k, v in after.items() if k in before} == before


def test_backup_folder_of_its_own(project, capsys):
    spec = write(
        project,
        spec_text(
            "[{type: BackupAndRestore, backup_dir: run}, {type: ModelCheckpoint, filepath: run/best.keras}]"
        ),
    )
    assert main(["validate", str(spec)]) == 1
    assert "Keras deletes this folder" in capsys.readouterr().err


def test_an_interrupted_backup_is_resumed_not_refused(project):
    backup = project / "backup"
    backup.mkdir()
    (backup / "training_metadata.json").write_text('{"epoch": 0, "batch": 0}')
    spec = write(project, spec_text("[{type: BackupAndRestore, backup_dir: backup}]"))
    modelspec.load(spec)  # Keras's own backup files only: a run to resume
    (backup / "notes.txt").write_text("mine")
    assert [p.code for p in modelspec_problems(spec)] == ["path-exists"]


def test_overwrite_is_consent_for_files_only(project, capsys):
    log = project / "log.csv"
    log.write_text("old log\n")
    spec = write(project, spec_text("[{type: CSVLogger, filename: log.csv}]"))
    assert main(["train", str(spec), "-q"]) == 1
    err = capsys.readouterr().err
    assert "is an existing file" in err and "--overwrite" in err
    assert log.read_text() == "old log\n" and not (project / "spec.keras").exists()
    assert main(["train", str(spec), "-q", "--overwrite"]) == 0
    assert log.read_text().startswith("epoch")
    write(project, spec_text("[{type: ModelCheckpoint, filepath: 'ckpt-{epoch:02d}.keras'}]"))
    (project / "ckpt-01.keras").write_bytes(b"an older checkpoint")
    assert main(["validate", str(spec)]) == 1
    assert "would write over the existing file" in capsys.readouterr().err
    write(project, spec_text("[{type: CSVLogger, filename: iris.csv}]"))
    assert main(["train", str(spec), "-q", "--overwrite"]) == 1  # the data: never
    assert (project / "iris.csv").read_bytes() == IRIS.read_bytes()


@pytest.mark.parametrize(
    ("callback", "where"),
    [
        ("{type: CSVLogger, filename: ../outside.csv}", "leads to"),
        ("{type: TensorBoard, log_dir: ../../logs}", "leads to"),
        ("{type: ModelCheckpoint, filepath: /tmp/modelspec-outside.keras}", "is an absolute path"),
    ],
)
def test_paths_outside_need_allow_outside(project, callback, where, capsys):
    spec = write(project, spec_text(f"[{callback}]"))
    assert main(["validate", str(spec)]) == 1
    err = capsys.readouterr().err
    assert where in err and "--allow-outside" in err and "train.callbacks[0]" in err, err
    assert [p.code for p in modelspec_problems(spec)] == ["path-outside"]
    assert main(["validate", str(spec), "--allow-outside"]) == 0


def test_data_outside_needs_allow_outside(project, tmp_path, capsys):
    (tmp_path / "other.csv").write_bytes(IRIS.read_bytes())
    for path in ("../other.csv", str(tmp_path / "other.csv")):
        spec = write(project, spec_text(path=path))
        assert main(["validate", str(spec)]) == 1
        err = capsys.readouterr().err
        assert f"{spec}:13:" in err and "path-outside" not in err and "--allow-outside" in err, err
        assert main(["validate", str(spec), "--allow-outside"]) == 0
    link = project / "link.csv"
    link.symlink_to(tmp_path / "other.csv")  # a link inside that leads outside is outside
    spec = write(project, spec_text(path="link.csv"))
    assert [p.code for p in modelspec_problems(spec)] == ["path-outside"]


def test_bundled_examples_keep_their_data_inside_their_folder():
    # So they run from any folder, with no --allow-outside (tests/test_cli.py runs them so).
    for spec in sorted((ROOT / "specs").glob("*.yaml")):
        loaded = modelspec.load(spec)
        if loaded.train is not None:
            data = (spec.parent / loaded.train.data.path).resolve()
            assert data.is_file() and data.is_relative_to(spec.parent.resolve()), spec


# -- 2. outputs are all-or-nothing; no command writes over its own inputs ---------------------------


@pytest.fixture
def trained(project):
    """The project with a spec trained once: spec.keras, spec.history.csv, spec.curves.png."""
    spec = write(project, spec_text())
    assert main(["train", str(spec), "-q"]) == 0
    return spec


def test_a_failed_output_leaves_every_old_output_as_it_was(trained, capsys):
    project = trained.parent
    curves = project / "spec.curves.png"
    curves.unlink()
    curves.mkdir()  # the curves path is now a folder
    before = snapshot(project)
    assert main(["train", str(trained), "-q"]) == 1
    err = capsys.readouterr().err
    assert "cannot write the learning curves: it is a folder" in err and "output-file" not in err
    assert snapshot(project) == before and no_temporary_files(project)


def test_a_writer_failing_midway_leaves_every_old_output_as_it_was(trained, monkeypatch, capsys):
    project = trained.parent
    before = snapshot(project)

    def broken(path, history, title=""):
        pathlib.Path(path).write_bytes(b"half a png")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("modelspec.training.write_curves", broken)
    assert main(["train", str(trained), "-q", "--epochs", "2"]) == 1
    err = capsys.readouterr().err
    assert "cannot write the learning curves: No space left on device; nothing was written" in err
    assert snapshot(project) == before and no_temporary_files(project)


def test_no_command_writes_over_its_inputs(trained, capsys):
    project = trained.parent
    before = snapshot(project)
    model, csv = project / "spec.keras", project / "iris.csv"
    cases = [
        ["predict", str(model), "--data", str(csv), "-o", str(model)],
        ["predict", str(model), "--data", str(csv), "-o", str(csv)],
        ["data", str(trained), "-o", str(trained)],
        ["data", str(trained), "-o", str(csv)],
        [
            "train",
            str(trained),
            "-o",
            str(project / "iris.keras"),
            "--data",
            str(project / "iris.history.csv"),
        ],
    ]
    # However an input is spelt: through a link to its folder, a link to it, a hard link, '..'.
    link = project.parent / "lnk"
    link.symlink_to(project, target_is_directory=True)
    (project / "model-link.keras").symlink_to(model)
    os.link(trained, project / "hard.png")
    cases += [
        ["predict", str(link / "spec.keras"), "--data", str(csv), "-o", str(project / "spec.keras")],
        ["predict", str(model), "--data", str(link / "iris.csv"), "-o", str(csv)],
        ["predict", str(project / "model-link.keras"), "--data", str(csv), "-o", str(model)],
        ["data", str(trained), "-o", str(project / "hard.png")],
        ["data", str(trained), "-o", str(project / "victim" / ".." / "iris.csv")],
        [
            "train",
            str(link / "spec.yaml"),
            "-o",
            str(project / "iris.keras"),
            "--data",
            str(link / "iris.history.csv"),
        ],
    ]
    (project / "iris.history.csv").write_bytes(csv.read_bytes())
    before = snapshot(project)
    for args in cases:
        assert main(args) == 2, args
        err = capsys.readouterr().err
        assert "never writes over its own inputs" in err, err
    assert snapshot(project) == before
    assert main(["predict", str(model), "--data", str(csv), "-o", str(project / "p.keras")]) == 2
    assert "the predictions must end in .csv or .tsv or .txt, got" in capsys.readouterr().err
    assert snapshot(project) == before and no_temporary_files(project)


# -- 3. data is finite and fits ---------------------------------------------------------------------


def test_infinite_and_huge_values_are_refused_by_column_and_line(project, capsys):
    frame = pd.read_csv(IRIS)
    frame["sepal_width"] = frame["sepal_width"].astype(object)
    frame.loc[3, "sepal_width"] = "inf"
    frame.loc[5, "petal_length"] = -np.inf
    frame.loc[8, "petal_width"] = 1e39  # beyond float32
    frame.to_csv(project / "iris.csv", index=False)
    spec = write(project, spec_text())
    assert main(["train", str(spec), "-q"]) == 1
    err = capsys.readouterr().err
    for column, line in (("sepal_width", 5), ("petal_length", 7), ("petal_width", 10)):
        assert f"feature column '{column}' has 1 value that is infinite or beyond float32's range" in err
        assert f"(file line {line})" in err
    assert "3 errors" in err and not (project / "spec.keras").exists()
    with pytest.raises(modelspec.SpecError) as info:
        modelspec.train(spec, verbose=0)
    assert {p.code for p in info.value.problems} == {"data-value"}


def test_an_infinite_numeric_target_is_refused(project):
    frame = pd.read_csv(IRIS).drop(columns="species")
    frame["species"] = 1.0
    frame.loc[2, "species"] = np.inf
    frame.to_csv(project / "iris.csv", index=False)
    text = spec_text(units=1).replace("activation: softmax", "activation: linear")
    spec = write(project, text.replace("sparse_categorical_crossentropy", "mse"))
    with pytest.raises(modelspec.SpecError) as info:
        modelspec.train(spec, verbose=0)
    (problem,) = info.value.problems
    assert problem.code == "data-value" and "target column 'species'" in problem.message
    assert "file line 4" in problem.message and problem.line == 14


def test_fewer_classes_than_units_trains_with_a_warning_and_predicts(project, capsys):
    frame = pd.read_csv(IRIS)
    frame[frame.species != "virginica"].to_csv(project / "iris.csv", index=False)
    spec = write(project, spec_text(units=5))
    assert main(["train", str(spec), "-q"]) == 0
    err = capsys.readouterr().err
    assert f"{spec}:14:" in err and "warning:" in err and "has 2 classes" in err and "5 units" in err
    assert main(["predict", str(project / "spec.keras"), "--data", str(IRIS)]) == 0
    answers = pd.read_csv(__import__("io").StringIO(capsys.readouterr().out))
    assert set(answers["species"]) <= {"setosa", "versicolor"} and len(answers) == 150
    assert main(["evaluate", str(project / "spec.keras"), "--data", str(project / "iris.csv")]) == 0


def test_a_single_class_is_refused(project, capsys):
    frame = pd.read_csv(IRIS)
    frame[frame.species == "setosa"].to_csv(project / "iris.csv", index=False)
    spec = write(project, spec_text())
    assert main(["train", str(spec), "-q"]) == 1
    err = capsys.readouterr().err
    assert f"{spec}:14:" in err and "holds one class only ('setosa')" in err
    assert [p.code for p in train_problems(spec)] == ["single-class"]


def train_problems(spec: pathlib.Path) -> list:
    with pytest.raises(modelspec.SpecError) as info:
        modelspec.train(spec, verbose=0)
    return info.value.problems


# -- 4. only regular files, bounded -----------------------------------------------------------------


@pytest.mark.parametrize("kind", ["fifo", "folder", "device"])
def test_data_that_is_not_a_regular_file_is_refused_at_once(project, trained, kind):
    path = {
        "fifo": project / "pipe.csv",
        "folder": project / "folder.csv",
        "device": pathlib.Path("/dev/zero"),
    }[kind]
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "folder":
        path.mkdir()
    for args in (
        ["train", str(trained), "--data", str(path), "-o", str(project / "other.keras")],
        ["predict", str(project / "spec.keras"), "--data", str(path)],
        ["data", str(trained), "--data", str(path)],
    ):
        done, seconds = run(args, timeout=120)
        assert done.returncode == 1, done.stderr
        assert (seconds < 60 and "not a regular file" in done.stderr) or "is a folder" in done.stderr, (
            done.stderr
        )
        assert "internal error" not in done.stderr


def test_model_paths_that_are_not_regular_files_are_refused(project):
    os.mkfifo(project / "model.keras")
    done, seconds = run(["predict", str(project / "model.keras"), "--data", str(IRIS)])
    assert done.returncode == 1 and "is a FIFO, not a regular file" in done.stderr, done.stderr
    assert seconds < 30
    done, _ = run(["evaluate", str(project), "--data", str(IRIS)])
    assert done.returncode == 1 and "is a folder" in done.stderr


def test_data_files_have_a_size_limit(project, monkeypatch, capsys):
    monkeypatch.setattr(data_module, "MAX_DATA_BYTES", 1000)
    spec = write(project, spec_text())
    assert main(["train", str(spec), "-q"]) == 1
    assert "at most 1,000 are read" in capsys.readouterr().err


def zip_bomb(path: pathlib.Path, member: str, size: int) -> None:
    """A small archive whose ``member`` unpacks to ``size`` zero bytes."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        with archive.open(member, "w", force_zip64=True) as f:
            chunk = bytes(1 << 20)
            for _ in range(size >> 20):
                f.write(chunk)
        archive.writestr("modelspec.json", "{}")


@pytest.mark.parametrize(
    ("member", "size", "words"),
    [
        ("config.json", 1 << 30, "config.json is 1,073,741,824 bytes"),
        ("model.weights.h5", 1 << 30, "times larger than it is stored"),
    ],
)
def test_zip_bombs_are_refused_before_unpacking(tmp_path, member, size, words):
    bomb = tmp_path / "bomb.keras"
    zip_bomb(bomb, member, size)
    assert bomb.stat().st_size < 2 << 20
    for command in ("predict", "evaluate"):
        done, seconds = run([command, str(bomb), "--data", str(IRIS)], memory=1 << 30)
        assert done.returncode == 1, done.stderr
        assert "refused before unpacking" in done.stderr and words in done.stderr, done.stderr
        assert seconds < 30
    assert not [p for p in tmp_path.iterdir() if p.name != "bomb.keras"]


def test_archive_directory_tricks_are_refused(tmp_path, capsys):
    many = tmp_path / "many.keras"
    with zipfile.ZipFile(many, "w") as archive:
        for i in range(1_001):
            archive.writestr(f"m{i}", b"")
    overlapping = tmp_path / "overlap.keras"
    with zipfile.ZipFile(overlapping, "w") as archive:
        archive.writestr("config.json", b"x" * 1000)
    raw = bytearray(overlapping.read_bytes())  # a second directory entry pointing at the same bytes
    directory = raw.index(b"PK\x01\x02")
    end = raw.index(b"PK\x05\x06")
    entry = bytes(raw[directory:end]).replace(b"config.json", b"other.jsonx")
    record = bytearray(raw[end:])
    record[8:10] = (2).to_bytes(2, "little")
    record[10:12] = (2).to_bytes(2, "little")
    record[12:16] = (len(entry) * 2).to_bytes(4, "little")
    overlapping.write_bytes(bytes(raw[:end]) + entry + bytes(record))
    for path, words in ((many, "1,001 entries"), (overlapping, "overlapping entries")):
        assert main(["predict", str(path), "--data", str(IRIS)]) == 1
        err = capsys.readouterr().err
        assert words in err, err


# -- 5. sep cannot hang -------------------------------------------------------------------------------


def test_sep_is_one_literal_character(project, trained, capsys):
    spec = write(
        project, spec_text().replace("target: species", "target: species\n    sep: '(a+)+$'"), "regex.yaml"
    )
    assert main(["validate", str(spec)]) == 1
    err = capsys.readouterr().err
    assert f"{spec}:15:" in err and "taken literally" in err and "'(a+)+$'" in err
    assert [p.code for p in modelspec_problems(spec)] == ["invalid-value"]
    tabbed = project / "tabbed.csv"
    pd.read_csv(IRIS).to_csv(tabbed, sep="\t", index=False)
    spec = write(
        project,
        spec_text(path="tabbed.csv").replace("target: species", "target: species\n    sep: '\\t'"),
        "tab.yaml",
    )
    assert modelspec.load(spec).train.data.sep == "\t"
    for sep in ("ab", "", '"', "\\s+"):
        with pytest.raises(SystemExit) as exit_:
            main(["predict", str(project / "spec.keras"), "--data", str(IRIS), "--sep", sep])
        assert exit_.value.code == 2
        assert "argument --sep" in capsys.readouterr().err


def test_a_regex_separator_never_reaches_pandas(tmp_path):
    text = "a" * 30 + "!\n" + "a" * 30 + "!\n"
    (tmp_path / "slow.csv").write_text(text)
    with pytest.raises(modelspec.SpecError):
        data_module.read_csv(str(tmp_path / "slow.csv"), "(a+)+$", data_module.Places("slow.csv"))


# -- 6. `modelspec data` scales ------------------------------------------------------------------------


def test_data_summarizes_the_first_columns_of_a_wide_file(project, capsys):
    rng = np.random.default_rng(0)
    wide = pd.DataFrame(rng.normal(size=(50, 2000)), columns=[f"c{i}" for i in range(2000)])
    wide["y"] = rng.integers(0, 3, 50)
    wide.to_csv(project / "wide.csv", index=False)
    spec = write(project, spec_text(path="wide.csv").replace("target: species", "target: y"), "wide.yaml")
    start = time.monotonic()
    assert main(["data", str(spec)]) == 0
    seconds = time.monotonic() - start
    out = capsys.readouterr().out
    assert "showing the first 40 of 2,001 columns" in out and (project / "wide.data.png").exists()
    assert seconds < 60


# -- 7. no internal errors for user mistakes -------------------------------------------------------------


def test_a_list_of_losses_must_match_the_outputs(tmp_path, capsys):
    spec = write(
        tmp_path,
        "modelspec: 1\ninputs: {x: [4]}\nlayers:\n  a: {type: Dense, units: 2}\n  b: {type: Dense, units: 1, inputs: x}\n"
        "outputs: [a, b]\ncompile:\n  optimizer: adam\n  loss: [mse, mse, mse]\n",
    )
    assert main(["validate", str(spec)]) == 1
    err = capsys.readouterr().err
    assert f"{spec}:9:" in err and "3 losses for 2 outputs (a, b)" in err
    assert [p.code for p in modelspec_problems(spec)] == ["output-count"]


def test_a_failing_tensorboard_is_located(project, capsys):
    spec = write(project, spec_text("[{type: TensorBoard, log_dir: tb}]"))
    status = main(["train", str(spec), "-q"])
    err = capsys.readouterr().err
    assert "internal error" not in err
    if status == 1:  # without the tensorboard package, or where it cannot write
        assert f"{spec}:16:" in err and "the TensorBoard callback failed during training" in err
        assert not (project / "tb").exists()  # the folder made for the failed run is gone
    else:
        assert status == 0 and (project / "tb").is_dir()


def crafted(model: pathlib.Path, path: pathlib.Path, change) -> pathlib.Path:
    with zipfile.ZipFile(model) as source, zipfile.ZipFile(path, "w") as archive:
        for info in source.infolist():
            raw = source.read(info)
            if info.filename == "modelspec.json":
                metadata = json.loads(raw)
                change(metadata)
                raw = json.dumps(metadata).encode()
            archive.writestr(info, raw)
    return path


def test_model_files_that_lie(trained, tmp_path, capsys):
    model = trained.parent / "spec.keras"
    plain = tmp_path / "plain.keras"
    modelspec.build(trained).save(plain)
    (tmp_path / "header.csv").write_text("sepal_length,sepal_width,petal_length,petal_width,species\n")

    def more_outputs(m):
        m["structure"] = "list"
        m["outputs"].append({**m["outputs"][0], "name": "ghost"})

    cases = {
        crafted(
            model, tmp_path / "units.keras", lambda m: m["outputs"][0].update(units=7)
        ): "the metadata says 7 units",
        crafted(
            model, tmp_path / "labels.keras", lambda m: m["outputs"][0].update(labels=list("abcdef"))
        ): "6 labels for 3 units",
        crafted(model, tmp_path / "outputs.keras", more_outputs): "names 2 outputs; the model has 1",
        crafted(model, tmp_path / "features.keras", lambda m: m["features"].pop()): "names 3 features",
        crafted(model, tmp_path / "sep.keras", lambda m: m.update(sep="(a+)+$")): "taken literally",
        plain: "the model has no modelspec.json: it was not written by `modelspec train`",
    }
    for path, words in cases.items():
        for command in ("predict", "evaluate"):
            assert main([command, str(path), "--data", str(IRIS)]) == 1, path
            err = capsys.readouterr().err
            assert f"{path}: error: model: " in err and words in err, err
            assert "not a valid zip archive" not in err and "internal error" not in err
    assert main(["predict", str(model), "--data", str(tmp_path / "header.csv")]) == 1
    assert "has a header but no rows" in capsys.readouterr().err


# -- 8. what validate accepts, build builds -------------------------------------------------------------


def test_user_names_never_collide_with_automatic_ones(tmp_path):
    spec = write(
        tmp_path,
        "modelspec: 1\ninputs: {x: [4]}\nlayers:\n  - {type: Dense, units: 4}\n  - {type: Dense, units: 4, name: dense_1}\n"
        "  - {type: Dense, units: 4}\n  - {type: Dense, units: 2, name: dense}\n",
        "list.yaml",
    )
    model = modelspec.build(spec)
    assert [layer.name for layer in model.layers] == ["dense_2", "dense_1", "dense_3", "dense"]
    assert [layer.name for layer in modelspec.build(spec).layers] == [
        "dense_2",
        "dense_1",
        "dense_3",
        "dense",
    ]
    dag = write(
        tmp_path,
        "modelspec: 1\ninputs: {x: [4]}\nlayers:\n  add: {type: Dense, units: 4}\n  b: {type: Dense, units: 4, inputs: x}\n"
        "  total: {op: add, inputs: [add, b]}\n",
        "dag.yaml",
    )
    model = modelspec.build(dag)
    assert sorted(op.name for op in model.operations) == ["add", "b", "total", "x"]


def test_a_chain_deeper_than_keras_recursion_limit_builds(tmp_path):
    n = 1_200  # Keras's own functional build fails past about 1,000 layers
    lines = ["modelspec: 1", "inputs: {x: [4]}", "layers:"]
    lines += [f"  l{i}: {{type: Dense, units: 4}}" for i in range(n)]
    spec = write(tmp_path, "\n".join(lines) + "\n")
    limit = sys.getrecursionlimit()
    model = modelspec.build(spec)
    assert len(model.layers) == n + 1
    assert sys.getrecursionlimit() == limit  # restored
    assert model(np.zeros((2, 4), dtype="float32")).shape == (2, 4)


# -- 9. round three: no output replaces an input or a special file ----------------------------------------

LIBRARY = """\
modelspec: 1
blocks:
  dense:
    params: {units: required}
    layers:
      - {type: Dense, units: "${units}"}
"""

MAIN = """\
modelspec: 1
imports: {lib: lib.yaml}
inputs: {x: [4]}
layers:
  - {block: lib.dense, units: 3}
"""


@pytest.fixture
def linked(tmp_path):
    """real/main.yaml importing real/lib.yaml, a link lnk -> real, and a spec whose data is data.yaml."""
    real = tmp_path / "real"
    real.mkdir()
    write(real, LIBRARY, "lib.yaml")
    write(real, MAIN, "main.yaml")
    (real / "data.yaml").write_bytes(IRIS.read_bytes())  # a CSV, named so an expanded spec could go there
    write(real, spec_text(path="data.yaml"), "train.yaml")
    (real / "iris.csv").write_bytes(IRIS.read_bytes())
    write(real, spec_text(), "iris.yaml")
    (tmp_path / "lnk").symlink_to(real, target_is_directory=True)
    (real / "lib-link.keras").symlink_to(real / "lib.yaml")
    os.link(real / "main.yaml", real / "hard.mmd")
    return tmp_path


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["expand", "lnk/main.yaml", "-o", "real/main.yaml"], "the output 'real/main.yaml' is the spec:"),
        (["expand", "real/main.yaml", "-o", "lnk/main.yaml"], "is the spec:"),
        (["expand", "real/main.yaml", "-o", "real/lib.yaml"], "is the spec's import 'lib.yaml':"),
        (["expand", "lnk/main.yaml", "-o", "real/lib.yaml"], "is the spec's import 'lib.yaml':"),
        (["expand", "real/main.yaml", "-o", "lnk/../real/lib.yaml"], "is the spec's import 'lib.yaml':"),
        (["build", "real/main.yaml", "-o", "real/lib-link.keras"], "is the spec's import 'lib.yaml':"),
        (["draw", "real/main.yaml", "-o", "real/hard.mmd"], "is the spec:"),
        (["draw", "lnk/hard.mmd", "-o", "real/main.mmd"], None),  # (not an input: written)
        (["expand", "real/train.yaml", "-o", "lnk/data.yaml"], "is the spec's training data:"),
        (["expand", "real/iris.yaml", "-o", "real/iris.csv"], "the expanded spec must end in .yaml or .yml"),
        (["data", "lnk/iris.yaml", "-o", "real/iris.yaml"], "is the spec:"),
    ],
)
def test_no_output_replaces_an_input_however_it_is_named(linked, monkeypatch, capsys, args, words):
    monkeypatch.chdir(linked)
    before = snapshot(linked / "real")
    if words is None:
        assert main(args) == 0
        assert (linked / args[-1]).read_text().startswith("flowchart")
        return
    assert main(args) == 2, args
    err = capsys.readouterr().err
    assert words in err, err
    assert snapshot(linked / "real") == before and no_temporary_files(linked)


def test_a_callback_never_writes_over_an_imported_file(linked, capsys):
    text = (
        MAIN
        + "compile: {optimizer: adam, loss: mse}\n"
        + "train:\n  data: {path: iris.csv, target: species}\n  callbacks: [{type: CSVLogger, filename: lib.yaml}]\n"
    )
    spec = write(linked / "real", text, "logged.yaml")
    assert main(["validate", str(spec)]) == 1
    message = "CSVLogger.filename 'lib.yaml' is a file the spec imports: training would write over it"
    assert message in capsys.readouterr().err
    with modelspec.path_policy(overwrite=True), pytest.raises(modelspec.SpecError) as info:
        modelspec.load(spec)  # consent to replace files is not consent to replace the spec's own
    assert [(p.code, p.message) for p in info.value.problems] == [("path-protected", message)]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (
            ["expand", "spec.yaml", "-o", "flat.csv"],
            "the expanded spec must end in .yaml or .yml, got 'flat.csv'",
        ),
        (["schema", "-o", "schema.yaml"], "the schema must end in .json, got 'schema.yaml'"),
        (
            ["build", "spec.yaml", "-o", "model.h5"],
            "the output must end in .keras, .onnx or .tflite (or use --format saved_model -o FOLDER), got 'model.h5'",
        ),
        (["train", "spec.yaml", "-o", "model.h5"], "the model must end in .keras, got 'model.h5'"),
        (
            ["data", "spec.yaml", "-o", "histograms.jpg"],
            "the histograms must end in .png, got 'histograms.jpg'",
        ),
        (["draw", "spec.yaml", "-o", "graph.pdf"], "must end in"),
    ],
)
def test_outputs_of_one_kind_have_its_suffix(project, monkeypatch, capsys, args, words):
    write(project, spec_text())
    monkeypatch.chdir(project)
    before = snapshot(project)
    assert main(args) == 2
    assert words in capsys.readouterr().err
    assert snapshot(project) == before and not (project / args[-1]).exists()


def special(path: pathlib.Path, kind: int, device: tuple[int, int] = (1, 3)) -> pathlib.Path:
    """Make a device node (``/dev/null``'s numbers by default), or skip where this user cannot."""
    try:
        os.mknod(path, kind | 0o666, os.makedev(*device))
    except PermissionError:
        pytest.skip("making device nodes needs root")
    return path


def still(path: pathlib.Path, kind, device: tuple[int, int] = (1, 3)) -> bool:
    info = os.lstat(path)
    return kind(info.st_mode) and (kind is stat.S_ISFIFO or info.st_rdev == os.makedev(*device))


def test_a_device_output_is_written_to_never_replaced(project, monkeypatch, capsys):
    monkeypatch.chdir(project)
    spec = write(project, spec_text())
    nul, drawing = special(project / "nul", stat.S_IFCHR), special(project / "nul.mmd", stat.S_IFCHR)
    (project / "link.yaml").symlink_to(nul)
    before = snapshot(project)
    for args in (
        ["expand", str(spec), "-o", "nul"],  # no suffix needed: a device is not a file of a kind
        ["expand", str(spec), "-o", "link.yaml"],  # through a link: the device, not the link, is written
        ["schema", "-o", "nul"],
        ["draw", str(spec), "-o", "nul.mmd"],
        ["build", str(spec), "-o", "nul"],
    ):
        assert main(args) == 0, args
        err = capsys.readouterr().err
        assert f"wrote {args[-1]}" in err  # on stderr: stdout may be the output itself
        assert (
            still(nul, stat.S_ISCHR) and still(drawing, stat.S_ISCHR) and (project / "link.yaml").is_symlink()
        )
    # train writes three files as one: a device cannot take part, and is refused before training.
    assert main(["train", str(spec), "-o", "nul"]) == 1
    assert (
        "cannot write the model: it is not a regular file (a device, FIFO or stream)"
        in capsys.readouterr().err
    )
    assert still(nul, stat.S_ISCHR)
    assert snapshot(project) == before and no_temporary_files(project)
    assert sorted(p.name for p in project.iterdir()) == [
        "iris.csv",
        "link.yaml",
        "nul",
        "nul.mmd",
        "spec.yaml",
        "victim",
    ]


def test_sockets_and_block_devices_are_never_written(project, monkeypatch, capsys):
    monkeypatch.chdir(project)
    spec = write(project, spec_text())
    disk = special(project / "disk.yaml", stat.S_IFBLK, (0, 0))
    try:  # a node for no device at all: should the refusal fail, nothing could be written to a disk
        os.close(os.open(disk, os.O_RDONLY))
        pytest.skip("device 0:0 opens here")
    except OSError:
        pass
    sock = socket.socket(socket.AF_UNIX)
    sock.bind("sock.yaml")
    try:
        for name, words in (("disk.yaml", "it is a block device (a disk)"), ("sock.yaml", "it is a socket")):
            assert main(["expand", str(spec), "-o", name]) == 1
            err = capsys.readouterr().err
            assert f"{name}: error: --output: cannot write the expanded spec: {words}" in err, err
        assert still(disk, stat.S_ISBLK, (0, 0)) and stat.S_ISSOCK(os.lstat("sock.yaml").st_mode)
    finally:
        sock.close()


def test_a_fifo_output_is_written_to_when_read_and_refused_at_once_when_not(project):
    spec = write(project, spec_text())
    pipe = project / "pipe.mmd"
    os.mkfifo(pipe)
    done, _ = run(["draw", str(spec), "-o", str(pipe)], timeout=120)  # a hang fails by the time limit
    assert done.returncode == 1, done.stderr
    assert "cannot write the drawing: it is a FIFO that nothing reads (start its reader first)" in done.stderr
    assert stat.S_ISFIFO(os.lstat(pipe).st_mode)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(pipe.read_bytes()), daemon=True)
    reader.start()
    time.sleep(0.2)  # (the reader's open waits for a writer; a writer started first finds none)
    done, _ = run(["draw", str(spec), "-o", str(pipe)], timeout=120)
    reader.join(60)
    assert done.returncode == 0, done.stderr
    assert received and received[0].startswith(b"flowchart")
    assert stat.S_ISFIFO(os.lstat(pipe).st_mode) and no_temporary_files(project)


def test_dev_stdout_is_the_stream_not_a_name_to_replace(project):
    spec = write(project, spec_text())
    printed, _ = run(["expand", str(spec)])
    out = project / "out.yaml"
    with open(out, "w") as stdout:
        done = subprocess.run(
            [sys.executable, "-m", "modelspec", "expand", str(spec), "-o", "/dev/stdout"],
            stdout=stdout,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)},
            timeout=60,
        )
    assert done.returncode == 0, done.stderr
    assert out.read_text() == printed.stdout  # the whole spec, and nothing else
    assert "wrote /dev/stdout" in done.stderr
    assert os.path.islink("/dev/stdout")
    # A reader that stops early (`| head`) ends the command quietly, as when the schema is printed.
    closed = subprocess.run(
        [
            "bash",
            "-o",
            "pipefail",
            "-c",
            f"'{sys.executable}' -m modelspec schema -o /dev/stdout | head -c 10",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=60,
    )
    assert closed.returncode == 0 and closed.stdout == '{\n "$schem', closed.stderr
    assert "error" not in closed.stderr
