"""``catnet lsp``: a language server for ``.cat`` files (the Language Server Protocol over stdio, on pygls).

An editor starts ``catnet lsp`` and speaks JSON-RPC with it.  Each time a
document is opened, changed or saved, the server checks its text as
``catnet check`` would (imports resolved beside the file) and publishes
the result: the one diagnostic of a file that does not check, with its
code, range, notes and help, or none, which clears the last.  On a checked
document (or, while it has an error, the last version that checked) it
answers:

- **hover**: a definition's type (``morphism block : Stream -> Stream``),
  an object's structure, a generator's description;
- **go to definition**: where a definition or object is declared, in this
  file or in the file it is imported from;
- **references** and **rename**: every occurrence of the name in the
  document, comments and strings aside;
- **completion**: definitions, objects, generators and keywords;
- **document symbols**: the file's objects and definitions;
- **formatting**: ``catnet fmt``.

Positions follow the protocol: 0-based lines and characters (UTF-16 code
units, which equal characters for text in the Basic Multilingual Plane, as
``.cat`` files are).
"""

from __future__ import annotations

import argparse
import os
import re
from dataclasses import dataclass, field
from urllib.parse import unquote, urlparse

from lsprotocol import types as T
from pygls.lsp.server import LanguageServer

from .. import ast as A
from ..errors import CatnetError
from ..ir import Span
from ..library import GENERATORS
from .lexer import DECLARATIONS, KEYWORDS

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


def word_at(text: str, pos: T.Position) -> tuple[str, T.Range] | None:
    """The name under the cursor, and its range."""
    lines = text.split("\n")
    if pos.line >= len(lines):
        return None
    line = lines[pos.line]
    for m in _WORD.finditer(line):
        if m.start() <= pos.character <= m.end():
            return m.group(), T.Range(T.Position(pos.line, m.start()), T.Position(pos.line, m.end()))
    return None


def occurrences(text: str, name: str) -> list[T.Range]:
    """Every occurrence of ``name`` as a whole word, outside comments and strings."""
    quiet = _QUIET.sub(lambda m: " " * len(m.group()), text)
    out = []
    for i, line in enumerate(quiet.split("\n")):
        for m in re.finditer(rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9_])", line):
            out.append(T.Range(T.Position(i, m.start()), T.Position(i, m.end())))
    return out


class CatnetServer(LanguageServer):
    def __init__(self) -> None:
        from .. import __version__

        super().__init__("catnet", __version__)
        self.documents: dict[str, Document] = {}

    def check(self, uri: str, text: str) -> Document:
        """Check ``text`` as the document ``uri`` and publish its diagnostics."""
        from .. import loads

        doc = self.documents.setdefault(uri, Document(uri))
        doc.text = text
        path = path_of(uri)
        try:
            module = loads(text, path, base_dir=os.path.dirname(os.path.abspath(path)))
        except CatnetError as e:
            doc.error = e
            diagnostics = [diagnostic(e, path)]
        else:
            doc.error, doc.module = None, module
            doc.spans = declared(module.syntax)
            diagnostics = []
        self.text_document_publish_diagnostics(T.PublishDiagnosticsParams(uri=uri, diagnostics=diagnostics))
        return doc


def declared(syntax: A.Module | None) -> dict[str, Span]:
    """Where the file declares each object and definition."""
    out: dict[str, Span] = {}
    for decl in getattr(syntax, "decls", ()):
        name, span = getattr(decl, "name", None), getattr(decl, "span", None)
        if isinstance(name, str) and span is not None and not isinstance(decl, A.MainDecl):
            out.setdefault(name, span)
    return out


def hover_text(doc: Document, name: str) -> str | None:
    """What the hover says about ``name``: a definition's type, an object's structure, a generator's doc."""
    m = doc.module
    if m is not None:
        d = m.definitions.get(name) or m.imported.get(name)  # type: ignore[attr-defined]
        if d is not None:
            where = "" if name in m.definitions else f" (from {os.path.relpath(d.module.path)})"  # type: ignore[attr-defined]
            params = f"[{', '.join(d.dim_params)}]" if d.dim_params else ""
            text = f"{d.kind} {name}{params} : {d.signature()}{where}"
            if d.dom.structure() != str(d.dom) or d.cod.structure() != str(d.cod):
                text += f"\n\n{d.dom.structure()} -> {d.cod.structure()}"
            return text
        ty = m.objects.get(name) or m.imported_objects.get(name)  # type: ignore[attr-defined]
        if ty is not None:
            return f"object {name} = {ty.structure()}"
    g = GENERATORS.get(name)
    if g is not None:
        return f"generator {name}" + (f"\n\n{g.doc}" if g.doc else "")
    return None


