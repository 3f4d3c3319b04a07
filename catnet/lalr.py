"""The LALR parser on lark: the grammar's reference parser, its tree builder, and syntax errors.

:func:`catnet.syntax.parse` reads most texts with the hand-written parser
(:mod:`catnet.fastparse`); what that declines comes here (:func:`parse`),
and every syntax error is this module's: a human label ("unclosed
bracket", "missing `=` before the body") found by matching the parser
state against small example inputs, as lark's ``match_examples`` does.
The tree walker computes spans from tokens and refuses nesting past the
limits :mod:`catnet.syntax` sets (read there at each parse).  The parser's
tables come from the cache on disk (``$CATNET_CACHE/parser``) when they can.
Nothing imports this module, or lark, until a text needs it.
"""

from __future__ import annotations

import functools
import hashlib
import math
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import lark
from lark import Lark, Token
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput
from lark.lexer import LexerState, LexerThread, LineCounter
from lark.utils import TextSlice

from . import ast as A
from . import cache, syntax
from .errors import CatnetError, printable, source_lines
from .ir import Span


#: Tokens after which the parts side by side are counted afresh.
_BOUNDARIES = ("THEN", "ARROW", "EQUAL", "COLON", "RETURN", "IMPORT", "OBJECT", "BUNDLE", "SHARED", "MAIN", "MORPHISM")

_OPEN = {"LPAR", "LSQB", "LBRACE", "LANGLE"}
_CLOSE = {"RPAR", "RSQB", "RBRACE", "RANGLE"}


def _grammar_text() -> str:
    try:
        return resources.files("catnet.grammars").joinpath("catnet.lark").read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError):
        # Running from a source checkout without installation.
        return (Path(__file__).resolve().parent.parent / "grammars" / "catnet.lark").read_text(encoding="utf-8")


class _LexState:
    """Per-parse lexer state: comments seen, bracket depth, items side by side.

    ``widths`` counts, for each open bracket (and the top level), the
    separators (``,`` and ``⊗``) seen since the last `;`, `->`, `=`, `:` or
    declaration keyword, so that a product or pairing of absurd width is
    refused as it is read, before the parser builds it.
    """

    def __init__(self, file: str) -> None:
        self.file = file
        self.depth = 0
        self.comments: list[A.Comment] = []
        self.widths: list[int] = [0]


_state: _LexState | None = None


def _on_open(tok: Token) -> Token:
    assert _state is not None
    _state.depth += 1
    _state.widths.append(0)
    if _state.depth > syntax.MAX_DEPTH:
        raise CatnetError(
            "E0106",
            f"brackets nested more than {syntax.MAX_DEPTH} levels deep",
            _tok_span(tok, _state.file),
            help="name the inner parts with their own `morphism` definitions",
        )
    return tok


def _on_close(tok: Token) -> Token:
    assert _state is not None
    _state.depth -= 1
    if len(_state.widths) > 1:
        _state.widths.pop()
    return tok


def _on_separator(tok: Token) -> Token:
    assert _state is not None
    _state.widths[-1] += 1
    if _state.widths[-1] >= syntax.MAX_WIRES:
        raise CatnetError(
            "E0310",
            f"more than {syntax.MAX_WIRES:,} parts side by side",
            _tok_span(tok, _state.file),
            help="a wire can carry a whole axis: use one R[n, ...] wire instead of n separate ones",
        )
    return tok


def _on_boundary(tok: Token) -> Token:
    assert _state is not None
    _state.widths[-1] = 0
    return tok


def _on_comment(tok: Token) -> Token:
    assert _state is not None
    _state.comments.append(A.Comment(str(tok).rstrip(), tok.line, tok.column))
    return tok


#: How the grammar is built (the lexer callbacks and plugins are given at load time).
_OPTIONS: dict[str, Any] = {
    "parser": "lalr",
    "lexer": "contextual",
    "propagate_positions": False,  # the tree walker computes spans from tokens
    "maybe_placeholders": True,
    "keep_all_tokens": True,
}


