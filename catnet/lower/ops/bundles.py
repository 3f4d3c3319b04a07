"""The lowering of bundles: ``triv``, ``proj`` and the ``bundles`` family (``fiberwise``).

A bundle wire ``E`` is a batch of points of its total space ``R[n]``.  Its
trivialization ``triv : E -> B ⊗ F`` is a :class:`ChartFlow`: a coupling
flow on ``R[m]``, ``m = dim B + dim F``, conditioned on a chart (a one-hot
code), whose first ``dim B`` outputs estimate the base point and whose
other outputs are the fiber coordinate.  A total space smaller than ``m``
is padded with ``m - n`` extra coordinates (Gaussian noise of std
:data:`PAD_STD` in training, so the flow sees a full-dimensional density;
zeros in evaluation), which the inverse drops.

The charts are clusters of the base (``ChartCentres``, set by k-means in
``catnet.bundles.charts.fit``).  The forward map takes the chart nearest
the base point given with the call (``ctx.condition``, known in training)
or, without one, the *self-consistent* chart: every chart is run and the
one whose base estimate lies nearest its own centre is kept.  The inverse
takes the chart nearest the base point it is given.

Every ``triv``, ``inv(triv)`` and ``proj`` of one bundle uses one instance:
the checker names it after the bundle (``box.shared``), and the model keeps
the module on its root (``model.Torus``), so ``apply_box`` hands the same
module to all of them.  ``proj`` is the base half of that flow; it is not
an isomorphism.

``fiberwise(features=F', hidden=64) : B ⊗ F -> B ⊗ R[F']`` keeps the base
point and maps the fiber by a dense layer whose output is FiLM-modulated by
the base: ``y = (W f + c) * (1 + γ(b)) + β(b)`` with ``γ, β`` from a small
MLP of ``b`` (Perez et al., FiLM, 2018) — a layer whose weights depend on
the base point.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from ...bundles.charts import coupling_halves
from ...ir import Box, Ob
from ...library import GENERATORS
from . import Context, Op, Wires

Array = jax.Array

#: Std of the padding coordinates in training (zeros in evaluation).
PAD_STD = 0.01
#: Std of the Gaussian noise added to the total-space points in training.
NOISE_STD = 0.05
#: A coupling's log-scale is soft-clamped to ``(-SCALE_BOUND, SCALE_BOUND)``.
SCALE_BOUND = 3.0


class ChartCentres(nnx.Variable):
    """The chart centres of a trivialization, ``(charts, dim B)``: state, but not trained."""


def _int(d: Any) -> int:
    assert isinstance(d, int), "bundle sizes are numbers after checking"
    return d


def bundle_sizes(ob: Ob) -> tuple[int, int, int]:
    """``(n, dim B, dim F)`` of a bundle object: its total space, base and fiber sizes."""
    assert ob.base == "bundle" and ob.over is not None and ob.fiber is not None
    assert len(ob.shape) == 1, f"bundle {ob} has no total space R[n]: the checker keeps it from the lowering"
    (base,), (fiber,) = ob.over.obs, ob.fiber.obs
    return _int(ob.shape[0]), _int(base.shape[0]), _int(fiber.shape[0])


def triv_arg(box: Box, name: str) -> Any:
    """An argument of a ``triv`` box, or the library's default (a ``proj`` stands for a ``triv`` without any)."""
    if name in box.kwargs:
        return box.kwargs[name]
    spec = GENERATORS["triv"].arg(name)
    assert spec is not None, name
    return spec.default


