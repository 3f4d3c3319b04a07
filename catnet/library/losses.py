"""Losses as morphisms: the ``losses`` family of generators.

A loss is a box into ``R[]``: one number per example, computed from the
model's outputs and the targets, so a training objective is a morphism of
the file like any other (``catnet train --objective NAME``).

Conventions (``docs/language.md`` §11):

* ``cross_entropy : R[…, K] ⊗ Z[…] -> R[]``: softmax cross-entropy of logits
  against integer class labels, one label per position of the leading axes
  (a label per token for ``R[T, V] ⊗ Z[T]``);
* ``mse : A ⊗ A -> R[]``: the squared difference;
* ``bce : R[s…] ⊗ R[s…] -> R[]``: binary cross-entropy of logits
  (``logits=true``) or probabilities (``logits=false``) against targets in
  ``[0, 1]``;
* ``gaussian_kl : R[s…] ⊗ R[s…] -> R[]``: the KL divergence of the diagonal
  Gaussian with mean and log-variance given by the two wires from the
  standard normal.

Each reduces its per-position terms over the example's axes with
``reduce="mean"`` (the default) or ``reduce="sum"`` (a VAE's reconstruction
and KL terms are sums over pixels and latent dimensions).  The batch axis
is never reduced here: training takes the batch mean of the objective.
"""

from __future__ import annotations

from .. import dims
from ..ir import Ob, Ty, Value
from . import Arg, Generator, Rule, RuleContext, _tensor, _unify_obs, register

#: How a loss reduces its terms over the axes of one example.
REDUCE = Arg("reduce", "str", "mean", choices=("mean", "sum"))

SCALAR = Ty((Ob("R", ()),))


def _real(ctx: RuleContext, ob: Ob, name: str, role: str) -> None:
    _tensor(ctx, ob, name)
    if ob.base != "R":
        ctx.fail(f"`{name}` takes a real {role}, but its {role} is {ob}", _HELP[name])


_HELP = {
    "mse": "`mse` compares real wires; for integer class labels use `cross_entropy`",
    "bce": "`bce` takes real targets in [0, 1]; for integer class labels use `cross_entropy`",
    "gaussian_kl": "`gaussian_kl(mu, logvar)` takes the mean and the log-variance of a Gaussian, both real",
}


def _cross_entropy(ctx: RuleContext, dom: Ty, args: dict[str, Value]) -> Ty:
    logits, labels = dom.obs
    _tensor(ctx, logits, "cross_entropy")
    _tensor(ctx, labels, "cross_entropy")
    if logits.base != "R" or not logits.shape:
        ctx.fail(
            f"`cross_entropy` takes logits R[…, K] first, but gets {logits}",
            "the first wire holds one score per class on its last axis, e.g. R[10]",
        )
    if labels.base != "Z":
        ctx.fail(
            f"`cross_entropy` takes integer class labels Z[…] second, but gets {labels}",
            "for real targets in [0, 1] use `bce`; for regression use `mse`",
        )
    lead = logits.shape[:-1]
    shown = f"logits {logits.structure()} need labels Z[{', '.join(dims.show(ctx.resolve(d)) for d in lead)}]"
    if len(labels.shape) != len(lead):
        ctx.fail(f"`cross_entropy` gets labels {labels.structure()}, but {shown}", "one label per position of the logits' leading axes")
    for a, b in zip(lead, labels.shape):
        ctx.equal(a, b, f"`cross_entropy` gets labels {labels.structure()}, but {shown}")
    return SCALAR


def _paired(name: str, first: str, second: str) -> Rule:
    """A loss of two real wires of one type, called ``first`` and ``second`` in messages."""

    def rule(ctx: RuleContext, dom: Ty, args: dict[str, Value]) -> Ty:
        a, b = dom.obs
        _real(ctx, a, name, first)
        _real(ctx, b, name, second)
        _unify_obs(ctx, a, b, f"`{name}` takes a {first} and a {second} of one shape")
        return SCALAR

    return rule


register(Generator(
    "cross_entropy", _cross_entropy, (REDUCE,), arity=2, coarity=1, family="losses",
    doc="R[…, K] ⊗ Z[…] -> R[]: softmax cross-entropy against integer labels",
))
register(Generator(
    "mse", _paired("mse", "prediction", "target"), (REDUCE,), arity=2, coarity=1, family="losses",
    doc="A ⊗ A -> R[]: squared difference",
))
register(Generator(
    "bce", _paired("bce", "prediction", "target"), (Arg("logits", "bool", True), REDUCE),
    arity=2, coarity=1, family="losses",
    doc="R[s…] ⊗ R[s…] -> R[]: binary cross-entropy of logits (or probabilities) against targets in [0, 1]",
))
register(Generator(
    "gaussian_kl", _paired("gaussian_kl", "mean", "log-variance"), (REDUCE,), arity=2, coarity=1, family="losses",
    doc="R[s…] ⊗ R[s…] -> R[]: KL(N(mean, exp(logvar)) ‖ N(0, 1))",
))
