"""The fuzz corpus, and random mutations of it, never get anything but located errors.

``tests/corpus/constructs/`` holds small valid files that together use every
construct of the language: each checks and is in canonical form.
``tests/corpus/fuzz/`` holds what ``bench/fuzz.py`` found and hand-written
nasty inputs (the first line of each says what it is).  Every corpus file
must check or fail with a located ``CatnetError`` whose diagnostic prints no
raw control character; for every file that parses, ``fmt`` must be
idempotent, keep the AST and the comments, and keep ``check``'s verdict.

On top of the corpus, byte-level mutations (insert, delete, replace,
including invalid UTF-8) and token-level ones (delete, duplicate, swap,
replace by another token of the language) of the examples and the
constructs files — 2,000 cases in all — must either check or fail with a
located ``CatnetError``.  ``bench/fuzz.py`` runs the larger, grammar-aware
campaign.
"""

from __future__ import annotations

import re
import resource
import signal
import traceback
import unicodedata
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from catnet.check import KEYWORDS, check_text
from catnet.errors import CatnetError
from catnet.fmt import format_text
from catnet.library import GENERATORS
from catnet.syntax import decode, parse

from conftest import EXAMPLES, ROOT

CORPUS = ROOT / "tests" / "corpus"
#: Imports of every corpus file resolve here (as in bench/fuzz.py).
BASE = CORPUS / "constructs"
CONSTRUCTS = sorted(BASE.rglob("*.cat"))
FUZZ = sorted((CORPUS / "fuzz").glob("*.cat"))
#: A corpus file that takes longer than this has hung: fail it rather than the whole run.
HANG_SECONDS = 30
#: Memory a corpus file may take beyond what the test process holds (the bound of issue 7).
MEMORY_MB = 1024

T = TypeVar("T")


class Hung(Exception):
    """A corpus file ran past the hang guard."""


