"""Generator calls: arguments checked against the library's signatures, shape rules run."""

from __future__ import annotations

from dataclasses import replace
from typing import Callable, Iterable, NoReturn

from .. import ast as A
from .. import dims, fmt
from ..dims import Dim
from ..errors import suggest
from ..ir import Box, Diagram, Ob, Span, Ty, Value, ground
from ..library import Generator
from ..syntax import MAX_WIRES
from .expressions import join_spans
from .infer import MAX_DIM, Infer, RuleCtx, Scope, show_ty


class Generators:
    """Elaboration of a call to a library generator (a checker mixin)."""

    # -- generators
    def generator(self, g: Generator, e: A.Ref, dom: Ty, scope: Scope, origin: tuple[str, Span | None] | None) -> Diagram:
        if e.dims is not None:
            self.error("E0206", f"`{g.name}` takes no size arguments in brackets", e.span,
                       help=f"sizes come from the types; give them as keywords, e.g. `{g.name}(features=64)`" if g.arg("features") else None)
        if g.arity is not None and len(dom) != g.arity and g.name not in ("copy", "discard"):
            shown = show_ty(dom.subst(scope.infer.solution()))
            if origin is not None:
                self.error("E0301", f"cannot compose `{origin[0]}` with `{g.name}`", join_spans(origin[1], e.span),
                           notes=[f"`{origin[0]}` gives {len(dom)} wire(s): {shown}", f"`{g.name}` takes {g.arity}: {g.doc}"])
            self.error("E0306", f"`{g.name}` takes {g.arity} wire(s), but gets {len(dom)}: {shown}", e.span,
                       notes=[f"`{g.name}`: {g.doc}"])
        args = self.gen_args(g, e.args or (), scope, e.span)
        if g.name == "id":
            return Diagram.id(dom)  # identities are wires, not boxes
        ctx = RuleCtx(scope.infer, g.name, e.span, dom)
        try:
            cod = g.rule(ctx, dom, args)
        except dims.SizeTooLarge as err:
            self.error("E0309", f"the output size of `{g.name}` is too large to work with: {err}", e.span,
                       notes=[f"`{g.name}` gets {show_ty(dom)}"])
        if len(cod) > MAX_WIRES:  # `copy ; copy ; …` doubles the wires each time
            self.check_width(len(cod), e.span, f"`{g.name}`")
        infer = scope.infer
        if not _one_axis(cod):  # else nothing to resolve or to check (the usual wire)
            cod = _resolved(cod, infer, self.check_size, e.span)
        if infer.env and not _one_axis(dom):
            dom = _resolved(dom, infer)
        box = Box(g.name, dom, cod, "structural" if g.structural else "generator", tuple(sorted(args.items())),
                  None, None, g.iso, e.span)
        if g.instance is not None:
            box = self.one_instance(g, box)
        return box.diagram()

    def one_instance(self, g: Generator, box: Box) -> Box:
        """A box whose parameters belong to one instance per model (a bundle's trivialization).

        The library names the instance (``Generator.instance``); the box
        gets it as its ``shared`` name, so the lowering keeps one module and
        ``summary`` counts it once.  The ``triv``s of one bundle must agree
        on their arguments (E0317 at the second).
        """
        key = g.instance(box)  # type: ignore[misc]
        if key is None:
            return box
        if box.name == "triv":
            first = self.trivializations.setdefault(key, box)
            if first is not box and first.args != box.args:
                differ = [k for k, v in box.args if first.kwargs.get(k) != v]
                shown = ", ".join(f"{k}={fmt.lit(box.kwargs[k])} here, {fmt.lit(first.kwargs[k])} there" for k in differ)
                self.error("E0317", f"bundle `{key}` has one trivialization, but this `triv` gives other arguments: {shown}", box.span,
                           notes=[f"the first `triv` of `{key}` is at line {first.span.line if first.span else '?'}: "
                                  + ", ".join(f"{k}={fmt.lit(v)}" for k, v in first.args)],
                           help="every `triv`, `inv(triv)` and `proj` of a bundle is the same map: name it once, "
                                "e.g. `morphism chart : E -> B ⊗ F = triv(charts=16)`, and use `chart` and `inv(chart)`")
        return replace(box, shared=key)

    def gen_args(self, g: Generator, given: Iterable[A.Arg], scope: Scope, span: Span | None) -> dict[str, Value]:
        out: dict[str, Value] = {}
        # A first argument of kind `dims` or `ints` takes every positional
        # argument (`reshape(8, 8, 1)`, `transpose(1, 0)`); the others are
        # then given by keyword.
        varargs = bool(g.args) and g.args[0].kind in ("dims", "ints")
        positional = [a for a in g.args]
        collected: list[Dim] = []
        i = 0
        for a in given:
            if a.name is None:
                if varargs:
                    if g.args[0].name in out:
                        self.error("E0206", f"argument `{g.args[0].name}` of `{g.name}` is given twice", a.span)
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
            if spec.name in out or (varargs and spec is g.args[0] and collected):
                self.error("E0206", f"argument `{spec.name}` of `{g.name}` is given twice", a.span)
            if varargs and spec is g.args[0]:
                collected.append(self.arg_value(g, spec, a, scope))  # type: ignore[arg-type]
                continue
            out[spec.name] = self.arg_value(g, spec, a, scope)
        if varargs and collected:
            out[g.args[0].name] = tuple(collected)
        for spec in g.args:
            if spec.name not in out:
                if spec.required:
                    self.error("E0206", f"`{g.name}` needs the argument `{spec.name}`", span, notes=[_gen_sig(g)],
                               help=f"e.g. `{g.name}({spec.name}=...)`")
                out[spec.name] = spec.default  # type: ignore[assignment]
        return out

    def arg_value(self, g: Generator, spec, a: A.Arg, scope: Scope, single: bool = False) -> Value:  # noqa: ANN001
        v = a.value
        where = a.span

        def bad(msg: str, help: str | None = None) -> NoReturn:
            self.error("E0208", f"argument `{spec.name}` of `{g.name}` {msg}", where, notes=[_gen_sig(g)], help=help)

        if spec.kind in ("dim", "dims"):
            d = self.value_dim(v, scope, bad)
            low = 1 if spec.low is None else int(spec.low)
            if isinstance(d, int) and not (low <= d <= MAX_DIM):
                bad(f"must be a positive size, not {d}" if low == 1 else f"must be a size from {low}, not {d}")
            return d
        if spec.kind == "morphism":
            return self.shared_use(v, scope, bad)
        if spec.kind == "network":
            return self.network_use(v, scope, bad)
        if not isinstance(v, A.Lit):
            bad("must be a literal value" + (" (a number)" if spec.kind in ("int", "float") else ""))
        x = v.value
        if spec.kind == "padding":
            shown = ", ".join(chr(34) + c + chr(34) for c in spec.choices)
            if isinstance(x, str) and x in spec.choices:
                return x
            if isinstance(x, bool) or not isinstance(x, (int, str)):
                bad(f"must be a whole number of cells or one of {shown}, not {fmt.lit(x)}")
            if isinstance(x, str):
                bad(f"must be a whole number of cells or one of {shown}, not \"{x}\"")
            if not 0 <= x <= 1024:
                bad(f"must be from 0 to 1024 cells, not {x}")
            return x
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
        if spec.kind in ("int", "ints"):
            if isinstance(x, float):
                bad(f"must be a whole number, not {x}")
        else:
            x = float(x)
        if spec.low is not None and x < spec.low or spec.high is not None and (x > spec.high or spec.high_open and x >= spec.high):
            rng = f"from {spec.low:g} to {spec.high:g}" + (" (exclusive)" if spec.high_open else "")
            bad(f"must be {rng}, not {x}")
        return x

    def value_dim(self, v: A.Value, scope: Scope, bad: Callable[..., NoReturn]) -> Dim:
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
            try:
                return dims.add(left, right) if v.op == "+" else dims.sub(left, right) if v.op == "-" else dims.mul(left, right)
            except dims.SizeTooLarge as err:
                self.error("E0309", f"this size is too large to work with: {err}", v.span)
        bad("must be a size")




