"""Each σ' against jax.grad of σ; softmax's Jacobian and Jᵀv; lookup by name and object."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxbp.core import activations
from jaxbp.core.activations import ACTIVATIONS, HIDDEN_ACTIVATIONS, Activation, get_activation

pytestmark = pytest.mark.x64

NET = np.linspace(-4.0, 4.0, 17) + 0.01  # NumPy float64 (64-bit JAX is on only in a test); misses relu's kink


@pytest.mark.parametrize("name", HIDDEN_ACTIVATIONS)
def test_prime_is_the_derivative(name):
    act = ACTIVATIONS[name]
    expected = jax.vmap(jax.grad(act.fn))(NET)
    np.testing.assert_allclose(act.prime(NET), expected, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(jax.jit(act.prime)(NET), expected, rtol=1e-13, atol=1e-15)
    assert act.prime(NET).dtype == NET.dtype and act.prime(NET.astype(jnp.float32)).dtype == jnp.float32


@pytest.mark.parametrize("name", HIDDEN_ACTIVATIONS)
def test_values_stay_in_bounds(name):
    act = ACTIVATIONS[name]
    lo, hi = act.bounds
    a = act.fn(jnp.linspace(-30, 30, 101, dtype=jnp.float64))
    assert bool(jnp.all((a >= lo) & (a <= hi)))


def test_softmax_jacobian_and_its_transpose_product():
    net = jax.random.normal(jax.random.key(0), (3, 5), jnp.float64)
    v = jax.random.normal(jax.random.key(1), (3, 5), jnp.float64)
    J = jax.vmap(jax.jacfwd(activations.softmax.fn))(net)
    np.testing.assert_allclose(activations.softmax.prime(net), J, rtol=1e-13, atol=1e-16)
    np.testing.assert_allclose(activations.softmax.jacobian_t(net, v), jnp.einsum("bij,bi->bj", J, v), rtol=1e-12)
    np.testing.assert_allclose(activations.softmax.fn(net).sum(-1), 1.0, rtol=1e-14)


def test_lookup_by_name_and_object():
    assert get_activation("tanh") is activations.tanh
    custom = Activation("cube", lambda z: z**3, lambda z: 3 * z**2)
    assert get_activation(custom) is custom
    assert get_activation("softmax", output=True) is activations.softmax


def test_bad_names_and_types():
    with pytest.raises(ValueError, match="unknown activation 'swish'; expected one of: sigmoid, tanh, relu"):
        get_activation("swish")
    with pytest.raises(ValueError, match="softmax couples the neurons.*hidden activations are: sigmoid"):
        get_activation("softmax")
    with pytest.raises(TypeError, match="activation must be a name or an Activation, got int"):
        get_activation(3)
