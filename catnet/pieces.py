"""Text from pieces, expanded from an explicit stack: the printers' one loop.

``fmt`` (syntax to canonical text) and ``pretty`` (IR to text) print trees
that may nest as deep as the input does.  Both describe a node as a list of
*pieces*: a string, emitted as is; a node to expand, a tuple
``(kind, node, *context)`` that ``expand[kind](node, *context)`` turns into
more pieces; or a :class:`Gap`, text that depends on what was written just
before.  :func:`render` expands them left to right with a stack that grows
with the nesting, so no depth of input can exhaust Python's recursion limit.
"""

from __future__ import annotations

from typing import Callable, Iterable, Mapping, Union


class Gap:
    """A piece whose text depends on the text so far: ``text(out)`` is what to emit."""

    __slots__ = ("text",)

    def __init__(self, text: Callable[[list[str]], str]) -> None:
        self.text = text


Piece = Union[str, tuple, Gap]


def render(root: Piece, expand: Mapping[str, Callable[..., list[Piece]]]) -> str:
    """The text of ``root``: strings in order, nodes expanded through ``expand``."""
    out: list[str] = []
    stack: list[Piece] = [root]
    while stack:
        piece = stack.pop()
        if type(piece) is str:
            if piece:
                out.append(piece)
        elif isinstance(piece, Gap):
            text = piece.text(out)
            if text:
                out.append(text)
        else:
            kind, node, *context = piece  # type: ignore[misc]
            stack.extend(reversed(expand[kind](node, *context)))
    return "".join(out)


def joined(items: Iterable[Piece], sep: str) -> list[Piece]:
    """``items`` with ``sep`` between them."""
    out: list[Piece] = []
    for item in items:
        if out:
            out.append(sep)
        out.append(item)
    return out
