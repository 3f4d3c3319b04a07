"""Drawing isomorphisms, inverses, traces and bundles: the conventions and their goldens.

- ``inv(f)`` is the mirror image of ``f``: its boxes last to first, each
  marked ``⁻¹``, opening with ``depth`` like the definition it inverts;
- ``scan[S](cell)`` is its cell in a nested box with the state fed back on a
  loop labelled ``S`` (the graph stays acyclic: the loop joins two ends);
- a bundle wire is doubled; ``triv`` widens from it to base and fiber,
  ``proj`` and ``inv(triv)`` narrow back;
- an isomorphism carries a small ↔.

Goldens are ``tests/golden/render/flows_*.dot`` / ``.tex``.
"""

from __future__ import annotations

import re
from pathlib import Path

import networkx as nx
import pytest

import catnet
from catnet.render import graph as G
from catnet.render import render

from conftest import ROOT, golden

GOLDEN = Path(__file__).resolve().parent / "golden" / "render"

FLOW = """
object X = R[2]
morphism step : X -> X = coupling ; reverse
morphism flow : X -> X = repeat 2 step
morphism sampler : X -> X = inv(flow)
morphism pair : X -> X = inv(coupling ; reverse)
main flow
"""

BUNDLE = """
object Core = R[2]
object Tube = R[2]
bundle Torus = Tube over Core
morphism chart : Torus -> Core ⊗ Tube = triv(prior="circle")
morphism base : Torus -> Core = proj
morphism fiber : Core ⊗ Tube -> Torus = inv(chart)
morphism roundtrip : Torus -> Torus = chart ; fiber
main chart
"""

TWO_STATES = """
object State = R[4]
object Mem = R[4]
morphism cell(h : State, m : Mem, x : R[3]) -> State ⊗ Mem ⊗ R[2] {
  a = tanh(dense(concat(h, x)))
  b = m + dense(a)
  return a, b, dense(concat(a, b))
}
morphism net : R[5, 3] -> R[5, 2] = scan[State ⊗ Mem](cell)
main net
"""

SOURCES = {"flow": FLOW, "bundle": BUNDLE, "scan2": TWO_STATES}

#: (golden name, source, definition drawn, keyword arguments)
CASES = [
    ("flows_flow", "flow", "flow", {}),
    ("flows_inv", "flow", "sampler", {}),
    ("flows_inv.depth1", "flow", "sampler", {"depth": 1}),
    ("flows_inv.depth0", "flow", "sampler", {"depth": 0}),
    ("flows_inv_pair", "flow", "pair", {}),
    ("flows_inv_pair.depth0", "flow", "pair", {"depth": 0}),
    ("flows_bundle_roundtrip", "bundle", "roundtrip", {}),
    ("flows_bundle_proj", "bundle", "base", {}),
    ("flows_bundle_roundtrip.tb.params", "bundle", "roundtrip", {"direction": "TB", "params": True}),
    ("flows_rnn", None, None, {}),
    ("flows_rnn.depth0", None, None, {"depth": 0}),
    ("flows_rnn.tb", None, None, {"direction": "TB"}),
    ("flows_scan2", "scan2", "net", {}),
]


@pytest.fixture(scope="module")
def modules(tmp_path_factory: pytest.TempPathFactory) -> dict[str, catnet.Module]:
    d = tmp_path_factory.mktemp("flows")
    out = {}
    for name, text in SOURCES.items():
        path = d / f"{name}.cat"
        path.write_text(text, encoding="utf-8")
        out[name] = catnet.load(path)
    out[None] = catnet.load(ROOT / "examples" / "rnn.cat")  # type: ignore[index]
    return out


