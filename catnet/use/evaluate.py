"""``catnet eval``: score a trained model on the test set, as ``catnet train`` scored it.

The weights are those of the run's result in ``--checkpoint DIR``: its
best epoch by validation loss, else its newest (``--epoch`` picks another;
see :mod:`catnet.use.trained`).  The data options default to the
run's own, read from the checkpoint's settings: the named data set (a run
on an ``.npz`` file records the file's checksum, not its path, so
``--data PATH`` is needed, and a file with other contents is noted), the
seed and the test fraction.  The test set is rebuilt by
``catnet.train.load_datasets`` (the same settings give the same split) and
scored by ``catnet.train.evaluate`` with the evaluation step of
``catnet.train.make_functions``: the same batches and the same order of
summation, so with the run's settings the test loss and accuracy equal,
bit for bit, the ones ``catnet train`` printed at its end (the last
epoch's, or the best epoch's with a validation set).

The loss is the run's: its ``--objective`` (the batch mean of the
objective's output), the negative log-likelihood of a flow (with bits per
dimension and the one-Gaussian baseline, as ``train`` reports them), the
bundle objective of a trivialization (with the projection error and fiber
coverage of a bundle data set), else cross-entropy or squared error as the
run's ``--loss`` and the targets decide.  A run with ``--rotate-test``
is also scored on the turned test images.

Bad option values are E0710, a directory that holds no run E0703, a
corrupt checkpoint or one that does not fit the entry E0705, data that does
not fit the entry E0701: all found before JAX is imported but the last
kind of E0705, and all located at the entry.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import checkpoints
from .. import data as datalib
from ..cli import add_root_argument
from ..errors import CatnetError
from ..train import result_lines
from . import trained

#: The accepted seeds (numpy's and JAX's generators take unsigned 32-bit seeds).
SEED_RANGE = (0, 2**32 - 1)

DESCRIPTION = """\
Score a trained model on the test set: the test loss (and accuracy, for
class labels) of a run of `catnet train`, with the weights of its best epoch
by validation loss, else of its newest (--epoch picks another).  The data,
seed and test fraction default to the run's own, so the numbers are those
training printed at its end, bit for bit; other --data, --seed or
--test-fraction score the model on that split instead."""

EPILOG = """\
examples:
  catnet train examples/digits_mlp.cat --epochs 5 --out runs/mlp
  catnet eval examples/digits_mlp.cat --checkpoint runs/mlp
  catnet eval examples/digits_mlp.cat --checkpoint runs/mlp --metrics-out eval.json
  catnet eval model.cat --checkpoint runs/model --data data.npz   (a run trained on an .npz file)"""


def configure(parser: argparse.ArgumentParser) -> None:
    """The options of ``catnet eval``; numbers are read as text and checked by :func:`request`."""
    trained.add_common_arguments(parser, DESCRIPTION, EPILOG)
    parser.add_argument("--data", default=None, metavar="DATA",
                        help="the data, as `catnet train --data` takes it (default: the run's named data set; "
                        "a run trained on an .npz file needs its PATH)")
    parser.add_argument("--seed", default=None, metavar="S", help="the seed of the data (default: the run's)")
    parser.add_argument("--test-fraction", default=None, metavar="F",
                        help="share of the data held out as the test set, between 0 and 1 (default: the run's)")
    parser.add_argument("--metrics-out", default=None, metavar="PATH", help="also write the metrics as JSON to this path")
    parser.add_argument("-q", "--quiet", action="store_true", help="print nothing (with --metrics-out)")
    add_root_argument(parser)


@dataclass(frozen=True)
class Request:
    """A checked ``catnet eval``: what to score, on which data."""

    entry: str
    diagram: Any
    run: trained.Checkpoint
    data: str
    seed: int
    test_fraction: float
    #: ``"objective"``, ``"nll"``, ``"bundle"``, ``"xent"`` or ``"mse"``: the loss the run minimized.
    kind: str
    objective: str | None
    #: The examples the run trained on (without its validation set): a flow's Gaussian baseline is fitted to them.
    train: datalib.Dataset
    test: datalib.Dataset
    rotated: datalib.Dataset | None
    #: Whether data, seed and test fraction are the run's, so the numbers are the run's own.
    same_split: bool
    metrics_out: Path | None


def _data(option: str | None, run: trained.Checkpoint) -> str:
    """The data to score on: ``--data``, else the run's named data set (E0710 for a run on an .npz file)."""
    recorded = run.settings.get("data")
    if option is not None:
        if not option:
            raise trained.fail("--data is empty", help="name a data set (e.g. digits) or an .npz file")
        return option
    if isinstance(recorded, str) and datalib.is_named(recorded):
        return recorded
    raise trained.fail(
        f"the run in {run.run} was trained on an .npz file, which its checkpoint records by checksum, not by path",
        help="pass the file with --data PATH",
    )


