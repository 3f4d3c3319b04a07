"""Every iso generator, and random flows built from them, really is invertible with the right log-determinant.

For each invertible generator (the ``flows`` family — ``actnorm``,
``lu_linear``, ``permute`` — and ``coupling`` with and without a
conditioner, ``reverse``, ``neg``, ``scale``, ``shift``, ``transpose``,
``swap``, ``id``), and for random compositions, ⊗ products, ``repeat``s and
``inv``s of them written as ``.cat`` text and compiled:

* ``inverse(forward(x)) == x`` and ``forward(inverse(y)) == y`` to 1e-5;
* ``forward_log_det`` equals ``slogdet`` of the Jacobian (``jax.jacfwd``
  of the forward map, per example, all wires flattened) to 1e-4;
* ``inverse_log_det`` is minus the forward's.

Parameters are perturbed away from their initial values first (actnorm
starts at the identity, where a wrong log-det would go unseen).  Values stay
moderate (inputs of scale ≤ 2, perturbations ≤ 0.3, compositions a few boxes
deep), so float32 round trips stay well inside 1e-5.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import catnet
from catnet import CatnetError

SETTINGS = settings(deadline=None, max_examples=12, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
BATCH = 3


# -- helpers ------------------------------------------------------------------


def _perturb(model: nnx.Module, seed: int, size: float) -> None:
    """Move every parameter by Gaussian noise of std ``size`` (deterministic in ``seed``)."""
    params = nnx.state(model, nnx.Param)
    leaves, tree = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.key(seed), max(len(leaves), 1))
    moved = [p + size * jax.random.normal(k, p.shape, p.dtype) for p, k in zip(leaves, keys)]
    nnx.update(model, jax.tree.unflatten(tree, moved))


def _shapes(model: nnx.Module, cod: bool = False) -> list[tuple[int, ...]]:
    ty = model.cod if cod else model.dom
    return [tuple(int(d) for d in ob.shape) for ob in ty.obs]


def _split(flat: jax.Array, shapes: list[tuple[int, ...]]) -> list[jax.Array]:
    out, at = [], 0
    for s in shapes:
        n = math.prod(s)
        out.append(flat[:, at : at + n].reshape((flat.shape[0],) + s))
        at += n
    return out


def _flat(wires: object) -> jax.Array:
    ws = wires if isinstance(wires, tuple) else (wires,)
    return jnp.concatenate([w.reshape(w.shape[0], -1) for w in ws], axis=1)


def _draw(shapes: list[tuple[int, ...]], seed: int, scale: float) -> list[jax.Array]:
    keys = jax.random.split(jax.random.key(seed), len(shapes))
    return [scale * jax.random.normal(k, (BATCH,) + s, jnp.float32) for k, s in zip(keys, shapes)]


def _quantities(model: nnx.Module, state: nnx.State, xs: list[jax.Array], ys: list[jax.Array]) -> dict[str, jax.Array]:
    """Everything the checks compare, from a copy of ``model`` with ``state``.

    The copy is merged inside whatever trace runs this (``jit``, ``jacfwd``),
    where its variables may be written (``repeat`` writes its state back).
    """
    graph = nnx.graphdef(model)
    dom = _shapes(model)
    m = nnx.merge(graph, state, copy=True)
    y, ld = m.forward_log_det(*xs)
    y = y if isinstance(y, tuple) else (y,)
    back, ild = m.inverse_log_det(*y)
    xb = m.inverse(*ys)
    again = m(*(xb if isinstance(xb, tuple) else (xb,)))

    def forward(flat: jax.Array) -> jax.Array:
        return _flat(nnx.merge(graph, state, copy=True)(*_split(flat, dom)))

    jac = jax.jacfwd(forward)(_flat(tuple(xs)))
    sign, logdet = jnp.linalg.slogdet(jnp.stack([jac[i, :, i, :] for i in range(BATCH)]))
    return {"y": _flat(y), "ld": ld, "back": _flat(back), "ild": ild, "plain": _flat(m(*xs)),
            "again": _flat(again), "sign": sign, "logdet": logdet}


#: Jitted ``_quantities`` per model: a ``repeat`` is a scan, which run eagerly
#: compiles at every call; one compiled check per model is cheaper there.
#: Other models run eagerly (JAX caches each small op per shape across examples).
_JITTED: dict[int, object] = {}


def check_iso(model: nnx.Module, seed: int, scale: float) -> None:
    """The round trips, the log-determinant against the Jacobian, and the inverse's log-det."""
    dom, cod = _shapes(model), _shapes(model, cod=True)
    xs, ys = _draw(dom, seed, scale), _draw(cod, seed + 1, scale)
    if any(b.kind == "repeat" for b in model.diagram.all_boxes()):
        run = _JITTED.setdefault(id(model), jax.jit(lambda st, a, b: _quantities(model, st, a, b)))
        out = run(nnx.state(model), xs, ys)  # type: ignore[operator]
    else:
        out = _quantities(model, nnx.state(model), xs, ys)
    assert out["ld"].shape == (BATCH,) and out["ld"].dtype == jnp.float32
    np.testing.assert_allclose(out["back"], _flat(tuple(xs)), atol=1e-5, rtol=0)  # inv(f) after f
    np.testing.assert_allclose(out["again"], _flat(tuple(ys)), atol=1e-5, rtol=0)  # f after inv(f)
    # The plain call agrees with the second lowering (compiled apart, so to rounding).
    np.testing.assert_allclose(out["plain"], out["y"], atol=1e-5, rtol=0)
    np.testing.assert_allclose(out["ild"], -out["ld"], atol=1e-4, rtol=1e-5)
    assert np.all(out["sign"] != 0)
    np.testing.assert_allclose(out["ld"], out["logdet"], atol=1e-4, rtol=1e-5)


