"""Folded export: repeated units of a Keras graph come back as blocks, runs of them as ``repeat``.

Small hand-made graphs first (equal residual units, units that differ in one
argument, names no prefix explains), then keras.applications models: the
folded spec rebuilds the very network, with the same layer names, parameter
counts and outputs (exactly, with the weights copied in), and it is much
shorter than the flat one.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import yaml
from conftest import (
    APPLICATION_FAMILIES,
    HAS_HUB,
    HEAVY_APPLICATIONS,
    SLOW,
    SPECS,
    application,
    application_objects,
    flat,
    hub_backbone,
    hub_deeper,
    hub_inputs,
)
from keras import layers

import modelspec
from modelspec.cli import main

hub = pytest.mark.skipif(not HAS_HUB, reason="KerasHub is not installed (pip install -e '.[hub]')")


def residual(x, name, units=8, hidden=16):
    dense, proj, add = name if isinstance(name, tuple) else (f"{name}_dense", f"{name}_proj", f"{name}_add")
    y = layers.Dense(hidden, activation="relu", name=dense)(x)
    y = layers.Dense(units, name=proj)(y)
    return layers.Add(name=add)([x, y])


def model_of(*hidden, names=None):
    x = keras.Input((8,), name="x")
    h = layers.Dense(8, name="stem")(x)
    for k, units in enumerate(hidden):
        h = residual(h, names[k] if names else f"unit{k + 1}", hidden=units)
    return keras.Model(x, layers.Dense(2, name="head")(h), name="net")


def staged_model():
    """Five stages, each a unit with a projection and two plain units."""
    x = keras.Input((8,), name="x")
    h = layers.Dense(8, name="stem")(x)
    for s in range(1, 6):
        y = layers.Dense(16, activation="relu", name=f"s{s}_u1_dense")(h)
        h = layers.Add(name=f"s{s}_u1_add")(
            [layers.Dense(8, name=f"s{s}_u1_proj")(h), layers.Dense(8, name=f"s{s}_u1_out")(y)]
        )
        for u in (2, 3):
            y = layers.Dense(16, activation="relu", name=f"s{s}_u{u}_dense")(h)
            h = layers.Add(name=f"s{s}_u{u}_add")([h, layers.Dense(8, name=f"s{s}_u{u}_out")(y)])
    return keras.Model(x, layers.Dense(2, name="head")(h))


def cells_model():
    """Six cells, each on the two cells before it (NASNet's shape)."""
    x = keras.Input((8,), name="x")
    p, h = x, layers.Dense(8, name="stem")(x)
    for c in range(6):
        a, b = h, layers.Dense(8, name=f"adjust_{c}")(p)
        for k in range(9):
            a = layers.Dense(8, activation="relu", name=f"left{k}_{c}")(a)
            b = layers.Dense(8, name=f"right{k}_{c}")(b)
        p, h = h, layers.Concatenate(name=f"cell_{c}")([a, b])
        h = layers.Dense(8, name=f"squeeze_{c}")(h)
    return keras.Model(x, layers.Dense(2, name="head")(h))


def flat_layers(model):
    """The model's layers, a nested model's replaced by its own."""
    out = []
    for layer in model.layers:
        out += flat_layers(layer) if isinstance(layer, keras.Model) else [layer]
    return out


def rebuilt_exactly(model, text, objects=None):
    """Build the spec text and check it is ``model``: layer names, parameters, outputs (exact).

    A nested model comes back as a block whose layers are named after the
    instance (as in a flat export): there the layer classes are compared.
    """
    built = modelspec.build(modelspec.loads(text, custom_objects=objects), custom_objects=objects)
    a, b = flat_layers(model), flat_layers(built)
    if any(isinstance(x, keras.Model) for x in model.layers):
        assert [type(x).__name__ for x in a] == [type(x).__name__ for x in b]
    else:
        assert [x.name for x in built.layers] == [x.name for x in model.layers]
    assert built.count_params() == model.count_params()
    for x, y in zip(a, b):
        y.set_weights(x.get_weights())
    data = np.random.default_rng(0).normal(size=(2, *model.inputs[0].shape[1:])).astype("float32")
    for got, want in zip(flat(built(data, training=False)), flat(model(data, training=False))):
        assert float(np.max(np.abs(got - want))) == 0.0
    return built


def hub_rebuilt_exactly(model, text):
    """Build a backbone's spec text: the same parameter count, and its outputs with the weights copied by name."""
    built = modelspec.build(modelspec.loads(text))
    assert built.count_params() == model.count_params()
    modelspec.copy_weights(model, built)
    data = hub_inputs(model)
    for got, want in zip(flat(built(data, training=False)), flat(model(data, training=False))):
        assert float(np.max(np.abs(got - want))) == 0.0
    return built


def test_two_equal_residual_units_become_one_block_repeated_twice():
    model = model_of(16, 16)
    spec = modelspec.from_keras(model)
    data = spec.to_data()
    assert list(data["blocks"]) == ["unit"]
    block = data["blocks"]["unit"]
    assert block["params"] == {"prefix": "required"}
    assert [e["type"] for e in block["layers"].values()] == ["Dense", "Dense", "Add"]
    assert block["layers"]["dense"] == {
        "type": "Dense",
        "name": "${prefix}dense",
        "units": 16,
        "activation": "relu",
    }
    assert block["layers"]["add"]["inputs"] == ["x", "proj"]
    assert data["layers"]["unit1"] == {"block": "unit", "repeat": 2, "prefix": "unit${i + 1}_"}
    assert list(data["layers"]) == ["stem", "unit1", "head"]
    rebuilt_exactly(model, spec.to_yaml())


def test_units_differing_in_one_argument_share_a_block_with_that_param():
    model = model_of(16, 32)
    data = modelspec.from_keras(model).to_data()
    block = data["blocks"]["unit"]
    assert block["params"] == {"prefix": "required", "units": "required"}
    assert block["layers"]["dense"]["units"] == "${units}"
    assert block["layers"]["proj"]["units"] == 8  # equal in both: a literal
    assert data["layers"]["unit1"] == {"block": "unit", "prefix": "unit1_", "units": 16}
    assert data["layers"]["unit2"] == {"block": "unit", "prefix": "unit2_", "units": 32}
    rebuilt_exactly(model, modelspec.from_keras(model).to_yaml())


def test_a_rule_in_the_repeat_index_folds_differing_values_into_one_repeat():
    model = model_of(16, 32, 48, 64)
    data = modelspec.from_keras(model).to_data()
    assert data["layers"]["unit1"] == {
        "block": "unit",
        "repeat": 4,
        "prefix": "unit${i + 1}_",
        "units": "${16 * i + 16}",
    }
    rebuilt_exactly(model, modelspec.from_keras(model).to_yaml())


def test_names_no_prefix_explains_stay_flat_and_flat_export_keeps_one_node_per_layer():
    model = model_of(16, 16, names=[("up", "down", "join"), ("left", "right", "merge")])  # no shared prefix
    folded = modelspec.from_keras(model).to_data()
    plain = modelspec.from_keras(model, flat=True).to_data()
    assert "blocks" not in plain and len(plain["layers"]) == 8
    assert "blocks" not in folded and folded["layers"] == plain["layers"]
    assert "blocks" not in modelspec.from_keras(model_of(16, 16), flat=True).to_data()


def test_units_of_keras_made_names_fold_through_their_numbers():
    # No names given: Keras counts dense, dense_1, ..., add, add_1; each unit's names follow from one number.
    x = keras.Input((8,), name="x")
    h = layers.Dense(8)(x)
    layers.Add()  # never called: Keras's first "add" (no number) is taken, the units' adds count from 1
    for _ in range(3):
        y = layers.Dense(16, activation="relu")(h)
        y = layers.Dense(12)(y)
        h = layers.Add()([h, layers.Dense(8)(y)])
    model = keras.Model(x, layers.Dense(2, name="head")(h))
    data = modelspec.from_keras(model).to_data()
    (block,) = data["blocks"].values()
    assert [e["name"] for e in block["layers"].values()] == [
        "dense_${dense}",
        "dense_${dense + 1}",
        "dense_${dense + 2}",
        "add_${add}",
    ]
    (unit,) = [e for e in data["layers"].values() if "block" in e]
    assert unit["repeat"] == 3  # the counters count up by three and by one a unit: rules in i
    first_add = next(x for x in model.layers if isinstance(x, layers.Add))
    dense, add = (int(x.name.rsplit("_", 1)[1]) for x in (model.layers[2], first_add))  # Keras counts on
    assert unit["dense"] == f"${{3 * i + {dense}}}" and unit["add"] == f"${{i + {add}}}"
    rebuilt_exactly(model, modelspec.from_keras(model).to_yaml())


def test_stages_of_units_fold_again_into_a_repeated_stage():
    # Five stages, each a unit with a projection and two plain units: the units fold into two blocks,
    # then the stages (a projection unit and a repeat of two) into a stage block repeated five times.
    model = staged_model()
    text = modelspec.from_keras(model).to_yaml()
    data = yaml.safe_load(text)
    stages = {k: e for k, e in data["layers"].items() if "block" in e}
    (stage,) = stages.values()
    assert stage["repeat"] == 5
    body = data["blocks"][stage["block"]]["layers"]
    assert [e.get("repeat") for e in body.values()] == [None, 2]  # the units inside: one, then a repeat
    assert len(text.splitlines()) < len(modelspec.from_keras(model, flat=True).to_yaml().splitlines()) / 2
    rebuilt_exactly(model, text)
    assert modelspec.from_keras(model).to_yaml() == text


def test_cells_on_the_two_cells_before_fold_into_a_two_input_block():
    # NASNet's shape: each cell reads the last two cells' outputs, so no single tensor separates them;
    # the cells are found where two tensors are live, and each becomes an instance with two inputs.
    model = cells_model()
    assert len(model.layers) > 100
    text = modelspec.from_keras(model).to_yaml()
    data = yaml.safe_load(text)
    (name, block), *_ = data["blocks"].items()
    assert block["inputs"] == ["x", "y"]
    cells = [e for e in data["layers"].values() if e.get("block") == name]
    assert len(cells) >= 4
    assert all(isinstance(e["inputs"], list) and len(e["inputs"]) == 2 for e in cells)
    assert len(text.splitlines()) * 2 < len(modelspec.from_keras(model, flat=True).to_yaml().splitlines())
    rebuilt_exactly(model, text)


def encoder_decoder_model():
    """Three encoder units on one input, then three decoder units that each also read the encoder's output."""
    source, target = keras.Input((8,), name="source"), keras.Input((8,), name="target")
    h = layers.Dense(8, name="encoder_stem")(source)
    for k in range(3):
        h = residual(h, f"encoder{k}")
    encoded = layers.LayerNormalization(name="encoder_norm")(h)
    h = layers.Dense(8, name="decoder_stem")(target)
    for k in range(3):
        y = layers.Dense(8, name=f"decoder{k}_query")(h)
        y = layers.Add(name=f"decoder{k}_cross")([y, encoded])
        h = layers.Add(name=f"decoder{k}_add")([h, layers.Dense(8, name=f"decoder{k}_out")(y)])
    return keras.Model([source, target], [encoded, layers.Dense(2, name="head")(h)])


def test_decoder_units_that_read_the_encoder_output_fold_into_a_repeat_that_passes_it_along():
    # The encoder's output is live through the whole decoder: a side entry of each decoder unit, as
    # a padding mask is, so the decoder units are still cut apart and become one repeat.
    model = encoder_decoder_model()
    text = modelspec.from_keras(model).to_yaml()
    data = yaml.safe_load(text)
    stacks = {e["block"]: e for e in data["layers"].values() if e.get("repeat") == 3}
    decoder = next(e for e in stacks.values() if e.get("prefix", "").startswith("decoder"))
    assert data["blocks"][decoder["block"]]["inputs"] == ["x", "y"]
    assert decoder["inputs"] == ["decoder_stem", "encoder_norm"]
    assert len(stacks) == 2  # the encoder units too
    built = modelspec.build(modelspec.loads(text))
    assert [x.name for x in built.layers] == [x.name for x in model.layers]
    built.set_weights(model.get_weights())
    rng = np.random.default_rng(0)
    data_in = [rng.normal(size=(2, 8)).astype("float32") for _ in range(2)]
    for got, want in zip(flat(built(data_in)), flat(model(data_in))):
        assert float(np.max(np.abs(got - want))) == 0.0


def test_a_branching_unit_entry_read_three_times_stays_its_entry_and_its_block_reads_branch_by_branch():
    # Three branches read each unit's entry, joined at its end: nothing cuts between the readers,
    # so the entry is the unit's own (a one-input block), not a side entry of the model's. Keras
    # orders the layers by depth (the branches interleaved); the block writes each branch through,
    # so that only a branch's first layer and the join say their inputs.
    x = keras.Input((8,), name="x")
    h = layers.Dense(8, name="stem")(x)
    for k in range(3):
        branches = [
            layers.Dense(4, name=f"mixed{k}_b{b}_2")(layers.Dense(4, name=f"mixed{k}_b{b}_1")(h))
            for b in range(3)
        ]
        h = layers.Dense(8, name=f"mixed{k}_out")(layers.Concatenate(name=f"mixed{k}_join")(branches))
    model = keras.Model(x, h)
    assert [x.name for x in model.layers][2:5] == ["mixed0_b0_1", "mixed0_b1_1", "mixed0_b2_1"]
    text = modelspec.from_keras(model).to_yaml()
    data = yaml.safe_load(text)
    ((name, block),) = data["blocks"].items()
    assert block.get("inputs", ["x"]) == ["x"]
    assert [k for k, e in block["layers"].items() if "inputs" in e] == ["b1_1", "b2_1", "join"]
    assert list(block["layers"])[:2] == ["b0_1", "b0_2"]
    assert data["layers"]["mixed0"] == {"block": name, "repeat": 3, "prefix": "mixed${i}_"}
    rebuilt_exactly(model, text)


def test_units_each_followed_by_one_node_their_names_do_not_claim_take_it_in_and_repeat():
    # Inception-ResNet's shape: each residual sum is followed by an activation named after the
    # stage, not after the unit; taken into its unit, the units chain and become one repeat.
    x = keras.Input((8,), name="x")
    h = layers.Dense(8, name="stem")(x)
    for k in range(4):
        y = layers.Dense(8, name=f"scale_{k}_dense")(h)
        y = layers.Add(name=f"scale_{k + 10}")([h, y])
        h = layers.Activation("relu", name=f"block{k + 1}_ac")(y)
    model = keras.Model(x, layers.Dense(2, name="head")(h))
    text = modelspec.from_keras(model).to_yaml()
    data = yaml.safe_load(text)
    (block,) = data["blocks"].values()
    assert [e["type"] for e in block["layers"].values()] == ["Dense", "Add", "Activation"]
    assert [e.get("repeat") for e in data["layers"].values() if "block" in e] == [4]
    rebuilt_exactly(model, text)


def test_a_residual_block_entry_read_by_its_branches_and_its_sum_is_not_a_side_input():
    # Inception-ResNet's shape, with Keras's own layer names (no prefix to join stretches by): each
    # block's entry is read by two branches and the residual sum, readers of different kinds. Were
    # it a side input, the blocks would be cut apart; they fold into one block and a repeat instead.
    x = keras.Input((8,), name="x")
    h = layers.Dense(8, name="stem")(x)
    for k in range(4):
        a = layers.Dense(4)(h)
        b = layers.Dense(4)(layers.Dense(4)(layers.Dense(4)(h)))
        m = layers.Dense(8)(layers.Concatenate()([a, b]))
        h = layers.Activation("relu", name=f"block{k}_ac")(layers.Add(name=f"scale_{k}")([h, m]))
    model = keras.Model(x, layers.Dense(2, name="head")(h))
    text = modelspec.from_keras(model).to_yaml()
    data = yaml.safe_load(text)
    (block,) = data["blocks"].values()
    assert "inputs" not in block  # one entry
    # Keras's counters decide whether the first unit's names (dense, then dense_1) keep the pattern.
    instances = [e.get("repeat", 1) for e in data["layers"].values() if "block" in e]
    assert sum(instances) == 4 and len(instances) <= 2 and max(instances) >= 3
    rebuilt_exactly(model, text)


def test_a_node_after_only_a_stage_s_last_unit_stays_out_of_the_unit():
    # ConvNeXt's shape: a downsampling layer follows the last unit of each stage only. Taking it into
    # those units would make them another shape and break each stage's repeat.
    x = keras.Input((8,), name="x")
    h = layers.Dense(8, name="stem")(x)
    for s in range(3):
        for u in range(3):
            h = residual(h, f"s{s}_u{u}")
        h = layers.Dense(8, name=f"down{s}")(h)
    model = keras.Model(x, h)
    data = modelspec.from_keras(model).to_data()
    assert [e.get("repeat") for e in data["layers"].values() if "block" in e] == [3, 3, 3]


@pytest.mark.parametrize(
    ("values", "rule"),
    [
        ([3, 3, 3], 3),
        ([16, 32, 48], "${16 * i + 16}"),
        ([2, 1, 1], "${2 if i == 0 else 1}"),
        (["conv4_block2_", "conv4_block3_", "conv4_block4_"], "conv4_block${i + 2}_"),
        (["block4b_", "block4c_", "block4d_"], "block4${'abcdefghijklmnopqrstuvwxyz'[i + 1]}_"),
        ([0.2 * b / 16 for b in (6, 7, 8)], "${0.0125 * (i + 6)}"),
        ([0.2 * b / 23 for b in (4, 5)], "${0.2 * (i + 4) / 23}"),
        ([16, 40], None),  # two values fit any line: no rule
        ([0.1, 0.35, 0.2], None),
        (["up", "down", "left"], None),
    ],
)
def test_rules_in_the_repeat_index_give_the_values_back_exactly(values, rule):
    from modelspec.expand.expr import evaluate
    from modelspec.keras.export.rules import rule as find

    assert find(values) == rule
    if isinstance(rule, str):
        assert [evaluate(rule, {"i": i}) for i in range(len(values))] == values  # floats bit for bit


def test_values_derived_from_a_param_are_written_from_it():
    from modelspec.keras.export.rules import derived

    params = {"filters": [96, 144, 240]}
    assert derived([96, 144, 240], params) == "${filters}"
    assert derived([384, 576, 960], params) == "${4 * filters}"
    assert derived([4, 6, 10], params) == "${filters // 24}"
    assert derived([[1, 1, 96], [1, 1, 144], [1, 1, 240]], params) == [1, 1, "${filters}"]
    assert derived([5, 7, 11], params) is None


def test_a_literal_dollar_brace_in_a_value_is_folded_as_written():
    # The exporter writes a value's `${` as `$${`; folding keeps spec text as it is, in a block's literal,
    # a param's value and a repeat's args alike, so the folded spec expands to the flat one.
    from modelspec.keras.export.fold import fold_data
    from modelspec.spec.dump import dump_yaml

    layers, previous = {}, "x"
    for k in range(1, 4):
        vocabulary = ["$${a}", "b"]
        layers[f"u{k}_lookup"] = {
            "type": "StringLookup",
            "inputs": previous,
            "vocabulary": vocabulary,
            "oov_token": f"$${{o{k}}}",
        }
        layers[f"u{k}_id"] = {"type": "Identity"}
        previous = f"u{k}_id"
    data = {
        "modelspec": 1,
        "name": "net",
        "inputs": {"x": {"shape": [3], "dtype": "string"}},
        "layers": layers,
    }
    folded = fold_data(data)
    assert "blocks" in folded
    flat_spec, folded_spec = (modelspec.loads(dump_yaml(d)) for d in (data, folded))
    assert folded_spec.to_data()["layers"] == flat_spec.to_data()["layers"]
    assert flat_spec.to_data()["layers"]["u2_lookup"]["oov_token"] == "$${o2}"


def test_folding_is_deterministic():
    model = model_of(16, 32, 48)
    assert modelspec.from_keras(model).to_yaml() == modelspec.from_keras(model).to_yaml()


def test_resnet50_folds_into_two_blocks_and_four_stages_within_60_lines():
    model = application("ResNet50")
    text = modelspec.from_keras(model).to_yaml()
    assert len(text.splitlines()) <= 60
    data = yaml.safe_load(text)
    assert sorted(data["blocks"]) == ["conv_block", "conv_block_1"]
    repeats = {k: e.get("repeat", 1) for k, e in data["layers"].items() if "block" in e}
    assert repeats == {
        "conv2_block1": 1, "conv2_block2": 2, "conv3_block1": 1, "conv3_block2": 3,
        "conv4_block1": 1, "conv4_block2": 5, "conv5_block1": 1, "conv5_block2": 2,
    }  # fmt: skip
    assert data["layers"]["conv4_block2"]["prefix"] == "conv4_block${i + 2}_"
    rebuilt_exactly(model, text)


@pytest.mark.parametrize("make", [lambda: model_of(16, 16, 16), staged_model, cells_model])
def test_cli_export_folds_by_default_and_expand_of_the_folded_spec_builds_the_flat_export(
    make, tmp_path, capsys
):
    model = make()
    path = tmp_path / "net.keras"
    model.save(path)
    folded, plain, expanded = tmp_path / "folded.yaml", tmp_path / "flat.yaml", tmp_path / "expanded.yaml"
    assert main(["export", str(path), "-o", str(folded)]) == 0
    assert main(["export", str(path), "--flat", "-o", str(plain)]) == 0
    assert "blocks:" in folded.read_text() and "blocks:" not in plain.read_text()
    assert main(["validate", str(folded)]) == 0
    assert main(["expand", str(folded), "-o", str(expanded)]) == 0
    capsys.readouterr()
    a, b = modelspec.build(expanded), modelspec.build(plain)
    assert [x.name for x in a.layers] == [x.name for x in b.layers]
    assert (
        modelspec.load(expanded).to_data()["layers"].keys()
        == modelspec.load(plain).to_data()["layers"].keys()
    )


def test_a_model_built_by_modelspec_exports_the_spec_it_was_built_from():
    path = SPECS / "resnet50.yaml"
    model = modelspec.build(path)
    exported = modelspec.from_keras(model)
    written = yaml.safe_load(path.read_text())
    data = exported.to_data()
    assert data["blocks"] == written["blocks"]
    assert data["params"] == {"classes": 1000, "depth": [3, 4, 6, 3]}
    assert data["layers"]["conv4"] == {"block": "stage", "filters": 256, "blocks": "${depth[2]}"}
    assert data["layers"] == written["layers"]
    info = model._modelspec_provenance.layers
    assert info["conv4-block6-c-1"] == [
        ["conv4", "stage", None],
        ["conv4-block6", "bottleneck", 5],
        ["conv4-block6-c", "conv_bn", None],
    ]
    rebuilt = modelspec.build(modelspec.loads(exported.to_yaml()))
    assert [x.name for x in rebuilt.layers] == [x.name for x in model.layers]
    assert rebuilt.count_params() == model.count_params()
    assert "blocks" not in modelspec.from_keras(model, flat=True).to_data()


def test_a_model_built_with_other_params_is_folded_from_its_graph_instead():
    model = modelspec.build(
        modelspec.load(SPECS / "resnet50.yaml", params={"depth": [1, 2, 1, 1], "classes": 10})
    )
    data = modelspec.from_keras(model).to_data()
    assert "params" not in data  # not the file's defaults: the written spec would build another model
    rebuilt_exactly(model, modelspec.from_keras(model).to_yaml())


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=[SLOW] if n in HEAVY_APPLICATIONS else []) for n in APPLICATION_FAMILIES]
)
def test_keras_applications_folded_rebuild_the_same_network(name):
    model = application(name)
    objects = application_objects()
    folded = modelspec.from_keras(model, custom_objects=objects).to_yaml()
    plain = modelspec.from_keras(model, custom_objects=objects, flat=True).to_yaml()
    assert len(folded.splitlines()) <= len(plain.splitlines())
    rebuilt_exactly(model, folded, objects)


