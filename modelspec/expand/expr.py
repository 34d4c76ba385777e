"""The spec format's expression language: ``${...}`` inside string values.

A string that is wholly ``"${expr}"`` becomes the value of ``expr`` with its
type (an int stays an int, a list stays a list); ``${...}`` inside a longer
string is interpolated as text (``"conv${i}_bn"``), and ``$${`` is a literal
``${``. The language is small and total: literals (numbers, quoted strings,
``true false null``, lists), names, ``+ - * / // % **``, comparisons,
``and or not``, ``a if c else b``, indexing ``xs[i]`` and the functions
``min max abs round floor ceil int float len make_divisible``.

It is tokenized, parsed (a Pratt parser) and evaluated (a tree walk) here,
never by ``eval``. Every size is bounded and checked *before* the work is
done, so a hostile spec gets an :class:`ExprError` at the column of the
fault, never a hang, a ``RecursionError`` or a large allocation.
"""

from __future__ import annotations

import difflib
import functools
import json
import math
import operator
import re
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

MAX_TEXT = 10_000  # characters in one expression, between '${' and '}'
MAX_DEPTH = 64  # nesting the parser follows (brackets, unary operators, '**', indexing); and of lists
MAX_INT = 2**63  # magnitude of an int literal or result
MAX_STR = 10_000  # characters in a string built by an expression, or in a list written into text
MAX_ITEMS = 10_000  # items in a list built or compared by an expression, nested items included


class ExprError(Exception):
    """A fault in an expression, located inside the string value that holds it.

    Attributes:
        message: What is wrong, naming the operation and the operands.
        offset: 0-based offset of the fault in the whole string value (the ``${``
            and any text before it count).
        length: How many characters to underline (at least 1).
        hint: A suggestion for the fix, or None.
        code: ``expr-syntax``, ``expr-unknown-name``, ``expr-type``, ``expr-limit`` or ``expr-value``.
    """

    def __init__(
        self, message: str, offset: int, length: int = 1, hint: str | None = None, code: str = "expr-syntax"
    ):
        super().__init__(message, offset, length, hint, code)  # all in args: it pickles whole
        self.message = message
        self.offset = offset
        self.length = max(1, length)
        self.hint = hint
        self.code = code

    def __str__(self) -> str:
        return self.message


def _error(code: str, message: str, start: int, end: int, hint: str | None = None) -> ExprError:
    return ExprError(message, start, end - start, hint, code)


class _Fault(Exception):
    """A fault found by a value operation, which knows no position: the evaluator adds it."""

    def __init__(self, code: str, message: str, hint: str | None = None):
        super().__init__(code, message, hint)
        self.code, self.message, self.hint = code, message, hint


# --- Tokens -------------------------------------------------------------------------------------------


class _Token(NamedTuple):
    kind: str  # "num", "str", "name", "op" or "end"
    text: str
    start: int  # offsets in the whole string value
    end: int
    value: Any = None


_TOKEN = re.compile(
    r"""(?P<space>\s+)
    |(?P<num>(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?)
    |(?P<name>[^\W\d]\w*)
    |(?P<str>'[^'\\]*(?:\\.[^'\\]*)*'|"[^"\\]*(?:\\.[^"\\]*)*")
    |(?P<op>\*\*|//|==|!=|<=|>=|&&|\|\||[-+*/%<>()\[\],=.:!{&|])""",
    re.VERBOSE | re.DOTALL,
)
_QUOTED = {q: re.compile(rf"{q}[^{q}\\]*(?:\\.[^{q}\\]*)*{q}", re.DOTALL) for q in "'\""}
_BRACE_OR_QUOTE = re.compile(r"""[}'"]""")
_WORD = re.compile(r"\w*")
_LITERALS = {"true": True, "false": False, "null": None}
_PYTHON_LITERALS = {"True": "true", "False": "false", "None": "null"}
_KEYWORDS = frozenset({"and", "or", "not", "in", "if", "else"})
_ESCAPES = {"\\": "\\", "'": "'", '"': '"', "n": "\n", "t": "\t"}
_HINTS = {
    ".": "attribute access is not part of the expression language; index lists with xs[i]",
    ":": "slices are not part of the expression language; index one item with xs[i]",
    "{": "mappings are not part of the expression language",
    "=": "use '==' to compare",
    "is": "use '==' to compare",
    "!": "use 'not'",
    **dict.fromkeys(["&&", "&"], "use 'and'"),
    **dict.fromkeys(["||", "|"], "use 'or'"),
}


