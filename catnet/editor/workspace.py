"""The files a name lives in: references and rename across imports.

A top-level name means its declaration in the file that declares it, the
files that file imports and the files (open documents, or files on disk
they import) that import it; a parameter or wire means itself within its
declaration.  Files are read as the editor has them (open documents) or
from disk, following imports as the checker does.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections import deque
from collections.abc import Mapping

from lsprotocol import types as T

from .. import ast as A
from ..check.declarations import references
from ..errors import CatnetError
from ..library import GENERATORS
from ..syntax import parse
from .documents import (
    _WORD,
    Document,
    blanked,
    contains,
    decl_at,
    local_names,
    occurrences,
    path_of,
    uri_of,
    word_at,
)
from .lexer import DECLARATIONS, KEYWORDS

#: An ``import "path"``, found by scanning past comments and strings (the first two alternatives).
_IMPORT = re.compile(r'#[^\n]*|"(?:[^"\\\n]|\\.)*"|(?<![A-Za-z0-9_])import\s+"((?:[^"\\\n]|\\.)*)"')
#: A top-level declaration and the name it declares, in text whose comments and strings are blanked.
_DECL = re.compile(r"(?<![A-Za-z0-9_])(?:object|bundle|morphism|shared)\s+([A-Za-z_][A-Za-z0-9_]*)")
#: References and rename read at most this many files of the import graph, each at most this large.
_MAX_FILES = 500
_MAX_FILE_BYTES = 8 << 20


class Files:
    """The ``.cat`` files reachable by imports from the open documents, for one request.

    Each file's text is its open document's, else what is on disk.  As the
    checker does, imports are followed only inside the directory of the
    document they start from.
    """

    def __init__(self, documents: Mapping[str, Document]) -> None:
        self.uris: dict[str, str] = {}
        self.texts: dict[str, str] = {}
        self.imports: dict[str, list[str]] = {}
        for uri, doc in documents.items():
            real = os.path.realpath(path_of(uri))
            self.uris[real] = uri
            self.texts[real] = doc.text
        for real in list(self.uris):
            self._walk(real)

    def _walk(self, start: str) -> None:
        root = os.path.dirname(start)
        queue = deque([start])
        while queue and len(self.imports) < _MAX_FILES:
            path = queue.popleft()
            if path in self.imports:
                continue
            text = self.text(path)
            self.imports[path] = found = []
            for m in _IMPORT.finditer(text or ""):
                if m.group(1) is None:
                    continue
                real = os.path.realpath(os.path.join(os.path.dirname(path), m.group(1)))
                if os.path.commonpath([real, root]) == root and os.path.isfile(real):
                    found.append(real)
                    queue.append(real)

    def text(self, path: str) -> str | None:
        if path not in self.texts:
            try:
                if os.path.getsize(path) > _MAX_FILE_BYTES:
                    return None
                with open(path, encoding="utf-8-sig") as f:
                    self.texts[path] = f.read()
            except (OSError, UnicodeDecodeError):
                return None
        return self.texts[path]

    def uri(self, path: str) -> str:
        return self.uris.get(path) or uri_of(path)

    def reach(self, path: str) -> list[str]:
        """``path`` and every file it imports, directly or not, breadth first."""
        out, queue = [path], deque([path])
        seen = {path}
        while queue:
            for nxt in self.imports.get(queue.popleft(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    out.append(nxt)
                    queue.append(nxt)
        return out

    def declares(self, path: str) -> dict[str, T.Range]:
        """The names a file declares at top level, with the range of each name."""
        out: dict[str, T.Range] = {}
        quiet = blanked(self.text(path) or "")
        for m in _DECL.finditer(quiet):
            line = quiet.count("\n", 0, m.start(1))
            col = m.start(1) - (quiet.rfind("\n", 0, m.start(1)) + 1)
            out.setdefault(m.group(1), T.Range(T.Position(line, col), T.Position(line, col + len(m.group(1)))))
        return out

    def home(self, path: str, name: str) -> str | None:
        """The file that declares the top-level ``name`` seen from ``path``: it or one it imports."""
        return next((f for f in self.reach(path) if name in self.declares(f)), None)

    def sharing(self, home: str) -> list[str]:
        """The files where a name declared in ``home`` means that declaration: ``home`` and its importers."""
        files = [f for f in self.imports if f == home or home in self.reach(f)]
        return sorted(files, key=lambda f: (f != home, f))


def _meaning(text: str, path: str, name: str, ranges: list[T.Range], top_level: bool,
             within: A.Decl | None = None) -> list[T.Range]:
    """Of the whole-word ``ranges`` of ``name`` in a file, those that mean the top-level ``name`` (or, when not
    ``top_level``, the parameter or wire ``name`` of ``within``).

    Inside a declaration the syntax decides: the top-level name is where
    it names an object or a morphism (``references``) or is declared; a
    keyword argument's name is neither; a parameter or wire is what is
    left. A file that does not parse keeps every word: the editor is
    mid-edit.
    """
    try:
        decls = [within] if within is not None else list(parse(text, path).decls)
    except CatnetError:
        return ranges
    out = list(ranges)
    for decl in decls:
        span = getattr(decl, "span", None)
        if span is None:
            continue
        inside = [r for r in out if contains(span, r.start)]
        if not inside:
            continue
        named, keywords = _positions(decl, name)
        if getattr(decl, "name", None) == name:
            named.add((inside[0].start.line, inside[0].start.character))  # the declaration's own name comes first
        if top_level:
            keep = [r for r in inside if (r.start.line, r.start.character) in named]
        else:
            keep = [r for r in inside if (r.start.line, r.start.character) not in named | keywords]
        dropped = {id(r) for r in inside} - {id(r) for r in keep}
        out = [r for r in out if id(r) not in dropped]
    return out


def _positions(decl: A.Decl, name: str) -> tuple[set[tuple[int, int]], set[tuple[int, int]]]:
    """Where ``decl``'s syntax names the top-level ``name``, and where ``name`` is a keyword argument (0-based)."""
    named = {(s.line - 1, s.column - 1) for n, s in references(decl) if n == name and s is not None}
    keywords: set[tuple[int, int]] = set()
    stack: list[object] = [decl]
    while stack:
        node = stack.pop()
        if isinstance(node, tuple):
            stack.extend(node)
        elif dataclasses.is_dataclass(node) and not isinstance(node, type):
            if isinstance(node, A.Arg) and node.name == name and node.span is not None:
                keywords.add((node.span.line - 1, node.span.column - 1))
            stack.extend(getattr(node, f.name) for f in dataclasses.fields(node) if f.name not in ("span", "name_span"))
    return named, keywords


