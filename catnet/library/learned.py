"""Sources: the ``learned`` family of generators (see ``docs/language.md`` §11).

``learned(*shape, init="normal", scale=0.02) : I -> R[shape]`` is a
trainable tensor, the same for every example of a batch: a class token
``learned(1, 768)``, a position table ``learned(1024, 768)``, a layer scale
``learned(768, init="constant", scale=1e-6)``.  It takes no wire, so in the
wiring form it is a call without wire arguments (``cls = learned(1, 768)``)
and point-free it sits beside the wires it joins (``learned(1, 768) ⊗ id``).

``noise(dist="normal", scale=1.0) : R[s…] -> R[s…]`` draws fresh noise
shaped like its input, whose values it ignores (``eps = noise(mu)`` for the
reparameterization trick): normal with standard deviation ``scale``, or
uniform on ``[-scale, scale)``.  In evaluation mode it returns the
distribution's mean, zero for both, so evaluation is deterministic.
"""

from __future__ import annotations

from math import prod
from typing import Callable

from ..dims import Dim
from ..ir import Box, Ob, Ty, Value
from . import Arg, Generator, RuleContext, _tensor, register
from .arith import FINITE

#: ``learned``'s initializers; ``scale`` is the standard deviation of
#: ``normal`` and ``trunc_normal`` (cut at two of them), the half-width of
#: ``uniform`` and the value of ``constant``.
INITS = ("normal", "trunc_normal", "uniform", "zeros", "ones", "constant")

#: ``noise``'s distributions; both have mean zero.
DISTS = ("normal", "uniform")


def _learned(ctx: RuleContext, dom: Ty, args: dict[str, Value]) -> Ty:
    shape = args["shape"]
    assert isinstance(shape, tuple)
    if not shape:
        ctx.fail("`learned` needs the shape of its tensor, e.g. `learned(1, 768)` for one 768-wide token",
                 "give the sizes as positional arguments: `learned(n)` is R[n], `learned(n, d)` is R[n, d]")
    init, scale = str(args["init"]), float(args["scale"])  # type: ignore[arg-type]
    if init in ("normal", "trunc_normal", "uniform") and scale < 0:
        ctx.fail(f"`learned(init=\"{init}\")` takes a spread `scale` ≥ 0, not {scale:g}",
                 "use init=\"constant\" for a negative starting value")
    return Ty((Ob("R", tuple(shape)),))


def _count_learned(box: Box, size: Callable[[Dim], int]) -> int:
    return prod(size(d) for d in box.kwargs["shape"])  # type: ignore[union-attr]


def _noise(ctx: RuleContext, dom: Ty, args: dict[str, Value]) -> Ty:
    (ob,) = dom.obs
    _tensor(ctx, ob, "`noise`")
    if ob.base != "R":
        ctx.fail(f"`noise` draws real numbers shaped like its input, but its input is {ob}",
                 "feed it a real wire of the shape you want, e.g. `eps = noise(mu)`")
    return dom


register(Generator(
    "learned",
    _learned,
    (Arg("shape", "dims", ()), Arg("init", "str", "normal", choices=INITS),
     Arg("scale", "float", 0.02, low=-FINITE, high=FINITE)),
    arity=0,
    params=True,
    count=_count_learned,
    doc="I -> R[shape]: a trainable tensor, the same for every example",
    family="learned",
))
register(Generator(
    "noise",
    _noise,
    (Arg("dist", "str", "normal", choices=DISTS), Arg("scale", "float", 1.0, low=0.0, high=FINITE)),
    doc="R[s…] -> R[s…]: fresh noise shaped like the input (its mean, 0, in evaluation)",
    family="learned",
))
