"""Source text to AST: the LALR parser, its tree builder, and syntax errors.

``parse(text, file)`` returns an :class:`catnet.ast.Module` or raises a
:class:`CatnetError`.  Syntax errors get a human label ("unclosed
bracket", "missing `=` before the body") by matching the parser state against
small example inputs, as lark's ``match_examples`` does.
"""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path
from typing import Any

import lark
from lark import Lark, Token
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput

from . import ast as A
from .errors import CatnetError
from .ir import Span

#: Brackets nested deeper than this are refused before they reach any
#: recursive stage (no real architecture needs more than a handful).
MAX_DEPTH = 128

#: Files larger than this are refused (no architecture is 64 MB of text).
MAX_BYTES = 64 * 1024 * 1024

_OPEN = {"LPAR", "LSQB", "LBRACE", "LANGLE"}
_CLOSE = {"RPAR", "RSQB", "RBRACE", "RANGLE"}


def _grammar_text() -> str:
    try:
        return resources.files("catnet.grammars").joinpath("catnet.lark").read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError):
        # Running from a source checkout without installation.
        return (Path(__file__).resolve().parent.parent / "grammars" / "catnet.lark").read_text(encoding="utf-8")


class _LexState:
    """Per-parse lexer state: comments seen and bracket depth."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.depth = 0
        self.comments: list[A.Comment] = []


_state: _LexState | None = None


def _on_open(tok: Token) -> Token:
    assert _state is not None
    _state.depth += 1
    if _state.depth > MAX_DEPTH:
        raise CatnetError(
            "E0106",
            f"brackets nested more than {MAX_DEPTH} levels deep",
            _tok_span(tok, _state.file),
            help="name the inner parts with their own `morphism` definitions",
        )
    return tok


def _on_close(tok: Token) -> Token:
    assert _state is not None
    _state.depth -= 1
    return tok


def _on_comment(tok: Token) -> Token:
    assert _state is not None
    _state.comments.append(A.Comment(str(tok).rstrip(), tok.line, tok.column))
    return tok


@functools.lru_cache(maxsize=1)
def _parser() -> Lark:
    callbacks: dict[str, Any] = {"COMMENT": _on_comment}
    callbacks.update({name: _on_open for name in _OPEN})
    callbacks.update({name: _on_close for name in _CLOSE})
    return Lark(
        _grammar_text(),
        parser="lalr",
        lexer="contextual",
        propagate_positions=False,  # the tree walker computes spans from tokens
        maybe_placeholders=True,
        keep_all_tokens=True,
        lexer_callbacks=callbacks,
    )


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
        """Post-order walk without recursion: deep input cannot overflow the stack."""
        file = self.file
        stack: list[tuple[Any, bool]] = [(tree, False)]
        out: list[tuple[Any, Any, Any]] = []  # (value, first token, last token)
        while stack:
            node, visited = stack.pop()
            if not isinstance(node, lark.Tree):
                out.append((node, node, node) if node is not None else (None, None, None))
                continue
            if not visited:
                stack.append((node, True))
                stack.extend((child, False) for child in reversed(node.children))
                continue
            n = len(node.children)
            items = out[len(out) - n :] if n else []
            if n:
                del out[len(out) - n :]
            first = next((f for _, f, _ in items if f is not None), None)
            last = next((l for _, _, l in reversed(items) if l is not None), None)
            # Punctuation and keywords count for the span, not as children.
            items = [it for it in items if not (isinstance(it[0], Token) and it[0].type not in _KEPT)]
            span = (
                Span(file, first.line, first.column, last.end_line, last.end_column, first.start_pos, last.end_pos)
                if first is not None
                else None
            )
            values = [v for v, _, _ in items]
            handler = getattr(self, node.data, None)
            if handler is None:
                # A parenthesised form: `( x )` is just `x`.
                assert len(values) == 1, node.data
                out.append((values[0], first, last))
                continue
            out.append((handler(span, values), first, last))
        return out[0][0]

    def _number(self, tok: Token) -> int | float:
        text = str(tok)
        if "." in text or "e" in text or "E" in text:
            return float(text)
        return int(text)

    # declarations
    def start(self, meta: Any, items: list) -> list:
        return items

    def import_decl(self, meta: Any, c: list) -> A.Import:
        return A.Import(_unquote(c[0]), self._span(meta))

    def object_decl(self, meta: Any, c: list) -> A.ObjectDecl:
        return A.ObjectDecl(str(c[0]), c[1], c[2], self._span(meta))

    def under(self, meta: Any, c: list) -> str:
        return str(c[0])

    def bundle_decl(self, meta: Any, c: list) -> A.BundleDecl:
        return A.BundleDecl(str(c[0]), c[1], c[2], self._span(meta))

    def shared_decl(self, meta: Any, c: list) -> A.SharedDecl:
        return A.SharedDecl(str(c[0]), c[1], self._span(meta))

    def main_decl(self, meta: Any, c: list) -> A.MainDecl:
        return A.MainDecl(str(c[0]), self._span(meta))

    def morphism_decl(self, meta: Any, c: list) -> A.MorphismDecl:
        name, dparams, params, dom, _arrow, cod, body = c
        return A.MorphismDecl(
            str(name), tuple(dparams or ()), tuple(params or ()), dom, cod, body, self._span(meta), _tok_span(name, self.file)
        )

    def wiring_decl(self, meta: Any, c: list) -> A.WiringDecl:
        name, dparams, params, _arrow, cod, *stmts = c
        return A.WiringDecl(
            str(name), tuple(dparams or ()), tuple(params or ()), cod, tuple(stmts), self._span(meta), _tok_span(name, self.file)
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
        return A.DNum(self._number(c[0]), self._span(meta))

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
        return A.Repeat(self._number(c[0]), c[1], self._span(meta))

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
            value: int | float | str | bool = _unquote(tok)
        elif kind == "TRUE":
            value = True
        elif kind == "FALSE":
            value = False
        else:
            value = self._number(tok) if kind == "NUMBER" else -self._number(Token("NUMBER", str(tok)[1:]))
        return A.Lit(value, self._span(meta))

    # wiring form
    def assign(self, meta: Any, c: list) -> A.Assign:
        return A.Assign(tuple(str(t) for t in c[:-1]), c[-1], self._span(meta))

    def return_stmt(self, meta: Any, c: list) -> A.Return:
        return A.Return(tuple(c), self._span(meta))

    def wadd(self, meta: Any, c: list) -> A.WAdd:
        return A.WAdd(c[0], c[1], self._span(meta))

    def wire(self, meta: Any, c: list) -> A.Wire:
        return A.Wire(str(c[0]), self._span(meta))

    def wcall(self, meta: Any, c: list) -> A.WCall:
        name, dims, *args = c
        return A.WCall(str(name), dims, tuple(a for a in args if a is not None), self._span(meta))

    def wkwarg(self, meta: Any, c: list) -> A.Arg:
        return A.Arg(str(c[0]), c[1], self._span(meta))


def _unquote(tok: Any) -> str:
    text = str(tok)[1:-1]
    return text.replace('\\"', '"').replace("\\\\", "\\")


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
        "PLUS": "`+`", "MINUS": "`-`", "STAR": "`*`", "SIGNED": "a number", "TRUE": "`true`", "FALSE": "`false`",
        "REAL": "`R`", "INTS": "`Z`", "$END": "the end of the file",
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
        lines = text.splitlines() or [""]
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
        shown = ch if ch.isprintable() else repr(ch)
        return CatnetError(
            "E0104",
            f"unexpected character `{shown}`",
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
    found = "the end of the file" if token is None or token.type == "$END" else f"`{token}`"
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


def parse(text: str, file: str = "<string>") -> A.Module:
    """Parse ``.cat`` source into an AST, or raise a located ``CatnetError``."""
    global _state
    parser = _parser()
    outer, _state = _state, _LexState(file)
    state = _state
    try:
        try:
            tree = parser.parse(text)
        except UnexpectedInput as err:
            raise _syntax_error(err, text, file) from None
        if state.depth < 0:
            raise CatnetError("E0109", "unbalanced closing bracket", Span(file, 1, 1, 1, 2))
        items = _Build(file).build(tree)
    except CatnetError as e:
        if e.source is None:
            e.source = text
        raise
    finally:
        _state = outer
    return A.Module(tuple(items), tuple(state.comments))


def read_source(path: str | Path, shown: str | None = None) -> str:
    """Read a ``.cat`` file as UTF-8, with located errors for what goes wrong."""
    name = shown or str(path)
    p = Path(path)
    try:
        if p.is_dir():
            raise CatnetError("E0001", f"`{name}` is a directory, not a .cat file", Span(name, 1, 1, 1, 1))
        if p.exists() and p.stat().st_size > MAX_BYTES:
            raise CatnetError("E0001", f"`{name}` is larger than {MAX_BYTES >> 20} MB", Span(name, 1, 1, 1, 1))
        data = p.read_bytes()
    except FileNotFoundError:
        raise CatnetError("E0001", f"no such file: `{name}`", Span(name, 1, 1, 1, 1)) from None
    except OSError as e:
        raise CatnetError("E0001", f"cannot read `{name}`: {e.strerror or e}", Span(name, 1, 1, 1, 1)) from None
    return decode(data, name)


def decode(data: bytes, name: str) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        shown = data.decode("utf-8", errors="replace")
        before = data[: e.start]
        line = before.count(b"\n") + 1
        col = e.start - (before.rfind(b"\n") + 1) + 1
        raise CatnetError(
            "E0002",
            f"byte 0x{data[e.start]:02x} at offset {e.start} is not valid UTF-8",
            Span(name, line, col, line, col + 1),
            help="save the file as UTF-8",
            source=shown,
        ) from None
    if text.startswith("\ufeff"):
        text = text[1:]
    if "\x00" in text:
        i = text.index("\x00")
        line = text.count("\n", 0, i) + 1
        col = i - (text.rfind("\n", 0, i) + 1) + 1
        raise CatnetError("E0104", "unexpected character `\\x00` (NUL)", Span(name, line, col, line, col + 1), source=text)
    return text


__all__ = ["parse", "read_source", "decode", "MAX_DEPTH", "lark"]
