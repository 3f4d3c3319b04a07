"""Intrinsic dimension of a point cloud: TwoNN and the Levina–Bickel MLE.

Both estimators read only the distances from each point to its nearest
neighbours, so the work is one k-nearest-neighbour search, done by
:func:`nearest` in JAX in blocks of rows: a block's distances to every point
are one matrix product, so 10⁴ points in 10³ dimensions never hold more
than ``block × n`` distances at a time.

- :func:`twonn` (Facco, d'Errico, Rodriguez & Laio, *Sci. Rep.* 7, 2017):
  the ratio ``μ = r₂/r₁`` of each point's second to first neighbour
  distance is Pareto with exponent ``d``, so ``−log(1 − F(μ)) = d log μ``;
  ``d`` is the slope of a line through the origin fitted to the empirical
  distribution after discarding the largest ``discard`` fraction of ratios.
- :func:`mle` (Levina & Bickel, NeurIPS 2004, with the correction of MacKay
  & Ghahramani, 2005): each point's estimate is
  ``(k − 1) / Σ_{j<k} log(T_k/T_j)`` over its ``k`` neighbour distances
  ``T_j``, and the estimates are combined by averaging their *inverses*.

Both follow scikit-dimension's ``TwoNN()`` and ``MLE()`` with their default
settings, so the numbers agree with that reference (to float32 rounding of
the distances).

Conventions, chosen once for every estimator here:

- **Duplicates.** :func:`nearest` excludes each point itself by index, so an
  exact duplicate of a point is its neighbour at distance 0.  The estimators
  first collapse exact duplicate rows to one (a point set's dimension does
  not depend on multiplicities, and a zero distance would make ``μ`` or
  ``log(T_k/T_j)`` infinite); ``Estimate.n`` counts the distinct points.
- **Bootstrap.** :func:`estimate` resamples *points* with replacement and
  recomputes the estimate from the resampled points' own statistics
  (``μ`` for TwoNN, ``Σ log(T_k/T_j)`` for the MLE), measured once against
  the whole cloud.  So a point drawn twice counts twice but never becomes
  its own neighbour, and a resample is not a sparser cloud (which would bias
  every resample's estimate down, as a cloud of ~63% distinct points does).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from .errors import AnalysisError

#: Neighbour candidates found from the fast matrix-product distances beyond
#: the ``k`` asked for; their distances are then recomputed exactly from
#: differences, so a near-tie that float32 rounding misorders is repaired.
_EXTRA_CANDIDATES = 8

#: The estimators :func:`estimate` knows, by name.
METHODS = ("twonn", "mle")


@dataclass(frozen=True)
class Estimate:
    """An intrinsic-dimension estimate with bootstrap error bars.

    ``value`` is the estimate on all points; ``std`` the standard deviation
    of the bootstrap estimates; ``low``/``high`` their 5th and 95th
    percentiles (a 90% interval); ``n`` the number of distinct points;
    ``method`` the estimator's name.
    """

    value: float
    std: float
    low: float
    high: float
    n: int
    method: str


def nearest(x: np.ndarray, k: int, block: int = 1024, rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest neighbours of every row of ``x``, the row itself excluded.

    ``rows`` (indices into ``x``) asks about those rows only; their
    neighbours are still searched among all of ``x``.  Returns
    ``(distances, indices)``, both of shape ``(m, k)`` for the ``m`` rows
    asked about, sorted by distance; distances are Euclidean, computed in
    float32 (``float32`` array), indices are ``int64``.  A point's own index is never among its
    neighbours; an exact duplicate of it is, at distance 0 (see the module
    docstring for how the estimators treat that).  Rows are processed
    ``block`` at a time, so memory is ``O(block · n)`` whatever ``n`` is.
    """
    points = _as_points(x, least=2, what="a nearest-neighbour search")
    n = points.shape[0]
    if not isinstance(k, (int, np.integer)) or not 1 <= k < n:
        raise AnalysisError(f"cannot find k = {k} neighbours among {n} points: k must be a whole number between 1 and {n - 1}")
    if block < 1:
        raise AnalysisError(f"block must be a positive number of rows, not {block}")
    query = np.arange(n) if rows is None else np.asarray(rows, dtype=np.int64).reshape(-1)
    if query.size and not (0 <= query.min() and query.max() < n):
        raise AnalysisError(f"rows must index the {n} points (0..{n - 1})")
    # Centring first keeps the norms small, so the matrix-product distances
    # lose less to cancellation.
    centred = jnp.asarray(points - points.mean(axis=0), dtype=jnp.float32)
    candidates = min(n - 1, k + _EXTRA_CANDIDATES)
    asked = query.shape[0]
    block = max(1, min(block, asked))
    distances = np.empty((asked, k), dtype=np.float32)
    indices = np.empty((asked, k), dtype=np.int64)
    for start in range(0, asked, block):
        stop = min(start + block, asked)
        # The last block is padded to the full size so every block runs the
        # same compiled program; padded rows are dropped below.
        part = query[np.minimum(np.arange(start, start + block), asked - 1)]
        dist, idx = _block_nearest(centred, jnp.asarray(part), k=k, candidates=candidates)
        distances[start:stop] = np.asarray(dist)[: stop - start]
        indices[start:stop] = np.asarray(idx)[: stop - start]
    return distances, indices


