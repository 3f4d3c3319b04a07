"""``catnet verify``: the equivariance error of each claim, measured on the compiled model."""

from __future__ import annotations

import argparse
import itertools
import math
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest

from catnet import extend, load
from catnet.cli import main
from catnet.symmetry import verify
from catnet.symmetry.actions import element
from catnet.symmetry.groups import parse

from conftest import ROOT

CLAIMS = """\
object Image  = R[8, 8, 1] under C4
object Feat   = R[8, 8, 8] under C4 as regular * 2
object Logits = R[3] under C4
object Set    = R[5, 3] under S5

morphism block : Feat -> Feat equivariant under C4 = gconv ; relu
morphism net : Image -> Logits invariant under C4 =
  gconv(features=8) ; relu ; block ; gpool ; global_avgpool ; glinear
morphism ds : Set -> R[2] invariant under S5 = deepsets(features=4) ; relu ; global_avgpool ; dense
morphism tokens : Z[2] @ Set -> R[2, 4] @ Set equivariant under S5 = embed(vocab=7, features=4) @ relu
morphism plain : R[3] -> R[3] = relu
"""

BROKEN = """\
object Set = R[4, 2] under S4
morphism good : Set -> Set equivariant under S4 = relu
morphism bad : Set -> Set equivariant under S4 = relu ; position_bias
"""


def _write(tmp_path: Path, text: str, name: str = "model.cat") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def _rows(out: str) -> dict[str, list[str]]:
    """The table's rows by morphism name, split on runs of two spaces."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("morphism"))
    rows = {}
    for line in lines[start + 2:]:
        if line.startswith(("ok:", "FAIL")) or not line.strip():
            break
        cells = [c.strip() for c in line.split("  ") if c.strip()]
        rows[cells[0]] = cells
    return rows


def _shift(module: Any, wires: list[Any], box: Any, ctx: Any) -> list[Any]:
    """Adds each set element's position to it: not equivariant under any permutation that moves one."""
    import jax.numpy as jnp

    x = wires[0]
    return [x + jnp.arange(x.shape[1], dtype=x.dtype)[None, :, None]]


@pytest.fixture
def position_bias() -> Iterator[None]:
    extend.generator("position_bias", lambda ctx, dom, args: dom, apply=_shift, acts="equivariant", plugin="tests.verify")
    try:
        yield
    finally:
        extend.unregister("position_bias")


# -- the command ----------------------------------------------------------------------


def test_every_claim_of_a_file_holds(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, CLAIMS)
    assert main(["verify", path]) == 0
    out = capsys.readouterr().out
    rows = _rows(out)
    assert list(rows) == ["block", "net", "ds", "tokens"]  # the file's claims, in order; `plain` has none
    assert rows["block"][1:4] == ["equivariant", "C4", "4 (all)"]
    assert rows["net"][1:4] == ["invariant", "C4", "4 (all)"]
    assert rows["ds"][1:4] == ["invariant", "S5", f"{1 + 2 + verify.DEFAULT_SAMPLES} of 120"]
    for name, cells in rows.items():
        assert cells[-1] == "ok", out
        assert float(cells[6]) <= 1e-5, name
    assert out.rstrip().endswith("ok: every claim holds within 1e-05")


def test_one_morphism_and_the_sample_size(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, CLAIMS)
    assert main(["verify", path, "--morphism", "ds", "--samples", "3", "--batch", "2", "--seed", "7"]) == 0
    out = capsys.readouterr().out
    assert list(_rows(out)) == ["ds"]
    assert _rows(out)["ds"][3] == "6 of 120"  # the identity, the two generators and three drawn
    assert "batch 2, seed 7" in out


def test_a_generator_that_breaks_its_promise_fails(tmp_path: Path, position_bias: None, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, BROKEN)
    assert load(path).definitions["bad"].decl.claim is not None  # the checker takes the plugin at its word
    assert main(["verify", path]) == 1
    captured = capsys.readouterr()
    rows = _rows(captured.out)
    assert rows["good"][-1] == "ok" and rows["bad"][-1] == "FAIL"
    # f(g·x) - g·f(x) = a - g·a for a = (0, 1, 2, 3) on the set axis: the
    # largest distance any permutation of S4 moves a position.
    by_hand = max(max(abs(j - p[j]) for j in range(4)) for p in itertools.permutations(range(4)))
    assert by_hand == 3
    assert float(rows["bad"][4]) == pytest.approx(by_hand)
    summary = captured.err.strip().splitlines()[-1]
    assert summary.startswith("FAIL: 1 of 2 claims do not hold; worst: `bad` is not equivariant under S4: relative error")
    worst = summary.rsplit("at g = ", 1)[1]
    assert worst == rows["bad"][7] and worst.startswith("(")


