"""``catnet verify``: measure, on the compiled model, the symmetry a claim promises.

The checker proves ``equivariant under G`` and ``invariant under G`` from
how each box acts (``catnet.check.claims``); this command tests the
promise on numbers, which catches what a proof from the boxes' signatures
cannot see: a lowering that breaks the symmetry, or a plugin generator
registered with ``acts="equivariant"`` that is not.

For each claimed morphism of the file (or the one ``--morphism`` names) it
compiles the model in evaluation mode (dropout off, batch statistics
frozen), draws a batch of random inputs (float32 normals; for an integer
wire, ids that the ``embed`` reading it accepts) and, for each group
element ``g`` tried, compares ``f(g·x)`` with ``g·f(x)``: ``g`` acts on
every wire that says ``under G`` by :func:`catnet.symmetry.actions.act`,
and leaves other wires alone; for ``invariant`` the outputs are compared
with ``f(x)`` itself.  A group of at most :data:`ALL_ELEMENTS` elements is
tried whole; a larger one on its generators, the identity and
``--samples`` elements drawn at random.

The error of a claim is ``max |f(g·x) − g·f(x)|`` over the elements, the
batch and the output wires, and it is judged relative to
``max(1, max |f(x)|)``: float32 rounding grows with the size of the
outputs, and for outputs below one the absolute error is what matters.
A claim holds when that relative error is at most ``--tolerance``.

Everything the request can get wrong (an unknown morphism, one without a
claim, a file with none, an option out of range, a wire whose inputs
cannot be drawn) is found before JAX is imported and reported as a
located diagnostic (E0708).
"""

from __future__ import annotations

import argparse
import math
import sys
import zlib
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Sequence

import numpy as np

from ..cli import add_entry_argument, add_root_argument
from ..errors import CatnetError, shown, whole_option
from ..ir import Diagram, Ob, Span
from .actions import Action, BadRep, act, action, element
from .groups import Group, parse as parse_group

#: Groups with at most this many elements are tried on every element.
ALL_ELEMENTS = 64
#: The most examples (elements × batch) one compiled call runs: bounds its memory.
CHUNK = 256
#: Defaults and limits of the options.
DEFAULT_SAMPLES, MAX_SAMPLES = 64, 720
DEFAULT_BATCH, MAX_BATCH = 4, 1024
DEFAULT_TOLERANCE = 1e-5
SEED_RANGE = (0, 2**32 - 1)
#: The precision of matrix products and convolutions while measuring: full
#: float32.  A GPU's default (TF32 products) rounds a turned input
#: differently from the original, an error of about 1e-4 of the outputs
#: that has nothing to do with the symmetry of the weights.
PRECISION = "highest"
#: The error code of a request that cannot be verified.
CODE = "E0708"

_CLAIM_HELP = "write the claim after the signature, e.g. `morphism net : Image -> Logits invariant under C4 = …`"


def configure(parser: argparse.ArgumentParser) -> None:
    """The options of ``catnet verify``; numbers are read as text and checked by :func:`options`."""
    parser.add_argument("file", help="a .cat file")
    add_entry_argument(parser, "verify only NAME (default: every morphism with an `equivariant under`/`invariant under` claim)")
    parser.add_argument("--samples", default=str(DEFAULT_SAMPLES), metavar="N",
                        help=f"for a group of more than {ALL_ELEMENTS} elements: how many random elements to try "
                             f"besides its generators (default {DEFAULT_SAMPLES})")
    parser.add_argument("--batch", default=str(DEFAULT_BATCH), metavar="B",
                        help=f"random inputs per element (default {DEFAULT_BATCH})")
    parser.add_argument("--seed", default="0", help="seed of the inputs, the weights and the sampled elements (default 0)")
    parser.add_argument("--tolerance", default=str(DEFAULT_TOLERANCE), metavar="T",
                        help=f"largest error allowed, relative to max(1, max |f(x)|) (default {DEFAULT_TOLERANCE:g})")
    add_root_argument(parser)


# -- the request, checked without JAX ---------------------------------------------


@dataclass(frozen=True)
class Options:
    samples: int
    batch: int
    seed: int
    tolerance: float


@dataclass(frozen=True)
class Plan:
    """What to measure for one claim.

    ``elements`` are indices into ``group`` (the identity first);
    ``inputs``/``outputs`` the action on each domain/codomain wire
    (``None``: the group leaves the wire alone, as it does every output of
    an ``invariant`` claim); ``vocab`` the number of valid ids of each
    integer input wire.
    """

    name: str
    kind: str
    group: Group
    elements: tuple[int, ...]
    sampled: bool
    diagram: Diagram
    inputs: tuple[Action | None, ...]
    outputs: tuple[Action | None, ...]
    vocab: dict[int, int]


