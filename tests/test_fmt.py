"""catnet fmt: canonical, idempotent, meaning- and comment-preserving."""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from catnet import ast as A
from catnet.check import check_text
from catnet.cli import main
from catnet.errors import CatnetError
from catnet.fmt import dim, expr, format_module, format_text, statement
from catnet.ir import Box, Span, Ty
from catnet.pretty import pretty
from catnet.syntax import decode, parse

from conftest import EXAMPLES, ROOT
from test_fuzz import mutate_tokens

MESSY = """\
# header comment

object   Image=R[ 64 ]   # pixels
object Hidden = R[128]
object Logits=R[10]



morphism encoder:Image->Hidden=dense;relu  # trailing
# before head
morphism head : Hidden -> Logits = (dense)
morphism net : Image @ Image -> Logits @ Logits = (encoder >> head) @ (encoder ; head) ; (id ⊗ id)
morphism b(x : Image) -> Image {   # the block
  # inside
  h = x + relu(x)   # add
  return h
}
# the end
"""


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_examples_are_canonical(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert format_text(text) == text


def test_messy_input_is_canonicalised() -> None:
    out = format_text(MESSY)
    assert "object Image  = R[64]  # pixels" in out
    assert "morphism encoder : Image -> Hidden = dense ; relu  # trailing" in out
    assert "morphism net : Image ⊗ Image -> Logits ⊗ Logits = (encoder ; head ⊗ encoder ; head) ; (id ⊗ id)" not in out
    assert "(encoder ; head) ⊗ (encoder ; head)" in out
    assert "\n\n\n" not in out


def test_idempotent_and_meaning_preserving() -> None:
    once = format_text(MESSY)
    assert format_text(once) == once
    assert parse(once).decls == parse(MESSY).decls


def test_every_comment_survives() -> None:
    out = format_text(MESSY)
    for comment in ["# header comment", "# pixels", "# trailing", "# before head", "# the block", "# inside", "# add", "# the end"]:
        assert comment in out


def test_comment_order_is_kept() -> None:
    out = format_text(MESSY)
    positions = [out.index(c) for c in ["# header", "# pixels", "# trailing", "# before head", "# the block", "# inside", "# add", "# the end"]]
    assert positions == sorted(positions)


def test_long_bodies_wrap() -> None:
    body = " ; ".join(["dense", "relu"] * 30)
    out = format_text(f"morphism f : R[4] -> R[4] = {body}\n")
    assert all(len(line) <= 100 for line in out.splitlines())
    assert parse(out).decls == parse(f"morphism f : R[4] -> R[4] = {body}\n").decls


def test_nested_pairing_keeps_brackets_apart() -> None:
    out = format_text("morphism f : A -> B = <f, <g, h> >\n")
    assert "> >" in out
    assert parse(out).decls == parse("morphism f : A -> B = <f, <g, h> >").decls


def test_bad_syntax_is_reported() -> None:
    with pytest.raises(CatnetError):
        format_text("morphism f : = \n")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(EXAMPLES), st.lists(st.sampled_from(["\n", "  ", "\t", " # note\n"]), max_size=6), st.randoms())
def test_whitespace_and_comment_noise(path: Path, noise: list[str], rnd) -> None:  # noqa: ANN001
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    for n in noise:
        i = rnd.randrange(len(lines) + 1)
        # Noise goes between lines, where whitespace and comments are free.
        lines.insert(i, n if n.endswith("\n") else n + "\n")
    noisy = "".join(lines)
    out = format_text(noisy)
    assert format_text(out) == out
    assert parse(out).decls == parse(noisy).decls


# -- fmt keeps its promises on every mutant that parses -----------------------------

#: Forms the examples lack, in odd layouts: comments in odd places, nested
#: pairings, negative and float literals, strings with quotes and
#: backslashes, the wiring form, a form feed in a comment, CR-only and CRLF
#: line ends.
ODD = (
    "# odd.cat\fwith a form feed in a comment\n"
    "object A = R[4]  # trailing\n"
    "object B=R[ 2 , 3 ]\n\n\n"
    "morphism p : A -> A ⊗ A ⊗ A = <relu, <tanh, sigmoid> > # pairs\n"
    "morphism q : A -> A = <<relu, tanh>, <sigmoid, id> > ; add ; add ; add\n"
    "morphism n : A -> A = dropout(-0.5) ; f(x=-3, y=2.5e-3, z=1e16, s=\"a \\\"q\\\" \\\\ b\", t=true)\n"
    "morphism r : A -> A = repeat 2 repeat 3 (relu ; tanh) ⊗ id ; (inv(scan[A](id)) : A -> A)\n"
    "morphism w(x : A, y : A) -> A {  # header\n"
    "  # inside\n"
    "  h, _g = split(x + y + (x + y), 2, size=4 * 2 - 1)  # stmt\n"
    "  return relu(h) + y\n"
    "}  # closing\n"
    "morphism s[d] : R[d] -> R[d * (d + 1) - (d - 2)] =\n"
    "  # a comment inside the body\n"
    "  dense ; relu  # after\n"
    "morphism cr : A -> A = relu\r# a CR-only line end\rmorphism crlf : A -> A = tanh\r\n"
    "# the end\n"
).encode()

