"""The graph of a string diagram as TikZ for LaTeX papers (a pure function).

:func:`to_tikz` lays the graph out with :mod:`catnet.render.layout` and
writes plain TikZ: no TikZ libraries, no packages beyond ``tikz`` itself.
As a standalone document (``\\documentclass[tikz]{standalone}``) it compiles
on its own to a PDF the size of the picture; as a snippet it is one
``tikzpicture`` to ``\\input`` into a paper that loads ``tikz``.

The drawing follows the same conventions as the DOT back end: boxes with
their wires in order on two opposite sides, black dots for ``copy`` and
``discard``, ⊕ for ``add``, crossing wires for ``swap``, nested boxes shaded
by level, parameter wires across the flow, ↔ after an isomorphism's name
and ⁻¹ after an inverse's, bundle wires doubled (TikZ's own ``double``),
``triv`` / ``proj`` as trapezoids, a trace's state fed back along a
loop over its cell, and G-space wires and equivariant boxes marked as in
:mod:`catnet.render.symmetry` (the action in math mode under a wire's name,
``\\fbox`` badges).  Coordinates are printed with two decimals from the
pure-Python layout, so the text is the same everywhere.

The picture fits the page of its :class:`~catnet.render.style.Options`
(``width``, ``max_aspect``): the layout wraps long chains into rows.  Wires
end on their nodes' anchors (``([yshift=-0.21cm]n3.east)``; dots, ⊕ and
shared parameter sources are named coordinates) and leave a box along a
straight lead written relative to it, so moving a node by hand moves its
wires' ends; the points between stay absolute.  Each wire's label sits on
that straight stretch (or, from a copy dot, on the straight stretch where it
arrives), where no curve passes.
"""

from __future__ import annotations

import networkx as nx

from . import graph as G
from .layout import Layout, Wire, controls, layout, page_width, swap_strands
from .style import (
    CLUSTER_BORDER,
    ISO_COLOR,
    ISO_MARK,
    SYMMETRY_COLOR,
    Options,
    box_style,
    cluster_fill,
    wire_style,
)
from .symmetry import action_tex, claim_tex, group_tex

_TEX = {
    "\\": r"\textbackslash{}", "_": r"\_", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
    "×": r"$\times$", "⊗": r"$\otimes$", "→": r"$\to$", "⊕": r"$\oplus$",
    "↔": r"$\leftrightarrow$", "…": r"\dots{}",
}


def tex(text: str) -> str:
    """``text`` with LaTeX's special characters escaped (``f⁻¹`` as ``f$^{-1}$``)."""
    return "$^{-1}$".join("".join(_TEX.get(ch, ch) for ch in part) for part in text.split(G.INVERSE))


def _badge(text: str) -> str:
    """A small framed tag in the symmetry colour (plain LaTeX: ``\\fbox``)."""
    return f"\\,{{\\color{{{_gray(SYMMETRY_COLOR)}}}\\fboxsep=1pt\\fboxrule=0.4pt\\fbox{{\\scriptsize {text}}}}}"


def _box_badge(d: dict) -> str:
    """The badge of a box: its claim (a definition), its group (an equivariant generator), or none."""
    if d.get("claim"):
        return _badge(claim_tex(d["claim"]))
    if d.get("badge"):
        return _badge(f"${group_tex(d['badge'])}$")
    return ""


#: Centimetres kept free of the page width: the standalone border and some slack for text.
MARGIN = 0.4


def _n(v: float) -> str:
    s = f"{v:.2f}"
    return "0.00" if s == "-0.00" else s


def _gray(hex_color: str) -> str:
    """A grey ``#eeeeee`` as xcolor's ``black!7``; other colours by name."""
    v = int(hex_color[1:3], 16)
    return f"black!{round(100 * (1 - v / 255))}"


