"""Problem records and the one exception every stage raises.

Every stage collects :class:`Problem` records instead of failing on the first
one, then raises a single :class:`SpecError` carrying all of them. Only the
command line prints them and chooses an exit status.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

Path = tuple  # a tuple of str keys and int indices, like pydantic's ``loc``


def format_path(path: Path) -> str:
    """Render a path as ``layers.hidden.units`` or ``layers[2].units``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def shown(value: object, width: int = 60) -> str:
    """``repr(value)`` for a message, clipped: a hostile spec can hold a megabyte string.

    Containers are not rendered at all past ``width`` (their repr could be
    as large as the document), and numbers too long to print are described.
    """
    if isinstance(value, (list, dict)):
        text = _bounded_repr(value, width)
    else:
        try:
            text = repr(value)
        except ValueError:  # an int beyond sys.get_int_max_str_digits()
            return f"an integer of about {int(value.bit_length() * 0.30103):,} digits"  # type: ignore[union-attr]
    if len(text) > width:
        return (
            f"{text[: width - 3]}...' ({len(value):,} characters)"
            if isinstance(value, str)
            else text[:width] + "..."
        )
    return text


def _bounded_repr(value: list | dict, width: int) -> str:
    """The repr of a container, stopping once ``width`` characters are written.

    Iterative, over iterators: it never visits more than ``width`` items,
    however large or deeply nested the value (shared aliases included).
    """
    out: list[str] = []
    size = 0
    stack: list[tuple[Any, str]] = []  # (iterator of pieces, closing bracket)

    def open_(container: list | dict) -> str:
        if isinstance(container, dict):
            stack.append((iter(container.items()), "}"))
            return "{"
        stack.append((iter(container), "]"))
        return "["

    out.append(open_(value))
    first = True
    while stack and size <= width:
        items, closer = stack[-1]
        item = next(items, _END)
        if item is _END:
            stack.pop()
            out.append(closer)
            first = False
            continue
        if not first:
            out.append(", ")
        first = False
        if closer == "}":
            key, item = item
            out.append(f"{shown(key, width)}: ")
        if isinstance(item, (list, dict)):
            out.append(open_(item))
            first = True
        else:
            out.append(shown(item, width))
        size = sum(len(piece) for piece in out)
    text = "".join(out)
    return text if not stack else text[:width] + "..."


_END = object()


class Suggester:
    """Did-you-mean hints within a budget of comparisons.

    A hint compares a word with every candidate (``difflib``, quadratic in
    the length of the words). A hostile spec of 10,000 nodes that each name
    an unknown node would make that 10**8 comparisons; past the budget, and
    for a word already asked about, no new comparison is made.

    Args:
        budget: Candidates compared in all, over every call.
    """

    def __init__(self, budget: int = 50_000):
        self.budget = budget
        self.cache: dict[tuple[str, str], str | None] = {}

    def __call__(self, word: str, candidates: Iterable[str], scope: str) -> str | None:
        """The candidate ``word`` most likely stands for, or None.

        Args:
            word: What the spec says.
            candidates: The valid words.
            scope: Names the set of candidates, for the cache (``"args:Dense"``).
        """
        from ._catalog import suggest  # no Keras: the catalog is JSON

        key = (scope, word)
        if key in self.cache:
            return self.cache[key]
        if self.budget <= 0:
            return None
        pool = candidates if isinstance(candidates, (list, tuple, dict, set, frozenset)) else list(candidates)
        self.budget -= len(pool)
        self.cache[key] = near = suggest(word, pool) if len(word) <= 200 else None
        return near


