"""The symmetry layer's mathematics: groups, representations, equivariant bases (NumPy only)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from catnet.symmetry import basis as B
from catnet.symmetry import groups as G
from catnet.symmetry import reps as R

GROUPS = ["C1", "C2", "C4", "C(5)", "D1", "D2", "D4", "D(6)", "S1", "S3", "S4", "C4 × C2", "D4 x C2"]


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("CATNET_CACHE", str(tmp_path / "cache"))
    B._MEMORY.clear()


@pytest.mark.parametrize("name", GROUPS)
def test_tables_are_groups_of_the_right_order(name: str) -> None:
    g = G.parse(name)
    assert G.is_group(g)
    orders = {"C1": 1, "C2": 2, "C4": 4, "C(5)": 5, "D1": 2, "D2": 4, "D4": 8, "D(6)": 12, "S1": 1, "S3": 6, "S4": 24,
              "C4 × C2": 8, "D4 x C2": 16}
    assert g.order == orders[name]
    # the generators generate: closing them under multiplication reaches every element
    reached, frontier = {0}, [0]
    while frontier:
        a = frontier.pop()
        for s in g.generators:
            b = g.mul(a, s)
            if b not in reached:
                reached.add(b)
                frontier.append(b)
    assert len(reached) == g.order
    assert all(g.mul(a, int(g.inverses[a])) == 0 for a in range(g.order))


def test_the_same_name_gives_the_same_numbering() -> None:
    assert np.array_equal(G.parse("D4").table, G.dihedral(4).table)
    assert G.parse("C(4)") == G.parse("C4")
    assert G.parse("S3").table.tolist() == G.symmetric(3).table.tolist()


@pytest.mark.parametrize("text", ["Banana", "", "C0", "C4 ×", "Q8", "S7", "C100000", "C720 × C2"])
def test_unknown_groups_are_refused_with_a_reason(text: str) -> None:
    with pytest.raises(G.UnknownGroup) as info:
        G.parse(text)
    assert str(info.value)


def _blocks(g: G.Group) -> list[R.Rep]:
    out = [R.trivial(g), R.regular(g)]
    for make in (R.sign, R.rotation, R.permutation):
        try:
            out.append(make(g))
        except ValueError:
            pass
    if g.generators:
        out.append(R.quotient(g, [g.generators[-1]]))
    return out


@pytest.mark.parametrize("name", GROUPS)
def test_every_building_block_is_a_representation(name: str) -> None:
    g = G.parse(name)
    blocks = _blocks(g)
    for r in blocks + [R.tensor(blocks[-1], blocks[1]), R.direct_sum((blocks[0], 2), blocks[-1])]:
        assert R.is_representation(r), r.name
    assert R.regular(g).is_permutation and R.trivial(g).is_trivial
    assert R.intertwiner_dimension(R.regular(g), R.regular(g)) == g.order


def test_named_representations() -> None:
    d4 = G.parse("D4")
    assert R.regular(d4).dim == 8 and R.rotation(d4).dim == 2
    assert R.quotient(d4, [d4.generators[1]]).dim == 4  # the square's vertices: D4 / ⟨s⟩
    s3 = G.parse("S3")
    assert sorted(R.sign(s3).character.tolist()) == [-1, -1, -1, 1, 1, 1]
    assert (R.regular(G.parse("C4")) * 16).dim == 64
    assert (R.regular(G.parse("C4")) * 16).name == "16·regular(C4)"
    with pytest.raises(ValueError):
        R.sign(G.parse("C3"))
    with pytest.raises(ValueError):
        R.direct_sum(R.trivial(G.parse("C2")), R.trivial(G.parse("C3")))


@st.composite
def _rep(draw, g: G.Group) -> R.Rep:  # noqa: ANN001
    blocks = _blocks(g) + [R.tensor(R.rotation(g), R.rotation(g))] if g.name[0] in "CD" and " " not in g.name else _blocks(g)
    parts = draw(st.lists(st.tuples(st.sampled_from(blocks), st.integers(1, 3)), min_size=1, max_size=3))
    return R.direct_sum(*parts)


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_basis_dimension_is_the_character_inner_product_and_every_map_commutes(data) -> None:  # noqa: ANN001
    g = G.parse(data.draw(st.sampled_from(["C4", "D4", "S3", "C4 × C2", "D(3)"])))
    rin, rout = data.draw(_rep(g)), data.draw(_rep(g))
    basis = B.solve(rin, rout)
    assert basis.size == R.intertwiner_dimension(rin, rout)
    rng = np.random.default_rng(0)
    w = basis.expand([rng.standard_normal(shape) for shape in basis.shapes()])
    assert w.shape == (rout.dim, rin.dim)
    err = np.abs(np.einsum("gij,jk->gik", rout.matrices, w) - np.einsum("ij,gjk->gik", w, rin.matrices)).max()
    assert err < 1e-9
    # the pieces' bases are orthonormal: distinct parameters give distinct maps
    for piece in basis.pieces:
        flat = piece.basis.reshape(piece.basis.shape[0], -1)
        assert np.allclose(flat @ flat.T, np.eye(flat.shape[0]), atol=1e-9)


def test_a_sum_of_64_regular_copies_is_one_small_problem_and_is_cached(tmp_path) -> None:  # noqa: ANN001
    d4 = G.parse("D4")
    r = R.regular(d4) * 64
    basis = B.solve(r, r)
    assert basis.size == 8 * 64 * 64 and len(basis.pieces) == 1
    assert list(B.cache_dir().glob("*.npy"))  # written to the cache
    B._MEMORY.clear()
    again = B.solve(r, r)  # read back from disk
    assert np.array_equal(again.pieces[0].basis, basis.pieces[0].basis)


def test_a_problem_too_large_to_solve_is_refused() -> None:
    s4 = G.parse("S4")
    big = R.tensor(R.tensor(R.permutation(s4), R.sign(s4)), R.tensor(R.permutation(s4), R.sign(s4)))  # 16-dim, not a permutation
    wide = R.tensor(big, R.tensor(R.permutation(s4), R.sign(s4)))  # 64
    with pytest.raises(ValueError, match="more than catnet solves"):
        B.solve(wide, R.tensor(wide, R.permutation(s4)))


def test_the_symmetry_layer_needs_no_jax() -> None:
    code = ("import sys; from catnet.symmetry import basis, groups, reps; "
            "print('jax' in sys.modules, 'flax' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
