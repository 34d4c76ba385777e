"""The source stage: YAML text to plain data, with the location of every key and value."""

from __future__ import annotations

import pytest

from modelspec import SpecError
from modelspec.errors import Span
from modelspec.source import parse


def test_values_match_pyyaml_safe_load():
    import yaml

    text = (
        "a: 1\nb: [1, 2.5, yes, null, '3', ~, 0x1f, 1e3, .inf, on, n, 007]\nc: {d: e, f: -3}\nd: 2001-12-14\n"
    )
    data = parse(text).data
    expected = yaml.safe_load(text)
    expected["d"] = "2001-12-14"  # timestamps stay text: a spec has no dates
    assert data == expected


def test_locations_of_keys_and_values():
    source = parse("layers:\n  hidden:\n    units: sixty-four\n", "s.yaml")
    path = ("layers", "hidden", "units")
    assert source.keys[path] == Span(3, 5, 10)
    assert source.values[path] == Span(3, 12, 22)
    assert source.locate(path + ("deeper",)) == Span(3, 12, 22)  # the nearest located ancestor
    assert source.locate(path, key=True) == Span(3, 5, 10)


def test_problem_excerpt_has_source_line_and_caret():
    source = parse("layers:\n  hidden:\n    units: sixty-four\n", "s.yaml")
    text = source.problem("wrong-type", ("layers", "hidden", "units"), "expected an integer").format()
    assert text.splitlines() == [
        "s.yaml:3:12: error: layers.hidden.units: expected an integer",
        "    3 |     units: sixty-four",
        "      |            ^^^^^^^^^^",
    ]


def test_merge_keys_and_aliases_share_values():
    source = parse("base: &b {units: 3, activation: relu}\nx: {<<: *b, units: 5}\ny: *b\n")
    assert source.data["x"] == {"units": 5, "activation": "relu"}
    assert source.data["y"] is source.data["base"]  # an alias is the same object, never a copy


def test_duplicate_keys_are_errors_at_the_second():
    with pytest.raises(SpecError) as info:
        parse("a: 1\nb: 2\na: 3\n", "d.yaml")
    (p,) = info.value.problems
    assert (p.line, p.column) == (3, 1) and "duplicate key 'a' (first at line 1)" in p.message


def test_python_tags_are_refused_not_run():
    with pytest.raises(SpecError) as info:
        parse("a: !!python/object/apply:os.system ['echo pwned']\n")
    assert "not allowed" in info.value.problems[0].message


def test_core_tags_are_fine():
    assert parse("a: !!str 12\nb: !!int '7'\n").data == {"a": "12", "b": 7}
