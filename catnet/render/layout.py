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
4. a gap after each rank leaves room for the labels of the wires made there.

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
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import networkx as nx

from . import graph as G
from .symmetry import WireAction, action_tex, claim_text

# Sizes in centimetres.
CHAR = 0.17  # an average character of a box label (\small)
SMALL_CHAR = 0.13  # of a wire label or a box's detail line (\scriptsize)
LINE = 0.32  # height of a line of \scriptsize text
BOX_PAD = 0.36  # text to box outline, both sides together
BOX_MIN = (0.8, 0.6)  # smallest box (along its text, across it)
BADGE_PAD = 0.3  # the frame of a badge and the space before it
PORT_GAP = 0.42  # between neighbouring ports of one box
DOT = 0.0  # dots take no room of their own beyond the wire gap
ADD = 0.3  # the ⊕ node's diameter
GAP_FLOW = 0.55  # between ranks
GAP_CROSS = 0.35  # between neighbours in one rank
WIRE_GAP = 0.4  # between wires running side by side
PAD = 0.25  # inside a nested box, around its contents
TITLE = 0.45  # the band for a nested box's title
LANE = 0.8  # room for a parameter wire and its count before a box
LOOP = 0.4  # the band for each feedback loop of a trace, and its label
LOOP_STEP = 0.14  # how far apart along the flow the loops of one trace turn
SLANT = 0.4  # the extra length of a trapezoid (``triv``, ``proj``) for its slanted sides


#: Nodes that are points: wires meet at their centre.
POINTS = (G.COPY, G.DISCARD, G.WAYPOINT, G.TRACE_IN, G.TRACE_OUT)


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


@dataclass
class Block:
    """A laid-out box: its size, and where everything in it goes.

    Positions are relative to the block's corner (flow 0, cross 0).
    ``nodes`` maps a node to its rectangle ``(f, c, F, C)`` (the box itself,
    without its parameter lane); ``blocks`` maps a child block's id to its
    corner; ``inputs``/``outputs`` are the cross positions of the boundary
    ports; ``routes`` maps a wire to its pass points inside this block;
    ``inner`` is the flow and cross offset of the contents (padding, title);
    ``bands`` maps each node to the flow interval of the gap before its rank.
    """

    F: float = 0.0
    C: float = 0.0
    nodes: dict[str, tuple[float, float, float, float]] = field(default_factory=dict)
    blocks: dict[str, tuple[float, float]] = field(default_factory=dict)
    inputs: list[float] = field(default_factory=list)
    outputs: list[float] = field(default_factory=list)
    routes: dict[int, list[tuple[float, float]]] = field(default_factory=dict)
    inner: tuple[float, float] = (0.0, 0.0)
    bands: dict[str, tuple[float, float]] = field(default_factory=dict)


@dataclass(frozen=True)
class Wire:
    """A data wire as drawn (after hidden swaps are taken out)."""

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
    """Absolute positions of everything, in (flow, cross) centimetres."""

    lr: bool
    nodes: dict[str, tuple[float, float, float, float]]
    clusters: dict[str, tuple[float, float, float, float]]
    paths: dict[int, list[tuple[float, float]]]
    wires: list[Wire]
    bands: dict[str, tuple[float, float]]
    size: tuple[float, float]


