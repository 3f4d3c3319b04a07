"""The activations of named wires of a compiled model, from its one jitted forward pass.

A wire is named by the box whose output it is, with the names ``catnet
summary`` prints (``stage1``, ``classifier.dense[0]``, ``block[*].mlp``); the
entry's own domain and codomain are ``input`` and ``output``.  Three rules
make every name one wire:

* a ``repeat n f`` box is ``block``; the output of its copy ``i`` is
  ``block[i]``, and a box inside it is ``block[i].mlp`` (summary's
  ``block[*].mlp`` stands for all ``n`` of them);
* a name that summary prints for two boxes of one diagram (a shared
  instance used twice, a box without parameters used twice) is told apart
  as ``enc[0]``, ``enc[1]``, the rule the lowering gives names owned twice;
* the boxes inside ``inv``, ``scan`` and generators are not wires of the
  model: only their outputs are.

:func:`wires` lists them in the order the forward pass computes them;
``Wire.default`` marks those of the default analysis, the layers of the
network as the ``.cat`` file names them: the entry's input, the output of
every definition (``composite`` boxes, and each copy of a ``repeat``), and
the entry's output unless its last box is a definition that gives all of it
(the same numbers twice).

:func:`collect` runs the model once per batch in one jitted function that
returns the activations asked for beside the output.  It is a second
functor over the same IR: :func:`_walk` runs a diagram's layers like
:func:`catnet.lower.model.run`, but enters the composites and ``repeat``
bodies that hold a wire asked for, recording their outputs; every other box
runs through :func:`catnet.lower.model.apply_box`, so the values are those of
the model's own forward pass and the model itself is not changed.  A wire
inside a ``repeat`` is recorded once per copy, as an output of the scan.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ..errors import CatnetError, suggest
from ..ir import Diagram
from ..lower import names

#: Examples per compiled call of :func:`collect`.
BATCH = 1024
#: The names of the entry's own wires (``input_`` if a box of the entry is called ``input``).
INPUT, OUTPUT = "input", "output"


@dataclass(frozen=True)
class Wire:
    """One named wire: ``name`` as the user writes it, ``template`` with ``[*]``
    for each enclosing ``repeat`` (the name inside the scan), ``index`` the copy
    of each enclosing ``repeat``, ``type`` its type as summary prints it, ``kind``
    the box's kind (``input``/``output`` for the entry's wires)."""

    name: str
    template: str
    index: tuple[int, ...]
    type: str
    kind: str
    default: bool


def _layer_names(diagram: Diagram, prefix: str) -> list[str | None]:
    """The name of each layer's output (``None`` for structural boxes), ``prefix`` first.

    Summary's rule: the slot of a box that owns a module (``dense[1]``),
    the shared name of a shared generator, the box's name otherwise; a name
    that would be printed twice gets its occurrence's index.
    """
    base: list[str | None] = []
    for layer, slot in zip(diagram.layers, names.slots(diagram)):
        box = layer.box
        if box.kind == "structural":
            base.append(None)
        elif slot is not None:
            base.append(slot[0] + ("" if slot[1] is None else f"[{slot[1]}]"))
        elif box.shared is not None and box.kind == "generator":
            base.append(names.attribute(box.shared))
        else:
            base.append(box.name)
    counts: dict[str, int] = {}
    for b in base:
        if b is not None:
            counts[b] = counts.get(b, 0) + 1
    seen: dict[str, int] = {}
    out: list[str | None] = []
    for b in base:
        if b is None:
            out.append(None)
            continue
        i = seen.get(b, 0)
        seen[b] = i + 1
        out.append(prefix + (b if counts[b] == 1 else f"{b}[{i}]"))
    return out


def _entry_names(diagram: Diagram) -> tuple[str, str]:
    """The names of the entry's input and output: ``input``/``output`` unless a box took them."""
    taken = [n for n in _layer_names(diagram, "") if n is not None]
    return names.attribute(INPUT, taken), names.attribute(OUTPUT, taken)


def _concrete(template: str, index: tuple[int, ...]) -> str:
    """``block[*].mlp`` with ``(2,)`` is ``block[2].mlp``."""
    parts = template.split("[*]")
    assert len(parts) == len(index) + 1
    return parts[0] + "".join(f"[{i}]{p}" for i, p in zip(index, parts[1:]))


