"""The expansion stage: params, variants, blocks, imports, expressions; names, scopes, errors, round trips."""

from __future__ import annotations

import time

import pytest
from conftest import CASES, HANG, SHARED_TOWER, SPECS, run_modelspec

import modelspec
from modelspec.cli import main
from modelspec.expand import MAX_IMPORT_DEPTH, OverrideError

EXAMPLES = sorted(SPECS.glob("*.yaml"))
BLOCK_EXAMPLES = ["resnet50", "mobilenet_v2", "transformer_classifier", "unet", "small_resnet"]


def problems(text: str, **kw) -> list[modelspec.Problem]:
    with pytest.raises(modelspec.SpecError) as info:
        modelspec.loads(text, source="s.yaml", **kw)
    return info.value.problems


def flat_layers(text: str, **kw):
    return modelspec.loads(text, source="s.yaml", **kw).layers


# -- round trips -------------------------------------------------------------------------


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_expand_writes_a_plain_spec_that_reads_back_equal(path, tmp_path, capsys):
    out = tmp_path / "flat.yaml"
    assert main(["expand", str(path), "-o", str(out)]) == 0
    text = out.read_text()
    assert "${" not in text and "block:" not in text and "params:" not in text
    flat = modelspec.load(path)
    assert modelspec.load(out) == flat
    assert modelspec.loads(flat.to_yaml()) == flat  # expanding a plain spec gives itself
    again = tmp_path / "again.yaml"
    assert main(["expand", str(out), "-o", str(again)]) == 0
    assert again.read_text().splitlines()[1:] == text.splitlines()[1:]  # all but the header naming the file


@pytest.mark.parametrize("name", ["small_resnet", "unet"])
def test_the_expanded_spec_builds_the_same_model(name, tmp_path):
    out = tmp_path / "flat.yaml"
    assert main(["expand", str(SPECS / f"{name}.yaml"), "-o", str(out)]) == 0
    a, b = modelspec.build(SPECS / f"{name}.yaml"), modelspec.build(out)
    assert [type(x).__name__ for x in a.layers] == [type(x).__name__ for x in b.layers]
    assert [x.name for x in a.layers] == [x.name for x in b.layers]
    assert a.count_params() == b.count_params()


def test_expand_prints_and_names_its_settings(capsys):
    assert (
        main(["expand", str(SPECS / "resnet50.yaml"), "--variant", "resnet101", "--set", "classes=10"]) == 0
    )
    out = capsys.readouterr().out
    assert out.startswith("# ") and "--variant resnet101 --set classes=10" in out.splitlines()[0]
    flat = modelspec.loads(out)
    assert flat.layers["predictions"].args["units"] == 10
    # ResNet101's stages: 3, 4, 23 and 3 residual units, conv4 the long one.
    units = {stage: sorted({int(n.split("-")[1][5:]) for n in flat.layers if n.startswith(f"{stage}-block")})
             for stage in ("conv2", "conv3", "conv4", "conv5")}  # fmt: skip
    assert units == {
        "conv2": [1, 2, 3],
        "conv3": [1, 2, 3, 4],
        "conv4": list(range(1, 24)),
        "conv5": [1, 2, 3],
    }
    assert flat.layers["conv4-block23-add"].inputs == ["conv4-block22-out", "conv4-block23-c-1"]


# -- names ----------------------------------------------------------------------------


def test_expanded_nodes_are_named_instance_node():
    layers = modelspec.load(SPECS / "resnet50.yaml").layers
    assert "conv1-0" in layers  # conv1's chain block, position 0
    assert (
        "conv2-block1-shortcut-0" in layers
    )  # stage conv2, the instance named block1 (i + 1), node shortcut
    assert "conv4-block6-out" in layers and "conv4-block7-out" not in layers
    assert all("." not in name for name in layers)  # names work on every backend
    model = modelspec.build(SPECS / "small_resnet.yaml")
    assert {"stage1-0-a-0", "stage1-1-out", "stage2-1-add"} <= {layer.name for layer in model.layers}


