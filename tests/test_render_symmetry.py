"""Figures of G-spaces: wires labelled with their action, equivariant boxes and claims marked."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import catnet
from catnet.ir import Ob
from catnet.render import graph as G
from catnet.render import render
from catnet.render.output import DRAW, dot_program
from catnet.render.symmetry import WireAction, action_tex, action_text, claim_tex, group_tex, rep_tex, rep_text, wire_action
from catnet.symmetry.actions import parse_rep
from catnet.symmetry.reps import MAX_DENSE

from conftest import ROOT, golden

GOLDEN = Path(__file__).resolve().parent / "golden" / "render"
#: The inputs of the goldens live beside them: symmetry_c4.cat, symmetry_d4.cat, symmetry_sets.cat.
FILES = sorted(GOLDEN.glob("symmetry_*.cat"))
VARIANTS = [
    ("", {}),
    (".depth0.params", {"depth": 0, "params": True}),
    (".tb.shapes", {"direction": "TB", "shapes": True}),
]


def _file(stem: str) -> str:
    return str(GOLDEN / f"symmetry_{stem}.cat")


def _graph(stem: str, **kwargs: object) -> nx.MultiDiGraph:
    """The graph ``render`` draws for one of the golden inputs (claims included)."""
    from catnet.render import _diagram

    diagram, name, claims = _diagram(_file(stem), kwargs.pop("morphism", None))  # type: ignore[arg-type]
    return G.build(diagram, name=name, claims=claims, **kwargs)  # type: ignore[arg-type]


# -- goldens ------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix,kwargs", VARIANTS, ids=[v[0] or "default" for v in VARIANTS])
@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_golden_dot_and_tikz(path: Path, suffix: str, kwargs: dict) -> None:
    dot = render(str(path), format="dot", **kwargs)
    tex = render(str(path), format="tex", **kwargs)
    assert isinstance(dot, str) and isinstance(tex, str)
    golden(GOLDEN / f"{path.stem}{suffix}.dot", dot)
    golden(GOLDEN / f"{path.stem}{suffix}.tex", tex)
    assert render(str(path), format="dot", **kwargs) == dot
    assert render(str(path), format="tex", **kwargs) == tex


def test_goldens_have_inputs() -> None:
    assert [p.stem for p in FILES] == ["symmetry_c4", "symmetry_d4", "symmetry_sets"]


# -- wires --------------------------------------------------------------------------------


def test_g_space_wires_carry_their_action_and_plain_labels() -> None:
    g = _graph("c4")
    wires = {(d["label"], d["action"]) for _, _, d in g.edges(data=True) if d["kind"] == G.DATA}
    grid = WireAction("C4", "regular * 8", True)
    assert ("Image", WireAction("C4", None, True)) in wires
    assert ("Feat", grid) in wires
    # An unnamed wire is its shape; the action is not part of the name.
    assert ("R[8, 8, 32]", grid) in wires and ("R[4, 4, 8]", WireAction("C4", None, True)) in wires
    # On a vector the group acts through the channels only: trivial says it does nothing.
    assert ("Logits", WireAction("C4", None, False)) in wires
    assert all(" under " not in d["label"] and " under " not in d["shape"] for _, _, d in g.edges(data=True))
    shapes = {d["shape"] for _, _, d in g.edges(data=True)}
    assert "Feat : R[8, 8, 32]" in shapes and "Image : R[8, 8, 1]" in shapes


def test_action_labels_in_dot_and_tikz() -> None:
    dot = render(_file("c4"), format="dot")
    assert 'label=<Feat<BR/><FONT FACE="Helvetica" COLOR="#555555">C4: regular × 8</FONT>>' in dot
    assert ">C4</FONT>>" in dot and ">C4: trivial</FONT>>" in dot
    tex = render(_file("c4"), format="tex")
    assert r"{Feat\\[-1pt]{\upshape\color{black!67}$C_{4}\colon 8\rho_{\mathrm{reg}}$}}" in tex
    assert r"{Logits\\[-1pt]{\upshape\color{black!67}$C_{4}\colon$ trivial}}" in tex
    sets = render(_file("sets"), format="dot")
    assert ">S5</FONT>>" in sets and ">S5: trivial</FONT>>" in sets


def test_plain_wires_are_drawn_as_before() -> None:
    # A file without groups has no action anywhere, so its text is unchanged (see the example goldens).
    g = G.build(catnet.load(str(ROOT / "examples" / "digits_cnn.cat")).diagram(), name="cnn")
    assert all(d["action"] is None for _, _, d in g.edges(data=True) if d["kind"] == G.DATA)
    assert all(not d["badge"] and d["claim"] is None for _, d in g.nodes(data=True))


def test_an_unsolved_representation_shows_the_group_alone() -> None:
    assert wire_action(Ob("R", (8, 8, 4), group="C4", rep="?ρ3")) == WireAction("C4", None, True)
    assert wire_action(Ob("R", (4,), group="D4", rep="rotation * 2")) == WireAction("D4", "rotation * 2", False)
    assert wire_action(Ob("R", (4,))) is None


# -- boxes and claims ------------------------------------------------------------------------


def test_equivariant_generators_carry_their_group_as_a_badge() -> None:
    g = _graph("c4")
    badges = [(d["label"], d["badge"]) for _, d in g.nodes(data=True) if d["kind"] == G.BOX]
    assert badges == [("gconv", "C4"), ("relu", ""), ("gconv", "C4"), ("relu", ""), ("maxpool", ""), ("gconv", "C4"),
                      ("relu", ""), ("gpool", "C4"), ("global_avgpool", ""), ("glinear", "C4")]
    sets = _graph("sets")
    assert [d["label"] for _, d in sets.nodes(data=True) if d["badge"] == "S5"] == ["deepsets"]


def test_claims_mark_nested_and_collapsed_definitions() -> None:
    g = _graph("c4")
    assert [(c.label, c.claim) for c in g.graph["clusters"]] == [("net", ("invariant", "C4")), ("block", ("equivariant", "C4"))]
    collapsed = _graph("c4", depth=0)
    (block,) = [d for _, d in collapsed.nodes(data=True) if d["label"] == "block"]
    assert block["claim"] == ("equivariant", "C4")
    dot = render(_file("c4"), format="dot", depth=0)
    assert ">C4-equivariant</FONT>" in dot and ">C4-invariant</FONT>" in dot
    tex = render(_file("c4"), format="tex", depth=0)
    assert r"\textbf{block}\,{\color{black!67}\fboxsep=1pt\fboxrule=0.4pt\fbox{\scriptsize $C_{4}$-equivariant}}" in tex
    # A wiring-form definition's claim, and a definition drawn on its own.
    d4 = _graph("d4", morphism="res")
    assert [(c.label, c.claim) for c in d4.graph["clusters"]] == [("res", ("equivariant", "D4"))]


def test_claims_of_imported_definitions(tmp_path: Path) -> None:
    (tmp_path / "lib.cat").write_text(
        "object Feat = R[8, 8, 32] under C4 as regular * 8\n"
        "morphism block : Feat -> Feat equivariant under C4 = gconv ; relu\n", encoding="utf-8")
    (tmp_path / "main.cat").write_text(
        'import "lib.cat"\nmorphism two : Feat -> Feat = block ; block\n', encoding="utf-8")
    dot = render(str(tmp_path / "main.cat"), format="dot")
    assert dot.count(">C4-equivariant</FONT>") == 2 and "invariant" not in dot


def test_a_bare_diagram_has_no_claims_but_keeps_its_actions() -> None:
    module = catnet.load(_file("c4"))
    dot = render(module.diagram("net"), morphism="net")
    assert "-invariant" not in dot and "-equivariant" not in dot
    assert "C4: regular × 8" in dot and ">C4</FONT>" in dot
    assert render(module) == render(_file("c4"))


# -- notation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "rep,words,math",
    [
        ("regular * 8", "regular × 8", r"8\rho_{\mathrm{reg}}"),
        ("regular + rotation * 2", "regular ⊕ rotation × 2", r"\rho_{\mathrm{reg}} \oplus 2\rho_{\mathrm{rot}}"),
        ("rotation ⊗ sign * 2", "(rotation ⊗ sign) × 2", r"2(\rho_{\mathrm{rot}} \otimes \rho_{\mathrm{sign}})"),
        ("(regular + sign) * 2", "(regular ⊕ sign) × 2", r"2(\rho_{\mathrm{reg}} \oplus \rho_{\mathrm{sign}})"),
        ("rotation ⊗ (sign + trivial)", "rotation ⊗ (sign ⊕ trivial)",
         r"\rho_{\mathrm{rot}} \otimes (\rho_{\mathrm{sign}} \oplus \rho_{\mathrm{triv}})"),
        ("quotient(s)", "quotient(s)", r"\rho_{D_{4}/\langle s\rangle}"),
        ("quotient(r2, sr1)", "quotient(r2, sr1)", r"\rho_{D_{4}/\langle r^{2}, sr\rangle}"),
        ("permutation", "permutation", r"\rho_{\mathrm{perm}}"),
    ],
)
def test_representations_in_words_and_in_math(rep: str, words: str, math: str) -> None:
    assert rep_text(rep) == words
    assert rep_tex(rep, "D4") == math


def test_groups_actions_and_claims_in_math() -> None:
    assert group_tex("C4") == "C_{4}" and group_tex("C4 × C2") == r"C_{4} \times C_{2}"
    assert action_text(WireAction("C4 × C2", "regular", False)) == "C4 × C2: regular"
    assert action_tex(WireAction("S5", None, True)) == "$S_{5}$"
    assert action_tex(WireAction("D4", "sign", False)) == r"$D_{4}\colon \rho_{\mathrm{sign}}$"
    assert claim_tex(("invariant", "S5")) == "$S_{5}$-invariant"


_ATOMS = ["trivial", "regular", "sign", "rotation", "quotient(s)", "quotient(r2)"]


@st.composite
def _reps(draw: st.DrawFn, depth: int = 2) -> tuple[str, int]:
    """A representation of D4 in the language, as (canonical text, precedence) like the parser writes it."""
    if depth == 0 or draw(st.booleans()):
        return draw(st.sampled_from(_ATOMS)), 3
    kind = draw(st.sampled_from(["sum", "copies", "tensor"]))
    a, pa = draw(_reps(depth - 1))
    if kind == "copies":
        return f"{a if pa >= 2 else f'({a})'} * {draw(st.integers(2, 3))}", 1
    b, pb = draw(_reps(depth - 1))
    if kind == "sum":
        return f"{a} + {b}", 0
    return f"{a if pa >= 2 else f'({a})'} ⊗ {b if pb >= 3 else f'({b})'}", 2


@settings(max_examples=60, deadline=None)
@given(_reps())
def test_the_words_read_back_as_the_same_representation(drawn: tuple[str, int]) -> None:
    # The label, with the language's `+` and `*` put back, is the same representation of D4.
    text, _ = drawn
    back = rep_text(text).replace(" ⊕ ", " + ").replace(" × ", " * ")
    original, read = parse_rep(text, "D4"), parse_rep(back, "D4")
    assert read.dim == original.dim
    # A tensor power of regular reps can be too large to write out densely (8 × 4096²): compare what can be.
    assume(original.group.order * original.dim ** 2 <= MAX_DENSE)
    assert np.allclose(read.matrices, original.matrices)
    # The math has one ρ per building block and balanced braces and parentheses.
    math = rep_tex(text, "D4")
    assert math.count("{") == math.count("}") and math.count("(") == math.count(")")
    assert math.count(r"\rho") == sum(text.count(atom.split("(")[0]) for atom in ("trivial", "regular", "sign", "rotation", "quotient"))


# -- the tools that read the output ------------------------------------------------------------


@pytest.mark.skipif(dot_program() is None, reason="Graphviz's `dot` is not installed (Debian package graphviz)")
def test_graphviz_takes_the_dot_without_complaint(tmp_path: Path) -> None:
    for path in FILES:
        for _, kwargs in VARIANTS:
            text = render(str(path), format="dot", **kwargs)
            proc = subprocess.run(["dot", *DRAW, "-Tsvg"], input=text, capture_output=True, text=True, timeout=60)
            assert proc.returncode == 0 and proc.stderr == "", (path.stem, kwargs, proc.stderr)
    out = render(_file("c4"), tmp_path / "c4.png")
    assert Path(out).read_bytes().startswith(b"\x89PNG")


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex is not installed")
def test_tikz_compiles(tmp_path: Path) -> None:
    pictures = "".join(render(str(path), format="tex", standalone=False, **kwargs) + "\n\\newpage\n"
                       for path in FILES for _, kwargs in VARIANTS)
    doc = "\\documentclass{article}\n\\usepackage{tikz}\n\\pagestyle{empty}\n\\begin{document}\n" + pictures + "\\end{document}\n"
    (tmp_path / "all.tex").write_text(doc, encoding="utf-8")
    proc = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "all.tex"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stdout[-2000:]


def test_render_of_g_spaces_does_not_import_jax() -> None:
    code = (
        "import json, sys\n"
        "from catnet.cli import main\n"
        f"codes = [main(['render', {_file('d4')!r}, '--format', fmt]) for fmt in ('dot', 'tex')]\n"
        "jax = sorted(m for m in sys.modules if m == 'jax' or m.startswith(('jax.', 'jaxlib', 'flax')))\n"
        "print(json.dumps({'codes': codes, 'jax': jax}))\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "D4: regular ⊕ rotation × 2" in out and r"\rho_{\mathrm{reg}} \oplus 2\rho_{\mathrm{rot}}" in out
    assert json.loads(out.strip().splitlines()[-1]) == {"codes": [0, 0], "jax": []}
