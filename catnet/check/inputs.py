"""What the Python API is given: its arguments and a compiled model's inputs.

JAX-free, so ``catnet.load`` and ``catnet train``'s data checks can use it
without loading JAX.  Three jobs:

* **Arguments** (:func:`bad_argument`, :func:`require_name`): a call of the
  Python API with a value of the wrong kind raises ``CatnetError`` E0801,
  saying what was expected and what was given (by type name), never a
  library's internals.
* **Model inputs** (:func:`check_inputs`, :func:`check_ids`): the arrays
  given to a compiled model are checked against the entry's domain — their
  number, each one's rank, each per-example axis against the wire's shape
  (sizes known as numbers must match; a symbol such as ``T`` must take one
  size across all wires), a common batch size, and the dtype kind (floats
  for ``R``, integers for ``Z``) — and token ids against the ``vocab`` of
  the ``embed`` that reads them; a mismatch raises E0802 naming the wire,
  the expected shape with ``batch`` first, and what was given.  The
  functions see shapes and dtype kinds only, so the model calls them at
  trace time and a jitted step pays nothing.
* **Which inputs are token ids** (:func:`vocab_bounds`,
  :func:`embed_readers`): each domain wire is followed through the boxes
  that pass values on unchanged (``id``, ``swap``, ``copy``, ``fst``,
  ``snd``, ``concat``, and into definitions, ``repeat``, ``inv`` and
  ``scan`` bodies) to the boxes that read it; the ``embed`` boxes among
  them bound its ids.  The walk is iterative and visits each definition's
  body once per set of followed wires, so its cost does not grow with the
  nesting depth or with how often a definition is used.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generator, Sequence

from .. import dims
from ..errors import CatnetError
from ..ir import Box, Diagram, Ob, Ty

# -- arguments ---------------------------------------------------------------------


def given(value: object) -> str:
    """A value as a message names it: its type, and the value itself when short.

    >>> given(None)
    '`None`'
    >>> given(123)
    'an `int` (`123`)'
    """
    if value is None or isinstance(value, bool):
        return f"`{value!r}`"
    name = type(value).__name__
    article = "an" if name[:1].lower() in "aeiou" else "a"
    text = repr(value) if isinstance(value, (int, float, str, bytes)) else ""
    if text and len(text) <= 40 and "\n" not in text:
        return f"{article} `{name}` (`{text}`)"
    return f"{article} `{name}`"


def bad_argument(call: str, expected: str, value: object, help: str | None = None) -> CatnetError:
    """E0801: ``call`` expected ``expected`` but was given ``value``."""
    return CatnetError("E0801", f"`{call}` expects {expected}, but was given {given(value)}", None, help=help)


def require_name(call: str, value: object, what: str = "the name of a morphism") -> str:
    """``value`` if it is a ``str``; E0801 otherwise."""
    if not isinstance(value, str):
        raise bad_argument(call, f"{what} (a `str`)", value, help="pass the name as it is written in the .cat file, e.g. \"main\"")
    return value


# -- model inputs -----------------------------------------------------------------


def described(ob: Ob) -> str:
    """``Image = R[64]`` for a named wire, ``R[64]`` otherwise."""
    s = ob.structure()
    return s if ob.name is None or ob.name == s else f"{ob.name} = {s}"


def wire_text(dom: Ty, index: int) -> str:
    """How a message names domain wire ``index``: ``the input `Image = R[64]```."""
    if len(dom) == 1:
        return f"the input `{described(dom.obs[0])}`"
    return f"input {index + 1} of {len(dom)} (`{described(dom.obs[index])}`)"


def batch_shape(ob: Ob) -> str:
    """The array shape a wire takes, batch first: ``(batch, 8, 8, 1)``."""
    return "(" + ", ".join(["batch", *map(dims.show, ob.shape)]) + ("" if ob.shape else ",") + ")"


def _axes(n: int) -> str:
    return f"{n} axis" if n == 1 else f"{n} axes"


def _input_error(message: str, notes: Sequence[str] = (), help: str | None = None) -> CatnetError:
    return CatnetError("E0802", message, None, notes=notes, help=help)


@dataclass(frozen=True)
class Given:
    """What the checks need of one input: its shape, dtype kind and dtype name.

    ``kind`` is ``"float"``, ``"int"`` or ``"other"``; ``value`` is a
    description (see :func:`given`) for inputs that are not arrays at all,
    else ``None``.
    """

    shape: tuple[int, ...]
    kind: str
    dtype: str
    value: str | None = None


def check_count(dom: Ty, count: int, entry: str) -> None:
    """E0802 unless ``count`` arrays were given for the wires of ``dom``."""
    if count != len(dom):
        wires = "no input" if not dom.obs else f"{len(dom)} input{'s' if len(dom) != 1 else ''} ({dom.described()})"
        raise _input_error(
            f"`{entry}` takes {wires}, but was given {count} array{'s' if count != 1 else ''}",
            help="pass one array per wire of the domain, in order: `model(x0, x1, ...)`" if len(dom) > 1 else None,
        )


def bind_size(d: dims.Dim, n: int, env: dict[str, int]) -> bool:
    """Learn a symbol from ``d == n`` when ``d`` has one unknown symbol (linearly); whether it did.

    Rigid symbols are not unification variables: the one unknown symbol is
    renamed to a variable and solved for.  The input checks and the lowering
    (``Context.bind``) learn sizes from actual shapes this one way.
    """
    d = dims.subst(d, env)
    if isinstance(d, int):
        return False
    unknown = sorted(dims.symbols(d))
    if len(unknown) != 1:
        return False
    var = "?" + unknown[0]
    solved = dims.solve(dims.subst(d, {unknown[0]: dims.sym(var)}), n)
    if isinstance(solved, tuple) and isinstance(solved[1], int) and solved[1] >= 0:
        env[unknown[0]] = solved[1]
        return True
    return False


def check_inputs(dom: Ty, inputs: Sequence[Given], entry: str = "the entry") -> dict[str, int]:
    """Check inputs against the wires of ``dom``; the sizes of its symbols.

    Raises E0802 for a wrong count, a non-array, a wrong dtype kind or rank,
    a per-example axis that does not match a known size or a symbol's size
    from another axis, or batch sizes that differ between inputs.
    """
    check_count(dom, len(inputs), entry)
    for i, (ob, x) in enumerate(zip(dom.obs, inputs)):
        want = "integer ids" if ob.base == "Z" else "real numbers"
        if x.value is not None:
            raise _input_error(f"{wire_text(dom, i)} needs an array of shape {batch_shape(ob)}, but was given {x.value}")
        if x.kind != ("int" if ob.base == "Z" else "float"):
            cast = "x.astype(np.int32)" if ob.base == "Z" else "x.astype(np.float32)"
            raise _input_error(
                f"{wire_text(dom, i)} takes {want}, but was given an array of {x.dtype}",
                help=f"convert it first, e.g. `{cast}`" + ("" if ob.base == "Z" else " (scale pixel values too)"),
            )
        if len(x.shape) != len(ob.shape) + 1:
            hint = "add a leading batch axis, e.g. `x[None]`" if len(x.shape) == len(ob.shape) else None
            raise _input_error(
                f"{wire_text(dom, i)} needs an array of shape {batch_shape(ob)}, but was given one of shape {tuple(x.shape)}",
                notes=[f"{len(ob.shape) + 1} axes: the batch, then {_axes(len(ob.shape))} of the wire"],
                help=hint,
            )
    # Sizes: learn symbols from every axis first (a symbol may appear first
    # in a compound size), then compare every axis against what was learnt.
    env: dict[str, int] = {}
    source: dict[str, int] = {}
    learnt = True
    while learnt:
        learnt = False
        for i, (ob, x) in enumerate(zip(dom.obs, inputs)):
            for d, n in zip(ob.shape, x.shape[1:]):
                before = set(env)
                if bind_size(d, int(n), env):
                    learnt = True
                    source.update({s: i for s in set(env) - before})
    for i, (ob, x) in enumerate(zip(dom.obs, inputs)):
        for axis, (d, n) in enumerate(zip(ob.shape, x.shape[1:])):
            v = dims.subst(d, env)
            if isinstance(v, int):
                if v == n:
                    continue
            elif len(dims.symbols(v)) > 1:
                continue  # several unknown symbols in one size: nothing to compare with
            # One unknown symbol left means no size >= 0 solves this axis.
            notes = [f"axis {axis + 1} of the array has size {n}, but the wire needs {dims.show(v)}"]
            for s in sorted(dims.symbols(d) & set(env)):
                src = source.get(s, i)
                notes.append(f"{s} = {env[s]}, from the shape of {'this input' if src == i else f'input {src + 1}'}")
            raise _input_error(
                f"{wire_text(dom, i)} needs an array of shape {batch_shape(ob)}, but was given one of shape {tuple(x.shape)}",
                notes=notes,
            )
    sizes = [x.shape[0] for x in inputs]
    if len(set(sizes)) > 1:
        first = sizes[0]
        other = next(i for i, n in enumerate(sizes) if n != first)
        raise _input_error(
            f"the inputs have different batch sizes: {first} for input 1 and {sizes[other]} for input {other + 1}",
            help="every input holds the same examples along its first axis",
        )
    return env


def check_ids(dom: Ty, index: int, low: int, high: int, box: Box, first: tuple[tuple[int, ...], int] | None = None) -> None:
    """E0802 unless ids from ``low`` to ``high`` on input ``index`` fit the ``embed`` ``box``.

    ``first`` is the array index and value of the first id out of range,
    for the message (else the extreme one is named).
    """
    vocab = int(box.kwargs["vocab"])  # type: ignore[arg-type]
    if 0 <= low and high < vocab:
        return
    bad = first[1] if first is not None else (low if low < 0 else high)
    notes = [f"at index {first[0]} of the array" + ("" if (low, high) == (bad, bad) else f"; its ids range from {low} to {high}")] if first else []
    where = f" at {box.span.file}:{box.span.line}:{box.span.column}" if box.span is not None else ""
    notes.append(f"`embed(vocab={vocab})`{where} reads this input")
    raise _input_error(
        f"{wire_text(dom, index)} holds the token id {bad}, but `embed(vocab={vocab})` takes ids from 0 to {vocab - 1}",
        notes=notes,
        help="negative ids are not token ids; map them into range" if bad < 0
        else f"raise `vocab` to at least {high + 1}, or map the ids into 0..{vocab - 1}",
    )


# -- which inputs are token ids ---------------------------------------------------------

#: ``(flow, readers)`` of a diagram for a set of followed domain positions:
#: ``flow[c]`` is the followed positions whose values reach codomain wire
#: ``c`` unchanged; ``readers[p]`` is the strictest ``embed`` reading ``p``.
Follow = tuple[dict[int, frozenset[int]], dict[int, Box]]
Request = tuple[Diagram, tuple[int, ...]]
Walk = Generator[Request, Follow, Follow]


def _stricter(a: Box | None, b: Box) -> Box:
    """The ``embed`` with the smaller vocabulary (the first on a tie)."""
    if a is None:
        return b
    return b if int(b.kwargs["vocab"]) < int(a.kwargs["vocab"]) else a  # type: ignore[arg-type]


def _embed(box: Box) -> bool:
    return box.kind == "generator" and box.name == "embed" and isinstance(box.kwargs.get("vocab"), int)


def _structural(box: Box, ins: dict[int, frozenset[int]]) -> dict[int, frozenset[int]]:
    """Where the values on a structural box's input positions go, unchanged."""
    name = box.name
    if name == "id":
        return dict(ins)
    if name == "swap":
        return {1 - q: s for q, s in ins.items()}
    if name == "copy":  # all wires, then all again
        return {**ins, **{len(box.dom) + q: s for q, s in ins.items()}}
    if name == "fst":
        return {0: ins[0]} if 0 in ins else {}
    if name == "snd":
        return {0: ins[1]} if 1 in ins else {}
    if name == "concat":
        return {0: frozenset().union(*ins.values())}
    return {}  # discard, add, split, proj, triv: the values are gone or changed


