"""Normalizing flows: likelihoods and samples of isomorphisms (see ``docs/language.md`` §11.10).

A *flow* is a compiled morphism ``X -> X`` on one real wire whose boxes are
all isomorphisms; it is read as a change of variables onto the standard
Gaussian, so

``log p(x) = log N(f(x); 0, I) + log|det ∂f/∂x|``

and training minimizes :func:`nll`, the negative of that, per example
(``catnet train --loss nll``, chosen automatically for a flow).  Sampling
inverts the flow on Gaussian noise (:func:`sample`).  The wire may have any
shape (an image ``R[8, 8, 1]`` too): the prior is over all its coordinates.

This package's ``__init__`` does not import JAX at import time: the checker
imports :mod:`catnet.flows.priors` (through this package) to validate a
fiber prior without loading it.
"""

from __future__ import annotations

import math
from typing import Any

#: ``ln 2``: nats per bit.
LN2 = math.log(2.0)


def dimension(model: Any) -> int:
    """The number of coordinates of a flow's one wire (the ``D`` of bits per dimension)."""
    (ob,) = model.dom.obs
    return int(math.prod(int(d) for d in ob.shape))


def nll(model: Any, x: Any) -> Any:
    """The negative log-likelihood of each example under a flow onto the standard Gaussian, shape ``(batch,)``, in nats.

    ``model`` is a compiled flow ``X -> X`` (every box an isomorphism; one
    that is not is E0401 at its first non-invertible box) and ``x`` a batch
    of inputs, batch first.  ``-(log N(f(x); 0, I) + log|det J|)``.
    """
    from .priors import get

    z, ld = model.forward_log_det(x)
    z = z.reshape(z.shape[0], -1).astype("float32")  # the density in float32, whatever the model computes in
    return -(get("normal", int(z.shape[1])).log_prob(z) + ld)


def bits_per_dim(nll_nats: float, dim: int, levels: int | None = None) -> float:
    """Bits per dimension of a mean NLL in nats over ``dim`` coordinates.

    ``levels``: the data were dequantized from ``levels`` grey levels
    scaled to ``[0, 1)`` (``x = (level + u) / levels``); the density of the
    discrete data is then bounded by adding ``log2(levels)`` per coordinate,
    the volume of one quantization cell (Theis et al., 2016).
    """
    bpd = nll_nats / (dim * LN2)
    return bpd + (math.log2(levels) if levels else 0.0)


def sample(model: Any, n: int, key: Any) -> Any:
    """``n`` samples of a flow: standard Gaussian noise ``z`` mapped by the inverse, shape ``(n, *X)``.

    Drawn in evaluation mode (the model's mode is restored afterwards); the
    same ``key`` gives the same samples.  A morphism that is not an
    isomorphism is E0401 at its first non-invertible box.
    """
    import jax

    (ob,) = model.dom.obs
    shape = tuple(int(d) for d in ob.shape)
    z = jax.random.normal(key, (int(n),) + shape)
    training = not model.deterministic
    model.eval()
    try:
        return model.inverse(z)
    finally:
        if training:
            model.train()


__all__ = ["bits_per_dim", "dimension", "nll", "sample"]
