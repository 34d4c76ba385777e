"""Stage 1, source: YAML text to plain data plus the location of every key and value.

The document is built from the YAML event stream (libyaml when available)
with an explicit stack, not by PyYAML's recursive composer, so that:

* nothing is constructed from a tag: only the YAML core types exist, and a
  Python tag is an error, never a call;
* duplicate keys are errors with both locations;
* nesting depth, document size and alias expansion are bounded and checked
  while parsing, before any deep structure exists (no ``RecursionError``, an
  alias bomb is refused in milliseconds: aliases share one object and their
  expanded size is computed, never walked).
"""

from __future__ import annotations

import contextlib
import gc
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import yaml

from ._errors import Path, Problem, SpecError

MAX_BYTES = 8 * 1024 * 1024
"""Largest spec file read, in bytes."""
MAX_DEPTH = 64
"""Deepest nesting of mappings and sequences."""
MAX_NODES = 1_000_000
"""Most YAML values in a document, counting every alias expansion."""

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_CORE = "tag:yaml.org,2002:"
_ALLOWED_TAGS = {_CORE + t for t in ("str", "int", "float", "bool", "null", "seq", "map")}
_resolver = yaml.resolver.Resolver()
# Plain identifiers that YAML 1.1 reads as something other than a string.
_WORDS = frozenset(
    "y Y yes Yes YES n N no No NO true True TRUE false False FALSE on On ON off Off OFF "
    "null Null NULL".split()
)
_constructor = yaml.constructor.SafeConstructor()


class Span(NamedTuple):
    """A place in the text: 1-based line and column, end column exclusive.

    A named tuple, not a dataclass: a spec of 10,000 layers makes ~100,000.
    """

    line: int
    column: int
    end_column: int | None = None


def _span(start: Any, end: Any | None = None) -> Span:
    end_column = None
    if end is not None and end.line == start.line and end.column > start.column:
        end_column = end.column + 1
    return Span(start.line + 1, start.column + 1, end_column)


@dataclass
class Source:
    """A parsed spec document and where each of its parts came from.

    Attributes:
        name: The file name used in messages (``<string>`` for text).
        text: The document text.
        data: The plain data: dicts, lists, str, int, float, bool, None.
        keys: Path -> span of the key that names it.
        values: Path -> span of the value at that path.
        base_dir: Folder that relative paths in the spec are resolved against.
    """

    name: str
    text: str
    data: Any = None
    keys: dict[Path, Span] = field(default_factory=dict)
    values: dict[Path, Span] = field(default_factory=dict)
    base_dir: str = "."

    def locate(self, path: Path, *, key: bool = False) -> Span | None:
        """The span of ``path``, or of its nearest located ancestor.

        Args:
            path: Keys from the root.
            key: Prefer the key's span (for an unknown or missing argument)
                over the value's.
        """
        path = tuple(path)
        while True:
            first, second = (self.keys, self.values) if key else (self.values, self.keys)
            span = first.get(path) or second.get(path)
            if span is not None or not path:
                return span
            path = path[:-1]

    def problem(
        self,
        path: Path,
        message: str,
        hint: str | None = None,
        *,
        key: bool = False,
        severity: str = "error",
    ) -> Problem:
        """A :class:`Problem` at ``path``, located in this source."""
        span = self.locate(path, key=key)
        line = column = end = None
        source_line = None
        if span is not None:
            line, column, end = span.line, span.column, span.end_column
            lines = self.text.splitlines()
            if line <= len(lines):
                source_line = lines[line - 1]
        return Problem(
            tuple(path), message, self.name, line, column, hint, severity, end, source_line
        )


