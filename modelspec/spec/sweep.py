"""The ``sweep`` section, checked statically: its space's key paths and choices, before anything trains.

A key of ``sweep.space`` is ``variant``, ``params.NAME``, or a key path below
``train`` or ``compile`` (``compile.optimizer.learning_rate``,
``train.callbacks.0.patience``). Its choices are a list (categorical) or
``{int: [lo, hi], log, step}`` / ``{float: [lo, hi], log, step}``. Each
variant must exist, each param must be declared, and each value a
``train``/``compile`` path may take (every listed value, both ends of a
range) is put in the spec and checked as that section would be: a value the
schema or the catalog refuses is reported at the choice, not when a trial
reaches it. Nothing here imports Optuna.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pydantic
from pydantic import BaseModel

from ..errors import Collector, Origin, Problem, format_path, received, shown
from .checks import check_spec
from .models import CompileSpec, ModelSpec, TrainSpec, holds_expression

ROOTS = ("variant", "params", "train", "compile")
"""What a space key may start with."""
_SECTIONS: dict[str, type[BaseModel]] = {"train": TrainSpec, "compile": CompileSpec}
_SCALARS = (str, int, float, bool, type(None))
_DURATION = re.compile(r"^\s*(?P<n>[0-9]+(?:\.[0-9]+)?)\s*(?P<unit>s|m|h|d)?\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


@dataclass(frozen=True)
class Choice:
    """The choices of one space key.

    Attributes:
        kind: ``categorical``, ``int`` or ``float``.
        values: The categorical values (empty for a range).
        low: A range's low end (inclusive).
        high: A range's high end (inclusive).
        log: Sample a range on a log scale.
        step: A range's step, or None.
    """

    kind: str
    values: tuple = ()
    low: float = 0
    high: float = 0
    log: bool = False
    step: float | None = None

    def candidates(self) -> list[Any]:
        """The values checked statically: every categorical value, or both ends of a range."""
        if self.kind == "categorical":
            return list(self.values)
        kind = int if self.kind == "int" else float
        return [kind(self.low), kind(self.high)]

    def holds(self, value: Any) -> bool:
        """Whether ``value`` is one of the choices (on a range's step, when it has one)."""
        if self.kind == "categorical":
            return any(value == v and type(value) is type(v) for v in self.values)
        if isinstance(value, bool) or not isinstance(value, int if self.kind == "int" else (int, float)):
            return False
        if not self.low <= value <= self.high:
            return False
        if self.step is None:
            return True
        steps = (value - self.low) / self.step
        return abs(steps - round(steps)) < 1e-9

    def grid(self) -> list[Any] | None:
        """Every value, for the grid sampler; None for a continuous range."""
        if self.kind == "categorical":
            return list(self.values)
        if self.kind == "int":
            return list(range(int(self.low), int(self.high) + 1, int(self.step or 1)))
        if self.step is None:
            return None
        count = round((self.high - self.low) / self.step) + 1
        return [
            round(self.low + i * self.step, 12)
            for i in range(count)
            if self.low + i * self.step <= self.high + 1e-12
        ]


def key_path(key: str) -> tuple:
    """``'train.callbacks.0.patience'`` -> ``('train', 'callbacks', 0, 'patience')``."""
    return tuple(int(part) if part.isdigit() else part for part in key.split("."))


def with_value(data: Any, path: tuple, value: Any) -> Any:
    """``data`` (plain spec data) with ``value`` at ``path``; the mappings and lists on the way are copied."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(data, dict):
        copy = dict(data)
        copy[head] = with_value(data.get(head), rest, value)
        return copy
    if isinstance(data, list) and isinstance(head, int) and 0 <= head < len(data):
        copy = list(data)
        copy[head] = with_value(data[head], rest, value)
        return copy
    return with_value({}, path, value) if data is None else data


def default_direction(objective: str) -> str:
    """``minimize`` for an objective whose name holds "loss" (or "error"), else ``maximize``."""
    return "minimize" if "loss" in objective or "error" in objective else "maximize"


def timeout_seconds(value: int | str | None) -> float | None:
    """``sweep.timeout`` in seconds: an int, or text such as ``90s``, ``30m``, ``2h``.

    Raises:
        ValueError: Text that is not a duration.
    """
    if value is None or isinstance(value, int):
        return value
    m = _DURATION.match(value)
    if m is None:
        raise ValueError(f"a timeout is seconds or a duration such as 90s, 30m, 2h, got {shown(value)}")
    return float(m["n"]) * _UNITS[m["unit"]]


def read_choice(value: Any) -> tuple[Choice | None, str | None]:
    """The choices written for one space key, or the message saying what is wrong with them."""
    if isinstance(value, list):
        if not value:
            return None, "an empty list of choices: nothing to search"
        odd = next((v for v in value if not isinstance(v, _SCALARS)), None)
        if odd is not None:
            return None, f"a categorical choice is a number, string, boolean or null, got {received(odd)}"
        if len(set(map(repr, value))) != len(value):
            return None, f"the choices {shown(value)} repeat a value"
        return Choice("categorical", tuple(value)), None
    if not isinstance(value, dict):
        return None, (
            f"expected a list of choices, {{int: [lo, hi]}} or {{float: [lo, hi]}}, got {received(value)}"
        )
    kinds = [k for k in ("int", "float") if k in value]
    unknown = [k for k in value if k not in ("int", "float", "log", "step")]
    if unknown:
        return None, f"unknown key {shown(unknown[0])} in a range: it takes int or float, log and step"
    if len(kinds) != 1:
        return None, "a range is {int: [lo, hi]} or {float: [lo, hi]} (with log or step)"
    kind = kinds[0]
    bounds = value[kind]
    number = int if kind == "int" else (int, float)
    if (
        not isinstance(bounds, list)
        or len(bounds) != 2
        or any(isinstance(b, bool) or not isinstance(b, number) for b in bounds)
    ):
        return (
            None,
            f"{kind} takes [lo, hi], two {'integers' if kind == 'int' else 'numbers'}, got {received(bounds)}",
        )
    low, high = bounds
    log, step = value.get("log", False), value.get("step")
    if not isinstance(log, bool):
        return None, f"log is true or false, got {received(log)}"
    if step is not None and (isinstance(step, bool) or not isinstance(step, number) or step <= 0):
        return None, f"step is a positive {'integer' if kind == 'int' else 'number'}, got {received(step)}"
    if low > high:
        return None, f"the range [{low}, {high}] is empty: its low end is above its high end"
    if log and low <= 0:
        return None, f"a log range needs a low end above 0, got {low}"
    if log and step is not None:
        return None, "a range takes log or step, not both (Optuna samples one or the other)"
    return Choice(kind, (), low, high, log, step), None


def read_space(spec: ModelSpec) -> dict[str, Choice]:
    """The choices of a checked spec's sweep space, by key (the spec passed :func:`check_sweep`)."""
    assert spec.sweep is not None
    return {key: choice for key, value in spec.sweep.space.items() if (choice := read_choice(value)[0])}


def check_sweep(spec: ModelSpec, custom_objects: dict[str, Any] | None = None) -> list[Problem]:
    """Every problem of a spec's ``sweep`` section (none without one)."""
    if spec.sweep is None:
        return []
    return _SweepChecker(spec, custom_objects or {}).run()


class _SweepChecker(Collector):
    def __init__(self, spec: ModelSpec, custom_objects: dict[str, Any]):
        super().__init__()
        self.spec = spec
        self.custom = custom_objects
        self.data = spec.to_data()

    def run(self) -> list[Problem]:
        sweep = self.spec.sweep
        assert sweep is not None
        at = self.spec.at("sweep")
        if not sweep.space:
            self.error(at.at("space"), "sweep-choice", "the space is empty: nothing to search")
        if sweep.timeout is not None:
            try:
                timeout_seconds(sweep.timeout)
            except ValueError as e:
                self.error(at.at("timeout"), "invalid-value", str(e))
        if not re.fullmatch(r"(val_|test_)?[A-Za-z0-9_]+", sweep.objective):
            self.error(
                at.at("objective"),
                "invalid-value",
                f"{shown(sweep.objective)} is not a metric name",
                "a history metric (loss, accuracy, val_loss, val_accuracy, ...) or test_<metric>",
            )
        for key, value in sweep.space.items():
            self.key(key, value, at.at("space", key))
        return self.problems

    def key(self, key: str, value: Any, at: Origin) -> None:
        path = key_path(key)
        root = path[0]
        if (
            root not in ROOTS
            or (root == "variant") != (len(path) == 1)
            or (root == "params" and len(path) != 2)
        ):
            hint = self.near.hint(
                str(root),
                ROOTS,
                "sweep-roots",
                "a key is variant, params.NAME, train.KEY... or compile.KEY...",
            )
            if root in ROOTS:
                hint = "a key is variant, params.NAME, train.KEY... or compile.KEY..."
            self.error(at, "sweep-key", f"{shown(key)} is not a key path the sweep can set", hint, key=True)
            return
        choice, message = read_choice(value)
        if choice is None:
            self.error(at, "sweep-choice", message or "")
            return
        if self.spec.sweep.sampler == "grid" and choice.grid() is None:  # type: ignore[union-attr]
            self.error(
                at,
                "sweep-choice",
                "the grid sampler needs every value: give this float range a step, or a list",
            )
        if root == "variant":
            self.variant(choice, at)
        elif root == "params":
            if path[1] not in self.spec.params:
                self.error(
                    at,
                    "sweep-key",
                    f"the spec declares no param {shown(path[1])}",
                    self.near.hint(
                        str(path[1]), self.spec.params, "params",
                        f"its params: {', '.join(self.spec.params) or 'none'}",
                    ),
                    key=True,
                )  # fmt: skip
        else:
            self.setting(key, path, choice, at)

    def variant(self, choice: Choice, at: Origin) -> None:
        variants = self.spec.variants
        if choice.kind != "categorical":
            self.error(at, "sweep-choice", "a variant is chosen from a list of the spec's variants")
            return
        for i, name in enumerate(choice.values):
            if name not in variants:
                self.error(
                    at.at(i),
                    "sweep-choice",
                    f"the spec has no variant {shown(name)}",
                    self.near.hint(
                        str(name), variants, "variants", f"its variants: {', '.join(variants) or 'none'}"
                    ),
                )

    def setting(self, key: str, path: tuple, choice: Choice, at: Origin) -> None:
        """A ``train``/``compile`` path: it must lead to a setting, and each candidate must be valid there."""
        root = path[0]
        section = self.data.get(root)
        if not isinstance(section, dict):
            self.error(at, "sweep-key", f"the spec has no '{root}' section for {shown(key)} to set", key=True)
            return
        wrong = self.unknown_step(path)
        if wrong is not None:
            self.error(at, "sweep-key", wrong[0], wrong[1], key=True)
            return
        said: set[str] = set()
        for i, candidate in enumerate(choice.candidates()):
            patched = with_value(section, path[1:], candidate)
            if holds_expression(patched):
                continue  # checked once expanded, when a trial builds it
            where = at.at(i) if choice.kind == "categorical" else at.at(choice.kind, i)
            refused = self.refused(root, patched)
            if refused is not None and refused[0] not in said:  # an unknown argument once, not per value
                said.add(refused[0])
                self.error(where, "sweep-choice", f"{key} = {shown(candidate)}: {refused[0]}", refused[1])
                if choice.kind != "categorical":
                    return  # both ends of a range are refused alike

    def unknown_step(self, path: tuple) -> tuple[str, str | None] | None:
        """What is wrong with a key path below ``train``/``compile`` (a key its model lacks), or None.

        Below a Keras object (``compile.optimizer``) any argument name is let through here:
        the catalog check of the patched section names an unknown one.
        """
        model: Any = _SECTIONS[path[0]]
        value: Any = self.data[path[0]]
        for depth, part in enumerate(path[1:], start=1):
            if model is None:
                if isinstance(value, str) and depth >= 2:
                    return (
                        f"{format_path(path[:depth])} is written as a name ({shown(value)}): nothing below it to set",
                        f"write it as {{type: {value}, ...}} to sweep its arguments",
                    )
                value = value.get(part) if isinstance(value, dict) else (
                    value[part] if isinstance(value, list) and isinstance(part, int) and part < len(value) else None
                )  # fmt: skip
                continue
            if isinstance(part, int) or part not in model.model_fields:
                fields = list(model.model_fields)
                return (
                    f"{shown(str(part))} is not a key of '{format_path(path[:depth])}'",
                    self.near.hint(
                        str(part), fields, f"fields:{model.__name__}", f"its keys: {', '.join(fields)}"
                    ),
                )
            field = model.model_fields[part].annotation
            value = value.get(part) if isinstance(value, dict) else None
            model = next(
                (
                    a
                    for a in (field, *getattr(field, "__args__", ()))
                    if isinstance(a, type) and issubclass(a, BaseModel)
                ),
                None,
            )
            if model is None and depth < len(path) - 1 and not isinstance(value, (dict, list, str)):
                return f"{format_path(path[: depth + 1])} holds no keys to set", None
        return None

    def refused(self, root: str, section: Any) -> tuple[str, str | None] | None:
        """Why the schema or the catalog refuses ``section`` (a patched train or compile), or None."""
        model = _SECTIONS[root]
        try:
            part = model.model_validate(section)
        except pydantic.ValidationError as e:
            errors = e.errors()
            # A union reports each branch; the one that is not the expression branch says what is wrong.
            err = next((x for x in errors if "pattern" not in x["type"]), errors[0])
            return f"{err['msg'][0].lower()}{err['msg'][1:]}", None
        partial = ModelSpec.model_construct(layers=[], **{root: part})
        found = [p for p in check_spec(partial, self.custom) if p.severity == "error"]
        return (found[0].message, found[0].hint) if found else None


def written_point(spec: ModelSpec, space: dict[str, Choice], params: dict[str, Any]) -> dict[str, Any]:
    """The point the spec itself stands for, on the keys where it lies in the space.

    A sweep's first trial: the spec as written is measured, so the best point
    found is never worse (by the objective) than the untuned spec. A variant is
    taken when its overrides change nothing; a value written as an expression
    is left to the sampler.

    Args:
        spec: The spec (not expanded).
        space: Its space.
        params: Params fixed outside the space (``--set``).
    """
    values = {**spec.params, **params}
    data = spec.to_data()
    point: dict[str, Any] = {}
    for key, choice in space.items():
        path = key_path(key)
        if path[0] == "variant":
            same = [v for v in choice.values if all(values.get(k) == x for k, x in spec.variants[v].items())]
            if same:
                point[key] = same[0]
            continue
        if path[0] == "params":
            value = values.get(path[1])
        else:
            value = data
            for part in path:
                value = value.get(part) if isinstance(value, dict) else None
        if not holds_expression(value) and choice.holds(value):
            point[key] = value
    return point
