"""The server's view of a document: its text and last checked module, and positions in it.

Positions follow the protocol: 0-based lines and characters (UTF-16 code
units, which equal characters for text in the Basic Multilingual Plane, as
``.cat`` files are).  Names are found in the text with comments and strings
blanked, so a name in either is never a name.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from urllib.parse import unquote, urlparse

from lsprotocol import types as T

from .. import ast as A
from ..errors import CatnetError
from ..ir import Box, Span

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: What a name never occurs in: comments and strings.
_QUIET = re.compile(r'#[^\n]*|"([^"\\\n]|\\.)*"')


@dataclass
class Document:
    """What the server knows of one open document: its text, the last module that checked, its error."""

    uri: str
    text: str = ""
    module: object | None = None  # catnet.check.Module
    error: CatnetError | None = None
    spans: dict[str, Span] = field(default_factory=dict)  # name -> where this file declares it
    checked: str | None = None  # the text ``module`` was checked from
    boxes: list[tuple[Span, Box]] | None = None  # the module's boxes written in this file, found lazily

    @property
    def current(self) -> bool:
        """Whether the module's spans are positions in the text the editor has now."""
        return self.module is not None and self.checked == self.text


def path_of(uri: str) -> str:
    """The file path of a ``file:`` URI (any other URI is used as a name)."""
    parsed = urlparse(uri)
    return unquote(parsed.path) if parsed.scheme == "file" else uri


def uri_of(path: str) -> str:
    return "file://" + os.path.abspath(path)


def to_range(span: Span) -> T.Range:
    """A catnet span (1-based, end exclusive) as a protocol range (0-based, end exclusive)."""
    return T.Range(T.Position(span.line - 1, span.column - 1), T.Position(span.end_line - 1, span.end_column - 1))


def diagnostic(error: CatnetError, path: str) -> T.Diagnostic:
    """A :class:`CatnetError` as a protocol diagnostic: notes and help as related information."""
    sp = error.span
    here = sp is not None and os.path.abspath(sp.file) == os.path.abspath(path)
    where = to_range(sp) if here and sp is not None else T.Range(T.Position(0, 0), T.Position(0, 0))
    message = error.message if here or sp is None else f"{sp.file}:{sp.line}:{sp.column}: {error.message}"
    related = []
    anchor = T.Location(uri_of(sp.file) if sp is not None else uri_of(path), to_range(sp) if sp is not None else where)
    for note in error.notes:
        related.append(T.DiagnosticRelatedInformation(anchor, f"note: {note}"))
    if error.help:
        related.append(T.DiagnosticRelatedInformation(anchor, f"help: {error.help}"))
    return T.Diagnostic(range=where, message=message, severity=T.DiagnosticSeverity.Error, code=error.code,
                        source="catnet", related_information=related or None)


def in_quiet(text: str, pos: T.Position) -> bool:
    """Whether the cursor is inside a comment or a string (both end at their line)."""
    lines = text.split("\n")
    if pos.line >= len(lines):
        return False
    for m in _QUIET.finditer(lines[pos.line]):
        comment_to_end = m.group().startswith("#") and pos.character >= m.end()
        if m.start() < pos.character and (pos.character < m.end() or comment_to_end):
            return True
    return False


def word_at(text: str, pos: T.Position) -> tuple[str, T.Range] | None:
    """The name under the cursor, and its range (none in a comment or a string)."""
    lines = text.split("\n")
    if pos.line >= len(lines) or in_quiet(text, pos):
        return None
    line = lines[pos.line]
    for m in _WORD.finditer(line):
        if m.start() <= pos.character <= m.end():
            return m.group(), T.Range(T.Position(pos.line, m.start()), T.Position(pos.line, m.end()))
    return None


def blanked(text: str) -> str:
    """``text`` with its comments and strings blanked out, every position kept."""
    return _QUIET.sub(lambda m: " " * len(m.group()), text)


def occurrences(text: str, name: str, within: Span | None = None) -> list[T.Range]:
    """Every occurrence of ``name`` as a whole word, outside comments and strings (and inside ``within``)."""
    out = []
    for i, line in enumerate(blanked(text).split("\n")):
        for m in re.finditer(rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9_])", line):
            if within is None or contains(within, T.Position(i, m.start())):
                out.append(T.Range(T.Position(i, m.start()), T.Position(i, m.end())))
    return out


def contains(span: Span, pos: T.Position) -> bool:
    """Whether the cursor is in ``span`` or just after it (a cursor at a word's end is on the word)."""
    here = (pos.line + 1, pos.character + 1)
    return (span.line, span.column) <= here <= (span.end_line, span.end_column)


def declared(syntax: A.Module | None) -> dict[str, Span]:
    """Where the file declares each object and definition."""
    out: dict[str, Span] = {}
    for decl in getattr(syntax, "decls", ()):
        name, span = getattr(decl, "name", None), getattr(decl, "span", None)
        if isinstance(name, str) and span is not None and not isinstance(decl, A.MainDecl):
            out.setdefault(name, span)
    return out


def decl_at(doc: Document, pos: T.Position) -> A.Decl | None:
    """The declaration the cursor is in."""
    syntax = getattr(doc.module, "syntax", None)
    for decl in getattr(syntax, "decls", ()):
        if getattr(decl, "span", None) is not None and contains(decl.span, pos):
            return decl
    return None


def local_names(decl: A.Decl) -> set[str]:
    """The names a declaration binds for itself: size and morphism parameters, wires."""
    names = set(getattr(decl, "dim_params", ()))
    names.update(p.name for p in getattr(decl, "params", ()))
    if isinstance(decl, A.WiringDecl):
        for stmt in decl.body:
            if isinstance(stmt, A.Assign):
                names.update(stmt.names)
    return names
