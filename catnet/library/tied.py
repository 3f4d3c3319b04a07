"""The ``tied`` family of generators (see ``docs/language.md`` §11)."""

from __future__ import annotations