def _tokenize(text: str, start: int, end: int) -> list[_Token]:
    """Split ``text[start:end]`` into tokens, closed by an "end" token on the ``}`` at ``end``."""
    tokens = []
    pos = start
    while pos < end:
        match = _TOKEN.match(text, pos, end)
        if match is None:
            raise ExprError(f"unexpected character {text[pos]!r}", pos, hint=_HINTS.get(text[pos]))
        kind, piece, at, pos = match.lastgroup, match.group(), match.start(), match.end()
        value = None
        if kind == "space":
            continue
        if kind == "num":
            if pos < end and (text[pos].isalnum() or text[pos] == "_"):  # 1abc, 1_000, 1e
                tail = _WORD.match(text, pos, end).end()
                raise _error("expr-syntax", f"invalid number {text[at:tail]!r}", at, tail)
            value = _number_literal(piece, at)
        elif kind == "str":
            value = _unescape(piece, at)
        tokens.append(_Token(kind, piece, at, pos, value))
    return [*tokens, _Token("end", "}", end, end + 1)]


def _number_literal(piece: str, at: int) -> int | float:
    """The value of a number token, refusing one past the limits."""
    if any(char in piece for char in ".eE"):
        value = float(piece)
        if math.isinf(value):
            raise _error("expr-limit", f"number {piece[:30]} is too large for a float", at, at + len(piece))
        return value
    # 2**63 has 19 digits: count them first, as int() of a huge literal is slow.
    if len(piece.lstrip("0")) > 19 or int(piece) > MAX_INT:
        raise _error("expr-limit", f"number {piece[:30]} is beyond the int limit 2**63", at, at + len(piece))
    return int(piece)


def _unescape(raw: str, at: int) -> str:
    """The value of a quoted string token: its body with the escapes replaced."""
    body = raw[1:-1]
    out, i = [], 0
    while (j := body.find("\\", i)) >= 0:
        char = body[j + 1]  # the token pattern guarantees a character after a backslash
        if char not in _ESCAPES:
            hint = "the escapes are \\' \\\" \\\\ \\n \\t"
            raise _error(
                "expr-syntax", f"unknown escape '\\{char}' in a string", at + 1 + j, at + 3 + j, hint
            )
        out += [body[i:j], _ESCAPES[char]]
        i = j + 2
    return "".join([*out, body[i:]])


def _describe(tok: _Token) -> str:
    if tok.kind == "end":
        return "the end of the expression"
    return {"str": "a string", "num": f"the number {tok.text}"}.get(tok.kind, f"'{tok.text}'")


def _syntax(message: str, tok: _Token, hint: str | None = None) -> ExprError:
    hint = hint or (_HINTS.get(tok.text) if tok.kind in ("op", "name") else None)
    return _error("expr-syntax", message, tok.start, tok.end, hint)


# --- Parser -------------------------------------------------------------------------------------------
#
# Nodes are tuples (kind, start, end, *fields), start and end being offsets in the string value:
#   ("const", s, e, value)  ("name", s, e, name)  ("list", s, e, items)  ("unary", s, e, op, operand)
#   ("not", s, e, operand)  ("if", s, e, then, condition, other)  ("index", s, e, target, index, bracket)
#   ("call", s, e, function, args, keywords), and (kind, s, e, first, rest) for the kinds "arith",
#   "compare", "and" and "or", rest holding (op, op_start, op_end, operand). Left-associative chains
#   are gathered flat, so that a long 1 + 1 + ... is a wide node, not a deep one.

_NOT_BP, _UNARY_BP = 4, 8
_INFIX_BP = {"if": 1, "or": 2, "and": 3, "+": 6, "-": 6, "*": 7, "/": 7, "//": 7, "%": 7, "**": 9}
_INFIX_BP |= dict.fromkeys(["not", "in", "==", "!=", "<", "<=", ">", ">="], 5)
_INFIX_BP |= dict.fromkeys(["[", "(", "."], 10)
_CHAIN_KINDS = {2: "or", 3: "and", 5: "compare", 6: "arith", 7: "arith"}


def _bp(tok: _Token) -> int:
    """The binding power of ``tok`` as an infix operator (0: it is not one)."""
    return _INFIX_BP.get(tok.text, 0) if tok.kind in ("op", "name") else 0


