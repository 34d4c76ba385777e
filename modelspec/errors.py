"""Problem records, where they come from, and the exceptions every stage's problems end in.

Every stage collects :class:`Problem` records instead of failing on the first
one and returns them; :mod:`modelspec.api` raises one :class:`SpecError`
carrying all of them. Only the command line prints them and picks the exit
status, which each exception class carries (``exit_code``, as click does).

A problem is located through an :class:`Origin`: the document an entry was
read from, the path of the entry in it, and the chain of block instances
that made it. Stages never re-derive a location from a path of their own.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

Path = tuple  # a tuple of str keys and int indices, like pydantic's ``loc``

CODES: dict[str, str] = {
    # files and YAML
    "file-unreadable": "a file is missing, unreadable, not a regular file, or over its size limit",
    "file-encoding": "the spec is not UTF-8 text",
    "yaml-syntax": "the text is not well-formed YAML",
    "yaml-tag": "a YAML tag (such as !!python/...) is used; a spec holds plain data only",
    "yaml-duplicate-key": "a key appears twice in one mapping",
    "yaml-limit": "the document is too large, nests too deep or expands too far through aliases",
    # the document's shape
    "spec-not-mapping": "the spec is empty, or not a mapping of keys",
    "format-version": "the `modelspec:` version is missing or not one this modelspec reads",
    "missing-key": "a required key is missing",
    "unknown-key": "a key the format does not have",
    "wrong-type": "a value has the wrong type (a string where a number belongs, ...)",
    "invalid-choice": "a value is not one of the allowed choices",
    "invalid-name": "a name or reference is not letters, digits, '_' and '-', or a reference is malformed",
    "invalid-value": "a value is out of range or otherwise not allowed",
    "too-many-layers": "the spec has more layers than the limit",
    "misplaced-key": "a key belongs to the other form of `layers` (list vs mapping), or to no entry of this kind",
    # layers and Keras objects, checked against the catalog
    "unknown-layer-type": "`type` names no Keras layer (nor a registered custom layer)",
    "unregistered-type": "a `package>Class` name that no loaded library registers (load it with --plugin PACKAGE)",
    "ambiguous-type": "a bare class name that several registered classes have: write `package>Class`",
    "refused-layer-type": "a layer type that runs code or cannot be declared (Lambda, InputLayer, ...)",
    "missing-type": "a layer entry or Keras object mapping has no `type`",
    "unknown-argument": "a constructor argument the layer or object does not take",
    "missing-argument": "a required constructor argument is missing",
    "wrong-argument-type": "a constructor argument of the wrong type",
    "unknown-call-argument": "a key of `call` or of an `inputs` mapping is not a parameter of the layer's call",
    "duplicate-call-argument": "a call argument is given both in `inputs` and in `call`",
    "unknown-object": "an activation, initializer, optimizer, loss, metric, callback, ... that Keras does not have",
    "refused-object": "a Keras object that runs code or reaches outside (LambdaCallback, RemoteMonitor, ...)",
    "dotted-path": "a dotted import path where a name belongs; a spec never imports code",
    "share-with-arguments": "a `share` entry also gives a type or constructor arguments",
    "unknown-op": "an `op` entry names no keras.ops function of the allowlist",
    "op-inputs": "an `op` entry gives too many or too few tensors for its function",
    "invalid-key": "the key of a `get_item` op is not a subscript of integers, integer slices, None and `...`",
    # the graph
    "unknown-reference": "a reference names no input or node",
    "bad-output-index": "`name[i]` indexes an input, or a node output that does not exist",
    "duplicate-name": "two inputs or layers have the same name",
    "cycle": "the layers form a cycle",
    "share-target": "`share` names an input, an unknown node, or goes round in a circle",
    "unused-input": "an input no layer uses",
    "unused-node": "a node nothing uses and that is not an output",
    "no-layers": "the model has no layers",
    "no-inputs": "a mapping of layers has no input",
    "ambiguous-input": "a node does not say what it is called on, and the model has several inputs",
    "sequential-inputs": "a list of layers (keras.Sequential) is given several inputs or `outputs`",
    "output-is-input": "an output names an input instead of a layer",
    "unknown-output": "a per-output `compile` or `train` key names no output of the model",
    # expressions, params, blocks and imports
    "expr-syntax": "an expression `${...}` is not well formed",
    "expr-unknown-name": "an expression names a param or function that does not exist",
    "expr-type": "an expression applies an operation to values of the wrong type",
    "expr-value": "an expression computes something undefined (division by zero, an index out of range, ...)",
    "expr-limit": "an expression computes a value beyond the limits (huge numbers, strings or lists, deep nesting)",
    "unknown-param": "--set, a variant or a block instance names a param that is not declared",
    "missing-param": "a block instance does not give a required param",
    "unknown-variant": "--variant names a variant the spec does not have",
    "param-value": "a param, a variant or a --set / params= value is not a literal (an expression, a number beyond 2**63, a key that is not a string)",
    "unknown-block": "an instance names a block that does not exist",
    "block-name": "a block is named like a Keras layer type",
    "block-cycle": "blocks use each other in a circle",
    "block-shape": "an instance does not fit its block (its inputs, repeat on several outputs, a DAG block in a list)",
    "share-mismatch": "a shared block instance (`block` with `share`) names an instance of another block, or gives params",
    "if-needs-else": "an entry left out by `if: false` has several inputs (or none) and no `else`",
    "import-file": "an import names a missing, unreadable or absolute path",
    "import-cycle": "imports go round in a circle",
    "expand-limit": "the expansion makes more than 100,000 layers, takes more than 400,000 steps (entries and instances, left-out ones included), nests blocks more than 32 deep or imports files more than 32 deep",
    # static analysis
    "shape-mismatch": "a layer cannot take the shapes it is called on (found without Keras)",
    "shape-unknown": "a node whose output shape could not be inferred (an error with validate --strict; a warning when the memory guard cannot count its weights)",
    "too-large": "the model's weights exceed the memory available or --max-params",
    # Keras
    "keras-build": "Keras refused to create or call a layer, or to make the model",
    "keras-compile": "Keras refused the compile arguments",
    # export (a Keras model to a spec)
    "export-subclassed": "export: the model is a subclassed keras.Model; its call() is Python code a spec cannot hold",
    "export-refused-layer": "export: the model holds a layer that carries code (Lambda, TFSMLayer, ...)",
    "export-unsupported": "export: a part of the model the format cannot say (an operation outside the allowlist, ...)",
    "export-custom-layer": "warning: export named a class from outside Keras; building needs it registered",
    "export-library-config": "export: a library layer's get_config() fails, or its config does not make the layer again",
    "export-unknown-class": "export: the model file names a class from outside Keras that no loaded module registers",
    "export-lossy": "warning: export left something out (a model subclass's own methods, compile settings)",
    # hostile inputs
    "path-outside": "a path in the spec leads outside its folder and the working folder (allowed with --allow-outside)",
    "path-relative": "a flat spec written to another folder names a path relative to the spec's folder (a warning)",
    "path-protected": "a callback would write to the spec's folder or an ancestor, the spec, its data, or another path of the spec",
    "path-exists": "a callback would write over an existing file or folder (files: `train --overwrite`; folders: never)",
    "output-count": "a list of losses or loss weights does not have one entry per model output",
    "single-class": "a target column holds one class only: there is nothing to tell apart",
    "unused-units": "warning: a target has fewer classes than its output has units",
    "model-archive": "a model file exceeds the archive limits (members, sizes, compression ratio): not unpacked",
    "model-limit": "a model file describes more than 100,000 layers or layer calls: refused before Keras builds any",
    # warnings
    "double-activation": "warning: an activation applied to a softmax output",
    "noise-output": "warning: a dropout or noise layer is a model output",
    "logits-mismatch": "warning: a probability output trained with a loss that expects logits",
    "logits-missing": "warning: an output without activation (logits) trained with a loss that expects probabilities",
    # training data and model files
    "training-config": "the spec cannot be trained as written (no `train` or `compile`, or an unavailable distribution)",
    "layout-match": "a model_parallel layout matches no variable, or a variable is matched by two layouts",
    "layout-axis": "a model_parallel layout or batch_axis names an axis that is not in the mesh",
    "layout-shape": "a model_parallel layout does not fit its variable (number of dimensions, a size its axis does not divide)",
    "worker-failed": "a worker process of a data_parallel run across processes failed: the job stopped, nothing written",
    "data-file": "the training CSV is missing, unreadable, empty or not CSV",
    "data-column": "a feature or target column is missing, misspelled, listed twice, or not numeric",
    "data-value": "missing or unusable values in the data",
    "data-target": "a target does not fit its output (classes against units, labels unseen in training)",
    "data-split": "the test or validation split leaves no rows to train on",
    "model-file": "a model file is not a `.keras` archive written by `modelspec train`, or Keras cannot load it",
    "output-file": "an output file cannot be written",
    "plugin-import": "a module named with --plugin cannot be imported",
    "backend-missing": "Keras cannot import its backend (TensorFlow, JAX or PyTorch): install one",
    # serving files
    "serving-format": "a serving format this backend cannot write, a converter that is not installed, or a model Keras cannot convert",
    "serving-mismatch": "a serving file (ONNX, TFLite, SavedModel) does not answer like the Keras model within the tolerance",
    # sweeps
    "sweep-key": "a `sweep.space` key is not variant, a declared param, or a train/compile setting",
    "sweep-choice": "a `sweep.space` choice is empty, malformed, or holds a value the spec cannot take",
    "sweep-objective": "the sweep's objective is not a metric the training reports",
    "sweep-storage": "the sweep's storage (a journal file, or a database URL) cannot be opened",
}
"""Every problem code with its one-line meaning (listed in the README)."""


class Span(NamedTuple):
    """A place in a text: 1-based line and column, end column exclusive.

    A named tuple, not a dataclass: a spec of 10,000 layers makes ~100,000.
    """

    line: int
    column: int
    end_column: int | None = None


class Place(NamedTuple):
    """Where a path of a document really is: file, path and span there, the line's text, notes."""

    file: str
    path: Path
    span: Span | None
    line_text: str | None
    notes: tuple[str, ...] = ()


