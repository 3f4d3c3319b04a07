"""The ``axes`` family and generic strided sizes.

Each generator is compared with NumPy written from its definition (PyTorch's
where the issue asks for PyTorch's numbers), parameter counts with the
lowered ``nnx.Param`` scalars, and the laws (transpose twice with the
inverse permutation, slicing the full length) are property tests.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from catnet import dims, loads
from catnet.errors import CatnetError
from catnet.summary import total_params

jax = pytest.importorskip("jax")
jnp = jax.numpy
nnx = pytest.importorskip("flax.nnx")

from catnet.lower import compile  # noqa: E402

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def model_of(src: str, entry: str | None = None) -> nnx.Module:
    model = compile(src, entry, rngs=nnx.Rngs(0))
    model.eval()
    return model


def run(src: str, *xs: np.ndarray, entry: str | None = None) -> np.ndarray:
    return np.asarray(model_of(src, entry)(*xs))


def rand(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def param_count(model: nnx.Module) -> int:
    return sum(int(x.size) for x in jax.tree.leaves(nnx.state(model, nnx.Param)))


def params(model: nnx.Module) -> dict[str, nnx.Param]:
    return {".".join(map(str, p)): v for p, v in nnx.to_flat_state(nnx.state(model, nnx.Param))}


def error(src: str) -> CatnetError:
    with pytest.raises(CatnetError) as info:
        loads(src, "t.cat")
    return info.value


# -- dims.div_floor and dims.least ----------------------------------------------------


def test_div_floor_divides_every_symbol_coefficient_and_floors_the_constant() -> None:
    h, w = dims.sym("h"), dims.sym("w")
    assert dims.div_floor(dims.add(dims.mul(h, 2), 1), 2) == h
    assert dims.div_floor(dims.sub(dims.mul(h, 2), 1), 2) == dims.sub(h, 1)
    assert dims.div_floor(dims.add(dims.mul(dims.mul(h, w), 4), 6), 4) == dims.add(dims.mul(h, w), 1)
    assert dims.div_floor(h, 2) is None
    assert dims.div_floor(dims.add(dims.mul(h, 2), w), 2) is None
    assert dims.div_floor(-3, 2) == -2
    assert dims.least(dims.sub(dims.mul(h, 2), 3)) == -1
    assert dims.least(dims.sub(4, h)) is None
    assert dims.least(7) == 7


@SETTINGS
@given(st.lists(st.integers(-5, 5), min_size=2, max_size=2), st.integers(-20, 20), st.integers(1, 6),
       st.lists(st.integers(1, 50), min_size=2, max_size=2))
def test_div_floor_is_floor_division_for_every_value(coeffs: list[int], const: int, k: int, values: list[int]) -> None:
    h, w = dims.sym("h"), dims.sym("w")
    d = dims.add(dims.add(dims.mul(h, coeffs[0] * k), dims.mul(w, coeffs[1] * k)), const)
    q = dims.div_floor(d, k)
    assert q is not None
    env = {"h": values[0], "w": values[1]}
    assert dims.subst(q, env) == dims.subst(d, env) // k  # type: ignore[operator]


# -- transpose ---------------------------------------------------------------------------


def test_transpose_permutes_axes_like_numpy() -> None:
    x = rand(2, 3, 4, 5)
    for perm in itertools.permutations(range(3)):
        out = [3, 4, 5]
        src = f"morphism m : R[3, 4, 5] -> R[{', '.join(str(out[p]) for p in perm)}] = transpose({', '.join(map(str, perm))})\n"
        np.testing.assert_array_equal(run(src, x), np.transpose(x, (0,) + tuple(p + 1 for p in perm)))


def test_transpose_without_arguments_reverses_the_axes_and_takes_ids() -> None:
    x = np.arange(2 * 3 * 4, dtype=np.int32).reshape(2, 3, 4)
    y = model_of("morphism m : Z[3, 4] -> Z[4, 3] = transpose\n")(x)
    assert y.dtype == jnp.int32
    np.testing.assert_array_equal(np.asarray(y), x.transpose(0, 2, 1))


def test_transpose_is_an_isomorphism_and_pretty_prints_positionally() -> None:
    src = "morphism m : R[2, 3, 4] -> R[2, 3, 4] = transpose(2, 0, 1) ; inv((transpose(2, 0, 1) : R[2, 3, 4] -> R[4, 2, 3]))\n"
    module = loads(src)
    (box, back) = [layer.box for layer in module.diagram("m").layers]
    assert box.iso and box.kwargs == {"perm": (2, 0, 1)}
    assert box.cod.obs[0].shape == (4, 2, 3)
    from catnet.pretty import pretty

    assert "transpose(2, 0, 1)" in pretty(box.diagram())
    x = rand(3, 2, 3, 4)
    np.testing.assert_array_equal(run(src, x), x)


@SETTINGS
@given(st.lists(st.integers(1, 4), min_size=1, max_size=4).flatmap(
    lambda shape: st.tuples(st.just(shape), st.permutations(list(range(len(shape)))))))
def test_transpose_then_the_inverse_permutation_is_the_identity(case: tuple[list[int], list[int]]) -> None:
    shape, perm = case
    inverse = sorted(range(len(perm)), key=lambda i: perm[i])
    ty = f"R[{', '.join(map(str, shape))}]"
    src = f"morphism m : {ty} -> {ty} = transpose({', '.join(map(str, perm))}) ; transpose({', '.join(map(str, inverse))})\n"
    x = rand(2, *shape)
    np.testing.assert_array_equal(run(src, x), x)


# -- reductions, slice, last -----------------------------------------------------------


@pytest.mark.parametrize("name", ["sum", "mean", "max"])
def test_reductions_follow_numpy(name: str) -> None:
    x = rand(2, 3, 4)
    fn = getattr(np, name)
    np.testing.assert_allclose(run(f"morphism m : R[3, 4] -> R[3] = {name}\n", x), fn(x, axis=-1), rtol=1e-6)
    np.testing.assert_allclose(run(f"morphism m : R[3, 4] -> R[4] = {name}(axis=0)\n", x), fn(x, axis=1), rtol=1e-6)
    np.testing.assert_allclose(run(f"morphism m : R[3, 4] -> R[1, 4] = {name}(axis=0, keepdims=true)\n", x),
                               fn(x, axis=1, keepdims=True), rtol=1e-6)


def test_a_reduction_of_a_vector_is_a_scalar() -> None:
    x = rand(5, 4)
    np.testing.assert_allclose(run("morphism m : R[4] -> R[] = sum\n", x), x.sum(-1), rtol=1e-6)


def test_slice_and_last_follow_numpy() -> None:
    x = rand(2, 6, 3)
    np.testing.assert_array_equal(run("morphism m : R[6, 3] -> R[4, 3] = slice(start=2, size=4)\n", x), x[:, 2:6])
    np.testing.assert_array_equal(run("morphism m : R[6, 3] -> R[6, 2] = slice(1, 2, axis=-1)\n", x), x[:, :, 1:3])
    np.testing.assert_array_equal(run("morphism m : R[6, 3] -> R[3] = last\n", x), x[:, -1])
    np.testing.assert_array_equal(run("morphism m : R[6, 3] -> R[6] = last(axis=1)\n", x), x[:, :, -1])
    ids = np.arange(12, dtype=np.int32).reshape(2, 6)
    np.testing.assert_array_equal(run("morphism m : Z[6] -> Z[2] = slice(size=2)\n", ids), ids[:, :2])


def test_slice_size_comes_from_the_types() -> None:
    box = loads("morphism m : R[6, 3] -> R[4, 3] = slice\n").diagram("m").layers[0].box
    assert box.kwargs["size"] == 4


@SETTINGS
@given(st.lists(st.integers(1, 5), min_size=1, max_size=3), st.data())
def test_slicing_the_full_length_is_the_identity(shape: list[int], data: st.DataObject) -> None:
    axis = data.draw(st.integers(0, len(shape) - 1))
    ty = f"R[{', '.join(map(str, shape))}]"
    x = rand(2, *shape)
    src = f"morphism m : {ty} -> {ty} = slice(size={shape[axis]}, axis={axis})\n"
    np.testing.assert_array_equal(run(src, x), x)


GPT_POSITIONS = """
morphism positions(x : R[T, 8]) -> R[T, 8] {
  return x + slice(learned(16, 8), size=T, axis=0)
}
"""


def test_a_symbolic_slice_of_a_learned_table_takes_its_first_rows() -> None:
    model = model_of(GPT_POSITIONS)
    (name,) = params(model)
    table = np.asarray(params(model)[name].get_value())
    x = rand(2, 5, 8)
    np.testing.assert_allclose(np.asarray(model(x)), x + table[None, :5], rtol=1e-6)


def test_a_symbolic_slice_past_the_end_is_e0802_at_the_box_when_traced() -> None:
    model = model_of(GPT_POSITIONS)
    for call in (model, jax.jit(lambda x: model(x))):
        with pytest.raises(CatnetError) as info:
            call(rand(2, 20, 8))
        e = info.value
        assert e.code == "E0802" and e.span is not None and (e.span.line, e.span.column) == (3, 14)
        assert "`slice(size=T)` takes 20 entries of axis 0 from entry 0, but its input has 16" in e.message
        assert "`T` is 20" in e.notes[0]


# -- pad, upsample ----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["constant", "reflect", "edge"])
def test_pad_follows_numpy_on_every_spatial_axis(mode: str) -> None:
    x = rand(2, 4, 5, 3)
    y = run(f'morphism m : R[4, 5, 3] -> R[8, 9, 3] = pad(width=2, mode="{mode}")\n', x)
    np.testing.assert_array_equal(y, np.pad(x, [(0, 0), (2, 2), (2, 2), (0, 0)], mode=mode))
    x1 = rand(2, 4, 3)
    np.testing.assert_array_equal(run(f'morphism m : R[4, 3] -> R[6, 3] = pad(mode="{mode}")\n', x1),
                                  np.pad(x1, [(0, 0), (1, 1), (0, 0)], mode=mode))


def _linear_resize_axis(x: np.ndarray, axis: int, factor: int) -> np.ndarray:
    """PyTorch's linear interpolation with ``align_corners=False`` along ``axis``."""
    n = x.shape[axis]
    src = (np.arange(n * factor) + 0.5) / factor - 0.5
    src = np.clip(src, 0, None)
    lo = np.minimum(np.floor(src).astype(int), n - 1)
    hi = np.minimum(lo + 1, n - 1)
    lam = (src - lo).reshape([-1 if i == axis else 1 for i in range(x.ndim)])
    return np.take(x, lo, axis=axis) * (1 - lam) + np.take(x, hi, axis=axis) * lam


