"""Bodies written out as spec data: blocks for nested models (grouped by structure), names for entries.

Nested models of one structure share one block, what differs between them
becoming its params; the model's own entries keep their Keras names where the
format takes them.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ... import catalog
from ...graph.model import snake_case
from ...spec.models import RESERVED_KEYS
from ..values import plain_equal
from .bodies import Body, Item, Ref, ref_data
from .names import VALID_NAME, Names, name_in_model, valid_name


class Writer:
    """Turns bodies into spec data: blocks for instance bodies (grouped by structure), names for entries."""

    def __init__(self, renamed: dict[str, str]):
        self.renamed = renamed
        self.groups: dict[str, Group] = {}
        self.block_names = Names()
        self.group_of: dict[int, Group] = {}
        self.blocks: dict[str, dict[str, Any]] = {}

    # -- blocks ------------------------------------------------------------------

    def prepare(self, body: Body) -> None:
        """Group every instance body (innermost first) and make their blocks."""
        by_depth: dict[int, list[tuple[Body, str]]] = {}

        def visit(b: Body) -> int:
            depth = 0
            for item in b.items:
                if item.kind == "instance" and item.body is not None:
                    d = visit(item.body) + 1
                    by_depth.setdefault(d, []).append((item.body, item.name))
                    depth = max(depth, d)
            return depth

        visit(body)
        for depth in sorted(by_depth):
            members = by_depth[depth]
            order: list[str] = []
            grouped: dict[str, list[tuple[Body, str]]] = {}
            for b, instance in members:
                key = self.signature(b)
                if key not in grouped:
                    order.append(key)
                grouped.setdefault(key, []).append((b, instance))
            for key in order:
                group = Group(self, grouped[key])
                self.groups[key] = group
                for b, _ in grouped[key]:
                    self.group_of[id(b)] = group
                self.blocks[group.name] = group.data()

    def signature(self, body: Body) -> str:
        items = []
        for item in body.items:
            what: Any = item.type
            if item.kind == "instance":
                group = self.group_of[id(item.body)]
                what = [group.name, sorted(group.params)]
            items.append(
                [item.kind, what, sorted(item.args) if item.kind != "instance" else None,
                 ref_data(item.inputs), item.call, item.share, item.outputs]
            )  # fmt: skip
        return json.dumps([len(body.inputs), body.chain, items, ref_data(body.outputs)], default=str)

    def instance_args(self, item: Item) -> tuple[str, dict[str, Any]]:
        group = self.group_of[id(item.body)]
        return group.name, group.args_of(item.body)  # type: ignore[arg-type]

    # -- entries -----------------------------------------------------------------

    def entries(
        self,
        body: Body,
        keys: list[str],
        input_names: list[str],
        *,
        chain: bool,
        top: bool,
        args_of: Any = None,
        names_in_chain: bool = True,
    ) -> Any:
        """The ``layers`` of a body: a list (a chain) or key -> entry."""

        def ref(r: Ref) -> str:
            base = input_names[r.source] if r.item is None else keys[r.item]
            return base if r.index is None else f"{base}[{r.index}]"

        def refs(value: Any) -> Any:
            if isinstance(value, Ref):
                return ref(value)
            if isinstance(value, dict):
                return {k: refs(v) for k, v in value.items()}
            if isinstance(value, list):
                return [refs(v) for v in value]
            return None

        out: Any = [] if chain else {}
        for j, item in enumerate(body.items):
            args = args_of(j, item) if args_of is not None else item.args
            entry: dict[str, Any]
            if item.kind == "instance":
                block, params = self.instance_args(item)
                if args_of is not None:
                    params = args_of(j, item, params)
                entry = {"block": block}
                if chain and (top or names_in_chain):
                    entry["name"] = keys[j]
                entry.update(params)
            elif item.kind == "op":
                entry = {"op": item.type}
            elif item.kind == "share":
                entry = {"share": keys[item.share]}  # type: ignore[index]
            else:
                entry = {"type": item.type}
                if chain and (top or names_in_chain):
                    entry["name"] = keys[j]
            if not chain:
                default = Ref(j - 1) if j else (Ref(None, 0) if len(input_names) == 1 else None)
                if item.inputs is not None and not (isinstance(item.inputs, Ref) and item.inputs == default):
                    entry["inputs"] = refs(item.inputs)
                if item.call:
                    entry["call"] = item.call
            if item.kind != "instance" and item.kind != "share":
                entry.update(args)
            if chain:
                out.append(entry)
            else:
                out[keys[j]] = entry
        outputs = None
        if not chain and body.outputs is not None:
            outputs = refs(body.outputs)
        return out, outputs

    def top_keys(self, body: Body, names: Names) -> tuple[list[str], list[str]]:
        """Input names and entry keys of the model itself: the Keras names, made valid and unique.

        A name the format takes keeps it (the first time it comes); others get
        a valid one, recorded in ``renamed``. Shared calls are ``NAME_K``,
        operations their Keras names.
        """
        wanted = list(body.inputs) + [it.name for it in body.items if it.kind in ("layer", "instance")]
        kept: set[int] = set()
        for i, name in enumerate(wanted):
            if VALID_NAME.match(name) and name not in names.taken:
                names.taken.add(name)
                kept.add(i)
        given = []
        for i, name in enumerate(wanted):
            if i in kept:
                given.append(name)
                continue
            new = names.take(name)
            self.renamed.setdefault(name, new)
            given.append(new)
        inputs = given[: len(body.inputs)]
        rest = iter(given[len(body.inputs) :])
        keys = [next(rest) if item.kind in ("layer", "instance") else "" for item in body.items]
        calls: Counter[int] = Counter()
        for j, item in enumerate(body.items):
            if item.kind == "share":
                target = item.share if item.share is not None else 0
                calls[target] += 1
                keys[j] = names.take(f"{keys[target]}_{calls[target]}")
            elif item.kind == "op":
                keys[j] = names.take(item.name, item.type or "op")
        return inputs, keys


@dataclass
class Group:
    """Nested models of one structure: one block, its params what differs between them."""

    writer: Writer
    members: list[tuple[Body, str]]
    name: str = ""
    params: dict[str, tuple[int, str, tuple]] = field(default_factory=dict)  # param -> (item, arg, path)

    def __post_init__(self) -> None:
        first, instance = self.members[0]
        base = re.sub(r"[_-]?\d+$", "", instance) or instance
        base = valid_name(base, "block")
        if catalog.layer(base) is not None or catalog.refused(base) is not None:
            base = f"{base}_block"
        self.name = self.writer.block_names.take(base, "block")
        self.values: dict[str, list[Any]] = {}
        self.slots: dict[tuple[int, str], str] = {}
        taken = set(RESERVED_KEYS)  # never a block param named like an entry key
        for j, item in enumerate(first.items):
            keys = list(item.args) if item.kind != "instance" else list(self.inner_params(j))
            for key in keys:
                values = [self.arg(b, j, key) for b, _ in self.members]
                if all(plain_equal(v, values[0]) for v in values[1:]):
                    continue
                param = valid_name(key, "p")
                k = 1
                while param in taken:
                    param = f"{valid_name(key, 'p')}_{k}"
                    k += 1
                taken.add(param)
                self.slots[(j, key)] = param
                self.values[param] = values
                self.params[param] = (j, key, ())

    def inner_params(self, j: int) -> dict[str, Any]:
        body, _ = self.members[0]
        return self.writer.instance_args(body.items[j])[1]

    def arg(self, body: Body, j: int, key: str) -> Any:
        item = body.items[j]
        if item.kind == "instance":
            return self.writer.instance_args(item)[1].get(key)
        return item.args.get(key)

    def args_of(self, body: Body) -> dict[str, Any]:
        index = next(i for i, (b, _) in enumerate(self.members) if b is body)
        return {param: values[index] for param, values in self.values.items()}

    def data(self) -> dict[str, Any]:
        first, _ = self.members[0]
        names = self.entry_names()
        inputs = (
            [valid_name(n, "x") for n in first.inputs] if len(first.inputs) > 1 and not first.chain else ["x"]
        )
        if len(set(inputs)) != len(inputs):
            inputs = [f"x{i}" for i in range(len(inputs))]
        scope = Names(set(inputs))
        keys = [scope.take(n, "layer") for n in names]

        def args_of(j: int, item: Item, params: dict[str, Any] | None = None) -> dict[str, Any]:
            source = params if params is not None else item.args
            return {
                k: ("${" + self.slots[(j, k)] + "}" if (j, k) in self.slots else v) for k, v in source.items()
            }

        named = self.consistent
        layers, outputs = self.writer.entries(
            first, keys, inputs, chain=first.chain, top=False, args_of=args_of, names_in_chain=named
        )
        data: dict[str, Any] = {}
        if self.values:
            data["params"] = dict.fromkeys(self.values, "required")
        if inputs != ["x"]:
            data["inputs"] = inputs
        data["layers"] = layers
        if not first.chain and outputs is not None:
            last = keys[-1] if keys else None
            if outputs != last:
                data["outputs"] = outputs
        return data

    def entry_names(self) -> list[str]:
        """Entry names: the layers' own, less what they share with their model's name, when all members agree."""
        first, _ = self.members[0]
        per_member = [
            [valid_name(name_in_model(it.name, inst), "layer") for it in b.items] for b, inst in self.members
        ]
        names: list[str] = []
        self.consistent = True
        for j, item in enumerate(first.items):
            candidates = {m[j] for m in per_member}
            if len(candidates) == 1 and item.kind in ("layer", "instance"):
                names.append(per_member[0][j])
            else:
                if item.kind in ("layer", "instance"):
                    self.consistent = False
                generic = (
                    snake_case(item.type or "layer") if item.kind == "layer"
                    else item.type or "op" if item.kind == "op"
                    else self.writer.group_of[id(item.body)].name if item.kind == "instance"
                    else "shared"
                )  # fmt: skip
                names.append(generic)
        if len(set(names)) != len(names):
            self.consistent = False
        return names