def _fail(message: str, span: Span | None = None, help: str | None = None, notes: Sequence[str] = ()) -> CatnetError:
    return CatnetError(CODE, message, span, notes=notes, help=help)


def _whole(option: str, text: str, low: int, high: int) -> int:
    return whole_option(option, text, low, high, CODE)


def options(args: argparse.Namespace) -> Options:
    """The numeric options, checked (E0708 without a span: the caller locates it)."""
    samples = _whole("--samples", args.samples, 1, MAX_SAMPLES)
    batch = _whole("--batch", args.batch, 1, MAX_BATCH)
    seed = _whole("--seed", args.seed, *SEED_RANGE)
    try:
        tolerance = float(str(args.tolerance).strip())
    except ValueError:
        tolerance = math.nan
    if not (math.isfinite(tolerance) and tolerance >= 0):
        raise _fail(f"--tolerance must be a number 0 or more, not {shown(str(args.tolerance))}",
                    help=f"e.g. --tolerance 1e-4 (the default is {DEFAULT_TOLERANCE:g}, for float32 models)")
    return Options(samples, batch, seed, tolerance)


def claimed(module: Any, only: str | None) -> list[tuple[str, Any]]:
    """``(name, claim)`` of each morphism to verify: ``only``, or every claimed morphism of the file, in order.

    E0210 for an ``only`` that names nothing; E0708 for one without a claim
    and for a file that makes none.
    """
    if only is not None:
        try:
            d = module.lookup(only)
        except CatnetError as e:
            if e.span is None:
                e.span = Span(module.path, 1, 1, 1, 1)  # no such morphism: the file is where to look
            raise
        claim = getattr(d.decl, "claim", None)
        if claim is None:
            raise _fail(f"`{only}` makes no symmetry claim, so there is nothing to verify",
                        getattr(d.decl, "name_span", None) or d.span,
                        notes=[f"`{only}` : {d.dom} -> {d.cod}"], help=_CLAIM_HELP)
        return [(only, claim)]
    found = [(name, d.decl.claim) for name, d in module.definitions.items() if getattr(d.decl, "claim", None) is not None]
    if not found:
        raise _fail(f"{module.path} makes no symmetry claim: no morphism says `equivariant under G` or `invariant under G`",
                    Span(module.path, 1, 1, 1, 1), help=_CLAIM_HELP)
    return found


def word(group: Group, e: int) -> str:
    """An element in words: ``e``, ``r``, ``r2``, ``s``, ``sr1`` in ``C(n)``/``D(n)`` (the words
    ``quotient(…)`` reads), a permutation in cycles ``(0 1 2)`` in ``S(n)``, a tuple in a product."""
    if e == group.identity:
        return "e"
    if " × " in group.name:
        factors = [parse_group(f) for f in group.name.split(" × ")]
        return "(" + ", ".join(word(f, int(i)) for f, i in zip(factors, group.models[e])) + ")"  # type: ignore[arg-type]
    if group.name[0] == "S":
        return _cycles(group.models[e])  # type: ignore[arg-type]
    return _words(group.name)[e]


@lru_cache(maxsize=64)
def _words(name: str) -> dict[int, str]:
    """Each element of ``C(n)``/``D(n)`` -> the shortest word that :func:`actions.element` reads as it."""
    g = parse_group(name)
    n = int(name[1:])
    candidates = [f"r{k}" if k > 1 else "r" for k in range(1, n)]
    if name[0] == "D":
        candidates += ["s"] + [f"sr{k}" for k in range(1, n)]
    out: dict[int, str] = {}
    for w in candidates:
        out.setdefault(element(g, w), w)
    return out


def _cycles(p: Sequence[int]) -> str:
    """A permutation (``i ↦ p[i]``) in cycle notation, fixed points left out."""
    seen: set[int] = set()
    parts = []
    for start in range(len(p)):
        if start in seen or p[start] == start:
            continue
        cycle, i = [], start
        while i not in seen:
            seen.add(i)
            cycle.append(str(i))
            i = p[i]
        parts.append("(" + " ".join(cycle) + ")")
    return "".join(parts)


def elements(group: Group, samples: int, rng: np.random.Generator) -> tuple[tuple[int, ...], bool]:
    """The elements to try (the identity first) and whether they are a sample rather than all of them."""
    if group.order <= ALL_ELEMENTS:
        return tuple(range(group.order)), False
    fixed = [group.identity, *group.generators]
    rest = np.setdiff1d(np.arange(group.order), fixed)
    drawn = rng.choice(rest, size=min(samples, len(rest)), replace=False)
    return tuple(fixed + sorted(int(i) for i in drawn)), True


