"""Logical axes of a compiled model's parameters, read off the IR, and their mesh axes.

Every parameter of a lowered model belongs to one generator box (a
``dense``, an ``embed``, an ``attention``), and :func:`owners` finds which
by walking the diagram alongside the module tree, as the lowering built
it (``catnet.lower.names``).  The generator then names each axis of each
of its parameters with a *logical* axis, and the box's wire types settle
what the generator alone cannot:

* ``embed``: the features a box reads or writes on the narrow side;
  ``mlp``: the features on the wide side.  A ``dense`` or ``conv`` whose
  output wire is wider than its input (``R[64] -> R[256]``) has a kernel
  ``(embed, mlp)``; one that narrows (``R[256] -> R[64]``) has ``(mlp,
  embed)``, so an up-projection is split by its outputs and the
  down-projection after it by its inputs (Megatron's column/row pair);
* ``vocab``: the rows of an ``embed`` table; ``heads`` and ``kv``: an
  attention's heads and their features; ``norm``: a normalization's
  features; ``window``: a kernel's spatial taps; ``layers``: the copies
  stacked by ``repeat n``.

:data:`RULES` maps logical axes onto mesh axes, in the spirit of Flax's
``logical_to_mesh_axes`` and MaxText's ``logical_axis_rules``: it is an
ordered table, and a parameter is sharded over ``model`` along the first
of its logical axes (in the table's order) whose size the ``model`` axis
divides; the others are replicated.  A parameter smaller than
``min_elements``, one of a generator the table does not know (a plugin's,
a flow's), and everything when ``model`` is 1, is replicated: the data axis
only ever splits the batch.  So a ``.cat`` file needs no annotation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

from ..ir import Box, Diagram
from ..lower import names

#: Logical axis names of one parameter, one per array axis (``None``: no name).
Axes = tuple[str | None, ...]

#: Logical axis -> mesh axis, in order of preference: a parameter is split
#: along the first of its axes listed with a mesh axis that divides it.
RULES: tuple[tuple[str, str | None], ...] = (
    ("vocab", "model"),
    ("mlp", "model"),
    ("heads", "model"),
    ("kv", "model"),
    ("embed", "model"),
    ("norm", None),
    ("window", None),
    ("layers", None),
)

#: Parameters with fewer elements stay whole on every device: gathering
#: them would cost more than it saves.
MIN_ELEMENTS = 1024


def _features(box: Box, which: str) -> int | None:
    """The last-axis size of the box's first input (``dom``) or output (``cod``) wire, if known."""
    ty = box.dom if which == "dom" else box.cod
    if not ty.obs or not ty.obs[0].shape:
        return None
    last = ty.obs[0].shape[-1]
    return last if isinstance(last, int) else None


def _sides(box: Box) -> tuple[str, str]:
    """The logical names of a projection's (input, output) features: the wider wire is ``mlp``."""
    n_in, n_out = _features(box, "dom"), _features(box, "cod")
    if n_in is not None and n_out is not None and n_in > n_out:
        return "mlp", "embed"
    return "embed", "mlp"


def _projection(box: Box, leaf: tuple[str, ...], ndim: int) -> Axes:
    into, out = _sides(box)
    if leaf == ("kernel",):
        return ("window",) * (ndim - 2) + (into, out)
    return (out,) if leaf == ("bias",) and ndim == 1 else (None,) * ndim


def _embed(box: Box, leaf: tuple[str, ...], ndim: int) -> Axes:
    return ("vocab", "embed") if leaf == ("embedding",) and ndim == 2 else (None,) * ndim


def _attention(box: Box, leaf: tuple[str, ...], ndim: int) -> Axes:
    """``nnx.MultiHeadAttention``: query/key/value ``(in, heads, kv)``, out ``(heads, kv, out)``."""
    table: dict[tuple[str, ...], Axes] = {
        **{(p, "kernel"): ("embed", "heads", "kv") for p in ("query", "key", "value")},
        **{(p, "bias"): ("heads", "kv") for p in ("query", "key", "value")},
        ("out", "kernel"): ("heads", "kv", "embed"),
        ("out", "bias"): ("embed",),
    }
    axes = table.get(leaf)
    return axes if axes is not None and len(axes) == ndim else (None,) * ndim


def _norm(box: Box, leaf: tuple[str, ...], ndim: int) -> Axes:
    return ("norm",) * ndim


#: Each generator's rule: (its box, the parameter's path inside the box's module, its rank) -> logical axes.
GENERATOR_AXES: dict[str, Callable[[Box, tuple[str, ...], int], Axes]] = {
    "dense": _projection,
    "conv": _projection,
    "conv_transpose": _projection,
    "embed": _embed,
    "attention": _attention,
    "cross_attention": _attention,
    "layernorm": _norm,
    "rmsnorm": _norm,
    "groupnorm": _norm,
    "batchnorm": _norm,
}


