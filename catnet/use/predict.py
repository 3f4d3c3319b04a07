"""``catnet predict``: a trained model's outputs on the inputs of an ``.npz`` file.

The model is the morphism the run trained (or ``--entry``), compiled and
given the weights and batch statistics of the run's result in
``--checkpoint DIR`` (its best epoch by validation loss, else its newest;
:mod:`catnet.use.trained`), in evaluation mode:
dropout off, batch statistics from their running averages, so each
example's output depends on that example alone.

The inputs are read as ``catnet train`` reads its data, with the same
checks (:mod:`catnet.data`): the array ``x`` for one domain wire, ``x0``,
``x1``, ... for several, each with the examples on its first axis; keys,
dtypes (``R`` wires take floats, ``Z`` wires integers), per-example shapes
(a size the type leaves open, such as ``T``, binds to the array's and must
agree across wires), finite values and token ids in the ``vocab`` of the
``embed`` reading them.  Other arrays in the file (``y``, say) are ignored.
Every problem is E0701 (E0001 for a file that cannot be opened), located
at the entry.

The outputs are written to ``-o`` as an ``.npz``: the array ``y`` for one
codomain wire, ``y0``, ``y1``, ... for several, as float32 (``R``, whatever
precision the run computed in) or int32 arrays with the examples first; the file appears whole or not at all.

The forward pass is ``jax.jit`` of the evaluation graph over the split
state, run on chunks of ``--batch-size`` examples; the last chunk is padded
by repeating its last example (one shape, one compilation) and the padding
is dropped from the outputs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

from .. import data as datalib
from ..cli import add_root_argument
from ..errors import CatnetError
from ..ir import Ty
from . import trained

#: The accepted ``--batch-size`` values.
BATCH_RANGE = (1, 2**20)

DESCRIPTION = """\
Run a trained model on the inputs of an .npz file (x, or x0, x1, ... for
several input wires, as `catnet train` reads them) and write its outputs to
an .npz (y, or y0, y1, ... for several output wires).  The weights are those
of a run of `catnet train` (its best epoch, else its newest; --epoch picks
another); the model runs in evaluation mode (no dropout, batch statistics
from the run)."""

EPILOG = """\
examples:
  catnet train examples/digits_cnn.cat --epochs 5 --out runs/cnn
  python -c "import numpy as np; np.savez('x.npz', x=np.random.rand(10, 64).astype('float32'))"
  catnet predict examples/digits_cnn.cat --checkpoint runs/cnn --input x.npz -o y.npz
  catnet predict examples/siamese.cat --checkpoint runs/siamese --input pairs.npz -o scores.npz   (x0 and x1)"""


def configure(parser: argparse.ArgumentParser) -> None:
    """The options of ``catnet predict``; numbers are read as text and checked by :func:`request`."""
    trained.add_common_arguments(parser, DESCRIPTION, EPILOG)
    parser.add_argument("--input", required=True, metavar="X.npz",
                        help="the inputs: an .npz with x (or x0, x1, ... for several input wires), examples first")
    parser.add_argument("-o", "--out", required=True, metavar="Y.npz",
                        help="the .npz to write the outputs to: y (or y0, y1, ... for several output wires)")
    parser.add_argument("--batch-size", default="1024", metavar="B",
                        help=f"examples per compiled forward pass, {BATCH_RANGE[0]} to {BATCH_RANGE[1]} (default 1024)")
    parser.add_argument("-q", "--quiet", action="store_true", help="print nothing")
    add_root_argument(parser)


def output_keys(cod: Ty) -> list[str]:
    """The ``.npz`` keys of a codomain's wires: ``y`` for one, ``y0``, ``y1``, ... for several."""
    return ["y"] if len(cod) == 1 else [f"y{i}" for i in range(len(cod))]


def predict(model: Any, inputs: tuple[np.ndarray, ...], batch_size: int = 1024) -> tuple[np.ndarray, ...]:
    """``model(*inputs)``, one NumPy array per codomain wire, computed in jitted chunks of ``batch_size``.

    ``model`` is a compiled model in evaluation mode (its output for an
    example must not depend on the others in its chunk).  The last chunk is
    padded by repeating its last example, so every chunk has one shape.
    Real outputs come back as float32 whatever dtype computed them (NumPy
    has no bfloat16, and a model in bfloat16 loses nothing by the cast).
    """
    import jax
    import jax.numpy as jnp
    from flax import nnx

    graphdef, state = nnx.split(model)

    @jax.jit
    def forward(state: Any, xs: tuple[Any, ...]) -> Any:
        out = nnx.merge(graphdef, state)(*xs)
        return out if isinstance(out, tuple) else (out,)

    n = int(inputs[0].shape[0])
    size = min(n, batch_size)
    parts: list[tuple[np.ndarray, ...]] = []
    for start in range(0, n, size):
        index = np.minimum(np.arange(start, start + size), n - 1)
        got = forward(state, tuple(x[index] for x in inputs))
        keep = min(size, n - start)
        parts.append(tuple(np.asarray(y[:keep], np.float32 if jnp.issubdtype(y.dtype, jnp.floating) else y.dtype) for y in got))
    return tuple(np.concatenate(wire, axis=0) for wire in zip(*parts))


def run(args: argparse.Namespace) -> int:
    """``catnet predict``: 0 on success; every bad input is a diagnostic (exit 1)."""
    module, run_dir, entry, diagram = trained.opened(args)
    try:
        batch_size = trained.whole("--batch-size", args.batch_size, *BATCH_RANGE)
        out = trained.output_file("-o", args.out, "y.npz", ".npz")
        if Path(args.input).absolute() == out.absolute():
            raise trained.fail(f"--input and -o are the same file, {args.input}", help="write the outputs to another file")
        try:
            inputs = datalib.read_inputs(args.input, diagram)
        except CatnetError as e:
            if e.code == "E0701":
                e.notes = e.notes + (f"input: {args.input}",)
            raise
    except CatnetError as e:
        raise module.locate(e, entry) from None
    model = trained.restored(module, entry, run_dir, args.file)
    outputs = predict(model, inputs, batch_size)
    arrays = dict(zip(output_keys(diagram.cod), outputs))
    trained.write_atomically("-o", out, lambda f: np.savez(f, **arrays))
    if not args.quiet:
        shapes = ", ".join(f"{k} {tuple(v.shape)}" for k, v in arrays.items())
        print(f"wrote {shapes} of `{entry}` on {len(inputs[0])} examples to {out} ({run_dir.described()})", file=sys.stderr)
    return 0
