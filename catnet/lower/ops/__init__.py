"""The lowering's half of the generator library: names to Flax NNX code.

``catnet.library`` says what each generator's type is; this table says what
it computes.  Every entry is an :class:`Op`:

* ``make(box, rngs)`` builds the ``nnx.Module`` that holds the box's
  parameters (``None`` for a pure function such as ``relu``);
* ``apply(module, wires, box, ctx)`` maps the box's input wires (arrays with
  one leading batch axis) to its output wires;
* ``inverse`` (isomorphisms only) maps output wires back to input wires with
  the same module, so ``inv(f)`` lowers to the real inverse;
* ``forward_ld`` and ``inverse_ld`` (isomorphisms only) are the second
  lowering of an iso: the same maps, each with ``log|det J|`` of the map it
  computes, one number per example (shape ``(batch,)``); an iso whose
  Jacobian determinant is ±1 (a permutation, a shift) says
  ``volume_preserving`` instead and gets 0 (see ``model.run_ld``).

The core generators are below; each family of ``catnet.library`` has its
lowering in the module of the same name here, merged into :data:`OPS` at
the end (plugins add theirs with ``catnet.extend``).

Nothing here decides a type: sizes come from the checked IR (``box.dom``,
``box.kwargs``) and the checker has already made sure they fit, so
violations are assertions.  Per-example axes in the IR are shifted by one
for the batch axis (:func:`batch_axis`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol

import jax
import jax.numpy as jnp
from flax import nnx

from ... import dims
from ...ir import Box, Ob
from ...library import GENERATORS

Array = jax.Array
Wires = list[Array]


class Context(Protocol):
    """What an op may ask of the running functor (see ``model.Context``)."""

    train: bool
    #: the batch size of this forward pass (what ``I -> X`` boxes broadcast to)
    batch: int
    #: the shared instances' modules by ``shared`` name (``transposed`` reads them)
    shared: dict[str, Any]
    #: the dtype real wires are computed in (float32 unless the model was compiled with ``dtype=``)
    dtype: Any
        #: base points given with the call (``model.forward_log_det(x, condition=b)``):
    #: a bundle's trivialization picks its chart from them; ``None`` otherwise
    condition: Array | None

    #: whether ``key()`` may be called (training mode with the model's random stream)
    has_key: bool

    def key(self) -> Array: ...

    def size(self, d: dims.Dim) -> int: ...


Make = Callable[[Box, nnx.Rngs], nnx.Module]
Apply = Callable[[Any, Wires, Box, Context], Wires]
#: an iso's map with its log-determinant: ``(wires out, log|det J| of shape (batch,))``
ApplyLD = Callable[[Any, Wires, Box, Context], tuple[Wires, Array]]


@dataclass(frozen=True)
class Op:
    """How one generator lowers: optional module factory, forward, inverse."""

    apply: Apply
    make: Make | None = None
    inverse: Apply | None = None
    #: whether ``apply`` asks the context for random keys in training mode
    #: (a function of the box where that depends on its arguments)
    random: bool | Callable[[Box], bool] = False
    #: isomorphisms: the forward map with ``log|det J|`` per example
    forward_ld: ApplyLD | None = None
    #: isomorphisms: the inverse map with the inverse's ``log|det J|`` (minus the forward's at the result)
    inverse_ld: ApplyLD | None = None
    #: an isomorphism with ``|det J| = 1`` everywhere: its log-determinant is 0
    volume_preserving: bool = False
    #: computes in float32 whatever the model's dtype: its real inputs are cast
    #: to float32 and its outputs stay float32 (the losses).  Other ops with a
    #: module hand their real outputs on in the model's computation dtype, and
    #: pure ones keep the dtype their inputs give (see ``model.apply_box``).
    float32: bool = False

    @property
    def has_log_det(self) -> bool:
        """Whether the second lowering (with log-determinants) covers this op."""
        return self.volume_preserving or (self.forward_ld is not None and self.inverse_ld is not None)

    def draws(self, box: Box) -> bool:
        """Whether ``box`` asks for random keys in training mode."""
        return self.random(box) if callable(self.random) else bool(self.random)


def batch_axis(axis: int) -> int:
    """A per-example axis of the IR as an axis of the batched array."""
    return axis if axis < 0 else axis + 1


def _int(d: dims.Dim) -> int:
    assert isinstance(d, int), f"parameter size {dims.show(d)} must be a number after checking"
    return d


def _in_features(box: Box, wire: int = 0) -> int:
    ob: Ob = box.dom.obs[wire]
    assert ob.shape, f"{box.name} needs an axis"
    return _int(ob.shape[-1])


def _arg(box: Box, name: str) -> Any:
    return box.kwargs[name]


def option(box: Box, name: str) -> Any:
    """An argument of ``box``, or the library's default where the box leaves it out.

    Checked boxes carry every argument; IR built by hand (and IR from
    before an option existed) may omit one at its default.
    """
    if name in box.kwargs:
        return box.kwargs[name]
    spec = GENERATORS[box.name].arg(name)
    assert spec is not None, f"`{box.name}` has no argument `{name}`"
    return spec.default


def example_axis(box: Box) -> int:
    """The box's ``axis`` as a non-negative per-example axis of its (first) input."""
    return int(option(box, "axis")) % len(box.dom.obs[0].shape)


