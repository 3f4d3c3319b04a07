"""The lowering: every example runs, every generator has the checker's shapes,
parameters follow Para semantics and are named after the diagram."""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")
jnp = jax.numpy
nnx = pytest.importorskip("flax.nnx")

import catnet  # noqa: E402
from catnet import dims  # noqa: E402
from catnet.errors import CatnetError  # noqa: E402
from catnet.ir import Box, Diagram, Ob, Ty  # noqa: E402
from catnet.lower import compile, lower  # noqa: E402

from conftest import EXAMPLES, ROOT  # noqa: E402

SEQ = 5  # the length given to a symbolic sequence axis


def concrete(ob: Ob) -> tuple[int, ...]:
    return tuple(d if isinstance(d, int) else SEQ for d in ob.shape)


def batch_for(ty: Ty, n: int = 3, seed: int = 0) -> list[np.ndarray]:
    """Random arrays, one per wire of ``ty``, with a batch axis of ``n``."""
    rng = np.random.default_rng(seed)
    out = []
    for ob in ty.obs:
        shape = (n,) + concrete(ob)
        out.append(rng.integers(0, 8, shape).astype(np.int32) if ob.base == "Z" else rng.standard_normal(shape).astype(np.float32))
    return out


def outputs(y: object) -> list[jax.Array]:
    return list(y) if isinstance(y, tuple) else [y]  # type: ignore[arg-type]


def param_paths(model: nnx.Module) -> dict[str, tuple[int, ...]]:
    return {".".join(map(str, p)): tuple(v.get_value().shape) for p, v in nnx.to_flat_state(nnx.state(model, nnx.Param))}


def check_shapes(model: nnx.Module, ys: object, cod: Ty, n: int = 3) -> None:
    outs = outputs(ys)
    assert len(outs) == len(cod)
    for y, ob in zip(outs, cod.obs):
        assert y.shape == (n,) + concrete(ob), (y.shape, ob)
        assert y.dtype == (jnp.int32 if ob.base == "Z" else jnp.float32)


# -- the examples -----------------------------------------------------------


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_every_example_compiles_and_runs_forward(path) -> None:
    model = compile(str(path), rngs=nnx.Rngs(0))
    xs = batch_for(model.dom)
    check_shapes(model, model(*xs), model.cod)
    # the same numbers through nnx.split / jax.jit / nnx.merge, in eval mode
    model.eval()
    graphdef, state = nnx.split(model)
    jitted = jax.jit(lambda s, *a: nnx.merge(graphdef, s)(*a))
    for a, b in zip(outputs(model(*xs)), outputs(jitted(state, *xs))):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-5)
        assert np.all(np.isfinite(np.asarray(a)))


def test_compile_accepts_text_module_and_diagram() -> None:
    text = (ROOT / "examples" / "digits_mlp.cat").read_text()
    a = compile(text, rngs=nnx.Rngs(1))
    b = compile(catnet.loads(text), rngs=nnx.Rngs(1))
    c = lower(catnet.loads(text).diagram(), rngs=nnx.Rngs(1))
    d = catnet.compile(text, "encoder", rngs=nnx.Rngs(1))
    pa, pb, pc = (nnx.state(m, nnx.Param) for m in (a, b, c))
    for x, y, z in zip(jax.tree.leaves(pa), jax.tree.leaves(pb), jax.tree.leaves(pc)):
        assert np.array_equal(x, y) and np.array_equal(x, z)
    assert d.cod.structure() == "R[128]"


def test_parameters_are_named_after_the_diagram() -> None:
    mlp = compile(str(ROOT / "examples" / "digits_mlp.cat"), rngs=nnx.Rngs(0))
    assert param_paths(mlp) == {
        "encoder.dense.kernel": (64, 128),
        "encoder.dense.bias": (128,),
        "head.dense.kernel": (128, 10),
        "head.dense.bias": (10,),
    }
    cnn = compile(str(ROOT / "examples" / "digits_cnn.cat"), rngs=nnx.Rngs(0))
    assert param_paths(cnn)["classifier.dense.1.kernel"] == (64, 10)  # the second `dense` of classifier
    assert param_paths(cnn)["stage2.conv.kernel"] == (3, 3, 16, 32)
    transformer = compile(str(ROOT / "examples" / "transformer.cat"), rngs=nnx.Rngs(0))
    paths = param_paths(transformer)
    # `repeat 4 block`: one module with every variable stacked 4 deep
    assert paths["block.attention.query.kernel"] == (4, 64, 4, 16)
    assert paths["block.layernorm.1.scale"] == (4, 64)
    assert paths["embed.embedding"] == (256, 64)
    assert all(p.startswith(("block.", "embed.", "layernorm.", "dense.")) for p in paths)


