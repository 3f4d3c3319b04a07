"""A hand-written parser for ``.cat`` text, beside the LALR one, for speed.

``parse(text, file)`` returns the :class:`catnet.ast.Module` that
:func:`catnet.syntax.parse` returns for the same text: the same nodes, the
same spans (line, column, end line, end column and offsets of each node's
first to last token, brackets and keywords included) and the same comments.
It exists because lark's per-token cost (contextual lexer, LALR automaton,
parse tree, tree walk) dominates checking a long file: a file with 100,000
boxes takes seconds to parse there and a fraction of a second here.

Lark stays the reference and the only error reporter.  This parser knows no
error messages: on a syntax error, on any input near a limit of
:mod:`catnet.syntax` (brackets or AST nesting deeper than :data:`DEPTH`,
numbers longer than ``MAX_DIGITS`` or not finite, more than
:data:`SEPARATORS` commas and ``⊗`` in one declaration), on a keyword used
as a name, on any character outside comments and strings that is not ASCII
(the operators ``→ ⊗ ⟨ ⟩ × ⊕`` aside), and on ``RecursionError``, it raises
:class:`Bail`, and the caller parses the text with lark as before.  So a
text reaches an AST here only if lark accepts it too, and errors never
change.

Why one maximal-munch tokenizer agrees with lark's contextual lexer on every
text accepted here: where the grammar accepts the token read, lark's
parser state accepts it too, and lark's lexer then reads the same token,
because the grammar's overlapping terminals are ordered longest first
(``->`` before ``-``, ``>>`` before ``>``), a keyword is a keyword wherever
the grammar accepts it and a name where it does not (names that spell a
keyword make this parser bail), and no parser state accepts both ``-`` and a
signed number (``SIGNED``), so ``-1`` is one token exactly where a value
starts (tests/test_fastparse.py checks that last fact on lark's tables).
"""

from __future__ import annotations

import math
import re
from bisect import bisect_right
from collections.abc import Callable
from itertools import accumulate, chain, repeat

from . import ast as A
from . import collector, syntax
from .ir import Span

#: Brackets nest at most this deep, and the AST at most this deep, on the
#: fast path (lark's limits are 128 and 100): deeper input goes to lark.
DEPTH = 64

#: Commas and ``⊗`` in one declaration, at most: lark refuses 16,384 side
#: by side (E0310), and counting per declaration over-counts safely.
SEPARATORS = 8192


class Bail(Exception):
    """This parser declines the text; lark parses it (and reports its errors)."""


#: A token, after any whitespace: a comment, a name, a number, a string, an
#: operator, any other single character (which makes the parser bail), or
#: the end of the text.
_TOKEN = re.compile(
    r"([ \t\f\n]*)"
    r'(#[^\n]*|[A-Za-z_][A-Za-z0-9_]*|[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?|"(?:[^"\\\n]|\\.)*"'
    r"|->|>>|[;@⊗→<>⟨⟩()\[\]{},=:+\-*/×⊕]|[\s\S]|\Z)"
)

# Token kinds: an operator's kind is its ASCII spelling (`;` for `>>` too).
_NAME, _NUMBER, _STRING, _COMMENT, _END = "n", "0", '"', "#", "$"

