"""catnet fmt: canonical, idempotent, meaning- and comment-preserving."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from catnet.errors import CatnetError
from catnet.fmt import format_text
from catnet.syntax import parse

from conftest import EXAMPLES

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