def test_same_seed_same_weights_and_fresh_instances_differ() -> None:
    text = """
object A = R[8]
morphism f : A -> A = dense
morphism g : A -> A = f ; f
main g
"""
    a, b = compile(text, rngs=nnx.Rngs(5)), compile(text, rngs=nnx.Rngs(5))
    for x, y in zip(jax.tree.leaves(nnx.state(a)), jax.tree.leaves(nnx.state(b))):
        assert np.array_equal(jax.random.key_data(x) if jnp.issubdtype(x.dtype, jax.dtypes.prng_key) else x,
                              jax.random.key_data(y) if jnp.issubdtype(y.dtype, jax.dtypes.prng_key) else y)
    paths = param_paths(a)
    assert set(paths) == {"f.0.dense.kernel", "f.0.dense.bias", "f.1.dense.kernel", "f.1.dense.bias"}
    k0 = nnx.state(a, nnx.Param)["f"][0]["dense"]["kernel"].get_value()
    k1 = nnx.state(a, nnx.Param)["f"][1]["dense"]["kernel"].get_value()
    assert not np.array_equal(k0, k1), "two uses of a box are two parameter sets"


def test_shared_instance_is_one_parameter_set() -> None:
    model = compile(str(ROOT / "examples" / "siamese.cat"), rngs=nnx.Rngs(0))
    paths = param_paths(model)
    assert sum(p.startswith("enc.") for p in paths) == 4  # one encoder: two dense layers
    model.eval()
    x1, x2 = batch_for(model.dom, seed=1)
    # The one encoder sees both images: the gradient reaches it from both wires.
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)

    def score(p, a, b):
        return nnx.merge(graphdef, p, rest)(a, b).sum()

    g_both = jax.grad(score)(params, x1, x2)
    g_first = jax.grad(score)(params, x1, jax.lax.stop_gradient(x2))
    assert np.abs(g_both["enc"]["encoder"]["dense"][0]["kernel"].get_value()).sum() > 0
    assert np.array_equal(g_both["enc"]["encoder"]["dense"][0]["kernel"].get_value(),
                          g_first["enc"]["encoder"]["dense"][0]["kernel"].get_value())


def test_repeat_scans_stacked_parameters_like_an_unrolled_loop() -> None:
    text = """
object W = R[16]
morphism block : W -> W = dense ; tanh ; layernorm
morphism net : W -> W = repeat 3 block
main net
"""
    model = compile(text, rngs=nnx.Rngs(0))
    (x,) = batch_for(model.dom)
    params = nnx.state(model, nnx.Param)["block"]
    kernels = params["dense"]["kernel"].get_value()
    assert kernels.shape == (3, 16, 16)
    assert not np.array_equal(kernels[0], kernels[1]), "each copy is a fresh instance"
    bias = np.asarray(params["dense"]["bias"].get_value())
    scale, shift = (np.asarray(params["layernorm"][k].get_value()) for k in ("scale", "bias"))
    h = x.astype(np.float64)
    for i in range(3):
        h = np.tanh(h @ np.asarray(kernels[i]) + bias[i])
        mean = h.mean(-1, keepdims=True)
        var = ((h - mean) ** 2).mean(-1, keepdims=True)
        h = (h - mean) / np.sqrt(var + 1e-6) * scale[i] + shift[i]
    np.testing.assert_allclose(np.asarray(model(x)), h, rtol=1e-4, atol=1e-4)


