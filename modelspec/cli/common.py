"""What the commands share: reporting problems, plugins, spec files, outputs.

Nothing here imports Keras, pandas or matplotlib at import time.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from ..errors import Problem, SpecError, UsageError, format_path
from ..keras.backend import startup_line

EXIT_OK = 0
SPEC_SUFFIXES = (".yaml", ".yml")

Command = Callable[[str, str], argparse.ArgumentParser]
"""Makes a subcommand parser from a name and a help line."""


def report(problems: Iterable[Problem], fmt: str, stream: Any) -> None:
    """Print problems as text (compiler style, then a count of errors), JSON, or GitHub annotations."""
    problems = list(problems)
    if fmt == "json":
        json.dump([p.to_dict() for p in problems], stream, indent=1)
        stream.write("\n")
        return
    if fmt == "github":
        for p in problems:
            stream.write(github(p) + "\n")
        return
    for p in problems:
        stream.write(p.format() + "\n")
    errors = sum(p.severity == "error" for p in problems)
    if errors:
        stream.write(f"{errors} error{'s' if errors != 1 else ''}\n")


def github(p: Problem) -> str:
    """A GitHub Actions workflow command: an annotation on the spec's line."""

    def esc(text: str, prop: bool = False) -> str:
        text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
        return text.replace(":", "%3A").replace(",", "%2C") if prop else text

    props = [f"file={esc(p.file or '', True)}"]
    if p.line is not None:
        props.append(f"line={p.line}")
        if p.column is not None:
            props.append(f"col={p.column}")
    props.append(f"title={esc(('modelspec ' + p.code + ' ' + format_path(p.path)).strip(), True)}")
    message = p.message + (f" (hint: {p.hint})" if p.hint else "")
    for note in p.notes:
        message += f"\n{note}"
    return f"::{p.severity} {','.join(props)}::{esc(message)}"


def warn(problems: Iterable[Problem]) -> None:
    """Print warnings to stderr (they never fail a command)."""
    for p in problems:
        print(p.format(), file=sys.stderr)


def add_plugins(c: argparse.ArgumentParser) -> None:
    """Add the ``--plugin`` option to a subcommand."""
    c.add_argument(
        "--plugin",
        action="append",
        default=[],
        metavar="MODULE",
        help="import MODULE for its custom layers (registered with modelspec.register, "
        "or the Keras Layer subclasses it defines); repeatable",
    )


def load_plugins(modules: Iterable[str]) -> dict[str, Any]:
    """Import plugin modules; their custom layer classes by name.

    A plugin registers classes with :func:`modelspec.register`, or simply
    defines ``keras.layers.Layer`` subclasses, which are taken by class name.
    """
    from ..api import registered

    found: dict[str, Any] = {}
    for name in modules:
        try:
            module = importlib.import_module(name)
        except Exception as e:  # noqa: BLE001 - a broken plugin is invalid input
            raise SpecError(
                [
                    Problem.in_file(
                        "plugin-import", "--plugin", f"cannot import plugin '{name}': {type(e).__name__}: {e}"
                    )
                ]
            ) from None
        for attr, value in vars(module).items():
            if isinstance(value, type) and value.__module__ == module.__name__ and _is_layer(value):
                found[attr] = value
    found.update(registered())
    return found


def _is_layer(cls: type) -> bool:
    return any(
        f"{b.__module__}.{b.__name__}".startswith("keras.") and b.__name__ == "Layer" for b in cls.__mro__
    )


def add_spec_options(c: argparse.ArgumentParser) -> None:
    """Add ``--set`` and ``--variant`` (the spec's params) and ``--plugin`` to a command that reads a spec."""
    c.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override the spec's param KEY (VALUE is read as YAML: 10, [3, 4, 6, 3], true); repeatable",
    )
    c.add_argument("--variant", metavar="NAME", help="apply the param overrides of the spec's variant NAME")
    c.add_argument(
        "--allow-outside",
        action="store_true",
        help="let the spec's paths (its data, its callbacks' outputs) lead outside its folder and the "
        "working folder: absolute paths, '..' (only for a spec you trust)",
    )
    add_plugins(c)


def spec_params(args: argparse.Namespace) -> dict[str, Any]:
    """The ``--set`` values, each read as YAML (safely, within the spec limits)."""
    from ..source import parse

    params: dict[str, Any] = {}
    for item in args.set:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"modelspec: error: --set takes KEY=VALUE, got {item!r}")
        try:
            params[key.strip()] = parse(text, f"--set {key.strip()}").data
        except SpecError as e:  # a value that is not YAML: the command line is wrong, not the spec
            raise UsageError(
                f"modelspec: error: --set {key.strip()}: {e.problems[0].message} (got {text!r})"
            ) from None
    return params


def spec_files(paths: Iterable[str]) -> list[str]:
    """Spec files named on the command line; folders are searched for ``*.yaml`` and ``*.yml``."""
    files: list[str] = []
    for path in paths:
        if os.path.isdir(path):
            for root, dirs, names in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                files += [os.path.join(root, n) for n in sorted(names) if n.endswith(SPEC_SUFFIXES)]
        else:
            files.append(path)
    return files


