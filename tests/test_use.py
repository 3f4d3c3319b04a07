"""Using a trained model: ``catnet eval``, ``catnet predict``, ``catnet export`` (``catnet.use``)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest
from flax import nnx
from jax import export

import catnet
from catnet import checkpoints
from catnet.cli import main
from catnet.train import restore
from catnet.use.export import export_model
from catnet.use.predict import predict

ROOT = Path(__file__).resolve().parent.parent
MLP = ROOT / "examples" / "digits_mlp.cat"
SIAMESE = ROOT / "examples" / "siamese.cat"

LANGUAGE_MODEL = """
object Tokens = Seq[T](Z[])
morphism lm : Tokens -> Seq[T](R[5]) = (embed(vocab=11) : Tokens -> Seq[T](R[8])) ; layernorm ; dense
main lm
"""

TWO_OUTPUTS = """
morphism two(x : R[3]) -> R[2] @ R[4] {
  return dense(x, features=2), tanh(dense(x, features=4))
}
main two
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The digits MLP trained for two epochs; its final metrics in ``train.json`` beside the run."""
    run = tmp_path_factory.mktemp("use") / "run"
    metrics = run.parent / "train.json"
    args = ["train", "--quiet", str(MLP), "--epochs", "2", "--out", str(run), "--metrics-out", str(metrics)]
    assert main(args) == 0
    return run


def _restored(run: Path) -> catnet.lower.model.Model:
    """The digits MLP with the run's weights, in evaluation mode."""
    model = catnet.compile(str(MLP), rngs=nnx.Rngs(1))
    restore(model, run)
    model.eval()
    return model


def _inputs(path: Path, n: int, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).random((n, 64), np.float32)
    np.savez(path, x=x)
    return x


# -- catnet eval ---------------------------------------------------------------------------


