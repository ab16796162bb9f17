"""A cohort: configs of one shape training together as one compiled program, whose members can change.

What it is for: every multi-config run. ``Cohort(configs, data)`` stacks the configs' parameters and optimizer
states along a config axis (η and λ are state, see ``optim``) and ``vmap``s ``loop.make_epoch`` over it (or
runs ``deferred.make_deferred_epoch`` on it: one mini-batch order, plain SGD, λ = 0);
``train(until)`` runs every live member to epoch ``until``, measures each after every epoch and ends each
on its own (finished, stopped early, diverged: a NaN or infinite cost, its last finite parameters kept).
The adaptive searches change the membership between epochs, on arrays already on the device: ``prune``
ends a member, ``keep`` continues some members in a smaller program (parameters, optimizer state, history
and shuffle keys gathered along the config axis; one compile per distinct size), ``exploit`` copies one
member's parameters and optimizer state into another's slot and sets its η and λ (population-based
training, no recompiling). ``state``/``start`` carry a member across processes (``--resume``).
What it is not: no search policy (see ``jaxbp.sweeps.search``), no logging or progress bar (callbacks).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import serialization

from jaxbp.core.types import Params, float_dtype
from jaxbp.training import devices
from jaxbp.training.config import PROGRAM, TrainConfig, fields_of
from jaxbp.training.data import Dataset
from jaxbp.training.deferred import deferrable, make_deferred_epoch
from jaxbp.training.loop import (
    TrainResult,
    check_dataset,
    config_keys,
    data_seed,
    initial_params,
    make_epoch,
    on_device,
)
from jaxbp.training.measure import Measure
from jaxbp.training.optim import hyperparams, make_optimizer

# What shapes the compiled program, as TrainConfig declares it: configs that agree on it train together.
SHARED = fields_of(PROGRAM)
UPFRONT_BYTES = 1 << 30  # gather an epoch's mini-batches upfront when that copy of the training set fits

Callback = Callable[[int, dict], None]  # (config index in the cohort, that config's epoch metrics)


def group_key(config: TrainConfig) -> tuple:
    """What must agree for configs to train together; eta, l2, seed, init and early_stopping may differ."""
    return tuple(getattr(config, name) for name in SHARED)


class Member:
    """The bookkeeping of one config of a cohort: its history, early stopping, and how it ended."""

    def __init__(self, config: TrainConfig, started_at: float, history: list[dict] | None = None):
        self.config, self.history, self.best, self.since_best = config, list(history or []), -1.0, 0
        self.started_at = started_at
        self.result: TrainResult | None = None
        for row in self.history:  # a member started from a saved state picks up its early-stopping count
            self._count(row)

    def _count(self, metrics: dict) -> None:
        if self.config.early_stopping and metrics.get("validation_accuracy") is not None:
            if metrics["validation_accuracy"] > self.best:
                self.best, self.since_best = metrics["validation_accuracy"], 0
            else:
                self.since_best += 1

    def record(self, metrics: dict, finite: bool = True) -> tuple[str, str, bool] | None:
        """Append one epoch's metrics; (status, message, keep the parameters from before the epoch?) when
        this epoch ends the config, else None. It diverged when a cost is NaN or infinite, or its parameters
        are not all ``finite``."""
        self.history.append(metrics)
        epoch = metrics["epoch"]
        costs = [v for k, v in metrics.items() if k.endswith(("_cost", "_cost_running")) and v is not None]
        if not (finite and np.isfinite(costs).all()):
            return "diverged", f"diverged at epoch {epoch}", True
        self._count(metrics)
        if self.config.early_stopping and self.since_best >= self.config.early_stopping:
            return ("stopped_early", f"stopped early at epoch {epoch}: no better validation accuracy for "
                    f"{self.since_best} epochs", False)
        if epoch == self.config.epochs:
            return "finished", f"finished {epoch} epochs", False
        return None

    def end(self, params: Params, status: str, message: str) -> None:
        self.result = TrainResult(params, self.history, status, message, self.started_at, time.time())


class Cohort:
    """Configs of one shape (``group_key``) training together; see the module docstring. ``members`` are
    every config's bookkeeping, in the order given; ``slots`` the indices of those still in the program, in
    the order of its config axis; ``deferred`` whether its programs of two or more configs take
    ``deferred.make_deferred_epoch`` (one mini-batch order, plain SGD, λ = 0: the same updates, fewer passes
    over w¹) rather than ``loop.make_epoch``."""

    def __init__(self, configs: Sequence[TrainConfig], data: Dataset, *, states: Sequence[bytes] | None = None,
                 histories: Sequence[list[dict]] | None = None):
        """``states``/``histories`` (one per config, from ``state``/``Member.history`` of an earlier
        cohort, all at the same epoch) start the configs where they were instead of from scratch."""
        configs = list(configs)
        if not configs or not all(isinstance(c, TrainConfig) for c in configs):
            raise TypeError("configs must be a non-empty sequence of TrainConfig")
        if len({group_key(c) for c in configs}) != 1:
            raise ValueError(f"configs trained together must agree on {', '.join(SHARED)}")
        base = configs[0]
        check_dataset(base.sizes, data)
        self.n_train = n_train = data.train.X.shape[0]
        if base.batch_size > n_train:
            raise ValueError(f"batch_size={base.batch_size} is larger than the training set ({n_train} examples)")
        if any(c.early_stopping for c in configs) and data.validation.X.shape[0] == 0:
            raise ValueError("early_stopping needs a validation split; load the data with validation > 0")
        self.configs, self.mesh = configs, devices.config_mesh()
        self.splits = devices.replicate(on_device(data, float_dtype(base.dtype)), self.mesh)
        # configs that share their data seed draw the same mini-batches: the first layer's products are then one
        # GEMM for all of them, and the batches are gathered once, upfront (with their own orders K copies would be)
        self.same_batches = len({data_seed(c) for c in configs}) == 1
        train = self.splits["train"]
        upfront = self.same_batches and train.X.nbytes + train.Y.nbytes <= UPFRONT_BYTES
        regularised = any(c.l2 > 0 for c in configs)  # λ = 0 stays 0 (PBT multiplies it)
        axes = (0, 0, None if self.same_batches else 0, None, None)
        self._vmapped = jax.jit(jax.vmap(make_epoch(base, n_train, upfront=upfront, regularised=regularised), axes))
        # whether programs of two or more configs defer w¹'s updates over blocks of steps (see ``deferred``)
        self.deferred = deferrable(base, shared_batches=upfront, regularised=regularised)
        self._deferred = jax.jit(make_deferred_epoch(base, n_train)) if self.deferred else None  # over the configs
        self._fold = jax.jit(jax.random.fold_in if self.same_batches else jax.vmap(jax.random.fold_in, (0, None)))
        self._compiled: dict[int, Callable] = {}  # the epoch program by number of slots
        self.measure = Measure(base, n_train, self.splits)
        initial = [self._initial(c) for c in configs]
        if states is not None:
            initial = [serialization.from_bytes(template, blob) for template, blob in zip(initial, states, strict=True)]
        histories = histories or [[] for _ in configs]
        self.epoch = len(histories[0])
        if any(len(h) != self.epoch for h in histories):
            raise ValueError("every config of a cohort must start at the same epoch")
        started = time.time()
        self.members = [Member(c, started, h) for c, h in zip(configs, histories)]
        self.slots = list(range(len(configs)))
        self._keys = jnp.stack([config_keys(c).shuffle for c in configs])
        self._place(_stack([p for p, _ in initial]), _stack([s for _, s in initial]), self.slots, self.slots)

    def _initial(self, config: TrainConfig) -> tuple[Params, object]:
        params = initial_params(config)
        steps = self.n_train // config.batch_size
        return params, make_optimizer(config, self.n_train, steps).init(params)

    def _place(self, params, opt_state, slots: list[int], rows: list[int]) -> None:
        """Rows ``rows`` of the stacked ``params``/``opt_state`` become the program's slots ``slots`` (config
        indices), on the device(s); the config axis is padded with copies of the last one to a multiple of
        the device count (their results are discarded)."""
        pad = devices.padded(len(slots), self.mesh) - len(slots)
        self.slots = list(slots)
        take = jnp.array(rows + rows[-1:] * pad)
        self.params, self.opt_state = devices.shard(_take((params, opt_state), take), self.mesh)
        keys = _take(self._keys, jnp.array(slots + slots[-1:] * pad))
        self.keys = keys[0] if self.same_batches else devices.shard(keys, self.mesh)

    def compile(self) -> Callable:
        """The epoch compiled for the current number of slots (ahead of time, so an epoch's wall time is
        training, not compilation), and the measure for it."""
        size = jax.tree.leaves(self.params)[0].shape[0]
        if size not in self._compiled:
            epoch = self._deferred if self.deferred and size > 1 else self._vmapped
            self._compiled[size] = epoch.lower(self.params, self.opt_state, self.keys, *self.splits["train"]).compile()
            self.measure.prepare(self.params, self.opt_state)
        return self._compiled[size]

    def run_epoch(self, params, opt_state, e: int):
        """Epoch ``e`` (1, 2, …) of the program's current slots from (params, opt_state), without bookkeeping:
        (params, opt_state, ``loop.Running``)."""
        return self.compile()(params, opt_state, self._fold(self.keys, e), *self.splits["train"])

    @property
    def live(self) -> list[int]:
        """The slots (config indices) still training."""
        return [i for i in self.slots if self.members[i].result is None]

    def train(self, until: int, callbacks: Sequence[Callback] = ()) -> None:
        """Run every live config up to epoch ``until`` (at most its ``epochs``), ending each as it finishes,
        stops early or diverges. ``epoch_seconds`` is the wall time of the whole program's epoch."""
        program = self.compile()
        while self.epoch < until and self.live:
            e = self.epoch + 1
            start = time.perf_counter()
            new_params, opt_state, running = jax.block_until_ready(
                program(self.params, self.opt_state, self._fold(self.keys, e), *self.splits["train"]))
            seconds = time.perf_counter() - start
            rows, finite = self.measure(new_params, opt_state, running)
            for slot, i in enumerate(self.slots):
                member = self.members[i]
                if member.result is None:
                    ended = member.record({"epoch": e, **rows[slot], "epoch_seconds": seconds}, finite[slot])
                    if ended:
                        member.end(self._mine(self.params if ended[2] else new_params, slot), *ended[:2])
                    for callback in callbacks:
                        callback(i, member.history[-1])
            self.params, self.opt_state, self.epoch = new_params, opt_state, e

    def _mine(self, stacked, slot: int):
        return _take(stacked, jnp.asarray(slot))

    def prune(self, i: int, message: str) -> None:
        """End live config ``i`` now, with status "pruned" and its current parameters."""
        member = self.members[i]
        if member.result is not None:
            raise ValueError(f"config {i} already ended ({member.result.status})")
        member.end(self._mine(self.params, self.slots.index(i)), "pruned", message)

    def keep(self, indices: Sequence[int]) -> None:
        """Continue only configs ``indices`` (live ones), in a program of that many slots: their parameters,
        optimizer states and shuffle keys are gathered along the config axis. The others must have ended."""
        indices = list(indices)
        if not indices or any(self.members[i].result is not None for i in indices):
            raise ValueError("keep needs one or more live configs")
        if dropped := [i for i in self.live if i not in indices]:
            raise ValueError(f"configs {dropped} are live: prune them before keep")
        self._place(self.params, self.opt_state, indices, [self.slots.index(i) for i in indices])

    def exploit(self, target: int, source: int, *, eta: float, l2: float) -> None:
        """Config ``target`` continues from config ``source``'s parameters and optimizer state (its own shuffle
        key and bookkeeping stay), with learning rate ``eta`` and L2 ``l2`` (PBT's exploit and explore)."""
        t, s = self.slots.index(target), self.slots.index(source)
        copy = jax.tree.map(lambda leaf: leaf.at[t].set(leaf[s]), (self.params, self.opt_state))
        self.params, opt_state = copy
        hp = hyperparams(opt_state)
        self.opt_state = opt_state._replace(hyperparams={**hp, "eta": hp["eta"].at[t].set(eta),
                                                         "l2": hp["l2"].at[t].set(l2)})

    def hyperparams(self, i: int) -> dict[str, float]:
        """{"eta", "l2"} config ``i`` trains with now (the shortest decimal of its dtype's value: 0.1, not the
        0.10000000149011612 a float32 0.1 is as a Python float)."""
        slot = self.slots.index(i)
        return {k: float(str(np.asarray(v)[slot])) for k, v in hyperparams(self.opt_state).items()}

    def state(self, i: int) -> bytes:
        """Config ``i``'s parameters and optimizer state as bytes (``flax.serialization``), for ``Cohort(…,
        states=…)`` in another process."""
        return serialization.to_bytes(jax.device_get(self._mine((self.params, self.opt_state),
                                                                self.slots.index(i))))

    def results(self) -> list[TrainResult]:
        """Every config's result, in the order given (all must have ended)."""
        if missing := [i for i, m in enumerate(self.members) if m.result is None]:
            raise ValueError(f"configs {missing} have not ended")
        return [m.result for m in self.members]


# Two tree-wide operations, each one compiled program (not one per leaf and shape, as eager indexing would be)
@jax.jit
def _stack(trees: list):
    """One pytree whose leaves have a leading config axis, from one pytree per config."""
    return jax.tree.map(lambda *leaves: jnp.stack(leaves), *trees)


@jax.jit
def _take(stacked, rows: jax.Array):
    """Rows ``rows`` (an index or an array of them) of every leaf's config axis."""
    return jax.tree.map(lambda leaf: leaf[rows], stacked)

