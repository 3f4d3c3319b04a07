"""Options on the core generators: bias, axis, integer padding, eps, exact
GELU, attention dropout, and the new norms ``rmsnorm`` and ``groupnorm``.

Numbers are compared with NumPy written from the definitions (PyTorch's,
where published models need PyTorch's numbers) and with a conv net built
directly in Flax NNX with the same weights; every parameter count is
compared with the lowered ``nnx.Param`` scalars.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from catnet import loads
from catnet.errors import CatnetError
from catnet.summary import total_params

jax = pytest.importorskip("jax")
jnp = jax.numpy
nnx = pytest.importorskip("flax.nnx")

from catnet.lower import OPS, compile  # noqa: E402
from catnet.lower.model import Context  # noqa: E402


def model_of(src: str, entry: str | None = None, train: bool = False) -> nnx.Module:
    model = compile(src, entry, rngs=nnx.Rngs(0))
    if not train:
        model.eval()
    return model


def rand(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def params(model: nnx.Module) -> dict[str, np.ndarray]:
    return {".".join(map(str, p)): np.asarray(v.get_value()) for p, v in nnx.to_flat_state(nnx.state(model, nnx.Param))}


def param_count(model: nnx.Module) -> int:
    return sum(int(x.size) for x in jax.tree.leaves(nnx.state(model, nnx.Param)))


def error(src: str) -> CatnetError:
    with pytest.raises(CatnetError) as info:
        loads(src, "t.cat")
    return info.value


# -- counts equal the lowered parameters --------------------------------------------------

COUNTED = {
    "dense_no_bias": ("R[5, 3] -> R[5, 7] = dense(bias=false)", 3 * 7),
    "dense_axis0": ("R[5, 3] -> R[4, 3] = dense(axis=0)", 5 * 4 + 4),
    "dense_axis0_no_bias": ("R[5, 3] -> R[4, 3] = dense(4, bias=false, axis=0)", 5 * 4),
    "conv_no_bias": ("R[8, 8, 3] -> R[8, 8, 4] = conv(4, padding=1, bias=false)", 9 * 3 * 4),
    "conv1d_padded": ("R[9, 2] -> R[5, 6] = conv(6, kernel=5, stride=2, padding=2)", 5 * 2 * 6 + 6),
    "conv_transpose": ("R[4, 4, 3] -> R[8, 8, 5] = conv_transpose(5, kernel=2, stride=2)", 4 * 3 * 5 + 5),
    "conv_transpose_no_bias": ("R[4, 3] -> R[9, 5] = conv_transpose(5, kernel=3, stride=2, bias=false)", 3 * 3 * 5),
    "layernorm_axis0": ("R[5, 3] -> R[5, 3] = layernorm(eps=1e-5, axis=0)", 2 * 5),
    "rmsnorm": ("R[5, 3] -> R[5, 3] = rmsnorm", 3),
    "rmsnorm_axis0": ("R[5, 3] -> R[5, 3] = rmsnorm(axis=0)", 5),
    "groupnorm": ("R[4, 4, 8] -> R[4, 4, 8] = groupnorm(groups=4)", 2 * 8),
    "batchnorm_eps": ("R[6] -> R[6] = batchnorm(eps=1e-3)", 2 * 6),
    "attention_dropout": ("R[T, 8] -> R[T, 8] = attention(heads=2, dropout=0.1)", 4 * (8 * 8 + 8)),
    "cross_attention_dropout": ("R[T, 8] @ R[3, 6] -> R[T, 8] = cross_attention(heads=2, dropout=0.1)",
                                (8 * 8 + 8) * 2 + 2 * (6 * 8 + 8)),
}


@pytest.mark.parametrize("name", sorted(COUNTED))
def test_counts_equal_the_lowered_parameters(name: str) -> None:
    signature, expected = COUNTED[name]
    model = model_of(f"morphism m : {signature}\n")
    assert total_params(model.diagram) == param_count(model) == expected


# -- dense: bias and axis ----------------------------------------------------------------------


def test_dense_without_bias_is_a_matrix_product() -> None:
    model = model_of("morphism m : R[3] -> R[4] = dense(bias=false)\n")
    x = rand(5, 3)
    np.testing.assert_allclose(np.asarray(model(x)), x @ params(model)["dense.kernel"], rtol=1e-5, atol=1e-6)


def test_dense_on_axis_zero_mixes_tokens() -> None:
    # MLP-Mixer's token mixing: R[T, C] -> R[F, C], the same map for every channel.
    model = model_of("morphism m : R[5, 3] -> R[4, 3] = dense(axis=0)\n")
    p = params(model)
    x = rand(2, 5, 3)
    want = np.einsum("btc,tf->bfc", x, p["dense.kernel"]) + p["dense.bias"][None, :, None]
    np.testing.assert_allclose(np.asarray(model(x)), want, rtol=1e-5, atol=1e-5)


# -- conv and pools: integer padding, PyTorch's numbers -------------------------------------------


def _conv_reference(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, stride: int, pad: int) -> np.ndarray:
    """PyTorch's Conv2d (a cross-correlation of the zero-padded input), channels last; ``w`` is (k, k, in, out)."""
    x = np.pad(x, [(0, 0), (pad, pad), (pad, pad), (0, 0)])
    k = w.shape[0]
    oh, ow = (x.shape[1] - k) // stride + 1, (x.shape[2] - k) // stride + 1
    out = np.zeros((x.shape[0], oh, ow, w.shape[3]))
    for i in range(oh):
        for j in range(ow):
            out[:, i, j] = np.einsum("nklc,klco->no", x[:, i * stride : i * stride + k, j * stride : j * stride + k], w)
    return out + (b if b is not None else 0)


