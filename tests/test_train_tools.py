"""The training tools of ``catnet train``: learning-rate schedules, weight decay,
clipping, gradient accumulation, a validation split with early stopping and a
kept best checkpoint, CSV and TensorBoard logs, and the plot of the curves."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT

from catnet import checkpoints as ckpt
from catnet import data as datalib
from catnet import train as trainlib
from catnet.cli import main

pytest.importorskip("jax")
pytest.importorskip("orbax.checkpoint")

MLP = str(ROOT / "examples" / "digits_mlp.cat")
#: The digits split 1438 / 359; 1438 // 64 = 22 steps of the default batch per epoch.
STEPS = 22

#: The settings a run recorded before the training tools existed.
OLD_KEYS = {"source_sha256", "entry", "data", "data_sha256", "batch_size", "lr", "optimizer", "loss", "seed", "test_fraction"}


def train(*argv: str) -> int:
    return main(["train", "--quiet", *argv])


def rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def config(**changes: object) -> trainlib.Config:
    settings: dict = {"file": MLP, "source_sha256": "0" * 64, "entry": None, "data": "digits", "batch_size": 64, "lr": 1e-3,
                      "optimizer": "adam", "loss": "auto", "seed": 0, "test_fraction": 0.2, "epochs": 2}
    settings.update(changes)
    return trainlib.Config(**settings)


def metrics_of(tmp_path: Path, name: str, *argv: str) -> dict:
    out = tmp_path / f"{name}.json"
    assert train(MLP, "--out", str(tmp_path / name), "--metrics-out", str(out), *argv) == 0
    return json.loads(out.read_text())


# -- settings: defaults read as before -------------------------------------------------------


def test_defaults_leave_the_recorded_settings_as_they_were() -> None:
    assert set(config().key()) == OLD_KEYS
    # optax's adamw decays by 1e-4 by default: that is adamw's default here too, and not recorded
    assert config(optimizer="adamw").decay == 1e-4
    assert set(config(optimizer="adamw").key()) == OLD_KEYS
    assert set(config(optimizer="adamw", weight_decay=1e-4).key()) == OLD_KEYS
    assert config(optimizer="adamw", weight_decay=0.0).key()["weight_decay"] == 0.0
    key = config(schedule="cosine", warmup=5, epochs=7).key()
    assert (key["schedule"], key["warmup"], key["epochs"]) == ("cosine", 5, 7)
    assert "decay_every" not in key
    assert config(schedule="step", decay_every=3).key()["decay_factor"] == 0.1


def test_default_optimizer_updates_as_plain_optax() -> None:
    import jax.numpy as jnp
    import optax

    params = {"w": jnp.array([1.0, -2.0, 3.0])}
    grads = {"w": jnp.array([0.5, 0.25, -1.0])}
    for name, plain in (("adam", optax.adam(1e-3)), ("adamw", optax.adamw(1e-3)), ("sgd", optax.sgd(1e-3))):
        tx = trainlib.optimizer(config(optimizer=name), 10)
        ours, _ = tx.update(grads, tx.init(params), params)
        theirs, _ = plain.update(grads, plain.init(params), params)
        assert np.array_equal(ours["w"], theirs["w"]), name


# -- learning-rate schedules -----------------------------------------------------------------


def test_schedules_give_the_documented_rate_of_every_step(tmp_path: Path) -> None:
    lr, warmup, updates = 1e-2, 5, 2 * STEPS
    metrics_of(tmp_path, "cosine", "--epochs", "2", "--lr", str(lr), "--schedule", "cosine", "--warmup", str(warmup), "--no-tensorboard")
    got = np.array([float(r["lr"]) for r in rows(tmp_path / "cosine" / "steps.csv")])
    u = np.arange(updates)
    want = np.where(u < warmup, lr * u / warmup, 0.5 * lr * (1 + np.cos(np.pi * (u - warmup) / (updates - warmup))))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-9)
    assert got[warmup] == pytest.approx(lr) and got[-1] < lr * 0.01



def rates(**changes: object) -> np.ndarray:
    cfg = config(**changes)
    return trainlib.learning_rates(trainlib.learning_rate(cfg, 10), 0, cfg.epochs * 10)


def test_step_and_warmup_schedules_per_update() -> None:
    lr = 1e-2
    np.testing.assert_allclose(rates(lr=lr, epochs=3, schedule="step", decay_every=1, decay_factor=0.5), np.repeat([lr, lr / 2, lr / 4], 10), rtol=1e-6)
    np.testing.assert_allclose(rates(lr=lr, epochs=4, schedule="step", decay_every=2), np.repeat([lr, lr / 10], 20), rtol=1e-6)
    # the warmup rises from 0; a step schedule's decays count from its end
    np.testing.assert_allclose(rates(lr=lr, epochs=1, warmup=4), [0, lr / 4, lr / 2, 3 * lr / 4] + [lr] * 6, rtol=1e-6)
    warm_step = rates(lr=lr, epochs=2, warmup=5, schedule="step", decay_every=1, decay_factor=0.5)
    np.testing.assert_allclose(warm_step[5:], [lr] * 10 + [lr / 2] * 5, rtol=1e-6)
    # a constant rate without warmup is a number: the optimizer state of a plain optimizer
    assert trainlib.learning_rate(config(lr=lr), 10) == lr


def test_a_resume_with_another_schedule_names_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = str(tmp_path / "r")
    assert train(MLP, "--epochs", "1", "--schedule", "cosine", "--out", out, "--no-tensorboard") == 0
    capsys.readouterr()
    assert train(MLP, "--epochs", "2", "--schedule", "constant", "--out", out, "--resume") == 1
    err = capsys.readouterr().err
    assert "E0705" in err and '--schedule: "cosine" in the checkpoint' in err
    # the cosine schedule's length is its number of epochs: those cannot change either
    assert train(MLP, "--epochs", "2", "--schedule", "cosine", "--out", out, "--resume") == 1
    assert "--epochs (the length of the cosine schedule): 1 in the checkpoint, 2 now" in capsys.readouterr().err


# -- weight decay, clipping, accumulation ----------------------------------------------------------


def test_weight_decay_shrinks_the_weights_by_the_documented_rule() -> None:
    import jax.numpy as jnp

    params = {"w": jnp.array([1.0, -2.0, 4.0])}
    zero = {"w": jnp.zeros(3)}
    for name in ("sgd", "adamw"):
        # with no gradient, decoupled decay alone moves each weight by -lr * decay * weight
        tx = trainlib.optimizer(config(optimizer=name, lr=0.1, weight_decay=0.5), 10)
        update, _ = tx.update(zero, tx.init(params), params)
        np.testing.assert_allclose(update["w"], -0.1 * 0.5 * np.array([1.0, -2.0, 4.0]), rtol=1e-6)
    # for adam the decay is an L2 term that Adam's scaling normalizes: each weight moves by about lr, towards 0
    tx = trainlib.optimizer(config(optimizer="adam", lr=0.1, weight_decay=0.5), 10)
    update, _ = tx.update(zero, tx.init(params), params)
    np.testing.assert_allclose(update["w"], -0.1 * np.sign([1.0, -2.0, 4.0]), rtol=1e-5)


def test_clipping_bounds_the_global_norm_of_the_gradient() -> None:
    import jax.numpy as jnp
    import optax

    params = {"a": jnp.ones(3), "b": jnp.ones(2)}
    grads = {"a": jnp.array([30.0, -40.0, 0.0]), "b": jnp.array([0.0, 120.0])}
    tx = trainlib.optimizer(config(optimizer="sgd", lr=1.0, clip_norm=2.0), 10)
    update, _ = tx.update(grads, tx.init(params), params)
    assert float(optax.global_norm(update)) == pytest.approx(2.0, rel=1e-6)
    small = jax_tree_scale(grads, 1e-3)
    update, _ = tx.update(small, tx.init(params), params)
    np.testing.assert_allclose(update["b"], -np.asarray(small["b"]), rtol=1e-6)


def jax_tree_scale(tree: dict, factor: float) -> dict:
    return {k: v * factor for k, v in tree.items()}


def test_clipped_and_decayed_run_records_both(tmp_path: Path) -> None:
    m = metrics_of(tmp_path, "clip", "--epochs", "1", "--clip-norm", "0.5", "--weight-decay", "0.01", "--no-tensorboard")
    assert m["train_loss"] < 2.3
    manifest = json.loads((tmp_path / "clip" / "checkpoints" / "1" / ckpt.MANIFEST).read_text())
    assert manifest["settings"]["clip_norm"] == 0.5 and manifest["settings"]["weight_decay"] == 0.01
    assert "best_epoch" not in manifest
    # no validation set: no validation metrics; no TensorBoard asked for: no events; the curves in any case
    assert "val_loss" not in m["history"][0] and "best_epoch" not in m
    assert not (tmp_path / "clip" / "tensorboard").exists()
    assert (tmp_path / "clip" / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_accumulated_micro_batches_equal_one_large_batch(tmp_path: Path) -> None:
    # no dropout or batch statistics: the mean of K micro-batch gradients is the gradient of the K*B batch
    source = tmp_path / "mlp.cat"
    source.write_text(
        "object Image = R[64]\nobject Hidden = R[32]\nobject Logits = R[10]\n"
        "morphism encoder : Image -> Hidden = dense ; relu\nmorphism head : Hidden -> Logits = dense\n"
        "morphism net : Image -> Logits = encoder ; head\nmain net\n"
    )
    common = ["--epochs", "1", "--optimizer", "sgd", "--lr", "0.1", "--no-tensorboard", "--quiet"]
    assert main(["train", str(source), "--batch-size", "32", "--out", str(tmp_path / "one"), *common]) == 0
    assert main(["train", str(source), "--batch-size", "8", "--accumulate", "4", "--out", str(tmp_path / "four"), *common]) == 0
    one, four = trainlib.load_params(tmp_path / "one"), trainlib.load_params(tmp_path / "four")
    assert one.keys() == four.keys()
    for k in one:
        np.testing.assert_allclose(four[k], one[k], rtol=1e-5, atol=1e-6)
    # four micro-batch steps per update, each logged, all of one update at one rate
    assert len(rows(tmp_path / "four" / "steps.csv")) == 4 * len(rows(tmp_path / "one" / "steps.csv"))


# -- the validation split, early stopping, the best checkpoint -------------------------------------


def test_validation_comes_out_of_the_training_part_only() -> None:
    ids = np.arange(500)
    whole = datalib.Dataset("ids", (ids.astype(np.float32),), ids)
    train_part, test = datalib.split(whole, 0.2)
    fit, validation = datalib.validation_split(train_part, 0.25)
    a, b, c = (set(d.target.tolist()) for d in (fit, validation, test))
    assert not (a & b) and not (a & c) and not (b & c) and a | b | c == set(ids.tolist())
    assert len(validation) == 100
    # the same examples whatever the training seed: the split has its own fixed seed
    assert np.array_equal(datalib.validation_split(train_part, 0.25)[1].target, validation.target)


def test_early_stopping_stops_keeps_the_best_and_resumes_to_the_same_end(tmp_path: Path) -> None:
    from flax import nnx

    import catnet

    args = ["--epochs", "12", "--lr", "2e-2", "--batch-size", "32", "--validation-fraction", "0.1", "--early-stopping", "2", "--no-tensorboard"]
    m = metrics_of(tmp_path, "es", *args)
    history = m["history"]
    losses = [r["val_loss"] for r in history]
    best = m["best_epoch"]
    assert m["stopped_early"] and len(history) < 12
    assert best == 1 + int(np.argmin(losses)) and len(history) - best == 2
    assert all(v >= losses[best - 1] for v in losses[best:])
    # the reported test figures are those of the best epoch, and its checkpoint is kept beside the newest two
    assert m["test_accuracy"] == history[best - 1]["test_accuracy"] and m["val_loss"] == losses[best - 1]
    directory = tmp_path / "es" / "checkpoints"
    assert ckpt.steps(directory) == sorted({best, len(history) - 1, len(history)})
    assert ckpt.best_epoch(directory) == best
    model = trainlib.restore(catnet.compile(MLP, rngs=nnx.Rngs(0)), tmp_path / "es", epoch=best)
    model.eval()
    _, test, _ = trainlib.load_datasets(catnet.load(MLP).diagram(), "mlp", None, "digits", "auto", 0, 0.2)
    hits = np.argmax(np.asarray(model(test.inputs[0])), axis=-1) == test.target
    assert float(hits.mean()) == pytest.approx(m["test_accuracy"], abs=1e-12)

    # stopped in two parts: the counter and the best epoch come back from the checkpoint
    part = args.copy()
    part[1] = "3"
    metrics_of(tmp_path, "parts", *part)
    resumed = metrics_of(tmp_path, "parts", *args, "--resume")
    assert [r["val_loss"] for r in resumed["history"]] == losses
    assert resumed["best_epoch"] == best and resumed["test_accuracy"] == m["test_accuracy"]
    # a finished run resumed with more epochs stays stopped
    again = metrics_of(tmp_path, "es", *["--epochs", "20"] + args[2:], "--resume")
    assert len(again["history"]) == len(history) and again["best_epoch"] == best


# -- logs and the plot ----------------------------------------------------------------------------


def test_csv_logs_match_the_history_and_resume_drops_later_rows(tmp_path: Path) -> None:
    out = tmp_path / "r"
    held = metrics_of(tmp_path, "r", "--epochs", "2", "--validation-fraction", "0.1")
    # the validation set comes out of the 1438 training examples; the 359 test examples stay
    assert held["test_examples"] == 359
    assert held["train_examples"] + held["validation_examples"] == 1438 and held["validation_examples"] == 144
    assert 0 < held["history"][0]["val_loss"] and 0 <= held["history"][0]["val_accuracy"] <= 1
    steps = rows(out / "steps.csv")
    assert [int(r["global_step"]) for r in steps] == list(range(1, 2 * 20 + 1))  # 1294 // 64 = 20 steps
    assert list(steps[0]) == ["epoch", "step", "global_step", "loss", "lr"]
    epochs = rows(out / "epochs.csv")
    assert [int(r["epoch"]) for r in epochs] == [1, 2] and "val_loss" in epochs[0]
    # rows of an epoch whose checkpoint never came are dropped on --resume, then written again
    with open(out / "steps.csv", "a", encoding="utf-8") as f:
        f.write("3,1,41,9.0,0.001\n")
    with open(out / "epochs.csv", "a", encoding="utf-8") as f:
        f.write("3,9,9,0,9,0,0,0\n")
    assert train(MLP, "--epochs", "3", "--out", str(out), "--validation-fraction", "0.1", "--resume") == 0
    steps = rows(out / "steps.csv")
    assert [int(r["global_step"]) for r in steps] == list(range(1, 3 * 20 + 1)) and 9.0 not in [float(r["loss"]) for r in steps]
    history = json.loads((out / "checkpoints" / "3" / "meta" / "metadata").read_text())["history"]
    epochs = rows(out / "epochs.csv")
    assert [float(r["val_loss"]) for r in epochs] == [r["val_loss"] for r in history]
    # the TensorBoard events: one file per run of the command, the same numbers on the global step
    files = sorted((out / "tensorboard").glob("events.out.tfevents.*"))
    assert len(files) == 2
    scalars: dict[str, dict[int, float]] = {}
    for path in files:
        for tag, step, value in events(path):
            scalars.setdefault(tag, {})[step] = value
    assert sorted(scalars["step/loss"]) == list(range(1, 61))
    assert [scalars["step/loss"][int(r["global_step"])] for r in steps] == pytest.approx([float(r["loss"]) for r in steps])
    assert scalars["step/lr"][60] == pytest.approx(1e-3)
    assert sorted(scalars["epoch/val_loss"]) == [20, 40, 60]


def events(path: Path) -> list[tuple[str, int, float]]:
    """The scalars of a TensorBoard event file (TFRecord framing: length, its crc, the event, its crc)."""
    import struct

    from tensorboardX.proto import event_pb2

    data, at, found = path.read_bytes(), 0, []
    while at < len(data):
        (size,) = struct.unpack("<Q", data[at : at + 8])
        event = event_pb2.Event.FromString(data[at + 12 : at + 12 + size])
        found += [(v.tag, event.step, v.simple_value) for v in event.summary.value]
        at += 12 + size + 4
    return found


def test_the_curves_are_drawn_after_ctrl_c(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shown = trainlib.Progress.epoch

    def interrupted(self: trainlib.Progress, epoch: int, row: dict) -> None:
        shown(self, epoch, row)
        if epoch == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(trainlib.Progress, "epoch", interrupted)
    assert train(MLP, "--epochs", "4", "--out", str(tmp_path / "r"), "--no-tensorboard") == 130
    assert (tmp_path / "r" / "curves.png").read_bytes()[:4] == b"\x89PNG"
    assert [r["epoch"] for r in rows(tmp_path / "r" / "epochs.csv")] == ["1", "2"]


# -- bad values ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "option"),
    [
        (["--warmup", "-1"], "--warmup"),
        (["--warmup", "x"], "--warmup"),
        (["--warmup", "1000"], "--warmup"),
        (["--schedule", "step"], "--decay-every"),
        (["--schedule", "step", "--decay-every", "0"], "--decay-every"),
        (["--decay-every", "2"], "--decay-every"),
        (["--schedule", "step", "--decay-every", "1", "--decay-factor", "1.5"], "--decay-factor"),
        (["--decay-factor", "0.5"], "--decay-factor"),
        (["--weight-decay", "-1"], "--weight-decay"),
        (["--weight-decay", "nan"], "--weight-decay"),
        (["--clip-norm", "0"], "--clip-norm"),
        (["--clip-norm", "inf"], "--clip-norm"),
        (["--accumulate", "0"], "--accumulate"),
        (["--accumulate", "100"], "--accumulate"),
        (["--validation-fraction", "1"], "--validation-fraction"),
        (["--validation-fraction", "-0.1"], "--validation-fraction"),
        (["--early-stopping", "3"], "--early-stopping"),
        (["--validation-fraction", "0.1", "--early-stopping", "0"], "--early-stopping"),
        (["--mesh", "data=0"], "--mesh"),
        (["--mesh", "gpu=2"], "--mesh"),
        (["--mesh", "data=2"], "--mesh"),  # one device here
    ],
)
def test_bad_values_are_e0703_naming_the_option(tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], option: str) -> None:
    assert train(MLP, "--epochs", "1", "--out", str(tmp_path / "r"), *argv) == 1
    err = capsys.readouterr().err
    assert "E0703" in err and option in err and "Traceback" not in err
    assert not (tmp_path / "r").exists()


# -- precision and meshes ----------------------------------------------------------------------


def test_bf16_trains_with_float32_weights_and_a_resume_keeps_the_precision(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bf16 = metrics_of(tmp_path, "bf16", "--epochs", "2", "--precision", "bf16", "--no-tensorboard")
    fp32 = metrics_of(tmp_path, "fp32", "--epochs", "2", "--no-tensorboard")
    assert bf16["precision"] == "bf16" and fp32["precision"] == "fp32"
    assert bf16["test_accuracy"] > 0.7 and abs(bf16["test_accuracy"] - fp32["test_accuracy"]) < 0.05
    assert bf16["test_loss"] != fp32["test_loss"]  # it really computed in bfloat16
    kernels = [v for k, v in trainlib.load_params(tmp_path / "bf16").items() if k.endswith("kernel")]
    assert kernels and all(k.dtype == np.float32 for k in kernels)
    capsys.readouterr()
    assert train(MLP, "--epochs", "3", "--out", str(tmp_path / "bf16"), "--resume") == 1
    assert '--precision: "bf16" in the checkpoint, "fp32" now' in capsys.readouterr().err


def _two_devices(*argv: str) -> None:
    """``catnet train`` in a process with two forced CPU devices."""
    import os
    import subprocess
    import sys

    # this process's XLA flags (tests/conftest.py sets some), and two devices
    flags = f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count=2".strip()
    env = {**os.environ, "XLA_FLAGS": flags, "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run([sys.executable, "-m", "catnet", "train", "--quiet", *argv], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr


@pytest.fixture(scope="module")
def one_device(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    """The one-device runs every mesh is compared with (the same for both meshes: trained once)."""
    d = tmp_path_factory.mktemp("one_device")
    return {"one": metrics_of(d, "one", "--epochs", "1", "--no-tensorboard"),
            "straight": metrics_of(d, "straight", "--epochs", "2", "--no-tensorboard")}


@pytest.mark.parametrize("mesh", ["data=2", "data=1,model=2"])
def test_a_mesh_trains_as_one_device_does_and_resumes_on_one(tmp_path: Path, mesh: str, one_device: dict[str, dict]) -> None:
    one = one_device["one"]
    out, metrics = tmp_path / "mesh", tmp_path / "mesh.json"
    _two_devices(MLP, "--epochs", "1", "--mesh", mesh, "--out", str(out), "--metrics-out", str(metrics), "--no-tensorboard")
    two = json.loads(metrics.read_text())
    assert two["mesh"] == (mesh if "," in mesh else mesh + ",model=1")
    assert abs(two["test_loss"] - one["test_loss"]) < 1e-5 and two["test_accuracy"] == one["test_accuracy"]
    for a, b in zip(one["history"], two["history"]):
        assert abs(a["train_loss"] - b["train_loss"]) < 1e-5
    # the mesh is not a setting: the run resumes on one device, and goes on as the one-device run does
    resumed = metrics_of(tmp_path, "mesh", "--epochs", "2", "--resume", "--no-tensorboard")
    straight = one_device["straight"]
    assert abs(resumed["test_loss"] - straight["test_loss"]) < 1e-5
