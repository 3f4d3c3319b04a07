"""Curvature of a data manifold, estimated point by point from a point cloud.

The method is local quadratic fitting of the second fundamental form, as in
Sritharan, Wang & Hormoz, "Computing the Riemannian curvature of image patch
and single-cell RNA sequencing data manifolds using extrinsic differential
geometry" (PNAS 118, 2021), and, for surfaces, Cazals & Pouget's osculating
jets (2005).  Near a point ``p`` a ``d``-manifold in ``R^D`` is the graph of
its second fundamental form ``II`` over the tangent space:

    ``x(u) = p + u + ½ II(u, u) + O(|u|³)``,   ``u`` tangent, ``II(u, u)`` normal.

So, for each point and its ``k`` nearest neighbours:

1. the tangent space is spanned by the top ``d`` principal directions of
   the neighbours (local PCA, Kambhatla & Leen 1997);
2. each neighbour's offset ``x_j − p`` splits into tangent coordinates
   ``u_j`` and a normal residual ``r_j``;
3. ``r_j`` is fitted by least squares with a constant, linear and quadratic
   terms in ``u_j`` (the constant absorbs noise at ``p`` itself, the linear
   terms a slightly tilted tangent estimate); the quadratic coefficients
   are ``II``, one normal vector per pair of tangent directions.

The number reported per point is the root mean square of the principal
curvatures, ``|II|_F / √d`` (the Frobenius norm over an orthonormal tangent
basis): ``1/R`` on a sphere of radius ``R`` of any dimension, 0 on a flat
piece, ``κ/√2`` on a cylinder of curvature ``κ``.  Unlike the mean
curvature it does not cancel on saddles, so it answers "how curved is the
data here"; it is extrinsic (it depends on the embedding), as every
curvature read off one point cloud without a metric is.

Bias and noise: the fit sees the manifold at the scale of the neighbourhood,
so terms of order ``|u|²/R²`` bias it (a few percent when the neighbours
span a fifth of the radius); noise of size ``σ`` normal to the manifold adds
a floor of order ``σ/ρ²`` for a neighbourhood of radius ``ρ``.  More points
shrink ``ρ`` and the bias, and raise the floor; ``k`` trades the two.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from .errors import AnalysisError
from .intrinsic import _as_points, nearest

#: Steps of subspace iteration for the tangent space: the error shrinks by
#: (λ_{d+1}/λ_d)^steps, and that ratio of normal to tangent variance is
#: below 1/2 wherever a curvature can be read at all.
_SUBSPACE_STEPS = 30

#: About how many numbers one block of neighbourhoods may hold (``block · k · D``):
#: 2²⁵ float32 numbers, 128 MiB per array, whatever the wire's width.
BLOCK_NUMBERS = 2**25


@dataclass(frozen=True)
class Curvature:
    """Per-point curvature estimates and their summary.

    ``values`` holds the root-mean-square principal curvature at each point
    estimated at (every point, or those of ``at``, in that order: a float64
    array in inverse units of the data); ``median`` and
    ``mean`` summarize it, ``low``/``high`` are its 5th and 95th
    percentiles; ``d`` and ``k`` are the manifold dimension and the number
    of neighbours used.
    """

    values: np.ndarray
    median: float
    mean: float
    low: float
    high: float
    d: int
    k: int


def default_neighbours(d: int) -> int:
    """The ``k`` :func:`local_curvature` uses for a ``d``-manifold unless told.

    The local fit has ``1 + d + d(d+1)/2`` coefficients per normal
    direction; three neighbours per coefficient (at least 20) keep it
    well-determined without spreading the neighbourhood further than needed.
    """
    return max(20, 3 * _features(d))


def local_curvature(
    x: np.ndarray, d: int, k: int | None = None, block: int | None = None, at: np.ndarray | None = None
) -> Curvature:
    """The curvature of the ``d``-manifold the rows of ``x`` sample, at every point.

    ``k`` neighbours per point (default :func:`default_neighbours`) give
    each point's estimate.  ``at`` (indices into ``x``) estimates at those
    points only, their neighbours still drawn from all of ``x``: a sample of
    base points costs a fraction of the whole and, with more points around
    them, sees a smaller neighbourhood.  ``block`` points are fitted at a
    time; by default as many as keep ``block · k · D`` numbers near
    :data:`BLOCK_NUMBERS`.
    """
    points = _as_points(x, least=2, what="a curvature estimate")
    n, ambient = points.shape
    if not isinstance(d, (int, np.integer)) or not 1 <= d < ambient:
        raise AnalysisError(f"the manifold dimension d must be a whole number between 1 and D - 1 = {ambient - 1} (the points live in R^{ambient}), not {d}")
    k = default_neighbours(d) if k is None else k
    if k < _features(d):
        raise AnalysisError(f"a {d}-manifold's local quadratic fit has {_features(d)} coefficients, so it needs k ≥ {_features(d)} neighbours, not k = {k}")
    if k >= n:
        raise AnalysisError(f"a curvature estimate with k = {k} neighbours needs more than {k} points, got {n}")
    base = np.arange(n) if at is None else np.asarray(at, dtype=np.int64).reshape(-1)
    if base.size == 0:
        raise AnalysisError("a curvature estimate needs at least one point to estimate at (`at` is empty)")
    if block is None:
        block = max(1, min(1024, BLOCK_NUMBERS // (k * ambient)))
    _, neighbours = nearest(points, k, rows=base)
    centred = jnp.asarray(points - points.mean(axis=0), dtype=jnp.float32)
    m = base.shape[0]
    values = np.empty(m, dtype=np.float64)
    block = min(block, m)
    for start in range(0, m, block):
        stop = min(start + block, m)
        pad = np.minimum(np.arange(start, start + block), m - 1)
        result = _block_curvature(centred, jnp.asarray(base[pad]), jnp.asarray(neighbours[pad]), d=d)
        values[start:stop] = np.asarray(result, dtype=np.float64)[: stop - start]
    low, high = np.percentile(values, [5.0, 95.0])
    return Curvature(values, float(np.median(values)), float(np.mean(values)), float(low), float(high), d, k)


def _features(d: int) -> int:
    """The number of monomials of degree ≤ 2 in ``d`` variables."""
    return 1 + d + d * (d + 1) // 2


@functools.partial(jax.jit, static_argnames=("d",))
def _block_curvature(x: jax.Array, rows: jax.Array, neighbours: jax.Array, *, d: int) -> jax.Array:
    """The RMS principal curvature at each point ``x[rows]`` from its ``neighbours``."""
    # Accelerators multiply float32 in reduced precision by default, which
    # would swamp normal residuals of order ρ²/R.
    with jax.default_matmul_precision("highest"):
        return jax.vmap(functools.partial(_point_curvature, d=d))(x[rows], x[neighbours])


def _point_curvature(p: jax.Array, near: jax.Array, *, d: int) -> jax.Array:
    """``|II|_F / √d`` at ``p`` from a quadratic fit to its neighbours ``near`` (k, D)."""
    offsets = near - p[None, :]
    # Local PCA about the neighbours' mean (a constant offset, noise at p,
    # must not pass for a tangent direction).  Only the span of the top d
    # principal directions is needed, so subspace iteration on the k × k
    # Gram matrix finds it: XLA's batched SVD and eigh take seconds per
    # block once k passes ~40, and the tangent/normal variance gap makes
    # the iteration converge in a few steps.
    spread = offsets - offsets.mean(axis=0, keepdims=True)
    gram = spread @ spread.T
    start = jnp.asarray(np.random.default_rng(0).standard_normal((gram.shape[0], d)), gram.dtype)
    top = jax.lax.fori_loop(0, _SUBSPACE_STEPS, lambda _, q: jnp.linalg.qr(gram @ q)[0], jnp.linalg.qr(start)[0])
    tangent = jnp.linalg.qr(spread.T @ top)[0].T
    u = offsets @ tangent.T
    residual = offsets - u @ tangent
    # Fit in units of the neighbourhood's size, so the design is well scaled.
    scale = jnp.max(jnp.abs(u)) + jnp.finfo(u.dtype).tiny
    v = u / scale
    a, b = np.triu_indices(d)
    design = jnp.concatenate([jnp.ones((v.shape[0], 1), v.dtype), v, v[:, a] * v[:, b]], axis=1)
    coefficients = jnp.linalg.pinv(design) @ residual
    quadratic = coefficients[1 + d :] / scale**2
    # r ≈ ½ II(u, u): II_aa = 2 c_aa on the diagonal, II_ab = c_ab off it,
    # and each off-diagonal entry appears twice in the Frobenius norm.
    weights = jnp.asarray(np.where(a == b, 4.0, 2.0), quadratic.dtype)
    return jnp.sqrt(jnp.sum(weights * jnp.sum(quadratic**2, axis=1)) / d)
