"""The network itself: initial parameters, the forward pass and the mean cost C.

What it is for: ``init_params`` (the five init schemes), ``feedforward`` (net^l = w^l a^{l-1} + b^l,
a^l = σ(net^l)) and ``mean_cost`` (C = (1/n) Σ_x l(x)), plus the input checks every entry point shares.
What it is not: no gradients (see ``backprop`` and ``autodiff``), no training loop.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp

from jaxbp.core import activations, costs
from jaxbp.core.types import Array, Layer, Params, float_dtype, layer_sizes, params_dtype

_vs = jax.nn.initializers.variance_scaling
# Each scheme: (initialiser of w with shape (n_out, n_in), initialiser of b with shape (n_out,)).
_normal = jax.nn.initializers.normal(1.0)
_uniform = lambda key, shape, dtype: jax.random.uniform(key, shape, dtype, -0.5, 0.5)  # noqa: E731  Alg. 5.3, step 1
INIT_SCHEMES = {
    "normal": (_normal, _normal),  # N(0, 1): Nielsen ch. 1
    "scaled": (_vs(1.0, "fan_in", "normal", in_axis=-1, out_axis=-2), _normal),  # w ~ N(0, 1/n_in): ch. 3
    "uniform": (_uniform, _uniform),
    "glorot": (jax.nn.initializers.glorot_uniform(in_axis=-1, out_axis=-2), jax.nn.initializers.zeros),
    "he": (jax.nn.initializers.he_normal(in_axis=-1, out_axis=-2), jax.nn.initializers.zeros),
}


def check_sizes(sizes: Sequence[int]) -> tuple[int, ...]:
    """``sizes`` as a tuple, refusing fewer than two layers or a non-positive width."""
    if isinstance(sizes, (str, bytes)) or not isinstance(sizes, Sequence):
        raise TypeError(f"sizes must be a sequence of layer widths such as [784, 30, 10], got {sizes!r}")
    if len(sizes) < 2:
        raise ValueError(f"sizes needs at least 2 layers (inputs and outputs), got {list(sizes)}")
    if not all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in sizes):
        raise ValueError(f"sizes must be positive integers, got {list(sizes)}")
    return tuple(sizes)


def init_params(key: Array, sizes: Sequence[int], scheme: str = "normal", dtype=jnp.float32) -> Params:
    """Initial parameters for layer widths ``sizes`` = (n_0, ..., n_L): w^l (n_l, n_{l-1}), b^l (n_l,).

    Schemes: ``normal`` N(0,1) (Nielsen ch. 1), ``scaled`` w ~ N(0, 1/n_in) and b ~ N(0,1) (ch. 3),
    ``uniform`` U(−0.5, 0.5) (Algorithm 5.3, step 1), ``glorot`` (uniform, b = 0), ``he`` (truncated
    normal with variance 2/n_in, b = 0). ``key`` is a ``jax.random.key``; it is split once per layer.
    """
    sizes = check_sizes(sizes)
    if scheme not in INIT_SCHEMES:
        raise ValueError(f"unknown init scheme {scheme!r}; expected one of: {', '.join(INIT_SCHEMES)}")
    typed_key = isinstance(key, jax.Array) and jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key)
    if not (typed_key or (isinstance(key, jax.Array) and key.shape == (2,))):
        raise TypeError(f"key must be a PRNG key such as jax.random.key(0), got {key!r}")
    dtype = float_dtype(dtype)
    init_w, init_b = INIT_SCHEMES[scheme]
    keys = jax.random.split(key, 2 * (len(sizes) - 1))
    return tuple(
        Layer(init_w(kw, (n_out, n_in), dtype), init_b(kb, (n_out,), dtype))
        for n_in, n_out, kw, kb in zip(sizes[:-1], sizes[1:], keys[0::2], keys[1::2])
    )


def resolve(activation, output_activation, cost=None, n_out: int | None = None):
    """(hidden σ, output σ, cost) from names or objects; the output σ defaults to the hidden one."""
    hidden = activations.get_activation(activation)
    output = hidden if output_activation is None else activations.get_activation(output_activation, output=True)
    if cost is None:
        return hidden, output, None
    cost = costs.get_cost(cost)
    costs.check_pairing(cost, output, n_out)
    return hidden, output, cost


def check_data(params: Params, x, y=None, *, batch: bool | None = None) -> tuple[Array, Array | None]:
    """``x`` (and ``y``) as arrays of the params' dtype, after checking their shapes against the network.

    ``batch`` True wants (m, n_in)/(m, n_out), False one example (n_in,)/(n_out,), None either."""
    sizes = layer_sizes(params)
    dtype = params_dtype(params)
    x, y = jnp.asarray(x), (None if y is None else jnp.asarray(y))
    want = {True: "a batch (m, {n})", False: "one example ({n},)", None: "({n},) or a batch (m, {n})"}[batch]
    ndims = {True: (2,), False: (1,), None: (1, 2)}[batch]
    if x.ndim not in ndims or x.shape[-1] != sizes[0]:
        raise ValueError(f"x must be {want.format(n=sizes[0])} to fit sizes[0]={sizes[0]}, got shape {x.shape}")
    if y is not None and (y.shape[:-1] != x.shape[:-1] or y.ndim != x.ndim or y.shape[-1] != sizes[-1]):
        expected = (*x.shape[:-1], sizes[-1])
        raise ValueError(f"y must have shape {expected} to fit x and sizes[-1]={sizes[-1]}, got shape {y.shape}")
    return x.astype(dtype), (None if y is None else y.astype(dtype))


def forward(params: Params, x: Array, hidden, output) -> tuple[tuple[Array, ...], tuple[Array, ...]]:
    """The forward pass on checked inputs with resolved activations: (nets, activations)."""
    nets, a = [], [x]
    for l, layer in enumerate(params, start=1):
        # net^l = w^l a^{l-1} + b^l in the equation's order (rows of a batch are examples): XLA then reads w^l
        # as stored instead of copying (w^l)ᵀ every step, for one network or a sweep's K stacked ones
        net = (layer.w @ a[-1].T).T + layer.b
        sigma = output if l == len(params) else hidden
        nets.append(net)
        a.append(sigma.fn(net))
    return tuple(nets), tuple(a)


def feedforward(params: Params, x, activation="sigmoid", output_activation=None):
    """Forward pass: returns (nets, activations) with nets[l-1] = net^l and activations[l] = a^l.

    ``x`` is one example (n_in,) or a batch (m, n_in); activations[0] is x, activations[-1] the output."""
    x, _ = check_data(params, x)
    hidden, output, _ = resolve(activation, output_activation)
    return forward(params, x, hidden, output)


def mean_cost(params: Params, X, Y, activation="sigmoid", cost="quadratic", output_activation=None) -> Array:
    """C = (1/n) Σ_x l(x) over the examples of ``X`` (n, n_in) with targets ``Y`` (n, n_out)."""
    X, Y = check_data(params, X, Y)
    hidden, output, cost = resolve(activation, output_activation, cost, Y.shape[-1])
    _, a = forward(params, X, hidden, output)
    return jnp.mean(cost.fn(a[-1], Y))
