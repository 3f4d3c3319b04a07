"""Benchmark: catnet-compiled models against hand-written Flax NNX models.

For each architecture (the digits MLP, the digits CNN, a pre-norm
transformer block, a GRU reading digit images row by row, and a GPT-style
language model with learned positions and a head tied to its embedding)
it builds the catnet model from ``.cat`` text and a
hand-written ``nnx.Module`` of the same layers, and times one training step
(forward, backward, adam) for both with the same jit style:
``jax.jit`` of a pure function of the ``nnx.split`` state.  The two run in
one process, alternating, and the reported step-time ratio is the median
over the paired runs of catnet/hand-written; the compile-time ratio compares
``jit(...).lower(...).compile()`` of the two steps.

It also compiles the training step of ``repeat 4`` and ``repeat 48``
transformer blocks: ``repeat`` lowers to a scan over stacked parameters, so
XLA compile time should not grow with the depth.

    python bench/bench_lower.py [--rounds 30] [--steps 30] [--markdown]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import flax  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from flax import nnx  # noqa: E402

import catnet  # noqa: E402

MLP = """
object Image  = R[64]
object Hidden = R[128]
object Logits = R[10]
morphism encoder : Image -> Hidden = dense ; relu
morphism head    : Hidden -> Logits = dense
morphism mlp : Image -> Logits = encoder ; dropout(0.1) ; head
main mlp
"""

CNN = """
object Pixels = R[64]
object Image  = R[8, 8, 1]
object Logits = R[10]
morphism stage1 : Image -> R[4, 4, 16] = conv(16, kernel=3) ; relu ; maxpool(window=2)
morphism stage2 : R[4, 4, 16] -> R[2, 2, 32] = conv(32, kernel=3) ; relu ; maxpool(window=2)
morphism classifier : R[2, 2, 32] -> Logits =
  flatten ; (dense : R[128] -> R[64]) ; relu ; dropout(0.2) ; dense
