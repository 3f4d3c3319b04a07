"""The laws of a symmetric monoidal category, checked on the lowered functions.

Types are drawn first, then morphisms between them.  Every morphism with
parameters is a shared instance, so the two sides of a law use one
parameter set, and the two sides are built with different structure
(different composites, different layer orders) so that each law says
something about the lowering rather than about the IR.
"""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")
nnx = pytest.importorskip("flax.nnx")
hypothesis = pytest.importorskip("hypothesis")

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from catnet.ir import Box, Diagram, Ty  # noqa: E402
from catnet.lower import lower  # noqa: E402

WIDTHS = st.sampled_from([2, 3, 4, 5])
LAWS = settings(max_examples=12, deadline=None, derandomize=True)


def R(n: int) -> Ty:
    return Ty.tensor_space("R", (n,))


def gen(name: str, a: int, b: int, **kwargs: object) -> Diagram:
    iso = name in ("coupling", "reverse")
    return Box(name, R(a), R(b), "generator", tuple(sorted(kwargs.items())), iso=iso).diagram()


def structural(name: str, dom: Ty, cod: Ty) -> Diagram:
    return Box(name, dom, cod, "structural", iso=name in ("id", "swap")).diagram()


def composite(name: str, body: Diagram, shared: str | None = None) -> Diagram:
    return Box(name, body.dom, body.cod, "composite", body=body, shared=shared, iso=body.is_iso).diagram()


@st.composite
def morphism(draw: st.DrawFn, a: int, b: int, name: str) -> Diagram:
    """A shared instance ``name : R[a] -> R[b]``."""
    kinds = ["dense", "chain"] + (["relu", "tanh", "layernorm", "coupling", "reverse", "gelu"] if a == b else [])
    kind = draw(st.sampled_from(kinds))
    if kind == "dense":
        body = gen("dense", a, b, features=b)
    elif kind == "chain":
        c = draw(WIDTHS)
        body = gen("dense", a, c, features=c) >> gen("tanh", c, c) >> gen("dense", c, b, features=b)
    elif kind == "coupling":
        body = gen("coupling", a, a, hidden=draw(WIDTHS))
    else:
        body = gen(kind, a, a)
    return composite(name, body, shared=name)


@st.composite
def iso(draw: st.DrawFn, a: int, name: str) -> Diagram:
    """A shared isomorphism ``name : R[a] -> R[a]``: couplings, reversals, repeats."""
    def piece(i: int) -> Diagram:
        kind = draw(st.sampled_from(["coupling", "reverse", "repeat", "id"]))
        if kind == "coupling":
            return gen("coupling", a, a, hidden=draw(WIDTHS))
        if kind == "repeat":
            body = gen("coupling", a, a, hidden=3) >> gen("reverse", a, a)
            n = draw(st.integers(1, 3))
            return Box(f"layer{i}", R(a), R(a), "repeat", (("n", n),), body=body, iso=True).diagram()
        return structural(kind, R(a), R(a)) if kind == "id" else gen(kind, a, a)

    body = Diagram.compose([piece(i) for i in range(draw(st.integers(1, 3)))])
    return composite(name, body, shared=name)


def inputs(ty: Ty, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((3,) + tuple(ob.shape)).astype(np.float32) for ob in ty.obs]  # type: ignore[arg-type]


def evaluate(d: Diagram, xs: list[np.ndarray], like: nnx.Module | None = None) -> tuple[list[np.ndarray], nnx.Module]:
    """Run ``d``; shared instances take their weights from ``like`` when given."""
    model = lower(d, rngs=nnx.Rngs(0))
    if like is not None:
        for name, attr in model._shared:
            nnx.update(getattr(model, attr), nnx.state(getattr(like, dict(like._shared)[name])))
    model.eval()
    out = model(*xs)
    return [np.asarray(y) for y in (out if isinstance(out, tuple) else (out,))], model


