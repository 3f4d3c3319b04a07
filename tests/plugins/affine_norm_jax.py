"""The JAX half of the ``affine_norm`` plugin (see ``affine_norm.py``)."""

import math

import jax.numpy as jnp
from flax import nnx


class AffineNorm(nnx.Module):
    def __init__(self, features: int) -> None:
        self.log_scale = nnx.Param(jnp.zeros((features,)))
        self.shift = nnx.Param(jnp.zeros((features,)))

    def scale_shift(self, x):
        """Log-scale and shift shaped to broadcast against ``x`` (batch and leading axes first)."""
        shape = (1,) * (x.ndim - 1) + (-1,)
        return self.log_scale[...].reshape(shape), self.shift[...].reshape(shape)


def make(box, rngs):
    return AffineNorm(box.dom.obs[0].shape[-1])


def apply(module, wires, box, ctx):
    (x,) = wires
    s, b = module.scale_shift(x)
    return [x * jnp.exp(s) + b]


def inverse(module, wires, box, ctx):
    (y,) = wires
    s, b = module.scale_shift(y)
    return [(y - b) * jnp.exp(-s)]


# The log-determinants, so that a flow using `affine_norm` trains by likelihood: each
# position (the axes before the last) scales by exp(log_scale), for every example alike.


def log_det(module, x):
    positions = math.prod(x.shape[1:-1])
    return jnp.full((x.shape[0],), positions * jnp.sum(module.log_scale[...]))


def forward_ld(module, wires, box, ctx):
    return apply(module, wires, box, ctx), log_det(module, wires[0])


def inverse_ld(module, wires, box, ctx):
    return inverse(module, wires, box, ctx), -log_det(module, wires[0])
