"""The ``${...}`` expression language: values, text, errors located by column, and bounds.

Table-driven: good expressions with their values (and types), bad ones with
the error code and the offset of the fault in the whole string value, and
"bombs" that must be refused fast. A property test feeds random token soup
and random text: anything may happen except an exception other than ExprError.
"""

from __future__ import annotations

import math
import pickle
import time

import pytest
from conftest import HANG
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelspec.expand.expr import (
    MAX_INT,
    ExprError,
    Template,
    evaluate,
    expression_names,
    has_expression,
    parse,
)

SCOPE = {
    "i": 3,
    "n": 10,
    "alpha": 0.35,
    "width": 64,
    "xs": [1, 2, 3],
    "empty": [],
    "name": "conv",
    "residual": True,
    "flag": False,
    "nothing": None,
    "cfg": {"units": 64, "act": "relu"},
    "nested": [[1, 2], [3, [4, 5]]],
}
CODES = {"expr-syntax", "expr-unknown-name", "expr-type", "expr-limit", "expr-value"}


def reference_make_divisible(v, divisor=8, min_value=None):
    """The MobileNetV2 rule, written out independently of the module under test."""
    new_v = max(min_value or divisor, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return int(new_v)


def fault(text: str, scope: dict | None = None) -> ExprError:
    with pytest.raises(ExprError) as info:
        evaluate(text, SCOPE if scope is None else scope)
    return info.value


# --- Whole-string expressions keep their type ---------------------------------------------------------

WHOLE = [
    # literals
    ("${1}", 1),
    ("${ 1 }", 1),
    ("${1.5}", 1.5),
    ("${.5}", 0.5),
    ("${1.}", 1.0),
    ("${1e-5}", 1e-5),
    ("${1.001e-5}", 1.001e-5),
    ("${2E3}", 2000.0),
    ("${'a'}", "a"),
    ('${"a"}', "a"),
    ("${''}", ""),
    (r"${'it\'s'}", "it's"),
    (r'${"say \"hi\""}', 'say "hi"'),
    (r"${'back\\slash'}", "back\\slash"),
    (r"${'a\nb'}", "a\nb"),
    ("${'}'}", "}"),
    ('${"{}"}', "{}"),
    ("${'${x}'}", "${x}"),
    ("${true}", True),
    ("${false}", False),
    ("${null}", None),
    ("${[1, 2]}", [1, 2]),
    ("${[1, 2,]}", [1, 2]),
    ("${[]}", []),
    ("${[[1], ['a', null]]}", [[1], ["a", None]]),
    ("${9223372036854775808}", 2**63),
    ("${-9223372036854775808}", -(2**63)),
    # names and arithmetic, with Python's precedence
    ("${i}", 3),
    ("${nothing}", None),
    ("${xs}", [1, 2, 3]),
    ("${i + 1}", 4),
    ("${1 + 2 * 3}", 1 + 2 * 3),
    ("${(1 + 2) * 3}", (1 + 2) * 3),
    ("${10 - 2 - 3}", 10 - 2 - 3),
    ("${2 * 3 % 4}", 2 * 3 % 4),
    ("${100 / 10 / 5}", 100 / 10 / 5),
    ("${7 / 2}", 3.5),
    ("${6 / 2}", 3.0),
    ("${7 // 2}", 3),
    ("${-7 // 2}", -7 // 2),
    ("${7.5 // 2}", 3.0),
    ("${-7 % 3}", -7 % 3),
    ("${7 % -3}", 7 % -3),
    ("${2 ** 10}", 1024),
    ("${2 ** -1}", 0.5),
    ("${-2 ** 2}", -(2**2)),
    ("${2 ** 3 ** 2}", 2**3**2),
    ("${(-2) ** 2}", 4),
    ("${2 ** -1 ** 2}", 2 ** -(1**2)),
    ("${-2 ** -2}", -(2**-2)),
    ("${--3}", 3),
    ("${-+-3}", 3),
    ("${2 ** 63}", 2**63),
    ("${-2 ** 63}", -(2**63)),
    ("${3 ** 39}", 3**39),
    ("${1.5 ** 2}", 2.25),
    ("${width * alpha}", 64 * 0.35),
    ("${int(width * alpha)}", 22),
    ("${true + 1}", 2),
    ("${1 +\n 2}", 3),
    # comparisons and logic
    ("${1 < 2 < 3}", True),
    ("${3 > 2 > 2}", False),
    ("${1 < 3 > 2}", True),
    ("${1 == 1.0}", True),
    ("${1 != 1}", False),
    ("${'a' < 'b'}", True),
    ("${[1, 2] == [1, 2]}", True),
    ("${[1, 2] < [1, 3]}", True),
    ("${2 in xs}", True),
    ("${2 not in xs}", False),
    ("${'on' in 'conv'}", True),
    ("${'units' in cfg}", True),
    ("${not 1 == 2}", True),
    ("${not not 0}", False),
    ("${not []}", True),
    ("${0 or 5}", 5),
    ("${0 or ''}", ""),
    ("${1 and 0}", 0),
    ("${1 and 2 and 3}", 3),
    ("${false or true and false}", False),
    ("${not flag and residual}", True),
    ("${1 < 2 and 2 < 3}", True),
    # the conditional, and short-circuits that skip the faulty branch
    ("${'add' if residual else 'bn'}", "add"),
    ("${'add' if flag else 'bn'}", "bn"),
    ("${1 if false else 2 if true else 3}", 2),
    ("${1 + 1 if i > 2 else 0}", 2),
    ("${[1] if false else 7}", 7),
    ("${xs[0] if len(xs) > 0 else 0}", 1),
    ("${empty[0] if len(empty) > 0 else 0}", 0),
    ("${false and xs[99]}", False),
    ("${true or xs[99]}", True),
    ("${1 if true else 1 / 0}", 1),
    ("${unknown_name if false else 5}", 5),
    # indexing
    ("${xs[0]}", 1),
    ("${xs[-1]}", 3),
    ("${xs[-3]}", 1),
    ("${xs[i - 1]}", 3),
    ("${'abc'[1]}", "b"),
    ("${[[1, 2], [3]][0][1]}", 2),
    ("${nested[1][1][0]}", 4),
    ("${cfg['units']}", 64),
    ("${xs[true]}", 2),
    # functions
    ("${min(3, 1, 2)}", 1),
    ("${max(3, 1, 2)}", 3),
    ("${max(xs)}", 3),
    ("${min([2.5, 1])}", 1),
    ("${max('abc')}", "c"),
    ("${abs(-2)}", 2),
    ("${abs(-2.5)}", 2.5),
    ("${round(2.5)}", round(2.5)),
    ("${round(3.5)}", 4),
    ("${round(2.675, 2)}", round(2.675, 2)),
    ("${round(1234, -2)}", 1200),
    ("${round(5, -1000000000000000000)}", 0),
    ("${round(1.5, 1000000000000000000)}", 1.5),
    ("${floor(-1.5)}", -2),
    ("${floor(2)}", 2),
    ("${ceil(1.2)}", 2),
    ("${int(3.9)}", 3),
    ("${int(-3.9)}", -3),
    ("${int('12')}", 12),
    ("${int(' -12 ')}", -12),
    ("${int(true)}", 1),
    ("${float(2)}", 2.0),
    ("${float('1.5')}", 1.5),
    ("${float(' 1e3 ')}", 1000.0),
    ("${len('abc')}", 3),
    ("${len(xs)}", 3),
    ("${len([])}", 0),
    ("${len(cfg)}", 2),
    ("${make_divisible(32 * 0.35)}", 16),
    ("${make_divisible(30, divisor=4, min_value=16)}", reference_make_divisible(30, 4, 16)),
    ("${make_divisible(30, min_value=40)}", 40),
    ("${make_divisible(30)}", 32),
    ("${make_divisible(v=30, divisor=4)}", reference_make_divisible(30, 4)),
    ("${max(1, min(5, 3))}", 3),
    ("${len(xs) * 2}", 6),
    # strings and lists built by operators
    ("${name + '_bn'}", "conv_bn"),
    ("${'ab' * 2}", "abab"),
    ("${2 * 'ab'}", "abab"),
    ("${'ab' * -1}", ""),
    ("${'ab' * 5000}", "ab" * 5000),
    ("${xs + [4]}", [1, 2, 3, 4]),
    ("${[0] * 3}", [0, 0, 0]),
    ("${[0] * 10000}", [0] * 10000),
    ("${[] * 1000000000000}", []),
    ("${[[0, 0]] * 2}", [[0, 0], [0, 0]]),
    ("${1 + 1 + 1 + 1}", 4),
]


@pytest.mark.parametrize(("text", "expected"), WHOLE, ids=[text for text, _ in WHOLE])
def test_whole_string_expression_keeps_its_type(text, expected):
    value = evaluate(text, SCOPE)
    assert value == expected
    assert type(value) is type(expected)
    assert parse(text).whole


# --- Interpolated text ----------------------------------------------------------------------------------

TEXT = [
    ("conv${i}_bn", "conv3_bn"),
    ("x${1}", "x1"),
    ("${1}x", "1x"),
    ("${i}${i}", "33"),
    ("${'a'}${'b'}", "ab"),
    (" ${i}", " 3"),
    ("${name}_${i}", "conv_3"),
    ("$${i}", "${i}"),
    ("$${", "${"),
    ("cost: $${x} and ${i}", "cost: ${x} and 3"),
    ("a $ b $", "a $ b $"),
    ("$", "$"),
    ("{i}", "{i}"),
    ("no expression", "no expression"),
    ("", ""),
    ("${true}!", "true!"),
    ("${false}!", "false!"),
    ("${null}-", "null-"),
    ("${1.5}x", "1.5x"),
    ("${1e-5}x", "1e-05x"),
    ("${2 ** 63}x", f"{2**63}x"),
    ("${7 / 2}x", "3.5x"),
    ("[${xs}]", "[[1, 2, 3]]"),
    ("${[]}.", "[]."),
    (" ${[1, 'a', true, null, 1.5, [2]]}", ' [1, "a", true, null, 1.5, [2]]'),
    ("${cfg}.", '{"units": 64, "act": "relu"}.'),
    ("${'it\\'s'} ok", "it's ok"),
    ("${'}'}}", "}}"),
    ("${i}}", "3}"),
    ("act_${'add' if residual else 'bn'}", "act_add"),
]


@pytest.mark.parametrize(("text", "expected"), TEXT, ids=[text or "empty" for text, _ in TEXT])
def test_interpolation_writes_text(text, expected):
    value = evaluate(text, SCOPE)
    assert value == expected
    assert type(value) is str
    assert not parse(text).whole


# --- make_divisible is the MobileNetV2 rule ---------------------------------------------------------


@pytest.mark.parametrize("channels", [16, 24, 32, 64, 96, 160, 320, 1280, 3, 7])
@pytest.mark.parametrize("multiplier", [0.35, 0.5, 0.75, 1.0, 1.3, 1.4])
@pytest.mark.parametrize("divisor", [8, 4, 16])
def test_make_divisible_matches_the_mobilenet_rule(channels, multiplier, divisor):
    scope = {"c": channels, "m": multiplier}
    expected = reference_make_divisible(channels * multiplier, divisor)
    value = evaluate(f"${{make_divisible(c * m, {divisor})}}", scope)
    assert value == expected and type(value) is int
    assert evaluate(f"${{make_divisible(c * m, divisor={divisor})}}", scope) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("make_divisible(32 * 0.35, 8)", 16),
        ("make_divisible(16 * 0.5, 8)", 8),
        ("make_divisible(96 * 1.3, 8)", 128),
        ("make_divisible(3, 8)", 8),
        ("make_divisible(1280 * 0.35)", 448),
        ("make_divisible(10, 8, 4)", 16),
        ("make_divisible(10, 8, 0)", 16),
        ("make_divisible(10.5, 4, 2.5)", 12),
    ],
)
def test_make_divisible_known_values(text, expected):
    value = evaluate("${" + text + "}", {})
    assert value == expected and type(value) is int


