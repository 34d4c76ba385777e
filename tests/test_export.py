"""Export: Keras models to specs (``modelspec.from_keras``, ``modelspec export``) and back.

Round trips both ways: a hand-written Keras model exported and rebuilt is the
same network (layer classes, parameters, outputs with the weights copied in),
and every example spec without blocks, built and exported, builds the same
network again. Then keras.applications models, what cannot be exported, and
the command line.
"""

from __future__ import annotations

import os
import pathlib
import warnings

import keras
import numpy as np
import pytest
from conftest import (
    APPLICATION_FAMILIES,
    HEAVY_APPLICATIONS,
    SLOW,
    SPECS,
    application,
    application_objects,
    assert_same_network,
    flat,
    random_inputs,
)
from keras import layers

import modelspec
from modelspec.cli import main
from modelspec.keras.export import check_model_file, export_model, op_name


def rebuild(model, custom_objects=None):
    """Export ``model``, read the spec's text back, build it: (spec text, rebuilt model)."""
    text = modelspec.from_keras(model, custom_objects=custom_objects).to_yaml()
    spec = modelspec.loads(text, custom_objects=custom_objects)
    return text, modelspec.build(spec, custom_objects=custom_objects)


def flat_layers(model):
    """The model's layers, a nested model's replaced by its own (inputs left out)."""
    out = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        if isinstance(layer, (keras.Sequential, keras.src.models.functional.Functional)):
            out += flat_layers(layer)
        else:
            out.append(layer)
    return out


def assert_same_flat_network(built, expected, atol=1e-5):
    """As assert_same_network, counting a nested model by its own layers (a block flattens it)."""
    a, b = flat_layers(expected), flat_layers(built)
    assert [type(x).__name__ for x in b] == [type(x).__name__ for x in a]
    assert built.count_params() == expected.count_params()
    for x, y in zip(a, b):
        y.set_weights(x.get_weights())
    data = random_inputs(expected)
    got, want = flat(built(data, training=False)), flat(expected(data, training=False))
    assert len(got) == len(want)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=atol)


# -- round trips: Keras -> spec -> Keras ------------------------------------------


def test_sequential_becomes_the_list_form_with_names_and_no_defaults():
    model = keras.Sequential(
        [
            keras.Input((4,), name="features"),
            layers.Dense(16, activation="relu", kernel_regularizer=keras.regularizers.L2(0.01)),
            layers.Dropout(0.1, name="drop"),
            layers.Dense(3, activation="softmax", name="species", kernel_initializer="he_normal"),
        ],
        name="iris_mlp",
    )
    spec = modelspec.from_keras(model)
    assert spec.sequential and spec.name == "iris_mlp"
    assert spec.to_data()["inputs"] == {"features": {"shape": [4]}}
    assert spec.to_data()["layers"][1:] == [
        {"type": "Dropout", "name": "drop", "rate": 0.1},
        {
            "type": "Dense",
            "name": "species",
            "units": 3,
            "activation": "softmax",
            "kernel_initializer": "he_normal",
        },
    ]
    assert spec.layers[0].args == {
        "units": 16,
        "activation": "relu",
        "kernel_regularizer": "l2",
    }  # L2(0.01) is 'l2'
    _, built = rebuild(model)
    assert_same_network(built, model)
    assert [layer.name for layer in built.layers] == [layer.name for layer in model.layers]


def test_unbuilt_sequential_stays_unbuilt():
    model = keras.Sequential([layers.Dense(4), layers.Dense(2)])
    spec = modelspec.from_keras(model)
    assert spec.inputs == {} and spec.sequential
    assert not modelspec.build(spec).built


def test_shared_layers_become_share_entries():
    left, right = keras.Input((8,), name="left"), keras.Input((8,), name="right")
    tower = layers.Dense(4, activation="relu", name="tower")
    diff = layers.Subtract(name="diff")([tower(left), tower(right)])
    out = layers.Dense(1, activation="sigmoid", name="same")(diff)
    model = keras.Model([left, right], out, name="siamese")
    text, built = rebuild(model)
    data = modelspec.loads(text).to_data()["layers"]
    assert data["tower"] == {"type": "Dense", "inputs": "left", "units": 4, "activation": "relu"}
    assert data["tower_1"] == {"share": "tower", "inputs": "right"}
    assert data["diff"]["inputs"] == ["tower", "tower_1"]
    assert_same_network(built, model)


