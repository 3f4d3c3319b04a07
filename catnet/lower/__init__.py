"""Lowering: checked diagrams to JIT-compiled Flax NNX models.

``compile`` is the entry point; ``Model`` is what it returns; ``OPS`` is the
table from generator names to Flax code.  Importing this package imports
JAX, so the front end (``check``, ``render``) never does.
"""

from .compile import compile, lower
from .model import Model
from .ops import OPS

__all__ = ["compile", "lower", "Model", "OPS"]
