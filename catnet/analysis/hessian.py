"""Curvature of a loss landscape: Hessian-vector products, top eigenvalues, trace, loss slices.

A :class:`Problem` is what is differentiated: a loss ``loss(params, batch)``
(the mean over one batch), a parameter pytree, and data arrays that share a
leading example axis.  The loss of the problem is the mean over *all* the
data, computed batch by batch by one jitted program (one more for a
smaller last batch), so memory is bounded by one batch whatever the number
of examples.  :func:`problem_from_model` builds one
from a compiled catnet model, in evaluation mode (dropout off, batch
statistics from their running averages), with the losses ``catnet train``
uses.

Everything works on the flat parameter vector (``jax.flatten_util.ravel_pytree``):

- :func:`hvp` — ``v ↦ H v``, forward-over-reverse (``jax.jvp`` of
  ``jax.grad``): one gradient's cost, never the ``n × n`` matrix.
- :func:`top_eigenvalues` — the ``k`` largest eigenvalues (algebraically),
  by Lanczos with full reorthogonalisation, or by power iteration with
  deflation for comparison (which finds the largest in *magnitude*).
- :func:`trace` — Hutchinson's estimate with Rademacher probes and its
  standard error, or the exact ``Σ eᵢ·H eᵢ`` for small models.
- :func:`loss_slice` — the loss along 1 or 2 random filter-normalized
  directions (Li et al., "Visualizing the Loss Landscape of Neural Nets",
  NeurIPS 2018).

Each of the first three can work per parameter group (``groups=``): the
block ``H_gg`` of the Hessian for the parameters under a path prefix, with
the rest held fixed.  ``groups="top"`` takes the top-level names of the
parameter state, ``"layers"`` every module that owns parameters
(``stage1.conv``, ``classifier.dense.0``), or give a list of prefixes.

Precision: the Hessian-vector products run in the parameters' dtype
(float32 for catnet models); the Krylov basis, its orthogonalisation and the
small eigenproblems are float64 NumPy on the host, so the only float32
error is that of the products themselves (about 1e-7 of ``‖H‖``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from .errors import AnalysisError

Params = Any
Batch = tuple[jax.Array, ...]
Groups = Literal["top", "layers"] | Sequence[str] | None

#: How many probe vectors one compiled Hutchinson step multiplies at once.
PROBE_CHUNK = 16


@dataclass(frozen=True, eq=False)
class Problem:
    """A loss of parameters, averaged over data.

    ``loss(params, batch)`` is the mean loss of one batch, a tuple of
    arrays cut from ``data`` along their leading axis (for a model: its
    inputs, then the targets).  The problem's loss is the mean over all
    examples: batches of ``batch_size`` examples (the last one smaller if
    need be), weighted by their sizes.
    """

    loss: Callable[[Params, Batch], jax.Array]
    params: Params
    data: tuple[Any, ...]
    batch_size: int = 512
    _flat: jax.Array = field(init=False, repr=False)
    _unravel: Callable[[jax.Array], Params] = field(init=False, repr=False)
    #: The jitted per-batch programs built for this problem, by name: asked twice, compiled once.
    _programs: dict[str, Callable[..., Any]] = field(init=False, repr=False, default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.data, tuple) or not self.data:
            raise AnalysisError("the data must be a non-empty tuple of arrays (the inputs, then the targets)")
        lengths = {int(np.shape(a)[0]) if np.ndim(a) else -1 for a in self.data}
        if len(lengths) != 1:
            raise AnalysisError(
                f"the data arrays must share their first (example) axis, but their lengths are "
                f"{[int(np.shape(a)[0]) if np.ndim(a) else 'a scalar' for a in self.data]}"
            )
        if lengths.pop() < 1:
            raise AnalysisError("the data has no examples: give at least one")
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise AnalysisError(f"batch_size must be a positive whole number, not {self.batch_size!r}")
        flat, unravel = ravel_pytree(self.params)
        if flat.size == 0:
            raise AnalysisError("the problem has no parameters to differentiate")
        object.__setattr__(self, "_flat", flat)
        object.__setattr__(self, "_unravel", unravel)

    @property
    def size(self) -> int:
        """The number of scalar parameters, the dimension of the Hessian."""
        return int(self._flat.size)

    @property
    def examples(self) -> int:
        """The number of examples the loss is averaged over."""
        return int(np.shape(self.data[0])[0])

    def flat(self) -> jax.Array:
        """The parameters as one flat vector, in ``ravel_pytree`` order."""
        return self._flat

    def unravel(self, flat: jax.Array) -> Params:
        """A flat vector back as a parameter pytree of the problem's structure."""
        return self._unravel(flat)


