"""The ``bundles`` family: maps of trivialized bundles (see ``docs/bundles.md``).

``triv : E -> B ⊗ F`` turns a bundle into its base and fiber; a
*fiberwise* map then keeps the base point and changes the fiber with
weights that depend on it (DESIGN §1):

``fiberwise(features=F', hidden=64) : B ⊗ F -> B ⊗ R[F']`` passes the
base ``b`` through and maps the fiber ``f`` by a dense layer whose output
is FiLM-modulated by the base, ``(W f + c) * (1 + γ(b)) + β(b)``, with
``γ`` and ``β`` from an MLP of ``b`` with one hidden layer of ``hidden``
units.  Base and fiber are each one real vector.  ``F'`` comes from the
declared type where it is left out, as ``dense``'s ``features`` does.
"""

from __future__ import annotations

from collections.abc import Callable

from ..dims import Dim
from ..ir import Box, Ob, Ty, Value
from . import Arg, Generator, RuleContext, register


def _vector(ctx: RuleContext, ob: Ob, role: str) -> Dim:
    if ob.base != "R" or len(ob.shape) != 1:
        ctx.fail(f"`fiberwise` takes a base and a fiber that are real vectors R[k] ⊗ R[n], but its {role} is {ob}",
                 "trivialize the bundle first (`triv`), and flatten a base or fiber with more axes")
    return ob.shape[0]


def _fiberwise(ctx: RuleContext, dom: Ty, args: dict[str, Value]) -> Ty:
    base, fiber = dom.obs
    _vector(ctx, base, "base")
    _vector(ctx, fiber, "fiber")
    features = args.get("features")
    if features is None:
        features = ctx.fresh()
        args["features"] = features
    return Ty((base, Ob("R", (features,))))  # type: ignore[arg-type]


def _count_fiberwise(box: Box, size: Callable[[Dim], int]) -> int:
    """The dense fiber map (``F·F' + F'``) and the FiLM MLP of the base (``B·h + h + h·2F' + 2F'``)."""
    base, fiber = box.dom.obs
    kb, kf = size(base.shape[0]), size(fiber.shape[0])
    f, h = size(box.kwargs["features"]), int(box.kwargs["hidden"])  # type: ignore[arg-type]
    return kf * f + f + kb * h + h + h * 2 * f + 2 * f


register(Generator(
    "fiberwise",
    _fiberwise,
    (Arg("features", "dim", None), Arg("hidden", "int", 64, low=1, high=1 << 20)),
    arity=2,
    params=True,
    count=_count_fiberwise,
    coarity=2,
    doc="B ⊗ F -> B ⊗ R[F']: keep the base, map the fiber by a dense layer FiLM-modulated by the base",
    family="bundles",
))
