"""Where a run's arrays live on a mesh, and its steps jitted with those shardings.

A :class:`Placement` holds one ``NamedSharding`` for every array a
training step reads or writes:

* parameters by :func:`catnet.parallel.rules.partition_specs` (replicated
  over ``data``, split over ``model`` where the rules say);
* the optimizer state following the parameters: every subtree of it shaped
  like the parameters (adam's moments, momentum) takes their shardings,
  anything else (step counts) is replicated;
* the rest of the model's state (batch statistics, the random stream's
  counter) replicated, so every device draws the same dropout masks for
  its share of the batch as one device draws for the whole;
* the device-resident data replicated, and each step's batch index split
  over ``data`` (:meth:`Placement.index`): the gather ``x[index]`` inside
  the step then yields each device its own rows of the batch, with no data
  moving between devices (the partitioner propagates the index's sharding
  to the gathered batch; the compiled step's only collective is the
  gradient all-reduce).

Arrays are built with ``jax.make_array_from_callback`` from host copies
that every process holds alike, which is what multi-process runs need (a
process can only write its own devices' shards) and costs one copy on one.
The jitted steps pin both their input and output shardings, so the state
keeps its layout from step to step and XLA inserts the collectives: the
gradient all-reduce over ``data`` and the gathers of sharded parameters.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .rules import MIN_ELEMENTS, partition_specs


@dataclass(frozen=True)
class Placement:
    """The shardings of a training run's state on one mesh (trees like the state they describe)."""

    mesh: Any
    params: Any
    rest: Any
    opt_state: Any

    @property
    def replicated(self) -> Any:
        """The same whole array on every device."""
        from jax.sharding import NamedSharding, PartitionSpec

        return NamedSharding(self.mesh, PartitionSpec())

    @property
    def batch(self) -> Any:
        """An array whose first axis (the batch) is split over ``data``."""
        from jax.sharding import NamedSharding, PartitionSpec

        return NamedSharding(self.mesh, PartitionSpec("data"))

    def index(self, rows: Any) -> Any:
        """One step's batch index (host integers) as the step takes it: split over ``data``.

        Placing each step's row from the host costs less than slicing an
        epoch's index array on the devices (an eager gather on every
        device per step, which made the step half again slower on CPU).
        """
        return put(np.asarray(rows), self.batch)

    def state(self) -> tuple[Any, Any, Any]:
        """The shardings of ``(params, rest, opt_state)``, as a step takes them."""
        return self.params, self.rest, self.opt_state


def follow(tree: Any, params: Any, param_shardings: Any, other: Any) -> Any:
    """Shardings for ``tree``: each subtree shaped like ``params`` takes ``param_shardings``, every other leaf ``other``."""
    import jax

    shape = jax.tree.structure(params)

    def like_params(node: Any) -> bool:
        return jax.tree.structure(node) == shape

    return jax.tree.map(lambda node: param_shardings if like_params(node) else other, tree, is_leaf=like_params)


def plan(mesh: Any, model: Any, params: Any, rest: Any, opt_state: Any, min_elements: int = MIN_ELEMENTS) -> Placement:
    """The shardings of a compiled model's split state on ``mesh`` (see the module's contract)."""
    import jax
    from jax.sharding import NamedSharding, PartitionSpec

    specs = partition_specs(model, params, int(mesh.shape["model"]), min_elements)
    param_shardings = jax.tree.map(lambda spec: NamedSharding(mesh, spec), specs)
    whole = NamedSharding(mesh, PartitionSpec())
    return Placement(
        mesh,
        param_shardings,
        jax.tree.map(lambda _: whole, rest),
        follow(opt_state, params, param_shardings, whole),
    )


def put(tree: Any, shardings: Any) -> Any:
    """``tree``'s arrays laid out by ``shardings`` (a tree like it, or one sharding for all).

    Each process fills its own devices' shards from its host copy, which
    must be the same in every process (the same seed, the same data).
    """
    import jax

    def one(x: Any, sharding: Any) -> Any:
        if isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            # a typed key array is placed through its raw key data
            data = one(jax.random.key_data(x), sharding)
            return jax.random.wrap_key_data(data, impl=jax.random.key_impl(x))
        host = np.asarray(x)
        return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])

    if not isinstance(shardings, jax.sharding.Sharding):
        return jax.tree.map(one, tree, shardings)
    return jax.tree.map(lambda x: one(x, shardings), tree)


def train_step(step: Callable[..., Any], placement: Placement) -> Callable[..., Any]:
    """``step`` of ``catnet.train.make_functions`` jitted for the mesh.

    Same signature, ``(params, rest, opt_state, inputs, target, index)``:
    the state in and out keeps :attr:`Placement.state`'s shardings, the
    data is replicated, the index split over ``data``, the loss replicated.
    """
    import jax

    p, r, o = placement.state()
    whole = placement.replicated
    return jax.jit(
        step,
        in_shardings=(p, r, o, whole, whole, placement.batch),
        out_shardings=(p, r, o, whole),
    )


def eval_step(step: Callable[..., Any], placement: Placement) -> Callable[..., Any]:
    """``eval_step`` of ``catnet.train.make_functions`` jitted for the mesh.

    The chunk's index and weights are replicated: ``catnet.train.evaluate``
    pads its last chunk to any size, which ``data`` need not divide, and
    evaluation runs once an epoch.
    """
    import jax

    p, r, _ = placement.state()
    whole = placement.replicated
    return jax.jit(step, in_shardings=(p, r, whole, whole, whole, whole), out_shardings=(whole, whole))