def on_axis(fn: Callable[[Array], Array], x: Array, axis: int) -> Array:
    """``fn`` (which acts on the last axis) applied along batched axis ``axis`` of ``x``."""
    if axis % x.ndim == x.ndim - 1:
        return fn(x)
    return jnp.moveaxis(fn(jnp.moveaxis(x, axis, -1)), -1, axis)


def _unary(fn: Callable[[Array], Array]) -> Apply:
    def apply(module: Any, wires: Wires, box: Box, ctx: Context) -> Wires:
        (x,) = wires
        return [fn(x)]

    return apply


# -- layers with parameters --------------------------------------------------


def _axis_features(box: Box) -> int:
    return _int(box.dom.obs[0].shape[example_axis(box)])


def _make_dense(box: Box, rngs: nnx.Rngs) -> nnx.Module:
    return nnx.Linear(_axis_features(box), _int(_arg(box, "features")), use_bias=bool(option(box, "bias")), rngs=rngs)


def _call(module: Any, wires: Wires, box: Box, ctx: Context) -> Wires:
    (x,) = wires
    return [module(x)]


def _call_on_axis(module: Any, wires: Wires, box: Box, ctx: Context) -> Wires:
    """A module that acts on the last axis, applied on the box's ``axis``."""
    (x,) = wires
    return [on_axis(module, x, example_axis(box) + 1)]


def _spatial_rank(box: Box) -> int:
    rank = len(box.dom.obs[0].shape) - 1
    assert rank in (1, 2), "conv and pooling take R[L, C] or R[H, W, C]"
    return rank


def _padding(box: Box) -> str | list[tuple[int, int]]:
    """``"SAME"``/``"VALID"``, or ``p`` cells on both sides of every spatial axis."""
    pad = _arg(box, "padding")
    if isinstance(pad, str):
        return pad.upper()
    return [(int(pad), int(pad))] * _spatial_rank(box)


def _make_conv(box: Box, rngs: nnx.Rngs) -> nnx.Module:
    n = _spatial_rank(box)
    return nnx.Conv(
        _in_features(box),
        _int(_arg(box, "features")),
        kernel_size=(int(_arg(box, "kernel")),) * n,
        strides=(int(_arg(box, "stride")),) * n,
        padding=_padding(box),
        use_bias=bool(option(box, "bias")),
        rngs=rngs,
    )


def _make_layernorm(box: Box, rngs: nnx.Rngs) -> nnx.Module:
    return nnx.LayerNorm(_axis_features(box), epsilon=float(option(box, "eps")), rngs=rngs)


def _make_rmsnorm(box: Box, rngs: nnx.Rngs) -> nnx.Module:
    return nnx.RMSNorm(_axis_features(box), epsilon=float(_arg(box, "eps")), rngs=rngs)


def _make_groupnorm(box: Box, rngs: nnx.Rngs) -> nnx.Module:
    # Statistics over every per-example axis and the channels of one group
    # (Flax's default reduction axes leave out only the batch axis).
    return nnx.GroupNorm(_in_features(box), num_groups=int(_arg(box, "groups")), epsilon=float(_arg(box, "eps")), rngs=rngs)


def _make_batchnorm(box: Box, rngs: nnx.Rngs) -> nnx.Module:
    return nnx.BatchNorm(_in_features(box), momentum=float(_arg(box, "momentum")), epsilon=float(option(box, "eps")), rngs=rngs)


def _apply_batchnorm(module: Any, wires: Wires, box: Box, ctx: Context) -> Wires:
    (x,) = wires
    # The mode comes from the model (``model.train()``/``model.eval()``), one
    # switch for dropout and batch statistics alike.
    return [module(x, use_running_average=not ctx.train)]


