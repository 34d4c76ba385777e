"""Scopes: evaluating values in them, the spec's params and variants, and a block instance's params."""

from __future__ import annotations

import dataclasses
import re
from typing import TYPE_CHECKING, Any

from ..errors import Origin
from ..spec import BlockSpec, LayerSpec
from ..spec.models import NAME_PATTERN, invalid_name
from .params import literal_problem
from .state import Base, Failed, Library

if TYPE_CHECKING:
    from .expr import ExprError


_LITERALS_HINT = (
    'a param is a value, read as written; compute from it where it is used, e.g. units: "${2 * width}"'
)


class Scopes(Base):
    """Values evaluated in a scope, and the scopes themselves: the spec's, and each instance's."""

    def expression_problem(self, at: Origin, e: ExprError) -> Failed:
        p = at.problem(e.code, e.message, e.hint)
        if p.column is not None and p.source_line is not None:
            line, start = p.source_line, p.column
            column = source_column(line, start, e.offset)
            p = dataclasses.replace(
                p, column=column, end_column=source_column(line, start, e.offset + e.length)
            )
        self.problems.append(p)
        return Failed()

    def value(self, raw: Any, scope: dict[str, Any], at: Origin, *keys: Any) -> Any:
        """``raw`` (found at ``at`` and ``keys`` below it) with every ``${...}`` evaluated in ``scope``."""
        if isinstance(raw, str):
            if "${" not in raw:
                return raw
            from .expr import ExprError, parse  # a plain spec never needs the expression language

            try:
                return parse(raw).render(scope)
            except ExprError as e:
                raise self.expression_problem(at.at(*keys) if keys else at, e) from None
        if isinstance(raw, list):
            return [self.value(v, scope, at, *keys, i) for i, v in enumerate(raw)]
        if isinstance(raw, dict):
            return {k: self.value(v, scope, at, *keys, k) for k, v in raw.items()}
        return raw

    def condition(self, entry: LayerSpec, scope: dict[str, Any], at: Origin) -> bool:
        if entry.if_ is None:
            return True
        value = self.value(entry.if_, scope, at.at("if"))
        if not isinstance(value, bool):
            raise self.fail(at.at("if"), "wrong-type", f"'if' takes true or false, got {value!r}")
        return value

    def name(self, entry: LayerSpec, scope: dict[str, Any], at: Origin) -> str:
        """An entry's ``name``, evaluated: a valid node name, as the flat names are made of it."""
        value = self.value(entry.name, scope, at.at("name"))
        if not isinstance(value, str) or re.fullmatch(NAME_PATTERN, value) is None:
            raise self.fail(at.at("name"), "invalid-name", *invalid_name(value))
        return value

    def main_scope(self, overrides: dict[str, Any], variant: str | None) -> dict[str, Any]:
        """The spec's params, its variant's values over them, then the overrides (checked by check_overrides)."""
        spec = self.spec
        for key, value in spec.params.items():
            wrong = literal_problem(value)
            if wrong is not None:
                self.error(
                    spec.at("params", key), "param-value", f"params hold literals: {wrong}", _LITERALS_HINT
                )
        for name, values in spec.variants.items():
            for key, value in values.items():
                if key not in spec.params:
                    self.unknown_param(spec.at("variants", name, key), key, spec.params, "variant")
                elif (wrong := literal_problem(value)) is not None:
                    at = spec.at("variants", name, key)
                    self.error(at, "param-value", f"variants hold literals: {wrong}", _LITERALS_HINT)
        scope = dict(spec.params)
        if variant is not None:
            scope.update(spec.variants[variant])
        scope.update(overrides)
        return scope

    def file_name(self) -> str:
        return self.spec.source.name if self.spec.source is not None else "<spec>"

    def unknown_param(self, at: Origin, key: str, known: Any, what: str) -> None:
        self.error(
            at, "unknown-param", f"the {what} sets {key!r}, which is not a declared param",
            self.near.hint(key, known, f"params:{id(known)}", f"the params are: {', '.join(known) or 'none'}"), key=True,
        )  # fmt: skip

    def check_params(self, name: str, block: BlockSpec, entry: LayerSpec, at: Origin) -> None:
        """The instance's params are the block's, and it gives every required one."""
        for key in entry.args:
            if key not in block.params:
                raise self.fail(
                    at.at(key), "unknown-param", f"block {name!r} has no param {key!r}",
                    self.near.hint(key, block.params, f"params:{name}", f"its params: {', '.join(block.params) or 'none'}"), key=True,
                )  # fmt: skip
        for key, default in block.params.items():
            if key not in entry.args and default == "required":
                raise self.fail(
                    at,
                    "missing-param",
                    f"block {name!r} requires the param {key!r}",
                    f"add {key}: VALUE to this instance",
                    key=True,
                )

    def block_params(
        self,
        block: BlockSpec,
        block_at: Origin,
        lib: Library,
        given: dict[str, Any],
        ij: dict[str, int],
    ) -> dict[str, Any]:
        """The block's params for one instance: defaults, then the instance's values (checked by check_params)."""
        resolved: dict[str, Any] = {}
        for key, default in block.params.items():
            if key in given:
                resolved[key] = given[key]
            else:
                resolved[key] = self.value(
                    default, {**lib.scope, **ij, **resolved}, block_at.at("params", key)
                )
        return resolved


_ESCAPE_LENGTHS = {"x": 4, "u": 6, "U": 10}
"""The length in the text of a YAML double-quoted escape, by its letter (the others are 2: ``\\t``)."""


def source_column(line: str, column: int, offset: int) -> int:
    """The column in ``line`` of the value's character at ``offset``, for a scalar written from ``column`` on.

    A quoted scalar's escapes (``\\t``, ``\\u00e9``, ``''``) take more characters in the
    text than in the value, so the offset is walked through them.
    """
    quote = line[column - 1 : column]
    if quote not in ("'", '"'):
        return column + offset
    pos = column  # 0-based: just past the opening quote
    for _ in range(offset):
        if quote == '"' and line.startswith("\\", pos):
            pos += _ESCAPE_LENGTHS.get(line[pos + 1 : pos + 2], 2)
        elif quote == "'" and line.startswith("''", pos):
            pos += 2
        else:
            pos += 1
    return pos + 1