def quiet_keras() -> None:
    """Keep TensorFlow's C++ start-up lines off the terminal (unless the user set the level)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@contextlib.contextmanager
def native_output_filtered(verbose: bool) -> Iterator[None]:
    """Keep the backends' start-up lines off the terminal, unless ``--verbose`` or ``TF_CPP_MIN_LOG_LEVEL`` is set.

    TensorFlow's C++ code writes to file descriptor 2 directly, so it is
    pointed at a temporary file for the command; Python's own ``sys.stderr``
    keeps the terminal. Lines that are not start-up noise are written out at
    the end, so a real native error is never lost.
    """
    if verbose:  # also for the import in modelspec.keras.backend, which drops them otherwise
        previous = os.environ.get("MODELSPEC_VERBOSE")
        os.environ["MODELSPEC_VERBOSE"] = "1"
        try:
            yield
        finally:
            if previous is None:
                os.environ.pop("MODELSPEC_VERBOSE", None)
            else:
                os.environ["MODELSPEC_VERBOSE"] = previous
        return
    if "TF_CPP_MIN_LOG_LEVEL" in os.environ:
        yield
        return
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    try:
        sys.stderr.flush()
        terminal = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    capture = tempfile.TemporaryFile()  # noqa: SIM115 - closed in the finally below
    python_stderr = sys.stderr
    try:
        if _is_fd(sys.stderr, 2):  # Python's writes keep going to the terminal
            sys.stderr = os.fdopen(
                os.dup(terminal), "w", buffering=1, encoding=python_stderr.encoding, errors="replace"
            )
        os.dup2(capture.fileno(), 2)
        yield
    finally:
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.flush()
        os.dup2(terminal, 2)
        os.close(terminal)
        if sys.stderr is not python_stderr:
            with contextlib.suppress(OSError):
                sys.stderr.close()
            sys.stderr = python_stderr
        capture.seek(0)
        kept = [
            line
            for line in capture.read().decode("utf-8", "replace").splitlines()
            if line and not startup_line(line)
        ]
        capture.close()
        if kept:
            print("\n".join(kept), file=sys.stderr)


def _is_fd(stream: Any, fd: int) -> bool:
    try:
        return stream.fileno() == fd
    except (OSError, ValueError, AttributeError):
        return False


def load_graph(args: argparse.Namespace) -> tuple[Any, Any, dict[str, Any]]:
    """The spec named by ``args.spec``, checked: (spec, graph, custom objects); warnings are printed."""
    from ..api import load_checked

    objects = load_plugins(args.plugin)
    spec, graph = load_checked(
        args.spec, params=spec_params(args), variant=args.variant, custom_objects=objects
    )
    if graph is None:
        raise SpecError(
            [spec.at("layers").problem("no-layers", "a block library has no layers: nothing to build")]
        )
    warn(graph.warnings)
    return spec, graph, objects


def keras_output(command: str, path: str) -> None:
    """Refuse a model output that is not a ``.keras`` file (exit status 2)."""
    if not path.endswith(".keras"):
        raise UsageError(f"modelspec {command}: error: the output must end in .keras, got '{path}'")


def check_folder(path: str, option: str) -> None:
    """Refuse an output whose folder does not exist before the long work, not after it."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise SpecError(
            [
                Problem.in_file(
                    "output-file", path, f"cannot write here: no such folder '{folder}'", path=(option,)
                )
            ]
        )


def refuse_inputs(command: str, outputs: dict[str, str | None], inputs: dict[str, str | None]) -> None:
    """Refuse (exit status 2) an output that would write over one of the command's own inputs.

    Args:
        command: The command, for the message.
        outputs: What each output is -> its path (None: not written).
        inputs: What each input is -> its path.
    """
    from ..files import same_file

    for what, path in outputs.items():
        if path is None:
            continue
        for source, read in inputs.items():
            if read is not None and same_file(path, read):
                raise UsageError(
                    f"modelspec {command}: error: {what} '{path}' is {source}: "
                    "a command never writes over its own inputs"
                )


def refuse_folders(outputs: dict[str, str]) -> None:
    """Refuse, before the long work, outputs that are existing folders or other non-files."""
    problems = []
    for what, path in outputs.items():
        if os.path.isdir(path):
            problems.append(
                Problem.in_file(
                    "output-file", path, f"cannot write the {what}: it is a folder", path=("output",)
                )
            )
        elif os.path.lexists(path) and not os.path.isfile(path):
            problems.append(
                Problem.in_file(
                    "output-file",
                    path,
                    f"cannot write the {what}: it is not a regular file",
                    path=("output",),
                )
            )
    if problems:
        raise SpecError(problems)


def write_outputs(items: list[tuple[str, str, Callable[[str], object]]]) -> None:
    """Write several outputs (path, what, write) all or none (:func:`modelspec.files.write_all_atomically`).

    An OS error becomes a problem naming the output concerned; every old
    output is then as it was, and no temporary file is left.
    """
    from ..files import write_all_atomically

    current: list[tuple[str, str]] = []

    def step(path: str, what: str, write: Callable[[str], object]) -> Callable[[str], object]:
        def run(tmp: str) -> object:
            current[:] = [(path, what)]
            return write(tmp)

        return run

    try:
        write_all_atomically([(path, step(path, what, write)) for path, what, write in items])
    except OSError as e:
        path, what = next(
            (
                (p, w)
                for p, w, _ in items
                if e.filename and os.path.abspath(str(e.filename)) == os.path.abspath(p)
            ),
            current[0] if current else (items[0][0], items[0][1]),
        )
        others = ", ".join(p for p, _, _ in items if p != path)
        raise SpecError(
            [
                Problem.in_file(
                    "output-file",
                    path,
                    f"cannot write the {what}: {e.strerror or e}; nothing was written"
                    + (f" ({others} left as they were)" if others else ""),
                    path=("output",),
                )
            ]
        ) from None


def write_output(path: str, what: str, write: Callable[[str], None]) -> None:
    """Call ``write(path)``; an OS error becomes a located problem naming the output."""
    try:
        write(path)
    except OSError as e:
        raise SpecError(
            [
                Problem.in_file(
                    "output-file", path, f"cannot write the {what}: {e.strerror or e}", path=("output",)
                )
            ]
        ) from None
