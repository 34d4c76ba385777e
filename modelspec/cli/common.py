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

from ..errors import Problem, SpecError, UsageError, format_path, shown

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
        help="import MODULE for its custom layers (registered with modelspec.register or with Keras, "
        "as keras_hub does, or the Keras Layer subclasses it defines); repeatable",
    )


def load_plugins(modules: Iterable[str]) -> dict[str, Any]:
    """Import plugin modules; their custom layer classes by name.

    A plugin registers classes with :func:`modelspec.register`, or simply
    defines ``keras.layers.Layer`` subclasses, which are taken by class name.
    A library that registers its classes with Keras (``--plugin keras_hub``)
    needs nothing more: importing it is what registers them, and a spec
    names them as Keras does, ``keras_hub>TransformerEncoder``
    (:func:`modelspec.api.keras_registered`).
    """
    from ..api import keras_registered, registered
    from ..spec.registry import is_layer_class

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
            if isinstance(value, type) and value.__module__ == module.__name__ and is_layer_class(value):
                found[attr] = value
    return {**keras_registered(), **found, **registered()}


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
    from ..expand.params import literal_problem
    from ..source import parse

    params: dict[str, Any] = {}
    for item in args.set:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"modelspec: error: --set takes KEY=VALUE, got {item!r}")
        key = key.strip()
        try:
            value = parse(text, f"--set {key}").data
        except SpecError as e:  # a value that is not YAML: the command line is wrong, not the spec
            raise UsageError(
                f"modelspec: error: --set {key}: {e.problems[0].message} (got {shown(text)})"
            ) from None
        wrong = literal_problem(value)
        if wrong is not None:
            raise UsageError(
                f"modelspec: error: --set {key}: {wrong} (--set values are literals, read as YAML: "
                "10, [3, 4, 6, 3], true)"
            )
        params[key] = value
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
        from ..keras.backend import startup_line  # (not at import: validate never loads the keras stage)

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


def load_graph(
    args: argparse.Namespace, *, copies: int | None = None
) -> tuple[Any, Any, Any, dict[str, Any]]:
    """The spec named by ``args.spec``, checked: (spec, graph, analysis, custom objects); warnings are printed.

    Args:
        copies: Run the memory guard for work that keeps this many copies of the
            weights (``--max-params`` included); None: no guard (nothing is built).
    """
    from ..api import guard, load_checked

    objects = load_plugins(args.plugin)
    record = load_checked(args.spec, params=spec_params(args), variant=args.variant, custom_objects=objects)
    graph, analysis = record.model()
    warnings = list(graph.warnings)
    if copies is not None:
        try:
            warnings += guard(record, max_params=getattr(args, "max_params", None), copies=copies)
        except SpecError:  # the guard's error says it all: not also the check stage's memory warning
            warn(w for w in warnings if w.code != "too-large")
            raise
    warn(warnings)
    return record.spec, graph, analysis, objects


def check_output(
    command: str, path: str, what: str, suffixes: tuple[str, ...] = (), *, option: str = "--output"
) -> None:
    """Refuse, before the long work, an output that cannot be written as asked.

    A folder, socket or block device is refused (exit status 1); a device,
    FIFO or ``/dev/stdout`` is written in place, whatever its name; a file
    must end in one of ``suffixes`` (exit status 2), in a folder that exists.

    Args:
        command: The command, for the message.
        path: The output.
        what: What it is ("model", "expanded spec"), for the message.
        suffixes: The endings a file of this kind has (lower case); empty: any.
        option: The option that named it.
    """
    from ..files import IN_PLACE, REFUSED, output_kind

    kind = output_kind(path)
    if kind in REFUSED:
        raise SpecError(
            [
                Problem.in_file(
                    "output-file", path, f"cannot write the {what}: {REFUSED[kind]}", path=(option,)
                )
            ]
        )
    if kind in IN_PLACE:  # /dev/null, a FIFO, /dev/stdout: their names say nothing of the format
        return
    if suffixes and not path.lower().endswith(suffixes):
        raise UsageError(
            f"modelspec {command}: error: the {what} must end in {' or '.join(suffixes)}, got '{path}'"
        )
    check_folder(path, option)


