"""The lowering of the ``symmetry`` family (``catnet.library.symmetry``).

``glinear`` and ``gconv`` keep one ``nnx.Param`` per piece of their solved
basis (``catnet.symmetry.basis``), of shape ``(k, m_out, m_in)``, and one
per piece of the bias's basis (the maps ``trivial -> ρ_out``, shape
``(k, m_out, 1)``), so the module's ``Param`` scalars are exactly the box's
``count`` rule.  ``deepsets`` keeps ``lam`` and ``gam`` (``c × f``) and
``bias``; ``gpool`` is a pure function.

The bases themselves are not module state: they are NumPy constants of an
:class:`Expansion`, solved when the module is made and kept in a cache
keyed by the box's representations, which ``apply`` reads at trace time.
So they never enter ``nnx.state``, checkpoints or parameter counts, are
not stacked by ``repeat``, and reach XLA as constants of the program.

One forward pass expands the weight once, one small ``einsum`` per piece
laid out directly as a convolution kernel ``(k·k, c_in, c_out)`` (cell
``d`` of the window row-major, as ``actions.kernel_rep`` numbers it), then
runs a plain matrix product or ``jax.lax.conv_general_dilated`` — the
program a hand-written Flax layer with its weights expanded once per step
gives.  Why this is equivariant: ``gconv``'s basis solves
``(P ⊗ ρ_out)(g) W = W ρ_in(g)`` with ``P`` the window's permutation, that
is ``K(g·d) = ρ_out(g) K(d) ρ_in(g)⁻¹``, and a cross-correlation
``y[p] = Σ_d K(d) x[p + d]`` with that kernel commutes with
``(g·x)[p] = ρ(g) x[g⁻¹ p]`` (``actions.act``); SAME padding of an odd
window pads a square grid symmetrically, so the zeros turn with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from ...ir import Box
from ...library.symmetry import kernel_target
from ...symmetry.actions import action
from ...symmetry.basis import Basis, solve
from ...symmetry.groups import parse as parse_group
from ...symmetry.reps import Rep, trivial
from . import Array, Context, Op, Wires, _int, option

#: The variance an output channel gets from inputs of unit variance: He's
#: gain, for the relu that usually follows an equivariant layer.
GAIN = 2.0


@dataclass(frozen=True, eq=False)
class KernelPiece:
    """One piece of an expansion: ``basis`` ``(k, cells, d_out, d_in)`` between two blocks' copies."""

    out_block: int
    in_block: int
    shape: tuple[int, int, int]
    basis: np.ndarray


@dataclass(frozen=True, eq=False)
class Expansion:
    """Free parameters to a kernel ``(cells, c_in, c_out)`` and a bias ``(c_out,)`` (NumPy constants).

    ``outs``/``ins`` are the ``(dim, copies)`` of the output and input
    representations' blocks in order; ``pieces`` the weight's pieces and
    ``bias`` the bias's (``d_in = 1``).
    """

    cells: int
    outs: tuple[tuple[int, int], ...]
    ins: tuple[tuple[int, int], ...]
    pieces: tuple[KernelPiece, ...]
    bias: tuple[KernelPiece, ...]

    @property
    def c_in(self) -> int:
        return sum(d * m for d, m in self.ins)

    @property
    def c_out(self) -> int:
        return sum(d * m for d, m in self.outs)

    def stds(self) -> list[float]:
        """The initial std of each weight piece: every output block gets variance ``GAIN`` per channel.

        The basis matrices are orthonormal, so ``θ`` with i.i.d. entries of
        variance ``σ²`` gives one copy of output block ``j`` a squared norm
        ``σ² · Σ k·m_in`` over its pieces (every cell of the window counted):
        the fan-in of the block, shared out evenly among its pieces.
        """
        fan = [0] * len(self.outs)
        for p in self.pieces:
            fan[p.out_block] += p.shape[0] * p.shape[2]
        return [float(np.sqrt(GAIN * self.outs[p.out_block][0] / fan[p.out_block])) for p in self.pieces]

    def kernel(self, thetas: list[Array]) -> Array:
        """``K[d, c_in, c_out]`` from one parameter array per piece: one ``einsum`` per piece, then a layout."""
        found = {(p.out_block, p.in_block): _block(p, t) for p, t in zip(self.pieces, thetas)}
        columns = []
        for j, (dj, mj) in enumerate(self.outs):
            rows = [found.get((j, a), jnp.zeros((self.cells, da * ma, dj * mj), jnp.float32)) for a, (da, ma) in enumerate(self.ins)]
            columns.append(rows[0] if len(rows) == 1 else jnp.concatenate(rows, axis=1))
        return columns[0] if len(columns) == 1 else jnp.concatenate(columns, axis=2)

    def bias_vector(self, thetas: list[Array]) -> Array:
        """The bias ``(c_out,)``: zero on the output blocks with no invariant part."""
        found = {p.out_block: _block(p, t)[0, 0] for p, t in zip(self.bias, thetas)}
        parts = [found.get(j, jnp.zeros((d * m,), jnp.float32)) for j, (d, m) in enumerate(self.outs)]
        return parts[0] if len(parts) == 1 else jnp.concatenate(parts)


