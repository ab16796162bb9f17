"""compare_grads, the angel check and finite differences: they pass on BP and catch a wrong σ'."""

import jax
import jax.numpy as jnp
import pytest

import jaxbp
from helpers import problem
from jaxbp.core import activations
from jaxbp.core.gradcheck import GradReport, check_network

pytestmark = pytest.mark.x64

# sigmoid with a σ' that is wrong by a factor 1.5: every check must notice.
WRONG = activations.Activation("sigmoid", jax.nn.sigmoid, lambda z: 1.5 * activations.sigmoid.prime(z), (0.0, 1.0))


def test_compare_grads_locates_the_error(small):
    params = small[0]
    assert jaxbp.compare_grads(params, params) == GradReport((0.0, 0.0), (0.0, 0.0))
    nudged = (params[0], params[1]._replace(b=params[1].b.at[1].add(1e-3)))
    report = jaxbp.compare_grads(nudged, params)
    assert report.rel[0] == 0.0 and report.max_abs[1] == pytest.approx(1e-3)
    assert report.ok(1e-2) and not report.ok(1e-5)


def test_compare_grads_zero_gradients_and_nan(small):
    params = small[0]
    zeros = jax.tree.map(jnp.zeros_like, params)
    assert jaxbp.compare_grads(zeros, zeros).ok(0.0)
    nan = jax.tree.map(lambda t: t * jnp.nan, params)
    assert not jaxbp.compare_grads(nan, params).ok(1.0)


def test_compare_grads_refuses_different_trees(small):
    params = small[0]
    with pytest.raises(ValueError, match="share one tree structure"):
        jaxbp.compare_grads(params, params[:1])
    with pytest.raises(ValueError, match="share shapes"):
        jaxbp.compare_grads(params, (params[0]._replace(b=params[0].b[:2]), params[1]))


@pytest.mark.parametrize("cost,output",
                         [("quadratic", None), ("log_likelihood", "softmax"), ("cross_entropy", "sigmoid")])
def test_angel_and_finite_differences_confirm_bp(cost, output):
    params, X, Y = problem([6, 5, 4, 3], m=4)
    args = ("tanh", cost, output)
    assert jaxbp.angel_check(params, X, Y, *args).ok(1e-7)
    assert jaxbp.finite_difference_check(params, X, Y, *args, key=jax.random.key(0), samples=8).ok(1e-7)


def test_checks_catch_a_wrong_derivative():
    params, X, Y = problem([6, 5, 3], m=4)
    assert not jaxbp.angel_check(params, X, Y, WRONG).ok(1e-3)
    assert not jaxbp.finite_difference_check(params, X, Y, WRONG, key=jax.random.key(0)).ok(1e-3)
    result = jaxbp.gradcheck(params, X, Y, WRONG, key=jax.random.key(0))
    assert not result.autodiff.ok(1e-3)  # jax.grad differentiates σ itself and disagrees with the wrong σ'


def test_angel_check_of_the_output_layer_only_sees_the_output_layer():
    """With the wrong σ' used only in hidden layers, the output layer's δ is still right."""
    params, X, Y = problem([6, 5, 3], m=4)
    report = jaxbp.angel_check(params, X, Y, WRONG, "quadratic", "sigmoid")
    assert report.rel[1] < 1e-7 and report.rel[0] > 1e-2


def test_check_network_in_float32_and_float64():
    r64 = check_network([8, 5, 3], "relu", "softmax", "log_likelihood", "he", batch_size=5, seed=1)
    assert r64.sizes == (8, 5, 3) and r64.ok(1e-12, 1e-6)
    r32 = check_network([8, 5, 3], "sigmoid", None, "quadratic", batch_size=5, dtype="float32")
    assert r32.ok(1e-5, 3e-2)
