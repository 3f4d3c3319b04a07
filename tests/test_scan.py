"""The trace ``scan[S](cell)`` lowered to ``jax.lax.scan``, against a hand-unrolled loop.

The cell is compiled as a model of its own, given the scan's cell weights,
and run step by step in Python from a zero state: the scan must give the
same outputs to 1e-5.  Also: ``examples/rnn.cat`` (a plain tanh RNN reading
a digit one 8-pixel row per step) trains to at least 0.9 test accuracy.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import catnet

from conftest import ROOT

#: One state wire; the cell emits a different output than its state.
ONE_STATE = """
object State = R[4]
morphism cell : State ⊗ R[3] -> State ⊗ R[2] = concat ; dense ; tanh ; copy ; (id ⊗ dense)
morphism net : R[5, 3] -> R[5, 2] = scan[State](cell)
main net
"""

#: Two state wires (a state and a running memory), written with named wires.
TWO_STATES = """
object State = R[4]
object Mem = R[4]
morphism cell(h : State, m : Mem, x : R[3]) -> State ⊗ Mem ⊗ R[2] {
  a = tanh(dense(concat(h, x)))
  b = m + dense(a)
  return a, b, dense(concat(a, b))
}
morphism net : R[5, 3] -> R[5, 2] = scan[State ⊗ Mem](cell)
main net
"""

#: Dropout inside the cell: off in evaluation mode, so the scan is deterministic there.
DROPOUT = """
object State = R[6]
morphism cell : State ⊗ R[3] -> State ⊗ State = concat ; dense ; dropout(0.5) ; tanh ; copy
morphism net : R[7, 3] -> R[7, 6] = scan[State](cell)
main net
"""


def _pair(text: str, tmp_path: Path, name: str) -> tuple[nnx.Module, nnx.Module]:
    """The scan model and its cell as a model of its own, holding the scan's cell weights."""
    path = tmp_path / f"{name}.cat"
    path.write_text(text, encoding="utf-8")
    model = catnet.compile(path, "net", rngs=nnx.Rngs(0))
    cell = catnet.compile(path, "cell", rngs=nnx.Rngs(1))
    weights = nnx.state(model, nnx.Param)["scan"]["cell"]
    nnx.update(cell, weights)
    return model, cell


def _unrolled(cell: nnx.Module, xs: jax.Array, state: tuple[int, ...]) -> jax.Array:
    """The cell run over the time axis in a Python loop, from a zero state."""
    batch, steps = xs.shape[:2]
    carry = [jnp.zeros((batch, d), jnp.float32) for d in state]
    ys = []
    for t in range(steps):
        out = cell(*carry, xs[:, t])
        carry, y = list(out[: len(state)]), out[len(state)]
        ys.append(y)
    return jnp.stack(ys, axis=1)


@pytest.mark.parametrize("text,state", [(ONE_STATE, (4,)), (TWO_STATES, (4, 4))], ids=["one_state", "two_states"])
def test_scan_is_the_unrolled_loop(text: str, state: tuple[int, ...], tmp_path: Path) -> None:
    model, cell = _pair(text, tmp_path, "net")
    xs = jax.random.normal(jax.random.key(3), (6, 5, 3), jnp.float32)
    got = model(xs)
    want = _unrolled(cell, xs, state)
    assert got.shape == (6, 5, 2)
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=1e-5, rtol=1e-5)
    # The state matters: a later step differs from the cell run from zero.
    fresh = cell(*[jnp.zeros((6, d)) for d in state], xs[:, 2])[len(state)]
    assert not np.allclose(np.asarray(got[:, 2]), np.asarray(fresh), atol=1e-4)


def test_dropout_in_the_cell_is_off_in_eval_mode(tmp_path: Path) -> None:
    model, cell = _pair(DROPOUT, tmp_path, "dropout")
    model.eval()
    cell.eval()
    xs = jax.random.normal(jax.random.key(4), (5, 7, 3), jnp.float32)
    got = model(xs)
    np.testing.assert_allclose(np.asarray(got), np.asarray(_unrolled(cell, xs, (6,))), atol=1e-5, rtol=1e-5)
    np.testing.assert_array_equal(np.asarray(model(xs)), np.asarray(got))


RNN_COMMAND = ["examples/rnn.cat", "--seed", "0", "--epochs", "15", "--lr", "3e-3", "--batch-size", "32"]


def test_rnn_example_reads_digits_row_by_row(tmp_path: Path) -> None:
    """``catnet train examples/rnn.cat --seed 0 --epochs 15 --lr 3e-3 --batch-size 32`` (about 10 s)."""
    metrics = tmp_path / "m.json"
    cmd = [sys.executable, "-m", "catnet", "train", *RNN_COMMAND, "--quiet", "--out", str(tmp_path / "run"),
           "--metrics-out", str(metrics)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(metrics.read_text(encoding="utf-8"))
    assert result["test_accuracy"] >= 0.9, result
