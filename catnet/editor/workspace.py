"""The files a name lives in: references and rename across imports.

A top-level name means its declaration in the file that declares it, the
files that file imports and the files (open documents, or files on disk
they import) that import it; a parameter or wire means itself within its
declaration.  Files are read as the editor has them (open documents) or
from disk, following imports as the checker does.
"""

from __future__ import annotations

import os
import re
from collections import deque
from collections.abc import Mapping

from lsprotocol import types as T

from .. import ast as A
from ..library import GENERATORS
from .documents import (
    _WORD,
    Document,
    blanked,
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
    name = found[0]
    if doc.current:
        decl = decl_at(doc, pos)
        if decl is not None and name in local_names(decl) and name not in doc.spans:
            return name, {uri: occurrences(doc.text, name, decl.span)}
    files = Files(documents)
    here = os.path.realpath(path_of(uri))
    home = files.home(here, name)
    if home is None:
        return name, {uri: occurrences(doc.text, name)}
    out: dict[str, list[T.Range]] = {}
    for f in files.sharing(home):
        if f != home and name in files.declares(f):
            continue  # its own `name`, not the one of ``home`` (the checker refuses it anyway)
        ranges = occurrences(files.text(f) or "", name)
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
