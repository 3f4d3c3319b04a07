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

from dataclasses import dataclass, field, fields
from typing import AbstractSet, Any, Callable, Iterable, Iterator, TypeVar, Union

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
    ``group`` names the group acting on the wire (a G-space) and ``rep``
    its representation on the last axis, as canonical text (``regular *
    16``; ``None``: trivial on every channel), or a variable ``?ρ3`` that
    unification solves (``catnet.check.infer``).  ``name`` is the declared
    object name, used for display only.
    """

    base: str
    shape: tuple[Dim, ...] = ()
    group: str | None = None
    fiber: "Ty | None" = None
    over: "Ty | None" = None
    name: str | None = field(default=None, compare=False)
    rep: str | None = None

    def structure(self) -> str:
        """The object spelled out, without its declared name: ``R[8, 8, 1]``."""
        if self.base == "bundle":
            assert self.fiber is not None and self.over is not None
            text = f"bundle({self.fiber} over {self.over})"
        else:
            text = f"{self.base}[{', '.join(dims.show(d) for d in self.shape)}]"
        if not self.group:
            return text
        rep = f" as {self.rep}" if self.rep and not is_rep_var(self.rep) else ""
        return f"{text} under {self.group}{rep}"

    def __str__(self) -> str:
        return self.name or self.structure()

    def subst(self, env: dict[str, Dim]) -> "Ob":
        rep_var = self.rep is not None and is_rep_var(self.rep)
        if not env or (self.fiber is None and not rep_var and ground(self.shape)):
            return self
        shape = tuple([dims.subst(d, env) for d in self.shape])
        fiber = self.fiber.subst(env) if self.fiber else None
        over = self.over.subst(env) if self.over else None
        rep = (env.get(self.rep, self.rep) or None) if rep_var else self.rep  # type: ignore[arg-type]  # "" is trivial
        if shape == self.shape and fiber is self.fiber and over is self.over and rep == self.rep:
            return self
        return _rebuilt(self, shape=shape, fiber=fiber, over=over, rep=rep)

    def with_shape(self, shape: tuple[Dim, ...]) -> "Ob":
        """The same wire with another shape (its name, group and representation kept)."""
        return _rebuilt(self, shape=shape)

    def symbols(self) -> set[str]:
        out: set[str] = set()
        for d in self.shape:
            if type(d) is not int:
                out |= dims.symbols(d)
        if self.fiber is None and self.over is None and self.rep is None:
            return out
        for t in (self.fiber, self.over):
            if t is not None:
                out |= t.symbols()
        if self.rep is not None and is_rep_var(self.rep):
            out.add(self.rep)
        return out


_D = TypeVar("_D", "Ob", "Box")
_new = object.__new__


def _rebuilt(obj: "_D", **changes: Any) -> "_D":
    """``dataclasses.replace`` for the IR's frozen classes, without running ``__init__`` again.

    Substitution rebuilds a box or a wire for every size it solves, and
    ``replace`` (keyword parsing, ``__post_init__``) was a fifth of checking
    a large file.  Only the declared fields are copied: values cached on the
    old object (hints, hashes) are not.
    """
    cls = type(obj)
    new = _new(cls)
    d = new.__dict__
    old = obj.__dict__
    names = _FIELDS[cls]
    if len(old) == len(names):  # nothing cached on the old object: copy it whole
        d.update(old)
    else:
        for name in names:
            d[name] = old[name]
    d.update(changes)
    return new


def ground(shape: tuple[Dim, ...]) -> bool:
    """Whether every size of ``shape`` is a number (a loop: faster than ``all`` over a generator)."""
    for d in shape:
        if type(d) is not int:
            return False
    return True


def is_rep_var(rep: str) -> bool:
    """Whether a wire's representation is a variable still to be solved (``?ρ3``)."""
    return rep.startswith("?")


#: Products up to this many wires are plain tuples; wider ones are built
#: lazily (see :class:`Ty`).
_SMALL = 16

#: A symbol hint larger than this is replaced by :data:`ANY`.
_HINT_MAX = 64

#: The symbol hint of a part that mentions too many symbols to track: it
#: meets every substitution and counts as mentioning a variable.
ANY: frozenset[str] = frozenset({"?*"})


#: The hint of a part that mentions no symbol (shared: most wires have numeric sizes).
_NONE: frozenset[str] = frozenset()


