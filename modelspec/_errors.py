"""Problem records and the one exception every stage raises.

Every stage collects :class:`Problem` records instead of failing on the first
one, then raises a single :class:`SpecError` carrying all of them. Only the
command line prints them and chooses an exit status.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

Path = tuple  # a tuple of str keys and int indices, like pydantic's ``loc``


def format_path(path: Path) -> str:
    """Render a path as ``layers.hidden.units`` or ``layers[2].units``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "<spec>"


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
        text = _printable(f"{self.location()}: {self.severity}: {format_path(self.path)}: {self.message}")
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
        super().__init__(self.report(excerpt=False))

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