class Locator(Protocol):
    """A document problems can point into: a spec file, or the expansion of one (which maps back)."""

    name: str

    def place(self, path: Path, *, key: bool = False) -> Place: ...


@dataclass(frozen=True)
class Origin:
    """Where an entry came from: a document, the path of the entry in it, and the instances that made it.

    Attributes:
        doc: The document, or None for an entry made in Python (problems
            then carry the path but no line).
        path: Keys from the document root to the entry.
        chain: Notes naming the block instances that made the entry,
            outermost first (filled by the expansion stage).
    """

    doc: Locator | None
    path: Path = ()
    chain: tuple[str, ...] = ()

    def at(self, *keys: Any) -> Origin:
        """The origin of a part of this entry."""
        return Origin(self.doc, self.path + keys, self.chain)

    def problem(
        self,
        code: str,
        message: str,
        hint: str | None = None,
        *,
        key: bool = False,
        severity: str = "error",
    ) -> Problem:
        """A :class:`Problem` here (``key``: at the key that names this part rather than its value)."""
        if self.doc is None:
            return Problem(
                self.path, message, "<spec>", hint=hint, severity=severity, code=code, notes=self.chain
            )
        place = self.doc.place(self.path, key=key)
        line, column, end = place.span or (None, None, None)
        return Problem(
            place.path, message, place.file, line, column, hint, severity, end,
            place.line_text, code=code, notes=place.notes + self.chain,
        )  # fmt: skip

    @property
    def line(self) -> int | None:
        """The line of this entry, for messages that refer to another place."""
        span = None if self.doc is None else self.doc.place(self.path, key=True).span
        return None if span is None else span.line


