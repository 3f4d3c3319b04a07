"""``catnet lsp``: a language server for ``.cat`` files (the Language Server Protocol over stdio, on pygls).

An editor starts ``catnet lsp`` and speaks JSON-RPC with it.  Each time a
document is opened, changed or saved, the server checks its text as
``catnet check`` would (imports resolved beside the file) and publishes
the result: the one diagnostic of a file that does not check, with its
code, range, notes and help, or none, which clears the last.  On a checked
document (or, while it has an error, the last version that checked) it
answers:

- **hover**: on a box of a body (``dense(64)``, a use of a definition) the
  box as checked there, with its wire shapes and parameter count; on a wire
  of the wiring form, its object; on ``;``, ``⊗`` or brackets, the type of
  that sub-diagram; elsewhere a definition's type (``morphism block :
  Stream -> Stream``), an object's structure, a generator's description;
- **go to definition**: where a definition or object is declared, in this
  file or in the file it is imported from;
- **references** and **rename**: every occurrence of a top-level name in the
  files that share it (the file that declares it, the files it reaches by
  imports, the open documents that import it), comments and strings aside;
  of a parameter or wire, within its declaration.  A rename to a keyword,
  a generator or a name already taken is refused with an error response;
- **completion**: inside a generator's call its keyword arguments (kind and
  default), inside a template's call its morphism parameters, then
  definitions, objects, generators and keywords;
- **document symbols**: the file's objects and definitions;
- **formatting**: ``catnet fmt``.

A change is checked again from what the edit left alone
(:mod:`catnet.check.incremental`: the declarations before the first changed
character keep their parse and their checked result).  Hover, completion
and the files a name lives in are in :mod:`.hover`, :mod:`.completion` and
:mod:`.workspace`.  A request that meets something unexpected answers empty
(``None``, ``[]``) rather than with a traceback.

Positions follow the protocol: 0-based lines and characters (UTF-16 code
units, which equal characters for text in the Basic Multilingual Plane, as
``.cat`` files are).
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
from collections.abc import Callable
from typing import Any

from lsprotocol import types as T
from pygls.exceptions import JsonRpcException
from pygls.lsp.server import LanguageServer

from ..errors import CatnetError
from .completion import completion_items
from .documents import (
    Document,
    declared,
    diagnostic,
    path_of,
    to_range,
    uri_of,
    word_at,
)
from .hover import hover_at
from .workspace import locations, refusal

#: The protocol's error code for a request that is valid but cannot be carried out (a refused rename).
_REQUEST_FAILED = -32803

log = logging.getLogger(__name__)


class CatnetServer(LanguageServer):
    def __init__(self) -> None:
        from .. import __version__

        super().__init__("catnet", __version__)
        self.documents: dict[str, Document] = {}

    def check(self, uri: str, text: str) -> Document:
        """Check ``text`` as the document ``uri`` and publish its diagnostics.

        The last module that checked is the starting point: what the edit
        left alone is kept (``catnet.check.incremental``).
        """
        from ..check import check_text

        doc = self.documents.setdefault(uri, Document(uri))
        doc.text = text
        path = path_of(uri)
        try:
            module = check_text(text, path, base_dir=os.path.dirname(os.path.abspath(path)), previous=doc.module)  # type: ignore[arg-type]
        except CatnetError as e:
            doc.error = e
            diagnostics = [diagnostic(e, path)]
        else:
            doc.error, doc.module, doc.checked, doc.boxes = None, module, text, None
            doc.spans = declared(module.syntax)
            diagnostics = []
        self.text_document_publish_diagnostics(T.PublishDiagnosticsParams(uri=uri, diagnostics=diagnostics))
        return doc


def guarded(empty: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A request handler that answers ``empty`` instead of an internal error with a traceback.

    A refusal meant for the user (:class:`JsonRpcException`) still goes out as the error it is.
    """

    def wrap(handler: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(handler)
        def safe(ls: CatnetServer, params: Any) -> Any:
            try:
                return handler(ls, params)
            except JsonRpcException:
                raise
            except Exception:
                log.debug("%s failed", handler.__name__, exc_info=True)
                return empty

        return safe

    return wrap


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
    @guarded(None)
    def hover(ls: CatnetServer, params: T.HoverParams) -> T.Hover | None:
        return hover_at(document(ls, params.text_document.uri), params.position)

    @server.feature(T.TEXT_DOCUMENT_DEFINITION)
    @guarded(None)
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
    @guarded([])
    def references(ls: CatnetServer, params: T.ReferenceParams) -> list[T.Location]:
        document(ls, params.text_document.uri)
        found = locations(ls.documents, params.text_document.uri, params.position, params.context.include_declaration)
        if found is None:
            return []
        return [T.Location(uri, r) for uri, ranges in found[1].items() for r in ranges]

    @server.feature(T.TEXT_DOCUMENT_PREPARE_RENAME)
    @guarded(None)
    def prepare_rename(ls: CatnetServer, params: T.PrepareRenameParams) -> T.Range | None:
        doc = document(ls, params.text_document.uri)
        found = word_at(doc.text, params.position)
        if found is None or refusal(ls.documents, params.text_document.uri, found[0], found[0]) is not None:
            return None
        return found[1]

    @server.feature(T.TEXT_DOCUMENT_RENAME)
    @guarded(None)
    def rename(ls: CatnetServer, params: T.RenameParams) -> T.WorkspaceEdit | None:
        uri = params.text_document.uri
        doc = document(ls, uri)
        found = word_at(doc.text, params.position)
        if found is None:
            return None
        why = refusal(ls.documents, uri, found[0], params.new_name)
        if why is not None:
            raise JsonRpcException(message=f"cannot rename `{found[0]}`: {why}", code=_REQUEST_FAILED)
        where = locations(ls.documents, uri, params.position)
        if where is None:
            return None
        return T.WorkspaceEdit(changes={u: [T.TextEdit(r, params.new_name) for r in ranges]
                                        for u, ranges in where[1].items()})

    @server.feature(T.TEXT_DOCUMENT_COMPLETION)
    @guarded(T.CompletionList(is_incomplete=False, items=[]))
    def completion(ls: CatnetServer, params: T.CompletionParams) -> T.CompletionList:
        items = completion_items(document(ls, params.text_document.uri), params.position)
        return T.CompletionList(is_incomplete=False, items=items)

    @server.feature(T.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
    @guarded([])
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
    @guarded(None)
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