@functools.partial(jax.jit, static_argnames=("k", "candidates"))
def _block_nearest(x: jax.Array, rows: jax.Array, *, k: int, candidates: int) -> tuple[jax.Array, jax.Array]:
    """The ``k`` nearest neighbours of the points ``x[rows]``, self excluded."""
    xb = x[rows]
    squared = jnp.sum(x * x, axis=1)
    gram = jnp.matmul(xb, x.T, precision=jax.lax.Precision.HIGHEST)
    d2 = squared[rows][:, None] + squared[None, :] - 2.0 * gram
    d2 = jnp.where(jnp.arange(x.shape[0])[None, :] == rows[:, None], jnp.inf, d2)
    _, cand = jax.lax.top_k(-d2, candidates)
    exact = jnp.sqrt(jnp.sum((x[cand] - xb[:, None, :]) ** 2, axis=-1))
    order = jnp.argsort(exact, axis=1)[:, :k]
    return jnp.take_along_axis(exact, order, axis=1), jnp.take_along_axis(cand, order, axis=1)


def twonn(x: np.ndarray, discard: float = 0.1) -> float:
    """The TwoNN intrinsic dimension of the rows of ``x`` (Facco et al. 2017).

    ``discard`` is the fraction of the largest ratios ``μ = r₂/r₁`` left out
    of the fit (they come from sparse regions and noise); the largest ratio
    is always left out, since ``F = 1`` there.
    """
    return _twonn_fit(_ratios(x, discard), discard)


def mle(x: np.ndarray, k: int = 20) -> float:
    """The Levina–Bickel MLE of the intrinsic dimension of the rows of ``x``.

    Uses ``k`` neighbours per point and combines the per-point estimates by
    averaging their inverses (MacKay & Ghahramani), as scikit-dimension's
    ``MLE()`` does by default.
    """
    return _mle_fit(_log_sums(x, k), k)


def estimate(x: np.ndarray, method: str = "twonn", bootstrap: int = 20, seed: int = 0, **options: float | int) -> Estimate:
    """An intrinsic-dimension estimate of the rows of ``x`` with bootstrap error bars.

    ``method`` is ``"twonn"`` (option ``discard``) or ``"mle"`` (option
    ``k``); ``bootstrap`` resamples (at least 2) give ``std`` and the 90%
    interval, drawn from a generator seeded with ``seed``.  The module
    docstring says how resampled duplicates are treated.
    """
    if method not in METHODS:
        raise AnalysisError(f"unknown intrinsic-dimension method {method!r}; choose one of {', '.join(METHODS)}")
    known = {"twonn": ("discard",), "mle": ("k",)}[method]
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise AnalysisError(f"{method} takes the option {known[0]!r}, not {', '.join(map(repr, unknown))}")
    if bootstrap < 2:
        raise AnalysisError(f"bootstrap needs at least 2 resamples to give error bars, not {bootstrap}")
    fit: Callable[[np.ndarray], float]
    if method == "twonn":
        discard = float(options.get("discard", 0.1))
        stats = _ratios(x, discard)
        fit = functools.partial(_twonn_fit, discard=discard)
    else:
        k = options.get("k", 20)
        stats = _log_sums(x, k)
        fit = functools.partial(_mle_fit, k=int(k))
    value = fit(stats)
    rng = np.random.default_rng(seed)
    n = stats.shape[0]
    resampled = np.array([fit(stats[rng.integers(0, n, size=n)]) for _ in range(bootstrap)])
    low, high = np.percentile(resampled, [5.0, 95.0])
    return Estimate(value, float(np.std(resampled, ddof=1)), float(low), float(high), n, method)


