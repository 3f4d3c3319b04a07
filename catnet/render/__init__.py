"""Drawing checked diagrams as string diagrams: DOT, SVG, PNG, PDF and TikZ.

The stages follow the pipeline, each a pure function but the last::

    Diagram ──graph.build──▶ networkx graph ──dot.to_dot──▶ DOT text ──output.run_dot──▶ SVG/PNG/PDF
                                             └─tikz.to_tikz─▶ TikZ text (standalone or snippet)

:func:`render` is the one entry point; ``catnet render`` calls it.  Nothing
here imports JAX, and the heavy modules (networkx) load on first use.
"""

from __future__ import annotations

import os
import sys
import types
from pathlib import Path
from typing import TYPE_CHECKING, Union

from ..errors import CatnetError
from .style import DEFAULT_MAX_ASPECT, DEFAULT_WIDTH, DIRECTIONS, Options, parse_length

if TYPE_CHECKING:
    from ..check import Module
    from ..ir import Diagram
    from .symmetry import Claim

#: Formats by file extension; ``tex`` is TikZ.
FORMATS = {".dot": "dot", ".gv": "dot", ".tex": "tex", ".svg": "svg", ".png": "png", ".pdf": "pdf"}
_TEXT = ("dot", "tex")

Source = Union["Diagram", "Module", str, os.PathLike]


def _diagram(source: Source, morphism: str | None) -> tuple[Diagram, str | None, dict[str, Claim]]:
    """The diagram to draw, the name of the box around it, and the claims of the definitions it may show.

    A claim (``equivariant under C4``) is part of a definition's declaration,
    not of the IR, so a bare :class:`~catnet.ir.Diagram` is drawn without.
    """
    from ..ir import Diagram

    if isinstance(source, Diagram):
        return source, morphism, {}
    if isinstance(source, (str, os.PathLike)):
        from .. import load

        source = load(source)
    name = morphism or source.entry_name()
    claims: dict[str, Claim] = {}
    for table in (source.imported, source.definitions):
        for key, d in table.items():
            claim = getattr(d.decl, "claim", None)
            if claim is not None:
                claims[key] = (claim.kind, claim.group)
    return source.diagram(name), name, claims


def _format(out: str | os.PathLike | None, format: str | None) -> str:
    if format is not None:
        fmt = "tex" if format == "tikz" else format
        if fmt not in FORMATS.values():
            raise CatnetError("E0208", f"unknown drawing format `{format}`", help="use one of: dot, svg, png, pdf, tex")
        return fmt
    if out is None:
        return "dot"
    suffix = Path(out).suffix.lower()
    if suffix not in FORMATS:
        raise CatnetError(
            "E0208",
            f"cannot tell the drawing format of `{out}` from its extension `{suffix or '(none)'}`",
            help="name the output .svg, .png, .pdf, .dot or .tex",
        )
    return FORMATS[suffix]


def _width(width: float | str | None) -> float:
    """The page width in points, from a number of points or a length with its unit."""
    if width is None:
        return DEFAULT_WIDTH
    if isinstance(width, str):
        try:
            return parse_length(width)
        except ValueError as exc:
            raise CatnetError("E0208", f"bad width: {exc}") from None
    return _positive("width", width)


def _positive(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < float("inf"):
        raise CatnetError("E0208", f"{name} must be a number more than 0, not {value!r}")
    return float(value)


def render(
    source: Source,
    out: str | os.PathLike | None = None,
    *,
    morphism: str | None = None,
    format: str | None = None,
    depth: int | None = None,
    shapes: bool = False,
    params: bool = False,
    direction: str = "LR",
    standalone: bool = True,
    width: float | str | None = None,
    max_aspect: float | None = None,
) -> str | bytes | Path:
    """Draw a diagram as a string diagram.

    ``source`` is a :class:`~catnet.ir.Diagram`, a checked module, or the
    path of a ``.cat`` file; ``morphism`` picks a definition (default: the
    file's entry) and names the box drawn around it.  ``depth`` expands that
    many levels of nested definitions (``None``: all).  ``shapes`` writes
    each wire's shape, ``params`` draws parameter wires (the Para view),
    ``direction`` is ``"LR"`` or ``"TB"``.  TikZ is a standalone document
    unless ``standalone=False``, which gives a ``tikzpicture`` to ``\\input``.
    ``width`` is the page width to fit (points, or a length such as
    ``"3.25in"``; default 6.5 in) and ``max_aspect`` the largest width to
    height (default 4): long chains wrap into rows to meet both.

    Without ``out``, returns the drawing: DOT or TikZ text (``format``
    ``"dot"``, the default, or ``"tex"``), SVG text, or PNG/PDF bytes.  With
    ``out``, writes the file, its format taken from the extension unless
    ``format`` is given, and returns its path.  The same input always gives
    byte-identical DOT and TikZ.
    """
    from . import graph

    fmt = _format(out, format)
    if direction not in DIRECTIONS:
        raise CatnetError("E0208", f"unknown direction `{direction}`", help="use LR (left to right) or TB (top to bottom)")
    if depth is not None and depth < 0:
        raise CatnetError("E0208", f"depth must be 0 or more, not {depth}")
    opts = Options(direction=direction, shapes=shapes, width=_width(width),
                   max_aspect=_positive("max_aspect", DEFAULT_MAX_ASPECT if max_aspect is None else max_aspect))
    diagram, name, claims = _diagram(source, morphism)
    g = graph.build(diagram, name=name, depth=depth, params=params, claims=claims)
    data: str | bytes
    if fmt == "tex":
        from .tikz import to_tikz

        data = to_tikz(g, opts, standalone=standalone)
    else:
        from .dot import to_dot

        data = to_dot(g, opts)
        if fmt != "dot":
            from .output import run_dot

            data = run_dot(data, fmt)
            if fmt == "svg":
                data = data.decode("utf-8")
    if out is None:
        return data
    path = Path(out)
    try:
        if isinstance(data, str):
            path.write_text(data, encoding="utf-8")
        else:
            path.write_bytes(data)
    except OSError as exc:
        raise CatnetError("E0001", f"cannot write `{out}`: {exc.strerror or exc}") from None
    return path


class _CallableModule(types.ModuleType):
    """``catnet.render`` is both this package and the function :func:`render`.

    Importing a submodule sets the package as the attribute ``render`` of
    ``catnet``, replacing any function of that name; making the package
    callable keeps ``catnet.render(...)`` working whichever came first.
    """

    def __call__(self, *args: object, **kwargs: object) -> str | bytes | Path:
        return render(*args, **kwargs)  # type: ignore[arg-type]


sys.modules[__name__].__class__ = _CallableModule

__all__ = ["render", "Options", "FORMATS"]
