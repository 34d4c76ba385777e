"""The graph stage: references, default inputs, order, sharing, outputs."""

from __future__ import annotations

import pytest
from conftest import SPECS

import modelspec
from modelspec import SpecError
from modelspec.graph import Ref
from modelspec.order import depth_first


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


# -- the one dependency walk ------------------------------------------------------------------


def test_depth_first_puts_each_node_after_what_it_needs_in_text_order():
    needs = {"a": [], "b": ["a"], "c": ["x"], "x": [], "d": ["c", "b"]}
    assert depth_first(needs, needs.__getitem__) == ["a", "b", "x", "c", "d"]


def test_depth_first_reports_each_cycle_and_still_orders_every_node():
    needs = {"a": ["c"], "b": ["a"], "c": ["b"], "d": ["d"], "e": ["a"]}
    cycles = []
    order = depth_first(needs, needs.__getitem__, on_cycle=cycles.append)
    assert sorted(order) == ["a", "b", "c", "d", "e"]
    assert cycles == [["a", "c", "b", "a"], ["d", "d"]]  # cycle[-2] needs cycle[-1]


def test_depth_first_asks_for_needs_once_and_needs_no_recursion():
    asked = []

    def needs(n: int) -> list[int]:
        asked.append(n)
        return [n + 1] if n < 200_000 else []

    order = depth_first([0, 5], needs)
    assert order == list(range(200_000, -1, -1)) and sorted(asked) == list(range(200_001))


def test_depth_first_stops_at_the_depth_limit_and_says_where():
    deep = []
    order = depth_first(
        [0], lambda n: [n + 1], max_depth=4, on_too_deep=lambda path, n: deep.append((path, n))
    )
    assert order == [3, 2, 1, 0] and deep == [([0, 1, 2, 3], 4)]


def test_a_cycle_of_layers_is_reported_once_with_its_nodes_in_order():
    text = """modelspec: 1
inputs: {x: [4]}
layers:
  a: {type: Dense, units: 4, inputs: [x, c]}
  b: {type: Dense, units: 4, inputs: a}
  c: {type: Dense, units: 4, inputs: b}
  out: {type: Dense, units: 1, inputs: c}
"""
    with pytest.raises(SpecError) as info:
        graph(text)
    cycles = [p for p in info.value.problems if p.code == "cycle"]
    assert len(cycles) == 1 and "a -> b -> c -> a" in cycles[0].message
