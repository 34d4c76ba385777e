"""Writing specs back as YAML people would write: block style for structure, flow style for short leaves."""

from __future__ import annotations

from typing import Any

import yaml

WIDTH = 140
"""A mapping of leaves goes on one line when the line fits in this, its indentation and key included ..."""
VALUE_WIDTH = 120
"""... or when the mapping's own text does (a long layer name never splits a short layer)."""


def dump_yaml(data: Any) -> str:
    """YAML text of spec data, keys in their given order, short entries on one line."""
    return yaml.dump(_layout(data, 0), Dumper=_SpecDumper, sort_keys=False, allow_unicode=True, width=WIDTH)


class _SpecDumper(yaml.SafeDumper):
    """Block style for the document's structure, flow style for short leaves."""


class _OneLine(dict):
    """A mapping of leaves that goes on one line where it stands (:func:`_one_line`): written in flow style."""


class _FlowDumper(yaml.SafeDumper):
    """Writes everything in flow style on one line: the text a mapping would take as ``_OneLine``."""


def _is_leaf(value: Any, depth: int = 0) -> bool:
    """A scalar, or a list of scalars or (once) of such lists: ``[[0, 1], [0, 1]]`` is a leaf too."""
    if isinstance(value, list):
        return depth < 2 and all(_is_leaf(v, depth + 1) for v in value)
    return not isinstance(value, dict)


def _one_line(value: dict, indent: int, key: str) -> bool:
    """Whether ``value`` (leaves only) goes in flow style on one line after ``key`` at ``indent``."""
    if not value or not all(_is_leaf(v) for v in value.values()):
        return False
    text = yaml.dump(value, Dumper=_FlowDumper, sort_keys=False, allow_unicode=True, width=1 << 30)
    width = len(text.rstrip("\n"))
    return width <= VALUE_WIDTH or indent + len(key) + width <= WIDTH


def _layout(value: Any, indent: int) -> Any:
    """``value`` with each mapping that fits on its line marked :class:`_OneLine` (keys are 2 apart)."""
    if isinstance(value, dict):
        return {
            k: _OneLine(v)
            if isinstance(v, dict) and _one_line(v, indent, f"{k}: ")
            else _layout(v, indent + 2)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [
            _OneLine(v) if isinstance(v, dict) and _one_line(v, indent, "- ") else _layout(v, indent + 2)
            for v in value
        ]
    return value


def _represent_list(dumper: yaml.SafeDumper, value: list) -> yaml.Node:
    flow = _is_leaf(value) and len(repr(value)) <= 80
    return dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=flow)


def _represent_dict(dumper: yaml.SafeDumper, value: dict) -> yaml.Node:
    return dumper.represent_mapping(
        "tag:yaml.org,2002:map", value.items(), flow_style=isinstance(value, _OneLine)
    )


def _represent_flow(dumper: yaml.SafeDumper, value: Any) -> yaml.Node:
    if isinstance(value, dict):
        return dumper.represent_mapping("tag:yaml.org,2002:map", value.items(), flow_style=True)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=True)


_SpecDumper.add_representer(list, _represent_list)
_SpecDumper.add_representer(dict, _represent_dict)
_SpecDumper.add_representer(_OneLine, _represent_dict)
_FlowDumper.add_representer(list, _represent_flow)
_FlowDumper.add_representer(dict, _represent_flow)