def _wire_action(ob: Ob, group: Group, name: str, what: str, span: Span | None) -> Action | None:
    if not ob.group:
        return None
    try:
        return action(ob.group, ob.rep, tuple(int(d) for d in ob.shape))  # type: ignore[arg-type]
    except BadRep as e:
        raise _fail(f"cannot tell how {group} acts on the {what} {ob} of `{name}`: {e}", span) from None


def generic(module: Any, name: str) -> CatnetError | None:
    """Why ``name`` is no model to run (a template, or sizes that are symbols), or ``None``."""
    d = module.lookup(name)
    span = getattr(d.decl, "name_span", None) or d.span
    if d.is_template:
        return _fail(f"`{name}` takes morphism parameters, so it is no model to run",
                     span, help="verify a morphism that applies it, with its own claim")
    for what, ty in (("input", d.dom), ("output", d.cod)):
        for ob in ty.obs:
            symbols = [str(x) for x in ob.shape if not isinstance(x, int)]
            if symbols:
                return _fail(f"the {what} {ob} of `{name}` has sizes that are not numbers ({', '.join(symbols)}), "
                             "so no input can be drawn", span,
                             help="verify a morphism that uses it at fixed sizes, with its own claim")
    return None


def plan(module: Any, name: str, claim: Any, opts: Options) -> Plan:
    """What to measure for the claim of ``name`` (not :func:`generic`); E0708 where its inputs cannot be drawn.

    The elements sampled from a large group depend on the seed and the
    name only, so ``--morphism NAME`` tries the same ones as a whole-file run.
    """
    from ..check.inputs import embed_readers

    d = module.lookup(name)
    span = getattr(d.decl, "name_span", None) or d.span
    diagram = module.diagram(name)
    for what, ty in (("input", diagram.dom), ("output", diagram.cod)):
        for ob in ty.obs:
            if ob.base == "bundle":
                raise _fail(f"`{name}` has the bundle {ob} as {what}, and `catnet verify` draws inputs for R and Z wires only",
                            span)
    group = parse_group(claim.group)
    inputs = tuple(_wire_action(ob, group, name, "input", span) for ob in diagram.dom.obs)
    outputs = tuple(None if claim.kind == "invariant" else _wire_action(ob, group, name, "output", span)
                    for ob in diagram.cod.obs)
    readers = embed_readers(diagram)
    vocab: dict[int, int] = {}
    for i, ob in enumerate(diagram.dom.obs):
        if ob.base != "Z":
            continue
        if i not in readers:
            raise _fail(f"`{name}` takes integer ids on its input {ob}, but no `embed` reads them, "
                        "so `catnet verify` cannot tell which ids are valid", span,
                        help="verify a morphism that starts where the ids have been embedded")
        vocab[i] = int(readers[i].kwargs["vocab"])  # type: ignore[arg-type]
    chosen, sampled = elements(group, opts.samples, np.random.default_rng([opts.seed, zlib.crc32(name.encode())]))
    return Plan(name, claim.kind, group, chosen, sampled, diagram, inputs, outputs, vocab)


# -- measuring -------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    """The worst disagreement of one claim: ``error`` at element ``worst``; ``scale`` is ``max |f(x)|``."""

    plan: Plan
    error: float
    scale: float
    worst: int

    @property
    def relative(self) -> float:
        return self.error / max(1.0, self.scale)

    def holds(self, tolerance: float) -> bool:
        return math.isfinite(self.error) and math.isfinite(self.scale) and self.relative <= tolerance


def draw_inputs(p: Plan, batch: int, rng: np.random.Generator) -> list[np.ndarray]:
    """One batch of random inputs: float32 normals, or ids below the vocabulary of the ``embed`` reading them."""
    out = []
    for i, ob in enumerate(p.diagram.dom.obs):
        shape = (batch, *(int(d) for d in ob.shape))  # type: ignore[arg-type]
        if ob.base == "Z":
            out.append(rng.integers(0, p.vocab[i], size=shape).astype(np.int32))
        else:
            out.append(rng.standard_normal(shape).astype(np.float32))
    return out


def _acted(xs: Sequence[np.ndarray], actions: Sequence[Action | None], e: int) -> list[np.ndarray]:
    return [x if a is None else np.asarray(act(x, a, e), x.dtype) for x, a in zip(xs, actions)]


