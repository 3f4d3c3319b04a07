"""Restoring a checkpoint onto the current mesh, whatever mesh (or device count) saved it.

Orbax saves a sharded array as its global value (each process writes its
own shards, tensorstore joins them) and restores it into whatever layout
the restore target asks for.  The target is a tree of
``jax.ShapeDtypeStruct`` carrying the current mesh's shardings
(:func:`abstract`): a state saved on two devices with its kernels split
over ``model`` restores whole onto one device, and the other way round,
bit for bit.

``catnet.checkpoints.Orbax.restore(step, like)`` builds its target with
``ocp.utils.to_shape_dtype_struct``, which keeps each array's sharding: so
passing it the state already laid out by :func:`catnet.parallel.placement.put`
restores onto the mesh as well.  :func:`restore` here is the same read for
callers that hold shardings rather than placed arrays.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def abstract(like: Any, shardings: Any) -> Any:
    """The restore target of ``like``'s arrays laid out by ``shardings`` (a tree like it)."""
    import jax

    def one(x: Any, sharding: Any) -> Any:
        return jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding)

    return jax.tree.map(one, like, shardings)


def restore(directory: str | Path, step: int, like: Any, shardings: Any) -> Any:
    """The ``state`` item of orbax step ``step`` in ``directory`` laid out by ``shardings``.

    ``directory`` is a run's ``checkpoints`` folder as
    ``catnet.checkpoints.Orbax`` writes it (items ``state`` and ``meta``),
    ``like`` a state tree of the same structure (arrays or shape structs);
    verify the step with ``catnet.checkpoints.verified_step`` first.
    Errors are orbax's own.
    """
    import orbax.checkpoint as ocp

    target = abstract(like, shardings)
    with ocp.CheckpointManager(Path(directory).absolute()) as manager:
        got = manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(target)))
    return got["state"]
