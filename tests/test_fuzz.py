"""Random mutations of the examples never raise anything but CatnetError.

Byte-level mutations (insert, delete, replace, including invalid UTF-8) and
token-level ones (delete, duplicate, swap, replace by another token of the
language) — 2,000 cases in all.  Each must either check or fail with a
located CatnetError; any other exception is a bug.
"""

from __future__ import annotations

import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from catnet.check import check_text
from catnet.errors import CatnetError
from catnet.syntax import decode

from conftest import EXAMPLES

SOURCES = [p.read_bytes() for p in EXAMPLES]
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
        check_text(text, "fuzz.cat")
    except CatnetError as e:
        assert e.code and e.render()


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
    tokens = TOKEN.findall(draw(st.sampled_from(SOURCES)))
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
