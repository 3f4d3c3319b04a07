"""Mixed precision in the lowering and ``catnet.compile``'s ``dtype``,
``param_dtype`` and ``checkpoint`` arguments.

bfloat16 models keep float32 weights, hand on bfloat16 real wires and
integer wires unchanged, stay close to their float32 twins and train;
float32 stays the default, with the same numbers; losses and softmax
compute in float32; bad values are E0801; ``checkpoint=`` restores a
``catnet train`` run.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import catnet
from catnet.cli import main
from catnet.errors import CatnetError
from conftest import ROOT

jax = pytest.importorskip("jax")
jnp = jax.numpy
nnx = pytest.importorskip("flax.nnx")

from catnet.lower import lower  # noqa: E402
from catnet.lower.precision import FLOAT32  # noqa: E402

CNN = ROOT / "examples" / "digits_cnn.cat"
MLP = ROOT / "examples" / "digits_mlp.cat"
TRANSFORMER = ROOT / "examples" / "transformer.cat"
RNN = ROOT / "examples" / "rnn.cat"

#: bfloat16 keeps 8 bits of mantissa: outputs of order 1 agree to a few hundredths.
BF16_TOLERANCE = 0.1


def _inputs(model: nnx.Module, batch: int = 4, length: int = 8) -> list[np.ndarray]:
    """Random inputs for the model's domain: token ids below 10 for integer wires, normals otherwise."""
    rng = np.random.default_rng(0)
    out = []
    for ob in model.dom.obs:
        shape = (batch,) + tuple(d if isinstance(d, int) else length for d in ob.shape)
        out.append(rng.integers(0, 10, shape).astype(np.int32) if ob.base == "Z" else rng.standard_normal(shape).astype(np.float32))
    return out


def _call(model: nnx.Module, *inputs: np.ndarray) -> jax.Array:
    """``model(*inputs)`` compiled as one program (op-by-op dispatch is slower on a CPU)."""
    return nnx.jit(lambda m, *xs: m(*xs))(model, *inputs)


def _param_dtypes(model: nnx.Module) -> set[str]:
    return {str(v.dtype) for v in jax.tree.leaves(nnx.state(model, nnx.Param))}


@pytest.mark.parametrize("path", [CNN, TRANSFORMER, RNN], ids=["cnn", "transformer", "rnn"])
def test_bfloat16_outputs_are_close_to_float32_with_float32_weights(path: Path) -> None:
    full = catnet.compile(path, rngs=nnx.Rngs(0))
    half = catnet.compile(path, rngs=nnx.Rngs(0), dtype=jnp.bfloat16)
    full.eval()
    half.eval()
    xs = _inputs(full)
    a, b = _call(full, *xs), _call(half, *xs)
    assert a.dtype == jnp.float32 and b.dtype == jnp.bfloat16
    assert _param_dtypes(half) == {"float32"}
    # the same weights: precision changes the arithmetic, not the draw
    assert all(np.array_equal(p, q) for p, q in zip(jax.tree.leaves(nnx.state(full, nnx.Param)), jax.tree.leaves(nnx.state(half, nnx.Param))))
    np.testing.assert_allclose(np.asarray(b, np.float32), np.asarray(a), atol=BF16_TOLERANCE)


def test_every_real_wire_is_bfloat16_and_integer_wires_stay_integers() -> None:
    model = catnet.compile(TRANSFORMER, rngs=nnx.Rngs(0), dtype="bfloat16")
    seen: list[tuple[str, str]] = []

    def walk(wires, ctx):
        from catnet.lower.model import apply_box

        for i, layer in enumerate(model.diagram.layers):
            k, n = len(layer.left), len(layer.box.dom)
            module = model.child(i)
            outs = apply_box(layer.box, module, wires[k : k + n], ctx)
            seen.extend((layer.box.name, str(x.dtype)) for x in outs)
            wires = wires[:k] + outs + wires[k + n :]
        return wires

    (tokens,) = _inputs(model)
    model.run_lowering(walk, tokens)
    assert seen and all(dtype == "bfloat16" for _, dtype in seen), seen
    ints = catnet.compile("object T = Z[4]\nmorphism f : T -> T = id\n", "f", rngs=nnx.Rngs(0), dtype=jnp.bfloat16)
    assert ints(np.zeros((2, 4), np.int32)).dtype == jnp.int32


def test_gradients_flow_in_float32_through_a_bfloat16_model() -> None:
    model = catnet.compile(CNN, rngs=nnx.Rngs(0), dtype=jnp.bfloat16)
    x = _inputs(model, batch=8)[0]
    y = np.arange(8) % 10

    def loss(m: nnx.Module) -> jax.Array:
        import optax

        return optax.softmax_cross_entropy_with_integer_labels(m(x).astype(jnp.float32), y).mean()

    grads = nnx.jit(nnx.grad(loss))(model)
    leaves = jax.tree.leaves(grads)
    assert leaves and all(g.dtype == jnp.float32 and bool(jnp.all(jnp.isfinite(g))) for g in leaves)
    assert all(float(jnp.abs(g).sum()) > 0 for g in leaves)


def test_float32_is_the_default_and_gives_the_same_numbers() -> None:
    default = catnet.compile(TRANSFORMER, rngs=nnx.Rngs(3))
    explicit = catnet.compile(TRANSFORMER, rngs=nnx.Rngs(3), dtype=jnp.float32, param_dtype="float32")
    assert default.precision == FLOAT32 and default.precision.full
    xs = _inputs(default)
    assert np.array_equal(np.asarray(_call(default, *xs)), np.asarray(_call(explicit, *xs)))
    assert _param_dtypes(default) == {"float32"}


