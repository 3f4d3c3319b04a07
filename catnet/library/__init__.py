"""The generator library's signatures: names, arguments and shape rules.

This is the checker's half of the library, written as data: for each
generator, its arguments with types and defaults, how many wires it takes,
whether it is an isomorphism, whether it has parameters, and a shape rule
that computes its output wires from its input wires.  The lowering keeps the
other half (``catnet.lower``), a table from the same names to Flax modules.

Shape rules see the input wires and the complete keyword arguments and
return the output wires.  They may create unification variables for sizes
the types decide (``dense`` in ``Image -> Hidden`` gets its width from
``Hidden``), and report shapes they cannot take with ``ctx.fail``.  Rules
never look at JAX.  A generator with parameters also has a ``count``
rule: the number of trainable parameters of one occurrence, from the
checked box (``catnet summary``, the memory estimate and the lowering's
checks share it; a test keeps it equal to the lowered model's
``nnx.Param`` count).

The table is :data:`GENERATORS`.  The core generators are written below;
families of further generators live in the modules of this package (one
per family: ``arith``, ``axes``, ``learned``, ``losses``, ``tied``) and
enter the table with :func:`register`, the same function that plugins
call (``catnet.extend``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol

from .. import dims
from ..ast import KEYWORDS
from ..dims import Dim
from ..ir import Box, Ob, Ty, Value


class RuleContext(Protocol):
    """What a shape rule may ask of the checker."""

    def fresh(self) -> Dim: ...

    def fresh_rep(self) -> str: ...

    def resolve(self, d: Dim) -> Dim: ...

    def resolve_rep(self, rep: str | None) -> str | None: ...

    def equal_rep(self, a: str | None, b: str | None, what: "str | Callable[[], str]") -> None: ...

    def need_int(self, d: Dim, what: str) -> int: ...

    def equal(self, a: Dim, b: Dim, what: "str | Callable[[], str]") -> None:
        """Unify two sizes; ``what`` (or what it returns, asked only then) is the message if they differ."""

    def fail(self, message: str, help: str | None = None, code: str = "E0306") -> Any: ...


@dataclass(frozen=True)
class Arg:
    """One keyword argument: ``kind`` is one of :data:`ARG_KINDS`.

    ``dims`` and ``ints`` (sizes, whole numbers) collect every positional
    argument when they come first (``reshape(8, 8, 1)``, ``transpose(1,
    0)``); a ``dim`` with ``low=0`` may be zero (``slice(start=0)``).
    ``padding`` takes a whole number ``>= 0`` (the same on both sides of
    every spatial axis) or one of ``choices`` (``"same"``, ``"valid"``);
    ``morphism`` names a morphism (``transposed(wte)``); ``network`` names a
    morphism definition (a fresh instance, its parameters the box's own) or
    a shared instance, whose use the box keeps (``coupling(conditioner=net)``).
    """

    name: str
    kind: str
    default: Value | None = None
    required: bool = False
    choices: tuple[str, ...] = ()
    low: float | None = None
    high: float | None = None
    high_open: bool = False


Rule = Callable[[RuleContext, Ty, dict[str, Value]], Ty]

#: ``count(box, size)``: parameters of one occurrence of a checked box;
#: ``size`` turns a dimension into a number (symbolic sizes are refused there
#: with E0304, so a count rule never sees a symbol as a number).
Count = Callable[["Box", Callable[[Dim], int]], int]


@dataclass(frozen=True)
class Generator:
    name: str
    rule: Rule
    args: tuple[Arg, ...] = ()
    arity: int | None = 1  # wires taken; None = as many as the context gives
    iso: bool = False
    params: bool = False
    structural: bool = False
    doc: str = ""
    count: Count | None = None
    #: how many wires it returns where that does not depend on types (for
    #: diagnostics before a shape rule runs); ``None``: it depends
    coarity: int | None = None
    #: the family (module) that registered it: "core", "arith", … or a plugin's module
    family: str = "core"
    #: where the parameters of all its boxes of one kind are one instance per model: the
    #: instance's name for a checked box (a bundle's name for ``triv``/``proj``), else ``None``
    instance: "Callable[[Box], str | None] | None" = None
    #: how it acts on G-spaces, for equivariance claims (``check.claims``, docs/symmetry.md):
    #: ``None`` — equivariant only where every wire it touches is acted on trivially;
    #: ``"pointwise"`` — elementwise: commutes with every permutation representation, keeps the action;
    #: ``"linear"`` — a multiple of the identity (``neg``, ``scale``): commutes with every representation;
    #: ``"per_position"`` — the same map at every grid cell / set element: keeps the spatial
    #: action, needs trivial channels (``dense``); ``"axis"`` — along its ``axis``: the channel axis
    #: of a permutation representation or a set's axis; ``"pool"`` — over the grid or set:
    #: invariant (``max`` needs a permutation representation); ``"window"`` — pooling windows
    #: that tile the grid; ``"structural"`` — moves wires (copy, swap, add, concat);
    #: ``"equivariant"`` — equivariant by construction between its typed input and output actions
    acts: str | None = None

    def arg(self, name: str) -> Arg | None:
        for a in self.args:
            if a.name == name:
                return a
        return None


def _tensor(ctx: RuleContext, ob: Ob, what: str) -> tuple[Dim, ...]:
    if ob.base == "bundle":
        ctx.fail(f"{what} takes a tensor wire, not the bundle {ob}", "project or trivialize the bundle first")
    return ob.shape


def _one(dom: Ty) -> Ob:
    assert len(dom) == 1
    return dom.obs[0]


def _like(ob: Ob, shape: tuple[Dim, ...], base: str | None = None) -> Ty:
    return Ty((Ob(base or ob.base, tuple(shape), group=None),))


def _keep_action(ob: Ob, shape: tuple[Dim, ...]) -> Ty:
    """A wire of a new shape that keeps ``ob``'s group and channel representation (pools)."""
    return Ty((Ob(ob.base, tuple(shape), group=ob.group, rep=ob.rep if ob.group else None),))


def _features(ctx: RuleContext, args: dict[str, Value]) -> Dim:
    f = args.get("features")
    if f is None:
        f = ctx.fresh()
        args["features"] = f
    return f  # type: ignore[return-value]


def _last_axis(ctx: RuleContext, ob: Ob, name: str) -> tuple[Dim, ...]:
    shape = _tensor(ctx, ob, name)
    if not shape:
        ctx.fail(f"`{name}` needs at least one axis, but its input {ob} is a scalar")
    return shape


# -- shape rules ------------------------------------------------------------


def _same(ctx: RuleContext, dom: Ty, args: dict[str, Value]) -> Ty:
    return dom


def _real_same(name: str) -> Rule:
    def rule(ctx: RuleContext, dom: Ty, args: dict[str, Value]) -> Ty:
        ob = _one(dom)
        _tensor(ctx, ob, name)
        _require_real(ctx, ob, name)
        return dom

    return rule


def _require_real(ctx: RuleContext, ob: Ob, name: str) -> None:
    if ob.base != "R":
        ctx.fail(f"`{name}` acts on real wires, but its input is {ob}", "use `embed` to turn ids into vectors")


def _axis_rule(name: str) -> Rule:
    def rule(ctx: RuleContext, dom: Ty, args: dict[str, Value]) -> Ty:
        ob = _one(dom)
        shape = _last_axis(ctx, ob, name)
        _require_real(ctx, ob, name)
        axis = int(args["axis"])  # type: ignore[arg-type]
        if not -len(shape) <= axis < len(shape):
            ctx.fail(f"`{name}(axis={axis})` is out of range for {ob}, which has {len(shape)} axes")
        return dom

    return rule


def _dense(ctx: RuleContext, dom: Ty, args: dict[str, Value]) -> Ty:
    ob = _one(dom)
    shape = _last_axis(ctx, ob, "dense")
    _require_real(ctx, ob, "dense")
    out = list(shape)
    axis = _axis_index(ctx, "dense", int(args["axis"]), len(shape))  # type: ignore[arg-type]
    out[axis] = _features(ctx, args)
    if ob.group and len(shape) > 1 and axis == len(shape) - 1 and ctx.resolve_rep(ob.rep) is None:
        # The same map at every cell of a grid or element of a set, on channels the group leaves alone.
        return Ty((Ob("R", tuple(out), group=ob.group),))
    return _like(ob, tuple(out))


def _spatial(ctx: RuleContext, ob: Ob, name: str) -> tuple[Dim, ...]:
    shape = _tensor(ctx, ob, name)
    _require_real(ctx, ob, name)
    if len(shape) not in (2, 3):
        ctx.fail(
            f"`{name}` takes a 1-D input R[L, C] or a 2-D input R[H, W, C], but its input is {ob}",
            "reshape the input to put channels last, e.g. `reshape(8, 8, 1)`",
        )
    return shape


def _window_out(ctx: RuleContext, size: Dim, window: int, stride: int, padding: str | int, name: str) -> Dim:
    """The size of one spatial axis after a window ``window`` moved by ``stride``.

    ``"same"`` gives ``ceil(n / s)``, ``"valid"`` ``(n - k) // s + 1`` and a
    whole number ``p`` of cells on both sides ``(n + 2p - k) // s + 1``
    (PyTorch's formula).  A symbolic size is fine where the division is
    exact for every value of its symbols (``h * 2`` with stride 2, see
    :func:`dims.div_floor`) and the window provably fits; otherwise the
    size must be a number.
    """
    n = ctx.resolve(size)
    if padding == "same":
        if stride == 1:
            return size
        out = dims.div_floor(dims.add(n, stride - 1), stride)
        if out is None:
            ctx.need_int(n, f"the spatial size seen by `{name}`")
        return out  # type: ignore[return-value]
    pad = 0 if padding == "valid" else int(padding)
    room = dims.add(n, 2 * pad - window)  # the window's start positions, less one
    out = dims.div_floor(room, stride)
    if out is None:
        ctx.need_int(n, f"the spatial size seen by `{name}`")
    least = dims.least(room)
    if least is None or least < 0:
        padded = f" padded to {dims.show(dims.add(n, 2 * pad))}" if pad else ""
        if isinstance(n, int):
            ctx.fail(f"`{name}` window {window} is larger than the input size {n}{padded}",
                     "use padding=\"same\", more padding or a smaller window")
        ctx.fail(f"`{name}` window {window} does not fit the input size {dims.show(n)}{padded} for every value of its sizes",
                 "use padding=\"same\", or write the input size so that it is at least the window")
    return dims.add(out, 1)  # type: ignore[arg-type]


def _conv(ctx: RuleContext, dom: Ty, args: dict[str, Value]) -> Ty:
    ob = _one(dom)
    shape = _spatial(ctx, ob, "conv")
    k, s, pad = int(args["kernel"]), int(args["stride"]), args["padding"]  # type: ignore[arg-type]
    out = tuple(_window_out(ctx, d, k, s, pad, "conv") for d in shape[:-1])  # type: ignore[arg-type]
    return _like(ob, out + (_features(ctx, args),))


def _pool(name: str) -> Rule:
    def rule(ctx: RuleContext, dom: Ty, args: dict[str, Value]) -> Ty:
        ob = _one(dom)
        shape = _spatial(ctx, ob, name)
        w = int(args["window"])  # type: ignore[arg-type]
        s = int(args["stride"]) if args.get("stride") is not None else w  # type: ignore[arg-type]
        args["stride"] = s
        pad = args["padding"]
        if isinstance(pad, int) and 2 * pad > w:
            # As in PyTorch: every window must keep at least one real cell.
            ctx.fail(f"`{name}(padding={pad})` pads more than half its window {w}",
                     f"use at most padding={w // 2}, or a larger window")
        out = tuple(_window_out(ctx, d, w, s, pad, name) for d in shape[:-1])  # type: ignore[arg-type]
        return _keep_action(ob, out + (shape[-1],))

    return rule


def _global_pool(name: str) -> Rule:
    def rule(ctx: RuleContext, dom: Ty, args: dict[str, Value]) -> Ty:
        ob = _one(dom)
        shape = _spatial(ctx, ob, name)
        return _keep_action(ob, (shape[-1],))

    return rule


def _flatten(ctx: RuleContext, dom: Ty, args: dict[str, Value]) -> Ty:
    ob = _one(dom)
    shape = _tensor(ctx, ob, "flatten")
    size: Dim = 1
    for d in shape:
        size = dims.mul(size, d)
    return _like(ob, (size,))


def _reshape(ctx: RuleContext, dom: Ty, args: dict[str, Value]) -> Ty:
    ob = _one(dom)
    shape = _tensor(ctx, ob, "reshape")
    target = args["shape"]
    assert isinstance(target, tuple)
    if not target:
        ctx.fail("`reshape` needs the target shape, e.g. `reshape(8, 8, 1)`")
    a: Dim = 1
    for d in shape:
        a = dims.mul(a, d)
    b: Dim = 1
    for d in target:
        b = dims.mul(b, d)
    ctx.equal(a, b, f"`reshape` keeps the number of elements: {ob} has {dims.show(a)}, the target {dims.show(b)}")
    return _like(ob, tuple(target))


def _embed(ctx: RuleContext, dom: Ty, args: dict[str, Value]) -> Ty:
    ob = _one(dom)
    shape = _tensor(ctx, ob, "embed")
    if ob.base != "Z":
        ctx.fail(f"`embed` takes integer ids Z[...], but its input is {ob}", "use `dense` for real inputs")
    return _like(ob, shape + (_features(ctx, args),), base="R")


def _groupnorm(ctx: RuleContext, dom: Ty, args: dict[str, Value]) -> Ty:
    ob = _one(dom)
    shape = _last_axis(ctx, ob, "groupnorm")
    _require_real(ctx, ob, "groupnorm")
    groups = int(args["groups"])  # type: ignore[arg-type]
    channels = ctx.resolve(shape[-1])
    what = (f"`groupnorm(groups={groups})` splits the channels into {groups} equal groups, "
            f"but there are {dims.show(channels).replace('?', '_')} channels")
    if not any(dims.is_var(v) for v in dims.symbols(channels)):
        # A number, or a size in the signature's symbols: a multiple of
        # `groups` for every value of them (`c * 32`).
        if dims.floordiv(channels, groups) is None:
            ctx.fail(what, f"use a number of groups that divides {channels}" if isinstance(channels, int) else
                     f"write the channels as a multiple of {groups}, e.g. R[…, {dims.show(dims.mul(channels, groups))}]")
    else:
        # A size still to be inferred becomes `groups * k`, checked when it is known.
        ctx.equal(channels, dims.mul(groups, ctx.fresh()), what)
    return dom


def _attention(ctx: RuleContext, dom: Ty, args: dict[str, Value]) -> Ty:
    ob = _one(dom)
    shape = _tensor(ctx, ob, "attention")
    if ob.base != "R" or len(shape) != 2:
        ctx.fail(f"`attention` takes a sequence R[T, d], but its input is {ob}")
    _check_heads(ctx, shape[1], args)
    return dom


def _check_heads(ctx: RuleContext, width: Dim, args: dict[str, Value]) -> None:
    heads = int(args["heads"])  # type: ignore[arg-type]
    w = ctx.resolve(width)
    if isinstance(w, int) and w % heads:
        ctx.fail(f"{heads} heads do not divide the width {w}", f"use a number of heads that divides {w}")


def _cross_attention(ctx: RuleContext, dom: Ty, args: dict[str, Value]) -> Ty:
    q, kv = dom.obs
    for ob in (q, kv):
        shape = _tensor(ctx, ob, "cross_attention")
        if ob.base != "R" or len(shape) != 2:
            ctx.fail(f"`cross_attention` takes sequences R[T, d] ⊗ R[S, e], but got {dom}")
    _check_heads(ctx, q.shape[1], args)
    return Ty((q,))


def _coupling(ctx: RuleContext, dom: Ty, args: dict[str, Value]) -> Ty:
    ob = _one(dom)
    shape = _last_axis(ctx, ob, "coupling")
    if ob.base != "R":
        ctx.fail(f"`coupling` acts on real wires, but its input is {ob}")
    n = ctx.resolve(shape[-1])
    if isinstance(n, int) and n < 2:
        ctx.fail(f"`coupling` splits the last axis in two halves, but it has size {n}")
    cond = args.get("conditioner")
    if cond is not None:
        from .flows import fit_conditioner

        fit_conditioner(ctx, ob, cond.layers[0].box)  # type: ignore[union-attr]  # a network argument: a one-box use
    return dom


# -- parameter counts ---------------------------------------------------------


def last_axis(box: Box, size: Callable[[Dim], int], wire: int = 0) -> int:
    """The size of the last axis of input wire ``wire``, as a number."""
    return size(box.dom.obs[wire].shape[-1])


def axis_size(box: Box, size: Callable[[Dim], int]) -> int:
    """The size of the axis ``box.kwargs["axis"]`` (the last one by default) of its input, as a number."""
    shape = box.dom.obs[0].shape
    return size(shape[int(box.kwargs.get("axis", -1)) % len(shape)])  # type: ignore[arg-type]


def _bias(box: Box, f: int) -> int:
    return f if box.kwargs.get("bias", True) else 0


def _count_dense(box: Box, size: Callable[[Dim], int]) -> int:
    f = size(box.kwargs["features"])  # type: ignore[arg-type]
    return axis_size(box, size) * f + _bias(box, f)


def _count_conv(box: Box, size: Callable[[Dim], int]) -> int:
    """``conv`` and ``conv_transpose``: a kernel per window cell, channel in and out, and a bias."""
    f = size(box.kwargs["features"])  # type: ignore[arg-type]
    spatial = len(box.dom.obs[0].shape) - 1
    return int(box.kwargs["kernel"]) ** spatial * last_axis(box, size) * f + _bias(box, f)  # type: ignore[arg-type]


def _count_norm(box: Box, size: Callable[[Dim], int]) -> int:
    return 2 * axis_size(box, size)  # scale and bias; batch statistics are not parameters


def _count_rmsnorm(box: Box, size: Callable[[Dim], int]) -> int:
    return axis_size(box, size)  # a scale, no bias


def _count_embed(box: Box, size: Callable[[Dim], int]) -> int:
    return size(box.kwargs["vocab"]) * size(box.kwargs["features"])  # type: ignore[arg-type]


def _count_attention(box: Box, size: Callable[[Dim], int]) -> int:
    d = last_axis(box, size)
    e = last_axis(box, size, 1) if len(box.dom) == 2 else d
    return (d * d + d) + 2 * (e * d + d) + (d * d + d)  # query, key, value, out


def _count_coupling(box: Box, size: Callable[[Dim], int]) -> int:
    """The default MLP's weights, or those of a fresh conditioner (a shared one counts once, elsewhere)."""
    from .flows import conditioner

    cond = conditioner(box)
    if cond is not None:
        from ..summary import box_params  # JAX-free; imported here, it imports this module

        return box_params(cond)
    n, h = last_axis(box, size), int(box.kwargs.get("hidden", 64))  # type: ignore[arg-type]
    half, rest = n // 2, n - n // 2
    return (half * h + h) + (h * 2 * rest + 2 * rest)


# -- structural rules -------------------------------------------------------


def _swap(ctx: RuleContext, dom: Ty, args: dict[str, Value]) -> Ty:
    a, b = dom.obs
    return Ty((b, a))


def _copy(ctx: RuleContext, dom: Ty, args: dict[str, Value]) -> Ty:
    return dom @ dom


def _discard(ctx: RuleContext, dom: Ty, args: dict[str, Value]) -> Ty:
    return Ty()


def _unify_obs(ctx: RuleContext, a: Ob, b: Ob, what: str) -> None:
    def message() -> str:  # spelled out only for an error
        return f"{what}, but got {a.structure()} and {b.structure()}"

    if a.base != b.base or len(a.shape) != len(b.shape) or a.group != b.group:
        ctx.fail(message())
    if a.group:
        ctx.equal_rep(a.rep, b.rep, message)
    if a.base == "bundle":
        if a.fiber != b.fiber or a.over != b.over:
            ctx.fail(message())
        return
    for x, y in zip(a.shape, b.shape):
        ctx.equal(x, y, message)


def _axis_index(ctx: RuleContext, name: str, axis: int, rank: int) -> int:
    if not -rank <= axis < rank:
        ctx.fail(f"`{name}(axis={axis})` is out of range for a wire with {rank} axes")
    return axis % rank


def _concat(ctx: RuleContext, dom: Ty, args: dict[str, Value]) -> Ty:
    a, b = dom.obs
    sa, sb = _tensor(ctx, a, "concat"), _tensor(ctx, b, "concat")
    if a.base != b.base or len(sa) != len(sb) or not sa:
        ctx.fail(f"`concat` joins two wires of the same rank, but got {a.structure()} and {b.structure()}")
    ax = _axis_index(ctx, "concat", int(args["axis"]), len(sa))  # type: ignore[arg-type]
    for i, (x, y) in enumerate(zip(sa, sb)):
        if i != ax:
            ctx.equal(x, y, f"`concat` along axis {ax} needs equal sizes elsewhere, but got {a.structure()} and {b.structure()}")
    out = list(sa)
    out[ax] = dims.add(sa[ax], sb[ax])
    return Ty((Ob(a.base, tuple(out)),))


def _split(ctx: RuleContext, dom: Ty, args: dict[str, Value]) -> Ty:
    ob = _one(dom)
    shape = _last_axis(ctx, ob, "split")
    ax = _axis_index(ctx, "split", int(args["axis"]), len(shape))  # type: ignore[arg-type]
    total = shape[ax]
    first = args.get("size")
    if first is None:
        first = ctx.fresh()
        args["size"] = first
    rest = dims.sub(total, first)  # type: ignore[arg-type]
    r = ctx.resolve(rest)
    if isinstance(r, int) and r <= 0:
        ctx.fail(f"`split(size={dims.show(ctx.resolve(first))})` leaves nothing of axis size {dims.show(ctx.resolve(total))}")
    left, right = list(shape), list(shape)
    left[ax], right[ax] = first, rest
    return Ty((Ob(ob.base, tuple(left)), Ob(ob.base, tuple(right))))


def _fst(ctx: RuleContext, dom: Ty, args: dict[str, Value]) -> Ty:
    return Ty((dom.obs[0],))


def _snd(ctx: RuleContext, dom: Ty, args: dict[str, Value]) -> Ty:
    return Ty((dom.obs[1],))


def _proj(ctx: RuleContext, dom: Ty, args: dict[str, Value]) -> Ty:
    ob = _one(dom)
    if ob.base != "bundle":
        ctx.fail(f"`proj` projects a bundle to its base, but its input is {ob}")
    assert ob.over is not None
    return ob.over


def _triv(ctx: RuleContext, dom: Ty, args: dict[str, Value]) -> Ty:
    ob = _one(dom)
    if ob.base != "bundle":
        ctx.fail(f"`triv` trivializes a bundle E ≅ B ⊗ F, but its input is {ob}")
    assert ob.over is not None and ob.fiber is not None
    prior = str(args.get("prior", "normal"))
    if ob.shape and prior != "normal":
        from ..flows.priors import fiber_dim_ok  # JAX-free

        problem = fiber_dim_ok(prior, _vector_size(ob.fiber))
        if problem is not None:
            ctx.fail(f"`triv(prior=\"{prior}\")` does not fit the fiber {ob.fiber} of `{ob.name}`: {problem}",
                     "`normal` fits any fiber; `circle` needs R[2], `circle_interval` R[3]", code="E0318")
    return ob.over @ ob.fiber


def _vector_size(ty: Ty) -> int:
    """The size of a bundle's base or fiber, one vector ``R[k]`` of a known size (the checker made sure)."""
    (ob,) = ty.obs
    (k,) = ob.shape
    assert isinstance(k, int)
    return k


def _bundle_of(box: Box) -> str | None:
    """The bundle whose trivialization a ``triv``/``proj`` box uses: one instance per bundle."""
    ob = box.dom.obs[0] if box.dom.obs else None
    return ob.name if ob is not None and ob.base == "bundle" else None


def _count_triv(box: Box, size: Callable[[Dim], int]) -> int:
    """The parameters of a bundle's trivialization (a chart-conditioned coupling flow)."""
    ob = box.dom.obs[0]
    if not ob.shape:
        return 0  # a bundle without a total space is never lowered
    from ..bundles.charts import count_triv  # JAX-free

    base = _vector_size(ob.over)  # type: ignore[arg-type]
    fiber = _vector_size(ob.fiber)  # type: ignore[arg-type]
    kw = {a.name: box.kwargs.get(a.name, a.default) for a in _TRIV_ARGS}
    return count_triv(int(kw["charts"]), int(kw["depth"]), int(kw["hidden"]), base + fiber, base)  # type: ignore[arg-type]


#: The arguments of a bundle's trivialization (on `triv`; `proj` uses the bundle's).
_TRIV_ARGS = (
    Arg("charts", "int", 8, low=1, high=4096),
    Arg("depth", "int", 6, low=1, high=256),
    Arg("hidden", "int", 64, low=1, high=1 << 16),
    Arg("prior", "str", "normal", choices=("normal", "circle", "circle_interval")),
)


_RATE = Arg("rate", "float", 0.5, low=0.0, high=1.0, high_open=True)
_FEATURES = Arg("features", "dim", None)
_AXIS = Arg("axis", "int", -1)
_PADDING = Arg("padding", "padding", "valid", choices=("valid", "same"))
_BIAS = Arg("bias", "bool", True)
_EPS = Arg("eps", "float", 1e-6, low=0.0, high=1.0)
_DROPOUT = Arg("dropout", "float", 0.0, low=0.0, high=1.0, high_open=True)


def _activation(name: str, doc: str) -> Generator:
    return Generator(name, _real_same(name), doc=doc, acts="pointwise")


GENERATORS: dict[str, Generator] = {
    g.name: g
    for g in [
        Generator("dense", _dense, (_FEATURES, _BIAS, _AXIS), params=True, count=_count_dense, acts="per_position", doc="affine map on one axis (the last by default)"),
        Generator(
            "conv",
            _conv,
            (_FEATURES, Arg("kernel", "int", 3, low=1, high=64), Arg("stride", "int", 1, low=1, high=64),
             Arg("padding", "padding", "same", choices=("same", "valid")), _BIAS),
            params=True,
            count=_count_conv,
            doc="1-D (R[L, C]) or 2-D (R[H, W, C]) convolution, channels last",
        ),
        Generator("maxpool", _pool("maxpool"), (Arg("window", "int", 2, low=1, high=64), Arg("stride", "int", None, low=1, high=64), _PADDING), acts="window", doc="max pooling"),
        Generator("avgpool", _pool("avgpool"), (Arg("window", "int", 2, low=1, high=64), Arg("stride", "int", None, low=1, high=64), _PADDING), acts="window", doc="average pooling"),
        Generator("global_avgpool", _global_pool("global_avgpool"), acts="pool", doc="mean over all spatial axes"),
        Generator("global_maxpool", _global_pool("global_maxpool"), acts="pool", doc="max over all spatial axes"),
        Generator("flatten", _flatten, doc="all axes into one"),
        Generator("reshape", _reshape, (Arg("shape", "dims", ()),), doc="same elements, new shape"),
        _activation("relu", "max(x, 0)"),
        Generator("gelu", _real_same("gelu"), (Arg("approximate", "bool", True),), acts="pointwise", doc="Gaussian error linear unit (tanh form unless approximate=false)"),
        _activation("tanh", "hyperbolic tangent"),
        _activation("sigmoid", "logistic function"),
        Generator("softmax", _axis_rule("softmax"), (_AXIS,), acts="axis", doc="softmax along an axis"),
        Generator("layernorm", _axis_rule("layernorm"), (_EPS, _AXIS), params=True, count=_count_norm, doc="layer normalization over one axis (the last by default)"),
        Generator("rmsnorm", _axis_rule("rmsnorm"), (_EPS, _AXIS), params=True, count=_count_rmsnorm, doc="root-mean-square normalization over one axis, with a scale"),
        Generator("groupnorm", _groupnorm, (Arg("groups", "int", 32, low=1, high=1 << 20), _EPS), params=True, count=_count_norm,
                  doc="group normalization: channels (the last axis) in groups, statistics over the groups and all other axes"),
        Generator("batchnorm", _real_same("batchnorm"), (Arg("momentum", "float", 0.9, low=0.0, high=1.0), Arg("eps", "float", 1e-5, low=0.0, high=1.0)),
                  params=True, count=_count_norm, doc="batch normalization over the last axis"),
        Generator("dropout", _real_same("dropout"), (_RATE,), acts="pointwise", doc="dropout in training, identity in evaluation"),
        Generator("embed", _embed, (Arg("vocab", "int", None, required=True, low=1, high=10**8), _FEATURES), params=True, count=_count_embed, doc="ids to vectors"),
        Generator("attention", _attention, (Arg("heads", "int", 1, low=1, high=1024), Arg("causal", "bool", False), _DROPOUT), params=True, count=_count_attention, doc="multi-head self-attention on R[T, d]"),
        Generator("cross_attention", _cross_attention, (Arg("heads", "int", 1, low=1, high=1024), Arg("causal", "bool", False), _DROPOUT), arity=2, params=True, count=_count_attention, doc="queries R[T, d] attend to R[S, e]"),
        Generator("coupling", _coupling, (Arg("hidden", "int", 64, low=1, high=1 << 20), Arg("conditioner", "network", None)), iso=True, params=True,
                  count=_count_coupling, doc="affine coupling layer (invertible): a conditioner (default: an MLP) of the first half scales and shifts the rest"),
        Generator("reverse", _real_same("reverse"), iso=True, doc="reverse the last axis (invertible)"),
        # structural morphisms
        Generator("id", _same, arity=None, iso=True, structural=True, acts="structural", doc="identity"),
        Generator("swap", _swap, arity=2, iso=True, structural=True, acts="structural", doc="A ⊗ B -> B ⊗ A"),
        Generator("copy", _copy, structural=True, acts="structural", doc="A -> A ⊗ A"),
        Generator("discard", _discard, structural=True, acts="structural", doc="A -> I"),
        Generator("concat", _concat, (_AXIS,), arity=2, structural=True, acts="structural", doc="join two wires along an axis"),
        Generator("split", _split, (Arg("size", "dim", None), _AXIS), structural=True, doc="cut a wire along an axis"),
        Generator("fst", _fst, arity=2, structural=True, acts="structural", doc="A ⊗ B -> A"),
        Generator("snd", _snd, arity=2, structural=True, acts="structural", doc="A ⊗ B -> B"),
        Generator("proj", _proj, params=True, count=_count_triv, instance=_bundle_of,
                  doc="bundle projection E -> B: the base half of the bundle's trivialization"),
        Generator("triv", _triv, _TRIV_ARGS, iso=True, params=True, count=_count_triv, instance=_bundle_of,
                  doc="local trivialization E ≅ B ⊗ F: a chart-conditioned coupling flow, one per bundle"),
    ]
}

#: Number of wires each generator returns, where it does not depend on types.
COARITY: dict[str, int | None] = {
    "copy": 2, "discard": 0, "swap": 2, "split": 2, "triv": 2, "id": None,
}

#: Generators with a meaning fixed by the language itself: no family or
#: plugin may replace them (``register(..., replace=True)`` included).
BUILTIN: frozenset[str] = frozenset()


class RegistrationError(ValueError):
    """A generator that cannot enter the table (raised to the Python caller that registers it)."""


def register(generator: Generator, *, replace: bool = False) -> Generator:
    """Add ``generator`` to :data:`GENERATORS` (see ``catnet.extend`` for plugins).

    The name must be an identifier that no keyword or other generator
    takes, unless ``replace`` (which never applies to the built-in ones).
    A generator with parameters needs a ``count`` rule.
    """
    name = generator.name
    if not isinstance(name, str) or not name.isidentifier() or name.startswith("_"):
        raise RegistrationError(f"a generator's name must be an identifier not starting with `_`, not {name!r}")
    if name in KEYWORDS:
        raise RegistrationError(f"`{name}` is a keyword of the language")
    if name in GENERATORS and (not replace or name in BUILTIN):
        raise RegistrationError(f"a generator named `{name}` exists already ({GENERATORS[name].family})")
    if generator.params and generator.count is None:
        raise RegistrationError(f"`{name}` has parameters, so it needs a `count` rule")
    if generator.acts is not None and generator.acts not in ACTS:
        raise RegistrationError(f"`acts=` of `{name}` is {generator.acts!r}; it is one of {', '.join(ACTS)} or None")
    seen: set[str] = set()
    for a in generator.args:
        if a.kind not in ARG_KINDS:
            raise RegistrationError(f"argument `{a.name}` of `{name}` has kind {a.kind!r}; kinds are {', '.join(ARG_KINDS)}")
        if a.name in seen:
            raise RegistrationError(f"`{name}` names the argument `{a.name}` twice")
        seen.add(a.name)
    GENERATORS[name] = generator
    if generator.coarity is not None:
        COARITY[name] = generator.coarity
    return generator


#: How a generator may act on G-spaces (``Generator.acts``; ``None``: only on trivially acted wires).
ACTS = ("pointwise", "linear", "per_position", "axis", "pool", "window", "structural", "equivariant")

#: The kinds of keyword arguments a generator may take.
ARG_KINDS = ("int", "float", "bool", "str", "dim", "dims", "ints", "padding", "morphism", "network")


def _families() -> None:
    """Register the generator families of this package (after the core table)."""
    from . import arith, axes, bundles, flows, learned, losses, symmetry, tied  # noqa: F401


_families()
BUILTIN = frozenset(GENERATORS)