class _Parser:
    """A Pratt parser over one expression's tokens, following at most MAX_DEPTH nested levels."""

    def __init__(self, tokens: list[_Token]):
        self.tokens, self.pos, self.depth = tokens, 0, -1  # the whole expression is level 0
        self.names: set[str] = set()

    def peek(self, ahead: int = 0) -> _Token:
        return self.tokens[min(self.pos + ahead, len(self.tokens) - 1)]

    def take(self) -> _Token:
        tok = self.peek()
        self.pos = min(self.pos + 1, len(self.tokens) - 1)
        return tok

    def at(self, text: str, ahead: int = 0) -> bool:
        tok = self.peek(ahead)
        return tok.kind in ("op", "name") and tok.text == text

    def expect(self, text: str) -> _Token:
        if not self.at(text):
            raise _syntax(f"expected '{text}', found {_describe(self.peek())}", self.peek())
        return self.take()

    def enter(self) -> None:
        """Count one more nested level: the parser and the evaluator recurse once per level."""
        self.depth += 1
        if self.depth > MAX_DEPTH:
            tok = self.peek()
            raise _error("expr-limit", f"expression nested over {MAX_DEPTH} levels deep", tok.start, tok.end)

    def expression(self, min_bp: int = 0) -> tuple:
        """Parse an expression whose operators bind tighter than ``min_bp``."""
        entry = self.depth
        self.enter()
        left = self.prefix(min_bp)
        while (bp := _bp(self.peek())) > min_bp:
            left = self.infix(left, bp)
        self.depth = entry
        return left

    def prefix(self, min_bp: int) -> tuple:
        tok = self.take()
        if tok.kind in ("num", "str"):
            return ("const", tok.start, tok.end, tok.value)
        if tok.kind == "name" and tok.text in _LITERALS:
            return ("const", tok.start, tok.end, _LITERALS[tok.text])
        if tok.kind == "name" and tok.text == "not":
            if min_bp > _NOT_BP:  # as in Python, a == not b needs parentheses
                raise _syntax("'not' needs parentheses here", tok, "write (not x)")
            operand = self.expression(_NOT_BP)
            return ("not", tok.start, operand[2], operand)
        if tok.kind == "name" and tok.text not in _KEYWORDS:
            if self.at("("):
                return self.call(tok)
            self.names.add(tok.text)
            return ("name", tok.start, tok.end, tok.text)
        if tok.kind == "op" and tok.text in ("-", "+"):
            operand = self.expression(_UNARY_BP)
            return ("unary", tok.start, operand[2], tok.text, operand)
        if tok.kind == "op" and tok.text == "(":
            inner = self.expression()
            self.expect(")")
            return inner
        if tok.kind == "op" and tok.text == "[":
            items = self.arguments("]")
            return ("list", tok.start, self.expect("]").end, tuple(items))
        raise _syntax(f"expected a value, found {_describe(tok)}", tok)

    def arguments(self, closing: str, keywords: dict[str, tuple] | None = None) -> list[tuple]:
        """Comma-separated expressions up to ``closing`` (a trailing comma allowed), and ``k=v`` ones."""
        items: list[tuple] = []
        while not self.at(closing):
            tok = self.peek()
            if keywords is not None and tok.kind == "name" and self.at("=", 1):
                self.pos += 2
                if tok.text in keywords:
                    raise _error("expr-type", f"'{tok.text}' is given twice", tok.start, tok.end)
                keywords[tok.text] = (tok, self.expression())
            elif keywords:
                raise _syntax("a positional argument after a keyword argument", tok)
            else:
                items.append(self.expression())
            if not self.at(","):
                break
            self.take()
        return items

    def infix(self, left: tuple, bp: int) -> tuple:
        tok = self.take()
        if tok.text == "if":
            condition = self.expression(bp)
            if not self.at("else"):
                raise _syntax(f"expected 'else', found {_describe(self.peek())}", self.peek())
            self.take()
            other = self.expression(bp - 1)  # right-associative: a if b else c if d else e
            return ("if", left[1], other[2], left, condition, other)
        if tok.text == "**":  # right-associative, and its right side may carry a sign: 2 ** -1
            exponent = self.expression(_UNARY_BP)
            return ("arith", left[1], exponent[2], left, (("**", tok.start, tok.end, exponent),))
        if tok.text == "[":
            self.enter()  # xs[0][0]... nests, though this loop reads it
            if self.at("]"):
                raise _syntax("expected an index, found ']'", self.peek())
            index = self.expression()
            return ("index", left[1], self.expect("]").end, left, index, tok.start)
        if tok.text == "(":
            raise _error("expr-type", "only the functions can be called", tok.start, tok.end, _FUNCTION_LIST)
        if tok.text == ".":
            raise _syntax("unexpected '.'", tok)
        rest = []
        while True:  # a left-associative group, gathered flat
            op, end = tok.text, tok.end
            if op == "not":
                op, end = "not in", self.expect("in").end
            operand = self.expression(bp)
            rest.append((op, tok.start, end, operand))
            if _bp(self.peek()) != bp:
                return (_CHAIN_KINDS[bp], left[1], operand[2], left, tuple(rest))
            tok = self.take()

    def call(self, name: _Token) -> tuple:
        if name.text not in _FUNCTIONS:
            hint = _did_you_mean(name.text, _FUNCTIONS) or _FUNCTION_LIST
            raise _error("expr-unknown-name", f"unknown function '{name.text}'", name.start, name.end, hint)
        _, least, most, parameters = _FUNCTIONS[name.text]
        self.take()  # "("
        keywords: dict[str, tuple] = {}
        args = self.arguments(")", keywords)
        end = self.expect(")").end
        for key, (tok, _) in keywords.items():
            if key not in parameters or parameters.index(key) < len(args):
                problem = "got two values for" if key in parameters else "takes no argument"
                raise _error("expr-type", f"{name.text}() {problem} '{key}'", tok.start, tok.end)
        count = len(args) + len(keywords)
        if not least <= count <= most:
            wanted = f"{least} to {most}" if most < _ANY else f"at least {least}"
            wanted = str(least) if least == most else wanted
            message = f"{name.text}() takes {wanted} argument(s), not {count}"
            raise _error("expr-type", message, name.start, end)
        named = tuple((key, node) for key, (_, node) in keywords.items())
        return ("call", name.start, end, name.text, tuple(args), named)