def test_upsample_nearest_repeats_and_bilinear_is_pytorchs_half_pixel_rule() -> None:
    x = rand(2, 3, 4, 2)
    near = run("morphism m : R[3, 4, 2] -> R[9, 12, 2] = upsample(factor=3)\n", x)
    np.testing.assert_array_equal(near, x.repeat(3, axis=1).repeat(3, axis=2))
    bil = run('morphism m : R[3, 4, 2] -> R[6, 8, 2] = upsample(method="bilinear")\n', x)
    want = _linear_resize_axis(_linear_resize_axis(x.astype(np.float64), 1, 2), 2, 2)
    np.testing.assert_allclose(bil, want, rtol=1e-5, atol=1e-6)
    x1 = rand(2, 5, 3)
    lin = run('morphism m : R[5, 3] -> R[20, 3] = upsample(factor=4, method="bilinear")\n', x1)
    np.testing.assert_allclose(lin, _linear_resize_axis(x1.astype(np.float64), 1, 4), rtol=1e-5, atol=1e-6)


# -- conv_transpose ------------------------------------------------------------------------------


def _conv_transpose_reference(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, stride: int, pad: int) -> np.ndarray:
    """PyTorch's ConvTranspose2d from its definition, channels last.

    ``w`` is PyTorch's weight ``[in, out, kh, kw]``: every input cell adds
    its kernel, scaled, at ``stride`` times its position, and ``pad`` cells
    are cropped from each side of the full result.
    """
    n, h, wd, _ = x.shape
    c_out, k = w.shape[1], w.shape[2]
    full = np.zeros((n, (h - 1) * stride + k, (wd - 1) * stride + k, c_out))
    for i in range(h):
        for j in range(wd):
            full[:, i * stride : i * stride + k, j * stride : j * stride + k, :] += np.einsum(
                "nc,cokl->nklo", x[:, i, j, :], w)
    out = full[:, pad : full.shape[1] - pad, pad : full.shape[2] - pad, :]
    return out + (b if b is not None else 0)