@functools.lru_cache(maxsize=1)
def _parser() -> Lark:
    """The LALR parser: its tables from the cache on disk, or built (and stored there).

    Building the tables takes about 0.1 s, loading them a tenth of that, so a
    fresh ``catnet check`` reads them from ``$CATNET_CACHE/parser``, keyed
    by the grammar's text, these options and lark's and Python's versions.
    A missing, stale or damaged entry is built again; nothing is required.
    """
    callbacks: dict[str, Any] = {"COMMENT": _on_comment}
    callbacks.update({name: _on_open for name in _OPEN})
    callbacks.update({name: _on_close for name in _CLOSE})
    callbacks.update({name: _on_separator for name in ("COMMA", "TENSOR")})
    callbacks.update({name: _on_boundary for name in _BOUNDARIES})
    runtime = {"lexer_callbacks": callbacks, "_plugins": {"LexerThread": _SliceThread}}
    grammar = _grammar_text()
    key = hashlib.sha256(
        "\0".join([grammar, repr(sorted(_OPTIONS.items())), lark.__version__, sys.version]).encode()
    ).hexdigest()[:24]
    path = cache.cache_dir("parser") / f"catnet-{key}.pickle"
    try:
        with open(path, "rb") as f:
            # What ``Lark(cache=...)`` does, with our own key and an atomic write.
            return Lark.__new__(Lark)._load(f, **runtime)
    except Exception:  # noqa: BLE001 - no entry, or one this lark cannot read: build it
        pass
    parser = Lark(grammar, **_OPTIONS, **runtime)
    cache.store(path, lambda f: parser.save(f, exclude_options=tuple(runtime)))
    return parser


class _SliceThread(LexerThread):
    """Lark's lexer thread, able to start inside the text at a known line.

    Lark lexes a ``TextSlice`` with positions in the whole text, but finds
    the slice's first line by counting every newline before it; for a file
    read one declaration at a time that is quadratic.  :func:`parse_stream`
    knows the line already and hands the counter over in ``_start``.
    """

    @classmethod
    def from_text(cls, lexer: Any, text_or_slice: Any) -> "LexerThread":
        counter = _start
        if counter is not None and isinstance(text_or_slice, TextSlice):
            return cls(lexer, LexerState(text_or_slice, counter))
        return super().from_text(lexer, text_or_slice)


#: The line counter the next slice starts with (see :class:`_SliceThread`).
_start: LineCounter | None = None


def _tok_span(tok: Token, file: str) -> Span:
    return Span(
        file,
        tok.line or 1,
        tok.column or 1,
        tok.end_line or tok.line or 1,
        tok.end_column or (tok.column or 1) + len(str(tok)),
        tok.start_pos or 0,
        tok.end_pos or 0,
    )


#: Terminals the tree builder passes on; the parser keeps all tokens so
#: that spans include brackets and keywords, and the rest are dropped here.
_KEPT = frozenset(
    {"NAME", "NUMBER", "SIGNED", "STRING", "TRUE", "FALSE", "ARROW", "THEN", "TENSOR", "LANGLE", "RANGLE", "REAL", "INTS"}
)


