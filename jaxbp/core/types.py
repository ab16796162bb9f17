"""The shapes jaxbp computes with: a layer's parameters and a network's parameter pytree.

What it is for: naming the data (``Layer``, ``Params``) and the dtype rules every module shares.
What it is not: no computation beyond checking what comes in.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

Array = jax.Array


class Layer(NamedTuple):
    """Parameters of layer l: ``w`` is w^l with shape (n_l, n_{l-1}); ``b`` is b^l with shape (n_l,)."""

    w: Array
    b: Array


Params = tuple[Layer, ...]


def float_dtype(dtype) -> jnp.dtype:
    """The floating dtype ``dtype`` names, refusing integers and float64 when JAX runs in 32-bit mode."""
    try:
        dt = jnp.dtype(dtype)
    except TypeError as err:
        raise TypeError(f"dtype must be a float dtype such as float32 or float64, got {dtype!r}") from err
    if not jnp.issubdtype(dt, jnp.floating):
        raise TypeError(f"dtype must be a float dtype such as float32 or float64, got {dt.name}")
    if dt.itemsize == 8 and not jax.config.jax_enable_x64:
        raise ValueError(
            "dtype float64 needs 64-bit JAX: call jax.config.update('jax_enable_x64', True) "
            "(or set JAX_ENABLE_X64=1) before creating arrays"
        )
    return dt


def layer_sizes(params: Params) -> tuple[int, ...]:
    """The widths (n_0, n_1, ..., n_L) of a network, after checking that its layers fit together."""
    if not isinstance(params, tuple) or not params or not all(isinstance(p, Layer) for p in params):
        raise TypeError(
            f"params must be a non-empty tuple of Layer(w, b), got {type(params).__name__}"
            + (f" of {[type(p).__name__ for p in params]}" if isinstance(params, (tuple, list)) else "")
        )
    sizes = [params[0].w.shape[-1] if params[0].w.ndim == 2 else None]
    for l, layer in enumerate(params, start=1):
        if layer.w.ndim != 2 or layer.w.shape[1] != sizes[-1]:
            raise ValueError(
                f"layer {l}: w must have shape (n_{l}, {sizes[-1]}) to follow the previous layer, got {layer.w.shape}"
            )
        if layer.b.shape != (layer.w.shape[0],):
            raise ValueError(f"layer {l}: b must have shape ({layer.w.shape[0]},) to match w, got {layer.b.shape}")
        sizes.append(layer.w.shape[0])
    dtypes = {jnp.dtype(x.dtype) for layer in params for x in layer}
    if len(dtypes) != 1 or not jnp.issubdtype(next(iter(dtypes)), jnp.floating):
        raise TypeError(f"params must all share one float dtype, got {sorted(d.name for d in dtypes)}")
    return tuple(sizes)


def params_dtype(params: Params) -> jnp.dtype:
    """The one float dtype of every array in ``params``."""
    return jnp.dtype(params[0].w.dtype)