@pytest.mark.parametrize("stride,pad,bias", [(1, 0, True), (2, 0, True), (2, 1, False), (3, 2, True)])
def test_conv_transpose_is_pytorchs_with_its_weights(stride: int, pad: int, bias: bool) -> None:
    k, h, c_in, c_out = 4, 5, 3, 2
    size = (h - 1) * stride - 2 * pad + k
    src = (f"morphism m : R[{h}, {h}, {c_in}] -> R[{size}, {size}, {c_out}] = "
           f"conv_transpose({c_out}, kernel={k}, stride={stride}, padding={pad}, bias={'true' if bias else 'false'})\n")
    model = model_of(src)
    rng = np.random.default_rng(1)
    w = rng.standard_normal((c_in, c_out, k, k)).astype(np.float32)  # PyTorch's layout
    b = rng.standard_normal(c_out).astype(np.float32)
    p = params(model)
    p["conv_transpose.kernel"].set_value(jnp.asarray(w.transpose(2, 3, 1, 0)))
    if bias:
        p["conv_transpose.bias"].set_value(jnp.asarray(b))
    else:
        assert "conv_transpose.bias" not in p
    x = rand(2, h, h, c_in)
    np.testing.assert_allclose(np.asarray(model(x)), _conv_transpose_reference(x, w, b if bias else None, stride, pad),
                               rtol=1e-5, atol=1e-5)
    assert total_params(model.diagram) == param_count(model) == k * k * c_in * c_out + (c_out if bias else 0)