def test_repeat_threads_state_keys_and_shared_weights_through_the_scan() -> None:
    text = """
object W = R[8]
morphism mix : W -> W = dense
shared m = mix
morphism block : W -> W = m ; batchnorm ; dropout(0.5)
morphism net : W -> W = repeat 3 block
main net
"""
    model = compile(text, rngs=nnx.Rngs(0))
    paths = param_paths(model)
    assert paths["m.mix.dense.kernel"] == (8, 8), "the shared instance is not stacked"
    assert paths["block.batchnorm.scale"] == (3, 8)
    (x,) = batch_for(model.dom, n=16)
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)

    @jax.jit
    def forward(p, r):
        m = nnx.merge(graphdef, p, r, copy=True)
        y = m(x)
        return y, nnx.split(m, nnx.Param, ...)[2]

    y1, rest1 = forward(params, rest)
    y2, _ = forward(params, rest1)
    means = rest1["block"]["batchnorm"]["mean"].get_value()
    assert means.shape == (3, 8) and not np.allclose(means, 0), "each copy updates its own statistics"
    assert not np.allclose(means[0], means[1])
    assert not np.array_equal(np.asarray(y1), np.asarray(y2)), "the dropout stream advances between calls"
    zeros = np.asarray(y1) == 0
    assert 0.2 < zeros.mean() < 0.8


# -- the generator library, each with the checker's shapes -----------------------------