def _pool_reference(x: np.ndarray, k: int, stride: int, pad: int, kind: str) -> np.ndarray:
    """PyTorch's MaxPool2d (pads with -inf) and AvgPool2d (counts padded zeros), channels last."""
    fill = -np.inf if kind == "max" else 0.0
    x = np.pad(x, [(0, 0), (pad, pad), (pad, pad), (0, 0)], constant_values=fill)
    oh, ow = (x.shape[1] - k) // stride + 1, (x.shape[2] - k) // stride + 1
    out = np.zeros((x.shape[0], oh, ow, x.shape[3]))
    for i in range(oh):
        for j in range(ow):
            win = x[:, i * stride : i * stride + k, j * stride : j * stride + k]
            out[:, i, j] = win.max(axis=(1, 2)) if kind == "max" else win.sum(axis=(1, 2)) / (k * k)
    return out


@pytest.mark.parametrize("stride,pad", [(1, 1), (2, 1), (2, 0), (1, 2), (3, 2)])
def test_conv_with_integer_padding_is_pytorchs(stride: int, pad: int) -> None:
    n, k = 7, 3
    size = (n + 2 * pad - k) // stride + 1
    model = model_of(f"morphism m : R[{n}, {n}, 2] -> R[{size}, {size}, 3] = conv(3, stride={stride}, padding={pad})\n")
    p = params(model)
    x = rand(2, n, n, 2)
    want = _conv_reference(x.astype(np.float64), p["conv.kernel"], p["conv.bias"], stride, pad)
    np.testing.assert_allclose(np.asarray(model(x)), want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("k,stride,pad", [(3, 2, 1), (2, 2, 1), (3, 1, 1), (4, 3, 2)])
def test_pools_with_integer_padding_are_pytorchs(kind: str, k: int, stride: int, pad: int) -> None:
    n = 7
    size = (n + 2 * pad - k) // stride + 1
    src = f"morphism m : R[{n}, {n}, 2] -> R[{size}, {size}, 2] = {kind}pool(window={k}, stride={stride}, padding={pad})\n"
    x = rand(2, n, n, 2) - 3.0  # mostly negative: a zero-padded max would differ from -inf padding
    np.testing.assert_allclose(np.asarray(model_of(src)(x)), _pool_reference(x.astype(np.float64), k, stride, pad, kind),
                               rtol=1e-5, atol=1e-6)


CONV_NET = """
object Image = R[12, 12, 3]
morphism net : Image -> R[10] =
  conv(8, kernel=3, stride=2, padding=1, bias=false) ; batchnorm ; relu ;
  maxpool(window=3, stride=2, padding=1) ;
  conv(8, kernel=3, padding=1) ; relu ; avgpool(window=3, stride=1, padding=1) ;
  conv(16, kernel=5, stride=2, padding=2, bias=false) ; global_avgpool ; dense
"""


class HandNet(nnx.Module):
    """``CONV_NET`` written directly in Flax NNX, with PyTorch-style symmetric padding."""

    def __init__(self, rngs: nnx.Rngs) -> None:
        self.conv1 = nnx.Conv(3, 8, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)), use_bias=False, rngs=rngs)
        self.bn = nnx.BatchNorm(8, momentum=0.9, epsilon=1e-5, rngs=rngs)
        self.conv2 = nnx.Conv(8, 8, (3, 3), padding=((1, 1), (1, 1)), rngs=rngs)
        self.conv3 = nnx.Conv(8, 16, (5, 5), strides=(2, 2), padding=((2, 2), (2, 2)), use_bias=False, rngs=rngs)
        self.head = nnx.Linear(16, 10, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        x = jax.nn.relu(self.bn(self.conv1(x), use_running_average=True))
        x = nnx.max_pool(x, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))
        x = jax.nn.relu(self.conv2(x))
        x = nnx.avg_pool(x, (3, 3), strides=(1, 1), padding=((1, 1), (1, 1)), count_include_pad=True)
        x = self.conv3(x)
        return self.head(jnp.mean(x, axis=(1, 2)))


