"""Hover: what the checked IR says about the thing under the cursor.

On a box of a body (``dense(64)``, a use of a definition) the box as checked
there, with its wire shapes and parameter count; on a wire of the wiring
form, its object; on ``;``, ``⊗`` or brackets, the type of that
sub-diagram; elsewhere a definition's type, an object's structure, a
generator's description.  Boxes carry their spans, so nothing is checked
again: the module of the last check is read.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from dataclasses import replace
from typing import Any

from lsprotocol import types as T

from .. import ast as A
from ..errors import CatnetError
from ..ir import Box, Diagram, Span, Ty
from ..library import GENERATORS
from .documents import (
    Document,
    contains,
    decl_at,
    in_quiet,
    local_names,
    path_of,
    to_range,
    word_at,
)

#: A hover walks at most this many boxes of the checked IR to find the one under the cursor.
_MAX_BOXES = 200_000

log = logging.getLogger(__name__)


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


def markdown(text: str) -> str:
    """A hover text as markdown: its first paragraph as catnet code, the rest as prose."""
    code, _, prose = text.partition("\n\n")
    return f"```catnet\n{code}\n```" + (f"\n\n{prose}" if prose else "")


def boxes_here(doc: Document) -> list[tuple[Span, Box]]:
    """Every box of the module written in this document, with its span, outer ones first.

    The walk is breadth-first over the definitions' bodies, each body once,
    so a box of a definition is met in that definition before any use of it
    elsewhere, and the boxes of a template's body (which has no body of its
    own) are met in its first instance.  Bounded by :data:`_MAX_BOXES`.
    """
    if doc.boxes is not None:
        return doc.boxes
    m = doc.module
    here = os.path.abspath(path_of(doc.uri))
    same: dict[str, bool] = {}
    out: list[tuple[Span, Box]] = []
    queue: deque[Diagram] = deque(d.body for d in m.definitions.values() if d.body is not None)  # type: ignore[attr-defined]
    seen: set[int] = set()
    budget = _MAX_BOXES
    while queue and budget > 0:
        diagram = queue.popleft()
        if id(diagram) in seen:
            continue
        seen.add(id(diagram))
        for layer in diagram.layers:
            budget -= 1
            box = layer.box
            sp = box.span
            if sp is not None:
                if sp.file not in same:
                    same[sp.file] = os.path.abspath(sp.file) == here
                if same[sp.file]:
                    out.append((sp, box))
            if box.body is not None:
                queue.append(box.body)
            queue.extend(v for _, v in box.args if isinstance(v, Diagram))
    doc.boxes = out
    return out


def box_at(doc: Document, pos: T.Position) -> Box | None:
    """The innermost box whose source contains the cursor (the first met of equal ones)."""
    best: tuple[int, Box] | None = None
    for sp, box in boxes_here(doc):
        if contains(sp, pos) and (best is None or sp.end - sp.start < best[0]):
            best = (sp.end - sp.start, box)
    return best[1] if best is not None else None


def _key(span: Span | None) -> tuple[int, int, int, int] | None:
    return None if span is None else (span.line, span.column, span.end_line, span.end_column)


def box_params(box: Box) -> str:
    """The parameter count of one occurrence of ``box``, as a line of the hover."""
    from ..summary import box_params as count

    try:
        if box.shared is not None:
            return f"parameters: {count(replace(box, shared=None)):,} (the shared instance `{box.shared}`, counted once)"
        return f"parameters: {count(box):,}"
    except CatnetError:
        return "parameters: depend on sizes not yet known here"
    except Exception:  # a plugin's count rule: the hover does without the count
        log.debug("no parameter count for %s", box.name, exc_info=True)
        return ""


def _value(v: Any) -> str:
    """An argument as the language writes it."""
    if isinstance(v, bool):
        return "true" if v else "false"
    return f'"{v}"' if isinstance(v, str) else str(v)


def box_text(doc: Document, box: Box) -> str:
    """The hover of a box: its signature with wire shapes, its parameter count, then what its name is."""
    label = f"repeat {box.kwargs.get('n')} {box.name}" if box.kind == "repeat" else box.name
    g = GENERATORS.get(box.name) if box.kind == "generator" else None
    given = [f"{k}={_value(v)}" for k, v in box.args
             if g is not None and not isinstance(v, Diagram) and (a := g.arg(k)) is not None and v != a.default]
    call = f"{label}({', '.join(given)})" if given else label
    text = f"{call} : {box.dom.structure()} -> {box.cod.structure()}"
    lines = []
    if box.dom.structure() != str(box.dom) or box.cod.structure() != str(box.cod):
        lines.append(f"`{box.dom} -> {box.cod}`")
    if box.kind != "structural":
        lines.append(box_params(box))
    prose = "  \n".join(line for line in lines if line)
    own = hover_text(doc, box.name)
    if own is not None:
        prose += "\n\n" + markdown(own)
    return markdown(text + ("\n\n" + prose if prose else ""))


def wire_type(doc: Document, decl: A.WiringDecl, name: str) -> Ty | None:
    """The object of the wire ``name`` in a wiring-form definition, from its checked signature or body.

    A parameter's object is its slot of the definition's domain; an assigned
    wire's is the codomain of the box its right-hand side became (the last
    box of the body written exactly there), or the wire it renames.
    """
    d = doc.module.definitions.get(decl.name)  # type: ignore[union-attr]
    if d is None:
        return None
    wires = [p for p in decl.params if p.cod is None]
    for i, p in enumerate(wires):
        if p.name == name:
            return d.dom[i:i + 1] if len(d.dom) == len(wires) else None
    for stmt in reversed(decl.body):  # the last assignment to a name is the one later lines see
        if not isinstance(stmt, A.Assign) or name not in stmt.names:
            continue
        if isinstance(stmt.value, A.Wire) and len(stmt.names) == 1:
            return wire_type(doc, decl, stmt.value.name) if stmt.value.name != name else None
        if d.body is None:
            return None
        key = _key(stmt.value.span)
        made = [layer.box for layer in d.body.layers if _key(layer.box.span) == key]
        if not made or len(made[-1].cod) != len(stmt.names):
            return None
        i = stmt.names.index(name)
        return made[-1].cod[i:i + 1]
    return None


def _children(e: Any) -> tuple:
    if isinstance(e, (A.Then, A.Product, A.Pair)):
        return e.parts
    if isinstance(e, (A.Ascribe, A.Repeat, A.Inv, A.Scan)):
        return (e.expr,)
    if isinstance(e, A.Ref):
        return tuple(a.value for a in e.args or () if isinstance(a.value, (A.Ref, A.Then, A.Product, A.Pair,
                                                                         A.Ascribe, A.Repeat, A.Inv, A.Scan)))
    return ()


def expression_at(decl: A.Decl, pos: T.Position) -> list[Any]:
    """The chain of point-free expressions from the body of ``decl`` to the innermost one under the cursor."""
    body = decl.body if isinstance(decl, A.MorphismDecl) else decl.expr if isinstance(decl, A.SharedDecl) else None
    if body is None or body.span is None or not contains(body.span, pos):
        return []
    path = [body]
    while True:
        inner = [c for c in _children(path[-1]) if c.span is not None and contains(c.span, pos)]
        if not inner:
            return path
        path.append(inner[0])


def expression_type(doc: Document, decl: A.Decl, path: list[Any]) -> tuple[Ty, Ty] | None:
    """The type of the innermost expression of ``path``, read off the checked boxes.

    A box written exactly there gives it; a composite takes its first
    part's domain and its last part's codomain, a product its parts' in
    parallel.  What has no box of its own (``id``) takes its type from its
    neighbours in the composite around it, and the whole body is the
    definition's type.
    """
    at: dict[tuple[int, int, int, int], Box] = {}
    for sp, box in boxes_here(doc):
        at.setdefault(_key(sp), box)  # type: ignore[arg-type]

    def own(e: Any) -> tuple[Ty, Ty] | None:
        box = at.get(_key(e.span))  # type: ignore[arg-type]
        if box is not None:
            return box.dom, box.cod
        if isinstance(e, A.Ascribe):
            return own(e.expr)
        if isinstance(e, A.Then) and e.parts:
            first, last = own(e.parts[0]), own(e.parts[-1])
            return (first[0], last[1]) if first and last else None
        if isinstance(e, (A.Product, A.Pair)) and e.parts:
            types = [own(p) for p in e.parts]
            if any(t is None for t in types):
                return None
            doms = types[0][0] if isinstance(e, A.Pair) else Ty.concat(t[0] for t in types)  # type: ignore[index]
            return doms, Ty.concat(t[1] for t in types)  # type: ignore[index]
        return None

    def typed(i: int) -> tuple[Ty, Ty] | None:
        if i == 0:
            d = doc.module.definitions.get(decl.name)  # type: ignore[union-attr, attr-defined]
            return (d.dom, d.cod) if d is not None else None
        found = own(path[i])
        if found is not None:
            return found
        parent = path[i - 1]
        if isinstance(parent, A.Ascribe):
            return typed(i - 1)
        if isinstance(parent, A.Then):
            k = next(j for j, p in enumerate(parent.parts) if p is path[i])
            before = own(parent.parts[k - 1]) if k > 0 else None
            after = own(parent.parts[k + 1]) if k + 1 < len(parent.parts) else None
            outer = typed(i - 1) if before is None or after is None else None
            dom = before[1] if before else outer[0] if outer and k == 0 else None
            cod = after[0] if after else outer[1] if outer and k == len(parent.parts) - 1 else None
            return (dom, cod) if dom is not None and cod is not None else None
        return None

    return typed(len(path) - 1)


def hover_at(doc: Document, pos: T.Position) -> T.Hover | None:
    """The hover at the cursor: a wire, else a box, else a name, else the sub-expression."""
    found = word_at(doc.text, pos)
    if in_quiet(doc.text, pos):
        return None
    decl = decl_at(doc, pos) if doc.current else None
    if decl is not None:
        if found is not None and isinstance(decl, A.WiringDecl) and found[0] in local_names(decl):
            ty = wire_type(doc, decl, found[0])
            if ty is not None:
                text = f"wire {found[0]} : {ty}" + (f"\n\n`{ty.structure()}`" if ty.structure() != str(ty) else "")
                return T.Hover(T.MarkupContent(T.MarkupKind.Markdown, markdown(text)), found[1])
        box = box_at(doc, pos)
        if box is not None:
            return T.Hover(T.MarkupContent(T.MarkupKind.Markdown, box_text(doc, box)), to_range(box.span))  # type: ignore[arg-type]
    if found is not None:
        text = hover_text(doc, found[0])
        if text is not None:
            return T.Hover(T.MarkupContent(T.MarkupKind.Markdown, markdown(text)), found[1])
    if decl is not None:
        path = expression_at(decl, pos)
        typ = expression_type(doc, decl, path) if path else None
        if typ is not None:
            dom, cod = typ
            sp = path[-1].span
            snippet = doc.text[sp.start:sp.end] if sp.end - sp.start <= 60 and "\n" not in doc.text[sp.start:sp.end] else "…"
            text = f"{snippet} : {dom.structure()} -> {cod.structure()}"
            if dom.structure() != str(dom) or cod.structure() != str(cod):
                text += f"\n\n`{dom} -> {cod}`"
            return T.Hover(T.MarkupContent(T.MarkupKind.Markdown, markdown(text)), to_range(sp))
    return None
