"""The command line: ``modelspec COMMAND ...``.

The only module that prints problems and picks exit statuses:
0 success, 1 invalid input (spec, data or model file; never a traceback),
2 a wrong command line. Keras is imported only by the commands that build.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import sys
import traceback
from collections.abc import Iterable, Sequence
from typing import Any

from ._errors import Problem, SpecError

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2
SPEC_SUFFIXES = (".yaml", ".yml")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's own usage errors: exit 2
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    from . import __version__

    p = _Parser(
        prog="modelspec",
        description="Compile declarative YAML model specs into Keras models.",
        epilog="Exit status: 0 success, 1 invalid input (reported without a traceback), 2 wrong command line.",
    )
    p.add_argument("--version", action="version", version=f"modelspec {__version__}")
    p.add_argument("--debug", action="store_true", help="show the traceback of an internal error")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    def command(name: str, help: str) -> argparse.ArgumentParser:
        c = sub.add_parser(name, help=help, description=help)
        c.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        return c

    def plugins(c: argparse.ArgumentParser) -> None:
        c.add_argument(
            "--plugin",
            action="append",
            default=[],
            metavar="MODULE",
            help="import MODULE for its custom layers (registered with modelspec.register, "
            "or the Keras Layer subclasses it defines); repeatable",
        )

    c = command("validate", "check syntax, schema, layer arguments and graph (never imports TensorFlow)")
    c.add_argument("specs", nargs="+", metavar="SPEC", help="spec files, or folders to search for *.yaml")
    c.add_argument("--format", choices=("human", "json", "github"), default="human", help="how to report")
    plugins(c)

    c = command("build", "compile a spec and save the Keras model")
    c.add_argument("spec", metavar="SPEC")
    c.add_argument("-o", "--output", required=True, metavar="MODEL.keras", help="where to save the model")
    c.add_argument("--summary", action="store_true", help="print the Keras summary")
    plugins(c)

    c = command("summary", "print the Keras summary: layers, output shapes, parameter counts")
    c.add_argument("spec", metavar="SPEC")
    plugins(c)

    c = command("schema", "print or write the JSON Schema of the spec format")
    c.add_argument("-o", "--output", metavar="FILE", help="write it to FILE (atomically) instead of printing")

    from ._train_cli import add_commands

    add_commands(command, plugins)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        return args.func(args) if hasattr(args, "func") else _COMMANDS[args.command](args)
    except SpecError as e:
        _report(e.problems, "human", sys.stderr)
        return EXIT_INVALID
    except KeyboardInterrupt:
        print("modelspec: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `modelspec schema | head`: the reader has what it wanted
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - stops the flush at exit from failing again
        return EXIT_OK
    except Exception as e:  # noqa: BLE001 - the last line of defence: one line, no traceback
        if getattr(args, "debug", False):
            traceback.print_exc()
        where = next((getattr(args, a) for a in ("current", "spec", "model") if getattr(args, a, None)), "")
        where = f" while processing {where}" if where else ""
        print(
            f"modelspec: internal error{where}: {type(e).__name__}: {e} (run with --debug for the traceback)",
            file=sys.stderr,
        )
        return EXIT_INVALID


# -- reporting -----------------------------------------------------------------


def _report(problems: Iterable[Problem], fmt: str, stream: Any) -> None:
    problems = list(problems)
    if fmt == "json":
        json.dump([p.to_dict() for p in problems], stream, indent=1)
        stream.write("\n")
        return
    if fmt == "github":
        for p in problems:
            stream.write(_github(p) + "\n")
        return
    for p in problems:
        stream.write(p.format() + "\n")
    errors = sum(p.severity == "error" for p in problems)
    if errors:
        stream.write(f"{errors} error{'s' if errors != 1 else ''}\n")


def _github(p: Problem) -> str:
    """A GitHub Actions workflow command: an annotation on the spec's line."""

    def esc(text: str, prop: bool = False) -> str:
        text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
        return text.replace(":", "%3A").replace(",", "%2C") if prop else text

    from ._errors import format_path

    props = [f"file={esc(p.file or '', True)}"]
    if p.line is not None:
        props.append(f"line={p.line}")
        if p.column is not None:
            props.append(f"col={p.column}")
    props.append(f"title={esc(('modelspec ' + format_path(p.path)).strip(), True)}")
    message = p.message + (f" (hint: {p.hint})" if p.hint else "")
    return f"::{p.severity} {','.join(props)}::{esc(message)}"