def test_unnamed_instances_in_a_list_follow_keras_counter_rule():
    text = """
modelspec: 1
inputs: {x: [4]}
blocks:
  dense_relu:
    params: {units: 8}
    layers:
      - {type: Dense, units: "${units}"}
      - {type: ReLU}
layers:
  - {block: dense_relu}
  - {block: dense_relu, units: 4}
  - {block: dense_relu, name: last, units: 2}
"""
    names = [entry.name for entry in flat_layers(text)]
    assert names == ["dense_relu-0", "dense_relu-1", "dense_relu_1-0", "dense_relu_1-1", "last-0", "last-1"]
    assert modelspec.build(modelspec.loads(text)).output_shape == (None, 2)


def test_a_layer_name_in_a_dag_block_is_the_keras_name():
    text = """
modelspec: 1
inputs: {x: [4]}
blocks:
  head:
    layers:
      dense: {type: Dense, units: 3, name: "${label}_dense", inputs: x}
    params: {label: required}
layers:
  h: {block: head, label: species, inputs: x}
"""
    assert list(flat_layers(text)) == ["species_dense"]


# -- scope, params, variants --------------------------------------------------------------


def test_set_and_variant_override_params_and_unknown_keys_are_errors():
    text = (SPECS / "resnet50.yaml").read_text()
    spec = modelspec.loads(text, params={"classes": 7}, variant="resnet152")
    assert spec.layers["predictions"].args["units"] == 7 and "conv3-block8-out" in spec.layers
    (p,) = problems(text, params={"clases": 7})
    assert p.code == "unknown-param" and p.hint == "did you mean 'classes'?"
    (p,) = problems(text, variant="resnet105")
    assert p.code == "unknown-variant" and p.hint == "did you mean 'resnet152'?"


def test_cli_set_and_variant(capsys):
    assert main(["validate", str(SPECS / "mobilenet_v2.yaml"), "--set", "alpha=0.75"]) == 0
    assert (
        main(["validate", str(SPECS / "mobilenet_v2.yaml"), "--set", "alfa=0.75"]) == 2
    )  # the command line is wrong
    assert "did you mean 'alpha'?" in capsys.readouterr().err
    assert main(["validate", str(SPECS / "mobilenet_v2.yaml"), "--set", "alpha"]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err
    assert main(["validate", str(SPECS / "mobilenet_v2.yaml"), "--set", "alpha=[1, 2"]) == 2  # not YAML
    err = capsys.readouterr().err
    assert "--set alpha: invalid YAML" in err and "Traceback" not in err


def test_block_bodies_see_their_params_then_their_file_params_and_i_n():
    text = """
modelspec: 1
params: {width: 16, outer: 100}
inputs: {x: [4]}
blocks:
  layer:
    params: {units: "${width * 2}", scale: 1}
    layers:
      - {type: Dense, units: "${units * scale + i}", name: "d${i}of${n}"}
layers:
  - {block: layer, repeat: 3, scale: "${i + 1}"}
"""
    layers = flat_layers(text)
    assert [e.args["units"] for e in layers] == [32, 65, 98]
    assert [e.name for e in layers] == ["layer-0-d0of3", "layer-1-d1of3", "layer-2-d2of3"]


def test_imported_blocks_see_their_own_files_params(tmp_path):
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "inner.yaml").write_text(
        "modelspec: 1\nparams: {units: 5}\nblocks:\n  d:\n    layers:\n      - {type: Dense, units: '${units}'}\n"
    )
    (tmp_path / "lib" / "outer.yaml").write_text(
        "modelspec: 1\nimports: {inner: inner.yaml}\nblocks:\n  two:\n    layers:\n"
        "      - {block: inner.d}\n      - {block: inner.d}\n"
    )
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "modelspec: 1\nparams: {units: 99}\nimports: {lib: lib/outer.yaml}\ninputs: {x: [3]}\n"
        "layers:\n  a: {block: lib.two, inputs: x}\n"
    )
    layers = modelspec.load(spec).layers
    assert [e.args["units"] for e in layers.values()] == [5, 5]  # lexical: never the importer's 99
    assert list(layers) == ["a-0-0", "a-1-0"]


