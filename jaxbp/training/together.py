"""Training runs: one config (``train``) or many configs of one shape as ONE compiled program.

What it is for: ``train_together`` trains configs that agree on ``group_key`` as one ``Cohort`` (the epoch of
``loop.make_epoch`` ``vmap``-ed over a config axis, or ``deferred.make_deferred_epoch`` where it applies, each
config with its own initial weights and optimizer state, η and λ included) for their epochs; each config ends on
its own: finished, stopped early, or diverged (a NaN or infinite cost; its last finite parameters are kept).
``train`` is one config through the same path; ``compile_together`` gives the compiled epoch itself (the
benchmarks time it).
What it is not: no logging or progress bar (they are callbacks), no sweep (see ``jaxbp.sweeps``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

from jaxbp.core.types import Params
from jaxbp.training.cohort import SHARED, Cohort, group_key
from jaxbp.training.config import TrainConfig
from jaxbp.training.data import Dataset
from jaxbp.training.loop import TrainResult

__all__ = ["SHARED", "VARIED", "Program", "compile_together", "group_key", "train", "train_together"]

Callback = Callable[[dict], None]

# The per-config fields a cohort knows how to vary along the config axis (a test asserts that this is every
# PER_CONFIG field of TrainConfig).
VARIED = ("eta", "l2", "seed", "data_seed", "init", "early_stopping")


def train(config: TrainConfig, data: Dataset, *, callbacks: Sequence[Callback] = ()) -> TrainResult:
    """Train a fresh network ``initial_params(config)`` on ``data`` (the keys of its initial weights and of its
    mini-batch order come from ``config.seed`` and ``config.data_seed``, by ``config_keys``).

    Each epoch appends {epoch, train_cost_running, train_accuracy_running, validation_cost, validation_accuracy,
    test_cost, test_accuracy, epoch_seconds, and per layer l the ``diagnostics`` mean_abs_delta_l,
    saturated_fraction_l, low_activation_fraction_l} to the history (the validation ones are None when the
    validation split is empty; with ``measure="full"`` also train_cost and train_accuracy) and calls every
    callback with that dict. ``metrics.METRIC_MEANINGS`` says what each number is: the costs include the L2
    term (the cost being minimised); the running ones are means over the epoch's mini-batches."""
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    return train_together([config], data, callbacks=[lambda _, metrics, cb=cb: cb(metrics) for cb in callbacks])[0]


class Program(NamedTuple):
    """Configs compiled to train together: ``epoch(params, opt_state, e)`` runs epoch e (1, 2, …) of all of
    them at once and returns (params, opt_state, ``loop.Running``); ``params``/``opt_state`` are the initial
    ones with a leading config axis (each config's η and λ are in ``opt_state``, see ``optim.hyperparams``);
    ``measure(params, opt_state, running)`` gives each config's metrics dict (costs with its own λ,
    accuracies, diagnostics) and whether its parameters are all finite."""

    epoch: Callable
    params: Params
    opt_state: object
    measure: Callable


def compile_together(configs: Sequence[TrainConfig], data: Dataset) -> Program:
    """Check ``configs`` against ``data`` and compile their epoch as ONE program, ``vmap``-ed over configs.

    Each config's η and λ are in its own optimizer state (the states are stacked along the config axis), so
    configs that differ in them share one program. Where their data seeds agree the configs draw the same
    mini-batches, so XLA computes the first layer's products (forward and BP4, on the shared batch) as one
    GEMM for all configs; with plain SGD and λ = 0 those products are then taken over blocks of steps
    (``Cohort.deferred``). With several local devices the config axis is sharded over them (padded with
    copies of the last config to a multiple of the device count; ``params`` then has the padded length)."""
    cohort = Cohort(configs, data)
    cohort.compile()
    return Program(cohort.run_epoch, cohort.params, cohort.opt_state, cohort.measure)


def train_together(configs: Sequence[TrainConfig], data: Dataset, *, callbacks=()) -> list[TrainResult]:
    """Train configs that share ``group_key`` as ONE compiled program (see ``Cohort``).

    Configs may differ in eta, l2, seed, init and early_stopping; each gives the history it would give
    alone (within float rounding). A diverged or stopped config keeps its own result while the others go
    on. ``epoch_seconds`` is the wall time of the whole program's epoch. Callbacks get (config index, that
    config's epoch metrics)."""
    cohort = Cohort(configs, data)
    cohort.train(cohort.configs[0].epochs, callbacks)
    return cohort.results()
