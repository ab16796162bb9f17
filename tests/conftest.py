"""Shared test set-up: 64-bit JAX (float64 checks need it) and small random problems."""

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import pytest  # noqa: E402

import jaxbp  # noqa: E402

# Each pairing: (cost, output activation or None for "same as hidden").
PAIRINGS = [
    ("quadratic", None),
    ("quadratic", "softmax"),
    ("cross_entropy", "sigmoid"),
    ("cross_entropy", "softmax"),
    ("log_likelihood", "softmax"),
    ("log_likelihood", "sigmoid"),
]
# Odd widths, width 1 included (input, hidden and output); depth = number of weight layers.
WIDTHS = {1: [5, 1], 2: [3, 1, 3], 3: [7, 5, 1, 3], 4: [1, 3, 7, 5, 3]}


def problem(sizes, m=6, dtype=jnp.float64, seed=0, scheme="normal"):
    """Params, inputs X ~ U(0,1) (m, n_in) and targets Y ~ U(0,1) (m, n_out), from one seed."""
    k_p, k_x, k_y = jax.random.split(jax.random.key(seed), 3)
    params = jaxbp.init_params(k_p, sizes, scheme, dtype)
    X = jax.random.uniform(k_x, (m, sizes[0]), dtype)
    Y = jax.random.uniform(k_y, (m, sizes[-1]), dtype)
    return params, X, Y


def sizes_for(depth, output):
    """WIDTHS[depth], with at least 3 outputs for softmax (over one output it is the constant 1)."""
    sizes = list(WIDTHS[depth])
    if output == "softmax":
        sizes[-1] = max(sizes[-1], 3)
    return sizes


@pytest.fixture
def small():
    """A [4, 5, 3] network with a batch of 6 in float64."""
    return problem([4, 5, 3])
