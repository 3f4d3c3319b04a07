"""The lowering of bundle trivializations and the ``bundles`` family (being written)."""

from __future__ import annotations

from . import Op

OPS: dict[str, Op] = {}
