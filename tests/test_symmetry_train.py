"""Training the symmetry examples: ``--rotate-test``, the ``digit_sums`` sets, and exact invariance.

A C4-invariant classifier scores the same on turned test images as on
upright ones (its logits are the same numbers), while an ordinary CNN
trained on the same upright images does not.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from catnet import data as datalib
from catnet.cli import main
from catnet.errors import CatnetError
from catnet.ir import Ob, Ty
from catnet.symmetry.actions import act, action
from conftest import ROOT

C4 = str(ROOT / "examples" / "c4_digits.cat")
CNN = str(ROOT / "examples" / "cnn_digits.cat")
SETS = str(ROOT / "examples" / "deepsets.cat")
MLP = str(ROOT / "examples" / "digits_mlp.cat")


def train(*argv: str) -> int:
    return main(["train", "--quiet", *argv])


def _images(n: int = 40) -> datalib.Dataset:
    dom, cod = Ty((Ob("R", (8, 8, 1)),)), Ty((Ob("R", (10,)),))
    return datalib.load("digits", dom, cod).take(np.arange(n))


# -- turning the test images ------------------------------------------------------------


def test_rotated_turns_each_image_by_its_own_drawn_quarter_turns() -> None:
    images = _images()
    turned, turns = datalib.rotated(images, seed=7)
    assert set(turns.tolist()) == {0, 1, 2, 3}
    for x, y, k in zip(images.inputs[0], turned.inputs[0], turns):
        assert np.array_equal(y, np.rot90(x, k, axes=(0, 1)))
    assert np.array_equal(turned.target, images.target)  # a class does not turn
    again, same = datalib.rotated(images, seed=7)
    assert np.array_equal(same, turns) and np.array_equal(again.inputs[0], turned.inputs[0])
    assert not np.array_equal(datalib.rotated(images, seed=8)[1], turns)
    assert np.array_equal(images.inputs[0], _images().inputs[0])  # the original is left alone


@settings(max_examples=20, deadline=None)
@given(k=st.integers(0, 3), size=st.sampled_from([2, 3, 8]))
def test_a_quarter_turn_of_the_data_is_an_element_of_c4_on_the_grid(k: int, size: int) -> None:
    """``np.rot90`` by ``k`` is the action of some rotation of C4 (``catnet.symmetry.actions.act``)."""
    x = np.random.default_rng(k).normal(size=(2, size, size, 3))
    a = action("C4", None, (size, size, 3))
    turned = np.rot90(x, k, axes=(1, 2))
    assert any(np.array_equal(turned, act(x, a, g)) for g in range(a.group.order))


def test_image_targets_turn_with_their_images() -> None:
    dom = Ty((Ob("R", (8, 8, 1)),))
    images = datalib.load("digits", dom, dom).take(np.arange(12))  # an autoencoder's data
    turned, _ = datalib.rotated(images, seed=0)
    assert turned.target is not None and np.array_equal(turned.target, turned.inputs[0])


def test_rotate_test_refuses_data_that_is_not_square_images(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert train(MLP, "--data", "digits", "--rotate-test", "--out", str(tmp_path / "run")) == 1
    err = capsys.readouterr().err
    assert "error[E0703]" in err and "R[h, h, c]" in err and "Image = R[64]" in err
    assert not (tmp_path / "run").exists()
    assert train(SETS, "--data", "digit_sums", "--rotate-test", "--out", str(tmp_path / "run")) == 1
    assert "error[E0703]" in capsys.readouterr().err
    assert train(C4, "--objective", "loss", "--rotate-test", "--out", str(tmp_path / "run")) == 1
    assert "--rotate-test" in capsys.readouterr().err


def test_rotate_test_is_in_the_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    assert "--rotate-test" in out and "digit_sums" in out


# -- sets of digits -------------------------------------------------------------------------


def _sets_type(n: int, classes: int) -> tuple[Ty, Ty]:
    return Ty((Ob("R", (n, 64), group=f"S{n}"),)), Ty((Ob("R", (classes,), group=f"S{n}"),))


def test_digit_sums_are_sets_of_distinct_images_labelled_by_their_sum() -> None:
    images, labels = datalib._digit_arrays()
    sets = datalib.load("digit_sums", *_sets_type(3, 28), test_fraction=0.25)
    x, y = sets.inputs[0], sets.target
    assert x.shape[1:] == (3, 64) and x.dtype == np.float32 and y is not None and y.shape == (len(x),)
    index = {row.tobytes(): i for i, row in enumerate(images)}
    picked = np.array([[index[row.tobytes()] for row in s] for s in x])
    assert np.array_equal(labels[picked].sum(axis=1), y)
    assert all(len(set(s)) == 3 for s in picked.tolist())
    assert 0 <= y.min() and y.max() <= 27


def test_digit_sums_split_keeps_every_image_on_one_side() -> None:
    sets = datalib.digit_sums(5, 0.2)
    train_sets, test_sets = datalib.split(sets, 0.2)
    assert len(test_sets) == datalib.SETS_PER_IMAGE * 359 and len(train_sets) == datalib.SETS_PER_IMAGE * 1438
    # the images of the digits' own split, which the sets must respect
    dom, cod = Ty((Ob("R", (64,)),)), Ty((Ob("R", (10,)),))
    train_images, test_images = datalib.split(datalib.load("digits", dom, cod), 0.2)
    train_rows = {row.tobytes() for row in train_images.inputs[0]}
    test_rows = {row.tobytes() for row in test_images.inputs[0]}
    assert {row.tobytes() for row in train_sets.inputs[0].reshape(-1, 64)} <= train_rows
    assert {row.tobytes() for row in test_sets.inputs[0].reshape(-1, 64)} <= test_rows
    again = datalib.digit_sums(5, 0.2)
    assert np.array_equal(again.inputs[0], sets.inputs[0]) and np.array_equal(again.target, sets.target)
    assert train_sets.split_at is None and test_sets.split_at is None


@pytest.mark.parametrize(
    ("dom", "cod", "message"),
    [
        (Ty((Ob("R", (5, 64)),)), Ty((Ob("R", (10,)),)), "end in 46 logits"),
        (Ty((Ob("R", (5, 8, 8)),)), Ty((Ob("R", (46,)),)), "R[n, 64]"),
        (Ty((Ob("R", (64,)),)), Ty((Ob("R", (10,)),)), "R[n, 64]"),
        (Ty((Ob("R", (40, 64)),)), Ty((Ob("R", (361,)),)), "sets of 1 to 16 images"),
    ],
    ids=["classes", "pixels", "not-a-set", "too-big"],
)
def test_digit_sums_refuse_other_types(dom: Ty, cod: Ty, message: str) -> None:
    with pytest.raises(CatnetError) as info:
        datalib.load("digit_sums", dom, cod)
    assert info.value.code == "E0701" and message in str(info.value)


def test_digit_sums_are_not_data_for_a_flow_or_an_objective() -> None:
    dom = Ty((Ob("R", (5, 64)),))
    for load in (lambda: datalib.load("digit_sums", dom, dom, kind="flow"), lambda: datalib.load_objective("digit_sums", dom, "loss")):
        with pytest.raises(CatnetError) as info:
            load()
        assert info.value.code == "E0701"


# -- training: the invariant model scores the same on turned images ----------------------------


def test_c4_model_is_exactly_invariant_where_the_cnn_is_not(tmp_path: Path) -> None:
    pytest.importorskip("jax")
    scores = {}
    for name, path in (("c4", C4), ("cnn", CNN)):
        metrics = tmp_path / f"{name}.json"
        rc = train(path, "--data", "digits", "--epochs", "6", "--lr", "3e-3", "--rotate-test", "--out", str(tmp_path / name),
                   "--metrics-out", str(metrics))
        assert rc == 0
        scores[name] = json.loads(metrics.read_text())
    c4, cnn = scores["c4"], scores["cnn"]
    assert c4["rotate_test"] is True and c4["test_accuracy"] > 0.5
    assert abs(c4["test_accuracy_rotated"] - c4["test_accuracy"]) <= 1e-6
    assert abs(c4["test_loss_rotated"] - c4["test_loss"]) <= 1e-4 * c4["test_loss"]
    assert all(abs(row["test_accuracy_rotated"] - row["test_accuracy"]) <= 1e-6 for row in c4["history"])
    assert cnn["test_accuracy"] - cnn["test_accuracy_rotated"] > 0.2


def test_deepsets_trains_on_digit_sums(tmp_path: Path) -> None:
    pytest.importorskip("jax")
    metrics = tmp_path / "m.json"
    assert train(SETS, "--data", "digit_sums", "--epochs", "2", "--lr", "3e-3", "--out", str(tmp_path / "run"),
                 "--metrics-out", str(metrics)) == 0
    m = json.loads(metrics.read_text())
    assert m["test_examples"] == datalib.SETS_PER_IMAGE * 359 and m["rotate_test"] is False
    assert "test_accuracy_rotated" not in m
    assert m["test_accuracy"] > 0.066  # above always answering the most common sum
