"""The graph stage: references, default inputs, order, sharing, outputs."""

from __future__ import annotations

import pytest
from conftest import SPECS

import modelspec
from modelspec import SpecError
from modelspec.graph import Ref


def graph(text: str):
    return modelspec.check(modelspec.loads(text, source="g.yaml"))


def test_default_input_is_the_node_above():
    g = modelspec.check(SPECS / "ticket_router.yaml")
    assert g.node("title_feat").inputs == Ref("title_emb")
    assert g.node("merged").inputs == [Ref("title_feat"), Ref("body_feat"), Ref("tags")]
    assert g.output_names() == ["priority", "department"]


def test_nodes_are_ordered_after_their_inputs_whatever_the_text_order():
    text = (
        "modelspec: 1\ninputs: {x: [3]}\nlayers:\n"
        "  out: {type: Dense, units: 1, inputs: mid}\n"
        "  mid: {type: Dense, units: 2, inputs: first}\n"
        "  first: {type: Dense, units: 4, inputs: x}\n"
        "outputs: out\n"
    )
    g = graph(text)
    assert [n.name for n in g.nodes] == ["first", "mid", "out"]
    model = modelspec.build(modelspec.loads(modelspec.loads(text).to_yaml()))
    assert [layer.name for layer in model.layers][1:] == ["first", "mid", "out"]


def test_indexed_references_and_call_mappings():
    g = modelspec.check(SPECS / "lstm_state.yaml")
    assert g.node("decoder").inputs == {
        "sequences": Ref("target"),
        "initial_state": [Ref("encoder", 1), Ref("encoder", 2)],
    }


def test_share_resolves_to_the_layer_owner():
    g = modelspec.check(SPECS / "siamese.yaml")
    assert g.node("right_tower").share == "left_tower"
    assert g.node("right_code").inputs == Ref("right_tower")


@pytest.mark.parametrize(
    "layers, outputs, words",
    [
        (
            "  a: {type: Dense, units: 2, inputs: b}\n  b: {type: Dense, units: 2, inputs: a}\n",
            "a",
            ["cycle", "a -> b -> a"],
        ),
        (
            "  a: {type: Dense, units: 2}\n  b: {type: Dense, units: 2, inputs: x}\n",
            "b",
            ["node 'a' is used by no other node"],
        ),
        ("  a: {type: Dense, units: 2, inputs: 'x[1]'}\n", "a", ["input 'x' has one output"]),
        ("  a: {type: Dense, units: 2}\n  b: {share: c}\n", "b", ["'share' names 'c'"]),
        ("  x: {type: Dense, units: 2}\n", "x", ["duplicate name 'x'"]),
    ],
)
def test_graph_errors(layers, outputs, words):
    with pytest.raises(SpecError) as info:
        graph(f"modelspec: 1\ninputs: {{x: [3]}}\nlayers:\n{layers}outputs: {outputs}\n")
    text = "\n".join(p.message for p in info.value.problems)
    for word in words:
        assert word in text
    assert all(p.file == "g.yaml" and p.line is not None for p in info.value.problems)
