"""catnet: string diagrams to trainable JAX/Flax models and paper figures.

``load``/``loads`` check a ``.cat`` file and return its definitions without
importing JAX; ``compile`` (which does import JAX) lowers one to an
``nnx.Module``; ``render`` draws one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .check import Definition, Module, check_file, check_text
from .errors import CatnetError
from .ir import Box, Diagram, Ob, Ty

__version__ = "0.1.0"


def load(path: str | Path) -> Module:
    """Check a ``.cat`` file (and its imports) and return its definitions."""
    return check_file(path)


def loads(text: str, path: str = "<string>", base_dir: str | Path | None = None) -> Module:
    """Check ``.cat`` source text; imports resolve relative to ``base_dir`` (default: cwd)."""
    return check_text(text, path, Path(base_dir) if base_dir is not None else None)


def __getattr__(name: str) -> Any:
    # JAX-dependent and drawing entry points load on first use, so that
    # `import catnet` (and `catnet check`) stay instant.
    if name == "compile":
        from .lower import compile

        return compile
    if name == "render":
        from .render import render

        return render
    raise AttributeError(f"module 'catnet' has no attribute {name!r}")


__all__ = ["load", "loads", "compile", "render", "CatnetError", "Module", "Definition", "Diagram", "Box", "Ty", "Ob"]
