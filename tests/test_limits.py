"""The checker and the IR stay linear and recursion-free on large inputs, and refuse what is absurd.

Wide products share their whiskers instead of copying them; deep nesting is
compared, hashed, substituted and folded with explicit stacks; chains of
definitions are checked in dependency order; size polynomials, widths and
expansion are bounded with located errors (E0309, E0310, E0106).
"""

from __future__ import annotations

import tracemalloc

import pytest

from catnet import loads
from catnet.check import require_lowerable
from catnet.errors import CatnetError
from catnet.ir import Box, Diagram, Ob, Ty
from catnet.summary import summarize

A = Ob("R", (4,))


def _raises(text: str, code: str) -> CatnetError:
    with pytest.raises(CatnetError) as info:
        loads(text, "x.cat")
    assert info.value.code == code, info.value.render()
    assert info.value.span is not None and info.value.span.file == "x.cat"
    return info.value


# -- wide types ---------------------------------------------------------------------


def test_lazy_types_equal_their_flat_form_and_hash_alike() -> None:
    obs = tuple(Ob("R", (i + 1,)) for i in range(200))
    flat = Ty(obs)
    lazy = Ty(obs[:100]) @ Ty(obs[100:])
    view = flat[50:150]
    assert lazy == flat and hash(lazy) == hash(flat)
    assert view == Ty(obs[50:150]) and hash(view) == hash(Ty(obs[50:150]))
    assert len(view) == 100 and view.obs[0] == obs[50] and list(view)[-1] == obs[149]
    assert (view @ flat)[100:300] == flat
    assert Ty() == Ty(()) and not Ty() and str(Ty()) == "I"


def test_a_wide_product_does_not_copy_its_whiskers() -> None:
    n = 10_000
    relu = Box("relu", Ty((A,)), Ty((A,)))
    tracemalloc.start()
    d = relu.diagram().tensor(*[relu.diagram()] * (n - 1))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # n layers whiskered by copied tuples would hold n * n / 2 pointers (400 MB).
    assert peak < 60 * 2**20, f"{peak / 2**20:.0f} MB"
    assert len(d.layers) == n and len(d.dom) == n
    assert [len(l.left) for l in d.layers[:3]] == [0, 1, 2] and len(d.layers[-1].right) == 0


def test_wide_products_and_pairings_check() -> None:
    n = 3_000
    wires = " ⊗ ".join(["A"] * n)
    m = loads(f"object A = R[4]\nmorphism p : {wires} -> {wires} = {' ⊗ '.join(['dense'] * n)}\n"
              f"morphism q : A -> {wires} = <{', '.join(['relu'] * n)}>\n")
    assert len(m.diagram("p").layers) == n
    assert len(m.diagram("q").layers) == 2 * n - 1
    assert all(b.kwargs["features"] == 4 for b in m.diagram("p").boxes)


def test_too_wide_is_e0310() -> None:
    # written too wide: refused as it is read
    e = _raises(f"object A = R[4]\nmorphism q : A -> A = <{', '.join(['relu'] * 20_000)}> ; discard\n", "E0310")
    assert "more than 16,384 parts side by side" in e.message and e.span.line == 2  # type: ignore[union-attr]
    _raises(f"object A = {' ⊗ '.join(['R[1]'] * 20_000)}\nmorphism f : A -> A = id\n", "E0310")
    # built too wide: 9,000 copies of two wires
    e = _raises(f"object P = R[4] ⊗ R[4]\nmorphism q : P -> P = <{', '.join(['id'] * 9_000)}> ; discard\n", "E0310")
    assert "18,000 parallel wires" in e.message


# -- deep nesting -------------------------------------------------------------------------


def _nested(depth: int) -> Diagram:
    t = Ty((Ob("R", (4,)),))
    d = Box("relu", t, t).diagram()
    for i in range(depth):
        d = Box(f"f{i}", t, t, kind="composite", body=d).diagram()
    return d


def test_deep_ir_compares_hashes_and_folds_without_recursion() -> None:
    a, b = _nested(5_000), _nested(5_000)
    assert a is not b and a == b and hash(a) == hash(b)
    assert a != _nested(4_999)
    assert a.expanded_size() == 5_001 and a.nesting_depth() == 5_000
    assert sum(1 for _ in a.walk()) == 5_001
    assert a.subst({"x": 1}) is a  # nothing to substitute: shared, not copied


