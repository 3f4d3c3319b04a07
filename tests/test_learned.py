"""Sources (``catnet.library.learned``): learned constants and noise.

``learned`` is checked as a box ``I -> R[shape]`` in both forms, compiled to
one ``nnx.Param`` broadcast over the batch (same for every example,
trainable, counted by ``catnet summary`` exactly as the lowering creates
it); ``noise`` is checked for its statistics, its evaluation mode and its
determinism under a seed.
"""

from __future__ import annotations

from functools import cache
from typing import Callable

import numpy as np
import pytest

import catnet
from catnet import CatnetError, loads
from catnet.ir import Ty
from catnet.summary import total_params

jax = pytest.importorskip("jax")
nnx = pytest.importorskip("flax.nnx")

MODELS = loads(
    """
morphism token : I -> R[1, 8] = learned(1, 8)
morphism cls_pointfree : R[5, 8] -> R[6, 8] = (learned(1, 8) ⊗ id) ; concat(axis=0)
morphism cls_wired(x : R[5, 8]) -> R[6, 8] {
  cls = learned(1, 8, init="trunc_normal")
  return concat(cls, x, axis=0)
}
morphism layer_scale(x : R[5, 8]) -> R[5, 8] {
  return mul(x, learned(8, init="constant", scale=1e-6))
}
morphism positions : R[5, 8] -> R[5, 8] = ((learned(16, 8) ; split(size=5, axis=0) ; fst) ⊗ id) ; add
morphism vit_tiny : R[4, 6] -> R[10] =
  dense(8) ; (learned(1, 8) ⊗ id) ; concat(axis=0) ; (learned(5, 8, init="zeros") ⊗ id) ; add ;
  repeat 2 (layernorm ; <id, (learned(8, init="ones") ⊗ id) ; mul> ; add) ;
  split(size=1, axis=0) ; fst ; flatten ; dense
morphism table : I -> R[256, 64] = learned(256, 64, init="normal", scale=0.5)
morphism table_uniform : I -> R[256, 64] = learned(256, 64, init="uniform", scale=0.5)
morphism table_trunc : I -> R[256, 64] = learned(256, 64, init="trunc_normal", scale=0.5)
morphism table_zeros : I -> R[3] = learned(3, init="zeros")
morphism table_ones : I -> R[3] = learned(3, init="ones")
morphism table_constant : I -> R[3] = learned(3, init="constant", scale=-0.25)

morphism gauss : R[64, 512] -> R[64, 512] = noise(scale=2)
morphism flat : R[64, 512] -> R[64, 512] = noise(dist="uniform", scale=0.5)
morphism two_draws(x : R[4]) -> R[4] ⊗ R[4] {
  return noise(x), noise(x)
}
morphism noisy_repeat : R[4] -> R[4] = repeat 2 (<id, noise> ; add)
morphism reparam(mu : R[16], logvar : R[16]) -> R[16] {
  eps = noise(mu)
  return add(mu, mul(eps, exp(scale(logvar, by=0.5))))
}
"""
)


@cache
def model(name: str, seed: int = 0) -> nnx.Module:
    return catnet.compile(MODELS, name, rngs=nnx.Rngs(seed))


def params(m: nnx.Module) -> dict[str, np.ndarray]:
    return {".".join(map(str, p)): np.asarray(v.get_value()) for p, v in nnx.to_flat_state(nnx.state(m, nnx.Param))}


# -- learned --------------------------------------------------------------------------


def test_type_and_count() -> None:
    assert MODELS["token"].dom == Ty() and MODELS["token"].cod == Ty.tensor_space("R", (1, 8))
    assert total_params(MODELS.diagram("token")) == 8
    assert total_params(MODELS.diagram("table")) == 256 * 64


def test_one_param_named_value_broadcast_over_the_batch() -> None:
    m = catnet.compile(MODELS, "cls_pointfree", rngs=nnx.Rngs(0))
    (name,) = params(m)
    assert name == "learned.value"
    assert isinstance(m.learned.value, nnx.Param)
    x = np.random.default_rng(0).normal(size=(4, 5, 8)).astype(np.float32)
    out = np.asarray(m(x))
    value = params(m)[name]
    assert out.shape == (4, 6, 8)
    for i in range(4):  # the same token for every example, then the example's own rows
        assert (out[i, :1] == value).all()
        assert (out[i, 1:] == x[i]).all()


def test_wiring_form_and_point_free_agree() -> None:
    # Same weights in both: the wiring form's `cls = learned(1, 8)` is the
    # same box as the point-free `learned(1, 8) ⊗ id`.
    wired, free = (catnet.compile(MODELS, name, rngs=nnx.Rngs(0)) for name in ("cls_wired", "cls_pointfree"))
    nnx.update(wired, nnx.state(free, nnx.Param))
    x = np.random.default_rng(1).normal(size=(2, 5, 8)).astype(np.float32)
    np.testing.assert_array_equal(wired(x), free(x))


