"""``catnet train``: fit a morphism to data with optax, with checkpoints.

The loss follows the entry and the data.  A *flow* (one real wire onto
itself, every box an isomorphism) trains by likelihood: the negative
log-likelihood of the data under the flow onto a standard Gaussian
(``catnet.flows.nll``).  A *trivialization* ``E -> B ⊗ F`` (its first box a
``triv``) trains by the bundle objective on total-space points and their
base points (``catnet.bundles.objective.per_example``), after its chart
centres are fitted to the training base points by k-means.  Otherwise
integer targets are class labels for the logits on the output's last axis
(softmax cross-entropy) and float targets are regressed (mean squared
error).  ``--loss`` names the loss (``nll``, ``bundle``, ``xent``,
``mse``); asking a flow or a trivialization for ``xent``/``mse``, or a
likelihood of a morphism that is not one, is E0706 at the entry.
With ``--objective NAME`` the loss is written in the file instead: NAME is
a morphism ending in ``R[]`` (one number per example, e.g. built from the
``losses`` generators), its domain takes the data's inputs and optionally
the targets (``catnet.data.load_objective``), and training minimizes the
batch mean of its output over its parameters.
The data split into train and test once, the same for every seed; each
epoch shuffles the training set with a generator seeded from
``(seed, epoch)``, runs full batches, evaluates on the test set and writes
a checkpoint (orbax, atomic: a crash leaves the previous one intact) with a
manifest of checksums and the run's settings (see ``catnet.checkpoints``).

With ``--rotate-test`` each epoch is also evaluated on the test images
turned by random multiples of 90° (one turn per image, drawn from
``--seed``; ``catnet.data.rotated``), which measures the invariance of a
model trained on upright images only: the metrics gain
``test_accuracy_rotated`` and ``test_loss_rotated``.  It needs one input of
square images ``R[h, h, c]`` (E0703 otherwise).

The training tools (see ``docs/training.md``): the learning rate follows
an optax schedule (``--schedule constant|cosine|step`` after a linear
``--warmup``), ``--weight-decay`` and ``--clip-norm`` chain optax's
transformations, ``--accumulate K`` averages K micro-batches per update
(``optax.MultiSteps``).  ``--validation-fraction`` carves a validation set
out of the training part (never out of the test set), scored every epoch;
the checkpoint of the lowest validation loss is kept, the final metrics are
that epoch's, and ``--early-stopping N`` ends the run N epochs after it.
Every run logs its steps and epochs to ``OUT/steps.csv``,
``OUT/epochs.csv`` and TensorBoard (``OUT/tensorboard``), and draws
``OUT/curves.png`` at the end (:class:`RunLog`).

Everything that can be wrong with the input is found by :func:`prepare`
before JAX is imported, so errors come at once: every option value (E0703),
the run directory and the metrics path (E0703), the file, the data (E0701),
the model's memory (E0603), and on ``--resume`` the checkpoint's checksums
and settings (E0705).

Determinism: the weights, the dropout stream and the shuffling are all
functions of ``--seed``, and a checkpoint holds everything that changes
(parameters, optimizer state, batch statistics, the random stream's
counter), so ``--resume`` after an interruption ends in bit-identical
weights to an uninterrupted run.

The step is ``jax.jit`` of a pure function of the split state
(``nnx.split``/``nnx.merge`` inside), which costs what a hand-written
training step costs; ``nnx.jit`` would add its graph traversal to every
call.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import math
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, TextIO

import numpy as np

from . import checkpoints as ckpt
from . import data as datalib
from .budget import require_fits
from .check import Module, require_lowerable
from .check.inputs import bad_argument, vocab_bounds
from .cli import add_entry_argument, add_root_argument
from .errors import CatnetError, suggest
from .ir import Diagram, Span, Ty, first_not_iso
from .parallel import distributed
from .parallel import mesh as meshes

LOSSES = ("auto", "xent", "mse", "nll", "bundle")
OPTIMIZERS = ("adam", "adamw", "sgd")
#: ``--precision``: the dtype the model computes in (parameters stay float32).
PRECISIONS = {"fp32": None, "bf16": "bfloat16"}
SCHEDULES = ("constant", "cosine", "step")

#: The weight decay of each optimizer without ``--weight-decay``: optax's
#: ``adamw`` decays by 1e-4 unless told otherwise, the others not at all.
DEFAULT_WEIGHT_DECAY = {"adam": 0.0, "adamw": 1e-4, "sgd": 0.0}


#: The accepted range of each numeric option (inclusive); the seed feeds
#: numpy's and JAX's generators, which take unsigned 32-bit seeds.
SEED_RANGE = (0, 2**32 - 1)
EPOCHS_RANGE = (1, 1_000_000)
BATCH_RANGE = (1, 2**31 - 1)
WARMUP_RANGE = (0, 2**31 - 1)
ACCUMULATE_RANGE = (1, 2**31 - 1)


def configure(parser: argparse.ArgumentParser) -> None:
    """The options of ``catnet train``; numbers are read as text and checked by :func:`options`."""
    parser.add_argument("file", help="a .cat file")
    add_entry_argument(parser, "the morphism to train (default: the file's `main`)")
    parser.add_argument(
        "--objective",
        default=None,
        metavar="NAME",
        help="train the morphism NAME ending in R[] (a loss per example), minimizing its batch mean; "
        "its domain takes the data's inputs, then optionally the targets",
    )
    parser.add_argument(
        "--data",
        default="digits",
        help="a named data set (bundled, offline: `digits`, `digit_sums` (sets of digits labelled by their sum), "
        "`moons`, and the bundle sets `torus`, `iris`) "
        "or PATH.npz with arrays x and y (a flow reads x only; a trivialization reads x and its base points y)",
    )
    parser.add_argument("--epochs", default="10", help="passes over the training set, 1 to 1000000 (default 10)")
    parser.add_argument("--batch-size", default="64", help="examples per step (default 64)")
    parser.add_argument("--lr", default="1e-3", help="learning rate, a positive number (default 1e-3)")
    parser.add_argument("--optimizer", choices=OPTIMIZERS, default="adam", help="optax optimizer (default adam)")
    parser.add_argument(
        "--loss",
        choices=LOSSES,
        default="auto",
        help="auto: likelihood (nll) for a flow, the bundle objective for a trivialization E -> B ⊗ F, "
        "else cross-entropy (xent) for integer labels and MSE for float targets",
    )
    parser.add_argument("--seed", default="0", help="seed for weights, dropout and shuffling, 0 to 2**32-1 (default 0)")
    parser.add_argument("--test-fraction", default="0.2", help="share of the data held out, between 0 and 1 (default 0.2)")
    parser.add_argument(
        "--rotate-test",
        action="store_true",
        help="also evaluate on the test images each turned by a random multiple of 90 degrees (drawn from --seed), "
        "for image data R[h, h, c]: training sees upright images only, so this measures rotation invariance",
    )
    parser.add_argument(
        "--schedule",
        choices=SCHEDULES,
        default="constant",
        help="learning-rate schedule after the warmup: constant; cosine (decays to 0 at the end of the last epoch); "
        "step (times --decay-factor every --decay-every epochs)",
    )
    parser.add_argument("--warmup", default="0", help="optimizer updates of linear warmup from 0 to --lr (default 0)")
    parser.add_argument("--decay-every", default=None, metavar="EPOCHS", help="with --schedule step: epochs between decays")
    parser.add_argument("--decay-factor", default=None, help="with --schedule step: what each decay multiplies the rate by, in (0, 1] (default 0.1)")
    parser.add_argument(
        "--weight-decay",
        default=None,
        help="decoupled weight decay (adamw, sgd) or L2 added to the gradient (adam), at least 0 "
        "(default: 1e-4 for adamw, as optax's, else 0)",
    )
    parser.add_argument("--clip-norm", default=None, help="clip each gradient to this global norm, a positive number (default: no clipping)")
    parser.add_argument(
        "--accumulate", default="1", help="micro-batches of --batch-size averaged into each optimizer update (default 1)"
    )
    parser.add_argument(
        "--validation-fraction",
        default="0",
        help="share of the training part held out for validation each epoch, in [0, 1) (default 0: none); "
        "the best epoch's checkpoint is kept and scored on the test set",
    )
    parser.add_argument(
        "--early-stopping",
        default=None,
        metavar="EPOCHS",
        help="stop after this many epochs without a lower validation loss (needs --validation-fraction)",
    )
    parser.add_argument("--no-tensorboard", action="store_true", help="write no TensorBoard events (the CSV logs stay)")
    parser.add_argument("--out", default=None, help="run directory for checkpoints and logs (default runs/<file stem>)")
    parser.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --out (verified first)")
    parser.add_argument("--metrics-out", default=None, help="write final metrics as JSON to this path")
    parser.add_argument("--skip-memory-check", action="store_true", help="compile even if the model looks too big for memory")
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    parser.add_argument(
        "--precision",
        choices=tuple(PRECISIONS),
        default="fp32",
        help="fp32, or bf16: compute in bfloat16 with float32 parameters and a float32 loss (default fp32)",
    )
    parser.add_argument(
        "--mesh",
        default=None,
        metavar="data=N[,model=M]",
        help="train on a mesh of N*M devices: the batch split over N, large kernels over M (default: one device)",
    )
    add_root_argument(parser)


@dataclass
class Config:
    """What determines a run's result; a resumed run must agree on all but ``epochs``."""

    file: str
    source_sha256: str
    entry: str | None
    data: str
    batch_size: int
    lr: float
    optimizer: str
    loss: str
    seed: int
    test_fraction: float
    data_sha256: str | None = None
    objective: str | None = None
    rotate_test: bool = False
    schedule: str = "constant"
    warmup: int = 0
    decay_every: int | None = None
    decay_factor: float = 0.1
    weight_decay: float | None = None
    clip_norm: float | None = None
    accumulate: int = 1
    validation_fraction: float = 0.0
    precision: str = "fp32"
    epochs: int = field(default=0, compare=False)
    mesh: str | None = field(default=None, compare=False)
    #: When to stop, not what a step does: like ``epochs`` it may change on ``--resume``.
    early_stopping: int | None = field(default=None, compare=False)

    def key(self) -> dict[str, Any]:
        """The settings a checkpoint records and ``--resume`` compares.

        Files are compared by content, not by path: a moved data file or
        ``.cat`` file resumes, an edited one does not.  A setting at its
        default is left out, so a run made before it existed resumes; a
        cosine schedule records ``epochs``, its length.
        """
        d = dict(self.__dict__)
        for name in ("epochs", "file", "early_stopping", "mesh"):
            d.pop(name)
        if self.objective is None:
            d.pop("objective")  # the settings of a run without one read as before objectives existed
        if not self.rotate_test:
            d.pop("rotate_test")  # likewise: the history of a run records the rotated metrics or never does
        defaults = {
            "schedule": "constant", "warmup": 0, "clip_norm": None, "accumulate": 1, "validation_fraction": 0.0, "precision": "fp32",
        }
        for name, default in defaults.items():
            if d[name] == default:
                d.pop(name)
        if self.schedule != "step":
            d.pop("decay_every")
            d.pop("decay_factor")
        if self.schedule == "cosine":
            d["epochs"] = self.epochs
        if self.weight_decay is None or self.weight_decay == DEFAULT_WEIGHT_DECAY[self.optimizer]:
            d.pop("weight_decay")
        d["data"] = self.data if datalib.is_named(self.data) else "npz"
        return d

    @property
    def decay(self) -> float:
        """The weight decay used: ``--weight-decay``, or the optimizer's default."""
        return DEFAULT_WEIGHT_DECAY[self.optimizer] if self.weight_decay is None else self.weight_decay


