"""The expression language's values: the operators, each checking sizes before the work is done."""

from __future__ import annotations

import difflib
import json
import math
import operator
from typing import Any, NamedTuple

from .tokens import MAX_DEPTH, MAX_INT, MAX_ITEMS, MAX_STR


class Fault(Exception):
    """A fault found by a value operation, which knows no position: the evaluator adds it."""

    def __init__(self, code: str, message: str, hint: str | None = None):
        super().__init__(code, message, hint)
        self.code, self.message, self.hint = code, message, hint


def did_you_mean(name: str, candidates: Any) -> str | None:
    match = difflib.get_close_matches(name, list(candidates), n=1)
    return f"did you mean '{match[0]}'?" if match else None


_TYPE_NAMES = {bool: "bool", int: "int", float: "float", str: "string", type(None): "null", list: "list"}
_TYPE_NAMES[dict] = "mapping"


def type_name(value: Any) -> str:
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def show(value: Any) -> str:
    """A short description of a value for a message, bounded however large the value."""
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, (list, dict)):
        return f"a {type_name(value)} of {len(value)} item{'' if len(value) == 1 else 's'}"
    if isinstance(value, int) and value.bit_length() > 64:
        return f"an int of about {int(value.bit_length() * 0.30103):,} digits"
    text = repr(value)
    return f"{type_name(value)} {text if len(text) <= 40 else text[:36] + '...'}"


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float))  # bools included, as in Python


def number(value: Any, where: str) -> Any:
    if not is_number(value):
        raise Fault("expr-type", f"{where} needs a number, not {show(value)}")
    return value


def checked(value: Any) -> Any:
    """``value``, if it is a number within the limits (or no number)."""
    if isinstance(value, int) and abs(value) > MAX_INT:
        raise Fault("expr-limit", f"the result, {show(value)}, is beyond the int limit 2**63")
    if isinstance(value, float) and not math.isfinite(value):
        code = "expr-value" if math.isnan(value) else "expr-limit"
        raise Fault(code, f"the result, {value}, is not a finite number")
    return value


def measure(value: Any, budget: int = MAX_ITEMS) -> int:
    """How many items a list (or mapping) holds, nested ones included, refusing past ``budget``.

    Iterative and stopping at the budget, so a huge, deep or self-referencing
    list from the scope costs at most ``budget`` steps; the depth bound keeps
    Python's own (recursive) comparisons safe.
    """
    count, stack = 0, [(value, 0)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item
        count += len(children)
        if depth >= MAX_DEPTH:
            raise Fault("expr-limit", f"a list nested over {MAX_DEPTH} levels deep")
        if count > budget:
            raise Fault("expr-limit", f"a list of over {MAX_ITEMS:,} items (nested items count too)")
        stack.extend((child, depth + 1) for child in children if isinstance(child, (list, dict)))
    return count


def new_list(items: list) -> list:
    budget = MAX_ITEMS - len(items)
    if budget < 0:
        raise Fault("expr-limit", f"a list of over {MAX_ITEMS:,} items")
    for item in items:  # one budget across all items: never more than MAX_ITEMS steps in all
        if isinstance(item, (list, dict)):
            budget -= measure(item, budget)
    return items


_ARITHMETIC = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv}
_ARITHMETIC |= {"//": operator.floordiv, "%": operator.mod, "**": operator.pow}
_COMPARISONS = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le}
_COMPARISONS |= {">": operator.gt, ">=": operator.ge}


def _huge_power(base: Any, exponent: Any) -> bool:
    """Whether an int power passes 2**63, judged before computing it.

    floor(log2|base|) * exponent is at most log2|base ** exponent| (and at most 0
    when |base| <= 1 or exponent <= 0, which never overflow).
    """
    return (
        isinstance(base, int) and isinstance(exponent, int) and (abs(base).bit_length() - 1) * exponent > 63
    )


