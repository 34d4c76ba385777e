"""The expansion's budget: steps counted as they are taken, and refused before the work where they can be foreseen.

A spec can ask for far more work than it shows: a block that uses another
twice, 24 levels deep, is 2**24 instances; a block whose entries are all left
out by ``if: false`` makes no layer, so counting layers never stops it. Each
entry gone through and each instance is a step (:data:`MAX_STEPS`). Before
an instance is expanded, the least number of steps it must take is worked
out from its block (the entries it always goes through, and the instances
they always make, with their literal repeat counts, or those its params give)
and an instance that could not fit is refused at once, located where it is
written. The count is a lower bound, so no spec within the limit is refused.
"""

from __future__ import annotations

from typing import Any

from ..errors import Origin
from ..spec import BlockSpec, LayerSpec
from .library import Libraries
from .scope import Scopes
from .state import MAX_STEPS, Library

_HINT = "check the repeat counts, and how many times each block uses another"


class Budget(Scopes, Libraries):
    """Steps counted, and foreseen per block."""

    def step(self, at: Origin) -> None:
        """Count one step; past :data:`MAX_STEPS` the expansion stops with one problem, here."""
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise self.limit(at, f"the expansion takes more than {MAX_STEPS:,} steps", _HINT)

    def foresee(self) -> None:
        """The least steps of one instance of each block, each worked out after the blocks it uses."""
        self.least: dict[tuple[int, str], int] = {}
        self.scoped: set[tuple[int, str]] = set()  # blocks whose repeat counts are expressions
        for lib, name in self.block_order:
            block = lib.spec.blocks[name]
            self.least[(id(lib), name)] = self.body_steps(block, lib, None)
            if any(isinstance(e.repeat, str) for e in _entries(block)):
                self.scoped.add((id(lib), name))

    def body_steps(self, block: BlockSpec, lib: Library, scope: dict[str, Any] | None) -> int:
        """The least steps one instance of ``block`` takes (repeat expressions read in ``scope``, if given)."""
        return min(MAX_STEPS + 1, sum(self.entry_steps(e, lib, scope) for e in _entries(block)))

    def entry_steps(self, entry: LayerSpec, lib: Library, scope: dict[str, Any] | None) -> int:
        """The least steps an entry takes: one, and the instances it always makes with their bodies."""
        name = entry.block
        if not isinstance(name, str) or "${" in name or entry.if_ not in (None, True):
            return 1  # a layer, a block named by an expression, or an instance that may be left out
        found = self.find_block(name, lib)
        if found is None:
            return 1
        inner = self.least.get((id(found[1]), name.rsplit(".", 1)[-1]), 0)
        count = self.least_count(entry, scope)
        return min(MAX_STEPS + 1, 1 + count * (1 + inner))

    def least_count(self, entry: LayerSpec, scope: dict[str, Any] | None) -> int:
        """An instance's repeat count when it is known without expanding: literal, or read in ``scope``; else 0."""
        count = entry.repeat
        if count is None:
            return 1
        if isinstance(count, str) and scope is not None:
            from .expr import ExprError, parse

            try:
                count = parse(count).render(scope)
            except ExprError:
                return 0  # reported where the instance is expanded
        return count if isinstance(count, int) and not isinstance(count, bool) and count > 0 else 0

    def afford(
        self, at: Origin, reps: int, name: str, block: BlockSpec, lib: Library, scope: dict[str, Any]
    ) -> None:
        """Refuse an instance (``reps`` repeats of ``block``) that could not fit in the steps left."""
        key = (id(lib), name.rsplit(".", 1)[-1])
        each = self.body_steps(block, lib, scope) if key in self.scoped else self.least.get(key, 0)
        need = reps * (1 + each)
        if self.steps + need > MAX_STEPS:
            times = f"{reps:,} repeats of " if reps != 1 else ""
            least = f"at least {need:,} steps" if each <= MAX_STEPS else f"over {MAX_STEPS:,} steps"
            taken = f"; {self.steps:,} are taken already" if self.steps > MAX_STEPS // 2 else ""
            raise self.limit(
                at,
                f"{times}block {name!r} would take {least}: an expansion may take {MAX_STEPS:,}{taken} "
                "(each entry and instance is one, left-out ones included)",
                _HINT,
            )


def _entries(block: BlockSpec) -> list[LayerSpec]:
    entries = block.layers.values() if isinstance(block.layers, dict) else block.layers
    return [e for e in entries if e is not None]
