"""catnet: string diagrams to trainable JAX/Flax models and paper figures.

``load``/``loads`` check a ``.cat`` file and return its definitions without
importing JAX; ``compile`` (which does import JAX) lowers one to an
``nnx.Module``; ``render`` draws one.
"""

from __future__ import annotations

import os
from typing import Any

from .check import Definition, Module, check_file, check_text
from .errors import CatnetError
from . import ir as _ir
from . import pretty as _pretty
from .ir import Box, Diagram, Ob, Ty
from .syntax import decode

__version__ = "0.1.0"


def _svg(diagram: Diagram) -> str:
    from .render import render as draw  # Graphviz, loaded on first use

    return draw(diagram, format="svg")  # type: ignore[return-value]


# How diagrams show themselves (``str`` and notebooks).  The IR names no
# stage after it; the package wires them here, where both are in reach.
_ir.DISPLAY.setdefault("text", _pretty.pretty)
_ir.DISPLAY.setdefault("svg", _svg)


def load(path: str | os.PathLike[str], root: str | os.PathLike[str] | None = None) -> Module:
    """Check a ``.cat`` file (and its imports) and return its definitions.

    Imports must stay inside ``root`` (default: the file's directory).
    Raises a located :class:`CatnetError`; E0801 if an argument has the
    wrong type.
    """
    _require_path("catnet.load", None, path, "the path of a .cat file")
    _require_path("catnet.load", "root", root, "the path of a directory", optional=True)
    return check_file(path, root=root)


def loads(
    text: str | bytes,
    path: str = "<string>",
    base_dir: str | os.PathLike[str] | None = None,
    root: str | os.PathLike[str] | None = None,
) -> Module:
    """Check ``.cat`` source text and return its definitions.

    ``text`` is a ``str`` (a leading byte-order mark is dropped) or UTF-8
    ``bytes``; ``path`` names it in messages.  Imports resolve relative to
    ``base_dir`` (default: the working directory) and must stay inside
    ``root`` (default: ``base_dir``).  Raises a located :class:`CatnetError`;
    E0801 if an argument has the wrong type.
    """
    if isinstance(text, (bytes, bytearray)):
        if not isinstance(path, str):
            raise CatnetError("E0801", f"`path=` of `catnet.loads` must be a str (the name of the text in messages), not {_kind(path)}")
        text = decode(bytes(text), path)
    elif not isinstance(text, str):
        hint = "; to check a file, use `catnet.load(path)`" if isinstance(text, os.PathLike) else ""
        raise CatnetError("E0801", f"`catnet.loads` takes the text of a .cat file as a str, not {_kind(text)}",
                          help=f"pass the source text, e.g. `catnet.loads(\"object V = R[4]\")`{hint}")
    if not isinstance(path, str):
        raise CatnetError("E0801", f"`path=` of `catnet.loads` must be a str (the name of the text in messages), not {_kind(path)}")
    _require_path("catnet.loads", "base_dir", base_dir, "the path of a directory", optional=True)
    _require_path("catnet.loads", "root", root, "the path of a directory", optional=True)
    return check_text(text, path, base_dir, root)


def _kind(value: object) -> str:
    return "None" if value is None else type(value).__name__


def _require_path(function: str, name: str | None, value: object, what: str, optional: bool = False) -> None:
    """E0801 unless ``value`` is a str or an ``os.PathLike`` of str (or ``None`` when ``optional``).

    ``name`` is the keyword of the argument (``None`` for the first one).
    """
    if value is None and optional:
        return
    if isinstance(value, str) or (isinstance(value, os.PathLike) and isinstance(os.fspath(value), str)):
        return
    given = f"(a str or a pathlib.Path), not {_kind(value)}"
    if name is None:
        raise CatnetError("E0801", f"`{function}` takes {what} {given}")
    raise CatnetError("E0801", f"`{name}=` of `{function}` must be {what} {given}")


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
