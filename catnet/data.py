"""Training data for ``catnet train``, checked against the entry's type.

A data set is one array per domain wire (``inputs``) and one ``target``
array, all with the examples on the first axis.  The sources:

* ``digits``: scikit-learn's bundled 8×8 digit images (1797 of them, real
  data, no download), pixels scaled to ``[0, 1]`` and shaped to fit the
  domain wire (``R[64]`` or ``R[8, 8, 1]``); the target is the class label
  when the codomain is 10 logits, and the image itself when the codomain is
  an image (an autoencoder);
* ``digit_sums``: sets of ``n`` digit images, ``R[n, 64]`` (a set for
  ``S(n)`` to permute), labelled with the sum of their digits, a class of
  ``0..9n`` (logits ``R[9n + 1]``); the images are split into train and test
  first and each set is drawn from one side, so no image is in both
  (:func:`digit_sums`);
* ``moons``: scikit-learn's two moons (``catnet.flows.datasets``), 2000
  unlabelled points of ``R[2]``, data for a flow;
* the bundle data sets of ``catnet.bundles.datasets.DATASETS`` (``torus``,
  ``iris``): total-space points ``x`` and their base points ``b``;
* ``PATH.npz``: arrays ``x`` (or ``x0``, ``x1``, ... for a product domain)
  and ``y``.

What the data feeds depends on how the entry trains (``kind``):
``"supervised"`` inputs and targets as above; ``"flow"`` (a flow trained by
likelihood) the inputs only, no targets (``y`` of an ``.npz`` is ignored;
the digits are dequantized, see :func:`load`); ``"bundle"`` (a
trivialization ``E -> B ⊗ F``) the total-space points ``x`` on the bundle
wire and the base points as the target (``y`` of an ``.npz``), checked
against the wire ``B``.  A bundle wire takes float arrays of its total
space's shape.

An objective (``catnet train --objective``, a morphism ending in ``R[]``)
takes the inputs and, with one wire more, the targets (:func:`load_objective`).

Everything is checked before training starts, against the entry's domain
and codomain: the keys, the per-example shapes (a symbol such as ``T``
matches any size, the same size wherever it occurs) and the dtypes
(``R`` wires take floats, ``Z`` wires integers).  Integer targets are class
labels for logits on the codomain's last axis; float targets must have the
codomain's shape.  Real values must be finite, and token ids that feed an
``embed(vocab=V)`` must lie in ``0..V-1``.

An ``.npz`` is not trusted: it must be a regular file holding a zip of
``.npy`` members; each needed member's header is read first (never a
pickle: ``allow_pickle=False``), and its dtype, its declared size against
the bytes the member holds, and the total against the available memory are
checked before any array is read.  Every problem is error E0701 (E0001 for a
file that cannot be opened).  This module does not import JAX.
"""

from __future__ import annotations

import math
import os
import stat
import zipfile
import zlib
from dataclasses import dataclass
from typing import Mapping

import numpy as np
from numpy.lib import format as npformat

from . import dims
from .budget import host_memory, size_text
from .errors import CatnetError, suggest
from .ir import Diagram, Ob, Ty


def _data_error(message: str, help: str | None = None, notes: tuple[str, ...] = ()) -> CatnetError:
    return CatnetError("E0701", message, None, notes=notes, help=help)


@dataclass(frozen=True)
class Dataset:
    """Inputs (one array per domain wire) and targets, examples first.

    The data of an objective (``catnet train --objective``) has no
    ``target``: every array it needs, targets included, is one of its
    inputs, one per wire of the objective's domain.
    """

    name: str
    inputs: tuple[np.ndarray, ...]
    target: np.ndarray | None
    #: Grey levels the inputs were dequantized from (``x = (level + u) / levels``), for bits per dimension.
    levels: int | None = None
    #: Where the data fixes its own test set: the examples from this index on (see :func:`split`).
    split_at: int | None = None

    def __len__(self) -> int:
        return int((self.target if self.target is not None else self.inputs[0]).shape[0])

    @property
    def labels(self) -> bool:
        """Whether the target holds class labels (integers)."""
        return self.target is not None and bool(np.issubdtype(self.target.dtype, np.integer))

    def take(self, index: np.ndarray) -> "Dataset":
        """The examples ``index``, without a fixed split."""
        target = self.target[index] if self.target is not None else None
        return Dataset(self.name, tuple(x[index] for x in self.inputs), target, self.levels)

    def with_inputs(self, inputs: tuple[np.ndarray, ...], target: np.ndarray | None) -> "Dataset":
        """The same examples with other inputs and targets (a transformed copy, e.g. rotated)."""
        return Dataset(self.name, inputs, target, self.levels, self.split_at)


def _described(ob: Ob) -> str:
    """``Tokens = Z[T]`` for a named wire, the structure otherwise."""
    return ob.structure() if ob.name is None or ob.name == ob.structure() else f"{ob.name} = {ob.structure()}"


def _shape_text(ob: Ob) -> str:
    return "(N, " + ", ".join(dims.show(d) for d in ob.shape) + ")" if ob.shape else "(N,)"


def _match(shape: tuple[int, ...], want: tuple[dims.Dim, ...], env: dict[str, int]) -> bool:
    """Whether an array's per-example shape fits a wire's, binding symbols."""
    if len(shape) != len(want):
        return False
    for n, d in zip(shape, want):
        d = dims.subst(d, env)
        if isinstance(d, int):
            if d != n:
                return False
            continue
        names = sorted(dims.symbols(d))
        if len(names) != 1 or d != dims.sym(names[0]):
            return False  # a compound size like `T * 2` with T unknown: be strict
        env[names[0]] = n
    return True