def binary(op: str, left: Any, right: Any) -> Any:
    """``left op right`` for an arithmetic operator, with sizes checked before the work is done."""
    numbers = is_number(left) and is_number(right)
    mismatch = Fault("expr-type", f"'{op}' cannot combine {show(left)} and {show(right)}")
    if op == "+" and not numbers:
        if isinstance(left, str) and isinstance(right, str):
            if len(left) + len(right) > MAX_STR:
                raise Fault("expr-limit", f"'+' would make a string of {len(left) + len(right):,} characters")
        elif isinstance(left, list) and isinstance(right, list):
            measure(right, MAX_ITEMS - measure(left))
        else:
            raise mismatch
    elif op == "*" and not numbers:
        seq, count = (left, right) if isinstance(right, int) else (right, left)
        if not (isinstance(seq, (str, list)) and isinstance(count, int)):
            raise mismatch
        if isinstance(seq, str):
            size, limit, unit = len(seq), MAX_STR, "characters"
        else:
            size, limit, unit = measure(seq), MAX_ITEMS, "items"
        if count > 0 and size * count > limit:
            raise Fault("expr-limit", f"'*' would make a {type_name(seq)} of {size * count:,} {unit}")
    elif not numbers:  # '%' above all: on a string it would be Python's printf formatting
        raise mismatch
    elif op in ("/", "//", "%") and right == 0:
        raise Fault("expr-value", f"division by zero in {show(left)} {op} {show(right)}")
    elif op == "**" and _huge_power(left, right):
        raise Fault("expr-limit", f"{show(left)} ** {show(right)} is beyond the int limit 2**63")
    try:
        result = _ARITHMETIC[op](left, right)
    except OverflowError:
        raise Fault("expr-limit", f"{show(left)} {op} {show(right)} is too large") from None
    except ZeroDivisionError:
        raise Fault("expr-value", f"{show(left)} {op} {show(right)} divides by zero") from None
    if isinstance(result, complex):
        raise Fault("expr-value", f"{show(left)} ** {show(right)} has no real value")
    return checked(result)


def unary(op: str, value: Any) -> Any:
    number(value, f"unary '{op}'")
    return checked(-value if op == "-" else +value)


def compare(op: str, left: Any, right: Any) -> bool:
    for value in (left, right):
        if isinstance(value, (list, dict)):
            measure(value)  # Python compares containers item by item, recursively
    mismatch = Fault("expr-type", f"'{op}' cannot compare {show(left)} and {show(right)}")
    if op in ("in", "not in"):
        if not isinstance(right, (str, list, dict)) or (isinstance(right, str) and not isinstance(left, str)):
            raise mismatch
        try:
            return (left in right) == (op == "in")
        except TypeError:  # an unhashable key looked up in a mapping
            raise mismatch from None
    try:
        return _COMPARISONS[op](left, right)
    except TypeError:
        raise mismatch from None


def item_at(target: Any, index: Any) -> Any:
    if isinstance(target, dict):
        if isinstance(index, (list, dict)) or index not in target:
            hint = did_you_mean(str(index), [key for key in target if isinstance(key, str)])
            raise Fault("expr-value", f"the mapping has no key {show(index)}", hint)
        return target[index]
    if not isinstance(target, (list, str)):
        raise Fault("expr-type", f"cannot index {show(target)}: only lists and strings have items")
    if not isinstance(index, int):
        raise Fault("expr-type", f"an index must be an int, not {show(index)}")
    if not -len(target) <= index < len(target):
        raise Fault("expr-value", f"index {index} is out of range for {show(target)}")
    return target[index]


class _Raw(NamedTuple):
    text: str  # punctuation in as_text's output, as opposed to a value to write


def as_text(value: Any) -> str:
    """``value`` as interpolated text: a string as is, others as YAML flow text (``[1, "a", true]``).

    Iterative and bounded to MAX_STR characters, so a deep or self-referencing
    list from the scope can neither recurse nor run on.
    """
    if isinstance(value, str):
        return value
    out, size, stack = [], 0, [value]
    while stack:
        item = stack.pop()
        if isinstance(item, (list, dict)) and len(item) > MAX_STR:
            raise Fault("expr-limit", f"{show(item)} is too long to write into text")
        if isinstance(item, _Raw):
            piece = item.text
        elif isinstance(item, list):
            piece = "["
            stack += [_Raw("]"), *reversed([p for child in item for p in (_Raw(", "), child)][1:])]
        elif isinstance(item, dict):
            piece = "{"
            pairs = [p for key, child in item.items() for p in (_Raw(", "), key, _Raw(": "), child)]
            stack += [_Raw("}"), *reversed(pairs[1:])]
        elif item is None or isinstance(item, (str, int, float)):
            piece = json.dumps(item, ensure_ascii=False)  # null, true, 1.5, "quoted"
        else:
            raise Fault("expr-type", f"cannot write {show(item)} into text")
        size += len(piece)
        if size > MAX_STR:
            raise Fault("expr-limit", f"the text of {show(value)} is over {MAX_STR:,} characters")
        out.append(piece)
    return "".join(out)
