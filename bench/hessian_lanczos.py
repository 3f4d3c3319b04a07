"""Benchmark: the top-10 Hessian eigenvalues of the trained digits CNN by Lanczos.

The model is ``lenet`` of ``examples/digits_cnn.cat`` (13,706 parameters).
Without ``--checkpoint`` the script trains it first with ``catnet train``
(``--epochs`` epochs, seed 0, into a temporary run directory); with
``--checkpoint DIR`` it restores the newest checkpoint of that run
directory.  The loss is the cross-entropy of the model in evaluation mode,
averaged over the first ``--examples`` training digits (the split of
``catnet train``), in batches of ``--batch-size``.

It prints the time of Lanczos with full reorthogonalisation for the top 10
eigenvalues (the **first** call, compilation included, and a second call
with the program compiled), the eigenvalues, the time of one
Hessian-vector product, and for comparison power iteration with deflation on the same
problem and Hutchinson's trace.

    python bench/hessian_lanczos.py [--checkpoint RUN_DIR] [--examples 1000] [--epochs 10]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from flax import nnx  # noqa: E402

import catnet  # noqa: E402
from catnet import data as datalib  # noqa: E402
from catnet.analysis import hessian  # noqa: E402
from catnet.train import restore  # noqa: E402

EXAMPLE = ROOT / "examples" / "digits_cnn.cat"


def trained(checkpoint: str | None, epochs: int, workdir: str) -> nnx.Module:
    """The digits CNN with trained weights: restored from ``checkpoint``, or trained now into ``workdir``."""
    model = catnet.compile(str(EXAMPLE), rngs=nnx.Rngs(0))
    if checkpoint is None:
        checkpoint = str(Path(workdir) / "run")
        command = [sys.executable, "-m", "catnet", "train", str(EXAMPLE), "--epochs", str(epochs), "--out", checkpoint, "--quiet"]
        started = time.perf_counter()
        subprocess.run(command, check=True, cwd=ROOT)
        print(f"trained {epochs} epochs in {time.perf_counter() - started:.1f}s")
    return restore(model, checkpoint)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=None, help="a `catnet train` run directory of examples/digits_cnn.cat")
    parser.add_argument("--epochs", type=int, default=10, help="epochs to train when no checkpoint is given")
    parser.add_argument("--examples", type=int, default=1000, help="digits the loss is averaged over")
    parser.add_argument("--batch-size", type=int, default=512, help="examples per batch of the Hessian-vector product")
    parser.add_argument("--k", type=int, default=10)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as workdir:
        model = trained(args.checkpoint, args.epochs, workdir)
    dataset = datalib.load("digits", model.dom, model.cod)
    train, _ = datalib.split(dataset, 0.2, seed=0)
    x, y = train.inputs[0][: args.examples], train.target[: args.examples]
    problem = hessian.problem_from_model(model, x, y, batch_size=args.batch_size)
    print(f"digits CNN: {problem.size} parameters, {problem.examples} examples, loss {hessian.value(problem):.4f}")

    for label in ("first call (compiles)", "second call"):
        started = time.perf_counter()
        top = hessian.top_eigenvalues(problem, k=args.k, method="lanczos")
        print(f"lanczos top-{args.k}, {label}: {time.perf_counter() - started:.2f}s")
    print("eigenvalues:", np.array2string(top.values, precision=4, max_line_width=120))

    calls = []
    product = hessian.hvp(problem)
    probe = np.random.default_rng(0).standard_normal(problem.size).astype(np.float32)
    product(probe).block_until_ready()
    started = time.perf_counter()
    for _ in range(10):
        calls.append(product(probe))
    calls[-1].block_until_ready()
    print(f"one Hessian-vector product over {problem.examples} digits: {(time.perf_counter() - started) / 10 * 1e3:.1f} ms")

    started = time.perf_counter()
    power = hessian.top_eigenvalues(problem, k=3, method="power", iters=300, tol=1e-5)
    print(f"power iteration top-3: {time.perf_counter() - started:.2f}s ->", np.array2string(power.values, precision=4))
    started = time.perf_counter()
    tr = hessian.trace(problem, samples=64)
    print(f"Hutchinson trace (64 probes): {tr.value:.3f} ± {tr.stderr:.3f} in {time.perf_counter() - started:.2f}s")


if __name__ == "__main__":
    main()
