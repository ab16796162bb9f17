"""Training runs: one config (``train``) or many configs of one shape as ONE compiled program.

What it is for: ``compile_together`` vmaps the epoch of ``loop.make_epoch`` over a config axis (each config
with its own initial weights and optimizer state, η and λ included); ``train_together`` runs its epochs,
measures every config after each, and ends each config on its own: finished, stopped early, or diverged (a
NaN or infinite cost; its last finite parameters are kept). ``train`` is one config through the same path.
What it is not: no logging or progress bar (they are callbacks), no sweep (see ``jaxbp.sweeps``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxbp.core.types import Params, float_dtype
from jaxbp.training import devices
from jaxbp.training.config import PROGRAM, TrainConfig, fields_of
from jaxbp.training.data import Dataset, Split
from jaxbp.training.diagnostics import flatten, layer_diagnostics
from jaxbp.training.loop import (
    TrainResult,
    check_dataset,
    config_keys,
    initial_params,
    make_epoch,
    make_evaluate,
    on_device,
)
from jaxbp.training.optim import hyperparams, make_optimizer

Callback = Callable[[dict], None]

# What shapes the compiled program, as TrainConfig declares it: configs that agree on it train together.
SHARED = fields_of(PROGRAM)
# The per-config fields ``compile_together`` knows how to vary along the config axis (a test asserts that this
# is every PER_CONFIG field of TrainConfig).
VARIED = ("eta", "l2", "seed", "init", "early_stopping")
DIAGNOSTIC_EXAMPLES = 1000  # the first this many training examples are the batch of the diagnostics
UPFRONT_BYTES = 1 << 30  # gather an epoch's mini-batches upfront when that copy of the training set fits


def group_key(config: TrainConfig) -> tuple:
    """What must agree for configs to train together; eta, l2, seed, init and early_stopping may differ."""
    return tuple(getattr(config, name) for name in SHARED)


def train(config: TrainConfig, data: Dataset, *, callbacks: Sequence[Callback] = ()) -> TrainResult:
    """Train a fresh network ``initial_params(config)`` on ``data`` (the keys of its initial weights and of its
    mini-batch order both come from ``config.seed``, by ``config_keys``).

    Each epoch appends {epoch, train_cost, train_accuracy, validation_cost, validation_accuracy, test_cost,
    test_accuracy, epoch_seconds, and per layer l the ``diagnostics`` mean_abs_delta_l, saturated_fraction_l,
    low_activation_fraction_l} to the history (the validation ones are None when the validation split is
    empty) and calls every callback with that dict. ``train_cost`` includes the L2 term (the cost being
    minimised), on the whole training split; ``epoch_seconds`` is the wall time of the updates."""
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    return train_together([config], data, callbacks=[lambda _, metrics, cb=cb: cb(metrics) for cb in callbacks])[0]


class _Run:
    """The bookkeeping of one config inside ``train_together``: history, early stopping, how it ended."""

    def __init__(self, config: TrainConfig, index: int, started_at: float):
        self.config, self.index, self.history, self.best, self.since_best = config, index, [], -1.0, 0
        self.started_at = started_at
        self.result: TrainResult | None = None

    def mine(self, stacked: Params) -> Params:
        """This config's parameters out of the stacked ones of its program."""
        return jax.tree.map(lambda leaf: leaf[self.index], stacked)

    def record(self, metrics: dict, before: Params, after: Params) -> None:
        """One epoch's metrics; ``before``/``after`` are the program's stacked parameters around the epoch."""
        self.history.append(metrics)
        epoch, config = metrics["epoch"], self.config
        if not np.isfinite(metrics["train_cost"]):
            self.end(before, "diverged", f"diverged at epoch {epoch}")
        elif config.early_stopping:
            if metrics["validation_accuracy"] > self.best:
                self.best, self.since_best = metrics["validation_accuracy"], 0
            else:
                self.since_best += 1
            if self.since_best >= config.early_stopping:
                message = f"stopped early at epoch {epoch}: no better validation accuracy for {self.since_best} epochs"
                self.end(after, "stopped_early", message)
        if self.result is None and epoch == config.epochs:
            self.end(after, "finished", f"finished {epoch} epochs")

    def end(self, stacked: Params, status: str, message: str) -> None:
        self.result = TrainResult(self.mine(stacked), self.history, status, message, self.started_at, time.time())


class Program(NamedTuple):
    """Configs compiled to train together: ``epoch(params, opt_state, e)`` runs epoch e (1, 2, …) of all of
    them at once; ``params``/``opt_state`` are the initial ones with a leading config axis (each config's η
    and λ are in ``opt_state``, see ``optim.hyperparams``); ``measure(params, opt_state)`` gives each
    config's metrics dict (cost with its own λ, accuracies, diagnostics)."""

    epoch: Callable
    params: Params
    opt_state: object
    measure: Callable


