"""The spec format's expression language: ``${...}`` inside string values.

A string that is wholly ``"${expr}"`` becomes the value of ``expr`` with its
type (an int stays an int, a list stays a list); ``${...}`` inside a longer
string is interpolated as text (``"conv${i}_bn"``), and ``$${`` is a literal
``${``. The language is small and total: literals (numbers, quoted strings,
``true false null``, lists), names, ``+ - * / // % **``, comparisons,
``and or not``, ``a if c else b``, indexing ``xs[i]`` and the functions
``min max abs round floor ceil int float len make_divisible``.

It is tokenized, parsed (a Pratt parser) and evaluated (a tree walk) here,
never by ``eval``. Every size is bounded and checked *before* the work is
done, so a hostile spec gets an :class:`ExprError` at the column of the
fault, never a hang, a ``RecursionError`` or a large allocation.

The modules, in the order a string value goes through them: :mod:`.tokens`,
:mod:`.parser`, :mod:`.values` and :mod:`.functions` (what the operators and calls
do), :mod:`.evaluate`.
"""

from .evaluate import Template, evaluate, expression_names, has_expression, parse
from .tokens import MAX_DEPTH, MAX_INT, MAX_ITEMS, MAX_STR, MAX_TEXT, ExprError

__all__ = [
    "MAX_DEPTH",
    "MAX_INT",
    "MAX_ITEMS",
    "MAX_STR",
    "MAX_TEXT",
    "ExprError",
    "Template",
    "evaluate",
    "expression_names",
    "has_expression",
    "parse",
]
