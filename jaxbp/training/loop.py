"""One training epoch and its measurement: the building blocks of every run (alone or many configs together).

What it is for: Algorithm 5.3 as one compiled ``lax.scan`` (``make_epoch``): each epoch draws a fresh
permutation of the training set from the config's shuffle key, cuts it into ⌊n/m⌋ mini-batches of m examples
and scans the update over them on the device: gradients by BP1–BP4 (``gradients="bp"``) or ``jax.grad``
(``"autodiff"``), update by optax (``"sgd"`` is w ← w − (η/m) Σ_x δ^x (a^x)ᵀ exactly). The last n mod m
examples of each permutation are left out of that epoch (a different few each epoch), so every step has
exactly m examples. The epoch also returns the mean cost and accuracy over its mini-batches, each read
off the forward pass its update ran (``Running``: no second forward pass). Also: the cost and accuracy of a
split (``make_evaluate``), a config's PRNG keys and initial parameters, and the checks a dataset must pass
before any compute.
What it is not: no loop over epochs, no early stopping or divergence (see ``together``), no logging.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxbp.core.autodiff import autodiff_grads_and_output
from jaxbp.core.backprop import backprop_batch_and_output
from jaxbp.core.costs import get_cost
from jaxbp.core.network import feedforward, init_params
from jaxbp.core.types import Array, Params, float_dtype
from jaxbp.training.config import TrainConfig
from jaxbp.training.data import Dataset, Split
from jaxbp.training.optim import hyperparams, make_optimizer


class TrainResult(NamedTuple):
    """The trained ``params``, one ``history`` dict per epoch, and how the run ended: ``status`` is
    "finished", "diverged" or "stopped_early", ``message`` says so in words (e.g. "diverged at epoch 3")."""

    params: Params
    history: list[dict]
    status: str = "finished"
    message: str = ""
    started_at: float = 0.0  # wall clock (Unix seconds) when its training began, and when it ended
    ended_at: float = 0.0


SPLITS = ("train", "validation", "test")


class Running(NamedTuple):
    """An epoch's means over its mini-batches (arrays; with a config axis when configs train together)."""

    cost: Array
    accuracy: Array


def targets(Y: Array) -> Array:
    """What ``correct`` compares an output with: each one-hot row's class (for one output: whether it is above ½)."""
    return Y[..., 0] > 0.5 if Y.shape[-1] == 1 else jnp.argmax(Y, -1)


def correct(a_L: Array, target: Array) -> Array:
    """1 where the output ``a_L`` gets an example right, else 0: its largest entry is at the ``target`` class
    (``targets(Y)``; for one output: output and target on the same side of ½)."""
    hits = (a_L[..., 0] > 0.5) == target if a_L.shape[-1] == 1 else jnp.argmax(a_L, -1) == target
    return hits.astype(a_L.dtype)


def penalty(params: Params, l2, n_train: int) -> Array:
    """The L2 term of the cost being minimised, (λ/2n) Σ_l ‖w^l‖² (Nielsen ch. 3)."""
    return 0.5 * l2 / n_train * sum(jnp.sum(layer.w**2) for layer in params)


def check_dataset(sizes: Sequence[int], data: Dataset) -> None:
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