def compile_together(configs: Sequence[TrainConfig], data: Dataset) -> Program:
    """Check ``configs`` against ``data`` and compile their epoch as ONE program, ``vmap``-ed over configs.

    Each config's η and λ are in its own optimizer state (the states are stacked along the config axis), so
    configs that differ in them share one program. Where all seeds agree the configs draw the same
    mini-batches, so XLA computes the first layer's products (forward and BP4, on the shared batch) as one
    GEMM for all configs. With several local devices the config axis is sharded over them (padded with
    copies of the last config to a multiple of the device count; ``params`` then has the padded length)."""
    configs = list(configs)
    if not configs or not all(isinstance(c, TrainConfig) for c in configs):
        raise TypeError("configs must be a non-empty sequence of TrainConfig")
    if len({group_key(c) for c in configs}) != 1:
        raise ValueError(f"configs trained together must agree on {', '.join(SHARED)}")
    base, dtype = configs[0], float_dtype(configs[0].dtype)
    check_dataset(base.sizes, data)
    n_train = data.train.X.shape[0]
    if base.batch_size > n_train:
        raise ValueError(f"batch_size={base.batch_size} is larger than the training set ({n_train} examples)")
    if any(c.early_stopping for c in configs) and data.validation.X.shape[0] == 0:
        raise ValueError("early_stopping needs a validation split; load the data with validation > 0")
    mesh = devices.config_mesh()
    configs = configs + [configs[-1]] * (devices.padded(len(configs), mesh) - len(configs))
    splits = devices.replicate(on_device(data, dtype), mesh)
    keys = [config_keys(c) for c in configs]
    initial = [initial_params(c) for c in configs]
    same_batches = len({c.seed for c in configs}) == 1
    key_shuffle = keys[0].shuffle if same_batches else devices.shard(jnp.stack([k.shuffle for k in keys]), mesh)
    fold = jax.jit(jax.random.fold_in if same_batches else jax.vmap(jax.random.fold_in, (0, None)))
    steps = n_train // base.batch_size
    params = devices.shard(_stack(initial), mesh)
    opt_state = devices.shard(_stack([make_optimizer(c, n_train, steps).init(p) for c, p in zip(configs, initial)]),
                              mesh)
    # configs that share their mini-batches gather them once, upfront (with their own orders, K copies would)
    upfront = same_batches and splits["train"].X.nbytes + splits["train"].Y.nbytes <= UPFRONT_BYTES
    vmapped = jax.vmap(make_epoch(base, n_train, upfront=upfront), (0, 0, None if same_batches else 0, None, None))
    # compiled ahead, so that an epoch's wall time is training, not compilation
    compiled = jax.jit(vmapped).lower(params, opt_state, key_shuffle, *splits["train"]).compile()

    def epoch(params, opt_state, e: int):
        return compiled(params, opt_state, fold(key_shuffle, e), *splits["train"])

    return Program(epoch, params, opt_state, _make_measure(base, n_train, splits))


def _stack(trees: list):
    """One pytree whose leaves have a leading config axis, from one pytree per config."""
    return jax.tree.map(lambda *leaves: jnp.stack(leaves), *trees)


def train_together(configs: Sequence[TrainConfig], data: Dataset, *, callbacks=()) -> list[TrainResult]:
    """Train configs that share ``group_key`` as ONE compiled program (see ``compile_together``).

    Configs may differ in eta, l2, seed, init and early_stopping; each gives the history it would give
    alone (within float rounding). A diverged or stopped config keeps its own result while the others go
    on. ``epoch_seconds`` is the wall time of the whole program's epoch. Callbacks get (config index, that
    config's epoch metrics)."""
    program = compile_together(configs, data)
    params, opt_state = program.params, program.opt_state
    started_at = time.time()
    runs = [_Run(c, k, started_at) for k, c in enumerate(configs)]
    for e in range(1, configs[0].epochs + 1):
        start = time.perf_counter()
        new_params, opt_state = jax.block_until_ready(program.epoch(params, opt_state, e))
        seconds = time.perf_counter() - start
        rows = program.measure(new_params, opt_state)
        for run in runs:
            if run.result is None:
                run.record({"epoch": e, **rows[run.index], "epoch_seconds": seconds}, params, new_params)
                for callback in callbacks:
                    callback(run.index, run.history[-1])
        params = new_params
        if all(run.result is not None for run in runs):
            break
    return [run.result for run in runs]


def _make_measure(config: TrainConfig, n_train: int, splits: dict[str, Split]):
    """measure(params, opt_state, both with a config axis) -> one metrics dict per config: cost (with the
    config's λ from its state), accuracies, diagnostics."""
    evaluate = jax.jit(jax.vmap(make_evaluate(config, n_train), (0, None, None, 0)))
    X_d, Y_d = (a[:DIAGNOSTIC_EXAMPLES] for a in splits["train"])
    diagnose = jax.jit(jax.vmap(lambda p: layer_diagnostics(p, X_d, Y_d, config)))

    def measure(params, opt_state) -> list[dict]:
        l2 = hyperparams(opt_state)["l2"]
        scores = {name: jax.device_get(evaluate(params, X, Y, l2)) if X.shape[0] else None
                  for name, (X, Y) in splits.items()}
        diagnostics = jax.device_get(diagnose(params))
        rows = []
        for k in range(jax.tree.leaves(params)[0].shape[0]):
            row = {"train_cost": float(scores["train"][0][k])}
            row.update({f"{name}_accuracy": None if s is None else float(s[1][k]) for name, s in scores.items()})
            row.update({f"{name}_cost": None if s is None else float(s[0][k]) for name, s in scores.items()
                        if name != "train"})
            row.update(flatten({name: values[k] for name, values in diagnostics.items()}))
            rows.append(row)
        return rows

    return measure


