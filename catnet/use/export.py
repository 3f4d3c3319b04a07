"""``catnet export``: a trained model serialized by ``jax.export``, with a symbolic batch size.

The model is the morphism the run trained (or ``--entry``) with the weights
and batch statistics of the run's result in ``--checkpoint DIR`` (its best
epoch by validation loss, else its newest; :mod:`catnet.use.trained`), in
evaluation mode.  What is exported is its forward function with the
**weights closed over**: they are constants
of the serialized program, so the file alone is the model, and it is called
with the inputs only::

    from jax import export
    model = export.deserialize(open("model.jaxexport", "rb").read())
    logits = model.call(x)          # x: float32 (batch, 64), any batch

One positional argument per domain wire (float32 for ``R`` wires, int32 for
``Z`` wires), each with a leading batch axis; the result is one array for
one codomain wire, a tuple for several.  (Weights as arguments would let one
program serve several checkpoints, but every caller would then have to
rebuild the parameter tree catnet saves; a closed-over program needs
nothing but JAX.)

The batch size is symbolic (``jax.export.symbolic_shape("b")``): the
exported function is the per-example model ``jax.vmap``-ed over the batch,
so the lowering traces one example of fixed shape and the batch axis is left
open; any batch size, one included, runs the same program.  (The model
itself reads its batch size as a number -- its input checks and the
context of a call do -- which a symbolic dimension is not; in evaluation
mode each example's output depends on that example alone, so the two
programs compute the same.)  Sizes the
domain's type leaves open (``Z[T]``) are fixed with ``--size T=128``
(repeatable).  The program is lowered for ``--platforms`` (default: the
platform JAX runs on here), e.g. ``cpu,cuda`` for a file that runs on both.

Serialization needs the ``flatbuffers`` package (``jax.export.serialize``
imports it); without it the command stops with E0602 before compiling.  Bad
option values and output paths are E0710, located at the entry, and are
found before JAX is imported.  A model that ``jax.export`` cannot lower (a
plugin's operation without a lowering for a platform asked for) is E0601
with JAX's reason.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from typing import Any

from .. import dims
from ..cli import add_root_argument
from ..errors import CatnetError, shown
from ..ir import Ty
from . import trained

#: The platforms ``jax.export`` can lower for.
PLATFORMS = ("cpu", "cuda", "rocm", "tpu")
#: The accepted values of a ``--size``.
SIZE_RANGE = (1, 2**31 - 1)

DESCRIPTION = """\
Serialize a trained model with jax.export: the evaluation-mode forward
function with the weights of a run of `catnet train` (its best epoch, else
its newest; --epoch picks another) closed over, for any batch size (a
symbolic batch axis).  Load it with `jax.export.deserialize(data).call(x)`;
no catnet needed."""

EPILOG = """\
examples:
  catnet train examples/digits_cnn.cat --epochs 5 --out runs/cnn
  catnet export examples/digits_cnn.cat --checkpoint runs/cnn -o cnn.jaxexport
  catnet export examples/transformer.cat --checkpoint runs/lm --size T=128 -o lm.jaxexport
  catnet export examples/digits_cnn.cat --checkpoint runs/cnn --platforms cpu,cuda -o cnn.jaxexport

in Python:
  from jax import export
  model = export.deserialize(open("cnn.jaxexport", "rb").read())
  logits = model.call(x)   # x: float32 (batch, 64)"""


def configure(parser: argparse.ArgumentParser) -> None:
    """The options of ``catnet export``; values are read as text and checked by :func:`request`."""
    trained.add_common_arguments(parser, DESCRIPTION, EPILOG)
    parser.add_argument("-o", "--out", required=True, metavar="FILE", help="the file to write the serialized model to")
    parser.add_argument("--size", action="append", default=[], metavar="NAME=N",
                        help="fix a size the input types leave open, e.g. --size T=128 for Z[T] (repeatable)")
    parser.add_argument("--platforms", default=None, metavar="P,Q",
                        help=f"lower for these platforms, of {', '.join(PLATFORMS)} (default: the one JAX runs on here)")
    parser.add_argument("-q", "--quiet", action="store_true", help="print nothing")
    add_root_argument(parser)


def open_sizes(dom: Ty) -> list[str]:
    """The size symbols of a domain's wires, in order of first appearance."""
    found: list[str] = []
    for ob in dom.obs:
        for d in ob.shape:
            found += [s for s in sorted(dims.symbols(d)) if s not in found]
    return found


