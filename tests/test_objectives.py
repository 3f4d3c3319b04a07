"""Losses as morphisms and training objectives.

The loss generators against optax and NumPy (and their laws, with
hypothesis); ``catnet train --objective``: what it trains, how the data feed
the objective, its metrics, checkpoints and diagnostics; batch statistics
used in evaluation and kept by checkpoints; and the two examples that train
with the new words (a VAE with its ELBO, a GRU reading digits row by row).
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import catnet
from catnet import data as datalib
from catnet.cli import main
from catnet.errors import CatnetError
from catnet.summary import total_params
from conftest import ROOT, golden

jax = pytest.importorskip("jax")
jnp = jax.numpy
nnx = pytest.importorskip("flax.nnx")
optax = pytest.importorskip("optax")
pytest.importorskip("orbax.checkpoint")

from catnet import train as trainlib  # noqa: E402

VAE = ROOT / "examples" / "vae_digits.cat"
GRU = ROOT / "examples" / "gru_digits.cat"
GOLDEN = Path(__file__).resolve().parent / "golden" / "train"

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def train(*argv: str) -> int:
    return main(["train", "--quiet", *argv])


def metrics_of(path: Path) -> dict:
    return json.loads(path.read_text())


@functools.cache
def loss(name: str, a: str, b: str, args: str = "") -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """The lowered function ``(x, y) -> name(x, y, args)`` on wires of types ``a`` and ``b``."""
    text = f"morphism f(x : {a}, y : {b}) -> R[] {{\n  return {name}(x, y{', ' + args if args else ''})\n}}\n"
    model = catnet.compile(text, "f", rngs=nnx.Rngs(0))
    return lambda x, y: np.asarray(model(x, y))


def log_softmax(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    m = x.max(axis=-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=-1, keepdims=True))


# -- the losses against optax and NumPy ------------------------------------------------


def test_cross_entropy_is_the_mean_over_tokens_of_the_negative_log_likelihood() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(4, 5, 7)).astype(np.float32) * 3
    labels = rng.integers(0, 7, (4, 5)).astype(np.int32)
    nll = -np.take_along_axis(log_softmax(logits), labels[..., None], axis=-1)[..., 0]
    np.testing.assert_allclose(loss("cross_entropy", "R[5, 7]", "Z[5]")(logits, labels), nll.mean(axis=1), rtol=1e-5)
    np.testing.assert_allclose(loss("cross_entropy", "R[5, 7]", "Z[5]", 'reduce="sum"')(logits, labels), nll.sum(axis=1), rtol=1e-5)
    expected = optax.softmax_cross_entropy_with_integer_labels(logits[:, 0], labels[:, 0])
    np.testing.assert_allclose(loss("cross_entropy", "R[7]", "Z[]")(logits[:, 0], labels[:, 0]), expected, rtol=1e-6)


def test_cross_entropy_at_a_symbolic_length() -> None:
    f = loss("cross_entropy", "Seq[T](R[3])", "Seq[T](Z[])")
    for t in (2, 9):
        logits, labels = np.zeros((2, t, 3), np.float32), np.zeros((2, t), np.int32)
        np.testing.assert_allclose(f(logits, labels), np.full(2, np.log(3.0)), rtol=1e-6)


def test_cross_entropy_is_stable_for_huge_logits() -> None:
    logits = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 0.0]], np.float32)
    out = loss("cross_entropy", "R[3]", "Z[]")(logits, np.array([0, 0], np.int32))
    np.testing.assert_allclose(out, [0.0, 2e4], rtol=1e-6)


def test_mse_is_the_mean_or_sum_of_squares() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(2, 4, 3, 2)).astype(np.float32)
    np.testing.assert_allclose(loss("mse", "R[3, 2]", "R[3, 2]")(a, b), ((a - b) ** 2).mean(axis=(1, 2)), rtol=1e-6)
    np.testing.assert_allclose(loss("mse", "R[3, 2]", "R[3, 2]", 'reduce="sum"')(a, b), ((a - b) ** 2).sum(axis=(1, 2)), rtol=1e-6)
    np.testing.assert_allclose(loss("mse", "R[]", "R[]")(a[:, 0, 0], b[:, 0, 0]), (a[:, 0, 0] - b[:, 0, 0]) ** 2, rtol=1e-6)


def test_bce_of_logits_matches_optax_and_stays_finite() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=(5, 6)).astype(np.float32) * 4
    t = rng.random((5, 6)).astype(np.float32)
    f = loss("bce", "R[6]", "R[6]", 'reduce="sum"')
    np.testing.assert_allclose(f(x, t), optax.sigmoid_binary_cross_entropy(x, t).sum(axis=1), rtol=1e-5)
    huge = np.array([[200.0, -200.0, 0.0]], np.float32)
    np.testing.assert_allclose(loss("bce", "R[3]", "R[3]", 'reduce="sum"')(huge, np.array([[0.0, 1.0, 1.0]], np.float32)),
                               [200.0 + 200.0 + np.log(2.0)], rtol=1e-6)


def test_bce_of_probabilities_clamps_the_logarithm_like_pytorch() -> None:
    p = np.array([[0.2, 0.9, 0.0, 1.0]], np.float32)
    t = np.array([[0.0, 1.0, 1.0, 1.0]], np.float32)
    f = loss("bce", "R[4]", "R[4]", 'logits=false, reduce="sum"')
    expected = -np.log(0.8) - np.log(0.9) + 100.0 + 0.0  # log 0 is clamped at -100
    np.testing.assert_allclose(f(p, t), [expected], rtol=1e-5)
    model = catnet.compile("morphism f(x : R[4], y : R[4]) -> R[] {\n  return bce(x, y, logits=false)\n}\n", "f", rngs=nnx.Rngs(0))
    grad = jax.grad(lambda x: model(x, jnp.asarray(t)).sum())(jnp.asarray(p))
    assert np.all(np.isfinite(np.asarray(grad))), grad


def test_gaussian_kl_is_the_closed_form() -> None:
    rng = np.random.default_rng(3)
    mu, logvar = rng.normal(size=(2, 4, 5)).astype(np.float32)
    kl = 0.5 * (np.exp(logvar) + mu**2 - 1.0 - logvar)
    np.testing.assert_allclose(loss("gaussian_kl", "R[5]", "R[5]", 'reduce="sum"')(mu, logvar), kl.sum(axis=1), rtol=1e-5)
    np.testing.assert_allclose(loss("gaussian_kl", "R[5]", "R[5]")(mu, logvar), kl.mean(axis=1), rtol=1e-5)
    zero = np.zeros((1, 5), np.float32)
    assert loss("gaussian_kl", "R[5]", "R[5]")(zero, zero)[0] == 0.0


def test_gaussian_kl_matches_a_monte_carlo_estimate() -> None:
    rng = np.random.default_rng(4)
    mu, logvar = np.array([[0.5, -1.0]], np.float32), np.array([[0.3, -0.7]], np.float32)
    z = mu + np.exp(0.5 * logvar) * rng.standard_normal((400_000, 2))
    log_q = -0.5 * (((z - mu) ** 2) / np.exp(logvar) + logvar + np.log(2 * np.pi))
    log_p = -0.5 * (z**2 + np.log(2 * np.pi))
    estimate = (log_q - log_p).sum(axis=1).mean()
    exact = loss("gaussian_kl", "R[2]", "R[2]", 'reduce="sum"')(mu, logvar)[0]
    assert abs(exact - estimate) < 0.01, (exact, estimate)


_floats = st.floats(-8, 8, width=32)


@SETTINGS
@given(st.lists(_floats, min_size=3, max_size=3), st.lists(st.floats(0, 1, width=32), min_size=3, max_size=3))
def test_bce_of_logits_equals_bce_of_their_probabilities(x: list[float], t: list[float]) -> None:
    xs, ts = np.array([x], np.float32), np.array([t], np.float32)
    a = loss("bce", "R[3]", "R[3]")(xs, ts)
    b = loss("bce", "R[3]", "R[3]", "logits=false")(np.asarray(jax.nn.sigmoid(xs)), ts)
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


@SETTINGS
@given(st.lists(_floats, min_size=4, max_size=4), st.integers(0, 3), _floats)
def test_cross_entropy_ignores_a_shift_of_the_logits(x: list[float], label: int, c: float) -> None:
    xs, y = np.array([x], np.float32), np.array([label], np.int32)
    f = loss("cross_entropy", "R[4]", "Z[]")
    np.testing.assert_allclose(f(xs + np.float32(c), y), f(xs, y), rtol=1e-5, atol=1e-5)


@SETTINGS
@given(st.lists(_floats, min_size=3, max_size=3), st.lists(st.floats(-5, 5, width=32), min_size=3, max_size=3))
def test_gaussian_kl_is_never_negative(mu: list[float], logvar: list[float]) -> None:
    out = loss("gaussian_kl", "R[3]", "R[3]")(np.array([mu], np.float32), np.array([logvar], np.float32))[0]
    assert out >= -1e-6  # float32 rounding of e^v - 1 - v near v = 0
    if not any(mu) and not any(logvar):
        assert out == 0.0


def test_losses_have_no_parameters_and_counts_match_the_lowered_model() -> None:
    text = (
        "morphism net : R[4] -> R[3] = dense(8) ; batchnorm ; relu ; dense\n"
        "morphism f(x : R[4], y : Z[], t : R[3]) -> R[] {\n"
        "  s = net(x)\n  return cross_entropy(s, y) + mse(s, t) + bce(s, t) + gaussian_kl(s, t)\n}\n"
    )
    d = catnet.loads(text).diagram("f")
    model = catnet.compile(text, "f", rngs=nnx.Rngs(0))
    assert total_params(d) == sum(x.size for x in jax.tree.leaves(nnx.state(model, nnx.Param))) == (4 * 8 + 8) + 2 * 8 + (8 * 3 + 3)
    assert d.cod.structure() == "R[]"


# -- training an objective ------------------------------------------------------------------

CLASSIFIER = """\
morphism clf : R[64] -> R[10] = dense(32) ; relu ; dense
morphism xent(x : R[64], y : Z[]) -> R[] {
  return cross_entropy(clf(x), y)
}
main clf
"""


def test_an_objective_trains_exactly_as_the_built_in_loss(tmp_path: Path) -> None:
    (tmp_path / "c.cat").write_text(CLASSIFIER)
    base = [str(tmp_path / "c.cat"), "--epochs", "2", "--seed", "5"]
    assert train(*base, "--out", str(tmp_path / "a"), "--metrics-out", str(tmp_path / "a.json")) == 0
    assert train(*base, "--objective", "xent", "--out", str(tmp_path / "b"), "--metrics-out", str(tmp_path / "b.json")) == 0
    a, b = metrics_of(tmp_path / "a.json"), metrics_of(tmp_path / "b.json")
    # the same weights drawn in the same order, the same loss: the same run
    assert [r["train_loss"] for r in a["history"]] == [r["train_xent"] for r in b["history"]]
    assert [r["test_loss"] for r in a["history"]] == [r["test_xent"] for r in b["history"]]
    assert b["objective"] == "xent" and b["loss"] == "objective" and b["test_accuracy"] is None
    assert b["test_xent"] == b["test_loss"] and b["params"] == a["params"] == 64 * 32 + 32 + 32 * 10 + 10
    pa, pb = trainlib.load_params(tmp_path / "a"), trainlib.load_params(tmp_path / "b")
    assert {f"clf.{k}" for k in pa} == set(pb)
    assert all(np.array_equal(pa[k], pb[f"clf.{k}"]) for k in pa)


TWO_HEADS = """\
morphism trunk : R[64] -> R[32] = dense ; relu
morphism both : R[64] -> R[10] ⊗ R[64] = trunk ; <dense, (dense : R[32] -> R[64]) ; sigmoid>
morphism joint(x : R[64], y : Z[]) -> R[] {
  logits, image = both(x)
  return cross_entropy(logits, y) + mse(image, x, reduce="sum")
}
main both
"""


def test_several_outputs_train_through_an_objective(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "two.cat").write_text(TWO_HEADS)
    args = [str(tmp_path / "two.cat"), "--epochs", "3"]
    assert train(*args, "--out", str(tmp_path / "r")) == 1
    err = capsys.readouterr().err
    assert "error[E0702]" in err and "--objective NAME" in err and "Traceback" not in err
    assert train(*args, "--objective", "joint", "--out", str(tmp_path / "r"), "--metrics-out", str(tmp_path / "m.json")) == 0
    history = metrics_of(tmp_path / "m.json")["history"]
    assert history[-1]["test_joint"] < history[0]["test_joint"]


def test_data_columns_feed_the_objective_in_order(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.random((30, 4), dtype=np.float32)
    np.savez(tmp_path / "xy.npz", x=x, y=(x.sum(1) > 2).astype(np.int32))
    np.savez(tmp_path / "pairs.npz", x0=x, x1=x[::-1].copy())
    text = (
        "morphism net : R[4] -> R[2] = dense(8) ; relu ; dense\n"
        "morphism map : R[4] -> R[4] = dense\n"
        "morphism supervised(x : R[4], y : Z[]) -> R[] {\n  return cross_entropy(net(x), y)\n}\n"
        "morphism unsupervised(x : R[4]) -> R[] {\n  return mse(map(x), x)\n}\n"
        "morphism paired(a : R[4], b : R[4]) -> R[] {\n  return mse(map(a), b)\n}\n"
    )
    module = catnet.loads(text)
    data = datalib.load_objective(str(tmp_path / "xy.npz"), module.diagram("supervised").dom, "supervised")
    assert data.target is None and [a.dtype for a in data.inputs] == [np.float32, np.int32] and len(data) == 30
    assert len(datalib.load_objective(str(tmp_path / "xy.npz"), module.diagram("unsupervised").dom, "unsupervised").inputs) == 1
    pair = datalib.load_objective(str(tmp_path / "pairs.npz"), module.diagram("paired").dom, "paired")
    assert np.array_equal(pair.inputs[1], x[::-1])
    images = catnet.loads("morphism o(x : R[8, 8, 1], t : R[64]) -> R[] {\n  return mse(flatten(x), t)\n}\n")
    digits = datalib.load_objective("digits", images.diagram("o").dom, "o")
    assert digits.inputs[0].shape == (1797, 8, 8, 1) and np.array_equal(digits.inputs[0].reshape(-1, 64), digits.inputs[1])
    (tmp_path / "o.cat").write_text(text)
    for objective, data_file in (("supervised", "xy.npz"), ("unsupervised", "xy.npz"), ("paired", "pairs.npz")):
        out = tmp_path / objective
        assert train(str(tmp_path / "o.cat"), "--objective", objective, "--data", str(tmp_path / data_file),
                     "--epochs", "1", "--batch-size", "8", "--out", str(out)) == 0


OBJECTIVES = """\
# objectives for the diagnostics of `catnet train --objective`
morphism clf : R[64] -> R[10] = dense(32) ; relu ; dense
morphism xent(x : R[64], y : Z[]) -> R[] {
  return cross_entropy(clf(x), y)
}
morphism three(x : R[64], y : Z[], z : Z[]) -> R[] {
  return cross_entropy(clf(x), y)
}
morphism small(x : R[32]) -> R[] {
  return mse(x, x)
}
morphism two : R[64] -> R[10] ⊗ R[10] = clf ; copy
main clf
"""

#: Each misuse of `catnet train --objective`: the arguments after the file.
MISUSES = {
    "unknown": ["--objective", "xnet"],
    "unknown_far": ["--objective", "zzz"],
    "not_scalar": ["--objective", "clf"],
    "too_many_wires": ["--objective", "three"],
    "wrong_image": ["--objective", "small"],
    "entry_and_objective": ["--objective", "xent", "--entry", "clf"],
    "loss_and_objective": ["--objective", "xent", "--loss", "mse"],
    "several_outputs": ["--entry", "two"],
    "npz_columns": ["--objective", "three", "--data", "xy.npz"],
}


@pytest.mark.parametrize("case", sorted(MISUSES))
def test_misused_objectives_are_located_diagnostics(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "objectives.cat").write_text(OBJECTIVES)
    np.savez(tmp_path / "xy.npz", x=np.zeros((4, 64), np.float32), y=np.zeros(4, np.int32))
    monkeypatch.chdir(tmp_path)
    assert train("objectives.cat", *MISUSES[case], "--out", "run") == 1
    err = capsys.readouterr().err
    golden(GOLDEN / f"losses_{case}.err", err)
    assert "Traceback" not in err and not (tmp_path / "run").exists()
    if case not in ("entry_and_objective", "loss_and_objective"):
        assert err.startswith("objectives.cat:"), err


def test_prepare_with_an_objective_does_not_import_jax(tmp_path: Path) -> None:
    (tmp_path / "c.cat").write_text(CLASSIFIER)
    script = (
        "import argparse, sys\n"
        "from catnet import train\n"
        "p = argparse.ArgumentParser(); train.configure(p)\n"
        "run = train.prepare(p.parse_args(['c.cat', '--objective', 'xent', '--out', 'r']))\n"
        "assert run.config.objective == 'xent' and len(run.train.inputs) == 2 and run.train.target is None\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('jax', 'flax', 'optax', 'orbax')))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=dict(os.environ, PYTHONPATH=str(ROOT)),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]", done.stdout


def test_cli_exit_code_without_traceback(tmp_path: Path) -> None:
    (tmp_path / "objectives.cat").write_text(OBJECTIVES)
    done = subprocess.run([sys.executable, "-m", "catnet", "train", "objectives.cat", "--objective", "clf"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert done.returncode == 1 and "error[E0702]" in done.stderr and "Traceback" not in done.stderr


# -- batch statistics -----------------------------------------------------------------------

BATCHNORM = "morphism net : R[64] -> R[10] = (dense : R[64] -> R[16]) ; batchnorm(momentum=0.5) ; relu ; dense\nmain net\n"
BATCHNORM_OBJECTIVE = "morphism xent(x : R[64], y : Z[]) -> R[] {\n  return cross_entropy(net(x), y)\n}\n"


def test_evaluation_normalizes_with_the_running_statistics() -> None:
    model = catnet.compile(BATCHNORM, rngs=nnx.Rngs(0))
    x = np.random.default_rng(0).normal(size=(32, 64)).astype(np.float32) * 2 + 1
    for _ in range(3):
        model(x)  # training mode: batch statistics, and the running averages move
    bn = model.batchnorm
    mean, var = np.asarray(bn.mean.get_value()), np.asarray(bn.var.get_value())
    assert np.abs(mean).max() > 0.1, "training updated the running mean"
    model.eval()
    h = x @ np.asarray(model.dense[0].kernel.get_value()) + np.asarray(model.dense[0].bias.get_value())
    h = (h - mean) / np.sqrt(var + bn.epsilon) * np.asarray(bn.scale.get_value()) + np.asarray(bn.bias.get_value())
    expected = np.maximum(h, 0) @ np.asarray(model.dense[1].kernel.get_value()) + np.asarray(model.dense[1].bias.get_value())
    np.testing.assert_allclose(np.asarray(model(x)), expected, rtol=1e-4, atol=1e-4)
    # an example's output does not depend on the rest of its batch
    np.testing.assert_allclose(np.asarray(model(x[:1])), np.asarray(model(x))[:1], rtol=1e-5, atol=1e-6)


def _test_set_loss(model: nnx.Module) -> float:
    d = model.diagram
    _, test = datalib.split(datalib.load("digits", d.dom, d.cod), 0.2)
    model.eval()
    return float(optax.softmax_cross_entropy_with_integer_labels(model(test.inputs[0]), test.target).mean())


def test_a_restored_batchnorm_model_evaluates_as_the_run_did(tmp_path: Path) -> None:
    (tmp_path / "bn.cat").write_text(BATCHNORM)
    m = tmp_path / "m.json"
    assert train(str(tmp_path / "bn.cat"), "--epochs", "3", "--out", str(tmp_path / "r"), "--metrics-out", str(m)) == 0
    restored = trainlib.restore(catnet.compile(str(tmp_path / "bn.cat"), rngs=nnx.Rngs(9)), tmp_path / "r")
    assert abs(_test_set_loss(restored) - metrics_of(m)["test_loss"]) < 1e-5
    # the parameters alone are not enough: the running statistics change the outputs
    params_only = catnet.compile(str(tmp_path / "bn.cat"), rngs=nnx.Rngs(9))
    nnx.update(params_only, nnx.state(restored, nnx.Param))
    assert abs(_test_set_loss(params_only) - metrics_of(m)["test_loss"]) > 1e-3


def test_an_objective_run_resumes_to_identical_weights_and_statistics(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "bn.cat").write_text(BATCHNORM + BATCHNORM_OBJECTIVE)
    args = [str(tmp_path / "bn.cat"), "--objective", "xent", "--seed", "1", "--batch-size", "128"]
    # two epochs whole, or one and a resume for the second
    assert train(*args, "--epochs", "2", "--out", str(tmp_path / "whole")) == 0
    assert train(*args, "--epochs", "1", "--out", str(tmp_path / "parts")) == 0
    assert train(*args, "--epochs", "2", "--out", str(tmp_path / "parts"), "--resume") == 0
    states = []
    for run in ("whole", "parts"):
        model = trainlib.restore(catnet.compile(str(tmp_path / "bn.cat"), "xent", rngs=nnx.Rngs(0)), tmp_path / run)
        states.append(jax.tree.leaves(nnx.state(model, nnx.Param, nnx.BatchStat)))
    assert len(states[0]) == 8 and all(np.array_equal(a, b) for a, b in zip(*states))
    capsys.readouterr()
    # the objective is one of the run's settings
    assert train(*args[:1], *args[3:], "--epochs", "3", "--out", str(tmp_path / "parts"), "--resume") == 1
    assert '--objective: "xent" in the checkpoint, (none) now' in capsys.readouterr().err


def test_restoring_into_another_model_is_e0705(tmp_path: Path) -> None:
    (tmp_path / "bn.cat").write_text(BATCHNORM)
    assert train(str(tmp_path / "bn.cat"), "--epochs", "1", "--out", str(tmp_path / "r")) == 0
    other = catnet.compile("morphism net : R[64] -> R[10] = (dense : R[64] -> R[8]) ; relu ; dense\nmain net\n", rngs=nnx.Rngs(0))
    with pytest.raises(CatnetError) as info:
        trainlib.restore(other, tmp_path / "r")
    assert info.value.code == "E0705" and "does not fit this model" in info.value.message
    with pytest.raises(CatnetError) as info:
        trainlib.restore("a model", tmp_path / "r")
    assert info.value.code == "E0801"


# -- the examples -----------------------------------------------------------------------------


def test_the_vae_trains_with_its_elbo(tmp_path: Path) -> None:
    m = tmp_path / "m.json"
    assert train(str(VAE), "--objective", "neg_elbo", "--epochs", "4", "--out", str(tmp_path / "r"), "--metrics-out", str(m)) == 0
    metrics = metrics_of(m)
    elbo = [-row["test_neg_elbo"] for row in metrics["history"]]
    assert metrics["objective"] == "neg_elbo" and metrics["test_neg_elbo"] == -elbo[-1]
    assert elbo[-1] > elbo[0] + 2, elbo
    # 64 Bernoulli pixels: far below the 64·log 2 ≈ 44.4 nats of a decoder that knows nothing
    assert metrics["test_neg_elbo"] < 40, metrics["test_neg_elbo"]


def test_the_vae_entry_needs_its_objective(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert train(str(VAE), "--epochs", "1", "--out", str(tmp_path / "r")) == 1
    assert "--objective" in capsys.readouterr().err


def test_the_gru_reads_digits_row_by_row_to_95_percent(tmp_path: Path) -> None:
    m = tmp_path / "m.json"
    rc = train(str(GRU), "--epochs", "20", "--lr", "5e-3", "--batch-size", "32", "--seed", "0",
               "--out", str(tmp_path / "r"), "--metrics-out", str(m))
    assert rc == 0
    metrics = metrics_of(m)
    assert metrics["test_accuracy"] >= 0.95, metrics["test_accuracy"]