# --- Errors, located inside the string value -----------------------------------------------------------

# (text, code, offset, length or None, words in the message or hint)
BAD = [
    # syntax
    ("conv${i +* 2}", "expr-syntax", 9, 1, "'*'"),
    ("conv${i", "expr-syntax", 4, 2, "unclosed"),
    ("x ${'abc}", "expr-syntax", 2, 2, "never"),
    ("${}", "expr-syntax", 0, 3, "empty"),
    ("a ${  }", "expr-syntax", 2, 5, "empty"),
    ("${a.b}", "expr-syntax", 3, 1, "attribute access"),
    ("${xs[0].real}", "expr-syntax", 7, 1, "attribute access"),
    ("${xs[1:2]}", "expr-syntax", 6, 1, "slices"),
    ("${1 = 1}", "expr-syntax", 4, 1, "=="),
    ("${a is b}", "expr-syntax", 4, 2, "=="),
    ("${!flag}", "expr-syntax", 2, 1, "not"),
    ("${a && b}", "expr-syntax", 4, 2, "and"),
    ("${a || b}", "expr-syntax", 4, 2, "or"),
    ("${{'a': 1}}", "expr-syntax", 2, 1, "mappings"),
    ("${1 +}", "expr-syntax", 5, 1, "end of the expression"),
    ("${(1}", "expr-syntax", 4, 1, "')'"),
    ("${[1, 2}", "expr-syntax", 7, 1, "']'"),
    ("${(1, 2)}", "expr-syntax", 4, 1, "')'"),
    ("${a b}", "expr-syntax", 4, 1, "'b'"),
    ("${'a' 'b'}", "expr-syntax", 6, 3, "string"),
    ("${1 if true}", "expr-syntax", 11, 1, "'else'"),
    ("${1 if true else}", "expr-syntax", 16, 1, "value"),
    ("${xs[]}", "expr-syntax", 5, 1, "index"),
    ("${1 == not 2}", "expr-syntax", 7, 3, "parentheses"),
    ("${not}", "expr-syntax", 5, 1, "value"),
    ("${and}", "expr-syntax", 2, 3, "'and'"),
    ("${a not b}", "expr-syntax", 8, 1, "'in'"),
    ("${1abc}", "expr-syntax", 2, 4, "invalid number"),
    ("${1_000}", "expr-syntax", 2, 5, "invalid number"),
    ("${1e}", "expr-syntax", 2, 2, "invalid number"),
    ("${'a\\q'}", "expr-syntax", 4, 2, "escape"),
    ("${a ~ b}", "expr-syntax", 4, 1, "'~'"),
    ("${a ; b}", "expr-syntax", 4, 1, "';'"),
    ("${max(x=1, 2)}", "expr-syntax", 11, 1, "positional"),
    ("${max(1, x=2)}", "expr-type", 9, 1, "takes no argument 'x'"),
    ("${make_divisible(divisor=1, 2)}", "expr-syntax", 28, 1, "positional"),
    # calls
    ("${x(1)}", "expr-unknown-name", 2, 1, "unknown function"),
    ("${maxx(1, 2)}", "expr-unknown-name", 2, 4, "did you mean 'max'"),
    ("${zzz(1)}", "expr-unknown-name", 2, 3, "the functions are"),
    ("${print('hi')}", "expr-unknown-name", 2, 5, "unknown function 'print'"),
    ("${xs[0](1)}", "expr-type", 7, 1, "only the functions"),
    ("${(max)(1)}", "expr-type", 7, 1, "only the functions"),
    ("${len(1, 2)}", "expr-type", 2, 9, "takes 1 argument"),
    ("${len()}", "expr-type", 2, 5, "takes 1"),
    ("${min()}", "expr-type", 2, 5, "at least 1"),
    ("${round(1, 2, 3)}", "expr-type", 2, 14, "1 to 2"),
    ("${make_divisible(8, size=2)}", "expr-type", 20, 4, "takes no argument 'size'"),
    ("${make_divisible(8, 8, divisor=2)}", "expr-type", 23, 7, "two values"),
    ("${make_divisible(8, divisor=2, divisor=3)}", "expr-type", 31, 7, "twice"),
    ("${make_divisible(8, v=8)}", "expr-type", 20, 1, "got two values for 'v'"),
    # names
    ("x ${unknown}", "expr-unknown-name", 4, 7, "unknown name 'unknown'"),
    ("${widht}", "expr-unknown-name", 2, 5, "did you mean 'width'"),
    ("${True}", "expr-unknown-name", 2, 4, "did you mean 'true'"),
    ("${False}", "expr-unknown-name", 2, 5, "did you mean 'false'"),
    ("${None}", "expr-unknown-name", 2, 4, "did you mean 'null'"),
    ("${len}", "expr-unknown-name", 2, 3, "call it as len(...)"),
    ("${zzzzzz}", "expr-unknown-name", 2, 6, "the names here are"),
    ("${1 + xs[0] + qq}", "expr-unknown-name", 14, 2, "'qq'"),
    # types and values
    ("${'a' + 1}", "expr-type", 6, 1, "string 'a' and int 1"),
    ("${1 + 'a'}", "expr-type", 4, 1, "'+'"),
    ("${xs + 1}", "expr-type", 5, 1, "list"),
    ("${'a' - 'b'}", "expr-type", 6, 1, "'-'"),
    ("${'%d' % 5}", "expr-type", 7, 1, "'%'"),
    ("${'a' * 1.5}", "expr-type", 6, 1, "'*'"),
    ("${xs * xs}", "expr-type", 5, 1, "'*'"),
    ("${-'a'}", "expr-type", 2, 1, "unary '-'"),
    ("${-xs}", "expr-type", 2, 1, "unary"),
    ("${n[0]}", "expr-type", 3, 3, "cannot index int 10"),
    ("${nothing[0]}", "expr-type", 9, 3, "null"),
    ("${xs[3]}", "expr-value", 4, 3, "out of range"),
    ("${xs[-4]}", "expr-value", 4, 4, "out of range"),
    ("${xs[1.0]}", "expr-type", 4, 5, "must be an int"),
    ("${xs['a']}", "expr-type", 4, 5, "must be an int"),
    ("${cfg['unit']}", "expr-value", 5, 8, "did you mean 'units'"),
    ("${cfg[xs]}", "expr-value", 5, 4, "no key"),
    ("${1 / 0}", "expr-value", 4, 1, "division by zero"),
    ("${1 // 0}", "expr-value", 4, 2, "division by zero"),
    ("${1 % 0}", "expr-value", 4, 1, "division by zero"),
    ("${1.5 / 0.0}", "expr-value", 6, 1, "division by zero"),
    ("${0 ** -1}", "expr-value", 4, 2, "zero"),
    ("${(-8) ** 0.5}", "expr-value", 7, 2, "no real value"),
    ("${[1] < ['a']}", "expr-type", 6, 1, "cannot compare"),
    ("${1 < 'a'}", "expr-type", 4, 1, "cannot compare int 1 and string 'a'"),
    ("${1 < 2 < 'a'}", "expr-type", 8, 1, "'<'"),
    ("${1 in 2}", "expr-type", 4, 2, "'in'"),
    ("${1 in 'abc'}", "expr-type", 4, 2, "'in'"),
    ("${1 not in 'abc'}", "expr-type", 4, 6, "'not in'"),
    ("${int('abc')}", "expr-value", 2, 10, "cannot read"),
    ("${int('1.5')}", "expr-value", 2, 10, "cannot read"),
    ("${int(xs)}", "expr-type", 2, 7, "a number or a string"),
    ("${int(null)}", "expr-type", 2, 9, "null"),
    ("${float('x')}", "expr-value", 2, 10, "cannot read"),
    ("${float(xs)}", "expr-type", 2, 9, "float()"),
    ("${abs('a')}", "expr-type", 2, 8, "abs()"),
    ("${floor('a')}", "expr-type", 2, 10, "floor()"),
    ("${ceil(null)}", "expr-type", 2, 10, "ceil()"),
    ("${round('a')}", "expr-type", 2, 10, "round()"),
    ("${round(1.5, 0.5)}", "expr-type", 2, 15, "digits"),
    ("${len(5)}", "expr-type", 2, 6, "len()"),
    ("${min([])}", "expr-value", 2, 7, "empty"),
    ("${max(5)}", "expr-type", 2, 6, "needs a list"),
    ("${min(1, 'a')}", "expr-type", 2, 11, "int and string"),
    ("${make_divisible('a')}", "expr-type", 2, 19, "needs a number"),
    ("${make_divisible(8, 0)}", "expr-value", 2, 20, "positive divisor"),
    ("${make_divisible(8, -8)}", "expr-value", 2, 21, "positive divisor"),
    ("${make_divisible(8, 'a')}", "expr-type", 2, 22, "divisor"),
    ("${make_divisible(8, 8, 'a')}", "expr-type", 2, 25, "min_value"),
    ("${i}${'a' + 1}", "expr-type", 10, 1, "'+'"),
    ("x${[1] + 1}y", "expr-type", 7, 1, "'+'"),
    # limits on values
    ("${99999999999999999999}", "expr-limit", 2, 20, "2**63"),
    ("${9223372036854775809}", "expr-limit", 2, 19, "2**63"),
    ("${1e400}", "expr-limit", 2, 5, "too large for a float"),
    ("${2 ** 64}", "expr-limit", 4, 2, "2**63"),
    ("${2 ** 63 + 1}", "expr-limit", 10, 1, "2**63"),
    ("${-2 ** 63 - 1}", "expr-limit", 11, 1, "2**63"),
    ("${3 ** 40}", "expr-limit", 4, 2, "2**63"),
    ("${4611686018427387904 * 4}", "expr-limit", 22, 1, "2**63"),
    ("${1e308 * 10}", "expr-limit", 8, 1, "finite"),
    ("${2.0 ** 5000}", "expr-limit", 6, 2, "too large"),
    ("${10 ** 400.0}", "expr-limit", 5, 2, "too large"),
    ("${[] * 2 ** 63}", "expr-limit", 5, 1, "too large"),
    ("${float('inf')}", "expr-limit", 2, 12, "finite"),
    ("${float('nan')}", "expr-value", 2, 12, "finite"),
    ("${float('1e999')}", "expr-limit", 2, 14, "finite"),
    ("${int(1e300)}", "expr-limit", 2, 10, "2**63"),
    ("${floor(1e300)}", "expr-limit", 2, 12, "2**63"),
    ("${round(1e300)}", "expr-limit", 2, 12, "2**63"),
    ("${make_divisible(1e300)}", "expr-limit", 2, 21, "2**63"),
    ("${int('1' * 50)}", "expr-limit", 2, 13, "digits"),
    ("${'a' * 10001}", "expr-limit", 6, 1, "10,001 characters"),
    ("${'a' * 5000 + 'b' * 5001}", "expr-limit", 13, 1, "10,001 characters"),
    ("${[1] * 10001}", "expr-limit", 6, 1, "10,001 items"),
    ("${[0] * 10000 + [1]}", "expr-limit", 14, 1, "items"),
    ("${[[1] * 5000, [1] * 5000]}", "expr-limit", 2, 24, "items"),
    ("${[[1, 2]] * 3334}", "expr-limit", 11, 1, "items"),
    ("x${[0] * 5000}", "expr-limit", 1, 13, "characters"),
]


