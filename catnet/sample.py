"""``catnet sample``: draw points from a trained flow, or from the fiber over a base point.

Two kinds of entry can be sampled:

* a **flow** ``X -> X`` (one real wire, every box an isomorphism): ``z``
  from the standard Gaussian, mapped back by the inverse
  (``catnet.flows.sample``);
* a **trivialization** ``E -> B ⊗ F`` (its first box a ``triv``): the fiber
  over the base point ``--base "x,y"``, ``z`` from the fiber prior and
  ``inv(triv)`` applied to ``b ⊗ z`` (``catnet.bundles.sample``).

The weights come from ``--checkpoint DIR``, a run directory of ``catnet
train`` (its newest verified checkpoint, ``catnet.train.restore``); without
it the untrained weights are sampled, with a note on stderr.  The model runs
in evaluation mode.  The output is an ``.npz`` with the array ``x``
(``(N, …)`` points; for a trivialization, of the total space) and, for a
trivialization, ``base`` (the base point asked for).

Determinism: the points are a function of ``--seed`` (and the weights); they
are drawn in chunks of :data:`CHUNK` with keys folded from the seed, so the
first ``N`` points of a larger draw are the ``N`` points of a smaller one.

Everything the request can get wrong is found before JAX is imported and
reported at the entry (E0707): ``-n`` not a whole number from 1 to
:data:`MAX_N` (or more points than memory holds), a seed out of range, a
base point of the wrong size or not numbers, ``--base`` given to a flow or
missing for a trivialization, an output path that cannot be written.  An
entry that cannot be sampled is E0401 (not an isomorphism: the first
non-invertible box) or E0706 (an isomorphism of another shape); a
checkpoint that does not fit the entry is E0705.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np

from .budget import host_memory, size_text
from .cli import add_entry_argument, add_root_argument
from .errors import CatnetError, shown, whole_option
from .ir import Span
from .use.trained import output_file, write_atomically

#: Points drawn per compiled call: bounds the memory of a large draw.
CHUNK = 65536
#: The most points one call may ask for.
MAX_N = 2**31 - 1
#: The accepted seeds (numpy's and JAX's generators take unsigned 32-bit seeds).
SEED_RANGE = (0, 2**32 - 1)


def configure(parser: argparse.ArgumentParser) -> None:
    """The options of ``catnet sample``; numbers are read as text and checked by :func:`request`."""
    parser.add_argument("file", help="a .cat file")
    add_entry_argument(parser, "the morphism to sample (default: the file's `main`)")
    parser.add_argument("--base", default=None, metavar='"x,y"',
                        help="for a trivialization E -> B ⊗ F: the base point whose fiber is sampled, dim B numbers")
    parser.add_argument("-n", dest="n", default="1000", metavar="N", help="how many points (default 1000)")
    parser.add_argument("--checkpoint", default=None, metavar="DIR",
                        help="a run directory of `catnet train` (its --out); default: the untrained weights")
    parser.add_argument("--seed", default="0", help="seed for the draw (and the initial weights), 0 to 2**32-1 (default 0)")
    parser.add_argument("-o", "--out", required=True, metavar="OUT.npz", help="where to write the points (array x; and base)")
    add_root_argument(parser)


def _fail(message: str, help: str | None = None, notes: tuple[str, ...] = ()) -> CatnetError:
    return CatnetError("E0707", message, None, notes=notes, help=help)


def _whole(option: str, text: str, low: int, high: int) -> int:
    return whole_option(option, text, low, high, "E0707")


def parse_base(text: str, base: Any) -> np.ndarray:
    """The base point ``"x,y"`` as ``(k,)`` float32 for the base wire ``base`` (``R[k]``); E0707 otherwise."""
    k = int(base.shape[0])
    example = ",".join(["0.0"] * k)
    parts = [p.strip() for p in str(text).split(",")]
    values: list[float] = []
    for i, part in enumerate(parts):
        try:
            v = float(part)
        except ValueError:
            raise _fail(
                f"--base must be {k} numbers separated by commas, but {'part ' + str(i + 1) if len(parts) > 1 else 'it'} "
                f"is {shown(part) if part else 'empty'}",
                notes=(f"the base is {base} = {base.structure()}",),
                help=f'e.g. --base "{example}"',
            )
        if not math.isfinite(v) or not math.isfinite(np.float32(v)):
            raise _fail(f"--base must be finite numbers (float32), but part {i + 1} is {part}", help=f'e.g. --base "{example}"')
        values.append(v)
    if len(values) != k:
        raise _fail(
            f"the base is {base} = {base.structure()}, so a base point has {k} number{'s' if k != 1 else ''}, "
            f"but --base gives {len(values)}",
            help=f'e.g. --base "{example}"',
        )
    return np.asarray(values, np.float32)


def _checkpoint_dir(path: str) -> Path:
    """A run directory of ``catnet train`` (with a ``checkpoints`` folder); E0707 otherwise."""
    run = Path(path)
    help = "--checkpoint names the run directory `catnet train` wrote (its --out, by default runs/<file stem>)"
    if not run.is_dir():
        raise _fail(f"--checkpoint {path} is not a directory", help=help)
    if not (run / "checkpoints").is_dir():
        raise _fail(f"--checkpoint {path} holds no checkpoints (no `checkpoints` folder)", help=help)
    return run


def request(args: argparse.Namespace, module: Any, entry: str) -> dict[str, Any]:
    """Check the file's entry and every option against it; no JAX.  The parsed request.

    Keys: ``kind`` (``"flow"``/``"bundle"``), ``diagram``, ``n``, ``seed``,
    ``base`` (``(k,)`` or ``None``), ``out`` and ``checkpoint`` (paths or ``None``).
    """
    from .ir import first_not_iso
    from .train import is_flow, is_trivialization

    try:
        diagram = module.diagram(entry)
    except CatnetError as e:
        if e.code == "E0210" and e.span is None:
            e.span = Span(module.path, 1, 1, 1, 1)  # no such morphism: the file is where to look
        raise
    if is_flow(diagram):
        kind = "flow"
    elif is_trivialization(diagram):
        kind = "bundle"
    else:
        culprit = first_not_iso(diagram)
        if culprit is not None:
            raise CatnetError(
                "E0401",
                f"`{entry}` is not an isomorphism, so it cannot be sampled: `{culprit.name}` is not invertible",
                culprit.span,
                notes=(f"`{entry}` : {diagram.dom} -> {diagram.cod}",),
                help="`catnet sample` inverts a flow (X -> X, invertible boxes only) or a trivialization E -> B ⊗ F",
            )
        raise CatnetError(
            "E0706",
            f"`catnet sample` draws from a flow X -> X or a trivialization E -> B ⊗ F, "
            f"but `{entry}` : {diagram.dom} -> {diagram.cod} is neither",
            None,
            help="sample a flow onto its own wire (e.g. `coupling ; reverse ; coupling`), or a bundle's `triv`",
        )
    n = _whole("-n", args.n, 1, MAX_N)
    seed = _whole("--seed", args.seed, *SEED_RANGE)
    base = None
    if kind == "flow":
        if args.base is not None:
            raise _fail(
                f"--base is a base point of a bundle, but `{entry}` is a flow {diagram.dom} -> {diagram.cod}, which has none",
                help="drop --base: a flow's samples are drawn from its whole space",
            )
        ob = diagram.dom.obs[0]
        if not all(isinstance(d, int) for d in ob.shape):
            raise _fail(f"the flow's wire {ob} has a size that is not a number, so its samples have no shape",
                        help="give the wire fixed sizes to sample it")
        width = math.prod(int(d) for d in ob.shape)
    else:
        b_ob = diagram.cod.obs[0]
        if args.base is None:
            k = int(b_ob.shape[0])
            raise _fail(
                f"`{entry}` is a trivialization {diagram.dom} -> {diagram.cod}: sampling it draws the fiber over a base point, "
                "but --base is missing",
                notes=(f"the base is {b_ob} = {b_ob.structure()}",),
                help=f'pass the base point as {k} number{"s" if k != 1 else ""}, e.g. --base "{",".join(["0.0"] * k)}"',
            )
        base = parse_base(args.base, b_ob)
        width = int(diagram.dom.obs[0].shape[0])
    need = 2 * n * width * 4  # the points, and their copy on the way to the file
    free = host_memory()
    if free is not None and need > free:
        raise _fail(
            f"{n} points of {width} float32 numbers need {size_text(need)} of memory, but only {size_text(free)} is available",
            help="ask for fewer points (-n) and run several times with other --seed values",
        )
    out = output_file("-o", args.out, "samples.npz", ".npz", written="the points are written as an .npz archive",
                      error=_fail)
    checkpoint = _checkpoint_dir(args.checkpoint) if args.checkpoint is not None else None
    return {"kind": kind, "diagram": diagram, "n": n, "seed": seed, "base": base, "out": out, "checkpoint": checkpoint}


def draw(model: Any, kind: str, n: int, seed: int, base: np.ndarray | None = None) -> np.ndarray:
    """``n`` points of ``model`` (a compiled flow or trivialization), in chunks of :data:`CHUNK`, from ``seed``."""
    import jax

    from . import bundles, flows

    key = jax.random.PRNGKey(seed)
    parts = []
    for i, start in enumerate(range(0, n, CHUNK)):
        m = min(CHUNK, n - start)
        k = jax.random.fold_in(key, i)
        x = flows.sample(model, m, k) if kind == "flow" else bundles.sample(model, base, m, k)
        parts.append(np.asarray(x, np.float32))
    return np.concatenate(parts, axis=0)


def run(args: argparse.Namespace) -> int:
    """``catnet sample``: 0 on success; every bad input is a diagnostic (exit 1)."""
    import catnet

    module = catnet.load(args.file, root=args.root)
    entry = args.entry or module.entry_name()
    try:
        req = request(args, module, entry)
    except CatnetError as e:
        raise module.locate(e, entry) from None

    from flax import nnx

    from .train import restore

    model = catnet.compile(module, entry, rngs=nnx.Rngs(req["seed"]))
    if req["checkpoint"] is not None:
        try:
            restore(model, req["checkpoint"])
        except CatnetError as e:
            raise module.locate(e, entry) from None
    else:
        print(f"note: no --checkpoint: sampling the untrained weights of `{entry}` (seed {req['seed']})", file=sys.stderr)
    model.eval()
    x = draw(model, req["kind"], req["n"], req["seed"], req["base"])
    arrays = {"x": x}
    if req["base"] is not None:
        arrays["base"] = req["base"]
    write_atomically("-o", req["out"], lambda f: np.savez(f, **arrays), error=_fail)
    if req["base"] is not None:
        what = "of the fiber over (" + ", ".join(f"{v:g}" for v in req["base"]) + f") from `{entry}`"
    else:
        what = f"of the flow `{entry}`"
    print(f"wrote {req['n']} points {what} to {req['out']}", file=sys.stderr)
    return 0
