"""The source stage: YAML text to plain data plus the location of every key and value.

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
import functools
import gc
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml

from ..errors import Origin, Path, Place, Problem, Span, SpecError
from .wording import reader_problem, syntax_problem

__all__ = ["Document", "Source", "Span", "parse", "paused_gc", "read_source"]

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
_WORDS = frozenset((
    "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "true", "True", "TRUE",
    "false", "False", "FALSE", "on", "On", "ON", "off", "Off", "OFF", "null", "Null", "NULL",
))  # fmt: skip
_constructor = yaml.constructor.SafeConstructor()


def _span(start: Any, end: Any | None = None) -> Span:
    end_column = None
    if end is not None and end.line == start.line and end.column > start.column:
        end_column = end.column + 1
    return Span(start.line + 1, start.column + 1, end_column)


class Document:
    """A document whose parts problems can point at: :class:`Source`, or the expansion of one.

    Subclasses give ``name``, ``data``, ``base_dir`` and :meth:`place`;
    ``files`` records the files read to make the document (absolute paths:
    the spec file first, then the files it imports), so that a command never
    writes an output over one of them.
    """

    name: str
    data: Any
    base_dir: str
    files: tuple[str, ...] = ()

    def place(self, path: Path, *, key: bool = False) -> Place:
        """Where ``path`` really is (file, path there, span, line text, notes)."""
        raise NotImplementedError

    def origin(self, path: Path = ()) -> Origin:
        """The :class:`Origin` of the value at ``path``."""
        return Origin(self, tuple(path))

    def problem(
        self,
        code: str,
        path: Path,
        message: str,
        hint: str | None = None,
        *,
        key: bool = False,
        severity: str = "error",
    ) -> Problem:
        """A :class:`Problem` at ``path`` of this document."""
        return Origin(self, tuple(path)).problem(code, message, hint, key=key, severity=severity)


@dataclass
class Source(Document):
    """A parsed spec document and where each of its parts came from.

    Attributes:
        name: The file name used in messages (``<string>`` for text).
        text: The document text.
        data: The plain data: dicts, lists, str, int, float, bool, None.
        keys: Path -> span of the key that names it.
        values: Path -> span of the value at that path.
        base_dir: Folder that relative paths in the spec are resolved against.
        expressions: Whether some string value holds ``${`` (there is something to expand).
        files: The file it was read from (absolute), or none for text.
    """

    name: str
    text: str
    data: Any = None
    keys: dict[Path, Span] = field(default_factory=dict)
    values: dict[Path, Span] = field(default_factory=dict)
    base_dir: str = "."
    expressions: bool = False
    files: tuple[str, ...] = ()

    @functools.cached_property
    def lines(self) -> list[str]:
        """The text's lines, split once: a spec with thousands of problems quotes one per problem."""
        return self.text.splitlines()

    def locate(self, path: Path, *, key: bool = False) -> Span:
        """The span of ``path``, or of its nearest located ancestor.

        Args:
            path: Keys from the root.
            key: Prefer the key's span (for an unknown or missing argument)
                over the value's.

        Returns:
            The span; the start of the document when nothing on the way is
            located (an empty document), so every problem has a line.
        """
        path = tuple(path)
        first, second = (self.keys, self.values) if key else (self.values, self.keys)
        while True:
            span = first.get(path) or second.get(path)
            if span is not None:
                return span
            if not path:
                return Span(1, 1)
            path = path[:-1]

    def place(self, path: Path, *, key: bool = False) -> Place:
        """Where ``path`` is: in this file, at its span (see :meth:`locate`)."""
        span = self.locate(path, key=key)
        return Place(self.name, tuple(path), span, self.line_text(span.line))

    def line_text(self, line: int) -> str | None:
        """The text of 1-based ``line``, or None past the end."""
        return self.lines[line - 1] if 1 <= line <= len(self.lines) else None


def read_source(path: str | os.PathLike) -> Source:
    """Read and parse a spec file.

    Raises:
        SpecError: The file is missing, unreadable, too large, not UTF-8, or
            not well-formed YAML within the limits.
    """
    name = os.fspath(path)

    def fail(message: str) -> SpecError:
        return SpecError([Problem.in_file("file-unreadable", name, message)])

    try:
        info = os.stat(name)
        if stat.S_ISDIR(info.st_mode):
            raise fail("is a folder, not a spec file")
        if not stat.S_ISREG(info.st_mode):  # a FIFO or device would block or never end
            raise fail("is not a regular file")
        if info.st_size > MAX_BYTES:
            raise fail(f"the file is {info.st_size:,} bytes; specs are limited to {MAX_BYTES:,} bytes")
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
    if len(raw) > MAX_BYTES:  # it grew after the size check
        raise fail(f"the file is over {MAX_BYTES:,} bytes, the limit for specs")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        start = raw.rfind(b"\n", 0, e.start) + 1
        end = raw.find(b"\n", e.start)
        before = raw[start : e.start].decode("utf-8", "replace")
        column = len(before) + 1  # in characters, as an editor counts them
        shown = raw[start : end if end >= 0 else len(raw)].decode("utf-8", "replace").rstrip("\r")
        raise SpecError(
            [
                Problem(
                    (),
                    f"the file is not valid UTF-8 (byte 0x{raw[e.start]:02x} at line {line}, column {column})",
                    name,
                    line,
                    column,
                    "save the file as UTF-8; if it is Latin-1 or Windows-1252, your editor can convert it",
                    "error",
                    None,
                    shown,
                    code="file-encoding",
                )
            ]
        ) from None
    source = parse(text, name, base_dir=os.path.dirname(os.path.abspath(name)))
    source.files = (os.path.abspath(name),)
    return source


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
        raise SpecError(
            [source.problem("yaml-limit", (), f"the spec is larger than {MAX_BYTES:,} bytes, the limit")]
        )
    builder = _Builder(source)
    try:
        with paused_gc():
            builder.run(yaml.parse(text, Loader=_Loader))
    except yaml.MarkedYAMLError as e:
        builder.problems.append(syntax_problem(source, e, MAX_DEPTH))
    except yaml.reader.ReaderError as e:  # a character YAML does not allow, e.g. a control character
        builder.problems.append(reader_problem(source, e))
    except yaml.YAMLError as e:  # other unmarked errors
        builder.problems.append(source.problem("yaml-syntax", (), f"invalid YAML: {e}"))
    except _Abort:
        pass
    if builder.problems:
        raise SpecError(builder.problems)
    return source


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
            self.fail(
                "yaml-syntax",
                (),
                "a spec file holds one YAML document; found a second '---'",
                event.start_mark,
            )

    # -- helpers -----------------------------------------------------------

    def fail(self, code: str, path: Path, message: str, mark: Any, hint: str | None = None) -> None:
        span = _span(mark)
        self.problems.append(
            Problem(
                tuple(path), message, self.source.name, span.line, span.column, hint, "error",
                None, self.source.line_text(span.line), code=code,
            )
        )  # fmt: skip
        raise _Abort

    def note(self, code: str, path: Path, message: str, span: Span, hint: str | None = None) -> None:
        self.source.values.setdefault(tuple(path), span)
        self.problems.append(self.source.problem(code, path, message, hint))

    def count(self, n: int, mark: Any) -> None:
        self.total += n
        if self.total > MAX_NODES:
            self.fail(
                "yaml-limit",
                (),
                f"the document expands to more than {MAX_NODES:,} values (through aliases?)",
                mark,
                "a spec this large is refused to bound memory and time; check for nested aliases",
            )

    def check_tag(self, tag: str | None, path: Path, span: Span) -> bool:
        if tag in (None, "!") or tag in _ALLOWED_TAGS:
            return True
        shown = "!!" + tag[len(_CORE) :] if tag.startswith(_CORE) else tag
        self.note(
            "yaml-tag",
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
                self.note(
                    "yaml-syntax",
                    top.path + ("<<",),
                    "a merge key ('<<') takes a mapping or a list of mappings",
                    span,
                )
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
            self.fail(
                "yaml-syntax",
                top.path,
                "a mapping key must be a plain name, not a list or mapping",
                event.start_mark,
            )
        key = event.value
        path = top.path + (key,)
        if key in top.explicit:
            first = self.source.keys.get(path)
            where = ""
            if first is not None:
                same = first.line == span.line
                where = f" (first at {'column' if same else 'line'} {first.column if same else first.line})"
            self.source.keys[path] = self.source.values[path] = span
            self.note(
                "yaml-duplicate-key",
                path,
                f"duplicate key '{key}'{where}",
                span,
                "each key may appear once in a mapping",
            )
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
        if "${" in event.value:
            self.source.expressions = True
        self.add(value, 1, span, event.anchor)

    def start(self, event: Any) -> None:
        if self.take_key(event):
            return
        self.count(1, event.start_mark)
        if len(self.stack) >= MAX_DEPTH:
            self.fail(
                "yaml-limit", (), f"the document nests deeper than {MAX_DEPTH} levels", event.start_mark
            )
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
            self.fail(
                "yaml-syntax",
                path,
                f"unknown alias '*{event.anchor}'",
                event.start_mark,
                "define it first with '&name'",
            )
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
        if value.isascii() and value.isdigit() and (value == "0" or value[0] != "0"):  # not '²' or '٣'
            try:
                return int(value)
            except ValueError:  # more digits than Python converts: kept as text, as the resolver path does
                return value
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
