"""How a group acts on a wire: its spatial action and its representation on the channel axis.

A G-space wire is written ``R[…] under G as ρ`` (docs/symmetry.md).  The
group acts on the wire in two ways at once:

* **spatially**, by where the wire's shape says: ``C(n)``/``D(n)`` with
  ``n`` in 1, 2, 4 rotate (and reflect) the square grid of ``R[h, h, c]``;
  ``S(n)`` permutes the set axis of ``R[n, c]``; a vector ``R[c]`` has no
  spatial part;
* on the **channels** (the last axis) by the representation ``ρ``, whose
  dimension is the number of channels (no ``as``: the trivial one).

So ``(g·x)[p] = ρ(g) x[g⁻¹ p]``.  :func:`act` applies that to arrays
(NumPy or ``jax.numpy``); the lowering, ``catnet verify`` and the tests use
it, so there is one convention.  On a grid, group elements act on pixel
coordinates centred on the grid's middle: the rotation ``r`` is a quarter
turn and ``D(n)``'s reflection ``s`` flips the columns (``(k, f)`` is
``r^k s^f``, as in ``catnet.symmetry.groups``).

The text of a representation is canonical (the parser writes it):
a sum ``+`` of terms, a term a tensor product ``⊗`` of atoms with an
optional multiplicity ``* m``; the atoms are ``trivial``, ``regular``,
``sign``, ``rotation``, ``permutation`` and ``quotient(h, …)``, where each
``h`` names an element generating the subgroup: ``r``, ``rK`` (``r^K``), a
bare number ``K`` (also ``r^K``), ``s`` or ``flip`` (the reflection), or
``srK`` (``s r^K``).  NumPy only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from .lazy import np

from . import reps as R
from . import text as text_
from .groups import Group, parse as parse_group
from .reps import Rep

#: The spatial actions a wire can carry.
GRID, SET = "grid", "set"
#: The rotation orders that map a square pixel grid onto itself.
GRID_ORDERS = (1, 2, 4)


class BadRep(ValueError):
    """A representation text that does not denote a representation of the group; the message says why."""


@dataclass(frozen=True)
class Action:
    """The action of ``group`` on one wire of ``shape``: ``spatial`` (``"grid"``, ``"set"`` or ``None``) and ``rep``."""

    group: Group
    spatial: str | None
    rep: Rep
    shape: tuple[int, ...]

    @property
    def trivial(self) -> bool:
        return self.spatial is None and self.rep.is_trivial

    def describe(self) -> str:
        where = {GRID: "rotating the grid, ", SET: "permuting the set, ", None: ""}[self.spatial]
        return f"{self.group} {where}{show(self.rep)} on the channels"


# -- representations from text ---------------------------------------------------

@lru_cache(maxsize=512)
def parse_rep(text: str, group: str) -> Rep:
    """The representation of the group named ``group`` that ``text`` denotes (BadRep if none)."""
    g = parse_group(group)
    try:
        tree = text_.parse(text)
    except text_.Unreadable as e:
        raise BadRep(str(e)) from None

    def build(node: tuple) -> Rep:
        kind = node[0]
        if kind == "sum":
            return R.direct_sum(*[build(t) for t in node[1]])
        if kind == "copies":
            n = node[2]
            if not n.isdigit() or int(n) < 1:
                raise BadRep(f"a multiplicity is a whole number ≥ 1, not `{n}`")
            if int(n) > 1 << 20:
                raise BadRep(f"{n} copies of a representation are absurdly many")
            return build(node[1]) * int(n)
        if kind == "tensor":
            r = build(node[1][0])
            for factor in node[1][1:]:
                left, right = r, build(factor)
                if left.dim * right.dim > 4096:
                    raise BadRep(f"the tensor product in `{text}` has dimension {left.dim * right.dim}, "
                                 "more than catnet builds (4096)")
                r = R.tensor(left, right)
                _TEXT[r.name] = f"{_wrap(show(left), left, 2)} ⊗ {_wrap(show(right), right, 3)}"
            return r
        return _atom(node[1], node[2], g)

    return build(tree)


#: The building blocks a representation is written from, for messages.
ATOMS = "trivial, regular, sign, rotation, permutation, quotient(h, …)"


def _atom(name: str, args: list[str], g: Group) -> Rep:
    simple = {"trivial": R.trivial, "regular": R.regular, "sign": R.sign, "rotation": R.rotation, "permutation": R.permutation}
    if name in simple:
        if args:
            raise BadRep(f"`{name}` takes no arguments")
        try:
            return simple[name](g)
        except ValueError as e:
            raise BadRep(str(e)) from None
    if name == "quotient":
        if not args:
            raise BadRep("`quotient(h, …)` needs the elements that generate the subgroup, e.g. `quotient(r2)` or `quotient(s)`")
        q = R.quotient(g, [element(g, a) for a in args])
        _TEXT[q.name] = f"quotient({', '.join(args)})"
        return q
    raise BadRep(f"`{name}` is not a representation catnet knows; the building blocks are {ATOMS}")


def element(g: Group, word: str) -> int:
    """The index of the element a word names: ``r``, ``rK``/``K`` (``r^K``), ``s``/``flip``, ``srK`` (C(n) and D(n))."""
    letter = g.name[0] if " × " not in g.name else "?"
    if letter not in "CD":
        raise BadRep(f"`quotient` names subgroups of C(n) and D(n) by words in r and s, not of {g}")
    m = re.fullmatch(r"(s|flip)?(?:r(\d*)|(\d+))?", word)
    if m is None or not word:
        raise BadRep(f"`{word}` names no element of {g}: write r, r2, s or sr1")
    flip = m.group(1) is not None
    if flip and letter == "C":
        raise BadRep(f"{g} has no reflection `{word}`")
    k = m.group(3) if m.group(3) is not None else (m.group(2) or ("1" if "r" in word else "0"))
    n = int(g.name[1:])
    # the model is r^k s^f; the word s r^K is r^(-K) s
    model = (-int(k) if flip else int(k)) % n
    key = model if letter == "C" else (model, int(flip))
    return g.models.index(key)  # type: ignore[arg-type]


#: The language's text of building blocks whose names say more (quotients, tensor products).
_TEXT: dict[str, str] = {}


def _wrap(text: str, r: Rep, side: int) -> str:
    """``text`` in parentheses where it binds looser than a tensor product's ``side`` (2 left, 3 right)."""
    loose = len(r.blocks) > 1 or r.blocks[0][1] > 1 or (side == 3 and " ⊗ " in text)
    return f"({text})" if loose else text