def test_multi_output_calls_become_indexed_references():
    tokens = keras.Input((None,), dtype="int32", name="tokens")
    target = keras.Input((None,), dtype="int32", name="target")
    embedded = layers.Embedding(100, 8, name="embed")(tokens)
    _, h, c = layers.LSTM(16, return_state=True, name="encoder")(embedded)
    decoded = layers.LSTM(16, return_sequences=True, name="decoder")(
        layers.Embedding(100, 8, name="target_embed")(target), initial_state=[h, c]
    )
    model = keras.Model([tokens, target], layers.Dense(100, name="logits")(decoded), name="seq2seq")
    text, built = rebuild(model)
    data = modelspec.loads(text).to_data()["layers"]
    assert data["encoder"] == {"type": "LSTM", "inputs": "embed", "units": 16, "return_state": True}
    assert data["decoder"]["inputs"] == {
        "sequences": "target_embed",
        "initial_state": ["encoder[1]", "encoder[2]"],
    }
    assert_same_network(built, model)


def test_call_keyword_arguments_become_an_inputs_mapping_and_constants_call():
    query, context = keras.Input((5, 16), name="query"), keras.Input((7, 16), name="context")
    attention = layers.MultiHeadAttention(num_heads=2, key_dim=8, name="attention")
    attended, scores = attention(query=query, value=context, key=context, return_attention_scores=True)
    pooled = layers.GlobalAveragePooling1D(name="pool")(attended)
    model = keras.Model([query, context], {"label": layers.Dense(3, name="label")(pooled), "scores": scores})
    text, built = rebuild(model)
    entry = modelspec.loads(text).to_data()["layers"]["attention"]
    assert entry == {
        "type": "MultiHeadAttention",
        "inputs": {"query": "query", "value": "context", "key": "context"},
        "call": {"return_attention_scores": True},
        "num_heads": 2,
        "key_dim": 8,
    }  # value_dim (key_dim's) and attention_axes (derived when built) are left out
    assert modelspec.loads(text).outputs == {"label": "label", "scores": "attention[1]"}
    assert_same_network(built, model)


def test_wrappers_take_nested_entries():
    tokens = keras.Input((None,), dtype="int32", name="tokens")
    x = layers.Embedding(50, 8, mask_zero=True, name="embed")(tokens)
    x = layers.Bidirectional(layers.LSTM(6, return_sequences=True), merge_mode="sum", name="bilstm")(x)
    x = layers.TimeDistributed(layers.Dense(3, use_bias=False), name="per_step")(x)
    model = keras.Model(tokens, x, name="tagger")
    text, built = rebuild(model)
    data = modelspec.loads(text).to_data()["layers"]
    assert data["bilstm"] == {
        "type": "Bidirectional",
        "layer": {
            "type": "LSTM",
            "units": 6,
            "return_sequences": True,
        },  # its derived backward layer left out
        "merge_mode": "sum",
    }
    assert data["per_step"]["layer"] == {"type": "Dense", "units": 3, "use_bias": False}
    assert "mask:" not in text and "not_equal" not in text  # Keras passes the mask by itself: not written
    assert_same_network(built, model)


def test_training_false_on_a_call_is_kept():
    x = keras.Input((4,), name="x")
    normed = layers.BatchNormalization(name="bn")(x, training=False)
    model = keras.Model(x, layers.Dense(2, name="out")(normed))
    text, built = rebuild(model)
    assert modelspec.loads(text).layers["bn"].call == {"training": False}
    assert_same_network(built, model)