def build() -> CatnetServer:
    """The server with every feature registered."""
    server = CatnetServer()

    @server.feature(T.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: CatnetServer, params: T.DidOpenTextDocumentParams) -> None:
        ls.check(params.text_document.uri, params.text_document.text)

    @server.feature(T.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: CatnetServer, params: T.DidChangeTextDocumentParams) -> None:
        uri = params.text_document.uri
        ls.check(uri, ls.workspace.get_text_document(uri).source)

    @server.feature(T.TEXT_DOCUMENT_DID_SAVE)
    def did_save(ls: CatnetServer, params: T.DidSaveTextDocumentParams) -> None:
        uri = params.text_document.uri
        ls.check(uri, ls.workspace.get_text_document(uri).source)

    @server.feature(T.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: CatnetServer, params: T.DidCloseTextDocumentParams) -> None:
        ls.documents.pop(params.text_document.uri, None)

    def document(ls: CatnetServer, uri: str) -> Document:
        return ls.documents.get(uri) or ls.check(uri, ls.workspace.get_text_document(uri).source)

    @server.feature(T.TEXT_DOCUMENT_HOVER)
    def hover(ls: CatnetServer, params: T.HoverParams) -> T.Hover | None:
        doc = document(ls, params.text_document.uri)
        found = word_at(doc.text, params.position)
        if found is None:
            return None
        text = hover_text(doc, found[0])
        if text is None:
            return None
        return T.Hover(T.MarkupContent(T.MarkupKind.Markdown, f"```catnet\n{text}\n```" if "\n\n" not in text
                                       else "```catnet\n" + text.replace("\n\n", "\n```\n\n", 1)), found[1])

    @server.feature(T.TEXT_DOCUMENT_DEFINITION)
    def definition(ls: CatnetServer, params: T.DefinitionParams) -> T.Location | None:
        doc = document(ls, params.text_document.uri)
        found = word_at(doc.text, params.position)
        if found is None or doc.module is None:
            return None
        name = found[0]
        if name in doc.spans:
            return T.Location(params.text_document.uri, to_range(doc.spans[name]))
        d = doc.module.imported.get(name)  # type: ignore[attr-defined]
        if d is not None and d.span is not None:
            return T.Location(uri_of(d.span.file), to_range(d.span))
        return None

    @server.feature(T.TEXT_DOCUMENT_REFERENCES)
    def references(ls: CatnetServer, params: T.ReferenceParams) -> list[T.Location]:
        doc = document(ls, params.text_document.uri)
        found = word_at(doc.text, params.position)
        if found is None:
            return []
        return [T.Location(params.text_document.uri, r) for r in occurrences(doc.text, found[0])]

    @server.feature(T.TEXT_DOCUMENT_RENAME)
    def rename(ls: CatnetServer, params: T.RenameParams) -> T.WorkspaceEdit | None:
        doc = document(ls, params.text_document.uri)
        found = word_at(doc.text, params.position)
        if found is None or not _WORD.fullmatch(params.new_name):
            return None
        edits = [T.TextEdit(r, params.new_name) for r in occurrences(doc.text, found[0])]
        return T.WorkspaceEdit(changes={params.text_document.uri: edits})

    @server.feature(T.TEXT_DOCUMENT_COMPLETION)
    def completion(ls: CatnetServer, params: T.CompletionParams) -> T.CompletionList:
        doc = document(ls, params.text_document.uri)
        items: list[T.CompletionItem] = []
        m = doc.module
        if m is not None:
            for name, d in {**m.imported, **m.definitions}.items():  # type: ignore[attr-defined]
                items.append(T.CompletionItem(name, kind=T.CompletionItemKind.Function, detail=d.signature()))
            for name, ty in {**m.imported_objects, **m.objects}.items():  # type: ignore[attr-defined]
                items.append(T.CompletionItem(name, kind=T.CompletionItemKind.Class, detail=ty.structure()))
        for name, g in GENERATORS.items():
            items.append(T.CompletionItem(name, kind=T.CompletionItemKind.Function, detail="generator",
                                          documentation=g.doc or None))
        for word in (*DECLARATIONS, *KEYWORDS):
            items.append(T.CompletionItem(word, kind=T.CompletionItemKind.Keyword))
        return T.CompletionList(is_incomplete=False, items=items)

    @server.feature(T.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
    def symbols(ls: CatnetServer, params: T.DocumentSymbolParams) -> list[T.DocumentSymbol]:
        doc = document(ls, params.text_document.uri)
        out = []
        m = doc.module
        for name, span in doc.spans.items():
            is_def = m is not None and name in m.definitions  # type: ignore[attr-defined]
            detail = m.definitions[name].signature() if is_def else ""  # type: ignore[attr-defined]
            kind = T.SymbolKind.Function if is_def else T.SymbolKind.Class
            out.append(T.DocumentSymbol(name=name, kind=kind, range=to_range(span), selection_range=to_range(span),
                                        detail=detail or None))
        return out

    @server.feature(T.TEXT_DOCUMENT_FORMATTING)
    def formatting(ls: CatnetServer, params: T.DocumentFormattingParams) -> list[T.TextEdit] | None:
        from ..fmt import format_text

        doc = document(ls, params.text_document.uri)
        try:
            new = format_text(doc.text, path_of(params.text_document.uri))
        except CatnetError:
            return None  # the diagnostic already says why
        if new == doc.text:
            return []
        lines = doc.text.split("\n")
        end = T.Position(len(lines) - 1, len(lines[-1]))
        return [T.TextEdit(T.Range(T.Position(0, 0), end), new)]

    return server


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stdio", action="store_true", help="speak over standard input and output (the default and only way)")


def run(args: argparse.Namespace) -> int:
    """Serve one editor over stdio until it disconnects."""
    build().start_io()
    return 0
