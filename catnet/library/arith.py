"""Elementwise arithmetic on wires: the ``arith`` family of generators.

Binary: ``add``, ``sub``, ``mul``, ``div`` (``A ⊗ B -> C``) with typed
broadcasting, NumPy's rule on the per-example shapes: the shapes are
aligned on the right; on each aligned axis the two sizes are unified (so
symbolic sizes work) unless one of them is the literal ``1``, which
stretches to the other; a missing leading axis broadcasts.  The batch axis
is never part of this: the lowering aligns the per-example axes after it.

Unary, real to real of the same shape: ``neg``, ``exp``, ``log``, ``sqrt``,
``square``, ``reciprocal``, ``softplus``, ``silu`` (also spelled ``swish``),
and the constant maps ``scale(by=c)`` (``x * c``) and ``shift(by=c)``
(``x + c``), which the wiring form's ``c * a``, ``a / c``, ``a + c`` and
``c - a`` elaborate to.  ``neg``, ``scale`` and ``shift`` are bijections of
the reals and are isomorphisms (``inv(scale(by=2))`` is ``scale(by=0.5)``).

``add`` is structural (drawn as a ``+`` node) and keeps its meaning on wires of
one type, bundles and integer ids included; it broadcasts like the others.
"""

from __future__ import annotations

from .. import dims
from ..dims import Dim
from ..ir import Ob, Ty, Value
from . import Arg, Generator, Rule, RuleContext, _tensor, _unify_obs, register

#: The largest magnitude a constant may have: beyond it float32 arithmetic
#: overflows to infinity on ordinary activations.
FINITE = 1e30

_BROADCAST_HELP = "on each axis, aligned from the right as in NumPy, the sizes must be equal or one of them 1"


def _is_one(ctx: RuleContext, d: Dim) -> bool:
    return ctx.resolve(d) == 1


def _show(ctx: RuleContext, d: Dim) -> str:
    return dims.show(ctx.resolve(d)).replace("?", "_")  # unsolved sizes print as `_`


def broadcast(ctx: RuleContext, name: str, a: Ob, b: Ob) -> Ob:
    """The wire ``name`` gives on ``a ⊗ b``: the broadcast of their shapes.

    Sizes are unified axis by axis (from the right) unless one side is the
    literal 1; a disagreement is E0306 naming the two axes.  Where the
    result has the shape of an input, it is that input (keeping its name).
    """
    sa, sb = a.shape, b.shape
    rank = max(len(sa), len(sb))
    out: list[Dim] = []
    for k in range(1, rank + 1):
        if k > len(sa):
            out.append(sb[-k])
            continue
        if k > len(sb):
            out.append(sa[-k])
            continue
        x, y = sa[-k], sb[-k]
        if _is_one(ctx, y):
            out.append(x)
        elif _is_one(ctx, x):
            out.append(y)
        else:
            what = (
                f"`{name}` cannot broadcast {a.structure()} with {b.structure()}: axis {len(sa) - k} of the first wire "
                f"has size {_show(ctx, x)}, axis {len(sb) - k} of the second has size {_show(ctx, y)}"
            )
            rx, ry = ctx.resolve(x), ctx.resolve(y)
            if isinstance(rx, int) and isinstance(ry, int) and rx != ry:
                ctx.fail(what, _BROADCAST_HELP)
            ctx.equal(x, y, what)
            out.append(x)
    shape = tuple(reversed(out))
    for ob in (a, b):
        if len(ob.shape) == rank and all(ctx.resolve(p) == ctx.resolve(q) for p, q in zip(ob.shape, shape)):
            return ob
    return Ob(a.base, shape)


def _binary(name: str, verb: str) -> Generator:
    def rule(ctx: RuleContext, dom: Ty, args: dict[str, Value]) -> Ty:
        a, b = dom.obs
        for ob in (a, b):
            _tensor(ctx, ob, f"`{name}`")
            if ob.base != "R":
                ctx.fail(f"`{name}` acts on real wires, but got {a.structure()} and {b.structure()}",
                         "use `embed` to turn ids into vectors")
        if a.group is not None or b.group is not None:
            # A group acts on the whole wire: no stretching of G-spaces.
            _unify_obs(ctx, a, b, f"`{name}` {verb} two wires of one G-space")
            return Ty((a,))
        return Ty((broadcast(ctx, name, a, b),))

    return Generator(name, rule, arity=2, doc=f"R[s…] ⊗ R[t…] -> R[broadcast(s, t)]: {verb} elementwise", family="arith",
                     acts="structural" if name == "sub" else "pointwise")


def _add(ctx: RuleContext, dom: Ty, args: dict[str, Value]) -> Ty:
    a, b = dom.obs
    # Bundles, G-spaces, mixed bases and equal-rank wires that need no
    # stretching keep `add`'s own rule and message: one type on both sides.
    stretches = len(a.shape) != len(b.shape) or any(
        _is_one(ctx, x) != _is_one(ctx, y) for x, y in zip(a.shape, b.shape)
    )
    plain = a.base == b.base and a.base in ("R", "Z") and a.group is None and b.group is None
    if not (plain and stretches):
        _unify_obs(ctx, a, b, "`add` adds two wires of one type")
        return Ty((a,))
    return Ty((broadcast(ctx, "add", a, b),))


def _unary_rule(name: str) -> Rule:
    def rule(ctx: RuleContext, dom: Ty, args: dict[str, Value]) -> Ty:
        (ob,) = dom.obs
        _tensor(ctx, ob, f"`{name}`")
        if ob.base != "R":
            ctx.fail(f"`{name}` acts on real wires, but its input is {ob}", "use `embed` to turn ids into vectors")
        return dom

    return rule


_real_scale = _unary_rule("scale")


def _scale(ctx: RuleContext, dom: Ty, args: dict[str, Value]) -> Ty:
    if args["by"] == 0:
        ctx.fail("`scale(by=0)` maps every input to zero and cannot be inverted", "to drop the wire, use `discard`")
    return _real_scale(ctx, dom, args)


def _unary(name: str, doc: str, iso: bool = False, args: tuple[Arg, ...] = (), rule: Rule | None = None,
           acts: str = "pointwise") -> Generator:
    return Generator(name, rule or _unary_rule(name), args, iso=iso, doc=doc, family="arith", acts=acts)


_BY = Arg("by", "float", None, required=True, low=-FINITE, high=FINITE)

register(Generator("add", _add, arity=2, structural=True, doc="A ⊗ A -> A", family="arith", acts="structural"))
register(_binary("sub", "subtracts"))
register(_binary("mul", "multiplies"))
register(_binary("div", "divides"))
register(_unary("neg", "-x", iso=True, acts="linear"))
register(_unary("exp", "e^x"))
register(_unary("log", "natural logarithm"))
register(_unary("sqrt", "square root"))
register(_unary("square", "x * x"))
register(_unary("reciprocal", "1 / x"))
register(_unary("softplus", "log(1 + e^x)"))
register(_unary("silu", "x * sigmoid(x) (also `swish`)"))
register(_unary("swish", "x * sigmoid(x) (also `silu`)"))
register(_unary("scale", "x * by", iso=True, args=(_BY,), rule=_scale, acts="linear"))
register(_unary("shift", "x + by", iso=True, args=(_BY,)))