def keras_output(command: str, path: str) -> None:
    """Refuse a model output that is not a ``.keras`` file (exit status 2), before anything is built."""
    check_output(command, path, "model", (".keras",))


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


def spec_inputs(spec: Any) -> dict[str, str]:
    """The files a loaded spec was made of, and the data it names: what its command reads.

    The spec file and every file it imports (the record its source stage
    keeps, :attr:`modelspec.source.Document.files`), then its training data.
    """
    from ..spec.paths import resolve, spec_folder

    source = spec.source
    files = list(source.files) if source is not None else []
    found = {"the spec": files[0]} if files else {}
    folder = os.path.realpath(spec_folder(spec))  # the files read are real paths (links resolved)
    for path in files[1:]:
        found[f"the spec's import '{os.path.relpath(os.path.realpath(path), folder)}'"] = path
    if spec.train is not None and isinstance(spec.train.data.path, str):
        found["the spec's training data"] = resolve(spec, spec.train.data.path)
    return found


def refuse_inputs(command: str, outputs: dict[str, str | None], inputs: dict[str, str | None]) -> None:
    """Refuse (exit status 2) an output that would write over one of the command's own inputs.

    Files are compared as files (device and inode), not as names, so no
    spelling of an input slips through: a link to it or to its folder, a
    hard link, ``..``, ``/dev/stdout`` redirected to it. An output that does
    not exist yet is none of them.

    Args:
        command: The command, for the message.
        outputs: What each output is -> its path (None: not written).
        inputs: What each input is -> its path (None: not read).
    """
    from ..files import file_id

    read = {}
    for source, path in inputs.items():
        found = file_id(path) if path is not None else None
        if found is not None:
            read.setdefault(found, source)
    for what, path in outputs.items():
        source = read.get(file_id(path)) if path is not None else None
        if source is not None:
            raise UsageError(
                f"modelspec {command}: error: {what} '{path}' is {source}: "
                "a command never writes over its own inputs"
            )


def refuse_folders(outputs: dict[str, str], *, in_place: bool = True) -> None:
    """Refuse, before the long work, outputs that are folders or other files that cannot be written.

    Args:
        outputs: What each output is -> its path.
        in_place: Whether a device, FIFO or stream output is written in place (else refused).
    """
    from ..files import IN_PLACE, REFUSED, output_kind

    problems = []
    for what, path in outputs.items():
        kind = output_kind(path)
        if kind in REFUSED:
            problems.append(
                Problem.in_file(
                    "output-file", path, f"cannot write the {what}: {REFUSED[kind]}", path=("output",)
                )
            )
        elif kind in IN_PLACE and not in_place:
            problems.append(
                Problem.in_file(
                    "output-file",
                    path,
                    f"cannot write the {what}: it is not a regular file (a device, FIFO or stream)",
                    "name a file: the outputs are written together, all or none",
                    path=("output",),
                )
            )
    if problems:
        raise SpecError(problems)


def wrote(message: str, *outputs: str | None) -> None:
    """Say what was written: on stdout, or on stderr when an output was stdout itself (or another stream)."""
    from ..files import IN_PLACE, output_kind

    streamed = any(path is not None and output_kind(path) in IN_PLACE for path in outputs)
    print(message, file=sys.stderr if streamed else sys.stdout)


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
    except BrokenPipeError:  # `-o /dev/stdout | head`: the reader has what it wanted (the CLI ends quietly)
        raise
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
    except BrokenPipeError:  # `-o /dev/stdout | head`: the reader has what it wanted (the CLI ends quietly)
        raise
    except OSError as e:
        raise SpecError(
            [
                Problem.in_file(
                    "output-file", path, f"cannot write the {what}: {e.strerror or e}", path=("output",)
                )
            ]
        ) from None


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1 (epochs, batch sizes, trials, workers)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value
