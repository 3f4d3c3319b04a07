"""The checker of one file: declarations, expressions and generator calls together."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, NoReturn

from .. import ast as A
from ..errors import CatnetError
from ..ir import Box, Span
from .declarations import Declarations
from .expressions import Expressions
from .generators import Generators
from .incremental import Plan
from .module import Module


class Checker(Declarations, Expressions, Generators):
    """Checks one file; imports are checked by a nested checker sharing ``loading``."""

    def __init__(self, text: str, path: str, base_dir: Path, loading: list[str], cache: dict[str, Module]) -> None:
        self.text = text
        self.path = path
        self.base_dir = base_dir
        self.loading = loading
        self.cache = cache
        self.module = Module(path, text)
        self.decls: dict[str, A.Decl] = {}
        self.object_decls: dict[str, A.ObjectDecl | A.BundleDecl] = {}
        self.in_progress: list[str] = []
        #: the first ``triv`` of each bundle: its arguments and where (one trivialization per bundle)
        self.trivializations: dict[str, Box] = {}
        #: what a check after an edit keeps of the previous one (``check.incremental``)
        self.plan: Plan | None = None

    # -- errors
    def error(self, code: str, message: str, span: Span | None, *, notes: Iterable[str] = (), help: str | None = None) -> NoReturn:
        raise CatnetError(code, message, span, notes=list(notes), help=help)
