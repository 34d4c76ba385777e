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
from typing import Any

from ..errors import Problem
from ..source import Document, Source
from ..spec import ModelSpec, holds_expression, to_spec
from .bodies import Bodies
from .document import ExpandedDocument
from .ordering import in_order, prune
from .params import OverrideError, check_overrides
from .state import (
    BROKEN,
    MAX_IMPORT_DEPTH,
    MAX_NESTING,
    MAX_NODES,
    MAX_STEPS,
    Context,
    Failed,
    Library,
    Limit,
    Resolved,
)

__all__ = [
    "MAX_IMPORT_DEPTH",
    "MAX_NESTING",
    "MAX_NODES",
    "MAX_STEPS",
    "OverrideError",
    "expand",
    "merge_repeats",
    "needs_expansion",
]


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
    if params is not None or variant is not None:
        check_overrides(spec, params, variant)
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


class _Expander(Bodies):
    """One expansion of a spec: its libraries, then its parts, then its layers."""

    def run(self, overrides: dict[str, Any], variant: str | None) -> dict[str, Any] | None:
        spec = self.spec
        root = Library(spec, spec.source, self.main_scope(overrides, variant))
        self.imports(root)
        self.check_blocks(root)
        if self.problems:
            return None
        self.foresee()
        data = spec.to_data()
        ctx = Context(root, root.scope, listing=isinstance(spec.layers, list))
        flat: dict[str, Any] = {"modelspec": data["modelspec"]}
        for part in ("name", "description", "seed", "inputs", "compile", "train"):
            if part in data:
                with contextlib.suppress(Failed):  # recorded; the other parts are still expanded
                    flat[part] = self.value(data[part], root.scope, spec.at(part))
        if spec.layers is None:  # a block library: its blocks are checked where they are used
            return None if self.problems else flat
        env: dict[str, Resolved] = {name: name for name in spec.inputs}
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
                elif last is not None and last is not BROKEN:
                    flat["outputs"] = last
        except (Failed, Limit):  # recorded
            pass
        if isinstance(self.layers, dict) and not self.problems and flat.get("outputs") is not None:
            prune(self.layers, self.origins, flat["outputs"])  # type: ignore[arg-type]
        flat["layers"] = in_order(self.layers) if isinstance(self.layers, dict) else self.layers
        for k in ("outputs", "compile", "train"):  # the spec's order
            if k in flat:
                flat[k] = flat.pop(k)
        return None if self.problems else flat
