"""Tied weights: shared instances at symbolic sizes and ``transposed(wte)``.

A ``shared`` instance generic in a size is one parameter set however many
sizes it is used at; ``transposed`` of a shared ``embed``/``dense`` uses its
matrix transposed and owns nothing.  Counts are compared three ways (by
hand, ``catnet summary``, the lowered ``nnx.Param`` leaves), numbers against
hand-written JAX, and drawings against DOT goldens.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import catnet
from catnet import CatnetError
from catnet.lower import lower
from catnet.render import graph as G
from catnet.render.dot import to_dot
from catnet.render.style import Options
from catnet.summary import summarize, total_params

from conftest import ROOT, golden

GOLDEN = Path(__file__).resolve().parent / "golden" / "render"

GPT = """\
object Tokens = Z[T]
object Hidden = R[T, 16]

shared wte[T] = (embed(vocab=50, features=16) : Tokens -> Hidden)

morphism mlp : Hidden -> Hidden = (dense : Hidden -> R[T, 64]) ; gelu ; dense

morphism block(x : Hidden) -> Hidden {
  h = x + attention(layernorm(x), heads=2, causal=true)
  return h + mlp(layernorm(h))
}

morphism trunk : Tokens -> Hidden = wte ; repeat 2 block ; layernorm
morphism gpt : Tokens -> R[T, 50] = trunk ; transposed(wte)
morphism gpt8 : Z[8] -> R[8, 50] = gpt
morphism pair : Z[8] ⊗ Z[12] -> R[8, 50] ⊗ R[12, 50] = gpt ⊗ gpt
"""

WTE = 50 * 16
BLOCK = 2 * (2 * 16) + 4 * (16 * 16 + 16) + (16 * 64 + 64) + (64 * 16 + 16)  # two norms, attention, mlp
TRUNK = 2 * BLOCK + 2 * 16  # two blocks and the final norm

TIED = """\
shared wte[T] = (embed(vocab=50, features=16) : Z[T] -> R[T, 16])
shared enc = (dense : R[12] -> R[5])
morphism encoder : R[12] -> R[5] = dense
shared enc2 = encoder