def _seed(text: str | None, run: trained.Checkpoint) -> int:
    if text is None:
        seed = run.settings.get("seed")
        return seed if isinstance(seed, int) else 0
    return trained.whole("--seed", text, *SEED_RANGE)


def _test_fraction(text: str | None, run: trained.Checkpoint) -> float:
    if text is None:
        recorded = run.settings.get("test_fraction")
        return float(recorded) if isinstance(recorded, (int, float)) else 0.2
    try:
        value = float(str(text).strip())
    except ValueError:
        raise trained.fail(f"--test-fraction must be a number between 0 and 1, not {text!r}") from None
    if not (math.isfinite(value) and 0 < value < 1):
        raise trained.fail(f"--test-fraction must be between 0 and 1, not {value}")
    return value


def _same_data(data: str, run: trained.Checkpoint) -> bool:
    """Whether ``data`` is what the run trained on (a named set by name, a file by content)."""
    recorded = run.settings.get("data")
    if datalib.is_named(data):
        return data == recorded
    if recorded != "npz":
        return False
    try:
        return checkpoints.file_sha256(data) == run.settings.get("data_sha256")
    except OSError:
        return False  # loading the data reports why it cannot be read


def request(args: argparse.Namespace, module: Any) -> Request:
    """Check the run directory, the entry, the options and the data; no JAX.

    Errors found once the entry is known are located at it; those before
    (the run directory) are left for the caller to place.
    """
    from ..train import LOSSES, load_datasets

    run = trained.checkpoint(args.checkpoint, args.file, args.epoch)
    entry, diagram = trained.morphism(module, args.entry, run)
    try:
        data = _data(args.data, run)
        seed = _seed(args.seed, run)
        test_fraction = _test_fraction(args.test_fraction, run)
        metrics_out = trained.output_file("--metrics-out", args.metrics_out, "metrics.json") if args.metrics_out is not None else None
        objective = entry if entry == run.settings.get("objective") else None
        loss = run.settings.get("loss", "auto") if objective is None else "auto"
        if loss not in LOSSES:
            raise CatnetError("E0705", f"the checkpoint in {run.run} records the unknown loss {loss!r}", None)
        try:
            train, test, likelihood = load_datasets(diagram, entry, objective, data, loss, seed, test_fraction)
        except CatnetError as e:
            if e.code == "E0701":
                e.notes = e.notes + (f"data: {data}",)
            raise
    except CatnetError as e:
        raise module.locate(e, entry) from None
    kind = "objective" if objective is not None else likelihood or (loss if loss != "auto" else "xent" if test.labels else "mse")
    held_out = run.settings.get("validation_fraction")
    if isinstance(held_out, (int, float)) and held_out > 0:
        train = datalib.validation_split(train, float(held_out))[0]  # what the run trained on, for the flows' baseline
    rotated = None
    if run.settings.get("rotate_test") and datalib.grid_size(test) is not None:
        rotated = datalib.rotated(test, seed)[0]
    same = (
        _same_data(data, run)
        and seed == run.settings.get("seed")
        and test_fraction == run.settings.get("test_fraction")
        and entry == (run.trained or module.entry_name())
    )
    return Request(entry, diagram, run, data, seed, test_fraction, kind, objective, train, test, rotated, same, metrics_out)