def _fail(message: str, help: str | None = None, notes: tuple[str, ...] = ()) -> CatnetError:
    return CatnetError("E0703", message, None, notes=notes, help=help)


def _shown(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:40] + "...")


def _integer(option: str, text: str, low: int, high: int, help: str | None = None) -> int:
    """``text`` as a whole number in ``low..high``; E0703 otherwise."""
    try:
        value = int(str(text).strip(), 10)
    except ValueError:
        raise _fail(f"{option} must be a whole number, not {_shown(text)}", help=help)
    if value < low:
        raise _fail(f"{option} must be at least {low}, not {value}", help=help)
    if value > high:
        raise _fail(f"{option} must be at most {high}, not {value}", help=help)
    return value


def _real(option: str, text: str) -> float:
    try:
        return float(str(text).strip())
    except ValueError:
        raise _fail(f"{option} must be a number, not {_shown(text)}")


def _nearest_existing(path: Path) -> Path:
    """``path`` or its nearest ancestor that exists (the one a mkdir would write into)."""
    path = path.absolute()
    while not os.path.lexists(path) and path != path.parent:
        path = path.parent
    return path


def _creatable(option: str, path: Path) -> None:
    """Refuse a path whose missing folders cannot be made: an ancestor is a file, or unwritable."""
    base = _nearest_existing(path)
    if not base.is_dir():
        raise _fail(f"cannot create {option} {path}: {base} is a file, not a directory")
    if not os.access(base, os.W_OK | os.X_OK):
        raise _fail(f"cannot create {option} {path}: no permission to write in {base}")


def _finite(option: str, text: str, low: float, low_included: bool, high: float | None = None) -> float:
    """``text`` as a finite number above ``low`` (or equal, if ``low_included``) and at most ``high``; E0703 otherwise."""
    value = _real(option, text)
    above = value >= low if low_included else value > low
    if not (math.isfinite(value) and above and (high is None or value <= high)):
        bound = f"at least {low:g}" if low_included else f"greater than {low:g}"
        raise _fail(f"{option} must be a finite number {bound}" + (f" and at most {high:g}" if high is not None else "") + f", not {_shown(text)}")
    return value


def _training_tools(args: argparse.Namespace, ns: argparse.Namespace) -> None:
    """Parse the schedule, regularization, accumulation and validation options into ``ns`` (E0703)."""
    ns.warmup = _integer("--warmup", args.warmup, *WARMUP_RANGE, help="--warmup counts optimizer updates")
    if args.schedule == "step":
        if args.decay_every is None:
            raise _fail("--schedule step needs --decay-every EPOCHS", help="e.g. --schedule step --decay-every 10 --decay-factor 0.1")
        ns.decay_every = _integer("--decay-every", args.decay_every, *EPOCHS_RANGE)
    elif args.decay_every is not None:
        raise _fail(f"--decay-every applies to --schedule step, not --schedule {args.schedule}", help="add --schedule step, or drop --decay-every")
    elif args.decay_factor is not None:
        raise _fail(f"--decay-factor applies to --schedule step, not --schedule {args.schedule}", help="add --schedule step, or drop --decay-factor")
    ns.decay_factor = 0.1 if args.decay_factor is None else _finite("--decay-factor", args.decay_factor, 0.0, False, 1.0)
    ns.weight_decay = None if args.weight_decay is None else _finite("--weight-decay", args.weight_decay, 0.0, True)
    ns.clip_norm = None if args.clip_norm is None else _finite("--clip-norm", args.clip_norm, 0.0, False)
    ns.accumulate = _integer("--accumulate", args.accumulate, *ACCUMULATE_RANGE, help="--accumulate counts micro-batches per update")
    ns.validation_fraction = _finite("--validation-fraction", args.validation_fraction, 0.0, True)
    if ns.validation_fraction >= 1:
        raise _fail(f"--validation-fraction must be at least 0 and below 1, not {_shown(args.validation_fraction)}")
    if args.early_stopping is None:
        ns.early_stopping = None
    else:
        ns.early_stopping = _integer("--early-stopping", args.early_stopping, *EPOCHS_RANGE)
        if ns.validation_fraction == 0:
            raise _fail(
                "--early-stopping watches the validation loss, but there is no validation set",
                help="add --validation-fraction, e.g. --validation-fraction 0.1",
            )


def options(args: argparse.Namespace) -> argparse.Namespace:
    """Check every option value (E0703) and return them parsed; writes nothing.

    Numbers must parse and lie in their documented ranges (``--seed`` in
    0..2**32-1, ``--epochs`` in 1..1000000, ``--batch-size`` at least 1,
    ``--lr`` positive and finite, ``--test-fraction`` strictly between 0
    and 1); ``--out`` must be a directory or creatable, ``--metrics-out`` a
    file path (not a directory) whose folder is a directory or creatable.
    The training tools: ``--warmup`` at least 0; ``--decay-every`` (at least
    1) only and always with ``--schedule step``, ``--decay-factor`` in
    (0, 1]; ``--weight-decay`` at least 0, ``--clip-norm`` positive, both
    finite; ``--accumulate`` at least 1; ``--validation-fraction`` in
    [0, 1); ``--early-stopping`` at least 1 and only with a validation set.
    """
    ns = argparse.Namespace(**vars(args))
    objective = args.objective
    if objective is not None:
        if args.entry is not None:
            raise _fail(
                "--entry and --objective both name what to train",
                help=f"--objective {objective} trains the parameters of `{objective}`, which calls the model: drop --entry",
            )
        if args.loss != "auto":
            raise _fail(f"--loss {args.loss} and --objective both set the loss", help=f"the objective `{objective}` is the loss: drop --loss")
        if args.rotate_test:
            raise _fail(
                "--rotate-test turns the test images of a model, but --objective trains a loss, whose inputs include the targets",
                help="train the model itself (--entry) with the built-in loss to measure it on rotated images",
            )
    ns.epochs = _integer("--epochs", args.epochs, *EPOCHS_RANGE)
    ns.mesh = meshes.parse(args.mesh) if args.mesh is not None else None
    distributed.settings()
    ns.batch_size = _integer("--batch-size", args.batch_size, *BATCH_RANGE)
    ns.seed = _integer("--seed", args.seed, *SEED_RANGE, help="a seed is an integer from 0 to 4294967295 (2**32 - 1)")
    ns.lr = _real("--lr", args.lr)
    if not (ns.lr > 0 and math.isfinite(ns.lr)):
        raise _fail(f"--lr must be a positive number, not {ns.lr}")
    ns.test_fraction = _real("--test-fraction", args.test_fraction)
    if not 0 < ns.test_fraction < 1:
        raise _fail(f"--test-fraction must be between 0 and 1, not {ns.test_fraction}")
    _training_tools(args, ns)
    out = Path(args.out) if args.out else Path("runs") / Path(args.file).stem
    if os.path.lexists(out) and not out.is_dir():
        raise _fail(f"--out {out} is a file, not a directory", help="--out names the run directory, which holds the checkpoints")
    _creatable("--out", out)
    if out.is_dir() and not os.access(out, os.W_OK | os.X_OK):
        raise _fail(f"cannot write in --out {out}: no permission")
    ns.out = out
    if args.metrics_out is not None:
        metrics = Path(args.metrics_out)
        if str(args.metrics_out) == "":
            raise _fail("--metrics-out is empty", help="--metrics-out names the JSON file to write, e.g. metrics.json")
        if metrics.is_dir():
            raise _fail(f"--metrics-out {args.metrics_out} is a directory", help="--metrics-out names the JSON file to write, e.g. metrics.json")
        if os.path.lexists(metrics) and not metrics.is_file():
            raise _fail(f"--metrics-out {metrics} is not a regular file", help="--metrics-out names the JSON file to write")
        if metrics.absolute() == out.absolute():
            raise _fail(f"--metrics-out and --out are the same path, {out}")
        _creatable("--metrics-out", metrics.parent)
    return ns


