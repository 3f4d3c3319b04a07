"""Checkpoints verify themselves: damage is refused, interruptions resume exactly.

Every file orbax writes for a step is listed with its size and sha256 in the
step's ``catnet-manifest.json`` (``catnet/checkpoints.py``), so no file is
"merely informational" here: a flipped byte or a cut in any of them —
array data, orbax's metadata, the commit markers, the JSON metadata, the
manifest itself — is refused by ``--resume`` with E0705 naming the file,
before JAX is imported.  And a run killed at any moment, including between
orbax's commit and the manifest write, resumes to bit-identical parameters.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from catnet import checkpoints as ckpt
from catnet.cli import main
from catnet.errors import CatnetError
from conftest import ROOT
from hostile_train import TINY, flip, newest_step, trained_run, truncate

pytest.importorskip("orbax.checkpoint")

from catnet.train import load_params  # noqa: E402


def _kind(rel: str) -> str:
    """Which kind of checkpoint file a step-relative path is."""
    if rel == ckpt.MANIFEST:
        return "catnet manifest"
    if rel == "meta/metadata":
        return "JSON metadata"
    if rel.endswith("commit_success.txt"):
        return "commit marker"
    if rel.startswith("state/") and "/d/" in f"/{rel}" and Path(rel).parent.name == "d":
        return "array data"
    return "orbax metadata"


def _copy(d: Path) -> list[str]:
    """Copy the tiny two-epoch run into ``d``; the arguments that resume it, with absolute paths."""
    d.mkdir(exist_ok=True)
    return [str(d / a) if a in ("tiny.cat", "tiny.npz", "run") else a for a in trained_run(d)]


@pytest.fixture
def run_dir(tmp_path: Path) -> tuple[Path, list[str]]:
    return tmp_path, _copy(tmp_path)


def _resume_refused(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "error[E0705]" in err and "Traceback" not in err, err
    return err


def _every_file(d: Path) -> list[str]:
    step = newest_step(d)
    return sorted(p.relative_to(step).as_posix() for p in step.rglob("*") if p.is_file())


@pytest.mark.parametrize("damage", [flip, truncate], ids=["flipped", "truncated"])
def test_damage_to_any_checkpoint_file_is_refused(tmp_path: Path, damage, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: ANN001
    _copy(tmp_path / "probe")
    files = _every_file(tmp_path / "probe")
    kinds = {_kind(rel) for rel in files}
    assert kinds == {"catnet manifest", "JSON metadata", "commit marker", "array data", "orbax metadata"}, files
    for i, rel in enumerate(files):
        d = tmp_path / f"case{i}"
        args = _copy(d)
        damage(newest_step(d) / rel)
        err = _resume_refused(args, capsys)
        assert rel in err, f"{rel} ({_kind(rel)}): {err}"
        assert "the checkpoint of epoch 1 is intact" in err, err


def test_missing_extra_and_moved_files_are_refused(run_dir: tuple[Path, list[str]], capsys: pytest.CaptureFixture[str]) -> None:
    d, args = run_dir
    step = newest_step(d)
    (step / "state" / "array_metadatas" / "process_0").unlink()
    (step / "state" / "stray").write_bytes(b"x")
    err = _resume_refused(args, capsys)
    assert "state/array_metadatas/process_0 is missing" in err and "state/stray was not part of the saved checkpoint" in err


def test_a_manifest_edited_to_match_other_data_is_refused(run_dir: tuple[Path, list[str]], capsys: pytest.CaptureFixture[str]) -> None:
    d, args = run_dir
    path = newest_step(d) / ckpt.MANIFEST
    body = json.loads(path.read_text())
    body["settings"]["lr"] = 0.5  # as if to resume with other options
    path.write_text(json.dumps(body))
    assert "does not match its own checksum" in _resume_refused(args, capsys)


def test_a_renamed_step_folder_is_refused(run_dir: tuple[Path, list[str]], capsys: pytest.CaptureFixture[str]) -> None:
    d, args = run_dir
    newest_step(d).rename(d / "run" / "checkpoints" / "5")
    assert "records epoch 2, but the folder is that of epoch 5" in _resume_refused(args, capsys)


def test_without_an_intact_earlier_step_the_help_says_so(run_dir: tuple[Path, list[str]], capsys: pytest.CaptureFixture[str]) -> None:
    d, args = run_dir
    for step in (d / "run" / "checkpoints").iterdir():
        flip(step / "meta" / "metadata")
    err = _resume_refused(args, capsys)
    assert "the checkpoint of epoch 2" in err and "no earlier checkpoint is intact" in err


def test_load_params_verifies(run_dir: tuple[Path, list[str]]) -> None:
    d, _ = run_dir
    assert all(v.dtype == np.float32 for v in load_params(d / "run").values())
    flip(newest_step(d) / "meta" / "metadata")
    with pytest.raises(CatnetError) as info:
        load_params(d / "run")
    assert info.value.code == "E0705" and "meta/metadata" in info.value.message
    assert load_params(d / "run", epoch=1)  # the earlier step is intact and still readable
    with pytest.raises(CatnetError) as info:
        load_params(d / "run", epoch=7)
    assert info.value.code == "E0703" and "saved epochs: 1, 2" in (info.value.help or "")


def test_orbax_failing_on_a_verified_step_is_e0705(run_dir: tuple[Path, list[str]]) -> None:
    # A checkpoint that passes the manifest but that orbax cannot read (here:
    # rewritten together with a new manifest) is still a clean E0705.
    d, _ = run_dir
    step = newest_step(d)
    (step / "state" / "_METADATA").write_text("{}")
    body = json.loads((step / ckpt.MANIFEST).read_text())
    ckpt.write_manifest(step, body["epoch"], body["settings"])
    with pytest.raises(CatnetError) as info:
        load_params(d / "run")
    assert info.value.code == "E0705" and "orbax cannot restore" in info.value.message


# -- interruptions --------------------------------------------------------------------------


#: Enough steps per epoch that a kill lands inside training, not only between epochs.
EPOCHS, N, BATCH, SEED = 24, 480, 8, 5


def _chain_inputs(d: Path) -> list[str]:
    (d / "tiny.cat").write_text(TINY)
    rng = np.random.default_rng(3)
    x = rng.normal(size=(N, 4)).astype(np.float32)
    np.savez(d / "tiny.npz", x=x, y=(x.sum(axis=1) > 0).astype(np.int32) + (x[:, 0] > 1).astype(np.int32))
    return [str(d / "tiny.cat"), "--data", str(d / "tiny.npz"), "--epochs", str(EPOCHS), "--batch-size", str(BATCH), "--seed", str(SEED)]


def _killed(args: list[str], out: Path, delay: float, hold: int | None, cache: Path) -> str:
    """Run ``train --resume`` in a child, SIGKILL it ``delay`` s after its first finished epoch; its stderr.

    With ``hold``, the child waits between orbax's commit of that epoch and
    the manifest write, and is killed there, once the step folder exists.
    """
    # JAX's persistent compilation cache: the links after the first skip most
    # of the compiling (the same XLA programs, so the same numbers)
    env = dict(
        os.environ, PYTHONPATH=str(ROOT), JAX_PLATFORMS="cpu", JAX_COMPILATION_CACHE_DIR=str(cache),
        JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0", JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0",
    )
    if hold is not None:
        env[ckpt.HOLD_ENV] = str(hold)
    cmd = [sys.executable, "-m", "catnet", "train", *args, "--out", str(out), "--resume"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    epoch_done = threading.Event()

    def read() -> None:
        assert proc.stderr is not None
        with proc.stderr:
            for line in proc.stderr:
                lines.append(line)
                if line.startswith("epoch "):
                    epoch_done.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    deadline = time.monotonic() + 120
    if hold is not None:
        step = out / "checkpoints" / str(hold)
        while not step.is_dir() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        assert not (step / ckpt.MANIFEST).exists()
    else:
        epoch_done.wait(timeout=120)
        time.sleep(delay)
    assert proc.poll() is None, "the run ended before it was killed:\n" + "".join(lines)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    reader.join(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    return "".join(lines)


def test_sigkill_at_ten_moments_resumes_to_identical_parameters(tmp_path: Path) -> None:
    args = _chain_inputs(tmp_path)
    assert main(["train", "--quiet", *args, "--out", str(tmp_path / "whole")]) == 0
    rng = random.Random(11)
    out = tmp_path / "cut"
    logs = []
    for i in range(10):
        latest = max(ckpt.steps(out / "checkpoints"), default=0)
        # the fourth kill lands between orbax's commit and the manifest write
        logs.append(_killed(args, out, rng.uniform(0.0, 0.1), latest + 1 if i == 3 else None, tmp_path / "jax-cache"))
    assert "was incomplete" in logs[4], logs[4]
    assert max(ckpt.steps(out / "checkpoints")) < EPOCHS, "every kill must land before the end"
    assert main(["train", "--quiet", *args, "--out", str(out), "--resume"]) == 0
    whole, cut = load_params(tmp_path / "whole"), load_params(out)
    assert whole.keys() == cut.keys() and all(np.array_equal(whole[k], cut[k]) for k in whole)
