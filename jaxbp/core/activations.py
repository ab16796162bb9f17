"""Activation functions σ as pairs (σ, σ'), looked up by name or passed as objects.

What it is for: the value σ(net) of a layer and the derivative σ'(net) that BP1 and BP2 multiply by.
What it is not: no gradients by autodiff here; every σ' is written out by hand.

Elementwise activations give σ'(net) with the shape of ``net``. ``softmax`` couples the outputs of
its layer, so its "σ'" is the Jacobian ∂a_i/∂net_j = a_i (1[i=j] − a_j) with shape (..., n, n); it is
only offered as an output activation.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from jaxbp.core.types import Array

LEAKY_SLOPE = 0.01  # slope of leaky_relu for net < 0


class Activation(NamedTuple):
    """An activation: ``fn`` is σ, ``prime`` is σ'. ``bounds`` is the open range (lo, hi) of σ, used to
    refuse costs that need outputs in (0, 1). A coupled activation (softmax) has ``elementwise`` False,
    ``prime`` its Jacobian J, and ``jacobian_t`` (net, v) ↦ Jᵀ v computed without forming J."""

    name: str
    fn: Callable[[Array], Array]
    prime: Callable[[Array], Array]
    bounds: tuple[float, float] | None = None
    elementwise: bool = True
    jacobian_t: Callable[[Array, Array], Array] | None = None


def _sigmoid_prime(net: Array) -> Array:
    s = jax.nn.sigmoid(net)
    return s * (1 - s)


def _tanh_prime(net: Array) -> Array:
    return 1 - jnp.tanh(net) ** 2


def _relu_prime(net: Array) -> Array:
    return (net > 0).astype(net.dtype)


def _leaky_relu(net: Array) -> Array:
    return jnp.where(net > 0, net, LEAKY_SLOPE * net)


def _leaky_relu_prime(net: Array) -> Array:
    return jnp.where(net > 0, 1, LEAKY_SLOPE).astype(net.dtype)


def _softmax_jacobian(net: Array) -> Array:
    """J_ij = ∂a_i/∂net_j = a_i (1[i=j] − a_j), for each example along the leading axes."""
    a = jax.nn.softmax(net, axis=-1)
    return a[..., :, None] * (jnp.eye(a.shape[-1], dtype=a.dtype) - a[..., None, :])


def _softmax_jacobian_t(net: Array, v: Array) -> Array:
    """(Jᵀ v)_i = a_i (v_i − ⟨a, v⟩) = a_i Σ_j a_j (v_i − v_j), using Σ_j a_j = 1.

    The second form never subtracts from 1 − a_i, which loses the digits of a saturated output."""
    a = jax.nn.softmax(net, axis=-1)
    return a * jnp.einsum("...j,...ij->...i", a, v[..., :, None] - v[..., None, :])


inf = float("inf")
sigmoid = Activation("sigmoid", jax.nn.sigmoid, _sigmoid_prime, (0.0, 1.0))
tanh = Activation("tanh", jnp.tanh, _tanh_prime, (-1.0, 1.0))
relu = Activation("relu", jax.nn.relu, _relu_prime, (0.0, inf))
leaky_relu = Activation("leaky_relu", _leaky_relu, _leaky_relu_prime, (-inf, inf))
softplus = Activation("softplus", jax.nn.softplus, jax.nn.sigmoid, (0.0, inf))
identity = Activation("identity", lambda net: net, jnp.ones_like, (-inf, inf))
softmax = Activation(
    "softmax", lambda net: jax.nn.softmax(net, axis=-1), _softmax_jacobian, (0.0, 1.0), False, _softmax_jacobian_t
)

ACTIVATIONS = {act.name: act for act in (sigmoid, tanh, relu, leaky_relu, softplus, identity, softmax)}
HIDDEN_ACTIVATIONS = tuple(name for name, act in ACTIVATIONS.items() if act.elementwise)


def get_activation(activation: str | Activation, *, output: bool = False) -> Activation:
    """The ``Activation`` named by ``activation`` (or the object itself). Softmax only where ``output``."""
    if isinstance(activation, Activation):
        act = activation
    elif isinstance(activation, str):
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; expected one of: {', '.join(ACTIVATIONS)}")
        act = ACTIVATIONS[activation]
    else:
        raise TypeError(f"activation must be a name or an Activation, got {type(activation).__name__}")
    if not act.elementwise and not output:
        raise ValueError(
            f"{act.name} couples the neurons of a layer and is offered only as an output activation; "
            f"hidden activations are: {', '.join(HIDDEN_ACTIVATIONS)}"
        )
    return act
