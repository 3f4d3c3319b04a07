"""The lowering of the ``losses`` family (``catnet.library.losses``)."""

from __future__ import annotations

from . import Op

OPS: dict[str, Op] = {}