Path = tuple[Any, ...]


def _visit(box: Box, path: Path, stacked: int) -> Iterator[tuple[Path, Box, int]]:
    """The generator boxes under one box's module at ``path``, with how many stacked axes lead their parameters."""
    if box.kind in ("generator", "structural"):
        yield path, box, stacked
        return
    if box.kind == "composite":
        assert box.body is not None
        yield from _walk(box.body, path, stacked)
        return
    # repeat, inv and scan run their inner body; a repeat stacks its copies on a leading axis
    yield from _walk(names.inner_body(box), path, stacked + (box.kind == "repeat"))


def _walk(diagram: Diagram, path: Path, stacked: int, taken: tuple[str, ...] = ()) -> Iterator[tuple[Path, Box, int]]:
    for layer, slot in zip(diagram.layers, names.slots(diagram, taken)):
        if slot is not None:
            attr, index = slot
            yield from _visit(layer.box, path + ((attr,) if index is None else (attr, index)), stacked)


def owners(model: Any) -> dict[Path, tuple[Box, int]]:
    """The module path of every generator box of a compiled model that owns parameters.

    Each maps to the box and the number of leading stacked axes
    (``repeat``) its parameters carry.  Shared instances live on the root
    under their attribute, as :class:`catnet.lower.model.Model` puts them.
    """
    diagram: Diagram = model.diagram
    instances = names.shared_instances(diagram)
    found: dict[Path, tuple[Box, int]] = {}
    shared = model.shared_instances
    for shared_name, attr in shared:
        for path, box, stacked in _visit(replace(instances[shared_name], shared=None), (attr,), 0):
            found[path] = (box, stacked)
    for path, box, stacked in _walk(diagram, (), 0, tuple(attr for _, attr in shared)):
        found[path] = (box, stacked)
    return found


def _key(entry: Any) -> Any:
    """A pytree key as the module path spells it (attribute names, list indices)."""
    for field in ("key", "name", "idx"):
        if hasattr(entry, field):
            return getattr(entry, field)
    return str(entry)


def variable_path(keypath: tuple[Any, ...]) -> Path:
    """A leaf's pytree key path as the variable's module path (without the trailing ``value``)."""
    path = tuple(_key(k) for k in keypath)
    return path[:-1] if path and path[-1] == "value" else path


def logical_axes(model: Any, params: Any) -> Any:
    """The logical axes of every parameter: a tree like ``params`` of :data:`Axes` tuples.

    A parameter of a generator without a rule gets ``None`` for each axis.
    """
    import jax

    found = owners(model)

    def axes(keypath: tuple[Any, ...], x: Any) -> Axes:
        path = variable_path(keypath)
        for cut in range(len(path) - 1, -1, -1):
            owner = found.get(path[:cut])
            if owner is not None:
                box, stacked = owner
                rule = GENERATOR_AXES.get(box.name)
                inner = x.ndim - stacked
                named = rule(box, tuple(map(str, path[cut:])), inner) if rule else (None,) * inner
                return ("layers",) * stacked + tuple(named)
        return (None,) * x.ndim

    return jax.tree_util.tree_map_with_path(axes, params)


def mesh_axes(axes: Axes, shape: tuple[int, ...], model_size: int, min_elements: int = MIN_ELEMENTS) -> tuple[str | None, ...]:
    """The mesh axis of each array axis under :data:`RULES`: at most one is ``"model"``, the rest ``None``."""
    out: list[str | None] = [None] * len(shape)
    size = 1
    for n in shape:
        size *= n
    if model_size == 1 or size < min_elements:
        return tuple(out)
    for logical, mesh_axis in RULES:
        if mesh_axis is None:
            continue
        for i, name in enumerate(axes):
            if name == logical and shape[i] % model_size == 0:
                out[i] = mesh_axis
                return tuple(out)
    return tuple(out)


def partition_specs(model: Any, params: Any, model_size: int, min_elements: int = MIN_ELEMENTS) -> Any:
    """A ``PartitionSpec`` for every parameter, a tree like ``params``, for a mesh whose ``model`` axis has ``model_size`` devices."""
    import jax
    from jax.sharding import PartitionSpec

    names_tree = logical_axes(model, params)
    flat_axes = jax.tree.leaves(names_tree, is_leaf=lambda t: isinstance(t, tuple))
    leaves, treedef = jax.tree.flatten(params)
    specs = [PartitionSpec(*mesh_axes(a, tuple(x.shape), model_size, min_elements)) for a, x in zip(flat_axes, leaves)]
    return jax.tree.unflatten(treedef, specs)