def test_measure_matches_the_hand_computed_error(tmp_path: Path, position_bias: None) -> None:
    import catnet
    from flax import nnx

    module = load(_write(tmp_path, BROKEN))
    opts = verify.Options(samples=4, batch=3, seed=0, tolerance=1e-5)
    p = verify.plan(module, "bad", module.definitions["bad"].decl.claim, opts)
    assert p.elements == tuple(range(24)) and not p.sampled
    model = catnet.compile(module, "bad", rngs=nnx.Rngs(0))
    model.eval()
    result = verify.measure(model, p, batch=3, seed=0)
    x = verify.draw_inputs(p, 3, np.random.default_rng([0, 1]))[0]
    fx = np.maximum(x, 0) + np.arange(4, dtype=np.float32)[None, :, None]
    assert result.error == pytest.approx(3.0, abs=1e-6)
    assert result.scale == pytest.approx(float(np.abs(fx).max()))
    assert result.relative == pytest.approx(3.0 / max(1.0, result.scale))
    moved = parse("S4").models[result.worst]
    assert max(abs(j - moved[j]) for j in range(4)) == 3  # type: ignore[index]
    assert not result.holds(1e-5) and result.holds(1.0)


def test_outputs_that_are_not_finite_fail() -> None:
    p: Any = None
    assert not verify.Result(p, math.nan, 1.0, 0).holds(1.0)
    assert not verify.Result(p, 0.0, math.inf, 0).holds(1.0)
    assert verify.Result(p, 2e-5, 4.0, 0).holds(1e-5)  # relative to max(1, max |f(x)|)
    assert not verify.Result(p, 2e-5, 0.5, 0).holds(1e-5)


# -- elements, in words ---------------------------------------------------------------


def test_words_of_cyclic_and_dihedral_elements_read_back() -> None:
    c4 = parse("C4")
    assert [verify.word(c4, e) for e in range(4)] == ["e", "r", "r2", "r3"]
    for name in ("C4", "D4", "D3", "C1"):
        g = parse(name)
        words = [verify.word(g, e) for e in range(g.order)]
        assert len(set(words)) == g.order
        assert all(element(g, w) == e for e, w in enumerate(words) if e)
    assert "s" in [verify.word(parse("D4"), e) for e in range(8)]


def test_words_of_permutations_and_products() -> None:
    s3 = parse("S3")
    assert sorted(verify.word(s3, e) for e in range(6)) == ["(0 1 2)", "(0 1)", "(0 2 1)", "(0 2)", "(1 2)", "e"]
    assert verify.word(s3, s3.generators[0]) == "(0 1)"  # the generating transposition
    g = parse("C4 × C2")
    assert {verify.word(g, e) for e in range(g.order)} >= {"e", "(r, e)", "(e, r)", "(r3, r)"}


def test_small_groups_are_tried_whole_and_large_ones_sampled() -> None:
    rng = np.random.default_rng(0)
    assert verify.elements(parse("D4"), 3, rng) == (tuple(range(8)), False)
    s5 = parse("S5")
    chosen, sampled = verify.elements(s5, 10, np.random.default_rng(1))
    assert sampled and chosen[0] == s5.identity and set(s5.generators) <= set(chosen)
    assert len(chosen) == len(set(chosen)) == 1 + len(s5.generators) + 10
    assert verify.elements(s5, 10, np.random.default_rng(1)) == (chosen, True)  # seeded
    assert len(verify.elements(s5, 720, rng)[0]) == 120


# -- what cannot be verified ------------------------------------------------------------