# -- every iso generator, one compiled module -----------------------------------

GENERATORS = """
morphism net : R[2] -> R[6] = dense(features=8) ; tanh ; dense
morphism net5 : R[2] -> R[6] = dense(features=8) ; relu ; dense
morphism net6 : R[3] -> R[6] = dense(features=8) ; tanh ; dense
shared snet = net
morphism gnet[d] : R[d] -> R[2 * d] = dense(features=8) ; tanh ; dense

morphism g_coupling : R[5] -> R[5] = coupling(hidden=8)
morphism g_coupling_net : R[5] -> R[5] = coupling(conditioner=net5)
morphism g_coupling_shared : R[5] -> R[5] = coupling(conditioner=snet) ; reverse ; coupling(conditioner=snet)
morphism g_coupling_generic : R[6] -> R[6] = coupling(conditioner=gnet)
morphism g_coupling_rank2 : R[3, 4] -> R[3, 4] = coupling(hidden=8)
morphism g_reverse : R[5] -> R[5] = reverse
morphism g_permute : R[6] -> R[6] = permute(seed=7)
morphism g_actnorm : R[5] -> R[5] = actnorm
morphism g_actnorm_rank3 : R[2, 3, 4] -> R[2, 3, 4] = actnorm
morphism g_lu_linear : R[5] -> R[5] = lu_linear
morphism g_lu_linear_rank2 : R[3, 4] -> R[3, 4] = lu_linear
morphism g_neg : R[4] -> R[4] = neg
morphism g_scale : R[4] -> R[4] = scale(by=-1.7)
morphism g_scale_rank2 : R[2, 3] -> R[2, 3] = scale(by=0.6)
morphism g_shift : R[4] -> R[4] = shift(by=0.25)
morphism g_transpose : R[2, 3] -> R[3, 2] = transpose(1, 0)
morphism g_swap : R[2] ⊗ R[3] -> R[3] ⊗ R[2] = swap
morphism g_id : R[4] -> R[4] = id
morphism g_inv : R[5] -> R[5] = inv(actnorm ; lu_linear ; coupling(conditioner=net5))
morphism g_glow : R[6] -> R[6] = repeat 2 (actnorm ; lu_linear ; coupling(conditioner=net6))
"""

#: A ``repeat`` compiles a scan (under ``jit`` and ``jacfwd``): seconds, so the Glow stack is marked slow.
ENTRIES = [pytest.param(name, marks=pytest.mark.slow) if name == "g_glow" else name
           for name in (line.split()[1] for line in GENERATORS.splitlines() if line.startswith("morphism g_"))]


