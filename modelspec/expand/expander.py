"""The expansion stage: a spec with params, blocks, imports and expressions to the plain spec it stands for.

Every string holding ``${...}`` is evaluated (:mod:`modelspec.expand.expr`)
in its scope; every block instance is replaced by the layers of its block,
named ``INSTANCE-NODE`` (``INSTANCE-K-NODE`` for repeats), with its
references rewired; entries left out by ``if: false`` pass their input (or
``else``) on. The result is flat spec data, validated by the spec stage once
more, in an :class:`ExpandedDocument` that places every flat part at the
line it was written on, with ``note:`` lines naming the instances that made it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .. import catalog
from ..errors import Collector, Origin, Problem, SpecError
from ..source import Document, Source, read_source
from ..spec import BlockSpec, LayerSpec, ModelSpec, holds_expression, split_reference, to_spec
from ..spec.models import NAME_PATTERN, invalid_name
from .document import ExpandedDocument

if TYPE_CHECKING:
    from .expr import ExprError

MAX_NODES = 100_000
"""Most layers an expansion may make."""
MAX_NESTING = 32
"""Deepest nesting of block instances."""

Value = Any
"""What a name stands for once expanded: a flat reference (``'stage1-2-out'``, ``'enc[1]'``), or a list
of them for an instance with several outputs."""


class _Failed(Exception):
    """An entry could not be expanded (its problem is recorded); what refers to it is skipped quietly."""


_BROKEN = object()
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
class _Context:
    """Where entries are being expanded: in which file's scope, under which instances."""

    lib: Library
    scope: dict[str, Any]
    chain: tuple[str, ...] = ()
    prefix: str | None = None  # the instance name that prefixes node names
    depth: int = 0
    listing: bool = False  # the spec is a list: layers are emitted in order, by name only
    frames: tuple[Frame, ...] = ()  # the instances this body is in, outermost first (for drawings)


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


def needs_expansion(spec: ModelSpec) -> bool:
    """Whether ``spec`` has anything to expand: params, variants, imports, blocks, expressions, instances."""
    if spec.expanded:
        return False
    if spec.params or spec.variants or spec.imports or spec.blocks:
        return True
    source = spec.source
    if isinstance(source, Source):
        if source.expressions:
            return True
    elif holds_expression(spec.to_data()):
        return True
    entries = spec.layers.values() if isinstance(spec.layers, dict) else spec.layers or []
    return any(e is not None and (e.block or e.repeat is not None or e.if_ is not None) for e in entries)


def expand(
    spec: ModelSpec,
    *,
    params: dict[str, Any] | None = None,
    variant: str | None = None,
    custom_objects: dict[str, Any] | None = None,
) -> tuple[ModelSpec | None, list[Problem]]:
    """Expand ``spec``: its params (with ``variant`` and ``params`` overrides), imports, blocks and expressions.

    Returns:
        The plain spec (marked expanded; the same object when there was
        nothing to expand), or None, and the problems found.
    """
    if not needs_expansion(spec) and not params and variant is None:
        spec._expanded = True
        return spec, []
    expander = _Expander(spec, custom_objects or {})
    data = expander.run(params or {}, variant)
    if expander.problems or data is None:
        return None, merge_repeats(expander.problems)
    if spec.library:
        return spec, []
    root = spec.source if spec.source is not None else _NoDocument()
    document = ExpandedDocument(root, data, expander.origins, expander.frames, tuple(expander.loaded))
    flat, problems = to_spec(document, custom_objects, expanded=True)
    return flat, merge_repeats(problems)


class _NoDocument(Document):
    """The stand-in document of a spec made in Python: every place is known by its path only."""

    name = "<spec>"
    base_dir = "."
    data = None

    def place(self, path: Any, *, key: bool = False) -> Any:
        from ..errors import Place

        return Place("<spec>", tuple(path), None, None)


def merge_repeats(problems: list[Problem]) -> list[Problem]:
    """One problem for the same fault made by many instances, with the count in a note."""
    seen: dict[tuple, list[Problem]] = {}
    for p in problems:
        key = (p.file, p.line, p.column, p.code, p.path) if p.notes else (id(p),)
        seen.setdefault(key, []).append(p)
    merged = []
    for same in seen.values():
        first = same[0]
        if len(same) > 1:
            first = dataclasses.replace(
                first,
                notes=(
                    *first.notes,
                    f"the same problem in {len(same) - 1} more instance{'s' * (len(same) > 2)}",
                ),
            )
        merged.append(first)
    return merged


