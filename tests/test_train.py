"""``catnet train``: accuracy on the digits, determinism, resuming after an
interruption, and clear errors for bad data."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from catnet import data as datalib
from catnet.cli import main
from catnet.errors import CatnetError
from conftest import ROOT

pytest.importorskip("jax")
pytest.importorskip("orbax.checkpoint")

from catnet.train import load_params  # noqa: E402

MLP = str(ROOT / "examples" / "digits_mlp.cat")
CNN = str(ROOT / "examples" / "digits_cnn.cat")


def train(*argv: str) -> int:
    return main(["train", "--quiet", *argv])


def same_params(a: Path, b: Path) -> bool:
    pa, pb = load_params(a), load_params(b)
    return pa.keys() == pb.keys() and all(np.array_equal(pa[k], pb[k]) for k in pa)


# -- the acceptance runs ------------------------------------------------------------------


@pytest.mark.parametrize(("path", "target"), [(MLP, 0.95), (CNN, 0.97)], ids=["digits_mlp", "digits_cnn"])
def test_digits_reach_the_target_accuracy(tmp_path: Path, path: str, target: float) -> None:
    metrics = tmp_path / "m.json"
    t0 = time.perf_counter()
    rc = train(path, "--data", "digits", "--epochs", "30", "--seed", "0", "--out", str(tmp_path / "run"), "--metrics-out", str(metrics))
    assert rc == 0
    m = json.loads(metrics.read_text())
    assert m["test_accuracy"] >= target, m["test_accuracy"]
    assert m["epochs"] == 30 and 0 < m["seconds"] < 120
    assert time.perf_counter() - t0 < 120
    assert len(m["history"]) == 30 and m["history"][-1]["test_accuracy"] == m["test_accuracy"]


# -- determinism and resuming ---------------------------------------------------------------


def test_same_seed_same_weights_other_seed_other_weights(tmp_path: Path) -> None:
    for name, seed in (("a", "1"), ("b", "1"), ("c", "2")):
        assert train(MLP, "--epochs", "2", "--seed", seed, "--out", str(tmp_path / name)) == 0
    assert same_params(tmp_path / "a", tmp_path / "b")
    assert not same_params(tmp_path / "a", tmp_path / "c")


def test_resume_continues_to_identical_weights(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # two epochs in one run equal one epoch, then a resume for the second: the
    # resumed epoch needs the restored weights and optimizer state
    args = ["--epochs", "2", "--seed", "3", "--batch-size", "32"]
    assert train(CNN, *args, "--out", str(tmp_path / "whole")) == 0
    assert train(CNN, "--epochs", "1", *args[2:], "--out", str(tmp_path / "parts")) == 0
    assert train(CNN, *args, "--out", str(tmp_path / "parts"), "--resume") == 0
    assert same_params(tmp_path / "whole", tmp_path / "parts")
    # a second run into the same directory must say how to continue
    capsys.readouterr()
    assert train(CNN, *args, "--out", str(tmp_path / "parts")) == 1
    assert "--resume" in capsys.readouterr().err
    # resuming with other settings is refused
    assert train(CNN, "--epochs", "2", "--seed", "4", "--batch-size", "32", "--out", str(tmp_path / "parts"), "--resume") == 1
    assert "seed" in capsys.readouterr().err


def test_ctrl_c_during_a_save_finishes_it_and_resumes_to_identical_weights(tmp_path: Path) -> None:
    # The run is held for a second inside the save of epoch 2 (after orbax's
    # commit, before the manifest) and gets SIGINT there: the save completes,
    # then the run stops with 130 and no traceback, and the resume runs the
    # third epoch.  SIGKILL at ten moments is tests/test_checkpoints.py's.
    from catnet.checkpoints import HOLD_ENV, MANIFEST

    out = tmp_path / "cut"
    cmd = [sys.executable, "-m", "catnet", "train", MLP, "--epochs", "3", "--batch-size", "16", "--seed", "7", "--out", str(out)]
    env = dict(os.environ, PYTHONPATH=str(ROOT), **{HOLD_ENV: "2:1"})
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 90
    while not (out / "checkpoints" / "2").is_dir() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "interrupted; the last checkpoint is epoch 2" in stderr and "Traceback" not in stderr, stderr
    assert (out / "checkpoints" / "2" / MANIFEST).is_file()
    args = ["--epochs", "3", "--batch-size", "16", "--seed", "7"]
    assert train(MLP, *args, "--out", str(out), "--resume") == 0
    assert train(MLP, *args, "--out", str(tmp_path / "whole")) == 0
    assert same_params(tmp_path / "whole", out)


# -- losses, data sources and errors ---------------------------------------------------------


def test_autoencoder_trains_with_mse(tmp_path: Path) -> None:
    metrics = tmp_path / "m.json"
    path = str(ROOT / "examples" / "autoencoder.cat")
    assert train(path, "--epochs", "2", "--out", str(tmp_path / "r"), "--metrics-out", str(metrics)) == 0
    m = json.loads(metrics.read_text())
    assert m["loss"] == "mse" and m["test_accuracy"] is None
    assert m["history"][1]["test_loss"] < m["history"][0]["train_loss"]


def test_token_sequences_from_npz(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 256, (40, 6)).astype(np.int32)
    np.savez(tmp_path / "tokens.npz", x=tokens, y=np.roll(tokens, -1, axis=1))
    metrics = tmp_path / "m.json"
    path = str(ROOT / "examples" / "transformer.cat")
    rc = train(path, "--data", str(tmp_path / "tokens.npz"), "--epochs", "1", "--batch-size", "8", "--out", str(tmp_path / "r"), "--metrics-out", str(metrics))
    assert rc == 0
    m = json.loads(metrics.read_text())
    assert m["loss"] == "xent" and 0 <= m["test_accuracy"] <= 1


def test_product_domain_from_npz(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    a, b = rng.random((30, 64), dtype=np.float32), rng.random((30, 64), dtype=np.float32)
    np.savez(tmp_path / "pairs.npz", x0=a, x1=b, y=(a.sum(1, keepdims=True) > b.sum(1, keepdims=True)).astype(np.float32))
    path = str(ROOT / "examples" / "siamese.cat")
    assert train(path, "--data", str(tmp_path / "pairs.npz"), "--epochs", "1", "--batch-size", "8", "--out", str(tmp_path / "r")) == 0


def test_nan_loss_stops_with_the_epoch_and_step(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # finite data (non-finite data is refused before training) that overflows float32 in the first layer
    x = np.full((40, 64), 3e38, np.float32)
    np.savez(tmp_path / "bad.npz", x=x, y=np.zeros(40, np.int32))
    assert train(MLP, "--data", str(tmp_path / "bad.npz"), "--epochs", "2", "--batch-size", "8", "--out", str(tmp_path / "r")) == 1
    err = capsys.readouterr().err
    assert "error[E0704]: the training loss became nan at epoch 1, step 1 of 4" in err and "Traceback" not in err


def test_metrics_file_has_the_promised_keys(tmp_path: Path) -> None:
    metrics = tmp_path / "deep" / "m.json"
    assert train(MLP, "--epochs", "1", "--out", str(tmp_path / "r"), "--metrics-out", str(metrics)) == 0
    m = json.loads(metrics.read_text())
    assert {"test_accuracy", "epochs", "seconds", "test_loss", "train_loss", "history", "params"} <= set(m)
    assert m["params"] == 9610


def _digits_mlp():
    import catnet

    return catnet.load(MLP).diagram()


def _npz(tmp_path: Path, **arrays: np.ndarray) -> str:
    path = tmp_path / "d.npz"
    np.savez(path, **arrays)
    return str(path)


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"inputs": np.zeros((4, 64), np.float32), "y": np.zeros(4, np.int32)}, "lacks the array `x`"),
        ({"x": np.zeros((4, 63), np.float32), "y": np.zeros(4, np.int32)}, r"`x` has shape (4, 63), but the wire"),
        ({"x": np.zeros((4, 64), np.int64), "y": np.zeros(4, np.int32)}, "`x` has dtype int64"),
        ({"x": np.zeros((4, 64), np.float32), "y": np.full(4, 10, np.int32)}, "range over 10..10"),
        ({"x": np.zeros((4, 64), np.float32), "y": np.zeros((4, 3), np.float32)}, "targets `y` have shape (4, 3)"),
        ({"x": np.zeros((4, 64), np.float32), "y": np.zeros(5, np.int32)}, "`x` has 4 examples but `y` has 5"),
        ({"x": np.zeros((4, 64), np.float32), "y": np.array(["a"] * 4)}, "dtype <U1"),
    ],
    ids=["keys", "shape", "dtype", "labels", "target-shape", "count", "target-dtype"],
)
def test_bad_npz_is_rejected_before_training(tmp_path: Path, arrays: dict[str, np.ndarray], message: str) -> None:
    d = _digits_mlp()
    with pytest.raises(CatnetError) as info:
        datalib.load(_npz(tmp_path, **arrays), d.dom, d.cod)
    assert message in info.value.message or any(message in n for n in info.value.notes), info.value.render()


def test_unreadable_data_and_bad_options_are_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert train(MLP, "--data", str(tmp_path / "missing.npz"), "--out", str(tmp_path / "r")) == 1
    assert "E0001" in capsys.readouterr().err
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    assert train(MLP, "--data", str(tmp_path / "junk.npz"), "--out", str(tmp_path / "r")) == 1
    assert "error[E0701]: the data file" in capsys.readouterr().err
    assert train(MLP, "--epochs", "0", "--out", str(tmp_path / "r")) == 1
    assert "--epochs" in capsys.readouterr().err
    assert not (tmp_path / "r").exists(), "nothing is written before the checks pass"


def test_digits_fit_image_shaped_inputs() -> None:
    import catnet

    d = catnet.loads("object Im = R[8, 8, 1]\nmorphism f : Im -> R[10] = flatten ; dense\nmain f\n").diagram()
    data = datalib.load("digits", d.dom, d.cod)
    assert data.inputs[0].shape == (1797, 8, 8, 1) and data.inputs[0].max() == 1.0
    train_set, test_set = datalib.split(data, 0.2)
    assert len(train_set) + len(test_set) == 1797 and len(test_set) == 359
    again, _ = datalib.split(data, 0.2)
    assert np.array_equal(train_set.target, again.target)
    wrong = catnet.loads("morphism f : R[32] -> R[10] = dense\nmain f\n").diagram()
    with pytest.raises(CatnetError, match="8×8 images"):
        datalib.load("digits", wrong.dom, wrong.cod)


# -- checks before training -------------------------------------------------------------------


def _tiny(tmp_path: Path) -> list[str]:
    from hostile_train import TINY, tiny_data

    (tmp_path / "tiny.cat").write_text(TINY)
    tiny_data(tmp_path / "tiny.npz")
    return [str(tmp_path / "tiny.cat"), "--data", str(tmp_path / "tiny.npz"), "--epochs", "1", "--batch-size", "8"]


def test_options_accept_the_ends_of_their_ranges(tmp_path: Path) -> None:
    import argparse

    from catnet import train as trainlib

    parser = argparse.ArgumentParser()
    trainlib.configure(parser)
    ns = trainlib.options(parser.parse_args([
        "f.cat", "--seed", "4294967295", "--epochs", "1", "--batch-size", " 1", "--lr", "1e-9",
        "--test-fraction", "0.999", "--out", str(tmp_path / "new" / "run"), "--metrics-out", str(tmp_path / "new" / "m.json"),
    ]))
    assert (ns.seed, ns.epochs, ns.batch_size, ns.lr, ns.test_fraction) == (2**32 - 1, 1, 1, 1e-9, 0.999)
    assert not (tmp_path / "new").exists(), "checking options writes nothing"


def test_prepare_does_not_import_jax(tmp_path: Path) -> None:
    from hostile_train import trained_run

    args = trained_run(tmp_path)
    script = (
        "import argparse, sys\n"
        "from catnet import train\n"
        "p = argparse.ArgumentParser(); train.configure(p)\n"
        f"run = train.prepare(p.parse_args({args[1:]!r}))\n"
        "assert run.resume.step == 2, run.resume\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('jax', 'flax', 'optax', 'orbax', 'sklearn')))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=dict(os.environ, PYTHONPATH=str(ROOT)),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]", done.stdout


def test_metrics_are_kept_when_metrics_out_fails_at_the_end(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from catnet import train as trainlib

    metrics = tmp_path / "m.json"
    real = trainlib._write_json

    def full_disk(path: str | Path, payload: dict) -> None:
        if Path(path) == metrics:
            raise OSError(28, "No space left on device")
        real(path, payload)

    monkeypatch.setattr(trainlib, "_write_json", full_disk)
    assert train(*_tiny(tmp_path), "--out", str(tmp_path / "r"), "--metrics-out", str(metrics)) == 1
    err = capsys.readouterr().err
    assert f"error[E0703]: cannot write --metrics-out {metrics}: No space left on device" in err
    assert f"the metrics are kept in {tmp_path / 'r' / 'metrics.json'}" in err
    assert json.loads((tmp_path / "r" / "metrics.json").read_text())["epochs"] == 1


def test_memory_check_refuses_and_can_be_skipped(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import catnet.budget

    monkeypatch.setattr(catnet.budget, "available_memory", lambda: (1000, "this machine has"))
    args = _tiny(tmp_path)
    assert train(*args, "--out", str(tmp_path / "r")) == 1
    err = capsys.readouterr().err
    assert "tiny.cat:3:10: error[E0603]" in err and "--skip-memory-check" in err
    assert not (tmp_path / "r").exists()
    assert train(*args, "--out", str(tmp_path / "r"), "--skip-memory-check") == 0


def test_data_larger_than_memory_is_refused_before_it_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(datalib, "host_memory", lambda: 4096)
    d = _digits_mlp()
    with pytest.raises(CatnetError) as info:
        datalib.load(_npz(tmp_path, x=np.zeros((40, 64), np.float32), y=np.zeros(40, np.int32)), d.dom, d.cod)
    assert info.value.code == "E0701" and "needs 20.3 KiB of memory, but only 4 KiB is available" in info.value.message


def test_token_ids_are_checked_against_the_vocabulary(tmp_path: Path) -> None:
    import catnet
    from catnet.check.inputs import vocab_bounds

    d = catnet.loads("object Tokens = Seq[T](Z[])\nmorphism lm : Tokens -> Seq[T](R[4]) = embed(vocab=8, features=4)\nmain lm\n").diagram()
    ids = np.zeros((4, 5), np.int64)
    ids[2, 3] = 8
    with pytest.raises(CatnetError) as info:
        datalib.load(_npz(tmp_path, x=ids, y=np.zeros((4, 5), np.int32)), d.dom, d.cod, vocab_bounds(d))
    assert info.value.message == "`x` holds 1 token id outside 0..7, the ids that `embed(vocab=8)` reads; the first is x[2, 3] = 8"
    ids[2, 3] = 2**40  # would wrap to 0 in int32 without the check
    with pytest.raises(CatnetError, match="= 1099511627776"):
        datalib.load(_npz(tmp_path, x=ids, y=np.zeros((4, 5), np.int32)), d.dom, d.cod, vocab_bounds(d))
