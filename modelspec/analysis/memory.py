"""The memory guard: refuse a model whose weights cannot fit, before Keras allocates them."""

from __future__ import annotations

import os

from ..errors import Problem
from ..graph import Graph
from .infer import Analysis


def format_bytes(n: int) -> str:
    """A size as people read it: ``1.2 MB``, ``372 GB`` (decimal units, as Keras's summary).

    Integer arithmetic throughout: a count too large for a float still prints.
    """
    if n < 1000:
        return f"{n} B"
    units = (("KB", 10**3), ("MB", 10**6), ("GB", 10**9), ("TB", 10**12))
    unit, scale = next(((u, s) for u, s in units if n < s * 1000), units[-1])
    tenths = (n * 10 + scale // 2) // scale
    return f"{tenths // 10}.{tenths % 10} {unit}"


def available_memory() -> int | None:
    """The memory this machine can give a new allocation now, in bytes (None when it cannot be told)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def memory_problems(
    graph: Graph,
    analysis: Analysis,
    *,
    max_params: int | None = None,
    available: int | None = None,
    factor: int = 1,
    share: float = 1.0,
) -> list[Problem]:
    """Refuse a model whose weights cannot fit, before Keras allocates them.

    Args:
        graph: The graph analysed.
        analysis: Its analysis.
        max_params: A limit on the parameter count (``--max-params``), or None.
        available: The memory available, in bytes (None: unknown, not checked).
        factor: How many copies of the weights the work needs (training keeps
            gradients and optimizer slots too).
        share: The part of the available memory the weights may take (a
            warning past a quarter, an error past all of it).

    Returns:
        One located error (at the largest layer) when the model is over a limit.
    """
    params, need = analysis.trainable + analysis.non_trainable, analysis.weight_bytes * factor
    if params == 0:
        return []
    reasons = []
    if max_params is not None and params > max_params:
        reasons.append(f"{params:,} parameters, over the limit of {max_params:,}")
    if available is not None and need > available * share:
        what = "its weights" if factor == 1 else f"its weights ({factor} copies for training)"
        part = "" if share == 1.0 else f"more than {share:.0%} of "
        reasons.append(
            f"{what} need {format_bytes(need)}, {part}the {format_bytes(available)} this machine has free"
        )
    if not reasons:
        return []
    largest = analysis.largest()
    name, _ = largest[0]
    listed = ", ".join(
        f"{graph.node(n).label} ({graph.node(n).type}, {info.params:,} parameters, {format_bytes(info.weight_bytes)})"
        for n, info in largest
        if info.params
    )
    return [
        graph.node(name).origin.problem(
            "too-large",
            f"the model is {'too large to build' if share == 1.0 else 'very large'}: {'; '.join(reasons)}",
            f"the largest layers: {listed}",
        )
    ]


def uncounted_problems(graph: Graph, analysis: Analysis) -> list[Problem]:
    """A warning naming the layers whose weights the guard could not count (their shapes are not known).

    Their weights are not in the totals the guard compares with the memory, so
    the guard says so rather than counting them as nothing.
    """
    if not graph.inputs:  # a stack without an input: Keras builds no weight until it is called
        return []
    uncounted = [
        name for name in analysis.unknown if graph.node(name).op is None and not graph.node(name).share
    ]
    if not uncounted:
        return []
    first = graph.node(uncounted[0])
    shown = ", ".join(graph.node(n).label for n in uncounted[:5]) + (", ..." if len(uncounted) > 5 else "")
    many = len(uncounted) != 1
    return [
        first.origin.problem(
            "shape-unknown",
            f"the memory guard could not count the weights of {len(uncounted)} layer{'s' * many} "
            f"whose output shape is not known ({shown}): "
            f"{analysis.nodes[uncounted[0]].reason}; the model may need more memory than it says",
            "give the inputs fixed shapes, or set --max-params to bound the model before it is built",
            severity="warning",
        )
    ]
