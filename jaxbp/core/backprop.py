"""Backpropagation written as its four equations, with no autodiff anywhere in the call tree.

What it is for: BP1 ``output_error``, BP2 ``backpropagate_error``, BP3 ``nabla_b``, BP4 ``nabla_w``, and
the gradients they give: ``backprop`` (one example), ``per_example_grads`` (``jax.vmap`` of it) and
``backprop_batch`` (the matrix form over a mini-batch, one GEMM per layer and direction).
What it is not: no update rule (see ``train``), no ``jax.grad`` (see ``autodiff``).

Every function here works on one example (vectors) or on a batch (rows are examples) alike:
net^l = a^{l-1} (w^l)ᵀ + b^l holds row by row, so the same code is the single-example form and the
matrix form.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jaxbp.core import costs
from jaxbp.core.activations import Activation
from jaxbp.core.network import check_data, forward, resolve
from jaxbp.core.types import Array, Layer, Params


def output_error(net_L: Array, a_L: Array, y: Array, cost: costs.Cost, output: Activation, scale=1) -> Array:
    """BP1: δ^L = ∇_a C ⊙ σ'(net^L).

    ``scale`` is the weight of each example's loss in C: 1 for C = l(x), 1/m for the mean over a batch.
    For softmax, σ' is a Jacobian J and BP1 reads δ^L = Jᵀ ∇_a C. Where the cost has a closed form for
    this output activation (cross-entropy with sigmoid, log-likelihood with softmax), σ' cancels and
    that exact form is used."""
    closed = costs.closed_form_delta(cost, output)
    if closed is not None:
        return closed(a_L, y) * scale
    nabla_a = cost.nabla_a(a_L, y) * scale  # ∇_a C
    if output.elementwise:
        return nabla_a * output.prime(net_L)
    return output.jacobian_t(net_L, nabla_a)


def backpropagate_error(delta_next: Array, w_next: Array, net: Array, sigma: Activation) -> Array:
    """BP2: δ^l = ((w^{l+1})ᵀ δ^{l+1}) ⊙ σ'(net^l)."""
    return (delta_next @ w_next) * sigma.prime(net)


def nabla_b(delta: Array) -> Array:
    """BP3: ∂C/∂b^l_j = δ^l_j, summed over the examples when ``delta`` holds a batch."""
    return jnp.sum(delta.reshape(-1, delta.shape[-1]), axis=0)


def nabla_w(delta: Array, a_prev: Array) -> Array:
    """BP4: ∂C/∂w^l_{jk} = a^{l-1}_k δ^l_j, summed over the examples when given a batch (Σ_x δ aᵀ)."""
    return delta.reshape(-1, delta.shape[-1]).T @ a_prev.reshape(-1, a_prev.shape[-1])


def errors(params: Params, x: Array, y: Array, hidden: Activation, output: Activation, cost: costs.Cost, scale=1):
    """Forward pass, BP1 at the output, BP2 backwards: returns (activations, deltas) with deltas[l-1] = δ^l.

    ``scale`` weights each example's loss (1/m makes C the mean over the batch)."""
    nets, a = forward(params, x, hidden, output)
    delta = output_error(nets[-1], a[-1], y, cost, output, scale)
    deltas = [delta]
    for l in range(len(params) - 1, 0, -1):  # l = L-1, ..., 1: params[l] is layer l+1
        delta = backpropagate_error(delta, params[l].w, nets[l - 1], hidden)
        deltas.append(delta)
    return a, tuple(reversed(deltas))


def _gradients(params, x, y, activation, cost, output_activation, batch: bool) -> tuple[Params, Array]:
    """(the gradient by BP3 and BP4, the output a^L of the forward pass that gave it)."""
    x, y = check_data(params, x, y, batch=batch)
    hidden, output, cost = resolve(activation, output_activation, cost, y.shape[-1])
    a, deltas = errors(params, x, y, hidden, output, cost, scale=1 / x.shape[0] if batch else 1)
    return tuple(Layer(nabla_w(d, a_prev), nabla_b(d)) for d, a_prev in zip(deltas, a[:-1])), a[-1]


def deltas(params: Params, x, y, activation="sigmoid", cost="quadratic", output_activation=None):
    """δ^l = ∂l/∂net^l for every layer l = 1..L, for one example (or row by row for a batch)."""
    x, y = check_data(params, x, y)
    hidden, output, cost = resolve(activation, output_activation, cost, y.shape[-1])
    return errors(params, x, y, hidden, output, cost)[1]


def backprop(params: Params, x, y, activation="sigmoid", cost="quadratic", output_activation=None) -> Params:
    """∇l(x) for ONE example ``x`` (n_in,) with target ``y`` (n_out,), by BP1–BP4; same tree as ``params``."""
    return _gradients(params, x, y, activation, cost, output_activation, batch=False)[0]


def backprop_batch(params: Params, X, Y, activation="sigmoid", cost="quadratic", output_activation=None) -> Params:
    """∇C of the MEAN cost over a mini-batch ``X`` (m, n_in), ``Y`` (m, n_out), by BP1–BP4 in matrix form."""
    return _gradients(params, X, Y, activation, cost, output_activation, batch=True)[0]


def backprop_batch_and_output(params: Params, X, Y, activation="sigmoid", cost="quadratic",
                              output_activation=None) -> tuple[Params, Array]:
    """(∇C, a^L): ``backprop_batch``'s gradient and the output a^L of the forward pass it ran, so that a training
    step reads its mini-batch's cost and accuracy off the same pass (no second forward pass)."""
    return _gradients(params, X, Y, activation, cost, output_activation, batch=True)


def per_example_grads(params: Params, X, Y, activation="sigmoid", cost="quadratic", output_activation=None):
    """∇l(x) for every row of ``X``: ``jax.vmap`` of ``backprop``; every leaf gets a leading axis m."""
    X, Y = check_data(params, X, Y, batch=True)
    one = functools.partial(backprop, activation=activation, cost=cost, output_activation=output_activation)
    return jax.vmap(one, in_axes=(None, 0, 0))(params, X, Y)