@pytest.mark.parametrize("entry", ENTRIES)
@settings(SETTINGS, max_examples=3)
@given(seed=st.integers(0, 2**16), scale=st.floats(0.1, 1.5))
def test_each_iso_generator(entry: str, seed: int, scale: float) -> None:
    model = _compiled(entry)
    _perturb(model, seed, 0.1)
    check_iso(model, seed, scale)


_MODELS: dict[str, tuple[nnx.Module, nnx.State]] = {}
_MODULE: list[object] = []


def _compiled(entry: str) -> nnx.Module:
    """One compiled model per entry for the whole file: each example starts from its initial parameters."""
    if entry not in _MODELS:
        if not _MODELS:
            _MODULE.append(catnet.loads(GENERATORS))
        model = catnet.compile(_MODULE[0], entry, rngs=nnx.Rngs(0))
        _MODELS[entry] = (model, jax.tree.map(jnp.copy, nnx.state(model, nnx.Param)))
    model, initial = _MODELS[entry]
    nnx.update(model, initial)
    return model


def test_actnorm_starts_at_the_identity_and_lu_linear_is_orthogonal_at_start() -> None:
    mod = catnet.loads("morphism a : R[2, 5] -> R[2, 5] = actnorm\nmorphism l : R[5] -> R[5] = lu_linear")
    x = jax.random.normal(jax.random.key(0), (4, 2, 5))
    a = catnet.compile(mod, "a", rngs=nnx.Rngs(0))
    y, ld = a.forward_log_det(x)
    np.testing.assert_array_equal(y, x)
    np.testing.assert_array_equal(ld, np.zeros(4))
    lu = catnet.compile(mod, "l", rngs=nnx.Rngs(0))
    w = lu.lu_linear.weight()
    np.testing.assert_allclose(w @ w.T, np.eye(5), atol=1e-5)
    # Parameters: c² for lu_linear (the fixed permutation and signs are no parameters), 2c for actnorm.
    assert sum(p.size for p in jax.tree.leaves(nnx.state(lu, nnx.Param))) == 25
    assert sum(p.size for p in jax.tree.leaves(nnx.state(a, nnx.Param))) == 10


def test_log_det_scales_with_positions() -> None:
    """On R[3, 4] the per-channel map runs at 3 positions: 3 × Σ log_scale."""
    model = catnet.compile("morphism a : R[3, 4] -> R[3, 4] = actnorm", rngs=nnx.Rngs(0))
    model.actnorm.log_scale[...] = jnp.array([0.1, -0.2, 0.3, 0.5])
    _, ld = model.forward_log_det(jnp.ones((2, 3, 4)))
    np.testing.assert_allclose(ld, [3 * 0.7, 3 * 0.7], rtol=1e-6)
    scaled = catnet.compile("morphism s : R[3, 4] -> R[3, 4] = scale(by=-2.0)", rngs=nnx.Rngs(0))
    np.testing.assert_allclose(scaled.forward_log_det(jnp.ones((2, 3, 4)))[1], [12 * math.log(2.0)] * 2, rtol=1e-6)


def test_permute_is_a_function_of_seed_and_size_only() -> None:
    from catnet.lower.ops.flows import permutation

    text = "morphism p : R[8] -> R[8] = permute(seed=5)\nmorphism q : R[8] -> R[8] = permute(seed=6)"
    x = jnp.arange(8.0)[None]
    p1 = catnet.compile(text, "p", rngs=nnx.Rngs(0))(x)
    p2 = catnet.compile(text, "p", rngs=nnx.Rngs(123))(x)
    q = catnet.compile(text, "q", rngs=nnx.Rngs(0))(x)
    np.testing.assert_array_equal(p1, p2)
    assert not np.array_equal(p1, q)
    assert sorted(np.asarray(p1[0]).tolist()) == list(range(8))
    assert permutation(5, 8) == tuple(int(i) for i in np.asarray(p1[0]))
    assert _param_count(catnet.compile(text, "p", rngs=nnx.Rngs(0))) == 0


# -- the conditioner: Para, sharing, counts, fmt ------------------------------------