def _union(hints: Iterable[frozenset[str] | set[str]]) -> frozenset[str]:
    """The union of symbol hints, or :data:`ANY` once it grows large."""
    out: set[str] = set()
    for h in hints:
        if h is ANY or len(h) > _HINT_MAX:
            return ANY
        out |= h
        if len(out) > _HINT_MAX:
            return ANY
    return frozenset(out)


def meets(hint: frozenset[str], keys: AbstractSet[str]) -> bool:
    """Whether a part with this symbol hint may mention one of ``keys``.

    ``keys`` is a set or a dict's keys: their ``isdisjoint`` walks the
    smaller side, so the test costs the hint's size, not the environment's.
    """
    if hint is ANY:
        return True
    return bool(hint) and not keys.isdisjoint(hint)


class Ty:
    """An object of the category: a monoidal product of wires (``Ty()`` is ``I``).

    A type is a sequence of :class:`Ob`; two types are equal when their wires
    are.  Wide types are built lazily: ``a @ b`` and a slice ``t[i:j]`` of
    a type wider than a few wires are nodes that point at their parts, and
    the flat tuple ``obs`` is made on first use, without recursion.  This is
    what keeps an ``n``-factor product linear: each of its ``n`` layers
    whiskers its box with the wires on either side, and those whiskers are
    views into one shared tuple instead of ``n`` copies of up to ``n`` wires.
    The symbols a type mentions are known (as a superset) without
    flattening it, so substituting sizes into a type that does not mention
    them costs nothing.
    """

    __slots__ = ("_obs", "_len", "_left", "_right", "_src", "_lo", "_hint", "_hash")

    def __init__(self, obs: Iterable[Ob] = ()) -> None:
        self._obs: tuple[Ob, ...] | None = obs if type(obs) is tuple else tuple(obs)
        self._len = len(self._obs)
        self._left: Ty | None = None
        self._right: Ty | None = None
        self._src: Ty | None = None
        self._lo = 0
        self._hint: frozenset[str] | None = None
        self._hash: int | None = None

    # -- lazy construction
    @staticmethod
    def _lazy(length: int, hint: frozenset[str]) -> "Ty":
        t = Ty.__new__(Ty)
        t._obs, t._len, t._left, t._right, t._src, t._lo, t._hint, t._hash = None, length, None, None, None, 0, hint, None
        return t

    @staticmethod
    def _cat(a: "Ty", b: "Ty") -> "Ty":
        if not b._len:
            return a
        if not a._len:
            return b
        if a._len + b._len <= _SMALL:
            return Ty(a.obs + b.obs)
        t = Ty._lazy(a._len + b._len, _union((a.symbol_hint(), b.symbol_hint())))
        t._left, t._right = a, b
        return t

    @staticmethod
    def _view(src: "Ty", lo: int, hi: int) -> "Ty":
        """``src[lo:hi]`` without copying (``src`` is flattened once)."""
        obs = src.obs
        if hi - lo <= _SMALL:
            return Ty(obs[lo:hi])
        if lo == 0 and hi == len(obs):
            return src
        t = Ty._lazy(hi - lo, src.symbol_hint())
        t._src, t._lo = src, lo
        return t

    @staticmethod
    def concat(types: Iterable["Ty"]) -> "Ty":
        """The product of many types, flattened in one pass."""
        out: list[Ob] = []
        for t in types:
            out.extend(t.obs)
        return Ty(tuple(out))

    @property
    def obs(self) -> tuple[Ob, ...]:
        """The wires, left to right."""
        if self._obs is None:
            out: list[Ob] = []
            stack: list[Ty] = [self]
            while stack:
                t = stack.pop()
                if t._obs is not None:
                    out.extend(t._obs)
                elif t._src is not None:
                    out.extend(t._src.obs[t._lo : t._lo + t._len])
                else:
                    assert t._left is not None and t._right is not None
                    stack.append(t._right)
                    stack.append(t._left)
            self._obs = tuple(out)
            self._left = self._right = self._src = None
            self._hint = None  # the hint was a superset; recompute it exactly when asked
        return self._obs

    @staticmethod
    def tensor_space(base: str, shape: tuple[Dim, ...], name: str | None = None) -> "Ty":
        return Ty((Ob(base, tuple(shape), name=name),))

    def tensor(self, *others: "Ty") -> "Ty":
        out = self
        for o in others:
            out = Ty._cat(out, o)
        return out

    __matmul__ = tensor

    def __len__(self) -> int:
        return self._len

    def __bool__(self) -> bool:
        return self._len > 0

    def __iter__(self) -> Iterator[Ob]:
        return iter(self.obs)

    def __getitem__(self, key: slice) -> "Ty":
        assert isinstance(key, slice)
        lo, hi, step = key.indices(self._len)
        if step != 1:
            return Ty(self.obs[key])
        return Ty._view(self, lo, max(lo, hi))

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        if not isinstance(other, Ty):
            return NotImplemented
        return self._len == other._len and self.obs == other.obs

    def __hash__(self) -> int:
        if self._hash is None:
            # Equal types have equal wires; a wide type is hashed by its
            # length and ends so that hashing never flattens it.
            if self._len <= 64:
                self._hash = hash(self.obs)
            else:
                self._hash = hash((self._len, self._at(0), self._at(self._len - 1)))
        return self._hash

    def _at(self, i: int) -> Ob:
        t = self
        while t._obs is None:
            if t._src is not None:
                i += t._lo
                t = t._src
            else:
                assert t._left is not None and t._right is not None
                if i < t._left._len:
                    t = t._left
                else:
                    i -= t._left._len
                    t = t._right
        return t._obs[i]

    def __repr__(self) -> str:
        return f"Ty({self.obs!r})"

    def __reduce__(self) -> tuple:
        return (Ty, (self.obs,))

    def __str__(self) -> str:
        if not self._len:
            return "I"
        return " ⊗ ".join(str(o) for o in self.obs)

    def structure(self) -> str:
        if not self._len:
            return "I"
        return " ⊗ ".join(o.structure() for o in self.obs)

    def described(self) -> str:
        """``Hidden = R[128]`` when named, else the structure; for messages."""
        s = self.structure()
        named = str(self)
        return s if named == s else f"{named} = {s}"

    def symbol_hint(self) -> frozenset[str]:
        """A superset of the symbols this type mentions (exact once flattened)."""
        if self._hint is None:
            out: set[str] = set()
            for o in self.obs:
                if o.fiber is not None or o.over is not None or o.rep is not None or not ground(o.shape):
                    out |= o.symbols()
            self._hint = frozenset(out) if out else _NONE
        return self._hint

    def subst(self, env: dict[str, Dim], memo: dict[int, "Ty"] | None = None) -> "Ty":
        """Replace size symbols; ``memo`` shares the work between views of one type."""
        if not env or not self._len or not meets(self.symbol_hint(), env.keys()):
            return self
        if memo is not None:
            if self._obs is None:
                return self._subst_lazy(env, memo)
            done = memo.get(id(self))
            if done is not None:
                return done
        old = self.obs
        obs = tuple([o.subst(env) for o in old])
        done = self
        for a, b in zip(obs, old):
            if a is not b:
                done = Ty(obs)
                break
        if memo is not None:
            memo[id(self)] = done
        return done

    def _subst_lazy(self, env: dict[str, Dim], memo: dict[int, "Ty"]) -> "Ty":
        """Substitute in a lazy type part by part, each shared part once (no recursion)."""
        stack: list[tuple[Ty, bool]] = [(self, False)]
        while stack:
            t, ready = stack.pop()
            if id(t) in memo:
                continue
            if t._obs is not None or not meets(t.symbol_hint(), env.keys()):
                memo[id(t)] = t.subst(env)
            elif t._src is not None:
                if id(t._src) not in memo:
                    stack += [(t, True), (t._src, False)]
                    continue
                memo[id(t)] = Ty._view(memo[id(t._src)], t._lo, t._lo + t._len)
            else:
                assert t._left is not None and t._right is not None
                if not ready:
                    stack += [(t, True), (t._right, False), (t._left, False)]
                    continue
                memo[id(t)] = Ty._cat(memo[id(t._left)], memo[id(t._right)])
        return memo[id(self)]

    def symbols(self) -> set[str]:
        hint = self.symbol_hint()
        if not hint or (self._obs is not None and hint is not ANY):
            return set(hint)
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


