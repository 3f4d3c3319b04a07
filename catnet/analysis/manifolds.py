"""Synthetic manifolds of known dimension and curvature, to test estimators on.

Each generator returns a :class:`Manifold`: ``points`` (a float64 ``(n, D)``
array, so a reference computed from them is exact), the true ``dimension``
and, where it is one number everywhere, the true ``curvature`` — the root
mean square of the principal curvatures that
:func:`catnet.analysis.curvature.local_curvature` estimates: ``1/radius`` on
a sphere, 0 on a flat subspace.

A manifold that lives in a few coordinates is embedded in ``R^D`` by a
random rotation (an orthonormal frame drawn from the same seed), so no
coordinate axis is special and an estimator cannot read the dimension off
the zero columns.  The same arguments give the same points.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import AnalysisError


@dataclass(frozen=True)
class Manifold:
    """Points on a manifold of known ``dimension`` (and ``curvature``, when constant)."""

    points: np.ndarray
    dimension: int
    curvature: float | None
    name: str


def sphere(n: int, d: int, D: int = 100, radius: float = 1.0, seed: int = 0, noise: float = 0.0) -> Manifold:
    """``n`` points uniform on the ``d``-sphere of ``radius`` in ``R^{d+1}``, rotated into ``R^D``.

    ``noise`` is the root mean square length of isotropic Gaussian noise
    added in ``R^D`` (none by default).
    """
    _check(n, d, D, needed=d + 1)
    if not radius > 0:
        raise AnalysisError(f"a sphere's radius must be positive, not {radius}")
    rng = np.random.default_rng(seed)
    # A normalized Gaussian vector is uniform on the sphere.
    g = rng.standard_normal((n, d + 1))
    on_sphere = radius * g / np.linalg.norm(g, axis=1, keepdims=True)
    points = _noisy(_rotate(on_sphere, D, rng), noise, rng)
    return Manifold(points, d, 1.0 / radius, f"{d}-sphere of radius {radius:g} in R^{D}")


def swiss_roll(n: int, seed: int = 0, noise: float = 0.0, D: int = 3) -> Manifold:
    """``n`` points on the swiss roll (a rolled-up rectangle, 2-D) in ``R^3``, rotated into ``R^D`` if ``D > 3``.

    The roll is scikit-learn's ``make_swiss_roll``: ``t`` uniform in
    ``[1.5π, 4.5π]``, the point ``(t cos t, h, t sin t)`` with ``h`` uniform
    in ``[0, 21]``; ``noise`` is the root mean square length of isotropic
    Gaussian noise added in ``R^D``.  Its curvature varies along the roll, so
    ``curvature`` is ``None``.
    """
    _check(n, 2, D, needed=3)
    rng = np.random.default_rng(seed)
    t = 1.5 * np.pi * (1.0 + 2.0 * rng.uniform(size=n))
    h = 21.0 * rng.uniform(size=n)
    roll = np.stack([t * np.cos(t), h, t * np.sin(t)], axis=1)
    points = roll if D == 3 else _rotate(roll, D, rng)
    return Manifold(_noisy(points, noise, rng), 2, None, f"swiss roll in R^{D}")


def subspace(n: int, d: int, D: int = 100, noise: float = 0.01, seed: int = 0) -> Manifold:
    """``n`` standard Gaussian points of a random ``d``-dimensional linear subspace of ``R^D``, plus noise.

    ``noise`` is the root mean square length of isotropic Gaussian noise
    added in ``R^D`` (each coordinate gets ``noise/√D``), so its size does
    not grow with ``D``; the signal has unit variance along each of its
    ``d`` directions.
    """
    _check(n, d, D, needed=d)
    rng = np.random.default_rng(seed)
    points = _rotate(rng.standard_normal((n, d)), D, rng)
    return Manifold(_noisy(points, noise, rng), d, 0.0, f"{d}-dimensional subspace of R^{D}")


def _check(n: int, d: int, D: int, needed: int) -> None:
    """Refuse sizes that cannot make the manifold asked for."""
    if n < 1:
        raise AnalysisError(f"the number of points must be positive, not {n}")
    if d < 1:
        raise AnalysisError(f"the dimension must be positive, not {d}")
    if D < needed:
        raise AnalysisError(f"this {d}-dimensional manifold needs an ambient dimension of at least {needed}, not D = {D}")


def _rotate(points: np.ndarray, D: int, rng: np.random.Generator) -> np.ndarray:
    """``points`` (in ``R^m``) mapped into ``R^D`` by a random orthonormal frame."""
    frame, _ = np.linalg.qr(rng.standard_normal((D, points.shape[1])))
    return points @ frame.T


def _noisy(points: np.ndarray, noise: float, rng: np.random.Generator) -> np.ndarray:
    """``points`` plus isotropic Gaussian noise whose length has root mean square ``noise``."""
    if noise < 0:
        raise AnalysisError(f"noise is the size of the noise and cannot be negative, not {noise}")
    if noise == 0:
        return points
    return points + noise / np.sqrt(points.shape[1]) * rng.standard_normal(points.shape)
