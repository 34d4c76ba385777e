"""The paths a spec names: where they resolve, and the rules that keep a spec from reaching or destroying files.

A spec is data someone may hand you; reading or training it must never cost
you files. The rules, for the training data (``train.data.path``) and the
outputs of the file-writing callbacks (:data:`OUTPUTS`) alike:

* **Relative to the spec.** A relative path resolves against the spec's
  folder (for a spec made in Python: the working folder), and training
  hands Keras the resolved path, never the path as written.
* **Confined.** A path in a spec file must lead inside the spec's folder, or inside the
  working folder (where modelspec runs, so that a spec in ``specs/`` run
  from the repository may read ``../data/iris.csv``). The working folder does not
  count when it is ``/``, the home folder or a folder above it: it would
  confine nothing. Where a path leads is judged on its real location
  (symbolic links followed), so an absolute path and a ``..`` path are
  treated alike: allowed when they lead inside, refused elsewhere
  (``path-outside``) unless the caller allows it (``--allow-outside``,
  :func:`path_policy`). A spec without a file (made in Python, or read
  from a string with :func:`modelspec.loads`) is the caller's own code: its
  paths resolve against the working folder and are not confined; the rules
  below hold for it all the same.
* **Never destroying.** A callback output may not be the spec's folder or
  a folder above it, the spec, a file it imports, its data, or another path the spec names
  (``path-protected``), whatever the consent; nor an existing folder, nor a
  file, FIFO or device (``path-exists``), except an existing regular file
  the caller consents to replace (``modelspec train --overwrite``). A
  ``BackupAndRestore`` folder, which Keras deletes when training ends, is a
  folder of its own: it must not exist (unless it holds nothing but Keras's
  own backup files, left by an interrupted run that it then resumes), and
  no other path of the spec may lie inside it.

Pure standard library: ``modelspec validate`` runs these checks.
"""

from __future__ import annotations

import contextlib
import contextvars
import glob
import os
import re
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from ..errors import Origin, Problem
from .models import ModelSpec

OUTPUTS: dict[str, tuple[str, str | None, str]] = {
    "BackupAndRestore": ("backup_dir", None, "folder"),
    "ModelCheckpoint": ("filepath", None, "file"),
    "CSVLogger": ("filename", None, "file"),
    "TensorBoard": ("log_dir", "logs", "folder"),
}
"""Callbacks that write files: type -> (the argument naming the path, its default, file or folder)."""

BACKUP_FILES = frozenset(
    {"latest.weights.h5", "training_metadata.json", "latest.weights.h5.bkp", "training_metadata.json.bkp"}
)
"""What ``BackupAndRestore`` itself writes in its folder: a folder holding only these is a run to resume."""


@dataclass(frozen=True)
class PathPolicy:
    """What the caller allows beyond the rules.

    Attributes:
        allow_outside: Paths may lead outside the spec's and the working folder.
        overwrite: Callback outputs may replace existing regular files (never
            folders, never the spec or its data).
    """

    allow_outside: bool = False
    overwrite: bool = False


_POLICY: contextvars.ContextVar[PathPolicy] = contextvars.ContextVar("modelspec_path_policy")


def current_policy() -> PathPolicy:
    """The policy in force (the default: nothing beyond the rules)."""
    return _POLICY.get(PathPolicy())


@contextlib.contextmanager
def path_policy(*, allow_outside: bool | None = None, overwrite: bool | None = None) -> Iterator[PathPolicy]:
    """Allow, within a ``with`` block, what the rules refuse by default; None keeps the value in force.

    ``with modelspec.path_policy(allow_outside=True): modelspec.train(...)``
    is what ``modelspec train --allow-outside`` does.
    """
    now = current_policy()
    policy = PathPolicy(
        now.allow_outside if allow_outside is None else allow_outside,
        now.overwrite if overwrite is None else overwrite,
    )
    token = _POLICY.set(policy)
    try:
        yield policy
    finally:
        _POLICY.reset(token)


# -- where a path leads --------------------------------------------------------------