def _make_embed(box: Box, rngs: nnx.Rngs) -> nnx.Module:
    return nnx.Embed(int(_arg(box, "vocab")), _int(_arg(box, "features")), rngs=rngs)


def _make_attention(box: Box, rngs: nnx.Rngs) -> nnx.Module:
    width = _in_features(box)
    kv = _in_features(box, 1) if len(box.dom) == 2 else width
    return nnx.MultiHeadAttention(
        num_heads=int(_arg(box, "heads")),
        in_features=width,
        qkv_features=width,
        out_features=width,
        in_kv_features=kv,
        decode=False,
        # Dropout on the attention probabilities, each drawn independently
        # (PyTorch's; Flax's default shares one mask across the batch).
        dropout_rate=float(option(box, "dropout")),
        broadcast_dropout=False,
        deterministic=True,
        rngs=rngs,
        keep_rngs=False,
    )


def _causal_mask(q: Array, kv: Array) -> Array:
    """``[1, 1, T, S]``: query ``t`` sees keys ``s <= t``."""
    t, s = q.shape[-2], kv.shape[-2]
    return jnp.tril(jnp.ones((t, s), dtype=jnp.bool_))[None, None]


def _attention_dropout(box: Box) -> bool:
    return float(option(box, "dropout")) > 0.0


def _apply_attention(module: Any, wires: Wires, box: Box, ctx: Context) -> Wires:
    q = wires[0]
    kv = wires[1] if len(wires) == 2 else q
    mask = _causal_mask(q, kv) if bool(_arg(box, "causal")) else None
    if ctx.train and _attention_dropout(box):
        # One key from the model's stream per box and call.
        return [module(q, kv, mask=mask, deterministic=False, rngs=nnx.Rngs(dropout=ctx.key()))]
    return [module(q, kv, mask=mask, deterministic=True)]


class Coupling(nnx.Module):
    """Affine coupling on the last axis (Dinh et al., RealNVP).

    The last axis splits into ``x1`` (first half) and ``x2``; a network of
    ``x1`` gives a log-scale ``s`` (bounded by ``tanh``) and a shift ``t``,
    and ``y = (x1, x2 * exp(s) + t)``.  ``x1`` passes unchanged, so the
    inverse ``x2 = (y2 - t) * exp(-s)`` is exact, and ``log|det J| = Σ s``.

    The network is a one-hidden-layer MLP of width ``hidden`` (``hidden``
    and ``scale_shift``), unless the box names a ``conditioner``: then the
    module keeps a fresh instance of it as ``conditioner`` (or nothing, for
    a shared instance, which lives on the root) and each method takes the
    conditioner's function as ``net``.
    """

    def __init__(self, size: int, hidden: int, *, rngs: nnx.Rngs, conditioner: Box | None = None) -> None:
        self.half = size // 2
        if conditioner is None:
            self.hidden = nnx.Linear(self.half, hidden, rngs=rngs)
            self.scale_shift = nnx.Linear(hidden, 2 * (size - self.half), rngs=rngs)
        elif conditioner.shared is None:
            from ..model import build  # the model module imports this one

            self.conditioner = build(conditioner, rngs)

    def _scale_shift(self, x1: Array, net: Callable[[Array], Array] | None) -> tuple[Array, Array]:
        h = net(x1) if net is not None else self.scale_shift(jax.nn.relu(self.hidden(x1)))
        s, t = jnp.split(h, 2, axis=-1)
        return jnp.tanh(s), t

    def __call__(self, x: Array, net: Callable[[Array], Array] | None = None) -> Array:
        return self.forward_ld(x, net)[0]

    def inverse(self, y: Array, net: Callable[[Array], Array] | None = None) -> Array:
        return self.inverse_ld(y, net)[0]

    def forward_ld(self, x: Array, net: Callable[[Array], Array] | None = None) -> tuple[Array, Array]:
        """``y`` and ``log|det J|`` per example: the sum of the log-scales."""
        x1, x2 = x[..., : self.half], x[..., self.half :]
        s, t = self._scale_shift(x1, net)
        return jnp.concatenate([x1, x2 * jnp.exp(s) + t], axis=-1), _per_example(s.astype(jnp.float32))

    def inverse_ld(self, y: Array, net: Callable[[Array], Array] | None = None) -> tuple[Array, Array]:
        y1, y2 = y[..., : self.half], y[..., self.half :]
        s, t = self._scale_shift(y1, net)
        return jnp.concatenate([y1, (y2 - t) * jnp.exp(-s)], axis=-1), -_per_example(s.astype(jnp.float32))


