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


# -- wording: what a message shows of hostile text ---------------------------------------------------

LONG_KEY = "k" * 1100


@pytest.mark.parametrize(
    ("text", "line", "column", "length"),
    [
        (f"modelspec: 1\n{LONG_KEY}: 1\n", 2, 1, 1100),
        (f'modelspec: 1\n"{LONG_KEY}": 1\n', 2, 1, 1102),  # the quotes count: the limit runs to the ':'
        ("modelspec: 1\nlayers:\n  - {type: Dense, " + LONG_KEY + ": 1}\n", 3, 19, 1100),
        ("modelspec: 1\nlayers:\n  - {type: Dense, '" + LONG_KEY + "': 1}\n", 3, 19, 1102),
        (f"modelspec: 1\nlayers:\n  - {LONG_KEY}: 1\n", 3, 5, 1100),
        (f"modelspec: 1\nlayers:\n  a:\n    {LONG_KEY}: 1\n", 4, 5, 1100),
        ("modelspec: 1\nx: [" + LONG_KEY + ": 1]\n", 2, 5, 1100),
        ("modelspec: 1\n" + "k" * 1025 + ": 1\n", 2, 1, 1025),
    ],
    ids=["block", "quoted", "flow", "flow-quoted", "list-item", "nested", "flow-list", "one-over"],
)
def test_a_key_over_yaml_limit_says_so(text, line, column, length):
    with pytest.raises(SpecError) as info:
        parse(text, "s.yaml")
    (p,) = info.value.problems
    assert (p.code, p.line, p.column) == ("yaml-syntax", line, column)
    assert p.message == (
        f"invalid YAML: this key is {length:,} characters long; "
        "YAML reads at most 1,024 characters before a key's ':'"
    )
    assert "mapping values" not in p.message and "expected" not in p.message


def test_a_key_of_1024_characters_is_read_and_other_colon_errors_keep_their_words():
    assert parse("k" * 1024 + ": 1\n").data == {"k" * 1024: 1}
    with pytest.raises(SpecError) as info:
        parse("modelspec: 1\nname: a: b\n")
    assert "mapping values are not allowed" in info.value.problems[0].message


INVISIBLE = [
    "\u200b",  # zero-width space
    "\u200c",  # zero-width non-joiner
    "\u200d",  # zero-width joiner
    "\u2060",  # word joiner
    "\ufeff",  # zero-width no-break space
    "\u00ad",  # soft hyphen
    "\u061c",  # Arabic letter mark
    "\u180e",  # Mongolian vowel separator
    "\u2064",  # invisible plus
    "\ufe0f",  # variation selector
    "\U000e0041",  # tag letter A
    "\u202e",  # right-to-left override
    "\u2067",  # right-to-left isolate
    "\x1b",  # escape (written as \e in a quoted key)
    "\x7f",  # delete
    "\x85",  # next line
]


@pytest.mark.parametrize("char", INVISIBLE, ids=lambda c: f"U+{ord(c):04X}")
def test_invisible_and_control_characters_in_names_are_escaped(char):
    import modelspec

    # As Python writes it ('\u200b', '\x1b'); a variation selector, which repr leaves, as well.
    escaped = repr(char)[1:-1] if not char.isprintable() else f"\\u{ord(char):04x}"
    written = "\\e" if char == "\x1b" else "\\x7f" if char == "\x7f" else "\\N" if char == "\x85" else char
    text = f'modelspec: 1\ninputs: {{x: [4]}}\nlayers:\n  a: {{type: Dense, units: 3, inputs: x, "un{written}its": 3}}\n'
    with pytest.raises(SpecError) as info:
        modelspec.loads(text, "s.yaml")
    report = info.value.report()
    assert char not in report
    (p,) = info.value.problems
    lines = report.splitlines()
    # The path and the message escape the name; the line shown marks the character '?', one for one,
    # so the caret stays under the key.
    assert lines[0] == (
        f"s.yaml:4:41: error: layers.a.un{escaped}its: unknown argument 'un{escaped}its' for Dense"
    )
    assert lines[2].index("^") == lines[1].index('"un'), report
    assert p.to_dict()["path"] == f"layers.a.un{escaped}its"