def spec_folder(spec: ModelSpec) -> str:
    """The folder a spec's relative paths resolve against."""
    source = spec.source
    return os.path.abspath(source.base_dir if source is not None else os.getcwd())


def spec_file(spec: ModelSpec) -> str | None:
    """The file the spec was read from; None for a spec made in Python or read from a string.

    (Text given to :func:`modelspec.loads` carries a name for messages, which
    is a file only when such a file exists in the folder its paths resolve against.)
    """
    source = spec.source
    if source is None or source.name.startswith("<"):
        return None
    path = os.path.abspath(source.name)
    if not os.path.isfile(path) or _real(os.path.dirname(path)) != _real(spec_folder(spec)):
        return None
    return path


def resolve(spec: ModelSpec, path: str) -> str:
    """``path`` against the spec's folder, normalized (``~`` is not expanded: it is a name like any other)."""
    return os.path.normpath(os.path.join(spec_folder(spec), path))


def _real(path: str) -> str:
    return os.path.realpath(path)


def _inside(path: str, folder: str) -> bool:
    """Whether ``path`` is ``folder`` or lies below it (both real, absolute)."""
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _confining_working_folder() -> str | None:
    """The working folder, unless it is ``/``, the home folder or above it (it would confine nothing)."""
    cwd = _real(os.getcwd())
    home = _real(os.path.expanduser("~"))
    if cwd == os.path.dirname(cwd) or _inside(home, cwd):
        return None
    return cwd


def roots(spec: ModelSpec) -> list[str]:
    """The folders a spec's paths must lead into: the spec's folder, and the working folder when it confines."""
    found = [_real(spec_folder(spec))]
    cwd = _confining_working_folder()
    if cwd is not None and cwd not in found:
        found.append(cwd)
    return found


def is_outside(spec: ModelSpec, path: str) -> bool:
    """Whether a resolved path leads outside every root (on its real location).

    Never for a spec without a file (made in Python, or read from a string):
    its paths are the caller's own, written in the caller's code.
    """
    if spec_file(spec) is None:
        return False
    real = _real(path)
    return not any(_inside(real, root) for root in roots(spec))


def outside_problem(at: Origin, written: str, path: str) -> Problem:
    """The ``path-outside`` problem of a path ``written`` in a spec that leads to ``path``, outside its roots."""
    where = f"'{written}' is an absolute path" if os.path.isabs(written) else f"'{written}' leads to {path}"
    return at.problem(
        "path-outside",
        f"{where}: outside the spec's folder and the working folder; a spec's paths stay inside them",
        "pass --allow-outside (Python: modelspec.path_policy(allow_outside=True)) if you trust the spec",
    )


# -- the checks ----------------------------------------------------------------------


@dataclass(frozen=True)
class Output:
    """One path a callback writes to."""

    index: int
    type: str
    arg: str
    written: str
    path: str
    kind: str
    at: Origin


def callback_outputs(spec: ModelSpec) -> list[Output]:
    """Every path the spec's file-writing callbacks name, resolved against its folder."""
    if spec.train is None:
        return []
    found = []
    for i, value in enumerate(spec.train.callbacks):
        entry = {"type": value} if isinstance(value, str) else value
        if (
            not isinstance(entry, dict)
            or not isinstance(entry.get("type"), str)
            or entry["type"] not in OUTPUTS
        ):
            continue  # not a file-writing callback, or not one at all: the catalog check says
        type_name = entry["type"]
        arg, default, kind = OUTPUTS[type_name]
        written = entry.get(arg, default)
        if (
            not isinstance(written, str) or not written
        ):  # missing or of the wrong type: the catalog check says
            continue
        at = spec.at("train", "callbacks", i)
        found.append(
            Output(
                i, type_name, arg, written, resolve(spec, written), kind, at.at(arg) if arg in entry else at
            )
        )
    return found


def relative_paths(spec: ModelSpec) -> list[tuple[Origin, str]]:
    """The relative paths the spec names (its data, its callbacks' files), each with its origin.

    They are read against the spec's folder, so a copy of the spec in another folder reads
    other files: ``modelspec expand -o`` warns about each.
    """
    named = [(out.at, out.written) for out in callback_outputs(spec)]
    if spec.train is not None:
        named.insert(0, (spec.at("train", "data", "path"), spec.train.data.path))
    return [(at, path) for at, path in named if not os.path.isabs(path)]