def test_no_inputs_gives_a_batch_of_one() -> None:
    out = np.asarray(model("token")())
    assert out.shape == (1, 1, 8)


def test_composes_with_structural_boxes() -> None:
    m = model("positions")
    table = params(m)["learned.value"]
    x = np.zeros((2, 5, 8), np.float32)
    np.testing.assert_array_equal(m(x), np.broadcast_to(table[:5], (2, 5, 8)))


def test_gradients_reach_the_constant() -> None:
    m = catnet.compile(MODELS, "layer_scale", rngs=nnx.Rngs(0))
    x = np.random.default_rng(2).normal(size=(3, 5, 8)).astype(np.float32)

    def loss(m: nnx.Module) -> jax.Array:
        return m(x).sum()

    grads = nnx.grad(loss)(m)
    (g,) = jax.tree.leaves(nnx.state(grads, nnx.Param))
    np.testing.assert_allclose(g, x.sum(axis=(0, 1)), rtol=1e-5)
    np.testing.assert_allclose(params(m)["learned.value"], np.full(8, 1e-6, np.float32))


@pytest.mark.parametrize(
    ("name", "check"),
    [
        ("table_zeros", lambda v: (v == 0).all()),
        ("table_ones", lambda v: (v == 1).all()),
        ("table_constant", lambda v: (v == -0.25).all()),
        ("table", lambda v: abs(v.mean()) < 0.02 and abs(v.std() - 0.5) < 0.02),
        ("table_uniform", lambda v: v.min() >= -0.5 and v.max() < 0.5 and abs(v.std() - 0.5 / np.sqrt(3)) < 0.01),
        ("table_trunc", lambda v: v.min() >= -1.0 and v.max() <= 1.0 and 0.4 < v.std() < 0.5),
    ],
)
def test_initializers(name: str, check: Callable[[np.ndarray], bool]) -> None:
    (value,) = params(model(name)).values()
    assert value.dtype == np.float32 and check(value)


VIT = ("vit_tiny", "cls_wired", "positions", "layer_scale", "table", "noisy_repeat", "reparam")


@pytest.mark.parametrize("name", VIT)
def test_summary_counts_the_lowered_params(name: str) -> None:
    m = model(name)
    lowered = sum(int(np.prod(v.shape)) for v in params(m).values())
    assert total_params(MODELS.diagram(name)) == lowered


def test_vit_tiny_count_by_hand() -> None:
    dense_in, token, pos = 6 * 8 + 8, 8, 5 * 8
    block = 2 * 8 + 8  # layernorm scale and bias, the layer scale
    head = 8 * 10 + 10
    assert total_params(MODELS.diagram("vit_tiny")) == dense_in + token + pos + 2 * block + head == 242
    out = model("vit_tiny")(np.ones((2, 4, 6), np.float32))
    assert out.shape == (2, 10)


def test_symbolic_shape_is_refused_when_compiled() -> None:
    text = "morphism pos[T] : R[T, 8] -> R[T, 8] = (learned(T, 8) ⊗ id) ; add\n"
    loads(text)  # checks: the size is a symbol of the signature
    with pytest.raises(CatnetError) as info:
        catnet.compile(text, "pos", rngs=nnx.Rngs(0))
    assert info.value.code == "E0304" and "`learned`" in info.value.message
    fixed = catnet.compile(text + "morphism use : R[3, 8] -> R[3, 8] = pos\n", "use", rngs=nnx.Rngs(0))
    assert fixed(np.zeros((2, 3, 8), np.float32)).shape == (2, 3, 8)


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("morphism f : I -> R[8] = learned\n", "E0306"),
        ("morphism f : R[8] -> R[8] = learned(8)\n", "E0306"),
        ("morphism f(x : R[8]) -> R[8] {\n  return learned(x, 8)\n}\n", "E0504"),
        ("morphism f : I -> R[8] = learned(8, init=\"xavier\")\n", "E0208"),
        ("morphism f : I -> R[8] = learned(8, scale=-1)\n", "E0306"),
        ("morphism f : I -> R[8] = learned(8, 0)\n", "E0208"),
    ],
)
def test_misuse(text: str, code: str) -> None:
    with pytest.raises(CatnetError) as info:
        loads(text)
    assert info.value.code == code


# -- noise ----------------------------------------------------------------------------