def _one_axis(ty: Ty) -> bool:
    """Whether ``ty`` is one plain wire of one numeric axis of at most MAX_DIM (``R[64]``): nothing in it to resolve
    or check."""
    if ty._len != 1:
        return False
    ob = ty.obs[0]
    return ob.fiber is None and _small_axis(ob.shape)


def _small_axis(shape: tuple[Dim, ...]) -> bool:
    """One numeric axis of at most MAX_DIM: never too many elements (``check_size`` has nothing to find)."""
    return len(shape) == 1 and type(shape[0]) is int and shape[0] <= MAX_DIM


def _resolved(ty: Ty, infer: Infer, check: Callable[[tuple[Dim, ...], Span | None], None] | None = None,
              span: Span | None = None) -> Ty:
    """``ty`` with the sizes already solved filled in (itself when none are); ``check`` sees every wire's resolved shape.

    A shape rule builds its output from its input as it was given, so
    without this a size solved by the rule itself (``add`` unifying its two
    inputs) or earlier would stay a variable in every box downstream until
    the definition is finished, and finishing would rebuild them all.
    Bundles and wires whose representation is still a variable are left to
    the finish.
    """
    new: list[Ob] | None = None
    resolve = infer.resolve if infer.env else None
    obs = ty.obs
    for i, ob in enumerate(obs):
        shape = ob.shape
        if resolve is None or ground(shape):
            if check is not None and not _small_axis(shape):
                check(shape, span)
            continue
        solved = tuple([resolve(d) for d in shape])
        if check is not None:
            check(solved, span)
        if ob.fiber is not None:
            continue
        for a, b in zip(solved, shape):
            if a is not b:
                if new is None:
                    new = list(obs)
                new[i] = ob.with_shape(solved)
                break
    return ty if new is None else Ty(tuple(new))


def _gen_sig(g: Generator) -> str:
    parts = []
    for a in g.args:
        default = "" if a.required else f"={fmt.lit(a.default)}" if a.default is not None else "=<from types>" if a.kind == "dim" else "=…"
        parts.append(f"{a.name}{default}" if a.kind not in ("dims", "ints") else f"*{a.name}")
    return f"{g.name}({', '.join(parts)})"