@dataclass(frozen=True, eq=False, init=False)
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
    #: For an occurrence of a checked definition: its generic body and the
    #: sizes it was instantiated with.  Substitution starts again from the
    #: generic body, so instantiating a definition whose sizes come back to
    #: its own symbols shares that body instead of copying it, and chains
    #: of definitions check in linear time.  Not compared.
    inst: "tuple[Diagram, tuple[tuple[str, Dim], ...]] | None" = field(default=None, compare=False, repr=False)
    #: A ``swap`` the wiring form inserted to bring a call's arguments
    #: together, which the source does not write: figures draw the wires
    #: themselves rather than a crossing.  Not compared.
    routing: bool = field(default=False, compare=False, repr=False)

    def __init__(self, name: str, dom: Ty, cod: Ty, kind: str = "generator", args: tuple[tuple[str, Value], ...] = (),
                 body: "Diagram | None" = None, shared: str | None = None, iso: bool = False, span: Span | None = None,
                 inst: "tuple[Diagram, tuple[tuple[str, Dim], ...]] | None" = None, routing: bool = False) -> None:
        # Written out rather than generated: a frozen dataclass's ``__init__``
        # sets each field through ``object.__setattr__``, and a box is made
        # for every box of every definition checked.
        assert kind in BOX_KINDS, kind
        d = self.__dict__
        d["name"], d["dom"], d["cod"], d["kind"], d["args"], d["body"] = name, dom, cod, kind, args, body
        d["shared"], d["iso"], d["span"], d["inst"], d["routing"] = shared, iso, span, inst, routing

    def __repr__(self) -> str:
        """One line, without the body: ``<Box dense : R[64] -> R[128]>``."""
        return f"<Box {self.name} : {self.dom} -> {self.cod}{', shared ' + self.shared if self.shared else ''}>"

    def __eq__(self, other: object) -> bool:
        return _same(self, other) if isinstance(other, Box) else NotImplemented

    def __hash__(self) -> int:
        # The body is left out: hashing stays flat however deep the nesting.
        h = self.__dict__.get("_hash")
        if h is None:
            simple = tuple((k, v) for k, v in self.args if isinstance(v, (int, float, str, bool, dims.Poly)))
            h = hash((self.name, self.kind, self.dom, self.cod, simple, self.shared, self.iso))
            object.__setattr__(self, "_hash", h)
        return h

    @property
    def kwargs(self) -> dict[str, Value]:
        return dict(self.args)

    def diagram(self) -> "Diagram":
        return Diagram(self.dom, self.cod, (Layer(I, self, I),))

    def subst(self, env: dict[str, Dim]) -> "Box":
        """The box with sizes replaced (see :meth:`Diagram.subst`)."""
        return _subst(self, env) if env else self

    def symbol_hint(self) -> frozenset[str]:
        """A superset of the size symbols this box mentions, at any depth."""
        return _hint(self)

    def _own_hint(self) -> frozenset[str]:
        out = set(self.dom.symbol_hint() | self.cod.symbol_hint())
        for _, v in self.args:
            out |= _value_symbols(v)
        if self.inst is not None:
            for _, v in self.inst[1]:
                out |= dims.symbols(v)
        return _union([out])

    def children(self) -> list["Diagram"]:
        """The diagrams nested in this box that substitution must visit."""
        out = [v for _, v in self.args if isinstance(v, Diagram)]
        if self.body is not None and self.inst is None:
            out.append(self.body)
        return out


