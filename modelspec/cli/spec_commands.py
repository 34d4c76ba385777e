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
    SPEC_SUFFIXES,
    Command,
    add_spec_options,
    check_output,
    keras_output,
    load_graph,
    load_plugins,
    quiet_keras,
    refuse_inputs,
    report,
    spec_files,
    spec_inputs,
    spec_params,
    warn,
    write_output,
    wrote,
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
    status = SpecError.exit_code  # or 2 where --set / --variant do not fit a spec: the command line is wrong
    for path in files:
        args.current = path  # named by an internal error's message
        try:
            record = load_checked(
                path, params=params, variant=args.variant, custom_objects=objects, strict=args.strict
            )
        except SpecError as e:
            problems += e.problems
            failed += 1
            status = max(status, e.exit_code)
            continue
        spec, graph = record.spec, record.graph
        if graph is not None:
            problems += graph.warnings
        if args.format == "human":
            n = len(spec.blocks) if graph is None else len(spec.layers)
            what = "block library: " if graph is None else ""
            print(f"{path}: ok ({what}{n} {'block' if graph is None else 'layer'}{'s' if n != 1 else ''})")
    report(problems, args.format, sys.stdout if args.format != "human" else sys.stderr)
    if args.format == "human" and len(files) > 1:
        print(f"{len(files) - failed} of {len(files)} specs valid", file=sys.stderr)
    return status if failed else EXIT_OK


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


def _build_model(args: argparse.Namespace, output: str | None = None) -> tuple[Any, Any]:
    spec, graph, _, objects = load_graph(args, copies=1)  # the memory guard, before Keras allocates anything
    if output is not None:
        refuse_inputs("build", {"the output": output}, spec_inputs(spec))
    quiet_keras()
    from ..keras import to_keras
    from ..keras.backend import load_keras
    from ..keras.export.provenance import record as record_provenance

    model = to_keras(graph, objects)
    record_provenance(load_keras(), model, spec)  # `build -o m.keras`: export gives back the spec as written
    return model, graph


def build(args: argparse.Namespace) -> int:
    refuse_inputs("build", {"the output": args.output}, {"the spec": args.spec})
    fmt = build_format("build", args.output, args.format)  # an impossible format: refused before any work
    if fmt is None:
        keras_output("build", args.output)
    model, graph = _build_model(args, args.output)
    if args.summary:
        model.summary()
    if fmt is not None:
        from ..keras.serving import export_checked

        checked = export_checked(model, args.output, fmt)
        wrote(f"wrote {describe(checked)}", args.output)
        return EXIT_OK
    from ..training.modelfile import built_metadata, save_model

    metadata = built_metadata(args.spec, graph)
    write_output(args.output, "model", lambda p: save_model(model, metadata, p))
    size = f"{model.count_params():,} parameters" if model.built else "unbuilt: no weights until first called"
    wrote(f"wrote {args.output} ({size})", args.output)
    return EXIT_OK


def summary(args: argparse.Namespace) -> int:
    if args.keras:
        _build_model(args)[0].summary()
        return EXIT_OK
    from ..analysis.summary import summary_text

    spec, graph, analysis, _ = load_graph(args)
    sys.stdout.write(summary_text(graph, analysis, spec))
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
    if args.output:
        refuse_inputs("expand", {"the output": args.output}, {"the spec": args.spec})
        check_output("expand", args.output, "expanded spec", SPEC_SUFFIXES)
    spec, _, _, _ = load_graph(args)
    if args.output:  # the files it imports and the data it names, known once it is read
        refuse_inputs("expand", {"the output": args.output}, spec_inputs(spec))
    header = f"# {args.spec}, expanded by `modelspec expand`"
    settings = [f"--variant {args.variant}"] if args.variant else []
    settings += [f"--set {item}" for item in args.set]
    if settings:
        header += " with " + " ".join(settings)
    text = header + "\n" + spec.to_yaml()
    if args.output:
        from ..files import IN_PLACE, output_kind, write_text_atomically

        write_output(args.output, "expanded spec", lambda p: write_text_atomically(p, text))
        wrote(f"wrote {args.output} ({len(spec.layers)} layers)", args.output)
        if output_kind(args.output) not in IN_PLACE:  # a copy that stays a file
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
    refuse_inputs("draw", {"the output": args.output}, {"the spec": args.spec})
    check_output("draw", args.output, "drawing")
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
    spec, graph, analysis, _ = load_graph(args)
    refuse_inputs("draw", {"the output": args.output}, spec_inputs(spec))
    text = drawing(graph, analysis, suffix, expand=args.expand)
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
    wrote(f"wrote {args.output} ({len(graph.nodes)} layers)", args.output)
    return EXIT_OK


def schema(args: argparse.Namespace) -> int:
    from ..spec.schema import schema_text

    text = schema_text()
    if args.output:
        from ..files import write_text_atomically

        check_output("schema", args.output, "schema", (".json",))
        write_output(args.output, "schema", lambda p: write_text_atomically(p, text))
        wrote(f"wrote {args.output}", args.output)
    else:
        sys.stdout.write(text)
    return EXIT_OK
