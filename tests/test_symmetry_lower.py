"""The lowering of the equivariant generators: equivariance measured, parameters counted, numbers checked.

Every generator of the ``symmetry`` family is compiled as a one-box
morphism between random representations, its parameters set to random
values (biases included), and ``f(g·x)`` compared with ``g·f(x)`` for every
group element ``g``, both actions applied with ``catnet.symmetry.actions.act``,
the one convention.  The fast kernel layout of ``glinear``/``gconv`` is
compared against ``Basis.expand`` and a plain ``jax.lax`` convolution.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

jax = pytest.importorskip("jax")
jnp = jax.numpy
nnx = pytest.importorskip("flax.nnx")

from catnet.library import GENERATORS  # noqa: E402
from catnet.library.symmetry import kernel_target  # noqa: E402
from catnet.lower import compile  # noqa: E402
from catnet.lower.ops import symmetry as ops  # noqa: E402
from catnet.symmetry import basis as B  # noqa: E402
from catnet.symmetry.actions import Action, act, action, parse_rep  # noqa: E402
from catnet.symmetry.reps import trivial  # noqa: E402

SETTINGS = settings(max_examples=12, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
#: float32 equivariance errors, relative to max(1, max |f(x)|)
TOLERANCE = 1e-5

#: the building blocks each group has (as the parser writes them)
BLOCKS = {
    "C2": ["trivial", "regular", "sign", "rotation"],
    "C3": ["trivial", "regular", "rotation"],
    "C4": ["trivial", "regular", "sign", "rotation", "quotient(r2)"],
    "D3": ["trivial", "regular", "sign", "rotation", "quotient(s)"],
    "D4": ["trivial", "regular", "sign", "rotation", "quotient(s)", "quotient(r2)", "quotient(sr1)"],
    "S3": ["trivial", "regular", "sign", "permutation"],
    "S4": ["trivial", "sign", "permutation"],
}


@pytest.fixture(autouse=True, scope="module")
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Solved bases go to a temporary cache, not the user's."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CATNET_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield


def reps(group: str) -> st.SearchStrategy[str]:
    """Canonical text of a sum of distinct building blocks of ``group``, each with 1 or 2 copies."""
    terms = st.lists(st.tuples(st.sampled_from(BLOCKS[group]), st.integers(1, 2)), min_size=1, max_size=3, unique_by=lambda t: t[0])
    return terms.map(lambda ts: " + ".join(f"{b} * {m}" if m > 1 else b for b, m in ts))


def dim(text: str, group: str) -> int:
    return parse_rep(text, group).dim


def declare(name: str, shape: tuple[int, ...], group: str, rep: str | None) -> str:
    return f"object {name} = R[{', '.join(map(str, shape))}] under {group}" + (f" as {rep}" if rep else "")


def one_box(group: str, din: tuple[int, ...], rin: str | None, dout: tuple[int, ...], rout: str | None, body: str) -> str:
    return "\n".join([declare("A", din, group, rin), declare("B", dout, group, rout), f"morphism m : A -> B = {body}", "main m", ""])


def randomize(model: nnx.Module, seed: int = 0) -> None:
    """Every parameter to N(0, 1) values, so biases and every piece take part."""
    state = nnx.state(model, nnx.Param)
    leaves, tree = jax.tree.flatten(state)
    rng = np.random.default_rng(seed)
    nnx.update(model, jax.tree.unflatten(tree, [jnp.asarray(rng.standard_normal(x.shape), jnp.float32) for x in leaves]))


def actions(model: nnx.Module) -> tuple[Action, Action]:
    (dom,), (cod,) = model.dom.obs, model.cod.obs
    return action(str(dom.group), dom.rep, tuple(dom.shape)), action(str(cod.group), cod.rep, tuple(cod.shape))


def equivariance_error(model: nnx.Module, n: int = 2, seed: int = 1) -> float:
    """``max_g max |f(g·x) − g·f(x)|`` over every element, relative to ``max(1, max |f(x)|)``."""
    ain, aout = actions(model)
    x = np.random.default_rng(seed).standard_normal((n,) + ain.shape).astype(np.float32)
    order = ain.group.order
    # one forward pass for every element: g·x for all g stacked on the batch axis (element 0 is the identity)
    graphdef, state = nnx.split(model)
    run = jax.jit(lambda s, a: nnx.merge(graphdef, s)(a))  # one compiled program, not one per operation
    ys = np.asarray(run(state, np.concatenate([act(x, ain, g) for g in range(order)])), np.float64)
    ys = ys.reshape((order, n) + ys.shape[1:])
    y = ys[0]
    err = max(float(np.abs(ys[g] - act(y, aout, g)).max()) for g in range(order))
    return err / max(1.0, float(np.abs(y).max()))


def params(model: nnx.Module) -> int:
    return sum(int(x.size) for x in jax.tree.leaves(nnx.state(model, nnx.Param)))


def counted(model: nnx.Module) -> int:
    """What the box's count rule says (the number ``catnet summary`` prints)."""
    box = model.diagram.layers[0].box if hasattr(model, "diagram") else None
    assert box is not None
    return GENERATORS[box.name].count(box, int) if GENERATORS[box.name].count else 0


