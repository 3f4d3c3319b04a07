"""The lowering of the ``flows`` family (``catnet.library.flows``).

Each op acts on the last axis (the channels) of one real wire; the other
per-example axes are positions, and a map applied at every position has
``log|det J| = positions × log|det|`` of the per-position map.  Every op has
its forward map, its inverse, and both with log-determinants (``Op.forward_ld``,
``Op.inverse_ld``), so flows built from them train by likelihood.

* :class:`ActNorm` holds ``log_scale`` and ``bias`` (identity at start).
* :class:`LULinear` holds the strict triangles of ``L`` and ``U`` as vectors
  and ``log|s|`` (``c²`` parameters in all), with the permutation ``P`` and
  ``sign s`` fixed (:class:`Fixed`, not trained).  The inverse solves two
  triangular systems (``jax.scipy.linalg.solve_triangular``); ``W⁻¹`` is
  never formed.
* ``permute`` owns no module: its permutation is computed from ``seed`` and
  the channel count with NumPy (the same on every run and platform) when the
  program is traced.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from ...ir import Box
from . import Array, Context, Op, Wires, _in_features


class Fixed(nnx.Variable):
    """A constant of a module fixed at initialisation (in its state, never trained)."""


def _positions(x: Array) -> int:
    """Positions per example: the product of the per-example axes before the channels."""
    return int(np.prod(x.shape[1:-1], dtype=np.int64))


class ActNorm(nnx.Module):
    """Glow's activation normalisation: ``y = x * exp(log_scale) + bias`` per channel.

    Both parameters start at the identity; Glow's data-dependent
    initialisation (mean 0, variance 1 on a first batch) is not done.
    """

    def __init__(self, channels: int, *, rngs: nnx.Rngs) -> None:
        self.log_scale = nnx.Param(jnp.zeros((channels,), jnp.float32))
        self.bias = nnx.Param(jnp.zeros((channels,), jnp.float32))

    def _per_channel(self, x: Array) -> tuple[Array, Array]:
        """``log_scale`` and ``bias`` shaped to broadcast against ``x`` (ranks spelled out, no promotion)."""
        shape = (1,) * (x.ndim - 1) + (x.shape[-1],)
        return self.log_scale[...].reshape(shape), self.bias[...].reshape(shape)

    def forward_ld(self, x: Array) -> tuple[Array, Array]:
        ls, b = self._per_channel(x)
        ld = _positions(x) * jnp.sum(self.log_scale[...])
        return x * jnp.exp(ls) + b, jnp.full((x.shape[0],), ld, jnp.float32)

    def inverse_ld(self, y: Array) -> tuple[Array, Array]:
        ls, b = self._per_channel(y)
        ld = _positions(y) * jnp.sum(self.log_scale[...])
        return (y - b) * jnp.exp(-ls), jnp.full((y.shape[0],), -ld, jnp.float32)


class LULinear(nnx.Module):
    """An invertible linear map of the channels, ``y = W x`` with ``W = P L (U + diag(sign s · exp(log|s|)))``.

    As in Glow: a random orthogonal matrix (from the module's parameter
    key) is LU-decomposed once; ``P`` and ``sign s`` stay fixed and the
    rest is trained, so ``W`` stays invertible whatever the updates
    (``exp`` keeps every diagonal entry away from zero) and
    ``log|det W| = Σ log|s|`` costs nothing.
    """

    def __init__(self, channels: int, *, rngs: nnx.Rngs) -> None:
        c = channels
        q, _ = jnp.linalg.qr(jax.random.normal(rngs.params(), (c, c), jnp.float32))
        p, low, up = jax.scipy.linalg.lu(q)
        s = jnp.diag(up)
        lower, upper = np.tril_indices(c, -1), np.triu_indices(c, 1)
        self.perm = Fixed(p.astype(jnp.float32))
        self.sign = Fixed(jnp.where(s < 0, -1.0, 1.0).astype(jnp.float32))
        self.lower = nnx.Param(low[lower].astype(jnp.float32))
        self.upper = nnx.Param(up[upper].astype(jnp.float32))
        self.log_abs = nnx.Param(jnp.log(jnp.abs(s)).astype(jnp.float32))

    def _factors(self) -> tuple[Array, Array]:
        """``L`` (unit lower-triangular) and ``U + diag(s)`` (upper-triangular)."""
        c = self.log_abs.shape[0]
        lower, upper = np.tril_indices(c, -1), np.triu_indices(c, 1)
        low = jnp.eye(c, dtype=jnp.float32).at[lower].set(self.lower[...])
        diag = self.sign[...] * jnp.exp(self.log_abs[...])
        up = jnp.diag(diag).at[upper].set(self.upper[...])
        return low, up

    def weight(self) -> Array:
        """``W`` itself (for inspection; the maps below use the factors)."""
        low, up = self._factors()
        return self.perm[...] @ low @ up

    def forward_ld(self, x: Array) -> tuple[Array, Array]:
        low, up = self._factors()
        # y = P L U' x on the last axis, i.e. x @ (P L U')ᵀ for row vectors.
        y = ((x @ up.T) @ low.T) @ self.perm[...].T
        ld = _positions(x) * jnp.sum(self.log_abs[...])
        return y, jnp.full((x.shape[0],), ld, jnp.float32)

    def inverse_ld(self, y: Array) -> tuple[Array, Array]:
        low, up = self._factors()
        flat = y.reshape(-1, y.shape[-1]) @ self.perm[...]  # Pᵀ y for row vectors (P is orthogonal)
        w = jax.scipy.linalg.solve_triangular(low, flat.T, lower=True, unit_diagonal=True)
        x = jax.scipy.linalg.solve_triangular(up, w, lower=False).T.reshape(y.shape)
        ld = _positions(y) * jnp.sum(self.log_abs[...])
        return x, jnp.full((y.shape[0],), -ld, jnp.float32)


def _make_actnorm(box: Box, rngs: nnx.Rngs) -> nnx.Module:
    return ActNorm(_in_features(box), rngs=rngs)


def _make_lu(box: Box, rngs: nnx.Rngs) -> nnx.Module:
    return LULinear(_in_features(box), rngs=rngs)


def _forward(module: Any, wires: Wires, box: Box, ctx: Context) -> Wires:
    (x,) = wires
    return [module.forward_ld(x)[0]]


def _inverse(module: Any, wires: Wires, box: Box, ctx: Context) -> Wires:
    (y,) = wires
    return [module.inverse_ld(y)[0]]


def _forward_ld(module: Any, wires: Wires, box: Box, ctx: Context) -> tuple[Wires, Array]:
    (x,) = wires
    y, ld = module.forward_ld(x)
    return [y], ld


def _inverse_ld(module: Any, wires: Wires, box: Box, ctx: Context) -> tuple[Wires, Array]:
    (y,) = wires
    x, ld = module.inverse_ld(y)
    return [x], ld


def _with_module(make: Any) -> Op:
    return Op(_forward, make, inverse=_inverse, forward_ld=_forward_ld, inverse_ld=_inverse_ld)


@lru_cache(maxsize=256)
def permutation(seed: int, channels: int) -> tuple[int, ...]:
    """``permute(seed)``'s permutation of ``channels`` entries: NumPy's PCG64 from ``seed``, nothing else."""
    return tuple(int(i) for i in np.random.default_rng(seed).permutation(channels))


def _perm(box: Box) -> np.ndarray:
    return np.asarray(permutation(int(box.kwargs.get("seed", 0)), _in_features(box)))  # type: ignore[arg-type]


def _permute(module: Any, wires: Wires, box: Box, ctx: Context) -> Wires:
    (x,) = wires
    return [x[..., _perm(box)]]


def _unpermute(module: Any, wires: Wires, box: Box, ctx: Context) -> Wires:
    (y,) = wires
    return [y[..., np.argsort(_perm(box))]]


OPS: dict[str, Op] = {
    "actnorm": _with_module(_make_actnorm),
    "lu_linear": _with_module(_make_lu),
    "permute": Op(_permute, inverse=_unpermute, volume_preserving=True),
}
