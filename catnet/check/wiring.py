"""The wiring form: named wires elaborated into a point-free diagram."""

from __future__ import annotations

from typing import TYPE_CHECKING, NoReturn

from .. import ast as A
from ..errors import suggest
from ..ir import Box, Diagram, Layer, Ob, Span, Ty
from ..library import GENERATORS, Generator
from .infer import Scope, show_ty

if TYPE_CHECKING:
    from .checker import Checker


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
            elif isinstance(x, A.WAdd):
                stack += [x.left, x.right]
            elif isinstance(x, A.WCall):
                stack += [a for a in x.args if isinstance(a, (A.Wire, A.WAdd, A.WCall))]

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
                self.layers.append(Layer(left, Box("swap", Ty((a[1], b[1])), Ty((b[1], a[1])), kind="structural", iso=True), right))
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
        if isinstance(w, A.WAdd):
            a = self.eval(w.left)
            b = self.eval(w.right)
            self.bring(a + b)
            start = len(self.live) - len(a) - len(b)
            dom = Ty(tuple(ob for _, ob in self.live[start:]))
            ref = A.Ref("add", None, None, w.span)
            if len(a) != 1 or len(b) != 1:
                self.c.error("E0306", "`+` adds two single wires", w.span, notes=[f"got {show_ty(dom)}"])
            d = self.c.elab_ref(ref, dom, self.scope, None)
            self.apply(d, start)
            return [self.live[-1][0]]
        assert isinstance(w, A.WCall)
        wires: list[str] = []
        lits: list[A.Arg] = []
        for a in w.args:
            if isinstance(a, A.Lit):
                lits.append(A.Arg(None, a, a.span))
            elif isinstance(a, A.Arg):
                lits.append(a)
            else:
                wires.extend(self.eval(a))
        self.bring(wires)
        start = len(self.live) - len(wires)
        dom = Ty(tuple(ob for _, ob in self.live[start:]))
        ref = A.Ref(w.name, w.dims, tuple(lits) if lits else None, w.span)
        target = self.c.target(ref, self.scope)
        expected = len(target.dom) if not isinstance(target, Generator) else target.arity
        if expected is not None and expected != len(wires):
            self.c.error("E0504", f"`{w.name}` takes {expected} wire(s), but {len(wires)} given", w.span,
                         notes=[f"given: {show_ty(dom)}"])
        d = self.c.elab_ref(ref, dom, self.scope, None)
        self.apply(d, start)
        n = len(d.cod)
        return [wid for wid, _ in self.live[len(self.live) - n :]] if n else []

    def bring(self, ids: list[str]) -> None:
        """Make ``ids`` the last wires, in this order (they already are, unless reordered)."""
        tail = [wid for wid, _ in self.live[len(self.live) - len(ids) :]] if ids else []
        if tail == ids:
            return
        for wid in ids:
            self.to_end(self.index(wid))
