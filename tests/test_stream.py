"""Long files are checked while they are parsed, with the same results as whole-file checking.

Above ``catnet.syntax.STREAM_BYTES`` the checker parses one declaration at a time and
checks each as soon as what it uses is checked, so the first error of a
very long file comes without parsing the rest.  Forcing that mode on
small files must give the same module, and the same diagnostics, as
parsing them whole.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import catnet.check.declarations as declarations
import catnet.syntax as syntax
from catnet.check import check_file, check_text
from catnet.errors import CatnetError

from conftest import EXAMPLES, ROOT

FILES = EXAMPLES + sorted((ROOT / "tests" / "corpus" / "constructs").glob("*.cat"))
ERRORS = sorted((ROOT / "tests" / "golden" / "errors").glob("*.cat"))


@pytest.fixture
def streaming(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(syntax, "STREAM_BYTES", 0)
    monkeypatch.setattr(syntax, "STREAM_CHUNK", 1)  # one declaration per parse


def _outcome(path: Path) -> object:
    try:
        m = check_file(path)
    except CatnetError as e:
        return e.render()
    return ({n: (d.dom, d.cod, d.body) for n, d in m.definitions.items()}, m.objects, m.entry, m.syntax)


def test_streaming_equals_whole_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(syntax, "STREAM_CHUNK", 1)  # one declaration per parse
    for path in FILES + ERRORS:
        whole = _outcome(path)
        monkeypatch.setattr(syntax, "STREAM_BYTES", 0)
        streamed = _outcome(path)
        monkeypatch.setattr(syntax, "STREAM_BYTES", 10**9)
        assert streamed == whole, path.name


def test_parse_stream_matches_parse_on_every_example(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(syntax, "STREAM_CHUNK", 1)
    for path in FILES:
        text = path.read_text(encoding="utf-8")
        parts = list(syntax.parse_stream(text, path.name))
        whole = syntax.parse(text, path.name)
        assert tuple(d for p in parts for d in p.decls) == whole.decls
        assert [d.span for p in parts for d in p.decls] == [d.span for d in whole.decls]
        assert tuple(c for p in parts for c in p.comments) == whole.comments


#: 20,002 declarations whose only error is on line 2.
LONG = "\n".join(["object A = R[4]", "morphism g : A -> A = rleu"] + [f"morphism f{i} : A -> A = relu" for i in range(20_000)]) + "\n"


def _count_stretches(monkeypatch: pytest.MonkeyPatch) -> list:
    """The stretches the checker parses from now on, recorded as it takes them."""
    parsed: list = []
    real = syntax.parse_stream

    def counting(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        for part in real(*args, **kwargs):
            parsed.append(part)
            yield part

    monkeypatch.setattr(declarations, "parse_stream", counting)
    return parsed


def test_the_first_error_of_a_long_file_needs_little_parsing(streaming: None, monkeypatch: pytest.MonkeyPatch) -> None:
    parsed = _count_stretches(monkeypatch)
    with pytest.raises(CatnetError) as info:
        check_text(LONG, "long.cat")
    assert info.value.code == "E0201" and info.value.span.line == 2  # type: ignore[union-attr]
    assert len(parsed) == 2  # one declaration per parse here: the error is in the second


def test_forward_references_and_cycles_in_stream_mode(streaming: None) -> None:
    m = check_text("morphism b : A -> A = a ; relu\nobject A = R[4]\nmorphism a : A -> A = relu\n")
    assert list(m.definitions) == ["b", "a"]
    with pytest.raises(CatnetError) as info:
        check_text("object A = R[4]\nmorphism a : A -> A = b\nmorphism b : A -> A = a\n")
    assert info.value.code == "E0211"
    with pytest.raises(CatnetError) as info:
        check_text("object A = R[4]\nmorphism a : A -> A = relu\nmorphism a : A -> A = tanh\n")
    assert info.value.code == "E0202"


def test_stretches_are_a_few_kilobytes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(syntax, "STREAM_BYTES", 0)
    parsed = _count_stretches(monkeypatch)
    with pytest.raises(CatnetError):
        check_text(LONG, "long.cat")
    assert len(parsed) == 1 and len(parsed[0].decls) < 1_000
