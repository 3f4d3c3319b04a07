"""Bundle data sets: total-space points with their base points, the true projection and fibers.

Each :class:`BundleData` is a many-to-one map ``π : E -> B`` whose values
are known, so a trained trivialization can be measured: samples of the
fiber over ``b`` should project back to ``b`` (``project``), and, where the
fiber is known (``fiber``), cover it.

* ``torus``: points of the torus in R³ with major radius 2 and minor radius
  0.5 (both angles uniform, 4000 points, seeded); the base is the point of
  the core circle below, ``(2 cos φ, 2 sin φ)`` in R²; the fiber over it is
  the tube's circle of radius 0.5 around it.
* ``iris``: scikit-learn's bundled iris measurements (150 flowers, four
  lengths in cm: sepal length and width, petal length and width; no
  download); the base is the *size* of sepal and petal, the geometric means
  ``(√(sl·sw), √(pl·pw))`` in cm, and the fiber over a size is every shape
  (pair of aspect ratios) a flower of that size could have, a surface of
  two hyperbolas whose extent the data decides, so ``fiber`` is ``None``.
  Trained on it, a trivialization answers "which flowers have this sepal
  and petal size", a real many-to-one question.

Everything is generated or read locally and deterministically from the
seed; nothing is downloaded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

#: The torus: major (core circle) and minor (tube) radius.
MAJOR, MINOR = 2.0, 0.5
#: Points of the torus data set.
TORUS_N = 4000


@dataclass(frozen=True)
class BundleData:
    """A bundle data set: ``arrays(seed) -> (x, b)``, the projection, and the true fibers where known.

    ``x`` is ``(N, n)`` float32 points of the total space, ``b`` ``(N, k)``
    float32 their base points (``b == project(x)``); ``fiber(b, m)`` gives
    ``m`` points of the true fiber over one base point ``b`` (shape
    ``(k,)``), or ``None`` when the fiber is not a known finite curve.
    """

    name: str
    total: int
    base: int
    fiber_dim: int
    doc: str
    _arrays: Callable[[int], tuple[np.ndarray, np.ndarray]]
    _project: Callable[[np.ndarray], np.ndarray]
    _fiber: Callable[[np.ndarray, int], np.ndarray] | None = None

    def arrays(self, seed: int) -> tuple[np.ndarray, np.ndarray]:
        x, b = self._arrays(seed)
        return np.asarray(x, np.float32), np.asarray(b, np.float32)

    def project(self, x: np.ndarray) -> np.ndarray:
        """The true projection of total-space points ``(N, n)`` to base points ``(N, k)``."""
        return np.asarray(self._project(np.asarray(x, np.float64)), np.float32)

    def fiber(self, b: np.ndarray, m: int) -> np.ndarray | None:
        """``m`` points ``(m, n)`` of the true fiber over the base point ``b`` (``(k,)``), or ``None``."""
        if self._fiber is None:
            return None
        return np.asarray(self._fiber(np.asarray(b, np.float64).reshape(-1), m), np.float32)


# -- the torus -----------------------------------------------------------------------


def torus_point(phi: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """The torus point at core angle ``phi`` and tube angle ``theta`` (``(..., 3)``)."""
    rho = MAJOR + MINOR * np.cos(theta)
    return np.stack([rho * np.cos(phi), rho * np.sin(phi), MINOR * np.sin(theta)], axis=-1)


def _torus_arrays(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    phi = rng.uniform(0.0, 2.0 * np.pi, TORUS_N)
    theta = rng.uniform(0.0, 2.0 * np.pi, TORUS_N)
    x = torus_point(phi, theta)
    b = MAJOR * np.stack([np.cos(phi), np.sin(phi)], axis=-1)
    return x, b


def _torus_project(x: np.ndarray) -> np.ndarray:
    """The nearest point of the core circle: ``2 (x, y) / |(x, y)|`` (any direction on the axis itself)."""
    xy = x[:, :2]
    r = np.linalg.norm(xy, axis=-1, keepdims=True)
    return MAJOR * np.where(r > 0, xy / np.where(r > 0, r, 1.0), np.array([1.0, 0.0]))


def _torus_fiber(b: np.ndarray, m: int) -> np.ndarray:
    phi = np.arctan2(b[1], b[0])
    theta = np.linspace(0.0, 2.0 * np.pi, m, endpoint=False)
    return torus_point(np.full(m, phi), theta)


# -- iris: flowers over their sepal and petal size -------------------------------------


def _iris_x() -> np.ndarray:
    from sklearn.datasets import load_iris

    return np.asarray(load_iris().data, np.float64)


def _iris_project(x: np.ndarray) -> np.ndarray:
    """Sepal and petal size: the geometric means ``√(length·width)`` in cm (clipped at 0)."""
    sepal = np.sqrt(np.clip(x[:, 0] * x[:, 1], 0.0, None))
    petal = np.sqrt(np.clip(x[:, 2] * x[:, 3], 0.0, None))
    return np.stack([sepal, petal], axis=-1)


def _iris_arrays(seed: int) -> tuple[np.ndarray, np.ndarray]:
    # The flowers in a seeded order (the trainer's split takes the last ones for testing).
    x = _iris_x()[np.random.default_rng(seed).permutation(150)]
    return x, _iris_project(x)


DATASETS: dict[str, BundleData] = {
    "torus": BundleData(
        "torus", 3, 2, 2,
        "points of the torus in R³ (radii 2 and 0.5) over the core circle in R²; fibers are the tube's circles",
        _torus_arrays, _torus_project, _torus_fiber,
    ),
    "iris": BundleData(
        "iris", 4, 2, 2,
        "the iris flowers' four measurements (cm) over their sepal and petal size (geometric means, cm)",
        _iris_arrays, _iris_project, None,
    ),
}