def test_operations_become_op_entries():
    x = keras.Input((8,), name="x")
    dense = layers.Dense(8, name="dense")(x)
    shifted = keras.ops.add(dense, 3.0)
    gate = keras.ops.multiply(x, keras.ops.sigmoid(shifted))
    both = keras.ops.concatenate([gate, dense], axis=-1)
    reduced = keras.ops.mean(both, axis=-1, keepdims=True)
    model = keras.Model(x, 1.0 - reduced, name="ops")
    text, built = rebuild(model)
    data = modelspec.loads(text).to_data()["layers"]
    op_of = {key: entry.get("op", key) for key, entry in data.items()}  # Keras numbers op names: add_3

    def by_op(refs):
        if isinstance(refs, dict):
            return {k: by_op(v) for k, v in refs.items()}
        return [op_of.get(r, r) for r in refs] if isinstance(refs, list) else op_of.get(refs, refs)

    ops = [{**e, "inputs": by_op(e["inputs"])} for e in data.values() if "op" in e]
    assert ops == [
        {"op": "add", "inputs": ["dense"], "x2": 3.0},
        {"op": "sigmoid", "inputs": ["add"]},
        {"op": "multiply", "inputs": ["x", "sigmoid"]},
        {"op": "concatenate", "inputs": {"xs": ["multiply", "dense"]}, "axis": -1},
        {"op": "mean", "inputs": ["concatenate"], "axis": -1, "keepdims": True},
        {"op": "subtract", "inputs": {"x2": "mean"}, "x1": 1.0},  # 1.0 - t: the constant comes first
    ]
    assert_same_network(built, model)


def test_op_names_follow_keras_ops():
    assert op_name("Add") == "add"
    assert op_name("HardSilu") == "hard_silu"
    assert op_name("LogSoftmax") == "log_softmax"
    assert op_name("Absolute") == "abs"


def test_a_nested_model_becomes_a_block_and_alike_ones_share_it():
    def conv_block(filters, name):
        return keras.Sequential(
            [layers.Conv2D(filters, 3, padding="same"), layers.BatchNormalization(), layers.ReLU()], name=name
        )

    image = keras.Input((16, 16, 3), name="image")
    x = conv_block(8, "stage1")(image)
    x = conv_block(16, "stage2")(x)
    head = keras.Sequential([layers.GlobalAveragePooling2D(), layers.Dense(2)], name="head")
    model = keras.Model(image, head(x), name="nested")
    text, built = rebuild(model)
    spec = modelspec.loads(text)
    raw = modelspec.from_keras(model).to_data()
    assert raw["blocks"]["stage"] == {
        "params": {"filters": "required"},
        "layers": [
            {"type": "Conv2D", "filters": "${filters}", "kernel_size": 3, "padding": "same"},
            {"type": "BatchNormalization"},
            {"type": "ReLU"},
        ],
    }
    assert raw["layers"]["stage1"] == {"block": "stage", "filters": 8}
    assert raw["layers"]["stage2"] == {"block": "stage", "filters": 16}
    assert raw["layers"]["head"] == {"block": "head"}
    assert [n for n in spec.layers][:3] == ["stage1-0", "stage1-1", "stage1-2"]  # INSTANCE-NODE
    assert_same_flat_network(built, model)


def test_a_nested_functional_model_becomes_a_dag_block():
    inner_in = keras.Input((6,), name="inner_in")
    a = layers.Dense(6, name="inner_a")(inner_in)
    residual = layers.Add(name="inner_sum")([inner_in, a])
    inner = keras.Model(inner_in, residual, name="residual")
    x = keras.Input((6,), name="x")
    model = keras.Model(x, layers.Dense(1, name="out")(inner(x)), name="outer")
    raw = modelspec.from_keras(model).to_data()
    assert raw["blocks"]["residual"] == {
        "layers": {
            "inner_a": {"type": "Dense", "units": 6},
            "inner_sum": {"type": "Add", "inputs": ["x", "inner_a"]},
        }
    }
    assert raw["layers"]["residual"] == {"block": "residual"}
    _, built = rebuild(model)
    assert_same_flat_network(built, model)


