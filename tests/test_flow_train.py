"""Likelihood training with ``catnet train``: flows by NLL, the named data sets, E0706.

A flow (one real wire onto itself, every box invertible) trains by its
negative log-likelihood under a standard Gaussian; ``--metrics-out`` reports
``test_nll``, ``test_bits_per_dim`` and ``gaussian_nll`` (one Gaussian fitted
to the training data, the baseline the flow must beat).  Asking a flow for a
regression loss, or a likelihood of a morphism that is not a flow, is E0706
at the entry (golden diagnostics in ``tests/golden/train/flow_*.err``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, golden

import catnet
from catnet import data as datalib
from catnet.cli import main
from catnet.errors import CatnetError

jax = pytest.importorskip("jax")
nnx = pytest.importorskip("flax.nnx")
pytest.importorskip("optax")
pytest.importorskip("orbax.checkpoint")

from catnet import flows
from catnet import train as trainlib

GOLDEN = Path(__file__).resolve().parent / "golden" / "train"

#: A small flow on the plane: fast to compile and to train.
SMALL_FLOW = """\
object P = R[2]
morphism flow : P -> P = coupling(hidden=16) ; reverse ; coupling(hidden=16)
morphism net : P -> R[3] = dense ; relu
morphism iso : P -> P = reverse ; neg
morphism pair : R[2] ⊗ R[3] -> R[3] ⊗ R[2] = swap
main flow
"""


def train(*argv: str) -> int:
    return main(["train", "--quiet", *argv])


def metrics_of(path: Path) -> dict:
    return json.loads(path.read_text())


def test_the_moons_flow_beats_one_gaussian(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """examples/flow_moons.cat trains by likelihood; a few epochs already beat the Gaussian clearly."""
    m = tmp_path / "m.json"
    assert main(["train", str(ROOT / "examples" / "flow_moons.cat"), "--data", "moons", "--epochs", "4",
                 "--out", str(tmp_path / "run"), "--metrics-out", str(m)]) == 0
    err = capsys.readouterr().err
    metrics = metrics_of(m)
    assert metrics["loss"] == "nll"
    assert {"test_nll", "test_bits_per_dim", "gaussian_nll"} <= set(metrics)
    assert metrics["test_nll"] == metrics["test_loss"]
    assert metrics["test_bits_per_dim"] == pytest.approx(metrics["test_nll"] / (2 * math.log(2)))
    assert metrics["test_nll"] < metrics["gaussian_nll"] - 0.2, metrics
    # both are printed at the end of the run
    assert f"test NLL {metrics['test_nll']:.4f} nats" in err and f"one Gaussian: {metrics['gaussian_nll']:.4f} nats" in err


def test_nll_is_the_change_of_variables_density() -> None:
    """``flows.nll`` is -(log N(f(x)) + log|det J|), and integrates to one over the plane (a density)."""
    model = catnet.compile(SMALL_FLOW, rngs=nnx.Rngs(3))
    x = jax.random.normal(jax.random.PRNGKey(0), (5, 2))
    z, ld = model.forward_log_det(x)
    want = 0.5 * np.sum(np.square(np.asarray(z)), axis=-1) + math.log(2 * math.pi) - ld
    assert np.allclose(flows.nll(model, x), want, atol=1e-5)
    # a Riemann sum of exp(-nll) over a wide grid is ~1
    g = np.linspace(-8, 8, 241, dtype=np.float32)
    grid = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
    mass = float(np.sum(np.exp(-np.asarray(flows.nll(model, grid)))) * (g[1] - g[0]) ** 2)
    assert mass == pytest.approx(1.0, abs=0.02)


def test_gaussian_nll_is_the_fitted_normal_density() -> None:
    from scipy.stats import multivariate_normal

    rng = np.random.default_rng(0)
    a = rng.normal(size=(500, 3)) @ np.array([[1.0, 0.5, 0.0], [0.0, 1.0, 0.3], [0.0, 0.0, 0.2]])
    b = rng.normal(size=(100, 3))
    mvn = multivariate_normal(a.mean(0), np.cov(a, rowvar=False, bias=True))
    assert trainlib.gaussian_nll(a, b) == pytest.approx(-np.mean(mvn.logpdf(b)), rel=1e-4)  # the ridge
    # a constant coordinate does not make it infinite
    flat = np.concatenate([a, np.zeros((500, 1))], axis=1)
    assert math.isfinite(trainlib.gaussian_nll(flat, flat[:10]))


def test_the_loss_follows_the_entry() -> None:
    module = catnet.loads(SMALL_FLOW)
    assert trainlib.training_kind(module.diagram("flow"), "auto", "flow") == "nll"
    assert trainlib.training_kind(module.diagram("iso"), "nll", "iso") == "nll"
    assert trainlib.training_kind(module.diagram("net"), "auto", "net") is None  # decided by the data
    assert trainlib.training_kind(module.diagram("net"), "mse", "net") is None
    assert not trainlib.is_flow(module.diagram("pair"))  # an iso, but not onto its own wire
    assert trainlib.first_not_iso(module.diagram("net")).name == "dense"


#: Each misuse of a likelihood: the arguments after the file (SMALL_FLOW, data d.npz with x and y).
MISUSES = {
    "mse": ["--loss", "mse"],
    "xent": ["--loss", "xent"],
    "bundle": ["--loss", "bundle"],
    "nll_not_iso": ["--entry", "net", "--loss", "nll"],
    "nll_not_endo": ["--entry", "pair", "--loss", "nll"],
    "moons_not_a_flow": ["--entry", "net", "--data", "moons"],
    "unknown_data": ["--data", "moon"],
}


@pytest.mark.parametrize("case", sorted(MISUSES))
def test_misused_likelihoods_are_located_diagnostics(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "flows.cat").write_text(SMALL_FLOW)
    np.savez(tmp_path / "d.npz", x=np.zeros((8, 2), np.float32), y=np.zeros((8, 3), np.float32))
    monkeypatch.chdir(tmp_path)
    args = MISUSES[case]
    data = [] if "--data" in args else ["--data", "d.npz"]
    assert train("flows.cat", *args, *data, "--out", "run") == 1
    err = capsys.readouterr().err
    golden(GOLDEN / f"flow_{case}.err", err)
    assert "Traceback" not in err and not (tmp_path / "run").exists()
    assert err.startswith("flows.cat:"), err


def test_flow_data_is_the_inputs_alone(tmp_path: Path) -> None:
    """A flow reads `x` of an .npz (no `y` needed); moons fits R[2]; the digits are dequantized by the seed."""
    dom = catnet.loads(SMALL_FLOW).diagram("flow").dom
    np.savez(tmp_path / "x.npz", x=np.ones((6, 2), np.float64))
    d = datalib.load(str(tmp_path / "x.npz"), dom, dom, kind="flow")
    assert d.target is None and d.inputs[0].dtype == np.float32 and len(d) == 6
    moons = datalib.load("moons", dom, dom, kind="flow")
    assert moons.inputs[0].shape == (2000, 2) and moons.target is None
    image = catnet.loads("object Img = R[8, 8, 1]\nmorphism f : Img -> Img = reverse\nmain f\n").diagram("f").dom
    a, b, c = (datalib.load("digits", image, image, kind="flow", seed=s) for s in (0, 0, 1))
    assert a.levels == 17 and a.inputs[0].shape == (1797, 8, 8, 1)
    assert np.array_equal(a.inputs[0], b.inputs[0]) and not np.array_equal(a.inputs[0], c.inputs[0])
    x = a.inputs[0].reshape(-1, 64)
    assert x.min() >= 0 and x.max() < 1
    from sklearn.datasets import load_digits

    assert np.array_equal(np.floor(x * 17).astype(int), load_digits().data.astype(int))  # the levels survive
    assert flows.bits_per_dim(64 * math.log(2), 64, 17) == pytest.approx(1 + math.log2(17))
    with pytest.raises(CatnetError) as info:
        datalib.load("moons", image, image, kind="flow")
    assert info.value.code == "E0701" and "R[2]" in info.value.message


def test_named_data_sets() -> None:
    assert {"digits", "moons", "torus", "iris"} <= set(datalib.names())
    assert datalib.is_named("torus") and not datalib.is_named("torus.npz")
    with pytest.raises(CatnetError) as info:
        datalib.load("tours", catnet.loads(SMALL_FLOW).diagram("flow").dom, catnet.loads(SMALL_FLOW).diagram("flow").cod)
    assert info.value.code == "E0001" and "torus" in (info.value.help or "")


def test_a_flow_run_resumes_bit_identically(tmp_path: Path) -> None:
    (tmp_path / "f.cat").write_text(SMALL_FLOW)
    args = [str(tmp_path / "f.cat"), "--data", "moons", "--batch-size", "256", "--seed", "5"]
    assert train(*args, "--epochs", "2", "--out", str(tmp_path / "whole")) == 0
    assert train(*args, "--epochs", "1", "--out", str(tmp_path / "part")) == 0
    assert train(*args, "--epochs", "2", "--out", str(tmp_path / "part"), "--resume") == 0
    whole, part = trainlib.load_params(tmp_path / "whole"), trainlib.load_params(tmp_path / "part")
    assert whole.keys() == part.keys() and all(np.array_equal(whole[k], part[k]) for k in whole)


def test_restore_gives_the_trained_flow(tmp_path: Path) -> None:
    """The checkpoint restores into a compiled flow whose NLL on the test split is the reported one."""
    (tmp_path / "f.cat").write_text(SMALL_FLOW)
    m = tmp_path / "m.json"
    assert train(str(tmp_path / "f.cat"), "--data", "moons", "--epochs", "2", "--out", str(tmp_path / "r"),
                 "--metrics-out", str(m)) == 0
    model = trainlib.restore(catnet.compile(str(tmp_path / "f.cat"), rngs=nnx.Rngs(0)), tmp_path / "r")
    model.eval()
    dom = model.dom
    _, test = datalib.split(datalib.load("moons", dom, dom, kind="flow"), 0.2)
    nll = float(np.mean(np.asarray(flows.nll(model, test.inputs[0]))))
    assert nll == pytest.approx(metrics_of(m)["test_nll"], rel=1e-4)


BUNDLE = """\
object Core = R[2]
object Tube = R[2]
bundle Torus = Tube over Core in R[3]
morphism chart : Torus -> Core ⊗ Tube = triv(charts=2, depth=2, hidden=8, prior="circle")
main chart
"""


def test_bundle_data_is_total_space_points_and_their_base(tmp_path: Path) -> None:
    """A trivialization reads `x` on the bundle wire (its total space) and the base points as the target."""
    chart = catnet.loads(BUNDLE).diagram("chart")
    assert trainlib.is_trivialization(chart) and trainlib.training_kind(chart, "auto", "chart") == "bundle"
    torus = datalib.load("torus", chart.dom, chart.cod, kind="bundle")
    assert torus.inputs[0].shape == (4000, 3) and torus.target is not None and torus.target.shape == (4000, 2)
    assert np.allclose(np.linalg.norm(torus.target, axis=1), 2.0, atol=1e-5)  # points of the core circle
    x, b = torus.inputs[0][:10], torus.target[:10]
    np.savez(tmp_path / "ok.npz", x=x.astype(np.float64), y=b)
    npz = datalib.load(str(tmp_path / "ok.npz"), chart.dom, chart.cod, kind="bundle")
    assert npz.inputs[0].dtype == np.float32 and np.array_equal(npz.target, b)
    np.savez(tmp_path / "bad.npz", x=x, y=b[:, :1])
    for spec in (str(tmp_path / "bad.npz"), "moons", "iris"):
        with pytest.raises(CatnetError) as info:
            datalib.load(spec, chart.dom, chart.cod, kind="bundle")
        assert info.value.code == "E0701", spec
    # a compiled trivialization takes its total-space points as a plain float array
    model = catnet.compile(BUNDLE, rngs=nnx.Rngs(0))
    (b_hat, z), ld = model.forward_log_det(x, condition=b)
    assert b_hat.shape == (10, 2) and z.shape == (10, 2) and ld.shape == (10,)