# --- Values -------------------------------------------------------------------------------------------

_TYPE_NAMES = {bool: "bool", int: "int", float: "float", str: "string", type(None): "null", list: "list"}
_TYPE_NAMES[dict] = "mapping"


def _type(value: Any) -> str:
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def _show(value: Any) -> str:
    """A short description of a value for a message, bounded however large the value."""
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, (list, dict)):
        return f"a {_type(value)} of {len(value)} item{'' if len(value) == 1 else 's'}"
    if isinstance(value, int) and value.bit_length() > 64:
        return f"an int of about {int(value.bit_length() * 0.30103):,} digits"
    text = repr(value)
    return f"{_type(value)} {text if len(text) <= 40 else text[:36] + '...'}"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float))  # bools included, as in Python


def _number(value: Any, where: str) -> Any:
    if not _is_number(value):
        raise _Fault("expr-type", f"{where} needs a number, not {_show(value)}")
    return value


def _checked(value: Any) -> Any:
    """``value``, if it is a number within the limits (or no number)."""
    if isinstance(value, int) and abs(value) > MAX_INT:
        raise _Fault("expr-limit", f"the result, {_show(value)}, is beyond the int limit 2**63")
    if isinstance(value, float) and not math.isfinite(value):
        code = "expr-value" if math.isnan(value) else "expr-limit"
        raise _Fault(code, f"the result, {value}, is not a finite number")
    return value


def _measure(value: Any, budget: int = MAX_ITEMS) -> int:
    """How many items a list (or mapping) holds, nested ones included, refusing past ``budget``.

    Iterative and stopping at the budget, so a huge, deep or self-referencing
    list from the scope costs at most ``budget`` steps; the depth bound keeps
    Python's own (recursive) comparisons safe.
    """
    count, stack = 0, [(value, 0)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item
        count += len(children)
        if depth >= MAX_DEPTH:
            raise _Fault("expr-limit", f"a list nested over {MAX_DEPTH} levels deep")
        if count > budget:
            raise _Fault("expr-limit", f"a list of over {MAX_ITEMS:,} items (nested items count too)")
        stack.extend((child, depth + 1) for child in children if isinstance(child, (list, dict)))
    return count


def _new_list(items: list) -> list:
    budget = MAX_ITEMS - len(items)
    if budget < 0:
        raise _Fault("expr-limit", f"a list of over {MAX_ITEMS:,} items")
    for item in items:  # one budget across all items: never more than MAX_ITEMS steps in all
        if isinstance(item, (list, dict)):
            budget -= _measure(item, budget)
    return items


_ARITHMETIC = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv}
_ARITHMETIC |= {"//": operator.floordiv, "%": operator.mod, "**": operator.pow}
_COMPARISONS = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le}
_COMPARISONS |= {">": operator.gt, ">=": operator.ge}