def test_a_nested_model_called_twice_keeps_its_shared_weights():
    encoder = keras.Sequential([layers.Dense(4, name="enc_dense")], name="encoder")
    left, right = keras.Input((3,), name="left"), keras.Input((3,), name="right")
    model = keras.Model([left, right], layers.Concatenate(name="both")([encoder(left), encoder(right)]))
    text, built = rebuild(model)
    data = modelspec.loads(text).to_data()["layers"]
    assert data["enc_dense"] == {"type": "Dense", "inputs": "left", "units": 4}
    assert data["enc_dense_1"] == {"share": "enc_dense", "inputs": "right"}
    assert built.count_params() == model.count_params() == 16
    assert_same_flat_network(built, model)


def test_names_the_format_refuses_are_mapped_consistently():
    x = keras.Input((4,), name="in.put")
    hidden = layers.Dense(3, name="block.1 dense")(x)
    model = keras.Model(x, layers.Dense(2, name="out")(hidden))
    exported = export_model(model)
    assert exported.renamed == {"in.put": "in_put", "block.1 dense": "block_1_dense"}
    data = exported.spec.to_data()
    assert list(data["inputs"]) == ["in_put"] and "block_1_dense" in data["layers"]
    assert data["layers"]["out"] == {"type": "Dense", "units": 2}  # the node above, by its new name
    assert_same_network(modelspec.build(exported.spec), model)


def test_compile_settings_are_kept_when_they_are_data():
    model = keras.Sequential([keras.Input((4,)), layers.Dense(3, activation="softmax")])
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=0.01),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    spec = modelspec.from_keras(model)
    assert spec.compile.model_dump(exclude_none=True) == {
        "optimizer": {"type": "Adam", "learning_rate": 0.01},
        "loss": "sparse_categorical_crossentropy",
        "metrics": ["accuracy"],
    }
    assert modelspec.build(spec).optimizer.learning_rate.numpy() == pytest.approx(0.01)


class ConfiglessLoss(keras.losses.Loss):
    def call(self, y_true, y_pred):
        return keras.ops.mean(keras.ops.square(y_true - y_pred))

    def get_config(self):
        raise NotImplementedError("ConfiglessLoss has no config")


def test_compile_settings_keras_cannot_describe_are_left_out_saying_why():
    model = keras.Sequential([keras.Input((4,)), layers.Dense(1, name="out")], name="m")
    model.compile(optimizer="adam", loss=ConfiglessLoss())
    with pytest.warns(UserWarning) as caught:
        spec = modelspec.from_keras(model)
    assert spec.compile is None and spec.to_data()["layers"] == [{"type": "Dense", "name": "out", "units": 1}]
    assert [str(w.message) for w in caught] == [
        "<model m>: warning: compile: the model's compile settings are left out: Keras cannot describe them "
        "(NotImplementedError: ConfiglessLoss has no config)"
    ]


def test_a_compile_setting_the_format_cannot_hold_is_named_at_its_path():
    model = keras.Sequential([keras.Input((4,)), layers.Dense(1, name="out")], name="m")
    model.compile(optimizer="adam", loss=lambda y_true, y_pred: y_true - y_pred)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        exported = export_model(model)
    assert exported.spec.compile is None
    (problem,) = exported.warnings
    assert (problem.code, problem.path) == ("export-lossy", ("compile", "loss"))
    assert problem.message == (
        "the model's compile settings are left out: the value is a Python lambda, which a spec cannot hold"
    )
    assert "__lambda__" not in exported.spec.to_yaml()
    assert caught == []  # Keras's own warning about the lambda is not passed on: the problem says it


def test_strings_that_look_like_expressions_are_escaped():
    x = keras.Input((2,), name="x")
    model = keras.Model(x, layers.Dense(1, name="out")(x), name="m")
    model.compile(loss="mse", metrics=["mae"])
    text = modelspec.from_keras(model).to_yaml()
    assert modelspec.loads(text).compile.loss == "mse"


# -- round trips: spec -> Keras -> spec --------------------------------------------------------

PLAIN_SPECS = sorted(
    p.name for p in SPECS.glob("*.yaml") if "blocks:" not in p.read_text() and "imports:" not in p.read_text()
)