@pytest.mark.parametrize(("text", "code", "offset", "length", "words"), BAD, ids=[row[0] for row in BAD])
def test_bad_expression_is_located(text, code, offset, length, words):
    error = fault(text)
    assert (error.code, error.offset) == (code, offset), (error.message, error.hint)
    if length is not None:
        assert error.length == length, error.message
    assert words.lower() in f"{error.message} | {error.hint}".lower()
    assert 0 <= error.offset < len(text)
    assert str(error) == error.message


@pytest.mark.parametrize(
    "text",
    ["conv${i +* 2}", "${x(1)}", "${a.b}", "${1e400}", "${" + "(" * 65 + "1" + ")" * 65 + "}"],
)
def test_parse_alone_finds_static_errors(text):
    with pytest.raises(ExprError):
        parse(text)


def test_error_fields_and_pickling():
    error = fault("${widht + 1}")
    assert (error.code, error.offset, error.length, error.hint) == (
        "expr-unknown-name",
        2,
        5,
        "did you mean 'width'?",
    )
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.message, copy.offset, copy.length, copy.hint, copy.code) == (
        error.message,
        error.offset,
        error.length,
        error.hint,
        error.code,
    )


def test_unknown_name_hint_in_an_empty_scope():
    assert fault("${x}", {}).hint == "no names are defined here"


