"""The layer catalog: fresh for the installed Keras, complete, and readable without Keras."""

from __future__ import annotations

import inspect
import json
import os
import pathlib
import subprocess
import sys

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras

from modelspec import catalog
from modelspec.catalog import generate as gen

CATALOG_FILE = pathlib.Path(catalog.__file__).with_name("catalog.json")
REGENERATE = "the catalog is stale: run `python -m modelspec.catalog.generate` and commit modelspec/catalog/catalog.json"


@pytest.fixture(scope="module")
def generated():
    return gen.generate()


@pytest.fixture(scope="module")
def on_disk():
    return json.loads(CATALOG_FILE.read_text(encoding="utf-8"))


# -- freshness ----------------------------------------------------------------


def test_generated_from_the_installed_keras(on_disk):
    assert on_disk["keras_version"] == keras.__version__, REGENERATE
    assert catalog.keras_version() == keras.__version__


def test_committed_catalog_is_fresh(generated, on_disk):
    assert generated == on_disk, REGENERATE
    # Byte for byte, so `--check` agrees and argument order (not seen by ==) is kept.
    assert gen.render(generated) == CATALOG_FILE.read_text(encoding="utf-8"), REGENERATE


def test_check_flag_reports_fresh_and_stale(monkeypatch, tmp_path, generated):
    monkeypatch.setattr(gen, "generate", lambda: generated)
    assert gen.main(["--check"]) == 0
    stale = tmp_path / "catalog.json"
    stale.write_text("{}\n", encoding="utf-8")
    monkeypatch.setattr(gen, "CATALOG_PATH", stale)
    assert gen.main(["--check"]) == 1
    assert stale.read_text(encoding="utf-8") == "{}\n", "--check must not write"


def test_arguments_keep_signature_order(on_disk):
    assert list(on_disk["layers"]["Dense"]["args"])[:3] == ["units", "activation", "use_bias"]
    params = inspect.signature(keras.layers.Conv2D.__init__).parameters
    expected = [p for p in params if p not in ("self", "name", "kwargs")]
    assert list(catalog.layer("Conv2D").args)[: len(expected)] == expected


# -- layers -------------------------------------------------------------------


def test_every_public_layer_is_listed_or_refused():
    for name in dir(keras.layers):
        obj = getattr(keras.layers, name)
        if name.startswith("_") or not inspect.isclass(obj) or not issubclass(obj, keras.layers.Layer):
            continue
        assert (catalog.layer(name) is None) != (catalog.refused(name) is None), name
    assert catalog.layer("InputSpec") is None and catalog.refused("InputSpec") is None
    assert catalog.layer("concatenate") is None, "functions are not layer types"


def test_refused_types_are_not_layers():
    raw = catalog.catalog()
    assert not set(raw["refused"]) & set(raw["layers"])
    for name in ("Lambda", "TFSMLayer", "JaxLayer", "FlaxLayer", "TorchModuleWrapper", "InputLayer", "Layer"):
        assert catalog.refused(name), name
        assert catalog.layer(name) is None
    assert "Python code" in catalog.refused("Lambda")
    assert catalog.refused("Dense") is None


def test_dense():
    dense = catalog.layer("Dense")
    assert dense.cls == "Dense" and dense.doc
    units = dense.args["units"]
    assert (
        units.required and units.default is catalog.MISSING and units.type == "int"
    )  # from "Positive integer"
    assert dense.args["activation"].kind == "activation"
    use_bias = dense.args["use_bias"]
    assert use_bias.default is True and use_bias.type == "bool" and not use_bias.required
    assert dense.args["kernel_initializer"].kind == "initializer"
    assert dense.args["kernel_regularizer"].kind == "regularizer"
    assert dense.args["bias_constraint"].kind == "constraint"
    assert "dimensionality" in units.doc
    # The reserved name and the legacy shape arguments are not arguments.
    for absent in ("name", "input_shape", "input_dim", "kwargs"):
        assert absent not in dense.args
    # Base Layer arguments reach Dense through **kwargs.
    assert {"trainable", "dtype", "autocast", "activity_regularizer"} <= set(dense.args)
    assert dense.call == ("inputs", "training") and not dense.call_varargs


def test_layer_kinds_and_aliases():
    assert catalog.layer("Bidirectional").args["layer"].kind == "layer"
    assert catalog.layer("Bidirectional").args["backward_layer"].kind == "layer"
    assert catalog.layer("RNN").args["cell"].kind == "layer"
    assert catalog.layer("LSTM").args["recurrent_activation"].kind == "activation"
    conv = catalog.layer("Convolution2D")
    assert conv.type == "Convolution2D" and conv.cls == "Conv2D"
    assert conv.args == catalog.layer("Conv2D").args
    assert conv.args["strides"].default == [1, 1] and conv.args["strides"].type == "list"


def test_call_parameters():
    mha = catalog.layer("MultiHeadAttention")
    assert {"query", "value", "key"} <= set(mha.call)
    assert catalog.layer("StackedRNNCells").call_varargs


