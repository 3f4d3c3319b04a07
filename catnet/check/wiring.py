"""The wiring form: named wires elaborated into a point-free diagram.

Wire arithmetic elaborates to the ``arith`` generators: ``a + b``,
``a - b``, ``a * b``, ``a / b`` of two wires to ``add``, ``sub``, ``mul``,
``div``; ``-a`` to ``neg``.  A side without wires is a constant and is
folded first (``(1 - 0.5) * x`` scales by 0.5); a constant combines with a
wire through ``scale(by=c)`` (``c * a``, ``a * c``, ``a / c`` as ``1/c``)
and ``shift(by=c)`` (``a + c``, ``c + a``, ``a - c`` as ``-c``), and
``c - a`` is ``neg`` then ``shift(by=c)`` (just ``neg`` for ``0 - a``).  A
constant over a wire, a division by a constant zero and a bare constant
where a wire is needed are errors.  In a call, an argument without wires
(``dense(x, 64)``, ``softmax(x, -1)``) is a positional generator argument,
as it is in the point-free form.
"""

from __future__ import annotations

import math
import sys
from typing import TYPE_CHECKING, NoReturn, Union

from .. import ast as A
from .. import fmt
from ..errors import suggest
from ..ir import Box, Diagram, Layer, Ob, Span, Ty
from ..library import GENERATORS, Generator
from .infer import Scope, show_ty

if TYPE_CHECKING:
    from .checker import Checker

#: The generator each operator between two wires elaborates to.
_BINARY = {"+": "add", "-": "sub", "*": "mul", "/": "div"}

_ARITH = (A.WBin, A.WNeg, A.WNum)
_WIRED = (A.Wire, A.WCall, A.WBin, A.WNeg, A.WNum)

Number = Union[int, float]