def _per_example(x: Array) -> Array:
    """The sum over every axis but the batch: one number per example (log-determinants sum in float32)."""
    return x.reshape(x.shape[0], -1).sum(axis=1)


def _conditioner(box: Box) -> Box | None:
    from ...library.flows import conditioner

    return conditioner(box)


def _make_coupling(box: Box, rngs: nnx.Rngs) -> nnx.Module:
    return Coupling(_in_features(box), int(option(box, "hidden")), rngs=rngs, conditioner=_conditioner(box))


def _net(module: Any, box: Box, ctx: Context) -> Callable[[Array], Array] | None:
    """The conditioner's function in this forward pass (``None``: the module's own MLP)."""
    cond = _conditioner(box)
    if cond is None:
        return None
    from ..model import apply_box  # the model module imports this one

    # A shared conditioner's module is on the root (``ctx.shared``, which
    # ``apply_box`` reads for a box with a ``shared`` name).
    inner = module.conditioner if cond.shared is None and hasattr(module, "conditioner") else None
    return lambda h: apply_box(cond, inner, [h], ctx)[0]  # type: ignore[arg-type]


def _coupling_draws(box: Box) -> bool:
    """Whether the conditioner draws random keys in training (a dropout inside it)."""
    cond = _conditioner(box)
    if cond is None or cond.body is None:
        return False
    return any(b.kind == "generator" and b.name in OPS and OPS[b.name].draws(b) for b in cond.body.all_boxes())


def _apply_coupling(module: Any, wires: Wires, box: Box, ctx: Context) -> Wires:
    (x,) = wires
    return [module(x, _net(module, box, ctx))]


def _invert_coupling(module: Any, wires: Wires, box: Box, ctx: Context) -> Wires:
    (y,) = wires
    return [module.inverse(y, _net(module, box, ctx))]


def _coupling_ld(module: Any, wires: Wires, box: Box, ctx: Context) -> tuple[Wires, Array]:
    (x,) = wires
    y, ld = module.forward_ld(x, _net(module, box, ctx))
    return [y], ld


def _invert_coupling_ld(module: Any, wires: Wires, box: Box, ctx: Context) -> tuple[Wires, Array]:
    (y,) = wires
    x, ld = module.inverse_ld(y, _net(module, box, ctx))
    return [x], ld


# -- pure functions -----------------------------------------------------------


def _window(box: Box) -> tuple[tuple[int, ...], tuple[int, ...], str | list[tuple[int, int]]]:
    n = _spatial_rank(box)
    w, s = int(_arg(box, "window")), int(_arg(box, "stride"))
    return (w,) * n, (s,) * n, _padding(box)


def _apply_maxpool(module: Any, wires: Wires, box: Box, ctx: Context) -> Wires:
    (x,) = wires
    # Flax pads a max pool with -inf: padded cells never win, as in PyTorch.
    window, strides, padding = _window(box)
    return [nnx.max_pool(x, window, strides=strides, padding=padding)]


def _apply_avgpool(module: Any, wires: Wires, box: Box, ctx: Context) -> Wires:
    (x,) = wires
    # Padded zeros count in the mean (PyTorch's count_include_pad=True).
    window, strides, padding = _window(box)
    return [nnx.avg_pool(x, window, strides=strides, padding=padding, count_include_pad=True)]


def _spatial_axes(x: Array) -> tuple[int, ...]:
    return tuple(range(1, x.ndim - 1))


def _apply_reshape(module: Any, wires: Wires, box: Box, ctx: Context) -> Wires:
    (x,) = wires
    shape = tuple(ctx.size(d) for d in _arg(box, "shape"))
    return [x.reshape((x.shape[0],) + shape)]


def _apply_softmax(module: Any, wires: Wires, box: Box, ctx: Context) -> Wires:
    (x,) = wires
    # In float32 whatever the computation dtype, as Flax and MaxText do.
    return [jax.nn.softmax(x.astype(jnp.float32), axis=batch_axis(int(_arg(box, "axis")))).astype(x.dtype)]


def _apply_dropout(module: Any, wires: Wires, box: Box, ctx: Context) -> Wires:
    (x,) = wires
    rate = float(_arg(box, "rate"))
    if not ctx.train or rate == 0.0:
        return [x]
    keep = jax.random.bernoulli(ctx.key(), 1.0 - rate, x.shape)
    return [jax.lax.select(keep, x / (1.0 - rate), jnp.zeros_like(x))]