def built(text: str, seed: int = 0) -> nnx.Module:
    model = compile(text, rngs=nnx.Rngs(seed))
    model.eval()
    assert params(model) == counted(model)
    randomize(model, seed)
    return model


def equivariant_module(model: nnx.Module) -> tuple[ops.Equivariant, ops.Expansion]:
    (module,) = [m for _, m in nnx.iter_graph(model) if isinstance(m, ops.Equivariant)]
    box = model.diagram.layers[0].box
    return module, ops._expansion_of(box, ops._kernel_size(box))


# -- glinear -----------------------------------------------------------------------------

GLINEAR_PLACES = [("C2", ()), ("C3", ()), ("C4", ()), ("D3", ()), ("D4", ()), ("S3", ()),
                  ("C4", (5, 5)), ("D4", (5, 5)), ("C2", (5, 5)), ("S3", (3,))]


@st.composite
def glinear_cases(draw: st.DrawFn) -> tuple[str, tuple[int, ...], str, str]:
    group, where = draw(st.sampled_from(GLINEAR_PLACES))
    return group, where, draw(reps(group)), draw(reps(group))


@SETTINGS
@given(glinear_cases(), st.booleans())
def test_glinear_is_equivariant_and_its_weight_intertwines(case: tuple[str, tuple[int, ...], str, str], bias: bool) -> None:
    group, where, rin, rout = case
    cin, cout = dim(rin, group), dim(rout, group)
    text = one_box(group, where + (cin,), rin, where + (cout,), rout, f"glinear(features={cout}, bias={str(bias).lower()})")
    model = built(text)
    assert equivariance_error(model) < TOLERANCE
    # the expanded weight itself: ρ_out(g) W = W ρ_in(g) for every g, and the bias is invariant
    module, plan = equivariant_module(model)
    w = np.asarray(module.kernel(plan)[0], np.float64).T
    ain, aout = actions(model)
    for g in range(ain.group.order):
        np.testing.assert_allclose(aout.rep.matrices[g] @ w, w @ ain.rep.matrices[g], atol=1e-4)
    b = module.bias_vector(plan)
    assert (b is not None) == (bias and bool(plan.bias))
    if b is not None:
        b = np.asarray(b, np.float64)
        for g in range(ain.group.order):
            np.testing.assert_allclose(aout.rep.matrices[g] @ b, b, atol=1e-4)


def test_glinear_is_the_expanded_basis_applied() -> None:
    """Numbers: ``x @ W.T + b`` with ``W`` and ``b`` from ``Basis.expand`` and the parameters in order."""
    rin, rout = "regular + rotation", "regular * 2 + sign + trivial"
    model = built(one_box("D4", (3, 3, 10), rin, (3, 3, 18), rout, "glinear(features=18)"))
    module, _ = equivariant_module(model)
    ain, aout = actions(model)
    weights = B.solve(ain.rep, aout.rep).expand([np.asarray(p[...], np.float64) for p in module.weights])
    bias = B.solve(trivial(ain.group), aout.rep).expand([np.asarray(p[...], np.float64) for p in module.bias])[:, 0]
    x = np.random.default_rng(3).standard_normal((4, 3, 3, 10)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(model(x)), x @ weights.T + bias, rtol=1e-5, atol=1e-5)


