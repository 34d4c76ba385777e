"""KerasHub backbones through export -> YAML -> load -> build, and the library bugs export names.

Each backbone is made from its class with a tiny config (no presets, nothing
downloaded). CI runs one per family; ``MODELSPEC_SLOW=1`` runs them all, and
``benchmarks/bench_hub.py`` times them all.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from conftest import (
    HAS_HUB,
    HUB_BACKBONES,
    SLOW,
    assert_same_backbone,
    flat,
    hub_backbone,
    hub_inputs,
    hub_round_trip,
)

import modelspec
from modelspec.cli import main

hub = pytest.mark.skipif(not HAS_HUB, reason="KerasHub is not installed (pip install -e '.[hub]')")

REFUSED = {
    "Llama": ("export-library-config", "transformer_layer_0", "its get_config() raises AttributeError"),
    "Gemma": ("export-custom-layer", "final_normalization", "the name RMSNormalization means another class"),
}
"""Backbones export refuses, naming the library's bug: (code, layer, words of the message)."""

ONE_PER_FAMILY = ["Bert", "GPT2", "Mistral", "Bart", "ViT", "ResNet", "SAM"]
"""Bert pools with get_item; Bart lists its weights in another order than its graph; ViT holds derived
settings; SAM normalizes with constant arrays and references its prompt encoder's dict outputs by key."""


def _cases():
    for name in HUB_BACKBONES:
        if name in REFUSED:
            continue
        yield pytest.param(name, marks=[] if name in ONE_PER_FAMILY else [SLOW], id=name)


@hub
@pytest.mark.parametrize("name", list(_cases()))
def test_backbone_round_trips(name):
    model = hub_backbone(name)
    with pytest.warns(UserWarning):  # its class is not kept: the spec builds a plain functional model
        built, text, _, _ = hub_round_trip(model)
    assert_same_backbone(built, model)
    if HUB_BACKBONES[name][0] != "convolutional":  # built from keras.layers only
        assert "keras_hub>" in text  # library layers by their registered names


@hub
@pytest.mark.parametrize("name", sorted(REFUSED))
def test_library_bugs_are_named_at_the_layer(name):
    code, layer, words = REFUSED[name]
    with pytest.raises(modelspec.SpecError) as e:
        modelspec.from_keras(hub_backbone(name))
    errors = [p for p in e.value.problems if p.severity == "error"]
    assert [(p.code, p.path) for p in errors] == [(code, ("layers", layer))]
    assert words in errors[0].message


@hub
def test_gemma_round_trips_once_its_own_class_is_given_a_name():
    """Gemma's RMSNormalization, named by the caller; Gemma also scales by sqrt(hidden_dim) held as a tensor."""
    from keras_hub.src.models.gemma.rms_normalization import RMSNormalization

    objects = {"GemmaRMSNormalization": RMSNormalization}
    model = hub_backbone("Gemma")
    with pytest.warns(UserWarning):
        text = modelspec.from_keras(model, custom_objects=objects).to_yaml()
    assert "type: GemmaRMSNormalization" in text
    assert_same_backbone(
        modelspec.build(modelspec.loads(text, custom_objects=objects), custom_objects=objects), model
    )


@hub
def test_t5_get_item_with_a_new_axis_round_trips():
    model = hub_backbone("T5")
    text = modelspec.from_keras(model).to_yaml()
    assert 'key: "[:, None, :]"' in text or "key: '[:, None, :]'" in text
    assert_same_backbone(modelspec.build(modelspec.loads(text)), model)


@hub
def test_export_command_loads_a_backbone_file_with_the_plugin(tmp_path, capsys):
    path = tmp_path / "bert.keras"
    model = hub_backbone("Bert")
    model.save(path)
    out = tmp_path / "bert.yaml"
    assert main(["export", str(path), "-o", str(out), "--plugin", "keras_hub"]) == 0
    text = out.read_text()
    assert "type: keras_hub>TransformerEncoder" in text
    assert_same_backbone(modelspec.build(modelspec.loads(text)), model)


# -- what export reads of plain Keras models: get_item keys, tensor constants ----------------------


def test_get_item_keys_are_exported_and_built_again():
    x = keras.Input((4, 6))
    outputs = [x[:, 0, :], x[:, None, 1:3], x[..., ::2], x[:, -1]]
    model = keras.Model(x, outputs)
    spec = modelspec.from_keras(model)
    keys = sorted(str(layer.args["key"]) for layer in spec.layers.values())
    assert keys == ["[..., ::2]", "[:, -1]", "[:, 0, :]", "[:, None, 1:3]"]
    built = modelspec.build(modelspec.loads(spec.to_yaml()))
    data = np.random.default_rng(0).normal(size=(2, 4, 6)).astype("float32")
    for got, want in zip(built(data), model(data)):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(got), keras.ops.convert_to_numpy(want))


def test_a_tensor_held_by_an_operation_is_written_as_numbers():
    x = keras.Input((3,))
    scale = keras.ops.convert_to_tensor([1.0, 2.0, 4.0])
    model = keras.Model(x, keras.ops.multiply(x, scale) + keras.ops.sqrt(keras.ops.convert_to_tensor(16.0)))
    text = modelspec.from_keras(model).to_yaml()
    assert "[1.0, 2.0, 4.0]" in text
    built = modelspec.build(modelspec.loads(text))
    data = np.array([[1.0, 1.0, 1.0]], "float32")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(built(data)), [[5.0, 6.0, 8.0]])


# -- a library layer whose config does not make it again ------------------------------------------


@keras.saving.register_keras_serializable(package="modelspec_hub_tests")
class Forgetful(keras.layers.Layer):
    """A library layer with a bug: its config leaves out a required argument."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.dense = keras.layers.Dense(units)

    def call(self, x):
        return self.dense(x)

    def get_config(self):
        return {**super().get_config(), "size": self.units}


def test_a_config_that_does_not_make_the_layer_again_is_named():
    x = keras.Input((3,))
    model = keras.Model(x, Forgetful(2, name="forgetful")(x))
    with pytest.raises(modelspec.SpecError) as e:
        modelspec.from_keras(model)
    (problem,) = e.value.problems
    assert (problem.code, problem.path) == ("export-library-config", ("layers", "forgetful"))
    assert "Forgetful.from_config(layer.get_config()) raises TypeError" in problem.message


# -- copying weights by layer name ----------------------------------------------------------------------


@hub
def test_bart_lists_its_weights_in_another_order_and_copy_weights_pairs_them():
    model = hub_backbone("Bart")
    with pytest.warns(UserWarning):
        built, _, _, _ = hub_round_trip(model)
    shapes = [tuple(w.shape) for w in built.weights]
    assert shapes != [tuple(w.shape) for w in model.weights]  # so set_weights(get_weights()) cannot work
    assert sorted(shapes) == sorted(tuple(w.shape) for w in model.weights)
    modelspec.copy_weights(model, built)
    data = hub_inputs(model)
    for got, want in zip(flat(built(data)), flat(model(data))):
        np.testing.assert_allclose(got, want, atol=1e-6)


def test_copy_weights_names_what_differs():
    x = keras.Input((3,))
    one = keras.Model(x, keras.layers.Dense(2, name="d")(x))
    y = keras.Input((3,))
    other = keras.Model(y, keras.layers.Dense(4, name="d")(y))
    with pytest.raises(ValueError, match=r"d/kernel: shape \(3, 2\) in the source, \(3, 4\) in the target"):
        modelspec.copy_weights(one, other)
