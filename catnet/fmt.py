"""``catnet fmt``: canonical text for a ``.cat`` file, comments kept.

The canonical form uses the Unicode ``⊗`` and ASCII ``->``, one space
around operators, the fewest parentheses that keep the meaning, aligned
``=`` and ``:`` within a run of one-line declarations, and the blank-line
grouping of the source (any run of blank lines becomes one).  Formatting is
idempotent, and the formatted file parses to the same AST.

Comments are kept: a comment on its own line stays before the declaration
(or wiring statement) that follows it, and a comment at the end of a line
stays at the end of that declaration's (or statement's) last line.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import ast as A
from .errors import CatnetError
from .syntax import parse, read_source

WIDTH = 100

# -- dimensions, types, values --------------------------------------------------

_PREC = {"+": 1, "-": 1, "*": 2}


def dim(d: A.DimExpr, parent: int = 0, right: bool = False) -> str:
    if isinstance(d, A.DNum):
        return _num(d.value)
    if isinstance(d, A.DSym):
        return d.name
    p = _PREC[d.op]
    text = f"{dim(d.left, p)} {d.op} {dim(d.right, p, True)}"
    return f"({text})" if p < parent or (right and p == parent) else text


def _num(v: int | float) -> str:
    return repr(v) if isinstance(v, float) else str(v)


def typ(t: A.TypeExpr, nested: bool = False) -> str:
    if isinstance(t, A.TUnit):
        return "I"
    if isinstance(t, A.TSpace):
        return f"{t.base}[{', '.join(dim(d) for d in t.shape)}]"
    if isinstance(t, A.TRef):
        return t.name
    if isinstance(t, A.TSeq):
        return f"Seq[{dim(t.length)}]({typ(t.item)})"
    text = " ⊗ ".join(typ(f, True) for f in t.factors)
    return f"({text})" if nested else text


def lit(v: int | float | str | bool) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return _num(v)


def value(v: A.Value, parent: int = 0, right: bool = False) -> str:
    if isinstance(v, A.Lit):
        return lit(v.value)
    if isinstance(v, A.VBin):
        p = _PREC[v.op]
        text = f"{value(v.left, p)} {v.op} {value(v.right, p, True)}"
        return f"({text})" if p < parent or (right and p == parent) else text
    text = expr(v)
    # A composite expression next to arithmetic needs its own parentheses.
    return f"({text})" if parent and not isinstance(v, A.Ref) else text


def args(items: tuple[A.Arg, ...] | None) -> str:
    if items is None:
        return ""
    return "(" + ", ".join((f"{a.name}={value(a.value)}" if a.name else value(a.value)) for a in items) + ")"


# -- expressions -------------------------------------------------------------------
# Precedence: `;` (0) binds loosest, then `⊗` (1), then `repeat` (2), atoms (3).


def expr(e: A.Expr, parent: int = 0) -> str:
    if isinstance(e, A.Ref):
        dims_ = f"[{', '.join(dim(d) for d in e.dims)}]" if e.dims is not None else ""
        return f"{e.name}{dims_}{args(e.args)}"
    if isinstance(e, A.Then):
        # A product inside a composition keeps its parentheses: clearer to read.
        text, p = " ; ".join(expr(x, 2) for x in e.parts), 0
    elif isinstance(e, A.Product):
        text, p = " ⊗ ".join(expr(x, 2) for x in e.parts), 1
    elif isinstance(e, A.Repeat):
        text, p = f"repeat {_num(e.count)} {expr(e.expr, 2)}", 2
    elif isinstance(e, A.Ascribe):
        return f"({expr(e.expr)} : {typ(e.dom)} -> {typ(e.cod)})"
    elif isinstance(e, A.Pair):
        # `> >` keeps a nested pairing's closing brackets apart from `>>`.
        inner = ", ".join(expr(x) for x in e.parts)
        return f"<{inner}{' ' if inner.endswith('>') else ''}>"
    elif isinstance(e, A.Inv):
        return f"inv({expr(e.expr)})"
    elif isinstance(e, A.Scan):
        return f"scan[{typ(e.state)}]({expr(e.expr)})"
    else:  # pragma: no cover
        raise AssertionError(e)
    return f"({text})" if p < parent else text


def wexpr(w: A.WExpr, parent: int = 0) -> str:
    if isinstance(w, A.Wire):
        return w.name
    if isinstance(w, A.WAdd):
        text = f"{wexpr(w.left)} + {wexpr(w.right, 1)}"
        return f"({text})" if parent else text
    dims_ = f"[{', '.join(dim(d) for d in w.dims)}]" if w.dims is not None else ""
    parts = []
    for a in w.args:
        if isinstance(a, A.Lit):
            parts.append(lit(a.value))
        elif isinstance(a, A.Arg):
            parts.append(f"{a.name}={value(a.value)}")
        else:
            parts.append(wexpr(a))
    return f"{w.name}{dims_}({', '.join(parts)})"


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
        return [f"object {decl.name:<{pad}} = {typ(decl.type)}{group}"]
    if isinstance(decl, A.BundleDecl):
        return [f"bundle {decl.name:<{pad}} = {typ(decl.fiber)} over {typ(decl.base)}"]
    if isinstance(decl, A.SharedDecl):
        return [f"shared {decl.name:<{pad}} = {expr(decl.expr)}"]
    if isinstance(decl, A.MorphismDecl):
        head = f"morphism {_head(decl):<{pad}} : {typ(decl.dom)} -> {typ(decl.cod)} ="
        body = expr(decl.body)
        if len(head) + 1 + len(body) <= WIDTH:
            return [f"{head} {body}"]
        if 2 + len(body) <= WIDTH:
            return [head, f"  {body}"]
        parts = _split_then(decl.body)
        return [head, f"  {parts[0]}"] + [f"  ; {p}" for p in parts[1:]]
    assert isinstance(decl, A.WiringDecl)
    return [f"morphism {_head(decl)} -> {typ(decl.cod)} {{"] + ["  " + s for s in map(statement, decl.body)] + ["}"]


def statement(s: A.Stmt) -> str:
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
    return decl.name  # type: ignore[union-attr]


def format_module(tree: A.Module, source: str) -> str:
    """Canonical text of a parsed module; ``source`` gives the blank-line grouping."""
    lines_of_source = source.splitlines()
    comments = sorted(tree.comments, key=lambda c: (c.line, c.column))
    ci = 0
    out: list[str] = []

    def blank_between(prev_end: int, next_start: int) -> bool:
        return any(not lines_of_source[i].strip() for i in range(prev_end, next_start - 1) if i < len(lines_of_source))

    decls = list(tree.decls)
    # Alignment groups: runs of consecutive one-line declarations of a kind.
    pads: list[int] = [0] * len(decls)
    i = 0
    while i < len(decls):
        key = _name_key(decls[i])
        j = i
        while (
            j + 1 < len(decls)
            and key is not None
            and _name_key(decls[j + 1]) == key
            and decls[j + 1].span is not None
            and decls[j].span is not None
            and decls[j + 1].span.line == decls[j].span.end_line + 1  # type: ignore[union-attr]
        ):
            j += 1
        if key is not None:
            width = max(len(_aligned_name(d)) for d in decls[i : j + 1])
            one_line = all(len(declaration(d, width)) == 1 for d in decls[i : j + 1])
            for k in range(i, j + 1):
                pads[k] = width if one_line else 0
        i = j + 1

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
            lines = declaration(decl, pads[idx])
            inner: list[str] = []
            while ci < len(comments) and comments[ci].line <= sp.end_line:
                c = comments[ci]
                if c.line == sp.end_line and c.column > 1 and _after_code(lines_of_source, c):
                    lines[-1] = f"{lines[-1]}{_TRAIL}{c.text}"
                else:
                    inner.append(c.text)
                ci += 1
            out.extend(inner)
            out.extend(lines)
        prev_end = sp.end_line
    if ci < len(comments):
        trailing = comments[ci:]
        if out and blank_between(prev_end, trailing[0].line):
            out.append("")
        last = trailing[0].line
        for c in trailing:
            if c.line > last + 1 and blank_between(last, c.line) and out and out[-1] != "":
                out.append("")
            out.append(c.text)
            last = c.line
    return "\n".join(_align_trailing(out)) + "\n" if out else ""


#: Marks where a line's code ends and its trailing comment starts, until
#: the trailing comments of consecutive lines are aligned.
_TRAIL = "\x00"


def _align_trailing(lines: list[str]) -> list[str]:
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
    return bool(lines[c.line - 1][: c.column - 1].strip())


def _wiring(decl: A.WiringDecl, comments: list[A.Comment], ci: int) -> tuple[list[str], int]:
    sp = decl.span
    assert sp is not None
    head = f"morphism {_head(decl)} -> {typ(decl.cod)} {{"
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
        while ci < len(comments) and comments[ci].line <= ssp.end_line:
            line = f"{line}{_TRAIL}{comments[ci].text}"
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
    """Canonical text for ``.cat`` source (raises ``CatnetError`` on bad syntax)."""
    return format_module(parse(text, file), text)


# -- command line ----------------------------------------------------------------------


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE", help=".cat files to format")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("-w", "--write", action="store_true", help="rewrite the files in place (atomically)")
    mode.add_argument("--check", action="store_true", help="exit 1 if any file is not in canonical form")


def run(args: argparse.Namespace) -> int:
    status = 0
    for path in args.files:
        try:
            text = read_source(path)
            out = format_text(text, path)
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
                target = Path(path)
                tmp = target.with_name(f".{target.name}.fmt-tmp")
                tmp.write_text(out, encoding="utf-8")
                tmp.replace(target)
                print(f"formatted {path}")
        else:
            sys.stdout.write(out)
    return status
