"""The one user-facing error type, and the table of error codes.

Every malformed input ends in a :class:`CatnetError` carrying a code from
:data:`CODES`, a span and optional notes and help.  ``render()`` formats it
the way a compiler does::

    examples/bad.cat:7:34: error[E0301]: cannot compose `encoder` with `head`
      7 | morphism net : Image -> Logits = encoder ; head
        |                                  ^^^^^^^^^^^^^^
        = note: encoder ends in Hidden = R[128], head starts in R[256]
        = help: did you mean `head2`, which starts in R[128]?
"""

from __future__ import annotations

import difflib
from typing import Iterable, Sequence

from .ir import Span

#: Every error code with a one-line title.  docs/errors.md shows an example
#: of each; a test keeps the two in step.
CODES: dict[str, str] = {
    # files
    "E0001": "cannot read file",
    "E0002": "file is not valid UTF-8",
    "E0003": "file defines nothing",
    "E0004": "file outside the import root",
    # syntax
    "E0101": "unexpected token",
    "E0102": "unclosed bracket",
    "E0103": "unexpected end of file",
    "E0104": "unexpected character",
    "E0105": "unterminated string",
    "E0106": "nesting too deep",
    "E0107": "missing type signature",
    "E0108": "missing `=` before the body",
    "E0109": "unbalanced closing bracket",
    # names and definitions
    "E0201": "unknown name",
    "E0202": "duplicate definition",
    "E0203": "import not found",
    "E0204": "import cycle",
    "E0205": "unknown object",
    "E0206": "wrong number of arguments",
    "E0207": "unknown keyword argument",
    "E0208": "bad argument value",
    "E0209": "not a morphism",
    "E0210": "entry morphism not found",
    "E0211": "recursive definition",
    # types
    "E0301": "cannot compose",
    "E0302": "product does not fit",
    "E0303": "type mismatch with declaration",
    "E0304": "unsolvable dimension",
    "E0305": "dimension mismatch",
    "E0306": "generator cannot take this shape",
    "E0307": "absurd size",
    "E0308": "bad object",
    "E0309": "size expression too large",
    "E0310": "diagram too large",
    # invertibility
    "E0401": "inverse of a non-isomorphism",
    # wiring form
    "E0501": "undefined wire",
    "E0502": "unused wire",
    "E0503": "wire defined twice",
    "E0504": "wrong number of wires",
    # not yet
    "E0601": "not supported yet",
    "E0602": "external tool missing or failed",
    "E0603": "model does not fit in memory",
    # training
    "E0701": "data does not fit the entry morphism",
    "E0702": "cannot train this morphism",
    "E0703": "bad training option or run directory",
    "E0704": "training loss is not finite",
    "E0705": "checkpoint is corrupt or does not match the run",
    # the Python API
    "E0801": "bad argument to the Python API",
    "E0802": "model input does not fit",
}


class CatnetError(Exception):
    """A located, human-readable error with a code from :data:`CODES`."""

    def __init__(
        self,
        code: str,
        message: str,
        span: Span | None = None,
        *,
        notes: Sequence[str] = (),
        help: str | None = None,
        source: str | None = None,
    ) -> None:
        assert code in CODES, code
        super().__init__(message)
        self.code = code
        self.message = message
        self.span = span
        self.notes = tuple(notes)
        self.help = help
        self.source = source

    def render(self, source: str | None = None) -> str:
        """The full diagnostic, with a caret excerpt when the source is known."""
        src = source if source is not None else self.source
        sp = self.span
        where = f"{sp.file}:{sp.line}:{sp.column}: " if sp else ""
        lines = [f"{where}error[{self.code}]: {self.message}"]
        if sp is not None and src is not None:
            text_lines = src.splitlines() or [""]
            if 1 <= sp.line <= len(text_lines):
                text = text_lines[sp.line - 1].expandtabs(1)
                if len(text) > 200:
                    start = max(0, sp.column - 60)
                    text = text[start : start + 160]
                    col = sp.column - start
                else:
                    col = sp.column
                width = (sp.end_column - sp.column) if sp.end_line == sp.line else len(text) - col + 1
                width = max(1, min(width, max(1, len(text) - col + 1)))
                gutter = str(sp.line)
                pad = " " * len(gutter)
                lines.append(f"{gutter:>{len(gutter)}} | {text}")
                lines.append(f"{pad} | {' ' * (col - 1)}{'^' * width}")
        pad = " " * (len(str(sp.line)) if sp is not None and src is not None else 1)
        for n in self.notes:
            lines.append(f"{pad} = note: {n}")
        if self.help:
            lines.append(f"{pad} = help: {self.help}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.render()


def suggest(name: str, candidates: Iterable[str]) -> str | None:
    """The closest candidate to a misspelt name, if one is close enough."""
    pool = sorted(set(candidates))
    found = difflib.get_close_matches(name, pool, n=1, cutoff=0.6)
    if not found:
        lowered = {c.lower(): c for c in pool}
        if name.lower() in lowered:
            return lowered[name.lower()]
        return None
    return found[0]
