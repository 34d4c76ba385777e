"""The compiler stage: every example spec equals the network written by hand in Keras."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from conftest import SHARED_TOWER, SPECS, assert_same_network, flat, random_inputs

import modelspec


def build(name: str):
    return modelspec.build(SPECS / f"{name}.yaml")


def test_every_example_is_covered_here():
    tested = {name[len("test_example_") :] for name in globals() if name.startswith("test_example_")}
    assert {p.stem for p in SPECS.glob("*.yaml")} == tested


def test_example_seed_functional():
    x = keras.Input(shape=(10,), name="x")
    expected = keras.Model(x, keras.layers.Dense(2, name="out")(x))
    model = build("seed_functional")
    assert isinstance(model, keras.Model) and not isinstance(model, keras.Sequential)
    assert model.name == "seed_functional"
    assert_same_network(model, expected)


def test_example_seed_sequential():
    expected = keras.Sequential([
        keras.Input(shape=(3,)),
        keras.layers.Dense(2, activation="relu", name="layer1"),
        keras.layers.Dense(3, activation="relu", name="layer2"),
        keras.layers.Dense(4, name="layer3"),
    ])  # fmt: skip
    model = build("seed_sequential")
    assert isinstance(model, keras.Sequential) and model.built
    assert [layer.name for layer in model.layers] == ["layer1", "layer2", "layer3"]
    assert_same_network(model, expected)


def test_example_seed_sequential_unbuilt():
    expected = keras.Sequential([
        keras.layers.Dense(2, activation="relu"),
        keras.layers.Dense(3, activation="relu"),
        keras.layers.Dense(4),
    ])  # fmt: skip
    model = build("seed_sequential_unbuilt")
    assert isinstance(model, keras.Sequential)
    assert not model.built  # exactly as Keras makes a stack without an Input
    data = np.random.default_rng(0).normal(size=(2, 7)).astype("float32")
    model(data), expected(data)  # both build on their first call
    assert_same_network(model, expected, data)


def test_example_iris():
    x = keras.Input(shape=(4,), name="features")
    expected = keras.Sequential([
        x,
        keras.layers.Dense(16, activation="relu", kernel_regularizer=keras.regularizers.L2(1e-4)),
        keras.layers.Dropout(0.1),
        keras.layers.Dense(16, activation="relu"),
        keras.layers.Dense(3, activation="softmax", name="species"),
    ])  # fmt: skip
    model = build("iris")
    assert model.name == "iris_mlp"
    assert_same_network(model, expected)
    assert isinstance(model.optimizer, keras.optimizers.Adam)
    assert float(model.optimizer.learning_rate.numpy()) == pytest.approx(0.01)
    assert isinstance(model.layers[0].kernel_regularizer, keras.regularizers.L2)


def test_example_iris_sweep():
    # The iris MLP with its knobs named for a sweep: as written, the same network; the shallow variant drops one layer.
    def mlp(width: int, deep: bool):
        hidden = [keras.layers.Dense(width, activation="relu")] if deep else []
        return keras.Sequential([
            keras.Input(shape=(4,), name="features"),
            keras.layers.Dense(width, activation="relu", kernel_regularizer=keras.regularizers.L2(1e-4)),
            keras.layers.Dropout(0.1),
            *hidden,
            keras.layers.Dense(3, activation="softmax", name="species"),
        ])  # fmt: skip

    assert_same_network(build("iris_sweep"), mlp(16, True))
    spec = modelspec.load(SPECS / "iris_sweep.yaml", params={"width": 8}, variant="shallow")
    assert_same_network(modelspec.build(spec), mlp(8, False))


def test_example_ticket_router():
    title = keras.Input(shape=(None,), dtype="int32", name="title")
    body = keras.Input(shape=(None,), dtype="int32", name="body")
    tags = keras.Input(shape=(12,), name="tags")
    t = keras.layers.LSTM(128, name="title_feat")(keras.layers.Embedding(10000, 64, name="title_emb")(title))
    b = keras.layers.LSTM(32, name="body_feat")(keras.layers.Embedding(10000, 64, name="body_emb")(body))
    merged = keras.layers.Concatenate(name="merged")([t, b, tags])
    priority = keras.layers.Dense(1, name="priority")(merged)
    department = keras.layers.Dense(4, activation="softmax", name="department")(merged)
    expected = keras.Model([title, body, tags], [priority, department])
    model = build("ticket_router")
    assert model.output_names == ["priority", "department"]
    assert_same_network(model, expected)
    # The compile section took per-output losses: fit runs on two targets.
    data = random_inputs(model, batch=4)
    model.fit(data, [np.zeros((4, 1)), np.zeros((4,), "int32")], epochs=1, verbose=0)


def test_example_residual_cnn():
    image = keras.Input(shape=(32, 32, 3), name="image")
    conv = lambda name, act=None: keras.layers.Conv2D(16, 3, padding="same", activation=act, name=name)  # noqa: E731
    stem = conv("stem", "relu")(image)
    x = conv("block1_b")(conv("block1_a", "relu")(stem))
    x = keras.layers.ReLU(name="block1_act")(keras.layers.Add(name="block1")([stem, x]))
    pool = keras.layers.MaxPooling2D(2, name="pool")(x)
    x = conv("block2_b")(conv("block2_a", "relu")(pool))
    x = keras.layers.BatchNormalization(name="block2_bn")(x)
    x = keras.layers.ReLU(name="block2_act")(keras.layers.Add(name="block2")([pool, x]))
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    expected = keras.Model(image, keras.layers.Dense(10, name="logits")(x))
    model = build("residual_cnn")
    assert_same_network(model, expected)
    assert model.loss.from_logits


def test_example_siamese():
    left, right = keras.Input(shape=(28, 28), name="left"), keras.Input(shape=(28, 28), name="right")
    tower, code = (
        keras.layers.Dense(64, activation="relu", name="left_tower"),
        keras.layers.Dense(32, name="left_code"),
    )
    lc = code(tower(keras.layers.Flatten(name="left_flat")(left)))
    rc = code(tower(keras.layers.Flatten(name="right_flat")(right)))
    distance = keras.layers.Subtract(name="distance")([lc, rc])
    expected = keras.Model([left, right], keras.layers.Dense(1, activation="sigmoid", name="same")(distance))
    model = build("siamese")
    assert_same_network(model, expected)
    # One tower object serves both inputs: its weights exist once.
    assert len(model.get_layer("left_tower").get_weights()) == 2
    assert len([layer for layer in model.layers if layer.name == "left_tower"]) == 1


def test_example_attention():
    queries, context = keras.Input(shape=(8, 16), name="queries"), keras.Input(shape=(20, 16), name="context")
    out, scores = keras.layers.MultiHeadAttention(num_heads=4, key_dim=8, name="attend")(
        query=queries, value=context, key=context, return_attention_scores=True
    )
    x = keras.layers.LayerNormalization(name="norm")(keras.layers.Add(name="mixed")([queries, out]))
    x = keras.layers.GlobalAveragePooling1D(name="pooled")(x)
    label = keras.layers.Dense(2, activation="softmax", name="label")(x)
    expected = keras.Model([queries, context], {"label": label, "scores": scores})
    model = build("attention")
    assert_same_network(model, expected)
    got = model(random_inputs(model))
    assert set(got) == {"label", "scores"} and tuple(got["scores"].shape) == (3, 4, 8, 20)


def test_example_lstm_state():
    source, target = (
        keras.Input(shape=(None, 20), name="source"),
        keras.Input(shape=(None, 30), name="target"),
    )
    _, h, c = keras.layers.LSTM(32, return_state=True, name="encoder")(source)
    seq = keras.layers.LSTM(32, return_sequences=True, name="decoder")(target, initial_state=[h, c])
    expected = keras.Model(
        [source, target], keras.layers.Dense(30, activation="softmax", name="next_token")(seq)
    )
    model = build("lstm_state")
    assert_same_network(model, expected)


def test_example_bidirectional():
    tokens = keras.Input(shape=(None,), dtype="int32", name="tokens")
    expected = keras.Sequential([
        tokens,
        keras.layers.Embedding(5000, 32, mask_zero=True),
        keras.layers.Bidirectional(keras.layers.LSTM(16, return_sequences=True), merge_mode="concat"),
        keras.layers.TimeDistributed(keras.layers.Dense(5, activation="softmax"), name="tags"),
    ])  # fmt: skip
    model = build("bidirectional")
    assert_same_network(model, expected)
    assert isinstance(model.layers[1].forward_layer, keras.layers.LSTM)


# -- behaviour beyond the examples ------------------------------------------------


def test_seed_makes_weights_reproducible():
    first = [w.copy() for w in build("seed_sequential").get_weights()]
    second = build("seed_sequential").get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(first, second))


def test_no_seed_gives_fresh_weights():
    text = (SPECS / "seed_sequential.yaml").read_text().replace("seed: 1\n", "")
    a, b = (modelspec.build(modelspec.loads(text)).get_weights() for _ in range(2))
    assert not all(np.array_equal(x, y) for x, y in zip(a, b))


def test_round_trip_through_keras_config():
    for path in sorted(SPECS.glob("*.yaml")):
        model = modelspec.build(path)
        if not model.built:
            continue
        config = model.get_config()
        clone = type(model).from_config(config)
        assert clone.count_params() == model.count_params(), path.name
        clone.set_weights(model.get_weights())
        data = random_inputs(model)
        for a, b in zip(flat(model(data, training=False)), flat(clone(data, training=False))):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_saved_model_loads_back(tmp_path):
    model = build("residual_cnn")
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    data = random_inputs(model)
    np.testing.assert_allclose(model.predict(data, verbose=0), loaded.predict(data, verbose=0), rtol=1e-5)


def test_custom_layer_from_python():
    class Scale(keras.layers.Layer):
        def __init__(self, factor=2.0, **kwargs):
            super().__init__(**kwargs)
            self.factor = factor

        def call(self, x):
            return x * self.factor

    spec = modelspec.loads(
        "modelspec: 1\ninputs: {x: [3]}\nlayers:\n  s: {type: Scale, factor: 3.0}\n",
        custom_objects={"Scale": Scale},
    )
    model = modelspec.build(spec, custom_objects={"Scale": Scale})
    np.testing.assert_allclose(model(np.ones((1, 3), "float32")), 3.0 * np.ones((1, 3)))


def test_keras_objects_as_mappings():
    spec = modelspec.loads(
        """
