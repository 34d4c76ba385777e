"""The key of a ``get_item`` op: Python subscript syntax, read by modelspec (never evaluated).

``{op: get_item, inputs: x, key: "[:, 0, :]"}`` is ``x[:, 0, :]``. A key is
``[`` items ``]``; an item is an integer, a slice with integer bounds
(``1:``, ``:-1``, ``::2``), ``None`` (a new axis of size 1) or ``...`` (every
axis not named, at most once). Nothing else: no names, no expressions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

MAX_LENGTH = 1000
"""Longest key text read: a key names a few axes; longer text is refused before it is read."""

Item = Any
"""One item of a key: an ``int``, a ``slice`` of ints (or None bounds), ``None`` or ``Ellipsis``."""

_TOKEN = re.compile(
    r"\s*(?:(?P<int>[-+]?[0-9]+)|(?P<word>[A-Za-z_][A-Za-z0-9_]*)|(?P<dots>\.\.\.)|(?P<punct>[\[\]:,]))"
)


@dataclass
class SubscriptError(Exception):
    """A key modelspec cannot read: the message, and where in the text (0-based offset, length)."""

    message: str
    offset: int
    length: int = 1


def parse_key(text: str) -> tuple[Item, ...]:
    """The items of a ``get_item`` key, in order.

    Raises:
        SubscriptError: The text is not a key of integers, integer slices, ``None`` and ``...``.
    """
    if len(text) > MAX_LENGTH:
        raise SubscriptError(f"the key is {len(text)} characters long; at most {MAX_LENGTH}", 0, 1)
    tokens = _tokens(text)
    if not tokens or tokens[0][0] != "[":
        where = tokens[0][1] if tokens else 0
        raise SubscriptError("a key is written in brackets, as in Python: '[:, 0, :]'", where)
    pos = 1
    items: list[Item] = []
    while True:
        item, pos = _item(tokens, pos, text)
        items.append(item)
        token, offset = tokens[pos]
        if token == "]":
            pos += 1
            break
        if token != ",":
            raise SubscriptError(f"expected ',' or ']', got {_shown(token)}", offset, max(len(token), 1))
        pos += 1
        if tokens[pos][0] == "]":  # a trailing comma, as Python allows
            pos += 1
            break
    if tokens[pos][0] != "":
        raise SubscriptError(
            f"unexpected {_shown(tokens[pos][0])} after the key's closing ']'", tokens[pos][1]
        )
    if sum(item is Ellipsis for item in items) > 1:
        raise SubscriptError("a key holds '...' at most once", text.index("...", text.index("...") + 3), 3)
    return tuple(items)


def _tokens(text: str) -> list[tuple[str, int]]:
    """(token, offset) pairs, ending with ``("", len)``; an unknown character is an error at its place."""
    out: list[tuple[str, int]] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            if text[pos:].strip() == "":
                break
            start = pos + len(text[pos:]) - len(text[pos:].lstrip())
            raise SubscriptError(
                f"{_shown(text[start])} cannot stand in a key: integers, slices (1:3), None and ... only",
                start,
            )
        out.append((m.group(m.lastgroup or ""), m.start(m.lastgroup or 0)))
        pos = m.end()
    out.append(("", len(text)))
    return out


def _item(tokens: list[tuple[str, int]], pos: int, text: str) -> tuple[Item, int]:
    token, offset = tokens[pos]
    if token == "None":
        return None, pos + 1
    if token == "...":
        return Ellipsis, pos + 1
    if token[:1].isalpha() or token[:1] == "_":
        raise SubscriptError(
            f"{_shown(token)} cannot stand in a key: integers, slices (1:3), None and ... only "
            "(modelspec reads the key, it never evaluates it)",
            offset,
            len(token),
        )
    parts: list[int | None] = []
    bound: int | None = None
    colons = 0
    while True:
        token, offset = tokens[pos]
        if _is_int(token):
            if bound is not None:
                raise SubscriptError(f"expected ':', ',' or ']', got {_shown(token)}", offset, len(token))
            bound = int(token)
            pos += 1
        elif token == ":":
            if colons == 2:
                raise SubscriptError("a slice has at most two ':' (start:stop:step)", offset)
            parts.append(bound)
            bound, colons, pos = None, colons + 1, pos + 1
        elif token in (",", "]"):
            break
        elif token == "":
            raise SubscriptError("the key has no closing ']'", offset)
        else:
            raise SubscriptError(
                f"expected an integer, ':', ',' or ']', got {_shown(token)}", offset, len(token)
            )
    if colons == 0:
        if bound is None:
            raise SubscriptError("an empty item: write an integer, a slice, None or ...", offset)
        return bound, pos
    parts.append(bound)
    start, stop, *rest = parts
    step = rest[0] if rest else None
    if step == 0:
        raise SubscriptError("a slice step cannot be zero", offset)
    return slice(start, stop, step), pos


def _is_int(token: str) -> bool:
    return bool(token) and (token[0].isdigit() or (token[0] in "+-" and token[1:].isdigit()))


def _shown(token: str) -> str:
    return f"'{token}'" if token else "the end of the key"


def format_key(items: tuple[Item, ...]) -> str:
    """The text of a key, as a spec writes it: ``(slice(None), 0)`` -> ``'[:, 0]'``."""

    def one(item: Item) -> str:
        if item is Ellipsis:
            return "..."
        if item is None:
            return "None"
        if isinstance(item, slice):
            text = f"{'' if item.start is None else item.start}:{'' if item.stop is None else item.stop}"
            return text + (f":{item.step}" if item.step is not None else "")
        return str(item)

    return "[" + ", ".join(one(i) for i in items) + "]"
