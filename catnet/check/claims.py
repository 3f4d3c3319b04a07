"""Equivariance as a type: proving ``equivariant under G`` and ``invariant under G`` claims.

A claim on ``morphism f : A -> B equivariant under G`` says
``f(g·x) = g·f(x)`` for every ``g`` in ``G`` (``invariant``: ``f(g·x) =
f(x)``).  The proof is compositional, over the checked diagram: the
action of ``G`` on each wire is carried from the inputs through every
box, and each box must map the actions that reach it to the actions its
output carries.  How a generator acts is data in its table entry
(``Generator.acts``, ``catnet.library``); composition, ``⊗`` and the
structural morphisms keep equivariance when the actions agree.  Bodies
of definitions, ``repeat`` and ``inv`` are opened.  A wire without a
declared action is acted on trivially.

The first box that breaks the claim is named in an E0323 diagnostic with
the two actions that disagree.  NumPy only (``catnet.symmetry``), and
only for files that make a claim.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NoReturn

from ..errors import CatnetError
from ..ir import Box, Diagram, Ob, Span


@dataclass(frozen=True)
class Wire:
    """The action on one wire: ``spatial`` (``"grid"``, ``"set"``, ``None``) and the channels' representation."""

    spatial: str | None
    rep: object  # catnet.symmetry.reps.Rep
    shape: tuple

    @property
    def trivial(self) -> bool:
        return self.spatial is None and self.rep.is_trivial  # type: ignore[attr-defined]

    def key(self) -> tuple:
        if self.trivial:
            return ("trivial",)
        return (self.spatial, "trivial" if self.rep.is_trivial else self.rep.name)  # type: ignore[attr-defined]

    def show(self) -> str:
        from ..symmetry.actions import show

        if self.trivial:
            return "no action (every g acts as the identity)"
        where = {"grid": "turning the grid", "set": "permuting the set", None: ""}[self.spatial]
        rep = show(self.rep)  # type: ignore[arg-type]
        return f"{where} and {rep} on the channels" if where else f"{rep} on the channels"


class Broken(Exception):
    def __init__(self, box: Box, message: str, notes: list[str], help: str | None = None) -> None:
        super().__init__(message)
        self.box, self.message, self.notes, self.help = box, message, notes, help


