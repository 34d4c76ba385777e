"""A compiled model's compile arguments as a spec's ``compile``, when Keras holds them as data."""

from __future__ import annotations

import warnings
from typing import Any

from ... import catalog
from ...graph.model import snake_case
from ..messages import keras_message
from ..values import Serializer, escaped, plain_equal
from .report import Report


class CompileSettings:
    """Writes ``model.get_compile_config()`` as a spec's ``compile``.

    Args:
        values: Writes the Keras objects in it.
        report: Where problems go.
    """

    def __init__(self, values: Serializer, report: Report):
        self.values = values
        self.report = report

    def compile_data(self, model: Any) -> dict[str, Any] | None:
        """The model's compile arguments as a spec's ``compile``, when Keras has them as data."""
        if not getattr(model, "compiled", False):
            return None
        try:
            with warnings.catch_warnings():  # Keras warns of a lambda it serializes: reported below instead
                warnings.simplefilter("ignore")
                config = model.get_compile_config()
        except (NotImplementedError, TypeError, ValueError, OSError) as e:
            # An object without get_config(), or a function Keras cannot serialize (a lambda's source).
            self.report.warning(
                ("compile",),
                "export-lossy",
                f"the model's compile settings are left out: Keras cannot describe them ({keras_message(e)})",
            )
            return None
        before = len(self.report.problems)
        data: dict[str, Any] = {}
        for key, module in catalog.COMPILE_MODULES.items():
            value = config.get(key)
            if value is None:
                continue
            data[key] = self.compile_value(module, value, ("compile", key))
        if config.get("loss_weights") is not None:
            data["loss_weights"] = self.values.value(
                config["loss_weights"], None, ("compile", "loss_weights")
            )
        for key in ("run_eagerly", "jit_compile"):  # Keras keeps jit_compile resolved: True is all it can say
            if config.get(key) is True:
                data[key] = True
        if isinstance(config.get("steps_per_execution"), int) and config["steps_per_execution"] > 1:
            data["steps_per_execution"] = config["steps_per_execution"]
        found = self.report.problems[before:]
        if any(
            p.severity == "error" for p in found
        ):  # the model itself exports: what compile lacks is a warning
            del self.report.problems[before:]
            for p in found:
                message = (
                    p.message
                    if p.severity == "warning"
                    else f"the model's compile settings are left out: {p.message}"
                )
                self.report.warning(p.path, "export-lossy" if p.severity == "error" else p.code, message)
            return None
        return data or None

    def compile_value(self, module: str, value: Any, where: tuple) -> Any:
        if isinstance(value, list):
            return [self.compile_value(module, v, (*where, i)) for i, v in enumerate(value)]
        if isinstance(value, dict) and "class_name" not in value:
            return {str(k): self.compile_value(module, v, (*where, str(k))) for k, v in value.items()}
        if isinstance(value, dict):
            config = dict(value.get("config") or {})
            if module == "optimizers" and isinstance(config.get("learning_rate"), dict):
                lr = config["learning_rate"]
                config["learning_rate"] = self.values.object(
                    "schedules",
                    str(lr["class_name"]),
                    dict(lr.get("config") or {}),
                    (*where, "learning_rate"),
                )
            result = self.values.object(module, str(value["class_name"]), config, where)
            if module == "optimizers" and isinstance(result, dict):
                lr = result.get("learning_rate")
                if isinstance(lr, float):
                    result["learning_rate"] = float(f"{lr:.7g}")  # Keras keeps it as float32
                default = catalog.object_class("optimizers", result["type"])
                if default is not None and "learning_rate" in result:
                    arg = default.args.get("learning_rate")
                    if arg is not None and plain_equal(result["learning_rate"], arg.default):
                        del result["learning_rate"]
                if "name" in result and result["name"] == snake_case(result["type"]):
                    del result["name"]
                if list(result) == ["type"]:
                    return self.values.object_name(module, result["type"], {}) or result["type"]
            return result
        if isinstance(value, str):
            return escaped(value)
        self.report.error(where, "export-unsupported", f"a {type(value).__name__} is not a Keras object name")
        return None
