"""Charts of a trivialization: centres in the base, fitted by k-means, and its parameter count.

A bundle's trivialization is one coupling flow conditioned on a chart (a
one-hot code), and the charts are clusters of the base, as in Courts &
Kvinge (Bundle Networks, ICLR 2022): a torus has no single global chart of
the tube circle's angle that a smooth flow could learn, but each arc of the
core circle has one.  The centres are a non-trainable variable of the
module (``catnet.lower.ops.bundles.ChartCentres``); :func:`fit` sets them
from the training base points before training, so the same seed gives the
same charts.

This module imports JAX and Flax only inside :func:`fit`: the checker's
parameter count (:func:`count_triv`) must not load them.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def coupling_halves(m: int) -> tuple[int, int]:
    """A coupling on ``R[m]``: ``(conditioning size, transformed size)``."""
    a = m // 2
    return a, m - a


def count_triv(charts: int, depth: int, hidden: int, m: int, base_dim: int) -> int:
    """Trainable parameters of one trivialization ``triv(charts, depth, hidden)`` on ``R[m]``.

    An affine frame per chart on ``R[m]`` (an LU-factored matrix in one
    ``m × m`` array, and a shift: ``charts · (m² + m)``) and
    ``depth`` couplings, each with a conditioner MLP from the conditioning
    half and the one-hot chart through two hidden layers of ``hidden`` to a
    log-scale and shift of the transformed half.  The chart centres are not
    trained and are not counted.  ``base_dim`` does not enter the count (the
    split into base and fiber is after the flow) but is part of the
    signature so that a later layout may use it.
    """
    del base_dim
    a, r = coupling_halves(m)
    per_layer = (a + charts) * hidden + hidden + hidden * hidden + hidden + hidden * 2 * r + 2 * r
    return charts * (m * m + m) + depth * per_layer


def kmeans(points: np.ndarray, k: int, seed: int) -> np.ndarray:
    """``k`` centres of ``points`` (``(N, d)``) by k-means (scikit-learn, k-means++ start, seeded).

    Fewer distinct points than ``k`` give repeated centres rather than an
    error: a chart that is never nearest is simply never used.
    """
    from sklearn.cluster import KMeans

    x = np.asarray(points, dtype=np.float64)
    if x.ndim != 2 or len(x) == 0:
        raise ValueError(f"chart centres are fitted to base points of shape (N, d), not {x.shape}")
    distinct = len(np.unique(x, axis=0))
    if distinct < k:
        base = np.unique(x, axis=0)
        return base[np.arange(k) % distinct].astype(np.float32)
    km = KMeans(n_clusters=k, n_init=4, random_state=seed).fit(x)
    centres = km.cluster_centers_
    # Sorted lexicographically so that chart numbers do not depend on
    # scikit-learn's internal order (the same seed gives the same charts anyway).
    order = np.lexsort(centres.T[::-1])
    return centres[order].astype(np.float32)


def local_frame(x: np.ndarray, b: np.ndarray, target_std: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The linear trivialization of one chart's points: ``(A, t)`` with ``A x + t ≈ (b, z)``.

    ``x`` are the chart's (padded) total-space points ``(N, m)``, ``b`` their
    base points ``(N, k)``.  What of ``x`` the base does not explain (the
    residual of regressing ``x`` on ``b``) has ``m - k`` principal
    directions: they become the fiber coordinates, scaled to the prior's
    ``target_std``.  The other ``k`` directions are mapped onto the base
    points by least squares (its singular values floored at a tenth of the
    largest, so the frame stays invertible where the base varies in fewer
    directions than it has, as an arc of a circle does).

    This is what makes a circle fiber trainable: started at the identity,
    a flow sees the tube of a torus flattened onto a segment (a map of
    winding number 0 around the prior's circle), and no small step can
    unfold it, since the loop would have to cross the prior's hole.
    """
    x = np.asarray(x, np.float64)
    b = np.asarray(b, np.float64)
    n, m = x.shape
    k = b.shape[1]
    mu, b_bar = x.mean(axis=0), b.mean(axis=0)
    xc, bc = x - mu, b - b_bar
    ridge = 1e-6 * (np.trace(bc.T @ bc) / max(k, 1) + 1e-12)
    g = np.linalg.solve(bc.T @ bc + ridge * np.eye(k), bc.T @ xc)  # (k, m): x explained by b
    resid = xc - bc @ g
    values, vectors = np.linalg.eigh(resid.T @ resid / n)  # ascending
    fiber_vecs = vectors[:, k:][:, ::-1]  # (m, m - k), largest first
    fiber_std = np.sqrt(np.maximum(values[k:][::-1], 1e-8))
    rest = vectors[:, :k]  # (m, k): the complement, orthonormal
    u = xc @ rest
    kmat, *_ = np.linalg.lstsq(u, bc, rcond=None)  # (k, k): b - b̄ ≈ u K
    left, sing, right = np.linalg.svd(kmat)
    top = sing.max() if sing.size and sing.max() > 1e-12 else 1.0
    kmat = left @ np.diag(np.maximum(sing, 0.1 * top)) @ right
    a = np.concatenate([(rest @ kmat).T, (fiber_vecs * (np.asarray(target_std) / fiber_std)).T], axis=0)
    t = np.concatenate([b_bar, np.zeros(m - k)]) - a @ mu
    return a.astype(np.float32), t.astype(np.float32)


