"""Benchmark: the train step of a C4-equivariant catnet model against the same model written by hand.

The catnet model is ``c4net`` of ``examples/c4_digits.cat``: a lifting
``gconv`` to ``regular * 8``, a group convolution, ``maxpool``, a group
convolution to ``regular * 16``, ``gpool``, a global average and a dense
head.  The hand-written model is the same architecture in plain Flax NNX:
the parameters of its equivariant layers are the basis coefficients, and
each forward pass expands them once into a kernel — ``Basis.expand`` of
the basis ``catnet.symmetry.basis.solve`` gives for
``ρ_in -> kernel_target(ρ_out)`` (``catnet.library.symmetry``), laid out
as an HWIO kernel — then runs ``jax.lax.conv_general_dilated``.  The bases
are NumPy constants of the program in both.  Before timing, the script
copies the catnet model's parameters into the hand-written one and checks
that the two compute the same logits: the same architecture, not just the
same shapes.

Both train with the step of ``bench/bench_lower.py`` (one adam update,
``jax.jit`` of a pure function of the ``nnx.split`` state), in one process,
alternating which goes first; the **ratio** is the median over the paired
runs of catnet / hand-written, for the step and for its XLA compile time.
For context it also times two hand-written variants against the
hand-written model: **no expansion**, the same network with its expanded
kernels as the parameters (no longer equivariant after a step: the
difference is what the expansion costs), and **bases as arguments**, the
bases held in the model's state and so passed to the step as arrays
instead of being constants of the program.

    python bench/symmetry_train_step.py [--rounds 30] [--steps 30] [--batch 64] [--file F.cat]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import flax  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from bench_lower import Runner, paired, xent  # noqa: E402
from flax import nnx  # noqa: E402

import catnet  # noqa: E402
from catnet.library.symmetry import kernel_target  # noqa: E402
from catnet.symmetry.actions import action  # noqa: E402
from catnet.symmetry.basis import Basis, solve  # noqa: E402

EXAMPLE = ROOT / "examples" / "c4_digits.cat"

#: The equivariant layers: (group, ρ_in, channels in, ρ_out, channels out, kernel size).
LIFT = ("C4", None, 1, "regular * 8", 32, 3)
BLOCK = ("C4", "regular * 8", 32, "regular * 8", 32, 3)
WIDEN = ("C4", "regular * 8", 32, "regular * 16", 64, 3)


@cache
def bases(layer: tuple[Any, ...]) -> tuple[Basis, Basis]:
    """The weight basis and the bias basis (``trivial -> ρ_out``) of a layer: NumPy, solved once."""
    group, rin_text, c_in, rout_text, c_out, k = layer
    rin = action(group, rin_text, (c_in,)).rep
    rout = action(group, rout_text, (c_out,)).rep
    weight = solve(rin, kernel_target(group, k, rout))
    return weight, solve(action(group, None, (1,)).rep, rout)


def kernel(layer: tuple[Any, ...], thetas: list[jax.Array], weight: Basis | None = None) -> jax.Array:
    """The HWIO kernel ``(k, k, c_in, c_out)`` from the coefficients.

    ``Basis.expand`` gives ``W`` with rows ``[out block][copy][cell][component]``
    (``kernel_target`` is ``⊕_j (window ⊗ B_j) * m_j``) and columns the
    input channels; each output block's rows are turned to
    ``[cell][c_in][copy, component]`` and the blocks concatenated.
    """
    _, _, c_in, _, c_out, k = layer
    weight = weight or bases(layer)[0]
    cells = k * k
    w = weight.expand(thetas, jnp)
    rows, at = [], 0
    for block, copies in weight.rout.blocks:
        # kernel_target's block j is window ⊗ B_j: dim = cells · d_j
        d = block.dim // cells
        part = w[at: at + copies * block.dim].reshape(copies, cells, d, c_in)
        rows.append(part.transpose(1, 3, 0, 2).reshape(cells, c_in, copies * d))
        at += copies * block.dim
    return jnp.concatenate(rows, axis=-1).reshape(k, k, c_in, c_out)


def bias(layer: tuple[Any, ...], thetas: list[jax.Array]) -> jax.Array:
    """The bias ``(c_out,)``: the coefficients of the maps ``trivial -> ρ_out``, expanded."""
    return bases(layer)[1].expand(thetas, jnp)[:, 0]


def conv(x: jax.Array, w: jax.Array, b: jax.Array) -> jax.Array:
    return jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")) + b


def pool_group(x: jax.Array, order: int = 4) -> jax.Array:
    """``gpool``: the maximum over the group axis of each copy of ``regular`` (copy-major channels)."""
    return jnp.max(x.reshape(x.shape[:-1] + (x.shape[-1] // order, order)), axis=-1)


class Coefficients(nnx.Module):
    """The free parameters of one equivariant layer: one array per piece of its weight and bias bases."""

    def __init__(self, layer: tuple[Any, ...], rngs: nnx.Rngs) -> None:
        self.layer = layer
        weight, b = bases(layer)
        self.weights = nnx.List([nnx.Param(0.1 * jax.random.normal(rngs.params(), s)) for s in weight.shapes()])
        self.bias = nnx.List([nnx.Param(jnp.zeros(s)) for s in b.shapes()])

    def expanded(self, weight: Basis | None = None) -> tuple[jax.Array, jax.Array]:
        """The kernel and the bias; ``weight`` replaces the layer's weight basis (the same, held as arrays)."""
        return kernel(self.layer, [w[...] for w in self.weights], weight), bias(self.layer, [b[...] for b in self.bias])


