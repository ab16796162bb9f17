"""What the equations say about learning speed, measured: per-layer δ sizes, saturation, low activations.

What it is for: BP1 and BP2 multiply by σ'(net), so a layer whose neurons sit where σ' ≈ 0 learns slowly
(saturation); BP4 multiplies by a^{l-1}, so weights fed by near-zero activations learn slowly. Per layer l:
``mean_abs_delta_l`` = mean |δ^l_j| over examples and neurons (of each example's own loss),
``saturated_fraction_l`` = fraction of (example, neuron) pairs with |σ'(net^l_j)| < 0.01 (for softmax, the
diagonal a_j (1 − a_j) of its Jacobian), ``low_activation_fraction_l`` = fraction with |a^{l-1}_k| < 0.01.
Also ``grad_agreement``: the largest per-layer relative error between BP1–BP4 and ``jax.grad``.
What it is not: no training, no logging; pure functions of (params, batch).
"""

from __future__ import annotations

import jax.numpy as jnp

from jaxbp.core.backprop import errors
from jaxbp.core.gradcheck import bp_and_autodiff, compare_grads
from jaxbp.core.network import forward, resolve
from jaxbp.core.types import Array, Params
from jaxbp.training.config import TrainConfig

SATURATED = 0.01  # |σ'| below this: the neuron learns slowly (BP1, BP2)
LOW_ACTIVATION = 0.01  # |a| below this: the weights it feeds learn slowly (BP4)
NAMES = ("mean_abs_delta", "saturated_fraction", "low_activation_fraction")


def layer_diagnostics(params: Params, X: Array, Y: Array, config: TrainConfig) -> dict[str, Array]:
    """{name: array of shape (L,)} for the three NAMES, on the batch ``X``, ``Y`` (jit- and vmap-friendly)."""
    hidden, output, cost = resolve(config.activation, config.output_activation, config.cost, Y.shape[-1])
    nets, a = forward(params, X, hidden, output)
    _, deltas = errors(params, X, Y, hidden, output, cost)
    L = len(params)
    primes = [hidden.prime(net) for net in nets[:-1]]
    a_L = a[-1]
    primes.append(output.prime(nets[-1]) if output.elementwise else a_L * (1 - a_L))
    return {
        "mean_abs_delta": jnp.stack([jnp.mean(jnp.abs(d)) for d in deltas]),
        "saturated_fraction": jnp.stack([jnp.mean(jnp.abs(p) < SATURATED) for p in primes]).astype(X.dtype),
        "low_activation_fraction": jnp.stack([jnp.mean(jnp.abs(a[l]) < LOW_ACTIVATION) for l in range(L)]
                                             ).astype(X.dtype),
    }


def flatten(diagnostics: dict) -> dict[str, float]:
    """{"mean_abs_delta_1": …, …} from one config's diagnostics (arrays of shape (L,))."""
    return {f"{name}_{l}": float(v) for name in NAMES for l, v in enumerate(diagnostics[name], start=1)}


def grad_agreement(params: Params, X: Array, Y: Array, config: TrainConfig) -> float:
    """max over layers of the relative error between ``backprop_batch`` and ``autodiff_grads`` (both jitted)."""
    bp, ad = bp_and_autodiff(params, X, Y, config.activation, config.cost, config.output_activation)
    return compare_grads(bp, ad).worst