#: The declared fields of the classes :func:`_rebuilt` copies.
_FIELDS = {cls: tuple(f.name for f in fields(cls)) for cls in (Ob, Box)}


def _value_symbols(v: Value) -> set[str]:
    if isinstance(v, dims.Poly):
        return dims.symbols(v)
    if isinstance(v, tuple):
        out: set[str] = set()
        for x in v:
            out |= _value_symbols(x)
        return out
    return set()


def _hint(node: "Box | Diagram") -> frozenset[str]:
    """The cached symbol hint of a box or diagram (computed on first use)."""
    h = node.__dict__.get("_hint")
    if h is None:
        _compute_hints(node)
        h = node.__dict__["_hint"]
    return h


def _compute_hints(root: "Box | Diagram") -> None:
    """Cache the symbol hints of ``root`` and everything nested in it, without recursion."""
    stack: list[tuple[Box | Diagram, bool]] = [(root, False)]
    while stack:
        node, ready = stack.pop()
        if "_hint" in node.__dict__:
            continue
        kids: list[Box | Diagram] = list(l.box for l in node.layers) if isinstance(node, Diagram) else list(node.children())
        if not ready:
            stack.append((node, True))
            stack.extend((k, False) for k in kids if "_hint" not in k.__dict__)
            continue
        if isinstance(node, Diagram):
            parts = [node.dom.symbol_hint(), node.cod.symbol_hint()]
            for l in node.layers:
                parts += [l.left.symbol_hint(), l.right.symbol_hint(), l.box.__dict__["_hint"]]
            hint = _union(parts)
        else:
            hint = _union([node._own_hint(), *(k.__dict__["_hint"] for k in kids)])
        object.__setattr__(node, "_hint", hint)


