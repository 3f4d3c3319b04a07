"""Rendering: the graph of a diagram, DOT and TikZ goldens, determinism, counts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import networkx as nx
import pytest

import catnet
from catnet.ir import Box, Diagram, Ty
from catnet.render import graph as G
from catnet.render import render
from catnet.render.dot import to_dot
from catnet.render.params import param_count
from catnet.render.style import Options

from conftest import EXAMPLES, ROOT, golden

GOLDEN = Path(__file__).resolve().parent / "golden" / "render"
IDS = [p.stem for p in EXAMPLES]

#: Variants every example is drawn in for the goldens: (suffix, keyword arguments).
VARIANTS = [
    ("", {}),
    (".params", {"params": True}),
    (".depth0", {"depth": 0}),
    (".tb.shapes", {"direction": "TB", "shapes": True}),
]


def _rel(path: Path) -> str:
    # Drawings do not depend on where the file is; tests run from anywhere.
    return str(path)


# -- the graph counts what the IR has -----------------------------------------


def _ir_counts(d: Diagram) -> tuple[int, int]:
    """(boxes, wires) of ``d`` with every nested definition expanded, from the IR alone.

    A ``repeat`` is drawn once; ``id`` is a plain wire.  Every wire is made
    exactly once: by the domain, or as an output of a box.
    """
    boxes, wires = 0, 0
    for layer in d.layers:
        box = layer.box
        if box.kind in ("composite", "repeat") and box.body is not None:
            b, w = _ir_counts(box.body)
            boxes += b
            wires += w - len(box.body.dom)
        elif box.kind == "inv" and box.body is not None:
            # drawn as the mirror image of its body: the same boxes and wires
            b, w = _ir_counts(box.body)
            boxes += b
            wires += w - len(box.body.cod)
        elif box.kind == "scan" and box.body is not None:
            # drawn as its cell; the state wires start inside, at the loops
            b, w = _ir_counts(box.body)
            boxes += b
            wires += w - len(box.dom)
        elif box.kind == "structural" and box.name == "id" or box.routing:
            # a plain wire; the wiring form's swaps are the wires themselves
            continue
        else:
            boxes += 1
            wires += len(box.cod)
    return boxes, wires + len(d.dom)


@pytest.mark.parametrize("path", EXAMPLES, ids=IDS)
def test_one_node_per_box_and_one_edge_per_wire(path: Path) -> None:
    module = catnet.load(_rel(path))
    diagram = module.diagram()
    g = G.build(diagram, name=module.entry_name())
    boxes, wires = _ir_counts(diagram)
    assert sum(1 for _, d in g.nodes(data=True) if d["ir"]) == boxes
    data_edges = [(u, v) for u, v, d in g.edges(data=True) if d["kind"] == G.DATA]
    # A waypoint only marks where a wire crosses a nested box: the wire
    # into it and the wire out of it are one wire.
    assert sum(1 for u, v in data_edges if g.nodes[v]["kind"] != G.WAYPOINT) == wires
    assert nx.is_directed_acyclic_graph(g)
    # Every port of every node takes exactly one wire, in order.
    for n, d in g.nodes(data=True):
        ins = sorted(e["dst_port"] for _, _, e in g.in_edges(n, data=True) if e["kind"] == G.DATA)
        outs = sorted(e["src_port"] for _, _, e in g.out_edges(n, data=True) if e["kind"] == G.DATA)
        assert ins == list(range(d["n_in"])), n
        assert outs == list(range(d["n_out"])), n
    # The boundary: one free end per wire of dom and cod, the unit I has none.
    assert sum(1 for _, d in g.nodes(data=True) if d["kind"] == G.INPUT) == len(diagram.dom)
    assert sum(1 for _, d in g.nodes(data=True) if d["kind"] == G.OUTPUT) == len(diagram.cod)


def test_structural_boxes_are_dots_and_id_is_a_wire() -> None:
    A = Ty.tensor_space("R", (4,), "A")
    B = Ty.tensor_space("R", (3,), "B")
    copy = Box("copy", A, A @ A, kind="structural").diagram()
    swap = Box("swap", B @ A, A @ B, kind="structural").diagram()
    add = Box("add", A @ A, A, kind="structural").diagram()
    discard = Box("discard", B, Ty(), kind="structural").diagram()
    ident = Box("id", A, A, kind="structural").diagram()
    f = Box("dense", A, B, args=(("features", 3),)).diagram()
    # A ⊗ A -> A: copy the first wire, swap a dense output past it, drop it.
    d = (copy @ ident).then(Diagram.id(A) @ f @ ident, Diagram.id(A) @ swap, Diagram.id(A @ A) @ discard, add)
    g = G.build(d)
    kinds = [data["kind"] for _, data in g.nodes(data=True) if data["ir"]]
    assert kinds == [G.COPY, G.BOX, G.SWAP, G.DISCARD, G.ADD]
    # The swap is fed by the dense box and the copy, so it is drawn as crossing wires.
    assert G.hidden_swaps(g) == set()
    text = to_dot(g)
    assert 'id="n2.x0"' in text and 'id="n2.x1"' in text
    # The discard dot ends its wire: no wire leaves it.
    dis = next(n for n, data in g.nodes(data=True) if data["kind"] == G.DISCARD)
    assert g.out_degree(dis) == 0 and g.in_degree(dis) == 1
    # The unit I has no wire: a diagram into I has no output ends.
    g2 = G.build(discard)
    assert [d["kind"] for _, d in g2.nodes(data=True)] == [G.INPUT, G.DISCARD]


def test_a_swap_right_after_a_copy_is_not_drawn() -> None:
    A = Ty.tensor_space("R", (4,), "A")
    d = Box("copy", A, A @ A, kind="structural").diagram().then(
        Box("swap", A @ A, A @ A, kind="structural").diagram(), Box("add", A @ A, A, kind="structural").diagram()
    )
    g = G.build(d)
    (swap,) = G.hidden_swaps(g)
    text = to_dot(g)
    # No crossing: the copy dot's two wires run straight into the ⊕.
    assert f'id="{swap}.x0"' not in text and text.count('id="w') == 4


def test_a_wire_crossing_a_nested_box_untouched_runs_through_it() -> None:
    A = Ty.tensor_space("R", (4,), "A")
    inner = Box("dense", A, A, args=(("features", 4),)).diagram() @ Diagram.id(A)
    d = Box("pair", A @ A, A @ A, kind="composite", body=inner).diagram()
    g = G.build(d)
    (wp,) = [n for n, data in g.nodes(data=True) if data["kind"] == G.WAYPOINT]
    (cluster,) = g.graph["clusters"]
    assert g.nodes[wp]["cluster"] == cluster.id
    assert cluster.inputs == (("in0", 0), ("in1", 0)) and cluster.outputs == (("n0", 0), (wp, 0))


# -- depth ------------------------------------------------------------------------


def test_depth_expands_that_many_levels() -> None:
    module = catnet.load(_rel(ROOT / "examples" / "transformer.cat"))
    d = module.diagram()

    def shown(depth: int | None) -> tuple[list[str], list[str]]:
        g = G.build(d, name="encoder", depth=depth)
        clusters = [c.label + c.mark for c in g.graph["clusters"] if c.kind != "entry"]
        boxes = [data["label"] + data["mark"] for _, data in g.nodes(data=True) if data["style"] in ("composite", "repeat")]
        return clusters, boxes

    assert shown(0) == ([], ["block×4"])
    assert shown(1) == (["block×4"], ["mlp"])
    assert shown(2) == (["block×4", "mlp"], [])
    assert shown(None) == shown(2)


def test_nested_definitions_that_only_rename_are_one_box() -> None:
    module = catnet.load(_rel(ROOT / "examples" / "residual.cat"))
    g = G.build(module.diagram(), name="resnet")
    labels = [(c.label, c.mark) for c in g.graph["clusters"]]
    # `f` is residual's morphism parameter, bound to `branch`: the box is named
    # after what it is, not after the template's name for it.
    assert labels == [("resnet", ""), ("block = residual", "×4"), ("branch", "")]


def test_a_template_parameter_bound_to_plain_boxes_is_drawn_in_place() -> None:
    module = catnet.loads(
        "object W = R[8]\n"
        "morphism residual[d](f : R[d] -> R[d]) : R[d] -> R[d] = copy ; (f ⊗ id) ; add\n"
        "morphism net : W -> W = residual(dense ; relu)\n", "t.cat")
    g = G.build(module.diagram("net"), name="net")
    assert [c.label for c in g.graph["clusters"]] == ["net", "residual"]
    assert sorted(d["label"] for _, d in g.nodes(data=True) if d["kind"] == G.BOX) == ["dense", "relu"]


def test_diagrams_and_boxes_print_as_one_line() -> None:
    """A notebook's plain-text view of a diagram is a line, not a dump of the dataclasses."""
    d = catnet.load(_rel(ROOT / "examples" / "transformer.cat")).diagram()
    assert repr(d) == "<Diagram Tokens -> Logits: 4 boxes, 16 expanded>"
    assert repr(d.layers[0].box) == "<Box embed : Tokens -> R[T, 64]>"
    assert "\n" not in repr(d.layers[1])