# -- progress -------------------------------------------------------------------


class Progress:
    """One line per epoch; on a terminal it updates in place during the epoch."""

    def __init__(self, epochs: int, steps: int, batch: int, stream: TextIO | None, label: str = "loss") -> None:
        self.epochs, self.steps, self.batch = epochs, steps, batch
        self.label = label  # what the loss is called: "loss", or the objective's name
        self.stream = stream
        self.live = bool(stream is not None and stream.isatty())
        self._last = 0.0

    def step(self, epoch: int, step: int, loss: float, started: float) -> None:
        now = time.perf_counter()
        if not self.live or (now - self._last < 0.1 and step < self.steps):
            return
        self._last = now
        rate = step * self.batch / max(now - started, 1e-9)
        filled = int(20 * step / self.steps)
        bar = "#" * filled + "." * (20 - filled)
        assert self.stream is not None
        self.stream.write(
            f"\repoch {epoch:>{len(str(self.epochs))}}/{self.epochs} [{bar}] {step}/{self.steps}"
            f"  {self.label} {loss:.4f}  {rate:,.0f} ex/s"
        )
        self.stream.flush()

    def epoch(self, epoch: int, row: dict[str, Any]) -> None:
        if self.stream is None:
            return
        acc = f"  acc {row['test_accuracy']:.4f}" if row.get("test_accuracy") is not None else ""
        if row.get("test_accuracy_rotated") is not None:
            acc += f"  rotated {row['test_accuracy_rotated']:.4f}"
        elif "test_loss_rotated" in row:
            acc += f"  rotated {self.label} {row['test_loss_rotated']:.4f}"
        val = ""
        if row.get("val_loss") is not None:
            val = f"  val {self.label} {row['val_loss']:.4f}"
            val += f"  val acc {row['val_accuracy']:.4f}" if row.get("val_accuracy") is not None else ""
        line = (
            f"epoch {epoch:>{len(str(self.epochs))}}/{self.epochs}  train {self.label} {row['train_loss']:.4f}{val}"
            f"  test {self.label} {row['test_loss']:.4f}{acc}  {row['examples_per_second']:,.0f} ex/s  {row['seconds']:.2f}s"
        )
        self.stream.write(("\r" + line.ljust(78) if self.live else line) + "\n")
        self.stream.flush()

    def note(self, text: str) -> None:
        if self.stream is not None:
            if self.live:
                self.stream.write("\n")
            self.stream.write(text + "\n")
            self.stream.flush()


# -- logs ---------------------------------------------------------------------------------

#: The columns of ``OUT/steps.csv``: one row per micro-batch step.
STEP_COLUMNS = ("epoch", "step", "global_step", "loss", "lr")


def _kept_rows(path: Path, last_epoch: int) -> list[list[str]]:
    """The rows of a CSV log (header first) whose epoch is at most ``last_epoch``; none if the file is absent."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except FileNotFoundError:
        return []
    return rows[:1] + [r for r in rows[1:] if r and r[0].isdigit() and int(r[0]) <= last_epoch]


def _write_rows(path: Path, rows: list[list[Any]]) -> None:
    """Replace a CSV log atomically (a temporary file, then a rename)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as f:
            csv.writer(f).writerows(rows)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class RunLog:
    """The logs of a run in its directory: ``steps.csv``, ``epochs.csv``, TensorBoard events, ``curves.png``.

    ``steps.csv`` holds each micro-batch step's loss and learning rate,
    ``epochs.csv`` each epoch's history row; both are appended once per
    epoch, after its checkpoint, so the step loop does no I/O.  On
    ``--resume`` the rows after the resumed epoch are dropped first and
    ``epochs.csv`` is rewritten from the checkpoint's history, so the files
    always match the history.  TensorBoard (``OUT/tensorboard``, by
    ``tensorboardX``) gets the same numbers on one axis, the global step:
    step ``g = (epoch - 1) * steps + step``, an epoch's metrics at its last
    step; a resumed run purges the events after the resumed epoch.
    """

    def __init__(self, out: Path, history: list[dict[str, Any]], steps: int, tensorboard: bool, write: bool = True) -> None:
        self.steps_csv, self.epochs_csv, self.plot = out / "steps.csv", out / "epochs.csv", out / "curves.png"
        self.steps = steps
        #: Whether this process writes the logs (one process of a multi-host run does).
        self.write = write
        self.writer: Any = None
        if not write:
            return
        self.columns: list[str] = list(history[0]) if history else []
        done = history[-1]["epoch"] if history else 0
        kept = _kept_rows(self.steps_csv, done)
        _write_rows(self.steps_csv, kept if kept[:1] == [list(STEP_COLUMNS)] else [list(STEP_COLUMNS)])
        _write_rows(self.epochs_csv, [self.columns] + [[r.get(c) for c in self.columns] for r in history] if history else [])
        if tensorboard:
            from tensorboardX import SummaryWriter

            # a deep queue: the epoch's events are handed over at once and written by tensorboardX's
            # own thread while the next epoch trains (a full queue would block on every event)
            self.writer = SummaryWriter(
                str(out / "tensorboard"), purge_step=done * steps + 1 if done else None, max_queue=1 << 16, flush_secs=10
            )

    def epoch(self, row: dict[str, Any], losses: list[float], rates: np.ndarray) -> None:
        """Append an epoch: its steps' ``losses`` and learning ``rates``, and its history ``row``."""
        if not self.write:
            return
        epoch = row["epoch"]
        first = (epoch - 1) * self.steps
        with open(self.steps_csv, "a", newline="", encoding="utf-8") as f:
            csv.writer(f).writerows(
                [epoch, i + 1, first + i + 1, repr(loss), repr(float(rate))] for i, (loss, rate) in enumerate(zip(losses, rates))
            )
        if not self.columns:
            self.columns = list(row)
            with open(self.epochs_csv, "a", newline="", encoding="utf-8") as f:
                csv.writer(f).writerow(self.columns)
        with open(self.epochs_csv, "a", newline="", encoding="utf-8") as f:
            csv.writer(f).writerow([row.get(c) for c in self.columns])
        if self.writer is not None:
            from tensorboardX.proto.summary_pb2 import Summary

            # one event per step holding both values, built directly: add_scalar's checks cost
            # ten times more per value than the event itself
            events = self.writer.file_writer
            for i, (loss, rate) in enumerate(zip(losses, rates)):
                values = [Summary.Value(tag="step/loss", simple_value=loss), Summary.Value(tag="step/lr", simple_value=float(rate))]
                events.add_summary(Summary(value=values), first + i + 1)
            for name, value in row.items():
                if name != "epoch" and isinstance(value, (int, float)):
                    self.writer.add_scalar(f"epoch/{name}", value, epoch * self.steps)

    def close(self, history: list[dict[str, Any]]) -> None:
        """Draw ``curves.png`` from the history and ``steps.csv``, and close the event file."""
        if not self.write:
            return
        if self.writer is not None:
            self.writer.close()
        if history:
            rows = _kept_rows(self.steps_csv, history[-1]["epoch"])[1:]
            plot_curves(history, [int(r[2]) for r in rows], [float(r[3]) for r in rows], self.plot)


