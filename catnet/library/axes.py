"""Axes and windows: the ``axes`` family of generators (``docs/language.md`` §11).

* ``transpose(1, 0)`` permutes the axes of a wire (real or ids): output
  axis ``i`` is input axis ``perm[i]``; without arguments it reverses them,
  as NumPy's does.  A permutation is an isomorphism.
* ``sum``, ``mean``, ``max`` reduce one axis (``axis=-1``), dropping it
  unless ``keepdims=true``.
* ``slice(start, size, axis)`` keeps ``size`` entries of an axis from
  ``start``; ``size`` may be symbolic (``slice(size=T)`` on a table of
  1024 learned positions).  With numbers the checker proves that the slice
  fits; with a symbol the lowering checks it when the model is traced
  (E0802 at the box).  ``last(axis=0)`` is the last entry of an axis,
  which it drops (the last step of a sequence).
* ``pad(width, mode)`` pads every spatial axis of ``R[L, C]`` or
  ``R[H, W, C]`` by ``width`` cells on both sides (``"constant"`` zeros,
  ``"reflect"``, ``"edge"``, NumPy's modes).
* ``upsample(factor, method)`` multiplies every spatial size by ``factor``
  (``"nearest"`` repeats cells, ``"bilinear"`` interpolates with
  half-pixel centres, PyTorch's ``align_corners=False``).
* ``conv_transpose(features, kernel, stride, padding, bias)`` is PyTorch's
  transposed convolution (the gradient of a convolution): per spatial axis
  ``(n - 1) * s - 2p + k`` for integer padding ``p``; ``"same"`` gives
  ``n * s`` and ``"valid"`` ``n * s + max(k - s, 0)`` (Flax's).

"""

from __future__ import annotations

from .. import dims
from ..dims import Dim
from ..ir import Ob, Ty, Value
from . import (
    _BIAS,
    _FEATURES,
    Arg,
    Generator,
    Rule,
    RuleContext,
    _axis_index,
    _count_conv,
    _features,
    _like,
    _one,
    _require_real,
    _spatial,
    _tensor,
    register,
)

def _show(ctx: RuleContext, d: Dim) -> str:
    return dims.show(ctx.resolve(d)).replace("?", "_")  # unsolved sizes print as `_`


# -- transpose ------------------------------------------------------------------


def _transpose(ctx: RuleContext, dom: Ty, args: dict[str, Value]) -> Ty:
    ob = _one(dom)
    shape = _tensor(ctx, ob, "`transpose`")
    given = args["perm"]
    assert isinstance(given, tuple)
    perm = tuple(int(a) for a in given) or tuple(reversed(range(len(shape))))
    written = f"transpose({', '.join(map(str, perm))})"
    if sorted(perm) != list(range(len(shape))):
        ctx.fail(f"`{written}` is not a permutation of the {len(shape)} axes of {ob}",
                 f"list each axis from 0 to {len(shape) - 1} once, e.g. `transpose({', '.join(map(str, reversed(range(len(shape)))))})`"
                 if shape else "a scalar has no axes to permute")
    args["perm"] = perm
    return _like(ob, tuple(shape[p] for p in perm))


# -- reductions -----------------------------------------------------------------


def _along(ctx: RuleContext, dom: Ty, args: dict[str, Value], name: str, does: str) -> tuple[Ob, tuple[Dim, ...], int]:
    """The input wire, its shape and the index of ``args["axis"]``, for a generator that ``does`` something to one axis."""
    ob = _one(dom)
    shape = _tensor(ctx, ob, f"`{name}`")
    if not shape:
        ctx.fail(f"`{name}` {does}, but its input {ob} is a scalar")
    return ob, shape, _axis_index(ctx, name, int(args["axis"]), len(shape))  # type: ignore[arg-type]


def _reduce(name: str) -> Rule:
    def rule(ctx: RuleContext, dom: Ty, args: dict[str, Value]) -> Ty:
        ob, shape, ax = _along(ctx, dom, args, name, "reduces an axis")
        _require_real(ctx, ob, name)
        kept: tuple[Dim, ...] = (1,) if args["keepdims"] else ()
        return _like(ob, shape[:ax] + kept + shape[ax + 1 :])

    return rule


# -- slicing ----------------------------------------------------------------------


def _slice(ctx: RuleContext, dom: Ty, args: dict[str, Value]) -> Ty:
    ob, shape, ax = _along(ctx, dom, args, "slice", "cuts an axis")
    start = args["start"]
    size = args.get("size")
    if size is None:
        size = ctx.fresh()
        args["size"] = size
    length = ctx.resolve(shape[ax])
    end = ctx.resolve(dims.add(size, start))  # type: ignore[arg-type]
    # Past the end for every value of the sizes: refused now.  A symbolic
    # size that may or may not fit is checked by the lowering.
    over = dims.least(dims.sub(end, length))
    if over is not None and over > 0:
        ctx.fail(f"`slice(start={_show(ctx, start)}, size={_show(ctx, size)}, axis={args['axis']})` ends at {_show(ctx, end)}, "  # type: ignore[arg-type]
                 f"past the end of axis {ax} of size {_show(ctx, length)}",
                 "a slice must lie inside the axis: make it shorter or start it earlier")
    out = list(shape)
    out[ax] = size  # type: ignore[assignment]
    return _like(ob, tuple(out))


