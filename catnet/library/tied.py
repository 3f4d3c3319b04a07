"""Tied weights: the ``tied`` family of generators (see ``docs/language.md`` §8.1–8.2).

``transposed(wte)`` uses the weight matrix of a ``shared`` instance that is
one ``embed`` or one ``dense``, transposed, and adds no parameters of its
own: the tied output head of a language model (``h @ E.T`` with the token
embedding ``E``) or the decoder of a tied autoencoder (``y @ W.T``, no bias).

Its argument is of kind ``morphism``: the checker resolves the name to the
shared instance and passes its use, a one-box diagram (the box has
``shared`` set to the name and the instance's checked body), which is also
what the IR keeps, so that every stage finds the instance from the box
(``catnet.lower.names.tied_instances``).
"""

from __future__ import annotations

from .. import dims
from ..ir import Box, Diagram, Ob, Ty, Value
from . import Arg, Generator, RuleContext, register

#: The generators whose weight matrix ``transposed`` can use.
_WEIGHTS = ("embed", "dense")


def instance(of: Value) -> Box:
    """The shared instance a ``morphism`` argument names (its use, a composite box)."""
    assert isinstance(of, Diagram) and len(of.layers) == 1, "a morphism argument is the use of one shared instance"
    box = of.layers[0].box
    assert box.shared is not None
    return box


def _chain(shared: Box) -> list[Box]:
    """From a shared instance down through bodies that are one unwhiskered box each."""
    path = [shared]
    box = shared
    while box.kind == "composite" and box.body is not None and len(box.body.layers) == 1:
        layer = box.body.layers[0]
        if layer.left.obs or layer.right.obs:
            break
        box = layer.box
        path.append(box)
    return path


def _on_last_axis(box: Box) -> bool:
    return box.kwargs.get("axis", -1) in (-1, len(box.dom.obs[0].shape) - 1)


def weight_path(shared: Box) -> tuple[Box, ...]:
    """The boxes from a shared instance down to its one weight layer, or ``()``.

    The instance must be one ``embed`` or one ``dense`` on the last axis,
    possibly under named definitions that consist of it alone (``shared enc
    = encoder`` with ``encoder = dense``): each body on the way is one
    unwhiskered box.  The path starts at the instance's box and ends at the
    generator; the lowering walks the same path through the instance's
    modules.
    """
    path = _chain(shared)
    weight = path[-1]
    if len(path) < 2 or weight.kind != "generator" or weight.name not in _WEIGHTS or not _on_last_axis(weight):
        return ()
    return tuple(path)


def transposed_widths(weight: Box) -> tuple[int, int]:
    """What the transposed use of ``weight`` takes and gives on the last axis.

    ``embed(vocab=V, features=d)`` holds ``E : [V, d]``, so ``h @ E.T``
    maps ``d`` to ``V``; ``dense`` from ``n`` to ``m`` holds ``W : [n, m]``,
    so ``y @ W.T`` maps ``m`` to ``n``.  The sizes are numbers: the
    parameters of a shared instance never depend on a symbol.
    """
    takes = weight.kwargs["features"]
    gives = weight.kwargs["vocab"] if weight.name == "embed" else weight.dom.obs[0].shape[-1]
    assert isinstance(takes, int) and isinstance(gives, int), "shared parameters have numeric sizes"
    return takes, gives


def _describe(shared: Box) -> str:
    """What a shared instance that ``transposed`` refuses is, for the message."""
    last = _chain(shared)[-1]
    where = f" (in `{last.name}`)" if last is not shared and last.kind == "composite" else ""
    if last.kind == "composite" and last.body is not None:
        names = ", ".join(f"`{l.box.name}`" for l in last.body.layers[:3]) + (", …" if len(last.body.layers) > 3 else "")
        return f"{len(last.body.layers)} boxes{where}: {names}" if last.body.layers else f"no box at all{where}"
    if last.name in _WEIGHTS:
        return f"a `{last.name}` on axis {last.kwargs['axis']}, not on the last axis"
    return f"one `{last.name}`"


def _transposed(ctx: RuleContext, dom: Ty, args: dict[str, Value]) -> Ty:
    shared = instance(args["of"])
    name = shared.shared
    path = weight_path(shared)
    if not path:
        ctx.fail(f"`transposed({name})` needs a shared instance that is one `embed` or one `dense`, but `{name}` is {_describe(shared)}",
                 "share the weight layer alone, e.g. `shared w = (dense : R[64] -> R[32])`, use `w` where the layer goes "
                 "and `transposed(w)` where its transpose goes")
    weight = path[-1]
    takes, gives = transposed_widths(weight)
    (ob,) = dom.obs
    if ob.base != "R" or not ob.shape:
        ctx.fail(f"`transposed({name})` maps real vectors R[…, {takes}] to R[…, {gives}], but its input is {ob}",
                 "the tied head reads real vectors, e.g. hidden states R[T, d], not token ids")
    what = "features of its `embed`" if weight.name == "embed" else "output width of its `dense`"
    got = dims.show(ctx.resolve(ob.shape[-1])).replace("?", "_")
    ctx.equal(ob.shape[-1], takes, f"`transposed({name})` takes R[…, {takes}] (the {what}), but its input {ob} ends in {got}")
    return Ty((Ob("R", ob.shape[:-1] + (gives,)),))


register(Generator(
    "transposed",
    _transposed,
    (Arg("of", "morphism", required=True),),
    doc="the transposed weight of a shared `embed` or `dense` (tied weights, no parameters of its own)",
    family="tied",
))