GENERATOR_CASES = {
    "dense": "R[5, 3] -> R[5, 7] = dense",
    "conv1d_valid_stride": "R[12, 3] -> R[5, 4] = conv(4, kernel=3, stride=2, padding=\"valid\")",
    "conv2d_same": "R[8, 8, 2] -> R[8, 8, 6] = conv(6, kernel=3)",
    "conv2d_same_stride": "R[7, 7, 2] -> R[4, 4, 6] = conv(6, kernel=3, stride=2)",
    "maxpool2d": "R[8, 6, 3] -> R[4, 3, 3] = maxpool(window=2)",
    "avgpool1d_stride": "R[9, 2] -> R[4, 2] = avgpool(window=3, stride=2)",
    "maxpool_same": "R[5, 5, 1] -> R[3, 3, 1] = maxpool(window=2, padding=\"same\")",
    "global_avgpool": "R[4, 4, 3] -> R[3] = global_avgpool",
    "global_maxpool": "R[6, 5] -> R[5] = global_maxpool",
    "flatten": "R[2, 3, 4] -> R[24] = flatten",
    "reshape": "R[24] -> R[2, 3, 4] = reshape(2, 3, 4)",
    "relu": "R[4] -> R[4] = relu",
    "gelu": "R[4] -> R[4] = gelu",
    "tanh": "R[4] -> R[4] = tanh",
    "sigmoid": "R[4] -> R[4] = sigmoid",
    "softmax": "R[3, 4] -> R[3, 4] = softmax(axis=0)",
    "layernorm": "R[3, 4] -> R[3, 4] = layernorm",
    "batchnorm": "R[6] -> R[6] = batchnorm",
    "dropout": "R[6] -> R[6] = dropout(0.5)",
    "embed": "Z[T] -> R[T, 8] = embed(vocab=10)",
    "attention": "R[T, 8] -> R[T, 8] = attention(heads=2)",
    "attention_causal": "R[T, 8] -> R[T, 8] = attention(heads=4, causal=true)",
    "cross_attention": "R[T, 8] @ R[3, 6] -> R[T, 8] = cross_attention(heads=2)",
    "coupling": "R[5] -> R[5] = coupling(hidden=7)",
    "reverse": "R[5] -> R[5] = reverse",
    "actnorm": "R[3, 4] -> R[3, 4] = actnorm",
    "lu_linear": "R[3, 4] -> R[3, 4] = lu_linear",
    "permute": "R[5] -> R[5] = permute(seed=3)",
    "triv": "E -> R[2] ⊗ R[2] = triv(charts=2, depth=2, hidden=8)\nbundle E = R[2] over R[2] in R[3]",
    "triv_default_total": "E -> R[2] ⊗ R[3] = triv(depth=1, hidden=4)\nbundle E = R[3] over R[2]",
    "proj": "E -> R[2] = proj\nbundle E = R[2] over R[2] in R[3]",
    "fiberwise": "R[2] ⊗ R[3] -> R[2] ⊗ R[4] = fiberwise(hidden=8)",
    "id": "R[2] @ R[3] -> R[2] @ R[3] = id",
    "swap": "R[2] @ R[3] -> R[3] @ R[2] = swap",
    "copy": "R[2] -> R[2] @ R[2] = copy",
    "discard": "R[2] @ R[3] -> R[3] = discard @ id",
    "add": "R[2] @ R[2] -> R[2] = add",
    "concat": "R[2, 3] @ R[2, 5] -> R[2, 8] = concat",
    "concat_axis0": "R[2, 3] @ R[4, 3] -> R[6, 3] = concat(axis=0)",
    "split": "R[7] -> R[3] @ R[4] = split(size=3)",
    "fst": "R[2] @ R[3] -> R[2] = fst",
    "snd": "R[2] @ R[3] -> R[3] = snd",
    "sub": "R[3, 4] @ R[4] -> R[3, 4] = sub",
    "mul": "R[3, 1] @ R[4] -> R[3, 4] = mul",
    "div": "R[T, 4] @ R[T, 1] -> R[T, 4] = div",
    "neg": "R[4] -> R[4] = neg",
    "exp": "R[4] -> R[4] = exp",
    "log": "R[4] -> R[4] = log",
    "sqrt": "R[4] -> R[4] = sqrt",
    "square": "R[4] -> R[4] = square",
    "reciprocal": "R[4] -> R[4] = reciprocal",
    "softplus": "R[4] -> R[4] = softplus",
    "silu": "R[4] -> R[4] = silu",
    "swish": "R[4] -> R[4] = swish",
    "scale": "R[4] -> R[4] = scale(by=0.5)",
    "shift": "R[4] -> R[4] = shift(by=-1)",
    "learned": "R[3, 8] -> R[4, 8] = learned(1, 8) @ id ; concat(axis=0)",
    "noise": "R[2, 3] -> R[2, 3] = noise(dist=\"uniform\")",
    "transpose": "R[3, 4] -> R[4, 3] = transpose(1, 0)",
    "sum": "R[3, 4] -> R[3] = sum",
    "mean": "R[3, 4] -> R[1, 4] = mean(axis=0, keepdims=true)",
    "max": "R[3, 4] -> R[4] = max(axis=0)",
    "slice": "R[T, 4] -> R[2, 4] = slice(start=1, size=2)",
    "last": "R[T, 4] -> R[4] = last",
    "pad": "R[4, 4, 2] -> R[6, 6, 2] = pad(mode=\"reflect\")",
    "upsample": "R[3, 3, 2] -> R[6, 6, 2] = upsample(method=\"bilinear\")",
    "conv_transpose": "R[4, 4, 2] -> R[8, 8, 3] = conv_transpose(3, kernel=2, stride=2)",
    "conv_padded": "R[7, 7, 2] -> R[4, 4, 3] = conv(3, stride=2, padding=1, bias=false)",
    "maxpool_padded": "R[7, 7, 2] -> R[4, 4, 2] = maxpool(window=3, stride=2, padding=1)",
    "dense_axis0": "R[5, 3] -> R[4, 3] = dense(axis=0, bias=false)",
    "rmsnorm": "R[3, 4] -> R[3, 4] = rmsnorm",
    "groupnorm": "R[4, 4, 8] -> R[4, 4, 8] = groupnorm(groups=4)",
    "attention_dropout": "R[T, 8] -> R[T, 8] = attention(heads=2, dropout=0.1)",
    "cross_entropy": "R[5, 7] @ Z[5] -> R[] = cross_entropy",
    "mse": "R[3, 2] @ R[3, 2] -> R[] = mse",
    "bce": "R[4] @ R[4] -> R[] = bce(logits=false)",
    "gaussian_kl": "R[4] @ R[4] -> R[] = gaussian_kl(reduce=\"sum\")",
    "transposed": 'R[T, 8] -> R[T, 10] = transposed(w)\nshared w[T] = (embed(vocab=10, features=8) : Z[T] -> R[T, 8])',
    "glinear": "A -> B = glinear(features=9)\nobject A = R[3, 3, 8] under D4 as regular\nobject B = R[3, 3, 9] under D4 as regular + sign",
    "gconv": "A -> B = gconv(features=8, kernel=3)\nobject A = R[5, 5, 2] under C4\nobject B = R[5, 5, 8] under C4 as regular * 2",
    "gpool": "A -> B = gpool(mode=\"mean\")\nobject A = R[3, 12] under S3 as regular * 2\nobject B = R[3, 2] under S3",
    "deepsets": "A -> B = deepsets(features=5)\nobject A = R[4, 3] under S4\nobject B = R[4, 5] under S4",
}