def check_paths(spec: ModelSpec, protect: Iterable[str] = ()) -> list[Problem]:
    """Every problem with the paths an (expanded) spec names, under the policy in force.

    Args:
        spec: The spec.
        protect: More files the callbacks must not touch (the CSV given with ``--data``).

    Returns:
        Located problems: ``path-outside`` at ``train.data.path`` or a callback
        argument, ``path-protected`` and ``path-exists`` at the callback argument.
    """
    if spec.train is None:
        return []
    policy = current_policy()
    problems: list[Problem] = []

    def outside(at: Origin, written: str, path: str) -> None:
        problems.append(outside_problem(at, written, path))

    data = spec.train.data.path if isinstance(spec.train.data.path, str) else None
    data_path = resolve(spec, data) if data else None
    if data and data_path and not policy.allow_outside and is_outside(spec, data_path):
        outside(spec.at("train", "data", "path"), data, data_path)

    outputs = callback_outputs(spec)
    if not outputs:
        return problems
    folder = _real(spec_folder(spec))
    inputs = {}  # real path -> what it is
    for path, what in ((spec_file(spec), "the spec itself"), (data_path, "the spec's training data")):
        if path is not None:
            inputs[_real(path)] = what
    for path in spec.source.files[1:] if spec.source is not None else ():
        inputs.setdefault(_real(path), "a file the spec imports")
    for path in protect:
        inputs.setdefault(_real(os.path.abspath(path)), "the training data")
    seen: dict[str, Output] = {}
    fine: list[Output] = []
    for out in outputs:
        found = _check_output(out, folder, inputs, policy)
        if found is None and not policy.allow_outside and is_outside(spec, out.path):
            outside(out.at, out.written, out.path)
            continue
        if found is not None:
            problems.append(found)
            continue
        real = _real(out.path)
        other = seen.get(real)
        if other is not None:
            problems.append(
                out.at.problem(
                    "path-protected",
                    f"{out.type} writes to '{out.written}', which callback {other.index} ({other.type}) writes to as well",
                    "give each callback a path of its own",
                )
            )
            continue
        seen[real] = out
        fine.append(out)
    problems += _own_folders(fine, outputs, data_path, spec_file(spec))
    return problems


def _check_output(out: Output, folder: str, inputs: dict[str, str], policy: PathPolicy) -> Problem | None:
    """The first problem with one callback output: protected, existing, or impossible to create."""
    real = _real(out.path)
    name = f"{out.type}.{out.arg} '{out.written}'"
    if real in inputs:
        return out.at.problem(
            "path-protected",
            f"{name} is {inputs[real]}: training would write over it",
            "name a new file or folder for the callback's output",
        )
    if _inside(folder, real):
        what = "the spec's own folder" if real == folder else "a folder above the spec's folder"
        return out.at.problem(
            "path-protected",
            f"{name} is {what}: {out.type} would write into it"
            + (" and delete it when training ends" if out.type == "BackupAndRestore" else ""),
            f"name a new {'folder' if out.kind == 'folder' else 'file'} inside the spec's folder, e.g. "
            f"'{'backup' if out.type == 'BackupAndRestore' else 'logs' if out.kind == 'folder' else 'out.csv'}'",
        )
    try:
        info = os.lstat(out.path)
    except (FileNotFoundError, NotADirectoryError):  # (a file in the way is said below)
        info = None
    except OSError as e:
        return out.at.problem("path-exists", f"{name} cannot be used: {e.strerror or e}")
    if info is not None:
        return _existing(out, name, info, policy)
    matches = _template_matches(out)
    if matches and not policy.overwrite:
        return out.at.problem(
            "path-exists",
            f"{name} would write over the existing file '{matches[0]}'",
            "pass --overwrite to `modelspec train` to replace such files, or name new ones",
        )
    return _creatable(out, name)