class Wiring:
    """Elaborates named wires into a diagram.

    The live wires are kept in order; applying a morphism first brings its
    arguments to the end of the list (``swap``), copying a wire that is used
    again later (``copy``).  Unused inputs are discarded; an unused computed
    wire is an error unless its name starts with ``_``.
    """

    def __init__(self, checker: Checker, decl: A.WiringDecl, scope: Scope, dom: Ty, cod: Ty) -> None:
        self.c = checker
        self.decl = decl
        self.scope = scope
        self.dom = dom
        self.cod = cod
        self.live: list[tuple[str, Ob]] = []  # (wire id, wire type)
        self.layers: list[Layer] = []
        self.uses: dict[str, int] = {}
        self.assigned: set[str] = set()
        self.value_of: dict[str, str] = {}  # wire id -> the wire it is a copy of
        self.types: dict[str, Ty] = {}
        self.parts: dict[str, list[str]] = {}  # variable -> wire ids of its obs
        self.counter = 0

    def run(self) -> Diagram:
        stmts = self.decl.body
        returns = [s for s in stmts if isinstance(s, A.Return)]
        if not returns:
            self.c.error("E0504", f"`{self.decl.name}` has no `return`", self.decl.span,
                         help="end the block with `return <wire>`")
        if len(returns) > 1 or not isinstance(stmts[-1], A.Return):
            extra = returns[1] if len(returns) > 1 else stmts[-1]
            self.c.error("E0504", "`return` must be the last statement, and come once", extra.span)
        for s in stmts:
            for w in (s.values if isinstance(s, A.Return) else (s.value,)):
                self.count(w)
            if isinstance(s, A.Assign):
                self.assigned.update(s.names)
        for p in self.decl.params:
            if p.cod is None:
                ty = self.c.type(p.dom, self.scope)
                self.bind(p.name, ty, p.span, is_input=True)
        for s in stmts[:-1]:
            assert isinstance(s, A.Assign)
            ids = self.eval(s.value)
            self.assign(s, ids)
        ret = returns[0]
        out: list[str] = []
        for w in ret.values:
            out.extend(self.eval(w))
        for wid, _ in list(self.live):
            if wid not in out:
                self.discard(wid)
        # The results are now the last wires, in order.
        got = Ty(tuple(ob for _, ob in self.live))

        def fail() -> NoReturn:
            self.c.error("E0303", f"`{self.decl.name}` is declared to return {show_ty(self.cod)}, but returns {show_ty(got.subst(self.scope.infer.solution()))}",
                         ret.span)

        self.scope.infer.unify_ty(got, self.cod, fail)
        return Diagram(self.dom, self.cod, tuple(self.layers))

    # bookkeeping
    def count(self, w: A.WExpr) -> None:
        stack = [w]
        while stack:
            x = stack.pop()
            if isinstance(x, A.Wire):
                self.uses[x.name] = self.uses.get(x.name, 0) + 1
            elif isinstance(x, A.WBin):
                stack += [x.left, x.right]
            elif isinstance(x, A.WNeg):
                stack.append(x.operand)
            elif isinstance(x, A.WCall):
                stack += [a for a in x.args if isinstance(a, _WIRED)]

    def new_id(self) -> str:
        self.counter += 1
        return f"%{self.counter}"

    def bind(self, name: str, ty: Ty, span: Span | None, is_input: bool = False) -> None:
        if name in self.types:
            self.c.error("E0503", f"wire `{name}` is defined twice", span, help="give the new wire its own name")
        ids = []
        for ob in ty.obs:
            wid = self.new_id()
            if is_input:
                self.live.append((wid, ob))
            ids.append(wid)
        self.types[name] = ty
        self.parts[name] = ids
        if not is_input:
            return
        if self.uses.get(name, 0) == 0:
            for wid in ids:
                self.discard(wid)

    def assign(self, s: A.Assign, ids: list[str]) -> None:
        obs = [self.ob(w) for w in ids]
        if len(s.names) == 1:
            groups = [ids]
        elif len(s.names) == len(ids):
            groups = [[w] for w in ids]
        else:
            self.c.error("E0504", f"{len(s.names)} names for {len(ids)} wire(s)", s.span,
                         notes=[f"the right side gives {show_ty(Ty(tuple(obs)))}"])
        for name, group in zip(s.names, groups):
            if name in self.types:
                self.c.error("E0503", f"wire `{name}` is defined twice", s.span, help="give the new wire its own name")
            self.types[name] = Ty(tuple(self.ob(w) for w in group))
            self.parts[name] = group
            if self.uses.get(name, 0) == 0:
                if not name.startswith("_"):
                    self.c.error("E0502", f"wire `{name}` is computed but never used", s.span,
                                 help=f"use it, or name it `_{name}` to discard it on purpose")
                for w in group:
                    self.discard(w)

    def ob(self, wid: str) -> Ob:
        for w, ob in self.live:
            if w == wid:
                return ob
        raise AssertionError(wid)

    def index(self, wid: str) -> int:
        for i in range(len(self.live) - 1, -1, -1):
            if self.live[i][0] == wid:
                return i
        raise AssertionError(wid)

    def apply(self, box: Box | Diagram, start: int) -> None:
        """Apply a box (or diagram) to the wires from ``start`` to the end."""
        left = Ty(tuple(ob for _, ob in self.live[:start]))
        d = box.diagram() if isinstance(box, Box) else box
        for layer in d.layers:
            self.layers.append(Layer(left @ layer.left, layer.box, layer.right))
        self.live = self.live[:start] + [(self.new_id(), ob) for ob in d.cod.obs]

    def discard(self, wid: str) -> None:
        i = self.index(wid)
        ob = self.live[i][1]
        left = Ty(tuple(o for _, o in self.live[:i]))
        right = Ty(tuple(o for _, o in self.live[i + 1 :]))
        self.layers.append(Layer(left, Box("discard", Ty((ob,)), Ty(), kind="structural"), right))
        del self.live[i]

    def to_end(self, i: int) -> None:
        """Move the wire at position ``i`` to the end with adjacent swaps.

        Passing a copy of the same value needs no box: the two wires carry
        equal values (``copy ; swap = copy``), so only their names trade places.
        """
        while i < len(self.live) - 1:
            a, b = self.live[i], self.live[i + 1]
            twin = a[0] in self.value_of and self.value_of.get(a[0]) == self.value_of.get(b[0])
            if not twin:
                left = Ty(tuple(o for _, o in self.live[:i]))
                right = Ty(tuple(o for _, o in self.live[i + 2 :]))
                self.layers.append(Layer(left, Box("swap", Ty((a[1], b[1])), Ty((b[1], a[1])), kind="structural", iso=True,
                                                   routing=True), right))
            self.live[i], self.live[i + 1] = b, a
            i += 1

    def take(self, w: A.Wire) -> list[str]:
        """Bring the wires of variable ``w`` to the end; copy them if used again."""
        name = w.name
        if name not in self.types:
            if name in GENERATORS or name in self.c.decls or name in self.c.module.imported or name in self.scope.morphisms:
                self.c.error("E0501", f"`{name}` is a morphism, not a wire", w.span, help=f"apply it to a wire: `{name}(x)`")
            later = name in self.assigned
            hint = suggest(name, self.types)
            self.c.error("E0501", f"undefined wire `{name}`", w.span,
                         help=f"did you mean `{hint}`?" if hint else ("define it before this line" if later else None))
        self.uses[name] -= 1
        out = []
        for wid in self.parts[name]:
            i = self.index(wid)
            if self.uses[name] > 0:
                ob = self.live[i][1]
                left = Ty(tuple(o for _, o in self.live[:i]))
                right = Ty(tuple(o for _, o in self.live[i + 1 :]))
                self.layers.append(Layer(left, Box("copy", Ty((ob,)), Ty((ob, ob)), kind="structural", span=w.span), right))
                fresh = self.new_id()
                self.value_of[fresh] = self.value_of.setdefault(wid, wid)
                self.live.insert(i + 1, (fresh, ob))
                i += 1
                wid = fresh
            self.to_end(i)
            out.append(wid)
        return out

    def eval(self, w: A.WExpr) -> list[str]:
        """Evaluate a wire expression; its results end up last, in order."""
        if isinstance(w, A.Wire):
            return self.take(w)
        if isinstance(w, _ARITH):
            value = self.constant(w)
            if value is not None:
                self.c.error("E0505", f"the constant `{fmt.wexpr(w)}` is not a wire", w.span,
                             help="a constant enters a wiring combined with a wire, e.g. `x * 2` or `1 - x`; "
                                  "a trainable tensor is a call such as `learned(64)`")
            if isinstance(w, A.WNeg):
                return self.unary(w, w.operand, "neg", None)
            assert isinstance(w, A.WBin)
            return self.binary(w)
        assert isinstance(w, A.WCall)
        return self.call(w)

    def call(self, w: A.WCall) -> list[str]:
        """Apply a morphism to its wire arguments; arguments without wires are generator arguments."""
        wires: list[str] = []
        lits: list[A.Arg] = []
        for a in w.args:
            if isinstance(a, A.Lit):
                lits.append(A.Arg(None, a, a.span))
            elif isinstance(a, A.Arg):
                lits.append(a)
            elif isinstance(a, _ARITH) and (c := self.constant(a)) is not None:
                lits.append(A.Arg(None, A.Lit(c, a.span), a.span))
            else:
                wires.extend(self.eval(a))
        self.bring(wires)
        start = len(self.live) - len(wires)
        dom = Ty(tuple(ob for _, ob in self.live[start:]))
        ref = A.Ref(w.name, w.dims, tuple(lits) if lits else None, w.span)
        target = self.c.target(ref, self.scope)
        expected = len(target.dom) if not isinstance(target, Generator) else target.arity
        constants = [fmt.value(a.value) for a in lits if a.name is None]
        if expected is not None and expected != len(wires):
            self.c.error("E0504", f"`{w.name}` takes {expected} wire(s), but {len(wires)} given", w.span,
                         notes=[f"given: {show_ty(dom)}"],
                         help=f"`{constants[0]}` is a constant, so it is an argument of `{w.name}`, not a wire; "
                              "combine a constant with a wire by arithmetic, e.g. `x + 1`"
                         if constants and len(wires) < expected else None)
        if constants and not isinstance(target, Generator):
            self.c.error("E0505", f"`{w.name}` takes wires, but is given the constant `{constants[0]}`", w.span,
                         help="only a generator takes positional constants; "
                              "combine a constant with a wire by arithmetic, e.g. `x * 2`")
        d = self.c.elab_ref(ref, dom, self.scope, None)
        self.apply(d, start)
        n = len(d.cod)
        return [wid for wid, _ in self.live[len(self.live) - n :]] if n else []

    # wire arithmetic
    def constant(self, w: A.WExpr) -> Number | None:
        """The value of ``w`` if it mentions no wire (constants fold), else ``None``."""
        if isinstance(w, A.WNum):
            return w.value
        if isinstance(w, A.WNeg):
            v = self.constant(w.operand)
            return None if v is None else self.finite(-v, w)
        if not isinstance(w, A.WBin):
            return None
        a = self.constant(w.left)
        b = None if a is None else self.constant(w.right)  # a wire on the left: not a constant
        if a is None or b is None:
            return None
        if w.op == "/":
            if b == 0:
                self.zero(w)
            return self.finite(a / b, w)
        return self.finite(a + b if w.op == "+" else a - b if w.op == "-" else a * b, w)

    def finite(self, v: Number, w: A.WExpr) -> Number:
        """``v``, the folded value of ``w``, if it is a finite number a float can hold."""
        if isinstance(v, float) and math.isfinite(v) or isinstance(v, int) and abs(v) <= sys.float_info.max:
            return v
        self.c.error("E0506", f"the constant `{fmt.wexpr(w)}` is too large to be a number", w.span,
                     notes=["it is beyond the largest floating-point number, about 1.8e308"])

    def zero(self, w: A.WBin) -> NoReturn:
        """Refuse ``w``, a division by a constant that is zero."""
        folded = not isinstance(w.right, A.WNum)
        self.c.error("E0506", f"`{fmt.wexpr(w)}` divides by zero", w.span,
                     notes=[f"`{fmt.wexpr(w.right)}` is 0"] if folded else [])

    def binary(self, w: A.WBin) -> list[str]:
        """``a op b`` with at least one wire side (both constant is folded by the caller)."""
        a, b = self.constant(w.left), self.constant(w.right)
        if a is None and b is None:
            left, right = self.single(w.left, w), self.single(w.right, w)
            self.bring([left, right])
            start = len(self.live) - 2
            dom = Ty(tuple(ob for _, ob in self.live[start:]))
            return self.box(_BINARY[w.op], (), dom, start, w.span)
        shown = fmt.wexpr(w)
        if w.op == "/" and a is not None:
            self.c.error("E0507", f"`{shown}` divides a constant by a wire", w.span,
                         help=f"write `{fmt.lit(a)} * reciprocal({fmt.wexpr(w.right)})`"
                         if a != 1 else f"write `reciprocal({fmt.wexpr(w.right)})`")
        if w.op == "/":
            assert b is not None
            if b == 0:
                self.zero(w)
            return self.unary(w, w.left, "scale", self.finite(1 / b, w))
        wire = w.right if a is not None else w.left
        c = a if a is not None else b
        assert c is not None
        if w.op == "*":
            return self.unary(w, wire, "scale", c)
        if w.op == "+":
            return self.unary(w, wire, "shift", c)
        if b is not None:  # a - c
            return self.unary(w, wire, "shift", -b)
        out = self.unary(w, wire, "neg", None)  # c - a is -a + c
        return out if c == 0 else self.box("shift", (("by", c),), Ty((self.live[-1][1],)), len(self.live) - 1, w.span)

    def unary(self, w: A.WExpr, operand: A.WExpr, name: str, by: Number | None) -> list[str]:
        """``name`` (with ``by=…`` if given) applied to the single wire ``operand``."""
        wid = self.single(operand, w)
        self.bring([wid])
        start = len(self.live) - 1
        dom = Ty((self.live[-1][1],))
        return self.box(name, () if by is None else (("by", by),), dom, start, w.span)

    def single(self, operand: A.WExpr, w: A.WExpr) -> str:
        """Evaluate ``operand`` of the operation ``w``, which must give one wire."""
        ids = self.eval(operand)
        if len(ids) != 1:
            got = Ty(tuple(self.ob(i) for i in ids))
            what = "`-` negates one wire" if isinstance(w, A.WNeg) else f"each side of `{w.op}` must be one wire"
            names = ", ".join("abcdefgh"[: min(len(ids), 8)]) + (", …" if len(ids) > 8 else "")
            self.c.error("E0306", what, w.span, notes=[f"`{fmt.wexpr(operand)}` gives {show_ty(got)}"],
                         help=f"name its wires first (`{names} = {fmt.wexpr(operand)}`) and combine them one by one"
                         if ids else None)
        return ids[0]

    def box(self, name: str, args: tuple[tuple[str, Number], ...], dom: Ty, start: int, span: Span | None) -> list[str]:
        """Apply the ``arith`` generator ``name`` to the wires from ``start``; its one result."""
        ref = A.Ref(name, None, tuple(A.Arg(k, A.Lit(v, span), span) for k, v in args) or None, span)
        d = self.c.generator(GENERATORS[name], ref, dom, self.scope, None)
        self.apply(d, start)
        return [self.live[-1][0]]

    def bring(self, ids: list[str]) -> None:
        """Make ``ids`` the last wires, in this order (they already are, unless reordered)."""
        tail = [wid for wid, _ in self.live[len(self.live) - len(ids) :]] if ids else []
        if tail == ids:
            return
        for wid in ids:
            self.to_end(self.index(wid))
