"""Static output shapes of ``op`` nodes (``keras.ops`` functions), without Keras.

Element-wise functions keep or broadcast shapes, reductions drop or keep
axes, and the layout functions move them; any other function of the
allowlist is "shape unknown". Operations have no weights.
"""

from __future__ import annotations

import math
from typing import Any

from .shapes import ShapeError, broadcast

Shape = tuple[int | None, ...]

UNARY = frozenset({
    "relu", "relu6", "sigmoid", "hard_sigmoid", "hard_silu", "hard_swish", "silu", "swish", "gelu", "elu",
    "selu", "leaky_relu", "softplus", "softsign", "tanh", "erf", "softmax", "log_softmax", "normalize",
    "abs", "square", "sqrt", "rsqrt", "exp", "log", "log1p", "sign", "round", "floor", "ceil", "negative",
    "reciprocal", "logical_not", "clip", "cast",
})  # fmt: skip
BINARY = frozenset({
    "add", "subtract", "multiply", "divide", "true_divide", "floor_divide", "mod", "power", "maximum",
    "minimum", "equal", "not_equal", "greater", "greater_equal", "less", "less_equal", "logical_and",
    "logical_or",
})  # fmt: skip
REDUCTIONS = frozenset({"mean", "sum", "max", "min", "prod", "var", "std", "logsumexp", "argmax", "argmin"})


def has_op_rule(name: str) -> bool:
    """Whether the output shape of ``keras.ops.NAME`` can be inferred."""
    return name in UNARY or name in BINARY or name in REDUCTIONS or name in _LAYOUT or name == "einsum"


def infer_op(name: str, inputs: Any, args: dict[str, Any], tensors: tuple[str, ...]) -> Shape:
    """The output shape of ``keras.ops.NAME``.

    Args:
        name: The function.
        inputs: The node's input shapes: one, a list (positional, in order), or parameter -> shape.
        args: The node's other (constant) arguments.
        tensors: The function's tensor parameters, in order (to name the positional inputs).

    Raises:
        ShapeError: The inputs cannot be combined (shapes that do not broadcast, an axis out of range).
        KeyError: No rule for ``name``.
    """
    if name == "einsum":  # its tensors are ``*operands``: every input, in order
        operands = inputs.get("operands", []) if isinstance(inputs, dict) else inputs
        return _einsum(
            name, str(args.get("subscripts", "")), operands if isinstance(operands, list) else [operands]
        )
    named = (
        dict(inputs)
        if isinstance(inputs, dict)
        else dict(zip(tensors, inputs if isinstance(inputs, list) else [inputs]))
    )
    for key, value in args.items():  # a constant operand: a number is a scalar, a list its own shape
        if key in tensors and key not in named:
            named[key] = _constant_shape(value)
    if name in UNARY:
        return named[tensors[0]]
    if name in BINARY:
        return broadcast(name, named[tensors[0]], named[tensors[1]])
    if name in REDUCTIONS:
        return _reduce(name, named[tensors[0]], args)
    return _LAYOUT[name](name, named, args)


def _constant_shape(value: Any) -> Shape:
    shape: list[int] = []
    while isinstance(value, list):
        shape.append(len(value))
        value = value[0] if value else None
    return tuple(shape)


def _axis(name: str, axis: int, rank: int, shape: Shape) -> int:
    if not -rank <= axis < rank:
        raise ShapeError(f"{name}: axis {axis} is out of range for shape {_fmt(shape)}", argument="axis")
    return axis % rank


def _reduce(name: str, x: Shape, args: dict[str, Any]) -> Shape:
    axis, keep = args.get("axis"), bool(args.get("keepdims", False))
    if axis is None:
        return (1,) * len(x) if keep else ()
    axes = {_axis(name, a, len(x), x) for a in (axis if isinstance(axis, list) else [axis])}
    return tuple((1 if keep else -1) if i in axes else d for i, d in enumerate(x) if keep or i not in axes)


def _reshape(name: str, named: dict[str, Any], args: dict[str, Any]) -> Shape:
    x, new = named["x"], list(args["newshape"])
    if new.count(-1) > 1:
        raise ShapeError(f"{name}: newshape {tuple(new)} has more than one -1", argument="newshape")
    known = [d for d in x if d is not None]
    if -1 in new and len(known) == len(x):
        rest = math.prod(d for d in new if d != -1)
        new[new.index(-1)] = math.prod(known) // rest if rest else 0
    elif -1 in new:
        new[new.index(-1)] = None
    elif len(known) == len(x) and math.prod(known) != math.prod(new):
        raise ShapeError(f"{name}: cannot reshape {_fmt(x)} to {tuple(new)}", argument="newshape")
    return tuple(new)