def drawn_wires(g: nx.MultiDiGraph) -> tuple[list[Wire], set[str]]:
    """The data wires to draw, and the swaps drawn as nothing.

    A hidden swap (:func:`graph.hidden_swaps`) is taken out: its output
    ``j`` becomes output ``j`` of the copy dot that feeds it.
    """
    hidden = G.hidden_swaps(g)
    wires = []
    for u, v, key, d in g.edges(keys=True, data=True):
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
        self.index = {n: i for i, n in enumerate(g.nodes)}
        self.clusters = {c.id: c for c in g.graph["clusters"]}
        self.children: dict[str | None, list[str]] = {}
        for c in g.graph["clusters"]:
            self.children.setdefault(c.parent, []).append(c.id)
        self.members: dict[str | None, list[str]] = {}
        for n, d in g.nodes(data=True):
            if n in self.hidden or d["kind"] in (G.INPUT, G.OUTPUT, G.PARAM) or d["style"] == "param_copy":
                continue
            self.members.setdefault(d["cluster"], []).append(n)
        self.lanes = {d["target"] for _, d in g.nodes(data=True) if d["kind"] == G.PARAM}
        self.lane_text: dict[str, str] = {}
        for _, d in g.nodes(data=True):
            if d["kind"] == G.PARAM:
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
        for w in self.wires:
            up, lca, down = self.split(self.outer(w.src), self.outer(w.dst))
            for c in (lca, *up, *down):
                self.local_wires.setdefault(c, []).append(w)
        self.sizes: dict[str, tuple[float, float]] = {}
        self.blocks: dict[str | None, Block] = {}
        self.first: dict[str, int] = {}
        self.postorder = self.clusters_inside_out()
        for cid in self.postorder:
            self.first[cid] = self.cluster_first(cid)

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
        """How long a wire's label is: its name, or the action under it if that is longer."""
        width = text_width(self.label(w), SMALL_CHAR)
        if w.action is not None:
            width = max(width, text_width(_printed(action_tex(w.action)), SMALL_CHAR))
        return width

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
        title = d["label"] + (f" {d['mark']}" if d["mark"] else "")
        if d.get("iso") and not d.get("inverted"):
            title += " ↔"
        along = max(text_width(title) + _badge_width(d), text_width(d["detail"], SMALL_CHAR)) + BOX_PAD
        if d.get("split"):
            along += SLANT
        across = LINE * (2 if d["detail"] else 1) + 0.3
        ports = max(d["n_in"], d["n_out"], 1) * PORT_GAP
        if self.lr:
            return (max(along, BOX_MIN[0]), max(across, BOX_MIN[1], ports))
        return (max(across, BOX_MIN[1]), max(along, BOX_MIN[0], ports))

    def lane(self, n: str) -> float:
        if n not in self.lanes:
            return 0.0
        if self.lr:
            return LANE
        return LANE + text_width(self.lane_text.get(n, ""), SMALL_CHAR)

    def ports(self, n: str, out: bool) -> list[float]:
        """Cross offsets of a node's input or output ports from its start."""
        d = self.g.nodes[n]
        F, C = self.node_size(n)
        count = d["n_out"] if out else d["n_in"]
        if d["kind"] in POINTS or d["kind"] == G.ADD:
            return [C / 2] * count
        return [C * (i + 1) / (count + 1) for i in range(count)]

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
        """The wire ends that enter and leave ``cid`` (``None``: the whole diagram), in port order."""
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
            self.bounds[cid] = ([self.canon(e) for e in c.inputs], [self.canon(e) for e in c.outputs])
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
        for w, a, b in local:
            ra = -1 if a is None else rank[a]
            rb = R if b is None else rank[b]
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

        def port_offset(e: str, index: int, out: bool) -> float:
            """Cross offset of a port from the element's centre (without lane)."""
            if e in self.blocks:
                blk = self.blocks[e]
                return (blk.outputs if out else blk.inputs)[index] - blk.C / 2
            F, C = self.node_size(e)
            return self.ports(e, out)[index] - C / 2

        # 2.+3. place rank by rank; port positions known so far, by wire key
        src_pos: dict[int, float] = {}
        for w, a, b in local:
            if a is None:
                src_pos[w.key] = in_index[(w.src, w.sport)] * WIRE_GAP
        center: dict[str, float] = {}
        routes_c: dict[int, list[float]] = {}
        label_room: dict[str, float] = {}
        # A G-space wire's label has a second line (its action): when data
        # flows left to right, it rises a line higher above the wire, or,
        # where the wire bends upwards at once, hangs below it (see tikz).
        rise: dict[str, float] = {}
        for w, a, b in local:
            if not self.lr and w.labelled and a is not None and a == w.src:
                room = self.label_width(w) + 0.15
                label_room[a] = max(label_room.get(a, 0.0), room)
            if self.lr and w.labelled and w.action is not None and a is not None and a == w.src:
                rise[a] = LINE

        for r in range(R):
            items: list[tuple[float, float, int, str | int]] = []  # (desired, tiebreak, kind order, id)
            for e in at_rank[r]:
                feeds = [w for w in feeds_of[e] if w.key in src_pos]
                wanted = [src_pos[w.key] - port_offset(e, w.dport if e == w.dst else self._block_in(e, w), False)
                          for w in feeds]
                desired = sum(wanted) / len(wanted) if wanted else float("nan")
                tie = min((self._wire_order(w) for w in feeds), default=float(order[e]))
                items.append((desired, tie, 0, e))
            for w in passing[r]:
                items.append((src_pos[w.key], self._wire_order(w), 1, w.key))
            # Elements that nothing feeds go after their neighbours in IR
            # order, but the starts of feedback loops go first: their loops
            # run over the top.
            known = [it[0] for it in items if it[0] == it[0]]
            fallback = (max(known) + 1.0) if known else 0.0
            first = (min(known) - 1.0) if known else 0.0
            items = [(it[0] if it[0] == it[0] else first if self._loop_start(it) else fallback, it[1], it[2], it[3])
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
                src_pos[w.key] = center[a] + port_offset(a, w.sport if a == w.src else self._block_out(a, w), True)
            for w in passing[r]:
                src_pos[w.key] = routes_c[w.key][-1]

        # boundary ports follow the wires they carry
        in_c = [j * WIRE_GAP for j in range(len(ins))]
        for w, a, b in local:
            if a is None:
                i = in_index[(w.src, w.sport)]
                if w.key in routes_c:
                    in_c[i] = routes_c[w.key][0]
                elif b is not None:
                    in_c[i] = center[b] + port_offset(b, w.dport if b == w.dst else self._block_in(b, w), False)
        out_c = [j * WIRE_GAP for j in range(len(outs))]
        for w, a, b in local:
            if b is None:
                out_c[out_index[(w.src, w.sport)]] = src_pos[w.key]
        in_c = _spread(in_c)
        out_c = _spread(out_c)

        # 4. flow: rank bands and the gaps between them
        width = [0.0] * R
        for e in elements:
            width[rank[e]] = max(width[rank[e]], extent(e)[0])
        gaps = [GAP_FLOW] * (R + 1)  # gaps[r + 1] follows rank r; gaps[0] follows the inputs
        for w, a, b in local:
            if w.labelled and (a is None and cid is None or a is not None and a == w.src):
                r = -1 if a is None else rank[a]
                if self.lr:
                    gaps[r + 1] = max(gaps[r + 1], self.label_width(w) + 0.3)
                elif w.action is not None:
                    # two lines beside the wire, between this rank and the next
                    gaps[r + 1] = max(gaps[r + 1], 2 * LINE + 0.2)
        starts = []
        f = gaps[0]
        for r in range(R):
            starts.append(f)
            f += width[r] + gaps[r + 1]
        F_inner = f

        # cross extent, then shift so that everything starts at 0
        lows, highs = [], []
        for e in elements:
            _, C, lane = extent(e)
            lows.append(center[e] - C / 2 - lane - rise.get(e, 0.0))
            highs.append(center[e] + C / 2 + label_room.get(e, 0.0) + rise.get(e, 0.0))
        for cs in routes_c.values():
            lows += cs
            highs += cs
        lows += in_c + out_c
        highs += in_c + out_c
        lo = min(lows, default=0.0)
        hi = max(highs, default=0.0)
        C_inner = hi - lo

        blk = Block()
        if cid is None:
            pf, pc_lo, pc_hi, pf_hi = 0.0, 0.0, 0.0, 0.0
        else:
            cl = self.clusters[cid]
            title = cl.label + " " + cl.mark
            pf, pf_hi, pc_lo, pc_hi = PAD, PAD, PAD, PAD
            if self.lr:
                pc_lo += TITLE
                if any(w.labelled and w.action is not None for w, _, _ in local):
                    # a wire label of two lines reaches higher, up to the title
                    pc_lo += LINE
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
                extra = need - (F_inner + pf + pf_hi)
                pf += extra / 2
                pf_hi += extra / 2
            if not self.lr and C_inner + pc_lo + pc_hi < need:
                extra = need - (C_inner + pc_lo + pc_hi)
                pc_lo += extra / 2
                pc_hi += extra / 2
        blk.inner = (pf, pc_lo - lo)
        blk.F = F_inner + pf + pf_hi
        blk.C = C_inner + pc_lo + pc_hi
        oc = pc_lo - lo
        for e in elements:
            Fe, Ce, _ = extent(e)
            fe = pf + starts[rank[e]] + (width[rank[e]] - Fe) / 2
            ce = oc + center[e] - Ce / 2
            if e in self.blocks:
                blk.blocks[e] = (fe, ce)
            else:
                blk.nodes[e] = (fe, ce, Fe, Ce)
                blk.bands[e] = (pf + starts[rank[e]] - gaps[rank[e]], pf + starts[rank[e]])
        blk.inputs = [oc + c for c in in_c]
        blk.outputs = [oc + c for c in out_c]
        for w, a, b in local:
            ra = -1 if a is None else rank[a]
            rb = R if b is None else rank[b]
            pts: list[tuple[float, float]] = []
            for k, r in enumerate(range(ra + 1, rb)):
                c = oc + routes_c[w.key][k]
                pts += [(pf + starts[r], c), (pf + starts[r] + width[r], c)]
            if a is None:
                pts.insert(0, (pf, blk.inputs[in_index[(w.src, w.sport)]]))
            if b is None:
                pts.append((pf + F_inner, blk.outputs[out_index[(w.src, w.sport)]]))
            blk.routes[w.key] = pts
        return blk

    def _loop_start(self, item: tuple) -> bool:
        return item[2] == 0 and item[3] in self.index and self.g.nodes[item[3]]["kind"] == G.TRACE_IN

    def _block_in(self, e: str, w: Wire) -> int:
        """Which input port of child block ``e`` wire ``w`` enters by."""
        return self.port_of(e, (w.src, w.sport), False)

    def _block_out(self, e: str, w: Wire) -> int:
        return self.port_of(e, (w.src, w.sport), True)

    def _wire_order(self, w: Wire) -> float:
        return self.index[w.src] + w.sport / 16

    # -- absolute positions -----------------------------------------------------

    def place(self) -> Layout:
        for cid in self.postorder:
            self.blocks[cid] = self.layout(cid)
        root = self.layout(None)
        nodes: dict[str, tuple[float, float, float, float]] = {}
        clusters: dict[str, tuple[float, float, float, float]] = {}
        bands: dict[str, tuple[float, float]] = {}
        routes: dict[tuple[str | None, int], list[tuple[float, float]]] = {}
        edges: dict[str | None, tuple[list[tuple[float, float]], list[tuple[float, float]]]] = {}

        def visit(cid: str | None, blk: Block, f0: float, c0: float) -> None:
            """Place one block's own nodes and routes at its corner ``(f0, c0)``."""
            for n, (f, c, F, C) in blk.nodes.items():
                nodes[n] = (f0 + f, c0 + c, F, C)
                bands[n] = (f0 + blk.bands[n][0], f0 + blk.bands[n][1])
            for key, pts in blk.routes.items():
                routes[(cid, key)] = [(f0 + f, c0 + c) for f, c in pts]
            edges[cid] = ([(f0, c0 + c) for c in blk.inputs], [(f0 + blk.F, c0 + c) for c in blk.outputs])

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
            visit(child, sub, f0 + f, c0 + c)
            stack.append(iter(sub.blocks.items()))
            offsets.append((f0 + f, c0 + c))
        paths: dict[int, list[tuple[float, float]]] = {}
        for w in self.wires:
            paths[w.key] = self.path(w, nodes, routes, edges)
        return Layout(self.lr, nodes, clusters, paths, self.wires, bands, (root.F, root.C))

    def path(self, w: Wire, nodes: dict, routes: dict, edges: dict) -> list[tuple[float, float]]:
        up, lca, down = self.split(self.outer(w.src), self.outer(w.dst))
        pts: list[tuple[float, float]] = [self.port(w.src, w.sport, True, nodes, edges)]
        for c in reversed(up):
            pts += routes.get((c, w.key), [])
            j = self.port_of(c, (w.src, w.sport), True)
            pts.append(edges[c][1][j])
        pts += routes.get((lca, w.key), [])
        for c in down:
            i = self.port_of(c, (w.src, w.sport), False)
            pts.append(edges[c][0][i])
            pts += routes.get((c, w.key), [])
        pts.append(self.port(w.dst, w.dport, False, nodes, edges))
        # Consecutive equal points (a port on a boundary) carry nothing.
        out = [pts[0]]
        for p in pts[1:]:
            if abs(p[0] - out[-1][0]) > 1e-9 or abs(p[1] - out[-1][1]) > 1e-9:
                out.append(p)
        return out

    def port(self, n: str, index: int, out: bool, nodes: dict, edges: dict) -> tuple[float, float]:
        d = self.g.nodes[n]
        if d["kind"] == G.INPUT:
            return edges[None][0][d["index"]]
        if d["kind"] == G.OUTPUT:
            return edges[None][1][d["index"]]
        f, c, F, C = nodes[n]
        cross = self.ports(n, out)[index]
        if d["kind"] in POINTS or d["kind"] == G.ADD:
            # Wires meet a dot at its centre, and the ⊕ at its rim.
            if d["kind"] == G.ADD:
                return (f + F if out else f, c + cross)
            return (f + F / 2, c + cross)
        return (f + F if out else f, c + cross)


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


def _spread(cs: list[float]) -> list[float]:
    """Boundary ports in order and at least a wire gap apart."""
    out: list[float] = []
    for c in cs:
        out.append(c if not out else max(c, out[-1] + WIRE_GAP))
    return out


def layout(g: nx.MultiDiGraph, lr: bool = True, shapes: bool = False) -> Layout:
    """Lay out ``g``: flow runs left to right when ``lr``, else top to bottom."""
    return _Engine(g, lr, shapes).place()