class _Build:
    """Parse tree to AST; every node gets the span of its first to last token."""

    def __init__(self, file: str) -> None:
        self.file = file

    def _span(self, meta: Any) -> Span | None:
        # The tree walker hands each rule its span directly.
        return meta

    def build(self, tree: lark.Tree) -> Any:
        """Post-order walk without recursion: deep input cannot overflow the stack.

        Each value carries its AST depth; a node nested more than
        :data:`syntax.MAX_NESTING` levels is refused (E0106) before any recursive
        stage sees it.  The error is located at the outermost node of the
        chain that is too deep (the first `repeat` of a `repeat` chain).
        """
        file = self.file
        stack: list[tuple[Any, bool]] = [(tree, False)]
        out: list[tuple[Any, Any, Any, int]] = []  # (value, first token, last token, depth)
        deep: tuple[str, Span | None] | None = None  # the outermost too-deep node so far
        while stack:
            node, visited = stack.pop()
            if not isinstance(node, lark.Tree):
                out.append((node, node, node, 0) if node is not None else (None, None, None, 0))
                continue
            if not visited:
                stack.append((node, True))
                stack.extend((child, False) for child in reversed(node.children))
                continue
            n = len(node.children)
            items = out[len(out) - n :] if n else []
            if n:
                del out[len(out) - n :]
            first = next((it[1] for it in items if it[1] is not None), None)
            last = next((it[2] for it in reversed(items) if it[2] is not None), None)
            depth = max((it[3] for it in items), default=0)
            # Punctuation and keywords count for the span, not as children.
            items = [it for it in items if not (isinstance(it[0], Token) and it[0].type not in _KEPT)]
            span = (
                Span(file, first.line, first.column, last.end_line, last.end_column, first.start_pos, last.end_pos)
                if first is not None
                else None
            )
            values = [it[0] for it in items]
            handler = getattr(self, node.data, None)
            if handler is None:
                # A parenthesised form: `( x )` is just `x`.
                assert len(values) == 1, node.data
                out.append((values[0], first, last, depth))
                continue
            if deep is not None and node.data != deep[0]:
                raise _too_deep(*deep)  # the chain ends here
            if node.data not in _TOP:
                depth += 1
                if depth > syntax.MAX_NESTING:
                    # Keep building (it is iterative) up to the chain's outermost node.
                    deep = (node.data, span)
            out.append((handler(span, values), first, last, depth))
        if deep is not None:
            raise _too_deep(*deep)
        return out[0][0]

    def _number(self, tok: Token, code: str, what: str) -> int | float:
        """The value of a number token; absurd ones are ``code`` errors at the token."""
        text = str(tok)
        if len(text) > syntax.MAX_DIGITS:
            raise CatnetError(code, f"{what} `{syntax._quote(text)}` is absurdly large", _tok_span(tok, self.file),
                              notes=[f"it has {len(text):,} characters; a number has at most {syntax.MAX_DIGITS}"])
        if "." in text or "e" in text or "E" in text:
            value = float(text)
            if not math.isfinite(value):
                raise CatnetError(code, f"{what} `{syntax._quote(text)}` is absurdly large", _tok_span(tok, self.file),
                                  notes=["it is beyond the largest floating-point number, about 1.8e308"])
            return value
        return int(text)

    # declarations
    def start(self, meta: Any, items: list) -> list:
        return items

    def import_decl(self, meta: Any, c: list) -> A.Import:
        return A.Import(syntax._unquote(c[0]), self._span(meta))

    def object_decl(self, meta: Any, c: list) -> A.ObjectDecl:
        group, rep = c[2] if c[2] is not None else (None, None)
        return A.ObjectDecl(str(c[0]), c[1], group, self._span(meta), rep)

    def under(self, meta: Any, c: list) -> tuple[str, str | None]:
        return c[0], (c[1][0] if c[1] is not None else None)

    # groups and representations: canonical text (docs/symmetry.md)
    def group(self, meta: Any, c: list) -> str:
        return " × ".join(c)

    def gfactor(self, meta: Any, c: list) -> str:
        return f"{c[0]}{c[1]}" if len(c) == 2 else str(c[0])

    def equivariant_claim(self, meta: Any, c: list) -> A.Claim:
        return A.Claim("equivariant", c[0], self._span(meta))

    def invariant_claim(self, meta: Any, c: list) -> A.Claim:
        return A.Claim("invariant", c[0], self._span(meta))

    # A representation is (text, precedence): 0 a sum, 1 copies, 2 a tensor product, 3 an atom.
    def rsum(self, meta: Any, c: list) -> tuple[str, int]:
        return f"{c[0][0]} + {c[1][0]}", 0

    def rcopies(self, meta: Any, c: list) -> tuple[str, int]:
        return f"{c[0][0]} * {c[1]}", 1

    def rtensor(self, meta: Any, c: list) -> tuple[str, int]:
        left = c[0][0] if c[0][1] >= 2 else f"({c[0][0]})"
        right = c[2][0] if c[2][1] >= 3 else f"({c[2][0]})"
        return f"{left} ⊗ {right}", 2

    def rname(self, meta: Any, c: list) -> tuple[str, int]:
        return str(c[0]), 3

    def rcall(self, meta: Any, c: list) -> tuple[str, int]:
        return f"{c[0]}({', '.join(c[1:])})", 3

    def rarg(self, meta: Any, c: list) -> str:
        return str(c[0])

    def bundle_decl(self, meta: Any, c: list) -> A.BundleDecl:
        return A.BundleDecl(str(c[0]), c[1], c[2], c[3], self._span(meta))

    def total(self, meta: Any, c: list) -> A.TypeExpr:
        return c[0]

    def shared_decl(self, meta: Any, c: list) -> A.SharedDecl:
        name, dparams, body = c
        return A.SharedDecl(str(name), body, self._span(meta), tuple(dparams or ()))

    def main_decl(self, meta: Any, c: list) -> A.MainDecl:
        return A.MainDecl(str(c[0]), self._span(meta))

    def morphism_decl(self, meta: Any, c: list) -> A.MorphismDecl:
        name, dparams, params, dom, _arrow, cod, claim, body = c
        return A.MorphismDecl(
            str(name), tuple(dparams or ()), tuple(params or ()), dom, cod, body, self._span(meta), _tok_span(name, self.file),
            claim,
        )

    def wiring_decl(self, meta: Any, c: list) -> A.WiringDecl:
        name, dparams, params, _arrow, cod, claim, *stmts = c
        return A.WiringDecl(
            str(name), tuple(dparams or ()), tuple(params or ()), cod, tuple(stmts), self._span(meta), _tok_span(name, self.file),
            claim,
        )

    def dim_params(self, meta: Any, c: list) -> tuple[str, ...]:
        return tuple(str(t) for t in c)

    def params(self, meta: Any, c: list) -> tuple[A.Param, ...]:
        return tuple(p for p in c if p is not None)

    def param(self, meta: Any, c: list) -> A.Param:
        name, dom, _arrow, cod = c
        return A.Param(str(name), dom, cod, self._span(meta))

    # objects
    def tproduct(self, meta: Any, c: list) -> A.TProduct:
        return A.TProduct(tuple(x for x in c if not isinstance(x, Token)), self._span(meta))

    def tensor_space(self, meta: Any, c: list) -> A.TSpace:
        return A.TSpace(str(c[0]), tuple(d for d in c[1:] if d is not None), self._span(meta))

    def unit(self, meta: Any, c: list) -> A.TUnit:
        return A.TUnit(self._span(meta))

    def seq(self, meta: Any, c: list) -> A.TSeq:
        return A.TSeq(c[0], c[1], self._span(meta))

    def objref(self, meta: Any, c: list) -> A.TRef:
        return A.TRef(str(c[0]), self._span(meta))

    # dimensions
    def dnum(self, meta: Any, c: list) -> A.DNum:
        return A.DNum(self._number(c[0], "E0307", "size"), self._span(meta))

    def dsym(self, meta: Any, c: list) -> A.DSym:
        return A.DSym(str(c[0]), self._span(meta))

    def _dbin(op: str):  # type: ignore[misc]
        def f(self: "_Build", meta: Any, c: list) -> A.DBin:
            return A.DBin(op, c[0], c[1], self._span(meta))

        return f

    dadd, dsub, dmul = _dbin("+"), _dbin("-"), _dbin("*")

    # expressions
    def then(self, meta: Any, c: list) -> A.Then:
        parts: list = []
        for x in c:
            if isinstance(x, Token):
                continue
            parts.extend(x.parts if isinstance(x, A.Then) else [x])
        return A.Then(tuple(parts), self._span(meta))

    def product(self, meta: Any, c: list) -> A.Product:
        return A.Product(tuple(x for x in c if not isinstance(x, Token)), self._span(meta))

    def repeat(self, meta: Any, c: list) -> A.Repeat:
        return A.Repeat(self._number(c[0], "E0307", "repeat count"), c[1], self._span(meta))

    def ascribe(self, meta: Any, c: list) -> A.Ascribe:
        return A.Ascribe(c[0], c[1], c[3], self._span(meta))

    def pair(self, meta: Any, c: list) -> A.Pair:
        return A.Pair(tuple(x for x in c if not isinstance(x, Token)), self._span(meta))

    def inv(self, meta: Any, c: list) -> A.Inv:
        return A.Inv(c[0], self._span(meta))

    def scan(self, meta: Any, c: list) -> A.Scan:
        return A.Scan(c[0], c[1], self._span(meta))

    def ref(self, meta: Any, c: list) -> A.Ref:
        name, dims, args = c
        return A.Ref(str(name), dims, args, self._span(meta))

    def dim_args(self, meta: Any, c: list) -> tuple:
        return tuple(c)

    def call_args(self, meta: Any, c: list) -> tuple:
        return tuple(a for a in c if a is not None)

    def kwarg(self, meta: Any, c: list) -> A.Arg:
        return A.Arg(str(c[0]), c[1], self._span(meta))

    def posarg(self, meta: Any, c: list) -> A.Arg:
        return A.Arg(None, c[0], self._span(meta))

    def _vbin(op: str):  # type: ignore[misc]
        def f(self: "_Build", meta: Any, c: list) -> A.VBin:
            return A.VBin(op, c[0], c[1], self._span(meta))

        return f

    vadd, vsub, vmul = _vbin("+"), _vbin("-"), _vbin("*")

    def literal(self, meta: Any, c: list) -> A.Lit:
        tok = c[0]
        kind = tok.type
        if kind == "STRING":
            value: int | float | str | bool = syntax._unquote(tok)
        elif kind == "TRUE":
            value = True
        elif kind == "FALSE":
            value = False
        else:
            value = self._number(tok, "E0208", "number")  # NUMBER or SIGNED: int() and float() take the sign
        return A.Lit(value, self._span(meta))

    # wiring form
    def assign(self, meta: Any, c: list) -> A.Assign:
        return A.Assign(tuple(str(t) for t in c[:-1]), c[-1], self._span(meta))

    def return_stmt(self, meta: Any, c: list) -> A.Return:
        return A.Return(tuple(c), self._span(meta))

    def _wbin(op: str):  # type: ignore[misc]
        def f(self: "_Build", meta: Any, c: list) -> A.WBin:
            return A.WBin(op, c[0], c[1], self._span(meta))

        return f

    wadd, wsub, wmul, wdiv = _wbin("+"), _wbin("-"), _wbin("*"), _wbin("/")

    def wneg(self, meta: Any, c: list) -> A.WExpr:
        (operand,) = c
        if isinstance(operand, A.WNum) and math.copysign(1, operand.value) > 0:
            return A.WNum(-operand.value, self._span(meta))  # `-1` is the number -1
        return A.WNeg(operand, self._span(meta))

    def wnum(self, meta: Any, c: list) -> A.WNum:
        return A.WNum(self._number(c[0], "E0208", "number"), self._span(meta))

    def wire(self, meta: Any, c: list) -> A.Wire:
        return A.Wire(str(c[0]), self._span(meta))

    def wcall(self, meta: Any, c: list) -> A.WCall:
        name, dims, *args = c
        return A.WCall(str(name), dims, tuple(a for a in args if a is not None), self._span(meta))

    def wkwarg(self, meta: Any, c: list) -> A.Arg:
        return A.Arg(str(c[0]), c[1], self._span(meta))