@pytest.mark.parametrize("kernel,stride", [(3, 1), (3, 2), (2, 2), (1, 3), (2, 3)])
def test_conv_transpose_same_and_valid_sizes_are_what_runs(kernel: int, stride: int) -> None:
    for padding, size in (("same", 5 * stride), ("valid", 5 * stride + max(kernel - stride, 0))):
        src = f'morphism m : R[5, 2] -> R[{size}, 3] = conv_transpose(3, kernel={kernel}, stride={stride}, padding="{padding}")\n'
        assert model_of(src)(rand(2, 5, 2)).shape == (2, size, 3)


def test_conv_transpose_one_dimensional() -> None:
    src = "morphism m : R[7, 4] -> R[14, 6] = conv_transpose(6, kernel=2, stride=2, bias=false)\n"
    model = model_of(src)
    assert model(rand(3, 7, 4)).shape == (3, 14, 6)
    assert total_params(model.diagram) == param_count(model) == 2 * 4 * 6


# -- generic strided blocks --------------------------------------------------------------------


RESNET_STAGE = """
morphism bn_relu[h, w, c] : R[h, w, c] -> R[h, w, c] = batchnorm ; relu

morphism down[h, w, c](x : R[h * 2, w * 2, c]) -> R[h, w, c * 2] {
  a = bn_relu(conv(x, features=c * 2, kernel=3, stride=2, padding=1, bias=false))
  b = batchnorm(conv(a, kernel=3, padding=1, bias=false))
  s = batchnorm(conv(x, features=c * 2, kernel=1, stride=2, padding=0, bias=false))
  return relu(b + s)
}

morphism basic[h, w, c](x : R[h, w, c]) -> R[h, w, c] {
  a = bn_relu(conv(x, features=c, kernel=3, padding=1, bias=false))
  b = batchnorm(conv(a, kernel=3, padding=1, bias=false))
  return relu(b + x)
}

morphism stage[h, w, c] : R[h * 2, w * 2, c] -> R[h, w, c * 2] = down ; basic

morphism net : R[16, 16, 2] -> R[10] =
  conv(2, kernel=3, padding=1, bias=false) ; stage ; stage ; global_avgpool ; dense
"""