def test_normal_noise_statistics() -> None:
    x = np.zeros((4, 64, 512), np.float32)
    out = np.asarray(catnet.compile(MODELS, "gauss", rngs=nnx.Rngs(0))(x))
    assert abs(out.mean()) < 0.02 and abs(out.std() - 2.0) < 0.02


def test_uniform_noise_statistics() -> None:
    x = np.zeros((4, 64, 512), np.float32)
    out = np.asarray(catnet.compile(MODELS, "flat", rngs=nnx.Rngs(0))(x))
    assert out.min() >= -0.5 and out.max() < 0.5
    assert abs(out.mean()) < 0.005 and abs(out.std() - 0.5 / np.sqrt(3)) < 0.005


@pytest.mark.parametrize("name", ["gauss", "flat"])
def test_noise_is_its_mean_zero_in_evaluation(name: str) -> None:
    m = catnet.compile(MODELS, name, rngs=nnx.Rngs(0))
    m.eval()
    x = np.ones((2, 64, 512), np.float32)
    assert (np.asarray(m(x)) == 0).all()
    m.train()
    assert (np.asarray(m(x)) != 0).any()


def test_same_seed_same_noise_fresh_noise_per_call() -> None:
    x = np.zeros((3, 4), np.float32)
    a, b = (catnet.compile(MODELS, "two_draws", rngs=nnx.Rngs(7)) for _ in range(2))
    first = [np.asarray(y) for y in a(x)]
    np.testing.assert_array_equal(first, [np.asarray(y) for y in b(x)])
    assert not np.array_equal(first[0], first[1])  # two boxes, two draws
    again = [np.asarray(y) for y in a(x)]
    assert not np.array_equal(first[0], again[0])  # a second call draws afresh
    other = catnet.compile(MODELS, "two_draws", rngs=nnx.Rngs(8))(x)
    assert not np.array_equal(first[0], np.asarray(other[0]))


def test_fresh_noise_under_jit() -> None:
    m = catnet.compile(MODELS, "two_draws", rngs=nnx.Rngs(0))
    x = np.zeros((3, 4), np.float32)

    @nnx.jit
    def step(m: nnx.Module, x: jax.Array) -> jax.Array:
        return m(x)[0]

    assert not np.array_equal(step(m, x), step(m, x))


def test_noise_in_a_repeat_differs_per_copy() -> None:
    m = catnet.compile(MODELS, "noisy_repeat", rngs=nnx.Rngs(0))
    x = np.zeros((1, 4), np.float32)
    out = np.asarray(m(x))
    assert (out != 0).all()
    m.eval()
    assert (np.asarray(m(x)) == 0).all()


def test_reparameterization_gradients() -> None:
    m = catnet.compile(MODELS, "reparam", rngs=nnx.Rngs(0))
    m.eval()  # eps = 0: z = mu, whatever logvar is
    rng = np.random.default_rng(3)
    mu, logvar = (rng.normal(size=(2, 16)).astype(np.float32) for _ in range(2))
    np.testing.assert_array_equal(m(mu, logvar), mu)
    m.train()

    def loss(m: nnx.Module, mu: jax.Array, logvar: jax.Array) -> jax.Array:
        return m(mu, logvar).sum()

    # nnx.grad: the model's random stream is state that the call advances.
    gmu, glogvar = nnx.grad(loss, argnums=(1, 2))(m, mu, logvar)
    np.testing.assert_allclose(gmu, np.ones_like(mu))
    assert (np.asarray(glogvar) != 0).all()  # the noise scales with exp(logvar / 2)


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("morphism f : Z[8] -> Z[8] = noise\n", "E0306"),
        ("morphism f : R[8] -> R[8] = noise(dist=\"gumbel\")\n", "E0208"),
        ("morphism f : R[8] -> R[8] = noise(scale=-1)\n", "E0208"),
    ],
)
def test_noise_misuse(text: str, code: str) -> None:
    with pytest.raises(CatnetError) as info:
        loads(text)
    assert info.value.code == code


def test_a_shared_constant_is_one_param() -> None:
    text = (
        "shared cls = (learned(1, 8) : I -> R[1, 8])\n"
        "morphism join : R[3, 8] -> R[4, 8] = (cls ⊗ id) ; concat(axis=0)\n"
        "morphism two : R[3, 8] ⊗ R[3, 8] -> R[4, 8] ⊗ R[4, 8] = join ⊗ join\n"
    )
    m = catnet.compile(text, "two", rngs=nnx.Rngs(0))
    assert list(params(m)) == ["cls.learned.value"] and total_params(loads(text).diagram("two")) == 8
    a, b = m(np.zeros((2, 3, 8), np.float32), np.ones((2, 3, 8), np.float32))
    np.testing.assert_array_equal(a[:, 0], b[:, 0])