def test_generic_deep_ir_substitutes_without_recursion() -> None:
    m = loads("object A = R[d]\n" + "morphism f0[d] : R[d] -> R[d] = relu\n"
              + "".join(f"morphism f{i}[d] : R[d] -> R[d] = f{i - 1} ; relu\n" for i in range(1, 2_000))
              + "morphism net : R[8] -> R[8] = f1999\n")
    d = m.diagram("net")
    assert d.nesting_depth() == 2_000
    assert all(box.dom == Ty((Ob("R", (8,)),)) for box in d.all_boxes())


def test_an_instance_whose_sizes_come_back_shares_the_definition_body() -> None:
    m = loads("morphism block[d] : R[d] -> R[d] = dense ; relu\n"
              "morphism twice[d] : R[d] -> R[d] = block ; block\n")
    inner = m.diagram("twice").layers[0].box
    assert inner.body is m.diagram("block")


def test_chains_are_checked_in_dependency_order() -> None:
    n = 3_000
    lines = [f"morphism f{i} : A -> A = f{i - 1} ; relu" for i in range(n - 1, 0, -1)]
    m = loads("object A = B\nobject B = R[4]\n" + "\n".join(lines) + "\nmorphism f0 : A -> A = relu\n")
    assert list(m.definitions)[0] == f"f{n - 1}"  # listed in source order
    assert m.diagram(f"f{n - 1}").nesting_depth() == n - 1


def test_a_long_cycle_is_e0211_with_its_chain() -> None:
    n = 3_000
    e = _raises("object A = R[4]\n" + "\n".join(f"morphism f{i} : A -> A = f{(i + 1) % n}" for i in range(n)) + "\n", "E0211")
    assert e.message.startswith("`f0` is defined in terms of itself (f0 → f1 → f2")
    _raises("object A = B\nobject B = A\nmorphism f : A -> A = relu\n", "E0211")


# -- bounded sizes and expansion ----------------------------------------------------------------


def test_size_polynomials_are_bounded() -> None:
    e = _raises("morphism f[a, b, c, d] : R[(a + b + c + d + 1) * (a + b + c + d + 1) * (a + b + c + d + 1)] -> R[4] = dense\n", "E0309")
    assert "35 terms" in e.message and e.span.column == 28  # type: ignore[union-attr]
    e = _raises("morphism s0[n] : R[n] -> R[n * n] = dense\n"
                "morphism s1[n] : R[n] -> R[n * n * n * n] = s0[n] ; s0[n * n]\n"
                "morphism s2[n] : R[n] -> R[4] = s1[n] ; s1[n * n * n * n] ; dense\n", "E0309")
    assert "degree 12" in e.message and e.span.line == 3  # type: ignore[union-attr]
    e = _raises("morphism f[n] : R[n * 2147483647 * 2147483647 * 2147483647 + 1] -> R[4] = dense\n", "E0309")
    assert "coefficient" in e.message


def test_expansion_is_bounded() -> None:
    text = "object A = R[4]\nmorphism f0 : A -> A = relu\n" + "".join(
        f"morphism f{i} : A -> A = f{i - 1} ; f{i - 1}\n" for i in range(1, 30))
    e = _raises(text, "E0310")
    assert "opens to" in e.message and e.span.line == 21  # type: ignore[union-attr]
    # repeat is built once, so it does not multiply
    m = loads("object A = R[4]\nmorphism f : A -> A = repeat 100000 (repeat 100000 relu)\n")
    assert m.diagram("f").expanded_size() == 3


def test_deep_definitions_are_refused_by_the_lowering_with_a_location() -> None:
    text = "object A = R[4]\nmorphism f0 : A -> A = relu\n" + "".join(
        f"morphism f{i} : A -> A = f{i - 1} ; relu\n" for i in range(1, 100))
    m = loads(text, "x.cat")
    with pytest.raises(CatnetError) as info:
        require_lowerable(m.diagram("f99"), "f99")
    assert info.value.code == "E0106" and "99 levels" in info.value.message
    require_lowerable(m.diagram("f60"), "f60")


def test_summary_lists_to_a_depth_and_counts_everything() -> None:
    text = "object A = R[4]\nmorphism f0 : A -> A = dense\n" + "".join(
        f"morphism f{i} : A -> A = f{i - 1} ; dense\n" for i in range(1, 100))
    d = loads(text).diagram("f99")
    s = summarize(d)
    assert s.total == 100 * 20
    assert max(r.depth for r in s.rows) == 32
    assert any("not listed" in r.note for r in s.rows)
    assert max(r.depth for r in summarize(d, depth=2).rows) == 2