def test_the_wiring_forms_swaps_are_the_wires_themselves() -> None:
    """The swaps elaboration inserts draw no crossing; a swap the source writes does."""
    module = catnet.loads(
        "object A = R[4]\nobject B = R[3]\n"
        "morphism written : A ⊗ B -> B ⊗ A = swap\n"
        "morphism wired(a : A, b : B) -> B ⊗ A {\n  return b, a\n}\n"
        "main written\n", "t.cat")
    kinds = lambda name: [d["kind"] for _, d in G.build(module.diagram(name)).nodes(data=True) if d["ir"]]
    assert kinds("written") == [G.SWAP]
    assert kinds("wired") == []
    # The two calls of a GRU-style cell that do not depend on each other
    # stand side by side: nothing orders them.
    gru = catnet.load(_rel(ROOT / "examples" / "gru_digits.cat")).diagram("gru")
    g = G.build(gru, name="gru")
    sigmoids = [n for n, d in g.nodes(data=True) if d["label"] == "sigmoid"]
    assert len(sigmoids) == 2 and not nx.has_path(g, *sigmoids) and not nx.has_path(g, *reversed(sigmoids))


# -- parameters ---------------------------------------------------------------------


def _ty(*shape: int) -> Ty:
    return Ty.tensor_space("R", shape)