def _subst(root: "Box | Diagram", env: dict[str, Dim]) -> "Box | Diagram":
    """Substitute in a box or diagram and everything nested in it, without recursion.

    Work items are (part, sizes): a definition's occurrence (``Box.inst``)
    takes its body from the generic one under sizes of its own, so one walk
    may carry several environments.  Each part is rebuilt at most once per
    environment (memos by identity), bottom-up; a part whose symbol hint
    does not meet its environment is kept as it is.
    """
    # Environments are numbered: memo keys stay cheap to hash however
    # large the environment (a definition's solution can have thousands of sizes).
    numbers: dict[tuple, int] = {}
    envs: list[dict[str, Dim]] = []

    def key_of(e: dict[str, Dim]) -> int:
        k = tuple(sorted(e.items(), key=lambda kv: kv[0]))
        if k not in numbers:
            numbers[k] = len(envs)
            envs.append(e)
        return numbers[k]

    top = key_of(env)
    memo: dict[tuple[int, int], Box | Diagram] = {}
    tys: dict[int, dict[int, Ty]] = {}
    stack: list[tuple[Box | Diagram, int, bool]] = [(root, top, False)]
    while stack:
        node, k, ready = stack.pop()
        if (id(node), k) in memo:
            continue
        e = envs[k]
        # A part whose hint misses the sizes is kept.  The root's hint is
        # not computed when not known (that would walk the diagram just
        # made once more; rebuilding keeps every part that comes out the
        # same), nor are plain boxes' (done inline below); a nested body's
        # is, once: it is typically a checked definition's, met again and again.
        hint = node.__dict__.get("_hint")
        if hint is None and node is not root:
            hint = node.symbol_hint()
        if hint is not None and not meets(hint, e.keys()):
            memo[id(node), k] = node
            continue
        if not ready:
            stack.append((node, k, True))
            if isinstance(node, Diagram):
                # Plain boxes (most of them) are done here, not pushed.
                ty_memo = tys.setdefault(k, {})
                for l in node.layers:
                    b = l.box
                    if (id(b), k) in memo:
                        continue
                    if b.body is None and b.inst is None and not any(isinstance(v, Diagram) for _, v in b.args):
                        memo[id(b), k] = _subst_plain(b, e, ty_memo)
                    else:
                        stack.append((b, k, False))
            else:
                stack.extend((c, k, False) for c in node.children())
                if node.inst is not None:
                    generic, sizes = node.inst
                    inner = _inst_sizes(sizes, e)
                    if inner is not None:
                        stack.append((generic, key_of(inner), False))
            continue
        ty_memo = tys.setdefault(k, {})
        if isinstance(node, Diagram):
            memo[id(node), k] = _relayered(node, [memo[id(l.box), k] for l in node.layers], e, ty_memo)  # type: ignore[misc]
            continue
        box = node
        dom, cod = box.dom.subst(e, ty_memo), box.cod.subst(e, ty_memo)
        args = tuple((name, _subst_value(v, e, memo, k)) for name, v in box.args) if box.args else box.args
        inst = box.inst
        if inst is not None:
            generic, sizes = inst
            new_sizes = tuple((s, dims.subst(v, e)) for s, v in sizes)
            inner = _inst_sizes(sizes, e)
            # An instance whose sizes come back to the definition's own is
            # the definition itself: share its body.
            body: Diagram | None = generic if inner is None else memo[id(generic), key_of(inner)]  # type: ignore[assignment]
            inst = (generic, new_sizes)
        else:
            body = memo[id(box.body), k] if box.body is not None else None  # type: ignore[assignment]
        if dom is box.dom and cod is box.cod and body is box.body and args == box.args and inst is box.inst:
            memo[id(box), k] = box
        else:
            memo[id(box), k] = _rebuilt(box, dom=dom, cod=cod, args=args, body=body, inst=inst)
    return memo[id(root), top]


def _solve_flat(d: "Diagram", env: dict[str, Dim]) -> "Diagram | None":
    """:func:`_subst` for a diagram of plain boxes only (no bodies, no diagram arguments); ``None`` for any other.

    The diagram a definition's body elaborates to is usually flat like
    this, and one pass over its layers, without the general walk's memos,
    is most of the cost of finishing it.
    """
    layers = d.layers
    for l in layers:
        b = l.box
        if b.body is not None or b.inst is not None or (b.args and any(type(v) is Diagram for _, v in b.args)):
            return None
    ty_memo: dict[int, Ty] = {}
    box_memo: dict[int, Box] = {}  # a box in several layers (``copy_n``'s copy) stays one object, as in `_subst`
    boxes = []
    for l in layers:
        box = box_memo.get(id(l.box))
        if box is None:
            box = box_memo[id(l.box)] = _subst_plain(l.box, env, ty_memo)
        boxes.append(box)
    return _relayered(d, boxes, env, ty_memo)


