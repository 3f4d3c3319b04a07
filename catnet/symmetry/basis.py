"""Equivariant weights: the linear maps ``W`` with ``ρ_out(g) W = W ρ_in(g)`` for every ``g``.

A representation is a direct sum of building blocks with multiplicities
(``catnet.symmetry.reps``), and so is the space of equivariant maps: for
each pair (output block ``b``, input block ``a``) it is a small basis
``B_ab`` (``k × d_b × d_a``) tensored with every choice of copies.  So a
:class:`Basis` keeps one small basis per pair of distinct blocks, and a
weight is ``W[b copy i, a copy j] = Σ_k θ_ab[k, i, j] B_ab[k]`` with
``θ_ab`` of shape ``(k, m_b, m_a)``: ``64·regular(D4) → 64·regular(D4)`` is
one ``8 × 8`` problem with 8 solutions and 32,768 free parameters, never a
``512² × 512²`` system.

Each small basis is solved once:

* between two **permutation** blocks (regular, quotient, permutation, and
  trivial), exactly, as the orbits of ``G`` acting on the pairs of
  coordinates: one basis matrix per orbit, the orbit's indicator scaled to
  unit norm;
* otherwise as the null space of the constraint over the group's
  generators, stacked as ``ρ_out(g) ⊗ I − I ⊗ ρ_in(g)ᵀ`` (row-major
  ``vec W``), by SVD, its rows orthonormal.

Solved bases are cached in memory and on disk (``$CATNET_CACHE``, default
``~/.cache/catnet``), keyed by the two blocks' names, so a model is not
solved again on the next run.  The number of solutions always equals
``⟨χ_a, χ_b⟩`` (a test checks this over random representations).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import cache
from .reps import Rep

#: Version of the cache's format and of the solver: part of every key.
_VERSION = "1"
#: The largest ``d_out · d_in`` of a pair of blocks the SVD solver takes.
MAX_SOLVE = 4096
#: The most numbers one pair of blocks' basis may hold (``k · d_out · d_in``, 128 MB of float64).
MAX_BASIS = 1 << 24


@dataclass(frozen=True)
class Piece:
    """The equivariant maps from input block ``a`` (all its copies) to output block ``b``.

    ``out_at``/``in_at`` are where the blocks' copies start; ``basis`` is
    ``(k, d_b, d_a)``; the piece has ``k · m_out · m_in`` free parameters.
    """

    out_at: int
    out_dim: int
    m_out: int
    in_at: int
    in_dim: int
    m_in: int
    basis: np.ndarray = field(repr=False)

    @property
    def size(self) -> int:
        return int(self.basis.shape[0]) * self.m_out * self.m_in


@dataclass(frozen=True)
class Basis:
    """Every equivariant map ``rin -> rout``: :meth:`expand` turns free parameters into ``W`` (``rout.dim × rin.dim``)."""

    rin: Rep
    rout: Rep
    pieces: tuple[Piece, ...]

    @property
    def size(self) -> int:
        """The number of free parameters (the dimension of the space of equivariant maps)."""
        return sum(p.size for p in self.pieces)

    def shapes(self) -> list[tuple[int, int, int]]:
        """The shape ``(k, m_out, m_in)`` of each piece's parameters, in order."""
        return [(int(p.basis.shape[0]), p.m_out, p.m_in) for p in self.pieces]

    def expand(self, thetas: list, xp=np):  # noqa: ANN001
        """``W`` from one parameter array per piece (``xp`` is ``numpy`` or ``jax.numpy``)."""
        w = xp.zeros((self.rout.dim, self.rin.dim), dtype=np.float32 if xp is not np else np.float64)
        for p, theta in zip(self.pieces, thetas):
            block = xp.einsum("kab,kij->aibj", theta, xp.asarray(p.basis, dtype=w.dtype))
            block = block.reshape(p.m_out * p.out_dim, p.m_in * p.in_dim)
            rows = slice(p.out_at, p.out_at + p.m_out * p.out_dim)
            cols = slice(p.in_at, p.in_at + p.m_in * p.in_dim)
            w = w.at[rows, cols].add(block) if xp is not np else _add(w, rows, cols, block)
        return w


def _add(w: np.ndarray, rows: slice, cols: slice, block: np.ndarray) -> np.ndarray:
    w[rows, cols] += block
    return w