# -- gconv -------------------------------------------------------------------------------


@st.composite
def gconv_cases(draw: st.DrawFn) -> tuple[str, int, int, str, str]:
    group = draw(st.sampled_from(["C4", "D4"]))
    return group, draw(st.sampled_from([5, 6])), draw(st.sampled_from([1, 3, 5])), draw(reps(group)), draw(reps(group))


@SETTINGS
@given(gconv_cases())
def test_gconv_is_equivariant(case: tuple[str, int, int, str, str]) -> None:
    group, size, kernel, rin, rout = case
    cin, cout = dim(rin, group), dim(rout, group)
    text = one_box(group, (size, size, cin), rin, (size, size, cout), rout, f"gconv(features={cout}, kernel={kernel})")
    assert equivariance_error(built(text)) < TOLERANCE


@pytest.mark.parametrize("kernel", [1, 3, 5])
@pytest.mark.parametrize("group", ["C4", "D4"])
def test_gconv_lifts_trivial_channels_equivariantly(group: str, kernel: int) -> None:
    """The lifting convolution (an image with plain channels in) and the group convolution after it."""
    text = one_box(group, (6, 6, 2), None, (6, 6, 16), "regular * 2" if group == "D4" else "regular * 4",
                   f"gconv(features=16, kernel={kernel}) ; relu ; gconv(features=16, kernel={kernel})")
    model = compile(text, rngs=nnx.Rngs(0))
    model.eval()
    randomize(model)
    assert equivariance_error(model) < TOLERANCE


def test_gconv_is_a_convolution_with_the_expanded_kernel() -> None:
    """Numbers: the kernel from ``Basis.expand`` (rows ``[block][copy][cell][component]``) in ``lax.conv``."""
    group, k, rin, rout = "C4", 3, "regular + rotation", "rotation + regular * 2"
    model = built(one_box(group, (5, 5, 6), rin, (5, 5, 10), rout, f"gconv(features=10, kernel={k})"))
    module, _ = equivariant_module(model)
    ain, aout = actions(model)
    w = B.solve(ain.rep, kernel_target(group, k, aout.rep)).expand([np.asarray(p[...], np.float64) for p in module.weights])
    kernel = np.zeros((k * k, ain.rep.dim, aout.rep.dim))
    row, col = 0, 0
    for block, m in aout.rep.blocks:
        for _ in range(m):
            part = w[row : row + k * k * block.dim].reshape(k * k, block.dim, ain.rep.dim)
            kernel[:, :, col : col + block.dim] = part.transpose(0, 2, 1)
            row, col = row + k * k * block.dim, col + block.dim
    bias = B.solve(trivial(ain.group), aout.rep).expand([np.asarray(p[...], np.float64) for p in module.bias])[:, 0]
    x = np.random.default_rng(5).standard_normal((2, 5, 5, 6)).astype(np.float32)
    want = jax.lax.conv_general_dilated(jnp.asarray(x), jnp.asarray(kernel.reshape(k, k, 6, 10), jnp.float32), (1, 1), "SAME",
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))
    np.testing.assert_allclose(np.asarray(model(x)), np.asarray(want) + bias.reshape(1, 1, 1, -1), rtol=1e-4, atol=1e-4)


