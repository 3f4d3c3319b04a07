"""Grammar-aware fuzzing of the front end: `check` and `fmt` on mutated files.

Every example in ``examples/`` and every file under ``tests/corpus/constructs/``
is a seed.  A mutant is a seed changed by one to four seeded mutations:

- **token level**: delete, duplicate, swap or replace tokens (by tokens of
  the language), insert a token or a whole construct;
- **structural**: splice a bracketed sub-expression, a declaration or a run
  of tokens from another seed; nest an expression many times; repeat a
  declaration as a chain of renamed copies, each using the previous one;
  grow a product, a pairing or an arithmetic chain (sizes, arguments,
  wires); respell operators (``;``/``>>``, ``⊗``/``@``, ``->``/``→``,
  ``<>``/``⟨⟩``);
- **byte level**: insert, delete, replace or flip bytes, invalid UTF-8,
  control characters (in code, comments and strings), CR, CRLF and mixed
  line endings, form feeds, byte-order marks, truncation.

Each mutant is decoded as ``catnet check`` decodes a file, then run through
``check_text`` (imports resolve inside ``tests/corpus/constructs/``) and
``format_text``, in a worker process that has imported catnet once, and is
classified as

- **ok**: it checks;
- **error**: a located ``CatnetError`` (a code, and a span with file, line
  and column inside the file), or one of the codes that docs/errors.md
  documents as having no location;
- **unsafe**: a located ``CatnetError`` whose diagnostic would print a raw
  control character (a terminal escape from a string or comment, say);
- **unlocated**: a ``CatnetError`` without a usable span;
- **crash**: any other exception (with the last frame of its traceback);
- **slow**: checking or formatting it took longer than ``--time-limit``
  (each operation is interrupted at the limit, so a hang costs the run only
  the limit; a hang inside C code is stopped by ``faulthandler``, which
  dumps the stack and ends the worker, and a new worker takes over).

For every mutant that parses, ``format_text`` must be idempotent, must keep
the AST and the comments, and the formatted text must get the same verdict
from ``check_text`` (both ok, or the same error code); ``fmt`` must not
refuse a file that checks.  Each broken promise is a *fmt violation*.

The run prints a table — counts per class, the error codes, the slowest
input, the fmt violations and one line per distinct finding — and exits 1
if there is any crash, unlocated or unsafe error, slow input or fmt
violation.  With ``--out DIR`` every finding is saved there as a ``.cat``
file whose first line says what it found; the first finding of each kind
is also minimised (lines, then tokens, are dropped while the finding
persists; slow ones are kept as found) and saved as ``*-min.cat``.
Minimised findings belong in ``tests/corpus/fuzz/``.

Run: ``python bench/fuzz.py [--count 10000] [--seed 0] [--time-limit 2]
[--out DIR] [--jobs 1]``.  ``--show N`` prints mutant N of the seed;
``--replay FILE…`` classifies files instead of mutants.
"""

from __future__ import annotations

import argparse
import faulthandler
import multiprocessing
import multiprocessing.connection
import random
import re
import resource
import signal
import sys
import tempfile
import time
import traceback
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, Callable, Iterator

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from catnet.check import check_text  # noqa: E402
from catnet.errors import CatnetError  # noqa: E402
from catnet.fmt import format_text  # noqa: E402
from catnet.library import GENERATORS  # noqa: E402
from catnet.syntax import decode, parse  # noqa: E402

CORPUS = ROOT / "tests" / "corpus" / "constructs"
EXAMPLES = ROOT / "examples"
ERRORS_DOC = ROOT / "docs" / "errors.md"

# ---------------------------------------------------------------------------
# Seeds and the language's tokens
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Seed:
    """One seed file: the name its mutants are checked under, and its bytes."""

    name: str
    label: str
    data: bytes


def load_seeds() -> list[Seed]:
    """Every example and every constructs file, in a fixed order."""
    paths = sorted(EXAMPLES.glob("*.cat")) + sorted(CORPUS.rglob("*.cat"))
    return [Seed(p.name, str(p.relative_to(ROOT)), p.read_bytes()) for p in paths]


#: A rough lexer of `.cat` text, on bytes so that broken UTF-8 survives it.
TOKEN = re.compile(
    rb'\s+|#[^\n]*|"(?:[^"\\\n]|\\.)*"|[A-Za-z_][A-Za-z0-9_]*|-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?'
    rb"|->|>>|\xe2\x8a\x97|\xe2\x86\x92|\xe2\x9f\xa8|\xe2\x9f\xa9|[\x80-\xff]+|.",
    re.S,
)
NAME = re.compile(rb"[A-Za-z_][A-Za-z0-9_]*\Z")
KEYWORDS = [b"import", b"object", b"bundle", b"over", b"under", b"as", b"equivariant", b"invariant", b"shared", b"main",
            b"morphism", b"repeat", b"inv", b"scan", b"return", b"true", b"false", b"R", b"Z", b"I", b"Seq"]
OPERATORS = [b";", b">>", "⊗".encode(), b"@", b"->", "→".encode(), b"<", b">", "⟨".encode(), "⟩".encode(),
             b"(", b")", b"[", b"]", b"{", b"}", b",", b"=", b":", b"+", b"-", b"*", b"/", b"> >"]
NUMBERS = [b"0", b"1", b"2", b"3", b"4", b"8", b"64", b"-1", b"-0.5", b"0.1", b"1.0", b"1e-05", b"2.5E4", b"1e99",
           b"1e400", b"100000", b"100001", b"2147483647", b"2147483648", b"1099511627776", b"9" * 30,
           b"0" * 30 + b"1", b"1.", b".5", b"1e", b"0x10", b"1_000"]
STRINGS = [b'"same"', b'"valid"', b'""', b'"\\""', b'"\\\\"', b'"lib/blocks.cat"', b'"imports.cat"',
           b'"chain.cat"', b'"missing.cat"', b'"lib"', b'"."', b'"../constructs/objects.cat"', b'"/etc/passwd"',
           b'"\\x41"', b'"\x1b[31mred\x1b[0m"', b'"tab\there"', b'"' + b"a" * 300 + b'"', b'"caf\xc3\xa9"']
