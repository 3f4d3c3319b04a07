"""A catnet plugin whose implementation lives in a module of its own.

    affine_norm : R[…, d] -> R[…, d]     y = x * exp(s) + b,  invertible

A learned per-feature affine map (like Glow's "actnorm", initialised to the
identity rather than from the first batch; the built-in flows family has
its own `actnorm`, so this one has another name).  This module is the
checker's half and needs no JAX; ``affine_norm_jax`` imports JAX at its top
and is named by ``lowering=``, so it is imported only when a model is
built.  It gives its log-determinant too (``forward_ld``, ``inverse_ld``),
so a flow using it trains by likelihood.  Registration is a function, as an
entry point may name one (``affine_norm = "affine_norm:register"``).
"""

from catnet import extend


def rule(ctx, dom, args):
    (x,) = dom.obs
    if x.base != "R" or not x.shape:
        ctx.fail(f"`affine_norm` takes a real wire R[…, d], but its input is {x}")
    return dom


def count(box, size):
    return 2 * size(box.dom.obs[0].shape[-1])  # log-scale and shift


def register():
    extend.generator("affine_norm", rule, iso=True, count=count, lowering="affine_norm_jax",
                     doc="learned per-feature affine map (invertible)")