# -- gpool and deepsets ------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["max", "mean"])
@pytest.mark.parametrize("group, where", [("C4", ()), ("D4", (5, 5)), ("S3", (3,)), ("C3", ())])
def test_gpool_pools_each_copy_of_regular(group: str, where: tuple[int, ...], mode: str) -> None:
    order = {"C3": 3, "C4": 4, "D4": 8, "S3": 6}[group]
    text = one_box(group, where + (3 * order,), "regular * 3", where + (3,), None, f'gpool(mode="{mode}")')
    model = compile(text, rngs=nnx.Rngs(0))
    assert equivariance_error(model) < TOLERANCE
    x = np.random.default_rng(0).standard_normal((2,) + where + (3 * order,)).astype(np.float32)
    copies = x.reshape(x.shape[:-1] + (3, order))  # copy-major: [copy][group element]
    want = copies.max(axis=-1) if mode == "max" else copies.mean(axis=-1)
    np.testing.assert_allclose(np.asarray(model(x)), want, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("n", [3, 4])
@pytest.mark.parametrize("bias", [True, False])
def test_deepsets_is_permutation_equivariant_and_computes_its_formula(n: int, bias: bool) -> None:
    text = one_box(f"S{n}", (n, 3), None, (n, 5), None, f"deepsets(features=5, bias={str(bias).lower()})")
    model = built(text)
    assert equivariance_error(model) < TOLERANCE
    (module,) = [m for _, m in nnx.iter_graph(model) if isinstance(m, ops.DeepSets)]
    lam, gam = np.asarray(module.lam[...]), np.asarray(module.gam[...])
    b = np.asarray(module.bias[...]) if bias else np.zeros(5, np.float32)
    x = np.random.default_rng(2).standard_normal((2, n, 3)).astype(np.float32)
    want = x @ lam + x.mean(axis=1, keepdims=True) @ gam + b
    np.testing.assert_allclose(np.asarray(model(x)), want, rtol=1e-5, atol=1e-5)


# -- counts, initialisation, state ---------------------------------------------------------


def test_the_bases_are_constants_not_state() -> None:
    """Only the free parameters are state: nothing else to checkpoint, and jit sees the same numbers."""
    text = one_box("D4", (5, 5, 8), "regular", (5, 5, 16), "regular * 2", "gconv(features=16) ; relu ; glinear(features=16)")
    model = compile(text, rngs=nnx.Rngs(0))
    everything = sum(int(x.size) for x in jax.tree.leaves(nnx.state(model)))
    assert everything == params(model)
    model.eval()
    graphdef, state = nnx.split(model)
    x = np.random.default_rng(0).standard_normal((2, 5, 5, 8)).astype(np.float32)
    jitted = jax.jit(lambda s, a: nnx.merge(graphdef, s)(a))
    np.testing.assert_allclose(np.asarray(jitted(state, x)), np.asarray(model(x)), rtol=1e-5, atol=1e-5)


def test_initialisation_keeps_unit_variance_and_is_deterministic() -> None:
    text = one_box("C4", (8, 8, 1), None, (8, 8, 64), "regular * 16", "gconv(features=64) ; relu ; gconv(features=64)")
    x = np.random.default_rng(0).standard_normal((8, 8, 8, 1)).astype(np.float32)
    a, b = (compile(text, rngs=nnx.Rngs(7)) for _ in range(2))
    ya = np.asarray(a(x))
    assert np.array_equal(ya, np.asarray(b(x)))
    # He's gain: relu halves the second moment, the next layer doubles it again
    assert 0.5 < float(np.mean(ya**2)) < 4.0
    c = compile(text, rngs=nnx.Rngs(8))
    assert not np.array_equal(ya, np.asarray(c(x)))


# -- a claimed model: the checker's proof holds numerically ---------------------------------

CLAIMED = """
object Image  = R[8, 8, 1] under C4
object Feat   = R[8, 8, 32] under C4 as regular * 8
object Logits = R[10] under C4

morphism block : Feat -> Feat equivariant under C4 = gconv ; relu
morphism net : Image -> Logits invariant under C4 =
  gconv(features=32) ; relu ; block ; maxpool ; gconv(features=32) ; relu ; gpool ; global_avgpool ; glinear

object Set = R[5, 3] under S5
object Out = R[4] under S5
morphism ds : Set -> Out invariant under S5 = dense(features=16) ; relu ; deepsets(features=16) ; relu ; global_avgpool ; dense

object Square = R[6, 6, 3] under D4
object Turned = R[6, 6, 8] under D4 as regular
morphism keeps : Square -> Turned equivariant under D4 = gconv(features=8, kernel=5) ; relu ; gconv(features=8)
"""


@pytest.mark.parametrize("entry", ["net", "ds", "keeps"])
def test_a_claimed_model_is_numerically_what_the_checker_proves(entry: str) -> None:
    model = compile(CLAIMED, entry, rngs=nnx.Rngs(0))
    model.eval()
    randomize(model, seed=4)
    assert equivariance_error(model, n=3) < TOLERANCE