def test_import_cycles_and_missing_files_are_located_at_the_import(tmp_path):
    block = "blocks:\n  d:\n    layers:\n      - {type: Dense, units: 2}\n"
    (tmp_path / "a.yaml").write_text("modelspec: 1\nimports: {b: b.yaml}\n" + block)
    (tmp_path / "b.yaml").write_text("modelspec: 1\nimports:\n  a: a.yaml\n" + block)
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "modelspec: 1\nimports:\n  a: a.yaml\ninputs: {x: [3]}\nlayers:\n  d: {type: Dense, units: 2}\n"
    )
    with pytest.raises(modelspec.SpecError) as info:
        modelspec.load(spec)
    (p,) = info.value.problems
    assert p.code == "import-cycle" and p.file.endswith("b.yaml") and p.line == 3
    assert "a.yaml -> b.yaml -> a.yaml" in p.message
    spec.write_text(
        "modelspec: 1\nimports:\n  a: /etc/passwd\ninputs: {x: [3]}\nlayers:\n  d: {type: Dense, units: 2}\n"
    )
    with pytest.raises(modelspec.SpecError) as info:
        modelspec.load(spec)
    assert info.value.problems[0].code == "import-file" and info.value.problems[0].line == 3


# -- if, else, references ---------------------------------------------------------------


def test_if_false_passes_the_input_on_or_else():
    text = """
modelspec: 1
params: {residual: false, norm: false}
inputs: {x: [8]}
layers:
  a: {type: Dense, units: 8, inputs: x}
  norm: {type: LayerNormalization, if: "${norm}"}
  add: {type: Add, inputs: [x, norm], if: "${residual}", else: norm}
  out: {type: Dense, units: 1}
"""
    layers = flat_layers(text)
    assert list(layers) == ["a", "out"]
    assert layers["out"].inputs == "a"  # add and norm are left out: out takes a
    both = flat_layers(text, params={"residual": True, "norm": True})
    assert both["add"].inputs == ["x", "norm"] and both["out"].inputs == "add"


def test_instances_with_several_outputs_are_indexed():
    layers = modelspec.load(SPECS / "unet.yaml").layers
    assert layers["up3-merge"].inputs == ["up3-upsample", "down3-features-1"]
    assert layers["down2-features-0"].inputs == "down1-pool"


def test_escaped_dollar_is_a_literal_and_survives_a_round_trip():
    text = 'modelspec: 1\ninputs: {x: [3]}\nlayers:\n  d: {type: Dense, units: 2}\ndescription: "cost in $${dollars}"\n'
    spec = modelspec.loads(text)
    assert spec.description == "cost in ${dollars}"  # '$${' is a literal '${'
    assert modelspec.loads(spec.to_yaml()).description == "cost in ${dollars}"  # written back as '$${'
    text = 'modelspec: 1\ninputs: {x: [3]}\nlayers:\n  d: {type: Dense, units: 2, name_scope: "a$${b}"}\n'
    with pytest.raises(modelspec.SpecError):
        modelspec.loads(text)  # not an argument of Dense; the point is the value seen is "a${b}"
    spec = modelspec.loads(
        "modelspec: 1\ninputs: {x: [3]}\nlayers:\n  d: {type: Dense, units: 2}\noutputs: \"${'d'}\"\n"
    )
    assert spec.outputs == "d"


def test_the_model_name_description_and_seed_may_be_expressions():
    text = """modelspec: 1
name: "mlp${width}"
description: "a ${width}-wide layer"
seed: "${width * 2}"
params: {width: 16}
variants: {wide: {width: 64}}
inputs: {x: {shape: [4]}}
layers:
  - {type: Dense, units: "${width}"}
"""
    spec = modelspec.loads(text, variant="wide")
    assert (spec.name, spec.description, spec.seed) == ("mlp64", "a 64-wide layer", 128)


def test_a_model_name_expression_is_checked_once_expanded():
    text = 'modelspec: 1\nname: "net.${w}"\nparams: {w: 4}\ninputs: {x: [3]}\nlayers: [{type: Dense, units: 2}]\n'
    with pytest.raises(modelspec.SpecError) as info:
        modelspec.loads(text)
    (problem,) = info.value.problems
    assert (problem.path, problem.line) == (("name",), 2)
    assert "'net.4' is not a valid name" in problem.message


# -- errors through blocks --------------------------------------------------------------