CONDITIONED = """
morphism net : R[2] -> R[4] = dense(features=16) ; relu ; dense
shared snet = net
morphism fresh2 : R[4] -> R[4] = coupling(conditioner=net) ; reverse ; coupling(conditioner=net)
morphism shared2 : R[4] -> R[4] = coupling(conditioner=snet) ; reverse ; coupling(conditioner=snet)
morphism plain : R[4] -> R[4] = coupling(hidden=16)
morphism templ(f : R[2] -> R[4]) : R[4] -> R[4] = coupling(conditioner=f) ; reverse
morphism via_template : R[4] -> R[4] = templ(net)
morphism ascribed : R[4] -> R[4] = coupling(conditioner=(net : R[2] -> R[4]))
"""


def _param_count(model: nnx.Module) -> int:
    return sum(p.size for p in jax.tree.leaves(nnx.state(model, nnx.Param)))


@pytest.mark.parametrize("entry", ["fresh2", "shared2", "plain", "via_template", "ascribed"])
def test_summary_counts_what_the_model_holds(entry: str) -> None:
    from catnet.summary import total_params

    module = catnet.loads(CONDITIONED)
    model = catnet.compile(module, entry, rngs=nnx.Rngs(0))
    assert total_params(module.diagram(entry)) == _param_count(model)


def test_a_fresh_conditioner_per_coupling_a_shared_one_once() -> None:
    module = catnet.loads(CONDITIONED)
    net = 2 * 16 + 16 + 16 * 4 + 4
    fresh = catnet.compile(module, "fresh2", rngs=nnx.Rngs(0))
    shared = catnet.compile(module, "shared2", rngs=nnx.Rngs(0))
    assert _param_count(fresh) == 2 * net
    assert _param_count(shared) == net
    # Two fresh conditioners start with different weights; the shared one is on the root.
    k0 = fresh.coupling[0].conditioner.dense[0].kernel[...]
    k1 = fresh.coupling[1].conditioner.dense[0].kernel[...]
    assert not np.allclose(k0, k1)
    assert hasattr(shared, "snet")
    # A gradient of the shared model reaches the one conditioner from both couplings.
    x = jax.random.normal(jax.random.key(0), (4, 4))

    def loss(m: nnx.Module) -> jax.Array:
        y, ld = m.forward_log_det(x)
        return jnp.sum(y**2) - jnp.sum(ld)

    grads = nnx.grad(loss)(shared)
    assert float(jnp.abs(grads["snet"]["net"]["dense"][0]["kernel"][...]).sum()) > 0  # type: ignore[index]


def test_the_default_coupling_keeps_its_numbers() -> None:
    """No conditioner: the MLP of `hidden` units, its parameter count as before (half·h + h + h·2·rest + 2·rest)."""
    from catnet.summary import total_params

    d = catnet.loads("morphism c : R[5] -> R[5] = coupling(hidden=8)").diagram("c")
    assert total_params(d) == (2 * 8 + 8) + (8 * 6 + 6)


def test_fmt_and_pretty_print_the_conditioner_back() -> None:
    from catnet.fmt import format_text
    from catnet.pretty import pretty

    out = format_text(CONDITIONED)
    assert "coupling(conditioner=net)" in out and "coupling(conditioner=snet)" in out
    module = catnet.loads(CONDITIONED)
    for entry in ("fresh2", "shared2", "ascribed"):
        d = module.diagram(entry)
        text = CONDITIONED + f"\nmorphism again : R[4] -> R[4] = {pretty(d)}\n"
        assert catnet.loads(text).diagram("again") == d


@pytest.mark.parametrize(
    "body, code, words",
    [
        ("coupling(conditioner=net)", None, None),
        ("coupling(conditioner=wide)", "E0319", "`wide` maps R[2] -> R[6], but `coupling` on R[4] needs a conditioner R[2] -> R[4]"),
        ("coupling(conditioner=3)", "E0208", "must name a morphism"),
        ("coupling(conditioner=nothing)", "E0201", "unknown morphism `nothing`"),
        ("coupling(conditioner=Obj)", "E0208", "names the object `Obj`"),
        ("coupling(conditioner=(net : R[2] -> R[6]))", "E0303", "the ascription says"),
    ],
)
def test_conditioner_errors(body: str, code: str | None, words: str | None) -> None:
    text = ("object Obj = R[2]\nmorphism net : R[2] -> R[4] = dense(features=8) ; relu ; dense\n"
            "morphism wide : R[2] -> R[6] = dense(features=8) ; relu ; dense\n"
            f"morphism f : R[4] -> R[4] = {body}\n")
    if code is None:
        catnet.loads(text)
        return
    with pytest.raises(CatnetError) as info:
        catnet.loads(text)
    assert info.value.code == code, info.value.render()
    assert words in str(info.value), str(info.value)
    assert info.value.span is not None and info.value.span.line == 4


