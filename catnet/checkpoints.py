"""Checkpoints of a training run that verify themselves.

A run directory ``OUT`` keeps one orbax step per epoch in
``OUT/checkpoints/<epoch>/`` (the newest two are kept, and with a
validation set also the best: the lowest validation loss, the earliest of
equals).  Orbax writes a step
into a temporary directory and renames it into place when it is complete;
right after that rename catnet writes ``<epoch>/catnet-manifest.json``
(a temporary file, fsync, rename): the size and sha256 of every file orbax
wrote for the step, the epoch, the run's settings (``Config.key()``), with a
validation set the best epoch so far (``best_epoch``), and a sha256 of the
manifest's own content.

Contract of :func:`resumable` and :func:`verified_step`, which read only the
file system (no JAX, no orbax, so their errors come at once):

* the newest step with a manifest is the candidate; it is used only if its
  manifest is intact and every file it lists has the recorded size and
  checksum, no listed file is missing and no other file has appeared.
  Anything else is error E0705, naming each file and what differs, and
  saying which earlier step is intact and how to use it;
* a step *newer* than the candidate has no manifest only when the run was
  stopped between orbax's rename and the manifest write: an incomplete save.
  ``resumable`` removes it and resumes from the candidate, and says so;
* the settings recorded in the manifest must equal the run's; each one that
  differs is listed with both values (E0705) before anything is restored.

:class:`Orbax` wraps the orbax manager; it imports orbax (and so JAX) when
it is created.  Its ``save`` writes the manifest; its ``restore`` turns any
failure of orbax into E0705.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from .errors import CatnetError

#: The manifest's file name inside a step directory.
MANIFEST = "catnet-manifest.json"
#: Written first and renamed to :data:`MANIFEST`; never part of a good step.
MANIFEST_TMP = ".catnet-manifest.json.tmp"
FORMAT = "catnet-checkpoint/1"

#: Tests set this to ``EPOCH`` or ``EPOCH:SECONDS``: the run then waits
#: (60 s by default) between orbax's commit of that epoch and the manifest
#: write, so that a signal lands there.
HOLD_ENV = "CATNET_TEST_HOLD_BEFORE_MANIFEST"

#: What each setting of ``Config.key()`` is called on the command line.
SETTING_NAMES = {
    "source_sha256": "the .cat file's contents",
    "entry": "--entry",
    "data": "--data",
    "data_sha256": "the data file's contents",
    "batch_size": "--batch-size",
    "lr": "--lr",
    "optimizer": "--optimizer",
    "loss": "--loss",
    "seed": "--seed",
    "test_fraction": "--test-fraction",
    "objective": "--objective",
    "rotate_test": "--rotate-test",
    "schedule": "--schedule",
    "warmup": "--warmup",
    "decay_factor": "--decay-factor",
    "decay_every": "--decay-every",
    "epochs": "--epochs (the length of the cosine schedule)",
    "weight_decay": "--weight-decay",
    "clip_norm": "--clip-norm",
    "accumulate": "--accumulate",
    "precision": "--precision",
    "validation_fraction": "--validation-fraction",
}


#: The value of a setting a run leaves out of its record while it has it (so that
#: runs made before the setting existed resume): shown as such in differences.
UNRECORDED_DEFAULTS = {"schedule": "constant", "warmup": 0, "accumulate": 1, "validation_fraction": 0.0, "precision": "fp32"}


def _error(message: str, notes: tuple[str, ...] = (), help: str | None = None) -> CatnetError:
    return CatnetError("E0705", message, None, notes=notes, help=help)


# -- the step directories ---------------------------------------------------------------


def steps(directory: Path) -> list[int]:
    """The finished orbax steps in ``directory`` (digit-named folders), ascending."""
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return []
    except NotADirectoryError:
        raise CatnetError("E0703", f"{directory} is not a directory, but it should hold the run's checkpoints")
    except OSError as e:
        raise CatnetError("E0703", f"cannot list the checkpoints in {directory}: {e.strerror or e}")
    return sorted(int(e.name) for e in entries if e.name.isdigit() and e.is_dir(follow_symlinks=False))


def _files(step_dir: Path) -> Iterator[tuple[str, Path]]:
    """Every file under a step directory but the manifest, by relative path (sorted, '/'-separated)."""
    for root, dirs, names in os.walk(step_dir):
        dirs.sort()
        for name in sorted(names):
            path = Path(root) / name
            rel = path.relative_to(step_dir).as_posix()
            if rel != MANIFEST:
                yield rel, path


def file_sha256(path: str | Path) -> str:
    """The sha256 of a file's bytes, read in blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _digest(body: dict[str, Any]) -> str:
    """The sha256 of a manifest's content in canonical JSON (its own field left out)."""
    canonical = json.dumps({k: v for k, v in body.items() if k != "sha256"}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def write_manifest(step_dir: Path, epoch: int, settings: dict[str, Any], best_epoch: int | None = None) -> None:
    """Record the size and checksum of every file of a committed step, atomically.

    ``best_epoch`` (a run with a validation set) is the epoch of the lowest
    validation loss so far; a run without one records none.
    """
    files = {rel: {"bytes": path.stat().st_size, "sha256": file_sha256(path)} for rel, path in _files(step_dir)}
    body: dict[str, Any] = {"format": FORMAT, "epoch": epoch, "settings": settings, "files": files}
    if best_epoch is not None:
        body["best_epoch"] = best_epoch
    body["sha256"] = _digest(body)
    tmp = step_dir / MANIFEST_TMP
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(body, f, indent=1, sort_keys=True)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, step_dir / MANIFEST)
    # the rename is durable only once the directory entry is
    fd = os.open(step_dir, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# -- verification ------------------------------------------------------------------------


def _read_manifest(step_dir: Path) -> tuple[dict[str, Any] | None, str | None]:
    """The manifest of a step, or why it cannot be trusted (``None`` and ``None``: there is none)."""
    path = step_dir / MANIFEST
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None, None
    except OSError as e:
        return None, f"{MANIFEST} cannot be read: {e.strerror or e}"
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None, f"{MANIFEST} is not valid JSON (truncated or overwritten)"
    if not isinstance(body, dict) or body.get("format") != FORMAT:
        return None, f"{MANIFEST} is not a catnet checkpoint manifest"
    if body.get("sha256") != _digest(body):
        return None, f"{MANIFEST} does not match its own checksum (it was changed after it was written)"
    files = body.get("files")
    ok = (
        isinstance(files, dict)
        and all(isinstance(v, dict) and isinstance(v.get("bytes"), int) and isinstance(v.get("sha256"), str) for v in files.values())
        and isinstance(body.get("epoch"), int)
        and isinstance(body.get("settings"), dict)
    )
    if not ok:
        return None, f"{MANIFEST} lacks the files, epoch or settings it should record"
    return body, None


def _differences(step_dir: Path, manifest: dict[str, Any]) -> list[str]:
    """What differs between a step directory and its manifest (empty: intact)."""
    found: list[str] = []
    expected: dict[str, dict[str, Any]] = manifest["files"]
    folders = sorted({rel.split("/")[0] for rel in expected if "/" in rel})
    missing_folders = [f for f in folders if not (step_dir / f).is_dir()]
    for folder in missing_folders:
        found.append(f"the folder {folder}/ is missing")
    present = dict(_files(step_dir))
    for rel in sorted(expected):
        want = expected[rel]
        if rel.split("/")[0] in missing_folders:
            continue
        path = present.get(rel)
        if path is None:
            found.append(f"{rel} is missing")
            continue
        try:
            size = path.stat().st_size
            if size != want["bytes"]:
                found.append(f"{rel} has {size} bytes, but had {want['bytes']} when it was saved")
            elif file_sha256(path) != want["sha256"]:
                found.append(f"{rel} has different contents than when it was saved (sha256 differs)")
        except OSError as e:
            found.append(f"{rel} cannot be read: {e.strerror or e}")
    for rel in sorted(set(present) - set(expected)):
        found.append(f"{rel} was not part of the saved checkpoint")
    return found


def _verify(directory: Path, step: int, manifest: dict[str, Any] | None, why: str | None) -> dict[str, Any]:
    """The manifest of an intact step; E0705 naming what differs otherwise."""
    step_dir = directory / str(step)
    problems = [why] if why else _differences(step_dir, manifest or {})
    if not problems and manifest is not None and manifest["epoch"] != step:
        # a renamed step folder would resume at the wrong epoch
        problems = [f"{MANIFEST} records epoch {manifest['epoch']}, but the folder is that of epoch {step}"]
    if not problems:
        assert manifest is not None
        return manifest
    shown = problems[:8] + ([f"... and {len(problems) - 8} more"] if len(problems) > 8 else [])
    earlier = [s for s in steps(directory) if s < step]
    intact = next((s for s in reversed(earlier) if _intact(directory, s)), None)
    if intact is not None:
        help = (
            f"the checkpoint of epoch {intact} is intact: delete {step_dir} and pass --resume again "
            f"to continue from epoch {intact}"
        )
    else:
        help = f"no earlier checkpoint is intact: train into a new --out, or delete {directory} to start this run again"
    raise _error(f"the checkpoint of epoch {step} in {step_dir} is corrupt: {problems[0]}", notes=tuple(shown[1:]), help=help)


def _intact(directory: Path, step: int) -> bool:
    """Whether a step's manifest is intact and matches its folder."""
    manifest, why = _read_manifest(directory / str(step))
    return manifest is not None and why is None and manifest["epoch"] == step and not _differences(directory / str(step), manifest)


def _show(key: str, value: Any) -> str:
    """A setting's value as the message shows it (checksums shortened)."""
    if value is None:
        return "(none)"
    if key.endswith("sha256") and isinstance(value, str):
        return value[:12] + "..."
    return json.dumps(value) if isinstance(value, str) else str(value)


def settings_differences(saved: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """Each setting that differs, named as on the command line, with both values."""
    out = []
    for key in sorted(set(saved) | set(now)):
        if saved.get(key) != now.get(key):
            name = SETTING_NAMES.get(key, key)
            default = UNRECORDED_DEFAULTS.get(key)
            out.append(f"{name}: {_show(key, saved.get(key, default))} in the checkpoint, {_show(key, now.get(key, default))} now")
    return out


@dataclass(frozen=True)
class Resume:
    """Where ``--resume`` continues: the verified step (``None``: from scratch), and notes on what was removed."""

    step: int | None
    notes: tuple[str, ...]


def resumable(directory: Path, settings: dict[str, Any]) -> Resume:
    """Verify the newest checkpoint in ``directory`` against ``settings``; JAX-free.

    Removes incomplete saves newer than it (steps without a manifest).
    Raises E0705 for a corrupt checkpoint or one made with other settings.
    """
    found = steps(directory)
    manifests = {s: _read_manifest(directory / str(s)) for s in reversed(found)}
    candidate = next((s for s in reversed(found) if manifests[s] != (None, None)), None)
    newer = tuple(s for s in found if candidate is None or s > candidate)
    if candidate is not None:
        manifest = _verify(directory, candidate, *manifests[candidate])
        diff = settings_differences(manifest["settings"], settings)
        if diff:
            raise _error(
                f"the checkpoint of epoch {candidate} in {directory} was made with other settings",
                notes=tuple(diff),
                help="resume with the same file, data and options, or train into a new --out",
            )
    if len(newer) > 1:
        # The manifest follows each save at once, so only the newest step can
        # lack one; several without are not this run's interrupted save.
        raise _error(
            f"the checkpoints of epochs {', '.join(map(str, newer))} in {directory} have no manifest",
            help="they were not saved by this version of catnet, or not completely: delete them, or train into a new --out",
        )
    notes = []
    for s in newer:
        try:
            shutil.rmtree(directory / str(s))
        except OSError as e:
            raise CatnetError("E0703", f"cannot remove the incomplete checkpoint {directory / str(s)}: {e.strerror or e}")
        notes.append(f"the checkpoint of epoch {s} was incomplete (the run stopped while saving it): removed it")
    return Resume(candidate, tuple(notes))


def best_epoch(directory: Path) -> int | None:
    """The best epoch (lowest validation loss) that the newest verified checkpoint records; JAX-free.

    ``None`` for a run without a validation set.  The step of that epoch is
    kept in ``directory`` (the checkpoint manager never deletes it), so
    ``verified_step(directory, best_epoch(directory))`` reads its weights.
    """
    step = verified_step(directory)
    manifest, _ = _read_manifest(directory / str(step))
    assert manifest is not None  # verified_step read it
    best = manifest.get("best_epoch")
    return best if isinstance(best, int) else None


def newest_complete(directory: Path) -> int | None:
    """The newest step whose save finished (it has a manifest, intact or not); JAX-free."""
    return next((s for s in reversed(steps(directory)) if _read_manifest(directory / str(s)) != (None, None)), None)


def verified_step(directory: Path, step: int | None = None) -> int:
    """The step to read (``step``, or the newest with a manifest), verified; JAX-free."""
    found = steps(directory)
    if step is None:
        step = newest_complete(directory)
        if step is None:
            raise CatnetError(
                "E0703" if not found else "E0705",
                f"no checkpoint in {directory}" if not found else f"no checkpoint in {directory} has a manifest",
                help=None if not found else "these checkpoints were not saved completely (or by an older catnet)",
            )
    elif step not in found:
        raise CatnetError("E0703", f"no checkpoint of epoch {step} in {directory}", help=f"saved epochs: {', '.join(map(str, found)) or 'none'}")
    manifest, why = _read_manifest(directory / str(step))
    if manifest is None and why is None:
        why = f"{MANIFEST} is missing (the save did not finish)"
    _verify(directory, step, manifest, why)
    return step


# -- orbax --------------------------------------------------------------------------------


def _hold(epoch: int) -> None:
    """Wait as :data:`HOLD_ENV` asks, if it names this epoch."""
    at, _, seconds = os.environ.get(HOLD_ENV, "").partition(":")
    if at == str(epoch):
        time.sleep(float(seconds or 60))


@contextlib.contextmanager
def _interrupts_deferred() -> Iterator[None]:
    """Hold Ctrl-C until the block ends, then raise it.

    Orbax saves on background threads; a KeyboardInterrupt in the main
    thread mid-save leaves them writing while the interpreter shuts down
    (their tracebacks, or an abort).  A save takes milliseconds to seconds,
    so finishing it first costs little and always leaves a whole step.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous if previous is not None else signal.SIG_DFL)
    if caught:
        raise KeyboardInterrupt


def _ranked(metrics: dict[str, Any]) -> tuple[float, int]:
    """How a step ranks for keeping: by validation loss, then by epoch (lower is better; read in reverse)."""
    return (float(metrics["val_loss"]), int(metrics["epoch"]))


class Orbax:
    """The orbax manager of a run's ``checkpoints`` folder (imports orbax, so JAX).

    With ``keep_best`` (a run with a validation set) each save carries the
    epoch's validation loss as orbax metrics, and orbax's preservation
    policy keeps the newest two steps and the best one.
    """

    def __init__(self, out: Path, keep_best: bool = False) -> None:
        import orbax.checkpoint as ocp

        self._ocp = ocp
        self.dir = (out / "checkpoints").absolute()
        policies = ocp.checkpoint_managers
        keep: dict[str, Any] = (
            # BestN keeps the last of its ranking: sorted in reverse, that is the lowest loss
            {"preservation_policy": policies.AnyPreservationPolicy(
                [policies.LatestN(n=2), policies.BestN(get_metric_fn=_ranked, reverse=True, n=1)]
            )}
            if keep_best
            else {"max_to_keep": 2}
        )
        try:
            self.manager = ocp.CheckpointManager(
                self.dir,
                options=ocp.CheckpointManagerOptions(
                    create=True, enable_async_checkpointing=False, cleanup_tmp_directories=True, **keep
                ),
            )
        except OSError as e:
            raise CatnetError("E0703", f"cannot use {self.dir} for checkpoints: {e.strerror or e}")

    def save(
        self,
        epoch: int,
        state: dict[str, Any],
        meta: dict[str, Any],
        settings: dict[str, Any],
        val_loss: float | None = None,
        best_epoch: int | None = None,
    ) -> None:
        """Save a step, wait for orbax to commit it, then write its manifest; Ctrl-C waits for the end.

        ``val_loss`` ranks the step for keeping (a manager made with
        ``keep_best``); ``best_epoch`` goes into the manifest.
        """
        ocp = self._ocp
        metrics = {"val_loss": val_loss, "epoch": epoch} if val_loss is not None else None
        try:
            with _interrupts_deferred():
                self.manager.save(
                    epoch,
                    args=ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)),
                    metrics=metrics,
                )
                self.manager.wait_until_finished()
                _hold(epoch)
                # every process saved its shards; one writes the manifest, and none goes on before it exists
                if ocp.multihost.process_index() == 0:
                    write_manifest(self.dir / str(epoch), epoch, settings, best_epoch)
                ocp.multihost.sync_global_processes(f"catnet-manifest-{epoch}")
        except OSError as e:
            raise CatnetError("E0703", f"cannot write the checkpoint of epoch {epoch} to {self.dir}: {e.strerror or e}")

    def restore(self, epoch: int, like: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """The state shaped like ``like`` and the JSON metadata of a verified step; E0705 if orbax fails."""
        import jax

        ocp = self._ocp
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
        try:
            got = self.manager.restore(
                epoch, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore())
            )
        except Exception as e:  # orbax's errors have no common base; any of them means the step is unusable
            raise _unreadable(self.dir / str(epoch), e)
        meta = got["meta"]
        if not isinstance(meta, dict) or not isinstance(meta.get("history"), list):
            raise _error(f"the metadata of the checkpoint in {self.dir / str(epoch)} is not what catnet saved")
        return got["state"], meta

    def close(self) -> None:
        self.manager.close()


def _unreadable(step_dir: Path, e: Exception) -> CatnetError:
    first = (str(e).strip().splitlines() or [""])[0][:300]
    return _error(
        f"orbax cannot restore the checkpoint in {step_dir}: {type(e).__name__}: {first}",
        help="the checkpoint does not fit this model (was it written by another version?); train into a new --out",
    )


def restore_state(directory: Path, step: int) -> tuple[Any, Any]:
    """The ``params`` and ``rest`` trees of a verified step (imports orbax).

    ``rest`` holds what else the model keeps between steps: batch
    statistics and the random stream.  Both are nested dicts by module path,
    each variable a dict with its ``value``.
    """
    import orbax.checkpoint as ocp

    try:
        with ocp.CheckpointManager(directory.absolute()) as manager:
            got = manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore()))
    except Exception as e:  # see Orbax.restore
        raise _unreadable(directory / str(step), e)
    state = got["state"]
    if not isinstance(state, dict) or "params" not in state:
        raise _error(f"the checkpoint in {directory / str(step)} holds no parameters")
    return state["params"], state.get("rest", {})


def restore_params(directory: Path, step: int) -> Any:
    """The ``params`` tree of a verified step, as numpy arrays (imports orbax)."""
    return restore_state(directory, step)[0]
