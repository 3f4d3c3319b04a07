"""The checker: typing, inference, templates, wiring, sharing, imports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from catnet import CatnetError, load, loads
from catnet.ir import Box, Diagram, Ob, Ty

from conftest import EXAMPLES, ROOT


def R(*shape: int) -> Ty:
    return Ty((Ob("R", shape),))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_examples_check(path: Path) -> None:
    m = load(path)
    assert m.entry is not None, "every example names its entry with `main`"
    d = m.diagram()
    assert d.layers


def test_sizes_come_from_the_types() -> None:
    m = loads("object I8 = R[64]\nobject H = R[128]\nmorphism f : I8 -> H = dense ; relu")
    dense, relu = m.diagram("f").boxes
    assert dense.dom == R(64) and dense.cod == R(128)
    assert dense.kwargs["features"] == 128
    assert relu.dom == R(128)


def test_cnn_shapes() -> None:
    m = load(ROOT / "examples" / "digits_cnn.cat")
    shapes = [(b.name, b.cod) for b in m.diagram().all_boxes() if b.kind != "composite"]
    assert ("flatten", R(128)) in shapes
    assert shapes[0] == ("reshape", Ty((Ob("R", (8, 8, 1)),)))


def test_names_are_kept_for_display_but_not_compared() -> None:
    m = loads("object Hidden = R[8]\nmorphism f : Hidden -> R[8] = relu")
    d = m.diagram("f")
    assert str(d.dom) == "Hidden"
    assert d.dom == R(8)


def test_polymorphic_definitions_instantiate_per_use() -> None:
    m = loads(
        "morphism block[d] : R[d] -> R[d] = layernorm ; (dense : R[d] -> R[d * 2]) ; dense\n"
        "morphism net : R[8] -> R[16] = block ; (dense : R[8] -> R[16]) ; block[16]\n"
    )
    boxes = [b for _, b in m.diagram("net").walk() if b.name == "dense"]
    assert [b.cod for b in boxes] == [R(16), R(8), R(16), R(32), R(16)]


def test_template_with_morphism_parameter() -> None:
    m = loads(
        "morphism residual[d](f : R[d] -> R[d]) : R[d] -> R[d] = copy ; (f ⊗ id) ; add\n"
        "morphism net : R[8] -> R[8] = residual(dense ; relu) ; residual(tanh)\n"
    )
    assert m["residual"].is_template and m["residual"].body is None
    names = [b.name for _, b in m.diagram("net").walk()]
    assert names.count("residual") == 2 and "dense" in names and "tanh" in names


def test_copy_and_pairing() -> None:
    m = loads("morphism f : R[4] -> R[4] ⊗ R[4] = <relu, tanh>")
    d = m.diagram("f")
    assert d.boxes[0].name == "copy"
    assert d.cod == R(4) @ R(4)


def test_repeat_is_one_box_with_a_body() -> None:
    m = loads("morphism b : R[4] -> R[4] = dense ; relu\nmorphism f : R[4] -> R[4] = repeat 6 b")
    (box,) = m.diagram("f").boxes
    assert box.kind == "repeat" and box.kwargs["n"] == 6 and box.name == "b"


def test_shared_instance_is_marked() -> None:
    m = load(ROOT / "examples" / "siamese.cat")
    encs = [b for b in m.diagram().all_boxes() if b.name == "enc"]
    assert len(encs) == 2 and all(b.shared == "enc" for b in encs)
    plain = loads("morphism e : R[4] -> R[2] = dense\nmorphism f : R[4] ⊗ R[4] -> R[2] ⊗ R[2] = e ⊗ e")
    assert all(b.shared is None for b in plain.diagram("f").boxes)


def test_invertibility_is_tracked() -> None:
    m = loads(
        "morphism flow : R[8] -> R[8] = coupling ; reverse ; coupling\n"
        "morphism back : R[8] -> R[8] = inv(flow)\n"
        "morphism swapback : R[2] ⊗ R[3] -> R[2] ⊗ R[3] = swap ; inv((swap : R[2] ⊗ R[3] -> R[3] ⊗ R[2]))\n"
    )
    assert m["flow"].iso and m["back"].iso
    (inv_box,) = m.diagram("back").boxes
    assert inv_box.kind == "inv" and inv_box.body is not None
    assert inv_box.body.boxes[0].body == m.diagram("flow")
    assert m.diagram("swapback").cod == R(2) @ R(3)


def test_wiring_form_elaborates_to_copy_and_discard() -> None:
    m = loads(
        "morphism b(x : R[4], unused : R[2]) -> R[4] {\n"
        "  h = relu(x)\n"
        "  _scratch = tanh(h)\n"
        "  return x + h\n"
        "}\n"
    )
    d = m.diagram("b")
    names = [bx.name for bx in d.boxes]
    assert d.dom == R(4) @ R(2) and d.cod == R(4)
    assert names.count("discard") == 2  # the unused input and `_scratch`
    assert names.count("copy") == 2  # x and h are each used twice
    assert names[-1] == "add"


def test_wiring_and_point_free_agree_on_types() -> None:
    m = load(ROOT / "examples" / "transformer.cat")
    assert m["block"].dom == m["mlp"].dom


def test_symbolic_sequence_length() -> None:
    m = load(ROOT / "examples" / "transformer.cat")
    (ob,) = m["encoder"].dom.obs
    assert ob.base == "Z" and str(ob.shape[0]) == "T"


def test_scan_types() -> None:
    m = loads(
        "object S = R[8]\n"
        "morphism cell : S ⊗ R[4] -> S ⊗ R[3] = concat ; (dense : R[12] -> S) ; tanh ; copy ; (id ⊗ dense)\n"
        "morphism rnn : Seq[T](R[4]) -> Seq[T](R[3]) = scan[S](cell)\n"
    )
    (box,) = m.diagram("rnn").boxes
    assert box.kind == "scan" and box.kwargs["state"] == 1
    assert str(box.dom.obs[0].shape[0]) == "T" and box.cod.obs[0].shape[1] == 3


def test_imports_are_relative_to_the_importing_file(tmp_path: Path) -> None:
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "blocks.cat").write_text("object V = R[4]\nmorphism blk : V -> V = relu\n")
    (tmp_path / "net.cat").write_text('import "lib/blocks.cat"\nmorphism net : V -> V = blk ; blk\n')
    m = load(tmp_path / "net.cat")
    assert [b.name for b in m.diagram("net").boxes] == ["blk", "blk"]
    assert list(m.definitions) == ["net"]


def test_import_diamond_is_fine(tmp_path: Path) -> None:
    (tmp_path / "base.cat").write_text("object V = R[4]\n")
    (tmp_path / "a.cat").write_text('import "base.cat"\nmorphism a : V -> V = relu\n')
    (tmp_path / "b.cat").write_text('import "base.cat"\nmorphism b : V -> V = tanh\n')
    (tmp_path / "top.cat").write_text('import "a.cat"\nimport "b.cat"\nmorphism t : V -> V = a ; b\n')
    assert load(tmp_path / "top.cat").diagram("t").cod == R(4)


def test_error_in_imported_file_is_located_there(tmp_path: Path) -> None:
    (tmp_path / "bad.cat").write_text("morphism b : R[4] -> R[4] = rleu\n")
    (tmp_path / "top.cat").write_text('import "bad.cat"\n')
    with pytest.raises(CatnetError) as info:
        load(tmp_path / "top.cat")
    assert info.value.span is not None and info.value.span.file.endswith("bad.cat")
    assert "rleu" in info.value.render()


def test_missing_file_and_directory(tmp_path: Path) -> None:
    for target in (tmp_path / "nope.cat", tmp_path):
        with pytest.raises(CatnetError) as info:
            load(target)
        assert info.value.code == "E0001"


def test_keywords_cannot_be_defined() -> None:
    with pytest.raises(CatnetError):
        loads("morphism repeat : R[4] -> R[4] = relu")


def test_diagram_of_template_is_an_error() -> None:
    m = loads("morphism r(f : R[2] -> R[2]) : R[2] -> R[2] = f")
    with pytest.raises(CatnetError):
        m.diagram("r")


def test_entry_defaults_to_the_last_morphism() -> None:
    m = loads("morphism a : R[2] -> R[2] = relu\nmorphism b : R[2] -> R[2] = a")
    assert m.entry_name() == "b"


def test_check_does_not_import_jax() -> None:
    code = (
        "import sys, catnet.cli as c\n"
        f"rc = c.main(['check', '-q', *{[str(p) for p in EXAMPLES]!r}])\n"
        "assert rc == 0, rc\n"
        "assert 'jax' not in sys.modules and 'flax' not in sys.modules, 'JAX was imported'\n"
        # nor NumPy: a group's table and the representations checking needs are plain Python
        "assert 'numpy' not in sys.modules, 'NumPy was imported'\n"
        f"c.main(['fmt', '--check', *{[str(p) for p in EXAMPLES]!r}])\n"
        "assert 'jax' not in sys.modules\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_ir_is_hashable_and_deterministic() -> None:
    a = load(ROOT / "examples" / "transformer.cat").diagram()
    b = load(ROOT / "examples" / "transformer.cat").diagram()
    assert a == b and hash(a) == hash(b)
    assert isinstance(a.boxes[0], Box) and isinstance(a, Diagram)


def test_solving_sizes_walks_each_definition_once(monkeypatch):
    """Applying a definition's solved sizes does not walk the definitions it uses (a chain stays linear)."""
    from catnet import ir

    calls = []
    plain = ir._subst_plain
    monkeypatch.setattr(ir, "_subst_plain", lambda box, env, memo: calls.append(box) or plain(box, env, memo))
    n = 200
    text = "object V = R[8]\n" + "\n".join(
        f"morphism f{i} : V -> V = {'f' + str(i - 1) + ' ; ' if i else ''}dense ; relu" for i in range(n)) + "\n"
    loads(text)
    assert len(calls) <= 3 * n  # dense, relu (and f_{i-1}'s box) of each definition, not all those below it


def test_a_single_axis_grown_past_the_element_limit_is_refused_at_its_box() -> None:
    # Each `copy ; concat` doubles one axis: ten of them take 2^31 - 1 past 2^40 elements.
    body = " ; ".join(["copy ; concat"] * 10)
    with pytest.raises(CatnetError) as info:
        loads(f"object A = R[2147483647]\nmorphism f : A -> A = {body} ; dense\n", "big.cat")
    e = info.value
    assert e.code == "E0307" and "absurdly large" in e.message
    assert e.span is not None and e.span.column == 23 + len(body) - len("concat")  # the last `concat`

