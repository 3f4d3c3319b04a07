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

#: Points per unit of length, for ``--width``.
UNITS = {"in": 72.0, "cm": 72.0 / 2.54, "mm": 72.0 / 25.4, "pt": 72.0 / 72.27, "bp": 1.0}

#: The page a figure is made for: the text width of a one-column paper
#: (6.5 in: US letter with 1 in margins; A4 with 2.5 cm margins is 6.3 in).
DEFAULT_WIDTH = 6.5 * 72.0

#: The widest a figure may be for its height, by default: a long chain
#: wraps into rows before it becomes a strip.
DEFAULT_MAX_ASPECT = 4.0

#: The smallest text a figure prints at its target width, in points.
MIN_FONT = 7.0


def parse_length(text: str) -> float:
    """``"6.5in"``, ``"16cm"``, ``"165mm"``, ``"468pt"`` (or a bare number of points) in PostScript points.

    Raises ``ValueError`` with a message fit for the command line.
    """
    s = text.strip().lower()
    unit = next((u for u in UNITS if s.endswith(u)), None)
    number = s[: -len(unit)] if unit else s
    try:
        value = float(number)
    except ValueError:
        raise ValueError(f"expected a length such as 6.5in, 16cm or 468pt, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise ValueError(f"a width is more than 0, not {text!r}")
    return value * UNITS[unit or "bp"]


@dataclass(frozen=True)
class Options:
    """What a picture shows, besides the graph itself.

    ``direction`` is the way data flows: ``"LR"`` (left to right, parameter
    wires from the top) or ``"TB"`` (top to bottom, parameter wires from the
    left).  ``shapes`` writes each wire's shape after its object's name.
    ``width`` is the page width the figure must fit at its natural size,
    in points (so its text prints at no less than :data:`MIN_FONT`), and
    ``max_aspect`` the largest width-to-height ratio: a long chain of boxes
    wraps into rows, read left to right and then down, to meet both.
    """

    direction: str = "LR"
    shapes: bool = False
    width: float = DEFAULT_WIDTH
    max_aspect: float = DEFAULT_MAX_ASPECT

    def __post_init__(self) -> None:
        assert self.direction in DIRECTIONS, self.direction
        assert self.width > 0 and self.max_aspect > 0, (self.width, self.max_aspect)


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
