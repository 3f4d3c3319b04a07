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
from .cli import add_root_argument
from .errors import CatnetError, suggest
from .ir import Diagram, Span, Ty, first_not_iso

LOSSES = ("auto", "xent", "mse", "nll", "bundle")
OPTIMIZERS = ("adam", "adamw", "sgd")


#: The accepted range of each numeric option (inclusive); the seed feeds
#: numpy's and JAX's generators, which take unsigned 32-bit seeds.
SEED_RANGE = (0, 2**32 - 1)
EPOCHS_RANGE = (1, 1_000_000)
BATCH_RANGE = (1, 2**31 - 1)


def configure(parser: argparse.ArgumentParser) -> None:
    """The options of ``catnet train``; numbers are read as text and checked by :func:`options`."""
    parser.add_argument("file", help="a .cat file")
    parser.add_argument("--entry", default=None, help="the morphism to train (default: the file's `main`)")
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
    parser.add_argument("--out", default=None, help="run directory for checkpoints (default runs/<file stem>)")
    parser.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --out (verified first)")
    parser.add_argument("--metrics-out", default=None, help="write final metrics as JSON to this path")
    parser.add_argument("--skip-memory-check", action="store_true", help="compile even if the model looks too big for memory")
    parser.add_argument("--quiet", action="store_true", help="no progress output")
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
    epochs: int = field(default=0, compare=False)

    def key(self) -> dict[str, Any]:
        """The settings a checkpoint records and ``--resume`` compares.

        Files are compared by content, not by path: a moved data file or
        ``.cat`` file resumes, an edited one does not.
        """
        d = dict(self.__dict__)
        d.pop("epochs")
        d.pop("file")
        if self.objective is None:
            d.pop("objective")  # the settings of a run without one read as before objectives existed
        if not self.rotate_test:
            d.pop("rotate_test")  # likewise: the history of a run records the rotated metrics or never does
        d["data"] = self.data if datalib.is_named(self.data) else "npz"
        return d


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