def read_source(path: str | os.PathLike) -> Source:
    """Read and parse a spec file.

    Raises:
        SpecError: The file is missing, unreadable, too large, not UTF-8, or
            not well-formed YAML within the limits.
    """
    name = os.fspath(path)

    def fail(message: str, line: int | None = None, column: int | None = None) -> SpecError:
        return SpecError([Problem((), message, name, line, column)])

    try:
        size = os.path.getsize(name)
        if os.path.isdir(name):
            raise fail("is a folder, not a spec file")
        if size > MAX_BYTES:
            raise fail(f"the file is {size} bytes; specs are limited to {MAX_BYTES} bytes")
        with open(name, "rb") as f:
            raw = f.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise fail("no such file") from None
    except PermissionError:
        raise fail("permission denied: the file cannot be read") from None
    except IsADirectoryError:
        raise fail("is a folder, not a spec file") from None
    except OSError as e:
        raise fail(f"cannot read the file: {e.strerror or e}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        column = e.start - (raw.rfind(b"\n", 0, e.start) + 1) + 1
        raise fail(f"the file is not valid UTF-8 (byte 0x{raw[e.start]:02x})", line, column) from None
    return parse(text, name, base_dir=os.path.dirname(os.path.abspath(name)))


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while a document is built.

    A document is acyclic plain data; the collections its ~100,000 new
    containers would trigger are pure overhead (they made validation of a
    10,000-layer spec 2.5x slower).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def parse(text: str, name: str = "<string>", *, base_dir: str | None = None) -> Source:
    """Parse spec text into a :class:`Source`.

    Raises:
        SpecError: The text is not well-formed YAML, uses a tag or feature a
            spec may not, or exceeds the size limits.
    """
    source = Source(name, text, base_dir=base_dir or os.getcwd())
    if len(text) > MAX_BYTES:
        raise SpecError([source.problem((), f"the spec is larger than {MAX_BYTES} bytes")])
    builder = _Builder(source)
    try:
        with paused_gc():
            builder.run(yaml.parse(text, Loader=_Loader))
    except yaml.MarkedYAMLError as e:
        builder.problems.append(_syntax_problem(source, e))
    except yaml.YAMLError as e:  # unmarked errors, e.g. a reader error
        builder.problems.append(source.problem((), f"YAML error: {e}"))
    except _Abort:
        pass
    if builder.problems:
        raise SpecError(builder.problems)
    return source


def _syntax_problem(source: Source, e: yaml.MarkedYAMLError) -> Problem:
    message = " ".join(str(m).strip() for m in (e.context, e.problem) if m)
    hint = None
    mark = e.problem_mark or e.context_mark
    line_text = ""
    if mark is not None:
        lines = source.text.splitlines()
        line_text = lines[mark.line] if mark.line < len(lines) else ""
    if "\t" in line_text[: mark.column + 1 if mark else 0] or "found character '\\t'" in message:
        hint = "YAML indents with spaces; this line has a tab"
    elif "could not find expected ':'" in message or "mapping values are not allowed" in message:
        hint = "a key and its value are written `key: value`, with a space after the colon"
    elif "expected ',' or ']'" in message or "expected ',' or '}'" in message or "flow" in message:
        hint = "is a bracket left unclosed?"
    problem = Problem((), f"invalid YAML: {message}", source.name, hint=hint)
    if mark is None:
        return problem
    return Problem(
        (), problem.message, source.name, mark.line + 1, mark.column + 1, hint, "error", None, line_text
    )


class _Abort(Exception):
    """Stop parsing: a limit was exceeded (the problem is already recorded)."""


@dataclass
class _Frame:
    container: dict | list
    path: Path
    anchor: str | None
    start: Span
    size: int = 1
    key: str | None = None  # mapping frames: the key waiting for its value
    key_span: Span | None = None
    explicit: set = field(default_factory=set)  # keys written here (merges never override them)


class _Builder:
    """Turns YAML events into plain data and spans, one event at a time."""

    def __init__(self, source: Source):
        self.source = source
        self.problems: list[Problem] = []
        self.anchors: dict[str, tuple[Any, int]] = {}
        self.stack: list[_Frame] = []
        self.total = 0
        self.documents = 0

    def run(self, events: Iterator[yaml.Event]) -> None:
        handlers = {
            yaml.ScalarEvent: self.scalar,
            yaml.MappingStartEvent: self.start,
            yaml.SequenceStartEvent: self.start,
            yaml.MappingEndEvent: self.end,
            yaml.SequenceEndEvent: self.end,
            yaml.AliasEvent: self.alias,
            yaml.DocumentStartEvent: self.document,
        }
        for event in events:
            handler = handlers.get(type(event))
            if handler is not None:
                handler(event)

    def document(self, event: yaml.DocumentStartEvent) -> None:
        self.documents += 1
        if self.documents > 1:
            self.fail((), "a spec file holds one YAML document; found a second '---'", event.start_mark)

    # -- helpers -----------------------------------------------------------

    def fail(self, path: Path, message: str, mark: Any, hint: str | None = None) -> None:
        span = _span(mark)
        lines = self.source.text.splitlines()
        self.problems.append(
            Problem(
                tuple(path), message, self.source.name, span.line, span.column, hint, "error",
                None, lines[span.line - 1] if span.line <= len(lines) else None,
            )
        )
        raise _Abort

    def note(self, path: Path, message: str, span: Span, hint: str | None = None) -> None:
        self.source.values.setdefault(tuple(path), span)
        self.problems.append(self.source.problem(path, message, hint))

    def count(self, n: int, mark: Any) -> None:
        self.total += n
        if self.total > MAX_NODES:
            self.fail(
                (), f"the document expands to more than {MAX_NODES:,} values (through aliases?)", mark,
                "a spec this large is refused to bound memory and time; check for nested aliases",
            )

    def check_tag(self, tag: str | None, path: Path, span: Span) -> bool:
        if tag in (None, "!") or tag in _ALLOWED_TAGS:
            return True
        shown = "!!" + tag[len(_CORE) :] if tag.startswith(_CORE) else tag
        self.note(
            path,
            f"the YAML tag '{shown}' is not allowed",
            span,
            "a spec holds plain data (strings, numbers, lists, mappings) and never runs code",
        )
        return False

    def child_path(self) -> tuple[Path, Span | None]:
        """The path of the value about to be added to the innermost container."""
        if not self.stack:
            return (), None
        top = self.stack[-1]
        if isinstance(top.container, list):
            return top.path + (len(top.container),), None
        return top.path + (top.key,), top.key_span

    def add(self, value: Any, size: int, span: Span, anchor: str | None) -> None:
        """Attach a finished value to its parent (or make it the document)."""
        if anchor is not None:
            self.anchors[anchor] = (value, size)
        path, _ = self.child_path()
        self.source.values.setdefault(path, span)
        if not self.stack:
            self.source.data = value
            return
        top = self.stack[-1]
        top.size += size
        if isinstance(top.container, list):
            top.container.append(value)
        elif top.key == "<<" and top.key_span is not None and "<<" not in top.explicit:
            self.merge(top, value, span)
        else:
            top.container[top.key] = value
            top.explicit.add(top.key)
            top.key = None

    def merge(self, top: _Frame, value: Any, span: Span) -> None:
        """YAML merge key: ``<<: *base`` copies keys not written in this mapping."""
        sources = value if isinstance(value, list) else [value]
        for item in sources:
            if not isinstance(item, dict):
                self.note(top.path + ("<<",), "a merge key ('<<') takes a mapping or a list of mappings", span)
                break
            for k, v in item.items():
                if k not in top.explicit and k not in top.container:
                    top.container[k] = v
                    self.source.values.setdefault(top.path + (k,), span)
                    self.source.keys.setdefault(top.path + (k,), span)
        top.key = None

    def take_key(self, event: Any) -> bool:
        """If the innermost mapping awaits a key, record ``event`` as that key."""
        if not self.stack:
            return False
        top = self.stack[-1]
        if not isinstance(top.container, dict) or top.key is not None:
            return False
        span = _span(event.start_mark, event.end_mark)
        if not isinstance(event, yaml.ScalarEvent):
            self.fail(top.path, "a mapping key must be a plain name, not a list or mapping", event.start_mark)
        key = event.value
        path = top.path + (key,)
        if key in top.explicit:
            first = self.source.keys.get(path)
            where = f" (first at line {first.line})" if first else ""
            self.source.keys[path] = self.source.values[path] = span
            self.note(path, f"duplicate key '{key}'{where}", span, "each key may appear once in a mapping")
        else:
            self.source.keys[path] = span
        top.key, top.key_span = key, span
        self.count(1, event.start_mark)
        return True

    # -- events ------------------------------------------------------------

    def scalar(self, event: yaml.ScalarEvent) -> None:
        if self.take_key(event):
            return
        self.count(1, event.start_mark)
        span = _span(event.start_mark, event.end_mark)
        path, _ = self.child_path()
        value: Any = event.value
        if self.check_tag(event.tag, path, span):
            value = _scalar_value(event)
        self.add(value, 1, span, event.anchor)

    def start(self, event: Any) -> None:
        if self.take_key(event):
            return
        self.count(1, event.start_mark)
        if len(self.stack) >= MAX_DEPTH:
            self.fail((), f"the document nests deeper than {MAX_DEPTH} levels", event.start_mark)
        path, _ = self.child_path()
        span = _span(event.start_mark)
        self.check_tag(event.tag, path, span)
        container: dict | list = {} if isinstance(event, yaml.MappingStartEvent) else []
        self.stack.append(_Frame(container, path, event.anchor, span))

    def end(self, event: Any = None) -> None:
        frame = self.stack.pop()
        self.add(frame.container, frame.size, frame.start, frame.anchor)

    def alias(self, event: yaml.AliasEvent) -> None:
        if self.take_key(event):
            return
        span = _span(event.start_mark, event.end_mark)
        path, _ = self.child_path()
        if event.anchor not in self.anchors:
            self.fail(path, f"unknown alias '*{event.anchor}'", event.start_mark, "define it first with '&name'")
        value, size = self.anchors[event.anchor]
        self.count(size, event.start_mark)
        self.add(value, size, span, None)


def _scalar_value(event: yaml.ScalarEvent) -> Any:
    """The core-schema value of a scalar, exactly as PyYAML's safe loader reads it."""
    value = event.value
    if event.tag and event.tag != "!":
        tag = event.tag
    elif event.implicit[0]:
        if value.isidentifier() and value not in _WORDS:
            return value  # the common case, a plain name: no resolver needed
        if value.isdigit() and (value == "0" or value[0] != "0"):
            return int(value)
        tag = _resolver.resolve(yaml.ScalarNode, value, (True, False))
    else:
        tag = _CORE + "str"
    node = yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark, event.style)
    if tag in (_CORE + "null", _CORE + "bool", _CORE + "int", _CORE + "float"):
        try:
            return _constructor.yaml_constructors[tag](_constructor, node)
        except (ValueError, yaml.YAMLError):
            return event.value
    return event.value  # strings, and timestamps kept as their text
