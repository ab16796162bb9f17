"""The reference gradient: ``jax.grad`` of the very same mean cost that ``backprop_batch`` differentiates.

What it is for: the ground truth the BP1–BP4 gradients are proven equal to, and the ``gradients="autodiff"``
engine so that both can be trained side by side.
What it is not: no hand-written derivative; this module only asks JAX.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxbp.core.network import check_data, forward, mean_cost, resolve
from jaxbp.core.types import Array, Params


def autodiff_grads(params: Params, X, Y, activation="sigmoid", cost="quadratic", output_activation=None) -> Params:
    """∇C by ``jax.grad`` of C = (1/m) Σ_x l(x) over ``X`` (m, n_in), ``Y`` (m, n_out)."""
    X, Y = check_data(params, X, Y, batch=True)
    return jax.grad(mean_cost)(params, X, Y, activation, cost, output_activation)


def autodiff_grads_and_output(params: Params, X, Y, activation="sigmoid", cost="quadratic",
                              output_activation=None) -> tuple[Params, Array]:
    """(∇C, a^L): ``autodiff_grads``'s gradient, with the output a^L of its forward pass as auxiliary data
    (``jax.grad(…, has_aux=True)``), as ``backprop_batch_and_output`` gives it."""
    X, Y = check_data(params, X, Y, batch=True)
    hidden, output, cost_pair = resolve(activation, output_activation, cost, Y.shape[-1])

    def cost_and_output(p: Params):
        a_L = forward(p, X, hidden, output)[1][-1]
        return jnp.mean(cost_pair.fn(a_L, Y)), a_L

    return jax.grad(cost_and_output, has_aux=True)(params)
