"""``catnet fmt``: canonical text for a ``.cat`` file, comments kept.

The canonical form uses the Unicode ``⊗`` and ASCII ``->``, one space
around operators, the fewest parentheses that keep the meaning, aligned
``=`` and ``:`` within a run of one-line declarations, the blank-line
grouping of the source (any run of blank lines becomes one), and ``\\n``
line ends.  On every input that parses, formatting is idempotent
(``fmt(fmt(x)) == fmt(x)``), and the formatted text parses to the same AST
and gets the same verdict from ``catnet check``.  Lines are counted as the
parser counts them (:func:`catnet.syntax.source_lines`: ``\\n``, ``\\r\\n``
or ``\\r``), so a form feed in a comment moves nothing.  Printing uses an
explicit stack, never recursion, so no input is too deep to print.

Comments are kept: a comment on its own line stays before the declaration
(or wiring statement) that follows it, and a comment at the end of a line
stays at the end of that declaration's (or statement's) last line; a
comment inside a declaration's other lines moves before it.

``catnet fmt --write`` rewrites a file atomically and keeps the file itself
(a symbolic link stays a link, the mode stays); see :func:`write_in_place`.
"""

from __future__ import annotations

import argparse
import errno
import os
import stat
import sys
import tempfile
from typing import Callable

from . import ast as A
from .errors import CatnetError
from .ir import Span
from .pieces import Gap, Piece, joined, render
from .syntax import clean, parse, read_source, source_lines

WIDTH = 100

# -- the printer ----------------------------------------------------------------------
# Every AST form is printed by one loop over an explicit stack of pieces: a
# piece is a string (emitted as is), a node to expand (a tuple naming how to
# print it), or ``_GAP`` (see :mod:`catnet.pieces`).  Expanding a node never recurses, so a 1,000-term
# size sum, a 1,000-deep `repeat` chain or anything else the parser (or a
# program building the AST directly) produces prints without exhausting
# Python's recursion limit; the stack grows with the nesting instead.

_PREC = {"+": 1, "-": 1, "*": 2}

#: A piece that prints as one space when the text so far ends in `>`: a
#: pairing that ends with a nested pairing closes with `> >`, since `>>`
#: is composition.
_GAP = Gap(lambda out: " " if out and out[-1].endswith(">") else "")


def _render(root: Piece) -> str:
    return render(root, _EXPAND)


def _wrap(pieces: list[Piece], parens: bool) -> list[Piece]:
    return ["(", *pieces, ")"] if parens else pieces


def _num(v: int | float) -> str:
    return repr(v) if isinstance(v, float) else str(v)


