"""The expression language's parser: tokens to a tree of tuples (a Pratt parser), nesting bounded."""

from __future__ import annotations

from .functions import ANY, FUNCTION_LIST, FUNCTIONS
from .tokens import KEYWORDS, LITERALS, MAX_DEPTH, MAX_TEXT, Token, describe, error, syntax, tokenize
from .values import did_you_mean

#
# Nodes are tuples (kind, start, end, *fields), start and end being offsets in the string value:
#   ("const", s, e, value)  ("name", s, e, name)  ("list", s, e, items)  ("unary", s, e, op, operand)
#   ("not", s, e, operand)  ("if", s, e, then, condition, other)  ("index", s, e, target, index, bracket)
#   ("call", s, e, function, args, keywords), and (kind, s, e, first, rest) for the kinds "arith",
#   "compare", "and" and "or", rest holding (op, op_start, op_end, operand). Left-associative chains
#   are gathered flat, so that a long 1 + 1 + ... is a wide node, not a deep one.

_NOT_BP, _UNARY_BP = 4, 8
_INFIX_BP = {"if": 1, "or": 2, "and": 3, "+": 6, "-": 6, "*": 7, "/": 7, "//": 7, "%": 7, "**": 9}
_INFIX_BP |= dict.fromkeys(["not", "in", "==", "!=", "<", "<=", ">", ">="], 5)
_INFIX_BP |= dict.fromkeys(["[", "(", "."], 10)
_CHAIN_KINDS = {2: "or", 3: "and", 5: "compare", 6: "arith", 7: "arith"}


def _bp(tok: Token) -> int:
    """The binding power of ``tok`` as an infix operator (0: it is not one)."""
    return _INFIX_BP.get(tok.text, 0) if tok.kind in ("op", "name") else 0