def test_param_dtype_keeps_the_weights_in_bfloat16() -> None:
    model = catnet.compile(MLP, rngs=nnx.Rngs(0), dtype=jnp.bfloat16, param_dtype=jnp.bfloat16)
    assert _param_dtypes(model) == {"bfloat16"}
    assert model(*_inputs(model)).dtype == jnp.bfloat16


def test_losses_and_softmax_compute_in_float32() -> None:
    text = (
        "morphism objective(x : R[5, 7], y : Z[5]) -> R[] {\n  return cross_entropy(x, y)\n}\n"
        "morphism probs : R[7] -> R[7] = softmax\n"
    )
    loss = catnet.compile(text, "objective", rngs=nnx.Rngs(0), dtype=jnp.bfloat16)
    rng = np.random.default_rng(1)
    logits, labels = (20 * rng.standard_normal((3, 5, 7))).astype(np.float32), rng.integers(0, 7, (3, 5)).astype(np.int32)
    out = loss(logits, labels)
    assert out.dtype == jnp.float32
    import optax

    # the logits are rounded to bfloat16 on the way in; the loss itself is float32 arithmetic
    rounded = jnp.asarray(logits, jnp.bfloat16).astype(jnp.float32)
    expected = optax.softmax_cross_entropy_with_integer_labels(rounded, labels).mean(axis=1)
    np.testing.assert_allclose(np.asarray(out), np.asarray(expected), rtol=1e-6)
    probs = catnet.compile(text, "probs", rngs=nnx.Rngs(0), dtype=jnp.bfloat16)(logits[:, 0])
    assert probs.dtype == jnp.bfloat16
    np.testing.assert_allclose(np.asarray(probs, np.float32).sum(axis=-1), 1.0, atol=1e-2)


def test_sums_of_losses_stay_float32() -> None:
    text = "morphism objective(x : R[7], y : Z[], z : R[7]) -> R[] {\n  return cross_entropy(x, y) + mse(x, z)\n}\n"
    model = catnet.compile(text, "objective", rngs=nnx.Rngs(0), dtype=jnp.bfloat16)
    rng = np.random.default_rng(2)
    x, z = rng.standard_normal((2, 4, 7)).astype(np.float32)
    assert model(x, rng.integers(0, 7, (4,)).astype(np.int32), z).dtype == jnp.float32


def test_modules_of_catnet_s_own_hand_on_the_computation_dtype() -> None:
    text = (
        "object X = R[4, 8]\n"
        "morphism f(x : X) -> X {\n  return lu_linear(actnorm(x)) + learned(4, 8)\n}\n"
    )
    model = catnet.compile(text, "f", rngs=nnx.Rngs(0), dtype=jnp.bfloat16)
    assert _call(model, _inputs(model)[0]).dtype == jnp.bfloat16


def test_attention_dropout_trains_in_bfloat16() -> None:
    text = (
        "object S = Seq[T](R[16])\n"
        "morphism f : S -> S = attention(heads=2, causal=true, dropout=0.5)\n"
    )
    model = catnet.compile(text, "f", rngs=nnx.Rngs(0), dtype=jnp.bfloat16)
    x = _inputs(model)[0]
    out = _call(model, x)
    assert out.dtype == jnp.bfloat16 and bool(jnp.all(jnp.isfinite(out.astype(jnp.float32))))
    model.eval()
    full = catnet.compile(text, "f", rngs=nnx.Rngs(0))
    full.eval()
    np.testing.assert_allclose(np.asarray(_call(model, x), np.float32), np.asarray(_call(full, x)), atol=BF16_TOLERANCE)


@pytest.mark.parametrize(
    ("argument", "value"),
    [("dtype", "int32"), ("dtype", 3), ("dtype", True), ("param_dtype", "float64"), ("param_dtype", "half-ish"), ("dtype", jnp.int8)],
)
def test_bad_dtypes_are_e0801(argument: str, value: object) -> None:
    with pytest.raises(CatnetError) as e:
        catnet.compile(MLP, rngs=nnx.Rngs(0), **{argument: value})
    assert e.value.code == "E0801" and f"`{argument}`" in e.value.message and "catnet.compile" in e.value.message
    module = catnet.load(MLP)
    with pytest.raises(CatnetError) as e:
        lower(module.diagram(module.entry_name()), rngs=nnx.Rngs(0), **{argument: value})
    assert e.value.code == "E0801" and "catnet.lower.lower" in e.value.message


def test_a_checkpoint_that_is_not_a_path_is_e0801() -> None:
    with pytest.raises(CatnetError) as e:
        catnet.compile(MLP, rngs=nnx.Rngs(0), checkpoint=42)
    assert e.value.code == "E0801" and "`checkpoint`" in e.value.message


def test_checkpoint_restores_a_training_run(tmp_path: Path) -> None:
    pytest.importorskip("orbax.checkpoint")
    from catnet.train import load_params

    out = tmp_path / "run"
    assert main(["train", "--quiet", str(MLP), "--data", "digits", "--epochs", "1", "--seed", "0", "--out", str(out)]) == 0
    fresh = catnet.compile(MLP, rngs=nnx.Rngs(0))
    model = catnet.compile(MLP, rngs=nnx.Rngs(0), checkpoint=out)
    saved = load_params(out)
    flat = {".".join(map(str, path)): np.asarray(v.get_value()) for path, v in nnx.to_flat_state(nnx.state(model, nnx.Param))}
    assert flat.keys() == saved.keys()
    assert all(np.array_equal(flat[k], saved[k]) for k in saved)
    before = {".".join(map(str, path)): np.asarray(v.get_value()) for path, v in nnx.to_flat_state(nnx.state(fresh, nnx.Param))}
    assert any(not np.array_equal(before[k], saved[k]) for k in saved)