class _Conditioner(nnx.Module):
    """The log-scale and shift of a coupling from its conditioning half and the chart.

    The last layer starts at zero, so every coupling starts as the identity
    and training starts from the padded data itself.
    """

    def __init__(self, a: int, r: int, charts: int, hidden: int, *, rngs: nnx.Rngs) -> None:
        self.l1 = nnx.Linear(a + charts, hidden, rngs=rngs)
        self.l2 = nnx.Linear(hidden, hidden, rngs=rngs)
        self.out = nnx.Linear(hidden, 2 * r, kernel_init=nnx.initializers.zeros_init(), rngs=rngs)

    def __call__(self, x1: Array, chart: Array) -> tuple[Array, Array]:
        h = jax.nn.silu(self.l1(jnp.concatenate([x1, chart], axis=-1)))
        h = jax.nn.silu(self.l2(h))
        s, t = jnp.split(self.out(h), 2, axis=-1)
        return SCALE_BOUND * jnp.tanh(s / SCALE_BOUND), t


class ChartFlow(nnx.Module):
    """A chart-conditioned affine coupling flow ``R[n] (padded to R[m]) ≅ R[dim B] × R[dim F]``.

    Each chart's affine frame (a full invertible matrix and a shift), then
    ``depth`` couplings; before each, the coordinates go through a fixed
    permutation (the first reverses them, the others are seeded by the
    layer's index, so every coordinate is transformed and conditioned on in
    turn), and the permutations are undone at the end.
    """

    def __init__(self, n: int, base_dim: int, fiber_dim: int, charts: int, depth: int, hidden: int, prior: str = "normal", *, rngs: nnx.Rngs) -> None:
        m = base_dim + fiber_dim
        assert 1 <= n <= m and m >= 2 and charts >= 1 and depth >= 1
        self.n, self.base_dim, self.m, self.charts = n, base_dim, m, charts
        self.prior = prior
        a, r = coupling_halves(m)
        # Each chart's own affine frame x -> A_c x + t_c, at first the
        # identity; ``catnet.bundles.charts.fit`` starts it at the chart's
        # linear trivialization when it is given the training points.
        self.frame = nnx.Param(jnp.broadcast_to(jnp.eye(m, dtype=jnp.float32), (charts, m, m)))
        self.frame_shift = nnx.Param(jnp.zeros((charts, m), jnp.float32))
        self.layers = nnx.List([_Conditioner(a, r, charts, hidden, rngs=rngs) for _ in range(depth)])
        # Layer i permutes first: 0 reverses the coordinates (the padding,
        # last, is conditioned on at once); later ones are fixed shuffles.
        perms = [tuple(range(m - 1, -1, -1))] + [tuple(int(i) for i in np.random.default_rng(i).permutation(m)) for i in range(1, depth)]
        self.perms = tuple(perms)
        # The couplings' permutations undone at the end, so that a flow whose
        # couplings are the identity (as they start) is its frames alone.
        composed = np.arange(m)
        for perm in perms:
            composed = composed[np.array(perm)]
        self.composed = tuple(int(i) for i in composed)
        self.centres = ChartCentres(jnp.zeros((charts, base_dim), jnp.float32))

    # -- the flow for given charts ---------------------------------------------------

    def _onehot(self, chart: Array) -> Array:
        return jax.nn.one_hot(chart, self.charts, dtype=jnp.float32)

    def flow(self, x: Array, chart: Array) -> tuple[Array, Array]:
        """``R[m] -> R[m]`` in ``chart`` (ids, ``(batch,)``): ``(y, log|det J|)``."""
        onehot = self._onehot(chart)
        a = self.m // 2
        a_mat, _, logdet = self._frames()
        y = jnp.einsum("bij,bj->bi", a_mat[chart], x) + self.frame_shift[...][chart]
        ld = logdet[chart]
        for perm, cond in zip(self.perms, self.layers):
            y = y[:, jnp.array(perm)]
            y1, y2 = y[:, :a], y[:, a:]
            s, t = cond(y1, onehot)
            y = jnp.concatenate([y1, y2 * jnp.exp(s) + t], axis=-1)
            ld = ld + jnp.sum(s, axis=-1)
        return y[:, jnp.array(np.argsort(self.composed))], ld

    def flow_inverse(self, y: Array, chart: Array) -> tuple[Array, Array]:
        """The inverse of :meth:`flow` in ``chart``: ``(x, log|det J|)`` of the inverse."""
        onehot = self._onehot(chart)
        a = self.m // 2
        ld = jnp.zeros((y.shape[0],), jnp.float32)
        y = y[:, jnp.array(self.composed)]
        for perm, cond in zip(reversed(self.perms), reversed(list(self.layers))):
            y1, y2 = y[:, :a], y[:, a:]
            s, t = cond(y1, onehot)
            y = jnp.concatenate([y1, (y2 - t) * jnp.exp(-s)], axis=-1)
            ld = ld - jnp.sum(s, axis=-1)
            y = y[:, jnp.array(np.argsort(perm))]
        _, a_inv, logdet = self._frames()
        x = jnp.einsum("bij,bj->bi", a_inv[chart], y - self.frame_shift[...][chart])
        return x, ld - logdet[chart]

    def _frames(self) -> tuple[Array, Array, Array]:
        """Every chart's ``A_c``, ``A_c⁻¹`` and ``log|det A_c|`` (``m × m`` each: cheap to invert whole).

        A frame near singular costs the likelihood ``-log|det A_c|``, which
        keeps training away from it (as Glow's invertible 1×1 convolutions).
        """
        a_mat = self.frame[...]
        return a_mat, jnp.linalg.inv(a_mat), jnp.linalg.slogdet(a_mat)[1]

    # -- charts -----------------------------------------------------------------------

    def nearest_chart(self, b: Array) -> Array:
        """The chart whose centre is nearest each base point ``b`` (``(batch, dim B)``)."""
        c = self.centres[...]
        d = jnp.sum((b[:, None, :] - c[None, :, :]) ** 2, axis=-1)
        return jnp.argmin(d, axis=-1)

    def pad(self, x: Array, key: Array | None) -> Array:
        """``R[n]`` to ``R[m]``: noise of std :data:`PAD_STD` with a key (training), zeros without."""
        extra = self.m - self.n
        if key is not None and NOISE_STD > 0:
            key, k2 = jax.random.split(key)
            x = x + NOISE_STD * jax.random.normal(k2, x.shape, x.dtype)
        if extra == 0:
            return x
        if key is None:
            fill = jnp.zeros((x.shape[0], extra), x.dtype)
        else:
            fill = PAD_STD * jax.random.normal(key, (x.shape[0], extra), x.dtype)
        return jnp.concatenate([x, fill], axis=-1)

    def forward(self, x: Array, condition: Array | None = None, key: Array | None = None) -> tuple[Array, Array]:
        """Total-space points ``(batch, n)`` to ``(batch, m)`` (base estimate, fiber) with ``log|det J|``.

        The chart is the one nearest ``condition`` when given; otherwise
        the self-consistent one (every chart run; the one whose base
        estimate is nearest its own centre kept).
        """
        x = self.pad(x, key)
        if condition is not None:
            return self.flow(x, self.nearest_chart(condition))
        batch, k = x.shape[0], self.charts
        charts = jnp.repeat(jnp.arange(k), batch)
        y, ld = self.flow(jnp.tile(x, (k, 1)), charts)
        y, ld = y.reshape(k, batch, self.m), ld.reshape(k, batch)
        miss = jnp.sum((y[:, :, : self.base_dim] - self.centres[...][:, None, :]) ** 2, axis=-1)
        best = jnp.argmin(miss, axis=0)
        rows = jnp.arange(batch)
        return y[best, rows], ld[best, rows]

    def inverse(self, y: Array) -> tuple[Array, Array]:
        """``(batch, m)`` (base point, fiber) back to total-space points ``(batch, n)`` with the inverse's ``log|det J|``."""
        x, ld = self.flow_inverse(y, self.nearest_chart(y[:, : self.base_dim]))
        return x[:, : self.n], ld