class Parser:
    """A Pratt parser over one expression's tokens, following at most MAX_DEPTH nested levels."""

    def __init__(self, tokens: list[Token]):
        self.tokens, self.pos, self.depth = tokens, 0, -1  # the whole expression is level 0
        self.names: set[str] = set()

    def peek(self, ahead: int = 0) -> Token:
        return self.tokens[min(self.pos + ahead, len(self.tokens) - 1)]

    def take(self) -> Token:
        tok = self.peek()
        self.pos = min(self.pos + 1, len(self.tokens) - 1)
        return tok

    def at(self, text: str, ahead: int = 0) -> bool:
        tok = self.peek(ahead)
        return tok.kind in ("op", "name") and tok.text == text

    def expect(self, text: str) -> Token:
        if not self.at(text):
            raise syntax(f"expected '{text}', found {describe(self.peek())}", self.peek())
        return self.take()

    def enter(self) -> None:
        """Count one more nested level: the parser and the evaluator recurse once per level."""
        self.depth += 1
        if self.depth > MAX_DEPTH:
            tok = self.peek()
            raise error("expr-limit", f"expression nested over {MAX_DEPTH} levels deep", tok.start, tok.end)

    def expression(self, min_bp: int = 0) -> tuple:
        """Parse an expression whose operators bind tighter than ``min_bp``."""
        entry = self.depth
        self.enter()
        left = self.prefix(min_bp)
        while (bp := _bp(self.peek())) > min_bp:
            left = self.infix(left, bp)
        self.depth = entry
        return left

    def prefix(self, min_bp: int) -> tuple:
        tok = self.take()
        if tok.kind in ("num", "str"):
            return ("const", tok.start, tok.end, tok.value)
        if tok.kind == "name" and tok.text in LITERALS:
            return ("const", tok.start, tok.end, LITERALS[tok.text])
        if tok.kind == "name" and tok.text == "not":
            if min_bp > _NOT_BP:  # as in Python, a == not b needs parentheses
                raise syntax("'not' needs parentheses here", tok, "write (not x)")
            operand = self.expression(_NOT_BP)
            return ("not", tok.start, operand[2], operand)
        if tok.kind == "name" and tok.text not in KEYWORDS:
            if self.at("("):
                return self.call(tok)
            self.names.add(tok.text)
            return ("name", tok.start, tok.end, tok.text)
        if tok.kind == "op" and tok.text in ("-", "+"):
            operand = self.expression(_UNARY_BP)
            return ("unary", tok.start, operand[2], tok.text, operand)
        if tok.kind == "op" and tok.text == "(":
            inner = self.expression()
            self.expect(")")
            return inner
        if tok.kind == "op" and tok.text == "[":
            items = self.arguments("]")
            return ("list", tok.start, self.expect("]").end, tuple(items))
        raise syntax(f"expected a value, found {describe(tok)}", tok)

    def arguments(self, closing: str, keywords: dict[str, tuple] | None = None) -> list[tuple]:
        """Comma-separated expressions up to ``closing`` (a trailing comma allowed), and ``k=v`` ones."""
        items: list[tuple] = []
        while not self.at(closing):
            tok = self.peek()
            if keywords is not None and tok.kind == "name" and self.at("=", 1):
                self.pos += 2
                if tok.text in keywords:
                    raise error("expr-type", f"'{tok.text}' is given twice", tok.start, tok.end)
                keywords[tok.text] = (tok, self.expression())
            elif keywords:
                raise syntax("a positional argument after a keyword argument", tok)
            else:
                items.append(self.expression())
            if not self.at(","):
                break
            self.take()
        return items

    def infix(self, left: tuple, bp: int) -> tuple:
        tok = self.take()
        if tok.text == "if":
            condition = self.expression(bp)
            if not self.at("else"):
                raise syntax(f"expected 'else', found {describe(self.peek())}", self.peek())
            self.take()
            other = self.expression(bp - 1)  # right-associative: a if b else c if d else e
            return ("if", left[1], other[2], left, condition, other)
        if tok.text == "**":  # right-associative, and its right side may carry a sign: 2 ** -1
            exponent = self.expression(_UNARY_BP)
            return ("arith", left[1], exponent[2], left, (("**", tok.start, tok.end, exponent),))
        if tok.text == "[":
            self.enter()  # xs[0][0]... nests, though this loop reads it
            if self.at("]"):
                raise syntax("expected an index, found ']'", self.peek())
            index = self.expression()
            return ("index", left[1], self.expect("]").end, left, index, tok.start)
        if tok.text == "(":
            raise error("expr-type", "only the functions can be called", tok.start, tok.end, FUNCTION_LIST)
        if tok.text == ".":
            raise syntax("unexpected '.'", tok)
        rest = []
        while True:  # a left-associative group, gathered flat
            op, end = tok.text, tok.end
            if op == "not":
                op, end = "not in", self.expect("in").end
            operand = self.expression(bp)
            rest.append((op, tok.start, end, operand))
            if _bp(self.peek()) != bp:
                return (_CHAIN_KINDS[bp], left[1], operand[2], left, tuple(rest))
            tok = self.take()

    def call(self, name: Token) -> tuple:
        if name.text not in FUNCTIONS:
            hint = did_you_mean(name.text, FUNCTIONS) or FUNCTION_LIST
            raise error("expr-unknown-name", f"unknown function '{name.text}'", name.start, name.end, hint)
        _, least, most, parameters = FUNCTIONS[name.text]
        self.take()  # "("
        keywords: dict[str, tuple] = {}
        args = self.arguments(")", keywords)
        end = self.expect(")").end
        for key, (tok, _) in keywords.items():
            if key not in parameters or parameters.index(key) < len(args):
                problem = "got two values for" if key in parameters else "takes no argument"
                raise error("expr-type", f"{name.text}() {problem} '{key}'", tok.start, tok.end)
        count = len(args) + len(keywords)
        if not least <= count <= most:
            wanted = f"{least} to {most}" if most < ANY else f"at least {least}"
            wanted = str(least) if least == most else wanted
            message = f"{name.text}() takes {wanted} argument(s), not {count}"
            raise error("expr-type", message, name.start, end)
        named = tuple((key, node) for key, (_, node) in keywords.items())
        return ("call", name.start, end, name.text, tuple(args), named)


def parse_expression(text: str, dollar: int, close: int) -> tuple[tuple, set[str]]:
    """Parse the expression in ``text[dollar + 2:close]``: its tree and its free names."""
    if close - dollar - 2 > MAX_TEXT:
        raise error("expr-limit", f"expression over {MAX_TEXT:,} characters", dollar, dollar + 2)
    if not text[dollar + 2 : close].strip():
        hint = "write an expression between the braces"
        raise error("expr-syntax", "empty expression '${}'", dollar, close + 1, hint)
    parser = Parser(tokenize(text, dollar + 2, close))
    node = parser.expression()
    if (tok := parser.peek()).kind != "end":
        raise syntax(f"unexpected {describe(tok)}: expected an operator or the end", tok)
    return node, parser.names