def _relayered(d: "Diagram", boxes: list[Box], env: dict[str, Dim], ty_memo: dict[int, Ty]) -> "Diagram":
    """``d`` with its layers' boxes replaced by ``boxes`` (substituted already) and its wires by ``env``'s sizes.

    Parts that come out the same are kept, and ``d`` itself when nothing changed.
    """
    keys = env.keys()
    out: list[Layer] = []
    changed = False
    for l, box in zip(d.layers, boxes):
        left, right = l.left, l.right
        # Most whiskers mention no size being solved: test that inline.
        if left._len and meets(left.symbol_hint(), keys):
            left = left.subst(env, ty_memo)
        if right._len and meets(right.symbol_hint(), keys):
            right = right.subst(env, ty_memo)
        if box is l.box and left is l.left and right is l.right:
            out.append(l)
        else:
            out.append(Layer(left, box, right))
            changed = True
    dom, cod = d.dom.subst(env, ty_memo), d.cod.subst(env, ty_memo)
    return d if not changed and dom is d.dom and cod is d.cod else Diagram(dom, cod, tuple(out))


def _subst_plain(box: Box, env: dict[str, Dim], ty_memo: dict[int, Ty]) -> Box:
    """A box without a body or diagram arguments with sizes replaced (itself if none change).

    Called for most boxes of every definition checked: the common cases
    (types that mention none of the sizes, arguments that are plain
    values) are tested inline.
    """
    keys = env.keys()
    dom, cod, args = box.dom, box.cod, box.args
    if dom._len and meets(dom.symbol_hint(), keys):
        dom = dom.subst(env, ty_memo)
    if cod._len and meets(cod.symbol_hint(), keys):
        cod = cod.subst(env, ty_memo)
    if args and any(type(v) is dims.Poly or type(v) is tuple for _, v in args):
        args = tuple((name, _subst_value(v, env, {}, 0)) for name, v in args)
        if args == box.args:
            args = box.args
    if dom is box.dom and cod is box.cod and args is box.args:
        return box
    return _rebuilt(box, dom=dom, cod=cod, args=args)


def _inst_sizes(sizes: tuple[tuple[str, Dim], ...], env: dict[str, Dim]) -> dict[str, Dim] | None:
    """The sizes an occurrence's generic body takes under ``env``; ``None`` when they are its own."""
    out = {s: dims.subst(v, env) for s, v in sizes}
    return None if all(v == dims.sym(s) for s, v in out.items()) else out


T = TypeVar("T")


def fold_bodies(root: "Diagram", key: str, box_value: Callable[[Box, Callable[["Diagram"], T]], T],
                combine: Callable[[list[T]], T]) -> T:
    """A value of ``root`` computed bottom-up over nested bodies, without recursion.

    ``box_value(box, of)`` is the value of one box, where ``of(body)`` gives
    the (already computed) value of a nested body; ``combine`` turns a
    diagram's box values into its own.  Each diagram's value is cached on it
    under ``key``, so a body shared by many occurrences (every use of a
    definition) is computed once: the cost is the size of the IR, not of
    its expansion.
    """
    stack: list[tuple[Diagram, bool]] = [(root, False)]
    while stack:
        d, ready = stack.pop()
        if key in d.__dict__:
            continue
        bodies = [l.box.body for l in d.layers if l.box.body is not None]
        if not ready:
            stack.append((d, True))
            stack.extend((b, False) for b in bodies if key not in b.__dict__)
            continue
        value = combine([box_value(l.box, lambda b: b.__dict__[key]) for l in d.layers])
        object.__setattr__(d, key, value)
    return root.__dict__[key]


