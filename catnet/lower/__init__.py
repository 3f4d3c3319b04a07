"""Lowering: checked diagrams to JIT-compiled Flax NNX models.

``compile`` is the entry point; ``Model`` is what it returns; ``OPS`` is the
table from generator names to Flax code.  They load on first use: the
JAX-free naming rules in ``catnet.lower.names`` are shared with
``catnet summary``, which must not import JAX.
"""

from __future__ import annotations

from typing import Any

__all__ = ["compile", "lower", "Model", "OPS"]


def __getattr__(name: str) -> Any:
    if name in ("compile", "lower"):
        from . import api as _compile

        return getattr(_compile, name)
    if name == "Model":
        from .model import Model

        return Model
    if name == "OPS":
        from .ops import OPS

        return OPS
    raise AttributeError(f"module 'catnet.lower' has no attribute {name!r}")
