"""A ``.keras`` file to export: refused from its ``config.json`` before Keras loads it, then loaded safely."""

from __future__ import annotations

import json
import os
import warnings
import zipfile
from typing import Any

from ...errors import Problem, SpecError
from ..archive import check_archive
from ..backend import load_keras
from ..messages import clipped
from .refusals import CODE_LAYERS, refused_layer_message, subclassed_message


def check_model_file(path: str) -> None:
    """Refuse, before Keras loads anything, a model file a spec cannot describe.

    Reads the archive's ``config.json`` only: a subclassed model and
    code-carrying layers (``Lambda``, ...) are refused by name, without
    deserializing (let alone running) anything.

    Args:
        path: The ``.keras`` file.

    Raises:
        SpecError: The file is missing or not a ``.keras`` archive, or what it holds cannot be exported.
    """

    def fail(code: str, message: str, where: tuple = ("model",)) -> SpecError:
        return SpecError([Problem(where, message, path, code=code)])

    if os.path.isdir(path):
        raise fail("model-file", "is a folder, not a .keras model file")
    try:
        with zipfile.ZipFile(path) as archive:
            unsafe = check_archive(archive, os.path.getsize(path))
            if unsafe:
                raise fail("model-archive", f"refused before unpacking: {unsafe}")
            info = archive.getinfo("config.json")  # at most MAX_CONFIG_BYTES: check_archive says so
            config = json.loads(archive.read(info).decode("utf-8"))
    except SpecError:  # refused above, inside the archive
        raise
    except FileNotFoundError:
        raise fail("model-file", "no such file") from None
    except KeyError:
        raise fail("model-file", "not a .keras model file (the archive has no config.json)") from None
    except (zipfile.BadZipFile, EOFError, UnicodeDecodeError, ValueError, RecursionError) as e:
        raise fail("model-file", f"not a .keras model file ({' '.join(str(e).split())[:200]})") from None
    except OSError as e:
        raise fail("model-file", f"cannot read the file: {e.strerror or e}") from None
    problems: list[Problem] = []
    if isinstance(config, dict):
        class_name = str(config.get("class_name"))
        inner = config.get("config") if isinstance(config.get("config"), dict) else {}
        graph = class_name == "Sequential" or ("layers" in inner and "output_layers" in inner)
        if not graph:  # a functional model's config lists its layers and outputs; a subclassed one's does not
            what = str(config.get("registered_name") or class_name)
            problems.append(Problem((), subclassed_message(what), path, code="export-subclassed"))
        else:
            problems += _code_layers(config, path)
    if problems:
        raise SpecError(problems)


def _code_layers(config: Any, path: str, depth: int = 0) -> list[Problem]:
    """Layers of a model config that carry code (``Lambda``, ...), found without deserializing anything."""
    found: list[Problem] = []
    if depth > 64:
        return found
    if isinstance(config, dict):
        class_name = config.get("class_name")
        module = str(config.get("module") or "")
        if class_name in CODE_LAYERS and module.startswith("keras"):
            inner = config.get("config") if isinstance(config.get("config"), dict) else {}
            name = str(inner.get("name", class_name))
            message = refused_layer_message(name, str(class_name))
            found.append(Problem(("layers", name), message, path, code="export-refused-layer"))
            return found
        for value in config.values():
            found += _code_layers(value, path, depth + 1)
    elif isinstance(config, list):
        for value in config:
            found += _code_layers(value, path, depth + 1)
    return found


def load_model_file(
    path: str,
    custom_objects: dict[str, Any] | None = None,
) -> Any:
    """Load a ``.keras`` file to export, in Keras's safe mode, once :func:`check_model_file` accepts it.

    Raises:
        SpecError: The file cannot be exported, or Keras cannot load it.
    """
    check_model_file(path)
    keras = load_keras()
    try:
        with warnings.catch_warnings():  # about optimizer variables and the like: export reads no weights
            warnings.simplefilter("ignore")
            return keras.saving.load_model(path, custom_objects=custom_objects, safe_mode=True, compile=True)
    except Exception as e:  # noqa: BLE001 - whatever Keras raises, the file is what is wrong
        message = f"Keras could not load the model: {clipped(e)}"
        raise SpecError([Problem(("model",), message, path, code="model-file")]) from None
