"""Checked modules: the definitions of a file, its objects and its entry."""

from __future__ import annotations

from dataclasses import dataclass, field

from .. import ast as A
from ..errors import CatnetError, suggest
from ..ir import Diagram, Span, Ty


@dataclass
class Definition:
    """A checked top-level morphism (``morphism`` or ``shared``).

    ``dom``/``cod`` are generic in ``symbols`` (rigid size symbols, explicit
    dimension parameters first).  ``body`` is the checked diagram, ``None``
    for a template (a definition with morphism parameters), which is
    elaborated again at each use.  A shared instance is generic only in
    its declared sizes (``shared wte[T] = …``): each use instantiates them,
    and every use is the same parameters, whose shapes never use them.
    """

    name: str
    kind: str  # "morphism" | "shared"
    dom: Ty
    cod: Ty
    symbols: tuple[str, ...]
    dim_params: tuple[str, ...]
    params: tuple[A.Param, ...]
    body: Diagram | None
    decl: A.MorphismDecl | A.WiringDecl | A.SharedDecl
    module: "Module"
    span: Span | None

    @property
    def is_template(self) -> bool:
        return any(p.cod is not None for p in self.params)

    @property
    def iso(self) -> bool:
        return self.body is not None and self.body.is_iso

    def signature(self) -> str:
        return f"{self.dom} -> {self.cod}"


@dataclass
class Module:
    """A checked ``.cat`` file: its objects, definitions and entry."""

    path: str
    source: str
    objects: dict[str, Ty] = field(default_factory=dict)
    definitions: dict[str, Definition] = field(default_factory=dict)
    imported: dict[str, Definition] = field(default_factory=dict)
    imported_objects: dict[str, Ty] = field(default_factory=dict)
    entry: str | None = None
    syntax: A.Module | None = None

    def __getitem__(self, name: str) -> Definition:
        return self.lookup(name)

    def lookup(self, name: str) -> Definition:
        """The definition called ``name``: E0801 for a non-``str``, E0210 if there is none."""
        from .inputs import require_name

        require_name("module.lookup", name)
        d = self.definitions.get(name) or self.imported.get(name)
        if d is None:
            pool = list(self.definitions) + list(self.imported)
            hint = suggest(name, pool)
            raise CatnetError(
                "E0210",
                f"no morphism named `{name}` in {self.path}",
                None,
                help=f"did you mean `{hint}`?" if hint else f"defined here: {', '.join(pool) or 'nothing'}",
            )
        return d

    def diagram(self, name: str | None = None) -> Diagram:
        """The checked body of a definition; ``name`` defaults to the entry.

        A template (a definition taking morphism parameters) has no body
        until it is applied, so it cannot be asked for here.  A ``name`` that
        is not a ``str`` is E0801.
        """
        from .inputs import require_name

        name = self.entry_name() if name is None else require_name("module.diagram", name)
        d = self.lookup(name)
        if d.body is None:
            raise CatnetError(
                "E0209",
                f"`{name}` takes morphism parameters; apply it in another definition first",
                d.span,
                source=self.source,
            )
        return d.body

    def entry_name(self) -> str:
        """The entry morphism: the ``main`` one, else the last ``morphism`` of the file (E0210 if none)."""
        if self.entry:
            return self.entry
        own = [d for d in self.definitions.values() if d.kind == "morphism"]
        if not own:
            raise CatnetError("E0210", f"{self.path} defines no morphism to use as entry", None)
        return own[-1].name

    def locate(self, error: CatnetError, name: str | None = None) -> CatnetError:
        """Give an error of a later stage (lowering, data) this file's location.

        An error without a span is placed at the definition ``name``; one in
        this file gets the source for its excerpt.
        """
        if error.span is None and name is not None and (name in self.definitions or name in self.imported):
            error.span = self.lookup(name).span
        if error.source is None and error.span is not None and error.span.file == self.path:
            error.source = self.source
        return error