def test_a_problem_inside_a_block_names_its_instances_once():
    with pytest.raises(modelspec.SpecError) as info:
        modelspec.load(CASES / "block_error_in_instances.yaml")
    (p,) = info.value.problems
    assert (
        p.code == "unknown-argument" and p.line == 9 and p.path == ("blocks", "mlp", "layers", 0, "activaton")
    )
    assert p.notes[0].startswith("in a, repeat 1 of 3, at ") and p.notes[0].endswith(
        "block_error_in_instances.yaml:11:3"
    )
    assert p.notes[-1] == "the same problem in 2 more instances"
    assert "note: in a, repeat 1 of 3" in info.value.report()


def test_errors_in_expanded_nodes_point_into_the_block():
    text = """modelspec: 1
inputs: {x: [8]}
blocks:
  pair:
    params: {units: required, rate: 0.1}
    layers:
      a: {type: Dense, units: "${units}", inputs: x}
      drop: {type: Dropout, rate: "${rate}"}
      add: {type: Add, inputs: [x, drop]}
layers:
  p: {block: pair, units: 4, inputs: x}
  q: {block: pair, units: 8, rate: 1.5}
"""
    with pytest.raises(modelspec.SpecError) as info:  # found without Keras: the shapes do not match
        modelspec.loads(text, source="s.yaml")
    (p,) = info.value.problems
    assert p.code == "shape-mismatch" and p.line == 9 and p.notes == ("in p, at s.yaml:11:3",)
    fixed = text.replace("units: 4", "units: 8")
    with pytest.raises(modelspec.SpecError) as info:  # found by Keras while building: a rate of 1.5
        modelspec.build(modelspec.loads(fixed, source="s.yaml"))
    (p,) = info.value.problems
    assert p.code == "keras-build" and p.line == 8 and p.notes == ("in q, at s.yaml:12:3",)


def test_a_repeat_is_named_by_its_count_in_the_notes():
    text = """modelspec: 1
inputs: {x: [4]}
blocks:
  lin:
    layers:
      - {type: Dense, units: "${[4, 4, 4][i]}"}
layers:
  stage2: {block: lin, repeat: 4}
"""
    (p,) = problems(text)
    assert p.code == "expr-value" and p.line == 6 and p.column == 42
    assert p.notes == ("in stage2, repeat 4 of 4, at s.yaml:8:3",)  # as the design writes it


def test_an_instance_s_own_mistakes_are_reported_when_its_input_is_broken():
    text = """modelspec: 1
inputs: {x: [4]}
blocks:
  lin:
    params: {units: required, activation: relu}
    layers:
      - {type: Dense, units: "${units}", activation: "${activation}"}
layers:
  a: {block: lin, unit: 3}
  b: {block: lin, units: 3, activaton: tanh}
"""
    found = {(p.line, p.code, p.hint) for p in problems(text)}
    assert found == {
        (9, "unknown-param", "did you mean 'units'?"),
        (10, "unknown-param", "did you mean 'activation'?"),
    }


def test_expression_errors_point_at_their_column_through_quoted_escapes():
    text = """modelspec: 1
params: {w: 4}
inputs: {x: [4]}
layers:
  a: {type: Dense, units: 2, name_scope: "a\\tb\\u00e9${bogus}"}
  b: {type: Dense, units: 2, name_scope: 'it''s ${w + nope}'}
"""
    found = {(p.line, p.column, p.end_column) for p in problems(text)}
    assert found == {(5, 55, 60), (6, 55, 59)}


def test_a_literal_dollar_brace_in_the_description_survives_a_round_trip():
    text = 'modelspec: 1\ndescription: "a $${b} ${u}"\nparams: {u: 2}\ninputs: {x: [3]}\nlayers:\n  - {type: Dense, units: "${u}"}\n'
    spec = modelspec.loads(text)
    assert spec.description == "a ${b} 2"  # the escape is a literal, the expression a value
    again = modelspec.loads(spec.to_yaml())
    assert again == spec and again.description == "a ${b} 2"


def test_expression_bombs_are_refused_fast():
    for bomb in ("'a' * 10 ** 12", "[1] * 10 ** 9", "9 ** 9 ** 9", "(" * 5000 + "1" + ")" * 5000):
        text = f'modelspec: 1\ninputs: {{x: [3]}}\nlayers:\n  d: {{type: Dense, units: "${{{bomb}}}"}}\n'
        start = time.perf_counter()
        (p,) = problems(text)
        assert time.perf_counter() - start < HANG  # a hang is the failure
        assert p.code in ("expr-limit", "expr-syntax") and p.line == 4


