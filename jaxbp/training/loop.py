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

from jaxbp.core.autodiff import autodiff_grads
from jaxbp.core.backprop import backprop_batch
from jaxbp.core.network import feedforward, init_params, mean_cost
from jaxbp.core.types import Params, float_dtype
from jaxbp.training import devices
from jaxbp.training.config import PROGRAM, TrainConfig, fields_of
from jaxbp.training.data import Dataset, Split
from jaxbp.training.diagnostics import flatten, layer_diagnostics
from jaxbp.training.optim import hyperparams, make_optimizer

Callback = Callable[[dict], None]


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


def make_epoch(config: TrainConfig, n_train: int, *, unroll: int = 1, upfront: bool = False):
    """epoch(params, opt_state, key, X, Y) -> (params, opt_state): one ``lax.scan`` over ⌊n/m⌋ steps.

    η and λ come from ``opt_state`` (``make_optimizer`` keeps them there), so a sweep ``vmap``s the epoch over
    configs with their own states, and can change η or λ between epochs without recompiling. ``upfront``
    gathers the epoch's mini-batches into one array before the scan (one copy of the training set; each step
    then reads contiguous rows: 0.80× the epoch time of a gather per step, [784,30,10] at m = 10 on 2 CPU
    cores); ``unroll`` is ``lax.scan``'s."""
    gradient = backprop_batch if config.gradients == "bp" else autodiff_grads
    grad = functools.partial(gradient, activation=config.activation, cost=config.cost,
                             output_activation=config.output_activation)
    m = config.batch_size
    n_batches = n_train // m

    tx = make_optimizer(config, n_train, n_batches)

    def epoch(params, opt_state, key, X, Y):

        def step(state, batch):
            params, opt_state = state
            X_b, Y_b = batch if upfront else (X[batch], Y[batch])
            updates, opt_state = tx.update(grad(params, X_b, Y_b), opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), None

        batches = jax.random.permutation(key, n_train)[: n_batches * m].reshape(n_batches, m)
        xs = (X[batches], Y[batches]) if upfront else batches
        return jax.lax.scan(step, (params, opt_state), xs, unroll=unroll)[0]

    return epoch


def make_evaluate(config: TrainConfig, n_train: int):
    """evaluate(params, X, Y, l2) -> (C + (λ/2n) Σ‖w‖², accuracy): the cost being minimised, and the fraction
    of examples whose largest output is the target's class (for one output: both on the same side of ½)."""

    def evaluate(params, X, Y, l2):
        cost = mean_cost(params, X, Y, config.activation, config.cost, config.output_activation)
        cost += 0.5 * l2 / n_train * sum(jnp.sum(layer.w**2) for layer in params)
        a = feedforward(params, X, config.activation, config.output_activation)[1][-1]
        hits = (a > 0.5) == (Y > 0.5) if Y.shape[-1] == 1 else jnp.argmax(a, -1) == jnp.argmax(Y, -1)
        return cost, jnp.mean(hits)

    return evaluate


# What shapes the compiled program, as TrainConfig declares it: configs that agree on it train together.
SHARED = fields_of(PROGRAM)
# The per-config fields ``compile_together`` knows how to vary along the config axis (a test asserts that this
# is every PER_CONFIG field of TrainConfig).
VARIED = ("eta", "l2", "seed", "init", "early_stopping")
DIAGNOSTIC_EXAMPLES = 1000  # the first this many training examples are the batch of the diagnostics
UPFRONT_BYTES = 1 << 30  # gather an epoch's mini-batches upfront when that copy of the training set fits


class Keys(NamedTuple):
    """A config's PRNG keys: of its initial weights, and of its mini-batch order (folded with the epoch)."""

    init: jax.Array
    shuffle: jax.Array


def config_keys(config: TrainConfig) -> Keys:
    """The one place a config's keys are derived from its seed (training, sweeps and diagnostics use it)."""
    return Keys(*jax.random.split(jax.random.key(config.seed)))


def initial_params(config: TrainConfig) -> Params:
    """The parameters ``config`` starts from."""
    return init_params(config_keys(config).init, config.sizes, config.init, float_dtype(config.dtype))


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
    params = jax.tree.map(lambda *leaves: jnp.stack(leaves), *(initial_params(c) for c in configs))
    same_batches = len({c.seed for c in configs}) == 1
    key_shuffle = keys[0].shuffle if same_batches else devices.shard(jnp.stack([k.shuffle for k in keys]), mesh)
    fold = jax.jit(jax.random.fold_in if same_batches else jax.vmap(jax.random.fold_in, (0, None)))
    steps = n_train // base.batch_size
    states = [make_optimizer(c, n_train, steps).init(initial) for c, initial in
              zip(configs, (jax.tree.map(lambda leaf, k=k: leaf[k], params) for k in range(len(configs))))]
    opt_state = devices.shard(jax.tree.map(lambda *leaves: jnp.stack(leaves), *states), mesh)
    params = devices.shard(params, mesh)
    # configs that share their mini-batches gather them once, upfront (with their own orders, K copies would)
    upfront = same_batches and splits["train"].X.nbytes + splits["train"].Y.nbytes <= UPFRONT_BYTES
    vmapped = jax.vmap(make_epoch(base, n_train, upfront=upfront), (0, 0, None if same_batches else 0, None, None))
    # compiled ahead, so that an epoch's wall time is training, not compilation
    compiled = jax.jit(vmapped).lower(params, opt_state, key_shuffle, *splits["train"]).compile()

    def epoch(params, opt_state, e: int):
        return compiled(params, opt_state, fold(key_shuffle, e), *splits["train"])

    return Program(epoch, params, opt_state, _make_measure(base, n_train, splits))


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


def evaluate_splits(config: TrainConfig, params: Params, data: Dataset) -> dict[str, dict]:
    """{split: {examples, cost, accuracy}} of ``params`` on every split of ``data`` (None where empty)."""
    evaluate = jax.jit(make_evaluate(config, data.train.X.shape[0]))
    out = {}
    for name, (X, Y) in on_device(data, float_dtype(config.dtype)).items():
        cost, accuracy = map(float, jax.device_get(evaluate(params, X, Y, config.l2))) if X.shape[0] else (None, None)
        out[name] = {"examples": X.shape[0], "cost": cost, "accuracy": accuracy}
    return out