CORPUS = ROOT / "tests" / "corpus" / "constructs"
#: (source bytes, the directory its imports resolve in)
MUTATED = [(p.read_bytes(), p.parent) for p in [*EXAMPLES, *sorted(CORPUS.glob("*.cat"))]] + [(ODD, ROOT)]


@st.composite
def mutants(draw: st.DrawFn) -> tuple[bytes, Path]:
    """A source mutated as ``tests/test_fuzz.py`` does, with the directory it came from."""
    data, base = draw(st.sampled_from(MUTATED))
    if draw(st.booleans()):
        buf = bytearray(data)
        for _ in range(draw(st.integers(1, 4))):
            i = draw(st.integers(0, len(buf)))
            kind = draw(st.sampled_from(["insert", "delete", "replace"]))
            if kind == "insert":
                buf[i:i] = draw(st.sampled_from([b" ", b"\n", b"\r", b"\r\n", b"\f", b"#", b"(", b")"])) if draw(st.booleans()) \
                    else draw(st.binary(min_size=1, max_size=3))
            elif kind == "delete":
                del buf[i : draw(st.integers(i, min(len(buf), i + 8)))]
            elif buf:
                buf[min(i, len(buf) - 1)] = draw(st.integers(0, 255))
        return bytes(buf), base
    return mutate_tokens(draw, data), base


def _verdict(text: str, base: Path) -> str | None:
    """``check``'s verdict: ``None`` for success, else the error code."""
    try:
        check_text(text, "fuzz.cat", base_dir=base)
    except CatnetError as e:
        return e.code
    return None


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(mutants())
def test_fmt_keeps_its_promises_on_every_mutant_that_parses(case: tuple[bytes, Path]) -> None:
    data, base = case
    try:
        text = decode(data, "fuzz.cat")
        tree = parse(text, "fuzz.cat")
    except CatnetError:
        return  # fmt promises nothing about text that does not parse
    out = format_text(text, "fuzz.cat")
    assert format_text(out, "fuzz.cat") == out, "fmt is not idempotent"
    assert parse(out, "fuzz.cat").decls == tree.decls, "the formatted text means something else"
    assert _verdict(out, base) == _verdict(text, base), "check's verdict changed"


def test_two_declarations_on_one_line_format_idempotently() -> None:
    out = format_text("object A = R[4] object Bee = R[2]\nobject C = R[3]\n")
    assert out == "object A   = R[4]\nobject Bee = R[2]\nobject C   = R[3]\n"
    assert format_text(out) == out


def test_comments_inside_a_long_statement_stay_apart() -> None:
    text = "morphism f(x : A, y : A) -> A {\n  h = g(x,  # a\n        y)  # b\n  return h\n}\n"
    out = format_text(text)
    assert out == "morphism f(x : A, y : A) -> A {\n  # a\n  h = g(x, y)  # b\n  return h\n}\n"
    assert format_text(out) == out


def test_a_form_feed_in_a_comment_is_not_a_line_break() -> None:
    # str.splitlines would split at the form feed and misplace the blank line.
    out = format_text("# a\fb\nobject A = R[4]\n\nobject B = R[2]\n")
    assert out == "# a\fb\nobject A = R[4]\n\nobject B = R[2]\n"


@pytest.mark.parametrize("end", ["\r", "\r\n"], ids=["cr", "crlf"])
def test_cr_and_crlf_line_ends_become_newlines(end: str) -> None:
    text = end.join(["# top", "object A = R[4]  # a", "", "", "morphism f : A -> A = relu", ""])
    assert format_text(text) == "# top\nobject A = R[4]  # a\n\nmorphism f : A -> A = relu\n"


def test_literals_print_back_to_the_same_values() -> None:
    text = 'morphism f : A -> A = g(-3, 2.5e-3, 1e16, -0.5, "a \\"q\\" \\\\ b", true) ; <a, <b, c> >\n'
    out = format_text(text)
    assert out == 'morphism f : A -> A = g(-3, 0.0025, 1e+16, -0.5, "a \\"q\\" \\\\ b", true) ; <a, <b, c> >\n'
    assert parse(out).decls == parse(text).decls


# -- no recursion tied to the input's size --------------------------------------------
# The parser refuses chains this long (E0106); a program may still build the
# AST directly, and fmt must print it.  3,000 terms is three times Python's
# default recursion limit.

LONG = 3000


def _left_chain(make, leaf, n: int = LONG):  # noqa: ANN001, ANN202
    node = leaf
    for _ in range(n - 1):
        node = make(node, leaf)
    return node


def test_a_long_size_sum_formats() -> None:
    total = _left_chain(lambda a, b: A.DBin("+", a, b), A.DNum(1))
    assert dim(total) == " + ".join(["1"] * LONG)
    right = _left_chain(lambda a, b: A.DBin("-", b, a), A.DSym("d"))  # d - (d - (d - …))
    assert dim(right).count("(") == LONG - 2  # every `-` but the outermost
    sp = Span("<ast>", 1, 1, 1, 1)
    out = format_module(A.Module((A.ObjectDecl("A", A.TSpace("R", (total,)), span=sp),)), "")
    assert out == f"object A = R[{dim(total)}]\n"