modelspec: 1
inputs: {x: [4]}
layers:
  d:
    type: Dense
    units: 3
    kernel_initializer: {type: RandomNormal, stddev: 0.5, seed: 1}
    kernel_constraint: {type: MaxNorm, max_value: 2}
    bias_regularizer: l2
compile:
  optimizer:
    type: SGD
    learning_rate: {type: ExponentialDecay, initial_learning_rate: 0.1, decay_steps: 10, decay_rate: 0.9}
  loss: {type: MeanSquaredError}
  metrics: [mae, {type: RootMeanSquaredError}]
"""
    )
    model = modelspec.build(spec)
    layer = model.get_layer("d")
    assert isinstance(layer.kernel_initializer, keras.initializers.RandomNormal)
    assert layer.kernel_initializer.stddev == 0.5
    assert isinstance(layer.kernel_constraint, keras.constraints.MaxNorm)
    assert isinstance(model.optimizer._learning_rate, keras.optimizers.schedules.ExponentialDecay)
    assert isinstance(model.loss, keras.losses.MeanSquaredError)


@pytest.mark.parametrize(
    "text, line, words",
    [
        (  # a shape mismatch inside Add
            "modelspec: 1\ninputs: {a: [3], b: [4]}\nlayers:\n  s: {type: Add, inputs: [a, b]}\n",
            4,
            ["Add", "shape"],
        ),
        (  # an invalid argument value Keras refuses
            "modelspec: 1\ninputs: {x: [3]}\nlayers:\n  d: {type: Dense, units: -2}\n",
            4,
            ["Dense", "units"],
        ),
        (  # a stack whose second layer cannot take the first's output
            "modelspec: 1\ninputs: {x: [3]}\nlayers:\n  - {type: Dense, units: 4}\n  - {type: Conv2D, filters: 2, kernel_size: 3}\n",
            5,
            ["Conv2D"],
        ),
    ],
)
def test_build_errors_point_at_the_node(text, line, words):
    # Shape errors are found before Keras runs (static analysis); the rest Keras reports while building.
    with pytest.raises(modelspec.SpecError) as info:
        modelspec.build(modelspec.loads(text, source="bad.yaml"))
    (problem,) = info.value.problems
    assert (problem.file, problem.line) == ("bad.yaml", line)
    for word in words:
        assert word.lower() in problem.message.lower()


def test_example_wine():
    expected = keras.Sequential([
        keras.Input(shape=(13,), name="chemistry"),
        keras.layers.Dense(16, activation="relu"),
        keras.layers.Dense(3, activation="softmax", name="cultivar"),
    ])  # fmt: skip
    model = build("wine")
    assert model.name == "wine_mlp"
    assert_same_network(model, expected)
    assert isinstance(model.optimizer, keras.optimizers.Adam)


def test_example_linnerud():
    exercises = keras.Input(shape=(3,), name="exercises")
    hidden = keras.layers.Dense(16, activation="relu", name="hidden")(exercises)
    weight = keras.layers.Dense(1, name="weight")(hidden)
    waist = keras.layers.Dense(1, name="waist")(hidden)
    expected = keras.Model(exercises, [weight, waist])
    model = build("linnerud")
    assert model.output_names == ["weight", "waist"]
    assert_same_network(model, expected)
    # Two regression outputs, each with its loss: fit takes two targets.
    data = random_inputs(model, batch=4)
    model.fit(data, [np.zeros((4, 1)), np.zeros((4, 1))], epochs=1, verbose=0)


def test_registered_layer_needs_no_custom_objects(monkeypatch):
    from modelspec import api as _api

    monkeypatch.setattr(_api, "_registry", {})

    @modelspec.register
    class Treble(keras.layers.Layer):
        def call(self, x):
            return 3 * x

    modelspec.register(Treble, name="Thrice")
    spec = modelspec.loads(
        "modelspec: 1\ninputs: {x: [2]}\nlayers:\n  a: {type: Treble}\n  b: {type: Thrice}\n"
    )
    model = modelspec.build(spec)
    np.testing.assert_allclose(model(np.ones((1, 2), "float32")), 9.0 * np.ones((1, 2)))
    monkeypatch.setattr(_api, "_registry", {})
    with pytest.raises(modelspec.SpecError, match="unknown layer type 'Treble'"):
        modelspec.loads(spec.to_yaml())


# -- examples written with blocks, params and imports ------------------------------------


def _load_build(name: str, **kw):
    return modelspec.build(modelspec.load(SPECS / f"{name}.yaml", **kw))


@pytest.mark.parametrize(
    "variant, reference",
    [(None, "ResNet50"), ("resnet101", "ResNet101"), ("resnet152", "ResNet152")],
)
def test_example_resnet50(variant, reference):
    model = _load_build("resnet50", variant=variant)
    expected = getattr(keras.applications, reference)(weights=None)
    x = np.random.default_rng(0).normal(size=(1, 224, 224, 3)).astype("float32")
    assert_same_network(model, expected, x)


@pytest.mark.parametrize("alpha", [1.0, 0.5])
def test_example_mobilenet_v2(alpha):
    model = _load_build("mobilenet_v2", params={"alpha": alpha})
    expected = keras.applications.MobileNetV2(weights=None, alpha=alpha)
    x = np.random.default_rng(0).normal(size=(1, 224, 224, 3)).astype("float32")
    assert_same_network(model, expected, x)


def test_example_transformer_classifier():
    length, dim = 200, 32
    tokens = keras.Input(shape=(length,), dtype="int32", name="tokens")
    positions = keras.Input(shape=(length,), dtype="int32", name="positions")
    x = keras.layers.Add()(
        [keras.layers.Embedding(20000, dim)(tokens), keras.layers.Embedding(length, dim)(positions)]
    )
    for _ in range(2):
        attended = keras.layers.MultiHeadAttention(num_heads=2, key_dim=dim)(x, x)
        x = keras.layers.LayerNormalization(epsilon=1e-6)(
            keras.layers.Add()([x, keras.layers.Dropout(0.1)(attended)])
        )
        ff = keras.layers.Dense(dim)(keras.layers.Dense(64, activation="relu")(x))
        x = keras.layers.LayerNormalization(epsilon=1e-6)(
            keras.layers.Add()([x, keras.layers.Dropout(0.1)(ff)])
        )
    x = keras.layers.Dropout(0.1)(keras.layers.GlobalAveragePooling1D()(x))
    x = keras.layers.Dropout(0.1)(keras.layers.Dense(20, activation="relu")(x))
    expected = keras.Model([tokens, positions], keras.layers.Dense(2, activation="softmax")(x))
    assert_same_network(build("transformer_classifier"), expected)


def test_example_unet():
    def double_conv(x, filters):
        for _ in range(2):
            x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        return x

    image = keras.Input(shape=(64, 64, 3), name="image")
    skips, x = [], image
    for filters in (8, 16, 32):
        features = double_conv(x, filters)
        x = keras.layers.MaxPooling2D(2)(features)
        skips.append(features)
    x = double_conv(x, 64)
    for filters, skip in zip((32, 16, 8), reversed(skips)):
        up = keras.layers.Conv2DTranspose(filters, 2, strides=2)(x)
        x = double_conv(keras.layers.Concatenate()([up, skip]), filters)
    expected = keras.Model(image, keras.layers.Conv2D(3, 1, activation="softmax")(x))
    assert_same_network(build("unet"), expected)


def test_example_small_resnet():
    def conv_bn(x, filters, strides=1, activation="relu"):
        x = keras.layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=False)(x)
        x = keras.layers.BatchNormalization(epsilon=0.001)(x)
        return keras.layers.Activation(activation)(x)

    def residual(x, filters):
        y = conv_bn(conv_bn(x, filters), filters, activation="linear")
        return keras.layers.Activation("relu")(keras.layers.Add()([x, y]))

    image = keras.Input(shape=(32, 32, 3), name="image")
    x = conv_bn(image, 16)
    for _ in range(2):
        x = residual(x, 16)
    x = conv_bn(x, 32, strides=2)
    for _ in range(2):
        x = residual(x, 32)
    x = keras.layers.Dense(10)(keras.layers.GlobalAveragePooling2D()(x))
    assert_same_network(build("small_resnet"), keras.Model(image, x))


def test_example_squeeze_excite():
    image = keras.Input(shape=(32, 32, 3), name="image")
    conv = keras.layers.Conv2D(16, 3, strides=2, padding="same")(image)
    act = keras.ops.multiply(
        conv, keras.ops.multiply(keras.layers.ReLU(6.0)(keras.ops.add(conv, 3.0)), 1 / 6)
    )
    squeezed = keras.layers.GlobalAveragePooling2D(keepdims=True)(act)
    expanded = keras.layers.Conv2D(16, 1, activation="hard_sigmoid")(
        keras.layers.Conv2D(4, 1, activation="relu")(squeezed)
    )
    gated = keras.ops.multiply(act, expanded)
    both = keras.ops.concatenate(
        [keras.layers.GlobalAveragePooling2D()(gated), keras.ops.mean(act, axis=[1, 2])], axis=-1
    )
    expected = keras.Model(image, keras.layers.Dense(10, activation="softmax")(both))
    model = build("squeeze_excite")
    assert_same_network(model, expected)
    kinds = {type(op).__name__ for op in model.operations}
    assert {"Add", "Multiply", "Mean", "Concatenate"} <= kinds  # operation nodes, as keras.ops makes them


def test_example_mobilenet_v3_small():
    model = build("mobilenet_v3_small")
    expected = keras.applications.MobileNetV3Small(weights=None)
    x = np.random.default_rng(0).normal(size=(1, 224, 224, 3)).astype("float32")
    assert_same_network(model, expected, x)
    operations = [type(op).__name__ for op in model.operations if not isinstance(op, keras.layers.Layer)]
    assert operations.count("Add") == operations.count("Multiply") == 9  # hard-sigmoid in 9 squeeze-excites


def test_building_leaves_the_spec_as_it_was():
    # keras.ops.pad rewrites a pad_width of one-number lists in place ([[1]] -> [(1, 1)]).
    spec = modelspec.loads(
        "modelspec: 1\ninputs: {x: [3, 4]}\nlayers:\n  p: {op: pad, inputs: [x], pad_width: [[0], [1], [2]]}\n"
    )
    before = spec.to_yaml()
    first, second = modelspec.build(spec), modelspec.build(spec)
    assert spec.to_yaml() == before
    assert first.output.shape == second.output.shape == (None, 5, 8)


def test_a_stack_with_operations_is_the_same_chain_as_a_functional_model():
    # keras.Sequential holds layers only: a list with op entries lowers to keras.Model, in the same order.
    spec = modelspec.loads(
        "modelspec: 1\ninputs: {x: [16]}\nlayers:\n  - {type: Dense, units: 16}\n  - {op: relu6}\n"
        "  - {op: multiply, x2: 0.5}\n  - {op: mean, axis: -1, keepdims: true, name: pooled}\n"
        "  - {type: Dense, units: 2}\n"
    )
    x = keras.Input((16,))
    h = keras.layers.Dense(16)(x)
    h = keras.ops.mean(keras.ops.multiply(keras.ops.relu6(h), 0.5), axis=-1, keepdims=True)
    expected = keras.Model(x, keras.layers.Dense(2)(h))
    built = modelspec.build(spec)
    assert_same_network(built, expected)
    assert "pooled" in [operation.name for operation in built.operations]  # a named op keeps its name


def test_a_stack_with_operations_needs_its_input_declared():
    with pytest.raises(modelspec.SpecError) as info:
        modelspec.loads("modelspec: 1\nlayers:\n  - {type: Dense, units: 4}\n  - {op: relu6}\n")
    (problem,) = info.value.problems
    assert (problem.code, problem.line, problem.path) == ("no-inputs", 4, ("layers", 1, "op"))
    assert "keras.ops.relu6" in problem.message


def test_a_shared_block_instance_is_a_sub_model_called_twice():
    spec = modelspec.loads(SHARED_TOWER)
    built = modelspec.build(spec)
    t = keras.Input((8,))
    tower = keras.Model(t, keras.layers.Dense(4)(keras.layers.Dense(16, activation="relu")(t)))
    a, b = keras.Input((8,), name="a"), keras.Input((8,), name="b")
    expected = keras.Model([a, b], keras.layers.Concatenate()([tower(a), tower(b)]))
    assert built.count_params() == expected.count_params() == tower.count_params()
    assert [type(x).__name__ for x in built.layers[2:]] == [
        "Dense",
        "Dense",
        "Concatenate",
    ]  # called twice, made once
    built.set_weights(tower.get_weights())
    data = random_inputs(expected)
    np.testing.assert_array_equal(flat(built(data))[0], flat(expected(data))[0])