def test_the_table_covers_the_library() -> None:
    from catnet.library import GENERATORS
    from catnet.lower import OPS

    assert set(GENERATORS) == set(OPS)
    assert {n for n, op in OPS.items() if op.make} == {n for n, g in GENERATORS.items() if g.params}
    assert {n for n, op in OPS.items() if op.inverse} == {n for n, g in GENERATORS.items() if g.iso}
    # the second lowering: every isomorphism has its log-determinant
    assert {n for n, op in OPS.items() if op.has_log_det} == {n for n, g in GENERATORS.items() if g.iso}
    tested = {case.split(" = ", 1)[1].split("(")[0].split()[0] for case in GENERATOR_CASES.values()}
    assert set(OPS) <= tested


def morphism(signature: str) -> str:
    return f"morphism m : {signature}\nmain m\n"


@pytest.mark.parametrize("name", sorted(GENERATOR_CASES))
def test_generator_has_the_checkers_shapes(name: str) -> None:
    module = catnet.loads(morphism(GENERATOR_CASES[name]))
    diagram = module.diagram()
    model = lower(diagram, rngs=nnx.Rngs(0))
    xs = batch_for(diagram.dom, n=2)
    check_shapes(model, model(*xs), diagram.cod, n=2)
    model.eval()
    check_shapes(model, jax.jit(lambda *a: model(*a))(*xs), diagram.cod, n=2)


def run_text(signature: str, *xs: np.ndarray, train: bool = False, seed: int = 0) -> object:
    model = compile(morphism(signature), rngs=nnx.Rngs(seed))
    model.train() if train else model.eval()
    return model(*xs)


def test_structural_morphisms_move_wires() -> None:
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    b = np.arange(8, dtype=np.float32).reshape(2, 4) + 100
    x, y = run_text("R[3] @ R[4] -> R[4] @ R[3] = swap", a, b)
    assert np.array_equal(x, b) and np.array_equal(y, a)
    s, t = run_text("R[7] -> R[3] @ R[4] = split(size=3)", np.concatenate([a, b], axis=1))
    assert np.array_equal(s, a) and np.array_equal(t, b)
    (c,) = outputs(run_text("R[3] @ R[4] -> R[7] = concat", a, b))
    assert np.array_equal(c, np.concatenate([a, b], axis=1))
    assert np.array_equal(run_text("R[3] @ R[3] -> R[3] = add", a, a), 2 * a)
    assert np.array_equal(run_text("R[3] @ R[4] -> R[4] = snd", a, b), b)
    assert np.array_equal(run_text("R[3] -> R[3] = reverse", a), a[:, ::-1])
    # `copy` of a product copies every wire: A ⊗ B -> A ⊗ B ⊗ A ⊗ B
    copies = run_text("R[3] @ R[4] -> R[3] @ R[4] @ R[3] @ R[4] = copy", a, b)
    assert [np.asarray(c).tolist() for c in copies] == [a.tolist(), b.tolist(), a.tolist(), b.tolist()]


def test_dropout_is_active_in_training_and_identity_in_evaluation() -> None:
    x = np.ones((4, 1000), np.float32)
    assert np.array_equal(run_text("R[1000] -> R[1000] = dropout(0.25)", x), x)
    y = np.asarray(run_text("R[1000] -> R[1000] = dropout(0.25)", x, train=True))
    kept = y != 0
    assert 0.65 < kept.mean() < 0.85
    np.testing.assert_allclose(y[kept], 1 / 0.75, rtol=1e-6)
    model = compile(morphism("R[1000] -> R[1000] = dropout(0.25) ; dropout(0.25)"), rngs=nnx.Rngs(0))
    first, second = np.asarray(model(x)), np.asarray(model(x))
    assert not np.array_equal(first, second), "every call draws a fresh mask"


