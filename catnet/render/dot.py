"""The graph of a string diagram as Graphviz DOT text, with every position given (a pure function).

:func:`to_dot` draws the layout of :mod:`catnet.render.layout` — the same
one the TikZ back end draws — as DOT in which every node has its position
(``pos="x,y!"``), every nested box its bounding box (``bb``) and every wire
its curve (``pos`` of Bézier control points) and label position (``lp``).
Graphviz then only draws it (``neato -n2``, see :mod:`catnet.render.output`):
the SVG, PNG and PDF are the TikZ figure, wrapped to the same page
(:attr:`~catnet.render.style.Options.width`), with the same guarantees
(labels clear of wires, parameter wires inside their box, swaps crossing
once), and the same on every machine whatever Graphviz is installed.
Graphviz's own layout cannot wrap a chain into rows that read in order,
nor keep a parameter source inside the smallest box around its uses; see
``docs/rendering.md``.

What the picture shows, in the words of DOT:

- boxes are rounded boxes (an HTML table of the layout's size), a
  definition's name in bold, its detail line smaller under it; ``repeat`` has
  a double outline; ``copy`` and ``discard`` are black dots, ``add`` a small
  ⊕, ``swap`` two wires that cross;
- nested boxes are clusters, shaded one step darker per level, titled at
  their top left;
- an isomorphism's name is followed by a small grey ↔, an inverse's by ⁻¹;
- a bundle wire is doubled (``color="black:white:black"``); ``triv`` and
  ``proj`` are trapezoids;
- a trace (``scan``) feeds each state wire back on a loop over its cell;
- wires have no arrow heads and are labelled once, where they are made;
- parameter wires (Para view) are dashed and enter each box across the
  flow, their size written at their free end;
- a G-space wire says its action on a second, smaller line; equivariant
  generators and definitions with a claim carry a badge (see
  :mod:`catnet.render.symmetry`).

Coordinates are printed with two decimals from the pure-Python layout, so
one diagram always gives byte-identical DOT.
"""

from __future__ import annotations

import networkx as nx

from . import graph as G
from .layout import LINE, SMALL_CHAR, Layout, Point, cluster_title, controls, layout, page_width, swap_strands, text_width
from .style import CLUSTER_BORDER, ISO_COLOR, ISO_MARK, SYMMETRY_COLOR, Options, box_style, cluster_fill, wire_style
from .symmetry import action_text, claim_text

FONT = "Helvetica"
WIRE_FONT = "Helvetica-Oblique"

#: Font sizes in points: a box's name, and everything smaller (detail
#: lines, wire labels, titles of nested boxes, parameter sizes, badges).
#: The same as the TikZ figure's ``\small`` and ``\scriptsize``; the page
#: width is chosen so that these print at their size.
NAME_PT, SMALL_PT = 9, 7

#: Points per centimetre of the layout.
PT = 72 / 2.54

#: Centimetres kept free of the page width: Graphviz's pad and some slack for text.
MARGIN = 0.4


def _q(text: str) -> str:
    """A DOT double-quoted string."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _attrs(pairs: list[tuple[str, str]]) -> str:
    return "[" + ", ".join(f"{k}={v}" for k, v in pairs) + "]"


def _n(v: float) -> str:
    s = f"{v:.2f}"
    return "0.00" if s == "-0.00" else s


def _badge_text(data: dict) -> str:
    """What a box's badge says: its group (equivariant by construction) or its claim; ``""`` for none."""
    return claim_text(data["claim"]) if data.get("claim") else data.get("badge", "")


def _badge(text: str) -> str:
    """A small framed tag in the symmetry colour."""
    return (f'<TABLE BORDER="1" CELLBORDER="0" CELLSPACING="0" CELLPADDING="1" STYLE="rounded" COLOR="{SYMMETRY_COLOR}">'
            f'<TR><TD><FONT POINT-SIZE="{SMALL_PT}" COLOR="{SYMMETRY_COLOR}">{_html(text)}</FONT></TD></TR></TABLE>')


def _title(data: dict) -> str:
    """A box's name (bold for a definition), its mark, the iso mark, its badge, its detail line."""
    title = f"<B>{_html(data['label'])}</B>" if data["style"] in ("composite", "repeat") else _html(data["label"])
    if data["mark"]:
        title += f" {_html(data['mark'])}"
    if data.get("iso") and not data.get("inverted"):
        title += f' <FONT COLOR="{ISO_COLOR}">{ISO_MARK}</FONT>'
    badge = _badge_text(data)
    detail = f'<FONT POINT-SIZE="{SMALL_PT}">{_html(data["detail"])}</FONT>' if data["detail"] else ""
    if badge:
        rows = f'<TR><TD>{title}</TD><TD WIDTH="3"></TD><TD>{_badge(badge)}</TD></TR>'
        if detail:
            rows += f'<TR><TD COLSPAN="3">{detail}</TD></TR>'
        return f'<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="0">{rows}</TABLE>'
    return title + (f"<BR/>{detail}" if detail else "")


