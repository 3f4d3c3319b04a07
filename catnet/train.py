"""``catnet train``: fit a morphism to data with optax, with checkpoints.

The loss follows the codomain and the data: integer targets are class
labels for the logits on the output's last axis (softmax cross-entropy),
float targets are regressed (mean squared error); ``--loss`` overrides.
The data split into train and test once, the same for every seed; each
epoch shuffles the training set with a generator seeded from
``(seed, epoch)``, runs full batches, evaluates on the test set and writes
a checkpoint (orbax, atomic: a crash leaves the previous one intact).

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
import hashlib
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, TextIO

import numpy as np

from . import data as datalib
from .check import require_lowerable
from .errors import CatnetError
from .ir import Diagram

LOSSES = ("auto", "xent", "mse")
OPTIMIZERS = ("adam", "adamw", "sgd")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="a .cat file")
    parser.add_argument("--entry", default=None, help="the morphism to train (default: the file's `main`)")
    parser.add_argument("--data", default="digits", help="`digits` (bundled, offline) or PATH.npz with arrays x and y")
    parser.add_argument("--epochs", type=int, default=10, help="passes over the training set (default 10)")
    parser.add_argument("--batch-size", type=int, default=64, help="examples per step (default 64)")
    parser.add_argument("--lr", type=float, default=1e-3, help="learning rate (default 1e-3)")
    parser.add_argument("--optimizer", choices=OPTIMIZERS, default="adam", help="optax optimizer (default adam)")
    parser.add_argument("--loss", choices=LOSSES, default="auto", help="auto: cross-entropy for integer labels, else MSE")
    parser.add_argument("--seed", type=int, default=0, help="seed for weights, dropout and shuffling (default 0)")
    parser.add_argument("--test-fraction", type=float, default=0.2, help="share of the data held out (default 0.2)")
    parser.add_argument("--out", default=None, help="run directory for checkpoints (default runs/<file stem>)")
    parser.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --out")
    parser.add_argument("--metrics-out", default=None, help="write final metrics as JSON to this path")
    parser.add_argument("--quiet", action="store_true", help="no progress output")


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
    epochs: int = field(default=0, compare=False)

    def key(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d.pop("epochs")
        d.pop("file")
        return d


def _fail(message: str, help: str | None = None) -> CatnetError:
    return CatnetError("E0703", message, None, help=help)


def _validate(args: argparse.Namespace) -> None:
    if args.epochs < 1:
        raise _fail(f"--epochs must be at least 1, not {args.epochs}")
    if args.batch_size < 1:
        raise _fail(f"--batch-size must be at least 1, not {args.batch_size}")
    if not (args.lr > 0 and math.isfinite(args.lr)):
        raise _fail(f"--lr must be a positive number, not {args.lr}")
    if not 0 < args.test_fraction < 1:
        raise _fail(f"--test-fraction must be between 0 and 1, not {args.test_fraction}")


# -- progress -------------------------------------------------------------------


class Progress:
    """One line per epoch; on a terminal it updates in place during the epoch."""

    def __init__(self, epochs: int, steps: int, batch: int, stream: TextIO | None) -> None:
        self.epochs, self.steps, self.batch = epochs, steps, batch
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
            f"  loss {loss:.4f}  {rate:,.0f} ex/s"
        )
        self.stream.flush()

    def epoch(self, epoch: int, row: dict[str, Any]) -> None:
        if self.stream is None:
            return
        acc = f"  acc {row['test_accuracy']:.4f}" if row.get("test_accuracy") is not None else ""
        line = (
            f"epoch {epoch:>{len(str(self.epochs))}}/{self.epochs}  train loss {row['train_loss']:.4f}"
            f"  test loss {row['test_loss']:.4f}{acc}  {row['examples_per_second']:,.0f} ex/s  {row['seconds']:.2f}s"
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
    if loss == "auto":
        return "xent" if labels else "mse"
    if loss == "xent" and not labels:
        raise _fail("--loss xent needs integer class labels in `y`, but the targets are floats", help="use --loss mse")
    return loss


def make_functions(graphdef: Any, eval_graphdef: Any, tx: Any, kind: str) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """The jitted training step and evaluation step over split state.

    ``train_step(params, rest, opt_state, inputs, target, index)`` gathers
    the batch ``index`` from the device-resident data, and returns the new
    state and the batch loss.  ``eval_step(params, rest, inputs, target,
    index, weight)`` returns the weighted loss sum and correct count.
    """
    import jax
    import jax.numpy as jnp
    import optax
    from flax import nnx

    def losses(out: Any, y: Any) -> tuple[Any, Any]:
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

    def loss_fn(params: Any, rest: Any, xs: tuple[Any, ...], y: Any) -> tuple[Any, Any]:
        # copy: fresh variables at this trace level, so the dropout stream's
        # counter may advance inside the gradient's trace
        model = nnx.merge(graphdef, params, rest, copy=True)
        per, _ = losses(model(*xs), y)
        _, _, rest = nnx.split(model, nnx.Param, ...)
        return per.mean(), rest

    @jax.jit
    def train_step(params: Any, rest: Any, opt_state: Any, inputs: Any, target: Any, index: Any) -> Any:
        xs = tuple(x[index] for x in inputs)
        (loss, rest), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, rest, xs, target[index])
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), rest, opt_state, loss

    @jax.jit
    def eval_step(params: Any, rest: Any, inputs: Any, target: Any, index: Any, weight: Any) -> Any:
        model = nnx.merge(eval_graphdef, params, rest)
        per, hit = losses(model(*(x[index] for x in inputs)), target[index])
        correct = (hit * weight).sum() if hit is not None else jnp.float32(0)
        return (per * weight).sum(), correct

    return train_step, eval_step


def _optimizer(name: str, lr: float) -> Any:
    import optax

    return {"adam": optax.adam, "adamw": optax.adamw, "sgd": optax.sgd}[name](lr)


# -- checkpoints --------------------------------------------------------------------


class Checkpoints:
    """Orbax checkpoints of the training state, one per epoch, in ``DIR/checkpoints``.

    Orbax writes each step into a temporary directory and renames it when
    complete, so an interrupted save never replaces a good checkpoint.
    """

    def __init__(self, out: Path) -> None:
        import orbax.checkpoint as ocp

        self._ocp = ocp
        self.dir = (out / "checkpoints").absolute()
        self.manager = ocp.CheckpointManager(
            self.dir,
            options=ocp.CheckpointManagerOptions(max_to_keep=2, create=True, enable_async_checkpointing=False),
        )

    def latest(self) -> int | None:
        return self.manager.latest_step()

    def save(self, epoch: int, state: dict[str, Any], meta: dict[str, Any]) -> None:
        ocp = self._ocp
        self.manager.save(epoch, args=ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)))
        self.manager.wait_until_finished()

    def restore(self, epoch: int, like: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        import jax

        ocp = self._ocp
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
        got = self.manager.restore(
            epoch, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore())
        )
        return got["state"], got["meta"]

    def close(self) -> None:
        self.manager.close()


def load_params(out: str | Path, epoch: int | None = None) -> dict[str, np.ndarray]:
    """The parameters saved in a run directory, flat by path (``encoder.dense.kernel``)."""
    import orbax.checkpoint as ocp

    directory = (Path(out) / "checkpoints").absolute()
    with ocp.CheckpointManager(directory) as manager:
        step = epoch if epoch is not None else manager.latest_step()
        if step is None:
            raise _fail(f"no checkpoint in {directory}")
        got = manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore()))
    flat: dict[str, np.ndarray] = {}

    def walk(prefix: str, node: Any) -> None:
        if isinstance(node, dict):
            for k in sorted(node, key=str):
                walk(f"{prefix}.{k}" if prefix else str(k), node[k])
        else:
            flat[prefix.removesuffix(".value")] = np.asarray(node)

    walk("", got["state"]["params"])
    return flat


# -- the run ------------------------------------------------------------------------------


def _source_hash(path: str) -> str:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError as e:
        raise CatnetError("E0001", f"cannot read {path}: {e.strerror or e}")


def _write_json(path: str, payload: dict[str, Any]) -> None:
    target = Path(path)
    if target.parent and not target.parent.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, target)


@dataclass
class Run:
    """Everything ``fit`` needs, prepared and checked before any step runs."""

    config: Config
    diagram: Diagram
    train: datalib.Dataset
    test: datalib.Dataset
    out: Path
    resume: bool
    metrics_out: str | None
    progress: TextIO | None
    started: float = field(default_factory=time.perf_counter)


def prepare(args: argparse.Namespace) -> Run:
    """Load and check the file and the data; no JAX yet, so errors come fast."""
    import catnet

    started = time.perf_counter()
    _validate(args)
    module = catnet.load(args.file)
    entry = args.entry or module.entry_name()
    try:
        diagram = module.diagram(entry)
        require_lowerable(diagram, entry)
        dataset = datalib.load(args.data, diagram.dom, diagram.cod)
        _loss_kind(args.loss, dataset.labels)
    except CatnetError as e:
        # Data that does not fit is reported at the morphism it must fit.
        if e.code == "E0701":
            e.notes = e.notes + (f"data: {args.data}",)
        raise module.locate(e, entry) from None
    train, test = datalib.split(dataset, args.test_fraction)
    config = Config(
        file=args.file,
        source_sha256=_source_hash(args.file),
        entry=args.entry,
        data=args.data if args.data == "digits" else os.path.abspath(args.data),
        batch_size=args.batch_size,
        lr=args.lr,
        optimizer=args.optimizer,
        loss=args.loss,
        seed=args.seed,
        test_fraction=args.test_fraction,
        epochs=args.epochs,
    )
    out = Path(args.out) if args.out else Path("runs") / Path(args.file).stem
    return Run(config, diagram, train, test, out, args.resume, args.metrics_out, None if args.quiet else sys.stderr, started)


def fit(run: Run) -> dict[str, Any]:
    """Train, evaluate and checkpoint every epoch; the final metrics."""
    import jax
    import jax.numpy as jnp
    from flax import nnx

    from .lower import lower

    cfg = run.config
    kind = _loss_kind(cfg.loss, run.train.labels)
    model = lower(run.diagram, rngs=nnx.Rngs(cfg.seed))
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
    train_y = jnp.asarray(run.train.target)
    test_in = tuple(jnp.asarray(x) for x in run.test.inputs)
    test_y = jnp.asarray(run.test.target)
    n_test = len(run.test)
    eval_batch = min(n_test, 1024)
    eval_chunks = -(-n_test // eval_batch)

    progress = Progress(cfg.epochs, steps, batch, run.progress)
    checkpoints = Checkpoints(run.out)
    history: list[dict[str, Any]] = []
    first = 1
    latest = checkpoints.latest()
    if latest is not None and not run.resume:
        checkpoints.close()
        raise _fail(
            f"{run.out} already holds a run (checkpoint of epoch {latest})",
            help="pass --resume to continue it, or --out a new directory",
        )
    if latest is not None:
        state, meta = checkpoints.restore(latest, {"params": params, "rest": rest, "opt_state": opt_state})
        if meta.get("config") != cfg.key():
            checkpoints.close()
            diff = sorted(k for k, v in cfg.key().items() if meta.get("config", {}).get(k) != v)
            raise _fail(
                f"the checkpoint in {run.out} was made with different settings ({', '.join(diff)})",
                help="resume with the same file and options, or train into a new --out",
            )
        params, rest, opt_state = state["params"], state["rest"], state["opt_state"]
        history = list(meta.get("history", []))
        first = latest + 1
        progress.note(f"resuming from epoch {latest} in {run.out}")
    elif run.resume:
        progress.note(f"no checkpoint in {run.out} yet: starting from the first epoch")

    def evaluate() -> tuple[float, float | None]:
        total, correct = 0.0, 0.0
        for c in range(eval_chunks):
            idx = np.arange(c * eval_batch, (c + 1) * eval_batch)
            weight = (idx < n_test).astype(np.float32)
            loss_sum, hits = eval_step(params, rest, test_in, test_y, jnp.asarray(np.minimum(idx, n_test - 1)), jnp.asarray(weight))
            total += float(loss_sum)
            correct += float(hits)
        has_acc = kind == "xent" or run.test.labels
        return total / n_test, (correct / n_test if has_acc else None)

    def check(value: float, epoch: int, step: int) -> float:
        if not math.isfinite(value):
            raise CatnetError(
                "E0704",
                f"the training loss became {value} at epoch {epoch}, step {step} of {steps}",
                help=f"lower the learning rate (now --lr {cfg.lr}) or check the data for inf/nan"
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
            test_loss, test_acc = evaluate()
            row = {
                "epoch": epoch,
                "train_loss": total / steps,
                "test_loss": test_loss,
                "test_accuracy": test_acc,
                "seconds": time.perf_counter() - t0,
                "examples_per_second": steps * batch / max(train_seconds, 1e-9),
            }
            history.append(row)
            checkpoints.save(
                epoch,
                {"params": params, "rest": rest, "opt_state": opt_state},
                {"config": cfg.key(), "epoch": epoch, "history": history},
            )
            progress.epoch(epoch, row)
    except KeyboardInterrupt:
        try:
            done = checkpoints.latest()
            checkpoints.close()
        except Exception:  # an interrupted save: orbax never commits a partial checkpoint
            done = None
        progress.note(
            f"interrupted; the last checkpoint is epoch {done} in {run.out}" if done else "interrupted before the first checkpoint"
        )
        raise
    checkpoints.close()

    last = history[-1] if history else {}
    return {
        "file": cfg.file,
        "entry": cfg.entry,
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
        "seconds": time.perf_counter() - run.started,
        "checkpoints": str(checkpoints.dir),
        "history": history,
    }


def run(args: argparse.Namespace) -> int:
    """``catnet train``: 0 on success; 130 on Ctrl-C (the last checkpoint kept)."""
    prepared = prepare(args)
    try:
        metrics = fit(prepared)
    except KeyboardInterrupt:
        return 130
    if prepared.metrics_out:
        _write_json(prepared.metrics_out, metrics)
    if prepared.progress is not None:
        acc = metrics["test_accuracy"]
        shown = f"test accuracy {acc:.4f}, " if acc is not None else ""
        prepared.progress.write(
            f"done: {shown}test loss {metrics['test_loss']:.4f} after {metrics['epochs']} epochs"
            f" in {metrics['seconds']:.1f}s; checkpoints in {metrics['checkpoints']}\n"
        )
    return 0