def _merge(into: dict[int, Box], ins: dict[int, frozenset[int]], read: dict[int, Box]) -> None:
    for q, b in read.items():
        for origin in ins.get(q, ()):
            into[origin] = _stricter(into.get(origin), b)


def _through(box: Box, ins: dict[int, frozenset[int]]) -> Generator[Request, Follow, tuple[dict[int, frozenset[int]], dict[int, Box]]]:
    """One box on followed inputs (position -> origins): outputs and ``embed`` readers by origin."""
    if box.kind == "generator":
        read: dict[int, Box] = {}
        if _embed(box) and 0 in ins:
            _merge(read, ins, {0: box})
        return {}, read
    if box.kind == "structural":
        return _structural(box, ins), {}
    assert box.body is not None
    body = box.body
    if box.kind == "composite":
        flow, inner = yield (body, tuple(sorted(ins)))
        read = {}
        _merge(read, ins, inner)
        return {c: frozenset().union(*(ins[p] for p in ps)) for c, ps in flow.items()}, read
    if box.kind == "inv":
        # The body runs backwards: a value on its codomain wire c leaves on
        # every domain wire whose values reach c.
        flow, _ = yield (body, tuple(range(len(body.dom))))
        out: dict[int, set[int]] = {}
        for c, ps in flow.items():
            for p in ps:
                if c in ins:
                    out.setdefault(p, set()).update(ins[c])
        return {p: frozenset(s) for p, s in out.items()}, {}
    if box.kind == "repeat":
        return (yield from _repeat(body, int(box.kwargs["n"]), ins))  # type: ignore[arg-type]
    assert box.kind == "scan", box.kind
    return (yield from _scan(box, body, ins))


