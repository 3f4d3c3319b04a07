"""A string diagram as a layout-free graph: the IR drawn as nodes and wires.

:func:`build` turns a :class:`~catnet.ir.Diagram` into a
``networkx.MultiDiGraph`` that both drawing back ends read (DOT and TikZ).
The graph holds what the picture shows and nothing about where it goes:

- one node per box of the IR that is drawn (``kind`` :data:`BOX`, or a
  structural node :data:`COPY`, :data:`DISCARD`, :data:`ADD`, :data:`SWAP`),
  with ``ir=True``; ``id`` boxes are plain wires and get no node, nor do
  the swaps the wiring form inserts (``Box.routing``): their wires run
  straight from where they are made to where they are used, so calls that
  do not depend on each other are not ordered;
- one edge per wire, keyed by a wire number, from the node that makes it
  (output port ``src_port``) to the node that takes it (input port
  ``dst_port``), in IR order, so ports keep the order of ``dom`` and ``cod``;
  each is ``labelled`` once, where it is made (a swap's outputs and a
  wire's way through a nested box are the same wires, not labelled again);
- free wire ends: :data:`INPUT` / :data:`OUTPUT` nodes for the boundary of
  the diagram (the unit ``I`` has none), :data:`PARAM` nodes for parameter
  wires in the Para view (with a :data:`COPY` dot of style ``param_copy``
  where a shared instance's parameters are copied to its uses, tied uses
  such as ``transposed(wte)`` included; such nodes have ``ir=False`` and
  ``target``, the first box they feed), and
  :data:`WAYPOINT` nodes where a wire crosses a nested box without
  touching anything inside;
- nested boxes as a tree of :class:`Cluster` in ``graph.graph["clusters"]``;
  each node's ``cluster`` is the innermost one that holds it;
- ``inv(f)`` as the mirror image of ``f``: its boxes in reverse order, each
  with ``inverted=True`` (drawn ``f⁻¹``), wires running from ``f``'s
  codomain to its domain; an ``inv`` of one definition is that definition's
  nested box, mirrored, so it expands with ``depth`` like the definition;
- ``scan[S](cell)`` as a nested box of kind ``scan`` around the cell, with
  one feedback loop per state wire: a :data:`TRACE_IN` node that makes the
  wire the cell starts from and a :data:`TRACE_OUT` node that takes the wire
  it returns; the loop between them (``partner``) is drawn by the back ends,
  not stored as an edge, so the graph stays acyclic;
- isos (``box.iso``) have ``iso=True``; a bundle wire has style
  :data:`BUNDLE`; ``triv`` and ``proj`` boxes have ``split`` ``"split"``
  (one total-space wire in, base and fiber out) or ``"merge"`` (the reverse,
  ``proj`` and ``inv(triv)``), drawn as trapezoids;
- a wire of a G-space has its ``action`` (a
  :class:`~catnet.render.symmetry.WireAction`; ``None`` on a plain wire),
  and its ``label`` and ``shape`` leave the action out; a generator that is
  equivariant by construction has its group as ``badge``; a definition
  drawn as one box, or a nested box (:class:`Cluster`), has its ``claim``.

Every node and edge carries a ``style`` (the box kind or the wire kind), so
new kinds of boxes and wires (invertible boxes, traces, bundles) get their
own look by adding a style, not by changing the traversal.

The graph of one diagram is always the same object up to equality: node ids
are numbered in IR order and nothing iterates over a set.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

import networkx as nx

from .. import dims
from ..ir import Box, Diagram, Ob
from ..library import GENERATORS
from ..lower.names import tied_instances
from .params import param_count
from .symmetry import Claim, wire_action

# Node kinds.
BOX = "box"
COPY = "copy"
DISCARD = "discard"
ADD = "add"
SWAP = "swap"
INPUT = "input"
OUTPUT = "output"
PARAM = "param"
WAYPOINT = "waypoint"
#: Where a traced (fed back) state wire starts and ends inside a ``scan``.
TRACE_IN = "trace_in"
TRACE_OUT = "trace_out"

#: Structural boxes drawn as dots or crossings rather than labelled boxes.
DOT_KINDS = {"copy": COPY, "discard": DISCARD, "add": ADD, "swap": SWAP}

# Wire kinds.
DATA = "data"
PARAMETER = "param"
#: The style of a data wire that carries points of a bundle's total space.
BUNDLE = "bundle"

#: How an inverse is written after a name.
INVERSE = "⁻¹"

#: Box kinds whose body can be drawn as a nested box.
NESTING = ("composite", "repeat")


@dataclass(frozen=True)
class Cluster:
    """A nested box: an expanded composite, a repeat, or the whole entry.

    ``kind`` is ``"entry"``, ``"composite"``, ``"repeat"``, ``"inv"`` (an
    inverse of several boxes) or ``"scan"`` (a trace); ``mark`` is ``"×n"``
    for a repeat; ``shared`` names a shared instance; ``inverted`` marks the
    mirror image of a definition (its label ends in ``⁻¹``).
    """

    id: str
    label: str
    kind: str
    parent: str | None
    mark: str = ""
    shared: str | None = None
    #: The wires that enter and leave it, in the order of its ``dom`` and
    #: ``cod``, each named by the node and output port that makes it.
    inputs: tuple[tuple[str, int], ...] = ()
    outputs: tuple[tuple[str, int], ...] = ()
    inverted: bool = False
    #: What the definition claims: ``("equivariant", "C4")``, or ``None``.
    claim: Claim | None = None


@dataclass(frozen=True)
class _End:
    """A wire that has been made and waits for the box that takes it."""

    node: str
    port: int
    ob: Ob
    labelled: bool


def _plain(ob: Ob) -> Ob:
    """``ob`` without its group action, which a wire writes on a line of its own."""
    return replace(ob, group=None, rep=None) if ob.group else ob


def wire_label(ob: Ob, shapes: bool) -> str:
    """What a wire says: its object's name, with ``--shapes`` also its shape.

    A G-space's action is not part of it: the back ends write it under
    the label (:mod:`catnet.render.symmetry`).
    """
    ob = _plain(ob)
    structure = ob.structure()
    if not shapes or ob.name is None or ob.name == structure:
        return str(ob)
    return f"{ob.name} : {structure}"


def _value(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, dims.Poly):
        return dims.show(v)
    if isinstance(v, tuple):
        return "×".join(_value(x) for x in v)
    return str(v)


def box_detail(box: Box) -> str:
    """The arguments worth printing under a generator's name.

    Arguments left at their library default are omitted, and so are sizes
    the types decide (``features``): the wires already say them.
    """
    gen = GENERATORS.get(box.name)
    if gen is None:
        return ""
    kw = box.kwargs
    parts: list[str] = []
    for key, v in box.args:
        arg = gen.arg(key)
        if arg is None:
            continue
        if arg.kind == "network":
            if isinstance(v, Diagram) and v.layers:
                # a conditioner by its name: the shared instance's, or the definition's
                used = v.layers[0].box
                parts.append(f"{key}={used.shared or used.name}")
            continue
        if arg.default is None and not arg.required:
            # Filled in by the checker from the types, except a pooling
            # stride that differs from its window, which the types do not show.
            if not (key == "stride" and v != kw.get("window")):
                continue
        elif v == arg.default and not arg.required:
            continue
        if arg.kind == "bool":
            parts.append(key if v else f"no {key}")
        elif arg.kind == "morphism":
            parts.append(f"{key}={', '.join(str(b.shared) for b in tied_instances(box))}")

        else:
            parts.append(f"{key}={_value(v)}")
    return ", ".join(parts)


def _badge(box: Box) -> str:
    """The group an equivariant-by-construction generator is marked with (``""`` for other boxes)."""
    gen = GENERATORS.get(box.name)
    if box.kind != "generator" or gen is None or gen.acts != "equivariant":
        return ""
    return next((ob.group for ob in (*box.dom.obs, *box.cod.obs) if ob.group), None) or "G"


class _Builder:
    def __init__(self, depth: int | None, params: bool, claims: Mapping[str, Claim]) -> None:
        self.g = nx.MultiDiGraph()
        self.depth = depth
        self.params = params
        self.claims = claims
        self.clusters: list[Cluster] = []
        self.counts: dict[str, int] = {}
        self.wires = 0
        # Parameter users in order of appearance: share key -> box nodes.
        self.users: dict[tuple, list[str]] = {}
        self.shared_label: dict[tuple, tuple[str, int]] = {}
        # Boxes that use a shared instance's parameters without owning any
        # (``transposed(wte)``): instance name -> (its count, box nodes).
        self.tied: dict[str, tuple[int, list[str]]] = {}
        # The morphism parameters of the template whose body is being drawn.
        self.template_params: frozenset[str] = frozenset()

    def fresh(self, prefix: str) -> str:
        n = self.counts.get(prefix, 0)
        self.counts[prefix] = n + 1
        return f"{prefix}{n}"

    def node(self, prefix: str, kind: str, cluster: str | None, **attrs: object) -> str:
        nid = self.fresh(prefix)
        base = dict(kind=kind, style=kind, cluster=cluster, label="", detail="", mark="", n_in=0, n_out=0,
                    ir=False, params=0, shared=None, iso=False, inverted=False, split="", badge="", claim=None)
        base.update(attrs)
        self.g.add_node(nid, **base)
        return nid

    def connect(self, end: _End, node: str, port: int, into: Ob | None = None) -> None:
        # A wire is labelled with its object's name, taken from whichever end
        # names it: a generator's output is unnamed, the next box's input may
        # be `Image` by its declared type.
        ob = into if into is not None and end.ob.name is None and into.name is not None else end.ob
        style = BUNDLE if ob.base == "bundle" else DATA
        self.g.add_edge(end.node, node, key=self.wires, kind=DATA, style=style, src_port=end.port, dst_port=port,
                        label=str(_plain(ob)), shape=wire_label(ob, True), labelled=end.labelled,
                        action=wire_action(ob))
        self.wires += 1

    def cluster(self, label: str, kind: str, parent: str | None, mark: str = "", shared: str | None = None,
                inverted: bool = False, claim: Claim | None = None) -> str:
        cid = f"c{len(self.clusters)}"
        self.clusters.append(Cluster(cid, label, kind, parent, mark, shared, inverted=inverted, claim=claim))
        return cid

    def claim(self, names: list[str]) -> Claim | None:
        """The claim of the first of ``names`` (a definition and the ones it renames) that makes one."""
        return next((self.claims[n] for n in names if n in self.claims), None)

    # -- traversal ---------------------------------------------------------

    def diagram(self, d: Diagram, wires: list[_End], level: int, cluster: str | None, share: list | None,
                mirror: bool = False) -> list[_End]:
        """Draw ``d`` on the given wires; return the wires it leaves.

        With ``mirror``, draw its mirror image: ``d`` is an iso drawn from its
        codomain to its domain, last box first, each box inverted.
        """
        wires = list(wires)
        for layer in reversed(d.layers) if mirror else d.layers:
            k, n = len(layer.left), len(layer.box.cod if mirror else layer.box.dom)
            wires[k : k + n] = self.box(layer.box, wires[k : k + n], level, cluster, share, mirror)
        return wires

    def expands(self, box: Box, level: int) -> bool:
        return box.kind in NESTING and box.body is not None and self.opens(level)

    def opens(self, level: int) -> bool:
        """Whether a definition met at ``level`` is drawn open (its body inside it)."""
        return self.depth is None or level < self.depth

    def box(self, box: Box, ins: list[_End], level: int, cluster: str | None, share: list | None,
            mirror: bool = False) -> list[_End]:
        if box.kind == "structural" and box.name == "id":
            return ins
        if box.routing:
            # A swap the wiring form inserted to bring arguments together
            # (the source does not write it): the wires go straight from
            # where they are made to where they are used, crossing only
            # where the layout must cross them, and calls that do not
            # depend on each other stand side by side.
            return [ins[1], ins[0]]
        if box.kind == "inv" and box.body is not None:
            return self.inverse(box, ins, level, cluster, share, not mirror)
        if box.kind == "scan" and box.body is not None and self.opens(level):
            return self.trace(box, ins, level, cluster, share)
        if self.expands(box, level):
            return self.nested(box, ins, level, cluster, share, mirror)
        dom, cod = (box.cod, box.dom) if mirror else (box.dom, box.cod)
        if box.kind == "structural" and box.name in DOT_KINDS:
            kind = DOT_KINDS[box.name]
            nid = self.node("n", kind, cluster, label=box.name, n_in=len(dom), n_out=len(cod), ir=True)
        else:
            label, mark, claim = box.name, "", None
            if box.kind in NESTING and box.body is not None:
                names = self.names(box)
                label, claim = " = ".join(names), self.claim(names)
            if box.kind == "repeat":
                mark = f"×{box.kwargs.get('n')}"
            if box.kind == "scan":
                label = _scan_label(box)
            if mirror:
                label = _inverted(label)
            count = param_count(box)
            nid = self.node("n", BOX, cluster, style=box.kind, label=label, detail=_describe(box), mark=mark,
                            n_in=len(dom), n_out=len(cod), ir=True, params=count, shared=box.shared,
                            iso=box.iso and box.kind != "structural", inverted=mirror, split=_split(box, mirror),
                            badge=_badge(box), claim=claim)
            if self.params and count:
                self.use_params(nid, box, count, share)
            if self.params:
                for shared in tied_instances(box):
                    assert shared.shared is not None
                    self.tied.setdefault(shared.shared, (param_count(shared), []))[1].append(nid)
        for i, end in enumerate(ins):
            self.connect(end, nid, i, dom.obs[i])
        # Every wire is labelled once, where it is made; a swap's outputs
        # are its inputs' wires, already labelled.
        labelled = not (box.kind == "structural" and box.name == "swap")
        return [_End(nid, j, ob, labelled) for j, ob in enumerate(cod.obs)]

    def names(self, box: Box) -> list[str]:
        """The names a nested box is drawn with: its alias chain without a template's parameter.

        Inside ``residual(branch)``, the parameter ``f`` is bound to
        ``branch``: the box says ``branch``, not ``f = branch``.
        """
        names = _alias_chain(box)[0]
        if len(names) > 1 and names[0] in self.template_params:
            return names[1:]
        return names

    def nested(self, box: Box, ins: list[_End], level: int, cluster: str | None, share: list | None,
               mirror: bool = False) -> list[_End]:
        assert box.body is not None
        names, body, shared = _alias_chain(box)
        if names == [box.name] and box.name in self.template_params and not box.args and shared is None:
            # A template's parameter bound to boxes that are no definition
            # (``residual(dense ; relu)``): its name is the template's
            # business, so the boxes are drawn in place.
            return self.diagram(body, ins, level, cluster, share, mirror)
        names = self.names(box)
        mark = f"×{box.kwargs.get('n')}" if box.kind == "repeat" else ""
        label = " = ".join(_inverted(n) if mirror else n for n in names)
        cid = self.cluster(label, box.kind, cluster, mark=mark, shared=shared, inverted=mirror, claim=self.claim(names))
        if shared is not None:
            # Boxes inside a shared instance share with the boxes at the same
            # place inside every other use of that instance.
            share = [shared, 0]
        outer, self.template_params = self.template_params, _template_params(box)
        try:
            outs = self.diagram(body, ins, level + 1, cid, share, mirror)
        finally:
            self.template_params = outer
        return self.close(cid, ins, outs)

    def inverse(self, box: Box, ins: list[_End], level: int, cluster: str | None, share: list | None,
                mirror: bool) -> list[_End]:
        """``inv(f)``: the mirror image of ``f`` (``mirror`` is the direction ``f`` is drawn in).

        The inverse of one box (a generator, a definition, a repeat) is that
        box mirrored, at this level: ``inv(flow)`` opens with ``depth`` just
        as ``flow`` does.  The inverse of several boxes is a nested box of
        kind ``inv`` around their mirror image.
        """
        assert box.body is not None
        body = box.body
        if len(body.layers) == 1 and not body.layers[0].left.obs and not body.layers[0].right.obs:
            return self.box(body.layers[0].box, ins, level, cluster, share, mirror)
        if not body.layers:
            return ins
        label = _inv_label(body, mirror)
        if not self.opens(level):
            count = param_count(box)
            nid = self.node("n", BOX, cluster, style="inv", label=label, n_in=len(box.dom), n_out=len(box.cod),
                            ir=True, params=count, iso=True, inverted=mirror)
            if self.params and count:
                self.use_params(nid, box, count, share)
            for i, end in enumerate(ins):
                self.connect(end, nid, i, box.dom.obs[i])
            return [_End(nid, j, ob, True) for j, ob in enumerate(box.cod.obs)]
        cid = self.cluster(label, "inv", cluster, inverted=mirror)
        outs = self.diagram(body, ins, level + 1, cid, share, mirror)
        return self.close(cid, ins, outs)

    def trace(self, box: Box, ins: list[_End], level: int, cluster: str | None, share: list | None) -> list[_End]:
        """``scan[S](cell)``: the cell in a nested box, each state wire fed back.

        The cell starts from :data:`TRACE_IN` ends and returns its state into
        :data:`TRACE_OUT` ends; the back ends draw the loop from each
        ``TRACE_OUT`` to its ``partner`` and write the state's name on it
        (the wires at either end of the loop stay unlabelled).
        """
        assert box.body is not None
        n = int(box.kwargs["state"])  # type: ignore[arg-type]
        state = box.body.dom[:n]
        cid = self.cluster(_scan_label(box), "scan", cluster)
        starts = [self.node("t", TRACE_IN, cid, n_out=1, loop=k, label=str(_plain(ob))) for k, ob in enumerate(state.obs)]
        begin = [_End(t, 0, ob, False) for t, ob in zip(starts, state.obs)]
        outs = self.diagram(box.body, begin + list(ins), level + 1, cid, share)
        for k, (end, ob) in enumerate(zip(outs[:n], state.obs)):
            back = self.node("t", TRACE_OUT, cid, n_in=1, loop=k, label=str(_plain(ob)), partner=starts[k])
            self.connect(replace(end, labelled=False), back, 0)
        return self.close(cid, ins, outs[n:])

    def close(self, cid: str, ins: list[_End], outs: list[_End]) -> list[_End]:
        """Finish a nested box: route untouched wires through it, record its wires."""
        outs = list(outs)
        for j, end in enumerate(outs):
            if any(end is i for i in ins):
                # A wire that crosses the nested box untouched still runs through it.
                wp = self.node("w", WAYPOINT, cid, n_in=1, n_out=1)
                self.connect(end, wp, 0)
                outs[j] = _End(wp, 0, end.ob, False)
        index = int(cid[1:])
        self.clusters[index] = replace(
            self.clusters[index],
            inputs=tuple((e.node, e.port) for e in ins),
            outputs=tuple((e.node, e.port) for e in outs),
        )
        return outs

    def use_params(self, nid: str, box: Box, count: int, share: list | None) -> None:
        if box.shared is not None:
            key: tuple = ("shared", box.shared)
            self.shared_label[key] = (box.shared, count)
        elif share is not None:
            key = ("shared", share[0], share[1])
            share[1] += 1
            self.shared_label[key] = (share[0], count)
        else:
            key = ("own", nid)
        self.users.setdefault(key, []).append(nid)

    def join_tied(self) -> None:
        """Add each tied use to the users of its instance's parameters.

        A tied instance is one weight layer, so whichever key its other uses
        got (the instance drawn as one box, or its one box inside) is its
        one parameter source; an instance used only tied gets a source of
        its own, labelled with its name.
        """
        for name, (count, users) in self.tied.items():
            key = next((k for k in self.users if k[0] == "shared" and k[1] == name), ("tied", name))
            self.shared_label.setdefault(key, (name, count))
            self.users.setdefault(key, []).extend(users)

    def parameters(self) -> None:
        """Add one parameter source per instance, copied to each of its users."""
        self.join_tied()
        for key, users in self.users.items():
            first = users[0]
            cluster = _common_cluster([self.g.nodes[u]["cluster"] for u in users], self.clusters)
            if len(users) == 1 and key[0] == "tied":
                name, count = self.shared_label[key]
                src = self.node("p", PARAM, self.g.nodes[first]["cluster"], label=f"{name} {count:,}", n_out=1, target=first, shared=name)
                self._param_wire(src, first)
                continue
            if len(users) == 1:
                count = self.g.nodes[first]["params"]
                src = self.node("p", PARAM, self.g.nodes[first]["cluster"], label=f"{count:,}", n_out=1, target=first)
                self._param_wire(src, first)
                continue
            name, count = self.shared_label[key]
            src = self.node("p", PARAM, cluster, label=f"{name} {count:,}", n_out=1, target=first, shared=name)
            dot = self.node("q", COPY, cluster, style="param_copy", n_in=1, n_out=len(users), target=first, shared=name)
            self._param_wire(src, dot, dst_port=0)
            for j, u in enumerate(users):
                self._param_wire(dot, u, src_port=j)

    def _param_wire(self, src: str, dst: str, src_port: int = 0, dst_port: int = -1) -> None:
        # The count is written at the wire's free end (the PARAM node).
        self.g.add_edge(src, dst, key=self.wires, kind=PARAMETER, style=PARAMETER, src_port=src_port,
                        dst_port=dst_port, label="", shape="", labelled=False)
        self.wires += 1


def _single_composite(d: Diagram) -> Box | None:
    """The composite ``d`` consists of, if it is one unwhiskered composite box."""
    if len(d.layers) == 1:
        layer = d.layers[0]
        if layer.box.kind == "composite" and not layer.left.obs and not layer.right.obs:
            return layer.box
    return None


def _alias_chain(box: Box) -> tuple[list[str], Diagram, str | None]:
    """The names a nested box goes by, the body it finally draws, its shared name.

    A definition whose body is just another definition (``block = residual``,
    ``shared enc = encoder``, a template's morphism parameter ``f`` bound to
    ``branch``, the body of ``repeat``) is drawn as one nested box named
    after both, rather than as boxes nested in boxes with nothing else
    inside (:meth:`_Builder.names` then drops a template's parameter).
    """
    assert box.body is not None
    names = [box.name]
    body, shared = box.body, box.shared
    while (inner := _single_composite(body)) is not None and inner.body is not None:
        if inner.name != names[-1]:
            names.append(inner.name)
        shared = shared or inner.shared
        body = inner.body
    return names, body, shared


def _template_params(box: Box) -> frozenset[str]:
    """The morphism parameters of a template application, and of the definitions it renames.

    A template's box keeps what each parameter was bound to among its
    arguments (``("f", <diagram>)``).
    """
    names: set[str] = set()
    inner: Box | None = box
    while inner is not None and inner.body is not None:
        names.update(k for k, v in inner.args if isinstance(v, Diagram))
        inner = _single_composite(inner.body)
    return frozenset(names)


def _inverted(label: str) -> str:
    """``f`` as the label of its inverse: ``f⁻¹`` (and ``f⁻¹`` back to ``f``)."""
    return label[: -len(INVERSE)] if label.endswith(INVERSE) else label + INVERSE


def _inv_label(body: Diagram, mirror: bool) -> str:
    """The label of an inverse of several boxes: ``(coupling ; reverse)⁻¹``."""
    names = [layer.box.name for layer in body.layers if not (layer.box.kind == "structural" and layer.box.name == "id")]
    text = " ; ".join(names) if len(names) <= 3 else f"{names[0]} ; … ; {names[-1]}"
    return f"({text}){INVERSE}" if mirror else f"({text})"


def _scan_label(box: Box) -> str:
    """``scan[S]`` with the state's object names."""
    assert box.body is not None
    state = box.body.dom[: int(box.kwargs["state"])]  # type: ignore[arg-type]
    return f"scan[{' ⊗ '.join(str(ob) for ob in state.obs)}]"


def _split(box: Box, mirror: bool) -> str:
    """How a bundle box is drawn: ``"split"`` (E to B ⊗ F), ``"merge"`` (to E or to B alone), or ``""``."""
    if box.kind != "generator" or box.name not in ("triv", "proj"):
        return ""
    return "split" if box.name == "triv" and not mirror else "merge"


def _describe(box: Box) -> str:
    if box.kind in ("generator", "structural"):
        return box_detail(box)
    if box.kind == "scan":
        # A closed trace names its cell when the cell is one box.
        assert box.body is not None
        layers = box.body.layers
        return layers[0].box.name if len(layers) == 1 else ""
    if box.shared is not None:
        return "shared" if box.shared == box.name else f"shared {box.shared}"
    return ""


def _common_cluster(clusters: list[str | None], table: list[Cluster]) -> str | None:
    parent = {c.id: c.parent for c in table}

    def chain(c: str | None) -> list[str | None]:
        out: list[str | None] = []
        while c is not None:
            out.append(c)
            c = parent[c]
        return [None] + out[::-1]

    chains = [chain(c) for c in clusters]
    common: str | None = None
    for level in zip(*chains):
        if all(x == level[0] for x in level):
            common = level[0]
        else:
            break
    return common


#: At most this many levels of nested definitions are opened in a figure.
MAX_DEPTH = 32


def build(diagram: Diagram, *, name: str | None = None, depth: int | None = None, params: bool = False,
          claims: Mapping[str, Claim] | None = None) -> nx.MultiDiGraph:
    """The graph of ``diagram``, drawn inside a box labelled ``name`` if given.

    ``depth`` is how many levels of nested definitions are expanded (``None``
    for all, up to :data:`MAX_DEPTH`; ``0`` draws every composite of
    ``diagram`` as one box).  With
    ``params``, every box with parameters gets a parameter wire from a
    :data:`PARAM` node, and the users of one shared instance get one source
    copied to each of them.  ``claims`` maps definitions to what they claim
    (``("invariant", "C4")``): a definition is drawn with its claim, as one
    box or nested (:func:`catnet.render.render` reads them from the checked
    module: the IR does not keep them).
    """
    assert depth is None or depth >= 0
    # Nesting is drawn by recursion and as nested Graphviz clusters: both
    # stay bounded, so deeper definitions are drawn as single boxes.
    b = _Builder(MAX_DEPTH if depth is None else min(depth, MAX_DEPTH), params, claims or {})
    top = b.cluster(name, "entry", None, claim=b.claim([name])) if name else None
    wires = [_End(b.node("in", INPUT, None, n_out=1, index=i), 0, ob, True) for i, ob in enumerate(diagram.dom.obs)]
    outs = b.diagram(diagram, wires, 0, top, None)
    if top is not None:
        outs = b.close(top, wires, outs)
    for j, end in enumerate(outs):
        b.connect(end, b.node("out", OUTPUT, None, n_in=1, index=j), 0, diagram.cod.obs[j])
    b.parameters()
    b.g.graph["name"] = name
    b.g.graph["clusters"] = tuple(b.clusters)
    b.g.graph["depth"] = depth
    b.g.graph["params"] = params
    return b.g


def hidden_swaps(g: nx.MultiDiGraph) -> set[str]:
    """Swaps drawn as nothing: both inputs come from one copy dot.

    Copying is cocommutative (``copy ; swap = copy``), so such a crossing
    says nothing and only knots the picture; the wiring form makes these
    whenever the first use of a wire comes second.  The node stays in the
    graph (one node per box of the IR); the back ends draw the copy dot's
    wires straight on.
    """
    out: set[str] = set()
    for nid, data in g.nodes(data=True):
        if data["kind"] == SWAP:
            sources = {u for u, _ in g.in_edges(nid)}
            if len(sources) == 1 and g.nodes[next(iter(sources))]["kind"] == COPY:
                out.add(nid)
    return out


def shades(g: nx.MultiDiGraph) -> dict[str, int]:
    """How dark each nested box is drawn (an index into ``style.CLUSTER_FILLS``): the entry 0, each level inside one more."""
    level: dict[str, int] = {}
    for cl in g.graph["clusters"]:  # parents come before their children
        level[cl.id] = 0 if cl.kind == "entry" else (level.get(cl.parent, 0) + 1 if cl.parent else 1)
    return level


def cluster_path(g: nx.MultiDiGraph, cluster: str | None) -> tuple[str, ...]:
    """The ids of the clusters around ``cluster``, outermost first, itself last."""
    parent = {c.id: c.parent for c in g.graph["clusters"]}
    out: list[str] = []
    while cluster is not None:
        out.append(cluster)
        cluster = parent[cluster]
    return tuple(out[::-1])
