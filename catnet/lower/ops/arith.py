"""The lowering of the ``arith`` family (``catnet.library.arith``).

Each op is one ``jnp`` call.  Binary ops broadcast the per-example shapes
the checker computed: a wire with fewer axes than the result gets its
missing leading axes as size-1 axes *after* the batch axis (NumPy would
align them against the batch axis), so ranks always agree and only size-1
axes stretch.

The isos have log-determinants: ``neg`` and ``shift`` preserve volume,
``scale(by=c)`` has ``log|c|`` per element.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from ...ir import Box
from . import Array, Context, Op, Wires


def _aligned(x: Array, rank: int) -> Array:
    """``x`` with size-1 axes inserted after the batch axis up to ``rank`` per-example axes."""
    missing = rank + 1 - x.ndim
    return x if missing == 0 else jnp.expand_dims(x, tuple(range(1, 1 + missing)))


def _binary(fn: Callable[[Array, Array], Array]) -> Op:
    def apply(module: Any, wires: Wires, box: Box, ctx: Context) -> Wires:
        a, b = wires
        rank = len(box.cod.obs[0].shape)
        return [fn(_aligned(a, rank), _aligned(b, rank))]

    return Op(apply)


def _unary(fn: Callable[[Array], Array], inverse: Callable[[Array], Array] | None = None, volume_preserving: bool = False) -> Op:
    def apply(module: Any, wires: Wires, box: Box, ctx: Context) -> Wires:
        (x,) = wires
        return [fn(x)]

    def invert(module: Any, wires: Wires, box: Box, ctx: Context) -> Wires:
        assert inverse is not None
        (y,) = wires
        return [inverse(y)]

    return Op(apply, inverse=invert if inverse is not None else None, volume_preserving=volume_preserving)


def _by(box: Box) -> float:
    return float(box.kwargs["by"])  # type: ignore[arg-type]


def _constant(forward: Callable[[Array, float], Array], backward: Callable[[Array, float], Array],
              log_det: Callable[[float], float] | None = None) -> Op:
    """An elementwise iso with a constant ``by``; ``log_det(by)`` is ``log|f'|`` per element (``None``: 0)."""

    def apply(module: Any, wires: Wires, box: Box, ctx: Context) -> Wires:
        (x,) = wires
        return [forward(x, _by(box))]

    def invert(module: Any, wires: Wires, box: Box, ctx: Context) -> Wires:
        (y,) = wires
        return [backward(y, _by(box))]

    if log_det is None:
        return Op(apply, inverse=invert, volume_preserving=True)

    def per_example(x: Array, box: Box) -> Array:
        """``log|f'|`` times the elements of one example, for each example."""
        elements = int(np.prod(x.shape[1:], dtype=np.int64))
        return jnp.full((x.shape[0],), elements * log_det(_by(box)), jnp.float32)

    def apply_ld(module: Any, wires: Wires, box: Box, ctx: Context) -> tuple[Wires, Array]:
        (x,) = wires
        return [forward(x, _by(box))], per_example(x, box)

    def invert_ld(module: Any, wires: Wires, box: Box, ctx: Context) -> tuple[Wires, Array]:
        (y,) = wires
        return [backward(y, _by(box))], -per_example(y, box)

    return Op(apply, inverse=invert, forward_ld=apply_ld, inverse_ld=invert_ld)


OPS: dict[str, Op] = {
    "add": _binary(jnp.add),
    "sub": _binary(jnp.subtract),
    "mul": _binary(jnp.multiply),
    "div": _binary(jnp.divide),
    "neg": _unary(jnp.negative, jnp.negative, volume_preserving=True),  # |det| = 1
    "exp": _unary(jnp.exp),
    "log": _unary(jnp.log),
    "sqrt": _unary(jnp.sqrt),
    "square": _unary(jnp.square),
    "reciprocal": _unary(jnp.reciprocal),
    "softplus": _unary(jax.nn.softplus),
    "silu": _unary(jax.nn.silu),
    "swish": _unary(jax.nn.silu),
    # A Python float is weakly typed: `x * by` stays float32.
    "scale": _constant(lambda x, c: x * c, lambda y, c: y / c, lambda c: math.log(abs(c))),
    "shift": _constant(lambda x, c: x + c, lambda y, c: y - c),
}
