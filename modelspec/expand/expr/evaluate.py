"""The expression language's evaluation: a tree walk over parsed expressions, and templates."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from .functions import FUNCTIONS
from .parser import parse_expression
from .tokens import PYTHON_LITERALS, closing_brace, error
from .values import Fault, as_text, binary, compare, did_you_mean, item_at, new_list, unary


def apply(start: int, end: int, func: Callable, *args: Any) -> Any:
    """``func(*args)``, giving any fault it finds the position ``start:end``."""
    try:
        return func(*args)
    except Fault as fault:
        raise error(fault.code, fault.message, start, end, fault.hint) from None
    # A safety net: the operations check their operands first, but a value from the scope
    # could still surprise Python, and the language stays total by reporting that too.
    except OverflowError as exc:
        raise error("expr-limit", f"a value is too large: {exc}", start, end) from None
    except (ArithmeticError, ValueError) as exc:
        raise error("expr-value", f"invalid value: {exc}", start, end) from None
    except TypeError as exc:
        raise error("expr-type", f"invalid operand: {exc}", start, end) from None


def lookup(name: str, start: int, end: int, scope: Mapping[str, Any]) -> Any:
    if name in scope:
        return scope[name]
    known = sorted(key for key in scope if isinstance(key, str))
    if name in PYTHON_LITERALS:
        hint = f"did you mean '{PYTHON_LITERALS[name]}'?"
    elif name in FUNCTIONS:
        hint = f"'{name}' is a function: call it as {name}(...)"
    else:
        listed = f"the names here are {', '.join(known[:12])}" if known else "no names are defined here"
        hint = did_you_mean(name, known) or listed
    raise error("expr-unknown-name", f"unknown name '{name}'", start, end, hint)


def evaluate_node(node: tuple, scope: Mapping[str, Any]) -> Any:
    """The value of a parsed expression; the recursion is bounded by the parser's MAX_DEPTH."""
    match node:
        case ("const", _, _, value):
            return value
        case ("name", start, end, name):
            return lookup(name, start, end, scope)
        case ("list", start, end, items):
            return apply(start, end, new_list, [evaluate_node(item, scope) for item in items])
        case ("unary", start, _, op, operand):
            return apply(start, start + 1, unary, op, evaluate_node(operand, scope))
        case ("not", _, _, operand):
            return not evaluate_node(operand, scope)
        case ("if", _, _, then, condition, other):
            return evaluate_node(then if evaluate_node(condition, scope) else other, scope)
        case ("index", _, end, target, index, bracket):
            return apply(bracket, end, item_at, evaluate_node(target, scope), evaluate_node(index, scope))
        case ("call", start, end, function, args, keywords):
            values = [evaluate_node(arg, scope) for arg in args]
            named = {key: evaluate_node(arg, scope) for key, arg in keywords}
            return apply(start, end, lambda: FUNCTIONS[function][0](*values, **named))
        case ("and" | "or" as kind, _, _, first, rest):
            value = evaluate_node(first, scope)
            for *_, operand in rest:
                if bool(value) == (kind == "or"):  # short-circuit: the rest is not evaluated
                    return value
                value = evaluate_node(operand, scope)
            return value
        case ("compare", _, _, first, rest):
            left = evaluate_node(first, scope)
            for op, op_start, op_end, operand in rest:
                right = evaluate_node(operand, scope)
                if not apply(op_start, op_end, compare, op, left, right):
                    return False
                left = right
            return True
        case ("arith", _, _, first, rest):
            value = evaluate_node(first, scope)
            for op, op_start, op_end, operand in rest:
                value = apply(op_start, op_end, binary, op, value, evaluate_node(operand, scope))
            return value
    raise AssertionError(f"unknown node {node[0]!r}")  # pragma: no cover


class _Expr(NamedTuple):
    node: tuple
    start: int  # the '$' of '${'
    end: int  # just past the '}'


class Template:
    """A parsed string value: literal text and ``${...}`` expressions, ready to render many times.

    Attributes:
        text: The string value as written.
        names: The free names its expressions use.
        whole: True when the string is exactly one ``${...}``: rendering gives the value with its type.
    """

    __slots__ = ("_parts", "names", "text", "whole")

    def __init__(self, text: str, parts: tuple[str | _Expr, ...], names: frozenset[str]):
        self.text, self._parts, self.names = text, parts, names
        self.whole = len(parts) == 1 and isinstance(parts[0], _Expr)

    def __repr__(self) -> str:
        return f"Template({self.text[:60]!r})"

    @property
    def literal(self) -> bool:
        """Whether the string holds no expression (only text, and ``$${`` for a literal ``${``)."""
        return not any(isinstance(part, _Expr) for part in self._parts)

    def render(self, scope: Mapping[str, Any]) -> Any:
        """Evaluate the expressions with the names in ``scope``.

        Returns:
            The typed value when the template is ``whole``; otherwise the string with
            each expression's value written in as text and each ``$${`` as ``${``.

        Raises:
            ExprError: An unknown name, a type or value fault, or a value past the limits.
        """
        if self.whole:
            return evaluate_node(self._parts[0].node, scope)
        return "".join(
            part
            if isinstance(part, str)
            else apply(part.start, part.end, as_text, evaluate_node(part.node, scope))
            for part in self._parts
        )


def has_expression(text: str) -> bool:
    """Whether ``text`` needs :func:`parse`: it holds ``${`` (as ``$${`` does too)."""
    return "${" in text


@functools.lru_cache(maxsize=4096)
def parse(text: str) -> Template:
    """Parse a whole string value into literal text and expressions (cached: block bodies repeat).

    Raises:
        ExprError: A syntax error, an unknown function, a wrong call, or an
            expression past the size or nesting limits.
    """
    parts: list[str | _Expr] = []
    names: set[str] = set()
    literal: list[str] = []  # text since the last expression
    i = 0
    while (j := text.find("$", i)) >= 0:
        if text.startswith("$${", j):
            literal += [text[i:j], "${"]
            i = j + 3
        elif text.startswith("${", j):
            if (before := "".join([*literal, text[i:j]])) != "":
                parts.append(before)
            close = closing_brace(text, j)
            node, used = parse_expression(text, j, close)
            parts.append(_Expr(node, j, close + 1))
            names |= used
            literal, i = [], close + 1
        else:
            literal.append(text[i : j + 1])
            i = j + 1
    if (after := "".join([*literal, text[i:]])) != "":
        parts.append(after)
    return Template(text, tuple(parts), frozenset(names))


def evaluate(text: str, scope: Mapping[str, Any]) -> Any:
    """``parse(text).render(scope)``: the value of a string value in ``scope``."""
    return parse(text).render(scope)


def expression_names(text: str) -> frozenset[str]:
    """The free names the expressions in ``text`` use."""
    return parse(text).names
