"""The reference gradient: ``jax.grad`` of the very same mean cost that ``backprop_batch`` differentiates.

What it is for: the ground truth the BP1–BP4 gradients are proven equal to, and the ``gradients="autodiff"``
engine so that both can be trained side by side.
What it is not: no hand-written derivative; this module only asks JAX.
"""

from __future__ import annotations

import jax

from jaxbp.core.network import check_data, mean_cost
from jaxbp.core.types import Params


def autodiff_grads(params: Params, X, Y, activation="sigmoid", cost="quadratic", output_activation=None) -> Params:
    """∇C by ``jax.grad`` of C = (1/m) Σ_x l(x) over ``X`` (m, n_in), ``Y`` (m, n_out)."""
    X, Y = check_data(params, X, Y, batch=True)
    return jax.grad(mean_cost)(params, X, Y, activation, cost, output_activation)