# --- The interface -------------------------------------------------------------------------------------


def test_has_expression():
    assert has_expression("conv${i}")
    assert has_expression("$${literal}")
    assert not has_expression("conv_$i {x} $")
    assert not has_expression("")


def test_names_and_whole():
    template = parse("conv${i + n}_${name if residual else xs[0]}_${max(i, 1)}")
    assert isinstance(template, Template)
    assert template.names == frozenset({"i", "n", "name", "residual", "xs"})
    assert not template.whole
    assert expression_names("${max(max, 1) + len(xs)}") == frozenset({"max", "xs"})
    assert expression_names("plain $${x}") == frozenset()
    assert expression_names("${true and null}") == frozenset()
    assert parse("${i}").whole
    assert not parse(" ${i}").whole
    assert not parse("${i}${i}").whole
    assert not parse("text").whole


def test_parse_is_cached_and_renders_with_any_scope():
    template = parse("conv${i}_bn")
    assert parse("conv${i}_bn") is template
    assert [template.render({"i": k}) for k in range(3)] == ["conv0_bn", "conv1_bn", "conv2_bn"]
    assert "conv" in repr(template)


def test_whole_value_is_the_scope_value_unchanged():
    assert evaluate("${xs}", SCOPE) is SCOPE["xs"]


# --- Bombs: refused fast, never hanging, recursing or allocating ------------------------------------

