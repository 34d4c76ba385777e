"""The command line: ``modelspec COMMAND ...``.

The only place that prints problems and picks exit statuses, which the
exception classes carry (``SpecError.exit_code`` 1: invalid input, never a
traceback; ``UsageError.exit_code`` 2: a wrong command line). Each command
group registers its subcommands; Keras is imported only by the commands that
build or train.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import traceback
from collections.abc import Sequence

from ..errors import SpecError, UsageError, suggest
from ..keras.backend import BackendMissing
from ..spec.paths import path_policy
from ..version import __version__
from . import export_command, spec_commands, sweep_command, train_commands
from .common import EXIT_OK, native_output_filtered, report


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's own usage errors: exit 2
        self.print_usage(sys.stderr)
        self.exit(UsageError.exit_code, f"{self.prog}: error: {message}\n")

    def _check_value(self, action: argparse.Action, value: object) -> None:
        """A value outside the choices (a command, a --format) gets a did-you-mean, as everything else does."""
        choices = action.choices
        if choices is None or value in choices:
            return
        names = [str(c) for c in choices]
        near = suggest(str(value), names)
        hint = f"did you mean '{near}'? " if near else ""
        if isinstance(action, argparse._SubParsersAction):
            what = f"unknown command '{value}'"
        else:
            what = f"argument {'/'.join(action.option_strings) or action.metavar or action.dest}: invalid choice '{value}'"
        self.error(f"{what}; {hint}(choose from {', '.join(names)})")


def parser() -> argparse.ArgumentParser:
    """The ``modelspec`` argument parser, with every command group's subcommands."""
    p = _Parser(
        prog="modelspec",
        description="Compile declarative YAML model specs into Keras models.",
        epilog="Exit status: 0 success, 1 invalid input (reported without a traceback), 2 wrong command line.",
    )
    p.add_argument("--version", action="version", version=f"modelspec {__version__}")
    p.add_argument("--debug", action="store_true", help="show the traceback of an internal error")
    p.add_argument(
        "--verbose", action="store_true", help="let TensorFlow, JAX and absl print their start-up lines"
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    def command(name: str, help: str) -> argparse.ArgumentParser:
        c = sub.add_parser(name, help=help, description=help)
        c.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        c.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        return c

    spec_commands.add_commands(command)
    train_commands.add_commands(command)
    export_command.add_commands(command)
    sweep_command.add_commands(command)
    c = command("help", "show this help, or the help of one command")
    c.add_argument("topic", nargs="?", metavar="COMMAND", help="the command to explain")
    c.set_defaults(func=lambda args: _help(p, sub.choices, args.topic))
    return p


def _help(p: argparse.ArgumentParser, commands: dict[str, argparse.ArgumentParser], topic: str | None) -> int:
    """``modelspec help [COMMAND]``: the same text as ``--help``."""
    if topic is None:
        p.print_help()
    elif topic in commands:
        commands[topic].print_help()
    else:
        near = suggest(topic, commands)
        hint = f"did you mean '{near}'? " if near else ""
        raise UsageError(
            f"modelspec help: error: unknown command '{topic}'; {hint}(choose from {', '.join(commands)})"
        )
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = parser().parse_args(argv)
    try:
        with (
            native_output_filtered(args.verbose),
            path_policy(
                allow_outside=getattr(args, "allow_outside", False),
                overwrite=getattr(args, "overwrite", False),
            ),
        ):
            return args.func(args)
    except BackendMissing as e:  # one line: what is missing, and how to install it
        print(f"modelspec: {e.problems[0].message}", file=sys.stderr)
        return e.exit_code
    except SpecError as e:
        report(e.problems, "human", sys.stderr)
        return e.exit_code
    except UsageError as e:
        print(e, file=sys.stderr)
        return e.exit_code
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
        return SpecError.exit_code


__all__ = ["main", "parser"]
