"""``catnet analyze``: the geometry of a trained model's wires and of its loss landscape.

For a model trained by ``catnet train`` (its run directory, ``--checkpoint``)
and data read as ``catnet train`` reads it (``--data``), the command

1. collects the activations of named wires (:mod:`catnet.analysis.activations`:
   by default the entry's input and output and every definition's output)
   on up to ``--samples`` examples, drawn from the whole data set by a
   permutation seeded with ``--seed``;
2. estimates each wire's intrinsic dimension with TwoNN and the
   Levina–Bickel MLE, with bootstrap error bars
   (:func:`catnet.analysis.intrinsic.estimate`);
3. unless ``--no-data-curvature``, estimates the curvature of the data
   manifold along each wire by local quadratic fits
   (:func:`catnet.analysis.curvature.local_curvature`) at
   ``--curvature-points`` base points, in the dimension TwoNN found there
   (wires of intrinsic dimension above :data:`MAX_CURVATURE_DIM` are
   skipped, with the reason);
4. unless ``--no-hessian``, measures the curvature of the loss that ``catnet
   train`` minimized on ``--hessian-samples`` of those examples: the top
   ``--hessian-k`` Hessian eigenvalues (Lanczos), the trace (Hutchinson) and
   the loss along 1 and 2 random filter-normalized directions
   (:mod:`catnet.analysis.hessian`);
5. writes ``OUT/analysis.json`` (every number of every figure, with the
   settings) and the PNG figures (:mod:`catnet.analysis.plots`).

What the request can get wrong is found before JAX is imported: the file
and entry, the wire names (E0201 at the entry, listing the layers), the run
directory (E0703) and the data (E0701).  A checkpoint whose weights do not
fit the entry is E0705, and says so when the run was trained from another
file.  An estimator's refusal (too few points, a wire whose activations are
all equal) is an :class:`~catnet.analysis.errors.AnalysisError`: it is
recorded for that wire and the others go on; if every wire fails, its
message is the command's error (exit 1).  The files appear only when all
the work is done, each written whole (a temporary file, then a rename), so
an interrupted run leaves ``OUT`` as it was.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..cli import add_entry_argument, add_root_argument
from ..errors import CatnetError, whole_option
from ..use.trained import Checkpoint, checkpoint
from .errors import AnalysisError
from .plots import draw
from .report import Progress, analyze

#: The accepted seeds (numpy's and JAX's generators take unsigned 32-bit seeds).
SEED_RANGE = (0, 2**32 - 1)
DESCRIPTION = """\
Analyze a trained model: the intrinsic dimension (TwoNN and MLE, with
bootstrap error bars) of the activations of named wires, the curvature of the
data manifold along each wire (local quadratic fits), and the curvature of its
loss (top Hessian eigenvalues, trace, loss slices along random
filter-normalized directions).  Wires are named as `catnet summary` names the
boxes; by default every definition's output, the entry's input and output.
Writes OUT/analysis.json and PNG figures."""

EPILOG = """\
examples:
  catnet train examples/digits_cnn.cat --data digits --epochs 10 --out runs/digits_cnn
  catnet analyze examples/digits_cnn.cat --checkpoint runs/digits_cnn --data digits -o analysis/
  catnet analyze examples/digits_cnn.cat --checkpoint runs/digits_cnn --data digits \\
      --wires stage1.conv,stage1.relu,stage1,stage2,classifier --no-hessian -o analysis/

