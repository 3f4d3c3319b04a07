"""The typed categorical IR: objects (``Ty``), boxes (``Box``), diagrams.

A diagram is a domain, a codomain and a flat tuple of layers; each layer is
one box whiskered by identity wires on its left and right.  Composition is
concatenation of layers, so the category laws hold by construction::

    >>> A = Ty.tensor_space("R", (64,))
    >>> f = Box("dense", A, A).diagram()
    >>> g = Box("relu", A, A).diagram()
    >>> f.then(g).then(f) == f.then(g.then(f))
    True
    >>> Diagram.id(A).then(f) == f == f.then(Diagram.id(A))
    True

All nodes are frozen and hashable.  Source spans ride along but are excluded
from equality (``compare=False``), so the same program parsed twice, or
pretty-printed and parsed again, gives equal IR.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Iterator, Union

from . import dims
from .dims import Dim


@dataclass(frozen=True)
class Span:
    """Where a thing was written: 1-based line and column, 0-based offsets."""

    file: str
    line: int
    column: int
    end_line: int
    end_column: int
    start: int = 0
    end: int = 0


Value = Union[int, float, bool, str, Dim, tuple, "Diagram"]


@dataclass(frozen=True)
class Ob:
    """One wire: a tensor space of a single example.

    ``base`` is ``"R"`` (real), ``"Z"`` (integer ids) or ``"bundle"``.  A
    bundle carries its typical ``fiber`` and its ``over`` base object.  A
    ``group`` names the group acting on the wire (a G-space).  ``name`` is
    the declared object name, used for display only.
    """

    base: str
    shape: tuple[Dim, ...] = ()
    group: str | None = None
    fiber: "Ty | None" = None
    over: "Ty | None" = None
    name: str | None = field(default=None, compare=False)

    def structure(self) -> str:
        """The object spelled out, without its declared name: ``R[8, 8, 1]``."""
        if self.base == "bundle":
            assert self.fiber is not None and self.over is not None
            text = f"bundle({self.fiber} over {self.over})"
        else:
            text = f"{self.base}[{', '.join(dims.show(d) for d in self.shape)}]"
        return f"{text} under {self.group}" if self.group else text

    def __str__(self) -> str:
        return self.name or self.structure()

    def subst(self, env: dict[str, Dim]) -> "Ob":
        if not env or (self.fiber is None and all(type(d) is int for d in self.shape)):
            return self
        return replace(
            self,
            shape=tuple(dims.subst(d, env) for d in self.shape),
            fiber=self.fiber.subst(env) if self.fiber else None,
            over=self.over.subst(env) if self.over else None,
        )

    def symbols(self) -> set[str]:
        out = {s for d in self.shape for s in dims.symbols(d)}
        for t in (self.fiber, self.over):
            if t is not None:
                out |= t.symbols()
        return out


@dataclass(frozen=True)
class Ty:
    """An object of the category: a monoidal product of wires (``()`` is ``I``)."""

    obs: tuple[Ob, ...] = ()

    @staticmethod
    def tensor_space(base: str, shape: tuple[Dim, ...], name: str | None = None) -> "Ty":
        return Ty((Ob(base, tuple(shape), name=name),))

    def tensor(self, *others: "Ty") -> "Ty":
        obs = self.obs
        for o in others:
            obs = obs + o.obs
        return Ty(obs)

    __matmul__ = tensor

    def __len__(self) -> int:
        return len(self.obs)

    def __iter__(self) -> Iterator[Ob]:
        return iter(self.obs)

    def __getitem__(self, key: slice) -> "Ty":
        assert isinstance(key, slice)
        return Ty(self.obs[key])

    def __str__(self) -> str:
        if not self.obs:
            return "I"
        return " ⊗ ".join(str(o) for o in self.obs)

    def structure(self) -> str:
        if not self.obs:
            return "I"
        return " ⊗ ".join(o.structure() for o in self.obs)

    def described(self) -> str:
        """``Hidden = R[128]`` when named, else the structure; for messages."""
        s = self.structure()
        named = str(self)
        return s if named == s else f"{named} = {s}"

    def subst(self, env: dict[str, Dim]) -> "Ty":
        if not env or not self.obs:
            return self
        obs = tuple(o.subst(env) for o in self.obs)
        return self if all(a is b for a, b in zip(obs, self.obs)) else Ty(obs)

    def symbols(self) -> set[str]:
        out: set[str] = set()
        for o in self.obs:
            out |= o.symbols()
        return out


I = Ty()

#: What each kind of box is.  ``generator``: a library primitive (``dense``);
#: ``structural``: a wiring primitive (``copy``, ``swap``); ``composite``: a
#: named definition whose ``body`` is a diagram; ``repeat``: ``n`` fresh
#: copies of ``body``; ``inv``: the inverse of the iso ``body``; ``scan``: the
#: trace of ``body`` over a sequence axis.
BOX_KINDS = ("generator", "structural", "composite", "repeat", "inv", "scan")


@dataclass(frozen=True)
class Box:
    """A morphism with a parameter space (Para).

    ``args`` are the generator's keyword arguments, complete and sorted by
    name.  Each occurrence of a box is a fresh parameter instance unless
    ``shared`` names the instance it shares weights with.  ``iso`` marks a
    box with a real inverse.
    """

    name: str
    dom: Ty
    cod: Ty
    kind: str = "generator"
    args: tuple[tuple[str, Value], ...] = ()
    body: "Diagram | None" = None
    shared: str | None = None
    iso: bool = False
    span: Span | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        assert self.kind in BOX_KINDS, self.kind

    @property
    def kwargs(self) -> dict[str, Value]:
        return dict(self.args)

    def diagram(self) -> "Diagram":
        return Diagram(self.dom, self.cod, (Layer(I, self, I),))

    def subst(self, env: dict[str, Dim]) -> "Box":
        if not env:
            return self
        dom, cod = self.dom.subst(env), self.cod.subst(env)
        args = tuple((k, _subst_value(v, env)) for k, v in self.args) if self.args else self.args
        body = self.body.subst(env) if self.body is not None else None
        if dom is self.dom and cod is self.cod and body is self.body and args == self.args:
            return self
        return replace(self, dom=dom, cod=cod, args=args, body=body)


def _subst_value(v: Value, env: dict[str, Dim]) -> Value:
    if isinstance(v, dims.Poly):
        return dims.subst(v, env)
    if isinstance(v, tuple):
        return tuple(_subst_value(x, env) for x in v)
    if isinstance(v, Diagram):
        return v.subst(env)
    return v


@dataclass(frozen=True)
class Layer:
    left: Ty
    box: Box
    right: Ty

    @property
    def dom(self) -> Ty:
        return self.left @ self.box.dom @ self.right

    @property
    def cod(self) -> Ty:
        return self.left @ self.box.cod @ self.right


@dataclass(frozen=True)
class Diagram:
    """A morphism ``dom -> cod`` built from layers, read top to bottom."""

    dom: Ty
    cod: Ty
    layers: tuple[Layer, ...] = ()

    @staticmethod
    def id(ty: Ty) -> "Diagram":
        return Diagram(ty, ty, ())

    @staticmethod
    def compose(diagrams: list["Diagram"]) -> "Diagram":
        """``d0 ; d1 ; ...`` in one pass (linear in the total number of layers)."""
        assert diagrams
        layers: list[Layer] = []
        for a, b in zip(diagrams, diagrams[1:]):
            assert a.cod == b.dom, f"{a.cod} != {b.dom}"
        for d in diagrams:
            layers.extend(d.layers)
        return Diagram(diagrams[0].dom, diagrams[-1].cod, tuple(layers))

    def then(self, *others: "Diagram") -> "Diagram":
        return Diagram.compose([self, *others])

    __rshift__ = then

    def whisker(self, left: Ty, right: Ty) -> "Diagram":
        """``id(left) ⊗ self ⊗ id(right)``."""
        if not left.obs and not right.obs:
            return self
        return Diagram(
            left @ self.dom @ right,
            left @ self.cod @ right,
            tuple(Layer(left @ l.left, l.box, l.right @ right) for l in self.layers),
        )

    def tensor(self, *others: "Diagram") -> "Diagram":
        """Parallel composition: each factor's layers run after the ones to its left."""
        parts = [self, *others]
        dom = Ty(tuple(o for p in parts for o in p.dom.obs))
        cod = Ty(tuple(o for p in parts for o in p.cod.obs))
        layers: list[Layer] = []
        for i, p in enumerate(parts):
            left = Ty(tuple(o for q in parts[:i] for o in q.cod.obs))
            right = Ty(tuple(o for q in parts[i + 1 :] for o in q.dom.obs))
            layers.extend(p.whisker(left, right).layers)
        return Diagram(dom, cod, tuple(layers))

    __matmul__ = tensor

    @property
    def boxes(self) -> tuple[Box, ...]:
        return tuple(l.box for l in self.layers)

    @property
    def is_iso(self) -> bool:
        return all(l.box.iso for l in self.layers)

    def subst(self, env: dict[str, Dim]) -> "Diagram":
        if not env:
            return self
        layers = []
        changed = False
        for l in self.layers:
            left, box, right = l.left.subst(env), l.box.subst(env), l.right.subst(env)
            if left is l.left and box is l.box and right is l.right:
                layers.append(l)
            else:
                layers.append(Layer(left, box, right))
                changed = True
        dom, cod = self.dom.subst(env), self.cod.subst(env)
        if not changed and dom is self.dom and cod is self.cod:
            return self
        return Diagram(dom, cod, tuple(layers))

    def walk(self) -> Iterator[tuple[tuple[str, ...], Box]]:
        """Every box at every depth with its path of enclosing composite names."""
        stack: list[tuple[tuple[str, ...], Iterator[Layer]]] = [((), iter(self.layers))]
        while stack:
            path, it = stack[-1]
            layer = next(it, None)
            if layer is None:
                stack.pop()
                continue
            yield path, layer.box
            if layer.box.body is not None:
                stack.append((path + (layer.box.name,), iter(layer.box.body.layers)))

    def __str__(self) -> str:
        from .pretty import pretty

        return pretty(self)

    def _repr_svg_(self) -> str:
        """The diagram drawn as a string diagram, for Jupyter (needs Graphviz's ``dot``)."""
        from .render import render

        return render(self, format="svg")  # type: ignore[return-value]
