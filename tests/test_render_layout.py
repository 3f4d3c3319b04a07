"""The TikZ layout draws a readable string diagram: no overlaps, no backward wires but a wrapped row's returns."""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

import pytest
from conftest import EXAMPLES

import catnet
from catnet.render import graph as G
from catnet.render.layout import Layout, layout, page_width
from catnet.render.style import Options
from catnet.render.tikz import MARGIN

IDS = [p.stem for p in EXAMPLES]
EPS = 1e-6
CASES = [
    (p, kw)
    for p in EXAMPLES
    for kw in ({}, {"params": True}, {"depth": 0}, {"lr": False}, {"lr": False, "params": True})
]


def _layout(path: Path, params: bool = False, depth: int | None = None, lr: bool = True) -> tuple[Layout, object]:
    """``path`` laid out as the TikZ back end lays it out, on the default page."""
    module = catnet.load(str(path))
    g = G.build(module.diagram(), name=module.entry_name(), depth=depth, params=params)
    opts = Options()
    return layout(g, lr=lr, width=page_width(opts.width) - MARGIN, max_aspect=opts.max_aspect), g


def _overlap(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    """Rectangles (f, c, F, C) share interior."""
    return a[0] + a[2] > b[0] + EPS and b[0] + b[2] > a[0] + EPS and a[1] + a[3] > b[1] + EPS and b[1] + b[3] > a[1] + EPS


def _inside(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    return a[0] >= b[0] - EPS and a[1] >= b[1] - EPS and a[0] + a[2] <= b[0] + b[2] + EPS and a[1] + a[3] <= b[1] + b[3] + EPS


def _ids(case: tuple) -> str:
    path, kw = case
    return path.stem + "".join(f"-{k}={v}" for k, v in kw.items())


@pytest.mark.parametrize("case", CASES, ids=[_ids(c) for c in CASES])
def test_layout_is_a_readable_string_diagram(case: tuple) -> None:
    path, kw = case
    L, g = _layout(path, **kw)
    boxes = {n: r for n, r in L.nodes.items() if g.nodes[n]["kind"] == G.BOX}
    names = sorted(boxes)
    # Boxes do not overlap one another.
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert not _overlap(boxes[a], boxes[b]), (a, b)
    # Every node lies inside its nested box, every nested box inside its parent.
    parent = {c.id: c.parent for c in g.graph["clusters"]}
    for n, r in L.nodes.items():
        c = g.nodes[n]["cluster"]
        if c is not None:
            assert _inside(r, L.clusters[c]), n
    for c, p in parent.items():
        if p is not None:
            assert _inside(L.clusters[c], L.clusters[p]), c
    # Sibling nested boxes do not overlap, nor do boxes and nested boxes that do not hold them.
    for c, r in L.clusters.items():
        for n, box in boxes.items():
            if c not in G.cluster_path(g, g.nodes[n]["cluster"]):
                assert not _overlap(box, r), (n, c)
    # Wires never run backwards: each path goes forward along the flow,
    # except a return wire, where a row of a wrapped box ends: it runs back
    # straight, in a lane below the row, between two stretches across the flow.
    for w in L.wires:
        pts = L.paths[w.key]
        for i, (a, b) in enumerate(zip(pts, pts[1:])):
            if b[0] < a[0] - EPS:
                assert L.lr and abs(a[1] - b[1]) < EPS and 0 < i < len(pts) - 2, w
                assert abs(pts[i - 1][0] - a[0]) < EPS and abs(pts[i + 2][0] - b[0]) < EPS, w
    # A wire's label, where it is written, clears every box.
    for key, label in L.labels.items():
        for n, box in boxes.items():
            assert not _overlap(label, box), (key, n)


@pytest.mark.parametrize("path", EXAMPLES, ids=IDS)
def test_wires_enter_and_leave_in_order(path: Path) -> None:
    L, g = _layout(path)
    ins = sorted((d["index"], n) for n, d in g.nodes(data=True) if d["kind"] == G.INPUT)
    outs = sorted((d["index"], n) for n, d in g.nodes(data=True) if d["kind"] == G.OUTPUT)
    starts = [L.paths[next(w.key for w in L.wires if w.src == n)][0] for _, n in ins]
    ends = [L.paths[next(w.key for w in L.wires if w.dst == n)][-1] for _, n in outs]
    # Inputs all start on the first edge, outputs end on the last, in order across the flow.
    assert len({round(p[0], 6) for p in starts}) <= 1 and len({round(p[0], 6) for p in ends}) <= 1
    assert [p[1] for p in starts] == sorted(p[1] for p in starts)
    assert [p[1] for p in ends] == sorted(p[1] for p in ends)
    # The ports of every box are used in order across the flow.
    for n, d in g.nodes(data=True):
        if d["kind"] != G.BOX or d["n_in"] < 2:
            continue
        into = sorted((w.dport, L.paths[w.key][-1][1]) for w in L.wires if w.dst == n)
        assert [c for _, c in into] == sorted(c for _, c in into)


def test_a_long_chain_is_one_row_without_a_page_and_rows_on_one() -> None:
    n = 2000
    module = catnet.loads("morphism f : R[4] -> R[4] = " + " ; ".join(["relu"] * n) + "\n")
    g = G.build(module.diagram("f"), name="f")
    L = layout(g)
    boxes = sorted((r for m, r in L.nodes.items() if g.nodes[m]["kind"] == G.BOX), key=lambda r: r[0])
    assert len(boxes) == n
    assert len({round(r[1], 6) for r in boxes}) == 1  # one line across the flow
    assert all(b[0] >= a[0] + a[2] - EPS for a, b in zip(boxes, boxes[1:]))  # each after the one before
    # On a page, the chain reads like text: rows left to right, each below the one before.
    width = page_width(Options().width) - MARGIN
    L = layout(g, width=width, max_aspect=4.0)
    assert L.size[0] <= width and L.rows["c0"] > 10
    order = [L.nodes[m] for m, d in g.nodes(data=True) if d["kind"] == G.BOX]
    rows: list[list[tuple]] = []
    for r in order:
        if rows and abs(rows[-1][-1][1] - r[1]) < EPS:
            rows[-1].append(r)
        else:
            rows.append([r])
    assert len(rows) == L.rows["c0"]
    for row in rows:
        assert all(b[0] >= a[0] + a[2] - EPS for a, b in zip(row, row[1:]))
    for above, below in zip(rows, rows[1:]):
        assert below[0][1] > above[0][1] + above[0][3] and below[0][0] < above[-1][0]


def test_deep_nesting_needs_no_deep_recursion() -> None:
    lines = ["morphism g0 : R[4] -> R[4] = relu"]
    lines += [f"morphism g{i} : R[4] -> R[4] = g{i - 1} ; tanh" for i in range(1, 60)]
    g = G.build(catnet.loads("\n".join(lines) + "\n").diagram("g59"), name="top")
    parent = {c.id: c.parent for c in g.graph["clusters"]}
    levels = len(G.cluster_path(g, g.graph["clusters"][-1].id))
    assert levels >= 30  # as deep as a figure opens
    # Leave fewer spare frames than there are levels (the layout itself
    # needs about a dozen): a walk that recursed once per nested box fails.
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(len(inspect.stack()) + levels * 3 // 4)
    try:
        L = layout(g)
    finally:
        sys.setrecursionlimit(limit)
    for c, p in parent.items():
        if p is not None:
            assert _inside(L.clusters[c], L.clusters[p]), c
