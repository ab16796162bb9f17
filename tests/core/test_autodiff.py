"""The jax.grad reference: same mean cost, same tree, refuses what the batch forms refuse."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxbp

pytestmark = pytest.mark.x64


def test_is_the_mean_of_per_example_grads(small):
    params, X, Y = small
    ad = jaxbp.autodiff_grads(params, X, Y, "tanh", "cross_entropy", "sigmoid")
    one = [jax.grad(jaxbp.mean_cost)(params, X[i:i + 1], Y[i:i + 1], "tanh", "cross_entropy", "sigmoid")
           for i in range(X.shape[0])]
    for leaf, *leaves in zip(jax.tree.leaves(ad), *map(jax.tree.leaves, one)):
        np.testing.assert_allclose(leaf, np.mean(leaves, axis=0), rtol=1e-12)
    assert jax.tree.structure(ad) == jax.tree.structure(params)


def test_mean_cost_is_the_mean_loss(small):
    params, X, Y = small
    _, a = jaxbp.feedforward(params, X)
    np.testing.assert_allclose(jaxbp.mean_cost(params, X, Y), np.mean(0.5 * np.sum((Y - a[-1]) ** 2, axis=1)))


def test_refuses_one_example(small):
    params, X, Y = small
    with pytest.raises(ValueError, match="x must be a batch"):
        jaxbp.autodiff_grads(params, X[0], Y[0])


def test_integer_targets_are_cast_to_the_params_dtype(small):
    params, X, _ = small
    Y = jnp.eye(3, dtype=jnp.int32)[jnp.array([0, 1, 2, 0, 1, 2])]
    assert all(g.dtype == jnp.float64 for g in jax.tree.leaves(jaxbp.autodiff_grads(params, X, Y)))
