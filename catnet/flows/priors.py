"""Fiber priors: the distributions a trivialization maps each fiber onto.

A flow onto a prior is trained by the likelihood of its output under the
prior, and sampled by drawing from the prior and inverting the flow; so a
prior is two functions, ``log_prob(z) -> (batch,)`` and ``sample(key, n)
-> (n, dim)``, and the prior must be a proper density in the coordinates
the flow writes (Cartesian), or the likelihood would be wrong by a Jacobian.

* ``"normal"``: the standard Gaussian on ``R[dim]``.
* ``"circle"`` (``dim`` 2): the angle uniform and the radius ``r ~ N(1,
  0.1²)`` truncated to ``r > 0``.  In Cartesian coordinates the density is
  ``p_r(r) / (2π r)`` (the polar Jacobian ``r`` divided out), which is what
  :func:`get` returns.  A fiber that is a circle (the tube of a torus) then
  needs no topology the flow cannot make: it only has to bend the circle
  onto the unit circle.
* ``"circle_interval"`` (``dim`` 3): the circle in the first two
  coordinates times an "interval" in the third: the uniform distribution on
  ``[-1, 1]`` smoothed by logistic noise of scale ``INTERVAL_SCALE``
  (0.05), whose density is exactly ``(σ((t+1)/s) − σ((t−1)/s)) / 2``, a
  cylinder as in Courts & Kvinge (Bundle Networks, 2022).

This module imports JAX only inside the functions that compute: the
checker calls :func:`fiber_dim_ok` to report a wrong fiber size (E0318)
without loading JAX.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover - typing only
    import jax

#: The prior names ``triv(prior=...)`` accepts.
NAMES: tuple[str, ...] = ("normal", "circle", "circle_interval")

#: The fiber size each prior needs (``None``: any size).
DIMS: dict[str, int | None] = {"normal": None, "circle": 2, "circle_interval": 3}

#: The circle prior's radius: ``N(RADIUS, RADIUS_STD²)`` truncated to ``r > 0``.
RADIUS = 1.0
RADIUS_STD = 0.1
#: The logistic smoothing of the interval prior's edges.
INTERVAL_SCALE = 0.05

_LOG_2PI = math.log(2.0 * math.pi)
# log P(r > 0) under N(RADIUS, RADIUS_STD²): the truncation's normalizer
# (about -8e-24 for the defaults, kept for exactness).
_LOG_TRUNC = math.log(0.5 * math.erfc(-RADIUS / (RADIUS_STD * math.sqrt(2.0))))
# The smallest radius the density is evaluated at: the Cartesian density
# p_r(r) / (2π r) is integrable but unbounded at the origin, and a flow must
# not be able to buy likelihood by sending points there.
_R_MIN = 1e-6


@dataclass(frozen=True)
class Prior:
    """A fiber prior on ``R[dim]``: ``log_prob(z) -> (batch,)``, ``sample(key, n) -> (n, dim)``."""

    name: str
    dim: int
    log_prob: Callable[[jax.Array], jax.Array]
    sample: Callable[[jax.Array, int], jax.Array]


def fiber_dim_ok(name: str, dim: int) -> str | None:
    """``None`` if prior ``name`` fits a fiber ``R[dim]``, else a message saying why not."""
    if name not in DIMS:
        return f"there is no fiber prior named {name!r}; the priors are {', '.join(repr(n) for n in NAMES)}"
    need = DIMS[name]
    if need is not None and dim != need:
        what = "a circle in the plane" if name == "circle" else "a circle times an interval"
        return f"the prior {name!r} is {what}, on fibers R[{need}], but the fiber is R[{dim}]"
    if dim < 1:
        return f"a fiber prior needs at least one dimension, but the fiber is R[{dim}]"
    return None


def get(name: str, dim: int) -> Prior:
    """The prior ``name`` on fibers ``R[dim]`` (``ValueError`` with :func:`fiber_dim_ok`'s message if it does not fit)."""
    problem = fiber_dim_ok(name, dim)
    if problem is not None:
        raise ValueError(problem)
    if name == "normal":
        return Prior(name, dim, _normal_log_prob, lambda key, n: _normal_sample(key, n, dim))
    if name == "circle":
        return Prior(name, dim, _circle_log_prob, _circle_sample)
    return Prior(name, dim, _circle_interval_log_prob, _circle_interval_sample)


def coordinate_std(name: str, dim: int) -> tuple[float, ...]:
    """The standard deviation of each coordinate under prior ``name`` on ``R[dim]`` (exact, no sampling).

    A trivialization's charts start by scaling the fiber's principal
    directions to these (``catnet.bundles.charts.fit``).
    """
    if name == "normal":
        return (1.0,) * dim
    circle = math.sqrt((RADIUS**2 + RADIUS_STD**2) / 2.0)
    if name == "circle":
        return (circle, circle)
    # uniform on [-1, 1] (variance 1/3) plus logistic noise (variance π² s² / 3)
    return (circle, circle, math.sqrt(1.0 / 3.0 + (math.pi * INTERVAL_SCALE) ** 2 / 3.0))


# -- the densities ------------------------------------------------------------------


def _normal_log_prob(z: jax.Array) -> jax.Array:
    import jax.numpy as jnp

    d = z.shape[-1]
    return -0.5 * jnp.sum(z * z, axis=-1) - 0.5 * d * _LOG_2PI


def _normal_sample(key: jax.Array, n: int, dim: int) -> jax.Array:
    import jax

    return jax.random.normal(key, (n, dim), dtype="float32")


def _circle_log_prob(z: jax.Array) -> jax.Array:
    """``log p_r(r) − log(2π r)`` with ``r = |z|``: the circle prior in Cartesian coordinates."""
    import jax.numpy as jnp

    r = jnp.sqrt(jnp.sum(z * z, axis=-1) + _R_MIN**2)
    u = (r - RADIUS) / RADIUS_STD
    log_pr = -0.5 * u * u - math.log(RADIUS_STD) - 0.5 * _LOG_2PI - _LOG_TRUNC
    return log_pr - _LOG_2PI - jnp.log(r)


def _circle_sample(key: jax.Array, n: int) -> jax.Array:
    import jax
    import jax.numpy as jnp

    ka, kr = jax.random.split(key)
    angle = jax.random.uniform(ka, (n,), minval=0.0, maxval=2.0 * math.pi)
    # Truncation to r > 0 by resampling is never needed in practice (P(r <= 0)
    # is 1e-23); a normal truncated by its own bound keeps it exact.
    low = -RADIUS / RADIUS_STD
    r = RADIUS + RADIUS_STD * jax.random.truncated_normal(kr, low, jnp.inf, (n,))
    return jnp.stack([r * jnp.cos(angle), r * jnp.sin(angle)], axis=-1).astype(jnp.float32)


def _interval_log_prob(t: jax.Array) -> jax.Array:
    """``log((σ((t+1)/s) − σ((t−1)/s)) / 2)``, written so that it never subtracts two small numbers.

    With ``a = (t+1)/s`` and ``b = (t−1)/s``: ``σ(a) − σ(b) = σ(a) σ(−b) (1 − e^{b−a})``
    and ``b − a = −2/s`` is a constant.
    """
    import jax
    import jax.numpy as jnp

    s = INTERVAL_SCALE
    a, b = (t + 1.0) / s, (t - 1.0) / s
    return jax.nn.log_sigmoid(a) + jax.nn.log_sigmoid(-b) + jnp.log1p(-math.exp(-2.0 / s)) - math.log(2.0)


def _circle_interval_log_prob(z: jax.Array) -> jax.Array:
    return _circle_log_prob(z[..., :2]) + _interval_log_prob(z[..., 2])


def _circle_interval_sample(key: jax.Array, n: int) -> jax.Array:
    import jax
    import jax.numpy as jnp

    kc, ku, kl = jax.random.split(key, 3)
    # Uniform on [-1, 1] plus logistic noise of scale s: exactly the smoothed interval.
    t = jax.random.uniform(ku, (n,), minval=-1.0, maxval=1.0) + INTERVAL_SCALE * jax.random.logistic(kl, (n,))
    return jnp.concatenate([_circle_sample(kc, n), t[:, None].astype(jnp.float32)], axis=-1)