def test_repeat_bombs_are_refused_fast():
    text = """modelspec: 1
inputs: {x: [4]}
blocks:
  d:
    layers:
      - {type: Dense, units: 4}
layers:
  a: {block: d, repeat: 1000000000, inputs: x}
"""
    start = time.perf_counter()
    (p,) = problems(text)
    assert p.code == "expand-limit" and p.line == 8 and p.path == ("layers", "a", "repeat")
    assert time.perf_counter() - start < HANG  # a hang is the failure


def test_block_libraries_validate_and_do_not_build(capsys):
    assert main(["validate", str(SPECS / "blocks" / "common.yaml")]) == 0
    assert "block library: 2 blocks" in capsys.readouterr().out
    assert main(["build", str(SPECS / "blocks" / "common.yaml"), "-o", "/tmp/never.keras"]) == 1
    assert "block library has no layers" in capsys.readouterr().err


def test_a_block_leaves_out_the_nodes_its_chosen_outputs_do_not_use():
    # The design's own pattern: outputs chosen by a param. The node not chosen is computed by nothing.
    text = """modelspec: 1
inputs: {x: [8]}
blocks:
  res:
    params: {residual: true}
    layers:
      d: {type: Dense, units: 8, inputs: x}
      bn: {type: BatchNormalization}
      add: {op: add, inputs: [x, bn]}
    outputs: "${'add' if residual else 'bn'}"
layers:
  plain: {block: res, residual: false, inputs: x}
  skip: {block: res, inputs: plain}
  head: {type: Dense, units: 1}
"""
    layers = flat_layers(text)
    assert list(layers) == ["plain-d", "plain-bn", "skip-d", "skip-bn", "skip-add", "head"]
    assert layers["skip-d"].inputs == "plain-bn"
    model = modelspec.build(modelspec.loads(text))
    assert [layer.name for layer in model.layers if layer.name.startswith("plain")] == ["plain-d", "plain-bn"]


def test_a_node_written_at_top_level_and_used_by_nothing_is_still_an_error():
    text = "modelspec: 1\nparams: {r: false}\ninputs: {x: [4]}\nlayers:\n  d: {type: Dense, units: 4}\n  add: {op: add, inputs: [x, d]}\n  out: {type: Dense, units: 1, inputs: \"${'add' if r else 'd'}\"}\n"
    (p,) = problems(text)
    assert p.code == "unused-node" and p.line == 6


def test_expand_into_another_folder_warns_about_each_relative_path(tmp_path, capsys):
    assert main(["expand", str(SPECS / "iris.yaml"), "-o", str(tmp_path / "flat.yaml")]) == 0
    err = capsys.readouterr().err
    assert (
        "iris.yaml:23:11: warning: train.data.path: 'data/iris.csv' is read against the spec's folder" in err
    )
    assert repr(str(tmp_path / "data" / "iris.csv")) in err  # what the copy would read
    beside = SPECS / "flat-iris-test.yaml"
    try:
        assert main(["expand", str(SPECS / "iris.yaml"), "-o", str(beside)]) == 0
        assert "warning" not in capsys.readouterr().err
    finally:
        beside.unlink(missing_ok=True)


# -- expansion bounded by its work -----------------------------------------------------------


def fan_out(levels: int, leaf: str = "{type: Dense, units: 4}") -> str:
    """A DAG block that uses the block below it twice, ``levels`` deep: 2**(levels + 1) - 1 layers."""
    lines = ["modelspec: 1", "inputs: {x: {shape: [4]}}", "blocks:", f"  b0: {{layers: {{d: {leaf}}}}}"]
    for k in range(1, levels + 1):
        lines.append(
            f"  b{k}: {{layers: {{l: {{block: b{k - 1}}}, r: {{block: b{k - 1}, inputs: x}}, "
            "add: {type: Add, inputs: [l, r]}}}"
        )
    return "\n".join([*lines, "layers:", f"  top: {{block: b{levels}, inputs: x}}"]) + "\n"