class Prover:
    """Carries the actions of one group through diagrams."""

    def __init__(self, group: str, claims: "Callable[[str], tuple[str, str] | None] | None" = None) -> None:
        from ..symmetry.groups import parse

        self.group_name = group
        self.group = parse(group)
        #: a definition's own claim (kind, group) by name, for the definitions a body uses
        self.claims = claims
        self.memo: dict[tuple, list[Wire]] = {}

    # -- actions on typed wires ---------------------------------------------------

    def wire(self, ob: Ob) -> Wire:
        """The action a typed wire carries (trivial without ``under``)."""
        from ..symmetry.actions import BadRep, action, parse_rep
        from ..symmetry.reps import trivial

        shape = tuple(d if isinstance(d, int) else None for d in ob.shape)
        if not ob.group:
            return self.trivial(shape)
        if ob.group != self.group_name:
            raise _Other(ob)
        try:
            if None in shape:
                # A generic definition: the action by the wire's rank, the representation by its text.
                spatial = ("grid" if len(shape) == 3 else "set") if self._spatial_rank(len(shape)) else None
                return Wire(spatial, parse_rep(ob.rep, ob.group) if ob.rep else trivial(self.group), shape)
            a = action(ob.group, ob.rep, shape)  # type: ignore[arg-type]
        except BadRep as e:
            raise _Other(ob, str(e)) from None
        return Wire(a.spatial, a.rep, shape)

    def _spatial_rank(self, rank: int) -> bool:
        """Whether the group moves the cells of a wire of this rank (a grid of rank 3, a set of rank 2)."""
        letter = self.group.name[0] if " × " not in self.group.name else "?"
        return (rank == 3 and letter in "CD") or (rank == 2 and letter == "S")

    def trivial(self, shape: tuple) -> Wire:
        from ..symmetry.reps import trivial

        channels = shape[-1] if shape and isinstance(shape[-1], int) else 1
        return Wire(None, trivial(self.group) * channels, shape)

    # -- diagrams --------------------------------------------------------------------

    def diagram(self, d: Diagram, ins: list[Wire]) -> list[Wire]:
        """The actions on ``d``'s outputs given those on its inputs (Broken where a box breaks them).

        The walk is iterative (a chain of 10,000 definitions is no deeper
        for Python than one), opens each body once per set of incoming
        actions (``memo``), and trusts a definition that claims the same
        symmetry itself: it was proved when it was checked.
        """
        # A frame: [diagram, wires, next layer, what the frame's parent waits for].
        stack: list[list] = [[d, list(ins), 0, None]]
        try:
            while True:
                frame = stack[-1]
                body, wires, i, _ = frame
                if i == len(body.layers):
                    stack.pop()
                    if not stack:
                        return wires
                    parent = stack[-1]
                    box, k, n, key, again = parent[3]
                    if again:
                        parent[3] = (box, k, n, key, again - 1)
                        stack.append([box.body, list(wires), 0, None])
                        continue
                    self.memo[key] = wires
                    parent[1][k : k + n] = wires
                    parent[2] += 1
                    parent[3] = None
                    continue
                layer = body.layers[i]
                box, k, n = layer.box, len(layer.left), len(layer.box.dom)
                here = wires[k : k + n]
                self.check_inputs(box, here)
                if box.kind in ("composite", "repeat") and box.body is not None and not self.trusted(box):
                    key = (id(box.body), box.kind, tuple(w.key() for w in here))
                    if key not in self.memo:
                        # `repeat n`: the same body twice shows whether the actions are a fixed point
                        again = min(int(box.kwargs.get("n", 1)), 2) - 1 if box.kind == "repeat" else 0
                        frame[3] = (box, k, n, key, again)
                        stack.append([box.body, list(here), 0, None])
                        continue
                    out = self.memo[key]
                else:
                    out = self.leaf(box, here)
                wires[k : k + n] = out
                frame[2] += 1
        except Broken as e:
            for frame in reversed(stack[:-1]):
                box = frame[3][0]
                if box.kind == "composite":
                    where = f" at line {box.span.line}" if box.span is not None else ""
                    e.notes.append(f"inside `{box.name}`, used{where}")
            raise

    def check_inputs(self, box: Box, ins: list[Wire]) -> None:
        """Broken where the actions reaching ``box`` are not those its input types declare."""
        claim = self.trusted(box)
        for i, (have, ob) in enumerate(zip(ins, box.dom.obs)):
            want = self.typed(box, ob)
            if want is None and claim:
                want = self.trivial(tuple(ob.shape))  # a claimed definition's plain input is acted on trivially
            if want is not None and have.key() != want.key():
                where = f" (input {i + 1})" if len(ins) > 1 else ""
                raise Broken(box, f"`{box.name}` takes wires acted on by {self.group_name} differently from what reaches it{where}",
                             [f"what reaches it: {have.show()}", f"what `{box.name}` takes, {ob}: {want.show()}"],
                             "the actions must agree where wires meet: declare the objects with the same `under … as …`")

    def trusted(self, box: Box) -> str | None:
        """``"equivariant"``/``"invariant"`` for a use of a definition that claims this group itself, else ``None``."""
        if box.kind != "composite" or box.body is None or self.claims is None:
            return None
        claim = self.claims(box.name)
        return claim[0] if claim is not None and claim[1] == self.group_name else None

    def leaf(self, box: Box, ins: list[Wire]) -> list[Wire]:
        """The actions on the outputs of a box that is not opened."""
        claim = self.trusted(box)
        if claim == "equivariant":
            return [self.typed_or_trivial(box, ob) for ob in box.cod.obs]
        if claim == "invariant":
            return [self.trivial(tuple(ob.shape)) for ob in box.cod.obs]
        if box.kind == "inv" and box.body is not None:
            out = [self.typed_or_trivial(box, ob) for ob in box.cod.obs]
            back = self.diagram(box.body, out)  # f is equivariant out -> ins, so its inverse ins -> out
            if [w.key() for w in back] != [w.key() for w in ins]:
                raise Broken(box, f"`inv` of a body that does not map {self.group_name}'s actions back", [])
            return out
        from ..library import GENERATORS

        gen = GENERATORS.get(box.name)
        acts = gen.acts if gen is not None and box.kind in ("generator", "structural") else None
        return getattr(self, f"acts_{acts}")(box, ins) if acts else self.acts_none(box, ins)

    def typed(self, box: Box, ob: Ob) -> Wire | None:
        if not ob.group:
            return None
        try:
            return self.wire(ob)
        except _Other as e:
            raise Broken(box, f"`{box.name}` takes {ob}, a {ob.group}-space, inside a claim about {self.group_name}",
                         [e.detail] if e.detail else [], f"declare the wires `under {self.group_name}`") from None

    def typed_or_trivial(self, box: Box, ob: Ob) -> Wire:
        w = self.typed(box, ob)
        return w if w is not None else self.trivial(tuple(ob.shape))

    # -- how generators act (Generator.acts) ------------------------------------------

    def acts_none(self, box: Box, ins: list[Wire]) -> list[Wire]:
        bad = next((w for w in ins if not w.trivial), None)
        if bad is not None:
            helps = {
                "dense": "use `glinear`, the equivariant linear map, whose weights are solved for the representations",
                "conv": "use `gconv`, the steerable convolution for C4/D4 grids",
            }
            raise Broken(box, f"`{box.name}` is not equivariant: its input is acted on by {self.group_name}",
                         [f"its input: {bad.show()}", f"its output would need the matching action, which `{box.name}` does not keep"],
                         helps.get(box.name, f"`{box.name}` does not state how it acts on representations; "
                                             "equivariant layers are glinear, gconv, gpool and deepsets (docs/symmetry.md)"))
        return [self.trivial(tuple(ob.shape)) for ob in box.cod.obs]

    def acts_equivariant(self, box: Box, ins: list[Wire]) -> list[Wire]:
        return [self.typed_or_trivial(box, ob) for ob in box.cod.obs]

    def acts_pointwise(self, box: Box, ins: list[Wire]) -> list[Wire]:
        if len(ins) == 2 and ins[0].key() != ins[1].key():
            self.disagree(box, ins)
        for w in ins:
            if not w.rep.is_permutation:  # type: ignore[attr-defined]
                from ..symmetry.actions import show

                raise Broken(box, f"`{box.name}` acts on each coordinate, which breaks the claim on {show(w.rep)}",  # type: ignore[arg-type]
                             [f"its input: {w.show()}",
                              "a pointwise nonlinearity commutes only with representations that permute coordinates "
                              "(trivial, regular, quotient, permutation); this one mixes them, e.g. relu(−x) ≠ −relu(x)"],
                             "use regular channels for nonlinearities (`glinear` maps between representations)")
        return [ins[0]]

    def acts_linear(self, box: Box, ins: list[Wire]) -> list[Wire]:
        return ins

    def acts_per_position(self, box: Box, ins: list[Wire]) -> list[Wire]:
        (w,) = ins
        if w.trivial:
            return self.acts_none(box, ins)
        axis = int(box.kwargs.get("axis", -1)) % max(len(w.shape), 1)
        if w.rep.is_trivial and axis == len(w.shape) - 1:  # type: ignore[attr-defined]
            return [Wire(w.spatial, self.trivial(tuple(box.cod.obs[0].shape)).rep, tuple(box.cod.obs[0].shape))]
        return self.acts_none(box, ins)

    def acts_axis(self, box: Box, ins: list[Wire]) -> list[Wire]:
        (w,) = ins
        if w.trivial:
            return ins
        rank = len(w.shape)
        axis = int(box.kwargs.get("axis", -1)) % rank
        if axis == rank - 1 and w.rep.is_permutation:  # type: ignore[attr-defined]
            return ins
        if w.spatial == "set" and axis == 0:
            return ins
        raise Broken(box, f"`{box.name}(axis={box.kwargs.get('axis', -1)})` breaks the claim: the group moves that axis's entries "
                          "among other axes", [f"its input: {w.show()}"],
                     "apply it along the channel axis of a permutation representation, or along a set's axis")

    def acts_pool(self, box: Box, ins: list[Wire]) -> list[Wire]:
        (w,) = ins
        if w.trivial:
            return self.acts_none(box, ins)
        if box.name.endswith("maxpool") and not w.rep.is_permutation:  # type: ignore[attr-defined]
            return self.acts_pointwise(box, ins)
        shape = tuple(box.cod.obs[0].shape)
        return [Wire(None, w.rep, shape)]

    def acts_window(self, box: Box, ins: list[Wire]) -> list[Wire]:
        (w,) = ins
        if w.trivial:
            return self.acts_none(box, ins)
        kw = box.kwargs
        win, stride, pad = int(kw["window"]), int(kw.get("stride") or kw["window"]), kw.get("padding", "valid")  # type: ignore[arg-type]
        side = w.shape[0]
        tiles = pad == "valid" and stride == win and isinstance(side, int) and side % win == 0
        centred = pad == "same" and stride == 1 and win % 2 == 1
        if w.spatial == "grid" and not (tiles or centred):
            raise Broken(box, f"`{box.name}` windows do not tile the grid symmetrically, which breaks the claim",
                         [f"its input: {w.show()}", f"window {win}, stride {stride}, padding {pad} on a side of {side}"],
                         "use windows that tile the grid (stride = window, dividing its side, padding \"valid\")")
        if box.name == "maxpool" and not w.rep.is_permutation:  # type: ignore[attr-defined]
            return self.acts_pointwise(box, ins)
        return [Wire(w.spatial, w.rep, tuple(box.cod.obs[0].shape))]

    def acts_structural(self, box: Box, ins: list[Wire]) -> list[Wire]:
        name = box.name
        if name in ("id",):
            return ins
        if name == "copy":
            return ins + ins
        if name == "discard":
            return []
        if name == "swap":
            return [ins[1], ins[0]]
        if name == "fst":
            return [ins[0]]
        if name == "snd":
            return [ins[1]]
        if name in ("add", "sub"):
            if ins[0].key() != ins[1].key():
                self.disagree(box, ins)
            return [ins[0]]
        if name == "concat":
            a, b = ins
            if a.trivial and b.trivial:
                return [self.trivial(tuple(box.cod.obs[0].shape))]
            rank = len(a.shape)
            axis = int(box.kwargs.get("axis", -1)) % rank
            if axis != rank - 1 or a.spatial != b.spatial:
                raise Broken(box, "`concat` breaks the claim: it joins G-space wires along an axis the group moves",
                             [f"input 1: {a.show()}", f"input 2: {b.show()}"], "concatenate along the channel axis")
            from ..symmetry.reps import direct_sum

            return [Wire(a.spatial, direct_sum(a.rep, b.rep), tuple(box.cod.obs[0].shape))]  # type: ignore[arg-type]
        return self.acts_none(box, ins)

    def disagree(self, box: Box, ins: list[Wire]) -> NoReturn:
        raise Broken(box, f"`{box.name}` joins two wires that {self.group_name} acts on differently",
                     [f"input 1: {ins[0].show()}", f"input 2: {ins[1].show()}"],
                     "both wires must carry the same action: declare them with the same `under … as …`")


