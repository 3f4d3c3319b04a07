"""The bundle training objective: base regression plus the fiber's likelihood.

A trivialization ``E -> B ⊗ F`` is trained on pairs ``(x, b)`` of total-space
points and their base points.  Per example the loss is

``0.5 * |b̂ - b|² / BASE_STD² - log p_F(z) - log|det J|``

with ``(b̂, z)`` the trivialization of ``x`` in the chart of the true base
``b`` (``condition=b``) and ``p_F`` the fiber prior named by the ``triv``
(``prior="circle"``).  Read as a likelihood, it is the density of ``x``
under the flow when the base coordinate is ``N(b, BASE_STD²)``: the base
half must reproduce the projection to within about ``BASE_STD``, and the
fiber half must carry the data over ``b`` onto the prior, so that sampling
the prior and inverting gives the fiber (Courts & Kvinge, Bundle Networks,
2022; their extra terms, the base and fiber MMD, were not needed here).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from ..flows import priors
from ..ir import Box, Diagram

#: How closely the base half must reproduce the true base point.
BASE_STD = 0.05


def triv_box(diagram: Diagram) -> Box:
    """The first ``triv`` generator box of ``diagram`` (descending into definitions); ``ValueError`` if none."""
    for box in diagram.all_boxes():
        if box.name == "triv" and box.kind in ("generator", "structural"):
            return box
    raise ValueError("this morphism has no trivialization (`triv`): it is not trained by the bundle objective")


def prior_of(diagram: Diagram) -> priors.Prior:
    """The fiber prior of the first ``triv`` in ``diagram`` (its ``prior`` argument; ``"normal"`` by default)."""
    box = triv_box(diagram)
    ob = box.dom.obs[0]
    assert ob.fiber is not None
    (fiber,) = ob.fiber.obs
    return priors.get(str(box.kwargs.get("prior", "normal")), int(fiber.shape[0]))  # type: ignore[arg-type]


def per_example(model: Any, x: jax.Array, b: jax.Array) -> jax.Array:
    """The bundle objective of each example, shape ``(batch,)``, for a compiled ``E -> B ⊗ F``."""
    prior = prior_of(model.diagram)
    (b_hat, z), ld = model.forward_log_det(x, condition=b)
    # the objective in float32, whatever the model computes in
    b_hat, z, b = b_hat.astype(jnp.float32), z.astype(jnp.float32), jnp.asarray(b, jnp.float32)
    base = 0.5 * jnp.sum((b_hat - b) ** 2, axis=-1) / BASE_STD**2
    return base - prior.log_prob(z) - ld
