"""Each ∇_a l against jax.grad of l; closed forms of BP1; pairing rules; lookup."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxbp.core import activations, costs
from jaxbp.core.costs import COSTS, check_pairing, closed_form_delta, get_cost

pytestmark = pytest.mark.x64

# NumPy float64 at import (JAX's 64-bit types are on only while an x64 test runs)
A = np.random.default_rng(0).uniform(0.05, 0.95, (4, 5))
Y = np.random.default_rng(1).uniform(0.0, 1.0, (4, 5))


@pytest.mark.parametrize("name", COSTS)
def test_nabla_a_is_the_gradient(name):
    cost = COSTS[name]
    expected = jax.vmap(jax.grad(cost.fn))(A, Y)
    np.testing.assert_allclose(cost.nabla_a(A, Y), expected, rtol=1e-13)
    assert cost.fn(A, Y).shape == (4,)  # one loss per example


def test_values_by_hand():
    a, y = np.asarray(A[0]), np.asarray(Y[0])
    np.testing.assert_allclose(costs.quadratic.fn(a, y), 0.5 * np.sum((y - a) ** 2))
    np.testing.assert_allclose(costs.cross_entropy.fn(a, y), -np.sum(y * np.log(a) + (1 - y) * np.log(1 - a)))
    onehot = np.eye(5)[2]
    np.testing.assert_allclose(costs.log_likelihood.fn(a, onehot), -np.log(a[2]))


def test_closed_forms_only_for_their_output():
    assert closed_form_delta(costs.cross_entropy, activations.sigmoid) is not None
    assert closed_form_delta(costs.log_likelihood, activations.softmax) is not None
    assert closed_form_delta(costs.cross_entropy, activations.softmax) is None
    assert closed_form_delta(costs.quadratic, activations.sigmoid) is None


def test_pairing_rules():
    check_pairing(costs.cross_entropy, activations.sigmoid, 1)
    check_pairing(costs.quadratic, activations.identity, 3)
    with pytest.raises(ValueError, match="softmax output needs at least 2 output neurons"):
        check_pairing(costs.quadratic, activations.softmax, 1)
    with pytest.raises(ValueError, match="cost cross_entropy needs outputs in \\(0, 1\\).*identity"):
        check_pairing(costs.cross_entropy, activations.identity, 3)
    unknown = activations.Activation("mine", jnp.tanh, lambda z: 1 - jnp.tanh(z) ** 2)
    with pytest.raises(ValueError, match="ranges over an unknown range"):
        check_pairing(costs.log_likelihood, unknown, 3)


def test_lookup():
    assert get_cost("quadratic") is costs.quadratic
    assert get_cost(costs.log_likelihood) is costs.log_likelihood
    with pytest.raises(ValueError,
                       match="unknown cost 'l2'; expected one of: quadratic, cross_entropy, log_likelihood"):
        get_cost("l2")
    with pytest.raises(TypeError, match="cost must be a name or a Cost"):
        get_cost(None)
