"""Loss-landscape curvature: Hessian-vector products, eigenvalues, trace and slices against the dense Hessian.

The reference is the dense Hessian of a small MLP (``R[8] -> R[3]``, 387
parameters) computed by ``jax.hessian`` in float64 on the same loss; the
library runs in float32, as catnet models do.
"""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")
jnp = jax.numpy
nnx = pytest.importorskip("flax.nnx")

from jax.flatten_util import ravel_pytree  # noqa: E402

import catnet  # noqa: E402
from catnet.analysis import hessian  # noqa: E402
from catnet.analysis.errors import AnalysisError  # noqa: E402

MLP = """
object X = R[8]
morphism mlp : X -> R[3] = (dense : X -> R[32]) ; relu ; dropout(0.5) ; dense
main mlp
"""


def mlp(source: str = MLP) -> nnx.Module:
    return catnet.compile(catnet.loads(source), rngs=nnx.Rngs(0))


def data(n: int = 100) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, 8)).astype(np.float32)
    y = ((x[:, 0] > 0).astype(np.int32) + (x[:, 1] > 0)).astype(np.int32)
    return x, y


@pytest.fixture(scope="module")
def problem() -> hessian.Problem:
    x, y = data()
    return hessian.problem_from_model(mlp(), x, y, batch_size=32)  # three batches of 32 and one of 4


@pytest.fixture(scope="module")
def dense(problem: hessian.Problem) -> np.ndarray:
    """The Hessian of the problem's loss over all its data at once, in float64."""
    with jax.enable_x64(True):
        params = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), problem.params)
        flat, unravel = ravel_pytree(params)
        batch = tuple(jnp.asarray(a, jnp.float64) if np.issubdtype(a.dtype, np.floating) else jnp.asarray(a) for a in problem.data)
        h = np.asarray(jax.jit(jax.hessian(lambda f: problem.loss(unravel(f), batch)))(flat))
    assert h.dtype == np.float64
    return (h + h.T) / 2


def relative(a: np.ndarray | float, b: np.ndarray | float) -> float:
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b)) / np.abs(np.asarray(b))))


def test_hvp_is_the_dense_hessian_times_v(problem: hessian.Problem, dense: np.ndarray) -> None:
    product = hessian.hvp(problem)
    rng = np.random.default_rng(1)
    for _ in range(3):
        v = rng.standard_normal(problem.size)
        np.testing.assert_allclose(np.asarray(product(v)), dense @ v, rtol=1e-4, atol=1e-5 * np.abs(dense @ v).max())


def test_batching_does_not_change_the_loss_or_its_curvature(problem: hessian.Problem) -> None:
    whole = hessian.Problem(problem.loss, problem.params, problem.data, batch_size=1000)
    assert hessian.value(whole) == pytest.approx(hessian.value(problem), rel=1e-6)
    v = np.random.default_rng(2).standard_normal(problem.size)
    np.testing.assert_allclose(np.asarray(hessian.hvp(whole)(v)), np.asarray(hessian.hvp(problem)(v)), rtol=1e-4, atol=1e-5)


def test_lanczos_top_eigenvalues_equal_the_dense_ones(problem: hessian.Problem, dense: np.ndarray) -> None:
    reference = np.linalg.eigvalsh(dense)[::-1]
    top = hessian.top_eigenvalues(problem, k=10, vectors=True)
    assert relative(top.values, reference[:10]) < 1e-3
    assert np.all(np.diff(top.values) <= 0)
    assert top.vectors is not None and top.vectors.shape == (10, problem.size)
    for value, vector in zip(top.values[:3], top.vectors[:3]):
        assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-6)
        assert np.linalg.norm(dense @ vector - value * vector) < 1e-3 * reference[0]


def test_power_iteration_finds_the_eigenvalues_largest_in_magnitude(problem: hessian.Problem, dense: np.ndarray) -> None:
    reference = np.linalg.eigvalsh(dense)
    by_magnitude = np.sort(reference[np.argsort(np.abs(reference))[::-1][:3]])[::-1]
    power = hessian.top_eigenvalues(problem, k=3, method="power", iters=1000, tol=1e-7)
    assert relative(power.values, by_magnitude) < 1e-3
    assert power.vectors is None


