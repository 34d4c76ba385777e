"""Keras's rule for names made from class names: ``BatchNormalization`` -> ``batch_normalization``.

The compiler names unnamed layers as Keras would; export reads an operation
class as its ``keras.ops`` function (``HardSilu`` -> ``hard_silu``) and
names entries after their type: one rule for both.
"""

from __future__ import annotations

import re


def snake_case(name: str) -> str:
    """``Conv2DTranspose`` -> ``conv2d_transpose``, as ``keras.src.utils.naming.to_snake_case``."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()
