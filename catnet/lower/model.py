"""The lowering functor: a checked diagram to a Flax NNX module.

Objects go to arrays with one leading batch axis (``R`` in the model's
computation dtype, float32 unless ``catnet.compile(dtype=...)`` says
otherwise; ``Z`` as int32); boxes go to the entries of
:data:`catnet.lower.ops.OPS`; ``;`` is running layers in order and ``⊗`` is
the flat list of wires each layer reads a slice of.  The IR is walked at trace time only, so under ``jax.jit``
the program is the one a hand-written Flax model gives.

Parameters follow Para: every box occurrence owns a fresh module, except
boxes with a ``shared`` name, which all use the one instance kept on the
root under that name.  A diagram's modules live on a :class:`Node` as
attributes named after the boxes (``encoder``, ``dense``), and a name used
twice in one diagram becomes a list (``dense[0]``, ``dense[1]``), so
``nnx.state(model)`` reads like the ``.cat`` file.

``repeat n f`` keeps one module whose variables carry a leading axis of
size ``n`` and runs it with ``jax.lax.scan``: XLA compiles the body once
whatever ``n`` is.  ``scan`` boxes (traces) scan the body over the sequence
axis with the state wires starting at zero.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable, Generic, Sequence, TypeVar

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from .. import dims
from ..check import require_lowerable
from ..check.inputs import Given, bind_size, check_ids, check_inputs, embed_readers, given
from ..errors import CatnetError
from ..ir import Box, Diagram, Ob, Span, Ty, first_not_iso
from . import names
from .ops import OPS, Op
from .precision import FLOAT32, Precision

Array = jax.Array
Wires = list[Array]
T = TypeVar("T")


class Static(Generic[T]):
    """A static attribute compared by identity first and hashed once.

    The IR is a deep tree of frozen dataclasses whose hash is recomputed on
    every call; graph definitions hash their static attributes, so the IR
    rides in this holder to keep that cost out of every jitted call.
    """

    __slots__ = ("value", "_hash")

    def __init__(self, value: T) -> None:
        self.value = value
        self._hash = hash(value)

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Static) and (self.value is other.value or self.value == other.value)

    def __repr__(self) -> str:
        return f"Static({type(self.value).__name__})"


def dtype_of(ob: Ob, real: Any = jnp.float32) -> Any:
    """The array dtype of one wire: int32 for ``Z``, ``real`` (the computation dtype) otherwise."""
    return jnp.int32 if ob.base == "Z" else real


def _in_dtype(wires: Wires, dtype: Any) -> Wires:
    """``wires`` with the floating ones cast to ``dtype`` (integer wires unchanged)."""
    return [x.astype(dtype) if jnp.issubdtype(x.dtype, jnp.floating) and x.dtype != dtype else x for x in wires]


def _handed_on(outs: Wires, module: Any, ctx: Context) -> Wires:
    """A generator's outputs as the next box gets them.

    A box with a module hands its real outputs on in the computation dtype:
    Flax layers compute in it already, and a module of its own (``learned``,
    flows, plugins) whose float32 weights promote its arithmetic to float32
    is cast back.  Pure functions keep the dtype their inputs give, so sums
    of float32 losses stay float32.
    """
    return outs if module is None else _in_dtype(outs, ctx.dtype)


# -- checks the lowering makes -----------------------------------------------------


def _unsupported(box: Box, what: str) -> CatnetError:
    return CatnetError(
        "E0601",
        f"`{box.name}` cannot be lowered to JAX yet: {what}",
        box.span,
        help="`catnet check` and `catnet render` accept it; training needs a plain tensor version",
    )


def _op(box: Box) -> Op:
    op = OPS.get(box.name)
    if op is None:
        raise _unsupported(box, "the lowering has no implementation of this generator")
    return op


def _check_lowerable(box: Box) -> None:
    """What ``check.require_lowerable`` leaves to the lowering: the table's names."""
    if box.kind in ("generator", "structural"):
        _op(box)


def _random(diagram: Diagram) -> bool:
    """Whether running ``diagram`` in training mode draws random keys."""
    return any(box.kind == "generator" and _op(box).draws(box) for box in diagram.all_boxes())