#: Nodes that do not nest: the file and its declarations.  A declaration
#: whose body is as deep as allowed is fine.
_TOP = frozenset({"start", "import_decl", "object_decl", "bundle_decl", "shared_decl", "main_decl", "morphism_decl",
                  "wiring_decl", "assign", "return_stmt", "dim_params", "params", "param", "under", "group",
                  "gfactor", "equivariant_claim", "invariant_claim"})

#: What nests one level per term, for the message.
_CHAINS = {
    "dadd": "a size sum", "dsub": "a size difference", "dmul": "a size product",
    "vadd": "an argument sum", "vsub": "an argument difference", "vmul": "an argument product",
    "wadd": "a sum of wires", "wsub": "a difference of wires", "wmul": "a product of wires",
    "wdiv": "a quotient of wires", "wneg": "a chain of negations", "repeat": "a `repeat` chain",
    "rsum": "a sum of representations", "rcopies": "a representation's copies",
    "rtensor": "a tensor product of representations",
}


def _too_deep(rule: str, span: Span | None) -> CatnetError:
    chain = _CHAINS.get(rule)
    if chain is not None:
        return CatnetError(
            "E0106", f"{chain} of more than {syntax.MAX_NESTING} terms is nested too deeply", span,
            notes=[f"each term of {chain} nests one level, and the limit is {syntax.MAX_NESTING} levels"],
            help="compute the value in fewer terms, or name parts with their own definitions",
        )
    return CatnetError("E0106", f"expression nested more than {syntax.MAX_NESTING} levels deep", span,
                       help="name the inner parts with their own `morphism` definitions")