def make_chart_flow(box: Box, rngs: nnx.Rngs) -> ChartFlow:
    """The trivialization of the bundle ``box`` starts from (``triv``, or a ``proj`` standing for it)."""
    n, kb, kf = bundle_sizes(box.dom.obs[0])
    return ChartFlow(n, kb, kf, int(triv_arg(box, "charts")), int(triv_arg(box, "depth")), int(triv_arg(box, "hidden")),
                     str(triv_arg(box, "prior")), rngs=rngs)


def _noise_key(module: ChartFlow, ctx: Context) -> Array | None:
    """The key of the training noise (the points' and the padding's); ``None`` in evaluation."""
    return ctx.key() if ctx.train and ctx.has_key else None


def _condition(module: ChartFlow, ctx: Context) -> Array | None:
    c = ctx.condition
    if c is None:
        return None
    assert c.shape[-1] == module.base_dim, f"base points of size {c.shape[-1]} given to a base R[{module.base_dim}]"
    return c


def _triv_ld(module: ChartFlow, wires: Wires, box: Box, ctx: Context) -> tuple[Wires, Array]:
    (x,) = wires
    y, ld = module.forward(x, _condition(module, ctx), _noise_key(module, ctx))
    return [y[:, : module.base_dim], y[:, module.base_dim :]], ld


