"""Benchmark: catnet's sharded training step against the same step written by hand with ``jax.jit`` and ``NamedSharding``.

Both train the same compiled model (``catnet.compile`` of ``--file``, the
digits CNN by default, or the transformer on token sequences) with adam on
a mesh of ``--devices`` CPU devices (forced with
``XLA_FLAGS=--xla_force_host_platform_device_count``, set by this script
before JAX is imported) laid out ``data=N``:

* **catnet**: the step of ``catnet.train.make_functions`` jitted by
  ``catnet.parallel.placement.train_step`` — the data resident and
  replicated, each step's batch index placed from the host split over
  ``data`` (``Placement.index``), the gather inside the step;
* **by hand**: a plain Flax/optax step (``nnx.merge`` the split state, the
  model's logits, softmax cross-entropy, ``optax.adam``), ``jax.jit`` with
  ``in_shardings``/``out_shardings`` of ``NamedSharding(mesh, P())`` for
  the state and ``NamedSharding(mesh, P("data"))`` for the batch, which
  the host gathers and ``jax.device_put``\\ s every step (the textbook way).

Each round times ``--steps`` steps of each (awaited one by one), the order
alternating between rounds; the **ratio** printed is the median over
rounds of catnet / by hand (target: at most 1.1).

    python bench/sharded_step.py [--file examples/digits_cnn.cat] [--devices 2] [--rounds 15] [--steps 30] [--batch 64]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", default=str(ROOT / "examples" / "digits_cnn.cat"))
    parser.add_argument("--devices", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch", type=int, default=64)
    return parser.parse_args()


def _data(file: str, n: int) -> tuple[Any, Any]:
    """Inputs and integer targets: the digits for an image model, counting token sequences for the transformer."""
    import numpy as np

    if "transformer" in Path(file).name:
        rng = np.random.default_rng(0)
        tokens = ((rng.integers(0, 256, (n, 1)) + np.arange(33)) % 256).astype(np.int32)
        return tokens[:, :-1], tokens[:, 1:]
    from sklearn.datasets import load_digits

    digits = load_digits()
    return (digits.data / 16.0).astype(np.float32)[:n], digits.target.astype(np.int32)[:n]


def _timed(step: Callable[[int], Any], steps: int, start: int) -> float:
    """Seconds per step over ``steps`` steps, each awaited."""
    t = time.perf_counter()
    for s in range(start, start + steps):
        step(s).block_until_ready()
    return (time.perf_counter() - t) / steps


def main() -> int:
    args = _arguments()
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={args.devices}".strip()
    sys.path.insert(0, str(ROOT))
    import jax
    import numpy as np
    import optax
    from flax import nnx
    from jax.sharding import NamedSharding, PartitionSpec

    import catnet
    from catnet import parallel, train
    from catnet.parallel import placement

    x, y = _data(args.file, 1024)
    n = len(x)
    orders = np.random.default_rng(0).integers(0, n, (512, args.batch)).astype(np.int32)

    model = catnet.compile(args.file, rngs=nnx.Rngs(0))
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    model.eval()
    eval_graphdef, _, _ = nnx.split(model, nnx.Param, ...)
    model.train()
    tx = optax.adam(1e-3)
    opt_state = tx.init(params)
    mesh = parallel.build(parallel.parse(f"data={args.devices}"))

    # catnet: make_functions' step on the placement of catnet.parallel
    plan = placement.plan(mesh, model, params, rest, opt_state)
    step, _ = train.make_functions(graphdef, eval_graphdef, tx, "xent")
    sharded = placement.train_step(step, plan)
    state = list(placement.put((params, rest, opt_state), plan.state()))
    xs, ys = placement.put(((x,), y), plan.replicated)

    def catnet_step(s: int) -> Any:
        index = plan.index(orders[s % len(orders)])
        state[0], state[1], state[2], loss = sharded(state[0], state[1], state[2], xs, ys, index)
        return loss

    # by hand: jax.jit with NamedSharding, the batch gathered on the host
    whole, split = NamedSharding(mesh, PartitionSpec()), NamedSharding(mesh, PartitionSpec("data"))

    def loss_fn(p: Any, r: Any, bx: Any, by: Any) -> Any:
        m = nnx.merge(graphdef, p, r, copy=True)
        loss = optax.softmax_cross_entropy_with_integer_labels(m(bx), by).mean()
        return loss, nnx.split(m, nnx.Param, ...)[2]

    @jax.jit
    def hand(p: Any, r: Any, o: Any, bx: Any, by: Any) -> Any:
        (loss, r), grads = jax.value_and_grad(loss_fn, has_aux=True)(p, r, bx, by)
        updates, o = tx.update(grads, o, p)
        return optax.apply_updates(p, updates), r, o, loss

    hand_sharded = jax.jit(hand, in_shardings=(whole, whole, whole, split, split), out_shardings=(whole, whole, whole, whole))
    hand_state = list(jax.device_put((params, rest, opt_state), whole))

    def hand_step(s: int) -> Any:
        rows = orders[s % len(orders)]
        bx, by = jax.device_put((x[rows], y[rows]), split)
        hand_state[0], hand_state[1], hand_state[2], loss = hand_sharded(*hand_state, bx, by)
        return loss

    first = [float(catnet_step(s)) for s in range(3)]
    second = [float(hand_step(s)) for s in range(3)]
    assert np.allclose(first, second, atol=1e-4), (first, second)  # the same model, data and loss: the same numbers
    ratios, times = [], {"catnet": [], "hand": []}
    start = 3
    for r in range(args.rounds):
        pair = (("catnet", catnet_step), ("hand", hand_step))
        for name, fn in pair if r % 2 == 0 else pair[::-1]:
            times[name].append(_timed(fn, args.steps, start))
        start += args.steps
        ratios.append(times["catnet"][-1] / times["hand"][-1])
    print(f"file {Path(args.file).name}, mesh data={args.devices} on {jax.device_count()} {jax.default_backend()} devices, batch {args.batch}")
    for name in ("catnet", "hand"):
        print(f"  {name:7s} step {1e3 * statistics.median(times[name]):.3f} ms (median of {args.rounds} rounds of {args.steps} steps)")
    print(f"  ratio catnet / by hand: {statistics.median(ratios):.3f} (median of rounds; target <= 1.1)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
