"""A run directory of ``catnet train``, as ``catnet eval``, ``predict`` and ``export`` read it.

``--checkpoint DIR`` names the run directory (the ``--out`` of ``catnet
train``).  :func:`checkpoint` picks the step whose weights are the run's
result -- the best epoch where the run kept one (a validation set: the
lowest validation loss, recorded as ``best_epoch`` in the newest manifest),
else the newest -- or the epoch ``--epoch`` names, verifies it against its
manifest and reads the settings the run recorded there (``Config.key()``:
the entry or objective, the data, the seed, the test fraction, the loss),
reading only the file system: a directory that holds no run, or no
checkpoint of the epoch asked for, is E0703, a corrupt checkpoint E0705,
both before JAX is imported.  The commands take
those settings as their defaults, so that the model they compile is the one
the run trained (:func:`morphism`) and ``catnet eval`` scores the run's own
test set.

:func:`restored` compiles the morphism and gives it the run's parameters
and batch statistics (``catnet.train.restore``), in evaluation mode.
Weights that do not fit are E0705, and the message says why when it can
tell: the run was trained from another version of the file, or trained
another morphism than ``--entry`` names.

A bad option value or output path is E0710, without a span: each command
locates its errors at the entry it uses (``module.locate``).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from .. import checkpoints as ckpt
from ..cli import add_entry_argument
from ..errors import CatnetError, whole_option
from ..ir import Diagram, Span

#: The code of a request about a trained model that cannot be carried out (docs/errors.md).
CODE = "E0710"

RUN_HELP = "--checkpoint names the run directory `catnet train` wrote (its --out, by default runs/<file stem>)"


def fail(message: str, help: str | None = None, notes: tuple[str, ...] = ()) -> CatnetError:
    """An E0710 error without a span (the command locates it at the entry)."""
    return CatnetError(CODE, message, None, notes=notes, help=help)


def whole(option: str, text: str, low: int, high: int) -> int:
    """A command-line value as a whole number in ``low..high``; E0710 otherwise."""
    return whole_option(option, text, low, high, CODE)


#: The computation dtype (``catnet.compile(dtype=...)``) of each precision a run can record
#: as its ``precision`` setting (``catnet train --precision``); a run without one computed in float32.
PRECISIONS: dict[str, str | None] = {"fp32": None, "float32": None, "bf16": "bfloat16", "bfloat16": "bfloat16"}

#: The accepted ``--epoch`` values (those ``catnet train --epochs`` accepts).
EPOCH_RANGE = (1, 1_000_000)


def add_common_arguments(parser: argparse.ArgumentParser, description: str, epilog: str) -> None:
    """What every command of :mod:`catnet.use` starts with: its help text, the ``.cat`` file, ``--checkpoint DIR``
    (required), ``--epoch N`` and ``--entry NAME``."""
    parser.description = description
    parser.epilog = epilog
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("file", help="the .cat file the model was trained from")
    parser.add_argument("--checkpoint", required=True, metavar="DIR",
                        help="the run directory of `catnet train` (its --out); its checkpoint is verified before it is read")
    parser.add_argument("--epoch", default=None, metavar="N",
                        help="the saved epoch to read (default: the best epoch of a run with a validation set, else the newest)")
    add_entry_argument(parser, "the morphism to use (default: the one the run trained, its --objective or --entry, else the file's `main`)")


@dataclass(frozen=True)
class Checkpoint:
    """The verified step of a run to read, and the settings it recorded."""

    run: Path
    epoch: int
    settings: dict[str, Any]
    #: Whether the run was trained from a file with other contents than the one given now.
    other_file: bool
    #: Whether ``epoch`` is the run's best epoch by validation loss (not merely its newest).
    best: bool = False
    #: The dtype the run computed in (``None``: float32), so the model computes what the run's evaluation did.
    dtype: str | None = None

    @property
    def trained(self) -> str | None:
        """The morphism the run trained, where its settings name one (``None``: the file's ``main``)."""
        name = self.settings.get("objective") or self.settings.get("entry")
        return name if isinstance(name, str) else None

    def described(self) -> str:
        """``checkpoint of epoch 3 (the best by validation loss) in runs/net``."""
        return f"checkpoint of epoch {self.epoch}{' (the best by validation loss)' if self.best else ''} in {self.run}"


def _manifest(directory: Path, step: int) -> dict[str, Any]:
    """The manifest of a step that ``verified_step`` has verified."""
    return dict(json.loads((directory / str(step) / ckpt.MANIFEST).read_text(encoding="utf-8")))


def checkpoint(path: str, file: str, epoch: str | None = None) -> Checkpoint:
    """The run directory ``path``, the step to read verified, and its settings; JAX-free.

    The step is ``epoch`` (the text of ``--epoch``; E0710 unless a whole
    number), else the best epoch the newest manifest records, else the
    newest.  E0703 if ``path`` is not a run directory (no ``checkpoints``
    folder, or no checkpoint of that epoch in it); E0705 if the step does
    not match its manifest.  ``file`` is the ``.cat`` file given now,
    compared with the one the run recorded by content.
    """
    asked = whole("--epoch", epoch, *EPOCH_RANGE) if epoch is not None else None
    run = Path(path)
    if not run.is_dir():
        raise CatnetError("E0703", f"--checkpoint {path} is not a directory", None, help=RUN_HELP)
    directory = run / "checkpoints"
    if not directory.is_dir():
        raise CatnetError("E0703", f"--checkpoint {path} holds no checkpoints (no `checkpoints` folder)", None, help=RUN_HELP)
    step = ckpt.verified_step(directory, asked)
    body = _manifest(directory, step)
    best = body.get("best_epoch")
    chosen_best = asked is None and isinstance(best, int)
    if chosen_best and best != step:
        step = ckpt.verified_step(directory, best)
        body = _manifest(directory, step)
    settings = body["settings"]  # verified: a dict, and the manifest's checksum holds
    try:
        here = ckpt.file_sha256(file)
    except OSError:
        here = None  # catnet.load has read the file already; a file gone since is not this check's to report
    other = settings.get("source_sha256") not in (None, here)
    precision = settings.get("precision", "fp32")
    if not isinstance(precision, str) or precision not in PRECISIONS:
        raise CatnetError(
            "E0705", f"the checkpoint in {directory / str(step)} records the precision {precision!r}, which this catnet does not know",
            None, help=f"the precisions are {', '.join(PRECISIONS)}: was the run trained by another version of catnet?",
        )
    return Checkpoint(run, step, settings, other, chosen_best, PRECISIONS[precision])


def opened(args: argparse.Namespace) -> tuple[Any, Checkpoint, str, Diagram]:
    """The module of ``args.file``, its run (``--checkpoint``, ``--epoch``) and the morphism to use (``--entry``).

    Errors are located: at the entry for the run directory, where
    :func:`morphism` puts them for the morphism.
    """
    import catnet

    module = catnet.load(args.file, root=args.root)
    try:
        run = checkpoint(args.checkpoint, args.file, args.epoch)
    except CatnetError as e:
        raise module.locate(e, args.entry or module.entry_name()) from None
    entry, diagram = morphism(module, args.entry, run)
    return module, run, entry, diagram


def morphism(module: Any, entry: str | None, run: Checkpoint) -> tuple[str, Diagram]:
    """The name and diagram of the morphism to use: ``entry``, else the one the run trained, else ``main``.

    A name the file does not define is E0210, placed at the file's start.
    """
    name = entry or run.trained or module.entry_name()
    try:
        return name, module.diagram(name)
    except CatnetError as e:
        if e.code == "E0210" and e.span is None:
            e.span = Span(module.path, 1, 1, 1, 1)  # no such morphism: the file is where to look
        if run.trained is not None and entry is None:
            e.notes = e.notes + (f"the run in {run.run} trained `{run.trained}`",)
        raise


def restored(module: Any, entry: str, run: Checkpoint, file: str) -> Any:
    """The model of ``entry`` with the run's weights and batch statistics, in evaluation mode.

    It computes in the run's precision (its ``precision`` setting; float32
    without one), as the run's own evaluation did.

    E0705 (located at the entry) if the checkpoint does not fit it, saying
    so when the run was trained from another version of ``file`` or
    trained another morphism.
    """
    from flax import nnx

    import catnet

    from ..train import restore_run

    seed = run.settings.get("seed")
    model = catnet.compile(module, entry, rngs=nnx.Rngs(seed if isinstance(seed, int) else 0), dtype=run.dtype)
    try:
        restore_run(model, run.run, run.epoch, file=file, entry=entry, other_file=run.other_file, trained=run.trained, verb="use")
    except CatnetError as e:
        raise module.locate(e, entry) from None
    model.eval()
    return model


def output_file(option: str, path: str, example: str, suffix: str | None = None, *,
                written: str | None = None, error: Callable[..., CatnetError] = fail) -> Path:
    """The file ``path`` for ``option``, checked writable before any work: ``error(...)`` (E0710) otherwise.

    Refused: an empty path, a directory, something that exists and is not a
    regular file, a name without ``suffix`` (when one is required; ``written``
    says why, e.g. "the points are written as an .npz archive"), and a
    folder that cannot be made or written in.  ``example`` is a good name to
    suggest.  ``catnet sample`` uses it too, with its own code.
    """
    what = f"the {suffix} file" if suffix else "the file"
    usage = f"{option} names {what} to write, e.g. {option} {example}"
    if not path:
        raise error(f"{option} is empty", help=usage)
    out = Path(path)
    if out.is_dir():
        raise error(f"{option} {path} is a directory", help=usage)
    if suffix is not None and out.suffix != suffix:
        why = written or f"it is written as a {suffix} file"
        raise error(f"{option} {path} does not end in {suffix}", help=f"{why}: {option} {out.with_suffix(suffix)}")
    if os.path.lexists(out) and not out.is_file():
        raise error(f"{option} {path} exists and is not a regular file")
    base = out.absolute().parent
    while not os.path.lexists(base) and base != base.parent:
        base = base.parent
    if not base.is_dir():
        raise error(f"cannot create {option} {path}: {base} is a file, not a directory")
    if not os.access(base, os.W_OK | os.X_OK):
        raise error(f"cannot create {option} {path}: no permission to write in {base}")
    return out


def write_atomically(option: str, path: Path, write: Callable[[BinaryIO], None], *,
                     error: Callable[..., CatnetError] = fail) -> None:
    """Write ``path`` whole or not at all: ``write`` fills a temporary file in its folder, then a rename.

    An operating-system error (a full disk, a folder removed meanwhile) is
    ``error(...)`` (E0710) naming ``option``; the temporary file is removed.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise error(f"cannot write {option} {path}: {e.strerror or e}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise error(f"cannot write {option} {path}: {e.strerror or e}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