class _Writer:
    def __init__(self, g: nx.MultiDiGraph, opts: Options) -> None:
        self.g = g
        self.lr = opts.direction == "LR"
        self.opts = opts
        self.L: Layout = layout(g, self.lr, opts.shapes, width=page_width(opts.width) - MARGIN,
                                max_aspect=opts.max_aspect)
        self.out: list[str] = []

    def xy(self, f: float, c: float) -> str:
        """A point given along and across the flow, as TikZ ``(x,y)``."""
        return f"({_n(f)},{_n(-c)})" if self.lr else f"({_n(c)},{_n(-f)})"

    def vec(self, df: float, dc: float) -> str:
        """A displacement along and across the flow, as TikZ ``(x,y)``."""
        return self.xy(df, dc)

    def rect(self, f: float, c: float, F: float, C: float) -> tuple[float, float, float, float]:
        """Centre and size (x, y, width, height) of a (flow, cross) rectangle."""
        if self.lr:
            return (f + F / 2, -(c + C / 2), F, C)
        return (c + C / 2, -(f + F / 2), C, F)

    def at(self, n: str, p: tuple[float, float]) -> str:
        """Point ``p`` on node ``n``, relative to the node, so that moving the node by hand moves it."""
        d = self.g.nodes[n]
        f, c, F, C = self.L.nodes[n]
        if d["kind"] == G.BOX:
            # the side the point is on, shifted along that side from its middle
            if abs(p[1] - c) < 1e-6 and abs(p[0] - (f + F / 2)) < 1e-6:
                return f"({n}.{'north' if self.lr else 'west'})"
            side = ("east" if self.lr else "south") if p[0] > f + F / 2 else ("west" if self.lr else "north")
            shift = p[1] - (c + C / 2)
            if abs(shift) < 5e-3:
                return f"({n}.{side})"
            return f"([{'yshift' if self.lr else 'xshift'}={_n(-shift if self.lr else shift)}cm]{n}.{side})"
        # dots, ⊕, parameter sources: named coordinates at their centre (a source's: its dot)
        cf, cc = self.centre(n)
        df, dc = p[0] - cf, p[1] - cc
        if abs(df) < 5e-3 and abs(dc) < 5e-3:
            return f"({n})"
        x, y = (df, -dc) if self.lr else (dc, -df)
        shifts = [f"{name}={_n(v)}cm" for name, v in (("xshift", x), ("yshift", y)) if abs(v) >= 5e-3]
        return f"([{', '.join(shifts)}]{n})"

    def centre(self, n: str) -> tuple[float, float]:
        """Where a point-like node's coordinate is: its centre, or a parameter source's dot."""
        f, c, F, C = self.L.nodes[n]
        return (f + F, c + C / 2) if self.g.nodes[n]["kind"] == G.PARAM else (f + F / 2, c + C / 2)

    def anchored(self, n: str) -> bool:
        return n in self.L.nodes and self.g.nodes[n]["kind"] not in (G.WAYPOINT, G.TRACE_IN, G.TRACE_OUT, G.SWAP)

    # -- pieces -----------------------------------------------------------------

    def clusters(self) -> None:
        level = G.shades(self.g)
        for cl in self.g.graph["clusters"]:
            f, c, F, C = self.L.clusters[cl.id]
            fill = _gray(cluster_fill(level[cl.id]))
            draw = "black" if cl.kind == "entry" else _gray(CLUSTER_BORDER)
            self.out.append(f"\\draw[nest, draw={draw}, fill={fill}] {self.xy(f, c)} rectangle {self.xy(f + F, c + C)};")
            title = tex(cl.label) + (" " + tex(cl.mark) if cl.mark else "")
            if cl.shared:
                title += " (shared)" if cl.shared in cl.label.split(" = ") else f" (shared {tex(cl.shared)})"
            if cl.claim is not None and self.lr:
                title += _badge(claim_tex(cl.claim))
            tf, tc, _, _ = self.L.titles[cl.id]
            self.out.append(f"\\node[title] at {self.xy(tf, tc)} {{{title}}};")
            if cl.claim is not None and not self.lr:
                # Top to bottom, wires enter through the top: the claim goes
                # to the right corner, clear of them (see the layout).
                x, y = c + C - 0.1, -(f + 0.05)
                self.out.append(f"\\node[title, anchor=north east] at ({_n(x)},{_n(y)}) {{{_badge(claim_tex(cl.claim))}}};")

    def path(self, pts: list[tuple[float, float]], kinds: str, src: str | None, dst: str | None,
             label: tuple[int, float, str, str] | None = None) -> str:
        """A wire through ``pts``: its ends on their nodes, ``~`` segments as curves along the flow.

        ``label`` is (segment, position along it, node options, node text) for the wire's label.
        """
        first = self.at(src, pts[0]) if src is not None else self.xy(*pts[0])
        parts = [first]
        for i, (a, b, kind) in enumerate(zip(pts, pts[1:], kinds)):
            last = i == len(kinds) - 1
            end = self.at(dst, b) if last and dst is not None else self.xy(*b)
            node = ""
            if label is not None and label[0] == i:
                pos = "" if label[1] == 0.5 else f"pos={label[1]:.2f}, "
                node = f" node[{pos}{label[2]}] {{{label[3]}}}"
            if kind == "~" and abs(a[1] - b[1]) > 1e-9:
                p, q = controls(a, b)
                ctrl = f".. controls +{self.vec(p[0] - a[0], 0.0)} and +{self.vec(q[0] - b[0], 0.0)} .."
                parts.append(f"{ctrl}{node} {end}")
            elif i == 0 and src is not None and abs(a[1] - b[1]) < 1e-9 and not last:
                # a straight lead out of a node moves with it
                parts.append(f"--{node} ++{self.vec(b[0] - a[0], 0.0)}")
            else:
                parts.append(f"--{node} {end}")
        return " ".join(parts)

    def label_node(self, w: Wire, pts: list[tuple[float, float]]) -> tuple[int, float, str, str] | None:
        """Where a wire's label goes: the segment under it, how far along, and the node's options and text."""
        if w.key not in self.L.labels:
            return None
        f, c, F, C = self.L.labels[w.key]
        mid = f + F / 2
        cross = c + C if self.lr else c
        for i, (a, b) in enumerate(zip(pts, pts[1:])):
            if abs(a[1] - cross) < 1e-6 and abs(b[1] - cross) < 1e-6 and a[0] - 1e-6 <= mid <= b[0] + 1e-6 and b[0] > a[0]:
                pos = (mid - a[0]) / (b[0] - a[0])
                break
        else:  # pragma: no cover - the layout puts every label over a straight stretch
            raise AssertionError(f"no straight stretch under the label of wire {w.key}")
        text = w.shape if self.opts.shapes else w.label
        content, opts = tex(text), "above" if self.lr else "right"
        if w.action is not None:
            # A G-space's action on a second line, smaller and upright.
            content += f"\\\\[-1pt]{{\\upshape\\color{{{_gray(SYMMETRY_COLOR)}}}{action_tex(w.action)}}}"
            opts += f", align={'center' if self.lr else 'left'}"
        return i, round(pos, 2), f"wirelabel, {opts}", content

    def wires(self) -> None:
        for w in self.L.wires:
            pts, kinds = self.L.paths[w.key], self.L.kinds[w.key]
            label = self.label_node(w, pts)
            src = w.src if self.anchored(w.src) else None
            dst = w.dst if self.anchored(w.dst) else None
            body = self.path(pts, kinds, src, dst, label)
            kind = {G.BUNDLE: "bundle", G.PARAMETER: "param"}.get(w.style, "wire")
            if self._turns(pts):
                kind += ", rounded corners=2pt"
            self.out.append(f"\\draw[{kind}] {body};")

    @staticmethod
    def _turns(pts: list[tuple[float, float]]) -> bool:
        """Whether a path has a stretch across the flow (a return wire, a parameter wire's drop)."""
        return any(abs(a[0] - b[0]) < 1e-9 and abs(a[1] - b[1]) > 1e-9 for a, b in zip(pts, pts[1:]))

    def nodes(self) -> None:
        for n, d, (f, c, F, C) in self.L.placed(self.g):
            kind = d["kind"]
            if kind == G.BOX:
                x, y, wd, ht = self.rect(f, c, F, C)
                title = tex(d["label"])
                if d["style"] in ("composite", "repeat"):
                    title = f"\\textbf{{{title}}}"
                if d["mark"]:
                    title += " " + tex(d["mark"])
                if d.get("iso") and not d.get("inverted"):
                    title += f" {{\\color{{{_gray(ISO_COLOR)}}}{tex(ISO_MARK)}}}"
                title += _box_badge(d)
                if d["detail"]:
                    title += f"\\\\[-2pt]{{\\scriptsize {tex(d['detail'])}}}"
                box = d["style"] if d["style"] in _BOX_KINDS else "generator"
                size = f"minimum width={_n(wd)}cm, minimum height={_n(ht)}cm"
                if d.get("split"):
                    self.trapezoid(f, c, F, C, d["split"] == "split", box)
                    self.out.append(f"\\node[box={box}, draw=none, fill=none, {size}] ({n}) at ({_n(x)},{_n(y)}) {{{title}}};")
                    continue
                self.out.append(f"\\node[box={box}, {size}] ({n}) at ({_n(x)},{_n(y)}) {{{title}}};")
            elif kind in (G.COPY, G.DISCARD):
                self.out.append(f"\\coordinate ({n}) at {self.xy(*self.centre(n))};")
                self.out.append(f"\\fill ({n}) circle (1.6pt);")
            elif kind == G.ADD:
                r = F / 2
                self.out.append(f"\\coordinate ({n}) at {self.xy(*self.centre(n))};")
                self.out.append(f"\\draw[wire, fill=white] ({n}) circle ({_n(r)});")
                self.out.append(f"\\draw[wire] ([xshift=-{_n(r)}cm]{n}) -- ([xshift={_n(r)}cm]{n}) "
                                f"([yshift=-{_n(r)}cm]{n}) -- ([yshift={_n(r)}cm]{n});")
            elif kind == G.PARAM:
                # a shared parameter source: its dot (see params)
                self.out.append(f"\\coordinate ({n}) at {self.xy(*self.centre(n))};")
            elif kind == G.SWAP:
                # The two wires cross once, inside the swap's own rank.
                for pts, kinds in swap_strands((f, c, F, C)):
                    self.out.append(f"\\draw[wire] {self.path(pts, kinds, None, None)};")

    def trapezoid(self, f: float, c: float, F: float, C: float, wide_out: bool, box: str) -> None:
        """A ``triv``/``proj`` box: full height on the side of its two wires, narrower on the other."""
        inset = C * 0.2
        near, far = (inset, 0.0) if wide_out else (0.0, inset)
        pts = [(f, c + near), (f + F, c + far), (f + F, c + C - far), (f, c + C - near)]
        self.out.append(f"\\draw[box={box}, rounded corners=0pt] {' -- '.join(self.xy(*p) for p in pts)} -- cycle;")

    def loops(self) -> None:
        """The feedback loops of traces (:attr:`Layout.loops`), the state's name over the top stretch."""
        side = "above" if self.lr else "left"
        for n, d in self.g.nodes(data=True):
            if n not in self.L.loops:
                continue
            pts, _ = self.L.loops[n]
            label = f"node[wirelabel, {side}, pos=0.5] {{{tex(d['label'])}}}"
            path = " -- ".join(self.xy(*p) for p in pts[:3])
            self.out.append(f"\\draw[wire, rounded corners=3pt] {path} -- {self.xy(*pts[3])} {label} "
                            f"-- {' -- '.join(self.xy(*p) for p in pts[4:])};")

    def params(self) -> None:
        """Parameter sources: a stub into each box with weights of its own, a shared one's count and dot."""
        side = "above" if self.lr else "left"
        for n, d in self.g.nodes(data=True):
            if d["kind"] != G.PARAM:
                continue
            text = tex(d["label"])
            if n in self.L.stubs:
                free, on = self.L.stubs[n]
                target = d["target"]
                self.out.append(f"\\draw[param] {self.at(target, on)} -- ++{self.vec(0.0, free[1] - on[1])} "
                                f"node[paramlabel, {side}] {{{text}}};")
                continue
            # A shared source: its count, a stub to the dot its wires leave from.
            f, c, F, C = self.L.counts[n]
            start = (f + F, c + C / 2)
            anchor = "east" if self.lr else "south"
            self.out.append(f"\\draw[param] {self.at(n, start)} node[paramlabel, anchor={anchor}] {{{text}}} -- ({n});")
            self.out.append(f"\\fill[paramcolor] ({n}) circle (1.6pt);")