def _transpose(name: str, named: dict[str, Any], args: dict[str, Any]) -> Shape:
    x, axes = named["x"], args.get("axes")
    if axes is None:
        return tuple(reversed(x))
    if sorted(a % len(x) for a in axes) != list(range(len(x))):
        raise ShapeError(
            f"{name}: axes {tuple(axes)} are not a permutation of {len(x)} axes", argument="axes"
        )
    return tuple(x[a] for a in axes)


def _expand_dims(name: str, named: dict[str, Any], args: dict[str, Any]) -> Shape:
    x = list(named["x"])
    axis = _axis(name, args["axis"], len(x) + 1, tuple(x))
    return tuple(x[:axis] + [1] + x[axis:])


def _squeeze(name: str, named: dict[str, Any], args: dict[str, Any]) -> Shape:
    x, axis = named["x"], args.get("axis")
    if axis is None:
        return tuple(d for d in x if d != 1)
    axes = {_axis(name, a, len(x), x) for a in (axis if isinstance(axis, list) else [axis])}
    return tuple(d for i, d in enumerate(x) if i not in axes)


def _join(name: str, named: dict[str, Any], args: dict[str, Any]) -> Shape:
    shapes = named.get("xs") or named.get("x")
    if not isinstance(shapes, list) or not shapes:
        raise KeyError(name)
    first, axis = shapes[0], args.get("axis", 0)
    if name == "stack":
        out = list(first)
        out.insert(_axis(name, axis, len(first) + 1, first), len(shapes))
        return tuple(out)
    axis = _axis(name, axis, len(first), first)
    total: int | None = 0
    for shape in shapes:
        if len(shape) != len(first) or any(
            i != axis and a is not None and b is not None and a != b
            for i, (a, b) in enumerate(zip(shape, first))
        ):
            raise ShapeError(f"{name}: shapes {', '.join(map(_fmt, shapes))} differ off axis {axis}")
        total = None if total is None or shape[axis] is None else total + shape[axis]
    return tuple(total if i == axis else d for i, d in enumerate(first))


def _matmul(name: str, named: dict[str, Any], args: dict[str, Any]) -> Shape:
    a, b = named["x1"], named["x2"]
    if len(a) < 2 or len(b) < 2:
        raise KeyError(name)  # vectors: left to Keras
    if a[-1] is not None and b[-2] is not None and a[-1] != b[-2]:
        raise ShapeError(f"{name}: shapes {_fmt(a)} and {_fmt(b)} cannot be multiplied ({a[-1]} != {b[-2]})")
    batch = broadcast(name, a[:-2], b[:-2])
    return (*batch, a[-2], b[-1])


def _einsum(name: str, subscripts: str, operands: list[Shape]) -> Shape:
    """Explicit subscripts (``ij,jk->ik``): each letter one axis, equal letters equal sizes."""
    spec = subscripts.replace(" ", "")
    if "..." in spec or "->" not in spec:
        raise KeyError(name)  # broadcasting and implicit outputs are left to Keras
    given, result = spec.split("->")
    terms = given.split(",")
    if len(terms) != len(operands):
        raise ShapeError(
            f"{name}: the subscripts {subscripts!r} name {len(terms)} operand(s), got {len(operands)}",
            argument="subscripts",
        )
    sizes: dict[str, int | None] = {}
    for term, shape in zip(terms, operands):
        if len(term) != len(shape):
            raise ShapeError(
                f"{name}: the subscripts {term!r} have {len(term)} axes, the operand has shape {_fmt(shape)}",
                argument="subscripts",
            )
        for letter, size in zip(term, shape):
            known = sizes.get(letter)
            if known is not None and size is not None and known != size:
                raise ShapeError(
                    f"{name}: the axis {letter!r} has size {known} in one operand and {size} in another",
                    argument="subscripts",
                )
            sizes[letter] = size if known is None else known
    if any(letter not in sizes for letter in result):
        raise KeyError(name)
    return tuple(sizes[letter] for letter in result)


_LAYOUT = {
    "reshape": _reshape,
    "transpose": _transpose,
    "expand_dims": _expand_dims,
    "squeeze": _squeeze,
    "concatenate": _join,
    "stack": _join,
    "matmul": _matmul,
}


def _fmt(shape: Shape) -> str:
    return (
        "("
        + ", ".join("None" if d is None else str(d) for d in shape)
        + ("," if len(shape) == 1 else "")
        + ")"
    )