# -- the module tree -------------------------------------------------------------


class Node(nnx.Module):
    """The modules of one diagram, one attribute per box name.

    ``_slots[i]`` says where the module of layer ``i`` lives (see
    :func:`catnet.lower.names.slots`).
    """

    def __init__(self, diagram: Diagram, *, rngs: nnx.Rngs, taken: Sequence[str] = ()) -> None:
        self._slots = names.slots(diagram, taken)
        groups: dict[str, list[nnx.Module]] = {}
        for layer, slot in zip(diagram.layers, self._slots):
            if slot is not None:
                groups.setdefault(slot[0], []).append(build(layer.box, rngs))
        for attr, group in groups.items():
            setattr(self, attr, group[0] if len(group) == 1 else nnx.List(group))

    def child(self, i: int) -> Any:
        """The module of layer ``i``, or ``None``."""
        slot = self._slots[i]
        if slot is None:
            return None
        group = getattr(self, slot[0])
        return group if slot[1] is None else group[slot[1]]


def build(box: Box, rngs: nnx.Rngs) -> nnx.Module:
    """A fresh module for one occurrence of a box that owns one."""
    if box.kind in ("generator", "structural"):
        make = _op(box).make
        assert make is not None
        return make(box, rngs)
    body = names.inner_body(box)
    if box.kind == "repeat":
        n = int(box.kwargs["n"])  # type: ignore[arg-type]

        # One vmapped construction makes all n copies at once, each from its
        # own split of the keys: stacked variables with a leading axis n.
        @nnx.split_rngs(splits=n)
        @nnx.vmap(in_axes=(0,), out_axes=0)
        def stacked(r: nnx.Rngs) -> Node:
            return Node(body, rngs=r)

        return stacked(rngs)
    return Node(body, rngs=rngs)


# -- running the functor -----------------------------------------------------------


class Context:
    """Trace-time state of one forward pass.

    ``train`` switches dropout and batch statistics; ``dtype`` is the dtype
    real wires are computed in; ``batch`` is the batch size (boxes from the
    unit ``I`` broadcast their output to it); ``key()`` hands out a
    fresh random key per call (a fold-in of one base key, so the program is
    a pure function of the model state); ``shared`` holds the shared
    instances by name; ``env`` the sizes bound to dimension symbols.
    """

    def __init__(
        self,
        train: bool,
        key: Array | None,
        shared: dict[str, Any],
        env: dict[str, int],
        batch: int = 1,
        condition: Array | None = None,
        dtype: Any = jnp.float32,
    ) -> None:
        self.train = train
        self.dtype = dtype
        self.batch = batch
        self._key = key
        self._count = 0
        self.shared = shared
        self.env = env
        self.condition = condition

    @property
    def has_key(self) -> bool:
        return self._key is not None

    def key(self) -> Array:
        assert self._key is not None, "dropout in training mode needs the model's random stream"
        self._count += 1
        # The base key is fresh for this call already: hand it out as is the
        # first time (most models have one dropout), fold in after that.
        return self._key if self._count == 1 else jax.random.fold_in(self._key, self._count)

    def inner(self, key: Array | None, shared: dict[str, Any]) -> "Context":
        """The context inside one step of a scan."""
        return Context(self.train, key, shared, dict(self.env), self.batch, self.condition, self.dtype)

    def bind(self, ty: Ty, wires: Sequence[Array]) -> None:
        """Learn symbol sizes from the actual shapes of wires of type ``ty``."""
        for ob, x in zip(ty.obs, wires):
            for d, n in zip(ob.shape, x.shape[1:]):
                if isinstance(d, dims.Poly):
                    bind_size(d, int(n), self.env)

    def size(self, d: dims.Dim) -> int:
        """A dimension as a number, from the symbols bound so far."""
        v = dims.subst(d, self.env)
        assert isinstance(v, int), f"size {dims.show(d)} is not known from the inputs"
        return v