DEEP = 100_000
BOMBS = [
    "${10**10**10}",
    "${9**9**9**9}",
    "${2**2**2**2**2**2}",
    "${(10**18) ** 2}",
    "${2 ** 1000000000000000000}",
    "${'a' * 10**9}",
    "${10**9 * 'a'}",
    "${'ab' * 9223372036854775807}",
    "${[1] * 10**9}",
    "${[[1] * 10000] * 10000}",
    "${[[[1] * 100] * 100] * 100}",
    "${[1] * 5000 + [1] * 5001}",
    "${1.0e308 ** 1000000}",
    "${1.0000001 ** 9223372036854775807}",
    "${float('9' * 5000)}",
    "${int('9' * 9000)}",
    "${" + "(" * DEEP + "1" + ")" * DEEP + "}",
    "${" + "[" * DEEP + "}",
    "${" + "[" * DEEP + "]" * DEEP + "}",
    "${" + "-" * DEEP + "1}",
    "${" + "not " * DEEP + "1}",
    "${" + "2 ** " * DEEP + "2}",
    "${" + "(" * 65 + "1" + ")" * 65 + "}",
    "${" + "[" * 65 + "1" + "]" * 65 + "}",
    "${" + "-" * 65 + "1}",
    "${" + "not " * 65 + "1}",
    "${" + "2 ** " * 65 + "2}",
    "${xs" + "[0]" * 65 + "}",
    "${" + "max(" * 65 + "1" + ")" * 65 + "}",
    "${" + "1 if true else " * 65 + "1}",
    "${" + "x" * 10_001 + "}",
    "${'" + "a" * 10_001 + "'}",
]


