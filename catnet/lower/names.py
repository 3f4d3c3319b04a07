"""Which boxes own parameters, and what the lowered model calls them.

JAX-free, so ``catnet summary`` shares these rules with the lowering and
answers instantly.  The rules, in the order the lowering applies them:

* a generator owns a module when the library says it has parameters;
  a composite, ``repeat``, ``inv`` or ``scan`` box when its body has one
  that owns one; a box with a ``shared`` name never does (its one instance
  lives on the root, named after the ``shared`` name), and neither does a
  tied use such as ``transposed(wte)``, which reads the instance's weight
  (:func:`tied_instances`);
* a module is an attribute named after its box (``encoder``, ``dense``);
  a name owned twice in one diagram becomes a list (``dense[0]``,
  ``dense[1]``);
* a ``repeat``/``inv``/``scan`` box named after the one definition its
  body consists of is entered directly, so ``repeat 4 block`` gives
  ``block[i].attention`` rather than ``block[i].block.attention``.
"""

from __future__ import annotations

from typing import Callable, Sequence

from ..ir import Box, Diagram, fold_bodies
from ..library import GENERATORS

#: Attributes a module name must not take: methods of ``nnx.Module`` and of
#: the compiled model that a definition called ``train`` or ``eval`` would
#: hide, and the mode flags that ``model.eval()`` sets on every module that
#: has them.  Such a name gets a trailing underscore.
RESERVED = frozenset(
    {
        "deterministic", "use_running_average", "train", "eval", "set_attributes", "sow", "perturb",
        "iter_modules", "iter_children", "children", "modules", "state", "update", "split", "merge",
        "replace", "clone", "items", "keys", "values", "child", "diagram", "dom", "cod",
        "forward_log_det", "inverse", "inverse_log_det", "locate", "run_lowering", "shared_instances", "precision",
    }
)


def has_params(box: Box) -> bool:
    """Whether a generator or structural box has parameters of its own."""
    g = GENERATORS.get(box.name)
    return bool(g is not None and g.params)


def owns_module(box: Box) -> bool:
    """Whether an occurrence of ``box`` keeps its own module in the tree.

    Bodies are folded bottom-up once and the answer cached on them, so deep
    or widely shared nesting costs the size of the IR.
    """
    if box.shared is not None:
        return False
    if box.kind in ("generator", "structural"):
        return has_params(box)
    assert box.body is not None, box.kind
    return fold_bodies(box.body, "_owns_module", _owns, any)


def _owns(box: Box, of: Callable[[Diagram], bool]) -> bool:
    if box.shared is not None:
        return False
    if box.kind in ("generator", "structural"):
        return has_params(box)
    assert box.body is not None, box.kind
    return of(box.body)


def inner_body(box: Box) -> Diagram:
    """The diagram a ``repeat``/``inv``/``scan``/composite box runs.

    A body that is exactly one unshared composite named like the box
    (``repeat 4 block``) is entered, so names do not say ``block`` twice.
    """
    body = box.body
    assert body is not None
    if box.kind != "composite" and len(body.layers) == 1:
        only = body.layers[0]
        if (
            only.box.kind == "composite"
            and only.box.name == box.name
            and only.box.shared is None
            and not only.left.obs
            and not only.right.obs
        ):
            assert only.box.body is not None
            return only.box.body
    return body


def attribute(name: str, taken: Sequence[str] = ()) -> str:
    """A Python attribute for a diagram name that shadows nothing."""
    attr = "".join(c if c.isalnum() or c == "_" else "_" for c in name)
    if not attr.isidentifier() or attr.startswith("_"):
        attr = "x" + attr
    while attr in RESERVED or attr in taken:
        attr += "_"
    return attr


def slots(diagram: Diagram, taken: Sequence[str] = ()) -> tuple[tuple[str, int | None] | None, ...]:
    """Where each layer's module lives: ``(attribute, index or None)`` or ``None``."""
    counts: dict[str, int] = {}
    for layer in diagram.layers:
        if owns_module(layer.box):
            counts[layer.box.name] = counts.get(layer.box.name, 0) + 1
    attrs: dict[str, str] = {}
    for name in counts:
        attrs[name] = attribute(name, (*taken, *attrs.values()))
    seen: dict[str, int] = {}
    out: list[tuple[str, int | None] | None] = []
    for layer in diagram.layers:
        name = layer.box.name
        if not owns_module(layer.box):
            out.append(None)
            continue
        i = seen.get(name, 0)
        seen[name] = i + 1
        out.append((attrs[name], i if counts[name] > 1 else None))
    return tuple(out)


def _argument_boxes(box: Box) -> tuple[Box, ...]:
    """The boxes a generator keeps in its diagram arguments (``morphism`` and ``network`` kinds).

    A composite's diagram arguments are not meant, since its body holds them already.
    """
    if box.kind != "generator":
        return ()
    return tuple(layer.box for _, v in box.args if isinstance(v, Diagram) for layer in v.layers)


def tied_instances(box: Box) -> tuple[Box, ...]:
    """The shared instances whose parameters a generator box uses without owning them.

    These are the values of its ``morphism`` arguments (``transposed(wte)``
    keeps the use of ``wte``, a one-box diagram) and the ``network``
    arguments that name a shared instance (``coupling(conditioner=snet)``).
    """
    return tuple(b for b in _argument_boxes(box) if b.shared is not None)


def owned_networks(box: Box) -> tuple[Box, ...]:
    """The fresh instances a generator box owns through its ``network`` arguments.

    ``coupling(conditioner=net)`` with ``net`` a morphism definition owns a
    fresh ``net`` (Para: one per occurrence); its module lives inside the
    box's own, and its parameters are in the box's count.
    """
    return tuple(b for b in _argument_boxes(box) if b.shared is None)


def shared_instances(diagram: Diagram) -> dict[str, Box]:
    """Every shared instance reachable from ``diagram``, by name, first use first.

    An instance used only through a generator's ``morphism`` or ``network``
    argument (only ``transposed(wte)``, never ``wte``), or inside a network
    the box owns, is reachable too: its parameters belong to the model all
    the same.  Each box is visited once (by
    identity), so a body used many times, or nested deep, costs its own
    size, not the size of its expansion.
    """
    found: dict[str, Box] = {}
    seen: set[int] = set()
    stack = [layer.box for layer in reversed(diagram.layers)]
    while stack:
        box = stack.pop()
        if id(box) in seen:
            continue
        seen.add(id(box))
        if box.shared is not None and (box.shared not in found or _better_instance(found[box.shared], box)):
            found[box.shared] = box
        if box.body is not None:
            stack.extend(layer.box for layer in reversed(box.body.layers))
        # Shared instances used through an argument, or inside a network the box owns.
        stack.extend(reversed(_argument_boxes(box)))
    return {name: _as_instance(box) for name, box in found.items()}


def _better_instance(first: Box, later: Box) -> bool:
    """A bundle's trivialization is built from a ``triv`` (which has its arguments), not a ``proj``."""
    return first.kind == "generator" and first.name == "proj" and later.kind == "generator" and later.name == "triv"


def _as_instance(box: Box) -> Box:
    """The box a shared instance is built from: a ``proj`` alone stands for its bundle's ``triv``."""
    if box.kind != "generator" or box.name != "proj":
        return box
    from dataclasses import replace

    ob = box.dom.obs[0]
    assert ob.over is not None and ob.fiber is not None
    return replace(box, name="triv", cod=ob.over @ ob.fiber, args=(), iso=True)
