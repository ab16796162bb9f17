"""The learning-slowdown diagnostics against their definitions, computed by hand; grad_agreement."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxbp
from helpers import problem
from jaxbp.training.diagnostics import flatten, grad_agreement, layer_diagnostics

pytestmark = pytest.mark.x64


def test_layer_diagnostics_by_hand():
    params, X, Y = problem([4, 5, 3], m=7)
    config = jaxbp.TrainConfig(sizes=(4, 5, 3), dtype="float64")
    d = layer_diagnostics(params, X, Y, config)
    nets, a = jaxbp.feedforward(params, X)
    deltas = jaxbp.deltas(params, X, Y)
    sig_prime = [np.asarray(jax.nn.sigmoid(n) * (1 - jax.nn.sigmoid(n))) for n in nets]
    np.testing.assert_allclose(d["mean_abs_delta"], [np.mean(np.abs(dl)) for dl in deltas], rtol=1e-12)
    np.testing.assert_allclose(d["saturated_fraction"], [np.mean(p < 0.01) for p in sig_prime])
    np.testing.assert_allclose(d["low_activation_fraction"], [np.mean(np.abs(a[0]) < 0.01),
                                                              np.mean(np.abs(a[1]) < 0.01)])
    assert set(flatten(d)) == {f"{n}_{l}" for n in ("mean_abs_delta", "saturated_fraction",
                                                    "low_activation_fraction") for l in (1, 2)}


def test_saturation_is_seen():
    """Huge weights push every sigmoid into saturation: the diagnostics must say so."""
    params, X, Y = problem([4, 5, 3], m=7)
    params = jax.tree.map(lambda t: 200.0 * t, params)
    d = layer_diagnostics(params, X, Y, jaxbp.TrainConfig(sizes=(4, 5, 3), dtype="float64"))
    assert float(d["saturated_fraction"][0]) > 0.9


def test_softmax_output_uses_the_jacobian_diagonal():
    params, X, Y = problem([4, 5, 3], m=7)
    config = jaxbp.TrainConfig(sizes=(4, 5, 3), output_activation="softmax", cost="log_likelihood", dtype="float64")
    d = layer_diagnostics(params, X, Y, config)
    a = jaxbp.feedforward(params, X, "sigmoid", "softmax")[1][-1]
    np.testing.assert_allclose(d["saturated_fraction"][1], np.mean(np.asarray(a * (1 - a)) < 0.01))


def test_grad_agreement_is_small_for_bp():
    params, X, Y = problem([4, 5, 3], m=7)
    assert grad_agreement(params, X, Y, jaxbp.TrainConfig(sizes=(4, 5, 3), dtype="float64")) < 1e-12
    assert jnp.isfinite(grad_agreement(params, X, Y, jaxbp.TrainConfig(sizes=(4, 5, 3), cost="cross_entropy",
                                                                        dtype="float64")))
