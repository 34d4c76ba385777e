"""Writing specs back as YAML people would write: block style for structure, flow style for short leaves."""

from __future__ import annotations

from typing import Any

import yaml


def dump_yaml(data: Any) -> str:
    """YAML text of spec data, keys in their given order, short entries on one line."""
    return yaml.dump(data, Dumper=_SpecDumper, sort_keys=False, allow_unicode=True, width=140)


class _SpecDumper(yaml.SafeDumper):
    """Block style for the document's structure, flow style for short leaves."""


def _is_leaf(value: Any, depth: int = 0) -> bool:
    """A scalar, or a list of scalars or (once) of such lists: ``[[0, 1], [0, 1]]`` is a leaf too."""
    if isinstance(value, list):
        return depth < 2 and all(_is_leaf(v, depth + 1) for v in value)
    return not isinstance(value, dict)


def _represent_list(dumper: yaml.SafeDumper, value: list) -> yaml.Node:
    flow = _is_leaf(value) and len(repr(value)) <= 80
    return dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=flow)


def _represent_dict(dumper: yaml.SafeDumper, value: dict) -> yaml.Node:
    # The length as YAML writes it (keys unquoted): a block layer with its name and params stays one line.
    flow = all(_is_leaf(v) for v in value.values()) and len(repr(value)) - 2 * len(value) <= 120
    return dumper.represent_mapping("tag:yaml.org,2002:map", value.items(), flow_style=flow)


_SpecDumper.add_representer(list, _represent_list)
_SpecDumper.add_representer(dict, _represent_dict)
