"""How many configs of one shape to train together: the group size at which a config-epoch is cheapest here.

What it is for: configs of one shape train as one program, ``vmap``-ed over a config axis; up to some size a
larger program is cheaper per config (one GEMM for all where they share their mini-batches), past it the
stacked weights leave the caches and the time per config rises again. ``chunk_size(configs, data)``
measures where, on the device at hand: a short epoch (``CALIBRATION_STEPS`` mini-batches of the group's
own configs) and the measuring that follows every epoch of a sweep, of K configs and of K/2, K/4, … down to
``MIN_CHUNK`` (powers of two), interleaved, and returns the size with the cheapest estimated time per
config-epoch (the largest within ``TOLERANCE`` of it: fewer programs to compile). A sweep trains a group of
K in chunks of that size, one after the other. The answer is cached per machine (device kind and count,
program shape, K) in a JSON file in ``caches.folder()``, so a machine measures each shape
once. ``$JAXBP_CHUNK`` overrides it: a size, or "off" (never split).
What it is not: no training of the sweep itself (see ``together``), no search's shrinking cohorts (a search
keeps one program per shape and changes its membership, see ``cohort``).
"""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Sequence
from pathlib import Path

import jax

from jaxbp.training import caches
from jaxbp.training.cohort import Cohort
from jaxbp.training.config import TrainConfig
from jaxbp.training.data import Dataset, Split
from jaxbp.training.deferred import block_steps, deferrable
from jaxbp.training.loop import data_seed

MIN_CHUNK = 8  # no group is split below this size (small programs: compile time and per-step overhead win)
CALIBRATION_STEPS = 100  # mini-batches of the short epoch each candidate size is timed on
ROUNDS = 3  # timed short epochs per candidate (interleaved; the median counts)
TOLERANCE = 1.05  # the largest size within 5 % of the cheapest per config-epoch is taken
CHUNK_ENV = "JAXBP_CHUNK"


def chunk_size(configs: Sequence[TrainConfig], data: Dataset) -> int:
    """The number of ``configs`` (one shape) to train as one program on this machine: ``$JAXBP_CHUNK`` if set,
    else len(configs) for a group of at most MIN_CHUNK, else the cached or newly measured best size."""
    k = len(configs)
    forced = os.environ.get(CHUNK_ENV, "").strip().lower()
    if forced:
        if forced == "off":
            return k
        if not forced.isdigit() or int(forced) < 1:
            raise ValueError(f"${CHUNK_ENV} must be a positive number of configs or \"off\", got {forced!r}")
        return min(int(forced), k)
    if k <= MIN_CHUNK:
        return k
    cache = cache_path()
    known = json.loads(cache.read_text()) if cache.exists() else {}
    key = cache_key(configs)
    if key not in known:
        known[key] = best_size(measure(configs, data, candidates(k)))
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(known, indent=1, sort_keys=True))
    return known[key]


def split(indices: Sequence[int], size: int) -> list[list[int]]:
    """``indices`` in consecutive chunks of ``size`` (the last one may be smaller)."""
    indices = list(indices)
    return [indices[i:i + size] for i in range(0, len(indices), size)]


def candidates(k: int) -> list[int]:
    """k, then the powers of two below it down to MIN_CHUNK: the sizes a group of k is measured at."""
    sizes, p = [k], 1 << (k - 1).bit_length() - 1
    while p >= MIN_CHUNK:
        if p < k:
            sizes.append(p)
        p //= 2
    return sizes


def best_size(per_config: dict[int, float]) -> int:
    """The largest size whose time per config-epoch is within TOLERANCE of the cheapest one's."""
    cheapest = min(per_config.values())
    return max(size for size, seconds in per_config.items() if seconds <= TOLERANCE * cheapest)


def measure(configs: Sequence[TrainConfig], data: Dataset, sizes: Sequence[int]) -> dict[int, float]:
    """{size: estimated seconds per config-epoch} of the first ``size`` configs trained together: a short epoch
    of CALIBRATION_STEPS mini-batches scaled to the whole epoch's ⌊n/m⌋, plus what a sweep does after every
    epoch (``Cohort.measure``: validation, test, diagnostics), each compiled and warmed up first, the median of
    ROUNDS, sizes interleaved."""
    m, n = configs[0].batch_size, data.train.X.shape[0]
    steps = min(CALIBRATION_STEPS, n // m)
    short = Dataset(data.name, Split(data.train.X[:steps * m], data.train.Y[:steps * m]), data.validation, data.test)
    cohorts = {size: Cohort(configs[:size], short) for size in sizes}

    def epoch_and_measure(cohort: Cohort) -> tuple[float, float]:
        start = time.perf_counter()
        out = jax.block_until_ready(cohort.run_epoch(cohort.params, cohort.opt_state, 1))
        middle = time.perf_counter()
        cohort.measure(*out)
        return middle - start, time.perf_counter() - middle

    for cohort in cohorts.values():
        epoch_and_measure(cohort)
    times: dict[int, list[float]] = {size: [] for size in sizes}
    for _ in range(ROUNDS):
        for size, cohort in cohorts.items():
            epoch, after = epoch_and_measure(cohort)
            times[size].append((epoch * (n // m) / steps + after) / size)
    return {size: statistics.median(t) for size, t in times.items()}


def cache_key(configs: Sequence[TrainConfig]) -> str:
    """What the best size depends on: the device, the program's shape (not its epochs or measure), whether
    its epoch is the deferred one (``deferred.deferrable``) and with how many steps per block, whether the
    configs share their mini-batches, and how many there are."""
    c, device = configs[0], jax.devices()[0]
    shared = len({data_seed(config) for config in configs}) == 1
    deferred = deferrable(c, shared_batches=shared, regularised=any(config.l2 > 0 for config in configs))
    return json.dumps([device.platform, device.device_kind, jax.device_count(), list(c.sizes), c.activation,
                       c.output_activation, c.cost, c.batch_size, c.optimizer, c.schedule, c.gradients, c.dtype,
                       f"deferred, B = {block_steps(c)}" if deferred else "plain", shared, len(configs)])


def cache_path() -> Path:
    """Where measured sizes are kept: chunk_sizes.json in ``caches.folder()`` (~/.cache/jaxbp)."""
    return caches.folder() / "chunk_sizes.json"
