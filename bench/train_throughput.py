"""Training throughput and mixed precision, on whatever device JAX has.

Two measurements:

* the default: the transformer example (``examples/transformer.cat``)
  trained for ``--steps`` Adam steps on random tokens (next-token cross
  entropy), in ``--precision fp32`` or ``bf16``; it prints tokens per second
  and the model FLOPs utilisation (MFU).  The model FLOPs of one step are
  the usual estimate ``6 · parameters · tokens`` (forward and backward of
  every weight once per token).  XLA's own count for the compiled step
  (``compiled.cost_analysis()``) is printed beside it but not used: XLA
  counts the body of a loop once, and ``repeat 4 block`` is one
  ``jax.lax.scan``, so it undercounts the blocks.  The peak is looked up per device kind in
  :data:`PEAK_TFLOPS` (dense tensor-core figures; float32 matmuls run as
  TF32 on GPUs and as bfloat16 passes on TPUs at JAX's default precision),
  or given with ``--peak-tflops``; on a CPU MFU is ``n/a`` without it.

* ``--digits``: the digits CNN (``examples/digits_cnn.cat``) trained on the
  digits as ``catnet train`` does it (same data and split, Adam at 1e-3,
  batch 64, a shuffle per epoch), once in float32 and once with
  ``dtype=bfloat16`` (float32 weights, loss in float32), printing the test
  accuracy of each; then both time the same step in alternating rounds
  (the fastest round of each counts, so a shared machine's load hits both
  alike) for the step-time ratio bf16/fp32.

    python bench/train_throughput.py                      # fp32, CPU: about 10 s
    python bench/train_throughput.py --precision bf16 --batch-size 64 --steps 50
    python bench/train_throughput.py --digits --epochs 30
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from collections.abc import Callable
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TRANSFORMER = ROOT / "examples" / "transformer.cat"
DIGITS_CNN = ROOT / "examples" / "digits_cnn.cat"

#: Dense peak TFLOP/s per device, (float32 at JAX's default precision, bfloat16),
#: by a substring of ``jax.Device.device_kind``, most specific first.
PEAK_TFLOPS: tuple[tuple[str, str, float, float], ...] = (
    ("H200", "NVIDIA H200", 494.7, 989.4),
    ("H100 PCIe", "NVIDIA H100 PCIe", 378.0, 756.0),
    ("H100", "NVIDIA H100 SXM", 494.7, 989.4),
    ("A100", "NVIDIA A100", 156.0, 312.0),
    ("TPU v5 lite", "TPU v5e", 197.0, 197.0),
    ("TPU v5e", "TPU v5e", 197.0, 197.0),
    ("TPU v5", "TPU v5p", 459.0, 459.0),
    ("TPU v4", "TPU v4", 275.0, 275.0),
)


def peak_tflops(device_kind: str, precision: str) -> tuple[str, float] | None:
    """The table's name and peak TFLOP/s of a device kind, or ``None`` for one it does not list (CPUs)."""
    for key, name, fp32, bf16 in PEAK_TFLOPS:
        if key.lower() in device_kind.lower():
            return name, bf16 if precision == "bf16" else fp32
    return None


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def positive_real(text: str) -> float:
    value = float(text)
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a positive number, not {text}")
    return value


def make_step(graphdef: Any, tx: Any, loss_of: Callable[[Any, Any, Any], Any]) -> Callable[..., Any]:
    """The jitted training step over split state, as ``catnet.train.make_functions`` builds it.

    ``loss_of(model, x, y)`` is the batch loss (a float32 scalar).
    """
    import jax
    import optax
    from flax import nnx

    def loss_fn(params: Any, rest: Any, x: Any, y: Any) -> tuple[Any, Any]:
        model = nnx.merge(graphdef, params, rest, copy=True)
        loss = loss_of(model, x, y)
        _, _, rest = nnx.split(model, nnx.Param, ...)
        return loss, rest

    @jax.jit
    def step(params: Any, rest: Any, opt_state: Any, x: Any, y: Any) -> Any:
        (loss, rest), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, rest, x, y)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), rest, opt_state, loss

    return step


def cross_entropy(model: Any, x: Any, y: Any) -> Any:
    """Mean cross entropy of integer labels, computed in float32 from the model's logits."""
    import jax.numpy as jnp
    import optax

    return optax.softmax_cross_entropy_with_integer_labels(model(x).astype(jnp.float32), y).mean()


def dtype_of(precision: str) -> Any:
    import jax.numpy as jnp

    return jnp.bfloat16 if precision == "bf16" else None


# -- tokens per second and MFU ---------------------------------------------------------


