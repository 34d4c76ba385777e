"""Ctrl-C that is never lost during training.

Python raises ``KeyboardInterrupt`` wherever the main thread is when SIGINT
arrives. When that is inside a finalizer or a weakref callback (a training run
goes through many), Python prints "Exception ignored" and drops it, and the
run carries on as if nothing had been pressed. While :func:`remembered` is
active, the interrupt is also remembered: :func:`check` raises it again, and
the Keras callback of :func:`callback` calls it before every batch, so a
swallowed Ctrl-C still stops the fit at the next batch.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any

_pending = False
_depth = 0


def handler(signum: int, frame: Any) -> None:
    """A signal handler that remembers the interrupt, then raises ``KeyboardInterrupt`` as Python's does."""
    global _pending
    _pending = True
    raise KeyboardInterrupt


def check() -> None:
    """Raise ``KeyboardInterrupt`` when an interrupt arrived that was not acted on."""
    if _pending:
        raise KeyboardInterrupt


@contextlib.contextmanager
def remembered() -> Iterator[None]:
    """Remember Ctrl-C while the block runs (outermost use only; nested uses share it).

    Python's own SIGINT handler is replaced for the block and put back after it.
    A handler the program installed itself, or one outside the main thread
    (where signals cannot be handled), is left as it is.
    """
    global _pending, _depth
    if _depth or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    if previous is not signal.default_int_handler:
        yield
        return
    _depth += 1
    signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        _depth -= 1
        _pending = False


def callback(keras: Any) -> Any:
    """A Keras callback that raises a remembered interrupt before each batch of fit, evaluate and predict.

    It uses the ``*_batch_begin`` hooks: Keras runs those in order on the main
    thread, and overriding them leaves its asynchronous dispatch of the
    ``*_batch_end`` hooks on.
    """

    class Interrupted(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
            check()

        def on_test_batch_begin(self, batch: int, logs: dict | None = None) -> None:
            check()

        def on_predict_batch_begin(self, batch: int, logs: dict | None = None) -> None:
            check()

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            check()

    return Interrupted()
