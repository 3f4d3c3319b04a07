"""Point-free expressions: composition, products, pairing, ascription, repeat, inv, scan.

Inference runs forward: an expression is elaborated on the wires it gets,
and names what produced them (``origin``) so that a mismatch reads
"cannot compose `f` with `g`".
"""

from __future__ import annotations

from typing import Callable, NoReturn

from .. import ast as A
from .. import fmt
from ..dims import Dim
from ..errors import suggest
from ..ir import Box, Diagram, Layer, Ob, Span, Ty, Value
from ..library import COARITY, GENERATORS, Generator
from ..syntax import MAX_WIRES
from .infer import MAX_REPEAT, Scope, has_vars, show_ty
from .module import Definition


class Expressions:
    """Elaboration of expressions on known input wires (a checker mixin)."""

    # -- expressions
    def arity(self, e: A.Expr, scope: Scope) -> int | None:
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

    def coarity(self, e: A.Expr, scope: Scope) -> int | None:
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

    def target(self, ref: A.Ref, scope: Scope) -> Generator | Definition | Box | Diagram:
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

    def elab(self, e: A.Expr, dom: Ty, scope: Scope, origin: tuple[str, Span | None] | None) -> Diagram:
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
                prev = (label(p), p.span)
            return compose(parts)
        if isinstance(e, A.Product):
            return self.elab_product(e, dom, scope, origin)
        if isinstance(e, A.Pair):
            n = len(e.parts)
            self.check_width(n * len(dom), e.span, "pairing")
            copies = self.copy_n(dom, n, e.span)
            branches = [self.elab(p, dom, scope, origin) for p in e.parts]
            return compose([copies, tensor(branches)])
        if isinstance(e, A.Ascribe):
            a, b = self.type(e.dom, scope), self.type(e.cod, scope)
            self.expect(dom, a, "the ascription takes", e.span, origin, scope, label(e.expr))
            d = self.elab(e.expr, a, scope, origin)

            def fail() -> NoReturn:
                self.error("E0303", f"this ends in {show_ty(d.cod.subst(scope.infer.solution()))}, but the ascription says {show_ty(b)}",
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

    def expect(self, got: Ty, want: Ty, what: str, span: Span | None, origin: tuple[str, Span | None] | None, scope: Scope,
               name: str | None = None, code: str = "E0303") -> None:
        """Unify the incoming wires ``got`` with what a part takes, ``want``.

        ``what`` says what the part takes (for the message); ``name`` names
        the part, so a mismatch after ``origin`` reads "cannot compose
        `origin` with `name`".
        """

        def fail() -> NoReturn:
            sol = scope.infer.solution()
            shown = show_ty(got.subst(sol))
            if origin is not None:
                title = f"cannot compose `{origin[0]}` with `{name}`" if name else f"cannot compose `{origin[0]}` with this"
                self.error("E0301", title, join_spans(origin[1], span),
                           notes=[f"{origin[0]} ends in {shown}", f"{what} {show_ty(want.subst(sol))}"],
                           help=self.similar(got.subst(sol), name))
            self.error(code, f"{what} {show_ty(want.subst(sol))}, but it gets {shown}", span,
                       help=self.similar(got.subst(sol), name))

        scope.infer.unify_ty(got, want, fail)

    def similar(self, ty: Ty, name: str | None) -> str | None:
        """A definition that starts in ``ty``, preferring names close to ``name``."""
        if name is None or has_vars(ty):
            return None
        fits = [n for n, d in {**self.module.imported, **self.module.definitions}.items()
                if n != name and not d.symbols and d.dom == ty]
        if not fits:
            return None
        best = suggest(name, fits) or (fits[0] if len(fits) == 1 else None)
        return f"did you mean `{best}`, which starts in {show_ty(ty)}?" if best else None

    def copy_n(self, dom: Ty, n: int, span: Span | None) -> Diagram:
        """``n`` copies of ``dom``: copy ; (id ⊗ copy) ; ... (one wire kept whole)."""
        copies = Ty(dom.obs * n)
        copy = Box("copy", dom, dom @ dom, kind="structural", span=span)
        # the wires left of each copy are a view into the n copies: linear in n
        layers = [Layer(copies[: len(dom) * i], copy, Ty()) for i in range(n - 1)]
        return Diagram(dom, copies, tuple(layers))

    def check_width(self, wires: int, span: Span | None, what: str) -> None:
        """E0310 for a product or pairing of more than MAX_WIRES wires."""
        if wires > MAX_WIRES:
            self.error("E0310", f"this {what} makes {wires:,} parallel wires (the limit is {MAX_WIRES:,})", span,
                       help="a wire can carry a whole axis: use one R[n, ...] wire instead of n separate ones")

    def elab_product(self, e: A.Product, dom: Ty, scope: Scope, origin: tuple[str, Span | None] | None) -> Diagram:
        self.check_width(len(e.parts), e.span, "product")
        arities = [self.arity(p, scope) for p in e.parts]
        known = sum(a for a in arities if a is not None)
        flexible = [i for i, a in enumerate(arities) if a is None]
        rest = len(dom) - known
        if not flexible and rest != 0 or rest < 0 or (len(flexible) > 1 and rest != len(flexible)):
            shown = " ⊗ ".join(f"{label(p)} ({'?' if a is None else a})" for p, a in zip(e.parts, arities))
            self.error("E0302", f"this product takes {known if not flexible else f'at least {known}'} wire(s), but its input has {len(dom)}",
                       e.span, notes=[f"input: {show_ty(dom.subst(scope.infer.solution()))}", f"wires taken: {shown}"],
                       help="ascribe a part to say how many wires it takes, e.g. `(id : A ⊗ B -> A ⊗ B)`")
        counts = [a if a is not None else (rest if len(flexible) == 1 else 1) for a in arities]
        out: list[Diagram] = []
        i = 0
        for p, k in zip(e.parts, counts):
            out.append(self.elab(p, dom[i : i + k], scope, origin))
            i += k
        return tensor(out)

    def elab_repeat(self, e: A.Repeat, dom: Ty, scope: Scope, origin: tuple[str, Span | None] | None) -> Diagram:
        n = e.count
        if isinstance(n, float) or n < 1 or n > MAX_REPEAT:
            self.error("E0307", f"`repeat {n}` needs a whole number from 1 to {MAX_REPEAT}", e.span)
        d = self.elab(e.expr, dom, scope, origin)

        def fail() -> NoReturn:
            self.error("E0301", f"`repeat` needs a block that ends where it starts, but this one maps {show_ty(dom)} -> {show_ty(d.cod.subst(scope.infer.solution()))}",
                       e.span, help="repeat a block of type A -> A")

        scope.infer.unify_ty(d.cod, dom, fail)
        single = d.layers[0].box if len(d.layers) == 1 else None
        name = single.name if single is not None and single.kind == "composite" else "repeat"
        box = Box(name, dom, dom, kind="repeat", args=(("n", int(n)),), body=Diagram(d.dom, dom, d.layers), iso=d.is_iso, span=e.span)
        return box.diagram()

    def elab_inv(self, e: A.Inv, dom: Ty, scope: Scope, origin: tuple[str, Span | None] | None) -> Diagram:
        d = self.synth(e.expr, scope)
        start = self.inverse_domain(e.expr, dom, scope) if d is None else None
        if start is not None:
            d = self.elab(e.expr, start, scope, origin)
        elif d is None:
            d = self.elab(e.expr, dom, scope, origin)
            self.expect(d.cod, dom, "`inv` of a morphism whose type is not written must end where it starts:",
                        e.span, None, scope)
        else:
            self.expect(dom, d.cod, f"inv({label(e.expr)}) starts in", e.span, origin, scope, f"inv({label(e.expr)})")
        if not d.is_iso:
            bad = next(b for b in d.boxes if not b.iso)
            self.error("E0401", "`inv` needs an isomorphism", e.span,
                       notes=[f"`{bad.name}` is not invertible" if bad.name != label(e.expr) or bad.kind != "composite" else f"`{bad.name}` contains a box that is not invertible"],
                       help="invertible generators: " + ", ".join(f"`{n}`" for n, g in GENERATORS.items() if g.iso)
                       + ", and composites of them")
        box = Box("inv", d.cod, d.dom, kind="inv", body=d, iso=True, span=e.span)
        return box.diagram()

    def inverse_domain(self, e: A.Expr, cod: Ty, scope: Scope) -> Ty | None:
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
                self.error("E0304", f"several bundles have base {show_ty(cod[:1])} and fiber {show_ty(cod[1:])}", e.span,
                           help="ascribe it: `inv((triv : E -> B ⊗ F))`")
        return None

    def elab_scan(self, e: A.Scan, dom: Ty, scope: Scope, origin: tuple[str, Span | None] | None) -> Diagram:
        state = self.type(e.state, scope)
        if not dom.obs or any(ob.base == "bundle" or not ob.shape for ob in dom.obs):
            self.error("E0306", f"`scan` runs over sequences R[T, ...], but gets {show_ty(dom)}", e.span)
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

    def synth(self, e: A.Expr, scope: Scope) -> Diagram | None:
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
            return compose([first, self.elab(rest, first.cod, scope, (label(e.parts[0]), e.parts[0].span))])
        if isinstance(e, A.Product):
            parts = [self.synth(p, scope) for p in e.parts]
            return None if any(p is None for p in parts) else tensor(parts)  # type: ignore[arg-type]
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

    def elab_ref(self, e: A.Ref, dom: Ty, scope: Scope, origin: tuple[str, Span | None] | None) -> Diagram:
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

    def shared_use(self, v: A.Value, scope: Scope, bad: Callable[..., NoReturn]) -> Diagram:
        """The value of a ``morphism`` argument: the use of the shared instance it names.

        A one-box diagram whose box is the instance (``shared`` set, the
        checked body inside), as the instance is declared, in its own sizes:
        a generator that takes it uses the instance's parameters, which do
        not depend on those sizes.  Anything but the bare name of a
        ``shared`` instance in scope is refused with ``bad`` (E0208), an
        unknown name is E0201.
        """
        example = "e.g. `transposed(wte)` after `shared wte[T] = (embed(vocab=…, features=…) : Z[T] -> R[T, …])`"
        if not isinstance(v, A.Ref) or v.dims is not None or v.args is not None:
            bad(f"must be the name of a shared instance, {example}")
        name = v.name
        if name in scope.morphisms:
            bad(f"names the morphism parameter `{name}`, but it must name a shared instance",
                help="a morphism parameter is a fresh instance at each use; declare a `shared` instance at the top level")
        if name in self.decls:
            defn = self.definition(name, v.span)
        elif name in self.module.imported:
            defn = self.module.imported[name]
        elif name in GENERATORS:
            bad(f"names the generator `{name}`, but it must name a shared instance",
                help=f"declare one instance and name it: `shared my_{name} = ({name} : A -> B)`")
        elif name in scope.dims or name in self.object_decls or name in self.module.imported_objects:
            bad(f"names the {'size' if name in scope.dims else 'object'} `{name}`, but it must name a shared instance", help=example)
        else:
            shared = [n for n, d in {**self.module.imported, **self.module.definitions}.items() if d.kind == "shared"]
            shared += [n for n, d in self.decls.items() if isinstance(d, A.SharedDecl) and n not in shared]
            self.unknown(name, v.span, "shared instance", shared)
        if defn.kind != "shared":
            bad(f"names `{name}`, which is a morphism, not a shared instance",
                help=f"every use of a morphism has fresh weights; declare one instance, `shared {name}_s = {name}`, "
                     f"and name `{name}_s` wherever the weights are the same"
                     + (" (ascribe it, or declare the sizes it is generic in: `shared …[T] = …`)" if defn.symbols else ""))
        assert defn.body is not None
        box = Box(name, defn.dom, defn.cod, kind="composite", body=defn.body, iso=defn.body.is_iso, span=v.span, shared=name)
        return box.diagram()

    def network_use(self, v: A.Value, scope: Scope, bad: Callable[..., NoReturn]) -> Diagram:
        """The value of a ``network`` argument (``coupling(conditioner=net)``): the use of one morphism.

        A one-box diagram, as ``net`` would be used in a body: a morphism
        definition is a fresh instance (its parameters belong to the box
        that takes it, one set per occurrence, Para), a generic one with
        fresh sizes for the generator's rule to fix (``net[4]`` gives them);
        a ``shared`` instance is its use (its parameters counted once); a
        morphism parameter of a template is what the template was given.
        ``(net : A -> B)`` ascribes the type.  Anything else is E0208; a
        template (it needs morphism arguments) E0319; an unknown name E0201.
        """
        example = "e.g. `morphism net : R[2] -> R[4] = dense(features=64) ; relu ; dense`, then `coupling(conditioner=net)`"
        ascribed = v if isinstance(v, A.Ascribe) and isinstance(v.expr, A.Ref) else None
        ref = ascribed.expr if ascribed is not None else v
        if not isinstance(ref, A.Ref) or ref.args is not None:
            bad("must name a morphism of the file", help="define the network as a morphism and give its name, " + example)
        name = ref.name
        if name in scope.morphisms:
            if ref.dims is not None:
                self.error("E0206", f"`{name}` is a morphism parameter and takes no arguments", ref.span)
            target = scope.morphisms[name]
            use = target.diagram() if isinstance(target, Box) else Box(
                name, target.dom, target.cod, kind="composite", body=target, iso=target.is_iso, span=ref.span).diagram()
        elif name in self.decls or name in self.module.imported:
            defn = self.definition(name, ref.span) if name in self.decls else self.module.imported[name]
            if defn.is_template:
                self.error("E0319", f"`{name}` takes morphism arguments, so its name alone is no network", ref.span,
                           help=f"define the network with its arguments given, `morphism {name}_net : A -> B = {name}(…)`, "
                                f"and name `{name}_net`")
            use = self.shared_use(ref, scope, bad) if defn.kind == "shared" else self.instantiate(defn, ref, None, scope, None)
        elif name in GENERATORS:
            bad(f"names the generator `{name}`, but it must name a morphism of the file",
                help=f"define one, e.g. `morphism net : R[2] -> R[4] = {name}`, and name `net`")
        elif name in scope.dims or name in self.object_decls or name in self.module.imported_objects:
            bad(f"names the {'size' if name in scope.dims else 'object'} `{name}`, but it must name a morphism", help=example)
        else:
            self.unknown(name, ref.span, "morphism", [n for n, d in self.decls.items() if isinstance(d, (A.MorphismDecl, A.WiringDecl, A.SharedDecl))])
        if ascribed is not None:
            a, b = self.type(ascribed.dom, scope), self.type(ascribed.cod, scope)

            def fail() -> NoReturn:
                sol = scope.infer.solution()
                self.error("E0303", f"`{name}` maps {show_ty(use.dom.subst(sol))} -> {show_ty(use.cod.subst(sol))}, "
                                    f"but the ascription says {show_ty(a)} -> {show_ty(b)}", ascribed.span)

            scope.infer.unify_ty(use.dom, a, fail)
            scope.infer.unify_ty(use.cod, b, fail)
        return use

    def instantiate(self, defn: Definition, e: A.Ref, dom: Ty | None, scope: Scope, origin: tuple[str, Span | None] | None) -> Diagram:
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
        # The body stays the definition's own until the sizes are solved:
        # `finish` substitutes them once, from the generic body (ir.Box.inst).
        box = Box(defn.name, gdom, gcod, kind="composite", body=defn.body, iso=defn.body.is_iso, span=e.span,
                  shared=defn.name if defn.kind == "shared" else None,
                  inst=(defn.body, tuple(sorted(env.items()))) if env else None)
        return box.diagram()

    def apply_template(self, defn: Definition, e: A.Ref, env: dict[str, Dim], dom: Ty, cod: Ty, scope: Scope) -> Diagram:
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
        inner = Scope(dict(env), {}, scope.infer)
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



def join_spans(a: Span | None, b: Span | None) -> Span | None:
    if a is None or b is None:
        return a or b
    return Span(a.file, a.line, a.column, b.end_line, b.end_column, a.start, b.end)



def label(e: A.Expr) -> str:
    if isinstance(e, A.Ref):
        return e.name
    if isinstance(e, A.Ascribe):
        return label(e.expr)
    if isinstance(e, A.Then):
        return label(e.parts[-1])
    if isinstance(e, A.Repeat):
        return f"repeat {e.count} {label(e.expr)}"
    if isinstance(e, A.Inv):
        return f"inv({label(e.expr)})"
    return {A.Product: "product", A.Pair: "pairing", A.Scan: "scan"}.get(type(e), "expression")


def compose(parts: list[Diagram]) -> Diagram:
    """Compose parts whose boundaries were unified (they may differ in unsolved sizes)."""
    layers: list[Layer] = []
    for p in parts:
        layers.extend(p.layers)
    return Diagram(parts[0].dom, parts[-1].cod, tuple(layers))


def tensor(parts: list[Diagram]) -> Diagram:
    return parts[0].tensor(*parts[1:]) if len(parts) > 1 else parts[0]