def test_types_widened_where_keras_docs_say_so():
    # "int or tuple/list of 1 integer": a list (or a number), not an int.
    assert catalog.layer("Conv1D").args["strides"].type == "list"
    assert catalog.layer("LayerNormalization").args["axis"].type == "list"
    # An int default for a float argument.
    assert catalog.object_class("callbacks", "EarlyStopping").args["min_delta"].type == "float"
    assert catalog.layer("Concatenate").args["axis"].type == "int"


# -- objects ------------------------------------------------------------------


def test_object_names():
    assert "relu" in catalog.object_names("activations")
    assert "adam" in catalog.object_names("optimizers")
    assert "sparse_categorical_crossentropy" in catalog.object_names("losses")
    assert {"accuracy", "acc", "crossentropy", "ce"} <= catalog.object_names("metrics")
    assert "glorot_uniform" in catalog.object_names("initializers")
    assert catalog.object_names("callbacks") == frozenset()
    assert catalog.object_names("schedules") == frozenset()
    # Names of base classes resolve to nothing usable.
    assert "optimizer" not in catalog.object_names("optimizers")
    assert "Metric" not in catalog.object_names("metrics")


def test_object_names_are_accepted_by_keras():
    for module in catalog.MODULES:
        mod = keras.optimizers.schedules if module == "schedules" else getattr(keras, module)
        for name in catalog.object_names(module) - {"acc", "crossentropy", "ce"}:
            try:
                assert mod.get(name) is not None, (module, name)
            except ImportError:  # an optional package (scipy for STFT) is not installed
                continue


def test_object_classes():
    early = catalog.object_class("callbacks", "EarlyStopping")
    assert early.type == "EarlyStopping" and early.doc
    assert early.args["patience"].default == 0 and early.args["patience"].type == "int"
    assert "Adam" in catalog.object_classes("optimizers")
    assert "ExponentialDecay" in catalog.object_classes("schedules")
    assert "name" not in catalog.object_class("optimizers", "Adam").args
    for module, base in (
        ("optimizers", "Optimizer"),
        ("losses", "Loss"),
        ("metrics", "Metric"),
        ("callbacks", "Callback"),
        ("initializers", "Initializer"),
        ("regularizers", "Regularizer"),
        ("constraints", "Constraint"),
        ("schedules", "LearningRateSchedule"),
    ):
        assert catalog.object_class(module, base) is None, base
    assert catalog.object_class("callbacks", "NoSuchCallback") is None
    with pytest.raises(KeyError):
        catalog.object_names("nonsense")


def test_refused_objects():
    assert "Python code" in catalog.refused_object("callbacks", "LambdaCallback")
    assert catalog.refused_object("callbacks", "RemoteMonitor")
    for name in ("LambdaCallback", "RemoteMonitor"):
        assert catalog.object_class("callbacks", name) is None
    assert catalog.refused_object("callbacks", "EarlyStopping") is None
    assert catalog.refused_object("losses", "Anything") is None


# -- generator helpers -----------------------------------------------------------


def test_default_that_is_not_json():
    def f(x=object, y=(1, 2), z=float("nan")):
        pass

    params = inspect.signature(f).parameters
    assert gen.arg_info(params["x"], None) == {"default_repr": "<class 'object'>"}
    assert gen.arg_info(params["y"], None) == {"default": [1, 2], "type": "list"}
    assert gen.arg_info(params["z"], None) == {"default_repr": "nan", "type": "float"}


def test_docstring_args():
    doc = """Summary.

    Args:
        units: Positive integer,
            the size.
        rate (float): A rate.

            Second paragraph.
        **kwargs: Base arguments.

    Returns:
        nothing: not an argument.
    """
    assert gen.docstring_args(doc) == {
        "units": "Positive integer, the size.",
        "rate": "A rate. Second paragraph.",
        "**kwargs": "Base arguments.",
    }


# -- the reader ---------------------------------------------------------------


def test_package_import_does_not_import_keras():
    # Through the package: fails if the reader, or modelspec/__init__.py, starts importing Keras eagerly.
    code = (
        "import modelspec.catalog as c; c.layer('Dense'); import sys; "
        "assert 'keras' not in sys.modules and 'tensorflow' not in sys.modules, 'keras was imported'"
    )
    root = pathlib.Path(catalog.__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=root
    )
    assert result.returncode == 0, result.stderr


def test_lookups_are_cached():
    assert catalog.layer("Dense") is catalog.layer("Dense")
    assert catalog.object_class("optimizers", "Adam") is catalog.object_class("optimizers", "Adam")
    assert catalog.layer("NoSuchLayer") is None
    assert not catalog.MISSING
    assert repr(catalog.MISSING) == "MISSING"


def test_suggest():
    types = catalog.layer_types()
    assert catalog.suggest("Dens", types) == "Dense"
    assert catalog.suggest("dense", types) == "Dense"
    assert catalog.suggest("conv2d", types) == "Conv2D"
    assert catalog.suggest("zzzz", types) is None
    assert catalog.suggest("relu", []) is None
    assert catalog.suggest("ADAM", catalog.object_names("optimizers")) in ("Adam", "adam")
