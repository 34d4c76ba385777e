"""Params, variants and overrides: literal values, checked before anything is expanded.

A spec's ``params`` and ``variants`` hold literals, and so do the values
given with it (``--set``, ``--variant``, Python's ``params=`` and
``variant=``): nothing in them is evaluated, so a ``${...}`` in one is a
mistake (``a: "${b}"`` would stay that text), and a value past the limits
the expression language keeps (ints within 2**63, lists of 10,000 items,
64 levels deep) could only fail later, far from where it was written.

Overrides that do not fit the spec (a param it does not declare, a variant it
does not have, a value that is not a literal) are the caller's mistake, not
the spec's: :class:`OverrideError`, which the command line reports with exit
status 2.
"""

from __future__ import annotations

import math
from typing import Any

from ..errors import Problem, SpecError, Suggester
from ..spec import ModelSpec
from .expr import MAX_DEPTH, MAX_INT, MAX_ITEMS, MAX_STR


class OverrideError(SpecError):
    """Params or a variant given with a spec do not fit it: exit status 2 (the command line is wrong)."""

    exit_code = 2


def literal_problem(value: Any) -> str | None:
    """What keeps ``value`` from being a param's literal value, or None when it is one.

    Iterative and bounded: a huge or self-referencing value from Python costs
    at most :data:`MAX_ITEMS` steps.
    """
    from .expr import parse
    from .expr.values import show

    count, stack = 0, [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, bool) or item is None:
            continue
        if isinstance(item, int):
            if abs(item) > MAX_INT:
                return f"{show(item)} is beyond the int limit 2**63"
        elif isinstance(item, float):
            if math.isnan(item):
                return "NaN is not a number a param can hold"
        elif isinstance(item, str):
            if len(item) > MAX_STR:
                return f"a string of {len(item):,} characters is over the limit of {MAX_STR:,}"
            if "${" in item and not _literal_text(item, parse):
                return f"{show(item)} is an expression, which a param's value is not: it would stay that text"
        elif isinstance(item, (list, dict)):
            count += len(item)
            if count > MAX_ITEMS:
                return f"a list of over {MAX_ITEMS:,} items (nested items count too)"
            if depth >= MAX_DEPTH:
                return f"a list nested over {MAX_DEPTH} levels deep"
            if isinstance(item, dict):
                bad = next((k for k in item if not isinstance(k, str)), None)
                if bad is not None:
                    return f"a mapping's keys are strings, got {show(bad)}"
                stack.extend((v, depth + 1) for v in item.values())
            else:
                stack.extend((v, depth + 1) for v in item)
        else:
            return (
                f"a param holds YAML data (a number, string, boolean, null, list or mapping), "
                f"not a {type(item).__name__}"
            )
    return None


def _literal_text(text: str, parse: Any) -> bool:
    """Whether ``text`` has no expression, only literal ``$${``."""
    try:
        return parse(text).literal
    except Exception:  # noqa: BLE001 - a broken '${' is not a literal either
        return False


def check_overrides(spec: ModelSpec, params: Any, variant: Any) -> None:
    """Refuse overrides that do not fit ``spec``: unknown params or variant, values that are not literals.

    Raises:
        OverrideError: Every such problem, each naming where the value came from.
    """
    file = spec.source.name if spec.source is not None else "<spec>"
    near = Suggester()
    problems: list[Problem] = []
    if variant is not None and (not isinstance(variant, str) or variant not in spec.variants):
        listed = ", ".join(spec.variants) or "none"
        problems.append(
            Problem.in_file(
                "unknown-variant",
                file,
                f"the spec has no variant {variant!r} (asked for by --variant or variant=); its variants: {listed}",
                near.hint(str(variant), spec.variants, "variants", None),
                path=("variants",),
            )
        )
    if params is not None and not isinstance(params, dict):
        problems.append(
            Problem.in_file(
                "param-value",
                file,
                f"params= takes a mapping of param name -> value, got a {type(params).__name__}",
                path=("params",),
            )
        )
        params = {}
    for key, value in (params or {}).items():
        if not isinstance(key, str):
            problems.append(
                Problem.in_file(
                    "param-value",
                    file,
                    f"param names are strings, got {key!r} (set by params=)",
                    f"its params: {', '.join(spec.params) or 'none'}",
                    path=("params",),
                )
            )
            continue
        if key not in spec.params:
            problems.append(
                Problem.in_file(
                    "unknown-param",
                    file,
                    f"the spec declares no param {key!r} (set by --set or params=)",
                    near.hint(key, spec.params, "params", f"its params: {', '.join(spec.params) or 'none'}"),
                    path=("params",),
                )
            )
            continue
        wrong = literal_problem(value)
        if wrong is not None:
            problems.append(
                Problem.in_file(
                    "param-value",
                    file,
                    f"param {key!r} (set by --set or params=): {wrong}",
                    "--set and params= values are literals: write the value itself",
                    path=("params", key),
                )
            )
    if problems:
        raise OverrideError(problems)
