"""``catnet sample`` and ``catnet.flows.sample``: drawing from a flow or from the fiber over a base point.

Shapes, determinism by seed, the checkpoint's weights, and every bad request
a located diagnostic with exit code 1 and no traceback (golden files
``tests/golden/train/sample_*.err``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import golden

import catnet
from catnet import sample as samplelib
from catnet.cli import main

jax = pytest.importorskip("jax")
nnx = pytest.importorskip("flax.nnx")
pytest.importorskip("optax")
pytest.importorskip("orbax.checkpoint")

from catnet import flows
from catnet import train as trainlib

GOLDEN = Path(__file__).resolve().parent / "golden" / "train"

FLOWS = """\
object P = R[2]
morphism flow : P -> P = coupling(hidden=16) ; reverse ; coupling(hidden=16)
morphism net : P -> R[3] = dense ; relu
morphism pair : R[2] ⊗ R[3] -> R[3] ⊗ R[2] = swap
main flow
"""

#: The same flow with other widths: its checkpoints do not fit FLOWS.
OTHER = FLOWS.replace("hidden=16", "hidden=8")

BUNDLE = """\
object Core = R[2]
object Tube = R[2]
bundle Torus = Tube over Core in R[3]
morphism chart : Torus -> Core ⊗ Tube = triv(charts=2, depth=2, hidden=8, prior="circle")
main chart
"""


def sample(*argv: str) -> int:
    return main(["sample", *argv])


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with FLOWS, OTHER and BUNDLE, a run of FLOWS in `run` and one of OTHER in `other`."""
    d = tmp_path_factory.mktemp("sample")
    (d / "flows.cat").write_text(FLOWS)
    (d / "other.cat").write_text(OTHER)
    (d / "bundle.cat").write_text(BUNDLE)
    for file, out in (("flows.cat", "run"), ("other.cat", "other")):
        assert main(["train", "--quiet", str(d / file), "--data", "moons", "--epochs", "1", "--batch-size", "256",
                     "--out", str(d / out)]) == 0
    return d


def test_sampling_a_trained_flow(trained: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = trained / "a.npz"
    assert sample(str(trained / "flows.cat"), "--checkpoint", str(trained / "run"), "-n", "300", "--seed", "4", "-o", str(out)) == 0
    assert "wrote 300 points of the flow `flow`" in capsys.readouterr().err
    x = np.load(out)["x"]
    assert x.shape == (300, 2) and x.dtype == np.float32 and np.isfinite(x).all()
    # the same seed gives the same points, another seed others
    assert sample(str(trained / "flows.cat"), "--checkpoint", str(trained / "run"), "-n", "300", "--seed", "4", "-o", str(trained / "b.npz")) == 0
    assert np.array_equal(np.load(trained / "b.npz")["x"], x)
    assert sample(str(trained / "flows.cat"), "--checkpoint", str(trained / "run"), "-n", "300", "--seed", "5", "-o", str(trained / "c.npz")) == 0
    assert not np.array_equal(np.load(trained / "c.npz")["x"], x)
    # the points are the restored flow's inverse of the seeded noise
    model = trainlib.restore(catnet.compile(str(trained / "flows.cat"), rngs=nnx.Rngs(0)), trained / "run")
    assert np.allclose(np.asarray(flows.sample(model, 300, jax.random.fold_in(jax.random.PRNGKey(4), 0))), x, atol=1e-6)


def test_without_a_checkpoint_the_untrained_weights_with_a_note(trained: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert sample(str(trained / "flows.cat"), "-n", "5", "-o", str(trained / "u.npz")) == 0
    assert "no --checkpoint: sampling the untrained weights" in capsys.readouterr().err
    assert np.load(trained / "u.npz")["x"].shape == (5, 2)


def test_a_large_draw_extends_a_small_one(trained: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Points come in seeded chunks: the first N of a larger draw are the N of a smaller one."""
    monkeypatch.setattr(samplelib, "CHUNK", 4)
    model = catnet.compile(str(trained / "flows.cat"), rngs=nnx.Rngs(0))
    small, large = samplelib.draw(model, "flow", 6, 1), samplelib.draw(model, "flow", 11, 1)
    assert small.shape == (6, 2) and large.shape == (11, 2) and np.array_equal(large[:6], small)


def test_python_sampling_of_a_flow() -> None:
    model = catnet.compile(FLOWS, rngs=nnx.Rngs(2))
    model.train()
    key = jax.random.PRNGKey(7)
    a, b = flows.sample(model, 64, key), flows.sample(model, 64, key)
    assert a.shape == (64, 2) and np.array_equal(np.asarray(a), np.asarray(b))
    assert not model.deterministic  # the mode is restored
    # sampling inverts the flow: the forward map sends the samples back to the noise
    z = jax.random.normal(key, (64, 2))
    assert np.allclose(np.asarray(model(a)), np.asarray(z), atol=1e-4)
    assert np.isfinite(np.asarray(flows.nll(model, a))).all()


def test_sampling_the_fiber_of_a_trivialization(trained: Path) -> None:
    out = trained / "fiber.npz"
    assert sample(str(trained / "bundle.cat"), "--base", "2, 0", "-n", "40", "-o", str(out)) == 0
    got = np.load(out)
    assert got["x"].shape == (40, 3) and np.array_equal(got["base"], np.array([2.0, 0.0], np.float32))


#: Each bad request: the arguments after `sample`, in the folder of the `trained` fixture.
BAD = {
    "base_for_a_flow": ["flows.cat", "--base", "1,2"],
    "n_zero": ["flows.cat", "-n", "0"],
    "n_not_a_number": ["flows.cat", "-n", "many"],
    "seed_negative": ["flows.cat", "--seed", "-3"],
    "seed_too_large": ["flows.cat", "--seed", "4294967296"],
    "out_not_npz": ["flows.cat", "-o", "points.txt"],
    "out_a_directory": ["flows.cat", "-o", "run"],
    "not_an_iso": ["flows.cat", "--entry", "net"],
    "iso_not_a_flow": ["flows.cat", "--entry", "pair"],
    "no_entry": ["flows.cat", "--entry", "nope"],
    "checkpoint_missing": ["flows.cat", "--checkpoint", "nowhere"],
    "checkpoint_not_a_run": ["flows.cat", "--checkpoint", "."],
    "checkpoint_of_another_file": ["flows.cat", "--checkpoint", "other"],
    "base_missing": ["bundle.cat"],
    "base_wrong_size": ["bundle.cat", "--base", "1,2,3"],
    "base_not_numbers": ["bundle.cat", "--base", "1,two"],
    "base_empty_part": ["bundle.cat", "--base", "1,"],
    "base_not_finite": ["bundle.cat", "--base", "1,inf"],
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_requests_are_located_diagnostics(case: str, trained: Path, capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(trained)
    args = BAD[case]
    out = [] if "-o" in args else ["-o", "bad.npz"]
    assert sample(*args, *out) == 1
    err = capsys.readouterr().err
    golden(GOLDEN / f"sample_{case}.err", err)
    assert "Traceback" not in err and not (trained / "bad.npz").exists()
    assert err.startswith(args[0] + ":"), err
