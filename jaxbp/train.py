"""Training: Algorithm 5.3 (mini-batch gradient descent), one epoch = one compiled ``lax.scan``.

What it is for: ``train(config, data)`` runs ``config.epochs`` epochs; each epoch draws a fresh permutation
of the training set from the seed, cuts it into ⌊n/m⌋ mini-batches of m examples and scans the update over
them on the device: gradients by BP1–BP4 (``gradients="bp"``) or ``jax.grad`` (``"autodiff"``), update by
optax (``"sgd"`` is w ← w − (η/m) Σ_x δ^x (a^x)ᵀ exactly). The last n mod m examples of each permutation
are left out of that epoch (a different few each epoch), so every step has exactly m examples. After each
epoch the cost and the accuracies of all splits are measured and handed to the callbacks.
A NaN or infinite cost stops the run: ``status="diverged"``, with the last finite parameters.
What it is not: no logging or progress bar (they are callbacks), no sweep (see ``sweep``).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxbp.autodiff import autodiff_grads
from jaxbp.backprop import backprop_batch
from jaxbp.config import TrainConfig
from jaxbp.data import Dataset, Split
from jaxbp.network import feedforward, init_params, mean_cost
from jaxbp.optim import make_optimizer
from jaxbp.types import Params, float_dtype

Callback = Callable[[dict], None]


class TrainResult(NamedTuple):
    """The trained ``params``, one ``history`` dict per epoch, and how the run ended: ``status`` is
    "finished", "diverged" or "stopped_early", ``message`` says so in words (e.g. "diverged at epoch 3")."""

    params: Params
    history: list[dict]
    status: str = "finished"
    message: str = ""


SPLITS = ("train", "validation", "test")


def check_data(sizes: Sequence[int], data: Dataset) -> None:
    """Refuse data that does not fit the network before any compute: widths, NaN/inf, targets outside [0, 1]."""
    n_in, n_out = sizes[0], sizes[-1]
    for name in SPLITS:
        split = getattr(data, name)
        X, Y = np.asarray(split.X), np.asarray(split.Y)
        if X.ndim != 2 or X.shape[1] != n_in:
            raise ValueError(f"sizes[0]={n_in} does not match the {name} inputs of shape {X.shape} ({data.name})")
        if Y.ndim != 2 or Y.shape != (X.shape[0], n_out):
            raise ValueError(f"sizes[-1]={n_out} does not match the {name} targets of shape {Y.shape} ({data.name})")
        if not (np.isfinite(X).all() and np.isfinite(Y).all()):
            raise ValueError(f"the {name} split of {data.name} holds NaN or infinite values")
        if Y.size and (Y.min() < 0 or Y.max() > 1):
            raise ValueError(f"the {name} targets of {data.name} must be one-hot (values in [0, 1])")


def on_device(data: Dataset, dtype) -> dict[str, Split]:
    """Every split of ``data`` as device arrays of ``dtype``, put there once."""
    return {name: Split(*(jnp.asarray(a, dtype) for a in getattr(data, name))) for name in SPLITS}


def make_epoch(config: TrainConfig, tx: optax.GradientTransformation, n_train: int):
    """epoch(params, opt_state, key, X, Y) -> (params, opt_state): one ``lax.scan`` over ⌊n/m⌋ steps."""
    gradient = backprop_batch if config.gradients == "bp" else autodiff_grads
    grad = functools.partial(gradient, activation=config.activation, cost=config.cost,
                             output_activation=config.output_activation)
    m = config.batch_size
    n_batches = n_train // m

    def epoch(params, opt_state, key, X, Y):
        def step(state, idx):  # idx: the m example indices of one mini-batch
            params, opt_state = state
            updates, opt_state = tx.update(grad(params, X[idx], Y[idx]), opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), None

        batches = jax.random.permutation(key, n_train)[: n_batches * m].reshape(n_batches, m)
        return jax.lax.scan(step, (params, opt_state), batches)[0]

    return jax.jit(epoch)


def make_evaluate(config: TrainConfig, n_train: int):
    """evaluate(params, X, Y) -> (C + (λ/2n) Σ‖w‖², accuracy): the cost being minimised, and the fraction
    of examples whose largest output is the target's class (for one output: both on the same side of ½)."""

    def evaluate(params, X, Y):
        cost = mean_cost(params, X, Y, config.activation, config.cost, config.output_activation)
        cost += 0.5 * config.l2 / n_train * sum(jnp.sum(layer.w**2) for layer in params)
        a = feedforward(params, X, config.activation, config.output_activation)[1][-1]
        hits = (a > 0.5) == (Y > 0.5) if Y.shape[-1] == 1 else jnp.argmax(a, -1) == jnp.argmax(Y, -1)
        return cost, jnp.mean(hits)

    return jax.jit(evaluate)


