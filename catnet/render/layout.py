"""A deterministic layered layout of a string-diagram graph, in pure Python.

The TikZ back end needs coordinates, and they must not depend on the
installed Graphviz, so this module lays the graph of
:mod:`catnet.render.graph` out itself.  Coordinates are in centimetres along
two axes: *flow*, the way data runs, and *cross*, across it (from the side
parameter wires enter).  The back end maps them to ``x``/``y``.

Each nested box is laid out on its own, innermost first, and then placed as
one block in its parent, so nested boxes never overlap and a wire enters a
nested box at a port on its boundary, in the order of the box's domain.
A trace (``scan``) keeps a band along its top for its feedback loops, one
per state wire, and the loops' starts go first in their rank, so that each
loop runs from the cell's state output over the cell to its state input
without crossing a wire:

1. the elements of a box (its nodes and its child blocks) are ranked by the
   longest path from its inputs, so every wire runs forward;
2. a wire that skips ranks gets a pass point in each rank it crosses, so it
   runs between boxes, never through them;
3. rank by rank, each element is put where its input wires point on
   average, in that order, then pushed apart just enough not to touch;
4. the gap between two ranks has three zones along the flow: wires leave
   their ports straight (zone A), bend in the middle (zone B) and arrive
   straight (zone C).  A wire is labelled once, where it is made, above
   (left to right) or beside (top to bottom) its straight stretch in zone A,
   or, when it leaves a copy dot (whose wires start at one point), in
   zone C; the zones are as long as their longest label, so no curve and
   no box ever meets a label;
5. when the ranks of a box are wider than the room it has (the page width,
   :attr:`~catnet.render.style.Options.width`, less the padding of the
   boxes around it), they wrap into rows (:func:`catnet.render.wrap.split`),
   read like lines of text: each row starts at the box's left and the next
   row is below it; a wire cut by a row break runs on from the end of its
   row, down to a lane of its own between the two rows, back to the start
   of the next row and on into it.  These *return wires* are the only
   stretches that run against the flow.  A trace's cell does not wrap (its
   loops run over the top of it), nor does anything top to bottom.

If the figure is still wider than the page, or wider than ``max_aspect``
times its height, the room is shrunk and everything is laid out again,
until it fits or no box can wrap any further.

Parameter wires (the Para view) come in two kinds.  A box with a parameter
source of its own gets a *stub*: a short wire across the flow into the box,
in a lane kept free before it, with the count at its free end.  A shared
instance's source (``enc 8,320``) is an element of the smallest nested box
around all the boxes it feeds: it goes first (on the parameter side) in
its rank, and its wires run like data wires, entering nested boxes through
ports on their input side (never through a title) and each box through its
lane.

Text sizes are estimated from character counts, generously, so boxes drawn
with these sizes as their minimum size still hold their text.  Only
arithmetic on the graph's data is involved, so the layout, and the TikZ
written from it, is the same on every machine.

Each block looks only at the wires that run inside it or cross its
boundary, and each rank only at its own elements and the wires that start
in it or pass through it, so the time taken grows linearly with the size of
the drawing (a 10,000-box chain lays out in about a second; see
``bench/bench_tikz.py``).  Nested boxes are walked with explicit stacks, so
no depth of nesting meets Python's recursion limit.

What the back ends draw from a :class:`Layout`: every wire's ``paths`` point
list with ``kinds`` (one character per segment: ``-`` a straight line, ``~``
a curve that leaves and arrives along the flow, its control points given by
:func:`controls`), each labelled wire's label rectangle (``labels``), each
nested box's title rectangle (``titles``), the parameter stubs and the
rectangles of the parameter counts (``stubs``, ``counts``), and each swap's
two crossing strands (:func:`swap_strands`).  :func:`flatten` turns a path
into the polyline the back ends draw, for geometric tests.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import networkx as nx

from . import graph as G
from .symmetry import WireAction, action_tex, action_text, claim_text
from .wrap import split as wrap_rows

# Sizes in centimetres.
# Text is measured generously enough for both back ends: TikZ's \small and
# \scriptsize, and the 9 pt and 7 pt the SVG asks for, which Graphviz
# measures in DejaVu Sans when Helvetica stands for it (as on Debian).
CHAR = 0.19  # an average character of a box label
SMALL_CHAR = 0.15  # of a wire label or a box's detail line
LINE = 0.32  # height of a line of \scriptsize text
BOX_PAD = 0.36  # text to box outline, both sides together
BOX_MIN = (0.8, 0.6)  # smallest box (along its text, across it)
BADGE_PAD = 0.45  # the frame of a badge and the space before it
PORT_GAP = 0.42  # between neighbouring ports of one box
LABEL_PORT_GAP = 0.4  # between ports whose wires carry labels of one line above them
DOT = 0.0  # dots take no room of their own beyond the wire gap
ADD = 0.3  # the ⊕ node's diameter
GAP_FLOW = 0.55  # between ranks, at least
CURVE = 0.4  # the shortest zone in which a wire bends from one rank to the next
LEAD = 0.2  # a label's margin along its straight stretch
GAP_CROSS = 0.35  # between neighbours in one rank
WIRE_GAP = 0.4  # between wires running side by side
RETURN_GAP = 0.2  # between return wires running side by side (a row break)
RETURN_PAD = 0.25  # between a row and the return wires beside it
PAD = 0.25  # inside a nested box, around its contents
TITLE = 0.45  # the band for a nested box's title
LANE = 0.8  # room for a parameter wire and its count before a box
STUB = LANE * 0.55  # a parameter stub's length; the count is written beyond its end
SOURCE_STUB = 0.3  # a shared parameter source: from its count to its dot
LOOP = 0.4  # the band for each feedback loop of a trace, and its label
LOOP_STEP = 0.14  # how far apart along the flow the loops of one trace turn
SLANT = 0.4  # the extra length of a trapezoid (``triv``, ``proj``) for its slanted sides
#: How far along the flow a curve's control points lie, as a share of the
#: distance between its ends (TikZ's own ``to[out=0, in=180]``), at most
#: the curve's length along the flow, so that it never turns back.
LOOSENESS = 0.3915
#: Centimetres per PostScript point.
CM_PER_PT = 2.54 / 72.0

#: Nodes that are points: wires meet at their centre.
POINTS = (G.COPY, G.DISCARD, G.WAYPOINT, G.TRACE_IN, G.TRACE_OUT)

Point = tuple[float, float]
Rect = tuple[float, float, float, float]


def text_width(text: str, char: float = CHAR) -> float:
    return len(text) * char


def _printed(tex: str) -> str:
    """About as many characters as LaTeX prints for ``tex``, generously (subscripts count in full)."""
    tex = re.sub(r"\\(oplus|otimes|times)", "+  ", tex)
    tex = re.sub(r"\\(colon|langle|rangle|rho)", ".", tex)
    tex = re.sub(r"\\[A-Za-z]+", "", tex)
    return re.sub(r"[{}_^$\\]", "", tex)


def _badge_width(d: dict) -> float:
    """The room a box's badge takes after its name (none without one)."""
    text = claim_text(d["claim"]) if d.get("claim") else d.get("badge", "")
    return text_width(text, SMALL_CHAR) + BADGE_PAD if text else 0.0


