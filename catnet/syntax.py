"""Source text to AST: parsing, the limits every parse keeps, and reading files.

``parse(text, file)`` returns an :class:`catnet.ast.Module` or raises a
:class:`CatnetError`.  The hand-written parser (:mod:`catnet.fastparse`)
reads what it can; what it declines, and every syntax error, goes to the
LALR parser on lark (:mod:`catnet.lalr`, imported only then), which is the
grammar's reference and labels errors ("unclosed bracket", "missing `=`
before the body").  ``parse_stream`` parses a long file a stretch at a time.

Limits keep every later stage safe on hostile input: brackets nest at most
:data:`MAX_DEPTH` levels and the AST at most :data:`MAX_NESTING` levels (a
``repeat 2 repeat 2 …`` or ``1 + 1 + …`` chain nests one level per term),
so that the recursive walks of ``check``, ``fmt`` and ``pretty`` stay well
inside Python's recursion limit; numbers have at most :data:`MAX_DIGITS`
characters; files are at most :data:`MAX_BYTES` bytes.  A line ends at
``\\n``, ``\\r\\n`` or ``\\r`` (:func:`source_lines`) and nowhere else.

``read_source`` reads a ``.cat`` file: only a regular file, never more than
:data:`MAX_BYTES` (+1) bytes, with located errors for what goes wrong.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from pathlib import Path
from typing import Any, Callable, Iterator

from . import ast as A
from .errors import CatnetError, source_lines
from .ir import Span

#: Brackets nested deeper than this are refused before they reach any
#: recursive stage (no real architecture needs more than a handful).
MAX_DEPTH = 128

#: The AST nests at most this many levels (each `repeat`, each term of a
#: `+` chain, each product or pairing inside another is one level).  Measured with the bound lifted,
#: the first recursive stage to fail is `fmt` on nested `⊗` products beyond
#: 319 levels (three Python frames per level), then `check` and `pretty` on
#: nested `repeat`s beyond 476; so 100 levels stay well inside Python's
#: default limit of 1,000 frames.  Real architectures nest a few levels.
MAX_NESTING = 100

#: Number literals longer than this are refused: no size or argument needs
#: them, and Python's ``int()`` refuses more than 4,300 digits (or as few as
#: 640, the least that ``PYTHONINTMAXSTRDIGITS`` may set).
MAX_DIGITS = 640

#: Files larger than this are refused (no architecture is 64 MB of text).
MAX_BYTES = 64 * 1024 * 1024

#: Tokens quoted in a syntax error message are cut to this many characters.
_QUOTE = 40

#: Products and pairings have at most this many parts (wires), written or
#: built: a wire can carry a whole axis, and a transformer has a handful.
MAX_WIRES = 16_384

def _quote(text: str) -> str:
    """``text`` cut to a length fit for quoting in a message."""
    return text if len(text) <= _QUOTE else text[: _QUOTE - 1] + "…"


def _unquote(tok: Any) -> str:
    text = str(tok)[1:-1]
    return text.replace('\\"', '"').replace("\\\\", "\\")


def parse(text: str, file: str = "<string>") -> A.Module:
    """Parse ``.cat`` source into an AST, or raise a located ``CatnetError``.

    ``\\r\\n`` and a lone ``\\r`` end lines as ``\\n`` does: they are read as
    ``\\n``, so every span's line and column are right for the text as
    given (offsets count the text with ``\\n`` line ends).
    """
    if len(text) > STREAM_BYTES:
        # A long file is parsed a stretch at a time: the same tree, but an
        # error near its start is found without parsing all of it.
        parts = list(parse_stream(text, file))
        return A.Module(tuple(d for p in parts for d in p.decls), tuple(c for p in parts for c in p.comments))
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    from . import fastparse  # the fast path; lark parses what it declines, and reports every error

    try:
        return fastparse.parse(text, file)
    except fastparse.Bail:
        pass
    from . import lalr  # lark, only for what the fast parser declines

    return lalr.parse(text, file)  # type: ignore[return-value]


#: Where a declaration may start: a keyword outside comments and strings.
_DECLARATION = re.compile(r'#[^\n]*|"(?:[^"\\\n]|\\.)*"|\b(import|object|bundle|shared|main|morphism)\b(?:\s+([A-Za-z_][A-Za-z0-9_]*))?')


def declaration_starts(text: str) -> list[tuple[int, str, str | None]]:
    """Where each top-level declaration starts: (offset, keyword, the name after it).

    A cheap scan, not a parse: a declaration keyword outside comments and
    strings starts a declaration (keywords cannot appear inside one).
    """
    return [(m.start(1), m.group(1), m.group(2)) for m in _DECLARATION.finditer(text) if m.group(1)]


#: :func:`parse_stream` parses stretches of at least this many characters.
STREAM_CHUNK = 8 * 1024

#: Texts longer than this are parsed (and checked) a stretch at a time.
STREAM_BYTES = 256 * 1024


def parse_stream(text: str, file: str = "<string>", starts: list[int] | None = None, begin: int = 0) -> "Iterator[A.Module]":
    """Parse ``.cat`` source a few declarations at a time, lazily.

    Yields one :class:`catnet.ast.Module` per stretch of text between
    declaration starts (at least :data:`STREAM_CHUNK` characters, cut where
    a declaration starts, with the comments in it),
    with spans in the whole text, so that a checker can report the first
    error of a very long file without parsing all of it.  A stretch that
    does not parse on its own is parsed again together with the rest of
    the file: the error is then exactly the one :func:`parse` reports, and
    if the rest parses after all (a keyword used as a name split a
    declaration), its declarations come as the last module.  ``begin``, a
    declaration start, skips the text before it (a check after an edit
    keeps what it parsed there before).
    """
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    offsets = [o for o, _, _ in declaration_starts(text)] if starts is None else starts
    # Cut at declaration starts, but parse at least STREAM_CHUNK characters
    # at a time: one parse per declaration would cost lark's set-up each time.
    bounds = [begin]
    for o in offsets:
        if o > begin and o - bounds[-1] >= STREAM_CHUNK:
            bounds.append(o)
    bounds.append(len(text))
    from . import fastparse  # the fast path; lark parses what it declines, and reports every error

    line, line_start, counted = 1, 0, 0
    for lo, hi in zip(bounds, bounds[1:]):
        line += text.count("\n", counted, lo)
        if line > 1 or counted:
            nl = text.rfind("\n", 0, lo)
            line_start = nl + 1
        counted = lo
        for end in (hi, len(text)):
            try:
                fast: A.Module | None = fastparse.parse(text, file, lo, end, line, line_start)
            except fastparse.Bail:
                fast = None
            if fast is not None:
                yield fast
                if end == len(text) and hi != len(text):
                    return  # the rest was parsed as a whole
                break
            from . import lalr  # lark, only for what the fast parser declines

            found = lalr.parse(text, file, lo, end, line, line_start, partial=end != len(text))
            if found is None:
                continue  # parse on to the end: the same error `parse` gives
            yield found
            if end == len(text) and hi != len(text):
                return  # the rest was parsed as a whole
            break


#: What ``os.stat`` says a path is, for the message about it.
_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def read_source(path: str | Path, shown: str | None = None, at: Span | None = None) -> str:
    """Read a ``.cat`` file as UTF-8, with located errors for what goes wrong.

    Only a regular file is read (decided by ``os.stat`` before opening, and
    again on the open file, which is opened non-blocking so that a FIFO
    never blocks), and at most :data:`MAX_BYTES` bytes of it, even where
    ``stat`` gives no size (``/proc`` files).  Errors are E0001 (E0002 for
    bad UTF-8) named ``shown`` (default: ``path``) and located at ``at``
    (an ``import``), or at the file itself.
    """
    name = shown or str(path)
    where = at or Span(name, 1, 1, 1, 1)

    def fail(why: str, help: str | None = None) -> CatnetError:
        return CatnetError("E0001", why, where, help=help)

    try:
        info = os.stat(path)
        _require_regular(info, name, fail)
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
        try:
            _require_regular(os.fstat(fd), name, fail)  # it may have changed since the stat
            chunks: list[bytes] = []
            size = 0
            while size <= MAX_BYTES:
                chunk = os.read(fd, min(MAX_BYTES + 1 - size, 1 << 20))
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
        finally:
            os.close(fd)
    except OSError as e:
        raise os_error(e, name, fail) from None
    except ValueError:  # a NUL in the path
        raise fail(f"`{name}` is not a valid file name") from None
    if size > MAX_BYTES:
        raise fail(f"`{name}` is larger than {_megabytes()}")
    return decode(b"".join(chunks), name)


def _require_regular(info: os.stat_result, name: str, fail: Callable[..., CatnetError]) -> None:
    """Raise ``fail(...)`` unless ``info`` is a regular file of at most :data:`MAX_BYTES`."""
    if info.st_size > MAX_BYTES:
        raise fail(f"`{name}` is larger than {_megabytes()}")
    if stat.S_ISREG(info.st_mode):
        return
    kind = next((k for test, k in _KINDS if test(info.st_mode)), "not a regular file")
    raise fail(f"`{name}` is {kind}, not a .cat file", help="catnet reads only regular files")


def _megabytes() -> str:
    """The size limit in words."""
    return f"{MAX_BYTES >> 20} MB" if MAX_BYTES >= 1 << 20 else f"{MAX_BYTES:,} bytes"


def os_error(e: OSError, name: str, fail: Callable[[str], CatnetError]) -> CatnetError:
    """A human message for an operating-system error on the file ``name``.

    ``fail(message)`` makes the error (with its code and location).
    """
    if e.errno in (errno.ENOENT, errno.ENOTDIR):
        return fail(f"no such file: `{name}`")
    if e.errno == errno.ELOOP:
        return fail(f"cannot read `{name}`: its symbolic links form a loop")
    if e.errno == errno.ENAMETOOLONG:
        return fail(f"cannot read `{name}`: the path is longer than the system allows")
    if e.errno in (errno.EACCES, errno.EPERM):
        return fail(f"cannot read `{name}`: permission denied")
    return fail(f"cannot read `{name}`: {e.strerror or e}")


def decode(data: bytes, name: str) -> str:
    """``.cat`` bytes as text: UTF-8, without a byte-order mark, with located errors.

    Invalid UTF-8 is E0002 at the first bad byte; a NUL is E0104.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        before = data[: e.start]
        # Only the line with the bad byte is shown (and is clipped).
        start = max(before.rfind(b"\n"), before.rfind(b"\r")) + 1
        line = before.count(b"\n") + before.count(b"\r") - before.count(b"\r\n") + 1
        col = len(before[start:].decode("utf-8")) + 1
        end = len(data)
        for stop in (data.find(b"\n", e.start), data.find(b"\r", e.start)):
            if stop >= 0:
                end = min(end, stop)
        raise CatnetError(
            "E0002",
            f"byte 0x{data[e.start]:02x} at offset {e.start} is not valid UTF-8",
            Span(name, line, col, line, col + 1),
            help="save the file as UTF-8",
            source="\n" * (line - 1) + data[start:end].decode("utf-8", errors="replace"),
        ) from None
    return clean(text, name)


def clean(text: str, name: str) -> str:
    """Source text as the parser takes it: a leading byte-order mark dropped, a NUL refused (E0104)."""
    if text.startswith("\ufeff"):
        text = text[1:]
    i = text.find("\x00")
    if i >= 0:
        line, col = _position(text[:i])
        raise CatnetError("E0104", "unexpected character `\\x00` (NUL)", Span(name, line, col, line, col + 1), source=text)
    return text


def _position(before: str) -> tuple[int, int]:
    """Line and column just after ``before``, lines ending as :func:`source_lines` says."""
    line = before.count("\n") + before.count("\r") - before.count("\r\n") + 1
    return line, len(before) - max(before.rfind("\n"), before.rfind("\r"))


__all__ = ["parse", "read_source", "decode", "clean", "source_lines", "os_error", "MAX_DEPTH", "MAX_NESTING", "MAX_DIGITS", "MAX_BYTES"]