def same(d1: Diagram, d2: Diagram, seed: int, tol: float = 1e-5) -> None:
    assert d1.dom == d2.dom and d1.cod == d2.cod
    xs = inputs(d1.dom, seed)
    ys1, m1 = evaluate(d1, xs)
    ys2, _ = evaluate(d2, xs, like=m1)
    assert len(ys1) == len(ys2)
    for a, b in zip(ys1, ys2):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


@LAWS
@given(st.data(), WIDTHS, WIDTHS, WIDTHS, WIDTHS, st.integers(0, 2**16))
def test_composition_is_associative(data, a, b, c, d, seed) -> None:
    f = data.draw(morphism(a, b, "f"))
    g = data.draw(morphism(b, c, "g"))
    h = data.draw(morphism(c, d, "h"))
    left = composite("fg", f >> g) >> h
    right = f >> composite("gh", g >> h)
    same(left, right, seed)


@LAWS
@given(st.data(), WIDTHS, WIDTHS, st.integers(0, 2**16))
def test_identity_is_a_unit(data, a, b, seed) -> None:
    f = data.draw(morphism(a, b, "f"))
    same(structural("id", R(a), R(a)) >> f, f, seed)
    same(f >> composite("unit", structural("id", R(b), R(b))), f, seed)


@LAWS
@given(st.data(), WIDTHS, WIDTHS, WIDTHS, WIDTHS, WIDTHS, WIDTHS, st.integers(0, 2**16))
def test_interchange(data, a, b, c, d, e, k_, seed) -> None:
    f = data.draw(morphism(a, b, "f"))
    g = data.draw(morphism(c, d, "g"))
    h = data.draw(morphism(b, e, "h"))
    k = data.draw(morphism(d, k_, "k"))
    left = (f @ g) >> (h @ k)
    right = composite("fh", f >> h) @ (g >> k)
    same(left, right, seed)


@LAWS
@given(WIDTHS, WIDTHS, st.integers(0, 2**16))
def test_swap_is_an_involution(a, b, seed) -> None:
    A, B = R(a), R(b)
    twice = structural("swap", A @ B, B @ A) >> composite("back", structural("swap", B @ A, A @ B))
    same(twice, Diagram.id(A @ B), seed)


@LAWS
@given(WIDTHS, st.integers(0, 2**16))
def test_copy_then_discard_is_the_identity(a, seed) -> None:
    A = R(a)
    left = structural("copy", A, A @ A) >> (structural("discard", A, Ty()) @ Diagram.id(A))
    same(left, Diagram.id(A), seed)
    right = structural("copy", A, A @ A) >> (Diagram.id(A) @ structural("discard", A, Ty()))
    same(right, Diagram.id(A), seed)


@LAWS
@given(st.data(), WIDTHS, WIDTHS, WIDTHS, st.integers(0, 2**16))
def test_pairing_then_projection(data, a, b, c, seed) -> None:
    f = data.draw(morphism(a, b, "f"))
    g = data.draw(morphism(a, c, "g"))
    pair = structural("copy", R(a), R(a) @ R(a)) >> (f @ g)
    same(pair >> structural("fst", R(b) @ R(c), R(b)), f, seed)
    same(pair >> structural("snd", R(b) @ R(c), R(c)), g, seed)


@LAWS
@given(st.data(), st.sampled_from([2, 3, 4, 6]), st.integers(0, 2**16))
def test_inverse_of_an_iso(data, a, seed) -> None:
    f = data.draw(iso(a, "f"))
    inv = Box("inv", R(a), R(a), "inv", body=f, iso=True).diagram()
    same(inv >> f, Diagram.id(R(a)), seed)
    same(f >> inv, Diagram.id(R(a)), seed)


@LAWS
@given(WIDTHS, WIDTHS, st.integers(0, 2**16))
def test_inverse_of_a_swap(a, b, seed) -> None:
    A, B = R(a), R(b)
    swap = structural("swap", A @ B, B @ A)
    inv = Box("inv", B @ A, A @ B, "inv", body=swap, iso=True).diagram()
    same(inv >> swap, Diagram.id(B @ A), seed)