class _Expander(Collector):
    def __init__(self, spec: ModelSpec, custom_objects: dict[str, Any]):
        super().__init__()
        self.spec = spec
        self.custom = custom_objects
        self.origins: dict[tuple, Origin] = {}
        self.frames: dict[tuple, tuple[Frame, ...]] = {}
        self.layers: dict[str, Any] | list[Any] = [] if isinstance(spec.layers, list) else {}
        self.names: set[str] = set(spec.inputs)
        self.counters: dict[str, int] = {}
        self.loaded: dict[str, Library] = {}

    # -- problems ------------------------------------------------------------

    def fail(
        self, at: Origin, code: str, message: str, hint: str | None = None, *, key: bool = False
    ) -> _Failed:
        self.error(at, code, message, hint, key=key)
        return _Failed()

    def expression_problem(self, at: Origin, e: ExprError) -> _Failed:
        p = at.problem(e.code, e.message, e.hint)
        if p.column is not None and p.source_line is not None:
            line, start = p.source_line, p.column
            column = _source_column(line, start, e.offset)
            p = dataclasses.replace(
                p, column=column, end_column=_source_column(line, start, e.offset + e.length)
            )
        self.problems.append(p)
        return _Failed()

    # -- values --------------------------------------------------------------

    def value(self, raw: Any, scope: dict[str, Any], at: Origin) -> Any:
        """``raw`` with every ``${...}`` evaluated in ``scope``."""
        if isinstance(raw, str):
            if "${" not in raw:
                return raw
            from .expr import ExprError, parse  # a plain spec never needs the expression language

            try:
                return parse(raw).render(scope)
            except ExprError as e:
                raise self.expression_problem(at, e) from None
        if isinstance(raw, list):
            return [self.value(v, scope, at.at(i)) for i, v in enumerate(raw)]
        if isinstance(raw, dict):
            return {k: self.value(v, scope, at.at(k)) for k, v in raw.items()}
        return raw

    def condition(self, entry: LayerSpec, scope: dict[str, Any], at: Origin) -> bool:
        if entry.if_ is None:
            return True
        value = self.value(entry.if_, scope, at.at("if"))
        if not isinstance(value, bool):
            raise self.fail(at.at("if"), "wrong-type", f"'if' takes true or false, got {value!r}")
        return value

    def name(self, entry: LayerSpec, scope: dict[str, Any], at: Origin) -> str:
        """An entry's ``name``, evaluated: a valid node name, as the flat names are made of it."""
        value = self.value(entry.name, scope, at.at("name"))
        if not isinstance(value, str) or re.fullmatch(NAME_PATTERN, value) is None:
            raise self.fail(at.at("name"), "invalid-name", *invalid_name(value))
        return value

    # -- the whole spec --------------------------------------------------------

    def run(self, overrides: dict[str, Any], variant: str | None) -> dict[str, Any] | None:
        spec = self.spec
        root = Library(spec, spec.source, self.main_scope(overrides, variant))
        self.imports(root, (os.path.abspath(spec.source.name),) if isinstance(spec.source, Source) else ())
        self.check_blocks(root)
        if self.problems:
            return None
        data = spec.to_data()
        ctx = _Context(root, root.scope, listing=isinstance(spec.layers, list))
        flat: dict[str, Any] = {"modelspec": data["modelspec"]}
        for part in ("name", "description", "seed", "inputs", "compile", "train"):
            if part in data:
                with contextlib.suppress(_Failed):  # recorded; the other parts are still expanded
                    flat[part] = self.value(data[part], root.scope, spec.at(part))
        if spec.layers is None:  # a block library: its blocks are checked where they are used
            return None if self.problems else flat
        env: dict[str, Value] = {name: name for name in spec.inputs}
        try:
            if isinstance(spec.layers, list):
                self.chain(spec.layers, ("layers",), ctx, next(iter(spec.inputs), None))
            else:
                last = self.dag(
                    spec.layers,
                    ("layers",),
                    ctx,
                    env,
                    next(iter(spec.inputs)) if len(spec.inputs) == 1 else None,
                )
                outputs = data.get("outputs")
                if outputs is not None:
                    at = spec.at("outputs")
                    flat["outputs"] = self.refs(self.value(outputs, root.scope, at), env, at)
                elif last is not None and last is not _BROKEN:
                    flat["outputs"] = last
        except _Failed:
            pass
        if isinstance(self.layers, dict) and not self.problems and flat.get("outputs") is not None:
            self.prune(flat["outputs"])
        flat["layers"] = _in_order(self.layers) if isinstance(self.layers, dict) else self.layers
        for k in ("outputs", "compile", "train"):  # the spec's order
            if k in flat:
                flat[k] = flat.pop(k)
        return None if self.problems else flat

    def prune(self, outputs: Any) -> None:
        """Leave out the nodes of block instances that nothing uses, as a Keras functional model does.

        A block whose ``outputs`` is chosen by a param (``"${'add' if residual else 'bn'}"``) keeps
        the node it did not choose in its body; the instance computes only what its outputs need.
        A node written at top level and used by nothing stays, for the graph stage to report.
        """
        layers: dict[str, Any] = self.layers  # type: ignore[assignment]
        wanted = [split_reference(r)[0] for r in _strings(outputs)]
        reached: set[str] = set()
        while wanted:
            name = wanted.pop()
            if name in reached or name not in layers:
                continue
            reached.add(name)
            data = layers[name]
            wanted += [split_reference(r)[0] for r in _strings([data.get("inputs"), data.get("share")])]
        for name in [n for n in layers if n not in reached and self.origins[("layers", n)].chain]:
            del layers[name]

    def main_scope(self, overrides: dict[str, Any], variant: str | None) -> dict[str, Any]:
        spec = self.spec
        scope = dict(spec.params)
        for name, values in spec.variants.items():
            for key in values:
                if key not in spec.params:
                    self.unknown_param(spec.at("variants", name, key), key, spec.params, "variant")
        if variant is not None:
            if variant not in spec.variants:
                self.problems.append(
                    Problem.in_file(
                        "unknown-variant",
                        self.file_name(),
                        f"the spec has no variant {variant!r} (asked for by --variant or variant=)",
                        self.near.hint(
                            variant,
                            spec.variants,
                            "variants",
                            f"its variants: {', '.join(spec.variants) or 'none'}",
                        ),
                        path=("variants",),
                    )
                )
            else:
                scope.update(spec.variants[variant])
        for key, value in overrides.items():
            if key not in spec.params:
                self.problems.append(
                    Problem.in_file(
                        "unknown-param",
                        self.file_name(),
                        f"the spec declares no param {key!r} (set by --set or params=)",
                        self.near.hint(
                            key, spec.params, "params", f"its params: {', '.join(spec.params) or 'none'}"
                        ),
                        path=("params",),
                    )
                )
            scope[key] = value
        return scope

    def file_name(self) -> str:
        return self.spec.source.name if self.spec.source is not None else "<spec>"

    def unknown_param(self, at: Origin, key: str, known: Any, what: str) -> None:
        self.error(
            at, "unknown-param", f"the {what} sets {key!r}, which is not a declared param",
            self.near.hint(key, known, f"params:{id(known)}", f"the params are: {', '.join(known) or 'none'}"), key=True,
        )  # fmt: skip

    # -- imports and blocks ----------------------------------------------------

    def imports(self, lib: Library, stack: tuple[str, ...]) -> None:
        base = lib.doc.base_dir if lib.doc is not None else os.getcwd()
        for alias, relative in lib.spec.imports.items():
            at = lib.at("imports", alias)
            if os.path.isabs(relative) or "://" in relative:
                self.error(at, "import-file", f"imports are files relative to this one, got {relative!r}")
                continue
            path = os.path.abspath(os.path.join(base, relative))
            if path in stack:
                cycle = " -> ".join(os.path.basename(p) for p in (*stack[stack.index(path) :], path))
                self.error(at, "import-cycle", f"the imports go round in a circle: {cycle}")
                continue
            if path in self.loaded:
                lib.imports[alias] = self.loaded[path]
                continue
            try:
                source = read_source(path)
            except SpecError as e:
                self.error(at, "import-file", f"cannot import {relative!r}: {e.problems[0].message}")
                continue
            spec, problems = to_spec(source, self.custom)
            self.problems += problems
            if spec is None:
                continue
            sub = Library(spec, source, dict(spec.params))
            self.loaded[path] = lib.imports[alias] = sub
            self.imports(sub, (*stack, path))

    def check_blocks(self, root: Library) -> None:
        """Block names that shadow layer types, and blocks that use themselves (through others or not)."""
        libraries = [root, *self.loaded.values()]
        for lib in libraries:
            for name in lib.spec.blocks:
                if (
                    catalog.layer(name) is not None
                    or catalog.refused(name) is not None
                    or name in self.custom
                ):
                    self.error(
                        lib.at("blocks", name), "block-name",
                        f"the block name {name!r} is a Keras layer type: an entry could not say which it means",
                        f"rename the block, e.g. '{name[0].lower()}{name[1:]}_block'", key=True,
                    )  # fmt: skip
        edges: dict[tuple[int, str], list[tuple[int, str]]] = {}
        for lib in libraries:
            for name, block in lib.spec.blocks.items():
                entries = block.layers.values() if isinstance(block.layers, dict) else block.layers
                targets = []
                for entry in entries:
                    if entry is not None and isinstance(entry.block, str) and "${" not in entry.block:
                        found = self.find_block(entry.block, lib)
                        if found is not None:
                            targets.append((id(found[1]), found[1], entry.block.rsplit(".", 1)[-1]))
                edges[(id(lib), name)] = [(i, n) for i, _, n in targets]
                for _, target_lib, _ in targets:
                    edges.setdefault((id(target_lib), "#lib"), [])
        names = {(id(lib), n): (lib, n) for lib in libraries for n in lib.spec.blocks}
        state: dict[tuple, int] = {}
        for start in names:
            stack = [(start, iter(edges.get(start, [])))]
            trail = [start]
            state[start] = state.get(start, 0) or 1
            if state[start] == 2:
                continue
            while stack:
                node, it = stack[-1]
                nxt = next(it, None)
                if nxt is None:
                    stack.pop()
                    trail.pop()
                    state[node] = 2
                    continue
                if state.get(nxt) == 1:
                    cycle = [names[n][1] for n in trail[trail.index(nxt) :]] + [names[nxt][1]]
                    lib, name = names[nxt]
                    self.error(
                        lib.at("blocks", name),
                        "block-cycle",
                        f"the blocks use each other in a circle: {' -> '.join(cycle)}",
                        key=True,
                    )
                    continue
                if state.get(nxt) == 2 or nxt not in names:
                    continue
                state[nxt] = 1
                trail.append(nxt)
                stack.append((nxt, iter(edges.get(nxt, []))))

    def find_block(self, name: str, lib: Library) -> tuple[BlockSpec, Library] | None:
        if "." in name:
            alias, _, bare = name.partition(".")
            target = lib.imports.get(alias)
            if target is None or bare not in target.spec.blocks:
                return None
            return target.spec.blocks[bare], target
        block = lib.spec.blocks.get(name)
        return (block, lib) if block is not None else None

    def block(self, name: Any, lib: Library, at: Origin) -> tuple[BlockSpec, Library]:
        found = self.find_block(name, lib) if isinstance(name, str) else None
        if found is None:
            known = [
                *lib.spec.blocks,
                *(f"{a}.{b}" for a, sub in lib.imports.items() for b in sub.spec.blocks),
            ]
            alias = name.partition(".")[0] if isinstance(name, str) and "." in name else None
            if alias is not None and alias not in lib.imports:
                message = f"unknown import {alias!r} in the block name {name!r}"
            else:
                message = f"unknown block {name!r}"
            raise self.fail(
                at,
                "unknown-block",
                message,
                self.near.hint(
                    str(name), known, f"blocks:{id(lib)}", f"the blocks are: {', '.join(known) or 'none'}"
                ),
            )
        return found

    # -- entries ---------------------------------------------------------------

    def entry_at(self, entry: LayerSpec, path: tuple, ctx: _Context) -> Origin:
        own = entry.origin
        base = own if own is not None else ctx.lib.at(*path)
        return Origin(base.doc, base.path, ctx.chain)

    def emit(self, name: str | None, data: dict[str, Any], at: Origin, ctx: _Context) -> None:
        """Add one flat layer entry."""
        if len(self.layers) >= MAX_NODES:
            raise self.fail(
                at,
                "expand-limit",
                f"the expansion makes more than {MAX_NODES:,} layers",
                "check the repeat counts",
            )
        if ctx.listing:
            if name is not None:
                data = {**data, "name": name}
            self.origins[("layers", len(self.layers))] = at
            self.frames[("layers", len(self.layers))] = ctx.frames
            self.layers.append(data)  # type: ignore[union-attr]
            return
        assert name is not None
        if name in self.names:
            raise self.fail(
                at,
                "duplicate-name",
                f"the expansion makes the name {name!r} twice",
                "names are unique across inputs and layers: give each instance its own name",
            )
        self.names.add(name)
        self.origins[("layers", name)] = at
        self.frames[("layers", name)] = ctx.frames
        self.layers[name] = data  # type: ignore[index]

    def args(self, entry: LayerSpec, scope: dict[str, Any], at: Origin) -> dict[str, Any]:
        data: dict[str, Any] = {}
        if entry.type is not None:
            data["type"] = self.value(entry.type, scope, at.at("type"))
        if entry.op is not None:
            data["op"] = self.value(entry.op, scope, at.at("op"))
        for key, raw in entry.args.items():
            data[key] = self.value(raw, scope, at.at(key))
        if entry.call is not None:
            data["call"] = self.value(entry.call, scope, at.at("call"))
        return data

    def resolve(self, raw: Any, env: dict[str, Value], at: Origin) -> Value:
        """A reference written in a body, as a flat reference."""
        if not isinstance(raw, str):
            raise self.fail(at, "invalid-name", f"a reference is a name, got {raw!r}")
        name, index = split_reference(raw)
        if name not in env:
            raise self.fail(
                at, "unknown-reference", f"unknown node {name!r}", self.near.hint(name, env, f"env:{id(env)}")
            )
        value = env[name]
        if value is _BROKEN:
            raise _Failed()
        if isinstance(value, list):  # an instance with several outputs
            if index is None:
                if len(value) == 1:
                    return value[0]
                raise self.fail(
                    at, "bad-output-index", f"{name!r} has {len(value)} outputs: pick one with {name}[k]"
                )
            if not -len(value) <= index < len(value):
                raise self.fail(
                    at,
                    "bad-output-index",
                    f"{raw!r}: {name!r} has {len(value)} outputs",
                    f"index it from 0 to {len(value) - 1}",
                )
            return value[index]
        if index is None:
            return value
        if "[" in value:
            raise self.fail(
                at, "bad-output-index", f"{raw!r}: {name!r} is one output of a layer; index it once"
            )
        return f"{value}[{index}]"

    def refs(self, raw: Any, env: dict[str, Value], at: Origin) -> Any:
        if isinstance(raw, list):
            return [self.resolve(r, env, at.at(i)) for i, r in enumerate(raw)]
        if isinstance(raw, dict):
            return {k: self.refs(v, env, at.at(k)) for k, v in raw.items()}
        return self.resolve(raw, env, at)

    # -- a mapping of entries (a DAG) -----------------------------------------

    def dag(
        self,
        entries: dict[str, LayerSpec],
        path: tuple,
        ctx: _Context,
        env: dict[str, Value],
        first: Value | None,
    ) -> Value | None:
        """Expand a DAG body in dependency order; returns the value of the last entry kept."""
        keys = list(entries)
        above = {key: keys[i - 1] if i else None for i, key in enumerate(keys)}
        kept: dict[str, bool] = {}
        raw_inputs: dict[str, Any] = {}
        pending = [k for k in keys if entries[k] is not None]
        for key in pending:
            entry = entries[key]
            at = self.entry_at(entry, (*path, key), ctx)
            try:
                raw_inputs[key] = (
                    None if entry.inputs is None else self.value(entry.inputs, ctx.scope, at.at("inputs"))
                )
            except _Failed:
                raw_inputs[key] = _BROKEN

        # An input's name taken by a node the flat spec will not have (the graph checks the rest).
        for key in pending:
            entry = entries[key]
            if key in env and (ctx.prefix is not None or entry.block is not None or entry.if_ is not None):
                self.error(
                    self.entry_at(entry, (*path, key), ctx), "duplicate-name",
                    f"duplicate name '{key}': it names an input and a layer",
                    "names are unique across inputs and layers", key=True,
                )  # fmt: skip
        for key in pending:  # a plain layer's flat name is known before it is expanded: no waiting for it
            entry = entries[key]
            if entry.block is None and entry.if_ is None and (entry.name is None or ctx.prefix is None):
                env[key] = key if ctx.prefix is None else f"{ctx.prefix}-{key}"

        def default(key: str) -> Value | None:
            prev = above[key]
            while prev is not None and not kept.get(prev, True):
                prev = above[prev]
            return first if prev is None else env.get(prev)

        def waits_for(key: str) -> list[str]:
            entry = entries[key]
            names = [split_reference(r)[0] for r in _strings(raw_inputs[key])]
            for extra in (entry.else_, entry.share):
                if isinstance(extra, str) and "${" not in extra:
                    names.append(split_reference(extra)[0])
            if raw_inputs[key] is None or entry.if_ is not None:
                prev = above[key]
                while prev is not None and prev not in entries:
                    prev = above[prev]
                if prev is not None:
                    names.append(prev)
            return [n for n in names if n in entries and n not in done and n != key]

        done: set[str] = {k for k in env if k in entries}
        while pending:
            ready = [k for k in pending if not waits_for(k)]
            if not ready:
                cycle = " -> ".join(pending)
                at = self.entry_at(entries[pending[0]], (*path, pending[0]), ctx)
                raise self.fail(
                    at.at("inputs"), "cycle", f"these entries depend on each other in a circle: {cycle}"
                )
            for key in ready:
                pending.remove(key)
                entry = entries[key]
                at = self.entry_at(entry, (*path, key), ctx)
                try:
                    if raw_inputs[key] is _BROKEN:
                        raise _Failed()
                    value, keep = self.dag_entry(key, entry, at, ctx, env, raw_inputs[key], default(key))
                except _Failed:
                    value, keep = _BROKEN, True
                env[key] = value
                kept[key] = keep
                done.add(key)
        last = first
        for key in keys:
            if kept.get(key):
                last = env[key]
        return last

    def dag_entry(
        self,
        key: str,
        entry: LayerSpec,
        at: Origin,
        ctx: _Context,
        env: dict[str, Value],
        raw: Any,
        above: Value | None,
    ) -> tuple[Value, bool]:
        if not self.condition(entry, ctx.scope, at):
            return self.passed(entry, at, ctx, env, raw, above), False
        if entry.block is not None:
            inputs = None if raw is None else self.refs(raw, env, at.at("inputs"))
            return self.instance(
                key if ctx.prefix is None else f"{ctx.prefix}-{key}", entry, at, ctx, inputs, above
            ), True
        self.misplaced(entry, at, ("repeat",), "a layer entry")
        top = ctx.prefix is None
        name = key if top else f"{ctx.prefix}-{key}"
        data = self.args(entry, ctx.scope, at)
        if entry.name is not None:
            if top:
                # The spec stage says where 'name' belongs.
                data["name"] = self.value(entry.name, ctx.scope, at.at("name"))
            else:
                name = self.name(entry, ctx.scope, at)  # the Keras layer name, exactly
        if raw is not None:
            data["inputs"] = self.refs(raw, env, at.at("inputs"))
        elif above is not None and above is not _BROKEN:
            data["inputs"] = self.single(above, at)
        elif above is _BROKEN:
            raise _Failed()
        if entry.share is not None:
            target = self.resolve(self.value(entry.share, ctx.scope, at.at("share")), env, at.at("share"))
            data = (
                {"share": target, **{k: v for k, v in data.items() if k != "type"}}
                if entry.type is None
                else {**data, "share": target}
            )
        self.emit(name, _ordered(data), at, ctx)
        return name, True

    def single(self, value: Value, at: Origin) -> str:
        if isinstance(value, list):
            if len(value) == 1:
                return value[0]
            raise self.fail(
                at,
                "bad-output-index",
                f"the entry above has {len(value)} outputs: say which with 'inputs'",
                key=True,
            )
        return value

    def passed(
        self,
        entry: LayerSpec,
        at: Origin,
        ctx: _Context,
        env: dict[str, Value],
        raw: Any,
        above: Value | None,
    ) -> Value:
        """What a reference to an entry left out by ``if: false`` means: ``else``, or its one input."""
        if entry.else_ is not None:
            return self.resolve(self.value(entry.else_, ctx.scope, at.at("else")), env, at.at("else"))
        if raw is None:
            if above is None:
                raise self.fail(
                    at.at("if"),
                    "if-needs-else",
                    "this entry is left out and has no input to pass on: give 'else'",
                )
            return above
        if isinstance(raw, list) and len(raw) == 1:
            raw = raw[0]
        if isinstance(raw, str):
            return self.resolve(raw, env, at.at("inputs"))
        raise self.fail(
            at.at("if"), "if-needs-else",
            "an entry left out by 'if' passes its input on, but this one has several: say which with 'else'",
            "add else: NODE, the node that stands for this one when it is left out",
        )  # fmt: skip

    def misplaced(self, entry: LayerSpec, at: Origin, keys: tuple[str, ...], what: str) -> None:
        for key in keys:
            attr = {"if": "if_", "else": "else_"}.get(key, key)
            if getattr(entry, attr) is not None:
                raise self.fail(
                    at.at(key), "misplaced-key", f"'{key}' belongs to a block instance, not {what}", key=True
                )

    # -- a list of entries (a chain) ------------------------------------------

    def chain(
        self, entries: list[LayerSpec], path: tuple, ctx: _Context, current: Value | None
    ) -> Value | None:
        """Expand a chain: each entry called on the one before; returns the last value."""
        for i, entry in enumerate(entries):
            if entry is None:
                continue
            at = self.entry_at(entry, (*path, i), ctx)
            try:
                if not self.condition(entry, ctx.scope, at):
                    continue
                for key in ("inputs", "share"):
                    if getattr(entry, key) is not None and ctx.prefix is not None:
                        raise self.fail(
                            at.at(key),
                            "misplaced-key",
                            f"'{key}' belongs to a mapping of layers; in a chain each layer takes the one above",
                            key=True,
                        )
                node = str(i)
                if entry.name is not None and entry.block is None:
                    node = self.name(entry, ctx.scope, at)
                if entry.block is not None and ctx.prefix is None and entry.name is None:
                    bare = str(self.value(entry.block, ctx.scope, at.at("block"))).rsplit(".", 1)[-1]
                    count = self.counters.get(bare, 0)
                    self.counters[bare] = count + 1
                    node = bare if count == 0 else f"{bare}_{count}"
                if entry.block is not None:
                    name = node if ctx.prefix is None else f"{ctx.prefix}-{node}"
                    current = self.instance(name, entry, at, ctx, None, current)
                    continue
                self.misplaced(entry, at, ("repeat",), "a layer entry")
                data = self.args(entry, ctx.scope, at)
                if ctx.prefix is None:
                    name = node if entry.name is not None else None
                    for key in ("inputs", "share"):  # the spec stage says where these belong
                        if getattr(entry, key) is not None:
                            data[key] = getattr(entry, key)
                else:
                    name = f"{ctx.prefix}-{node}"
                if not ctx.listing:
                    if current is _BROKEN:
                        raise _Failed()
                    if current is not None:
                        data["inputs"] = self.single(current, at)
                self.emit(name, _ordered(data), at, ctx)
                current = name
            except _Failed:
                current = _BROKEN
        return current

    # -- block instances -------------------------------------------------------

    def instance(
        self, name: str, entry: LayerSpec, at: Origin, ctx: _Context, given: Any, above: Value | None
    ) -> Value:
        """Expand one instance (repeated or not); returns its output(s)."""
        if entry.type is not None or entry.share is not None or entry.call is not None:
            key = "type" if entry.type is not None else "share" if entry.share is not None else "call"
            raise self.fail(at.at(key), "misplaced-key", f"a block instance takes no '{key}'", key=True)
        if ctx.depth >= MAX_NESTING:
            raise self.fail(at, "expand-limit", f"blocks nest deeper than {MAX_NESTING} levels")
        block_name = self.value(entry.block, ctx.scope, at.at("block"))
        block, lib = self.block(block_name, ctx.lib, at.at("block"))
        if ctx.listing and isinstance(block.layers, dict):
            raise self.fail(
                at.at("block"), "block-shape",
                f"block {block_name!r} is a DAG (its layers are a mapping); a list of layers can use chain blocks only",
                "write 'layers' as a mapping of node name -> entry to use it",
            )  # fmt: skip
        count = None
        if entry.repeat is not None:
            count = self.value(entry.repeat, ctx.scope, at.at("repeat"))
            if not isinstance(count, int) or isinstance(count, bool) or count < 0:
                raise self.fail(
                    at.at("repeat"), "wrong-type", f"'repeat' takes a whole number from 0, got {count!r}"
                )
            if (
                len(self.layers) + count > MAX_NODES
            ):  # each repeat makes a layer at least: refuse before the work
                raise self.fail(
                    at.at("repeat"),
                    "expand-limit",
                    f"repeat {count:,} would make more than {MAX_NODES:,} layers",
                )
            if isinstance(block.outputs, list) and len(block.outputs) != 1:
                raise self.fail(
                    at.at("repeat"), "block-shape",
                    f"block {block_name!r} has {len(block.outputs)} outputs; 'repeat' feeds each instance's output to the next, so it needs one",
                )  # fmt: skip
        self.check_params(block_name, block, entry, at)  # before the inputs: reported even when they broke
        values = self.instance_inputs(block_name, block, at, ctx, given, above)
        bare = str(block_name).rsplit(".", 1)[-1]
        block_at = block.origin if block.origin is not None else lib.at("blocks", bare)
        out: Value = values[0] if values else None
        reps = 1 if count is None else count
        if reps == 0:
            if not values:
                raise self.fail(
                    at.at("repeat"), "if-needs-else", "a block repeated 0 times has no input to pass on"
                )
            return values[0]
        for k in range(reps):
            ij = {} if count is None else {"i": k, "n": count}
            arg_scope = {**ctx.scope, **ij}
            params = {key: self.value(raw, arg_scope, at.at(key)) for key, raw in entry.args.items()}
            resolved = self.block_params(block, block_at, lib, params, ij)
            if entry.name is not None:  # the instance part of its nodes' names, evaluated for each repeat
                inst = self.name(entry, arg_scope, at)
                inst = inst if ctx.prefix is None else f"{ctx.prefix}-{inst}"
            else:
                inst = name if count is None else f"{name}-{k}"
            # A repeat is named by its count: "in stage2, repeat 2 of 4".
            label = inst if entry.name is not None else name
            note = f"in {label}" + (f", repeat {k + 1} of {count}" if count is not None else "") + _where(at)
            frame = Frame(inst, str(block_name), None if count is None else k, count, name)
            sub = _Context(
                lib,
                {**lib.scope, **ij, **resolved},
                (note, *ctx.chain),
                inst,
                ctx.depth + 1,
                ctx.listing,
                (*ctx.frames, frame),
            )
            body_at = ("blocks", bare, "layers")
            env: dict[str, Value] = dict(zip(block.inputs, values))
            if isinstance(block.layers, dict):
                last = self.dag(block.layers, body_at, sub, env, values[0] if len(values) == 1 else None)
            else:
                last = self.chain(block.layers, body_at, sub, values[0] if values else None)
            if block.outputs is not None:
                outputs_at = Origin(block_at.doc, (*block_at.path, "outputs"), sub.chain)
                out = self.refs(self.value(block.outputs, sub.scope, outputs_at), env, outputs_at)
            else:
                out = last
            if out is _BROKEN:
                raise _Failed()
            if count is not None and k + 1 < reps:
                values = [self.single(out, at), *values[1:]]
        return out

    def instance_inputs(
        self, name: str, block: BlockSpec, at: Origin, ctx: _Context, given: Any, above: Value | None
    ) -> list[Value]:
        """The values of the block's inputs, in its order."""
        wanted = block.inputs
        if ctx.listing:  # a stack: each layer takes the one above, whatever it is called
            return [above] if wanted else []
        if given is None:
            if len(wanted) == 1 and above is not None:
                if above is _BROKEN:
                    raise _Failed()
                return [self.single(above, at)]
            if not wanted:
                return []
            if (ctx.listing or above is None) and len(wanted) == 1:
                raise self.fail(
                    at,
                    "block-shape",
                    f"block {name!r} takes an input and nothing comes before this instance",
                    key=True,
                )
            raise self.fail(
                at, "block-shape", f"block {name!r} takes {len(wanted)} inputs ({', '.join(wanted)}): give them with 'inputs'",
                f"inputs: [{', '.join(wanted)}] in order, or inputs: {{{wanted[0]}: NODE, ...}}", key=True,
            )  # fmt: skip
        if isinstance(given, str):
            given = [given]
        if isinstance(given, list):
            if len(given) != len(wanted):
                raise self.fail(
                    at.at("inputs"),
                    "block-shape",
                    f"block {name!r} takes {len(wanted)} input{'s' * (len(wanted) != 1)} ({', '.join(wanted)}), got {len(given)}",
                )
            return list(given)
        unknown = [k for k in given if k not in wanted]
        for k in unknown:
            raise self.fail(
                at.at("inputs", k),
                "block-shape",
                f"block {name!r} has no input {k!r}",
                self.near.hint(k, wanted, f"inputs:{name}", f"its inputs: {', '.join(wanted)}"),
                key=True,
            )
        missing = [k for k in wanted if k not in given]
        if missing:
            raise self.fail(
                at.at("inputs"),
                "block-shape",
                f"block {name!r} needs its input{'s' * (len(missing) > 1)} {', '.join(map(repr, missing))}",
            )
        return [given[k] for k in wanted]

    def check_params(self, name: str, block: BlockSpec, entry: LayerSpec, at: Origin) -> None:
        """The instance's params are the block's, and it gives every required one."""
        for key in entry.args:
            if key not in block.params:
                raise self.fail(
                    at.at(key), "unknown-param", f"block {name!r} has no param {key!r}",
                    self.near.hint(key, block.params, f"params:{name}", f"its params: {', '.join(block.params) or 'none'}"), key=True,
                )  # fmt: skip
        for key, default in block.params.items():
            if key not in entry.args and default == "required":
                raise self.fail(
                    at,
                    "missing-param",
                    f"block {name!r} requires the param {key!r}",
                    f"add {key}: VALUE to this instance",
                    key=True,
                )

    def block_params(
        self,
        block: BlockSpec,
        block_at: Origin,
        lib: Library,
        given: dict[str, Any],
        ij: dict[str, int],
    ) -> dict[str, Any]:
        """The block's params for one instance: defaults, then the instance's values (checked by check_params)."""
        resolved: dict[str, Any] = {}
        for key, default in block.params.items():
            if key in given:
                resolved[key] = given[key]
            else:
                resolved[key] = self.value(
                    default, {**lib.scope, **ij, **resolved}, block_at.at("params", key)
                )
        return resolved


