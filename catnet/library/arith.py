"""Elementwise arithmetic on wires: the ``arith`` family of generators.

``add`` adds two wires of one type (``+`` in the wiring form).
"""

from __future__ import annotations

from ..ir import Ty, Value
from . import Generator, RuleContext, _unify_obs, register


def _add(ctx: RuleContext, dom: Ty, args: dict[str, Value]) -> Ty:
    a, b = dom.obs
    _unify_obs(ctx, a, b, "`add` adds two wires of one type")
    return Ty((a,))


register(Generator("add", _add, arity=2, structural=True, doc="A ⊗ A -> A", family="arith"))