# -- syntax error labels -----------------------------------------------------

#: Example inputs for each label; a failing parse whose state matches one of
#: these gets its code and message (lark's ``match_examples``).
_EXAMPLES: dict[tuple[str, str], list[str]] = {
    ("E0102", "unclosed bracket"): [
        "morphism f : A -> B = (dense",
        "morphism f : A -> B = (dense ; relu",
        "morphism f : A -> B = dense(3",
        "morphism f : A -> B = dense(rate=3",
        "object A = R[64",
        "object A = R[8, 8",
        "morphism f : A -> B = <dense, relu",
        "morphism f(x : A) -> B { return x",
        "morphism f(x : A) -> B { h = g(x",
        "morphism f(x : A -> B",
    ],
    ("E0107", "missing type signature"): [
        "morphism f = dense",
        "morphism f : A = dense",
        "morphism f : = dense",
    ],
    ("E0108", "missing `=` before the body"): [
        "morphism f : A -> B dense",
        "morphism f : A -> B ; dense",
        "object A R[64]",
        "shared e encoder",
    ],
    ("E0109", "unbalanced closing bracket"): [
        "morphism f : A -> B = dense)",
        "morphism f : A -> B = dense ; relu)",
        "morphism f : A -> B = dense(3))",
        "object A = R[64]]",
        "object A = R[64])",
        "morphism f(x : A) -> B { return x } }",
    ],
    ("E0101", "two morphisms side by side: join them with `;` (then) or `⊗` (beside)"): [
        "morphism f : A -> B = dense relu",
        "morphism f : A -> B = dense(3) relu",
        "morphism f : A -> B = (dense) relu",
    ],
    ("E0101", "expected a morphism"): [
        "morphism f : A -> B = ;",
        "morphism f : A -> B = dense ; ;",
        "morphism f : A -> B = dense ⊗ ;",
        "morphism f : A -> B = dense ;",
    ],
    ("E0101", "expected an object"): [
        "object A = ",
        "object A = ;",
        "morphism f : -> B = dense",
        "morphism f : A -> = dense",
        "morphism f : A -> B ⊗ = dense",
    ],
    ("E0101", "expected a declaration (`object`, `morphism`, `shared`, `bundle`, `import` or `main`)"): [
        "dense",
        "object A = R[3] relu",
        "morphism f : A -> B = dense 3",
        "= dense",
        "function f",
    ],
}


