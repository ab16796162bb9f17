"""Speed of ``jaxbp.backprop_batch`` (BP1–BP4 by hand) against ``jaxbp.autodiff_grads`` (``jax.grad``).

What it measures: the per-call wall time of the two gradients of the mean quadratic cost of a sigmoid
network, both under ``jax.jit``, on the same float32 parameters and the same mini-batch, for every
network size in ``SIZES`` and batch size in ``BATCHES``. Each function is compiled once per
configuration and warmed up; a timing sample is a loop of calls (each ending in
``jax.block_until_ready``) long enough to last a few milliseconds, and the two functions are sampled
alternately in every repeat so that machine noise hits both alike. The table gives the median
per-call time of each over the repeats, and as ratio the median over repeats of the paired ratio
backprop_batch / autodiff_grads (below 1: BP1–BP4 is faster); pairing makes the ratio robust to load
that drifts during the run, which the two medians taken apart are not.

Run it from the repository root (on CPU or GPU, unchanged):

    .venv/bin/python benchmarks/grad_speed.py            # default repeats
    .venv/bin/python benchmarks/grad_speed.py --quick    # fewer repeats, a rough look
    .venv/bin/python benchmarks/grad_speed.py --repeats 31
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
from machine import machine_header

import jaxbp

SIZES = ([784, 30, 10], [784, 100, 10], [784, 256, 128, 10])
BATCHES = (1, 10, 128, 1024)
ACTIVATION, COST = "sigmoid", "quadratic"
SEED = 0
DEFAULT_REPEATS, QUICK_REPEATS = 31, 9
SAMPLE_SECONDS = 0.01  # each timing sample is a loop of calls lasting at least this long
CALIBRATION_SECONDS = 0.02  # time spent estimating one call, to size that loop


def make_inputs(sizes: list[int], m: int, seed: int = SEED):
    """Parameters, X ~ U(0, 1) of shape (m, n_in) and one-hot Y (m, n_out), all from one explicit key."""
    k_params, k_x, k_y = jax.random.split(jax.random.key(seed), 3)
    params = jaxbp.init_params(k_params, sizes)
    X = jax.random.uniform(k_x, (m, sizes[0]), jnp.float32)
    Y = jax.nn.one_hot(jax.random.randint(k_y, (m,), 0, sizes[-1]), sizes[-1], dtype=jnp.float32)
    return params, X, Y


def jitted(grad_fn: Callable) -> Callable:
    """``grad_fn`` with the activation and cost names bound (they are static), compiled by ``jax.jit``."""
    return jax.jit(functools.partial(grad_fn, activation=ACTIVATION, cost=COST))


def loop_seconds(fn: Callable, args: tuple, calls: int) -> float:
    """Wall time of ``calls`` calls of ``fn(*args)``, each waited for."""
    start = time.perf_counter()
    for _ in range(calls):
        jax.block_until_ready(fn(*args))
    return time.perf_counter() - start


def calls_per_sample(fns: tuple[Callable, ...], args: tuple) -> int:
    """Calls per timing sample, the same for all ``fns``: enough for the fastest to last ``SAMPLE_SECONDS``."""
    per_call = []
    for fn in fns:
        calls, elapsed = 1, loop_seconds(fn, args, 1)
        while elapsed < CALIBRATION_SECONDS:
            calls *= 2
            elapsed = loop_seconds(fn, args, calls)
        per_call.append(elapsed / calls)
    return max(1, round(SAMPLE_SECONDS / min(per_call)))


def interleaved_samples(fns: tuple[Callable, ...], args: tuple, repeats: int) -> list[list[float]]:
    """Per-call seconds of each of ``fns``, one sample per repeat, sampled alternately (f0, f1, f0, f1, ...)."""
    for fn in fns:  # compile and warm up before anything is timed
        jax.block_until_ready(fn(*args))
    calls = calls_per_sample(fns, args)
    samples = [[] for _ in fns]
    for _ in range(repeats):
        for fn, times in zip(fns, samples):
            times.append(loop_seconds(fn, args, calls) / calls)
    return samples


def benchmark(repeats: int):
    """Yield (sizes, batch, backprop µs, autodiff µs, ratio) for every configuration: median times, and the
    median over repeats of the paired ratio bp/ad (each pair timed back to back, so drifting load cancels)."""
    for sizes in SIZES:
        for m in BATCHES:
            fns = (jitted(jaxbp.backprop_batch), jitted(jaxbp.autodiff_grads))  # one jit per configuration
            bp, ad = interleaved_samples(fns, make_inputs(sizes, m), repeats)
            ratio = statistics.median(b / a for b, a in zip(bp, ad))
            yield sizes, m, statistics.median(bp) * 1e6, statistics.median(ad) * 1e6, ratio


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, help=f"timing samples per function (default {DEFAULT_REPEATS})")
    parser.add_argument("--quick", action="store_true", help=f"fewer repeats ({QUICK_REPEATS}) for a rough look")
    args = parser.parse_args(argv)
    repeats = args.repeats if args.repeats is not None else QUICK_REPEATS if args.quick else DEFAULT_REPEATS
    if repeats < 1:
        parser.error("--repeats must be at least 1")

    print(machine_header())
    print(f"activation={ACTIVATION}, cost={COST}, float32, jit; median of {repeats} interleaved repeats, "
          "ratio = median of the paired bp/ad\n")
    print("| sizes | batch | backprop_batch (µs) | autodiff_grads (µs) | ratio |")
    print("|---|---:|---:|---:|---:|")
    for sizes, m, bp, ad, ratio in benchmark(repeats):
        print(f"| {sizes} | {m} | {bp:.1f} | {ad:.1f} | {ratio:.3f} |", flush=True)


if __name__ == "__main__":
    main()