def measure(model: Any, p: Plan, batch: int, seed: int) -> Result:
    """Run ``model`` (compiled, in evaluation mode) on ``g·x`` for every element of ``p`` and compare."""
    import jax
    from flax import nnx

    graphdef, state = nnx.split(model)

    @jax.jit
    def forward(state: Any, xs: list[Any]) -> tuple[Any, ...]:
        y = nnx.merge(graphdef, state)(*xs)
        return y if isinstance(y, tuple) else (y,)

    xs = draw_inputs(p, batch, np.random.default_rng([seed, 1]))
    per_call = max(1, CHUNK // batch)
    ys: list[list[np.ndarray]] = []  # ys[k][j]: output wire j at element p.elements[k], float64
    for start in range(0, len(p.elements), per_call):
        chunk = list(p.elements[start:start + per_call])
        used = len(chunk)
        if len(p.elements) > per_call:  # pad the last call to the others' shape: one compile
            chunk += [chunk[-1]] * (per_call - used)
        stacked = [np.concatenate(parts) for parts in zip(*(_acted(xs, p.inputs, e) for e in chunk))]
        with jax.default_matmul_precision(PRECISION):
            outs = [np.asarray(y, np.float64) for y in forward(state, stacked)]
        for k in range(used):
            ys.append([y[k * batch:(k + 1) * batch] for y in outs])
    fx = ys[0]  # the identity comes first
    scale = max((float(np.max(np.abs(y))) if y.size else 0.0) for y in fx) if fx else 0.0
    error, worst = 0.0, p.group.identity
    for e, fgx in zip(p.elements, ys):
        expected = _acted(fx, p.outputs, e)
        err = max((float(np.max(np.abs(a - b))) if a.size else 0.0) for a, b in zip(fgx, expected)) if fgx else 0.0
        if not math.isfinite(err):
            return Result(p, math.inf, scale, e)
        if err > error:
            error, worst = err, e
    return Result(p, error, scale if math.isfinite(scale) else math.inf, worst)


# -- the report ---------------------------------------------------------------------


def table(results: Sequence[Result], tolerance: float) -> str:
    """A plain-text table, one row per claim."""
    head = ("morphism", "claim", "group", "elements", "max |f(g·x) − g·f(x)|", "max |f(x)|", "relative", "worst g", "result")
    rows = [head]
    for r in results:
        p = r.plan
        tried = f"{len(p.elements)} of {p.group.order}" if p.sampled else f"{len(p.elements)} (all)"
        rows.append((p.name, p.kind, p.group.name, tried, f"{r.error:.2e}", f"{r.scale:.3g}", f"{r.relative:.2e}",
                     word(p.group, r.worst) if r.error > 0 else "-", "ok" if r.holds(tolerance) else "FAIL"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    right = {3, 4, 5, 6}

    def line(row: tuple[str, ...]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))).rstrip()

    return "\n".join([line(head), "  ".join("-" * w for w in widths), *(line(row) for row in rows[1:])])


def run(args: argparse.Namespace) -> int:
    """``catnet verify``: 0 when every claim holds within the tolerance, 1 otherwise."""
    import catnet

    module = catnet.load(args.file, root=args.root)
    try:
        todo = claimed(module, args.entry)
        skipped = [(name, why) for name, _ in todo if (why := generic(module, name)) is not None]
        if skipped and (args.entry is not None or len(skipped) == len(todo)):
            raise skipped[0][1]
    except CatnetError as e:
        raise module.locate(e) from None
    for name, why in skipped:
        print(f"note: skipped `{name}`: {why.message}", file=sys.stderr)
    todo = [(name, claim) for name, claim in todo if name not in dict(skipped)]
    try:
        opts = options(args)
    except CatnetError as e:
        raise module.locate(e, todo[0][0]) from None
    plans = []
    for name, claim in todo:
        try:
            plans.append(plan(module, name, claim, opts))
        except CatnetError as e:
            raise module.locate(e, name) from None

    from flax import nnx

    results = []
    for p in plans:
        try:
            model = catnet.compile(module, p.name, rngs=nnx.Rngs(opts.seed))
            model.eval()
            results.append(measure(model, p, opts.batch, opts.seed))
        except CatnetError as e:
            raise module.locate(e, p.name) from None
    print(f"{args.file}: {len(results)} symmetry claim{'s' if len(results) != 1 else ''}, "
          f"batch {opts.batch}, seed {opts.seed}, tolerance {opts.tolerance:g} relative to max(1, max |f(x)|)")
    print(table(results, opts.tolerance))
    failed = [r for r in results if not r.holds(opts.tolerance)]
    if not failed:
        print(f"ok: every claim holds within {opts.tolerance:g}")
        return 0
    worst = max(failed, key=lambda r: r.relative if math.isfinite(r.relative) else math.inf)
    p = worst.plan
    what = "the outputs are not finite" if not math.isfinite(worst.error) or not math.isfinite(worst.scale) \
        else f"relative error {worst.relative:.2e} > {opts.tolerance:g}"
    print(f"FAIL: {len(failed)} of {len(results)} claims do not hold; worst: `{p.name}` is not {p.kind} under "
          f"{p.group.name}: {what} at g = {word(p.group, worst.worst)}", file=sys.stderr)
    return 1
