"""The expression language's functions: ``min max abs round floor ceil int float len make_divisible``."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from .values import Fault, checked, is_number, measure, number, show, type_name


def _min_max(pick: Callable, name: str) -> Callable:
    def impl(*args: Any) -> Any:
        items = args[0] if len(args) == 1 else list(args)
        if not isinstance(items, (list, str)):
            hint = f"write {name}(a, b) or {name}([a, b])"
            raise Fault("expr-type", f"{name}() of one argument needs a list, not {show(items)}", hint)
        if not items:
            raise Fault("expr-value", f"{name}() of an empty {type_name(items)}")
        if isinstance(items, list):
            measure(items)  # Python compares the items, recursively
        try:
            return pick(items)
        except TypeError:
            kinds = " and ".join(sorted({type_name(item) for item in items}))
            raise Fault("expr-type", f"{name}() cannot compare {kinds}") from None

    return impl


def _round(x: Any, ndigits: Any = None) -> Any:
    number(x, "round()")
    if ndigits is None:
        return checked(round(x))
    if not isinstance(ndigits, int):
        raise Fault("expr-type", f"round() needs an int number of digits, not {show(ndigits)}")
    # Past 400 digits either way every bounded number rounds alike, and to round an int
    # Python would build 10**-ndigits.
    return checked(round(x, max(-400, min(400, ndigits))))


def _convert(kind: type) -> Callable:
    """``int()`` or ``float()``: of a number (ints truncate) or of a string."""

    def impl(x: Any) -> Any:
        if isinstance(x, str):
            if kind is int and len(x.strip()) > 40:  # int() of thousands of digits is slow
                raise Fault("expr-limit", f"int() of {show(x)}: too many digits for an int")
            try:
                return checked(kind(x))
            except ValueError:
                raise Fault("expr-value", f"{kind.__name__}() cannot read {show(x)}") from None
        if not is_number(x):
            raise Fault("expr-type", f"{kind.__name__}() needs a number or a string, not {show(x)}")
        return checked(kind(x))

    return impl


def _len(x: Any) -> int:
    if not isinstance(x, (str, list, dict)):
        raise Fault("expr-type", f"len() needs a string or a list, not {show(x)}")
    return len(x)


def _make_divisible(v: Any, divisor: Any = 8, min_value: Any = None) -> int:
    """MobileNet's channel rounding: ``v`` to a multiple of ``divisor``, losing at most 10% of it."""
    number(v, "make_divisible()")
    number(divisor, "make_divisible()'s divisor")
    if min_value is not None:
        number(min_value, "make_divisible()'s min_value")
    if divisor <= 0:
        raise Fault("expr-value", f"make_divisible() needs a positive divisor, not {show(divisor)}")
    new_v = max(min_value or divisor, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return checked(int(new_v))


ANY = 1 << 30
FUNCTIONS: dict[str, tuple[Callable, int, int, tuple[str, ...]]] = {  # impl, arity, parameter names
    "min": (_min_max(min, "min"), 1, ANY, ()),
    "max": (_min_max(max, "max"), 1, ANY, ()),
    "abs": (lambda x: checked(abs(number(x, "abs()"))), 1, 1, ()),
    "round": (_round, 1, 2, ()),
    "floor": (lambda x: checked(math.floor(number(x, "floor()"))), 1, 1, ()),
    "ceil": (lambda x: checked(math.ceil(number(x, "ceil()"))), 1, 1, ()),
    "int": (_convert(int), 1, 1, ()),
    "float": (_convert(float), 1, 1, ()),
    "len": (_len, 1, 1, ()),
    "make_divisible": (_make_divisible, 1, 3, ("v", "divisor", "min_value")),
}
FUNCTION_LIST = "the functions are " + ", ".join(FUNCTIONS)
