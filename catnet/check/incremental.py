"""Checking a file again after an edit: what the edit cannot have changed is kept.

The language server checks a document on every change.  Text before the
first changed character parses and checks as it did, so
:func:`plan` keeps the leading declarations the edit left alone, and
:func:`seed` hands their checked results to the new checker:

* a declaration is **kept as syntax** when its whole stretch — from its
  keyword to the keyword of the next declaration — lies before the first
  change, and the next declaration's keyword is still there (so nothing
  after it can have joined it).  Its tree is the previous one, spans
  included (the text before it is the same, so lines, columns and offsets
  are too); parsing resumes at the first stretch that is not kept;
* a kept object or definition is **kept checked** when everything it
  names is kept checked too, it names nothing imported (an imported file
  may have changed on disk) and no generator whose boxes are one instance
  per model (``triv``: the checker compares every use with the first).

Everything else is parsed and checked as usual, so the module is the one
a full check gives (``tests/test_incremental.py`` compares them).  The
previous module must be the result of checking the previous text under the
same path.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .. import ast as A
from ..library import GENERATORS
from ..syntax import STREAM_BYTES, declaration_starts
from .module import Module


@dataclass
class Plan:
    """What a check after an edit keeps: the leading declarations and comments, and where parsing resumes."""

    decls: list[A.Decl]
    comments: list[A.Comment]
    resume: int
    previous: Module


def common_prefix(a: str, b: str) -> int:
    """The length of the longest common prefix (slice comparisons run in C)."""
    lo, hi = 0, min(len(a), len(b))
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[lo:mid] == b[lo:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def plan(previous: Module | None, text: str, path: str) -> Plan | None:
    """The declarations of ``previous`` that an edit to ``text`` left alone, or ``None`` to check afresh."""
    # A file long enough to be checked while it streams in is checked afresh.
    if previous is None or previous.syntax is None or previous.path != path or "\r" in text or len(text) > STREAM_BYTES:
        return None
    old = previous.source
    decls = previous.syntax.decls
    if not decls or any(d.span is None for d in decls):
        return None
    changed = common_prefix(old, text)
    starts = {offset for offset, _, _ in declaration_starts(text[: changed + 16])}
    kept = 0
    for decl, after in zip(decls, decls[1:]):
        end = after.span.start  # type: ignore[union-attr]
        if end >= changed or end not in starts:
            break
        kept += 1
    if kept == 0:
        return None
    resume = decls[kept].span.start  # type: ignore[union-attr]
    first = decls[kept].span
    assert first is not None
    comments = [c for c in previous.syntax.comments if (c.line, c.column) < (first.line, first.column)]
    return Plan(list(decls[:kept]), comments, resume, previous)


def seed(module: Module, kept: list[A.Decl], previous: Module, references) -> None:  # noqa: ANN001
    """Give ``module`` the checked objects and definitions of ``kept`` that nothing changed can reach.

    ``references(decl)`` lists the names a declaration mentions.
    """
    local = {d.name: d for d in kept if isinstance(d, (A.ObjectDecl, A.BundleDecl, A.MorphismDecl, A.WiringDecl, A.SharedDecl))}
    names = {name: [n for n, _ in references(d)] for name, d in local.items()}
    good = {name for name in local if name in previous.objects or name in previous.definitions}
    changed = True
    while changed:
        changed = False
        for name in list(good):
            for n in names[name]:
                g = GENERATORS.get(n)
                if n in local and n in good or g is not None and g.instance is None and n not in local:
                    continue
                good.discard(name)
                changed = True
                break
    for decl in kept:
        name = getattr(decl, "name", None)
        if name not in good:
            continue
        if name in previous.objects:
            module.objects[name] = previous.objects[name]
        else:
            module.definitions[name] = dataclasses.replace(previous.definitions[name], module=module)