def test_param_counts() -> None:
    assert param_count(Box("dense", _ty(64), _ty(128), args=(("features", 128),))) == 64 * 128 + 128
    conv = Box("conv", _ty(8, 8, 1), _ty(8, 8, 16), args=(("features", 16), ("kernel", 3), ("padding", "same"), ("stride", 1)))
    assert param_count(conv) == 9 * 1 * 16 + 16
    conv1d = Box("conv", _ty(10, 4), _ty(10, 8), args=(("features", 8), ("kernel", 5), ("padding", "same"), ("stride", 1)))
    assert param_count(conv1d) == 5 * 4 * 8 + 8
    assert param_count(Box("layernorm", _ty(7, 32), _ty(7, 32))) == 64
    assert param_count(Box("batchnorm", _ty(32), _ty(32), args=(("momentum", 0.9),))) == 64
    ids = Ty.tensor_space("Z", (7,))
    assert param_count(Box("embed", ids, _ty(7, 16), args=(("features", 16), ("vocab", 100)))) == 1600
    assert param_count(Box("attention", _ty(7, 64), _ty(7, 64), args=(("causal", False), ("heads", 4)))) == 4 * (64 * 64 + 64)
    cross = Box("cross_attention", _ty(7, 64) @ _ty(5, 32), _ty(7, 64), args=(("causal", False), ("heads", 4)))
    assert param_count(cross) == (64 * 64 + 64) + 2 * (32 * 64 + 64) + (64 * 64 + 64)
    # coupling on d = 5: MLP 2 -> hidden 8 -> 2 * 3
    assert param_count(Box("coupling", _ty(5), _ty(5), args=(("hidden", 8),))) == (2 * 8 + 8) + (8 * 6 + 6)
    assert param_count(Box("relu", _ty(5), _ty(5))) == 0
    assert param_count(Box("copy", _ty(5), _ty(5) @ _ty(5), kind="structural")) == 0


def test_param_counts_of_nested_boxes() -> None:
    dense = Box("dense", _ty(4), _ty(4), args=(("features", 4),))
    body = dense.diagram().then(dense.diagram())
    comp = Box("two", _ty(4), _ty(4), kind="composite", body=body)
    assert param_count(comp) == 2 * 20
    assert param_count(Box("two", _ty(4), _ty(4), kind="repeat", args=(("n", 3),), body=comp.diagram())) == 3 * 40
    shared = Box("two", _ty(4), _ty(4), kind="composite", body=body, shared="s")
    both = Box("pair", _ty(4), _ty(4), kind="composite", body=shared.diagram().then(shared.diagram()))
    assert param_count(both) == 40


def test_shared_instance_draws_one_source_copied_to_each_use() -> None:
    module = catnet.load(_rel(ROOT / "examples" / "siamese.cat"))
    g = G.build(module.diagram(), name="siamese", depth=0, params=True)
    sources = [(n, d) for n, d in g.nodes(data=True) if d["kind"] == G.PARAM]
    shared = [(n, d) for n, d in sources if d["shared"] == "enc"]
    assert len(shared) == 1
    (src, data), = shared
    assert data["label"] == "enc 12,448"  # 64*128+128 + 128*32+32
    (dot,) = g.successors(src)
    users = sorted(g.nodes[u]["label"] for u in g.successors(dot))
    assert g.nodes[dot]["kind"] == G.COPY and users == ["enc = encoder", "enc = encoder"]
    # compare: dense 64 -> 32 and dense 32 -> 1
    assert sorted(d["label"] for _, d in sources if d["shared"] is None) == ["2,113"]
    # Fully expanded, every box inside the shared encoder shares with its twin.
    g = G.build(module.diagram(), name="siamese", params=True)
    labels = sorted(d["label"] for _, d in g.nodes(data=True) if d["kind"] == G.PARAM)
    assert labels == ["2,080", "33", "enc 4,128", "enc 8,320"]