def plot_curves(history: list[dict[str, Any]], steps: list[int], losses: list[float], path: Path) -> None:
    """The training curves as a PNG: the step loss, the epoch losses, and the accuracies if any.

    Drawn on a ``matplotlib.figure.Figure`` with the Agg canvas (no pyplot,
    no display); the losses of train, validation and test per epoch share
    an axis, as do their accuracies.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    epochs = [r["epoch"] for r in history]
    names = {"train_loss": "train", "val_loss": "validation", "test_loss": "test", "test_loss_rotated": "test, rotated"}
    accuracies = [k for k in ("val_accuracy", "test_accuracy", "test_accuracy_rotated") if history[0].get(k) is not None]
    panels = 3 if accuracies else 2
    fig = Figure(figsize=(4.2 * panels, 3.4), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, panels, 1)
    ax.plot(steps, losses, linewidth=0.8)
    ax.set(title="loss per step", xlabel="step", ylabel="training loss")
    ax = fig.add_subplot(1, panels, 2)
    for key, label in names.items():
        if key in history[0]:
            ax.plot(epochs, [r[key] for r in history], marker="o", markersize=3, label=label)
    ax.set(title="loss per epoch", xlabel="epoch", ylabel="loss")
    ax.legend()
    if accuracies:
        ax = fig.add_subplot(1, panels, 3)
        for key in accuracies:
            ax.plot(epochs, [r[key] for r in history], marker="o", markersize=3, label=names[key.replace("accuracy", "loss")])
        ax.set(title="accuracy per epoch", xlabel="epoch", ylabel="accuracy")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, format="png")


# -- the jitted functions -----------------------------------------------------------


def _loss_kind(loss: str, labels: bool) -> str:
    """The loss actually used: ``auto`` resolved by the targets' dtype."""
    if loss == "auto":
        return "xent" if labels else "mse"
    if loss == "xent" and not labels:
        raise _fail("--loss xent needs integer class labels in `y`, but the targets are floats", help="use --loss mse")
    return loss


def is_trivialization(diagram: Diagram) -> bool:
    """Whether ``diagram`` is ``E -> B ⊗ F`` on one bundle wire, starting with that bundle's ``triv``."""
    dom, cod = diagram.dom, diagram.cod
    if len(dom) != 1 or dom.obs[0].base != "bundle" or len(cod) != 2:
        return False
    while diagram.layers:
        box = diagram.layers[0].box
        if box.name == "triv" and box.kind in ("generator", "structural"):
            return box.dom == dom
        if box.body is None or box.kind == "inv":
            return False
        diagram = box.body
    return False


def is_flow(diagram: Diagram) -> bool:
    """Whether ``diagram`` is a flow: one real wire onto itself, every box an isomorphism."""
    dom = diagram.dom
    return len(dom) == 1 and dom.obs[0].base == "R" and diagram.cod == dom and first_not_iso(diagram) is None


def _likelihood_error(message: str, help: str, span: Span | None = None, notes: tuple[str, ...] = ()) -> CatnetError:
    return CatnetError("E0706", message, span, notes=notes, help=help)


def training_kind(diagram: Diagram, loss: str, entry: str) -> str | None:
    """``"nll"`` (a flow), ``"bundle"`` (a trivialization), or ``None`` (decided by the data), for ``--loss``.

    Under ``auto`` the entry decides.  A flow or trivialization asked for
    ``xent``/``mse`` is E0706 (it trains by likelihood, which a regression
    of its outputs would not be: a flow's output is noise, not a target);
    so is ``nll`` of a morphism that is not a flow (naming its first
    non-invertible box) and ``bundle`` of one that is not a trivialization.
    The error has no span unless it names a box: the caller places it at
    the entry.
    """
    flow, triv = is_flow(diagram), is_trivialization(diagram)
    signature = f"`{entry}` : {diagram.dom} -> {diagram.cod}"
    if loss == "auto":
        return "nll" if flow else "bundle" if triv else None
    if loss in ("xent", "mse"):
        if flow or triv:
            what, right = ("a flow", "nll") if flow else ("a trivialization", "bundle")
            objective = "its negative log-likelihood" if flow else "the bundle objective (base regression plus fiber likelihood)"
            raise _likelihood_error(
                f"`{entry}` is {what}, and {what} trains by likelihood, not by --loss {loss}",
                notes=(signature, "its outputs are latent coordinates, "
                       + ("Gaussian noise under the flow: their density is fitted, not targets" if flow
                          else "a base point and a fiber coordinate: the base is fitted to the data's base points "
                          "and the fiber by its density")),
                help=f"use --loss {right} (or leave --loss at auto), which minimizes {objective}",
            )
        return None
    if loss == "nll":
        if flow:
            return "nll"
        if triv:
            raise _likelihood_error(
                f"`{entry}` is a trivialization, which trains by the bundle objective, not by --loss nll",
                notes=(signature,),
                help="use --loss bundle (or leave --loss at auto)",
            )
        culprit = first_not_iso(diagram)
        if culprit is not None:
            raise _likelihood_error(
                f"--loss nll trains a flow by likelihood, but `{entry}` is not an isomorphism: `{culprit.name}` is not invertible",
                span=culprit.span,
                notes=(signature,),
                help="a flow is built from invertible generators only (`coupling`, `reverse`, `actnorm`, ...); "
                "to fit targets, use --loss mse or --loss xent",
            )
        raise _likelihood_error(
            f"--loss nll trains a flow, one real wire onto itself, but {signature} is not one",
            help="a flow maps X -> X on one real wire, e.g. `morphism flow : X -> X = coupling ; reverse ; coupling`",
        )
    assert loss == "bundle", loss
    if triv:
        return "bundle"
    raise _likelihood_error(
        f"--loss bundle trains a trivialization E -> B ⊗ F, but {signature} is not one",
        help="a trivialization takes one bundle wire and starts with `triv`, e.g. "
        "`morphism chart : E -> B @ F = triv(prior=\"circle\")`"
        + ("; a flow trains by --loss nll" if is_flow(diagram) else ""),
    )


def make_functions(graphdef: Any, eval_graphdef: Any, tx: Any, kind: str) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """The jitted training step and evaluation step over split state.

    ``train_step(params, rest, opt_state, inputs, target, index)`` gathers
    the batch ``index`` from the device-resident data, and returns the new
    state and the batch loss.  ``eval_step(params, rest, inputs, target,
    index, weight)`` returns the weighted loss sum and correct count.  With
    ``kind == "objective"`` the model is the objective: its output is the
    loss of each example, and ``target`` is ``None`` (the targets, if any,
    are among the inputs).  With ``"nll"`` the model is a flow and the loss
    its negative log-likelihood (no target); with ``"bundle"`` a
    trivialization, the target its base points.
    """
    import jax
    import jax.numpy as jnp
    import optax
    from flax import nnx

    def per_example(model: Any, xs: tuple[Any, ...], y: Any) -> tuple[Any, Any]:
        """The loss of each example (and its hit for accuracy, or ``None``)."""
        if kind == "nll":
            from .flows import nll

            return nll(model, xs[0]), None
        if kind == "bundle":
            from .bundles.objective import per_example as bundle_loss

            return bundle_loss(model, xs[0], y), None
        return losses(model(*xs), y)

    def losses(out: Any, y: Any) -> tuple[Any, Any]:
        out = out.astype(jnp.float32)  # the loss in float32 from bfloat16 outputs (a no-op in float32)
        if kind == "objective":
            return out, None
        if kind == "xent":
            if jnp.issubdtype(y.dtype, jnp.integer):
                per = optax.softmax_cross_entropy_with_integer_labels(out, y)
                hit = (jnp.argmax(out, axis=-1) == y).astype(jnp.float32)
            else:
                per = optax.softmax_cross_entropy(out, y)
                hit = jnp.zeros(per.shape, jnp.float32)
        else:
            target = jax.nn.one_hot(y, out.shape[-1]) if jnp.issubdtype(y.dtype, jnp.integer) else y
            per = jnp.square(out - target)
            hit = (jnp.argmax(out, axis=-1) == y).astype(jnp.float32) if jnp.issubdtype(y.dtype, jnp.integer) else None
        # one loss per example: mean over every axis but the batch
        per = per.reshape(per.shape[0], -1).mean(axis=1)
        if hit is not None:
            hit = hit.reshape(hit.shape[0], -1).mean(axis=1)
        return per, hit

    def batch_of(inputs: Any, target: Any, index: Any) -> tuple[tuple[Any, ...], Any]:
        return tuple(x[index] for x in inputs), (target[index] if target is not None else None)

    def loss_fn(params: Any, rest: Any, xs: tuple[Any, ...], y: Any) -> tuple[Any, Any]:
        # copy: fresh variables at this trace level, so the dropout stream's
        # counter may advance inside the gradient's trace
        model = nnx.merge(graphdef, params, rest, copy=True)
        per, _ = per_example(model, xs, y)
        _, _, rest = nnx.split(model, nnx.Param, ...)
        return per.mean(), rest

    @jax.jit
    def train_step(params: Any, rest: Any, opt_state: Any, inputs: Any, target: Any, index: Any) -> Any:
        xs, y = batch_of(inputs, target, index)
        (loss, rest), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, rest, xs, y)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), rest, opt_state, loss

    @jax.jit
    def eval_step(params: Any, rest: Any, inputs: Any, target: Any, index: Any, weight: Any) -> Any:
        # the evaluation graph: dropout off, noise at its mean, batch statistics from the running averages
        model = nnx.merge(eval_graphdef, params, rest)
        xs, y = batch_of(inputs, target, index)
        per, hit = per_example(model, xs, y)
        correct = (hit * weight).sum() if hit is not None else jnp.float32(0)
        return (per * weight).sum(), correct

    return train_step, eval_step


