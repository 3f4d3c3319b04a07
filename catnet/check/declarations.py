"""Declarations: files, imports, objects, sizes and definitions.

The part of the checker that walks a file's declarations, resolves objects
and size expressions, and checks each definition against its signature.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Iterable, NoReturn

from .. import ast as A
from ..ast import KEYWORDS
from .. import dims, fmt, ir
from ..dims import Dim
from ..errors import suggest
from ..ir import Box, Diagram, Ob, Span, Ty
from ..library import BUILTIN, GENERATORS
from .. import syntax
from ..syntax import MAX_WIRES, declaration_starts, parse, parse_stream
from . import incremental
from .infer import MAX_BOXES, MAX_DIM, MAX_ELEMENTS, Infer, Scope, has_vars, show_ty
from .module import Definition, Module
from .wiring import Wiring

#: The declarations that name an object or a definition.
_DEFINES = (A.ObjectDecl, A.BundleDecl, A.MorphismDecl, A.WiringDecl, A.SharedDecl)



class Declarations:
    """Top level of a file: names, imports, objects, definitions (a checker mixin)."""

    # -- top level
    def run(self) -> Module:
        """Check the file: imports, then every object and definition, then `main`."""
        # Files longer than STREAM_BYTES are checked while they are parsed.
        if self.module.syntax is None and len(self.text) > syntax.STREAM_BYTES:
            starts = declaration_starts(self.text)
            kinds = [k for _, k, _ in starts]
            # Imports bring names that a later declaration may use: stream
            # only when they all come first (as they do in practice).
            imports = kinds.count("import")
            if kinds[:imports] == ["import"] * imports:
                return self.run_streaming(starts)
        # An imported file arrives parsed (the import loader read it first);
        # a file checked again after an edit keeps what the edit left alone.
        kept = self.plan
        if kept is not None:
            rest = parse_stream(self.text, self.path, begin=kept.resume)
            parts = [A.Module(tuple(kept.decls), tuple(kept.comments)), *rest]
            tree = A.Module(tuple(d for p in parts for d in p.decls), tuple(c for p in parts for c in p.comments))
        else:
            tree = self.module.syntax or parse(self.text, self.path)
        self.module.syntax = tree
        if not tree.decls:
            self.nothing()
        for decl in tree.decls:
            if isinstance(decl, A.Import):
                self.do_import(decl)
        for decl in tree.decls:
            if isinstance(decl, _DEFINES):
                self.declare(decl)
        if kept is not None:
            incremental.seed(self.module, kept.decls, kept.previous, references)
        # Dependencies first, so that checking a definition never recurses
        # into the one it uses (a chain of N definitions is N flat steps).
        for name in self.dependency_order(tree.decls):
            self.check_name(name)
        return self.finish_module(tree.decls)

    def run_streaming(self, starts: list[tuple[int, str, str | None]]) -> Module:
        """Check a long file while it is parsed, one declaration at a time.

        A declaration is checked as soon as everything it names from this
        file is checked (a cheap scan tells which names the file declares),
        so the first error of a 100,000-line file is found without parsing
        all of it; the rest wait for what they use and are checked in
        dependency order at the end.  For a file that checks, the result is
        the same module as :meth:`run` gives.
        """
        declared = {name for _, kind, name in starts if name and kind not in ("import", "main")}
        decls: list[A.Decl] = []
        comments: list[A.Comment] = []
        waiting: dict[str, list[A.Decl]] = {}  # a name -> declarations that wait for it
        missing: dict[int, set[str]] = {}  # id of a waiting declaration -> the names it waits for
        done: set[str] = set()

        def ready(decl: A.Decl) -> None:
            work = [decl]
            while work:
                d = work.pop()
                name = d.name  # type: ignore[union-attr]
                self.check_name(name)
                done.add(name)
                for other in waiting.pop(name, ()):
                    wait = missing[id(other)]
                    wait.discard(name)
                    if not wait:
                        del missing[id(other)]
                        work.append(other)

        for part in parse_stream(self.text, self.path, [o for o, _, _ in starts]):
            decls.extend(part.decls)
            comments.extend(part.comments)
            for decl in part.decls:
                if isinstance(decl, A.Import):
                    self.do_import(decl)
                    continue
                if not isinstance(decl, _DEFINES):
                    continue
                self.declare(decl)
                wait = {n for n, _ in references(decl) if n in declared and n not in done}
                if not wait:
                    ready(decl)
                    continue
                missing[id(decl)] = wait
                for n in wait:
                    waiting.setdefault(n, []).append(decl)
        if not decls:
            self.nothing()
        self.module.syntax = A.Module(tuple(decls), tuple(comments))
        for name in self.dependency_order([d for d in decls if id(d) in missing]):
            self.check_name(name)
        return self.finish_module(decls)

    def nothing(self) -> NoReturn:
        self.error("E0003", "this file defines nothing", Span(self.path, 1, 1, 1, 1),
                   help="start with `object Image = R[64]` and a `morphism`; see docs/language.md")

    def check_name(self, name: str) -> None:
        """Check the object or definition ``name`` of this file (once)."""
        if name in self.object_decls:
            self.object(name, self.object_decls[name].span)
        else:
            self.definition(name, self.decls[name].span)

    def finish_module(self, decls: Iterable[A.Decl]) -> Module:
        """The entry (`main`) and the listing order, once everything is checked."""
        decls = list(decls)
        entries = [d for d in decls if isinstance(d, A.MainDecl)]
        for extra in entries[1:]:
            self.error("E0202", "a file has one `main`", extra.span, notes=[f"`main {entries[0].name}` comes first"])
        if entries:
            main = entries[0]
            if main.name not in self.module.definitions and main.name not in self.module.imported:
                self.unknown(main.name, main.span, "morphism")
            self.module.entry = main.name
        # Keep declaration order for listing.
        order = [d.name for d in decls if isinstance(d, (A.MorphismDecl, A.WiringDecl, A.SharedDecl))]
        self.module.definitions = {n: self.module.definitions[n] for n in order}
        return self.module

    def declare(self, decl: A.Decl) -> None:
        name = decl.name  # type: ignore[union-attr]
        if name in KEYWORDS:
            self.error("E0202", f"`{name}` is a keyword and cannot name a definition", decl.span,
                       help=f"choose another name, e.g. `{name}_`")
        if name in GENERATORS:
            what = "a built-in generator" if name in BUILTIN else f"a generator of the plugin `{GENERATORS[name].family}`"
            self.error("E0202", f"`{name}` is {what} and cannot be redefined", decl.span,
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
        """Bring in the definitions of an imported file (loaded and checked by ``imports``)."""
        from .imports import import_module  # not at the top: it imports the checker, which imports this module

        mod = import_module(self, decl)  # type: ignore[arg-type]
        for table, src in ((self.module.imported, {**mod.imported, **mod.definitions}),
                           (self.module.imported_objects, {**mod.imported_objects, **mod.objects})):
            # Set operations and update() run in C: a long chain of imports,
            # each bringing all names below it, stays fast.
            for name in sorted(table.keys() & src.keys()):
                if table[name] is not src[name]:  # type: ignore[comparison-overlap]
                    self.error("E0202", f"`{name}` is imported twice from different files", decl.span)
            table.update(src)  # type: ignore[arg-type]

    def dependency_order(self, decls: Iterable[A.Decl]) -> list[str]:
        """This file's objects and definitions, each after those it refers to.

        A depth-first walk with an explicit stack (no recursion, whatever the
        length of a chain); ties keep source order.  A cycle is E0211 at the
        reference that closes it.
        """
        order: list[str] = []
        # What is checked already needs no place in the order.
        done: set[str] = set(self.module.definitions) | set(self.module.objects)
        local = {**self.object_decls, **self.decls}
        for decl in decls:
            root = getattr(decl, "name", None)
            if root not in local or root in done:
                continue
            path: list[str] = [root]
            on_path = {root}
            stack = [iter(references(local[root]))]
            while stack:
                ref = next(stack[-1], None)
                if ref is None:
                    stack.pop()
                    name = path.pop()
                    on_path.discard(name)
                    done.add(name)
                    order.append(name)
                    continue
                name, span = ref
                if name not in local or name in done:
                    continue
                if name in on_path:
                    chain = path[path.index(name):] + [name]
                    if name in self.object_decls:
                        self.error("E0211", f"object `{name}` is defined in terms of itself", self.object_decls[name].span,
                                   notes=[" → ".join(chain)] if len(chain) > 2 else [])
                    self.error("E0211", f"`{name}` is defined in terms of itself ({' → '.join(chain)})", span,
                               help="recursion is not a diagram; use `repeat n` or `scan` for iteration")
                path.append(name)
                on_path.add(name)
                stack.append(iter(references(local[name])))
        return order

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
            return self.object_body(name, decl)
        except dims.SizeTooLarge as e:
            self.error("E0309", f"the sizes of object `{name}` grow too large to work with: {e}", decl.span)
        finally:
            self.in_progress.pop()

    def object_body(self, name: str, decl: A.ObjectDecl | A.BundleDecl) -> Ty:
        """The type an object declaration stands for, recorded in the module."""
        scope = Scope({}, {}, Infer(), new_symbols=True)
        if isinstance(decl, A.BundleDecl):
            fiber = self.type(decl.fiber, scope)
            base = self.type(decl.base, scope)
            ty = Ty((Ob("bundle", self.total_space(name, decl, fiber, base, scope), fiber=fiber, over=base, name=name),))
        else:
            ty = self.type(decl.type, scope)
            if decl.group:
                self.known_group(decl)
            if len(ty) == 1:
                ob = ty.obs[0]
                group, rep = (decl.group, self.wire_rep(decl, ob)) if decl.group else (ob.group, ob.rep)
                ty = Ty((Ob(ob.base, ob.shape, group=group, fiber=ob.fiber, over=ob.over, name=name, rep=rep),))
            elif decl.group:
                self.error("E0308", "a group acts on one wire, not on a product", decl.span)
        self.module.objects[name] = ty
        return ty

    def known_group(self, decl: A.ObjectDecl) -> None:
        """E0320 at ``under G`` when ``G`` names no group catnet knows (``catnet.symmetry.groups``)."""
        from ..symmetry.groups import KNOWN, UnknownGroup, parse  # NumPy only

        assert decl.group is not None
        try:
            parse(decl.group)
        except UnknownGroup as e:
            self.error("E0320", f"`{decl.group}` is not a group catnet knows", self.group_span(decl),
                       notes=[str(e)] if "not a group catnet knows" not in str(e) else [],
                       help=f"the groups are {KNOWN}: e.g. `under C4` for quarter turns of a grid")

    def wire_rep(self, decl: A.ObjectDecl, ob: Ob) -> str | None:
        """The canonical text of the action's representation on ``ob`` (``None``: trivial); E0321 where it does not fit.

        The representation must be one of the group (``catnet.symmetry.actions``),
        the group must act on the wire's shape (a square grid, a set, or
        channels only), and the representation's dimension must be the
        number of channels.  With sizes still symbols, the fit is checked
        where they are known (``check.claims``).
        """
        from ..symmetry.actions import BadRep, action, channels_text, parse_rep

        assert decl.group is not None
        if ob.base != "R":
            self.error("E0321", f"a group acts on real wires R[…], not on {ob.structure()}", decl.span)
        shape = ob.shape
        try:
            if all(isinstance(d, int) for d in shape):
                return channels_text(action(decl.group, decl.rep, shape).rep)  # type: ignore[arg-type]
            return None if decl.rep is None else channels_text(parse_rep(decl.rep, decl.group))
        except BadRep as e:
            self.error("E0321", f"`{decl.name}` cannot carry this action of {decl.group}: {e}", self.action_span(decl),
                       help="`R[c] under G as ρ` needs dim ρ = c; a grid R[h, h, c] takes C4/D4, a set R[n, c] takes S(n); "
                            "see docs/symmetry.md")

    def action_span(self, decl: A.ObjectDecl) -> Span | None:
        """The span of ``under G [as ρ]`` in an object declaration (the declaration's when the text is not at hand)."""
        span = decl.span
        if span is None or not self.text or span.end <= span.start:
            return span
        at = self.text.rfind("under", span.start, span.end)
        if at < 0:
            return span
        line = self.text.count("\n", 0, at) + 1
        column = at - (self.text.rfind("\n", 0, at) + 1) + 1
        return Span(span.file, line, column, span.end_line, span.end_column, at, span.end)

    def group_span(self, decl: A.ObjectDecl) -> Span | None:
        """The span of the group's name in ``… under G`` (the declaration's when the text is not at hand)."""
        span = decl.span
        if span is None or not self.text or span.end <= span.start:
            return span
        text = self.text[span.start : span.end]
        at = text.rfind(str(decl.group))
        if at < 0:
            return span
        start = span.start + at
        line = self.text.count("\n", 0, start) + 1
        column = start - (self.text.rfind("\n", 0, start) + 1) + 1
        return Span(span.file, line, column, line, column + len(str(decl.group)), start, start + len(str(decl.group)))

    def total_space(self, name: str, decl: A.BundleDecl, fiber: Ty, base: Ty, scope: Scope) -> tuple[Dim, ...]:
        """The shape of a bundle's points: its ``in R[n]``, or base and fiber side by side.

        A bundle whose base and fiber are each one real vector ``R[k]`` of a
        known size can be trivialized at run time: its points are vectors of
        the total space, at most ``dim B + dim F`` long (a shorter total space
        is padded inside the trivialization).  Other bundles have no total
        space (``()``): they check and draw, and compiling them is E0601.
        """
        def vector(ty: Ty) -> int | None:
            if len(ty) != 1 or ty.obs[0].base != "R" or len(ty.obs[0].shape) != 1:
                return None
            k = ty.obs[0].shape[0]
            return k if isinstance(k, int) else None

        kb, kf = vector(base), vector(fiber)
        if decl.total is None:
            return (kb + kf,) if kb is not None and kf is not None else ()
        total = self.type(decl.total, scope)
        n = vector(total)
        span = getattr(decl.total, "span", None) or decl.span
        if n is None:
            self.error("E0318", f"the total space of bundle `{name}` must be one real vector R[n], not {show_ty(total)}", span,
                       help="write the points of the bundle as vectors, e.g. `in R[3]` for points in space")
        if kb is None or kf is None:
            what = "base" if kb is None else "fiber"
            self.error("E0318", f"bundle `{name}` has a total space, so its {what} must be one real vector R[k], "
                       f"not {show_ty(base if kb is None else fiber)}", span,
                       help="a trivialization maps R[n] onto R[dim B] ⊗ R[dim F]: flatten the base and the fiber")
        assert kb is not None and kf is not None and n is not None
        if n > kb + kf:
            self.error("E0318", f"bundle `{name}` lives in R[{n}], which a trivialization onto its base and fiber "
                       f"(R[{kb}] ⊗ R[{kf}], {kb + kf} numbers) cannot reach", span,
                       notes=[f"a trivialization E ≅ B ⊗ F is invertible, so dim E ≤ dim B + dim F = {kb + kf}"],
                       help=f"give the fiber at least {n - kb} dimensions, or the base more")
        return (n,)

    def type(self, t: A.TypeExpr, scope: Scope) -> Ty:
        if isinstance(t, A.TUnit):
            return Ty()
        if isinstance(t, A.TSpace):
            shape = tuple(self.dim(d, scope) for d in t.shape)
            self.check_size(shape, t.span)
            return Ty((Ob(t.base, shape),))
        if isinstance(t, A.TProduct):
            out = Ty(tuple(o for f in t.factors for o in self.type(f, scope).obs))
            if len(out) > MAX_WIRES:
                self.error("E0310", f"a product of {len(out):,} wires (the limit is {MAX_WIRES:,})", t.span,
                           help="a wire can carry a whole axis: use one R[n, ...] instead of n separate wires")
            return out
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

    def dim(self, d: A.DimExpr, scope: Scope) -> Dim:
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
        try:
            out = dims.add(left, right) if d.op == "+" else dims.sub(left, right) if d.op == "-" else dims.mul(left, right)
        except dims.SizeTooLarge as e:
            self.error("E0309", f"this size is too large to work with: {e}", d.span,
                       help="write the size as a number, or name a smaller expression with its own size parameter")
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
        except dims.SizeTooLarge as e:
            self.error("E0309", f"the sizes in `{name}` grow too large to work with: {e}", getattr(decl, "name_span", None) or decl.span,
                       help="sizes are kept as polynomials in the size symbols; give some of them as numbers")
        finally:
            self.in_progress.pop()
        self.module.definitions[name] = defn
        return defn

    def signature(self, decl: A.MorphismDecl | A.WiringDecl, scope: Scope) -> tuple[Ty, Ty]:
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
        seen: set[str] = set()
        for n in decl.dim_params:
            if n in seen:
                self.error("E0202", f"size parameter `{n}` is declared twice", decl.span)
            seen.add(n)
        if isinstance(decl, A.SharedDecl):
            return self.check_shared(decl, infer)
        for p in decl.params:
            if p.name in seen:
                self.error("E0202", f"parameter `{p.name}` is declared twice", p.span)
            seen.add(p.name)
            if isinstance(decl, A.MorphismDecl) and p.cod is None:
                self.error("E0208", f"`{p.name} : {fmt.typ(p.dom)}` names a wire, but `{decl.name}` is point-free", p.span,
                           help=f"write the wiring form `morphism {decl.name}({p.name} : {fmt.typ(p.dom)}) -> B {{ ... }}`, "
                                "or give a morphism parameter its type `A -> B`")
        scope = Scope({n: dims.sym(n) for n in decl.dim_params}, {}, infer, symbols=list(decl.dim_params))
        dom, cod = self.signature(decl, scope)
        for p in decl.params:
            if p.cod is not None:
                pd, pc = self.type(p.dom, scope), self.type(p.cod, scope)
                scope.morphisms[p.name] = Box(p.name, pd, pc, kind="composite", span=p.span)
        body = self.body(decl, scope, dom, cod)
        body = self.finish(body, infer, decl.span)
        self.check_expanded(decl, body)
        if decl.claim is not None:
            self.prove_claim(decl, body)
        template = any(p.cod is not None for p in decl.params)
        return Definition(decl.name, "morphism", dom, cod, tuple(scope.symbols), decl.dim_params, decl.params,
                          None if template else body, decl, self.module, decl.name_span or decl.span)

    def prove_claim(self, decl: A.MorphismDecl | A.WiringDecl, body: Diagram) -> None:
        """E0320 for a claim about an unknown group; E0323 where the body does not meet it (``check.claims``)."""
        from ..symmetry.groups import KNOWN, UnknownGroup, parse
        from .claims import prove

        claim = decl.claim
        assert claim is not None
        try:
            parse(claim.group)
        except UnknownGroup as e:
            self.error("E0320", f"`{claim.group}` is not a group catnet knows", claim.span,
                       notes=[str(e)] if "not a group catnet knows" not in str(e) else [],
                       help=f"the groups are {KNOWN}: e.g. `equivariant under C4` for quarter turns of a grid")
        prove(decl.name, claim.kind, claim.group, body, getattr(decl.body, "span", None) or decl.span, claim.span,
              self.claim_of)

    def claim_of(self, name: str) -> tuple[str, str] | None:
        """The claim ``(kind, group)`` of the checked definition ``name`` (this module's or imported), if any."""
        d = self.module.definitions.get(name) or self.module.imported.get(name)
        claim = getattr(d.decl, "claim", None) if d is not None else None
        return (claim.kind, claim.group) if claim is not None else None

    def check_shared(self, decl: A.SharedDecl, infer: Infer) -> Definition:
        """A shared instance: one parameter set, generic in the sizes ``decl.dim_params``.

        Like a generic definition, each use instantiates the declared sizes
        afresh; unlike one, every use is the same weights, so no parameter
        may have a shape that depends on them (E0316).
        """
        scope = Scope({n: dims.sym(n) for n in decl.dim_params}, {}, infer, symbols=list(decl.dim_params))
        head = decl.name + (f"[{', '.join(decl.dim_params)}]" if decl.dim_params else "")
        body = self.synth(decl.expr, scope)
        if body is None:
            self.error("E0304", f"cannot infer the type of the shared instance `{decl.name}`", decl.expr.span,
                       help=f"ascribe it: `shared {head} = (…  : A -> B)`, or share a named morphism")
        body = self.finish(body, infer, decl.expr.span)
        self.check_expanded(decl, body)
        if decl.dim_params:
            self.check_parameters_fixed(decl, body)
        # Types in the expression introduce no sizes of their own: the
        # declared ones are the only symbols of the instance.
        return Definition(decl.name, "shared", body.dom, body.cod, decl.dim_params, decl.dim_params, (),
                          body, decl, self.module, decl.span)

    def check_parameters_fixed(self, decl: A.SharedDecl, body: Diagram) -> None:
        """E0316 when a parameter of the shared instance ``decl`` has a shape that uses its declared sizes.

        Every generator with parameters is counted with its library ``count``
        rule under a ``size`` that refuses symbols (after checking, the only
        symbols of a shared body are its declared sizes).  Each nested body
        is visited once, and the error points at the part of the shared
        expression that holds the generator.
        """
        for layer in body.layers:
            found = _symbolic_parameter(layer.box)
            if found is None:
                continue
            box, size = found
            where = "" if box is layer.box else f" (in `{layer.box.name}`)"
            used = ", ".join(f"`{s}`" for s in sorted(dims.symbols(size)))
            self.error("E0316", f"the parameters of the shared instance `{decl.name}` depend on its size {used}",
                       layer.box.span or decl.expr.span,
                       notes=[(f"`{box.name}`{where} maps {show_ty(box.dom)} -> {show_ty(box.cod)}, "
                               f"so the shape of its parameters uses {dims.show(size)}"),
                              f"`{decl.name}` is one parameter set for every {used}, so its parameters need one shape"],
                       help="sizes that a weight's shape uses must be numbers: write them in the types, "
                            f"or declare one shared instance per size without `[{', '.join(decl.dim_params)}]`")

    def check_expanded(self, decl: A.MorphismDecl | A.WiringDecl | A.SharedDecl, body: Diagram) -> None:
        """E0310 when opening every definition in ``body`` gives more than MAX_BOXES boxes."""
        n = body.expanded_size()
        if n > MAX_BOXES:
            biggest = max((l.box for l in body.layers if l.box.body is not None),
                          key=lambda b: b.body.expanded_size(), default=None)  # type: ignore[union-attr]
            notes = [f"`{biggest.name}` alone opens to {biggest.body.expanded_size():,} boxes"] if biggest is not None and biggest.body is not None else []
            self.error("E0310", f"`{decl.name}` opens to {n:,} boxes (the limit is {MAX_BOXES:,})",
                       getattr(decl, "name_span", None) or decl.span, notes=notes,
                       help="each use of a definition is a fresh copy of its boxes; share one with `shared`, "
                            "or use `repeat n`, which is built once")

    def body(self, decl: A.MorphismDecl | A.WiringDecl, scope: Scope, dom: Ty, cod: Ty) -> Diagram:
        if isinstance(decl, A.WiringDecl):
            return Wiring(self, decl, scope, dom, cod).run()
        d = self.elab(decl.body, dom, scope, None)

        def fail() -> NoReturn:
            self.error("E0303", f"`{decl.name}` is declared to end in {show_ty(cod)}, but its body ends in {show_ty(d.cod.subst(scope.infer.solution()))}",
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

    def default_reps(self, d: Diagram, infer: Infer) -> None:
        """Output representations no type decided: ``regular * (c / |G|)``, else E0322 at the box."""
        from ..symmetry.actions import channels_text
        from ..symmetry.groups import parse
        from ..symmetry.reps import regular

        for box in _rep_vars(d):
            for ob in box.cod.obs:
                if not (ob.rep and ir.is_rep_var(ob.rep)) or infer.resolve_rep(ob.rep) != ob.rep:
                    continue
                g = parse(str(ob.group))
                c = infer.resolve(ob.shape[-1])
                if isinstance(c, int) and c % g.order == 0:
                    infer.reps[ob.rep] = channels_text(regular(g) * (c // g.order)) or ""
                    continue
                self.error("E0322", f"cannot infer the representation of `{box.name}`'s output", box.span,
                           notes=[f"`{box.name}` gives {dims.show(c).replace('?', '_')} channels under {g}, "
                                  f"and no declared type says how {g} acts on them"]
                                 + ([f"the default, copies of regular({g}), needs a multiple of {g.order} channels"]
                                    if isinstance(c, int) else []),
                           help="ascribe the output, e.g. `(glinear : A -> B)` with `object B = R[…] under G as …`")

    def finish(self, d: Diagram, infer: Infer, span: Span | None) -> Diagram:
        """Apply the solved sizes; any size still unknown is an error at its box."""
        infer.retry()
        if infer.pending:
            a, b, fail = infer.pending[0]
            fail()
        if infer.rep_counter and len(infer.reps) < infer.rep_counter:
            self.default_reps(d, infer)
        sol = infer.solution()
        out = d.solved(sol)
        # Only a definition that made unification variables can have one
        # left, and only if one of them is not solved to a plain size.
        box = _first_box_with_vars(out) if not _all_solved(infer.counter, sol) else None
        if box is not None or infer.counter and any(dims.is_var(s) for s in out.dom.symbols() | out.cod.symbols()):
            where = box.span if box is not None and box.span is not None else span
            label = f"`{box.name}`" if box is not None else "a wire"
            self.error("E0304", f"cannot infer the size of {label}'s output", where,
                       notes=[f"{label} maps {show_ty(box.dom)} -> {show_ty(box.cod)}" if box else "some size is never fixed"],
                       help=_size_help(box) if box else None)
        return out


def _rep_vars(d: Diagram) -> list[Box]:
    """The generator boxes of ``d`` (not inside other definitions) whose output representation is a variable."""
    out: list[Box] = []
    stack = [d]
    while stack:
        for layer in stack.pop().layers:
            box = layer.box
            if box.kind == "generator" and any(ob.rep and ir.is_rep_var(ob.rep) for ob in box.cod.obs):
                out.append(box)
            elif box.kind in ("repeat", "inv", "scan") and box.body is not None:
                stack.append(box.body)
    return out


def references(decl: A.Decl) -> list[tuple[str, Span | None]]:
    """The names of objects and morphisms a declaration mentions, in source order.

    Names bound by the declaration itself (its size and morphism
    parameters) are left out.  The walk over the syntax tree uses an
    explicit stack, and enters only the fields that can hold a name
    (:data:`_CHILDREN`; sizes never do).
    """
    bound = set(getattr(decl, "dim_params", ()) or ()) | {p.name for p in getattr(decl, "params", ()) or ()}
    out: list[tuple[str, Span | None]] = []
    stack: list[object] = [decl]
    while stack:
        node = stack.pop()
        kind = type(node)
        if kind is A.Ref:  # most nodes of a long body: a name, or a list of parts
            if node.name not in bound:  # type: ignore[attr-defined]
                out.append((node.name, node.span))  # type: ignore[attr-defined]
            if node.args:  # type: ignore[attr-defined]
                stack.extend(reversed(node.args))  # type: ignore[attr-defined]
            continue
        if kind is A.Then or kind is A.Product:
            stack.extend(reversed(node.parts))  # type: ignore[attr-defined]
            continue
        if kind is tuple:
            stack.extend(reversed(node))  # type: ignore[arg-type]
            continue
        if node is None:
            continue
        if kind in _NAMED and node.name not in bound:  # type: ignore[attr-defined]
            out.append((node.name, node.span))  # type: ignore[attr-defined]
        names = _CHILDREN.get(kind)
        if names is None:  # a node this table does not know: all its fields
            names = () if not dataclasses.is_dataclass(node) else tuple(
                f.name for f in dataclasses.fields(node) if f.name not in ("span", "name_span", "name"))
            _CHILDREN[kind] = names
        stack.extend(getattr(node, n) for n in reversed(names))
    return out


#: The nodes that name an object or a morphism.
_NAMED = frozenset({A.Ref, A.WCall, A.TRef})

#: For each syntax node, the fields that may hold a named node (sizes,
#: literals, wires and words cannot).
_CHILDREN: dict[type, tuple[str, ...]] = {
    A.ObjectDecl: ("type",), A.BundleDecl: ("fiber", "base"), A.SharedDecl: ("expr",),
    A.MorphismDecl: ("params", "dom", "cod", "body"), A.WiringDecl: ("params", "cod", "body"),
    A.Param: ("dom", "cod"), A.Import: (), A.MainDecl: (),
    A.TSpace: (), A.TUnit: (), A.TRef: (), A.TSeq: ("item",), A.TProduct: ("factors",),
    A.DNum: (), A.DSym: (), A.DBin: (), A.Lit: (),
    A.Ref: ("args",), A.Arg: ("value",), A.VBin: ("left", "right"),
    A.Then: ("parts",), A.Product: ("parts",), A.Pair: ("parts",), A.Ascribe: ("expr", "dom", "cod"),
    A.Repeat: ("expr",), A.Inv: ("expr",), A.Scan: ("state", "expr"),
    A.Wire: (), A.WNum: (), A.WBin: ("left", "right"), A.WNeg: ("operand",), A.WCall: ("args",),
    A.Assign: ("value",), A.Return: ("values",),
}


class _Symbolic(Exception):
    """A parameter size that is not a number (raised by a ``count`` rule's ``size``)."""

    def __init__(self, size: Dim) -> None:
        super().__init__(dims.show(size))
        self.size = size


def _numeric(d: Dim) -> int:
    if not isinstance(d, int):
        raise _Symbolic(d)
    return d


def _symbolic_parameter(root: Box) -> tuple[Box, Dim] | None:
    """The first generator in ``root`` (at any depth) whose parameter count needs a symbolic size.

    An explicit stack, each nested body visited once (by identity); boxes of
    other shared instances are not entered (their own declarations check them).
    """
    stack = [root]
    seen: set[int] = set()
    while stack:
        box = stack.pop()
        if box.shared is not None:
            continue
        g = GENERATORS.get(box.name)
        if box.kind == "generator" and g is not None and g.params and g.count is not None:
            try:
                g.count(box, _numeric)
            except _Symbolic as e:
                return box, e.size
        if box.body is not None and id(box.body) not in seen:
            seen.add(id(box.body))
            stack.extend(l.box for l in reversed(box.body.layers))
    return None


def _size_help(box: Box) -> str:
    if box.kind == "generator" and GENERATORS[box.name].arg("features") is not None:
        return f"give it explicitly, e.g. `{box.name}(features=128)`, or ascribe it: `({box.name} : A -> B)`"
    if box.kind == "composite":
        return f"ascribe it: `({box.name} : A -> B)`, or give its sizes in brackets: `{box.name}[...]`"
    return f"ascribe it: `({box.name} : A -> B)`"


def _display_path(p: Path) -> str:
    """A path as users see it: relative to the working directory when inside it."""
    from .imports import display_path

    return display_path(str(p))


def _all_solved(count: int, solution: dict[str, Dim]) -> bool:
    """Whether the unification variables ``?1`` … ``?count`` all have solutions free of variables."""
    for i in range(1, count + 1):
        v = solution.get(f"?{i}")
        if v is None or (not isinstance(v, int) and any(dims.is_var(s) for s in dims.symbols(v))):
            return False
    return True


def _first_box_with_vars(d: Diagram) -> Box | None:
    """The first box (at any depth) whose sizes are still unification variables.

    Only parts whose symbol hint mentions a variable are visited, so a
    definition that uses checked definitions costs its own size, not theirs.
    """
    stack: list[Diagram] = [d]
    while stack:
        diagram = stack.pop()
        if not any(dims.is_var(s) for s in diagram.symbol_hint()):
            continue
        nested: list[Diagram] = []
        for layer in diagram.layers:
            box = layer.box
            if has_vars(box.dom) or has_vars(box.cod):
                return box
            if box.inst is not None and any(dims.is_var(s) for _, v in box.inst[1] for s in dims.symbols(v)):
                return box
            if any(dims.is_var(s) for s in box.symbol_hint()):
                nested.extend(box.children())
            if has_vars(layer.left) or has_vars(layer.right):
                return layer.box
        stack.extend(reversed(nested))
    return None