@pytest.mark.parametrize("name", PLAIN_SPECS)
def test_every_plain_example_spec_comes_back(name):
    original = modelspec.load(SPECS / name)
    model = modelspec.build(original)
    exported = modelspec.from_keras(model)
    text = exported.to_yaml()
    again = modelspec.loads(text)  # validates
    rebuilt = modelspec.build(again)
    if model.built:
        assert_same_network(rebuilt, model)
    assert exported.sequential == original.sequential
    assert list(exported.inputs) == list(original.inputs)
    assert {k: v.model_dump() for k, v in exported.inputs.items()} == {
        k: v.model_dump() for k, v in original.inputs.items()
    }
    if original.compile is not None:
        assert exported.compile is not None
        assert exported.compile.loss == original.compile.loss
    original_nodes, exported_nodes = _layer_nodes(original), _layer_nodes(exported)
    assert set(exported_nodes) == set(original_nodes)  # the layer names are kept
    for name, (type_name, args, given) in exported_nodes.items():
        want_type, want, want_name = original_nodes[name]
        assert type_name == want_type and (want_name is None or given == want_name)
        for key, value in args.items():  # only what the spec said (defaults left out), as it said it
            assert key in want and _loosely_equal(value, want[key]), (name, key, value, want.get(key))


def _layer_nodes(spec):
    """Node name (list form: position) -> (type, arguments, name) of every entry that makes a layer."""
    if isinstance(spec.layers, dict):
        return {k: (e.type, e.args, k) for k, e in spec.layers.items() if e.type is not None}
    return {i: (e.type, e.args, e.name) for i, e in enumerate(spec.layers)}


def _loosely_equal(a, b):
    """Equal, an int standing for a list of it (``pool_size: 2`` and ``[2, 2]``)."""
    if isinstance(a, int) and isinstance(b, list):
        return all(_loosely_equal(a, x) for x in b)
    if isinstance(b, int) and isinstance(a, list):
        return _loosely_equal(b, a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_loosely_equal(x, y) for x, y in zip(a, b))
    return a == b


# -- keras.applications ----------------------------------------------------------------------


APPLICATIONS = [
    pytest.param(name, side, marks=[SLOW] if name in HEAVY_APPLICATIONS else [])
    for name, side in APPLICATION_FAMILIES.items()
]


@pytest.mark.parametrize(("name", "side"), APPLICATIONS)
def test_keras_applications_export_and_rebuild_equal(name, side):
    objects = application_objects()
    model = application(name, side)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the custom layers are given: no warning
        _, built = rebuild(model, objects)
    assert_same_flat_network(built, model, atol=1e-4)


def test_convnext_stages_share_one_downsampling_block():
    model = application("ConvNeXtTiny")
    raw = modelspec.from_keras(model, custom_objects=application_objects(), flat=True).to_data()
    assert set(raw["blocks"]) == {"convnext_tiny_stem", "convnext_tiny_downsampling_block"}
    assert raw["blocks"]["convnext_tiny_downsampling_block"]["params"] == {"filters": "required"}
    instances = {k: v for k, v in raw["layers"].items() if "block" in v}
    assert [v.get("filters") for v in instances.values()] == [None, 192, 384, 768]


# -- what cannot be exported -----------------------------------------------------------------


class Subclassed(keras.Model):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense = layers.Dense(2)

    def call(self, x):
        return self.dense(x) * 2


def test_a_subclassed_model_is_refused_naming_its_class():
    model = Subclassed()
    model(np.zeros((1, 3)))
    with pytest.raises(modelspec.SpecError) as info:
        modelspec.from_keras(model)
    (problem,) = info.value.problems
    assert problem.code == "export-subclassed"
    assert "Subclassed" in problem.message and "call()" in problem.message


def test_a_lambda_layer_is_refused_naming_the_layer():
    x = keras.Input((3,), name="x")
    y = layers.Lambda(lambda t: t * 2, name="double")(x)
    model = keras.Model(x, layers.Dense(1)(y))
    with pytest.raises(modelspec.SpecError) as info:
        modelspec.from_keras(model)
    (problem,) = info.value.problems
    assert problem.code == "export-refused-layer" and problem.path == ("layers", "double")
    assert "'double' is a Lambda layer" in problem.message and "arbitrary Python code" in problem.message