def test_a_conv_net_with_integer_padding_equals_the_same_net_in_flax() -> None:
    model = model_of(CONV_NET)
    hand = HandNet(nnx.Rngs(1))
    p = params(model)
    copies = [
        (hand.conv1.kernel, "conv.0.kernel"), (hand.bn.scale, "batchnorm.scale"), (hand.bn.bias, "batchnorm.bias"),
        (hand.conv2.kernel, "conv.1.kernel"), (hand.conv2.bias, "conv.1.bias"), (hand.conv3.kernel, "conv.2.kernel"),
        (hand.head.kernel, "dense.kernel"), (hand.head.bias, "dense.bias"),
    ]
    assert set(p) == {name for _, name in copies}, "the lowered net has exactly the hand-written parameters"
    for param, name in copies:
        param.set_value(jnp.asarray(p[name]))
    assert param_count(hand) == param_count(model) == total_params(model.diagram)
    x = rand(4, 12, 12, 3)
    np.testing.assert_allclose(np.asarray(model(x)), np.asarray(hand(x)), rtol=1e-5, atol=1e-5)


# -- norms -------------------------------------------------------------------------------------------


def test_layernorm_eps_and_axis() -> None:
    x = rand(2, 5, 3) * 0.01  # small values: eps matters
    for eps, axis in ((1e-6, -1), (1e-5, -1), (1e-2, 0)):
        model = model_of(f"morphism m : R[5, 3] -> R[5, 3] = layernorm(eps={eps}, axis={axis})\n")
        ax = 1 if axis == 0 else 2
        mean = x.mean(ax, keepdims=True)
        var = ((x - mean) ** 2).mean(ax, keepdims=True)
        want = (x - mean) / np.sqrt(var + eps)  # scale 1, bias 0 at initialization
        np.testing.assert_allclose(np.asarray(model(x)), want, rtol=1e-4, atol=1e-5)


def test_rmsnorm_divides_by_the_root_mean_square() -> None:
    x = rand(2, 5, 3)
    model = model_of("morphism m : R[5, 3] -> R[5, 3] = rmsnorm(eps=1e-5)\n")
    scale = np.linspace(0.5, 2.0, 3).astype(np.float32)
    nnx.state(model, nnx.Param)["rmsnorm"]["scale"].set_value(jnp.asarray(scale))
    want = x / np.sqrt((x**2).mean(-1, keepdims=True) + 1e-5) * scale
    np.testing.assert_allclose(np.asarray(model(x)), want, rtol=1e-5, atol=1e-6)
    model0 = model_of("morphism m : R[5, 3] -> R[5, 3] = rmsnorm(axis=0)\n")
    np.testing.assert_allclose(np.asarray(model0(x)), x / np.sqrt((x**2).mean(1, keepdims=True) + 1e-6), rtol=1e-5, atol=1e-6)