def _graph(modules: dict, source: str | None, name: str | None, **kwargs: object) -> nx.MultiDiGraph:
    module = modules[source]
    name = name or module.entry_name()
    return G.build(module.diagram(name), name=name, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_golden_dot_and_tikz(case: tuple, modules: dict) -> None:
    stem, source, name, kwargs = case
    module = modules[source]
    dot = render(module, morphism=name, format="dot", **kwargs)
    tex = render(module, morphism=name, format="tex", **kwargs)
    assert isinstance(dot, str) and isinstance(tex, str)
    golden(GOLDEN / f"{stem}.dot", dot)
    golden(GOLDEN / f"{stem}.tex", tex)
    # Deterministic: the same input, byte for byte the same drawing.
    assert render(module, morphism=name, format="dot", **kwargs) == dot
    assert render(module, morphism=name, format="tex", **kwargs) == tex


# -- inv: the mirror image ------------------------------------------------------------


def test_inverse_is_the_mirror_image(modules: dict) -> None:
    forward = _graph(modules, "flow", "flow")
    backward = _graph(modules, "flow", "sampler")
    boxes = lambda g: [d["label"] for _, d in g.nodes(data=True) if d["kind"] == G.BOX]  # noqa: E731
    assert boxes(forward) == ["coupling", "reverse"]
    assert boxes(backward) == ["reverse⁻¹", "coupling⁻¹"]
    assert all(d["inverted"] and d["iso"] for _, d in backward.nodes(data=True) if d["kind"] == G.BOX)
    # The definitions it passes through are mirrored too, and named so.
    clusters = [(c.label, c.kind, c.mark, c.inverted) for c in backward.graph["clusters"] if c.kind != "entry"]
    assert clusters == [("flow⁻¹", "composite", "", True), ("step⁻¹", "repeat", "×2", True)]
    # Wires run from the codomain of flow to its domain: in, reverse⁻¹, coupling⁻¹, out.
    order = list(nx.topological_sort(backward))
    assert [backward.nodes[n]["label"] for n in order if backward.nodes[n]["kind"] == G.BOX] == ["reverse⁻¹", "coupling⁻¹"]


def test_inverse_opens_with_depth_like_the_definition(modules: dict) -> None:
    def shown(depth: int | None) -> tuple[list[str], list[str]]:
        g = _graph(modules, "flow", "sampler", depth=depth)
        return ([c.label + c.mark for c in g.graph["clusters"] if c.kind != "entry"],
                [d["label"] + d["mark"] for _, d in g.nodes(data=True) if d["kind"] == G.BOX])

    assert shown(0) == ([], ["flow⁻¹"])
    assert shown(1) == (["flow⁻¹"], ["step⁻¹×2"])
    assert shown(2) == (["flow⁻¹", "step⁻¹×2"], ["reverse⁻¹", "coupling⁻¹"])
    assert shown(None) == shown(2)
    # The inverse of several boxes is a nested box of its own, or one box when closed.
    g = _graph(modules, "flow", "pair")
    assert [(c.label, c.kind) for c in g.graph["clusters"]][1:] == [("(coupling ; reverse)⁻¹", "inv")]
    g = _graph(modules, "flow", "pair", depth=0)
    (box,) = [d for _, d in g.nodes(data=True) if d["kind"] == G.BOX]
    assert box["label"] == "(coupling ; reverse)⁻¹" and box["style"] == "inv"


def test_isos_are_marked_and_only_they(modules: dict) -> None:
    g = _graph(modules, "flow", "flow")
    assert all(d["iso"] for _, d in g.nodes(data=True) if d["kind"] == G.BOX)
    assert "↔" in render(modules["flow"], morphism="flow", format="dot")
    assert "$\\leftrightarrow$" in render(modules["flow"], morphism="flow", format="tex")
    rnn = _graph(modules, None, None)
    assert not any(d["iso"] for _, d in rnn.nodes(data=True))
    assert "↔" not in render(modules[None], format="dot")
    # An inverse says ⁻¹ instead of ↔.
    dot = render(modules["flow"], morphism="sampler", format="dot")
    assert "↔" not in dot and "coupling⁻¹" in dot
    assert "coupling$^{-1}$" in render(modules["flow"], morphism="sampler", format="tex")


# -- scan: the cell with its state fed back ------------------------------------------


def test_scan_is_its_cell_with_a_loop_per_state_wire(modules: dict) -> None:
    g = _graph(modules, "scan2", "net")
    assert nx.is_directed_acyclic_graph(g)
    (scan,) = [c for c in g.graph["clusters"] if c.kind == "scan"]
    assert scan.label == "scan[State ⊗ Mem]"
    starts = [n for n, d in g.nodes(data=True) if d["kind"] == G.TRACE_IN]
    ends = [(n, d) for n, d in g.nodes(data=True) if d["kind"] == G.TRACE_OUT]
    assert len(starts) == 2 and [d["partner"] for _, d in ends] == starts
    assert [d["label"] for _, d in ends] == ["State", "Mem"]
    assert all(g.nodes[n]["cluster"] == scan.id for n in starts)
    # The scan's own wires (the sequences) are its only way in and out.
    assert len(scan.inputs) == 1 and len(scan.outputs) == 1
    dot = render(modules["scan2"], format="dot")
    for end, data in ends:
        assert re.search(rf'\[id="{end}.loop", pos="[^"]*", color="#000000", penwidth=0.8, label="{data["label"]}"', dot)
    tex = render(modules["scan2"], format="tex")
    assert tex.count("rounded corners=3pt] ") >= 2 and "{State}" in tex and "{Mem}" in tex


def test_scan_opens_with_depth(modules: dict) -> None:
    closed = _graph(modules, None, None, depth=0)
    (box,) = [d for _, d in closed.nodes(data=True) if d["style"] == "scan"]
    assert box["label"] == "scan[State]" and box["detail"] == "cell"
    one = _graph(modules, None, None, depth=1)
    assert [(c.label, c.kind) for c in one.graph["clusters"]][1:] == [("scan[State]", "scan")]
    assert [d["label"] for _, d in one.nodes(data=True) if d["kind"] == G.BOX] == ["cell", "last", "dense"]
    full = _graph(modules, None, None)
    assert [(c.label, c.kind) for c in full.graph["clusters"]][1:] == [("scan[State]", "scan"), ("cell", "composite")]


# -- bundles --------------------------------------------------------------------------


def test_bundle_wires_are_doubled_and_triv_splits_them(modules: dict) -> None:
    g = _graph(modules, "bundle", "roundtrip")
    styles = sorted((d["label"], d["style"]) for _, _, d in g.edges(data=True))
    assert styles == [("Core", "data"), ("Torus", "bundle"), ("Torus", "bundle"), ("Tube", "data")]
    splits = [(d["label"], d["split"]) for _, d in g.nodes(data=True) if d["kind"] == G.BOX]
    assert splits == [("triv", "split"), ("triv⁻¹", "merge")]
    dot = render(modules["bundle"], morphism="roundtrip", format="dot")
    assert dot.count('color="#000000:#ffffff:#000000"') == 2
    assert "shape=trapezium, orientation=90" in dot and "shape=trapezium, orientation=270" in dot
    tex = render(modules["bundle"], morphism="roundtrip", format="tex")
    assert "bundle/.style={line width=0.8pt, double, double distance=1.2pt}" in tex
    assert tex.count("\\draw[bundle]") == 2 and tex.count("-- cycle;") == 2
    # A picture without bundles keeps its styles as they were.
    assert "bundle/.style" not in render(modules["flow"], format="tex")
    base = _graph(modules, "bundle", "base")
    assert [(d["label"], d["split"]) for _, d in base.nodes(data=True) if d["kind"] == G.BOX] == [("proj", "merge")]


def test_new_pictures_compile_with_graphviz(modules: dict) -> None:
    import shutil

    if shutil.which("dot") is None:
        pytest.skip("graphviz is not installed")
    for source, name in (("bundle", "roundtrip"), ("flow", "sampler"), ("scan2", "net"), (None, None)):
        svg = render(modules[source], morphism=name, format="svg")
        assert isinstance(svg, str) and svg.lstrip().startswith("<?xml")