@pytest.mark.parametrize("text", BOMBS, ids=[bomb[:40] for bomb in BOMBS])
def test_bombs_are_refused_fast(text):
    started = time.perf_counter()
    error = fault(text)
    assert time.perf_counter() - started < HANG  # a hang is the failure; bench_validate times it
    assert error.code in ("expr-limit", "expr-value"), error.message
    assert 0 <= error.offset < len(text)


def test_long_flat_chains_are_fine():
    text = "${" + "+".join(["1"] * 4000) + "}"
    assert evaluate(text, {}) == 4000
    text = "${" + " and ".join(["true"] * 1000) + "}"
    assert evaluate(text, {}) is True
    text = "${" + "(" * 64 + "1" + ")" * 64 + "}"
    assert evaluate(text, {}) == 1


def test_hostile_scope_values_are_refused_fast():
    loop: list = []
    loop.append(loop)
    wide = [1] * 100
    for _ in range(4):
        wide = [wide] * 100  # 10**10 items by reference: a YAML alias bomb
    deep: list = []
    for _ in range(5000):
        deep = [deep]
    scope = {"loop": loop, "wide": wide, "deep": deep, "big": 10**5000, "long": "a" * 100_000}
    for text in [
        "x${loop}",
        "${loop == loop}",
        "${[loop] == [loop]}",
        "${1 in loop}",
        "x${wide}",
        "${wide == wide}",
        "${wide + []}",
        "${max(wide)}",
        "${[wide, wide]}",
        "x${deep}",
        "${deep == deep}",
        "${deep < deep}",
        "${big * 1}",
        "${big ** 2}",
        "${float(big)}",
        "x${big}",
        "${long + ''}",
        "${long * 1}",
    ]:
        started = time.perf_counter()
        with pytest.raises(ExprError) as info:
            evaluate(text, scope)
        assert time.perf_counter() - started < HANG, text  # a hang is the failure
        assert info.value.code in CODES
    assert evaluate("${len(wide)}", scope) == 100
    assert evaluate("${wide[0][0][0][0][99]}", scope) == 1


