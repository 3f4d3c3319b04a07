"""The fast parser (catnet/fastparse.py) agrees with lark, or declines.

For every input here, ``fastparse.parse`` either raises ``Bail`` or returns
exactly the module that the lark path of ``catnet.syntax.parse`` returns:
equal nodes of the same types, equal spans (which ``==`` on the AST does
not compare) and equal comments.  The inputs: the examples, the corpus,
the ``.cat`` listings of docs/, the golden error inputs, mutants of the
examples from bench/fuzz.py, programs drawn at random from the grammar
(joined with or without spaces, so that names run into keywords and
``-`` into numbers), and hand-picked texts where lark's contextual lexer
reads a text in an unusual way.  On every example and docs listing the
fast path must be taken, so that it cannot quietly decay into lark.
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from catnet import ast as A
from catnet import fastparse, lalr, syntax
from catnet.errors import CatnetError

from conftest import ROOT

CORPUS = sorted((ROOT / "tests" / "corpus").rglob("*.cat"))
ERRORS = sorted((ROOT / "tests" / "golden" / "errors").glob("*.cat"))
EXAMPLES = sorted((ROOT / "examples").glob("*.cat")) + sorted((ROOT / "examples").glob("*/*.cat"))
_FENCE = re.compile(r"^```([^\n]*)\n(.*?)^```", re.DOTALL | re.MULTILINE)


def _listings() -> list[tuple[str, str]]:
    """Every ``cat`` fenced block of docs/*.md: (where, text)."""
    out = []
    for page in sorted((ROOT / "docs").glob("*.md")):
        text = page.read_text(encoding="utf-8")
        for m in _FENCE.finditer(text):
            if m.group(1).strip().split(" ")[0] == "cat":
                out.append((f"{page.name}:{text.count(chr(10), 0, m.start()) + 1}", m.group(2)))
    return out


LISTINGS = _listings()


# -- comparing ----------------------------------------------------------------


def _difference(a: Any, b: Any, path: str = "module") -> str | None:
    """Where ``a`` and ``b`` differ, spans and types included; ``None`` if nowhere."""
    if type(a) is not type(b):
        return f"{path}: {a!r} ({type(a).__name__}) vs {b!r} ({type(b).__name__})"
    if dataclasses.is_dataclass(a):
        for f in dataclasses.fields(a):
            found = _difference(getattr(a, f.name), getattr(b, f.name), f"{path}.{f.name}")
            if found:
                return found
        return None
    if isinstance(a, tuple):
        if len(a) != len(b):
            return f"{path}: {len(a)} items vs {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            found = _difference(x, y, f"{path}[{i}]")
            if found:
                return found
        return None
    if isinstance(a, float):  # -0.0 and 0.0 differ here
        return None if repr(a) == repr(b) else f"{path}: {a!r} vs {b!r}"
    return None if a == b else f"{path}: {a!r} vs {b!r}"


def _declined(*args: Any, **kwargs: Any) -> A.Module:
    raise fastparse.Bail("the lark path is being measured")


def _lark(monkeypatch: pytest.MonkeyPatch, text: str, file: str = "<string>") -> A.Module:
    """What ``syntax.parse`` returns with the fast path switched off."""
    with monkeypatch.context() as m:
        m.setattr(fastparse, "parse", _declined)
        return syntax.parse(text, file)


def _verdict(monkeypatch: pytest.MonkeyPatch, text: str, file: str = "<string>") -> str:
    """``"bail"`` or ``"same"``; a failed assertion if the fast parser accepts what lark does not, or differs."""
    try:
        fast = fastparse.parse(text, file)
    except fastparse.Bail:
        return "bail"
    try:
        reference = _lark(monkeypatch, text, file)
    except CatnetError as e:
        raise AssertionError(f"the fast parser accepts what lark refuses ({e.code}: {e.message}):\n{text}") from None
    found = _difference(fast, reference)
    assert found is None, f"{found}\n--- text:\n{text}"
    assert fast.comments == reference.comments, text
    return "same"


def _text(path: Path) -> str | None:
    """A file's text as ``parse`` sees it, or ``None`` where reading it is already an error."""
    try:
        text = syntax.decode(path.read_bytes(), str(path))
    except CatnetError:
        return None
    return text.replace("\r\n", "\n").replace("\r", "\n")


# -- the files ------------------------------------------------------------------


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_examples_take_the_fast_path(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = _text(path)
    assert text is not None
    assert _verdict(monkeypatch, text, str(path)) == "same", f"{path.name}: the fast parser declines it"


def test_docs_listings_take_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    assert len(LISTINGS) > 20, "the fences were not found"
    declined = []
    for where, text in LISTINGS:
        if _verdict(monkeypatch, text, where) == "bail":
            try:
                _lark(monkeypatch, text, where)
            except CatnetError:
                continue  # a listing of a syntax error
            declined.append(where)
    assert not declined, f"the fast parser declines listings that parse: {declined}"


def test_corpus_and_error_inputs(monkeypatch: pytest.MonkeyPatch) -> None:
    verdicts = []
    for path in CORPUS + ERRORS:
        text = _text(path)
        if text is not None:
            verdicts.append(_verdict(monkeypatch, text, str(path)))
    assert verdicts.count("same") > 100 and verdicts.count("bail") > 20


def test_constructs_take_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    constructs = [p for p in CORPUS if "constructs" in p.parts]
    assert constructs
    for path in constructs:
        text = _text(path)
        assert text is not None and _verdict(monkeypatch, text, str(path)) == "same", path.name


def test_streamed_parse_is_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    """``parse_stream``, a stretch at a time, gives the same modules either way."""
    monkeypatch.setattr(syntax, "STREAM_CHUNK", 1)  # one declaration per stretch
    for path in EXAMPLES[:6]:
        text = _text(path)
        assert text is not None
        fast = list(syntax.parse_stream(text, str(path)))
        with monkeypatch.context() as m:
            m.setattr(fastparse, "parse", _declined)
            reference = list(syntax.parse_stream(text, str(path)))
        assert _difference(tuple(fast), tuple(reference)) is None, path.name
        assert [p.comments for p in fast] == [p.comments for p in reference]
    # A stretch split by a keyword used as a name is parsed again with the rest.
    text = "object A = R[3]\nmorphism f : A -> A = g(main=1)\nmain f\n"
    fast = list(syntax.parse_stream(text))
    with monkeypatch.context() as m:
        m.setattr(fastparse, "parse", _declined)
        reference = list(syntax.parse_stream(text))
    assert _difference(tuple(fast), tuple(reference)) is None


def test_parse_takes_the_fast_path_and_errors_do_not_change(monkeypatch: pytest.MonkeyPatch) -> None:
    text = "object V = R[4]  # a wire\nmorphism f : V -> V = relu ; tanh\n"
    calls = []
    real = fastparse.parse

    def spy(*args: Any, **kwargs: Any) -> A.Module:
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(fastparse, "parse", spy)
    assert syntax.parse(text, "x.cat") == real(text, "x.cat")
    assert calls
    for path in ERRORS:
        source = _text(path)
        if source is None or not path.stem.startswith("syntax_"):
            continue
        with pytest.raises(CatnetError) as fast:
            syntax.parse(source, path.name)
        with pytest.raises(CatnetError) as reference:
            _lark(monkeypatch, source, path.name)
        assert fast.value.render() == reference.value.render()


# -- what the tokenizer relies on ---------------------------------------------------


def test_the_lexer_facts_hold_for_lark_tables() -> None:
    """Why one maximal-munch tokenizer reads as lark's contextual lexer does (fastparse's docstring)."""
    parser = lalr._parser()
    states = parser.parser.parser.parser.parse_table.states
    assert not [s for s, actions in states.items() if "MINUS" in actions and "SIGNED" in actions]
    name = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
    words = {t.pattern.value for t in parser.terminals if t.pattern.type == "str" and name.match(t.pattern.value)}
    assert words == set(fastparse.KEYWORDS)


def test_the_grammar_is_the_one_the_fast_parser_follows() -> None:
    """A change to grammars/catnet.lark must be made in catnet/fastparse.py too; then update this hash."""
    digest = hashlib.sha256(lalr._grammar_text().encode()).hexdigest()[:16]
    assert digest == GRAMMAR, "the grammar changed: make catnet/fastparse.py follow it, then update GRAMMAR"


GRAMMAR = "9547d798e7afe167"


# -- hand-picked texts ------------------------------------------------------------

_HEAD = "object A = R[4]\n"
TRICKY = [
    "",
    "# only a comment",
    "mainfoo",
    "main foo",
    "objectA = R[3]",
    "object A = R[3]under C4",
    "object A = R[3] underC4",
    "object A = R[] ⊗ Z[3, d] ⊗ I ⊗ Seq[T](R[2]) ⊗ (B ⊗ C)",
    "object A = (R[1])",
    "object A = R[(d)]",
    "object A = R[d * (2 + e) - 3 * 4 * f]",
    "object A = R[a - b - c + d]",
    "object A = R[007, 1.5, 1e3, 2E-2, 1.5e+3]",
    "object A = R[1e999]",
    "object A = R[R]",
    "object A = repeat",
    "object A = R[4] under C(4) × D4 * C2 as regular * 16 + trivial ⊕ sign",
    "object A = R[4] under C4 as (a + b) * 2",
    "object A = R[4] under C4 as a ⊗ (b ⊗ c) ⊗ (d + e) @ f(1, x) * 3",
    "object A = R[4] under C4 as ((a))",
    "object A = R[4] under C(04)",
    "bundle E = R[4] over R[2] in R[6]",
    "bundle E = R[4] over R[2]",
    'import "a\\"b\\\\c.cat"',
    'import "unterminated',
    "shared s[T] = dense(features=4)",
    "main f main g",
    _HEAD + "morphism f : A -> A = g(x -1)",
    _HEAD + "morphism f : A -> A = g(x-1)",
    _HEAD + "morphism f : A -> A = g(x - 1)",
    _HEAD + "morphism f : A -> A = g(-1)",
    _HEAD + "morphism f : A -> A = g(- 1)",
    _HEAD + "morphism f : A -> A = g(1 - -1, 2*-3, -0, -0.0, -1e5)",
    _HEAD + "morphism f : A -> A = g(a=x ; y * 2, b=2 * a ⊗ b, c=(h), d=true, e=false, f=\"s\")",
    _HEAD + "morphism f : A -> A = g(true=1)",
    _HEAD + "morphism f : A -> A = g()",
    _HEAD + "morphism f : A -> A = g(,)",
    _HEAD + "morphism f : A -> A = g[d, 2](1)[3]",
    _HEAD + "morphism f : A -> A = g[](1)",
    _HEAD + "morphism f : A -> A = <a, <b, c>>",
    _HEAD + "morphism f : A -> A = <a, <b, c> >",
    _HEAD + "morphism f : A -> A = ⟨a, ⟨b, c⟩⟩ ; fst",
    _HEAD + "morphism f : A -> A = <a>",
    _HEAD + "morphism f : A -> A = a >> b ; c @ d ⊗ e",
    _HEAD + "morphism f : A -> A = (a ; b) ; (c ; (d ; e))",
    _HEAD + "morphism f : A -> A = (a ⊗ b) ⊗ c ; ((a))",
    _HEAD + "morphism f : A -> A = repeat 2 repeat 3 (a ; b) ⊗ repeat 1 c",
    _HEAD + "morphism f : A -> A = repeat -2 a",
    _HEAD + "morphism f : A -> A = repeat 2.5 a",
    _HEAD + "morphism f : A -> A = inv(a ; b) ; scan[R[4] ⊗ A](c)",
    _HEAD + "morphism f : A -> A = (a : A -> A) ; (b ; c : A ⊗ A → A)",
    _HEAD + "morphism f : A -> A = R",
    _HEAD + "morphism f : A -> A = repeat",
    _HEAD + "morphism f : A->A=a;b",
    _HEAD + "morphism f[d, e](g : A -> A, h : A) : A -> A equivariant under C4 = g",
    _HEAD + "morphism f() : A -> A invariant under C4 × C2 = g",
    _HEAD + "morphism f(x : A) -> A {\n  return x\n}",
    _HEAD + "morphism f(x : A, y : A) -> A ⊗ A equivariant under C4 {\n  a, b = split(x, 2)\n  h = x -1\n"
    "  k = - 1 - -x * (2 / y) + f[d](x, n=3 + d, s=\"same\", t=true)\n  return a + b, --1, -(1), - -0.0\n}",
    _HEAD + "morphism f(x : A) -> A {\n  h = g(-1, a=-1, b=x -1, c=\"s\", true, false)\n  return h\n}",
    _HEAD + "morphism f(x : A) -> A {\n  return x[3]\n}",
    _HEAD + "morphism f(x : A) -> A {\n  return g[2]()\n}",
    _HEAD + "morphism f(x : A) -> A {\n  return (((x)))\n}",
    _HEAD + "morphism f(x : A) -> A {\n  return true\n}",
    _HEAD + "morphism f(x : A) -> A {\n  returnx\n}",
    _HEAD + "morphism f(x : A) -> A {}",
    _HEAD + "morphism f(in : A) -> A {\n  return in\n}",
    _HEAD + "morphism f : A -> A = a\fb",
    _HEAD + "morphism f : A -> A = a\vb",
    _HEAD + "morphism f : A -> A = a\u00a0; b",
    _HEAD + "morphism f : A -> A = café",
    _HEAD + "morphism f : A -> A = a # ⊗ comment é\n; b # end",
    _HEAD + "morphism f : A -> A = a\t;\tb",
    _HEAD + "morphism f : A -> A = a ; b -> c",
    _HEAD + "morphism f : A -> A = a ; b)",
    "morphism f : A -> A = " + "(" * 64 + "a" + ")" * 64,
    "morphism f : A -> A = " + "(" * 65 + "a" + ")" * 65,
    "morphism f : A -> A = " + "repeat 2 " * 62 + "a",
    "morphism f : A -> A = " + "repeat 2 " * 70 + "a",
    "object A = R[" + " + ".join(["1"] * 63) + "]",
    "object A = R[" + "9" * syntax.MAX_DIGITS + "]",
    "object A = R[" + "9" * (syntax.MAX_DIGITS + 1) + "]",
    "morphism f : A -> A = " + " ⊗ ".join(["a"] * 9000),
]


@pytest.mark.parametrize("text", TRICKY, ids=range(len(TRICKY)))
def test_tricky_texts(text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _verdict(monkeypatch, text)


# -- random programs from the grammar --------------------------------------------

NAMES = ["a", "b", "x", "y", "f", "dense", "relu", "A", "B", "V", "d", "n", "_t", "Rx", "Zed", "In", "I2", "Seq2",
         "repeat_", "inv2", "scan_", "trueish", "as_", "over1", "main_", "x1"]
KEYWORDS = sorted(fastparse.KEYWORDS)
NUMBERS = ["0", "1", "2", "16", "007", "1.5", "0.25", "1e3", "2E-2", "3.0e+1"]
STRINGS = ['"same"', '""', '"a\\"b"', '"\\\\"', '"#not a comment"', '"é ⊗"']
#: What goes between tokens: mostly a space; sometimes nothing, so that
#: names run into keywords and numbers, and `-` into a number.
GAPS = [" "] * 12 + ["", "\n", "\n  ", "\t", " # note\n", "  #\n", "\f"]


class Program:
    """A random token sequence of the grammar (rarely with a keyword where a name goes)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.out: list[str] = []

    def emit(self, *tokens: str) -> None:
        self.out.extend(tokens)

    def pick(self, options: list[str]) -> str:
        return self.rng.choice(options)

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def name(self) -> None:
        self.emit(self.pick(KEYWORDS) if self.chance(0.01) else self.pick(NAMES))

    def sep(self, between: Any, item: Any, most: int = 3, least: int = 1) -> None:
        """``least`` to ``most`` items, fewer more often, with ``between`` (a token or a function) between them."""
        count = least
        while count < most and self.chance(0.35):
            count += 1
        for j in range(count):
            if j:
                self.emit(between() if callable(between) else between)
            item()

    def then(self) -> str:
        return self.pick([";", ";", ">>"])

    def tensor(self) -> str:
        return self.pick(["⊗", "⊗", "@"])

    # declarations
    def decl(self) -> None:
        kind = self.rng.choices(["import", "object", "bundle", "shared", "main", "morphism", "wiring"],
                                [1, 4, 1, 2, 1, 8, 4])[0]
        if kind == "import":
            self.emit("import", self.pick(STRINGS))
        elif kind == "object":
            self.emit("object")
            self.name()
            self.emit("=")
            self.type(2)
            if self.chance(0.3):
                self.emit("under")
                self.group()
                if self.chance(0.6):
                    self.emit("as")
                    self.rep(2)
        elif kind == "bundle":
            self.emit("bundle")
            self.name()
            self.emit("=")
            self.type(2)
            self.emit("over")
            self.type(2)
            if self.chance(0.5):
                self.emit("in")
                self.type(2)
        elif kind == "shared":
            self.emit("shared")
            self.name()
            if self.chance(0.3):
                self.dim_params()
            self.emit("=")
            self.expr(2)
        elif kind == "main":
            self.emit("main")
            self.name()
        elif kind == "morphism":
            self.emit("morphism")
            self.name()
            if self.chance(0.3):
                self.dim_params()
            if self.chance(0.4):
                self.params()
            self.emit(":")
            self.type(2)
            self.emit(self.pick(["->", "→"]))
            self.type(2)
            self.claim()
            self.emit("=")
            self.expr(3)
        else:
            self.emit("morphism")
            self.name()
            if self.chance(0.3):
                self.dim_params()
            self.params()
            self.emit(self.pick(["->", "→"]))
            self.type(2)
            self.claim()
            self.emit("{")
            for _ in range(self.rng.randint(0, 3)):
                self.statement()
            self.emit("}")

    def dim_params(self) -> None:
        self.emit("[")
        self.sep(",", self.name)
        self.emit("]")

    def params(self) -> None:
        self.emit("(")
        self.sep(",", self.param, 3, 0)
        self.emit(")")

    def param(self) -> None:
        self.name()
        self.emit(":")
        self.type(2)
        if self.chance(0.3):
            self.emit("->")
            self.type(1)

    def claim(self) -> None:
        if self.chance(0.2):
            self.emit(self.pick(["equivariant", "invariant"]), "under")
            self.group()

    def group(self) -> None:
        def factor() -> None:
            self.name()
            if self.chance(0.3):
                self.emit("(", self.pick(NUMBERS[:5]), ")")

        self.sep(lambda: self.pick(["×", "*"]), factor)

    def rep(self, depth: int) -> None:
        def atom() -> None:
            roll = self.rng.random()
            if roll < 0.2 and depth > 0:
                self.emit("(")
                self.rep(depth - 1)
                self.emit(")")
            elif roll < 0.4:
                self.name()
                self.emit("(")
                self.sep(",", lambda: self.emit(self.pick(NAMES + NUMBERS[:4])))
                self.emit(")")
            else:
                self.name()

        def term() -> None:
            self.sep(self.tensor, atom, 2)
            if self.chance(0.3):
                self.emit("*", self.pick(NUMBERS[:5]))

        self.sep(lambda: self.pick(["+", "⊕"]), term)

    # objects and sizes
    def type(self, depth: int) -> None:
        def atom() -> None:
            roll = self.rng.random()
            if roll < 0.45:
                self.emit(self.pick(["R", "R", "Z"]), "[")
                self.sep(",", lambda: self.dim(1), 3, 0)
                self.emit("]")
            elif roll < 0.5:
                self.emit("I")
            elif roll < 0.6 and depth > 0:
                self.emit("Seq", "[")
                self.dim(1)
                self.emit("]", "(")
                self.type(depth - 1)
                self.emit(")")
            elif roll < 0.7 and depth > 0:
                self.emit("(")
                self.type(depth - 1)
                self.emit(")")
            else:
                self.name()

        self.sep(self.tensor, atom, 3 if depth > 0 else 1)

    def dim(self, depth: int) -> None:
        def atom() -> None:
            roll = self.rng.random()
            if roll < 0.4:
                self.emit(self.pick(NUMBERS))
            elif roll < 0.55 and depth > 0:
                self.emit("(")
                self.dim(depth - 1)
                self.emit(")")
            else:
                self.name()

        self.sep(lambda: self.pick(["+", "-"]), lambda: self.sep("*", atom, 2), 3)

    # point-free expressions
    def expr(self, depth: int) -> None:
        self.sep(self.then, lambda: self.sep(self.tensor, lambda: self.unary(depth), 3), 4)

    def unary(self, depth: int) -> None:
        while self.chance(0.1):
            self.emit("repeat", self.pick(NUMBERS))
        roll = self.rng.random()
        if depth <= 0 or roll < 0.55:
            self.ref(depth)
        elif roll < 0.7:
            self.emit("(")
            self.expr(depth - 1)
            self.emit(")")
        elif roll < 0.78:
            self.emit("(")
            self.expr(depth - 1)
            self.emit(":")
            self.type(1)
            self.emit(self.pick(["->", "→"]))
            self.type(1)
            self.emit(")")
        elif roll < 0.88:
            opening, closing = self.pick([("<", ">"), ("⟨", "⟩")])
            self.emit(opening)
            self.sep(",", lambda: self.expr(depth - 1), 3, 2)
            self.emit(closing)
        elif roll < 0.94:
            self.emit("inv", "(")
            self.expr(depth - 1)
            self.emit(")")
        else:
            self.emit("scan", "[")
            self.type(1)
            self.emit("]", "(")
            self.expr(depth - 1)
            self.emit(")")

    def ref(self, depth: int) -> None:
        self.name()
        if self.chance(0.15):
            self.emit("[")
            self.sep(",", lambda: self.dim(1))
            self.emit("]")
        if depth > 0 and self.chance(0.25):
            self.emit("(")
            self.sep(",", lambda: self.arg(depth - 1), 3, 0)
            self.emit(")")

    def arg(self, depth: int) -> None:
        if self.chance(0.5):
            self.name()
            self.emit("=")
        self.value(depth)

    def value(self, depth: int) -> None:
        def atom() -> None:
            roll = self.rng.random()
            if roll < 0.25:
                self.emit(self.pick(NUMBERS))
            elif roll < 0.4:
                self.emit("-" + self.pick(NUMBERS))
            elif roll < 0.5:
                self.emit(self.pick(STRINGS))
            elif roll < 0.6 or depth <= 0:
                self.emit(self.pick(["true", "false"]))
            else:
                self.expr(depth)

        self.sep(lambda: self.pick(["+", "-"]), lambda: self.sep("*", atom, 2), 2)

    # the wiring form
    def statement(self) -> None:
        if self.chance(0.4):
            self.emit("return")
            self.sep(",", lambda: self.wexpr(2), 2)
        else:
            self.sep(",", self.name, 2)
            self.emit("=")
            self.wexpr(2)

    def wexpr(self, depth: int) -> None:
        def term() -> None:
            while self.chance(0.15):
                self.emit("-")
            roll = self.rng.random()
            if roll < 0.3:
                self.emit(self.pick(NUMBERS))
            elif roll < 0.45 and depth > 0:
                self.emit("(")
                self.wexpr(depth - 1)
                self.emit(")")
            elif roll < 0.65 and depth > 0:
                self.name()
                if self.chance(0.2):
                    self.emit("[")
                    self.dim(0)
                    self.emit("]")
                self.emit("(")
                self.sep(",", lambda: warg(), 3, 0)
                self.emit(")")
            else:
                self.name()

        def warg() -> None:
            roll = self.rng.random()
            if roll < 0.2:
                self.name()
                self.emit("=")
                self.value(1)
            elif roll < 0.3:
                self.emit(self.pick(STRINGS + ["true", "false"]))
            else:
                self.wexpr(depth - 1)

        self.sep(lambda: self.pick(["+", "-"]), lambda: self.sep(lambda: self.pick(["*", "/"]), term, 2), 3)


def _programs(count: int, seed: int) -> Iterator[str]:
    """``count`` random programs; a few have a token deleted, doubled or swapped."""
    for index in range(count):
        rng = random.Random(f"{seed}:{index}")
        program = Program(rng)
        for _ in range(rng.randint(1, 3)):
            program.decl()
        tokens = program.out
        if tokens and rng.random() < 0.1:
            i = rng.randrange(len(tokens))
            j = rng.randrange(len(tokens))
            edit = rng.choice(["delete", "double", "swap"])
            if edit == "delete":
                del tokens[i]
            elif edit == "double":
                tokens.insert(i, tokens[i])
            else:
                tokens[i], tokens[j] = tokens[j], tokens[i]
        gaps = GAPS if rng.random() < 0.8 else [" ", " ", ""]
        yield "".join(t + rng.choice(gaps) for t in tokens)


@pytest.mark.parametrize("seed", range(4))
def test_random_programs(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    verdicts = [_verdict(monkeypatch, text) for text in _programs(1000, seed)]
    # The fast path must be the common case on programs of the grammar.
    assert verdicts.count("same") > len(verdicts) // 3, verdicts.count("same")


@pytest.mark.parametrize("nesting, depth, wires", [(3, 128, 16_384), (6, 4, 4), (100, 2, 3)])
def test_lowered_limits_are_kept(nesting: int, depth: int, wires: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """With lark's limits lowered, the fast parser still accepts nothing that lark refuses.

    So its count of AST levels, brackets and parts side by side is never
    below lark's (the fast parser reads the limits when it starts).
    """
    monkeypatch.setattr(syntax, "MAX_NESTING", nesting)
    monkeypatch.setattr(syntax, "MAX_DEPTH", depth)
    monkeypatch.setattr(syntax, "MAX_WIRES", wires)
    verdicts = [_verdict(monkeypatch, text) for text in _programs(250, 100 + nesting)]
    assert "same" in verdicts


def test_mutants_of_the_examples(monkeypatch: pytest.MonkeyPatch) -> None:
    from bench.fuzz import Mutator, load_seeds

    mutator = Mutator(load_seeds(), seed=7)
    verdicts = []
    for index in range(600):
        _, data, _ = mutator.mutant(index)
        try:
            text = syntax.decode(data, "mutant.cat")
        except CatnetError:
            continue
        verdicts.append(_verdict(monkeypatch, text.replace("\r\n", "\n").replace("\r", "\n")))
    assert verdicts.count("same") > 100 and verdicts.count("bail") > 100
