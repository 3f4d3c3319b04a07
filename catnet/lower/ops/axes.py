"""The lowering of the ``axes`` family (``catnet.library.axes``).

Per-example axes of the IR are shifted by one for the batch axis.  The one
check left to run time is a ``slice`` whose size is symbolic: its length is
known only when the model is traced, and a slice past the end raises
``CatnetError`` E0802 at the box (``jax.lax`` would clip it silently).
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
from flax import nnx

from ... import dims
from ...errors import CatnetError
from ...ir import Box
from . import Array, Context, Op, Wires, _arg, _call, _in_features, _int, _padding, _spatial_rank, example_axis


def _transpose(module: Any, wires: Wires, box: Box, ctx: Context) -> Wires:
    (x,) = wires
    return [jnp.transpose(x, (0,) + tuple(p + 1 for p in _arg(box, "perm")))]


def _untranspose(module: Any, wires: Wires, box: Box, ctx: Context) -> Wires:
    (y,) = wires
    perm = _arg(box, "perm")
    inverse = sorted(range(len(perm)), key=lambda i: perm[i])
    return [jnp.transpose(y, (0,) + tuple(p + 1 for p in inverse))]


def _reduce(fn: Callable[..., Array]) -> Callable[[Any, Wires, Box, Context], Wires]:
    def apply(module: Any, wires: Wires, box: Box, ctx: Context) -> Wires:
        (x,) = wires
        return [fn(x, axis=example_axis(box) + 1, keepdims=bool(_arg(box, "keepdims")))]

    return apply


def _slice(module: Any, wires: Wires, box: Box, ctx: Context) -> Wires:
    (x,) = wires
    axis = example_axis(box) + 1
    start, size = ctx.size(_arg(box, "start")), ctx.size(_arg(box, "size"))
    length = int(x.shape[axis])
    if start + size > length:
        shown = dims.show(_arg(box, "size"))
        raise CatnetError(
            "E0802",
            f"`slice(size={shown})` takes {size} entries of axis {axis - 1} from entry {start}, but its input has {length}",
            box.span,
            notes=[f"`{shown}` is {size} in this call", f"`slice` gets {box.dom.obs[0]}"],
            help=f"at most {length - start} entries fit from entry {start}: give a shorter input, or slice a longer table",
        )
    return [jax.lax.slice_in_dim(x, start, start + size, axis=axis)]


def _last(module: Any, wires: Wires, box: Box, ctx: Context) -> Wires:
    (x,) = wires
    return [jax.lax.index_in_dim(x, -1, axis=example_axis(box) + 1, keepdims=False)]


def _pad(module: Any, wires: Wires, box: Box, ctx: Context) -> Wires:
    (x,) = wires
    w = int(_arg(box, "width"))
    widths = [(0, 0)] + [(w, w)] * _spatial_rank(box) + [(0, 0)]
    return [jnp.pad(x, widths, mode=str(_arg(box, "mode")))]


def _upsample(module: Any, wires: Wires, box: Box, ctx: Context) -> Wires:
    (x,) = wires
    f = int(_arg(box, "factor"))
    spatial = range(1, 1 + _spatial_rank(box))
    if _arg(box, "method") == "nearest":
        for axis in spatial:
            x = jnp.repeat(x, f, axis=axis)
        return [x]
    # Half-pixel centres, as PyTorch's `align_corners=False`; no
    # antialiasing when enlarging.
    shape = tuple(n * f if i in spatial else n for i, n in enumerate(x.shape))
    return [jax.image.resize(x, shape, method="bilinear")]


def _make_conv_transpose(box: Box, rngs: nnx.Rngs) -> nnx.Module:
    n = _spatial_rank(box)
    k = int(_arg(box, "kernel"))
    pad = _arg(box, "padding")
    # PyTorch's padding p crops p cells of the full transposed convolution on
    # each side, which is padding k - 1 - p of the stretched input (negative
    # values crop); `transpose_kernel` makes it the gradient of a convolution,
    # PyTorch's definition, with the kernel stored (k…, out, in).
    padding = _padding(box) if isinstance(pad, str) else [(k - 1 - int(pad), k - 1 - int(pad))] * n
    return nnx.ConvTranspose(
        _in_features(box),
        _int(_arg(box, "features")),
        kernel_size=(k,) * n,
        strides=(int(_arg(box, "stride")),) * n,
        padding=padding,
        use_bias=bool(_arg(box, "bias")),
        transpose_kernel=True,
        rngs=rngs,
    )


OPS: dict[str, Op] = {
    "transpose": Op(_transpose, inverse=_untranspose, volume_preserving=True),  # a permutation of entries
    "sum": Op(_reduce(jnp.sum)),
    "mean": Op(_reduce(jnp.mean)),
    "max": Op(_reduce(jnp.max)),
    "slice": Op(_slice),
    "last": Op(_last),
    "pad": Op(_pad),
    "upsample": Op(_upsample),
    "conv_transpose": Op(_call, _make_conv_transpose),
}
