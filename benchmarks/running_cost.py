"""What the running training metrics cost: the epoch with them (``loop.make_epoch``) against the same epoch
without them (the update alone, as before ``TrainConfig.measure`` existed), side by side in one process.

Fashion-MNIST, [784, 30, 10], sigmoid + quadratic, m = 10, float32, K η values trained together (``--k``,
default 1 and 32), λ = 0; both programs compiled and warmed up first, then ``--repeats`` interleaved pairs of
epochs on the same inputs; the ratio is the median of the paired ratios (with / without).

    .venv/bin/python benchmarks/running_cost.py
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time

import jax
import numpy as np
import optax
from machine import machine_header

import jaxbp
from jaxbp.core.backprop import backprop_batch
from jaxbp.training.cohort import Cohort
from jaxbp.training.loop import make_epoch
from jaxbp.training.optim import make_optimizer


def update_only(config: jaxbp.TrainConfig, n_train: int):
    """The epoch's updates and nothing else: ``make_epoch`` without its running cost and accuracy."""
    grad = functools.partial(backprop_batch, activation=config.activation, cost=config.cost,
                             output_activation=config.output_activation)
    m, steps = config.batch_size, n_train // config.batch_size
    tx = make_optimizer(config, n_train, steps)

    def epoch(params, opt_state, key, X, Y):
        def step(state, batch):
            updates, opt_state = tx.update(grad(state[0], *batch), state[1], state[0])
            return (optax.apply_updates(state[0], updates), opt_state), None

        order = jax.random.permutation(key, n_train)[: steps * m].reshape(steps, m)
        return jax.lax.scan(step, (params, opt_state), (X[order], Y[order]))[0]

    return epoch


def seconds(fn, args) -> float:
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--k", type=int, nargs="+", default=[1, 32], help="configs trained together (default 1 32)")
    parser.add_argument("--repeats", type=int, default=6, help="interleaved pairs of epochs (default 6)")
    args = parser.parse_args()
    print(machine_header())
    data = jaxbp.load_dataset("fashion-mnist")
    n = data.train.X.shape[0]
    print("| K | with running metrics (s) | update only (s) | paired ratio |\n|---:|---:|---:|---:|")
    for k in args.k:
        configs = [jaxbp.TrainConfig(sizes=(784, 30, 10), eta=float(e), epochs=1) for e in np.geomspace(0.05, 10, k)]
        cohort = Cohort(configs, data)
        programs = [jax.jit(jax.vmap(epoch, (0, 0, None, None, None))) for epoch in (
            make_epoch(configs[0], n, upfront=True, regularised=False), update_only(configs[0], n))]
        inputs = (cohort.params, cohort.opt_state, jax.random.key(0), *cohort.splits["train"])
        for program in programs:
            seconds(program, inputs)
        pairs = [tuple(seconds(program, inputs) for program in programs) for _ in range(args.repeats)]
        print(f"| {k} | {statistics.median(a for a, _ in pairs):.3f} | {statistics.median(b for _, b in pairs):.3f} "
              f"| {statistics.median(a / b for a, b in pairs):.3f} |", flush=True)


if __name__ == "__main__":
    main()