#: The radius of a rounded corner of a wire, in centimetres (3 pt).
CORNER = 0.1


def _corner(a: Point, b: Point, c: Point) -> tuple[Point, Point] | None:
    """Where a rounded corner at ``b`` (between straight segments ``ab`` and ``bc``) starts and ends; ``None`` if straight."""
    ab, bc = (b[0] - a[0], b[1] - a[1]), (c[0] - b[0], c[1] - b[1])
    la, lc = (ab[0] ** 2 + ab[1] ** 2) ** 0.5, (bc[0] ** 2 + bc[1] ** 2) ** 0.5
    if la < 1e-9 or lc < 1e-9 or abs(ab[0] * bc[1] - ab[1] * bc[0]) < 1e-9 * la * lc:
        return None
    r = min(CORNER, la / 2, lc / 2)
    return (b[0] - ab[0] / la * r, b[1] - ab[1] / la * r), (b[0] + bc[0] / lc * r, b[1] + bc[1] / lc * r)


class _Writer:
    def __init__(self, g: nx.MultiDiGraph, opts: Options) -> None:
        self.g = g
        self.opts = opts
        self.lr = opts.direction == "LR"
        self.L: Layout = layout(g, self.lr, opts.shapes, width=page_width(opts.width) - MARGIN,
                                max_aspect=opts.max_aspect)
        F, C = self.L.size
        self.W, self.H = ((F, C) if self.lr else (C, F))
        self.out: list[str] = []
        self.points = 0
        # Curves drawn over the nodes (the cross of a ⊕), after the wires.
        self.later: list[tuple[str, list[Point], str, list[tuple[str, str]]]] = []

    # -- coordinates --------------------------------------------------------

    def xy(self, f: float, c: float) -> tuple[float, float]:
        """A layout point (flow, cross) in Graphviz's points, y up."""
        x, y = (f, c) if self.lr else (c, f)
        return (x * PT, (self.H - y) * PT)

    def p(self, f: float, c: float) -> str:
        x, y = self.xy(f, c)
        return f"{_n(x)},{_n(y)}"

    def centre(self, rect: tuple[float, float, float, float]) -> str:
        f, c, F, C = rect
        return self.p(f + F / 2, c + C / 2)

    def curve(self, pts: list[Point], kinds: str) -> str:
        """Bézier control points through ``pts``: ``~`` segments curve along the flow, ``-`` are straight.

        Where two straight segments meet at an angle (a return wire of a
        wrapped row, a parameter wire's drop), the corner is rounded, as
        TikZ's ``rounded corners`` does.
        """
        out = [self.p(*pts[0])]

        def line(a: Point, b: Point) -> None:
            out.extend([self.p(a[0] + (b[0] - a[0]) / 3, a[1] + (b[1] - a[1]) / 3),
                        self.p(a[0] + 2 * (b[0] - a[0]) / 3, a[1] + 2 * (b[1] - a[1]) / 3), self.p(*b)])

        start = pts[0]
        for i, (a, b, kind) in enumerate(zip(pts, pts[1:], kinds)):
            if kind == "~" and abs(a[1] - b[1]) > 1e-9:
                q, r = controls(start, b)
                out += [self.p(*q), self.p(*r), self.p(*b)]
                start = b
                continue
            nxt = pts[i + 2] if i + 2 < len(pts) and kinds[i + 1] == "-" else None
            turn = _corner(a, b, nxt) if nxt is not None else None
            if turn is None:
                line(start, b)
                start = b
                continue
            before, after = turn
            line(start, before)
            out += [self.p(*b), self.p(*b), self.p(*after)]
            start = after
        return " ".join(out)

    def point(self, f: float, c: float) -> str:
        """An invisible node at a layout point, for a drawn curve to start or end at."""
        nid = f"pt{self.points}"
        self.points += 1
        self.out.append(f"  {nid} [shape=point, width=0, height=0, style=invis, pos=\"{self.p(f, c)}!\"];")
        return nid

    def edge(self, ident: str, pts: list[Point], kinds: str, attrs: list[tuple[str, str]]) -> None:
        """A drawn curve through ``pts``; its ``id`` names it in the SVG (``w12``: wire 12)."""
        u, v = self.point(*pts[0]), self.point(*pts[-1])
        self.out.append(f"  {u} -> {v} {_attrs([('id', _q(ident)), ('pos', _q(self.curve(pts, kinds))), *attrs])};")

    def text(self, ident: str, rect: tuple[float, float, float, float], label: str, color: str) -> None:
        """A piece of text centred in ``rect`` (a parameter count)."""
        self.out.append(f"  {ident} [shape=plaintext, label={_q(label)}, fontname={_q(WIRE_FONT)}, fontsize={SMALL_PT}, "
                        f"fontcolor={_q(color)}, margin=0, width=0, height=0, pos=\"{self.centre(rect)}!\"];")

    # -- pieces -------------------------------------------------------------

    def clusters(self) -> None:
        level = G.shades(self.g)
        children: dict[str | None, list[G.Cluster]] = {}
        for cl in self.g.graph["clusters"]:
            children.setdefault(cl.parent, []).append(cl)

        def emit(parent: str | None, indent: str) -> None:
            for cl in children.get(parent, []):
                f, c, F, C = self.L.clusters[cl.id]
                (xa, ya), (xb, yb) = self.xy(f, c), self.xy(f + F, c + C)
                bb = f"{_n(min(xa, xb))},{_n(min(ya, yb))},{_n(max(xa, xb))},{_n(max(ya, yb))}"
                title = cluster_title(cl)
                label = _q(title)
                if cl.claim is not None:
                    label = (f'<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="0"><TR><TD>{_html(title)}</TD>'
                             f'<TD WIDTH="4"></TD><TD>{_badge(claim_text(cl.claim))}</TD></TR></TABLE>>')
                entry = cl.kind == "entry"
                # The title goes in the rectangle the layout keeps for it, at the
                # top left, a little further in than in TikZ: Graphviz rounds
                # the corners of nested boxes more.
                tf, tc, tF, tC = self.L.titles[cl.id]
                inset = (0.1, 0.04) if self.lr else (0.04, 0.1)
                attrs = [("bb", _q(bb)), ("label", label), ("lp", _q(self.centre((tf + inset[0], tc + inset[1], tF, tC)))),
                         ("style", '"rounded,filled"'), ("fillcolor", _q(cluster_fill(level[cl.id]))),
                         ("color", _q("#000000" if entry else CLUSTER_BORDER)), ("fontsize", str(SMALL_PT)),
                         ("penwidth", "0.5")]
                self.out.append(f"{indent}subgraph cluster_{cl.id} {{")
                self.out.append(f"{indent}  graph {_attrs(attrs)};")
                emit(cl.id, indent + "  ")
                self.out.append(f"{indent}}}")

        emit(None, "  ")

    def nodes(self) -> None:
        for n, d, (f, c, F, C) in self.L.placed(self.g):
            kind = d["kind"]
            w, h = (F, C) if self.lr else (C, F)
            w, h = w * PT, h * PT
            pos = self.centre((f, c, F, C))
            if kind == G.BOX:
                attrs = self.box(d, w, h)
            elif kind in (G.COPY, G.DISCARD):
                attrs = [("shape", "point"), ("width", "0.044"), ("color", _q("#000000"))]
            elif kind == G.ADD:
                # A circle with a cross drawn in it, as in TikZ (a "+" of text would not fit).
                attrs = [("shape", "circle"), ("label", '""'), ("width", f"{w / 72:.3f}"), ("fixedsize", "true"),
                         ("style", "filled"), ("fillcolor", _q("#ffffff")), ("penwidth", f"{wire_style(G.DATA).width:g}")]
                r, ws = F / 2, wire_style(G.DATA)
                cf, cc = f + r, c + C / 2
                for j, (a, b) in enumerate((((cf - r, cc), (cf + r, cc)), ((cf, cc - r), (cf, cc + r)))):
                    self.later.append((f"{n}.plus{j}", [a, b], "-", [("color", _q(ws.color)), ("penwidth", f"{ws.width:g}")]))
            elif kind == G.PARAM:
                # A shared parameter source: its dot, where its wires leave from (see params).
                pos = self.p(f + F, c + C / 2)
                attrs = [("shape", "point"), ("width", "0.044"), ("color", _q(wire_style(G.PARAMETER).color))]
            elif kind == G.SWAP:
                # The two wires cross once, inside the swap's own rank.
                ws = wire_style(G.DATA)
                for j, (pts, kinds) in enumerate(swap_strands((f, c, F, C))):
                    self.edge(f"{n}.x{j}", pts, kinds, [("color", _q(ws.color)), ("penwidth", f"{ws.width:g}")])
                continue
            else:
                attrs = [("shape", "point"), ("width", "0"), ("height", "0"), ("style", "invis")]
            self.out.append(f"  {n} {_attrs([('pos', _q(pos + '!')), *attrs])};")

    def box(self, d: dict, w: float, h: float) -> list[tuple[str, str]]:
        style = box_style(d["style"])
        if d.get("split"):
            # A trapezoid, wide on the side of its two wires.
            wide_out = d["split"] == "split"
            orientation = (90 if wide_out else 270) if self.lr else (0 if wide_out else 180)
            return [("shape", "trapezium"), ("orientation", str(orientation)), ("fixedsize", "true"),
                    ("width", f"{w / 72:.3f}"), ("height", f"{h / 72:.3f}"), ("margin", "0"), ("style", "filled"),
                    ("fillcolor", _q(style.fill)), ("color", _q(style.border)), ("penwidth", f"{style.width:g}"),
                    ("fontsize", str(NAME_PT)), ("label", f"<{_title(d)}>")]
        border = 3 if style.double else 1
        rounded = ' STYLE="rounded"' if style.rounded else ""
        # One cell of the box's size, less its outline: the text is centred in it.
        cell = f'FIXEDSIZE="TRUE" WIDTH="{max(round(w) - 2 * border, 1)}" HEIGHT="{max(round(h) - 2 * border, 1)}"'
        table = (f'<<TABLE BORDER="{border}" CELLBORDER="0" CELLSPACING="0" CELLPADDING="0"{rounded}'
                 f' BGCOLOR="{style.fill}" COLOR="{style.border}"><TR><TD {cell}>{_title(d)}</TD></TR></TABLE>>')
        return [("shape", "plain"), ("fontsize", str(NAME_PT)), ("label", table)]

    def wires(self) -> None:
        for w in self.L.wires:
            ws = wire_style(w.style)
            color = f"{ws.color}:#ffffff:{ws.color}" if ws.double else ws.color
            attrs = [("color", _q(color)), ("penwidth", f"{ws.width:g}")]
            if ws.dashed:
                attrs.append(("style", "dashed"))
            text = w.shape if self.opts.shapes else w.label
            if w.key in self.L.labels and text:
                label = _q(text)
                if w.action is not None:
                    # A G-space's action goes under its name, upright.
                    label = (f'<{_html(text)}<BR/><FONT FACE="{FONT}" COLOR="{SYMMETRY_COLOR}">'
                             f'{_html(action_text(w.action))}</FONT>>')
                attrs += [("label", label), ("lp", _q(self.centre(self.L.labels[w.key]))), ("fontcolor", _q("#333333"))]
            self.edge(f"w{w.key}", self.L.paths[w.key], self.L.kinds[w.key], attrs)
        for args in self.later:
            self.edge(*args)

    def loops(self) -> None:
        """The feedback loops of traces (:attr:`Layout.loops`), the state's name over the top stretch."""
        ws = wire_style("feedback")
        for n, d in self.g.nodes(data=True):
            if n not in self.L.loops:
                continue
            pts, (mf, mc) = self.L.loops[n]
            # above the top stretch (left of it, top to bottom), as in TikZ
            room = LINE / 2 if self.lr else text_width(d["label"], SMALL_CHAR) / 2
            at = self.p(mf, mc - room - 0.05)
            attrs = [("color", _q(ws.color)), ("penwidth", f"{ws.width:g}"), ("label", _q(d["label"])),
                     ("lp", _q(at)), ("fontcolor", _q("#333333"))]
            self.edge(f"{n}.loop", pts, "-" * (len(pts) - 1), attrs)

    def params(self) -> None:
        """Parameter sources: a stub into each box with weights of its own, a shared one's count and dot."""
        ws = wire_style(G.PARAMETER)
        style = [("color", _q(ws.color)), ("penwidth", f"{ws.width:g}"), ("style", "dashed")]
        for n, d in self.g.nodes(data=True):
            if d["kind"] != G.PARAM:
                continue
            self.text(f"{n}_count", self.L.counts[n], d["label"], ws.color)
            if n in self.L.stubs:
                free, on = self.L.stubs[n]
                self.edge(f"{n}.stub", [free, on], "-", style)
                continue
            # A shared source: a stub from its count to the dot its wires leave from.
            f, c, F, C = self.L.counts[n]
            nf, nc, NF, NC = self.L.nodes[n]
            self.edge(f"{n}.stub", [(f + F, c + C / 2), (nf + NF, nc + NC / 2)], "-", style)


def to_dot(g: nx.MultiDiGraph, opts: Options = Options()) -> str:
    """DOT text for ``g``, every position given: the same graph and options always give the same text."""
    w = _Writer(g, opts)
    name = g.graph.get("name") or "diagram"
    w.clusters()
    w.nodes()
    w.wires()
    w.loops()
    w.params()
    head = [f"digraph {_q(name)} {{",
            f"  graph {_attrs([('bb', _q(f'0,0,{_n(w.W * PT)},{_n(w.H * PT)}')), ('fontname', _q(FONT)), ('fontsize', str(SMALL_PT)), ('pad', '0.04')])};",
            f"  node {_attrs([('fontname', _q(FONT)), ('fontsize', str(NAME_PT))])};",
            f"  edge {_attrs([('arrowhead', 'none'), ('fontname', _q(WIRE_FONT)), ('fontsize', str(SMALL_PT))])};"]
    return "\n".join([*head, *w.out, "}"]) + "\n"