def _same(a: object, b: object) -> bool:
    """Structural equality of IR nodes and argument values, without recursion."""
    stack: list[tuple[object, object]] = [(a, b)]
    while stack:
        x, y = stack.pop()
        if x is y:
            continue
        if isinstance(x, Diagram) or isinstance(y, Diagram):
            if not (isinstance(x, Diagram) and isinstance(y, Diagram)):
                return False
            if len(x.layers) != len(y.layers) or x.dom != y.dom or x.cod != y.cod:
                return False
            stack.extend(zip(x.layers, y.layers))
        elif isinstance(x, Layer) or isinstance(y, Layer):
            if not (isinstance(x, Layer) and isinstance(y, Layer)) or x.left != y.left or x.right != y.right:
                return False
            stack.append((x.box, y.box))
        elif isinstance(x, Box) or isinstance(y, Box):
            if not (isinstance(x, Box) and isinstance(y, Box)):
                return False
            if (x.name, x.kind, x.shared, x.iso, len(x.args)) != (y.name, y.kind, y.shared, y.iso, len(y.args)):
                return False
            if x.dom != y.dom or x.cod != y.cod or (x.body is None) != (y.body is None):
                return False
            for (k1, v1), (k2, v2) in zip(x.args, y.args):
                if k1 != k2:
                    return False
                stack.append((v1, v2))
            if x.body is not None:
                stack.append((x.body, y.body))
        elif isinstance(x, tuple) and isinstance(y, tuple):
            if len(x) != len(y):
                return False
            stack.extend(zip(x, y))
        elif x != y:
            return False
    return True


def _subst_value(v: Value, env: dict[str, Dim], memo: dict[tuple[int, int], "Box | Diagram"], key: int) -> Value:
    if isinstance(v, dims.Poly):
        return dims.subst(v, env)
    if isinstance(v, tuple):
        return tuple(_subst_value(x, env, memo, key) for x in v)
    if isinstance(v, Diagram):
        return memo[id(v), key]
    return v


@dataclass(frozen=True, eq=False, init=False)
class Layer:
    """One box whiskered by the wires to its ``left`` and ``right``."""

    left: Ty
    box: Box
    right: Ty

    def __init__(self, left: Ty, box: Box, right: Ty) -> None:  # faster than the generated one (see Box)
        d = self.__dict__
        d["left"], d["box"], d["right"] = left, box, right

    def __eq__(self, other: object) -> bool:
        return _same(self, other) if isinstance(other, Layer) else NotImplemented

    def __hash__(self) -> int:
        return hash((self.left, self.box, self.right))

    @property
    def dom(self) -> Ty:
        return self.left @ self.box.dom @ self.right

    @property
    def cod(self) -> Ty:
        return self.left @ self.box.cod @ self.right