# --- Properties ----------------------------------------------------------------------------------------

TOKENS = [
    *[
        "0",
        "1",
        "2",
        "7",
        "0.5",
        ".5",
        "1e3",
        "1e308",
        "9223372036854775807",
        "10",
        "'a'",
        '"b"',
        "'x\\'y'",
        "true",
        "false",
        "null",
    ],
    *["i", "n", "xs", "name", "empty", "cfg", "nested", "nothing", "unknown", "True"],
    *[
        "+",
        "-",
        "*",
        "/",
        "//",
        "%",
        "**",
        "==",
        "!=",
        "<",
        "<=",
        ">",
        ">=",
        "and",
        "or",
        "not",
        "in",
        "if",
        "else",
        "(",
        ")",
        "[",
        "]",
        ",",
        ".",
        ":",
        "=",
        "!",
        "{",
    ],
    *[
        "min(",
        "max(",
        "abs(",
        "round(",
        "floor(",
        "ceil(",
        "int(",
        "float(",
        "len(",
        "make_divisible(",
        "divisor=",
        "min_value=",
    ],
    "${",
    "}",
    "$${",
    "'",
    '"',
    "\\",
    " ",
]


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(TOKENS), max_size=25), st.booleans(), st.text(max_size=4))
def test_token_soup_only_ever_raises_expr_error(tokens, spaced, prefix):
    text = prefix + "${" + (" " if spaced else "").join(tokens) + "}"
    check_total(text)


