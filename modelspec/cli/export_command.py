"""``modelspec export MODEL.keras [-o SPEC.yaml]``: an existing Keras model as a spec."""

from __future__ import annotations

import argparse
import os
import sys

from .common import (
    EXIT_OK,
    SPEC_SUFFIXES,
    Command,
    add_plugins,
    check_output,
    load_plugins,
    quiet_keras,
    refuse_inputs,
    warn,
    write_output,
    wrote,
)


def add_commands(command: Command) -> None:
    """Add ``export`` to the ``modelspec`` parser."""
    c = command("export", "write an existing Keras model (a .keras file) as a spec")
    c.add_argument("model", metavar="MODEL.keras", help="a model saved by Keras (loaded in safe mode)")
    c.add_argument(
        "-o",
        "--output",
        metavar="SPEC.yaml",
        help="write the spec to SPEC.yaml (atomically) instead of printing it",
    )
    c.add_argument(
        "--flat",
        action="store_true",
        help="one node per layer (by default repeated units are written as blocks with repeat)",
    )
    add_plugins(c)
    c.set_defaults(func=export)


def export(args: argparse.Namespace) -> int:
    if args.output:
        refuse_inputs("export", {"the output": args.output}, {"the model": args.model})
        check_output("export", args.output, "spec", SPEC_SUFFIXES)
    objects = load_plugins(args.plugin)
    quiet_keras()
    from ..keras.backend import load_keras
    from ..keras.export import export_model, load_model_file

    # A zip bomb, a subclassed model, a Lambda layer: refused before anything is unpacked or loaded.
    model = load_model_file(args.model, objects)
    exported = export_model(model, source=args.model, custom_objects=objects, flat=args.flat)
    warn(exported.warnings)
    keras = load_keras()
    header = (
        f"# exported from {os.path.basename(args.model)} by modelspec export (Keras {keras.__version__})\n"
    )
    for old, new in exported.renamed.items():
        header += f"# layer {old!r} is named {new!r} here: the format takes letters, digits, '_' and '-'\n"
    text = header + exported.spec.to_yaml()
    if args.output:
        from ..files import write_text_atomically

        write_output(args.output, "spec", lambda p: write_text_atomically(p, text))
        layers = exported.spec.layers or []
        wrote(f"wrote {args.output} ({len(layers)} layers)", args.output)
    else:
        sys.stdout.write(text)
    return EXIT_OK
