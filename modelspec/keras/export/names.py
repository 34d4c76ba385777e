"""Names in a written spec: valid (letters, digits, '_' and '-'), unique in their scope, deterministic."""

from __future__ import annotations

import re

from ...spec.models import NAME_PATTERN

VALID_NAME = re.compile(NAME_PATTERN)


class Names:
    """Names unique in one scope, made valid (letters, digits, '_' and '-') deterministically."""

    def __init__(self, taken: set[str] | None = None):
        self.taken: set[str] = set(taken or ())

    def take(self, wanted: str, fallback: str = "layer") -> str:
        base = valid_name(wanted, fallback)
        name, k = base, 1
        while name in self.taken:
            name = f"{base}_{k}"
            k += 1
        self.taken.add(name)
        return name


def valid_name(name: str, fallback: str = "layer") -> str:
    text = re.sub(r"[^A-Za-z0-9_\-]", "_", str(name))
    if not text:
        return fallback
    if not re.match(r"[A-Za-z_]", text):
        text = f"_{text}"
    return text


def name_in_model(name: str, instance: str) -> str:
    """A layer's name inside its model, without what it shares with the model's name.

    ``convnext_tiny_downsampling_layernorm_0`` in ``convnext_tiny_downsampling_block_0`` is ``layernorm``.
    """
    seps = "_-./"
    i = 0
    while i < min(len(name), len(instance)) and name[i] == instance[i]:
        i += 1
    if i < len(instance) and not (i > 0 and instance[i - 1] in seps):
        while i > 0 and name[i - 1] not in seps:
            i -= 1
    rest = name[i:]
    j = 0
    while j < min(len(rest), len(instance)) and rest[-1 - j] == instance[-1 - j]:
        j += 1
    if j and j < len(rest):
        k = len(rest) - j
        while k < len(rest) and rest[k] not in seps:
            k += 1
        rest = rest[:k]
    rest = rest.strip(seps)
    return rest or name
