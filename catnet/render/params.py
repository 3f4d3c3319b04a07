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

from ..errors import CatnetError
from ..ir import Box, Diagram
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
    seen: set[str] = set()
    total = 0
    for box in diagram.boxes:
        if box.shared is not None:
            if box.shared in seen:
                continue
            seen.add(box.shared)
        total += param_count(box)
    return total


def param_count(box: Box) -> int:
    """Scalars in the parameters of one occurrence of ``box``.

    Generators follow :func:`catnet.summary.generator_params`; structural
    boxes have none; a composite, an inverse and a trace count their body;
    ``repeat n`` counts ``n`` fresh copies of its body.
    """
    if box.kind == "generator":
        return _generator_count(box)
    if box.kind == "structural" or box.body is None:
        return 0
    inner = diagram_param_count(box.body)
    if box.kind == "repeat":
        n = box.kwargs.get("n", 1)
        return inner * (n if isinstance(n, int) else 1)
    return inner
