"""Equivariant generators: their shape rules and parameter counts (docs/symmetry.md).

* ``glinear`` — the equivariant linear map between two representations on
  the channel axis (applied at every grid cell or set element), its weight
  in the basis solved from ``ρ_out(g) W = W ρ_in(g)``, and a bias in the
  invariant part of ``ρ_out``;
* ``gconv`` — a steerable convolution on a ``C4``/``D4`` grid: the kernel
  satisfies ``K(g·d) = ρ_out(g) K(d) ρ_in(g)⁻¹``; from a trivial input it is
  a lifting convolution, from ``regular`` a group convolution;
* ``gpool`` — the maximum (or mean) over the group axis of each copy of
  ``regular``: ``regular * m -> trivial * m``;
* ``deepsets`` — the permutation-equivariant layer of a set
  ``R[n, c] under S(n)``: ``y_i = Λ x_i + Γ mean_j x_j + b``.

A free output representation is a variable that the declared or ascribed
type decides; left open, it is ``regular * (c / |G|)``
(``check.declarations``).  The weights' bases are NumPy
(``catnet.symmetry``); nothing here imports JAX.
"""

from __future__ import annotations

from typing import Callable

from ..dims import Dim
from ..ir import Box, Ob, Ty, Value
from . import Arg, Generator, RuleContext, _features, _one, register


def _gspace(ctx: RuleContext, ob: Ob, name: str, what: str = "a G-space") -> tuple[str, tuple[Dim, ...]]:
    if ob.base != "R" or not ob.group:
        ctx.fail(f"`{name}` maps between G-spaces, but its input {ob} has no group action",
                 "declare the input object with `under G` (docs/symmetry.md)", code="E0321")
    return ob.group, ob.shape  # type: ignore[return-value]


def _spatial(ctx: RuleContext, ob: Ob) -> str | None:
    """The spatial action of a G-space wire whose grid or set sizes are known, if any (``"grid"``, ``"set"``).

    The channels do not matter here, so a width still to be inferred is fine.
    """
    from ..symmetry.actions import BadRep, spatial_of
    from ..symmetry.groups import parse

    lead = tuple(ctx.resolve(d) for d in ob.shape[:-1])
    if not all(isinstance(d, int) for d in lead):
        # Generic sizes: a grid of h × h, a set of n, by the group that acts.
        g = parse(str(ob.group))
        letter = g.name[0] if " × " not in g.name else "?"
        if len(lead) == 2 and letter in "CD" and lead[0] == lead[1]:
            return "grid"
        if len(lead) == 1 and letter == "S":
            return "set"
        return None
    try:
        return spatial_of(parse(str(ob.group)), lead + (1,))  # type: ignore[arg-type]
    except BadRep:
        return None


def _glinear(ctx: RuleContext, dom: Ty, args: dict[str, Value]) -> Ty:
    ob = _one(dom)
    group, shape = _gspace(ctx, ob, "glinear")
    if not shape:
        ctx.fail(f"`glinear` acts on the channel axis, but its input {ob} is a scalar")
    return Ty((Ob("R", shape[:-1] + (_features(ctx, args),), group=group, rep=ctx.fresh_rep()),))


def _gconv(ctx: RuleContext, dom: Ty, args: dict[str, Value]) -> Ty:
    ob = _one(dom)
    group, shape = _gspace(ctx, ob, "gconv")
    k = int(args["kernel"])  # type: ignore[arg-type]
    if k % 2 == 0:
        ctx.fail(f"`gconv(kernel={k})` needs an odd kernel: an even window has no centre cell for the group to turn about",
                 f"use kernel={k + 1} or kernel={k - 1}" if k > 1 else "use kernel=3")
    if len(shape) != 3 or _spatial(ctx, ob) != "grid":
        ctx.fail(f"`gconv` convolves a square grid R[h, h, c] under C4 or D4, but its input is {ob.structure()}",
                 "`glinear` maps channels without a grid; sets take `deepsets`")
    return Ty((Ob("R", shape[:2] + (_features(ctx, args),), group=group, rep=ctx.fresh_rep()),))


