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
import re
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
    "E0316": "shared parameters depend on a size",
    "E0317": "one bundle, two trivializations",
    "E0318": "bundle does not fit its trivialization",
    "E0319": "conditioner does not fit its coupling",
    "E0320": "unknown group",
    "E0321": "group action does not fit its wire",
    "E0322": "cannot infer a representation",
    "E0323": "equivariance claim does not hold",
    # invertibility
    "E0401": "inverse of a non-isomorphism",
    # wiring form
    "E0501": "undefined wire",
    "E0502": "unused wire",
    "E0503": "wire defined twice",
    "E0504": "wrong number of wires",
    "E0505": "constant where a wire is needed",
    "E0506": "constant arithmetic has no finite value",
    "E0507": "constant divided by a wire",
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
    "E0706": "a flow or bundle trained without its likelihood",
    "E0707": "bad sampling request",
    "E0708": "bad verification request",
    "E0709": "bad analysis request",
    "E0710": "bad request for a trained model",
    # the Python API
    "E0801": "bad argument to the Python API",
    "E0802": "model input does not fit",
    # plugins (catnet.extend)
    "E0901": "plugin cannot be loaded",
    "E0902": "plugin registration refused",
    "E0903": "plugin shape rule failed",
    "E0904": "plugin parameter count wrong",
    "E0905": "plugin implementation failed",
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
        """The full diagnostic, with a caret excerpt when the source is known.

        Lines are those of :func:`source_lines`, the parser's notion of a
        line, so the excerpt is the line the position names.  Everything
        printed is safe for a terminal: control characters and escape
        sequences (from a file name, a string literal, a binary file) show
        as ``\\x1b``-style escapes, never raw, and the caret is placed under
        the escaped text.  An excerpt line is clipped around the caret to at
        most :data:`EXCERPT_WIDTH` columns.
        """
        src = source if source is not None else self.source
        sp = self.span
        where = f"{sp.file}:{sp.line}:{sp.column}: " if sp else ""
        lines = [printable(f"{where}error[{self.code}]: {self.message}")]
        if sp is not None and src is not None:
            text_lines = source_lines(src) or [""]
            if 1 <= sp.line <= len(text_lines):
                text, col, width = _excerpt(text_lines[sp.line - 1], sp)
                gutter = str(sp.line)
                pad = " " * len(gutter)
                lines.append(f"{gutter} | {text}")
                lines.append(f"{pad} | {' ' * (col - 1)}{'^' * width}")
        pad = " " * (len(str(sp.line)) if sp is not None and src is not None else 1)
        for n in self.notes:
            lines.append(printable(f"{pad} = note: {n}"))
        if self.help:
            lines.append(printable(f"{pad} = help: {self.help}"))
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.render()

    def to_json(self, file: str | None = None) -> dict:
        """The diagnostic as data, for editors and scripts (``catnet check --format json``).

        The schema (docs/errors.md, "Diagnostics as JSON") is stable: ``file``
        (the span's file, else ``file``), ``range`` (1-based ``line`` and
        ``column``, in characters, of its ``start`` and of its ``end``, which
        is exclusive; ``null`` when there is no place), ``severity``
        (``"error"``), ``code``, ``title`` (the code's
        title), ``message``, ``notes`` (a list) and ``help`` (or ``null``).
        Text is as the compiler wrote it: JSON escapes what a terminal
        would not show.
        """
        sp = self.span
        where = None
        if sp is not None:
            where = {"start": {"line": sp.line, "column": sp.column}, "end": {"line": sp.end_line, "column": sp.end_column}}
        return {"file": sp.file if sp is not None else file, "range": where, "severity": "error", "code": self.code,
                "title": CODES[self.code], "message": self.message, "notes": list(self.notes), "help": self.help}


#: An excerpt line longer than this many columns is clipped to
#: :data:`EXCERPT_CLIP` columns around the caret.
EXCERPT_WIDTH = 200
EXCERPT_CLIP = 160
#: Columns of context kept before the caret in a clipped line.
_CLIP_BEFORE = 59

#: What ends a line: ``\n``, ``\r\n`` and a lone ``\r`` -- and nothing else.
#: ``str.splitlines`` also splits at form feeds, ``\v``, ``\x1c``-``\x1e``,
#: ``\x85``, U+2028 and U+2029, which the lexer does not count, so an
#: excerpt cut with it would show another line than the one reported.
_LINE_END = re.compile(r"\r\n|\r|\n")


def source_lines(text: str) -> list[str]:
    """The lines of ``text`` as the parser counts them, without their endings.

    Lines end at ``\n``, ``\r\n`` or ``\r`` only; line ``k`` of a span is
    ``source_lines(text)[k - 1]``.  Like ``str.splitlines``, a final line
    ending does not start another (empty) line, and ``""`` has no lines.
    """
    lines = _LINE_END.split(text)
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def _escape(ch: str) -> str:
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def printable(text: str) -> str:
    """``text`` with every non-printable character but tab written as an escape.

    ESC, BEL, NUL, DEL, bidirectional overrides, line and paragraph
    separators and other invisible characters become ``\\x1b``,
    ``\\u202e``, ... so that nothing in a diagnostic can drive the terminal
    or hide text.
    """
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() or ch == "\t" else _escape(ch) for ch in text)


def _excerpt(line: str, sp: Span) -> tuple[str, int, int]:
    """The shown excerpt of ``line``, and the caret's column and width in it.

    Each character is shown as itself, a tab as one space (so that columns
    stay one per character), anything else unprintable as its escape; the
    caret's column and width are counted in shown columns.
    """
    first = min(max(sp.column, 1), len(line) + 1) - 1  # index of the caret's character
    if sp.end_line == sp.line:
        last = max(first + 1, min(sp.end_column - 1, len(line)))
    else:
        last = max(first + 1, len(line))  # a span past the line is marked to its end
    clip = len(line) > EXCERPT_WIDTH
    if clip:
        # Every character takes at least one column, so this window holds
        # the clipped excerpt; escaping a whole long line would cost memory.
        offset = max(0, first - _CLIP_BEFORE)
        line = line[offset : first + EXCERPT_CLIP]
        first, last = first - offset, last - offset
    shown = [ch if ch.isprintable() else " " if ch == "\t" else _escape(ch) for ch in line]
    start, stop = 0, len(shown)
    if clip or sum(len(s) for s in shown) > EXCERPT_WIDTH:
        start, room = first, _CLIP_BEFORE
        while start > 0 and len(shown[start - 1]) <= room:
            start -= 1
            room -= len(shown[start])
        stop, room = start, EXCERPT_CLIP
        while stop < len(shown) and len(shown[stop]) <= room:
            room -= len(shown[stop])
            stop += 1
    col = sum(len(s) for s in shown[start:first]) + 1
    width = sum(len(s) for s in shown[first : min(last, stop)])
    return "".join(shown[start:stop]), col, max(1, width)


def shown(text: str) -> str:
    """A command-line value quoted for a message, cut at 40 characters."""
    return repr(text if len(text) <= 40 else text[:40] + "...")


def whole_option(option: str, text: str, low: int, high: int, code: str) -> int:
    """A command-line option's value as a whole number in ``low..high``; a ``code`` error otherwise."""
    try:
        value = int(str(text).strip(), 10)
    except ValueError:
        raise CatnetError(code, f"{option} must be a whole number from {low} to {high}, not {shown(text)}", None) from None
    if not low <= value <= high:
        raise CatnetError(code, f"{option} must be a whole number from {low} to {high}, not {value}", None)
    return value


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