def fit(model: Any, base_points: np.ndarray, seed: int, points: np.ndarray | None = None,
        centres: np.ndarray | None = None) -> int:
    """Set the charts of every trivialization in ``model`` from its training data.

    The centres (each ``ChartCentres`` variable: one per bundle, the shared
    trivialization) are k-means centres of ``base_points``, or ``centres``
    when given (``(charts, dim B)``: charts chosen by hand).  With the
    total-space ``points`` too (``(N, n)``, paired with ``base_points``),
    each chart's affine frame starts at the chart's linear trivialization
    (:func:`local_frame`) of the points nearest its centre, padded and
    noised as in training; charts with fewer than ``m + 1`` points keep the
    identity.  Returns how many trivializations were fitted (0 for a model
    without one).
    """
    import jax.numpy as jnp
    from flax import nnx

    from ..flows.priors import coordinate_std
    from ..lower.ops import bundles as ops

    b = np.asarray(base_points, dtype=np.float32)
    flows = sorted(_modules(model, nnx, ops.ChartFlow), key=lambda kv: kv[0])
    for _, flow in flows:
        k, d = flow.centres[...].shape
        if b.ndim != 2 or b.shape[1] != d:
            raise ValueError(f"a trivialization with a base R[{d}] needs base points of shape (N, {d}), not {b.shape}")
        if centres is None:
            chosen = kmeans(b, k, seed)
        else:
            chosen = np.asarray(centres, dtype=np.float32)
            if chosen.shape != (k, d):
                raise ValueError(f"a trivialization with {k} charts on a base R[{d}] needs centres of shape ({k}, {d}), not {chosen.shape}")
        flow.centres[...] = jnp.asarray(chosen)
        if points is None:
            continue
        x = np.asarray(points, dtype=np.float64)
        if x.shape != (len(b), flow.n):
            raise ValueError(f"a trivialization of R[{flow.n}] needs points of shape ({len(b)}, {flow.n}), not {x.shape}")
        x = _as_in_training(x, flow.m, seed, ops)
        chart = np.argmin(((b[:, None, :] - chosen[None, :, :]) ** 2).sum(-1), axis=1)
        target = np.asarray(coordinate_std(flow.prior, flow.m - d))
        frames, shifts = np.array(flow.frame[...]), np.array(flow.frame_shift[...])
        for c in range(k):
            sel = chart == c
            if sel.sum() > flow.m:
                frames[c], shifts[c] = local_frame(x[sel], b[sel], target)
        flow.frame[...] = jnp.asarray(frames)
        flow.frame_shift[...] = jnp.asarray(shifts)
    return len(flows)


def _as_in_training(x: np.ndarray, m: int, seed: int, ops: Any) -> np.ndarray:
    """Total-space points as the flow sees them in training: noised, and padded to ``m`` coordinates."""
    rng = np.random.default_rng(seed)
    x = x + ops.NOISE_STD * rng.standard_normal(x.shape)
    return np.concatenate([x, ops.PAD_STD * rng.standard_normal((len(x), m - x.shape[1]))], axis=1)


def _modules(model: Any, nnx: Any, kind: type) -> list[tuple[str, Any]]:
    """``(path, module)`` for every module of type ``kind`` in ``model``, by path (each once)."""
    out: list[tuple[str, Any]] = []
    seen: set[int] = set()
    for path, node in nnx.iter_graph(model):
        if isinstance(node, kind) and id(node) not in seen:
            seen.add(id(node))
            out.append(("/".join(str(p) for p in path), node))
    return out