def throughput(precision: str, batch: int, length: int, steps: int, peak: float | None) -> None:
    import jax
    import optax
    from flax import nnx

    import catnet

    model = catnet.compile(TRANSFORMER, rngs=nnx.Rngs(0), dtype=dtype_of(precision))
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    n_params = sum(int(np.prod(p.shape)) for p in jax.tree.leaves(params))
    tx = optax.adam(1e-3)
    opt_state = tx.init(params)
    step = make_step(graphdef, tx, cross_entropy)
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 256, (batch, length + 1)).astype(np.int32)
    x, y = jax.device_put(tokens[:, :-1]), jax.device_put(tokens[:, 1:])

    compiled = step.lower(params, rest, opt_state, x, y).compile()
    costs = compiled.cost_analysis()
    costs = costs[0] if isinstance(costs, (list, tuple)) else costs  # a list per device in older JAX
    xla_flops = float(costs.get("flops", 0.0)) if costs else 0.0
    params, rest, opt_state, loss = compiled(params, rest, opt_state, x, y)  # warm-up, not timed
    jax.block_until_ready(loss)
    first = float(loss)
    t0 = time.perf_counter()
    for _ in range(steps):
        params, rest, opt_state, loss = compiled(params, rest, opt_state, x, y)
    jax.block_until_ready((params, loss))
    seconds = (time.perf_counter() - t0) / steps

    device = jax.devices()[0]
    n_tokens = batch * length
    estimate = 6.0 * n_params * n_tokens
    print(f"device        {device.platform} ({device.device_kind}), {jax.device_count()} device(s); one used")
    print(f"model         {TRANSFORMER.name}: {n_params:,} parameters, precision {precision}")
    print(f"batch         {batch} sequences x {length} tokens, {steps} timed steps after one warm-up")
    print(f"loss          {first:.4f} -> {float(loss):.4f}")
    print(f"step time     {seconds * 1e3:.2f} ms")
    print(f"tokens/s      {n_tokens / seconds:,.0f}")
    print(f"FLOPs/step    {estimate:.4g} (6*params*tokens); XLA's cost analysis: {xla_flops:.4g} (counts a scan's body once)")
    known = peak_tflops(device.device_kind, precision)
    if peak is not None:
        where = "--peak-tflops"
    elif known is not None:
        where, peak = f"table: {known[0]}", known[1]
    if peak is None:
        print("MFU           n/a (no peak known for this device: give --peak-tflops)")
        return
    achieved = estimate / seconds / 1e12
    print(f"MFU           {100 * achieved / peak:.2f}% ({achieved:.3f} TFLOP/s of {peak:g} peak, {where})")


# -- the digits CNN in float32 and bfloat16 ------------------------------------------------


def digits_run(precision: str, epochs: int, batch: int, seed: int) -> tuple[float, Callable[[], None]]:
    """Train the digits CNN; its test accuracy, and a function that runs one more training step."""
    import jax
    import jax.numpy as jnp
    import optax
    from flax import nnx

    import catnet
    from catnet import data as datalib

    model = catnet.compile(DIGITS_CNN, rngs=nnx.Rngs(seed), dtype=dtype_of(precision))
    dataset = datalib.load("digits", model.dom, model.cod, seed=seed, test_fraction=0.2)
    train, test = datalib.split(dataset, 0.2)
    (train_x,), train_y = train.inputs, train.target
    (test_x,), test_y = test.inputs, test.target
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    tx = optax.adam(1e-3)
    opt_state = tx.init(params)
    step = make_step(graphdef, tx, cross_entropy)
    order_rng = np.random.default_rng(seed)
    n = len(train_y)
    for _ in range(epochs):
        order = order_rng.permutation(n)
        for start in range(0, n, batch):
            index = order[start : start + batch]
            params, rest, opt_state, _ = step(params, rest, opt_state, train_x[index], train_y[index])
    trained = nnx.merge(graphdef, params, rest)
    trained.eval()
    logits = jax.jit(lambda m, x: m(x))(trained, test_x)
    accuracy = float(jnp.mean(jnp.argmax(logits.astype(jnp.float32), axis=-1) == test_y))

    x, y = jax.device_put(train_x[:batch]), jax.device_put(train_y[:batch])
    state = [params, rest, opt_state]

    def one_step() -> None:
        state[0], state[1], state[2], loss = step(*state, x, y)
        jax.block_until_ready(loss)

    return accuracy, one_step


def seconds_per_step(one_step: Callable[[], None], steps: int) -> float:
    t0 = time.perf_counter()
    for _ in range(steps):
        one_step()
    return (time.perf_counter() - t0) / steps


def digits(epochs: int, batch: int, seed: int, rounds: int = 5, steps: int = 50) -> None:
    """Accuracy of each precision, then step times measured in alternating rounds (the fastest round of each)."""
    import jax

    device = jax.devices()[0]
    print(f"device {device.platform} ({device.device_kind}); digits CNN, {epochs} epochs, batch {batch}, seed {seed}")
    runs = {}
    for precision in ("fp32", "bf16"):
        accuracy, runs[precision] = digits_run(precision, epochs, batch, seed)
        print(f"{precision}  test accuracy {accuracy:.4f}")
    # Alternating rounds, the fastest of each: a shared machine's load hits both alike.
    best = {precision: math.inf for precision in runs}
    for _ in range(rounds):
        for precision, one_step in runs.items():
            best[precision] = min(best[precision], seconds_per_step(one_step, steps))
    for precision, seconds in best.items():
        print(f"{precision}  step {seconds * 1e3:.3f} ms (fastest of {rounds} rounds of {steps} steps)")
    print(f"step-time ratio bf16/fp32 {best['bf16'] / best['fp32']:.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32", help="computation dtype (parameters stay float32)")
    parser.add_argument("--batch-size", type=positive, default=None, help="sequences per step (default 16), or digits per step with --digits (default 64)")
    parser.add_argument("--steps", type=positive, default=10, help="timed training steps after one warm-up (default 10)")
    parser.add_argument("--seq-len", type=positive, default=64, help="tokens per sequence (default 64)")
    parser.add_argument("--peak-tflops", type=positive_real, default=None, help="peak TFLOP/s of one device, for MFU where the table has none")
    parser.add_argument("--digits", action="store_true", help="train the digits CNN in fp32 and bf16 instead: accuracy and step-time ratio")
    parser.add_argument("--epochs", type=positive, default=30, help="with --digits: epochs per run (default 30)")
    parser.add_argument("--seed", type=int, default=0, help="with --digits: seed of weights, data and shuffles (default 0)")
    args = parser.parse_args(argv)
    if args.digits:
        digits(args.epochs, args.batch_size or 64, args.seed)
    else:
        throughput(args.precision, args.batch_size or 16, args.seq_len, args.steps, args.peak_tflops)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
