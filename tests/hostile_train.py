"""Hostile inputs to ``catnet train``: option values, data files, checkpoints.

Every case must fail before JAX is imported (within 2 s): options with
E0703, data with E0701 (E0001 for a file that cannot be opened), and a
corrupt or mismatched checkpoint with E0705.  The checkpoint cases copy a
tiny run made once (``trained_run``) and damage one file of its newest step.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import struct
import tempfile
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np

from hostile import ROOT, Case, run_catnet

#: A tiny classifier: 4 reals in, 3 logits out (67 parameters).
TINY = "object X = R[4]\nobject Y = R[3]\nmorphism net : X -> Y = dense(features=8) ; relu ; dense\nmain net\n"
#: A token model whose `embed` reads ids 0..15.
TOKENS = "object Tokens = Seq[T](Z[])\nmorphism lm : Tokens -> Seq[T](R[16]) = embed(vocab=16, features=8) ; dense\nmain lm\n"
#: A regression: float targets of the output's shape.
REGRESS = "morphism f : R[4] -> R[4] = dense\nmain f\n"
#: 64 layers of 65536 × 65536 weights: 1 TiB of parameters, 4 TiB to train.
HUGE = "object W = R[65536]\nmorphism f : W -> W = repeat 64 dense\nmain f\n"


def tiny_data(path: Path, n: int = 48) -> None:
    """The tiny classifier's data: ``x`` (n, 4) float32, ``y`` labels 0..2."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    np.savez(path, x=x, y=(x.sum(axis=1) > 0).astype(np.int32) + (x[:, 0] > 1).astype(np.int32))


def _tiny(d: Path, *args: str) -> list[str]:
    (d / "tiny.cat").write_text(TINY)
    tiny_data(d / "tiny.npz")
    return ["train", "tiny.cat", "--data", "tiny.npz", "--out", "run", "--quiet", *args]


def _with_npz(source: str, **arrays: np.ndarray) -> Callable[[Path], list[str]]:
    def setup(d: Path) -> list[str]:
        (d / "m.cat").write_text(source)
        np.savez(d / "d.npz", **arrays)
        return ["train", "m.cat", "--data", "d.npz", "--out", "run", "--quiet"]

    return setup


def _with_bytes(write: Callable[[Path], None]) -> Callable[[Path], list[str]]:
    def setup(d: Path) -> list[str]:
        (d / "tiny.cat").write_text(TINY)
        write(d / "d.npz")
        return ["train", "tiny.cat", "--data", "d.npz", "--out", "run", "--quiet"]

    return setup


# -- data files --------------------------------------------------------------------------------


def _empty_npz(p: Path) -> None:
    np.savez(p)


def _npy_renamed(p: Path) -> None:
    np.save(p.with_suffix(".npy"), np.zeros((8, 4), np.float32))
    p.with_suffix(".npy").rename(p)


def _not_zip(p: Path) -> None:
    p.write_bytes(b"x,y\n1,2\n" * 10)


def _truncated_zip(p: Path) -> None:
    tiny_data(p)
    p.write_bytes(p.read_bytes()[:300])


def _flipped_zip(p: Path) -> None:
    # a byte of x's data flipped inside a compressed archive: the CRC no longer matches
    x = np.random.default_rng(0).normal(size=(48, 4)).astype(np.float32)
    np.savez_compressed(p, x=x, y=np.zeros(48, np.int32))
    raw = bytearray(p.read_bytes())
    raw[200] ^= 0xFF
    p.write_bytes(bytes(raw))


def _member(name: str, header: dict, data: bytes) -> tuple[str, bytes]:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, header)
    return name, buf.getvalue() + data


def _huge_header(p: Path) -> None:
    # 16 bytes of data under a header that declares 2**31 × 64 floats (512 GiB)
    x = _member("x.npy", {"descr": "<f4", "fortran_order": False, "shape": (2**31, 64)}, b"\0" * 16)
    y = _member("y.npy", {"descr": "<i4", "fortran_order": False, "shape": (2**31,)}, b"\0" * 16)
    with zipfile.ZipFile(p, "w") as z:
        for name, raw in (x, y):
            z.writestr(name, raw)