def train(config: TrainConfig, data: Dataset, *, callbacks: Sequence[Callback] = ()) -> TrainResult:
    """Train a fresh network ``init_params(key(config.seed), config.sizes, config.init)`` on ``data``.

    Each epoch appends {epoch, train_cost, train_accuracy, validation_accuracy, test_accuracy,
    epoch_seconds} to the history (validation_accuracy is None when the validation split is empty) and
    calls every callback with that dict. ``epoch_seconds`` is the wall time of the epoch's updates."""
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    dtype = float_dtype(config.dtype)
    check_data(config.sizes, data)
    n_train = data.train.X.shape[0]
    if config.batch_size > n_train:
        raise ValueError(f"batch_size={config.batch_size} is larger than the training set ({n_train} examples)")
    if config.early_stopping and data.validation.X.shape[0] == 0:
        raise ValueError("early_stopping needs a validation split; load the data with validation > 0")
    splits = on_device(data, dtype)
    tx = make_optimizer(config, n_train, n_train // config.batch_size)
    key_init, key_shuffle = jax.random.split(jax.random.key(config.seed))
    params = init_params(key_init, config.sizes, config.init, dtype)
    opt_state = tx.init(params)
    # compiled ahead, so that epoch_seconds measures training, not compilation
    epoch_fn = make_epoch(config, tx, n_train).lower(params, opt_state, key_shuffle, *splits["train"]).compile()
    evaluate = make_evaluate(config, n_train)
    history, best, since_best = [], -1.0, 0
    for epoch in range(1, config.epochs + 1):
        start = time.perf_counter()
        new_params, opt_state = jax.block_until_ready(
            epoch_fn(params, opt_state, jax.random.fold_in(key_shuffle, epoch), *splits["train"]))
        seconds = time.perf_counter() - start
        scores = _scores(evaluate, new_params, splits)
        metrics = {"train_cost": scores["train"][0], **{f"{name}_accuracy": scores[name][1] for name in SPLITS}}
        history.append({"epoch": epoch, **metrics, "epoch_seconds": seconds})
        for callback in callbacks:
            callback(history[-1])
        if not np.isfinite(metrics["train_cost"]):
            return TrainResult(params, history, "diverged", f"diverged at epoch {epoch}")
        params = new_params
        if config.early_stopping:
            best, since_best = (metrics["validation_accuracy"], 0) if metrics["validation_accuracy"] > best \
                else (best, since_best + 1)
            if since_best >= config.early_stopping:
                message = f"stopped early at epoch {epoch}: no better validation accuracy for {since_best} epochs"
                return TrainResult(params, history, "stopped_early", message)
    return TrainResult(params, history, "finished", f"finished {config.epochs} epochs")


def evaluate_splits(config: TrainConfig, params: Params, data: Dataset) -> dict[str, dict]:
    """{split: {examples, cost, accuracy}} of ``params`` on every split of ``data`` (None where empty)."""
    splits = on_device(data, float_dtype(config.dtype))
    scores = _scores(make_evaluate(config, data.train.X.shape[0]), params, splits)
    return {name: {"examples": splits[name].X.shape[0], "cost": cost, "accuracy": accuracy}
            for name, (cost, accuracy) in scores.items()}


def _scores(evaluate, params, splits: dict[str, Split]) -> dict[str, tuple[float | None, float | None]]:
    """(cost, accuracy) of every split as Python floats; (None, None) for an empty split."""
    out = {}
    for name, (X, Y) in splits.items():
        out[name] = tuple(map(float, jax.device_get(evaluate(params, X, Y)))) if X.shape[0] else (None, None)
    return out