def test_an_operation_outside_the_allowlist_is_refused():
    x = keras.Input((3, 4), name="x")
    model = keras.Model(x, layers.Dense(1, name="out")(keras.ops.digitize(x, np.array([0.5, 1.0]))))
    with pytest.raises(modelspec.SpecError) as info:
        modelspec.from_keras(model)
    assert [p.code for p in info.value.problems] == ["export-unsupported"]
    assert "keras.ops.digitize" in info.value.problems[0].message


@keras.saving.register_keras_serializable(package="tests")
class Scale(layers.Layer):
    def __init__(self, factor=2.0, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def call(self, x):
        return x * self.factor

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


class Offset(Scale):
    """Not registered with Keras: a spec names it only once the caller does."""

    def call(self, x):
        return x + self.factor


def test_a_layer_from_outside_keras_is_named_with_a_warning():
    x = keras.Input((3,), name="x")
    model = keras.Model(x, Offset(factor=3.0, name="offset")(x))
    with pytest.warns(UserWarning, match="building needs it registered"):
        spec = modelspec.from_keras(model)
    assert spec.to_data()["layers"]["offset"] == {"type": "Offset", "factor": 3.0}
    with pytest.raises(modelspec.SpecError, match="unknown layer type 'Offset'"):
        modelspec.build(spec)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        spec = modelspec.from_keras(model, custom_objects={"Offset": Offset})
    assert_same_network(modelspec.build(spec, custom_objects={"Offset": Offset}), model)


def test_a_registered_layer_is_named_as_keras_registers_it():
    x = keras.Input((3,), name="x")
    model = keras.Model(x, Scale(factor=3.0, name="scale")(x))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        spec = modelspec.from_keras(model)
    assert spec.to_data()["layers"]["scale"] == {"type": "tests>Scale", "factor": 3.0}
    assert_same_network(modelspec.build(spec), model)


# -- the command line ---------------------------------------------------------------------------


def _saved(tmp_path, model, name="model.keras"):
    path = tmp_path / name
    model.save(path)
    return path


def test_cli_export_writes_a_spec_that_validates_and_builds(tmp_path, capsys):
    x = keras.Input((4,), name="features")
    hidden = layers.Dense(8, activation="relu", name="hidden")(x)
    model = keras.Model(x, layers.Dense(3, activation="softmax", name="label")(hidden), name="router")
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    path = _saved(tmp_path, model)
    out = tmp_path / "router.yaml"
    assert main(["export", str(path), "-o", str(out)]) == 0
    assert f"wrote {out} (2 layers)" in capsys.readouterr().out
    text = out.read_text()
    assert text.startswith(f"# exported from model.keras by modelspec export (Keras {keras.__version__})\n")
    assert main(["validate", str(out)]) == 0
    built = modelspec.build(out)
    assert_same_network(built, keras.saving.load_model(path))
    assert main(["export", str(path)]) == 0  # no -o: the spec on stdout
    assert capsys.readouterr().out.endswith(modelspec.load(out).to_yaml())


def test_cli_refuses_a_subclassed_model_in_one_line(tmp_path, monkeypatch, capsys):
    (tmp_path / "my_models.py").write_text(
        "import keras\n"
        "@keras.saving.register_keras_serializable(package='mine')\n"
        "class Doubler(keras.Model):\n"
        "    def __init__(self, **kwargs):\n"
        "        super().__init__(**kwargs)\n"
        "        self.dense = keras.layers.Dense(2)\n"
        "    def call(self, x):\n"
        "        return self.dense(x) * 2\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    import my_models

    model = my_models.Doubler()
    model(np.zeros((1, 3)))
    path = _saved(tmp_path, model)
    for plugin in ([], ["--plugin", "my_models"]):
        assert main(["export", str(path), *plugin]) == 1
        err = capsys.readouterr().err
        assert err.splitlines()[0].startswith(
            f"{path}: error: the model is a subclassed keras.Model (mine>Doubler from module my_models)"
        )
        assert err.splitlines()[1:] == ["1 error"]


def test_cli_refuses_a_lambda_model_in_one_line(tmp_path, capsys):
    x = keras.Input((3,), name="x")
    model = keras.Model(x, layers.Lambda(lambda t: t + 1, name="plus_one")(x))
    path = _saved(tmp_path, model)
    assert main(["export", str(path)]) == 1
    err = capsys.readouterr().err
    assert err == (
        f"{path}: error: layers.plus_one: layer 'plus_one' is a Lambda layer, which a spec cannot hold: "
        "it runs arbitrary Python code\n1 error\n"
    )
    with pytest.raises(modelspec.SpecError):
        check_model_file(str(path))  # found in the archive's config.json, before Keras loads anything


def test_cli_custom_layers_warn_and_plugins_quiet_them(tmp_path, monkeypatch, capsys):
    (tmp_path / "my_scale.py").write_text(
        "import keras\n"
        "@keras.saving.register_keras_serializable(package='mine')\n"
        "class Triple(keras.layers.Layer):\n"
        "    def call(self, x):\n"
        "        return 3 * x\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    import my_scale

    x = keras.Input((3,), name="x")
    path = _saved(tmp_path, keras.Model(x, my_scale.Triple(name="triple")(x)))
    out = tmp_path / "triple.yaml"
    assert main(["export", str(path), "--plugin", "my_scale", "-o", str(out)]) == 0
    assert "warning" not in capsys.readouterr().err
    assert main(["validate", "--plugin", "my_scale", str(out)]) == 0


def test_cli_output_over_the_input_is_a_usage_error(tmp_path, capsys):
    x = keras.Input((3,), name="x")
    path = _saved(tmp_path, keras.Model(x, layers.Dense(1)(x)), "m.keras")
    before = path.read_bytes()
    assert main(["export", str(path), "-o", str(path)]) == 2
    assert main(["export", str(path), "-o", str(tmp_path / "spec.txt")]) == 2
    assert "must end in .yaml" in capsys.readouterr().err
    assert path.read_bytes() == before


def test_cli_missing_or_broken_model_file_exits_1(tmp_path, capsys):
    assert main(["export", str(tmp_path / "none.keras")]) == 1
    assert "no such file" in capsys.readouterr().err
    broken = tmp_path / "broken.keras"
    broken.write_bytes(b"not a zip")
    assert main(["export", str(broken)]) == 1
    assert "not a .keras model file" in capsys.readouterr().err


def test_cli_refuses_a_zip_bomb_before_unpacking(tmp_path, capsys):
    import zipfile

    bomb = tmp_path / "bomb.keras"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("config.json", "{}")
        archive.writestr("model.weights.h5", b"\0" * (64 << 20))  # 64 MiB of zeros, stored in kilobytes
    assert main(["export", str(bomb)]) == 1
    err = capsys.readouterr().err
    assert "refused before unpacking" in err and "zip bomb" in err


def test_existing_output_is_replaced_atomically(tmp_path):
    x = keras.Input((3,), name="x")
    path = _saved(tmp_path, keras.Model(x, layers.Dense(1, name="y")(x)))
    out = tmp_path / "spec.yaml"
    out.write_text("old")
    assert main(["export", str(path), "-o", str(out)]) == 0
    assert "type: Dense" in out.read_text()
    assert sorted(p.name for p in pathlib.Path(tmp_path).iterdir()) == ["model.keras", "spec.yaml"]


# -- model files read bounded, before Keras loads them ------------------------------------------


def _write_archive(path, config):
    """A .keras file as Keras lays one out (config.json, metadata.json), its config written by hand."""
    import json
    import zipfile

    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("config.json", json.dumps(config, separators=(",", ":")))
        archive.writestr("metadata.json", json.dumps({"keras_version": keras.__version__}))
    return path


def _dense_layers(count, prefix="dense"):
    """Serialized Dense layers as a Sequential model's config lists them."""
    return [
        {"module": "keras.layers", "class_name": "Dense", "config": {"name": f"{prefix}_{i}", "units": 1 + i % 7},
         "registered_name": None}
        for i in range(count)
    ]  # fmt: skip


def _sequential(name, layers_):
    return {"module": "keras", "class_name": "Sequential", "config": {"name": name, "layers": layers_}}


def test_a_model_file_over_the_layer_limit_is_refused_fast_before_keras_loads(tmp_path):
    import subprocess
    import sys

    bomb = _write_archive(tmp_path / "bomb.keras", _sequential("bomb", _dense_layers(100_001)))
    assert bomb.stat().st_size < 1_000_000  # under 1 MB on disk
    script = (
        "import resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))\n"  # 1 GiB: Keras and its backend never fit
        "from modelspec.cli import main\n"
        "code = main(['export', sys.argv[1]])\n"
        "print('keras imported:', 'keras' in sys.modules)\n"
        "sys.exit(code)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(pathlib.Path(modelspec.__file__).parent.parent)}
    done = subprocess.run(
        [sys.executable, "-c", script, str(bomb)], capture_output=True, text=True, timeout=120, env=env
    )  # a hang or an exhausted memory is the failure: the bound is generous
    assert done.returncode == 1, done.stderr
    assert done.stdout == "keras imported: False\n"
    assert done.stderr == (
        f"{bomb}: error: model: its config.json describes more than 100,000 layers, the most a spec may hold: "
        "refused before Keras loads anything\n1 error\n"
    )


@pytest.mark.parametrize(
    ("config", "words"),
    [
        # nested models: 2 x 50,001 layers, each model under the limit
        (_sequential("outer", [_sequential("a", _dense_layers(50_001, "a")), _sequential("b", _dense_layers(50_001, "b"))]),
         "more than 100,000 layers"),
        # one layer called 100,001 times
        ({"module": "keras", "class_name": "Functional",
          "config": {"name": "calls", "output_layers": [], "layers": [
              {"class_name": "Dense", "config": {"name": "d", "units": 1}, "inbound_nodes": [{}] * 100_001}]}},
         "more than 100,000 layer calls"),
    ],
)  # fmt: skip
def test_nested_models_and_calls_count_toward_the_limit(tmp_path, config, words):
    path = _write_archive(tmp_path / "big.keras", config)
    with pytest.raises(modelspec.SpecError) as info:
        check_model_file(str(path))
    (problem,) = info.value.problems
    assert problem.code == "model-limit" and problem.path == ("model",) and words in problem.message


def test_a_model_file_at_the_limit_is_read(tmp_path):
    path = _write_archive(tmp_path / "wide.keras", _sequential("wide", _dense_layers(100_000)))
    assert check_model_file(str(path))["config"]["name"] == "wide"


def test_a_class_from_outside_keras_is_refused_naming_it_and_its_module(tmp_path, capsys):
    import sys

    config = _sequential("m", _dense_layers(2))
    config["config"]["layers"].insert(0, {"class_name": "InputLayer", "module": "keras.layers",
                                          "config": {"name": "x", "batch_shape": [None, 3]}})  # fmt: skip
    config["config"]["layers"][1].update(
        {"module": "payload.layers", "class_name": "Backdoor", "registered_name": "payload>Backdoor"}
    )
    path = _write_archive(tmp_path / "foreign.keras", config)
    assert main(["export", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.splitlines()[0] == (
        f"{path}: error: layers.dense_0: the model uses class Backdoor from module payload.layers "
        "(registered as 'payload>Backdoor'), which no loaded module registers: Keras cannot make it"
    )
    assert "--plugin" in err and "payload" not in sys.modules


def test_a_model_path_that_is_a_fifo_is_refused_without_opening_it(tmp_path, capsys):
    fifo = tmp_path / "model.keras"
    os.mkfifo(fifo)
    assert main(["export", str(fifo)]) == 1  # opening it would wait for a writer forever
    assert "is a FIFO, not a regular file" in capsys.readouterr().err