def _repeat(body: Diagram, n: int, ins: dict[int, frozenset[int]]) -> Generator[Request, Follow, tuple[dict[int, frozenset[int]], dict[int, Box]]]:
    """``n`` runs of ``body``; the positions' contents repeat with a period, which ends the walk early."""
    read: dict[int, Box] = {}
    state = dict(ins)
    seen: dict[tuple[tuple[int, frozenset[int]], ...], int] = {}
    history: list[dict[int, frozenset[int]]] = []
    for step in range(n):
        key = tuple(sorted(state.items(), key=lambda kv: kv[0]))
        if key in seen:
            start = seen[key]
            return history[start + (n - start) % (step - start)], read
        seen[key] = step
        history.append(state)
        if not state:
            return {}, read
        flow, inner = yield (body, tuple(sorted(state)))
        _merge(read, state, inner)
        state = {c: frozenset().union(*(state[p] for p in ps)) for c, ps in flow.items()}
        state = {c: s for c, s in state.items() if s}
    return state, read


def _scan(box: Box, body: Diagram, ins: dict[int, frozenset[int]]) -> Generator[Request, Follow, tuple[dict[int, frozenset[int]], dict[int, Box]]]:
    """A trace: box input ``q`` is body input ``state + q``; the state may carry values to later steps."""
    n_state = int(box.kwargs.get("state", len(body.dom) - len(box.dom)))  # type: ignore[arg-type]
    carried: dict[int, frozenset[int]] = {}
    read: dict[int, Box] = {}
    while True:
        step = {n_state + q: s for q, s in ins.items()} | carried
        flow, inner = yield (body, tuple(sorted(step)))
        _merge(read, step, inner)
        outs = {c: frozenset().union(*(step[p] for p in ps)) for c, ps in flow.items()}
        grown = {s: carried.get(s, frozenset()) | outs[s] for s in range(n_state) if s in outs}
        if all(grown[s] <= carried.get(s, frozenset()) for s in grown):
            return {c - n_state: s for c, s in outs.items() if c >= n_state and s}, read
        carried = {**carried, **grown}