class Eigenpairs(NamedTuple):
    """Eigenvalues sorted descending; ``vectors[i]`` (flat, unit norm) belongs to ``values[i]``, if asked for."""

    values: np.ndarray
    vectors: np.ndarray | None


class TraceEstimate(NamedTuple):
    """A trace, its standard error (0 when exact) and the number of probes behind it."""

    value: float
    stderr: float
    samples: int


class LossSlice(NamedTuple):
    """The loss on a grid around the parameters.

    ``losses[i]`` (1-D) is the loss at ``θ + coords[i]·d``;
    ``losses[i, j]`` (2-D) at ``θ + coords[i]·d₁ + coords[j]·d₂``.
    ``center`` is the loss at ``θ`` itself.
    """

    coords: np.ndarray
    losses: np.ndarray
    center: float


# -- the averaged loss and its derivatives -------------------------------------------


def _batches(problem: Problem) -> list[tuple[float, Batch]]:
    """The data cut into batches of ``batch_size`` examples (the last one smaller), each with its share of the mean."""
    n = problem.examples
    size = min(problem.batch_size, n)
    arrays = tuple(jnp.asarray(a) for a in problem.data)
    return [(min(size, n - start) / n, tuple(a[start : start + size] for a in arrays)) for start in range(0, n, size)]


def _averaged(problem: Problem, name: str, per_batch: Callable[[], Callable[..., Any]]) -> Callable[..., Any]:
    """``args ↦ Σ_b (n_b / n) f(*args, batch_b)`` for ``f = per_batch()``, jitted once per problem under ``name``.

    The batches are a Python loop over one compiled program (two when the
    last batch is smaller): dispatch is asynchronous, so the host does not
    wait between batches, and XLA on CPU runs a convolution's derivatives
    several times slower inside a ``lax.scan`` body than at the top level.
    """
    if name not in problem._programs:
        problem._programs[name] = jax.jit(per_batch())
    compiled = problem._programs[name]
    batches = _batches(problem)

    def total(*args: Any) -> Any:
        acc = None
        for weight, batch in batches:
            part = jax.tree.map(partial(jnp.multiply, weight), compiled(*args, batch))
            acc = part if acc is None else jax.tree.map(jnp.add, acc, part)
        return acc

    return total


def _flat_loss(problem: Problem) -> Callable[[jax.Array, Batch], jax.Array]:
    unravel, loss = problem.unravel, problem.loss
    return lambda flat, batch: loss(unravel(flat), batch)


def _batch_hvp(problem: Problem) -> Callable[[jax.Array, jax.Array, Batch], jax.Array]:
    """``(θ, v, batch) ↦ H_batch(θ) v``: the directional derivative of the gradient (forward over reverse)."""
    grad = jax.grad(_flat_loss(problem))

    def hvp_one(flat: jax.Array, v: jax.Array, batch: Batch) -> jax.Array:
        return jax.jvp(lambda p: grad(p, batch), (flat,), (v.astype(flat.dtype),))[1]

    return hvp_one


def value(problem: Problem) -> float:
    """The loss at the problem's parameters, averaged over all its data."""
    return float(_averaged(problem, "loss", lambda: _flat_loss(problem))(problem.flat()))


