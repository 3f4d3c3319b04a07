"""IR to source text: a point-free expression that checks back to the same IR.

``pretty(d)`` writes each layer as ``id ⊗ box ⊗ id`` with every box and
identity ascribed its exact type, so that, in a module with the same
definitions, checking ``morphism t : dom -> cod = <pretty(d)>`` gives back a
diagram equal to ``d`` (spans and object names are not compared)::

    >>> from catnet import loads
    >>> m = loads("morphism f : R[4] -> R[2] = dense ; relu")
    >>> pretty(m.diagram("f"))
    '(dense(features=2) : R[4] -> R[2]) ; (relu : R[2] -> R[2])'

The walk over nested bodies (``repeat``, ``inv``, ``scan``, diagram
arguments) uses an explicit stack, not recursion, so a diagram nested to
any depth prints.
"""

from __future__ import annotations

from typing import Any, Callable

from . import dims
from .ir import Box, Diagram, Ob, Ty, Value
from .library import GENERATORS
from .pieces import Piece, joined, render



def pretty_ob(ob: Ob) -> str:
    """One wire's type: ``R[8, d]``, or the declared name of a bundle or G-space.

    A G-space that no declaration names (the output of ``glinear``) is
    spelled out, ``R[8] under C4 as regular * 2``: text for reading, as the
    language writes an action only in an object declaration.
    """
    if ob.base == "bundle" or ob.group:
        assert ob.name or ob.base != "bundle", "bundles are only written by their object name"
        return ob.name or ob.structure()
    return f"{ob.base}[{', '.join(dims.show(d) for d in ob.shape)}]"


def pretty_ty(ty: Ty) -> str:
    """A product of wires, ``I`` when empty."""
    return " ⊗ ".join(pretty_ob(o) for o in ty) if len(ty) else "I"


def _value(v: Value) -> list[Piece]:
    if isinstance(v, bool):
        return ["true" if v else "false"]
    if isinstance(v, str):
        return ['"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"']
    if isinstance(v, float):
        return [repr(v)]
    if isinstance(v, Diagram):
        # A `morphism` argument is the use of a shared instance: its name.
        only = v.layers[0].box if len(v.layers) == 1 else None
        if only is not None and only.shared is not None:
            return [only.shared]
        return [("diagram", v)]
    if isinstance(v, tuple):
        return joined([("value", x) for x in v], ", ")
    return [dims.show(v)]  # type: ignore[arg-type]


def _args(box: Box) -> list[Piece]:
    """The box's arguments, leaving out those at the generator's default."""
    g = GENERATORS.get(box.name) if box.kind in ("generator", "structural") else None
    defaults = {a.name: a.default for a in g.args} if g is not None else {}
    out: list[Piece] = []
    for k, v in box.args:
        if v is None or (k in defaults and defaults[k] is not None and type(v) is type(defaults[k]) and v == defaults[k]):
            continue
        # Variadic sizes are positional, e.g. reshape(8, 8, 1).
        for part in [[("value", x)] for x in v] if isinstance(v, tuple) else [[f"{k}=", ("value", v)]]:
            out += [", " if out else "(", *part]
    return [*out, ")"] if out else []


def _box(box: Box) -> list[Piece]:
    sig = f" : {pretty_ty(box.dom)} -> {pretty_ty(box.cod)})"
    if box.kind in ("generator", "structural", "composite"):
        return [f"({box.name}", *_args(box), sig]
    assert box.body is not None
    if box.kind == "repeat":
        return [f"(repeat {box.kwargs['n']} (", ("diagram", box.body), ")", sig]
    if box.kind == "inv":
        return ["inv(", ("diagram", box.body), ")"]
    if box.kind == "scan":
        state = box.body.dom[: int(box.kwargs["state"])]  # type: ignore[arg-type]
        return [f"scan[{pretty_ty(state)}](", ("diagram", box.body), ")"]
    raise AssertionError(box.kind)


def _identity(ty: Ty) -> str:
    return f"(id : {pretty_ty(ty)} -> {pretty_ty(ty)})"


def _diagram(d: Diagram) -> list[Piece]:
    if not d.layers:
        return [_identity(d.dom)]
    out: list[Piece] = []
    for layer in d.layers:
        if out:
            out.append(" ; ")
        if len(layer.left):
            out += [_identity(layer.left), " ⊗ "]
        out.append(("box", layer.box))
        if len(layer.right):
            out += [" ⊗ ", _identity(layer.right)]
    return out


_EXPAND: dict[str, Callable[[Any], list[Piece]]] = {"value": _value, "box": _box, "diagram": _diagram}


def _render(root: Piece) -> str:
    """The text of a piece; boxes nest diagrams (``repeat``, ``inv``, ``scan``
    bodies, diagram arguments) to any depth, expanded from a stack."""
    return render(root, _EXPAND)


def pretty_value(v: Value) -> str:
    """An argument value as source text (a diagram argument in full)."""
    return _render(("value", v))


def pretty_box(box: Box) -> str:
    """One box with its exact type ascribed; bodies of ``repeat``/``inv``/``scan`` in full."""
    return _render(("box", box))


def pretty(d: Diagram) -> str:
    """Source text for a diagram; see the module docstring for the contract."""
    return _render(("diagram", d))
