"""How well a trained trivialization knows its bundle: projection error and fiber coverage.

For held-out base points ``b`` (up to :data:`BASES`), :data:`SAMPLES`
points of the fiber over ``b`` are drawn (``catnet.bundles.sample``):

* ``projection_error``: the mean distance from the true projection of a
  sample (``data.project``) to ``b``: do the samples lie over ``b``?
* ``fiber_coverage`` (where the true fiber is known): the fraction of
  :data:`FIBER_POINTS` points of the true fiber within :data:`RADIUS` of
  some sample: do the samples fill the fiber, not just a piece of it?

Both are averaged over the base points.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .datasets import BundleData

BASES = 20
SAMPLES = 500
FIBER_POINTS = 200
RADIUS = 0.1


def coverage(fiber: np.ndarray, samples: np.ndarray, radius: float = RADIUS) -> float:
    """The fraction of the points of ``fiber`` within ``radius`` of some point of ``samples``."""
    d = np.linalg.norm(fiber[:, None, :] - samples[None, :, :], axis=-1)
    return float(np.mean(d.min(axis=1) <= radius))


def evaluate(model: Any, data: BundleData, test_b: np.ndarray, seed: int) -> dict[str, float]:
    """``{"projection_error": …, "fiber_coverage": …}`` of ``model`` on held-out base points ``test_b``.

    ``fiber_coverage`` is left out when ``data`` has no known fiber.
    Deterministic: sample keys come from ``seed``.
    """
    import jax

    from . import sample_many

    bases = np.asarray(test_b, np.float32)[:BASES]
    key = jax.random.PRNGKey(seed)
    # One inverse pass for every base point (base i's z drawn with fold_in(key, i)).
    xs_all = np.asarray(sample_many(model, bases, SAMPLES, key))
    errors, covered = [], []
    for b, xs in zip(bases, xs_all):
        errors.append(float(np.mean(np.linalg.norm(data.project(xs) - b[None, :], axis=-1))))
        fiber = data.fiber(b, FIBER_POINTS)
        if fiber is not None:
            covered.append(coverage(fiber, xs))
    out = {"projection_error": float(np.mean(errors))}
    if covered:
        out["fiber_coverage"] = float(np.mean(covered))
    return out
