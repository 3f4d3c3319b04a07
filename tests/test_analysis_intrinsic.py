"""Intrinsic dimension, synthetic manifolds and data curvature against known answers.

The estimators must find the true dimension of the synthetic manifolds
within 10% and agree with scikit-dimension on the same points; the
curvature estimate must find 1/R on spheres and 0 on flat pieces.  Point
counts are the smallest that pass for every seed tried (0–9): a 10-sphere
needs 8,000 points, since both estimators underestimate high dimensions on
small samples (by 10% at 2,000 points).
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from catnet.analysis import curvature, intrinsic, manifolds
from catnet.analysis.errors import AnalysisError

#: name → (generator arguments); module-level so each cloud is made once.
CLOUDS = {
    "sphere-2": lambda: manifolds.sphere(2000, 2, D=100),
    "sphere-5": lambda: manifolds.sphere(2000, 5, D=100),
    "sphere-10": lambda: manifolds.sphere(8000, 10, D=100),
    "swiss-roll": lambda: manifolds.swiss_roll(2000),
    "subspace-5": lambda: manifolds.subspace(2000, 5, D=100, noise=0.01),
}


@functools.cache
def cloud(name: str) -> manifolds.Manifold:
    """The named synthetic manifold (made once per run)."""
    return CLOUDS[name]()


@functools.cache
def ours(name: str) -> tuple[float, float]:
    """(TwoNN, MLE) of the named cloud."""
    points = cloud(name).points
    return intrinsic.twonn(points), intrinsic.mle(points)


def brute_nearest(x: np.ndarray, k: int) -> np.ndarray:
    """The k smallest distances to other rows, in float64, by the full distance matrix."""
    distances = np.linalg.norm(x[:, None, :] - x[None, :, :], axis=-1)
    np.fill_diagonal(distances, np.inf)
    return np.sort(distances, axis=1)[:, :k]


# --- nearest neighbours ----------------------------------------------------


def test_nearest_matches_brute_force_across_blocks() -> None:
    x = np.random.default_rng(1).standard_normal((203, 7)) + 50.0
    distances, indices = intrinsic.nearest(x, 5, block=64)  # 64 does not divide 203: a padded last block
    np.testing.assert_allclose(distances, brute_nearest(x, 5), rtol=1e-5)
    recomputed = np.linalg.norm(x[indices] - x[:, None, :], axis=-1)
    np.testing.assert_allclose(distances, recomputed, rtol=1e-5)
    assert distances.shape == indices.shape == (203, 5) and indices.dtype == np.int64
    assert not np.any(indices == np.arange(203)[:, None])


def test_nearest_finds_duplicates_at_zero_but_never_the_point_itself() -> None:
    base = np.random.default_rng(2).standard_normal((40, 3))
    x = np.concatenate([base, base[:10]])
    distances, indices = intrinsic.nearest(x, 3)
    assert np.all(np.isfinite(distances))
    assert not np.any(indices == np.arange(50)[:, None])
    for i in range(10):
        assert distances[i, 0] == 0.0 and indices[i, 0] == 40 + i
        assert distances[40 + i, 0] == 0.0 and indices[40 + i, 0] == i


# --- the acceptance: truth within 10%, scikit-dimension within 5% ----------


@pytest.mark.parametrize("name", list(CLOUDS))
def test_estimates_within_ten_percent_of_the_true_dimension(name: str) -> None:
    true = cloud(name).dimension
    two_nn, ml = ours(name)
    assert abs(two_nn / true - 1) < 0.10, f"TwoNN {two_nn:.3f} for dimension {true}"
    assert abs(ml / true - 1) < 0.10, f"MLE {ml:.3f} for dimension {true}"


@pytest.mark.parametrize("name", list(CLOUDS))
def test_estimates_agree_with_scikit_dimension(name: str) -> None:
    skdim = pytest.importorskip("skdim")
    points = cloud(name).points
    two_nn, ml = ours(name)
    reference_two_nn = skdim.id.TwoNN().fit(points).dimension_
    reference_ml = skdim.id.MLE().fit(points).dimension_
    # The acceptance asks for 5%; the algorithms are the same, so they agree
    # to the float32 rounding of the distances.
    assert two_nn == pytest.approx(reference_two_nn, rel=1e-4)
    assert ml == pytest.approx(reference_ml, rel=1e-4)


# --- conventions: duplicates, invariance, bootstrap ------------------------


def test_duplicate_points_do_not_change_the_estimate() -> None:
    points = cloud("sphere-2").points[:500]
    doubled = np.concatenate([points, points[:200], points[:50]])
    assert intrinsic.twonn(doubled) == intrinsic.twonn(points)
    assert intrinsic.mle(doubled) == intrinsic.mle(points)
    assert intrinsic.estimate(doubled).n == 500


@settings(max_examples=15, deadline=None)
@given(
    scale=st.floats(1e-3, 1e3),
    shift=st.floats(-100.0, 100.0),
    seed=st.integers(0, 2**16),
)
def test_estimates_are_invariant_under_similarities(scale: float, shift: float, seed: int) -> None:
    points = cloud("sphere-5").points[:400]
    rotation, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((100, 100)))
    moved = scale * points @ rotation + shift
    assert intrinsic.twonn(moved) == pytest.approx(intrinsic.twonn(points), rel=1e-3)
    assert intrinsic.mle(moved) == pytest.approx(intrinsic.mle(points), rel=1e-3)


@pytest.mark.parametrize("method", intrinsic.METHODS)
def test_estimate_bootstraps_error_bars_around_the_estimate(method: str) -> None:
    points = cloud("sphere-5").points
    result = intrinsic.estimate(points, method=method, bootstrap=30, seed=3)
    assert result.value == (intrinsic.twonn(points) if method == "twonn" else intrinsic.mle(points))
    assert result.method == method and result.n == 2000
    assert 0 < result.std < 0.2 and result.low < result.value < result.high
    assert result.low < 5 * 1.1 and result.high > 5 * 0.9
    assert intrinsic.estimate(points, method=method, bootstrap=30, seed=3) == result


def test_estimate_passes_each_method_its_option() -> None:
    points = cloud("sphere-2").points
    assert intrinsic.estimate(points, "mle", k=10).value == intrinsic.mle(points, k=10)
    assert intrinsic.estimate(points, "twonn", discard=0.2).value == intrinsic.twonn(points, discard=0.2)


# --- bad input: a message with the numbers, never a traceback --------------


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: intrinsic.twonn(np.zeros((2, 4)) + np.arange(2)[:, None]), "at least 3 points, got 2"),
        (lambda: intrinsic.mle(np.random.default_rng(0).standard_normal((20, 3))), "at least 21 points, got 20"),
        (lambda: intrinsic.mle(np.ones((50, 3))), "got 1 (of 50 points, 49 are exact duplicates)"),
        (lambda: intrinsic.twonn(np.array([[0.0, 1.0], [np.nan, 2.0], [3.0, np.inf], [1.0, 1.0]])), "2 values in 2 of the 4 points"),
        (lambda: intrinsic.twonn(np.arange(10.0)), "shape (n, D)"),
        (lambda: intrinsic.twonn(cloud("sphere-2").points, discard=1.0), "between 0 and 1"),
        (lambda: intrinsic.mle(cloud("sphere-2").points, k=1), "k ≥ 2"),
        (lambda: intrinsic.estimate(cloud("sphere-2").points, "mle", k=2.5), "k ≥ 2 of neighbours per point, not k = 2.5"),
        (lambda: intrinsic.nearest(np.eye(3), 3), "k = 3 neighbours among 3 points"),
        (lambda: intrinsic.estimate(np.eye(5), method="pca"), "choose one of twonn, mle"),
        (lambda: intrinsic.estimate(np.eye(5), method="mle", discard=0.1), "takes the option 'k', not 'discard'"),
        (lambda: intrinsic.estimate(np.eye(5), bootstrap=1), "at least 2 resamples"),
        (lambda: intrinsic.twonn(np.eye(3)), "all ratios r2/r1 are 1"),
        (lambda: manifolds.sphere(10, 5, D=5), "at least 6, not D = 5"),
        (lambda: curvature.local_curvature(np.eye(30), 2, k=5), "needs k ≥ 6"),
        (lambda: curvature.local_curvature(np.eye(3), 3), "between 1 and D - 1 = 2"),
    ],
)
def test_bad_input_gets_a_message(call, message: str) -> None:
    with pytest.raises(AnalysisError) as error:
        call()
    assert message in str(error.value)


# --- the manifolds ---------------------------------------------------------


def test_sphere_has_its_radius_dimension_and_curvature() -> None:
    m = manifolds.sphere(300, 3, D=20, radius=2.0, seed=4)
    assert m.points.shape == (300, 20) and m.points.dtype == np.float64
    np.testing.assert_allclose(np.linalg.norm(m.points, axis=1), 2.0)
    assert np.linalg.matrix_rank(m.points, tol=1e-9) == 4  # a 3-sphere spans R^4
    assert (m.dimension, m.curvature) == (3, 0.5)
    np.testing.assert_array_equal(manifolds.sphere(300, 3, D=20, radius=2.0, seed=4).points, m.points)


def test_subspace_and_swiss_roll_shapes() -> None:
    flat = manifolds.subspace(200, 4, D=30, noise=0.0)
    assert np.linalg.matrix_rank(flat.points, tol=1e-9) == 4 and flat.curvature == 0.0
    noisy = manifolds.subspace(4000, 4, D=30, noise=0.1)
    off = noisy.points - manifolds.subspace(4000, 4, D=30, noise=0.0).points
    assert np.sqrt(np.mean(np.sum(off**2, axis=1))) == pytest.approx(0.1, rel=0.05)
    roll = manifolds.swiss_roll(500)
    rotated = manifolds.swiss_roll(500, D=10)
    assert roll.points.shape == (500, 3) and rotated.points.shape == (500, 10) and roll.dimension == 2
    # the rotation into R^10 keeps every distance
    np.testing.assert_allclose(brute_nearest(rotated.points, 3), brute_nearest(roll.points, 3), rtol=1e-9)


# --- curvature ---------------------------------------------------------------


@pytest.mark.parametrize("radius", [0.5, 1.0, 2.0])
def test_curvature_of_spheres_is_one_over_the_radius(radius: float) -> None:
    m = manifolds.sphere(2000, 2, D=100, radius=radius)
    result = curvature.local_curvature(m.points, 2)
    # The quadratic fit is biased up by terms of order (ρ/R)² for a
    # neighbourhood of radius ρ: +1% in the median with 20 neighbours of
    # 2,000 points; every seed tried keeps 90% of the points within 5%.
    assert result.median == pytest.approx(m.curvature, rel=0.03)
    assert m.curvature * 0.95 < result.low and result.high < m.curvature * 1.05
    assert result.values.shape == (2000,) and result.k == curvature.default_neighbours(2)


def test_curvature_at_chosen_points_is_the_curvature_there() -> None:
    m = manifolds.sphere(600, 2, D=20, seed=3)
    at = np.array([5, 0, 599, 17])
    everywhere = curvature.local_curvature(m.points, 2)
    some = curvature.local_curvature(m.points, 2, at=at, block=3)  # two blocks, the last one padded
    np.testing.assert_allclose(some.values, everywhere.values[at], rtol=1e-5)
    dist, idx = intrinsic.nearest(m.points, 4, rows=at)
    full = intrinsic.nearest(m.points, 4)
    np.testing.assert_array_equal(idx, full[1][at])
    np.testing.assert_allclose(dist, full[0][at], rtol=1e-6)
    with pytest.raises(AnalysisError, match="rows must index the 600 points"):
        intrinsic.nearest(m.points, 4, rows=[600])
    with pytest.raises(AnalysisError, match="`at` is empty"):
        curvature.local_curvature(m.points, 2, at=[])


def test_curvature_of_a_three_sphere() -> None:
    m = manifolds.sphere(2000, 3, D=50)
    # the neighbourhood is wider in three dimensions, and the bias with it (+5%)
    assert curvature.local_curvature(m.points, 3).median == pytest.approx(1.0, rel=0.1)


def test_curvature_of_a_flat_subspace_is_zero() -> None:
    flat = manifolds.subspace(1000, 2, D=100, noise=0.0)
    # Only float32 rounding is left: the data have unit scale, so 1e-3 is a
    # radius of curvature a thousand times the data's size.
    assert curvature.local_curvature(flat.points, 2).high < 1e-3
