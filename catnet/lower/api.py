"""``catnet.compile``: a ``.cat`` file (or its text, or a diagram) to a model.

The arguments are checked before anything is read or built: a value of the
wrong kind is E0801, naming what was expected and what was given.  Before
any module is built, the model's memory is estimated from the IR
(:func:`catnet.budget.require_fits`) and one that cannot fit is E0603
(``check_memory=False`` skips the estimate).

``dtype`` and ``param_dtype`` are mixed precision as Flax's layers take it
(see :mod:`catnet.lower.precision`); ``checkpoint`` gives the model the
weights a ``catnet train`` run saved.
"""

from __future__ import annotations

import os
from typing import Any

from flax import nnx

from ..budget import require_fits
from ..check import Module, require_lowerable
from ..check.inputs import bad_argument, require_name
from ..errors import CatnetError
from ..ir import Diagram, Span
from .model import Model
from .precision import precision_of

_SOURCE = "a path to a .cat file, the text of one, a module from `catnet.load` or a checked `Diagram`"


def _require_rngs(call: str, rngs: object) -> nnx.Rngs:
    if not isinstance(rngs, nnx.Rngs):
        raise bad_argument(call, "`rngs` to be a `flax.nnx.Rngs`", rngs, help="pass `rngs=nnx.Rngs(0)` (any integer seed)")
    return rngs


def _require_flag(call: str, name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise bad_argument(call, f"`{name}` to be `True` or `False`", value)
    return value


def lower(
    diagram: Diagram,
    *,
    rngs: nnx.Rngs,
    name: str = "the entry",
    check_memory: bool = False,
    span: Span | None = None,
    source: str | None = None,
    dtype: Any = None,
    param_dtype: Any = None,
) -> Model:
    """The Flax NNX model of a checked diagram; weights drawn from ``rngs``.

    ``name`` is the morphism's name for diagnostics, ``span`` and ``source``
    where it is defined (errors about the model's inputs point there).
    What checks but cannot be compiled yet (fiber bundles, group actions)
    raises ``CatnetError`` E0601; with
    ``check_memory``, a model whose estimated memory exceeds what is
    available raises E0603 before anything is allocated.  Parameters are
    kept in ``param_dtype`` and real wires computed in ``dtype`` (both
    float32 when ``None``; E0801 for anything but float32, bfloat16 or
    float16).
    """
    if not isinstance(diagram, Diagram):
        raise bad_argument("catnet.lower.lower", "a checked `Diagram`", diagram)
    _require_rngs("catnet.lower.lower", rngs)
    dtypes = precision_of("catnet.lower.lower", dtype, param_dtype)
    if check_memory:
        require_lowerable(diagram, name)  # what the estimate needs: parameter sizes as numbers
        require_fits(diagram, entry=name, span=span)
    return Model(diagram, rngs=rngs, name=name, span=span, source=source, precision=dtypes)


def _is_path(source: str) -> bool:
    return "\n" not in source and (source.endswith(".cat") or os.path.isfile(source))


def _module_of(source: object) -> Module:
    import catnet

    if isinstance(source, Module):
        return source
    if isinstance(source, os.PathLike) or (isinstance(source, str) and _is_path(source)):
        return catnet.load(os.fspath(source))
    if isinstance(source, str):
        return catnet.loads(source)
    raise bad_argument(
        "catnet.compile",
        _SOURCE,
        source,
        help="decode bytes first: `catnet.compile(data.decode(), ...)`" if isinstance(source, bytes) else None,
    )


def compile(
    source: Any,
    entry: str | None = None,
    *,
    rngs: nnx.Rngs,
    check_memory: bool = True,
    dtype: Any = None,
    param_dtype: Any = None,
    checkpoint: str | os.PathLike[str] | None = None,
) -> Model:
    """Compile the morphism ``entry`` (default: the file's ``main``) to a model.

    ``source`` is a path to a ``.cat`` file, the text of one, a module from
    ``catnet.load`` or a checked ``Diagram``; ``rngs`` an ``nnx.Rngs``.  The
    model's ``__call__`` takes the entry's domain wires as arrays with a
    leading batch axis and returns its codomain wires; it works under
    ``jax.jit``, ``jax.grad``, ``jax.vmap`` and ``nnx.split``/``nnx.merge``.
    Errors in the file raise ``CatnetError``, located there; arguments of
    the wrong kind raise E0801.  Unless ``check_memory=False``, a model
    whose parameters and activations (batch of one) cannot fit in the
    memory available raises E0603 before any weight is drawn.

    Mixed precision is Flax's: parameters are created in ``param_dtype``
    and real wires computed in ``dtype`` (``None``: float32 for both, the
    same numbers as without them); e.g. ``dtype=jnp.bfloat16`` keeps float32
    weights and computes in bfloat16, with norms' statistics, softmax and
    losses in float32.  ``checkpoint`` is the output directory of a
    ``catnet train`` run (``--out``): the weights and batch statistics of
    its result — the best epoch of a run with a validation set, else the
    newest — are restored into the model (``catnet.train.restore``; E0705
    if they do not fit or the checkpoint is corrupt).
    """
    _require_rngs("catnet.compile", rngs)
    if entry is not None:
        require_name("catnet.compile", entry, "`entry` to be the name of a morphism")
    _require_flag("catnet.compile", "check_memory", check_memory)
    precision_of("catnet.compile", dtype, param_dtype)
    if checkpoint is not None and not isinstance(checkpoint, (str, os.PathLike)):
        raise bad_argument("catnet.compile", "`checkpoint` to be the output directory of a `catnet train` run (a path)", checkpoint)
    model = _compiled(source, entry, rngs, check_memory, dtype, param_dtype)
    if checkpoint is None:
        return model
    from pathlib import Path

    from ..checkpoints import best_epoch
    from ..train import restore  # checkpoints load orbax: only when asked for

    return restore(model, checkpoint, best_epoch(Path(checkpoint) / "checkpoints"))


def _compiled(source: Any, entry: str | None, rngs: nnx.Rngs, check_memory: bool, dtype: Any, param_dtype: Any) -> Model:
    """The model of ``compile``'s checked arguments, with fresh weights."""
    if isinstance(source, Diagram):
        return lower(source, rngs=rngs, name=entry or "the entry", check_memory=check_memory, dtype=dtype, param_dtype=param_dtype)
    module = _module_of(source)
    name = entry or module.entry_name()
    try:
        diagram = module.diagram(name)
        span = module.lookup(name).span
        here = span is not None and span.file == module.path
        return lower(diagram, rngs=rngs, name=name, check_memory=check_memory, span=span,
                     source=module.source if here else None, dtype=dtype, param_dtype=param_dtype)
    except CatnetError as e:
        raise module.locate(e, name) from None
