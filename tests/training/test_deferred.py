"""The deferred epoch is the plain epoch: the same mini-batches, updates and running means (to float64 rounding)
for every shape it admits, alone and vmapped over configs; a cohort takes it exactly where it applies."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxbp
from helpers import tiny
from jaxbp import TrainConfig
from jaxbp.training.cohort import Cohort
from jaxbp.training.deferred import MAX_STEPS, WORK_SHARE, block_steps, deferrable, make_deferred_epoch
from jaxbp.training.loop import initial_params, make_epoch, on_device
from jaxbp.training.optim import make_optimizer
from jaxbp.training.together import train_together

pytestmark = pytest.mark.x64


@pytest.fixture(scope="module")
def digits():
    return jaxbp.load_dataset("digits")


def both_epochs(config, data, steps, etas=(None,)):
    """(plain, deferred) results of one epoch of configs like ``config`` with learning rates ``etas`` (None: its
    own), from the same state and key: the plain epoch ``vmap``-ed over the configs, the deferred one on them
    stacked (as a cohort runs each)."""
    X, Y = on_device(data, jnp.float64)["train"]
    n = X.shape[0]
    params = initial_params(config)
    tx = make_optimizer(config, n, n // config.batch_size)
    states = []
    for eta in etas:
        state = tx.init(params)
        if eta is not None:
            state = state._replace(hyperparams={**state.hyperparams, "eta": jnp.asarray(eta, jnp.float64)})
        states.append(state)
    stacked = jax.tree.map(lambda *leaves: jnp.stack(leaves), *[(params, s) for s in states])
    plain = jax.jit(jax.vmap(make_epoch(config, n, upfront=True, regularised=False), (0, 0, None, None, None)))
    deferred = jax.jit(make_deferred_epoch(config, n, steps))
    return [epoch(*stacked, jax.random.key(5), X, Y) for epoch in (plain, deferred)]


def assert_same(plain, deferred):
    assert jax.tree.structure(plain) == jax.tree.structure(deferred)
    for a, b in zip(jax.tree.leaves(plain), jax.tree.leaves(deferred)):
        np.testing.assert_allclose(b, a, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("settings, steps", [
    (dict(sizes=(64, 30, 10)), 4),  # 359 steps: 89 blocks of 4 and one of 3
    (dict(sizes=(64, 10)), 3),  # layer 1 is the output layer
    (dict(sizes=(64, 20, 15, 10), activation="relu", output_activation="softmax", cost="log_likelihood", eta=0.05), 5),
    (dict(sizes=(64, 30, 10), cost="cross_entropy", schedule="warmup_cosine"), 8),  # η_t from the schedule
    (dict(sizes=(64, 30, 10)), 1),  # blocks of one step
    (dict(sizes=(64, 30, 10), batch_size=200), 16),  # fewer steps (7) than a block
])
def test_the_deferred_epoch_is_the_plain_epoch(digits, settings, steps):
    config = TrainConfig(**{"batch_size": 4, "eta": 0.5, "dtype": "float64", **settings})
    plain, deferred = both_epochs(config, digits, steps)
    assert_same(plain, deferred)
    assert not np.allclose(plain[0][0].w[0], initial_params(config)[0].w)  # it trained


def test_configs_on_one_order_defer_as_one_program(digits):
    """Three η on one mini-batch order (a cohort's program), each config as the plain epoch gives it."""
    plain, deferred = both_epochs(TrainConfig(batch_size=4, dtype="float64"), digits, 6, etas=[0.1, 1.0, 4.0])
    assert_same(plain, deferred)
    assert plain[0][0].w.shape[0] == 3 and not np.allclose(plain[0][0].w[0], plain[0][0].w[2])


def test_which_configs_defer():
    config = TrainConfig(sizes=(784, 30, 10))  # m = 10: blocks of 784 // (9 · 10) = 8 steps
    assert block_steps(config) == 8 and block_steps(TrainConfig(sizes=(64, 30, 10))) == 0
    assert block_steps(TrainConfig(sizes=(784, 30, 10), batch_size=2)) == MAX_STEPS < 784 // (WORK_SHARE * 2)
    assert deferrable(config, shared_batches=True, regularised=False)
    assert not deferrable(config, shared_batches=False, regularised=False)  # each its own order: no shared X_t
    assert not deferrable(config, shared_batches=True, regularised=True)  # λ > 0
    for other in (dict(optimizer="momentum"), dict(gradients="autodiff"), dict(sizes=(64, 30, 10))):
        assert not deferrable(TrainConfig(**{"sizes": (784, 30, 10), **other}), shared_batches=True, regularised=False)
    with pytest.raises(ValueError, match="at least one step"):
        make_deferred_epoch(TrainConfig(sizes=(64, 30, 10)), 100)


def test_a_cohort_defers_where_it_applies_and_matches_training_alone(digits):
    """Four seeds on one mini-batch order (data_seed) defer; each config's history is the one it has alone
    (one config trains with the plain epoch). In float64: in float32 the two epochs' different rounding grows
    with η over 718 steps of m = 2 (0.2 % at η = 3 here)."""
    configs = [TrainConfig(batch_size=2, epochs=2, eta=eta, seed=seed, data_seed=0, dtype="float64")
               for eta, seed in [(0.5, 0), (3.0, 1), (1.0, 2), (2.0, 3)]]
    assert Cohort(configs, digits).deferred
    assert not Cohort([*configs[:3], dataclasses.replace(configs[3], l2=0.5)], digits).deferred
    assert not Cohort([configs[0], dataclasses.replace(configs[1], data_seed=None)], digits).deferred  # two orders
    for config, result in zip(configs, train_together(configs, digits)):
        alone = jaxbp.train(config, digits)
        assert result.status == alone.status == "finished"
        for a, b in zip(result.history, alone.history):
            assert a["train_cost_running"] == pytest.approx(b["train_cost_running"], rel=1e-6)
            assert a["test_accuracy"] == b["test_accuracy"]


def test_a_diverging_config_deferred_keeps_to_itself():
    base = dict(sizes=(48, 8, 3), activation="relu", output_activation="identity", batch_size=2, epochs=4)
    configs = [TrainConfig(eta=0.05, **base), TrainConfig(eta=1e4, **base), TrainConfig(eta=0.1, **base)]
    data = tiny(n=40, n_in=48)
    assert Cohort(configs, data).deferred
    results = train_together(configs, data)
    assert [r.status for r in results] == ["finished", "diverged", "finished"]
    for config, result in zip(configs, results):
        alone = jaxbp.train(config, data)
        assert result.history[-1]["train_cost_running"] == pytest.approx(alone.history[-1]["train_cost_running"],
                                                                          rel=1e-5, nan_ok=True)
