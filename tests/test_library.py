"""Library layers (KerasHub's, and any class registered with Keras), get_item, op constants and dict outputs.

The KerasHub tests build tiny networks from KerasHub's classes (no presets,
nothing downloaded) and skip when the ``hub`` extra is not installed.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
from conftest import DATA, HAS_HUB, HUB_SPECS, ROOT, assert_same_network, flat

import modelspec
from modelspec.api import checked
from modelspec.cli import main

hub = pytest.mark.skipif(not HAS_HUB, reason="KerasHub is not installed (pip install -e '.[hub]')")


def problems_of(text: str, **kwargs) -> list[modelspec.Problem]:
    with pytest.raises(modelspec.SpecError) as e:
        modelspec.build(modelspec.loads(textwrap.dedent(text), **kwargs), **kwargs)
    return e.value.problems


# -- registered classes: names and arguments ------------------------------------------------


@keras.saving.register_keras_serializable(package="modelspec_tests")
def twice(x):
    return x * 2.0


@keras.saving.register_keras_serializable(package="modelspec_tests")
class Projection(keras.layers.Layer):
    """A library-style layer: Keras objects and a nested layer among its arguments, resolved by Keras's getters."""

    def __init__(self, units, layer=None, activation=None, kernel_initializer="zeros", **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.inner = layer
        self.activation = keras.activations.get(activation)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, shape):
        self.kernel = self.add_weight(shape=(shape[-1], self.units), initializer=self.kernel_initializer)

    def call(self, x):
        y = self.activation(keras.ops.matmul(x, self.kernel))
        return self.inner(y) if self.inner is not None else y


class Block(keras.layers.Layer):
    pass


class OtherBlock(keras.layers.Layer):
    pass


WRAPPER = """
modelspec: 1
seed: 1
inputs: {x: [4]}
layers:
  - type: modelspec_tests>Projection
    units: 3
    activation: modelspec_tests>twice
    kernel_initializer: {type: TruncatedNormal, stddev: 0.02}
    layer: {type: Dense, units: 2}
"""


def test_registered_class_arguments_become_keras_objects():
    model = modelspec.build(modelspec.loads(WRAPPER))
    layer = model.layers[-1]
    assert type(layer) is Projection
    assert isinstance(layer.kernel_initializer, keras.initializers.TruncatedNormal)
    assert layer.kernel_initializer.stddev == 0.02
    assert layer.activation is twice
    assert isinstance(layer.inner, keras.layers.Dense) and layer.inner.units == 2
    x = np.ones((2, 4), "float32")
    expected = layer.inner(np.ones((2, 4), "float32") @ layer.kernel.numpy() * 2.0)
    np.testing.assert_allclose(flat(model(x))[0], keras.ops.convert_to_numpy(expected), rtol=1e-5, atol=1e-6)


def test_bare_name_of_one_registered_class():
    model = modelspec.build(modelspec.loads(WRAPPER.replace("modelspec_tests>Projection", "Projection")))
    assert type(model.layers[-1]) is Projection


def test_bare_name_two_classes_have_is_an_error_naming_both():
    objects = {"pkg_a>Block": Block, "pkg_b>Block": OtherBlock}
    text = "modelspec: 1\ninputs: {x: [4]}\nlayers:\n  - {type: Block}\n"
    with pytest.raises(modelspec.SpecError) as e:
        modelspec.loads(text, custom_objects=objects)
    (p,) = e.value.problems
    assert p.code == "ambiguous-type" and (p.line, p.column) == (4, 12)
    assert "pkg_a>Block" in p.message and "pkg_b>Block" in p.message
    assert "pkg_a>Block" in p.hint
    spec = modelspec.loads(text.replace("Block", "pkg_b>Block"), custom_objects=objects)
    assert type(modelspec.build(spec, custom_objects=objects).layers[-1]) is OtherBlock


@pytest.mark.parametrize(
    "old, new, code, line, words",
    [
        ("    units: 3\n", "", "missing-argument", 6, "projection requires the argument 'units'"),
        ("units: 3", "units: 3\n    unitz: 3", "unknown-argument", 8, "unknown argument 'unitz'"),
        ("stddev", "stdev", "unknown-argument", 9, "unknown argument 'stdev'"),
        ("twice", "thrice", "unregistered-type", 8, "'modelspec_tests>thrice'"),
        ("Dense", "Dens", "unknown-layer-type", 10, "unknown layer type 'dens'"),
    ],
)
def test_registered_class_arguments_are_checked(old, new, code, line, words):
    with pytest.raises(modelspec.SpecError) as e:
        modelspec.loads(WRAPPER.replace(old, new))
    (p,) = e.value.problems
    assert p.code == code and p.line == line, p
    assert words in p.message.lower(), p.message


