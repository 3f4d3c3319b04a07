"""Training on several devices and hosts: a ``jax.sharding`` mesh, sharding rules from the IR, ``jax.distributed``.

* :mod:`~catnet.parallel.mesh`: ``--mesh data=N[,model=M]`` parsed (JAX-free) and built;
* :mod:`~catnet.parallel.rules`: each parameter's logical axes, read off the IR, and their mesh axes;
* :mod:`~catnet.parallel.placement`: the shardings of a run's state, its arrays placed, its steps jitted;
* :mod:`~catnet.parallel.checkpoint`: restoring a checkpoint onto the current mesh, whatever mesh saved it;
* :mod:`~catnet.parallel.distributed`: ``jax.distributed.initialize`` from the environment.

Importing this package imports no JAX; its functions import it when called.
"""

from .mesh import AXES, MeshSpec, build, parse, require_batch
from .rules import MIN_ELEMENTS, RULES, logical_axes, partition_specs

__all__ = [
    "AXES",
    "MIN_ELEMENTS",
    "RULES",
    "MeshSpec",
    "build",
    "logical_axes",
    "parse",
    "partition_specs",
    "require_batch",
]