def _huge_power(base: Any, exponent: Any) -> bool:
    """Whether an int power passes 2**63, judged before computing it.

    floor(log2|base|) * exponent is at most log2|base ** exponent| (and at most 0
    when |base| <= 1 or exponent <= 0, which never overflow).
    """
    return (
        isinstance(base, int) and isinstance(exponent, int) and (abs(base).bit_length() - 1) * exponent > 63
    )


def _binary(op: str, left: Any, right: Any) -> Any:
    """``left op right`` for an arithmetic operator, with sizes checked before the work is done."""
    numbers = _is_number(left) and _is_number(right)
    mismatch = _Fault("expr-type", f"'{op}' cannot combine {_show(left)} and {_show(right)}")
    if op == "+" and not numbers:
        if isinstance(left, str) and isinstance(right, str):
            if len(left) + len(right) > MAX_STR:
                raise _Fault(
                    "expr-limit", f"'+' would make a string of {len(left) + len(right):,} characters"
                )
        elif isinstance(left, list) and isinstance(right, list):
            _measure(right, MAX_ITEMS - _measure(left))
        else:
            raise mismatch
    elif op == "*" and not numbers:
        seq, count = (left, right) if isinstance(right, int) else (right, left)
        if not (isinstance(seq, (str, list)) and isinstance(count, int)):
            raise mismatch
        if isinstance(seq, str):
            size, limit, unit = len(seq), MAX_STR, "characters"
        else:
            size, limit, unit = _measure(seq), MAX_ITEMS, "items"
        if count > 0 and size * count > limit:
            raise _Fault("expr-limit", f"'*' would make a {_type(seq)} of {size * count:,} {unit}")
    elif not numbers:  # '%' above all: on a string it would be Python's printf formatting
        raise mismatch
    elif op in ("/", "//", "%") and right == 0:
        raise _Fault("expr-value", f"division by zero in {_show(left)} {op} {_show(right)}")
    elif op == "**" and _huge_power(left, right):
        raise _Fault("expr-limit", f"{_show(left)} ** {_show(right)} is beyond the int limit 2**63")
    try:
        result = _ARITHMETIC[op](left, right)
    except OverflowError:
        raise _Fault("expr-limit", f"{_show(left)} {op} {_show(right)} is too large") from None
    except ZeroDivisionError:
        raise _Fault("expr-value", f"{_show(left)} {op} {_show(right)} divides by zero") from None
    if isinstance(result, complex):
        raise _Fault("expr-value", f"{_show(left)} ** {_show(right)} has no real value")
    return _checked(result)


def _unary(op: str, value: Any) -> Any:
    _number(value, f"unary '{op}'")
    return _checked(-value if op == "-" else +value)


def _compare(op: str, left: Any, right: Any) -> bool:
    for value in (left, right):
        if isinstance(value, (list, dict)):
            _measure(value)  # Python compares containers item by item, recursively
    mismatch = _Fault("expr-type", f"'{op}' cannot compare {_show(left)} and {_show(right)}")
    if op in ("in", "not in"):
        if not isinstance(right, (str, list, dict)) or (isinstance(right, str) and not isinstance(left, str)):
            raise mismatch
        try:
            return (left in right) == (op == "in")
        except TypeError:  # an unhashable key looked up in a mapping
            raise mismatch from None
    try:
        return _COMPARISONS[op](left, right)
    except TypeError:
        raise mismatch from None


def _index(target: Any, index: Any) -> Any:
    if isinstance(target, dict):
        if isinstance(index, (list, dict)) or index not in target:
            hint = _did_you_mean(str(index), [key for key in target if isinstance(key, str)])
            raise _Fault("expr-value", f"the mapping has no key {_show(index)}", hint)
        return target[index]
    if not isinstance(target, (list, str)):
        raise _Fault("expr-type", f"cannot index {_show(target)}: only lists and strings have items")
    if not isinstance(index, int):
        raise _Fault("expr-type", f"an index must be an int, not {_show(index)}")
    if not -len(target) <= index < len(target):
        raise _Fault("expr-value", f"index {index} is out of range for {_show(target)}")
    return target[index]


class _Raw(NamedTuple):
    text: str  # punctuation in _text's output, as opposed to a value to write


