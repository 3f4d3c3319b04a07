"""The abstract syntax of ``.cat`` files: frozen dataclasses carrying spans.

The parser (``catnet.syntax``) builds these; the checker (``catnet.check``)
elaborates them into IR; the formatter (``catnet.fmt``) prints them back as
canonical text.  Spans are excluded from equality, so ``parse(fmt(m)) == m``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Union

from .ir import Span

def _S() -> Any:
    return field(default=None, compare=False, repr=False)

# -- dimensions -------------------------------------------------------------


#: Words of the language; the contextual lexer accepts them as names where a
#: keyword cannot appear, so the checker refuses them as definition names
#: (and ``catnet.library.register`` as generator names).
KEYWORDS = frozenset({"import", "object", "bundle", "over", "under", "as", "equivariant", "invariant", "shared", "main",
                      "morphism", "repeat", "inv", "scan", "return", "true", "false", "R", "Z", "I", "Seq"})


@dataclass(frozen=True)
class DNum:
    value: int | float
    span: Span | None = _S()


@dataclass(frozen=True)
class DSym:
    name: str
    span: Span | None = _S()


@dataclass(frozen=True)
class DBin:
    op: str  # "+", "-", "*"
    left: "DimExpr"
    right: "DimExpr"
    span: Span | None = _S()


DimExpr = Union[DNum, DSym, DBin]

# -- objects ----------------------------------------------------------------


@dataclass(frozen=True)
class TSpace:
    base: str  # "R" or "Z"
    shape: tuple[DimExpr, ...]
    span: Span | None = _S()


@dataclass(frozen=True)
class TUnit:
    span: Span | None = _S()


@dataclass(frozen=True)
class TSeq:
    length: DimExpr
    item: "TypeExpr"
    span: Span | None = _S()


@dataclass(frozen=True)
class TRef:
    name: str
    span: Span | None = _S()


@dataclass(frozen=True)
class TProduct:
    factors: tuple["TypeExpr", ...]
    span: Span | None = _S()


TypeExpr = Union[TSpace, TUnit, TSeq, TRef, TProduct]

# -- point-free expressions --------------------------------------------------


@dataclass(frozen=True)
class Lit:
    value: int | float | str | bool
    span: Span | None = _S()


@dataclass(frozen=True)
class VBin:
    """Arithmetic in an argument value, e.g. ``d * 4``."""

    op: str
    left: "Value"
    right: "Value"
    span: Span | None = _S()


@dataclass(frozen=True)
class Arg:
    name: str | None  # None for a positional argument
    value: "Value"
    span: Span | None = _S()


@dataclass(frozen=True)
class Ref:
    """A name, with optional dimension arguments ``[64]`` and call arguments."""

    name: str
    dims: tuple[DimExpr, ...] | None = None
    args: tuple[Arg, ...] | None = None
    span: Span | None = _S()


@dataclass(frozen=True)
class Then:
    parts: tuple["Expr", ...]
    span: Span | None = _S()


@dataclass(frozen=True)
class Product:
    parts: tuple["Expr", ...]
    span: Span | None = _S()


@dataclass(frozen=True)
class Pair:
    parts: tuple["Expr", ...]
    span: Span | None = _S()


@dataclass(frozen=True)
class Ascribe:
    expr: "Expr"
    dom: TypeExpr
    cod: TypeExpr
    span: Span | None = _S()


@dataclass(frozen=True)
class Repeat:
    count: int | float
    expr: "Expr"
    span: Span | None = _S()


@dataclass(frozen=True)
class Inv:
    expr: "Expr"
    span: Span | None = _S()


@dataclass(frozen=True)
class Scan:
    state: TypeExpr
    expr: "Expr"
    span: Span | None = _S()


Expr = Union[Ref, Then, Product, Pair, Ascribe, Repeat, Inv, Scan]
Value = Union[Lit, VBin, Expr]

# -- wiring form -------------------------------------------------------------


@dataclass(frozen=True)
class Wire:
    name: str
    span: Span | None = _S()


@dataclass(frozen=True)
class WCall:
    """``name[dims](args)``: each argument is a wire expression, a string or
    boolean literal, or a keyword argument; a wire expression without wires
    (``64``, ``-1``, ``2 * 4``) is a positional generator argument."""

    name: str
    dims: tuple[DimExpr, ...] | None
    args: tuple[Union["WExpr", Lit, Arg], ...]
    span: Span | None = _S()


@dataclass(frozen=True)
class WNum:
    """A number constant in wire arithmetic (``1`` in ``1 - z``), with its sign.

    The parser folds ``-`` applied to a non-negative number into the number,
    so ``-1`` is ``WNum(-1)``, as the literal ``-1`` of a call is.
    """

    value: int | float
    span: Span | None = _S()


@dataclass(frozen=True)
class WBin:
    """``left op right`` on wires and constants; ``op`` is ``+``, ``-``, ``*`` or ``/``."""

    op: str
    left: "WExpr"
    right: "WExpr"
    span: Span | None = _S()


@dataclass(frozen=True)
class WNeg:
    """``-operand``: the negation of a wire (or of a constant)."""

    operand: "WExpr"
    span: Span | None = _S()


WExpr = Union[Wire, WCall, WNum, WBin, WNeg]


@dataclass(frozen=True)
class Assign:
    names: tuple[str, ...]
    value: WExpr
    span: Span | None = _S()


@dataclass(frozen=True)
class Return:
    values: tuple[WExpr, ...]
    span: Span | None = _S()


Stmt = Union[Assign, Return]

# -- declarations -------------------------------------------------------------


@dataclass(frozen=True)
class Param:
    """``x : A`` (a wire, in the wiring form) or ``f : A -> B`` (a morphism)."""

    name: str
    dom: TypeExpr
    cod: TypeExpr | None = None
    span: Span | None = _S()


@dataclass(frozen=True)
class Import:
    path: str
    span: Span | None = _S()


@dataclass(frozen=True)
class ObjectDecl:
    """``object A = T [under G [as ρ]]``: ``group`` and ``rep`` are canonical text (``C4``, ``regular * 16``)."""

    name: str
    type: TypeExpr
    group: str | None = None
    span: Span | None = _S()
    rep: str | None = None


@dataclass(frozen=True)
class Claim:
    """``equivariant under G`` or ``invariant under G`` after a morphism's signature."""

    kind: str  # "equivariant" | "invariant"
    group: str
    span: Span | None = _S()