def _error_key(err: UnexpectedInput) -> tuple[int, str] | None:
    state = getattr(err, "state", None)
    token = getattr(err, "token", None)
    if state is None or token is None:
        return None
    return state.position, token.type


@functools.lru_cache(maxsize=1)
def _label_table() -> tuple[dict[tuple[int, str], tuple[str, str]], dict[int, tuple[str, str]]]:
    """Parser state (and token) at which each example fails -> its label.

    This is lark's ``match_examples`` idea, keyed on the LR state alone, so
    that the declarations before the error do not matter.
    """
    exact: dict[tuple[int, str], tuple[str, str]] = {}
    by_state: dict[int, tuple[str, str]] = {}
    global _state
    outer, _state = _state, _LexState("<examples>")
    try:
        for label, examples in _EXAMPLES.items():
            for text in examples:
                try:
                    _parser().parse(text)
                except UnexpectedInput as e:
                    key = _error_key(e)
                    if key is not None:
                        exact.setdefault(key, label)
                        by_state.setdefault(key[0], label)
                except CatnetError:  # pragma: no cover - examples are shallow
                    pass
                _state.depth = 0
    finally:
        _state = outer
    return exact, by_state


def _label(err: UnexpectedInput) -> tuple[str, str] | None:
    key = _error_key(err)
    if key is None:
        return None
    exact, by_state = _label_table()
    if key in exact:
        return exact[key]
    # The state alone is evidence enough only when the input simply ran out.
    return by_state.get(key[0]) if key[1] == "$END" else None


def _describe(expected: set[str]) -> str:
    names = {
        "NAME": "a name", "NUMBER": "a number", "STRING": "a string", "ARROW": "`->`", "THEN": "`;`",
        "TENSOR": "`⊗`", "LANGLE": "`<`", "RANGLE": "`>`", "LPAR": "`(`", "RPAR": "`)`", "LSQB": "`[`",
        "RSQB": "`]`", "LBRACE": "`{`", "RBRACE": "`}`", "EQUAL": "`=`", "COLON": "`:`", "COMMA": "`,`",
        "PLUS": "`+`", "MINUS": "`-`", "STAR": "`*`", "SLASH": "`/`", "SIGNED": "a number", "TRUE": "`true`",
        "FALSE": "`false`", "REAL": "`R`", "INTS": "`Z`", "$END": "the end of the file",
    }
    words = sorted({names.get(e) or _keyword(e) for e in expected})
    if len(words) > 8:
        words = words[:8] + ["…"]
    return ", ".join(words)