def show(r: Rep) -> str:
    """A representation in the language's words (``regular * 16``), as the parser writes it."""
    parts = []
    for block, m in r.blocks:
        name = _TEXT.get(block.name) or re.sub(r"\((?:[CDS]\d+(?: × [CDS]\d+)*)\)", "", block.name)
        parts.append(f"{name} * {m}" if m > 1 else name)
    return " + ".join(parts)


# -- the action on a wire ---------------------------------------------------------


def _grid_group(g: Group) -> bool:
    return " × " not in g.name and g.name[0] in "CD" and int(g.name[1:]) in GRID_ORDERS


def spatial_of(g: Group, shape: tuple[int, ...]) -> str | None:
    """Which spatial action ``g`` has on a wire of ``shape``; BadRep where it has none that catnet knows."""
    if len(shape) <= 1:
        return None
    if len(shape) == 3 and _grid_group(g):
        if shape[0] != shape[1]:
            raise BadRep(f"{g} rotates a square grid, but R[{', '.join(map(str, shape))}] is {shape[0]} × {shape[1]}")
        return GRID
    if len(shape) == 2 and g.name[0] == "S" and " × " not in g.name:
        n = int(g.name[1:])
        if shape[0] != n:
            raise BadRep(f"{g} permutes a set of {n} elements, but the set axis of R[{', '.join(map(str, shape))}] has {shape[0]}")
        return SET
    if len(shape) == 3:
        raise BadRep(f"{g} does not act on a pixel grid: quarter turns and flips are C1, C2, C4, D1, D2 and D4")
    if len(shape) == 2:
        raise BadRep(f"{g} does not act on the rows of R[{', '.join(map(str, shape))}]: S(n) permutes a set R[n, c]")
    raise BadRep(f"a group acts on R[c] (channels), R[n, c] (a set, S(n)) or R[h, h, c] (a grid, C4/D4), "
                 f"not on R[{', '.join(map(str, shape))}]")


