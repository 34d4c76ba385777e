"""The commands that read a spec: ``validate``, ``build``, ``summary`` and ``schema``."""

from __future__ import annotations

import argparse
import os
import re
import sys
from typing import Any

from ..errors import Problem, SpecError, UsageError
from .common import (
    EXIT_OK,
    Command,
    add_spec_options,
    keras_output,
    load_graph,
    load_plugins,
    quiet_keras,
    report,
    spec_files,
    spec_params,
    warn,
    write_output,
)
from .serving import add_format_option, build_format, describe


def add_max_params(c: argparse.ArgumentParser) -> None:
    """Add ``--max-params``: refuse larger models before Keras allocates them."""
    c.add_argument(
        "--max-params",
        type=_count,
        metavar="N",
        help="refuse a model of more than N parameters (the memory available is always checked)",
    )


def _count(text: str) -> int:
    try:
        value = int(text.replace("_", "").replace(",", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value}")
    return value


def add_commands(command: Command) -> None:
    """Add the spec commands to the ``modelspec`` parser."""
    c = command("validate", "check syntax, schema, layer arguments and graph (never imports TensorFlow)")
    c.add_argument("specs", nargs="+", metavar="SPEC", help="spec files, or folders to search for *.yaml")
    c.add_argument("--format", choices=("human", "json", "github"), default="human", help="how to report")
    c.add_argument(
        "--strict",
        action="store_true",
        help="also fail on the nodes whose output shape could not be inferred",
    )
    c.add_argument(
        "--only-specs",
        action="store_true",
        help="skip YAML files that do not declare 'modelspec:' at the top level (other YAML in a "
        "repository: CI, pre-commit); no spec at all is then not an error",
    )
    add_spec_options(c)
    c.set_defaults(func=validate)

    c = command("build", "compile a spec and save the Keras model (or a checked ONNX, TFLite or SavedModel)")
    c.add_argument("spec", metavar="SPEC")
    c.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="MODEL.keras",
        help="where to save the model: MODEL.keras, MODEL.onnx, MODEL.tflite, or a folder with --format saved_model",
    )
    add_format_option(c)
    c.add_argument("--summary", action="store_true", help="print the Keras summary")
    add_max_params(c)
    add_spec_options(c)
    c.set_defaults(func=build)

    c = command(
        "summary", "the model's layers, output shapes and parameter counts, worked out without building it"
    )
    c.add_argument("spec", metavar="SPEC")
    c.add_argument(
        "--keras", action="store_true", help="build the model and print Keras's own summary instead"
    )
    add_spec_options(c)
    c.set_defaults(func=summary)

    c = command(
        "expand", "write the spec with its params, blocks, imports and expressions expanded (plain format 1)"
    )
    c.add_argument("spec", metavar="SPEC")
    c.add_argument(
        "-o", "--output", metavar="FLAT.yaml", help="write it to FLAT.yaml (atomically) instead of printing"
    )
    add_spec_options(c)
    c.set_defaults(func=expand)

    c = command("draw", "a picture of the model's graph: DOT or Mermaid text, or SVG/PNG through Graphviz")
    c.add_argument("spec", metavar="SPEC")
    c.add_argument(
        "-o", "--output", required=True, metavar="FILE", help="FILE.dot, FILE.mmd, FILE.svg or FILE.png"
    )
    c.add_argument("--expand", action="store_true", help="draw every layer of repeated blocks, not one box")
    add_spec_options(c)
    c.set_defaults(func=draw)

    c = command("schema", "print or write the JSON Schema of the spec format")
    c.add_argument("-o", "--output", metavar="FILE", help="write it to FILE (atomically) instead of printing")
    c.set_defaults(func=schema)


def validate(args: argparse.Namespace) -> int:
    from ..api import load_checked

    objects = load_plugins(args.plugin)
    params = spec_params(args)
    files = spec_files(args.specs)
    if args.only_specs:
        files = [path for path in files if declares_spec(path)]
        if not files:
            return EXIT_OK
    if not files:
        print(
            f"modelspec validate: no spec files (*.yaml, *.yml) in {', '.join(args.specs)}", file=sys.stderr
        )
        return SpecError.exit_code
    problems: list[Problem] = []
    failed = 0
    for path in files:
        args.current = path  # named by an internal error's message
        try:
            spec, graph = load_checked(
                path, params=params, variant=args.variant, custom_objects=objects, strict=args.strict
            )
        except SpecError as e:
            problems += e.problems
            failed += 1
            continue
        if graph is not None:
            problems += graph.warnings
        if args.format == "human":
            n = len(spec.blocks) if graph is None else len(spec.layers)
            what = "block library: " if graph is None else ""
            print(f"{path}: ok ({what}{n} {'block' if graph is None else 'layer'}{'s' if n != 1 else ''})")
    report(problems, args.format, sys.stdout if args.format != "human" else sys.stderr)
    if args.format == "human" and len(files) > 1:
        print(f"{len(files) - failed} of {len(files)} specs valid", file=sys.stderr)
    return SpecError.exit_code if failed else EXIT_OK


_DECLARES = re.compile(rb"^[\"']?modelspec[\"']?[ \t]*:", re.MULTILINE)