def test_batchnorm_updates_statistics_in_training_only() -> None:
    model = compile(morphism("R[3] -> R[3] = batchnorm(momentum=0.5)"), rngs=nnx.Rngs(0))
    x = np.random.default_rng(0).normal(5.0, 2.0, (64, 3)).astype(np.float32)
    y = np.asarray(model(x))
    np.testing.assert_allclose(y.mean(0), 0, atol=1e-4)
    mean = nnx.state(model, nnx.BatchStat)["batchnorm"]["mean"].get_value()
    np.testing.assert_allclose(mean, 0.5 * x.mean(0), rtol=1e-4)
    model.eval()
    model(x)
    assert np.array_equal(nnx.state(model, nnx.BatchStat)["batchnorm"]["mean"].get_value(), mean)


def test_causal_attention_does_not_look_ahead() -> None:
    model = compile(morphism("R[T, 8] -> R[T, 8] = attention(heads=2, causal=true)"), rngs=nnx.Rngs(0))
    x = np.random.default_rng(0).standard_normal((2, 6, 8)).astype(np.float32)
    x2 = x.copy()
    x2[:, 4:] += 10.0  # change the future only
    y, y2 = np.asarray(model(x)), np.asarray(model(x2))
    np.testing.assert_allclose(y[:, :4], y2[:, :4], rtol=1e-5, atol=1e-5)
    assert not np.allclose(y[:, 4:], y2[:, 4:])
    # without the mask the past sees the future
    free = compile(morphism("R[T, 8] -> R[T, 8] = attention(heads=2)"), rngs=nnx.Rngs(0))
    assert not np.allclose(np.asarray(free(x))[:, :4], np.asarray(free(x2))[:, :4])


def test_coupling_inverse_is_exact_and_inv_lowers_to_it() -> None:
    text = """
object X = R[6]
morphism flow : X -> X = coupling(hidden=16) ; reverse ; coupling(hidden=16)
shared f = flow
morphism roundtrip : X -> X = f ; inv(f)
morphism backward : X -> X = inv(f)
main roundtrip
"""
    x = np.random.default_rng(0).standard_normal((4, 6)).astype(np.float32)
    model = compile(text, rngs=nnx.Rngs(0))
    np.testing.assert_allclose(np.asarray(model(x)), x, rtol=1e-5, atol=1e-5)
    forward = compile(text, "flow", rngs=nnx.Rngs(0))
    assert not np.allclose(np.asarray(forward(x)), x), "the flow is not the identity"
    assert set(param_paths(model)) == {
        f"f.flow.coupling.{i}.{layer}.{p}" for i in (0, 1) for layer in ("hidden", "scale_shift") for p in ("kernel", "bias")
    }


def test_scan_runs_the_cell_over_the_sequence() -> None:
    text = """
object H = R[4]
morphism cell : H @ R[3] -> H @ H = concat ; (dense : R[7] -> R[4]) ; tanh ; copy
morphism rnn : Seq[T](R[3]) -> Seq[T](R[4]) = scan[H](cell)
main rnn
"""
    model = compile(text, rngs=nnx.Rngs(0))
    x = np.random.default_rng(0).standard_normal((2, 5, 3)).astype(np.float32)
    y = np.asarray(model(x))
    p = nnx.state(model, nnx.Param)["scan"]["cell"]["dense"]
    w, b = np.asarray(p["kernel"].get_value()), np.asarray(p["bias"].get_value())
    h = np.zeros((2, 4), np.float32)
    for t in range(5):
        h = np.tanh(np.concatenate([h, x[:, t]], axis=1) @ w + b)
        np.testing.assert_allclose(y[:, t], h, rtol=1e-5, atol=1e-5)