def forward(x: jax.Array, kernels: list[tuple[jax.Array, jax.Array]], hidden: nnx.Linear, out: nnx.Linear) -> jax.Array:
    """``c4net`` from its three expanded kernels and its two dense layers."""
    (w1, b1), (w2, b2), (w3, b3) = kernels
    x = jax.nn.relu(conv(x, w1, b1))  # lift
    x = jax.nn.relu(conv(x, w2, b2))  # block
    x = nnx.max_pool(x, (2, 2), strides=(2, 2))
    x = jax.nn.relu(conv(x, w3, b3))
    x = jnp.mean(pool_group(x), axis=(1, 2))
    return out(jax.nn.relu(hidden(x)))


class HandC4(nnx.Module):
    """``c4net`` by hand: coefficients expanded once per forward pass, then plain convolutions."""

    def __init__(self, rngs: nnx.Rngs) -> None:
        self.lift = Coefficients(LIFT, rngs)
        self.block = Coefficients(BLOCK, rngs)
        self.gconv = Coefficients(WIDEN, rngs)
        self.hidden = nnx.Linear(16, 64, rngs=rngs)
        self.out = nnx.Linear(64, 10, rngs=rngs)

    def layers(self) -> list[Coefficients]:
        return [self.lift, self.block, self.gconv]

    def __call__(self, x: jax.Array) -> jax.Array:
        return forward(x, [m.expanded() for m in self.layers()], self.hidden, self.out)


class Kernel(nnx.Module):
    """An expanded kernel and bias held as plain parameters (no expansion in the step)."""

    def __init__(self, w: jax.Array, b: jax.Array) -> None:
        self.w, self.b = nnx.Param(w), nnx.Param(b)


class HandDense(nnx.Module):
    """The same network with the kernels themselves as parameters: what the expansion costs, by difference."""

    def __init__(self, model: HandC4) -> None:
        self.kernels = nnx.List([Kernel(*m.expanded()) for m in model.layers()])
        self.hidden, self.out = model.hidden, model.out

    def __call__(self, x: jax.Array) -> jax.Array:
        return forward(x, [(k.w[...], k.b[...]) for k in self.kernels], self.hidden, self.out)


class Held(nnx.Variable):
    """A basis held in the model's state: it reaches the step as an argument, not as a constant."""