def wires(diagram: Diagram) -> list[Wire]:
    """Every named wire of the model of ``diagram``, in the order the forward pass computes them."""
    found: list[Wire] = []
    first, last = _entry_names(diagram)
    found.append(Wire(first, first, (), str(diagram.dom), INPUT, True))

    def visit(d: Diagram, prefix: str, index: tuple[int, ...]) -> None:
        for layer, name in zip(d.layers, _layer_names(d, prefix)):
            if name is None:
                continue
            box = layer.box
            type_ = f"{box.dom} -> {box.cod}"
            here = (_concrete(name, index), name, index)
            if box.kind == "composite":
                assert box.body is not None
                visit(box.body, name + ".", index)
                found.append(Wire(*here, type_, box.kind, True))
            elif box.kind == "repeat":
                n = int(box.kwargs["n"])  # type: ignore[arg-type]
                body = names.inner_body(box)
                for i in range(n):
                    visit(body, f"{name}[*].", (*index, i))
                    copy = f"{name}[*]"
                    found.append(Wire(_concrete(copy, (*index, i)), copy, (*index, i), f"{body.dom} -> {body.cod}", "copy", True))
                found.append(Wire(*here, type_, box.kind, False))
            else:
                found.append(Wire(*here, type_, box.kind, False))

    visit(diagram, "", ())
    # The entry's output is a layer of its own unless its last box, a definition, gives all of it.
    end = diagram.layers[-1] if diagram.layers else None
    whole = end is not None and end.box.kind in ("composite", "repeat") and not end.left.obs and not end.right.obs
    found.append(Wire(last, last, (), str(diagram.cod), OUTPUT, not whole))
    return found


def _unknown(name: str, known: Sequence[Wire]) -> CatnetError:
    listed = [w.name for w in known if w.default]
    hint = suggest(name, [w.name for w in known] + sorted({w.template for w in known}))
    return CatnetError(
        "E0201",
        f"the model has no wire named `{name}`",
        None,
        notes=(f"its layers: {', '.join(listed)}",),
        help=(f"did you mean `{hint}`? " if hint else "")
        + "every box of `catnet summary` names its output; `block[*].x` is x in every copy of `repeat n block`",
    )


def select(diagram: Diagram, asked: Sequence[str] | None = None) -> list[Wire]:
    """The wires ``asked`` for (all copies for a name with ``[*]``), or the default ones.

    An unknown name is E0201 without a span (the caller locates it at the
    entry), listing the model's layers and the closest name.
    """
    known = wires(diagram)
    if asked is None:
        return [w for w in known if w.default]
    by_name = {w.name: w for w in known}
    chosen: list[Wire] = []
    for name in asked:
        name = name.strip()
        if name in by_name:
            matched = [by_name[name]]
        else:
            matched = [w for w in known if w.template == name and w.index]
        if not matched:
            raise _unknown(name, known)
        chosen.extend(w for w in matched if w not in chosen)
    return chosen


# -- the second functor ------------------------------------------------------------


def _wanted_inside(prefix: str, want: frozenset[str]) -> bool:
    return any(w.startswith(prefix) for w in want)


def _walk(diagram: Diagram, node: Any, wires: list[Any], ctx: Any, prefix: str, want: frozenset[str], found: dict[str, Any]) -> list[Any]:
    """:func:`catnet.lower.model.run` that records the outputs named in ``want`` into ``found``."""
    from ..lower.model import apply_box

    for i, (layer, name) in enumerate(zip(diagram.layers, _layer_names(diagram, prefix))):
        box = layer.box
        k, n = len(layer.left), len(box.dom)
        module = node.child(i) if node is not None else None
        ins = wires[k : k + n]
        if name is not None and box.kind in ("composite", "repeat") and _wanted_inside(name + ("." if box.kind == "composite" else "["), want):
            if box.shared is not None:
                module = ctx.shared.get(box.shared)
            if box.kind == "composite":
                assert box.body is not None
                outs = _walk(box.body, module, ins, ctx, name + ".", want, found)
            else:
                outs = _repeat(box, module, ins, ctx, name, want, found)
        else:
            outs = apply_box(box, module, ins, ctx)
        if name in want:
            found[name] = outs
        wires = wires[:k] + outs + wires[k + n :]
    return wires


def _repeat(box: Any, stacked: Any, wires: list[Any], ctx: Any, name: str, want: frozenset[str], found: dict[str, Any]) -> list[Any]:
    """A ``repeat`` scanned as the lowering scans it, each copy's wires as outputs of the scan."""
    from ..lower.model import module_scan

    body = names.inner_body(box)
    copy = f"{name}[*]"

    def step(carry: list[Any], x: Any, modules: tuple[Any, Any], inner: Any) -> tuple[list[Any], dict[str, Any]]:
        here: dict[str, Any] = {}
        out = _walk(body, modules[0], carry, inner, copy + ".", want, here)
        if copy in want:
            here[copy] = out
        return out, here

    out, per_copy = module_scan(step, list(wires), None, int(box.kwargs["n"]), ctx, stacked=stacked)  # type: ignore[arg-type]
    found.update(per_copy)
    return list(out)