def test_a_registered_function_is_not_a_layer_type():
    with pytest.raises(modelspec.SpecError) as e:
        modelspec.loads("modelspec: 1\ninputs: {x: [4]}\nlayers:\n  - {type: modelspec_tests>twice}\n")
    assert e.value.problems[0].code == "unknown-layer-type"
    assert "not a Keras layer class" in e.value.problems[0].message


def test_plugin_registering_with_keras(tmp_path, monkeypatch, capsys):
    (tmp_path / "acme_plugin.py").write_text(
        textwrap.dedent(
            """
            import keras

            @keras.saving.register_keras_serializable(package="acme")
            class Scale(keras.layers.Layer):
                def __init__(self, factor=1.0, **kwargs):
                    super().__init__(**kwargs)
                    self.factor = factor

                def call(self, x):
                    return x * self.factor

                def get_config(self):
                    return {**super().get_config(), "factor": self.factor}
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = tmp_path / "spec.yaml"
    spec.write_text("modelspec: 1\ninputs: {x: [4]}\nlayers:\n  - {type: acme>Scale, factor: 3.0}\n")
    out = tmp_path / "m.keras"
    assert main(["build", str(spec), "-o", str(out), "--plugin", "acme_plugin"]) == 0
    model = keras.saving.load_model(out)
    np.testing.assert_allclose(flat(model(np.ones((1, 4), "float32")))[0], 3.0)


def test_validate_without_the_plugin_names_it_and_imports_no_keras():
    code = (
        "import sys\n"
        "from modelspec.cli import main\n"
        f"rc = main(['validate', {str(HUB_SPECS / 'tiny_gpt.yaml')!r}])\n"
        "print('keras imported:', 'keras' in sys.modules)\n"
        "sys.exit(rc)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert run.returncode == 1, run.stderr
    assert "keras imported: False" in run.stdout
    assert "'keras_hub>TransformerDecoder' is not a registered layer class" in run.stdout + run.stderr
    assert "--plugin keras_hub" in run.stdout + run.stderr


# -- get_item ------------------------------------------------------------------------------

KEYS = {  # the key as a spec writes it -> the same key in Python, for numpy's reference answer
    "[:, 0, :]": (slice(None), 0, slice(None)),
    "[:, -1]": (slice(None), -1),
    "[:, None, :]": (slice(None), None, slice(None)),
    "[..., 1:3]": (Ellipsis, slice(1, 3)),
    "[:, ::2, 1]": (slice(None), slice(None, None, 2), 1),
    "[:, 1:-1, None, 2:]": (slice(None), slice(1, -1), None, slice(2, None)),
    "[0]": (0,),
}


@pytest.mark.parametrize("key", KEYS)
def test_get_item_is_x_key(key):
    text = f'modelspec: 1\ninputs: {{x: [4, 5]}}\nlayers:\n  g: {{op: get_item, inputs: x, key: "{key}"}}\n'
    _, analysis = checked(modelspec.loads(text), strict_rules=True).model()
    model = modelspec.build(modelspec.loads(text))
    x = np.arange(2 * 4 * 5, dtype="float32").reshape(2, 4, 5)
    np.testing.assert_array_equal(flat(model(x))[0], x[KEYS[key]])
    assert tuple(model.outputs[0].shape) == analysis.nodes["g"].shape


@pytest.mark.parametrize(
    "key, column, words",
    [
        ("[:, x]", 4, "'x' cannot stand in a key"),
        ("[1:2:3:4]", 6, "at most two ':'"),
        ("[..., ...]", 6, "'...' at most once"),
        ("[0", 2, "no closing ']'"),
        ("0", 0, "in brackets"),
        ('[__import__("os")]', 11, "'(' cannot stand"),
        ("[::0]", 4, "step cannot be zero"),
        ("[]", 1, "an empty item"),
    ],
)
def test_get_item_bad_keys_are_located(key, column, words):
    text = f"modelspec: 1\ninputs: {{x: [4, 5]}}\nlayers:\n  g: {{op: get_item, inputs: x, key: '{key}'}}\n"
    with pytest.raises(modelspec.SpecError) as e:
        modelspec.loads(text)
    (p,) = e.value.problems
    start = text.splitlines()[3].index("'") + 2  # 1-based column of the key's first character
    assert p.code == "invalid-key" and p.line == 4 and p.column == start + column, p
    assert words in p.message


# -- constants -----------------------------------------------------------------------------


def test_a_list_operand_is_a_constant_array_of_the_input_dtype():
    text = """
    modelspec: 1
    inputs:
      image: {shape: [2, 3]}
      ids: {shape: [3], dtype: int32}
    layers:
      centered: {op: subtract, inputs: [image], x2: [0.485, 0.456, 0.406]}
      scaled: {op: divide, x2: [[0.229, 0.224, 0.225]]}
      shifted: {op: add, inputs: [ids], x2: [1, 2, 3]}
    outputs: [scaled, shifted]
    """
    spec = modelspec.loads(textwrap.dedent(text))
    _, analysis = checked(spec, strict_rules=True).model()
    model = modelspec.build(spec)
    image = np.random.default_rng(0).normal(size=(2, 2, 3)).astype("float32")
    ids = np.array([[1, 2, 3], [4, 5, 6]], "int32")
    scaled, shifted = model([image, ids])
    mean, std = np.array([0.485, 0.456, 0.406], "float32"), np.array([[0.229, 0.224, 0.225]], "float32")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(scaled), (image - mean) / std, rtol=1e-6)
    assert keras.backend.standardize_dtype(shifted.dtype) == "int32"
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(shifted), ids + [1, 2, 3])
    assert analysis.nodes["scaled"].shape == (None, 2, 3) == tuple(model.outputs[0].shape)


# -- dict outputs ----------------------------------------------------------------------------


class Pair(keras.layers.Layer):
    """Returns a dict, as KerasHub's SAM prompt encoder does."""

    def call(self, x):
        return {"double": x * 2.0, "half": x * 0.5}


DICT_SPEC = """
modelspec: 1
seed: 3
inputs: {x: [3]}
layers:
  pair: {type: Pair, inputs: x}
  dense: {type: Dense, units: 2, inputs: "pair[half]"}
  both: {op: add, inputs: ["pair[double]", "pair[half]"]}
outputs: {a: dense, b: both, c: "pair[double]"}
"""


def test_a_dict_output_is_referenced_by_key():
    objects = {"Pair": Pair}
    model = modelspec.build(modelspec.loads(DICT_SPEC, custom_objects=objects), custom_objects=objects)
    x = keras.Input((3,), name="x")
    pair = Pair(name="pair")(x)
    dense = keras.layers.Dense(2, name="dense")(pair["half"])
    both = keras.ops.add(pair["double"], pair["half"])
    expected = keras.Model(x, {"a": dense, "b": both, "c": pair["double"]})
    assert_same_network(model, expected, np.arange(6, dtype="float32").reshape(2, 3))


def test_a_missing_key_names_the_keys():
    objects = {"Pair": Pair}
    text = DICT_SPEC.replace('"pair[half]"}', '"pair[quarter]"}', 1)
    with pytest.raises(modelspec.SpecError) as e:
        modelspec.build(modelspec.loads(text, custom_objects=objects), custom_objects=objects)
    (p,) = e.value.problems
    assert p.code == "bad-output-index" and p.line == 7
    assert "gives no output 'quarter'" in p.message and "double, half" in p.hint


def test_a_key_on_an_input_is_an_error():
    with pytest.raises(modelspec.SpecError) as e:
        modelspec.loads(
            "modelspec: 1\ninputs: {x: [3]}\nlayers:\n  d: {type: Dense, units: 2, inputs: 'x[a]'}\n"
        )
    assert e.value.problems[0].code == "bad-output-index"


# -- KerasHub ------------------------------------------------------------------------------


def _hub_layers():
    import keras_hub

    return keras_hub, keras.saving.get_registered_object("keras_hub>gelu_approximate")


def hand_gpt():
    """specs/hub/tiny_gpt.yaml written by hand with KerasHub."""
    keras_hub, gelu = _hub_layers()
    init = keras.initializers.TruncatedNormal(stddev=0.02)
    tokens = keras.Input((12,), dtype="int32", name="tokens")
    x = keras_hub.layers.TokenAndPositionEmbedding(32, 12, 32, embeddings_initializer=init)(tokens)
    for _ in range(2):
        x = keras_hub.layers.TransformerDecoder(
            128, 2, dropout=0.1, activation=gelu, kernel_initializer=init, normalize_first=True
        )(x)
    x = keras.layers.LayerNormalization(epsilon=1e-5)(x)
    return keras.Model(tokens, keras.layers.Dense(32)(x[:, -1, :]))


def hand_bert():
    """specs/hub/tiny_bert.yaml written by hand with KerasHub."""
    keras_hub, gelu = _hub_layers()
    init = keras.initializers.TruncatedNormal(stddev=0.02)
    tokens = keras.Input((12,), dtype="int32", name="tokens")
    x = keras.ops.pad(tokens, [[0, 0], [1, 0]], constant_values=32)
    x = keras_hub.layers.TokenAndPositionEmbedding(33, 13, 32, embeddings_initializer=init)(x)
    x = keras.layers.LayerNormalization(epsilon=1e-12)(x)
    for _ in range(2):
        x = keras_hub.layers.TransformerEncoder(
            128, 2, dropout=0.1, activation=gelu, layer_norm_epsilon=1e-12, kernel_initializer=init
        )(x)
    x = keras.layers.Dense(32, activation="tanh")(x[:, 0, :])
    return keras.Model(tokens, keras.layers.Dense(3, activation="softmax")(x))


@hub
@pytest.mark.parametrize("name, hand", [("tiny_gpt", hand_gpt), ("tiny_bert", hand_bert)])
def test_hub_example_is_the_hand_written_network(name, hand):
    _hub_layers()
    built, expected = modelspec.build(HUB_SPECS / f"{name}.yaml"), hand()
    tokens = np.random.default_rng(0).integers(0, 32, size=(3, 12)).astype("int32")
    assert_same_network(built, expected, tokens)
    for mine, theirs in zip(built.layers, expected.layers):  # every argument reached the constructor
        if type(mine).__module__.startswith("keras_hub"):
            assert {**mine.get_config(), "name": ""} == {**theirs.get_config(), "name": ""}


@hub
@pytest.mark.parametrize("name", ["tiny_gpt", "tiny_bert"])
def test_hub_example_trains(name):
    _hub_layers()
    result = modelspec.train(HUB_SPECS / f"{name}.yaml", epochs=3, verbose=0)
    losses = result.history["loss"]
    assert len(losses) == 3 and all(np.isfinite(losses))
    assert losses[-1] < losses[0]
    assert set(result.test_metrics) == {"loss", "accuracy"}


@hub
def test_hub_spec_trains_and_predicts_on_the_command_line(tmp_path, capsys):
    out = tmp_path / "bert.keras"
    spec = str(HUB_SPECS / "tiny_bert.yaml")
    assert main(["train", spec, "-o", str(out), "--epochs", "1", "--plugin", "keras_hub"]) == 0
    predictions = tmp_path / "p.csv"
    data = str(DATA / "progressions.csv")
    assert main(["predict", str(out), "--data", data, "-o", str(predictions), "--plugin", "keras_hub"]) == 0
    rows = predictions.read_text().splitlines()
    assert len(rows) == 385 and {r.split(",")[0] for r in rows[1:]} <= {"step1", "step2", "step3"}


@hub
def test_hub_class_arguments_are_checked():
    _hub_layers()
    text = """
    modelspec: 1
    inputs: {x: [8, 16]}
    layers:
      enc: {type: TransformerEncoder, intermediat_dim: 32, activation: keras_hub>gelu_aproximate}
    """
    with pytest.raises(modelspec.SpecError) as e:
        modelspec.loads(textwrap.dedent(text))
    found = {(p.code, p.message, p.hint) for p in e.value.problems}
    assert (
        "unknown-argument",
        "unknown argument 'intermediat_dim' for TransformerEncoder",
        "did you mean 'intermediate_dim'?",
    ) in found
    assert ("missing-argument", "TransformerEncoder requires the argument 'intermediate_dim'", None) in found
    assert ("missing-argument", "TransformerEncoder requires the argument 'num_heads'", None) in found
    assert any(
        code == "unregistered-type" and "'keras_hub>gelu_approximate'" in hint for code, _, hint in found
    )


@hub
def test_hub_functions_and_classes_that_reach_outside_are_not_registered_names():
    _hub_layers()
    for entry in (
        "{type: keras_hub>upload_preset, uri: x, preset: y}",
        "{type: WordPieceTokenizer, vocabulary: /etc/passwd}",
    ):
        with pytest.raises(modelspec.SpecError) as e:
            modelspec.loads(f"modelspec: 1\ninputs: {{x: [4]}}\nlayers:\n  - {entry}\n")
        assert e.value.problems[0].code in ("unregistered-type", "unknown-layer-type"), e.value.problems
