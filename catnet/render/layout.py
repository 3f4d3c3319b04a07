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
   loops run over the top of it), nor does anything top to bottom;
6. each row reaches across the flow as far as its elements, pass points
   and labels do, and the rows go one under the other with the return
   lanes between them;
7. last, the box gets its padding (a band for its title, and one for each
   feedback loop of a trace), every element its corner, every wire its
   route through the block and every label its rectangle.

Each step is a method of ``_BlockLayout``, which holds one box's layout
while it is made, and runs them in this order.

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
from collections.abc import Iterator
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

    def placed(self, g: nx.MultiDiGraph) -> Iterator[tuple[str, dict, Rect]]:
        """The nodes of ``g`` that have a place, with their data and rectangle (what a back end draws)."""
        for n, d in g.nodes(data=True):
            if n in self.nodes:
                yield n, d, self.nodes[n]


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
        """Lay out nested box ``cid`` (``None``: the whole diagram), step by step: see :class:`_BlockLayout`.

        The blocks of the boxes inside it must be in ``self.blocks`` already.
        """
        return _BlockLayout(self, cid).block()

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


class _BlockLayout:
    """One nested box while it is laid out: the state its steps share, one method per step.

    Built from the engine and the box's id (``None``: the whole diagram),
    once the boxes inside it have their blocks in ``eng.blocks``.
    :meth:`block` runs the steps in order; each decides one thing from what
    the steps before it decided, and keeps it here:

    1. :meth:`rank_elements`: each element's rank, and what each rank holds;
    2.+3. :meth:`place`: each element's and each pass point's cross position,
       rank by rank; :meth:`boundary_ports`: the boundary ports';
       :meth:`wire_crosses`: every wire's cross at each rank it meets;
    4. :meth:`zones`: each rank's width and the three zones of each gap;
    5. :meth:`wrap`: the rows; :meth:`cut`: the wires each row break cuts;
       :meth:`place_along`: where each rank starts along the flow;
    6. :meth:`row_extents` and :meth:`stack_rows`: the rows across the flow;
    7. :meth:`frame`: the box's padding and size; :meth:`corners`,
       :meth:`route` and :meth:`label_rects`: the :class:`Block` itself.

    Steps 2 to 6 keep cross positions as the ranks were placed, before
    they wrapped; :meth:`cross` moves one to its row's place in the block.
    """

    def __init__(self, eng: _Engine, cid: str | None) -> None:
        self.eng = eng
        self.cid = cid
        self.lr = eng.lr
        elements = list(eng.members.get(cid, [])) + list(eng.children.get(cid, []))
        #: Each element's IR order: a node's own, a child block's first node's.
        self.order = {e: (eng.index[e] if e in eng.index else eng.first[e]) for e in elements}
        elements.sort(key=lambda e: self.order[e])
        self.elements = elements
        self.ins, self.outs = eng.boundary(cid)
        self.in_index = {e: i for i, e in enumerate(self.ins)}
        self.out_index = {e: j for j, e in enumerate(self.outs)}
        #: How many input ports carry data; the parameter ports come after them.
        self.n_data = len(self.ins) - (len(eng.param_ins.get(cid, [])) if cid is not None else 0)
        self.local = self.local_wires()

    def block(self) -> Block:
        """The laid-out block: every step, in order."""
        self.rank_elements()
        self.place()
        self.boundary_ports()
        self.wire_crosses()
        self.zones()
        self.wrap()
        self.cut()
        self.place_along()
        self.row_extents()
        self.stack_rows()
        blk = self.frame()
        self.corners()
        for w, a, b in self.local:
            blk.routes[w.key] = self.route(w, a, b)
        self.label_rects()
        return blk

    def local_wires(self) -> list[tuple[Wire, str | None, str | None]]:
        """The wires seen from this block: (wire, source element or None, target element or None).

        ``None`` is outside the block: the wire enters or leaves by a
        boundary port.  A wire that runs inside one child block is that
        block's alone.
        """
        eng, cid = self.eng, self.cid
        local: list[tuple[Wire, str | None, str | None]] = []
        for w in eng.local_wires.get(cid, []):
            a, b = eng.lift(cid, w.src), eng.lift(cid, w.dst)
            if a is None and b is None:
                continue
            if a is not None and a == b:
                continue  # inside one child block
            if a is None:
                assert (w.src, w.sport) in self.in_index
            if b is None:
                assert (w.src, w.sport) in self.out_index
            local.append((w, a, b))
        return local

    # -- an element's geometry: a node, or a child block ----------------------

    def extent(self, e: str) -> tuple[float, float, float]:
        """(flow, cross, lane) of an element."""
        blocks = self.eng.blocks
        if e in blocks:
            blk = blocks[e]
            return (blk.F, blk.C, 0.0)
        F, C = self.eng.node_size(e)
        return (F, C, self.eng.lane(e))

    def reach(self, e: str) -> float:
        """The room an element takes along the flow (see :meth:`_Engine.reach`)."""
        blocks = self.eng.blocks
        return blocks[e].F if e in blocks else self.eng.reach(e)

    def port_offset(self, e: str, index: int, out: bool) -> float:
        """Cross offset of a port from the element's centre (without lane)."""
        eng = self.eng
        if e in eng.blocks:
            blk = eng.blocks[e]
            return (blk.outputs if out else blk.inputs)[index] - blk.C / 2
        return eng.port_cross(e, index, out) - eng.node_size(e)[1] / 2

    def in_port(self, e: str, w: Wire) -> int:
        """Which input port of element ``e`` wire ``w`` enters by."""
        return w.dport if e == w.dst else self.eng._block_in(e, w)

    def out_port(self, e: str, w: Wire) -> int:
        """Which output port of element ``e`` wire ``w`` leaves by."""
        return w.sport if e == w.src else self.eng._block_out(e, w)

    # -- the steps -------------------------------------------------------------

    def rank_elements(self) -> None:
        """1. Rank the elements by the longest path from the inputs, so every wire runs forward.

        Also files each rank's elements (in IR order), the wires that start
        in it and the wires that pass through it (in wire order), each
        element's input wires, and each wire's ``span``: the ranks of its
        ends (-1: the inputs, ``R``: the outputs).  The placement visits
        each once, so its cost is linear in the drawing.
        """
        elements, local = self.elements, self.local
        preds: dict[str, list[str]] = {e: [] for e in elements}
        for w, a, b in local:
            if a is not None and b is not None:
                preds[b].append(a)
        rank = _longest_path_ranks(elements, preds)
        R = 1 + max(rank.values(), default=-1)
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
        self.rank, self.R, self.at_rank = rank, R, at_rank
        self.starting, self.passing, self.feeds_of, self.span = starting, passing, feeds_of, span

    def place(self) -> None:
        """2.+3. Across the flow, rank by rank: where each element and each pass point goes.

        ``src_pos`` keeps, by wire key, the cross at which each wire is known
        to run so far: a boundary port's, then an output port's, then a
        pass point's.  Each rank reads it for its wires and writes it for
        the wires that leave or pass it (:meth:`place_rank`).  Decides
        ``center`` (each element's centre) and ``routes_c`` (each wire's
        pass points, one a rank it skips, so it runs between boxes).
        """
        in_index, n_ins, n_data = self.in_index, len(self.ins), self.n_data
        # Parameter ports start above the data, where their wires go.
        src_pos: dict[int, float] = {}
        for w, a, b in self.local:
            if a is None:
                i = in_index[(w.src, w.sport)]
                src_pos[w.key] = i * WIRE_GAP if i < n_data else -(n_ins - i) * WIRE_GAP
        self.src_pos = src_pos
        self.center: dict[str, float] = {}
        self.routes_c: dict[int, list[float]] = {}
        self.text_room()
        for r in range(self.R):
            self.place_rank(r)

    def text_room(self) -> None:
        """The room an element keeps beside it, across the flow, for the labels of the wires it makes.

        Top to bottom, a wire's label is beside it: the element keeps its
        width after it (``label_room``).  A G-space wire's label has a
        second line (its action): when data flows left to right, it rises a
        line higher above the wire, and the element keeps that line
        (``rise``).
        """
        eng, cid, lr = self.eng, self.cid, self.lr
        label_room: dict[str, float] = {}
        rise: dict[str, float] = {}
        for w, a, b in self.local:
            if not lr and eng.labelled_here(w, a, cid) and a is not None:
                room = eng.label_width(w) + 0.15
                label_room[a] = max(label_room.get(a, 0.0), room)
            if lr and eng.labelled_here(w, a, cid) and w.action is not None and a is not None:
                rise[a] = LINE
        self.label_room, self.rise = label_room, rise

    def place_rank(self, r: int) -> None:
        """Place rank ``r``: its items in order, pushed apart; its output ports and pass points feed the next rank."""
        items = self.rank_items(r)
        placed = self.push_apart(items)
        center, routes_c, src_pos = self.center, self.routes_c, self.src_pos
        for (desired, _, kind, ident), p in zip(items, placed):
            if kind == 0:
                center[ident] = p  # type: ignore[index]
            else:
                routes_c.setdefault(ident, []).append(p)  # type: ignore[arg-type]
        for w, a in self.starting[r]:
            src_pos[w.key] = center[a] + self.port_offset(a, self.out_port(a, w), True)
        for w in self.passing[r]:
            src_pos[w.key] = routes_c[w.key][-1]

    def rank_items(self, r: int) -> list[tuple[float, float, int, str | int]]:
        """Rank ``r``'s elements and pass points in their order across the flow, each with where it would go.

        Items are ``(desired, tiebreak, kind, id)``: kind 0 an element, 1 a
        wire's pass point.  An element goes where its input wires point on
        average: its data wires, or its parameter wires if it has no other.
        """
        eng, src_pos = self.eng, self.src_pos
        items: list[tuple[float, float, int, str | int]] = []
        for e in self.at_rank[r]:
            feeds = [w for w in self.feeds_of[e] if w.key in src_pos]
            # An element goes where its data comes from; parameters follow.
            data = [w for w in feeds if w.style != G.PARAMETER] or feeds
            wanted = [src_pos[w.key] - self.port_offset(e, self.in_port(e, w), False) for w in data]
            desired = sum(wanted) / len(wanted) if wanted else float("nan")
            tie = min((eng._wire_order(w) for w in data), default=float(self.order[e]))
            items.append((desired, tie, 0, e))
        for w in self.passing[r]:
            items.append((src_pos[w.key], eng._wire_order(w), 1, w.key))
        # Elements that nothing feeds go after their neighbours in IR
        # order, but the starts of feedback loops and parameter sources
        # go first: their wires run over the top.
        known = [it[0] for it in items if it[0] == it[0]]
        fallback = (max(known) + 1.0) if known else 0.0
        first = (min(known) - 1.0) if known else 0.0
        items = [(it[0] if it[0] == it[0] else first if eng._goes_first(it) else fallback, it[1], it[2], it[3])
                 for it in items]
        items.sort(key=lambda it: (round(it[0], 6), it[1], it[2]))
        return items

    def push_apart(self, items: list[tuple[float, float, int, str | int]]) -> list[float]:
        """Each item's cross: where it would go, pushed on just enough not to touch the one before.

        Elements keep a gap from their neighbours, and room for their lane
        and labels; pass points keep a wire gap from one another.  The rank
        is then shifted back as a whole, by how far it was pushed on average.
        """
        label_room, rise = self.label_room, self.rise
        placed: list[float] = []
        sizes: list[tuple[float, float]] = []  # (before centre, after centre)
        for desired, _, kind, ident in items:
            if kind == 0:
                _, C, lane = self.extent(ident)  # type: ignore[arg-type]
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
        return placed

    def boundary_ports(self) -> None:
        """The cross positions of the boundary ports (``in_c``, ``out_c``).

        They follow the wires they carry: the domain in order, the
        parameter ports among them where their wires run; the outputs where
        their wires arrive.  Each is a wire gap (or a label's room) past
        the one before it.
        """
        eng, lr, in_index, n_data = self.eng, self.lr, self.in_index, self.n_data
        n_ins = len(self.ins)
        in_c = [j * WIRE_GAP for j in range(n_ins)]
        # Top to bottom, a wire's label is beside it: the next wire keeps clear of it.
        room = [WIRE_GAP] * n_ins
        for w, a, b in self.local:
            if a is None:
                i = in_index[(w.src, w.sport)]
                if not lr and w.labelled:
                    room[i] = max(room[i], eng.label_width(w) + 0.2)
                if w.key in self.routes_c:
                    in_c[i] = self.routes_c[w.key][0]
                elif b is not None:
                    in_c[i] = self.center[b] + self.port_offset(b, self.in_port(b, w), False)
        for i in range(1, n_data):
            in_c[i] = max(in_c[i], in_c[i - 1])
        by_cross = sorted(range(n_ins), key=lambda i: (round(in_c[i], 6), i >= n_data, i))
        spread = _spread([in_c[i] for i in by_cross], [room[i] for i in by_cross])
        for i, c in zip(by_cross, spread):
            in_c[i] = c
        out_c = [j * WIRE_GAP for j in range(len(self.outs))]
        for w, a, b in self.local:
            if b is None:
                out_c[self.out_index[(w.src, w.sport)]] = self.src_pos[w.key]
        self.in_c, self.out_c = in_c, _spread(out_c)

    def wire_crosses(self) -> None:
        """Each wire's crosses (``crosses``): where it leaves its start, passes each rank and arrives."""
        center, routes_c = self.center, self.routes_c
        crosses: dict[int, list[float]] = {}
        for w, a, b in self.local:
            if a is None:
                cs = [self.in_c[self.in_index[(w.src, w.sport)]]]
            else:
                cs = [center[a] + self.port_offset(a, self.out_port(a, w), True)]
            cs += routes_c.get(w.key, [])
            if b is None:
                cs.append(self.out_c[self.out_index[(w.src, w.sport)]])
            else:
                cs.append(center[b] + self.port_offset(b, self.in_port(b, w), False))
            crosses[w.key] = cs
        self.crosses = crosses

    def zones(self) -> None:
        """4. Along the flow: each rank's ``width``, and the three zones of the gap before it.

        Gap ``g`` precedes rank ``g`` (gap ``R`` follows the last).  Wires
        leave their ports straight (zone A, ``lead_a``), bend (zone B,
        ``bend``) and arrive straight (zone C, ``lead_c``); a wire's label
        goes in zone A, or in zone C when it leaves a copy dot, and the
        zone is as long as its longest label.  A gap where every wire runs
        straight on needs no room to bend.  Decides ``gaps`` (each gap's
        length) and ``labels``: (wire, gap, at arrival) for each wire
        labelled in this block.
        """
        eng, cid, R, rank, span, crosses = self.eng, self.cid, self.R, self.rank, self.span, self.crosses
        width = [0.0] * R
        for e in self.elements:
            width[rank[e]] = max(width[rank[e]], self.reach(e))
        lead_a = [0.0] * (R + 1)
        lead_c = [0.0] * (R + 1)
        bend = [0.0] * (R + 1)
        labels: list[tuple[Wire, int, bool]] = []
        for w, a, b in self.local:
            ra, rb = span[w.key]
            cs = crosses[w.key]
            for k in range(rb - ra):
                if abs(cs[k + 1] - cs[k]) > 1e-6:
                    bend[ra + 1 + k] = max(bend[ra + 1 + k], min(1.0, CURVE + 0.2 * abs(cs[k + 1] - cs[k])))
            if eng.labelled_here(w, a, cid):
                arrival = eng.at_arrival(w)
                along = eng.label_size(w)[0] + LEAD
                lead = lead_c if arrival else lead_a
                lead[ra + 1] = max(lead[ra + 1], along)
                labels.append((w, ra + 1, arrival))
        self.width, self.lead_a, self.lead_c, self.labels = width, lead_a, lead_c, labels
        self.gaps = [max(GAP_FLOW, lead_a[g] + bend[g] + lead_c[g]) for g in range(R + 1)]

    def wrap(self) -> None:
        """5. Which ranks go in which row (``rows``, ``row_of``), where they are wider than the box's room.

        A row break costs the wires it cuts (:func:`catnet.render.wrap.split`
        weighs them).  Only a box that :meth:`_Engine.wraps` wraps, and only
        when :meth:`_Engine.place` gave it a room.
        """
        R, gaps = self.R, self.gaps
        rows = [(0, R)]
        budget = self.eng.budget.get(self.cid, math.inf)
        if self.eng.wraps(self.cid) and R > 1 and budget < math.inf:
            unit = [self.width[r] + gaps[r + 1] for r in range(R)]
            # How many wires run past the end of each rank: a running sum of
            # +1 where a wire starts and -1 where it ends.
            diff = [0] * (R + 1)
            for ra, rb in self.span.values():
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
        self.rows, self.row_of, self.last = rows, row_of, len(rows) - 1

    def cut(self) -> None:
        """The wires each row break cuts (``cuts``, by the gap it falls in), and the room their returns take.

        They are ordered top to bottom as they leave the end of their row,
        so that their return wires do not cross; ``returns`` is the width
        of the band their return lanes take between the two rows.
        """
        R, span, crosses = self.R, self.span, self.crosses
        cuts: dict[int, list[int]] = {s: [] for s, _ in self.rows[1:]}
        if cuts:
            for w, a, b in self.local:
                ra, rb = span[w.key]
                for g in range(ra + 1, min(rb, R - 1) + 1):
                    if g in cuts:
                        cuts[g].append(w.key)
            wire_order = {w.key: self.eng._wire_order(w) for w, _, _ in self.local}
            for g, keys in cuts.items():
                ra_of = {key: span[key][0] for key in keys}
                keys.sort(key=lambda key: (crosses[key][g - 1 - ra_of[key]], crosses[key][g - ra_of[key]],
                                           wire_order[key]))
        self.cuts = cuts
        self.returns = {g: max(len(keys) - 1, 0) * RETURN_GAP for g, keys in cuts.items()}

    def place_along(self) -> None:
        """Along the flow: where each rank starts (``starts``), each row ends (``row_end``), all end (``F_inner``).

        Each row starts at the box's left, after the return wires that
        come back into it; each row but the last ends after its zone A
        (where its cut wires turn) and keeps room for those returns.
        """
        rows, gaps, width, returns = self.rows, self.gaps, self.width, self.returns
        starts = [0.0] * self.R
        row_end: list[float] = []
        extent_of: list[float] = []
        for k, (s, t) in enumerate(rows):
            f = gaps[0] if k == 0 else 2 * RETURN_PAD + returns[s] + self.lead_c[s]
            for r in range(s, t):
                starts[r] = f
                f += width[r]
                if r < t - 1:
                    f += gaps[r + 1]
            if k == len(rows) - 1:
                f += gaps[self.R]
                row_end.append(f)
                extent_of.append(f)
            else:
                f += self.lead_a[t]
                row_end.append(f)
                extent_of.append(f + RETURN_PAD + returns[t])
        self.starts, self.row_end, self.F_inner = starts, row_end, max(extent_of)

    def row_extents(self) -> None:
        """6. Each row's extent across the flow (``lows``, ``highs``), as its ranks were placed.

        A row holds its elements with their lanes and labels' room, its
        pass points, and the labels made in it; the first row also holds
        the input ports, the last the output ports.
        """
        R, rank, row_of, last, span, lr = self.R, self.rank, self.row_of, self.last, self.span, self.lr
        lows = [math.inf] * len(self.rows)
        highs = [-math.inf] * len(self.rows)

        def grow(k: int, lo: float, hi: float) -> None:
            lows[k] = min(lows[k], lo)
            highs[k] = max(highs[k], hi)

        center, label_room, rise = self.center, self.label_room, self.rise
        for e in self.elements:
            _, C, lane = self.extent(e)
            grow(row_of[rank[e]], center[e] - C / 2 - lane - rise.get(e, 0.0),
                 center[e] + C / 2 + label_room.get(e, 0.0) + rise.get(e, 0.0))
        for key, cs in self.routes_c.items():
            ra = span[key][0]
            for i, c in enumerate(cs):
                grow(row_of[ra + 1 + i], c, c)
        for c in self.in_c:
            grow(0, c, c)
        for c in self.out_c:
            grow(last, c, c)
        for w, g, arrival in self.labels:
            ra = span[w.key][0]
            c = self.crosses[w.key][g - ra if arrival else g - 1 - ra]
            k = (row_of[g] if g < R else last) if arrival else (row_of[g - 1] if g > 0 else 0)
            _, across = self.eng.label_size(w)
            grow(k, c - across if lr else c, c if lr else c + across)
        self.lows = [lo if lo < math.inf else 0.0 for lo in lows]
        self.highs = [hi if hi > -math.inf else 0.0 for hi in highs]

    def stack_rows(self) -> None:
        """The rows one under the other: each row's offset (``off``), the return lanes between them.

        Between two rows run the return wires of the break, each in a lane
        of its own (``lanes``, by the gap of the break, the first cut wire
        furthest from the row above), clear of both rows.  ``C_inner`` is
        how far across the contents reach.
        """
        rows, cuts, lows, highs = self.rows, self.cuts, self.lows, self.highs
        off = [-lows[0]]
        lanes: dict[int, list[float]] = {}
        for k in range(1, len(rows)):
            s = rows[k][0]
            top = off[k - 1] + highs[k - 1] + RETURN_PAD
            m = len(cuts[s])
            lanes[s] = [top + (m - 1 - j) * RETURN_GAP for j in range(m)]
            off.append(top + self.returns[s] + RETURN_PAD - lows[k])
        self.off, self.lanes = off, lanes
        self.C_inner = off[self.last] + highs[self.last]

    def frame(self) -> Block:
        """7. The box around the contents: its padding on each side, so the block's size.

        A nested box keeps a band for its title (above the contents left to
        right, before them top to bottom), one for each feedback loop of a
        trace, and room for its title and claim badge across its top; top
        to bottom, its input wires enter to the right of its title.  The
        whole diagram has no box around it.  Returns the block, its size
        set and its contents still to place.
        """
        lr, F_inner, C_inner = self.lr, self.F_inner, self.C_inner
        blk = Block(rows=len(self.rows))
        if self.cid is None:
            pf, pc_lo, pc_hi, pf_hi = 0.0, 0.0, 0.0, 0.0
        else:
            cl = self.eng.clusters[self.cid]
            title = cluster_title(cl)
            pf, pf_hi, pc_lo, pc_hi = PAD, PAD, PAD, PAD
            if lr:
                pc_lo += TITLE
            else:
                pf += TITLE
            # A trace's feedback loops run in a band of their own above its cell.
            pc_lo += LOOP * self.eng.loops(self.cid)
            # the title must fit across the top
            need = text_width(title, SMALL_CHAR * 1.1) + 2 * PAD
            if cl.claim is not None:
                badge = text_width(claim_text(cl.claim), SMALL_CHAR) + BADGE_PAD
                if lr:
                    need += badge
                else:
                    # The badge goes to the top right corner, the title stays
                    # at the left, and the wires that enter at the top run
                    # between them.
                    need = 2 * max(need - 2 * PAD, badge) + 2 * PAD + WIRE_GAP
            if lr and F_inner + pf + pf_hi < need:
                pf_hi += need - (F_inner + pf + pf_hi)
            if not lr and C_inner + pc_lo + pc_hi < need:
                extra = need - (C_inner + pc_lo + pc_hi)
                pc_lo += extra / 2
                pc_hi += extra / 2
            if not lr and self.in_c:
                # Top to bottom, wires enter through the top: they enter to
                # the right of the title, never through it.
                clear = 0.2 + text_width(title, SMALL_CHAR * 1.1) - (pc_lo + self.off[0] + min(self.in_c))
                if clear > 0:
                    pc_lo += clear
        blk.inner = (pf, pc_lo)
        blk.F = F_inner + pf + pf_hi
        blk.C = C_inner + pc_lo + pc_hi
        #: The contents' corner in the block: flow, and cross.
        self.pf, self.oc = pf, pc_lo
        # Where a cross of 0 in each rank's row lies in the block, the
        # inputs' first and the outputs' last: :meth:`cross` is asked often.
        off, row_of = self.off, self.row_of
        self.origin = [pc_lo + off[0], *(pc_lo + off[row_of[r]] for r in range(self.R)), pc_lo + off[self.last]]
        self.blk = blk
        return blk

    def cross(self, r: int, c: float) -> float:
        """A cross position ``c`` of rank ``r`` (-1: the inputs, R: the outputs), in its row, as one in the block."""
        return self.origin[r + 1] + c

    def corners(self) -> None:
        """Each element's corner in the block (``corner``), the band before each node's rank, and the boundary ports.

        An element is centred along the flow in its rank.  The band before
        a node's rank is the whole gap, but at the start of a row after
        the first, where only zone C (after the returns) is the rank's.
        """
        blk, pf, rank, starts, width = self.blk, self.pf, self.rank, self.starts, self.width
        rows, row_of, gaps, lead_c = self.rows, self.row_of, self.gaps, self.lead_c
        corner: dict[str, tuple[float, float]] = {}
        for e in self.elements:
            Fe, Ce, _ = self.extent(e)
            r = rank[e]
            fe = pf + starts[r] + (width[r] - Fe) / 2
            ce = self.cross(r, self.center[e] - Ce / 2)
            corner[e] = (fe, ce)
            if e in self.eng.blocks:
                blk.blocks[e] = (fe, ce)
            else:
                blk.nodes[e] = (fe, ce, Fe, Ce)
                before = gaps[r] if r == rows[row_of[r]][0] and row_of[r] == 0 or r != rows[row_of[r]][0] else lead_c[r]
                blk.bands[e] = (pf + starts[r] - before, pf + starts[r])
        blk.inputs = [self.cross(-1, c) for c in self.in_c]
        blk.outputs = [self.cross(self.R, c) for c in self.out_c]
        self.corner = corner
        # A wire's place among those a break cuts, break by break: a wire
        # from the first row to the third is cut twice.
        self.position = {(g, key): j for g, keys in self.cuts.items() for j, key in enumerate(keys)}

    def route(self, w: Wire, a: str | None, b: str | None) -> list[tuple[float, float, str]]:
        """Wire ``w``'s run in the block (made at element ``a``, ending at ``b``), as :attr:`Block.routes` keeps it.

        From where it starts here (a boundary port, or an element's output
        port) it crosses each gap up to its end (:meth:`through_gap`),
        straight through each rank it skips; then it runs on to the block's
        edge (an output port), or, a parameter wire, into its box's lane
        and across the flow into the box.  A point that repeats the one
        before it is dropped.
        """
        eng, corner, pf, starts, width, R = self.eng, self.corner, self.pf, self.starts, self.width, self.R
        ra, rb = self.span[w.key]
        cs = self.crosses[w.key]
        # where it starts here
        if a is None:
            pts: list[tuple[float, float, str]] = [(0.0, self.blk.inputs[self.in_index[(w.src, w.sport)]], "")]
        elif a in eng.blocks:
            fe, ce = corner[a]
            pts = [(fe + eng.blocks[a].F, self.cross(ra, cs[0]), "")]
        else:
            pts = [(corner[a][0] + eng.port_flow(a, True), self.cross(ra, cs[0]), "")]
        for i, g in enumerate(range(ra + 1, rb + 1)):
            arrive = pf + (starts[g] if g < R else self.row_end[self.last])
            if g == rb:
                if b is None:
                    fv = arrive
                elif b in eng.blocks:
                    fv = corner[b][0]
                else:
                    fv = corner[b][0] + eng.port_flow(b, False)
            else:
                fv = arrive
            uc, vc = self.cross(g - 1, cs[i]), self.cross(g, cs[i + 1])
            pts += self.through_gap(w, g, uc, vc, arrive, fv)
            if g < rb:
                pts.append((fv + width[g], vc, "-"))
        if b is None:
            pts.append((self.blk.F, pts[-1][1], "-"))
        elif b not in eng.blocks and w.style == G.PARAMETER:
            # into the box's lane, then across the flow into the box
            fe, ce = corner[b]
            mid = fe + self.extent(b)[0] / 2
            pts += [(mid, pts[-1][1], "-"), (mid, ce, "-")]
        route = [pts[0]]
        for p in pts[1:]:
            if abs(p[0] - route[-1][0]) > 1e-9 or abs(p[1] - route[-1][1]) > 1e-9:
                route.append(p)
        return route

    def through_gap(self, w: Wire, g: int, uc: float, vc: float, arrive: float,
                    fv: float) -> list[tuple[float, float, str]]:
        """Wire ``w``'s points across gap ``g``: from rank ``g - 1`` at cross ``uc`` to ``fv`` at cross ``vc``.

        ``arrive`` is where zone C ends.  Within a row the wire runs
        straight through zone A, bends through zone B and runs straight
        through zone C.  Across a row break it runs on from the end of its
        row, across to its lane between the rows, back to the start of the
        next row and on into it; the wires a break cuts turn one return gap
        apart, the first cut furthest out, so their returns nest and never
        cross.
        """
        pf, row_of = self.pf, self.row_of
        band_end = pf if g == 0 else pf + self.starts[g - 1] + self.width[g - 1]
        zone_a = band_end + self.lead_a[g]
        if 0 < g < self.R and row_of[g - 1] != row_of[g]:
            j, m = self.position[g, w.key], len(self.cuts[g])
            turn = pf + self.row_end[row_of[g - 1]] + RETURN_PAD + (m - 1 - j) * RETURN_GAP
            back = pf + RETURN_PAD + (m - 1 - j) * RETURN_GAP
            lane = self.oc + self.lanes[g][j]
            return [(zone_a, uc, "-"), (turn, uc, "-"), (turn, lane, "-"), (back, lane, "-"),
                    (back, vc, "-"), (fv, vc, "-")]
        return [(zone_a, uc, "-"), (arrive - self.lead_c[g], vc, "~"), (fv, vc, "-")]

    def label_rects(self) -> None:
        """Each label's rectangle in the block: above its wire left to right, beside it top to bottom.

        A label at its wire's arrival (a copy dot's wire) is centred in
        zone C, any other between the wire's start and the end of zone A.
        They read the wires' routes, so they come after :meth:`route`.
        """
        blk, pf, starts, width, R = self.blk, self.pf, self.starts, self.width, self.R
        lead_a, lead_c, span, crosses = self.lead_a, self.lead_c, self.span, self.crosses
        for w, g, arrival in self.labels:
            ra = span[w.key][0]
            F_l, C_l = self.eng.label_size(w)
            if arrival:
                end = pf + (starts[g] if g < R else self.row_end[self.last])
                mid = end - lead_c[g] / 2
                c = self.cross(g, crosses[w.key][g - ra])
            else:
                start = blk.routes[w.key][0][0]
                mid = (start + (pf if g == 0 else pf + starts[g - 1] + width[g - 1]) + lead_a[g]) / 2
                c = self.cross(g - 1, crosses[w.key][g - 1 - ra])
            blk.labels[w.key] = (mid - F_l / 2, c - C_l, F_l, C_l) if self.lr else (mid - F_l / 2, c, F_l, C_l)


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
