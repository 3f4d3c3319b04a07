"""The lowering of the ``flows`` family (being written)."""

from __future__ import annotations

from . import Op

OPS: dict[str, Op] = {}
