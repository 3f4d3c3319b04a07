"""How each kind of box and wire looks, shared by the DOT and TikZ back ends.

A picture is configured by :class:`Options`; the look of each kind is data in
:data:`BOX_STYLES`, :data:`WIRE_STYLES` and :data:`CLUSTER_FILLS`.  A new
kind of box (an invertible box, a trace) or wire (a bundle) is drawn by
adding an entry here; the back ends look kinds up and fall back to the
``generator`` and ``data`` entries.

Colours are chosen to print well in grey: boxes are white with black
outlines, nested boxes are light grey, one shade darker per level.
"""

from __future__ import annotations

from dataclasses import dataclass

DIRECTIONS = ("LR", "TB")


@dataclass(frozen=True)
class Options:
    """What a picture shows, besides the graph itself.

    ``direction`` is the way data flows: ``"LR"`` (left to right, parameter
    wires from the top) or ``"TB"`` (top to bottom, parameter wires from the
    left).  ``shapes`` writes each wire's shape after its object's name.
    """

    direction: str = "LR"
    shapes: bool = False

    def __post_init__(self) -> None:
        assert self.direction in DIRECTIONS, self.direction


@dataclass(frozen=True)
class BoxStyle:
    fill: str
    border: str
    width: float  # outline width in points
    rounded: bool = True
    double: bool = False  # a second outline, for boxes that stand for many


@dataclass(frozen=True)
class WireStyle:
    color: str
    width: float
    dashed: bool = False


#: Box kinds (``Box.kind`` of the IR, plus ``param_copy``).
BOX_STYLES: dict[str, BoxStyle] = {
    "generator": BoxStyle(fill="#ffffff", border="#000000", width=0.8),
    "structural": BoxStyle(fill="#ffffff", border="#000000", width=0.8, rounded=False),
    "composite": BoxStyle(fill="#eeeeee", border="#000000", width=1.0),
    "repeat": BoxStyle(fill="#eeeeee", border="#000000", width=1.0, double=True),
    "inv": BoxStyle(fill="#ffffff", border="#000000", width=0.8),
    "scan": BoxStyle(fill="#ffffff", border="#000000", width=0.8),
}

#: Wire kinds.
WIRE_STYLES: dict[str, WireStyle] = {
    "data": WireStyle(color="#000000", width=0.8),
    "param": WireStyle(color="#2b5c8a", width=0.8, dashed=True),
}

#: Fill of a nested box by nesting level (the entry box is level 0).
CLUSTER_FILLS = ("#ffffff", "#f4f4f4", "#e9e9e9", "#dedede", "#d3d3d3")

#: Outline colour of nested boxes.
CLUSTER_BORDER = "#555555"


def box_style(kind: str) -> BoxStyle:
    return BOX_STYLES.get(kind, BOX_STYLES["generator"])


def wire_style(kind: str) -> WireStyle:
    return WIRE_STYLES.get(kind, WIRE_STYLES["data"])


def cluster_fill(level: int) -> str:
    return CLUSTER_FILLS[min(level, len(CLUSTER_FILLS) - 1)]