@settings(max_examples=800, deadline=None)
@given(st.text(max_size=60))
def test_random_text_only_ever_raises_expr_error(text):
    check_total(text)
    check_total("${" + text + "}")


def check_total(text: str) -> None:
    try:
        value = evaluate(text, SCOPE)
    except ExprError as error:
        assert error.code in CODES
        assert 0 <= error.offset < len(text) and error.length >= 1
        assert isinstance(error.message, str) and error.message
    else:
        if not parse(text).whole:
            assert isinstance(value, str)
        if isinstance(value, int):
            assert abs(value) <= MAX_INT
        if isinstance(value, float):
            assert math.isfinite(value)


def _arithmetic(depth: int):
    """(text, value) pairs for fully parenthesized integer arithmetic; value None: it must fail."""
    leaf = st.integers(-30, 30).map(lambda k: (str(k) if k >= 0 else f"({k})", k))
    if depth == 0:
        return leaf
    child = _arithmetic(depth - 1)
    node = st.tuples(child, st.sampled_from(["+", "-", "*", "//", "%"]), child).map(_combine)
    return st.one_of(leaf, node)


def _combine(parts):
    (left_text, left), op, (right_text, right) = parts
    text = f"({left_text} {op} {right_text})"
    if left is None or right is None or (op in ("//", "%") and right == 0):
        return text, None
    value = {
        "+": lambda: left + right,
        "-": lambda: left - right,
        "*": lambda: left * right,
        "//": lambda: left // right,
        "%": lambda: left % right,
    }[op]()
    return text, (value if abs(value) <= MAX_INT else None)


@settings(max_examples=400, deadline=None)
@given(_arithmetic(4))
def test_integer_arithmetic_agrees_with_python(case):
    text, expected = case
    if expected is None:
        with pytest.raises(ExprError) as info:
            evaluate("${" + text + "}", {})
        assert info.value.code in ("expr-value", "expr-limit")
    else:
        assert evaluate("${" + text + "}", {}) == expected


@pytest.mark.parametrize(
    ("text", "literal"),
    [
        ("plain", True),
        ("$${kept}", True),
        ("cost: $$${x}", True),
        ("$$ ${x}", False),
        ("${x}", False),
        ("a${x}b", False),
    ],
)
def test_a_template_knows_whether_it_holds_an_expression(text, literal):
    assert parse(text).literal is literal
