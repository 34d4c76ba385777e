"""Dependency order and cycle detection: the one walk behind every "each after what it needs" in the package.

Layers in a graph (each after the nodes it is called on), entries in a block
body, the flat layers of an expansion, blocks that use blocks, and files that
import files are all ordered, and their cycles found, by :func:`depth_first`.
It is iterative, so a chain of any length costs no Python recursion, and it
asks for a node's needs once, when it first reaches the node, so a caller may
load them lazily (an imported file is read when the walk gets to it).

Pure standard library, at the bottom of the stages: any stage may use it.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from typing import TypeVar

T = TypeVar("T", bound=Hashable)

_ON_PATH, _DONE = 1, 2


def depth_first(
    starts: Iterable[T],
    needs: Callable[[T], Iterable[T]],
    *,
    on_cycle: Callable[[list[T]], None] | None = None,
    max_depth: int | None = None,
    on_too_deep: Callable[[list[T], T], None] | None = None,
) -> list[T]:
    """Every node reachable from ``starts``, each after the nodes it needs.

    Nodes are visited from ``starts`` in their order, and a node's needs in
    the order ``needs`` gives them, so the result follows the text where the
    text is already in order.

    Args:
        starts: Where to start, in order.
        needs: The nodes a node needs; called once per node, when the walk
            first reaches it.
        on_cycle: Called for each need that leads back to a node on the
            current path, with the cycle: that node, the nodes after it on the
            path, and that node again (so ``cycle[-2]`` needs ``cycle[-1]``).
            The need is then skipped: the result still holds every node.
        max_depth: The longest path followed (``starts`` are at depth 1); a
            need past it is not entered.
        on_too_deep: Called with the path and the need that would pass
            ``max_depth``.

    Returns:
        The nodes reached, each after what it needs (cycles aside).
    """
    state: dict[T, int] = {}
    ordered: list[T] = []
    for start in starts:
        if start in state:
            continue
        state[start] = _ON_PATH
        path = [start]
        place = {start: 0}  # node -> its index in path
        pending = [iter(needs(start))]
        while pending:
            nxt = next(pending[-1], _END)
            if nxt is _END:
                pending.pop()
                node = path.pop()
                del place[node]
                state[node] = _DONE
                ordered.append(node)
                continue
            seen = state.get(nxt)  # type: ignore[arg-type]
            if seen == _DONE:
                continue
            if seen == _ON_PATH:
                if on_cycle is not None:
                    on_cycle([*path[place[nxt] :], nxt])  # type: ignore[arg-type]
                continue
            if max_depth is not None and len(path) >= max_depth:
                if on_too_deep is not None:
                    on_too_deep(list(path), nxt)  # type: ignore[arg-type]
                continue
            state[nxt] = _ON_PATH  # type: ignore[index]
            place[nxt] = len(path)  # type: ignore[index]
            path.append(nxt)  # type: ignore[arg-type]
            pending.append(iter(needs(nxt)))  # type: ignore[arg-type]
    return ordered


_END = object()