def learning_rate(cfg: Config, updates_per_epoch: int) -> Any:
    """The learning rate of a run: ``cfg.lr``, or an optax schedule of the optimizer update count.

    The warmup rises linearly from 0 over ``cfg.warmup`` updates.  Then
    ``constant`` holds ``cfg.lr``; ``cosine`` is
    ``optax.warmup_cosine_decay_schedule``, reaching 0 after the last update
    of the last epoch; ``step`` multiplies the rate by ``cfg.decay_factor``
    every ``cfg.decay_every`` epochs of updates counted after the warmup
    (``optax.exponential_decay``, staircase).  A constant rate without
    warmup is the number itself, so the optimizer state is that of a plain
    optimizer (and a checkpoint from before schedules existed restores).
    """
    import optax

    if cfg.schedule == "cosine":
        return optax.warmup_cosine_decay_schedule(0.0, cfg.lr, cfg.warmup, cfg.epochs * updates_per_epoch, end_value=0.0)
    if cfg.schedule == "step":
        assert cfg.decay_every is not None  # options() requires it with --schedule step
        after: Any = optax.exponential_decay(cfg.lr, cfg.decay_every * updates_per_epoch, cfg.decay_factor, staircase=True)
    elif cfg.warmup == 0:
        return cfg.lr
    else:
        after = optax.constant_schedule(cfg.lr)
    if cfg.warmup == 0:
        return after
    return optax.join_schedules([optax.linear_schedule(0.0, cfg.lr, cfg.warmup), after], [cfg.warmup])


def learning_rates(rate: Any, first: int, count: int) -> np.ndarray:
    """The learning rates of optimizer updates ``first .. first + count - 1`` (float32, 0-based), for the logs.

    Update ``u`` uses ``rate(u)``: optax evaluates a schedule at the count
    of updates made before it.
    """
    if not callable(rate):
        return np.full(count, rate, np.float32)
    return np.asarray(rate(np.arange(first, first + count)), np.float32).reshape(count)


def optimizer(cfg: Config, updates_per_epoch: int) -> Any:
    """The optax optimizer of a run: its rate (:func:`learning_rate`), weight decay, clipping and accumulation.

    ``adamw`` takes ``cfg.decay`` as its own decoupled decay; ``sgd`` and
    ``adam`` with a decay chain ``optax.add_decayed_weights`` before them
    (for SGD that is the same decoupled decay; for Adam it is an L2 term
    that passes through Adam's scaling).  ``--clip-norm`` clips the
    (accumulated) gradient first; ``--accumulate K`` wraps everything in
    ``optax.MultiSteps``, which averages K micro-batch gradients into one
    update.  Options at their defaults add nothing, so the state of an
    older run's optimizer restores.
    """
    import optax

    rate = learning_rate(cfg, updates_per_epoch)
    if cfg.optimizer == "adamw":
        tx = optax.adamw(rate, weight_decay=cfg.decay)
    else:
        tx = {"adam": optax.adam, "sgd": optax.sgd}[cfg.optimizer](rate)
        if cfg.decay > 0:
            tx = optax.chain(optax.add_decayed_weights(cfg.decay), tx)
    if cfg.clip_norm is not None:
        tx = optax.chain(optax.clip_by_global_norm(cfg.clip_norm), tx)
    if cfg.accumulate > 1:
        tx = optax.MultiSteps(tx, every_k_schedule=cfg.accumulate)
    return tx


# -- checkpoints --------------------------------------------------------------------


def load_params(out: str | Path, epoch: int | None = None) -> dict[str, np.ndarray]:
    """The parameters saved in a run directory, flat by path (``encoder.dense.kernel``).

    The step read (``epoch``, or the newest complete one) is verified
    against its manifest first: a corrupt checkpoint is E0705.
    """
    directory = Path(out) / "checkpoints"
    step = ckpt.verified_step(directory, epoch)
    params = ckpt.restore_params(directory, step)
    flat: dict[str, np.ndarray] = {}

    def walk(prefix: str, node: Any) -> None:
        if isinstance(node, dict):
            for k in sorted(node, key=str):
                walk(f"{prefix}.{k}" if prefix else str(k), node[k])
        else:
            flat[prefix.removesuffix(".value")] = np.asarray(node)

    walk("", params)
    return flat


def _saved_value(tree: Any, path: tuple[Any, ...]) -> Any:
    """The saved array at a variable's module path in a restored tree, or ``None``."""
    node = tree
    for key in path + ("value",):
        if not isinstance(node, dict) or str(key) not in node:
            return None
        node = node[str(key)]
    return node