def format_path(path: Path) -> str:
    """Render a path as ``layers.hidden.units`` or ``layers[2].units``.

    A key with a character that does not print (a control, zero-width or
    bidirectional character) is shown escaped, as messages quote it:
    ``layers.a\u200bb``, never as a name that looks like ``ab``.
    """
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            text = _escaped(str(part))
            out += f".{text}" if out else text
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
            text = _escaped(repr(value)) if isinstance(value, str) else repr(value)
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


def suggest(word: str, candidates: Iterable[str]) -> str | None:
    """The candidate ``word`` was most likely meant to be: a did-you-mean hint.

    A case-insensitive exact match wins (``'dense'`` -> ``'Dense'``); otherwise
    the closest by :func:`difflib.get_close_matches`, compared case-insensitively.

    Args:
        word: What the user wrote.
        candidates: The valid words.

    Returns:
        The best candidate, or None when none is close.
    """
    import difflib  # only when a hint is wanted

    # Sorted so that ties resolve the same way whatever order the candidates come in.
    pool = sorted(set(candidates))
    if word in pool:
        return word
    lowered: dict[str, str] = {}
    for c in pool:
        lowered.setdefault(c.lower(), c)
    key = word.lower()
    if key in lowered:
        return lowered[key]
    near = difflib.get_close_matches(key, lowered, n=1, cutoff=0.6)
    return lowered[near[0]] if near else None


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
        key = (scope, word)
        if key in self.cache:
            return self.cache[key]
        if self.budget <= 0:
            return None
        pool = candidates if isinstance(candidates, (list, tuple, dict, set, frozenset)) else list(candidates)
        self.budget -= len(pool)
        self.cache[key] = near = suggest(word, pool) if len(word) <= 200 else None
        return near

    def hint(
        self, word: str, candidates: Iterable[str], scope: str, otherwise: str | None = None
    ) -> str | None:
        """``did you mean '...'?`` for ``word``, else ``otherwise``."""
        near = self(word, candidates, scope)
        return f"did you mean '{near}'?" if near else otherwise