def test_eval_reproduces_the_numbers_training_printed(run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "eval.json"
    assert main(["eval", str(MLP), "--checkpoint", str(run), "--metrics-out", str(out)]) == 0
    trained = json.loads((run.parent / "train.json").read_text())
    got = json.loads(out.read_text())
    assert got["test_loss"] == trained["test_loss"] and got["test_accuracy"] == trained["test_accuracy"]
    assert got["test_examples"] == trained["test_examples"] == 359
    assert got["same_split"] and got["checkpoint"]["epoch"] == 2 and got["data"] == "digits" and got["loss"] == "xent"
    assert f"test accuracy {trained['test_accuracy']:.4f}" in capsys.readouterr().out


def test_eval_on_another_split_says_so(run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "eval.json"
    assert main(["eval", str(MLP), "--checkpoint", str(run), "--test-fraction", "0.5", "--quiet", "--metrics-out", str(out)]) == 0
    got = json.loads(out.read_text())
    assert not got["same_split"] and got["test_examples"] == 898 and got["test_fraction"] == 0.5
    assert capsys.readouterr().out == ""


def test_a_run_on_an_npz_file_is_read_at_its_best_epoch(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # random labels: the validation loss falls, then rises as the model memorizes (best epoch 3 of 5)
    rng = np.random.default_rng(0)
    data = tmp_path / "data.npz"
    np.savez(data, x=rng.random((100, 64), np.float32), y=rng.integers(0, 10, 100))
    run, metrics = tmp_path / "run", tmp_path / "train.json"
    args = ["--data", str(data), "--batch-size", "8", "--lr", "0.01", "--epochs", "5", "--validation-fraction", "0.25"]
    assert main(["train", "--quiet", str(MLP), *args, "--out", str(run), "--metrics-out", str(metrics)]) == 0
    trained = json.loads(metrics.read_text())
    assert trained["best_epoch"] == 3
    assert main(["eval", str(MLP), "--checkpoint", str(run)]) == 1
    err = capsys.readouterr().err
    assert "error[E0710]" in err and "trained on an .npz file" in err and "--data PATH" in err and "Traceback" not in err
    out = tmp_path / "eval.json"
    assert main(["eval", str(MLP), "--checkpoint", str(run), "--data", str(data), "--metrics-out", str(out)]) == 0
    got = json.loads(out.read_text())
    assert got["checkpoint"]["epoch"] == 3 and got["checkpoint"]["best"] and got["same_split"]
    assert got["test_loss"] == trained["test_loss"] and got["test_accuracy"] == trained["test_accuracy"]
    assert "checkpoint of epoch 3 (the best by validation loss)" in capsys.readouterr().out
    assert main(["eval", str(MLP), "--checkpoint", str(run), "--data", str(data), "--epoch", "5", "--metrics-out", str(out)]) == 0
    got = json.loads(out.read_text())
    assert got["checkpoint"] == {"run": str(run), "epoch": 5, "best": False}
    assert got["test_loss"] == trained["history"][-1]["test_loss"]
    assert main(["eval", str(MLP), "--checkpoint", str(run), "--data", str(data), "--epoch", "1"]) == 1
    err = capsys.readouterr().err
    assert "error[E0703]: no checkpoint of epoch 1" in err and "saved epochs: 3, 4, 5" in err


@pytest.mark.parametrize(
    ("extra", "said"),
    [
        (["--seed", "-1"], "error[E0710]: --seed must be a whole number from 0 to 4294967295, not -1"),
        (["--epoch", "0"], "error[E0710]: --epoch must be a whole number from 1 to 1000000, not 0"),
        (["--test-fraction", "1"], "error[E0710]: --test-fraction must be between 0 and 1, not 1.0"),
        (["--test-fraction", "half"], "error[E0710]: --test-fraction must be a number between 0 and 1, not 'half'"),
        (["--data", "moons"], "error[E0701]: `moons` is unlabelled points"),
        (["--entry", "encoder"], ":10:10: error[E0701]: the digits have 10 classes"),
        (["--entry", "decoder"], "error[E0210]"),
    ],
)
def test_bad_eval_requests_are_located_errors(
    run: Path, extra: list[str], said: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "eval.json"
    assert main(["eval", str(MLP), "--checkpoint", str(run), "--metrics-out", str(out), *extra]) == 1
    err = capsys.readouterr().err
    assert said in err and "Traceback" not in err and str(MLP) in err
    assert not out.exists()


def test_a_checkpoint_of_another_file_is_a_clear_error(run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    wider = tmp_path / "wider.cat"
    wider.write_text(MLP.read_text().replace("R[128]", "R[96]"))
    assert main(["eval", str(wider), "--checkpoint", str(run)]) == 1
    err = capsys.readouterr().err
    assert f"{wider}:14:10: error[E0705]" in err and "trained from another .cat file" in err and "Traceback" not in err


def test_a_directory_without_a_run_is_e0703(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for command in (["eval"], ["predict", "--input", "x.npz", "-o", "y.npz"], ["export", "-o", "m.jaxexport"]):
        assert main([command[0], str(MLP), "--checkpoint", str(tmp_path), *command[1:]]) == 1
        err = capsys.readouterr().err
        assert "error[E0703]: --checkpoint" in err and "holds no checkpoints" in err and "Traceback" not in err


# -- catnet predict --------------------------------------------------------------------------


def test_predict_writes_the_models_outputs(run: Path, tmp_path: Path) -> None:
    x = _inputs(tmp_path / "x.npz", 37)
    out = tmp_path / "sub" / "y.npz"
    # three chunks of 16, the last one padded
    assert main(["predict", str(MLP), "--checkpoint", str(run), "--input", str(tmp_path / "x.npz"), "-o", str(out), "--batch-size", "16", "-q"]) == 0
    with np.load(out) as written:
        assert list(written) == ["y"]
        y = written["y"]
    assert y.shape == (37, 10) and y.dtype == np.float32
    np.testing.assert_array_equal(y, np.asarray(_restored(run)(x)))


def test_predict_feeds_each_input_wire_its_array() -> None:
    model = catnet.compile(str(SIAMESE), rngs=nnx.Rngs(0))
    model.eval()
    rng = np.random.default_rng(0)
    a, b = rng.random((9, 64), np.float32), rng.random((9, 64), np.float32)
    (y,) = predict(model, (a, b), batch_size=4)
    np.testing.assert_allclose(y, np.asarray(model(a, b)), rtol=1e-6, atol=1e-7)


def test_predict_returns_each_output_wire() -> None:
    from catnet.use.predict import output_keys

    model = catnet.compile(TWO_OUTPUTS, rngs=nnx.Rngs(0))
    model.eval()
    x = np.random.default_rng(0).random((7, 3), np.float32)
    ys = predict(model, (x,), batch_size=3)
    assert output_keys(model.cod) == ["y0", "y1"] and [y.shape for y in ys] == [(7, 2), (7, 4)]
    for y, want in zip(ys, model(x)):
        np.testing.assert_allclose(y, np.asarray(want), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(
    ("arrays", "extra", "said"),
    [
        ({"y": np.zeros((3, 64), np.float32)}, [], "error[E0701]: {x} lacks the array `x`"),
        ({"x": np.zeros((3, 64), np.int64)}, [], "error[E0701]: `x` has dtype int64, but the wire Image takes real numbers"),
        ({"x": np.zeros((3, 65), np.float32)}, [], "error[E0701]: `x` has shape (3, 65), but the wire Image needs (N, 64)"),
        ({"x": np.full((3, 64), np.nan, np.float32)}, [], "error[E0701]: `x` has 192 non-finite values"),
        ({"x": np.zeros((0, 64), np.float32)}, [], "error[E0701]: the inputs in {x} hold no examples"),
        ({"x": np.zeros((3, 64), np.float32)}, ["--batch-size", "0"], "error[E0710]: --batch-size must be a whole number"),
        ({"x": np.zeros((3, 64), np.float32)}, ["-o", "y.txt"], "error[E0710]: -o y.txt does not end in .npz"),
    ],
)
def test_bad_predict_requests_are_located_errors(
    run: Path, arrays: dict[str, np.ndarray], extra: list[str], said: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    x = tmp_path / "x.npz"
    np.savez(x, **arrays)
    out = tmp_path / "y.npz"
    assert main(["predict", str(MLP), "--checkpoint", str(run), "--input", str(x), "-o", str(out), *extra]) == 1
    err = capsys.readouterr().err
    assert said.format(x=x) in err and f"{MLP}:14:10" in err and "Traceback" not in err
    assert not out.exists()


def test_a_run_in_bfloat16_is_used_in_bfloat16(run: Path, tmp_path: Path) -> None:
    # a run that records `precision: bf16` (its manifest rewritten, checksums and all)
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    step = copy / "checkpoints" / "2"
    settings = json.loads((step / checkpoints.MANIFEST).read_text())["settings"]
    checkpoints.write_manifest(step, 2, {**settings, "precision": "bf16"})
    x = _inputs(tmp_path / "x.npz", 5)
    assert main(["predict", str(MLP), "--checkpoint", str(copy), "--input", str(tmp_path / "x.npz"), "-o", str(tmp_path / "y.npz"), "-q"]) == 0
    with np.load(tmp_path / "y.npz") as written:
        y = written["y"]
    low = catnet.compile(str(MLP), rngs=nnx.Rngs(0), dtype="bfloat16")
    restore(low, run)
    low.eval()
    np.testing.assert_array_equal(y, np.asarray(low(x), np.float32))
    assert not np.array_equal(y, np.asarray(_restored(run)(x)))


def test_unreadable_input_is_e0001(run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["predict", str(MLP), "--checkpoint", str(run), "--input", str(tmp_path / "none.npz"), "-o", str(tmp_path / "y.npz")]) == 1
    err = capsys.readouterr().err
    assert "error[E0001]: cannot read data file" in err and "no such file" in err


# -- catnet export ---------------------------------------------------------------------------


def test_the_exported_model_computes_the_models_outputs_at_any_batch_size(run: Path, tmp_path: Path) -> None:
    out = tmp_path / "mlp.jaxexport"
    # Accelerators multiply float32 in reduced precision by default, and the exported model maps one
    # example over the batch: both at full precision, the outputs agree to float32 rounding (equal on CPU).
    with jax.default_matmul_precision("highest"):
        assert main(["export", str(MLP), "--checkpoint", str(run), "-o", str(out), "-q"]) == 0
        exported = export.deserialize(out.read_bytes())
        model = _restored(run)
        for n in (1, 23):
            x = np.random.default_rng(n).random((n, 64), np.float32)
            np.testing.assert_allclose(np.asarray(exported.call(x)), np.asarray(model(x)), rtol=1e-5, atol=1e-6)


def test_open_sizes_are_fixed_and_the_batch_stays_symbolic() -> None:
    model = catnet.compile(LANGUAGE_MODEL, rngs=nnx.Rngs(0))
    model.eval()
    exported = export.deserialize(export_model(model, {"T": 6}).serialize())
    assert str(exported.in_avals[0]) == "int32[b,6]" and str(exported.out_avals[0]) == "float32[b,6,5]"
    for n in (2, 5):
        tokens = np.random.default_rng(n).integers(0, 11, (n, 6)).astype(np.int32)
        np.testing.assert_allclose(np.asarray(exported.call(tokens)), np.asarray(model(tokens)), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    ("extra", "said"),
    [
        (["--size", "T=4"], "error[E0710]: --size T: the inputs Image have no open size `T`"),
        (["--size", "T"], "error[E0710]: --size takes NAME=N, not 'T'"),
        (["--platforms", "gpu"], "error[E0710]: --platforms: unknown platform 'gpu'"),
        (["-o", ""], "error[E0710]: -o is empty"),
        (["-o", f"{__file__}/m.jaxexport"], "is a file, not a directory"),
    ],
)
def test_bad_export_requests_are_located_errors(
    run: Path, extra: list[str], said: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["export", str(MLP), "--checkpoint", str(run), "-o", str(tmp_path / "m.jaxexport"), *extra]) == 1
    err = capsys.readouterr().err
    assert said in err and f"{MLP}:14:10" in err and "Traceback" not in err
    assert not (tmp_path / "m.jaxexport").exists()


def test_export_without_flatbuffers_is_e0602(run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "flatbuffers", None)  # what `importlib.util.find_spec` reports for a missing package
    assert main(["export", str(MLP), "--checkpoint", str(run), "-o", str(tmp_path / "m.jaxexport")]) == 1
    err = capsys.readouterr().err
    assert "error[E0602]: `catnet export` needs the Python package flatbuffers" in err and "pip install flatbuffers" in err


def test_an_open_size_must_be_fixed() -> None:
    from catnet.use.export import sizes

    dom = catnet.loads(LANGUAGE_MODEL).diagram("lm").dom
    with pytest.raises(catnet.CatnetError) as caught:
        sizes([], dom)
    assert caught.value.code == "E0710" and "leave the size T open" in caught.value.message
    assert caught.value.help == "fix it: --size T=128"
    assert sizes(["T=7"], dom) == {"T": 7}


# -- the command line without JAX ------------------------------------------------------------


def test_help_and_bad_options_do_not_import_jax(run: Path, tmp_path: Path) -> None:
    code = (
        "import sys, contextlib, io\n"
        "from catnet.cli import main\n"
        "for name in ('eval', 'predict', 'export'):\n"
        "    with contextlib.redirect_stdout(io.StringIO()) as text, contextlib.suppress(SystemExit):\n"
        "        main([name, '--help'])\n"
        "    assert 'examples:' in text.getvalue() and '--checkpoint' in text.getvalue(), name\n"
        f"rc = main(['predict', {str(MLP)!r}, '--checkpoint', {str(run)!r}, '--input', 'x.npz', '-o', 'y.npz', '--batch-size', 'x'])\n"
        "print(rc, 'jax' in sys.modules)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert proc.stdout.split() == ["1", "False"], proc.stderr
    assert "error[E0710]: --batch-size" in proc.stderr