def fan_out_list(levels: int, leaf: str = "{type: Dense, units: 4}") -> str:
    """A chain block that uses the block below it twice, ``levels`` deep, in a list-form spec."""
    lines = ["modelspec: 1", "inputs: {x: {shape: [4]}}", "blocks:", f"  b0: {{layers: [{leaf}]}}"]
    lines += [f"  b{k}: {{layers: [{{block: b{k - 1}}}, {{block: b{k - 1}}}]}}" for k in range(1, levels + 1)]
    return "\n".join([*lines, "layers:", f"  - {{block: b{levels}}}"]) + "\n"


NESTED_REPEATS = """modelspec: 1
params: {outer: 100000, inner: 100000}
inputs: {x: {shape: [4]}}
blocks:
  empty: {layers: []}
  many: {layers: [{block: empty, repeat: REPEAT}]}
layers:
  - {block: many, repeat: OUTER}
  - {type: Dense, units: 2}
"""

BOMBS = {
    "fan-out-24-levels": (fan_out(24), 30, "layers.top"),
    "fan-out-40-levels-list": (fan_out_list(40), 46, "layers[0]"),
    "fan-out-of-if-false": (fan_out_list(40, "{type: Dense, units: 4, if: false}"), 46, "layers[0]"),
    "repeat-of-repeat-of-empty": (
        NESTED_REPEATS.replace("REPEAT", "100000").replace("OUTER", "100000"),
        8,
        "layers[0].repeat",
    ),
    "repeat-of-repeat-by-params": (
        NESTED_REPEATS.replace("REPEAT", '"${inner}"').replace("OUTER", '"${outer}"'),
        8,
        "layers[0].repeat",
    ),
}


@pytest.mark.parametrize("name", BOMBS)
def test_expansion_bombs_are_refused_with_one_located_error(name, tmp_path):
    text, line, path = BOMBS[name]
    spec = tmp_path / "bomb.yaml"
    spec.write_text(text)
    done = run_modelspec(["validate", str(spec)], memory=1 << 30, timeout=20)
    assert done.returncode == 1, done.stderr
    assert done.stderr.count("error:") == 1 and "1 error" in done.stderr, done.stderr
    assert f"bomb.yaml:{line}:" in done.stderr and f"error: {path}: " in done.stderr
    assert "steps" in done.stderr and "Traceback" not in done.stderr


def test_the_step_limit_stops_the_work_even_where_it_cannot_be_foreseen(monkeypatch):
    monkeypatch.setattr("modelspec.expand.budget.MAX_STEPS", 5_000)  # the same rule, sooner
    # The blocks are named by expressions: nothing is known before expanding them, so counting stops it.
    lines = [
        "modelspec: 1",
        "inputs: {x: {shape: [4]}}",
        "blocks:",
        "  b0: {layers: [{type: Dense, units: 4, if: false}]}",
    ]
    lines += [
        f"  b{k}: {{layers: [{{block: \"${{'b{k - 1}'}}\"}}, {{block: \"${{'b{k - 1}'}}\"}}]}}"
        for k in range(1, 30)
    ]
    text = "\n".join([*lines, "layers:", "  - {block: b29}"]) + "\n"
    (p,) = problems(text)
    assert p.code == "expand-limit" and "an expansion may take 5,000" in p.message
    assert p.notes  # inside the instances that led there


def test_a_legal_fan_out_expands_every_layer():
    spec = modelspec.loads(fan_out(10), source="s.yaml")
    assert len(spec.layers) == 2**11 - 1
    assert "top-l-l-l-l-l-l-l-l-l-l-d" in spec.layers and "top-r-r-r-r-r-r-r-r-r-r-d" in spec.layers
    assert spec.layers["top-add"].inputs == ["top-l-add", "top-r-add"]


def test_in_a_list_a_failed_instance_stops_the_next():
    text = """modelspec: 1
inputs: {x: [4]}
blocks:
  bad: {layers: [{type: Dense, units: "${nope}"}]}
  other: {layers: [{type: Dense, units: "${other_nope}"}]}
layers:
  - {block: bad}
  - {block: other}
  - {type: Dense, units: 2}
"""
    (p,) = problems(text)  # 'other' is not expanded on a broken input: its own fault waits for the next run
    assert p.code == "expr-unknown-name" and p.line == 4


# -- imports are paths like any other --------------------------------------------------------