_ESCAPE_LENGTHS = {"x": 4, "u": 6, "U": 10}
"""The length in the text of a YAML double-quoted escape, by its letter (the others are 2: ``\\t``)."""


def _source_column(line: str, column: int, offset: int) -> int:
    """The column in ``line`` of the value's character at ``offset``, for a scalar written from ``column`` on.

    A quoted scalar's escapes (``\\t``, ``\\u00e9``, ``''``) take more characters in the
    text than in the value, so the offset is walked through them.
    """
    quote = line[column - 1 : column]
    if quote not in ("'", '"'):
        return column + offset
    pos = column  # 0-based: just past the opening quote
    for _ in range(offset):
        if quote == '"' and line.startswith("\\", pos):
            pos += _ESCAPE_LENGTHS.get(line[pos + 1 : pos + 2], 2)
        elif quote == "'" and line.startswith("''", pos):
            pos += 2
        else:
            pos += 1
    return pos + 1


def _where(at: Origin) -> str:
    """``, at FILE:LINE:COLUMN`` of an instance entry, for the notes under a problem inside it."""
    if at.doc is None:
        return ""
    place = at.doc.place(at.path, key=True)
    if place.span is None:
        return ""
    return f", at {place.file}:{place.span.line}:{place.span.column}"


def _in_order(layers: dict[str, Any]) -> dict[str, Any]:
    """Flat layers in the order they are called, each after what it takes (as a reader follows the text)."""
    ordered: dict[str, Any] = {}
    for start in layers:
        stack = [start]
        while stack:
            name = stack[-1]
            if name in ordered:
                stack.pop()
                continue
            entry = layers[name]
            needs = [split_reference(r)[0] for r in _strings(entry.get("inputs"))]
            needs += [entry["share"]] if isinstance(entry.get("share"), str) else []
            waiting = [n for n in needs if n in layers and n not in ordered and n not in stack]
            if waiting:
                stack.append(waiting[0])
            else:
                ordered[name] = entry
                stack.pop()
    return ordered


def _strings(raw: Any) -> list[str]:
    if isinstance(raw, str):
        return [raw]
    if isinstance(raw, list):
        return [s for v in raw for s in _strings(v)]
    if isinstance(raw, dict):
        return [s for v in raw.values() for s in _strings(v)]
    return []


_FIRST = ("type", "op", "share", "name", "inputs", "call")


def _ordered(data: dict[str, Any]) -> dict[str, Any]:
    """An entry's keys in the order people write them: type, name, inputs, ..., then the arguments."""
    return {**{k: data[k] for k in _FIRST if k in data}, **{k: v for k, v in data.items() if k not in _FIRST}}