class HandArguments(nnx.Module):
    """``HandC4`` with its weight bases in its state, so the jitted step takes them as arrays."""

    def __init__(self, model: HandC4) -> None:
        self.model = model
        self.held = nnx.List([
            nnx.List([Held(jnp.asarray(p.basis, jnp.float32)) for p in bases(m.layer)[0].pieces]) for m in model.layers()
        ])

    def __call__(self, x: jax.Array) -> jax.Array:
        kernels = []
        for m, held in zip(self.model.layers(), self.held):
            weight = bases(m.layer)[0]
            pieces = tuple(replace(p, basis=h[...]) for p, h in zip(weight.pieces, held))
            kernels.append(m.expanded(Basis(weight.rin, weight.rout, pieces)))
        return forward(x, kernels, self.model.hidden, self.model.out)


#: Where each hand-written layer's coefficients live in the catnet model (its boxes' module paths).
PATHS = {"lift": ("lift", "gconv"), "block": ("block", "gconv"), "gconv": ("gconv",), "hidden": ("dense", 0), "out": ("dense", 1)}


def copy_coefficients(ours: nnx.Module, hand: HandC4) -> None:
    """Give the hand-written model the catnet model's coefficients: the same pieces, in the same order."""
    theirs = dict(nnx.to_flat_state(nnx.state(ours, nnx.Param)))
    state = nnx.state(hand, nnx.Param)
    for path, v in nnx.to_flat_state(state):
        a = theirs.pop(PATHS[path[0]] + path[1:])
        assert a.shape == v.shape, f"{path}: {a.shape} in the catnet model, {v.shape} by hand"
        v.set_value(a.get_value())
    nnx.update(hand, state)
    assert not theirs, f"parameters of the catnet model with no hand-written counterpart: {sorted(theirs)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30, help="paired timing rounds (default 30)")
    parser.add_argument("--steps", type=int, default=30, help="steps per timing (default 30)")
    parser.add_argument("--compiles", type=int, default=3, help="paired compile timings (default 3)")
    parser.add_argument("--batch", type=int, default=64, help="batch size (default 64)")
    parser.add_argument("--file", type=Path, default=EXAMPLE, help=f"the .cat file (default {EXAMPLE.relative_to(ROOT)})")
    parser.add_argument("--entry", default=None, help="the morphism timed, the same architecture as c4net (default: the file's main)")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.random((args.batch, 8, 8, 1), dtype=np.float32))
    y = jnp.asarray(rng.integers(0, 10, args.batch).astype(np.int32))

    ours = catnet.compile(args.file, args.entry, rngs=nnx.Rngs(0))
    hand = HandC4(nnx.Rngs(0))
    copy_coefficients(ours, hand)
    models = {
        "catnet": ours,
        "hand-written": hand,
        "hand-written, bases as arguments": HandArguments(hand),
        "hand-written, no expansion": HandDense(hand),
    }
    logits = ours(x)
    gap = max(float(jnp.max(jnp.abs(m(x) - logits))) for m in models.values())
    assert gap < 1e-4, f"a hand-written model computes other logits than the catnet model (max gap {gap:.2e})"

    runners = {name: Runner(m, xent, x, y) for name, m in models.items()}
    for r in runners.values():  # compile and warm up outside the measurement
        r.time(args.steps)
    base = runners["hand-written"]
    print(f"jax {jax.__version__}, flax {flax.__version__} on {jax.devices()[0].platform}, batch {args.batch}, "
          f"{args.rounds} rounds of {args.steps} steps; logits agree to {gap:.1e}")
    for name, r in runners.items():
        if r is base:
            continue
        a, b = paired(lambda r=r: r.time(args.steps), lambda: base.time(args.steps), args.rounds)
        ratio = statistics.median(p / q for p, q in zip(a, b))
        print(f"{name:<34} {statistics.median(a) * 1e3:8.3f} ms  vs hand-written {statistics.median(b) * 1e3:8.3f} ms   ratio {ratio:.3f}")
    a, b = paired(runners["catnet"].compile_time, base.compile_time, args.compiles)
    print(f"{'XLA compile, catnet':<34} {statistics.median(a):8.3f} s   vs hand-written {statistics.median(b):8.3f} s    "
          f"ratio {statistics.median(p / q for p, q in zip(a, b)):.3f}")


if __name__ == "__main__":
    main()