def received(value: object) -> str:
    """What the spec gave, as messages quote it: ``'sixty-four'``, ``a mapping`` (clipped)."""
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        text = shown(value, 40)
        return f"a list {text}" if not text.endswith("...") else "a list"
    return shown(value)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a spec, and where it is.

    Attributes:
        path: Keys from the document root to the offending value.
        message: What is wrong, naming what was received.
        file: The spec's file name (or ``<string>``).
        line: 1-based line, or None when the place is unknown.
        column: 1-based column, or None.
        hint: A suggestion (a did-you-mean, a fix), or None.
        severity: ``"error"`` or ``"warning"``.
        end_column: 1-based column one past the offending text, for carets.
        source_line: The text of ``line``, for the excerpt under the message.
    """

    path: Path
    message: str
    file: str | None = None
    line: int | None = None
    column: int | None = None
    hint: str | None = None
    severity: str = "error"
    end_column: int | None = field(default=None, compare=False)
    source_line: str | None = field(default=None, compare=False, repr=False)

    def location(self) -> str:
        """``file:line:column`` (parts that are unknown are left out)."""
        parts = [self.file or "<spec>"]
        if self.line is not None:
            parts.append(str(self.line))
            if self.column is not None:
                parts.append(str(self.column))
        return ":".join(parts)

    def format(self, excerpt: bool = True) -> str:
        """Compiler-style text: the message, the source line with a caret, the hint.

        Control characters (and bidirectional overrides) from the spec are
        shown as ``?``: a hostile spec must not drive the terminal.
        """
        where = f"{format_path(self.path)}: " if self.path else ""  # a file-level problem has no path
        text = _printable(f"{self.location()}: {self.severity}: {where}{self.message}")
        if excerpt and self.source_line is not None and self.line is not None:
            shown, column = _clip(_printable(self.source_line.expandtabs(1)), self.column or 1)
            gutter = f"{self.line:>5} | "
            text += f"\n{gutter}{shown}"
            if self.column is not None:
                width = max(1, (self.end_column or self.column + 1) - self.column)
                width = min(width, max(1, len(shown) - column + 1))
                text += "\n" + " " * (len(gutter) - 2) + "| " + " " * (column - 1) + "^" * width
        if self.hint:
            text += f"\n      hint: {_printable(self.hint)}"
        return text

    def to_dict(self) -> dict:
        """A JSON-ready record (``path`` as a list)."""
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "severity": self.severity,
            "path": format_path(self.path),
            "message": self.message,
            "hint": self.hint,
        }

    def with_prefix(self, prefix: Path) -> Problem:
        """The same problem, its path under ``prefix``."""
        return replace(self, path=tuple(prefix) + tuple(self.path))


class SpecError(ValueError):
    """A spec (or its data or model file) is invalid.

    Attributes:
        problems: Every problem found, in source order.
    """

    def __init__(self, problems: Iterable[Problem]):
        self.problems: list[Problem] = sort_problems(problems)
        # The problems are the argument (so a pickled error comes back whole); the text is
        # made when asked for, not for every error a program catches and handles.
        super().__init__(self.problems)

    def __str__(self) -> str:
        return self.report(excerpt=False)

    @property
    def errors(self) -> list[Problem]:
        """The problems that are errors (not warnings)."""
        return [p for p in self.problems if p.severity == "error"]

    def report(self, excerpt: bool = True) -> str:
        """All problems, compiler style, then a count of errors."""
        lines = [p.format(excerpt) for p in self.problems]
        n = len(self.errors)
        lines.append(f"{n} error{'s' if n != 1 else ''}")
        return "\n".join(lines)


_UNSAFE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]")


def _printable(text: str) -> str:
    """``text`` with characters that move the cursor, recolour or reorder it replaced by ``?``."""
    return _UNSAFE.sub("?", text)


def _clip(line: str, column: int, width: int = 100) -> tuple[str, int]:
    """A window of a long source line around ``column`` (and the column in it)."""
    if len(line) <= width:
        return line, column
    start = max(0, min(column - 1 - width // 2, len(line) - width))
    shown = line[start : start + width]
    prefix, suffix = ("..." if start else ""), ("..." if start + width < len(line) else "")
    return prefix + shown + suffix, column - start + len(prefix)


def sort_problems(problems: Iterable[Problem]) -> list[Problem]:
    """Source order; problems with no line keep their order at the end."""
    unique = list(dict.fromkeys(problems))
    return sorted(unique, key=lambda p: (p.file or "", p.line is None, p.line or 0, p.column or 0))