def _lying_sizes(p: Path) -> None:
    # a deflated member whose zip headers claim 3 GB uncompressed from 73 bytes
    with zipfile.ZipFile(p, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("x.npy", _npy(np.zeros((4, 4), np.float32)))
        z.writestr("y.npy", _npy(np.zeros(4, np.int32)))
    raw = bytearray(p.read_bytes())
    struct.pack_into("<I", raw, raw.find(b"PK\x01\x02") + 24, 3_000_000_000)  # central directory entry
    struct.pack_into("<I", raw, raw.find(b"PK\x03\x04") + 22, 3_000_000_000)  # local header
    p.write_bytes(bytes(raw))


def _negative_shape(p: Path) -> None:
    x = _member("x.npy", {"descr": "<f4", "fortran_order": False, "shape": (-3, 4)}, b"")
    with zipfile.ZipFile(p, "w") as z:
        z.writestr(*x)
        z.writestr("y.npy", _npy(np.zeros(8, np.int32)))


def _npy(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=True)
    return buf.getvalue()


def _object_x(p: Path) -> None:
    x = np.empty((8, 4), dtype=object)
    x[:] = 1.0
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("x.npy", _npy(x))
        z.writestr("y.npy", _npy(np.zeros(8, np.int32)))


def _fifo(d: Path) -> list[str]:
    (d / "tiny.cat").write_text(TINY)
    os.mkfifo(d / "d.npz")
    return ["train", "tiny.cat", "--data", "d.npz", "--out", "run", "--quiet"]


X = np.random.default_rng(1).normal(size=(16, 4)).astype(np.float32)
LABELS = np.arange(16, dtype=np.int32) % 3
NAN_X = X.copy()
NAN_X[5, 2] = np.nan
NAN_X[9, 0] = np.inf
INF_Y = X.copy()
INF_Y[3, 1] = -np.inf
IDS = np.random.default_rng(2).integers(0, 16, (12, 6)).astype(np.int32)
IDS_HIGH = IDS.copy()
IDS_HIGH[4, 2] = 999
IDS_NEGATIVE = IDS.copy()
IDS_NEGATIVE[0, 1] = -1

DATA = [
    Case("train-npz-empty", _with_bytes(_empty_npz), "E0701", contains=("holds no arrays",)),
    Case("train-npy-renamed-npz", _with_bytes(_npy_renamed), "E0701", contains=("single .npy array",)),
    Case("train-npz-not-a-zip", _with_bytes(_not_zip), "E0701", contains=("not an .npz archive",)),
    Case("train-npz-truncated", _with_bytes(_truncated_zip), "E0701", contains=("tiny.cat:3:10:",)),
    Case("train-npz-bad-crc", _with_bytes(_flipped_zip), "E0701", contains=("Bad CRC-32",)),
    Case("train-npz-huge-header", _with_bytes(_huge_header), "E0701", contains=("(2147483648, 64)", "512 GiB")),
    Case("train-npz-zip-sizes-lie", _with_bytes(_lying_sizes), "E0701", contains=("claims 2.8 GiB of data",)),
    Case("train-npz-negative-shape", _with_bytes(_negative_shape), "E0701", contains=("impossible shape",)),
    Case("train-npz-object-dtype", _with_bytes(_object_x), "E0701", contains=("Python objects",)),
    Case("train-npz-complex-x", _with_npz(TINY, x=X.astype(np.complex64), y=LABELS), "E0701", contains=("complex",)),
    Case("train-npz-structured-x", _with_npz(TINY, x=np.zeros((16, 4), [("a", "<f4")]), y=LABELS), "E0701", contains=("structured",)),
    Case("train-npz-nonfinite-x", _with_npz(TINY, x=NAN_X, y=LABELS), "E0701", contains=("2 non-finite values", "x[5, 2] = nan")),
    Case("train-npz-nonfinite-y", _with_npz(REGRESS, x=X, y=INF_Y), "E0701", contains=("y[3, 1] = -inf",)),
    Case("train-npz-float64-overflow", _with_npz(TINY, x=np.full((16, 4), 1e300), y=LABELS), "E0701", contains=("too large for float32",)),
    Case("train-npz-label-out-of-range", _with_npz(TINY, x=X, y=LABELS + 5), "E0701", contains=("range over 5..7",)),
    Case("train-npz-token-id-too-large", _with_npz(TOKENS, x=IDS_HIGH, y=IDS), "E0701", contains=("x[4, 2] = 999", "0..15")),
    Case("train-npz-token-id-negative", _with_npz(TOKENS, x=IDS_NEGATIVE, y=IDS), "E0701", contains=("x[0, 1] = -1",)),
    Case("train-npz-fifo", _fifo, "E0001", contains=("not a regular file",)),
    Case("train-model-too-big-for-memory", _with_npz(HUGE, x=np.zeros((4, 65536), np.float32), y=np.zeros((4, 65536), np.float32)),
         "E0603", contains=("m.cat:2:10:", "--skip-memory-check")),
]


# -- option values -------------------------------------------------------------------------------


def _out_is_file(d: Path) -> list[str]:
    args = _tiny(d)
    (d / "run").write_text("not a directory")
    return args


def _out_under_file(d: Path) -> list[str]:
    (d / "plain").write_text("a file")
    return _tiny(d, "--out", "plain/run")


def _metrics_is_dir(d: Path) -> list[str]:
    (d / "m").mkdir()
    return _tiny(d, "--metrics-out", "m")


def _metrics_under_file(d: Path) -> list[str]:
    (d / "plain").write_text("a file")
    return _tiny(d, "--metrics-out", "plain/m.json")


def _option(*args: str) -> Callable[[Path], list[str]]:
    return lambda d: _tiny(d, *args)


def _import_outside_root(d: Path) -> list[str]:
    args = _tiny(d)
    (d / "sub").mkdir()
    (d / "sub" / "u.cat").write_text('import "../tiny.cat"\nmorphism g : X -> Y = net\nmain g\n')
    return ["train", "sub/u.cat", "--root", "sub", *args[2:]]


OPTIONS = [
    Case("train-seed-negative", _option("--seed", "-1"), "E0703", contains=("--seed must be at least 0, not -1",)),
    Case("train-seed-2-to-the-64", _option("--seed", str(2**64)), "E0703", contains=("--seed must be at most 4294967295",)),
    Case("train-seed-not-a-number", _option("--seed", "abc"), "E0703", contains=("whole number",)),
    Case("train-seed-4301-digits", _option("--seed", "9" * 4301), "E0703", contains=("whole number",)),
    Case("train-epochs-zero", _option("--epochs", "0"), "E0703", contains=("--epochs must be at least 1",)),
    Case("train-epochs-huge", _option("--epochs", "10000000000"), "E0703", contains=("--epochs must be at most",)),
    Case("train-batch-size-zero", _option("--batch-size", "0"), "E0703", contains=("--batch-size",)),
    Case("train-batch-size-float", _option("--batch-size", "1.5"), "E0703", contains=("whole number",)),
    Case("train-lr-nan", _option("--lr", "nan"), "E0703", contains=("--lr must be a positive number",)),
    Case("train-lr-inf", _option("--lr", "inf"), "E0703", contains=("--lr must be a positive number",)),
    Case("train-lr-negative", _option("--lr", "-0.1"), "E0703", contains=("--lr",)),
    Case("train-test-fraction-one", _option("--test-fraction", "1"), "E0703", contains=("--test-fraction",)),
    Case("train-test-fraction-nan", _option("--test-fraction", "nan"), "E0703", contains=("--test-fraction",)),
    Case("train-out-is-a-file", _out_is_file, "E0703", contains=("is a file, not a directory",)),
    Case("train-out-not-creatable", _out_under_file, "E0703", contains=("cannot create --out",)),
    Case("train-metrics-out-is-a-directory", _metrics_is_dir, "E0703", contains=("--metrics-out m is a directory",)),
    Case("train-metrics-out-not-creatable", _metrics_under_file, "E0703", contains=("cannot create --metrics-out",)),
    Case("train-import-outside-root", _import_outside_root, "E0004", contains=("sub/u.cat:1:1:",)),
]


# -- checkpoints ----------------------------------------------------------------------------------

#: What the cached run depends on: a change to any of these makes a new one.
_CACHE_INPUTS = ("catnet/checkpoints.py", "catnet/train.py")


def _cache_dir() -> Path:
    h = hashlib.sha256(TINY.encode())
    for rel in _CACHE_INPUTS:
        h.update((ROOT / rel).read_bytes())
    return Path(tempfile.gettempdir()) / f"catnet-hostile-train-{h.hexdigest()[:16]}"


def trained_run(d: Path, epochs: int = 2) -> list[str]:
    """Copy a tiny trained run (``tiny.cat``, ``tiny.npz``, ``run/``) into ``d``; its args for ``--resume``.

    The run is trained once (two epochs, two checkpoints) and cached under
    the system temp dir, keyed by the code that writes checkpoints.
    """
    cache = _cache_dir()
    if not cache.is_dir():
        build = Path(tempfile.mkdtemp(prefix=cache.name + ".build-"))
        try:
            result = run_catnet(_tiny(build, "--epochs", str(epochs)), build, timeout=300)
            assert result.status == 0, result.stderr
            os.rename(build, cache)
        except OSError:  # built meanwhile by another process
            pass
        finally:
            shutil.rmtree(build, ignore_errors=True)
    for name in ("tiny.cat", "tiny.npz"):
        shutil.copy2(cache / name, d / name)
    shutil.copytree(cache / "run", d / "run", symlinks=True)
    return ["train", "tiny.cat", "--data", "tiny.npz", "--out", "run", "--quiet", "--epochs", "3", "--resume"]


def newest_step(d: Path) -> Path:
    steps = sorted((p for p in (d / "run" / "checkpoints").iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
    return steps[-1]


def _array_file(step: Path) -> Path:
    """The largest orbax data file of a step (it holds the arrays)."""
    return max((p for p in (step / "state").rglob("*") if p.is_file() and p.parent.name == "d"), key=lambda p: p.stat().st_size)


def flip(path: Path, at: float = 0.5) -> None:
    """Invert one byte, ``at`` of the way into the file."""
    raw = bytearray(path.read_bytes())
    raw[min(len(raw) - 1, int(len(raw) * at))] ^= 0xFF
    path.write_bytes(bytes(raw))


def truncate(path: Path) -> None:
    """Cut the file to half its length."""
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])


def _damaged(pick: Callable[[Path], Path], damage: Callable[[Path], None]) -> Callable[[Path], list[str]]:
    def setup(d: Path) -> list[str]:
        args = trained_run(d)
        damage(pick(newest_step(d)))
        return args

    return setup


def _remove_state(d: Path) -> list[str]:
    args = trained_run(d)
    shutil.rmtree(newest_step(d) / "state")
    return args


def _meta_not_object(d: Path) -> list[str]:
    args = trained_run(d)
    (newest_step(d) / "meta" / "metadata").write_text("[1, 2, 3]")
    return args


def _resume_with(*extra: str) -> Callable[[Path], list[str]]:
    return lambda d: trained_run(d) + list(extra)


def _edited_source(d: Path) -> list[str]:
    args = trained_run(d)
    (d / "tiny.cat").write_text(TINY.replace("relu", "gelu"))
    return args


def _checkpoints_is_a_file(d: Path) -> list[str]:
    args = _tiny(d, "--resume")
    (d / "run").mkdir()
    (d / "run" / "checkpoints").write_text("not a directory")
    return args


def _existing_run(d: Path) -> list[str]:
    args = trained_run(d)
    return [a for a in args if a != "--resume"]


CORRUPT = "is corrupt"
INTACT = "the checkpoint of epoch 1 is intact"

CHECKPOINTS = [
    Case("train-ckpt-array-flipped", _damaged(_array_file, flip), "E0705", contains=(CORRUPT, "sha256 differs", INTACT)),
    Case("train-ckpt-array-truncated", _damaged(_array_file, truncate), "E0705", contains=(CORRUPT, "bytes, but had", INTACT)),
    Case("train-ckpt-orbax-metadata-flipped", _damaged(lambda s: s / "state" / "_METADATA", flip), "E0705", contains=("state/_METADATA",)),
    Case("train-ckpt-json-metadata-truncated", _damaged(lambda s: s / "meta" / "metadata", truncate), "E0705", contains=("meta/metadata",)),
    Case("train-ckpt-json-metadata-not-object", _meta_not_object, "E0705", contains=("meta/metadata",)),
    Case("train-ckpt-state-folder-missing", _remove_state, "E0705", contains=("the folder state/ is missing",)),
    Case("train-ckpt-manifest-truncated", _damaged(lambda s: s / "catnet-manifest.json", truncate), "E0705", contains=("not valid JSON",)),
    Case("train-ckpt-manifest-flipped", _damaged(lambda s: s / "catnet-manifest.json", lambda p: flip(p, 0.4)), "E0705", contains=("catnet-manifest.json",)),
    Case("train-ckpt-file-missing", _damaged(lambda s: s / "state" / "_sharding", Path.unlink), "E0705", contains=("state/_sharding is missing",)),
    Case("train-resume-other-optimizer", _resume_with("--optimizer", "sgd"), "E0705", contains=('--optimizer: "adam" in the checkpoint, "sgd" now',)),
    Case("train-resume-other-lr-and-seed", _resume_with("--lr", "0.5", "--seed", "4"), "E0705", contains=("--lr: 0.001 in the checkpoint, 0.5 now", "--seed: 0 in the checkpoint, 4 now")),
    Case("train-resume-edited-file", _edited_source, "E0705", contains=("the .cat file's contents",)),
    Case("train-existing-run-without-resume", _existing_run, "E0703", contains=("already holds a run", "--resume")),
    Case("train-checkpoints-folder-is-a-file", _checkpoints_is_a_file, "E0703", contains=("is not a directory",)),
]

CASES = DATA + OPTIONS + CHECKPOINTS
