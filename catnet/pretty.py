"""IR to source text: a point-free expression that checks back to the same IR.

``pretty(d)`` writes each layer as ``id ⊗ box ⊗ id`` with every box and
identity ascribed its exact type, so that, in a module with the same
definitions, checking ``morphism t : dom -> cod = <pretty(d)>`` gives back a
diagram equal to ``d`` (spans and object names are not compared)::

    >>> from catnet import loads
    >>> m = loads("morphism f : R[4] -> R[2] = dense ; relu")
    >>> pretty(m.diagram("f"))
    '(dense(features=2) : R[4] -> R[2]) ; (relu : R[2] -> R[2])'
"""

from __future__ import annotations

from . import dims
from .ir import Box, Diagram, Ob, Ty, Value


def pretty_ob(ob: Ob) -> str:
    if ob.base == "bundle" or ob.group:
        assert ob.name, "bundles and G-spaces are only written by their object name"
        return ob.name
    return f"{ob.base}[{', '.join(dims.show(d) for d in ob.shape)}]"


def pretty_ty(ty: Ty) -> str:
    return " ⊗ ".join(pretty_ob(o) for o in ty.obs) if ty.obs else "I"


def pretty_value(v: Value) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, Diagram):
        return pretty(v)
    if isinstance(v, tuple):
        return ", ".join(pretty_value(x) for x in v)
    return dims.show(v)  # type: ignore[arg-type]


def _args(box: Box) -> str:
    parts = []
    for k, v in box.args:
        if v is None:
            continue
        if isinstance(v, tuple):  # variadic sizes, e.g. reshape(8, 8, 1)
            parts.extend(pretty_value(x) for x in v)
        elif isinstance(v, Diagram):
            parts.append(f"{k}={pretty(v)}")
        else:
            parts.append(f"{k}={pretty_value(v)}")
    return f"({', '.join(parts)})" if parts else ""


def pretty_box(box: Box) -> str:
    sig = f"{pretty_ty(box.dom)} -> {pretty_ty(box.cod)}"
    if box.kind in ("generator", "structural"):
        return f"({box.name}{_args(box)} : {sig})"
    if box.kind == "composite":
        return f"({box.name}{_args(box)} : {sig})"
    assert box.body is not None
    if box.kind == "repeat":
        return f"(repeat {box.kwargs['n']} ({pretty(box.body)}) : {sig})"
    if box.kind == "inv":
        return f"inv({pretty(box.body)})"
    if box.kind == "scan":
        state = box.body.dom[: int(box.kwargs["state"])]  # type: ignore[arg-type]
        return f"scan[{pretty_ty(state)}]({pretty(box.body)})"
    raise AssertionError(box.kind)


def pretty(d: Diagram) -> str:
    """Source text for a diagram; see the module docstring for the contract."""
    if not d.layers:
        return f"(id : {pretty_ty(d.dom)} -> {pretty_ty(d.dom)})"
    out = []
    for layer in d.layers:
        parts = []
        if layer.left.obs:
            parts.append(f"(id : {pretty_ty(layer.left)} -> {pretty_ty(layer.left)})")
        parts.append(pretty_box(layer.box))
        if layer.right.obs:
            parts.append(f"(id : {pretty_ty(layer.right)} -> {pretty_ty(layer.right)})")
        out.append(" ⊗ ".join(parts))
    return " ; ".join(out)
