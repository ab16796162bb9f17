"""The optax update rules: sgd is w − η g, L2 decays weights and not biases, schedules reach their ends."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxbp
from jaxbp import TrainConfig
from jaxbp.training.optim import make_optimizer, make_schedule

pytestmark = pytest.mark.x64


def _grads(params):
    return jax.tree.map(lambda p: jnp.full_like(p, 0.5), params)


def test_sgd_is_w_minus_eta_g():
    params = jaxbp.init_params(jax.random.key(0), [3, 2])
    tx = make_optimizer(TrainConfig(sizes=(3, 2), eta=0.3), 100, 10)
    updates, _ = tx.update(_grads(params), tx.init(params), params)
    new = optax.apply_updates(params, updates)
    np.testing.assert_allclose(new[0].w, params[0].w - 0.3 * 0.5, rtol=1e-6)


def test_l2_decays_weights_not_biases():
    """Nielsen ch. 3: w ← (1 − ηλ/n) w − η g; b ← b − η g."""
    params = jaxbp.init_params(jax.random.key(0), [3, 2], dtype=jnp.float64)
    eta, lam, n = 0.3, 5.0, 100
    tx = make_optimizer(TrainConfig(sizes=(3, 2), eta=eta, l2=lam, dtype="float64"), n, 10)
    new = optax.apply_updates(params, tx.update(_grads(params), tx.init(params), params)[0])
    np.testing.assert_allclose(new[0].w, (1 - eta * lam / n) * params[0].w - eta * 0.5, rtol=1e-12)
    np.testing.assert_allclose(new[0].b, params[0].b - eta * 0.5, rtol=1e-12)


@pytest.mark.parametrize(
    "schedule,first,after_epoch,last",
    [("constant", 2.0, 2.0, 2.0), ("cosine", 2.0, None, 0.0), ("linear", 2.0, 1.8, 0.0),
     ("exponential", 2.0, 1.9, None), ("warmup_cosine", 0.0, 2.0, 0.0)],
)
def test_schedules(schedule, first, after_epoch, last):
    config = TrainConfig(eta=2.0, epochs=10, schedule=schedule)
    fn = make_schedule(config, 100)
    value = (lambda step: fn) if not callable(fn) else (lambda step: float(fn(step)))
    assert value(0) == pytest.approx(first)
    if after_epoch is not None:
        assert value(100) == pytest.approx(after_epoch, rel=1e-5)
    if last is not None:
        assert value(1000) == pytest.approx(last, abs=1e-6)
    # the same values with η an array, as the optimizer's state holds it (under jit: traced)
    traced = jax.jit(lambda eta, step: make_schedule(config, 100, eta)(step) if callable(fn) else eta)
    for step in (0, 100, 550, 1000):
        assert float(traced(jnp.asarray(2.0), step)) == pytest.approx(value(step), rel=1e-5, abs=1e-6)

