"""Completion: keyword arguments inside a call, then the names in scope, generators and keywords."""

from __future__ import annotations

import re

from lsprotocol import types as T

from ..library import GENERATORS
from .documents import Document, blanked, in_quiet
from .lexer import DECLARATIONS, KEYWORDS

#: How far back a completion looks for the ``(`` of the call it is in.
_CALL_LOOKBACK = 4000
#: A line that starts a declaration: a call never reaches back past it.
_STARTS_DECL = re.compile(r"[ \t]*(?:import|object|bundle|morphism|shared|main)(?![A-Za-z0-9_])")


def completion_items(doc: Document, pos: T.Position) -> list[T.CompletionItem]:
    """What may be written at the cursor: a call's keyword arguments first, nothing in a comment or string."""
    if in_quiet(doc.text, pos):
        return []
    call = call_at(doc.text, pos)
    items: list[T.CompletionItem] = argument_items(doc, call) if call is not None else []
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
    return items


def call_at(text: str, pos: T.Position) -> tuple[str, str] | None:
    """The name of the call whose brackets hold the cursor, and what is written in them before it."""
    lines = text.split("\n")
    if pos.line >= len(lines):
        return None
    offset = sum(len(line) + 1 for line in lines[:pos.line]) + min(pos.character, len(lines[pos.line]))
    quiet = blanked(text[max(0, offset - _CALL_LOOKBACK):offset])
    depth = 0
    for i in range(len(quiet) - 1, -1, -1):
        c = quiet[i]
        if c in ")]":
            depth += 1
        elif c == "[" and depth:
            depth -= 1
        elif c == "(":
            if depth:
                depth -= 1
                continue
            before = quiet[:i].rstrip()
            if before.endswith("]"):  # dimension arguments: `block[64](`
                before = before[:before.rfind("[")].rstrip()
            m = re.search(r"[A-Za-z_][A-Za-z0-9_]*$", before)
            return (m.group(), quiet[i + 1:]) if m else None
        elif c in "{}" or c == "\n" and _STARTS_DECL.match(quiet, i + 1):
            return None  # the call would have to start in another statement or declaration
    return None


def argument_items(doc: Document, call: tuple[str, str]) -> list[T.CompletionItem]:
    """The keyword arguments of a generator's call, or the morphism parameters of a template's, not yet given."""
    name, inside = call
    given = set(re.findall(r"([A-Za-z_][A-Za-z0-9_]*)\s*=(?!=)", inside))
    items = []
    g = GENERATORS.get(name)
    m = doc.module
    d = (m.definitions.get(name) or m.imported.get(name)) if m is not None else None  # type: ignore[attr-defined]
    if g is not None and d is None:
        for a in g.args:
            if a.name in given:
                continue
            detail = a.kind + (" (required)" if a.required else f" = {a.default}" if a.default is not None else "")
            if a.choices:
                detail += " — one of " + ", ".join(repr(c) for c in a.choices)
            items.append(T.CompletionItem(f"{a.name}=", kind=T.CompletionItemKind.Property, detail=detail,
                                          insert_text=f"{a.name}=", sort_text=f"0{a.name}", filter_text=a.name))
    elif d is not None:
        from .. import fmt

        for p in d.params:
            if p.cod is not None and p.name not in given:
                items.append(T.CompletionItem(f"{p.name}=", kind=T.CompletionItemKind.Property,
                                              detail=f"{fmt.typ(p.dom)} -> {fmt.typ(p.cod)}",
                                              insert_text=f"{p.name}=", sort_text=f"0{p.name}", filter_text=p.name))
    return items
