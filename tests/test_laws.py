"""Laws of the IR, on random well-typed diagrams (hypothesis).

Types are drawn first, then morphisms between them: a diagram is grown one
layer at a time by picking a box that fits somewhere in the current wires.
Composition is layer concatenation, so associativity and the unit laws hold
structurally; ``pretty`` must check back to an equal diagram.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from catnet import loads
from catnet.ir import Box, Diagram, Layer, Ob, Ty
from catnet.library import GENERATORS
from catnet.pretty import pretty, pretty_ty

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def obs() -> st.SearchStrategy[Ob]:
    return st.builds(
        lambda shape: Ob("R", tuple(shape)),
        st.lists(st.integers(1, 6), min_size=1, max_size=2),
    )


def types(min_size: int = 0) -> st.SearchStrategy[Ty]:
    return st.lists(obs(), min_size=min_size, max_size=3).map(lambda o: Ty(tuple(o)))


def _box(name: str, dom: tuple[Ob, ...], cod: tuple[Ob, ...], **args: object) -> Box:
    g = GENERATORS[name]
    full = {a.name: a.default for a in g.args} | args  # the checker fills in every default
    return Box(name, Ty(dom), Ty(cod), kind="structural" if g.structural else "generator",
               args=tuple(sorted(full.items())), iso=g.iso)


@st.composite
def layer(draw: st.DrawFn, wires: Ty) -> Layer:
    """A box that fits the wires ``wires`` at some position, whiskered."""
    n = len(wires)
    options = ["dense", "relu", "tanh", "copy", "layernorm", "reverse", "dropout"] if n else []
    if n >= 1:
        options += ["discard", "split"]
    if n >= 2:
        options += ["swap", "add", "concat"]
    if not options:
        # Only the unit: create a wire from nothing is not a generator, so the
        # empty diagram is the only morphism out of I here.
        return None  # type: ignore[return-value]
    name = draw(st.sampled_from(options))
    arity = 2 if name in ("swap", "add", "concat") else 1
    i = draw(st.integers(0, n - arity))
    a = wires.obs[i]
    if name == "dense":
        m = draw(st.integers(1, 6))
        box = _box("dense", (a,), (Ob("R", a.shape[:-1] + (m,)),), features=m)
    elif name in ("relu", "tanh", "layernorm", "reverse"):
        box = _box(name, (a,), (a,))
    elif name == "dropout":
        box = _box(name, (a,), (a,), rate=0.25)
    elif name == "copy":
        box = _box("copy", (a,), (a, a))
    elif name == "discard":
        box = _box("discard", (a,), ())
    elif name == "split":
        last = a.shape[-1]
        if last < 2:
            box = _box("relu", (a,), (a,))
        else:
            k = draw(st.integers(1, last - 1))
            box = _box("split", (a,), (Ob("R", a.shape[:-1] + (k,)), Ob("R", a.shape[:-1] + (last - k,))), axis=-1, size=k)
    else:
        b = wires.obs[i + 1]
        if name == "swap":
            box = _box("swap", (a, b), (b, a))
        elif name == "add":
            box = _box("add", (a, a), (a,)) if a == b else _box("swap", (a, b), (b, a))
        else:
            if len(a.shape) == len(b.shape) and a.shape[:-1] == b.shape[:-1]:
                box = _box("concat", (a, b), (Ob("R", a.shape[:-1] + (a.shape[-1] + b.shape[-1],)),), axis=-1)
            else:
                box = _box("swap", (a, b), (b, a))
    if box.dom != Ty(wires.obs[i : i + len(box.dom)]):
        box = _box("relu", (a,), (a,))
    return Layer(Ty(wires.obs[:i]), box, Ty(wires.obs[i + len(box.dom) :]))


@st.composite
def diagrams(draw: st.DrawFn, dom: Ty | None = None, max_layers: int = 5) -> Diagram:
    start = dom if dom is not None else draw(types())
    current = start
    layers: list[Layer] = []
    for _ in range(draw(st.integers(0, max_layers))):
        lay = draw(layer(current))
        if lay is None:
            break
        layers.append(lay)
        current = lay.cod
    return Diagram(start, current, tuple(layers))


@st.composite
def composable(draw: st.DrawFn) -> tuple[Diagram, Diagram, Diagram]:
    f = draw(diagrams())
    g = draw(diagrams(f.cod))
    h = draw(diagrams(g.cod))
    return f, g, h


@SETTINGS
@given(composable())
def test_composition_is_associative(fgh: tuple[Diagram, Diagram, Diagram]) -> None:
    f, g, h = fgh
    assert f.then(g).then(h) == f.then(g.then(h))


@SETTINGS
@given(diagrams())
def test_identities_are_units(f: Diagram) -> None:
    assert Diagram.id(f.dom).then(f) == f == f.then(Diagram.id(f.cod))


@SETTINGS
@given(diagrams(), diagrams(), diagrams())
def test_tensor_is_associative_with_unit(f: Diagram, g: Diagram, h: Diagram) -> None:
    assert f.tensor(g).tensor(h) == f.tensor(g.tensor(h))
    assert f.tensor(Diagram.id(Ty())) == f == Diagram.id(Ty()).tensor(f)
    assert f.tensor(g).dom == f.dom @ g.dom and f.tensor(g).cod == f.cod @ g.cod


@SETTINGS
@given(diagrams())
def test_pretty_checks_back_to_the_same_diagram(d: Diagram) -> None:
    text = f"morphism t : {pretty_ty(d.dom)} -> {pretty_ty(d.cod)} = {pretty(d)}\n"
    assert loads(text).diagram("t") == d, text


@SETTINGS
@given(diagrams(), diagrams())
def test_pretty_of_parallel_composition(f: Diagram, g: Diagram) -> None:
    d = f.tensor(g)
    text = f"morphism t : {pretty_ty(d.dom)} -> {pretty_ty(d.cod)} = {pretty(d)}\n"
    assert loads(text).diagram("t") == d
