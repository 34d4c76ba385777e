"""Keras's error messages as a problem quotes them: one line, clipped, without terminal styling."""

from __future__ import annotations

import re

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
"""Terminal styling Keras puts in some messages."""

MAX_MESSAGE = 400
"""The most characters of a message quoted (a traceback or a whole config can follow the first line)."""


def _one_line(error: BaseException) -> str:
    text = " ".join(_ANSI.sub("", str(error)).split())
    return text[: MAX_MESSAGE - 3] + "..." if len(text) > MAX_MESSAGE else text


def clipped(error: BaseException) -> str:
    """The error's message on one line, at most :data:`MAX_MESSAGE` characters; its class name when empty."""
    return _one_line(error) or type(error).__name__


def keras_message(error: BaseException) -> str:
    """Keras's message, first lines only, after the error's class: ``ValueError: ...``."""
    text = _one_line(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