def locations(documents: Mapping[str, Document], uri: str, pos: T.Position, include_declaration: bool = True
              ) -> tuple[str, dict[str, list[T.Range]]] | None:
    """The name under the cursor and where it occurs, by document: across imports for a top-level name,
    within its declaration for a parameter or wire, else in this document."""
    doc = documents.get(uri)
    if doc is None:
        return None
    found = word_at(doc.text, pos)
    if found is None:
        return None
    name, word = found
    if doc.current:
        decl = decl_at(doc, pos)
        if decl is not None and name in local_names(decl) and name not in doc.spans:
            mine = occurrences(doc.text, name, decl.span)
            local = _meaning(doc.text, path_of(uri), name, mine, False, decl)
            if word in local or word not in mine:  # else the word names a top-level thing (a call `name(x)`)
                return name, {uri: local}
    files = Files(documents)
    here = os.path.realpath(path_of(uri))
    home = files.home(here, name)
    if home is None:
        return name, {uri: occurrences(doc.text, name)}
    out: dict[str, list[T.Range]] = {}
    for f in files.sharing(home):
        if f != home and name in files.declares(f):
            continue  # its own `name`, not the one of ``home`` (the checker refuses it anyway)
        text = files.text(f) or ""
        ranges = _meaning(text, f, name, occurrences(text, name), True)
        if f == home and not include_declaration:
            decl_range = files.declares(f)[name]
            ranges = [r for r in ranges if r != decl_range]
        if ranges:
            out[files.uri(f)] = ranges
    return name, out


def refusal(documents: Mapping[str, Document], uri: str, old: str, new: str) -> str | None:
    """Why ``old`` may not be renamed to ``new`` here, or ``None``."""
    words = set(A.KEYWORDS) | set(DECLARATIONS) | set(KEYWORDS)
    if old in words or old in GENERATORS:
        return f"`{old}` is {'a keyword' if old in words else 'a generator of the library'} and cannot be renamed"
    if not _WORD.fullmatch(new):
        return f"`{new}` is not a name (a letter or `_`, then letters, digits or `_`)"
    if new in words:
        return f"`{new}` is a keyword"
    if new in GENERATORS:
        return f"`{new}` is a generator of the library"
    if new == old:
        return None
    files = Files(documents)
    here = os.path.realpath(path_of(uri))
    home = files.home(here, old) or here
    for f in files.sharing(home):
        for g in files.reach(f):
            if new in files.declares(g):
                return f"`{new}` is already defined in {os.path.basename(g)}"
        if occurrences(files.text(f) or "", new):
            return f"`{new}` is already used in {os.path.basename(f)}"
    return None
