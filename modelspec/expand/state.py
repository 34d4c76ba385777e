"""What the expansion passes share: its limits, the libraries and contexts it works in, and its failures."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import Collector, Origin
from ..source import Document
from ..spec import ModelSpec, holds_expression

MAX_NODES = 100_000
"""Most layers an expansion may make."""
MAX_NESTING = 32
"""Deepest nesting of block instances."""
MAX_IMPORT_DEPTH = 32
"""Longest chain of files importing files."""
MAX_STEPS = 400_000
"""Most steps an expansion may take: each entry gone through (left out by ``if`` or not) and each
block instance (each repeat) is one. Nodes alone do not bound the work: a block whose entries are all
left out makes nothing, however often it is used."""

Resolved = str | list[str] | object
"""What a name stands for once expanded: a flat reference (``'stage1-2-out'``, ``'enc[1]'``), a list
of them for an instance with several outputs, or :data:`BROKEN` (its entry failed)."""


class Limit(Exception):
    """A limit of the expansion was reached (its one problem recorded): the whole expansion stops."""


class Failed(Exception):
    """An entry could not be expanded (its problem is recorded); what refers to it is skipped quietly."""


BROKEN = object()
"""The value of an entry that failed: references to it are not reported again."""


@dataclass
class Library:
    """A spec file's blocks, in the scope of its own params: the spec itself, or a file it imports."""

    spec: ModelSpec
    doc: Document | None
    scope: dict[str, Any]
    imports: dict[str, Library] = field(default_factory=dict)

    def at(self, *path: Any) -> Origin:
        return Origin(self.doc, tuple(path))


@dataclass(frozen=True)
class Context:
    """Where entries are being expanded: in which file's scope, under which instances."""

    lib: Library
    scope: dict[str, Any]
    chain: tuple[str, ...] = ()
    prefix: str | None = None  # the instance name that prefixes node names
    depth: int = 0
    listing: bool = False  # the spec is a list: layers are emitted in order, by name only
    frames: tuple[Frame, ...] = ()  # the instances this body is in, outermost first (for drawings)
    shared: list[str] | None = None  # a shared instance: the layers it calls again, in the order made


@dataclass(frozen=True)
class Frame:
    """One block instance a flat layer was made in: for drawings that show blocks as clusters.

    Attributes:
        name: The instance name (the prefix of its layers' names).
        block: The block's name as the instance wrote it.
        repeat: The repeat's index, or None when the instance is not repeated.
        count: How many repeats the instance has, or None.
        base: The instance's name without its repeat index (the same for every repeat).
    """

    name: str
    block: str
    repeat: int | None
    count: int | None
    base: str


@dataclass
class Facts:
    """What expanding an entry needs to know of it every time, read once (a block body is expanded many times).

    Attributes:
        entry: The entry, or a block (held, so that its id stays its own while the expansion lasts).
        origin: Where it was written, or None for an entry made in Python.
        args: Its constructor arguments, or an instance's params.
        plain_inputs: Its ``inputs`` hold no expression.
    """

    entry: Any
    origin: Origin | None
    args: dict[str, Any]
    plain_inputs: bool


class Base(Collector):
    """The state of one expansion: what it has made so far, and where each part came from."""

    def __init__(self, spec: ModelSpec, custom_objects: dict[str, Any]):
        super().__init__()
        self.spec = spec
        self.custom = custom_objects
        self.origins: dict[tuple, Origin] = {}
        self.frames: dict[tuple, tuple[Frame, ...]] = {}
        self.layers: dict[str, Any] | list[Any] = [] if isinstance(spec.layers, list) else {}
        self.names: set[str] = set(spec.inputs)
        self.made: list[str] = []  # the flat nodes of a mapping, in the order made
        self.instances: dict[
            tuple, tuple
        ] = {}  # (body prefix, instance) -> (block, entry, nodes made): for share
        self.counters: dict[str, int] = {}
        self.loaded: dict[str, Library] = {}  # real path -> the file's library
        self.block_order: list[tuple[Library, str]] = []
        self.steps = 0  # entries and instances gone through so far (see MAX_STEPS)
        self.known: dict[int, Facts] = {}  # id(entry) -> its facts
        self.orders: dict[int, tuple[Any, list[str]]] = {}  # id(DAG body) -> (the body, its order)
        self.layouts: dict[int, tuple[Any, list[str], dict[str, str | None], list[str]]] = {}
        self.wheres: dict[tuple, str] = {}  # (id(document), path) -> where an instance is written

    def facts(self, entry: Any) -> Facts:
        """The facts of ``entry``, read the first time they are asked for."""
        found = self.known.get(id(entry))
        if found is None:
            plain = not holds_expression(entry.inputs)
            args = getattr(entry, "args", {})  # a block has none
            found = self.known[id(entry)] = Facts(entry, entry.origin, args, plain)
        return found

    def fail(
        self, at: Origin, code: str, message: str, hint: str | None = None, *, key: bool = False
    ) -> Failed:
        self.error(at, code, message, hint, key=key)
        return Failed()

    def limit(self, at: Origin, message: str, hint: str | None = None, *, key: bool = False) -> Limit:
        """Record the one ``expand-limit`` problem of this expansion; raise what it returns to stop it."""
        self.error(at, "expand-limit", message, hint, key=key)
        return Limit()
