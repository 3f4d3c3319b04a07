"""The lowering of the ``axes`` family (``catnet.library.axes``)."""

from __future__ import annotations

from . import Op

OPS: dict[str, Op] = {}