def options(args: argparse.Namespace) -> argparse.Namespace:
    """Check every option value (E0703) and return them parsed; writes nothing.

    Numbers must parse and lie in their documented ranges (``--seed`` in
    0..2**32-1, ``--epochs`` in 1..1000000, ``--batch-size`` at least 1,
    ``--lr`` positive and finite, ``--test-fraction`` strictly between 0
    and 1); ``--out`` must be a directory or creatable, ``--metrics-out`` a
    file path (not a directory) whose folder is a directory or creatable.
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
    ns.batch_size = _integer("--batch-size", args.batch_size, *BATCH_RANGE)
    ns.seed = _integer("--seed", args.seed, *SEED_RANGE, help="a seed is an integer from 0 to 4294967295 (2**32 - 1)")
    ns.lr = _real("--lr", args.lr)
    if not (ns.lr > 0 and math.isfinite(ns.lr)):
        raise _fail(f"--lr must be a positive number, not {ns.lr}")
    ns.test_fraction = _real("--test-fraction", args.test_fraction)
    if not 0 < ns.test_fraction < 1:
        raise _fail(f"--test-fraction must be between 0 and 1, not {ns.test_fraction}")
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
        line = (
            f"epoch {epoch:>{len(str(self.epochs))}}/{self.epochs}  train {self.label} {row['train_loss']:.4f}"
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


def _optimizer(name: str, lr: float) -> Any:
    """The optax optimizer ``name`` at learning rate ``lr``."""
    import optax

    return {"adam": optax.adam, "adamw": optax.adamw, "sgd": optax.sgd}[name](lr)


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
        if not args.skip_memory_check:
            # parameters, optimizer state and one batch's activations, before JAX allocates any
            require_fits(diagram, batch=min(opts.batch_size, len(train)), training=True, entry=entry, span=module.lookup(entry).span)
    except CatnetError as e:
        # Data that does not fit is reported at the morphism it must fit.
        if e.code == "E0701":
            e.notes = e.notes + (f"data: {args.data}",)
        raise module.locate(e, entry) from None
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
        epochs=opts.epochs,
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
    return Run(
        config, diagram, train, test, out, resume, args.metrics_out, None if args.quiet else sys.stderr, started, likelihood, rotated
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


def fit(run: Run) -> dict[str, Any]:
    """Train, evaluate and checkpoint every epoch; the final metrics."""
    import jax
    import jax.numpy as jnp
    from flax import nnx

    from .lower import lower

    cfg = run.config
    kind = "objective" if cfg.objective is not None else run.likelihood or _loss_kind(cfg.loss, run.train.labels)
    model = lower(run.diagram, rngs=nnx.Rngs(cfg.seed))
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
    tx = _optimizer(cfg.optimizer, cfg.lr)
    opt_state = tx.init(params)
    train_step, eval_step = make_functions(graphdef, eval_graphdef, tx, kind)

    n_train = len(run.train)
    batch = min(cfg.batch_size, n_train)
    steps = n_train // batch  # full batches only: one shape, one compilation
    train_in = tuple(jnp.asarray(x) for x in run.train.inputs)
    train_y = jnp.asarray(run.train.target) if run.train.target is not None else None
    test_in = tuple(jnp.asarray(x) for x in run.test.inputs)
    test_y = jnp.asarray(run.test.target) if run.test.target is not None else None
    turned = run.rotated
    turned_in = tuple(jnp.asarray(x) for x in turned.inputs) if turned is not None else None
    turned_y = jnp.asarray(turned.target) if turned is not None and turned.target is not None else None
    n_test = len(run.test)

    progress = Progress(cfg.epochs, steps, batch, run.progress, cfg.objective or ("nll" if kind == "nll" else "loss"))
    for text in run.resume.notes if run.resume else ():
        progress.note(text)
    checkpoints = ckpt.Orbax(run.out)
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
            t0 = time.perf_counter()
            order = np.random.default_rng([cfg.seed, epoch]).permutation(n_train)[: steps * batch]
            order_dev = jnp.asarray(order.reshape(steps, batch).astype(np.int32))
            pending: Any = None
            total = 0.0
            for step in range(1, steps + 1):
                params, rest, opt_state, loss = train_step(params, rest, opt_state, train_in, train_y, order_dev[step - 1])
                if pending is not None:
                    # read the previous step's loss: the host waits one step behind the device
                    value = check(float(pending), epoch, step - 1)
                    total += value
                    progress.step(epoch, step - 1, value, t0)
                pending = loss
            value = check(float(pending), epoch, steps)
            total += value
            progress.step(epoch, steps, value, t0)
            train_seconds = time.perf_counter() - t0
            test_loss, test_acc = scored()
            row = {
                "epoch": epoch,
                "train_loss": total / steps,
                "test_loss": test_loss,
                "test_accuracy": test_acc,
                "seconds": time.perf_counter() - t0,
                "examples_per_second": steps * batch / max(train_seconds, 1e-9),
            }
            if turned_in is not None:
                row["test_loss_rotated"], row["test_accuracy_rotated"] = scored(turned_in, turned_y)
            row.update(_objective_values(cfg.objective, row))
            history.append(row)
            checkpoints.save(
                epoch,
                {"params": params, "rest": rest, "opt_state": opt_state},
                {"config": cfg.key(), "epoch": epoch, "history": history},
                cfg.key(),
            )
            progress.epoch(epoch, row)
    except KeyboardInterrupt:
        try:
            checkpoints.close()
        except Exception:  # closing after an interrupted save may fail; the interrupt is what matters here
            pass
        done = ckpt.newest_complete(checkpoints.dir)
        progress.note(
            f"interrupted; the last checkpoint is epoch {done} in {run.out}" if done else "interrupted before the first checkpoint"
        )
        raise
    checkpoints.close()

    last = history[-1] if history else {}
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
        "test_accuracy": last.get("test_accuracy"),
        "test_loss": last.get("test_loss"),
        "train_loss": last.get("train_loss"),
        "rotate_test": cfg.rotate_test,
        "seconds": time.perf_counter() - run.started,
        "checkpoints": str(checkpoints.dir),
        "history": history,
    }
    metrics.update(_objective_values(cfg.objective, last))
    if cfg.rotate_test:
        metrics["test_loss_rotated"] = last.get("test_loss_rotated")
        metrics["test_accuracy_rotated"] = last.get("test_accuracy_rotated")
    if kind in ("nll", "bundle") and history:
        metrics.update(_likelihood_metrics(run, kind, nnx.merge(eval_graphdef, params, rest), last["test_loss"]))
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
        if "test_nll" in metrics:
            prepared.progress.write(
                f"test NLL {metrics['test_nll']:.4f} nats ({metrics['test_bits_per_dim']:.4f} bits/dim); "
                f"one Gaussian: {metrics['gaussian_nll']:.4f} nats\n"
            )
        if "projection_error" in metrics:
            coverage = metrics.get("fiber_coverage")
            prepared.progress.write(
                f"projection error {metrics['projection_error']:.4f}"
                + (f", fiber coverage {coverage:.4f}" if coverage is not None else "")
                + " (samples over held-out base points)\n"
            )
        acc = metrics["test_accuracy"]
        shown = f"test accuracy {acc:.4f}, " if acc is not None else ""
        if metrics.get("test_accuracy_rotated") is not None:
            shown += f"on rotated images {metrics['test_accuracy_rotated']:.4f}, "
        elif metrics.get("test_loss_rotated") is not None:
            shown += f"test {metrics['objective'] or 'loss'} on rotated images {metrics['test_loss_rotated']:.4f}, "
        prepared.progress.write(
            f"done: {shown}test {metrics['objective'] or 'loss'} {metrics['test_loss']:.4f} after {metrics['epochs']} epochs"
            f" in {metrics['seconds']:.1f}s; checkpoints in {metrics['checkpoints']}\n"
        )
    return 0