def _variable_paths(tree: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """The module paths of the variables in a restored tree."""
    if not isinstance(tree, dict):
        return []
    if "value" in tree and not isinstance(tree["value"], dict):
        return [prefix]
    return [p for k in sorted(tree, key=str) for p in _variable_paths(tree[k], prefix + (str(k),))]


def restore(model: Any, out: str | Path, epoch: int | None = None) -> Any:
    """Give a compiled model the parameters and batch statistics a run saved; returns ``model``.

    ``model`` is the morphism the run trained (its entry, or its
    ``--objective``) compiled with ``catnet.compile``; the step read
    (``epoch``, or the newest complete one) is verified first (E0705 if
    corrupt).  Batch statistics are restored with the parameters, so
    ``model.eval()`` afterwards computes what the run's evaluation did.  The
    model keeps its own random stream.  A checkpoint whose variables do not
    fit the model (other names or shapes) is E0705.
    """
    import jax.numpy as jnp
    from flax import nnx

    if not isinstance(model, nnx.Module):
        raise bad_argument("catnet.train.restore", "a model from `catnet.compile`", model)
    directory = Path(out) / "checkpoints"
    step = ckpt.verified_step(directory, epoch)
    saved_params, saved_rest = ckpt.restore_state(directory, step)
    _, params, _, stats = nnx.split(model, nnx.Param, nnx.RngState, ...)
    where = directory / str(step)
    problems: list[str] = []
    updates = []
    for state, saved in ((params, saved_params), (stats, saved_rest)):
        for path, variable in nnx.to_flat_state(state):
            value = _saved_value(saved, path)
            name = ".".join(map(str, path))
            shape = tuple(variable.get_value().shape)
            if value is None:
                problems.append(f"it has no `{name}`")
            elif tuple(value.shape) != shape:
                problems.append(f"`{name}` has shape {tuple(value.shape)} there, {shape} in the model")
            else:
                updates.append((path, variable.replace(jnp.asarray(value, variable.get_value().dtype))))
    known = {tuple(map(str, path)) for path, _ in nnx.to_flat_state(params)}
    problems += [f"it has `{'.'.join(p)}`, which the model does not" for p in _variable_paths(saved_params) if p not in known]
    if problems:
        raise CatnetError(
            "E0705",
            f"the checkpoint in {where} does not fit this model: {problems[0]}",
            notes=tuple(problems[1:8]),
            help="compile the morphism the run trained: its entry, or its --objective",
        )
    nnx.update(model, nnx.from_flat_state(updates))
    return model


# -- the run ------------------------------------------------------------------------------


def _file_hash(path: str, what: str) -> str:
    """The sha256 of a file's bytes; E0001 if it cannot be read."""
    try:
        return ckpt.file_sha256(path)
    except OSError as e:
        raise CatnetError("E0001", f"cannot read {what} {path}: {e.strerror or e}")


def _write_json(path: str | Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` as JSON atomically: a temporary file in the same folder, then a rename."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(json.dumps(payload, indent=2, sort_keys=True) + "\n")
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _writable_folder(option: str, folder: Path) -> None:
    """Make ``folder`` and prove a file can be created in it (a probe, removed at once); E0703 otherwise."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:
        raise _fail(f"cannot write {option} in {folder}: {e.strerror or e}")


def _is_scalar(cod: Ty) -> bool:
    """Whether ``cod`` is ``R[]``: one real number per example."""
    return len(cod) == 1 and cod.obs[0].base == "R" and cod.obs[0].shape == ()


def objective_diagram(module: Module, name: str) -> Diagram:
    """The checked objective ``name``: a morphism of the file ending in ``R[]``.

    E0210 if the file has no morphism ``name``, placed at the file's start
    (the help names those that end in ``R[]``); E0702 at its definition if
    it ends in anything else.
    """
    candidates = [d.name for d in module.definitions.values() if d.body is not None and _is_scalar(d.cod)]
    try:
        definition = module.lookup(name)
    except CatnetError as e:
        if e.code != "E0210":
            raise
        hint = suggest(name, candidates)
        e.span = Span(module.path, 1, 1, 1, 1)
        e.help = (
            f"did you mean `{hint}`?" if hint
            else f"morphisms of the file that end in R[]: {', '.join(candidates)}" if candidates
            else "no morphism of the file ends in R[]: write one, e.g. `morphism loss(x : X, y : Z[]) -> R[] { return cross_entropy(net(x), y) }`"
        )
        raise
    diagram = module.diagram(name)
    if not _is_scalar(diagram.cod):
        raise module.locate(CatnetError(
            "E0702",
            f"the objective `{name}` returns {diagram.cod}, but an objective returns R[]: one number per example",
            definition.span,
            notes=(f"`{name}` : {diagram.dom} -> {diagram.cod}",),
            help="end it in a loss, e.g. `cross_entropy(logits, y)` or `mse(prediction, target)`; training minimizes its batch mean",
        ))
    return diagram


@dataclass
class Run:
    """Everything ``fit`` needs, prepared and checked before any step runs."""

    config: Config
    diagram: Diagram
    train: datalib.Dataset
    test: datalib.Dataset
    out: Path
    resume: ckpt.Resume | None
    metrics_out: str | None
    progress: TextIO | None
    started: float = field(default_factory=time.perf_counter)
    #: ``"nll"`` (a flow) or ``"bundle"`` (a trivialization); ``None``: an objective or a loss the data decides.
    likelihood: str | None = None
    #: The test set with each image turned by a random multiple of 90° (``--rotate-test``), or ``None``.
    rotated: datalib.Dataset | None = None
    #: The validation set carved out of the training part (``--validation-fraction``), or ``None``.
    validation: datalib.Dataset | None = None
    #: Whether to write TensorBoard events besides the CSV logs.
    tensorboard: bool = True


def prepare(args: argparse.Namespace) -> Run:
    """Check the options, the file, the data, the memory and the run directory; no JAX yet.

    Writes only once every check has passed: the run directory, the folder
    of ``--metrics-out``, and (on ``--resume``) the removal of an incomplete
    last save.
    """
    import catnet

    started = time.perf_counter()
    opts = options(args)
    module = catnet.load(args.file, root=args.root)
    objective = args.objective
    entry = objective or args.entry or module.entry_name()
    # an objective's own errors are located by `objective_diagram`
    diagram = objective_diagram(module, objective) if objective is not None else None
    try:
        if diagram is None:
            diagram = module.diagram(entry)
        require_lowerable(diagram, entry)
        train, test, likelihood = load_datasets(diagram, entry, objective, args.data, args.loss, opts.seed, opts.test_fraction)
        rotated = _rotated_test(test, diagram, entry, opts.seed) if args.rotate_test else None
        validation = None
        if opts.validation_fraction > 0:
            train, validation = datalib.validation_split(train, opts.validation_fraction)
        if not args.skip_memory_check:
            # parameters, optimizer state and one batch's activations, before JAX allocates any
            require_fits(diagram, batch=min(opts.batch_size, len(train)), training=True, entry=entry, span=module.lookup(entry).span)
    except CatnetError as e:
        # Data that does not fit is reported at the morphism it must fit.
        if e.code == "E0701":
            e.notes = e.notes + (f"data: {args.data}",)
        raise module.locate(e, entry) from None
    _require_updates(opts, len(train))
    if opts.mesh is not None:
        # the devices are JAX's to count (after joining the other processes): a mesh
        # that does not fit them is refused before the run directory is written
        distributed.initialize()
        meshes.build(opts.mesh)
        meshes.require_batch(opts.mesh, updates_per_epoch(len(train), opts.batch_size, opts.accumulate)[0])
    named = datalib.is_named(args.data)
    config = Config(
        file=args.file,
        source_sha256=_file_hash(args.file, "file"),
        entry=args.entry,
        data=args.data if named else os.path.abspath(args.data),
        data_sha256=None if named else _file_hash(args.data, "data file"),
        batch_size=opts.batch_size,
        lr=opts.lr,
        optimizer=args.optimizer,
        loss=args.loss,
        seed=opts.seed,
        test_fraction=opts.test_fraction,
        objective=objective,
        rotate_test=bool(args.rotate_test),
        schedule=args.schedule,
        warmup=opts.warmup,
        decay_every=opts.decay_every if args.schedule == "step" else None,
        decay_factor=opts.decay_factor,
        weight_decay=opts.weight_decay,
        clip_norm=opts.clip_norm,
        accumulate=opts.accumulate,
        validation_fraction=opts.validation_fraction,
        epochs=opts.epochs,
        precision=args.precision,
        mesh=str(opts.mesh) if opts.mesh is not None else None,
        early_stopping=opts.early_stopping,
    )
    out: Path = opts.out
    found = ckpt.steps(out / "checkpoints")
    if found and not args.resume:
        raise _fail(
            f"{out} already holds a run (checkpoint of epoch {found[-1]})",
            help="pass --resume to continue it, or --out a new directory",
        )
    resume = ckpt.resumable(out / "checkpoints", config.key()) if args.resume else None
    _writable_folder("--out", out)
    if args.metrics_out is not None:
        _writable_folder("--metrics-out", Path(args.metrics_out).absolute().parent)
    tensorboard = not args.no_tensorboard
    if tensorboard and importlib.util.find_spec("tensorboardX") is None:
        raise _fail("TensorBoard logging needs the package tensorboardX, which is not installed",
                    help="pip install 'tensorboardX>=2.6,<3', or pass --no-tensorboard (the CSV logs are written either way)")
    return Run(
        config, diagram, train, test, out, resume, args.metrics_out, None if args.quiet else sys.stderr, started, likelihood, rotated,
        validation, tensorboard,
    )


def updates_per_epoch(n_train: int, batch_size: int, accumulate: int) -> tuple[int, int]:
    """The batch size used and the micro-batches per epoch: whole batches, a whole number of updates.

    A batch larger than the training set is the whole set; the micro-batches
    left over from the last whole update of ``accumulate`` are dropped, so
    an epoch is always ``steps // accumulate`` updates and the data order
    is that of one batch of ``accumulate * batch`` examples.
    """
    batch = min(batch_size, n_train)
    return batch, n_train // batch // accumulate * accumulate


def _require_updates(opts: argparse.Namespace, n_train: int) -> None:
    """E0703 unless an epoch holds at least one update and the warmup ends before the run does."""
    batch, steps = updates_per_epoch(n_train, opts.batch_size, opts.accumulate)
    if steps == 0:
        raise _fail(
            f"--accumulate {opts.accumulate} needs {opts.accumulate} batches per epoch, but the {n_train} training examples "
            f"make {n_train // batch} of --batch-size {batch}",
            help="lower --accumulate or --batch-size",
        )
    updates = opts.epochs * steps // opts.accumulate
    if opts.warmup >= updates:
        raise _fail(
            f"--warmup {opts.warmup} does not end before the run does: it makes {updates} optimizer updates "
            f"({opts.epochs} epochs of {steps // opts.accumulate})",
            help="--warmup counts optimizer updates; choose fewer than the run makes",
        )


def load_datasets(
    diagram: Diagram, entry: str, objective: str | None, data: str, loss: str, seed: int, test_fraction: float
) -> tuple[datalib.Dataset, datalib.Dataset, str | None]:
    """The training and test sets of a run, and how it trains by likelihood (``"nll"``, ``"bundle"``) or ``None``.

    ``diagram`` is the morphism trained (``entry``, or the objective named
    ``objective``); ``data``, ``loss``, ``seed`` and ``test_fraction`` are
    the run's options.  The same settings give the same split, so a run's
    test set can be rebuilt from its recorded settings.  Errors (E0701,
    E0702, E0706) are not yet located: the caller locates them at the entry.
    """
    likelihood: str | None = None
    if objective is not None:
        dataset = datalib.load_objective(data, diagram.dom, objective, vocab_bounds(diagram))
    else:
        likelihood = training_kind(diagram, loss, entry)
        kind = {"nll": "flow", "bundle": "bundle"}.get(likelihood or "", "supervised")
        dataset = datalib.load(data, diagram.dom, diagram.cod, vocab_bounds(diagram), kind=kind, seed=seed, test_fraction=test_fraction)
        if likelihood is None:
            _loss_kind(loss, dataset.labels)
    train, test = datalib.split(dataset, test_fraction)
    return train, test, likelihood


def evaluate(
    eval_step: Callable[..., Any], params: Any, rest: Any, inputs: tuple[Any, ...], target: Any, accuracy: bool, batch: int = 1024
) -> tuple[float, float | None]:
    """The mean loss (and accuracy, if ``accuracy``) of a data set, by ``eval_step`` of :func:`make_functions`.

    The examples run in chunks of ``batch`` (the last one padded and
    weighted out), their sums added on the host in order: the numbers
    ``catnet train`` reports for its test set each epoch.
    """
    import jax.numpy as jnp

    n = int(inputs[0].shape[0])
    size = min(n, batch)
    total, correct = 0.0, 0.0
    for c in range(-(-n // size)):
        idx = np.arange(c * size, (c + 1) * size)
        weight = (idx < n).astype(np.float32)
        loss_sum, hits = eval_step(params, rest, inputs, target, jnp.asarray(np.minimum(idx, n - 1)), jnp.asarray(weight))
        total += float(loss_sum)
        correct += float(hits)
    return total / n, (correct / n if accuracy else None)


def _rotated_test(test: datalib.Dataset, diagram: Diagram, entry: str, seed: int) -> datalib.Dataset:
    """The test set for ``--rotate-test``: each image turned by a random multiple of 90° (E0703 unless images)."""
    if datalib.grid_size(test) is None:
        dom = diagram.dom
        takes = f"{dom} = {dom.structure()}" if str(dom) != dom.structure() else str(dom)
        raise _fail(
            f"--rotate-test turns square images R[h, h, c], but `{entry}` takes {takes}",
            notes=(f"`{entry}` : {dom} -> {diagram.cod}",),
            help="train a morphism whose one input is a square grid of channels, e.g. `object Image = R[8, 8, 1]`; "
            "the digits fit R[8, 8, 1]",
        )
    return datalib.rotated(test, seed)[0]


#: Metrics whose names an objective's values never take (``train_<name>``, ``test_<name>``).
_METRIC_NAMES = frozenset(
    {"train_loss", "test_loss", "test_accuracy", "train_examples", "test_examples", "test_loss_rotated", "test_accuracy_rotated"}
)


def _objective_values(objective: str | None, row: dict[str, Any]) -> dict[str, Any]:
    """The loss values of ``row`` under the objective's name (``test_neg_elbo``); none without one.

    A key that would replace another metric (an objective called
    ``accuracy`` or ``examples``) is left out: ``train_loss``/``test_loss``
    always hold the same values.
    """
    if objective is None or not row:
        return {}
    named = {f"train_{objective}": row["train_loss"], f"test_{objective}": row["test_loss"]}
    return {k: v for k, v in named.items() if k not in _METRIC_NAMES}


def best_epoch(history: list[dict[str, Any]]) -> int | None:
    """The epoch of the lowest validation loss (the earliest of equals); ``None`` without a validation set."""
    scored = [r for r in history if r.get("val_loss") is not None]
    return min(scored, key=lambda r: (r["val_loss"], r["epoch"]))["epoch"] if scored else None


def stopped_early(history: list[dict[str, Any]], patience: int | None) -> bool:
    """Whether ``patience`` epochs have passed since the best validation loss: ``--early-stopping`` stops."""
    best = best_epoch(history)
    return patience is not None and best is not None and history[-1]["epoch"] - best >= patience


def fit(run: Run) -> dict[str, Any]:
    """Train, evaluate, checkpoint and log every epoch; the final metrics."""
    distributed.initialize()  # before JAX's first call fixes the devices
    import jax
    import jax.numpy as jnp
    from flax import nnx

    from .lower import lower

    # Every process of a multi-host run trains and saves its shards of each
    # checkpoint; process 0 alone prints, logs and writes the metrics.
    primary = jax.process_index() == 0
    if not primary:
        run.progress = None
        run.metrics_out = None
    cfg = run.config
    kind = "objective" if cfg.objective is not None else run.likelihood or _loss_kind(cfg.loss, run.train.labels)
    model = lower(run.diagram, rngs=nnx.Rngs(cfg.seed), dtype=PRECISIONS[cfg.precision])
    if kind == "bundle":
        from .bundles import charts

        # The chart centres are state (not parameters): fitted once here, they
        # travel in `rest` and so in every checkpoint.
        assert run.train.target is not None
        charts.fit(model, run.train.target, cfg.seed, points=run.train.inputs[0])
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    model.eval()
    eval_graphdef, _, _ = nnx.split(model, nnx.Param, ...)
    model.train()

    n_train = len(run.train)
    batch, steps = updates_per_epoch(n_train, cfg.batch_size, cfg.accumulate)
    updates = steps // cfg.accumulate
    tx = optimizer(cfg, updates)
    rate = learning_rate(cfg, updates)
    opt_state = tx.init(params)
    train_step, eval_step = make_functions(graphdef, eval_graphdef, tx, kind)
    plan = None
    if cfg.mesh is not None:
        from .parallel import build, parse, placement

        plan = placement.plan(build(parse(cfg.mesh)), model, params, rest, opt_state)
        params, rest, opt_state = placement.put((params, rest, opt_state), plan.state())
        train_step, eval_step = placement.train_step(train_step, plan), placement.eval_step(eval_step, plan)

    def device(x: Any) -> Any:
        """An array onto the devices: replicated over the mesh, or onto the one device."""
        return jnp.asarray(x) if plan is None else placement.put(x, plan.replicated)

    train_in = tuple(device(x) for x in run.train.inputs)
    train_y = device(run.train.target) if run.train.target is not None else None
    test_in = tuple(device(x) for x in run.test.inputs)
    test_y = device(run.test.target) if run.test.target is not None else None
    turned = run.rotated
    turned_in = tuple(device(x) for x in turned.inputs) if turned is not None else None
    turned_y = device(turned.target) if turned is not None and turned.target is not None else None
    held = run.validation
    val_in = tuple(device(x) for x in held.inputs) if held is not None else None
    val_y = device(held.target) if held is not None and held.target is not None else None
    n_test = len(run.test)

    progress = Progress(cfg.epochs, steps, batch, run.progress, cfg.objective or ("nll" if kind == "nll" else "loss"))
    for text in run.resume.notes if run.resume else ():
        progress.note(text)
    checkpoints = ckpt.Orbax(run.out, keep_best=held is not None)
    history: list[dict[str, Any]] = []
    first = 1
    if run.resume is not None and run.resume.step is not None:
        step = run.resume.step
        try:
            state, meta = checkpoints.restore(step, {"params": params, "rest": rest, "opt_state": opt_state})
            # prepare() compared the manifest's settings; orbax's own copy must agree too
            saved = meta.get("config")
            if saved != cfg.key():
                raise CatnetError(
                    "E0705",
                    f"the checkpoint of epoch {step} in {run.out} was made with other settings",
                    notes=tuple(ckpt.settings_differences(saved if isinstance(saved, dict) else {}, cfg.key())),
                    help="resume with the same file, data and options, or train into a new --out",
                )
        except CatnetError:
            checkpoints.close()
            raise
        params, rest, opt_state = state["params"], state["rest"], state["opt_state"]
        history = list(meta["history"])
        first = step + 1
        progress.note(f"resuming from epoch {step} in {run.out} (checkpoint verified)")
    elif run.resume is not None:
        progress.note(f"no checkpoint in {run.out} yet: starting from the first epoch")
    log = RunLog(run.out, history, steps, run.tensorboard, write=primary)

    has_accuracy = kind == "xent" or run.test.labels

    def scored(inputs: tuple[Any, ...] = test_in, target: Any = test_y) -> tuple[float, float | None]:
        return evaluate(eval_step, params, rest, inputs, target, has_accuracy)

    # Labels outside 0..K-1 make `cross_entropy` nan; the built-in loss has its labels checked
    # with the data, an objective's reach its `cross_entropy` through the file.
    labels = kind == "objective" and any(b.name == "cross_entropy" for b in run.diagram.all_boxes())

    def check(value: float, epoch: int, step: int) -> float:
        if not math.isfinite(value):
            raise CatnetError(
                "E0704",
                f"the training loss became {value} at epoch {epoch}, step {step} of {steps}",
                help=f"lower the learning rate (now --lr {cfg.lr}) or scale the data down (its values are finite)"
                + ("; check that the labels `cross_entropy` reads are classes 0..K-1 of its logits" if labels else "")
                + (f"; the checkpoint of epoch {epoch - 1} is intact" if epoch > 1 else ""),
            )
        return value

    try:
        for epoch in range(first, cfg.epochs + 1):
            if stopped_early(history, cfg.early_stopping):
                break
            t0 = time.perf_counter()
            order = np.random.default_rng([cfg.seed, epoch]).permutation(n_train)[: steps * batch]
            rows = order.reshape(steps, batch).astype(np.int32)
            order_dev = jnp.asarray(rows) if plan is None else None
            pending: Any = None
            losses: list[float] = []
            for step in range(1, steps + 1):
                index = order_dev[step - 1] if plan is None else plan.index(rows[step - 1])
                params, rest, opt_state, loss = train_step(params, rest, opt_state, train_in, train_y, index)
                if pending is not None:
                    # read the previous step's loss: the host waits one step behind the device
                    losses.append(check(float(pending), epoch, step - 1))
                    progress.step(epoch, step - 1, losses[-1], t0)
                pending = loss
            losses.append(check(float(pending), epoch, steps))
            progress.step(epoch, steps, losses[-1], t0)
            train_seconds = time.perf_counter() - t0
            row: dict[str, Any] = {"epoch": epoch, "train_loss": sum(losses) / steps}
            if val_in is not None:
                row["val_loss"], row["val_accuracy"] = scored(val_in, val_y)
            row["test_loss"], row["test_accuracy"] = scored()
            row["seconds"] = time.perf_counter() - t0
            row["examples_per_second"] = steps * batch / max(train_seconds, 1e-9)
            if turned_in is not None:
                row["test_loss_rotated"], row["test_accuracy_rotated"] = scored(turned_in, turned_y)
            row.update(_objective_values(cfg.objective, row))
            history.append(row)
            best = best_epoch(history)
            checkpoints.save(
                epoch,
                {"params": params, "rest": rest, "opt_state": opt_state},
                {"config": cfg.key(), "epoch": epoch, "history": history},
                cfg.key(),
                val_loss=row.get("val_loss"),
                best_epoch=best,
            )
            # the rate of each micro-batch step is that of the update it is part of
            log.epoch(row, losses, np.repeat(learning_rates(rate, (epoch - 1) * updates, updates), cfg.accumulate))
            progress.epoch(epoch, row)
    except KeyboardInterrupt:
        try:
            checkpoints.close()
        except Exception:  # closing after an interrupted save may fail; the interrupt is what matters here
            pass
        log.close(history)
        done = ckpt.newest_complete(checkpoints.dir)
        progress.note(
            f"interrupted; the last checkpoint is epoch {done} in {run.out}" if done else "interrupted before the first checkpoint"
        )
        raise
    checkpoints.close()
    log.close(history)

    best = best_epoch(history)
    # with a validation set, the test set is scored by the best epoch's weights (its checkpoint is kept)
    final = next((r for r in history if r["epoch"] == best), history[-1]) if history else {}
    stopped = stopped_early(history, cfg.early_stopping) and history[-1]["epoch"] < cfg.epochs
    metrics = {
        "file": cfg.file,
        "entry": cfg.entry,
        "objective": cfg.objective,
        "data": cfg.data,
        "loss": kind,
        "epochs": cfg.epochs,
        "seed": cfg.seed,
        "params": int(sum(x.size for x in jax.tree.leaves(params))),
        "train_examples": n_train,
        "test_examples": n_test,
        "test_accuracy": final.get("test_accuracy"),
        "test_loss": final.get("test_loss"),
        "train_loss": final.get("train_loss"),
        "rotate_test": cfg.rotate_test,
        "precision": cfg.precision,
        "mesh": cfg.mesh,
        "seconds": time.perf_counter() - run.started,
        "checkpoints": str(checkpoints.dir),
        "history": history,
    }
    if held is not None:
        metrics.update(
            validation_examples=len(held),
            best_epoch=best,
            val_loss=final.get("val_loss"),
            val_accuracy=final.get("val_accuracy"),
            stopped_early=stopped,
        )
    metrics.update(_objective_values(cfg.objective, final))
    if cfg.rotate_test:
        metrics["test_loss_rotated"] = final.get("test_loss_rotated")
        metrics["test_accuracy_rotated"] = final.get("test_accuracy_rotated")
    if kind in ("nll", "bundle") and history:
        if best is not None and best != history[-1]["epoch"]:
            kept = ckpt.Orbax(run.out, keep_best=True)
            try:
                restored, _ = kept.restore(best, {"params": params, "rest": rest, "opt_state": opt_state})
            finally:
                kept.close()
            params, rest = restored["params"], restored["rest"]
        metrics.update(_likelihood_metrics(run, kind, nnx.merge(eval_graphdef, params, rest), final["test_loss"]))
    return metrics


def gaussian_nll(train: np.ndarray, test: np.ndarray) -> float:
    """The mean test NLL (nats per example) of one full-covariance Gaussian fitted to ``train`` (NumPy).

    The baseline a flow must beat: maximum likelihood mean and covariance of
    the flattened training inputs, with a ridge of 1e-6 of the mean variance
    so that a constant coordinate does not make the covariance singular.
    """
    x = np.asarray(train, np.float64).reshape(len(train), -1)
    t = np.asarray(test, np.float64).reshape(len(test), -1)
    d = x.shape[1]
    mean = x.mean(axis=0)
    cov = np.atleast_2d(np.cov(x, rowvar=False, bias=True))
    cov = cov + np.eye(d) * 1e-6 * max(float(np.trace(cov)) / d, 1e-12)
    _, logdet = np.linalg.slogdet(cov)
    diff = t - mean
    maha = np.sum(diff * np.linalg.solve(cov, diff.T).T, axis=1)
    return float(np.mean(0.5 * (maha + logdet + d * math.log(2 * math.pi))))


def _likelihood_metrics(run: Run, kind: str, model: Any, test_loss: float) -> dict[str, Any]:
    """The metrics of a flow (test NLL, bits per dimension, the Gaussian baseline) or a trivialization.

    A trivialization trained on a bundle data set is sampled over held-out
    base points (``catnet.bundles.metrics.evaluate``): ``projection_error``
    and, where the true fiber is known, ``fiber_coverage``.
    """
    from .flows import bits_per_dim, dimension

    if kind == "nll":
        return {
            "test_nll": test_loss,
            "test_bits_per_dim": bits_per_dim(test_loss, dimension(model), run.test.levels),
            "gaussian_nll": gaussian_nll(run.train.inputs[0], run.test.inputs[0]),
        }
    data = datalib.bundle_data(run.config.data)
    if data is None:
        return {}
    from .bundles.metrics import evaluate

    assert run.test.target is not None
    return dict(evaluate(model, data, run.test.target, run.config.seed))


def _deliver_metrics(run: Run, metrics: dict[str, Any]) -> None:
    """Write ``--metrics-out`` atomically; if that fails now, keep the metrics and say where (E0703)."""
    assert run.metrics_out is not None
    try:
        _write_json(run.metrics_out, metrics)
        return
    except OSError as e:
        reason = e.strerror or str(e)
    kept = run.out / "metrics.json"
    try:
        _write_json(kept, metrics)
        where = f"the metrics are kept in {kept}"
    except OSError:
        print(json.dumps(metrics, indent=2, sort_keys=True))
        where = "the metrics are printed on standard output"
    raise _fail(f"cannot write --metrics-out {run.metrics_out}: {reason}", help=where)


def result_lines(metrics: dict[str, Any]) -> list[str]:
    """What ``catnet train`` (and ``catnet eval``) say about a run's final metrics, as lines.

    A flow's test NLL beside the Gaussian baseline, a trivialization's
    projection error and fiber coverage; the last item is the start of the
    closing line (test accuracy, on rotated images), which the caller ends.
    """
    lines = []
    if "test_nll" in metrics:
        lines.append(
            f"test NLL {metrics['test_nll']:.4f} nats ({metrics['test_bits_per_dim']:.4f} bits/dim); "
            f"one Gaussian: {metrics['gaussian_nll']:.4f} nats"
        )
    if "projection_error" in metrics:
        coverage = metrics.get("fiber_coverage")
        lines.append(
            f"projection error {metrics['projection_error']:.4f}"
            + (f", fiber coverage {coverage:.4f}" if coverage is not None else "")
            + " (samples over held-out base points)"
        )
    acc = metrics["test_accuracy"]
    shown = f"test accuracy {acc:.4f}, " if acc is not None else ""
    if metrics.get("test_accuracy_rotated") is not None:
        shown += f"on rotated images {metrics['test_accuracy_rotated']:.4f}, "
    elif metrics.get("test_loss_rotated") is not None:
        shown += f"test {metrics.get('objective') or 'loss'} on rotated images {metrics['test_loss_rotated']:.4f}, "
    return [*lines, shown]


def restore_run(model: Any, out: str | Path, epoch: int | None, *, file: str, entry: str, other_file: bool,
                trained: str | None, verb: str) -> Any:
    """:func:`restore`, with an E0705 that says why when the run was trained from another file or morphism.

    ``other_file``: the run's recorded ``.cat`` contents differ from
    ``file``'s; ``trained``: the morphism the run trained, where its
    settings name one; ``verb`` what the command does with the file
    ("analyze", "use"), for the help.
    """
    try:
        return restore(model, out, epoch)
    except CatnetError as e:
        if e.code == "E0705" and other_file:
            e.message = (
                f"the checkpoint in {out} was trained from another .cat file than {file} "
                f"(the file's contents differ), and its weights do not fit `{entry}`: " + e.message.split(": ", 1)[-1]
            )
            e.help = f"{verb} the file the run trained, with its entry (`catnet train {file}` writes a new run)"
        elif e.code == "E0705" and trained not in (None, entry):
            e.notes = (f"the run trained `{trained}`, not `{entry}`",) + e.notes
            e.help = f"pass --entry {trained}"
        raise


def run(args: argparse.Namespace) -> int:
    """``catnet train``: 0 on success; 130 on Ctrl-C (the last checkpoint kept)."""
    prepared = prepare(args)
    try:
        metrics = fit(prepared)
    except KeyboardInterrupt:
        return 130
    if prepared.metrics_out:
        _deliver_metrics(prepared, metrics)
    if prepared.progress is not None:
        lines = result_lines(metrics)
        shown = lines.pop()
        for line in lines:
            prepared.progress.write(line + "\n")
        ran = len(metrics["history"])
        if metrics.get("best_epoch") is not None:
            stop = f"stopped early after {ran} epochs (no lower validation loss in {prepared.config.early_stopping}); " if metrics["stopped_early"] else ""
            prepared.progress.write(
                f"{stop}best epoch {metrics['best_epoch']} by validation loss {metrics['val_loss']:.4f}: "
                f"the test figures below are its weights' (its checkpoint is kept)\n"
            )
        prepared.progress.write(
            f"done: {shown}test {metrics['objective'] or 'loss'} {metrics['test_loss']:.4f} after {ran} epochs"
            f" in {metrics['seconds']:.1f}s; checkpoints in {metrics['checkpoints']}, logs and curves.png in {prepared.out}\n"
        )
    return 0