def run(diagram: Diagram, node: Node | None, wires: Wires, ctx: Context) -> Wires:
    """The diagram's function: layers in order, each on its slice of wires."""
    assert len(wires) == len(diagram.dom)
    for i, layer in enumerate(diagram.layers):
        k, n = len(layer.left), len(layer.box.dom)
        module = node.child(i) if node is not None else None
        outs = apply_box(layer.box, module, wires[k : k + n], ctx)
        wires = wires[:k] + outs + wires[k + n :]
    return wires


def run_inverse(diagram: Diagram, node: Node | None, wires: Wires, ctx: Context) -> Wires:
    """The inverse of an iso diagram: layers in reverse, each box inverted."""
    assert len(wires) == len(diagram.cod)
    for i in reversed(range(len(diagram.layers))):
        layer = diagram.layers[i]
        k, n = len(layer.left), len(layer.box.cod)
        module = node.child(i) if node is not None else None
        outs = apply_box(layer.box, module, wires[k : k + n], ctx, inverse=True)
        wires = wires[:k] + outs + wires[k + n :]
    return wires


def run_ld(diagram: Diagram, node: Node | None, wires: Wires, ctx: Context, inverse: bool = False) -> tuple[Wires, Array]:
    """The second lowering of an iso diagram: its map (or inverse) and ``log|det J|`` per example.

    Composition and ``⊗`` add the boxes' log-determinants (every layer is
    one box beside identities), ``inv`` runs its body the other way with
    the inverse's log-determinants, and ``repeat`` sums its copies'.
    """
    ld = jnp.zeros((ctx.batch,), jnp.float32)
    n_layers = len(diagram.layers)
    for i in reversed(range(n_layers)) if inverse else range(n_layers):
        layer = diagram.layers[i]
        k = len(layer.left)
        n = len(layer.box.cod if inverse else layer.box.dom)
        module = node.child(i) if node is not None else None
        outs, part = apply_box_ld(layer.box, module, wires[k : k + n], ctx, inverse)
        wires = wires[:k] + outs + wires[k + n :]
        ld = ld + part
    return wires, ld


def _bind_arguments(box: Box, wires: Wires, ctx: Context, inverse: bool) -> None:
    """Learn the symbols a generator's arguments use (``slice(size=T)``) from the wires it gets."""
    if any(isinstance(v, dims.Poly) for _, v in box.args) or any(
        isinstance(v, tuple) and any(isinstance(x, dims.Poly) for x in v) for _, v in box.args
    ):
        ctx.bind(box.cod if inverse else box.dom, wires)


def no_log_det(box: Box) -> CatnetError:
    """E0601 for an iso whose lowering has no log-determinant (a plugin's, say)."""
    return CatnetError(
        "E0601",
        f"`{box.name}` is invertible, but its lowering has no log-determinant",
        box.span,
        help="a likelihood needs `log|det J|` of every box; a plugin gives it with `forward_ld`/`inverse_ld` "
        "(or `volume_preserving=True`)",
    )


def apply_box_ld(box: Box, module: Any, wires: Wires, ctx: Context, inverse: bool = False) -> tuple[Wires, Array]:
    """One iso box with its log-determinant: ``(outputs, log|det J|)`` (inputs when ``inverse``)."""
    if box.shared is not None:
        module = ctx.shared.get(box.shared)
    if box.kind in ("generator", "structural"):
        op = _op(box)
        if not op.has_log_det:
            raise no_log_det(box)
        _bind_arguments(box, wires, ctx, inverse)
        if op.volume_preserving:
            outs = (op.inverse if inverse else op.apply)(module, wires, box, ctx)  # type: ignore[misc]
            return _handed_on(outs, module, ctx), jnp.zeros((ctx.batch,), jnp.float32)
        fn = op.inverse_ld if inverse else op.forward_ld
        assert fn is not None
        outs, ld = fn(module, wires, box, ctx)
        return _handed_on(outs, module, ctx), ld.astype(jnp.float32)
    if box.kind == "composite":
        assert box.body is not None
        return run_ld(box.body, module, wires, ctx, inverse)
    if box.kind == "inv":
        return run_ld(names.inner_body(box), module, wires, ctx, not inverse)
    if box.kind == "repeat":
        return _repeat_ld(box, module, wires, ctx, inverse)
    raise AssertionError(f"`{box.name}` ({box.kind}) is not an isomorphism")


