"""Training data for ``catnet train``, checked against the entry's type.

A data set is one array per domain wire (``inputs``) and one ``target``
array, all with the examples on the first axis.  Two sources:

* ``digits``: scikit-learn's bundled 8×8 digit images (1797 of them, real
  data, no download), pixels scaled to ``[0, 1]`` and shaped to fit the
  domain wire (``R[64]`` or ``R[8, 8, 1]``); the target is the class label
  when the codomain is 10 logits, and the image itself when the codomain is
  an image (an autoencoder);
* ``PATH.npz``: arrays ``x`` (or ``x0``, ``x1``, ... for a product domain)
  and ``y``.

Everything is checked before training starts, against the entry's domain
and codomain: the keys, the per-example shapes (a symbol such as ``T``
matches any size, the same size wherever it occurs) and the dtypes
(``R`` wires take floats, ``Z`` wires integers).  Integer targets are class
labels for logits on the codomain's last axis; float targets must have the
codomain's shape.  This module does not import JAX.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass

import numpy as np

from . import dims
from .errors import CatnetError
from .ir import Ob, Ty


def _data_error(message: str, help: str | None = None, notes: tuple[str, ...] = ()) -> CatnetError:
    return CatnetError("E0701", message, None, notes=notes, help=help)


@dataclass(frozen=True)
class Dataset:
    """Inputs (one array per domain wire) and targets, examples first."""

    name: str
    inputs: tuple[np.ndarray, ...]
    target: np.ndarray

    def __len__(self) -> int:
        return int(self.target.shape[0])

    @property
    def labels(self) -> bool:
        """Whether the target holds class labels (integers)."""
        return bool(np.issubdtype(self.target.dtype, np.integer))

    def take(self, index: np.ndarray) -> "Dataset":
        return Dataset(self.name, tuple(x[index] for x in self.inputs), self.target[index])


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


def _check_input(name: str, x: np.ndarray, ob: Ob, env: dict[str, int]) -> np.ndarray:
    if ob.base == "bundle":
        raise _data_error(f"the entry takes the bundle {ob}, which `catnet train` cannot feed yet")
    if ob.base == "Z":
        if not np.issubdtype(x.dtype, np.integer):
            raise _data_error(
                f"`{name}` has dtype {x.dtype}, but the wire {ob} takes integer ids",
                help=f"store `{name}` as an integer array, e.g. `{name}.astype(np.int32)`",
            )
        x = x.astype(np.int32)
    else:
        if not np.issubdtype(x.dtype, np.floating):
            raise _data_error(
                f"`{name}` has dtype {x.dtype}, but the wire {ob} takes real numbers",
                help=f"store `{name}` as floats, e.g. `{name}.astype(np.float32)` (scale pixel values first)",
            )
        x = x.astype(np.float32)
    if not _match(tuple(x.shape[1:]), ob.shape, env):
        raise _data_error(
            f"`{name}` has shape {tuple(x.shape)}, but the wire {ob} needs {_shape_text(ob)}",
            notes=(f"{ob} = {ob.structure()}; N is the number of examples",),
        )
    return x


def task(cod: Ty) -> Ob:
    """The one codomain wire training fits; more wires are not supported."""
    if len(cod) != 1 or cod.obs[0].base != "R":
        raise CatnetError(
            "E0702",
            f"`catnet train` fits a morphism with one real output wire, but this one returns {cod}",
            help="train a morphism that ends in logits or in one real wire",
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
        return y.astype(np.int32)
    if not np.issubdtype(y.dtype, np.floating):
        raise _data_error(f"the targets `y` have dtype {y.dtype}; use integer labels or float targets")
    if not _match(tuple(y.shape[1:]), ob.shape, env):
        raise _data_error(
            f"the targets `y` have shape {tuple(y.shape)}, but the output {ob} needs {_shape_text(ob)}",
        )
    return y.astype(np.float32)


def _npz(path: str, dom: Ty, cod: Ty) -> Dataset:
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except FileNotFoundError:
        raise CatnetError("E0001", f"cannot read data file {path}: no such file", help="pass `--data digits` or a path to an .npz file")
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        raise CatnetError("E0001", f"cannot read data file {path}: {e}", help="write it with `numpy.savez(path, x=..., y=...)`")
    keys = ["x"] if len(dom) == 1 else [f"x{i}" for i in range(len(dom))]
    missing = [k for k in keys + ["y"] if k not in arrays]
    if missing:
        raise _data_error(
            f"{path} lacks the array{'s' if len(missing) > 1 else ''} {', '.join(f'`{k}`' for k in missing)}",
            notes=(f"it has: {', '.join(sorted(arrays)) or 'nothing'}", f"the entry takes {dom} and returns {cod}"),
            help="save one input array per domain wire and the targets: `numpy.savez(path, "
            + ", ".join(f"{k}=..." for k in keys + ["y"])
            + ")`",
        )
    n = arrays["y"].shape[0] if arrays["y"].ndim else 0
    for k in keys:
        if arrays[k].ndim == 0 or arrays[k].shape[0] != n:
            raise _data_error(f"`{k}` has {arrays[k].shape[0] if arrays[k].ndim else 0} examples but `y` has {n}")
    if n < 2:
        raise _data_error(f"{path} has {n} example(s); training needs at least 2")
    env: dict[str, int] = {}
    inputs = tuple(_check_input(k, arrays[k], ob, env) for k, ob in zip(keys, dom.obs))
    return Dataset(os.path.basename(path), inputs, _check_target(arrays["y"], cod, env))


def _fit_digits(images: np.ndarray, ob: Ob, what: str) -> np.ndarray:
    if ob.base != "R" or not all(isinstance(d, int) for d in ob.shape) or int(np.prod(ob.shape, dtype=np.int64)) != 64:
        raise _data_error(
            f"the digits are 8×8 images (64 reals), but the entry's {what} is {_described(ob)}",
            help="use R[64] or R[8, 8, 1] for digit images, or pass your own data as an .npz file",
        )
    return images.reshape((images.shape[0],) + tuple(int(d) for d in ob.shape))


def _digits(dom: Ty, cod: Ty) -> Dataset:
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = (np.asarray(digits.data, dtype=np.float32) / 16.0).reshape(-1, 64)
    if len(dom) != 1:
        raise _data_error(f"the digits give one image per example, but the entry takes {dom}")
    x = _fit_digits(images, dom.obs[0], "input")
    out = task(cod)
    if out.shape == (10,):
        target = np.asarray(digits.target, dtype=np.int32)
    elif all(isinstance(d, int) for d in out.shape) and int(np.prod(out.shape, dtype=np.int64)) == 64:
        target = _fit_digits(images, out, "output")  # reconstruct the image
    else:
        raise _data_error(
            f"the digits have 10 classes and 8×8 images, but the entry returns {_described(out)}",
            help="end in R[10] logits to classify, or in an image to reconstruct",
        )
    return Dataset("digits", (x,), target)


def load(spec: str, dom: Ty, cod: Ty) -> Dataset:
    """The data set ``spec`` (``digits`` or a path to an ``.npz``) fitted to ``dom -> cod``."""
    if spec == "digits":
        return _digits(dom, cod)
    if not spec.endswith(".npz"):
        raise CatnetError("E0001", f"unknown data set `{spec}`", help="pass `--data digits` or a path to an .npz file")
    return _npz(spec, dom, cod)


def split(data: Dataset, test_fraction: float, seed: int = 0) -> tuple[Dataset, Dataset]:
    """A deterministic train/test split (the same for every training seed)."""
    n = len(data)
    order = np.random.default_rng(seed).permutation(n)
    n_test = min(n - 1, max(1, int(round(n * test_fraction))))
    return data.take(np.sort(order[n_test:])), data.take(np.sort(order[:n_test]))