def _keyword(terminal: str) -> str:
    try:
        pattern = _parser().get_terminal(terminal).pattern
        return f"`{pattern.value}`"
    except (KeyError, AttributeError):
        return f"`{terminal.lower()}`"


def _syntax_error(err: UnexpectedInput, text: str, file: str) -> CatnetError:
    line, col = getattr(err, "line", 1) or 1, getattr(err, "column", 1) or 1
    if line < 1:  # lark reports -1 for the end of input
        lines = source_lines(text) or [""]
        line, col = len(lines), len(lines[-1]) + 1
    width = 1
    token = getattr(err, "token", None)
    if token is not None and token.type != "$END":
        width = max(1, len(str(token)))
    span = Span(file, line, col, line, col + width)
    if isinstance(err, UnexpectedCharacters):
        ch = text[err.pos_in_stream] if 0 <= err.pos_in_stream < len(text) else "?"
        if ch == '"':
            return CatnetError("E0105", "unterminated string", span, help='close the string with `"` on the same line')
        return CatnetError(
            "E0104",
            f"unexpected character `{printable(ch)}`",
            span,
            help="operators are `;` or `>>` (then), `⊗` or `@` (beside), `->` (arrow); comments start with `#`",
        )
    label = _label(err)
    expected = set(getattr(err, "expected", None) or getattr(err, "accepts", None) or ())
    interactive = getattr(err, "interactive_parser", None)
    if interactive is not None:
        try:
            expected = set(interactive.accepts()) or expected
        except Exception:  # noqa: BLE001 - the plain expected set is still right
            pass
    found = "the end of the file" if token is None or token.type == "$END" else f"`{syntax._quote(str(token))}`"
    if label is None and (isinstance(err, UnexpectedEOF) or found == "the end of the file"):
        if _state is not None and _state.depth > 0:
            label = ("E0102", "unclosed bracket")
        else:
            label = ("E0103", "unexpected end of file")
    code, title = label if label else ("E0101", f"unexpected {found}")
    message = title if not label or code != "E0101" or title.startswith("unexpected") else f"{title}, found {found}"
    if code in ("E0102", "E0103") and found == "the end of the file":
        message = f"{title}: the file ends here"
    notes = [f"expected {_describe(expected)}"] if expected else []
    return CatnetError(code, message, span, notes=notes, help=_pairing_help(text, token, expected))


def _pairing_help(text: str, token: Token | None, expected: set[str]) -> str | None:
    """`<f, <g, h>>` lexes its end as `>>` (composition): say so."""
    end = token.start_pos if token is not None and token.type != "$END" and token.start_pos is not None else len(text)
    before = text[:end].rstrip()
    if before.endswith(">>") and "<" in text[:end] and ("RANGLE" in expected or "NAME" in expected):
        return "close two pairings with `> >`: `>>` is composition"
    return None


def parse(text: str, file: str, lo: int = 0, hi: int | None = None, line: int = 1, line_start: int = 0,
          partial: bool = False) -> A.Module | None:
    """The module in ``text`` (or in ``text[lo:hi]``, starting on ``line``), or a located ``CatnetError``.

    With ``partial``, a stretch that does not parse on its own gives
    ``None``: the caller parses on to the end, where the error is the one
    a parse of the whole text reports.
    """
    global _state, _start
    outer, outer_start = _state, _start
    _state = state = _LexState(file)
    if hi is not None:
        counter = LineCounter("\n")
        counter.char_pos, counter.line, counter.line_start_pos = lo, line, line_start
        counter.column = lo - line_start + 1
        _start = counter
    try:
        try:
            tree = _parser().parse(text if hi is None else TextSlice(text, lo, hi))
        except UnexpectedInput as err:
            if partial:
                return None
            raise _syntax_error(err, text, file) from None
        if state.depth < 0:
            raise CatnetError("E0109", "unbalanced closing bracket", Span(file, line, 1, line, 2))
        items = _Build(file).build(tree)
    except CatnetError as e:
        if e.source is None:
            e.source = text
        raise
    finally:
        _state, _start = outer, outer_start
    return A.Module(tuple(items), tuple(state.comments))