def _where(name: str, index: tuple[int, ...]) -> str:
    return f"{name}[{', '.join(map(str, index))}]"


def _first(mask: np.ndarray) -> tuple[int, ...]:
    """The index of the first true entry of a non-empty boolean mask."""
    return tuple(int(i) for i in np.unravel_index(int(np.argmax(mask)), mask.shape))


def _finite(name: str, x: np.ndarray, original: np.ndarray) -> np.ndarray:
    """``x`` (float32) if every value is finite; E0701 with the count and the first place otherwise."""
    bad = ~np.isfinite(x)
    count = int(np.count_nonzero(bad))
    if count:
        at = _first(bad)
        stored = original[at]
        why = f" ({stored.item()} as stored, too large for float32)" if np.isfinite(stored) else ""
        raise _data_error(
            f"`{name}` has {count} non-finite value{'s' if count > 1 else ''} (nan or inf); "
            f"the first is {_where(name, at)} = {x[at]}{why}",
            help="remove or repair those examples before training",
        )
    return x


def _float32(name: str, x: np.ndarray) -> np.ndarray:
    """``x`` as float32, every value finite (E0701 otherwise; an overflow to inf is reported as such)."""
    with np.errstate(over="ignore"):
        converted = x.astype(np.float32)
    return _finite(name, converted, x)


def _ids_in_range(name: str, x: np.ndarray, low: int, high: int, noun: str, context: str, help: str) -> None:
    """Refuse integers outside ``low..high``, naming how many and the first."""
    if not x.size:
        return
    lo, hi = int(x.min()), int(x.max())
    if lo >= low and hi <= high:
        return
    bad = (x < low) | (x > high)
    count = int(np.count_nonzero(bad))
    at = _first(bad)
    raise _data_error(
        f"`{name}` holds {count} {noun}{'s' if count != 1 else ''} outside {low}..{high}{context}; "
        f"the first is {_where(name, at)} = {int(x[at])}",
        help=help,
    )


_INT32 = (-(1 << 31), (1 << 31) - 1)


def _check_input(name: str, x: np.ndarray, ob: Ob, env: dict[str, int], vocab: int | None = None) -> np.ndarray:
    """An input array checked against its wire and converted (int32 ids, float32 reals).

    Integer ids that feed an ``embed(vocab=V)`` must lie in ``0..V-1``;
    other ids must fit in int32.  Real inputs must be finite.
    """
    _check_dtype(name, x.dtype, ob)
    if ob.base == "Z":
        if vocab is not None:
            _ids_in_range(
                name, x, 0, vocab - 1, "token id", f", the ids that `embed(vocab={vocab})` reads",
                help=f"map unknown tokens to a reserved id in 0..{vocab - 1}, or raise `vocab`",
            )
        else:
            _ids_in_range(name, x, *_INT32, "id", " (int32)", help="store ids that fit in 32 bits")
        x = x.astype(np.int32)
    else:
        x = _float32(name, x)
    if not _match(tuple(x.shape[1:]), ob.shape, env):
        raise _data_error(
            f"`{name}` has shape {tuple(x.shape)}, but the wire {ob} needs {_shape_text(ob)}",
            notes=(f"{ob} = {ob.structure()}; N is the number of examples",),
        )
    return x


def task(cod: Ty) -> Ob:
    """The one codomain wire training fits without an objective."""
    if len(cod) != 1 or cod.obs[0].base != "R":
        several = len(cod) > 1
        raise CatnetError(
            "E0702",
            f"`catnet train` fits a morphism with one real output wire, but this one returns {cod}",
            help=("to train a model with several outputs, " if several else "")
            + "write the training objective as a morphism ending in R[] (e.g. `cross_entropy(net(x), y)`) "
            "and pass --objective NAME"
            + ("" if several else "; or train a morphism that ends in logits or in one real wire"),
        )
    return cod.obs[0]


def _check_target(y: np.ndarray, cod: Ty, env: dict[str, int]) -> np.ndarray:
    ob = task(cod)
    if np.issubdtype(y.dtype, np.integer):
        if not ob.shape or not _match(tuple(y.shape[1:]), ob.shape[:-1], env):
            want = "(N, " + ", ".join(dims.show(d) for d in ob.shape[:-1]) + ")" if len(ob.shape) > 1 else "(N,)"
            raise _data_error(
                f"the labels `y` have shape {tuple(y.shape)}, but logits {ob} need labels of shape {want}",
                help="integer `y` holds class labels; use float `y` of the output's shape for regression",
            )
        classes = ob.shape[-1]
        if isinstance(classes, int) and y.size and (y.min() < 0 or y.max() >= classes):
            raise _data_error(
                f"the labels `y` range over {int(y.min())}..{int(y.max())}, but {ob} scores {classes} classes",
                help=f"labels must be 0..{classes - 1}",
            )
        _ids_in_range("y", y, 0, _INT32[1], "label", "", help="labels are class numbers 0, 1, ...")
        return y.astype(np.int32)
    _check_dtype("y", y.dtype, None)
    if not _match(tuple(y.shape[1:]), ob.shape, env):
        raise _data_error(
            f"the targets `y` have shape {tuple(y.shape)}, but the output {ob} needs {_shape_text(ob)}",
        )
    return _float32("y", y)


# -- reading an .npz without trusting it ------------------------------------------------

#: Errors that reading a damaged zip member or .npy header can raise.
_READ_ERRORS = (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError)


