"""Symbolic dimensions: integer polynomials over dimension symbols.

A dimension is either a plain ``int`` or a :class:`Poly`, a canonical sum of
monomials with integer coefficients.  Canonical means: every ``Poly`` that is
constant is returned as an ``int``, monomials are sorted, zero terms dropped,
so two dimensions are equal exactly when their normal forms are ``==``::

    >>> d = sym("d")
    >>> add(mul(d, 4), 1) == add(1, mul(4, d))
    True
    >>> show(add(mul(d, 4), 1))
    'd * 4 + 1'
    >>> sub(add(d, 2), d)
    2

Symbols whose name starts with ``?`` are unification variables (made by the
checker); all others are rigid symbols written by the user (``T``, ``d``).

Sizes stay small: a polynomial with more than :data:`MAX_TERMS` terms or of
degree above :data:`MAX_DEGREE` raises :class:`SizeTooLarge` (the checker
reports it as E0309 where the size was written), so a short file cannot
make size arithmetic multiply out without bound.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Union

Mono = tuple[str, ...]  # sorted symbol names, with repetition for powers

#: No real architecture needs a size with more terms than this ...
MAX_TERMS = 32
#: ... or of a higher degree (``h * w * c`` is degree 3) ...
MAX_DEGREE = 8
#: ... or with a larger coefficient.
MAX_COEFFICIENT = 2**62


class SizeTooLarge(ArithmeticError):
    """A size expression grew past :data:`MAX_TERMS` terms or :data:`MAX_DEGREE`."""


@dataclass(frozen=True, order=True)
class Poly:
    """A non-constant polynomial; ``terms`` is sorted and has no zero coefficient."""

    terms: tuple[tuple[Mono, int], ...]

    def __str__(self) -> str:
        return show(self)


Dim = Union[int, Poly]


def sym(name: str) -> Poly:
    return Poly((((name,), 1),))


def _terms(d: Dim) -> dict[Mono, int]:
    if isinstance(d, int):
        return {(): d} if d else {}
    return dict(d.terms)


def _norm(terms: dict[Mono, int]) -> Dim:
    items = tuple(sorted((m, c) for m, c in terms.items() if c))
    if not items:
        return 0
    if len(items) > MAX_TERMS:
        raise SizeTooLarge(f"a size that multiplies out to {len(items)} terms (the limit is {MAX_TERMS})")
    if len(items) == 1 and items[0][0] == ():
        return items[0][1]
    return Poly(items)


def _bounded(d: Dim) -> Dim:
    """``d`` after a product: the degree and coefficients that only products grow are checked."""
    if isinstance(d, Poly):
        if max(len(m) for m, _ in d.terms) > MAX_DEGREE:
            raise SizeTooLarge(f"a size of degree {max(len(m) for m, _ in d.terms)} (the limit is {MAX_DEGREE})")
        big = max(abs(c) for _, c in d.terms)
        if big > MAX_COEFFICIENT:
            raise SizeTooLarge(f"a size with a coefficient of {len(str(big)) if big.bit_length() < 10000 else 'thousands of'} digits")
    return d


def add(a: Dim, b: Dim) -> Dim:
    if isinstance(a, int) and isinstance(b, int):
        return a + b
    t = _terms(a)
    for m, c in _terms(b).items():
        t[m] = t.get(m, 0) + c
    return _norm(t)


def neg(a: Dim) -> Dim:
    if isinstance(a, int):
        return -a
    return _norm({m: -c for m, c in a.terms})


def sub(a: Dim, b: Dim) -> Dim:
    return add(a, neg(b))


def mul(a: Dim, b: Dim) -> Dim:
    if isinstance(a, int) and isinstance(b, int):
        return a * b
    if a == 1 or b == 1:
        return b if a == 1 else a
    t: dict[Mono, int] = {}
    ta, tb = _terms(a), _terms(b)
    if len(ta) * len(tb) > MAX_TERMS * MAX_TERMS:
        raise SizeTooLarge(f"a size that multiplies out to about {len(ta) * len(tb)} terms (the limit is {MAX_TERMS})")
    for m1, c1 in ta.items():
        for m2, c2 in tb.items():
            m = tuple(sorted(m1 + m2))
            t[m] = t.get(m, 0) + c1 * c2
    return _bounded(_norm(t))


def floordiv(a: Dim, k: int) -> Dim | None:
    """``a / k`` when every coefficient is divisible by ``k``, else ``None``."""
    if k == 0:
        return None
    if isinstance(a, int):
        return a // k if a % k == 0 else None
    if any(c % k for _, c in a.terms):
        return None
    return _norm({m: c // k for m, c in a.terms})


def div_floor(a: Dim, k: int) -> Dim | None:
    """``a // k`` as a size that is right for every value of the symbols, else ``None``.

    Unlike :func:`floordiv` (exact division), the constant term may leave a
    remainder: ``(h * 2 + 1) // 2`` is ``h`` for every whole ``h``, because
    every coefficient of a symbol is divisible by ``k`` and the constant is
    floored.  ``h // 2`` is ``None``: it depends on whether ``h`` is even.
    ``k`` must be positive.

        >>> show(div_floor(add(mul(sym("h"), 2), 1), 2))
        'h'
        >>> div_floor(sym("h"), 2) is None
        True
    """
    assert k > 0, k
    if isinstance(a, int):
        return a // k
    if any(c % k for m, c in a.terms if m):
        return None
    return _norm({m: c // k for m, c in a.terms})


def least(d: Dim) -> int | None:
    """The least value of ``d`` over symbols of at least 1, when that is where it is least.

    Sizes are positive, so a polynomial whose symbol coefficients are all
    non-negative takes its least value with every symbol at 1 (the sum of
    its coefficients).  With a negative coefficient the least value is not
    known here: ``None``.

        >>> least(sub(mul(sym("h"), 2), 3))
        -1
        >>> least(sub(5, sym("h"))) is None
        True
    """
    if isinstance(d, int):
        return d
    if any(c < 0 for m, c in d.terms if m):
        return None
    return sum(c for _, c in d.terms)


def symbols(d: Dim) -> set[str]:
    if isinstance(d, int):
        return set()
    return {s for m, _ in d.terms for s in m}


def lone(d: Dim) -> str | None:
    """The symbol when ``d`` is one symbol alone (``n``, the usual unsolved size), else ``None``."""
    if type(d) is int:
        return None
    terms = d.terms
    return terms[0][0][0] if len(terms) == 1 and terms[0][1] == 1 and len(terms[0][0]) == 1 else None


def is_var(name: str) -> bool:
    return name.startswith("?")


def subst(d: Dim, env: Mapping[str, Dim]) -> Dim:
    """Replace symbols by dimensions (one pass; callers resolve chains)."""
    if isinstance(d, int) or not env:
        return d
    name = lone(d)
    if name is not None:
        return env.get(name, d)  # a lone symbol, the usual size
    out: Dim = 0
    for m, c in d.terms:
        term: Dim = c
        for s in m:
            term = mul(term, env.get(s, sym(s)))
        out = add(out, term)
    return out


def solve(lhs: Dim, rhs: Dim) -> tuple[str, Dim] | bool | None:
    """Solve ``lhs == rhs`` for one unification variable.

    Returns ``True`` if it already holds, ``False`` if it cannot hold (a
    non-zero constant difference, or a difference between rigid symbols),
    ``(var, value)`` if one variable occurs linearly and can be isolated with
    integer coefficients, and ``None`` if the equation must wait for more
    information (non-linear, or several variables).
    """
    if isinstance(lhs, int) and isinstance(rhs, int):
        return lhs == rhs
    # The usual equation, a lone variable and a number, answered as the general case would.
    for var, value in ((lhs, rhs), (rhs, lhs)):
        if isinstance(value, int) and len(var.terms) == 1:  # type: ignore[union-attr]
            (mono, coeff), = var.terms  # type: ignore[union-attr]
            if coeff == 1 and len(mono) == 1 and is_var(mono[0]):
                return mono[0], value
    diff = sub(lhs, rhs)
    if diff == 0:
        return True
    if isinstance(diff, int):
        return False
    variables = sorted(s for s in symbols(diff) if is_var(s))
    if not variables:
        return False
    for v in variables:
        coeff = None
        rest: dict[Mono, int] = {}
        linear = True
        for m, c in diff.terms:
            if v in m:
                if m == (v,):
                    coeff = c
                else:
                    linear = False
            else:
                rest[m] = c
        if not linear or coeff is None:
            continue
        value = floordiv(neg(_norm(rest)), coeff)
        if value is None:
            return False if len(variables) == 1 else None
        return v, value
    return None


def show(d: Dim) -> str:
    """Source syntax for a dimension, e.g. ``d * 4 + 1``; re-parses to ``d``."""
    if isinstance(d, int):
        return str(d)
    parts: list[str] = []
    for m, c in sorted(d.terms, key=lambda t: (-len(t[0]), t[0])):
        body = " * ".join(m)
        if not m:
            text = str(abs(c))
        elif abs(c) == 1:
            text = body
        else:
            text = f"{body} * {abs(c)}"
        if not parts:
            parts.append(text if c > 0 else f"0 - {text}")
        else:
            parts.append(("+ " if c > 0 else "- ") + text)
    return " ".join(parts)
