"""train(): Algorithm 5.3 step by hand, real-data accuracy, bp = autodiff, divergence, early stopping, bad input."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxbp
from helpers import tiny
from jaxbp import Split, TrainConfig
from jaxbp.training.config import OPTIMIZERS, SCHEDULES
from jaxbp.training.loop import config_keys, evaluate_splits, initial_params, make_epoch
from jaxbp.training.optim import make_optimizer

pytestmark = pytest.mark.x64


@pytest.fixture(scope="module")
def digits():
    return jaxbp.load_dataset("digits")


def algorithm_5_3_by_hand(params, X, Y, eta):
    """One step of Algorithm 5.3 in float64 NumPy, example by example: BP1, BP2, then w − (η/m) Σ δ aᵀ."""
    sig = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    ws = [np.asarray(layer.w, np.float64) for layer in params]
    bs = [np.asarray(layer.b, np.float64) for layer in params]
    sum_w, sum_b = [np.zeros_like(w) for w in ws], [np.zeros_like(b) for b in bs]
    for x, y in zip(np.asarray(X, np.float64), np.asarray(Y, np.float64)):
        a, nets = [x], []
        for w, b in zip(ws, bs):
            nets.append(w @ a[-1] + b)
            a.append(sig(nets[-1]))
        delta = (a[-1] - y) * sig(nets[-1]) * (1 - sig(nets[-1]))  # BP1
        for l in range(len(ws) - 1, -1, -1):
            sum_w[l] += np.outer(delta, a[l])  # BP4
            sum_b[l] += delta  # BP3
            if l:
                delta = (ws[l].T @ delta) * sig(nets[l - 1]) * (1 - sig(nets[l - 1]))  # BP2
    m = X.shape[0]
    return [(w - eta / m * gw, b - eta / m * gb) for w, b, gw, gb in zip(ws, bs, sum_w, sum_b)]


def test_one_sgd_step_is_algorithm_5_3():
    data = tiny(n=6, dtype=jnp.float64)
    config = TrainConfig(sizes=(4, 5, 3), eta=0.7, batch_size=6, epochs=1, dtype="float64")
    params = jaxbp.init_params(jax.random.key(1), config.sizes, dtype=jnp.float64)
    tx = make_optimizer(config, 6, 1)
    key = jax.random.key(2)
    epoch = jax.jit(make_epoch(config, 6))
    stepped, _, _ = epoch(params, tx.init(params), key, *data.train)
    idx = jax.random.permutation(key, 6)
    X, Y = data.train.X[idx], data.train.Y[idx]
    # bit for bit: w − η ∇C with ∇C = backprop_batch, the mean (1/m) Σ_x δ^x (a^x)ᵀ
    grads = jaxbp.backprop_batch(params, X, Y)
    exact = jax.jit(lambda p, g: jax.tree.map(lambda p_, g_: p_ - config.eta * g_, p, g))(params, grads)
    assert all(bool(jnp.array_equal(a, b)) for a, b in zip(jax.tree.leaves(stepped), jax.tree.leaves(exact)))
    # and the textbook loop over examples agrees to float64 rounding
    for layer, (w, b) in zip(stepped, algorithm_5_3_by_hand(params, X, Y, config.eta)):
        np.testing.assert_allclose(layer.w, w, rtol=1e-13)
        np.testing.assert_allclose(layer.b, b, rtol=1e-13)


@pytest.mark.parametrize("l2", [0.0, 0.3])
def test_running_means_are_the_epochs_mini_batches_before_each_update(l2):
    """train_cost_running / train_accuracy_running: the mean over the epoch's mini-batches of C + (λ/2n)Σ‖w‖² and of
    the hits, each at the parameters its step started from; replayed here step by step with the project's own
    functions (the epoch's permutation from the config's shuffle key folded with the epoch number)."""
    data = tiny(n=30, dtype=jnp.float64)
    config = TrainConfig(sizes=(4, 5, 3), eta=0.7, l2=l2, batch_size=7, epochs=2, dtype="float64")
    history = jaxbp.train(config, data).history
    params, n = initial_params(config), 30
    for e, row in enumerate(history, start=1):
        order = jax.random.permutation(jax.random.fold_in(config_keys(config).shuffle, e), n)[: 4 * 7].reshape(4, 7)
        costs, hits = [], []
        for batch in order:
            X, Y = data.train.X[batch], data.train.Y[batch]
            a_L = jaxbp.feedforward(params, X)[1][-1]
            costs.append(jaxbp.mean_cost(params, X, Y) + 0.5 * config.l2 / n * sum(np.sum(p.w**2) for p in params))
            hits.extend(np.argmax(a_L, -1) == np.argmax(Y, -1))
            grads = jaxbp.backprop_batch(params, X, Y)  # SGD with weight decay (λ/n) w on the weights only
            params = tuple(jaxbp.Layer(p.w - config.eta * (g.w + config.l2 / n * p.w), p.b - config.eta * g.b)
                           for p, g in zip(params, grads))
        assert row["train_cost_running"] == pytest.approx(float(np.mean(costs)), rel=1e-12)
        assert row["train_accuracy_running"] == pytest.approx(float(np.mean(hits)), rel=1e-12)
        assert "train_cost" not in row and "train_accuracy" not in row


def test_measure_full_adds_the_whole_training_split(digits):
    """measure="full": the same training, plus train_cost and train_accuracy of the whole split after each epoch
    (equal to evaluating the final parameters); validation and test are measured the same either way."""
    running = jaxbp.train(TrainConfig(epochs=2), digits)
    full = jaxbp.train(TrainConfig(epochs=2, measure="full"), digits)
    for a, b in zip(running.history, full.history):
        assert {k: v for k, v in b.items() if k not in ("train_cost", "train_accuracy", "epoch_seconds")} == \
            {k: v for k, v in a.items() if k != "epoch_seconds"}
    final = evaluate_splits(full_config := TrainConfig(epochs=2, measure="full"), full.params, digits)["train"]
    assert full.history[-1]["train_cost"] == pytest.approx(final["cost"], rel=1e-6)
    assert full.history[-1]["train_accuracy"] == pytest.approx(final["accuracy"], abs=1e-9)
    assert full_config.measure == "full"
    with pytest.raises(ValueError, match="measure must be one of: running, full"):
        TrainConfig(measure="exact")


def test_digits_reaches_95_percent(digits):
    result = jaxbp.train(TrainConfig(), digits)
    assert result.status == "finished" and len(result.history) == 30
    assert result.history[-1]["test_accuracy"] >= 0.95


def test_history_and_callbacks(digits):
    seen = []
    result = jaxbp.train(TrainConfig(epochs=3), digits, callbacks=[seen.append])
    assert seen == result.history and [row["epoch"] for row in seen] == [1, 2, 3]
    keys = {"epoch", "train_cost_running", "train_accuracy_running", "validation_accuracy", "test_accuracy",
            "epoch_seconds", "validation_cost", "test_cost"}
    keys |= {f"{name}_{l}" for name in ("mean_abs_delta", "saturated_fraction", "low_activation_fraction")
             for l in (1, 2)}
    for row in result.history:
        assert set(row) == keys
        assert all(isinstance(row[k], float) for k in keys - {"epoch"})
        assert all(0 <= row[f"saturated_fraction_{l}"] <= 1 for l in (1, 2))
        assert 0 <= row["test_accuracy"] <= 1 and row["epoch_seconds"] > 0
    assert result.history[-1]["train_cost_running"] < result.history[0]["train_cost_running"]


def test_bp_and_autodiff_train_alike(digits):
    bp = jaxbp.train(TrainConfig(epochs=3), digits)
    ad = jaxbp.train(TrainConfig(epochs=3, gradients="autodiff"), digits)
    for row_bp, row_ad in zip(bp.history, ad.history):
        assert row_bp["train_cost_running"] == pytest.approx(row_ad["train_cost_running"], rel=1e-4)
        assert row_bp["test_accuracy"] == pytest.approx(row_ad["test_accuracy"], abs=0.01)


def test_seed_decides_init_and_shuffling(digits):
    a = jaxbp.train(TrainConfig(epochs=2, seed=3), digits).history
    b = jaxbp.train(TrainConfig(epochs=2, seed=3), digits).history
    c = jaxbp.train(TrainConfig(epochs=2, seed=4), digits).history
    strip = lambda h: [{k: v for k, v in row.items() if k != "epoch_seconds"} for row in h]  # noqa: E731
    assert strip(a) == strip(b) and strip(a) != strip(c)


def test_each_epoch_is_floor_n_over_m_steps():
    """25 examples in mini-batches of 10: two steps per epoch, the last 5 of each permutation left out."""
    config = TrainConfig(sizes=(4, 3), eta=0.1, batch_size=10, epochs=1, schedule="linear")
    tx = make_optimizer(config, 25, 2)
    data = tiny(n=25)
    params = jaxbp.init_params(jax.random.key(0), config.sizes)
    _, state, _ = make_epoch(config, 25)(params, tx.init(params), jax.random.key(1), *data.train)
    assert int(state.count) == 2  # the optimizer's step counter


def test_divergence_is_reported_not_raised():
    config = TrainConfig(sizes=(4, 8, 3), activation="relu", output_activation="identity", eta=1e4,
                         batch_size=4, epochs=20)
    result = jaxbp.train(config, tiny())
    assert result.status == "diverged" and result.message == f"diverged at epoch {len(result.history)}"
    assert len(result.history) < 20 and not np.isfinite(result.history[-1]["train_cost_running"])
    assert all(bool(jnp.isfinite(leaf).all()) for leaf in jax.tree.leaves(result.params))


def test_early_stopping():
    config = TrainConfig(sizes=(4, 3), eta=1e-9, batch_size=4, epochs=10, early_stopping=2)
    result = jaxbp.train(config, tiny())
    assert result.status == "stopped_early" and len(result.history) == 3
    assert "stopped early at epoch 3" in result.message


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_every_optimizer_learns(optimizer, digits):
    eta = 0.5 if optimizer in ("sgd", "momentum", "nesterov", "adagrad") else 0.003
    result = jaxbp.train(TrainConfig(epochs=3, eta=eta, optimizer=optimizer, output_activation="softmax",
                                     cost="log_likelihood", init="scaled"), digits)
    assert result.status == "finished" and result.history[-1]["test_accuracy"] > 0.8


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_every_schedule_trains(schedule, digits):
    result = jaxbp.train(TrainConfig(epochs=3, eta=3.0, schedule=schedule), digits)
    assert result.status == "finished" and result.history[-1]["test_accuracy"] > 0.7


def test_float64_end_to_end():
    result = jaxbp.train(TrainConfig(sizes=(4, 3), epochs=1, batch_size=4, dtype="float64"),
                         tiny(dtype=jnp.float64))
    assert all(leaf.dtype == jnp.float64 for leaf in jax.tree.leaves(result.params))


def _with(data, split="train", X=None, Y=None):
    old = getattr(data, split)
    return data._replace(**{split: Split(old.X if X is None else X, old.Y if Y is None else Y)})


@pytest.mark.parametrize(
    "change,data_change,match",
    [(dict(sizes=(5, 3)), None, r"sizes\[0\]=5 does not match the train inputs of shape \(24, 4\)"),
     (dict(sizes=(4, 2)), None, r"sizes\[-1\]=2 does not match the train targets"),
     (dict(batch_size=25), None, r"batch_size=25 is larger than the training set \(24 examples\)"),
     ({}, lambda d: _with(d, "test", X=d.test.X.at[0, 0].set(jnp.nan)), "test split of tiny holds NaN"),
     ({}, lambda d: _with(d, Y=d.train.Y * 2), "train targets of tiny must be one-hot"),
     (dict(early_stopping=1), lambda d: _with(d, "validation", X=d.validation.X[:0], Y=d.validation.Y[:0]),
      "early_stopping needs a validation split")],
)
def test_bad_data_is_refused_before_training(change, data_change, match):
    config = dataclasses.replace(TrainConfig(sizes=(4, 3), batch_size=4, epochs=1), **change)
    data = tiny() if data_change is None else data_change(tiny())
    with pytest.raises(ValueError, match=match):
        jaxbp.train(config, data)


def test_config_must_be_a_train_config():
    with pytest.raises(TypeError, match="config must be a TrainConfig, got dict"):
        jaxbp.train({"eta": 1.0}, tiny())