def test_a_nested_model_called_twice_becomes_a_block_with_a_shared_instance():
    t = keras.Input((8,))
    tower = keras.Model(
        t, layers.Dense(4, name="o")(layers.Dense(16, activation="relu", name="h")(t)), name="tower"
    )
    a, b = keras.Input((8,), name="a"), keras.Input((8,), name="b")
    model = keras.Model([a, b], layers.Concatenate(name="merged")([tower(a), tower(b)]))
    text = modelspec.from_keras(model).to_yaml()
    data = yaml.safe_load(text)
    assert data["blocks"] == {
        "shared": {
            "layers": {
                "h": {"type": "Dense", "name": "h", "units": 16, "activation": "relu"},
                "o": {"type": "Dense", "name": "o", "units": 4},
            }
        }
    }
    assert data["layers"] == {
        "shared_0": {"block": "shared", "inputs": "a"},
        "shared_1": {"block": "shared", "inputs": "b", "share": "shared_0"},
        "merged": {"type": "Concatenate", "inputs": ["shared_0", "shared_1"]},
    }
    built = modelspec.build(modelspec.loads(text))
    assert built.count_params() == model.count_params() == tower.count_params()
    built.set_weights(tower.get_weights())
    data_in = [np.ones((2, 8), "float32"), np.arange(16, dtype="float32").reshape(2, 8)]
    assert float(np.max(np.abs(flat(built(data_in))[0] - flat(model(data_in))[0]))) == 0.0