class Collector:
    """A pass that collects problems (rather than stopping at the first), with did-you-mean hints."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.near = Suggester()

    def error(
        self, at: Origin, code: str, message: str, hint: str | None = None, *, key: bool = False
    ) -> None:
        """Record an error at ``at`` (``key``: at the key that names it)."""
        self.problems.append(at.problem(code, message, hint, key=key))


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
    """One thing wrong with a spec (or its data or model file), and where it is.

    Attributes:
        path: Keys from the document root to the offending value.
        message: What is wrong, naming what was received.
        file: The file name (or ``<string>``, ``<spec>``).
        line: 1-based line, or None when the place is unknown.
        column: 1-based column, or None.
        hint: A suggestion (a did-you-mean, a fix), or None.
        severity: ``"error"`` or ``"warning"``.
        end_column: 1-based column one past the offending text, for carets.
        source_line: The text of ``line``, for the excerpt under the message.
        code: A stable kebab-case identifier of the kind of problem (see :data:`CODES`).
        notes: Lines printed after the problem (the block instances that made the entry).
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
    code: str = ""
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.code not in CODES:  # a programming error: every problem has a listed code
            raise ValueError(f"problem code {self.code!r} is not in modelspec.errors.CODES")

    @classmethod
    def in_file(cls, code: str, file: str, message: str, hint: str | None = None, path: Path = ()) -> Problem:
        """A problem with a file as a whole (no line)."""
        return cls(tuple(path), message, file, hint=hint, code=code)

    def location(self) -> str:
        """``file:line:column`` (parts that are unknown are left out)."""
        parts = [self.file or "<spec>"]
        if self.line is not None:
            parts.append(str(self.line))
            if self.column is not None:
                parts.append(str(self.column))
        return ":".join(parts)

    def format(self, excerpt: bool = True) -> str:
        """Compiler-style text: the message, the source line with a caret, the hint, the notes.

        Control characters (and bidirectional overrides) from the spec are
        shown as ``?``: a hostile spec must not drive the terminal.
        """
        where = f"{format_path(self.path)}: " if self.path else ""  # a file-level problem has no path
        text = _printable(f"{self.location()}: {self.severity}: {where}{self.message}")
        if excerpt and self.source_line is not None and self.line is not None:
            line, column = _clip(_printable(self.source_line.expandtabs(1)), self.column or 1)
            gutter = f"{self.line:>5} | "
            text += f"\n{gutter}{line}"
            if self.column is not None:
                width = max(1, (self.end_column or self.column + 1) - self.column)
                width = min(width, max(1, len(line) - column + 1))
                text += "\n" + " " * (len(gutter) - 2) + "| " + " " * (column - 1) + "^" * width
        if self.hint:
            text += f"\n      hint: {_printable(self.hint)}"
        for note in self.notes:
            text += f"\n      note: {_printable(note)}"
        return text

    def to_dict(self) -> dict:
        """A JSON-ready record (``path`` as text)."""
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "severity": self.severity,
            "code": self.code,
            "path": format_path(self.path),
            "message": self.message,
            "hint": self.hint,
            "notes": list(self.notes),
        }