def test_trace_exact_and_hutchinson(problem: hessian.Problem, dense: np.ndarray) -> None:
    reference = float(np.trace(dense))
    exact = hessian.trace(problem, exact=True)
    assert relative(exact.value, reference) < 1e-3
    assert exact.stderr == 0.0 and exact.samples == problem.size
    estimate = hessian.trace(problem, samples=200, seed=3)
    assert 0 < estimate.stderr < 0.1 * abs(reference)
    assert abs(estimate.value - reference) < 4 * estimate.stderr
    assert hessian.trace(problem, samples=200, seed=3) == estimate  # the seed fixes the probes


def test_groups_are_diagonal_blocks(problem: hessian.Problem, dense: np.ndarray) -> None:
    assert hessian.group_names(problem, "top") == ["dense"]
    layers = hessian.group_names(problem, "layers")
    assert layers == ["dense.0", "dense.1"]
    first = 8 * 32 + 32  # ravel_pytree order: dense.0 (bias, kernel), then dense.1
    blocks = {"dense.0": dense[:first, :first], "dense.1": dense[first:, first:]}
    top = hessian.top_eigenvalues(problem, k=3, groups="layers")
    traces = hessian.trace(problem, exact=True, groups="layers")
    for name, block in blocks.items():
        assert relative(top[name].values, np.linalg.eigvalsh(block)[::-1][:3]) < 1e-3
        assert relative(traces[name].value, np.trace(block)) < 1e-3
    assert sum(t.value for t in traces.values()) == pytest.approx(np.trace(dense), rel=1e-5)
    prefixed = hessian.trace(problem, exact=True, groups=["dense.1.kernel"])
    assert relative(prefixed["dense.1.kernel"].value, np.trace(dense[first + 3 :, first + 3 :])) < 1e-3


def test_filter_normalized_direction(problem: hessian.Problem) -> None:
    direction = problem.unravel(hessian.filter_normalized_direction(problem, np.random.default_rng(0)))
    for d, w in zip(jax.tree.leaves(direction), jax.tree.leaves(problem.params)):
        d, w = np.asarray(d), np.asarray(w)
        if w.ndim == 1:
            assert not d.any()  # biases are left where they are
        else:
            np.testing.assert_allclose(np.linalg.norm(d, axis=0), np.linalg.norm(w, axis=0), rtol=1e-5)
    copied = problem.unravel(hessian.filter_normalized_direction(problem, np.random.default_rng(0), biases="copy"))
    bias = problem.params["dense"][0]["bias"].get_value()
    np.testing.assert_array_equal(np.asarray(copied["dense"][0]["bias"].get_value()), np.asarray(bias))


def test_loss_slice_passes_through_the_loss(problem: hessian.Problem) -> None:
    line = hessian.loss_slice(problem, steps=5, span=1.0)
    np.testing.assert_allclose(line.coords, [-1, -0.5, 0, 0.5, 1])
    assert line.losses[2] == pytest.approx(line.center, rel=1e-6)
    assert line.center == pytest.approx(hessian.value(problem), rel=1e-6)
    plane = hessian.loss_slice(problem, steps=5, span=1.0, dims=2)
    assert plane.losses.shape == (5, 5)
    np.testing.assert_allclose(plane.losses[:, 2], line.losses, rtol=1e-5)  # the first direction is the line's


def test_loss_slice_bends_as_the_hessian_says() -> None:
    """The second difference of a slice at its centre is ``dᵀHd`` along its direction.

    On a smooth (tanh) network: across the kinks of a ReLU network the
    second difference of the loss is not the Hessian's curvature.
    """
    x, y = data()
    problem = hessian.problem_from_model(mlp(MLP.replace("relu", "tanh")), x, y)
    h = 0.05
    small = hessian.loss_slice(problem, steps=3, span=h)
    d = hessian.filter_normalized_direction(problem, np.random.default_rng(0))
    curvature = float(np.dot(np.asarray(d), np.asarray(hessian.hvp(problem)(d))))
    assert (small.losses[0] - 2 * small.losses[1] + small.losses[2]) / h**2 == pytest.approx(curvature, rel=1e-2)


