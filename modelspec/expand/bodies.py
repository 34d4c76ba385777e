"""Bodies: a chain or a DAG of entries expanded into flat layers, and block instances (repeated or not)."""

from __future__ import annotations

from typing import Any

from ..errors import Origin
from ..order import depth_first
from ..spec import BlockSpec, LayerSpec, split_reference
from .budget import Budget
from .ordering import strings
from .state import BROKEN, MAX_NESTING, MAX_NODES, Context, Failed, Frame, Resolved


class Bodies(Budget):
    """Entries to flat layers: a chain (each entry on the one before) or a DAG, and block instances."""

    def entry_at(self, entry: LayerSpec, path: tuple, ctx: Context) -> Origin:
        own = self.facts(entry).origin
        base = own if own is not None else ctx.lib.at(*path)
        return Origin(base.doc, base.path, ctx.chain)

    def where(self, at: Origin) -> str:
        """``, at FILE:LINE:COLUMN`` of an instance entry, for the notes under a problem inside it."""
        if at.doc is None:
            return ""
        key = (id(at.doc), at.path)
        found = self.wheres.get(key)
        if found is None:
            place = at.doc.place(at.path, key=True)
            found = "" if place.span is None else f", at {place.file}:{place.span.line}:{place.span.column}"
            self.wheres[key] = found
        return found

    def emit(self, name: str | None, data: dict[str, Any], at: Origin, ctx: Context) -> None:
        """Add one flat layer entry."""
        if len(self.layers) >= MAX_NODES:
            raise self.limit(
                at, f"the expansion makes more than {MAX_NODES:,} layers", "check the repeat counts"
            )
        if ctx.listing:
            if name is not None:
                data = {**data, "name": name}
            self.origins[("layers", len(self.layers))] = at
            self.frames[("layers", len(self.layers))] = ctx.frames
            self.layers.append(data)  # type: ignore[union-attr]
            return
        assert name is not None
        if ctx.shared is not None and ("type" in data or "share" in data):
            # A shared instance calls the layer its instance made at this place again.
            if not ctx.shared:
                raise self.fail(
                    at, "share-mismatch", "the shared instance makes more layers than the one it shares"
                )
            target = ctx.shared.pop(0)
            data = {"share": target, **{k: data[k] for k in ("inputs", "call") if k in data}}
        self.made.append(name)
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
        for key, raw in self.facts(entry).args.items():
            data[key] = self.value(raw, scope, at, key)
        if entry.call is not None:
            data["call"] = self.value(entry.call, scope, at.at("call"))
        return data

    def resolve(self, raw: Any, env: dict[str, Resolved], at: Origin) -> Resolved:
        """A reference written in a body, as a flat reference."""
        if not isinstance(raw, str):
            raise self.fail(at, "invalid-name", f"a reference is a name, got {raw!r}")
        name, index = split_reference(raw)
        if name not in env:
            raise self.fail(
                at, "unknown-reference", f"unknown node {name!r}", self.near.hint(name, env, f"env:{id(env)}")
            )
        value = env[name]
        if value is BROKEN:
            raise Failed()
        if isinstance(value, list):  # an instance with several outputs
            if index is None:
                if len(value) == 1:
                    return value[0]
                raise self.fail(
                    at, "bad-output-index", f"{name!r} has {len(value)} outputs: pick one with {name}[k]"
                )
            if isinstance(index, str):
                raise self.fail(
                    at, "bad-output-index", f"{raw!r}: {name!r} is a block instance: its outputs have positions, not keys",
                    f"index it from 0 to {len(value) - 1}",
                )  # fmt: skip
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

    def refs(self, raw: Any, env: dict[str, Resolved], at: Origin) -> Any:
        if isinstance(raw, list):
            return [self.resolve(r, env, at.at(i)) for i, r in enumerate(raw)]
        if isinstance(raw, dict):
            return {k: self.refs(v, env, at.at(k)) for k, v in raw.items()}
        return self.resolve(raw, env, at)

    def dag(
        self,
        entries: dict[str, LayerSpec],
        path: tuple,
        ctx: Context,
        env: dict[str, Resolved],
        first: Resolved | None,
    ) -> Resolved | None:
        """Expand a DAG body in dependency order; returns the value of the last entry kept."""
        keys, above, pending = self.layout(entries)
        kept: dict[str, bool] = {}
        raw_inputs: dict[str, Any] = {}
        ats: dict[str, Origin] = {}
        top = ctx.prefix is None
        static = not top  # inside a block whose references are written out, the order is the same every time
        for key in pending:
            entry = entries[key]
            facts = self.facts(entry)
            at = ats[key] = self.entry_at(entry, (*path, key), ctx)
            if entry.inputs is None or facts.plain_inputs:
                raw_inputs[key] = entry.inputs
            else:
                static = False
                try:
                    raw_inputs[key] = self.value(entry.inputs, ctx.scope, at, "inputs")
                except Failed:
                    raw_inputs[key] = BROKEN
            if key in env and (not top or entry.block is not None or entry.if_ is not None):
                # An input's name taken by a node the flat spec will not have (the graph checks the rest).
                self.error(
                    at, "duplicate-name", f"duplicate name '{key}': it names an input and a layer",
                    "names are unique across inputs and layers", key=True,
                )  # fmt: skip
            if entry.block is None and entry.if_ is None and (entry.name is None or top):
                env[key] = key if top else f"{ctx.prefix}-{key}"  # known before it is expanded: no waiting

        known = self.orders.get(id(entries)) if static else None
        if known is not None:
            order = known[1]
        else:
            done = {k for k in env if k in entries}  # plain layers: their names are known already
            waiting = set(pending)

            def waits_for(key: str) -> list[str]:
                entry = entries[key]
                names = [split_reference(r)[0] for r in strings(raw_inputs[key])]
                for extra in (entry.else_, entry.share):
                    if isinstance(extra, str) and "${" not in extra:
                        names.append(split_reference(extra)[0])
                if raw_inputs[key] is None or entry.if_ is not None:
                    prev = above[key]
                    if prev is not None:
                        names.append(prev)
                return [n for n in names if n in waiting and n not in done and n != key]

            def cycle(keys: list[str]) -> None:
                names = " -> ".join(keys)
                raise self.fail(
                    ats[keys[0]].at("inputs"),
                    "cycle",
                    f"these entries depend on each other in a circle: {names}",
                )

            order = depth_first(pending, waits_for, on_cycle=cycle)
            if static:
                self.orders[id(entries)] = (entries, order)
        for key in order:
            entry = entries[key]
            at = ats[key]
            self.step(at)
            prev = above[key]  # the node above, the default input: the last one kept
            while prev is not None and not kept.get(prev, True):
                prev = above[prev]
            try:
                if raw_inputs[key] is BROKEN:
                    raise Failed()
                default = first if prev is None else env.get(prev)
                value, keep = self.dag_entry(key, entry, at, ctx, env, raw_inputs[key], default)
            except Failed:
                value, keep = BROKEN, True
            env[key] = value
            kept[key] = keep
        last = first
        for key in keys:
            if kept.get(key):
                last = env[key]
        return last

    def layout(self, entries: dict[str, LayerSpec]) -> tuple[list[str], dict[str, str | None], list[str]]:
        """A DAG body's keys, the key above each, and the keys with an entry: the same for every instance."""
        found = self.layouts.get(id(entries))
        if found is None:
            keys = list(entries)
            above = {key: keys[i - 1] if i else None for i, key in enumerate(keys)}
            found = self.layouts[id(entries)] = (
                entries,
                keys,
                above,
                [k for k in keys if entries[k] is not None],
            )
        return found[1], found[2], found[3]

    def dag_entry(
        self,
        key: str,
        entry: LayerSpec,
        at: Origin,
        ctx: Context,
        env: dict[str, Resolved],
        raw: Any,
        above: Resolved | None,
    ) -> tuple[Resolved, bool]:
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
            elif ctx.shared is None:  # a shared instance's layers are the ones it shares: named by the rule
                name = self.name(entry, ctx.scope, at)  # the Keras layer name, exactly
        if raw is not None:
            data["inputs"] = self.refs(raw, env, at.at("inputs"))
        elif above is not None and above is not BROKEN:
            data["inputs"] = self.single(above, at)
        elif above is BROKEN:
            raise Failed()
        if entry.share is not None:
            target = self.resolve(self.value(entry.share, ctx.scope, at.at("share")), env, at.at("share"))
            data = (
                {"share": target, **{k: v for k, v in data.items() if k != "type"}}
                if entry.type is None
                else {**data, "share": target}
            )
        self.emit(name, ordered(data), at, ctx)
        return name, True

    def single(self, value: Resolved, at: Origin) -> str:
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
        ctx: Context,
        env: dict[str, Resolved],
        raw: Any,
        above: Resolved | None,
    ) -> Resolved:
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

    def chain(
        self, entries: list[LayerSpec], path: tuple, ctx: Context, current: Resolved | None
    ) -> Resolved | None:
        """Expand a chain: each entry called on the one before; returns the last value."""
        for i, entry in enumerate(entries):
            if entry is None:
                continue
            at = self.entry_at(entry, (*path, i), ctx)
            self.step(at)
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
                    if current is BROKEN:
                        raise Failed()
                    if current is not None:
                        data["inputs"] = self.single(current, at)
                self.emit(name, ordered(data), at, ctx)
                current = name
            except Failed:
                current = BROKEN
        return current

    def instance(
        self, name: str, entry: LayerSpec, at: Origin, ctx: Context, given: Any, above: Resolved | None
    ) -> Resolved:
        """Expand one instance (repeated or not); returns its output(s)."""
        if entry.type is not None or entry.call is not None or (entry.share is not None and ctx.listing):
            key = "type" if entry.type is not None else "call" if entry.call is not None else "share"
            raise self.fail(at.at(key), "misplaced-key", f"a block instance takes no '{key}'", key=True)
        shared = None if entry.share is None else self.shared_layers(entry, at, ctx)
        if ctx.depth >= MAX_NESTING:
            raise self.limit(at, f"blocks nest deeper than {MAX_NESTING} levels")
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
            if isinstance(block.outputs, list) and len(block.outputs) != 1:
                raise self.fail(
                    at.at("repeat"), "block-shape",
                    f"block {block_name!r} has {len(block.outputs)} outputs; 'repeat' feeds each instance's output to the next, so it needs one",
                )  # fmt: skip
        if shared is not None:
            if shared[0] != str(block_name):
                raise self.fail(
                    at.at("share"), "share-mismatch",
                    f"instance {self.value(entry.share, ctx.scope, at.at('share'))!r} is of block {shared[0]!r}, not {str(block_name)!r}",
                    f"share an instance of {str(block_name)!r}, or write block: {shared[0]}",
                )  # fmt: skip
            if self.facts(entry).args:
                key = next(iter(self.facts(entry).args))
                raise self.fail(
                    at.at(key), "misplaced-key",
                    "a shared instance takes no params: it calls the layers of the instance it shares",
                    key=True,
                )  # fmt: skip
        given_entry = entry if shared is None else shared[1]  # a shared one: the same params, the same layers
        self.check_params(
            block_name, block, given_entry, at
        )  # before the inputs: reported even when they broke
        values = self.instance_inputs(block_name, block, at, ctx, given, above)
        bare = str(block_name).rsplit(".", 1)[-1]
        block_at = self.facts(block).origin or lib.at("blocks", bare)
        out: Resolved = values[0] if values else None
        start = len(self.made)
        reps = 1 if count is None else count
        if reps == 0:
            if not values:
                raise self.fail(
                    at.at("repeat"), "if-needs-else", "a block repeated 0 times has no input to pass on"
                )
            return values[0]
        for k in range(reps):
            self.step(at)
            ij = {} if count is None else {"i": k, "n": count}
            arg_scope = {**ctx.scope, **ij}
            params = {
                key: self.value(raw, arg_scope, at, key) for key, raw in self.facts(given_entry).args.items()
            }
            resolved = self.block_params(block, block_at, lib, params, ij)
            if entry.name is not None:  # the instance part of its nodes' names, evaluated for each repeat
                inst = self.name(entry, arg_scope, at)
                inst = inst if ctx.prefix is None else f"{ctx.prefix}-{inst}"
            else:
                inst = name if count is None else f"{name}-{k}"
            # A repeat is named by its count: "in stage2, repeat 2 of 4".
            label = inst if entry.name is not None else name
            note = (
                f"in {label}" + (f", repeat {k + 1} of {count}" if count is not None else "") + self.where(at)
            )
            frame = Frame(inst, str(block_name), None if count is None else k, count, name)
            sub = Context(
                lib,
                {**lib.scope, **ij, **resolved},
                (note, *ctx.chain),
                inst,
                ctx.depth + 1,
                ctx.listing,
                (*ctx.frames, frame),
                ctx.shared if shared is None else shared[2],
            )
            if k == 0:  # refused before the work when even its least is too much
                self.afford(
                    at if count is None else at.at("repeat"), reps, str(block_name), block, lib, sub.scope
                )
            body_at = ("blocks", bare, "layers")
            env: dict[str, Resolved] = dict(zip(block.inputs, values))
            if isinstance(block.layers, dict):
                last = self.dag(block.layers, body_at, sub, env, values[0] if len(values) == 1 else None)
            else:
                last = self.chain(block.layers, body_at, sub, values[0] if values else None)
            if block.outputs is not None:
                outputs_at = Origin(block_at.doc, (*block_at.path, "outputs"), sub.chain)
                out = self.refs(self.value(block.outputs, sub.scope, outputs_at), env, outputs_at)
            else:
                out = last
            if out is BROKEN:
                raise Failed()
            if count is not None and k + 1 < reps:
                values = [self.single(out, at), *values[1:]]
        if shared is not None and shared[2]:
            raise self.fail(
                at.at("share"),
                "share-mismatch",
                "the shared instance makes fewer layers than the one it shares",
            )
        if ctx.shared is None and not ctx.listing:
            scope_key = (ctx.prefix, name if ctx.prefix is None else name[len(ctx.prefix) + 1 :])
            self.instances[scope_key] = (str(block_name), entry, self.made[start:])
        return out

    def shared_layers(self, entry: LayerSpec, at: Origin, ctx: Context) -> tuple[str, LayerSpec, list[str]]:
        """The instance a shared one names (in the same body): its block, its entry, the layers it made."""
        other = self.value(entry.share, ctx.scope, at.at("share"))
        found = self.instances.get((ctx.prefix, other))
        if found is None:
            known = sorted(str(k[1]) for k in self.instances if k[0] == ctx.prefix)
            raise self.fail(
                at.at("share"), "unknown-reference", f"no block instance {other!r} before this one to share",
                f"share one of: {', '.join(known)}" if known else "share an instance written above this one",
            )  # fmt: skip
        return found[0], found[1], list(found[2])

    def instance_inputs(
        self, name: str, block: BlockSpec, at: Origin, ctx: Context, given: Any, above: Resolved | None
    ) -> list[Resolved]:
        """The values of the block's inputs, in its order."""
        wanted = block.inputs
        if ctx.listing:  # a stack: each layer takes the one above, whatever it is called
            if above is BROKEN:  # what failed above is reported: this instance is not expanded on it
                raise Failed()
            return [above] if wanted else []
        if given is None:
            if len(wanted) == 1 and above is not None:
                if above is BROKEN:
                    raise Failed()
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


_FIRST = ("type", "op", "share", "name", "inputs", "call")


def ordered(data: dict[str, Any]) -> dict[str, Any]:
    """An entry's keys in the order people write them: type, name, inputs, ..., then the arguments."""
    return {**{k: data[k] for k in _FIRST if k in data}, **{k: v for k, v in data.items() if k not in _FIRST}}
