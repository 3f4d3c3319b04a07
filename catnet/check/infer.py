"""Inference state: unification variables for sizes, and what shape rules may ask.

Sizes that only a later part of the program decides (the width of a
``dense`` fixed by the declared codomain) are variables ``?n``; unifying two
sizes binds a variable, waits (a non-linear equation), or fails.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, NoReturn

from .. import dims
from ..dims import Dim
from ..errors import CatnetError
from ..ir import Box, Diagram, Span, Ty

#: Sizes above this are refused as absurd (no tensor axis is 2^31 long).
MAX_DIM = 2**31 - 1
#: Total elements of one wire above this are refused (a terabyte of floats).
MAX_ELEMENTS = 2**40
MAX_REPEAT = 100_000
#: Boxes in one definition with every definition it uses opened (what drawing
#: and compiling walk); `repeat n` bodies count once.
MAX_BOXES = 1_000_000


# -- inference state ------------------------------------------------------------


class Infer:
    """Unification variables, their solutions, and constraints that wait."""

    def __init__(self) -> None:
        self.counter = 0
        self.env: dict[str, Dim] = {}
        self.pending: list[tuple[Dim, Dim, Callable[[], NoReturn]]] = []
        #: representation variables (``?ρ3``) and their solutions: canonical text, "" for trivial
        self.rep_counter = 0
        self.reps: dict[str, str] = {}

    def fresh_rep(self) -> str:
        """A representation that unification with a declared type decides (``glinear``'s output)."""
        self.rep_counter += 1
        return f"?ρ{self.rep_counter}"

    def resolve_rep(self, rep: str | None) -> str | None:
        while rep is not None and rep.startswith("?") and rep in self.reps:
            rep = self.reps[rep] or None
        return rep

    def unify_rep(self, a: str | None, b: str | None, fail: Callable[[], NoReturn]) -> None:
        a, b = self.resolve_rep(a), self.resolve_rep(b)
        if a == b:
            return
        if a is not None and a.startswith("?"):
            self.reps[a] = b or ""
        elif b is not None and b.startswith("?"):
            self.reps[b] = a or ""
        else:
            fail()

    def fresh(self) -> Dim:
        self.counter += 1
        return dims.sym(f"?{self.counter}")

    def resolve(self, d: Dim) -> Dim:
        env = self.env
        if type(d) is int or not env:
            return d
        name = dims.lone(d)
        if name is not None:  # the usual size
            v = env.get(name)
            if v is None:
                return d
            if type(v) is int:
                return v
            d = v
        for _ in range(64):
            if self.env.keys().isdisjoint(dims.symbols(d)):
                return d
            d = dims.subst(d, self.env)
        return d

    def unify(self, a: Dim, b: Dim, fail: Callable[[], NoReturn]) -> None:
        a, b = self.resolve(a), self.resolve(b)
        result = dims.solve(a, b)
        if result is True:
            return
        if result is False:
            fail()
        if result is None:
            self.pending.append((a, b, fail))
            return
        var, value = result
        if var in dims.symbols(value):
            fail()
        if isinstance(value, int) and not (0 < value <= MAX_DIM):
            fail()
        self.env[var] = value
        if self.pending:
            self.retry()

    def retry(self) -> None:
        progress = True
        while progress and self.pending:
            progress = False
            waiting, self.pending = self.pending, []
            for a, b, fail in waiting:
                a2, b2 = self.resolve(a), self.resolve(b)
                r = dims.solve(a2, b2)
                if r is None:
                    self.pending.append((a2, b2, fail))
                    continue
                progress = True
                if r is False:
                    fail()
                if r is not True:
                    var, value = r
                    if var in dims.symbols(value):
                        fail()
                    self.env[var] = value

    def unify_ty(self, a: Ty, b: Ty, fail: Callable[[], NoReturn]) -> None:
        if len(a) != len(b):
            fail()
        for x, y in zip(a.obs, b.obs):
            if x.base != y.base or len(x.shape) != len(y.shape):
                fail()
            # A plain wire meets any action (a claim checks what flows where,
            # ``check.claims``); two actions must agree.
            if x.group and y.group:
                if x.group != y.group:
                    fail()
                self.unify_rep(x.rep, y.rep, fail)
            if x.base == "bundle":
                assert x.fiber is not None and y.fiber is not None and x.over is not None and y.over is not None
                self.unify_ty(x.fiber, y.fiber, fail)
                self.unify_ty(x.over, y.over, fail)
            for p, q in zip(x.shape, y.shape):
                self.unify(p, q, fail)

    def solution(self) -> dict[str, Dim]:
        out = {v: self.resolve(d) for v, d in self.env.items()}
        for v in self.reps:
            out[v] = self.resolve_rep(v) or ""  # type: ignore[assignment]  # Ob.subst reads it
        return out

    def show(self, ty: Ty) -> str:
        return ty.subst(self.solution()).described() if self.env else ty.described()


def has_vars(ty: Ty) -> bool:
    """Whether a type mentions a unification variable (the cheap hint first)."""
    return any(dims.is_var(s) for s in ty.symbol_hint()) and any(dims.is_var(s) for s in ty.symbols())


def show_ty(ty: Ty) -> str:
    """A type for messages; unsolved sizes print as `_`."""
    text = ty.described()
    if "?" in text:
        import re

        text = re.sub(r"\?\d+", "_", text)
    return text


# -- the rule context handed to generator shape rules ------------------------------


class RuleCtx:
    def __init__(self, infer: Infer, name: str, span: Span | None, dom: Ty) -> None:
        self.infer = infer
        self.name = name
        self.span = span
        self.dom = dom

    def fresh(self) -> Dim:
        return self.infer.fresh()

    def fresh_rep(self) -> str:
        return self.infer.fresh_rep()

    def resolve(self, d: Dim) -> Dim:
        return self.infer.resolve(d)

    def resolve_rep(self, rep: str | None) -> str | None:
        return self.infer.resolve_rep(rep)

    def equal_rep(self, a: str | None, b: str | None, what: str | Callable[[], str]) -> None:
        def fail() -> NoReturn:
            self.fail(what() if callable(what) else what)

        self.infer.unify_rep(a, b, fail)

    def need_int(self, d: Dim, what: str) -> int:
        r = self.infer.resolve(d)
        if not isinstance(r, int):
            self.fail(f"{what} must be a known number here, but it is `{dims.show(r).replace('?', '_')}`",
                      "ascribe the input type, e.g. `(f : R[8, 8, 1] -> ...)`")
        return r  # type: ignore[return-value]

    def equal(self, a: Dim, b: Dim, what: str | Callable[[], str]) -> None:
        def fail() -> NoReturn:
            self.fail(what() if callable(what) else what)

        self.infer.unify(a, b, fail)

    def fail(self, message: str, help: str | None = None, code: str = "E0306") -> NoReturn:
        raise CatnetError(code, message, self.span, notes=[f"`{self.name}` gets {show_ty(self.dom)}"], help=help)


@dataclass
class Scope:
    """Names visible while elaborating one definition body."""

    dims: dict[str, Dim]
    morphisms: dict[str, Diagram | Box]  # morphism parameters
    infer: Infer
    new_symbols: bool = False  # may a type introduce size symbols? (signatures only)
    symbols: list[str] = field(default_factory=list)