@dataclass(frozen=True)
class _Header:
    """What a member's ``.npy`` header declares, read before any data."""

    shape: tuple[int, ...]
    dtype: np.dtype
    nbytes: int  # prod(shape) * itemsize, as Python ints (never overflows)
    stored: int  # bytes of array data the member actually holds


def _open_archive(path: str) -> zipfile.ZipFile:
    """The ``.npz`` at ``path`` as a zip archive, after checking it is a regular file that is one."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise CatnetError("E0001", f"cannot read data file {path}: no such file", help="pass `--data digits` or a path to an .npz file")
    except OSError as e:
        raise CatnetError("E0001", f"cannot read data file {path}: {e.strerror or e}")
    if not stat.S_ISREG(st.st_mode):
        raise CatnetError("E0001", f"cannot read data file {path}: it is not a regular file", help="pass a path to an .npz file")
    hint = "write it with `numpy.savez(path, x=..., y=...)`"
    if st.st_size == 0:
        raise _data_error(f"the data file {path} is empty", help=hint)
    try:
        with open(path, "rb") as f:
            magic = f.read(6)
        if magic == b"\x93NUMPY":
            raise _data_error(f"the data file {path} is a single .npy array, not an .npz archive", help=hint)
        return zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise _data_error(f"the data file {path} is not an .npz archive (not a zip file, or a damaged one)", help=hint)
    except OSError as e:
        raise CatnetError("E0001", f"cannot read data file {path}: {e.strerror or e}")


def _header(archive: zipfile.ZipFile, info: zipfile.ZipInfo, key: str, path: str) -> _Header:
    """Read one member's ``.npy`` header (a few hundred bytes), never its data."""
    try:
        with archive.open(info) as fp:
            version = npformat.read_magic(fp)
            if version == (1, 0):
                shape, _, dtype = npformat.read_array_header_1_0(fp)
            elif version == (2, 0):
                shape, _, dtype = npformat.read_array_header_2_0(fp)
            else:
                raise ValueError(f".npy format version {version[0]}.{version[1]} is not read by catnet (numpy.save writes 1.0)")
            offset = fp.tell()
    except _READ_ERRORS as e:
        raise _data_error(f"`{key}` in {path} is not a readable .npy array: {e}")
    if any(d < 0 for d in shape):
        raise _data_error(f"`{key}` in {path} declares the impossible shape {shape}")
    # The zip's own sizes can lie too: deflate expands at most 1032-fold, and a stored member is its size.
    limit = {zipfile.ZIP_STORED: info.compress_size, zipfile.ZIP_DEFLATED: 1032 * info.compress_size + 1024}.get(info.compress_type)
    if limit is not None and info.file_size > limit:
        raise _data_error(
            f"`{key}` in {path} claims {size_text(info.file_size)} of data in {size_text(info.compress_size)} of archive",
            help="the file is corrupt (or a zip bomb): write it again with `numpy.savez`",
        )
    nbytes = math.prod(shape) * dtype.itemsize
    return _Header(tuple(shape), dtype, nbytes, info.file_size - offset)


def _unsupported(key: str, dtype: np.dtype) -> str | None:
    """Why an array of this dtype cannot be training data at all, if it cannot."""
    if dtype.hasobject:
        return f"`{key}` holds Python objects (dtype {dtype}), which catnet never loads: store plain numbers"
    if dtype.names is not None or dtype.subdtype is not None:
        return f"`{key}` has the structured dtype {dtype}: store one plain numeric array per key"
    if dtype.kind == "c":
        return f"`{key}` holds complex numbers (dtype {dtype}): store real and imaginary parts as real arrays"
    return None


def _check_dtype(key: str, dtype: np.dtype, ob: Ob | None) -> None:
    """Refuse a dtype the wire (``None``: the targets) cannot take, before reading the data."""
    problem = _unsupported(key, dtype)
    if problem:
        raise _data_error(problem)
    if ob is None:
        if not (np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.floating)):
            raise _data_error(f"the targets `y` have dtype {dtype}; use integer labels or float targets")
    elif ob.base == "Z" and not np.issubdtype(dtype, np.integer):
        raise _data_error(
            f"`{key}` has dtype {dtype}, but the wire {ob} takes integer ids",
            help=f"store `{key}` as an integer array, e.g. `{key}.astype(np.int32)`",
        )
    elif ob.base in ("R", "bundle") and not np.issubdtype(dtype, np.floating):
        raise _data_error(
            f"`{key}` has dtype {dtype}, but the wire {ob} takes real numbers",
            help=f"store `{key}` as floats, e.g. `{key}.astype(np.float32)` (scale pixel values first)",
        )