@pytest.mark.parametrize(
    "text, argv, where, message",
    [
        (CLAIMS, ["--morphism", "plain"], ":11:10:", "`plain` makes no symmetry claim, so there is nothing to verify"),
        (CLAIMS, ["--morphism", "nope"], ":1:1:", "error[E0210]: no morphism named `nope`"),
        ("morphism f : R[3] -> R[3] = relu\n", [], ":1:1:", "makes no symmetry claim: no morphism says"),
        (CLAIMS, ["--samples", "0"], ":6:10:", "--samples must be a whole number from 1 to 720, not 0"),
        (CLAIMS, ["--batch", "many"], ":6:10:", "--batch must be a whole number from 1 to 1024, not 'many'"),
        (CLAIMS, ["--seed", "-1", "--morphism", "ds"], ":9:10:", "--seed must be a whole number from 0 to 4294967295, not -1"),
        (CLAIMS, ["--tolerance", "nan"], ":6:10:", "--tolerance must be a number 0 or more, not 'nan'"),
        ("object Set = R[5, 3] under S5\nmorphism raw : Z[2] @ Set -> Z[2] @ R[3] invariant under S5 = id @ global_avgpool\n",
         [], ":2:10:", "`raw` takes integer ids on its input Z[2], but no `embed` reads them"),
    ],
    ids=["no-claim", "unknown", "no-claims", "samples", "batch", "seed", "tolerance", "unread-ids"],
)
def test_requests_that_cannot_be_verified(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, argv: list[str], where: str, message: str
) -> None:
    path = _write(tmp_path, text)
    assert main(["verify", path, *argv]) == 1
    err = capsys.readouterr().err
    assert err.startswith(path + where), err
    assert message in err
    assert "E0210" in err or "error[E0708]" in err
    assert "Traceback" not in err


def test_a_morphism_without_a_claim_is_told_how_to_write_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", _write(tmp_path, CLAIMS), "--morphism", "plain"]) == 1
    err = capsys.readouterr().err
    assert "11 | morphism plain : R[3] -> R[3] = relu" in err
    assert "= help: write the claim after the signature, e.g. `morphism net : Image -> Logits invariant under C4 = …`" in err


GENERIC = """\
morphism f[c] : R[5, c] -> R[5, c] equivariant under S5 = relu
morphism t(h : R[3] -> R[3]) : R[3] -> R[3] invariant under C4 = h
"""


def test_generic_claims_are_skipped_in_a_whole_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, GENERIC + "morphism g : R[5, 2] -> R[5, 2] equivariant under S5 = f\n")
    assert main(["verify", path]) == 0
    captured = capsys.readouterr()
    assert list(_rows(captured.out)) == ["g"]
    assert "note: skipped `f`: the input R[5, c] of `f` has sizes that are not numbers (c)" in captured.err
    assert "note: skipped `t`: `t` takes morphism parameters" in captured.err
    assert main(["verify", path, "--morphism", "t"]) == 1  # named, it is an error
    assert f"{path}:2:10: error[E0708]: `t` takes morphism parameters, so it is no model to run" in capsys.readouterr().err
    path = _write(tmp_path, GENERIC, "generic.cat")
    assert main(["verify", path]) == 1  # nothing left to run
    assert f"{path}:1:10: error[E0708]: the input R[5, c] of `f` has sizes" in capsys.readouterr().err


def test_one_morphism_tries_the_elements_a_whole_file_run_tries(tmp_path: Path) -> None:
    module = load(_write(tmp_path, CLAIMS))
    opts = verify.Options(samples=5, batch=1, seed=3, tolerance=1e-5)
    claim = module.definitions["ds"].decl.claim
    assert verify.plan(module, "ds", claim, opts).elements == verify.plan(module, "ds", claim, opts).elements
    other = verify.plan(module, "ds", claim, verify.Options(samples=5, batch=1, seed=4, tolerance=1e-5))
    assert other.elements != verify.plan(module, "ds", claim, opts).elements


def test_the_options_are_checked_before_jax_is_needed() -> None:
    args = argparse.Namespace(samples="5", batch="2", seed="3", tolerance="1e-4")
    assert verify.options(args) == verify.Options(5, 2, 3, 1e-4)
    assert verify.options(argparse.Namespace(samples="1", batch="1", seed="0", tolerance="0")).tolerance == 0.0  # exact


def test_the_command_line_exits_1_without_a_traceback(tmp_path: Path) -> None:
    path = _write(tmp_path, CLAIMS)
    proc = subprocess.run([sys.executable, "-m", "catnet", "verify", path, "--batch", "0"],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 1
    assert "error[E0708]: --batch must be a whole number from 1 to 1024, not 0" in proc.stderr
    assert "Traceback" not in proc.stderr
