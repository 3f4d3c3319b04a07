"""A catnet plugin: the SwiGLU feed-forward block of Shazeer, "GLU Variants
Improve Transformer" (2020), used in PaLM and LLaMA.

    swiglu(hidden, bias=false) : R[…, d] -> R[…, d]
    y = W_down (silu(W_gate x) * W_up x)

The checker's half (shape rule, count rule) needs no JAX; the
implementation imports JAX inside its functions, so `catnet check --plugin
swiglu.py` answers as fast as without the plugin.
"""

from catnet import extend
from catnet.extend import Arg


def rule(ctx, dom, args):
    """R[…, d] -> R[…, d]: a real wire with at least one axis, unchanged in type."""
    (x,) = dom.obs
    if x.base != "R" or not x.shape:
        ctx.fail(f"`swiglu` takes a real wire R[…, d], but its input is {x}", "use `embed` to turn ids into vectors")
    return dom


def count(box, size):
    """Gate and up projections d -> hidden, down projection hidden -> d."""
    d = size(box.dom.obs[0].shape[-1])
    h = box.kwargs["hidden"]
    biases = 2 * h + d if box.kwargs["bias"] else 0
    return 3 * d * h + biases


def make(box, rngs):
    from flax import nnx

    d, h, bias = box.dom.obs[0].shape[-1], box.kwargs["hidden"], box.kwargs["bias"]
    return nnx.Dict(
        gate_up=nnx.Linear(d, 2 * h, use_bias=bias, rngs=rngs),  # W_gate and W_up side by side
        down=nnx.Linear(h, d, use_bias=bias, rngs=rngs),
    )


def apply(module, wires, box, ctx):
    import jax
    import jax.numpy as jnp

    (x,) = wires
    gate, up = jnp.split(module.gate_up(x), 2, axis=-1)
    return [module.down(jax.nn.silu(gate) * up)]


extend.generator(
    "swiglu",
    rule,
    args=[Arg("hidden", "int", required=True, low=1, high=1 << 20), Arg("bias", "bool", False)],
    count=count,
    make=make,
    apply=apply,
    doc="SwiGLU feed-forward block on the last axis",
)
