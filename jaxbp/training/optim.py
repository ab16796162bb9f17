"""The update rule of a training run, built from optax by the names in ``TrainConfig``.

What it is for: ``make_optimizer`` turns (optimizer, schedule, η, λ) into one optax
``GradientTransformation`` whose η and λ live in its state; with ``optimizer="sgd"`` and λ = 0 it is exactly
Algorithm 5.3's w ← w − η ∇C (∇C being the mean over the mini-batch, i.e. (1/m) Σ_x δ^x (a^x)ᵀ).
What it is not: no gradients (see ``backprop``/``autodiff``), no loop (see ``loop`` and ``together``).
"""

from __future__ import annotations

import optax

from jaxbp.core.types import Layer, Params, float_dtype
from jaxbp.training.config import TrainConfig

MOMENTUM = 0.9  # of "momentum" and "nesterov"

OPTAX = {  # by the names in config.OPTIMIZERS
    "sgd": optax.sgd,
    "momentum": lambda lr: optax.sgd(lr, momentum=MOMENTUM),
    "nesterov": lambda lr: optax.sgd(lr, momentum=MOMENTUM, nesterov=True),
    "adam": optax.adam,
    "adamw": optax.adamw,
    "rmsprop": optax.rmsprop,
    "adagrad": optax.adagrad,
    "lamb": optax.lamb,
    "lion": optax.lion,
}


def make_schedule(config: TrainConfig, steps_per_epoch: int, eta=None):
    """η as a function of the step (an optax schedule), or η itself when constant.

    cosine: cosine decay to 0 over the run; linear: linear decay to 0; exponential: ×0.95 per epoch;
    warmup_cosine: linear warm-up from 0 over the first epoch, then cosine decay to 0. ``eta`` replaces
    ``config.eta`` (it may be a traced array, one per config of a sweep)."""
    eta = config.eta if eta is None else eta
    total = max(1, config.epochs * steps_per_epoch)
    if config.schedule == "constant":
        return eta
    if config.schedule == "cosine":
        return optax.cosine_decay_schedule(eta, total)
    if config.schedule == "linear":
        return optax.linear_schedule(eta, 0.0, total)
    if config.schedule == "exponential":
        return optax.exponential_decay(eta, steps_per_epoch, 0.95)
    # optax.warmup_cosine_decay_schedule tests η == 0 in Python, which a traced η (the optimizer state's) cannot
    # answer: the same schedule from its two parts
    warmup = min(steps_per_epoch, total - 1)
    parts = [optax.linear_schedule(0.0, eta, warmup), optax.cosine_decay_schedule(eta, total - warmup)]
    return optax.join_schedules(parts, [warmup])


def weights_only(params: Params):
    """The mask that applies L2 weight decay to every w^l and no b^l (Nielsen ch. 3)."""
    return tuple(Layer(True, False) for _ in params)


def make_optimizer(config: TrainConfig, n_train: int, steps_per_epoch: int) -> optax.GradientTransformation:
    """The optax transformation of ``config``: L2 decay (λ/n) w on the weights, then the optimizer at η.

    η and λ are hyperparameters held in the optimizer's state (``optax.inject_hyperparams``): ``opt_state.
    hyperparams["eta"]`` and ``["l2"]``, of the config's dtype. So configs trained together each carry their
    own in a ``vmap``-ped state, and a sweep can read, gather or change them between epochs without
    recompiling. With λ = 0 the decay adds 0·w, so plain "sgd" is still exactly w ← w − η ∇C."""

    def build(eta, l2):
        optimizer = OPTAX[config.optimizer](make_schedule(config, steps_per_epoch, eta))
        return optax.chain(optax.add_decayed_weights(l2 / n_train, mask=weights_only), optimizer)

    dtype = float_dtype(config.dtype)
    return optax.inject_hyperparams(build, hyperparam_dtype=dtype)(eta=config.eta, l2=config.l2)


def hyperparams(opt_state) -> dict:
    """{"eta": …, "l2": …} of a state made by ``make_optimizer`` (arrays with a config axis when stacked)."""
    return opt_state.hyperparams
