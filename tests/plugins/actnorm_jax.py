"""The JAX half of the ``actnorm`` plugin (see ``actnorm.py``)."""

import jax.numpy as jnp
from flax import nnx


class ActNorm(nnx.Module):
    def __init__(self, features: int) -> None:
        self.log_scale = nnx.Param(jnp.zeros((features,)))
        self.shift = nnx.Param(jnp.zeros((features,)))

    def scale_shift(self, x):
        """Log-scale and shift shaped to broadcast against ``x`` (batch and leading axes first)."""
        shape = (1,) * (x.ndim - 1) + (-1,)
        return self.log_scale[...].reshape(shape), self.shift[...].reshape(shape)


def make(box, rngs):
    return ActNorm(box.dom.obs[0].shape[-1])


def apply(module, wires, box, ctx):
    (x,) = wires
    s, b = module.scale_shift(x)
    return [x * jnp.exp(s) + b]


def inverse(module, wires, box, ctx):
    (y,) = wires
    s, b = module.scale_shift(y)
    return [(y - b) * jnp.exp(-s)]
