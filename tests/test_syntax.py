"""The parser: spans, comments, Unicode/ASCII spellings, limits, lines, reading files, safe excerpts."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from catnet import ast as A
from catnet import fmt, loads
from catnet.errors import CatnetError, printable, source_lines
from catnet.ir import Span
from catnet.pretty import pretty
from catnet.syntax import MAX_DEPTH, MAX_DIGITS, MAX_NESTING, clean, decode, parse, read_source


def test_spans_point_at_the_source() -> None:
    m = parse("object V = R[4]\nmorphism f : V -> V = relu ; tanh\n", "x.cat")
    decl = m.decls[1]
    assert isinstance(decl, A.MorphismDecl)
    assert decl.span is not None and (decl.span.line, decl.span.column) == (2, 1)
    body = decl.body
    assert isinstance(body, A.Then)
    tanh = body.parts[1]
    assert tanh.span is not None and (tanh.span.line, tanh.span.column, tanh.span.end_column) == (2, 30, 34)


def test_spans_are_not_compared() -> None:
    a = parse("object V = R[4]\nmorphism f : V -> V = relu")
    b = parse("object   V =   R[4]\n\n\nmorphism f : V -> V =\n   relu")
    assert a.decls == b.decls


def test_unicode_and_ascii_spellings_agree() -> None:
    uni = parse("morphism f : R[2] ⊗ R[2] → R[2] = (relu ⊗ relu) ; add ; ⟨id, id⟩ ; fst")
    ascii_ = parse("morphism f : R[2] @ R[2] -> R[2] = (relu @ relu) >> add >> <id, id> >> fst")
    assert uni.decls == ascii_.decls


def test_precedence_then_binds_looser_than_tensor() -> None:
    (decl,) = parse("morphism f : A -> B = a ⊗ b ; c").decls
    assert isinstance(decl, A.MorphismDecl)
    assert isinstance(decl.body, A.Then)
    assert isinstance(decl.body.parts[0], A.Product)


def test_comments_are_collected() -> None:
    m = parse("# head\nobject V = R[4]  # tail\n")
    assert [(c.line, c.text) for c in m.comments] == [(1, "# head"), (2, "# tail")]


def test_generator_arguments() -> None:
    (decl,) = parse('morphism f : A -> B = conv(16, kernel=3, padding="same", causal=true, rate=-0.5, n=d * 4)').decls
    assert isinstance(decl, A.MorphismDecl)
    ref = decl.body
    assert isinstance(ref, A.Ref) and ref.args is not None
    values = [a.value for a in ref.args]
    assert values[0] == A.Lit(16)
    assert values[2] == A.Lit("same")
    assert values[3] == A.Lit(True)
    assert values[4] == A.Lit(-0.5)
    assert isinstance(values[5], A.VBin) and values[5].op == "*"


def test_wiring_form_parses() -> None:
    (decl,) = parse("morphism b(x : S) -> S {\n  a, b = split(x)\n  return a + b\n}").decls
    assert isinstance(decl, A.WiringDecl)
    assert isinstance(decl.body[0], A.Assign) and decl.body[0].names == ("a", "b")
    assert isinstance(decl.body[1], A.Return)


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 5000])
def test_deep_nesting_is_a_catnet_error(depth: int) -> None:
    text = "morphism f : R[4] -> R[4] = " + "(" * depth + "relu" + ")" * depth
    with pytest.raises(CatnetError) as info:
        parse(text)
    assert info.value.code == "E0106"


def test_long_flat_chains_do_not_recurse() -> None:
    # Left-nested `+` chains are deep trees; the tree builder is iterative,
    # and a chain at the nesting bound parses.
    body = " + ".join(["x"] * MAX_NESTING)
    m = parse(f"morphism f(x : R[4]) -> R[4] {{\n  return {body}\n}}")
    assert isinstance(m.decls[0], A.WiringDecl)


def test_nul_and_bom() -> None:
    assert decode("\ufeffobject V = R[4]".encode(), "x") == "object V = R[4]"
    with pytest.raises(CatnetError) as info:
        decode(b"object V\x00 = R[4]", "x")
    assert info.value.code == "E0104"


# -- the AST nesting bound -------------------------------------------------------


def _chains(n: int) -> dict[str, tuple[str, int, int]]:
    """Each kind of chain with ``n`` nesting terms: (text, line, column of the chain)."""
    ones = " + ".join(["1"] * n)
    return {
        "repeat": ("object A = R[4]\nmorphism f : A -> A = " + "repeat 2 " * n + "relu\n", 2, 23),
        "wires": ("morphism f(x : R[4]) -> R[4] {\n  return " + " + ".join(["x"] * (n + 1)) + "\n}\n", 2, 10),
        "sizes": (f"object A = R[{ones} + 1]\n", 1, 14),
        "arguments": (f"morphism f : R[4] -> R[4] = dense(features={ones} + 1)\n", 1, 44),
    }


@pytest.mark.parametrize("kind", ["repeat", "wires", "sizes", "arguments"])
def test_a_chain_over_the_nesting_bound_is_located_e0106(kind: str) -> None:
    text, line, column = _chains(MAX_NESTING + 1)[kind]
    with pytest.raises(CatnetError) as info:
        parse(text, "x.cat")
    e = info.value
    assert e.code == "E0106" and "nested too deeply" in e.message
    # Located at the start of the chain, not somewhere inside it.
    assert e.span is not None and (e.span.file, e.span.line, e.span.column) == ("x.cat", line, column)


@pytest.mark.parametrize("kind", ["repeat", "wires", "sizes", "arguments"])
def test_a_chain_at_the_nesting_bound_parses(kind: str) -> None:
    # Declarations and the arguments' own nodes take a few levels.
    text, _, _ = _chains(MAX_NESTING - 6)[kind]
    parse(text)


def test_every_recursive_stage_has_room_at_the_nesting_bound() -> None:
    """Check, fmt and pretty of the deepest accepted forms, with a third of the stack.

    Nested products are the deepest for ``fmt`` and nested ``repeat``s for
    ``check`` and ``pretty`` (see ``MAX_NESTING``); the bound must leave them
    room even when the recursion limit is a third of Python's default.
    """
    n = MAX_NESTING - 4
    wires = " ⊗ ".join(["A"] * (n + 1))
    products = f"object A = R[4]\nmorphism f : {wires} -> {wires} = " + "(relu ⊗ " * n + "relu" + ")" * n + "\n"
    repeats = "object A = R[4]\nmorphism f : A -> A = " + "repeat 2 " * n + "relu\n"
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(350, limit // 3))
    try:
        for text in (products, repeats):
            fmt.format_text(text)
            pretty(loads(text).diagram("f"))
    finally:
        sys.setrecursionlimit(limit)


def test_deep_brackets_are_refused_by_the_nesting_bound_too() -> None:
    n = MAX_NESTING + 1
    assert n <= MAX_DEPTH
    with pytest.raises(CatnetError) as info:
        parse("morphism f : R[4] -> R[4] = " + "(relu ⊗ " * n + "relu" + ")" * n)
    assert info.value.code == "E0106" and info.value.message.startswith("expression nested more than")


# -- numbers ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "code", "column"),
    [
        ("object A = R[" + "9" * 4301 + "]", "E0307", 14),
        ("object A = R[" + "9" * (MAX_DIGITS + 1) + "]", "E0307", 14),
        ("morphism f : R[4] -> R[4] = repeat " + "9" * 5000 + " relu", "E0307", 36),
        ("morphism f : R[4] -> R[4] = dropout(" + "9" * 4301 + ")", "E0208", 37),
        ("morphism f : R[4] -> R[4] = dropout(-" + "9" * 4301 + ")", "E0208", 37),
        ("morphism f : R[4] -> R[4] = dropout(1e999)", "E0208", 37),
        ("morphism f : R[4] -> R[4] = dropout(-1e999)", "E0208", 37),
        ("morphism f : R[4] -> R[4] = dropout(" + "1" * 400 + ".5)", "E0208", 37),
    ],
)
def test_absurd_numbers_are_located_errors(text: str, code: str, column: int) -> None:
    with pytest.raises(CatnetError) as info:
        parse(text, "n.cat")
    e = info.value
    assert e.code == code and "absurdly large" in e.message
    assert e.span is not None and (e.span.line, e.span.column) == (1, column)
    assert len(e.message) < 120  # the number is quoted, cut short


def test_numbers_up_to_the_digit_limit_are_read() -> None:
    (decl,) = parse("object A = R[" + "0" * (MAX_DIGITS - 1) + "7]").decls
    assert isinstance(decl, A.ObjectDecl) and isinstance(decl.type, A.TSpace)
    assert decl.type.shape[0] == A.DNum(7)


# -- lines: one notion everywhere -------------------------------------------------


def test_source_lines_end_at_newlines_only() -> None:
    text = "a\x0cb\x0bc\x1cd\x1de\x1ef\x85g\u2028h\u2029i\nj\r\nk\rl"
    assert source_lines(text) == ["a\x0cb\x0bc\x1cd\x1de\x1ef\x85g\u2028h\u2029i", "j", "k", "l"]
    assert source_lines("x\n") == ["x"] and source_lines("x\r\n\r\n") == ["x", ""] and source_lines("") == []


@pytest.mark.parametrize("end", ["\n", "\r\n", "\r"])
@pytest.mark.parametrize("junk", ["", "# a \x0c form feed\n", "# \x0b \x1c \x1d \x1e \x85 \u2028 \u2029\n"])
def test_positions_and_excerpts_agree_for_every_line_end(end: str, junk: str) -> None:
    text = (junk + "object V = R[4]\n\nmorphism f : V -> V = rleu\n").replace("\n", end)
    line = 3 + (1 if junk else 0)
    with pytest.raises(CatnetError) as info:
        loads(text, "x.cat")
    e = info.value
    assert e.code == "E0201" and e.span is not None
    assert (e.span.line, e.span.column, e.span.end_column) == (line, 23, 27)
    assert e.render().splitlines()[1:3] == [
        f"{line} | morphism f : V -> V = rleu",
        "  |                       ^^^^",
    ]


@pytest.mark.parametrize("end", ["\r\n", "\r"])
def test_crlf_and_cr_files_parse_like_lf_files(end: str) -> None:
    text = "# head\nobject V = R[4]  # tail\nmorphism f : V -> V =\n  relu ;\n  tanh\n"
    lf, other = parse(text), parse(text.replace("\n", end))
    assert lf.decls == other.decls and lf.comments == other.comments
    spans = [(d.span.line, d.span.column, d.span.end_line, d.span.end_column) for d in other.decls]  # type: ignore[union-attr]
    assert spans == [(2, 1, 2, 16), (3, 1, 5, 7)]


def test_syntax_error_at_the_end_of_a_cr_file() -> None:
    with pytest.raises(CatnetError) as info:
        parse("object V = R[4]\rmorphism f : V -> V = (relu\r", "x.cat")
    e = info.value
    assert e.code == "E0102" and e.span is not None and e.span.line == 2
    assert "2 | morphism f : V -> V = (relu" in e.render()


# -- excerpts are safe -------------------------------------------------------------


def test_control_characters_are_escaped_everywhere_in_a_diagnostic() -> None:
    e = CatnetError("E0208", "bad \x1b[31mred\x07", Span("f\x1b.cat", 1, 6, 1, 9), notes=["n\x1b"], help="h\x9b",
                    source="ab\x1bc\u202eDEF\n")
    out = e.render()
    assert not any(ch in out for ch in "\x1b\x07\x9b\u202e")
    assert "f\\x1b.cat:1:6: error[E0208]: bad \\x1b[31mred\\x07" in out
    assert "1 | ab\\x1bc\\u202eDEF" in out
    # The caret stands under `DEF` (characters 6-8 of the line), after the escapes.
    line, caret = out.splitlines()[1:3]
    assert caret.index("^") == line.index("DEF") and caret.count("^") == len("DEF")
    assert "= note: n\\x1b" in out and "= help: h\\x9b" in out
    assert printable("tab\tstays") == "tab\tstays"


def test_a_string_literal_with_escape_sequences_is_shown_escaped() -> None:
    with pytest.raises(CatnetError) as info:
        loads('morphism f : R[4] -> R[4] = dense(features="\x1b[2J\x1b]0;title\x07")', "x.cat")
    out = info.value.render()
    assert "\x1b" not in out and "\x07" not in out
    assert '"\\x1b[2J\\x1b]0;title\\x07"' in out


def test_long_lines_are_clipped_around_the_caret() -> None:
    line = "a" * 5000 + " rleu " + "a" * 5000
    with pytest.raises(CatnetError) as info:
        loads("object V = R[4]\nmorphism f : V -> V = " + line, "x.cat")
    excerpt, caret = info.value.render().splitlines()[1:3]
    assert len(excerpt) <= len("2 | ") + 160 and excerpt.startswith("2 | ")
    assert excerpt[caret.index("^") :].startswith("rleu")


@pytest.mark.parametrize("filler", ["\x1b", "\U000e0001", "é"])
def test_escaped_lines_are_clipped_to_the_same_width(filler: str) -> None:
    source = "x\n" + filler * 5000 + "rleu" + filler * 5000 + "\n"
    for n in (10, 5000):  # a short line whose escapes make it long, and a long one
        src = source.replace(filler * 5000, filler * n)
        e = CatnetError("E0201", "unknown morphism `rleu`", Span("x.cat", 2, n + 1, 2, n + 5), source=src)
        excerpt, caret = e.render().splitlines()[1:3]
        assert len(excerpt) <= len("2 | ") + 200
        assert excerpt[caret.index("^") :].startswith("rleu") and caret.count("^") == 4


def test_unexpected_tokens_are_quoted_short() -> None:
    with pytest.raises(CatnetError) as info:
        parse("object A = R[4] " + "x" * 10_000)
    assert len(info.value.message) < 200


# -- reading files -------------------------------------------------------------------


def test_bom_and_nul_in_text() -> None:
    assert clean("\ufeffobject V = R[4]", "x") == "object V = R[4]"
    with pytest.raises(CatnetError) as info:
        clean("object V = R[4]\r\nmorphism\x00", "x")
    assert info.value.code == "E0104" and info.value.span is not None
    assert (info.value.span.line, info.value.span.column) == (2, 9)


def test_bad_utf8_shows_only_its_own_line() -> None:
    with pytest.raises(CatnetError) as info:
        decode(b"secret one\r\nobject V = R[4] \xe9\nsecret two\n", "x.cat")
    e = info.value
    assert e.code == "E0002" and e.span is not None and (e.span.line, e.span.column) == (2, 17)
    out = e.render()
    assert "2 | object V = R[4] \ufffd" in out and "secret" not in out


def test_files_that_are_not_regular_are_refused_before_reading(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.cat"
    os.mkfifo(fifo)
    for path, what in ((fifo, "named pipe"), (tmp_path, "directory"), (Path("/dev/null"), "device")):
        with pytest.raises(CatnetError) as info:
            read_source(path)
        assert info.value.code == "E0001" and what in info.value.message


def test_reading_is_bounded_even_when_stat_gives_no_size(monkeypatch: pytest.MonkeyPatch) -> None:
    import catnet.syntax

    monkeypatch.setattr(catnet.syntax, "MAX_BYTES", 16)
    with pytest.raises(CatnetError) as info:
        read_source("/proc/self/status")  # `stat` says 0 bytes
    assert info.value.code == "E0001" and "larger than 16 bytes" in info.value.message


def test_a_sparse_file_over_the_size_limit_is_refused_unread(tmp_path: Path) -> None:
    big = tmp_path / "big.cat"
    with open(big, "wb") as f:
        f.truncate(65 * 1024 * 1024)
    with pytest.raises(CatnetError) as info:
        read_source(big)
    assert info.value.code == "E0001" and "larger than 64 MB" in info.value.message
