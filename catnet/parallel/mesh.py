"""``--mesh data=N[,model=M]``: the device mesh a run trains on.

:func:`parse` reads the option's text without JAX, so ``catnet train``
refuses a malformed spec before anything is imported; :func:`build` makes
the ``jax.sharding.Mesh`` with axes ``("data", "model")`` and refuses a
spec whose product is not the number of devices JAX sees (over all
processes).  Both raise E0703 naming ``--mesh``.

The batch axis is split over ``data``; parameters are replicated over
``data`` and, where :mod:`catnet.parallel.rules` says so, sharded over
``model``.  Both axes are ``AxisType.Auto``: XLA's partitioner propagates
the shardings through the step, so the model code carries no annotation.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import CatnetError, shown

#: The mesh's axis names, in the order of its shape.
AXES = ("data", "model")

_EXAMPLE = "e.g. --mesh data=2 (batch split over 2 devices) or --mesh data=2,model=2 (parameters sharded over 2 as well)"
_ITEM = re.compile(r"^\s*([A-Za-z_]\w*)\s*=\s*(\S+?)\s*$")


@dataclass(frozen=True)
class MeshSpec:
    """The size of each mesh axis: the batch over ``data``, parameters over ``model``."""

    data: int = 1
    model: int = 1

    @property
    def devices(self) -> int:
        return self.data * self.model

    def __str__(self) -> str:
        return f"data={self.data},model={self.model}"


def _fail(message: str, help: str = _EXAMPLE) -> CatnetError:
    return CatnetError("E0703", message, None, help=help)


def parse(text: str) -> MeshSpec:
    """``data=N[,model=M]`` (either order, ``model`` 1 if left out) as a :class:`MeshSpec`; E0703 otherwise.

    Each size is a whole number from 1 to 65536; an axis named twice, an
    unknown axis or a missing ``data`` is refused with the spec's form.
    """
    text = str(text)
    if not text.strip():
        raise _fail("--mesh is empty")
    sizes: dict[str, int] = {}
    for part in text.split(","):
        m = _ITEM.match(part)
        if m is None:
            raise _fail(f"--mesh must be a list of AXIS=SIZE, not {shown(text)}")
        axis, value = m.group(1), m.group(2)
        if axis not in AXES:
            raise _fail(f"--mesh has no axis `{axis}`: its axes are `data` and `model`")
        if axis in sizes:
            raise _fail(f"--mesh names `{axis}` twice")
        try:
            size = int(value, 10)
        except ValueError:
            raise _fail(f"--mesh {axis} must be a whole number, not {shown(value)}") from None
        if not 1 <= size <= 65536:
            raise _fail(f"--mesh {axis} must be a whole number from 1 to 65536, not {size}")
        sizes[axis] = size
    if "data" not in sizes:
        raise _fail(f"--mesh {text.strip()} does not say how many devices split the batch", help="give data=N first, " + _EXAMPLE)
    return MeshSpec(**sizes)


def require_batch(spec: MeshSpec, batch: int) -> None:
    """E0703 unless ``data`` divides the batch: each device takes an equal share of every step."""
    if batch % spec.data:
        below = batch - batch % spec.data
        raise _fail(
            f"--batch-size {batch} does not split over --mesh data={spec.data}: each device takes an equal share",
            help=f"use a batch size that data={spec.data} divides, e.g. --batch-size {below or spec.data}",
        )


def build(spec: MeshSpec, devices: Sequence[Any] | None = None) -> Any:
    """The ``jax.sharding.Mesh`` of ``spec`` over ``devices`` (default: every device of every process).

    E0703 if the spec's product is not the number of devices.
    """
    import jax

    count = len(devices) if devices is not None else jax.device_count()
    if spec.devices != count:
        cpu = jax.default_backend() == "cpu"
        raise _fail(
            f"--mesh {spec} asks for {spec.devices} devices, but JAX sees {count}",
            help=f"the product of the sizes must be {count}, e.g. --mesh data={count}"
            + (
                "; on CPU, XLA_FLAGS=--xla_force_host_platform_device_count=N (set before the run) "
                "makes N host devices"
                if cpu
                else ""
            ),
        )
    auto = jax.sharding.AxisType.Auto
    return jax.make_mesh((spec.data, spec.model), AXES, axis_types=(auto, auto), devices=devices)