COMMENTS = [b"# comment", b"#", b"# \xe2\x8a\x97 \xe2\x86\x92", b"# \x1b[2J", b"#" * 200]
CONSTRUCTS = [
    b"\nobject O = R[4]\n", b"\nobject O = R[d * 4 + 1] under C4\n", b"\nbundle E = R[4] over R[2]\n",
    b"\nobject G = R[8, 8, 8] under C4 as regular * 2\n", b" under D4 as rotation + sign * 2 ", b" as quotient(s) ",
    b" equivariant under C4 ", b" invariant under S5 ", b" regular \xe2\x8a\x97 sign ", b" gconv(features=8) ; relu ; gpool ",
    b"\nmorphism m : R[4] -> R[4] = relu\n", b"\nmorphism m[d] : R[d] -> R[d * 2] = dense\n",
    b"\nmorphism t(f : R[4] -> R[4]) : R[4] -> R[4] = f ; f\n", b"\nshared s = (dense : R[4] -> R[4])\n",
    b"\nmain m\n", b'\nimport "lib/blocks.cat"\n', b'\nimport "chain.cat"\n',
    b"\nmorphism w(x : R[4], y : R[4]) -> R[4] {\n  a, _b = split(x, 2)\n  return x + y\n}\n",
    b" <relu, tanh> ", b" <relu, <tanh, id> > ", b" (relu : R[4] -> R[4]) ", b" repeat 3 ", b" inv(",
    b" scan[R[4]](", b" copy ; (relu \xe2\x8a\x97 id) ; add ", b" Seq[T](R[4]) ", b" R[] ", b" Z[3] ", b" I ",
    b"[d]", b"[d, e]", b"(f : R[d] -> R[d])", b" dense(features=d * 4) ", b" conv(8, kernel=3, padding=\"same\") ",
    b" split(size=2, axis=0) ", b"\n  return x, x\n", b"\n  h = x + f(x)\n",
    b"\n  h = (1 - x) * f(x) + -x / 2\n", b" 0.5 * x - 1 ", b" x / (2 - 2) ", b" -(-x) ", b" 1 / x ",
]
BAD_UTF8 = [b"\xff", b"\xc3", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe2\x8a", b"\x80", b"\xfe\xff"]
CONTROL = [b"\x00", b"\x01", b"\x07", b"\x08", b"\x0b", b"\x0c", b"\x1b", b"\x1b[31m", b"\x1b]0;title\x07", b"\x7f",
           b"\r", b"\t", b"\xc2\x85", b"\xe2\x80\xa8", b"\xe2\x80\xa9", b"\xe2\x80\xae", b"\xef\xbb\xbf",
           b"\xc2\xa0", b"\xe2\x80\x8b", b"\x1c", b"\x1e"]
#: How many times a structural mutation repeats something: mostly a few,
#: sometimes past the language's limits (128 brackets, 100 nesting levels).
SCALES = [2, 3, 5, 10, 20, 50, 99, 100, 101, 127, 128, 129, 200, 500, 1000, 2000]
SCALE_WEIGHTS = [12, 8, 8, 8, 6, 5, 3, 3, 3, 3, 3, 3, 3, 2, 2, 1]
_OPEN = {b"(": b")", b"[": b"]", b"{": b"}", b"<": b">", "⟨".encode(): "⟩".encode()}
_DECL = {b"import", b"object", b"bundle", b"shared", b"main", b"morphism"}
_RESPELL = {b";": b">>", b">>": b";", "⊗".encode(): b"@", b"@": "⊗".encode(), b"->": "→".encode(),
            "→".encode(): b"->", b"<": "⟨".encode(), b">": "⟩".encode()}


_BINARY = {b";", b">>", "⊗".encode(), b"@", b"+", b"-", b"*", b"/", b","}
_BINARY_KINDS = {t.decode() for t in _BINARY}


def _kind(token: bytes) -> str:
    """A token's lexical kind, for replacing it by a token of the same kind."""
    if token in KEYWORDS or token in _BINARY or token in (b"->", "→".encode()):
        return token.decode()
    if NAME.match(token):
        return "name"
    if token[:1].isdigit() or (token[:1] == b"-" and token[1:2].isdigit()):
        return "number"
    return {b'"': "string", b"#": "comment"}.get(token[:1], "other")


def _flavour(unit: bytes) -> str:
    """Whether a sub-expression looks like an object, a size or a morphism."""
    first = unit[:1]
    if first in (b"R", b"Z", b"I") or unit.startswith(b"Seq") or first.isupper():
        return "type"
    return "size" if first.isdigit() else "morphism"


def vocabulary(seeds: list[Seed]) -> list[bytes]:
    """Tokens that mutations insert: keywords, operators, literals, generators and the seeds' names."""
    names = sorted({t for s in seeds for t in TOKEN.findall(s.data) if NAME.match(t)})
    generator_words = sorted({g.encode() for g in GENERATORS}
                             | {a.name.encode() + b"=" for g in GENERATORS.values() for a in g.args})
    return KEYWORDS + OPERATORS + NUMBERS + STRINGS + COMMENTS + generator_words + names + [b"\n", b" ", b"_", b"_x"]


# ---------------------------------------------------------------------------
# Mutations
# ---------------------------------------------------------------------------


class Mutator:
    """Seeded mutations of `.cat` bytes; mutant ``i`` of seed ``s`` is always the same."""

    def __init__(self, seeds: list[Seed], seed: int) -> None:
        self.seeds = seeds
        self.seed = seed
        self.vocab = vocabulary(seeds)
        self.tokens = [TOKEN.findall(s.data) for s in seeds]
        self.by_kind: dict[str, list[bytes]] = {}
        for t in sorted(set(self.vocab)):
            kind = _kind(t)
            self.by_kind.setdefault(kind if kind not in _BINARY_KINDS else "binary", []).append(t)
        self.ops: list[tuple[Callable[[random.Random, list[bytes]], tuple[list[bytes], str]], int]] = [
            (self.t_delete, 6), (self.t_duplicate, 5), (self.t_swap, 4), (self.t_replace, 12), (self.t_insert, 4),
            (self.t_construct, 7), (self.s_splice, 7), (self.s_nest, 6), (self.s_repeat_decl, 4), (self.s_grow, 6),
            (self.s_respell, 3), (self.b_bytes, 4), (self.b_utf8, 2), (self.b_control, 4), (self.b_lines, 4),
            (self.b_truncate, 2),
        ]

    def mutant(self, index: int) -> tuple[Seed, bytes, str]:
        """Mutant ``index``: its seed, its bytes and a short description of the mutations."""
        rng = random.Random(f"{self.seed}:{index}")
        k = rng.randrange(len(self.seeds))
        toks = list(self.tokens[k])
        done: list[str] = []
        for _ in range(rng.choice([1, 1, 1, 1, 2, 2, 3, 4])):
            op = rng.choices([o for o, _ in self.ops], [w for _, w in self.ops])[0]
            toks, what = op(rng, toks)
            done.append(what)
        return self.seeds[k], b"".join(toks), f"{self.seeds[k].label}: " + ", ".join(done)

    # -- helpers
    @staticmethod
    def _code(toks: list[bytes]) -> list[int]:
        """Indices of the tokens that are not whitespace or comments."""
        return [i for i, t in enumerate(toks) if not t.isspace() and not t.startswith(b"#")]

    def _pick(self, rng: random.Random, toks: list[bytes]) -> int:
        code = self._code(toks)
        return rng.choice(code) if code else rng.randrange(len(toks) + 1)

    @staticmethod
    def _group(toks: list[bytes], i: int) -> tuple[int, int]:
        """The token range ``[i, j)`` of the bracketed group opened at ``i`` (or just token ``i``)."""
        close = _OPEN.get(toks[i]) if i < len(toks) else None
        if close is None:
            return i, min(i + 1, len(toks))
        depth = 0
        for j in range(i, len(toks)):
            if toks[j] == toks[i]:
                depth += 1
            elif toks[j] == close:
                depth -= 1
                if depth == 0:
                    return i, j + 1
        return i, i + 1

    def _units(self, toks: list[bytes]) -> list[tuple[int, int]]:
        """Every sub-expression: a name with its bracketed arguments, or a bracketed group of its own."""
        code = self._code(toks)
        units: list[tuple[int, int]] = []
        for n, i in enumerate(code):
            t = toks[i]
            prev = toks[code[n - 1]] if n else b""
            if NAME.match(t) and t not in _DECL and t not in (b"over", b"under", b"return"):
                end = i + 1
                # A name takes the brackets right after it: `dense(4)`, `R[64]`, `scan[H](cell)`.
                while end < len(toks) and toks[end] in (b"(", b"["):
                    end = self._group(toks, end)[1]
                if t == b"repeat":
                    continue
                units.append((i, end))
            elif t in _OPEN and not NAME.match(prev):
                units.append(self._group(toks, i))
        return units

    def _unit(self, rng: random.Random, toks: list[bytes]) -> tuple[int, int]:
        """A random sub-expression (an empty range at a random place if there is none)."""
        units = self._units(toks)
        if not units:
            i = rng.randrange(len(toks) + 1)
            return i, i
        return rng.choice(units)

    @staticmethod
    def _declarations(toks: list[bytes]) -> list[tuple[int, int]]:
        """Token ranges of the top-level declarations (a keyword at the start of a line up to the next)."""
        starts = [i for i, t in enumerate(toks) if t in _DECL and (i == 0 or toks[i - 1].endswith(b"\n"))]
        return list(zip(starts, [*starts[1:], len(toks)]))  # none when a mutant has no declaration left

    @staticmethod
    def _scale(rng: random.Random) -> int:
        return rng.choices(SCALES, SCALE_WEIGHTS)[0]

    # -- token level
    def t_delete(self, rng: random.Random, toks: list[bytes]) -> tuple[list[bytes], str]:
        kind = rng.choice(["token", "token", "operand", "declaration"])
        code = self._code(toks)
        if kind == "operand":
            # An operator and the sub-expression after it: `; relu`, `⊗ id`, `, tanh`.
            ops = [i for i in code if toks[i] in (b";", b">>", b",", b"+", b"*", b"-", b"@", "⊗".encode())]
            if ops:
                i = rng.choice(ops)
                units = [u for u in self._units(toks) if u[0] > i]
                if units:
                    return toks[:i] + toks[units[0][1]:], "delete an operand"
        if kind == "declaration" and self._declarations(toks):
            a, b = rng.choice(self._declarations(toks))
            return toks[:a] + toks[b:], "delete a declaration"
        i = self._pick(rng, toks)
        return toks[:i] + toks[i + 1:], "delete token"

    def t_duplicate(self, rng: random.Random, toks: list[bytes]) -> tuple[list[bytes], str]:
        if rng.random() < 0.5:
            a, b = self._unit(rng, toks)
            sep = rng.choice([b" ; ", b" \xe2\x8a\x97 ", b", ", b" ", b" + "])
            return toks[:b] + [sep] + toks[a:b] + toks[b:], f"duplicate a sub-expression with {sep.strip()!r}"
        i = self._pick(rng, toks)
        return toks[:i] + toks[i:i + 1] * 2 + toks[i + 1:], "duplicate token"

    def t_swap(self, rng: random.Random, toks: list[bytes]) -> tuple[list[bytes], str]:
        units = self._units(toks)
        if len(units) >= 2 and rng.random() < 0.6:
            k = rng.randrange(len(units) - 1)
            (a, b), (c, d) = units[k], units[k + 1]
            if b <= c:
                return toks[:a] + toks[c:d] + toks[b:c] + toks[a:b] + toks[d:], "swap sub-expressions"
        code = self._code(toks)
        if len(code) < 2:
            return toks, "swap (nothing)"
        k = rng.randrange(len(code) - 1)
        i, j = code[k], code[k + 1]
        out = list(toks)
        out[i], out[j] = out[j], out[i]
        return out, "swap tokens"

    def t_replace(self, rng: random.Random, toks: list[bytes]) -> tuple[list[bytes], str]:
        i = self._pick(rng, toks)
        old = toks[i] if i < len(toks) else b""
        # Mostly a token of the same kind, so that the mutant still parses
        # and reaches the checker; otherwise any token of the language.
        kind = _kind(old)
        kin = [t for t in self.by_kind.get(kind if kind not in _BINARY_KINDS else "binary", []) if t != old]
        new = rng.choice(kin) if kin and rng.random() < 0.7 else rng.choice(self.vocab)
        return toks[:i] + [new] + toks[i + 1:], f"replace token by {new[:20]!r}"

    def t_insert(self, rng: random.Random, toks: list[bytes]) -> tuple[list[bytes], str]:
        i = rng.randrange(len(toks) + 1)
        new = rng.choice(self.vocab)
        return toks[:i] + [b" ", new, b" "] + toks[i:], f"insert {new[:20]!r}"

    def t_construct(self, rng: random.Random, toks: list[bytes]) -> tuple[list[bytes], str]:
        new = rng.choice(CONSTRUCTS)
        if new.startswith(b"\n") and rng.random() < 0.8:
            # A declaration or statement goes at the start of a line.
            starts = [i for i, t in enumerate(toks) if i == 0 or toks[i - 1].endswith(b"\n")]
            i = rng.choice(starts) if starts else 0
        elif rng.random() < 0.6:
            a, b = self._unit(rng, toks)
            return toks[:a] + TOKEN.findall(new) + toks[b:], f"replace a sub-expression by {new.strip()[:24]!r}"
        else:
            i = rng.randrange(len(toks) + 1)
        return toks[:i] + TOKEN.findall(new) + toks[i:], f"insert construct {new.strip()[:24]!r}"

    # -- structural
    def s_splice(self, rng: random.Random, toks: list[bytes]) -> tuple[list[bytes], str]:
        donor = rng.choice(self.tokens)
        kind = rng.choice(["unit", "declaration", "run"])
        if kind == "declaration" and self._declarations(donor):
            s, e = rng.choice(self._declarations(donor))
        elif kind == "run" and donor:
            s = rng.randrange(len(donor))
            e = min(len(donor), s + rng.randint(1, 12))
        else:
            kind = "unit"
            s, e = self._unit(rng, donor)
        piece = donor[s:e]
        if kind == "declaration":
            decls = self._declarations(toks)
            if decls and rng.random() < 0.5:
                a, b = rng.choice(decls)
                return toks[:a] + piece + toks[b:], "splice a declaration over another"
            i = rng.choice([a for a, _ in decls] + [len(toks)])
            return toks[:i] + [b"\n"] + piece + [b"\n"] + toks[i:], "splice a declaration"
        if rng.random() < 0.5:
            a, b = self._unit(rng, toks)
            if kind == "unit":
                # Prefer a donor of the same flavour: an object for an object, a size for a size.
                want = _flavour(b"".join(toks[a:b]))
                alike = [u for u in self._units(donor) if _flavour(b"".join(donor[u[0]:u[1]])) == want]
                if alike:
                    s, e = rng.choice(alike)
                    piece = donor[s:e]
            return toks[:a] + piece + toks[b:], f"splice a {kind} over a sub-expression"
        i = rng.randrange(len(toks) + 1)
        return toks[:i] + [b" "] + piece + [b" "] + toks[i:], f"splice a {kind}"

    def s_nest(self, rng: random.Random, toks: list[bytes]) -> tuple[list[bytes], str]:
        a, b = self._unit(rng, toks)
        n = self._scale(rng)
        inner = b"".join(toks[a:b])
        flavour = _flavour(inner)
        if flavour == "type":
            wrappers = [(b"(", b")"), (b"Seq[2](", b")"), (b"(", b" \xe2\x8a\x97 I)"), (b"(I \xe2\x8a\x97 ", b")")]
        elif flavour == "size":
            wrappers = [(b"(", b")"), (b"(", b" + 1)"), (b"(", b" * 1)"), (b"(1 * ", b")"), (b"(2 - 1) * (", b")")]
        else:
            wrappers = [(b"(", b")"), (b"inv(", b")"), (b"repeat 2 ", b""), (b"repeat 1 ", b""), (b"<", b", id>"),
                        (b"(", b" ; id)"), (b"(id ; ", b")"), (b"scan[R[4]](", b")"), (b"(", b" : R[4] -> R[4])"),
                        (b"(id \xe2\x8a\x97 ", b")"), (b"residual(", b")"), (b"twice(", b", g=id)"), (b"(1 - ", b") / 2")]
        pre, post = rng.choice(wrappers)
        # Nested pairings close with `> >`, as the language asks.
        sep = b" " if post.endswith(b">") else b""
        text = pre * n + inner + (post + sep) * n
        shown = f"{pre.decode(errors='replace')}…{post.decode(errors='replace')}"
        return toks[:a] + [text] + toks[b:], f"nest {shown!r} {n} times"

    def s_repeat_decl(self, rng: random.Random, toks: list[bytes]) -> tuple[list[bytes], str]:
        decls = self._declarations(toks)
        if not decls:
            return toks, "repeat a declaration (none)"
        s, e = rng.choice(decls)
        decl = toks[s:e]
        n = self._scale(rng)
        names = [i for i, t in enumerate(decl) if NAME.match(t) and t not in _DECL]
        if not names:
            return toks[:e] + decl * n + toks[e:], f"repeat a declaration {n} times"
        name = decl[names[0]]
        chain = rng.random() < 0.6
        copies: list[bytes] = []
        for k in range(n):
            new = [name + b"_%d" % k if i == names[0] else t for i, t in enumerate(decl)]
            if chain and k:
                # Each copy uses the one before it: the chained-definitions case.
                new = [name + b"_%d" % (k - 1) if i != names[0] and t == name else t for i, t in enumerate(new)]
                new = [t if i <= names[0] or not NAME.match(t) or t in _DECL or t in (b"R", b"Z", b"I", b"Seq")
                       or rng.random() < 0.7 else name + b"_%d" % (k - 1) for i, t in enumerate(new)]
            copies.extend(new)
            if not (copies[-1].endswith(b"\n")):
                copies.append(b"\n")
        return toks[:e] + copies + toks[e:], f"repeat a declaration {n} times{' as a chain' if chain else ''}"

    def s_grow(self, rng: random.Random, toks: list[bytes]) -> tuple[list[bytes], str]:
        n = self._scale(rng)
        code = self._code(toks)
        kind = rng.choice(["product", "pairing", "size", "sum", "then"])
        if kind == "product":
            spots = [i for i in code if toks[i] in ("⊗".encode(), b"@")]
            sep = b" \xe2\x8a\x97 "
        elif kind == "pairing":
            spots = [i for i in code if toks[i] == b","]
            sep = b", "
        elif kind == "then":
            spots = [i for i in code if toks[i] in (b";", b">>")]
            sep = b" ; "
        else:
            spots = [i for i in code if toks[i] in (b"+", b"*", b"-", b"/") or (toks[i][:1].isdigit() and kind == "size")]
            sep = rng.choice([b" + ", b" * ", b" - ", b" / "])
        if not spots:
            return toks, f"grow a {kind} (nowhere)"
        i = rng.choice(spots)
        if toks[i] in (b"+", b"*", b"-", b"/", b",", b";", b">>", "⊗".encode(), b"@"):
            nxt = next((j for j in code if j > i), None)
            if nxt is None:
                return toks, f"grow a {kind} (nowhere)"
            a, b = self._unit(rng, toks[nxt:]) if toks[nxt] in _OPEN else (0, 1)
            operand = b"".join(toks[nxt + a:nxt + b]) if toks[nxt] in _OPEN else toks[nxt]
            at = nxt + 1 if toks[nxt] not in _OPEN else nxt + self._group(toks, nxt)[1] - nxt
        else:
            operand, at = (rng.choice([b"1", b"d", b"(d + 1)", b"2", b"T"]), i + 1)
        return toks[:at] + [(sep + operand) * n] + toks[at:], f"grow a {kind} by {n} terms"

    def s_respell(self, rng: random.Random, toks: list[bytes]) -> tuple[list[bytes], str]:
        p = rng.random()
        return [(_RESPELL[t] if t in _RESPELL and rng.random() < p else t) for t in toks], "respell operators"

    # -- byte level (the result is one token: later token mutations treat it as text)
    @staticmethod
    def _bytes(toks: list[bytes]) -> bytearray:
        return bytearray(b"".join(toks))

    def b_bytes(self, rng: random.Random, toks: list[bytes]) -> tuple[list[bytes], str]:
        data = self._bytes(toks)
        i = rng.randrange(len(data) + 1)
        kind = rng.choice(["insert", "delete", "replace", "flip"])
        if kind == "insert":
            data[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 4)))
        elif kind == "delete":
            del data[i:i + rng.randint(1, 16)]
        elif data:
            i = min(i, len(data) - 1)
            data[i] = rng.randrange(256) if kind == "replace" else data[i] ^ (1 << rng.randrange(8))
        return TOKEN.findall(bytes(data)), f"{kind} bytes at {i}"

    def b_utf8(self, rng: random.Random, toks: list[bytes]) -> tuple[list[bytes], str]:
        data = self._bytes(toks)
        i = rng.randrange(len(data) + 1)
        bad = rng.choice(BAD_UTF8)
        data[i:i] = bad
        return TOKEN.findall(bytes(data)), f"invalid UTF-8 {bad!r} at {i}"

    def b_control(self, rng: random.Random, toks: list[bytes]) -> tuple[list[bytes], str]:
        c = rng.choice(CONTROL)
        inside = [i for i, t in enumerate(toks) if t.startswith((b"#", b'"'))]
        if inside and rng.random() < 0.5:
            i = rng.choice(inside)
            cut = rng.randint(1, max(1, len(toks[i]) - 1))
            return toks[:i] + [toks[i][:cut] + c + toks[i][cut:]] + toks[i + 1:], f"control {c!r} in a comment or string"
        i = rng.randrange(len(toks) + 1)
        return toks[:i] + [c] + toks[i:], f"control {c!r}"

    def b_lines(self, rng: random.Random, toks: list[bytes]) -> tuple[list[bytes], str]:
        data = b"".join(toks)
        kind = rng.choice(["crlf", "cr", "mixed", "formfeed", "no-final", "many-final", "bom", "tabs"])
        if kind == "crlf":
            data = data.replace(b"\n", b"\r\n")
        elif kind == "cr":
            data = data.replace(b"\n", b"\r")
        elif kind == "mixed":
            data = b"".join(p + rng.choice([b"\n", b"\r\n", b"\r", b"\n\r"]) for p in data.split(b"\n"))
        elif kind == "formfeed":
            lines = data.split(b"\n")
            i = rng.randrange(len(lines))
            lines[i] = lines[i] + rng.choice([b"\x0c", b" # \x0c", b"\x0b"]) + lines[i]
            data = b"\n".join(lines)
        elif kind == "no-final":
            data = data.rstrip(b"\n")
        elif kind == "many-final":
            data = data + b"\n" * self._scale(rng)
        elif kind == "bom":
            data = rng.choice([b"\xef\xbb\xbf" + data, b"\xef\xbb\xbf\xef\xbb\xbf" + data, data + b"\xef\xbb\xbf"])
        else:
            data = data.replace(b" ", b"\t")
        return TOKEN.findall(data), f"line endings: {kind}"

    def b_truncate(self, rng: random.Random, toks: list[bytes]) -> tuple[list[bytes], str]:
        data = b"".join(toks)
        i = rng.randrange(len(data) + 1)
        return TOKEN.findall(data[:i]), f"truncate at byte {i}"