def test_model_works_under_grad_vmap_and_split_merge() -> None:
    model = compile(str(ROOT / "examples" / "transformer.cat"), rngs=nnx.Rngs(0))
    model.eval()
    (tokens,) = batch_for(model.dom, n=2)
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)

    def loss(p):
        return jnp.mean(nnx.merge(graphdef, p, rest)(tokens) ** 2)

    grads = jax.jit(jax.grad(loss))(params)
    assert jax.tree.structure(grads) == jax.tree.structure(params)
    assert float(jnp.abs(grads["block"]["attention"]["query"]["kernel"].get_value()).sum()) > 0
    # vmap over an extra leading axis: a batch of batches
    stacked = np.stack([tokens, tokens[::-1]])
    y = jax.vmap(model)(stacked)
    np.testing.assert_allclose(np.asarray(y[1]), np.asarray(model(tokens[::-1])), rtol=1e-5, atol=1e-5)
    # vmap over parameters: an ensemble of two models
    other = compile(str(ROOT / "examples" / "transformer.cat"), rngs=nnx.Rngs(1))
    ensemble = jax.tree.map(lambda a, b: jnp.stack([a, b]), params, nnx.state(other, nnx.Param))
    ys = jax.vmap(lambda p: nnx.merge(graphdef, p, rest)(tokens))(ensemble)
    np.testing.assert_allclose(np.asarray(ys[0]), np.asarray(model(tokens)), rtol=1e-5, atol=1e-5)
    other.eval()
    np.testing.assert_allclose(np.asarray(ys[1]), np.asarray(other(tokens)), rtol=1e-5, atol=1e-5)


def test_jitted_training_step_with_dropout_advances_the_stream() -> None:
    model = compile(str(ROOT / "examples" / "digits_mlp.cat"), rngs=nnx.Rngs(0))
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    (x,) = batch_for(model.dom, n=8)

    @jax.jit
    def step(p, r):
        def loss(p):
            m = nnx.merge(graphdef, p, r, copy=True)
            out = m(x)
            return jnp.mean(out**2), nnx.split(m, nnx.Param, ...)[2]

        (value, r2), g = jax.value_and_grad(loss, has_aux=True)(p)
        return value, r2

    v1, rest1 = step(params, rest)
    v2, _ = step(params, rest1)
    assert float(v1) != float(v2), "the second step draws a different dropout mask"


def test_reserved_names_do_not_shadow_module_methods() -> None:
    text = """
object A = R[4]
morphism train : A -> A = dense
morphism eval : A -> A = train ; relu
main eval
"""
    model = compile(text, rngs=nnx.Rngs(0))
    assert set(param_paths(model)) == {"train_.dense.kernel", "train_.dense.bias"}
    model.eval()
    model.train()
    assert model(np.ones((2, 4), np.float32)).shape == (2, 4)


def test_no_definition_shadows_a_public_method_of_the_model() -> None:
    from catnet.lower.model import Model, Node
    from catnet.lower.names import RESERVED

    public = {k for cls in (Node, Model) for k in vars(cls) if not k.startswith("_")}
    assert public <= RESERVED, sorted(public - RESERVED)
    text = """
object V = R[4]
morphism inverse : V -> V = dense ; relu
morphism locate : V -> V = inverse ; dense
main locate
"""
    model = compile(text, rngs=nnx.Rngs(0))
    assert {p.split(".")[0] for p in param_paths(model)} == {"inverse_", "dense"}
    assert callable(model.inverse) and not isinstance(model.inverse, nnx.Module)
    assert model(np.ones((2, 4), np.float32)).shape == (2, 4)


def test_model_rejects_wrong_inputs_clearly() -> None:
    model = compile(str(ROOT / "examples" / "siamese.cat"), rngs=nnx.Rngs(0))
    with pytest.raises(CatnetError, match="takes 2 inputs") as info:
        model(np.ones((2, 64), np.float32))
    assert info.value.code == "E0802"
    with pytest.raises(CatnetError, match=r"shape \(batch, 64\)") as info:
        model(np.ones((64,), np.float32), np.ones((2, 64), np.float32))
    assert info.value.code == "E0802"


def test_bundles_are_reported_as_not_lowerable() -> None:
    base = Ty.tensor_space("R", (2,))
    fiber = Ty.tensor_space("R", (3,))
    bundle = Ty((Ob("bundle", (), fiber=fiber, over=base),))
    box = Box("proj", bundle, base, "structural")
    with pytest.raises(CatnetError) as info:
        lower(box.diagram(), rngs=nnx.Rngs(0))
    assert info.value.code == "E0601"


def test_symbolic_parameter_sizes_are_reported() -> None:
    d = dims.sym("d")
    box = Box("dense", Ty.tensor_space("R", (d,)), Ty.tensor_space("R", (4,)), "generator", (("features", 4),))
    with pytest.raises(CatnetError) as info:
        lower(Diagram.compose([box.diagram()]), rngs=nnx.Rngs(0))
    assert info.value.code == "E0304"