def cluster_title(cl: G.Cluster) -> str:
    """The title of a nested box as printed (its claim's badge aside)."""
    title = cl.label + (f" {cl.mark}" if cl.mark else "")
    if cl.shared:
        title += " (shared)" if cl.shared in cl.label.split(" = ") else f" (shared {cl.shared})"
    return title


def controls(a: Point, b: Point) -> tuple[Point, Point]:
    """The control points of a ``~`` segment from ``a`` to ``b``: it leaves and arrives along the flow."""
    k = min(math.hypot(b[0] - a[0], b[1] - a[1]) * LOOSENESS, abs(b[0] - a[0]))
    return (a[0] + k, a[1]), (b[0] - k, b[1])


def flatten(points: list[Point], kinds: str, steps: int = 16) -> list[Point]:
    """The polyline a path is drawn as: ``-`` segments as they are, ``~`` curves in ``steps`` pieces."""
    out = [points[0]]
    for a, b, kind in zip(points, points[1:], kinds):
        if kind == "~" and abs(a[1] - b[1]) > 1e-9:
            p, q = controls(a, b)
            for i in range(1, steps + 1):
                t = i / steps
                s = 1 - t
                out.append((s**3 * a[0] + 3 * s * s * t * p[0] + 3 * s * t * t * q[0] + t**3 * b[0],
                            s**3 * a[1] + 3 * s * s * t * p[1] + 3 * s * t * t * q[1] + t**3 * b[1]))
        else:
            out.append(b)
    return out


def swap_strands(rect: Rect) -> tuple[tuple[list[Point], str], tuple[list[Point], str]]:
    """The two strands of a swap drawn in ``rect``: from its first input to its second output, and back.

    Each is one ``~`` curve: the two cross once, in the middle of the swap.
    """
    f, c, F, C = rect
    a, b = c + C / 3, c + 2 * C / 3
    return ([(f, a), (f + F, b)], "~"), ([(f, b), (f + F, a)], "~")


@dataclass
class Block:
    """A laid-out box: its size, and where everything in it goes.

    Positions are relative to the block's corner (flow 0, cross 0).
    ``nodes`` maps a node to its rectangle ``(f, c, F, C)`` (the box itself,
    without its parameter lane); ``blocks`` maps a child block's id to its
    corner; ``inputs``/``outputs`` are the cross positions of the boundary
    ports (parameter ports after the data ports); ``routes`` maps a wire to
    its run inside this block, from where it starts here to where it ends
    here, as points with the kind of the segment that reaches each
    (``""`` for the first); ``labels`` maps a wire labelled here to its
    label's rectangle; ``bands`` maps each node to the flow interval of the
    gap before its rank; ``rows`` is how many rows its ranks wrap into.
    """

    F: float = 0.0
    C: float = 0.0
    nodes: dict[str, Rect] = field(default_factory=dict)
    blocks: dict[str, tuple[float, float]] = field(default_factory=dict)
    inputs: list[float] = field(default_factory=list)
    outputs: list[float] = field(default_factory=list)
    routes: dict[int, list[tuple[float, float, str]]] = field(default_factory=dict)
    labels: dict[int, Rect] = field(default_factory=dict)
    inner: tuple[float, float] = (0.0, 0.0)
    bands: dict[str, tuple[float, float]] = field(default_factory=dict)
    rows: int = 1


@dataclass(frozen=True)
class Wire:
    """A wire as drawn (after hidden swaps are taken out): a data wire, or a shared parameter's wire.

    A shared parameter's wire (``style`` :data:`graph.PARAMETER`) runs from
    its source (the :data:`graph.PARAM` node; ``sport`` is the use) into
    the lane of the box it feeds (``dport`` -1).
    """

    key: int
    src: str
    sport: int
    dst: str
    dport: int
    label: str
    shape: str
    labelled: bool
    style: str = G.DATA
    #: A G-space's action, written on a second line under the label.
    action: WireAction | None = None


@dataclass
class Layout:
    """Absolute positions of everything, in (flow, cross) centimetres.

    ``paths[k]`` and ``kinds[k]`` are wire ``k`` as drawn: its points, and
    one character per segment (``-`` straight, ``~`` a curve along the flow,
    see :func:`controls`).  ``labels[k]`` is the rectangle of its label
    (labelled wires only).  ``titles`` are the nested boxes' title
    rectangles.  ``stubs`` maps a parameter source of one box to its stub
    (free end, end on the box) and ``counts`` every parameter source to the
    rectangle of its count (a shared one's source is also in ``nodes``, a
    point at its dot, with its wires in ``wires``).  ``rows`` is how many
    rows each nested box (``None``: the top) wraps into.  ``loops`` maps the
    end of each trace's feedback loop (a :data:`graph.TRACE_OUT` node) to
    the loop's points (straight segments) and the middle of its top stretch,
    where its label goes.
    """

    lr: bool
    nodes: dict[str, Rect]
    clusters: dict[str, Rect]
    paths: dict[int, list[Point]]
    wires: list[Wire]
    bands: dict[str, tuple[float, float]]
    size: tuple[float, float]
    kinds: dict[int, str] = field(default_factory=dict)
    labels: dict[int, Rect] = field(default_factory=dict)
    titles: dict[str, Rect] = field(default_factory=dict)
    stubs: dict[str, tuple[Point, Point]] = field(default_factory=dict)
    counts: dict[str, Rect] = field(default_factory=dict)
    rows: dict[str | None, int] = field(default_factory=dict)
    loops: dict[str, tuple[list[Point], Point]] = field(default_factory=dict)


def shared_sources(g: nx.MultiDiGraph) -> dict[str, str]:
    """The parameter sources copied to several boxes: each one's copy dot, by source."""
    out = {}
    for n, d in g.nodes(data=True):
        if d["kind"] == G.PARAM:
            succ = next(iter(g.successors(n)))
            if g.nodes[succ]["style"] == "param_copy":
                out[n] = succ
    return out


def drawn_wires(g: nx.MultiDiGraph) -> tuple[list[Wire], set[str]]:
    """The wires to draw, and the swaps drawn as nothing.

    A hidden swap (:func:`graph.hidden_swaps`) is taken out: its output
    ``j`` becomes output ``j`` of the copy dot that feeds it.  A shared
    parameter's copy dot is taken out likewise: its wires start at the
    source, which draws the dot.
    """
    hidden = G.hidden_swaps(g)
    dots = {dot: src for src, dot in shared_sources(g).items()}
    wires = []
    for u, v, key, d in g.edges(keys=True, data=True):
        if d["kind"] == G.PARAMETER:
            if u in dots:
                wires.append(Wire(key, dots[u], d["src_port"], v, -1, "", "", False, G.PARAMETER))
            continue
        if d["kind"] != G.DATA or v in hidden:
            continue
        if u in hidden:
            u = next(iter(g.predecessors(u)))
        wires.append(Wire(key, u, d["src_port"], v, d["dst_port"], d["label"], d["shape"], d["labelled"], d["style"],
                          d.get("action")))
    return wires, hidden