def score(model: Any, req: Request) -> dict[str, Any]:
    """The test metrics of ``model`` (restored, in evaluation mode) on the request's test set.

    Computed by the evaluation step ``catnet train`` uses, over the same
    chunks in the same order, so the run's own settings give its numbers.
    """
    import jax
    import jax.numpy as jnp
    import optax
    from flax import nnx

    from ..train import evaluate, gaussian_nll, make_functions

    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    # the training step is never called: no optimizer state exists, and none is needed
    _, eval_step = make_functions(graphdef, graphdef, optax.identity(), req.kind)
    has_accuracy = req.kind == "xent" or req.test.labels

    def scored(data: datalib.Dataset) -> tuple[float, float | None]:
        inputs = tuple(jnp.asarray(x) for x in data.inputs)
        target = jnp.asarray(data.target) if data.target is not None else None
        return evaluate(eval_step, params, rest, inputs, target, has_accuracy)

    test_loss, test_accuracy = scored(req.test)
    metrics: dict[str, Any] = {
        "loss": req.kind,
        "objective": req.objective,
        "test_examples": len(req.test),
        "test_loss": test_loss,
        "test_accuracy": test_accuracy,
        "params": int(sum(x.size for x in jax.tree.leaves(params))),
    }
    if req.objective is not None:
        metrics.setdefault(f"test_{req.objective}", test_loss)  # as `catnet train` names it, unless that is another metric's name
    if req.rotated is not None:
        metrics["test_loss_rotated"], metrics["test_accuracy_rotated"] = scored(req.rotated)
    if req.kind == "nll":
        from ..flows import bits_per_dim, dimension

        metrics["test_nll"] = test_loss
        metrics["test_bits_per_dim"] = bits_per_dim(test_loss, dimension(model), req.test.levels)
        metrics["gaussian_nll"] = gaussian_nll(req.train.inputs[0], req.test.inputs[0])
    elif req.kind == "bundle":
        bundle = datalib.bundle_data(req.data)
        if bundle is not None:
            from ..bundles.metrics import evaluate as bundle_metrics

            assert req.test.target is not None
            metrics.update(bundle_metrics(model, bundle, req.test.target, req.seed))
    return metrics


def summary(metrics: dict[str, Any], run: trained.Checkpoint) -> str:
    """The line(s) ``catnet eval`` prints for ``metrics`` of ``run``, worded as ``catnet train`` words its last line."""
    lines = result_lines(metrics)
    shown = lines.pop()
    whose = "the run's test set" if metrics["same_split"] else f"the test set of {metrics['data']} (seed {metrics['seed']}, test fraction {metrics['test_fraction']})"
    lines.append(
        f"{shown}test {metrics['objective'] or 'loss'} {metrics['test_loss']:.4f} on {metrics['test_examples']} examples "
        f"of {whose}; {run.described()}"
    )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """``catnet eval``: 0 on success; every bad input is a diagnostic (exit 1)."""
    import catnet

    module = catnet.load(args.file, root=args.root)
    try:
        req = request(args, module)
    except CatnetError as e:
        raise module.locate(e, args.entry or module.entry_name()) from None
    model = trained.restored(module, req.entry, req.run, args.file)
    metrics = {
        "file": args.file,
        "entry": req.entry,
        "checkpoint": {"run": str(req.run.run), "epoch": req.run.epoch, "best": req.run.best},
        "data": req.data,
        "seed": req.seed,
        "test_fraction": req.test_fraction,
        "same_split": req.same_split,
        **score(model, req),
    }
    if req.metrics_out is not None:
        text = json.dumps(metrics, indent=2, sort_keys=True) + "\n"
        trained.write_atomically("--metrics-out", req.metrics_out, lambda f: f.write(text.encode("utf-8")))
    if not args.quiet:
        print(summary(metrics, req.run))
    return 0