class _Other(Exception):
    def __init__(self, ob: Ob, detail: str = "") -> None:
        super().__init__(str(ob))
        self.ob, self.detail = ob, detail


def prove(name: str, claim_kind: str, group: str, body: Diagram, span: Span | None, claim_span: Span | None,
          claims: "Callable[[str], tuple[str, str] | None] | None" = None) -> None:
    """Raise E0323 unless ``body`` meets the claim ``claim_kind under group``.

    ``claims`` gives the claims of the definitions the body uses (proved
    already, so trusted).
    """
    p = Prover(group, claims)

    def declared(ob: Ob, what: str) -> Wire:
        try:
            return p.wire(ob)
        except _Other as e:
            raise CatnetError("E0323", f"`{name}` claims to be {claim_kind} under {group}, but its {what} {ob} is a {ob.group}-space",
                              claim_span or span, notes=[e.detail] if e.detail else [],
                              help=f"declare the object `under {group}`") from None

    ins = [declared(ob, "input") for ob in body.dom.obs]
    want = [declared(ob, "output") for ob in body.cod.obs]
    if claim_kind == "invariant":
        for ob, w in zip(body.cod.obs, want):
            if not w.trivial:
                raise CatnetError("E0323", f"`{name}` claims to be invariant under {group}, but its output {ob} carries an action",
                                  claim_span or span, notes=[f"{ob}: {w.show()}"],
                                  help=f"an invariant map ends in wires {group} leaves alone: drop `as …`, or claim `equivariant`")
    try:
        got = p.diagram(body, ins)
    except Broken as e:
        notes = list(e.notes)
        raise CatnetError("E0323", f"`{name}` is not {claim_kind} under {group}: {e.message}", e.box.span or span,
                          notes=notes, help=e.help) from None
    for i, (have, need) in enumerate(zip(got, want)):
        if have.key() != need.key():
            where = f" (output {i + 1})" if len(want) > 1 else ""
            raise CatnetError("E0323", f"`{name}` is not {claim_kind} under {group}: its body ends in another action{where}",
                              span, notes=[f"the body gives: {have.show()}", f"the claim needs {body.cod.obs[i]}: {need.show()}"],
                              help="end in the declared representation: `glinear` maps between representations, "
                                   "`gpool` and `global_avgpool` make features invariant")
