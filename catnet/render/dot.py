"""The graph of a string diagram as Graphviz DOT text (a pure function).

:func:`to_dot` writes the graph of :mod:`catnet.render.graph` for ``dot``:

- boxes are rounded boxes with one port per wire, so the wires of the domain
  enter on one side and those of the codomain leave on the other, in order;
- ``copy`` and ``discard`` are black dots, ``add`` is a small ⊕, ``swap`` is a
  point where the two wires cross;
- nested boxes are clusters, shaded one step darker per level;
- an isomorphism's name is followed by a small grey ↔, an inverse's by ⁻¹;
  ``inv(f)`` is the mirror image of ``f`` (see :mod:`catnet.render.graph`);
- a bundle wire is doubled (``color="black:white:black"``); ``triv`` is a
  trapezoid that widens from the bundle wire to its base and fiber wires,
  ``proj`` and ``inv(triv)`` one that narrows to their single wire;
- a trace (``scan``) feeds each state wire back: a loop from the cell's
  state output to its state input, labelled with the state's name, that
  does not constrain the layout;
- wires have no arrow heads; a wire is labelled by its object where it is
  made, not again after a dot that only copies it;
- parameter wires (Para view) enter each box across the flow of data: from
  the top when data flows left to right;
- a G-space wire says its action on a second, smaller line
  (``C4: regular × 8``); an equivariant generator and a definition with a
  claim carry a badge (``C4``, ``C4-invariant``): see
  :mod:`catnet.render.symmetry`.

The text depends only on the graph and the options (no set order, no
floating point formatting of computed values), so one diagram always gives
byte-identical DOT.
"""

from __future__ import annotations

import math

import networkx as nx

from . import graph as G
from .style import CLUSTER_BORDER, ISO_COLOR, ISO_MARK, SYMMETRY_COLOR, Options, box_style, cluster_fill, wire_style
from .symmetry import action_text, claim_text

FONT = "Helvetica"
WIRE_FONT = "Helvetica-Oblique"


def _q(text: str) -> str:
    """A DOT double-quoted string."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _attrs(pairs: list[tuple[str, str]]) -> str:
    return "[" + ", ".join(f"{k}={v}" for k, v in pairs) + "]"


def _badge_text(data: dict) -> str:
    """What a box's badge says: its group (equivariant by construction) or its claim; ``""`` for none."""
    return claim_text(data["claim"]) if data.get("claim") else data.get("badge", "")


def _badge(text: str) -> str:
    """A small framed tag in the symmetry colour."""
    return (f'<TABLE BORDER="1" CELLBORDER="0" CELLSPACING="0" CELLPADDING="1" STYLE="rounded" COLOR="{SYMMETRY_COLOR}">'
            f'<TR><TD><FONT POINT-SIZE="7" COLOR="{SYMMETRY_COLOR}">{_html(text)}</FONT></TD></TR></TABLE>')


def _title(data: dict) -> str:
    """A box's name (bold for a definition), its mark, the iso mark, its badge, its detail line.

    A badge is a table of its own, so a box with one is laid out as a
    table: the name and the badge side by side, the detail line under them.
    """
    title = f"<B>{_html(data['label'])}</B>" if data["style"] in ("composite", "repeat") else _html(data["label"])
    if data["mark"]:
        title += f' <FONT POINT-SIZE="10">{_html(data["mark"])}</FONT>'
    if data.get("iso") and not data.get("inverted"):
        title += f' <FONT POINT-SIZE="9" COLOR="{ISO_COLOR}">{ISO_MARK}</FONT>'
    badge = _badge_text(data)
    if badge:
        rows = f'<TR><TD>{title}</TD><TD WIDTH="4"></TD><TD>{_badge(badge)}</TD></TR>'
        if data["detail"]:
            rows += f'<TR><TD COLSPAN="3"><FONT POINT-SIZE="8">{_html(data["detail"])}</FONT></TD></TR>'
        return f'<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="0">{rows}</TABLE>'
    if data["detail"]:
        title += f'<BR/><FONT POINT-SIZE="8">{_html(data["detail"])}</FONT>'
    return title


#: Points per character of a box name and of its detail line, generously,
#: for the fixed size of a trapezoid (its text must fit between the slants).
_CHAR_PT, _DETAIL_PT = 7.0, 5.0