# ---------------------------------------------------------------------------
# Running one input (in a worker)
# ---------------------------------------------------------------------------


def unlocated_codes() -> frozenset[str]:
    """The codes docs/errors.md documents as having no location ("Some diagnostics have no location")."""
    try:
        doc = ERRORS_DOC.read_text(encoding="utf-8")
    except OSError:
        return frozenset({"E0210"})
    m = re.search(r"Some diagnostics have no location(.*?)\n\n", doc, re.S)
    return frozenset(re.findall(r"E\d{4}", m.group(1))) if m else frozenset({"E0210"})


UNLOCATED = unlocated_codes()
LINE_BREAK = re.compile(r"\r\n|\r|\n")


class _Slow(BaseException):
    """Raised by the timer inside an operation that ran past the limit.

    A ``BaseException``, so that no ``except Exception`` in catnet swallows it.
    """

    def __init__(self, where: str) -> None:
        super().__init__(where)
        self.where = where


_armed = False


def _frame_text(filename: str, lineno: int | None, name: str) -> str:
    try:
        shown = str(Path(filename).resolve().relative_to(ROOT))
    except ValueError:
        shown = "/".join(Path(filename).parts[-2:])
    return f"{shown}:{lineno} in {name}"


def _where_interrupted(frame: FrameType | None) -> str:
    """The innermost catnet frame of an interrupted stack (else the innermost frame)."""
    first = None
    while frame is not None:
        text = _frame_text(frame.f_code.co_filename, frame.f_lineno, frame.f_code.co_name)
        first = first or text
        if "/catnet/" in frame.f_code.co_filename and "bench" not in frame.f_code.co_filename:
            return text
        frame = frame.f_back
    return first or "?"