def test_a_long_repeat_chain_formats() -> None:
    e: A.Expr = A.Ref("relu")
    for _ in range(LONG):
        e = A.Repeat(2, e)
    assert expr(e) == "repeat 2 " * LONG + "relu"
    nested: A.Expr = A.Ref("relu")
    for _ in range(LONG):
        nested = A.Inv(A.Then((nested, A.Ref("f"))))
    assert expr(nested) == "inv(" * LONG + "relu" + " ; f)" * LONG


def test_a_long_wire_sum_and_argument_sum_format() -> None:
    wires = _left_chain(lambda a, b: A.WBin("+", a, b), A.Wire("x"))
    assert statement(A.Return((wires,))) == "return " + " + ".join(["x"] * LONG)
    total = _left_chain(lambda a, b: A.VBin("+", a, b), A.Lit(1))
    assert expr(A.Ref("dropout", None, (A.Arg(None, total),))) == "dropout(" + " + ".join(["1"] * LONG) + ")"


def test_a_chain_the_parser_accepts_round_trips() -> None:
    text = "object A = R[" + " + ".join(["1"] * 50) + "]\nmorphism f : A -> A = " + "repeat 2 " * 50 + "relu\n"
    out = format_text(text)
    assert format_text(out) == out and parse(out).decls == parse(text).decls


def test_pretty_prints_deeply_nested_boxes() -> None:
    ty = Ty.tensor_space("R", (4,))
    d = Box("relu", ty, ty).diagram()
    for _ in range(LONG):
        d = Box("repeat", ty, ty, kind="repeat", args=(("n", 2),), body=d).diagram()
    text = pretty(d)
    assert text.startswith("(repeat 2 (" * 2) and text.count("(repeat 2 (") == LONG
    assert text.endswith("(relu : R[4] -> R[4])" + ") : R[4] -> R[4])" * LONG)


# -- fmt --write keeps the file itself ----------------------------------------------

UNFORMATTED = "object   A=R[ 4 ]\nmorphism f:A->A=relu;tanh\n"
FORMATTED = format_text(UNFORMATTED)


def _fmt_write(*paths: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    status = main(["fmt", "--write", *map(str, paths)])
    return status, capsys.readouterr().err


def test_write_through_a_symlink_rewrites_the_target(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "net.cat"
    target.write_text(UNFORMATTED, encoding="utf-8")
    link = tmp_path / "link.cat"
    link.symlink_to(Path("real") / "net.cat")
    assert _fmt_write(link, capsys=capsys) == (0, "")
    assert link.is_symlink() and os.readlink(link) == str(Path("real") / "net.cat")
    assert target.read_text(encoding="utf-8") == FORMATTED
    assert sorted(p.name for p in (tmp_path / "real").iterdir()) == ["net.cat"]  # no temporary file left


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o755])
def test_write_keeps_the_mode(tmp_path: Path, capsys: pytest.CaptureFixture[str], mode: int) -> None:
    path = tmp_path / "x.cat"
    path.write_text(UNFORMATTED, encoding="utf-8")
    os.chmod(path, mode)
    assert _fmt_write(path, capsys=capsys) == (0, "")
    assert stat.S_IMODE(path.stat().st_mode) == mode
    assert path.read_text(encoding="utf-8") == FORMATTED
    assert os.listdir(tmp_path) == ["x.cat"]


def test_write_refuses_a_read_only_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "x.cat"
    path.write_text(UNFORMATTED, encoding="utf-8")
    os.chmod(path, 0o444)
    status, err = _fmt_write(path, capsys=capsys)
    assert status == 1 and f"{path}:1:1: error[E0001]: cannot write `{path}`: the file is read-only" in err
    assert path.read_text(encoding="utf-8") == UNFORMATTED


def test_write_failure_is_a_located_error(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    # A directory that refuses new files (root ignores a directory's mode, so
    # the refusal is simulated where the temporary file is made).
    def refuse(*args: object, **kwargs: object) -> None:
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    bad, good = tmp_path / "bad.cat", tmp_path / "good.cat"
    bad.write_text(UNFORMATTED, encoding="utf-8")
    good.write_text(FORMATTED, encoding="utf-8")
    status, err = _fmt_write(bad, good, capsys=capsys)
    assert status == 1
    assert f"{bad}:1:1: error[E0001]: cannot write `{bad}`: permission denied" in err
    assert "Traceback" not in err and bad.read_text(encoding="utf-8") == UNFORMATTED


def test_a_failed_rename_leaves_no_temporary_file(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(src: str, dst: str) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "replace", refuse)
    path = tmp_path / "x.cat"
    path.write_text(UNFORMATTED, encoding="utf-8")
    status, err = _fmt_write(path, capsys=capsys)
    assert status == 1 and "error[E0001]: cannot write" in err
    assert os.listdir(tmp_path) == ["x.cat"] and path.read_text(encoding="utf-8") == UNFORMATTED
