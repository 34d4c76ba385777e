"""Shape rules of the merging layers: element-wise merges, Concatenate and Dot."""

from __future__ import annotations

from .shape_utils import Inferred, Layer, Shape, fmt_shapes, rule


@rule("Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum")
def _elementwise(layer: Layer) -> Inferred:
    shapes = layer.several()
    if not shapes or (layer.cls == "Subtract" and len(shapes) != 2):
        raise layer.error(
            f" expects {'2 inputs' if layer.cls == 'Subtract' else 'a list of inputs'}, got {len(shapes)}"
        )
    batches = {s[0] for s in shapes if s} - {None}
    if len(batches) > 1:
        raise layer.error(f": inputs have different batch sizes: {fmt_shapes(shapes)}")
    # Keras's merge layers broadcast the non-batch axes, right-aligned.
    out: Shape = shapes[0][1:]
    for shape in shapes[1:]:
        out = _broadcast(layer, out, shape[1:], shapes)
    return Inferred((batches.pop() if batches else None, *out))


def _broadcast(layer: Layer, a: Shape, b: Shape, shapes: list[Shape]) -> Shape:
    if len(a) < len(b):
        a, b = b, a
    if not b:
        return a
    out = list(a[: len(a) - len(b)])
    for i, j in zip(a[len(a) - len(b) :], b):
        if i is None or j is None:
            out.append(None)
        elif i == 1 or j == 1 or i == j:
            out.append(j if i == 1 else i)
        else:
            raise layer.error(
                f": inputs have shapes {fmt_shapes(shapes)}",
                "inputs must have equal shapes (or broadcast); project them to one size with a Dense "
                "layer, or use Concatenate to stack them",
            )
    return tuple(out)


@rule("Concatenate")
def _concatenate(layer: Layer) -> Inferred:
    shapes = layer.several()
    if not shapes:
        raise layer.error(" expects a list of at least 1 input, got 0")
    ranks = {len(s) for s in shapes}
    axis = layer["axis"]
    hint = f"all inputs must match on every axis except the concatenation axis ({axis})"
    if len(ranks) > 1:
        raise layer.error(f": inputs have different ranks: {fmt_shapes(shapes)}", hint)
    rank = ranks.pop()
    if not -rank <= axis < rank:
        raise layer.error(f": axis {axis} is out of range for inputs {fmt_shapes(shapes)}", argument="axis")
    axis %= rank
    for i in range(rank):
        known = {s[i] for s in shapes} - {None}
        if i != axis and len(known) > 1:
            raise layer.error(f": inputs have shapes {fmt_shapes(shapes)}, which differ on axis {i}", hint)
    # Like Keras, the other axes come from the first input.
    out = list(shapes[0])
    lengths = [s[axis] for s in shapes]
    out[axis] = None if None in lengths else sum(lengths)  # type: ignore[arg-type]
    return Inferred(tuple(out))


@rule("Dot")
def _dot(layer: Layer) -> Inferred:
    shapes = layer.several()
    if len(shapes) != 2:
        raise layer.error(f" expects 2 inputs, got {len(shapes)}")
    a, b = shapes
    axes = layer["axes"]
    axes = [axes, axes] if isinstance(axes, int) else list(axes)
    if any(not -len(s) <= ax < len(s) for ax, s in zip(axes, shapes)):
        raise layer.error(f": axes {axes} are out of range for inputs {fmt_shapes(shapes)}", argument="axes")
    axes = [ax % len(s) for ax, s in zip(axes, shapes)]
    if a[axes[0]] != b[axes[1]]:  # Keras compares as written: a free axis against a fixed one fails
        raise layer.error(
            f": inputs have shapes {fmt_shapes(shapes)}, whose axes {axes[0]} and {axes[1]} differ",
            argument="axes",
        )
    out = [d for i, d in enumerate(a) if i != axes[0]] + [d for i, d in enumerate(b) if i not in (0, axes[1])]
    if len(out) == 1:
        out.append(1)
    return Inferred(tuple(out))