def _gpool(ctx: RuleContext, dom: Ty, args: dict[str, Value]) -> Ty:
    from ..symmetry.actions import channels_text
    from ..symmetry.groups import parse
    from ..symmetry.reps import regular

    ob = _one(dom)
    group, shape = _gspace(ctx, ob, "gpool")
    if not shape:
        ctx.fail(f"`gpool` pools the channel axis, but its input {ob} is a scalar")
    g = parse(group)
    c = ctx.need_int(shape[-1], "the channels `gpool` pools")
    if c % g.order:
        ctx.fail(f"`gpool` takes copies of regular({g}), {g.order} channels each, but its input has {c} channels",
                 code="E0321")
    want = channels_text(regular(g) * (c // g.order))
    ctx.equal_rep(ob.rep, want, f"`gpool` takes copies of the regular representation, `{want}`, but its input is {ob.structure()}")
    return Ty((Ob("R", shape[:-1] + (c // g.order,), group=group),))


def _deepsets(ctx: RuleContext, dom: Ty, args: dict[str, Value]) -> Ty:
    ob = _one(dom)
    group, shape = _gspace(ctx, ob, "deepsets")
    if len(shape) != 2 or _spatial(ctx, ob) != "set":
        ctx.fail(f"`deepsets` maps a set R[n, c] under S(n), but its input is {ob.structure()}",
                 "a set of n elements with c channels each is `R[n, c] under Sn`")
    ctx.equal_rep(ob.rep, None, f"`deepsets` takes trivially acting channels, but its input is {ob.structure()}")
    return Ty((Ob("R", (shape[0], _features(ctx, args)), group=group),))


# -- parameter counts -------------------------------------------------------------


def _action(ob: Ob, size: Callable[[Dim], int]):  # noqa: ANN202
    from ..symmetry.actions import action

    return action(str(ob.group), ob.rep, tuple(size(d) for d in ob.shape))


def _bias_size(box: Box, out_rep) -> int:  # noqa: ANN001
    from ..symmetry.reps import intertwiner_dimension, trivial

    if not box.kwargs.get("bias", True):
        return 0
    return intertwiner_dimension(trivial(out_rep.group), out_rep)


def maps_dimension(rin, rout) -> int:  # noqa: ANN001
    """``dim Hom_G(ρ_in, ρ_out)`` block by block, from characters: no basis is built (``catnet check`` stays light)."""
    from ..symmetry.reps import intertwiner_dimension

    return sum(intertwiner_dimension(a, b) * m_in * m_out for b, m_out in rout.blocks for a, m_in in rin.blocks)


def _count_glinear(box: Box, size: Callable[[Dim], int]) -> int:
    rin, rout = _action(box.dom.obs[0], size).rep, _action(box.cod.obs[0], size).rep
    return maps_dimension(rin, rout) + _bias_size(box, rout)


def kernel_target(group: str, kernel: int, rout):  # noqa: ANN001, ANN201
    """``P ⊗ ρ_out`` as a direct sum over ``ρ_out``'s blocks: the representation a steerable kernel maps into."""
    from ..symmetry.actions import kernel_rep
    from ..symmetry.reps import direct_sum, tensor

    window = kernel_rep(group, kernel)
    return direct_sum(*[(tensor(window, block), m) for block, m in rout.blocks])


def _count_gconv(box: Box, size: Callable[[Dim], int]) -> int:
    rin, rout = _action(box.dom.obs[0], size).rep, _action(box.cod.obs[0], size).rep
    target = kernel_target(str(box.dom.obs[0].group), int(box.kwargs["kernel"]), rout)  # type: ignore[arg-type]
    return maps_dimension(rin, target) + _bias_size(box, rout)


def too_large(box: Box) -> str | None:
    """What makes the weight basis of a checked ``glinear``/``gconv`` box too large to solve and keep, or ``None``."""
    from ..symmetry.basis import MAX_BASIS, MAX_SOLVE
    from ..symmetry.reps import intertwiner_dimension

    if box.name not in ("glinear", "gconv"):
        return None
    size = int
    rin, rout = _action(box.dom.obs[0], size).rep, _action(box.cod.obs[0], size).rep  # type: ignore[arg-type]
    if box.name == "gconv":
        rout = kernel_target(str(box.dom.obs[0].group), int(box.kwargs["kernel"]), rout)  # type: ignore[arg-type]
    for b, _ in rout.blocks:
        for a, _ in rin.blocks:
            k = intertwiner_dimension(a, b)
            if not k:
                continue
            if k * a.dim * b.dim > MAX_BASIS:
                return f"a basis of {k:,} maps {a.dim} -> {b.dim} ({k * a.dim * b.dim:,} numbers, more than {MAX_BASIS:,})"
            if not (a.is_permutation and b.is_permutation) and a.dim * b.dim > MAX_SOLVE:
                return f"solving for the maps {a.name} -> {b.name}, a {b.dim} × {a.dim} problem (more than {MAX_SOLVE:,} unknowns)"
    return None


def _count_deepsets(box: Box, size: Callable[[Dim], int]) -> int:
    c, f = size(box.dom.obs[0].shape[-1]), size(box.cod.obs[0].shape[-1])
    return 2 * c * f + (f if box.kwargs.get("bias", True) else 0)


_FEATURES = Arg("features", "dim", None)
_BIAS = Arg("bias", "bool", True)

for _g in [
    Generator("glinear", _glinear, (_FEATURES, _BIAS), params=True, count=_count_glinear, acts="equivariant", family="symmetry",
              doc="equivariant linear map between representations on the channel axis (weights in the solved basis)"),
    Generator("gconv", _gconv, (_FEATURES, Arg("kernel", "int", 3, low=1, high=15), _BIAS), params=True, count=_count_gconv,
              acts="equivariant", family="symmetry", doc="steerable convolution on a C4/D4 grid: lifting from trivial channels, group convolution from regular"),
    Generator("gpool", _gpool, (Arg("mode", "str", "max", choices=("max", "mean")),), acts="equivariant", family="symmetry",
              doc="max (or mean) over the group axis of each copy of regular: regular * m -> trivial * m"),
    Generator("deepsets", _deepsets, (_FEATURES, _BIAS), params=True, count=_count_deepsets, acts="equivariant", family="symmetry",
              doc="permutation-equivariant set layer on R[n, c] under S(n): y_i = Λ x_i + Γ mean_j x_j + b"),
]:
    register(_g)
