"""Elaboration: AST to typed IR.  The only stage that raises user errors.

The checker resolves names and imports, evaluates object expressions,
infers every box's input and output wires, solves symbolic sizes by
unification, elaborates the wiring form into point-free diagrams, and
tracks invertibility.  Its product is a :class:`Module` of checked
definitions, each with a generic signature and a body diagram.

Inference runs forward: a definition's domain is known, each box's output
is computed from its input by the generator's shape rule, and sizes that
only the codomain decides (``dense`` in ``Image -> Hidden``) are
unification variables (``?3``) solved when the declared codomain is met.
Every definition is generalised over the size symbols of its signature
(``T`` in ``R[T, 64]``, ``d`` in ``block[d]``) and instantiated afresh at
each use.  Definitions that take morphism parameters are templates: they
are checked once generically and elaborated again at each use.

Imports stay inside the import root and are loaded without recursion
(``imports``)."""

from __future__ import annotations

import os

from .. import collector
from ..errors import CatnetError
from ..syntax import clean, read_source
from .checker import Checker
from .declarations import KEYWORDS
from .imports import ImportRoot, import_root, new_checker
from .incremental import Plan, plan
from .lowerable import require_lowerable
from .module import Definition, Module


def check_text(text: str, path: str = "<string>", base_dir: str | os.PathLike[str] | None = None,
               root: str | os.PathLike[str] | None = None, previous: Module | None = None) -> Module:
    """Check source text named ``path``; return its module or raise a located ``CatnetError``.

    Imports resolve relative to ``base_dir`` (default: the working
    directory) and must stay inside ``root`` (default: ``base_dir``).  A
    leading byte-order mark is dropped, as when a file is read.
    ``previous``, the module an earlier version of this text checked to,
    lets the check keep what the edit left alone (``check.incremental``):
    the result is the same, sooner.
    """
    text = clean(text, path)
    base = os.path.realpath(base_dir if base_dir is not None else os.getcwd())
    key = os.path.join(base, os.path.basename(path)) if path != "<string>" else "<string>"
    return _check(text, path, base, key, import_root(root, base, "the base directory"), plan(previous, text, path))


def check_file(path: str | os.PathLike[str], root: str | os.PathLike[str] | None = None) -> Module:
    """Check a ``.cat`` file and its imports; return its module or raise a located ``CatnetError``.

    Imports must stay inside ``root`` (default: the file's own directory).
    The file itself is read as any import is: only a regular file, at most
    64 MB (see :func:`catnet.syntax.read_source`).
    """
    shown = os.fspath(path)
    text = read_source(shown, shown)
    real = os.path.realpath(shown)
    base = os.path.dirname(real)
    return _check(text, shown, base, real, import_root(root, base, f"the directory of {os.path.basename(shown)}"))


def _check(text: str, shown: str, base: str, key: str, root: ImportRoot, kept: Plan | None = None) -> Module:
    checker = new_checker(text, shown, base, [key], {}, root)
    checker.plan = kept
    try:
        with collector.paused():
            return checker.run()
    except CatnetError as e:
        if e.source is None and (e.span is None or e.span.file == shown):
            e.source = text
        raise


__all__ = ["Checker", "Definition", "Module", "check_file", "check_text", "require_lowerable", "KEYWORDS"]