def _follow(diagram: Diagram, tracked: tuple[int, ...]) -> Walk:
    """The :data:`Follow` of ``diagram`` for the domain positions ``tracked``."""
    wires: dict[int, frozenset[int]] = {p: frozenset((p,)) for p in tracked}
    readers: dict[int, Box] = {}
    for layer in diagram.layers:
        if not wires:
            break
        k, n, m = len(layer.left), len(layer.box.dom), len(layer.box.cod)
        ins = {p - k: s for p, s in wires.items() if k <= p < k + n}
        outs: dict[int, frozenset[int]] = {}
        if ins:
            outs, read = yield from _through(layer.box, ins)
            for origin, b in read.items():
                readers[origin] = _stricter(readers.get(origin), b)
        moved = {(p if p < k else p + m - n): s for p, s in wires.items() if p < k or p >= k + n}
        wires = moved | {k + q: s for q, s in outs.items() if s}
    return wires, readers


def embed_readers(diagram: Diagram) -> dict[int, Box]:
    """Domain-wire index -> the ``embed`` box with the smallest ``vocab`` that reads its ids.

    Only integer (``Z``) wires are followed; an ``embed`` whose ``vocab`` is
    not a number yet (a symbol) is left out.
    """
    tracked = tuple(i for i, ob in enumerate(diagram.dom.obs) if ob.base == "Z")
    if not tracked:
        return {}
    memo: dict[tuple[int, tuple[int, ...]], Follow] = {}
    keep: list[Diagram] = []  # the memo is keyed by id(): keep the bodies alive while it lives
    stack: list[tuple[tuple[int, tuple[int, ...]], Walk]] = [((id(diagram), tracked), _follow(diagram, tracked))]
    reply: Any = None
    result: Follow = ({}, {})
    while stack:
        key, walk = stack[-1]
        try:
            body, positions = walk.send(reply)
        except StopIteration as done:
            memo[key] = result = done.value
            stack.pop()
            reply = result
            continue
        wanted = (id(body), positions)
        if wanted in memo:
            reply = memo[wanted]
        else:
            keep.append(body)
            stack.append((wanted, _follow(body, positions)))
            reply = None
    return dict(sorted(result[1].items()))


def vocab_bounds(diagram: Diagram) -> dict[int, int]:
    """Domain-wire index -> vocabulary size of the ``embed`` that reads it (ids must be ``0..V-1``)."""
    return {i: int(box.kwargs["vocab"]) for i, box in embed_readers(diagram).items()}  # type: ignore[arg-type]