LIBRARY = "modelspec: 1\nblocks:\n  d:\n    layers:\n      - {type: Dense, units: 2}  # SECRET-LINE\n"
USES_LIB = (
    "modelspec: 1\nimports:\n  lib: {path}\ninputs: {{x: [3]}}\nlayers:\n  d: {{block: lib.d, inputs: x}}\n"
)


@pytest.mark.parametrize("how", ["dotdot", "symlink"])
def test_an_import_outside_is_refused_unread_unless_allowed(how, tmp_path, monkeypatch):
    project = tmp_path / "project"
    project.mkdir()
    (tmp_path / "secret.yaml").write_text(LIBRARY.replace("units: 2", "units: 2, bad: ["))  # not even YAML
    written = "../secret.yaml"
    if how == "symlink":
        (project / "lib.yaml").symlink_to(tmp_path / "secret.yaml")
        written = "lib.yaml"
    (project / "spec.yaml").write_text(USES_LIB.format(path=written))
    done = run_modelspec(["validate", "spec.yaml"], cwd=project)
    assert done.returncode == 1
    assert "spec.yaml:3:" in done.stderr and "path-outside" not in done.stderr  # the message, not the code
    assert (
        "outside the spec's folder and the working folder" in done.stderr and "--allow-outside" in done.stderr
    )
    assert "SECRET" not in done.stderr + done.stdout and "bad: [" not in done.stderr
    monkeypatch.chdir(project)
    with pytest.raises(modelspec.SpecError) as info:
        modelspec.load("spec.yaml")
    (p,) = info.value.problems
    assert p.code == "path-outside" and p.line == 3 and p.path == ("imports", "lib")
    (tmp_path / "secret.yaml").write_text(LIBRARY)
    with modelspec.path_policy(allow_outside=True):
        assert modelspec.load("spec.yaml").layers["d-0"].args["units"] == 2


def test_an_import_chain_deeper_than_the_limit_is_located(tmp_path):
    for i in range(1000):
        (tmp_path / f"f{i}.yaml").write_text(
            f"modelspec: 1\nimports:\n  n: f{i + 1}.yaml\nblocks: {{n: {{layers: [{{block: n.n}}]}}}}\n"
        )
    (tmp_path / "spec.yaml").write_text(USES_LIB.format(path="f0.yaml").replace("lib.d", "lib.n"))
    with pytest.raises(modelspec.SpecError) as info:
        modelspec.load(tmp_path / "spec.yaml")
    (p,) = info.value.problems
    assert p.code == "expand-limit" and f"imports nest deeper than {MAX_IMPORT_DEPTH} files" in p.message
    assert p.file.endswith(f"f{MAX_IMPORT_DEPTH - 2}.yaml") and p.line == 3


def test_a_folder_symlink_loop_is_a_cycle(tmp_path):
    (tmp_path / "loop").symlink_to(".")
    (tmp_path / "lib.yaml").write_text(
        "modelspec: 1\nimports:\n  again: loop/loop/lib.yaml\nblocks: {d: {layers: [{type: Dense, units: 2}]}}\n"
    )
    (tmp_path / "spec.yaml").write_text(USES_LIB.format(path="lib.yaml"))
    with pytest.raises(modelspec.SpecError) as info:
        modelspec.load(tmp_path / "spec.yaml")
    (p,) = info.value.problems
    assert p.code == "import-cycle" and p.file.endswith("lib.yaml") and p.line == 3
    assert "lib.yaml -> lib.yaml" in p.message and "symbolic link" in p.hint


# -- params hold literals; overrides that do not fit are the command line's fault -------------

PARAMS = """modelspec: 1
params: {units: 4, depth: [2, 3]}
variants: {small: {units: 2}, wide: {units: 64}}
inputs: {x: [4]}
layers: [{type: Dense, units: "${units}"}]
"""