def apply_box(box: Box, module: Any, wires: Wires, ctx: Context, inverse: bool = False) -> Wires:
    """One box on its input wires (its output wires when ``inverse``)."""
    if box.shared is not None:
        module = ctx.shared.get(box.shared)
    if box.kind in ("generator", "structural"):
        op = _op(box)
        _bind_arguments(box, wires, ctx, inverse)
        fn = op.inverse if inverse else op.apply
        assert fn is not None, f"{box.name} is not an isomorphism"
        if op.float32:  # a loss: float32 in and out whatever the model computes in
            return fn(module, _in_dtype(wires, jnp.float32), box, ctx)
        return _handed_on(fn(module, wires, box, ctx), module, ctx)
    if box.kind == "composite":
        assert box.body is not None
        return (run_inverse if inverse else run)(box.body, module, wires, ctx)
    if box.kind == "inv":
        return (run if inverse else run_inverse)(names.inner_body(box), module, wires, ctx)
    if box.kind == "repeat":
        return _repeat(box, module, wires, ctx, inverse)
    assert box.kind == "scan", box.kind
    assert not inverse, "a trace is not an isomorphism"
    return _trace(box, module, wires, ctx)


def _shared_modules(ctx: Context) -> tuple[tuple[str, ...], tuple[Any, ...]]:
    keys = tuple(sorted(ctx.shared))
    return keys, tuple(ctx.shared[k] for k in keys)


StepFn = Callable[[Any, Any, Any, Context], tuple[Any, Any]]


def module_scan(
    step: StepFn,
    carry: Any,
    xs: Any,
    length: int,
    ctx: Context,
    *,
    stacked: Any = None,
    fixed: Any = None,
    reverse: bool = False,
) -> tuple[Any, Any]:
    """``jax.lax.scan`` over steps that call NNX modules.

    ``stacked`` has a leading axis of ``length`` and gives step ``t`` its
    slice; ``fixed`` (and the shared instances) are used by every step.
    Modules are split into parameters and other state and merged again
    inside the step, so batch statistics and the like are threaded through
    the scan (per-step state as scan outputs, fixed state in the carry) and
    written back afterwards, instead of being mutated across trace levels.
    ``step(carry, x, (stacked_slice, fixed), ctx) -> (carry, y)``.
    """
    shared_names, shared = _shared_modules(ctx)
    s_def, s_params, s_rest = nnx.split(stacked, nnx.Param, ...)
    f_def, f_params, f_rest = nnx.split((fixed, shared), nnx.Param, ...)
    keys = jax.random.split(ctx.key(), length) if ctx.train and ctx.has_key else None

    def body(c: tuple[Any, Any], x: tuple[Any, Any, Any, Any]) -> tuple[Any, Any]:
        inner_carry, f_state = c
        sp, sr, key, xt = x
        here = nnx.merge(s_def, sp, sr)
        fixed_here, shared_here = nnx.merge(f_def, f_params, f_state)
        inner = ctx.inner(key, dict(zip(shared_names, shared_here)))
        inner_carry, y = step(inner_carry, xt, (here, fixed_here), inner)
        _, _, sr = nnx.split(here, nnx.Param, ...)
        _, _, f_state = nnx.split((fixed_here, shared_here), nnx.Param, ...)
        return (inner_carry, f_state), (sr, y)

    (carry, f_rest), (s_rest, ys) = jax.lax.scan(
        body, (carry, f_rest), (s_params, s_rest, keys, xs), length=length, reverse=reverse
    )
    if stacked is not None:
        nnx.update(stacked, s_rest)
    nnx.update((fixed, shared), f_rest)
    return carry, ys


def _repeat(box: Box, stacked: Any, wires: Wires, ctx: Context, inverse: bool) -> Wires:
    body = names.inner_body(box)
    assert body.dom == body.cod
    go = run_inverse if inverse else run

    def step(carry: Wires, x: Any, modules: tuple[Any, Any], inner: Context) -> tuple[Wires, None]:
        return go(body, modules[0], carry, inner), None

    # The inverse of f;f;...;f runs the inverted copies last to first.
    out, _ = module_scan(step, list(wires), None, int(box.kwargs["n"]), ctx, stacked=stacked, reverse=inverse)  # type: ignore[arg-type]
    return list(out)