def _members(archive: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
    """An archive's members by array name (``x`` for ``x.npy``)."""
    return {i.filename.removesuffix(".npy"): i for i in archive.infolist()}


def _read_npz(path: str, wires: dict[str, Ob | None], takes: str) -> dict[str, np.ndarray]:
    """The arrays named by ``wires`` of an ``.npz``, each checked from its header before it is read.

    ``wires`` maps each array to the wire it feeds (``None``: the targets);
    ``takes`` says what the morphism takes, for the message about a missing
    array.  Refused before reading: a file that is not a zip of ``.npy``
    members, a missing key, a dtype the wire cannot take, a header that
    declares more data than the member holds, and arrays that would not fit
    in memory.
    """
    keys = list(wires)
    save = "save one input array per domain wire and the targets: `numpy.savez(path, " + ", ".join(f"{k}=..." for k in keys) + ")`"
    archive = _open_archive(path)
    with archive:
        members = _members(archive)
        if not members:
            raise _data_error(f"{path} holds no arrays", help=save)
        missing = [k for k in keys if k not in members or not members[k].filename.endswith(".npy")]
        if missing:
            raise _data_error(
                f"{path} lacks the array{'s' if len(missing) > 1 else ''} {', '.join(f'`{k}`' for k in missing)}",
                notes=(f"it has: {', '.join(sorted(members)) or 'nothing'}", takes),
                help=save,
            )
        headers = {k: _header(archive, members[k], k, path) for k in keys}
        for k, h in headers.items():
            _check_dtype(k, h.dtype, wires[k])
            if h.nbytes > h.stored:
                raise _data_error(
                    f"`{k}` in {path} declares shape {h.shape} of {h.dtype} ({size_text(h.nbytes)}), "
                    f"but the file holds {size_text(max(h.stored, 0))} of data for it",
                    help="the file is truncated or corrupt: write it again with `numpy.savez`",
                )
        # each array is read once and then converted to 32 bits
        need = sum(h.nbytes + math.prod(h.shape) * 4 for h in headers.values())
        free = host_memory()
        if free is not None and need > free:
            raise _data_error(
                f"loading {', '.join(f'`{k}`' for k in headers)} from {path} needs {size_text(need)} of memory, "
                f"but only {size_text(free)} is available",
                notes=tuple(f"`{k}`: shape {h.shape} of {h.dtype}" for k, h in headers.items()),
                help="train on a smaller sample of the data",
            )
        arrays: dict[str, np.ndarray] = {}
        for k in keys:
            try:
                with archive.open(members[k]) as fp:
                    arrays[k] = npformat.read_array(fp, allow_pickle=False)
            except _READ_ERRORS as e:
                raise _data_error(f"`{k}` in {path} cannot be read: {e}", help="the file is corrupt: write it again with `numpy.savez`")
    return arrays


def _count_examples(path: str, arrays: Mapping[str, np.ndarray], keys: list[str], against: str) -> int:
    """The number of examples: the leading axis of ``against``, the same in every array of ``keys``, at least 2."""
    n = arrays[against].shape[0] if arrays[against].ndim else 0
    for k in keys:
        if arrays[k].ndim == 0 or arrays[k].shape[0] != n:
            raise _data_error(f"`{k}` has {arrays[k].shape[0] if arrays[k].ndim else 0} examples but `{against}` has {n}")
    if n < 2:
        raise _data_error(f"{path} has {n} example(s); training needs at least 2")
    return n


def _npz(path: str, dom: Ty, cod: Ty, vocab: Mapping[int, int]) -> Dataset:
    keys = ["x"] if len(dom) == 1 else [f"x{i}" for i in range(len(dom))]
    wires: dict[str, Ob | None] = dict(zip(keys, dom.obs))
    wires["y"] = None
    arrays = _read_npz(path, wires, f"the entry takes {dom} and returns {cod}")
    _count_examples(path, arrays, keys, "y")
    env: dict[str, int] = {}
    inputs = tuple(_check_input(k, arrays[k], ob, env, vocab.get(i)) for i, (k, ob) in enumerate(zip(keys, dom.obs)))
    return Dataset(os.path.basename(path), inputs, _check_target(arrays["y"], cod, env))


def _fit_digits(images: np.ndarray, ob: Ob, whose: str) -> np.ndarray:
    """The images shaped to the wire ``ob`` (``whose`` names it in the message)."""
    if ob.base != "R" or not all(isinstance(d, int) for d in ob.shape) or int(np.prod(ob.shape, dtype=np.int64)) != 64:
        raise _data_error(
            f"the digits are 8×8 images (64 reals), but {whose} is {_described(ob)}",
            help="use R[64] or R[8, 8, 1] for digit images, or pass your own data as an .npz file",
        )
    return images.reshape((images.shape[0],) + tuple(int(d) for d in ob.shape))


def _digit_arrays() -> tuple[np.ndarray, np.ndarray]:
    """The 1797 digit images (flat, pixels in ``[0, 1]``) and their labels."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    return (np.asarray(digits.data, dtype=np.float32) / 16.0).reshape(-1, 64), np.asarray(digits.target, dtype=np.int32)


def _digits(dom: Ty, cod: Ty) -> Dataset:
    images, labels = _digit_arrays()
    if len(dom) != 1:
        raise _data_error(f"the digits give one image per example, but the entry takes {dom}")
    x = _fit_digits(images, dom.obs[0], "the entry's input")
    out = task(cod)
    if out.shape == (10,):
        target = labels
    elif all(isinstance(d, int) for d in out.shape) and int(np.prod(out.shape, dtype=np.int64)) == 64:
        target = _fit_digits(images, out, "the entry's output")  # reconstruct the image
    else:
        raise _data_error(
            f"the digits have 10 classes and 8×8 images, but the entry returns {_described(out)}",
            help="end in R[10] logits to classify, or in an image to reconstruct"
            + ("; a morphism ending in R[] is an objective: pass --objective NAME to minimize it" if out.shape == () else ""),
        )
    return Dataset("digits", (x,), target)


# -- sets of digits ------------------------------------------------------------------------

#: The sizes of a set of ``digit_sums`` (elements per set).
SET_SIZES = (1, 16)
#: Sets of ``digit_sums`` per image of each side of the split.
SETS_PER_IMAGE = 10


def _test_count(n: int, test_fraction: float) -> int:
    """How many of ``n`` examples :func:`split` holds out: at least one, and one fewer than all."""
    return min(n - 1, max(1, int(round(n * test_fraction))))


def digit_sums(size: int, test_fraction: float = 0.2) -> Dataset:
    """Sets of ``size`` digit images (``(N, size, 64)``) labelled with the sum of their digits.

    The 1797 images are split first, as :func:`split` splits the digits
    (the same held-out images for every seed); then each side gives
    ``SETS_PER_IMAGE`` sets per image, each of ``size`` distinct images of
    that side.  So no image is in a training set and a test set, and the
    test sets come last (``split_at``).  The sets are fixed (drawn with
    seed 0), like the split: the training seed varies the run, not the data.
    """
    images, labels = _digit_arrays()
    order = np.random.default_rng(0).permutation(len(images))
    n_test = _test_count(len(images), test_fraction)
    sides = (np.sort(order[n_test:]), np.sort(order[:n_test]))
    rng = np.random.default_rng([0, size])
    picks = []
    for side in sides:
        if len(side) < size:
            raise _data_error(
                f"sets of {size} distinct digit images need {size} images on each side of the split, "
                f"but --test-fraction {test_fraction} leaves {len(side)} on one side",
                help="choose a --test-fraction nearer 0.2, or smaller sets",
            )
        picks.append(np.stack([rng.choice(side, size, replace=False) for _ in range(SETS_PER_IMAGE * len(side))]))
    pick = np.concatenate(picks)
    return Dataset("digit_sums", (images[pick],), labels[pick].sum(axis=1).astype(np.int32), split_at=len(picks[0]))


def _digit_sums(dom: Ty, cod: Ty, test_fraction: float) -> Dataset:
    """:func:`digit_sums` for an entry ``R[n, 64] -> R[9n + 1]`` (E0701 for other types)."""
    ob = _one_wire(dom, "digit_sums", "set of images")
    shape = ob.shape
    lo, hi = SET_SIZES
    if ob.base != "R" or len(shape) != 2 or shape[1] != 64 or not isinstance(shape[0], int):
        raise _data_error(
            f"`digit_sums` gives a set of n digit images of 64 pixels each, R[n, 64], but the entry takes {_described(ob)}",
            help=f"take the set as R[n, 64] with n in {lo}..{hi}, e.g. `object Digits = R[5, 64] under S5`",
        )
    size = shape[0]
    if not lo <= size <= hi:
        raise _data_error(f"`digit_sums` makes sets of {lo} to {hi} images, not {size}", help=f"take R[n, 64] with n in {lo}..{hi}")
    out = task(cod)
    if out.shape != (9 * size + 1,):
        raise _data_error(
            f"the sum of {size} digits is a class of 0..{9 * size}, but the entry returns {_described(out)}",
            help=f"end in {9 * size + 1} logits, R[{9 * size + 1}]",
        )
    return digit_sums(size, test_fraction)


def _labelled_sets(spec: str, what: str) -> CatnetError:
    """E0701: ``digit_sums`` is labelled sets, which ``what`` (a flow, a trivialization) does not train on."""
    return _data_error(f"`{spec}` is sets of digit images with labels, but {what}", help="train a classifier of sets on it, R[n, 64] -> R[9n + 1]")


# -- named data sets ------------------------------------------------------------------------

#: The named data sets that are not bundles: name -> what they are (``--help`` and messages).
BUILTIN: dict[str, str] = {
    "digits": "scikit-learn's 1797 8×8 digit images with their labels",
    "digit_sums": "sets of n digit images, R[n, 64], labelled with the sum of their digits (0..9n)",
    "moons": "scikit-learn's two moons, 2000 unlabelled points of R[2] (for a flow)",
}

#: Grey levels of the digit images (pixel values 0..16).
DIGIT_LEVELS = 17


def _bundle_sets() -> dict[str, object]:
    """``catnet.bundles.datasets.DATASETS`` (empty if that module is not there)."""
    try:
        from .bundles.datasets import DATASETS
    except ImportError:  # pragma: no cover - the bundles package is part of catnet
        return {}
    return dict(DATASETS)


def names() -> list[str]:
    """Every name ``--data`` accepts besides a path to an ``.npz``."""
    return list(BUILTIN) + sorted(_bundle_sets())


def is_named(spec: str) -> bool:
    """Whether ``spec`` names a built-in data set (not a file)."""
    return spec in BUILTIN or spec in _bundle_sets()


def bundle_data(spec: str) -> object | None:
    """The ``BundleData`` named ``spec``, or ``None`` if ``spec`` is not a bundle data set."""
    return _bundle_sets().get(spec)


def _unknown(spec: str) -> CatnetError:
    hint = suggest(spec, names())
    known = ", ".join(f"`{n}`" for n in names())
    return CatnetError(
        "E0001",
        f"unknown data set `{spec}`",
        None,
        notes=(f"the named data sets: {known}",),
        help=(f"did you mean `{hint}`? " if hint else "") + "pass a named data set or a path to an .npz file",
    )


def _points(spec: str) -> tuple[np.ndarray, np.ndarray | None]:
    """A named point set: ``moons`` (no base points) or a bundle set (``x`` and its base points ``b``)."""
    if spec == "moons":
        from .flows.datasets import moons

        return moons(), None
    data = bundle_data(spec)
    assert data is not None
    # The data set is fixed (seed 0), like the split: the training seed varies the run, not the data.
    x, b = data.arrays(0)  # type: ignore[attr-defined]
    return x, b


def _one_wire(dom: Ty, spec: str, what: str) -> Ob:
    if len(dom) != 1:
        raise _data_error(f"`{spec}` gives one {what} per example, but the entry takes {dom}")
    return dom.obs[0]


def _fitted_points(spec: str, x: np.ndarray, ob: Ob, env: dict[str, int], whose: str) -> np.ndarray:
    """The points ``x`` of a named set checked against the wire ``ob`` (E0701 naming both)."""
    if ob.base == "Z":
        raise _data_error(f"`{spec}` holds real points of R[{x.shape[1]}], but {whose} is {_described(ob)}, integer ids")
    if not _match(tuple(x.shape[1:]), ob.shape, env):
        if ob.base == "bundle":
            total = "R[" + ", ".join(dims.show(d) for d in ob.shape) + "]"
            raise _data_error(
                f"`{spec}` holds points of R[{x.shape[1]}] (shape {tuple(x.shape)}), but the total space of the bundle "
                f"`{ob}` is {total}",
                help=f"declare the total space as R[{x.shape[1]}]: `bundle {ob} = {ob.fiber} over {ob.over} in R[{x.shape[1]}]`",
            )
        raise _data_error(
            f"`{spec}` holds points of R[{x.shape[1]}] (shape {tuple(x.shape)}), but {whose} is {_described(ob)}, "
            f"which needs {_shape_text(ob)}",
            help=f"declare the wire as R[{x.shape[1]}]",
        )
    return _check_input("x", x, ob, env)


def _dequantized_digits(seed: int) -> np.ndarray:
    """The digit images as continuous data for a flow: ``(level + u) / 17`` with ``u`` uniform, seeded."""
    from sklearn.datasets import load_digits

    levels = np.asarray(load_digits().data, np.float64).reshape(-1, 64)
    u = np.random.default_rng([seed, DIGIT_LEVELS]).uniform(0.0, 1.0, levels.shape)
    return ((levels + u) / DIGIT_LEVELS).astype(np.float32)


def _flow_data(spec: str, dom: Ty, seed: int) -> Dataset:
    """The inputs of a flow (no targets)."""
    if spec == "digits":
        ob = _one_wire(dom, spec, "image")
        x = _fit_digits(_dequantized_digits(seed), ob, "the flow's wire")
        return Dataset("digits", (x,), None, DIGIT_LEVELS)
    if spec == "digit_sums":
        raise _labelled_sets(spec, "a flow is trained by the likelihood of unlabelled points")
    if is_named(spec):
        x, _ = _points(spec)
        ob = _one_wire(dom, spec, "point")
        return Dataset(spec, (_fitted_points(spec, x, ob, {}, "the flow's wire"),), None)
    keys = ["x"] if len(dom) == 1 else [f"x{i}" for i in range(len(dom))]
    arrays = _read_npz(spec, dict(zip(keys, dom.obs)), f"the flow takes {dom}; its data is the inputs alone")
    _count_examples(spec, arrays, keys, keys[0])
    env: dict[str, int] = {}
    inputs = tuple(_check_input(k, arrays[k], ob, env) for k, ob in zip(keys, dom.obs))
    return Dataset(os.path.basename(spec), inputs, None)


def _base_points(y: np.ndarray, ob: Ob, env: dict[str, int], where: str) -> np.ndarray:
    """Base points checked against the base wire ``B`` (floats of its shape, finite)."""
    _check_dtype("y", y.dtype, ob)
    if not _match(tuple(y.shape[1:]), ob.shape, env):
        raise _data_error(
            f"the base points {where} have shape {tuple(y.shape)}, but the base {_described(ob)} needs {_shape_text(ob)}",
        )
    return _float32("y", y)


def _bundle_data(spec: str, dom: Ty, cod: Ty) -> Dataset:
    """The total-space points (input) and their base points (target) of a trivialization ``E -> B ⊗ F``."""
    (wire,) = dom.obs
    base = cod.obs[0]
    env: dict[str, int] = {}
    if spec == "digit_sums":
        raise _labelled_sets(spec, "a trivialization is trained on points of a bundle and their base points")
    if is_named(spec):
        x, b = _points(spec) if spec != "digits" else (None, None)
        if b is None:
            sets = ", ".join(f"`{n}`" for n in sorted(_bundle_sets()))
            raise _data_error(
                f"`{spec}` has no base points, but a trivialization {dom} -> {cod} trains on points of the total space "
                "with their base points",
                help=f"use a bundle data set ({sets}) or an .npz with `x` (total-space points) and `y` (their base points)",
            )
        assert x is not None
        inputs = (_fitted_points(spec, x, wire, env, f"the bundle {wire}'s total space"),)
        return Dataset(spec, inputs, _base_points(b, base, env, f"of `{spec}`"))
    arrays = _read_npz(spec, {"x": wire, "y": base}, f"the trivialization takes {dom} (total-space points `x`) and "
                       f"fits their base points {base} (`y`)")
    _count_examples(spec, arrays, ["x"], "y")
    x = _check_input("x", arrays["x"], wire, env)
    return Dataset(os.path.basename(spec), (x,), _base_points(arrays["y"], base, env, "`y`"))


def _supervised_points(spec: str, dom: Ty, cod: Ty) -> Dataset:
    """A named point set for an ordinary entry: a bundle set regresses its base points from ``x``."""
    x, b = _points(spec)
    if b is None:
        raise _data_error(
            f"`{spec}` is unlabelled points, data for a flow (a morphism X -> X of invertible boxes, trained by likelihood), "
            f"but the entry {dom} -> {cod} is not one",
            help="build the entry from isomorphisms (`coupling`, `reverse`, ...) onto its own wire, or pass data with targets",
        )
    ob = _one_wire(dom, spec, "point")
    env: dict[str, int] = {}
    inputs = (_fitted_points(spec, x, ob, env, "the entry's input"),)
    return Dataset(spec, inputs, _check_target(b, cod, env))


def load(
    spec: str,
    dom: Ty,
    cod: Ty,
    vocab: Mapping[int, int] | None = None,
    kind: str = "supervised",
    seed: int = 0,
    test_fraction: float = 0.2,
) -> Dataset:
    """The data set ``spec`` (a name of :func:`names` or a path to an ``.npz``) fitted to ``dom -> cod``.

    ``vocab`` maps a domain wire's index to the vocabulary of the ``embed``
    that reads it; that wire's ids must lie in ``0..vocab-1``.  ``kind`` is
    how the entry trains: ``"supervised"`` (inputs and targets),
    ``"flow"`` (inputs only; the digits dequantized with uniform noise
    seeded by ``seed``, so their grey levels become a density) or
    ``"bundle"`` (total-space points and their base points).
    ``test_fraction`` is the share :func:`split` will hold out; a data set
    built from split images (``digit_sums``) splits them by it now.
    """
    assert kind in ("supervised", "flow", "bundle"), kind
    if not is_named(spec) and not spec.endswith(".npz"):
        raise _unknown(spec)
    if kind == "flow":
        return _flow_data(spec, dom, seed)
    if kind == "bundle":
        return _bundle_data(spec, dom, cod)
    if spec == "digits":
        return _digits(dom, cod)
    if spec == "digit_sums":
        return _digit_sums(dom, cod, test_fraction)
    if is_named(spec):
        return _supervised_points(spec, dom, cod)
    return _npz(spec, dom, cod, vocab or {})


# -- the data of an objective ---------------------------------------------------------------

#: How the columns of the data feed an objective's domain (the help of E0701).
OBJECTIVE_COLUMNS = "an objective's domain is the inputs (x, or x0, x1, ...) in order, optionally followed by the targets y"


def _digits_objective(dom: Ty, name: str) -> Dataset:
    """The digits for an objective: the image, then optionally its label (``Z[]``) or the image again."""
    images, labels = _digit_arrays()
    if not 1 <= len(dom) <= 2:
        raise _data_error(
            f"the digits give an image and its label per example, but the objective `{name}` takes {len(dom)} wires: {dom}",
            help="an objective on the digits takes the image (R[64] or R[8, 8, 1]), or the image and a target: "
            "its label Z[] or the image itself",
        )
    inputs = [_fit_digits(images, dom.obs[0], f"the first wire of the objective `{name}`")]
    if len(dom) == 2:
        ob = dom.obs[1]
        if ob.base == "Z":
            if ob.shape != ():
                raise _data_error(
                    f"the digits' labels are one class number per image, Z[], but the objective `{name}` takes {_described(ob)}",
                    help="take the label as `y : Z[]` (classes 0..9)",
                )
            inputs.append(labels)
        else:
            inputs.append(_fit_digits(images, ob, f"the second wire of the objective `{name}` (the target)"))
    return Dataset("digits", tuple(inputs), None)


def _objective_columns(path: str, dom: Ty, name: str) -> list[str]:
    """The arrays of an ``.npz`` that feed an objective's domain wires, in order."""
    with _open_archive(path) as archive:
        members = _members(archive)
    if "x" in members:
        inputs = ["x"]
    else:
        inputs = []
        while f"x{len(inputs)}" in members:
            inputs.append(f"x{len(inputs)}")
    if inputs and len(dom) == len(inputs):
        return inputs
    if inputs and len(dom) == len(inputs) + 1:
        return inputs + ["y"]
    notes = (f"it has: {', '.join(sorted(members)) or 'nothing'}",)
    if not inputs:
        raise _data_error(f"{path} lacks the input array `x` (or `x0`, `x1`, ...) of the objective `{name}`", notes=notes, help=OBJECTIVE_COLUMNS)
    raise _data_error(
        f"the objective `{name}` takes {len(dom)} wire{'s' if len(dom) != 1 else ''}, {dom}, but {path} gives "
        + ", ".join(f"`{k}`" for k in inputs)
        + (" and the targets `y`" if "y" in members else ""),
        notes=notes,
        help=OBJECTIVE_COLUMNS,
    )


def _npz_objective(path: str, dom: Ty, name: str, vocab: Mapping[int, int]) -> Dataset:
    keys = _objective_columns(path, dom, name)
    arrays = _read_npz(path, dict(zip(keys, dom.obs)), f"the objective `{name}` takes {dom}; {OBJECTIVE_COLUMNS}")
    _count_examples(path, arrays, keys, keys[0])
    env: dict[str, int] = {}
    inputs = tuple(_check_input(k, arrays[k], ob, env, vocab.get(i)) for i, (k, ob) in enumerate(zip(keys, dom.obs)))
    return Dataset(os.path.basename(path), inputs, None)


def load_objective(spec: str, dom: Ty, name: str, vocab: Mapping[int, int] | None = None) -> Dataset:
    """The data set ``spec`` fitted to the domain of the objective ``name`` (all of it inputs).

    The domain takes the data's inputs in order, then optionally its
    targets: the digits give the image, then its label (a ``Z[]`` wire) or
    the image again (a real wire of 64 values); an ``.npz`` gives ``x`` (or
    ``x0``, ``x1``, ...), then ``y`` if the domain has one wire more.
    """
    if spec == "digits":
        return _digits_objective(dom, name)
    if spec == "digit_sums":
        raise _data_error(
            f"`digit_sums` trains a classifier of sets, not an objective: the objective `{name}` cannot be fed its test split",
            help="train the classifier R[n, 64] -> R[9n + 1] itself (--entry), with the built-in cross-entropy",
        )
    if is_named(spec):
        return _points_objective(spec, dom, name)
    if not spec.endswith(".npz"):
        raise _unknown(spec)
    return _npz_objective(spec, dom, name, vocab or {})


def _points_objective(spec: str, dom: Ty, name: str) -> Dataset:
    """A named point set for an objective: the points, then (a bundle set) optionally their base points."""
    x, b = _points(spec)
    columns = [x] if b is None else [x, b]
    if not 1 <= len(dom) <= len(columns):
        gives = "its points" if b is None else "its points, then optionally their base points"
        raise _data_error(
            f"`{spec}` gives {gives}, but the objective `{name}` takes {len(dom)} wires: {dom}",
            help=OBJECTIVE_COLUMNS,
        )
    env: dict[str, int] = {}
    inputs = [_fitted_points(spec, x, dom.obs[0], env, f"the first wire of the objective `{name}`")]
    if len(dom) == 2:
        assert b is not None
        inputs.append(_base_points(b, dom.obs[1], env, f"of `{spec}`"))
    return Dataset(spec, tuple(inputs), None)


def input_keys(dom: Ty) -> list[str]:
    """The ``.npz`` keys of a domain's wires: ``x`` for one, ``x0``, ``x1``, ... for several."""
    return ["x"] if len(dom) == 1 else [f"x{i}" for i in range(len(dom))]


def read_inputs(path: str, diagram: Diagram) -> tuple[np.ndarray, ...]:
    """The inputs of ``diagram`` in the ``.npz`` at ``path`` (no targets), checked as training data is (E0701, E0001).

    Every array must have the same number of examples, at least one.
    """
    dom = diagram.dom
    keys = input_keys(dom)
    arrays = _read_npz(path, dict(zip(keys, dom.obs)), f"the model takes {dom}")
    counts = {k: (arrays[k].shape[0] if arrays[k].ndim else None) for k in keys}
    if any(c is None for c in counts.values()):
        scalar = next(k for k, c in counts.items() if c is None)
        raise CatnetError("E0701", f"`{scalar}` in {path} is a single number, not an array of examples", None,
                          help="the first axis of each input counts the examples")
    if len(set(counts.values())) > 1:
        shown = ", ".join(f"`{k}` has {c}" for k, c in counts.items())
        raise CatnetError("E0701", f"the inputs in {path} hold different numbers of examples: {shown}", None)
    if counts[keys[0]] == 0:
        raise CatnetError("E0701", f"the inputs in {path} hold no examples", None)
    from .check.inputs import vocab_bounds

    vocab = vocab_bounds(diagram)
    sizes: dict[str, int] = {}
    return tuple(_check_input(k, arrays[k], ob, sizes, vocab.get(i)) for i, (k, ob) in enumerate(zip(keys, dom.obs)))


def split(data: Dataset, test_fraction: float, seed: int = 0) -> tuple[Dataset, Dataset]:
    """A deterministic train/test split (the same for every training seed).

    A data set that fixes its own split (``split_at``: built from images
    split by the same ``test_fraction``) is cut there.
    """
    n = len(data)
    if data.split_at is not None:
        return data.take(np.arange(data.split_at)), data.take(np.arange(data.split_at, n))
    order = np.random.default_rng(seed).permutation(n)
    n_test = _test_count(n, test_fraction)
    return data.take(np.sort(order[n_test:])), data.take(np.sort(order[:n_test]))


#: The seed of :func:`validation_split`: fixed, so every training seed validates on the same examples.
VALIDATION_SEED = 1


def validation_split(train: Dataset, fraction: float) -> tuple[Dataset, Dataset]:
    """The training part split again into what trains and a validation set, ``fraction`` of it.

    The validation set comes out of the training part only, so the test
    set (:func:`split`) is the same with or without one.  The draw uses a
    fixed seed (:data:`VALIDATION_SEED`), independent of the training
    seed; both sides keep at least one example and their original order.
    """
    n = len(train)
    order = np.random.default_rng(VALIDATION_SEED).permutation(n)
    n_val = _test_count(n, fraction)
    return train.take(np.sort(order[n_val:])), train.take(np.sort(order[:n_val]))


# -- rotated images -------------------------------------------------------------------------


def grid_size(data: Dataset) -> int | None:
    """The side ``h`` of the square grid ``R[h, h, c]`` of the data's one input, or ``None``."""
    if len(data.inputs) != 1:
        return None
    x = data.inputs[0]
    return int(x.shape[1]) if x.ndim == 4 and x.shape[1] == x.shape[2] and np.issubdtype(x.dtype, np.floating) else None


def rotated(data: Dataset, seed: int) -> tuple[Dataset, np.ndarray]:
    """Each image of ``data`` (one input ``R[h, h, c]``) turned by its own random multiple of 90°.

    Example ``i`` is turned ``turns[i]`` quarter turns counter-clockwise
    (``np.rot90`` on the grid axes: the rotation ``r^k`` of ``C4``), drawn
    from a generator seeded by ``seed``, so the same seed turns the same
    images the same way.  Class labels stay; a target that is an image of
    the same grid (an image-to-image model) turns with its input.  Returns
    the turned data and ``turns``.
    """
    h = grid_size(data)
    assert h is not None, "rotated() takes data of one square-grid input (check with grid_size first)"
    turns = np.random.default_rng([seed, 90]).integers(0, 4, len(data))
    target = data.target
    turn_target = target is not None and target.ndim == 4 and target.shape[1:3] == (h, h)
    arrays = [data.inputs[0].copy()] + ([target.copy()] if target is not None and turn_target else [])
    for k in range(1, 4):
        chosen = turns == k
        for a in arrays:
            a[chosen] = np.rot90(a[chosen], k, axes=(1, 2))
    return data.with_inputs((arrays[0],), arrays[1] if turn_target else target), turns
