"""Elementwise arithmetic (``catnet.library.arith``): typed broadcasting and the laws.

The shape rules are compared with NumPy's broadcasting on drawn shapes; the
lowered functions with NumPy on the same numbers (the batch axis in front,
the per-example shapes broadcast behind it); the laws — ``mul`` commutative
and associative, ``sub(x, x) = 0``, ``exp ; log = id``, inverses of the
constant maps — on the compiled models.
"""

from __future__ import annotations

from functools import cache
from typing import Callable

import numpy as np
import pytest

import catnet
from catnet import CatnetError, dims, loads
from catnet.ir import Ty
from catnet.library import GENERATORS

jax = pytest.importorskip("jax")
nnx = pytest.importorskip("flax.nnx")
hypothesis = pytest.importorskip("hypothesis")

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


LAWS = settings(max_examples=25, deadline=None, derandomize=True)
BATCH = 3


def shape_text(shape: tuple[int, ...]) -> str:
    return f"R[{', '.join(map(str, shape))}]"


def cod_of(text: str, name: str = "f") -> Ty:
    return loads(text)[name].cod  # type: ignore[return-value]


# -- shape rules ------------------------------------------------------------------

SHAPES = st.lists(st.sampled_from([1, 2, 3]), min_size=0, max_size=3).map(tuple)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(SHAPES, SHAPES, st.sampled_from(["sub", "mul", "div", "add"]))
def test_broadcast_shapes_are_numpys(a: tuple[int, ...], b: tuple[int, ...], op: str) -> None:
    try:
        expected: tuple[int, ...] | None = np.broadcast_shapes(a, b)
    except ValueError:
        expected = None
    cod = expected if expected is not None else a
    text = f"morphism f : {shape_text(a)} ⊗ {shape_text(b)} -> {shape_text(cod)} = {op}\n"
    if expected is None:
        with pytest.raises(CatnetError) as info:
            loads(text)
        assert info.value.code == "E0306"
        return
    assert cod_of(text) == Ty.tensor_space("R", expected)


@pytest.mark.parametrize(
    "sig",
    [
        "[T, d] : R[T, d] ⊗ R[d] -> R[T, d]",
        "[T, d] : R[T, d] ⊗ R[T, 1] -> R[T, d]",
        "[T, d] : R[T, 1] ⊗ R[d] -> R[T, d]",
        "[T, d] : R[d] ⊗ R[T, d] -> R[T, d]",
        "[T] : R[T, 4] ⊗ R[1, 4] -> R[T, 4]",
        "[T] : R[T, 4] ⊗ R[] -> R[T, 4]",
    ],
)
@pytest.mark.parametrize("op", ["add", "sub", "mul", "div"])
def test_symbolic_sizes_broadcast(sig: str, op: str) -> None:
    loads(f"morphism f{sig} = {op}\n")


def test_unknown_sizes_are_unified() -> None:
    # `dense`'s width is a variable until `mul` meets R[3, 8]: unified to 8.
    m = loads("morphism f : R[4] ⊗ R[3, 8] -> R[3, 8] = (dense ⊗ id) ; mul\n")
    dense = next(b for b in m.diagram("f").all_boxes() if b.name == "dense")
    assert dense.kwargs["features"] == 8


def test_result_keeps_the_declared_name_when_it_is_an_input() -> None:
    m = loads("object Tokens = R[5, 8]\nmorphism f : Tokens ⊗ R[8] -> Tokens = mul\n")
    (box,) = m.diagram("f").all_boxes()
    assert str(box.cod) == "Tokens"


@pytest.mark.parametrize(
    ("sig", "words"),
    [
        ("[T, S, d] : R[T, d] ⊗ R[S, d] -> R[T, d] = mul", "axis 0 of the first wire has size T, axis 0 of the second has size S"),
        (" : R[3, 8] ⊗ R[4, 8] -> R[3, 8] = div", "axis 0 of the first wire has size 3, axis 0 of the second has size 4"),
        (" : R[2, 3, 8] ⊗ R[4, 8] -> R[2, 3, 8] = sub", "axis 1 of the first wire has size 3, axis 0 of the second has size 4"),
        (" : R[8] ⊗ Z[8] -> R[8] = mul", "`mul` acts on real wires"),
        (" : Z[8] ⊗ Z[8] -> Z[8] = sub", "`sub` acts on real wires"),
        (" : R[3, 4] ⊗ R[5] -> R[3, 4] = add", "axis 1 of the first wire has size 4, axis 0 of the second has size 5"),
    ],
)
def test_mismatches_name_the_axes(sig: str, words: str) -> None:
    with pytest.raises(CatnetError) as info:
        loads(f"morphism f{sig}\n")
    assert info.value.code == "E0306"
    assert words in info.value.message


