"""Representations on wires and equivariance claims: syntax, types, and the checker's proof (docs/symmetry.md)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from catnet import CatnetError, loads
from catnet.fmt import format_text

from conftest import ROOT

HEAD = """\
object Image  = R[8, 8, 1] under C4
object Feat   = R[8, 8, 32] under C4 as regular * 8
object Logits = R[10] under C4
"""


def check(text: str):  # noqa: ANN201
    return loads(text)


def fails(text: str, code: str) -> CatnetError:
    with pytest.raises(CatnetError) as info:
        loads(text)
    assert info.value.code == code, info.value.render()
    return info.value


# -- syntax and types -----------------------------------------------------------------


def test_the_representation_is_canonical_text_on_the_wire() -> None:
    m = check("object V = R[6] under D(4) as rotation+sign ⊕ trivial*3\nmorphism f : V -> V = id")
    ob = m.diagram("f").dom.obs[0]
    assert (ob.group, ob.rep) == ("D4", "rotation + sign + trivial * 3")
    assert ob.structure() == "R[6] under D4 as rotation + sign + trivial * 3"


def test_trivial_channels_are_the_same_type_as_no_as() -> None:
    m = check("object A = R[10] under C4 as trivial * 10\nobject B = R[10] under C4\nmorphism f : A -> B = id")
    d = m.diagram("f")
    assert d.dom.obs[0].rep is None and d.dom == d.cod


@pytest.mark.parametrize("text", [
    "object W = R[8] under C4 × C2 as regular",
    "object W = R[8] under D4 as (rotation + sign) ⊗ sign * 2 + regular ⊗ trivial * 0",
    "object W = R[4] under D4 as quotient(s)",
    "object W = R[2] under C4 as quotient(r2)",
    "morphism f : R[3] -> R[3] equivariant under S3 = relu",
    "morphism f(x : R[3]) -> R[3] invariant under C(2) {\n  return x\n}",
])
def test_fmt_round_trips_groups_representations_and_claims(text: str) -> None:
    try:
        once = format_text(text + "\n")
    except CatnetError:
        return  # a representation that does not denote one is the checker's business, not fmt's
    assert format_text(once) == once


def test_claims_are_printed_after_the_signature() -> None:
    out = format_text("morphism f:R[3]->R[3]   equivariant   under S(3)=relu\n")
    assert out == "morphism f : R[3] -> R[3] equivariant under S3 = relu\n"


@pytest.mark.parametrize("word", ["as", "equivariant", "invariant"])
def test_as_equivariant_and_invariant_are_keywords(word: str) -> None:
    with pytest.raises(CatnetError):
        loads(f"morphism {word} : R[2] -> R[2] = relu")


# -- the proof ---------------------------------------------------------------------


def test_an_invariant_c4_classifier_checks() -> None:
    m = check(HEAD + """
morphism block : Feat -> Feat equivariant under C4 = gconv ; relu
morphism net : Image -> Logits invariant under C4 =
  gconv(features=32) ; relu ; block ; maxpool ; gconv(features=32) ; relu ; gpool ; global_avgpool ; glinear
""")
    boxes = [layer.box for layer in m.diagram("net").layers]
    assert boxes[0].cod.obs[0].rep == "regular * 8"  # the default: copies of regular
    assert boxes[-1].cod.obs[0].rep is None


def test_ascription_decides_the_output_representation() -> None:
    m = check("""
object A = R[8] under C4 as regular * 2
object B = R[6] under C4 as rotation * 2 + sign * 2
morphism f : A -> B equivariant under C4 = glinear
morphism g : A -> R[8] = (glinear : A -> B) ; glinear
""")
    assert m.diagram("f").layers[0].box.cod.obs[0].rep == "rotation * 2 + sign * 2"
    assert m.diagram("g").layers[0].box.cod.obs[0].rep == "rotation * 2 + sign * 2"


def test_structural_morphisms_keep_equivariance() -> None:
    check("""
object A = R[8] under C4 as regular * 2
object B = R[16] under C4 as regular * 2 + regular * 2
morphism res : A -> A equivariant under C4 = copy ; (glinear ⊗ id) ; add ; relu
morphism par : A @ A -> A @ A equivariant under C4 = swap ; (res ⊗ res)
morphism cat : A @ A -> B equivariant under C4 = concat
morphism deep : A -> A equivariant under C4 = repeat 3 res
morphism wired(x : A) -> A equivariant under C4 {
  h = x + glinear(x)
  return relu(h)
}
""")


def test_a_set_model_is_permutation_invariant() -> None:
    check("""