def _stage_params(c: int) -> int:
    down = 9 * c * 2 * c + 9 * 2 * c * 2 * c + c * 2 * c + 3 * 2 * (2 * c)  # three convs, three batchnorms
    basic = 2 * 9 * (2 * c) ** 2 + 2 * 2 * (2 * c)
    return down + basic


def test_a_resnet_stage_is_one_generic_template_that_checks_and_compiles() -> None:
    stage = loads(RESNET_STAGE).diagram("stage")
    assert (stage.dom.obs[0].shape[0], stage.cod.obs[0].shape[2]) == (dims.mul(dims.sym("h"), 2), dims.mul(dims.sym("c"), 2))
    model = model_of(RESNET_STAGE, "net")
    expected = 9 * 2 * 2 + _stage_params(2) + _stage_params(4) + 8 * 10 + 10
    assert total_params(model.diagram) == param_count(model) == expected
    assert model(rand(2, 16, 16, 2)).shape == (2, 10)


def test_resnet18_from_the_generic_stage_counts_its_published_parameters() -> None:
    # He et al. 2016, torchvision's resnet18: 11,689,512 trainable parameters.
    src = RESNET_STAGE.split("morphism net")[0] + """
morphism stem : R[224, 224, 3] -> R[56, 56, 64] =
  conv(64, kernel=7, stride=2, padding=3, bias=false) ; bn_relu ; maxpool(window=3, stride=2, padding=1)
morphism resnet18 : R[224, 224, 3] -> R[1000] =
  stem ; basic ; basic ; stage ; stage ; stage ; global_avgpool ; dense
"""
    assert total_params(loads(src).diagram("resnet18")) == 11_689_512


def test_a_strided_block_generic_in_its_size_runs_at_several_sizes() -> None:
    src = """
morphism block[h, w] : R[h * 4, w * 4, 4] -> R[h * 2, w * 2, 8] =
  conv(8, kernel=3, stride=2, padding=1) ; conv(8, kernel=3, stride=2, padding="same") ;
  upsample ; maxpool(window=2) ; upsample ; avgpool(window=3, stride=2, padding=1) ; conv_transpose(kernel=2, stride=2)
"""
    model = model_of(src)
    for h, w in ((3, 5), (8, 2)):
        assert model(rand(2, 4 * h, 4 * w, 4)).shape == (2, 2 * h, 2 * w, 8)


def test_strided_sizes_that_do_not_divide_need_numbers() -> None:
    e = error("morphism m[h, c] : R[h, h, c] -> R[h, h, c] = maxpool(window=2)\n")
    assert e.code == "E0306" and "must be a known number" in e.message
    e = error("morphism m[h, c] : R[h * 2, h * 2, c] -> R[h, h, c] = maxpool(window=3, stride=2)\n")
    assert e.code == "E0306" and "does not fit the input size h * 2 for every value" in e.message


def test_symbolic_windows_give_exact_output_sizes() -> None:
    module = loads("""
morphism a[h] : R[h * 4 + 1, 3] -> R[h * 2, 3] = maxpool(window=3, stride=2)
morphism b[h] : R[h * 3, 3] -> R[h, 3] = avgpool(window=3, padding="same", stride=3)
morphism c[h] : R[h * 2, 3] -> R[h * 2 + 1, 5] = conv(5, kernel=2, padding=1)
morphism d[h] : R[h, 3] -> R[h * 2 + 1, 5] = conv_transpose(5, kernel=3, stride=2)
morphism e[h] : R[h, 3] -> R[h + 4, 3] = pad(width=2, mode="edge")
""")
    for name in "abcde":
        module.diagram(name)
