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


# -- the TextMate grammar of editors/vscode ---------------------------------------------------

VSCODE = ROOT / "editors" / "vscode"


def _grammar() -> dict:
    import json

    return json.loads((VSCODE / "syntaxes" / "catnet.tmLanguage.json").read_text(encoding="utf-8"))


def _scan(line: str, rules: list[tuple[str, re.Pattern]]) -> list[tuple[str, str]]:
    """(scope, text) pieces of ``line`` as a TextMate tokenizer finds them: the leftmost match, the first rule on a tie."""
    out, at = [], 0
    while at < len(line):
        found = [(m.start(), k, m) for k, (_, rx) in enumerate(rules) if (m := rx.search(line, at)) and m.end() > m.start()]
        if not found:
            out.append(("", line[at:]))
            break
        start, k, m = min(found, key=lambda f: (f[0], f[1]))
        if start > at:
            out.append(("", line[at:start]))
        out.append((rules[k][0], m.group()))
        at = m.end()
    return out


def test_the_vscode_extension_declares_the_language_and_its_grammar() -> None:
    import json

    package = json.loads((VSCODE / "package.json").read_text(encoding="utf-8"))
    (language,) = package["contributes"]["languages"]
    (grammar,) = package["contributes"]["grammars"]
    assert language["extensions"] == [".cat"] and grammar["scopeName"] == _grammar()["scopeName"] == "source.catnet"
    assert (VSCODE / language["configuration"]).is_file() and (VSCODE / grammar["path"]).is_file()
    config = json.loads((VSCODE / "language-configuration.json").read_text(encoding="utf-8"))
    assert config["comments"]["lineComment"] == "#"


def test_the_textmate_grammar_names_what_the_lexer_names() -> None:
    from catnet.editor.lexer import DECLARATIONS, KEYWORDS
    from catnet.library import GENERATORS

    repo = _grammar()["repository"]
    assert set(repo["generator"]["match"][len(r"\b("):-len(r")\b")].split("|")) == set(GENERATORS)
    assert set(repo["keyword"]["match"][len(r"\b("):-len(r")\b")].split("|")) == set(KEYWORDS)
    assert repo["declaration"]["match"].startswith(r"\b(" + "|".join(DECLARATIONS) + ")")


def test_the_textmate_grammar_gives_every_word_of_every_example_a_scope() -> None:
    grammar = _grammar()
    repo = grammar["repository"]
    rules = [(repo[p["include"][1:]].get("name", "declaration"), re.compile(repo[p["include"][1:]]["match"]))
             for p in grammar["patterns"]]
    for path in FILES:
        for line in path.read_text(encoding="utf-8").splitlines():
            unscoped = "".join(text for scope, text in _scan(line, rules) if not scope)
            assert unscoped.strip(" \t,.()[]{}") == "", (path.name, line, unscoped)
    scopes = dict((text, scope) for scope, text in _scan("morphism net : R[8] -> R[2] = dense ; repeat 2 block # c", rules))
    assert scopes["dense"] == "support.function.catnet" and scopes["repeat"] == "keyword.control.catnet"
    assert scopes["block"] == "variable.other.catnet" and scopes["# c"] == "comment.line.number-sign.catnet"