morphism lm : Z[T] -> R[T, 50] = wte ; transposed(wte)
morphism head : R[T, 16] -> R[T, 50] = transposed(wte)
morphism ae : R[12] -> R[12] = enc ; relu ; transposed(enc)
morphism decode : R[3, 5] -> R[3, 12] = transposed(of=enc2)
morphism lengths : Z[3] ⊗ Z[7] -> R[3, 16] ⊗ R[7, 16] = wte ⊗ wte[7]
"""


def _fails(text: str, code: str) -> CatnetError:
    with pytest.raises(CatnetError) as info:
        catnet.loads(text)
    assert info.value.code == code, info.value.render()
    return info.value


# -- checking: shared instances generic in sizes -------------------------------------


def test_one_instance_at_every_length() -> None:
    m = catnet.loads(GPT)
    wte = m["wte"]
    assert (wte.kind, wte.dim_params, str(wte.dom), str(wte.cod)) == ("shared", ("T",), "Tokens", "Hidden")
    assert str(m.diagram("pair").cod) == "R[8, 50] ⊗ R[12, 50]"
    lengths = catnet.loads(TIED).diagram("lengths")
    assert [str(layer.box.cod) for layer in lengths.layers] == ["R[3, 16]", "R[7, 16]"]
    assert {layer.box.shared for layer in lengths.layers} == {"wte"}


def test_size_arguments_of_a_shared_instance() -> None:
    assert str(catnet.loads(TIED + "morphism four : Z[4] -> R[4, 16] = wte[4]\n").diagram("four").cod) == "R[4, 16]"
    _fails(TIED + "morphism bad : Z[4] -> R[4, 16] = wte[4, 5]\n", "E0206")
    _fails(TIED + "morphism bad : Z[4] -> R[4, 16] = wte[5]\n", "E0305")
    # its own type is generic, so another shared declaration must fix the size
    _fails(TIED + "shared again = wte\n", "E0304")
    ok = catnet.loads(TIED + "shared again[n] = wte[n] ; relu\nmorphism u : Z[2] -> R[2, 16] = again\n")
    assert ok["again"].dim_params == ("n",)
    _fails("shared s[T, T] = (relu : R[T] -> R[T])\n", "E0202")


def test_parameters_may_not_depend_on_a_declared_size() -> None:
    e = _fails("shared d[n] = (dense : R[n] -> R[8])\n", "E0316")
    assert e.span is not None and e.span.column == 16  # at `dense`
    # inside a definition, reported at the use in the shared expression, naming the box
    e = _fails("morphism ffn[d] : R[d] -> R[d] = layernorm ; relu\nshared s[d] = (ffn[d] : R[d] -> R[d])\n", "E0316")
    assert "`layernorm` (in `ffn`)" in e.notes[0]
    # a size that only non-parameter axes use is fine
    ok = catnet.loads("shared s[T] = (layernorm ; dense : R[T, 8] -> R[T, 4])\n")
    assert ok["s"].dim_params == ("T",)


# -- checking: transposed -----------------------------------------------------------


def test_transposed_types() -> None:
    m = catnet.loads(TIED)
    assert str(m["head"].dom) + " -> " + str(m["head"].cod) == "R[T, 16] -> R[T, 50]"
    assert m["ae"].signature() == "R[12] -> R[12]"
    assert m["decode"].signature() == "R[3, 5] -> R[3, 12]"
    wired = catnet.loads(TIED + "morphism w(h : R[4, 16]) -> R[4, 50] {\n  return transposed(h, of=wte)\n}\n")
    assert wired["w"].signature() == "R[4, 16] -> R[4, 50]"


@pytest.mark.parametrize(
    "body, code, words",
    [
        ("transposed(encoder)", "E0208", "which is a morphism, not a shared instance"),
        ("transposed(dense)", "E0208", "names the generator `dense`"),
        ("transposed(wte ; relu)", "E0208", "must be the name of a shared instance"),
        ("transposed(wte[4])", "E0208", "must be the name of a shared instance"),
        ("transposed(T)", "E0208", "names the size `T`"),
        ("transposed(Img)", "E0208", "names the object `Img`"),
        ("transposed(wtf)", "E0201", "unknown shared instance `wtf`"),
        ("transposed", "E0206", "needs the argument `of`"),
        ("transposed(block)", "E0306", "`block` is 2 boxes: `dense`, `relu`"),
        ("transposed(norm)", "E0306", "`norm` is one `layernorm`"),
        ("(dense : R[T, 16] -> R[T, 7]) ; transposed(wte)", "E0306", "takes R[…, 16] (the features of its `embed`)"),
    ],
)
def test_transposed_misuse(body: str, code: str, words: str) -> None:
    text = (TIED + "object Img = R[8]\nshared block = (dense ; relu : R[4] -> R[4])\nshared norm = (layernorm : R[4] -> R[4])\n"
            f"morphism bad : R[T, 16] -> R[T, 50] = {body}\n")
    e = _fails(text, code)
    assert words in e.message, e.render()
    assert e.span is not None and e.span.line == text.count("\n")


def test_transposed_of_a_template_parameter() -> None:
    e = _fails("morphism t(f : R[4] -> R[4]) : R[4] -> R[4] = transposed(f)\n", "E0208")
    assert "morphism parameter `f`" in e.message


def test_transposed_of_an_imported_instance(tmp_path: Path) -> None:
    (tmp_path / "emb.cat").write_text("shared wte[T] = (embed(vocab=9, features=4) : Z[T] -> R[T, 4])\n", encoding="utf-8")
    (tmp_path / "lm.cat").write_text('import "emb.cat"\nmorphism lm : Z[6] -> R[6, 9] = wte ; transposed(wte)\n', encoding="utf-8")
    m = catnet.load(tmp_path / "lm.cat")
    assert total_params(m.diagram("lm")) == 9 * 4


# -- counts: by hand, summary, lowered -----------------------------------------------


def _param_count(model) -> int:
    import jax
    from flax import nnx

    return sum(x.size for x in jax.tree.leaves(nnx.state(model, nnx.Param)))


@pytest.mark.parametrize(
    "entry, by_hand",
    [("gpt8", WTE + TRUNK), ("gpt", WTE + TRUNK), ("pair", WTE + 2 * TRUNK), ("head", WTE), ("lm", WTE),
     ("ae", 12 * 5 + 5), ("decode", 12 * 5 + 5), ("lengths", WTE)],
)
def test_counts_agree(entry: str, by_hand: int) -> None:
    pytest.importorskip("jax")
    from flax import nnx

    text = GPT if entry.startswith(("gpt", "pair")) else TIED
    d = catnet.loads(text).diagram(entry)
    assert total_params(d) == by_hand
    model = lower(d, rngs=nnx.Rngs(0))
    assert _param_count(model) == by_hand


def test_summary_notes_tied_uses() -> None:
    s = summarize(catnet.loads(GPT).diagram("gpt8"))
    tied = [r for r in s.rows if r.kind == "transposed"]
    assert len(tied) == 1 and tied[0].params == 0
    assert tied[0].note == "tied to `wte` (800 parameters, counted once)"
    assert s.total == WTE + TRUNK
    # used only transposed, the instance is still counted (once)
    s = summarize(catnet.loads(TIED).diagram("head"))
    assert [r.note for r in s.rows] == ["tied to `wte` (800 parameters, counted once)"] and s.total == WTE


def test_summary_cli(tmp_path: Path) -> None:
    path = tmp_path / "gpt.cat"
    path.write_text(GPT, encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "catnet", "summary", str(path), "--entry", "gpt8"], capture_output=True,
                          text=True, cwd=ROOT, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1].split() == ["total", f"{WTE + TRUNK:,}"]
    assert "tied to `wte` (800 parameters, counted once)" in proc.stdout


# -- numbers --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tied_models():
    pytest.importorskip("jax")
    from flax import nnx

    m = catnet.loads(TIED)
    return {name: lower(m.diagram(name), rngs=nnx.Rngs(1)) for name in ("head", "lm", "ae", "decode", "lengths")}


def _embedding(model) -> np.ndarray:
    return np.asarray(model.wte.embed.embedding[...])


def test_tied_head_is_h_times_embedding_transposed(tied_models) -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st
    from hypothesis.extra.numpy import arrays

    head = tied_models["head"]
    E = _embedding(head)
    assert E.shape == (50, 16)
    floats = st.floats(-10, 10, width=32)

    @settings(max_examples=25, deadline=None, derandomize=True)
    @given(st.integers(1, 3).flatmap(lambda b: st.integers(1, 5).flatmap(lambda t: arrays(np.float32, (b, t, 16), elements=floats))))
    def law(h: np.ndarray) -> None:
        np.testing.assert_allclose(np.asarray(head(h)), h @ E.T, rtol=1e-5, atol=1e-4)

    law()


def test_tied_autoencoder_by_hand(tied_models) -> None:
    x = np.random.default_rng(0).normal(size=(4, 12)).astype(np.float32)
    ae = tied_models["ae"]
    W, b = np.asarray(ae.enc.dense.kernel[...]), np.asarray(ae.enc.dense.bias[...])
    np.testing.assert_allclose(np.asarray(ae(x)), np.maximum(x @ W + b, 0) @ W.T, rtol=1e-5, atol=1e-5)
    # through a named definition: `shared enc2 = encoder`, encoder = dense
    dec = tied_models["decode"]
    W2 = np.asarray(dec.enc2.encoder.dense.kernel[...])
    y = np.random.default_rng(1).normal(size=(2, 3, 5)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(dec(y)), y @ W2.T, rtol=1e-5, atol=1e-5)
    # jitted, the same numbers
    from flax import nnx

    np.testing.assert_allclose(np.asarray(nnx.jit(lambda m, v: m(v))(dec, y)), y @ W2.T, rtol=1e-5, atol=1e-5)


def test_one_table_at_two_lengths(tied_models) -> None:
    model = tied_models["lengths"]
    E = _embedding(model)
    a = np.array([[1, 2, 3]], np.int32)
    b = np.array([[4, 5, 6, 7, 8, 9, 0]], np.int32)
    ya, yb = model(a, b)
    np.testing.assert_allclose(np.asarray(ya), E[a], rtol=1e-6)
    np.testing.assert_allclose(np.asarray(yb), E[b], rtol=1e-6)


def test_gradients_reach_the_embedding_from_both_uses(tied_models) -> None:
    import jax
    import jax.numpy as jnp
    from flax import nnx

    lm = tied_models["lm"]
    E = jnp.asarray(_embedding(lm))
    ids = np.array([[3, 1, 4, 1, 5], [9, 2, 6, 5, 3]], np.int32)
    c = jnp.asarray(np.random.default_rng(2).normal(size=(2, 5, 50)).astype(np.float32))

    def loss(model) -> jax.Array:
        return jnp.sum(model(ids) * c)

    grads = nnx.grad(loss)(lm)
    got = np.asarray(grads["wte"]["embed"]["embedding"][...])

    def by_hand(table: jax.Array, lookup: bool = True, head: bool = True) -> jax.Array:
        rows = table if lookup else jax.lax.stop_gradient(table)
        cols = table if head else jax.lax.stop_gradient(table)
        return jnp.sum((rows[ids] @ cols.T) * c)

    np.testing.assert_allclose(got, np.asarray(jax.grad(by_hand)(E)), rtol=1e-4, atol=1e-5)
    # each use alone gives a different gradient: both reach the table
    for one in ({"lookup": False}, {"head": False}):
        alone = np.asarray(jax.grad(lambda t, one=one: by_hand(t, **one))(E))
        assert not np.allclose(got, alone, rtol=1e-3, atol=1e-3)
    # rows of tokens that are never read still learn, from the head
    unread = [i for i in range(50) if i not in ids]
    assert np.abs(got[unread]).sum() > 0


def test_gpt_at_two_lengths_shares_every_parameter() -> None:
    pytest.importorskip("jax")
    from flax import nnx

    model = lower(catnet.loads(GPT).diagram("gpt"), rngs=nnx.Rngs(0))
    model.eval()
    short, long = np.arange(6, dtype=np.int32)[None], np.arange(11, dtype=np.int32)[None] % 50
    a, b = np.asarray(model(short)), np.asarray(model(long))
    assert a.shape == (1, 6, 50) and b.shape == (1, 11, 50)
    # causal: the first six positions do not see the later tokens
    np.testing.assert_allclose(a, b[:, :6], rtol=1e-5, atol=1e-5)


# -- drawing ---------------------------------------------------------------------------


def _dot(text: str, entry: str, **kw: object) -> str:
    d = catnet.loads(text).diagram(entry)
    return to_dot(G.build(d, name=entry, params=True, **kw), Options())


@pytest.mark.parametrize("entry, depth", [("gpt8", None), ("gpt8", 0)])
def test_render_gpt_params_golden(entry: str, depth: int | None) -> None:
    golden(GOLDEN / f"tied_{entry}{'' if depth is None else f'.depth{depth}'}.params.dot", _dot(GPT, entry, depth=depth))


@pytest.mark.parametrize("entry", ["ae", "head"])
def test_render_tied_params_golden(entry: str) -> None:
    golden(GOLDEN / f"tied_{entry}.params.dot", _dot(TIED, entry))


@pytest.mark.parametrize("text, entry", [(GPT, "gpt8"), (GPT, "pair"), (TIED, "ae"), (TIED, "head")])
def test_one_parameter_source_per_tied_instance(text: str, entry: str) -> None:
    g = G.build(catnet.loads(text).diagram(entry), params=True)
    tied = [n for n, d in g.nodes(data=True) if d["kind"] == G.BOX and d["label"] == "transposed"]
    sources = [n for n, d in g.nodes(data=True) if d["kind"] == G.PARAM and d["shared"] is not None]
    assert len(sources) == 1
    assert g.nodes[sources[0]]["label"].startswith(g.nodes[sources[0]]["shared"] + " ")
    for n in tied:
        assert g.nodes[n]["detail"].startswith("of=")
        feeds = [u for u, _, d in g.in_edges(n, data=True) if d["kind"] == G.PARAMETER]
        assert len(feeds) == 1
        origin = feeds[0]
        while g.nodes[origin]["kind"] != G.PARAM:  # through the copy dot
            (origin,) = [u for u, _ in g.in_edges(origin)]
        assert origin == sources[0]