def _on_alarm(signum: int, frame: FrameType | None) -> None:
    if _armed:
        raise _Slow(_where_interrupted(frame))


def _last_frames(e: BaseException) -> str:
    """The traceback's last frame, and the innermost catnet frame when that is another one."""
    tb = traceback.extract_tb(e.__traceback__)
    if not tb:
        return "?"
    last = _frame_text(tb[-1].filename, tb[-1].lineno, tb[-1].name)
    ours = [f for f in tb if "/catnet/" in f.filename]
    if ours and ours[-1] is not tb[-1]:
        return f"{last} (from {_frame_text(ours[-1].filename, ours[-1].lineno, ours[-1].name)})"
    return last


@dataclass
class Op:
    """The outcome of one guarded operation."""

    kind: str  # ok, error, crash, slow
    value: Any = None
    seconds: float = 0.0


def guarded(fn: Callable[[], Any], limit: float) -> Op:
    """Run ``fn`` with the time guard: its value, its CatnetError, its crash, or where it was too slow."""
    global _armed
    start = time.perf_counter()
    try:
        _armed = True
        signal.setitimer(signal.ITIMER_REAL, limit)
        value = fn()
        _armed = False
        op = Op("ok", value)
    except _Slow as e:
        op = Op("slow", f"interrupted at {e.where}")
    except CatnetError as e:
        _armed = False
        op = Op("error", e)
    except BaseException as e:  # every other exception is the finding
        _armed = False
        if isinstance(e, KeyboardInterrupt):
            raise
        op = Op("crash", f"{type(e).__name__}: {_short(str(e))} at {_last_frames(e)}")
    finally:
        _armed = False
        signal.setitimer(signal.ITIMER_REAL, 0)
    op.seconds = time.perf_counter() - start
    return op