def _repeat_ld(box: Box, stacked: Any, wires: Wires, ctx: Context, inverse: bool) -> tuple[Wires, Array]:
    body = names.inner_body(box)

    def step(carry: tuple[Wires, Array], x: Any, modules: tuple[Any, Any], inner: Context) -> tuple[tuple[Wires, Array], None]:
        w, ld = carry
        out, part = run_ld(body, modules[0], w, inner, inverse)
        return (out, ld + part), None

    start = (list(wires), jnp.zeros((ctx.batch,), jnp.float32))
    (out, ld), _ = module_scan(step, start, None, int(box.kwargs["n"]), ctx, stacked=stacked, reverse=inverse)  # type: ignore[arg-type]
    return list(out), ld


def _trace(box: Box, node: Any, wires: Wires, ctx: Context) -> Wires:
    body = names.inner_body(box)
    n_state = int(box.kwargs.get("state", len(body.dom) - len(box.dom)))  # type: ignore[arg-type]
    state_obs = body.dom.obs[:n_state]
    ctx.bind(box.dom, wires)
    batch, length = wires[0].shape[0], wires[0].shape[1]
    init = [
        jnp.zeros((batch,) + tuple(ctx.size(d) for d in ob.shape), dtype_of(ob, ctx.dtype)) for ob in state_obs
    ]
    xs = [jnp.moveaxis(x, 1, 0) for x in wires]

    def step(state: Wires, xt: Wires, modules: tuple[Any, Any], inner: Context) -> tuple[Wires, Wires]:
        out = run(body, modules[1], list(state) + list(xt), inner)
        return out[:n_state], out[n_state:]

    _, ys = module_scan(step, init, xs, int(length), ctx, fixed=node)
    return [jnp.moveaxis(y, 0, 1) for y in ys]


