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
"""

from __future__ import annotations

import contextlib
import gc
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, NoReturn

from . import ast as A
from . import dims, fmt
from .dims import Dim
from .errors import CatnetError, suggest
from .ir import Box, Diagram, Layer, Ob, Span, Ty, Value
from .library import COARITY, GENERATORS, Generator
from .syntax import parse, read_source

#: Sizes above this are refused as absurd (no tensor axis is 2^31 long).
MAX_DIM = 2**31 - 1
#: Total elements of one wire above this are refused (a terabyte of floats).
MAX_ELEMENTS = 2**40
MAX_REPEAT = 100_000

#: Words of the language; the contextual lexer accepts them as names where a
#: keyword cannot appear, so the checker refuses them as definition names.
KEYWORDS = frozenset({"import", "object", "bundle", "over", "under", "shared", "main", "morphism", "repeat",
                      "inv", "scan", "return", "true", "false", "R", "Z", "I", "Seq"})

STRUCTURAL = tuple(name for name, g in GENERATORS.items() if g.structural)


def _join(a: Span | None, b: Span | None) -> Span | None:
    if a is None or b is None:
        return a or b
    return Span(a.file, a.line, a.column, b.end_line, b.end_column, a.start, b.end)


# -- checked definitions ------------------------------------------------------


@dataclass
class Definition:
    """A checked top-level morphism (``morphism`` or ``shared``).

    ``dom``/``cod`` are generic in ``symbols`` (rigid size symbols, explicit
    dimension parameters first).  ``body`` is the checked diagram, ``None``
    for a template (a definition with morphism parameters), which is
    elaborated again at each use.
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
        until it is applied, so it cannot be asked for here.
        """
        name = name or self.entry_name()
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

    def entry_box(self, name: str | None = None) -> Box:
        """The entry definition as one composite box (its name wraps the body)."""
        name = name or self.entry_name()
        body = self.diagram(name)
        return Box(name, body.dom, body.cod, kind="composite", body=body, iso=body.is_iso, span=self.lookup(name).span)


# -- inference state ------------------------------------------------------------


class Infer:
    """Unification variables, their solutions, and constraints that wait."""

    def __init__(self) -> None:
        self.counter = 0
        self.env: dict[str, Dim] = {}
        self.pending: list[tuple[Dim, Dim, Callable[[], NoReturn]]] = []

    def fresh(self) -> Dim:
        self.counter += 1
        return dims.sym(f"?{self.counter}")

    def resolve(self, d: Dim) -> Dim:
        if isinstance(d, int) or not self.env:
            return d
        for _ in range(64):
            syms = dims.symbols(d)
            if not syms.intersection(self.env):
                return d
            d = dims.subst(d, self.env)
        return d

    def unify(self, a: Dim, b: Dim, fail: Callable[[], NoReturn]) -> None:
        a, b = self.resolve(a), self.resolve(b)
        result = dims.solve(a, b)
        if result is True:
            return
        if result is False:
            fail()
        if result is None:
            self.pending.append((a, b, fail))
            return
        var, value = result
        if var in dims.symbols(value):
            fail()
        if isinstance(value, int) and not (0 < value <= MAX_DIM):
            fail()
        self.env[var] = value
        if self.pending:
            self.retry()

    def retry(self) -> None:
        progress = True
        while progress and self.pending:
            progress = False
            waiting, self.pending = self.pending, []
            for a, b, fail in waiting:
                a2, b2 = self.resolve(a), self.resolve(b)
                r = dims.solve(a2, b2)
                if r is None:
                    self.pending.append((a2, b2, fail))
                    continue
                progress = True
                if r is False:
                    fail()
                if r is not True:
                    var, value = r
                    if var in dims.symbols(value):
                        fail()
                    self.env[var] = value

    def unify_ty(self, a: Ty, b: Ty, fail: Callable[[], NoReturn]) -> None:
        if len(a) != len(b):
            fail()
        for x, y in zip(a.obs, b.obs):
            if x.base != y.base or len(x.shape) != len(y.shape) or x.group != y.group:
                fail()
            if x.base == "bundle":
                assert x.fiber is not None and y.fiber is not None and x.over is not None and y.over is not None
                self.unify_ty(x.fiber, y.fiber, fail)
                self.unify_ty(x.over, y.over, fail)
            for p, q in zip(x.shape, y.shape):
                self.unify(p, q, fail)

    def solution(self) -> dict[str, Dim]:
        return {v: self.resolve(d) for v, d in self.env.items()}

    def show(self, ty: Ty) -> str:
        return ty.subst(self.solution()).described() if self.env else ty.described()


def _has_vars(ty: Ty) -> bool:
    return any(dims.is_var(s) for s in ty.symbols())


def _show_ty(ty: Ty) -> str:
    """A type for messages; unsolved sizes print as `_`."""
    text = ty.described()
    if "?" in text:
        import re

        text = re.sub(r"\?\d+", "_", text)
    return text


# -- the rule context handed to generator shape rules ------------------------------


class _RuleCtx:
    def __init__(self, infer: Infer, name: str, span: Span | None, dom: Ty) -> None:
        self.infer = infer
        self.name = name
        self.span = span
        self.dom = dom

    def fresh(self) -> Dim:
        return self.infer.fresh()

    def resolve(self, d: Dim) -> Dim:
        return self.infer.resolve(d)

    def need_int(self, d: Dim, what: str) -> int:
        r = self.infer.resolve(d)
        if not isinstance(r, int):
            self.fail(f"{what} must be a known number here, but it is `{dims.show(r).replace('?', '_')}`",
                      "ascribe the input type, e.g. `(f : R[8, 8, 1] -> ...)`")
        return r  # type: ignore[return-value]

    def equal(self, a: Dim, b: Dim, what: str) -> None:
        def fail() -> NoReturn:
            self.fail(what)

        self.infer.unify(a, b, fail)

    def fail(self, message: str, help: str | None = None) -> NoReturn:
        raise CatnetError("E0306", message, self.span, notes=[f"`{self.name}` gets {_show_ty(self.dom)}"], help=help)


# -- the checker -------------------------------------------------------------------


@dataclass
class _Scope:
    """Names visible while elaborating one definition body."""

    dims: dict[str, Dim]
    morphisms: dict[str, Diagram | Box]  # morphism parameters
    infer: Infer
    new_symbols: bool = False  # may a type introduce size symbols? (signatures only)
    symbols: list[str] = field(default_factory=list)


class Checker:
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

    # -- errors
    def error(self, code: str, message: str, span: Span | None, *, notes: Iterable[str] = (), help: str | None = None) -> NoReturn:
        raise CatnetError(code, message, span, notes=list(notes), help=help)

    # -- top level
    def run(self) -> Module:
        tree = parse(self.text, self.path)
        self.module.syntax = tree
        if not tree.decls:
            self.error("E0003", "this file defines nothing", Span(self.path, 1, 1, 1, 1),
                       help="start with `object Image = R[64]` and a `morphism`; see docs/language.md")
        for decl in tree.decls:
            if isinstance(decl, A.Import):
                self.do_import(decl)
        for decl in tree.decls:
            if isinstance(decl, (A.ObjectDecl, A.BundleDecl, A.MorphismDecl, A.WiringDecl, A.SharedDecl)):
                self.declare(decl)
        for decl in tree.decls:
            if isinstance(decl, (A.ObjectDecl, A.BundleDecl)):
                self.object(decl.name, decl.span)
            elif isinstance(decl, (A.MorphismDecl, A.WiringDecl, A.SharedDecl)):
                self.definition(decl.name, decl.span)
        entries = [d for d in tree.decls if isinstance(d, A.MainDecl)]
        for extra in entries[1:]:
            self.error("E0202", "a file has one `main`", extra.span, notes=[f"`main {entries[0].name}` comes first"])
        if entries:
            main = entries[0]
            if main.name not in self.module.definitions and main.name not in self.module.imported:
                self.unknown(main.name, main.span, "morphism")
            self.module.entry = main.name
        # Keep declaration order for listing.
        order = [d.name for d in tree.decls if isinstance(d, (A.MorphismDecl, A.WiringDecl, A.SharedDecl))]
        self.module.definitions = {n: self.module.definitions[n] for n in order}
        return self.module

    def declare(self, decl: A.Decl) -> None:
        name = decl.name  # type: ignore[union-attr]
        if name in KEYWORDS:
            self.error("E0202", f"`{name}` is a keyword and cannot name a definition", decl.span,
                       help=f"choose another name, e.g. `{name}_`")
        if name in GENERATORS:
            self.error("E0202", f"`{name}` is a built-in generator and cannot be redefined", decl.span,
                       help=f"choose another name, e.g. `my_{name}`")
        prior = self.decls.get(name) or self.object_decls.get(name)
        if prior is not None or name in self.module.imported or name in self.module.imported_objects:
            where = f"first defined at line {prior.span.line}" if prior is not None and prior.span else "imported"
            self.error("E0202", f"`{name}` is defined twice", decl.span, notes=[where], help="rename one of them")
        if isinstance(decl, (A.ObjectDecl, A.BundleDecl)):
            self.object_decls[name] = decl
        else:
            self.decls[name] = decl

    def do_import(self, decl: A.Import) -> None:
        target = (self.base_dir / decl.path).resolve()
        key = str(target)
        if key in self.loading:
            chain = self.loading[self.loading.index(key):] + [key]
            shown = " → ".join(Path(p).name for p in chain)
            self.error("E0204", f"import cycle: {shown}", decl.span, help="move the shared definitions into a third file")
        if key in self.cache:
            mod = self.cache[key]
        else:
            if not target.is_file():
                self.error("E0203", f"cannot find `{decl.path}`", decl.span,
                           notes=[f"looked for {_display_path(target)}"], help="import paths are relative to the importing file")
            shown = _display_path(target)
            text = read_source(target, shown)
            sub = Checker(text, shown, target.parent, self.loading + [key], self.cache)
            try:
                mod = sub.run()
            except CatnetError as e:
                if e.source is None and e.span is not None and e.span.file == shown:
                    e.source = text
                raise
            self.cache[key] = mod
        for table, src in ((self.module.imported, {**mod.imported, **mod.definitions}),
                           (self.module.imported_objects, {**mod.imported_objects, **mod.objects})):
            for name, value in src.items():
                if name in table and table[name] is not value:  # type: ignore[comparison-overlap]
                    self.error("E0202", f"`{name}` is imported twice from different files", decl.span)
                table[name] = value  # type: ignore[assignment]

    # -- names
    def all_names(self) -> list[str]:
        return list(self.decls) + list(self.object_decls) + list(self.module.imported) + list(self.module.imported_objects) + list(GENERATORS)

    def unknown(self, name: str, span: Span | None, what: str, extra: Iterable[str] = ()) -> NoReturn:
        pool = list(extra) + self.all_names()
        hint = suggest(name, pool)
        self.error("E0201", f"unknown {what} `{name}`", span, help=f"did you mean `{hint}`?" if hint else None)

    # -- objects
    def object(self, name: str, span: Span | None) -> Ty:
        if name in self.module.objects:
            return self.module.objects[name]
        if name in self.module.imported_objects:
            return self.module.imported_objects[name]
        decl = self.object_decls.get(name)
        if decl is None:
            if name in self.decls or name in self.module.imported or name in GENERATORS:
                self.error("E0205", f"`{name}` is a morphism, not an object", span,
                           help="objects are wire types such as `R[64]`; morphisms go after `=`")
            hint = suggest(name, list(self.object_decls) + list(self.module.imported_objects))
            self.error("E0205", f"unknown object `{name}`", span,
                       help=f"did you mean `{hint}`?" if hint else f"declare it: `object {name} = R[...]`")
        if name in self.in_progress:
            self.error("E0211", f"object `{name}` is defined in terms of itself", decl.span)
        self.in_progress.append(name)
        try:
            scope = _Scope({}, {}, Infer(), new_symbols=True)
            if isinstance(decl, A.BundleDecl):
                fiber = self.type(decl.fiber, scope)
                base = self.type(decl.base, scope)
                ty = Ty((Ob("bundle", (), fiber=fiber, over=base, name=name),))
            else:
                ty = self.type(decl.type, scope)
                if len(ty) == 1:
                    ob = ty.obs[0]
                    group = decl.group
                    ty = Ty((Ob(ob.base, ob.shape, group=group or ob.group, fiber=ob.fiber, over=ob.over, name=name),))
                elif decl.group:
                    self.error("E0308", "a group acts on one wire, not on a product", decl.span)
        finally:
            self.in_progress.pop()
        self.module.objects[name] = ty
        return ty

    def type(self, t: A.TypeExpr, scope: _Scope) -> Ty:
        if isinstance(t, A.TUnit):
            return Ty()
        if isinstance(t, A.TSpace):
            shape = tuple(self.dim(d, scope) for d in t.shape)
            self.check_size(shape, t.span)
            return Ty((Ob(t.base, shape),))
        if isinstance(t, A.TProduct):
            return Ty(tuple(o for f in t.factors for o in self.type(f, scope).obs))
        if isinstance(t, A.TSeq):
            length = self.dim(t.length, scope)
            item = self.type(t.item, scope)
            out = []
            for ob in item.obs:
                if ob.base == "bundle":
                    self.error("E0308", "a sequence holds tensor wires, not bundles", t.span)
                out.append(Ob(ob.base, (length,) + ob.shape, group=ob.group))
            ty = Ty(tuple(out))
            for ob in ty.obs:
                self.check_size(ob.shape, t.span)
            return ty
        assert isinstance(t, A.TRef)
        ty = self.object(t.name, t.span)
        syms = ty.symbols()
        if syms:
            env: dict[str, Dim] = {}
            for s in sorted(syms):
                if s in scope.dims:
                    env[s] = scope.dims[s]
                elif scope.new_symbols:
                    scope.dims[s] = dims.sym(s)
                    scope.symbols.append(s)
                else:
                    self.error("E0304", f"object `{t.name}` has size `{s}`, which is not known here", t.span,
                               help=f"add `{s}` to the definition's signature or parameters")
            ty = ty.subst({k: v for k, v in env.items() if v != dims.sym(k)})
        return ty

    def check_size(self, shape: tuple[Dim, ...], span: Span | None) -> None:
        total = 1
        for d in shape:
            if isinstance(d, int):
                total *= d
        if total > MAX_ELEMENTS:
            self.error("E0307", f"a wire of {total:,} elements per example is absurdly large", span,
                       help="sizes are per example; the batch axis is never written")

    def dim(self, d: A.DimExpr, scope: _Scope) -> Dim:
        if isinstance(d, A.DNum):
            if isinstance(d.value, float):
                self.error("E0308", f"a size must be a whole number, not {d.value}", d.span)
            if d.value <= 0:
                self.error("E0307", f"a size must be positive, not {d.value}", d.span)
            if d.value > MAX_DIM:
                self.error("E0307", f"size {d.value} is absurdly large (the limit is {MAX_DIM})", d.span)
            return d.value
        if isinstance(d, A.DSym):
            if d.name in scope.dims:
                return scope.dims[d.name]
            if scope.new_symbols:
                scope.dims[d.name] = dims.sym(d.name)
                scope.symbols.append(d.name)
                return scope.dims[d.name]
            hint = suggest(d.name, scope.dims)
            self.error("E0201", f"unknown size `{d.name}`", d.span,
                       help=f"did you mean `{hint}`?" if hint else "sizes must be declared in the signature, e.g. `morphism f[d] : R[d] -> R[d]`")
        assert isinstance(d, A.DBin)
        left, right = self.dim(d.left, scope), self.dim(d.right, scope)
        out = dims.add(left, right) if d.op == "+" else dims.sub(left, right) if d.op == "-" else dims.mul(left, right)
        if isinstance(out, int) and not (0 < out <= MAX_DIM):
            self.error("E0307", f"this size evaluates to {out}", d.span, help="sizes must be positive")
        return out

    # -- definitions
    def definition(self, name: str, span: Span | None) -> Definition:
        found = self.module.definitions.get(name) or self.module.imported.get(name)
        if found is not None:
            return found
        decl = self.decls[name]
        if name in self.in_progress:
            chain = " → ".join(self.in_progress[self.in_progress.index(name):] + [name])
            self.error("E0211", f"`{name}` is defined in terms of itself ({chain})", span,
                       help="recursion is not a diagram; use `repeat n` or `scan` for iteration")
        self.in_progress.append(name)
        try:
            defn = self.check_definition(decl)  # type: ignore[arg-type]
        except RecursionError:
            self.error("E0106", f"`{name}` is nested too deeply to check", decl.span,
                       help="split it into named definitions")
        finally:
            self.in_progress.pop()
        self.module.definitions[name] = defn
        return defn

    def signature(self, decl: A.MorphismDecl | A.WiringDecl, scope: _Scope) -> tuple[Ty, Ty]:
        scope.new_symbols = True
        for p in decl.params:
            if p.cod is not None:
                self.type(p.dom, scope), self.type(p.cod, scope)
        if isinstance(decl, A.MorphismDecl):
            dom = self.type(decl.dom, scope)
        else:
            dom = Ty(tuple(o for p in decl.params if p.cod is None for o in self.type(p.dom, scope).obs))
        cod = self.type(decl.cod, scope)
        scope.new_symbols = False
        return dom, cod

    def check_definition(self, decl: A.MorphismDecl | A.WiringDecl | A.SharedDecl) -> Definition:
        infer = Infer()
        if isinstance(decl, A.SharedDecl):
            scope = _Scope({}, {}, infer)
            body = self.synth(decl.expr, scope)
            if body is None:
                self.error("E0304", f"cannot infer the type of the shared instance `{decl.name}`", decl.expr.span,
                           help=f"ascribe it: `shared {decl.name} = (…  : A -> B)`, or share a named morphism")
            body = self.finish(body, infer, decl.expr.span)
            symbols = tuple(sorted(body.dom.symbols() | body.cod.symbols()))
            return Definition(decl.name, "shared", body.dom, body.cod, symbols, (), (), body, decl, self.module, decl.span)
        seen: set[str] = set()
        for n in decl.dim_params:
            if n in seen:
                self.error("E0202", f"size parameter `{n}` is declared twice", decl.span)
            seen.add(n)
        for p in decl.params:
            if p.name in seen:
                self.error("E0202", f"parameter `{p.name}` is declared twice", p.span)
            seen.add(p.name)
            if isinstance(decl, A.MorphismDecl) and p.cod is None:
                self.error("E0208", f"`{p.name} : {fmt.typ(p.dom)}` names a wire, but `{decl.name}` is point-free", p.span,
                           help=f"write the wiring form `morphism {decl.name}({p.name} : {fmt.typ(p.dom)}) -> B {{ ... }}`, "
                                "or give a morphism parameter its type `A -> B`")
        scope = _Scope({n: dims.sym(n) for n in decl.dim_params}, {}, infer, symbols=list(decl.dim_params))
        dom, cod = self.signature(decl, scope)
        for p in decl.params:
            if p.cod is not None:
                pd, pc = self.type(p.dom, scope), self.type(p.cod, scope)
                scope.morphisms[p.name] = Box(p.name, pd, pc, kind="composite", span=p.span)
        body = self.body(decl, scope, dom, cod)
        body = self.finish(body, infer, decl.span)
        template = any(p.cod is not None for p in decl.params)
        return Definition(decl.name, "morphism", dom, cod, tuple(scope.symbols), decl.dim_params, decl.params,
                          None if template else body, decl, self.module, decl.name_span or decl.span)

    def body(self, decl: A.MorphismDecl | A.WiringDecl, scope: _Scope, dom: Ty, cod: Ty) -> Diagram:
        if isinstance(decl, A.WiringDecl):
            return _Wiring(self, decl, scope, dom, cod).run()
        d = self.elab(decl.body, dom, scope, None)

        def fail() -> NoReturn:
            self.error("E0303", f"`{decl.name}` is declared to end in {_show_ty(cod)}, but its body ends in {_show_ty(d.cod.subst(scope.infer.solution()))}",
                       decl.body.span, notes=[f"declared: {decl.name} : {dom} -> {cod}"],
                       help=self.fix_hint(d.cod, cod))

        scope.infer.unify_ty(d.cod, cod, fail)
        # The declared codomain carries the object names (sizes agree once solved).
        return Diagram(d.dom, cod, d.layers)

    def fix_hint(self, got: Ty, want: Ty) -> str | None:
        if len(got) == len(want) and all(a.base == b.base and len(a.shape) == len(b.shape) and a.group != b.group
                                         for a, b in zip(got.obs, want.obs)):
            return "the body does not keep the group action; equivariant layers are not in the library yet"
        if len(got) == 1 and len(want) == 1 and got.obs[0].base == "R" and want.obs[0].base == "R":
            return "end with a `dense` layer to map to the declared width"
        if len(got) != len(want):
            return f"the body gives {len(got)} wire(s), the declaration {len(want)}"
        return None

    def finish(self, d: Diagram, infer: Infer, span: Span | None) -> Diagram:
        """Apply the solved sizes; any size still unknown is an error at its box."""
        infer.retry()
        if infer.pending:
            a, b, fail = infer.pending[0]
            fail()
        sol = infer.solution()
        out = d.subst(sol)
        if any(dims.is_var(s) for s in out.dom.symbols() | out.cod.symbols()) or _diagram_has_vars(out):
            box = _first_box_with_vars(out)
            where = box.span if box is not None and box.span is not None else span
            label = f"`{box.name}`" if box is not None else "a wire"
            self.error("E0304", f"cannot infer the size of {label}'s output", where,
                       notes=[f"{label} maps {_show_ty(box.dom)} -> {_show_ty(box.cod)}" if box else "some size is never fixed"],
                       help=_size_help(box) if box else None)
        return out

    # -- expressions
    def arity(self, e: A.Expr, scope: _Scope) -> int | None:
        """How many wires ``e`` takes, from its syntax (None: as many as given)."""
        while True:
            if isinstance(e, A.Ref):
                target = self.target(e, scope)
                if isinstance(target, Generator):
                    return target.arity if target.name not in ("copy", "discard") else None
                if isinstance(target, (Box, Diagram)):
                    return len(target.dom)
                return len(target.dom)
            if isinstance(e, A.Then):
                e = e.parts[0]
            elif isinstance(e, A.Product):
                parts = [self.arity(p, scope) for p in e.parts]
                return None if any(p is None for p in parts) else sum(parts)  # type: ignore[arg-type]
            elif isinstance(e, A.Pair):
                for p in e.parts:
                    a = self.arity(p, scope)
                    if a is not None:
                        return a
                return None
            elif isinstance(e, A.Ascribe):
                return len(self.type(e.dom, scope))
            elif isinstance(e, A.Repeat):
                e = e.expr
            elif isinstance(e, A.Inv):
                return self.coarity(e.expr, scope)
            elif isinstance(e, A.Scan):
                inner = self.arity(e.expr, scope)
                return None if inner is None else inner - len(self.type(e.state, scope))
            else:  # pragma: no cover - the grammar has no other expressions
                raise AssertionError(e)

    def coarity(self, e: A.Expr, scope: _Scope) -> int | None:
        while True:
            if isinstance(e, A.Ref):
                target = self.target(e, scope)
                if isinstance(target, Generator):
                    return COARITY.get(target.name, 1)
                return len(target.cod)
            if isinstance(e, A.Then):
                e = e.parts[-1]
            elif isinstance(e, (A.Product, A.Pair)):
                parts = [self.coarity(p, scope) for p in e.parts]
                return None if any(p is None for p in parts) else sum(parts)  # type: ignore[arg-type]
            elif isinstance(e, A.Ascribe):
                return len(self.type(e.cod, scope))
            elif isinstance(e, A.Repeat):
                e = e.expr
            elif isinstance(e, A.Inv):
                return self.arity(e.expr, scope)
            elif isinstance(e, A.Scan):
                inner = self.coarity(e.expr, scope)
                return None if inner is None else inner - len(self.type(e.state, scope))
            else:  # pragma: no cover
                raise AssertionError(e)

    def target(self, ref: A.Ref, scope: _Scope) -> Generator | Definition | Box | Diagram:
        """What a name in an expression refers to."""
        if ref.name in scope.morphisms:
            return scope.morphisms[ref.name]
        if ref.name in self.decls:
            return self.definition(ref.name, ref.span)
        if ref.name in self.module.imported:
            return self.module.imported[ref.name]
        if ref.name in GENERATORS:
            return GENERATORS[ref.name]
        if ref.name in self.object_decls or ref.name in self.module.imported_objects:
            self.error("E0209", f"`{ref.name}` is an object, not a morphism", ref.span,
                       help=f"to pass a wire of type {ref.name} unchanged, write `id`")
        if ref.name in scope.dims:
            self.error("E0209", f"`{ref.name}` is a size, not a morphism", ref.span)
        self.unknown(ref.name, ref.span, "morphism", scope.morphisms)

    def elab(self, e: A.Expr, dom: Ty, scope: _Scope, origin: tuple[str, Span | None] | None) -> Diagram:
        """Elaborate ``e`` applied to wires of type ``dom``.

        ``origin`` names what produced ``dom`` (the previous part of a
        composition), for messages; ``None`` means the enclosing signature.
        """
        if isinstance(e, A.Ref):
            return self.elab_ref(e, dom, scope, origin)
        if isinstance(e, A.Then):
            parts: list[Diagram] = []
            current = dom
            prev = origin
            for p in e.parts:
                d = self.elab(p, current, scope, prev)
                parts.append(d)
                current = d.cod
                prev = (_label(p), p.span)
            return _compose(parts)
        if isinstance(e, A.Product):
            return self.elab_product(e, dom, scope, origin)
        if isinstance(e, A.Pair):
            n = len(e.parts)
            copies = self.copy_n(dom, n, e.span)
            branches = [self.elab(p, dom, scope, origin) for p in e.parts]
            return _compose([copies, _tensor(branches)])
        if isinstance(e, A.Ascribe):
            a, b = self.type(e.dom, scope), self.type(e.cod, scope)
            self.expect(dom, a, "the ascription takes", e.span, origin, scope, _label(e.expr))
            d = self.elab(e.expr, a, scope, origin)

            def fail() -> NoReturn:
                self.error("E0303", f"this ends in {_show_ty(d.cod.subst(scope.infer.solution()))}, but the ascription says {_show_ty(b)}",
                           e.span)

            scope.infer.unify_ty(d.cod, b, fail)
            return Diagram(dom, b, d.layers)
        if isinstance(e, A.Repeat):
            return self.elab_repeat(e, dom, scope, origin)
        if isinstance(e, A.Inv):
            return self.elab_inv(e, dom, scope, origin)
        if isinstance(e, A.Scan):
            return self.elab_scan(e, dom, scope, origin)
        raise AssertionError(e)  # pragma: no cover

    def expect(self, got: Ty, want: Ty, what: str, span: Span | None, origin: tuple[str, Span | None] | None, scope: _Scope,
               name: str | None = None, code: str = "E0303") -> None:
        """Unify the incoming wires ``got`` with what a part takes, ``want``.

        ``what`` says what the part takes (for the message); ``name`` names
        the part, so a mismatch after ``origin`` reads "cannot compose
        `origin` with `name`".
        """

        def fail() -> NoReturn:
            sol = scope.infer.solution()
            shown = _show_ty(got.subst(sol))
            if origin is not None:
                title = f"cannot compose `{origin[0]}` with `{name}`" if name else f"cannot compose `{origin[0]}` with this"
                self.error("E0301", title, _join(origin[1], span),
                           notes=[f"{origin[0]} ends in {shown}", f"{what} {_show_ty(want.subst(sol))}"],
                           help=self.similar(got.subst(sol), name))
            self.error(code, f"{what} {_show_ty(want.subst(sol))}, but it gets {shown}", span,
                       help=self.similar(got.subst(sol), name))

        scope.infer.unify_ty(got, want, fail)

    def similar(self, ty: Ty, name: str | None) -> str | None:
        """A definition that starts in ``ty``, preferring names close to ``name``."""
        if name is None or _has_vars(ty):
            return None
        fits = [n for n, d in {**self.module.imported, **self.module.definitions}.items()
                if n != name and not d.symbols and d.dom == ty]
        if not fits:
            return None
        best = suggest(name, fits) or (fits[0] if len(fits) == 1 else None)
        return f"did you mean `{best}`, which starts in {_show_ty(ty)}?" if best else None

    def copy_n(self, dom: Ty, n: int, span: Span | None) -> Diagram:
        """``n`` copies of ``dom``: copy ; (id ⊗ copy) ; ... (one wire kept whole)."""
        layers = []
        for i in range(n - 1):
            left = Ty(dom.obs * i)
            layers.append(Layer(left, Box("copy", dom, dom @ dom, kind="structural", span=span), Ty()))
        return Diagram(dom, Ty(dom.obs * n), tuple(layers))

    def elab_product(self, e: A.Product, dom: Ty, scope: _Scope, origin: tuple[str, Span | None] | None) -> Diagram:
        arities = [self.arity(p, scope) for p in e.parts]
        known = sum(a for a in arities if a is not None)
        flexible = [i for i, a in enumerate(arities) if a is None]
        rest = len(dom) - known
        if not flexible and rest != 0 or rest < 0 or (len(flexible) > 1 and rest != len(flexible)):
            shown = " ⊗ ".join(f"{_label(p)} ({'?' if a is None else a})" for p, a in zip(e.parts, arities))
            self.error("E0302", f"this product takes {known if not flexible else f'at least {known}'} wire(s), but its input has {len(dom)}",
                       e.span, notes=[f"input: {_show_ty(dom.subst(scope.infer.solution()))}", f"wires taken: {shown}"],
                       help="ascribe a part to say how many wires it takes, e.g. `(id : A ⊗ B -> A ⊗ B)`")
        counts = [a if a is not None else (rest if len(flexible) == 1 else 1) for a in arities]
        out: list[Diagram] = []
        i = 0
        for p, k in zip(e.parts, counts):
            out.append(self.elab(p, dom[i : i + k], scope, origin))
            i += k
        return _tensor(out)

    def elab_repeat(self, e: A.Repeat, dom: Ty, scope: _Scope, origin: tuple[str, Span | None] | None) -> Diagram:
        n = e.count
        if isinstance(n, float) or n < 1 or n > MAX_REPEAT:
            self.error("E0307", f"`repeat {n}` needs a whole number from 1 to {MAX_REPEAT}", e.span)
        d = self.elab(e.expr, dom, scope, origin)

        def fail() -> NoReturn:
            self.error("E0301", f"`repeat` needs a block that ends where it starts, but this one maps {_show_ty(dom)} -> {_show_ty(d.cod.subst(scope.infer.solution()))}",
                       e.span, help="repeat a block of type A -> A")

        scope.infer.unify_ty(d.cod, dom, fail)
        single = d.layers[0].box if len(d.layers) == 1 else None
        name = single.name if single is not None and single.kind == "composite" else "repeat"
        box = Box(name, dom, dom, kind="repeat", args=(("n", int(n)),), body=Diagram(d.dom, dom, d.layers), iso=d.is_iso, span=e.span)
        return box.diagram()

    def elab_inv(self, e: A.Inv, dom: Ty, scope: _Scope, origin: tuple[str, Span | None] | None) -> Diagram:
        d = self.synth(e.expr, scope)
        start = self.inverse_domain(e.expr, dom, scope) if d is None else None
        if start is not None:
            d = self.elab(e.expr, start, scope, origin)
        elif d is None:
            d = self.elab(e.expr, dom, scope, origin)
            self.expect(d.cod, dom, "`inv` of a morphism whose type is not written must end where it starts:",
                        e.span, None, scope)
        else:
            self.expect(dom, d.cod, f"inv({_label(e.expr)}) starts in", e.span, origin, scope, f"inv({_label(e.expr)})")
        if not d.is_iso:
            bad = next(b for b in d.boxes if not b.iso)
            self.error("E0401", "`inv` needs an isomorphism", e.span,
                       notes=[f"`{bad.name}` is not invertible" if bad.name != _label(e.expr) or bad.kind != "composite" else f"`{bad.name}` contains a box that is not invertible"],
                       help="invertible generators: `coupling`, `reverse`, `swap`, `id`, `triv`, and composites of them")
        box = Box("inv", d.cod, d.dom, kind="inv", body=d, iso=True, span=e.span)
        return box.diagram()

    def inverse_domain(self, e: A.Expr, cod: Ty, scope: _Scope) -> Ty | None:
        """Where a bare generator must start for its inverse to take ``cod``."""
        if not isinstance(e, A.Ref) or e.args or e.dims is not None or e.name in scope.morphisms:
            return None
        target = self.target(e, scope)
        if not isinstance(target, Generator) or len(cod) != 2:
            return None
        if target.name == "swap":
            return Ty((cod.obs[1], cod.obs[0]))
        if target.name == "triv":
            bundles = [t for t in {**self.module.imported_objects, **self.module.objects}.values()
                       if len(t) == 1 and t.obs[0].base == "bundle" and t.obs[0].over == cod[:1] and t.obs[0].fiber == cod[1:]]
            for name in self.object_decls:
                ty = self.object(name, None)
                if len(ty) == 1 and ty.obs[0].base == "bundle" and ty.obs[0].over == cod[:1] and ty.obs[0].fiber == cod[1:] and ty not in bundles:
                    bundles.append(ty)
            if len(bundles) == 1:
                return bundles[0]
            if len(bundles) > 1:
                self.error("E0304", f"several bundles have base {_show_ty(cod[:1])} and fiber {_show_ty(cod[1:])}", e.span,
                           help="ascribe it: `inv((triv : E -> B ⊗ F))`")
        return None

    def elab_scan(self, e: A.Scan, dom: Ty, scope: _Scope, origin: tuple[str, Span | None] | None) -> Diagram:
        state = self.type(e.state, scope)
        if not dom.obs or any(ob.base == "bundle" or not ob.shape for ob in dom.obs):
            self.error("E0306", f"`scan` runs over sequences R[T, ...], but gets {_show_ty(dom)}", e.span)
        length = dom.obs[0].shape[0]
        for ob in dom.obs[1:]:
            self.expect(Ty((Ob(ob.base, (ob.shape[0],)),)), Ty((Ob(ob.base, (length,)),)), "all scanned wires share one length:", e.span, origin, scope)
        items = Ty(tuple(Ob(ob.base, ob.shape[1:]) for ob in dom.obs))
        cell = self.elab(e.expr, state @ items, scope, None)
        head = cell.cod[: len(state)]
        self.expect(head, state, f"the cell of `scan[{state}]` must return the state first:", e.span, None, scope)
        ys = cell.cod[len(state):]
        cod = Ty(tuple(Ob(ob.base, (length,) + ob.shape) for ob in ys.obs))
        box = Box("scan", dom, cod, kind="scan", args=(("state", len(state)),), body=cell, span=e.span)
        return box.diagram()

    def synth(self, e: A.Expr, scope: _Scope) -> Diagram | None:
        """Elaborate ``e`` without knowing its input, where its syntax fixes its type."""
        if isinstance(e, A.Ref):
            target = self.target(e, scope)
            if isinstance(target, Generator):
                return None
            if isinstance(target, Definition) and target.is_template:
                return None
            if isinstance(target, Definition):
                return self.instantiate(target, e, None, scope, None)
            return self.elab_ref(e, target.dom, scope, None)
        if isinstance(e, A.Ascribe):
            return self.elab(e, self.type(e.dom, scope), scope, None)
        if isinstance(e, A.Then):
            first = self.synth(e.parts[0], scope)
            if first is None:
                return None
            rest = A.Then(e.parts[1:], e.span) if len(e.parts) > 2 else e.parts[1]
            return _compose([first, self.elab(rest, first.cod, scope, (_label(e.parts[0]), e.parts[0].span))])
        if isinstance(e, A.Product):
            parts = [self.synth(p, scope) for p in e.parts]
            return None if any(p is None for p in parts) else _tensor(parts)  # type: ignore[arg-type]
        if isinstance(e, A.Repeat):
            inner = self.synth(e.expr, scope)
            return None if inner is None else self.elab_repeat(e, inner.dom, scope, None)
        if isinstance(e, A.Inv):
            inner = self.synth(e.expr, scope)
            return None if inner is None else self.elab_inv(e, inner.cod, scope, None)
        if isinstance(e, A.Pair):
            first = self.synth(e.parts[0], scope)
            return None if first is None else self.elab(e, first.dom, scope, None)
        return None

    def elab_ref(self, e: A.Ref, dom: Ty, scope: _Scope, origin: tuple[str, Span | None] | None) -> Diagram:
        target = self.target(e, scope)
        if isinstance(target, Generator):
            return self.generator(target, e, dom, scope, origin)
        if isinstance(target, Definition):
            return self.instantiate(target, e, dom, scope, origin)
        if e.args is not None or e.dims is not None:
            self.error("E0206", f"`{e.name}` is a morphism parameter and takes no arguments", e.span)
        self.expect(dom, target.dom, f"{e.name} starts in", e.span, origin, scope, e.name)
        if isinstance(target, Box):
            return target.diagram()
        return Box(e.name, target.dom, target.cod, kind="composite", body=target, iso=target.is_iso, span=e.span).diagram()

    def instantiate(self, defn: Definition, e: A.Ref, dom: Ty | None, scope: _Scope, origin: tuple[str, Span | None] | None) -> Diagram:
        infer = scope.infer
        env: dict[str, Dim] = {s: infer.fresh() for s in defn.symbols}
        if e.dims is not None:
            if len(e.dims) != len(defn.dim_params):
                self.error("E0206", f"`{defn.name}` takes {len(defn.dim_params)} size argument(s), but {len(e.dims)} given", e.span,
                           notes=[f"`{defn.name}[{', '.join(defn.dim_params)}]`"] if defn.dim_params else [])
            for name, d in zip(defn.dim_params, e.dims):
                value = self.dim(d, scope)
                infer.unify(env[name], value, lambda: self.error("E0305", "size argument does not fit", d.span))
        gdom, gcod = defn.dom.subst(env), defn.cod.subst(env)
        if dom is not None:
            shown = defn.name + (f"[{', '.join(fmt.dim(d) for d in e.dims)}]" if e.dims is not None else "")
            self.expect(dom, gdom, f"{shown} starts in", e.span, origin, scope, defn.name,
                        code="E0305" if e.dims is not None else "E0303")
            if origin is not None and infer.pending:
                infer.retry()
        if defn.is_template:
            return self.apply_template(defn, e, env, gdom, gcod, scope)
        if e.args:
            self.error("E0206", f"`{defn.name}` takes no arguments", e.span,
                       help=f"write `{defn.name}` alone" + (f"; its sizes go in brackets: `{defn.name}[…]`" if defn.dim_params else ""))
        assert defn.body is not None
        body = defn.body.subst(env)
        box = Box(defn.name, gdom, gcod, kind="composite", body=body, iso=body.is_iso, span=e.span,
                  shared=defn.name if defn.kind == "shared" else None)
        return box.diagram()

    def apply_template(self, defn: Definition, e: A.Ref, env: dict[str, Dim], dom: Ty, cod: Ty, scope: _Scope) -> Diagram:
        mparams = [p for p in defn.params if p.cod is not None]
        given = list(e.args or ())
        bound: dict[str, A.Expr] = {}
        for i, a in enumerate(given):
            if a.name is None:
                if i >= len(mparams):
                    self.error("E0206", f"`{defn.name}` takes {len(mparams)} morphism argument(s), but {len(given)} given", a.span)
                key = mparams[i].name
            else:
                key = a.name
                if key not in {p.name for p in mparams}:
                    hint = suggest(key, [p.name for p in mparams])
                    self.error("E0207", f"`{defn.name}` has no parameter `{key}`", a.span, help=f"did you mean `{hint}`?" if hint else None)
            if key in bound:
                self.error("E0206", f"parameter `{key}` is given twice", a.span)
            if not isinstance(a.value, (A.Ref, A.Then, A.Product, A.Pair, A.Ascribe, A.Repeat, A.Inv, A.Scan)):
                self.error("E0208", f"`{key}` must be a morphism", a.span)
            bound[key] = a.value
        missing = [p.name for p in mparams if p.name not in bound]
        if missing:
            self.error("E0206", f"`{defn.name}` needs the morphism argument(s) {', '.join('`' + m + '`' for m in missing)}", e.span,
                       notes=[f"{p.name} : {fmt.typ(p.dom)} -> {fmt.typ(p.cod)}" for p in mparams])
        decl = defn.decl
        assert isinstance(decl, (A.MorphismDecl, A.WiringDecl))
        inner = _Scope(dict(env), {}, scope.infer)
        for s in defn.symbols:
            inner.dims[s] = env[s]
        args: list[tuple[str, Value]] = []
        for p in mparams:
            pd, pc = self.type(p.dom, inner), self.type(p.cod, inner)
            d = self.elab(bound[p.name], pd, scope, None)
            self.expect(d.cod, pc, f"the argument `{p.name}` of `{defn.name}` must end in", bound[p.name].span, None, scope)
            inner.morphisms[p.name] = Diagram(pd, pc, d.layers)
            args.append((p.name, Diagram(pd, pc, d.layers)))
        body = self.body(decl, inner, dom, cod)
        box = Box(defn.name, dom, cod, kind="composite", args=tuple(args), body=body, iso=body.is_iso, span=e.span)
        return box.diagram()

    # -- generators
    def generator(self, g: Generator, e: A.Ref, dom: Ty, scope: _Scope, origin: tuple[str, Span | None] | None) -> Diagram:
        if e.dims is not None:
            self.error("E0206", f"`{g.name}` takes no size arguments in brackets", e.span,
                       help=f"sizes come from the types; give them as keywords, e.g. `{g.name}(features=64)`" if g.arg("features") else None)
        if g.arity is not None and len(dom) != g.arity and g.name not in ("copy", "discard"):
            shown = _show_ty(dom.subst(scope.infer.solution()))
            if origin is not None:
                self.error("E0301", f"cannot compose `{origin[0]}` with `{g.name}`", _join(origin[1], e.span),
                           notes=[f"`{origin[0]}` gives {len(dom)} wire(s): {shown}", f"`{g.name}` takes {g.arity}: {g.doc}"])
            self.error("E0306", f"`{g.name}` takes {g.arity} wire(s), but gets {len(dom)}: {shown}", e.span,
                       notes=[f"`{g.name}`: {g.doc}"])
        args = self.gen_args(g, e.args or (), scope, e.span)
        if g.name == "id":
            return Diagram.id(dom)  # identities are wires, not boxes
        ctx = _RuleCtx(scope.infer, g.name, e.span, dom)
        cod = g.rule(ctx, dom, args)
        for ob in cod.obs:
            self.check_size(tuple(scope.infer.resolve(d) for d in ob.shape), e.span)
        box = Box(g.name, dom, cod, kind="structural" if g.structural else "generator",
                  args=tuple(sorted(args.items())), iso=g.iso, span=e.span)
        return box.diagram()

    def gen_args(self, g: Generator, given: Iterable[A.Arg], scope: _Scope, span: Span | None) -> dict[str, Value]:
        out: dict[str, Value] = {}
        positional = [a for a in g.args]
        varargs = len(g.args) == 1 and g.args[0].kind == "dims"
        collected: list[Dim] = []
        i = 0
        for a in given:
            if a.name is None:
                if varargs:
                    collected.append(self.arg_value(g, g.args[0], a, scope, single=True))  # type: ignore[arg-type]
                    continue
                if i >= len(positional):
                    self.error("E0206", f"`{g.name}` takes {len(positional)} argument(s), but more are given", a.span,
                               notes=[_gen_sig(g)])
                spec = positional[i]
                i += 1
            else:
                spec = g.arg(a.name)  # type: ignore[assignment]
                if spec is None:
                    hint = suggest(a.name, [x.name for x in g.args])
                    self.error("E0207", f"`{g.name}` has no argument `{a.name}`", a.span,
                               notes=[_gen_sig(g)], help=f"did you mean `{hint}`?" if hint else None)
            if spec.name in out or (varargs and collected):
                self.error("E0206", f"argument `{spec.name}` of `{g.name}` is given twice", a.span)
            if varargs:
                collected.append(self.arg_value(g, spec, a, scope))  # type: ignore[arg-type]
                continue
            out[spec.name] = self.arg_value(g, spec, a, scope)
        if varargs:
            out[g.args[0].name] = tuple(collected)
        for spec in g.args:
            if spec.name not in out:
                if spec.required:
                    self.error("E0206", f"`{g.name}` needs the argument `{spec.name}`", span, notes=[_gen_sig(g)],
                               help=f"e.g. `{g.name}({spec.name}=...)`")
                out[spec.name] = spec.default  # type: ignore[assignment]
        return out

    def arg_value(self, g: Generator, spec, a: A.Arg, scope: _Scope, single: bool = False) -> Value:  # noqa: ANN001
        v = a.value
        where = a.span

        def bad(msg: str, help: str | None = None) -> NoReturn:
            self.error("E0208", f"argument `{spec.name}` of `{g.name}` {msg}", where, notes=[_gen_sig(g)], help=help)

        if spec.kind in ("dim", "dims"):
            d = self.value_dim(v, scope, bad)
            if isinstance(d, int) and not (0 < d <= MAX_DIM):
                bad(f"must be a positive size, not {d}")
            return d
        if not isinstance(v, A.Lit):
            bad("must be a literal value" + (" (a number)" if spec.kind in ("int", "float") else ""))
        x = v.value
        if spec.kind == "bool":
            if not isinstance(x, bool):
                bad(f"must be `true` or `false`, not {fmt.lit(x)}")
            return x
        if spec.kind == "str":
            if not isinstance(x, str):
                bad(f"must be a string, not {fmt.lit(x)}", help=f"one of {', '.join(repr(c) for c in spec.choices)}" if spec.choices else None)
            if spec.choices and x not in spec.choices:
                bad(f"must be one of {', '.join(chr(34) + c + chr(34) for c in spec.choices)}, not \"{x}\"")
            return x
        if isinstance(x, bool) or isinstance(x, str):
            bad(f"must be a number, not {fmt.lit(x)}")
        if spec.kind == "int":
            if isinstance(x, float):
                bad(f"must be a whole number, not {x}")
        else:
            x = float(x)
        if spec.low is not None and x < spec.low or spec.high is not None and (x > spec.high or spec.high_open and x >= spec.high):
            rng = f"from {spec.low:g} to {spec.high:g}" + (" (exclusive)" if spec.high_open else "")
            bad(f"must be {rng}, not {x}")
        return x

    def value_dim(self, v: A.Value, scope: _Scope, bad: Callable[..., NoReturn]) -> Dim:
        if isinstance(v, A.Lit):
            if isinstance(v.value, bool) or not isinstance(v.value, int):
                bad(f"must be a whole number, not {fmt.lit(v.value)}")
            return v.value  # type: ignore[return-value]
        if isinstance(v, A.Ref) and v.dims is None and v.args is None:
            if v.name in scope.dims:
                return scope.dims[v.name]
            bad(f"refers to `{v.name}`, which is not a size in scope")
        if isinstance(v, A.VBin):
            left, right = self.value_dim(v.left, scope, bad), self.value_dim(v.right, scope, bad)
            return dims.add(left, right) if v.op == "+" else dims.sub(left, right) if v.op == "-" else dims.mul(left, right)
        bad("must be a size")


def _size_help(box: Box) -> str:
    if box.kind == "generator" and GENERATORS[box.name].arg("features") is not None:
        return f"give it explicitly, e.g. `{box.name}(features=128)`, or ascribe it: `({box.name} : A -> B)`"
    if box.kind == "composite":
        return f"ascribe it: `({box.name} : A -> B)`, or give its sizes in brackets: `{box.name}[...]`"
    return f"ascribe it: `({box.name} : A -> B)`"


def _display_path(p: Path) -> str:
    """A path as users see it: relative to the working directory when inside it."""
    try:
        return str(p.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(p)


def _gen_sig(g: Generator) -> str:
    parts = []
    for a in g.args:
        default = "" if a.required else f"={fmt.lit(a.default)}" if a.default is not None else "=<from types>" if a.kind == "dim" else "=…"
        parts.append(f"{a.name}{default}" if a.kind != "dims" else f"*{a.name}")
    return f"{g.name}({', '.join(parts)})"


def _label(e: A.Expr) -> str:
    if isinstance(e, A.Ref):
        return e.name
    if isinstance(e, A.Ascribe):
        return _label(e.expr)
    if isinstance(e, A.Then):
        return _label(e.parts[-1])
    if isinstance(e, A.Repeat):
        return f"repeat {e.count} {_label(e.expr)}"
    if isinstance(e, A.Inv):
        return f"inv({_label(e.expr)})"
    return {A.Product: "product", A.Pair: "pairing", A.Scan: "scan"}.get(type(e), "expression")


def _compose(parts: list[Diagram]) -> Diagram:
    """Compose parts whose boundaries were unified (they may differ in unsolved sizes)."""
    layers: list[Layer] = []
    for p in parts:
        layers.extend(p.layers)
    return Diagram(parts[0].dom, parts[-1].cod, tuple(layers))


def _tensor(parts: list[Diagram]) -> Diagram:
    return parts[0].tensor(*parts[1:]) if len(parts) > 1 else parts[0]


def _diagram_has_vars(d: Diagram) -> bool:
    return _first_box_with_vars(d) is not None


def _first_box_with_vars(d: Diagram) -> Box | None:
    for _, box in d.walk():
        if _has_vars(box.dom) or _has_vars(box.cod):
            return box
    for layer in d.layers:
        if _has_vars(layer.left) or _has_vars(layer.right):
            return layer.box
    return None


# -- the wiring form ------------------------------------------------------------------


class _Wiring:
    """Elaborates named wires into a diagram.

    The live wires are kept in order; applying a morphism first brings its
    arguments to the end of the list (``swap``), copying a wire that is used
    again later (``copy``).  Unused inputs are discarded; an unused computed
    wire is an error unless its name starts with ``_``.
    """

    def __init__(self, checker: Checker, decl: A.WiringDecl, scope: _Scope, dom: Ty, cod: Ty) -> None:
        self.c = checker
        self.decl = decl
        self.scope = scope
        self.dom = dom
        self.cod = cod
        self.live: list[tuple[str, Ob]] = []  # (wire id, wire type)
        self.layers: list[Layer] = []
        self.uses: dict[str, int] = {}
        self.assigned: set[str] = set()
        self.value_of: dict[str, str] = {}  # wire id -> the wire it is a copy of
        self.types: dict[str, Ty] = {}
        self.parts: dict[str, list[str]] = {}  # variable -> wire ids of its obs
        self.counter = 0

    def run(self) -> Diagram:
        stmts = self.decl.body
        returns = [s for s in stmts if isinstance(s, A.Return)]
        if not returns:
            self.c.error("E0504", f"`{self.decl.name}` has no `return`", self.decl.span,
                         help="end the block with `return <wire>`")
        if len(returns) > 1 or not isinstance(stmts[-1], A.Return):
            extra = returns[1] if len(returns) > 1 else stmts[-1]
            self.c.error("E0504", "`return` must be the last statement, and come once", extra.span)
        for s in stmts:
            for w in (s.values if isinstance(s, A.Return) else (s.value,)):
                self.count(w)
            if isinstance(s, A.Assign):
                self.assigned.update(s.names)
        for p in self.decl.params:
            if p.cod is None:
                ty = self.c.type(p.dom, self.scope)
                self.bind(p.name, ty, p.span, is_input=True)
        for s in stmts[:-1]:
            assert isinstance(s, A.Assign)
            ids = self.eval(s.value)
            self.assign(s, ids)
        ret = returns[0]
        out: list[str] = []
        for w in ret.values:
            out.extend(self.eval(w))
        for wid, _ in list(self.live):
            if wid not in out:
                self.discard(wid)
        # The results are now the last wires, in order.
        got = Ty(tuple(ob for _, ob in self.live))

        def fail() -> NoReturn:
            self.c.error("E0303", f"`{self.decl.name}` is declared to return {_show_ty(self.cod)}, but returns {_show_ty(got.subst(self.scope.infer.solution()))}",
                         ret.span)

        self.scope.infer.unify_ty(got, self.cod, fail)
        return Diagram(self.dom, self.cod, tuple(self.layers))

    # bookkeeping
    def count(self, w: A.WExpr) -> None:
        stack = [w]
        while stack:
            x = stack.pop()
            if isinstance(x, A.Wire):
                self.uses[x.name] = self.uses.get(x.name, 0) + 1
            elif isinstance(x, A.WAdd):
                stack += [x.left, x.right]
            elif isinstance(x, A.WCall):
                stack += [a for a in x.args if isinstance(a, (A.Wire, A.WAdd, A.WCall))]

    def new_id(self) -> str:
        self.counter += 1
        return f"%{self.counter}"

    def bind(self, name: str, ty: Ty, span: Span | None, is_input: bool = False) -> None:
        if name in self.types:
            self.c.error("E0503", f"wire `{name}` is defined twice", span, help="give the new wire its own name")
        ids = []
        for ob in ty.obs:
            wid = self.new_id()
            if is_input:
                self.live.append((wid, ob))
            ids.append(wid)
        self.types[name] = ty
        self.parts[name] = ids
        if not is_input:
            return
        if self.uses.get(name, 0) == 0:
            for wid in ids:
                self.discard(wid)

    def assign(self, s: A.Assign, ids: list[str]) -> None:
        obs = [self.ob(w) for w in ids]
        if len(s.names) == 1:
            groups = [ids]
        elif len(s.names) == len(ids):
            groups = [[w] for w in ids]
        else:
            self.c.error("E0504", f"{len(s.names)} names for {len(ids)} wire(s)", s.span,
                         notes=[f"the right side gives {_show_ty(Ty(tuple(obs)))}"])
        for name, group in zip(s.names, groups):
            if name in self.types:
                self.c.error("E0503", f"wire `{name}` is defined twice", s.span, help="give the new wire its own name")
            self.types[name] = Ty(tuple(self.ob(w) for w in group))
            self.parts[name] = group
            if self.uses.get(name, 0) == 0:
                if not name.startswith("_"):
                    self.c.error("E0502", f"wire `{name}` is computed but never used", s.span,
                                 help=f"use it, or name it `_{name}` to discard it on purpose")
                for w in group:
                    self.discard(w)

    def ob(self, wid: str) -> Ob:
        for w, ob in self.live:
            if w == wid:
                return ob
        raise AssertionError(wid)

    def index(self, wid: str) -> int:
        for i in range(len(self.live) - 1, -1, -1):
            if self.live[i][0] == wid:
                return i
        raise AssertionError(wid)

    def apply(self, box: Box | Diagram, start: int) -> None:
        """Apply a box (or diagram) to the wires from ``start`` to the end."""
        left = Ty(tuple(ob for _, ob in self.live[:start]))
        d = box.diagram() if isinstance(box, Box) else box
        for layer in d.layers:
            self.layers.append(Layer(left @ layer.left, layer.box, layer.right))
        self.live = self.live[:start] + [(self.new_id(), ob) for ob in d.cod.obs]

    def discard(self, wid: str) -> None:
        i = self.index(wid)
        ob = self.live[i][1]
        left = Ty(tuple(o for _, o in self.live[:i]))
        right = Ty(tuple(o for _, o in self.live[i + 1 :]))
        self.layers.append(Layer(left, Box("discard", Ty((ob,)), Ty(), kind="structural"), right))
        del self.live[i]

    def to_end(self, i: int) -> None:
        """Move the wire at position ``i`` to the end with adjacent swaps.

        Passing a copy of the same value needs no box: the two wires carry
        equal values (``copy ; swap = copy``), so only their names trade places.
        """
        while i < len(self.live) - 1:
            a, b = self.live[i], self.live[i + 1]
            twin = a[0] in self.value_of and self.value_of.get(a[0]) == self.value_of.get(b[0])
            if not twin:
                left = Ty(tuple(o for _, o in self.live[:i]))
                right = Ty(tuple(o for _, o in self.live[i + 2 :]))
                self.layers.append(Layer(left, Box("swap", Ty((a[1], b[1])), Ty((b[1], a[1])), kind="structural", iso=True), right))
            self.live[i], self.live[i + 1] = b, a
            i += 1

    def take(self, w: A.Wire) -> list[str]:
        """Bring the wires of variable ``w`` to the end; copy them if used again."""
        name = w.name
        if name not in self.types:
            if name in GENERATORS or name in self.c.decls or name in self.c.module.imported or name in self.scope.morphisms:
                self.c.error("E0501", f"`{name}` is a morphism, not a wire", w.span, help=f"apply it to a wire: `{name}(x)`")
            later = name in self.assigned
            hint = suggest(name, self.types)
            self.c.error("E0501", f"undefined wire `{name}`", w.span,
                         help=f"did you mean `{hint}`?" if hint else ("define it before this line" if later else None))
        self.uses[name] -= 1
        out = []
        for wid in self.parts[name]:
            i = self.index(wid)
            if self.uses[name] > 0:
                ob = self.live[i][1]
                left = Ty(tuple(o for _, o in self.live[:i]))
                right = Ty(tuple(o for _, o in self.live[i + 1 :]))
                self.layers.append(Layer(left, Box("copy", Ty((ob,)), Ty((ob, ob)), kind="structural", span=w.span), right))
                fresh = self.new_id()
                self.value_of[fresh] = self.value_of.setdefault(wid, wid)
                self.live.insert(i + 1, (fresh, ob))
                i += 1
                wid = fresh
            self.to_end(i)
            out.append(wid)
        return out

    def eval(self, w: A.WExpr) -> list[str]:
        """Evaluate a wire expression; its results end up last, in order."""
        if isinstance(w, A.Wire):
            return self.take(w)
        if isinstance(w, A.WAdd):
            a = self.eval(w.left)
            b = self.eval(w.right)
            self.bring(a + b)
            start = len(self.live) - len(a) - len(b)
            dom = Ty(tuple(ob for _, ob in self.live[start:]))
            ref = A.Ref("add", None, None, w.span)
            if len(a) != 1 or len(b) != 1:
                self.c.error("E0306", "`+` adds two single wires", w.span, notes=[f"got {_show_ty(dom)}"])
            d = self.c.elab_ref(ref, dom, self.scope, None)
            self.apply(d, start)
            return [self.live[-1][0]]
        assert isinstance(w, A.WCall)
        wires: list[str] = []
        lits: list[A.Arg] = []
        for a in w.args:
            if isinstance(a, A.Lit):
                lits.append(A.Arg(None, a, a.span))
            elif isinstance(a, A.Arg):
                lits.append(a)
            else:
                wires.extend(self.eval(a))
        self.bring(wires)
        start = len(self.live) - len(wires)
        dom = Ty(tuple(ob for _, ob in self.live[start:]))
        ref = A.Ref(w.name, w.dims, tuple(lits) if lits else None, w.span)
        target = self.c.target(ref, self.scope)
        expected = len(target.dom) if not isinstance(target, Generator) else target.arity
        if expected is not None and expected != len(wires):
            self.c.error("E0504", f"`{w.name}` takes {expected} wire(s), but {len(wires)} given", w.span,
                         notes=[f"given: {_show_ty(dom)}"])
        d = self.c.elab_ref(ref, dom, self.scope, None)
        self.apply(d, start)
        n = len(d.cod)
        return [wid for wid, _ in self.live[len(self.live) - n :]] if n else []

    def bring(self, ids: list[str]) -> None:
        """Make ``ids`` the last wires, in this order (they already are, unless reordered)."""
        tail = [wid for wid, _ in self.live[len(self.live) - len(ids) :]] if ids else []
        if tail == ids:
            return
        for wid in ids:
            self.to_end(self.index(wid))


# -- entry points -------------------------------------------------------------------------


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


#: Boxes the checker types but no lowering implements yet, with what they are.
NOT_LOWERED = {"proj": "bundle projection", "triv": "bundle trivialization"}


def require_lowerable(d: Diagram, entry: str) -> None:
    """Refuse, with E0601, what checks but cannot be compiled yet.

    Bundles, group actions, and the bundle generators are part of the
    language and the IR, but the lowering does not implement them yet.  Sizes
    that size parameters must be known numbers (only free sequence lengths
    may stay symbolic).
    """
    for _, box in d.walk():
        if box.name in NOT_LOWERED and box.kind == "structural":
            raise CatnetError("E0601", f"compiling a {NOT_LOWERED[box.name]} (`{box.name}`) is not supported yet", box.span,
                              notes=[f"in `{entry}`"], help="`catnet check` and `catnet render` accept it; training does not yet")
        for ob in box.dom.obs + box.cod.obs:
            if ob.base == "bundle" or ob.group:
                what = "bundle" if ob.base == "bundle" else f"G-space (under {ob.group})"
                raise CatnetError("E0601", f"compiling a {what} wire `{ob}` is not supported yet", box.span,
                                  notes=[f"`{box.name}` in `{entry}` touches it"])
        for key, value in box.args:
            if key in ("features", "vocab", "size") and value is not None and not isinstance(value, int):
                raise CatnetError("E0304", f"`{box.name}` needs a known {key}, but it is `{dims.show(value)}`", box.span,  # type: ignore[arg-type]
                                  notes=[f"in `{entry}`"], help="give the size a number in the entry's types")
