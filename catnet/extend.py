"""Custom generators from Python: the public face of the generator table.

A generator has two halves, and a plugin gives both to :func:`generator`:

* its **signature** — name, keyword arguments, how many wires it takes, a
  shape rule, whether it is an isomorphism, a parameter ``count`` rule —
  enters the checker's table (``catnet.library.GENERATORS``) at once, so
  ``catnet check``, ``summary`` and ``render`` see it without importing JAX;
* its **implementation** — ``make(box, rngs)``, ``apply(module, wires, box,
  ctx)`` and, for an isomorphism, ``inverse`` (and, for likelihoods, its
  log-determinants ``forward_ld``/``inverse_ld`` or ``volume_preserving``)
  — enters the lowering's table
  (``catnet.lower.ops.OPS``) when that table loads, that is when a model is
  first built.  A plugin imports JAX inside those functions, or names a
  module that imports it at the top with ``lowering="package.module:name"``,
  imported only then.

Nothing in a ``.cat`` file names Python code: a file uses a generator by
its name, and only Python code that the user runs registers one.  Plugins
are modules that call :func:`generator` when imported; :func:`load_plugins`
loads them (the command line's ``--plugin MODULE``, the ``CATNET_PLUGINS``
environment variable, and installed packages' entry points in the group
``catnet.generators``).

What a plugin gives is checked when it registers: a mistake raises
:class:`RegistrationError` (a ``ValueError``) to its caller.  What it does
later is checked where it runs, and an exception escaping it becomes a
located diagnostic naming the generator and the plugin, never a traceback
(the exception stays attached as ``__cause__`` for the plugin's author):

* E0901 a plugin cannot be loaded; E0902 its registration is refused;
* E0903 its shape rule raised, or returned something that is not a type;
* E0904 its count rule raised, returned something that is not a count, or
  disagrees with the ``nnx.Param`` scalars its ``make`` creates (compared
  each time a module is made);
* E0905 its implementation raised, returned wires that do not fit its
  type (or a log-determinant that is not one number per example), or
  could not be loaded.

``docs/extending.md`` walks through a complete plugin.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import re
import sys
import types
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence

from . import dims, library
from .check.infer import show_ty
from .check.lowerable import parameter_size
from .errors import CatnetError
from .ir import Box, Ob, Span, Ty, Value
from .library import ARG_KINDS, Arg, Count, Generator, RegistrationError, Rule, RuleContext, register

__all__ = [
    "generator", "unregister", "plugins", "load_plugin", "load_plugins", "attach",
    "Arg", "Box", "Generator", "Ob", "RegistrationError", "RuleContext", "Ty", "dims",
    "ENTRY_POINT_GROUP", "ENV_VAR",
]

#: The entry-point group an installed package declares its plugins in.
ENTRY_POINT_GROUP = "catnet.generators"
#: The environment variable naming plugins to load, separated by commas.
ENV_VAR = "CATNET_PLUGINS"


_MODULE_NAME = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")
_LOWERING = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*(:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*)?")


# -- registering ---------------------------------------------------------------


def generator(
    name: str,
    rule: Rule,
    *,
    args: Sequence[Arg] = (),
    arity: int | None = 1,
    coarity: int | None = None,
    iso: bool = False,
    count: Count | None = None,
    doc: str = "",
    make: Callable[..., Any] | None = None,
    apply: Callable[..., Any] | None = None,
    inverse: Callable[..., Any] | None = None,
    random: bool | Callable[[Box], bool] = False,
    forward_ld: Callable[..., Any] | None = None,
    inverse_ld: Callable[..., Any] | None = None,
    volume_preserving: bool = False,
    lowering: str | None = None,
    plugin: str | None = None,
    replace: bool = False,
    acts: str | None = None,
) -> Generator:
    """Register the generator ``name``; ``.cat`` files may use it from now on.

    The signature half:

    * ``rule(ctx, dom, args) -> Ty``: the output wires from the input wires
      ``dom`` and the complete keyword arguments ``args`` (a dict it may
      fill, e.g. a ``dim`` argument left to the types with ``ctx.fresh()``);
      ``ctx`` is the checker's :class:`RuleContext` (``fresh``, ``resolve``,
      ``need_int``, ``equal``, ``fail``);
    * ``args``: the keyword arguments, :class:`Arg` in positional order;
    * ``arity``: the wires it takes (``None``: any number); ``coarity``: the
      wires it gives where that does not depend on types;
    * ``iso``: an isomorphism (``inv(name)`` is then legal, and lowers to
      ``inverse``);
    * ``count(box, size) -> int``: the trainable parameters of one
      occurrence; given exactly when the generator has parameters;
    * ``doc``: one line for diagnostics;
    * ``acts``: how it acts on G-spaces, for equivariance claims
      (docs/symmetry.md): ``"pointwise"`` (elementwise), ``"linear"``, ``"per_position"``,
      ``"axis"``, ``"pool"``, ``"window"`` or ``"equivariant"`` (equivariant
      by construction between its typed input and output actions — the
      claim is then the plugin's promise, which ``catnet verify`` measures);
      ``None`` (the default): equivariant only on wires no group moves.

    The implementation half, all optional (without it the generator checks,
    counts and draws, and compiling it is E0601):

    * ``make(box, rngs) -> nnx.Module`` (exactly when there is a ``count``);
    * ``apply(module, wires, box, ctx) -> list of arrays`` (every wire with
      a leading batch axis; ``module`` is ``None`` without parameters);
    * ``inverse(module, wires, box, ctx)`` (exactly when ``iso``), mapping
      the output wires back to the input wires;
    * ``random``: whether ``apply`` calls ``ctx.key()`` in training mode (a
      function of the box where that depends on its arguments);
    * for an isomorphism, what a likelihood needs (``model.forward_log_det``,
      training by ``nll``): ``forward_ld(module, wires, box, ctx) -> (wires,
      ld)`` and ``inverse_ld`` (both or neither), ``apply`` and ``inverse``
      with ``log|det J|`` of the map each computes, ``ld`` of shape
      ``(batch,)``; or ``volume_preserving=True`` where ``|det J| = 1``
      (``apply``/``inverse`` are used, the log-determinant is 0).  Without
      either, the iso inverts but a log-determinant through it is E0601;
    * or ``lowering="package.module:name"`` instead of all these: the object
      (or module, without ``:name``) with those attributes, imported the
      first time a model uses the generator.

    ``plugin`` names the plugin in diagnostics (default: the calling
    module); ``replace`` replaces an earlier plugin generator of that name
    (never a built-in one).  Returns the registered :class:`Generator`;
    anything malformed raises :class:`RegistrationError`.
    """
    if not isinstance(name, str):
        raise RegistrationError(f"a generator's name must be a str, not {type(name).__name__}")
    plugin = plugin if plugin is not None else sys._getframe(1).f_globals.get("__name__", "__main__")
    if not isinstance(plugin, str) or not plugin:
        raise RegistrationError(f"`plugin=` of `{name}` must be a non-empty str")
    _callable(name, "rule", rule, ("ctx", "dom", "args"))
    if count is not None:
        _callable(name, "count", count, ("box", "size"))
    checked_args = _checked_args(name, args)
    for field, value in (("arity", arity), ("coarity", coarity)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise RegistrationError(f"`{field}=` of `{name}` must be a number of wires (0 or more) or None, not {value!r}")
    for field, flag in (("iso", iso), ("replace", replace)):
        if not isinstance(flag, bool):
            raise RegistrationError(f"`{field}=` of `{name}` must be True or False, not {flag!r}")
    if not isinstance(doc, str):
        raise RegistrationError(f"`doc=` of `{name}` must be a str")
    if acts is not None and (acts not in library.ACTS or acts == "structural"):
        allowed = ", ".join(f'"{a}"' for a in library.ACTS if a != "structural")
        raise RegistrationError(f"`acts=` of `{name}` must be one of {allowed} or None, not {acts!r}")
    impl = _implementation(name, iso, count is not None, make, apply, inverse, random, lowering,
                           _LogDet(forward_ld, inverse_ld, volume_preserving))
    if replace and name in library.GENERATORS and name not in _PLUGINS:
        family = library.GENERATORS[name].family
        raise RegistrationError(f"`{name}` belongs to the {family} family; only a plugin's generator can be replaced")
    g = Generator(
        name,
        _guarded_rule(name, plugin, rule, coarity),
        checked_args,
        arity=arity,
        iso=iso,
        params=count is not None,
        doc=doc,
        count=_guarded_count(name, plugin, count) if count is not None else None,
        coarity=coarity,
        family=plugin,
        acts=acts,
    )
    register(g, replace=replace)
    # What a replaced generator left behind.
    if coarity is None:
        library.COARITY.pop(name, None)
    _LOWERINGS.pop(name, None)
    if _OPS is not None:
        _OPS.pop(name, None)
    _PLUGINS[name] = plugin
    if impl is not None:
        lowering_ = _Lowering(g, plugin, impl)
        _LOWERINGS[name] = lowering_
        if _OPS is not None:
            _OPS[name] = lowering_.op()
    return g


def unregister(name: str) -> None:
    """Remove the plugin generator ``name`` from both tables (the built-in ones stay)."""
    if name not in _PLUGINS:
        known = "a built-in generator" if name in library.GENERATORS else "not a registered generator"
        raise RegistrationError(f"`{name}` is {known}; only a plugin's generator can be removed")
    del _PLUGINS[name]
    del library.GENERATORS[name]
    library.COARITY.pop(name, None)
    _LOWERINGS.pop(name, None)
    if _OPS is not None:
        _OPS.pop(name, None)


def plugins() -> dict[str, str]:
    """The plugin generators registered so far: name to the plugin that registered it."""
    return dict(_PLUGINS)


#: Plugin generators by name, with the plugin (module) that registered each.
_PLUGINS: dict[str, str] = {}


def _callable(name: str, field: str, fn: object, params: tuple[str, ...]) -> None:
    """``fn`` must be callable with ``params`` positionally."""
    if not callable(fn):
        raise RegistrationError(f"`{field}` of `{name}` must be a function {field}({', '.join(params)}), not {type(fn).__name__}")
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):  # a builtin without a signature: trust it
        return
    try:
        sig.bind(*params)
    except TypeError:
        raise RegistrationError(f"`{field}` of `{name}` must take ({', '.join(params)}), but its signature is {sig}") from None


def _checked_args(name: str, args: Iterable[Arg]) -> tuple[Arg, ...]:
    if isinstance(args, (str, bytes, Arg)) or not isinstance(args, Iterable):
        raise RegistrationError(f"`args=` of `{name}` must be a sequence of catnet.extend.Arg")
    out = tuple(args)
    for a in out:
        if not isinstance(a, Arg):
            raise RegistrationError(f"`args=` of `{name}` must hold catnet.extend.Arg values, not {type(a).__name__}")
        _check_arg(name, a)
    return out


def _check_arg(name: str, a: Arg) -> None:
    """An argument's name, kind, choices, bounds and default agree with each other."""
    where = f"argument `{a.name}` of `{name}`"
    if not isinstance(a.name, str) or not a.name.isidentifier() or a.name.startswith("_"):
        raise RegistrationError(f"an argument of `{name}` must be named by an identifier not starting with `_`, not {a.name!r}")
    if a.kind not in ARG_KINDS:
        raise RegistrationError(f"{where} has kind {a.kind!r}; kinds are {', '.join(ARG_KINDS)}")
    if a.choices and (a.kind not in ("str", "padding") or not all(isinstance(c, str) for c in a.choices)):
        raise RegistrationError(f"{where}: `choices` are strings, for the kinds str and padding")
    if (a.low is not None or a.high is not None) and a.kind not in ("int", "float", "ints", "dim"):
        raise RegistrationError(f"{where}: `low` and `high` bound the kinds int, float, ints and dim")
    if a.required and a.default is not None:
        raise RegistrationError(f"{where} is required, so it has no default")
    if a.default is not None and not _fits(a, a.default):
        raise RegistrationError(f"{where}: the default {a.default!r} is not a value of kind {a.kind}"
                                + (f" within its choices {a.choices}" if a.choices else "")
                                + (" within its bounds" if a.low is not None or a.high is not None else ""))


def _fits(a: Arg, v: Value) -> bool:
    """Whether ``v`` is a value the checker could give argument ``a``."""
    number = isinstance(v, (int, float)) and not isinstance(v, bool)
    if a.kind == "int" or a.kind == "float":
        if not number or (a.kind == "int" and not isinstance(v, int)):
            return False
        return not (a.low is not None and v < a.low or a.high is not None and (v > a.high or a.high_open and v >= a.high))
    if a.kind == "ints":
        return isinstance(v, tuple) and all(_fits(Arg(a.name, "int", low=a.low, high=a.high), x) for x in v)
    if a.kind == "bool":
        return isinstance(v, bool)
    if a.kind == "str":
        return isinstance(v, str) and (not a.choices or v in a.choices)
    if a.kind == "padding":
        return (isinstance(v, str) and v in a.choices) or (isinstance(v, int) and not isinstance(v, bool) and v >= 0)
    if a.kind == "dim":
        return isinstance(v, int) and not isinstance(v, bool) and v >= (1 if a.low is None else a.low)
    if a.kind == "dims":
        return isinstance(v, tuple) and all(isinstance(x, int) and not isinstance(x, bool) and x > 0 for x in v)
    return False  # a morphism argument has no default


@dataclass(frozen=True)
class _Impl:
    """A generator's implementation: the functions ``catnet.lower.ops.Op`` holds."""

    apply: Callable[..., Any]
    make: Callable[..., Any] | None
    inverse: Callable[..., Any] | None
    random: bool | Callable[[Box], bool]
    log_det: _LogDet


@dataclass(frozen=True)
class _LogDet:
    """An isomorphism's second lowering: its maps with log-determinants, or volume preserved.

    Optional for a plugin: without it the generator inverts, and only a
    log-determinant through it (a likelihood) is E0601.
    """

    forward_ld: Callable[..., Any] | None = None
    inverse_ld: Callable[..., Any] | None = None
    volume_preserving: bool = False

    @property
    def given(self) -> bool:
        """Whether anything was given (a checked ``_LogDet`` then covers the iso)."""
        return self.forward_ld is not None or self.inverse_ld is not None or self.volume_preserving is not False


def _implementation(
    name: str,
    iso: bool,
    params: bool,
    make: Any,
    apply: Any,
    inverse: Any,
    random: Any,
    lowering: str | None,
    log_det: _LogDet = _LogDet(),
) -> _Impl | str | None:
    """The implementation as given (functions, or a ``lowering`` to import later), checked."""
    if lowering is not None:
        if any(x is not None for x in (make, apply, inverse)) or random is not False or log_det.given:
            raise RegistrationError(f"`{name}` takes its implementation from `lowering=`, or from "
                                    "make/apply/inverse/random/forward_ld/inverse_ld/volume_preserving, not both")
        if not isinstance(lowering, str) or not _LOWERING.fullmatch(lowering):
            raise RegistrationError(f"`lowering=` of `{name}` must name `package.module` or `package.module:object`, not {lowering!r}")
        return lowering
    if apply is None:
        if make is not None or inverse is not None:
            raise RegistrationError(f"`{name}` has `make` or `inverse` but no `apply`")
        if log_det.given:
            raise RegistrationError(f"`{name}` has `forward_ld`, `inverse_ld` or `volume_preserving` but no `apply`")
        return None
    _callable(name, "apply", apply, ("module", "wires", "box", "ctx"))
    _check_halves(name, iso, params, make, inverse)
    if not (isinstance(random, bool) or callable(random)):
        raise RegistrationError(f"`random=` of `{name}` must be True, False or a function of the box")
    _check_log_det(name, iso, log_det)
    return _Impl(apply, make, inverse, random, log_det)


def _check_log_det(name: str, iso: bool, log_det: _LogDet) -> None:
    """Log-determinants only for an isomorphism: both maps, or volume preserved, never both ways."""
    forward, backward, preserving = log_det.forward_ld, log_det.inverse_ld, log_det.volume_preserving
    if not isinstance(preserving, bool):
        raise RegistrationError(f"`volume_preserving=` of `{name}` must be True or False, not {preserving!r}")
    if not iso and log_det.given:
        given = "volume_preserving=True" if preserving else "`forward_ld`/`inverse_ld`"
        raise RegistrationError(f"`{name}` has {given} but is not registered with `iso=True`: "
                                "only an isomorphism has a log-determinant")
    if preserving and (forward is not None or backward is not None):
        raise RegistrationError(f"`{name}` is volume_preserving=True (its log-determinant is 0), "
                                "so it takes no `forward_ld`/`inverse_ld`: give one or the other")
    if (forward is None) != (backward is None):
        have, lack = ("forward_ld", "inverse_ld") if backward is None else ("inverse_ld", "forward_ld")
        raise RegistrationError(f"`{name}` has `{have}` but no `{lack}`: a log-determinant is given both ways or not at all")
    for field, fn in (("forward_ld", forward), ("inverse_ld", backward)):
        if fn is not None:
            _callable(name, field, fn, ("module", "wires", "box", "ctx"))


def _check_halves(name: str, iso: bool, params: bool, make: Any, inverse: Any) -> None:
    """``make`` exactly with parameters, ``inverse`` exactly for an isomorphism."""
    if params and make is None:
        raise RegistrationError(f"`{name}` has parameters (a count rule), so it needs `make(box, rngs)`")
    if not params and make is not None:
        raise RegistrationError(f"`{name}` has `make` but no count rule: give `count(box, size)`, the parameters one occurrence makes")
    if iso and inverse is None:
        raise RegistrationError(f"`{name}` is an isomorphism, so it needs `inverse(module, wires, box, ctx)`")
    if not iso and inverse is not None:
        raise RegistrationError(f"`{name}` has `inverse` but is not registered with `iso=True`")
    if make is not None:
        _callable(name, "make", make, ("box", "rngs"))
    if inverse is not None:
        _callable(name, "inverse", inverse, ("module", "wires", "box", "ctx"))


# -- what escapes a plugin becomes a diagnostic ------------------------------------


def _what(e: BaseException) -> str:
    """An exception in one line for a message: its type and the first line of its text."""
    text = str(e).strip().splitlines()
    first = text[0] if text else ""
    if len(first) > 300:
        first = first[:300] + "…"
    return f"{type(e).__name__}: {first}" if first else type(e).__name__


def _help(plugin: str) -> str:
    return f"this is a bug in the plugin `{plugin}`, not in the .cat file: report it to its author"


def _guarded_rule(name: str, plugin: str, rule: Rule, coarity: int | None) -> Rule:
    """``rule``, with what escapes it and what it returns checked (E0903)."""

    def run(ctx: RuleContext, dom: Ty, args: dict[str, Value]) -> Ty:
        span: Span | None = getattr(ctx, "span", None)
        notes = [f"`{name}` gets {show_ty(dom)}"]

        def fail(what: str) -> CatnetError:
            return CatnetError("E0903", f"the shape rule of `{name}` (plugin `{plugin}`) {what}", span,
                               notes=notes, help=_help(plugin))

        try:
            cod = rule(ctx, dom, args)
        except (CatnetError, dims.SizeTooLarge):
            raise  # ctx.fail and friends: the checker's own diagnostics
        except Exception as e:
            raise fail(f"raised {_what(e)}") from e
        if not isinstance(cod, Ty):
            raise fail(f"returned {type(cod).__name__}, not a `Ty`")
        for ob in cod.obs:
            if not isinstance(ob, Ob):
                raise fail(f"returned a `Ty` holding {type(ob).__name__}, not `Ob` wires")
            if ob.base not in ("R", "Z", "bundle"):
                raise fail(f"returned a wire of base {ob.base!r}; wires are R (reals) or Z (integer ids)")
            bad = [d for d in ob.shape if isinstance(d, bool) or not isinstance(d, (int, dims.Poly))]
            if bad:
                raise fail(f"returned a wire with the size {bad[0]!r}, which is not a whole number or a size symbol")
            if any(isinstance(d, int) and d < 1 for d in ob.shape):
                raise fail(f"returned {ob.structure()}, with a size less than 1")
        if coarity is not None and len(cod) != coarity:
            raise fail(f"returned {len(cod)} wire(s), but it was registered with coarity={coarity}")
        return cod

    return run


def _guarded_count(name: str, plugin: str, count: Count) -> Count:
    """``count``, with what escapes it and what it returns checked (E0904)."""

    def run(box: Box, size: Callable[[dims.Dim], int]) -> int:
        def fail(what: str) -> CatnetError:
            return CatnetError("E0904", f"the count rule of `{name}` (plugin `{plugin}`) {what}", box.span,
                               notes=[f"`{name}` : {show_ty(box.dom)} -> {show_ty(box.cod)}"], help=_help(plugin))

        try:
            n = count(box, size)
        except CatnetError:
            raise  # a parameter size that is not a number (E0304)
        except Exception as e:
            raise fail(f"raised {_what(e)}") from e
        if isinstance(n, bool) or not hasattr(n, "__index__"):
            raise fail(f"returned {type(n).__name__}, not a whole number of parameters")
        n = int(n.__index__())
        if n < 0:
            raise fail(f"returned {n}, a negative number of parameters")
        return n

    return run


# -- the implementation, resolved and guarded --------------------------------------


class _Lowering:
    """The JAX half of one plugin generator, loaded on first use and guarded.

    ``op()`` is its entry in ``catnet.lower.ops.OPS``: every call into the
    plugin goes through here, so what escapes it is E0905, a module whose
    parameters disagree with the count rule E0904, both at the box.
    """

    def __init__(self, generator: Generator, plugin: str, impl: _Impl | str) -> None:
        self.generator = generator
        self.plugin = plugin
        self.source = impl if isinstance(impl, str) else None
        self.impl = impl if isinstance(impl, _Impl) else None

    def op(self) -> Any:
        """The ``catnet.lower.ops.Op`` that calls the plugin through these guards."""
        from .lower.ops import Op

        g = self.generator
        ld: dict[str, Any] = {}
        if g.iso and self.impl is None:
            # A `lowering` is imported on first use, so whether it gives log-determinants is
            # not known yet: these resolve it, and say E0601 where it gives none.
            ld = {"forward_ld": self.forward_ld, "inverse_ld": self.inverse_ld}
        elif self.impl is not None and self.impl.log_det.volume_preserving:
            ld = {"volume_preserving": True}
        elif self.impl is not None and self.impl.log_det.forward_ld is not None:
            ld = {"forward_ld": self.forward_ld, "inverse_ld": self.inverse_ld}
        return Op(self.apply, self.make if g.params else None, self.inverse if g.iso else None, random=self.draws, **ld)

    def label(self, box: Box) -> str:
        """The generator and its plugin, for messages."""
        return f"`{box.name}` (plugin `{self.plugin}`)"

    def error(self, code: str, box: Box, message: str, help: str | None = None) -> CatnetError:
        """The diagnostic ``message`` at ``box``."""
        return CatnetError(code, message, box.span, notes=[f"`{box.name}` : {show_ty(box.dom)} -> {show_ty(box.cod)}"],
                           help=help or _help(self.plugin))

    def resolve(self, box: Box) -> _Impl:
        """The implementation; a ``lowering`` is imported and checked the first time."""
        if self.impl is not None:
            return self.impl
        assert self.source is not None
        module_name, _, attr = self.source.partition(":")
        try:
            obj: Any = importlib.import_module(module_name)
            for part in attr.split(".") if attr else ():
                obj = getattr(obj, part)
        except Exception as e:
            raise self.error("E0905", box, f"the implementation of {self.label(box)} cannot be loaded "
                                           f"from `{self.source}`: {_what(e)}") from e
        g = self.generator
        found = {k: getattr(obj, k, None) for k in ("apply", "make", "inverse")}
        random = getattr(obj, "random", False)
        log_det = _LogDet(getattr(obj, "forward_ld", None), getattr(obj, "inverse_ld", None),
                          getattr(obj, "volume_preserving", False))
        try:
            if found["apply"] is None:
                raise RegistrationError(f"`{self.source}` has no `apply(module, wires, box, ctx)`")
            _callable(g.name, "apply", found["apply"], ("module", "wires", "box", "ctx"))
            _check_halves(g.name, g.iso, g.params, found["make"], found["inverse"])
            if not (isinstance(random, bool) or callable(random)):
                raise RegistrationError(f"`{self.source}.random` must be True, False or a function of the box")
            _check_log_det(g.name, g.iso, log_det)
        except RegistrationError as e:
            raise self.error("E0905", box, f"the implementation of {self.label(box)} does not fit its signature: {e}") from e
        self.impl = _Impl(found["apply"], found["make"], found["inverse"], random, log_det)
        return self.impl

    def call(self, what: str, fn: Callable[..., Any], box: Box, *args: Any) -> Any:
        """``fn(*args)``, the plugin's ``what`` for ``box``; what escapes it is E0905."""
        try:
            return fn(*args)
        except CatnetError:
            raise
        except Exception as e:
            hint = None
            if isinstance(e, AssertionError) and what != "make" and not self.resolve(box).random:
                hint = "if it draws random numbers with `ctx.key()`, register it with `random=True`"
            raise self.error("E0905", box, f"the `{what}` of {self.label(box)} raised {_what(e)}", help=hint) from e

    def draws(self, box: Box) -> bool:
        """``Op.random``: whether ``apply`` draws random keys for ``box``."""
        random = self.resolve(box).random
        return bool(self.call("random", random, box, box)) if callable(random) else random

    def make(self, box: Box, rngs: Any) -> Any:
        """``Op.make``: the plugin's module, its parameters checked against the count rule."""
        import jax
        from flax import nnx

        impl = self.resolve(box)
        assert impl.make is not None
        module = self.call("make", impl.make, box, box, rngs)
        if not isinstance(module, nnx.Module):
            raise self.error("E0905", box, f"the `make` of {self.label(box)} returned {type(module).__name__}, not an `nnx.Module`")
        made = sum(int(x.size) for x in jax.tree.leaves(nnx.state(module, nnx.Param)))
        assert self.generator.count is not None
        said = self.generator.count(box, lambda d: parameter_size(d, box))
        if made != said:
            raise self.error("E0904", box, f"the count rule of {self.label(box)} says {said:,} parameters, "
                                           f"but its `make` creates {made:,} `nnx.Param` scalars",
                             help=f"`catnet summary` trusts the count rule: fix the rule or `make` in the plugin `{self.plugin}`")
        return module

    def apply(self, module: Any, wires: list[Any], box: Box, ctx: Any) -> list[Any]:
        """``Op.apply``: the plugin's forward map, its output wires checked against ``box.cod``."""
        impl = self.resolve(box)
        out = self.call("apply", impl.apply, box, module, list(wires), box, ctx)
        return self.wires(out, box.cod, box, ctx, "apply")

    def inverse(self, module: Any, wires: list[Any], box: Box, ctx: Any) -> list[Any]:
        """``Op.inverse``: the plugin's inverse, its wires checked against ``box.dom``."""
        impl = self.resolve(box)
        assert impl.inverse is not None
        out = self.call("inverse", impl.inverse, box, module, list(wires), box, ctx)
        return self.wires(out, box.dom, box, ctx, "inverse")

    def forward_ld(self, module: Any, wires: list[Any], box: Box, ctx: Any) -> tuple[list[Any], Any]:
        """``Op.forward_ld``: the plugin's forward map with ``log|det J|``, both checked."""
        return self.with_log_det(module, wires, box, ctx, inverse=False)

    def inverse_ld(self, module: Any, wires: list[Any], box: Box, ctx: Any) -> tuple[list[Any], Any]:
        """``Op.inverse_ld``: the plugin's inverse with its ``log|det J|``, both checked."""
        return self.with_log_det(module, wires, box, ctx, inverse=True)

    def with_log_det(self, module: Any, wires: list[Any], box: Box, ctx: Any, inverse: bool) -> tuple[list[Any], Any]:
        """The map (``inverse`` or forward) with its log-determinant, shape ``(batch,)``.

        A ``lowering`` gives its log-determinants only once imported, so a
        volume-preserving one (0) and one without any (E0601 at the box,
        what the lowering says of every iso it cannot differentiate) are
        told apart here rather than when the table is built.
        """
        import jax.numpy as jnp

        log_det = self.resolve(box).log_det
        if log_det.volume_preserving:
            out = (self.inverse if inverse else self.apply)(module, wires, box, ctx)
            return out, jnp.zeros((ctx.batch,), jnp.float32)
        fn = log_det.inverse_ld if inverse else log_det.forward_ld
        if fn is None:
            from .lower.model import no_log_det

            raise no_log_det(box)
        what = "inverse_ld" if inverse else "forward_ld"
        result = self.call(what, fn, box, module, list(wires), box, ctx)
        if not isinstance(result, (list, tuple)) or len(result) != 2:
            shown = f"{len(result)} values" if isinstance(result, (list, tuple)) else type(result).__name__
            raise self.error("E0905", box, f"the `{what}` of {self.label(box)} returned {shown}, not a pair "
                                           "(wires, log-determinant)")
        out, ld = result
        out = self.wires(out, box.dom if inverse else box.cod, box, ctx, what)
        shape = getattr(ld, "shape", None)
        if shape is None or not hasattr(ld, "dtype"):
            raise self.error("E0905", box, f"the `{what}` of {self.label(box)} returned a log-determinant of type "
                                           f"{type(ld).__name__}, not an array")
        if tuple(shape) != (ctx.batch,):
            raise self.error("E0905", box, f"the `{what}` of {self.label(box)} returned a log-determinant of shape "
                                           f"{tuple(shape)}, which needs ({ctx.batch},)",
                             help="`log|det J|` is one number per example, shape (batch,), summed over the wires' "
                                  f"other axes; {_help(self.plugin)}")
        return out, jnp.asarray(ld, jnp.float32)

    def wires(self, out: Any, ty: Ty, box: Box, ctx: Any, what: str) -> list[Any]:
        """``out`` as a list of arrays that fit ``ty`` (a leading batch axis, known sizes equal)."""
        if not isinstance(out, (list, tuple)):
            raise self.error("E0905", box, f"the `{what}` of {self.label(box)} returned {type(out).__name__}, "
                                           "not a list of arrays (one per wire)")
        if len(out) != len(ty):
            raise self.error("E0905", box, f"the `{what}` of {self.label(box)} returned {len(out)} array(s), "
                                           f"but its type has {len(ty)} wire(s): {show_ty(ty)}")
        for x, ob in zip(out, ty.obs):
            shape = getattr(x, "shape", None)
            if shape is None or not hasattr(x, "dtype"):
                raise self.error("E0905", box, f"the `{what}` of {self.label(box)} returned {type(x).__name__}, not an array")
            want = (ctx.batch,) + tuple(ob.shape)
            if len(shape) != len(want) or any(isinstance(d, int) and d != n for d, n in zip(want, shape)):
                shown = "(" + ", ".join(dims.show(d) for d in want) + ")"
                raise self.error("E0905", box, f"the `{what}` of {self.label(box)} returned an array of shape "
                                               f"{tuple(shape)} for {ob}, which needs {shown}",
                                 help="every wire carries a leading batch axis (`ctx.batch`), then the sizes of its type")
        return list(out)


#: The implementations of the plugin generators, by name.
_LOWERINGS: dict[str, _Lowering] = {}
#: The lowering's table, once ``catnet.lower.ops`` has loaded (see :func:`attach`).
_OPS: dict[str, Any] | None = None


def attach(ops: dict[str, Any]) -> None:
    """Give the plugin generators' implementations to the lowering's table.

    ``catnet.lower.ops`` calls this once, as it loads; generators registered
    later enter ``ops`` at once.  Until then nothing here imports JAX.
    """
    global _OPS
    _OPS = ops
    for name, lowering in _LOWERINGS.items():
        ops[name] = lowering.op()


# -- loading plugins ---------------------------------------------------------------

#: What :func:`load_plugin` has loaded: a module name or the real path of a file.
_LOADED: set[str] = set()


def load_plugin(spec: str) -> None:
    """Import the plugin ``spec``: a module name, or the path of a ``.py`` file.

    A file is imported as a module named after it, with its folder on
    ``sys.path`` (as ``python FILE`` would), so it may import its siblings.
    Loading the same plugin again does nothing.  A plugin that cannot be
    imported is E0901; one whose registration is refused (a name that
    exists, a malformed signature) is E0902, and what it registered before
    is removed again.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise CatnetError("E0901", f"a plugin is named by a module or a .py file, not {spec!r}")
    spec = spec.strip()
    is_file = spec.endswith(".py") or os.sep in spec or (os.altsep is not None and os.altsep in spec)
    key = os.path.realpath(spec) if is_file else spec
    if key in _LOADED:
        return
    if not is_file and not _MODULE_NAME.fullmatch(spec):
        raise CatnetError("E0901", f"cannot load the plugin `{spec}`: it is neither a module name nor the path of a .py file",
                          help="give an importable module (`my_plugins.swiglu`) or a file (`./swiglu.py`)")
    before = set(_PLUGINS)
    try:
        if is_file:
            _import_file(spec)
        else:
            importlib.import_module(spec)
    except BaseException as e:
        for name in set(_PLUGINS) - before:
            unregister(name)
        if not isinstance(e, Exception):
            raise
        raise _load_error(spec, e) from e
    _LOADED.add(key)


def _import_file(path: str) -> types.ModuleType:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no file {path}")
    name = os.path.splitext(os.path.basename(path))[0]
    folder = os.path.dirname(os.path.abspath(path))
    other = sys.modules.get(name)
    if other is not None and os.path.realpath(getattr(other, "__file__", None) or "") == os.path.realpath(path):
        return other  # imported already, by its module name
    if other is not None:
        raise ImportError(f"a module named `{name}` is loaded already ({getattr(other, '__file__', None) or 'built in'})")
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"{path} cannot be imported as a module")
    if folder not in sys.path:
        sys.path.insert(0, folder)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def _load_error(spec: str, e: Exception, origin: str = "") -> CatnetError:
    """The diagnostic for a plugin ``spec`` whose import raised ``e``; ``origin`` says where it was named."""
    plugin = f"the plugin `{spec}`{origin}"
    if isinstance(e, RegistrationError):
        return CatnetError("E0902", f"{plugin} cannot register its generators: {e}",
                           help="a plugin cannot take the name of a built-in generator or of another plugin's; "
                           "other mistakes are for the plugin's author to fix")
    if isinstance(e, CatnetError):
        return CatnetError("E0901", f"cannot load {plugin}: error[{e.code}]: {e.message}")
    missing = isinstance(e, ModuleNotFoundError) and e.name is not None and (e.name == spec or spec.startswith(e.name + "."))
    if missing or isinstance(e, FileNotFoundError):
        return CatnetError("E0901", f"cannot load {plugin}: {_what(e)}",
                           help="give an importable module (installed, or on PYTHONPATH) or the path of a .py file")
    run = f"python {spec}" if spec.endswith(".py") else f"python -c \"import {spec.partition(':')[0]}\""
    return CatnetError("E0901", f"cannot load {plugin}: importing it raised {_what(e)}",
                       help=f"the plugin fails as it loads: run `{run}` to see where")


def load_plugins(specs: Sequence[str] = (), *, environ: Mapping[str, str] | None = None, installed: bool = True) -> None:
    """Load every plugin the user asked for, in this order.

    1. installed packages' entry points in the group ``catnet.generators``
       (unless ``installed=False``), sorted by name;
    2. the comma-separated ``CATNET_PLUGINS`` of ``environ`` (default
       ``os.environ``);
    3. ``specs``, in the order given (module names or ``.py`` paths).

    Raises E0901 or E0902 (see :func:`load_plugin`) at the first that fails.
    """
    if installed:
        for ep in _entry_points():
            _load_entry_point(ep)
    env = os.environ if environ is None else environ
    for spec in env.get(ENV_VAR, "").split(","):
        if spec.strip():
            load_plugin(spec)
    for spec in specs:
        load_plugin(spec)


def _declared() -> bool:
    """Whether a distribution on ``sys.path`` declares a ``catnet.generators`` entry point.

    A quick look at the ``entry_points.txt`` files before importing
    ``importlib.metadata``, which takes longer than checking a small file.
    """
    header = re.compile(r"^\s*\[\s*" + re.escape(ENTRY_POINT_GROUP) + r"\s*\]", re.MULTILINE)
    for folder in sys.path:
        try:
            names = os.listdir(folder or ".")
        except OSError:
            continue
        for n in names:
            if n.endswith((".dist-info", ".egg-info")):
                try:
                    with open(os.path.join(folder or ".", n, "entry_points.txt"), encoding="utf-8") as f:
                        if header.search(f.read()):
                            return True
                except (OSError, UnicodeDecodeError):
                    continue
    return False


def _entry_points() -> list[Any]:
    if not _declared():
        return []
    from importlib.metadata import entry_points

    return sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: (ep.name, ep.value))


def _load_entry_point(ep: Any) -> None:
    """Load one entry point: a module (importing it registers) or a function to call."""
    key = f"entry point {ep.value}"
    if key in _LOADED:
        return
    dist = getattr(getattr(ep, "dist", None), "name", None)
    origin = f" (entry point `{ep.name}` of {dist or 'an installed package'})"
    before = set(_PLUGINS)
    try:
        obj = ep.load()
        if not isinstance(obj, types.ModuleType):
            if not callable(obj):
                raise TypeError(f"the entry point names a {type(obj).__name__}, not a module or a function")
            obj()
    except BaseException as e:
        for name in set(_PLUGINS) - before:
            unregister(name)
        if not isinstance(e, Exception):
            raise
        raise _load_error(ep.value, e, origin) from e
    _LOADED.add(key)
