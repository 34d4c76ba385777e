"""The spec stage: plain data to ModelSpec, and back to YAML."""

from __future__ import annotations

import pytest
from conftest import SPECS

import modelspec
from modelspec import InputSpec, ModelSpec


@pytest.mark.parametrize("path", sorted(SPECS.glob("*.yaml")), ids=lambda p: p.name)
def test_round_trip_through_yaml(path):
    spec = modelspec.load(path)
    again = modelspec.loads(spec.to_yaml())
    assert again == spec
    assert again.to_yaml() == spec.to_yaml()


def test_equality_ignores_where_a_spec_came_from():
    text = (SPECS / "siamese.yaml").read_text()
    assert modelspec.loads(text, source="a.yaml") == modelspec.loads(text, source="b.yaml")
    assert modelspec.loads(text) != modelspec.loads(text.replace("units: 64", "units: 65"))


def test_input_shorthand():
    spec = modelspec.loads("modelspec: 1\ninputs: {x: [null, 4]}\nlayers: [{type: Dense, units: 1}]\n")
    assert spec.inputs["x"] == InputSpec(shape=[None, 4])
    assert spec.inputs["x"].dtype == "float32"


def test_forms():
    stack = modelspec.load(SPECS / "seed_sequential.yaml")
    dag = modelspec.load(SPECS / "ticket_router.yaml")
    assert stack.sequential and not dag.sequential
    assert dag.layers["title_emb"].args == {"input_dim": 10000, "output_dim": 64}
    assert dag.layers["title_emb"].inputs == "title"


def test_model_spec_is_the_pydantic_model():
    spec = modelspec.load(SPECS / "iris.yaml")
    assert isinstance(spec, ModelSpec)
    assert spec.compile.metrics == ["accuracy"]
    assert spec.train.data.target == "species"
    assert spec.source.name.endswith("iris.yaml")
    assert ModelSpec.model_validate(spec.to_data()) == spec


def test_specs_made_in_python_are_checked_like_files():
    from modelspec import LayerSpec

    good = ModelSpec(
        modelspec=1, inputs={"x": InputSpec(shape=[3])}, layers={"d": LayerSpec(type="Dense", units=3)}
    )
    assert modelspec.build(good).output_shape == (None, 3)
    bad = ModelSpec(
        modelspec=1, inputs={"x": InputSpec(shape=[3])}, layers={"d": LayerSpec(type="Dens", units=3)}
    )
    with pytest.raises(modelspec.SpecError) as info:
        modelspec.check(bad)
    (problem,) = info.value.problems
    assert problem.path == ("layers", "d", "type") and "unknown layer type 'Dens'" in problem.message
    assert problem.hint == "did you mean 'Dense'?"


def test_a_spec_changed_in_python_after_loading_is_checked_again():
    spec = modelspec.load(SPECS / "iris.yaml")
    spec.layers[0].type = "Dens"  # the first layer, at line 11 of the file
    with pytest.raises(modelspec.SpecError) as info:
        modelspec.check(spec)
    (problem,) = info.value.problems
    assert problem.code == "unknown-layer-type"
    assert problem.file.endswith("iris.yaml") and problem.line == 11
    assert problem.hint == "did you mean 'Dense'?"
    with pytest.raises(modelspec.SpecError):
        modelspec.build(spec)


def test_an_entry_added_in_python_is_located_by_its_place():
    spec = modelspec.load(SPECS / "siamese.yaml")
    spec.layers["left_code"] = modelspec.LayerSpec(type="Dense", units=32, unit=2)
    with pytest.raises(modelspec.SpecError) as info:
        modelspec.check(spec)
    (problem,) = info.value.problems
    assert problem.code == "unknown-argument" and problem.path == ("layers", "left_code", "unit")
    assert problem.line is not None  # the key exists in the file: its line


def test_written_yaml_keeps_a_mapping_of_leaves_on_one_line_when_its_line_fits():
    from modelspec.spec.dump import VALUE_WIDTH, WIDTH, dump_yaml

    conv = {"type": "Conv2D", "name": "conv2d_${conv2d + 1}", "inputs": "activation_1", "filters": 96}
    conv |= {"kernel_size": [3, 3], "padding": "same", "use_bias": False}  # 132 characters in flow style
    (line,) = dump_yaml({"layers": {"c2": conv}}).splitlines()[1:]
    assert line.endswith("use_bias: false}") and VALUE_WIDTH < len(line) <= WIDTH  # its line fits
    deeper = dump_yaml({"blocks": {"mixed": {"layers": {"c2": conv}}}})
    assert deeper.count("\n") == 4 + len(conv)  # there it does not: one argument a line
    long_name = "separable_conv_2_reduction_left1_stem_1"  # a short layer keeps its line under a long name
    short = {"type": "SeparableConv2D", "inputs": "activation_2", "filters": 11, "kernel_size": 5}
    (line,) = dump_yaml({"blocks": {"cell": {"layers": {long_name: short}}}}).splitlines()[3:]
    assert line.endswith("kernel_size: 5}")