def lit(v: int | float | str | bool) -> str:
    """A literal as source text (strings quoted, with `\\` and `"` escaped)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return _num(v)


# Each expander takes a node (and its context) and returns its pieces.


def _dim(d: A.DimExpr, parent: int = 0, right: bool = False) -> list[Piece]:
    if isinstance(d, A.DNum):
        return [_num(d.value)]
    if isinstance(d, A.DSym):
        return [d.name]
    p = _PREC[d.op]
    return _wrap([("dim", d.left, p), f" {d.op} ", ("dim", d.right, p, True)], p < parent or (right and p == parent))


def _dims(ds: tuple[A.DimExpr, ...] | None) -> list[Piece]:
    """``[d1, d2]``, or nothing for ``None``."""
    return [] if ds is None else ["[", *joined((("dim", d) for d in ds), ", "), "]"]


def _typ(t: A.TypeExpr, nested: bool = False) -> list[Piece]:
    if isinstance(t, A.TUnit):
        return ["I"]
    if isinstance(t, A.TSpace):
        return [t.base, *_dims(t.shape)]
    if isinstance(t, A.TRef):
        return [t.name]
    if isinstance(t, A.TSeq):
        return ["Seq[", ("dim", t.length), "](", ("typ", t.item), ")"]
    return _wrap(joined((("typ", f, True) for f in t.factors), " ⊗ "), nested)


def _value(v: A.Value, parent: int = 0, right: bool = False) -> list[Piece]:
    if isinstance(v, A.Lit):
        return [lit(v.value)]
    if isinstance(v, A.VBin):
        p = _PREC[v.op]
        return _wrap([("value", v.left, p), f" {v.op} ", ("value", v.right, p, True)], p < parent or (right and p == parent))
    # A composite expression next to arithmetic needs its own parentheses.
    return _wrap([("expr", v)], bool(parent) and not isinstance(v, A.Ref))


def _arg(a: A.Arg) -> list[Piece]:
    return [f"{a.name}=", ("value", a.value)] if a.name else [("value", a.value)]


def _args(items: tuple[A.Arg, ...] | None) -> list[Piece]:
    return [] if items is None else ["(", *joined((("arg", a) for a in items), ", "), ")"]


#: Words that are literals where a value may stand, and names only in
#: parentheses: `(true)` is a reference, `true` the boolean.
_LITERAL_WORDS = frozenset({"true", "false"})


# Expressions.  Precedence: `;` (0) binds loosest, then `⊗` (1), then
# `repeat` (2), atoms (3).


def _expr(e: A.Expr, parent: int = 0) -> list[Piece]:
    if isinstance(e, A.Ref):
        if e.name in _LITERAL_WORDS and e.dims is None and e.args is None:
            return ["(", e.name, ")"]  # bare, it would read as the literal
        return [e.name, *_dims(e.dims), *_args(e.args)]
    if isinstance(e, A.Then):
        # A product inside a composition keeps its parentheses: clearer to read.
        return _wrap(joined((("expr", x, 2) for x in e.parts), " ; "), 0 < parent)
    if isinstance(e, A.Product):
        return _wrap(joined((("expr", x, 2) for x in e.parts), " ⊗ "), 1 < parent)
    if isinstance(e, A.Repeat):
        return [f"repeat {_num(e.count)} ", ("expr", e.expr, 2)]
    if isinstance(e, A.Ascribe):
        return ["(", ("expr", e.expr), " : ", ("typ", e.dom), " -> ", ("typ", e.cod), ")"]
    if isinstance(e, A.Pair):
        return ["<", *joined((("expr", x) for x in e.parts), ", "), _GAP, ">"]
    if isinstance(e, A.Inv):
        return ["inv(", ("expr", e.expr), ")"]
    if isinstance(e, A.Scan):
        return ["scan[", ("typ", e.state), "](", ("expr", e.expr), ")"]
    raise AssertionError(e)  # pragma: no cover


#: Wire arithmetic: `+` `-` (1) bind loosest, then `*` `/` (2), then unary
#: `-` (3); wires, numbers and calls are atoms.
_WPREC = {"+": 1, "-": 1, "*": 2, "/": 2}
_NEG = 3


def _wexpr(w: A.WExpr, parent: int = 0, right: bool = False) -> list[Piece]:
    """A wire expression inside an operator of precedence ``parent`` (0: none).

    Operators associate to the left, so a right operand of equal precedence
    keeps its parentheses (``a - (b - c)``).  A negative number or a
    negation right after unary `-` is parenthesised, ``-(-x)``: `--x` would
    read as a decrement.
    """
    if isinstance(w, A.Wire):
        return ["(", w.name, ")"] if w.name in _LITERAL_WORDS else [w.name]
    if isinstance(w, A.WNum):
        return _wrap([_num(w.value)], parent == _NEG and _num(w.value).startswith("-"))
    if isinstance(w, A.WBin):
        p = _WPREC[w.op]
        parens = p < parent or (right and p == parent)
        return _wrap([("wexpr", w.left, p), f" {w.op} ", ("wexpr", w.right, p, True)], parens)
    if isinstance(w, A.WNeg):
        return ["-", ("wexpr", w.operand, _NEG)] if parent != _NEG else ["(-", ("wexpr", w.operand, _NEG), ")"]
    parts: list[Piece] = []
    for a in w.args:
        if isinstance(a, A.Lit):
            parts.append(lit(a.value))
        elif isinstance(a, A.Arg):
            parts.append(("arg", a))
        else:
            parts.append(("wexpr", a))
    return [w.name, *_dims(w.dims), "(", *joined(parts, ", "), ")"]


_EXPAND: dict[str, Callable[..., list[Piece]]] = {
    "dim": _dim, "typ": _typ, "value": _value, "arg": _arg, "args": _args, "expr": _expr, "wexpr": _wexpr,
}


def dim(d: A.DimExpr, parent: int = 0, right: bool = False) -> str:
    """A size expression with the fewest parentheses (``parent``: the enclosing operator's precedence)."""
    return _render(("dim", d, parent, right))


def typ(t: A.TypeExpr, nested: bool = False) -> str:
    """An object expression; a product is parenthesised when ``nested`` in another."""
    return _render(("typ", t, nested))


def value(v: A.Value, parent: int = 0, right: bool = False) -> str:
    """An argument value (literal, arithmetic, or expression)."""
    return _render(("value", v, parent, right))


def args(items: tuple[A.Arg, ...] | None) -> str:
    """Call arguments ``(a, k=v)``, or nothing for ``None``."""
    return _render(("args", items))


def expr(e: A.Expr, parent: int = 0) -> str:
    """A point-free expression, parenthesised as the ``parent`` precedence needs."""
    return _render(("expr", e, parent))


def wexpr(w: A.WExpr, parent: int = 0) -> str:
    """A wiring-form expression (a wire, a number, a call, wire arithmetic)."""
    return _render(("wexpr", w, parent))


# -- declarations --------------------------------------------------------------------


def _params(ps: tuple[A.Param, ...]) -> str:
    out = []
    for p in ps:
        out.append(f"{p.name} : {typ(p.dom)}" + (f" -> {typ(p.cod)}" if p.cod is not None else ""))
    return "(" + ", ".join(out) + ")"


def _head(decl: A.MorphismDecl | A.WiringDecl) -> str:
    dims_ = f"[{', '.join(decl.dim_params)}]" if decl.dim_params else ""
    return f"{decl.name}{dims_}{_params(decl.params) if decl.params or isinstance(decl, A.WiringDecl) else ''}"


def _split_then(body: A.Expr) -> list[str]:
    if isinstance(body, A.Then):
        return [expr(x, 2) for x in body.parts]
    return [expr(body)]


def declaration(decl: A.Decl, pad: int = 0) -> list[str]:
    """The lines of one declaration (``pad`` aligns names in a group)."""
    if isinstance(decl, A.Import):
        return [f"import {lit(decl.path)}"]
    if isinstance(decl, A.MainDecl):
        return [f"main {decl.name}"]
    if isinstance(decl, A.ObjectDecl):
        group = f" under {decl.group}" if decl.group else ""
        rep = f" as {decl.rep}" if decl.rep else ""
        return [f"object {decl.name:<{pad}} = {typ(decl.type)}{group}{rep}"]
    if isinstance(decl, A.BundleDecl):
        total = f" in {typ(decl.total)}" if decl.total is not None else ""
        return [f"bundle {decl.name:<{pad}} = {typ(decl.fiber)} over {typ(decl.base)}{total}"]
    if isinstance(decl, A.SharedDecl):
        head = decl.name + (f"[{', '.join(decl.dim_params)}]" if decl.dim_params else "")
        return [f"shared {head:<{pad}} = {expr(decl.expr)}"]
    if isinstance(decl, A.MorphismDecl):
        head = f"morphism {_head(decl):<{pad}} : {typ(decl.dom)} -> {typ(decl.cod)}{_claim(decl)} ="
        body = expr(decl.body)
        if len(head) + 1 + len(body) <= WIDTH:
            return [f"{head} {body}"]
        if 2 + len(body) <= WIDTH:
            return [head, f"  {body}"]
        parts = _split_then(decl.body)
        return [head, f"  {parts[0]}"] + [f"  ; {p}" for p in parts[1:]]
    assert isinstance(decl, A.WiringDecl)
    return [f"morphism {_head(decl)} -> {typ(decl.cod)}{_claim(decl)} {{"] + ["  " + s for s in map(statement, decl.body)] + ["}"]


def _claim(decl: A.MorphismDecl | A.WiringDecl) -> str:
    """`` equivariant under C4`` after a signature, or nothing."""
    return f" {decl.claim.kind} under {decl.claim.group}" if decl.claim is not None else ""


def statement(s: A.Stmt) -> str:
    """One wiring-form statement, on one line."""
    if isinstance(s, A.Assign):
        return f"{', '.join(s.names)} = {wexpr(s.value)}"
    return "return " + ", ".join(wexpr(v) for v in s.values)


def _name_key(decl: A.Decl) -> str | None:
    """The column-aligned part of a one-line declaration, by kind."""
    if isinstance(decl, (A.ObjectDecl, A.BundleDecl)):
        return "object"
    if isinstance(decl, A.SharedDecl):
        return "shared"
    if isinstance(decl, A.MorphismDecl):
        return "morphism"
    return None


def _aligned_name(decl: A.Decl) -> str:
    if isinstance(decl, A.MorphismDecl):
        return _head(decl)
    if isinstance(decl, A.SharedDecl) and decl.dim_params:
        return f"{decl.name}[{', '.join(decl.dim_params)}]"
    return decl.name  # type: ignore[union-attr]


def format_module(tree: A.Module, source: str) -> str:
    """Canonical text of a parsed module; ``source`` gives the blank-line grouping.

    The text is written in two passes.  The first lays out what goes
    between declarations (blank lines and comments) and leaves a slot for
    each point-free declaration; the second fills the slots, aligning a
    run of one-line declarations of one kind that nothing separates in the
    *output*.  Deciding alignment from the output rather than the source
    layout is what makes formatting idempotent: two declarations on one
    source line, or one whose inner comments move above it, are grouped
    the same way the second time round.
    """
    # Lines as the parser counts them (`\n`, `\r\n`, `\r`; a form feed is
    # not a line break), so that spans index the right line.
    lines_of_source = source_lines(source)
    comments = sorted(tree.comments, key=lambda c: (c.line, c.column))
    ci = 0
    out: list[str | None] = []  # None: the slot of a point-free declaration
    decls = list(tree.decls)
    slots: list[int] = [-1] * len(decls)
    trailing: list[str | None] = [None] * len(decls)

    def blank_between(prev_end: int, next_start: int) -> bool:
        return any(not lines_of_source[i].strip() for i in range(prev_end, next_start - 1) if i < len(lines_of_source))

    prev_end = 0
    for idx, decl in enumerate(decls):
        sp = decl.span
        assert sp is not None
        # Comments before this declaration (including any inside a previous
        # multi-line expression that were not placed) come first.
        leading: list[tuple[int, str]] = []
        while ci < len(comments) and comments[ci].line < sp.line:
            leading.append((comments[ci].line, comments[ci].text))
            ci += 1
        start_line = leading[0][0] if leading else sp.line
        if out and blank_between(prev_end, start_line):
            out.append("")
        last = prev_end
        for line, text in leading:
            if out and last and line > last + 1 and blank_between(last, line) and out[-1] != "":
                out.append("")
            out.append(text)
            last = line
        if leading and blank_between(last, sp.line):
            out.append("")
        if isinstance(decl, A.WiringDecl):
            body_lines, ci = _wiring(decl, comments, ci)
            out.extend(body_lines)
        else:
            # A comment at the end of the declaration's last line stays
            # there; any other comment inside it goes before it.
            while ci < len(comments) and comments[ci].line <= sp.end_line:
                c = comments[ci]
                if c.line == sp.end_line and c.column > 1 and _after_code(lines_of_source, c):
                    trailing[idx] = c.text
                else:
                    out.append(c.text)
                ci += 1
            slots[idx] = len(out)
            out.append(None)
        prev_end = sp.end_line
    if ci < len(comments):
        rest = comments[ci:]
        if out and blank_between(prev_end, rest[0].line):
            out.append("")
        last = rest[0].line
        for c in rest:
            if c.line > last + 1 and blank_between(last, c.line) and out and out[-1] != "":
                out.append("")
            out.append(c.text)
            last = c.line

    pads = _pads(decls, slots)
    lines: list[str] = []
    slot_of = {slot: idx for idx, slot in enumerate(slots) if slot >= 0}
    for k, line in enumerate(out):
        if line is not None:
            lines.append(line)
            continue
        idx = slot_of[k]
        own = declaration(decls[idx], pads[idx])
        if trailing[idx] is not None:
            own[-1] = f"{own[-1]}{_TRAIL}{trailing[idx]}"
        lines.extend(own)
    return "\n".join(_align_trailing(lines)) + "\n" if lines else ""


def _pads(decls: list[A.Decl], slots: list[int]) -> list[int]:
    """The name column width of each declaration (0: not aligned).

    A group is a run of declarations of one kind in adjacent output slots
    (nothing written between them), aligned only if each then fits on one
    line.
    """
    pads = [0] * len(decls)
    i = 0
    while i < len(decls):
        key = _name_key(decls[i])
        j = i
        while (
            key is not None
            and j + 1 < len(decls)
            and _name_key(decls[j + 1]) == key
            and slots[j] >= 0
            and slots[j + 1] == slots[j] + 1
        ):
            j += 1
        if key is not None:
            width = max(len(_aligned_name(d)) for d in decls[i : j + 1])
            if all(len(declaration(d, width)) == 1 for d in decls[i : j + 1]):
                for k in range(i, j + 1):
                    pads[k] = width
        i = j + 1
    return pads


#: Marks where a line's code ends and its trailing comment starts, until
#: the trailing comments of consecutive lines are aligned.
_TRAIL = "\x00"


def _align_trailing(lines: list[str]) -> list[str]:
    """Lines with each run of trailing comments (marked by ``_TRAIL``) in one column."""
    out = list(lines)
    i = 0
    while i < len(out):
        if _TRAIL not in out[i]:
            i += 1
            continue
        j = i
        while j + 1 < len(out) and _TRAIL in out[j + 1]:
            j += 1
        width = max(len(out[k].split(_TRAIL)[0]) for k in range(i, j + 1))
        for k in range(i, j + 1):
            code, comment = out[k].split(_TRAIL, 1)
            out[k] = f"{code:<{width}}  {comment}"
        i = j + 1
    return out


def _after_code(lines: list[str], c: A.Comment) -> bool:
    """Whether comment ``c`` follows code on its line (``lines``: the source's)."""
    return bool(lines[c.line - 1][: c.column - 1].strip())


def _wiring(decl: A.WiringDecl, comments: list[A.Comment], ci: int) -> tuple[list[str], int]:
    """The lines of a wiring-form declaration with its comments from ``comments[ci:]``.

    Returns the lines and the index of the first comment not placed.
    """
    sp = decl.span
    assert sp is not None
    head = f"morphism {_head(decl)} -> {typ(decl.cod)}{_claim(decl)} {{"
    out: list[str] = []
    header_end = decl.body[0].span.line if decl.body and decl.body[0].span else sp.end_line
    pending_head: list[str] = []
    while ci < len(comments) and comments[ci].line < header_end and comments[ci].line == sp.line:
        pending_head.append(comments[ci].text)
        ci += 1
    out.append(head + ("  " + " ".join(pending_head) if pending_head else ""))
    for s in decl.body:
        ssp = s.span
        assert ssp is not None
        while ci < len(comments) and comments[ci].line < ssp.line:
            out.append("  " + comments[ci].text)
            ci += 1
        line = "  " + statement(s)
        # As for a declaration: the comment on the statement's last line
        # stays at its end, comments on its other lines go before it.
        while ci < len(comments) and comments[ci].line <= ssp.end_line:
            if comments[ci].line == ssp.end_line:
                line = f"{line}{_TRAIL}{comments[ci].text}"
            else:
                out.append("  " + comments[ci].text)
            ci += 1
        out.append(line)
    while ci < len(comments) and comments[ci].line <= sp.end_line:
        c = comments[ci]
        if c.line == sp.end_line:
            out.append("}  " + c.text)
            ci += 1
            return out, ci
        out.append("  " + c.text)
        ci += 1
    out.append("}")
    return out, ci


def format_text(text: str, file: str = "<string>") -> str:
    """Canonical text for ``.cat`` source (raises ``CatnetError`` on bad syntax).

    The text is taken as a file is read: a leading byte-order mark is
    dropped and a NUL is refused.  Lines end at ``\\n``, ``\\r\\n`` or ``\\r``;
    the canonical text ends every line with ``\\n``.
    """
    text = clean(text, file)
    return format_module(parse(text, file), text)


# -- command line ----------------------------------------------------------------------


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE", help=".cat files to format")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("-w", "--write", action="store_true", help="rewrite the files in place (atomically)")
    mode.add_argument("--check", action="store_true", help="exit 1 if any file is not in canonical form")


def run(args: argparse.Namespace) -> int:
    """Format each file: print it, check it (``--check``) or rewrite it (``--write``).

    Every file is tried; a file that cannot be read, parsed or written is
    a diagnostic on standard error and makes the exit status 1.
    """
    status = 0
    for path in args.files:
        try:
            text = read_source(path)
            out = format_text(text, path)
            if args.write and out != text:
                write_in_place(path, out)
        except CatnetError as e:
            print(e.render(), file=sys.stderr)
            status = 1
            continue
        if args.check:
            if out != text:
                print(f"{path}: not formatted", file=sys.stderr)
                status = 1
        elif args.write:
            if out != text:
                print(f"formatted {path}")
        else:
            sys.stdout.write(out)
    return status


def write_in_place(path: str, text: str) -> None:
    """Replace the contents of the file ``path`` with ``text`` (UTF-8), atomically.

    The file itself keeps what it is: through a symbolic link the link's
    target is rewritten and the link stays a link; the file's permission
    bits (and, where allowed, its owner and group) are kept.  The new text
    goes to a temporary file in the target's own directory, is flushed to
    disk and then renamed over the target (``os.replace``), so a reader sees
    the old file or the new one, never a part.  A file without any write
    permission bit is not rewritten: the rename would otherwise replace a
    file that its owner made read-only.  Anything that goes wrong is an
    E0001 error naming ``path``; the temporary file is removed and the
    original is left as it was.
    """
    where = Span(path, 1, 1, 1, 1)
    target = os.path.realpath(path)
    try:
        info = os.stat(target)
        if not info.st_mode & 0o222 or not os.access(target, os.W_OK):
            raise CatnetError("E0001", f"cannot write `{path}`: the file is read-only", where,
                              help="make it writable (`chmod u+w`) to format it in place, or format without --write")
        fd, tmp = tempfile.mkstemp(prefix=".fmt-", suffix=".tmp", dir=os.path.dirname(target))
    except CatnetError:
        raise
    except OSError as e:
        raise _write_error(e, path, where) from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(text.encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, stat.S_IMODE(info.st_mode))
        if (info.st_uid, info.st_gid) != (os.geteuid(), os.getegid()):
            try:
                os.chown(tmp, info.st_uid, info.st_gid)
            except OSError:
                pass  # only a privileged user may give a file away; the contents still get written
        os.replace(tmp, target)
    except OSError as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass  # already renamed or never made: nothing to clean up
        raise _write_error(e, path, where) from None


def _write_error(e: OSError, path: str, where: Span) -> CatnetError:
    """A human E0001 message for a failed write of ``path``."""
    if e.errno in (errno.EACCES, errno.EPERM):
        why = "permission denied"
    elif e.errno == errno.EROFS:
        why = "the file system is read-only"
    elif e.errno == errno.ENOSPC:
        why = "no space left on the device"
    else:
        why = e.strerror or str(e)
    return CatnetError("E0001", f"cannot write `{path}`: {why}", where,
                       help="the file is unchanged; print the formatted text with `catnet fmt FILE` instead")