def _short(text: str, n: int = 90) -> str:
    text = text.encode("ascii", "backslashreplace").decode().replace("\n", " ")
    return text if len(text) <= n else text[: n - 1] + "…"


def locate_problem(e: CatnetError, text: str, name: str) -> tuple[str, str] | None:
    """Why ``e`` is not a located diagnostic for ``text`` checked as ``name``: (kind, detail), or None."""
    if e.code in UNLOCATED:
        return None
    sp = e.span
    if sp is None:
        return "no span", "-"
    if not sp.file or sp.line < 1 or sp.column < 1:
        return "bad span", f"{sp.file!r}:{sp.line}:{sp.column}"
    if (sp.end_line, sp.end_column) < (sp.line, sp.column):
        return "span ends before it starts", f"{sp.line}:{sp.column} to {sp.end_line}:{sp.end_column}"
    lines = len(LINE_BREAK.split(text))
    if sp.file == name and sp.line > lines:
        return "line past the end of the file", f"line {sp.line} of {lines}"
    return None


def raw_control(rendered: str) -> str | None:
    """The first control character (other than newline and tab) a diagnostic would print raw, as a repr."""
    for ch in rendered:
        if unicodedata.category(ch) == "Cc" and ch not in "\n\t":
            return repr(ch)
    return None