def test_add_keeps_its_rule_on_one_type() -> None:
    # Equal types (integer ids too) and bundles, as before broadcasting.
    assert cod_of("morphism f : Z[4] ⊗ Z[4] -> Z[4] = add\n") == Ty.tensor_space("Z", (4,))
    loads("object B = R[2]\nobject F = R[3]\nbundle E = F over B\nmorphism f : E ⊗ E -> E = add\n")
    with pytest.raises(CatnetError, match="`add` adds two wires of one type, but got R\\[4\\] and R\\[5\\]"):
        loads("morphism f : R[4] ⊗ R[5] -> R[4] = add\n")
    with pytest.raises(CatnetError, match="`add` adds two wires of one type"):
        loads("morphism f : R[4] ⊗ Z[4] -> R[4] = add\n")
    assert GENERATORS["add"].structural


@pytest.mark.parametrize("name", ["neg", "exp", "log", "sqrt", "square", "reciprocal", "softplus", "silu", "swish"])
def test_unary_keeps_the_type_and_refuses_ids(name: str) -> None:
    assert cod_of(f"morphism f[T] : R[T, 3] -> R[T, 3] = {name}\n") == Ty.tensor_space("R", (dims.sym("T"), 3))
    with pytest.raises(CatnetError) as info:
        loads(f"morphism f : Z[3] -> Z[3] = {name}\n")
    assert info.value.code == "E0306" and f"`{name}` acts on real wires" in info.value.message


def test_constant_maps_need_a_finite_nonzero_factor() -> None:
    with pytest.raises(CatnetError) as info:
        loads("morphism f : R[3] -> R[3] = scale\n")
    assert info.value.code == "E0206"
    with pytest.raises(CatnetError) as info:
        loads("morphism f : R[3] -> R[3] = scale(by=0)\n")
    assert info.value.code == "E0306"
    with pytest.raises(CatnetError) as info:
        loads("morphism f : R[3] -> R[3] = shift(by=1e99)\n")
    assert info.value.code == "E0208"
    loads("morphism f : R[3] -> R[3] = shift(by=0) ; scale(by=-2.5) ; scale(-1)\n")


def test_isomorphisms() -> None:
    m = loads("morphism f : R[3] -> R[3] = inv(neg ; scale(by=2) ; shift(by=1))\n")
    assert m["f"].iso
    with pytest.raises(CatnetError) as info:
        loads("morphism f : R[3] -> R[3] = inv(exp)\n")
    assert info.value.code == "E0401"


# -- the lowered functions ------------------------------------------------------------

MODELS = loads(
    """
morphism bin_mul : R[3, 4] ⊗ R[4] -> R[3, 4] = mul
morphism bin_add : R[3, 1] ⊗ R[4] -> R[3, 4] = add
morphism bin_sub : R[4] ⊗ R[2, 3, 4] -> R[2, 3, 4] = sub
morphism bin_div : R[2, 1, 4] ⊗ R[3, 1] -> R[2, 3, 4] = div
morphism ids_add : Z[3] ⊗ Z[3] -> Z[3] = add

morphism mul_ab(a : R[3, 4], b : R[4]) -> R[3, 4] { return mul(a, b) }
morphism mul_ba(a : R[3, 4], b : R[4]) -> R[3, 4] { return mul(b, a) }
morphism mul_left(a : R[2, 3, 4], b : R[3, 1], c : R[4]) -> R[2, 3, 4] { return mul(mul(a, b), c) }
morphism mul_right(a : R[2, 3, 4], b : R[3, 1], c : R[4]) -> R[2, 3, 4] { return mul(a, mul(b, c)) }
morphism self_sub(x : R[5]) -> R[5] { return sub(x, x) }
morphism exp_log : R[5] -> R[5] = exp ; log
morphism halves : R[5] -> R[5] = scale(by=2) ; scale(by=0.5)
morphism undo : R[5] -> R[5] = (scale(by=3) ; shift(by=-1.5) ; neg) ; inv(scale(by=3) ; shift(by=-1.5) ; neg)
morphism un_neg : R[5] -> R[5] = neg
morphism un_exp : R[5] -> R[5] = exp
morphism un_log : R[5] -> R[5] = log
morphism un_sqrt : R[5] -> R[5] = sqrt
morphism un_square : R[5] -> R[5] = square
morphism un_reciprocal : R[5] -> R[5] = reciprocal
morphism un_softplus : R[5] -> R[5] = softplus
morphism un_silu : R[5] -> R[5] = silu
morphism un_swish : R[5] -> R[5] = swish
morphism un_scale : R[5] -> R[5] = scale(by=-1.5)
morphism un_shift : R[5] -> R[5] = shift(by=0.25)
morphism gate(z : R[5], h : R[5], c : R[5]) -> R[5] {
  return add(mul(sub(h, c), z), c)
}
"""
)


@cache
def model(name: str) -> nnx.Module:
    return catnet.compile(MODELS, name, rngs=nnx.Rngs(0))


def arrays(seed: int, *shapes: tuple[int, ...], low: float = -3.0, high: float = 3.0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.uniform(low, high, size=(BATCH,) + s).astype(np.float32) for s in shapes]