class _Engine:
    def __init__(self, g: nx.MultiDiGraph, lr: bool, shapes: bool) -> None:
        self.g = g
        self.lr = lr
        self.shapes = shapes
        self.wires, self.hidden = drawn_wires(g)
        self.sources = shared_sources(g)
        self.index = {n: i for i, n in enumerate(g.nodes)}
        self.clusters = {c.id: c for c in g.graph["clusters"]}
        self.children: dict[str | None, list[str]] = {}
        for c in g.graph["clusters"]:
            self.children.setdefault(c.parent, []).append(c.id)
        self.members: dict[str | None, list[str]] = {}
        for n, d in g.nodes(data=True):
            if n in self.hidden or d["kind"] in (G.INPUT, G.OUTPUT) or d["style"] == "param_copy":
                continue
            if d["kind"] == G.PARAM and n not in self.sources:
                continue  # a stub, drawn in its box's lane
            self.members.setdefault(d["cluster"], []).append(n)
        self.lanes = {d["target"] for _, d in g.nodes(data=True) if d["kind"] == G.PARAM}
        #: The count written at the free end of each box's own stub.
        self.lane_text: dict[str, str] = {}
        for n, d in g.nodes(data=True):
            if d["kind"] == G.PARAM and n not in self.sources:
                self.lane_text[d["target"]] = d["label"]
        for _, v, d in g.edges(data=True):
            if d["kind"] == G.PARAMETER and g.nodes[v]["kind"] == G.BOX:
                self.lanes.add(v)
        self.depth: dict[str | None, int] = {None: 0}
        for c in g.graph["clusters"]:
            self.cluster_depth(c.id)
        self.bounds: dict[str | None, tuple[list[tuple[str, int]], list[tuple[str, int]]]] = {}
        self.port_index: dict[str, tuple[dict[tuple[str, int], int], dict[tuple[str, int], int]]] = {}
        # The wires each block sees, in wire order: a wire matters only to the
        # nested boxes between its two ends and their innermost common one, so
        # each block looks at its own wires rather than at all of them.
        self.local_wires: dict[str | None, list[Wire]] = {}
        # The parameter wires that enter each nested box, in wire order.
        self.param_ins: dict[str, list[Wire]] = {}
        for w in self.wires:
            up, lca, down = self.split(self.outer(w.src), self.outer(w.dst))
            for c in (lca, *up, *down):
                self.local_wires.setdefault(c, []).append(w)
            if w.style == G.PARAMETER:
                for c in down:
                    self.param_ins.setdefault(c, []).append(w)
        self.sizes: dict[str, tuple[float, float]] = {}
        self.blocks: dict[str | None, Block] = {}
        self.first: dict[str, int] = {}
        self.postorder = self.clusters_inside_out()
        for cid in self.postorder:
            self.first[cid] = self.cluster_first(cid)
        #: The room each nested box's ranks may take along the flow (set by :meth:`place`).
        self.budget: dict[str | None, float] = {}

    def loops(self, cid: str | None) -> int:
        """How many feedback loops nested box ``cid`` draws (its trace's state wires)."""
        return sum(1 for n in self.members.get(cid, []) if self.g.nodes[n]["kind"] == G.TRACE_IN)

    def cluster_depth(self, cid: str | None) -> int:
        """How many nested boxes hold ``cid``, itself included (0 for the top)."""
        chain: list[str] = []
        c = cid
        while c not in self.depth:
            chain.append(c)  # type: ignore[arg-type]
            c = self.clusters[c].parent  # type: ignore[index]
        for c2 in reversed(chain):
            self.depth[c2] = self.depth[self.clusters[c2].parent] + 1
        return self.depth[cid]

    def outer(self, n: str) -> str | None:
        """The innermost nested box around node ``n`` (``None`` for the diagram's own ends)."""
        d = self.g.nodes[n]
        return None if d["kind"] in (G.INPUT, G.OUTPUT) else d["cluster"]

    def split(self, x: str | None, y: str | None) -> tuple[list[str], str | None, list[str]]:
        """The nested boxes from ``x`` and from ``y`` up to their innermost common one.

        Returns the boxes around ``x`` below the common one (outermost first),
        the common one (``None``: the top), and those around ``y`` likewise.
        """
        up: list[str] = []
        down: list[str] = []
        while self.depth[x] > self.depth[y]:
            up.append(x)  # type: ignore[arg-type]
            x = self.clusters[x].parent  # type: ignore[index]
        while self.depth[y] > self.depth[x]:
            down.append(y)  # type: ignore[arg-type]
            y = self.clusters[y].parent  # type: ignore[index]
        while x != y:
            up.append(x)  # type: ignore[arg-type]
            down.append(y)  # type: ignore[arg-type]
            x = self.clusters[x].parent  # type: ignore[index]
            y = self.clusters[y].parent  # type: ignore[index]
        return up[::-1], x, down[::-1]

    def clusters_inside_out(self) -> list[str]:
        """Every nested box, each after all the boxes inside it (a post-order walk).

        Children are visited in their order of creation, as a recursive walk
        would, but with an explicit stack: nesting depth is not bounded by
        Python's recursion limit.
        """
        out: list[str] = []
        stack: list[tuple[str | None, int]] = [(None, 0)]
        while stack:
            cid, i = stack[-1]
            kids = self.children.get(cid, [])
            if i < len(kids):
                stack[-1] = (cid, i + 1)
                stack.append((kids[i], 0))
                continue
            stack.pop()
            if cid is not None:
                out.append(cid)
        return out

    def cluster_first(self, cid: str | None) -> int:
        """The IR order of a nested box: that of the first node inside it.

        The boxes inside ``cid`` must have theirs in ``self.first`` already.
        """
        best = min((self.index[n] for n in self.members.get(cid, [])), default=len(self.index))
        for child in self.children.get(cid, []):
            best = min(best, self.first[child])
        return best

    # -- sizes ----------------------------------------------------------------

    def label(self, w: Wire) -> str:
        return w.shape if self.shapes else w.label

    def label_width(self, w: Wire) -> float:
        """How long a wire's label is: its name, or the action under it if that is longer.

        The action is written in math in TikZ (``C_4: 8\\rho_{reg}``) and in
        words in the SVG (``C4: regular × 8``): room is kept for the longer.
        """
        width = text_width(self.label(w), SMALL_CHAR)
        if w.action is not None:
            words = text_width(action_text(w.action), SMALL_CHAR)
            width = max(width, words, text_width(_printed(action_tex(w.action)), SMALL_CHAR))
        return width

    def label_size(self, w: Wire) -> tuple[float, float]:
        """(flow, cross) extent of a wire's label: above the wire left to right, beside it top to bottom."""
        lines = 2 if w.action is not None else 1
        if self.lr:
            return (self.label_width(w), lines * LINE)
        return (lines * LINE, self.label_width(w) + 0.1)

    def node_size(self, n: str) -> tuple[float, float]:
        """(flow, cross) extent of a node, without its parameter lane."""
        # Asked for many times per node while placing; computed once.
        if n not in self.sizes:
            self.sizes[n] = self._node_size(n)
        return self.sizes[n]

    def _node_size(self, n: str) -> tuple[float, float]:
        d = self.g.nodes[n]
        kind = d["kind"]
        if kind in POINTS:
            return (0.0, 0.0)
        if kind == G.ADD:
            return (ADD, ADD)
        if kind == G.SWAP:
            return (0.5, PORT_GAP)
        if kind == G.PARAM:
            # A shared source: its count, a short stub, and the dot its wires leave from.
            text = text_width(d["label"], SMALL_CHAR)
            return (text + SOURCE_STUB, LINE) if self.lr else (LINE + SOURCE_STUB, text)
        title = d["label"] + (f" {d['mark']}" if d["mark"] else "")
        if d.get("iso") and not d.get("inverted"):
            title += " ↔"
        along = max(text_width(title) + _badge_width(d), text_width(d["detail"], SMALL_CHAR)) + BOX_PAD
        if d.get("split"):
            along += SLANT
        across = LINE * (2 if d["detail"] else 1) + 0.3
        count = max(d["n_in"], d["n_out"], 1)
        ports = count * PORT_GAP
        if self.lr and count > 1:
            # Each wire's label sits above it, clear of the wire above.
            ports = max(ports, (count + 1) * LABEL_PORT_GAP)
        if self.lr:
            return (max(along, BOX_MIN[0]), max(across, BOX_MIN[1], ports))
        return (max(across, BOX_MIN[1]), max(along, BOX_MIN[0], ports))

    def lane(self, n: str) -> float:
        if n not in self.lanes:
            return 0.0
        if self.lr:
            return LANE
        return LANE + text_width(self.lane_text.get(n, ""), SMALL_CHAR)

    def reach(self, n: str) -> float:
        """The room a node takes along the flow: the box, or the count over its stub if that is longer."""
        F = self.node_size(n)[0]
        if self.lr and n in self.lane_text:
            return max(F, text_width(self.lane_text[n], SMALL_CHAR) + 0.1)
        return F

    def ports(self, n: str, out: bool) -> list[float]:
        """Cross offsets of a node's input or output ports from its start."""
        d = self.g.nodes[n]
        C = self.node_size(n)[1]
        count = d["n_out"] if out else d["n_in"]
        if d["kind"] in POINTS or d["kind"] == G.ADD:
            return [C / 2] * count
        return [C * (i + 1) / (count + 1) for i in range(count)]

    def port_cross(self, n: str, index: int, out: bool) -> float:
        """Cross offset of port ``index`` of node ``n`` from its start (-1: its parameter lane)."""
        if self.g.nodes[n]["kind"] == G.PARAM:
            return self.node_size(n)[1] / 2
        if index < 0:
            return -LANE / 2
        return self.ports(n, out)[index]

    def port_flow(self, n: str, out: bool) -> float:
        """Flow offset of a node's ports from its start: the far side for outputs, a dot's centre."""
        F = self.node_size(n)[0]
        if self.g.nodes[n]["kind"] in POINTS:
            return F / 2
        return F if out else 0.0

    # -- one block ----------------------------------------------------------

    def lift(self, cid: str | None, n: str) -> str | None:
        """The element of ``cid`` that holds node ``n`` (a node or a child block)."""
        c = self.g.nodes[n]["cluster"]
        if self.g.nodes[n]["kind"] in (G.INPUT, G.OUTPUT):
            c = "<outside>"
        if c == cid:
            return n
        while c is not None and c != "<outside>":
            parent = self.clusters[c].parent
            if parent == cid:
                return c
            c = parent
        return None

    def boundary(self, cid: str | None) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
        """The wire ends that enter and leave ``cid`` (``None``: the whole diagram), in port order.

        The parameter wires that enter a nested box come after its domain.
        """
        if cid in self.bounds:
            return self.bounds[cid]
        if cid is None:
            ins = [(n, 0) for n, d in self.g.nodes(data=True) if d["kind"] == G.INPUT]
            into: dict[str, Wire] = {}
            for w in self.wires:
                into.setdefault(w.dst, w)
            outs = []
            for n, d in self.g.nodes(data=True):
                if d["kind"] == G.OUTPUT:
                    w = into[n]
                    outs.append((w.src, w.sport))
            self.bounds[cid] = (ins, outs)
        else:
            c = self.clusters[cid]
            params = [(w.src, w.sport) for w in self.param_ins.get(cid, [])]
            self.bounds[cid] = ([self.canon(e) for e in c.inputs] + params, [self.canon(e) for e in c.outputs])
        return self.bounds[cid]

    def port_of(self, cid: str, end: tuple[str, int], out: bool) -> int:
        """Which port of nested box ``cid`` the wire made at ``end`` enters (or leaves) by."""
        if cid not in self.port_index:
            ins, outs = self.boundary(cid)
            first_in: dict[tuple[str, int], int] = {}
            first_out: dict[tuple[str, int], int] = {}
            for i, e in enumerate(ins):
                first_in.setdefault(e, i)
            for j, e in enumerate(outs):
                first_out.setdefault(e, j)
            self.port_index[cid] = (first_in, first_out)
        return self.port_index[cid][1 if out else 0][end]

    def canon(self, end: tuple[str, int]) -> tuple[str, int]:
        node, port = end
        if node in self.hidden:
            return (next(iter(self.g.predecessors(node))), port)
        return end

    def wraps(self, cid: str | None) -> bool:
        """Whether the ranks of ``cid`` may wrap into rows: left to right, and not a trace's cell."""
        return self.lr and (cid is None or self.clusters[cid].kind != "scan")

    def labelled_here(self, w: Wire, a: str | None, cid: str | None) -> bool:
        """Whether wire ``w`` (made at element ``a`` of ``cid``) gets its label in this block."""
        return w.labelled and bool(self.label(w)) and (a is None and cid is None or a is not None and a == w.src)

    def at_arrival(self, w: Wire) -> bool:
        """Whether a wire's label goes at its arrival (zone C): the wires of a copy dot start at one point."""
        return self.g.nodes[w.src]["kind"] == G.COPY

    def layout(self, cid: str | None) -> Block:
        """Lay out nested box ``cid`` (``None``: the whole diagram).

        The blocks of the boxes inside it must be in ``self.blocks`` already.
        """
        elements = list(self.members.get(cid, [])) + list(self.children.get(cid, []))
        order = {e: (self.index[e] if e in self.index else self.first[e]) for e in elements}
        elements.sort(key=lambda e: order[e])
        ins, outs = self.boundary(cid)
        in_index = {e: i for i, e in enumerate(ins)}
        out_index = {e: j for j, e in enumerate(outs)}
        n_data = len(ins) - (len(self.param_ins.get(cid, [])) if cid is not None else 0)

        # Wires seen from this block: (wire, source element or None, target element or None).
        local: list[tuple[Wire, str | None, str | None]] = []
        for w in self.local_wires.get(cid, []):
            a, b = self.lift(cid, w.src), self.lift(cid, w.dst)
            if a is None and b is None:
                continue
            if a is not None and a == b:
                continue  # inside one child block
            if a is None:
                assert (w.src, w.sport) in in_index
            if b is None:
                assert (w.src, w.sport) in out_index
            local.append((w, a, b))

        # 1. ranks by longest path
        preds: dict[str, list[str]] = {e: [] for e in elements}
        for w, a, b in local:
            if a is not None and b is not None:
                preds[b].append(a)
        rank = _longest_path_ranks(elements, preds)
        R = 1 + max(rank.values(), default=-1)
        # Each rank's elements (in IR order), the wires that start in it and
        # the wires that pass through it (in wire order): the placement
        # below visits each once, so its cost is linear in the drawing.
        at_rank: list[list[str]] = [[] for _ in range(R)]
        for e in elements:
            at_rank[rank[e]].append(e)
        starting: list[list[tuple[Wire, str]]] = [[] for _ in range(R)]
        passing: list[list[Wire]] = [[] for _ in range(R)]
        feeds_of: dict[str, list[Wire]] = {e: [] for e in elements}
        span: dict[int, tuple[int, int]] = {}
        for w, a, b in local:
            ra = -1 if a is None else rank[a]
            rb = R if b is None else rank[b]
            span[w.key] = (ra, rb)
            if a is not None:
                starting[ra].append((w, a))
            if b is not None:
                feeds_of[b].append(w)
            for r in range(ra + 1, rb):
                passing[r].append(w)

        def extent(e: str) -> tuple[float, float, float]:
            """(flow, cross, lane) of an element."""
            if e in self.blocks:
                blk = self.blocks[e]
                return (blk.F, blk.C, 0.0)
            F, C = self.node_size(e)
            return (F, C, self.lane(e))

        def reach(e: str) -> float:
            return self.blocks[e].F if e in self.blocks else self.reach(e)

        def port_offset(e: str, index: int, out: bool) -> float:
            """Cross offset of a port from the element's centre (without lane)."""
            if e in self.blocks:
                blk = self.blocks[e]
                return (blk.outputs if out else blk.inputs)[index] - blk.C / 2
            return self.port_cross(e, index, out) - self.node_size(e)[1] / 2

        def in_port(e: str, w: Wire) -> int:
            return w.dport if e == w.dst else self._block_in(e, w)

        def out_port(e: str, w: Wire) -> int:
            return w.sport if e == w.src else self._block_out(e, w)

        # 2.+3. place rank by rank; port positions known so far, by wire key.
        # Parameter ports start above the data, where their wires go.
        src_pos: dict[int, float] = {}
        for w, a, b in local:
            if a is None:
                i = in_index[(w.src, w.sport)]
                src_pos[w.key] = i * WIRE_GAP if i < n_data else -(len(ins) - i) * WIRE_GAP
        center: dict[str, float] = {}
        routes_c: dict[int, list[float]] = {}
        label_room: dict[str, float] = {}
        # A G-space wire's label has a second line (its action): when data
        # flows left to right, it rises a line higher above the wire.
        rise: dict[str, float] = {}
        for w, a, b in local:
            if not self.lr and self.labelled_here(w, a, cid) and a is not None:
                room = self.label_width(w) + 0.15
                label_room[a] = max(label_room.get(a, 0.0), room)
            if self.lr and self.labelled_here(w, a, cid) and w.action is not None and a is not None:
                rise[a] = LINE

        for r in range(R):
            items: list[tuple[float, float, int, str | int]] = []  # (desired, tiebreak, kind order, id)
            for e in at_rank[r]:
                feeds = [w for w in feeds_of[e] if w.key in src_pos]
                # An element goes where its data comes from; parameters follow.
                data = [w for w in feeds if w.style != G.PARAMETER] or feeds
                wanted = [src_pos[w.key] - port_offset(e, in_port(e, w), False) for w in data]
                desired = sum(wanted) / len(wanted) if wanted else float("nan")
                tie = min((self._wire_order(w) for w in data), default=float(order[e]))
                items.append((desired, tie, 0, e))
            for w in passing[r]:
                items.append((src_pos[w.key], self._wire_order(w), 1, w.key))
            # Elements that nothing feeds go after their neighbours in IR
            # order, but the starts of feedback loops and parameter sources
            # go first: their wires run over the top.
            known = [it[0] for it in items if it[0] == it[0]]
            fallback = (max(known) + 1.0) if known else 0.0
            first = (min(known) - 1.0) if known else 0.0
            items = [(it[0] if it[0] == it[0] else first if self._goes_first(it) else fallback, it[1], it[2], it[3])
                     for it in items]
            items.sort(key=lambda it: (round(it[0], 6), it[1], it[2]))
            placed: list[float] = []
            sizes: list[tuple[float, float]] = []  # (before centre, after centre)
            for desired, _, kind, ident in items:
                if kind == 0:
                    _, C, lane = extent(ident)  # type: ignore[arg-type]
                    before = C / 2 + lane + rise.get(ident, 0.0)  # type: ignore[arg-type]
                    after = C / 2 + label_room.get(ident, 0.0) + rise.get(ident, 0.0)  # type: ignore[arg-type]
                else:
                    before, after = 0.0, 0.0
                if placed:
                    gap = GAP_CROSS if (kind == 0 or items[len(placed) - 1][2] == 0) else WIRE_GAP
                    lowest = placed[-1] + sizes[-1][1] + gap + before
                    desired = max(desired, lowest)
                placed.append(desired)
                sizes.append((before, after))
            if placed:
                shift = sum(it[0] - p for it, p in zip(items, placed)) / len(placed)
                placed = [p + shift for p in placed]
            for (desired, _, kind, ident), p in zip(items, placed):
                if kind == 0:
                    center[ident] = p  # type: ignore[index]
                else:
                    routes_c.setdefault(ident, []).append(p)  # type: ignore[arg-type]
            # output ports of this rank, and pass points, feed the next rank
            for w, a in starting[r]:
                src_pos[w.key] = center[a] + port_offset(a, out_port(a, w), True)
            for w in passing[r]:
                src_pos[w.key] = routes_c[w.key][-1]

        # boundary ports follow the wires they carry: the domain in order,
        # the parameter ports among them where their wires run
        in_c = [j * WIRE_GAP for j in range(len(ins))]
        # Top to bottom, a wire's label is beside it: the next wire keeps clear of it.
        room = [WIRE_GAP] * len(ins)
        for w, a, b in local:
            if a is None:
                i = in_index[(w.src, w.sport)]
                if not self.lr and w.labelled:
                    room[i] = max(room[i], self.label_width(w) + 0.2)
                if w.key in routes_c:
                    in_c[i] = routes_c[w.key][0]
                elif b is not None:
                    in_c[i] = center[b] + port_offset(b, in_port(b, w), False)
        for i in range(1, n_data):
            in_c[i] = max(in_c[i], in_c[i - 1])
        by_cross = sorted(range(len(ins)), key=lambda i: (round(in_c[i], 6), i >= n_data, i))
        spread = _spread([in_c[i] for i in by_cross], [room[i] for i in by_cross])
        for i, c in zip(by_cross, spread):
            in_c[i] = c
        out_c = [j * WIRE_GAP for j in range(len(outs))]
        for w, a, b in local:
            if b is None:
                out_c[out_index[(w.src, w.sport)]] = src_pos[w.key]
        out_c = _spread(out_c)

        # Each wire's crosses where it leaves its start, passes each rank and arrives.
        crosses: dict[int, list[float]] = {}
        for w, a, b in local:
            ra, rb = span[w.key]
            if a is None:
                cs = [in_c[in_index[(w.src, w.sport)]]]
            else:
                cs = [center[a] + port_offset(a, out_port(a, w), True)]
            cs += routes_c.get(w.key, [])
            if b is None:
                cs.append(out_c[out_index[(w.src, w.sport)]])
            else:
                cs.append(center[b] + port_offset(b, in_port(b, w), False))
            crosses[w.key] = cs

        # 4. flow: rank bands, and the gaps between them in three zones
        width = [0.0] * R
        for e in elements:
            width[rank[e]] = max(width[rank[e]], reach(e))
        lead_a = [0.0] * (R + 1)  # gap g precedes rank g; gap R follows the last
        lead_c = [0.0] * (R + 1)
        bend = [0.0] * (R + 1)  # a gap where every wire runs straight on needs no room to bend
        labels: list[tuple[Wire, int, bool]] = []  # (wire, gap, at arrival)
        for w, a, b in local:
            ra, rb = span[w.key]
            cs = crosses[w.key]
            for k in range(rb - ra):
                if abs(cs[k + 1] - cs[k]) > 1e-6:
                    bend[ra + 1 + k] = max(bend[ra + 1 + k], min(1.0, CURVE + 0.2 * abs(cs[k + 1] - cs[k])))
            if self.labelled_here(w, a, cid):
                arrival = self.at_arrival(w)
                along = self.label_size(w)[0] + LEAD
                lead = lead_c if arrival else lead_a
                lead[ra + 1] = max(lead[ra + 1], along)
                labels.append((w, ra + 1, arrival))
        gaps = [max(GAP_FLOW, lead_a[g] + bend[g] + lead_c[g]) for g in range(R + 1)]

        # 5. rows: wrap where the ranks are wider than the room
        rows = [(0, R)]
        budget = self.budget.get(cid, math.inf)
        if self.wraps(cid) and R > 1 and budget < math.inf:
            unit = [width[r] + gaps[r + 1] for r in range(R)]
            diff = [0] * (R + 1)
            for ra, rb in span.values():
                diff[max(ra, 0)] += 1
                diff[rb] -= 1
            cost, run = [], 0
            for r in range(R):
                run += diff[r]
                cost.append(run)
            rows = wrap_rows(unit, cost, budget - gaps[0])
            if len(rows) > 1:
                # A last row of a rank or two that would all but fit on the
                # row before goes there: a row holding one ⊕ reads badly.
                (s0, _), (s1, t1) = rows[-2], rows[-1]
                tail = sum(unit[s1:t1])
                if tail < 0.2 * budget and sum(unit[s0:t1]) <= 1.1 * (budget - gaps[0]):
                    rows[-2:] = [(s0, t1)]
        row_of = [0] * R
        for k, (s, t) in enumerate(rows):
            for r in range(s, t):
                row_of[r] = k
        # The wires each row break cuts, top to bottom at the end of its row.
        cuts: dict[int, list[int]] = {s: [] for s, _ in rows[1:]}
        if cuts:
            for w, a, b in local:
                ra, rb = span[w.key]
                for g in range(ra + 1, min(rb, R - 1) + 1):
                    if g in cuts:
                        cuts[g].append(w.key)
            wire_order = {w.key: self._wire_order(w) for w, _, _ in local}
            for g, keys in cuts.items():
                ra_of = {key: span[key][0] for key in keys}
                keys.sort(key=lambda key: (crosses[key][g - 1 - ra_of[key]], crosses[key][g - ra_of[key]],
                                           wire_order[key]))
        returns = {g: max(len(keys) - 1, 0) * RETURN_GAP for g, keys in cuts.items()}

        starts = [0.0] * R
        row_end: list[float] = []
        extent_of: list[float] = []
        for k, (s, t) in enumerate(rows):
            f = gaps[0] if k == 0 else 2 * RETURN_PAD + returns[s] + lead_c[s]
            for r in range(s, t):
                starts[r] = f
                f += width[r]
                if r < t - 1:
                    f += gaps[r + 1]
            if k == len(rows) - 1:
                f += gaps[R]
                row_end.append(f)
                extent_of.append(f)
            else:
                f += lead_a[t]
                row_end.append(f)
                extent_of.append(f + RETURN_PAD + returns[t])
        F_inner = max(extent_of)

        # 6. across: each row's extent, then the rows one under the other
        last = len(rows) - 1
        lows = [math.inf] * len(rows)
        highs = [-math.inf] * len(rows)

        def grow(k: int, lo: float, hi: float) -> None:
            lows[k] = min(lows[k], lo)
            highs[k] = max(highs[k], hi)

        for e in elements:
            _, C, lane = extent(e)
            grow(row_of[rank[e]], center[e] - C / 2 - lane - rise.get(e, 0.0),
                 center[e] + C / 2 + label_room.get(e, 0.0) + rise.get(e, 0.0))
        for key, cs in routes_c.items():
            ra = span[key][0]
            for i, c in enumerate(cs):
                grow(row_of[ra + 1 + i], c, c)
        for c in in_c:
            grow(0, c, c)
        for c in out_c:
            grow(last, c, c)
        for w, g, arrival in labels:
            ra = span[w.key][0]
            c = crosses[w.key][g - ra if arrival else g - 1 - ra]
            k = (row_of[g] if g < R else last) if arrival else (row_of[g - 1] if g > 0 else 0)
            _, across = self.label_size(w)
            grow(k, c - across if self.lr else c, c if self.lr else c + across)
        lows = [lo if lo < math.inf else 0.0 for lo in lows]
        highs = [hi if hi > -math.inf else 0.0 for hi in highs]
        off = [-lows[0]]
        lanes: dict[int, list[float]] = {}
        for k in range(1, len(rows)):
            s = rows[k][0]
            top = off[k - 1] + highs[k - 1] + RETURN_PAD
            m = len(cuts[s])
            lanes[s] = [top + (m - 1 - j) * RETURN_GAP for j in range(m)]
            off.append(top + returns[s] + RETURN_PAD - lows[k])
        C_inner = off[last] + highs[last]

        blk = Block(rows=len(rows))
        if cid is None:
            pf, pc_lo, pc_hi, pf_hi = 0.0, 0.0, 0.0, 0.0
        else:
            cl = self.clusters[cid]
            title = cluster_title(cl)
            pf, pf_hi, pc_lo, pc_hi = PAD, PAD, PAD, PAD
            if self.lr:
                pc_lo += TITLE
            else:
                pf += TITLE
            # A trace's feedback loops run in a band of their own above its cell.
            pc_lo += LOOP * self.loops(cid)
            # the title must fit across the top
            need = text_width(title, SMALL_CHAR * 1.1) + 2 * PAD
            if cl.claim is not None:
                badge = text_width(claim_text(cl.claim), SMALL_CHAR) + BADGE_PAD
                if self.lr:
                    need += badge
                else:
                    # The badge goes to the top right corner, the title stays
                    # at the left, and the wires that enter at the top run
                    # between them.
                    need = 2 * max(need - 2 * PAD, badge) + 2 * PAD + WIRE_GAP
            if self.lr and F_inner + pf + pf_hi < need:
                pf_hi += need - (F_inner + pf + pf_hi)
            if not self.lr and C_inner + pc_lo + pc_hi < need:
                extra = need - (C_inner + pc_lo + pc_hi)
                pc_lo += extra / 2
                pc_hi += extra / 2
            if not self.lr and in_c:
                # Top to bottom, wires enter through the top: they enter to
                # the right of the title, never through it.
                clear = 0.2 + text_width(title, SMALL_CHAR * 1.1) - (pc_lo + off[0] + min(in_c))
                if clear > 0:
                    pc_lo += clear
        blk.inner = (pf, pc_lo)
        blk.F = F_inner + pf + pf_hi
        blk.C = C_inner + pc_lo + pc_hi
        oc = pc_lo

        def cross(r: int, c: float) -> float:
            """A cross position of rank ``r`` (-1: the inputs, R: the outputs) in the block."""
            return oc + off[row_of[r] if 0 <= r < R else (0 if r < 0 else last)] + c

        corner: dict[str, tuple[float, float]] = {}
        for e in elements:
            Fe, Ce, _ = extent(e)
            r = rank[e]
            fe = pf + starts[r] + (width[r] - Fe) / 2
            ce = cross(r, center[e] - Ce / 2)
            corner[e] = (fe, ce)
            if e in self.blocks:
                blk.blocks[e] = (fe, ce)
            else:
                blk.nodes[e] = (fe, ce, Fe, Ce)
                before = gaps[r] if r == rows[row_of[r]][0] and row_of[r] == 0 or r != rows[row_of[r]][0] else lead_c[r]
                blk.bands[e] = (pf + starts[r] - before, pf + starts[r])
        blk.inputs = [cross(-1, c) for c in in_c]
        blk.outputs = [cross(R, c) for c in out_c]
        # A wire's place among those a break cuts, break by break: a wire
        # from the first row to the third is cut twice.
        position = {(g, key): j for g, keys in cuts.items() for j, key in enumerate(keys)}

        for w, a, b in local:
            ra, rb = span[w.key]
            cs = crosses[w.key]
            # where it starts here
            if a is None:
                pts: list[tuple[float, float, str]] = [(0.0, blk.inputs[in_index[(w.src, w.sport)]], "")]
            elif a in self.blocks:
                fe, ce = corner[a]
                pts = [(fe + self.blocks[a].F, cross(ra, cs[0]), "")]
            else:
                pts = [(corner[a][0] + self.port_flow(a, True), cross(ra, cs[0]), "")]
            for i, g in enumerate(range(ra + 1, rb + 1)):
                cu, cv = cs[i], cs[i + 1]
                band_end = pf if g == 0 else pf + starts[g - 1] + width[g - 1]
                arrive = pf + (starts[g] if g < R else row_end[last])
                if g == rb:
                    if b is None:
                        fv = arrive
                    elif b in self.blocks:
                        fv = corner[b][0]
                    else:
                        fv = corner[b][0] + self.port_flow(b, False)
                else:
                    fv = arrive
                zone_a = band_end + lead_a[g]
                uc, vc = cross(g - 1, cu), cross(g, cv)
                if 0 < g < R and row_of[g - 1] != row_of[g]:
                    j, m = position[g, w.key], len(cuts[g])
                    turn = pf + row_end[row_of[g - 1]] + RETURN_PAD + (m - 1 - j) * RETURN_GAP
                    back = pf + RETURN_PAD + (m - 1 - j) * RETURN_GAP
                    lane = oc + lanes[g][j]
                    pts += [(zone_a, uc, "-"), (turn, uc, "-"), (turn, lane, "-"), (back, lane, "-"),
                            (back, vc, "-"), (fv, vc, "-")]
                else:
                    pts += [(zone_a, uc, "-"), (arrive - lead_c[g], vc, "~"), (fv, vc, "-")]
                if g < rb:
                    pts.append((fv + width[g], vc, "-"))
            if b is None:
                pts.append((blk.F, pts[-1][1], "-"))
            elif b not in self.blocks and w.style == G.PARAMETER:
                # into the box's lane, then across the flow into the box
                fe, ce = corner[b]
                mid = fe + extent(b)[0] / 2
                pts += [(mid, pts[-1][1], "-"), (mid, ce, "-")]
            route = [pts[0]]
            for p in pts[1:]:
                if abs(p[0] - route[-1][0]) > 1e-9 or abs(p[1] - route[-1][1]) > 1e-9:
                    route.append(p)
            blk.routes[w.key] = route
        for w, g, arrival in labels:
            ra = span[w.key][0]
            F_l, C_l = self.label_size(w)
            if arrival:
                end = pf + (starts[g] if g < R else row_end[last])
                mid = end - lead_c[g] / 2
                c = cross(g, crosses[w.key][g - ra])
            else:
                start = blk.routes[w.key][0][0]
                mid = (start + (pf if g == 0 else pf + starts[g - 1] + width[g - 1]) + lead_a[g]) / 2
                c = cross(g - 1, crosses[w.key][g - 1 - ra])
            blk.labels[w.key] = (mid - F_l / 2, c - C_l, F_l, C_l) if self.lr else (mid - F_l / 2, c, F_l, C_l)
        return blk

    def _goes_first(self, item: tuple) -> bool:
        """Whether a rank's element that nothing feeds goes first: a loop's start or a parameter source."""
        return item[2] == 0 and item[3] in self.index and self.g.nodes[item[3]]["kind"] in (G.TRACE_IN, G.PARAM)

    def _block_in(self, e: str, w: Wire) -> int:
        """Which input port of child block ``e`` wire ``w`` enters by."""
        return self.port_of(e, (w.src, w.sport), False)

    def _block_out(self, e: str, w: Wire) -> int:
        return self.port_of(e, (w.src, w.sport), True)

    def _wire_order(self, w: Wire) -> float:
        return self.index[w.src] + w.sport / 16

    # -- absolute positions -----------------------------------------------------

    def budgets(self, room: float) -> None:
        """The room for each nested box's ranks along the flow, from ``room`` for the whole figure.

        A nested box has its parent's room less its padding and a gap on
        either side; the entry's room also leaves the diagram's own input
        labels beside it.
        """
        side = GAP_FLOW + max((self.label_size(w)[0] + LEAD + CURVE for w in self.wires
                               if w.labelled and self.g.nodes[w.src]["kind"] == G.INPUT), default=GAP_FLOW)
        self.budget = {None: room}
        for cid in reversed(self.postorder):  # parents first
            parent = self.clusters[cid].parent
            less = side + 2 * PAD if parent is None else 2 * (PAD + GAP_FLOW)
            self.budget[cid] = self.budget[parent] - less

    def place(self, width: float = math.inf, max_aspect: float = math.inf) -> Layout:
        """Lay everything out, wrapping rows until the figure is at most ``width`` wide and ``max_aspect``."""
        room = width
        seen: tuple | None = None
        for _ in range(8):
            self.budgets(room)
            self.blocks = {}
            for cid in self.postorder:
                self.blocks[cid] = self.layout(cid)
            root = self.layout(None)
            if not self.lr or room == math.inf:
                break
            if root.F <= width + 1e-6 and root.F <= max_aspect * root.C + 1e-6:
                break
            rows = (root.rows, *(blk.rows for blk in self.blocks.values()))
            if rows == seen:
                break  # a narrower room wrapped nothing further: nothing will
            seen = rows
            shrink = min(0.9, width / root.F) if root.F > width else 0.8
            room = min(room, root.F) * shrink
            if room < 1.0:
                break
        return self.absolute(root)

    def absolute(self, root: Block) -> Layout:
        nodes: dict[str, Rect] = {}
        clusters: dict[str, Rect] = {}
        bands: dict[str, tuple[float, float]] = {}
        routes: dict[tuple[str | None, int], list[tuple[float, float, str]]] = {}
        labels: dict[int, Rect] = {}
        rows: dict[str | None, int] = {None: root.rows}

        def visit(cid: str | None, blk: Block, f0: float, c0: float) -> None:
            """Place one block's own nodes, routes and labels at its corner ``(f0, c0)``."""
            for n, (f, c, F, C) in blk.nodes.items():
                nodes[n] = (f0 + f, c0 + c, F, C)
                bands[n] = (f0 + blk.bands[n][0], f0 + blk.bands[n][1])
            for key, pts in blk.routes.items():
                routes[(cid, key)] = [(f0 + f, c0 + c, k) for f, c, k in pts]
            for key, (f, c, F, C) in blk.labels.items():
                labels[key] = (f0 + f, c0 + c, F, C)

        # Outermost first, each block's children in order: a pre-order walk
        # with an explicit stack, so deep nesting needs no deep recursion.
        visit(None, root, 0.0, 0.0)
        stack = [iter(root.blocks.items())]
        offsets = [(0.0, 0.0)]
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                stack.pop()
                offsets.pop()
                continue
            child, (f, c) = nxt
            f0, c0 = offsets[-1]
            sub = self.blocks[child]
            clusters[child] = (f0 + f, c0 + c, sub.F, sub.C)
            rows[child] = sub.rows
            visit(child, sub, f0 + f, c0 + c)
            stack.append(iter(sub.blocks.items()))
            offsets.append((f0 + f, c0 + c))
        paths: dict[int, list[Point]] = {}
        kinds: dict[int, str] = {}
        for w in self.wires:
            paths[w.key], kinds[w.key] = self.path(w, routes)
        L = Layout(self.lr, nodes, clusters, paths, self.wires, bands, (root.F, root.C), kinds, labels,
                   rows=rows)
        for cl in self.g.graph["clusters"]:
            f, c, _, _ = clusters[cl.id]
            tw = text_width(cluster_title(cl), SMALL_CHAR * 1.1)
            if cl.claim is not None and self.lr:
                tw += text_width(claim_text(cl.claim), SMALL_CHAR) + BADGE_PAD
            L.titles[cl.id] = (f + 0.1, c + 0.05, tw, LINE) if self.lr else (f + 0.05, c + 0.1, LINE, tw)
        for n, d in self.g.nodes(data=True):
            if d["kind"] != G.PARAM:
                continue
            tw = text_width(d["label"], SMALL_CHAR)
            if n in self.sources:
                f, c, F, C = nodes[n]
                L.counts[n] = (f, c, tw, C) if self.lr else (f, c, LINE, C)
                continue
            f, c, F, C = nodes[d["target"]]
            mid = f + F / 2
            L.stubs[n] = ((mid, c - STUB), (mid, c))
            L.counts[n] = ((mid - tw / 2, c - STUB - LINE, tw, LINE) if self.lr
                           else (mid - LINE / 2, c - STUB - tw - 0.1, LINE, tw + 0.1))
        self.feedback(L)
        return L

    def feedback(self, L: Layout) -> None:
        """The feedback loops of traces: from each state output, over the cell, back to its input.

        Loop ``k`` runs in the ``k``-th band from the contents (the first
        state wire innermost) and turns ``LOOP_STEP`` further out than the
        loop inside it, so the loops of one trace never cross.
        """
        for n, d in self.g.nodes(data=True):
            if d["kind"] != G.TRACE_OUT:
                continue
            k = d["loop"]
            f1, c1, _, _ = L.nodes[n]
            f0, c0, _, _ = L.nodes[d["partner"]]
            _, cc, _, _ = L.clusters[d["cluster"]]
            top = cc + PAD + (TITLE if self.lr else 0.0)
            line = top + (self.loops(d["cluster"]) - 1 - k + 0.5) * LOOP
            out, back = f1 + (k + 1) * LOOP_STEP, f0 - (k + 1) * LOOP_STEP
            pts = [(f1, c1), (out, c1), (out, line), (back, line), (back, c0), (f0, c0)]
            L.loops[n] = (pts, ((out + back) / 2, line))

    def path(self, w: Wire, routes: dict) -> tuple[list[Point], str]:
        """A wire's points and segment kinds: its runs through each block on its way, joined."""
        up, lca, down = self.split(self.outer(w.src), self.outer(w.dst))
        runs = [routes.get((c, w.key), []) for c in reversed(up)]
        runs.append(routes.get((lca, w.key), []))
        runs += [routes.get((c, w.key), []) for c in down]
        pts: list[Point] = []
        kinds: list[str] = []
        for run in runs:
            for f, c, k in run:
                if pts and abs(f - pts[-1][0]) < 1e-9 and abs(c - pts[-1][1]) < 1e-9:
                    continue  # where one block's run hands over to the next
                if pts:
                    kinds.append(k or "-")
                pts.append((f, c))
        return pts, "".join(kinds)