@hub
@pytest.mark.parametrize(
    "name", ["ResNet", "DenseNet", "CSPNet"]
)  # residual units, dense layers, dark blocks
def test_kerashub_backbones_fold_and_rebuild_with_the_same_names_and_outputs(name):
    model = hub_backbone(name, **hub_deeper(name))
    with pytest.warns(UserWarning):  # the backbone's class is not kept: the spec builds a functional model
        folded = modelspec.from_keras(model).to_yaml()
        plain = modelspec.from_keras(model, flat=True).to_yaml()
    assert "repeat: 3" in folded
    assert len(folded.splitlines()) < len(plain.splitlines())
    built = hub_rebuilt_exactly(model, folded)
    assert sorted(x.name for x in flat_layers(built)) == sorted(x.name for x in flat_layers(model))


@hub
@pytest.mark.parametrize(
    ("name", "side"),
    [("Bert", "padding_mask"), ("GPT2", "padding_mask"), ("Bart", "encoder"), ("Whisper", "encoder")],
)
def test_kerashub_transformer_layers_fold_into_a_repeat_that_passes_the_side_input_along(name, side):
    # Each transformer layer is one node that also reads the padding mask (a model input), and a
    # decoder layer the encoder's output too: the run becomes one instance of a one-layer block with
    # several inputs, repeated, the side inputs given to every repeat.
    model = hub_backbone(name, **hub_deeper(name))
    with pytest.warns(UserWarning):
        text = modelspec.from_keras(model).to_yaml()
    data = yaml.safe_load(text)
    (stack,) = [e for n, e in data["layers"].items() if e.get("repeat") == 3 and "encoder" not in n]
    assert len(data["blocks"][stack["block"]]["layers"]) == 1
    if side == "encoder":
        side = data["outputs"]["encoder_sequence_output"]
    assert stack["inputs"][1] == side
    built = hub_rebuilt_exactly(model, text)
    assert sorted(x.name for x in built.layers) == sorted(
        x.name for x in model.layers
    )  # maybe walked depth first
