"""The lowering of the ``arith`` family (``catnet.library.arith``)."""

from __future__ import annotations

from typing import Any

from ...ir import Box
from . import Context, Op, Wires


def _add(module: Any, wires: Wires, box: Box, ctx: Context) -> Wires:
    a, b = wires
    return [a + b]


OPS: dict[str, Op] = {
    "add": Op(_add),
}
