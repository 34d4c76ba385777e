"""A folded group's layer names as ``name:`` templates, so the rebuilt layers keep their Keras names.

The units of a group are equal up to names, and their names follow a
pattern the templates write down:

- a prefix every layer of a unit shares (``conv2_block1_``), the same for all
  units (text) or not (the block's ``prefix`` param);
- after it, text with numbers: a number the same in every unit stays text, a
  number that differs is a param (``activation_${activation}``), and a number
  that differs by a constant from one already a param is written from it
  (Keras's own names count up through a unit: ``conv2d_${conv2d + 1}``);
- a name whose text differs between units otherwise is a param of its own.

Prefixes are hints, not requirements: a unit of Keras-made names
(``conv2d_12``, ``activation_12``, ``mixed1``) has none and folds through its
numbers.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

from ...spec.models import RESERVED_KEYS
from .names import Names, valid_name
from .rules import NUMBER

SEPARATORS = "_-"


class Params:
    """A block's params: name -> the value each unit gives it, names unique and free of reserved words."""

    def __init__(self) -> None:
        self.values: dict[str, list] = {}
        self.taken = set(RESERVED_KEYS) | {"i", "n", "x", "prefix"}

    def new(self, wanted: str, values: list) -> str:
        base = {"repeat": "repeats"}.get(wanted, valid_name(wanted, "p"))
        base = f"{base}_id" if base in self.taken and base in RESERVED_KEYS else base  # block -> block_id
        for name in (base, *(f"{base}_{k}" for k in range(1, 10_000))):
            if name not in self.taken:
                break
        self.taken.add(name)
        self.values[name] = values
        return name

    def numbers(self) -> dict[str, list[int]]:
        return {p: v for p, v in self.values.items() if all(type(x) is int for x in v)}


@dataclass
class NameTemplates:
    """How a group's units name their layers.

    Attributes:
        prefixes: Each unit's prefix ('' for none).
        templates: For each layer of the block, its ``name:`` (None for an
            operation, which Keras names).
        keys: For each layer of the block, its key there.
        whole: How many names are params whole (no pattern in them).
    """

    prefixes: list[str]
    templates: list[str | None]
    keys: list[str]
    whole: int = 0


def common_prefix(names: list[str | None]) -> str:
    """The names' common prefix, up to and with its last separator ('' when none); None counts for nothing.

    A single name's prefix leaves out its last part (``conv1_bn`` -> ``conv1_``).
    """
    given = [n for n in names if n is not None]
    if not given:
        return ""
    prefix = given[0] if len(given) > 1 else given[0][:-1]
    for name in given[1:]:
        while not name.startswith(prefix):
            prefix = prefix[:-1]
    cut = max(prefix.rfind(s) for s in SEPARATORS)
    return prefix[: cut + 1]


def numbered_prefix(names: list[str | None]) -> str:
    """The names' common prefix up to its last part with a number: ``block2a_expand_`` -> ``block2a_``.

    A name's own last part counts when it is a number (``conv_dw_1`` -> ``conv_dw_1_``, which
    ``conv_dw_1_bn`` keeps), not when it is a word with a digit (``block4a_dwconv2`` -> ``block4a_``).
    """
    given = [n for n in names if n is not None]
    if not given:
        return ""
    common = common_prefix([n + "_" for n in given]) if len(given) > 1 else given[0] + "_"
    parts = re.findall(r"[^_-]*[_-]", common)
    if parts and common[:-1] in given and not parts[-1][:-1].isdigit():
        parts = parts[:-1]
    numbered = [k for k, part in enumerate(parts) if NUMBER.search(part)]
    return "".join(parts[: numbered[-1] + 1]) if numbered else ""


def unit_prefix(names: list[str | None]) -> str:
    """The prefix of a unit's names: the one all share, else the longest three in four share, else ''."""
    given = [n for n in names if n is not None]
    prefix = common_prefix(given)
    if prefix and all(len(n) > len(prefix) for n in given):
        return prefix
    best = ""
    if len(given) >= 3:
        for name in given:
            for cut in (k + 1 for k, c in enumerate(name) if c in SEPARATORS):
                if cut > len(best):
                    shared = sum(n.startswith(name[:cut]) and len(n) > cut for n in given)
                    if shared * 4 >= len(given) * 3:
                        best = name[:cut]
    return best