def _require_finite(problem: Problem) -> float:
    """The loss at the parameters; AnalysisError if it or the parameters are not finite."""
    flat = np.asarray(problem.flat())
    if not np.all(np.isfinite(flat)):
        bad = int(np.sum(~np.isfinite(flat)))
        raise AnalysisError(f"{bad} of the {flat.size} parameters are not finite (nan or inf): curvature is undefined there")
    loss = value(problem)
    if not math.isfinite(loss):
        raise AnalysisError(
            f"the loss at the given parameters is {loss}, not a finite number: check the data for nan/inf "
            "and the labels against the outputs, or analyze an earlier checkpoint"
        )
    return loss


def hvp(problem: Problem) -> Callable[[jax.Array], jax.Array]:
    """The Hessian-vector product ``v ↦ H v`` of the problem's loss at its parameters.

    ``v`` and ``H v`` are flat vectors of :attr:`Problem.size` entries in
    ``ravel_pytree`` order.  Each batch of the data is one call of a
    compiled XLA program (forward-over-reverse differentiation); the
    products of the batches are summed on the device, weighted by size.
    """
    _require_finite(problem)
    return _hvp(problem)


def _hvp(problem: Problem) -> Callable[[jax.Array], jax.Array]:
    product = _averaged(problem, "hvp", lambda: _batch_hvp(problem))
    flat = problem.flat()
    return lambda v: product(flat, jnp.asarray(v, flat.dtype))


def _hvp_many(problem: Problem) -> Callable[[jax.Array], jax.Array]:
    """``V ↦ H Vᵀ`` row by row, for a (probes, n) block of vectors at once."""
    product = _averaged(problem, "hvp_many", lambda: jax.vmap(_batch_hvp(problem), in_axes=(None, 0, None)))
    flat = problem.flat()
    return lambda vs: product(flat, jnp.asarray(vs, flat.dtype))


# -- parameter groups ----------------------------------------------------------------


def _leaf_names(params: Params) -> list[tuple[str, ...]]:
    """The path of every leaf, in flattening order, without the ``value`` of an ``nnx.Variable``."""
    names = []
    for path, _ in jax.tree_util.tree_flatten_with_path(params)[0]:
        parts = []
        for key in path:
            part = getattr(key, "key", getattr(key, "idx", getattr(key, "name", key)))
            parts.append(str(part))
        if len(parts) > 1 and isinstance(path[-1], jax.tree_util.GetAttrKey) and parts[-1] == "value":
            parts.pop()
        names.append(tuple(parts))
    return names


def _group_indices(problem: Problem, groups: Groups) -> dict[str, np.ndarray]:
    """Each group's name and the positions of its parameters in the flat vector."""
    leaves = jax.tree.leaves(problem.params)
    names = _leaf_names(problem.params)
    bounds = np.cumsum([0] + [int(np.size(leaf)) for leaf in leaves])
    top = list(dict.fromkeys(n[0] for n in names))
    layers = list(dict.fromkeys(".".join(n[:-1]) or n[0] for n in names))
    if isinstance(groups, str):
        if groups not in ("top", "layers"):
            raise AnalysisError(
                f"groups={groups!r} is not a grouping: use 'top' (the top-level names {top}), 'layers' ({layers}), "
                f"or a list of path prefixes such as [{groups!r}]"
            )
        prefixes = top if groups == "top" else layers
    else:
        prefixes = list(groups or ())
        if not prefixes:
            raise AnalysisError("groups is empty: name at least one parameter group, or give groups=None for the whole model")
    out: dict[str, np.ndarray] = {}
    for prefix in prefixes:
        want = tuple(str(prefix).split(".")) if str(prefix) else ()
        picked = [i for i, n in enumerate(names) if want and n[: len(want)] == want]
        if not picked:
            raise AnalysisError(
                f"no parameters under {str(prefix)!r}; the groups are the top-level names {top} "
                f"or the layers {layers} (dotted paths of the parameter state)"
            )
        out[str(prefix)] = np.concatenate([np.arange(bounds[i], bounds[i + 1]) for i in picked])
    return out


