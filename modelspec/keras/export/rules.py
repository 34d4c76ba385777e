"""Rules that explain a folded group's values: in the repeat index ``i``, or from another param.

A run of units becomes one ``repeat`` instance only when a simple rule gives
each unit's value from ``i``: all equal, ``a + b * i``, the first one
different, a number or letter in a name that counts up, a float that is a
fraction of a counter (EfficientNet's drop rates, ``0.2 * (i + 6) / 16``).
Inside a block, a value that follows from a param it already has is written
as that expression (``${4 * filters}``, ``${filters // 24}``, ``[1, 1,
'${filters}']``) instead of being a param of its own. Every rule is confirmed
with the project's own expression evaluator before it is used, so a rule
gives back exactly the values it stands for (floats bit for bit).
"""

from __future__ import annotations

import json
import re
import string
from typing import Any

from ...expand.expr import ExprError, evaluate

NUMBER = re.compile(r"\d+")
LETTERS = string.ascii_lowercase


def key(value: Any) -> str:
    """A value's identity: equal keys, equal values (``1`` and ``1.0`` and ``True`` apart)."""
    return json.dumps(value, sort_keys=True, default=str)


def _int(value: Any) -> bool:
    return type(value) is int


def _float(value: Any) -> bool:
    return type(value) is float


def _confirmed(text: str, values: list[Any], scopes: list[dict[str, Any]]) -> bool:
    """True when ``text`` renders to ``values[k]`` in ``scopes[k]``, for every k, exactly."""
    try:
        return all(key(evaluate(text, s)) == key(v) for v, s in zip(values, scopes))
    except ExprError:
        return False


def _literal(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if _int(value):
        return str(value)
    if isinstance(value, str) and "'" not in value and "\\" not in value and "$" not in value:
        return f"'{value}'"
    if isinstance(value, list) and all(_int(v) for v in value):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return None


def linear(numbers: list[int]) -> str | None:
    """``a + b * i`` (written shortest) when ``numbers[i]`` follows it, else None."""
    a, step = numbers[0], numbers[1] - numbers[0]
    if any(v != a + step * i for i, v in enumerate(numbers)):
        return None
    term = "i" if step == 1 else f"{step} * i"
    if step == 0:
        return str(a)
    if a == 0:
        return term
    return f"{term} + {a}" if a > 0 else f"{term} - {-a}"


def _fraction(values: list[float]) -> str | None:
    """``c * (i + k) / d`` giving the floats exactly, with a short ``c`` and a small ``d``; else None."""
    step = values[1] - values[0]
    if step <= 0:
        return None
    start = values[0] / step
    k = round(start)
    if abs(start - k) > 1e-6:
        return None
    scopes = [{"i": i} for i in range(len(values))]
    for d in range(1, 1001):
        c = float(f"{step * d:.6g}")
        if c <= 0:
            continue
        counter = "i" if k == 0 else f"i + {k}" if k > 0 else f"i - {-k}"
        text = "${" + (f"{c!r} * ({counter})" if d == 1 else f"{c!r} * ({counter}) / {d}") + "}"
        if _confirmed(text, values, scopes):
            return text
    return None


def _letters(values: list[str]) -> str | None:
    """A name whose one varying character counts up the alphabet (``block4b_``, ``block4c_``)."""
    head = 0
    while all(len(v) > head for v in values) and len({v[head] for v in values}) == 1:
        head += 1
    tail = 0
    while all(len(v) > head + tail for v in values) and len({v[len(v) - 1 - tail] for v in values}) == 1:
        tail += 1
    middles = [v[head : len(v) - tail] for v in values]
    if any(len(m) != 1 or m not in LETTERS for m in middles):
        return None
    first = LETTERS.index(middles[0])
    if middles != list(LETTERS[first : first + len(values)]):
        return None
    index = "i" if first == 0 else f"i + {first}"
    return values[0][:head] + "${'" + LETTERS + "'[" + index + "]}" + values[0][len(values[0]) - tail :]


def _numbers(values: list[str]) -> str | None:
    """A string whose numbers each stay or count (``conv4_block${i + 2}_``); None when the text differs."""
    if len({NUMBER.sub("#", v) for v in values}) != 1:
        return None
    if any(t != str(int(t)) for v in values for t in NUMBER.findall(v)):
        return None  # leading zeros: a counter would drop them
    columns = list(zip(*(map(int, NUMBER.findall(v)) for v in values)))
    texts = NUMBER.split(values[0])
    out = texts[0]
    for column, text in zip(columns, texts[1:]):
        if len(set(column)) == 1:
            out += str(column[0])
        else:
            rule = linear(list(column))
            if rule is None:
                return None
            out += "${" + rule + "}"
        out += text
    return out


def rule(values: list[Any]) -> Any:
    """A value or ``${...}`` expression giving ``values[i]`` for repeat ``i``; None when none is simple.

    Two values fit any line, so a count needs three values or a step of one,
    and "the first differs" three values or more.
    """
    if all(key(v) == key(values[0]) for v in values):
        return values[0]
    candidates: list[Any] = []
    if all(_int(v) for v in values) and (len(values) > 2 or abs(values[1] - values[0]) == 1):
        found = linear(values)
        if found is not None:
            candidates.append("${" + found + "}")
    if all(_float(v) for v in values):
        candidates.append(_fraction(values))
    if len(values) > 2 and all(key(v) == key(values[1]) for v in values[1:]):
        a, b = _literal(values[0]), _literal(values[1])
        if a is not None and b is not None:
            candidates.append("${" + f"{a} if i == 0 else {b}" + "}")
    if all(isinstance(v, str) and "$" not in v for v in values):  # spec text: `$${` stays as written
        candidates += [_numbers(values), _letters(values)]
    scopes = [{"i": i, "n": len(values)} for i in range(len(values))]
    for candidate in candidates:
        if candidate is not None and _confirmed(candidate, values, scopes):
            return candidate
    return None


def derived(values: list[Any], params: dict[str, list[Any]]) -> Any:
    """An expression over one of ``params`` giving ``values`` for every unit; None when none does.

    Tried: equal to a param, ``K * p``, ``p // K`` (ints); a list whose
    elements are each literal or one of those. Strings and floats are left to
    a param of their own.
    """
    if isinstance(values[0], list) and all(isinstance(v, list) and len(v) == len(values[0]) for v in values):
        out = []
        for column in zip(*values):
            column = list(column)
            if all(key(v) == key(column[0]) for v in column):
                out.append(column[0])
                continue
            found = _scalar(column, params)
            if found is None:
                return None
            out.append("${" + found + "}")
        return out
    found = _scalar(values, params)
    return None if found is None else "${" + found + "}"


def _scalar(values: list[Any], params: dict[str, list[Any]]) -> str | None:
    if not all(_int(v) for v in values):
        return None
    for param, known in params.items():
        if len(known) != len(values) or not all(_int(b) for b in known):
            continue
        if known == values:
            return param
        if (
            all(b and v % b == 0 for v, b in zip(values, known))
            and len({v // b for v, b in zip(values, known)}) == 1
        ):
            return f"{values[0] // known[0]} * {param}"
        ratio = known[0] // values[0] if values[0] > 0 else 0
        if ratio > 1 and all(b // ratio == v for v, b in zip(values, known)):
            return f"{param} // {ratio}"
    return None