def test_groupnorm_normalizes_each_group_of_channels_over_space() -> None:
    x = rand(2, 4, 3, 6)
    model = model_of("morphism m : R[4, 3, 6] -> R[4, 3, 6] = groupnorm(groups=3, eps=1e-5)\n")
    g = x.reshape(2, 4, 3, 3, 2)  # channels in 3 groups of 2
    mean = g.mean(axis=(1, 2, 4), keepdims=True)
    var = g.var(axis=(1, 2, 4), keepdims=True)
    want = ((g - mean) / np.sqrt(var + 1e-5)).reshape(x.shape)
    np.testing.assert_allclose(np.asarray(model(x)), want, rtol=1e-4, atol=1e-5)


def test_groupnorm_groups_must_divide_the_channels() -> None:
    assert error("morphism m : R[4, 6] -> R[4, 6] = groupnorm(groups=4)\n").code == "E0306"
    e = error("morphism m[c] : R[4, c] -> R[4, c] = groupnorm(groups=4)\n")
    assert e.code == "E0306" and "there are c channels" in e.message
    loads("morphism m[c] : R[4, c * 8] -> R[4, c * 8] = groupnorm(groups=4)\n")
    # a width that the types decide later must be a multiple of the groups when they do
    d = loads("morphism m : R[8] -> R[12] = (dense ; groupnorm(groups=4) : R[8] -> R[12])\n").diagram("m")
    assert [layer.box.kwargs.get("features") for layer in d.layers] == [12, None]
    e = error("morphism m : R[8] -> R[10] = (dense ; groupnorm(groups=4) : R[8] -> R[10])\n")
    assert e.code == "E0303" and "ends in R[_ * 4]" in e.message


def test_batchnorm_eps_in_training_and_evaluation() -> None:
    x = rand(8, 4) * 0.01
    for eps in (1e-5, 1e-2):
        src = f"morphism m : R[4] -> R[4] = batchnorm(eps={eps})\n"
        train = model_of(src, train=True)
        want = (x - x.mean(0)) / np.sqrt(x.var(0) + eps)
        np.testing.assert_allclose(np.asarray(train(x)), want, rtol=1e-4, atol=1e-4)
        # fresh running statistics are mean 0, variance 1
        np.testing.assert_allclose(np.asarray(model_of(src)(x)), x / np.sqrt(1 + eps), rtol=1e-5, atol=1e-7)


# -- gelu ---------------------------------------------------------------------------------------------


def test_gelu_exact_and_tanh_forms() -> None:
    x = rand(3, 7) * 3
    erf = np.vectorize(math.erf)
    exact = 0.5 * x * (1 + erf(x / math.sqrt(2)))
    tanh = 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))
    np.testing.assert_allclose(np.asarray(model_of("morphism m : R[7] -> R[7] = gelu(approximate=false)\n")(x)), exact,
                               rtol=1e-5, atol=1e-6)
    for src in ("gelu", "gelu(approximate=true)"):
        np.testing.assert_allclose(np.asarray(model_of(f"morphism m : R[7] -> R[7] = {src}\n")(x)), tanh, rtol=1e-5, atol=1e-6)
    assert np.abs(exact - tanh).max() > 1e-4, "the two forms differ, so the test tells them apart"


# -- attention dropout ----------------------------------------------------------------------------------


def _attention_by_hand(p: dict[str, np.ndarray], x: np.ndarray, heads: int, keep: np.ndarray | None, rate: float) -> np.ndarray:
    """Multi-head self-attention with dropout ``keep`` on the probabilities (``[B, heads, T, T]``)."""
    def project(name: str) -> np.ndarray:
        return np.einsum("btd,dhk->bthk", x, p[f"{name}.kernel"]) + p[f"{name}.bias"]

    q, k, v = project("query"), project("key"), project("value")
    logits = np.einsum("bthk,bshk->bhts", q / math.sqrt(q.shape[-1]), k)
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    if keep is not None:
        probs = probs * keep / (1 - rate)
    out = np.einsum("bhts,bshk->bthk", probs, v)
    return np.einsum("bthk,hkd->btd", out, p["out.kernel"]) + p["out.bias"]