@dataclass
class Outcome:
    """The verdict on one input, as a worker reports it."""

    klass: str = "ok"  # ok, error, unsafe, unlocated, crash, slow
    stage: str = ""
    detail: str = ""
    code: str = ""  # check's error code, if any
    seconds: float = 0.0
    slowest_op: str = ""
    violations: list[str] = field(default_factory=list)

    def signature(self) -> str:
        """What makes two findings the same finding (for grouping and minimising)."""
        if self.klass == "crash":
            return f"crash in {self.stage}: {self.detail.split(':')[0]} at {self.detail.rsplit(' at ', 1)[-1]}"
        if self.klass == "unsafe":
            return f"unsafe in {self.stage}: {self.detail.split(':')[0]} prints a control character"
        if self.klass == "unlocated":
            return f"unlocated in {self.stage}: {': '.join(self.detail.split(': ')[:2])}"
        if self.klass == "slow":
            # Where an operation was interrupted varies within a loop: group by function.
            # Where a slow operation was stopped varies from input to input: one finding per stage.
            return f"slow in {self.stage}"
        return f"fmt: {self.violations[0].split(':')[0]}" if self.violations else self.klass


_RANK = {"ok": 0, "error": 1, "unsafe": 2, "unlocated": 3, "slow": 4, "crash": 5}


def run_input(data: bytes, name: str, limit: float) -> Outcome:
    """Decode, check and format one input the way `catnet check` and `catnet fmt` do; classify it."""
    out = Outcome()

    def note(op: Op, stage: str, source: str) -> str:
        """Fold one operation into the outcome; return its verdict (ok, a code, crash or slow)."""
        if op.seconds > out.seconds:
            out.seconds, out.slowest_op = op.seconds, stage
        klass, detail, verdict = "ok", "", "ok"
        if op.kind == "error":
            e: CatnetError = op.value
            verdict = e.code
            problem = locate_problem(e, source, name)
            rendered = guarded(e.render, limit)
            if rendered.kind != "ok":
                klass, stage, detail = rendered.kind, f"{stage} (rendering {e.code})", str(rendered.value)
            elif problem:
                klass, detail = "unlocated", f"{e.code}: {problem[0]}: {problem[1]}: {_short(e.message, 60)}"
            elif raw_control(rendered.value):
                klass, detail = "unsafe", f"{e.code}: prints {raw_control(rendered.value)}"
            else:
                klass = "error"
        elif op.kind in ("crash", "slow"):
            klass, detail, verdict = op.kind, str(op.value), op.kind
        if op.kind != "slow" and op.seconds > limit and _RANK[klass] < _RANK["slow"]:
            # Finished, but past the limit (inside C code the timer cannot interrupt).
            klass, detail = "slow", f"took {op.seconds:.2f} s"
        if _RANK[klass] > _RANK[out.klass]:
            out.klass, out.stage, out.detail = klass, stage, detail
        return verdict

    decoded = guarded(lambda: decode(data, name), limit)
    source = data.decode("utf-8", errors="replace")
    if decoded.kind != "ok":
        out.code = note(decoded, "decode", source)
        return out
    text: str = decoded.value
    checked = guarded(lambda: check_text(text, name, CORPUS), limit)
    verdict = note(checked, "check", text)
    out.code = verdict if verdict.startswith("E") else ""
    formatted = guarded(lambda: format_text(text, name), limit)
    if formatted.kind == "error":
        # fmt only parses: refusing a file that checks is a broken promise.
        note(formatted, "fmt", text)
        if verdict == "ok":
            out.violations.append(f"fmt refuses a file that checks: {formatted.value.code}")
        return out
    note(formatted, "fmt", text)
    if formatted.kind != "ok":
        return out
    f1: str = formatted.value
    again = guarded(lambda: format_text(f1, name), limit)
    note(again, "fmt of formatted", f1)
    if again.kind == "error":
        out.violations.append(f"fmt output does not parse: {again.value.code}")
    elif again.kind == "ok" and again.value != f1:
        out.violations.append("fmt is not idempotent")
    if f1 != text and (verdict == "ok" or verdict.startswith("E")):
        after = note(guarded(lambda: check_text(f1, name, CORPUS), limit), "check of formatted", f1)
        if after != verdict and after not in ("crash", "slow"):
            out.violations.append(f"fmt changes check's verdict: {verdict} -> {after}")
    trees = guarded(lambda: (parse(text, name), parse(f1, name)), limit)
    if trees.kind == "ok":
        t0, t1 = trees.value
        same = guarded(lambda: t0.decls == t1.decls, limit)
        if same.kind == "ok" and not same.value:
            out.violations.append("fmt changes the AST")
        if sorted(c.text.strip() for c in t0.comments) != sorted(c.text.strip() for c in t1.comments):
            out.violations.append("fmt loses or changes a comment")
    return out


# ---------------------------------------------------------------------------
# Workers: processes that import catnet once and serve inputs, replaced after a hang
# ---------------------------------------------------------------------------