def test_the_problem_runs_the_model_in_evaluation_mode_on_a_copy() -> None:
    model = mlp()
    x, y = data(16)
    problem = hessian.problem_from_model(model, x, y)
    assert hessian.value(problem) == hessian.value(problem)  # no dropout in the loss
    assert not np.array_equal(np.asarray(model(jnp.asarray(x))), np.asarray(model(jnp.asarray(x))))  # the model still drops


def test_problem_from_model_regression_loss() -> None:
    x, y = data(20)
    targets = np.eye(3, dtype=np.float32)[y]
    by_labels = hessian.problem_from_model(mlp(), x, y, loss="mse")
    by_floats = hessian.problem_from_model(mlp(), x, targets, loss="mse")
    assert hessian.value(by_labels) == pytest.approx(hessian.value(by_floats), rel=1e-6)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda p: hessian.top_eigenvalues(p, k=388), "only 387 parameters"),
        (lambda p: hessian.top_eigenvalues(p, k=100, groups=["dense.1"]), "the group 'dense.1' has only 99"),
        (lambda p: hessian.top_eigenvalues(p, k=0), "k must be a positive whole number"),
        (lambda p: hessian.top_eigenvalues(p, method="arnoldi"), "'lanczos' or 'power'"),
        (lambda p: hessian.trace(p, samples=0), "samples must be a positive whole number"),
        (lambda p: hessian.trace(p, samples=1), "at least 2 probes"),
        (lambda p: hessian.trace(p, groups=["encoder"]), "no parameters under 'encoder'"),
        (lambda p: hessian.trace(p, groups="dense"), "is not a grouping"),
        (lambda p: hessian.loss_slice(p, dims=3), "dims must be 1 or 2"),
        (lambda p: hessian.loss_slice(p, steps=1), "at least 2 steps"),
        (lambda p: hessian.loss_slice(p, span=float("nan")), "span must be a positive number"),
    ],
)
def test_bad_requests_are_refused(problem: hessian.Problem, call, message: str) -> None:
    with pytest.raises(AnalysisError, match=message):
        call(problem)


def test_non_finite_losses_are_refused(problem: hessian.Problem) -> None:
    x, y = data(10)
    x[3, 2] = np.nan
    with pytest.raises(AnalysisError, match="loss at the given parameters is nan"):
        hessian.top_eigenvalues(hessian.problem_from_model(mlp(), x, y), k=1)
    broken = jax.tree.map(lambda a: a.at[0].set(jnp.inf) if a.ndim == 1 else a, problem.params)
    with pytest.raises(AnalysisError, match="parameters are not finite"):
        hessian.trace(hessian.Problem(problem.loss, broken, problem.data))


@pytest.mark.parametrize(
    ("x", "y", "kwargs", "message"),
    [
        (np.zeros((5, 8), np.float32), np.zeros(4, np.int32), {}, "x has 5 examples but y has 4"),
        (np.zeros((5, 7), np.float32), np.zeros(5, np.int32), {}, "takes \\(examples,\\) \\+ \\(8,\\)"),
        (np.zeros((5, 8), np.float32), np.full(5, 3, np.int32), {}, "classes 0..2"),
        (np.zeros((5, 8), np.float32), np.zeros((5, 2), np.float32), {}, "outputs' shape"),
        (np.zeros((5, 8), np.float32), np.zeros(5, np.int32), {"loss": "hinge"}, "loss must be one of"),
        (np.zeros((0, 8), np.float32), np.zeros(0, np.int32), {}, "no examples"),
        (np.zeros((5, 8), np.float32), np.zeros(5, np.int32), {"batch_size": 0}, "batch_size must be a positive"),
    ],
)
def test_bad_data_is_refused(x: np.ndarray, y: np.ndarray, kwargs: dict, message: str) -> None:
    with pytest.raises(AnalysisError, match=message):
        hessian.problem_from_model(mlp(), x, y, **kwargs)
