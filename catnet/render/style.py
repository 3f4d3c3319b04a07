"""How each kind of box and wire looks, shared by the DOT and TikZ back ends.

A picture is configured by :class:`Options`; the look of each kind is data in
:data:`BOX_STYLES`, :data:`WIRE_STYLES` and :data:`CLUSTER_FILLS`.  A new
kind of box or wire is drawn by adding an entry here; the back ends look
kinds up and fall back to the ``generator`` and ``data`` entries.  Bundle
wires are doubled (``bundle``), a trace's state loops back on a
``feedback`` wire, isomorphisms carry :data:`ISO_MARK`, equivariant boxes
a badge in :data:`SYMMETRY_COLOR`.

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
    double: bool = False  # two parallel lines, for a wire that carries two things (a bundle)


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
    # A point of a bundle's total space: base and fiber in one wire, drawn
    # doubled; `triv` splits it into a plain base wire and a plain fiber wire.
    "bundle": WireStyle(color="#000000", width=0.8, double=True),
    # The feedback wire of a trace (`scan`), looping from the cell's state
    # output back to its state input.
    "feedback": WireStyle(color="#000000", width=0.8),
}

#: The mark after the name of an isomorphism (a box with a real inverse).
#: An inverse box says ``⁻¹`` instead; structural isos (``swap``) are drawn
#: as crossings and carry no mark.
ISO_MARK = "↔"

#: Colour of the iso mark: a quiet grey, so it is noticed, not read first.
ISO_COLOR = "#777777"

#: Colour of the marks of symmetry: the badge (a small framed tag) of a box
#: that is equivariant, by construction (the group: ``C4``) or by a proved
#: claim (``C4-invariant``), and the action written under a G-space wire's
#: name.  A darker grey than the iso mark: the badge is text to be read.
SYMMETRY_COLOR = "#555555"

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