object Set = R[5, 3] under S5
object Out = R[4] under S5
morphism ds : Set -> Out invariant under S5 =
  dense(features=16) ; relu ; deepsets(features=16) ; relu ; softmax(axis=0) ; global_avgpool ; dense
""")


def test_the_breaking_box_is_named_inside_a_used_definition() -> None:
    e = fails(HEAD + """
morphism leak : Feat -> Feat = gconv ; layernorm
morphism net : Image -> Logits invariant under C4 = (gconv : Image -> Feat) ; leak ; gpool ; global_avgpool ; glinear
""", "E0323")
    assert "`layernorm`" in e.message and e.span.line == 5
    assert any("inside `leak`" in n for n in e.notes)


def test_a_plain_wire_meeting_a_g_space_is_named() -> None:
    e = fails(HEAD + """
morphism block : Feat -> Feat equivariant under C4 = gconv ; relu
morphism net : Image -> Feat equivariant under C4 = conv(features=32) ; block
""", "E0323")
    assert "`conv`" in e.message


def test_a_box_fed_another_action_than_it_takes() -> None:
    e = fails("""
object A = R[8] under C4 as regular * 2
object P = R[8] under C4
morphism f : P -> P equivariant under C4 = glinear
morphism g : A -> P equivariant under C4 = dense ; f
""", "E0323")
    assert "`dense`" in e.message


def test_another_group_inside_a_claim() -> None:
    e = fails("object S = R[3, 2] under S3\nmorphism f : S -> S equivariant under C4 = relu", "E0323")
    assert "S3-space" in e.message


def test_invariance_claim_needs_trivial_output() -> None:
    fails("object A = R[4] under C4 as regular\nmorphism f : A -> A invariant under C4 = relu", "E0323")


def test_windows_that_do_not_tile_break_the_claim() -> None:
    text = """
object Image = R[7, 7, 4] under C4 as regular
object Small = R[3, 3, 4] under C4 as regular
morphism f : Image -> Small equivariant under C4 = maxpool
"""
    e = fails(text, "E0323")
    assert "tile" in e.message


def test_generic_claim_free_morphisms_may_break_symmetry() -> None:
    check(HEAD + "morphism cnn : Image -> Logits = conv(features=8) ; relu ; global_avgpool ; dense")


def test_check_with_claims_does_not_import_jax() -> None:
    path = ROOT / "tests" / "golden" / "errors" / "symmetry_claim_output.cat"
    code = (
        "import sys\nfrom catnet.check import check_file\nfrom catnet import CatnetError\n"
        f"try:\n    check_file({str(path)!r})\nexcept CatnetError:\n    pass\n"
        "assert 'jax' not in sys.modules, 'check imported jax'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=60)


def test_generic_definitions_are_proved_too() -> None:
    text = """
object Set  = R[5, c] under S5
object Grid = R[h, h, 4] under C4 as regular
morphism ok[c] : Set -> Set equivariant under S5 = relu ; dense
morphism g[h] : Grid -> Grid equivariant under C4 = gconv ; relu
"""
    check(text)
    fails(text + "morphism bad[c] : Set -> Set equivariant under S5 = dense(axis=0)\n", "E0323")
    fails(text + "morphism gbad[h] : Grid -> Grid equivariant under C4 = conv ; relu\n", "E0323")


def test_a_generic_action_that_does_not_fit_its_sizes_is_refused_when_compiled() -> None:
    from flax import nnx

    import catnet

    m = check("""
object Grid = R[h, h, c] under C4 as regular
object In = R[6, 6, 8]
morphism g[h, c] : Grid -> Grid equivariant under C4 = relu
morphism use : In -> In = g[6, 8]
""")
    with pytest.raises(CatnetError) as info:
        catnet.compile(m, "use", rngs=nnx.Rngs(0))
    assert info.value.code == "E0321" and "dimension 4" in info.value.message


def test_a_claimed_definition_is_trusted_where_it_is_used() -> None:
    # `inner` is proved once; `outer` uses its claim, and a wire the claim does not cover is refused.
    text = """
object A = R[8] under C4 as regular * 2
morphism inner : A -> A equivariant under C4 = glinear ; relu
morphism outer : A -> A equivariant under C4 = inner ; inner
morphism plain : R[8] -> R[8] invariant under C4 = dense ; relu
"""
    check(text)
    e = fails(text + "morphism mixed : A -> R[8] equivariant under C4 = relu ; plain\n", "E0323")
    assert "`plain`" in e.message
