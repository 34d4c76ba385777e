"""Static analysis: shapes and parameters without Keras, equal to what Keras builds; summary; memory guard."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import (
    APPLICATION_FAMILIES,
    CASES,
    ROOT,
    SLOW,
    SPECS,
    application,
    application_objects,
    flat,
    static_analysis_mismatches,
)

import modelspec
from modelspec.analysis import UNKNOWN, analyze
from modelspec.api import guard, load_checked
from modelspec.cli import main

EXAMPLES = sorted(SPECS.glob("*.yaml"))


def _keras_shapes(layer, index: int):
    """The output shape(s) of the ``index``-th call of a Keras layer."""
    outputs = layer._inbound_nodes[index].output_tensors
    shapes = [tuple(t.shape) for t in outputs]
    return shapes[0] if len(shapes) == 1 else shapes


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_static_shapes_and_parameters_equal_what_keras_builds(path):
    graph, analysis = load_checked(path, strict_rules=True).model()
    model = modelspec.build(path)
    if not model.built:  # a stack without an input: nothing is known until it is called
        assert analysis.unknown == [n.name for n in graph.nodes]
        return
    assert analysis.complete, analysis.unknown
    layers = {layer.name: layer for layer in model.layers}
    calls: dict[str, int] = {}
    for i, node in enumerate(graph.nodes):
        info = analysis.nodes[node.name]
        if node.op is not None:  # an operation node: no layer of its own (its shape feeds the next layer's)
            continue
        owner = node.share or node.name
        layer = model.layers[i] if graph.model_class == "Sequential" else layers[owner]
        index = calls[owner] = calls.get(owner, -1) + 1
        expected = _keras_shapes(layer, index)
        got = info.shape if not isinstance(info.shape, list) else list(info.shape)
        if node.type == "MultiHeadAttention" and isinstance(got, list):
            # Keras's symbolic scores are (batch, heads, Tq, Tq); run, they are (batch, heads, Tq, Tv).
            value = node.inputs["value"].name
            tv = (analysis.inputs[value] if value in graph.inputs else analysis.nodes[value].shape)[1]
            expected = [expected[0], (*expected[1][:3], tv)]
        assert got == expected, (node.name, got, expected)
        if not node.share:
            assert info.params == layer.count_params(), node.name
            trainable = sum(int(np.prod(w.shape)) for w in layer.trainable_weights)
            assert info.trainable == trainable, node.name
    assert analysis.trainable + analysis.non_trainable == model.count_params()


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_summary_totals_equal_keras(path, capsys):
    assert main(["summary", str(path)]) == 0
    out = capsys.readouterr().out
    model = modelspec.build(path)
    if model.built:
        assert f"Total params: {model.count_params():,} " in out
        trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
        assert f"Trainable params: {trainable:,}\n" in out


def test_summary_table(capsys):
    assert main(["summary", str(SPECS / "ticket_router.yaml")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "Model: ticket_router (functional, 7 layers)"
    assert lines[1].split() == ["layer", "type", "output", "shape", "params", "called", "on"]
    row = next(line for line in lines if line.startswith("merged "))
    assert row.split() == [
        "merged",
        "Concatenate",
        "(None,",
        "172)",
        "0",
        "title_feat,",
        "body_feat,",
        "tags",
    ]
    assert "Total params: 1,392,097 (5.6 MB of weights)" in lines


def test_summary_keras_option_prints_keras_summary(capsys):
    assert main(["summary", "--keras", str(SPECS / "iris.yaml")]) == 0
    assert "Total params" in capsys.readouterr().out


def test_validate_finds_shape_errors_without_importing_tensorflow():
    code = (
        "import sys\nfrom modelspec.cli import main\n"
        f"status = main(['validate', {str(CASES / 'shape_add_mismatch.yaml')!r}])\n"
        "assert status == 1, status\n"
        "assert not [m for m in sys.modules if m.split('.')[0] in ('keras', 'tensorflow', 'jax', 'torch')]\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr
    assert "Add: inputs have shapes (None, 3) and (None, 5)" in result.stderr


def test_the_memory_bomb_is_refused_fast_without_allocating():
    start = time.perf_counter()
    code = (
        "import resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))\n"  # 2 GiB: 400 GB could never be allocated
        "from modelspec.cli import main\n"
        f"sys.exit(main(['build', {str(CASES / 'shape_memory_bomb.yaml')!r}, '-o', '/tmp/never.keras']))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert result.returncode == 1, result.stderr
    assert time.perf_counter() - start < 60  # a hang guard: allocating 400 GB would never end
    assert "too large to build" in result.stderr and "400.0 GB" in result.stderr
    assert "shape_memory_bomb.yaml:6:5" in result.stderr


def test_max_params_is_a_limit(tmp_path, capsys):
    out = tmp_path / "m.keras"
    assert main(["build", str(SPECS / "iris.yaml"), "-o", str(out), "--max-params", "400"]) == 1
    err = capsys.readouterr().err
    assert "403 parameters, over the limit of 400" in err and not out.exists()
    with pytest.raises(modelspec.SpecError, match="over the limit"):
        modelspec.build(SPECS / "iris.yaml", max_params=100)


def test_validate_warns_past_a_quarter_of_the_memory(capsys):
    assert main(["validate", str(CASES / "shape_memory_bomb.yaml")]) == 0
    assert "warning: layers[0]: the model is very large" in capsys.readouterr().err


def test_strict_names_the_nodes_not_inferred(write_spec, capsys):
    path = write_spec(
        "modelspec: 1\ninputs: {x: {shape: [1], dtype: int32}}\nlayers:\n"
        "  h: {type: HashedCrossing, num_bins: 8, inputs: [x, x]}\n  e: {type: Embedding, input_dim: 8, output_dim: 4}\n"
    )
    assert main(["validate", str(path)]) == 0
    capsys.readouterr()
    assert main(["validate", "--strict", str(path)]) == 1
    err = capsys.readouterr().err
    assert "shape of 'h' is not known: no shape rule for HashedCrossing" in err
    assert "shape of 'e' is not known: called on a shape that is not known" in err
    _, analysis = load_checked(path, strict_rules=True).model()
    assert analysis.nodes["e"].shape is UNKNOWN  # unknown downstream: no false errors


OP_NODES = [
    ("{op: einsum, inputs: [a, b], subscripts: 'bij,bjk->bik'}", {"a": [3, 4], "b": [4, 5]}),
    ("{op: einsum, inputs: {operands: [a, b]}, subscripts: 'bij,bkj->bik'}", {"a": [3, 4], "b": [5, 4]}),
    ("{op: einsum, inputs: [a], subscripts: 'bij->bji'}", {"a": [3, 4]}),
    ("{op: matmul, inputs: [a, b]}", {"a": [3, 4], "b": [4, 5]}),
    ("{op: concatenate, inputs: {xs: [a, b]}, axis: 1}", {"a": [3, 4], "b": [5, 4]}),
    ("{op: mean, inputs: [a], axis: [1], keepdims: true}", {"a": [3, 4]}),
    ("{op: transpose, inputs: [a], axes: [0, 2, 1]}", {"a": [3, 4]}),
    ("{op: where, inputs: [c, a, b]}", {"c": [3, 1], "a": [3, 4], "b": [1, 4]}),
    ("{op: where, inputs: [c, a], x2: 0.0}", {"c": [3, 4], "a": [1, 4]}),
    ("{op: split, inputs: [a], indices_or_sections: 3, axis: -1}", {"a": [4, 6]}),
    ("{op: split, inputs: [a], indices_or_sections: [1, 4], axis: 1}", {"a": [6, 4]}),
    ("{op: split, inputs: [a], indices_or_sections: 2}", {"a": [6, 4]}),  # the free batch axis, in two
    ("{op: tile, inputs: [a], repeats: [2, 3]}", {"a": [3, 4]}),
    ("{op: tile, inputs: [a], repeats: [2, 1, 1, 3]}", {"a": [3, 4]}),
    pytest.param(
        "{op: repeat, inputs: [a], repeats: [1, 2, 3], axis: -2}",
        {"a": [3, 4]},
        marks=pytest.mark.skipif(
            os.environ.get("KERAS_BACKEND") in ("jax", "torch"),
            reason="Keras's JAX and PyTorch backends refuse a list of repeats when the model runs",
        ),
    ),
    ("{op: repeat, inputs: [a], repeats: 2}", {"a": [3, 4]}),  # axis None: flattened, batch unknown
    ("{op: pad, inputs: [a], pad_width: [[0, 0], [1, 2], [3, 4]]}", {"a": [3, 4]}),
    ("{op: flip, inputs: [a]}", {"a": [3, 4]}),
    ("{op: roll, inputs: [a], shift: [1, 2], axis: [1, -1]}", {"a": [3, 4]}),
    ("{op: swapaxes, inputs: [a], axis1: -1, axis2: 1}", {"a": [3, 4]}),
    ("{op: moveaxis, inputs: [a], source: [1, -1], destination: [-1, 0]}", {"a": [3, 4, 5]}),
    ("{op: broadcast_to, inputs: [a], shape: [2, 4, 3]}", {"a": [1, 3]}),
    ("{op: take, inputs: [a], indices: [0, 2], axis: -1}", {"a": [3, 4]}),
    ("{op: take, inputs: [a], indices: [[0, 2]]}", {"a": [3, 4]}),  # axis None: from the flattened tensor
    pytest.param(
        "{op: dot, inputs: [a, b]}",
        {"a": [3, 4], "b": [4, 5]},
        marks=pytest.mark.skipif(
            os.environ.get("KERAS_BACKEND") == "torch",
            reason="Keras's PyTorch backend runs an N-d dot as a batched matmul, not as its symbolic shape says",
        ),
    ),
    ("{op: dot, inputs: [a], x2: 2.0}", {"a": [3]}),
    # axes=1: x1's last axis against x2's first, its free batch axis (2 when run, as x1's last)
    ("{op: tensordot, inputs: [a, b], axes: 1}", {"a": [3, 2], "b": [5]}),
    ("{op: tensordot, inputs: [a, b], axes: 0}", {"a": [3], "b": [2]}),
    ("{op: tensordot, inputs: [a, b], axes: [[2], [1]]}", {"a": [3, 4], "b": [4, 5]}),  # axes as two lists
    ("{op: outer, inputs: [a, b]}", {"a": [3], "b": [4]}),
    # element-wise, sorting, cumulative, encodings
    ("{op: sin, inputs: [a]}", {"a": [3, 4]}),
    ("{op: log_sigmoid, inputs: [a]}", {"a": [3]}),
    ("{op: arctan2, inputs: [a, b]}", {"a": [3, 1], "b": [3, 4]}),
    ("{op: stop_gradient, inputs: [a]}", {"a": [3]}),
    ("{op: zeros_like, inputs: [a]}", {"a": [3, 4]}),
    ("{op: sort, inputs: [a], axis: 1}", {"a": [3, 4]}),
    ("{op: tril, inputs: [a], k: -1}", {"a": [3, 3]}),
    ("{op: any, inputs: [a], axis: -1, keepdims: true}", {"a": [3, 4]}),
    ("{op: all, inputs: [a], axis: 1}", {"a": [3, 4]}),
    ("{op: cumsum, inputs: [a], axis: -1}", {"a": [3, 4]}),
    ("{op: cumprod, inputs: [a]}", {"a": [3, 4]}),  # axis None: the flattened tensor
    ("{op: one_hot, inputs: [a], num_classes: 5}", {"a": [3]}),
    ("{op: one_hot, inputs: [a], num_classes: 5, axis: 1}", {"a": [3]}),
    ("{op: top_k, inputs: [a], k: 2}", {"a": [3, 4]}),
    ("{op: glu, inputs: [a]}", {"a": [3, 4]}),
    ("{op: unstack, inputs: [a], axis: 1}", {"a": [3, 4]}),
]


def _fits(shape, symbolic) -> bool:
    """A shape Keras ran fits its symbolic shape (``None``: any size)."""
    return len(shape) == len(symbolic) and all(s is None or s == d for d, s in zip(shape, symbolic))


@pytest.mark.parametrize(("entry", "inputs"), OP_NODES, ids=lambda v: v if isinstance(v, str) else "")
def test_operation_shapes_equal_what_keras_builds(entry, inputs, tmp_path):
    path = tmp_path / "op.yaml"
    shapes = ", ".join(f"{k}: {v}" for k, v in inputs.items())
    path.write_text(f"modelspec: 1\ninputs: {{{shapes}}}\nlayers:\n  out: {entry}\noutputs: out\n")
    _, analysis = load_checked(path, strict_rules=True).model()
    model = modelspec.build(path)
    static = analysis.nodes["out"].shape  # split: a list of shapes, one per output
    symbolic = [tuple(t.shape) for t in model.outputs]
    assert (static if isinstance(static, list) else [static]) == symbolic
    rng = np.random.default_rng(0)
    data = [rng.random((2, *shape), dtype=np.float32) for shape in inputs.values()]
    ran = model.predict(data if len(data) > 1 else data[0], verbose=0)
    ran = [r for out in (ran if isinstance(ran, list) else [ran]) for r in flat(out)]  # top_k: a tuple
    assert len(ran) == len(symbolic)
    assert all(_fits(r.shape, s) for r, s in zip(ran, symbolic)), ([r.shape for r in ran], symbolic)


def test_einsum_axes_of_different_sizes_are_a_located_shape_error(tmp_path):
    path = tmp_path / "op.yaml"
    path.write_text(
        "modelspec: 1\ninputs: {a: [3, 4], b: [5, 6]}\nlayers:\n"
        "  out: {op: einsum, inputs: [a, b], subscripts: 'bij,bjk->bik'}\noutputs: out\n"
    )
    with pytest.raises(modelspec.SpecError) as e:
        modelspec.check(modelspec.load(path))
    (problem,) = e.value.problems
    assert (problem.code, problem.line, problem.column) == ("shape-mismatch", 4, 49)
    assert "the axis 'j' has size 4 in one operand and 5 in another" in problem.message


OP_SHAPE_ERRORS = [
    (
        "{op: dot, inputs: [a, b]}",
        "{a: [3], b: [4, 5]}",
        (4, 3),
        "dot: shapes (None, 3) and (None, 4, 5) cannot be multiplied (3 != 4)",
    ),
    (
        "{op: where, inputs: [c, a], x2: 0.0}",
        "{c: [3], a: [4]}",
        (4, 3),
        "where: the condition (None, 3), x1 (None, 4) and x2 () do not broadcast",
    ),
    (
        "{op: broadcast_to, inputs: [a], shape: [2, 4, 3]}",
        "{a: [2, 3]}",
        (4, 47),
        "broadcast_to: shape (None, 2, 3) cannot be broadcast to (2, 4, 3)",
    ),
    (
        "{op: tensordot, inputs: [a, b], axes: 2}",
        "{a: [3, 4], b: [5, 2]}",
        (4, 46),
        "tensordot: axis 2 of x1 (None, 3, 4) has size 4, axis 1 of x2 (None, 5, 2) has size 5",
    ),
    (
        "{op: split, inputs: [a], indices_or_sections: 4, axis: 1}",
        "{a: [6]}",
        (4, 54),
        "split: axis 1 of shape (None, 6) has size 6, not divisible into 4 equal parts",
    ),
    (
        "{op: repeat, inputs: [a], repeats: [1, 2], axis: -1}",
        "{a: [3]}",
        (4, 43),
        "repeat: 2 repeats for axis 1 of shape (None, 3), which has size 3",
    ),
    (
        "{op: pad, inputs: [a], pad_width: [[1, 2], [3, 4]]}",
        "{a: [3, 4]}",
        (4, 42),
        "pad: pad_width has 2 (before, after) pairs, shape (None, 3, 4) has 3 axes",
    ),
    (
        "{op: flip, inputs: [a], axis: -3}",
        "{a: [3]}",
        (4, 38),
        "flip: axis -3 is out of range for shape (None, 3)",
    ),
    (
        "{op: top_k, inputs: [a], k: 5}",
        "{a: [3, 4]}",
        (4, 36),
        "top_k: k=5 of the last axis of (None, 3, 4), which has 4",
    ),
    (
        "{op: glu, inputs: [a]}",
        "{a: [3]}",
        (4, 3),
        "glu: axis 1 of (None, 3) has odd size 3: it is split into two halves",
    ),
    (
        "{op: unstack, inputs: [a], num: 3, axis: 1}",
        "{a: [4]}",
        (4, 40),
        "unstack: num=3, but axis 1 of (None, 4) has 4",
    ),
    (
        "{op: squeeze, inputs: [a], axis: [1, 2]}",
        "{a: [1, 4]}",
        (4, 41),
        "squeeze: axis 2 of shape (None, 1, 4) has size 4, not 1",
    ),
    (
        "{op: squeeze, inputs: [a], axis: 1}",
        "{a: [null]}",
        (4, 41),
        "squeeze: axis 1 of shape (None, None) has size None, not 1",
    ),
]


@pytest.mark.parametrize(
    ("entry", "inputs", "at", "message"),
    OP_SHAPE_ERRORS,
    ids=lambda v: v if isinstance(v, str) and v.startswith("{op") else "",
)
def test_operation_shape_errors_are_located_and_quote_the_shapes(entry, inputs, at, message, tmp_path):
    path = tmp_path / "op.yaml"
    path.write_text(f"modelspec: 1\ninputs: {inputs}\nlayers:\n  out: {entry}\noutputs: out\n")
    with pytest.raises(modelspec.SpecError) as e:
        load_checked(path, strict_rules=True)
    (problem,) = e.value.problems
    assert (problem.code, problem.line, problem.column) == ("shape-mismatch", *at)
    assert message in problem.message


@pytest.mark.parametrize(("axis", "shape"), [(1, (3, 4)), ([1, 2], (1, 4)), (1, (None,))])
def test_squeeze_of_an_axis_not_of_size_1_is_refused_as_keras_does(axis, shape):
    import keras

    with pytest.raises(ValueError, match="Cannot squeeze"):
        keras.ops.squeeze(keras.Input(shape=shape), axis=axis)
    from modelspec.analysis.shapes import ShapeError, infer_op

    with pytest.raises(ShapeError, match="only an axis of size 1 can be squeezed"):
        infer_op("squeeze", {"x": (None, *shape)}, {"axis": axis})
    assert infer_op("squeeze", {"x": (None, 1, 4)}, {"axis": 1}) == (None, 4)


OP_UNKNOWN = [
    # the indices where the condition holds: data-dependent
    ("{op: where, inputs: [c]}", "{c: [3]}"),
    # unsorted indices: numpy makes empty parts, Keras's rule negative sizes
    ("{op: split, inputs: [a], indices_or_sections: [4, 2], axis: 1}", "{a: [6]}"),
    # numpy counts a negative index from the end, Keras's rule does not
    ("{op: split, inputs: [a], indices_or_sections: [-2], axis: 1}", "{a: [6]}"),
    ("{op: tensordot, inputs: [a, b], axes: -1}", "{a: [3], b: [3]}"),
    # ints, not (before, after) pairs
    ("{op: pad, inputs: [a], pad_width: [1, 2, 3]}", "{a: [3]}"),
]


@pytest.mark.parametrize(("entry", "inputs"), OP_UNKNOWN, ids=lambda v: v if v.startswith("{op") else "")
def test_operation_shapes_undecided_by_the_spec_are_unknown_not_errors(entry, inputs, tmp_path):
    path = tmp_path / "op.yaml"
    path.write_text(f"modelspec: 1\ninputs: {inputs}\nlayers:\n  out: {entry}\noutputs: out\n")
    _, analysis = load_checked(path, strict_rules=True).model()
    assert analysis.nodes["out"].shape is UNKNOWN
    assert analysis.problems == []


def test_every_allowlisted_operation_has_a_shape_rule():
    from modelspec import catalog
    from modelspec.analysis.shapes import has_op_rule

    names = catalog.op_names()
    assert len(set(names)) == len(names) and names == sorted(names)
    # The families DESIGN.md names: arithmetic, reductions, shapes, indexing, several tensors, einsum.
    assert {"add", "multiply", "mean", "reshape", "transpose", "concatenate", "get_item", "einsum"} <= set(
        names
    )
    assert not {"eval", "convert_to_numpy", "cond", "while_loop", "vectorized_map"} & set(
        names
    )  # code or host calls
    assert [name for name in catalog.op_names() if not has_op_rule(name)] == []


def test_split_outputs_are_picked_by_index(write_spec, capsys):
    path = write_spec(
        "modelspec: 1\ninputs: {a: [6, 4]}\nlayers:\n"
        "  parts: {op: split, inputs: [a], indices_or_sections: [1, 4], axis: 1}\n"
        "  d: {type: Dense, units: 3, inputs: 'parts[1]'}\noutputs: ['parts[0]', d]\n"
    )
    _, analysis = load_checked(path, strict_rules=True).model()
    assert analysis.nodes["parts"].shape == [(None, 1, 4), (None, 3, 4), (None, 2, 4)]
    assert analysis.nodes["d"].shape == (None, 3, 3)
    assert analysis.outputs == [(None, 1, 4), (None, 3, 3)]
    model = modelspec.build(path)
    assert [tuple(t.shape) for t in model.outputs] == analysis.outputs
    assert "parts" in [operation.name for operation in model.operations]  # named after its node
    path.write_text(path.read_text().replace("'parts[0]'", "'parts[3]'"))
    assert main(["validate", str(path)]) == 1
    assert "'parts[3]': node 'parts' has 3 outputs" in capsys.readouterr().err


# -- every keras.applications model, exported --------------------------------------------------

NOT_ON_TORCH = pytest.mark.skipif(
    os.environ.get("KERAS_BACKEND") == "torch",
    reason="keras.applications refuses NASNet on the torch backend",
)


def _applications():
    import keras

    params = []
    for name in sorted(n for n in dir(keras.applications) if n[0].isupper()):
        marks = [] if name in APPLICATION_FAMILIES else [SLOW]
        if name.startswith("NASNet"):
            marks.append(NOT_ON_TORCH)
        params.append(pytest.param(name, APPLICATION_FAMILIES.get(name, 32), marks=marks))
    return params


@pytest.mark.parametrize(("name", "side"), _applications())
def test_static_analysis_of_every_keras_application_equals_keras(name, side):

    objects = application_objects()
    model = application(name, side)
    # Flat: one node per Keras layer and operation, each found in the model by its name.
    text = modelspec.from_keras(model, custom_objects=objects, flat=True).to_yaml()
    graph = modelspec.check(modelspec.loads(text, custom_objects=objects), custom_objects=objects)
    analysis = analyze(graph, strict_rules=True)  # a rule that fails on a layer of keras.applications: a bug
    assert analysis.complete, analysis.unknown
    compared, mismatches = static_analysis_mismatches(model, graph, analysis)
    assert mismatches == []
    assert compared == len(graph.nodes)  # every node, operations included, found in the Keras model


# -- analysis that does not hide its own bugs ---------------------------------------------------


@pytest.mark.parametrize(
    "path", [*EXAMPLES, *sorted(CASES.glob("*.yaml"))], ids=lambda p: f"{p.parent.name}/{p.stem}"
)
def test_inference_in_strict_rules_mode_over_every_spec(path):
    # Only a shape error or "not inferable" may come out of a rule: anything else is a bug to fix.
    with contextlib.suppress(modelspec.SpecError):  # a broken case: its problems are test_errors' business
        load_checked(path, strict_rules=True)


def test_a_failing_rule_is_named_not_hidden(write_spec, monkeypatch):
    from modelspec.analysis.shapes import shape_utils

    def broken(layer):
        raise TypeError("a bug in the rule")

    monkeypatch.setitem(shape_utils._RULES, "Dense", broken)
    path = write_spec("modelspec: 1\ninputs: {x: [4]}\nlayers:\n  - {type: Dense, units: 2}\n")
    _, analysis = load_checked(path).model()
    (info,) = analysis.nodes.values()
    assert info.shape is UNKNOWN and info.reason.startswith(
        "the shape rule failed (TypeError: a bug in the rule)"
    )
    with pytest.raises(TypeError, match="a bug in the rule"):
        load_checked(path, strict_rules=True)


# -- the memory guard -------------------------------------------------------------------------------

ENCODED_BOMB = """\
modelspec: 1
inputs: {ids: {shape: [3], dtype: int32}}
layers:
  - {type: CategoryEncoding, num_tokens: 100000}
  - {type: Dense, units: 20000}