def per_example(fn: Callable[..., np.ndarray], *xs: np.ndarray) -> np.ndarray:
    """NumPy's broadcasting of the per-example arrays, one example at a time."""
    return np.stack([fn(*(x[i] for x in xs)) for i in range(BATCH)])


@pytest.mark.parametrize(
    ("name", "fn", "shapes"),
    [
        ("bin_mul", np.multiply, [(3, 4), (4,)]),
        ("bin_add", np.add, [(3, 1), (4,)]),
        ("bin_sub", np.subtract, [(4,), (2, 3, 4)]),
        ("bin_div", np.divide, [(2, 1, 4), (3, 1)]),
    ],
)
def test_binary_ops_broadcast_like_numpy_per_example(
    name: str, fn: Callable[..., np.ndarray], shapes: list[tuple[int, ...]]
) -> None:
    xs = arrays(0, *shapes, low=0.5, high=2.0)
    out = np.asarray(model(name)(*xs))
    np.testing.assert_allclose(out, per_example(fn, *xs), rtol=1e-6)


def test_integer_add() -> None:
    a = np.arange(BATCH * 3, dtype=np.int32).reshape(BATCH, 3)
    out = model("ids_add")(a, a)
    assert out.dtype == np.int32 and (np.asarray(out) == 2 * a).all()


UNARY = {
    "neg": np.negative, "exp": np.exp, "log": np.log, "sqrt": np.sqrt, "square": np.square,
    "reciprocal": np.reciprocal, "softplus": lambda x: np.logaddexp(0.0, x),
    "silu": lambda x: x / (1.0 + np.exp(-x)), "swish": lambda x: x / (1.0 + np.exp(-x)),
    "scale": lambda x: x * -1.5, "shift": lambda x: x + 0.25,
}


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_ops(name: str) -> None:
    (x,) = arrays(1, (5,), low=0.1, high=4.0)
    x = np.concatenate([x, -x])  # negative inputs too, where the function is defined there
    if name in ("log", "sqrt"):
        x = np.abs(x)
    out = np.asarray(model(f"un_{name}")(x))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, UNARY[name](x.astype(np.float64)), rtol=2e-6, atol=1e-6)


SEEDS = st.integers(0, 2**32 - 1)


@LAWS
@given(SEEDS)
def test_mul_is_commutative(seed: int) -> None:
    a, b = arrays(seed, (3, 4), (4,))
    np.testing.assert_allclose(model("mul_ab")(a, b), model("mul_ba")(a, b), rtol=1e-6, atol=1e-6)


@LAWS
@given(SEEDS)
def test_mul_is_associative(seed: int) -> None:
    a, b, c = arrays(seed, (2, 3, 4), (3, 1), (4,))
    np.testing.assert_allclose(model("mul_left")(a, b, c), model("mul_right")(a, b, c), rtol=1e-6, atol=1e-6)


@LAWS
@given(SEEDS)
def test_sub_of_a_wire_and_itself_is_zero(seed: int) -> None:
    (x,) = arrays(seed, (5,), low=-1e3, high=1e3)
    assert (np.asarray(model("self_sub")(x)) == 0).all()


@LAWS
@given(SEEDS)
def test_exp_then_log_is_the_identity(seed: int) -> None:
    (x,) = arrays(seed, (5,), low=-5.0, high=5.0)
    np.testing.assert_allclose(model("exp_log")(x), x, atol=1e-5)


@LAWS
@given(SEEDS)
def test_scale_then_inverse_scale_is_the_identity(seed: int) -> None:
    (x,) = arrays(seed, (5,), low=-1e3, high=1e3)
    assert (np.asarray(model("halves")(x)) == x).all()  # powers of two: exact
    np.testing.assert_allclose(model("undo")(x), x, rtol=1e-6, atol=1e-4)


def test_a_gate_reads_like_its_formula() -> None:
    # GRU's h' = (h - c) * z + c, written with the new words.
    z, h, c = arrays(2, (5,), (5,), (5,))
    np.testing.assert_allclose(model("gate")(z, h, c), (h - c) * z + c, rtol=1e-6, atol=1e-6)


def test_ops_lower_to_single_primitives() -> None:
    # No Python overhead in the program: mul with broadcasting is one
    # broadcast of the shorter wire and one multiplication.
    a, b = arrays(0, (3, 4), (4,))
    jaxpr = jax.make_jaxpr(lambda a, b: model("bin_mul")(a, b))(a, b)
    assert [e.primitive.name for e in jaxpr.jaxpr.eqns] == ["broadcast_in_dim", "mul"]
    (x,) = arrays(0, (5,))
    jaxpr = jax.make_jaxpr(lambda x: model("un_shift")(x))(x)
    assert [e.primitive.name for e in jaxpr.jaxpr.eqns] == ["add"]


def test_gradients_flow_through_arithmetic() -> None:
    z, h, c = arrays(3, (5,), (5,), (5,))

    def loss(z: jax.Array) -> jax.Array:
        return model("gate")(z, h, c).sum()

    np.testing.assert_allclose(jax.grad(loss)(z), h - c, rtol=1e-6)