def _flat(values: Sequence[Any], lead: int) -> Any:
    """The wires of one name as ``(*copies, batch, features)`` float32, the wires side by side."""
    import jax.numpy as jnp

    parts = [jnp.asarray(v, jnp.float32).reshape(v.shape[: lead + 1] + (-1,)) for v in values]
    return parts[0] if len(parts) == 1 else jnp.concatenate(parts, axis=-1)


def _inputs(model: Any, x: Any) -> tuple[np.ndarray, ...]:
    """``x`` as one array per domain wire, examples first (E0801 if that cannot be)."""
    from ..check.inputs import bad_argument

    arrays = tuple(x) if isinstance(x, (tuple, list)) and len(model.dom) > 1 else (x,)
    out = []
    for a in arrays:
        if not (hasattr(a, "shape") and hasattr(a, "dtype")):
            a = np.asarray(a)
        if a.ndim < 1:
            raise bad_argument("catnet.analysis.activations.collect", "`x` to have a leading example axis", a)
        out.append(a)
    if len({int(a.shape[0]) for a in out}) > 1:
        raise bad_argument("catnet.analysis.activations.collect", "one array per input wire, all with the same number of examples", x)
    return tuple(out)


def collect(model: Any, x: Any, wires: Sequence[str] | None = None, batch_size: int = BATCH) -> dict[str, np.ndarray]:
    """The activations of the named wires of ``model`` on the examples ``x``, ``(n, features)`` each.

    ``model`` is a model from ``catnet.compile`` (its weights as they are);
    ``x`` an array of examples, or a tuple of arrays for a product domain.
    ``wires`` names wires as :func:`select` reads them (default: the
    layers, see ``Wire.default``).  The model runs in evaluation mode
    (dropout off, batch statistics from their running averages) in batches
    of ``batch_size``, the last one padded so one program serves all; each
    activation is flattened per example (several wires side by side).  The
    keys are in the order the forward pass computes them.  An unknown wire
    is E0201 at the entry; inputs that do not fit the domain are E0802.
    """
    import jax
    from flax import nnx

    from ..check.inputs import bad_argument

    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise bad_argument("catnet.analysis.activations.collect", "`batch_size` to be a whole number 1 or more", batch_size)
    diagram: Diagram = model.diagram
    try:
        chosen = select(diagram, wires)
    except CatnetError as e:
        raise model.locate(e) from None
    arrays = _inputs(model, x)
    n = int(arrays[0].shape[0])
    first, last = _entry_names(diagram)
    returned = list(dict.fromkeys(w.template for w in chosen))
    want = frozenset(returned) - {first, last}

    was_training = not model.deterministic
    model.eval()
    graphdef, state = nnx.split(model)
    if was_training:
        model.train()

    @jax.jit
    def forward(state: Any, batch: tuple[Any, ...]) -> dict[str, Any]:
        m = nnx.merge(graphdef, state)
        found: dict[str, Any] = {}

        def walk(ws: list[Any], ctx: Any) -> list[Any]:
            found[first] = list(ws)
            return _walk(m.diagram, m, ws, ctx, "", want, found)

        # The model's own entry, as its __call__ enters: the inputs checked
        # against the domain (E0802), cast, and a fresh context.
        found[last] = m.run_lowering(walk, *batch)
        return {t: _flat(found[t], t.count("[*]")) for t in returned}

    size = min(batch_size, n)
    parts: dict[str, list[np.ndarray]] = {}
    for start in range(0, n, size):
        batch = tuple(a[start : start + size] for a in arrays)
        m = int(batch[0].shape[0])
        if m < size:  # pad the last batch: one compiled program for every batch
            batch = tuple(np.concatenate([np.asarray(a), np.repeat(np.asarray(a[-1:]), size - m, axis=0)]) for a in batch)
        got = jax.device_get(forward(state, batch))
        for t, v in got.items():
            parts.setdefault(t, []).append(np.asarray(v)[..., :m, :])
    joined = {t: np.concatenate(vs, axis=-2) for t, vs in parts.items()}
    return {w.name: joined[w.template][w.index] for w in chosen}