"""


def test_the_guard_counts_what_follows_an_encoding(write_spec):
    record = load_checked(write_spec(ENCODED_BOMB))
    _, analysis = record.model()
    assert [info.shape for info in analysis.nodes.values()] == [(None, 100_000), (None, 20_000)]
    assert analysis.trainable == 100_000 * 20_000 + 20_000
    with pytest.raises(modelspec.SpecError, match="2,000,020,000 parameters, over the limit of 1,000,000"):
        guard(record, max_params=1_000_000)


def test_the_guard_says_which_weights_it_cannot_count(write_spec):
    path = write_spec(
        "modelspec: 1\ninputs: {words: {shape: [3], dtype: string}}\nlayers:\n"
        "  - {type: StringLookup, output_mode: multi_hot, max_tokens: 50000}\n"
        "  - {type: Dense, units: 20000}\n"
    )
    (warning,) = guard(load_checked(path))
    assert (warning.code, warning.severity, warning.line) == ("shape-unknown", "warning", 4)
    assert "could not count the weights of 2 layers whose output shape is not known" in warning.message
    assert "the vocabulary's size is known once it is adapted or read" in warning.message


def test_the_guard_says_once_that_a_model_is_too_large(capsys, tmp_path):
    # validate warns past a quarter of the memory; build refuses: one message, not a warning and an error.
    assert main(["build", str(CASES / "shape_memory_bomb.yaml"), "-o", str(tmp_path / "m.keras")]) == 1
    err = capsys.readouterr().err
    assert err.count("shape_memory_bomb.yaml:6:5") == 1 and "too large to build" in err
    assert "very large" not in err


# -- the static summary ---------------------------------------------------------------------------------


def test_summary_names_layers_as_keras_does(capsys):
    assert main(["summary", str(SPECS / "iris.yaml")]) == 0
    out = capsys.readouterr().out
    model = modelspec.build(SPECS / "iris.yaml")
    rows = [line.split()[0] for line in out.splitlines()[4:8]]
    assert rows == [layer.name for layer in model.layers] == ["dense", "dropout", "dense_1", "species"]
    assert "#" not in out


def test_summary_says_what_train_adds(capsys):
    assert main(["summary", str(SPECS / "iris.yaml")]) == 0
    out = capsys.readouterr().out
    assert "Total params: 403 " in out
    # Normalization over the 4 features: a mean and a variance each, and a count.
    assert "train adds a Normalization layer before the first layer, 9 non-trainable parameters" in out
    assert "412 in the trained model" in out