def _text(value: Any) -> str:
    """``value`` as interpolated text: a string as is, others as YAML flow text (``[1, "a", true]``).

    Iterative and bounded to MAX_STR characters, so a deep or self-referencing
    list from the scope can neither recurse nor run on.
    """
    if isinstance(value, str):
        return value
    out, size, stack = [], 0, [value]
    while stack:
        item = stack.pop()
        if isinstance(item, (list, dict)) and len(item) > MAX_STR:
            raise _Fault("expr-limit", f"{_show(item)} is too long to write into text")
        if isinstance(item, _Raw):
            piece = item.text
        elif isinstance(item, list):
            piece = "["
            stack += [_Raw("]"), *reversed([p for child in item for p in (_Raw(", "), child)][1:])]
        elif isinstance(item, dict):
            piece = "{"
            pairs = [p for key, child in item.items() for p in (_Raw(", "), key, _Raw(": "), child)]
            stack += [_Raw("}"), *reversed(pairs[1:])]
        elif item is None or isinstance(item, (str, int, float)):
            piece = json.dumps(item, ensure_ascii=False)  # null, true, 1.5, "quoted"
        else:
            raise _Fault("expr-type", f"cannot write {_show(item)} into text")
        size += len(piece)
        if size > MAX_STR:
            raise _Fault("expr-limit", f"the text of {_show(value)} is over {MAX_STR:,} characters")
        out.append(piece)
    return "".join(out)


# --- Functions ----------------------------------------------------------------------------------------


def _min_max(pick: Callable, name: str) -> Callable:
    def impl(*args: Any) -> Any:
        items = args[0] if len(args) == 1 else list(args)
        if not isinstance(items, (list, str)):
            hint = f"write {name}(a, b) or {name}([a, b])"
            raise _Fault("expr-type", f"{name}() of one argument needs a list, not {_show(items)}", hint)
        if not items:
            raise _Fault("expr-value", f"{name}() of an empty {_type(items)}")
        if isinstance(items, list):
            _measure(items)  # Python compares the items, recursively
        try:
            return pick(items)
        except TypeError:
            kinds = " and ".join(sorted({_type(item) for item in items}))
            raise _Fault("expr-type", f"{name}() cannot compare {kinds}") from None

    return impl


def _round(x: Any, ndigits: Any = None) -> Any:
    _number(x, "round()")
    if ndigits is None:
        return _checked(round(x))
    if not isinstance(ndigits, int):
        raise _Fault("expr-type", f"round() needs an int number of digits, not {_show(ndigits)}")
    # Past 400 digits either way every bounded number rounds alike, and to round an int
    # Python would build 10**-ndigits.
    return _checked(round(x, max(-400, min(400, ndigits))))


def _convert(kind: type) -> Callable:
    """``int()`` or ``float()``: of a number (ints truncate) or of a string."""

    def impl(x: Any) -> Any:
        if isinstance(x, str):
            if kind is int and len(x.strip()) > 40:  # int() of thousands of digits is slow
                raise _Fault("expr-limit", f"int() of {_show(x)}: too many digits for an int")
            try:
                return _checked(kind(x))
            except ValueError:
                raise _Fault("expr-value", f"{kind.__name__}() cannot read {_show(x)}") from None
        if not _is_number(x):
            raise _Fault("expr-type", f"{kind.__name__}() needs a number or a string, not {_show(x)}")
        return _checked(kind(x))

    return impl


def _len(x: Any) -> int:
    if not isinstance(x, (str, list, dict)):
        raise _Fault("expr-type", f"len() needs a string or a list, not {_show(x)}")
    return len(x)


