"""Static output shapes of ``op`` nodes (``keras.ops`` functions), without Keras.

Element-wise functions keep or broadcast shapes, reductions drop or keep
axes, the layout functions move them and the products contract them: every
function of the allowlist has a rule. ``split``, ``top_k`` and ``unstack``
have several outputs (a list of shapes, picked by ``name[i]``). A case a rule cannot decide from the spec
(``where`` with only a condition: its shape depends on the data) or that
Keras's own rule would get wrong raises :class:`NotInferable`: "shape unknown". Operations have no
weights.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

from ... import catalog
from .indexing import get_item
from .shape_utils import NotInferable, ShapeError, broadcast, fmt

Shape = tuple[int | None, ...]

UNARY = frozenset({
    "relu", "relu6", "sigmoid", "hard_sigmoid", "hard_silu", "hard_swish", "silu", "swish", "gelu", "elu",
    "selu", "leaky_relu", "softplus", "softsign", "tanh", "erf", "softmax", "log_softmax", "normalize",
    "abs", "square", "sqrt", "rsqrt", "exp", "log", "log1p", "sign", "round", "floor", "ceil", "negative",
    "reciprocal", "logical_not", "clip", "cast", "sin", "cos", "tan", "arcsin", "arccos", "arctan", "sinh",
    "cosh", "expm1", "log2", "log10", "log_sigmoid", "sparse_plus", "hard_tanh", "celu", "squareplus",
    "isnan", "isfinite", "zeros_like", "ones_like", "stop_gradient", "sort", "argsort", "tril", "triu",
})  # fmt: skip
BINARY = frozenset({
    "add", "subtract", "multiply", "divide", "true_divide", "floor_divide", "mod", "power", "maximum",
    "minimum", "equal", "not_equal", "greater", "greater_equal", "less", "less_equal", "logical_and",
    "logical_or", "logical_xor", "arctan2",
})  # fmt: skip
REDUCTIONS = frozenset({
    "mean", "sum", "max", "min", "prod", "var", "std", "logsumexp", "argmax", "argmin", "any", "all",
})  # fmt: skip


def has_op_rule(name: str) -> bool:
    """Whether the output shape of ``keras.ops.NAME`` can be inferred."""
    return name in UNARY or name in BINARY or name in REDUCTIONS or name in _LAYOUT or name == "einsum"


def infer_op(name: str, inputs: dict[str, Any], args: dict[str, Any]) -> Shape | list[Shape]:
    """The output shape of ``keras.ops.NAME`` (a list of shapes for ``split``, ``top_k`` and ``unstack``, one per output).

    Args:
        name: The function, from the catalog's allowlist.
        inputs: Parameter -> input shape(s), as :meth:`modelspec.catalog.OpInfo.bind` maps a node's inputs.
        args: The node's other (constant) arguments.

    Raises:
        ShapeError: The inputs cannot be combined (shapes that do not broadcast, an axis out of range).
        NotInferable: A case its rule leaves unknown (the spec does not decide it).
    """
    info = catalog.op(name)
    if info is None:
        raise NotInferable(f"keras.ops.{name} is not in the allowlist")
    if name == "einsum":  # its tensors are ``*operands``: every input, in order
        operands = inputs.get("operands", [])
        return _einsum(
            name, str(args.get("subscripts", "")), operands if isinstance(operands, list) else [operands]
        )
    tensors = info.tensors
    named = dict(inputs)
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
        raise ShapeError(f"{name}: axis {axis} is out of range for shape {fmt(shape)}", argument="axis")
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
        raise ShapeError(f"{name}: cannot reshape {fmt(x)} to {tuple(new)}", argument="newshape")
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
    wide = sorted(a for a in axes if x[a] != 1)  # Keras refuses a free axis too: its size may not be 1
    if wide:
        raise ShapeError(
            f"{name}: axis {wide[0]} of shape {fmt(x)} has size {x[wide[0]]}, not 1: only an axis of size 1 can be squeezed",
            "squeeze an axis of size 1, or reshape instead",
            argument="axis",
        )
    return tuple(d for i, d in enumerate(x) if i not in axes)


def _join(name: str, named: dict[str, Any], args: dict[str, Any]) -> Shape:
    shapes = named.get("xs") or named.get("x")
    if not isinstance(shapes, list) or not shapes:
        raise NotInferable(name)
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
            raise ShapeError(f"{name}: shapes {', '.join(map(fmt, shapes))} differ off axis {axis}")
        total = None if total is None or shape[axis] is None else total + shape[axis]
    return tuple(total if i == axis else d for i, d in enumerate(first))


def _matmul(name: str, named: dict[str, Any], args: dict[str, Any]) -> Shape:
    a, b = named["x1"], named["x2"]
    if len(a) < 2 or len(b) < 2:
        raise NotInferable(name)  # vectors: left to Keras
    if a[-1] is not None and b[-2] is not None and a[-1] != b[-2]:
        raise ShapeError(f"{name}: shapes {fmt(a)} and {fmt(b)} cannot be multiplied ({a[-1]} != {b[-2]})")
    batch = broadcast(name, a[:-2], b[:-2])
    return (*batch, a[-2], b[-1])


def _einsum(name: str, subscripts: str, operands: list[Shape]) -> Shape:
    """Explicit subscripts (``ij,jk->ik``): each letter one axis, equal letters equal sizes."""
    spec = subscripts.replace(" ", "")
    if "..." in spec or "->" not in spec:
        raise NotInferable(name)  # broadcasting and implicit outputs are left to Keras
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
                f"{name}: the subscripts {term!r} have {len(term)} axes, the operand has shape {fmt(shape)}",
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
        raise NotInferable(name)
    return tuple(sizes[letter] for letter in result)


def _where(name: str, named: dict[str, Any], args: dict[str, Any]) -> Shape:
    if "x1" not in named or "x2" not in named:  # the condition alone: its indices, as many as the data holds
        raise NotInferable(f"{name} with only a condition: its shape depends on the data")
    condition, x1, x2 = named["condition"], named["x1"], named["x2"]
    try:
        return broadcast(name, broadcast(name, condition, x1), x2)
    except ShapeError as e:
        raise ShapeError(
            f"{name}: the condition {fmt(condition)}, x1 {fmt(x1)} and x2 {fmt(x2)} do not broadcast",
            e.hint,
        ) from None


def _split(name: str, named: dict[str, Any], args: dict[str, Any]) -> list[Shape]:
    x, sections = named["x"], args["indices_or_sections"]
    axis = _axis(name, args.get("axis", 0), len(x), x)
    size = x[axis]
    if _is_int(sections):  # that many equal parts
        if sections <= 0:
            raise NotInferable(name)
        if size is not None and size % sections:
            raise ShapeError(
                f"{name}: axis {axis} of shape {fmt(x)} has size {size}, not divisible into {sections} equal parts",
                "give the indices where the parts start instead",
                argument="indices_or_sections",
            )
        sizes: list[int | None] = [None if size is None else size // sections] * sections
    else:  # the parts start at these indices
        indices = _ints(name, sections)
        if (
            any(i < 0 for i in indices)
            or indices != sorted(indices)
            or (size is not None and indices and indices[-1] > size)
        ):
            raise NotInferable(name)  # negative, unsorted or past the end: numpy clips, Keras's rule does not
        bounds: list[int | None] = [0, *indices, size]
        sizes = [None if b is None else b - a for a, b in itertools.pairwise(bounds)]  # type: ignore[operator]
    return [tuple(s if i == axis else d for i, d in enumerate(x)) for s in sizes]


def _tile(name: str, named: dict[str, Any], args: dict[str, Any]) -> Shape:
    x, repeats = list(named["x"]), args["repeats"]
    reps = _int_or_ints(name, repeats)
    if any(r < 0 for r in reps):
        raise NotInferable(name)
    rank = max(len(x), len(reps))
    x, reps = [1] * (rank - len(x)) + x, [1] * (rank - len(reps)) + reps
    return tuple(None if d is None else d * r for d, r in zip(x, reps))


def _repeat(name: str, named: dict[str, Any], args: dict[str, Any]) -> Shape:
    x, repeats, axis = named["x"], args["repeats"], args.get("axis")
    reps = _int_or_ints(name, repeats)
    if any(r < 0 for r in reps):
        raise NotInferable(name)
    if axis is None:  # the flattened tensor
        size = _flat_size(x)
        if size is None:
            return (None,)
        if len(reps) == 1:
            return (size * reps[0],)
        if len(reps) != size:
            raise ShapeError(
                f"{name}: {len(reps)} repeats for the {size} elements of shape {fmt(x)} flattened",
                "give one repeat count, or one per element",
                argument="repeats",
            )
        return (sum(reps),)
    axis = _axis(name, axis, len(x), x)
    size = x[axis]
    if size is None:
        return x
    if len(reps) == 1:
        total = size * reps[0]
    elif len(reps) != size:
        raise ShapeError(
            f"{name}: {len(reps)} repeats for axis {axis} of shape {fmt(x)}, which has size {size}",
            "give one repeat count, or one per element of the axis",
            argument="repeats",
        )
    else:
        total = sum(reps)
    return tuple(total if i == axis else d for i, d in enumerate(x))


def _pad(name: str, named: dict[str, Any], args: dict[str, Any]) -> Shape:
    x, width = named["x"], args["pad_width"]
    if _is_int(width):  # the same before and after every axis
        pairs = [(width, width)]
    elif isinstance(width, (list, tuple)) and width and all(_is_int(w) for w in width):
        if len(width) != 2:
            raise NotInferable(name)  # Keras reads (before, after): other lengths are left to Keras
        pairs = [(width[0], width[1])]
    elif (
        isinstance(width, (list, tuple))
        and width
        and all(isinstance(w, (list, tuple)) and len(w) in (1, 2) for w in width)
    ):
        if len({len(w) for w in width}) != 1:
            raise NotInferable(name)
        pairs = [(w[0], w[-1]) for w in width]
    else:
        raise NotInferable(name)
    if not all(_is_int(p) and p >= 0 for pair in pairs for p in pair):
        raise NotInferable(name)
    if len(pairs) == 1:
        pairs *= len(x)
    elif len(pairs) != len(x):
        raise ShapeError(
            f"{name}: pad_width has {len(pairs)} (before, after) pairs, shape {fmt(x)} has {len(x)} axes",
            "give one pair for every axis (the batch axis included), or one pair for all",
            argument="pad_width",
        )
    return tuple(None if d is None else d + a + b for d, (a, b) in zip(x, pairs))


def _same_shape(name: str, named: dict[str, Any], args: dict[str, Any]) -> Shape:
    """``flip`` and ``roll``: the shape is kept, the axes must exist."""
    x, axis = named["x"], args.get("axis")
    for a in [] if axis is None else axis if isinstance(axis, list) else [axis]:
        _axis(name, a, len(x), x)
    return x


def _swapaxes(name: str, named: dict[str, Any], args: dict[str, Any]) -> Shape:
    x = list(named["x"])
    a = _axis(name, args["axis1"], len(x), tuple(x))
    b = _axis(name, args["axis2"], len(x), tuple(x))
    x[a], x[b] = x[b], x[a]
    return tuple(x)


def _moveaxis(name: str, named: dict[str, Any], args: dict[str, Any]) -> Shape:
    x, source, destination = named["x"], args["source"], args["destination"]
    sources, destinations = _int_or_ints(name, source), _int_or_ints(name, destination)
    if len(sources) != len(destinations):
        raise ShapeError(
            f"{name}: {len(sources)} source axes and {len(destinations)} destination axes",
            argument="destination",
        )
    sources = [_axis(name, a, len(x), x) for a in sources]
    destinations = [_axis(name, a, len(x), x) for a in destinations]
    for axes, what in ((sources, "source"), (destinations, "destination")):
        if len(set(axes)) != len(axes):
            raise ShapeError(f"{name}: the {what} axes {tuple(axes)} repeat an axis", argument=what)
    order = [i for i in range(len(x)) if i not in sources]
    for dest, src in sorted(zip(destinations, sources)):
        order.insert(dest, src)
    return tuple(x[i] for i in order)


def _broadcast_to(name: str, named: dict[str, Any], args: dict[str, Any]) -> Shape:
    x, target = named["x"], args["shape"]
    if not isinstance(target, list) or not all(d is None or (_is_int(d) and d >= 0) for d in target):
        raise NotInferable(name)
    target = tuple(target)
    # One way only: each axis of x is 1 (or free) or already the target's size.
    if len(x) > len(target) or any(
        d is not None and t is not None and d not in (1, t) for d, t in zip(x[::-1], target[::-1])
    ):
        raise ShapeError(
            f"{name}: shape {fmt(x)} cannot be broadcast to {fmt(target)}",
            "each axis must be 1 or the target's size; missing axes are added in front",
            argument="shape",
        )
    return target


def _take(name: str, named: dict[str, Any], args: dict[str, Any]) -> Shape:
    x, axis = named["x"], args.get("axis")
    indices = _array_shape(name, args["indices"])
    if axis is None:  # from the flattened tensor
        return indices
    axis = _axis(name, axis, len(x), x)
    return (*x[:axis], *indices, *x[axis + 1 :])


def _dot(name: str, named: dict[str, Any], args: dict[str, Any]) -> Shape:
    a, b = named["x1"], named["x2"]
    if not a or not b:  # a scalar: multiply
        return broadcast(name, a, b)
    if len(b) == 1:  # contract the last axes of both
        if len(a) > 1 and (a[-1] is None) != (b[0] is None):
            raise NotInferable(name)  # Keras's rule refuses a free axis against a known one
        if a[-1] is not None and b[0] is not None and a[-1] != b[0]:
            raise ShapeError(
                f"{name}: shapes {fmt(a)} and {fmt(b)} cannot be multiplied ({a[-1]} != {b[0]})",
                "the last axes of x1 and x2 must have the same size",
            )
        return a[:-1]
    if a[-1] is not None and b[-2] is not None and a[-1] != b[-2]:
        raise ShapeError(
            f"{name}: shapes {fmt(a)} and {fmt(b)} cannot be multiplied ({a[-1]} != {b[-2]})",
            "the last axis of x1 and the second-to-last of x2 must have the same size",
        )
    return (*a[:-1], *b[:-2], b[-1])


def _tensordot(name: str, named: dict[str, Any], args: dict[str, Any]) -> Shape:
    a, b, axes = named["x1"], named["x2"], args.get("axes", 2)
    if _is_int(axes):  # the last ``axes`` axes of x1 against the first of x2
        if axes < 0:
            raise NotInferable(name)
        if axes > min(len(a), len(b)):
            raise ShapeError(
                f"{name}: axes={axes} contracts more axes than shapes {fmt(a)} and {fmt(b)} have",
                argument="axes",
            )
        first, second = list(range(len(a) - axes, len(a))), list(range(axes))
    elif (
        isinstance(axes, list)
        and len(axes) == 2
        and all(isinstance(side, list) and all(_is_int(i) for i in side) for side in axes)
    ):
        first = [_axis(name, i, len(a), a) for i in axes[0]]
        second = [_axis(name, i, len(b), b) for i in axes[1]]
        if len(set(first)) != len(first) or len(set(second)) != len(second):
            raise NotInferable(name)
        if len(first) != len(second):
            raise ShapeError(
                f"{name}: axes name {len(first)} axes of x1 and {len(second)} of x2", argument="axes"
            )
    else:
        raise NotInferable(name)  # a pair of ints: Keras's rule does not read it
    for i, j in zip(first, second):
        if a[i] is not None and b[j] is not None and a[i] != b[j]:
            raise ShapeError(
                f"{name}: axis {i} of x1 {fmt(a)} has size {a[i]}, axis {j} of x2 {fmt(b)} has size {b[j]}",
                "the contracted axes must have equal sizes",
                argument="axes",
            )
    return (
        *(d for i, d in enumerate(a) if i not in first),
        *(d for j, d in enumerate(b) if j not in second),
    )


def _outer(name: str, named: dict[str, Any], args: dict[str, Any]) -> Shape:
    return (_flat_size(named["x1"]), _flat_size(named["x2"]))  # both operands are flattened


def _flat_size(shape: Shape) -> int | None:
    """How many elements a tensor of ``shape`` has (its flattened size), None when an axis is free."""
    return None if None in shape else math.prod(shape)  # type: ignore[arg-type]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _int_or_ints(name: str, value: Any) -> list[int]:
    """An argument given as one int or a list of ints, as a list (else the case is left unknown)."""
    return [value] if _is_int(value) else _ints(name, value)


def _ints(name: str, value: Any) -> list[int]:
    if not isinstance(value, list) or not all(_is_int(v) for v in value):
        raise NotInferable(name)
    return list(value)


def _array_shape(name: str, value: Any) -> Shape:
    """The shape of a constant (nested lists of numbers), as ``np.array`` gives it; ragged: unknown."""
    if not isinstance(value, list):
        return ()
    inner = {_array_shape(name, v) for v in value}
    if len(inner) > 1:
        raise NotInferable(name)
    return (len(value), *(inner.pop() if inner else ()))


def _cumulative(name: str, named: dict[str, Any], args: dict[str, Any]) -> Shape:
    x, axis = named["x"], args.get("axis")
    if axis is None:  # over the flattened tensor
        return (_flat_size(x),)
    _axis(name, axis, len(x), x)
    return x


def _one_hot(name: str, named: dict[str, Any], args: dict[str, Any]) -> Shape:
    x, classes, axis = named["x"], args["num_classes"], args.get("axis", -1)
    if not _is_int(classes) or not _is_int(axis):
        raise NotInferable(name)
    at = _axis(name, axis, len(x) + 1, (*x, classes))  # the new axis, counted in the output
    return (*x[:at], classes, *x[at:])


def _top_k(name: str, named: dict[str, Any], args: dict[str, Any]) -> list[Shape]:
    x, k = named["x"], args["k"]
    if not x or not _is_int(k):
        raise NotInferable(name)
    if x[-1] is not None and not 0 <= k <= x[-1]:
        raise ShapeError(f"{name}: k={k} of the last axis of {fmt(x)}, which has {x[-1]}", argument="k")
    values = (*x[:-1], k)
    return [values, values]  # the values and their indices


def _glu(name: str, named: dict[str, Any], args: dict[str, Any]) -> Shape:
    x = named["x"]
    axis = _axis(name, args.get("axis", -1), len(x), x)
    size = x[axis]
    if size is not None and size % 2:
        raise ShapeError(
            f"{name}: axis {axis} of {fmt(x)} has odd size {size}: it is split into two halves",
            argument="axis",
        )
    return tuple((None if d is None else d // 2) if i == axis else d for i, d in enumerate(x))


def _unstack(name: str, named: dict[str, Any], args: dict[str, Any]) -> list[Shape]:
    x = named["x"]
    axis = _axis(name, args.get("axis", 0), len(x), x)
    count = x[axis] if args.get("num") is None else args["num"]
    if not _is_int(count):
        raise NotInferable(name)  # a free axis: how many outputs is known only when it runs
    if x[axis] is not None and count != x[axis]:
        raise ShapeError(f"{name}: num={count}, but axis {axis} of {fmt(x)} has {x[axis]}", argument="num")
    return [x[:axis] + x[axis + 1 :]] * count


_LAYOUT = {
    "get_item": get_item,
    "cumsum": _cumulative,
    "cumprod": _cumulative,
    "one_hot": _one_hot,
    "top_k": _top_k,
    "glu": _glu,
    "unstack": _unstack,
    "reshape": _reshape,
    "transpose": _transpose,
    "expand_dims": _expand_dims,
    "squeeze": _squeeze,
    "concatenate": _join,
    "stack": _join,
    "matmul": _matmul,
    "where": _where,
    "split": _split,
    "tile": _tile,
    "repeat": _repeat,
    "pad": _pad,
    "flip": _same_shape,
    "roll": _same_shape,
    "swapaxes": _swapaxes,
    "moveaxis": _moveaxis,
    "broadcast_to": _broadcast_to,
    "take": _take,
    "dot": _dot,
    "tensordot": _tensordot,
    "outer": _outer,
}