Names inside a `repeat n block` take the copy: `block[2].mlp`; `block[*].mlp`
stands for every copy."""


#: Each numeric option: its attribute and its range.
NUMBERS = {
    "--samples": ("samples", 1, 10**7),
    "--bootstrap": ("bootstrap", 2, 10**4),
    "--curvature-points": ("curvature_points", 1, 10**6),
    "--hessian-k": ("hessian_k", 1, 1000),
    "--hessian-samples": ("hessian_samples", 1, 10**7),
    "--probes": ("probes", 2, 10**5),
    "--seed": ("seed", *SEED_RANGE),
    "--batch-size": ("batch_size", 1, 65536),
}

#: The code of a request ``catnet analyze`` cannot carry out (docs/errors.md).
CODE = "E0709"


def options(args: argparse.Namespace) -> None:
    """Check the numeric options and ``--wires``, and store them as numbers and a list (E0709 without a span)."""
    for option, (attr, low, high) in NUMBERS.items():
        setattr(args, attr, whole_option(option, getattr(args, attr), low, high, CODE))
    if isinstance(args.wires, str):
        found = [n.strip() for n in args.wires.split(",") if n.strip()]
        if not found:
            raise CatnetError(CODE, f"--wires names no wire: {args.wires!r}", None,
                              help="name the wires separated by commas, e.g. --wires stage1,stage2 (`catnet summary` prints the names)")
        args.wires = found


def configure(parser: argparse.ArgumentParser) -> None:
    """The options of ``catnet analyze``."""
    parser.description = DESCRIPTION
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("file", help="the .cat file the model was trained from")
    parser.add_argument("--checkpoint", required=True, metavar="DIR",
                        help="the run directory of `catnet train` (its --out); the checkpoint of its result is read (its best epoch by validation loss, else the newest), verified first")
    parser.add_argument("--data", required=True, metavar="DATA",
                        help="the data, as `catnet train --data` takes it (digits, moons, ..., or a .npz with x and y)")
    add_entry_argument(parser, "the morphism the run trained (default: the file's `main`)")
    parser.add_argument("--wires", default=None, metavar="A,B",
                        help="the wires to analyze, as `catnet summary` names the boxes (default: every definition's "
                        "output, and the entry's input and output)")
    parser.add_argument("--samples", default="5000", metavar="N",
                        help="examples to collect activations on, at most the data's size (default 5000)")
    parser.add_argument("--bootstrap", default="20", metavar="B",
                        help="bootstrap resamples for the error bars (default 20)")
    parser.add_argument("--curvature-points", default="1000", metavar="C",
                        help="base points of the data-curvature fits per wire, their neighbours drawn from all samples (default 1000)")
    parser.add_argument("--no-data-curvature", action="store_true", help="skip the curvature of the data along the wires")
    parser.add_argument("--hessian-k", default="10", metavar="K",
                        help="how many of the largest Hessian eigenvalues to find (default 10)")
    parser.add_argument("--hessian-samples", default="1000", metavar="M",
                        help="examples the loss is averaged over for the loss curvature (default 1000)")
    parser.add_argument("--probes", default="50", metavar="P",
                        help="random probes of Hutchinson's trace estimate (default 50)")
    parser.add_argument("--no-hessian", action="store_true", help="skip the loss curvature (eigenvalues, trace, slices)")
    parser.add_argument("--seed", default="0", metavar="S",
                        help="seed of the sample, the bootstrap, the base points, the probes and the directions (default 0)")
    parser.add_argument("--batch-size", default="1024", metavar="B",
                        help="examples per compiled forward pass (default 1024)")
    parser.add_argument("-o", "--out", required=True, metavar="OUT/", help="the folder for analysis.json and the figures")
    parser.add_argument("-q", "--quiet", action="store_true", help="print no progress")
    add_root_argument(parser)


# -- the request, checked before JAX -------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """Everything the analysis needs, checked."""

    entry: str
    diagram: Any
    wires: list[Any]
    data: Any
    loss: str | None
    #: The run's checkpoint to read: its result (the best epoch by validation loss, else the newest), verified.
    run: Checkpoint
    out: Path


def _output(path: str) -> Path:
    """The output folder, creatable and writable (a probe file, removed at once); E0703 otherwise."""
    out = Path(path)
    if os.path.lexists(out) and not out.is_dir():
        raise CatnetError("E0703", f"-o {path} exists and is not a directory", None, help="-o names a folder for analysis.json and the figures")
    base = out.absolute()
    while not os.path.lexists(base) and base != base.parent:
        base = base.parent
    if not base.is_dir() or not os.access(base, os.W_OK | os.X_OK):
        raise CatnetError("E0703", f"cannot create -o {path}: no permission to write in {base}", None)
    return out


def _loss(settings: dict[str, Any], labels: bool) -> str:
    """The loss the run minimized, as :func:`catnet.analysis.hessian.problem_from_model` names it."""
    loss = settings.get("loss", "auto")
    if loss == "xent" or (loss == "auto" and labels):
        return "cross_entropy"
    return "mse"


def request(args: argparse.Namespace, module: Any, entry: str) -> Request:
    """Check the options, the entry, the wires, the run directory and the data; no JAX."""
    from .. import data as datalib
    from ..check.inputs import vocab_bounds
    from ..ir import Span
    from ..train import training_kind
    from . import activations

    options(args)
    try:
        diagram = module.diagram(entry)
    except CatnetError as e:
        if e.code == "E0210" and e.span is None:
            e.span = Span(module.path, 1, 1, 1, 1)  # no such morphism: the file is where to look
        raise
    wires = activations.select(diagram, args.wires)
    out = _output(args.out)
    run = checkpoint(args.checkpoint, args.file)
    kind = {"nll": "flow", "bundle": "bundle"}.get(training_kind(diagram, "auto", entry) or "", "supervised")
    try:
        data = datalib.load(args.data, diagram.dom, diagram.cod, vocab_bounds(diagram), kind=kind, seed=args.seed)
    except CatnetError as e:
        if e.code == "E0701":
            e.notes = e.notes + (f"data: {args.data}",)
        raise
    loss = _loss(run.settings, data.labels) if kind == "supervised" and data.target is not None else None
    return Request(entry, diagram, wires, data, loss, run, out)


# -- the work ----------------------------------------------------------------------------------


def _publish(report: dict[str, Any], out: Path, title: str) -> list[str]:
    """Draw the figures and write the JSON into a hidden folder of ``out``, then rename each file into place.

    An interruption before the renames leaves ``out`` as it was; each file
    appears whole.  The JSON goes last, so it never names a figure not yet there.
    """
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".analysis-", dir=out))
    try:
        report["figures"] = draw(report, staging, title)
        (staging / "analysis.json").write_text(json.dumps(report, indent=2, allow_nan=False) + "\n", encoding="utf-8")
        names = [*report["figures"].values(), "analysis.json"]
        for name in names:
            os.replace(staging / name, out / name)
        return names
    finally:
        for leftover in staging.iterdir():
            leftover.unlink()
        staging.rmdir()


def run(args: argparse.Namespace) -> int:
    """``catnet analyze``: 0 on success; bad input is a diagnostic (exit 1)."""
    import catnet

    module = catnet.load(args.file, root=args.root)
    entry = args.entry or module.entry_name()
    try:
        req = request(args, module, entry)
    except CatnetError as e:
        raise module.locate(e, entry) from None
    progress = Progress(None if args.quiet else sys.stderr)

    from flax import nnx

    from ..train import restore_run

    model = catnet.compile(module, entry, rngs=nnx.Rngs(args.seed))
    try:
        restore_run(model, req.run.run, req.run.epoch, file=args.file, entry=entry, other_file=req.run.other_file,
                    trained=req.run.trained, verb="analyze")
    except CatnetError as e:
        raise module.locate(e, entry) from None
    if req.run.other_file:
        progress.line(f"note: the checkpoint was trained from another version of {args.file}; its weights fit `{entry}`")
    model.eval()

    n_all = len(req.data)
    order = np.random.default_rng(args.seed).permutation(n_all)[: min(args.samples, n_all)]
    inputs = tuple(x[order] for x in req.data.inputs)
    if args.samples > n_all:
        progress.line(f"note: --samples {args.samples}, but {args.data} has {n_all} examples: using all of them")
    target = None
    if req.loss is None and not args.no_hessian:
        progress.line("note: no loss curvature: the entry trains by likelihood, and the loss curvature needs targets")
    elif req.loss is not None:
        target = req.data.target[order]
    try:
        numbers = analyze(
            model, inputs, target, loss=req.loss, wires=[w.name for w in req.wires], bootstrap=args.bootstrap,
            data_curvature_points=None if args.no_data_curvature else args.curvature_points, hessian=not args.no_hessian,
            hessian_k=args.hessian_k, hessian_samples=args.hessian_samples, probes=args.probes, seed=args.seed,
            batch_size=args.batch_size, progress=progress,
        )
    except CatnetError as e:
        raise module.locate(e, entry) from None
    except AnalysisError as error:
        help = None
        if error.step == "hessian":
            help = "--no-hessian skips it"
        elif len(order) < n_all:
            help = f"analyze more examples (--samples; {args.data} has {n_all})"
        raise module.locate(CatnetError(CODE, str(error), None, help=help), entry) from None

    report = {
        "file": args.file,
        "entry": entry,
        "checkpoint": {"run": str(req.run.run), "epoch": req.run.epoch, "other_file": req.run.other_file},
        "data": args.data,
        "settings": {
            "samples": args.samples, "bootstrap": args.bootstrap, "seed": args.seed, "batch_size": args.batch_size,
            "hessian": not args.no_hessian, "hessian_k": args.hessian_k, "hessian_samples": args.hessian_samples,
            "probes": args.probes, "data_curvature": not args.no_data_curvature, "curvature_points": args.curvature_points,
            "wires": args.wires,
        },
        **numbers,
    }
    written = _publish(report, req.out, f"{Path(args.file).stem} `{entry}`")
    progress.line(f"wrote {', '.join(written)} to {req.out}")
    return 0
