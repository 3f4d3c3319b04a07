"""How a figure writes group actions: on G-space wires, on equivariant boxes, in claims.

A wire whose object is a G-space (``R[8, 8, 32] under C4 as regular * 8``)
is labelled with its name (or shape) as any wire, and under it, smaller,
with the action: the group, and the representation on the channels where
it is not trivial.  DOT and SVG use the language's own words, so the label
reads back as the declaration (``C4: regular × 8``); TikZ writes the
notation of papers on group-equivariant networks, in math mode
(``$C_4\\colon 8\\rho_{\\mathrm{reg}}$``).  For example:

- ``R[8, 8, 1] under C4``: ``C4`` (TikZ ``$C_4$``);
- ``R[8, 8, 32] under C4 as regular * 8``: ``C4: regular × 8``
  (``$C_4\\colon 8\\rho_{\\mathrm{reg}}$``);
- ``R[12] under D4 as regular + rotation * 2``: ``D4: regular ⊕ rotation × 2``
  (``$D_4\\colon \\rho_{\\mathrm{reg}} \\oplus 2\\rho_{\\mathrm{rot}}$``);
- ``R[10] under C4``: ``C4: trivial`` (``$C_4\\colon$ trivial``).

On a grid or a set the group moves the cells too, so trivial channels are
shown by the group alone; on a vector (``R[c]``) the group acts through the
channels only, and ``trivial`` says that it does nothing at all.

The text of a representation is the canonical text the parser writes
(``regular * 16 + rotation ⊗ sign``); it is read here with a few lines of
pure Python, so drawing builds no representation matrices.

Boxes are marked with a *badge*, a small framed tag: a generator that is
equivariant by construction (``acts == "equivariant"``: ``glinear``,
``gconv``, ``gpool``, ``deepsets``) with its group (``C4``), a definition
that claims a symmetry with its claim (``C4-invariant``), on its box or on
the title of its nested box.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..ir import Ob, is_rep_var
from ..symmetry.text import parse as parse_rep_text

#: A claim as drawn: ``("equivariant" | "invariant", group)``.
Claim = tuple[str, str]


@dataclass(frozen=True)
class WireAction:
    """The action on a drawn wire: ``group``, ``rep`` (canonical text, ``None`` if trivial) and ``spatial``.

    ``spatial`` says whether the group also moves the wire's cells (a grid
    ``R[h, h, c]`` or a set ``R[n, c]``), as opposed to acting on the
    channels of a vector ``R[c]`` only.
    """

    group: str
    rep: str | None
    spatial: bool


def wire_action(ob: Ob) -> WireAction | None:
    """The action a wire of ``ob`` is labelled with (``None`` for a plain wire).

    A representation still unsolved (a generic definition's ``?ρ``) is
    drawn as the group alone.
    """
    if not ob.group:
        return None
    rep = ob.rep if ob.rep and not is_rep_var(ob.rep) else None
    return WireAction(ob.group, rep, len(ob.shape) >= 2)


# -- reading a representation's canonical text ---------------------------------------

def _parse(text: str) -> tuple:
    """The tree of a representation's text (``catnet.symmetry.text``); an unreadable text is one atom that is the text itself."""
    try:
        return parse_rep_text(text)
    except ValueError:
        return ("atom", text, [])


# -- DOT: the language's words ------------------------------------------------------------


def _words(node: tuple, inside: str = "") -> str:
    """``node`` in words; ``inside`` is what it is part of, for parentheses."""
    kind = node[0]
    if kind == "atom":
        return f"{node[1]}({', '.join(node[2])})" if node[2] else node[1]
    if kind == "sum":
        text = " ⊕ ".join(_words(t, "sum") for t in node[1])
        return f"({text})" if inside else text
    if kind == "copies":
        text = f"{_words(node[1], 'copies')} × {node[2]}"
        return f"({text})" if inside in ("copies", "tensor") else text
    text = " ⊗ ".join(_words(f, "tensor") for f in node[1])
    return f"({text})" if inside in ("copies", "tensor") else text


def rep_text(rep: str) -> str:
    """A representation in words, as in the source but with ``⊕`` and ``×``: ``regular × 8 ⊕ rotation``."""
    return _words(_parse(rep))


def action_text(a: WireAction) -> str:
    """The second line of a G-space wire's label in DOT: ``C4: regular × 8``, ``C4``, ``C4: trivial``."""
    if a.rep is None:
        return a.group if a.spatial else f"{a.group}: trivial"
    return f"{a.group}: {rep_text(a.rep)}"


def claim_text(claim: Claim) -> str:
    """A definition's claim as it is drawn: ``C4-equivariant``, ``S5-invariant``."""
    return f"{claim[1]}-{claim[0]}"


# -- TikZ: the notation of papers ----------------------------------------------------------

#: The subscript each building block is written with: ``\rho_{\mathrm{reg}}``.
_SHORT = {"trivial": "triv", "regular": "reg", "sign": "sign", "rotation": "rot", "permutation": "perm"}


def _tex_word(text: str) -> str:
    """A name as upright math text, with TeX's special characters made safe."""
    return r"\mathrm{" + re.sub(r"([_#&%$])", r"\\\1", text) + "}"


def group_tex(group: str) -> str:
    """A group in math mode (without the dollars): ``C_{4}``, ``D_{4} \\times C_{2}``."""
    factors = []
    for part in group.split("×"):
        m = re.fullmatch(r"\s*([A-Z])(\d+)\s*", part)
        factors.append(f"{m.group(1)}_{{{m.group(2)}}}" if m else _tex_word(part.strip()))
    return r" \times ".join(factors)


def _element_tex(word: str) -> str:
    """A group element named by a word in ``r`` and ``s``: ``r2`` as ``r^{2}``, ``sr1`` as ``sr``."""
    m = re.fullmatch(r"(s|flip)?(?:r(\d*)|(\d+))?", word)
    if m is None or not word:
        return _tex_word(word)
    flip = "s" if m.group(1) else ""
    if m.group(3) is not None:
        k = m.group(3)
    else:
        k = (m.group(2) or "1") if "r" in word[len(m.group(1) or ""):] else "0"
    turn = "" if int(k) == 0 else "r" if int(k) == 1 else f"r^{{{k}}}"
    return flip + turn or "e"


def _tex(node: tuple, group: str, inside: str = "") -> str:
    kind = node[0]
    if kind == "atom":
        name, args = node[1], node[2]
        if name in _SHORT and not args:
            return rf"\rho_{{\mathrm{{{_SHORT[name]}}}}}"
        if name == "quotient" and args:
            sub = ", ".join(_element_tex(a) for a in args)
            return rf"\rho_{{{group_tex(group)}/\langle {sub}\rangle}}"
        text = f"{name}({', '.join(args)})" if args else name
        return r"\rho_{" + _tex_word(text) + "}"
    if kind == "sum":
        text = r" \oplus ".join(_tex(t, group, "sum") for t in node[1])
        return f"({text})" if inside else text
    if kind == "copies":
        return f"{node[2]}{_tex(node[1], group, 'copies')}"
    text = r" \otimes ".join(_tex(f, group, "tensor") for f in node[1])
    return f"({text})" if inside in ("copies", "tensor") else text


def rep_tex(rep: str, group: str) -> str:
    """A representation in math mode (without the dollars): ``8\\rho_{\\mathrm{reg}} \\oplus \\rho_{\\mathrm{rot}}``."""
    return _tex(_parse(rep), group)


def action_tex(a: WireAction) -> str:
    """The second line of a G-space wire's label in TikZ (LaTeX text, math in dollars)."""
    g = group_tex(a.group)
    if a.rep is None:
        return f"${g}$" if a.spatial else f"${g}\\colon$ trivial"
    return f"${g}\\colon {rep_tex(a.rep, a.group)}$"


def claim_tex(claim: Claim) -> str:
    """A definition's claim in LaTeX text: ``$C_{4}$-equivariant``."""
    return f"${group_tex(claim[1])}$-{claim[0]}"
