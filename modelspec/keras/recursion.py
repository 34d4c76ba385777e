"""Running Keras on deep models: a worker thread with a larger stack and recursion limit.

Keras walks a functional graph recursively (building the model, its
configuration), one Python frame or more per layer, so a chain of about
1,000 layers hits Python's default recursion limit. :func:`run_deep` runs
such work in a worker thread whose stack and recursion limit grow with the
number of layers, and restores both afterwards. Shallow models run in the
calling thread, exactly as before: Keras keeps some state per thread (a
``tf.distribute`` scope the caller entered, name counters), which a worker
thread would not see.
"""

from __future__ import annotations

import contextvars
import sys
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

FRAMES_PER_LAYER = 8
"""Recursion limit granted per layer: Keras uses one or two frames a layer; the rest is margin."""
MARGIN = 2_000
"""Frames kept free besides those of the layers (the caller's own, Keras's and TensorFlow's)."""
STACK_BASE = 64 << 20
STACK_PER_LAYER = 16 << 10
MAX_STACK = 1 << 30
"""The worker's stack: 64 MiB plus 16 KiB a layer, at most 1 GiB (address space, mostly never touched)."""


def needs_thread(layers: int) -> bool:
    """Whether work on a model of ``layers`` layers could exceed the recursion limit in this thread."""
    return _depth() + 2 * layers + 300 > sys.getrecursionlimit()


def _depth() -> int:
    frame, depth = sys._getframe(), 0
    while frame is not None:
        frame, depth = frame.f_back, depth + 1
    return depth


def run_deep(work: Callable[[], T], layers: int) -> T:
    """``work()``, in a worker thread sized for ``layers`` layers when the calling thread's stack is too small.

    The worker runs in a copy of the caller's context (context variables such as
    :func:`modelspec.path_policy` reach it); its result is returned, or its
    exception re-raised, in the calling thread.
    """
    if not needs_thread(layers):
        return work()
    limit = max(sys.getrecursionlimit(), FRAMES_PER_LAYER * layers + MARGIN)
    stack = min(MAX_STACK, STACK_BASE + STACK_PER_LAYER * layers)
    context = contextvars.copy_context()
    outcome: dict[str, object] = {}

    def target() -> None:
        try:
            outcome["value"] = context.run(work)
        except BaseException as e:  # noqa: BLE001 - handed to the calling thread
            outcome["error"] = e

    before = sys.getrecursionlimit()
    sys.setrecursionlimit(limit)
    try:
        old_stack = threading.stack_size()
        try:
            threading.stack_size(stack)
            worker = threading.Thread(target=target, name="modelspec-deep", daemon=True)
            worker.start()
        finally:
            threading.stack_size(old_stack)
        worker.join()
    finally:
        sys.setrecursionlimit(before)
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]  # type: ignore[return-value]
