"""The parser: spans, comments, Unicode/ASCII spellings, limits."""

from __future__ import annotations

import pytest

from catnet import ast as A
from catnet.errors import CatnetError
from catnet.syntax import MAX_DEPTH, decode, parse


def test_spans_point_at_the_source() -> None:
    m = parse("object V = R[4]\nmorphism f : V -> V = relu ; tanh\n", "x.cat")
    decl = m.decls[1]
    assert isinstance(decl, A.MorphismDecl)
    assert decl.span is not None and (decl.span.line, decl.span.column) == (2, 1)
    body = decl.body
    assert isinstance(body, A.Then)
    tanh = body.parts[1]
    assert tanh.span is not None and (tanh.span.line, tanh.span.column, tanh.span.end_column) == (2, 30, 34)


def test_spans_are_not_compared() -> None:
    a = parse("object V = R[4]\nmorphism f : V -> V = relu")
    b = parse("object   V =   R[4]\n\n\nmorphism f : V -> V =\n   relu")
    assert a.decls == b.decls


def test_unicode_and_ascii_spellings_agree() -> None:
    uni = parse("morphism f : R[2] ⊗ R[2] → R[2] = (relu ⊗ relu) ; add ; ⟨id, id⟩ ; fst")
    ascii_ = parse("morphism f : R[2] @ R[2] -> R[2] = (relu @ relu) >> add >> <id, id> >> fst")
    assert uni.decls == ascii_.decls


def test_precedence_then_binds_looser_than_tensor() -> None:
    (decl,) = parse("morphism f : A -> B = a ⊗ b ; c").decls
    assert isinstance(decl, A.MorphismDecl)
    assert isinstance(decl.body, A.Then)
    assert isinstance(decl.body.parts[0], A.Product)


def test_comments_are_collected() -> None:
    m = parse("# head\nobject V = R[4]  # tail\n")
    assert [(c.line, c.text) for c in m.comments] == [(1, "# head"), (2, "# tail")]


def test_generator_arguments() -> None:
    (decl,) = parse('morphism f : A -> B = conv(16, kernel=3, padding="same", causal=true, rate=-0.5, n=d * 4)').decls
    assert isinstance(decl, A.MorphismDecl)
    ref = decl.body
    assert isinstance(ref, A.Ref) and ref.args is not None
    values = [a.value for a in ref.args]
    assert values[0] == A.Lit(16)
    assert values[2] == A.Lit("same")
    assert values[3] == A.Lit(True)
    assert values[4] == A.Lit(-0.5)
    assert isinstance(values[5], A.VBin) and values[5].op == "*"


def test_wiring_form_parses() -> None:
    (decl,) = parse("morphism b(x : S) -> S {\n  a, b = split(x)\n  return a + b\n}").decls
    assert isinstance(decl, A.WiringDecl)
    assert isinstance(decl.body[0], A.Assign) and decl.body[0].names == ("a", "b")
    assert isinstance(decl.body[1], A.Return)


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 5000])
def test_deep_nesting_is_a_catnet_error(depth: int) -> None:
    text = "morphism f : R[4] -> R[4] = " + "(" * depth + "relu" + ")" * depth
    with pytest.raises(CatnetError) as info:
        parse(text)
    assert info.value.code == "E0106"


def test_long_flat_chains_do_not_recurse() -> None:
    # Left-nested `+` chains are deep trees; the tree builder is iterative.
    body = " + ".join(["x"] * 3000)
    m = parse(f"morphism f(x : R[4]) -> R[4] {{\n  return {body}\n}}")
    assert isinstance(m.decls[0], A.WiringDecl)


def test_nul_and_bom() -> None:
    assert decode("\ufeffobject V = R[4]".encode(), "x") == "object V = R[4]"
    with pytest.raises(CatnetError) as info:
        decode(b"object V\x00 = R[4]", "x")
    assert info.value.code == "E0104"
