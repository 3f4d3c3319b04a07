"""Bundles at run time: priors, the trivialization flow, charts, data, objective, metrics and sampling."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import catnet
from catnet.bundles import charts, datasets, metrics, objective, sample, sample_many
from catnet.cli import main
from catnet.flows import priors
from catnet.lower.ops import bundles as ops

ROOT = Path(__file__).resolve().parent.parent
TORUS = ROOT / "examples" / "bundle_torus.cat"
IRIS = ROOT / "examples" / "bundle_iris.cat"

SMALL = """\
object Core = R[2]
object Tube = R[2]
bundle Torus = Tube over Core in R[3]
morphism chart : Torus -> Core ⊗ Tube = triv(charts=4, depth=3, hidden=16, prior="circle")
morphism base : Torus -> Core = proj
morphism both : Torus -> Core ⊗ Core = copy ; (base ⊗ (chart ; fst))
morphism lift : Torus -> Core ⊗ R[5] = chart ; fiberwise(hidden=8)
morphism back : Core ⊗ Tube -> Torus = inv(chart)
main chart
"""


@pytest.fixture(scope="module")
def torus() -> tuple[np.ndarray, np.ndarray]:
    return datasets.DATASETS["torus"].arrays(0)


@pytest.fixture(scope="module")
def small_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bundles") / "small.cat"
    path.write_text(SMALL, encoding="utf-8")
    return path


def _fitted(path: Path, entry: str, x: np.ndarray, b: np.ndarray, seed: int = 0) -> catnet.lower.model.Model:
    model = catnet.compile(str(path), entry, rngs=nnx.Rngs(seed))
    charts.fit(model, b, seed, points=x)
    return model


def _params(model: nnx.Module) -> int:
    return sum(int(v.size) for v in jax.tree.leaves(nnx.state(model, nnx.Param)))


# -- priors -------------------------------------------------------------------------


def test_circle_prior_integrates_to_one_on_a_grid() -> None:
    g = np.linspace(-2.0, 2.0, 801)
    xx, yy = np.meshgrid(g, g)
    z = jnp.asarray(np.stack([xx.ravel(), yy.ravel()], axis=-1), jnp.float32)
    total = float(jnp.exp(priors.get("circle", 2).log_prob(z)).sum()) * (g[1] - g[0]) ** 2
    assert total == pytest.approx(1.0, abs=2e-3)


def test_interval_density_integrates_to_one() -> None:
    t = np.linspace(-3.0, 3.0, 12001)
    z = jnp.asarray(np.stack([np.ones_like(t), np.zeros_like(t), t], axis=-1), jnp.float32)
    p = priors.get("circle_interval", 3)
    # log p(z) = log p_circle(1, 0) + log p_interval(t): divide out the circle's part
    circle = float(priors.get("circle", 2).log_prob(z[:1, :2])[0])
    total = float(jnp.exp(p.log_prob(z) - circle).sum()) * (t[1] - t[0])
    assert total == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize("name,dim", [("normal", 3), ("circle", 2), ("circle_interval", 3)])
def test_prior_samples_match_their_density(name: str, dim: int) -> None:
    """The mean log-density of samples is minus the entropy; its variance is finite; moments match."""
    p = priors.get(name, dim)
    z = p.sample(jax.random.PRNGKey(0), 100_000)
    assert z.shape == (100_000, dim) and z.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(z).std(axis=0), priors.coordinate_std(name, dim), rtol=0.02)
    lp = np.asarray(p.log_prob(z))
    assert np.all(np.isfinite(lp))
    if name == "normal":
        assert lp.mean() == pytest.approx(-0.5 * dim * (1 + math.log(2 * math.pi)), abs=0.02)
    if name == "circle":
        # entropy = H(radius) + log 2π + E[log r]
        h = 0.5 * math.log(2 * math.pi * math.e * priors.RADIUS_STD**2) + math.log(2 * math.pi)
        e_log_r = float(np.mean(np.log(np.linalg.norm(np.asarray(z), axis=1))))
        assert -lp.mean() == pytest.approx(h + e_log_r, abs=0.01)
    # the same key gives the same samples
    assert np.array_equal(np.asarray(p.sample(jax.random.PRNGKey(0), 5)), np.asarray(z[:5]))


def test_prior_dimension_mismatch_is_reported() -> None:
    assert priors.fiber_dim_ok("normal", 7) is None
    assert priors.fiber_dim_ok("circle", 2) is None
    message = priors.fiber_dim_ok("circle", 3)
    assert message is not None and "R[2]" in message and "R[3]" in message
    assert "no fiber prior" in (priors.fiber_dim_ok("sphere", 2) or "")
    with pytest.raises(ValueError, match="circle times an interval"):
        priors.get("circle_interval", 2)


def test_priors_module_does_not_import_jax() -> None:
    code = "import sys; import catnet.flows.priors as p; p.fiber_dim_ok('circle', 3); print('jax' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "False"


# -- the trivialization flow ------------------------------------------------------------


def test_round_trip_at_evaluation(small_file: Path, torus: tuple[np.ndarray, np.ndarray]) -> None:
    x, b = torus
    model = _fitted(small_file, "chart", x, b)
    model.eval()
    (b_hat, z), ld = model.forward_log_det(x[:64])
    assert b_hat.shape == (64, 2) and z.shape == (64, 2) and ld.shape == (64,)
    back, ld_inv = model.inverse_log_det(b_hat, z)
    np.testing.assert_allclose(np.asarray(back), x[:64], atol=1e-4)
    np.testing.assert_allclose(np.asarray(ld_inv), -np.asarray(ld), atol=1e-4)
    # with the true base points as the condition: the same, in the chart of b
    (b2, z2), _ = model.forward_log_det(x[:64], condition=b[:64])
    np.testing.assert_allclose(np.asarray(model.inverse(b2, z2)), x[:64], atol=1e-4)


def test_round_trip_without_padding(torus: tuple[np.ndarray, np.ndarray]) -> None:
    """A total space as big as B ⊗ F (iris: R[4] over R[2] ⊗ R[2]) is a bijection both ways."""
    x, b = datasets.DATASETS["iris"].arrays(0)
    model = _fitted(IRIS, "chart", x, b)
    model.eval()
    z = priors.get("normal", 2).sample(jax.random.PRNGKey(1), 32)
    base = jnp.asarray(b[:32])
    xs = model.inverse(base, z)
    (b_back, z_back), _ = model.forward_log_det(xs, condition=base)
    np.testing.assert_allclose(np.asarray(b_back), b[:32], atol=1e-3)
    np.testing.assert_allclose(np.asarray(z_back), np.asarray(z), atol=1e-3)


def test_log_det_is_the_jacobians(small_file: Path, torus: tuple[np.ndarray, np.ndarray]) -> None:
    """``log|det J|`` of the padded map equals slogdet of its Jacobian, chart by chart, both ways."""
    x, b = torus
    model = _fitted(small_file, "chart", x, b)
    flow = model.Torus
    # perturb every parameter so the couplings are not the identity
    state = nnx.state(flow, nnx.Param)
    leaves, treedef = jax.tree.flatten(state)
    keys = jax.random.split(jax.random.PRNGKey(3), len(leaves))
    nnx.update(flow, jax.tree.unflatten(treedef, [v + 0.1 * jax.random.normal(k, v.shape) for v, k in zip(leaves, keys)]))
    xp = flow.pad(jnp.asarray(x[:6]), None) + 0.01
    charts_ = jnp.arange(6) % flow.charts
    y, ld = flow.flow(xp, charts_)
    for i in range(6):
        jac = jax.jacfwd(lambda v, c=charts_[i : i + 1]: flow.flow(v[None], c)[0][0])(xp[i])
        assert float(ld[i]) == pytest.approx(float(jnp.linalg.slogdet(jac)[1]), abs=1e-4)
    back, ld_inv = flow.flow_inverse(y, charts_)
    np.testing.assert_allclose(np.asarray(back), np.asarray(xp), atol=1e-4)
    np.testing.assert_allclose(np.asarray(ld_inv), -np.asarray(ld), atol=1e-4)


def test_forward_without_condition_takes_the_self_consistent_chart(small_file: Path, torus: tuple[np.ndarray, np.ndarray]) -> None:
    x, b = torus
    model = _fitted(small_file, "chart", x, b)
    model.eval()
    flow = model.Torus
    (b_hat, _), _ = model.forward_log_det(x[:200])
    # the chart kept is the one whose base estimate is nearest its own centre
    xp = flow.pad(jnp.asarray(x[:200]), None)
    misses = []
    for c in range(flow.charts):
        y, _ = flow.flow(xp, jnp.full((200,), c))
        misses.append(np.sum((np.asarray(y[:, :2]) - np.asarray(flow.centres[...])[c]) ** 2, axis=1))
    best = np.argmin(np.stack(misses), axis=0)
    y_best = np.stack([np.asarray(flow.flow(xp[i : i + 1], jnp.array([best[i]]))[0][0, :2]) for i in range(0, 200, 20)])
    np.testing.assert_allclose(np.asarray(b_hat)[::20], y_best, atol=1e-4)


def test_training_mode_pads_with_noise_deterministically(small_file: Path, torus: tuple[np.ndarray, np.ndarray]) -> None:
    x, b = torus

    def run() -> np.ndarray:
        model = _fitted(small_file, "chart", x, b)
        (_, z), _ = model.forward_log_det(x[:8], condition=b[:8])
        return np.asarray(z)

    model = _fitted(small_file, "chart", x, b)
    model.eval()
    (_, z_eval), _ = model.forward_log_det(x[:8], condition=b[:8])
    first, second = run(), run()
    assert np.array_equal(first, second)  # same seed, same noise
    assert not np.allclose(first, np.asarray(z_eval))  # training noise is on


def test_one_instance_per_bundle_and_counts(small_file: Path, torus: tuple[np.ndarray, np.ndarray]) -> None:
    x, b = torus
    both = _fitted(small_file, "both", x, b)
    both.eval()
    p, q = both(x[:16])
    np.testing.assert_allclose(np.asarray(p), np.asarray(q), atol=1e-6)  # proj is the base half of triv
    flows = [n for _, n in nnx.iter_graph(both) if isinstance(n, ops.ChartFlow)]
    assert len({id(f) for f in flows}) == 1
    assert _params(both) == charts.count_triv(4, 3, 16, 4, 2)
    lift = catnet.compile(str(small_file), "lift", rngs=nnx.Rngs(0))
    fw = 2 * 5 + 5 + 2 * 8 + 8 + 8 * 10 + 10
    assert _params(lift) == charts.count_triv(4, 3, 16, 4, 2) + fw
    base, fiber = lift(x[:3])
    assert base.shape == (3, 2) and fiber.shape == (3, 5)


@pytest.mark.parametrize("charts_,depth,hidden,m,kb", [(8, 6, 64, 4, 2), (3, 2, 5, 3, 1), (2, 1, 4, 7, 3)])
def test_count_triv_matches_the_module(charts_: int, depth: int, hidden: int, m: int, kb: int) -> None:
    flow = ops.ChartFlow(m - 1, kb, m - kb, charts_, depth, hidden, rngs=nnx.Rngs(0))
    assert _params(flow) == charts.count_triv(charts_, depth, hidden, m, kb)


def test_summary_agrees_with_the_lowered_model(capsys: pytest.CaptureFixture[str]) -> None:
    model = catnet.compile(str(TORUS), "chart", rngs=nnx.Rngs(0))
    capsys.readouterr()
    assert main(["summary", str(TORUS)]) == 0
    assert f"{_params(model):,}" in capsys.readouterr().out


# -- charts ----------------------------------------------------------------------------


def test_kmeans_centres_are_seeded_and_on_the_core(torus: tuple[np.ndarray, np.ndarray]) -> None:
    x, b = torus
    model = catnet.compile(str(TORUS), "chart", rngs=nnx.Rngs(0))
    assert charts.fit(model, b, 0) == 1
    centres = np.asarray(model.Torus.centres[...])
    assert centres.shape == (32, 2)
    radii = np.linalg.norm(centres, axis=1)
    assert np.all((radii > 1.9) & (radii <= 2.0))  # centres of arcs of the circle of radius 2
    angles = np.sort(np.arctan2(centres[:, 1], centres[:, 0]))
    gaps = np.diff(np.concatenate([angles, angles[:1] + 2 * np.pi]))
    assert gaps.max() < 2 * (2 * np.pi / 32)  # spread around the circle
    again = catnet.compile(str(TORUS), "chart", rngs=nnx.Rngs(0))
    charts.fit(again, b, 0)
    assert np.array_equal(np.asarray(again.Torus.centres[...]), centres)
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        charts.fit(again, x, 0)


def test_local_frame_trivializes_a_chart_linearly(torus: tuple[np.ndarray, np.ndarray]) -> None:
    """The tube around one arc maps to a loop of radius about 1 around the origin (winding number 1)."""
    x, b = torus
    sel = (np.arctan2(b[:, 1], b[:, 0]) > -0.2) & (np.arctan2(b[:, 1], b[:, 0]) < 0.2)
    xp = np.concatenate([x[sel], np.zeros((sel.sum(), 1))], axis=1)
    a, t = charts.local_frame(xp + 0.001 * np.random.default_rng(0).standard_normal(xp.shape), b[sel], np.full(2, 0.71))
    y = xp @ a.T + t
    assert np.median(np.linalg.norm(y[:, :2] - b[sel], axis=1)) < 0.05
    r = np.linalg.norm(y[:, 2:], axis=1)
    assert 0.8 < np.median(r) < 1.2
    theta = np.arctan2(x[sel, 2], np.linalg.norm(x[sel, :2], axis=1) - 2.0)
    phase = np.angle(np.exp(1j * (np.arctan2(y[:, 3], y[:, 2]) - theta)))
    # one turn of the tube is one turn around the origin: the phase difference is constant (up to sign)
    alt = np.angle(np.exp(1j * (np.arctan2(y[:, 3], y[:, 2]) + theta)))
    assert min(np.std(np.exp(1j * phase)), np.std(np.exp(1j * alt))) < 0.3


# -- data -------------------------------------------------------------------------------


def test_torus_data_and_its_true_fibers(torus: tuple[np.ndarray, np.ndarray]) -> None:
    x, b = torus
    data = datasets.DATASETS["torus"]
    assert x.shape == (4000, 3) and b.shape == (4000, 2) and x.dtype == np.float32
    np.testing.assert_allclose(data.project(x), b, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(b, axis=1), 2.0, atol=1e-5)
    rho = np.linalg.norm(x[:, :2], axis=1)
    np.testing.assert_allclose((rho - 2.0) ** 2 + x[:, 2] ** 2, 0.25, atol=1e-5)
    fiber = data.fiber(b[0], 50)
    assert fiber is not None and fiber.shape == (50, 3)
    np.testing.assert_allclose(data.project(fiber), np.repeat(b[:1], 50, axis=0), atol=1e-5)
    assert np.array_equal(data.arrays(0)[0], x) and not np.array_equal(data.arrays(1)[0], x)


def test_iris_bundle_is_sizes_of_real_flowers() -> None:
    data = datasets.DATASETS["iris"]
    x, b = data.arrays(0)
    assert x.shape == (150, 4) and b.shape == (150, 2)
    np.testing.assert_allclose(b[:, 0] ** 2, x[:, 0] * x[:, 1], rtol=1e-5)
    np.testing.assert_allclose(b[:, 1] ** 2, x[:, 2] * x[:, 3], rtol=1e-5)
    assert data.fiber(b[0], 10) is None
    assert np.array_equal(data.arrays(0)[0], x)


# -- objective, sampling, metrics ------------------------------------------------------------


def test_objective_is_base_regression_plus_fiber_likelihood(small_file: Path, torus: tuple[np.ndarray, np.ndarray]) -> None:
    x, b = torus
    model = _fitted(small_file, "chart", x, b)
    model.eval()
    per = objective.per_example(model, x[:32], b[:32])
    assert per.shape == (32,) and np.all(np.isfinite(np.asarray(per)))
    (b_hat, z), ld = model.forward_log_det(x[:32], condition=b[:32])
    manual = 0.5 * jnp.sum((b_hat - b[:32]) ** 2, axis=1) / objective.BASE_STD**2 - priors.get("circle", 2).log_prob(z) - ld
    np.testing.assert_allclose(np.asarray(per), np.asarray(manual), rtol=1e-5)
    assert objective.prior_of(model.diagram).name == "circle"


def test_sampling_shapes_determinism_and_errors(small_file: Path, torus: tuple[np.ndarray, np.ndarray]) -> None:
    x, b = torus
    model = _fitted(small_file, "chart", x, b)
    assert not model.deterministic
    s1 = sample(model, np.array([2.0, 0.0]), 100, jax.random.PRNGKey(4))
    s2 = sample(model, np.array([2.0, 0.0]), 100, jax.random.PRNGKey(4))
    assert s1.shape == (100, 3) and np.array_equal(np.asarray(s1), np.asarray(s2))
    assert not model.deterministic  # the mode is restored
    many = sample_many(model, b[:3], 10, jax.random.PRNGKey(5))
    assert many.shape == (3, 10, 3)
    one = sample(model, b[1], 10, jax.random.fold_in(jax.random.PRNGKey(5), 1))
    np.testing.assert_allclose(np.asarray(many[1]), np.asarray(one), atol=1e-5)
    with pytest.raises(ValueError, match="a base point has 2 numbers, not 3"):
        sample(model, np.array([1.0, 2.0, 3.0]), 5, jax.random.PRNGKey(0))


def test_metrics_on_the_true_sampler(monkeypatch: pytest.MonkeyPatch) -> None:
    """The true fibers score error 0 and coverage 1; half of each fiber covers about half."""
    from catnet import bundles

    data = datasets.DATASETS["torus"]
    _, b = data.arrays(0)

    def true(model: object, bases: np.ndarray, n: int, key: object) -> np.ndarray:
        return np.stack([data.fiber(base, n) for base in bases])

    monkeypatch.setattr(bundles, "sample_many", true)
    out = metrics.evaluate(None, data, b[:30], 0)
    assert out["projection_error"] < 1e-5 and out["fiber_coverage"] == 1.0

    def half(model: object, bases: np.ndarray, n: int, key: object) -> np.ndarray:
        return np.stack([data.fiber(base, 2 * n)[:n] for base in bases])

    monkeypatch.setattr(bundles, "sample_many", half)
    assert metrics.evaluate(None, data, b[:30], 0)["fiber_coverage"] == pytest.approx(0.5, abs=0.1)
    iris = datasets.DATASETS["iris"]
    _, ib = iris.arrays(0)
    monkeypatch.setattr(bundles, "sample_many", lambda m, bases, n, k: np.stack([iris.arrays(0)[0][:1].repeat(n, 0)] * len(bases)))
    assert set(metrics.evaluate(None, iris, ib[:1], 0)) == {"projection_error"}


# -- acceptance ----------------------------------------------------------------------------


@pytest.mark.slow
def test_torus_trains_to_acceptance_via_the_cli(tmp_path: Path) -> None:
    """Issue 9, acceptance 1: `catnet train examples/bundle_torus.cat --data torus --seed 0`.

    The command runs in this process (``catnet.cli.main``, as ``python -m
    catnet`` calls it): the same run, without a second start of Python and JAX.
    """
    out = tmp_path / "m.json"
    argv = ["train", str(TORUS), "--data", "torus", "--seed", "0", "--metrics-out", str(out), "--out", str(tmp_path / "run"), "--quiet"]
    assert main(argv) == 0
    m = json.loads(out.read_text())
    assert m["projection_error"] <= 0.1
    assert m["fiber_coverage"] >= 0.9
