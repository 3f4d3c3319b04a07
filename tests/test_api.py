"""The Python API checks what it is given: arguments (E0801), model inputs (E0802).

Every API case of the hardening issue is here with its code, its message
and, where a file is involved, its location; ``vocab_bounds`` (JAX-free) is
tested on small diagrams that route token ids through structural boxes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import catnet
from catnet.check.inputs import Given, check_inputs, given, vocab_bounds
from catnet.errors import CatnetError

jax = pytest.importorskip("jax")
nnx = pytest.importorskip("flax.nnx")

from conftest import ROOT  # noqa: E402

MLP = ROOT / "examples" / "digits_mlp.cat"
#: A small token model: ids 0..15 per position of a sequence of any length.
TOKENS = """object Tokens = Seq[T](Z[])
morphism lm : Tokens -> Seq[T](R[16]) = embed(vocab=16, features=8) ; dense
main lm
"""


def raised(call, code: str) -> CatnetError:  # noqa: ANN001
    with pytest.raises(CatnetError) as info:
        call()
    assert info.value.code == code, info.value.render()
    assert "Traceback" not in info.value.render()
    return info.value


def where(e: CatnetError) -> str:
    assert e.span is not None
    return f"{Path(e.span.file).name}:{e.span.line}:{e.span.column}"


# -- arguments: E0801 -------------------------------------------------------------


@pytest.mark.parametrize(
    "call, text",
    [
        (lambda: catnet.compile(None, rngs=nnx.Rngs(0)), "but was given `None`"),
        (lambda: catnet.compile(123, rngs=nnx.Rngs(0)), "but was given an `int` (`123`)"),
        (lambda: catnet.compile(b"object A = R[4]", rngs=nnx.Rngs(0)), "but was given a `bytes`"),
        (lambda: catnet.compile(str(MLP), rngs=None), "expects `rngs` to be a `flax.nnx.Rngs`, but was given `None`"),
        (lambda: catnet.compile(str(MLP), rngs=jax.random.key(0)), "but was given a `PRNGKeyArray`"),
        (lambda: catnet.compile(str(MLP), 5, rngs=nnx.Rngs(0)), "expects `entry` to be the name of a morphism (a `str`), but was given an `int` (`5`)"),
        (lambda: catnet.compile(str(MLP), rngs=nnx.Rngs(0), check_memory="no"), "`check_memory` to be `True` or `False`"),
        (lambda: catnet.load(MLP).diagram(123), "`module.diagram` expects the name of a morphism (a `str`), but was given an `int` (`123`)"),
        (lambda: catnet.load(MLP).lookup(None), "`module.lookup` expects the name of a morphism (a `str`), but was given `None`"),
        (lambda: catnet.load(MLP)[1.5], "but was given a `float` (`1.5`)"),
    ],
    ids=["compile-None", "compile-int", "compile-bytes", "rngs-None", "rngs-key", "entry-int", "check-memory-str",
         "diagram-int", "lookup-None", "getitem-float"],
)
def test_bad_arguments_say_what_was_expected_and_given(call, text: str) -> None:  # noqa: ANN001
    e = raised(call, "E0801")
    assert text in e.message
    assert "attribute" not in e.message and "iterable" not in e.message  # no library internals


def test_compile_source_error_names_every_accepted_kind() -> None:
    e = raised(lambda: catnet.compile(None, rngs=nnx.Rngs(0)), "E0801")
    assert e.message == ("`catnet.compile` expects a path to a .cat file, the text of one, a module from "
                         "`catnet.load` or a checked `Diagram`, but was given `None`")


def test_unknown_entry_is_E0210_with_a_suggestion() -> None:
    # An unknown name is the code the command line's `--entry` gives (E0210), with the names there are.
    e = raised(lambda: catnet.compile(str(MLP), "mpl", rngs=nnx.Rngs(0)), "E0210")
    assert e.message == f"no morphism named `mpl` in {MLP}"
    assert e.help == "did you mean `mlp`?"


def test_given_names_types_and_short_values() -> None:
    assert given(None) == "`None`"
    assert given(3) == "an `int` (`3`)"
    assert given("x" * 100) == "a `str`"
    assert given(np.zeros(3)) == "a `ndarray`"


# -- inputs: E0802 ------------------------------------------------------------------


@pytest.fixture(scope="module")
def mlp(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    path = tmp_path_factory.mktemp("api") / "net.cat"
    path.write_text("object Image = R[64]\nobject Logits = R[10]\nmorphism net : Image -> Logits = dense(features=32) ; relu ; dense\n")
    return catnet.compile(str(path), rngs=nnx.Rngs(0))


def test_wrong_width_names_the_wire_and_the_shapes(mlp) -> None:  # noqa: ANN001
    e = raised(lambda: mlp(np.ones((2, 63), np.float32)), "E0802")
    assert where(e) == "net.cat:3:10"
    assert e.message == "the input `Image = R[64]` needs an array of shape (batch, 64), but was given one of shape (2, 63)"
    assert e.notes == ("axis 1 of the array has size 63, but the wire needs 64",)
    assert "dot_general" not in e.render()
    rendered = e.render()
    assert "3 | morphism net : Image -> Logits" in rendered


def test_wrong_width_is_caught_when_jit_traces(mlp) -> None:  # noqa: ANN001
    e = raised(lambda: jax.jit(lambda x: mlp(x))(np.ones((2, 63), np.float32)), "E0802")
    assert "(batch, 64)" in e.message and "(2, 63)" in e.message


def test_missing_batch_axis_gets_help(mlp) -> None:  # noqa: ANN001
    e = raised(lambda: mlp(np.ones((64,), np.float32)), "E0802")
    assert e.message == "the input `Image = R[64]` needs an array of shape (batch, 64), but was given one of shape (64,)"
    assert e.help == "add a leading batch axis, e.g. `x[None]`"


def test_wrong_count_dtype_and_non_arrays(mlp) -> None:  # noqa: ANN001
    assert raised(lambda: mlp(), "E0802").message == "`net` takes 1 input (Image = R[64]), but was given 0 arrays"
    e = raised(lambda: mlp(np.ones((2, 64), np.int64)), "E0802")
    assert e.message == "the input `Image = R[64]` takes real numbers, but was given an array of int64"
    assert e.help is not None and "astype(np.float32)" in e.help
    e = raised(lambda: mlp(None), "E0802")
    assert e.message == "the input `Image = R[64]` needs an array of shape (batch, 64), but was given `None`"
    assert mlp([[0.5] * 64]).shape == (1, 10)  # nested lists are arrays


def test_product_domain_checks_count_batch_and_symbols() -> None:
    text = "object S = Seq[T](R[4])\nmorphism both : S ⊗ S -> S = add\n"
    model = catnet.compile(text, rngs=nnx.Rngs(0))
    e = raised(lambda: model(np.ones((2, 5, 4), np.float32)), "E0802")
    assert e.message == "`both` takes 2 inputs (S ⊗ S = R[T, 4] ⊗ R[T, 4]), but was given 1 array"
    e = raised(lambda: model(np.ones((2, 5, 4), np.float32), np.ones((2, 7, 4), np.float32)), "E0802")
    assert e.message == "input 2 of 2 (`S = R[T, 4]`) needs an array of shape (batch, T, 4), but was given one of shape (2, 7, 4)"
    assert e.notes == ("axis 1 of the array has size 7, but the wire needs 5", "T = 5, from the shape of input 1")
    e = raised(lambda: model(np.ones((2, 5, 4), np.float32), np.ones((3, 5, 4), np.float32)), "E0802")
    assert e.message == "the inputs have different batch sizes: 2 for input 1 and 3 for input 2"
    assert model(np.ones((2, 5, 4), np.float32), np.ones((2, 5, 4), np.float32)).shape == (2, 5, 4)


def test_check_inputs_solves_compound_sizes() -> None:
    dom = catnet.loads("morphism f : R[T, T * 2] -> R[T, T * 2] = id\n").diagram().dom
    assert check_inputs(dom, [Given((1, 3, 6), "float", "float32")]) == {"T": 3}
    with pytest.raises(CatnetError) as info:
        check_inputs(dom, [Given((1, 3, 7), "float", "float32")])
    assert info.value.notes == ("axis 2 of the array has size 7, but the wire needs 6", "T = 3, from the shape of this input")


# -- token ids against `embed` ------------------------------------------------------


@pytest.fixture(scope="module")
def lm(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    path = tmp_path_factory.mktemp("api") / "lm.cat"
    path.write_text(TOKENS)
    return catnet.compile(str(path), rngs=nnx.Rngs(0))


@pytest.mark.parametrize("bad, index", [(999, (0, 1)), (-1, (0, 1)), (16, (0, 1))])
def test_token_ids_out_of_range_are_refused(lm, bad: int, index: tuple[int, int]) -> None:  # noqa: ANN001
    ids = np.array([[1, bad, 3]], np.int32)
    for array in (ids, jax.numpy.asarray(ids)):
        e = raised(lambda: lm(array), "E0802")
        assert where(e) == "lm.cat:2:10"
        assert e.message == f"the input `Tokens = Z[T]` holds the token id {bad}, but `embed(vocab=16)` takes ids from 0 to 15"
        assert e.notes[0].startswith(f"at index {index} of the array")
        assert e.notes[-1].endswith("lm.cat:2:41 reads this input")


def test_token_ids_in_range_and_float_ids(lm) -> None:  # noqa: ANN001
    assert lm(np.array([[0, 15, 3]], np.int32)).shape == (1, 3, 16)
    e = raised(lambda: lm(np.array([[1.0, 2.0]])), "E0802")
    assert e.message == "the input `Tokens = Z[T]` takes integer ids, but was given an array of float64"


def test_token_ids_are_not_checked_under_jit(lm) -> None:  # noqa: ANN001
    # Values of a tracer are unknown: the documented cost-free behaviour is no check.
    out = jax.jit(lambda x: lm(x))(np.array([[1, 2, 3]], np.int32))
    assert out.shape == (1, 3, 16)


@pytest.mark.parametrize(
    "text, bounds",
    [
        (TOKENS, {0: 16}),
        ("object Ids = Z[5]\nmorphism emb : Ids -> R[5, 8] = embed(vocab=10, features=8)\n"
         "morphism f : R[3] ⊗ Ids -> R[5, 8] ⊗ R[3] = swap ; (emb ⊗ id)\n", {1: 10}),
        ("object Ids = Z[5]\nmorphism f : Ids -> R[5, 8] ⊗ R[5, 8] = copy ; (embed(vocab=10, features=8) ⊗ embed(vocab=7, features=8))\n",
         {0: 7}),
        ("object Ids = Z[5]\nmorphism f : R[3] ⊗ Ids -> R[3] ⊗ Ids ⊗ R[3] ⊗ R[5, 8] = copy ; "
         "(id ⊗ id ⊗ id ⊗ embed(vocab=6, features=8))\n", {1: 6}),
        ("object Ids = Z[5]\nmorphism f : Ids ⊗ Ids -> R[10, 8] = concat(axis=0) ; embed(vocab=9, features=8)\n", {0: 9, 1: 9}),
        ("object Ids = Z[5]\nmorphism f : Ids ⊗ Ids -> R[5, 8] = add ; embed(vocab=9, features=8)\n", {}),
        ("object Ids = Z[5]\nmorphism sw : Ids ⊗ Ids -> Ids ⊗ Ids = swap\n"
         "morphism f : Ids ⊗ Ids -> R[5, 8] = repeat 3 sw ; (embed(vocab=9, features=8) ⊗ discard)\n", {1: 9}),
        ("object Ids = Z[5]\nmorphism f : R[3] ⊗ Ids -> R[5, 8] ⊗ R[3] = inv((swap : Ids ⊗ R[3] -> R[3] ⊗ Ids)) ; "
         "(embed(vocab=4, features=8) ⊗ id)\n", {1: 4}),
        ("object H = R[8]\nmorphism cell : H ⊗ Z[] -> H ⊗ R[8] = id ⊗ embed(vocab=5, features=8)\n"
         "morphism rnn : Seq[T](Z[]) -> Seq[T](R[8]) = scan[H](cell)\n", {0: 5}),
    ],
    ids=["embed", "swap-into-definition", "copy-smaller-vocab", "copy-of-a-product", "concat", "add-changes-ids", "repeat-of-swaps", "inv-swap", "scan"],
)
def test_vocab_bounds_follow_ids_through_structure(text: str, bounds: dict[int, int]) -> None:
    assert vocab_bounds(catnet.loads(text).diagram()) == bounds


# -- memory, before building -------------------------------------------------


def test_compile_refuses_a_512_gib_model_before_allocating(tmp_path: Path) -> None:
    path = tmp_path / "big.cat"
    path.write_text("object A = R[262144]\nobject B = R[524288]\nmorphism big : A -> B = dense\n")
    e = raised(lambda: catnet.compile(str(path), rngs=nnx.Rngs(0)), "E0603")
    assert where(e) == "big.cat:3:10"
    assert e.message.startswith("`big` needs about 512 GiB of memory to build and run, but ")
    assert "`dense` at 3:25: 137,439,477,760 parameters, 512 GiB" in e.notes
    assert e.help is not None and "check_memory=False" in e.help


def test_compile_refuses_2e16_parameters_under_nested_repeat() -> None:
    text = ("object A = R[1000]\nmorphism l1 : A -> A = dense ; relu\nmorphism l2 : A -> A = repeat 100000 l1\n"
            "morphism l3 : A -> A = repeat 100000 l2\nmorphism l4 : A -> A = repeat 2 l3\nmain l4\n")
    e = raised(lambda: catnet.compile(text, rngs=nnx.Rngs(0)), "E0603")
    assert where(e) == "<string>:5:10"
    assert e.notes[0].startswith("20,020,000,000,000,000 parameters: ")
    assert e.notes[2] == "`dense` at 2:24: 20,020,000,000,000,000 parameters in 20,000,000,000 copies, 71.1 PiB"


def test_check_memory_false_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    from catnet import budget

    text = "object A = R[4]\nmorphism f : A -> A = dense\n"  # 20 parameters and 8 values: 112 bytes
    monkeypatch.setattr(budget, "available_memory", lambda: (100, "this machine has"))
    e = raised(lambda: catnet.compile(text, rngs=nnx.Rngs(0)), "E0603")
    assert e.message == "`f` needs about 112 bytes of memory to build and run, but this machine has 100 bytes free"
    model = catnet.compile(text, rngs=nnx.Rngs(0), check_memory=False)
    assert model(np.zeros((1, 4), np.float32)).shape == (1, 4)
