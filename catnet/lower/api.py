"""``catnet.compile``: a ``.cat`` file (or its text, or a diagram) to a model."""

from __future__ import annotations

import os
from typing import Any

from flax import nnx

from ..ir import Diagram
from .model import Model


def lower(diagram: Diagram, *, rngs: nnx.Rngs, name: str = "the entry") -> Model:
    """The Flax NNX model of a checked diagram; weights drawn from ``rngs``.

    ``name`` is the morphism's name for diagnostics.  What checks but cannot
    be compiled yet (fiber bundles, group actions) raises ``CatnetError``
    E0601.
    """
    return Model(diagram, rngs=rngs, name=name)


def _is_path(source: str) -> bool:
    return "\n" not in source and (source.endswith(".cat") or os.path.isfile(source))


def _module_of(source: Any) -> Any:
    import catnet

    if isinstance(source, os.PathLike) or (isinstance(source, str) and _is_path(source)):
        return catnet.load(os.fspath(source))
    if isinstance(source, str):
        return catnet.loads(source)
    return source


def compile(source: Any, entry: str | None = None, *, rngs: nnx.Rngs) -> Model:
    """Compile the morphism ``entry`` (default: the file's ``main``) to a model.

    ``source`` is a path to a ``.cat`` file, the text of one, a module from
    ``catnet.load`` or a checked ``Diagram``.  The model's ``__call__`` takes
    the entry's domain wires as arrays with a leading batch axis and returns
    its codomain wires; it works under ``jax.jit``, ``jax.grad``,
    ``jax.vmap`` and ``nnx.split``/``nnx.merge``.  Errors in the file raise
    ``CatnetError``.
    """
    from ..errors import CatnetError

    if isinstance(source, Diagram):
        return lower(source, rngs=rngs, name=entry or "the entry")
    module = _module_of(source)
    name = entry or module.entry_name()
    try:
        return lower(module.diagram(name), rngs=rngs, name=name)
    except CatnetError as e:
        raise module.locate(e, name) from None
