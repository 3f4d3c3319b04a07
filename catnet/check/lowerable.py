"""What checks but cannot be compiled yet."""

from __future__ import annotations

from .. import dims
from ..errors import CatnetError
from ..dims import Dim
from ..ir import Box, Diagram, Ob
from ..library import GENERATORS



def parameter_size(d: Dim, box: Box, entry: str | None = None) -> int:
    """``d`` as a number, or E0304: a parameter cannot have a symbolic size."""
    if not isinstance(d, int):
        raise CatnetError(
            "E0304",
            f"`{box.name}` needs a number for its parameter size, but it is `{dims.show(d)}`",
            box.span,
            notes=[f"in `{entry}`"] if entry else [],
            help="give the dimension a value in the types, e.g. `R[64]`",
        )
    return d


#: Levels of nested bodies the lowering builds (its module tree and the
#: trace of a forward pass nest as deep as the definitions do).
MAX_NESTING = 64


def require_lowerable(d: Diagram, entry: str) -> None:
    """Refuse, with E0601, what checks but cannot be compiled yet.

    An equivariant layer compiles when its weight basis is small enough to
    solve and keep (``catnet.library.symmetry.too_large``); a bundle compiles when it has a total space
    (its base and fiber are each one vector ``R[k]``, docs/bundles.md).  Sizes
    that size parameters must be known numbers (only free sequence lengths
    may stay symbolic).
    """
    depth = d.nesting_depth()
    if depth > MAX_NESTING:
        raise CatnetError("E0106", f"`{entry}` nests definitions {depth:,} levels deep; compiling handles up to {MAX_NESTING}",
                          None, notes=["each definition used inside another is one level"],
                          help="inline some of the intermediate definitions, or use `repeat n` for a chain of equal blocks")
    for box in d.all_boxes():
        for ob in box.dom.obs + box.cod.obs:
            if ob.group and all(isinstance(d, int) for d in ob.shape):
                _fits(ob, box, entry)
            if ob.base == "bundle" and not ob.shape:
                raise CatnetError("E0601", f"compiling the bundle `{ob.name}` needs a total space, which it has not", box.span,
                                  notes=[f"`{box.name}` in `{entry}` touches it", f"`{ob.name}` is {ob.structure()}"],
                                  help="a bundle compiles when its base and fiber are each one real vector R[k] "
                                       "(its points then live in R[dim B + dim F], or `in R[n]`)")
        g = GENERATORS.get(box.name)
        if box.kind == "generator" and g is not None and g.params and g.count is not None:
            g.count(box, lambda dim: parameter_size(dim, box, entry))  # every parameter size a number
            if g.family == "symmetry":
                from ..library.symmetry import too_large

                problem = too_large(box)
                if problem is not None:
                    raise CatnetError("E0601", f"compiling `{box.name}` needs {problem}", box.span, notes=[f"in `{entry}`"],
                                      help="write the representations as sums of smaller blocks (e.g. copies of a small group's regular)")
        size = box.kwargs.get("size") if box.name == "split" else None
        if size is not None and not isinstance(size, int):
            raise CatnetError("E0304", f"`split` needs a known size, but it is `{dims.show(size)}`", box.span,  # type: ignore[arg-type]
                              notes=[f"in `{entry}`"], help="give the size a number in the entry's types")


def _fits(ob: Ob, box: Box, entry: str) -> None:
    """E0321 where a G-space wire of a generic definition, at the sizes compiled, cannot carry its action."""
    from ..symmetry.actions import BadRep, action

    try:
        action(str(ob.group), ob.rep, ob.shape)  # type: ignore[arg-type]
    except BadRep as e:
        raise CatnetError("E0321", f"`{ob}` cannot carry its action of {ob.group} at the sizes compiled: {e}", box.span,
                          notes=[f"`{box.name}` in `{entry}` touches it, as {ob.structure()}"],
                          help="the representation's dimension must be the number of channels for every size the entry uses") from None