morphism lenet : Pixels -> Logits = reshape(8, 8, 1) ; stage1 ; stage2 ; classifier
main lenet
"""

BLOCK = """
object Stream = Seq[T](R[64])
morphism mlp : Stream -> Stream = (dense : Stream -> Seq[T](R[256])) ; gelu ; dense
morphism block(x : Stream) -> Stream {
  h = x + attention(layernorm(x), heads=4, causal=true)
  return h + mlp(layernorm(h))
}
morphism stack : Stream -> Stream = repeat DEPTH block
main MAIN
"""


GRU = """
object Rows = R[8, 8]
# one GRU step (Cho et al. 2014): the state h is also the output
morphism cell(h : R[64], x : R[8]) -> R[64] ⊗ R[64] {
  hx = concat(h, x)
  z = sigmoid(dense(hx, features=64))
  r = sigmoid(dense(hx, features=64))
  n = tanh(dense(concat(r * h, x), features=64))
  y = (1 - z) * n + z * h
  return y, y
}
morphism gru : R[64] -> R[10] = reshape(8, 8) ; scan[R[64]](cell) ; last(axis=0) ; dense
main gru
"""

TIED = """
shared wte[T] = (embed(vocab=512, features=64) : Z[T] -> R[T, 64])
morphism positions[T] : I -> R[T, 64] = learned(128, 64) ; slice(size=T, axis=0)
morphism block[T](x : R[T, 64]) -> R[T, 64] {
  h = x + attention(layernorm(x), heads=4, causal=true)
  return h + dense(gelu(dense(layernorm(h), features=256)), features=64)
}
morphism lm[T](ids : Z[T]) -> R[T, 512] {
  h = block(wte(ids) + positions())
  return transposed(layernorm(h), of=wte)
}
main lm
"""


class HandMLP(nnx.Module):
    def __init__(self, rngs: nnx.Rngs) -> None:
        self.dense1 = nnx.Linear(64, 128, rngs=rngs)
        self.dropout = nnx.Dropout(0.1, rngs=rngs)
        self.dense2 = nnx.Linear(128, 10, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.dense2(self.dropout(jax.nn.relu(self.dense1(x))))


class HandCNN(nnx.Module):
    def __init__(self, rngs: nnx.Rngs) -> None:
        self.conv1 = nnx.Conv(1, 16, kernel_size=(3, 3), rngs=rngs)
        self.conv2 = nnx.Conv(16, 32, kernel_size=(3, 3), rngs=rngs)
        self.dense1 = nnx.Linear(128, 64, rngs=rngs)
        self.dropout = nnx.Dropout(0.2, rngs=rngs)
        self.dense2 = nnx.Linear(64, 10, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        x = x.reshape(x.shape[0], 8, 8, 1)
        x = nnx.max_pool(jax.nn.relu(self.conv1(x)), (2, 2), strides=(2, 2))
        x = nnx.max_pool(jax.nn.relu(self.conv2(x)), (2, 2), strides=(2, 2))
        x = x.reshape(x.shape[0], -1)
        return self.dense2(self.dropout(jax.nn.relu(self.dense1(x))))


class HandBlock(nnx.Module):
    def __init__(self, rngs: nnx.Rngs) -> None:
        self.ln1 = nnx.LayerNorm(64, rngs=rngs)
        self.attention = nnx.MultiHeadAttention(4, 64, decode=False, deterministic=True, rngs=rngs, keep_rngs=False)
        self.ln2 = nnx.LayerNorm(64, rngs=rngs)
        self.up = nnx.Linear(64, 256, rngs=rngs)
        self.down = nnx.Linear(256, 64, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        mask = nnx.make_causal_mask(jnp.ones(x.shape[:2]))
        h = x + self.attention(self.ln1(x), mask=mask)
        return h + self.down(jax.nn.gelu(self.up(self.ln2(h))))


class HandGRU(nnx.Module):
    def __init__(self, rngs: nnx.Rngs) -> None:
        self.z = nnx.Linear(72, 64, rngs=rngs)
        self.r = nnx.Linear(72, 64, rngs=rngs)
        self.n = nnx.Linear(72, 64, rngs=rngs)
        self.head = nnx.Linear(64, 10, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        rows = jnp.moveaxis(x.reshape(x.shape[0], 8, 8), 1, 0)

        def step(h: jax.Array, xt: jax.Array) -> tuple[jax.Array, jax.Array]:
            hx = jnp.concatenate([h, xt], axis=-1)
            z, r = jax.nn.sigmoid(self.z(hx)), jax.nn.sigmoid(self.r(hx))
            n = jnp.tanh(self.n(jnp.concatenate([r * h, xt], axis=-1)))
            h = (1 - z) * n + z * h
            return h, h

        # The outputs of every step, then the last one, as with `nnx.RNN`.
        _, hs = jax.lax.scan(step, jnp.zeros((x.shape[0], 64), x.dtype), rows)
        return self.head(jnp.moveaxis(hs, 0, 1)[:, -1])


class HandTied(nnx.Module):
    def __init__(self, rngs: nnx.Rngs) -> None:
        self.wte = nnx.Embed(512, 64, rngs=rngs)
        self.positions = nnx.Param(jax.random.normal(rngs.params(), (128, 64)) * 0.02)
        self.block = HandBlock(rngs)
        self.ln = nnx.LayerNorm(64, rngs=rngs)

    def __call__(self, ids: jax.Array) -> jax.Array:
        h = self.wte(ids) + self.positions[: ids.shape[1]]
        return self.wte.attend(self.ln(self.block(h)))


def block_source(depth: int | None) -> str:
    if depth is None:
        return BLOCK.replace("DEPTH", "1").replace("MAIN", "block")
    return BLOCK.replace("DEPTH", str(depth)).replace("MAIN", "stack")


def make_step(model: nnx.Module, loss: Callable[[jax.Array, jax.Array], jax.Array]) -> tuple[Callable[..., Any], Any]:
    """A jitted adam step over the split state, the same for both kinds of model."""
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    tx = optax.adam(1e-3)
    opt_state = tx.init(params)

    def loss_fn(params: Any, rest: Any, x: jax.Array, y: jax.Array) -> tuple[jax.Array, Any]:
        m = nnx.merge(graphdef, params, rest, copy=True)
        value = loss(m(x), y)
        return value, nnx.split(m, nnx.Param, ...)[2]

    @jax.jit
    def step(params: Any, rest: Any, opt_state: Any, x: jax.Array, y: jax.Array) -> Any:
        (value, rest), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, rest, x, y)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), rest, opt_state, value

    return step, (params, rest, opt_state)


def xent(logits: jax.Array, y: jax.Array) -> jax.Array:
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


def mse(out: jax.Array, y: jax.Array) -> jax.Array:
    return jnp.mean(jnp.square(out - y))


def compile_seconds(step: Callable[..., Any], state: Any, x: Any, y: Any) -> tuple[float, float]:
    """(trace + lower seconds, XLA compile seconds) of one step."""
    t0 = time.perf_counter()
    lowered = step.lower(*state, x, y)
    t1 = time.perf_counter()
    lowered.compile()
    return t1 - t0, time.perf_counter() - t1


class Runner:
    """A model's step, its state, a batch, and a timer over ``steps`` calls."""

    def __init__(self, model: nnx.Module, loss: Callable[..., Any], x: Any, y: Any) -> None:
        self.model, self.loss = model, loss
        self.step, self.state = make_step(model, loss)
        self.x, self.y = x, y

    def compile_time(self) -> float:
        """XLA compile seconds of a fresh copy of the step (no cache hit)."""
        step, state = make_step(self.model, self.loss)
        return compile_seconds(step, state, self.x, self.y)[1]

    def time(self, steps: int) -> float:
        state = self.state
        value = None
        t0 = time.perf_counter()
        for _ in range(steps):
            *state, value = self.step(*state, self.x, self.y)
        jax.block_until_ready(value)
        self.state = tuple(state)
        return (time.perf_counter() - t0) / steps


