"""Fiber bundles at run time: data, charts, the bundle objective, metrics and sampling (``docs/bundles.md``).

A compiled trivialization ``E -> B ⊗ F`` (a model whose entry is a
``triv``) is a conditional generative model of the fibers: :func:`sample`
draws the fiber over a base point.  The submodules: ``datasets`` (the
``torus`` and ``iris`` bundles), ``charts`` (k-means chart centres and the
parameter count), ``objective`` (the training loss) and ``metrics``
(projection error and fiber coverage).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def sample(model: Any, base: np.ndarray, n: int, key: Any) -> Any:
    """``n`` points ``(n, dim E)`` of the fiber over ``base`` (shape ``(dim B,)``) from a compiled ``E -> B ⊗ F``.

    ``z`` is drawn from the fiber prior of the model's ``triv`` (with
    ``key``) and ``inv(triv)`` applied to ``base ⊗ z`` in evaluation mode
    (the padding coordinates dropped); the model's mode is restored
    afterwards.  The same ``key`` gives the same points.  A base point of
    the wrong size is a ``ValueError`` (``catnet sample`` reports it).
    """
    return sample_many(model, np.asarray(base, np.float32).reshape(1, -1), n, key, keys=[key])[0]


def sample_many(model: Any, bases: np.ndarray, n: int, key: Any, keys: Any = None) -> Any:
    """``n`` fiber points over each of ``bases`` (``(k, dim B)``): ``(k, n, dim E)``, in one inverse pass.

    Base ``i`` draws its ``z`` with ``keys[i]`` (``jax.random.fold_in(key, i)``
    by default), so the points over ``bases[i]`` are those of
    ``sample(model, bases[i], n, keys[i])``.
    """
    import jax
    import jax.numpy as jnp

    from .objective import prior_of

    prior = prior_of(model.diagram)
    b = np.asarray(bases, np.float32)
    k = _base_size(model)
    if b.ndim != 2 or b.shape[1] != k:
        got = b.shape[-1] if b.ndim == 2 else b.size
        raise ValueError(f"the base is R[{k}], so a base point has {k} numbers, not {got}")
    if keys is None:
        keys = [jax.random.fold_in(key, i) for i in range(len(b))]
    z = jnp.concatenate([prior.sample(kk, int(n)) for kk in keys], axis=0)
    rows = jnp.repeat(jnp.asarray(b), int(n), axis=0)
    training = not model.deterministic
    model.eval()
    try:
        x = model.inverse(rows, z)
    finally:
        if training:
            model.train()
    return x.reshape(len(b), int(n), -1)


def _base_size(model: Any) -> int:
    """The size ``k`` of the base ``R[k]``: the first codomain wire of ``E -> B ⊗ F``."""
    ob = model.cod.obs[0]
    assert ob.shape and isinstance(ob.shape[0], int), "a trivialization's base is R[k]"
    return int(ob.shape[0])


__all__ = ["sample", "sample_many"]