_KIND: dict[str, str] = {c: _NAME for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_"}
_KIND.update({c: _NUMBER for c in "0123456789"})
_KIND.update({'"': _STRING, "#": _COMMENT})
_OPERATOR: dict[str, str] = {c: c for c in ";@<>()[]{},=:+-*/×⊕"}
_OPERATOR.update({"->": "->", "→": "->", ">>": ";", "⊗": "@", "⟨": "<", "⟩": ">"})

_NEWLINE = re.compile("\n")

#: What may follow a name in a reference: size arguments, call arguments.
_CALL = frozenset({"[", "("})

_DELTA = {"(": 1, "[": 1, "{": 1, "<": 1, ")": -1, "]": -1, "}": -1, ">": -1}

#: Words that lark reads as keywords where the grammar accepts them there.
KEYWORDS = A.KEYWORDS | {"in"}


def parse(text: str, file: str = "<string>", lo: int = 0, hi: int | None = None, line: int = 1,
          line_start: int = 0) -> A.Module:
    """The module in ``text[lo:hi]``, with spans in the whole text, or :class:`Bail`.

    ``line`` is the line ``lo`` is on and ``line_start`` the offset that
    line starts at.  ``text`` has ``\\n`` line ends (a ``\\r`` bails).
    """
    hi = len(text) if hi is None else hi
    # The collector's passes over the many new objects would take as long as the parse itself.
    with collector.paused():
        try:
            return _Parser(text, file, lo, hi, line, line_start).module()
        except RecursionError:
            raise Bail("nested too deeply for this parser") from None
        except IndexError:  # read past the end token: a syntax error
            raise Bail("syntax error") from None


class _Parser:
    """Recursive descent over a token list, one method per grammar rule.

    Methods that build an expression, type, size, value or representation
    return it with its depth in the AST as lark's tree walker counts it.
    ``self.i`` is the next token; a node's span runs from the token at
    which its method started to the last token it consumed.
    """

    def __init__(self, text: str, file: str, lo: int, hi: int, line: int, line_start: int) -> None:
        self.file = file
        # The limits as lark's path has them now, and the fast path's own below them.
        self.depth = min(DEPTH, syntax.MAX_DEPTH, syntax.MAX_NESTING)
        self.digits = syntax.MAX_DIGITS
        self.separators = min(SEPARATORS, syntax.MAX_WIRES - 1)
        pairs = _TOKEN.findall(text, lo, hi)
        while pairs and not pairs[-1][1]:
            pairs.pop()  # the end of the text
        texts = [tok for _, tok in pairs]
        kinds = list(map(_Kinds().__getitem__, texts))
        if None in kinds:
            raise Bail("unexpected character")
        # Each token's offset: the lengths of all the whitespace and tokens before it.
        starts = list(accumulate(map(len, chain.from_iterable(pairs)), initial=lo))[1::2]
        # Where each line starts, for the line and column of an offset (see `span`).
        self.newlines = [m.start() for m in _NEWLINE.finditer(text, lo, hi)]
        self.line_starts = [line_start] + [n + 1 for n in self.newlines]
        self.line = line
        self.comments: list[A.Comment] = []
        if _COMMENT in kinds:
            for i, kind in enumerate(kinds):
                if kind is _COMMENT:
                    at, column = self.position(starts[i])
                    self.comments.append(A.Comment(texts[i].rstrip(), at, column))
            keep = [i for i, kind in enumerate(kinds) if kind is not _COMMENT]
            kinds, texts, starts = [kinds[i] for i in keep], [texts[i] for i in keep], [starts[i] for i in keep]
        if max(accumulate(map(_DELTA.get, kinds, repeat(0))), default=0) > self.depth:
            raise Bail("brackets nested too deeply")
        # The end token, twice, so that a look two tokens ahead never fails.
        kinds += [_END, _END]
        texts += ["", ""]
        starts += [hi, hi]
        self.k, self.t, self.p = kinds, texts, starts
        self.i = 0
        self.span = _spans(file, texts, starts, self.newlines, self.line_starts, line)

    def position(self, offset: int) -> tuple[int, int]:
        """The line and column of ``offset``."""
        n = bisect_right(self.newlines, offset)
        return self.line + n, offset - self.line_starts[n] + 1

    # -- helpers

    def expect(self, kind: str) -> int:
        """Consume a token of ``kind``; its index."""
        i = self.i
        if self.k[i] != kind:
            raise Bail(f"expected {kind!r}")
        self.i = i + 1
        return i

    def name(self) -> str:
        """Consume a name that does not spell a keyword."""
        i = self.i
        text = self.t[i]
        if self.k[i] != _NAME or text in KEYWORDS:
            raise Bail("expected a name")
        self.i = i + 1
        return text

    def word(self, keyword: str) -> bool:
        """Consume ``keyword`` if it is next."""
        i = self.i
        if self.k[i] == _NAME and self.t[i] == keyword:
            self.i = i + 1
            return True
        return False

    def number(self, i: int, text: str | None = None) -> int | float:
        """The value of number token ``i`` (``text``: its spelling with a sign), as lark's walker reads it."""
        text = self.t[i] if text is None else text
        if len(text) > self.digits:
            raise Bail("number too long")
        if "." in text or "e" in text or "E" in text:
            value = float(text)
            if not math.isfinite(value):
                raise Bail("number not finite")
            return value
        return int(text)

    def deeper(self, depth: int) -> int:
        """One level below ``depth``, or :class:`Bail` past :data:`DEPTH`."""
        if depth >= self.depth:
            raise Bail("nested too deeply")
        return depth + 1

    # -- declarations

    def module(self) -> A.Module:
        decls: list[A.Decl] = []
        k, t = self.k, self.t
        rules = {"import": self.import_decl, "object": self.object_decl, "bundle": self.bundle_decl,
                 "shared": self.shared_decl, "main": self.main_decl, "morphism": self.morphism_decl}
        while k[self.i] != _END:
            first = self.i
            rule = rules.get(t[first]) if k[first] == _NAME else None
            if rule is None:
                raise Bail("expected a declaration")
            self.i = first + 1
            decls.append(rule(first))
            if _separators(k, first, self.i) > self.separators:
                raise Bail("too many parts side by side")
        return A.Module(tuple(decls), tuple(self.comments))

    def import_decl(self, first: int) -> A.Import:
        i = self.expect(_STRING)
        return A.Import(syntax._unquote(self.t[i]), self.span(first, i))

    def object_decl(self, first: int) -> A.ObjectDecl:
        name = self.name()
        self.expect("=")
        ty, _ = self.type_()
        group = rep = None
        if self.word("under"):
            group = self.group()
            if self.word("as"):
                rep = self.rep()[0][0]
        return A.ObjectDecl(name, ty, group, self.span(first, self.i - 1), rep)

    def bundle_decl(self, first: int) -> A.BundleDecl:
        name = self.name()
        self.expect("=")
        fiber, _ = self.type_()
        if not self.word("over"):
            raise Bail("expected `over`")
        base, _ = self.type_()
        total = None
        if self.word("in"):
            total, depth = self.type_()
            self.deeper(depth)  # `total` is a node of its own in lark's tree
        return A.BundleDecl(name, fiber, base, total, self.span(first, self.i - 1))

    def shared_decl(self, first: int) -> A.SharedDecl:
        name = self.name()
        dims = self.dim_params() if self.k[self.i] == "[" else ()
        self.expect("=")
        body, _ = self.expr()
        return A.SharedDecl(name, body, self.span(first, self.i - 1), dims)

    def main_decl(self, first: int) -> A.MainDecl:
        name = self.name()
        return A.MainDecl(name, self.span(first, first + 1))

    def morphism_decl(self, first: int) -> A.MorphismDecl | A.WiringDecl:
        at = self.i
        name = self.name()
        name_span = self.span(at, at)
        dims = self.dim_params() if self.k[self.i] == "[" else ()
        params: tuple[A.Param, ...] | None = self.params() if self.k[self.i] == "(" else None
        if self.k[self.i] == ":":
            self.i += 1
            dom, _ = self.type_()
            self.expect("->")
            cod, _ = self.type_()
            claim = self.claim()
            self.expect("=")
            body, _ = self.expr()
            return A.MorphismDecl(name, dims, params or (), dom, cod, body, self.span(first, self.i - 1), name_span, claim)
        if params is None:
            raise Bail("expected `:` or parameters")
        self.expect("->")
        cod, _ = self.type_()
        claim = self.claim()
        self.expect("{")
        stmts: list[A.Stmt] = []
        while self.k[self.i] != "}":
            stmts.append(self.statement())
        self.i += 1
        return A.WiringDecl(name, dims, params, cod, tuple(stmts), self.span(first, self.i - 1), name_span, claim)

    def dim_params(self) -> tuple[str, ...]:
        self.expect("[")
        names = [self.name()]
        while self.k[self.i] == ",":
            self.i += 1
            names.append(self.name())
        self.expect("]")
        return tuple(names)

    def params(self) -> tuple[A.Param, ...]:
        self.expect("(")
        out: list[A.Param] = []
        if self.k[self.i] != ")":
            out.append(self.param())
            while self.k[self.i] == ",":
                self.i += 1
                out.append(self.param())
        self.expect(")")
        return tuple(out)

    def param(self) -> A.Param:
        first = self.i
        name = self.name()
        self.expect(":")
        dom, _ = self.type_()
        cod = None
        if self.k[self.i] == "->":
            self.i += 1
            cod, _ = self.type_()
        return A.Param(name, dom, cod, self.span(first, self.i - 1))

    def claim(self) -> A.Claim | None:
        first = self.i
        if self.word("equivariant"):
            kind = "equivariant"
        elif self.word("invariant"):
            kind = "invariant"
        else:
            return None
        if not self.word("under"):
            raise Bail("expected `under`")
        group = self.group()
        return A.Claim(kind, group, self.span(first, self.i - 1))

    # -- groups and representations: canonical text

    def group(self) -> str:
        factors = [self.gfactor()]
        while self.k[self.i] in ("×", "*"):
            self.i += 1
            factors.append(self.gfactor())
        return " × ".join(factors)

    def gfactor(self) -> str:
        name = self.name()
        if self.k[self.i] != "(":
            return name
        self.i += 1
        i = self.expect(_NUMBER)
        self.number(i)  # lark takes any length here; a long one bails all the same
        self.expect(")")
        return name + self.t[i]

    # A representation is ((text, precedence), depth): precedence 0 a sum,
    # 1 copies, 2 a tensor product, 3 an atom.

    def rep(self) -> tuple[tuple[str, int], int]:
        (text, prec), depth = self.rterm()
        while self.k[self.i] in ("+", "⊕"):
            self.i += 1
            (right, _), d = self.rterm()
            text, prec, depth = f"{text} + {right}", 0, self.deeper(max(depth, d))
        return (text, prec), depth

    def rterm(self) -> tuple[tuple[str, int], int]:
        value, depth = self.rprod()
        if self.k[self.i] != "*":
            return value, depth
        self.i += 1
        i = self.expect(_NUMBER)
        self.number(i)
        return (f"{value[0]} * {self.t[i]}", 1), self.deeper(depth)

    def rprod(self) -> tuple[tuple[str, int], int]:
        (text, prec), depth = self.ratom()
        while self.k[self.i] == "@":
            self.i += 1
            (right, rprec), d = self.ratom()
            left = text if prec >= 2 else f"({text})"
            text, prec, depth = f"{left} ⊗ {right if rprec >= 3 else f'({right})'}", 2, self.deeper(max(depth, d))
        return (text, prec), depth

    def ratom(self) -> tuple[tuple[str, int], int]:
        if self.k[self.i] == "(":
            self.i += 1
            value = self.rep()
            self.expect(")")
            return value
        name = self.name()
        if self.k[self.i] != "(":
            return (name, 3), 1
        self.i += 1
        args = [self.rarg()]
        while self.k[self.i] == ",":
            self.i += 1
            args.append(self.rarg())
        self.expect(")")
        return (f"{name}({', '.join(args)})", 3), 2

    def rarg(self) -> str:
        if self.k[self.i] == _NUMBER:
            self.number(self.i)
            self.i += 1
            return self.t[self.i - 1]
        return self.name()

    # -- objects

    def type_(self) -> tuple[A.TypeExpr, int]:
        first = self.i
        node, depth = self.tatom()
        if self.k[self.i] != "@":
            return node, depth
        factors = [node]
        while self.k[self.i] == "@":
            self.i += 1
            node, d = self.tatom()
            factors.append(node)
            depth = max(depth, d)
        return A.TProduct(tuple(factors), self.span(first, self.i - 1)), self.deeper(depth)

    def tatom(self) -> tuple[A.TypeExpr, int]:
        i = self.i
        kind = self.k[i]
        if kind == "(":
            self.i = i + 1
            value = self.type_()
            self.expect(")")
            return value
        if kind != _NAME:
            raise Bail("expected an object")
        text = self.t[i]
        if text == "R" or text == "Z":
            self.i = i + 1
            self.expect("[")
            shape: list[A.DimExpr] = []
            depth = 0
            if self.k[self.i] != "]":
                dim, depth = self.dim()
                shape.append(dim)
                while self.k[self.i] == ",":
                    self.i += 1
                    dim, d = self.dim()
                    shape.append(dim)
                    depth = max(depth, d)
            self.expect("]")
            return A.TSpace(text, tuple(shape), self.span(i, self.i - 1)), self.deeper(depth)
        if text == "I":
            self.i = i + 1
            return A.TUnit(self.span(i, i)), 1
        if text == "Seq":
            self.i = i + 1
            self.expect("[")
            length, depth = self.dim()
            self.expect("]")
            self.expect("(")
            item, d = self.type_()
            self.expect(")")
            return A.TSeq(length, item, self.span(i, self.i - 1)), self.deeper(max(depth, d))
        name = self.name()
        return A.TRef(name, self.span(i, i)), 1

    # -- sizes

    def binary(self, operand: Callable[[], tuple[object, int]], ops: tuple[str, ...],
               node_type: Callable[..., object]) -> tuple[object, int]:
        """``operand (op operand)*`` for one precedence level, left-associative: sizes, values, wire arithmetic."""
        first = self.i
        node, depth = operand()
        k = self.k
        while k[self.i] in ops:
            op = k[self.i]
            self.i += 1
            right, d = operand()
            node, depth = node_type(op, node, right, self.span(first, self.i - 1)), self.deeper(max(depth, d))
        return node, depth

    def dim(self) -> tuple[A.DimExpr, int]:
        return self.binary(self.dprod, ("+", "-"), A.DBin)  # type: ignore[return-value]

    def dprod(self) -> tuple[A.DimExpr, int]:
        return self.binary(self.datom, ("*",), A.DBin)  # type: ignore[return-value]

    def datom(self) -> tuple[A.DimExpr, int]:
        i = self.i
        kind = self.k[i]
        if kind == _NUMBER:
            self.i = i + 1
            return A.DNum(self.number(i), self.span(i, i)), 1
        if kind == "(":
            self.i = i + 1
            value = self.dim()
            self.expect(")")
            return value
        name = self.name()
        return A.DSym(name, self.span(i, i)), 1

    # -- point-free expressions

    def expr(self) -> tuple[A.Expr, int]:
        """``a ⊗ b ; c``: terms joined by `;`, each a product of unary terms.

        The hottest rule of a long file: a plain name is read here, and
        ``(a ; b) ; c`` is ``a ; b ; c``, as lark's walker flattens it.
        """
        k, t, span = self.k, self.t, self.span
        first = self.i
        parts: list[A.Expr] | None = None
        depth = 0
        while True:
            i = self.i
            if k[i] == _NAME and k[i + 1] not in _CALL and t[i] not in KEYWORDS:
                self.i = i + 1
                node: A.Expr = A.Ref(t[i], None, None, span(i, i))
                d = 1
            else:
                node, d = self.unary()
            if k[self.i] == "@":
                factors = [node]
                while k[self.i] == "@":
                    self.i += 1
                    node, e = self.unary()
                    factors.append(node)
                    d = max(d, e)
                node, d = A.Product(tuple(factors), span(i, self.i - 1)), self.deeper(d)
            if parts is None:
                if k[self.i] != ";":
                    return node, d
                parts = []
            if type(node) is A.Then:
                parts.extend(node.parts)
            else:
                parts.append(node)
            depth = max(depth, d)
            if k[self.i] != ";":
                return A.Then(tuple(parts), span(first, self.i - 1)), self.deeper(depth)
            self.i += 1

    def unary(self) -> tuple[A.Expr, int]:
        i = self.i
        k = self.k
        if k[i] == _NAME and k[i + 1] not in _CALL:
            text = self.t[i]
            if text not in KEYWORDS:  # a plain name, most of a long file: read it here
                self.i = i + 1
                return A.Ref(text, None, None, self.span(i, i)), 1
        # `repeat 2 repeat 3 f`, read without recursion.
        counts: list[tuple[int, int | float]] = []
        while self.word("repeat"):
            i = self.expect(_NUMBER)
            counts.append((i - 1, self.number(i)))
        node, depth = self.atom()
        for first, count in reversed(counts):
            node, depth = A.Repeat(count, node, self.span(first, self.i - 1)), self.deeper(depth)
        return node, depth

    def atom(self) -> tuple[A.Expr, int]:
        i = self.i
        kind = self.k[i]
        if kind == _NAME:
            text = self.t[i]
            if text == "inv":
                self.i = i + 1
                self.expect("(")
                body, depth = self.expr()
                self.expect(")")
                return A.Inv(body, self.span(i, self.i - 1)), self.deeper(depth)
            if text == "scan":
                self.i = i + 1
                self.expect("[")
                state, depth = self.type_()
                self.expect("]")
                self.expect("(")
                body, d = self.expr()
                self.expect(")")
                return A.Scan(state, body, self.span(i, self.i - 1)), self.deeper(max(depth, d))
            return self.ref()
        if kind == "(":
            self.i = i + 1
            value = self.expr()
            if self.k[self.i] == ")":
                self.i += 1
                return value
            self.expect(":")
            dom, d1 = self.type_()
            self.expect("->")
            cod, d2 = self.type_()
            self.expect(")")
            return A.Ascribe(value[0], dom, cod, self.span(i, self.i - 1)), self.deeper(max(value[1], d1, d2))
        if kind == "<":
            self.i = i + 1
            node, depth = self.expr()
            parts = [node]
            while self.k[self.i] == ",":
                self.i += 1
                node, d = self.expr()
                parts.append(node)
                depth = max(depth, d)
            if len(parts) < 2:
                raise Bail("a pairing has two parts or more")
            self.expect(">")
            return A.Pair(tuple(parts), self.span(i, self.i - 1)), self.deeper(depth)
        raise Bail("expected a morphism")

    def ref(self) -> tuple[A.Ref, int]:
        first = self.i
        name = self.name()
        k = self.k
        dims = args = None
        depth = 0
        if k[self.i] == "[":
            dims, depth = self.dim_args()
        if k[self.i] == "(":
            self.i += 1
            d = 0
            out: list[A.Arg] = []
            if k[self.i] != ")":
                arg, d = self.arg()
                out.append(arg)
                while k[self.i] == ",":
                    self.i += 1
                    arg, da = self.arg()
                    out.append(arg)
                    d = max(d, da)
            self.expect(")")
            args = tuple(out)
            depth = max(depth, self.deeper(d))  # the call's arguments are a node of lark's tree
        return A.Ref(name, dims, args, self.span(first, self.i - 1)), self.deeper(depth)

    def dim_args(self) -> tuple[tuple[A.DimExpr, ...], int]:
        self.expect("[")
        dim, depth = self.dim()
        dims = [dim]
        while self.k[self.i] == ",":
            self.i += 1
            dim, d = self.dim()
            dims.append(dim)
            depth = max(depth, d)
        self.expect("]")
        return tuple(dims), self.deeper(depth)

    def arg(self) -> tuple[A.Arg, int]:
        first = self.i
        name = None
        if self.k[first] == _NAME and self.k[first + 1] == "=":
            name = self.name()
            self.i += 1
        value, depth = self.value()
        return A.Arg(name, value, self.span(first, self.i - 1)), self.deeper(depth)

    def value(self) -> tuple[A.Value, int]:
        return self.binary(self.vprod, ("+", "-"), A.VBin)  # type: ignore[return-value]

    def vprod(self) -> tuple[A.Value, int]:
        return self.binary(self.vatom, ("*",), A.VBin)  # type: ignore[return-value]

    def vatom(self) -> tuple[A.Value, int]:
        literal = self.literal(signed=True)
        return literal if literal is not None else self.expr()

    def literal(self, signed: bool) -> tuple[A.Lit, int] | None:
        """A literal if one is next (``signed``: ``-1`` is one), else ``None``."""
        i = self.i
        kind = self.k[i]
        if kind == _NUMBER:
            self.i = i + 1
            return A.Lit(self.number(i), self.span(i, i)), 1
        if kind == _STRING:
            self.i = i + 1
            return A.Lit(syntax._unquote(self.t[i]), self.span(i, i)), 1
        if kind == _NAME and self.t[i] in ("true", "false"):
            self.i = i + 1
            return A.Lit(self.t[i] == "true", self.span(i, i)), 1
        if signed and kind == "-" and self.k[i + 1] == _NUMBER and self.p[i + 1] == self.p[i] + 1:
            # `-1` is one token (SIGNED) where a value starts, and `-` is no token there.
            self.i = i + 2
            return A.Lit(self.number(i + 1, "-" + self.t[i + 1]), self.span(i, i + 1)), 1
        return None

    # -- wiring form

    def statement(self) -> A.Stmt:
        first = self.i
        if self.word("return"):
            value, _ = self.wexpr()
            values = [value]
            while self.k[self.i] == ",":
                self.i += 1
                value, _ = self.wexpr()
                values.append(value)
            return A.Return(tuple(values), self.span(first, self.i - 1))
        names = [self.name()]
        while self.k[self.i] == ",":
            self.i += 1
            names.append(self.name())
        self.expect("=")
        value, _ = self.wexpr()
        return A.Assign(tuple(names), value, self.span(first, self.i - 1))

    def wexpr(self) -> tuple[A.WExpr, int]:
        return self.binary(self.wprod, ("+", "-"), A.WBin)  # type: ignore[return-value]

    def wprod(self) -> tuple[A.WExpr, int]:
        return self.binary(self.wunary, ("*", "/"), A.WBin)  # type: ignore[return-value]

    def wunary(self) -> tuple[A.WExpr, int]:
        # `- - x`, read without recursion; `-` applied to a number is the negative number.
        signs: list[int] = []
        while self.k[self.i] == "-":
            signs.append(self.i)
            self.i += 1
        node, depth = self.wterm()
        for first in reversed(signs):
            span = self.span(first, self.i - 1)
            if isinstance(node, A.WNum) and math.copysign(1, node.value) > 0:
                node = A.WNum(-node.value, span)
            else:
                node = A.WNeg(node, span)
            depth = self.deeper(depth)
        return node, depth

    def wterm(self) -> tuple[A.WExpr, int]:
        i = self.i
        kind = self.k[i]
        if kind == _NUMBER:
            self.i = i + 1
            return A.WNum(self.number(i), self.span(i, i)), 1
        if kind == "(":
            self.i = i + 1
            value = self.wexpr()
            self.expect(")")
            return value
        name = self.name()
        k = self.k
        if k[self.i] != "[" and k[self.i] != "(":
            return A.Wire(name, self.span(i, i)), 1
        dims, depth = self.dim_args() if k[self.i] == "[" else (None, 0)
        self.expect("(")
        args: list[A.WExpr | A.Lit | A.Arg] = []
        if k[self.i] != ")":
            arg, d = self.warg()
            args.append(arg)
            depth = max(depth, d)
            while k[self.i] == ",":
                self.i += 1
                arg, d = self.warg()
                args.append(arg)
                depth = max(depth, d)
        self.expect(")")
        return A.WCall(name, dims, tuple(args), self.span(i, self.i - 1)), self.deeper(depth)

    def warg(self) -> tuple[A.WExpr | A.Lit | A.Arg, int]:
        first = self.i
        k = self.k
        if k[first] == _NAME and k[first + 1] == "=":
            name = self.name()
            self.i += 1
            value, depth = self.value()
            return A.Arg(name, value, self.span(first, self.i - 1)), self.deeper(depth)
        if k[first] == _STRING or (k[first] == _NAME and self.t[first] in ("true", "false")):
            literal = self.literal(signed=False)
            assert literal is not None
            return literal
        return self.wexpr()


def _spans(file: str, texts: list[str], starts: list[int], newlines: list[int], line_starts: list[int],
           line: int) -> Callable[[int, int], Span]:
    """``span(first, last)``: the span from token ``first`` to token ``last`` (both included)."""
    lines = len(newlines)

    def span(first: int, last: int) -> Span:
        a = starts[first]
        b = starts[last]
        end = b + len(texts[last])
        n = bisect_right(newlines, a)
        m = n if n == lines or newlines[n] > b else bisect_right(newlines, b, n)
        return _span(file, line + n, a - line_starts[n] + 1, line + m, end - line_starts[m] + 1, a, end)

    return span


def _span_by_init(file: str, line: int, column: int, end_line: int, end_column: int, start: int, end: int) -> Span:
    return Span(file, line, column, end_line, end_column, start, end)


def _span_by_dict(file: str, line: int, column: int, end_line: int, end_column: int, start: int, end: int) -> Span:
    # A third of the cost of the frozen dataclass's `__init__`, which sets each field through `object.__setattr__`.
    span = _new(Span)
    _set(span, "__dict__", {"file": file, "line": line, "column": column, "end_line": end_line,
                            "end_column": end_column, "start": start, "end": end})
    return span


_new, _set = object.__new__, object.__setattr__
#: How spans are made: straight into the instance's dictionary, where that
#: makes the same object as ``Span(...)`` does (a dataclass without slots
#: or ``__post_init__``); through ``Span(...)`` otherwise.
_span = (
    _span_by_dict
    if not hasattr(Span, "__slots__") and not hasattr(Span, "__post_init__")
    and vars(_span_by_dict("f", 1, 2, 3, 4, 5, 6)) == vars(Span("f", 1, 2, 3, 4, 5, 6))
    else _span_by_init
)


class _Kinds(dict):
    """Token text to kind, computed once per distinct text of a parse."""

    def __missing__(self, tok: str) -> str | None:
        # A lone `"` is no string: one that is not closed on its line.
        kind = self[tok] = None if tok == '"' else _KIND.get(tok[0]) or _OPERATOR.get(tok)
        return kind


def _separators(kinds: list[str], lo: int, hi: int) -> int:
    """Commas and ``⊗`` among tokens ``lo`` to ``hi``."""
    part = kinds[lo:hi]
    return part.count(",") + part.count("@")