@dataclass(frozen=True, eq=False, init=False)
class Diagram:
    """A morphism ``dom -> cod`` built from layers, read top to bottom.

    Equality is structural (spans aside) and hashing is consistent with it;
    both walk the nesting with an explicit stack, so deeply nested
    definitions compare and hash without recursion.
    """

    dom: Ty
    cod: Ty
    layers: tuple[Layer, ...] = ()

    def __init__(self, dom: Ty, cod: Ty, layers: tuple[Layer, ...] = ()) -> None:  # faster than the generated one (see Box)
        d = self.__dict__
        d["dom"], d["cod"], d["layers"] = dom, cod, layers

    def __eq__(self, other: object) -> bool:
        return _same(self, other) if isinstance(other, Diagram) else NotImplemented

    def __hash__(self) -> int:
        h = self.__dict__.get("_hash")
        if h is None:
            h = hash((self.dom, self.cod, tuple(hash(l) for l in self.layers)))
            object.__setattr__(self, "_hash", h)
        return h

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
        if not left and not right:
            return self
        return Diagram(
            left @ self.dom @ right,
            left @ self.cod @ right,
            tuple(Layer(left @ l.left, l.box, l.right @ right) for l in self.layers),
        )

    def tensor(self, *others: "Diagram") -> "Diagram":
        """Parallel composition: each factor's layers run after the ones to its left.

        Linear in the number of factors: the wires beside each factor are
        views into the product's domain and codomain, not copies.
        """
        parts = [self, *others]
        if len(parts) == 1:
            return self
        dom = Ty.concat(p.dom for p in parts)
        cod = Ty.concat(p.cod for p in parts)
        layers: list[Layer] = []
        before, through = 0, 0  # codomain wires left of this part; domain wires up to its end
        for p in parts:
            through += len(p.dom)
            if p.layers:  # an identity part adds wires, not layers
                left = Ty._view(cod, 0, before) if before else I
                right = Ty._view(dom, through, dom._len) if through < dom._len else I
                if left._len or right._len:
                    cat = Ty._cat
                    layers.extend([Layer(cat(left, l.left), l.box, cat(l.right, right)) for l in p.layers])
                else:
                    layers.extend(p.layers)
            before += len(p.cod)
        return Diagram(dom, cod, tuple(layers))

    __matmul__ = tensor

    @property
    def boxes(self) -> tuple[Box, ...]:
        return tuple(l.box for l in self.layers)

    @property
    def is_iso(self) -> bool:
        return all(l.box.iso for l in self.layers)

    def subst(self, env: dict[str, Dim]) -> "Diagram":
        """The diagram with size symbols replaced by ``env``.

        Parts that do not mention a symbol of ``env`` are shared, not
        copied, and the walk uses an explicit stack: deep nesting is fine.
        """
        if not env or not meets(self.symbol_hint(), env.keys()):
            return self
        return _subst(self, env)  # type: ignore[return-value]

    def solved(self, env: dict[str, Dim]) -> "Diagram":
        """:meth:`subst` for a diagram just built, whose hints nothing has asked for yet.

        The checker applies a definition's solved sizes once, to a diagram
        it has just made: walking it to compute symbol hints first would
        walk it twice.  Parts whose hints are known are still skipped.
        """
        if not env:
            return self
        flat = _solve_flat(self, env)
        return flat if flat is not None else _subst(self, env)  # type: ignore[return-value]

    def expanded_size(self) -> int:
        """How many boxes the diagram has with every definition opened.

        Each occurrence of a definition counts its body again (that is what
        drawing and compiling walk); a ``repeat n`` body counts once, as it
        is compiled once.
        """
        known = self.__dict__.get("_expanded")
        if known is not None:
            return known
        for l in self.layers:
            if l.box.body is not None:
                return fold_bodies(self, "_expanded", lambda box, of: 1 + (of(box.body) if box.body is not None else 0), sum)
        object.__setattr__(self, "_expanded", len(self.layers))  # no nested bodies (a body just elaborated, often)
        return len(self.layers)

    def nesting_depth(self) -> int:
        """How many levels of nested bodies (definitions, ``repeat``, ...) the diagram has."""
        return fold_bodies(self, "_nesting", lambda box, of: 1 + of(box.body) if box.body is not None else 0,
                           lambda values: max(values, default=0))

    def symbol_hint(self) -> frozenset[str]:
        """A superset of the size symbols this diagram mentions, at any depth."""
        return _hint(self)

    def all_boxes(self) -> Iterator[Box]:
        """Every box at every depth, outer boxes first (an explicit stack, no recursion).

        Each occurrence of a definition yields its body's boxes again: the
        count is :meth:`expanded_size`.
        """
        stack: list[Iterator[Layer]] = [iter(self.layers)]
        while stack:
            layer = next(stack[-1], None)
            if layer is None:
                stack.pop()
                continue
            yield layer.box
            if layer.box.body is not None:
                stack.append(iter(layer.box.body.layers))

    def walk(self) -> Iterator[tuple[tuple[str, ...], Box]]:
        """Every box at every depth with its path of enclosing composite names.

        The paths cost memory in the nesting depth; :meth:`all_boxes` is the
        walk without them.
        """
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

    def __repr__(self) -> str:
        """A line, not the dataclass's dump of every layer: ``<Diagram Image ⊗ Image -> Score: 2 boxes>``.

        ``str`` gives the whole diagram in the language; a notebook shows the picture.
        """
        n = len(self.layers)
        text = f"<Diagram {self.dom} -> {self.cod}: {n} box{'' if n == 1 else 'es'}"
        if any(layer.box.body is not None for layer in self.layers):
            text += f", {self.expanded_size()} expanded"
        return text + ">"

    def __str__(self) -> str:
        show = DISPLAY.get("text")
        return show(self) if show is not None else f"<diagram {self.dom} -> {self.cod}, {len(self.layers)} layers>"

    def _repr_svg_(self) -> str | None:
        """The diagram drawn as a string diagram, for Jupyter (needs Graphviz's ``dot``)."""
        show = DISPLAY.get("svg")
        return show(self) if show is not None else None


#: How a diagram shows itself: ``"text"`` for ``str`` (the pretty-printer)
#: and ``"svg"`` for notebooks (the renderer).  ``catnet/__init__.py`` fills
#: this in, so that the IR imports neither stage: data flows one way.
DISPLAY: dict[str, Callable[[Diagram], str]] = {}


def first_not_iso(diagram: Diagram) -> Box | None:
    """The first box of ``diagram`` in reading order that is not invertible, innermost; ``None`` for an iso.

    A definition that is not an isomorphism is opened (iteratively: one
    chain of bodies, however deep) so the message names the generator that
    breaks invertibility, e.g. the `dense` inside it.
    """
    found: Box | None = None
    while True:
        box = next((layer.box for layer in diagram.layers if not layer.box.iso), None)
        if box is None:
            return found
        found = box
        if box.body is None:
            return box
        diagram = box.body