def _warn(problems: Iterable[Problem]) -> None:
    for p in problems:
        print(p.format(), file=sys.stderr)


# -- commands ------------------------------------------------------------------


def _spec_files(paths: Iterable[str]) -> list[str]:
    files: list[str] = []
    for path in paths:
        if os.path.isdir(path):
            for root, dirs, names in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                files += [os.path.join(root, n) for n in sorted(names) if n.endswith(SPEC_SUFFIXES)]
        else:
            files.append(path)
    return files


def load_plugins(modules: Iterable[str]) -> dict[str, Any]:
    """Import plugin modules; their custom layer classes by name.

    A plugin registers classes with :func:`modelspec.register`, or simply
    defines ``keras.layers.Layer`` subclasses, which are taken by class name.
    """
    from ._api import _registry

    found: dict[str, Any] = {}
    for name in modules:
        try:
            module = importlib.import_module(name)
        except Exception as e:  # noqa: BLE001 - a broken plugin is invalid input
            raise SpecError(
                [Problem((), f"cannot import plugin '{name}': {type(e).__name__}: {e}", "--plugin")]
            ) from None
        for attr, value in vars(module).items():
            if isinstance(value, type) and value.__module__ == module.__name__ and _is_layer(value):
                found[attr] = value
    found.update(_registry)
    return found


def _is_layer(cls: type) -> bool:
    return any(
        f"{b.__module__}.{b.__name__}".startswith("keras.") and b.__name__ == "Layer" for b in cls.__mro__
    )


def _validate(args: argparse.Namespace) -> int:
    from ._api import check, load

    objects = load_plugins(args.plugin)
    files = _spec_files(args.specs)
    if not files:
        print(
            f"modelspec validate: no spec files (*.yaml, *.yml) in {', '.join(args.specs)}", file=sys.stderr
        )
        return EXIT_INVALID
    problems: list[Problem] = []
    failed = 0
    for path in files:
        args.current = path  # named by an internal error's message
        try:
            spec = load(path, custom_objects=objects)
            graph = check(spec)
        except SpecError as e:
            problems += e.problems
            failed += 1
            continue
        problems += graph.warnings
        if args.format == "human":
            n = len(spec.layers)
            print(f"{path}: ok ({n} layer{'s' if n != 1 else ''})")
    _report(problems, args.format, sys.stdout if args.format != "human" else sys.stderr)
    if args.format == "human" and len(files) > 1:
        print(f"{len(files) - failed} of {len(files)} specs valid", file=sys.stderr)
    return EXIT_INVALID if failed else EXIT_OK


def _quiet_keras() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _build_model(args: argparse.Namespace) -> Any:
    from ._api import check

    objects = load_plugins(args.plugin)
    graph = check(args.spec, custom_objects=objects)
    _warn(graph.warnings)
    _quiet_keras()
    from ._compiler import to_keras

    return to_keras(graph, objects)


def _build(args: argparse.Namespace) -> int:
    from ._files import write_atomically

    if not args.output.endswith(".keras"):
        print(f"modelspec build: error: the output must end in .keras, got '{args.output}'", file=sys.stderr)
        return EXIT_USAGE
    model = _build_model(args)
    if args.summary:
        model.summary()
    try:
        write_atomically(args.output, model.save)
    except OSError as e:
        raise SpecError([Problem((), f"cannot write the model: {e.strerror or e}", args.output)]) from None
    size = f"{model.count_params():,} parameters" if model.built else "unbuilt: no weights until first called"
    print(f"wrote {args.output} ({size})")
    return EXIT_OK


def _summary(args: argparse.Namespace) -> int:
    _build_model(args).summary()
    return EXIT_OK


def _schema(args: argparse.Namespace) -> int:
    from ._schema import schema_text

    text = schema_text()
    if args.output:
        from ._files import write_text_atomically

        write_text_atomically(args.output, text)
        print(f"wrote {args.output}")
    else:
        sys.stdout.write(text)
    return EXIT_OK


_COMMANDS = {"validate": _validate, "build": _build, "summary": _summary, "schema": _schema}