def paired(ours: Callable[[], float], theirs: Callable[[], float], rounds: int) -> tuple[list[float], list[float]]:
    """``rounds`` measurements of each, alternating which goes first."""
    a, b = [], []
    for r in range(rounds):
        if r % 2 == 0:
            a.append(ours())
            b.append(theirs())
        else:
            b.append(theirs())
            a.append(ours())
    return a, b


def compare(name: str, source: str, hand: type, loss: Callable[..., Any], x: Any, y: Any, rounds: int, steps: int, compiles: int) -> dict[str, Any]:
    ours = Runner(catnet.compile(source, rngs=nnx.Rngs(0)), loss, x, y)
    theirs = Runner(hand(nnx.Rngs(0)), loss, x, y)
    ca, cb = paired(ours.compile_time, theirs.compile_time, compiles)
    ours.time(steps)  # compile and warm both up outside the measurement
    theirs.time(steps)
    a, b = paired(lambda: ours.time(steps), lambda: theirs.time(steps), rounds)
    return {
        "model": name,
        "catnet_ms": statistics.median(a) * 1e3,
        "hand_ms": statistics.median(b) * 1e3,
        "step_ratio": statistics.median(x / y for x, y in zip(a, b)),
        "compile_ratio": statistics.median(x / y for x, y in zip(ca, cb)),
        "catnet_compile_s": statistics.median(ca),
        "hand_compile_s": statistics.median(cb),
    }


