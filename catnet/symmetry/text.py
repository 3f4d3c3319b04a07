"""The text of a representation, read into a tree: pure Python, so drawing needs no NumPy.

The parser of ``.cat`` files writes a representation in one canonical form
(``regular * 8 + rotation ⊗ sign``); ``catnet.symmetry.actions`` builds
the representation from the tree and ``catnet.render.symmetry`` draws it.
A node is ``("sum", terms)``, ``("copies", node, m)`` (``m`` as written),
``("tensor", factors)`` or ``("atom", name, args)``.  ``⊗`` binds tighter
than ``* m``, which binds tighter than ``+`` (``⊕``).
"""

from __future__ import annotations

import re

_TOKEN = re.compile(r"\s*(?:(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<num>\d+)|(?P<op>[+⊕*⊗@(),]))")


class Unreadable(ValueError):
    """Text that is no representation; the message says where reading stopped."""


def tokens(text: str) -> list[str]:
    out, at = [], 0
    text = text.strip()
    while at < len(text):
        m = _TOKEN.match(text, at)
        if m is None or m.end() == at:
            raise Unreadable(f"cannot read the representation `{text}` at `{text[at:]}`")
        out.append(m.group("name") or m.group("num") or m.group("op"))
        at = m.end()
        while at < len(text) and text[at].isspace():
            at += 1
    return out


def parse(text: str) -> tuple:
    """The tree of a representation's text (Unreadable where it is none)."""
    toks = tokens(text)
    at = 0

    def peek() -> str | None:
        return toks[at] if at < len(toks) else None

    def take(expected: str | None = None) -> str:
        nonlocal at
        tok = peek()
        if tok is None or (expected is not None and tok != expected):
            raise Unreadable(f"cannot read the representation `{text}`: expected {expected or 'more'}")
        at += 1
        return tok

    def sum_() -> tuple:
        terms = [term()]
        while peek() in ("+", "⊕"):
            take()
            terms.append(term())
        return terms[0] if len(terms) == 1 else ("sum", terms)

    def term() -> tuple:
        r = prod()
        if peek() == "*":
            take()
            r = ("copies", r, take())
        return r

    def prod() -> tuple:
        factors = [atom()]
        while peek() in ("⊗", "@"):
            take()
            factors.append(atom())
        return factors[0] if len(factors) == 1 else ("tensor", factors)

    def atom() -> tuple:
        tok = take()
        if tok == "(":
            r = sum_()
            take(")")
            return r
        if not re.match(r"[A-Za-z_]", tok):
            raise Unreadable(f"cannot read the representation `{text}` at `{tok}`")
        args: list[str] = []
        if peek() == "(":
            take("(")
            args.append(take())
            while peek() == ",":
                take()
                args.append(take())
            take(")")
        return ("atom", tok, args)

    tree = sum_()
    if at != len(toks):
        raise Unreadable(f"cannot read the representation `{text}` at `{' '.join(toks[at:])}`")
    return tree