class SpecError(ValueError):
    """A spec (or its data or model file) is invalid: exit status 1.

    Attributes:
        problems: Every problem found, in source order.
    """

    exit_code = 1

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


class UsageError(Exception):
    """The command line is wrong (an option's value, an output that is one of the inputs): exit status 2."""

    exit_code = 2


def errors_in(problems: Iterable[Problem]) -> bool:
    """Whether any of ``problems`` is an error (not a warning)."""
    return any(p.severity == "error" for p in problems)


def raise_errors(problems: Iterable[Problem]) -> None:
    """Raise one :class:`SpecError` with all ``problems`` when any of them is an error."""
    problems = list(problems)
    if errors_in(problems):
        raise SpecError(problems)


_UNSAFE = re.compile(
    "["
    "\x00-\x08\x0a-\x1f\x7f-\x9f"  # control characters: they move the cursor, recolour, clear
    "\u2028\u2029"  # line and paragraph separators
    "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"  # bidirectional marks, overrides, isolates
    "\u00ad\u034f\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200d\u2060-\u2065\u206a-\u206f"
    "\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufffb"  # zero-width, invisible and filler characters
    "\U0001d173-\U0001d17a\U000e0000-\U000e0fff"  # invisible musical formatting, tags, variation selectors
    "]"
)
"""Characters a message never shows as they are: ``a\u200bb`` would read as ``ab``, ``\u202e`` reverses the line."""


def _escaped(text: str) -> str:
    """``text`` with what does not print written as Python escapes: ``a\\u200bb``, as ``repr`` does.

    ``repr`` leaves some invisible characters as they are (variation
    selectors, fillers); those are escaped too.
    """
    if not text.isprintable():
        text = repr(text)[1:-1]
    return _UNSAFE.sub(
        lambda m: f"\\u{ord(m[0]):04x}" if ord(m[0]) <= 0xFFFF else f"\\U{ord(m[0]):08x}", text
    )


def _printable(text: str) -> str:
    """``text`` with characters that move the cursor, recolour, reorder or hide in it replaced by ``?``.

    One character for one, so the caret under a source line still points at the right column.
    """
    return _UNSAFE.sub("?", text)


def _clip(line: str, column: int, width: int = 100) -> tuple[str, int]:
    """A window of a long source line around ``column`` (and the column in it)."""
    if len(line) <= width:
        return line, column
    start = max(0, min(column - 1 - width // 2, len(line) - width))
    window = line[start : start + width]
    prefix, suffix = ("..." if start else ""), ("..." if start + width < len(line) else "")
    return prefix + window + suffix, column - start + len(prefix)


def sort_problems(problems: Iterable[Problem]) -> list[Problem]:
    """Source order; problems with no line keep their order at the end."""
    unique = list(dict.fromkeys(problems))
    return sorted(unique, key=lambda p: (p.file or "", p.line is None, p.line or 0, p.column or 0))