def _apply_gelu(module: Any, wires: Wires, box: Box, ctx: Context) -> Wires:
    (x,) = wires
    return [jax.nn.gelu(x, approximate=bool(option(box, "approximate")))]


def _reverse(x: Array) -> Array:
    return jnp.flip(x, axis=-1)


# -- structural morphisms -----------------------------------------------------


def _identity(module: Any, wires: Wires, box: Box, ctx: Context) -> Wires:
    return list(wires)


def _swap(module: Any, wires: Wires, box: Box, ctx: Context) -> Wires:
    a, b = wires
    return [b, a]


def _copy(module: Any, wires: Wires, box: Box, ctx: Context) -> Wires:
    # `copy` on A ⊗ B gives A ⊗ B ⊗ A ⊗ B: all wires, then all again.
    return list(wires) + list(wires)


def _discard(module: Any, wires: Wires, box: Box, ctx: Context) -> Wires:
    return []


def _concat(module: Any, wires: Wires, box: Box, ctx: Context) -> Wires:
    a, b = wires
    return [jnp.concatenate([a, b], axis=batch_axis(int(_arg(box, "axis"))))]


def _split(module: Any, wires: Wires, box: Box, ctx: Context) -> Wires:
    (x,) = wires
    axis = batch_axis(int(_arg(box, "axis"))) % x.ndim
    size = ctx.size(_arg(box, "size"))
    return [
        jax.lax.slice_in_dim(x, 0, size, axis=axis),
        jax.lax.slice_in_dim(x, size, x.shape[axis], axis=axis),
    ]


def _fst(module: Any, wires: Wires, box: Box, ctx: Context) -> Wires:
    return [wires[0]]


def _snd(module: Any, wires: Wires, box: Box, ctx: Context) -> Wires:
    return [wires[1]]


#: Generator and structural names to their lowering.  ``proj`` and ``triv``
#: (fiber bundles) have no runtime representation yet; ``model`` reports them.
OPS: dict[str, Op] = {
    "dense": Op(_call_on_axis, _make_dense),
    "conv": Op(_call, _make_conv),
    "maxpool": Op(_apply_maxpool),
    "avgpool": Op(_apply_avgpool),
    "global_avgpool": Op(_unary(lambda x: jnp.mean(x, axis=_spatial_axes(x)))),
    "global_maxpool": Op(_unary(lambda x: jnp.max(x, axis=_spatial_axes(x)))),
    "flatten": Op(_unary(lambda x: x.reshape(x.shape[0], -1))),
    "reshape": Op(_apply_reshape),
    "relu": Op(_unary(jax.nn.relu)),
    "gelu": Op(_apply_gelu),
    "tanh": Op(_unary(jnp.tanh)),
    "sigmoid": Op(_unary(jax.nn.sigmoid)),
    "softmax": Op(_apply_softmax),
    "layernorm": Op(_call_on_axis, _make_layernorm),
    "rmsnorm": Op(_call_on_axis, _make_rmsnorm),
    "groupnorm": Op(_call, _make_groupnorm),
    "batchnorm": Op(_apply_batchnorm, _make_batchnorm),
    "dropout": Op(_apply_dropout, random=True),
    "embed": Op(_call, _make_embed),
    "attention": Op(_apply_attention, _make_attention, random=_attention_dropout),
    "cross_attention": Op(_apply_attention, _make_attention, random=_attention_dropout),
    "coupling": Op(_apply_coupling, _make_coupling, inverse=_invert_coupling, random=_coupling_draws,
                   forward_ld=_coupling_ld, inverse_ld=_invert_coupling_ld),
    "reverse": Op(_unary(_reverse), inverse=_unary(_reverse), volume_preserving=True),
    "id": Op(_identity, inverse=_identity, volume_preserving=True),
    "swap": Op(_swap, inverse=_swap, volume_preserving=True),
    "copy": Op(_copy),
    "discard": Op(_discard),
    "concat": Op(_concat),
    "split": Op(_split),
    "fst": Op(_fst),
    "snd": Op(_snd),
}


def _families() -> None:
    from . import arith, axes, bundles, flows, learned, losses, symmetry, tied

    for family in (arith, axes, bundles, flows, learned, losses, symmetry, tied):
        for name, op in family.OPS.items():
            assert name not in OPS, name
            OPS[name] = op
    from ... import extend

    extend.attach(OPS)  # plugins registered before the lowering loaded


_families()