def _as_points(x: np.ndarray, least: int, what: str) -> np.ndarray:
    """``x`` as a float64 ``(n, D)`` array of finite values with ``n ≥ least`` rows."""
    try:
        points = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise AnalysisError(f"points must be a numeric array of shape (n, D): {error}") from None
    if points.ndim != 2 or points.shape[1] < 1:
        raise AnalysisError(f"points must be an array of shape (n, D), one point per row, not of shape {points.shape}")
    bad = int(np.size(points) - np.count_nonzero(np.isfinite(points)))
    if bad:
        rows = int(np.count_nonzero(~np.all(np.isfinite(points), axis=1)))
        raise AnalysisError(f"{bad} values in {rows} of the {points.shape[0]} points are NaN or infinite; drop those points first")
    if points.shape[0] < least:
        raise AnalysisError(f"{what} needs at least {least} points, got {points.shape[0]}")
    return points


def _distinct(x: np.ndarray, least: int, what: str) -> np.ndarray:
    """The distinct rows of ``x`` (exact duplicates collapsed), at least ``least`` of them."""
    points = _as_points(x, least=least, what=what)
    distinct = np.unique(points, axis=0)
    if distinct.shape[0] < least:
        raise AnalysisError(
            f"{what} needs at least {least} distinct points, got {distinct.shape[0]} "
            f"(of {points.shape[0]} points, {points.shape[0] - distinct.shape[0]} are exact duplicates)"
        )
    return distinct


def _kept(n: int, discard: float) -> int:
    """How many of ``n`` sorted ratios TwoNN fits: a ``discard`` fraction and the largest go."""
    return min(int(n * (1 - discard)), n - 1)


def _ratios(x: np.ndarray, discard: float) -> np.ndarray:
    """Each distinct point's ratio ``μ = r₂/r₁`` (float64, ``≥ 1``)."""
    if not 0.0 <= discard < 1.0:
        raise AnalysisError(f"discard is the fraction of ratios left out, between 0 and 1 (excluded), not {discard}")
    least = 3
    while _kept(least, discard) < 2:
        least += 1
    points = _distinct(x, least=least, what=f"TwoNN with discard = {discard}")
    distances, _ = nearest(points, 2)
    distances = distances.astype(np.float64)
    return distances[:, 1] / distances[:, 0]


def _twonn_fit(mu: np.ndarray, discard: float) -> float:
    """The slope through the origin of ``−log(1 − F(μ))`` against ``log μ``."""
    n = mu.shape[0]
    kept = _kept(n, discard)
    log_mu = np.log(np.sort(mu)[:kept])
    tail = -np.log1p(-np.arange(1, kept + 1) / n)
    denominator = float(np.dot(log_mu, log_mu))
    if denominator == 0.0:
        raise AnalysisError("every point's two nearest neighbours are equally far (all ratios r2/r1 are 1): TwoNN is undefined")
    return float(np.dot(log_mu, tail) / denominator)


def _log_sums(x: np.ndarray, k: int) -> np.ndarray:
    """Each distinct point's ``Σ_{j<k} log(T_k/T_j)`` over its ``k`` neighbour distances."""
    if not isinstance(k, (int, np.integer)) or k < 2:
        raise AnalysisError(f"the MLE needs a whole number k ≥ 2 of neighbours per point, not k = {k}")
    points = _distinct(x, least=k + 1, what=f"the MLE with k = {k}")
    distances, _ = nearest(points, k)
    log_t = np.log(distances.astype(np.float64))
    return np.sum(log_t[:, -1:] - log_t[:, :-1], axis=1)


def _mle_fit(sums: np.ndarray, k: int) -> float:
    """``1 / mean(1/m_i)`` with ``m_i = (k − 1)/sums_i``, that is ``(k − 1)/mean(sums)``."""
    mean = float(np.mean(sums))
    if mean == 0.0:
        raise AnalysisError(f"every point's {k} nearest neighbours are equally far: the MLE is undefined")
    return (k - 1) / mean
