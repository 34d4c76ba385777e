"""The JSON Schema: generated, committed, fresh, valid Draft 2020-12, and as strict as validation."""

from __future__ import annotations

import json

import jsonschema
import pytest
import yaml
from conftest import ROOT, SPECS

from modelspec import catalog
from modelspec.cli import main
from modelspec.spec.schema import schema, schema_text

COMMITTED = ROOT / "schemas" / "modelspec.schema.json"


@pytest.fixture(scope="module")
def validator():
    return jsonschema.Draft202012Validator(json.loads(COMMITTED.read_text()))


def test_committed_schema_is_fresh():
    assert COMMITTED.read_text() == schema_text(), "run: modelspec schema -o schemas/modelspec.schema.json"


def test_schema_passes_the_metaschema():
    jsonschema.Draft202012Validator.check_schema(schema())


@pytest.mark.parametrize("path", sorted(SPECS.glob("*.yaml")), ids=lambda p: p.name)
def test_schema_accepts_every_example(validator, path):
    errors = list(validator.iter_errors(yaml.safe_load(path.read_text())))
    assert not errors, [e.message for e in errors]


@pytest.mark.parametrize("path", sorted(SPECS.glob("*.yaml")), ids=lambda p: p.name)
def test_examples_point_editors_at_the_schema(path):
    assert (
        path.read_text().splitlines()[0] == "# yaml-language-server: $schema=../schemas/modelspec.schema.json"
    )


@pytest.mark.parametrize(
    "entry",
    [
        {"type": "Dens", "units": 3},  # unknown layer type
        {"type": "Dense", "unit": 3},  # unknown argument of a known type
        {"type": "Dense"},  # a required argument missing
        {"type": "Dense", "units": "three"},  # a wrong type
        {"type": "Lambda", "function": "x"},  # a refused type
        {"share": "a", "units": 3},  # a share entry with arguments
    ],
)
def test_schema_rejects(validator, entry):
    doc = {"modelspec": 1, "inputs": {"x": [3]}, "layers": {"a": {"type": "Dense", "units": 2}, "b": entry}}
    assert not validator.is_valid(doc)


def test_each_layer_type_has_its_arguments_and_docs():
    defs = schema()["$defs"]
    dense = defs["layer.Dense"]
    assert dense["additionalProperties"] is False
    assert dense["required"] == ["units"]
    assert dense["properties"]["use_bias"]["default"] is True
    assert "bias" in dense["properties"]["use_bias"]["description"]
    assert "relu" in dense["properties"]["activation"]["anyOf"][0]["enum"]
    assert dense["properties"]["use_bias"]["description"].endswith("Default: true.")  # hover shows no default
    assert dense["properties"]["units"]["description"].endswith("Required.")
    type_names = defs["LayerSpec"]["properties"]["type"]
    documented = {branch["const"]: branch for branch in type_names["anyOf"] if "const" in branch}
    assert set(documented) == set(catalog.layer_types())
    assert "Lambda" not in documented
    hover = documented["Dense"]["markdownDescription"]  # what an editor shows on `type: Dense`
    assert catalog.layer("Dense").doc in hover
    assert "- `units` (required)" in hover and "- `use_bias`: `true`" in hover


@pytest.mark.parametrize("key,name", [("type", "Dense"), ("op", "add")])
def test_names_are_checked_by_pattern_not_enum(key, name):
    """No enum: yaml-language-server would list every name on hover and in the unknown-name error."""
    names = schema()["$defs"]["LayerSpec"]["properties"][key]
    assert "enum" not in names and "Unknown" in names["patternErrorMessage"]
    check = jsonschema.Draft202012Validator(names)
    assert check.is_valid(name)
    for wrong in (name[:-1], name + "x", f"x{name}", None, 3):
        failed = {e.validator for e in check.iter_errors(wrong)}
        assert failed in ({"pattern"}, {"type"}), failed  # the anyOf never fails


def test_schema_command_prints_and_writes(tmp_path, capsys):
    assert main(["schema"]) == 0
    assert json.loads(capsys.readouterr().out)["$schema"].endswith("2020-12/schema")
    out = tmp_path / "s.json"
    assert main(["schema", "-o", str(out)]) == 0
    assert out.read_text() == schema_text()


def test_schema_into_a_closed_pipe_ends_quietly():
    import subprocess
    import sys

    from conftest import ROOT

    result = subprocess.run(
        f"{sys.executable} -m modelspec schema | head -c 10",
        shell=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.stdout == '{\n "$schem'
    assert "error" not in result.stderr


def test_schema_accepts_blocks_instances_and_expressions(validator):
    doc = yaml.safe_load((SPECS / "resnet50.yaml").read_text())
    assert validator.is_valid(doc)
    assert validator.is_valid(
        yaml.safe_load((SPECS / "blocks" / "common.yaml").read_text())
    )  # a block library
    dense = {"type": "Dense", "units": "${2 * width}", "activation": "${act}", "use_bias": "${bias}"}
    assert validator.is_valid(
        {"modelspec": 1, "params": {"width": 4}, "inputs": {"x": [3]}, "layers": [dense]}
    )
    assert not validator.is_valid(
        {"modelspec": 1, "inputs": {"x": [3]}, "layers": [{"type": "Dense", "units": "2 * width"}]}
    )  # a string that is not an expression is still not an integer
    assert not validator.is_valid(
        {"modelspec": 1, "inputs": {"x": [3]}, "layers": [{"block": "b", "type": "Dense", "units": 2}]}
    )  # an instance is not a layer
    assert not validator.is_valid({"modelspec": 1, "inputs": {"x": [3]}})  # neither layers nor blocks
