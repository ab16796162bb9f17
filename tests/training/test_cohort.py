"""A cohort's membership changes on the device: kept configs continue exactly where they were, in a smaller
program; a copied config holds its source's state; a saved state resumes in another cohort as if never
interrupted; pruning and keeping refuse what they cannot do."""

import jax
import numpy as np
import pytest
from flax import serialization

import jaxbp
from jaxbp import TrainConfig
from jaxbp.training.cohort import Cohort

pytestmark = pytest.mark.x64


@pytest.fixture(scope="module")
def digits():
    return jaxbp.load_dataset("digits")


def configs(epochs=4):
    return [TrainConfig(sizes=(64, 12, 10), epochs=epochs, eta=eta, seed=seed)
            for eta, seed in [(0.5, 0), (3.0, 1), (1.0, 0), (2.0, 2)]]


def costs(cohort, i):
    return [row["train_cost_running"] for row in cohort.members[i].history]


def test_kept_configs_continue_as_if_alone_in_a_smaller_program(digits):
    cohort, whole = Cohort(configs(), digits), Cohort(configs(), digits)
    cohort.train(2)
    before = cohort.state(3)
    cohort.prune(0, "pruned for the test")
    cohort.prune(2, "pruned for the test")
    cohort.keep([3, 1])
    assert cohort.slots == [3, 1] and jax.tree.leaves(cohort.params)[0].shape[0] == 2
    assert cohort.state(3) == before  # gathered, not changed
    cohort.train(4)
    whole.train(4)
    for i in (1, 3):
        np.testing.assert_allclose(costs(cohort, i), costs(whole, i), rtol=1e-5)
        assert cohort.members[i].result.status == "finished"
    assert [cohort.members[i].result.status for i in (0, 2)] == ["pruned", "pruned"]
    assert len(cohort.members[0].history) == 2 and cohort.members[0].result.message == "pruned for the test"
    alone = jaxbp.train(configs()[1], digits)
    np.testing.assert_allclose(costs(cohort, 1), [h["train_cost_running"] for h in alone.history], rtol=1e-4)


def test_exploit_copies_the_source_state_and_sets_eta_and_l2(digits):
    """With momentum, the optimizer state has a trace per config: it is copied with the parameters."""
    cohort = Cohort([TrainConfig(sizes=(64, 12, 10), epochs=3, eta=eta, seed=seed, optimizer="momentum")
                     for eta, seed in [(0.05, 0), (0.2, 1), (0.1, 2)]], digits)
    cohort.train(1)
    before = serialization.msgpack_restore(cohort.state(1))
    cohort.exploit(0, 1, eta=7.5, l2=0.25)
    assert cohort.hyperparams(0) == {"eta": 7.5, "l2": 0.25} and cohort.hyperparams(1)["eta"] == pytest.approx(0.2)
    target, source = (serialization.msgpack_restore(cohort.state(i)) for i in (0, 1))
    assert jax.tree.all(jax.tree.map(np.array_equal, before, source))  # the source is untouched
    target["1"]["hyperparams"] = source["1"]["hyperparams"]  # η and λ aside, the target is the source
    leaves = jax.tree.leaves(target["1"]["inner_state"])
    assert leaves and all(np.abs(leaf).sum() > 0 for leaf in leaves if leaf.ndim)  # a real momentum trace
    assert jax.tree.all(jax.tree.map(np.array_equal, target, source))
    cohort.train(2)  # the copy then trains with its own η (and its own mini-batch order)
    assert costs(cohort, 0)[-1] != costs(cohort, 1)[-1]


def test_a_saved_state_resumes_in_another_cohort_as_if_never_interrupted(digits):
    first, whole = Cohort(configs(), digits), Cohort(configs(), digits)
    first.train(2)
    states = [first.state(i) for i in range(4)]
    histories = [first.members[i].history for i in range(4)]
    second = Cohort(configs(), digits, states=states, histories=histories)
    assert second.epoch == 2
    second.train(4)
    whole.train(4)
    for i in range(4):
        np.testing.assert_allclose(costs(second, i), costs(whole, i), rtol=1e-6)


def test_prune_and_keep_refuse_what_they_cannot_do(digits):
    cohort = Cohort(configs(epochs=1), digits)
    with pytest.raises(ValueError, match="keep needs one or more live configs"):
        cohort.keep([])
    with pytest.raises(ValueError, match="configs \\[2, 3\\] are live"):
        cohort.keep([0, 1])
    cohort.train(1)
    with pytest.raises(ValueError, match="config 0 already ended \\(finished\\)"):
        cohort.prune(0, "late")
    with pytest.raises(ValueError, match="configs \\[0, 1, 2, 3\\] have not ended"):
        Cohort(configs(), digits).results()
    with pytest.raises(ValueError, match="same epoch"):
        Cohort(configs()[:2], digits, histories=[[{"epoch": 1}], []])


def test_a_shared_data_seed_shares_the_batches_across_seeds(digits):
    """Configs with their own seeds (initial weights) but one data_seed draw the same mini-batches: the cohort
    takes the shared-batch program (one GEMM for the first layer), and each config's history is the one it
    gives alone with the same two seeds."""
    configs = [TrainConfig(sizes=(64, 12, 10), epochs=2, eta=eta, seed=seed, data_seed=7)
               for eta, seed in [(0.5, 0), (3.0, 1), (1.0, 2)]]
    cohort = Cohort(configs, digits)
    assert cohort.same_batches and not Cohort([c.__class__(**{**c.to_dict(), "data_seed": None}) for c in configs],
                                              digits).same_batches
    cohort.train(2)
    for i, config in enumerate(configs):
        alone = jaxbp.train(config, digits)
        np.testing.assert_allclose(costs(cohort, i), [h["train_cost_running"] for h in alone.history], rtol=1e-5)


def test_data_seed_moves_the_batch_order_not_the_initial_weights(digits):
    base = TrainConfig(sizes=(64, 12, 10), epochs=1, seed=3)
    same = jaxbp.train(TrainConfig(**{**base.to_dict(), "data_seed": 3}), digits)
    other = jaxbp.train(TrainConfig(**{**base.to_dict(), "data_seed": 4}), digits)
    default = jaxbp.train(base, digits)
    # data_seed = seed is the default
    assert same.history[0]["train_cost_running"] == default.history[0]["train_cost_running"]
    assert other.history[0]["train_cost_running"] != default.history[0]["train_cost_running"]
    first = [Cohort([TrainConfig(**{**base.to_dict(), "data_seed": d})], digits).state(0) for d in (None, 4)]
    assert first[0] == first[1]  # the same initial weights and optimizer state