@contextmanager
def memory_guard(megabytes: int) -> Iterator[None]:
    """Cap the address space at its current size plus ``megabytes`` (Linux), so a blow-up is a MemoryError."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        pages = 0  # no /proc: no guard
    cap = pages * resource.getpagesize() + (megabytes << 20)
    if pages and (hard == resource.RLIM_INFINITY or cap < hard):
        resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


@contextmanager
def hang_guard(seconds: int) -> Iterator[None]:
    """Raise :class:`Hung` in the test if the body runs longer than ``seconds``."""

    def alarm(signum: int, frame: object) -> None:
        raise Hung(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _stage(stage: str, fn: Callable[[], T]) -> T:
    """Run one stage; any exception but ``CatnetError`` fails the test naming the stage and the frame."""
    try:
        return fn()
    except CatnetError:
        raise
    except Exception as e:  # noqa: BLE001 - every other exception is the bug this test reports
        last = traceback.extract_tb(e.__traceback__)[-1]
        where = f"{Path(last.filename).name}:{last.lineno} in {last.name}"
        pytest.fail(f"{stage}: {type(e).__name__}: {str(e)[:200]} at {where}", pytrace=False)


def _lines(text: str) -> int:
    return len(re.split(r"\r\n|\r|\n", text))


def _assert_located(e: CatnetError, text: str, name: str) -> None:
    """A diagnostic has a code, a span inside the file, and prints no raw control character."""
    sp = e.span
    assert sp is not None, f"{e.code} has no location: {e.message}"
    assert sp.file and sp.line >= 1 and sp.column >= 1, f"{e.code} has a bad span {sp}"
    assert (sp.end_line, sp.end_column) >= (sp.line, sp.column), f"{e.code}: span {sp} ends before it starts"
    if sp.file == name:
        assert sp.line <= _lines(text), f"{e.code} points at line {sp.line} of a {_lines(text)}-line file"
    rendered = _stage("render", e.render)
    raw = [ch for ch in rendered if unicodedata.category(ch) == "Cc" and ch not in "\n\t"]
    assert not raw, f"{e.code}: the diagnostic prints the raw control character {raw[0]!r}"


def _verdict(stage: str, fn: Callable[[], object], text: str, name: str) -> str:
    """``ok``, or the code of the located error that ``fn`` raised."""
    try:
        _stage(stage, fn)
    except CatnetError as e:
        _assert_located(e, text, name)
        return e.code
    return "ok"


def _corpus_id(path: Path) -> str:
    return str(path.relative_to(CORPUS))


@pytest.mark.parametrize("path", CONSTRUCTS, ids=_corpus_id)
def test_constructs_check_and_are_canonical(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    check_text(text, path.name, path.parent)
    assert format_text(text, path.name) == text, f"{path.name} is not in canonical form (run catnet fmt -w)"


def test_constructs_use_every_keyword_generator_and_keyword_argument() -> None:
    text = "\n".join(p.read_text(encoding="utf-8") for p in CONSTRUCTS)
    code = "\n".join(line.split("#", 1)[0] for line in text.splitlines())
    words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", code))
    missing = sorted(KEYWORDS - words) + [g for g in GENERATORS if g not in words]
    missing += [f"{g.name}({a.name}=)" for g in GENERATORS.values() for a in g.args
                if not re.search(rf"\b{g.name}\((?:[^()]*, )?{a.name}=", code)]
    assert not missing, f"no constructs file uses {missing}"


@pytest.mark.parametrize("path", CONSTRUCTS + FUZZ, ids=_corpus_id)
def test_corpus_gets_only_located_errors_and_fmt_keeps_its_promises(path: Path) -> None:
    name = path.name
    data = path.read_bytes()
    with hang_guard(HANG_SECONDS), memory_guard(MEMORY_MB):
        try:
            text = _stage("decode", lambda: decode(data, name))
        except CatnetError as e:
            _assert_located(e, data.decode("utf-8", errors="replace"), name)
            return
        verdict = _verdict("check", lambda: check_text(text, name, BASE), text, name)
        try:
            formatted = _stage("fmt", lambda: format_text(text, name))
        except CatnetError as e:
            _assert_located(e, text, name)
            assert verdict != "ok", f"fmt refuses a file that checks: {e.code}"
            return
        assert _stage("fmt", lambda: format_text(formatted, name)) == formatted, "fmt is not idempotent"
        tree, again = _stage("parse", lambda: parse(text, name)), _stage("parse", lambda: parse(formatted, name))
        assert tree.decls == again.decls, "fmt changes the AST"
        assert sorted(c.text.strip() for c in tree.comments) == sorted(c.text.strip() for c in again.comments), \
            "fmt loses or changes a comment"
        if formatted != text:
            after = _verdict("check (formatted)", lambda: check_text(formatted, name, BASE), formatted, name)
            assert after == verdict, f"fmt changes check's verdict: {verdict} -> {after}"


def test_fuzz_corpus_files_say_what_they_found() -> None:
    assert FUZZ, "tests/corpus/fuzz/ is empty"
    for path in FUZZ:
        first = path.read_bytes().split(b"\n", 1)[0].removeprefix("\ufeff".encode())
        assert first.startswith(b"# ") and len(first) > 10, f"{path.name}: the first line must say what it found"


# -- random mutations (hypothesis) ---------------------------------------------

SOURCES = [p.read_bytes() for p in EXAMPLES + CONSTRUCTS]
TOKEN = re.compile(rb"\s+|#[^\n]*|\"[^\"\n]*\"|[A-Za-z_][A-Za-z0-9_]*|[0-9.]+|->|>>|[\x80-\xff]+|\S")
VOCAB = [
    b"morphism", b"object", b"shared", b"main", b"import", b"repeat", b"inv", b"scan", b"return", b"bundle",
    b"over", b"under", b"R", b"Z", b"I", b"Seq", b";", b">>", b"\xe2\x8a\x97", b"@", b"->", b"(", b")", b"[",
    b"]", b"{", b"}", b"<", b">", b",", b"=", b":", b"+", b"*", b"-", b"0", b"-1", b"3", b"1e99",
    b"99999999999", b"2.5", b"dense", b"conv", b"copy", b"add", b"swap", b"discard", b"split", b"x", b"T",
    b"d", b'"same"', b"true", b"\n", b"#", b"\xff",
]

SETTINGS = settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _check(data: bytes) -> None:
    try:
        text = decode(data, "fuzz.cat")
        check_text(text, "fuzz.cat", BASE)
    except CatnetError as e:
        assert e.code and e.span is not None and e.render()


@st.composite
def byte_mutations(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SOURCES)))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["insert", "delete", "replace"]))
        i = draw(st.integers(0, len(data)))
        if kind == "insert":
            data[i:i] = draw(st.binary(min_size=1, max_size=3))
        elif kind == "delete" and data:
            j = draw(st.integers(i, min(len(data), i + 8)))
            del data[i:j]
        elif data:
            data[min(i, len(data) - 1)] = draw(st.integers(0, 255))
    return bytes(data)


@st.composite
def token_mutations(draw: st.DrawFn) -> bytes:
    return mutate_tokens(draw, draw(st.sampled_from(SOURCES)))


def mutate_tokens(draw: st.DrawFn, data: bytes) -> bytes:
    """One to three token-level mutations of ``data`` (delete, duplicate, swap, replace, insert)."""
    tokens = TOKEN.findall(data)
    for _ in range(draw(st.integers(1, 3))):
        if not tokens:
            break
        kind = draw(st.sampled_from(["delete", "duplicate", "swap", "replace", "insert"]))
        i = draw(st.integers(0, len(tokens) - 1))
        if kind == "delete":
            del tokens[i]
        elif kind == "duplicate":
            tokens.insert(i, tokens[i])
        elif kind == "swap" and i + 1 < len(tokens):
            tokens[i], tokens[i + 1] = tokens[i + 1], tokens[i]
        elif kind == "replace":
            tokens[i] = draw(st.sampled_from(VOCAB))
        else:
            tokens.insert(i, b" " + draw(st.sampled_from(VOCAB)) + b" ")
    return b"".join(tokens)


@SETTINGS
@given(byte_mutations())
def test_byte_mutations_only_raise_catnet_errors(data: bytes) -> None:
    _check(data)


@SETTINGS
@given(token_mutations())
def test_token_mutations_only_raise_catnet_errors(data: bytes) -> None:
    _check(data)
