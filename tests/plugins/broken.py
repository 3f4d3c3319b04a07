"""A catnet plugin with a bug in each generator, for the diagnostics it must give."""

from catnet import extend
from catnet.extend import Ob, Ty


def same(ctx, dom, args):
    return dom


def raising_rule(ctx, dom, args):
    raise ValueError("the rule looked for an axis that is not there")


def list_rule(ctx, dom, args):
    return list(dom.obs)


def zero_rule(ctx, dom, args):
    return Ty((Ob("R", (0,)),))


def features(box, size):
    return size(box.dom.obs[0].shape[-1])


def raising_count(box, size):
    return box.kwargs["width"] * 2  # there is no argument `width`


def make_square(box, rngs):
    from flax import nnx

    d = box.dom.obs[0].shape[-1]
    return nnx.Linear(d, d, use_bias=False, rngs=rngs)


def matmul(module, wires, box, ctx):
    return [module(wires[0])]


def divide(module, wires, box, ctx):
    return [wires[0] * (1 // 0)]


def drop_batch(module, wires, box, ctx):
    return [wires[0][0]]


def one_array(module, wires, box, ctx):
    return wires[0]


def draws(module, wires, box, ctx):
    import jax

    (x,) = wires
    return [x + jax.random.normal(ctx.key(), x.shape)]


extend.generator("raising_rule", raising_rule, doc="a shape rule that raises")
extend.generator("list_rule", list_rule, doc="a shape rule that returns a list")
extend.generator("zero_rule", zero_rule, doc="a shape rule that returns an empty wire")
extend.generator("raising_count", same, count=raising_count, make=make_square, apply=matmul, doc="a count rule that raises")
extend.generator("wrong_count", same, count=features, make=make_square, apply=matmul, doc="counts d parameters, makes d * d")
extend.generator("raising_apply", same, apply=divide, doc="an apply that divides by zero")
extend.generator("drop_batch", same, apply=drop_batch, doc="an apply that loses the batch axis")
extend.generator("one_array", same, apply=one_array, doc="an apply that returns an array, not a list")
extend.generator("undeclared_noise", same, apply=draws, doc="an apply that draws noise without random=True")
extend.generator("missing_jax_half", same, lowering="no_such_module_for_catnet:impl", doc="a lowering that is not there")


def pass_through(module, wires, box, ctx):
    return list(wires)


def raising_ld(module, wires, box, ctx):
    raise FloatingPointError("the log-scale overflowed")


def scalar_ld(module, wires, box, ctx):
    import jax.numpy as jnp

    return list(wires), jnp.zeros(())  # one number for the batch, not one per example


extend.generator("raising_log_det", same, iso=True, apply=pass_through, inverse=pass_through,
                 forward_ld=raising_ld, inverse_ld=raising_ld, doc="a forward_ld that raises")
extend.generator("scalar_log_det", same, iso=True, apply=pass_through, inverse=pass_through,
                 forward_ld=scalar_ld, inverse_ld=scalar_ld, doc="a forward_ld that returns one number, not one per example")
