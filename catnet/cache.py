"""catnet's cache on disk: things worth keeping between runs, never needed.

Everything lives under ``$CATNET_CACHE`` (default ``~/.cache/catnet``): the
parser's tables (``parser/``, :mod:`catnet.syntax`) and solved equivariant
bases (``bases/``, :mod:`catnet.symmetry.basis`).  Entries are written whole
or not at all (a temporary file, then a rename), and a read-only or missing
home only means the work is done again next time.  Deleting the folder is
always safe.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO, Callable


def cache_dir(part: str) -> Path:
    """The folder for one kind of entry: ``$CATNET_CACHE/part`` (default ``~/.cache/catnet/part``)."""
    root = os.environ.get("CATNET_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "catnet")
    return Path(root) / part


def store(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Write a cache entry whole or not at all; an operating-system error leaves no entry."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except OSError:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