def _existing(out: Output, name: str, info: os.stat_result, policy: PathPolicy) -> Problem | None:
    mode = info.st_mode
    if stat.S_ISLNK(mode):
        return out.at.problem(
            "path-exists",
            f"{name} is an existing symbolic link: it is never written through",
            "name a path that does not exist yet",
        )
    if stat.S_ISDIR(mode):
        if out.type == "BackupAndRestore" and _backup_only(out.path):
            return None  # an interrupted run's backup: Keras resumes from it, then deletes it
        deletes = (
            " and delete it with everything in it when training ends"
            if out.type == "BackupAndRestore"
            else ""
        )
        return out.at.problem(
            "path-exists",
            f"{name} is an existing folder: {out.type} would write into it{deletes}",
            f"name a folder that does not exist yet (it is made for the run), e.g. '{out.written.rstrip('/')}-new'",
        )
    if out.type == "BackupAndRestore" or out.kind == "folder":
        return out.at.problem(
            "path-exists",
            f"{name} is an existing file: {out.type} needs a folder of its own here",
            "name a folder that does not exist yet",
        )
    if not stat.S_ISREG(mode):
        return out.at.problem(
            "path-exists",
            f"{name} exists and is not a regular file (a FIFO, socket or device): it is never written over",
            "name a new file",
        )
    if policy.overwrite:
        return None
    return out.at.problem(
        "path-exists",
        f"{name} is an existing file: {out.type} would write over it",
        "pass --overwrite to `modelspec train` to replace it, or name a new file",
    )


def _backup_only(folder: str) -> bool:
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return False
    return bool(entries) and all(e.name in BACKUP_FILES and e.is_file(follow_symlinks=False) for e in entries)


_FIELD = re.compile(r"\{[^{}]*\}")


def _template_matches(out: Output) -> list[str]:
    """Existing files a ``ModelCheckpoint`` path with ``{epoch}``-style fields would write over."""
    if out.type != "ModelCheckpoint" or "{" not in out.path:
        return []
    parts = _FIELD.split(out.path)
    pattern = "*".join(glob.escape(p) for p in parts)
    return sorted(glob.glob(pattern))[:3]


def _creatable(out: Output, name: str) -> Problem | None:
    """A problem when the folders above a new path cannot hold it (a file in the way, no write access)."""
    parent = os.path.dirname(out.path)
    while parent and not os.path.lexists(parent):
        up = os.path.dirname(parent)
        if up == parent:
            break
        parent = up
    if parent and os.path.lexists(parent) and not os.path.isdir(parent):
        return out.at.problem(
            "path-exists",
            f"{name} cannot be created: '{parent}' is a file, not a folder",
            "name a path in a folder",
        )
    if parent and os.path.isdir(parent) and not os.access(parent, os.W_OK | os.X_OK):
        return out.at.problem(
            "path-exists",
            f"{name} cannot be created: the folder '{parent}' is not writable",
            "name a path in a folder you can write to",
        )
    return None


def _own_folders(
    checked: list[Output], outputs: list[Output], data: str | None, spec: str | None
) -> list[Problem]:
    """A ``BackupAndRestore`` folder (of ``checked``) holds nothing else of the spec's: Keras deletes it."""
    problems = []
    others: list[tuple[str, str]] = [(o.path, f"{o.type}.{o.arg} of callback {o.index}") for o in outputs]
    others += [(p, what) for p, what in ((data, "the training data"), (spec, "the spec")) if p is not None]
    for out in checked:
        if out.type != "BackupAndRestore":
            continue
        folder = _real(out.path)
        for path, what in others:
            if path == out.path:
                continue
            if _inside(_real(path), folder):
                problems.append(
                    out.at.problem(
                        "path-protected",
                        f"BackupAndRestore.backup_dir '{out.written}' holds {what}: Keras deletes this folder "
                        "when training ends",
                        "give BackupAndRestore a folder of its own",
                    )
                )
                break
    return problems


def output_args(spec: ModelSpec) -> dict[int, dict[str, Any]]:
    """Callback index -> the path arguments to hand Keras, resolved against the spec's folder."""
    return {o.index: {o.arg: o.path} for o in callback_outputs(spec)}
