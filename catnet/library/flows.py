"""Flows: the ``flows`` family of invertible generators (``docs/language.md`` §11.10).

Each generator here is an isomorphism on the last axis of one real wire
``R[…, c]`` (any rank ≥ 1, the other axes are *positions*) whose lowering
(``catnet.lower.ops.flows``) gives its forward map, its inverse and
``log|det J|`` per example:

* ``actnorm`` (Glow): ``y = x * exp(log_scale) + bias`` per channel;
  log-det ``positions × Σ log_scale``.  Both parameters start at the
  identity (``log_scale = 0``, ``bias = 0``); Glow's data-dependent
  initialisation is not done, training finds the scale.
* ``lu_linear`` (Glow's invertible 1×1 convolution, LU-decomposed):
  ``y = W x`` on the channels with ``W = P L (U + diag(sign s · exp(log|s|)))``;
  log-det ``positions × Σ log|s|``.  ``c²`` parameters (the strict
  triangles of ``L`` and ``U`` and ``log|s|``); ``P`` and ``sign s`` are
  fixed at initialisation from a random orthogonal matrix.
* ``permute(seed=0)``: a fixed random permutation of the channels, a
  function of ``seed`` and ``c`` alone; no parameters, volume-preserving.

The affine ``coupling`` is a core generator; its optional ``conditioner``
(a morphism argument of kind ``network``) is checked here by
:func:`fit_conditioner`, which the coupling's shape rule calls.
"""

from __future__ import annotations

from typing import Callable

from .. import dims
from ..dims import Dim
from ..errors import CatnetError
from ..ir import Box, Diagram, Ob, Ty, Value
from . import Arg, Generator, Rule, RuleContext, _tensor, last_axis, register

#: The largest ``permute`` seed (NumPy takes any non-negative integer; a
#: million seeds is plenty, and the bound reads well in a message).
MAX_SEED = 999_999


def _channels(name: str) -> Rule:
    """The rule of an iso on the last axis of one real wire: the type is unchanged."""

    def rule(ctx: RuleContext, dom: Ty, args: dict[str, Value]) -> Ty:
        (ob,) = dom.obs
        shape = _tensor(ctx, ob, f"`{name}`")
        if ob.base != "R":
            ctx.fail(f"`{name}` acts on real wires, but its input is {ob}", "use `embed` to turn ids into vectors")
        if not shape:
            ctx.fail(f"`{name}` acts on the last axis (the channels), but its input {ob} is a scalar",
                     "give the wire an axis, e.g. `reshape(1)`")
        return dom

    return rule


def _count_actnorm(box: Box, size: Callable[[Dim], int]) -> int:
    return 2 * last_axis(box, size)  # log_scale and bias per channel


def _count_lu(box: Box, size: Callable[[Dim], int]) -> int:
    c = last_axis(box, size)
    return c * c  # strict lower (c(c-1)/2) + strict upper (c(c-1)/2) + log|s| (c)


register(Generator(
    "actnorm", _channels("actnorm"), params=True, iso=True, count=_count_actnorm,
    doc="per-channel scale and bias, starting at the identity (Glow's actnorm; invertible, log-det positions × Σ log_scale)",
    family="flows",
))
register(Generator(
    "lu_linear", _channels("lu_linear"), params=True, iso=True, count=_count_lu,
    doc="invertible linear map of the channels, LU-decomposed (Glow's 1×1 convolution; log-det positions × Σ log|s|)",
    family="flows",
))
register(Generator(
    "permute", _channels("permute"), (Arg("seed", "int", 0, low=0, high=MAX_SEED),), iso=True,
    doc="a fixed random permutation of the channels, chosen by `seed` (invertible, volume-preserving)",
    family="flows",
))


# -- the coupling's conditioner ------------------------------------------------------


def conditioner(box: Box) -> Box | None:
    """The conditioner of a ``coupling`` box (the box of its one-box use), or ``None`` for the default MLP."""
    v = box.kwargs.get("conditioner")
    if v is None:
        return None
    assert isinstance(v, Diagram) and len(v.layers) == 1, "a network argument is the use of one morphism"
    return v.layers[0].box


def _show(ctx: RuleContext, ty: Ty) -> str:
    """A type for a message, sizes still unknown shown as ``_``."""
    parts = []
    for ob in ty.obs:
        if ob.base == "bundle" or ob.group:
            parts.append(str(ob))
            continue
        sizes = ", ".join(dims.show(ctx.resolve(d)).replace("?", "_") for d in ob.shape)
        parts.append(f"{ob.base}[{sizes}]")
    return " ⊗ ".join(parts) if parts else "I"


def fit_conditioner(ctx: RuleContext, ob: Ob, cond: Box) -> None:
    """Unify a coupling's conditioner with what the coupling on ``ob = R[…, n]`` needs, or E0319.

    The conditioner reads the first half ``R[…, n // 2]`` and returns the
    log-scale and the shift of the rest side by side, ``R[…, 2 (n - n // 2)]``.
    Its sizes may still be unknown (a generic definition instantiated with
    fresh sizes): they are fixed here, and a size that the types do not fix
    (one used only inside its body) is E0319 as well, since its parameters
    could not be built.
    """
    n = ctx.need_int(ob.shape[-1], "the last axis of a `coupling` with a conditioner")
    half, rest = n // 2, n - n // 2
    lead = ob.shape[:-1]
    want_dom = Ty((Ob("R", lead + (half,)),))
    want_cod = Ty((Ob("R", lead + (2 * rest,)),))
    shown = f"`coupling` on {_show(ctx, Ty((ob,)))} needs a conditioner {_show(ctx, want_dom)} -> {_show(ctx, want_cod)}"
    notes = [f"it reads the first half of the last axis ({n} // 2 = {half}) and returns a log-scale and a shift "
             f"for the other {rest} entries ({2 * rest} numbers)"]
    example = (f"e.g. `morphism net : {_show(ctx, want_dom)} -> {_show(ctx, want_cod)} = "
               f"dense(features=64) ; relu ; dense`, then `coupling(conditioner=net)`")

    def refuse(message: str, help: str = example) -> None:
        raise CatnetError("E0319", message, cond.span, notes=notes, help=help)

    got = f"`{cond.name}` maps {_show(ctx, cond.dom)} -> {_show(ctx, cond.cod)}"
    for have, want in ((cond.dom, want_dom), (cond.cod, want_cod)):
        if len(have) != 1 or have.obs[0].base != "R" or have.obs[0].group or len(have.obs[0].shape) != len(want.obs[0].shape):
            refuse(f"{got}, but {shown}")
        for a, b in zip(have.obs[0].shape, want.obs[0].shape):
            ra, rb = ctx.resolve(a), ctx.resolve(b)
            if isinstance(ra, int) and isinstance(rb, int):
                if ra != rb:
                    refuse(f"{got}, but {shown}")
                continue
            try:
                ctx.equal(a, b, "")
            except CatnetError:
                refuse(f"{got}, but {shown}")
    if cond.inst is not None:
        loose = [s for s, v in cond.inst[1] if any(dims.is_var(x) for x in dims.symbols(ctx.resolve(v)))]
        if loose:
            sizes = ", ".join(f"`{s}`" for s in loose)
            refuse(f"the conditioner `{cond.name}` is generic in {sizes}, which the coupling does not fix",
                   help=f"give its sizes in brackets, e.g. `coupling(conditioner={cond.name}[…])`, "
                        f"or define a conditioner of fixed sizes: {example[5:]}")
