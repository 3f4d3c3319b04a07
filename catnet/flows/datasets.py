"""Data sets for flows: unlabelled points whose density a flow learns.

* ``moons``: scikit-learn's two interleaving half circles,
  ``make_moons(n_samples=2000, noise=0.05, random_state=0)`` (generated
  locally, no download), 2000 points of ``R[2]``.  A single Gaussian fits
  them badly (two thin curved arms), so a flow's test NLL below the
  Gaussian's shows it learnt the shape.

JAX-free: ``catnet train`` checks the data before JAX is imported.
"""

from __future__ import annotations

import numpy as np

#: The two-moons generator's settings (fixed: the data set is one set of points).
MOONS_N = 2000
MOONS_NOISE = 0.05


def moons() -> np.ndarray:
    """The two-moons points, ``(2000, 2)`` float32, the same on every call."""
    from sklearn.datasets import make_moons

    x, _ = make_moons(n_samples=MOONS_N, noise=MOONS_NOISE, random_state=0)
    return np.asarray(x, np.float32)