def _trapezoid(data: dict, lr: bool) -> list[tuple[str, str]]:
    """A ``triv``/``proj`` box: a trapezoid, wide on the side of its two wires.

    The node has a fixed size and its label is a table of exactly that size,
    so the port cells lie on the trapezoid's parallel sides: the wires meet
    the outline rather than run into the box.
    """
    n, m = data["n_in"], data["n_out"]
    text = len(data["label"]) + len(data["mark"]) + (2 if data.get("iso") and not data.get("inverted") else 0)
    text += len(_badge_text(data)) + (2 if _badge_text(data) else 0)
    along = max(62.0, _CHAR_PT * text + 34, _DETAIL_PT * len(data["detail"]) + 34)
    across = max(44.0, 22.0 * max(n, m)) + (12 if data["detail"] else 0)
    wide_out = data["split"] == "split"
    if lr:
        width, height, orientation = along, across, 90 if wide_out else 270
    else:
        width, height, orientation = along, across, 0 if wide_out else 180
    w, h = round(width), round(height)

    def ports(name: str, count: int) -> list[str]:
        if lr:
            return [f'<TD PORT="{name}{i}" WIDTH="1" HEIGHT="{h // max(count, 1)}"></TD>' for i in range(count)]
        return [f'<TD PORT="{name}{i}" WIDTH="{w // max(count, 1)}" HEIGHT="1"></TD>' for i in range(count)]

    ins, outs = ports("i", n), ports("o", m)
    span = math.lcm(max(n, 1), max(m, 1))
    if lr:
        rows: list[list[str]] = [[] for _ in range(span)]
        for i, cell in enumerate(ins):
            rows[i * (span // n)].append(cell.replace("<TD ", f'<TD ROWSPAN="{span // n}" '))
        rows[0].append(f'<TD ROWSPAN="{span}" WIDTH="{w - 2}">{_title(data)}</TD>')
        for j, cell in enumerate(outs):
            rows[j * (span // m)].append(cell.replace("<TD ", f'<TD ROWSPAN="{span // m}" '))
    else:
        ins = [cell.replace("<TD ", f'<TD COLSPAN="{span // n}" ') for cell in ins]
        outs = [cell.replace("<TD ", f'<TD COLSPAN="{span // m}" ') for cell in outs]
        rows = [ins, [f'<TD COLSPAN="{span}" HEIGHT="{h - 2}">{_title(data)}</TD>'], outs]
        rows = [r for r in rows if r]
    body = "".join("<TR>" + "".join(r) + "</TR>" for r in rows)
    style = box_style(data["style"])
    table = (f'<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="0" FIXEDSIZE="TRUE" WIDTH="{w}"'
             f' HEIGHT="{h}">{body}</TABLE>>')
    return [("shape", "trapezium"), ("orientation", str(orientation)), ("fixedsize", "true"),
            ("width", f"{w / 72:.3f}"), ("height", f"{h / 72:.3f}"), ("margin", "0"),
            ("style", "filled"), ("fillcolor", _q(style.fill)), ("color", _q(style.border)),
            ("penwidth", f"{style.width:g}"), ("label", table)]


def _box_label(data: dict, lr: bool) -> str:
    """An HTML-like table: port cells for the inputs, the name, port cells for the outputs."""
    n, m = data["n_in"], data["n_out"]
    span = math.lcm(max(n, 1), max(m, 1))
    title = _title(data)
    style = box_style(data["style"])
    label_cell = f'<TD {"ROWSPAN" if lr else "COLSPAN"}="{span}" CELLPADDING="5">{title}</TD>'

    def port(name: str, count: int, i: int) -> str:
        extent = "ROWSPAN" if lr else "COLSPAN"
        return f'<TD PORT="{name}{i}" {extent}="{span // count}" WIDTH="2" HEIGHT="2"></TD>'

    if lr:
        rows: list[list[str]] = [[] for _ in range(span)]
        for i in range(n):
            rows[i * (span // n)].append(port("i", n, i))
        rows[0].append(label_cell)
        for j in range(m):
            rows[j * (span // m)].append(port("o", m, j))
    else:
        rows = [[port("i", n, i) for i in range(n)], [label_cell], [port("o", m, j) for j in range(m)]]
        rows = [r for r in rows if r]
    body = "".join("<TR>" + "".join(r) + "</TR>" for r in rows)
    border = 3 if style.double else 1
    rounded = ' STYLE="rounded"' if style.rounded else ""
    return (f'<<TABLE BORDER="{border}" CELLBORDER="0" CELLSPACING="0" CELLPADDING="0"{rounded}'
            f' BGCOLOR="{style.fill}" COLOR="{style.border}">{body}</TABLE>>')


def _node(nid: str, data: dict, lr: bool) -> str:
    kind = data["kind"]
    if kind == G.BOX and data.get("split"):
        attrs = _trapezoid(data, lr)
    elif kind == G.BOX:
        attrs = [("shape", "plain"), ("label", _box_label(data, lr))]
    elif kind in (G.COPY, G.DISCARD):
        color = wire_style(G.PARAMETER).color if data["style"] == "param_copy" else "#000000"
        attrs = [("shape", "point"), ("width", "0.08"), ("color", _q(color)), ("label", '""')]
    elif kind == G.ADD:
        attrs = [("shape", "circle"), ("label", '"+"'), ("width", "0.22"), ("fixedsize", "true"), ("fontsize", "12"),
                 ("margin", "0")]
    elif kind == G.PARAM:
        # The free end of a parameter wire says how many scalars it carries.
        ws = wire_style(G.PARAMETER)
        attrs = [("shape", "plaintext"), ("label", _q(data["label"])), ("fontname", _q(WIRE_FONT)), ("fontsize", "8"),
                 ("fontcolor", _q(ws.color)), ("margin", "0"), ("width", "0"), ("height", "0")]
    else:
        # Free wire ends, waypoints and swaps are points the wires run into;
        # at a swap the two wires meet and cross.
        attrs = [("shape", "point"), ("width", "0.01"), ("style", "invis")]
    return f"{nid} {_attrs(attrs)};"


def _end(nid: str, data: dict, port: int, out: bool, lr: bool) -> str:
    """An edge end: a box's port cell, its side for a parameter wire, or the node."""
    if data["kind"] == G.PARAM:
        return f"{nid}:{'s' if lr else 'e'}"
    if data["kind"] != G.BOX:
        return nid
    if port < 0:
        return f"{nid}:{'n' if lr else 'w'}"
    side = ("e" if lr else "s") if out else ("w" if lr else "n")
    return f"{nid}:{'o' if out else 'i'}{port}:{side}"


def _edge(g: nx.MultiDiGraph, u: str, v: str, data: dict, opts: Options) -> str:
    lr = opts.direction == "LR"
    ws = wire_style(data["style"])
    # A double wire is two lines of its colour with a white one between.
    color = f"{ws.color}:#ffffff:{ws.color}" if ws.double else ws.color
    attrs = [("color", _q(color)), ("penwidth", f"{ws.width:g}")]
    if ws.dashed:
        attrs.append(("style", "dashed"))
    if data["labelled"] and data["label"]:
        text = data["shape"] if opts.shapes else data["label"]
        label = _q(text)
        if data.get("action") is not None:
            # A G-space's action goes under its name, smaller and upright.
            label = (f'<{_html(text)}<BR/><FONT FACE="{FONT}" POINT-SIZE="8" COLOR="{SYMMETRY_COLOR}">'
                     f'{_html(action_text(data["action"]))}</FONT>>')
        attrs += [("label", label), ("fontcolor", _q(ws.color if data["kind"] == G.PARAMETER else "#333333"))]
    if data["kind"] == G.PARAMETER and g.nodes[v].get("kind") == G.BOX and g.nodes[u].get("target") != v:
        # Only the first user of a shared parameter sits in its source's
        # rank; the wires to the others must not pull them into it.
        attrs.append(("constraint", "false"))
    src = _end(u, g.nodes[u], data["src_port"], True, lr)
    dst = _end(v, g.nodes[v], data["dst_port"], False, lr)
    if data["kind"] == G.PARAMETER and lr:
        # dot puts the tail of a flat edge first in its rank, which is below
        # the head when ranks run left to right: write it head first so the
        # parameter source lands above its box.
        return f"{dst} -> {src} {_attrs(attrs)};"
    return f"{src} -> {dst} {_attrs(attrs)};"


def _feedback(nid: str, data: dict) -> str:
    """The loop of a trace: from where the cell returns its state back to where it starts.

    It does not take part in ranking (``constraint=false``), so the cell is
    laid out as if the loop were not there, and dot routes it around.
    """
    ws = wire_style("feedback")
    attrs = [("color", _q(ws.color)), ("penwidth", f"{ws.width:g}"), ("constraint", "false"),
             ("label", _q(data["label"])), ("fontcolor", _q("#333333"))]
    return f"{nid} -> {data['partner']} {_attrs(attrs)};"


def to_dot(g: nx.MultiDiGraph, opts: Options = Options()) -> str:
    """DOT text for ``g``: the same graph and options always give the same text."""
    lr = opts.direction == "LR"
    name = g.graph.get("name") or "diagram"
    clusters = g.graph["clusters"]
    children: dict[str | None, list[G.Cluster]] = {}
    for c in clusters:
        children.setdefault(c.parent, []).append(c)
    members: dict[str | None, list[str]] = {}
    hidden = G.hidden_swaps(g)
    for nid, data in g.nodes(data=True):
        if nid not in hidden:
            members.setdefault(data["cluster"], []).append(nid)
    # Parameter sources sit in the rank of the box they feed, so their wire
    # comes in from the side rather than along the flow.
    beside: dict[str, list[str]] = {}
    for nid, data in g.nodes(data=True):
        if data["kind"] == G.PARAM or data["style"] == "param_copy":
            beside.setdefault(data["target"], []).append(nid)

    out = [f"digraph {_q(name)} {{"]
    out.append(f"  graph {_attrs([('rankdir', opts.direction), ('newrank', 'true'), ('nodesep', '0.18'), ('ranksep', '0.3'), ('fontname', _q(FONT)), ('fontsize', '11'), ('labeljust', 'l'), ('penwidth', '0.8')])};")
    out.append(f"  node {_attrs([('fontname', _q(FONT)), ('fontsize', '11')])};")
    out.append(f"  edge {_attrs([('arrowhead', 'none'), ('fontname', _q(WIRE_FONT)), ('fontsize', '9')])};")

    def emit(cluster: str | None, level: int, indent: str) -> None:
        for nid in members.get(cluster, []):
            out.append(indent + _node(nid, g.nodes[nid], lr))
        for nid in members.get(cluster, []):
            if nid in beside:
                out.append(indent + "{rank=same; " + " ".join([*beside[nid], nid]) + ";}")
        for c in children.get(cluster, []):
            label = c.label + (f" {c.mark}" if c.mark else "")
            if c.shared and c.shared not in c.label.split(" = "):
                label += f" (shared {c.shared})"
            elif c.shared:
                label += " (shared)"
            title = _q(label)
            if c.claim is not None:
                # The claim is a badge after the title.
                title = (f'<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="0"><TR><TD>{_html(label)}</TD>'
                         f'<TD WIDTH="5"></TD><TD>{_badge(claim_text(c.claim))}</TD></TR></TABLE>>')
            attrs = [("label", title), ("style", '"rounded,filled"'), ("fillcolor", _q(cluster_fill(level + 1 if c.kind != "entry" else 0))),
                     ("color", _q(CLUSTER_BORDER if c.kind != "entry" else "#000000")), ("fontsize", "10" if c.kind != "entry" else "11")]
            if g.graph.get("params") and c.kind != "entry":
                # Parameter wires come in from the top; the title goes below
                # so that they do not cross it.
                attrs.append(("labelloc", "b"))
            out.append(f"{indent}subgraph cluster_{c.id} {{")
            out.append(f"{indent}  graph {_attrs(attrs)};")
            emit(c.id, level + (1 if c.kind != "entry" else 0), indent + "  ")
            out.append(f"{indent}}}")

    emit(None, 0, "  ")
    inputs = [n for n, d in g.nodes(data=True) if d["kind"] == G.INPUT]
    outputs = [n for n, d in g.nodes(data=True) if d["kind"] == G.OUTPUT]
    for rank, ends in (("min", inputs), ("max", outputs)):
        if ends:
            chain = "".join(f" {a} -> {b} [style=invis];" for a, b in zip(ends, ends[1:]))
            out.append(f"  {{rank={rank}; {'; '.join(ends)};{chain}}}")
    for u, v, data in g.edges(data=True):
        if v in hidden:
            continue
        if u in hidden:
            u = next(iter(g.predecessors(u)))
        out.append("  " + _edge(g, u, v, data, opts))
    starts = {c.id: c.inputs for c in clusters if c.kind == "scan"}
    for nid, data in g.nodes(data=True):
        if data["kind"] == G.TRACE_IN and starts.get(data["cluster"]):
            # A loop's start has no wire in: rank it after what feeds the
            # scan, or dot puts it level with the picture's inputs.
            src = starts[data["cluster"]][0][0]
            src = next(iter(g.predecessors(src))) if src in hidden else src
            out.append(f"  {src} -> {nid} [style=invis];")
        if data["kind"] == G.TRACE_OUT:
            out.append("  " + _feedback(nid, data))
    out.append("}")
    return "\n".join(out) + "\n"
