"""The lowering of the ``tied`` family (``catnet.library.tied``).

``transposed(wte)`` owns no module: it reads the weight of the shared
instance's module (``ctx.shared``, built once on the root, see
``catnet.lower.model``), found along the path the checker validated
(``catnet.library.tied.weight_path``).  An ``embed`` is used through
``nnx.Embed.attend`` (``h @ E.T``), a ``dense`` through its kernel
(``y @ W.T``, without the bias).  Gradients from this use and the
instance's other uses add up in the one parameter.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from ...ir import Box
from ...library.tied import instance, weight_path
from . import Context, Op, Wires


def _transposed(module: Any, wires: Wires, box: Box, ctx: Context) -> Wires:
    (h,) = wires
    shared = instance(box.kwargs["of"])
    path = weight_path(shared)
    assert path, "the checker accepts `transposed` of one embed or dense only"
    # The shared instances of this forward pass (``model.Context.shared``).
    weight = ctx.shared[shared.shared]
    # Each module on the path is the Node of a one-box body: its layer 0.
    for _ in path[1:]:
        weight = weight.child(0)
    if path[-1].name == "embed":
        return [weight.attend(h)]
    # The kernel in the dtype the model computes in (the dense's own ``dtype``).
    return [jnp.dot(h, weight.kernel[...].astype(h.dtype).T)]


OPS: dict[str, Op] = {
    "transposed": Op(_transposed),
}