def _longest_path_ranks(elements: list[str], preds: dict[str, list[str]]) -> dict[str, int]:
    """Each element's rank: one more than its highest predecessor's (0 without any).

    An explicit stack rather than recursion, so a long chain of boxes in
    one nested box cannot exhaust Python's recursion limit.
    """
    rank: dict[str, int] = {}
    for root in elements:
        if root in rank:
            continue
        stack = [root]
        while stack:
            e = stack[-1]
            todo = [p for p in preds[e] if p not in rank]
            if todo:
                stack.extend(todo)
                continue
            stack.pop()
            rank[e] = 1 + max((rank[p] for p in preds[e]), default=-1)
    return rank


def _spread(cs: list[float], room: list[float] | None = None) -> list[float]:
    """Boundary ports in order and at least a wire gap apart (or ``room[k]`` after port ``k``)."""
    out: list[float] = []
    for k, c in enumerate(cs):
        out.append(c if not out else max(c, out[-1] + (WIRE_GAP if room is None else room[k - 1])))
    return out


def layout(g: nx.MultiDiGraph, lr: bool = True, shapes: bool = False, width: float = math.inf,
           max_aspect: float = math.inf) -> Layout:
    """Lay out ``g``: flow runs left to right when ``lr``, else top to bottom.

    ``width`` (centimetres) and ``max_aspect`` (width over height) bound the
    figure, left to right: its rows wrap until it fits both, or cannot wrap
    any further.  Without them, nothing wraps.
    """
    return _Engine(g, lr, shapes).place(width, max_aspect)


def page_width(points: float) -> float:
    """A page width in PostScript points, in the layout's centimetres."""
    return points * CM_PER_PT
