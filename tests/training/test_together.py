"""Configs trained together as one program: each as it trains alone, divergence kept to itself, one group per
program shape, and η and λ as per-config optimizer state."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxbp
from helpers import tiny
from jaxbp import TrainConfig
from jaxbp.training.config import PER_CONFIG, PROGRAM, fields_of
from jaxbp.training.optim import hyperparams
from jaxbp.training.together import SHARED, VARIED, compile_together, group_key, train_together

pytestmark = pytest.mark.x64


@pytest.fixture(scope="module")
def digits():
    return jaxbp.load_dataset("digits")


def test_configs_trained_together_match_training_alone(digits):
    configs = [TrainConfig(epochs=3, eta=eta, seed=seed, l2=l2, init=init)
               for eta, seed, l2, init in [(0.5, 0, 0.0, "normal"), (3.0, 0, 1.0, "scaled"), (1.0, 1, 0.0, "uniform")]]
    together = train_together(configs, digits)
    for config, result in zip(configs, together):
        alone = jaxbp.train(config, digits)
        assert result.status == alone.status == "finished"
        for a, b in zip(result.history, alone.history):
            assert a["train_cost_running"] == pytest.approx(b["train_cost_running"], rel=1e-4)
            assert a["test_accuracy"] == pytest.approx(b["test_accuracy"], abs=3e-3)
        for a, b in zip(jax.tree.leaves(result.params), jax.tree.leaves(alone.params)):
            np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)


def test_a_diverging_config_does_not_disturb_the_others():
    base = dict(sizes=(4, 8, 3), activation="relu", output_activation="identity", batch_size=4, epochs=6)
    configs = [TrainConfig(eta=0.05, **base), TrainConfig(eta=1e4, **base), TrainConfig(eta=0.1, **base)]
    together = train_together(configs, tiny())
    assert [r.status for r in together] == ["finished", "diverged", "finished"]
    for config, result in zip(configs, together):
        alone = jaxbp.train(config, tiny())
        assert len(result.history) == len(alone.history) and result.message == alone.message
        assert result.history[-1]["train_cost_running"] == pytest.approx(alone.history[-1]["train_cost_running"],
                                                                          rel=1e-5, nan_ok=True)


def test_train_together_refuses_configs_of_different_shapes():
    with pytest.raises(ValueError, match="configs trained together must agree on sizes"):
        train_together([TrainConfig(sizes=(4, 3)), TrainConfig(sizes=(4, 5, 3))], tiny())
    with pytest.raises(TypeError, match="non-empty sequence of TrainConfig"):
        train_together([], tiny())


def test_what_groups_configs_is_what_the_config_declares():
    """Configs group by every PROGRAM field; every PER_CONFIG field is one compile_together varies per config."""
    assert SHARED == fields_of(PROGRAM)
    assert set(VARIED) == set(fields_of(PER_CONFIG))
    a, b = TrainConfig(eta=1.0, seed=1, l2=0.5), TrainConfig(eta=2.0, seed=2, init="scaled", early_stopping=3)
    assert group_key(a) == group_key(b) != group_key(TrainConfig(batch_size=5))


def test_eta_and_l2_live_in_each_configs_optimizer_state(digits):
    """η and λ are state (optax.inject_hyperparams): one program, each config its own values, and a value
    changed between epochs trains as if the config had started with it, without recompiling."""
    configs = [TrainConfig(eta=0.5, l2=1.0, epochs=1), TrainConfig(eta=3.0, l2=1.0, epochs=1)]
    program = compile_together(configs, digits)
    hp = hyperparams(program.opt_state)
    np.testing.assert_allclose(hp["eta"], [0.5, 3.0])
    np.testing.assert_allclose(hp["l2"], [1.0, 1.0])
    assert hp["eta"].dtype == jnp.float32
    changed = program.opt_state._replace(hyperparams={**hp, "eta": hp["eta"].at[0].set(3.0)})
    params, state, running = program.epoch(program.params, changed, 1)
    for leaf in jax.tree.leaves(params):
        np.testing.assert_allclose(leaf[0], leaf[1], rtol=1e-6, atol=1e-6)
    assert float(hyperparams(state)["eta"][0]) == 3.0
    costs = [row["train_cost_running"] for row in program.measure(params, state, running)[0]]
    assert costs[0] == pytest.approx(costs[1], rel=1e-5)
