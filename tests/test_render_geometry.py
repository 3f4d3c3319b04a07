"""The TikZ figures fit a page and keep their text clear: geometry of the layout the TikZ is written from.

Every example, the transformer at depth 2 and twelve unrolled transformer
blocks are laid out as :func:`catnet.render.tikz.to_tikz` lays them out
(left to right, the default page), with and without the Para view, and
checked:

- the figure is at most the page width (so its smallest text, TikZ's
  ``\\scriptsize``, prints at 7 pt or more) and at most ``max_aspect`` times
  as wide as it is tall;
- no wire (curves flattened as TikZ draws them) crosses a wire label, a
  parameter count or a nested box's title, and labels overlap no box, no
  title and no other label;
- every parameter wire stays inside the outermost box;
- a swap's two wires cross exactly once.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import EXAMPLES, ROOT

import catnet
from catnet.ir import Box, Ty
from catnet.render import graph as G
from catnet.render.layout import Layout, flatten, layout, page_width, swap_strands
from catnet.render.style import MIN_FONT, Options
from catnet.render.tikz import MARGIN, to_tikz

EPS = 0.01  # centimetres: touching is not crossing

Rect = tuple[float, float, float, float]
Point = tuple[float, float]


def _blocks(n: int) -> str:
    """``examples/transformer.cat`` with an entry of ``n`` unrolled blocks."""
    text = (ROOT / "examples" / "transformer.cat").read_text(encoding="utf-8")
    text = text.replace("main encoder", "")
    chain = " ; ".join(["embed(vocab=256)"] + ["block"] * n + ["layernorm", "dense"])
    return text + f"\nmorphism deep : Tokens -> Logits = {chain}\nmain deep\n"


def _module(case: str) -> catnet.Module:
    if case == "deep12":
        return catnet.loads(_blocks(12))
    return catnet.load(str(ROOT / "examples" / f"{case}.cat"))


CASES = [(p.stem, None) for p in EXAMPLES] + [("transformer", 2), ("deep12", None)]
IDS = [f"{name}-depth{depth}" if depth is not None else name for name, depth in CASES]


def _laid_out(case: str, depth: int | None, params: bool, opts: Options = Options()) -> tuple[Layout, object]:
    module = _module(case)
    g = G.build(module.diagram(), name=module.entry_name(), depth=depth, params=params)
    # exactly as the TikZ back end lays it out
    L = layout(g, opts.direction == "LR", opts.shapes, width=page_width(opts.width) - MARGIN, max_aspect=opts.max_aspect)
    return L, g


def _crosses(a: Point, b: Point, r: Rect) -> bool:
    """Whether segment ``ab`` enters the interior of rectangle ``r`` (f, c, F, C), shrunk by EPS."""
    f0, c0, f1, c1 = r[0] + EPS, r[1] + EPS, r[0] + r[2] - EPS, r[1] + r[3] - EPS
    if f0 >= f1 or c0 >= c1:
        return False
    t0, t1 = 0.0, 1.0
    d = (b[0] - a[0], b[1] - a[1])
    for p, q in ((-d[0], a[0] - f0), (d[0], f1 - a[0]), (-d[1], a[1] - c0), (d[1], c1 - a[1])):
        if abs(p) < 1e-12:
            if q < 0:
                return False
            continue
        t = q / p
        if p < 0:
            t0 = max(t0, t)
        else:
            t1 = min(t1, t)
        if t0 > t1:
            return False
    return True


def _overlap(a: Rect, b: Rect) -> bool:
    return (a[0] + a[2] > b[0] + EPS and b[0] + b[2] > a[0] + EPS
            and a[1] + a[3] > b[1] + EPS and b[1] + b[3] > a[1] + EPS)


def _inside(p: Point, r: Rect) -> bool:
    return r[0] - EPS <= p[0] <= r[0] + r[2] + EPS and r[1] - EPS <= p[1] <= r[1] + r[3] + EPS


def _segments(L: Layout) -> list[tuple[int | str, Point, Point]]:
    """Every straight piece of every wire as drawn (wire key, or a stub's source), curves flattened."""
    out: list[tuple[int | str, Point, Point]] = []
    for w in L.wires:
        line = flatten(L.paths[w.key], L.kinds[w.key])
        out += [(w.key, a, b) for a, b in zip(line, line[1:])]
    for p, (free, on) in L.stubs.items():
        out.append((p, free, on))
    return out


def _crossing_count(p: list[Point], q: list[Point]) -> int:
    def cross(o: Point, a: Point, b: Point) -> float:
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    count = 0
    for a, b in zip(p, p[1:]):
        for c, d in zip(q, q[1:]):
            d1, d2 = cross(c, d, a), cross(c, d, b)
            d3, d4 = cross(a, b, c), cross(a, b, d)
            if (d1 > 0) != (d2 > 0) and (d3 > 0) != (d4 > 0) and min(abs(d1), abs(d2), abs(d3), abs(d4)) > 1e-12:
                count += 1
    return count


@pytest.mark.parametrize("params", [False, True], ids=["data", "params"])
@pytest.mark.parametrize("case,depth", CASES, ids=IDS)
def test_figure_fits_the_page_and_keeps_its_text_clear(case: str, depth: int | None, params: bool) -> None:
    opts = Options()
    L, g = _laid_out(case, depth, params, opts)
    F, C = L.size
    # The page: \scriptsize (7 pt) prints at 7 pt or more when the picture is
    # placed at its natural size, which is at most the page width.
    assert F <= page_width(opts.width) - MARGIN + 1e-6, (F, page_width(opts.width))
    assert MIN_FONT == 7.0
    assert F <= opts.max_aspect * C + 1e-6, (F, C)

    boxes = {n: r for n, r in L.nodes.items() if g.nodes[n]["kind"] in (G.BOX, G.ADD)}
    texts: list[tuple[str, object, Rect]] = [("label", key, r) for key, r in L.labels.items()]
    texts += [("title", cid, r) for cid, r in L.titles.items()]
    texts += [("count", p, r) for p, r in L.counts.items()]
    # every labelled wire has its label, once
    assert set(L.labels) == {w.key for w in L.wires if w.labelled and w.label}
    # no wire crosses a label, a count or a title (a wire's own label sits on it)
    for key, a, b in _segments(L):
        for kind, owner, r in texts:
            if owner == key:
                continue
            assert not _crosses(a, b, r), (kind, owner, key, a, b)
    # text overlaps no box and no other text
    for i, (kind, owner, r) in enumerate(texts):
        for n, box in boxes.items():
            assert not _overlap(r, box), (kind, owner, n)
        for kind2, owner2, r2 in texts[i + 1 :]:
            if kind == kind2 == "title":
                continue  # a nested box's title is inside its parent's, below the parent's title band
            assert not _overlap(r, r2), (kind, owner, kind2, owner2)
    # parameter wires stay inside the outermost box
    entry = next(cl.id for cl in g.graph["clusters"] if cl.kind == "entry")
    outer = L.clusters[entry]
    for w in L.wires:
        if w.style == G.PARAMETER:
            assert all(_inside(p, outer) for p in L.paths[w.key]), w
    for free, on in L.stubs.values():
        assert _inside(free, outer) and _inside(on, outer)
    for r in L.counts.values():
        assert _inside((r[0], r[1]), outer) and _inside((r[0] + r[2], r[1] + r[3]), outer)


def test_wide_figures_wrap_into_rows() -> None:
    L, _ = _laid_out("deep12", None, False)
    assert L.rows[None] == 1 and max(L.rows.values()) > 2
    # without a page, nothing wraps: a strip many times wider than the page
    module = _module("deep12")
    g = G.build(module.diagram(), name=module.entry_name())
    strip = layout(g)
    assert all(n == 1 for n in strip.rows.values())
    assert strip.size[0] > 5 * page_width(Options().width)


def test_return_wires_are_the_only_ones_that_run_back() -> None:
    """A wire runs forward along the flow, except from the end of a row back to the start of the next."""
    for case, depth in (("transformer", 2), ("deep12", None), ("siamese", None)):
        L, _ = _laid_out(case, depth, True)
        for w in L.wires:
            pts, kinds = L.paths[w.key], L.kinds[w.key]
            for i, (a, b) in enumerate(zip(pts, pts[1:])):
                if b[0] < a[0] - 1e-9:
                    # a return: a straight stretch between two stretches across the flow
                    assert kinds[i] == "-" and abs(a[1] - b[1]) < 1e-9, (case, w)
                    assert abs(pts[i - 1][0] - a[0]) < 1e-9 and abs(pts[i + 2][0] - b[0]) < 1e-9, (case, w)
                    assert pts[i - 1][1] < a[1] and pts[i + 2][1] > b[1], (case, w)


def test_a_narrower_page_gives_a_narrower_figure() -> None:
    opts = Options(width=3.25 * 72)  # one column of a two-column paper
    for depth in (1, 2):
        wide, _ = _laid_out("transformer", depth, False)
        narrow, _ = _laid_out("transformer", depth, False, opts)
        assert narrow.size[0] < wide.size[0]
        # Every rank of `block` is a row of its own: nothing wraps further.
        assert narrow.rows[next(iter(narrow.clusters))] >= 4
    for case, params in (("digits_cnn", True), ("siamese", False), ("autoencoder", True)):
        narrow, _ = _laid_out(case, None, params, opts)
        assert narrow.size[0] <= page_width(opts.width) - MARGIN + 1e-6, case


def test_a_strip_wraps_to_its_aspect() -> None:
    text = "object A = R[8]\nmorphism f : A -> A = " + " ; ".join(["dense(features=8)", "relu"] * 4) + "\n"
    g = G.build(catnet.loads(text).diagram("f"), name="f")
    free = layout(g)
    assert free.size[0] > 4 * free.size[1]  # one row: a strip
    opts = Options()
    L = layout(g, width=page_width(opts.width) - MARGIN, max_aspect=opts.max_aspect)
    assert L.size[0] <= opts.max_aspect * L.size[1] + 1e-6 and L.rows["c0"] > 1


def test_a_swap_is_two_wires_that_cross_once() -> None:
    A = Ty.tensor_space("R", (4,), "A")
    B = Ty.tensor_space("R", (3,), "B")
    f = Box("dense", A, B, args=(("features", 3),)).diagram()
    g_ = Box("relu", A, A).diagram()
    swap = Box("swap", B @ A, A @ B, kind="structural").diagram()
    h = Box("tanh", A, A).diagram()
    k = Box("gelu", B, B).diagram()
    d = (f @ g_).then(swap, h @ k)
    g = G.build(d)
    L = layout(g)
    (node,) = [n for n, data in g.nodes(data=True) if data["kind"] == G.SWAP]
    strands = swap_strands(L.nodes[node])
    # each strand continues a wire in and a wire out: port 0 in -> port 1 out, port 1 in -> port 0 out
    into = {w.dport: w for w in L.wires if w.dst == node}
    out = {w.sport: w for w in L.wires if w.src == node}
    whole = []
    for (pts, kinds), (i, j) in zip(strands, ((0, 1), (1, 0))):
        line = flatten(L.paths[into[i].key], L.kinds[into[i].key])
        assert line[-1] == pytest.approx(pts[0])
        line += flatten(pts, kinds, steps=15)[1:]  # odd: the strands meet between vertices
        tail = flatten(L.paths[out[j].key], L.kinds[out[j].key])
        assert tail[0] == pytest.approx(pts[-1])
        whole.append(line + tail[1:])
    assert _crossing_count(*whole) == 1
    # and the TikZ draws the two strands
    tex = to_tikz(g)
    assert tex.count(".. controls") >= 2


def test_wires_end_on_node_anchors() -> None:
    tex = catnet.render(str(ROOT / "examples" / "transformer.cat"), format="tex", depth=1, params=True)
    assert "n0.east" in tex and "n0.north" in tex  # embed's output wire and parameter stub
    assert "\\coordinate (n" in tex  # dots and ⊕ are named points the wires start from
    assert "to[flow]" not in tex


def test_twelve_blocks_render_in_a_fresh_process_quickly(tmp_path: Path) -> None:
    src = tmp_path / "deep.cat"
    src.write_text(_blocks(12), encoding="utf-8")
    best = float("inf")
    for _ in range(2):
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "catnet", "render", str(src), "-o", str(tmp_path / "deep.tex")],
                              cwd=ROOT, capture_output=True, text=True)
        best = min(best, time.perf_counter() - start)
        assert proc.returncode == 0, proc.stderr
    assert best < 2.0, best