def _triv(module: ChartFlow, wires: Wires, box: Box, ctx: Context) -> Wires:
    return _triv_ld(module, wires, box, ctx)[0]


def _triv_inverse_ld(module: ChartFlow, wires: Wires, box: Box, ctx: Context) -> tuple[Wires, Array]:
    b, f = wires
    x, ld = module.inverse(jnp.concatenate([b, f], axis=-1))
    return [x], ld


def _triv_inverse(module: ChartFlow, wires: Wires, box: Box, ctx: Context) -> Wires:
    return _triv_inverse_ld(module, wires, box, ctx)[0]


def _proj(module: ChartFlow, wires: Wires, box: Box, ctx: Context) -> Wires:
    return [_triv(module, wires, box, ctx)[0]]


# -- fiberwise ---------------------------------------------------------------------


class FiberwiseFiLM(nnx.Module):
    """``(b, f) -> (b, (W f + c) * (1 + γ(b)) + β(b))``: a fiber map whose weights depend on the base."""

    def __init__(self, base_dim: int, fiber_dim: int, features: int, hidden: int, *, rngs: nnx.Rngs) -> None:
        self.dense = nnx.Linear(fiber_dim, features, rngs=rngs)
        self.film_hidden = nnx.Linear(base_dim, hidden, rngs=rngs)
        self.film = nnx.Linear(hidden, 2 * features, rngs=rngs)

    def __call__(self, b: Array, f: Array) -> Array:
        gamma, beta = jnp.split(self.film(jax.nn.relu(self.film_hidden(b))), 2, axis=-1)
        return self.dense(f) * (1.0 + gamma) + beta


def _make_fiberwise(box: Box, rngs: nnx.Rngs) -> nnx.Module:
    base, fiber = box.dom.obs
    features = box.kwargs["features"]
    return FiberwiseFiLM(_int(base.shape[-1]), _int(fiber.shape[-1]), _int(features), int(box.kwargs.get("hidden", 64)), rngs=rngs)  # type: ignore[arg-type]


def _fiberwise(module: FiberwiseFiLM, wires: Wires, box: Box, ctx: Context) -> Wires:
    b, f = wires
    return [b, module(b, f)]


OPS: dict[str, Op] = {
    "triv": Op(_triv, make_chart_flow, inverse=_triv_inverse, random=True, forward_ld=_triv_ld, inverse_ld=_triv_inverse_ld),
    "proj": Op(_proj, make_chart_flow, random=True),
    "fiberwise": Op(_fiberwise, _make_fiberwise),
}