def test_every_box_with_parameters_gets_one_parameter_wire() -> None:
    module = catnet.load(_rel(ROOT / "examples" / "transformer.cat"))
    g = G.build(module.diagram(), name="encoder", params=True)
    with_params = [n for n, d in g.nodes(data=True) if d["kind"] == G.BOX and d["params"]]
    assert len(with_params) == 8  # embed; layernorm, attention, layernorm, 2 dense in the block; layernorm, dense
    for n in with_params:
        (edge,) = [e for _, _, e in g.in_edges(n, data=True) if e["kind"] == G.PARAMETER]
        assert edge["dst_port"] == -1


# -- goldens and determinism ----------------------------------------------------------


@pytest.mark.parametrize("suffix,kwargs", VARIANTS, ids=[v[0] or "default" for v in VARIANTS])
@pytest.mark.parametrize("path", EXAMPLES, ids=IDS)
def test_golden_dot_and_tikz(path: Path, suffix: str, kwargs: dict) -> None:
    rel = _rel(path)
    dot = render(rel, format="dot", **kwargs)
    tex = render(rel, format="tex", **kwargs)
    assert isinstance(dot, str) and isinstance(tex, str)
    golden(GOLDEN / f"{path.stem}{suffix}.dot", dot)
    golden(GOLDEN / f"{path.stem}{suffix}.tex", tex)
    assert render(rel, format="dot", **kwargs) == dot
    assert render(rel, format="tex", **kwargs) == tex


def test_snippet_is_the_picture_of_the_standalone_document() -> None:
    rel = _rel(ROOT / "examples" / "digits_mlp.cat")
    doc = render(rel, format="tex")
    snippet = render(rel, format="tex", standalone=False)
    assert isinstance(doc, str) and isinstance(snippet, str)
    assert doc.startswith("\\documentclass[tikz, border=3pt]{standalone}")
    assert "\\documentclass" not in snippet and snippet.count("\\begin{tikzpicture}") == 1
    picture = snippet[snippet.index("\\begin{tikzpicture}"):]
    assert picture in doc
    # Plain TikZ: no libraries, no packages.
    assert "\\usetikzlibrary" not in doc and "\\usepackage" not in doc


def test_output_does_not_depend_on_hash_seed() -> None:
    code = (
        "import sys; from catnet.render import render; "
        "sys.stdout.write(render('examples/transformer.cat', format='dot', params=True)); "
        "sys.stdout.write(render('examples/siamese.cat', format='tex', params=True))"
    )
    outs = []
    for seed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=seed, PYTHONPATH=str(ROOT))
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
        assert proc.returncode == 0, proc.stderr
        outs.append(proc.stdout)
    assert outs[0] == outs[1]


def test_render_accepts_a_diagram_a_module_or_a_path(tmp_path: Path) -> None:
    rel = _rel(ROOT / "examples" / "digits_mlp.cat")
    module = catnet.load(rel)
    by_path = render(rel)
    assert render(module) == by_path
    assert render(module.diagram(), morphism="mlp") == by_path
    out = render(rel, tmp_path / "mlp.dot")
    assert out == tmp_path / "mlp.dot" and out.read_text(encoding="utf-8") == by_path
    # catnet.render is the function, also once the package's modules are loaded.
    assert catnet.render(rel) == by_path
    # The encoder alone, drawn by name.
    assert 'digraph "encoder"' in render(rel, morphism="encoder")


@pytest.mark.parametrize(
    "kwargs,code",
    [
        ({"out": "x.jpg"}, "E0208"),
        ({"format": "gif"}, "E0208"),
        ({"direction": "RL"}, "E0208"),
        ({"depth": -1}, "E0208"),
        ({"morphism": "nope"}, "E0210"),
    ],
)
def test_bad_requests_are_located_errors(kwargs: dict, code: str) -> None:
    with pytest.raises(catnet.CatnetError) as info:
        render(_rel(ROOT / "examples" / "digits_mlp.cat"), **kwargs)
    assert info.value.code == code


def test_options_validate_direction() -> None:
    with pytest.raises(AssertionError):
        Options(direction="RL")
