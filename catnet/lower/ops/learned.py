"""The lowering of the ``learned`` family (``catnet.library.learned``).

``learned`` is a module with one ``nnx.Param`` called ``value`` (so the
state reads ``cls.value`` or ``learned.value``), broadcast over the batch
without copying.  ``noise`` draws from the context's key in training mode
and returns zeros, the mean of both its distributions, in evaluation mode.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from ...ir import Box
from . import Array, Context, Op, Wires, _int


class Learned(nnx.Module):
    """A trainable tensor of one example, ``value``, initialized by name."""

    def __init__(self, shape: tuple[int, ...], init: str, scale: float, *, rngs: nnx.Rngs) -> None:
        self.value = nnx.Param(_initial(shape, init, scale, rngs))


def _initial(shape: tuple[int, ...], init: str, scale: float, rngs: nnx.Rngs) -> Array:
    if init == "zeros":
        return jnp.zeros(shape, jnp.float32)
    if init == "ones":
        return jnp.ones(shape, jnp.float32)
    if init == "constant":
        return jnp.full(shape, scale, jnp.float32)
    key = rngs.params()
    if init == "normal":
        return scale * jax.random.normal(key, shape, jnp.float32)
    if init == "trunc_normal":
        return scale * jax.random.truncated_normal(key, -2.0, 2.0, shape, jnp.float32)
    assert init == "uniform", init
    return jax.random.uniform(key, shape, jnp.float32, -scale, scale)


def _make_learned(box: Box, rngs: nnx.Rngs) -> nnx.Module:
    shape = tuple(_int(d) for d in box.kwargs["shape"])  # type: ignore[union-attr]
    return Learned(shape, str(box.kwargs["init"]), float(box.kwargs["scale"]), rngs=rngs)  # type: ignore[arg-type]


def _apply_learned(module: Any, wires: Wires, box: Box, ctx: Context) -> Wires:
    value = module.value[...]
    return [jnp.broadcast_to(value, (ctx.batch,) + value.shape)]


def _apply_noise(module: Any, wires: Wires, box: Box, ctx: Context) -> Wires:
    (x,) = wires
    if not ctx.train:
        return [jnp.zeros_like(x)]
    scale = float(box.kwargs["scale"])  # type: ignore[arg-type]
    if box.kwargs["dist"] == "normal":
        return [scale * jax.random.normal(ctx.key(), x.shape, x.dtype)]
    return [jax.random.uniform(ctx.key(), x.shape, x.dtype, -scale, scale)]


OPS: dict[str, Op] = {
    "learned": Op(_apply_learned, _make_learned),
    "noise": Op(_apply_noise, random=True),
}
