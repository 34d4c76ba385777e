"""Serving outputs on the command line: ``build -o model.onnx``, ``--format saved_model``, ``train --export``.

Which format is asked for, and whether this backend and installation can
write and check it, is settled from the command line alone, before the spec
is built (no Keras import): an impossible combination costs no work.
"""

from __future__ import annotations

import argparse
import os

from ..errors import SpecError, UsageError

FORMAT_CHOICES = ("keras", "onnx", "tflite", "saved_model")
EXPORT_CHOICES = ("onnx", "tflite", "saved_model")


def add_format_option(c: argparse.ArgumentParser) -> None:
    """``build --format``: what to write (default: from the output's suffix)."""
    c.add_argument(
        "--format",
        choices=FORMAT_CHOICES,
        help="keras (MODEL.keras), onnx (.onnx), tflite (.tflite) or saved_model (a folder); "
        "default: from the output's suffix. Serving files are written by Keras's model.export "
        "and checked against the Keras model on a random batch",
    )


def add_export_option(c: argparse.ArgumentParser) -> None:
    """``train --export``: a serving file beside the trained ``.keras``."""
    c.add_argument(
        "--export",
        choices=EXPORT_CHOICES,
        action="append",
        default=[],
        metavar="FORMAT",
        help="also write the trained model (its normalization included) as onnx (MODEL_STEM.onnx), "
        "tflite (MODEL_STEM.tflite) or saved_model (the folder MODEL_STEM.saved_model), "
        "checked against Keras; repeatable",
    )


def build_format(command: str, output: str, requested: str | None) -> str | None:
    """The serving format ``build`` writes (None: a ``.keras`` model), refused before any work when impossible.

    Raises:
        UsageError: The output's suffix and ``--format`` disagree (exit status 2).
        SpecError: This backend cannot write the format, or its converter or runtime is missing.
    """
    from ..files import IN_PLACE, output_kind
    from ..keras.serving import FORMATS, format_of, serving_check

    kind = output_kind(output)
    if kind in IN_PLACE and requested in (None, "keras"):
        return None  # a device, FIFO or stream (-o /dev/null) takes a .keras model, whatever its name
    try:
        fmt = format_of(output, requested)
    except ValueError as e:
        raise UsageError(f"modelspec {command}: error: {e}") from None
    if fmt is not None:
        if FORMATS[fmt].suffix is not None and kind not in ("new", "file"):
            raise UsageError(
                f"modelspec {command}: error: {output!r} is a {kind}: a serving file is written to a file, "
                "checked, then moved into place"
            )
        serving_check(fmt, output)
    return fmt


def export_paths(model_path: str, formats: list[str]) -> dict[str, str]:
    """``train --export``: format -> the path beside the model, each refused before training when impossible."""
    from ..keras.serving import FORMATS, serving_check

    stem = os.path.splitext(model_path)[0]
    paths = {fmt: stem + (FORMATS[fmt].suffix or ".saved_model") for fmt in dict.fromkeys(formats)}
    problems = []
    for fmt, path in paths.items():
        try:
            serving_check(fmt, path)
        except SpecError as e:
            problems += e.problems
    if problems:
        raise SpecError(problems)
    return paths


def describe(checked: object) -> str:
    """``iris.onnx (ONNX, 2.5 kB; largest difference from Keras on a random batch: 3e-08)``."""
    from ..keras.serving import FORMATS, Checked

    assert isinstance(checked, Checked)
    size = checked.bytes
    text = f"{size / 1e6:.1f} MB" if size >= 1e6 else f"{size / 1e3:.1f} kB"
    return (
        f"{checked.path} ({FORMATS[checked.format].title}, {text}; "
        f"largest difference from Keras on a random batch: {checked.difference:.1g})"
    )
