"""Parameter counts of boxes, computed from the IR alone (no JAX).

The Para view of a diagram labels each parameter wire with the number of
scalars it carries.  The count of a generator follows from its complete
keyword arguments and its input wire; a composite counts its body, where
boxes that share one ``shared`` instance are counted once::

    >>> from catnet.ir import Box, Ty
    >>> A, B = Ty.tensor_space("R", (64,)), Ty.tensor_space("R", (128,))
    >>> param_count(Box("dense", A, B, args=(("features", 128),)))
    8320
"""

from __future__ import annotations

from typing import Callable

from ..errors import CatnetError
from ..ir import Box, Diagram, fold_bodies
from ..summary import generator_params

def _generator_count(box: Box) -> int:
    """Scalars in one instance of a library generator (the summary's formulas).

    A generic definition drawn on its own may size a parameter by a symbol
    (``R[d]``); such a box has no number to show, so it counts 0.
    """
    try:
        return generator_params(box)
    except CatnetError:
        return 0


def diagram_param_count(diagram: Diagram) -> int:
    """Scalars in the parameters of a diagram; a shared instance counts once."""
    return fold_bodies(diagram, "_render_params", _box_count, _sum_once_per_shared)[1]


def _box_count(box: Box, of: Callable[[Diagram], tuple[None, int]]) -> tuple[str | None, int]:
    """A box's count with its shared name, so that the sum counts each instance once."""
    return box.shared, _count(box, lambda d: of(d)[1])


def _sum_once_per_shared(values: list[tuple[str | None, int]]) -> tuple[None, int]:
    seen: set[str] = set()
    total = 0
    for shared, n in values:
        if shared is not None:
            if shared in seen:
                continue
            seen.add(shared)
        total += n
    return None, total


def _count(box: Box, inner_of: Callable[[Diagram], int]) -> int:
    if box.kind == "generator":
        return _generator_count(box)
    if box.kind == "structural" or box.body is None:
        return 0
    inner = inner_of(box.body)
    if box.kind == "repeat":
        n = box.kwargs.get("n", 1)
        return inner * (n if isinstance(n, int) else 1)
    return inner


def param_count(box: Box) -> int:
    """Scalars in the parameters of one occurrence of ``box``.

    Generators follow :func:`catnet.summary.generator_params`; structural
    boxes have none; a composite, an inverse and a trace count their body;
    ``repeat n`` counts ``n`` fresh copies of its body.  Bodies are folded
    bottom-up once (:func:`catnet.ir.fold_bodies`): no recursion.
    """
    return _count(box, diagram_param_count)
