"""Highlighting: the Pygments lexer reads every example and every listing of the docs without an error token."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from pygments.token import Error, Keyword, Name

from catnet.editor.lexer import CatnetLexer

from conftest import ROOT

FILES = sorted([*ROOT.glob("examples/*.cat"), *ROOT.glob("examples/zoo/*.cat"), *ROOT.glob("tests/golden/render/*.cat")])
LISTINGS = re.findall(r"```cat[^\n]*\n(.*?)```", (ROOT / "docs" / "language.md").read_text(encoding="utf-8"), re.S)


def _errors(text: str) -> list[str]:
    return [value for token, value in CatnetLexer().get_tokens(text) if token is Error]


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(ROOT)) for p in FILES])
def test_every_example_tokenizes_without_an_error(path: Path) -> None:
    assert _errors(path.read_text(encoding="utf-8")) == []


def test_every_listing_of_the_language_reference_tokenizes_without_an_error() -> None:
    assert len(LISTINGS) > 50
    for listing in LISTINGS:
        assert _errors(listing) == [], listing


def test_tokens_say_what_the_words_are() -> None:
    text = "morphism net : R[8] -> R[2] = dense ; relu ; repeat 2 block\n# a comment\n"
    tokens = [(t, v) for t, v in CatnetLexer().get_tokens(text) if v.strip()]
    assert (Keyword.Declaration, "morphism") in tokens and (Name.Function, "net") in tokens
    assert (Keyword.Type, "R") in tokens and (Name.Builtin, "dense") in tokens and (Keyword, "repeat") in tokens
    assert (Name, "block") in tokens
    assert _errors("morphism f : R[2] -> R[2] = dense $ relu") == ["$"]


def test_pygmentize_finds_the_lexer_by_name_and_by_file_name(tmp_path: Path) -> None:
    """The entry point (pyproject.toml) registers the lexer with Pygments for every tool that uses it."""
    example = str(ROOT / "examples" / "residual.cat")
    by_name = subprocess.run([sys.executable, "-m", "pygments", "-l", "catnet", "-f", "html", example],
                             capture_output=True, text=True, timeout=60)
    assert by_name.returncode == 0, by_name.stderr
    assert '<span class="kd">morphism</span>' in by_name.stdout and '<span class="nb">dense</span>' in by_name.stdout
    by_file = subprocess.run([sys.executable, "-m", "pygments", "-N", example], capture_output=True, text=True, timeout=60)
    assert by_file.stdout.strip() == "catnet"
