"""Keras models to specs: the compiler stage run backwards (``modelspec export``, ``modelspec.from_keras``).

A ``keras.Sequential`` becomes the list form, a functional model the mapping
form, each node keyed by its layer's name. A layer is ``{type, ...arguments}``
with only the arguments that differ from the catalog's defaults; Keras objects
in them are a name where the name gives the same object back, else ``{type:
Class, ...}``. A layer called at several places becomes ``share:`` entries, a
call with several outputs ``name[i]`` references, tensor keyword arguments an
``inputs`` mapping and constant ones ``call``. Operation nodes (``keras.ops.add``
on symbolic tensors) become ``op`` entries, and a model used as a layer becomes
a block and its instances: models of the same structure share one block,
what differs between them becoming its params.

The work goes in two steps, a module each: :mod:`.read` reads the Keras graph
into bodies (:mod:`.bodies`: entries whose references are positions), with
each layer's arguments from :mod:`.arguments` and Keras objects as spec values
from :mod:`modelspec.keras.values`; :mod:`.write` writes the bodies out as
spec data, with names (:mod:`.names`) given once every body is known;
:mod:`.compile` adds the compile settings. What the format cannot hold is
refused with a problem naming it (:mod:`.refusals`): a subclassed model (its
``call`` is Python code), a ``Lambda`` layer, an operation outside the
allowlist. A layer class outside ``keras.layers`` is written by the name Keras
registers it under (``keras_hub>TransformerEncoder``) or the caller's
custom objects give it, else by its class name with a warning that building
needs it registered; a library layer whose config fails or does not make it
again is refused by name. :mod:`.keys` writes ``x[:, 0, :]`` as a
``get_item`` key and a dict output's keys. :mod:`.load` refuses a model file
from its ``config.json`` before Keras loads it (a registered ``keras.Model``
subclass, such as a KerasHub backbone, is loaded and read as a graph).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...errors import Problem, SpecError
from ...spec import ModelSpec
from ..backend import load_keras
from .arguments import Arguments
from .compile import CompileSettings
from .fold import fold_data
from .load import check_model_file, load_model_file
from .names import Names, valid_name
from .provenance import recorded_spec
from .read import Reader, op_name
from .report import Report
from .write import Writer

__all__ = ["Exported", "check_model_file", "export_model", "load_model_file", "op_name"]


@dataclass
class Exported:
    """A Keras model as a spec.

    Attributes:
        spec: The spec; ``build(spec)`` makes the same network.
        warnings: What the spec cannot promise on its own (layer classes
            outside ``keras.layers`` need registering to build).
        renamed: Keras layer names the format refuses -> the names used in the spec.
    """

    spec: ModelSpec
    warnings: list[Problem]
    renamed: dict[str, str]


def export_model(
    model: Any,
    *,
    source: str | None = None,
    custom_objects: dict[str, Any] | None = None,
    flat: bool = False,
) -> Exported:
    """A Keras model as a spec.

    Args:
        model: A ``keras.Sequential`` or functional ``keras.Model``.
        source: How problems name the model (its file); default ``<model NAME>``.
        custom_objects: User classes by name: layers of theirs are named without a warning.
        flat: One node per layer; by default repeated units are folded into blocks (:mod:`.fold`).

    Raises:
        SpecError: What the format cannot hold: a subclassed model, a
            ``Lambda`` layer, an operation outside the allowlist, ...; every
            one found, each naming the layer.
    """
    keras = load_keras()
    report = Report(source or f"<model {getattr(model, 'name', type(model).__name__)}>")
    arguments = Arguments(keras, dict(custom_objects or {}), report)
    reader = Reader(keras, arguments, report)
    if not isinstance(model, keras.Model) or not reader.check_class(model, ()):
        if not report.problems:
            report.error((), "export-subclassed", f"not a Keras model: a {type(model).__name__}")
        raise SpecError(report.problems)
    if not flat and (written := recorded_spec(keras, model, dict(custom_objects or {}))) is not None:
        return Exported(written, [], {})  # built by modelspec: the spec it was built from
    reader.count(model)
    body = (
        reader.sequential_body(model, ())
        if reader.is_sequential(model)
        else reader.functional_body(model, (), {})
    )
    compile_data = CompileSettings(arguments.values, report).compile_data(model)
    if report.failed:
        raise SpecError(report.problems)
    renamed: dict[str, str] = {}
    writer = Writer(renamed)
    writer.prepare(body)
    input_names, keys = writer.top_keys(body, Names())
    data: dict[str, Any] = {"modelspec": 1, "name": valid_name(model.name, "model")}
    if writer.blocks:
        data["blocks"] = writer.blocks
    if body.input_specs:
        data["inputs"] = {n: body.input_specs[o] for n, o in zip(input_names, body.inputs)}
    layers, outputs = writer.entries(body, keys, input_names, chain=body.chain, top=True)
    data["layers"] = layers
    if not body.chain:
        data["outputs"] = outputs
    if compile_data:
        data["compile"] = compile_data
    if not flat:
        data = fold_data(data)
    return Exported(ModelSpec.model_validate(data), report.warnings, renamed)