def depth_scaling(x: Any, y: Any, compiles: int) -> dict[int, tuple[float, float]]:
    """Median (trace + lower, XLA compile) seconds of the step at depth 4 and 48."""
    steps = {}
    for depth in (4, 48):
        model = catnet.compile(block_source(depth), rngs=nnx.Rngs(0))
        steps[depth] = model
    times: dict[int, list[tuple[float, float]]] = {4: [], 48: []}
    for r in range(compiles):
        for depth in ((4, 48) if r % 2 == 0 else (48, 4)):
            step, state = make_step(steps[depth], mse)
            times[depth].append(compile_seconds(step, state, x, y))
    return {d: (statistics.median(t for t, _ in v), statistics.median(c for _, c in v)) for d, v in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30, help="paired timing rounds (default 30)")
    parser.add_argument("--steps", type=int, default=30, help="steps per timing (default 30)")
    parser.add_argument("--compiles", type=int, default=3, help="paired compile timings (default 3)")
    parser.add_argument("--batch", type=int, default=64, help="batch size (default 64)")
    parser.add_argument("--markdown", action="store_true", help="print a markdown table")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    b = args.batch
    digits_x = jnp.asarray(rng.random((b, 64), dtype=np.float32))
    digits_y = jnp.asarray(rng.integers(0, 10, b).astype(np.int32))
    seq_x = jnp.asarray(rng.standard_normal((b, 32, 64), dtype=np.float32))
    seq_y = jnp.asarray(rng.standard_normal((b, 32, 64), dtype=np.float32))
    ids = jnp.asarray(rng.integers(0, 512, (b, 32)).astype(np.int32))
    next_ids = jnp.asarray(rng.integers(0, 512, (b, 32)).astype(np.int32))

    rows = [
        compare("mlp (digits_mlp)", MLP, HandMLP, xent, digits_x, digits_y, args.rounds, args.steps, args.compiles),
        compare("cnn (digits_cnn)", CNN, HandCNN, xent, digits_x, digits_y, args.rounds, args.steps, args.compiles),
        compare("transformer block", block_source(None), HandBlock, mse, seq_x, seq_y, args.rounds, max(5, args.steps // 5), args.compiles),
        # a millisecond step of small ops: twice the steps per measurement to steady the ratio
        compare("gru (digits rows)", GRU, HandGRU, xent, digits_x, digits_y, args.rounds, 2 * args.steps, args.compiles),
        compare("gpt block, tied head", TIED, HandTied, xent, ids, next_ids, args.rounds, max(5, args.steps // 5), args.compiles),
    ]
    scaling = depth_scaling(seq_x, seq_y, args.compiles)

    print(f"jax {jax.__version__}, flax {flax.__version__} on {jax.devices()[0].platform}, batch {b}")
    if args.markdown:
        print("| model | catnet step (ms) | hand-written step (ms) | step ratio | compile ratio |")
        print("|---|---:|---:|---:|---:|")
        for r in rows:
            print(f"| {r['model']} | {r['catnet_ms']:.3f} | {r['hand_ms']:.3f} | {r['step_ratio']:.3f} | {r['compile_ratio']:.2f} |")
        print()
        print("| repeat n | trace + lower (s) | XLA compile (s) |")
        print("|---:|---:|---:|")
        for n, (trace, comp) in scaling.items():
            print(f"| {n} | {trace:.2f} | {comp:.2f} |")
    else:
        for r in rows:
            print(
                f"{r['model']:<20} step {r['catnet_ms']:.3f} ms vs {r['hand_ms']:.3f} ms  "
                f"ratio {r['step_ratio']:.3f}   compile {r['catnet_compile_s']:.2f} s vs {r['hand_compile_s']:.2f} s  "
                f"ratio {r['compile_ratio']:.2f}"
            )
        for n, (trace, comp) in scaling.items():
            print(f"repeat {n:>2} transformer blocks: trace+lower {trace:.2f} s, XLA compile {comp:.2f} s")
    print(f"XLA compile time ratio repeat 48 / repeat 4: {scaling[48][1] / scaling[4][1]:.2f}")


if __name__ == "__main__":
    main()