def group_names(problem: Problem, groups: Literal["top", "layers"] = "top") -> list[str]:
    """The names ``groups="top"`` or ``groups="layers"`` stands for, in parameter order."""
    return list(_group_indices(problem, groups))


# -- eigenvalues ---------------------------------------------------------------------


Matvec = Callable[[np.ndarray], np.ndarray]


def _restricted(matvec: Matvec, n: int, index: np.ndarray | None) -> tuple[Matvec, int]:
    """The product with the diagonal block of the positions ``index`` (all of them if ``None``)."""
    if index is None:
        return matvec, n

    def block(v: np.ndarray) -> np.ndarray:
        full = np.zeros(n)
        full[index] = v
        return matvec(full)[index]

    return block, len(index)


def _lanczos(matvec: Matvec, n: int, k: int, iters: int, tol: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` largest Ritz pairs of a symmetric operator (values descending, vectors as rows).

    Full reorthogonalisation (twice, which is enough in floating point)
    keeps the Krylov basis orthonormal, so no spurious copies of converged
    eigenvalues appear.  A breakdown (the Krylov space is invariant: repeated
    eigenvalues, or a start deficient in some eigenvectors) restarts from a
    fresh random vector orthogonal to the basis, so eigenvalues of any
    multiplicity are found.  The iteration stops when the top ``k`` Ritz
    residuals ``β_j |s_{j,i}|`` are below ``tol`` times the largest Ritz
    value in magnitude, or after ``iters`` products.
    """
    m = min(iters, n)
    basis = np.zeros((m, n))
    alphas, betas = np.zeros(m), np.zeros(m)
    q = rng.standard_normal(n)
    q /= np.linalg.norm(q)
    scale = 0.0
    for j in range(m):
        basis[j] = q
        w = matvec(q)
        alphas[j] = q @ w
        w -= alphas[j] * q + (betas[j - 1] * basis[j - 1] if j else 0.0)
        for _ in range(2):
            w -= basis[: j + 1].T @ (basis[: j + 1] @ w)
        beta = float(np.linalg.norm(w))
        size = j + 1
        theta, s = np.linalg.eigh(_tridiagonal(alphas[:size], betas[: size - 1]))
        scale = max(scale, float(np.max(np.abs(theta))))
        top = min(k, size)
        residuals = beta * np.abs(s[-1, -top:])
        if size == m or (size >= k and np.all(residuals <= tol * scale)):
            break
        if beta <= 1e-10 * max(scale, 1e-30):
            q = rng.standard_normal(n)
            for _ in range(2):
                q -= basis[:size].T @ (basis[:size] @ q)
            q /= np.linalg.norm(q)
            betas[j] = 0.0
        else:
            betas[j] = beta
            q = w / beta
    order = np.argsort(theta)[::-1][:k]
    return theta[order], (basis[:size].T @ s[:, order]).T


def _tridiagonal(alphas: np.ndarray, betas: np.ndarray) -> np.ndarray:
    return np.diag(alphas) + np.diag(betas, 1) + np.diag(betas, -1)


def _power(matvec: Matvec, n: int, k: int, iters: int, tol: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``k`` eigenpairs by power iteration with Hotelling deflation ``H - Σ λᵢ uᵢuᵢᵀ``.

    Each pair is the dominant one of the deflated operator, so this finds
    the eigenvalues largest in *magnitude*; they are returned sorted
    descending.  Each stops when its Rayleigh quotient changes by less
    than ``tol`` relatively, or after ``iters`` products.
    """
    values: list[float] = []
    vectors: list[np.ndarray] = []
    for _ in range(k):
        found = np.array(vectors).reshape(len(vectors), n)
        v = rng.standard_normal(n)
        v -= found.T @ (found @ v)
        v /= np.linalg.norm(v)
        lam = 0.0
        for _ in range(iters):
            w = matvec(v) - found.T @ (np.array(values) * (found @ v))
            new = float(v @ w)
            w -= found.T @ (found @ w)  # stay orthogonal to the pairs found, against rounding
            norm = float(np.linalg.norm(w))
            converged = abs(new - lam) <= tol * abs(new)
            lam = new
            if norm == 0.0:
                break
            v = w / norm
            if converged:
                break
        values.append(lam)
        vectors.append(v)
    order = np.argsort(values)[::-1]
    return np.array(values)[order], np.array(vectors)[order]


def top_eigenvalues(
    problem: Problem,
    k: int = 10,
    iters: int | None = None,
    seed: int = 0,
    method: Literal["lanczos", "power"] = "lanczos",
    groups: Groups = None,
    vectors: bool = False,
    tol: float = 1e-5,
) -> Eigenpairs | dict[str, Eigenpairs]:
    """The ``k`` largest eigenvalues of the Hessian (sorted descending), and their eigenvectors if ``vectors``.

    ``method="lanczos"`` (default): ``iters`` is the most Hessian-vector
    products (default ``max(4k, 40)``, at most the number of parameters);
    it stops earlier once the top ``k`` Ritz residuals are below ``tol``
    times the spectral scale.  ``method="power"``: power iteration with
    deflation, ``iters`` products per eigenvalue at most (default 200); it
    finds the eigenvalues largest in magnitude, which for a Hessian with
    large negative eigenvalues are not the algebraically largest.  The
    start vectors are drawn from ``seed``.  With ``groups`` (see the module
    docstring), a dict from group name to the eigenpairs of that group's
    diagonal block.
    """
    if method not in ("lanczos", "power"):
        raise AnalysisError(f"method must be 'lanczos' or 'power', not {method!r}")
    _whole_number("k", k)
    if iters is None:
        iters = max(4 * k, 40) if method == "lanczos" else 200
    _whole_number("iters", iters)
    if not (tol > 0 and math.isfinite(tol)):
        raise AnalysisError(f"tol must be a positive number, not {tol!r}")
    if iters < k and method == "lanczos":
        raise AnalysisError(f"Lanczos needs at least k = {k} iterations to find {k} eigenvalues, not iters = {iters}")
    indices = {"": None} if groups is None else _group_indices(problem, groups)
    for name, index in indices.items():
        n = problem.size if index is None else len(index)
        if k > n:
            where = "the model has" if index is None else f"the group {name!r} has"
            raise AnalysisError(f"k = {k} eigenvalues asked for, but {where} only {n} parameters: ask for at most {n}")
    _require_finite(problem)
    product = _hvp(problem)

    def matvec(v: np.ndarray) -> np.ndarray:
        out = np.asarray(product(v), np.float64)
        if not np.all(np.isfinite(out)):
            raise AnalysisError("a Hessian-vector product is not finite: the loss is not twice differentiable here in floating point")
        return out

    solve = _lanczos if method == "lanczos" else _power
    results: dict[str, Eigenpairs] = {}
    for name, index in indices.items():
        block, n = _restricted(matvec, problem.size, index)
        vals, vecs = solve(block, n, k, iters, tol, np.random.default_rng(seed))
        results[name] = Eigenpairs(vals, vecs if vectors else None)
    return results[""] if groups is None else results


# -- trace ---------------------------------------------------------------------------


def trace(
    problem: Problem,
    samples: int = 100,
    seed: int = 0,
    groups: Groups = None,
    exact: bool = False,
) -> TraceEstimate | dict[str, TraceEstimate]:
    """The trace of the Hessian: Hutchinson's estimate ``mean vᵀHv`` over Rademacher probes, with its standard error.

    ``samples`` probes (at least 2, for an error bar) are drawn from
    ``seed``.  With ``exact=True`` the trace is ``Σ eᵢ·H eᵢ`` over the
    basis vectors instead: ``n`` products, for small models and as a
    reference.  With ``groups``, the trace of each group's diagonal block,
    estimated from the same probes (``v_gᵀ (H v)_g`` is unbiased for
    ``tr H_gg``): the groups' traces add up to the whole trace.
    """
    _whole_number("samples", samples)
    if not exact and samples < 2:
        raise AnalysisError(f"Hutchinson's estimate needs at least 2 probes for its standard error, not samples = {samples}")
    indices = {"": np.arange(problem.size)} if groups is None else _group_indices(problem, groups)
    _require_finite(problem)
    product = _hvp_many(problem)
    n = problem.size
    rng = np.random.default_rng(seed)
    count = n if exact else samples
    # per probe and per group: the sum of v ⊙ Hv over the group's positions
    forms = np.zeros((count, len(indices)))
    for start in range(0, count, PROBE_CHUNK):
        rows = min(PROBE_CHUNK, count - start)
        if exact:
            probes = np.zeros((PROBE_CHUNK, n), np.float32)
            probes[np.arange(rows), start + np.arange(rows)] = 1.0
        else:
            probes = np.zeros((PROBE_CHUNK, n), np.float32)
            probes[:rows] = rng.choice(np.array([-1.0, 1.0], np.float32), size=(rows, n))
        out = np.asarray(product(probes), np.float64)[:rows] * probes[:rows]
        if not np.all(np.isfinite(out)):
            raise AnalysisError("a Hessian-vector product is not finite: the loss is not twice differentiable here in floating point")
        forms[start : start + rows] = np.stack([out[:, index].sum(axis=1) for index in indices.values()], axis=1)
    results = {}
    for g, name in enumerate(indices):
        if exact:
            results[name] = TraceEstimate(float(forms[:, g].sum()), 0.0, n)
        else:
            results[name] = TraceEstimate(float(forms[:, g].mean()), float(forms[:, g].std(ddof=1) / math.sqrt(samples)), samples)
    return results[""] if groups is None else results


# -- loss slices ---------------------------------------------------------------------


def filter_normalized_direction(
    problem: Problem, rng: np.random.Generator, biases: Literal["zero", "copy"] = "zero"
) -> jax.Array:
    """A random direction, filter-normalized as in Li et al. 2018, as a flat vector.

    Each parameter of two or more axes is a stack of filters along its last
    axis (Flax's output axis: a dense kernel's output units, a convolution's
    output channels); each filter of a Gaussian direction is rescaled to the
    norm of the same filter of the weights.  Parameters of one axis or none
    (biases, normalization scales) are set to zero (``biases="zero"``, as
    the paper's figures do) or to the parameters themselves
    (``biases="copy"``, the other choice of the paper's code).
    """
    if biases not in ("zero", "copy"):
        raise AnalysisError(f"biases must be 'zero' or 'copy', not {biases!r}")
    leaves, treedef = jax.tree.flatten(problem.params)
    parts = []
    for leaf in leaves:
        w = np.asarray(leaf, np.float64)
        if w.ndim <= 1:
            parts.append(np.zeros_like(w) if biases == "zero" else w.copy())
            continue
        d = rng.standard_normal(w.shape)
        axes = tuple(range(w.ndim - 1))
        d_norm = np.sqrt(np.sum(d * d, axis=axes, keepdims=True))
        w_norm = np.sqrt(np.sum(w * w, axis=axes, keepdims=True))
        parts.append(d * w_norm / np.maximum(d_norm, 1e-30))
    flat, _ = ravel_pytree(jax.tree.unflatten(treedef, [jnp.asarray(p, jnp.asarray(leaf).dtype) for p, leaf in zip(parts, leaves)]))
    return flat


def loss_slice(
    problem: Problem,
    steps: int = 21,
    span: float = 1.0,
    dims: int = 1,
    seed: int = 0,
    biases: Literal["zero", "copy"] = "zero",
) -> LossSlice:
    """The loss along ``dims`` (1 or 2) random filter-normalized directions through the parameters.

    The grid is ``steps`` evenly spaced coordinates in ``[-span, span]``
    along each direction (:func:`filter_normalized_direction`, drawn from
    ``seed``); coordinate 1 moves every filter by its own norm.  Points
    where the loss overflows are ``inf``/``nan`` in the result: far from the
    parameters that is a finding, not an error.
    """
    if dims not in (1, 2) or isinstance(dims, bool):
        raise AnalysisError(f"dims must be 1 or 2 (a line or a plane of directions), not {dims!r}")
    _whole_number("steps", steps)
    if steps < 2:
        raise AnalysisError(f"a slice needs at least 2 steps, not {steps}")
    if not (isinstance(span, (int, float)) and span > 0 and math.isfinite(span)):
        raise AnalysisError(f"span must be a positive number, not {span!r}")
    center = _require_finite(problem)
    rng = np.random.default_rng(seed)
    directions = jnp.stack([filter_normalized_direction(problem, rng, biases) for _ in range(dims)])
    if not np.any(np.asarray(directions)):
        raise AnalysisError(
            "every parameter has at most one axis, so a filter-normalized direction with biases='zero' is zero: "
            "use biases='copy'"
        )
    coords = np.linspace(-span, span, steps)
    grid = np.stack(np.meshgrid(*([coords] * dims), indexing="ij"), axis=-1).reshape(-1, dims)
    batch_loss = _flat_loss(problem)
    flat = problem.flat()

    def at_points(flat: jax.Array, points: jax.Array, directions: jax.Array, batch: Batch) -> jax.Array:
        return jax.lax.map(lambda a: batch_loss(flat + a @ directions, batch), points)

    losses = _averaged(problem, "slice", lambda: at_points)(flat, jnp.asarray(grid, flat.dtype), directions)
    return LossSlice(coords, np.asarray(losses, np.float64).reshape((steps,) * dims), center)


# -- a compiled catnet model as a problem ----------------------------------------------


LOSSES = ("cross_entropy", "mse")


def problem_from_model(
    model: Any,
    x: Any,
    y: Any,
    loss: Literal["cross_entropy", "mse"] = "cross_entropy",
    batch_size: int = 512,
) -> Problem:
    """The loss of a compiled catnet model on ``(x, y)`` as a function of its ``nnx.Param`` state.

    ``x`` is one array or a tuple with one array per input wire, with a
    leading example axis; ``y`` the targets.  ``"cross_entropy"`` reads
    integer class labels (or float probabilities) for the logits on the
    output's last axis; ``"mse"`` regresses float targets, or the one-hot
    codes of integer labels — the losses of ``catnet train``, one value per
    example (the mean over every axis but the batch's), averaged.  The
    model runs in evaluation mode (dropout off, batch statistics frozen)
    on a copy: ``model`` itself is untouched, and its non-parameter state is
    held fixed.
    """
    from flax import nnx

    if not isinstance(model, nnx.Module):
        raise AnalysisError(f"the model must be a compiled catnet model (an nnx.Module), not {type(model).__name__}")
    if loss not in LOSSES:
        raise AnalysisError(f"loss must be one of {', '.join(map(repr, LOSSES))}, not {loss!r}")
    xs = tuple(np.asarray(a) for a in (x if isinstance(x, (tuple, list)) else (x,)))
    target = np.asarray(y)
    _check_inputs(model, xs)
    xs = tuple(a.astype(np.float32) if np.issubdtype(a.dtype, np.floating) else a for a in xs)
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    evaluation = nnx.merge(graphdef, params, rest, copy=True)
    evaluation.eval()
    eval_graphdef, _, rest = nnx.split(evaluation, nnx.Param, ...)
    if len(target) != len(xs[0]):
        raise AnalysisError(f"x has {len(xs[0])} examples but y has {len(target)}: give one target per example")
    out = jax.eval_shape(lambda *a: nnx.merge(eval_graphdef, params, rest)(*a), *(a[:1] for a in xs))
    if not isinstance(out, jax.ShapeDtypeStruct):
        raise AnalysisError(f"the model has {len(jax.tree.leaves(out))} outputs; a loss reads one: analyze a morphism with one output wire")
    target = _check_target(target, out.shape[1:], loss)

    def per_example(outputs: jax.Array, labels: jax.Array) -> jax.Array:
        import optax

        if loss == "cross_entropy":
            if jnp.issubdtype(labels.dtype, jnp.integer):
                per = optax.softmax_cross_entropy_with_integer_labels(outputs, labels)
            else:
                per = optax.softmax_cross_entropy(outputs, labels)
        else:
            if jnp.issubdtype(labels.dtype, jnp.integer):
                labels = jax.nn.one_hot(labels, outputs.shape[-1], dtype=outputs.dtype)
            per = jnp.square(outputs - labels)
        return per.reshape(per.shape[0], -1).mean(axis=1)

    def batch_loss(p: Params, batch: Batch) -> jax.Array:
        *inputs, labels = batch
        return per_example(nnx.merge(eval_graphdef, p, rest)(*inputs), labels).mean()

    return Problem(batch_loss, params, xs + (target,), batch_size)


def _check_inputs(model: Any, xs: tuple[np.ndarray, ...]) -> None:
    """Refuse inputs whose count or per-example shapes do not fit the model's domain (where it has one)."""
    dom = getattr(model, "dom", None)
    if dom is None:
        return
    obs = dom.obs
    if len(xs) != len(obs):
        raise AnalysisError(f"the model takes {len(obs)} input(s) ({dom}), but x gives {len(xs)}")
    for i, (a, ob) in enumerate(zip(xs, obs)):
        shape = tuple(ob.shape)
        fits = a.ndim == len(shape) + 1 and all(not isinstance(d, int) or d == s for d, s in zip(shape, a.shape[1:]))
        if not fits:
            raise AnalysisError(f"input {i} has shape {a.shape}, but the model's wire {ob} takes (examples,) + {shape}")
        if ob.base == "Z" and not np.issubdtype(a.dtype, np.integer):
            raise AnalysisError(f"input {i} feeds the integer wire {ob}, but its dtype is {a.dtype}")
        if ob.base != "Z" and not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
            raise AnalysisError(f"input {i} must be numbers, not {a.dtype}")


def _check_target(y: np.ndarray, out_shape: tuple[int, ...], loss: str) -> np.ndarray:
    """The targets as arrays the loss reads; AnalysisError if they cannot be targets of these outputs."""
    if np.issubdtype(y.dtype, np.integer):
        classes = out_shape[-1] if out_shape else 0
        if y.shape[1:] != out_shape[:-1] or classes == 0:
            raise AnalysisError(f"integer labels must have shape (examples,) + {out_shape[:-1]} for outputs {out_shape}, not {y.shape}")
        if y.size and (y.min() < 0 or y.max() >= classes):
            raise AnalysisError(f"labels must be classes 0..{classes - 1} of the {classes} outputs, but they range over {y.min()}..{y.max()}")
        return y.astype(np.int32)
    if not np.issubdtype(y.dtype, np.floating):
        raise AnalysisError(f"targets must be integer labels or float values, not {y.dtype}")
    if y.shape[1:] != out_shape:
        raise AnalysisError(f"float targets must have the outputs' shape (examples,) + {out_shape}, not {y.shape}")
    if loss == "cross_entropy" and not np.allclose(y.sum(axis=-1), 1.0, atol=1e-4):
        raise AnalysisError("float targets of cross_entropy are class probabilities: each must sum to 1 over the last axis")
    return y.astype(np.float32)


def _whole_number(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise AnalysisError(f"{name} must be a positive whole number, not {value!r}")