# -- the root ---------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """What the checks on a model's inputs know of its entry morphism.

    ``span`` and ``source`` locate input errors at the definition;
    ``readers`` pairs each domain wire that holds token ids with the
    ``embed`` that reads them (see ``catnet.check.inputs.embed_readers``).
    """

    name: str
    span: Span | None
    source: str | None
    readers: tuple[tuple[int, Box], ...]

    def locate(self, error: CatnetError) -> CatnetError:
        if error.span is None:
            error.span = self.span
            error.source = error.source or self.source
        return error

    def quote(self, error: CatnetError) -> CatnetError:
        """``error`` with the entry's source text, where it points into the entry's file."""
        if error.source is None and error.span is not None and self.span is not None and error.span.file == self.span.file:
            error.source = self.source
        return error


def _given(x: Any) -> tuple[Any, Given]:
    """An input as an array (lists become NumPy arrays), and what the checks need of it."""
    if not (hasattr(x, "shape") and hasattr(x, "dtype")):
        try:
            array = np.asarray(x)
        except (ValueError, TypeError):  # ragged nesting, objects NumPy refuses
            return x, Given((), "other", "object", given(x))
        if array.dtype.kind in "OUSV":
            return x, Given((), "other", str(array.dtype), given(x))
        x = array
    kind = "float" if jnp.issubdtype(x.dtype, jnp.floating) else "int" if jnp.issubdtype(x.dtype, jnp.integer) else "other"
    return x, Given(tuple(int(n) for n in x.shape), kind, str(x.dtype))


def _check_token_ids(dom: Ty, index: int, x: Any, box: Box) -> None:
    """Token ids against ``embed``'s vocabulary, for a concrete array only.

    Under ``jax.jit`` the input is a tracer whose values are unknown, and
    checking them there would cost every step: the check is skipped, and
    ``catnet train`` checks its data once before training instead.
    """
    if isinstance(x, jax.core.Tracer) or x.size == 0:
        return
    vocab = int(box.kwargs["vocab"])  # type: ignore[arg-type]
    xp = jnp if isinstance(x, jax.Array) else np
    low, high = int(xp.min(x)), int(xp.max(x))
    if 0 <= low and high < vocab:
        return
    host = np.asarray(x)
    at = tuple(int(i) for i in np.argwhere((host < 0) | (host >= vocab))[0])
    check_ids(dom, index, low, high, box, (at, int(host[at])))


class Model(Node):
    """A compiled diagram: ``model(*inputs) -> outputs``.

    Takes one array per domain wire, each with a leading batch axis, and
    returns the codomain: one array for one wire, a tuple otherwise.
    ``model.train()`` (the default) and ``model.eval()`` switch dropout and
    batch statistics.  ``precision`` (:class:`catnet.lower.precision.Precision`)
    says which dtype the parameters are kept in and which dtype real wires
    are computed in.  Shared instances are attributes named after their
    ``shared`` name.

    The inputs are checked against the domain when the call is traced (the
    shapes are static, so a jitted step pays nothing): their number, rank,
    per-example sizes, batch size and dtype kind, and — for a concrete
    array, not under ``jax.jit`` — token ids against the ``vocab`` of the
    ``embed`` reading them.  A mismatch raises ``CatnetError`` E0802 at the
    entry's definition.
    """

    def __init__(
        self,
        diagram: Diagram,
        *,
        rngs: nnx.Rngs,
        name: str = "the entry",
        span: Span | None = None,
        source: str | None = None,
        precision: Precision = FLOAT32,
    ) -> None:
        require_lowerable(diagram, name)
        for box in diagram.all_boxes():
            _check_lowerable(box)
        # Shared instances first, on the root, named after their `shared`
        # name: built once, before any vmapped `repeat` construction could
        # stack them.
        taken: list[str] = []
        shared_attrs: list[tuple[str, str]] = []
        for shared_name, box in names.shared_instances(diagram).items():
            box = replace(box, shared=None)
            if names.owns_module(box):
                attr = names.attribute(shared_name, taken)
                taken.append(attr)
                setattr(self, attr, build(box, rngs))
                shared_attrs.append((shared_name, attr))
        super().__init__(diagram, rngs=rngs, taken=taken)
        self._diagram = Static(diagram)
        self._entry = Static(Entry(name, span, source, tuple(embed_readers(diagram).items())))
        self._shared = tuple(shared_attrs)
        self.deterministic = False
        self._rngs = rngs.dropout.fork() if _random(diagram) else None
        self._precision = precision
        precision.apply(self)

    @property
    def precision(self) -> Precision:
        """The dtypes of the parameters and of the computation."""
        return self._precision

    @property
    def diagram(self) -> Diagram:
        return self._diagram.value

    @property
    def shared_instances(self) -> tuple[tuple[str, str], ...]:
        """The shared instances, in the order the lowering built them: ``(shared name, attribute of the model)``."""
        return self._shared

    @property
    def dom(self) -> Ty:
        return self.diagram.dom

    @property
    def cod(self) -> Ty:
        return self.diagram.cod

    def _inputs(self, inputs: Sequence[Any], ty: Ty | None = None) -> Wires:
        """The inputs checked against ``ty`` (the domain by default; E0802) and cast to the wires' dtypes.

        Real wires take the computation dtype, so a float32 array feeds a
        bfloat16 model as it is.
        """
        entry: Entry = self._entry.value
        dom = self.diagram.dom if ty is None else ty
        try:
            described = [_given(x) for x in inputs]
            check_inputs(dom, [g for _, g in described], entry.name)
            arrays = [x for x, _ in described]
            if ty is None:
                for index, box in entry.readers:
                    _check_token_ids(dom, index, arrays[index], box)
        except CatnetError as e:
            raise entry.locate(e) from None
        return [jnp.asarray(x, dtype_of(ob, self._precision.dtype)) for ob, x in zip(dom.obs, arrays)]

    def _context(self, wires: Wires, ty: Ty, condition: Any = None) -> Context:
        train = not self.deterministic
        key = self._rngs() if train and self._rngs is not None else None
        batch = int(wires[0].shape[0]) if wires else 1
        if condition is not None:
            condition = jnp.asarray(condition, jnp.float32)
        shared = {name: getattr(self, attr) for name, attr in self._shared}
        ctx = Context(train, key, shared, {}, batch, condition, self._precision.dtype)
        ctx.bind(ty, wires)
        return ctx

    def _traced(self, inputs: Sequence[Any], ty: Ty | None, condition: Any, go: Callable[[Wires, Context], T]) -> T:
        """``go`` on the checked inputs (of ``ty``; the domain by default) in a fresh context.

        An error raised while tracing (a `slice` past its input) shows its line.
        """
        wires = self._inputs(inputs, ty)
        ctx = self._context(wires, self.diagram.dom if ty is None else ty, condition)
        try:
            return go(wires, ctx)
        except CatnetError as e:
            raise self._entry.value.quote(e) from None

    def __call__(self, *inputs: Any) -> Any:
        out = self._traced(inputs, None, None, lambda wires, ctx: run(self.diagram, self, wires, ctx))
        return _outputs(out)

    def run_lowering(self, go: Callable[[Wires, Context], T], *inputs: Any) -> T:
        """``go(wires, ctx)`` entered as ``__call__`` enters :func:`run`: for a second lowering of the diagram.

        The inputs are checked against the domain (E0802) and cast to the
        wires' dtypes, the context is fresh (training mode, dropout key,
        shared instances), and a diagnostic raised inside ``go`` shows its
        line.  ``catnet.analysis.activations`` walks the IR this way to
        return named wires from the model's own forward pass.
        """
        return self._traced(inputs, None, None, go)

    def locate(self, error: CatnetError) -> CatnetError:
        """``error``, located at the entry's definition when it has no place of its own."""
        return self._entry.value.locate(error)

    # -- the second lowering: isomorphisms with log-determinants -----------------------

    def _require_iso(self, what: str) -> None:
        """E0401 at the first box, in reading order, that is not invertible (the innermost one)."""
        entry: Entry = self._entry.value
        box = first_not_iso(self.diagram)
        if box is not None:
            raise entry.quote(CatnetError(
                "E0401",
                f"`{entry.name}` is not an isomorphism, so it has no {what}: `{box.name}` is not invertible",
                box.span or entry.span,
                help="the invertible generators are listed in docs/language.md §6.8; a flow is built from them alone",
            ))

    def _run_ld(self, outputs: Sequence[Any], inverse: bool, condition: Any) -> tuple[Any, Array]:
        ty = self.diagram.cod if inverse else self.diagram.dom
        out, ld = self._traced(outputs, ty, condition, lambda wires, ctx: run_ld(self.diagram, self, wires, ctx, inverse))
        return _outputs(out), ld

    def forward_log_det(self, *inputs: Any, condition: Any = None) -> tuple[Any, Array]:
        """``(outputs, log|det J|)`` of an isomorphism: the log-determinant per example, shape ``(batch,)``.

        ``condition`` gives base points to a bundle's trivialization, which
        then takes the chart of each (training with known base points);
        without it the chart is found from the input.  A morphism with a
        box that is not invertible is E0401 at that box.
        """
        self._require_iso("log-determinant")
        return self._run_ld(inputs, False, condition)

    def inverse(self, *outputs: Any, condition: Any = None) -> Any:
        """The inverse of an isomorphism: codomain wires back to domain wires (E0401 if not invertible).

        Only the inverse maps run (what ``inv`` of the morphism runs), so an
        isomorphism without log-determinants (a plugin's) inverts too.
        """
        self._require_iso("inverse")
        out = self._traced(outputs, self.diagram.cod, condition, lambda wires, ctx: run_inverse(self.diagram, self, wires, ctx))
        return _outputs(out)

    def inverse_log_det(self, *outputs: Any, condition: Any = None) -> tuple[Any, Array]:
        """``(inputs, log|det J|)`` of the inverse map (minus the forward's at those inputs)."""
        self._require_iso("inverse")
        return self._run_ld(outputs, True, condition)


def _outputs(wires: Wires) -> Any:
    """One array for one wire, a tuple for several (what a model returns)."""
    return wires[0] if len(wires) == 1 else tuple(wires)