def sizes(texts: list[str], dom: Ty) -> dict[str, int]:
    """``--size NAME=N`` values, checked against the domain's open sizes: each given once, each needed; E0710."""
    open_ = open_sizes(dom)
    example = " ".join(f"--size {s}=128" for s in open_)
    given: dict[str, int] = {}
    for text in texts:
        name, eq, value = text.partition("=")
        name = name.strip()
        if not eq or not name:
            raise trained.fail(f"--size takes NAME=N, not {shown(text)}", help=f"e.g. {example or '--size T=128'}")
        if name not in open_:
            raise trained.fail(
                f"--size {name}: the inputs {dom} have no open size `{name}`",
                help=f"their open sizes: {', '.join(open_)}" if open_ else "every size of the inputs is fixed: drop --size",
            )
        if name in given:
            raise trained.fail(f"--size {name} is given twice")
        given[name] = trained.whole(f"--size {name}", value, *SIZE_RANGE)
    missing = [s for s in open_ if s not in given]
    if missing:
        raise trained.fail(
            f"the inputs {dom} leave the size{'s' if len(missing) > 1 else ''} {', '.join(missing)} open; "
            "an exported program has a fixed shape but for its batch axis",
            help=f"fix {'them' if len(missing) > 1 else 'it'}: {' '.join(f'--size {s}=128' for s in missing)}",
        )
    return given


def platforms(text: str | None) -> tuple[str, ...] | None:
    """``--platforms`` as a tuple of names (``None``: JAX's default platform); E0710 for an unknown one."""
    if text is None:
        return None
    names = [p.strip().lower() for p in text.split(",") if p.strip()]
    if not names:
        raise trained.fail(f"--platforms names no platform: {shown(text)}", help=f"e.g. --platforms cpu,cuda (of {', '.join(PLATFORMS)})")
    for name in names:
        if name not in PLATFORMS:
            raise trained.fail(f"--platforms: unknown platform {shown(name)}", help=f"the platforms are {', '.join(PLATFORMS)}")
    return tuple(dict.fromkeys(names))


def input_specs(dom: Ty, fixed: dict[str, int]) -> list[Any]:
    """One ``jax.ShapeDtypeStruct`` per domain wire: a symbolic batch axis ``b``, then the wire's sizes."""
    import jax
    import jax.numpy as jnp
    from jax import export

    (batch,) = export.symbolic_shape("b")
    specs = []
    for ob in dom.obs:
        shape = tuple(int(dims.subst(d, fixed)) for d in ob.shape)
        specs.append(jax.ShapeDtypeStruct((batch, *shape), jnp.int32 if ob.base == "Z" else jnp.float32))
    return specs


def export_model(model: Any, fixed: dict[str, int] | None = None, platforms: tuple[str, ...] | None = None) -> Any:
    """The ``jax.export.Exported`` of ``model`` (compiled, in evaluation mode): weights closed over, batch symbolic.

    ``fixed`` gives the domain's open sizes (``{"T": 128}``).  The function
    exported is ``jax.vmap`` of the model on one example, so nothing in the
    model sees the symbolic batch size.
    """
    import jax
    from flax import nnx
    from jax import export

    graphdef, state = nnx.split(model)

    def one(*xs: Any) -> Any:
        out = nnx.merge(graphdef, state)(*(x[None] for x in xs))
        return jax.tree.map(lambda y: y[0], out)

    specs = input_specs(model.diagram.dom, fixed or {})
    return export.export(jax.jit(jax.vmap(one)), platforms=platforms)(*specs)


def run(args: argparse.Namespace) -> int:
    """``catnet export``: 0 on success; every bad input is a diagnostic (exit 1)."""
    module, run_dir, entry, diagram = trained.opened(args)
    try:
        fixed = sizes(args.size, diagram.dom)
        targets = platforms(args.platforms)
        out = trained.output_file("-o", args.out, "model.jaxexport")
        if importlib.util.find_spec("flatbuffers") is None:
            raise CatnetError("E0602", "`catnet export` needs the Python package flatbuffers, which is not installed", None,
                              help="install it: pip install flatbuffers")
    except CatnetError as e:
        raise module.locate(e, entry) from None
    model = trained.restored(module, entry, run_dir, args.file)
    try:
        exported = export_model(model, fixed, targets)
    except Exception as e:  # noqa: BLE001 - jax's lowering errors have no common base; any means it cannot be exported
        first = (str(e).strip().splitlines() or [""])[0][:300]
        raise module.locate(CatnetError(
            "E0601", f"jax.export cannot lower `{entry}`{' for ' + ', '.join(targets) if targets else ''}: {type(e).__name__}: {first}", None,
            help="export for the platform JAX runs on here (leave --platforms out)" if targets else None,
        ), entry) from None
    data = exported.serialize()
    trained.write_atomically("-o", out, lambda f: f.write(data))
    if not args.quiet:
        ins = ", ".join(str(a) for a in exported.in_avals)
        outs = ", ".join(str(a) for a in exported.out_avals)
        print(
            f"wrote `{entry}` ({ins} -> {outs}, for {', '.join(exported.platforms)}) to {out}, {len(data):,} bytes "
            f"({run_dir.described()})",
            file=sys.stderr,
        )
    return 0