def solve(rin: Rep, rout: Rep) -> Basis:
    """The basis of the equivariant maps ``rin -> rout`` (both representations of one group)."""
    if rin.group != rout.group:
        raise ValueError(f"an equivariant map needs representations of one group, not {rin.group} and {rout.group}")
    pieces = []
    out_at = 0
    for b, m_out in rout.blocks:
        in_at = 0
        for a, m_in in rin.blocks:
            basis = block_basis(a, b)
            if basis.shape[0]:
                pieces.append(Piece(out_at, b.dim, m_out, in_at, a.dim, m_in, basis))
            in_at += a.dim * m_in
        out_at += b.dim * m_out
    return Basis(rin, rout, tuple(pieces))


_MEMORY: dict[str, np.ndarray] = {}


def block_basis(a: Rep, b: Rep) -> np.ndarray:
    """``(k, d_b, d_a)``: an orthonormal basis of the maps ``W`` with ``ρ_b(g) W = W ρ_a(g)`` (cached)."""
    key = hashlib.sha256(f"{_VERSION}|{a.group.name}|{a.name}|{b.name}".encode()).hexdigest()[:32]
    found = _MEMORY.get(key)
    if found is not None:
        return found
    path = cache_dir() / f"{key}.npy"
    try:
        found = np.load(path, allow_pickle=False)
        if found.ndim == 3 and found.shape[1:] == (b.dim, a.dim):
            _MEMORY[key] = found
            return found
    except (OSError, ValueError):
        pass
    if a.is_permutation and b.is_permutation:
        from .reps import intertwiner_dimension

        k = intertwiner_dimension(a, b)
        if k * a.dim * b.dim > MAX_BASIS:
            raise ValueError(f"the equivariant maps {a.name} -> {b.name} have a basis of {k * a.dim * b.dim:,} numbers, "
                             f"more than catnet keeps ({MAX_BASIS:,})")
        found = _orbits(a, b)
    else:
        found = _null_space(a, b)
    _MEMORY[key] = found
    # A read-only home only means solving again next time.
    cache.store(path, lambda f: np.save(f, found, allow_pickle=False))
    return found


def cache_dir() -> Path:
    """Where solved bases are kept: ``$CATNET_CACHE/bases``, or ``~/.cache/catnet/bases``."""
    return cache.cache_dir("bases")


def _orbits(a: Rep, b: Rep) -> np.ndarray:
    """Permutation blocks: one basis matrix per orbit of ``G`` on the pairs (output coordinate, input coordinate)."""
    out_perm = b.perm if b.perm is not None else np.argmax(b.matrices, axis=1)  # (|G|, d_b): g sends i to out_perm[g, i]
    in_perm = a.perm if a.perm is not None else np.argmax(a.matrices, axis=1)
    label = -np.ones((b.dim, a.dim), dtype=np.int64)
    count = 0
    for i in range(b.dim):
        for j in range(a.dim):
            if label[i, j] >= 0:
                continue
            label[out_perm[:, i], in_perm[:, j]] = count
            count += 1
    basis = np.zeros((count, b.dim, a.dim))
    basis[label, np.arange(b.dim)[:, None], np.arange(a.dim)[None, :]] = 1.0
    return basis / np.sqrt(basis.sum(axis=(1, 2), keepdims=True))


def _null_space(a: Rep, b: Rep) -> np.ndarray:
    """Any blocks: the null space of the constraint over the generators, by SVD."""
    da, db = a.dim, b.dim
    if da * db > MAX_SOLVE:
        raise ValueError(f"the equivariant maps {a.name} -> {b.name} are a {db} × {da} problem, "
                         f"more than catnet solves ({MAX_SOLVE} unknowns); write the representation as a sum of smaller blocks")
    gens = a.group.generators or (0,)
    rows = [np.kron(b.matrix(g), np.eye(da)) - np.kron(np.eye(db), a.matrix(g).T) for g in gens]
    m = np.concatenate(rows, axis=0)
    _, s, vh = np.linalg.svd(m)
    tol = max(m.shape) * np.finfo(np.float64).eps * (s[0] if s.size else 1.0) * 100
    rank = int(np.sum(s > tol))
    basis = vh[rank:].reshape(-1, db, da)
    if not basis.shape[0]:
        return basis
    # a sign convention, so the same problem gives the same basis on every machine's LAPACK
    flat = basis.reshape(basis.shape[0], -1)
    pivots = np.argmax(np.abs(flat) > 1e-9, axis=1)
    signs = np.sign(flat[np.arange(flat.shape[0]), pivots])
    return basis * signs[:, None, None]
