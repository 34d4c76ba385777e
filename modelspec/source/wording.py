"""The source stage's words for YAML's errors: PyYAML's message, placed where the fix goes, with a hint.

PyYAML reports where its scanner stopped ("could not find expected ':'"),
often lines after the mistake; these functions point at the place to fix
(an unclosed bracket where it opens, a key over YAML's length limit at its
start) and say what to do.
"""

from __future__ import annotations

import functools
import re
from typing import Any

import yaml

from ..errors import Problem

Source = Any
"""A :class:`modelspec.source.Source` (its ``name``, ``text``, ``lines`` and ``line_text``), not imported: the document imports this."""

__all__ = ["MAX_KEY", "reader_problem", "syntax_problem"]


@functools.cache
def _not_printable() -> re.Pattern:
    """Characters YAML does not allow in a document (as PyYAML's reader); compiled when needed (5 ms)."""
    return re.compile("[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


_CLOSER = {"sequence": "]", "mapping": "}"}


def _at(source: Source, message: str, mark: Any, hint: str | None, code: str = "yaml-syntax") -> Problem:
    """A problem at a YAML mark (0-based line and column)."""
    line, column = mark.line + 1, mark.column + 1
    last = source.text.count("\n") + 1
    if line > last:  # the end of a text without a final newline: its last line
        line, column = last, len(source.text) - (source.text.rfind("\n") + 1) + 1
    return Problem(
        (),
        message,
        source.name,
        line,
        column,
        hint,
        "error",
        None,
        source.line_text(line),
        code=code,
    )


_INDEXED = re.compile(r"(?<![\w'\"])[A-Za-z_][\w.\-]*\[-?\d+\]")
"""An unquoted reference with an index, ``lstm[1]``."""
_EXPRESSION = re.compile(r"(?<!\$)\$\{[^{}'\"]*\}")
"""An expression, ``${units}``: inside ``{...}`` unquoted, its braces are YAML's."""


def _unquoted_expression(line: str) -> str | None:
    """The first ``${...}`` in ``line`` outside quotes (even quotes before it, as a guess), or None."""
    for match in _EXPRESSION.finditer(line):
        before = line[: match.start()]
        if before.count('"') % 2 == 0 and before.count("'") % 2 == 0:
            return match.group(0)
    return None


def syntax_problem(source: Source, e: yaml.MarkedYAMLError, max_depth: int) -> Problem:
    """PyYAML's error in our words: at the place to fix (an unclosed bracket: where it opens), with a hint."""
    context, problem = str(e.context or "").strip(), str(e.problem or "").strip()
    message = "invalid YAML: " + " ".join(m for m in (context, problem) if m)
    mark, opened = e.problem_mark or e.context_mark, e.context_mark
    if mark is None:
        return Problem((), message, source.name, 1, 1, code="yaml-syntax")
    at_end = mark.index >= len(source.text.rstrip())
    line_text = source.line_text(mark.line + 1) or ""
    indent = len(line_text) - len(line_text.lstrip(" "))
    flow = next((kind for kind in _CLOSER if f"flow {kind}" in context), None)

    long_key = _long_key(line_text, mark.column)
    if long_key is not None:
        start, length = long_key
        return _at(
            source,
            f"invalid YAML: this key is {length:,} characters long; "
            f"YAML reads at most {MAX_KEY:,} characters before a key's ':'",
            yaml.Mark(source.name, 0, mark.line, start, None, None),
            "shorten the key: no name in a spec needs to be that long",
        )
    if "maximum nesting depth" in problem:
        # PyYAML (6.0.4+) stops flow nesting in its scanner, which reads ahead of our own depth check.
        return _at(source, f"the document nests deeper than {max_depth} levels", mark, None, "yaml-limit")
    if "simple key" in context and opened is not None and opened.line < mark.line:
        # A line that is neither `key: value` nor a list item: PyYAML notices on a later line.
        return _at(
            source,
            "invalid YAML: this line is neither `key: value` nor a list item (no ':' follows "
            + ("before the end of the file)" if at_end else f"before line {mark.line + 1})"),
            opened,
            "a key and its value are written `key: value`; a list item starts with '- '",
        )
    if "quoted scalar" in context and opened is not None and "end of stream" in problem:
        return _at(
            source,
            "invalid YAML: this quoted string is never closed (the file ends first)",
            opened,
            "end the string with the quote it starts with",
        )
    if flow and opened is not None and opened.line < mark.line and (at_end or mark.column == 0):
        closer = _CLOSER[flow]
        return _at(
            source,
            f"invalid YAML: the '{'[' if flow == 'sequence' else '{'}' here is never closed "
            f"(expected ',' or '{closer}', found {'the end of the file' if at_end else f'line {mark.line + 1}'})",
            opened,
            f"close it with '{closer}'",
        )
    hint = None
    if "\t" in line_text[: mark.column + 1] or "'\\t'" in problem or "tab character" in problem:
        hint = "YAML indents with spaces; this line has a tab"
    elif flow and (expression := _unquoted_expression(line_text)):
        hint = f'inside {{...}} or [...], quote an expression: "{expression}"'
    elif flow and (indexed := _INDEXED.search(line_text)):
        # `inputs: lstm[1]` is fine in block style, but inside {...} or [...] the '[' opens a list.
        hint = f"inside {{...}} or [...], quote a reference with an index: '{indexed.group(0)}'"
    elif flow:
        hint = f"items are separated by ',', and the {flow} ends with '{_CLOSER[flow]}': is one missing, or one too many?"
    elif (
        "block" in context
        and opened is not None
        and ("expected key" in problem or "expected '-'" in problem or "expected <block end>" in problem)
    ):
        what = "keys of the mapping" if "mapping" in context else "items of the list"
        if "mapping" in context and line_text.lstrip(" ").startswith("-"):
            hint = (
                "a list item ('- ') cannot stand among the keys of a mapping: indent the list under its key"
            )
        elif indent == opened.column:
            hint = f"check this line and the one above: the {what} that starts at line {opened.line + 1} goes on here"
        else:
            above = _content_column(source, mark.line)
            hint = (
                f"check the indentation: this line starts at column {indent + 1}"
                + (f", the line above at column {above}" if above not in (None, indent + 1) else "")
                + f", and the {what} that starts at line {opened.line + 1} at column {opened.column + 1}"
            )
    elif "mapping values are not allowed" in problem and _content_column(source, mark.line) not in (
        None,
        indent + 1,
    ):
        above = _content_column(source, mark.line)
        hint = f"check the indentation: this line starts at column {indent + 1}, the line above at column {above}"
    elif "could not find expected ':'" in problem or "mapping values are not allowed" in problem:
        hint = "a key and its value are written `key: value`; quote a value that holds ': '"
    elif "found unexpected ':'" in problem:
        hint = "write a space after ':' (`key: value`), or quote a value that holds ':'"
    elif "expected <document start>" in problem:
        first = next(
            (i for i, text in enumerate(source.lines) if text.strip() and text.lstrip()[0] != "#"), 0
        )
        hint = (
            f"the first key (line {first + 1}) is indented: top-level keys start at column 1"
            if source.lines and source.lines[first].startswith(" ")
            else "a spec is one mapping: check the indentation of this line and the ones above"
        )
    elif "block scalar" in context:
        hint = "'|' and '>' start a block of text: quote a value that begins with them"
    elif "cannot start any token" in problem and line_text[mark.column : mark.column + 1] in ("@", "`"):
        hint = f"'{line_text[mark.column]}' is reserved in YAML: quote the value"
    elif "anchor" in context or "alias" in context:
        hint = "'&' starts an anchor and '*' an alias: quote a value that begins with them"
    return _at(source, message, mark, hint)


MAX_KEY = 1024
"""YAML's limit on a key written without '? ': from its first character to its ':'."""


def _long_key(line: str, column: int) -> tuple[int, int] | None:
    """The 0-based start and length of a key over YAML's limit that ends at the ':' at ``column``, or None.

    PyYAML stops at such a ':' with "could not find expected ':'" or
    "mapping values are not allowed", which says nothing of the length.
    """
    if column >= len(line) or line[column] != ":":
        return None
    before = line[:column].rstrip(" ")
    if before[-1:] in ("'", '"'):  # a quoted key: from its opening quote
        start = before.rfind(before[-1], 0, len(before) - 1)
        if start < 0:
            return None
    else:  # a plain key: after the flow punctuation, the indentation, '- ' or '? ' before it
        key = before[max(before.rfind(c) for c in ",{[") + 1 :].lstrip(" ")
        while key.startswith(("- ", "? ")):
            key = key[2:].lstrip(" ")
        start = len(before) - len(key)
    return (start, column - start) if column - start > MAX_KEY else None


def _content_column(source: Source, line: int) -> int | None:
    """The 1-based column where the content of the last non-blank line before 0-based ``line`` starts.

    For a list item (``- key: value``) that is the column of ``key``.
    """
    for text in reversed(source.lines[:line]):
        stripped = text.lstrip(" ")
        if stripped and not stripped.startswith("#"):
            column = len(text) - len(stripped)
            while stripped.startswith("- "):
                column += 2 + len(stripped[2:]) - len(stripped[2:].lstrip(" "))
                stripped = stripped[2:].lstrip(" ")
            return column + 1
    return None


def reader_problem(source: Source, e: yaml.reader.ReaderError) -> Problem:
    """A character YAML does not allow, at its place (PyYAML's position may count bytes)."""
    found = _not_printable().search(source.text)
    if found is None:
        return Problem((), f"invalid YAML: {e.reason}", source.name, 1, 1, code="yaml-syntax")
    index = found.start()
    line = source.text.count("\n", 0, index) + 1
    column = index - (source.text.rfind("\n", 0, index) + 1) + 1
    return Problem(
        (),
        f"invalid YAML: the character U+{ord(found.group()):04X} is not allowed in a YAML document",
        source.name,
        line,
        column,
        "remove it; control characters other than tab and newline cannot appear, even in strings",
        "error",
        None,
        source.line_text(line),
        code="yaml-syntax",
    )
