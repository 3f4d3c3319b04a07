"""Activations of named wires (``catnet.analysis.activations``) and ``catnet analyze``."""

from __future__ import annotations

import json
from pathlib import Path

import jax
import numpy as np
import pytest
from flax import nnx

import catnet
from catnet.analysis import activations
from catnet.cli import main
from catnet.errors import CatnetError
from catnet.summary import summarize

ROOT = Path(__file__).resolve().parent.parent
CNN = ROOT / "examples" / "digits_cnn.cat"
TRANSFORMER = ROOT / "examples" / "transformer.cat"


def _compiled(source: Path | str, entry: str | None = None, seed: int = 0) -> catnet.lower.model.Model:
    model = catnet.compile(str(source), entry, rngs=nnx.Rngs(seed))
    model.eval()
    return model


def test_collected_wires_equal_the_definitions_run_by_hand() -> None:
    model = _compiled(CNN)
    x = np.random.default_rng(0).random((37, 64), np.float32)
    acts = activations.collect(model, x, batch_size=16)  # three batches, the last one padded
    assert list(acts) == ["input", "stage1", "stage2", "classifier"]
    h = x.reshape(37, 8, 8, 1)
    np.testing.assert_array_equal(acts["input"], x)
    for name in ("stage1", "stage2", "classifier"):
        part = _compiled(CNN, name, seed=1)
        nnx.update(part, nnx.state(getattr(model, name)))
        h = np.asarray(part(h))
        np.testing.assert_allclose(acts[name], h.reshape(37, -1), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(acts["classifier"], np.asarray(model(x)), rtol=1e-5, atol=1e-6)


REPEATED = """
object V = R[6]
morphism mlp : V -> V = (dense : V -> R[12]) ; tanh ; dense
morphism block : V -> V = layernorm ; mlp
morphism net : V -> R[3] = (repeat 4 block : V -> V) ; dense
main net
"""


def test_each_copy_of_a_repeat_is_a_wire() -> None:
    model = _compiled(REPEATED)
    x = np.random.default_rng(0).normal(size=(5, 6)).astype(np.float32)
    acts = activations.collect(model, x, wires=["block[*]", "block", "block[1].mlp.dense[0]"])
    assert list(acts) == ["block[0]", "block[1]", "block[2]", "block[3]", "block", "block[1].mlp.dense[0]"]
    assert acts["block[1].mlp.dense[0]"].shape == (5, 12)
    block = _compiled(REPEATED, "block", seed=1)
    stacked = nnx.state(model.block)
    h = x
    for i in range(4):
        nnx.update(block, jax.tree.map(lambda a, i=i: a[i], stacked))
        if i == 1:
            inner = np.asarray(block.mlp.dense[0](block.layernorm(h)))
            np.testing.assert_allclose(acts["block[1].mlp.dense[0]"], inner, rtol=1e-5, atol=1e-6)
        h = np.asarray(block(h))
        np.testing.assert_allclose(acts[f"block[{i}]"], h, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(acts["block"], acts["block[3]"])


def test_the_default_wires_of_a_transformer_are_its_blocks() -> None:
    diagram = catnet.load(str(TRANSFORMER)).diagram()
    names = [w.name for w in activations.select(diagram)]
    assert names == ["input", *(f"block[{i}]{part}" for i in range(4) for part in (".mlp", "")), "output"]


@pytest.mark.parametrize("path", [CNN, TRANSFORMER, ROOT / "examples" / "residual.cat"], ids=lambda p: p.stem)
def test_default_wires_are_the_definitions_summary_names(path: Path) -> None:
    diagram = catnet.load(str(path)).diagram()
    chosen = activations.select(diagram)
    templates = {w.template.removesuffix("[*]") for w in chosen if w.kind not in ("input", "output")}
    listed = {r.path for r in summarize(diagram).rows if r.kind == "composite" or r.kind.startswith("repeat")}
    assert templates == listed
    assert chosen[0].name == "input"
    every = {w.name for w in activations.wires(diagram)}
    summary = {r.path for r in summarize(diagram).rows}
    assert {n for n in every if "[*]" not in n} >= {p for p in summary if "[*]" not in p}


def test_an_unknown_wire_is_a_located_error_listing_the_layers() -> None:
    model = _compiled(CNN)
    with pytest.raises(CatnetError) as caught:
        activations.collect(model, np.zeros((4, 64), np.float32), wires=["stage3"])
    e = caught.value
    assert e.code == "E0201" and e.span is not None and e.span.line == 18
    text = e.render()
    assert "no wire named `stage3`" in text and "input, stage1, stage2, classifier" in text and "did you mean `stage2`" in text


# -- the command ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A digits CNN trained for one epoch."""
    run = tmp_path_factory.mktemp("analyze") / "run"
    assert main(["train", "--quiet", str(CNN), "--data", "digits", "--epochs", "1", "--out", str(run)]) == 0
    return run


def _analyze(run: Path, out: Path, *extra: str, file: Path = CNN) -> int:
    return main(["analyze", str(file), "--checkpoint", str(run), "--data", "digits", "-o", str(out), "--quiet", *extra])


def test_analyze_writes_every_number_and_figure(trained: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    code = _analyze(trained, out, "--samples", "300", "--bootstrap", "4", "--hessian-k", "3", "--hessian-samples", "128", "--probes", "4")
    assert code == 0
    report = json.loads((out / "analysis.json").read_text())
    assert [r["name"] for r in report["wires"]] == ["input", "stage1", "stage2", "classifier"]
    assert report["examples"] == 300 and report["settings"]["hessian_k"] == 3
    for row in report["wires"]:
        for method in ("twonn", "mle"):
            est = row[method]
            assert 1 < est["value"] < row["features"] and est["low"] <= est["high"]
    for row in report["wires"]:  # data curvature in the dimension TwoNN found, or the reason it was skipped
        c = row["curvature"]
        if c is None:
            assert "curvature" in row["errors"]
            continue
        assert c["d"] == max(1, round(row["twonn"]["value"])) and c["points"] == 300
        assert 0 < c["low"] <= c["median"] <= c["high"] and c["scaled_median"] == pytest.approx(c["median"] * c["radius"])
    assert sum(r["curvature"] is not None for r in report["wires"]) >= 3
    assert report["figures"]["data_curvature"] == "data_curvature.png"
    h = report["hessian"]
    assert h["parameters"] == 13706 and len(h["top_eigenvalues"]) == 3
    assert h["top_eigenvalues"] == sorted(h["top_eigenvalues"], reverse=True) and h["top_eigenvalues"][0] > 0
    assert len(h["slice_2d"]["losses"]) == len(h["slice_2d"]["coords"])
    assert sorted(p.name for p in out.iterdir()) == sorted(["analysis.json", *report["figures"].values()])
    for name in report["figures"].values():
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_checkpoint_of_another_file_is_a_clear_error(trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    other = tmp_path / "wider.cat"
    other.write_text(CNN.read_text().replace("conv(16, kernel=3)", "conv(8, kernel=3)").replace("R[4, 4, 16]", "R[4, 4, 8]"))
    assert _analyze(trained, tmp_path / "out", "--no-hessian", file=other) == 1
    err = capsys.readouterr().err
    assert "error[E0705]" in err and "trained from another .cat file" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_an_unknown_wire_on_the_command_line(trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _analyze(trained, tmp_path / "out", "--wires", "stage1,stage9") == 1
    err = capsys.readouterr().err
    assert "error[E0201]: the model has no wire named `stage9`" in err and "digits_cnn.cat:18:10" in err


def test_too_few_samples_is_a_clean_exit(trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert _analyze(trained, out, "--samples", "2", "--no-hessian") == 1
    err = capsys.readouterr().err
    assert "digits_cnn.cat:18:10: error[E0709]: no intrinsic dimension could be estimated on any wire" in err
    assert "--samples; digits has 1797" in err and "Traceback" not in err
    assert not out.exists() or not any(out.iterdir())


def test_the_python_api_gives_the_commands_numbers_and_figures(tmp_path: Path) -> None:
    from catnet.analysis import plots, report
    from catnet.analysis.errors import AnalysisError

    model = _compiled(CNN)
    rng = np.random.default_rng(0)
    x = rng.random((200, 64), np.float32)
    y = rng.integers(0, 10, 200)
    numbers = report.analyze(model, x, y, wires=["stage1", "classifier"], bootstrap=3, data_curvature_points=50,
                             hessian_k=2, hessian_samples=64, probes=2)
    assert numbers["examples"] == 200 and [r["name"] for r in numbers["wires"]] == ["stage1", "classifier"]
    assert numbers["hessian"]["loss"] == "cross_entropy" and numbers["hessian"]["examples"] == 64
    assert numbers["wires"][0]["type"] == "Image -> R[4, 4, 16]"
    assert sorted(plots.draw(numbers, tmp_path)) == sorted(plots.FIGURES)
    json.dumps(numbers, allow_nan=False)
    with pytest.raises(AnalysisError, match="no intrinsic dimension could be estimated on any wire") as refused:
        report.analyze(model, x[:2], hessian=False)
    assert refused.value.step == "intrinsic"


@pytest.mark.parametrize(
    ("extra", "said"),
    [
        (["--samples", "0"], "--samples must be a whole number from 1 to 10000000, not 0"),
        (["--bootstrap", "many"], "--bootstrap must be a whole number from 2 to 10000, not 'many'"),
        (["--seed", "-1"], "--seed must be a whole number from 0 to 4294967295, not -1"),
        (["--wires", " , "], "--wires names no wire"),
    ],
)
def test_bad_options_are_e0709_before_anything_runs(extra: list[str], said: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # no run directory is needed: the options are checked first
    assert _analyze(tmp_path / "no-run", tmp_path / "out", *extra) == 1
    err = capsys.readouterr().err
    assert f"digits_cnn.cat:18:10: error[E0709]: {said}" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_a_wire_too_high_dimensional_for_a_curvature_fit_is_skipped_with_the_reason() -> None:
    from catnet.analysis import report

    rng = np.random.default_rng(0)
    acts = {"flat": rng.normal(size=(400, 40)).astype(np.float32), "thin": rng.normal(size=(400, 3)).astype(np.float32)}
    rows = [{"name": n, "twonn": {"value": v}, "mle": None, "errors": {}} for n, v in (("flat", 31.6), ("thin", 3.2))]
    report.data_curvature(acts, rows, 100, 0, report.Progress(None))
    assert rows[0]["curvature"] is None and "intrinsic dimension ≈ 32 is above 12" in rows[0]["errors"]["curvature"]
    assert rows[1]["curvature"] is None and "fills its 3 features" in rows[1]["errors"]["curvature"]
