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
"""

from __future__ import annotations

import networkx as nx

from . import graph as G
from .layout import LANE, LOOP, LOOP_STEP, PAD, TITLE, Layout, layout
from .style import CLUSTER_BORDER, ISO_COLOR, ISO_MARK, SYMMETRY_COLOR, Options, box_style, cluster_fill, wire_style
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
        self.L: Layout = layout(g, self.lr, opts.shapes)
        self.out: list[str] = []

    def xy(self, f: float, c: float) -> str:
        """A point given along and across the flow, as TikZ ``(x,y)``."""
        return f"({_n(f)},{_n(-c)})" if self.lr else f"({_n(c)},{_n(-f)})"

    def rect(self, f: float, c: float, F: float, C: float) -> tuple[float, float, float, float]:
        """Centre and size (x, y, width, height) of a (flow, cross) rectangle."""
        if self.lr:
            return (f + F / 2, -(c + C / 2), F, C)
        return (c + C / 2, -(f + F / 2), C, F)

    # -- pieces -----------------------------------------------------------------

    def clusters(self) -> None:
        level = {}
        for cl in self.g.graph["clusters"]:
            level[cl.id] = 0 if cl.kind == "entry" else (level.get(cl.parent, 0) + 1 if cl.parent else 1)
            f, c, F, C = self.L.clusters[cl.id]
            fill = _gray(cluster_fill(level[cl.id]))
            draw = "black" if cl.kind == "entry" else _gray(CLUSTER_BORDER)
            self.out.append(f"\\draw[nest, draw={draw}, fill={fill}] {self.xy(f, c)} rectangle {self.xy(f + F, c + C)};")
            title = tex(cl.label) + (" " + tex(cl.mark) if cl.mark else "")
            if cl.shared:
                title += " (shared)" if cl.shared in cl.label.split(" = ") else f" (shared {tex(cl.shared)})"
            if cl.claim is not None and self.lr:
                title += _badge(claim_tex(cl.claim))
            x, y = (f + 0.1, -(c + 0.05)) if self.lr else (c + 0.1, -(f + 0.05))
            self.out.append(f"\\node[title] at ({_n(x)},{_n(y)}) {{{title}}};")
            if cl.claim is not None and not self.lr:
                # Top to bottom, wires enter through the top: the claim goes
                # to the right corner, clear of them (see the layout).
                x = c + C - 0.1
                self.out.append(f"\\node[title, anchor=north east] at ({_n(x)},{_n(y)}) {{{_badge(claim_tex(cl.claim))}}};")

    def wires(self) -> None:
        side = "above" if self.lr else "right"
        for w in self.L.wires:
            pts = self.L.paths[w.key]
            text = w.shape if self.opts.shapes else w.label
            parts = [self.xy(*pts[0])]
            content, opts = tex(text), side
            if w.action is not None:
                # A G-space's action on a second line, smaller and upright.
                content += f"\\\\[-1pt]{{\\upshape\\color{{{_gray(SYMMETRY_COLOR)}}}{action_tex(w.action)}}}"
                opts += f", align={'center' if self.lr else 'left'}"
                if self.lr and len(pts) > 1 and pts[1][1] != pts[0][1]:
                    # The wire bends at once: its two lines start at the
                    # port, on the side it bends away from, clear of the curve.
                    opts = f"{'below' if pts[1][1] < pts[0][1] else 'above'} right, pos=0, align=left"
            for i, p in enumerate(pts[1:]):
                label = f" node[wirelabel, {opts}] {{{content}}}" if i == 0 and w.labelled and text else ""
                parts.append(f"to[flow]{label} {self.xy(*p)}")
            kind = "bundle" if w.style == G.BUNDLE else "wire"
            self.out.append(f"\\draw[{kind}] {' '.join(parts)};")

    def nodes(self) -> None:
        for n, d in self.g.nodes(data=True):
            if n not in self.L.nodes:
                continue
            f, c, F, C = self.L.nodes[n]
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
                if d.get("split"):
                    self.trapezoid(f, c, F, C, d["split"] == "split", box)
                    self.out.append(f"\\node[box={box}, draw=none, fill=none] ({n}) at ({_n(x)},{_n(y)}) {{{title}}};")
                    continue
                opts = [f"box={box}", f"minimum width={_n(wd)}cm", f"minimum height={_n(ht)}cm"]
                self.out.append(f"\\node[{', '.join(opts)}] ({n}) at ({_n(x)},{_n(y)}) {{{title}}};")
            elif kind in (G.COPY, G.DISCARD):
                self.out.append(f"\\fill {self.xy(f + F / 2, c + C / 2)} circle (1.6pt);")
            elif kind == G.ADD:
                r = F / 2
                cf, cc = f + r, c + r
                self.out.append(f"\\draw[wire, fill=white] {self.xy(cf, cc)} circle ({_n(r)});")
                self.out.append(f"\\draw[wire] {self.xy(cf - r, cc)} -- {self.xy(cf + r, cc)} "
                                f"{self.xy(cf, cc - r)} -- {self.xy(cf, cc + r)};")
            elif kind == G.SWAP:
                # The two wires cross inside the swap's own rank.
                a, b = c + C * 1 / 3, c + C * 2 / 3
                self.out.append(f"\\draw[wire] {self.xy(f, a)} to[flow] {self.xy(f + F, b)};")
                self.out.append(f"\\draw[wire] {self.xy(f, b)} to[flow] {self.xy(f + F, a)};")

    def trapezoid(self, f: float, c: float, F: float, C: float, wide_out: bool, box: str) -> None:
        """A ``triv``/``proj`` box: full height on the side of its two wires, narrower on the other."""
        inset = C * 0.2
        near, far = (inset, 0.0) if wide_out else (0.0, inset)
        pts = [(f, c + near), (f + F, c + far), (f + F, c + C - far), (f, c + C - near)]
        self.out.append(f"\\draw[box={box}, rounded corners=0pt] {' -- '.join(self.xy(*p) for p in pts)} -- cycle;")

    def loops(self) -> None:
        """The feedback loops of traces: from each state output, over the cell, back to its input.

        Loop ``k`` runs in the ``k``-th band from the contents (the first
        state wire innermost) and turns ``LOOP_STEP`` further out than the
        loop inside it, so the loops of one trace never cross.
        """
        side = "above" if self.lr else "left"
        clusters = {cl.id: cl for cl in self.g.graph["clusters"]}
        for n, d in self.g.nodes(data=True):
            if d["kind"] != G.TRACE_OUT:
                continue
            start = d["partner"]
            loops = sum(1 for _, e in self.g.nodes(data=True) if e["kind"] == G.TRACE_IN and e["cluster"] == d["cluster"])
            k = d["loop"]
            f1, c1, _, _ = self.L.nodes[n]
            f0, c0, _, _ = self.L.nodes[start]
            cf, cc, _, _ = self.L.clusters[clusters[d["cluster"]].id]
            top = cc + PAD + (TITLE if self.lr else 0.0)
            line = top + (loops - 1 - k + 0.5) * LOOP
            out, back = f1 + (k + 1) * LOOP_STEP, f0 - (k + 1) * LOOP_STEP
            label = f"node[wirelabel, {side}, pos=0.5] {{{tex(d['label'])}}}"
            pts = [(f1, c1), (out, c1), (out, line), (back, line), (back, c0), (f0, c0)]
            path = " -- ".join(self.xy(*p) for p in pts[:3])
            self.out.append(f"\\draw[wire, rounded corners=3pt] {path} -- {self.xy(*pts[3])} {label} "
                            f"-- {' -- '.join(self.xy(*p) for p in pts[4:])};")

    def params(self) -> None:
        """Parameter wires: a stub into each box across the flow, counts at the free end."""
        side = "above" if self.lr else "left"
        for n, d in self.g.nodes(data=True):
            if d["kind"] != G.PARAM:
                continue
            target = d["target"]
            f, c, F, C = self.L.nodes[target]
            mid = f + F / 2
            reach = LANE * 0.55  # the stub; the count is written beyond its end
            start = (mid, c - reach)
            label = f"node[paramlabel, {side}] {{{tex(d['label'])}}}"
            succ = list(self.g.successors(n))
            if self.g.nodes[succ[0]]["kind"] == G.BOX:
                self.out.append(f"\\draw[param] {self.xy(*start)} {label} -- {self.xy(mid, c)};")
                continue
            dot = succ[0]
            knot = (mid, c - reach / 2)
            self.out.append(f"\\draw[param] {self.xy(*start)} {label} -- {self.xy(mid, c)};")
            self.out.append(f"\\fill[paramcolor] {self.xy(*knot)} circle (1.6pt);")
            for u in self.g.successors(dot):
                if u == target:
                    continue
                uf, uc, uF, uC = self.L.nodes[u]
                um = uf + uF / 2
                gap_start, band_start = self.L.bands[u]
                turn = (gap_start + band_start) / 2
                lane = uc - reach / 2
                pts = [knot, (turn, knot[1]), (turn, lane), (um, lane), (um, uc)]
                self.out.append(f"\\draw[param, rounded corners=3pt] {' -- '.join(self.xy(*p) for p in pts)};")


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
    w.wires()
    w.nodes()
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
