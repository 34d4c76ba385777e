"""What reading a Keras graph gives: bodies of entries whose references are positions.

A :class:`Body` is the model's graph, or a nested model's (a block); its
:class:`Item` entries refer to what they are called on by :class:`Ref`
(positions, not names): names are given once every body is known.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Ref:
    """What an entry is called on: input ``source`` of its body (``item`` None) or output ``index`` of item ``item``."""

    item: int | None
    source: int = 0
    index: int | str | None = None  # a position, or the key of a dict output


@dataclass
class Item:
    """One entry of a body.

    Attributes:
        kind: ``layer``, ``op``, ``share`` (calls item ``share``'s layer) or ``instance`` (of ``body``).
        name: The Keras name of the layer, operation or nested model.
        type: The layer type or the op's function name.
        args: Constructor arguments, the op's keyword arguments, or (for an
            instance) nothing until the blocks are made.
        inputs: A structure of :class:`Ref` (None: the entry above, in a chain).
        call: Constant call arguments.
    """

    kind: str
    name: str
    type: str | None = None
    args: dict[str, Any] = field(default_factory=dict)
    inputs: Any = None
    call: dict[str, Any] = field(default_factory=dict)
    share: int | None = None
    body: Body | None = None
    outputs: int = 1


@dataclass
class Body:
    """A graph read from Keras: the model's, or a nested model's (a block)."""

    name: str
    inputs: list[str]
    items: list[Item]
    outputs: Any = None
    chain: bool = False
    input_specs: dict[str, dict[str, Any]] = field(default_factory=dict)


def ref_data(value: Any) -> Any:
    """A structure of references as plain data (to compare bodies by structure)."""
    if isinstance(value, Ref):
        return [value.item, value.source, value.index]
    if isinstance(value, dict):
        return {k: ref_data(v) for k, v in value.items()}
    if isinstance(value, list):
        return [ref_data(v) for v in value]
    return value


class Placeholder:
    """A reference standing where a tensor was, when a Sequential model is written into a graph."""

    def __init__(self, ref: Any):
        self.ref = ref


def is_tensor(value: Any) -> bool:
    """Whether ``value`` is a symbolic Keras tensor (or stands for one)."""
    return hasattr(value, "_keras_history") or isinstance(value, Placeholder)


def tensors_in(value: Any) -> list[Any]:
    """The tensors anywhere in a structure of call arguments."""
    if is_tensor(value):
        return [value]
    if isinstance(value, dict):
        return [t for v in value.values() for t in tensors_in(v)]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in tensors_in(v)]
    return []


def is_mask_of(value: Any, tensor: Any) -> bool:
    """Whether ``value`` is the mask Keras attached to ``tensor`` (and passes again by itself)."""
    if not is_tensor(value):
        return False
    attached = getattr(tensor, "_keras_mask", None)
    return attached is not None and attached is value