def make_epoch(config: TrainConfig, n_train: int, *, upfront: bool = False, regularised: bool = True):
    """epoch(params, opt_state, key, X, Y) -> (params, opt_state, Running): one ``lax.scan`` over ⌊n/m⌋ steps.

    η and λ come from ``opt_state`` (``make_optimizer`` keeps them there), so a sweep ``vmap``s the epoch over
    configs with their own states, and can change η or λ between epochs without recompiling. ``upfront``
    gathers the epoch's mini-batches into one array before the scan (one copy of the training set; each step
    then reads contiguous rows: 0.80× the epoch time of a gather per step, [784,30,10] at m = 10 on 2 CPU
    cores). ``regularised=False`` promises λ = 0 (for every config, whatever its state says): the running cost
    then leaves out its L2 term, which is 0; reading every weight for it in each step makes XLA copy the weights
    each step (measured: a copy of the first layer's stacked weights per step)."""
    gradient = backprop_batch_and_output if config.gradients == "bp" else autodiff_grads_and_output
    grad = functools.partial(gradient, activation=config.activation, cost=config.cost,
                             output_activation=config.output_activation)
    loss = get_cost(config.cost).fn
    m = config.batch_size
    n_batches = n_train // m

    tx = make_optimizer(config, n_train, n_batches)

    def epoch(params, opt_state, key, X, Y):
        T = targets(Y)  # once per epoch, not in every step

        def step(state, batch):
            params, opt_state, cost_sum, hit_sum = state
            X_b, Y_b, T_b = batch if upfront else (X[batch], Y[batch], T[batch])
            nabla, a_L = grad(params, X_b, Y_b)
            cost = jnp.mean(loss(a_L, Y_b))
            if regularised:
                cost += penalty(params, hyperparams(opt_state)["l2"], n_train)
            updates, new_state = tx.update(nabla, opt_state, params)
            # the sums ride in the carry: no per-step write of an (n_batches,) output
            return (optax.apply_updates(params, updates), new_state, cost_sum + cost,
                    hit_sum + jnp.mean(correct(a_L, T_b))), None

        batches = mini_batches(key, n_train, m)
        xs = (X[batches], Y[batches], T[batches]) if upfront else batches
        zero = jnp.zeros((), X.dtype)
        params, opt_state, cost_sum, hit_sum = jax.lax.scan(step, (params, opt_state, zero, zero), xs)[0]
        return params, opt_state, Running(cost_sum / n_batches, hit_sum / n_batches)

    return epoch


def mini_batches(key, n_train: int, m: int) -> Array:
    """An epoch's mini-batches, (⌊n/m⌋, m) example indices in the order they are trained on: a permutation of the
    training set drawn from ``key``, its last n mod m examples left out."""
    n_batches = n_train // m
    return jax.random.permutation(key, n_train)[: n_batches * m].reshape(n_batches, m)


def make_evaluate(config: TrainConfig, n_train: int):
    """evaluate(params, X, Y, l2) -> (C + (λ/2n) Σ‖w‖², accuracy): the cost being minimised, and the fraction
    of examples whose largest output is the target's class (for one output: both on the same side of ½)."""

    loss = get_cost(config.cost).fn

    def evaluate(params, X, Y, l2):
        a_L = feedforward(params, X, config.activation, config.output_activation)[1][-1]  # one forward pass
        return jnp.mean(loss(a_L, Y)) + penalty(params, l2, n_train), jnp.mean(correct(a_L, targets(Y)))

    return evaluate


class Keys(NamedTuple):
    """A config's PRNG keys: of its initial weights, and of its mini-batch order (folded with the epoch)."""

    init: jax.Array
    shuffle: jax.Array


def config_keys(config: TrainConfig) -> Keys:
    """The one place a config's keys are derived (training, sweeps and diagnostics use it): the initial
    weights' from ``seed``, the mini-batch order's from ``data_seed`` (None: ``seed``). A config with seed s
    and data_seed d draws the mini-batches of seed d: data_seed = seed is the same as None."""
    init = jax.random.split(jax.random.key(config.seed))[0]
    return Keys(init, jax.random.split(jax.random.key(data_seed(config)))[1])


def data_seed(config: TrainConfig) -> int:
    """The seed of ``config``'s mini-batch order: ``data_seed``, else ``seed``."""
    return config.seed if config.data_seed is None else config.data_seed


def initial_params(config: TrainConfig) -> Params:
    """The parameters ``config`` starts from."""
    return init_params(config_keys(config).init, config.sizes, config.init, float_dtype(config.dtype))


def evaluate_splits(config: TrainConfig, params: Params, data: Dataset) -> dict[str, dict]:
    """{split: {examples, cost, accuracy}} of ``params`` on every split of ``data`` (None where empty)."""
    evaluate = jax.jit(make_evaluate(config, data.train.X.shape[0]))
    out = {}
    for name, (X, Y) in on_device(data, float_dtype(config.dtype)).items():
        cost, accuracy = map(float, jax.device_get(evaluate(params, X, Y, config.l2))) if X.shape[0] else (None, None)
        out[name] = {"examples": X.shape[0], "cost": cost, "accuracy": accuracy}
    return out
