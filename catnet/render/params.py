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

from ..ir import Box, Diagram

#: Generators whose count is a closed formula of their wires and arguments.
_COUNTED = ("dense", "conv", "layernorm", "batchnorm", "embed", "attention", "cross_attention", "coupling")


def _size(d: object) -> int:
    # Parameter sizes are resolved to ints by the checker; a symbolic one
    # (an unsolved sequence length) never sizes a parameter, so it counts 0.
    return d if isinstance(d, int) else 0


def _last(box: Box, i: int = 0) -> int:
    shape = box.dom.obs[i].shape
    return _size(shape[-1]) if shape else 0


def _generator_count(box: Box) -> int:
    """Scalars in one instance of a library generator.

    ``coupling`` is taken to be an affine coupling layer whose conditioner is
    an MLP with biases from the first half of the last axis (``d // 2``) to
    ``hidden`` units to a scale and a shift for the other half
    (``2 * (d - d // 2)``).
    """
    kw = box.kwargs
    name = box.name
    if name == "dense":
        d_in, d_out = _last(box), _size(kw.get("features"))
        return d_in * d_out + d_out
    if name == "conv":
        spatial = len(box.dom.obs[0].shape) - 1
        c_in, c_out = _last(box), _size(kw.get("features"))
        k = _size(kw.get("kernel"))
        return k**spatial * c_in * c_out + c_out
    if name in ("layernorm", "batchnorm"):
        # Scale and bias; batchnorm's running mean and variance are state.
        return 2 * _last(box)
    if name == "embed":
        return _size(kw.get("vocab")) * _size(kw.get("features"))
    if name == "attention":
        d = _last(box)
        return 4 * (d * d + d)
    if name == "cross_attention":
        d, e = _last(box, 0), _last(box, 1)
        return (d * d + d) + 2 * (e * d + d) + (d * d + d)
    if name == "coupling":
        d = _last(box)
        h = _size(kw.get("hidden"))
        half = d // 2
        out = 2 * (d - half)
        return (half * h + h) + (h * out + out)
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

    Generators follow the formulas of :func:`_generator_count`; structural
    boxes have none; a composite, an inverse and a trace count their body;
    ``repeat n`` counts ``n`` fresh copies of its body.
    """
    if box.kind == "generator":
        return _generator_count(box) if box.name in _COUNTED else 0
    if box.kind == "structural" or box.body is None:
        return 0
    inner = diagram_param_count(box.body)
    if box.kind == "repeat":
        n = box.kwargs.get("n", 1)
        return inner * (n if isinstance(n, int) else 1)
    return inner
