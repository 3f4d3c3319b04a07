"""The lowering of the ``losses`` family (``catnet.library.losses``).

Each loss maps its two wires (a leading batch axis each) to one number per
example, shape ``[batch]``.  The terms use the numerically stable forms:
log-softmax by ``optax`` (log-sum-exp), binary cross-entropy of logits as
``softplus(x) - t·x`` (never ``log(sigmoid(x))``), of probabilities with
the logarithm clamped at -100 as PyTorch's ``BCELoss`` does.  Every loss
computes in float32 whatever the model's computation dtype (``Op.float32``).
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax

from ...ir import Box
from . import Array, Context, Op, Wires

#: The smallest value a logarithm of a probability takes in ``bce(logits=false)``.
LOG_FLOOR = -100.0


def _reduce(terms: Array, box: Box) -> Array:
    """Per-position terms to one number per example, by the box's ``reduce``."""
    flat = terms.reshape(terms.shape[0], -1)
    return flat.sum(axis=1) if box.kwargs["reduce"] == "sum" else flat.mean(axis=1)


def _loss(terms: Callable[[Array, Array, Box], Array]) -> Callable[[Any, Wires, Box, Context], Wires]:
    def apply(module: Any, wires: Wires, box: Box, ctx: Context) -> Wires:
        a, b = wires
        return [_reduce(terms(a, b, box), box)]

    return apply


def _cross_entropy(logits: Array, labels: Array, box: Box) -> Array:
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels)


def _mse(prediction: Array, target: Array, box: Box) -> Array:
    return jnp.square(prediction - target)


def _log_clamped(p: Array) -> Array:
    """``max(log p, -100)``, with a zero gradient (not nan) where ``p <= 0``."""
    positive = p > 0
    safe = jnp.where(positive, p, 1.0)
    return jnp.where(positive, jnp.maximum(jnp.log(safe), LOG_FLOOR), LOG_FLOOR)


def _bce(prediction: Array, target: Array, box: Box) -> Array:
    if box.kwargs["logits"]:
        # -t·log σ(x) - (1 - t)·log(1 - σ(x)) = softplus(x) - t·x
        return jax.nn.softplus(prediction) - target * prediction
    return -(target * _log_clamped(prediction) + (1.0 - target) * _log_clamped(1.0 - prediction))


def _gaussian_kl(mean: Array, logvar: Array, box: Box) -> Array:
    # KL(N(m, e^v) ‖ N(0, 1)) = ½ (e^v + m² - 1 - v) per dimension
    return 0.5 * (jnp.exp(logvar) + jnp.square(mean) - 1.0 - logvar)


OPS: dict[str, Op] = {
    "cross_entropy": Op(_loss(_cross_entropy), float32=True),
    "mse": Op(_loss(_mse), float32=True),
    "bce": Op(_loss(_bce), float32=True),
    "gaussian_kl": Op(_loss(_gaussian_kl), float32=True),
}
