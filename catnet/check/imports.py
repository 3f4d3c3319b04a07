"""Imports: the import root, where an ``import`` leads, and loading the import graph.

A ``.cat`` file is untrusted input, so what it may read is fenced in: every
import resolves inside the **import root** (by default the directory of the
file given on the command line, or ``base_dir`` for ``loads``).

- :func:`resolve` turns the path written in an ``import`` into the real path
  of an existing file inside the root, or raises a located error at the
  import: E0004 for an absolute path, a ``..`` escape or a symbolic link that
  leads outside the root; E0203 for a file that does not exist (or a name
  the system cannot hold); E0001 for other operating-system errors (a loop
  of symbolic links, no permission).  Symbolic links inside the root are
  followed.
- :func:`import_module` gives the checked module of an imported file.  The
  graph below it is walked with an explicit stack, in the order the imports
  are written: each file is read (regular files only, bounded, see
  :func:`catnet.syntax.read_source`) once, a cycle is refused
  (E0204) at the import that closes it, and each file is checked after the
  files it imports.  So a checker never starts another checker for an
  import (it finds the module in the shared cache), and a chain of
  thousands of imports uses no more stack than one import.  A file imported
  twice, or through two paths, is checked once.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from pathlib import Path

from .. import ast as A
from ..errors import CatnetError
from ..ir import Span
from ..syntax import os_error, parse, read_source
from .checker import Checker
from .module import Module

#: Import paths quoted in a message are cut to this many characters.
_QUOTE = 60


@dataclass(frozen=True)
class ImportRoot:
    """The directory every import must stay in (a real path), and how it was chosen."""

    path: str
    origin: str  # e.g. "the directory of net.cat", for the message of E0004

    def __contains__(self, real: str) -> bool:
        return os.path.commonpath([real, self.path]) == self.path


def import_root(root: str | os.PathLike[str] | None, default: str | os.PathLike[str], origin: str) -> ImportRoot:
    """The import root: ``root`` if given (it must be a directory, else E0001), else ``default``.

    ``origin`` says where the default comes from ("the directory of net.cat").
    """
    if root is None:
        return ImportRoot(os.path.realpath(default), origin)
    real = os.path.realpath(root)
    if not os.path.isdir(real):
        raise CatnetError("E0001", f"the import root `{_quote(os.fspath(root))}` is not a directory",
                          help="give `--root` (or `root=`) an existing directory")
    return ImportRoot(real, "as given")


@dataclass(frozen=True)
class Target:
    """An imported file: its real path, which is also its key in the cache."""

    key: str

    @property
    def shown(self) -> str:
        """The file's name in messages."""
        return display_path(self.key)


def resolve(written: str, base_dir: str, root: ImportRoot, at: Span | None) -> Target:
    """Where ``import "written"`` in a file of ``base_dir`` leads; located errors at ``at``.

    See the module docstring for the errors.  The result is an existing path
    inside ``root``, symbolic links resolved.
    """
    quoted = _quote(written)

    def outside(message: str, notes: list[str]) -> CatnetError:
        where = f"the import root is `{display_path(root.path)}`"
        if root.origin != "as given":
            where += f" ({root.origin})"
        return CatnetError("E0004", message, at, notes=[where, *notes],
                           help="an import must stay inside the import root; "
                                "give another root with `--root DIR` (`root=` in Python)")

    if not written or "\x00" in written:
        raise CatnetError("E0203", f"`import \"{quoted}\"` names no file", at,
                          help='write the path of a .cat file relative to this file: `import "lib/blocks.cat"`')
    if os.path.isabs(written):
        raise outside(f"`{quoted}` is outside the import root", ["import paths are relative to the importing file"])
    lexical = os.path.normpath(os.path.join(base_dir, written))
    if lexical not in root:
        raise outside(f"`{quoted}` is outside the import root", ["`..` leads out of the root"])
    real = os.path.realpath(lexical)
    if real not in root:
        raise outside(f"`{quoted}` leads outside the import root", [f"a symbolic link leads to {real}"])
    try:
        os.stat(real)
    except OSError as e:
        if e.errno in (errno.ENOENT, errno.ENOTDIR, errno.ENAMETOOLONG):
            notes = [f"looked for {_quote(display_path(real))}"]
            if e.errno == errno.ENAMETOOLONG:
                notes.append("the path is longer than the system allows a file name to be")
            raise CatnetError("E0203", f"cannot find `{quoted}`", at, notes=notes,
                              help="import paths are relative to the importing file") from None
        raise os_error(e, quoted, lambda why: CatnetError("E0001", why, at)) from None
    return Target(real)