def declares_spec(path: str) -> bool:
    """Whether a YAML file has a top-level ``modelspec:`` key (read as text; a file that cannot be read is kept,
    so that ``validate`` reports why)."""
    from ..source import MAX_BYTES

    if not os.path.isfile(path):  # a FIFO or device is never opened here (it could block)
        return True
    try:
        with open(path, "rb") as f:
            return bool(_DECLARES.search(f.read(MAX_BYTES + 1)))
    except OSError:
        return True


def _build_model(args: argparse.Namespace) -> tuple[Any, Any]:
    from ..api import guard

    _, graph, objects = load_graph(args)
    guard(graph, max_params=getattr(args, "max_params", None))  # before Keras allocates anything
    quiet_keras()
    from ..keras import to_keras

    return to_keras(graph, objects), graph


def build(args: argparse.Namespace) -> int:
    fmt = build_format("build", args.output, args.format)  # an impossible format: refused before any work
    if fmt is None:
        keras_output("build", args.output)
    model, graph = _build_model(args)
    if args.summary:
        model.summary()
    if fmt is not None:
        from ..keras.serving import export_checked

        checked = export_checked(model, args.output, fmt)
        print(f"wrote {describe(checked)}")
        return EXIT_OK
    from ..training.modelfile import built_metadata, save_model

    metadata = built_metadata(args.spec, graph)
    write_output(args.output, "model", lambda p: save_model(model, metadata, p))
    size = f"{model.count_params():,} parameters" if model.built else "unbuilt: no weights until first called"
    print(f"wrote {args.output} ({size})")
    return EXIT_OK


def summary(args: argparse.Namespace) -> int:
    if args.keras:
        _build_model(args)[0].summary()
        return EXIT_OK
    from ..analysis.summary import summary_text

    _spec, graph, _ = load_graph(args)
    sys.stdout.write(summary_text(graph, graph.analysis))
    return EXIT_OK


def warn_moved_paths(spec: Any, output: str) -> None:
    """Warn about each relative path of a spec copied into another folder: the copy reads other files."""
    from ..spec.paths import relative_paths, spec_folder

    here, there = spec_folder(spec), os.path.dirname(os.path.abspath(output))
    if os.path.realpath(here) == os.path.realpath(there):
        return
    warn(
        origin.problem(
            "path-relative",
            f"'{path}' is read against the spec's folder; the copy in {there} reads "
            f"{os.path.normpath(os.path.join(there, path))!r} instead",
            f"write the flat spec beside the spec ({here}), or copy the file along",
            severity="warning",
        )
        for origin, path in relative_paths(spec)
    )


def expand(args: argparse.Namespace) -> int:
    spec, _, _ = load_graph(args)
    header = f"# {args.spec}, expanded by `modelspec expand`"
    settings = [f"--variant {args.variant}"] if args.variant else []
    settings += [f"--set {item}" for item in args.set]
    if settings:
        header += " with " + " ".join(settings)
    text = header + "\n" + spec.to_yaml()
    if args.output:
        from ..files import write_text_atomically

        if os.path.abspath(args.output) == os.path.abspath(args.spec):
            raise UsageError("modelspec expand: error: the output would overwrite the spec it reads")
        write_output(args.output, "expanded spec", lambda p: write_text_atomically(p, text))
        print(f"wrote {args.output} ({len(spec.layers)} layers)")
        warn_moved_paths(spec, args.output)
    else:
        sys.stdout.write(text)
    return EXIT_OK


def draw(args: argparse.Namespace) -> int:
    import shutil
    import subprocess

    from ..analysis.draw import OUTPUT_FORMATS, drawing
    from ..files import write_atomically, write_text_atomically

    suffix = os.path.splitext(args.output)[1].lower()
    if suffix not in OUTPUT_FORMATS:
        raise UsageError(
            f"modelspec draw: error: the output must end in {', '.join(OUTPUT_FORMATS)}, got '{args.output}'"
        )
    if os.path.abspath(args.output) == os.path.abspath(args.spec):
        raise UsageError("modelspec draw: error: the output would overwrite the spec it reads")
    dot = shutil.which("dot")
    if suffix in (".svg", ".png") and dot is None:
        raise SpecError(
            [
                Problem.in_file(
                    "output-file",
                    args.output,
                    f"writing {suffix} needs Graphviz's `dot` program, which is not installed",
                    "install Graphviz (apt-get install graphviz, brew install graphviz), or write a .dot or .mmd file",
                )
            ]
        )
    _, graph, _ = load_graph(args)
    text = drawing(graph, graph.analysis, suffix, expand=args.expand)
    if suffix in (".dot", ".mmd"):
        write_output(args.output, "drawing", lambda p: write_text_atomically(p, text))
    else:

        def render(tmp: str) -> None:
            done = subprocess.run(
                [dot, f"-T{suffix[1:]}", "-o", tmp], input=text, text=True, capture_output=True, timeout=120
            )
            if done.returncode != 0:
                raise OSError(f"Graphviz could not draw it: {done.stderr.strip()[:300]}")

        write_output(args.output, "drawing", lambda p: write_atomically(p, render))
    print(f"wrote {args.output} ({len(graph.nodes)} layers)")
    return EXIT_OK


def schema(args: argparse.Namespace) -> int:
    from ..spec.schema import schema_text

    text = schema_text()
    if args.output:
        from ..files import write_text_atomically

        write_output(args.output, "schema", lambda p: write_text_atomically(p, text))
        print(f"wrote {args.output}")
    else:
        sys.stdout.write(text)
    return EXIT_OK
