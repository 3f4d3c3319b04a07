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
are checked once generically and elaborated again at each use."""

from __future__ import annotations

import contextlib
import gc
from pathlib import Path
from typing import Iterator

from ..errors import CatnetError
from ..syntax import read_source
from .checker import Checker
from .declarations import KEYWORDS
from .lowerable import require_lowerable
from .module import Definition, Module


@contextlib.contextmanager
def _no_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while a file is checked.

    Checking allocates many small objects that all stay alive (AST, IR), so
    the collector's full passes find nothing to free and make checking time
    grow faster than linearly with file size.  Reference counting still frees
    what dies; the collector resumes afterwards.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def check_text(text: str, path: str = "<string>", base_dir: Path | None = None) -> Module:
    """Check source text; imports resolve relative to ``base_dir`` (default: cwd)."""
    base = base_dir if base_dir is not None else Path.cwd()
    key = str((base / Path(path).name).resolve()) if path != "<string>" else "<string>"
    checker = Checker(text, path, base, [key], {})
    try:
        with _no_gc():
            return checker.run()
    except CatnetError as e:
        if e.source is None and (e.span is None or e.span.file == path):
            e.source = text
        raise


def check_file(path: str | Path) -> Module:
    p = Path(path)
    text = read_source(p, str(path))
    key = str(p.resolve())
    checker = Checker(text, str(path), p.resolve().parent, [key], {})
    try:
        with _no_gc():
            return checker.run()
    except CatnetError as e:
        if e.source is None and (e.span is None or e.span.file == str(path)):
            e.source = text
        raise



__all__ = ["Checker", "Definition", "Module", "check_file", "check_text", "require_lowerable", "KEYWORDS"]
