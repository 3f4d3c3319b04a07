"""The lowering of the ``learned`` family (``catnet.library.learned``)."""

from __future__ import annotations

from . import Op

OPS: dict[str, Op] = {}
