"""The expression language's tokens: limits, the error type, and splitting ``${...}`` into tokens."""

from __future__ import annotations

import math
import re
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


def error(code: str, message: str, start: int, end: int, hint: str | None = None) -> ExprError:
    return ExprError(message, start, end - start, hint, code)


class Token(NamedTuple):
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
QUOTED = {q: re.compile(rf"{q}[^{q}\\]*(?:\\.[^{q}\\]*)*{q}", re.DOTALL) for q in "'\""}
BRACE_OR_QUOTE = re.compile(r"""[}'"]""")
_WORD = re.compile(r"\w*")
LITERALS = {"true": True, "false": False, "null": None}
PYTHON_LITERALS = {"True": "true", "False": "false", "None": "null"}
KEYWORDS = frozenset({"and", "or", "not", "in", "if", "else"})
_ESCAPES = {"\\": "\\", "'": "'", '"': '"', "n": "\n", "t": "\t"}
HINTS = {
    ".": "attribute access is not part of the expression language; index lists with xs[i]",
    ":": "slices are not part of the expression language; index one item with xs[i]",
    "{": "mappings are not part of the expression language",
    "=": "use '==' to compare",
    "is": "use '==' to compare",
    "!": "use 'not'",
    **dict.fromkeys(["&&", "&"], "use 'and'"),
    **dict.fromkeys(["||", "|"], "use 'or'"),
}


def tokenize(text: str, start: int, end: int) -> list[Token]:
    """Split ``text[start:end]`` into tokens, closed by an "end" token on the ``}`` at ``end``."""
    tokens = []
    pos = start
    while pos < end:
        match = _TOKEN.match(text, pos, end)
        if match is None:
            raise ExprError(f"unexpected character {text[pos]!r}", pos, hint=HINTS.get(text[pos]))
        kind, piece, at, pos = match.lastgroup, match.group(), match.start(), match.end()
        value = None
        if kind == "space":
            continue
        if kind == "num":
            if pos < end and (text[pos].isalnum() or text[pos] == "_"):  # 1abc, 1_000, 1e
                tail = _WORD.match(text, pos, end).end()
                raise error("expr-syntax", f"invalid number {text[at:tail]!r}", at, tail)
            value = _number_literal(piece, at)
        elif kind == "str":
            value = _unescape(piece, at)
        tokens.append(Token(kind, piece, at, pos, value))
    return [*tokens, Token("end", "}", end, end + 1)]


def _number_literal(piece: str, at: int) -> int | float:
    """The value of a number token, refusing one past the limits."""
    if any(char in piece for char in ".eE"):
        value = float(piece)
        if math.isinf(value):
            raise error("expr-limit", f"number {piece[:30]} is too large for a float", at, at + len(piece))
        return value
    # 2**63 has 19 digits: count them first, as int() of a huge literal is slow.
    if len(piece.lstrip("0")) > 19 or int(piece) > MAX_INT:
        raise error("expr-limit", f"number {piece[:30]} is beyond the int limit 2**63", at, at + len(piece))
    return int(piece)


def _unescape(raw: str, at: int) -> str:
    """The value of a quoted string token: its body with the escapes replaced."""
    body = raw[1:-1]
    out, i = [], 0
    while (j := body.find("\\", i)) >= 0:
        char = body[j + 1]  # the token pattern guarantees a character after a backslash
        if char not in _ESCAPES:
            hint = "the escapes are \\' \\\" \\\\ \\n \\t"
            raise error("expr-syntax", f"unknown escape '\\{char}' in a string", at + 1 + j, at + 3 + j, hint)
        out += [body[i:j], _ESCAPES[char]]
        i = j + 2
    return "".join([*out, body[i:]])


def describe(tok: Token) -> str:
    if tok.kind == "end":
        return "the end of the expression"
    return {"str": "a string", "num": f"the number {tok.text}"}.get(tok.kind, f"'{tok.text}'")


def syntax(message: str, tok: Token, hint: str | None = None) -> ExprError:
    hint = hint or (HINTS.get(tok.text) if tok.kind in ("op", "name") else None)
    return error("expr-syntax", message, tok.start, tok.end, hint)


def closing_brace(text: str, dollar: int) -> int:
    """The offset of the ``}`` closing the ``${`` at ``dollar``; a ``}`` inside quotes does not count."""
    pos = dollar + 2
    while match := BRACE_OR_QUOTE.search(text, pos):
        if match.group() == "}":
            return match.start()
        quoted = QUOTED[match.group()].match(text, match.start())
        if quoted is None:
            hint = f"the quote at offset {match.start()} is never closed"
            raise error(
                "expr-syntax", "unclosed '${': a string inside it never ends", dollar, dollar + 2, hint
            )
        pos = quoted.end()
    hint = "end the expression with '}', or write '$${' for a literal '${'"
    raise error("expr-syntax", "unclosed '${': no '}' ends it", dollar, dollar + 2, hint)