def _block(p: KernelPiece, theta: Array) -> Array:
    """``(cells, m_in·d_in, m_out·d_out)``: ``Σ_k θ[k, copy out, copy in] B[k, cell, out, in]``."""
    _, m_out, m_in = p.shape
    cells, d_out, d_in = p.basis.shape[1:]
    out = jnp.einsum("kci,kdba->diacb", theta, p.basis)
    return out.reshape(cells, m_in * d_in, m_out * d_out)


def _pieces(basis: Basis, rin: Rep, rout: Rep, cells: int) -> tuple[KernelPiece, ...]:
    """A solved ``catnet.symmetry.basis.Basis`` as pieces indexed by block, its rows split into window cells."""
    out_at = np.cumsum([0] + [b.dim * m * cells for b, m in rout.blocks])
    in_at = np.cumsum([0] + [a.dim * m for a, m in rin.blocks])
    pieces = []
    for p, shape in zip(basis.pieces, basis.shapes()):
        j, a = int(np.searchsorted(out_at, p.out_at)), int(np.searchsorted(in_at, p.in_at))
        assert out_at[j] == p.out_at and in_at[a] == p.in_at
        b = np.asarray(p.basis, np.float32)
        pieces.append(KernelPiece(j, a, shape, b.reshape(b.shape[0], cells, b.shape[1] // cells, b.shape[2])))
    return tuple(pieces)


@lru_cache(maxsize=256)
def expansion(group: str, rin_text: str | None, rout_text: str | None, c_in: int, c_out: int, kernel: int) -> Expansion:
    """The expansion of ``glinear`` (``kernel`` 0: no window) or ``gconv`` between two channel representations (cached)."""
    rin = action(group, rin_text, (c_in,)).rep
    rout = action(group, rout_text, (c_out,)).rep
    cells = kernel * kernel if kernel else 1
    target = kernel_target(group, kernel, rout) if kernel else rout
    weights = _pieces(solve(rin, target), rin, rout, cells)
    one = trivial(rin.group)
    bias = _pieces(solve(one, rout), one, rout, 1)
    return Expansion(cells, tuple((b.dim, m) for b, m in rout.blocks), tuple((a.dim, m) for a, m in rin.blocks), weights, bias)


def _expansion_of(box: Box, kernel: int) -> Expansion:
    dom, cod = box.dom.obs[0], box.cod.obs[0]
    assert dom.group == cod.group, f"`{box.name}` maps within one group after checking"
    return expansion(str(dom.group), dom.rep, cod.rep, _int(dom.shape[-1]), _int(cod.shape[-1]), kernel)


def _normals(rngs: nnx.Rngs, shapes: list[tuple[int, ...]], stds: list[float]) -> list[Array]:
    """Normal draws of the given shapes and stds, all from one key of ``rngs.params()``.

    One draw per module, cut into pieces: each new shape drawn on its own
    would be one more small program for JAX to compile when the model is built.
    """
    sizes = [int(np.prod(s)) for s in shapes]
    if not sum(sizes):
        return [jnp.zeros(s, jnp.float32) for s in shapes]
    flat = np.asarray(jax.random.normal(rngs.params(), (sum(sizes),), jnp.float32))
    at = np.cumsum([0] + sizes)
    return [jnp.asarray(std * flat[a:b].reshape(s), jnp.float32) for s, std, a, b in zip(shapes, stds, at[:-1], at[1:])]


class Equivariant(nnx.Module):
    """The free parameters of an equivariant linear map or kernel: ``weights[i]`` per piece, ``bias[i]`` per bias piece."""

    def __init__(self, plan: Expansion, use_bias: bool, *, rngs: nnx.Rngs) -> None:
        draws = _normals(rngs, [p.shape for p in plan.pieces], plan.stds())
        self.weights = nnx.List([nnx.Param(w) for w in draws])
        self.bias = nnx.List([nnx.Param(jnp.zeros(p.shape, jnp.float32)) for p in plan.bias] if use_bias else [])

    def kernel(self, plan: Expansion) -> Array:
        return plan.kernel([w[...] for w in self.weights])

    def bias_vector(self, plan: Expansion) -> Array | None:
        return plan.bias_vector([b[...] for b in self.bias]) if len(self.bias) else None


def _kernel_size(box: Box) -> int:
    return int(option(box, "kernel")) if box.name == "gconv" else 0


def _make_equivariant(box: Box, rngs: nnx.Rngs) -> nnx.Module:
    # Solving here warms the cache that ``apply`` reads at trace time.
    return Equivariant(_expansion_of(box, _kernel_size(box)), bool(option(box, "bias")), rngs=rngs)


def _add_bias(y: Array, b: Array | None) -> Array:
    # ranks spelled out: the tests refuse implicit rank promotion
    return y if b is None else y + b.reshape((1,) * (y.ndim - 1) + b.shape)


def _apply_glinear(module: Any, wires: Wires, box: Box, ctx: Context) -> Wires:
    (x,) = wires
    plan = _expansion_of(box, 0)
    w = module.kernel(plan)[0]  # (c_in, c_out)
    return [_add_bias(x @ w, module.bias_vector(plan))]


def _apply_gconv(module: Any, wires: Wires, box: Box, ctx: Context) -> Wires:
    (x,) = wires
    k = _kernel_size(box)
    plan = _expansion_of(box, k)
    w = module.kernel(plan).reshape(k, k, plan.c_in, plan.c_out)  # HWIO, cell d = (row, column) row-major
    y = jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return [_add_bias(y, module.bias_vector(plan))]


def _apply_gpool(module: Any, wires: Wires, box: Box, ctx: Context) -> Wires:
    (x,) = wires
    order = parse_group(str(box.dom.obs[0].group)).order
    # regular * m is laid out copy-major: ([copy][group element])
    copies = x.reshape(x.shape[:-1] + (x.shape[-1] // order, order))
    reduce = jnp.max if option(box, "mode") == "max" else jnp.mean
    return [reduce(copies, axis=-1)]


class DeepSets(nnx.Module):
    """``y_i = x_i Λ + mean_j(x_j) Γ + b`` (Zaheer et al., 2017): ``lam``, ``gam`` ``(c, f)`` and ``bias`` ``(f,)``."""

    def __init__(self, c: int, f: int, use_bias: bool, *, rngs: nnx.Rngs) -> None:
        # He's variance over the fan-in of both terms together, 2c
        std = float(np.sqrt(GAIN / (2 * c)))
        lam, gam = _normals(rngs, [(c, f), (c, f)], [std, std])
        self.lam = nnx.Param(lam)
        self.gam = nnx.Param(gam)
        self.bias = nnx.Param(jnp.zeros((f,), jnp.float32)) if use_bias else None

    def __call__(self, x: Array) -> Array:
        pooled = jnp.mean(x, axis=-2, keepdims=True) @ self.gam[...]
        return _add_bias(x @ self.lam[...] + pooled, None if self.bias is None else self.bias[...])


def _make_deepsets(box: Box, rngs: nnx.Rngs) -> nnx.Module:
    c, f = _int(box.dom.obs[0].shape[-1]), _int(box.cod.obs[0].shape[-1])
    return DeepSets(c, f, bool(option(box, "bias")), rngs=rngs)


def _apply_deepsets(module: Any, wires: Wires, box: Box, ctx: Context) -> Wires:
    (x,) = wires
    return [module(x)]


OPS: dict[str, Op] = {
    "glinear": Op(_apply_glinear, _make_equivariant),
    "gconv": Op(_apply_gconv, _make_equivariant),
    "gpool": Op(_apply_gpool),
    "deepsets": Op(_apply_deepsets, _make_deepsets),
}
