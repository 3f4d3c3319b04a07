"""A catnet plugin whose implementation lives in a module of its own.

    actnorm : R[…, d] -> R[…, d]     y = x * exp(s) + b,  invertible

A learned per-feature affine map (Glow's "actnorm", initialised to the
identity rather than from the first batch).  This module is the checker's
half and needs no JAX; ``actnorm_jax`` imports JAX at its top and is
named by ``lowering=``, so it is imported only when a model is built.
Registration is a function, as an entry point may name one
(``actnorm = "actnorm:register"``).
"""

from catnet import extend


def rule(ctx, dom, args):
    (x,) = dom.obs
    if x.base != "R" or not x.shape:
        ctx.fail(f"`actnorm` takes a real wire R[…, d], but its input is {x}")
    return dom


def count(box, size):
    return 2 * size(box.dom.obs[0].shape[-1])  # log-scale and shift


def register():
    extend.generator("actnorm", rule, iso=True, count=count, lowering="actnorm_jax",
                     doc="learned per-feature affine map (invertible)")