def test_a_symbolic_coupling_width_with_a_conditioner_is_located() -> None:
    text = "morphism net : R[2] -> R[4] = dense\nmorphism f[n] : R[n] -> R[n] = coupling(conditioner=net)\n"
    with pytest.raises(CatnetError) as info:
        catnet.loads(text)
    assert info.value.code == "E0306" and info.value.span.line == 2


# -- random flows: compositions, products, repeats, inverses ---------------------------------


@st.composite
def _atom(draw: st.DrawFn, n: int) -> str:
    """One iso generator on R[n] (``net{n}`` is the conditioner defined for that width)."""
    options = ["reverse", "actnorm", "lu_linear", "neg", "id", f"permute(seed={draw(st.integers(0, 99))})",
               f"scale(by={draw(st.sampled_from([-1.5, -0.5, 0.75, 1.25, 2.0]))})",
               f"shift(by={draw(st.sampled_from([-0.5, 0.3, 1.0]))})"]
    if n >= 2:
        options += ["coupling(hidden=8)", f"coupling(conditioner=net{n})", f"coupling(conditioner=snet{n})"]
    return draw(st.sampled_from(options))


@st.composite
def _flow(draw: st.DrawFn, n: int, depth: int = 2) -> str:
    """A random iso R[n] -> R[n]: compositions, ``repeat`` and ``inv`` of atoms."""
    kind = draw(st.sampled_from(["atom", "then", "repeat", "inv"] if depth > 0 else ["atom"]))
    if kind == "atom":
        return draw(_atom(n))
    if kind == "then":
        parts = draw(st.lists(_flow(n, depth - 1), min_size=2, max_size=3))
        return "(" + " ; ".join(parts) + ")"
    if kind == "repeat":
        return f"(repeat {draw(st.integers(1, 3))} {draw(_flow(n, depth - 1))})"
    return f"inv({draw(_flow(n, depth - 1))})"


@st.composite
def _program(draw: st.DrawFn) -> str:
    """A random flow on one wire R[n], or on two wires R[n] ⊗ R[m] (products and swaps)."""
    n = draw(st.integers(2, 5))
    if draw(st.booleans()):
        return f"R[{n}] -> R[{n}] = {draw(_flow(n))}"
    m = draw(st.integers(1, 4))
    f, g = draw(_flow(n, 1)), draw(_flow(m, 1))
    shape = draw(st.sampled_from(["product", "swapped", "then"]))
    if shape == "product":
        body = f"({f} ⊗ {g})"
    elif shape == "swapped":
        body = f"swap ; ({g} ⊗ {f}) ; swap"
    else:
        body = f"({f} ⊗ id) ; (id ⊗ {g}) ; inv(({draw(_flow(n, 0))} ⊗ {draw(_flow(m, 0))}))"
    return f"R[{n}] ⊗ R[{m}] -> R[{n}] ⊗ R[{m}] = {body}"


def _conditioners() -> str:
    lines = []
    for n in range(2, 6):
        half, rest = n // 2, n - n // 2
        lines.append(f"morphism net{n} : R[{half}] -> R[{2 * rest}] = dense(features=8) ; tanh ; dense")
        lines.append(f"shared snet{n} = net{n}")
    return "\n".join(lines) + "\n"


#: Each example is a new program to compile (and repeats are scans), so six:
#: the derandomized draws hold couplings with and without a (shared)
#: conditioner, compositions, a ``repeat``, an ``inv``, products and swaps
#: (twelve took ten seconds more; every generator alone is
#: ``test_each_iso_generator``'s).
@pytest.mark.slow
@settings(SETTINGS, max_examples=6)
@given(program=_program(), seed=st.integers(0, 2**16), scale=st.floats(0.1, 1.5))
def test_random_flows(program: str, seed: int, scale: float) -> None:
    text = _conditioners() + f"morphism flow : {program}\n"
    model = catnet.compile(text, "flow", rngs=nnx.Rngs(seed))
    _perturb(model, seed, 0.1)
    check_iso(model, seed, scale)