def test_attention_dropout_drops_probabilities_in_training_only() -> None:
    rate, heads = 0.5, 2
    src = f"morphism m : R[T, 8] -> R[T, 8] = attention(heads={heads}, dropout={rate})\n"
    model = model_of(src)
    box = model.diagram.layers[0].box
    p = {k.removeprefix("attention."): v.astype(np.float64) for k, v in params(model).items()}
    x = rand(3, 5, 8)
    # evaluation: no dropout, and the same numbers as a model without it
    np.testing.assert_allclose(np.asarray(model(x)), _attention_by_hand(p, x, heads, None, rate), rtol=1e-4, atol=1e-5)
    plain = model_of("morphism m : R[T, 8] -> R[T, 8] = attention(heads=2)\n")
    np.testing.assert_allclose(np.asarray(plain(x)), np.asarray(model(x)), rtol=1e-6)
    # training: the probabilities are dropped with a key from the context,
    # each entry of each example independently, and rescaled by 1 / (1 - rate)
    key = jax.random.key(7)
    ctx = Context(True, key, {}, {}, batch=3)
    (y,) = OPS["attention"].apply(model.attention, [jnp.asarray(x)], box, ctx)
    drawn = nnx.Rngs(dropout=key).dropout()
    keep = np.asarray(jax.random.bernoulli(drawn, 1 - rate, (3, heads, 5, 5)))
    assert not (keep == keep[:1]).all(), "examples get their own masks"
    np.testing.assert_allclose(np.asarray(y), _attention_by_hand(p, x, heads, keep, rate), rtol=1e-4, atol=1e-5)


def test_only_attention_with_dropout_draws_random_keys() -> None:
    assert OPS["attention"].draws(model_of("morphism m : R[T, 8] -> R[T, 8] = attention(dropout=0.1)\n").diagram.layers[0].box)
    plain = model_of("morphism m : R[T, 8] -> R[T, 8] = attention\n", train=True)
    assert not OPS["attention"].draws(plain.diagram.layers[0].box)
    assert plain._rngs is None, "a model without randomness holds no random stream"
    noisy = model_of("morphism m : R[T, 8] @ R[3, 8] -> R[T, 8] = cross_attention(dropout=0.3)\n", train=True)
    x, kv = rand(2, 4, 8), rand(2, 3, 8, seed=1)
    a, b = np.asarray(noisy(x, kv)), np.asarray(noisy(x, kv))
    assert not np.allclose(a, b), "each training call draws a fresh mask"
    noisy.eval()
    np.testing.assert_array_equal(np.asarray(noisy(x, kv)), np.asarray(noisy(x, kv)))


# -- defaults keep today's numbers --------------------------------------------------------------------------


def test_defaults_are_unchanged() -> None:
    module = loads("morphism m : R[4, 6] -> R[4, 6] = dense(6) ; layernorm ; gelu ; conv(kernel=3) ; batchnorm\n")
    boxes = {layer.box.name: layer.box.kwargs for layer in module.diagram("m").layers}
    assert boxes["dense"]["bias"] is True and boxes["dense"]["axis"] == -1
    assert boxes["layernorm"] == {"eps": 1e-6, "axis": -1}
    assert boxes["gelu"] == {"approximate": True}
    assert boxes["conv"]["padding"] == "same" and boxes["conv"]["bias"] is True
    assert boxes["batchnorm"] == {"momentum": 0.9, "eps": 1e-5}
    model = model_of("morphism m : R[4, 6] -> R[4, 6] = layernorm\n")
    x = rand(2, 4, 6)
    np.testing.assert_allclose(np.asarray(model(x)), np.asarray(nnx.LayerNorm(6, rngs=nnx.Rngs(0))(x)), rtol=1e-6)