def name_templates(names: list[list[str | None]], params: Params) -> NameTemplates:
    """The templates of a group whose unit ``m`` names its layers ``names[m]`` (params added to ``params``)."""
    prefixes = [unit_prefix(n) for n in names]
    count = len(names[0])
    uses = [
        all(n[k] is not None and n[k].startswith(p) and len(n[k]) > len(p) for n, p in zip(names, prefixes))
        for k in range(count)
    ]
    if not any(uses) or not all(prefixes):
        prefixes = [""] * len(names)
        uses = [False] * count
    prefix = "${prefix}"
    if any(uses) and len(set(prefixes)) > 1:
        params.values["prefix"] = list(prefixes)
    else:
        prefix = prefixes[0]
    keys = Names({"x", "y", "z"})
    whole = 0
    templates: list[str | None] = []
    local: list[str] = []
    for k in range(count):
        if names[0][k] is None:  # an operation
            templates.append(None)
            local.append("")
            continue
        use = uses[k] and bool(prefixes[0])
        texts = [n[k][len(p) :] if use else n[k] for n, p in zip(names, prefixes)]
        template, key = _template(texts, params, [n[k] for n in names])
        whole += key is None
        key = key or bare_name(names[0][k])
        templates.append((prefix if use else "") + template)
        local.append(key)
    taken = [keys.take(key or "layer") if templates[k] is not None else "" for k, key in enumerate(local)]
    return NameTemplates(prefixes, templates, taken, whole)


def bare_name(name: str) -> str:
    """A name without its counter: ``average_pooling2d_1`` -> ``average_pooling2d``."""
    return re.sub(r"[_-]+", "_", re.sub(r"[_-]?\d+$", "", name)).strip("_-") or "layer"


def _template(texts: list[str], params: Params, whole: list[str]) -> tuple[str, str | None]:
    """One layer's name after its prefix, as a template, and a key for it (None: the name is a param whole)."""
    found = _numbered(texts, params, whole[0])
    if found is None:
        return "${" + params.new(f"{bare_name(whole[0])}_name", list(whole)) + "}", None
    return found[0], found[1] or bare_name(whole[0])


EXPRESSION = re.compile(r"\$\{[^}]*\}")


def text_template(values: list[str], params: Params) -> str | None:
    """Spec strings that differ only in the numbers of their text, as one template (None when not so).

    Their ``${...}`` parts must be the same in every unit (``s1_u${i + 2}_``, ``s2_u${i + 2}_`` ->
    ``s${s}_u${i + 2}_``): they are evaluated where the template is, in the scope they were written for.
    """
    if any("$$" in v for v in values) or len({tuple(EXPRESSION.findall(v)) for v in values}) != 1:
        return None
    expressions = EXPRESSION.findall(values[0])
    segments = [EXPRESSION.split(v) for v in values]
    out = ""
    for s, texts in enumerate(zip(*segments)):
        texts = list(texts)
        if len(set(texts)) > 1:
            found = _numbered(texts, params, texts[0])
            if found is None:
                return None
            out += found[0]
        else:
            out += texts[0]
        out += expressions[s] if s < len(expressions) else ""
    return out


def _numbered(texts: list[str], params: Params, whole: str) -> tuple[str, str] | None:
    """Texts of one skeleton as a template whose differing numbers are params, and a key; else None."""
    skeleton = NUMBER.sub("#", texts[0])
    numbers = [[int(t) for t in NUMBER.findall(t)] for t in texts]
    zeros = any(t != str(int(t)) for t in NUMBER.findall(texts[0]))
    if any(NUMBER.sub("#", t) != skeleton for t in texts) or (zeros and len({*map(tuple, numbers)}) > 1):
        return None
    parts = NUMBER.split(texts[0])
    out, key = parts[0], parts[0]
    for slot, text in enumerate(parts[1:]):
        column = [n[slot] for n in numbers]
        if len(set(column)) == 1:
            out += NUMBER.findall(texts[0])[slot]
            key += NUMBER.findall(texts[0])[slot]
        else:
            out += "${" + _number(column, params, whole, slot - len(parts) + 1) + "}"
        out += text
        key += text
    return out, re.sub(r"[_-]+", "_", key).strip("_-")


def _number(column: list[int], params: Params, text: str, slot: int) -> str:
    """A number that differs between units: from a param it keeps a distance to, else a new param.

    The param is named after the text before the number in the whole name (``text``, its ``slot``-th
    number counted from the end when negative).
    """
    for param, known in params.numbers().items():
        if len(known) == len(column):
            gaps = {c - b for c, b in zip(column, known)}
            if len(gaps) == 1:
                gap = gaps.pop()
                return param if gap == 0 else f"{param} + {gap}" if gap > 0 else f"{param} - {-gap}"
    spans = [m.start() for m in NUMBER.finditer(text)]
    tokens = re.split(r"[_-]+", re.sub(r"[^A-Za-z0-9]+$", "", text[: spans[slot]]))
    # The words the number counts (max_pooling2d_12: max_pooling2d; mixed3: mixed), or `id` after a number
    # (normal_conv_1_12: the twelfth of something else).
    words = list(itertools.takewhile(lambda t: t and not t.isdigit(), reversed(tokens)))
    word = "_".join(reversed(words)) or "id"
    return params.new(re.sub(r"^\d+", "", word) or "id", list(column))