def _last(ctx: RuleContext, dom: Ty, args: dict[str, Value]) -> Ty:
    ob, shape, ax = _along(ctx, dom, args, "last", "takes the last entry of an axis")
    return _like(ob, shape[:ax] + shape[ax + 1 :])


# -- spatial resizing ---------------------------------------------------------------


def _pad(ctx: RuleContext, dom: Ty, args: dict[str, Value]) -> Ty:
    ob = _one(dom)
    shape = _spatial(ctx, ob, "pad")
    w, mode = int(args["width"]), str(args["mode"])  # type: ignore[arg-type]
    if mode == "reflect":
        # Reflection mirrors the cells next to the border, not the border
        # itself, so an axis needs more cells than the width (as in PyTorch).
        for d in shape[:-1]:
            room = dims.least(dims.sub(ctx.resolve(d), w))
            if room is None or room < 1:
                ctx.fail(f"`pad(width={w}, mode=\"reflect\")` needs every spatial size to be more than {w}, "
                         f"but one is {_show(ctx, d)}", "use a smaller width, or mode=\"edge\"")
    out = tuple(dims.add(d, 2 * w) for d in shape[:-1])
    return _like(ob, out + (shape[-1],))


def _upsample(ctx: RuleContext, dom: Ty, args: dict[str, Value]) -> Ty:
    ob = _one(dom)
    shape = _spatial(ctx, ob, "upsample")
    f = int(args["factor"])  # type: ignore[arg-type]
    return _like(ob, tuple(dims.mul(d, f) for d in shape[:-1]) + (shape[-1],))


def _transposed_size(ctx: RuleContext, size: Dim, kernel: int, stride: int, padding: str | int) -> Dim:
    """The size of one spatial axis after ``conv_transpose`` (see the module docstring)."""
    n = ctx.resolve(size)
    grown = dims.mul(n, stride)
    if padding == "same":
        return grown
    if padding == "valid":
        return dims.add(grown, max(kernel - stride, 0))
    out = dims.add(dims.mul(dims.sub(n, 1), stride), kernel - 2 * int(padding))
    least = dims.least(out)
    if least is None or least < 1:
        ctx.fail(f"`conv_transpose(padding={padding})` crops the output of an input size {dims.show(n)} "
                 f"(kernel {kernel}, stride {stride}) to nothing: (n - 1) * {stride} - 2 * {padding} + {kernel} "
                 f"is {dims.show(out) if isinstance(out, int) else 'not always positive'}",
                 "use less padding, a larger kernel or a larger input")
    return out


def _conv_transpose(ctx: RuleContext, dom: Ty, args: dict[str, Value]) -> Ty:
    ob = _one(dom)
    shape = _spatial(ctx, ob, "conv_transpose")
    k, s, pad = int(args["kernel"]), int(args["stride"]), args["padding"]  # type: ignore[arg-type]
    out = tuple(_transposed_size(ctx, d, k, s, pad) for d in shape[:-1])  # type: ignore[arg-type]
    return _like(ob, out + (_features(ctx, args),))


_AXIS0 = Arg("axis", "int", 0)
_REDUCE = (Arg("axis", "int", -1), Arg("keepdims", "bool", False))

register(Generator("transpose", _transpose, (Arg("perm", "ints", (), low=0, high=63),),
                   iso=True, doc="permute the axes: transpose(1, 0) on R[a, b] gives R[b, a]", family="axes"))
register(Generator("sum", _reduce("sum"), _REDUCE, doc="sum over an axis", family="axes"))
register(Generator("mean", _reduce("mean"), _REDUCE, doc="mean over an axis", family="axes"))
register(Generator("max", _reduce("max"), _REDUCE, doc="maximum over an axis", family="axes"))
register(Generator("slice", _slice, (Arg("start", "dim", 0, low=0), Arg("size", "dim", None), _AXIS0),
                   doc="`size` entries of an axis from `start`", family="axes"))
register(Generator("last", _last, (_AXIS0,), doc="the last entry of an axis: R[T, d] -> R[d]", family="axes"))
register(Generator("pad", _pad, (Arg("width", "int", 1, low=0, high=1024), Arg("mode", "str", "constant", choices=("constant", "reflect", "edge"))),
                   doc="pad every spatial axis on both sides", family="axes"))
register(Generator("upsample", _upsample, (Arg("factor", "int", 2, low=1, high=64), Arg("method", "str", "nearest", choices=("nearest", "bilinear"))),
                   doc="every spatial size times `factor`", family="axes"))
register(Generator(
    "conv_transpose",
    _conv_transpose,
    (_FEATURES, Arg("kernel", "int", 3, low=1, high=64), Arg("stride", "int", 1, low=1, high=64),
     Arg("padding", "padding", 0, choices=("same", "valid")), _BIAS),
    params=True,
    count=_count_conv,
    doc="transposed convolution (PyTorch's ConvTranspose), channels last",
    family="axes",
))
