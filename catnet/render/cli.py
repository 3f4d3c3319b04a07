"""``catnet render``: draw a morphism of a ``.cat`` file as a string diagram.

::

    catnet render examples/residual.cat -o residual.svg
    catnet render examples/transformer.cat --depth 1 -o transformer.png
    catnet render examples/siamese.cat --params -o siamese.tex --snippet

The output format follows the extension of ``-o`` (``.svg``, ``.png``,
``.pdf``, ``.dot``, ``.tex``); without ``-o`` the DOT text (or, with
``--format tex``, the TikZ) goes to standard output.  Nothing here imports
JAX.
"""

from __future__ import annotations

import argparse
import sys

from ..cli import add_entry_argument, add_root_argument, depth
from ..errors import CatnetError


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="the .cat file")
    add_entry_argument(parser, "the definition to draw (default: the file's `main`)")
    parser.add_argument("-o", "--output", metavar="OUT", help="output file: .svg, .png, .pdf, .dot or .tex")
    parser.add_argument("--format", choices=("dot", "tex", "svg", "png", "pdf"),
                        help="output format (default: from the extension of OUT, else dot)")
    parser.add_argument("--depth", type=depth, metavar="N",
                        help="expand N levels of nested definitions; deeper ones are single boxes (default: all, up to 32)")
    parser.add_argument("--shapes", action="store_true", help="label wires with their shapes, e.g. `Hidden : R[128]`")
    parser.add_argument("--params", action="store_true",
                        help="draw parameter wires with their sizes (the Para view); shared weights are one source, copied")
    parser.add_argument("--direction", choices=("LR", "TB"), default="LR",
                        help="data flows left to right (default) or top to bottom")
    parser.add_argument("--width", type=_length, metavar="LENGTH",
                        help="the page width to fit, e.g. 6.5in, 3.25in, 16cm (default 6.5in, a one-column paper): "
                             "long chains wrap into rows so the text prints at 7pt or more")
    parser.add_argument("--max-aspect", type=_ratio, metavar="R",
                        help="the widest the figure may be for its height (default 4): wrap into more rows beyond it")
    parser.add_argument("--snippet", action="store_true",
                        help="TikZ only: write a tikzpicture to \\input into a paper instead of a standalone document")
    add_root_argument(parser)


def _length(text: str) -> float:
    from .style import parse_length

    try:
        return parse_length(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _ratio(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number such as 4 (width over height), got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"the aspect ratio is more than 0, not {text!r}")
    return value


def run(args: argparse.Namespace) -> int:
    """Render; print the text when there is no ``-o``.  Errors are ``CatnetError``."""
    from .. import load
    from . import render

    if args.output is None and args.format in ("png", "pdf"):
        raise CatnetError("E0208", f"{args.format.upper()} output needs a file", help=f"add `-o OUT.{args.format}`")
    result = render(
        load(args.file, root=args.root),
        args.output,
        morphism=args.entry,
        format=args.format,
        depth=args.depth,
        shapes=args.shapes,
        params=args.params,
        direction=args.direction,
        standalone=not args.snippet,
        width=args.width,
        max_aspect=args.max_aspect,
    )
    if args.output is None:
        assert isinstance(result, str)
        sys.stdout.write(result)
    return 0