def _make_divisible(v: Any, divisor: Any = 8, min_value: Any = None) -> int:
    """MobileNet's channel rounding: ``v`` to a multiple of ``divisor``, losing at most 10% of it."""
    _number(v, "make_divisible()")
    _number(divisor, "make_divisible()'s divisor")
    if min_value is not None:
        _number(min_value, "make_divisible()'s min_value")
    if divisor <= 0:
        raise _Fault("expr-value", f"make_divisible() needs a positive divisor, not {_show(divisor)}")
    new_v = max(min_value or divisor, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return _checked(int(new_v))


_ANY = 1 << 30
_FUNCTIONS: dict[str, tuple[Callable, int, int, tuple[str, ...]]] = {  # impl, arity, parameter names
    "min": (_min_max(min, "min"), 1, _ANY, ()),
    "max": (_min_max(max, "max"), 1, _ANY, ()),
    "abs": (lambda x: _checked(abs(_number(x, "abs()"))), 1, 1, ()),
    "round": (_round, 1, 2, ()),
    "floor": (lambda x: _checked(math.floor(_number(x, "floor()"))), 1, 1, ()),
    "ceil": (lambda x: _checked(math.ceil(_number(x, "ceil()"))), 1, 1, ()),
    "int": (_convert(int), 1, 1, ()),
    "float": (_convert(float), 1, 1, ()),
    "len": (_len, 1, 1, ()),
    "make_divisible": (_make_divisible, 1, 3, ("v", "divisor", "min_value")),
}
_FUNCTION_LIST = "the functions are " + ", ".join(_FUNCTIONS)


# --- Evaluation ---------------------------------------------------------------------------------------


def _did_you_mean(name: str, candidates: Any) -> str | None:
    match = difflib.get_close_matches(name, list(candidates), n=1)
    return f"did you mean '{match[0]}'?" if match else None


def _apply(start: int, end: int, func: Callable, *args: Any) -> Any:
    """``func(*args)``, giving any fault it finds the position ``start:end``."""
    try:
        return func(*args)
    except _Fault as fault:
        raise _error(fault.code, fault.message, start, end, fault.hint) from None
    # A safety net: the operations check their operands first, but a value from the scope
    # could still surprise Python, and the language stays total by reporting that too.
    except OverflowError as exc:
        raise _error("expr-limit", f"a value is too large: {exc}", start, end) from None
    except (ArithmeticError, ValueError) as exc:
        raise _error("expr-value", f"invalid value: {exc}", start, end) from None
    except TypeError as exc:
        raise _error("expr-type", f"invalid operand: {exc}", start, end) from None


def _lookup(name: str, start: int, end: int, scope: Mapping[str, Any]) -> Any:
    if name in scope:
        return scope[name]
    known = sorted(key for key in scope if isinstance(key, str))
    if name in _PYTHON_LITERALS:
        hint = f"did you mean '{_PYTHON_LITERALS[name]}'?"
    elif name in _FUNCTIONS:
        hint = f"'{name}' is a function: call it as {name}(...)"
    else:
        listed = f"the names here are {', '.join(known[:12])}" if known else "no names are defined here"
        hint = _did_you_mean(name, known) or listed
    raise _error("expr-unknown-name", f"unknown name '{name}'", start, end, hint)


def _eval(node: tuple, scope: Mapping[str, Any]) -> Any:
    """The value of a parsed expression; the recursion is bounded by the parser's MAX_DEPTH."""
    match node:
        case ("const", _, _, value):
            return value
        case ("name", start, end, name):
            return _lookup(name, start, end, scope)
        case ("list", start, end, items):
            return _apply(start, end, _new_list, [_eval(item, scope) for item in items])
        case ("unary", start, _, op, operand):
            return _apply(start, start + 1, _unary, op, _eval(operand, scope))
        case ("not", _, _, operand):
            return not _eval(operand, scope)
        case ("if", _, _, then, condition, other):
            return _eval(then if _eval(condition, scope) else other, scope)
        case ("index", _, end, target, index, bracket):
            return _apply(bracket, end, _index, _eval(target, scope), _eval(index, scope))
        case ("call", start, end, function, args, keywords):
            values = [_eval(arg, scope) for arg in args]
            named = {key: _eval(arg, scope) for key, arg in keywords}
            return _apply(start, end, lambda: _FUNCTIONS[function][0](*values, **named))
        case ("and" | "or" as kind, _, _, first, rest):
            value = _eval(first, scope)
            for *_, operand in rest:
                if bool(value) == (kind == "or"):  # short-circuit: the rest is not evaluated
                    return value
                value = _eval(operand, scope)
            return value
        case ("compare", _, _, first, rest):
            left = _eval(first, scope)
            for op, op_start, op_end, operand in rest:
                right = _eval(operand, scope)
                if not _apply(op_start, op_end, _compare, op, left, right):
                    return False
                left = right
            return True
        case ("arith", _, _, first, rest):
            value = _eval(first, scope)
            for op, op_start, op_end, operand in rest:
                value = _apply(op_start, op_end, _binary, op, value, _eval(operand, scope))
            return value
    raise AssertionError(f"unknown node {node[0]!r}")  # pragma: no cover


# --- Templates ----------------------------------------------------------------------------------------


class _Expr(NamedTuple):
    node: tuple
    start: int  # the '$' of '${'
    end: int  # just past the '}'


class Template:
    """A parsed string value: literal text and ``${...}`` expressions, ready to render many times.

    Attributes:
        text: The string value as written.
        names: The free names its expressions use.
        whole: True when the string is exactly one ``${...}``: rendering gives the value with its type.
    """

    __slots__ = ("_parts", "names", "text", "whole")

    def __init__(self, text: str, parts: tuple[str | _Expr, ...], names: frozenset[str]):
        self.text, self._parts, self.names = text, parts, names
        self.whole = len(parts) == 1 and isinstance(parts[0], _Expr)

    def __repr__(self) -> str:
        return f"Template({self.text[:60]!r})"

    def render(self, scope: Mapping[str, Any]) -> Any:
        """Evaluate the expressions with the names in ``scope``.

        Returns:
            The typed value when the template is ``whole``; otherwise the string with
            each expression's value written in as text and each ``$${`` as ``${``.

        Raises:
            ExprError: An unknown name, a type or value fault, or a value past the limits.
        """
        if self.whole:
            return _eval(self._parts[0].node, scope)
        return "".join(
            part if isinstance(part, str) else _apply(part.start, part.end, _text, _eval(part.node, scope))
            for part in self._parts
        )


def has_expression(text: str) -> bool:
    """Whether ``text`` needs :func:`parse`: it holds ``${`` (as ``$${`` does too)."""
    return "${" in text


@functools.lru_cache(maxsize=4096)
def parse(text: str) -> Template:
    """Parse a whole string value into literal text and expressions (cached: block bodies repeat).

    Raises:
        ExprError: A syntax error, an unknown function, a wrong call, or an
            expression past the size or nesting limits.
    """
    parts: list[str | _Expr] = []
    names: set[str] = set()
    literal: list[str] = []  # text since the last expression
    i = 0
    while (j := text.find("$", i)) >= 0:
        if text.startswith("$${", j):
            literal += [text[i:j], "${"]
            i = j + 3
        elif text.startswith("${", j):
            if (before := "".join([*literal, text[i:j]])) != "":
                parts.append(before)
            close = _closing_brace(text, j)
            node, used = _parse_expression(text, j, close)
            parts.append(_Expr(node, j, close + 1))
            names |= used
            literal, i = [], close + 1
        else:
            literal.append(text[i : j + 1])
            i = j + 1
    if (after := "".join([*literal, text[i:]])) != "":
        parts.append(after)
    return Template(text, tuple(parts), frozenset(names))


def _closing_brace(text: str, dollar: int) -> int:
    """The offset of the ``}`` closing the ``${`` at ``dollar``; a ``}`` inside quotes does not count."""
    pos = dollar + 2
    while match := _BRACE_OR_QUOTE.search(text, pos):
        if match.group() == "}":
            return match.start()
        quoted = _QUOTED[match.group()].match(text, match.start())
        if quoted is None:
            hint = f"the quote at offset {match.start()} is never closed"
            raise _error(
                "expr-syntax", "unclosed '${': a string inside it never ends", dollar, dollar + 2, hint
            )
        pos = quoted.end()
    hint = "end the expression with '}', or write '$${' for a literal '${'"
    raise _error("expr-syntax", "unclosed '${': no '}' ends it", dollar, dollar + 2, hint)


def _parse_expression(text: str, dollar: int, close: int) -> tuple[tuple, set[str]]:
    """Parse the expression in ``text[dollar + 2:close]``: its tree and its free names."""
    if close - dollar - 2 > MAX_TEXT:
        raise _error("expr-limit", f"expression over {MAX_TEXT:,} characters", dollar, dollar + 2)
    if not text[dollar + 2 : close].strip():
        hint = "write an expression between the braces"
        raise _error("expr-syntax", "empty expression '${}'", dollar, close + 1, hint)
    parser = _Parser(_tokenize(text, dollar + 2, close))
    node = parser.expression()
    if (tok := parser.peek()).kind != "end":
        raise _syntax(f"unexpected {_describe(tok)}: expected an operator or the end", tok)
    return node, parser.names


def evaluate(text: str, scope: Mapping[str, Any]) -> Any:
    """``parse(text).render(scope)``: the value of a string value in ``scope``."""
    return parse(text).render(scope)


def expression_names(text: str) -> frozenset[str]:
    """The free names the expressions in ``text`` use."""
    return parse(text).names