@dataclass(frozen=True)
class BundleDecl:
    name: str
    fiber: TypeExpr
    base: TypeExpr
    #: the total space the bundle's points live in (``in R[3]``); ``None``: the product of base and fiber
    total: TypeExpr | None = None
    span: Span | None = _S()


@dataclass(frozen=True)
class MorphismDecl:
    name: str
    dim_params: tuple[str, ...]
    params: tuple[Param, ...]
    dom: TypeExpr
    cod: TypeExpr
    body: Expr
    span: Span | None = _S()
    name_span: Span | None = _S()
    claim: Claim | None = None


@dataclass(frozen=True)
class WiringDecl:
    name: str
    dim_params: tuple[str, ...]
    params: tuple[Param, ...]
    cod: TypeExpr
    body: tuple[Stmt, ...]
    span: Span | None = _S()
    name_span: Span | None = _S()
    claim: Claim | None = None


@dataclass(frozen=True)
class SharedDecl:
    name: str
    expr: Expr
    span: Span | None = _S()
    #: sizes the instance is generic in (``shared wte[T] = …``): sizes that
    #: no parameter shape may depend on
    dim_params: tuple[str, ...] = ()


@dataclass(frozen=True)
class MainDecl:
    name: str
    span: Span | None = _S()


Decl = Union[Import, ObjectDecl, BundleDecl, MorphismDecl, WiringDecl, SharedDecl, MainDecl]


@dataclass(frozen=True)
class Comment:
    text: str
    line: int
    column: int


@dataclass(frozen=True)
class Module:
    decls: tuple[Decl, ...]
    comments: tuple[Comment, ...] = field(default=(), compare=False)
