"""The lowering of the ``tied`` family (``catnet.library.tied``)."""

from __future__ import annotations

from . import Op

OPS: dict[str, Op] = {}