_BOX_KINDS = ("generator", "structural", "composite", "repeat", "inv", "scan")


def _styles(lr: bool, bundles: bool = False) -> list[str]:
    """The picture's styles: one per box kind and per wire kind."""
    out_angle, in_angle = (0, 180) if lr else (-90, 90)
    data, param, bundle = wire_style("data"), wire_style("param"), wire_style("bundle")
    lines = [
        f"  flow/.style={{out={out_angle}, in={in_angle}}},",
        f"  wire/.style={{line width={data.width:g}pt}},",
        f"  param/.style={{paramcolor, line width={param.width:g}pt{', dashed' if param.dashed else ''}}},",
        "  wirelabel/.style={font=\\scriptsize\\itshape, text=black!80, inner sep=1.5pt},",
        "  paramlabel/.style={font=\\scriptsize\\itshape, text=paramcolor, inner sep=1.5pt},",
        "  nest/.style={rounded corners=4pt, line width=0.5pt},",
        "  title/.style={anchor=north west, font=\\scriptsize, inner sep=1pt},",
        "  box/.style={draw, align=center, font=\\small, inner sep=2pt, box/#1/.try},",
    ]
    if bundles:
        # A bundle wire: two lines of the wire's width with a gap between
        # (only pictures with one say so, so others keep their text).
        lines.append(f"  bundle/.style={{line width={bundle.width:g}pt, double, double distance=1.2pt}},")
    for kind in _BOX_KINDS:
        st = box_style(kind)
        parts = [f"fill={_gray(st.fill)}", f"line width={st.width:g}pt"]
        if st.rounded:
            parts.append("rounded corners=3pt")
        if st.double:
            parts.append("double, double distance=0.8pt")
        lines.append(f"  box/{kind}/.style={{{', '.join(parts)}}},")
    lines[-1] = lines[-1].rstrip(",")
    return lines


def to_tikz(g: nx.MultiDiGraph, opts: Options = Options(), standalone: bool = True) -> str:
    """TikZ for ``g``: a standalone document, or a ``tikzpicture`` snippet.

    The same graph and options always give the same text.
    """
    w = _Writer(g, opts)
    w.clusters()
    w.nodes()  # first, so that the wires can end on them
    w.wires()
    w.loops()
    w.params()
    name = g.graph.get("name") or "diagram"
    param = wire_style("param").color.lstrip("#").upper()
    pic = [f"% catnet string diagram: {name}"]
    if not standalone:
        pic.append("% Needs \\usepackage{tikz} in the preamble; include with \\input.")
    pic.append("\\begin{tikzpicture}[")
    pic += _styles(w.lr, any(wire.style == G.BUNDLE for wire in w.L.wires))
    pic.append("]")
    pic.append(f"\\definecolor{{paramcolor}}{{HTML}}{{{param}}}")
    pic += w.out
    pic.append("\\end{tikzpicture}")
    if not standalone:
        return "\n".join(pic) + "\n"
    doc = ["\\documentclass[tikz, border=3pt]{standalone}", "\\begin{document}", *pic, "\\end{document}"]
    return "\n".join(doc) + "\n"