def _worker_main(conn: multiprocessing.connection.Connection, limit: float, hard: float, megabytes: int,
                 dump_path: str) -> None:
    """Serve inputs from ``conn`` until it closes; a C-level hang ends the process via faulthandler."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C
    signal.signal(signal.SIGALRM, _on_alarm)
    if megabytes:
        # A blow-up then ends in MemoryError (a crash finding), not in a machine out of memory.
        pages = int(Path("/proc/self/statm").read_text().split()[0]) if Path("/proc/self/statm").exists() else 0
        cap = pages * resource.getpagesize() + (megabytes << 20)
        resource.setrlimit(resource.RLIMIT_AS, (cap, resource.getrlimit(resource.RLIMIT_AS)[1]))
    with open(dump_path, "w+") as dump:
        while True:
            try:
                job = conn.recv()
            except EOFError:
                return
            dump.seek(0)
            dump.truncate()
            faulthandler.dump_traceback_later(hard, exit=True, file=dump)
            outcome = run_input(job[1], job[2], limit)
            faulthandler.cancel_dump_traceback_later()
            conn.send((job[0], outcome))


class Worker:
    """A worker process and the job it is running."""

    def __init__(self, limit: float, megabytes: int, tmp: Path, number: int) -> None:
        self.limit = limit
        # Up to eight guarded operations per input, each stopped at the limit.
        self.hard = 8 * limit + 20.0
        self.megabytes = megabytes
        self.dump = str(tmp / f"worker{number}.dump")
        self.job: tuple[int, bytes, str] | None = None
        self.since = 0.0
        self._start()

    def _start(self) -> None:
        ctx = multiprocessing.get_context("fork")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker_main, args=(child, self.limit, self.hard, self.megabytes, self.dump),
                                daemon=True)
        self.proc.start()
        child.close()

    def send(self, job: tuple[int, bytes, str]) -> None:
        self.job, self.since = job, time.perf_counter()
        self.conn.send(job)

    def receive(self) -> tuple[int, Outcome]:
        """The outcome of the running job; a worker that died or hung gives a `slow` or `crash` outcome."""
        assert self.job is not None
        job, self.job = self.job, None
        try:
            if self.conn.poll(max(0.0, self.hard + 10.0 - (time.perf_counter() - self.since))):
                index, outcome = self.conn.recv()
                if outcome.klass == "crash" and "MemoryError" in outcome.detail:
                    self.restart()  # a process that ran out of memory is not trusted further
                return index, outcome
        except (EOFError, OSError):
            pass
        seconds = time.perf_counter() - self.since
        hung = self.proc.is_alive()  # still running: the parent gives up on it
        self.proc.kill()
        self.proc.join()
        status = self.proc.exitcode
        where = self._dumped_where()  # faulthandler's dump, when it stopped the worker
        self._start()
        if hung or where is not None:
            detail = f"hung{f' at {where}' if where else ''}, stopped after {seconds:.0f} s"
            return job[0], Outcome("slow", "check or fmt", detail, seconds=seconds, slowest_op="hang")
        return job[0], Outcome("crash", "worker", f"WorkerDied: exit status {status} at ?", seconds=seconds)

    def _dumped_where(self) -> str | None:
        try:
            text = Path(self.dump).read_text(errors="replace")
        except OSError:
            return None
        frames = re.findall(r'File "([^"]+)", line (\d+) in (\S+)', text)
        if not frames:
            return None
        # faulthandler lists the innermost frame first.
        ours = [f for f in frames if "/catnet/" in f[0]]
        f = ours[0] if ours else frames[0]
        return _frame_text(f[0], int(f[1]), f[2])

    def restart(self) -> None:
        self.conn.close()
        self.proc.kill()
        self.proc.join()
        self._start()

    def close(self) -> None:
        self.conn.close()
        self.proc.join(timeout=5)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join()


def run_all(jobs: Iterator[tuple[int, bytes, str]], workers: list[Worker],
            on_result: Callable[[int, Outcome], None]) -> None:
    """Run every job on the workers, calling ``on_result`` as outcomes arrive (jobs are drawn lazily)."""
    busy: dict[Any, Worker] = {}
    more = True
    while more or busy:
        for w in workers:
            if w.job is None and more:
                job = next(jobs, None)
                if job is None:
                    more = False
                    break
                w.send(job)
                busy[w.conn] = w
        if not busy:
            continue
        ready = multiprocessing.connection.wait(list(busy), timeout=1.0)
        now = time.perf_counter()
        overdue = [w.conn for w in busy.values() if now - w.since > w.hard + 10.0 and w.conn not in ready]
        for key in list(ready) + overdue:
            w = busy.pop(key)
            on_result(*w.receive())


# ---------------------------------------------------------------------------
# Minimising a finding
# ---------------------------------------------------------------------------


def minimise(header: bytes, body: bytes, name: str, signature: str, worker: Worker,
             runs: int = 400, seconds: float = 20.0) -> bytes:
    """Drop lines, then tokens, of ``body`` while ``header + body`` still gives the same finding.

    Delta debugging with a budget of ``runs`` runs and ``seconds`` seconds;
    what is left when the budget runs out is returned.
    """
    deadline = time.perf_counter() + seconds
    left = runs

    def same(parts: list[bytes]) -> bool:
        nonlocal left
        left -= 1
        worker.send((0, header + b"".join(parts), name))
        return worker.receive()[1].signature() == signature

    def ddmin(parts: list[bytes]) -> list[bytes]:
        chunk = max(1, len(parts) // 2)
        while chunk >= 1 and left > 0 and time.perf_counter() < deadline:
            i, changed = 0, False
            while i < len(parts) and left > 0 and time.perf_counter() < deadline:
                candidate = parts[:i] + parts[i + chunk:]
                if candidate and same(candidate):
                    parts, changed = candidate, True
                else:
                    i += chunk
            if not changed:
                chunk //= 2
        return parts

    if not same([body]):
        return body  # the header line changes the finding: keep the input as found
    body = b"".join(ddmin(body.splitlines(keepends=True)))
    return b"".join(ddmin(TOKEN.findall(body)))


# ---------------------------------------------------------------------------
# The run and its report
# ---------------------------------------------------------------------------


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")[:80]


def _header(seed: int, index: int, outcome: Outcome) -> bytes:
    what = outcome.signature()
    text = f"# found by bench/fuzz.py seed {seed} mutant {index}: {what}"
    return text.encode("ascii", "replace").replace(b"\r", b" ") + b"\n"


@dataclass
class Tally:
    """Counts over the run, the slowest input and the findings by signature."""

    classes: Counter[str] = field(default_factory=Counter)
    codes: Counter[str] = field(default_factory=Counter)
    violations: Counter[str] = field(default_factory=Counter)
    findings: dict[str, list[int]] = field(default_factory=dict)
    first: dict[str, str] = field(default_factory=dict)  # what the first finding of each kind was
    seconds: float = 0.0
    fmt_broken: int = 0  # mutants with at least one fmt violation
    slowest: tuple[float, int, str] = (0.0, -1, "")

    def add(self, index: int, outcome: Outcome, description: str) -> bool:
        """Count one outcome; True when it is a finding."""
        self.classes[outcome.klass] += 1
        if outcome.code:
            self.codes[outcome.code] += 1
        for v in outcome.violations:
            self.violations[v.split(":")[0]] += 1
        self.fmt_broken += bool(outcome.violations)
        if outcome.seconds > self.slowest[0]:
            self.slowest = (outcome.seconds, index, f"{description} ({outcome.slowest_op})")
        finding = outcome.klass in ("crash", "unlocated", "unsafe", "slow") or bool(outcome.violations)
        if finding:
            self.findings.setdefault(outcome.signature(), []).append(index)
            self.first.setdefault(outcome.signature(), f"{description}: {outcome.detail or outcome.violations[0]}")
        return finding

    def bad(self) -> int:
        """How many outcomes break a promise (crash, unlocated or unsafe error, slow, fmt violation)."""
        return sum(self.classes[k] for k in ("crash", "unlocated", "unsafe", "slow")) + self.fmt_broken


def report(tally: Tally, total: int, limit: float, saved: dict[str, str]) -> str:
    """The table printed at the end of a run."""
    rate = total / max(tally.seconds, 1e-9)
    lines = [f"{total} mutants in {tally.seconds:.0f} s ({rate:.0f}/s), time limit {limit:g} s per operation", "",
             f"{'class':<28} {'mutants':>8} {'share':>7}"]
    for klass in ("ok", "error", "unsafe", "unlocated", "crash", "slow"):
        n = tally.classes[klass]
        lines.append(f"{klass:<28} {n:>8} {100 * n / max(total, 1):>6.1f}%")
    lines.append(f"{'fmt violations':<28} {tally.fmt_broken:>8} {100 * tally.fmt_broken / max(total, 1):>6.1f}%")
    for v, n in sorted(tally.violations.items()):
        lines.append(f"  {v:<26} {n:>8}")
    codes = ", ".join(f"{c} {n}" for c, n in sorted(tally.codes.items()))
    seconds, index, what = tally.slowest
    lines += ["", f"error codes: {codes or '-'}", f"slowest input: {seconds:.3f} s, mutant {index}: {what}"]
    if tally.findings:
        lines += ["", f"{len(tally.findings)} distinct findings:"]
        for sig, idx in sorted(tally.findings.items(), key=lambda kv: (-len(kv[1]), kv[0])):
            lines.append(f"  {len(idx):>5} x {sig}")
            lines.append(f"          first: mutant {idx[0]}, {_short(tally.first[sig], 200)}")
            if sig in saved:
                lines.append(f"          saved: {saved[sig]}")
    return "\n".join(lines)


def campaign(mutator: Mutator, count: int, workers: list[Worker], out: Path | None) -> tuple[Tally, dict[str, str]]:
    """Run ``count`` mutants; save the findings under ``out`` and minimise the first of each kind."""
    tally = Tally()
    in_flight: dict[int, tuple[bytes, str, str]] = {}
    first: dict[str, tuple[int, bytes, str, Outcome]] = {}
    started = time.perf_counter()

    def jobs() -> Iterator[tuple[int, bytes, str]]:
        for i in range(count):
            seed, data, description = mutator.mutant(i)
            in_flight[i] = (data, seed.name, description)
            yield i, data, seed.name

    def on_result(index: int, outcome: Outcome) -> None:
        data, name, description = in_flight.pop(index)
        if tally.add(index, outcome, description):
            first.setdefault(outcome.signature(), (index, data, name, outcome))
            if out:
                path = out / f"{_slug(outcome.signature())}-{index}.cat"
                path.write_bytes(_header(mutator.seed, index, outcome) + data)
        done = sum(tally.classes.values())
        if done % 1000 == 0:
            print(f"... {done} mutants, {sum(len(v) for v in tally.findings.values())} findings, "
                  f"{time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)

    run_all(jobs(), workers, on_result)
    tally.seconds = time.perf_counter() - started
    saved: dict[str, str] = {}
    if out:
        for sig, (index, data, name, outcome) in sorted(first.items()):
            header = _header(mutator.seed, index, outcome)
            # A slow input costs seconds per try: minimising it is not cheap.
            body = data if outcome.klass == "slow" else minimise(header, data, name, sig, workers[0])
            path = out / f"{_slug(sig)}-min.cat"
            path.write_bytes(header + body)
            saved[sig] = str(path)
    return tally, saved


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=10_000, help="mutants to run (default 10000)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the mutations (default 0)")
    ap.add_argument("--time-limit", type=float, default=2.0, help="seconds per check or fmt of an input (default 2)")
    ap.add_argument("--out", type=Path, help="save every finding under this directory")
    ap.add_argument("--jobs", type=int, default=1, help="worker processes (default 1)")
    ap.add_argument("--memory", type=int, default=2048,
                    help="address space a worker may add to its start, in MB (default 2048)")
    ap.add_argument("--show", type=int, metavar="N", help="print mutant N (with --seed) and exit")
    ap.add_argument("--replay", type=Path, nargs="+", metavar="FILE", help="classify these files instead")
    args = ap.parse_args(argv)

    seeds = load_seeds()
    mutator = Mutator(seeds, args.seed)
    if args.show is not None:
        seed, data, description = mutator.mutant(args.show)
        sys.stderr.write(f"mutant {args.show}: {description} (checked as {seed.name})\n")
        sys.stdout.buffer.write(data)
        return 0
    # Check the seeds before forking: every worker then starts with the parser built.
    signal.signal(signal.SIGALRM, _on_alarm)
    for s in seeds:
        o = run_input(s.data, s.name, 60.0)
        if o.klass != "ok" or o.violations:
            print(f"warning: seed {s.label} is not clean: {o.klass} {o.detail} {o.violations}", file=sys.stderr)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        workers = [Worker(args.time_limit, args.memory, Path(tmp), n) for n in range(max(1, args.jobs))]
        try:
            if args.replay:
                return _replay(args.replay, workers)
            tally, saved = campaign(mutator, args.count, workers, args.out)
        finally:
            for w in workers:
                w.close()
    table = report(tally, args.count, args.time_limit, saved)
    print(table)
    if args.out:
        (args.out / "summary.txt").write_text(table + "\n", encoding="utf-8")
    return 1 if tally.bad() else 0


def _replay(paths: list[Path], workers: list[Worker]) -> int:
    """Classify files (for example the regression corpus) and print one line each."""
    bad = 0
    jobs = [(i, p.read_bytes(), p.name) for i, p in enumerate(paths)]
    results: dict[int, Outcome] = {}
    run_all(iter(jobs), workers, lambda i, o: results.__setitem__(i, o))
    for i, p in enumerate(paths):
        o = results[i]
        problem = o.klass in ("crash", "unlocated", "unsafe", "slow") or bool(o.violations)
        bad += problem
        extra = f" {o.stage}: {o.detail}" if problem and o.klass != "ok" and o.klass != "error" else f" {o.code}" if o.code else ""
        fmt = f" fmt: {'; '.join(o.violations)}" if o.violations else ""
        print(f"{p}: {o.klass}{extra}{fmt} [{o.seconds:.3f} s]")
    print(f"{len(paths)} files, {bad} with findings")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