def action(group: str, rep: str | None, shape: tuple[int, ...]) -> Action:
    """The action on a wire of ``shape`` (numbers): ``rep`` is ``None`` for the trivial one on every channel."""
    g = parse_group(group)
    spatial = spatial_of(g, shape)
    channels = shape[-1] if shape else 1
    r = R.trivial(g) * channels if rep is None else parse_rep(rep, group)
    if r.dim != channels:
        raise BadRep(f"`{rep}` has dimension {r.dim}, but the channel axis (the last) has {channels}")
    return Action(g, spatial, r, tuple(shape))


def channels_text(r: Rep) -> str | None:
    """The text a wire stores for ``r``: ``None`` where every channel is trivial."""
    return None if r.is_trivial else show(r)


# -- acting on arrays -------------------------------------------------------------


def grid_matrix(g: Group, element_: int) -> np.ndarray:
    """The 2 × 2 integer matrix of an element on centred (row, column) coordinates."""
    n = int(g.name[1:])
    model = g.models[element_]
    k, f = (model, 0) if g.name[0] == "C" else model  # type: ignore[misc]
    quarter = np.array([[0, -1], [1, 0]])
    rot = np.linalg.matrix_power(quarter, (int(k) * (4 // n)) % 4)
    return rot @ np.diag([1, -1]) if f else rot


def _grid_points(size: int) -> np.ndarray:
    """Doubled centred coordinates ``2i - (size - 1)`` of every cell, (size², 2), row-major."""
    i, j = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    return np.stack([2 * i.ravel() - (size - 1), 2 * j.ravel() - (size - 1)], axis=1)


@lru_cache(maxsize=256)
def grid_sources(group: str, size: int) -> np.ndarray:
    """``src[g, p]``: the cell that ``g`` moves to cell ``p`` of a size × size grid, flattened (``(g·x)[p] = x[src]``)."""
    g = parse_group(group)
    pts = _grid_points(size)
    index = {tuple(p): i for i, p in enumerate(pts.tolist())}
    out = np.zeros((g.order, size * size), dtype=np.int64)
    for e in range(g.order):
        inv = np.round(np.linalg.inv(grid_matrix(g, e))).astype(np.int64)
        out[e] = [index[tuple(q)] for q in (pts @ inv.T).tolist()]
    return out


@lru_cache(maxsize=256)
def set_sources(group: str) -> np.ndarray:
    """``src[g, j] = g⁻¹(j)``: the element a permutation moves to place ``j``."""
    g = parse_group(group)
    out = np.zeros((g.order, len(g.models[0])), dtype=np.int64)  # type: ignore[arg-type]
    for e, p in enumerate(g.models):
        out[e, list(p)] = np.arange(len(p))  # type: ignore[arg-type]
    return out


@lru_cache(maxsize=64)
def kernel_rep(group: str, size: int) -> Rep:
    """The group permuting the cells of an odd size × size kernel window: ``P(g) e_d = e_{g d}``."""
    g = parse_group(group)
    src = grid_sources(group, size)
    # (g·x)[p] = x[src[p]]: the cell src[p] goes to p, so e_d goes to e_{perm[d]} with perm = src⁻¹
    return Rep(f"window{size}({g})", g, rows=np.argsort(src, axis=1))


def act(x, a: Action, element_: int, xp=np):  # noqa: ANN001
    """``g·x`` for a batch ``x`` of shape ``(batch, *a.shape)`` (``xp``: ``numpy`` or ``jax.numpy``)."""
    if a.spatial == GRID:
        h = a.shape[0]
        flat = x.reshape(x.shape[0], h * h, x.shape[-1])
        flat = xp.take(flat, xp.asarray(grid_sources(a.group.name, h)[element_]), axis=1)
        x = flat.reshape(x.shape)
    elif a.spatial == SET:
        x = xp.take(x, xp.asarray(set_sources(a.group.name)[element_]), axis=1)
    return x if a.rep.is_trivial else a.rep.apply(x, element_, xp)