def display_path(path: str) -> str:
    """A path as users see it: relative to the working directory when inside it."""
    try:
        real = os.path.realpath(os.getcwd())
    except OSError:  # the working directory was removed
        return path
    return os.path.relpath(path, real) if path == real or path.startswith(real.rstrip(os.sep) + os.sep) else path


def root_of(checker: Checker) -> ImportRoot:
    """The import root a checker was given (its own directory if none was)."""
    root = getattr(checker, "root", None)
    return root if root is not None else ImportRoot(os.path.realpath(checker.base_dir), "the importing file's directory")


def new_checker(text: str, shown: str, base_dir: str, loading: list[str], cache: dict[str, Module],
                root: ImportRoot, tree: A.Module | None = None) -> Checker:
    """A checker for one file, knowing its import root (and its parsed tree, if parsed already)."""
    checker = Checker(text, shown, Path(base_dir), loading, cache)
    checker.root = root  # type: ignore[attr-defined]
    checker.module.syntax = tree
    return checker


@dataclass
class _Frame:
    """A file on the walk's stack: parsed, its imports visited up to ``next``."""

    key: str
    shown: str
    text: str
    tree: A.Module
    imports: list[A.Import]
    next: int = 0


def import_module(importer: Checker, decl: A.Import) -> Module:
    """The checked module that ``decl`` (an import of ``importer``'s file) brings in.

    Loads and checks every file below it that is not in the cache yet; see
    the module docstring.  Errors are located, with the source of the file
    they are in.
    """
    root = root_of(importer)
    target = resolve(decl.path, str(importer.base_dir), root, decl.span)
    cached = importer.cache.get(target.key)
    if cached is not None:
        return cached  # a checked file is on no chain of files being loaded: no cycle
    _refuse_cycle(importer.loading, target.key, decl.span)
    texts: dict[str, str] = {}  # file as shown -> its text, for excerpts
    stack: list[_Frame] = []
    chain = list(importer.loading)  # the files being loaded, outermost first
    on_chain = set(chain)

    def push(t: Target, at: Span | None) -> None:
        shown = t.shown
        text = read_source(t.key, shown, at)
        texts[shown] = text
        tree = parse(text, shown)
        imports = [d for d in tree.decls if isinstance(d, A.Import)]
        stack.append(_Frame(t.key, shown, text, tree, imports))
        chain.append(t.key)
        on_chain.add(t.key)

    try:
        push(target, decl.span)
        while stack:
            top = stack[-1]
            if top.next < len(top.imports):
                d = top.imports[top.next]
                top.next += 1
                child = resolve(d.path, os.path.dirname(top.key), root, d.span)
                if child.key in on_chain:
                    _refuse_cycle(chain, child.key, d.span)
                if child.key not in importer.cache:
                    push(child, d.span)
                continue
            checker = new_checker(top.text, top.shown, os.path.dirname(top.key), list(chain), importer.cache, root, top.tree)
            importer.cache[top.key] = checker.run()
            stack.pop()
            chain.pop()
            on_chain.discard(top.key)
    except CatnetError as e:
        if e.source is None and e.span is not None and e.span.file in texts:
            e.source = texts[e.span.file]
        raise
    return importer.cache[target.key]


def _refuse_cycle(loading: list[str], key: str, at: Span | None) -> None:
    if key in loading:
        chain = loading[loading.index(key):] + [key]
        shown = " → ".join(Path(p).name for p in chain)
        raise CatnetError("E0204", f"import cycle: {shown}", at, help="move the shared definitions into a third file")


def _quote(text: str) -> str:
    return text if len(text) <= _QUOTE else text[: _QUOTE - 1] + "…"


__all__ = ["ImportRoot", "Target", "display_path", "import_module", "import_root", "new_checker", "resolve", "root_of"]