@pytest.mark.parametrize(
    ("kw", "code", "words"),
    [
        ({"params": {1: 4}}, "param-value", "param names are strings, got 1"),
        (
            {"params": {"units": 10**5000}},
            "param-value",
            "an int of about 5,000 digits is beyond the int limit",
        ),
        ({"params": {"units": "${10 ** 7}"}}, "param-value", "is an expression"),
        ({"params": {"depth": [[1] * 100] * 200}}, "param-value", "over 10,000 items"),
        ({"params": {"units": object()}}, "param-value", "not a object"),
        ({"params": [("units", 3)]}, "param-value", "params= takes a mapping"),
        ({"params": {"unit": 3}}, "unknown-param", "declares no param 'unit'"),
        ({"variant": "smal"}, "unknown-variant", "its variants: small, wide"),
    ],
)
def test_overrides_that_do_not_fit_are_an_override_error(kw, code, words):
    with pytest.raises(OverrideError) as info:
        modelspec.loads(PARAMS, source="p.yaml", **kw)
    (p,) = info.value.problems
    assert info.value.exit_code == 2 and isinstance(info.value, modelspec.SpecError)
    assert p.code == code and words in p.message and p.file == "p.yaml"
    assert len(str(info.value)) < 500


def test_params_and_variants_hold_literals_located_at_them():
    text = 'modelspec: 1\nparams:\n  a: "${b}"\n  b: "${a}"\n  c: "$${kept}"\nvariants: {v: {c: 123456789012345678901234567890}}\ninputs: {x: [4]}\nlayers: [{type: Dense, units: 2}]\n'
    found = problems(text)
    assert [(p.code, p.line, p.path) for p in found] == [
        ("param-value", 3, ("params", "a")),
        ("param-value", 4, ("params", "b")),
        ("param-value", 6, ("variants", "v", "c")),
    ]
    assert "params hold literals" in found[0].message and "variants hold literals" in found[2].message


def test_cli_override_mistakes_exit_2_and_say_so(tmp_path):
    spec = tmp_path / "p.yaml"
    spec.write_text(PARAMS)
    cases = [
        (["--set", "nope=1"], "declares no param 'nope'"),
        (["--set", "units=${10**7}"], "--set values are literals"),
        (["--set", "units=" + "9" * 4000], "beyond the int limit 2**63"),
        (["--variant", "smal"], "its variants: small, wide"),
    ]
    for args, words in cases:
        done = run_modelspec(["validate", str(spec), *args])
        assert done.returncode == 2 and words in done.stderr, (args, done.stderr)
        assert "9" * 100 not in done.stderr and "Traceback" not in done.stderr
        assert "p.yaml:5" not in done.stderr  # the spec's lines are not blamed


# -- shared instances ------------------------------------------------------------------------


def test_a_shared_instance_calls_the_layers_of_the_one_it_shares():
    data = modelspec.loads(SHARED_TOWER).to_data()
    assert data["layers"]["right-h"] == {"inputs": "b", "share": "left-h"}
    assert data["layers"]["right-o"] == {"inputs": "right-h", "share": "left-o"}
    assert data["layers"]["merged"]["inputs"] == ["left-o", "right-o"]


@pytest.mark.parametrize(
    ("old", "new", "code", "line", "message"),
    [
        ("share: left,", "share: lft,", "unknown-reference", 16, "no block instance 'lft' before this one to share"),
        ("block: tower, share", "block: other, share", "share-mismatch", 16, "instance 'left' is of block 'tower', not 'other'"),
        ("share: left,", "share: left, units: 8,", "misplaced-key", 16, "a shared instance takes no params"),
    ],
)  # fmt: skip
def test_a_shared_instance_must_name_an_instance_of_its_block_above_it(old, new, code, line, message):
    (p,) = problems(SHARED_TOWER.replace(old, new))
    assert (p.code, p.line) == (code, line) and message in p.message


def test_a_repeat_feeds_each_instance_the_last_output_and_the_same_other_inputs():
    text = """modelspec: 1
inputs: {tokens: [4, 8], mask: [4]}
blocks:
  layer:
    inputs: [x, m]
    layers:
      attend: {type: MultiHeadAttention, num_heads: 1, key_dim: 8, inputs: {query: x, value: x, attention_mask: m}}
layers:
  stack: {block: layer, repeat: 3, inputs: [tokens, mask]}
"""
    layers = flat_layers(text)
    assert [(k, e.inputs) for k, e in layers.items()] == [
        ("stack-0-attend", {"query": "tokens", "value": "tokens", "attention_mask": "mask"}),
        ("stack-1-attend", {"query": "stack-0-attend", "value": "stack-0-attend", "attention_mask": "mask"}),
        ("stack-2-attend", {"query": "stack-1-attend", "value": "stack-1-attend", "attention_mask": "mask"}),
    ]
