"""Mixed precision: the dtype parameters are kept in and the dtype the model computes in.

A :class:`Precision` is the pair Flax's own layers take as ``param_dtype``
and ``dtype``.  The lowering builds every module as it always does and then
gives it the precision (:func:`Precision.apply`): floating parameters are
cast to ``param_dtype`` once, and every Flax layer in the tree gets
``dtype`` as its computation dtype, which Flax reads on each call.  So the
layers of ``catnet.lower.ops`` and of plugins are covered alike, and the
default (float32 for both) changes nothing.

What stays in float32 whatever ``dtype`` says, for stability, as in Flax and
MaxText: the statistics of the norms (Flax computes them in at least
float32), the attention logits and their softmax (:func:`attention_in_float32`),
the ``softmax`` generator, the losses, log-determinants and batch
statistics.  Integer wires (token ids, labels) stay integers.  A module
of catnet's own (``learned``, flows, symmetry and bundle layers) or a
plugin's computes in float32 from its float32 weights, and its outputs are
cast to ``dtype`` as they leave the box (``model.apply_box``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from flax.nnx.nn import attention as flax_attention

from ..check.inputs import bad_argument
from ..errors import CatnetError

#: The floating dtypes a model may keep parameters in or compute in, by name.
DTYPES: dict[str, np.dtype] = {
    "float32": np.dtype(jnp.float32),
    "bfloat16": np.dtype(jnp.bfloat16),
    "float16": np.dtype(jnp.float16),
}


@dataclass(frozen=True)
class Precision:
    """``dtype`` for computation, ``param_dtype`` for the parameters (both NumPy dtypes)."""

    dtype: np.dtype = DTYPES["float32"]
    param_dtype: np.dtype = DTYPES["float32"]

    @property
    def full(self) -> bool:
        """Whether the model computes in float32, the default (its layers are left as Flax builds them)."""
        return self.dtype == DTYPES["float32"]

    def apply(self, model: nnx.Module) -> None:
        """Give every Flax layer under ``model`` this precision, in place.

        The floating ``nnx.Param`` values are cast to ``param_dtype`` (batch
        statistics and other state keep their dtype), and each Flax layer
        (a module with Flax's ``dtype``/``param_dtype`` attributes) computes in
        ``dtype``; an attention layer computing below float32 takes its
        softmax in float32.
        """
        if self.param_dtype != DTYPES["float32"]:
            params = nnx.state(model, nnx.Param)
            nnx.update(model, jax.tree.map(self._param, params))
        if self.full:
            return
        for _, module in nnx.iter_graph(model):
            if _is_flax_layer(module):
                module.dtype = self.dtype
                if isinstance(module, nnx.MultiHeadAttention):
                    module.attention_fn = attention_in_float32

    def _param(self, value: Any) -> Any:
        return value.astype(self.param_dtype) if jnp.issubdtype(value.dtype, jnp.floating) else value


#: float32 parameters and computation: the default, under which the lowering is unchanged.
FLOAT32 = Precision()


def _is_flax_layer(module: object) -> bool:
    """A layer of Flax itself, which takes ``dtype`` (computation) and ``param_dtype`` (storage)."""
    return (
        isinstance(module, nnx.Module)
        and type(module).__module__.startswith("flax.")
        and hasattr(module, "dtype")
        and hasattr(module, "param_dtype")
    )


def attention_in_float32(query: jax.Array, key: jax.Array, value: jax.Array, *, dropout_rate: float = 0.0,
                         module: Any = None, **kwargs: Any) -> jax.Array:
    """Flax's ``dot_product_attention`` with the logits and their softmax in float32.

    Without dropout Flax hands the call to ``jax.nn.dot_product_attention``,
    which takes the logits and softmax in float32 already; with dropout the
    weights are computed here in float32 and cast back to the values' dtype,
    so the product with the values runs in the narrow dtype (MaxText's
    ``float32_logits``).
    """
    if dropout_rate == 0.0 and module is None:
        return flax_attention.dot_product_attention(query, key, value, dropout_rate=dropout_rate, module=module, **kwargs)
    kwargs.pop("dtype", None)
    precision = kwargs.pop("precision", None)
    weights = flax_attention.dot_product_attention_weights(
        query.astype(jnp.float32), key.astype(jnp.float32), dropout_rate=dropout_rate, dtype=jnp.float32,
        precision=precision, module=module, **kwargs,
    )
    return jnp.einsum("...hqk,...khd->...qhd", weights.astype(value.dtype), value, precision=precision)


def precision_of(call: str, dtype: object, param_dtype: object) -> Precision:
    """The precision ``dtype=``/``param_dtype=`` of ``call`` ask for (``None``: float32); E0801 for anything else."""
    return Precision(_dtype(call, "dtype", dtype), _dtype(call, "param_dtype", param_dtype))


def _dtype(call: str, name: str, value: object) -> np.dtype:
    if value is None:
        return DTYPES["float32"]
    expected = f"`{name}` to be a floating dtype ({', '.join(DTYPES)}; e.g. `jnp.bfloat16`) or `None`"
    if isinstance(value, bool):
        raise bad_argument(call, expected, value)
    try:
        dtype = np.dtype(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        raise bad_argument(call, expected, value, help=f"pass `{name}=jnp.bfloat16` or `{name}=\"bfloat16\"`") from None
    if dtype not in DTYPES.values():
        raise CatnetError("E0801", f"`{call}` expects {expected}, but was given the dtype {dtype.name}",
                          help=f"pass `{name}=jnp.bfloat16` or `{name}=\"bfloat16\"`")
    return dtype
